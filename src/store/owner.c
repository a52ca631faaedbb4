/*-------------------------------------------------------------------------
 *
 * owner.c
 *	  Store ownership, owner side: the background worker that opens one
 *	  RocksDB store read-write, is its only writer, and answers requests.
 *	  See store.h for the protocol.
 *
 * The owner connects to no database: it needs the commit log (to judge the
 * versions it merges) and the procarray (for the pruning horizon), both of
 * which are shared.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "access/rmgr.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogreader.h"
#include "access/xlogutils.h"
#include "common/file_perm.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/pg_bitutils.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/message.h"
#include "replication/slot.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/pmsignal.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include <rocksdb/c.h>

#include "almanac.h"
#include "fault.h"
#include "codec/keycodec.h"
#include "codec/visibility.h"
#include "kv/reader.h"
#include "kv/rocks.h"
#include "kv/rowcache.h"
#include "kv/sharedcache.h"
#include "store/maintenance.h"
#include "store/owner.h"
#include "store/payload.h"
#include "store/store.h"

/* RocksDB's "default" column family, which every store has */
#define DEFAULT_CF_ID	0

typedef struct OwnerCf
{
	char	   *name;
	uint32		id;
	rocksdb_column_family_handle_t *handle;
	bool		in_batch;		/* the batch being built writes a key of it */
	bool		write_through;	/* into the shared row cache: set_write_through */
} OwnerCf;

/* the owner's state: one store per owner process */
static int	owner_store = -1;
static rocksdb_t *owner_db = NULL;
static rocksdb_options_t *owner_options = NULL;
static rocksdb_options_t *owner_default_options = NULL;	/* default_cf_options */
static rocksdb_writeoptions_t *owner_wopts = NULL;	/* sync */
static rocksdb_writeoptions_t *owner_group_wopts = NULL;	/* no sync */
static rocksdb_writeoptions_t *owner_nowal_wopts = NULL;	/* owner_skip_wal */
static rocksdb_readoptions_t *owner_ropts = NULL;
static OwnerCf *owner_cfs = NULL;
static int	owner_ncfs = 0;
static MemoryContext owner_cxt = NULL;

/* the physical replication slot holding the WAL to replay (log mode) */
static char owner_slot_name[NAMEDATALEN];

/* the store was a dropped database's, removed: its entry may be reused */
static bool owner_database_dropped = false;

/* bytes written since the last flush of all column families */
static uint64 owner_unflushed = 0;

/* when the owner last wrote a batch counted in owner_unflushed */
static TimestampTz owner_last_write = 0;

/* the owner asked for a flush: look for a log file left behind (stranded_log_step) */
static bool owner_check_logs = false;

/* per request, released on success and on error */
static rocksdb_writebatch_t *req_out = NULL;
static rocksdb_writebatch_wi_t *req_read = NULL;	/* see owner_apply */
static dsm_segment *req_seg = NULL;

static void set_write_through(void);
static void durable_sync_join(bool record);

static void
set_store_state(AlmanacStoreState state, const char *error)
{
	AlmanacStoreEntry *e = &almanac_shared->stores[owner_store];

	LWLockAcquire(almanac_shared->lock, LW_EXCLUSIVE);
	e->state = state;
	if (state == ALMANAC_STORE_READY)
	{
		e->owner_pid = MyProcPid;
		e->owner_procno = MyProc->pgprocno;
	}
	if (error)
		strlcpy(e->error, error, ALMANAC_ERROR_LEN);
	LWLockRelease(almanac_shared->lock);
	ConditionVariableBroadcast(&almanac_shared->store_cv);
}

static void
close_store(void)
{
	/* the durable point's sync uses the handle */
	durable_sync_join(false);
	if (owner_db)
	{
		for (int i = 0; i < owner_ncfs; i++)
			rocksdb_column_family_handle_destroy(owner_cfs[i].handle);
		rocksdb_close(owner_db);
		owner_db = NULL;
	}
}

static void wal_shutdown(void);
static void release_request(void);

/*
 * Drop replication slot 'name' (letting go of the one this process holds
 * first: a process holds one slot at a time).  Failures are logged, with
 * the LWLocks the slot code errors holding released: the slot then stays,
 * holding WAL, until dropped by hand.  True if dropped.
 */
static bool
drop_slot(const char *name)
{
	MemoryContext old = CurrentMemoryContext;
	bool		dropped = true;

	if (MyReplicationSlot != NULL)
		ReplicationSlotRelease();
	PG_TRY();
	{
		ReplicationSlotDrop(name, true);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(old);
		LWLockReleaseAll();
		edata = CopyErrorData();
		FlushErrorState();
		if (MyReplicationSlot != NULL)
			ReplicationSlotRelease();
		ereport(LOG,
				(errmsg("almanac: could not drop replication slot \"%s\": %s",
						name, edata->message),
				 errhint("Drop it with pg_drop_replication_slot once no store owner uses it.")));
		dropped = false;
	}
	PG_END_TRY();
	return dropped;
}

/*
 * Drop the owner's replication slot, if it holds one: when the store needs
 * no WAL (its state says nothing to replay, or it is gone), so that no slot
 * holds WAL while no owner runs (a clean stop, DROP EXTENSION, a store left
 * behind).  The next owner's start makes a new one before it serves.
 */
static void
drop_own_slot(void)
{
	if (MyReplicationSlot != NULL)
		(void) drop_slot(owner_slot_name);
}

/* at exit: close the store, and let the next backend start a new owner */
static void
owner_shutdown(int code, Datum arg)
{
	wal_shutdown();
	close_store();
	if (owner_store >= 0 &&
		almanac_shared->stores[owner_store].state != ALMANAC_STORE_FAILED)
		set_store_state(ALMANAC_STORE_UNUSED, NULL);
	if (owner_store >= 0 && owner_database_dropped)
		almanac_store_release_entry(almanac_shared->stores[owner_store].path);

	/* wake everyone waiting on a request of ours: they see the state */
	for (int i = 0; i < almanac_shared->nslots; i++)
		if (almanac_shared->slots[i].store == owner_store)
			ConditionVariableBroadcast(&almanac_shared->slots[i].cv);
}

/*
 * The store of a dropped database: a database's own store (server without
 * "path", almanac/base/<oid>) outlives nothing of the database.  Once the
 * database is gone (no backend of it remains, so no request can come), the
 * owner closes the store, removes its directory and exits; a new database
 * that gets the same OID starts an empty store.  Called between requests,
 * every almanac.reader_cleanup_interval.
 */
void
almanac_owner_drop_if_database_gone(void)
{
	AlmanacStoreEntry *e = &almanac_shared->stores[owner_store];
	Oid			dbid = e->tuning.database;
	char		path[MAXPGPATH];
	bool		exists;
	MemoryContext old = CurrentMemoryContext;

	if (!OidIsValid(dbid))
		return;
	/* pg_database is shared: readable without connecting to a database */
	StartTransactionCommand();
	exists = SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dbid));
	CommitTransactionCommand();
	MemoryContextSwitchTo(old);
	if (exists)
		return;

	strlcpy(path, e->path, sizeof(path));
	ereport(LOG,
			(errmsg("almanac: database %u was dropped: removing its store \"%s\"", dbid, path)));
	close_store();
	/* the slot held the WAL for this store only */
	drop_own_slot();
	owner_database_dropped = true;
	if (!rmtree(path, true))
		ereport(LOG,
				(errmsg("almanac: could not remove all of \"%s\"", path)));
	proc_exit(0);				/* owner_shutdown frees the entry */
}

/* does the file system under 'dir' accept O_DIRECT? */
static bool
direct_io_works(const char *dir)
{
#ifdef O_DIRECT
	char		probe[MAXPGPATH];
	int			fd;

	snprintf(probe, sizeof(probe), "%s/.direct_io_probe", dir);
	fd = open(probe, O_CREAT | O_RDWR | O_DIRECT, 0600);
	if (fd < 0)
		return false;
	close(fd);
	unlink(probe);
	return true;
#else
	return false;
#endif
}

/*
 * opts (consumed) with a bloom filter of whole keys in each memtable, if
 * the store has bloom filters at all.  Every intent the owner applies first
 * reads its key's version list (apply_intents), and a key never written
 * before (each new block's, transaction's and event's mirror key) misses:
 * without the filter, that miss searched the memtable's skiplist as deeply
 * as the insert that follows, a third of the owner's time in ingest with
 * mirrors on (perf, docs/benchmarks.md); with it, the miss costs a hash.
 * 2 % of the write buffer: 8 bits a key for memtables of entries down to
 * 20 bytes (RocksDB's own guidance: at most 25 %).  The C API has no setter
 * for memtable_whole_key_filtering, hence the options string.
 */
static rocksdb_options_t *
with_memtable_filter(rocksdb_options_t *opts, const AlmanacStoreEntry *e)
{
	rocksdb_options_t *with;
	char	   *err = NULL;

	if (e->tuning.bloom_bits_per_key <= 0)
		return opts;
	with = rocksdb_options_create();
	rocksdb_get_options_from_string(opts,
									"memtable_whole_key_filtering=true;memtable_prefix_bloom_size_ratio=0.02",
									with, &err);
	rocksdb_options_destroy(opts);
	if (err != NULL)
		rocksdb_options_destroy(with);
	almanac_rocks_check(err, "setting the memtable filter");
	return with;
}

/* the bound of the store's RocksDB info log files (build_options) */
#define INFO_LOG_FILES		10
#define INFO_LOG_FILE_SIZE	((size_t) 8 * 1024 * 1024)

/* the store's options, from the server options the first backend passed */
static rocksdb_options_t *
build_options(AlmanacStoreEntry *e)
{
	rocksdb_options_t *opts = rocksdb_options_create();
	const AlmanacServerOptions *t = &e->tuning;

	rocksdb_options_set_create_if_missing(opts, 1);
	rocksdb_options_set_create_missing_column_families(opts, 1);
	rocksdb_options_set_write_buffer_size(opts, t->write_buffer_size);
	rocksdb_options_set_max_write_buffer_number(opts, t->max_write_buffer_number);
	rocksdb_options_set_min_write_buffer_number_to_merge(opts, t->min_write_buffer_number_to_merge);
	rocksdb_options_set_max_open_files(opts, t->max_open_files);
	rocksdb_options_set_max_total_wal_size(opts, t->max_total_wal_size);

	/*
	 * RocksDB's info log, LOG in the store directory: every open (the owner's
	 * start, its reopen after a drop: owner_reopen) renames the last one
	 * LOG.old.<time>, and RocksDB keeps 1000 of those, each of unbounded
	 * size, by default.  Bounded to INFO_LOG_FILES files (LOG included; the
	 * oldest are removed at each open and each roll) of about
	 * INFO_LOG_FILE_SIZE each, a roll starting a new LOG (docs/operations.md).
	 */
	rocksdb_options_set_keep_log_file_num(opts, INFO_LOG_FILES);
	rocksdb_options_set_max_log_file_size(opts, INFO_LOG_FILE_SIZE);
	almanac_store_file_format(opts, e);

	/*
	 * 'auto': direct I/O only when the readers do not map the files.  A file
	 * that a flush or compaction writes with direct I/O is not in the page
	 * cache, and each page of it a backend's mapped reader (reader.h) then
	 * touches first is a disk read (seen: a new
	 * connection's Gets of a just-flushed mirror spent most of their time
	 * in page faults waiting for I/O, where the heap read shared_buffers).
	 * Buffered writes leave the new files where every reader finds them.
	 */
	if (t->use_direct_io == ALMANAC_DIRECT_IO_ON ||
		(t->use_direct_io == ALMANAC_DIRECT_IO_AUTO && !almanac_reader_mmap))
	{
		if (direct_io_works(e->path))
		{
			rocksdb_options_set_use_direct_reads(opts, 1);
			rocksdb_options_set_use_direct_io_for_flush_and_compaction(opts, 1);
		}
		else if (t->use_direct_io == ALMANAC_DIRECT_IO_ON)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the file system of \"%s\" does not support direct I/O", e->path),
					 errhint("Set the server option use_direct_io to 'auto' or 'off'.")));
		else
			ereport(LOG,
					(errmsg("almanac: direct I/O is not supported under \"%s\"; using buffered I/O", e->path)));
	}
	return with_memtable_filter(opts, e);
}

static rocksdb_options_t *default_cf_options(rocksdb_options_t *opts);

/*
 * Publish the owner's column families in the store's entry (store.h,
 * AlmanacStoreCf), while cf_version is odd: the caller's window around a
 * create or drop, or one of its own at the owner's start.  A list that does
 * not fit is published as not known (backends then ask their instances).
 */
static void
publish_cfs(void)
{
	AlmanacStoreEntry *e = &almanac_shared->stores[owner_store];
	pg_atomic_uint64 *cf_version = &e->cf_version;
	bool		own_window = (pg_atomic_read_u64(cf_version) & 1) == 0;
	int			n = owner_cfs != NULL && owner_ncfs <= ALMANAC_MAX_SHOWN_CFS ? owner_ncfs : -1;

	if (own_window)
		pg_atomic_fetch_add_u64(cf_version, 1);
	for (int i = 0; i < n; i++)
	{
		if (strlen(owner_cfs[i].name) >= NAMEDATALEN)
		{
			n = -1;
			break;
		}
		strlcpy(e->cfs_shown[i].name, owner_cfs[i].name, NAMEDATALEN);
		e->cfs_shown[i].id = owner_cfs[i].id;
	}
	pg_write_barrier();
	e->ncfs_shown = n;
	if (own_window)
		pg_atomic_fetch_add_u64(cf_version, 1);
}

