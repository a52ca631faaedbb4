/*-------------------------------------------------------------------------
 *
 * lookup.c
 *	  The router's custom scan, "Almanac Lookup": the rows of one key (or
 *	  of a few, or the last of a key prefix) from a table's mirror, or from
 *	  the heap when the mirror cannot be proven to give the heap's answer.
 *	  See router.h.
 *
 * Per execution the scan evaluates its key expressions, encodes the key
 * and reads it: a row cache probe or a RocksDB Get (a reverse iterator for
 * LAST), a visibility check of the version list with the statement's
 * snapshot, and a decode of the image into the scan slot.  No catalog is
 * read: the mirror's descriptor is cached per backend (mirror.h), rebuilt
 * only after an invalidation, and the node's result descriptor per plan
 * (plan_info).
 *
 * The heap fallback reads the heap's unique index on the key with the same
 * snapshot, so the answer is the heap's by construction; the reason is
 * counted (almanac.router_stats) and shown by EXPLAIN ANALYZE.  The reasons
 * are checked when the scan begins, in the order of AlmanacFallback.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "executor/execdesc.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "almanac.h"
#include "codec/valuecodec.h"
#include "mirror/mirror.h"
#include "router/router.h"
#include "store/store.h"

/*
 * CustomScan.custom_private: kind, the key conditions (for EXPLAIN), the
 * number of equality key expressions, the strategies of the bounds (RANGE),
 * and whether a LIMIT expression follows them.  custom_exprs: the equality
 * values, the bounds' values, the limit.
 */
enum
{
	LOOKUP_PRIV_KIND,
	LOOKUP_PRIV_KEYQUALS,
	LOOKUP_PRIV_NEQ,
	LOOKUP_PRIV_STRATEGIES,
	LOOKUP_PRIV_HAS_LIMIT
};

/*
 * What the executor's start-up of a routed plan builds the same way at every
 * execution, built once per plan (plan_info): the statement and plan node
 * the executor starts, the node without its target list, and the result
 * descriptor.  It lives in the plan's memory context, and plan_infos maps
 * the plan node and its copy to it until that context is reset or deleted.
 */
typedef struct LookupPlanInfo
{
	CustomScan *plan;			/* the plan node as planned */
	CustomScan	exec;			/* *plan without its target list */
	PlannedStmt exec_stmt;		/* the statement with planTree = &exec */
	TupleDesc	resultdesc;		/* ExecTypeFromTL of the target list */
	int			scan_tuple;		/* tlist_is_scan_tuple, or -1: not known yet */
	/*
	 * plain: every value expression is a Const or a PARAM_EXTERN, its own
	 * value_state(), so that the scan's lists of them are the plan's
	 */
	bool		plain;
	List	   *keystates;
	List	   *boundstates;
	Node	   *limitstate;
	MemoryContextCallback forget;
} LookupPlanInfo;

typedef struct LookupPlanEntry
{
	CustomScan *plan;
	LookupPlanInfo *info;
} LookupPlanEntry;

static HTAB *plan_infos = NULL;

/*
 * The LookupPlanInfo plan_info returned last: a prepared statement run over
 * and over finds its own without hashing its plan's address.  Cleared when
 * that info is forgotten.
 */
static LookupPlanInfo *last_info = NULL;

static ExecutorStart_hook_type prev_executor_start = NULL;

typedef struct LookupState
{
	CustomScanState css;
	AlmanacLookupKind kind;
	List	   *keyquals;
	AlmanacMirror *m;
	int			fallback;		/* an AlmanacFallback, or -1: the mirror */
	AlmanacAccess *a;			/* &access when reading the mirror */
	AlmanacAccess access;
	List	   *keystates;		/* per key expression, a value_state() */
	Datum		keyvalues[INDEX_MAX_KEYS];
	/* MULTIGET: the last key column's values, sorted, each once */
	Datum	   *multi;
	int			nmulti;
	int			next;			/* next value of multi, or 1 when done */
	bool		started;
	bool		empty;			/* a key value no row can have (NULL, negative) */
	TupleTableSlot *heapslot;	/* the fallback's */
	StringInfoData key;
	StringInfoData upper;		/* LAST: the end of the key prefix */
	/* RANGE, RECENT (range.c) */
	List	   *strategies;		/* of the bounds */
	List	   *boundstates;	/* per bound, a value_state() */
	Node	   *limitstate;		/* a value_state(), or NULL */
	AlmanacRange range;
} LookupState;

