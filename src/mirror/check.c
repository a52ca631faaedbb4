/*-------------------------------------------------------------------------
 *
 * check.c
 *	  The background sampling check of the mirrors: every
 *	  almanac.verify_interval, a worker per database compares a sample of
 *	  each mirrored table's rows with the mirror, logs what differs, and
 *	  marks a mirror that differs out of sync, so that the router reads the
 *	  heap until almanac.resync.  See check.h.
 *
 * The sample is TABLESAMPLE BERNOULLI's rows of the table (about
 * ALMANAC_CHECK_SAMPLE of them): each is read back by its key through the
 * heap's unique index (for a latest mirror, the latest row of its key) and
 * its image compared with the mirror's row of the key, both with the check's
 * snapshot, as almanac.verify compares them.  A sample finds "missing" and
 * "different" keys, not "extra" ones (verify does that, over the whole
 * mirror).
 *
 * The worker of a database is started by the first backend of the database
 * that reads a mirror descriptor while almanac.verify_interval > 0, and
 * exits when the setting is 0 (slots in shared memory, one per database).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "almanac.h"
#include "codec/valuecodec.h"
#include "mirror/check.h"
#include "mirror/mirror.h"

int			almanac_verify_interval = 0;	/* seconds; 0: no background check */

#define ALMANAC_CHECK_SAMPLE 100
#define ALMANAC_CHECK_DATABASES 16

typedef struct CheckShared
{
	LWLock	   *lock;
	Oid			dbids[ALMANAC_CHECK_DATABASES]; /* InvalidOid: free */
} CheckShared;

static CheckShared *check_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool started_here = false;

static void
check_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(CheckShared));
	RequestNamedLWLockTranche("almanac mirror check", 1);
}

