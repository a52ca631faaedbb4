/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  The router's counters: per table, in shared memory, so that
 *	  almanac.router_stats shows every backend's lookups.  See router.h.
 *
 * A fixed array of ALMANAC_ROUTER_TABLES slots, each (database, table) and
 * atomic counters; a slot is taken under the lock on a table's first
 * routed plan in a backend and cached in its mirror descriptor, so that an
 * execution adds to an atomic counter and takes no lock.  When every slot
 * is taken, further tables are not counted (the view says so).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "router/router.h"

#define ALMANAC_ROUTER_TABLES 128

typedef struct RouterShared
{
	LWLock	   *lock;
	struct AlmanacRouterCounters tables[ALMANAC_ROUTER_TABLES];
} RouterShared;

static RouterShared *router_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

const char *const almanac_fallback_names[ALMANAC_NFALLBACKS] = {
	"router_off", "disabled", "out_of_sync", "altered", "own_writes", "serializable"
};

static void
router_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(RouterShared));
	RequestNamedLWLockTranche("almanac router", 1);
}

static void
router_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	router_shared = ShmemInitStruct("almanac router", sizeof(RouterShared), &found);
	if (!found)
	{
		memset(router_shared, 0, sizeof(RouterShared));
		router_shared->lock = &(GetNamedLWLockTranche("almanac router"))->lock;
		for (int i = 0; i < ALMANAC_ROUTER_TABLES; i++)
		{
			pg_atomic_init_u64(&router_shared->tables[i].routed, 0);
			for (int r = 0; r < ALMANAC_NFALLBACKS; r++)
				pg_atomic_init_u64(&router_shared->tables[i].fallback[r], 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
almanac_router_stats_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = router_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = router_shmem_startup;
}

struct AlmanacRouterCounters *
almanac_router_counters(Oid relid)
{
	struct AlmanacRouterCounters *free_slot = NULL;
	struct AlmanacRouterCounters *found = NULL;

	if (router_shared == NULL)
		return NULL;
	LWLockAcquire(router_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ALMANAC_ROUTER_TABLES && found == NULL; i++)
	{
		struct AlmanacRouterCounters *c = &router_shared->tables[i];

		if (c->dbid == MyDatabaseId && c->relid == relid)
			found = c;
		else if (c->dbid == InvalidOid && free_slot == NULL)
			free_slot = c;
	}
	if (found == NULL && free_slot != NULL)
	{
		found = free_slot;
		pg_atomic_write_u64(&found->routed, 0);
		for (int r = 0; r < ALMANAC_NFALLBACKS; r++)
			pg_atomic_write_u64(&found->fallback[r], 0);
		found->relid = relid;
		found->dbid = MyDatabaseId;
	}
	LWLockRelease(router_shared->lock);
	return found;
}

/* almanac._router_stats(): the counters of this database's tables */
PG_FUNCTION_INFO_V1(almanac_router_stats_sql);
Datum
almanac_router_stats_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (router_shared == NULL)
		return (Datum) 0;
	LWLockAcquire(router_shared->lock, LW_SHARED);
	for (int i = 0; i < ALMANAC_ROUTER_TABLES; i++)
	{
		struct AlmanacRouterCounters *c = &router_shared->tables[i];
		Datum		v[2 + ALMANAC_NFALLBACKS];
		bool		n[2 + ALMANAC_NFALLBACKS] = {0};

		if (c->dbid != MyDatabaseId)
			continue;
		v[0] = ObjectIdGetDatum(c->relid);
		v[1] = Int64GetDatum((int64) pg_atomic_read_u64(&c->routed));
		for (int r = 0; r < ALMANAC_NFALLBACKS; r++)
			v[2 + r] = Int64GetDatum((int64) pg_atomic_read_u64(&c->fallback[r]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	LWLockRelease(router_shared->lock);
	return (Datum) 0;
}

/* almanac.router_stats_reset(): zero the counters of this database's tables */
PG_FUNCTION_INFO_V1(almanac_router_stats_reset_sql);
Datum
almanac_router_stats_reset_sql(PG_FUNCTION_ARGS)
{
	if (router_shared == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(router_shared->lock, LW_SHARED);
	for (int i = 0; i < ALMANAC_ROUTER_TABLES; i++)
	{
		struct AlmanacRouterCounters *c = &router_shared->tables[i];

		if (c->dbid != MyDatabaseId)
			continue;
		pg_atomic_write_u64(&c->routed, 0);
		for (int r = 0; r < ALMANAC_NFALLBACKS; r++)
			pg_atomic_write_u64(&c->fallback[r], 0);
	}
	LWLockRelease(router_shared->lock);
	PG_RETURN_VOID();
}
