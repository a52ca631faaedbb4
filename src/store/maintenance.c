/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *	  The store owner's maintenance: removing reader directories of dead
 *	  backends, and the freeze sweep; the SQL functions almanac.freeze_sweep
 *	  and almanac.value_versions.  See maintenance.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <unistd.h>

#include "access/transam.h"
#include "access/xact.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/fd.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "almanac.h"
#include "codec/keycodec.h"
#include "store/maintenance.h"
#include "store/owner.h"
#include "fdw/option.h"
#include "kv/reader.h"
#include "codec/bigendian.h"
#include "kv/rocks.h"
#include "store/store.h"
#include "codec/visibility.h"


int			almanac_freeze_sweep_age = 50000000;
int			almanac_reader_cleanup_interval = 60;
int			almanac_idle_flush_delay = 1000;

void
almanac_maintenance_init(void)
{
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
	DefineCustomIntVariable("almanac.idle_flush_delay",
							"Time without writes after which a store owner flushes what it wrote.",
							"Every new connection's reader replays the store's unflushed write-ahead log, "
							"which costs it time and memory; flushing once writes pause leaves none to "
							"replay. 0 flushes only when max_total_wal_size is reached.",
							&almanac_idle_flush_delay,
							1000, 0, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/* keys per sweep step: a few milliseconds of work between rounds of requests */
#define SWEEP_STEP_KEYS		1000
/* the longest an idle owner sleeps */
#define OWNER_IDLE_MS		10000L
/* after an automatic pass failed, the wait before the next try */
#define SWEEP_RETRY_MS		60000L

/*
 * The store's freeze horizon, under a reserved key of the default column
 * family: a FullTransactionId, 8 bytes big-endian.  The key of every table
 * row starts with its key_prefix, which is non-empty text and so cannot
 * start with a NUL byte: no row can have this key.
 */
static const char freeze_horizon_key[] = "\0almanac:freeze_horizon";
#define FREEZE_HORIZON_KEY_LEN (sizeof(freeze_horizon_key) - 1)

/* the default column family always has id 0 */
#define DEFAULT_CF_ID 0

/* a pass of the freeze sweep in progress */
typedef struct SweepPass
{
	TransactionId horizon;		/* versions of older xids are frozen or pruned */
	FullTransactionId horizon_full;
	uint32	   *cf_ids;			/* the column families when the pass started */
	int			ncfs;
	int			next_cf;		/* index in cf_ids of the one being walked */
	StringInfoData resume;		/* first key of it not walked yet */
	bool		resume_valid;	/* false: walk it from its first key */
	uint64		keys;
	uint64		rewritten;
	uint64		removed;
	uint64		corrupted;
	/* for error context */
	const char *cf_name;
	const char *key;
	size_t		klen;
} SweepPass;

/* owner state */
static int	maint_store = -1;
static MemoryContext pass_cxt = NULL;	/* the pass; reset when it ends */
static MemoryContext step_cxt = NULL;	/* one step; reset after it */
static SweepPass *pass = NULL;	/* NULL: no pass in progress */
static uint64 pass_number = 0;	/* of the last pass started */
static uint64 pass_requested = 0;	/* the pass that answers the latest request */
static FullTransactionId freeze_horizon;	/* invalid: unknown, sweep */
static TimestampTz sweep_retry_at = 0;
static TimestampTz last_cleanup_at = 0;

static const char *
store_path(void)
{
	return almanac_shared->stores[maint_store].path;
}

/* ----------------------------------------------------------------
 * Reader directories of dead backends
 * ----------------------------------------------------------------
 */

/* the pid in a reader directory's name, <store>.<pid>; false for any other name */
static bool
reader_dir_pid(const char *name, pid_t *pid)
{
	size_t		store_digits = strspn(name, "0123456789");
	const char *p = name + store_digits;
	size_t		pid_digits;

	if (store_digits == 0 || *p != '.')
		return false;
	pid_digits = strspn(p + 1, "0123456789");
	if (pid_digits == 0 || pid_digits > 9 || p[1 + pid_digits] != '\0')
		return false;
	*pid = (pid_t) atoi(p + 1);
	return *pid > 0;
}

/*
 * Is the backend that made a reader directory gone for good?
 *
 * A backend enters the procarray (InitProcessPhase2, during InitPostgres)
 * before it can run anything that opens a store, so a backend that is
 * creating its directory is always found there: procarray membership is the
 * test that never removes a live reader's directory, whatever the timing.
 * But a backend leaves the procarray (an on_shmem_exit callback) before it
 * closes its secondary and removes its directory (an on_proc_exit callback),
 * so an exiting backend is not there while it still uses its directory.
 * Such a process still exists, so a directory is only removed when, in
 * addition, no process has the pid at all (kill() says ESRCH; a zombie not
 * yet reaped still counts as existing).  A pid reused by another process
 * only delays the removal until that process is gone too; a pid reused by a
 * new backend means the directory is that backend's, and it removes it at
 * exit.  The one race left, the pid reused by a backend between these tests
 * and rmtree, needs the kernel to cycle through every pid in between; even
 * then the victim would lose only the secondary's info log, which is all
 * RocksDB keeps in a secondary's directory.
 */
static bool
reader_gone(pid_t pid)
{
	if (BackendPidGetProc(pid) != NULL)
		return false;
	return kill(pid, 0) != 0 && errno == ESRCH;
}

/*
 * Remove the reader directories of backends that are gone.  Each owner
 * checks the directories of every store (after a crash restart, store
 * numbers are handed out anew); a flag in shared memory keeps two owners
 * from removing the same directory at once, which would make rmtree warn.
 *
 * Each removal is logged at LOG: it only happens after a backend died
 * without cleaning up (a crash the log already reports), so it is rare, and
 * it is the only trace that the directory, which may hold megabytes of info
 * log, was taken care of.
 */
static void
remove_stale_reader_dirs(void)
{
	char		root[MAXPGPATH];
	DIR		   *volatile dir = NULL;

	if (!pg_atomic_test_set_flag(&almanac_shared->reader_cleanup))
		return;
	snprintf(root, sizeof(root), "%s/" ALMANAC_READER_DIR, DataDir);
	PG_TRY();
	{
		struct dirent *de;

		dir = AllocateDir(root);
		/* no directory: no backend has read a store yet */
		if (dir != NULL || errno != ENOENT)
		{
			while ((de = ReadDirExtended(dir, root, LOG)) != NULL)
			{
				char		path[MAXPGPATH];
				pid_t		pid;

				if (!reader_dir_pid(de->d_name, &pid) || !reader_gone(pid))
					continue;
				snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
				/* rmtree warns about what it could not remove */
				if (rmtree(path, true))
					ereport(LOG,
							(errmsg("almanac: removed reader directory \"%s\" of backend %d, which exited without removing it",
									path, (int) pid)));
			}
		}
	}
	PG_FINALLY();
	{
		if (dir != NULL)
			FreeDir(dir);
		pg_atomic_clear_flag(&almanac_shared->reader_cleanup);
	}
	PG_END_TRY();
}

/* ----------------------------------------------------------------
 * Freeze sweep, owner side
 * ----------------------------------------------------------------
 */

/*
 * Stores of dropped databases that no owner holds open: a database dropped
 * while the server was down, or whose store's owner had exited, leaves
 * almanac/base/<oid> behind, which its own owner (see
 * almanac_owner_drop_if_database_gone) can no longer remove.  A directory
 * there exists only after its database committed (a backend of it created
 * the store), so an OID that pg_database lacks is a dropped database.
 * One owner at a time, as for the reader directories.
 */
static void
remove_dropped_database_stores(void)
{
	char		root[MAXPGPATH];
	DIR		   *volatile dir = NULL;
	List	   *volatile oids = NIL;
	MemoryContext old = CurrentMemoryContext;
	ListCell   *lc;

	if (!pg_atomic_test_set_flag(&almanac_shared->reader_cleanup))
		return;
	snprintf(root, sizeof(root), "%s/" ALMANAC_DEFAULT_STORE_DIR, DataDir);
	PG_TRY();
	{
		struct dirent *de;

		/* the names first: a transaction's end closes directories it finds open */
		dir = AllocateDir(root);
		if (dir != NULL || errno != ENOENT)
		{
			while ((de = ReadDirExtended(dir, root, LOG)) != NULL)
			{
				char	   *end;
				unsigned long oid;

				errno = 0;
				oid = strtoul(de->d_name, &end, 10);
				if (de->d_name[0] >= '0' && de->d_name[0] <= '9' && *end == '\0' &&
					errno == 0 && oid > 0 && oid <= PG_UINT32_MAX)
					oids = lappend_oid(oids, (Oid) oid);
			}
		}
		if (dir != NULL)
			FreeDir(dir);
		dir = NULL;

		foreach(lc, oids)
		{
			Oid			oid = lfirst_oid(lc);
			char		path[MAXPGPATH];
			bool		exists;
			bool		held = false;

			/* pg_database is shared: readable without a database */
			StartTransactionCommand();
			exists = SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(oid));
			CommitTransactionCommand();
			MemoryContextSwitchTo(old);
			if (exists)
				continue;
			snprintf(path, sizeof(path), "%s/%u", root, oid);
			LWLockAcquire(almanac_shared->lock, LW_SHARED);
			for (int i = 0; i < ALMANAC_MAX_STORES; i++)
				if (almanac_shared->stores[i].state != ALMANAC_STORE_UNUSED &&
					almanac_shared->stores[i].state != ALMANAC_STORE_FAILED &&
					strcmp(almanac_shared->stores[i].path, path) == 0)
					held = true;
			LWLockRelease(almanac_shared->lock);
			if (held)
				continue;		/* its own owner removes it */
			almanac_store_release_entry(path);
			if (rmtree(path, true))
			{
				ereport(LOG,
						(errmsg("almanac: removed the store \"%s\" of database %u, which was dropped",
								path, oid)));
				almanac_owner_drop_slot_of(path);
			}
		}
	}
	PG_FINALLY();
	{
		if (dir != NULL)
			FreeDir(dir);
		pg_atomic_clear_flag(&almanac_shared->reader_cleanup);
	}
	PG_END_TRY();
}

/* a recent TransactionId (not older than 2^31 transactions) as a FullTransactionId */
static FullTransactionId
recent_full_xid(TransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (xid > XidFromFullTransactionId(next) && epoch > 0)
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, xid);
}