static void
open_store(void)
{
	AlmanacStoreEntry *e = &almanac_shared->stores[owner_store];
	char		dir[MAXPGPATH];
	char	   *err = NULL;
	List	   *names;
	int			nnames;
	const rocksdb_options_t **cf_opts;
	rocksdb_column_family_handle_t **handles;

	/*
	 * pg_mkdir_p writes into the path as it walks it: never into the shared
	 * one, which backends compare to find the store (seen: a second owner
	 * started for the same path, and failing on the LOCK).
	 */
	strlcpy(dir, e->path, sizeof(dir));
	if (pg_mkdir_p(dir, pg_dir_create_mode) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", e->path)));

	owner_options = build_options(e);
	owner_default_options = default_cf_options(owner_options);

	names = almanac_rocks_column_families(owner_options, e->path, &err);
	if (err)
	{
		/* a new store: only the default column family */
		rocksdb_free(err);
		err = NULL;
	}
	nnames = list_length(names);

	owner_ncfs = nnames > 0 ? nnames : 1;
	owner_cfs = MemoryContextAllocZero(TopMemoryContext, sizeof(OwnerCf) * owner_ncfs);
	cf_opts = palloc(sizeof(rocksdb_options_t *) * owner_ncfs);
	handles = palloc(sizeof(rocksdb_column_family_handle_t *) * owner_ncfs);
	for (int i = 0; i < owner_ncfs; i++)
	{
		owner_cfs[i].name = MemoryContextStrdup(TopMemoryContext,
												nnames > 0 ? list_nth(names, i) : "default");
		cf_opts[i] = strcmp(owner_cfs[i].name, "default") == 0 ?
			owner_default_options : owner_options;
	}

	{
		const char **cf_names = palloc(sizeof(char *) * owner_ncfs);

		for (int i = 0; i < owner_ncfs; i++)
			cf_names[i] = owner_cfs[i].name;
		owner_db = rocksdb_open_column_families(owner_options, e->path, owner_ncfs,
												cf_names, cf_opts, handles, &err);
	}
	almanac_rocks_error(ERROR, ERRCODE_IO_ERROR, err, "could not open almanac store \"%s\"", e->path);
	for (int i = 0; i < owner_ncfs; i++)
	{
		owner_cfs[i].handle = handles[i];
		owner_cfs[i].id = rocksdb_column_family_handle_get_id(handles[i]);
	}
	set_write_through();

	owner_wopts = rocksdb_writeoptions_create();
	/* durable before PostgreSQL writes its commit record */
	rocksdb_writeoptions_set_sync(owner_wopts, 1);
	/* an applied batch: made durable by its round's sync (serve_pending) */
	owner_group_wopts = rocksdb_writeoptions_create();
	owner_nowal_wopts = rocksdb_writeoptions_create();
	rocksdb_writeoptions_disable_WAL(owner_nowal_wopts, 1);
	owner_ropts = rocksdb_readoptions_create();

	pg_atomic_write_u64(&e->published_seq, rocksdb_get_latest_sequence_number(owner_db));
	publish_cfs();
}

/*
 * Run one step of the owner's start (opening the store, the WAL replay); if
 * it fails, record why (a backend attaching to the store reports it, and
 * starts a new owner that tries again), log the error with its SQLSTATE,
 * detail and hint (default_hint when it has none), and exit.  "what" reads
 * as "could not <what> store ...".
 */
static void
start_step_or_exit(void (*step) (void), const char *what, const char *default_hint)
{
	PG_TRY();
	{
		step();
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		const char *hint;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		FlushErrorState();
		hint = edata->hint ? edata->hint : default_hint;
		ereport(LOG,
				(errcode(edata->sqlerrcode),
				 errmsg("almanac: could not %s store \"%s\": %s",
						what, almanac_shared->stores[owner_store].path, edata->message),
				 edata->detail ? errdetail("%s", edata->detail) : 0,
				 hint ? errhint("%s", hint) : 0));

		/*
		 * Only then the failure, which a waiting backend reports at once:
		 * by then the log has the reason, and the slot is free to drop (as
		 * the hint may say).
		 */
		LWLockReleaseAll();
		if (MyReplicationSlot != NULL)
			ReplicationSlotRelease();
		set_store_state(ALMANAC_STORE_FAILED, edata->message);
		proc_exit(0);
	}
	PG_END_TRY();
}

/*
 * Which column families' written values go into the shared row cache: not
 * those almanac.range_read_column_families lists (kv/sharedcache.h).  At
 * every open, creation of a column family and reload of the configuration;
 * a batch sees one setting throughout.
 */
static void
set_write_through(void)
{
	for (int i = 0; i < owner_ncfs; i++)
		owner_cfs[i].write_through = almanac_shared_cache_writes_through(owner_cfs[i].name);
}

static OwnerCf *
find_cf_by_name(const char *name)
{
	for (int i = 0; i < owner_ncfs; i++)
		if (strcmp(owner_cfs[i].name, name) == 0)
			return &owner_cfs[i];
	return NULL;
}

static OwnerCf *
find_cf_by_id(uint32 id)
{
	for (int i = 0; i < owner_ncfs; i++)
		if (owner_cfs[i].id == id)
			return &owner_cfs[i];
	return NULL;
}

/* the open store and its column families, for maintenance.c */
rocksdb_t *
almanac_owner_db(void)
{
	return owner_db;
}

/* a column family by id; NULL when it was dropped */
rocksdb_column_family_handle_t *
almanac_owner_cf(uint32 cf_id, const char **name)
{
	OwnerCf    *cf = find_cf_by_id(cf_id);

	if (cf == NULL)
		return NULL;
	if (name)
		*name = cf->name;
	return cf->handle;
}

/* the ids of all column families, palloc'd */
uint32 *
almanac_owner_cf_ids(int *n)
{
	uint32	   *ids = palloc(sizeof(uint32) * Max(owner_ncfs, 1));

	for (int i = 0; i < owner_ncfs; i++)
		ids[i] = owner_cfs[i].id;
	*n = owner_ncfs;
	return ids;
}

/*
 * The catch-up marker: a key written, with an empty value, into every column
 * family by every write of the owner, and once more right after every flush
 * the owner asks for.
 *
 * RocksDB secondaries (7.8; reported upstream as facebook/rocksdb#15051)
 * keep serving stale point lookups after the primary flushes: a
 * secondary replays the primary's WAL into its active memtable, and when the
 * primary flushes that data and moves on to a new, empty WAL, catching up
 * installs the new SST files but leaves the active memtable alone; a Get
 * looks in the memtable first and finds the older value there, even though
 * the file set holds the newer one.  A secondary seals its active memtable
 * only when it replays a batch for that column family from a later WAL, and
 * then drops it once the MANIFEST says the data is flushed.  Writing the
 * marker into every column family in every batch (so the first batch after a
 * memtable switch RocksDB makes by itself carries it) and after each flush we
 * request (which switches with no batch following) makes sure that the
 * current WAL holds such a batch for every column family, except while the
 * write after a switch stalls: readers handle that window themselves
 * (kv/reader.c, memtable_may_be_stale).
 *
 * The marker has no ':', so it is no key of any table: every table key is
 * key_prefix:... and scans are bounded by their prefix.  It costs a few
 * bytes per write, and each flush of an otherwise idle column family now
 * writes a one-key file.  test/t/005_compaction_reads.pl shows the stale
 * lookup without it.
 *
 * Any key of a column family in the batch does the marker's job for it, since
 * every reader replays every entry of every batch: a batch of intents skips
 * the marker of each column family it writes a key of (in_batch), and a
 * batch carrying an apply journal entry (in the default column family)
 * skips the default's (put_markers_except).  Every reader replays every
 * marker into a memtable of its own: in a store of one table, the marker
 * was a third of what a small transaction made every reader replay.
 */
static bool in_batch_valid = false;	/* set by group_write for its write */

static void
put_markers_except(rocksdb_writebatch_t *batch, uint32 skip_cf_id)
{
	/* a batch that failed before its write may have left in_batch set */
	bool		use_in_batch = in_batch_valid;

	in_batch_valid = false;
	for (int i = 0; i < owner_ncfs; i++)
	{
		if (owner_cfs[i].id != skip_cf_id && !(use_in_batch && owner_cfs[i].in_batch))
			rocksdb_writebatch_put_cf(batch, owner_cfs[i].handle, ALMANAC_CATCH_UP_MARKER,
									  ALMANAC_CATCH_UP_MARKER_LEN, "", 0);
		owner_cfs[i].in_batch = false;
	}
}

/* no column family is written by the batch being built (yet) */
static void
clear_in_batch(void)
{
	for (int i = 0; i < owner_ncfs; i++)
		owner_cfs[i].in_batch = false;
}

static void
put_markers(rocksdb_writebatch_t *batch)
{
	put_markers_except(batch, PG_UINT32_MAX);
}

/*
 * The options a write goes with: 'wopts', or none of RocksDB's write-ahead
 * log while the fault point owner_skip_wal is armed (fault.h).  Every write
 * then skips it, not only applied batches: a later write in the log would
 * survive a SIGKILL that loses earlier ones, which no crash does, and the
 * replay's test of what the store holds (wal_replay) relies on that.
 */
static rocksdb_writeoptions_t *
write_options(rocksdb_writeoptions_t *wopts)
{
	if (ALMANAC_FAULT_ARMED("owner_skip_wal"))
		return owner_nowal_wopts;
	return wopts;
}

/*
 * After a flush: a batch of markers into the new WAL, written with 'wopts';
 * NULL or RocksDB's error.
 */
static char *
write_markers(rocksdb_writeoptions_t *wopts)
{
	rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
	char	   *err = NULL;

	put_markers(batch);
	rocksdb_write(owner_db, write_options(wopts), batch, &err);
	rocksdb_writebatch_destroy(batch);
	return err;
}

/*
 * Would RocksDB make a flush of 'cf' asked for now wait?  A flush asked
 * "without waiting" still waits, before it switches memtables, until it
 * would not stall writes (FlushOptions::allow_write_stall, false, which the
 * C API cannot set: DBImpl::WaitUntilFlushWouldNotStallWrites), that is
 * until RocksDB's earlier flushes and compactions have caught up, however
 * long that takes on a loaded machine; and the owner answers nothing
 * meanwhile.  This is RocksDB's test (7.8,
 * ColumnFamilyData::GetWriteStallConditionAndCause with one more memtable
 * and one more level-0 file), on the column family's properties, counting
 * each unflushed memtable as a level-0 file already (its flush may end
 * between this look and the flush).  Only the owner writes, so nothing else
 * adds memtables meanwhile.  A property RocksDB cannot tell: no wait
 * assumed, as before.
 */
static bool
flush_would_wait(OwnerCf *cf)
{
	const AlmanacServerOptions *t = &almanac_shared->stores[owner_store].tuning;
	uint64_t	imm = 0;
	uint64_t	l0 = 0;
	uint64_t	pending = 0;
	uint64_t	soft = rocksdb_options_get_soft_pending_compaction_bytes_limit(owner_options);
	uint64_t	hard = rocksdb_options_get_hard_pending_compaction_bytes_limit(owner_options);
	int			slowdown = rocksdb_options_get_level0_slowdown_writes_trigger(owner_options);
	int			stop = rocksdb_options_get_level0_stop_writes_trigger(owner_options);
	int			trigger = rocksdb_options_get_level0_file_num_compaction_trigger(owner_options);

	if (rocksdb_property_int_cf(owner_db, cf->handle, "rocksdb.num-immutable-mem-table", &imm) != 0 ||
		rocksdb_property_int_cf(owner_db, cf->handle, "rocksdb.num-files-at-level0", &l0) != 0)
		return false;
	if (rocksdb_property_int_cf(owner_db, cf->handle, "rocksdb.estimate-pending-compaction-bytes",
								&pending) != 0)
		pending = 0;
	l0 += imm;
	if (imm < (uint64_t) t->min_write_buffer_number_to_merge && l0 < (uint64_t) trigger)
		return false;
	imm++;
	l0++;
	return imm >= (uint64_t) t->max_write_buffer_number ||
		l0 >= (uint64_t) stop ||
		(hard > 0 && pending >= hard) ||
		(t->max_write_buffer_number > 3 && imm >= (uint64_t) t->max_write_buffer_number - 1 &&
		 imm - 1 >= (uint64_t) t->min_write_buffer_number_to_merge) ||
		(slowdown >= 0 && l0 >= (uint64_t) slowdown) ||
		(soft > 0 && pending >= soft);
}

/* a flush put off (flush_would_wait) is tried again this much later */
#define FLUSH_RETRY_MS	100

static TimestampTz flush_retry_at = 0;

/*
 * Flush every column family without waiting, then write the catch-up
 * markers into the new write-ahead log.  All of them: the markers go into
 * every column family with every write, so one left unflushed (RocksDB's
 * "default" among them) keeps the whole log alive.  None while a flush of
 * one of them would wait in RocksDB (flush_would_wait): the owner would
 * answer nothing meanwhile, and RocksDB, which is behind, flushes what it
 * holds anyway; false then, and the caller tries again after
 * FLUSH_RETRY_MS (flush_retry_at).  What is unflushed stays counted.
 */
static bool
flush_all(void)
{
	rocksdb_flushoptions_t *fo;
	char	   *err;

	for (int i = 0; i < owner_ncfs; i++)
		if (flush_would_wait(&owner_cfs[i]))
		{
			flush_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), FLUSH_RETRY_MS);
			return false;
		}
	fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 0);
	for (int i = 0; i < owner_ncfs; i++)
	{
		char	   *err = NULL;

		rocksdb_flush_cf(owner_db, fo, owner_cfs[i].handle, &err);
		almanac_rocks_error(LOG, ERRCODE_IO_ERROR, err,
							"almanac: flush of column family \"%s\" failed", owner_cfs[i].name);
	}
	rocksdb_flushoptions_destroy(fo);
	owner_unflushed = 0;
	owner_check_logs = true;
	/* as if the write after the switch stalled: the new WAL holds nothing */
	ALMANAC_FAULT_POINT("owner_before_markers");
	ALMANAC_FAULT_PAUSE("owner_pause_before_markers", 3000);

	/*
	 * Not synced: markers make nothing durable, and a synced write here
	 * synced the log the switch closed, whatever of it no durable point had
	 * synced yet, with the round's answers waiting (bench/stall/run.sh: 33
	 * ms).  A failure only logged: what was written before stays written.
	 */
	err = write_markers(owner_group_wopts);
	almanac_rocks_error(LOG, ERRCODE_IO_ERROR, err, "almanac: writing catch-up markers failed");
	return true;
}

/*
 * Every backend's secondary replays the owner's unflushed write-ahead log into
 * memtables of its own, so unflushed data costs memory in every backend that
 * reads.  RocksDB's max_total_wal_size only forces flushes across several
 * column families, and the design's write buffers (4 x 64MB, merged by 2)
 * let a single one hold more than 128MB unflushed (seen: 317MB added per
 * backend).  So the owner flushes every column family, without waiting,
 * once that much has been written since the last flush.
 */
