/*-------------------------------------------------------------------------
 *
 * reader.c
 *	  The backend's secondary instance of a store.  See reader.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "common/file_perm.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "fault.h"
#include "kv/reader.h"
#include "kv/rocks.h"
#include "kv/rowcache.h"
#include "kv/xact.h"
#include "store/store.h"

typedef struct ReaderCf
{
	char	   *name;
	uint32		id;
	rocksdb_column_family_handle_t *handle;
} ReaderCf;

struct AlmanacReader
{
	int			store;
	char		base_path[MAXPGPATH];	/* removed at backend exit */
	char		secondary_path[MAXPGPATH];	/* base_path/generation */
	int			generation;
	rocksdb_options_t *options;
	rocksdb_t  *db;
	ReaderCf   *cfs;
	int			ncfs;
	uint64		caught_up_seq;
	uint64		cf_version;		/* the store's, when this instance opened */
	AlmanacRowCache *rows;		/* what Gets of this instance found */
	uint64		epoch;			/* counts opens and catch-ups: see reader.h */
	bool		pinned;			/* see almanac_reader_pin */
};

/* almanac.reader_block_cache_size, in kB */
#define READER_BLOCK_CACHE_DEFAULT (16 * 1024)
int			almanac_reader_block_cache_size = READER_BLOCK_CACHE_DEFAULT;

/*
 * almanac.reader_cache_size, the setting's name until 0.2: -1 when not set.
 * Setting it sets almanac.reader_block_cache_size (the setting assigned last
 * wins); unsetting it gives almanac.reader_block_cache_size back the value it
 * was given under its own name.
 */
static int	reader_cache_size_deprecated = -1;
static int	reader_block_cache_size_own = READER_BLOCK_CACHE_DEFAULT;

/* almanac.reader_mmap */
bool		almanac_reader_mmap = true;

static AlmanacReader *readers[ALMANAC_MAX_STORES];

/* the readers of key locks' latest values: see almanac_lock_reader */
static AlmanacReader *lock_readers[ALMANAC_MAX_STORES];

/*
 * Instances replaced by a reopen (a column family was created or dropped).
 * A scan of this transaction may still hold an iterator or a handle of
 * theirs, so they stay open until the first use of a reader in a later
 * transaction: by then every scan of the transaction has ended, and its
 * iterators were destroyed with the executor's memory (a holdable cursor is
 * run to completion and its executor shut down at commit).
 */
static List *retired = NIL;
static LocalTransactionId retired_lxid = InvalidLocalTransactionId;

static void
reader_close(AlmanacReader *r)
{
	if (r->db == NULL)
		return;
	for (int i = 0; i < r->ncfs; i++)
	{
		rocksdb_column_family_handle_destroy(r->cfs[i].handle);
		pfree(r->cfs[i].name);
	}
	if (r->cfs)
		pfree(r->cfs);
	r->cfs = NULL;
	r->ncfs = 0;
	rocksdb_close(r->db);
	r->db = NULL;
}

static void
close_retired(void)
{
	ListCell   *lc;

	foreach(lc, retired)
	{
		AlmanacReader *old = lfirst(lc);

		reader_close(old);
		rmtree(old->secondary_path, true);
		pfree(old);
	}
	list_free(retired);
	retired = NIL;
}

static void
readers_at_exit(int code, Datum arg)
{
	ListCell   *lc;

	foreach(lc, retired)
		reader_close((AlmanacReader *) lfirst(lc));
	/* before the readers, whose directories hold theirs */
	for (int i = 0; i < ALMANAC_MAX_STORES; i++)
	{
		if (lock_readers[i] == NULL)
			continue;
		reader_close(lock_readers[i]);
		rmtree(lock_readers[i]->base_path, true);
	}
	for (int i = 0; i < ALMANAC_MAX_STORES; i++)
	{
		struct stat st;

		if (readers[i] == NULL)
			continue;
		reader_close(readers[i]);
		/* a deferred reader never opened made none (rmtree would warn) */
		if (stat(readers[i]->base_path, &st) == 0)
			rmtree(readers[i]->base_path, true);
	}
}

/* open a new instance of the store in place of the current one */
static void reader_open(AlmanacReader *r);
static void reader_open_first(AlmanacReader *r);
static bool reopen_if_cfs_changed(AlmanacReader *r);