static FullTransactionId
read_freeze_horizon(void)
{
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	char	   *err = NULL;
	size_t		len = 0;
	char	   *val;
	uint64		v;

	val = rocksdb_get_cf(almanac_owner_db(), ro, almanac_owner_cf(DEFAULT_CF_ID, NULL),
						 freeze_horizon_key, FREEZE_HORIZON_KEY_LEN, &len, &err);
	rocksdb_readoptions_destroy(ro);
	almanac_rocks_check(err, "read");
	/* a new store, or one written before the sweep existed */
	if (val == NULL)
		return InvalidFullTransactionId;
	if (len != sizeof(uint64))
	{
		rocksdb_free(val);
		ereport(LOG,
				(errmsg("almanac: the freeze horizon of store \"%s\" is malformed; the store will be swept",
						store_path())));
		return InvalidFullTransactionId;
	}
	v = almanac_get_be64(val);
	rocksdb_free(val);
	return FullTransactionIdFromU64(v);
}

/* publish the sweep's progress to almanac.freeze_sweep() */
static void
set_sweep_status(uint64 completed, uint64 rewritten, uint64 failed,
				 const ErrorData *edata)
{
	AlmanacSweepStatus *st = &almanac_shared->stores[maint_store].sweep;

	LWLockAcquire(almanac_shared->lock, LW_EXCLUSIVE);
	if (completed)
	{
		st->completed = completed;
		st->rewritten = rewritten;
	}
	if (failed)
	{
		st->failed = failed;
		st->sqlerrcode = edata->sqlerrcode ? edata->sqlerrcode : ERRCODE_INTERNAL_ERROR;
		strlcpy(st->error, edata->message ? edata->message : "unknown error",
				ALMANAC_ERROR_LEN);
	}
	LWLockRelease(almanac_shared->lock);
	ConditionVariableBroadcast(&almanac_shared->store_cv);
}

