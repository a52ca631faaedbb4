/*-------------------------------------------------------------------------
 *
 * range.c
 *	  The router's ordered reads of a key range (router.h: AlmanacRange):
 *	  the rows of a key prefix whose next key column lies in [lo, hi],
 *	  newest first (RANGE), and the newest rows of a shorter prefix across
 *	  every value of the column after it (RECENT), from the mirror or, with
 *	  the same snapshot, from the heap's unique index on the key.
 *
 * Both serve the events mirror, keyed
 *	event:{chain_id}:{contract_address}:{event_type}:{block_number}:{log_index}
 * with block_number and log_index descending (keycodec.h: complemented
 * big-endian), so a contract's events of one type are newest first in key
 * order, docs/router.md.  RANGE is one forward iterator bounded by
 * [prefix:hi, prefix:lo] (a contract and topic0 over a block range; a
 * forward step costs RocksDB about two thirds of a reverse one,
 * docs/benchmarks.md); RECENT (the latest N events of a contract, whatever
 * their topic0) walks the contract's keys forward, one iterator per event
 * type: the first key names the type, its newest N rows follow, and the next
 * iterator starts where the type's keys end; the rows are merged by
 * (block_number, log_index).  A mirror whose order columns ascend (a
 * catalog from before key_descending) is read the same way backward.
 * One Seek per event type of the contract plus at most N rows per type,
 * instead of a second key space that every ingested event would pay a put
 * for (docs/router.md: measured).
 *
 * The heap reads walk the same index (chain_id, contract_address,
 * event_type, block_number, log_index) the same way, so a fallback costs
 * what the mirror read costs, in the heap.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "optimizer/optimizer.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "almanac.h"
#include "codec/valuecodec.h"
#include "mirror/mirror.h"
#include "router/router.h"

/* one row of a RECENT read, before the merge */
typedef struct RangeRow
{
	int64		order1;			/* the last two key columns: the order */
	int64		order2;
	char	   *image;			/* the mirror's image, or */
	uint32		len;
	HeapTuple	tuple;			/* the heap's row */
} RangeRow;

int64
almanac_range_int(Oid typid, Datum d)
{
	switch (typid)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		default:
			return DatumGetInt64(d);
	}
}

/* an int64 as a value of an integer key column (the caller clamped it) */
static Datum
int_datum(Oid typid, int64 v)
{
	switch (typid)
	{
		case INT2OID:
			return Int16GetDatum((int16) v);
		case INT4OID:
			return Int32GetDatum((int32) v);
		default:
			return Int64GetDatum(v);
	}
}

int64
almanac_range_type_max(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
			return PG_INT16_MAX;
		case INT4OID:
			return PG_INT32_MAX;
		default:
			return PG_INT64_MAX;
	}
}

/* ---- the heap ---- */

/* a btree scan key on index column col (1-based) of the index's own type */
static void
index_key(AlmanacRange *r, ScanKey sk, int col, StrategyNumber strategy, Datum value)
{
	Relation	irel = r->irel;
	Oid			family = irel->rd_opfamily[col - 1];
	Oid			type = irel->rd_opcintype[col - 1];
	Oid			opno = get_opfamily_member(family, type, type, strategy);

	if (!OidIsValid(opno))
		elog(ERROR, "almanac: no operator of strategy %d for index column %d", strategy, col);
	ScanKeyEntryInitialize(sk, 0, col, strategy, type, irel->rd_indcollation[col - 1],
						   get_opcode(opno), value);
}

/*
 * Start a heap scan of the index: the equalities on the first n columns,
 * column n + 1 in [lo, hi] if bounded, else after 'after' if given.
 */
static void
heap_scan(AlmanacRange *r, int n, const Datum *eq, bool bounded, const Datum *after)
{
	ScanKeyData keys[INDEX_MAX_KEYS + 1];
	int			nk = 0;
	Oid			bt = r->m->table.layout.typids[n < r->m->nkeys ? n : 0];

	for (int i = 0; i < n; i++)
		index_key(r, &keys[nk++], i + 1, BTEqualStrategyNumber, eq[i]);
	if (bounded)
	{
		index_key(r, &keys[nk++], n + 1, BTGreaterEqualStrategyNumber, int_datum(bt, r->lo));
		index_key(r, &keys[nk++], n + 1, BTLessEqualStrategyNumber, int_datum(bt, r->hi));
	}
	else if (after)
		index_key(r, &keys[nk++], n + 1, BTGreaterStrategyNumber, *after);
	if (r->scan)
		index_endscan(r->scan);
	r->scan = index_beginscan(r->rel, r->irel, r->snapshot, nk, 0);
	index_rescan(r->scan, keys, nk, NULL, 0);
}

