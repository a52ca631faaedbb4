/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  Planning scans of almanac_rocksdb foreign tables: which conditions
 *	  become key bounds, which orderings the key order gives for free, and
 *	  what it costs.
 *
 * Conditions pushed into the key:
 *
 *	  equality on every key column				one Get
 *	  equality on all but the last, and the last
 *	  "= ANY (array)" or "IN (...)"				one MultiGet of the sorted keys
 *	  equality on leading key columns			an iterator bounded by their
 *												common key prefix
 *	  ... and <, <=, >, >= or BETWEEN on the	an iterator bounded by the
 *	  next key column (integer or uuid)			range's first and last keys
 *	  nothing									the table's whole key prefix
 *
 * A condition is pushed only when its other side uses no column of the
 * table and nothing volatile (a Const, a Param, a stable expression), so it
 * is computed once when the scan starts, and when it is in the btree
 * operator family of the key column's type, with the value converted to the
 * column's type by an implicit cast (int4 into int8, never the other way).
 *
 * The conditions pushed into the key are not checked again on the row.
 * Behind a Get or a MultiGet: the key is the encoding of the values, and the
 * codec is injective and agrees with the types' equality (bytes for
 * integers, uuid, bytea and text under a deterministic collation; char(n)
 * without its trailing blanks), so a row found under it has exactly those
 * key values.  Behind an iterator: the equality columns' encoding is also
 * prefix-free (integers and uuids are fixed-width, text escapes the
 * separator), so a key in [prefix, its successor) has exactly those leading
 * values; and the bounded column is an integer or uuid, fixed-width and in
 * SQL's order bytewise, so a key between almanac_key_encode_bound's bounds
 * has a value within the conditions' (a value no key can hold, negative,
 * leaves the lower bound at the prefix or the range empty, as the condition
 * would).  Only the clauses behind the bounds are dropped: of two lower
 * bounds on a column, the one not used stays a filter.  Every other
 * condition is checked on each row (sql/fdw_pushdown.sql shows the plans).
 *
 * Ordering: keys sort bytewise, which is SQL's order for integer and uuid
 * columns (codec/keycodec.h) and not for text.  An iterator returns rows ordered
 * by the key columns that follow the equality columns, forward or backward,
 * so a query whose ORDER BY is a run of those columns, all ascending or all
 * descending, and all of ordering types, gets a path with that order and no
 * Sort; with a LIMIT above it, the executor stops the iterator after the
 * rows it needs ("the latest block of a chain" is one seek).
 *
 * Estimates come from the statistics ANALYZE gathers (analyze.c); the
 * store is never called while planning.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/stratnum.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/inherit.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/prep.h"
#include "optimizer/restrictinfo.h"
#include "parser/parse_coerce.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "fdw/fdw.h"

/* what the planner found for a scan, kept in baserel->fdw_private */
typedef struct AlmanacPlanInfo
{
	AlmanacAccessKind kind;
	int			nkeys;
	int			neq;			/* equality on the first neq key columns */
	List	   *eq_exprs;		/* their comparison values */
	Expr	   *lower;			/* RANGE: bound values on key column neq */
	Expr	   *upper;
	int			lower_bound;	/* AlmanacKeyBound, or -1 */
	int			upper_bound;
	Expr	   *array;			/* MULTIGET: the array of last-column values */
	List	   *pushed;			/* the clauses behind the above, for EXPLAIN */
	AttrNumber *keyattrs;
	Oid		   *typids;
} AlmanacPlanInfo;

/* the btree operator family that orders a key column's type (from the type cache) */
static Oid
key_opfamily(Oid typid)
{
	return lookup_type_cache(typid, TYPECACHE_BTREE_OPFAMILY)->btree_opf;
}

/* true if node is this relation's column attno */
static bool
is_key_var(Node *node, RelOptInfo *baserel, AttrNumber attno)
{
	node = strip_implicit_coercions(node);
	return IsA(node, Var) &&
		((Var *) node)->varno == baserel->relid &&
		((Var *) node)->varattno == attno &&
		((Var *) node)->varlevelsup == 0;
}

