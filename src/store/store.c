/*-------------------------------------------------------------------------
 *
 * store.c
 *	  Store ownership, backend side: shared memory, starting an owner for a
 *	  store path, and posting requests to it.  See store.h for the contract.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include <rocksdb/c.h>

#include "almanac.h"
#include "fault.h"
#include "kv/sharedcache.h"
#include "store/store.h"

AlmanacShared *almanac_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* one request slot per PGPROC, so a backend never waits for a slot */
static int
almanac_nslots(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

static Size
almanac_shmem_size(void)
{
	return add_size(offsetof(AlmanacShared, slots),
					mul_size(almanac_nslots(), sizeof(AlmanacRequestSlot)));
}

static void
almanac_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(almanac_shmem_size());
	RequestNamedLWLockTranche("almanac", 1);
}

static void
almanac_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	almanac_shared = ShmemInitStruct("almanac", almanac_shmem_size(), &found);
	if (!found)
	{
		memset(almanac_shared, 0, almanac_shmem_size());
		almanac_shared->lock = &(GetNamedLWLockTranche("almanac"))->lock;
		ConditionVariableInit(&almanac_shared->store_cv);
		pg_atomic_init_flag(&almanac_shared->reader_cleanup);
		if (!pg_strong_random(&almanac_shared->lifetime, sizeof(almanac_shared->lifetime)))
			almanac_shared->lifetime = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
		for (int i = 0; i < ALMANAC_MAX_STORES; i++)
		{
			pg_atomic_init_u64(&almanac_shared->stores[i].published_seq, 0);
			pg_atomic_init_u64(&almanac_shared->stores[i].cf_version, 0);
			pg_atomic_init_u64(&almanac_shared->stores[i].commit_batches, 0);
			pg_atomic_init_u64(&almanac_shared->stores[i].commit_syncs, 0);
			pg_atomic_init_u64(&almanac_shared->stores[i].batch_writes, 0);
			pg_atomic_init_u64(&almanac_shared->stores[i].checked_in_cache, 0);
			pg_atomic_init_u64(&almanac_shared->stores[i].checked_in_store, 0);
			almanac_shared->stores[i].ncfs_shown = -1;
			almanac_write_log_init(&almanac_shared->stores[i].writelog);
		}
		almanac_shared->nslots = almanac_nslots();
		for (int i = 0; i < almanac_shared->nslots; i++)
		{
			pg_atomic_init_u64(&almanac_shared->slots[i].request_gen, 0);
			pg_atomic_init_u64(&almanac_shared->slots[i].answer_gen, 0);
			ConditionVariableInit(&almanac_shared->slots[i].cv);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
almanac_store_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = almanac_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = almanac_shmem_startup;
}

static void
start_owner(int store)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "almanac");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "almanac_owner_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "almanac store owner %d", store);
	snprintf(worker.bgw_type, BGW_MAXLEN, "almanac store owner");
	worker.bgw_main_arg = Int32GetDatum(store);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the almanac store owner for \"%s\"",
						almanac_shared->stores[store].path),
				 errhint("Raise max_worker_processes: every store in use needs one background worker.")));
	status = WaitForBackgroundWorkerStartup(handle, &pid);

	/*
	 * An owner that cannot open the store records why and exits at once,
	 * possibly before the postmaster reports it started: then its state
	 * says what happened.  Only an owner that never got to run did not start.
	 */
	if (status == BGWH_STOPPED)
	{
		bool		ran;

		LWLockAcquire(almanac_shared->lock, LW_SHARED);
		ran = almanac_shared->stores[store].state != ALMANAC_STORE_STARTING;
		LWLockRelease(almanac_shared->lock);
		if (ran)
			return;
	}
	if (status != BGWH_STARTED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("the almanac store owner for \"%s\" did not start",
						almanac_shared->stores[store].path)));
}

/*
 * Make sure the store at opts->path has a running owner, starting one if
 * needed, and return its index.  Raises the owner's error if the store could
 * not be opened (locked by another process, corrupted, unwritable path).
 */
