/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  almanac.verify and almanac.resync.  See verify.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "almanac.h"
#include "codec/valuecodec.h"
#include "mirror/mirror.h"
#include "mirror/verify.h"

#define PROGRESS_EVERY 100000

typedef struct SyncState
{
	Relation	rel;
	AlmanacMirror *m;
	const AlmanacSyncRange *range;
	Snapshot	snapshot;
	bool		repair;
	ReturnSetInfo *out;
	AlmanacAccess *a;
	AttrNumber	chain_attno;
	AttrNumber	block_attno;
	TupleTableSlot *slot;
	Datum	   *values;
	bool	   *isnull;
	StringInfoData image;
	int64		differences;
	int64		rows;
} SyncState;

static void
progress(SyncState *s, const char *what)
{
	if (++s->rows % PROGRESS_EVERY == 0)
		ereport(NOTICE,
				(errmsg("%s of \"%s\": " INT64_FORMAT " rows compared, " INT64_FORMAT " differences",
						what, RelationGetRelationName(s->rel), s->rows, s->differences)));
	CHECK_FOR_INTERRUPTS();
}

/* the row's chain and block number are in the range */
static bool
in_range(SyncState *s, const Datum *values, const bool *isnull)
{
	const AlmanacSyncRange *r = s->range;

	if (r == NULL)
		return true;
	if (r->chain_id)
	{
		if (isnull[s->chain_attno - 1])
			return false;
		if (DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID,
												 values[s->chain_attno - 1],
												 PointerGetDatum(r->chain_id))) == false)
			return false;
	}
	if (r->has_from || r->has_to)
	{
		int64		b;

		if (isnull[s->block_attno - 1])
			return false;
		b = DatumGetInt64(values[s->block_attno - 1]);
		if ((r->has_from && b < r->from) || (r->has_to && b > r->to))
			return false;
	}
	return true;
}

static void
difference(SyncState *s, const char *key, size_t klen, const char *kind)
{
	s->differences++;
	if (s->out)
	{
		Datum		v[2];
		bool		n[2] = {false, false};

		v[0] = PointerGetDatum(almanac_bytes_to_bytea(key, klen));
		v[1] = CStringGetTextDatum(kind);
		tuplestore_putvalues(s->out->setResult, s->out->setDesc, v, n);
	}
}

/* pass 1: a heap row that should be in the mirror as it is */
static void
check_heap_row(SyncState *s, const Datum *values, const bool *isnull)
{
	TupleDesc	desc = RelationGetDescr(s->rel);
	StringInfoData key;
	const char *stored;
	uint32		len;

	progress(s, s->repair ? "resync" : "verify");
	if (!in_range(s, values, isnull))
		return;
	initStringInfo(&key);
	almanac_mirror_row_key(s->m, &key, values, isnull);
	resetStringInfo(&s->image);
	almanac_value_encode(&s->image, desc, s->m->table.values, values, isnull, NULL);
	stored = almanac_mirror_read(s->a, key.data, key.len, s->snapshot, true, &len);
	if (stored == NULL || len != (uint32) s->image.len ||
		memcmp(stored, s->image.data, len) != 0)
	{
		difference(s, key.data, key.len, stored == NULL ? "missing" : "different");
		if (s->repair)
			almanac_mirror_put(s->m, s->a, key.data, key.len, s->image.data, s->image.len);
	}
	pfree(key.data);
}

static void
heap_pass(SyncState *s)
{
	TupleTableSlot *slot = s->slot;

	if (s->m->latest_attno == 0)
	{
		TableScanDesc scan = table_beginscan(s->rel, s->snapshot, 0, NULL);

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			slot_getallattrs(slot);
			check_heap_row(s, slot->tts_values, slot->tts_isnull);
		}
		table_endscan(scan);
	}
	else
	{
		/*
		 * The unique index (key columns, latest column) in order: the last
		 * row of each run of equal keys is the key's latest.
		 */
		Relation	irel = index_open(s->m->index_oid, AccessShareLock);
		IndexScanDesc scan = index_beginscan(s->rel, irel, s->snapshot, 0, 0);
		TupleTableSlot *last = table_slot_create(s->rel, NULL);
		StringInfoData key;
		StringInfoData lastkey;
		bool		have = false;

		initStringInfo(&key);
		initStringInfo(&lastkey);
		index_rescan(scan, NULL, 0, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			slot_getallattrs(slot);
			almanac_mirror_row_key(s->m, &key, slot->tts_values, slot->tts_isnull);
			if (have && (key.len != lastkey.len || memcmp(key.data, lastkey.data, key.len) != 0))
				check_heap_row(s, last->tts_values, last->tts_isnull);
			ExecCopySlot(last, slot);
			slot_getallattrs(last);
			resetStringInfo(&lastkey);
			appendBinaryStringInfo(&lastkey, key.data, key.len);
			have = true;
		}
		if (have)
			check_heap_row(s, last->tts_values, last->tts_isnull);
		index_endscan(scan);
		index_close(irel, NoLock);
		ExecDropSingleTupleTableSlot(last);
	}
}