/*
 * The newest write-ahead log file of a store (see memtable_may_be_stale).
 * error: 0, or the errno with which listing the store's directory failed;
 * number and empty then say nothing, and the memtables cannot be judged.
 */
typedef struct NewestWal
{
	uint64		number;
	bool		empty;
	int			error;
} NewestWal;

/* 'before' when the memtables held nothing: not looked at, nothing to judge */
#define NEWEST_WAL_NOT_LOOKED ((NewestWal) {0, false, 0})

static NewestWal newest_wal(const char *path);
static bool memtables_hold_entries(AlmanacReader *r);
static bool memtable_may_be_stale(AlmanacReader *r, NewestWal before,
								  int *error);

/* this backend's counters, for almanac.reader_stats() */
static struct
{
	uint64		opens;			/* instances opened */
	uint64		catch_ups;		/* catch-ups that read the owner's writes */
	uint64		skipped;		/* point reads that needed none (lazy) */
}			reader_stats;

static void
reader_reopen(AlmanacReader *r)
{
	AlmanacReader *old = MemoryContextAlloc(TopMemoryContext, sizeof(AlmanacReader));
	MemoryContext oldcxt;

	*old = *r;
	old->rows = NULL;			/* the cache stays with r, for the new instance */
	r->pinned = false;			/* the accesses it was pinned for go on with old */
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	retired = lappend(retired, old);
	MemoryContextSwitchTo(oldcxt);
	retired_lxid = MyProc->lxid;
	r->db = NULL;
	r->cfs = NULL;
	r->ncfs = 0;
	r->generation++;
	snprintf(r->secondary_path, MAXPGPATH, "%s/%d", r->base_path, r->generation);
	if (pg_mkdir_p(r->secondary_path, pg_dir_create_mode) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", r->secondary_path)));
	reader_open(r);
}

/*
 * Should a failed open be retried?  While the store's cf_version shows a
 * change (odd while the owner creates or drops a column family, see
 * owner_change_cfs) or has changed since it was read, for up to a second.
 */
static bool
cfs_changing(AlmanacReader *r, uint64 cf_version, int *attempts, char **err)
{
	if ((cf_version & 1) == 0 && almanac_store_cf_version(r->store) == cf_version)
		return false;
	if (++*attempts >= 100)
		return false;
	/* the failure is forgotten: we try again */
	rocksdb_free(*err);
	*err = NULL;
	pg_usleep(10000L);
	CHECK_FOR_INTERRUPTS();
	return true;
}

/*
 * Open the secondary instance with every column family the store has.  The
 * list is read first, and opening fails if one of them was dropped in
 * between (or reading the list fails as the owner replaces the MANIFEST).
 */
static void
reader_open(AlmanacReader *r)
{
	const char *path = almanac_shared->stores[r->store].path;
	char	   *err = NULL;
	List	   *names;
	int			nnames;
	const char **cf_names;
	const rocksdb_options_t **cf_opts;
	rocksdb_column_family_handle_t **handles;
	uint64		cf_version;
	int			attempts = 0;
	int			stale_attempts = 0;
	NewestWal	before;
	int			list_error;

	reader_stats.opens++;
retry:
	err = NULL;
	/* empty, and reading the write log from what the instance will hold */
	almanac_row_cache_opening(r->rows, &almanac_shared->stores[r->store].writelog);
	/* before the list: a change after it makes the next use reopen */
	cf_version = almanac_store_cf_version(r->store);
	names = almanac_rocks_column_families(r->options, path, &err);
	if (err && cfs_changing(r, cf_version, &attempts, &err))
		goto retry;
	almanac_rocks_error(ERROR, ERRCODE_IO_ERROR, err,
						"could not read the column families of almanac store \"%s\"", path);
	nnames = list_length(names);

	r->cfs = MemoryContextAllocZero(TopMemoryContext, sizeof(ReaderCf) * nnames);
	cf_names = palloc(sizeof(char *) * nnames);
	cf_opts = palloc(sizeof(rocksdb_options_t *) * nnames);
	handles = palloc(sizeof(rocksdb_column_family_handle_t *) * nnames);
	for (int i = 0; i < nnames; i++)
	{
		r->cfs[i].name = MemoryContextStrdup(TopMemoryContext, list_nth(names, i));
		cf_names[i] = r->cfs[i].name;
		cf_opts[i] = r->options;
	}

	/* read the sequence number first: catching up later must not skip anything */
	r->caught_up_seq = almanac_store_published_seq(r->store);
	r->db = rocksdb_open_as_secondary_column_families(r->options, path, r->secondary_path,
													  nnames, cf_names, cf_opts, handles, &err);
	if (err)
	{
		for (int i = 0; i < nnames; i++)
			pfree(r->cfs[i].name);
		pfree(r->cfs);
		r->cfs = NULL;
		if (cfs_changing(r, cf_version, &attempts, &err))
			goto retry;
		almanac_rocks_error(ERROR, ERRCODE_IO_ERROR, err,
							"could not open almanac store \"%s\" for reading", path);
	}
	r->ncfs = nnames;
	r->cf_version = cf_version;
	r->epoch++;
	for (int i = 0; i < nnames; i++)
	{
		r->cfs[i].handle = handles[i];
		r->cfs[i].id = rocksdb_column_family_handle_get_id(handles[i]);
	}

	/*
	 * Catch up once, for the reason almanac_reader_catch_up does so twice:
	 * the open reads the MANIFEST, then lists the write-ahead log, and a
	 * flush completing in between hides its writes from both.  On failure
	 * the next use catches up again.  A memtable left stale by it (see
	 * memtable_may_be_stale) is not kept: the instance, unused yet, is opened
	 * anew, a few times at most (a later catch-up judges again).  Nor is one
	 * that cannot be judged because the store's directory could not be
	 * listed: after as many attempts, that is an error, not an instance that
	 * may answer from a stale memtable.
	 */
	before = memtables_hold_entries(r) ? newest_wal(path) : NEWEST_WAL_NOT_LOOKED;
	rocksdb_try_catch_up_with_primary(r->db, &err);
	if (err)
		r->caught_up_seq = PG_UINT64_MAX;
	almanac_rocks_error(ERROR, ERRCODE_IO_ERROR, err,
						"could not catch up with almanac store \"%s\"", path);
	if (memtable_may_be_stale(r, before, &list_error))
	{
		if (++stale_attempts < 3)
		{
			reader_close(r);
			goto retry;
		}
		if (list_error != 0)
		{
			/* closed: the next use opens an instance anew */
			reader_close(r);
			errno = list_error;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read directory \"%s\": %m", path),
					 errdetail("The reader of the almanac store cannot tell whether its memtables are stale without listing the store's write-ahead log files.")));
		}
		/* kept: the next use catches up, and judges it, again */
		r->caught_up_seq = PG_UINT64_MAX;
	}
}