static Node *lookup_create_state(CustomScan *cscan);
static void lookup_begin(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *lookup_exec(CustomScanState *node);
static void lookup_end(CustomScanState *node);
static void lookup_rescan(CustomScanState *node);
static void lookup_explain(CustomScanState *node, List *ancestors, ExplainState *es);
static void range_start(LookupState *ls);

static CustomScanMethods lookup_scan_methods = {
	.CustomName = "Almanac Lookup",
	.CreateCustomScanState = lookup_create_state,
};

static CustomExecMethods lookup_exec_methods = {
	.CustomName = "Almanac Lookup",
	.BeginCustomScan = lookup_begin,
	.ExecCustomScan = lookup_exec,
	.EndCustomScan = lookup_end,
	.ReScanCustomScan = lookup_rescan,
	.ExplainCustomScan = lookup_explain,
};

static void lookup_executor_start(QueryDesc *queryDesc, int eflags);

void
almanac_lookup_register(void)
{
	RegisterCustomScanMethods(&lookup_scan_methods);
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = lookup_executor_start;
}

CustomScan *
almanac_lookup_plan(Oid relid, AlmanacLookupKind kind, List *tlist, List *quals,
					List *keyexprs, List *keyquals, List *bounds, List *strategies,
					Node *limit)
{
	int			neq = list_length(keyexprs);
	List	   *shown = NIL;
	ListCell   *lc;

	CustomScan *cs = makeNode(CustomScan);
	Plan	   *plan = &cs->scan.plan;

	/* key values and bounds come folded (router/planner.c, fold_values) */
	/* the executor needs the functions of operators looked up */
	fix_opfuncids((Node *) tlist);
	fix_opfuncids((Node *) quals);
	fix_opfuncids((Node *) keyexprs);
	fix_opfuncids((Node *) bounds);
	fix_opfuncids(limit);

	/*
	 * The target list without its junk entries (sort columns: the scan
	 * itself returns the rows in order, so there is nothing for a junk
	 * filter to remove).  The executor starts a copy of the node without
	 * it: see plan_info.
	 */
	foreach(lc, tlist)
		if (!((TargetEntry *) lfirst(lc))->resjunk)
			shown = lappend(shown, lfirst(lc));
	plan->targetlist = shown;
	plan->qual = quals;
	/* a point lookup: cheaper than any index scan */
	plan->startup_cost = 0;
	plan->total_cost = kind == ALMANAC_LOOKUP_LAST ? 1.0 : kind >= ALMANAC_LOOKUP_RANGE ? 10.0 : 0.5;
	plan->plan_rows = kind >= ALMANAC_LOOKUP_RANGE ? 100 : 1;
	plan->plan_width = 0;
	plan->parallel_aware = false;
	plan->parallel_safe = false;
	plan->plan_node_id = 0;
	cs->scan.scanrelid = 1;
	cs->flags = 0;
	cs->custom_plans = NIL;
	cs->custom_exprs = list_concat(keyexprs, bounds);
	if (limit)
		cs->custom_exprs = lappend(cs->custom_exprs, limit);
	cs->custom_private = list_make5(makeInteger(kind), keyquals, makeInteger(neq), strategies,
									makeInteger(limit != NULL));
	cs->custom_scan_tlist = NIL;
	cs->custom_relids = NULL;
	cs->methods = &lookup_scan_methods;
	(void) relid;
	return cs;
}

static Node *
lookup_create_state(CustomScan *cscan)
{
	LookupState *ls = (LookupState *) newNode(sizeof(LookupState), T_CustomScanState);

	ls->css.methods = &lookup_exec_methods;
	ls->kind = intVal(list_nth(cscan->custom_private, LOOKUP_PRIV_KIND));
	ls->keyquals = list_nth(cscan->custom_private, LOOKUP_PRIV_KEYQUALS);
	ls->strategies = list_nth(cscan->custom_private, LOOKUP_PRIV_STRATEGIES);
	ls->fallback = -1;
	return (Node *) ls;
}

/* forget the entry of node if it is info's */
static void
plan_unmap(CustomScan *node, LookupPlanInfo *info)
{
	LookupPlanEntry *e = hash_search(plan_infos, &node, HASH_FIND, NULL);

	if (e != NULL && e->info == info)
		(void) hash_search(plan_infos, &node, HASH_REMOVE, NULL);
}

/* the plan's context is going away: so is its LookupPlanInfo */
static void
plan_forget(void *arg)
{
	LookupPlanInfo *info = arg;

	if (last_info == info)
		last_info = NULL;
	plan_unmap(info->plan, info);
	plan_unmap(&info->exec, info);
}

/* map node (the plan node or its copy) to info */
static void
plan_map(CustomScan *node, LookupPlanInfo *info)
{
	LookupPlanEntry *e = hash_search(plan_infos, &node, HASH_ENTER, NULL);

	e->info = info;
}

/*
 * Is info the one built for plan node cs, the node as planned or its copy
 * (and not for an earlier node at its address)?
 */
static inline bool
plan_info_of(LookupPlanInfo *info, CustomScan *cs)
{
	return (cs == info->plan || cs == &info->exec) &&
		info->exec.custom_private == cs->custom_private &&
		info->exec.custom_exprs == cs->custom_exprs &&
		info->exec.scan.plan.qual == cs->scan.plan.qual;
}

/*
 * The LookupPlanInfo of a plan node, cs the node as planned or the copy the
 * executor starts: built at the plan's first execution, then found by
 * either address: the one returned last without a hash lookup (the hook,
 * then the scan's start-up, ask for the same one at every execution).
 *
 * Why: PostgreSQL's executor builds a node's result descriptor from the
 * plan's target list at every execution (ExecInitCustomScan calls
 * ExecInitResultTupleSlotTL: a syscache lookup and a name copy per
 * column), 0.25 us of the 1.6 us of backend CPU that a routed prepared
 * block lookup cost above SELECT 1 (bench/router/run.sh's probe), while
 * the descriptor depends only on the plan.  So the executor starts a copy
 * of the statement whose plan node has an empty target list (a descriptor
 * of no column costs nothing: lookup_executor_start), and BeginCustomScan
 * puts the node as planned, with its target list, back in the node's
 * state, with the descriptor built once, before anything reads either
 * (InitPlan takes the query's result type after ExecInitNode returns;
 * EXPLAIN reads the plan through the node's state).  The statement the
 * portal holds keeps the target list: the RowDescription message names
 * each column's table and column number from it, as for the heap's plan.
 *
 * The copies live in the plan's own memory context, and a reset callback on
 * that context forgets them, so an address is never taken for a later
 * plan's.  A copy of the plan (copyObject, as DECLARE CURSOR makes) is
 * another address and gets its own.  The pointer comparisons guard against
 * a plan node freed alone and its address reused in the same context.
 */
static LookupPlanInfo *
plan_info(CustomScan *cs)
{
	LookupPlanEntry *e;
	LookupPlanInfo *info;
	MemoryContext old;
	int			neq = intVal(list_nth(cs->custom_private, LOOKUP_PRIV_NEQ));
	int			nbounds = list_length(list_nth(cs->custom_private, LOOKUP_PRIV_STRATEGIES));
	ListCell   *lc;

	if (last_info != NULL && plan_info_of(last_info, cs))
		return last_info;
	if (plan_infos == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(CustomScan *);
		ctl.entrysize = sizeof(LookupPlanEntry);
		ctl.hcxt = TopMemoryContext;
		plan_infos = hash_create("almanac lookup plans", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(plan_infos, &cs, HASH_FIND, NULL);
	if (e != NULL && plan_info_of(e->info, cs))
		return last_info = e->info;

	old = MemoryContextSwitchTo(GetMemoryChunkContext(cs));
	info = palloc(sizeof(LookupPlanInfo));
	info->plan = cs;
	info->exec = *cs;
	info->exec.scan.plan.targetlist = NIL;
	info->resultdesc = ExecTypeFromTL(cs->scan.plan.targetlist);
	info->scan_tuple = -1;
	info->plain = true;
	info->keystates = info->boundstates = NIL;
	info->limitstate = NULL;
	foreach(lc, cs->custom_exprs)
	{
		Node	   *e = lfirst(lc);
		int			i = foreach_current_index(lc);

		if (!IsA(e, Const) && !(IsA(e, Param) && ((Param *) e)->paramkind == PARAM_EXTERN))
			info->plain = false;
		if (i < neq)
			info->keystates = lappend(info->keystates, e);
		else if (i < neq + nbounds)
			info->boundstates = lappend(info->boundstates, e);
		else
			info->limitstate = e;
	}
	MemoryContextSwitchTo(old);

	/*
	 * The callback first: an out of memory in plan_map must not leave an
	 * entry that outlives info (plan_unmap skips a node not mapped)
	 */
	info->forget.func = plan_forget;
	info->forget.arg = info;
	MemoryContextRegisterResetCallback(GetMemoryChunkContext(cs), &info->forget);
	plan_map(cs, info);
	plan_map(&info->exec, info);
	return last_info = info;
}

/*
 * Does the target list return the scan tuple as it is (execUtils.c's
 * tlist_matches_tupdesc, which is static): then the node needs no
 * projection, as ExecConditionalAssignProjectionInfo decides.
 */
static bool
tlist_is_scan_tuple(List *tlist, TupleDesc desc)
{
	ListCell   *lc = list_head(tlist);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Var		   *var;

		if (lc == NULL)
			return false;
		var = (Var *) ((TargetEntry *) lfirst(lc))->expr;
		if (var == NULL || !IsA(var, Var) || var->varattno != i + 1 ||
			att->attisdropped || att->atthasmissing ||
			var->vartype != att->atttypid ||
			(var->vartypmod != att->atttypmod && var->vartypmod != -1))
			return false;
		lc = lnext(tlist, lc);
	}
	return lc == NULL;
}

/*
 * ExecutorStart_hook: a routed statement is started as its copy whose plan
 * node has no target list (plan_info); the caller's statement, the portal's,
 * is left as it is.  Any other statement goes on untouched.
 */
static void
lookup_executor_start(QueryDesc *queryDesc, int eflags)
{
	Plan	   *top = queryDesc->plannedstmt->planTree;

	if (top != NULL && IsA(top, CustomScan) &&
		((CustomScan *) top)->methods == &lookup_scan_methods && top->targetlist != NIL)
	{
		LookupPlanInfo *info = plan_info((CustomScan *) top);

		/* a flat copy, made anew: whatever the statement is, it is its own */
		info->exec_stmt = *queryDesc->plannedstmt;
		info->exec_stmt.planTree = &info->exec.scan.plan;
		queryDesc->plannedstmt = &info->exec_stmt;
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * The node's result type, slot and projection from the plan's target list,
 * what ExecInitCustomScan would have done with it (see plan_info), when the
 * executor started the copy without it; the plan node as planned in its
 * place.  A node started as planned (a statement that names no column, or
 * a hook before lookup_executor_start that started it itself) has all
 * that from ExecInitCustomScan already.
 */
static LookupPlanInfo *
lookup_init_result(CustomScanState *node)
{
	PlanState  *ps = &node->ss.ps;
	LookupPlanInfo *info = plan_info((CustomScan *) ps->plan);
	List	   *tlist = info->plan->scan.plan.targetlist;
	TupleDesc	scandesc = node->ss.ss_ScanTupleSlot->tts_tupleDescriptor;

	if (ps->plan != &info->exec.scan.plan)
		return info;
	ps->plan = &info->plan->scan.plan;
	ps->ps_ResultTupleDesc = info->resultdesc;
	/* the table's shape is the plan's: any change to it replans */
	if (info->scan_tuple < 0)
		info->scan_tuple = tlist_is_scan_tuple(tlist, scandesc);
	if (info->scan_tuple)
	{
		/*
		 * The scan slot is the result, as in a scan node of PostgreSQL's
		 * that does not project (which has no result slot at all): the
		 * result slot ExecInitCustomScan made for the empty target list
		 * stays, unused, to be cleared by ExecEndCustomScan.
		 */
		ps->ps_ProjInfo = NULL;
		ps->resultopsset = ps->scanopsset;
		ps->resultopsfixed = ps->scanopsfixed;
		ps->resultops = ps->scanops;
	}
	else
	{
		ExecInitResultSlot(ps, &TTSOpsVirtual);
		ps->ps_ProjInfo = ExecBuildProjectionInfo(tlist, ps->ps_ExprContext, ps->ps_ResultTupleSlot,
												  ps, scandesc);
	}
	return info;
}

/* why this execution, with this snapshot, must read the heap, or -1 */
static int
fallback_reason(AlmanacMirror *m, Snapshot snapshot)
{
	if (!almanac_router_enabled)
		return ALMANAC_FALLBACK_ROUTER_OFF;
	/* off, or turned on (backfilled) after the snapshot was taken */
	if (!m->enabled || !almanac_mirror_seen_by(m, snapshot))
		return ALMANAC_FALLBACK_DISABLED;
	if (!m->in_sync)
		return ALMANAC_FALLBACK_OUT_OF_SYNC;
	if (m->altered)
		return ALMANAC_FALLBACK_ALTERED;
	if (almanac_mirror_written_by_me(m->relid) ||
		almanac_mirror_rewritten_after(m->relid, snapshot))
		return ALMANAC_FALLBACK_OWN_WRITES;
	if (IsolationIsSerializable())
		return ALMANAC_FALLBACK_SERIALIZABLE;
	return -1;
}

/*
 * The state of a value expression of the plan (a key value, a bound, the
 * limit): a Const is its own state, with nothing to evaluate, and so is a
 * parameter of the statement (PARAM_EXTERN: a prepared statement's $1, a
 * PL/pgSQL variable), read at execution as ExecEvalParamExtern reads it;
 * anything else gets an ExprState.  Most keys are one or the other
 * (chain_id = 'eth' AND block_number = $1), and a plan is started anew at
 * every execution: ExecInitExpr was a tenth of the scan's start-up, and
 * still 2.5 % of a row-cache hit's CPU for a lone parameter.
 */
static Node *
value_state(Expr *e, PlanState *ps)
{
	if (IsA(e, Const) || (IsA(e, Param) && ((Param *) e)->paramkind == PARAM_EXTERN))
		return (Node *) e;
	return (Node *) ExecInitExpr(e, ps);
}

/* a PARAM_EXTERN's value, as ExecEvalParamExtern finds it */
static Datum
param_value(Param *p, ExprContext *econtext, bool *isnull)
{
	ParamListInfo params = econtext->ecxt_param_list_info;

	if (params != NULL && p->paramid > 0 && p->paramid <= params->numParams)
	{
		ParamExternData prmdata;
		ParamExternData *prm;

		if (params->paramFetch != NULL)
			prm = params->paramFetch(params, p->paramid, false, &prmdata);
		else
			prm = &params->params[p->paramid - 1];
		if (OidIsValid(prm->ptype))
		{
			if (prm->ptype != p->paramtype)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("type of parameter %d (%s) does not match that when preparing the plan (%s)",
								p->paramid, format_type_be(prm->ptype),
								format_type_be(p->paramtype))));
			*isnull = prm->isnull;
			return prm->value;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("no value found for parameter %d", p->paramid)));
	return (Datum) 0;			/* keep the compiler quiet */
}

static Datum
value_eval(Node *vs, ExprContext *econtext, bool *isnull)
{
	if (IsA(vs, Const))
	{
		*isnull = ((Const *) vs)->constisnull;
		return ((Const *) vs)->constvalue;
	}
	if (IsA(vs, Param))
		return param_value((Param *) vs, econtext, isnull);
	return ExecEvalExpr((ExprState *) vs, econtext, isnull);
}

static Oid
value_type(Node *vs)
{
	if (IsA(vs, Const))
		return ((Const *) vs)->consttype;
	if (IsA(vs, Param))
		return ((Param *) vs)->paramtype;
	return exprType((Node *) ((ExprState *) vs)->expr);
}

static void
lookup_begin(CustomScanState *node, EState *estate, int eflags)
{
	LookupState *ls = (LookupState *) node;
	CustomScan *cs;
	Relation	rel = node->ss.ss_currentRelation;
	LookupPlanInfo *info;
	ListCell   *lc;
	int			neq;

	info = lookup_init_result(node);
	cs = (CustomScan *) node->ss.ps.plan;

	/*
	 * The descriptor must be no older than the statement's snapshot, taken
	 * before the executor started.  PostgreSQL takes in invalidations where
	 * it parses a table name or acquires a lock it does not hold yet, and
	 * disable_mirror or DISABLE TRIGGER do not conflict with ACCESS SHARE: a
	 * prepared statement (or PL/pgSQL's plan) in a READ COMMITTED
	 * transaction that held the lock kept the descriptor from before them,
	 * while its snapshot saw writes made after them that never reached the
	 * mirror.  Those writers waited for that change's lock, released after
	 * its invalidation was sent: the queue holds it now.  With no message
	 * pending this is one unlocked test (sinvaladt.c).  A descriptor newer
	 * than the snapshot is almanac_mirror_seen_by's to judge
	 * (mirror_stale_descriptor.spec).
	 */
	AcceptInvalidationMessages();
	ls->m = almanac_mirror_lookup(RelationGetRelid(rel));
	if (ls->m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the mirror definition of table \"%s\" is gone", RelationGetRelationName(rel)),
				 errhint("Run the statement again: it is planned anew.")));
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	ls->fallback = fallback_reason(ls->m, estate->es_snapshot);
	if (ls->m->counters)
	{
		if (ls->fallback < 0)
			pg_atomic_fetch_add_u64(&ls->m->counters->routed, 1);
		else
			pg_atomic_fetch_add_u64(&ls->m->counters->fallback[ls->fallback], 1);
	}
	if (ls->fallback >= 0 && !OidIsValid(ls->m->index_oid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no unique index on its mirror's key", RelationGetRelationName(rel)),
				 errhint("Run the statement again: it is planned anew.")));

	neq = intVal(list_nth(cs->custom_private, LOOKUP_PRIV_NEQ));
	if (info->plain)
	{
		/* nothing to initialise: no list built per execution either */
		ls->keystates = info->keystates;
		ls->boundstates = info->boundstates;
		ls->limitstate = info->limitstate;
	}
	else
	{
		foreach(lc, cs->custom_exprs)
		{
			Node	   *es = value_state(lfirst(lc), &node->ss.ps);
			int			i = foreach_current_index(lc);

			if (i < neq)
				ls->keystates = lappend(ls->keystates, es);
			else if (i < neq + list_length(ls->strategies))
				ls->boundstates = lappend(ls->boundstates, es);
			else
				ls->limitstate = es;
		}
	}
	initStringInfo(&ls->key);
	if (ls->kind == ALMANAC_LOOKUP_LAST)
		initStringInfo(&ls->upper);
	if (ls->fallback < 0)
	{
		ls->a = &ls->access;
		/* lookups by key catch the reader up only for keys written since */
		almanac_mirror_access_flags(ls->m, ls->a,
									ls->kind <= ALMANAC_LOOKUP_MULTIGET ? ALMANAC_ACCESS_POINT : 0);
	}
	else
		ls->heapslot = table_slot_create(rel, &estate->es_tupleTable);
	if (ls->kind >= ALMANAC_LOOKUP_RANGE)
	{
		ls->range.m = ls->m;
		ls->range.rel = rel;
		ls->range.snapshot = estate->es_snapshot;
		ls->range.heap = ls->fallback >= 0;
		ls->range.a = ls->a;
		ls->range.recent = ls->kind == ALMANAC_LOOKUP_RECENT;
		ls->range.neq = list_length(ls->keystates);
		ls->range.skip = almanac_range_skip(&cs->scan.plan, RelationGetDescr(rel));
		ls->range.cxt = AllocSetContextCreate(estate->es_query_cxt, "almanac lookup range",
											  ALLOCSET_DEFAULT_SIZES);
	}
}