static void
bound_unflushed(void)
{
	int64		limit = almanac_shared->stores[owner_store].tuning.max_total_wal_size;

	if (limit <= 0 || owner_unflushed < (uint64) limit)
		return;
	if (flush_retry_at != 0 && GetCurrentTimestamp() < flush_retry_at)
		return;
	(void) flush_all();
}

/* does RocksDB have a flush running, or one due for a column family? */
static bool
flush_in_progress(void)
{
	uint64_t	v = 0;

	if (rocksdb_property_int(owner_db, "rocksdb.num-running-flushes", &v) != 0 || v > 0)
		return true;
	for (int i = 0; i < owner_ncfs; i++)
		if (rocksdb_property_int_cf(owner_db, owner_cfs[i].handle,
									"rocksdb.mem-table-flush-pending", &v) != 0 || v > 0)
			return true;
	return false;
}

/*
 * A write-ahead log file goes once every column family with data in it is
 * flushed.  flush_all flushes them all, but RocksDB also flushes by itself
 * when its logs exceed max_total_wal_size ("Flushing all column families
 * with data in WAL number N" in its LOG), and then switches only the
 * column families that still have data in the oldest log: while the
 * flushes of the owner's last flush_all are still running (a loaded
 * machine: flushes that take seconds), that is some of them, the ones
 * whose flush has not finished.  The others keep the log the owner wrote
 * its markers into after that flush_all, and since the owner counts nothing
 * unflushed (the write that passed RocksDB's limit is typically a durable
 * point, which does not count), nothing flushed them again: a store at rest
 * kept a second log file until its next write and idle delay (seen in
 * test/t/006_memory.pl at load ~10).  almanac.flush and almanac.compact of
 * one column family leave the others in the old log the same way.  So
 * once RocksDB has finished flushing after a flush the owner asked for, the
 * owner counts the store's log files, and flushes every column family once
 * more if there is more than the one being written.  Once: a file that
 * outlives that flush too is left to the next one.  Not with
 * almanac.idle_flush_delay = 0, which leaves logs unflushed anyway.
 */
static long
stranded_log_step(long timeout)
{
	AlmanacWalFiles files;

	if (!owner_check_logs)
		return timeout;
	if (flush_in_progress())
		return timeout < 0 ? almanac_idle_flush_delay : Min(timeout, almanac_idle_flush_delay);
	almanac_rocks_wal_files(almanac_shared->stores[owner_store].path, false, NULL, &files);
	if (files.count > 1 && !flush_all())
		return timeout < 0 ? FLUSH_RETRY_MS : Min(timeout, FLUSH_RETRY_MS);
	owner_check_logs = false;
	return timeout;
}

/*
 * The replay costs time too: a new connection's first read opens a
 * secondary, which parses every unflushed log file (measured: 5.7 ms of
 * backend CPU per MB, so up to a third of a second per connection below
 * max_total_wal_size's 64MB, and nothing flushes it while writes pause).  So
 * once the owner has written nothing for almanac.idle_flush_delay, it
 * flushes what it wrote: a store at rest, or between the blocks of a
 * follower of the chain's head, leaves new connections no log to replay
 * (nor a log stranded by RocksDB's own flush: stranded_log_step).
 * Returns the timeout of the owner's next wait, shortened to when the flush
 * is due.
 */
static long
flush_when_idle(long timeout)
{
	TimestampTz now;
	TimestampTz due;

	if (almanac_idle_flush_delay <= 0)
		return timeout;
	if (owner_unflushed == 0)
		return stranded_log_step(timeout);
	now = GetCurrentTimestamp();
	due = TimestampTzPlusMilliseconds(owner_last_write, almanac_idle_flush_delay);
	if (now < due)
		return Min(timeout, TimestampDifferenceMilliseconds(now, due) + 1);
	if (!flush_all())
		return timeout < 0 ? FLUSH_RETRY_MS : Min(timeout, FLUSH_RETRY_MS);
	return timeout;
}

/*
 * Write a batch with 'wopts', count it towards the next flush, and publish
 * the new sequence number so that readers catch up.  'bytes' approximates
 * what it adds to the WAL.  'journaled': the batch holds apply journal
 * entries (group_write), which do the default column family's marker's job.
 * Returns the sequence number of the batch's last entry (the owner is the
 * store's only writer), before any write of the flush it may start.
 */
static uint64
owner_write(rocksdb_writebatch_t *batch, Size bytes, rocksdb_writeoptions_t *wopts,
			bool journaled)
{
	AlmanacWriteLog *log = &almanac_shared->stores[owner_store].writelog;
	char	   *err = NULL;
	uint64		seq;

	if (journaled)
		put_markers_except(batch, DEFAULT_CF_ID);
	else
		put_markers(batch);
	/* before the write: a reader's catch-up may see it at once */
	almanac_write_log_append(log, owner_store);
	rocksdb_write(owner_db, write_options(wopts), batch, &err);
	almanac_rocks_check(err, "write");
	seq = rocksdb_get_latest_sequence_number(owner_db);
	almanac_write_log_mark_written(log);
	owner_unflushed += bytes;
	owner_last_write = GetCurrentTimestamp();
	bound_unflushed();
	pg_atomic_write_u64(&almanac_shared->stores[owner_store].published_seq,
						rocksdb_get_latest_sequence_number(owner_db));
	return seq;
}

/* write a batch durably (maintenance, bulk loads: everything but apply) */
void
almanac_owner_write(rocksdb_writebatch_t *batch, Size bytes)
{
	(void) owner_write(batch, bytes, owner_wopts, false);
}

/*
 * PostgreSQL's WAL as the one log (docs/write-path.md has the whole
 * argument).  In its usual mode ("log mode") the owner writes applied
 * batches without syncing RocksDB; the backend logs its batch into
 * PostgreSQL's WAL as a transactional message right after the owner's
 * answer and before its commit record, whose flush makes it durable.  Every
 * DURABLE_INTERVAL_MS the owner reads the flushed end of the WAL P, syncs
 * RocksDB's write-ahead log, records "durable up to P" (the WAL state key)
 * and moves its physical replication slot to P; at start, before serving,
 * it replays the messages from P that the store lost.
 *
 * (a) P is safe: a message below P was inserted before the owner read P,
 * and its backend inserted it after the owner answered, so after the owner
 * wrote the batch; the sync that follows the read makes that write
 * durable.  A message at or after P is replayed if the store does not hold
 * its batch.
 *
 * Whether the store holds a message's batch: the message names the owner's
 * incarnation (counted up at every start, with the state) and the RocksDB
 * sequence number of the write.  RocksDB recovers a prefix of its writes
 * (point-in-time recovery; memtable flushes sync the log first, and the
 * owner syncs before every request that is not a batch), so a batch of the
 * last incarnation is held iff its number is at most the recovered latest
 * one.  A message of an older incarnation at or after P was logged after
 * the last start's replay ended (a backend answered by the previous owner,
 * which exited cleanly while the server ran on): that owner's writes were
 * in the operating system's cache when the last one opened the store,
 * and RocksDB's recovery at open put them into synced files.
 *
 * (b) The xid-reuse hazard: a batch's versions may survive a crash that
 * loses the WAL records carrying their xids, and recovery would then hand
 * those xids out again.  The apply journal closes it without a flush of
 * PostgreSQL's WAL before each write: the write of every batch also puts an
 * entry (put_journal_entry: the keys, the xids, the owner's incarnation, the
 * write's sequence number), and the entry is kept until the requester's WAL
 * up to its wal_lsn (note_xid's records, so every xid of the batch) is
 * flushed: a durable point deletes the entries its P covers.  At the
 * owner's start, a kept entry of an earlier lifetime of shared memory (the
 * server restarted since, so every transaction of then has ended) whose
 * batch message is not in the WAL from P is an orphan: its transaction has
 * no commit record (a message precedes its commit record), and its xid may
 * have been handed out again, so its versions are removed before anything
 * is served (journal_resolve).  An entry whose message is there has its
 * xids durable with it; an entry of this lifetime (the owner exited, the
 * server ran on) has no reused xid, and the start's flush makes its xids
 * durable.  A kept entry's message is at or after P: it follows wal_lsn,
 * which P did not reach, or it was logged after the owner wrote the batch,
 * after the last durable point read P.  In synced mode the owner flushes
 * the WAL up to each request's wal_lsn before it writes the batch instead.
 *
 * Without replication slots (max_replication_slots = 0, wal_level =
 * minimal, or none free) the owner stays in "synced mode": every round of
 * batches is synced before its answers, and backends log nothing.
 */
#define DURABLE_INTERVAL_MS		1000

static bool wal_log_mode = false;
static uint64 owner_incarnation = 0;
static XLogRecPtr owner_durable_lsn = InvalidXLogRecPtr;
static TimestampTz owner_durable_at = 0;	/* last checked */

/* RocksDB's latest sequence number when the last durable point was recorded */
static uint64 owner_durable_seq = 0;
static TimestampTz owner_durable_recorded_at = 0;

/*
 * With no store write since the last durable point, a new one would make
 * nothing durable: it only lets the slot free the WAL written since (by
 * others: heap work, other stores).  That is done this seldom.
 */
#define IDLE_DURABLE_INTERVAL_MS	60000

/*
 * The WAL state: u8 format (1), u64 P (0: nothing to replay), u64 the
 * incarnation of the owner that wrote it.  In the default column family,
 * under a key that starts with a NUL byte as the freeze horizon's: no row
 * can have it, and the freeze sweep skips it (maintenance.c).
 */
static const char wal_state_key[] = "\0almanac:wal_state";
#define WAL_STATE_KEY_LEN (sizeof(wal_state_key) - 1)
#define WAL_STATE_LEN	(1 + 8 + 8)

static void
read_wal_state(XLogRecPtr *p, uint64 *incarnation)
{
	char	   *err = NULL;
	size_t		len = 0;
	char	   *v;

	v = rocksdb_get_cf(owner_db, owner_ropts, find_cf_by_id(DEFAULT_CF_ID)->handle,
					   wal_state_key, WAL_STATE_KEY_LEN, &len, &err);
	almanac_rocks_check(err, "read");
	*p = InvalidXLogRecPtr;
	*incarnation = 0;
	if (v == NULL)
		return;					/* a new store, or one from before */
	if (len != WAL_STATE_LEN || v[0] != 1)
	{
		rocksdb_free(v);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the WAL state of almanac store \"%s\" is unreadable",
						almanac_shared->stores[owner_store].path)));
	}
	*p = almanac_get_be64(v + 1);
	*incarnation = almanac_get_be64(v + 9);
	rocksdb_free(v);
}

static void
put_wal_state(rocksdb_writebatch_t *batch, XLogRecPtr p, uint64 incarnation)
{
	char		v[WAL_STATE_LEN];

	v[0] = 1;
	almanac_put_be64(v + 1, p);
	almanac_put_be64(v + 9, incarnation);
	rocksdb_writebatch_put_cf(batch, find_cf_by_id(DEFAULT_CF_ID)->handle,
							  wal_state_key, WAL_STATE_KEY_LEN, v, sizeof(v));
}

/*
 * The apply journal (see (b) above).  An entry, in the default column
 * family under "\0almanac:journal:" and the big-endian sequence number of
 * the write that applied its batch, holds
 *
 *		u8 format (1), u64 shared memory's lifetime, u64 owner incarnation,
 *		u64 that sequence number, then per key written:
 *		u32 column family id, u64 full xid, u32 key length, key
 *
 * Entries written by this owner and not yet deleted are listed in
 * journal_pending with the wal_lsn of their request.
 */
static const char journal_prefix[] = "\0almanac:journal:";
#define JOURNAL_PREFIX_LEN (sizeof(journal_prefix) - 1)
#define JOURNAL_KEY_LEN (JOURNAL_PREFIX_LEN + 8)
#define JOURNAL_FORMAT	1
#define JOURNAL_HEADER_LEN (1 + 8 + 8 + 8)
#define JOURNAL_SEQ_POS (1 + 8 + 8)

/*
 * The default column family's options: the store's, with RocksDB's insert
 * hint for the apply journal's keys.  Every applied batch puts a journal
 * entry there and a durable point deletes it, two of the three memtable
 * inserts of a one-row commit; their keys share the journal prefix and grow
 * with the sequence number, so with the hint each insert starts where the
 * last one of its prefix ended instead of searching the skip list from its
 * top (perf, bench/commit at 8 clients: the skip list's search was the
 * owner's largest self time).
 */
static rocksdb_options_t *
default_cf_options(rocksdb_options_t *opts)
{
	rocksdb_options_t *with = rocksdb_options_create();
	char	   *err = NULL;
	char		spec[96];

	snprintf(spec, sizeof(spec), "memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.%d",
			 (int) JOURNAL_PREFIX_LEN);
	rocksdb_get_options_from_string(opts, spec, with, &err);
	if (err != NULL)
		rocksdb_options_destroy(with);
	almanac_rocks_check(err, "setting the journal's insert hint");
	return with;
}

typedef struct JournalPending
{
	uint64		seq;			/* the entry's key */
	XLogRecPtr	wal_lsn;		/* the request's: durable once flushed past */
} JournalPending;

static JournalPending *journal_pending = NULL;
static int	journal_npending = 0;
static int	journal_maxpending = 0;

static void
journal_key(char *key, uint64 seq)
{
	memcpy(key, journal_prefix, JOURNAL_PREFIX_LEN);
	almanac_put_be64(key + JOURNAL_PREFIX_LEN, seq);
}

/* start an entry in 'buf': its header, the sequence number left to fill */
static void
journal_begin(StringInfo buf)
{
	char		h[JOURNAL_HEADER_LEN] = {0};

	h[0] = JOURNAL_FORMAT;
	almanac_put_be64(h + 1, almanac_shared->lifetime);
	almanac_put_be64(h + 9, owner_incarnation);
	appendBinaryStringInfo(buf, h, sizeof(h));
}

