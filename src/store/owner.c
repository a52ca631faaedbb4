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
#include <unistd.h>

#include "access/transam.h"
#include "access/xact.h"
#include "common/file_perm.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
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
#include "kv/rocks.h"
#include "kv/rowcache.h"
#include "store/maintenance.h"
#include "store/owner.h"
#include "store/payload.h"
#include "store/store.h"

typedef struct OwnerCf
{
	char	   *name;
	uint32		id;
	rocksdb_column_family_handle_t *handle;
} OwnerCf;

/* the owner's state: one store per owner process */
static int	owner_store = -1;
static rocksdb_t *owner_db = NULL;
static rocksdb_options_t *owner_options = NULL;
static rocksdb_writeoptions_t *owner_wopts = NULL;	/* sync */
static rocksdb_writeoptions_t *owner_group_wopts = NULL;	/* no sync */
static rocksdb_readoptions_t *owner_ropts = NULL;
static OwnerCf *owner_cfs = NULL;
static int	owner_ncfs = 0;
static MemoryContext owner_cxt = NULL;

/* the store was a dropped database's, removed: its entry may be reused */
static bool owner_database_dropped = false;

/* bytes written since the last flush of all column families */
static uint64 owner_unflushed = 0;

/* when the owner last wrote a batch counted in owner_unflushed */
static TimestampTz owner_last_write = 0;

/* per request, released on success and on error */
static rocksdb_writebatch_t *req_out = NULL;
static dsm_segment *req_seg = NULL;

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
	if (owner_db)
	{
		for (int i = 0; i < owner_ncfs; i++)
			rocksdb_column_family_handle_destroy(owner_cfs[i].handle);
		rocksdb_close(owner_db);
		owner_db = NULL;
	}
}

/* at exit: close the store, and let the next backend start a new owner */
static void
owner_shutdown(int code, Datum arg)
{
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
	almanac_store_file_format(opts, e);

	if (t->use_direct_io != ALMANAC_DIRECT_IO_OFF)
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
	return opts;
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
		cf_opts[i] = owner_options;
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

	owner_wopts = rocksdb_writeoptions_create();
	/* durable before PostgreSQL writes its commit record */
	rocksdb_writeoptions_set_sync(owner_wopts, 1);
	/* an applied batch: made durable by its round's sync (serve_pending) */
	owner_group_wopts = rocksdb_writeoptions_create();
	owner_ropts = rocksdb_readoptions_create();

	pg_atomic_write_u64(&e->published_seq, rocksdb_get_latest_sequence_number(owner_db));
}

/*
 * Open the store; if it cannot be, record why (a backend attaching to the
 * store reports it, and starts a new owner that tries again) and exit.
 */