/*
 * A key value as the key column's type: integers widened to the column's
 * (the equality may be cross-type, block_number = 5 is int8 = int4).  False
 * when no row can have it (no key holds it, so nothing equals it).
 */
static bool
key_value(Oid coltype, Oid valtype, Datum v, Datum *out)
{
	int64		i;

	switch (valtype)
	{
		case INT2OID:
			i = DatumGetInt16(v);
			break;
		case INT4OID:
			i = DatumGetInt32(v);
			break;
		case INT8OID:
			i = DatumGetInt64(v);
			break;
		default:
			*out = v;
			return almanac_key_value_in_domain(coltype, v);
	}
	switch (coltype)
	{
		case INT2OID:
			if (i < PG_INT16_MIN || i > PG_INT16_MAX)
				return false;
			*out = Int16GetDatum((int16) i);
			break;
		case INT4OID:
			if (i < PG_INT32_MIN || i > PG_INT32_MAX)
				return false;
			*out = Int32GetDatum((int32) i);
			break;
		default:
			*out = Int64GetDatum(i);
			break;
	}
	return almanac_key_value_in_domain(coltype, *out);
}

typedef struct MultiSort
{
	FmgrInfo	cmp;
	Oid			collation;
} MultiSort;

static int
multi_cmp(const void *a, const void *b, void *arg)
{
	MultiSort  *s = arg;

	return DatumGetInt32(FunctionCall2Coll(&s->cmp, s->collation,
										   *(const Datum *) a, *(const Datum *) b));
}

