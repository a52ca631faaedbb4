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
 * replaces the earlier.
 *
 * Eviction by generations: entries' data lives in one of two generation
 * contexts (entries of a generation go all at once, so the context need not
 * round their sizes up as an AllocSet does).  New entries go into the
 * current one; when it holds half of what the setting leaves beside the
 * table, the previous generation's entries are deleted, its context is
 * reset, and it becomes the current one.  A hit on an entry of the previous
 * generation copies it into the current one, so keys read again survive,
 * while keys read once leave within two generations.
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

#include "kv/rowcache.h"
#include "kv/sharedcache.h"

/* almanac.reader_row_cache_size, in kB */
int			almanac_reader_row_cache_size = 16 * 1024;

typedef struct RowCacheEntry
{
	uint64		hash;			/* of the key */
	char	   *data;			/* the key, then the stored value */
	int64		vlen;			/* -1: the key was found missing */
	uint32		cf_id;
	uint32		klen;
	uint32		gen;			/* the generation that holds data */
	char		status;			/* simplehash's */
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

/* the set of hashes the log names since the instance's window began */
typedef struct WrittenEntry
{
	uint64		hash;
	char		status;			/* simplehash's */
} WrittenEntry;

#define SH_PREFIX writtenset
#define SH_ELEMENT_TYPE WrittenEntry
#define SH_KEY_TYPE uint64
#define SH_KEY hash
#define SH_HASH_KEY(tb, key) ((uint32) ((key) ^ ((key) >> 32)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * A lazy check lets the instance fall this far behind the log before it
 * asks for a catch-up whatever the key: well within the log, so that the
 * window is always read before the owner can overwrite it, and small, since
 * the statement that crosses it replays all those writes at once.  At half
 * the log (4096 keys) every writing backend of a busy store paid its whole
 * debt in one statement, all of them at the same moment (they cross the
 * bound at the same position of the log): under bench/stall/run.sh (8
 * clients of one-row upserts) every client's commit stood still for 200 to
 * 500 ms every 3 to 4 seconds, each backend replaying 12,000 sequence
 * numbers of the owner's writes; at 512 the longest catch-up was 85 to 93
 * ms and the longest commit 112 to 219 ms instead of 446 to 737 ms.  The
 * catch-ups a lazy check saves, one per statement, are saved all the same.
 */
#define WRITTEN_MAX (ALMANAC_WRITE_LOG_SIZE / 16)

/* the blocks of the generation contexts */
#define ROW_BLOCK_SIZE (8 * 1024)

/*
 * A smaller setting keeps nothing: the first table (512 slots, 20kB) may
 * take half of it, and each generation needs room for a block beside the
 * one it keeps when reset.
 */
#define ROW_CACHE_MIN_KB 64

struct AlmanacRowCache
{
	MemoryContext cxt;			/* parent of the three below */
	MemoryContext table_cxt;
	MemoryContext data_cxt[2];	/* entries' data, by generation & 1 */
	uint32		gen;			/* the current generation */
	rowcache_hash *table;		/* NULL after a reset: empty */
	/* the write log: see almanac_row_cache_caught_up */
	uint64		log_pos;		/* 'written' before the catch-up before last */
	uint64		prev_written;	/* 'written' before the last catch-up */
	uint64		catching_up_from;	/* 'written' before this one */
	bool		reset_next;		/* empty at the next catch-up */
	bool		just_opened;	/* no catch-up since the open */
	/* lazy catch-up: see almanac_row_cache_key_written */
	MemoryContext written_cxt;
	writtenset_hash *written;	/* the hashes of entries [log_pos, written_to) */
	uint64		written_to;
	bool		written_all;	/* a reset entry among them, or overwritten */
};

/* this backend's counters, for almanac.reader_row_cache_stats() */
static struct
{
	uint64		hits;
	uint64		misses;
	uint64		dropped;		/* entries dropped by a logged write */
	uint64		evicted;		/* entries of a generation let go */
	uint64		emptied;		/* caches emptied: reset entry, overrun, open */
}			stats;

void
almanac_row_cache_init(void)
{
	DefineCustomIntVariable("almanac.reader_row_cache_size",
							"Memory each backend may use to keep the values its point lookups found.",
							"A Get of a key the backend looked up before, not written since, is then "
							"answered from backend memory. When the cache is full the keys not read "
							"again for longest are let go. Each store a backend reads has a cache of "
							"its own. Below 64kB nothing is kept; 0 disables it.",
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
}

/* a key that hashes to ALMANAC_WRITE_LOG_RESET empties caches when written */
uint64
almanac_key_hash(const char *key, size_t klen)
{
	return hash_bytes_extended((const unsigned char *) key, (int) klen, 0);
}

#define key_hash(key, klen) almanac_key_hash(key, klen)

static bool key_written_since(AlmanacRowCache *cache, AlmanacWriteLog *log,
							  const char *key, size_t klen);

/* ---- backend side ---- */

AlmanacRowCache *
almanac_row_cache_create(void)
{
	AlmanacRowCache *cache = MemoryContextAllocZero(TopMemoryContext, sizeof(AlmanacRowCache));

	cache->cxt = AllocSetContextCreate(TopMemoryContext, "almanac row cache",
									   ALLOCSET_SMALL_SIZES);
	cache->table_cxt = AllocSetContextCreate(cache->cxt, "almanac row cache table",
											 ALLOCSET_SMALL_SIZES);
	/* blocks of one size, which store() leaves room for */
	for (int i = 0; i < 2; i++)
		cache->data_cxt[i] = GenerationContextCreate(cache->cxt, "almanac row cache rows",
													 0, ROW_BLOCK_SIZE, ROW_BLOCK_SIZE);
	cache->written_cxt = AllocSetContextCreate(cache->cxt, "almanac written keys",
											   ALLOCSET_SMALL_SIZES);
	return cache;
}

/* everything gone, counted or not */
static void
empty(AlmanacRowCache *cache)
{
	cache->table = NULL;
	MemoryContextReset(cache->table_cxt);
	MemoryContextReset(cache->data_cxt[0]);
	MemoryContextReset(cache->data_cxt[1]);
}

void
almanac_row_cache_reset(AlmanacRowCache *cache)
{
	if (cache == NULL)
		return;
	if (cache->table != NULL && cache->table->members > 0)
		stats.emptied++;
	empty(cache);
}

/* the table, made on first use after a reset */
static rowcache_hash *
table_of(AlmanacRowCache *cache)
{
	if (cache->table == NULL)
		cache->table = rowcache_create(cache->table_cxt, 256, NULL);
	return cache->table;
}

/*
 * Let the previous generation go: delete its entries, reset its context, and
 * make it the current one.
 */
static void
next_generation(AlmanacRowCache *cache)
{
	uint32		old = cache->gen - 1;

	if (cache->table != NULL)
	{
		rowcache_iterator it;
		RowCacheEntry *e;

		rowcache_start_iterate(cache->table, &it);
		while ((e = rowcache_iterate(cache->table, &it)) != NULL)
		{
			if (e->gen == old)
			{
				rowcache_delete_item(cache->table, e);
				stats.evicted++;
			}
		}
	}
	MemoryContextReset(cache->data_cxt[old & 1]);
	cache->gen++;
}

/* the window of the written set starts again at log_pos, empty */
static void
written_restart(AlmanacRowCache *cache)
{
	cache->written = NULL;
	MemoryContextReset(cache->written_cxt);
	cache->written_to = cache->log_pos;
	cache->written_all = false;
}

/* is the cache on?  Turned off, it gives back its memory */
static bool
cache_enabled(AlmanacRowCache *cache)
{
	if (cache == NULL)
		return false;
	if (almanac_reader_row_cache_size >= ROW_CACHE_MIN_KB)
		return true;
	if (cache->table != NULL)
		almanac_row_cache_reset(cache);
	return false;
}

void
almanac_row_cache_opening(AlmanacRowCache *cache, AlmanacWriteLog *log)
{
	if (cache == NULL)
		return;
	almanac_row_cache_reset(cache);
	/*
	 * An open, like a catch-up, can miss a write that a flush moved from the
	 * write-ahead log to a file while it ran (see almanac_reader_catch_up);
	 * such a write was done before 'written' was read, so the log cannot
	 * name it to the next catch-up: that one empties the cache instead.
	 */
	cache->reset_next = true;
	cache->just_opened = true;
	cache->prev_written = cache->log_pos = pg_atomic_read_u64(&log->written);
	pg_read_barrier();
	written_restart(cache);
}

void
almanac_row_cache_catching_up(AlmanacRowCache *cache, AlmanacWriteLog *log)
{
	if (cache == NULL)
		return;
	cache->catching_up_from = pg_atomic_read_u64(&log->written);
	pg_read_barrier();
}

/*
 * After a catch-up: drop every key that the log names from log_pos to its
 * end.  A write the catch-up made visible was logged before the catch-up
 * ended, so before 'next' is read here.  It was not done (not 'written')
 * before the catch-up before last began, or that one would have seen it: a
 * catch-up can miss a write that a concurrent flush moved from the
 * write-ahead log to a file, which the next one sees (the reason
 * almanac_reader_catch_up catches up twice), so the window starts one
 * catch-up further back than the last one.  Dropping a key twice costs
 * nothing.
 */
void
almanac_row_cache_caught_up(AlmanacRowCache *cache, AlmanacWriteLog *log, bool succeeded)
{
	uint64		end;
	bool		lost;

	if (cache == NULL)
		return;
	pg_read_barrier();
	end = pg_atomic_read_u64(&log->next);
	pg_read_barrier();

	lost = !succeeded || cache->reset_next ||
		end - cache->log_pos >= ALMANAC_WRITE_LOG_SIZE;
	if (!lost && cache->table != NULL && cache->table->members > 0)
	{
		for (uint64 n = cache->log_pos; n < end && !lost; n++)
		{
			uint64		hash = log->hashes[n % ALMANAC_WRITE_LOG_SIZE];

			if (hash == ALMANAC_WRITE_LOG_RESET)
				lost = true;
			else if (rowcache_delete(cache->table, hash))
				stats.dropped++;
		}
		/* the entries read were not overwritten meanwhile by an append */
		pg_read_barrier();
		if (pg_atomic_read_u64(&log->next) - cache->log_pos >= ALMANAC_WRITE_LOG_SIZE)
			lost = true;
	}
	if (lost)
		almanac_row_cache_reset(cache);
	/* a failed catch-up may have seen part of a flush's effect: as an open */
	cache->reset_next = !succeeded;
	cache->just_opened = false;
	cache->log_pos = cache->prev_written;
	cache->prev_written = cache->catching_up_from;
	written_restart(cache);
}

/*
 * Does the log name key (or a change of every key) from log_pos to its
 * end?  If not, the instance holds every write of key that the owner logged
 * before this call, for the reason the cache may keep a value whose key the
 * log does not name (almanac_row_cache_caught_up): a write the instance
 * lacks was not done before the catch-up before last began, and is logged
 * before it is done.  So the instance answers for key as a catch-up now
 * would.  The log is read incrementally into a set of hashes; what was read
 * before the last catch-up is read again from the new log_pos.
 *
 * True also when the check cannot tell: the instance was just opened (see
 * almanac_row_cache_opening), the window holds more than WRITTEN_MAX
 * entries, or the owner may have overwritten an entry while it was read.
 * A caller then catches up, which restarts the window.
 */
bool
almanac_row_cache_key_written(AlmanacRowCache *cache, AlmanacWriteLog *log,
							  const char *key, size_t klen)
{
	if (cache == NULL || cache->reset_next)
		return true;
	return key_written_since(cache, log, key, klen);
}

/*
 * As almanac_row_cache_key_written, but an instance just opened (which its
 * reader caught up once, successfully, after the open: the caller checks
 * that) counts as one caught up twice: the open read what every write done
 * before log_pos left, and the catch-up after it what a flush hid from the
 * open (almanac_reader_catch_up's reason for catching up twice).  Not after
 * a failed catch-up, which may have taken in part of a flush.
 */
bool
almanac_row_cache_key_written_since_open(AlmanacRowCache *cache, AlmanacWriteLog *log,
										 const char *key, size_t klen)
{
	if (cache == NULL || (cache->reset_next && !cache->just_opened))
		return true;
	return key_written_since(cache, log, key, klen);
}

static bool
key_written_since(AlmanacRowCache *cache, AlmanacWriteLog *log,
				  const char *key, size_t klen)
{
	uint64		end;

	if (cache->written_all)
		return true;
	pg_read_barrier();
	end = pg_atomic_read_u64(&log->next);
	pg_read_barrier();
	if (end - cache->log_pos > WRITTEN_MAX)
		return true;
	if (cache->written == NULL)
		cache->written = writtenset_create(cache->written_cxt, 64, NULL);
	for (uint64 n = cache->written_to; n < end; n++)
	{
		uint64		hash = log->hashes[n % ALMANAC_WRITE_LOG_SIZE];
		bool		found;

		if (hash == ALMANAC_WRITE_LOG_RESET)
			cache->written_all = true;
		else
			(void) writtenset_insert(cache->written, hash, &found);
	}
	/* the entries read were not overwritten meanwhile by an append */
	pg_read_barrier();
	if (pg_atomic_read_u64(&log->next) - cache->log_pos >= ALMANAC_WRITE_LOG_SIZE)
		cache->written_all = true;
	cache->written_to = end;
	if (cache->written_all)
		return true;
	return writtenset_lookup(cache->written, key_hash(key, klen)) != NULL;
}

bool
almanac_row_cache_lookup(AlmanacRowCache *cache, uint32 cf_id,
						 const char *key, size_t klen,
						 char **value, size_t *vlen)
{
	RowCacheEntry *e;

	if (!cache_enabled(cache))
		return false;
	e = cache->table ? rowcache_lookup(cache->table, key_hash(key, klen)) : NULL;
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
	}
	else
	{
		*vlen = (size_t) e->vlen;
		*value = palloc(Max(*vlen, 1));
		memcpy(*value, e->data + klen, *vlen);
	}
	/* read again: into the current generation, so that it stays */
	if (e->gen != cache->gen)
		almanac_row_cache_put(cache, cf_id, key, klen, *value, *vlen);
	return true;
}

void
almanac_row_cache_put(AlmanacRowCache *cache, uint32 cf_id,
						const char *key, size_t klen,
						const char *value, size_t vlen)
{
	Size		limit = (Size) almanac_reader_row_cache_size * 1024;
	Size		need = klen + (value ? vlen : 0);
	Size		table_bytes;
	Size		gen_budget;
	rowcache_hash *table;
	RowCacheEntry *e;
	char	   *data;
	bool		found;

	if (!cache_enabled(cache) || need > limit / 8)
		return;
	table = table_of(cache);

	/*
	 * An insertion past the threshold doubles the table, which may take half
	 * of the setting; past that the previous generation makes room, and if
	 * it held nothing (all read again, or dropped), this entry is not kept:
	 * the next store lets the generation that is previous by then go.
	 */
	table_bytes = MemoryContextMemAllocated(cache->table_cxt, false);
	if (table->members + 1 > table->grow_threshold)
	{
		Size		grown = table_bytes + sizeof(RowCacheEntry) * table->size * 2;

		if (grown <= limit / 2)
			table_bytes = grown;
		else
		{
			next_generation(cache);
			if (table->members + 1 > table->grow_threshold)
				return;
		}
	}

	/*
	 * A table grown past half of the setting (the setting was lowered, or
	 * simplehash grew it for long probe sequences): start again.
	 */
	if (table_bytes > limit / 2)
	{
		empty(cache);
		table = table_of(cache);
		table_bytes = MemoryContextMemAllocated(cache->table_cxt, false);
	}
	gen_budget = (limit - table_bytes) / 2;
	if (need + 2 * ROW_BLOCK_SIZE > gen_budget)
		return;					/* too large for this setting */

	/*
	 * The current generation holds its half of the rest, less the block the
	 * allocation below may add: start the next (its context keeps one
	 * block, which the test above leaves room for).
	 */
	if (MemoryContextMemAllocated(cache->data_cxt[cache->gen & 1], false) + need +
		ROW_BLOCK_SIZE > gen_budget)
		next_generation(cache);

	/* everything that can fail comes before the table holds the entry */
	data = MemoryContextAlloc(cache->data_cxt[cache->gen & 1], Max(need, 1));
	memcpy(data, key, klen);
	if (value)
		memcpy(data + klen, value, vlen);

	/*
	 * Growing the table can run out of memory after simplehash has set its
	 * new size: the table is then unusable, so the cache is emptied.
	 */
	PG_TRY();
	{
		e = rowcache_insert(table, key_hash(key, klen), &found);
	}
	PG_CATCH();
	{
		empty(cache);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (found)
		pfree(e->data);
	e->cf_id = cf_id;
	e->klen = (uint32) klen;
	e->vlen = value ? (int64) vlen : -1;
	e->gen = cache->gen;
	e->data = data;
}

/*
 * almanac.reader_row_cache_stats(): this backend's hits and misses, the
 * entries dropped because the owner logged a write of their key, the
 * entries let go with their generation, and how many times a cache was
 * emptied.
 */
PG_FUNCTION_INFO_V1(almanac_reader_row_cache_stats_sql);
Datum
almanac_reader_row_cache_stats_sql(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum((int64) stats.hits);
	values[1] = Int64GetDatum((int64) stats.misses);
	values[2] = Int64GetDatum((int64) stats.dropped);
	values[3] = Int64GetDatum((int64) stats.evicted);
	values[4] = Int64GetDatum((int64) stats.emptied);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---- owner side ---- */

/* hashes of the keys of the batch being built, in the owner's memory */
static uint64 *noted;
static int	nnoted;
static bool noted_all;

void
almanac_write_log_note(const char *key, size_t klen)
{
	if (noted == NULL)
		noted = MemoryContextAlloc(TopMemoryContext,
								   sizeof(uint64) * ALMANAC_WRITE_LOG_SIZE);
	if (nnoted == ALMANAC_WRITE_LOG_SIZE)
		noted_all = true;		/* more than the log holds: one reset entry */
	else
		noted[nnoted++] = key_hash(key, klen);
}

void
almanac_write_log_note_all(void)
{
	noted_all = true;
}

void
almanac_write_log_forget(void)
{
	nnoted = 0;
	noted_all = false;
}

void
almanac_write_log_append(AlmanacWriteLog *log, int store)
{
	uint64		next = pg_atomic_read_u64(&log->next);
	const uint64 reset = ALMANAC_WRITE_LOG_RESET;
	const uint64 *hashes = noted_all ? &reset : noted;
	int			n = noted_all ? 1 : nnoted;

	/*
	 * Each entry is filled in after 'next' covers the ones before it and
	 * before 'next' covers it: a reader that finds 'next' a log's length
	 * past where it started reading knows an entry it read may have been
	 * overwritten, and none it counts on is written early.
	 */
	for (int i = 0; i < n; i++)
	{
		pg_write_barrier();
		log->hashes[(next + i) % ALMANAC_WRITE_LOG_SIZE] = hashes[i];
		pg_write_barrier();
		pg_atomic_write_u64(&log->next, next + i + 1);
	}
	/* the entries are visible before the write they announce */
	pg_memory_barrier();

	/*
	 * Then the shared row cache lets the keys go, still before the write:
	 * after the log names them, so that a backend whose check of the log
	 * missed them finds the invalidation when it puts (sharedcache.h).
	 */
	if (noted_all)
		almanac_shared_cache_reset_store(store);
	else
		for (int i = 0; i < n; i++)
			almanac_shared_cache_invalidate(store, hashes[i]);
	almanac_write_log_forget();
}

void
almanac_write_log_mark_written(AlmanacWriteLog *log)
{
	pg_write_barrier();
	pg_atomic_write_u64(&log->written, pg_atomic_read_u64(&log->next));
}