void
almanac_maintenance_start(int store)
{
	maint_store = store;
	pass_cxt = AllocSetContextCreate(TopMemoryContext, "almanac freeze sweep",
									 ALLOCSET_DEFAULT_SIZES);
	step_cxt = AllocSetContextCreate(TopMemoryContext, "almanac maintenance step",
									 ALLOCSET_DEFAULT_SIZES);
	freeze_horizon = read_freeze_horizon();

	/* pass numbers start again with each owner */
	LWLockAcquire(almanac_shared->lock, LW_EXCLUSIVE);
	memset(&almanac_shared->stores[store].sweep, 0, sizeof(AlmanacSweepStatus));
	LWLockRelease(almanac_shared->lock);
}

/* ALMANAC_REQ_FREEZE */
void
almanac_freeze_sweep_request(void)
{
	/*
	 * A pass in progress may already have walked past keys written before
	 * the request: the request is answered by the next pass, which starts
	 * when the current one ends.
	 */
	pass_requested = pass_number + 1;
	LWLockAcquire(almanac_shared->lock, LW_EXCLUSIVE);
	almanac_shared->stores[maint_store].sweep.requested = pass_requested;
	LWLockRelease(almanac_shared->lock);
}

/* should a pass start now? */
static bool
sweep_due(TimestampTz now)
{
	FullTransactionId next;
	FullTransactionId horizon;

	if (pass_requested > pass_number)
		return true;
	if (now < sweep_retry_at)
		return false;
	if (!FullTransactionIdIsValid(freeze_horizon))
		return true;
	next = ReadNextFullTransactionId();
	if (U64FromFullTransactionId(next) - U64FromFullTransactionId(freeze_horizon) <=
		(uint64) almanac_freeze_sweep_age)
		return false;
	/* worth it only if the pass can move the freeze horizon far enough */
	horizon = recent_full_xid(GetOldestNonRemovableTransactionId(NULL));
	return U64FromFullTransactionId(horizon) >
		U64FromFullTransactionId(freeze_horizon) + almanac_freeze_sweep_age / 2;
}