int
almanac_store_attach(const AlmanacServerOptions *opts)
{
	/* the store this backend attached last */
	static int	last_store = -1;
	int			store = -1;
	bool		must_start = false;

	almanac_require_preload();

	/*
	 * A standby has no owner: background workers that need a consistent
	 * database start only once recovery has finished, so waiting for one
	 * would wait until promotion.  Nor would a store here be current: the
	 * RocksDB store is not replicated, a standby has only the files its base
	 * backup copied.  So every use fails at once.
	 */
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("almanac foreign tables cannot be used during recovery"),
				 errdetail("The RocksDB store \"%s\" is not replicated to standbys, and its owner starts only once recovery has finished.",
						   opts->path),
				 errhint("Read almanac foreign tables on the primary; the PostgreSQL tables of schema almanac can be read here.")));
	if (strlen(opts->path) >= MAXPGPATH)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("almanac store path is too long: \"%s\"", opts->path)));

	/*
	 * An entry belongs to one path until the server restarts, owner or not.
	 * Backends keep an entry's index across statements (a transaction's
	 * buffered writes, a bulk load's chunk in the owner's queue, a reader):
	 * if the entry of a store whose owner exited went to another path, the
	 * next owner would serve their requests against the wrong store.
	 *
	 * So the store this backend attached last is found again without the
	 * lock, as every statement that reads or writes a foreign table attaches
	 * and concurrent readers would otherwise queue on it: that entry's path
	 * cannot change, and an owner seen ready may exit right after, just as
	 * after a check under the lock (a request then fails and says so).
	 */
	if (last_store >= 0 &&
		strcmp(almanac_shared->stores[last_store].path, opts->path) == 0 &&
		almanac_shared->stores[last_store].state == ALMANAC_STORE_READY)
		return last_store;

	LWLockAcquire(almanac_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ALMANAC_MAX_STORES; i++)
	{
		AlmanacStoreEntry *e = &almanac_shared->stores[i];

		if (e->path[0] != '\0' && strcmp(e->path, opts->path) == 0)
		{
			store = i;
			break;
		}
		if (e->path[0] == '\0' && store < 0)
			store = i;
	}
	if (store >= 0)
	{
		AlmanacStoreEntry *e = &almanac_shared->stores[store];

		/* a failed store is retried: the cause may have been fixed */
		if (e->state == ALMANAC_STORE_UNUSED || e->state == ALMANAC_STORE_FAILED)
		{
			strlcpy(e->path, opts->path, MAXPGPATH);
			e->tuning = *opts;
			e->tuning.path = NULL;
			e->tuning.compression = NULL;
			strlcpy(e->compression, opts->compression, sizeof(e->compression));
			e->error[0] = '\0';
			e->owner_pid = 0;
			e->state = ALMANAC_STORE_STARTING;
			/* another path, perhaps: its owner publishes its own */
			e->ncfs_shown = -1;
			must_start = true;
			/* another path, or files an owner may have changed meanwhile */
			almanac_shared_cache_reset_store(store);
		}
	}
	LWLockRelease(almanac_shared->lock);

	if (store < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many almanac store paths used since the server started: at most %d",
						ALMANAC_MAX_STORES),
				 errhint("Point more foreign servers at the same store path, or restart the server.")));

	if (must_start)
	{
		PG_TRY();
		{
			start_owner(store);
		}
		PG_CATCH();
		{
			LWLockAcquire(almanac_shared->lock, LW_EXCLUSIVE);
			almanac_shared->stores[store].state = ALMANAC_STORE_UNUSED;
			LWLockRelease(almanac_shared->lock);
			ConditionVariableBroadcast(&almanac_shared->store_cv);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}

	/* wait until the owner has opened the store, or failed to */
	for (;;)
	{
		AlmanacStoreEntry *e = &almanac_shared->stores[store];
		AlmanacStoreState state;
		char		error[ALMANAC_ERROR_LEN];

		LWLockAcquire(almanac_shared->lock, LW_SHARED);
		state = e->state;
		strlcpy(error, e->error, sizeof(error));
		LWLockRelease(almanac_shared->lock);

		if (state == ALMANAC_STORE_READY)
			break;
		if (state == ALMANAC_STORE_FAILED || state == ALMANAC_STORE_UNUSED)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("could not open almanac store \"%s\": %s", opts->path,
							error[0] ? error : "its owner exited"),
					 errhint("The server log gives the store owner's reason. Check that the directory can be created and written by the server, and that no other process holds the store open.")));
		}
		ConditionVariableTimedSleep(&almanac_shared->store_cv, 1000,
									PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	last_store = store;
	return store;
}

