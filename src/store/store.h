/*-------------------------------------------------------------------------
 *
 * store.h
 *	  Store ownership: who opens a RocksDB store, and how backends reach it.
 *
 * A RocksDB database is opened read-write by one process only.  For each
 * store path in use, one background worker, the owner, opens it read-write
 * and is its only writer.  Backends read in process, through a secondary
 * instance of their own (kv/reader.h), and send writes to the owner as one
 * batch per writing transaction (or per chunk of a large one).
 *
 * The owner is started on first use of a store by a backend (the path is a
 * foreign server option, known only once a database is read), and is never
 * restarted by the postmaster: after it exits or crashes, the next backend
 * that needs the store starts a new one.
 *
 * Shared memory holds one entry per store (path, state, the sequence number
 * of the owner's last write) and one request slot per PGPROC.  A request is
 * posted in the caller's slot, the owner's latch is set, and the caller
 * sleeps on the slot's condition variable until the owner answers.
 *
 * A slot's requests are numbered (AlmanacRequestSlot.request_gen), and an
 * answer names the request it answers (answer_gen).  The contract:
 *	 - Only the backend that owns the slot (its PGPROC's) writes the request
 *	   fields, request_gen and state, and only while state is FREE, or, for
 *	   state, to set it FREE once it stops waiting.  A post fills the request,
 *	   increments request_gen, then (write barrier) sets state PENDING.
 *	 - The owner takes up a slot that is PENDING for its store and whose
 *	   request_gen it has not answered (answer_gen != request_gen), reading
 *	   request_gen once, after state (read barrier).  It writes the answer
 *	   fields, then (write barrier) answer_gen = the request_gen it read, and
 *	   wakes the slot's condition variable.  It never writes state.
 *	 - The waiter takes an answer only when answer_gen equals the request_gen
 *	   it posted (then, read barrier, the answer fields): an answer of another
 *	   request of the slot, however late, is never taken for its own.
 *	 - The waiter gives a request up (the owner exited first) only while it
 *	   holds AlmanacShared.lock and sees the store not READY, and frees the
 *	   slot under it: an owner becomes READY under that lock, exclusively,
 *	   and only then takes requests up, so no owner works on a request given
 *	   up, and the slot's next request cannot overwrite one being read.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_STORE_H
#define ALMANAC_STORE_H

#include <rocksdb/c.h>

#include "access/xlogdefs.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/dsm.h"
#include "storage/lwlock.h"

#include "fdw/option.h"
#include "kv/rowcache.h"

/* store paths a server can use between restarts (see almanac_store_attach) */
#define ALMANAC_MAX_STORES		32

/*
 * The owner's catch-up marker, a key written with an empty value into every
 * column family (see owner.c).  It has no ':', so no table's key prefix
 * covers it; whatever walks a whole column family skips it.
 */
#define ALMANAC_CATCH_UP_MARKER "almanac catch-up marker"
#define ALMANAC_CATCH_UP_MARKER_LEN (sizeof(ALMANAC_CATCH_UP_MARKER) - 1)
#define almanac_is_catch_up_marker(key, klen) \
	((klen) == ALMANAC_CATCH_UP_MARKER_LEN && \
	 memcmp((key), ALMANAC_CATCH_UP_MARKER, ALMANAC_CATCH_UP_MARKER_LEN) == 0)
#define ALMANAC_ERROR_LEN		512

typedef enum AlmanacStoreState
{
	ALMANAC_STORE_UNUSED = 0,
	ALMANAC_STORE_STARTING,
	ALMANAC_STORE_READY,
	ALMANAC_STORE_FAILED
} AlmanacStoreState;

/*
 * Progress of the owner's freeze sweep (maintenance.c), for
 * almanac.freeze_sweep() to wait on.  Passes are numbered from 1 by each
 * owner; protected by AlmanacShared.lock, changes broadcast on store_cv.
 */
typedef struct AlmanacSweepStatus
{
	uint64		requested;		/* the pass that answers the latest request */
	uint64		completed;		/* the last pass completed */
	uint64		failed;			/* the last pass that failed, 0: none */
	uint64		rewritten;		/* values the last completed pass rewrote or removed */
	int			sqlerrcode;		/* why the last failed pass failed */
	char		error[ALMANAC_ERROR_LEN];
} AlmanacSweepStatus;

/*
 * The column families of a store, as its owner has them: published in the
 * store's entry so that a backend can name a column family's id without
 * opening a secondary instance (kv/access.c defers that open).  The owner
 * writes the list while cf_version is odd (at its start, and around each
 * create and drop), so a reader that read the same even cf_version before
 * and after reading it read a list that was exact in between.
 */