static void
start_pass(void)
{
	MemoryContext old = MemoryContextSwitchTo(pass_cxt);

	pass_number++;
	pass = palloc0(sizeof(SweepPass));
	/* shared: the store serves every database */
	pass->horizon = GetOldestNonRemovableTransactionId(NULL);
	pass->horizon_full = recent_full_xid(pass->horizon);
	pass->cf_ids = almanac_owner_cf_ids(&pass->ncfs);
	initStringInfo(&pass->resume);
	MemoryContextSwitchTo(old);
}

static void
end_pass(void)
{
	pass = NULL;
	MemoryContextReset(pass_cxt);
}

static void
sweep_error_context(void *arg)
{
	if (pass == NULL)
		return;
	if (pass->key)
		errcontext("freeze sweep of almanac store \"%s\", column family \"%s\", key %s",
				   store_path(), pass->cf_name,
				   almanac_key_for_message(pass->key, pass->klen));
	else
		errcontext("freeze sweep of almanac store \"%s\"", store_path());
}

/*
 * Prune and freeze one value into the step's batch.  A value that cannot
 * be parsed is left as it is and logged: no reader can use it either, and
 * one bad value must not keep the sweep from freezing all the others.
 */
static void
sweep_value(rocksdb_column_family_handle_t *cf, rocksdb_writebatch_t *batch,
			const char *val, size_t vlen, StringInfo out, Size *bytes)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool changed = false;

	resetStringInfo(out);
	PG_TRY();
	{
		changed = almanac_versions_freeze(out, val, vlen, pass->horizon);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_DATA_CORRUPTED)
			PG_RE_THROW();
		FlushErrorState();
		pass->corrupted++;
		/* the error context names the column family and the key */
		ereport(LOG,
				(errmsg("almanac: freeze sweep skipped a corrupted value: %s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();

	if (!changed)
		return;
	if (out->len == 0)
	{
		rocksdb_writebatch_delete_cf(batch, cf, pass->key, pass->klen);
		almanac_write_log_note(pass->key, pass->klen);
		pass->removed++;
	}
	else
	{
		rocksdb_writebatch_put_cf(batch, cf, pass->key, pass->klen, out->data, out->len);
		almanac_write_log_note(pass->key, pass->klen);
		pass->rewritten++;
	}
	*bytes += pass->klen + out->len;
}

static void
finish_pass(void)
{
	rocksdb_writebatch_t *volatile batch = rocksdb_writebatch_create();
	char		v[sizeof(uint64)];

	almanac_write_log_forget();
	almanac_put_be64(v, U64FromFullTransactionId(pass->horizon_full));

	PG_TRY();
	{
		rocksdb_writebatch_put_cf(batch, almanac_owner_cf(DEFAULT_CF_ID, NULL),
								  freeze_horizon_key, FREEZE_HORIZON_KEY_LEN,
								  v, sizeof(v));
		almanac_write_log_note(freeze_horizon_key, FREEZE_HORIZON_KEY_LEN);
		almanac_owner_write(batch, FREEZE_HORIZON_KEY_LEN + sizeof(v));
	}
	PG_FINALLY();
	{
		rocksdb_writebatch_destroy(batch);
	}
	PG_END_TRY();

	freeze_horizon = pass->horizon_full;
	set_sweep_status(pass_number, pass->rewritten + pass->removed, 0, NULL);
	ereport(LOG,
			(errmsg("almanac: freeze sweep of store \"%s\" done: " UINT64_FORMAT " values, " UINT64_FORMAT " rewritten, " UINT64_FORMAT " removed, " UINT64_FORMAT " corrupted; versions of transactions before " UINT64_FORMAT " are frozen or pruned",
					store_path(), pass->keys, pass->rewritten, pass->removed,
					pass->corrupted, U64FromFullTransactionId(pass->horizon_full))));
	end_pass();
}

/*
 * One step of the pass: up to SWEEP_STEP_KEYS values, then back to the
 * requests.  Each step seeks afresh to where the last one stopped, so no
 * iterator (and no version of the store it pins) outlives a step.
 *
 * A step reads values and writes them back changed without any lock: the
 * owner is the store's only writer and serves no request while a step runs,
 * so nothing can write a key between the step's read and its write.
 */
static void
sweep_step(void)
{
	rocksdb_t  *db = almanac_owner_db();
	rocksdb_readoptions_t *volatile ro = NULL;
	rocksdb_iterator_t *volatile it = NULL;
	rocksdb_writebatch_t *volatile batch = NULL;
	ErrorContextCallback errcb;

	PG_TRY();
	{
		int			budget = SWEEP_STEP_KEYS;
		Size		bytes = 0;
		StringInfoData out;

		/* popped by PG_END_TRY, which restores the stack as PG_TRY found it */
		errcb.callback = sweep_error_context;
		errcb.arg = NULL;
		errcb.previous = error_context_stack;
		error_context_stack = &errcb;

		initStringInfo(&out);
		ro = rocksdb_readoptions_create();
		/* a walk over everything: leave the block cache to the requests */
		rocksdb_readoptions_set_fill_cache(ro, 0);
		batch = rocksdb_writebatch_create();
		almanac_write_log_forget();

		while (budget > 0 && pass->next_cf < pass->ncfs)
		{
			uint32		cf_id = pass->cf_ids[pass->next_cf];
			rocksdb_column_family_handle_t *cf = almanac_owner_cf(cf_id, &pass->cf_name);
			char	   *err = NULL;

			/* dropped since the pass started */
			if (cf == NULL)
			{
				pass->next_cf++;
				pass->resume_valid = false;
				continue;
			}
			it = rocksdb_create_iterator_cf(db, ro, cf);
			if (pass->resume_valid)
				rocksdb_iter_seek(it, pass->resume.data, pass->resume.len);
			else
				rocksdb_iter_seek_to_first(it);
			for (; budget > 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it))
			{
				size_t		vlen;
				const char *val;

				pass->key = rocksdb_iter_key(it, &pass->klen);
				/* the store's own bookkeeping: the freeze horizon and owner.c's WAL state */
				if ((cf_id == DEFAULT_CF_ID && pass->klen >= 9 &&
					 memcmp(pass->key, "\0almanac:", 9) == 0) ||
					almanac_is_catch_up_marker(pass->key, pass->klen))
					continue;
				val = rocksdb_iter_value(it, &vlen);
				sweep_value(cf, batch, val, vlen, &out, &bytes);
				pass->keys++;
				budget--;
			}
			pass->key = NULL;
			if (rocksdb_iter_valid(it))
			{
				const char *key;
				size_t		klen;

				key = rocksdb_iter_key(it, &klen);
				resetStringInfo(&pass->resume);
				appendBinaryStringInfo(&pass->resume, key, klen);
				pass->resume_valid = true;
			}
			else
			{
				rocksdb_iter_get_error(it, &err);
				almanac_rocks_check(err, "iteration");
				pass->next_cf++;
				pass->resume_valid = false;
			}
			rocksdb_iter_destroy(it);
			it = NULL;
		}
		if (rocksdb_writebatch_count(batch) > 0)
			almanac_owner_write(batch, bytes);
	}
	PG_FINALLY();
	{
		if (it)
			rocksdb_iter_destroy(it);
		if (batch)
			rocksdb_writebatch_destroy(batch);
		if (ro)
			rocksdb_readoptions_destroy(ro);
	}
	PG_END_TRY();

	if (pass->next_cf >= pass->ncfs)
		finish_pass();
}

/*
 * The maintenance due now: called by the owner after each round of
 * requests.  Errors are logged, never fatal to the owner: a failed pass
 * answers whoever asked for it with its error, and an automatic one is
 * retried after SWEEP_RETRY_MS.
 */
long
almanac_maintenance_step(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next_cleanup;
	MemoryContext old = MemoryContextSwitchTo(step_cxt);
	long		timeout;

	if (last_cleanup_at == 0 ||
		TimestampDifferenceExceeds(last_cleanup_at, now, almanac_reader_cleanup_interval * 1000))
	{
		remove_stale_reader_dirs();
		remove_dropped_database_stores();
		almanac_owner_drop_if_database_gone();
		last_cleanup_at = now;
	}

	PG_TRY();
	{
		if (pass == NULL && sweep_due(now))
			start_pass();
		if (pass != NULL)
			sweep_step();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(step_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		LWLockReleaseAll();
		ereport(LOG,
				(errmsg("almanac: freeze sweep of store \"%s\" failed: %s",
						store_path(), edata->message),
				 edata->context ? errcontext("%s", edata->context) : 0));
		set_sweep_status(0, 0, pass_number, edata);
		end_pass();
		sweep_retry_at = TimestampTzPlusMilliseconds(now, SWEEP_RETRY_MS);
	}
	PG_END_TRY();

	MemoryContextSwitchTo(old);
	MemoryContextReset(step_cxt);

	if (pass != NULL)
		return 0;
	next_cleanup = TimestampTzPlusMilliseconds(last_cleanup_at,
											   almanac_reader_cleanup_interval * 1000L);
	timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_cleanup);
	return Min(timeout, OWNER_IDLE_MS);
}

/* ----------------------------------------------------------------
 * SQL functions
 * ----------------------------------------------------------------
 */

/*
 * The store of the named almanac_rocksdb server, attached; only its owner
 * (or a superuser) may maintain or inspect it: value_versions shows every
 * table's keys, whatever the privileges on the tables.
 */
static int
maintained_store(Name servername)
{
	ForeignServer *server;

	almanac_require_preload();
	server = GetForeignServerByName(NameStr(*servername), false);
	if (!almanac_wrapper_is_ours(server->fdwid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("foreign server \"%s\" is not an almanac store", server->servername),
				 errdetail("It belongs to the foreign-data wrapper \"%s\", not to almanac_rocksdb.",
						   GetForeignDataWrapper(server->fdwid)->fdwname)));
	/*
	 * The owner of every server of the store: a superuser may give a server
	 * over the default store to any role (keyspace.c's servers rule).
	 */
	{
		ListCell   *lc;

		foreach(lc, almanac_store_servers(almanac_server_options(server->serverid)->path))
			if (!pg_foreign_server_ownercheck(lfirst_oid(lc), GetUserId()))
				aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_FOREIGN_SERVER,
							   GetForeignServer(lfirst_oid(lc))->servername);
	}
	return almanac_store_attach(almanac_server_options(server->serverid));
}

