/*-------------------------------------------------------------------------
 *
 * planner.c
 *	  The router's planner hook: recognise a lookup on a mirrored table and
 *	  build its PlannedStmt directly.  See router.h.
 *
 * Why planner_hook and not set_rel_pathlist_hook (a path for the mirror
 * among the heap's): half of a heap point lookup's cost is parse, analysis
 * and planning, and standard_planner alone is most of the planning.  A path
 * hook runs inside standard_planner and saves none of it; the planner hook
 * replaces it for the shapes below, and hands everything else to the
 * previous hook or standard_planner untouched.
 *
 * Recognised, on a table with a mirror (mirror.h), a single-table SELECT
 * without joins, subqueries, CTEs, grouping, aggregates, window functions,
 * set-returning functions, DISTINCT, locking clauses or system columns:
 *
 *	GET			every key column "= value" (a Const or an external Param),
 *				other conditions kept as a filter;
 *	MULTIGET	the same with the last key column "IN (...)" / "= ANY (array)";
 *	LAST		all key columns but the last "= value", ORDER BY the last
 *				DESC LIMIT 1 (the latest block of a chain), no other condition,
 *				the last column stored ascending (keycodec.h);
 *	latest		on a latest mirror (account_states): every key column
 *				"= value", ORDER BY the latest column DESC LIMIT 1, no other
 *				condition: a GET of the mirror's key;
 *	RANGE		all key columns but the last two "= value", the next to last
 *				(an integer) compared with values (<, <=, >, >=, BETWEEN; at
 *				most one lower and one upper bound, maybe none), no other
 *				condition, no ORDER BY or ORDER BY the last two DESC, and
 *				any LIMIT count without OFFSET: events of a contract and
 *				topic0 over a block range, newest first;
 *	RECENT		all key columns but the last three "= value", no other
 *				condition, ORDER BY the last two DESC, LIMIT a count: the
 *				latest events of a contract, whatever their topic0.
 *
 * The target list may be any expression over the row's columns.  The plan
 * does not depend on parameter values (they are key expressions evaluated
 * at execution), so a prepared statement keeps it as its generic plan; the
 * range table is the query's, so privileges are checked by the executor,
 * and relationOids lists the table, so any invalidation of it (ALTER, a
 * change of its mirror's state) replans.
 *
 * Not routed: row-level security applying to the query, FOR UPDATE/SHARE,
 * SERIALIZABLE, a table with inheritance children, scrollable cursors, a
 * standby (the store is not replicated: the owner starts only after
 * recovery; a plan made during recovery is never routed, even once the
 * server is promoted) and almanac.router = off.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "jit/jit.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "mirror/check.h"
#include "mirror/mirror.h"
#include "router/router.h"

bool		almanac_router_enabled = true;

static planner_hook_type prev_planner_hook = NULL;

/* the btree family whose equality a key column's type uses, or InvalidOid */
static Oid
key_family(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return INTEGER_BTREE_FAM_OID;
		case TEXTOID:
			return TEXT_BTREE_FAM_OID;
		default:
			return InvalidOid;
	}
}

static bool
non_extern_param_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param))
		return ((Param *) node)->paramkind != PARAM_EXTERN;
	return expression_tree_walker(node, non_extern_param_walker, context);
}

/*
 * A value the executor can compute once, before reading any row: no column,
 * no volatile function, no subquery, no parameter but the statement's own
 * ($1, ...).  Constants and parameters mostly; also lower($2) in a SQL
 * function's body, or now() - interval '1 hour'.
 */
static bool
is_value(Node *n)
{
	/* the query has no aggregate or window function (route() checks) */
	return n != NULL && !contain_var_clause(n) && !contain_volatile_functions(n) &&
		!expression_returns_set(n) && !non_extern_param_walker(n, NULL) &&
		!IsA(n, SubLink) && !checkExprHasSubLink(n);
}

/*
 * Key values and bounds folded as the planner folds a qual's: constant
 * subexpressions computed once, SQL functions inlined ('chain' || 1 is
 * textanycat, a SQL function that would otherwise be parsed and planned at
 * every execution, since the scan builds its expressions anew each time).
 * Parameters stay parameters (no bound values are given), so the plan stays
 * generic.  An inlined function leaves no trace in the plan, and the query
 * names only the outermost one: as the planner does, each is added to
 * *invalitems (the plan's invalItems), so that replacing it (CREATE OR
 * REPLACE FUNCTION of a function called by the one in the query) replans a
 * cached plan instead of leaving it with the old body.
 */
