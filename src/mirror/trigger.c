/*-------------------------------------------------------------------------
 *
 * trigger.c
 *	  Mirror maintenance: the row, statement and TRUNCATE triggers that write
 *	  a mirror in the same transaction as its table (mirror.h).
 *
 * Row triggers (AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW) see every
 * writer: ingest_block(s), plain DML, COPY, the cascades of revert_to (the
 * foreign keys' ON DELETE CASCADE runs DELETE statements, whose row triggers
 * fire).  Each write is a blind put in the transaction's batch: the heap's
 * row locks and unique indexes already order the writers of a key, so the
 * version order in the store is the commit order.
 *
 * A latest mirror (account_states) is the exception: two transactions can
 * insert states of one account at different blocks without ever waiting for
 * each other in the heap.  Its trigger therefore takes a transaction-level
 * lock on the key and recomputes the key's row from the heap under a
 * snapshot taken after the lock: every earlier writer of the key has then
 * committed or aborted and is seen by that snapshot, and later ones wait for
 * this transaction to end.  The same recomputation puts back the
 * next-latest state when the latest is deleted (a revert).
 *
 * The locks are advisory lock tags of our own (field4 ALMANAC_MIRROR_LOCKTAG
 * for a key, + 1 for the table), in two levels so that a transaction never
 * holds more than ALMANAC_MIRROR_KEY_LOCKS of them: a writer holds the
 * table's tag in RowExclusiveLock (writers of different keys do not wait
 * for each other) and each key's in ExclusiveLock; past that many keys it
 * takes the table's tag in ExclusiveLock instead, which waits for every
 * other writer of the mirror and makes them wait (a bulk load of states
 * serialises with other writers of account_states, as one lock, instead of
 * filling the shared lock table, which a lock per key of a 100,000-account
 * load did: "out of shared memory").  Two transactions writing states of the
 * same two accounts in opposite orders can deadlock (40P01) where the heap
 * alone would not, as can two that escalate at once; ingest serialises the
 * writers of a chain, so only concurrent plain DML on account_states can
 * meet it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "almanac.h"
#include "codec/valuecodec.h"
#include "kv/xact.h"
#include "mirror/mirror.h"

/* field4 of the advisory lock tags of latest-mirror keys (user locks use 1 and 2) */
#define ALMANAC_MIRROR_LOCKTAG 0x414D
/* keys a transaction locks one by one before it locks the whole mirror */
#define ALMANAC_MIRROR_KEY_LOCKS 64

/* this transaction's locks on latest mirrors (one mirror at a time is enough) */
static Oid	locked_relid = InvalidOid;
static int	locked_keys = 0;
static bool locked_table = false;	/* holds the table's tag in ExclusiveLock */

void
almanac_mirror_locks_forget(bool subxact)
{
	/*
	 * A subtransaction's abort releases the locks it took: take them again
	 * (a lock already held costs a local lookup); the count only grows.
	 */
	locked_table = false;
	locked_relid = InvalidOid;
	if (!subxact)
		locked_keys = 0;
}

/* lock the key of a latest mirror, or the whole mirror; see the file header */
static void
lock_key(AlmanacMirror *m, StringInfo key)
{
	LOCKTAG		tag;
	uint64		h;

	if (locked_relid == m->relid && locked_table)
		return;
	if (locked_relid != m->relid)
	{
		locked_relid = m->relid;
		locked_table = false;
	}
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, m->relid, 0, ALMANAC_MIRROR_LOCKTAG + 1);
	if (locked_keys >= ALMANAC_MIRROR_KEY_LOCKS)
	{
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
		locked_table = true;
		return;
	}
	(void) LockAcquire(&tag, RowExclusiveLock, false, false);
	h = hash_bytes_extended((const unsigned char *) key->data, key->len, 0);
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h,
						 ALMANAC_MIRROR_LOCKTAG);
	if (LockAcquire(&tag, ExclusiveLock, false, false) == LOCKACQUIRE_OK)
		locked_keys++;
}

static void
check_trigger(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s() must be called as a trigger", name)));
}

/*
 * Buffers of the row trigger, kept for the backend's life: a trigger call
 * per row allocates nothing of its own that grows with the rows.
 */
static StringInfoData row_key;
static StringInfoData row_oldkey;
static StringInfoData row_image;

static void
row_buffers_reset(void)
{
	StringInfo	bufs[] = {&row_key, &row_oldkey, &row_image};

	for (int i = 0; i < lengthof(bufs); i++)
	{
		/* a huge row's: not kept */
		if (bufs[i]->data != NULL && bufs[i]->maxlen > 64 * 1024)
		{
			pfree(bufs[i]->data);
			bufs[i]->data = NULL;
		}
		if (bufs[i]->data == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			initStringInfo(bufs[i]);
			MemoryContextSwitchTo(old);
		}
		resetStringInfo(bufs[i]);
	}
}

/* a blind write of the mirror's key: the image, or (image NULL) its removal */
static void
mirror_write(AlmanacMirror *m, StringInfo key, StringInfo image)
{
	int			store;
	rocksdb_column_family_handle_t *cf;
	uint32		cf_id;

	almanac_mirror_target(m, &store, &cf, &cf_id);
	almanac_xact_put_blind(store, cf, cf_id, key->data, key->len,
						   image ? image->data : NULL, image ? image->len : 0);
}

/*
 * A latest mirror's key (the key columns of values) gets the heap's latest
 * row for it, or its removal; see the file header.
 */