/*
 * RANGE, RECENT: the equality values, the bounds normalised to one closed
 * interval [lo, hi] of the column's type (no row has a negative key), and
 * the limit (NULL: none; negative: the executor's error).
 */
static void
range_start(LookupState *ls)
{
	ExprContext *econtext = ls->css.ss.ps.ps_ExprContext;
	AlmanacRange *r = &ls->range;
	Oid			bt;
	ListCell   *lc;
	ListCell   *sc;

	almanac_range_end(r);
	r->empty = ls->empty;
	r->limit = -1;
	memcpy(r->eq, ls->keyvalues, sizeof(Datum) * r->neq);
	if (ls->limitstate)
	{
		bool		isnull;
		Datum		v = value_eval(ls->limitstate, econtext, &isnull);

		if (!isnull)
		{
			r->limit = DatumGetInt64(v);
			if (r->limit < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_ROW_COUNT_IN_LIMIT_CLAUSE),
						 errmsg("LIMIT must not be negative")));
		}
	}
	if (r->recent)
		return;
	bt = ls->m->table.layout.typids[r->neq];
	r->lo = 0;
	r->hi = almanac_range_type_max(bt);
	forboth(lc, ls->boundstates, sc, ls->strategies)
	{
		Node	   *es = lfirst(lc);
		bool		isnull;
		Datum		v = value_eval(es, econtext, &isnull);
		int64		i;

		if (isnull)
		{
			r->empty = true;
			continue;
		}
		i = almanac_range_int(value_type(es), v);
		switch (lfirst_int(sc))
		{
			case BTGreaterStrategyNumber:
				if (i == PG_INT64_MAX)
					r->empty = true;
				else
					r->lo = Max(r->lo, i + 1);
				break;
			case BTGreaterEqualStrategyNumber:
				r->lo = Max(r->lo, i);
				break;
			case BTLessStrategyNumber:
				if (i == PG_INT64_MIN)
					r->empty = true;
				else
					r->hi = Min(r->hi, i - 1);
				break;
			default:
				r->hi = Min(r->hi, i);
				break;
		}
	}
	if (r->lo > r->hi)
		r->empty = true;
}