static List *
fold_values(List *values, List **invalitems)
{
	PlannerGlobal glob = {.type = T_PlannerGlobal};
	PlannerInfo root = {.type = T_PlannerInfo};
	List	   *folded;

	/* glob.boundParams NULL: parameters stay; only glob.invalItems is filled */
	root.glob = &glob;
	glob.invalItems = *invalitems;
	folded = (List *) eval_const_expressions(&root, (Node *) values);
	*invalitems = glob.invalItems;
	return folded;
}

/* the column number of a plain user column of relation 1, or 0 */
static AttrNumber
column_of(Node *n)
{
	while (n && IsA(n, RelabelType))
		n = (Node *) ((RelabelType *) n)->arg;
	if (n && IsA(n, Var) && ((Var *) n)->varno == 1 && ((Var *) n)->varlevelsup == 0 &&
		((Var *) n)->varattno > 0)
		return ((Var *) n)->varattno;
	return 0;
}

/* equality of the column's family, with a deterministic collation */
static bool
is_key_equality(Oid opno, Oid inputcollid, Oid family)
{
	if (!op_in_opfamily(opno, family) ||
		get_op_opfamily_strategy(opno, family) != BTEqualStrategyNumber)
		return false;
	return !OidIsValid(inputcollid) || inputcollid == DEFAULT_COLLATION_OID ||
		inputcollid == C_COLLATION_OID || get_collation_isdeterministic(inputcollid);
}

/* flatten nested ANDs of the WHERE clause into a list */
static List *
conjuncts(Node *qual, List *out)
{
	if (qual == NULL)
		return out;
	if (IsA(qual, List))
	{
		ListCell   *lc;

		foreach(lc, (List *) qual)
			out = conjuncts(lfirst(lc), out);
		return out;
	}
	if (is_andclause(qual))
		return conjuncts((Node *) ((BoolExpr *) qual)->args, out);
	return lappend(out, qual);
}

static bool
has_system_column_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
		return ((Var *) node)->varattno < 0;
	return expression_tree_walker(node, has_system_column_walker, context);
}

/*
 * ORDER BY <attno> DESC LIMIT 1: the query's single sort key is the column,
 * descending by its family's ">", and the limit the constant 1.
 */
static bool
is_last_by(Query *q, AttrNumber attno, Oid family)
{
	SortGroupClause *sc;
	TargetEntry *tle;
	Const	   *c;

	if (list_length(q->sortClause) != 1 || q->limitOffset != NULL ||
		q->limitCount == NULL || q->limitOption != LIMIT_OPTION_COUNT)
		return false;
	sc = linitial(q->sortClause);
	tle = get_sortgroupclause_tle(sc, q->targetList);
	if (column_of((Node *) tle->expr) != attno ||
		get_op_opfamily_strategy(sc->sortop, family) != BTGreaterStrategyNumber)
		return false;
	/* LIMIT 1 is int8(1): fold the cast */
	c = (Const *) eval_const_expressions(NULL, q->limitCount);
	if (!IsA(c, Const))
		return false;
	return !c->constisnull && c->consttype == INT8OID && DatumGetInt64(c->constvalue) == 1;
}

/*
 * ORDER BY the key columns from 'from' to the last, each DESC (newest first):
 * block_number DESC, log_index DESC on events.
 */
static bool
is_newest_first(Query *q, AlmanacMirror *m, int from)
{
	ListCell   *lc;

	if (list_length(q->sortClause) != m->nkeys - from)
		return false;
	foreach(lc, q->sortClause)
	{
		SortGroupClause *sc = lfirst(lc);
		TargetEntry *tle = get_sortgroupclause_tle(sc, q->targetList);
		int			k = from + foreach_current_index(lc);
		Oid			typid = m->table.layout.typids[k];

		if (!almanac_key_type_orders(typid) ||
			column_of((Node *) tle->expr) != m->table.keyattrs[k] ||
			get_op_opfamily_strategy(sc->sortop, key_family(typid)) != BTGreaterStrategyNumber)
			return false;
	}
	return true;
}

/*
 * Key columns k and k + 1 (the order of a RANGE or RECENT) are stored in the
 * same byte order, so that one iteration gives both in order.
 */
static bool
same_direction(AlmanacMirror *m, int k)
{
	return ALMANAC_KEY_DESCENDING(&m->table.layout, k) ==
		ALMANAC_KEY_DESCENDING(&m->table.layout, k + 1);
}