static void
recompute_latest(AlmanacMirror *m, Relation rel, const Datum *values,
				 const bool *isnull, StringInfo key, StringInfo image)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Snapshot	snap;
	TupleTableSlot *slot;
	Datum		keyvalues[INDEX_MAX_KEYS];

	almanac_mirror_row_key(m, key, values, isnull);
	lock_key(m, key);

	/* the rows of this command too, and whatever committed before the lock */
	CommandCounterIncrement();
	snap = RegisterSnapshot(GetLatestSnapshot());
	almanac_mirror_note_rewrite(m->relid, snap);
	slot = table_slot_create(rel, NULL);
	for (int i = 0; i < m->nkeys; i++)
		keyvalues[i] = values[m->table.keyattrs[i] - 1];
	if (almanac_mirror_heap_lookup(m, rel, snap, keyvalues, slot))
	{
		slot_getallattrs(slot);
		resetStringInfo(image);
		almanac_value_encode(image, desc, m->table.values, slot->tts_values, slot->tts_isnull,
							 NULL);
		mirror_write(m, key, image);
	}
	else
		mirror_write(m, key, NULL);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
}

/*
 * AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW.  The row's values come from
 * the trigger's slots (deformed there, into the slots' own arrays), and the
 * writes go to the mirror's target of the transaction: per row, no access
 * begun and released, no buffers allocated.
 */
PG_FUNCTION_INFO_V1(almanac_mirror_row_sql);
Datum
almanac_mirror_row_sql(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	AlmanacMirror *m;
	TupleTableSlot *newslot = NULL;
	TupleTableSlot *oldslot = NULL;
	bool		key_moved;

	check_trigger(fcinfo, "almanac._mirror_row");
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "almanac._mirror_row() must fire AFTER ... FOR EACH ROW");
	rel = td->tg_relation;
	m = almanac_mirror_lookup(RelationGetRelid(rel));
	if (m == NULL || !m->enabled)
		return PointerGetDatum(NULL);
	almanac_mirror_note_row_write(m->relid);

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		newslot = td->tg_trigslot;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		oldslot = td->tg_trigslot;
		newslot = td->tg_newslot;
	}
	else
		oldslot = td->tg_trigslot;

	desc = RelationGetDescr(rel);
	row_buffers_reset();
	if (oldslot)
	{
		slot_getallattrs(oldslot);
		almanac_mirror_row_key(m, &row_oldkey, oldslot->tts_values, oldslot->tts_isnull);
	}
	if (newslot)
	{
		slot_getallattrs(newslot);
		almanac_mirror_row_key(m, &row_key, newslot->tts_values, newslot->tts_isnull);
	}
	/* a key that changed moves the row: the old key goes */
	key_moved = oldslot && (!newslot || row_oldkey.len != row_key.len ||
							memcmp(row_oldkey.data, row_key.data, row_key.len) != 0);

	if (m->latest_attno)
	{
		if (newslot)
			recompute_latest(m, rel, newslot->tts_values, newslot->tts_isnull, &row_key,
							 &row_image);
		if (key_moved)
			recompute_latest(m, rel, oldslot->tts_values, oldslot->tts_isnull, &row_oldkey,
							 &row_image);
	}
	else
	{
		if (key_moved)
			mirror_write(m, &row_oldkey, NULL);
		if (newslot)
		{
			almanac_value_encode(&row_image, desc, m->table.values, newslot->tts_values,
								 newslot->tts_isnull, NULL);
			mirror_write(m, &row_key, &row_image);
		}
	}
	return PointerGetDatum(NULL);
}

/*
 * BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE FOR EACH STATEMENT: the
 * transaction writes the table.  Before any row, so that a query run by the
 * statement itself (a function it calls), which sees rows whose row
 * triggers have not fired yet, is not answered from the mirror.
 */
PG_FUNCTION_INFO_V1(almanac_mirror_statement_sql);
Datum
almanac_mirror_statement_sql(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	check_trigger(fcinfo, "almanac._mirror_statement");
	almanac_mirror_note_write(RelationGetRelid(td->tg_relation));
	return PointerGetDatum(NULL);
}

typedef struct EraseAll
{
	AlmanacMirror *m;
	AlmanacAccess *a;
} EraseAll;

static void
erase_row(void *arg, const char *key, size_t klen, const char *image, uint32 len)
{
	EraseAll   *e = arg;

	almanac_mirror_erase(e->m, e->a, key, klen);
}

/*
 * AFTER TRUNCATE FOR EACH STATEMENT: every key of the mirror goes.  TRUNCATE
 * holds an ACCESS EXCLUSIVE lock, so the latest snapshot sees every row the
 * mirror has.
 */
PG_FUNCTION_INFO_V1(almanac_mirror_truncate_sql);
Datum
almanac_mirror_truncate_sql(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	AlmanacMirror *m;
	EraseAll	e;
	Snapshot	snap;

	check_trigger(fcinfo, "almanac._mirror_truncate");
	m = almanac_mirror_lookup(RelationGetRelid(td->tg_relation));
	if (m == NULL || !m->enabled)
		return PointerGetDatum(NULL);
	e.m = m;
	e.a = palloc(sizeof(AlmanacAccess));
	almanac_mirror_access(m, e.a, false);
	if (e.a->cf == NULL)
		return PointerGetDatum(NULL);
	snap = RegisterSnapshot(GetLatestSnapshot());
	almanac_mirror_note_rewrite(m->relid, snap);
	almanac_mirror_scan(m, e.a, NULL, NULL, snap, erase_row, &e);
	UnregisterSnapshot(snap);
	return PointerGetDatum(NULL);
}
