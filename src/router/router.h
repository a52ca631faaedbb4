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
	ALMANAC_LOOKUP_LAST			/* all but the last key column equal: the
								 * highest last column (latest block) */
} AlmanacLookupKind;

/*
 * A CustomScan on range table entry 1 (the mirrored table relid) with the
 * given target list and residual quals (implicit AND).  keyexprs: one value
 * expression per equality key column, the array last for a MULTIGET;
 * keyquals: the recognised conditions, for EXPLAIN.
 */
extern CustomScan *almanac_lookup_plan(Oid relid, AlmanacLookupKind kind, List *tlist,
									   List *quals, List *keyexprs, List *keyquals);

extern void almanac_lookup_register(void);

#endif							/* ALMANAC_ROUTER_H */