/*
 * almanac.freeze_sweep(server name) RETURNS bigint: ask the owner for a full
 * pass of the freeze sweep and wait until it is done; returns the number of
 * values it rewrote or removed.  The pass runs between the owner's other
 * requests, and the wait can be cancelled (the pass goes on).
 */
PG_FUNCTION_INFO_V1(almanac_freeze_sweep_sql);
Datum
almanac_freeze_sweep_sql(PG_FUNCTION_ARGS)
{
	int			store = maintained_store(PG_GETARG_NAME(0));
	AlmanacStoreEntry *e = &almanac_shared->stores[store];
	uint64		target;
	pid_t		owner;
	uint64		rewritten;

	almanac_store_request(store, ALMANAC_REQ_FREEZE, NULL, 0, NULL, NULL, NULL);
	LWLockAcquire(almanac_shared->lock, LW_SHARED);
	target = e->sweep.requested;
	owner = e->owner_pid;
	LWLockRelease(almanac_shared->lock);

	for (;;)
	{
		AlmanacSweepStatus st;
		AlmanacStoreState state;
		pid_t		pid;

		LWLockAcquire(almanac_shared->lock, LW_SHARED);
		st = e->sweep;
		state = e->state;
		pid = e->owner_pid;
		LWLockRelease(almanac_shared->lock);

		if (state == ALMANAC_STORE_READY && pid == owner && st.completed >= target)
		{
			rewritten = st.rewritten;
			break;
		}
		if (state == ALMANAC_STORE_READY && pid == owner && st.failed >= target)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(st.sqlerrcode),
					 errmsg("freeze sweep of almanac store \"%s\" failed: %s", e->path, st.error)));
		}
		if (state != ALMANAC_STORE_READY || pid != owner)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("the almanac store owner for \"%s\" exited before the freeze sweep was done", e->path),
					 errhint("Run almanac.freeze_sweep() again; a new owner starts on the next use of the store.")));
		}
		ConditionVariableTimedSleep(&almanac_shared->store_cv, 1000, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	PG_RETURN_INT64((int64) rewritten);
}

