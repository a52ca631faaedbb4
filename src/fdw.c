/*-------------------------------------------------------------------------
 *
 * fdw.c
 *	  The almanac_rocksdb foreign data wrapper: foreign tables over the
 *	  column families of a store.
 *
 * Reads run in the backend, on its secondary instance (reader.h), judged by
 * the statement's snapshot (visibility.h), over the transaction's own
 * buffered writes (xact.h).  Writes become intents in the statement's batch.
 *
 * Access paths: equality on every key column is one Get; equality on the
 * leading key columns is a bounded iterator over their common key prefix;
 * anything else is a scan of the table's key prefix.  Every qual is also
 * applied locally, pushed down or not.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include <math.h>
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parse_coerce.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "almanac.h"
#include "keycodec.h"
#include "option.h"
#include "reader.h"
#include "store.h"
#include "valuecodec.h"
#include "visibility.h"
#include "xact.h"

/* a foreign table's layout, resolved once per statement */
typedef struct AlmanacTable
{
	Relation	rel;
	AlmanacTableOptions *opts;
	AlmanacServerOptions *server;
	AlmanacKeyLayout layout;
	AttrNumber *keyattrs;
	bool	   *is_key;			/* per attribute: stored in the key, not the value */
} AlmanacTable;

static AlmanacTable *
table_open_almanac(Relation rel)
{
	AlmanacTable *t = palloc0(sizeof(AlmanacTable));
	TupleDesc	desc = RelationGetDescr(rel);
	ForeignTable *ft = GetForeignTable(RelationGetRelid(rel));
	int			n;
	Oid		   *typids;
	const char **names;

	t->rel = rel;
	t->opts = almanac_table_options(RelationGetRelid(rel));
	t->server = almanac_server_options(ft->serverid);
	t->keyattrs = almanac_key_attnums(rel, t->opts);
	n = list_length(t->opts->key_columns);
	typids = palloc(sizeof(Oid) * n);
	names = palloc(sizeof(char *) * n);
	t->is_key = palloc0(sizeof(bool) * desc->natts);
	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, t->keyattrs[i] - 1);

		typids[i] = att->atttypid;
		names[i] = NameStr(att->attname);
		t->is_key[t->keyattrs[i] - 1] = true;
	}
	t->layout.prefix = t->opts->key_prefix;
	t->layout.nkeys = n;
	t->layout.typids = typids;
	t->layout.names = names;
	t->layout.attribute = t->opts->key_attribute;
	return t;
}

/* ----------------------------------------------------------------
 * Planning
 * ----------------------------------------------------------------
 */

/* what the planner found for a scan, kept in baserel->fdw_private */
typedef struct AlmanacPlanInfo
{
	int			neq;			/* equality on the first neq key columns */
	List	   *eq_exprs;		/* their comparison values */
	int			nkeys;
} AlmanacPlanInfo;

/*
 * Find "keycol = expr" among the restriction clauses, where expr uses no
 * column of this relation and nothing volatile, so it can be computed once
 * when the scan starts (a Const, a Param, a stable expression).
 */
static Expr *
find_key_equality(PlannerInfo *root, RelOptInfo *baserel, AttrNumber attno, Oid typid)
{
	Oid			opfamily = get_opclass_family(GetDefaultOpClass(typid, BTREE_AM_OID));
	ListCell   *lc;

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		OpExpr	   *op;

		if (!IsA(ri->clause, OpExpr))
			continue;
		op = (OpExpr *) ri->clause;
		/* equality of the column type's btree family, cross-type included (int8 = int4) */
		if (list_length(op->args) != 2 ||
			get_op_opfamily_strategy(op->opno, opfamily) != BTEqualStrategyNumber)
			continue;
		for (int side = 0; side < 2; side++)
		{
			Node	   *var = strip_implicit_coercions(side == 0 ? linitial(op->args) : lsecond(op->args));
			Node	   *other = side == 0 ? lsecond(op->args) : linitial(op->args);
			Node	   *coerced;

			if (!IsA(var, Var) || ((Var *) var)->varno != baserel->relid ||
				((Var *) var)->varattno != attno || ((Var *) var)->varlevelsup != 0 ||
				bms_is_member(baserel->relid, pull_varnos(root, other)) ||
				contain_volatile_functions(other))
				continue;
			/* the value in the column's type; where no implicit cast exists, not pushed */
			coerced = coerce_to_target_type(NULL, other, exprType(other), typid, -1,
											COERCION_IMPLICIT, COERCE_IMPLICIT_CAST, -1);
			if (coerced != NULL)
				return (Expr *) coerced;
		}
	}
	return NULL;
}

