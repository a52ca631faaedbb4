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

/* the image of a heap row, into buf */
static void
row_image(AlmanacMirror *m, StringInfo buf, TupleDesc desc, const Datum *values,
		  const bool *isnull)
{
	resetStringInfo(buf);
	almanac_value_encode(buf, desc, m->table.values, values, isnull, NULL);
}

/*
 * A latest mirror's key (the key columns of values) gets the heap's latest
 * row for it, or its removal; see the file header.
 */
static void
recompute_latest(AlmanacMirror *m, AlmanacAccess *a, Relation rel, const Datum *values,
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
	slot = table_slot_create(rel, NULL);
	for (int i = 0; i < m->nkeys; i++)
		keyvalues[i] = values[m->table.keyattrs[i] - 1];
	if (almanac_mirror_heap_lookup(m, rel, snap, keyvalues, slot))
	{
		slot_getallattrs(slot);
		row_image(m, image, desc, slot->tts_values, slot->tts_isnull);
		almanac_mirror_put(m, a, key->data, key->len, image->data, image->len);
	}
	else
		almanac_mirror_erase(m, a, key->data, key->len);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
}

/* AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW */
PG_FUNCTION_INFO_V1(almanac_mirror_row_sql);
Datum
almanac_mirror_row_sql(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	AlmanacMirror *m;
	AlmanacAccess *a;
	StringInfoData key;
	StringInfoData oldkey;
	StringInfoData image;
	Datum	   *values;
	bool	   *isnull;
	Datum	   *oldvalues = NULL;
	bool	   *oldisnull = NULL;
	HeapTuple	newtup = NULL;
	HeapTuple	oldtup = NULL;

	check_trigger(fcinfo, "almanac._mirror_row");
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "almanac._mirror_row() must fire AFTER ... FOR EACH ROW");
	rel = td->tg_relation;
	m = almanac_mirror_lookup(RelationGetRelid(rel));
	if (m == NULL || !m->enabled)
		return PointerGetDatum(NULL);
	almanac_mirror_note_write(m->relid);

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		newtup = td->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		oldtup = td->tg_trigtuple;
		newtup = td->tg_newtuple;
	}
	else
		oldtup = td->tg_trigtuple;

	desc = RelationGetDescr(rel);
	a = palloc(sizeof(AlmanacAccess));
	almanac_mirror_access(m, a, true);
	initStringInfo(&key);
	initStringInfo(&oldkey);
	initStringInfo(&image);
	values = palloc(sizeof(Datum) * desc->natts);
	isnull = palloc(sizeof(bool) * desc->natts);
	if (oldtup)
	{
		oldvalues = palloc(sizeof(Datum) * desc->natts);
		oldisnull = palloc(sizeof(bool) * desc->natts);
		heap_deform_tuple(oldtup, desc, oldvalues, oldisnull);
		almanac_mirror_row_key(m, &oldkey, oldvalues, oldisnull);
	}
	if (newtup)
	{
		heap_deform_tuple(newtup, desc, values, isnull);
		almanac_mirror_row_key(m, &key, values, isnull);
	}

	if (m->latest_attno)
	{
		if (newtup)
			recompute_latest(m, a, rel, values, isnull, &key, &image);
		if (oldtup && (!newtup || oldkey.len != key.len ||
					   memcmp(oldkey.data, key.data, key.len) != 0))
			recompute_latest(m, a, rel, oldvalues, oldisnull, &oldkey, &image);
	}
	else
	{
		/* a key that changed moves the row: the old key goes */
		if (oldtup && (!newtup || oldkey.len != key.len ||
					   memcmp(oldkey.data, key.data, key.len) != 0))
			almanac_mirror_erase(m, a, oldkey.data, oldkey.len);
		if (newtup)
		{
			row_image(m, &image, desc, values, isnull);
			almanac_mirror_put(m, a, key.data, key.len, image.data, image.len);
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
	almanac_mirror_scan(m, e.a, NULL, NULL, snap, erase_row, &e);
	UnregisterSnapshot(snap);
	return PointerGetDatum(NULL);
}