static void
check_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	check_shared = ShmemInitStruct("almanac mirror check", sizeof(CheckShared), &found);
	if (!found)
	{
		memset(check_shared, 0, sizeof(CheckShared));
		check_shared->lock = &(GetNamedLWLockTranche("almanac mirror check"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
almanac_mirror_check_init(void)
{
	DefineCustomIntVariable("almanac.verify_interval",
							"Time between two background checks of a sample of each mirror's rows.",
							"A worker per database compares about 100 rows of each mirrored table with "
							"its mirror, logs each difference and marks the mirror out of sync (the router "
							"then reads the heap until almanac.resync). 0 turns the check off.",
							&almanac_verify_interval,
							0, 0, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = check_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = check_shmem_startup;
}

/*
 * Start the check worker of this database unless it runs.  Called when a
 * backend reads a mirror descriptor; cheap when the setting is 0 or this
 * backend started or found one already.
 */
void
almanac_mirror_check_ensure(void)
{
	int			free_slot = -1;
	bool		running = false;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	if (almanac_verify_interval <= 0 || started_here || check_shared == NULL ||
		!IsUnderPostmaster || RecoveryInProgress() || !OidIsValid(MyDatabaseId))
		return;
	LWLockAcquire(check_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ALMANAC_CHECK_DATABASES; i++)
	{
		if (check_shared->dbids[i] == MyDatabaseId)
			running = true;
		else if (check_shared->dbids[i] == InvalidOid && free_slot < 0)
			free_slot = i;
	}
	if (!running && free_slot >= 0)
	{
		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = BGW_NEVER_RESTART;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "almanac");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "almanac_mirror_check_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "almanac mirror check %u", MyDatabaseId);
		snprintf(worker.bgw_type, BGW_MAXLEN, "almanac mirror check");
		worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
		worker.bgw_notify_pid = 0;
		/* the slot is the worker's from now; it frees it when it exits */
		if (RegisterDynamicBackgroundWorker(&worker, &handle))
			check_shared->dbids[free_slot] = MyDatabaseId;
		running = true;
	}
	LWLockRelease(check_shared->lock);
	started_here = running;
}

static void
check_release_slot(int code, Datum arg)
{
	LWLockAcquire(check_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ALMANAC_CHECK_DATABASES; i++)
		if (check_shared->dbids[i] == DatumGetObjectId(arg))
			check_shared->dbids[i] = InvalidOid;
	LWLockRelease(check_shared->lock);
}

int64
almanac_mirror_sample_check(Relation rel, AlmanacMirror *m, int nrows)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Snapshot	snapshot;
	AlmanacAccess *a = palloc(sizeof(AlmanacAccess));
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	StringInfoData query;
	StringInfoData key;
	StringInfoData image;
	double		reltuples = Max(rel->rd_rel->reltuples, 1);
	double		pct = Min(100.0, 100.0 * 2 * nrows / reltuples);
	int64		differences = 0;
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "almanac check row",
												 ALLOCSET_SMALL_SIZES);

	/*
	 * A snapshot of its own, taken after the descriptor was read: the verdict
	 * marks the mirror out of sync for everyone, so it must judge the mirror
	 * the descriptor describes.  The statement's snapshot may be older than
	 * the enable_mirror, resync or TRUNCATE that made it so, and sees the
	 * heap rows their writes copied but not those writes: it found
	 * differences the mirror did not have (mirror_verify_snapshot.spec).  A
	 * snapshot taken now sees them, and whatever this transaction rewrote
	 * (almanac_mirror_rewritten_after).  Before the access begins, whose
	 * catch-up must follow it; active, for the sample query too.
	 */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	PushActiveSnapshot(snapshot);
	almanac_mirror_access(m, a, false);
	initStringInfo(&query);
	initStringInfo(&key);
	initStringInfo(&image);
	/* the key columns of the sampled rows; a row is read back by its key */
	appendStringInfoString(&query, "SELECT ");
	for (int i = 0; i < m->nkeys; i++)
		appendStringInfo(&query, "%s%s", i ? ", " : "",
						 quote_identifier(m->table.layout.names[i]));
	appendStringInfo(&query, " FROM %s TABLESAMPLE BERNOULLI (%g) LIMIT %d",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)),
					 pct, nrows);
	SPI_connect();
	if (SPI_execute(query.data, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "almanac: the sample query of \"%s\" failed", RelationGetRelationName(rel));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Datum		keyvalues[INDEX_MAX_KEYS];
		bool		isnull;
		const char *stored;
		uint32		len;
		MemoryContext old = MemoryContextSwitchTo(rowcxt);

		for (int i = 0; i < m->nkeys; i++)
			keyvalues[i] = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, i + 1, &isnull);
		if (almanac_mirror_heap_lookup(m, rel, snapshot, keyvalues, slot))
		{
			slot_getallattrs(slot);
			almanac_mirror_row_key(m, &key, slot->tts_values, slot->tts_isnull);
			resetStringInfo(&image);
			almanac_value_encode(&image, desc, m->table.values, slot->tts_values,
								 slot->tts_isnull, NULL);
			stored = almanac_mirror_read(a, key.data, key.len, snapshot, true, &len);
			if (stored == NULL || len != (uint32) image.len ||
				memcmp(stored, image.data, len) != 0)
			{
				differences++;
				ereport(LOG,
						(errmsg("almanac: the mirror of table \"%s\" differs from the table at key %s: %s",
								RelationGetRelationName(rel),
								DatumGetCString(DirectFunctionCall1(byteaout,
																	PointerGetDatum(almanac_bytes_to_bytea(key.data, key.len)))),
								stored == NULL ? "missing" : "different")));
			}
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
	}
	SPI_finish();
	ExecDropSingleTupleTableSlot(slot);
	PopActiveSnapshot();
	UnregisterSnapshot(snapshot);

	/*
	 * Only the state judged is marked: a resync or enable_mirror that ran
	 * meanwhile (its snapshot did not see them commit; the update waited for
	 * their row lock) wrote a new version of the row and repaired what was
	 * found (mirror_verify_snapshot.spec).
	 */
	if (differences > 0 &&
		almanac_mirror_catalog_update_if(m->relid, "in_sync = false", NULL, m->catalog_raw_xmin))
		ereport(LOG,
				(errmsg("almanac: the mirror of table \"%s\" is marked out of sync: " INT64_FORMAT " of the sampled rows differ",
						RelationGetRelationName(rel), differences),
				 errhint("The router reads the heap until almanac.resync('%s') repairs the mirror.",
						 RelationGetRelationName(rel))));
	else if (differences > 0)
		ereport(LOG,
				(errmsg("almanac: the mirror of table \"%s\" is not marked out of sync: its definition changed while it was checked",
						RelationGetRelationName(rel))));
	return differences;
}

/* almanac.verify_sample(regclass, keys): the check, now, on one table */
PG_FUNCTION_INFO_V1(almanac_verify_sample_sql);
Datum
almanac_verify_sample_sql(PG_FUNCTION_ARGS)
{
	Relation	rel = almanac_mirror_open_owned(PG_GETARG_OID(0), AccessShareLock);
	AlmanacMirror *m;
	int32		n = PG_GETARG_INT32(1);
	int64		d = 0;

	/* the current descriptor: a lock already held takes in no invalidation */
	AcceptInvalidationMessages();
	m = almanac_mirror_get(rel);

	if (n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the sample must have at least one row, not %d", n)));
	if (m->enabled && m->in_sync && !m->altered)
		d = almanac_mirror_sample_check(rel, m, n);
	table_close(rel, NoLock);
	PG_RETURN_INT64(d);
}

/* the worker of one database: a check of every mirror each interval */
PGDLLEXPORT void
almanac_mirror_check_main(Datum arg)
{
	Oid			dbid = DatumGetObjectId(arg);

	before_shmem_exit(check_release_slot, arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	pgstat_report_appname("almanac mirror check");

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (almanac_verify_interval <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (long) almanac_verify_interval * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending || almanac_verify_interval <= 0)
			continue;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		SPI_connect();
		/* verify_sample skips mirrors that are off, out of sync or altered */
		(void) SPI_execute("SELECT almanac.verify_sample(relid, " CppAsString2(ALMANAC_CHECK_SAMPLE) ") "
						   "FROM almanac.mirrors WHERE enabled AND in_sync",
						   false, 0);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_stat(true);
	}
	proc_exit(0);
}
