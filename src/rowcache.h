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
 * the commit log (visibility.h) as it judges a fresh Get, so the cache never
 * decides what anyone sees.  The transaction's own buffered writes are looked
 * up before the store (almanac_get_value) and never cached.
 *
 * Keeping it valid.  The owner, the store's only writer, notes the key of
 * every put and delete it is about to write and appends a 64-bit hash of
 * each to the store's write log in shared memory before the write, then
 * advances the log's 'written' mark after it.  A backend reads 'written'
 * before it catches up, catches up, and then drops from its cache every key
 * the log names from where it stopped last time to the log's end; next time
 * it starts at the 'written' it read.  Every write the catch-up made visible
 * was logged before the backend read the end of the log, and every entry
 * before the 'written' it read was already part of what the instance held,
 * so no key whose bytes changed stays cached (a key may be dropped twice, or
 * needlessly: that costs one Get).  Changes that are not per key (a bulk
 * load's ingested file, a transaction writing more keys than the log holds)
 * bump the log's epoch instead, and a backend that sees a new epoch empties
 * its cache; so does one that fell more than a log's length behind.
 * Opening or reopening the instance empties it too.
 *
 * The cache is bounded by almanac.reader_row_cache_size; when an insertion
 * would pass the bound it is emptied and filling starts again (0 turns it
 * off).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_ROWCACHE_H
#define ALMANAC_ROWCACHE_H

#include "port/atomics.h"

/* entries of a store's write log: 64kB of shared memory per store */
#define ALMANAC_WRITE_LOG_SIZE 8192

typedef struct AlmanacWriteLog
{
	pg_atomic_uint64 next;		/* entries appended so far */
	pg_atomic_uint64 written;	/* of those, the ones whose write is done */
	pg_atomic_uint64 epoch;		/* bumped before a change no entry names */
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

/* around a catch-up of the instance (failed: the cache is emptied) */
extern void almanac_row_cache_catching_up(AlmanacRowCache *cache, AlmanacWriteLog *log);
extern void almanac_row_cache_caught_up(AlmanacRowCache *cache, AlmanacWriteLog *log,
										bool succeeded);

/*
 * Look a key of column family cf_id up.  Returns false when it is not kept.
 * Otherwise *value is a palloc'd copy of the stored value, or NULL when the
 * key was found missing, and *vlen its length.
 */
extern bool almanac_row_cache_lookup(AlmanacRowCache *cache, uint32 cf_id,
									 const char *key, size_t klen,
									 char **value, size_t *vlen);

/* keep what a Get of the key returned (value NULL: no such key) */
extern void almanac_row_cache_store(AlmanacRowCache *cache, uint32 cf_id,
									const char *key, size_t klen,
									const char *value, size_t vlen);

/*
 * Owner side.  Note each key a batch puts or deletes while building it;
 * almanac_owner_write logs them before the write and marks them written
 * after.  A change the log cannot name key by key bumps the epoch first.
 */
extern void almanac_write_log_note(const char *key, size_t klen);
extern void almanac_write_log_append(AlmanacWriteLog *log);
extern void almanac_write_log_mark_written(AlmanacWriteLog *log);
extern void almanac_write_log_bump_epoch(AlmanacWriteLog *log);

#endif							/* ALMANAC_ROWCACHE_H */