static void
almanacGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	AlmanacPlanInfo *info = palloc0(sizeof(AlmanacPlanInfo));
	Relation	rel = table_open(foreigntableid, AccessShareLock);
	AlmanacTable *t = table_open_almanac(rel);

	info->nkeys = t->layout.nkeys;
	for (int i = 0; i < t->layout.nkeys; i++)
	{
		Expr	   *e = find_key_equality(root, baserel, t->keyattrs[i], t->layout.typids[i]);

		if (e == NULL)
			break;
		info->eq_exprs = lappend(info->eq_exprs, e);
		info->neq++;
	}
	table_close(rel, AccessShareLock);

	/* statistics from ANALYZE, never a call to the store */
	if (info->neq == info->nkeys)
		baserel->rows = 1;
	else
	{
		double		tuples = baserel->tuples > 0 ? baserel->tuples : 1000;

		baserel->rows = clamp_row_est(tuples * clauselist_selectivity(root, baserel->baserestrictinfo,
																	  0, JOIN_INNER, NULL));
		if (info->neq > 0)
			baserel->rows = clamp_row_est(Min(baserel->rows, tuples * pow(0.1, info->neq)));
	}
	baserel->fdw_private = info;
}

static void
almanacGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	AlmanacPlanInfo *info = baserel->fdw_private;
	double		tuples = baserel->tuples > 0 ? baserel->tuples : 1000;
	Cost		startup = 1;
	Cost		total;

	/* one Get, a bounded iterator, or a scan of the whole table */
	if (info->neq == info->nkeys)
		total = startup + 1;
	else if (info->neq > 0)
		total = startup + baserel->rows * 0.02 + 2;
	else
		total = startup + tuples * 0.02;
	total += baserel->rows * cpu_tuple_cost;

	add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, baserel->rows,
													   startup, total, NIL, NULL, NULL, NIL));
}

static ForeignScan *
almanacGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
					  ForeignPath *best_path, List *tlist, List *scan_clauses,
					  Plan *outer_plan)
{
	AlmanacPlanInfo *info = baserel->fdw_private;

	/* every qual is checked locally too: the key match is exact, the rest is not pushed */
	scan_clauses = extract_actual_clauses(scan_clauses, false);
	return make_foreignscan(tlist, scan_clauses, baserel->relid,
							info->eq_exprs,
							list_make1(makeInteger(info->neq)),
							NIL, NIL, outer_plan);
}

/* ----------------------------------------------------------------
 * Reading
 * ----------------------------------------------------------------
 */

/* what scans and modifies share: the table, its store and column family */
typedef struct AlmanacAccess
{
	AlmanacTable *t;
	int			store;
	AlmanacReader *reader;
	rocksdb_column_family_handle_t *cf; /* NULL: not created yet, so empty */
	uint32		cf_id;
	rocksdb_readoptions_t *ropts;
	Datum	   *keyvalues;
} AlmanacAccess;

static void
access_init(AlmanacAccess *a, Relation rel, bool for_write)
{
	a->t = table_open_almanac(rel);
	a->store = almanac_store_attach(a->t->server);
	a->reader = almanac_reader(a->store);
	/* after the statement's snapshot: see almanac_reader_catch_up */
	almanac_reader_catch_up(a->reader);
	a->cf = almanac_reader_cf(a->reader, a->t->opts->column_family, for_write, &a->cf_id);
	a->keyvalues = palloc(sizeof(Datum) * Max(a->t->layout.nkeys, 1));
}

/*
 * Turn a stored value or a buffered intent into the row the snapshot sees.
 * Returns false when it sees none (nothing visible, or a deletion).
 * *xid receives the version's writer (invalid for a buffered intent).
 */