/* pass 2: a mirror row whose key the heap must have */
static void
check_mirror_row(void *arg, const char *key, size_t klen, const char *image, uint32 len)
{
	SyncState  *s = arg;
	Datum		keyvalues[INDEX_MAX_KEYS];

	progress(s, s->repair ? "resync" : "verify");
	if (!almanac_key_decode(key, klen, &s->m->table.layout, keyvalues))
	{
		/* not a key of this layout: nothing the heap can have */
		difference(s, key, klen, "extra");
		if (s->repair)
			almanac_mirror_erase(s->m, s->a, key, klen);
		return;
	}
	if (almanac_mirror_heap_lookup(s->m, s->rel, s->snapshot, keyvalues, s->slot))
		return;					/* pass 1 compared it */

	/*
	 * The range applies to the row the mirror holds; its image is decoded
	 * only when written with the table's current shape.
	 */
	if (s->range && (s->range->has_from || s->range->has_to) && !s->m->altered)
	{
		TupleDesc	desc = RelationGetDescr(s->rel);

		almanac_value_decode(image, len, desc, s->m->table.values, s->values, s->isnull, NULL);
		if (!in_range(s, s->values, s->isnull))
			return;
	}
	difference(s, key, klen, "extra");
	if (s->repair)
		almanac_mirror_erase(s->m, s->a, key, klen);
}

int64
almanac_mirror_sync(Relation rel, AlmanacMirror *m, const AlmanacSyncRange *range,
					Snapshot snapshot, bool repair, ReturnSetInfo *out)
{
	SyncState	s;
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData lower;
	StringInfoData upper;

	memset(&s, 0, sizeof(s));
	s.rel = rel;
	s.m = m;
	s.range = range;
	s.snapshot = snapshot;
	s.repair = repair;
	s.out = out;
	s.chain_attno = m->table.keyattrs[0];
	s.block_attno = InvalidAttrNumber;
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped &&
			strcmp(NameStr(TupleDescAttr(desc, i)->attname), "block_number") == 0 &&
			TupleDescAttr(desc, i)->atttypid == INT8OID)
			s.block_attno = i + 1;
	if (range && (range->has_from || range->has_to) && s.block_attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table \"%s\" has no bigint column \"block_number\" to compare a block range of",
						RelationGetRelationName(rel))));
	if (range && range->chain_id &&
		(m->nkeys < 1 || m->table.layout.typids[0] != TEXTOID))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("the key of table \"%s\" does not start with a text chain_id",
						RelationGetRelationName(rel))));
	s.a = palloc(sizeof(AlmanacAccess));
	almanac_mirror_access(m, s.a, repair);
	if (repair)
	{
		/* also when nothing differs: see almanac_mirror_rewritten_after */
		almanac_mirror_note_rewrite(m->relid, snapshot);
		almanac_reader_catch_up(s.a->reader);
	}
	s.slot = table_slot_create(rel, NULL);
	s.values = palloc(sizeof(Datum) * desc->natts);
	s.isnull = palloc(sizeof(bool) * desc->natts);
	initStringInfo(&s.image);

	heap_pass(&s);

	/* the mirror's keys: of the chain when one is given */
	initStringInfo(&lower);
	initStringInfo(&upper);
	if (range && range->chain_id)
	{
		Datum		chain = PointerGetDatum(range->chain_id);

		almanac_key_encode(&lower, &m->table.layout, 1, &chain, true);
		almanac_prefix_end(&lower, &upper);
	}
	almanac_mirror_scan(m, s.a, &lower, &upper, snapshot, check_mirror_row, &s);
	ExecDropSingleTupleTableSlot(s.slot);
	return s.differences;
}

