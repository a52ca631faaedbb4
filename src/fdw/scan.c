/*-------------------------------------------------------------------------
 *
 * scan.c
 *	  Reading almanac_rocksdb foreign tables: Get, MultiGet and bounded
 *	  iterators on the backend's secondary instance, over the transaction's
 *	  own buffered writes, judged by the statement's snapshot.
 *
 * plan.c chose the access kind; here the key values are computed when
 * the scan starts (Params included) and turned into a key, a sorted set of
 * keys, or the [lower, upper) byte range of an iterator.  A key value that
 * no key can hold (NULL, a negative integer) matches nothing.
 *
 * Rows are read through kv/access.h, whose RocksDB objects (read options,
 * iterator) are released by a reset callback of the memory context the
 * scan lives in, so an ERROR anywhere in the query frees them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "access/xact.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "fdw/fdw.h"
#include "kv/nested.h"

typedef struct AlmanacScanState
{
	AlmanacAccess a;
	AlmanacAccessKind kind;
	int			neq;
	int			lower_bound;	/* AlmanacKeyBound or -1 */
	int			upper_bound;
	int			direction;		/* -1: backward */
	List	   *eq_states;		/* per equality value: a Const, or the
								 * ExprState that computes it */
	ExprState  *lower_state;
	ExprState  *upper_state;
	ExprState  *array_state;
	Snapshot	snapshot;
	MemoryContext rowcxt;		/* the current row's decoded values; a GET
								 * uses the executor's per-tuple memory */
	MemoryContext scancxt;		/* MULTIGET's keys and values, until a rescan */
	bool		started;
	bool		done;
	/* the key lock each row takes, or NoLock (plan.c: scan_lock) */
	LOCKMODE	lock_mode;
	LockWaitPolicy lock_wait;
	/*
	 * SELECT ... FOR UPDATE/SHARE: registered with kv/nested.h as a locking
	 * scan of its command (no_batch stays NULL), so that the writes of the
	 * commands it triggers to its keys are recorded (lock_row)
	 */
	bool		locks_for_select;
	rocksdb_writebatch_wi_t *no_batch;
	/*
	 * registered with kv/nested.h as an open reader with its snapshot's
	 * command id, so that the commands run while it is open (a function of
	 * its statement, the statements between a cursor's fetches) keep the
	 * writes they replace for it
	 */
	bool		reader_open;
	MemoryContextCallback nested_close;
	/*
	 * A locking scan's filter: evaluated by lock_row before the lock (a row
	 * that fails it is not locked) and again on a newer version it returns,
	 * and taken out of the executor's qual, which would evaluate it once
	 * more on every row returned (a volatile function in it ran twice)
	 */
	ExprState  *lock_qual;
	/* iterator scans: [lower, upper); GET: lower is the key */
	StringInfoData lower;
	StringInfoData upper;
	/* MULTIGET: the keys in byte order, distinct, their values (NULL: none) */
	int			nkeys;
	int			next;
	char	  **keys;
	size_t	   *klens;
	char	  **values;
	size_t	   *vlens;
} AlmanacScanState;

/*
 * The scan ends: no longer an open reader, nor, a locking SELECT's, an open
 * writer (kv/nested.h)
 */
static void
scan_nested_close(void *arg)
{
	AlmanacScanState *s = arg;

	if (s->reader_open)
		almanac_nested_reader_close(s);
	s->reader_open = false;
	if (s->locks_for_select)
		almanac_nested_writer_close(&s->no_batch);
	s->locks_for_select = false;
}

/*
 * BeginForeignScan: attach the store, catch the secondary up (after the
 * statement's snapshot was taken), prepare the key expressions.  Nothing is
 * read until the first row is asked for.
 */