/* a key the entry's batch writes, with the xid of its new version */
static void
journal_add(StringInfo buf, uint32 cf_id, FullTransactionId xid, const char *key, uint32 klen)
{
	almanac_append_be32(buf, cf_id);
	almanac_append_be64(buf, U64FromFullTransactionId(xid));
	almanac_append_be32(buf, klen);
	appendBinaryStringInfo(buf, key, klen);
}

/*
 * Put the entry into the batch, after its batch's entries, keyed by the
 * sequence number it will be written at: the owner is the only writer, and
 * each entry of a write takes one number, in order (group_write checks that
 * nothing was written between).
 */
static uint64
put_journal_entry(rocksdb_writebatch_t *batch, StringInfo journal)
{
	char		key[JOURNAL_KEY_LEN];
	uint64		seq = rocksdb_get_latest_sequence_number(owner_db) +
		(uint64) rocksdb_writebatch_count(batch) + 1;

	almanac_put_be64(journal->data + JOURNAL_SEQ_POS, seq);
	journal_key(key, seq);
	rocksdb_writebatch_put_cf(batch, find_cf_by_id(DEFAULT_CF_ID)->handle,
							  key, sizeof(key), journal->data, journal->len);
	return seq;
}

/* after the write: the entry waits for its request's WAL to be flushed */
static void
journal_note_pending(uint64 seq, XLogRecPtr wal_lsn)
{
	journal_pending = almanac_grow_array(journal_pending, journal_npending, &journal_maxpending,
										 sizeof(JournalPending), 64);
	journal_pending[journal_npending].seq = seq;
	journal_pending[journal_npending].wal_lsn = wal_lsn;
	journal_npending++;
}

/*
 * Delete from the store, in 'batch', the pending entries whose WAL is
 * flushed up to p (all of them: p Invalid); returns how many, which
 * journal_forget_deleted drops from the list once the batch is durable.
 * The others stay first in the list.
 */
static int
journal_delete_durable(rocksdb_writebatch_t *batch, XLogRecPtr p)
{
	int			ndeleted = 0;

	for (int i = 0; i < journal_npending; i++)
	{
		JournalPending e = journal_pending[i];

		if (!XLogRecPtrIsInvalid(p) && e.wal_lsn > p)
		{
			/* kept: move it before the deleted ones */
			journal_pending[i] = journal_pending[i - ndeleted];
			journal_pending[i - ndeleted] = e;
			continue;
		}
		{
			char		key[JOURNAL_KEY_LEN];

			journal_key(key, e.seq);
			rocksdb_writebatch_delete_cf(batch, find_cf_by_id(DEFAULT_CF_ID)->handle,
										 key, sizeof(key));
		}
		ndeleted++;
	}
	return ndeleted;
}

static void
journal_forget_deleted(int ndeleted)
{
	journal_npending -= ndeleted;
}

/*
 * Move the slot's restart_lsn to p: WAL before it may go.  Up only, but for
 * the start ('exact'), which sets it to the store's new durable point
 * wherever the slot stood (a new slot reserves from the last checkpoint's
 * redo pointer; one that was left further on would keep nothing from p).
 */
static void
advance_slot(XLogRecPtr p, bool exact)
{
	if (MyReplicationSlot == NULL)
		return;
	SpinLockAcquire(&MyReplicationSlot->mutex);
	if (!exact && p <= MyReplicationSlot->data.restart_lsn)
	{
		SpinLockRelease(&MyReplicationSlot->mutex);
		return;
	}
	MyReplicationSlot->data.restart_lsn = p;
	SpinLockRelease(&MyReplicationSlot->mutex);
	/* saved by the next checkpoint, before it removes WAL */
	ReplicationSlotMarkDirty();
	ReplicationSlotsComputeRequiredLSN();
}

/*
 * The durable point's sync runs on a thread of its own, not on the owner's:
 * a sync of RocksDB's log waits for the disk (measured under a pgbench load
 * of one-row foreign upserts on this shared machine: 20 to 60 ms, once a
 * second, bench/stall/run.sh), and every commit posted meanwhile waited for
 * it, since the owner answers nothing while it syncs.  RocksDB's SyncWAL is
 * made to run beside writes (writes append to the log while it syncs what
 * was there, WritableFileWriter::SyncWithoutFlush); the owner goes on
 * serving rounds, and records the durable point once the sync is done.
 *
 * The thread calls RocksDB and nothing of PostgreSQL (no elog, no palloc,
 * no latch); every signal is blocked in it, so that PostgreSQL's signals
 * still reach the owner's thread.  It reports through 'done', which the
 * owner polls between rounds (DURABLE_SYNC_POLL_MS while a sync is running).
 * One at a time; the store is closed or reopened only once it has ended
 * (durable_sync_join).  If no thread can be started, the owner syncs itself,
 * as it did before.
 */
#define DURABLE_SYNC_POLL_MS	5

typedef struct DurableSync
{
	bool		running;		/* a sync was started and not taken up yet */
	bool		threaded;		/* it runs on 'thread' (else done inline) */
	pthread_t	thread;
	rocksdb_t  *db;
	int			pause_ms;		/* fault point owner_pause_durable_sync */
	pg_atomic_uint32 cancel;	/* the owner exits: cut the pause short */
	pg_atomic_uint32 done;		/* the thread has set err and ended */
	char	   *err;			/* RocksDB's error, malloc'd, or NULL */
	XLogRecPtr	p;				/* the point the sync makes durable */
	uint64		seq;			/* RocksDB's latest number after the state */
} DurableSync;

static DurableSync durable_sync;

static void *
durable_sync_main(void *arg)
{
	DurableSync *job = (DurableSync *) arg;

	/*
	 * A test holds the sync (fault.h) until the owner sees the fault point
	 * disarmed or exits ('cancel'): the owner must go on serving meanwhile.
	 */
	for (int waited = 0; waited < job->pause_ms && !pg_atomic_read_u32(&job->cancel);
		 waited += 10)
	{
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	rocksdb_flush_wal(job->db, 1, &job->err);
	pg_write_barrier();
	pg_atomic_write_u32(&job->done, 1);
	return NULL;
}

/* start the sync of everything written so far; returns at once */
static void
durable_sync_start(XLogRecPtr p)
{
	DurableSync *job = &durable_sync;
	sigset_t	all;
	sigset_t	old;
	int			rc;

	Assert(!job->running);
	job->db = owner_db;
	job->err = NULL;
	job->p = p;
	job->seq = rocksdb_get_latest_sequence_number(owner_db);
	job->pause_ms = 0;
	if (ALMANAC_FAULT_ARMED("owner_pause_durable_sync"))
	{
		almanac_fault_pause("owner_pause_durable_sync", 0);
		/* held until disarmed; bounded, should the test never disarm it */
		job->pause_ms = 300 * 1000;
	}
	pg_atomic_init_u32(&job->cancel, 0);
	pg_atomic_init_u32(&job->done, 0);
	job->running = true;

	/* the thread starts with every signal blocked, and keeps them so */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&job->thread, NULL, durable_sync_main, job);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	job->threaded = rc == 0;
	if (!job->threaded)
	{
		ereport(LOG,
				(errmsg("almanac: could not start a thread for the durable point's sync of store \"%s\": %s; syncing in the owner",
						almanac_shared->stores[owner_store].path, strerror(rc))));
		(void) durable_sync_main(job);
	}
}

/*
 * The sync ended: record the durable point (its state, written before the
 * sync, is durable with every batch written before P was read), and let the
 * slot free the WAL before P.  A failed sync records nothing: the next
 * durable point tries again.
 */
static void
durable_sync_finish(void)
{
	DurableSync *job = &durable_sync;

	if (job->threaded)
		pthread_join(job->thread, NULL);
	job->running = false;
	pg_read_barrier();
	if (job->err != NULL)
	{
		char	   *err = job->err;

		job->err = NULL;
		owner_durable_at = GetCurrentTimestamp();
		almanac_rocks_error(LOG, ERRCODE_IO_ERROR, err,
							"almanac: could not record a durable point of store \"%s\": sync failed",
							almanac_shared->stores[owner_store].path);
		return;
	}
	pg_atomic_fetch_add_u64(&almanac_shared->stores[owner_store].commit_syncs, 1);
	owner_durable_lsn = job->p;
	owner_durable_seq = job->seq;
	owner_durable_at = owner_durable_recorded_at = GetCurrentTimestamp();
	advance_slot(job->p, false);
}

/*
 * Wait for a running sync to end, and take it up ('record': record its
 * durable point; not when the owner exits, which records its own or none).
 * Before the store is closed or reopened: the thread uses the handle.
 */
static void
durable_sync_join(bool record)
{
	if (!durable_sync.running)
		return;
	/* a held sync (fault point) goes on now */
	pg_atomic_write_u32(&durable_sync.cancel, 1);
	if (record)
	{
		durable_sync_finish();
		return;
	}
	if (durable_sync.threaded)
		pthread_join(durable_sync.thread, NULL);
	durable_sync.running = false;
	if (durable_sync.err)
		rocksdb_free(durable_sync.err);
	durable_sync.err = NULL;
}

/*
 * Start a durable point "durable up to P": read P, write the state, and
 * start the sync of RocksDB's write-ahead log, which makes every batch
 * written before P was read durable (RocksDB's log is sequential); once it
 * is done (durable_sync_finish) the slot may let WAL before P go.  'p'
 * Invalid: read the flushed end of the WAL now.  Not the insert position:
 * below the flushed end every record is complete and on disk, and a smaller
 * P is as safe (every message below it was inserted before it was read;
 * docs/write-path.md), it only replays a little more.
 */
static void
record_durable_point(XLogRecPtr p)
{
	char	   *err = NULL;
	int			ndeleted;

	if (XLogRecPtrIsInvalid(p))
		p = GetFlushRecPtr(NULL);
	req_out = rocksdb_writebatch_create();
	put_wal_state(req_out, p, owner_incarnation);
	/* the xids of these entries' batches are in durable WAL now */
	ndeleted = journal_delete_durable(req_out, p);

	/*
	 * The catch-up markers, as in every write of the owner: RocksDB switches
	 * memtables at the start of the write after the one that filled them,
	 * and when writes pause that write is this one; without a marker for
	 * every column family first in the new WAL, a reader keeps the memtable
	 * of a family the switch then flushes, and its Gets find older values
	 * (test/t/024_durable_point_markers.pl).
	 *
	 * Otherwise not a user write (owner_write): no count towards the idle
	 * flush, nothing for readers to catch up with.  Written through
	 * owner_write, each durable point made every column family flush after
	 * almanac.idle_flush_delay and every reader catch up, once a second on a
	 * store nobody wrote.
	 */
	put_markers(req_out);
	rocksdb_write(owner_db, write_options(owner_group_wopts), req_out, &err);
	release_request();
	almanac_rocks_check(err, "write");

	/*
	 * The deletes are written: the entries leave the list now, before the
	 * sync.  Until a sync makes the write durable, a crash loses it whole
	 * (RocksDB recovers a prefix of its writes), the state with the deletes,
	 * and the next start settles the entries from the older P; if this sync
	 * fails, the next one, or the clean exit's synced write, covers it.
	 */
	journal_forget_deleted(ndeleted);
	durable_sync_start(p);
}

/*
 * Called between rounds: take up a sync that ended; record a new durable
 * point once DURABLE_INTERVAL_MS has passed, the WAL has moved and the store
 * was written since the last one (or IDLE_DURABLE_INTERVAL_MS has passed:
 * the slot then frees the WAL others wrote).  Returns the timeout of the
 * owner's next wait, shortened to when the next one is due (or to the next
 * look at a running sync).  Not while owner_skip_wal is armed: its writes
 * are in no log that a sync would make durable.
 */
static long
durable_point_step(long timeout)
{
	TimestampTz now;
	TimestampTz due;

	if (durable_sync.running)
	{
		/* a held sync (fault point) goes on once its point is disarmed */
		if (durable_sync.pause_ms > 0 && !ALMANAC_FAULT_ARMED("owner_pause_durable_sync"))
			pg_atomic_write_u32(&durable_sync.cancel, 1);
		if (!pg_atomic_read_u32(&durable_sync.done))
			return timeout < 0 ? DURABLE_SYNC_POLL_MS : Min(timeout, DURABLE_SYNC_POLL_MS);
		durable_sync_finish();
	}
	if (!wal_log_mode || ALMANAC_FAULT_ARMED("owner_skip_wal"))
		return timeout;
	now = GetCurrentTimestamp();
	due = TimestampTzPlusMilliseconds(owner_durable_at, DURABLE_INTERVAL_MS);
	if (now < due)
		return timeout < 0 ? TimestampDifferenceMilliseconds(now, due) + 1 :
			Min(timeout, TimestampDifferenceMilliseconds(now, due) + 1);
	if (GetFlushRecPtr(NULL) != owner_durable_lsn &&
		(rocksdb_get_latest_sequence_number(owner_db) != owner_durable_seq ||
		 journal_npending > 0 ||
		 now >= TimestampTzPlusMilliseconds(owner_durable_recorded_at,
											IDLE_DURABLE_INTERVAL_MS)))
	{
		PG_TRY();
		{
			record_durable_point(InvalidXLogRecPtr);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			/* the state says where to replay from: try again next time */
			MemoryContextSwitchTo(owner_cxt);
			edata = CopyErrorData();
			FlushErrorState();
			release_request();
			ereport(LOG,
					(errmsg("almanac: could not record a durable point of store \"%s\": %s",
							almanac_shared->stores[owner_store].path, edata->message)));
			owner_durable_at = now;
		}
		PG_END_TRY();
		if (durable_sync.running)
			return timeout < 0 ? DURABLE_SYNC_POLL_MS : Min(timeout, DURABLE_SYNC_POLL_MS);
	}
	else
		owner_durable_at = now;
	return timeout < 0 ? DURABLE_INTERVAL_MS : Min(timeout, DURABLE_INTERVAL_MS);
}

/*
 * Group commit.  An applied batch is written without sync, with the round's
 * other small batches (group_write, below).  In synced mode
 * each round of serve_pending makes every batch it applied durable with one
 * sync of the write-ahead log before it answers any of them (MyRocks syncs
 * its WAL once per binlog group the same way); in log mode the backends'
 * messages make them durable, and the round only answers.  A backend writes
 * its commit record only after its answer, so nothing it commits can be
 * lost.  A batch is visible to readers before it is durable, which is safe:
 * its versions carry a transaction id that has no commit record yet, and
 * one whose sync fails is answered with an error, so it never gets one.
 */