/*
 * Give back the entry of a store that is gone for good: a dropped
 * database's own store (almanac/base/<oid>), removed.  Entries otherwise
 * keep their path until the server restarts (see almanac_store_attach), as
 * backends keep their indexes; no backend can hold this one, since no
 * backend of a dropped database remains and no server may point into
 * almanac/base.  Without this, every database ever used would hold one of
 * the ALMANAC_MAX_STORES entries until a restart.  Only an entry no owner
 * runs for (UNUSED or FAILED) is released.
 */
void
almanac_store_release_entry(const char *path)
{
	LWLockAcquire(almanac_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ALMANAC_MAX_STORES; i++)
	{
		AlmanacStoreEntry *e = &almanac_shared->stores[i];

		if (e->path[0] != '\0' && strcmp(e->path, path) == 0 &&
			(e->state == ALMANAC_STORE_UNUSED || e->state == ALMANAC_STORE_FAILED))
		{
			e->path[0] = '\0';
			e->state = ALMANAC_STORE_UNUSED;
			almanac_shared_cache_reset_store(i);
		}
	}
	LWLockRelease(almanac_shared->lock);
}

uint64
almanac_store_published_seq(int store)
{
	return pg_atomic_read_u64(&almanac_shared->stores[store].published_seq);
}

uint64
almanac_store_cf_version(int store)
{
	return pg_atomic_read_u64(&almanac_shared->stores[store].cf_version);
}

bool
almanac_store_cf_id(int store, const char *name, uint32 *cf_id)
{
	AlmanacStoreEntry *e = &almanac_shared->stores[store];
	uint64		version = pg_atomic_read_u64(&e->cf_version);
	int			n;
	bool		found = false;

	/* the owner is writing the list */
	if (version & 1)
		return false;
	pg_read_barrier();
	n = ((volatile AlmanacStoreEntry *) e)->ncfs_shown;
	for (int i = 0; i < n && i < ALMANAC_MAX_SHOWN_CFS && !found; i++)
	{
		if (strncmp(e->cfs_shown[i].name, name, NAMEDATALEN) == 0)
		{
			*cf_id = ((volatile AlmanacStoreCf *) &e->cfs_shown[i])->id;
			found = true;
		}
	}
	pg_read_barrier();
	/* changed while we read: what we read may be torn */
	return found && pg_atomic_read_u64(&e->cf_version) == version;
}

static int
compression_type(const char *name)
{
	if (strcmp(name, "none") == 0)
		return rocksdb_no_compression;
	if (strcmp(name, "snappy") == 0)
		return rocksdb_snappy_compression;
	if (strcmp(name, "zlib") == 0)
		return rocksdb_zlib_compression;
	if (strcmp(name, "zstd") == 0)
		return rocksdb_zstd_compression;
	return rocksdb_lz4_compression;
}

/*
 * The format of the store's SST files: its compression and bloom filter.
 * The owner opens its column families with it and writes bulk-load files
 * (bulk.h) with it, so that an ingested file reads like a flushed one.
 */
