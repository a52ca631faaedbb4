/*-------------------------------------------------------------------------
 *
 * rowcache.c
 *	  The backend's cache of stored values found by point lookups, and the
 *	  owner's log of written keys.  See rowcache.h for what the cache may
 *	  keep and why the log keeps it valid.
 *
 * The cache is a simplehash table keyed by a 64-bit hash of the key (the
 * hash the write log carries, so a log entry drops its key with one lookup).
 * Each entry holds the key and its column family, which a lookup compares,
 * so two keys with the same hash never answer for each other: the later one
 * replaces the earlier.  Everything lives in one generation context (entries
 * go all at once, so it need not round their sizes up as an AllocSet does),
 * and emptying the cache is one reset.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "rowcache.h"

/* almanac.reader_row_cache_size, in kB */
int			almanac_reader_row_cache_size = 16 * 1024;

typedef struct RowCacheEntry
{
	uint64		hash;			/* of the key */
	char		status;			/* simplehash's */
	uint32		cf_id;
	uint32		klen;
	int64		vlen;			/* -1: the key was found missing */
	char	   *data;			/* the key, then the stored value */
} RowCacheEntry;

#define SH_PREFIX rowcache
#define SH_ELEMENT_TYPE RowCacheEntry
#define SH_KEY_TYPE uint64
#define SH_KEY hash
#define SH_HASH_KEY(tb, key) ((uint32) ((key) ^ ((key) >> 32)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

struct AlmanacRowCache
{
	MemoryContext cxt;			/* the table and every entry's data */
	rowcache_hash *table;
	uint64		log_pos;		/* the write log's entries before it are done */
	uint64		epoch;			/* the log's epoch the contents go with */
	uint64		catching_up_from;	/* 'written' read before this catch-up */
};

/* this backend's counters, for almanac.reader_row_cache_stats() */
static struct
{
	uint64		hits;
	uint64		misses;
	uint64		dropped;		/* entries dropped by a logged write */
	uint64		emptied;		/* caches emptied: catch-up, epoch, full */
}			stats;