static bool owner_group_dirty = false;	/* applied since the last sync */

/*
 * A request applied, not yet answered: its slot and generation; whether its
 * batch waits in group_out (unwritten), or failed to be written (its slot
 * holds the error).
 */
typedef struct OwnerGroupEntry
{
	int			slot;
	uint64		gen;
	bool		unwritten;
	bool		failed;
} OwnerGroupEntry;

static OwnerGroupEntry *owner_group = NULL;
static int	owner_ngroup = 0;

/*
 * One RocksDB write per round.  The round's small batches are checked one
 * after another as before, each into group_out, and written together by
 * group_write before anything is answered (finish_group), or before a
 * batch that writes a key one of them writes, which must be checked against
 * the store that holds it (key locks keep that from happening; the check is
 * the safety net's), or before a large batch, which is written alone.  A
 * write costs RocksDB a record in its log, a pass of its write thread and
 * the owner a round of bookkeeping whatever its size (bench/commit at 8
 * clients: about two batches a round).  Each batch keeps its own journal
 * entry, keyed by the sequence number it takes in the write, which its
 * message names: replay and the journal's orphans are judged per batch as
 * before, and one write is held whole or not at all.
 */
static rocksdb_writebatch_t *group_out = NULL;
static Size group_bytes = 0;
static uint64 group_base_seq = 0;	/* the store's latest sequence number at the start */
static bool group_all_markers = false;	/* a batch failed: in_batch may lie */
static struct keyset_hash *group_keys = NULL;	/* key_hash of each key */

/* a batch larger than this is written alone (and its keys are not kept) */
#define GROUP_MAX_PAYLOAD	ALMANAC_INLINE_PAYLOAD

/*
 * Whether the slot holds a request for this store not answered yet (see
 * store.h); *gen receives its generation, which the answer names.
 */
static bool
request_pending(AlmanacRequestSlot *slot, uint64 *gen)
{
	if (slot->state != ALMANAC_SLOT_PENDING || slot->store != owner_store)
		return false;
	pg_read_barrier();
	*gen = pg_atomic_read_u64(&slot->request_gen);
	return *gen != pg_atomic_read_u64(&slot->answer_gen);
}

/*
 * Publish the answer written in the slot's fields, as the answer to request
 * gen: the waiter takes it only if that is the request it waits for.
 */
static void
answer_request(AlmanacRequestSlot *slot, uint64 gen)
{
	/* a race made to last (test/t/025): the waiter may give up meanwhile */
	ALMANAC_FAULT_PAUSE("owner_pause_before_answer", 15000);
	pg_write_barrier();
	pg_atomic_write_u64(&slot->answer_gen, gen);
	ConditionVariableBroadcast(&slot->cv);
}

/*
 * Make the round's applied batches durable if needed, then answer their
 * requests.  'sync': in log mode too (before a request that is not a batch:
 * it may reopen the store, or ingest files that RocksDB's recovery keeps
 * whatever happens to the log before them, and wal_replay relies on the
 * store holding a prefix of the writes).
 */
static void group_write(void);

static void
finish_group(bool sync)
{
	AlmanacStoreEntry *e = &almanac_shared->stores[owner_store];
	char	   *err = NULL;

	group_write();
	if (owner_group_dirty && (sync || !wal_log_mode))
	{
		rocksdb_flush_wal(owner_db, 1, &err);
		pg_atomic_fetch_add_u64(&e->commit_syncs, 1);
	}
	if (owner_group_dirty)
		ALMANAC_FAULT_POINT("owner_after_sync");
	owner_group_dirty = false;
	for (int i = 0; i < owner_ngroup; i++)
		if (!owner_group[i].failed)
			pg_atomic_fetch_add_u64(&e->commit_batches, 1);
	for (int i = 0; i < owner_ngroup; i++)
	{
		AlmanacRequestSlot *slot = &almanac_shared->slots[owner_group[i].slot];

		if (owner_group[i].failed)
		{
			/* group_write put its error into the slot */
		}
		else if (err != NULL)
		{
			slot->sqlerrcode = ERRCODE_IO_ERROR;
			snprintf(slot->message, ALMANAC_ERROR_LEN,
					 "could not sync the almanac store's write-ahead log: %s", err);
			slot->detail[0] = '\0';
		}
		else
		{
			slot->log_batch = wal_log_mode;
			slot->incarnation = owner_incarnation;
		}
		answer_request(slot, owner_group[i].gen);
	}
	owner_ngroup = 0;
	almanac_rocks_error(WARNING, ERRCODE_IO_ERROR, err,
						"almanac: could not sync the write-ahead log of \"%s\"", e->path);
}

/*
 * The request's payload: in the slot (ALMANAC_INLINE_PAYLOAD), or in a DSM
 * segment mapped until release_request.
 */
static const char *
request_payload(AlmanacRequestSlot *slot)
{
	if (slot->payload == DSM_HANDLE_INVALID)
	{
		if (slot->payload_len > ALMANAC_INLINE_PAYLOAD)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("a request's payload of %zu bytes has no segment", slot->payload_len)));
		return slot->inline_payload;
	}
	req_seg = dsm_attach(slot->payload);
	if (req_seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not attach to the payload of a request")));
	return dsm_segment_address(req_seg);
}

/*
 * A set of keys by (column family, key) hash, key_hash: simplehash
 * (lib/simplehash.h), inlined into the commit path.  Two sets: the round's
 * keys (group_keys) and a request's keys written twice (keys_written_twice).
 * Both only ever cost or save a step when two keys share a hash: a batch
 * then goes into a write of its own, or a key is looked up in the request's
 * indexed batch first, as if it were written twice; neither changes what is
 * written.
 */
typedef struct KeySetEntry
{
	uint64		hash;			/* key_hash */
	char		status;			/* simplehash's */
	bool		twice;			/* keys_written_twice: seen more than once */
} KeySetEntry;

#define SH_PREFIX		keyset
#define SH_ELEMENT_TYPE	KeySetEntry
#define SH_KEY_TYPE		uint64
#define SH_KEY			hash
/* the key is a hash already: its low bits pick the bucket */
#define SH_HASH_KEY(tb, key)	((uint32) (key))
#define SH_EQUAL(tb, a, b)	((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static uint64
key_hash(uint32 cf_id, const char *key, uint32 klen)
{
	return hash_bytes_extended((const unsigned char *) key, (int) klen, cf_id);
}

/*
 * The keys an APPLY payload writes more than once: a transaction's request
 * may write a key twice, as its blind writes (the mirrors') are sent as
 * written, after its batch, and a subtransaction's write follows an outer
 * level's write of the key that must outlive the subtransaction's rollback
 * (kv/xact.c, replaces_outliving_write).  Each write of such a key must be
 * merged into the version list the one before it made, not into the stored
 * one: it is read through an indexed batch of the request's writes
 * (apply_intents).  Only those keys: that batch's index costs a search per
 * read and per put (a request of 100,000 blocks with one row written twice
 * spent some 40% of the owner's time in it when every key went through it,
 * perf).  NULL when the payload writes no key twice; otherwise a set in the
 * current memory context whose entries with 'twice' are those keys.
 */
static keyset_hash *
keys_written_twice(const char *p, const char *end)
{
	AlmanacApplyIter it;
	uint32		n = 0;
	bool		any = false;
	keyset_hash *t;

	almanac_apply_iter_init(&it, p, end - p);
	while (almanac_apply_iter_next(&it))
		n++;
	if (n < 2)
		return NULL;
	t = keyset_create(CurrentMemoryContext, n, NULL);
	almanac_apply_iter_init(&it, p, end - p);
	while (almanac_apply_iter_next(&it))
	{
		bool		found;
		KeySetEntry *e = keyset_insert(t, key_hash(it.intent.cf_id, it.key, it.klen), &found);

		e->twice = found;
		any |= found;
	}
	if (any)
		return t;
	keyset_destroy(t);
	return NULL;
}

static bool
key_written_twice(keyset_hash *t, uint32 cf_id, const char *key, uint32 klen)
{
	KeySetEntry *e = keyset_lookup(t, key_hash(cf_id, key, klen));

	return e != NULL && e->twice;
}

/*
 * Check each intent of an APPLY payload against the store and merge it into
 * the key's version list, in the payload's order, into 'into' (a batch) and,
 * if given, into 'into_wi' (a batch with an index, which the reads look into
 * before the store), or only into 'into_wi' for the replay ('into' NULL).
 * With 'twice' (keys_written_twice), only those keys go through 'into_wi';
 * the others, like every key without 'into_wi', are read over the store
 * alone.  ERROR if an intent conflicts, unless its writer rolled back
 * (ALMANAC_APPLY_ABORTED: skipped); a replay skips the intents of column
 * families dropped since.
 * 'journal', if not NULL, gets the key and xid of each version written
 * (journal_add).
 */
static void
apply_intents(const char *p, const char *end, rocksdb_writebatch_t *into,
			  rocksdb_writebatch_wi_t *into_wi, keyset_hash *twice,
			  TransactionId horizon, StringInfo journal)
{
	char	   *err = NULL;
	StringInfoData out;
	AlmanacApplyIter it;

	initStringInfo(&out);
	almanac_apply_iter_init(&it, p, end - p);
	while (almanac_apply_iter_next(&it))
	{
		const AlmanacIntent *intent = &it.intent;
		const char *key = it.key;
		uint32		klen = it.klen;
		OwnerCf    *cf;
		char	   *stored;
		size_t		stored_len = 0;
		AlmanacApplyResult r;
		bool		over;
		bool		cached = false;

		cf = find_cf_by_id(intent->cf_id);

		/*
		 * A deletion in a column family dropped meanwhile has nothing left
		 * to delete: DROP FOREIGN TABLE deletes its rows (src/fdw/ddl.c),
		 * and almanac.drop_column_family may follow it in one transaction.
		 * A replayed write into one has no table left to be read from.
		 */
		if (cf == NULL && (intent->kind == ALMANAC_INTENT_DELETE || into == NULL))
			continue;
		if (cf == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("almanac column family with id %u does not exist", intent->cf_id),
					 errhint("It was dropped while the transaction wrote to it.")));

		/* a key written once needs no look into 'over' */
		over = into_wi != NULL &&
			(twice == NULL || key_written_twice(twice, intent->cf_id, key, klen));
		if (over)
			stored = rocksdb_writebatch_wi_get_from_batch_and_db_cf(into_wi, owner_db, owner_ropts,
																	cf->handle, key, klen,
																	&stored_len, &err);
		else if (into != NULL && cf->write_through &&
				 almanac_shared_cache_lookup_written(owner_store, cf->id, key, klen,
													 &stored, &stored_len))
		{
			/*
			 * The value this owner's last write of the key left, kept by
			 * the shared row cache (kv/sharedcache.h): no read of RocksDB
			 * (bench/commit at 8 clients: the Get was 4.5 % of the
			 * instance's samples, perf).  The replay ('into' NULL) reads
			 * through its own batch ('over') and never gets here.
			 */
			cached = true;
		}
		else
			stored = rocksdb_get_cf(owner_db, owner_ropts, cf->handle,
									key, klen, &stored_len, &err);
		almanac_rocks_check(err, "read");
		if (into != NULL)
			pg_atomic_fetch_add_u64(cached ? &almanac_shared->stores[owner_store].checked_in_cache :
									&almanac_shared->stores[owner_store].checked_in_store, 1);

		resetStringInfo(&out);
		PG_TRY();
		{
			r = almanac_versions_apply(&out, stored, stored_len, intent, horizon);
		}
		PG_FINALLY();
		{
			if (stored && cached)
				pfree(stored);
			else if (stored)
				rocksdb_free(stored);
		}
		PG_END_TRY();

		/* its writer rolled back: as if it had never been sent */
		if (r == ALMANAC_APPLY_ABORTED)
			continue;
		if (r == ALMANAC_APPLY_DUPLICATE)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("duplicate key value violates the key of almanac column family \"%s\"", cf->name),
					 errdetail("Key %s already exists.", almanac_key_for_message(key, klen))));
		if (r == ALMANAC_APPLY_CONFLICT)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update of almanac column family \"%s\"", cf->name),
					 errdetail("Key %s was written by another transaction after this transaction read it.",
							   almanac_key_for_message(key, klen))));

		if (over)
			rocksdb_writebatch_wi_put_cf(into_wi, cf->handle, key, klen, out.data, out.len);
		if (into)
		{
			rocksdb_writebatch_put_cf(into, cf->handle, key, klen, out.data, out.len);
			cf->in_batch = true;	/* its marker: see put_markers_except */

			/*
			 * Into the shared row cache once written (owner_apply), unless
			 * its keys are read by range only: the write log's note below
			 * still invalidates any entry a reader put.
			 */
			if (cf->write_through)
				almanac_shared_cache_stage(cf->id, key, klen, out.data, out.len);
		}
		if (journal)
			journal_add(journal, cf->id, intent->xid, key, klen);
		almanac_write_log_note(key, klen);
	}
	pfree(out.data);
}

/* does the payload write a key that a batch in group_out writes? */
static bool
group_overlaps(const char *p, const char *end)
{
	AlmanacApplyIter it;

	if (group_keys == NULL || group_keys->members == 0)
		return false;
	almanac_apply_iter_init(&it, p, end - p);
	while (almanac_apply_iter_next(&it))
		if (keyset_lookup(group_keys, key_hash(it.intent.cf_id, it.key, it.klen)) != NULL)
			return true;
	return false;
}

/* the payload's keys are in group_out now */
static void
group_add_keys(const char *p, const char *end)
{
	AlmanacApplyIter it;

	/* kept for the owner's life, emptied after each write (group_write) */
	if (group_keys == NULL)
		group_keys = keyset_create(TopMemoryContext, 256, NULL);
	almanac_apply_iter_init(&it, p, end - p);
	while (almanac_apply_iter_next(&it))
	{
		bool		found;

		(void) keyset_insert(group_keys, key_hash(it.intent.cf_id, it.key, it.klen), &found);
	}
}