/*
 * What the commit log says about a version, without failing on an xid it
 * no longer knows (the same care as txid_status()).
 */
static const char *
version_status(const AlmanacVersion *v)
{
	TransactionId xid = XidFromFullTransactionId(v->xid);
	FullTransactionId next = ReadNextFullTransactionId();
	const char *status;

	if (almanac_version_frozen(v))
		return "frozen";
	if (!TransactionIdIsNormal(xid) ||
		!FullTransactionIdPrecedes(v->xid, next) ||
		U64FromFullTransactionId(next) - U64FromFullTransactionId(v->xid) > MaxTransactionId / 2)
		return "unknown";

	LWLockAcquire(XactTruncationLock, LW_SHARED);
	if (TransactionIdPrecedes(xid, ShmemVariableCache->oldestClogXid))
		status = "unknown";
	else if (TransactionIdIsInProgress(xid))
		status = "in progress";
	else if (TransactionIdDidCommit(xid))
		status = "committed";
	else
		status = "aborted";
	LWLockRelease(XactTruncationLock);
	return status;
}

/*
 * almanac.value_versions(server name, column_family text, key bytea):
 * the versions of a stored value, newest first, as the store holds them
 * (this transaction's unsent writes are not shown).
 */
PG_FUNCTION_INFO_V1(almanac_value_versions_sql);
Datum
almanac_value_versions_sql(PG_FUNCTION_ARGS)
{
	int			store = maintained_store(PG_GETARG_NAME(0));
	char	   *cf_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	bytea	   *key = PG_GETARG_BYTEA_PP(2);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AlmanacReader *reader;
	rocksdb_column_family_handle_t *cf;
	rocksdb_readoptions_t *ro;
	char	   *value = NULL;
	size_t		vlen;
	AlmanacVersion *versions;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	reader = almanac_reader(store);
	almanac_reader_catch_up(reader);
	cf = almanac_reader_cf(reader, cf_name, false, NULL);
	if (cf == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("almanac column family \"%s\" does not exist", cf_name)));

	ro = rocksdb_readoptions_create();
	PG_TRY();
	{
		value = almanac_rocks_get(almanac_reader_db(reader), ro, cf, VARDATA_ANY(key),
								   VARSIZE_ANY_EXHDR(key), &vlen);
	}
	PG_FINALLY();
	{
		rocksdb_readoptions_destroy(ro);
	}
	PG_END_TRY();
	if (value == NULL)
		return (Datum) 0;

	n = almanac_versions_parse(value, vlen, &versions);
	for (int i = 0; i < n; i++)
	{
		Datum		values[7];
		bool		nulls[7] = {0};

		values[0] = Int32GetDatum(i + 1);
		values[1] = FullTransactionIdGetDatum(versions[i].xid);
		values[2] = TransactionIdGetDatum(versions[i].top);
		values[3] = BoolGetDatum((versions[i].flags & ALMANAC_VERSION_DELETED) != 0);
		values[4] = BoolGetDatum(almanac_version_frozen(&versions[i]));
		values[5] = CStringGetTextDatum(version_status(&versions[i]));
		values[6] = Int32GetDatum((int32) versions[i].tuple_len);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