void
almanacBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fs = (ForeignScan *) node->ss.ps.plan;
	AlmanacScanState *s = palloc0(sizeof(AlmanacScanState));
	EState	   *estate = node->ss.ps.state;
	List	   *states = NIL;
	int			n = 0;
	ListCell   *lc;

	node->fdw_state = s;
	s->kind = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_KIND));
	s->neq = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_NEQ));
	s->lower_bound = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_LOWER));
	s->upper_bound = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_UPPER));
	s->direction = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_DIRECTION));
	s->lock_mode = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_LOCK_MODE));
	s->lock_wait = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_LOCK_WAIT));
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	s->snapshot = estate->es_snapshot;

	/*
	 * The privileges the statement needs on this table, on every table that
	 * maps the same keys (keyspace.c).  An inheritance child or partition
	 * has none of its own (the parent's were checked): reading it reads.
	 */
	{
		RangeTblEntry *rte = exec_rt_fetch(fs->scan.scanrelid, estate);

		almanac_check_key_space_access(node->ss.ss_currentRelation,
									   OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId(),
									   rte->requiredPerms ? rte->requiredPerms : ACL_SELECT);
	}
	/* a lookup by key catches the reader up only for keys written since */
	almanac_access_begin(&s->a, almanac_table_open(node->ss.ss_currentRelation),
						 s->kind == ALMANAC_ACCESS_GET || s->kind == ALMANAC_ACCESS_MULTIGET ?
						 ALMANAC_ACCESS_POINT : 0);
	if (s->lock_mode != NoLock)
	{
		s->lock_qual = node->ss.ps.qual;
		node->ss.ps.qual = NULL;
	}
	s->nested_close.func = scan_nested_close;
	s->nested_close.arg = s;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &s->nested_close);
	almanac_nested_reader_open(s->snapshot->curcid, estate, s);
	s->reader_open = true;
	if (s->lock_mode != NoLock && estate->es_plannedstmt->commandType == CMD_SELECT)
	{
		almanac_nested_lock_scan_open(s->snapshot->curcid, s->a.store, s->a.cf_id, &s->no_batch);
		s->locks_for_select = true;
	}

	/*
	 * A plain read of many rows decodes only the columns the query uses
	 * (plan.c): the others stay NULL, and when no key column is used the key
	 * is not decoded.  Not a locking scan nor one feeding an
	 * UPDATE or DELETE (modify.c reads their rows), and not a Get, whose one
	 * row is not worth the setup.
	 */
	if (s->kind != ALMANAC_ACCESS_GET && s->lock_mode == NoLock &&
		estate->es_plannedstmt->commandType == CMD_SELECT)
	{
		Bitmapset  *needed = NULL;
		ListCell   *lc2;

		foreach(lc2, (List *) list_nth(fs->fdw_private, ALMANAC_PRIV_NEEDED))
			needed = bms_add_member(needed, intVal(lfirst(lc2)) - FirstLowInvalidHeapAttributeNumber);
		almanac_access_need(&s->a, needed);
	}
	/*
	 * fdw_exprs: the equality values, then lower, upper, array as present.
	 * An equality value that is a Const (the usual case) is used as it is,
	 * not compiled into an expression program at each execution.
	 */
	foreach(lc, fs->fdw_exprs)
	{
		Expr	   *e = lfirst(lc);

		if (foreach_current_index(lc) < s->neq && IsA(e, Const))
			states = lappend(states, e);
		else
			states = lappend(states, ExecInitExpr(e, (PlanState *) node));
	}
	s->eq_states = list_truncate(list_copy(states), s->neq);
	n = s->neq;
	if (s->lower_bound >= 0)
		s->lower_state = list_nth(states, n++);
	if (s->upper_bound >= 0)
		s->upper_state = list_nth(states, n++);
	if (s->kind == ALMANAC_ACCESS_MULTIGET)
		s->array_state = list_nth(states, n++);
	Assert(n == list_length(states));

	/*
	 * A scan that may pass over rows the snapshot does not see decodes each
	 * into a context reset for the next; a Get decodes its one row where
	 * IterateForeignScan runs, in memory the executor resets per row.
	 */
	if (s->kind != ALMANAC_ACCESS_GET)
		s->rowcxt = AllocSetContextCreate(estate->es_query_cxt, "almanac scan row",
										  ALLOCSET_SMALL_SIZES);
	if (s->kind == ALMANAC_ACCESS_MULTIGET)
		s->scancxt = AllocSetContextCreate(estate->es_query_cxt, "almanac scan keys",
										   ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&s->lower);
	initStringInfo(&s->upper);
}

/* evaluate a key value (a Const or an ExprState); false if no key can hold it */
static bool
key_value(Node *expr, ExprContext *econtext, Oid typid, Datum *value)
{
	bool		isnull;

	if (IsA(expr, Const))
	{
		*value = ((Const *) expr)->constvalue;
		isnull = ((Const *) expr)->constisnull;
	}
	else
		*value = ExecEvalExpr((ExprState *) expr, econtext, &isnull);
	return !isnull && almanac_key_value_in_domain(typid, *value);
}