static void
open_store_or_exit(void)
{
	PG_TRY();
	{
		open_store();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		FlushErrorState();
		set_store_state(ALMANAC_STORE_FAILED, edata->message);
		ereport(LOG,
				(errmsg("almanac: could not open store \"%s\": %s",
						almanac_shared->stores[owner_store].path, edata->message)));
		proc_exit(0);
	}
	PG_END_TRY();
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
 */
static void
put_markers(rocksdb_writebatch_t *batch)
{
	for (int i = 0; i < owner_ncfs; i++)
		rocksdb_writebatch_put_cf(batch, owner_cfs[i].handle, ALMANAC_CATCH_UP_MARKER,
								  ALMANAC_CATCH_UP_MARKER_LEN, "", 0);
}

/* after a flush: a batch of markers into the new WAL; NULL or RocksDB's error */
static char *
write_markers(void)
{
	rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
	char	   *err = NULL;

	put_markers(batch);
	rocksdb_write(owner_db, owner_wopts, batch, &err);
	rocksdb_writebatch_destroy(batch);
	return err;
}

/*
 * Flush every column family without waiting, then write the catch-up
 * markers into the new write-ahead log.  All of them: the markers go into
 * every column family with every write, so one left unflushed (RocksDB's
 * "default" among them) keeps the whole log alive.
 */
static void
flush_all(void)
{
	rocksdb_flushoptions_t *fo;
	char	   *err;

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
	/* as if the write after the switch stalled: the new WAL holds nothing */
	ALMANAC_FAULT_POINT("owner_before_markers");

	/* what was written before is durable already: only log a failure */
	err = write_markers();
	almanac_rocks_error(LOG, ERRCODE_IO_ERROR, err, "almanac: writing catch-up markers failed");
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
	flush_all();
}

/*
 * The replay costs time too: a new connection's first read opens a
 * secondary, which parses every unflushed log file (measured: 5.7 ms of
 * backend CPU per MB, so up to a third of a second per connection below
 * max_total_wal_size's 64MB, and nothing flushes it while writes pause).  So
 * once the owner has written nothing for almanac.idle_flush_delay, it
 * flushes what it wrote: a store at rest, or between the blocks of a
 * follower of the chain's head, leaves new connections no log to replay.
 * Returns the timeout of the owner's next wait, shortened to when the flush
 * is due.
 */
static long
flush_when_idle(long timeout)
{
	TimestampTz now;
	TimestampTz due;

	if (owner_unflushed == 0 || almanac_idle_flush_delay <= 0)
		return timeout;
	now = GetCurrentTimestamp();
	due = TimestampTzPlusMilliseconds(owner_last_write, almanac_idle_flush_delay);
	if (now < due)
		return Min(timeout, TimestampDifferenceMilliseconds(now, due) + 1);
	flush_all();
	return timeout;
}

/*
 * Write a batch with 'wopts', count it towards the next flush, and publish
 * the new sequence number so that readers catch up.  'bytes' approximates
 * what it adds to the WAL.
 */
static void
owner_write(rocksdb_writebatch_t *batch, Size bytes, rocksdb_writeoptions_t *wopts)
{
	AlmanacWriteLog *log = &almanac_shared->stores[owner_store].writelog;
	char	   *err = NULL;

	put_markers(batch);
	/* before the write: a reader's catch-up may see it at once */
	almanac_write_log_append(log);
	rocksdb_write(owner_db, wopts, batch, &err);
	almanac_rocks_check(err, "write");
	almanac_write_log_mark_written(log);
	owner_unflushed += bytes;
	owner_last_write = GetCurrentTimestamp();
	bound_unflushed();
	pg_atomic_write_u64(&almanac_shared->stores[owner_store].published_seq,
						rocksdb_get_latest_sequence_number(owner_db));
}

/* write a batch durably (maintenance, bulk loads: everything but apply) */
void
almanac_owner_write(rocksdb_writebatch_t *batch, Size bytes)
{
	owner_write(batch, bytes, owner_wopts);
}

/*
 * Group commit.  An applied batch is written without sync, and each round of
 * serve_pending makes every batch it applied durable with one sync of the
 * write-ahead log before it answers any of them.  A backend writes its
 * commit record only after its answer, so nothing it commits can be lost;
 * and the requests that queue while one round's sync runs share the next
 * round's (MyRocks syncs its WAL once per binlog group the same way).  A
 * batch is visible to readers before it is durable, which is safe: its
 * versions carry a transaction id that has no commit record yet, and one
 * whose sync fails is answered with an error, so it never gets one.
 */
static bool owner_group_dirty = false;	/* applied since the last sync */
static int *owner_group = NULL;	/* slots applied, not yet answered */
static int	owner_ngroup = 0;

static void
answer_request(AlmanacRequestSlot *slot)
{
	pg_write_barrier();
	slot->state = ALMANAC_SLOT_DONE;
	ConditionVariableBroadcast(&slot->cv);
}

/* make the round's applied batches durable, then answer their requests */
static void
finish_group(void)
{
	AlmanacStoreEntry *e = &almanac_shared->stores[owner_store];
	char	   *err = NULL;

	if (owner_group_dirty)
	{
		rocksdb_flush_wal(owner_db, 1, &err);
		pg_atomic_fetch_add_u64(&e->commit_syncs, 1);
		ALMANAC_FAULT_POINT("owner_after_sync");
	}
	owner_group_dirty = false;
	pg_atomic_fetch_add_u64(&e->commit_batches, owner_ngroup);
	for (int i = 0; i < owner_ngroup; i++)
	{
		AlmanacRequestSlot *slot = &almanac_shared->slots[owner_group[i]];

		if (err != NULL)
		{
			slot->sqlerrcode = ERRCODE_IO_ERROR;
			snprintf(slot->message, ALMANAC_ERROR_LEN,
					 "could not sync the almanac store's write-ahead log: %s", err);
			slot->detail[0] = '\0';
		}
		answer_request(slot);
	}
	owner_ngroup = 0;
	almanac_rocks_error(WARNING, ERRCODE_IO_ERROR, err,
						"almanac: could not sync the write-ahead log of \"%s\"", e->path);
}

/* the request's payload, mapped until release_request */
static const char *
request_payload(AlmanacRequestSlot *slot)
{
	req_seg = dsm_attach(slot->payload);
	if (req_seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not attach to the payload of a request")));
	return dsm_segment_address(req_seg);
}

/*
 * Apply a batch of intents: check each against the store, merge it into the
 * key's version list, and write all of them durably in one RocksDB write.
 * Nothing is written if any intent conflicts.
 */
static uint64
owner_apply(AlmanacRequestSlot *slot)
{
	TransactionId horizon;
	char	   *err = NULL;
	StringInfoData out;
	const char *p;
	const char *end;

	p = request_payload(slot);
	end = p + slot->payload_len;

	horizon = GetOldestNonRemovableTransactionId(NULL);
	req_out = rocksdb_writebatch_create();
	almanac_write_log_forget();	/* keys noted by a batch that failed */
	initStringInfo(&out);

	while (p < end)
	{
		AlmanacIntent intent;
		const char *key;
		uint32		klen;
		const char *val;
		uint32		vlen;
		OwnerCf    *cf;
		char	   *stored;
		size_t		stored_len = 0;
		AlmanacApplyResult r;

		almanac_apply_next(&p, end, &key, &klen, &val, &vlen);
		almanac_intent_parse(val, vlen, &intent);
		cf = find_cf_by_id(intent.cf_id);

		/*
		 * A deletion in a column family dropped meanwhile has nothing left
		 * to delete: DROP FOREIGN TABLE deletes its rows (src/fdw/ddl.c),
		 * and almanac.drop_column_family may follow it in one transaction.
		 */
		if (cf == NULL && intent.kind == ALMANAC_INTENT_DELETE)
			continue;
		if (cf == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("almanac column family with id %u does not exist", intent.cf_id),
					 errhint("It was dropped while the transaction wrote to it.")));

		stored = rocksdb_get_cf(owner_db, owner_ropts, cf->handle,
								key, klen, &stored_len, &err);
		almanac_rocks_check(err, "read");

		resetStringInfo(&out);
		PG_TRY();
		{
			r = almanac_versions_apply(&out, stored, stored_len, &intent, horizon);
		}
		PG_FINALLY();
		{
			if (stored)
				rocksdb_free(stored);
		}
		PG_END_TRY();

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

		rocksdb_writebatch_put_cf(req_out, cf->handle, key, klen, out.data, out.len);
		almanac_write_log_note(key, klen);
	}

	owner_write(req_out, slot->payload_len, owner_group_wopts);
	owner_group_dirty = true;
	return rocksdb_get_latest_sequence_number(owner_db);
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
	rocksdb_close(owner_db);
	owner_db = NULL;
	rocksdb_options_destroy(owner_options);
	rocksdb_writeoptions_destroy(owner_wopts);
	rocksdb_writeoptions_destroy(owner_group_wopts);
	rocksdb_readoptions_destroy(owner_ropts);
	owner_options = NULL;
	owner_wopts = NULL;
	owner_group_wopts = NULL;
	owner_ropts = NULL;

	open_store_or_exit();
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
			slot->seq = owner_apply(slot);
			break;
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
				almanac_rocks_check(write_markers(), "write");
				break;
			}
		case ALMANAC_REQ_COMPACT:
			/* it flushes first: markers after it, as after a flush */
			rocksdb_compact_range_cf(owner_db, existing_cf(slot->name)->handle, NULL, 0, NULL, 0);
			almanac_rocks_check(write_markers(), "write");
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
	if (req_seg)
		dsm_detach(req_seg);
	req_out = NULL;
	req_seg = NULL;
}

/*
 * One round: serve every pending request, in slot order.  Applied batches
 * are answered together after one sync (finish_group); any other request
 * first closes the group so far, since it may reopen the store or depends
 * on what came before being durable.
 */
static void
serve_pending(void)
{
	if (owner_group == NULL)
		owner_group = MemoryContextAlloc(TopMemoryContext,
										 sizeof(int) * almanac_shared->nslots);

	for (int i = 0; i < almanac_shared->nslots; i++)
	{
		AlmanacRequestSlot *slot = &almanac_shared->slots[i];

		if (slot->state != ALMANAC_SLOT_PENDING || slot->store != owner_store)
			continue;
		pg_read_barrier();
		if (slot->type != ALMANAC_REQ_APPLY)
			finish_group();

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
			owner_group[owner_ngroup++] = i;
		else
			answer_request(slot);
	}
	finish_group();
}

void
almanac_owner_main(Datum arg)
{
	long		timeout = 0;	/* the first round's maintenance runs at once */

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

	open_store_or_exit();
	ALMANAC_FAULT_POINT("owner_start");
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
		}
		serve_pending();
		/* requests first; then a bounded step of whatever maintenance is due */
		timeout = almanac_maintenance_step();
		timeout = flush_when_idle(timeout);
	}
}