#define ALMANAC_MAX_SHOWN_CFS	64

typedef struct AlmanacStoreCf
{
	char		name[NAMEDATALEN];
	uint32		id;
} AlmanacStoreCf;

typedef struct AlmanacStoreEntry
{
	char		path[MAXPGPATH];
	AlmanacStoreState state;
	pid_t		owner_pid;
	int			owner_procno;	/* to set the owner's latch */
	pg_atomic_uint64 published_seq; /* sequence number of the last write */
	pg_atomic_uint64 cf_version;	/* odd while the owner creates or drops
									 * a column family, incremented before
									 * and after */
	AlmanacServerOptions tuning;	/* string members are NULL: see path, compression */
	char		compression[16];
	char		error[ALMANAC_ERROR_LEN];	/* why it failed to open */
	AlmanacSweepStatus sweep;
	AlmanacWriteLog writelog;	/* the keys the owner writes (kv/rowcache.h) */
	/* group commit (owner.c): batches applied, and the syncs that made them durable */
	pg_atomic_uint64 commit_batches;
	pg_atomic_uint64 commit_syncs;
	/* the RocksDB writes that applied those batches, one per round or fewer */
	pg_atomic_uint64 batch_writes;
	/* the intents the owner checked against the shared row cache, against RocksDB */
	pg_atomic_uint64 checked_in_cache;
	pg_atomic_uint64 checked_in_store;
	/* the owner's column families (see above); -1: not known (none
	 * published yet, more than ALMANAC_MAX_SHOWN_CFS, or a longer name) */
	int			ncfs_shown;
	AlmanacStoreCf cfs_shown[ALMANAC_MAX_SHOWN_CFS];
} AlmanacStoreEntry;

typedef enum AlmanacRequestType
{
	ALMANAC_REQ_APPLY = 1,		/* apply a batch of intents */
	ALMANAC_REQ_CREATE_CF,		/* create a column family (if missing) */
	ALMANAC_REQ_DROP_CF,
	ALMANAC_REQ_FLUSH,
	ALMANAC_REQ_COMPACT,
	ALMANAC_REQ_FREEZE,			/* run a freeze sweep (see sweep status) */
	ALMANAC_REQ_PROPERTIES,		/* RocksDB properties of a column family */
	ALMANAC_REQ_INGEST			/* ingest an SST file of a bulk load (bulk.h) */
} AlmanacRequestType;

/*
 * The answer to ALMANAC_REQ_PROPERTIES, in the slot's props[]: RocksDB's
 * properties (names below without "rocksdb.") of the column family (CF) or
 * of the whole store (DB), as the owner's read-write instance sees them: it
 * holds the memtables and runs the flushes and compactions.  cf_id is
 * ALMANAC_CF_MISSING when the column family does not exist: not an error, as
 * a listing of the column families may race with a drop.
 */
#define ALMANAC_PROP_LEVELS		7	/* RocksDB's default num_levels */

typedef enum AlmanacProperty
{
	ALMANAC_PROP_ESTIMATED_KEYS,	/* CF: estimate-num-keys */
	ALMANAC_PROP_LIVE_SST_BYTES,	/* CF: live-sst-files-size */
	ALMANAC_PROP_MEMTABLE_BYTES,	/* CF: cur-size-all-mem-tables */
	ALMANAC_PROP_PENDING_COMPACTION_BYTES,	/* CF: estimate-pending-compaction-bytes */
	ALMANAC_PROP_BLOCK_CACHE_BYTES, /* DB: block-cache-usage (one cache) */
	ALMANAC_PROP_RUNNING_COMPACTIONS,	/* DB: num-running-compactions */
	ALMANAC_PROP_RUNNING_FLUSHES,	/* DB: num-running-flushes */
	ALMANAC_PROP_MEMTABLE_ENTRIES,	/* CF: num-entries-active-mem-table */
	ALMANAC_PROP_FILES_AT_LEVEL,	/* CF: num-files-at-level<N>, N = 0.. */
	ALMANAC_NPROPS = ALMANAC_PROP_FILES_AT_LEVEL + ALMANAC_PROP_LEVELS
} AlmanacProperty;

#define ALMANAC_PROP_UNKNOWN	PG_UINT64_MAX	/* RocksDB could not tell */
#define ALMANAC_CF_MISSING		PG_UINT32_MAX

/* written by the slot's backend only: answers are told by answer_gen */
typedef enum AlmanacSlotState
{
	ALMANAC_SLOT_FREE = 0,
	ALMANAC_SLOT_PENDING
} AlmanacSlotState;