void
almanac_store_file_format(rocksdb_options_t *opts, const AlmanacStoreEntry *e)
{
	rocksdb_block_based_table_options_t *table = rocksdb_block_based_options_create();

	rocksdb_options_set_compression(opts, compression_type(e->compression));
	if (e->tuning.bloom_bits_per_key > 0)
		rocksdb_block_based_options_set_filter_policy(table,
													  rocksdb_filterpolicy_create_bloom(e->tuning.bloom_bits_per_key));
	rocksdb_options_set_block_based_table_factory(opts, table);
	rocksdb_block_based_options_destroy(table);
}

/*
 * RocksDB's properties of a column family, from the owner (see
 * AlmanacProperty).  Returns its id, or ALMANAC_CF_MISSING (props untouched)
 * if there is no such column family.
 */
uint32
almanac_store_properties(int store, const char *name, uint64 props[ALMANAC_NPROPS])
{
	AlmanacRequestSlot *slot = &almanac_shared->slots[MyProc->pgprocno];
	uint32		cf_id;

	almanac_store_request(store, ALMANAC_REQ_PROPERTIES, NULL, 0, name, NULL, &cf_id);
	/* the slot is this backend's own: nobody else posts in it */
	if (cf_id != ALMANAC_CF_MISSING)
		memcpy(props, slot->props, sizeof(slot->props));
	return cf_id;
}

/*
 * A request of this backend that the owner may still be working on: an
 * ingest posted without waiting (almanac_store_post_ingest).  The slot is
 * not reused before the owner answers it.  Another request waits for that
 * answer first and keeps it here, for almanac_store_ingest_wait.
 */
static int	outstanding_store = -1;
static bool outstanding_exit_registered = false;
static bool kept = false;
static bool kept_answered;
static int	kept_sqlerrcode;
static bool kept_ingested;
static char kept_message[ALMANAC_ERROR_LEN];
static char kept_detail[ALMANAC_ERROR_LEN];

/*
 * An APPLY posted without waiting (almanac_store_post_apply).  While
 * apply_busy the owner may still work on it and the slot is taken; its
 * answer, once drained, is kept here until almanac_store_apply_wait takes it
 * (apply_store >= 0) or is dropped (almanac_store_apply_forget).  Its payload
 * segment is mapped for the session (not a resource owner's, which a
 * statement's end would release under the owner's feet) until the answer.
 */
static int	apply_store = -1;
static bool apply_busy = false;
static int	apply_busy_store = -1;
static dsm_segment *apply_seg = NULL;
static bool apply_answered;
static int	apply_sqlerrcode;
static bool apply_log_batch;
static uint64 apply_incarnation;
static uint64 apply_batch_seq;
static char apply_message[ALMANAC_ERROR_LEN];
static char apply_detail[ALMANAC_ERROR_LEN];

static void drain_at_exit(int code, Datum arg);