static bool
value_row(AlmanacAccess *a, Snapshot snapshot, const char *val, size_t vlen,
		  const char **tuple, uint32 *tuple_len, FullTransactionId *xid)
{
	*xid = InvalidFullTransactionId;
	if (almanac_is_intent(val, vlen))
	{
		AlmanacIntent intent;

		almanac_intent_parse(val, vlen, &intent);
		if (intent.kind == ALMANAC_INTENT_DELETE)
			return false;
		*tuple = intent.tuple;
		*tuple_len = intent.tuple_len;
		return true;
	}
	else
	{
		AlmanacVersion *versions;
		int			n = almanac_versions_parse(val, vlen, &versions);
		int			i = almanac_versions_visible(versions, n, snapshot);

		if (i < 0)
			return false;
		*xid = versions[i].xid;
		if (versions[i].flags & ALMANAC_VERSION_DELETED)
			return false;
		*tuple = versions[i].tuple;
		*tuple_len = versions[i].tuple_len;
		return true;
	}
}

static void
store_row(AlmanacAccess *a, TupleTableSlot *slot, const char *key, size_t klen,
		  const char *tuple, uint32 tuple_len)
{
	AlmanacTable *t = a->t;

	ExecClearTuple(slot);
	almanac_value_decode(tuple, tuple_len, slot->tts_tupleDescriptor,
						 slot->tts_values, slot->tts_isnull, t->is_key);
	if (!almanac_key_decode(key, klen, &t->layout, a->keyvalues))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("key in column family \"%s\" does not match the key layout of foreign table \"%s\"",
						t->opts->column_family, RelationGetRelationName(t->rel))));
	for (int i = 0; i < t->layout.nkeys; i++)
	{
		slot->tts_values[t->keyattrs[i] - 1] = a->keyvalues[i];
		slot->tts_isnull[t->keyattrs[i] - 1] = false;
	}
	ExecStoreVirtualTuple(slot);
}

/* Get a key: the transaction's buffered write, else the store */
static char *
get_value(AlmanacAccess *a, rocksdb_writebatch_wi_t *stmt, const char *key, size_t klen,
		  size_t *vlen)
{
	char	   *val = almanac_xact_buffered(a->store, stmt, a->cf, key, klen, vlen);
	char	   *err = NULL;
	char	   *stored;

	if (val)
		return val;
	stored = rocksdb_get_cf(almanac_reader_db(a->reader), a->ropts, a->cf, key, klen, vlen, &err);
	if (err)
	{
		char	   *msg = pstrdup(err);

		rocksdb_free(err);
		ereport(ERROR, (errcode(ERRCODE_IO_ERROR), errmsg("almanac store read failed: %s", msg)));
	}
	if (stored == NULL)
		return NULL;
	val = palloc(*vlen);
	memcpy(val, stored, *vlen);
	rocksdb_free(stored);
	return val;
}

typedef struct AlmanacScanState
{
	AlmanacAccess a;
	int			neq;
	List	   *eq_states;
	Snapshot	snapshot;
	MemoryContext rowcxt;
	bool		started;
	bool		done;
	rocksdb_iterator_t *iter;
	uint64		iter_generation;	/* see almanac_xact_iterator */
	StringInfoData lower;
	StringInfoData upper;		/* exclusive; empty: none */
	MemoryContextCallback cleanup;
} AlmanacScanState;

static void
scan_close_iterator(AlmanacScanState *s)
{
	if (s->iter == NULL)
		return;
	rocksdb_iter_destroy(s->iter);
	s->iter = NULL;
	almanac_xact_iterator_done(s->iter_generation);
}

/* releases the iterator and read options however the scan ends, ERROR included */
static void
scan_cleanup(void *arg)
{
	AlmanacScanState *s = arg;

	scan_close_iterator(s);
	if (s->a.ropts)
		rocksdb_readoptions_destroy(s->a.ropts);
	s->a.ropts = NULL;
}

static void
almanacBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fs = (ForeignScan *) node->ss.ps.plan;
	AlmanacScanState *s = palloc0(sizeof(AlmanacScanState));
	EState	   *estate = node->ss.ps.state;

	node->fdw_state = s;
	s->neq = intVal(linitial(fs->fdw_private));
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	s->snapshot = estate->es_snapshot;
	s->a.ropts = rocksdb_readoptions_create();
	s->cleanup.func = scan_cleanup;
	s->cleanup.arg = s;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &s->cleanup);

	access_init(&s->a, node->ss.ss_currentRelation, false);
	s->eq_states = ExecInitExprList(fs->fdw_exprs, (PlanState *) node);
	s->rowcxt = AllocSetContextCreate(estate->es_query_cxt, "almanac scan row",
									  ALLOCSET_SMALL_SIZES);
	initStringInfo(&s->lower);
	initStringInfo(&s->upper);
}

