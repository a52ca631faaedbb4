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
 * Every RocksDB object a scan creates (read options, iterator) is released
 * by a reset callback of the memory context the scan lives in (see
 * almanac_access_init), so an ERROR anywhere in the query frees them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/explain.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "fdw/fdw.h"
#include "kv/reader.h"
#include "kv/rowcache.h"
#include "store/store.h"
#include "kv/xact.h"

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
	/* iterator scans: [lower, upper); GET: lower is the key */
	StringInfoData lower;
	StringInfoData upper;
	/* MULTIGET: the keys in byte order, their values (NULL: none) */
	int			nkeys;
	int			next;
	char	  **keys;
	size_t	   *klens;
	char	  **values;
	size_t	   *vlens;
} AlmanacScanState;

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
	almanac_access_init(&s->a, node->ss.ss_currentRelation, false);
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

static int
compare_keys(const char *a, size_t alen, const char *b, size_t blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

typedef struct SortKey
{
	char	   *key;
	size_t		len;
} SortKey;

static int
sort_key_cmp(const void *a, const void *b)
{
	const SortKey *x = a;
	const SortKey *y = b;

	return compare_keys(x->key, x->len, y->key, y->len);
}

/*
 * MULTIGET: encode one key per array element (values[0 .. neq-1] are the
 * equality columns), sort them, drop duplicates (so each row comes back
 * once, as "= ANY" returns it), then look them up: the transaction's
 * buffered writes first, then the reader's row cache (kv/rowcache.h), the rest
 * with one MultiGet.
 */
static void
multiget_start(AlmanacScanState *s, ExprContext *econtext, Datum *values)
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
	SortKey    *sk;
	int			n = 0;
	const char **missing_keys;
	size_t	   *missing_lens;
	int		   *missing_at;
	int			nmissing = 0;
	rocksdb_pinnableslice_t **slices;
	char	  **errs;
	char	   *first_err = NULL;
	AlmanacRowCache *rows;
	MemoryContext old;

	s->nkeys = 0;
	s->next = 0;
	MemoryContextReset(s->scancxt);
	old = MemoryContextSwitchTo(s->scancxt);
	arraydatum = ExecEvalExpr(s->array_state, econtext, &isnull);
	if (isnull)
	{
		MemoryContextSwitchTo(old);
		return;
	}
	arr = DatumGetArrayTypeP(arraydatum);
	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
					  &elems, &nulls, &nelems);

	sk = palloc(sizeof(SortKey) * Max(nelems, 1));
	for (int i = 0; i < nelems; i++)
	{
		StringInfoData buf;

		if (nulls[i] || !almanac_key_value_in_domain(typid, elems[i]))
			continue;
		values[s->neq] = elems[i];
		initStringInfo(&buf);
		almanac_table_key(t, &buf, t->layout.nkeys, values, false);
		sk[n].key = buf.data;
		sk[n].len = buf.len;
		n++;
	}
	qsort(sk, n, sizeof(SortKey), sort_key_cmp);

	s->keys = palloc(sizeof(char *) * Max(n, 1));
	s->klens = palloc(sizeof(size_t) * Max(n, 1));
	s->values = palloc0(sizeof(char *) * Max(n, 1));
	s->vlens = palloc0(sizeof(size_t) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (s->nkeys > 0 && sort_key_cmp(&sk[i], &sk[i - 1]) == 0)
			continue;
		s->keys[s->nkeys] = sk[i].key;
		s->klens[s->nkeys] = sk[i].len;
		s->nkeys++;
	}

	/*
	 * The reader's cache only now: evaluating the array may have run SQL
	 * that reopened the reader, and this scan goes on with its own instance.
	 */
	rows = almanac_reader_rows(s->a.reader, s->a.db);

	/* the transaction's own writes come first */
	missing_keys = palloc(sizeof(char *) * Max(s->nkeys, 1));
	missing_lens = palloc(sizeof(size_t) * Max(s->nkeys, 1));
	missing_at = palloc(sizeof(int) * Max(s->nkeys, 1));
	for (int i = 0; i < s->nkeys; i++)
	{
		s->values[i] = almanac_xact_buffered(s->a.store, NULL, s->a.cf,
											 s->keys[i], s->klens[i], &s->vlens[i]);
		if (s->values[i] == NULL &&
			!almanac_row_cache_lookup(rows, s->a.cf_id, s->keys[i], s->klens[i],
									  &s->values[i], &s->vlens[i]))
		{
			missing_keys[nmissing] = s->keys[i];
			missing_lens[nmissing] = s->klens[i];
			missing_at[nmissing] = i;
			nmissing++;
		}
	}
	if (nmissing == 0)
	{
		MemoryContextSwitchTo(old);
		return;
	}

	/*
	 * One MultiGet of the sorted keys.  The pinned slices are copied and
	 * released before anything here can raise an error.
	 */
	slices = palloc0(sizeof(rocksdb_pinnableslice_t *) * nmissing);
	errs = palloc0(sizeof(char *) * nmissing);
	rocksdb_batched_multi_get_cf(s->a.db, almanac_lookup_options(), s->a.cf,
								 nmissing, missing_keys, missing_lens, slices, errs, true);
	for (int i = 0; i < nmissing; i++)
	{
		if (slices[i] != NULL)
		{
			size_t		len;
			const char *v = rocksdb_pinnableslice_value(slices[i], &len);

			if (v != NULL)
			{
				char	   *copy = palloc(Max(len, 1));

				memcpy(copy, v, len);
				s->values[missing_at[i]] = copy;
				s->vlens[missing_at[i]] = len;
			}
			rocksdb_pinnableslice_destroy(slices[i]);
		}
		if (errs[i] != NULL)
		{
			if (first_err == NULL)
				first_err = errs[i];
			else
				rocksdb_free(errs[i]);
		}
	}
	for (int i = 0; i < nmissing && first_err == NULL; i++)
		almanac_row_cache_put(rows, s->a.cf_id, missing_keys[i], missing_lens[i],
								s->values[missing_at[i]], s->vlens[missing_at[i]]);
	MemoryContextSwitchTo(old);
	if (first_err)
		almanac_report_read_error(first_err);
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
			almanac_table_key(t, &s->lower, s->neq, values, false);
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
		almanac_table_key(t, &s->lower, s->neq, values, true);

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
		almanac_table_key(t, &prefix, s->neq, values, true);
		almanac_prefix_end(&prefix, &s->upper);
	}
	/* an empty range, such as BETWEEN 10 AND 5 */
	return s->upper.len == 0 ||
		compare_keys(s->lower.data, s->lower.len, s->upper.data, s->upper.len) < 0;
}