/*
 * The secondary's table options: the store's bloom filter, so that a Get of
 * a missing key reads no data block, and a block cache of
 * almanac.reader_block_cache_size, private to the backend (a RocksDB cache cannot
 * be shared between processes; the OS page cache is, and serves misses).
 */
static void
reader_table_options(rocksdb_options_t *options, const AlmanacServerOptions *tuning)
{
	rocksdb_block_based_table_options_t *table = rocksdb_block_based_options_create();

	if (tuning->bloom_bits_per_key > 0)
		rocksdb_block_based_options_set_filter_policy(table,
													  rocksdb_filterpolicy_create_bloom(tuning->bloom_bits_per_key));
	if (almanac_reader_block_cache_size > 0)
	{
		rocksdb_cache_t *cache = rocksdb_cache_create_lru((size_t) almanac_reader_block_cache_size * 1024);

		rocksdb_block_based_options_set_block_cache(table, cache);
		/* the table options hold their own reference */
		rocksdb_cache_destroy(cache);
	}
	else
		rocksdb_block_based_options_set_no_block_cache(table, 1);
	rocksdb_options_set_block_based_table_factory(options, table);
	rocksdb_block_based_options_destroy(table);
}

static void
assign_block_cache_size(int newval, void *extra)
{
	reader_block_cache_size_own = newval;
}

/*
 * The old name warns where someone will read it: in the postmaster's log
 * when it reads the configuration (at start and at each reload), and to the
 * session that runs ALTER SYSTEM, but not once more in the log of every
 * process that rereads the file after a reload (those run no statement).
 */