/* compute the key or the prefix bounds from the equality values */
static bool
scan_start(ForeignScanState *node, AlmanacScanState *s)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	AlmanacTable *t = s->a.t;
	Datum	   *values = palloc(sizeof(Datum) * Max(s->neq, 1));
	int			i = 0;
	ListCell   *lc;

	resetStringInfo(&s->lower);
	resetStringInfo(&s->upper);
	foreach(lc, s->eq_states)
	{
		bool		isnull;

		values[i] = ExecEvalExpr((ExprState *) lfirst(lc), econtext, &isnull);
		/* key = NULL and key = -1 match nothing */
		if (isnull || !almanac_key_value_in_domain(t->layout.typids[i], values[i]))
			return false;
		i++;
	}
	if (s->a.cf == NULL)
		return false;
	if (s->neq == t->layout.nkeys)
	{
		almanac_key_encode(&s->lower, &t->layout, s->neq, values, false);
		return true;
	}
	almanac_key_encode(&s->lower, &t->layout, s->neq, values, true);
	appendBinaryStringInfo(&s->upper, s->lower.data, s->lower.len);
	if (!almanac_key_successor(&s->upper, 0))
		resetStringInfo(&s->upper);
	return true;
}

static TupleTableSlot *
almanacIterateForeignScan(ForeignScanState *node)
{
	AlmanacScanState *s = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	AlmanacAccess *a = &s->a;

	ExecClearTuple(slot);
	if (!s->started)
	{
		s->started = true;
		s->done = !scan_start(node, s);
		if (!s->done && s->neq == a->t->layout.nkeys)
		{
			/* one Get */
			size_t		vlen;
			char	   *val;
			const char *tuple;
			uint32		tlen;
			FullTransactionId xid;

			s->done = true;
			val = get_value(a, NULL, s->lower.data, s->lower.len, &vlen);
			if (val && value_row(a, s->snapshot, val, vlen, &tuple, &tlen, &xid))
				store_row(a, slot, s->lower.data, s->lower.len, tuple, tlen);
			return slot;
		}
		if (!s->done)
		{
			rocksdb_iterator_t *base;

			if (s->upper.len > 0)
				rocksdb_readoptions_set_iterate_upper_bound(a->ropts, s->upper.data, s->upper.len);
			base = rocksdb_create_iterator_cf(almanac_reader_db(a->reader), a->ropts, a->cf);
			/* the transaction's own writes over the store */
			s->iter = almanac_xact_iterator(a->store, base, a->cf, &s->iter_generation);
			rocksdb_iter_seek(s->iter, s->lower.data, s->lower.len);
		}
	}

	while (!s->done && rocksdb_iter_valid(s->iter))
	{
		size_t		klen,
					vlen;
		const char *key = rocksdb_iter_key(s->iter, &klen);
		const char *val = rocksdb_iter_value(s->iter, &vlen);
		const char *tuple;
		uint32		tlen;
		FullTransactionId xid;
		bool		found;
		MemoryContext old;

		/* the batch's entries are not limited by the upper bound: check it */
		if (s->upper.len > 0)
		{
			int			c = memcmp(key, s->upper.data, Min(klen, (size_t) s->upper.len));

			if (c > 0 || (c == 0 && klen >= (size_t) s->upper.len))
				break;
		}
		MemoryContextReset(s->rowcxt);
		old = MemoryContextSwitchTo(s->rowcxt);
		found = value_row(a, s->snapshot, val, vlen, &tuple, &tlen, &xid);
		if (found)
			store_row(a, slot, key, klen, tuple, tlen);
		MemoryContextSwitchTo(old);
		rocksdb_iter_next(s->iter);
		if (found)
			return slot;
		CHECK_FOR_INTERRUPTS();
	}
	s->done = true;
	return slot;
}

static void
almanacReScanForeignScan(ForeignScanState *node)
{
	AlmanacScanState *s = node->fdw_state;

	scan_close_iterator(s);
	s->started = false;
	s->done = false;
}

static void
almanacEndForeignScan(ForeignScanState *node)
{
	AlmanacScanState *s = node->fdw_state;

	if (s && s->a.ropts)
		scan_cleanup(s);
}