/*
 * A payload up to this size travels in the request slot itself: a DSM
 * segment per commit cost both processes several system calls and a turn
 * of DynamicSharedMemoryControlLock (the owner serves commits one after
 * another, so its share of that was every commit's).
 */
#define ALMANAC_INLINE_PAYLOAD	4096

typedef struct AlmanacRequestSlot
{
	volatile AlmanacSlotState state;
	pg_atomic_uint64 request_gen;	/* the request posted last (see above) */
	pg_atomic_uint64 answer_gen;	/* the request answered last */
	int			store;
	AlmanacRequestType type;
	dsm_handle	payload;		/* APPLY: the serialized write batch;
								 * DSM_HANDLE_INVALID: in inline_payload */
	Size		payload_len;
	XLogRecPtr	wal_lsn;		/* the end of the requester's WAL records
								 * (their xids among them): APPLY journals
								 * the batch until they are durable, or, in
								 * synced mode, flushes them first */
	char		name[NAMEDATALEN];	/* column family */
	/* answer */
	int			sqlerrcode;		/* 0: success */
	char		message[ALMANAC_ERROR_LEN];
	char		detail[ALMANAC_ERROR_LEN];
	uint64		seq;			/* sequence number after the request */
	bool		log_batch;		/* APPLY: the requester logs the batch in
								 * PostgreSQL's WAL (the owner did not sync) */
	uint64		incarnation;	/* APPLY: the owner's, for that message */
	uint64		batch_seq;		/* APPLY: RocksDB's sequence number of the
								 * write that applied the batch, for it too */
	uint32		cf_id;
	uint64		props[ALMANAC_NPROPS];	/* PROPERTIES: see AlmanacProperty */
	bool		ingested;		/* INGEST: false if refused, see bulk.h */
	ConditionVariable cv;
	/* a payload of at most ALMANAC_INLINE_PAYLOAD bytes (a small commit's) */
	char		inline_payload[ALMANAC_INLINE_PAYLOAD];
} AlmanacRequestSlot;

typedef struct AlmanacShared
{
	LWLock	   *lock;			/* protects stores[] */
	ConditionVariable store_cv; /* broadcast on every store state change */
	pg_atomic_flag reader_cleanup;	/* set while an owner removes stale
									 * reader directories */
	uint64		lifetime;		/* random, drawn anew each time shared memory
								 * is made (server start, crash restart): the
								 * apply journal's entries name it (owner.c) */
	AlmanacStoreEntry stores[ALMANAC_MAX_STORES];
	int			nslots;
	AlmanacRequestSlot slots[FLEXIBLE_ARRAY_MEMBER];
} AlmanacShared;

extern AlmanacShared *almanac_shared;

/* shared memory, called from _PG_init */
extern void almanac_store_shmem_init(void);

/* backend side */
extern int	almanac_store_attach(const AlmanacServerOptions *opts);
extern uint64 almanac_store_published_seq(int store);
/* the entry of a dropped database's removed store is free again */
extern void almanac_store_release_entry(const char *path);
extern uint64 almanac_store_cf_version(int store);

/*
 * The id of store's column family name, from the list its owner published
 * (see AlmanacStoreCf), without opening anything: true and *cf_id if the
 * list is known and names it; false if it does not, or cannot be read now
 * (the owner is changing it, or has not published it): the caller then asks
 * a secondary instance, as it would without the list.
 */
extern bool almanac_store_cf_id(int store, const char *name, uint32 *cf_id);
extern uint32 almanac_store_properties(int store, const char *name,
									   uint64 props[ALMANAC_NPROPS]);
extern bool almanac_store_batch_to_log(uint64 *incarnation, uint64 *batch_seq);
extern void almanac_store_post_apply(int store, const char *payload, Size payload_len);
extern bool almanac_store_apply_posted(void);
extern bool almanac_store_apply_wait(uint64 *incarnation, uint64 *batch_seq);
extern void almanac_store_apply_forget(void);
extern void almanac_store_post_ingest(int store, dsm_segment *seg, Size payload_len);
extern bool almanac_store_ingest_wait(void);
extern void almanac_store_file_format(rocksdb_options_t *opts, const AlmanacStoreEntry *e);
extern void almanac_store_request(int store, AlmanacRequestType type,
								  const char *payload, Size payload_len,
								  const char *name, uint64 *seq, uint32 *cf_id);

/* the owner's entry point, almanac_owner_main, is in store/owner.h */

#endif							/* ALMANAC_STORE_H */