/* a value computable when the scan starts: none of our columns, nothing volatile */
static bool
is_scan_constant(PlannerInfo *root, RelOptInfo *baserel, Node *node)
{
	return !bms_is_member(baserel->relid, pull_varnos(root, node)) &&
		!contain_volatile_functions(node);
}

/*
 * The comparison value converted by an implicit cast to totype, or for a
 * domain to its base type (the key holds the base type, and a domain's
 * CHECK must not fail a comparison the heap would just evaluate), or NULL.
 * A constant stays a Const (the cast of "block_number = 5" from int4 is
 * folded), which the scan uses without evaluating anything.
 */
static Expr *
coerce_value(PlannerInfo *root, Node *value, Oid totype)
{
	Node	   *coerced = coerce_to_target_type(NULL, value, exprType(value), getBaseType(totype), -1,
												COERCION_IMPLICIT, COERCE_IMPLICIT_CAST, -1);

	return coerced ? (Expr *) eval_const_expressions(root, coerced) : NULL;
}

/*
 * Equality under a nondeterministic collation (case-insensitive, say) is
 * not equality of bytes: such a condition is not pushed into the key.
 */
static bool
collation_is_bytewise(Oid collid)
{
	return !OidIsValid(collid) || get_collation_isdeterministic(collid);
}

/*
 * If clause compares key column attno with a scan constant using an operator
 * of the column's btree family, return the constant in the column's type and
 * set *strategy to the btree strategy read as "column op value" (so "5 < x"
 * is x > 5).  Otherwise NULL.
 */
static Expr *
match_comparison(PlannerInfo *root, RelOptInfo *baserel, Expr *clause,
				 AttrNumber attno, Oid typid, int *strategy)
{
	OpExpr	   *op;
	Oid			opfamily = key_opfamily(typid);

	if (!IsA(clause, OpExpr) || !OidIsValid(opfamily))
		return NULL;
	op = (OpExpr *) clause;
	if (list_length(op->args) != 2 || !collation_is_bytewise(op->inputcollid))
		return NULL;
	for (int side = 0; side < 2; side++)
	{
		Node	   *var = side == 0 ? linitial(op->args) : lsecond(op->args);
		Node	   *other = side == 0 ? lsecond(op->args) : linitial(op->args);
		int			s;
		Expr	   *value;

		if (!is_key_var(var, baserel, attno) || !is_scan_constant(root, baserel, other))
			continue;
		s = get_op_opfamily_strategy(op->opno, opfamily);
		if (s == 0)
			return NULL;
		if (side == 1)
		{
			/* the column is on the right: read the operator the other way round */
			if (s == BTLessStrategyNumber)
				s = BTGreaterStrategyNumber;
			else if (s == BTLessEqualStrategyNumber)
				s = BTGreaterEqualStrategyNumber;
			else if (s == BTGreaterStrategyNumber)
				s = BTLessStrategyNumber;
			else if (s == BTGreaterEqualStrategyNumber)
				s = BTLessEqualStrategyNumber;
		}
		value = coerce_value(root, other, typid);
		if (value == NULL)
			return NULL;
		*strategy = s;
		return value;
	}
	return NULL;
}

/* "column = ANY (array)" on key column attno: the array in the column's array type */
static Expr *
match_any(PlannerInfo *root, RelOptInfo *baserel, Expr *clause, AttrNumber attno, Oid typid)
{
	ScalarArrayOpExpr *saop;
	Oid			opfamily = key_opfamily(typid);
	Oid			arraytype = get_array_type(getBaseType(typid));

	if (!IsA(clause, ScalarArrayOpExpr) || !OidIsValid(opfamily) || !OidIsValid(arraytype))
		return NULL;
	saop = (ScalarArrayOpExpr *) clause;
	if (!saop->useOr || !collation_is_bytewise(saop->inputcollid) ||
		!is_key_var(linitial(saop->args), baserel, attno) ||
		!is_scan_constant(root, baserel, lsecond(saop->args)) ||
		get_op_opfamily_strategy(saop->opno, opfamily) != BTEqualStrategyNumber)
		return NULL;
	return coerce_value(root, lsecond(saop->args), arraytype);
}

