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

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

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
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	almanac_preloaded = true;
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