static bool
check_reader_cache_size(int *newval, void **extra, GucSource source)
{
	if (*newval >= 0 && (!IsUnderPostmaster || debug_query_string != NULL))
		ereport(WARNING,
				(errcode(ERRCODE_WARNING_DEPRECATED_FEATURE),
				 errmsg("almanac.reader_cache_size is deprecated: it is now named almanac.reader_block_cache_size"),
				 errhint("Set almanac.reader_block_cache_size instead; the old name will be removed in the next release.")));
	return true;
}

static void
assign_reader_cache_size(int newval, void *extra)
{
	almanac_reader_block_cache_size = newval >= 0 ? newval : reader_block_cache_size_own;
}

void
almanac_reader_init(void)
{
	DefineCustomIntVariable("almanac.reader_block_cache_size",
							"Size of the block cache of each backend's reader of an almanac store.",
							"Each backend reads the store through a RocksDB secondary instance of its own, "
							"whose block cache is private; blocks it misses come from the OS page cache. "
							"0 disables it.",
							&almanac_reader_block_cache_size,
							READER_BLOCK_CACHE_DEFAULT, 0, INT_MAX / 1024,
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, assign_block_cache_size, NULL);
	DefineCustomIntVariable("almanac.reader_cache_size",
							"Deprecated name of almanac.reader_block_cache_size.",
							"Setting it sets almanac.reader_block_cache_size, with a warning. "
							"-1 (the default) leaves almanac.reader_block_cache_size alone.",
							&reader_cache_size_deprecated,
							-1, -1, INT_MAX / 1024,
							PGC_SIGHUP, GUC_UNIT_KB | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							check_reader_cache_size, assign_reader_cache_size, NULL);
	DefineCustomBoolVariable("almanac.reader_mmap",
							 "Whether each backend's reader of an almanac store maps its SST files into memory.",
							 "Uncompressed blocks are then read in place from the OS page cache, which all "
							 "backends share, instead of being copied into the backend's block cache. A read "
							 "error on a mapped file ends the backend with SIGBUS (the server restarts). "
							 "Applies to readers opened afterwards: set it for new connections.",
							 &almanac_reader_mmap,
							 true,
							 PGC_BACKEND, 0,
							 NULL, NULL, NULL);
}

/*
 * The reader in *slot, opened if it has no instance; a reader of key locks
 * has its directory inside the backend's reader's (removed with it).
 */
static AlmanacReader *
reader_get(AlmanacReader **slot, int store, bool for_locks, bool open)
{
	AlmanacReader *r = *slot;
	static bool exit_registered = false;

	if (retired != NIL && MyProc->lxid != retired_lxid)
		close_retired();
	if (r != NULL && (r->db != NULL || !open))
		return r;

	if (r == NULL)
	{
		r = MemoryContextAllocZero(TopMemoryContext, sizeof(AlmanacReader));
		r->store = store;
		snprintf(r->base_path, MAXPGPATH, "%s/" ALMANAC_READER_DIR "/%d.%d%s",
				 DataDir, store, MyProcPid, for_locks ? "/lock" : "");
		snprintf(r->secondary_path, MAXPGPATH, "%s/0", r->base_path);
		r->options = rocksdb_options_create();
		reader_table_options(r->options, &almanac_shared->stores[store].tuning);
		/* keep files the owner compacts away readable */
		rocksdb_options_set_max_open_files(r->options, -1);
		/* catch-up otherwise starts a dozen threads per call */
		rocksdb_options_set_max_file_opening_threads(r->options, 1);
		/* read the SST files in place from the page cache (reader.h) */
		rocksdb_options_set_allow_mmap_reads(r->options, almanac_reader_mmap);

		/*
		 * Warnings and errors only in the secondary's info log: its INFO
		 * lines (recovery at each open and catch-up) cost a new connection
		 * about a tenth of its first lookup, and the directory goes with the
		 * backend.  RocksDB's level numbers: 2 is WARN_LEVEL.
		 */
		rocksdb_options_set_info_log_level(r->options, 2);
		r->rows = almanac_row_cache_create();
		*slot = r;
		if (!exit_registered)
		{
			on_proc_exit(readers_at_exit, 0);
			exit_registered = true;
		}
	}
	if (open)
		reader_open_first(r);
	return r;
}