/*
 * Open the iterator over [lower, upper): a copy of the transaction's writes
 * in that range over the store.  A rescan opens a new one for its range.
 */
static void
iterator_start(AlmanacScanState *s)
{
	AlmanacAccess *a = &s->a;
	rocksdb_readoptions_t *ropts = almanac_access_iter_options(a);
	rocksdb_iterator_t *base;

	almanac_access_close_iterator(a);
	a->batch_copy = almanac_xact_batch_copy(a->store, a->cf_id, s->lower.data, s->lower.len,
											s->upper.data, s->upper.len);
	/* the bounds let RocksDB skip files and stop at the range's end */
	rocksdb_readoptions_set_iterate_lower_bound(ropts, s->lower.data, s->lower.len);
	if (s->upper.len > 0)		/* empty: a raw table's whole column family */
		rocksdb_readoptions_set_iterate_upper_bound(ropts, s->upper.data, s->upper.len);
	base = rocksdb_create_iterator_cf(a->db, ropts, a->cf);
	a->iter = a->batch_copy
		? rocksdb_writebatch_wi_create_iterator_with_base_cf(a->batch_copy, base, a->cf)
		: base;
	if (s->direction >= 0)
		rocksdb_iter_seek(a->iter, s->lower.data, s->lower.len);
	else if (s->upper.len > 0)
		rocksdb_iter_seek_for_prev(a->iter, s->upper.data, s->upper.len);
	else
		rocksdb_iter_seek_to_last(a->iter);
}