/* the first restriction clause on key column i that match_comparison accepts with strategy */
static Expr *
find_comparison(PlannerInfo *root, RelOptInfo *baserel, AlmanacPlanInfo *info, int i,
				bool (*wanted) (int strategy), int *strategy, List **pushed)
{
	ListCell   *lc;

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		Expr	   *value = match_comparison(root, baserel, ri->clause,
											 info->keyattrs[i], info->typids[i], strategy);

		if (value != NULL && wanted(*strategy))
		{
			*pushed = lappend(*pushed, ri->clause);
			return value;
		}
	}
	return NULL;
}

static bool
is_equality(int s)
{
	return s == BTEqualStrategyNumber;
}

static bool
is_lower(int s)
{
	return s == BTGreaterStrategyNumber || s == BTGreaterEqualStrategyNumber;
}

static bool
is_upper(int s)
{
	return s == BTLessStrategyNumber || s == BTLessEqualStrategyNumber;
}

/* decide the access kind and collect the pushed-down values */
static void
choose_access(PlannerInfo *root, RelOptInfo *baserel, AlmanacPlanInfo *info)
{
	int			s;
	ListCell   *lc;

	for (info->neq = 0; info->neq < info->nkeys; info->neq++)
	{
		Expr	   *e = find_comparison(root, baserel, info, info->neq, is_equality, &s,
										&info->pushed);

		if (e == NULL)
			break;
		info->eq_exprs = lappend(info->eq_exprs, e);
	}
	info->lower_bound = info->upper_bound = -1;
	if (info->neq == info->nkeys)
	{
		info->kind = ALMANAC_ACCESS_GET;
		return;
	}
	if (info->neq == info->nkeys - 1)
	{
		foreach(lc, baserel->baserestrictinfo)
		{
			RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

			info->array = match_any(root, baserel, ri->clause,
									info->keyattrs[info->neq], info->typids[info->neq]);
			if (info->array != NULL)
			{
				info->pushed = lappend(info->pushed, ri->clause);
				info->kind = ALMANAC_ACCESS_MULTIGET;
				return;
			}
		}
	}
	if (almanac_key_type_orders(info->typids[info->neq]))
	{
		info->lower = find_comparison(root, baserel, info, info->neq, is_lower, &s,
									  &info->pushed);
		if (info->lower != NULL)
			info->lower_bound = s == BTGreaterStrategyNumber ? ALMANAC_KEY_GT : ALMANAC_KEY_GE;
		info->upper = find_comparison(root, baserel, info, info->neq, is_upper, &s,
									  &info->pushed);
		if (info->upper != NULL)
			info->upper_bound = s == BTLessStrategyNumber ? ALMANAC_KEY_LT : ALMANAC_KEY_LE;
		if (info->lower != NULL || info->upper != NULL)
		{
			info->kind = ALMANAC_ACCESS_RANGE;
			return;
		}
	}
	info->kind = info->neq > 0 ? ALMANAC_ACCESS_PREFIX : ALMANAC_ACCESS_FULL;
}

/*
 * GetForeignRelSize: find the key conditions and estimate the rows, from
 * ANALYZE's statistics (reltuples and column statistics) only.
 */
void
almanacGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	AlmanacPlanInfo *info = palloc0(sizeof(AlmanacPlanInfo));
	Relation	rel = table_open(foreigntableid, AccessShareLock);
	AlmanacKvTable *t = almanac_table_open(rel);
	double		tuples = baserel->tuples >= 0 ? baserel->tuples : 1000;

	info->nkeys = t->layout.nkeys;
	info->keyattrs = t->keyattrs;
	info->typids = (Oid *) t->layout.typids;
	table_close(rel, AccessShareLock);

	choose_access(root, baserel, info);
	baserel->rows = clamp_row_est(tuples * clauselist_selectivity(root, baserel->baserestrictinfo,
																  0, JOIN_INNER, NULL));
	/* the key is unique: one row per key at most */
	if (info->kind == ALMANAC_ACCESS_GET)
		baserel->rows = 1;
	else if (info->kind == ALMANAC_ACCESS_MULTIGET && IsA(info->array, Const) &&
			 !((Const *) info->array)->constisnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(((Const *) info->array)->constvalue);

		baserel->rows = clamp_row_est(Min(baserel->rows,
										  ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr))));
	}
	baserel->fdw_private = info;
}

