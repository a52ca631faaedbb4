/*-------------------------------------------------------------------------
 *
 * sharedcache.h
 *	  The stored values of point lookups, kept in shared memory for every
 *	  backend, and kept valid by the store owner's writes.
 *
 * Each backend reads a store through a secondary instance of its own
 * (reader.h), whose block cache and row cache (rowcache.h) are private: a
 * new connection starts with both empty, and a backend reading keys at
 * random over more rows than its row cache holds misses nearly always, so
 * its lookups cost a RocksDB Get each (index block, filter, data block and
 * its checksum), about what the heap's whole index scan costs.  This cache
 * is shared: a key any backend looked up is a hash probe for all of them.
 *
 * What an entry holds.  The stored value of a key exactly as a Get returned
 * it, every version in it (or "no such key"), as the newest write of the
 * key made it: each reader judges it against its own snapshot and the
 * commit log (codec/visibility.h), as it judges a Get of a caught-up
 * instance.  A value newer than the reader's snapshot is therefore as good
 * as the one its instance holds: the versions written since are judged
 * invisible, as they are after a catch-up (the lazy catch-up of point
 * lookups, rowcache.h, relies on the same).  The one exception is a
 * transaction that sent writes to the owner mid-transaction (kv/xact.h):
 * the newest value then holds versions of its own that a running statement
 * must not see, so such a transaction neither reads nor fills the cache.
 *
 * Keeping it valid.  The owner notes the hash of every key it is about to
 * write in the store's write log (rowcache.h) and, after appending the
 * notes and before the write, invalidates each key here: under the key's
 * partition lock it removes the key's entry and counts an invalidation for
 * the partition (almanac_shared_cache_invalidate).  A change not named key by
 * key (a bulk load's file) starts a new generation of the store's entries
 * instead, and so does every start of an owner and every new use of a
 * store's shared memory entry.
 *
 * Filling it.  A backend puts a value it read from its instance only when
 * that value is the newest: when the write log names no write of the key
 * since the instance last caught up (almanac_row_cache_key_written).  The
 * check races with the owner's next write of the key, which the protocol
 * settles: the backend reads the partition's invalidation count and the
 * store's generation (almanac_shared_cache_prepare), then checks the log,
 * then, under the partition lock, maps its entry only if neither changed
 * (almanac_shared_cache_put).  A write of the key logged before the check is
 * seen by the check; one logged after it is invalidated after it, so either
 * the count changed before the put took the lock (nothing is put) or the
 * invalidation waits for the lock and removes what was put.  Lookups hold
 * the partition lock shared, so an entry never changes under a reader.
 *
 * Memory: almanac.shared_row_cache_size of shared memory, allocated at
 * server start, half in slots of ALMANAC_SHARED_CACHE_SMALL_SLOT bytes and
 * half in slots of ALMANAC_SHARED_CACHE_SLOT bytes, each holding a key and
 * its value (longer ones are not kept).  A value takes a free slot of its
 * size, a small one a free large slot when no small slot is free; only when
 * none is free does a clock sweep take the slot of a key not read since the
 * hand last passed it, as the buffer manager does: keys that fit are never
 * let go.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_SHAREDCACHE_H
#define ALMANAC_SHAREDCACHE_H

/* bytes per slot, its header included: small ones and large ones */
#define ALMANAC_SHARED_CACHE_SMALL_SLOT 512
#define ALMANAC_SHARED_CACHE_SLOT 2048

extern int	almanac_shared_row_cache_size;
extern bool almanac_shared_row_cache;
extern char *almanac_range_read_column_families;

/* GUC and shared memory request: from _PG_init */
extern void almanac_shared_cache_init(void);

/* is there a cache (almanac.shared_row_cache_size > 0), on for this session? */
extern bool almanac_shared_cache_enabled(void);

/*
 * Look a key of column family cf_id of store up.  Returns false when it is
 * not kept.  Otherwise *value is a palloc'd copy of the stored value, or NULL
 * when the key was found missing, and *vlen its length.
 */
extern bool almanac_shared_cache_lookup(int store, uint32 cf_id, const char *key,
										size_t klen, char **value, size_t *vlen);

/*
 * Owner side: the stored value of a key as the owner's own last write of it
 * left it (the write-through below), if the cache still holds that entry:
 * false for a key not kept, or kept from a backend's read (almanac_shared_
 * cache_put).  The owner is the store's only writer and removes a key's
 * entry before each write of it (almanac_shared_cache_invalidate, through
 * the write log), bulk loads and every start of an owner start a new
 * generation, so such an entry is byte for byte what a Get of the owner's
 * store returns: the owner checks a batch's intents against it instead of
 * reading RocksDB.  A backend's entry is not used there: it is exact by the
 * protocol above, but it comes from a secondary instance's read, and a
 * stale one would be a wrong answer to readers, while in the owner it would
 * be written back into the store.  *value is palloc'd (NULL: the key was
 * found missing, which the owner's entries never say).
 */
extern bool almanac_shared_cache_lookup_written(int store, uint32 cf_id, const char *key,
												size_t klen, char **value, size_t *vlen);

/* what almanac_shared_cache_put checks: read before the write log is */
typedef struct AlmanacSharedCacheTicket
{
	int			store;
	uint64		hash;
	uint32		hashcode;		/* dynahash's, of the tag */
	uint32		invalidations;
	uint64		generation;
} AlmanacSharedCacheTicket;

extern void almanac_shared_cache_prepare(AlmanacSharedCacheTicket *t, int store,
										 const char *key, size_t klen);

/*
 * Keep what a Get of the key returned (value NULL: no such key), if no
 * invalidation of its partition and no new generation of its store came
 * after the ticket was taken.  The caller took the ticket, then found that
 * the write log names no write of the key since its instance caught up.
 */
extern void almanac_shared_cache_put(const AlmanacSharedCacheTicket *t, uint32 cf_id,
									 const char *key, size_t klen,
									 const char *value, size_t vlen);

/*
 * Owner side, write-through: stage the value a batch writes for a key (as
 * the batch is built; values that fit a slot, up to 4096 keys a batch), and
 * once the batch is written, put every staged value (the newest of its key:
 * the owner is the only writer, and its next write of the key invalidates
 * it first), or forget them (a batch that failed).  Readers then find the
 * keys just written without catching their instances up.  A key the batch
 * writes more than once gets its last value, or none if that one is not
 * staged (too large, or past the 4096th).
 */
extern void almanac_shared_cache_stage(uint32 cf_id, const char *key, size_t klen,
									   const char *value, size_t vlen);
extern void almanac_shared_cache_put_staged(int store);
extern void almanac_shared_cache_forget_staged(void);

/*
 * Owner side: does the owner write the values it writes into column family
 * cf_name through (almanac_shared_cache_stage)?  Not into one that
 * almanac.range_read_column_families lists (default mirror.events): nothing
 * looks its keys up one by one (the router reads events with bounded
 * iterators), so putting them cost the owner CPU on the ingest path and
 * evicted the entries point lookups use.  Its keys are still noted in the
 * write log and invalidated before each write like every other: an entry a
 * reader put (a point lookup through a foreign table) stays exact.
 */
extern bool almanac_shared_cache_writes_through(const char *cf_name);

/* owner side: the key with this hash (rowcache.h's) is about to be written */
extern void almanac_shared_cache_invalidate(int store, uint64 hash);

/* a new generation: every entry of the store is stale */
extern void almanac_shared_cache_reset_store(int store);

#endif							/* ALMANAC_SHAREDCACHE_H */