/*
 * MULTIGET: the keys of the array's elements (values[0 .. neq-1] are the
 * equality columns), in byte order and distinct, so that each row comes
 * back once, as "= ANY" returns it.  Elements no key can hold (NULL, a
 * negative integer) match nothing.  In the scan's key context.
 */
static void
multiget_keys(AlmanacScanState *s, ExprContext *econtext, Datum *values)
{
	AlmanacKvTable *t = s->a.t;
	Oid			typid = t->layout.typids[s->neq];
	Datum		arraydatum;
	bool		isnull;
	ArrayType  *arr;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			n = 0;

	arraydatum = ExecEvalExpr(s->array_state, econtext, &isnull);
	if (isnull)
		return;
	arr = DatumGetArrayTypeP(arraydatum);
	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
					  &elems, &nulls, &nelems);

	s->keys = palloc(sizeof(char *) * Max(nelems, 1));
	s->klens = palloc(sizeof(size_t) * Max(nelems, 1));
	for (int i = 0; i < nelems; i++)
	{
		StringInfoData buf;

		if (nulls[i] || !almanac_key_value_in_domain(typid, elems[i]))
			continue;
		values[s->neq] = elems[i];
		initStringInfo(&buf);
		almanac_kv_key(t, &buf, t->layout.nkeys, values, false);
		s->keys[n] = buf.data;
		s->klens[n] = buf.len;
		n++;
	}
	s->nkeys = almanac_keys_sort_unique(n, s->keys, s->klens);
}

/*
 * MULTIGET: compute the keys, then look them up (the transaction's buffered
 * writes first, then the reader's row cache, the rest with one MultiGet).
 */
static void
multiget_start(AlmanacScanState *s, ExprContext *econtext, Datum *values)
{
	MemoryContext old;

	s->nkeys = 0;
	s->next = 0;
	MemoryContextReset(s->scancxt);
	old = MemoryContextSwitchTo(s->scancxt);
	multiget_keys(s, econtext, values);
	s->values = palloc(sizeof(char *) * Max(s->nkeys, 1));
	s->vlens = palloc(sizeof(size_t) * Max(s->nkeys, 1));
	almanac_access_lookup_many(&s->a, s->nkeys, s->keys, s->klens, s->values, s->vlens);
	MemoryContextSwitchTo(old);
}

/* compute the key, the set of keys, or the iterator's bounds; false: no rows */
static bool
scan_start(ForeignScanState *node, AlmanacScanState *s)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	AlmanacKvTable *t = s->a.t;
	Datum	   *values = palloc(sizeof(Datum) * t->layout.nkeys);
	int			i = 0;
	ListCell   *lc;

	resetStringInfo(&s->lower);
	resetStringInfo(&s->upper);
	foreach(lc, s->eq_states)
	{
		if (!key_value(lfirst(lc), econtext, t->layout.typids[i], &values[i]))
			return false;
		i++;
	}
	if (s->a.cf == NULL)
		return false;			/* the column family was never created: empty */

	switch (s->kind)
	{
		case ALMANAC_ACCESS_GET:
			almanac_kv_key(t, &s->lower, s->neq, values, false);
			return true;
		case ALMANAC_ACCESS_MULTIGET:
			multiget_start(s, econtext, values);
			return s->nkeys > 0;
		default:
			break;
	}

	/* iterators: the equality prefix, narrowed by the range's bounds */
	if (s->lower_state != NULL)
	{
		bool		isnull;

		values[s->neq] = ExecEvalExpr(s->lower_state, econtext, &isnull);
		if (isnull)
			return false;
		(void) almanac_key_encode_bound(&s->lower, &t->layout, s->neq + 1, values,
										s->lower_bound);
	}
	else
		almanac_kv_key(t, &s->lower, s->neq, values, true);

	if (s->upper_state != NULL)
	{
		bool		isnull;

		values[s->neq] = ExecEvalExpr(s->upper_state, econtext, &isnull);
		if (isnull ||
			!almanac_key_encode_bound(&s->upper, &t->layout, s->neq + 1, values,
									  s->upper_bound))
			return false;
	}
	else
	{
		StringInfoData prefix;

		initStringInfo(&prefix);
		almanac_kv_key(t, &prefix, s->neq, values, true);
		almanac_prefix_end(&prefix, &s->upper);
	}
	/* an empty range, such as BETWEEN 10 AND 5 */
	return s->upper.len == 0 ||
		almanac_key_cmp(s->lower.data, s->lower.len, s->upper.data, s->upper.len) < 0;
}