/*
 * The query's ORDER BY, if the iterator gives it: a run of the key columns
 * after the equality columns (equality columns may appear anywhere in it,
 * they are constant), all of ordering types, all ascending or all
 * descending.  *direction receives 1 or -1; NIL if the order is not given.
 */
static List *
scan_pathkeys(PlannerInfo *root, RelOptInfo *baserel, AlmanacPlanInfo *info, int *direction)
{
	int			next = info->neq;
	ListCell   *lc;

	*direction = 0;
	if (info->kind == ALMANAC_ACCESS_GET || info->kind == ALMANAC_ACCESS_MULTIGET ||
		root->query_pathkeys == NIL)
		return NIL;
	foreach(lc, root->query_pathkeys)
	{
		PathKey    *pk = lfirst_node(PathKey, lc);
		EquivalenceClass *ec = pk->pk_eclass;
		int			col = -1;
		int			dir;
		ListCell   *lm;

		if (ec->ec_has_volatile)
			return NIL;
		/* which key column does this sort item name? */
		foreach(lm, ec->ec_members)
		{
			EquivalenceMember *em = lfirst_node(EquivalenceMember, lm);

			for (int i = 0; i < info->nkeys && col < 0; i++)
				if (is_key_var((Node *) em->em_expr, baserel, info->keyattrs[i]))
					col = i;
			if (col >= 0)
				break;
		}
		if (col >= 0 && col < info->neq)
			continue;			/* constant during the scan */
		if (col != next || !almanac_key_type_orders(info->typids[col]) ||
			pk->pk_opfamily != key_opfamily(info->typids[col]))
			return NIL;
		dir = pk->pk_strategy == BTLessStrategyNumber ? 1 : -1;
		if (*direction != 0 && dir != *direction)
			return NIL;
		*direction = dir;
		next++;
	}
	return *direction != 0 ? root->query_pathkeys : NIL;
}

/*
 * GetForeignPaths: one unordered path, and one in the query's order when
 * the iterator gives it.  Costs are in the planner's units: a Get about a
 * random page, each visited key about an index tuple.
 */
void
almanacGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	AlmanacPlanInfo *info = baserel->fdw_private;
	double		tuples = baserel->tuples >= 0 ? baserel->tuples : 1000;
	double		visited;
	Cost		startup = 0;
	Cost		total;
	List	   *pathkeys;
	int			direction;

	switch (info->kind)
	{
		case ALMANAC_ACCESS_GET:
			visited = 1;
			break;
		case ALMANAC_ACCESS_MULTIGET:
			visited = baserel->rows;
			break;
		case ALMANAC_ACCESS_FULL:
			visited = tuples;
			break;
		default:
			/* the bounds select about what the conditions select */
			visited = baserel->rows;
			startup = random_page_cost;
			break;
	}
	total = startup + visited * (cpu_index_tuple_cost + cpu_tuple_cost) +
		(info->kind == ALMANAC_ACCESS_FULL ? 0 : visited * 0.5 * random_page_cost / 4);
	/* rows that the local recheck drops still cost their decoding */
	total += baserel->baserestrictcost.per_tuple * visited;

	add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, baserel->rows,
													   startup, total, NIL, NULL, NULL,
													   list_make1(makeInteger(0))));
	pathkeys = scan_pathkeys(root, baserel, info, &direction);
	if (pathkeys != NIL)
		add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, baserel->rows,
														   startup, total, pathkeys, NULL, NULL,
														   list_make1(makeInteger(direction))));
}

/*
 * The pushed-down clauses for EXPLAIN VERBOSE, with the relation as varno 1
 * so that scan.c can deparse them with deparse_context_for (only when
 * EXPLAIN asks: deparsing costs as much as planning a point lookup).
 */
static List *
pushed_clauses(RelOptInfo *baserel, List *pushed)
{
	List	   *clauses = copyObject(pushed);

	ChangeVarNodes((Node *) clauses, baserel->relid, 1, 0);
	return clauses;
}

