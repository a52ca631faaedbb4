/*-------------------------------------------------------------------------
 *
 * rowcache.h
 *	  The backend's cache of stored values found by point lookups, and the
 *	  owner's log of written keys that keeps it valid.
 *
 * A backend reads a store through its own secondary instance (reader.h),
 * whose contents change only when the backend catches it up or reopens it.
 * A Get returns the same bytes for a key until a write of that key becomes
 * part of what the instance reads, so they can be kept: the next Get of the
 * key, in any statement or transaction of the backend, is a hash lookup in
 * backend memory instead of RocksDB's memtables, index, block cache and data
 * block search.  A key found missing is kept too.
 *
 * What is kept is the stored value exactly as RocksDB returned it, with
 * every version in it: each reader judges it against its own snapshot and
 * the commit log (codec/visibility.h) as it judges a fresh Get, so the cache never
 * decides what anyone sees.  The transaction's own buffered writes are looked
 * up before the store (almanac_access_get) and never cached.
 *
 * Keeping it valid.  The owner, the store's only writer, notes the key of
 * every put and delete it is about to write and appends a 64-bit hash of
 * each to the store's write log in shared memory before the write, then
 * advances the log's 'written' mark after it.  A change that is not per key
 * (a bulk load's ingested file, a batch of more keys than the log holds) is
 * logged the same way as one reset entry.  A backend reads 'written' before
 * each catch-up, and after it drops from its cache every key the log names
 * from the 'written' it read before the catch-up before last to the log's
 * end (rowcache.c says why that far back), and empties the cache at a reset
 * entry.  Every write the catch-up made visible was logged before the
 * backend read the end of the log, and was not yet written when that
 * earlier catch-up began, so no key whose bytes changed stays cached (a key
 * may be dropped twice, or needlessly: that costs one Get).  A backend that
 * fell more than a log's length behind empties its cache, and so does each
 * open of the instance, a failed catch-up, and the first catch-up after an
 * open.
 *
 * The cache is bounded by almanac.reader_row_cache_size (below 64kB it
 * keeps nothing; 0 turns it off).  When it is full it lets go of the keys
 * not read again for longest, by generations (rowcache.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_ROWCACHE_H
#define ALMANAC_ROWCACHE_H

#include "port/atomics.h"

/* entries of a store's write log: 64kB of shared memory per store */
#define ALMANAC_WRITE_LOG_SIZE 8192

/* an entry that names no key: every cache is emptied */
#define ALMANAC_WRITE_LOG_RESET 0

typedef struct AlmanacWriteLog
{
	pg_atomic_uint64 next;		/* entries appended so far */
	pg_atomic_uint64 written;	/* of those, the ones whose write is done */
	uint64		hashes[ALMANAC_WRITE_LOG_SIZE]; /* entry n at n % size */
} AlmanacWriteLog;

typedef struct AlmanacRowCache AlmanacRowCache;

extern int	almanac_reader_row_cache_size;

extern void almanac_row_cache_init(void);
extern void almanac_write_log_init(AlmanacWriteLog *log);

/* backend side: one cache per reader; the functions accept NULL */
extern AlmanacRowCache *almanac_row_cache_create(void);
extern void almanac_row_cache_reset(AlmanacRowCache *cache);

/* before the instance is opened: empty, and start reading the log from here */
extern void almanac_row_cache_opening(AlmanacRowCache *cache, AlmanacWriteLog *log);

/* around each catch-up of the instance (failed: the cache is emptied) */
extern void almanac_row_cache_catching_up(AlmanacRowCache *cache, AlmanacWriteLog *log);
extern void almanac_row_cache_caught_up(AlmanacRowCache *cache, AlmanacWriteLog *log,
										bool succeeded);

/*
 * Lazy catch-up: may the instance lack a write of key that the owner logged
 * before this call?  False only when the log names no write of key since
 * the window the cache keeps valid began: the instance then answers for
 * key exactly as it would after a catch-up now, and so does the cache.
 * Never false right after an open, nor when the instance fell more than
 * half the log behind.
 */
extern bool almanac_row_cache_key_written(AlmanacRowCache *cache, AlmanacWriteLog *log,
										  const char *key, size_t klen);

/*
 * The same check for the shared row cache (sharedcache.h), which may keep
 * only the newest value of a key: false also right after an open, when
 * the caller knows the reader's catch-up after the open succeeded (no
 * catch-up since), as the open and that catch-up read what every write
 * logged before the open left.
 */
extern bool almanac_row_cache_key_written_since_open(AlmanacRowCache *cache,
													 AlmanacWriteLog *log,
													 const char *key, size_t klen);

/*
 * Look a key of column family cf_id up.  Returns false when it is not kept.
 * Otherwise *value is a palloc'd copy of the stored value, or NULL when the
 * key was found missing, and *vlen its length.
 */
extern bool almanac_row_cache_lookup(AlmanacRowCache *cache, uint32 cf_id,
									 const char *key, size_t klen,
									 char **value, size_t *vlen);

/* keep what a Get of the key returned (value NULL: no such key) */
extern void almanac_row_cache_put(AlmanacRowCache *cache, uint32 cf_id,
									const char *key, size_t klen,
									const char *value, size_t vlen);

/*
 * Owner side.  Forget what a failed batch noted, note each key a batch puts
 * or deletes while building it (or note_all, for a change not named key by
 * key), append the notes before the write and mark them written after it
 * (almanac_owner_write does both).
 */
extern void almanac_write_log_forget(void);
extern void almanac_write_log_note(const char *key, size_t klen);
extern void almanac_write_log_note_all(void);
extern void almanac_write_log_append(AlmanacWriteLog *log, int store);

/* the 64-bit hash of a key that the log carries (and the shared row cache's) */
extern uint64 almanac_key_hash(const char *key, size_t klen);
extern void almanac_write_log_mark_written(AlmanacWriteLog *log);

#endif							/* ALMANAC_ROWCACHE_H */