/*
 * Evaluate the key expressions.  MULTIGET: the array's elements that can be
 * keys, in the index's order and each once, as the heap's index scan
 * returns them.
 */
static void
lookup_start(LookupState *ls)
{
	ExprContext *econtext = ls->css.ss.ps.ps_ExprContext;
	AlmanacMirror *m = ls->m;
	int			n = list_length(ls->keystates);
	ListCell   *lc;
	MemoryContext old = MemoryContextSwitchTo(ls->css.ss.ps.state->es_query_cxt);

	ls->started = true;
	ls->empty = false;
	ls->next = 0;
	foreach(lc, ls->keystates)
	{
		int			i = foreach_current_index(lc);
		Node	   *es = lfirst(lc);
		bool		isnull;
		Datum		v = value_eval(es, econtext, &isnull);
		Oid			coltype = m->table.layout.typids[i];

		if (isnull)
		{
			ls->empty = true;
			break;
		}
		if (ls->kind == ALMANAC_LOOKUP_MULTIGET && i == n - 1)
		{
			ArrayType  *arr = DatumGetArrayTypeP(v);
			Oid			elemtype = ARR_ELEMTYPE(arr);
			int16		typlen;
			bool		typbyval;
			char		typalign;
			Datum	   *elems;
			bool	   *nulls;
			int			nelems;
			MultiSort	sort;
			int			k = 0;

			get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
			deconstruct_array(arr, elemtype, typlen, typbyval, typalign, &elems, &nulls, &nelems);
			ls->multi = palloc(sizeof(Datum) * Max(nelems, 1));
			for (int j = 0; j < nelems; j++)
				if (!nulls[j] && key_value(coltype, elemtype, elems[j], &ls->multi[k]))
					k++;
			fmgr_info(m->key_cmpprocs[i], &sort.cmp);
			sort.collation = m->key_collations[i];
			qsort_arg(ls->multi, k, sizeof(Datum), multi_cmp, &sort);
			ls->nmulti = 0;
			for (int j = 0; j < k; j++)
				if (ls->nmulti == 0 || multi_cmp(&ls->multi[ls->nmulti - 1], &ls->multi[j], &sort) != 0)
					ls->multi[ls->nmulti++] = ls->multi[j];
			continue;
		}
		if (!key_value(coltype, value_type(es), v, &ls->keyvalues[i]))
		{
			ls->empty = true;
			break;
		}
	}
	MemoryContextSwitchTo(old);
	if (ls->kind >= ALMANAC_LOOKUP_RANGE)
		range_start(ls);
}