/*
 * A comparison of key column k with a value (either side): its strategy,
 * commuted so that it reads "column op value", and the value; 0 if not one.
 */
static int
key_bound(Node *c, AlmanacMirror *m, int k, Node **value)
{
	OpExpr	   *op = (OpExpr *) c;
	Oid			family = key_family(m->table.layout.typids[k]);
	int			strategy;
	bool		commuted = false;

	if (!IsA(c, OpExpr) || list_length(op->args) != 2 || family != INTEGER_BTREE_FAM_OID ||
		!op_in_opfamily(op->opno, family))
		return 0;
	if (column_of(linitial(op->args)) == m->table.keyattrs[k] && is_value(lsecond(op->args)))
		*value = lsecond(op->args);
	else if (column_of(lsecond(op->args)) == m->table.keyattrs[k] && is_value(linitial(op->args)))
	{
		*value = linitial(op->args);
		commuted = true;
	}
	else
		return 0;
	strategy = get_op_opfamily_strategy(op->opno, family);
	if (strategy == BTEqualStrategyNumber || strategy == 0)
		return 0;
	if (commuted)				/* value < column: column > value */
		strategy = BTMaxStrategyNumber + 1 - strategy;
	return strategy;
}

/*
 * The query's LIMIT, if it is a plain count of rows computable before
 * reading one (a constant or parameter; NULL: none), and no OFFSET.
 */
static bool
plain_limit(Query *q, Node **limit)
{
	*limit = q->limitCount;
	if (q->limitOffset != NULL)
		return false;
	if (q->limitCount == NULL)
		return true;
	return q->limitOption == LIMIT_OPTION_COUNT && is_value(q->limitCount);
}

/*
 * The routed plan of the query, or NULL.  Cheap checks first: most queries
 * leave at the first lines, without a catalog or cache lookup.
 */
/*
 * A cursor declared without SCROLL or NO SCROLL (DECLARE, PL/pgSQL's
 * cursors: CURSOR_OPT_FAST_PLAN) is made scrollable by PostgreSQL when its
 * plan can run backward, as an index scan can, and FETCH BACKWARD then works
 * on the heap.  A routed plan runs forward only, so such a cursor would fail
 * where the heap's works: it is left to PostgreSQL.  NO SCROLL cursors are
 * routed.
 */
static bool
may_scroll(int cursorOptions)
{
	return (cursorOptions & CURSOR_OPT_FAST_PLAN) != 0 &&
		(cursorOptions & CURSOR_OPT_NO_SCROLL) == 0;
}