/*
 * A locking scan (plan.c: scan_lock), on a row the snapshot sees in slot:
 * if the row meets the scan's conditions (rows that do not are neither
 * locked nor returned), lock its key, and follow a newer version committed
 * meanwhile: 40001 under REPEATABLE READ and SERIALIZABLE, under READ
 * COMMITTED the newest version replaces the row in slot if it meets the
 * conditions too (checked again, as the heap's EvalPlanQual does), or,
 * deleted, the row is skipped.  The conditions are the scan's lock_qual,
 * which the executor does not evaluate once more.  A SELECT skips a row
 * that a command it triggered (a volatile function in its WHERE clause)
 * wrote after the scan began, as the heap's row lock, finding the tuple
 * modified by a later command of the transaction, skips it; so is a row
 * that a statement run since a cursor was declared wrote (while the cursor
 * is open, kv/nested.h keeps that statement's writes apart).  Returns
 * whether the row is to be returned.
 */
static bool
lock_row(ForeignScanState *node, AlmanacScanState *s, const char *key, size_t klen,
		 TupleTableSlot *slot)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	AlmanacKeyNow now;

	econtext->ecxt_scantuple = slot;
	if (s->lock_qual != NULL && !ExecQual(s->lock_qual, econtext))
		return false;

	/*
	 * A row that a later command changed (a statement run since a cursor
	 * was declared): the slot holds the row as the snapshot sees it, and
	 * the heap's lock, finding the tuple modified by a later command of the
	 * transaction, skips it.
	 */
	if (s->locks_for_select)
	{
		const char *prior;
		size_t		prior_len;

		if (almanac_nested_prior(s->a.store, s->a.cf_id, key, klen, s->snapshot->curcid,
								 &prior, &prior_len))
			return false;
	}
	if (!almanac_access_lock_key(&s->a, key, klen, s->lock_mode, s->lock_wait, s->snapshot, &now))
		return false;			/* SKIP LOCKED */
	if (s->locks_for_select &&
		almanac_nested_written_after(s->a.store, s->a.cf_id, key, klen, s->snapshot->curcid))
		return false;
	if (!now.changed)
		return true;
	if (IsolationUsesXactSnapshot())
		almanac_concurrent_update_error(s->a.t);
	if (!now.live)
		return false;
	almanac_row_to_slot(&s->a, slot, key, klen, now.tuple, now.tuple_len);
	return s->lock_qual == NULL || ExecQual(s->lock_qual, econtext);
}

/* a locking scan over an iterator: the next row, locked (lock_row) */
static bool
iter_next_locked(ForeignScanState *node, AlmanacScanState *s, TupleTableSlot *slot)
{
	for (;;)
	{
		AlmanacKvEntry e;
		MemoryContext old;
		bool		more;
		bool		keep = false;

		MemoryContextReset(s->rowcxt);
		old = MemoryContextSwitchTo(s->rowcxt);
		more = almanac_access_iter_next(&s->a, s->snapshot, &e);
		if (more && e.visible)
		{
			/* a copy: locking catches the reader up, under the open iterator */
			char	   *key = palloc(e.klen);

			memcpy(key, e.key, e.klen);
			almanac_row_to_slot(&s->a, slot, key, e.klen, e.tuple, e.tuple_len);
			keep = lock_row(node, s, key, e.klen, slot);
		}
		MemoryContextSwitchTo(old);
		if (!more)
		{
			ExecClearTuple(slot);
			return false;
		}
		if (keep)
			return true;
	}
}