/* the mirror's row of the key in ls->keyvalues into the scan slot */
static bool
mirror_get(LookupState *ls, TupleTableSlot *slot)
{
	const char *image;
	uint32		len;

	resetStringInfo(&ls->key);
	almanac_key_encode(&ls->key, &ls->m->table.layout, ls->m->nkeys, ls->keyvalues, false);
	image = almanac_mirror_read(ls->a, ls->key.data, ls->key.len,
								ls->css.ss.ps.state->es_snapshot, false, &len);
	if (image == NULL)
		return false;
	almanac_value_decode(image, len, slot->tts_tupleDescriptor, ls->m->table.values, slot->tts_values,
						 slot->tts_isnull, NULL);
	ExecStoreVirtualTuple(slot);
	return true;
}

/*
 * LAST: the mirror's last visible row of the key prefix: a reverse iterator,
 * or what the last one read while nothing was committed since (the
 * access's last-row cache, kv/access.h)
 */
static bool
mirror_last(LookupState *ls, TupleTableSlot *slot)
{
	AlmanacMirror *m = ls->m;
	int			neq = list_length(ls->keystates);
	const char *image;
	uint32		len;

	resetStringInfo(&ls->key);
	almanac_key_encode(&ls->key, &m->table.layout, neq, ls->keyvalues, true);
	almanac_prefix_end(&ls->key, &ls->upper);
	/* the store only, as every read of the router (router.h) */
	if (!almanac_access_last_row(ls->a, ls->key.data, ls->key.len, ls->upper.data, ls->upper.len,
								 ls->css.ss.ps.state->es_snapshot, &image, &len))
		return false;
	almanac_value_decode(image, len, slot->tts_tupleDescriptor, m->table.values,
						 slot->tts_values, slot->tts_isnull, NULL);
	ExecStoreVirtualTuple(slot);
	return true;
}