/*
 * The key lock the scan takes on each row it returns (scan.c): the rows an
 * UPDATE or DELETE of the table will write, with the strength of the heap's
 * lock for the same write (kv/keylock.h): a DELETE and an UPDATE that may
 * change a key column AccessExclusiveLock, an UPDATE of other columns only
 * ExclusiveLock (FOR NO KEY UPDATE's, which FOR KEY SHARE does not wait
 * for).  Under READ COMMITTED the scan then returns the row's newest
 * version, as a heap UPDATE re-checks the newest version of a row
 * (EvalPlanQual).  SELECT ... FOR UPDATE / SHARE takes no lock in the scan:
 * LockRows locks each row as it returns it (almanacGetForeignRowMarkType,
 * almanacRefetchForeignRow).
 */
static LOCKMODE
scan_lock(PlannerInfo *root, RelOptInfo *baserel, const AlmanacPlanInfo *info)
{
	Bitmapset  *updated;

	if (!bms_is_member(baserel->relid, root->all_result_relids))
		return NoLock;
	if (root->parse->commandType == CMD_DELETE)
		return AccessExclusiveLock;
	if (root->parse->commandType != CMD_UPDATE)
		return NoLock;
	/* the columns the UPDATE sets, generated ones included */
	updated = get_rel_all_updated_cols(root, baserel);
	for (int i = 0; i < info->nkeys; i++)
		if (bms_is_member(info->keyattrs[i] - FirstLowInvalidHeapAttributeNumber, updated))
			return AccessExclusiveLock;
	return ExclusiveLock;
}

/*
 * GetForeignPlan: the key values go into fdw_exprs (so that the executor
 * computes Params and stable expressions), the access kind, bounds and
 * direction into fdw_private (fdw.h names the positions).  The quals stay in
 * the plan's qual, checked on each row, but for the key conditions, which
 * every row the scan reads meets (see the top of the file): a point lookup
 * or a key range initializes and runs no Filter.
 */
ForeignScan *
almanacGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
					  ForeignPath *best_path, List *tlist, List *scan_clauses,
					  Plan *outer_plan)
{
	AlmanacPlanInfo *info = baserel->fdw_private;
	List	   *exprs = list_copy(info->eq_exprs);
	List	   *priv = NIL;
	if (info->lower)
		exprs = lappend(exprs, info->lower);
	if (info->upper)
		exprs = lappend(exprs, info->upper);
	if (info->array)
		exprs = lappend(exprs, info->array);

	priv = list_make5(makeInteger(info->kind), makeInteger(info->neq),
					  makeInteger(info->lower_bound), makeInteger(info->upper_bound),
					  makeInteger(intVal(linitial(best_path->fdw_private))));
	priv = lappend(priv, pushed_clauses(baserel, info->pushed));
	priv = lappend(priv, makeInteger(scan_lock(root, baserel, info)));

	/* the key's conditions hold on every row the scan reads (top of file) */
	{
		List	   *kept = NIL;
		ListCell   *lc;

		foreach(lc, scan_clauses)
		{
			RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

			if (!list_member_ptr(info->pushed, ri->clause))
				kept = lappend(kept, ri);
		}
		scan_clauses = kept;
	}
	scan_clauses = extract_actual_clauses(scan_clauses, false);

	/*
	 * The columns the query uses, as postgres_fdw finds them: the scan's
	 * target list may be the whole row (a "physical" one, which saves a
	 * projection), but above the scan only these are read (scan.c).
	 */
	{
		Bitmapset  *needed = NULL;
		List	   *attnos = NIL;
		int			k = -1;

		pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &needed);
		pull_varattnos((Node *) scan_clauses, baserel->relid, &needed);
		while ((k = bms_next_member(needed, k)) >= 0)
			attnos = lappend(attnos, makeInteger(k + FirstLowInvalidHeapAttributeNumber));
		priv = lappend(priv, attnos);
	}
	Assert(list_length(priv) == ALMANAC_PRIV_COUNT);
	return make_foreignscan(tlist, scan_clauses, baserel->relid, exprs, priv,
							NIL, NIL, outer_plan);
}