static void
almanacExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *fs = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	AlmanacTableOptions *opts = almanac_table_options(RelationGetRelid(rel));
	int			neq = intVal(linitial(fs->fdw_private));
	int			nkeys = list_length(opts->key_columns);

	if (neq == nkeys)
		ExplainPropertyText("Almanac Access", "point lookup (Get)", es);
	else if (neq > 0)
		ExplainPropertyText("Almanac Access",
							psprintf("prefix scan on %d of %d key columns", neq, nkeys), es);
	else
		ExplainPropertyText("Almanac Access", "full scan of key prefix", es);
	ExplainPropertyText("Column Family", opts->column_family, es);
	if (es->verbose)
		ExplainPropertyText("Key Prefix", opts->key_prefix, es);
}

/* ----------------------------------------------------------------
 * Writing
 * ----------------------------------------------------------------
 */

typedef struct AlmanacModifyState
{
	AlmanacAccess a;
	rocksdb_writebatch_wi_t *stmt;
	AttrNumber	wholerow_attno;
	TupleDesc	desc;
	StringInfoData key;
	StringInfoData oldkey;
	StringInfoData value;
	MemoryContext rowcxt;
	bool		shipped_early;	/* an INSERT shipped chunks of its own */
	MemoryContextCallback cleanup;
} AlmanacModifyState;

static void
modify_cleanup(void *arg)
{
	AlmanacModifyState *m = arg;

	if (m->stmt)
		rocksdb_writebatch_wi_destroy(m->stmt);
	m->stmt = NULL;
	if (m->a.ropts)
		rocksdb_readoptions_destroy(m->a.ropts);
	m->a.ropts = NULL;
}

/* UPDATE and DELETE need the old row: its key, and the new row's unchanged columns */
static void
almanacAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
							   RangeTblEntry *target_rte, Relation target_relation)
{
	Var		   *var = makeWholeRowVar(target_rte, rtindex, 0, false);

	add_row_identity_var(root, var, rtindex, "wholerow");
}

static AlmanacModifyState *
modify_begin(ResultRelInfo *rinfo, EState *estate)
{
	AlmanacModifyState *m = palloc0(sizeof(AlmanacModifyState));

	m->a.ropts = rocksdb_readoptions_create();
	m->cleanup.func = modify_cleanup;
	m->cleanup.arg = m;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &m->cleanup);
	access_init(&m->a, rinfo->ri_RelationDesc, true);
	m->stmt = almanac_stmt_batch_create();
	m->desc = RelationGetDescr(rinfo->ri_RelationDesc);
	m->rowcxt = AllocSetContextCreate(estate->es_query_cxt, "almanac modify row",
									  ALLOCSET_SMALL_SIZES);
	initStringInfo(&m->key);
	initStringInfo(&m->oldkey);
	initStringInfo(&m->value);
	return m;
}

static void
almanacBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						  List *fdw_private, int subplan_index, int eflags)
{
	AlmanacModifyState *m;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	m = modify_begin(rinfo, mtstate->ps.state);
	if (mtstate->operation == CMD_UPDATE || mtstate->operation == CMD_DELETE)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		m->wholerow_attno = ExecFindJunkAttributeInTlist(subplan->targetlist, "wholerow");
		if (!AttributeNumberIsValid(m->wholerow_attno))
			elog(ERROR, "almanac: wholerow junk column missing");
	}
	rinfo->ri_FdwState = m;
}

static void
almanacBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	rinfo->ri_FdwState = modify_begin(rinfo, mtstate->ps.state);
}

/* the key of a row given as values/isnull; a NULL key column is 23502 */
static void
row_key(AlmanacModifyState *m, StringInfo buf, const Datum *values, const bool *isnull)
{
	AlmanacTable *t = m->a.t;

	for (int i = 0; i < t->layout.nkeys; i++)
	{
		AttrNumber attno = t->keyattrs[i];

		if (isnull[attno - 1])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in key column \"%s\" of foreign table \"%s\"",
							t->layout.names[i], RelationGetRelationName(t->rel)),
					 errdetail("Key columns form the RocksDB key and cannot be NULL.")));
		m->a.keyvalues[i] = values[attno - 1];
	}
	resetStringInfo(buf);
	almanac_key_encode(buf, &t->layout, t->layout.nkeys, m->a.keyvalues, false);
}