static void
post(AlmanacRequestSlot *slot, int store, AlmanacRequestType type,
	 dsm_segment *seg, Size payload_len, const char *name)
{
	int			procno;
	AlmanacStoreState state;

	slot->store = store;
	slot->type = type;
	slot->payload = seg ? dsm_segment_handle(seg) : DSM_HANDLE_INVALID;
	slot->payload_len = payload_len;
	slot->wal_lsn = XactLastRecEnd;
	slot->log_batch = false;
	strlcpy(slot->name, name ? name : "", NAMEDATALEN);
	slot->sqlerrcode = 0;
	slot->message[0] = '\0';
	slot->detail[0] = '\0';
	slot->ingested = false;
	pg_atomic_write_u64(&slot->request_gen, pg_atomic_read_u64(&slot->request_gen) + 1);
	pg_write_barrier();
	slot->state = ALMANAC_SLOT_PENDING;
	LWLockAcquire(almanac_shared->lock, LW_SHARED);
	procno = almanac_shared->stores[store].owner_procno;
	state = almanac_shared->stores[store].state;
	LWLockRelease(almanac_shared->lock);
	/* no owner: wait_answer reports it */
	if (state == ALMANAC_STORE_READY)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/*
 * Wait until the owner has answered the request posted last in our slot (its
 * generation: answers to other requests are not taken, see store.h); false
 * if the owner went away first (what it did not answer did not happen).
 * Frees the slot either way.
 */
static bool
wait_answer(AlmanacRequestSlot *slot, int store)
{
	AlmanacStoreEntry *e = &almanac_shared->stores[store];
	uint64		gen = pg_atomic_read_u64(&slot->request_gen);	/* we wrote it */
	bool		answered;

	/*
	 * No cancel while the owner works on our request: the slot must not be
	 * reused before it answers.  The owner answers promptly, and its exit is
	 * noticed below.
	 */
	HOLD_INTERRUPTS();
	for (;;)
	{
		int			procno;
		bool		gone;

		/*
		 * The owner seen gone and no answer yet: stay a while before making
		 * sure under the lock (test/t/025: a new owner takes the request up
		 * meanwhile).
		 */
		if (unlikely(almanac_fault_armed) &&
			pg_atomic_read_u64(&slot->answer_gen) != gen &&
			e->state != ALMANAC_STORE_READY)
			almanac_fault_pause("request_pause_before_give_up", 8000);

		/*
		 * Give the request up only under the lock, freeing the slot there:
		 * an owner becomes READY under it before it takes any request up, so
		 * none can be working on this one, nor read our next request's
		 * fields as this one's.  Checked outside it, a new owner could take
		 * the request up between the two reads.
		 */
		LWLockAcquire(almanac_shared->lock, LW_SHARED);
		procno = e->owner_procno;
		answered = pg_atomic_read_u64(&slot->answer_gen) == gen;
		gone = !answered && e->state != ALMANAC_STORE_READY;
		if (answered || gone)
			slot->state = ALMANAC_SLOT_FREE;
		LWLockRelease(almanac_shared->lock);
		if (answered || gone)
			break;
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
		ConditionVariableTimedSleep(&slot->cv, 1000, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	RESUME_INTERRUPTS();
	/* the answer's fields were written before answer_gen */
	pg_read_barrier();
	return answered;
}

static void
report_answer(int store, bool answered, int sqlerrcode, const char *message,
			  const char *detail)
{
	if (!answered)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("the almanac store owner for \"%s\" exited before answering",
						almanac_shared->stores[store].path),
				 errhint("Retry the transaction; a new owner starts on the next use of the store.")));
	if (sqlerrcode != 0)
		ereport(ERROR,
				(errcode(sqlerrcode),
				 errmsg_internal("%s", message),
				 detail[0] ? errdetail_internal("%s", detail) : 0));
}

/* wait for the APPLY posted without waiting, if any, and keep its answer */
static void
drain_apply(void)
{
	AlmanacRequestSlot *slot = &almanac_shared->slots[MyProc->pgprocno];

	if (!apply_busy)
		return;
	apply_answered = wait_answer(slot, apply_busy_store);
	apply_sqlerrcode = slot->sqlerrcode;
	apply_log_batch = slot->log_batch;
	apply_incarnation = slot->incarnation;
	apply_batch_seq = slot->batch_seq;
	strlcpy(apply_message, slot->message, sizeof(apply_message));
	strlcpy(apply_detail, slot->detail, sizeof(apply_detail));
	apply_busy = false;
	if (apply_seg)
		dsm_detach(apply_seg);
	apply_seg = NULL;
}

/*
 * Before the slot is used again: wait for the ingest posted last and keep
 * its answer.  (If a statement failed before it asked for the answer, the
 * answer no longer matters: the versions belong to an aborted
 * (sub)transaction; the next post drops it.)
 */
static void
drain_outstanding(void)
{
	AlmanacRequestSlot *slot = &almanac_shared->slots[MyProc->pgprocno];

	drain_apply();
	if (outstanding_store < 0 || kept)
		return;
	kept_answered = wait_answer(slot, outstanding_store);
	kept_sqlerrcode = slot->sqlerrcode;
	kept_ingested = slot->ingested;
	strlcpy(kept_message, slot->message, sizeof(kept_message));
	strlcpy(kept_detail, slot->detail, sizeof(kept_detail));
	kept = true;
}

static void
drain_at_exit(int code, Datum arg)
{
	drain_outstanding();
}

/*
 * Payloads larger than a slot's inline space and at most REUSED_SEGMENT_MAX
 * bytes go through one segment per backend, mapped for the session and
 * reused: a commit's or a mirror send's few hundred kB no longer create,
 * map, fault in and destroy a segment each (perf: dsm_create, dsm_detach
 * and the page faults of fresh pages, 2 to 3 % of a backend's time in
 * bench/ingest with mirrors on).  The owner is done with it once it has
 * answered, and every post waits for the answer to the one before.  A
 * larger payload gets a segment of its own: the session does not keep it.
 */
#define REUSED_SEGMENT_MIN	(256 * 1024)
#define REUSED_SEGMENT_MAX	(1024 * 1024)
static dsm_segment *reused_seg = NULL;
static Size reused_seg_size = 0;

/*
 * Put payload where the owner reads it: the slot, or a segment (returned).
 * *oneoff: the segment is the request's own, to be detached once answered.
 * Segments are mapped for the session, not a resource owner's (a posted
 * request outlives the statement that posts it).
 */
static dsm_segment *
place_payload(AlmanacRequestSlot *slot, const char *payload, Size payload_len, bool *oneoff)
{
	dsm_segment *seg;

	*oneoff = false;
	if (payload_len <= ALMANAC_INLINE_PAYLOAD)
	{
		if (payload_len > 0)
			memcpy(slot->inline_payload, payload, payload_len); /* post publishes it */
		return NULL;
	}
	if (payload_len > REUSED_SEGMENT_MAX)
	{
		seg = dsm_create(payload_len, 0);
		*oneoff = true;
	}
	else
	{
		if (reused_seg == NULL || reused_seg_size < payload_len)
		{
			Size		size = REUSED_SEGMENT_MIN;

			while (size < payload_len)
				size *= 2;
			if (reused_seg)
				dsm_detach(reused_seg);
			reused_seg = NULL;
			reused_seg = dsm_create(size, 0);
			reused_seg_size = size;
			dsm_pin_mapping(reused_seg);
		}
		seg = reused_seg;
	}
	if (*oneoff)
		dsm_pin_mapping(seg);
	memcpy(dsm_segment_address(seg), payload, payload_len);
	return seg;
}

/*
 * Post a request to the store's owner and wait for its answer.  An error the
 * owner reports (a write conflict, a RocksDB failure) is raised here with
 * the owner's SQLSTATE and message.
 */
void
almanac_store_request(int store, AlmanacRequestType type,
					  const char *payload, Size payload_len,
					  const char *name, uint64 *seq, uint32 *cf_id)
{
	AlmanacRequestSlot *slot = &almanac_shared->slots[MyProc->pgprocno];
	dsm_segment *seg;
	bool		oneoff;
	bool		answered;

	drain_outstanding();
	seg = place_payload(slot, payload, payload_len, &oneoff);
	post(slot, store, type, seg, payload_len, name);
	answered = wait_answer(slot, store);
	if (oneoff)
		dsm_detach(seg);
	report_answer(store, answered, slot->sqlerrcode, slot->message, slot->detail);
	if (seq)
		*seq = slot->seq;
	if (cf_id)
		*cf_id = slot->cf_id;
}

/*
 * Post an ALMANAC_REQ_APPLY of payload (copied) to the store's owner without
 * waiting: the owner applies it while the backend goes on.  Waits for the
 * request posted before, if the owner is still on it (one at a time per
 * backend).  almanac_store_apply_wait takes the answer; any other request
 * of the backend waits for it first and keeps it for that call.
 */
void
almanac_store_post_apply(int store, const char *payload, Size payload_len)
{
	AlmanacRequestSlot *slot = &almanac_shared->slots[MyProc->pgprocno];
	dsm_segment *seg;
	bool		oneoff;

	drain_outstanding();
	if (apply_store >= 0)
		elog(ERROR, "almanac: a batch was posted before the answer to the previous one was taken");
	if (!outstanding_exit_registered)
	{
		before_shmem_exit(drain_at_exit, 0);
		outstanding_exit_registered = true;
	}
	seg = place_payload(slot, payload, payload_len, &oneoff);
	post(slot, store, ALMANAC_REQ_APPLY, seg, payload_len, NULL);
	apply_seg = oneoff ? seg : NULL;
	apply_busy = true;
	apply_busy_store = store;
	apply_store = store;
}

/* whether an APPLY posted without waiting has an answer not taken yet */
bool
almanac_store_apply_posted(void)
{
	return apply_store >= 0;
}

/*
 * The answer to the APPLY posted without waiting: raises the owner's error,
 * else returns what almanac_store_batch_to_log returns after a request.
 */
bool
almanac_store_apply_wait(uint64 *incarnation, uint64 *batch_seq)
{
	int			store = apply_store;

	if (store < 0)
		elog(ERROR, "almanac: no batch was posted");
	drain_apply();
	apply_store = -1;
	report_answer(store, apply_answered, apply_sqlerrcode, apply_message, apply_detail);
	*incarnation = apply_incarnation;
	*batch_seq = apply_batch_seq;
	return apply_log_batch;
}

/*
 * The transaction that posted an APPLY ended without taking its answer (it
 * aborted): the answer no longer matters, the versions belong to an aborted
 * transaction.  The owner may still work on it; the next request waits.
 */
void
almanac_store_apply_forget(void)
{
	apply_store = -1;
}

/*
 * After an ALMANAC_REQ_APPLY: whether the owner applied the batch without
 * syncing it, so that the caller must log it in PostgreSQL's WAL before its
 * commit record (kv/xact.c), and the owner's incarnation and the sequence
 * number of its write, for that message.
 */
bool
almanac_store_batch_to_log(uint64 *incarnation, uint64 *batch_seq)
{
	AlmanacRequestSlot *slot = &almanac_shared->slots[MyProc->pgprocno];

	/* the slot is this backend's own: nobody else posts in it */
	*incarnation = slot->incarnation;
	*batch_seq = slot->batch_seq;
	return slot->log_batch;
}

/*
 * Ask the owner to ingest a bulk-load chunk (ALMANAC_REQ_INGEST, payload as
 * bulk.c builds it in seg), without waiting: the owner builds and ingests the
 * file while the backend reads the next rows.  The caller keeps seg until
 * almanac_store_ingest_wait has answered, and asks for that answer before it
 * posts another ingest (so does any other caller: one is posted at a time).
 */
void
almanac_store_post_ingest(int store, dsm_segment *seg, Size payload_len)
{
	drain_outstanding();
	kept = false;
	outstanding_store = -1;
	if (!outstanding_exit_registered)
	{
		before_shmem_exit(drain_at_exit, 0);
		outstanding_exit_registered = true;
	}
	post(&almanac_shared->slots[MyProc->pgprocno], store, ALMANAC_REQ_INGEST, seg,
		 payload_len, NULL);
	outstanding_store = store;
}

/*
 * The answer to the ingest posted last: true if ingested, false if the owner
 * refused it because keys already exist in its key range (nothing was
 * ingested).  Raises the owner's error.
 */
bool
almanac_store_ingest_wait(void)
{
	int			store = outstanding_store;

	if (store < 0)
		elog(ERROR, "almanac: no bulk-load chunk was posted");
	drain_outstanding();
	outstanding_store = -1;
	kept = false;
	report_answer(store, kept_answered, kept_sqlerrcode, kept_message, kept_detail);
	return kept_ingested;
}
