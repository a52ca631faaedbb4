/*-------------------------------------------------------------------------
 *
 * router.h
 *	  The storage router: a planner hook that answers recognised point
 *	  lookups and latest-row reads on mirrored tables (mirror.h) with a
 *	  custom scan over the mirror, skipping standard_planner.
 *
 * planner.c recognises the query shapes and builds the PlannedStmt;
 * lookup.c executes the custom scan ("Almanac Lookup"), falling back to the
 * heap's unique index, with the same snapshot, whenever it cannot prove the
 * mirror gives the heap's answer; stats.c counts both, per table, in shared
 * memory (almanac.router_stats).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_ROUTER_H
#define ALMANAC_ROUTER_H

#include "postgres.h"

#include "nodes/plannodes.h"
#include "port/atomics.h"
#include "executor/tuptable.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

/* almanac.router: route recognised lookups (per session) */
extern bool almanac_router_enabled;

/* why an execution of a routed plan read the heap instead of the mirror */
typedef enum AlmanacFallback
{
	ALMANAC_FALLBACK_ROUTER_OFF,	/* almanac.router turned off since planning */
	ALMANAC_FALLBACK_DISABLED,	/* mirror disabled since planning */
	ALMANAC_FALLBACK_OUT_OF_SYNC,	/* mirror marked out of sync */
	ALMANAC_FALLBACK_ALTERED,	/* table altered since the mirror was written */
	ALMANAC_FALLBACK_OWN_WRITES,	/* this transaction writes the table */
	ALMANAC_FALLBACK_SERIALIZABLE,	/* SERIALIZABLE needs the heap's predicate locks */
	ALMANAC_NFALLBACKS
} AlmanacFallback;

/* the names of the reasons, as in almanac.router_stats (fallback_<name>) */
extern const char *const almanac_fallback_names[ALMANAC_NFALLBACKS];

struct AlmanacRouterCounters
{
	Oid			dbid;			/* InvalidOid: a free slot */
	Oid			relid;
	pg_atomic_uint64 routed;
	pg_atomic_uint64 fallback[ALMANAC_NFALLBACKS];
};

/* the table's counters, allocated on first use; NULL when all are taken */
extern struct AlmanacRouterCounters *almanac_router_counters(Oid relid);

/* planner.c: the hook, the setting, the scan methods, shared memory */
extern void almanac_router_init(void);

/* stats.c */
extern void almanac_router_stats_shmem_init(void);

/* lookup.c: how the custom scan finds its row(s) */
typedef enum AlmanacLookupKind
{
	ALMANAC_LOOKUP_GET,			/* every key column equal: one key */
	ALMANAC_LOOKUP_MULTIGET,	/* ... the last one "= ANY (array)" / IN */
	ALMANAC_LOOKUP_LAST,		/* all but the last key column equal: the
								 * highest last column (latest block) */
	ALMANAC_LOOKUP_RANGE,		/* all but the last two equal, the next to
								 * last in a range: newest first (events of
								 * a contract and topic0 over blocks) */
	ALMANAC_LOOKUP_RECENT		/* all but the last three equal: the newest
								 * by the last two, across every value of the
								 * third to last (latest events of a
								 * contract), LIMIT required */
} AlmanacLookupKind;

/*
 * A CustomScan on range table entry 1 (the mirrored table relid) with the
 * given target list and residual quals (implicit AND).  The target list's
 * junk entries (sort columns), which must come last, are left out.  The
 * executor starts a copy of the node without its target list (lookup.c,
 * plan_info), so that it does not build the result descriptor at every
 * execution.  keyexprs: one value
 * expression per equality key column, the array last for a MULTIGET;
 * keyquals: the recognised conditions, for EXPLAIN.  RANGE: bounds, the
 * values the next key column is compared with, by strategies (btree
 * strategy numbers, "column op value"); limit: a LIMIT count, or NULL.
 */
extern CustomScan *almanac_lookup_plan(Oid relid, AlmanacLookupKind kind, List *tlist,
									   List *quals, List *keyexprs, List *keyquals,
									   List *bounds, List *strategies, Node *limit);

extern void almanac_lookup_register(void);

/*
 * range.c: the rows of a RANGE or RECENT lookup, newest first, from the
 * mirror (a) or the heap's unique index on the key (heap), judged by
 * snapshot.  The caller fills the first block of fields, then calls
 * almanac_range_next until false; almanac_range_end to start again (a
 * rescan), almanac_range_close at the end of the scan.
 */
typedef struct AlmanacRange
{
	struct AlmanacMirror *m;
	Relation	rel;
	Snapshot	snapshot;
	bool		heap;			/* read the heap, not the mirror */
	struct AlmanacAccess *a;	/* the mirror's access, when !heap */
	bool		recent;			/* RECENT, else RANGE */
	int			neq;			/* equal key columns */
	Datum		eq[INDEX_MAX_KEYS]; /* their values, as the columns' types */
	int64		lo;				/* RANGE: key column neq in [lo, hi] */
	int64		hi;
	int64		limit;			/* rows at most, or -1 */
	const bool *skip;			/* per column: the plan never reads it (the
								 * mirror's images leave it NULL), or NULL */
	bool		empty;			/* no row can match */
	MemoryContext cxt;			/* RECENT's rows; reset by range_end */
	/* private */
	bool		started;
	int64		emitted;
	Relation	irel;
	struct IndexScanDescData *scan;
	TupleTableSlot *heapslot;
	struct RangeRow *rows;
	int			nrows;
	int			maxrows;
	int			next_row;
} AlmanacRange;

/*
 * The columns of the table (desc) that the plan's target list and quals
 * never read, for AlmanacRange.skip: palloc'd, or NULL when it reads them
 * all (or the whole row).
 */
extern bool *almanac_range_skip(Plan *plan, TupleDesc desc);
extern void almanac_range_begin(AlmanacRange *r);
extern bool almanac_range_next(AlmanacRange *r, TupleTableSlot *slot, MemoryContext rowcxt);
extern void almanac_range_end(AlmanacRange *r);
extern void almanac_range_close(AlmanacRange *r);
/* the highest value of an integer type; a value of one as int64 */
extern int64 almanac_range_type_max(Oid typid);
extern int64 almanac_range_int(Oid typid, Datum d);

#endif							/* ALMANAC_ROUTER_H */