/*
 * The version of the key the current snapshot sees: whether it is a live
 * row, and its writer (the version an update or delete is based on).
 */
static bool
key_visible(AlmanacModifyState *m, StringInfo key, FullTransactionId *xid)
{
	size_t		vlen;
	char	   *val = get_value(&m->a, m->stmt, key->data, key->len, &vlen);
	const char *tuple;
	uint32		tlen;

	*xid = InvalidFullTransactionId;
	if (val == NULL)
		return false;
	return value_row(&m->a, GetActiveSnapshot(), val, vlen, &tuple, &tlen, xid);
}

static void
put_intent(AlmanacModifyState *m, StringInfo key, AlmanacIntentKind kind,
		   FullTransactionId expected, const char *tuple, uint32 tuple_len)
{
	AlmanacIntent intent;

	intent.cf_id = m->a.cf_id;
	intent.kind = kind;
	/* stamps the (sub)transaction and makes sure it gets an xid */
	intent.xid = GetCurrentFullTransactionId();
	intent.top = GetTopTransactionId();
	intent.expected = expected;
	intent.tuple = tuple;
	intent.tuple_len = tuple_len;
	almanac_xact_put(m->a.store, m->stmt, m->a.cf, key->data, key->len, &intent);
}

static void
insert_row(AlmanacModifyState *m, StringInfo key, TupleTableSlot *slot)
{
	FullTransactionId xid;
	bool		upsert = m->a.t->opts->upsert;

	if (key_visible(m, key, &xid) && !upsert)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("duplicate key value violates the key of foreign table \"%s\"",
						RelationGetRelationName(m->a.t->rel)),
				 errhint("Declare the table with OPTIONS (upsert 'true') to let INSERT overwrite.")));
	resetStringInfo(&m->value);
	almanac_value_encode(&m->value, m->desc, slot->tts_values, slot->tts_isnull, m->a.t->is_key);
	put_intent(m, key, upsert ? ALMANAC_INTENT_UPSERT : ALMANAC_INTENT_INSERT, xid,
			   m->value.data, m->value.len);
}

static TupleTableSlot *
almanacExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	AlmanacModifyState *m = rinfo->ri_FdwState;
	MemoryContext old = MemoryContextSwitchTo(m->rowcxt);

	slot_getallattrs(slot);
	row_key(m, &m->key, slot->tts_values, slot->tts_isnull);
	insert_row(m, &m->key, slot);
	MemoryContextSwitchTo(old);
	MemoryContextReset(m->rowcxt);
	if (almanac_stmt_batch_ship_early(m->a.store, m->stmt, m->a.cf, m->a.cf_id))
		m->shipped_early = true;
	return slot;
}

static TupleTableSlot **
almanacExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
							  TupleTableSlot **slots, TupleTableSlot **planSlots,
							  int *numSlots)
{
	for (int i = 0; i < *numSlots; i++)
		almanacExecForeignInsert(estate, rinfo, slots[i], planSlots ? planSlots[i] : NULL);
	return slots;
}

static int
almanacGetForeignModifyBatchSize(ResultRelInfo *rinfo)
{
	/* rows are buffered in the statement batch anyway; RETURNING needs them one by one */
	return rinfo->ri_projectReturning ? 1 : 1000;
}

/* the key of the old row, from the wholerow junk column */
static void
old_row_key(AlmanacModifyState *m, TupleTableSlot *planSlot)
{
	bool		isnull;
	Datum		d = ExecGetJunkAttribute(planSlot, m->wholerow_attno, &isnull);
	HeapTupleHeader td;
	HeapTupleData tuple;
	Datum	   *values = palloc(sizeof(Datum) * m->desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * m->desc->natts);

	if (isnull)
		elog(ERROR, "almanac: wholerow is NULL");
	td = DatumGetHeapTupleHeader(d);
	tuple.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = td;
	heap_deform_tuple(&tuple, m->desc, values, nulls);
	row_key(m, &m->oldkey, values, nulls);
}

/* the version an update or delete of oldkey is based on */
static FullTransactionId
based_on(AlmanacModifyState *m)
{
	FullTransactionId xid;

	if (!key_visible(m, &m->oldkey, &xid))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent update of foreign table \"%s\"",
						RelationGetRelationName(m->a.t->rel))));
	return xid;
}