/* the round's write is done with, written or not: the next starts empty */
static void
group_reset(void)
{
	rocksdb_writebatch_destroy(group_out);
	group_out = NULL;
	group_bytes = 0;
	group_all_markers = false;
	/* and so do its keys: group_overlaps would end the next round early */
	if (group_keys != NULL && group_keys->members > 0)
		keyset_reset(group_keys);
}

/*
 * Write the batches waiting in group_out, in one write, and keep what
 * follows from it for each: its journal entry pending, its values in the
 * shared row cache, the sequence numbers for its answer.  A failed write
 * fails each of them (finish_group answers the error); nothing is raised.
 */
static void
group_write(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	uint64		seq = 0;
	bool		any = false;

	if (group_out == NULL)
		return;
	for (int i = 0; i < owner_ngroup; i++)
		any |= owner_group[i].unwritten;
	if (!any)
	{
		/* only refused batches, rolled back: nothing to write */
		group_reset();
		almanac_write_log_forget();
		return;
	}
	PG_TRY();
	{
		/*
		 * Room for the round's journal entries before the write: once
		 * written, a batch is answered as written whatever follows, and an
		 * entry that then found no room (out of memory) was left out of
		 * the list, deleted by no durable point nor by the clean shutdown,
		 * and taken at the next start for an orphan whose committed
		 * versions are removed (test/t/042).
		 */
		if (wal_log_mode)
			journal_pending = almanac_grow_array(journal_pending,
												 journal_npending + owner_ngroup - 1,
												 &journal_maxpending,
												 sizeof(JournalPending), 64);
		/* the journal entries were keyed from group_base_seq on */
		if (rocksdb_get_latest_sequence_number(owner_db) != group_base_seq)
			ereport(FATAL,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("almanac: the store was written between the batches of a round and their write")));
		/* the column families the batches wrote need no marker */
		in_batch_valid = !group_all_markers;
		seq = owner_write(group_out, group_bytes, owner_group_wopts, wal_log_mode);
		if (seq != group_base_seq + (uint64) rocksdb_writebatch_count(group_out))
			ereport(FATAL,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("almanac: the write of a round's batches ended at sequence number " UINT64_FORMAT ", not " UINT64_FORMAT,
							seq, group_base_seq + (uint64) rocksdb_writebatch_count(group_out))));
		/* written: each key's new value, for every reader (kv/sharedcache.h) */
		almanac_shared_cache_put_staged(owner_store);
		pg_atomic_fetch_add_u64(&almanac_shared->stores[owner_store].batch_writes, 1);
		for (int i = 0; i < owner_ngroup; i++)
		{
			AlmanacRequestSlot *slot = &almanac_shared->slots[owner_group[i].slot];

			if (!owner_group[i].unwritten)
				continue;
			owner_group[i].unwritten = false;
			slot->seq = seq;
			if (wal_log_mode)
				journal_note_pending(slot->batch_seq, slot->wal_lsn);
		}
		owner_group_dirty = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		LWLockReleaseAll();
		almanac_shared_cache_forget_staged();
		for (int i = 0; i < owner_ngroup; i++)
		{
			AlmanacRequestSlot *slot = &almanac_shared->slots[owner_group[i].slot];

			if (!owner_group[i].unwritten)
				continue;
			owner_group[i].unwritten = false;
			owner_group[i].failed = true;
			slot->sqlerrcode = edata->sqlerrcode ? edata->sqlerrcode : ERRCODE_INTERNAL_ERROR;
			strlcpy(slot->message, edata->message ? edata->message : "unknown error", ALMANAC_ERROR_LEN);
			strlcpy(slot->detail, edata->detail ? edata->detail : "", ALMANAC_ERROR_LEN);
		}
		FreeErrorData(edata);
	}
	PG_END_TRY();
	group_reset();
}

/*
 * Apply a batch of intents: check each against the store and merge it into
 * the key's version list, into the round's write (group_out), which
 * finish_group writes unsynced, with the round's other batches, before
 * anything is answered.  Nothing of the batch is written if any intent
 * conflicts.  The xids of the versions (see (b) above): in log mode the
 * batch carries its journal entry, kept until the requester's WAL is
 * flushed past wal_lsn; in synced mode the requester's WAL is flushed first
 * (serve_pending flushed it for the round already, so this is a check).
 * Sets slot->batch_seq, the sequence number its message names.
 */
static void
owner_apply(AlmanacRequestSlot *slot)
{
	const char *p;
	const char *end;
	StringInfoData journal;
	keyset_hash *twice;
	bool		alone;
	char	   *err = NULL;

	p = request_payload(slot);
	end = p + slot->payload_len;
	/* races made to last (test/t/032): a batch posted without waiting */
	ALMANAC_FAULT_PAUSE("owner_pause_before_apply", 3000);
	if (ALMANAC_FAULT_ARMED("owner_refuse_apply"))
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("almanac: fault point \"owner_refuse_apply\" refused a batch")));
	if (!wal_log_mode)
		XLogFlush(slot->wal_lsn);

	/* checked against a store that holds every write before it */
	alone = slot->payload_len > GROUP_MAX_PAYLOAD;
	if (group_out != NULL && (alone || group_overlaps(p, end)))
		group_write();
	if (group_out == NULL)
	{
		group_out = rocksdb_writebatch_create();
		group_base_seq = rocksdb_get_latest_sequence_number(owner_db);
		almanac_write_log_forget();	/* keys noted by a batch that failed */
		almanac_shared_cache_forget_staged();	/* and values it staged */
		clear_in_batch();		/* and its column families */
	}
	rocksdb_writebatch_set_save_point(group_out);
	initStringInfo(&journal);
	journal_begin(&journal);
	/* a key written twice: each write merged into the one before it */
	twice = keys_written_twice(p, end);
	if (twice)
		req_read = rocksdb_writebatch_wi_create(0, 1);
	PG_TRY();
	{
		apply_intents(p, end, group_out, req_read, twice,
					  GetOldestNonRemovableTransactionId(NULL),
					  wal_log_mode ? &journal : NULL);
	}
	PG_CATCH();
	{
		/*
		 * Nothing of this batch: its entries out of the write, and no value
		 * staged (the others' too: they are only a cache's).  Keys it noted
		 * stay noted (readers catch up for nothing) and the column families
		 * it marked written get their markers.
		 */
		rocksdb_writebatch_rollback_to_save_point(group_out, &err);
		if (err != NULL)
			ereport(FATAL,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("almanac: could not take a refused batch out of the round's write: %s", err)));
		almanac_shared_cache_forget_staged();
		group_all_markers = true;
		PG_RE_THROW();
	}
	PG_END_TRY();
	rocksdb_writebatch_pop_save_point(group_out, &err);
	almanac_rocks_check(err, "write");
	/* the batch message names the write's number of its journal entry (wal_replay) */
	if (wal_log_mode)
		slot->batch_seq = put_journal_entry(group_out, &journal);
	else
		slot->batch_seq = group_base_seq + (uint64) rocksdb_writebatch_count(group_out);
	group_bytes += slot->payload_len;
	if (!alone)
		group_add_keys(p, end);
}

static uint32
owner_create_cf(const char *name)
{
	OwnerCf    *cf = find_cf_by_name(name);
	char	   *err = NULL;
	rocksdb_column_family_handle_t *h;

	if (cf)
		return cf->id;
	h = rocksdb_create_column_family(owner_db, owner_options, name, &err);
	almanac_rocks_check(err, "create column family");
	owner_cfs = repalloc(owner_cfs, sizeof(OwnerCf) * (owner_ncfs + 1));
	owner_cfs[owner_ncfs].name = MemoryContextStrdup(TopMemoryContext, name);
	owner_cfs[owner_ncfs].handle = h;
	owner_cfs[owner_ncfs].id = rocksdb_column_family_handle_get_id(h);
	owner_cfs[owner_ncfs].in_batch = false;
	owner_cfs[owner_ncfs].write_through = almanac_shared_cache_writes_through(name);
	return owner_cfs[owner_ncfs++].id;
}

static OwnerCf *
existing_cf(const char *name)
{
	OwnerCf    *cf = find_cf_by_name(name);

	if (cf == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("almanac column family \"%s\" does not exist", name),
				 errhint("almanac.column_families() lists the column families of the store.")));
	return cf;
}