static PlannedStmt *
route(Query *q, int cursorOptions)
{
	RangeTblEntry *rte;
	RangeTblRef *rtr;
	AlmanacMirror *m;
	List	   *quals;
	List	   *residual = NIL;
	Node	   *eq[INDEX_MAX_KEYS] = {0};
	Node	   *eqqual[INDEX_MAX_KEYS] = {0};
	bool		is_array = false;
	AlmanacLookupKind kind;
	int			neq;
	List	   *keyexprs = NIL;
	List	   *keyquals = NIL;
	List	   *bounds = NIL;
	List	   *strategies = NIL;
	Node	   *limit = NULL;
	ListCell   *lc;
	PlannedStmt *stmt;
	CustomScan *scan;
	List	   *invalitems = NIL;

	if (q->commandType != CMD_SELECT || q->utilityStmt != NULL ||
		list_length(q->rtable) != 1 || q->hasAggs || q->hasWindowFuncs ||
		q->hasTargetSRFs || q->hasSubLinks || q->hasDistinctOn || q->hasRecursive ||
		q->hasModifyingCTE || q->hasForUpdate || q->hasRowSecurity ||
		q->cteList != NIL || q->rowMarks != NIL || q->groupClause != NIL ||
		q->groupingSets != NIL || q->havingQual != NULL || q->windowClause != NIL ||
		q->distinctClause != NIL || q->setOperations != NULL ||
		(cursorOptions & CURSOR_OPT_SCROLL) || may_scroll(cursorOptions) ||
		IsolationIsSerializable() ||
		RecoveryInProgress())
		return NULL;
	rte = linitial(q->rtable);
	if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_RELATION ||
		rte->tablesample != NULL || rte->securityQuals != NIL ||
		q->jointree == NULL || list_length(q->jointree->fromlist) != 1)
		return NULL;
	rtr = linitial(q->jointree->fromlist);
	if (!IsA(rtr, RangeTblRef) || rtr->rtindex != 1)
		return NULL;

	m = almanac_mirror_lookup(rte->relid);
	if (m == NULL || !m->enabled)
		return NULL;
	/* inheritance children would be scanned too */
	if (rte->inh && has_subclass(rte->relid))
		return NULL;
	if (has_system_column_walker((Node *) q->targetList, NULL) ||
		has_system_column_walker(q->jointree->quals, NULL))
		return NULL;
	/* the scan returns no junk column (almanac_lookup_plan): they must be last */
	foreach(lc, q->targetList)
		if (((TargetEntry *) lfirst(lc))->resno != foreach_current_index(lc) + 1 ||
			(((TargetEntry *) lfirst(lc))->resjunk && lnext(q->targetList, lc) != NULL &&
			 !((TargetEntry *) lfirst(lnext(q->targetList, lc)))->resjunk))
			return NULL;

	/* sort the conditions into key equalities and the rest */
	quals = conjuncts(q->jointree->quals, NIL);
	foreach(lc, quals)
	{
		Node	   *c = lfirst(lc);
		int			k = -1;
		Node	   *value = NULL;

		/*
		 * A constant condition: true changes nothing; false or NULL is left
		 * to PostgreSQL's planner, which folds the WHERE clause in order and
		 * stops at it, never computing the key values after it (WHERE false
		 * AND block_number = 1/0 returns no row), where the router would.
		 */
		if (IsA(c, Const))
		{
			if (((Const *) c)->constisnull || !DatumGetBool(((Const *) c)->constvalue))
				return NULL;
			continue;
		}
		if (IsA(c, OpExpr) && list_length(((OpExpr *) c)->args) == 2)
		{
			OpExpr	   *op = (OpExpr *) c;
			Node	   *l = linitial(op->args);
			Node	   *r = lsecond(op->args);
			AttrNumber	attno = column_of(l);

			if (attno && is_value(r))
				value = r;
			else if ((attno = column_of(r)) != 0 && is_value(l))
				value = l;
			for (int i = 0; value && i < m->nkeys; i++)
				if (m->table.keyattrs[i] == attno &&
					is_key_equality(op->opno, op->inputcollid,
									key_family(m->table.layout.typids[i])))
					k = i;
		}
		else if (IsA(c, ScalarArrayOpExpr))
		{
			ScalarArrayOpExpr *op = (ScalarArrayOpExpr *) c;
			AttrNumber	attno = column_of(linitial(op->args));
			int			last = m->nkeys - 1;

			/* the last key column only: keys in order, each once */
			if (op->useOr && attno && attno == m->table.keyattrs[last] &&
				is_value(lsecond(op->args)) &&
				is_key_equality(op->opno, op->inputcollid,
								key_family(m->table.layout.typids[last])) &&
				eq[last] == NULL)
			{
				k = last;
				value = lsecond(op->args);
				is_array = true;
			}
		}
		if (k >= 0 && eq[k] == NULL)
		{
			eq[k] = value;
			eqqual[k] = c;
		}
		else
			residual = lappend(residual, c);
	}
	for (neq = 0; neq < m->nkeys && eq[neq] != NULL; neq++)
		;
	for (int i = neq; i < m->nkeys; i++)
		if (eq[i] != NULL)
			return NULL;		/* a gap: not a key prefix */

	if (!m->latest_attno && !is_array && neq >= 1 && neq == m->nkeys - 2 &&
		almanac_key_type_orders(m->table.layout.typids[neq]) &&
		almanac_key_type_orders(m->table.layout.typids[neq + 1]) &&
		same_direction(m, neq) &&
		(q->sortClause == NIL || is_newest_first(q, m, neq)) && plain_limit(q, &limit))
	{
		/* events of a contract and topic0, block_number in a range */
		bool		lower = false;
		bool		upper = false;

		foreach(lc, residual)
		{
			Node	   *value = NULL;
			int			strategy = key_bound(lfirst(lc), m, neq, &value);

			if (strategy == BTGreaterStrategyNumber || strategy == BTGreaterEqualStrategyNumber)
			{
				if (lower)
					return NULL;
				lower = true;
			}
			else if (strategy == BTLessStrategyNumber || strategy == BTLessEqualStrategyNumber)
			{
				if (upper)
					return NULL;
				upper = true;
			}
			else
				return NULL;
			bounds = lappend(bounds, value);
			strategies = lappend_int(strategies, strategy);
			/* a copy: the plan shares no node between two of its lists */
			keyquals = lappend(keyquals, copyObject(lfirst(lc)));
		}
		residual = NIL;
		kind = ALMANAC_LOOKUP_RANGE;
	}
	else if (!m->latest_attno && !is_array && neq >= 1 && neq == m->nkeys - 3 &&
			 residual == NIL && same_direction(m, neq + 1) &&
			 is_newest_first(q, m, neq + 1) && plain_limit(q, &limit) &&
			 limit != NULL)
	{
		/* the latest events of a contract, whatever their topic0 */
		kind = ALMANAC_LOOKUP_RECENT;
	}
	else if (m->latest_attno)
	{
		/* the latest row of a key: the mirror's GET */
		if (neq != m->nkeys || is_array || residual != NIL ||
			!is_last_by(q, m->latest_attno, INTEGER_BTREE_FAM_OID))
			return NULL;
		kind = ALMANAC_LOOKUP_GET;
	}
	else if (neq == m->nkeys && q->sortClause == NIL && q->limitCount == NULL &&
			 q->limitOffset == NULL)
		kind = is_array ? ALMANAC_LOOKUP_MULTIGET : ALMANAC_LOOKUP_GET;
	else if (neq == m->nkeys - 1 && !is_array && residual == NIL &&
			 almanac_key_type_orders(m->table.layout.typids[neq]) &&
			 !ALMANAC_KEY_DESCENDING(&m->table.layout, neq) &&
			 is_last_by(q, m->table.keyattrs[neq], key_family(m->table.layout.typids[neq])))
		kind = ALMANAC_LOOKUP_LAST;
	else
		return NULL;
	if (contain_volatile_functions((Node *) residual))
		return NULL;

	/*
	 * The plan takes the query's own nodes, as standard_planner does (the
	 * planner may scribble on its input: plancache.c plans a copy of the
	 * query each time), except the key conditions shown by EXPLAIN, which
	 * contain the key values: a copy, so that no node is in the plan twice.
	 * Copying the target list and the range table was a tenth of the hook's
	 * time under -M simple (docs/benchmarks.md, "Router benchmark").
	 */
	for (int i = neq - 1; i >= 0; i--)
	{
		keyexprs = lcons(eq[i], keyexprs);
		keyquals = lcons(copyObject(eqqual[i]), keyquals);
	}

	keyexprs = fold_values(keyexprs, &invalitems);
	bounds = fold_values(bounds, &invalitems);
	scan = almanac_lookup_plan(rte->relid, kind, q->targetList, residual, keyexprs, keyquals,
							   bounds, strategies, limit);

	stmt = makeNode(PlannedStmt);
	stmt->commandType = CMD_SELECT;
	stmt->queryId = q->queryId;
	stmt->hasReturning = false;
	stmt->hasModifyingCTE = false;
	stmt->canSetTag = q->canSetTag;
	stmt->transientPlan = false;
	stmt->dependsOnRole = false;
	stmt->parallelModeNeeded = false;
	stmt->jitFlags = PGJIT_NONE;
	stmt->planTree = (Plan *) scan;
	/* for the executor's permission checks and locks, as the query has them */
	stmt->rtable = q->rtable;
	stmt->resultRelations = NIL;
	stmt->appendRelations = NIL;
	stmt->subplans = NIL;
	stmt->rewindPlanIDs = NULL;
	stmt->rowMarks = NIL;
	/* any invalidation of the table (ALTER, its mirror's state) replans */
	stmt->relationOids = list_make1_oid(rte->relid);
	/* and so does a change of a SQL function inlined into a key value */
	stmt->invalItems = invalitems;
	stmt->paramExecTypes = NIL;
	stmt->utilityStmt = NULL;
	stmt->stmt_location = q->stmt_location;
	stmt->stmt_len = q->stmt_len;
	return stmt;
}

static PlannedStmt *
almanac_planner(Query *parse, const char *query_string, int cursorOptions,
				ParamListInfo boundParams)
{
	if (almanac_router_enabled)
	{
		PlannedStmt *stmt = route(parse, cursorOptions);

		if (stmt)
			return stmt;
	}
	if (prev_planner_hook)
		return prev_planner_hook(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

void
almanac_router_init(void)
{
	DefineCustomBoolVariable("almanac.router",
							 "Answers point lookups and latest-row reads on mirrored tables from their RocksDB mirrors.",
							 "Off: every query is planned by PostgreSQL and reads the heap.",
							 &almanac_router_enabled,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	almanac_lookup_register();
	almanac_router_stats_shmem_init();
	almanac_mirror_init();
	almanac_mirror_check_init();
	prev_planner_hook = planner_hook;
	planner_hook = almanac_planner;
}