/* open r's instance in its directory, which is made first (r has none) */
static void
reader_open_first(AlmanacReader *r)
{
	Assert(r->db == NULL);
	if (pg_mkdir_p(r->secondary_path, pg_dir_create_mode) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", r->secondary_path)));
	reader_open(r);
}

AlmanacReader *
almanac_reader(int store)
{
	return reader_get(&readers[store], store, false, true);
}

AlmanacReader *
almanac_reader_deferred(int store)
{
	return reader_get(&readers[store], store, false, false);
}

void
almanac_reader_open(AlmanacReader *r)
{
	if (r->db == NULL)
		reader_open_first(r);
	else
		(void) reopen_if_cfs_changed(r);
}

AlmanacReader *
almanac_lock_reader(int store)
{
	return reader_get(&lock_readers[store], store, true, true);
}

rocksdb_t *
almanac_reader_db(AlmanacReader *reader)
{
	return reader->db;
}

AlmanacRowCache *
almanac_reader_rows(AlmanacReader *reader, rocksdb_t *db)
{
	return db == reader->db ? reader->rows : NULL;
}

bool
almanac_reader_holds_newest(AlmanacReader *reader, rocksdb_t *db, const char *key, size_t klen)
{
	/* caught_up_seq is PG_UINT64_MAX when the open's catch-up failed or left it stale */
	if (db != reader->db || reader->rows == NULL || reader->caught_up_seq == PG_UINT64_MAX)
		return false;
	return !almanac_row_cache_key_written_since_open(reader->rows,
													 &almanac_shared->stores[reader->store].writelog,
													 key, klen);
}

uint64
almanac_reader_epoch(AlmanacReader *reader)
{
	return reader->epoch;
}

const char *
almanac_reader_dir(AlmanacReader *reader)
{
	return reader->base_path;
}

/*
 * A column family created or dropped since the instance opened: open a new
 * one instead of catching up.  A secondary cannot see a column family created
 * after it opened, and keeps the handle of a dropped one, through which it
 * would go on reading the dropped data; and the owner reopens the store after
 * a drop (see store/owner.c), which catching up would have to follow.
 */
static bool
reopen_if_cfs_changed(AlmanacReader *r)
{
	/*
	 * No instance: an open failed and its error was caught (a PL/pgSQL
	 * handler) while an access of the statement goes on reading through r,
	 * as a lookup by key does without almanac_reader().  Open one, as
	 * almanac_reader() would, rather than use none.
	 */
	if (r->db == NULL)
	{
		reader_reopen(r);
		return true;
	}
	if (almanac_store_cf_version(r->store) == r->cf_version)
		return false;
	reader_reopen(r);
	return true;
}

/*
 * The newest write-ahead log file of the store: its number (0 if there is
 * none) and whether it is empty.  The owner writes into the WAL RocksDB
 * switched to at once, unless that write stalls.
 *
 * If the directory cannot be opened or read to the end, the result carries
 * the errno (and the reason is logged): a partial listing can miss the
 * newest file, and "none found" would judge a stale memtable fresh.  The
 * fault point reader_wal_dir_unreadable makes the opening fail (EACCES).
 */
static NewestWal
newest_wal(const char *path)
{
	AlmanacWalFiles files;
	NewestWal	newest = {0, false, 0};
	struct stat st;

	almanac_rocks_wal_files(path, ALMANAC_FAULT_ARMED("reader_wal_dir_unreadable"),
							_("The reader of the almanac store treats its memtables as possibly stale."),
							&files);
	newest.number = files.newest;
	newest.error = files.error;
	if (newest.error != 0)
		return newest;
	/* gone meanwhile: a newer one holds something */
	newest.empty = newest.number != 0 && stat(files.newest_path, &st) == 0 && st.st_size == 0;
	return newest;
}

/* Does any memtable of the instance, active or sealed, hold entries? */
static bool
memtables_hold_entries(AlmanacReader *r)
{
	for (int i = 0; i < r->ncfs; i++)
	{
		uint64_t	active = 0;
		uint64_t	sealed = 0;

		if (rocksdb_property_int_cf(r->db, r->cfs[i].handle,
									"rocksdb.num-entries-active-mem-table", &active) != 0 ||
			rocksdb_property_int_cf(r->db, r->cfs[i].handle,
									"rocksdb.num-entries-imm-mem-tables", &sealed) != 0 ||
			active > 0 || sealed > 0)
			return true;
	}
	return false;
}

/*
 * May the instance answer a Get from a stale memtable?  A secondary replays
 * the WAL into its active memtable and seals that memtable only when it
 * replays a batch from a later WAL (the reason for the owner's catch-up
 * markers, see store/owner.c); it drops a sealed one once the MANIFEST says
 * its WAL is flushed.  A catch-up installs the files a flush wrote from an
 * earlier WAL, but a memtable that was not sealed keeps what it had replayed
 * of that WAL, and a Get looks in the memtables first.  The owner puts
 * markers into a new WAL with its first write after the switch, but when
 * RocksDB switches memtables inside a write that then stalls (too many
 * memtables or level-0 files), the new WAL stays empty until the stall ends,
 * and the flush of the old one completes and deletes it meanwhile.  A
 * catch-up that reads the new WAL while it is empty keeps the old memtable,
 * whose values of keys written since it last read the old WAL are older than
 * the flushed file's (seen: the point lookups of one snapshot in
 * test/t/005_compaction_reads.pl saw a transfer half applied, and, compared
 * key by key with a scan of the same snapshot, a whole transaction's older
 * values; test/t/016_reader_stale_memtable.pl makes both windows last).
 *
 * The catch-up reads the newest WAL at some moment we do not see, so the
 * newest WAL is looked at before it ('before') and after it: if it was not
 * empty before and is still the newest after, the catch-up read a batch from
 * it, which sealed every column family's memtable (each batch of the owner
 * carries a marker for each).  Otherwise (it was empty, or RocksDB switched
 * to a newer one meanwhile, which may have been empty when read) the
 * instance may hold a stale memtable.  Looking only after the catch-up is
 * not enough: the stalled write can land in between (seen in 005).  Scans
 * are safe either way (an iterator merges by sequence number), Gets are not.
 *
 * An instance whose memtables held nothing before the catch-up cannot hold
 * a stale one after: what it replays it reads after the MANIFEST, so every
 * flushed file it installed holds only data older than what it replays
 * ('before' is then not looked at: NEWEST_WAL_NOT_LOOKED).
 *
 * Fails closed: if the store's directory could not be listed, before or
 * after, the instance may be stale (*error gives the errno, for a caller
 * that must not keep such an instance; 0 otherwise).
 */
static bool
memtable_may_be_stale(AlmanacReader *r, NewestWal before, int *error)
{
	NewestWal	after;

	*error = 0;
	if ((before.number == 0 && before.error == 0) || !memtables_hold_entries(r))
		return false;
	if (before.error != 0)
	{
		*error = before.error;
		return true;
	}
	if (before.empty)
		return true;
	after = newest_wal(almanac_shared->stores[r->store].path);
	*error = after.error;
	return after.error != 0 || after.number != before.number;
}

void
almanac_reader_catch_up(AlmanacReader *r)
{
	uint64		published;
	char	   *err = NULL;
	NewestWal	before = NEWEST_WAL_NOT_LOOKED;
	int			list_error;

	/* before the published sequence number is read: it may include them */
	almanac_xact_settle(r->store);
	published = almanac_store_published_seq(r->store);
	if (reopen_if_cfs_changed(r))
		return;
	if (published == r->caught_up_seq)
		return;
	/* open accesses read the instance, which must not take in what was sent */
	if (r->pinned)
	{
		reader_reopen(r);
		return;
	}
	almanac_row_cache_catching_up(r->rows, &almanac_shared->stores[r->store].writelog);
	/* see memtable_may_be_stale */
	if (memtables_hold_entries(r))
		before = newest_wal(almanac_shared->stores[r->store].path);

	/*
	 * Twice.  A catch-up reads the MANIFEST, then lists the WAL files and
	 * replays them.  If the owner completes a flush in between and deletes
	 * the flushed WAL file, the data of that file is in neither: the MANIFEST
	 * was read before the flush was recorded, and the file is no longer
	 * listed (for a file that goes between listing and reading, RocksDB
	 * says "already purged" and carries on).  The owner deletes a WAL file
	 * only after the MANIFEST records its flush, so the second catch-up,
	 * which reads the MANIFEST after the first one listed the WAL, finds
	 * every flush whose WAL the first one missed.  It could miss the same way
	 * only if another flush completed inside it too.  Seen in
	 * test/t/005_compaction_reads.pl: a backend that had just committed
	 * read its key's previous value.
	 */
	reader_stats.catch_ups++;
	for (int i = 0; i < 2 && err == NULL; i++)
		rocksdb_try_catch_up_with_primary(r->db, &err);
	/* what the instance holds may have changed, even if the catch-up failed */
	r->epoch++;
	/* what the instance holds changed: drop the cached keys written since */
	almanac_row_cache_caught_up(r->rows, &almanac_shared->stores[r->store].writelog,
								err == NULL);
	almanac_rocks_error(ERROR, ERRCODE_IO_ERROR, err, "could not catch up with almanac store \"%s\"",
						almanac_shared->stores[r->store].path);
	r->caught_up_seq = published;

	/*
	 * A new instance starts with empty memtables and replays only the WAL
	 * files that exist (the row cache is emptied with it).  So does one in
	 * place of an instance that could not be judged (unreadable directory):
	 * if the directory stays unreadable, opening it raises the error.
	 */
	ALMANAC_FAULT_PAUSE("reader_after_catch_up", 6000);
	if (memtable_may_be_stale(r, before, &list_error))
		reader_reopen(r);
}

void
almanac_reader_pin(AlmanacReader *r, bool pinned)
{
	r->pinned = pinned;
}

void
almanac_reader_catch_up_for_key(AlmanacReader *r, const char *key, size_t klen)
{
	almanac_xact_settle(r->store);
	if (reopen_if_cfs_changed(r))
		return;
	if (almanac_store_published_seq(r->store) == r->caught_up_seq)
		return;
	if (!almanac_row_cache_key_written(r->rows, &almanac_shared->stores[r->store].writelog,
									   key, klen))
	{
		reader_stats.skipped++;
		return;
	}
	almanac_reader_catch_up(r);
}

/*
 * almanac.reader_stats(): this backend's instances opened, catch-ups that
 * read the owner's writes, and point reads that the write log let skip one.
 */
PG_FUNCTION_INFO_V1(almanac_reader_stats_sql);
Datum
almanac_reader_stats_sql(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum((int64) reader_stats.opens);
	values[1] = Int64GetDatum((int64) reader_stats.catch_ups);
	values[2] = Int64GetDatum((int64) reader_stats.skipped);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

static ReaderCf *
find_cf(AlmanacReader *r, const char *name)
{
	for (int i = 0; i < r->ncfs; i++)
		if (strcmp(r->cfs[i].name, name) == 0)
			return &r->cfs[i];
	return NULL;
}

rocksdb_column_family_handle_t *
almanac_reader_cf(AlmanacReader *r, const char *name, bool create, uint32 *cf_id)
{
	ReaderCf   *cf;

	/* created or dropped since we opened, by another backend */
	reopen_if_cfs_changed(r);
	cf = find_cf(r, name);

	/*
	 * A writer needs the column family.  It can be dropped again between its
	 * creation and the reopen; try a few times before giving up.
	 */
	for (int attempt = 0; cf == NULL && create; attempt++)
	{
		if (attempt == 3)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("almanac column family \"%s\" was dropped each time it was created", name),
					 errhint("Retry the statement once almanac.drop_column_family() is no longer called on it.")));
		almanac_store_request(r->store, ALMANAC_REQ_CREATE_CF, NULL, 0, name, NULL, NULL);
		reader_reopen(r);
		cf = find_cf(r, name);
	}
	if (cf == NULL)
		return NULL;
	if (cf_id)
		*cf_id = cf->id;
	return cf->handle;
}

rocksdb_column_family_handle_t *
almanac_reader_cf_by_id(AlmanacReader *r, uint32 cf_id)
{
	for (int i = 0; i < r->ncfs; i++)
		if (r->cfs[i].id == cf_id)
			return r->cfs[i].handle;
	return NULL;
}