static void
owner_drop_cf(const char *name)
{
	OwnerCf    *cf = existing_cf(name);
	char	   *err = NULL;

	if (strcmp(name, "default") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the default column family cannot be dropped")));
	rocksdb_drop_column_family(owner_db, cf->handle, &err);
	almanac_rocks_check(err, "drop column family");
	rocksdb_column_family_handle_destroy(cf->handle);
	*cf = owner_cfs[--owner_ncfs];
}

/*
 * Close the store and open it again, after a drop.  RocksDB 7.8's secondary
 * instances crash catching up (SIGSEGV or an assertion in
 * MemTableList::InstallNewVersion) once the MANIFEST they replayed at open
 * holds a dropped column family that had SST files and whose name was
 * created again.  Opening writes a new MANIFEST that describes only the live
 * column families, so secondaries opened from then on never see the dropped
 * one.  If the store cannot be opened again, the owner exits.
 */
static void
owner_reopen(void)
{
	for (int i = 0; i < owner_ncfs; i++)
	{
		rocksdb_column_family_handle_destroy(owner_cfs[i].handle);
		pfree(owner_cfs[i].name);
	}
	pfree(owner_cfs);
	owner_cfs = NULL;
	owner_ncfs = 0;
	/* the durable point's sync uses the handle */
	durable_sync_join(true);
	rocksdb_close(owner_db);
	owner_db = NULL;
	rocksdb_options_destroy(owner_options);
	rocksdb_options_destroy(owner_default_options);
	rocksdb_writeoptions_destroy(owner_wopts);
	rocksdb_writeoptions_destroy(owner_group_wopts);
	rocksdb_writeoptions_destroy(owner_nowal_wopts);
	rocksdb_readoptions_destroy(owner_ropts);
	owner_options = NULL;
	owner_default_options = NULL;
	owner_wopts = NULL;
	owner_group_wopts = NULL;
	owner_nowal_wopts = NULL;
	owner_ropts = NULL;

	start_step_or_exit(open_store, "open", NULL);
	/* recovery flushed what the write-ahead log held */
	owner_unflushed = 0;
}

/* an integer property, ALMANAC_PROP_UNKNOWN if RocksDB cannot tell */
static uint64
property_int(rocksdb_column_family_handle_t *cf, const char *name)
{
	uint64_t	v = 0;

	if (rocksdb_property_int_cf(owner_db, cf, name, &v) != 0)
		return ALMANAC_PROP_UNKNOWN;
	return v;
}

/* ALMANAC_REQ_PROPERTIES: see AlmanacProperty in store.h */
static void
owner_properties(AlmanacRequestSlot *slot)
{
	OwnerCf    *cf = find_cf_by_name(slot->name);
	uint64	   *p = slot->props;

	if (cf == NULL)
	{
		slot->cf_id = ALMANAC_CF_MISSING;
		return;
	}
	slot->cf_id = cf->id;
	p[ALMANAC_PROP_ESTIMATED_KEYS] = property_int(cf->handle, "rocksdb.estimate-num-keys");
	p[ALMANAC_PROP_LIVE_SST_BYTES] = property_int(cf->handle, "rocksdb.live-sst-files-size");
	p[ALMANAC_PROP_MEMTABLE_BYTES] = property_int(cf->handle, "rocksdb.cur-size-all-mem-tables");
	p[ALMANAC_PROP_PENDING_COMPACTION_BYTES] =
		property_int(cf->handle, "rocksdb.estimate-pending-compaction-bytes");
	p[ALMANAC_PROP_BLOCK_CACHE_BYTES] = property_int(cf->handle, "rocksdb.block-cache-usage");
	p[ALMANAC_PROP_RUNNING_COMPACTIONS] = property_int(cf->handle, "rocksdb.num-running-compactions");
	p[ALMANAC_PROP_RUNNING_FLUSHES] = property_int(cf->handle, "rocksdb.num-running-flushes");
	p[ALMANAC_PROP_MEMTABLE_ENTRIES] =
		property_int(cf->handle, "rocksdb.num-entries-active-mem-table");
	for (int level = 0; level < ALMANAC_PROP_LEVELS; level++)
	{
		char		name[64];
		char	   *v;

		/* a string property: RocksDB has no integer form of it */
		snprintf(name, sizeof(name), "rocksdb.num-files-at-level%d", level);
		v = rocksdb_property_value_cf(owner_db, cf->handle, name);
		p[ALMANAC_PROP_FILES_AT_LEVEL + level] = v ? strtou64(v, NULL, 10) : ALMANAC_PROP_UNKNOWN;
		if (v)
			rocksdb_free(v);
	}
}

/*
 * Create or drop a column family: the store's cf_version is odd while the
 * column families change, and changed after (readers reopen; see kv/reader.c).
 */
static void
owner_change_cfs(AlmanacRequestSlot *slot)
{
	pg_atomic_uint64 *cf_version = &almanac_shared->stores[owner_store].cf_version;

	pg_atomic_fetch_add_u64(cf_version, 1);
	PG_TRY();
	{
		if (slot->type == ALMANAC_REQ_CREATE_CF)
			slot->cf_id = owner_create_cf(slot->name);
		else
		{
			owner_drop_cf(slot->name);
			owner_reopen();
		}
	}
	PG_FINALLY();
	{
		/* what the owner has now, created, dropped or unchanged */
		publish_cfs();
		pg_atomic_fetch_add_u64(cf_version, 1);
	}
	PG_END_TRY();
}

static void
owner_serve(AlmanacRequestSlot *slot)
{
	char	   *err = NULL;
	OwnerCf    *cf;

	switch (slot->type)
	{
		case ALMANAC_REQ_APPLY:
			/* group_write publishes its write's number */
			owner_apply(slot);
			return;
		case ALMANAC_REQ_CREATE_CF:
			cf = find_cf_by_name(slot->name);
			if (cf)
				slot->cf_id = cf->id;
			else
				owner_change_cfs(slot);
			break;
		case ALMANAC_REQ_DROP_CF:
			cf = existing_cf(slot->name);
			if (strcmp(cf->name, "default") == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the default column family cannot be dropped")));
			owner_change_cfs(slot);
			break;
		case ALMANAC_REQ_PROPERTIES:
			owner_properties(slot);
			break;
		case ALMANAC_REQ_FLUSH:
			{
				rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();

				rocksdb_flushoptions_set_wait(fo, 1);
				rocksdb_flush_cf(owner_db, fo, existing_cf(slot->name)->handle, &err);
				rocksdb_flushoptions_destroy(fo);
				almanac_rocks_check(err, "flush");
				almanac_rocks_check(write_markers(owner_wopts), "write");
				/* the other column families keep the log it left */
				owner_check_logs = true;
				break;
			}
		case ALMANAC_REQ_COMPACT:
			/* it flushes first: markers after it, as after a flush */
			rocksdb_compact_range_cf(owner_db, existing_cf(slot->name)->handle, NULL, 0, NULL, 0);
			almanac_rocks_check(write_markers(owner_wopts), "write");
			owner_check_logs = true;
			break;
		case ALMANAC_REQ_FREEZE:
			almanac_freeze_sweep_request();
			break;
		case ALMANAC_REQ_INGEST:
			almanac_owner_ingest(slot, owner_store, request_payload(slot), slot->payload_len);
			break;
	}
	slot->seq = rocksdb_get_latest_sequence_number(owner_db);
	pg_atomic_write_u64(&almanac_shared->stores[owner_store].published_seq, slot->seq);
}

static void
release_request(void)
{
	if (req_out)
		rocksdb_writebatch_destroy(req_out);
	if (req_read)
		rocksdb_writebatch_wi_destroy(req_read);
	req_read = NULL;
	if (req_seg)
		dsm_detach(req_seg);
	req_out = NULL;
	req_seg = NULL;
}

/*
 * One round: serve every pending request, in slot order.  Applied batches
 * are answered together (finish_group); any other request first closes the
 * group so far, synced, since it may reopen the store or depends on what
 * came before being durable.  In synced mode, first one flush of
 * PostgreSQL's WAL covers the xids of every batch pending now (see (b)
 * above); a batch that arrives during the round has owner_apply flush for
 * it.  In log mode the apply journal covers them, with no flush.
 */
static void
serve_pending(void)
{
	XLogRecPtr	wal_lsn = InvalidXLogRecPtr;

	if (owner_group == NULL)
		owner_group = MemoryContextAlloc(TopMemoryContext,
										 sizeof(OwnerGroupEntry) * almanac_shared->nslots);

	for (int i = 0; i < almanac_shared->nslots; i++)
	{
		AlmanacRequestSlot *slot = &almanac_shared->slots[i];
		uint64		gen;

		if (!request_pending(slot, &gen))
			continue;
		if (slot->type == ALMANAC_REQ_APPLY)
			wal_lsn = Max(wal_lsn, slot->wal_lsn);
	}
	if (!wal_log_mode && !XLogRecPtrIsInvalid(wal_lsn))
		XLogFlush(wal_lsn);

	for (int i = 0; i < almanac_shared->nslots; i++)
	{
		AlmanacRequestSlot *slot = &almanac_shared->slots[i];
		uint64		gen;

		if (!request_pending(slot, &gen))
			continue;
		if (slot->type != ALMANAC_REQ_APPLY)
			finish_group(true);

		PG_TRY();
		{
			owner_serve(slot);
			slot->sqlerrcode = 0;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(owner_cxt);
			edata = CopyErrorData();
			FlushErrorState();
			LWLockReleaseAll();
			slot->sqlerrcode = edata->sqlerrcode ? edata->sqlerrcode : ERRCODE_INTERNAL_ERROR;
			strlcpy(slot->message, edata->message ? edata->message : "unknown error", ALMANAC_ERROR_LEN);
			strlcpy(slot->detail, edata->detail ? edata->detail : "", ALMANAC_ERROR_LEN);
		}
		PG_END_TRY();

		release_request();
		MemoryContextSwitchTo(owner_cxt);
		MemoryContextReset(owner_cxt);
		if (slot->type == ALMANAC_REQ_APPLY && slot->sqlerrcode == 0)
		{
			owner_group[owner_ngroup].slot = i;
			owner_group[owner_ngroup].gen = gen;
			owner_group[owner_ngroup].unwritten = true;
			owner_group[owner_ngroup++].failed = false;
			/* a large batch goes alone */
			if (slot->payload_len > GROUP_MAX_PAYLOAD)
				group_write();
		}
		else
			answer_request(slot, gen);
	}
	finish_group(false);
}

/* a batch message of the store, as wal_walk hands it to its visitor */
typedef void (*wal_message_fn) (void *arg, XLogRecPtr lsn, uint64 incarnation, uint64 seq,
								const char *payload, Size payload_len);

/*
 * Read the WAL from 'from' to its end and hand every batch message of this
 * store to 'fn', in WAL order.  ERROR if the WAL from 'from' is gone or
 * unreadable.
 */
static void
wal_walk(XLogRecPtr from, wal_message_fn fn, void *arg)
{
	const char *path = almanac_shared->stores[owner_store].path;
	Size		path_len = strlen(path);
	ReadLocalXLogPageNoWaitPrivate priv = {0};
	XLogReaderState *reader;

	reader = XLogReaderAllocate(wal_segment_size, NULL,
								XL_ROUTINE(.page_read = &read_local_xlog_page_no_wait,
										   .segment_open = &wal_segment_open,
										   .segment_close = &wal_segment_close),
								&priv);
	if (reader == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed while allocating a WAL reading processor.")));
	PG_TRY();
	{
		XLogRecPtr	first = XLogFindNextRecord(reader, from);
		char	   *errormsg = NULL;

		if (XLogRecPtrIsInvalid(first) && !priv.end_of_wal)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("could not find a WAL record at or after %X/%X to replay into almanac store \"%s\"",
							LSN_FORMAT_ARGS(from), path),
					 errdetail("The store owner's replication slot \"%s\" holds the WAL from there.",
							   owner_slot_name)));
		if (!XLogRecPtrIsInvalid(first))
		{
			XLogBeginRead(reader, first);
			while (XLogReadRecord(reader, &errormsg) != NULL)
			{
				xl_logical_message *m;
				uint64		inc;
				uint64		seq;
				const char *mpath;
				Size		mpath_len;
				const char *payload;
				Size		payload_len;

				CHECK_FOR_INTERRUPTS();
				if (XLogRecGetRmid(reader) != RM_LOGICALMSG_ID ||
					(XLogRecGetInfo(reader) & ~XLR_INFO_MASK) != XLOG_LOGICAL_MESSAGE)
					continue;
				m = (xl_logical_message *) XLogRecGetData(reader);
				if (!m->transactional || m->prefix_size != sizeof(ALMANAC_WAL_PREFIX) ||
					memcmp(m->message, ALMANAC_WAL_PREFIX, sizeof(ALMANAC_WAL_PREFIX)) != 0)
					continue;
				if (!almanac_batch_message_parse(m->message + m->prefix_size, m->message_size,
												 &inc, &seq, &mpath, &mpath_len,
												 &payload, &payload_len))
					continue;	/* an xid's message (note_xid) */
				if (mpath_len != path_len || memcmp(mpath, path, path_len) != 0)
					continue;	/* another store's */
				fn(arg, reader->ReadRecPtr, inc, seq, payload, payload_len);
			}
			if (errormsg && !priv.end_of_wal)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("could not read the WAL at %X/%X to replay into almanac store \"%s\": %s",
								LSN_FORMAT_ARGS(reader->EndRecPtr), path, errormsg)));
		}
	}
	PG_FINALLY();
	{
		XLogReaderFree(reader);
	}
	PG_END_TRY();
}

typedef struct ReplayState
{
	uint64		incarnation;	/* the last owner's */
	uint64		recovered_seq;	/* the latest sequence number RocksDB recovered */
	rocksdb_writebatch_wi_t *wb;
	TransactionId horizon;
	uint64		replayed;
	uint64		held;
} ReplayState;

static void
replay_message(void *arg, XLogRecPtr lsn, uint64 inc, uint64 seq,
			   const char *payload, Size payload_len)
{
	ReplayState *st = (ReplayState *) arg;

	if (inc > st->incarnation)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a batch message at %X/%X names owner incarnation " UINT64_FORMAT " of almanac store \"%s\", which is at " UINT64_FORMAT,
						LSN_FORMAT_ARGS(lsn), inc, almanac_shared->stores[owner_store].path,
						st->incarnation)));
	if (inc < st->incarnation || seq <= st->recovered_seq)
	{
		st->held++;
		return;
	}
	apply_intents(payload, payload + payload_len, NULL, st->wb, NULL, st->horizon, NULL);
	st->replayed++;
}

/*
 * Replay the batch messages of this store from 'from' to the end of the
 * WAL into 'wb', those whose batch the store does not hold (see the top of
 * the WAL section): a message of incarnation 'incarnation' (the last
 * owner's) with a sequence number above 'recovered_seq' (the latest one
 * RocksDB recovered).  In WAL order, which is the order the batches were
 * written in for any one key: a writer of a key holds its key lock (or the
 * heap row's lock, for mirror writes) from before its batch is written until
 * after its commit record, and logs its message in between.  A message whose
 * transaction never committed leaves versions nobody sees, as it did the
 * first time.  ERROR if the WAL from 'from' is gone, or a batch conflicts
 * (which the order above rules out).
 */
static void
wal_replay(XLogRecPtr from, uint64 incarnation, uint64 recovered_seq,
		   rocksdb_writebatch_wi_t *wb)
{
	ReplayState st = {0};

	st.incarnation = incarnation;
	st.recovered_seq = recovered_seq;
	st.wb = wb;
	st.horizon = GetOldestNonRemovableTransactionId(NULL);
	wal_walk(from, replay_message, &st);
	ereport(LOG,
			(errmsg("almanac: store \"%s\": replayed " UINT64_FORMAT " batches from the WAL at %X/%X (" UINT64_FORMAT " were held)",
					almanac_shared->stores[owner_store].path, st.replayed,
					LSN_FORMAT_ARGS(from), st.held)));
}

/* a batch message's identity: the write it names */
typedef struct MessageId
{
	uint64		incarnation;
	uint64		seq;
} MessageId;

static void
collect_message(void *arg, XLogRecPtr lsn, uint64 inc, uint64 seq,
				const char *payload, Size payload_len)
{
	MessageId	id = {inc, seq};

	(void) hash_search((HTAB *) arg, &id, HASH_ENTER, NULL);
}

/*
 * Remove an orphan's versions (the entry's records at p, up to end) into
 * 'wb', over the store.  Keys of column families dropped since are gone.
 */
static void
journal_remove_orphan(const char *p, const char *end, rocksdb_writebatch_wi_t *wb)
{
	StringInfoData out;

	initStringInfo(&out);
	while (p < end)
	{
		uint32		cf_id;
		FullTransactionId xid;
		uint32		klen;
		const char *key;
		OwnerCf    *cf;
		char	   *stored;
		size_t		stored_len = 0;
		char	   *err = NULL;
		bool		changed = false;

		if (end - p < 16 || (Size) (end - p - 16) < almanac_get_be32(p + 12))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("an apply journal entry of almanac store \"%s\" is truncated",
							almanac_shared->stores[owner_store].path)));
		cf_id = almanac_get_be32(p);
		xid = FullTransactionIdFromU64(almanac_get_be64(p + 4));
		klen = almanac_get_be32(p + 12);
		key = p + 16;
		p = key + klen;
		cf = find_cf_by_id(cf_id);
		if (cf == NULL)
			continue;
		stored = rocksdb_writebatch_wi_get_from_batch_and_db_cf(wb, owner_db, owner_ropts,
																cf->handle, key, klen,
																&stored_len, &err);
		almanac_rocks_check(err, "read");
		if (stored == NULL)
			continue;
		resetStringInfo(&out);
		PG_TRY();
		{
			changed = almanac_versions_remove_xid(&out, stored, stored_len, xid);
		}
		PG_FINALLY();
		{
			rocksdb_free(stored);
		}
		PG_END_TRY();
		if (!changed)
			continue;
		if (out.len == 0)
			rocksdb_writebatch_wi_delete_cf(wb, cf->handle, key, klen);
		else
			rocksdb_writebatch_wi_put_cf(wb, cf->handle, key, klen, out.data, out.len);
		almanac_write_log_note(key, klen);
	}
	pfree(out.data);
}

/*
 * At the start, before the replay: settle every apply journal entry the
 * store holds (see (b) above), into 'wb', and delete it there.  An entry of
 * an earlier lifetime of shared memory whose batch message is not in the
 * WAL from 'from' is an orphan: its versions are removed.  'from' Invalid:
 * no WAL to look in (a copy of the store, or its slot dropped by hand):
 * every entry of an earlier lifetime counts as an orphan, since nothing
 * tells whether its xids reached durable WAL, and a kept version whose xid
 * is handed out again would appear with whatever commits under it.  That
 * gives up the journaled batches' writes, which are all after the last
 * durable point, as the store used as it is gives up its other writes
 * after it.  The WAL has been flushed to its end: an entry of this lifetime
 * has its xids durable now.
 */
