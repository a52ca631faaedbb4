/*-------------------------------------------------------------------------
 *
 * analyze.c
 *	  ANALYZE of almanac_rocksdb foreign tables: a random sample of the rows
 *	  the current snapshot sees, from one pass over the table's key prefix.
 *
 * The planner then estimates from pg_class.reltuples and pg_statistic as
 * for any table (plan.c); it never calls the store.  The pass reads every
 * key of the table once (RocksDB has no cheap random sample), with bounded
 * memory: Vitter's reservoir sampling, as file_fdw does, keeps targrows rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/vacuum.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/sampling.h"
#include "utils/snapmgr.h"

#include "fdw/fdw.h"
#include "store/store.h"

/*
 * AcquireSampleRowsFunc: up to targrows rows, chosen uniformly among the
 * visible ones; *totalrows is their exact count, *totaldeadrows the keys
 * whose newest version the snapshot does not see (deleted or not yet
 * committed), which the owner prunes later.
 */
static int
almanac_acquire_sample_rows(Relation rel, int elevel, HeapTuple *rows, int targrows,
							double *totalrows, double *totaldeadrows)
{
	MemoryContext scancxt = AllocSetContextCreate(CurrentMemoryContext, "almanac analyze",
												  ALLOCSET_DEFAULT_SIZES);
	MemoryContext rowcxt = AllocSetContextCreate(scancxt, "almanac analyze row",
												 ALLOCSET_SMALL_SIZES);
	MemoryContext callercxt = MemoryContextSwitchTo(scancxt);
	AlmanacAccess *a = palloc0(sizeof(AlmanacAccess));
	Snapshot	snapshot = GetActiveSnapshot();
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
	ReservoirStateData rstate;
	double		rowstoskip = -1;
	double		seen = 0;
	double		dead = 0;
	int			nrows = 0;
	StringInfoData lower,
				upper;

	/* samples are rows: read as the table's owner, whom ANALYZE runs as */
	almanac_check_key_space_access(rel, GetUserId(), ACL_SELECT);
	/* the read options and iterator are freed with scancxt, ERROR or not */
	almanac_access_begin(a, almanac_table_open(rel), 0);

	reservoir_init_selection_state(&rstate, targrows);
	initStringInfo(&lower);
	initStringInfo(&upper);
	almanac_kv_key(a->t, &lower, 0, NULL, true);
	almanac_prefix_end(&lower, &upper);
	/*
	 * What is stored, without the transaction's writes; a one-off pass:
	 * don't evict the block cache's working set.
	 */
	almanac_access_iter_begin(a, lower.data, lower.len, upper.data, upper.len,
							  ALMANAC_ITER_STORE_ONLY | ALMANAC_ITER_NO_FILL_CACHE);
	for (;;)
	{
		AlmanacKvEntry e;
		int			pos = -1;

		vacuum_delay_point();
		MemoryContextReset(rowcxt);
		MemoryContextSwitchTo(rowcxt);
		if (!almanac_access_iter_next(a, snapshot, &e))
			break;
		if (!e.visible)
		{
			dead++;
			MemoryContextSwitchTo(scancxt);
			continue;
		}
		/* as file_fdw and the heap: the first targrows rows, then replace at random */
		if (nrows < targrows)
			pos = nrows++;
		else
		{
			if (rowstoskip < 0)
				rowstoskip = reservoir_get_next_S(&rstate, seen, targrows);
			if (rowstoskip <= 0)
			{
				pos = (int) (targrows * sampler_random_fract(&rstate.randstate));
				heap_freetuple(rows[pos]);
			}
			rowstoskip -= 1;
		}
		seen += 1;
		if (pos >= 0)
		{
			almanac_row_to_slot(a, slot, e.key, e.klen, e.tuple, e.tuple_len);
			MemoryContextSwitchTo(callercxt);
			rows[pos] = heap_form_tuple(RelationGetDescr(rel), slot->tts_values,
										slot->tts_isnull);
		}
		MemoryContextSwitchTo(scancxt);
	}
	MemoryContextSwitchTo(scancxt);

	ExecDropSingleTupleTableSlot(slot);
	MemoryContextSwitchTo(callercxt);
	MemoryContextDelete(scancxt);

	*totalrows = seen;
	*totaldeadrows = dead;
	ereport(elevel,
			(errmsg("\"%s\": %.0f live rows and %.0f keys without a visible row in the store; %d rows in sample",
					RelationGetRelationName(rel), seen, dead, nrows)));
	return nrows;
}

/*
 * AnalyzeForeignTable: every almanac table can be analyzed.  The page count
 * is not known before the pass; it is left at one page, which the planner
 * does not use for these tables.
 */
bool
almanacAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
						   BlockNumber *totalpages)
{
	*func = almanac_acquire_sample_rows;
	*totalpages = 1;
	return true;
}
