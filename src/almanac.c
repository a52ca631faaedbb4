/*-------------------------------------------------------------------------
 *
 * almanac.c
 *	  Library entry point: _PG_init, which calls each subsystem's init
 *	  (settings, shared memory, hooks), and the checks that the library was
 *	  loaded the way the store needs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/resource.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "almanac.h"
#include "fault.h"
#include "fdw/fdw.h"
#include "kv/bulk.h"
#include "kv/keylock.h"
#include "kv/reader.h"
#include "kv/rowcache.h"
#include "kv/sharedcache.h"
#include "store/maintenance.h"
#include "store/store.h"
#include "kv/xact.h"
#include "router/router.h"

PG_MODULE_MAGIC;

bool		almanac_preloaded = false;

void		_PG_init(void);

/*
 * Module load.  Everything that must exist from postmaster start (settings,
 * shared memory, the store's background worker) is set up only when we are
 * loaded through shared_preload_libraries; a library loaded later, by CREATE
 * EXTENSION or LOAD, stays inert and its entry points refuse to run.
 */
/*
 * Each backend's reader keeps every SST file of the store open
 * (max_open_files = -1, kv/reader.c: a secondary must hold the files a
 * compaction of the owner deletes), outside PostgreSQL's own file budget
 * (max_files_per_process).  A store of more files than the soft limit on
 * open files (1024 on most systems) would make every read fail with "Too
 * many open files" (seen: a bulk COPY's chunks before compaction merged
 * them).  So the postmaster raises its soft limit to the hard one, for
 * every process it starts, as RocksDB-based servers do; the hard limit is
 * the operator's (LimitNOFILE, limits.conf).
 */
static void
raise_open_files_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		ereport(WARNING,
				(errmsg("almanac could not raise the limit on open files: %m"),
				 errhint("Each backend that reads a store keeps all its SST files open; raise the soft limit (ulimit -n) of the server's account.")));
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	almanac_preloaded = true;
	raise_open_files_limit();
	almanac_store_shmem_init();
	almanac_xact_init();
	almanac_keylock_init();
	almanac_fault_init();
	almanac_reader_init();
	almanac_row_cache_init();
	almanac_shared_cache_init();
	almanac_bulk_init();
	almanac_maintenance_init();
	almanac_router_init();
	almanac_modify_init();
	almanac_ddl_init();

	MarkGUCPrefixReserved("almanac");
}

/*
 * Raise the error that tells the user which setting to add.
 */
void
almanac_require_preload(void)
{
	if (!almanac_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("almanac must be loaded via shared_preload_libraries"),
				 errdetail("The RocksDB store needs a background worker, hooks and shared memory, which can only be set up when the server starts."),
				 errhint("Add 'almanac' to shared_preload_libraries in postgresql.conf (for example: shared_preload_libraries = 'almanac') and restart the server.")));
}

void *
almanac_grow_array(void *array, int n, int *max, Size size, int first)
{
	int			newmax;

	Assert(n >= 0 && first > 0);
	if (n < *max)
		return array;
	newmax = Max(first, *max);
	while (newmax <= n)
	{
		if (newmax > INT_MAX / 2)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("almanac: an array cannot grow past %d elements", newmax)));
		newmax *= 2;
	}
	if (ALMANAC_FAULT_ARMED("grow_array_error"))
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Fault point \"grow_array_error\" failed the growth of an array.")));
	/* ERROR past MaxAllocSize or out of memory: *max is left as it was */
	array = array ? repalloc(array, mul_size(size, newmax))
		: MemoryContextAlloc(TopMemoryContext, mul_size(size, newmax));
	*max = newmax;
	return array;
}

/*
 * almanac._require_preload(): called by the install script before it creates
 * anything, so that CREATE EXTENSION fails cleanly in a server that did not
 * preload the library.
 */
PG_FUNCTION_INFO_V1(almanac_require_preload_sql);
Datum
almanac_require_preload_sql(PG_FUNCTION_ARGS)
{
	almanac_require_preload();
	PG_RETURN_VOID();
}