static void
journal_resolve(XLogRecPtr from, rocksdb_writebatch_wi_t *wb)
{
	const char *path = almanac_shared->stores[owner_store].path;
	rocksdb_column_family_handle_t *dcf = find_cf_by_id(DEFAULT_CF_ID)->handle;
	char		upper[JOURNAL_PREFIX_LEN];
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	/* volatile: assigned in PG_TRY, released in PG_FINALLY */
	rocksdb_iterator_t *volatile it = NULL;
	HTAB	   *volatile messages = NULL;
	uint64		entries = 0;
	uint64		orphans = 0;

	/* past every key under the prefix: its last byte, ':', plus one */
	memcpy(upper, journal_prefix, JOURNAL_PREFIX_LEN);
	upper[JOURNAL_PREFIX_LEN - 1]++;
	rocksdb_readoptions_set_iterate_upper_bound(ro, upper, sizeof(upper));
	PG_TRY();
	{
		it = rocksdb_create_iterator_cf(owner_db, ro, dcf);
		for (rocksdb_iter_seek(it, journal_prefix, JOURNAL_PREFIX_LEN);
			 rocksdb_iter_valid(it); rocksdb_iter_next(it))
		{
			size_t		klen;
			size_t		vlen;
			const char *k = rocksdb_iter_key(it, &klen);
			const char *v = rocksdb_iter_value(it, &vlen);
			MessageId	id;
			bool		found;

			if (vlen < JOURNAL_HEADER_LEN || v[0] != JOURNAL_FORMAT)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("an apply journal entry of almanac store \"%s\" has an unknown format",
								path)));
			entries++;
			rocksdb_writebatch_wi_delete_cf(wb, dcf, k, klen);
			if (almanac_get_be64(v + 1) == almanac_shared->lifetime)
				continue;
			if (XLogRecPtrIsInvalid(from))
			{
				journal_remove_orphan(v + JOURNAL_HEADER_LEN, v + vlen, wb);
				orphans++;
				continue;
			}
			if (messages == NULL)
			{
				HASHCTL		ctl;

				ctl.keysize = sizeof(MessageId);
				ctl.entrysize = sizeof(MessageId);
				ctl.hcxt = CurrentMemoryContext;
				messages = hash_create("almanac batch messages", 1024, &ctl,
									   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
				wal_walk(from, collect_message, messages);
			}
			id.incarnation = almanac_get_be64(v + 9);
			id.seq = almanac_get_be64(v + JOURNAL_SEQ_POS);
			(void) hash_search(messages, &id, HASH_FIND, &found);
			if (found)
				continue;
			journal_remove_orphan(v + JOURNAL_HEADER_LEN, v + vlen, wb);
			orphans++;
		}
		{
			char	   *err = NULL;

			rocksdb_iter_get_error(it, &err);
			almanac_rocks_check(err, "read");
		}
	}
	PG_FINALLY();
	{
		if (it)
			rocksdb_iter_destroy(it);
		rocksdb_readoptions_destroy(ro);
		if (messages)
			hash_destroy(messages);
	}
	PG_END_TRY();
	if (entries > 0)
		ereport(LOG,
				(errmsg("almanac: store \"%s\": " UINT64_FORMAT " apply journal entries, " UINT64_FORMAT " of them orphans whose versions were removed",
						path, entries, orphans),
				 XLogRecPtrIsInvalid(from) && orphans > 0 ?
				 errdetail("With no WAL to look in, every entry of an earlier server lifetime counts as an orphan.") : 0));
}

/* the name of the replication slot of the store at path */
static void
slot_name(const char *path, char *name)
{
	snprintf(name, NAMEDATALEN, "almanac_%016" INT64_MODIFIER "x",
			 (uint64) hash_bytes_extended((const unsigned char *) path, strlen(path), 0));
}

/*
 * Drop the replication slot of a store that is gone (its database was
 * dropped and its directory removed), if there is one and nobody uses it.
 * A process holds one slot at a time: the owner lets go of its own for the
 * while.  Failures are logged: the slot then holds WAL until dropped by
 * hand (pg_drop_replication_slot).
 */
void
almanac_owner_drop_slot_of(const char *path)
{
	char		name[NAMEDATALEN];

	slot_name(path, name);
	if (max_replication_slots <= 0 || strcmp(name, owner_slot_name) == 0 ||
		SearchNamedReplicationSlot(name, true) == NULL)
		return;
	if (drop_slot(name))
		ereport(LOG,
				(errmsg("almanac: dropped replication slot \"%s\" of the removed store \"%s\"", name, path)));
	if (wal_log_mode)
		ReplicationSlotAcquire(owner_slot_name, true);
}

#define SLOT_ACQUIRE_WAIT_MS	10000

/*
 * Acquire the existing replication slot 'name' of the store at 'path'.  A
 * previous owner's exit may hold it for a moment: wait up to
 * SLOT_ACQUIRE_WAIT_MS for it to let go, never forever (another process,
 * e.g. pg_receivewal, may hold it for good); then ERROR, which fails the
 * store's start with a message naming the slot and the holder.
 */
static void
acquire_existing_slot(const char *name, const char *path)
{
	TimestampTz give_up = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  SLOT_ACQUIRE_WAIT_MS);

	for (;;)
	{
		ReplicationSlot *s = SearchNamedReplicationSlot(name, true);
		int			holder;

		if (s == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("replication slot \"%s\" of almanac store \"%s\" was dropped while its owner started",
							name, path),
					 errhint("Start the store again: its owner creates a new slot.")));
		SpinLockAcquire(&s->mutex);
		holder = s->active_pid;
		SpinLockRelease(&s->mutex);
		if (holder == 0)
		{
			/* nowait: taken meanwhile by another process is an ERROR */
			ReplicationSlotAcquire(name, true);
			return;
		}
		if (GetCurrentTimestamp() >= give_up)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("replication slot \"%s\" of almanac store \"%s\" is held by process %d",
							name, path, holder),
					 errhint("The store owner holds its slot alone: stop the process using it (pg_replication_slots.active_pid).")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Take the store's replication slot, creating it if missing; false if none
 * can be had.  *existed: it was there (it survives crashes and restarts;
 * base backups and standbys do not copy it).
 */
static bool
acquire_slot(bool *existed)
{
	const char *path = almanac_shared->stores[owner_store].path;
	bool		ok = true;

	slot_name(path, owner_slot_name);
	*existed = false;
	if (max_replication_slots <= 0 || wal_level < WAL_LEVEL_REPLICA)
		return false;
	if (SearchNamedReplicationSlot(owner_slot_name, true) != NULL)
	{
		*existed = true;
		acquire_existing_slot(owner_slot_name, path);
		return true;
	}
	PG_TRY();
	{
		ReplicationSlotCreate(owner_slot_name, false, RS_PERSISTENT, false);
		ReplicationSlotReserveWal();
		ReplicationSlotMarkDirty();
		ReplicationSlotSave();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/*
		 * No free slot, or no room for its file: synced mode.  The slot code
		 * errors holding ReplicationSlotAllocationLock (or ControlLock):
		 * left held, every CHECKPOINT and slot command of the cluster would
		 * wait forever.  A slot made but not saved is dropped here.
		 */
		MemoryContextSwitchTo(owner_cxt);
		LWLockReleaseAll();
		edata = CopyErrorData();
		FlushErrorState();
		drop_own_slot();
		ereport(LOG,
				(errmsg("almanac: could not create replication slot \"%s\" for store \"%s\": %s",
						owner_slot_name, path, edata->message)));
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * The end of the WAL inserted so far, as XLogFlush accepts it.
 * GetXLogInsertRecPtr() says where the next record will start: when the
 * last record ended at a page boundary, that is just past the next page's
 * header, which no record has reached, and XLogFlush of it fails ("xlog
 * flush request ... is not satisfied"; after pg_switch_wal() it is always
 * so).  No record ends just past a page header, so backing up over it
 * gives the end of the last record (xlog.c's XLogBytePosToEndRecPtr, which
 * is static there).
 */
static XLogRecPtr
inserted_wal_end(void)
{
	XLogRecPtr	p = GetXLogInsertRecPtr();

	if (XLogSegmentOffset(p, wal_segment_size) == SizeOfXLogLongPHD)
		return p - SizeOfXLogLongPHD;
	if (p % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		return p - SizeOfXLogShortPHD;
	return p;
}

/*
 * Before the owner serves anything: replay what the store lost from the
 * WAL, then record the new state (the next incarnation, durable up to the
 * end of the WAL) in the same synced write, so that a crash meanwhile
 * replays all of it again, or none.
 *
 * Only with the slot that held the WAL: a store with a durable point but no
 * slot is a copy (a base backup's, a promoted standby's: they do not copy
 * pg_replslot), whose files were copied one by one while the owner wrote,
 * so no prefix of its writes that the replay's test could rely on; it is
 * used as it is, as before (docs/operations.md, backups and standbys).
 */
static void
wal_start(void)
{
	XLogRecPtr	from;
	uint64		incarnation;
	uint64		recovered_seq = rocksdb_get_latest_sequence_number(owner_db);
	XLogRecPtr	end;
	rocksdb_writebatch_wi_t *wb;
	/* volatile: assigned in PG_TRY, released in PG_FINALLY */
	rocksdb_writebatch_t *volatile batch = NULL;
	bool		slot_existed;

	read_wal_state(&from, &incarnation);
	wal_log_mode = acquire_slot(&slot_existed);
	if (!XLogRecPtrIsInvalid(from) && !slot_existed)
	{
		ereport(WARNING,
				(errmsg("almanac: store \"%s\" has no replication slot \"%s\" to replay the WAL from %X/%X",
						almanac_shared->stores[owner_store].path, owner_slot_name,
						LSN_FORMAT_ARGS(from)),
				 errdetail("A copy of the data directory (a base backup, a promoted standby) holds the store as it was copied; its writes committed later are not replayed.")));
		from = InvalidXLogRecPtr;
	}
	if (!XLogRecPtrIsInvalid(from) && slot_existed &&
		XLogRecPtrIsInvalid(MyReplicationSlot->data.restart_lsn))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("almanac store \"%s\" cannot replay the WAL from %X/%X: its replication slot \"%s\" was invalidated",
						almanac_shared->stores[owner_store].path, LSN_FORMAT_ARGS(from),
						owner_slot_name),
				 errdetail("The WAL the store needs was removed (max_slot_wal_keep_size)."),
				 errhint("Restore the store from a backup, or drop the slot with pg_drop_replication_slot('%s') to open the store as it is, without its commits after %X/%X.",
						 owner_slot_name, LSN_FORMAT_ARGS(from))));
	if (!wal_log_mode)
		ereport(LOG,
				(errmsg("almanac: store \"%s\" syncs every commit: its owner has no replication slot",
						almanac_shared->stores[owner_store].path),
				 errhint("Commits skip that sync with wal_level = replica or logical and a free replication slot (max_replication_slots).")));

	/* every message logged so far is in durable WAL: read it all */
	end = inserted_wal_end();
	XLogFlush(end);

	wb = rocksdb_writebatch_wi_create(0, 1);
	PG_TRY();
	{
		size_t		size;
		const char *rep;

		almanac_write_log_forget();
		/* first: the replay must not judge an orphan's xid (see (b)) */
		journal_resolve(from, wb);
		if (!XLogRecPtrIsInvalid(from))
			wal_replay(from, incarnation, recovered_seq, wb);
		rep = rocksdb_writebatch_wi_data(wb, &size);
		batch = rocksdb_writebatch_create_from(rep, size);
		put_wal_state(batch, wal_log_mode ? end : InvalidXLogRecPtr, incarnation + 1);
		(void) owner_write(batch, size, owner_wopts, false);
		/* only now: wal_shutdown would record "nothing to replay" */
		owner_incarnation = incarnation + 1;
	}
	PG_FINALLY();
	{
		rocksdb_writebatch_wi_destroy(wb);
		if (batch)
			rocksdb_writebatch_destroy(batch);
	}
	PG_END_TRY();
	owner_durable_lsn = end;
	owner_durable_seq = rocksdb_get_latest_sequence_number(owner_db);
	owner_durable_at = owner_durable_recorded_at = GetCurrentTimestamp();
	advance_slot(end, true);
}

/*
 * At a clean exit: make every applied batch durable and record that there
 * is nothing to replay, and drop the slot: no WAL is held while no owner
 * runs (the next owner makes a new slot at its start, from its own end of
 * the WAL).  Best effort: if it fails, the
 * state left says where to replay from.
 */
static void
wal_shutdown(void)
{
	rocksdb_writebatch_t *batch;
	char	   *err = NULL;

	if (owner_db == NULL || owner_incarnation == 0 || ALMANAC_FAULT_ARMED("owner_skip_wal"))
		return;
	/*
	 * The postmaster is gone: a crash, whose WAL tail may be lost with the
	 * xids of journaled batches.  Leave the state and the journal as they
	 * are, for the next start to settle (a flush here would hide the crash
	 * from the journal rather than survive it).  Whether or not batches are
	 * counted pending: an error between a batch's write and its count leaves
	 * an entry uncounted.
	 */
	if (!PostmasterIsAlive())
		return;
	durable_sync_join(true);
	/* every xid of a batch applied becomes durable: the journal can go */
	XLogFlush(inserted_wal_end());
	batch = rocksdb_writebatch_create();
	put_wal_state(batch, InvalidXLogRecPtr, owner_incarnation);
	(void) journal_delete_durable(batch, InvalidXLogRecPtr);
	put_markers(batch);
	rocksdb_write(owner_db, owner_wopts, batch, &err);
	rocksdb_writebatch_destroy(batch);
	if (err)
	{
		rocksdb_free(err);
		return;
	}
	/* nothing to replay: the slot would hold WAL until the next start */
	drop_own_slot();
}

void
almanac_owner_main(Datum arg)
{
	long		timeout = 0;	/* the first round's maintenance runs at once */
	char		replay_slot[NAMEDATALEN];

	owner_store = DatumGetInt32(arg);

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	/* no database: the commit log and the procarray are all we need */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("almanac store owner");

	before_shmem_exit(owner_shutdown, 0);

	owner_cxt = AllocSetContextCreate(TopMemoryContext, "almanac owner",
									  ALLOCSET_DEFAULT_SIZES);

	start_step_or_exit(open_store, "open", NULL);
	ALMANAC_FAULT_POINT("owner_start");
	/* the slot's name for the hint: acquire_slot, inside wal_start, sets owner_slot_name */
	slot_name(almanac_shared->stores[owner_store].path, replay_slot);
	start_step_or_exit(wal_start, "replay the WAL into",
					   psprintf("The store does not open until this is fixed: restore it from a backup, or drop its replication slot with pg_drop_replication_slot('%s') to open it as it is, without its foreign writes committed after its last durable point.",
								replay_slot));
	almanac_maintenance_start(owner_store);

	set_store_state(ALMANAC_STORE_READY, NULL);
	ereport(LOG,
			(errmsg("almanac: store owner ready for \"%s\"",
					almanac_shared->stores[owner_store].path)));

	MemoryContextSwitchTo(owner_cxt);
	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			set_write_through();
		}
		serve_pending();
		/* requests first; then a bounded step of whatever maintenance is due */
		timeout = almanac_maintenance_step();
		timeout = flush_when_idle(timeout);
		timeout = durable_point_step(timeout);
	}
}