/* IterateForeignScan: the next row the snapshot sees, or an empty slot */
TupleTableSlot *
almanacIterateForeignScan(ForeignScanState *node)
{
	AlmanacScanState *s = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	ExecClearTuple(slot);
	if (!s->started)
	{
		s->started = true;
		s->done = !scan_start(node, s);
		if (!s->done && s->kind == ALMANAC_ACCESS_GET)
		{
			/* its one row, in the executor's per-row memory */
			s->done = true;
			if (almanac_access_get_row(&s->a, s->snapshot, s->lower.data, s->lower.len, slot) &&
				s->lock_mode != NoLock &&
				!lock_row(node, s, s->lower.data, s->lower.len, slot))
				ExecClearTuple(slot);
			return slot;
		}
		/* a rescan opens a new iterator for its range */
		if (!s->done && s->kind != ALMANAC_ACCESS_MULTIGET)
			almanac_access_iter_begin(&s->a, s->lower.data, s->lower.len,
									  s->upper.data, s->upper.len,
									  s->direction < 0 ? ALMANAC_ITER_BACKWARD : 0);
	}
	if (s->done)
		return slot;

	if (s->kind == ALMANAC_ACCESS_MULTIGET)
	{
		while (s->next < s->nkeys)
		{
			int			i = s->next++;
			MemoryContext old;
			bool		found;

			if (s->values[i] == NULL)
				continue;
			MemoryContextReset(s->rowcxt);
			old = MemoryContextSwitchTo(s->rowcxt);
			found = almanac_access_value_to_slot(&s->a, s->snapshot, s->keys[i], s->klens[i],
												 s->values[i], s->vlens[i], slot);
			if (found && s->lock_mode != NoLock)
				found = lock_row(node, s, s->keys[i], s->klens[i], slot);
			MemoryContextSwitchTo(old);
			if (found)
				return slot;
		}
		/* the last key's row may have been refused by lock_row: not returned */
		s->done = true;
		ExecClearTuple(slot);
		return slot;
	}

	if (s->lock_mode != NoLock)
	{
		if (!iter_next_locked(node, s, slot))
			s->done = true;
	}
	else if (!almanac_access_iter_next_row(&s->a, s->snapshot, slot, s->rowcxt))
		s->done = true;
	return slot;
}

/* ReScanForeignScan: start again, recomputing the key values (they may be Params) */
void
almanacReScanForeignScan(ForeignScanState *node)
{
	AlmanacScanState *s = node->fdw_state;

	almanac_access_iter_end(&s->a);
	s->started = false;
	s->done = false;
}

/* EndForeignScan: release what the scan holds (the reset callback would too) */
void
almanacEndForeignScan(ForeignScanState *node)
{
	AlmanacScanState *s = node->fdw_state;

	if (s)
	{
		scan_nested_close(s);
		almanac_access_release(&s->a);
	}
}

/* ExplainForeignScan: the access kind, the column family, and in VERBOSE the key conditions */
void
almanacExplainForeignScan(ForeignScanState *node, struct ExplainState *es)
{
	ForeignScan *fs = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	AlmanacTableOptions *opts = almanac_table_options(RelationGetRelid(rel));
	AlmanacAccessKind kind = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_KIND));
	int			neq = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_NEQ));
	int			direction = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_DIRECTION));
	List	   *pushed = list_nth(fs->fdw_private, ALMANAC_PRIV_BOUNDS);
	int			nkeys = list_length(opts->key_columns);
	const char *access = NULL;

	switch (kind)
	{
		case ALMANAC_ACCESS_GET:
			access = "point lookup (Get)";
			break;
		case ALMANAC_ACCESS_MULTIGET:
			access = "multi-key lookup (MultiGet)";
			break;
		case ALMANAC_ACCESS_PREFIX:
			access = psprintf("prefix scan on %d of %d key columns", neq, nkeys);
			break;
		case ALMANAC_ACCESS_RANGE:
			access = psprintf("range scan on key column %d of %d", neq + 1, nkeys);
			break;
		case ALMANAC_ACCESS_FULL:
			access = "full scan of key prefix";
			break;
	}
	ExplainPropertyText("Almanac Access", access, es);
	if (direction != 0)
		ExplainPropertyText("Key Order", direction > 0 ? "ascending" : "descending", es);
	ExplainPropertyText("Column Family", opts->column_family, es);
	if (es->verbose)
	{
		if (opts->key_prefix)
			ExplainPropertyText("Key Prefix", opts->key_prefix, es);
		if (pushed != NIL)
		{
			List	   *context = deparse_context_for(RelationGetRelationName(rel),
													  RelationGetRelid(rel));
			StringInfoData buf;
			ListCell   *lc;

			initStringInfo(&buf);
			foreach(lc, pushed)
			{
				if (buf.len > 0)
					appendStringInfoString(&buf, " AND ");
				appendStringInfoString(&buf, deparse_expression(lfirst(lc), context, false, false));
			}
			ExplainPropertyText("Key Conditions", buf.data, es);
		}
	}
}