/* ---- the mirror ---- */

/*
 * RANGE: an iteration of the keys of the prefix whose next column is in
 * [lo, hi], newest first: forward when the column is stored descending (the
 * events mirror, keycodec.h), backward when it ascends.  The bounds come
 * from almanac_key_encode_bound, which gives the key-order lower and upper
 * bound of either direction.
 */
static void
mirror_range_iter(AlmanacRange *r)
{
	StringInfoData lower;
	StringInfoData upper;
	Datum		v[INDEX_MAX_KEYS];
	const AlmanacKeyLayout *layout = &r->m->table.layout;
	int			n = r->neq;
	Oid			bt = layout->typids[n];
	bool		desc = ALMANAC_KEY_DESCENDING(layout, n);

	initStringInfo(&lower);
	initStringInfo(&upper);
	memcpy(v, r->eq, sizeof(Datum) * n);
	if (desc)
	{
		/* keys from column = hi down to column = lo */
		v[n] = int_datum(bt, r->hi);
		(void) almanac_key_encode_bound(&lower, layout, n + 1, v, ALMANAC_KEY_LE);
		v[n] = int_datum(bt, r->lo);
		(void) almanac_key_encode_bound(&upper, layout, n + 1, v, ALMANAC_KEY_GE);
	}
	else
	{
		v[n] = int_datum(bt, r->lo);
		(void) almanac_key_encode_bound(&lower, layout, n + 1, v, ALMANAC_KEY_GE);
		if (r->hi == almanac_range_type_max(bt))
		{
			StringInfoData prefix;

			initStringInfo(&prefix);
			almanac_key_encode(&prefix, layout, n, v, true);
			almanac_prefix_end(&prefix, &upper);
		}
		else
		{
			v[n] = int_datum(bt, r->hi);
			(void) almanac_key_encode_bound(&upper, layout, n + 1, v, ALMANAC_KEY_LE);
		}
	}
	/* the store only, as every read of the router (router.h) */
	almanac_access_iter_begin(r->a, lower.data, lower.len, upper.data, upper.len,
							  (desc ? 0 : ALMANAC_ITER_BACKWARD) | ALMANAC_ITER_STORE_ONLY);
}

/* ---- RECENT: the newest rows of each value of the middle column, merged ---- */

static int
row_cmp_desc(const void *a, const void *b)
{
	const RangeRow *x = a;
	const RangeRow *y = b;

	if (x->order1 != y->order1)
		return x->order1 > y->order1 ? -1 : 1;
	if (x->order2 != y->order2)
		return x->order2 > y->order2 ? -1 : 1;
	return 0;
}

static void
add_row(AlmanacRange *r, RangeRow *row)
{
	if (r->nrows == r->maxrows)
	{
		r->maxrows = Max(16, r->maxrows * 2);
		r->rows = r->rows ? repalloc_huge(r->rows, sizeof(RangeRow) * r->maxrows)
			: palloc(sizeof(RangeRow) * r->maxrows);
	}
	r->rows[r->nrows++] = *row;
}

/*
 * RECENT from the mirror: one iterator per value of the middle column, in
 * the direction that meets its newest rows first (forward over descending
 * order columns, backward over ascending ones).  The first key names the
 * value met first; its keys are contiguous and newest first, so its newest
 * 'limit' rows follow at once, and the next iterator starts (forward) or
 * ends (backward) where that value's keys end or begin.
 */