/* the heap's row of the key, by its unique index, with the same snapshot */
static bool
heap_get(LookupState *ls, TupleTableSlot *slot)
{
	AlmanacMirror *m = ls->m;
	bool		last = ls->kind == ALMANAC_LOOKUP_LAST;

	if (!almanac_mirror_heap_first(m, ls->css.ss.ss_currentRelation,
								   ls->css.ss.ps.state->es_snapshot, ls->keyvalues,
								   last ? list_length(ls->keystates) : m->nkeys,
								   last || m->latest_attno != 0, ls->heapslot))
		return false;
	ExecCopySlot(slot, ls->heapslot);
	return true;
}

static bool
read_row(LookupState *ls, TupleTableSlot *slot)
{
	if (ls->fallback >= 0)
		return heap_get(ls, slot);
	if (ls->kind == ALMANAC_LOOKUP_LAST)
		return mirror_last(ls, slot);
	return mirror_get(ls, slot);
}

/* ExecScan's access method: the next row of the lookup */
static TupleTableSlot *
lookup_next(ScanState *node)
{
	LookupState *ls = (LookupState *) node;
	TupleTableSlot *slot = node->ss_ScanTupleSlot;
	MemoryContext old;
	bool		found = false;

	ExecClearTuple(slot);
	if (!ls->started)
		lookup_start(ls);
	if (ls->empty)
		return slot;
	if (ls->kind >= ALMANAC_LOOKUP_RANGE)
	{
		if (!almanac_range_next(&ls->range, slot, node->ps.ps_ExprContext->ecxt_per_tuple_memory))
			ExecClearTuple(slot);
		return slot;
	}

	/*
	 * What one row's read allocates, its datums included: ExecScan resets
	 * the context before it asks for the next row, when the slot is cleared.
	 */
	old = MemoryContextSwitchTo(node->ps.ps_ExprContext->ecxt_per_tuple_memory);
	if (ls->kind == ALMANAC_LOOKUP_MULTIGET)
	{
		int			last = ls->m->nkeys - 1;

		while (!found && ls->next < ls->nmulti)
		{
			ls->keyvalues[last] = ls->multi[ls->next++];
			found = read_row(ls, slot);
		}
	}
	else if (ls->next == 0)
	{
		ls->next = 1;
		found = read_row(ls, slot);
	}
	MemoryContextSwitchTo(old);
	if (!found)
		ExecClearTuple(slot);
	return slot;
}