static TupleTableSlot *
almanacExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	AlmanacModifyState *m = rinfo->ri_FdwState;
	MemoryContext old = MemoryContextSwitchTo(m->rowcxt);
	FullTransactionId expected;

	slot_getallattrs(slot);
	old_row_key(m, planSlot);
	expected = based_on(m);
	row_key(m, &m->key, slot->tts_values, slot->tts_isnull);

	if (m->key.len == m->oldkey.len && memcmp(m->key.data, m->oldkey.data, m->key.len) == 0)
	{
		resetStringInfo(&m->value);
		almanac_value_encode(&m->value, m->desc, slot->tts_values, slot->tts_isnull, m->a.t->is_key);
		put_intent(m, &m->key, m->a.t->opts->upsert ? ALMANAC_INTENT_UPSERT : ALMANAC_INTENT_UPDATE,
				   expected, m->value.data, m->value.len);
	}
	else
	{
		/* a new key moves the row */
		put_intent(m, &m->oldkey, ALMANAC_INTENT_DELETE, expected, NULL, 0);
		insert_row(m, &m->key, slot);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(m->rowcxt);
	return slot;
}

static TupleTableSlot *
almanacExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	AlmanacModifyState *m = rinfo->ri_FdwState;
	MemoryContext old = MemoryContextSwitchTo(m->rowcxt);

	old_row_key(m, planSlot);
	put_intent(m, &m->oldkey, ALMANAC_INTENT_DELETE, based_on(m), NULL, 0);
	MemoryContextSwitchTo(old);
	MemoryContextReset(m->rowcxt);

	/* RETURNING: the deleted row */
	if (rinfo->ri_projectReturning)
	{
		bool		isnull;
		Datum		d = ExecGetJunkAttribute(planSlot, m->wholerow_attno, &isnull);
		HeapTupleData tuple;

		tuple.t_data = DatumGetHeapTupleHeader(d);
		tuple.t_len = HeapTupleHeaderGetDatumLength(tuple.t_data);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = RelationGetRelid(rinfo->ri_RelationDesc);
		ExecForceStoreHeapTuple(&tuple, slot, false);
	}
	return slot;
}

/* the statement's writes become the transaction's */
static void
modify_end(AlmanacModifyState *m)
{
	if (m == NULL || m->stmt == NULL)
		return;
	almanac_stmt_batch_merge(m->a.store, m->stmt, m->a.cf, m->a.cf_id, m->shipped_early);
	modify_cleanup(m);
}

static void
almanacEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	modify_end(rinfo->ri_FdwState);
}

static void
almanacEndForeignInsert(EState *estate, ResultRelInfo *rinfo)
{
	modify_end(rinfo->ri_FdwState);
}

static int
almanacIsForeignRelUpdatable(Relation rel)
{
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

PG_FUNCTION_INFO_V1(almanac_rocksdb_fdw_handler);
Datum
almanac_rocksdb_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *r = makeNode(FdwRoutine);

	r->GetForeignRelSize = almanacGetForeignRelSize;
	r->GetForeignPaths = almanacGetForeignPaths;
	r->GetForeignPlan = almanacGetForeignPlan;
	r->BeginForeignScan = almanacBeginForeignScan;
	r->IterateForeignScan = almanacIterateForeignScan;
	r->ReScanForeignScan = almanacReScanForeignScan;
	r->EndForeignScan = almanacEndForeignScan;
	r->ExplainForeignScan = almanacExplainForeignScan;

	r->AddForeignUpdateTargets = almanacAddForeignUpdateTargets;
	r->BeginForeignModify = almanacBeginForeignModify;
	r->ExecForeignInsert = almanacExecForeignInsert;
	r->ExecForeignBatchInsert = almanacExecForeignBatchInsert;
	r->GetForeignModifyBatchSize = almanacGetForeignModifyBatchSize;
	r->ExecForeignUpdate = almanacExecForeignUpdate;
	r->ExecForeignDelete = almanacExecForeignDelete;
	r->EndForeignModify = almanacEndForeignModify;
	r->BeginForeignInsert = almanacBeginForeignInsert;
	r->EndForeignInsert = almanacEndForeignInsert;
	r->IsForeignRelUpdatable = almanacIsForeignRelUpdatable;
	PG_RETURN_POINTER(r);
}