/* is the iterator's key inside [lower, upper)?  The batch's entries are not bounded by RocksDB */
static bool
in_range(AlmanacScanState *s, const char *key, size_t klen)
{
	return (s->upper.len == 0 || compare_keys(key, klen, s->upper.data, s->upper.len) < 0) &&
		compare_keys(key, klen, s->lower.data, s->lower.len) >= 0;
}

/* turn a key and its value into the slot's row; false if the snapshot sees none */
static bool
emit_row(AlmanacScanState *s, TupleTableSlot *slot, const char *key, size_t klen,
		 const char *val, size_t vlen)
{
	const char *tuple;
	uint32		tlen;
	FullTransactionId xid;
	MemoryContext old;
	bool		found;

	/* a raw table covers the whole column family, the owner's marker too */
	if (almanac_is_catch_up_marker(key, klen) || !almanac_table_owns_key(s->a.t, key, klen))
		return false;
	if (s->rowcxt)
		MemoryContextReset(s->rowcxt);
	old = MemoryContextSwitchTo(s->rowcxt ? s->rowcxt : CurrentMemoryContext);
	found = almanac_value_row(val, vlen, s->snapshot, &tuple, &tlen, &xid);
	if (found)
		almanac_row_to_slot(&s->a, slot, key, klen, tuple, tlen);
	MemoryContextSwitchTo(old);
	return found;
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
			size_t		vlen;
			char	   *val = almanac_get_value(&s->a, NULL, s->lower.data, s->lower.len, &vlen);

			s->done = true;
			if (val)
				emit_row(s, slot, s->lower.data, s->lower.len, val, vlen);
			return slot;
		}
		if (!s->done && s->kind != ALMANAC_ACCESS_MULTIGET)
			iterator_start(s);
	}
	if (s->done)
		return slot;

	if (s->kind == ALMANAC_ACCESS_MULTIGET)
	{
		while (s->next < s->nkeys)
		{
			int			i = s->next++;

			if (s->values[i] &&
				emit_row(s, slot, s->keys[i], s->klens[i], s->values[i], s->vlens[i]))
				return slot;
		}
		s->done = true;
		return slot;
	}

	while (rocksdb_iter_valid(s->a.iter))
	{
		size_t		klen,
					vlen;
		const char *key = rocksdb_iter_key(s->a.iter, &klen);
		const char *val = rocksdb_iter_value(s->a.iter, &vlen);
		bool		inside = in_range(s, key, klen);
		bool		found = false;

		if (!inside && s->direction >= 0)
			break;				/* forward: past the end */
		if (!inside && compare_keys(key, klen, s->lower.data, s->lower.len) < 0)
			break;				/* backward: before the start */
		if (inside)
			found = emit_row(s, slot, key, klen, val, vlen);
		if (s->direction >= 0)
			rocksdb_iter_next(s->a.iter);
		else
			rocksdb_iter_prev(s->a.iter);
		if (found)
			return slot;
		CHECK_FOR_INTERRUPTS();
	}
	s->done = true;
	return slot;
}

/* ReScanForeignScan: start again, recomputing the key values (they may be Params) */
void
almanacReScanForeignScan(ForeignScanState *node)
{
	AlmanacScanState *s = node->fdw_state;

	almanac_access_close_iterator(&s->a);
	s->started = false;
	s->done = false;
}

/* EndForeignScan: release what the scan holds (the reset callback would too) */
void
almanacEndForeignScan(ForeignScanState *node)
{
	AlmanacScanState *s = node->fdw_state;

	if (s)
		almanac_access_release(&s->a);
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