static bool
lookup_recheck(ScanState *node, TupleTableSlot *slot)
{
	return true;
}

static TupleTableSlot *
lookup_exec(CustomScanState *node)
{
	return ExecScan(&node->ss, lookup_next, lookup_recheck);
}

static void
lookup_end(CustomScanState *node)
{
	LookupState *ls = (LookupState *) node;

	if (ls->kind >= ALMANAC_LOOKUP_RANGE && ls->range.m)
		almanac_range_close(&ls->range);
	if (ls->a)
		almanac_access_release(ls->a);
}

static void
lookup_rescan(CustomScanState *node)
{
	LookupState *ls = (LookupState *) node;

	ls->started = false;
	ls->next = 0;
	if (ls->kind >= ALMANAC_LOOKUP_RANGE && ls->range.m)
		almanac_range_end(&ls->range);
}

static void
lookup_explain(CustomScanState *node, List *ancestors, ExplainState *es)
{
	LookupState *ls = (LookupState *) node;
	CustomScan *cs = (CustomScan *) node->ss.ps.plan;
	List	   *context;
	Node	   *keys;
	char	   *s;

	context = set_deparse_context_plan(es->deparse_cxt, node->ss.ps.plan, ancestors);
	keys = (Node *) make_ands_explicit(ls->keyquals);
	s = deparse_expression(keys, context, false, false);
	ExplainPropertyText("Key", s, es);
	ExplainPropertyText("Lookup",
						ls->kind == ALMANAC_LOOKUP_GET ?
						(ls->m && ls->m->latest_attno ? "latest row of the key" : "one key") :
						ls->kind == ALMANAC_LOOKUP_MULTIGET ? "keys of an array" :
						ls->kind == ALMANAC_LOOKUP_RANGE ? "range of the prefix, newest first" :
						ls->kind == ALMANAC_LOOKUP_RECENT ? "newest of the prefix, every value of the next column" :
						"last key of the prefix", es);
	if (intVal(list_nth(cs->custom_private, LOOKUP_PRIV_HAS_LIMIT)))
		ExplainPropertyText("Limit",
							deparse_expression(llast(cs->custom_exprs), context, false, false),
							es);
	if (es->analyze && ls->fallback >= 0)
		ExplainPropertyText("Heap Fallback", almanac_fallback_names[ls->fallback], es);
}