static void
range_args(FunctionCallInfo fcinfo, AlmanacSyncRange *r)
{
	memset(r, 0, sizeof(*r));
	if (!PG_ARGISNULL(1))
		r->chain_id = PG_GETARG_TEXT_PP(1);
	if (!PG_ARGISNULL(2))
	{
		r->has_from = true;
		r->from = PG_GETARG_INT64(2);
	}
	if (!PG_ARGISNULL(3))
	{
		r->has_to = true;
		r->to = PG_GETARG_INT64(3);
	}
}

static void
require_table(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the table to compare with its mirror must not be NULL")));
}

/* almanac.verify(regclass, chain_id, from_block, to_block) */
PG_FUNCTION_INFO_V1(almanac_verify_sql);
Datum
almanac_verify_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel;
	AlmanacMirror *m;
	AlmanacSyncRange range;
	AclResult	acl;

	require_table(fcinfo);
	range_args(fcinfo, &range);
	InitMaterializedSRF(fcinfo, 0);
	rel = table_open(PG_GETARG_OID(0), AccessShareLock);
	acl = pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, RelationGetRelationName(rel));

	/*
	 * The statement's snapshot judges both sides, so that the differences
	 * are those of the rows this transaction sees (a caller joins them with
	 * the table).  One that cannot judge the mirror (an enable_mirror,
	 * resync or TRUNCATE committed after it, or this transaction's own
	 * rewrite from a newer snapshot) would report differences the mirror
	 * does not have: refuse rather than judge with another snapshot, whose
	 * keys this transaction's own reads of the table would not match
	 * (mirror_verify_snapshot.spec).  The descriptor must be no older than
	 * the snapshot: a lock this transaction already holds takes in no
	 * invalidation.
	 */
	AcceptInvalidationMessages();
	m = almanac_mirror_get(rel);
	almanac_mirror_require_judge(rel, m, GetActiveSnapshot(), "almanac.verify");
	(void) almanac_mirror_sync(rel, m, &range, GetActiveSnapshot(), false, rsinfo);
	table_close(rel, NoLock);
	return (Datum) 0;
}

/* almanac.resync(regclass, chain_id, from_block, to_block) */
PG_FUNCTION_INFO_V1(almanac_resync_sql);
Datum
almanac_resync_sql(PG_FUNCTION_ARGS)
{
	Relation	rel;
	AlmanacMirror *m;
	AlmanacSyncRange range;
	Snapshot	snap;
	int64		n;
	bool		whole;

	require_table(fcinfo);
	range_args(fcinfo, &range);
	whole = range.chain_id == NULL && !range.has_from && !range.has_to;
	rel = almanac_mirror_open_owned(PG_GETARG_OID(0), ShareLock);
	m = almanac_mirror_get(rel);
	if (!m->enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the mirror of table \"%s\" is disabled", RelationGetRelationName(rel)),
				 errhint("almanac.enable_mirror() fills it again.")));
	/* a range of a table whose shape changed would leave old images elsewhere */
	if (m->altered && !whole)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" was altered since its mirror was written", RelationGetRelationName(rel)),
				 errhint("Resync the whole table: almanac.resync('%s').", RelationGetRelationName(rel))));
	if (whole)
		almanac_mirror_require_triggers(rel);
	snap = RegisterSnapshot(GetLatestSnapshot());
	n = almanac_mirror_sync(rel, m, &range, snap, true, NULL);
	UnregisterSnapshot(snap);
	if (whole)
		almanac_mirror_catalog_update(RelationGetRelid(rel), "in_sync = true, signature = $2, timeline = almanac._wal_timeline()",
									  almanac_mirror_signature(rel, m->key_order));
	else
	{
		/*
		 * A new version of the row all the same: its xmin tells the router
		 * and verify that a snapshot older than this transaction does not
		 * see the repairs (almanac_mirror_seen_by).
		 */
		almanac_mirror_catalog_update(RelationGetRelid(rel), "in_sync = in_sync", NULL);
	}
	table_close(rel, NoLock);
	PG_RETURN_INT64(n);
}
