/*-------------------------------------------------------------------------
 *
 * almanac.c
 *	  Library entry point: _PG_init and the checks that the library was
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
#include "store/bulk.h"
#include "kv/reader.h"
#include "kv/rowcache.h"
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
	almanac_reader_init();
	almanac_row_cache_init();
	almanac_bulk_init();
	almanac_router_init();

	DefineCustomIntVariable("almanac.freeze_sweep_age",
							"Age, in transactions, of a store's freeze horizon at which its owner sweeps the store.",
							"No version of a transaction older than the freeze horizon is left unfrozen. "
							"A sweep walks every column family and freezes or prunes old versions, so that "
							"none needs the commit log once VACUUM truncates it; it starts when the horizon is "
							"older than this and the xmin horizon has moved at least half of it further. "
							"Keep it well below autovacuum_freeze_max_age. 0 sweeps whenever anything can be "
							"frozen (for tests).",
							&almanac_freeze_sweep_age,
							50000000, 0, 1000000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("almanac.reader_cleanup_interval",
							"Time between a store owner's checks for reader directories of backends that died.",
							"Each backend reads a store through a RocksDB secondary instance with a directory "
							"under almanac/secondary in the data directory, which it removes at exit; the owner "
							"removes those of backends killed before they could.",
							&almanac_reader_cleanup_interval,
							60, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
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