static void
recent_collect_mirror(AlmanacRange *r)
{
	AlmanacMirror *m = r->m;
	const AlmanacKeyLayout *layout = &m->table.layout;
	int			n = r->neq;
	Oid			t1 = layout->typids[m->nkeys - 2];
	Oid			t2 = layout->typids[m->nkeys - 1];
	bool		forward = ALMANAC_KEY_DESCENDING(layout, m->nkeys - 2);
	StringInfoData lower;
	StringInfoData upper;
	StringInfoData value_prefix;
	Datum		kv[INDEX_MAX_KEYS];

	initStringInfo(&lower);
	almanac_key_encode(&lower, layout, n, r->eq, true);
	initStringInfo(&upper);
	almanac_prefix_end(&lower, &upper);
	initStringInfo(&value_prefix);
	for (;;)
	{
		AlmanacKvEntry e;
		int64		taken = 0;
		bool		more;

		CHECK_FOR_INTERRUPTS();
		almanac_access_iter_begin(r->a, lower.data, lower.len, upper.data, upper.len,
								  (forward ? 0 : ALMANAC_ITER_BACKWARD) | ALMANAC_ITER_STORE_ONLY);
		more = almanac_access_iter_next(r->a, r->snapshot, &e);
		/* the erased keys of another layout (a resync's) name no value */
		while (more && !almanac_key_decode(e.key, e.klen, layout, kv))
			more = almanac_access_iter_next(r->a, r->snapshot, &e);
		if (!more)
		{
			almanac_access_iter_end(r->a);
			break;
		}
		resetStringInfo(&value_prefix);
		almanac_key_encode(&value_prefix, layout, n + 1, kv, true);
		while (more && (r->limit < 0 || taken < r->limit) &&
			   e.klen >= (size_t) value_prefix.len &&
			   memcmp(e.key, value_prefix.data, value_prefix.len) == 0)
		{
			if (e.visible && almanac_key_decode(e.key, e.klen, layout, kv))
			{
				RangeRow	row = {0};

				row.order1 = almanac_range_int(t1, kv[m->nkeys - 2]);
				row.order2 = almanac_range_int(t2, kv[m->nkeys - 1]);
				row.image = palloc(e.tuple_len);
				memcpy(row.image, e.tuple, e.tuple_len);
				row.len = e.tuple_len;
				add_row(r, &row);
				taken++;
			}
			more = almanac_access_iter_next(r->a, r->snapshot, &e);
		}
		almanac_access_iter_end(r->a);
		/* the values after (forward) or before (backward) this one */
		if (forward)
			almanac_prefix_end(&value_prefix, &lower);
		else
		{
			resetStringInfo(&upper);
			appendBinaryStringInfo(&upper, value_prefix.data, value_prefix.len);
		}
	}
}

/* collect the newest 'limit' rows of every value, then sort them, in r->cxt */
static void
recent_collect(AlmanacRange *r)
{
	AlmanacMirror *m = r->m;
	int			n = r->neq;
	int			o1 = m->nkeys - 2;
	int			o2 = m->nkeys - 1;
	Oid			t1 = m->table.layout.typids[o1];
	Oid			t2 = m->table.layout.typids[o2];
	Datum		eq[INDEX_MAX_KEYS];
	Datum		value = (Datum) 0;
	bool		have = false;
	MemoryContext old = MemoryContextSwitchTo(r->cxt);

	int16		typlen;
	bool		typbyval;

	get_typlenbyval(m->table.layout.typids[n], &typlen, &typbyval);
	memcpy(eq, r->eq, sizeof(Datum) * n);
	if (!r->heap)
		recent_collect_mirror(r);
	else
		for (;;)
		{
			int64		taken = 0;
			bool		isnull;

			CHECK_FOR_INTERRUPTS();
			/* the next value: the first index entry past the previous one */
			heap_scan(r, n, eq, false, have ? &value : NULL);
			if (!index_getnext_slot(r->scan, ForwardScanDirection, r->heapslot))
				break;
			value = datumCopy(slot_getattr(r->heapslot, m->table.keyattrs[n], &isnull),
							  typbyval, typlen);
			have = true;
			/* its newest rows */
			eq[n] = value;
			heap_scan(r, n + 1, eq, false, NULL);
			while ((r->limit < 0 || taken < r->limit) &&
				   index_getnext_slot(r->scan, BackwardScanDirection, r->heapslot))
			{
				RangeRow	row = {0};

				row.order1 = almanac_range_int(t1, slot_getattr(r->heapslot, m->table.keyattrs[o1], &isnull));
				row.order2 = almanac_range_int(t2, slot_getattr(r->heapslot, m->table.keyattrs[o2], &isnull));
				row.tuple = ExecCopySlotHeapTuple(r->heapslot);
				add_row(r, &row);
				taken++;
			}
		}
	if (r->nrows > 1)
		qsort(r->rows, r->nrows, sizeof(RangeRow), row_cmp_desc);
	MemoryContextSwitchTo(old);
}