void
almanac_row_cache_init(void)
{
	DefineCustomIntVariable("almanac.reader_row_cache_size",
							"Memory each backend may use to keep the values its point lookups found.",
							"A Get of a key the backend looked up before, not written since, is then "
							"answered from backend memory. When the cache is full it is emptied. "
							"0 disables it.",
							&almanac_reader_row_cache_size,
							16 * 1024, 0, INT_MAX / 1024,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
}

void
almanac_write_log_init(AlmanacWriteLog *log)
{
	pg_atomic_init_u64(&log->next, 0);
	pg_atomic_init_u64(&log->written, 0);
	pg_atomic_init_u64(&log->epoch, 0);
}

static uint64
key_hash(const char *key, size_t klen)
{
	return hash_bytes_extended((const unsigned char *) key, (int) klen, 0);
}

/* ---- backend side ---- */

AlmanacRowCache *
almanac_row_cache_create(void)
{
	AlmanacRowCache *cache = MemoryContextAllocZero(TopMemoryContext, sizeof(AlmanacRowCache));

	/*
	 * Entries are freed all at once: no need to round their sizes up.
	 * Blocks of at most 256kB, so that a new one overshoots the bound by
	 * little.
	 */
	cache->cxt = GenerationContextCreate(TopMemoryContext, "almanac row cache",
										 ALLOCSET_DEFAULT_MINSIZE,
										 ALLOCSET_DEFAULT_INITSIZE,
										 256 * 1024);
	cache->table = rowcache_create(cache->cxt, 256, NULL);
	return cache;
}

void
almanac_row_cache_reset(AlmanacRowCache *cache)
{
	if (cache == NULL || cache->table->members == 0)
		return;
	MemoryContextReset(cache->cxt);
	cache->table = rowcache_create(cache->cxt, 256, NULL);
	stats.emptied++;
}

void
almanac_row_cache_opening(AlmanacRowCache *cache, AlmanacWriteLog *log)
{
	if (cache == NULL)
		return;
	almanac_row_cache_reset(cache);
	/* what is written by now is in what the instance is about to read */
	cache->epoch = pg_atomic_read_u64(&log->epoch);
	cache->log_pos = pg_atomic_read_u64(&log->written);
	pg_read_barrier();
}

void
almanac_row_cache_catching_up(AlmanacRowCache *cache, AlmanacWriteLog *log)
{
	if (cache == NULL)
		return;
	cache->catching_up_from = pg_atomic_read_u64(&log->written);
	pg_read_barrier();
}

void
almanac_row_cache_caught_up(AlmanacRowCache *cache, AlmanacWriteLog *log, bool succeeded)
{
	uint64		end;
	uint64		epoch;
	bool		lost;

	if (cache == NULL)
		return;
	/* after the catch-up: every write it made visible is logged by now */
	pg_read_barrier();
	epoch = pg_atomic_read_u64(&log->epoch);
	end = pg_atomic_read_u64(&log->next);
	pg_read_barrier();

	lost = !succeeded || epoch != cache->epoch ||
		end - cache->log_pos >= ALMANAC_WRITE_LOG_SIZE;
	if (!lost && cache->table->members > 0)
	{
		for (uint64 n = cache->log_pos; n < end; n++)
		{
			if (rowcache_delete(cache->table, log->hashes[n % ALMANAC_WRITE_LOG_SIZE]))
				stats.dropped++;
		}
		/* the entries read were not overwritten meanwhile by an append */
		pg_read_barrier();
		lost = pg_atomic_read_u64(&log->next) - cache->log_pos >= ALMANAC_WRITE_LOG_SIZE;
	}
	if (lost)
		almanac_row_cache_reset(cache);
	/*
	 * Entries from 'written' as read before the catch-up on may name writes
	 * it did not see yet: read them again next time.  The deleted entries'
	 * data stays in the context until the next reset; the size bound counts
	 * it.
	 */
	cache->epoch = epoch;
	cache->log_pos = cache->catching_up_from;
}

bool
almanac_row_cache_lookup(AlmanacRowCache *cache, uint32 cf_id,
						 const char *key, size_t klen,
						 char **value, size_t *vlen)
{
	RowCacheEntry *e;

	if (cache == NULL || almanac_reader_row_cache_size <= 0)
		return false;
	e = rowcache_lookup(cache->table, key_hash(key, klen));
	if (e == NULL || e->cf_id != cf_id || e->klen != klen ||
		memcmp(e->data, key, klen) != 0)
	{
		stats.misses++;
		return false;
	}
	stats.hits++;
	if (e->vlen < 0)
	{
		*value = NULL;
		*vlen = 0;
		return true;
	}
	*vlen = (size_t) e->vlen;
	*value = palloc(Max(*vlen, 1));
	memcpy(*value, e->data + klen, *vlen);
	return true;
}

void
almanac_row_cache_store(AlmanacRowCache *cache, uint32 cf_id,
						const char *key, size_t klen,
						const char *value, size_t vlen)
{
	RowCacheEntry *e;
	bool		found;
	Size		need = klen + (value ? vlen : 0);
	Size		grow = 0;

	if (cache == NULL || almanac_reader_row_cache_size <= 0)
		return;
	/* an insertion past the threshold doubles the table */
	if (cache->table->members + 1 > cache->table->grow_threshold)
		grow = sizeof(RowCacheEntry) * cache->table->size * 2;
	/* full: start again rather than track which entries are used least */
	if (MemoryContextMemAllocated(cache->cxt, false) + need + grow >
		(Size) almanac_reader_row_cache_size * 1024)
		almanac_row_cache_reset(cache);
	e = rowcache_insert(cache->table, key_hash(key, klen), &found);
	if (found)
		pfree(e->data);
	/* allocate before filling in: an error leaves no half-made entry */
	e->data = NULL;
	e->klen = 0;
	e->cf_id = cf_id;
	e->vlen = -1;
	e->data = MemoryContextAlloc(cache->cxt, Max(need, 1));
	memcpy(e->data, key, klen);
	if (value)
		memcpy(e->data + klen, value, vlen);
	e->klen = (uint32) klen;
	e->vlen = value ? (int64) vlen : -1;
}

/*
 * almanac.reader_row_cache_stats(): this backend's hits and misses, the
 * entries dropped because the owner logged a write of their key, and how
 * many times a cache was emptied.
 */
PG_FUNCTION_INFO_V1(almanac_reader_row_cache_stats);
Datum
almanac_reader_row_cache_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum((int64) stats.hits);
	values[1] = Int64GetDatum((int64) stats.misses);
	values[2] = Int64GetDatum((int64) stats.dropped);
	values[3] = Int64GetDatum((int64) stats.emptied);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---- owner side ---- */

/* hashes of the keys of the batch being built, in the owner's memory */
static uint64 *noted;
static int	nnoted;
static bool noted_overflow;

void
almanac_write_log_note(const char *key, size_t klen)
{
	if (noted == NULL)
		noted = MemoryContextAlloc(TopMemoryContext,
								   sizeof(uint64) * ALMANAC_WRITE_LOG_SIZE);
	if (nnoted == ALMANAC_WRITE_LOG_SIZE)
		noted_overflow = true;
	else
		noted[nnoted++] = key_hash(key, klen);
}

void
almanac_write_log_append(AlmanacWriteLog *log)
{
	uint64		next = pg_atomic_read_u64(&log->next);

	if (noted_overflow)
		almanac_write_log_bump_epoch(log);
	else
	{
		/*
		 * An entry is filled in before 'next' covers it; a reader that finds
		 * 'next' moved a log's length past where it started knows an entry
		 * it read may have been overwritten.
		 */
		for (int i = 0; i < nnoted; i++)
		{
			log->hashes[(next + i) % ALMANAC_WRITE_LOG_SIZE] = noted[i];
			pg_write_barrier();
			pg_atomic_write_u64(&log->next, next + i + 1);
		}
	}
	nnoted = 0;
	noted_overflow = false;
	/* the entries are visible before the write they announce */
	pg_memory_barrier();
}

void
almanac_write_log_mark_written(AlmanacWriteLog *log)
{
	pg_write_barrier();
	pg_atomic_write_u64(&log->written, pg_atomic_read_u64(&log->next));
}

void
almanac_write_log_bump_epoch(AlmanacWriteLog *log)
{
	pg_atomic_fetch_add_u64(&log->epoch, 1);
}