/* a row of the mirror, decoded into the slot: the skipped columns NULL */
static void
decode_row(AlmanacRange *r, const char *image, uint32 len, TupleTableSlot *slot)
{
	TupleDesc	desc = slot->tts_tupleDescriptor;

	if (r->skip)
		for (int i = 0; i < desc->natts; i++)
			if (r->skip[i])
			{
				slot->tts_values[i] = (Datum) 0;
				slot->tts_isnull[i] = true;
			}
	almanac_value_decode(image, len, desc, r->m->table.values, slot->tts_values,
						 slot->tts_isnull, r->skip);
	ExecStoreVirtualTuple(slot);
}

/* ---- the interface ---- */

bool *
almanac_range_skip(Plan *plan, TupleDesc desc)
{
	Bitmapset  *used = NULL;
	bool	   *skip;
	bool		any = false;

	pull_varattnos((Node *) plan->targetlist, 1, &used);
	pull_varattnos((Node *) plan->qual, 1, &used);
	/* a whole-row reference reads every column */
	if (bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, used))
		return NULL;
	skip = palloc(sizeof(bool) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		skip[i] = !bms_is_member(i + 1 - FirstLowInvalidHeapAttributeNumber, used);
		any |= skip[i];
	}
	bms_free(used);
	if (!any)
	{
		pfree(skip);
		return NULL;
	}
	return skip;
}

void
almanac_range_begin(AlmanacRange *r)
{
	r->started = true;
	r->emitted = 0;
	r->next_row = 0;
	r->nrows = 0;
	if (r->empty || r->limit == 0)
		return;
	if (r->heap && r->irel == NULL)
	{
		r->irel = index_open(r->m->index_oid, AccessShareLock);
		r->heapslot = table_slot_create(r->rel, NULL);
	}
	if (r->recent)
		recent_collect(r);
	else if (r->heap)
		heap_scan(r, r->neq, r->eq, true, NULL);
	else
	{
		if (r->a->cf == NULL)
		{
			r->empty = true;	/* never written */
			return;
		}
		mirror_range_iter(r);
	}
}

bool
almanac_range_next(AlmanacRange *r, TupleTableSlot *slot, MemoryContext rowcxt)
{
	if (!r->started)
		almanac_range_begin(r);
	if (r->empty || (r->limit >= 0 && r->emitted >= r->limit))
		return false;
	if (r->recent)
	{
		RangeRow   *row;

		if (r->next_row >= r->nrows)
			return false;
		row = &r->rows[r->next_row++];
		if (row->tuple)
			ExecForceStoreHeapTuple(row->tuple, slot, false);
		else
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			decode_row(r, row->image, row->len, slot);
			MemoryContextSwitchTo(old);
		}
		r->emitted++;
		return true;
	}
	if (r->heap)
	{
		if (!index_getnext_slot(r->scan, BackwardScanDirection, r->heapslot))
			return false;
		ExecCopySlot(slot, r->heapslot);
		r->emitted++;
		return true;
	}
	for (;;)
	{
		AlmanacKvEntry e;
		MemoryContext old = MemoryContextSwitchTo(rowcxt);
		bool		more = almanac_access_iter_next(r->a, r->snapshot, &e);

		if (more && e.visible)
		{
			/*
			 * The decoded datums point into the decoder's own copy of the
			 * image; the columns the plan never reads are not checked inside
			 * (the topics array, the data) and those after the last it reads
			 * not deformed.
			 */
			decode_row(r, e.tuple, e.tuple_len, slot);
			r->emitted++;
		}
		MemoryContextSwitchTo(old);
		if (!more)
			return false;
		if (e.visible)
			return true;
		MemoryContextReset(rowcxt);
	}
}

void
almanac_range_end(AlmanacRange *r)
{
	if (r->scan)
		index_endscan(r->scan);
	r->scan = NULL;
	if (r->a)
		almanac_access_iter_end(r->a);
	if (r->cxt)
		MemoryContextReset(r->cxt);
	r->rows = NULL;
	r->nrows = r->maxrows = 0;
	r->started = false;
}

void
almanac_range_close(AlmanacRange *r)
{
	almanac_range_end(r);
	if (r->heapslot)
		ExecDropSingleTupleTableSlot(r->heapslot);
	r->heapslot = NULL;
	if (r->irel)
		index_close(r->irel, NoLock);
	r->irel = NULL;
}
