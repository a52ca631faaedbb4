/*-------------------------------------------------------------------------
 *
 * sharedcache.c
 *	  The shared row cache: see sharedcache.h for what it keeps and why the
 *	  owner's invalidations keep it valid.
 *
 * The layout is the buffer manager's, small: an array of fixed-size slots,
 * a shared dynahash table from a key's tag (store and the 64-bit hash the
 * write log carries) to its slot, partitioned, each partition under an
 * LWLock of its own.  A slot is FREE, BUSY (taken by one backend, which fills
 * it outside any lock) or USED (mapped by the table).  Only a holder of the
 * mapping partition's lock in exclusive mode maps or unmaps a slot, so a
 * lookup holding it shared reads a slot that cannot change.  The slot also
 * holds the whole key and its column family, which a lookup compares: two
 * keys with one hash never answer for each other (the later one replaces
 * the earlier).
 *
 * Free slots are on a free list per size (again the buffer manager's): a
 * put takes a free slot while there is one, a small value a large slot when
 * no small one is free, and only then does the clock sweep take the slot of
 * a key not read lately.  A sweep that took free slots as it met them, and
 * evicted whatever it met first otherwise, let go of keys read at random
 * while a tenth of the cache stood free (docs/benchmarks.md, "Seventh
 * pass").
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "fault.h"
#include "kv/rowcache.h"
#include "kv/sharedcache.h"
#include "store/store.h"

/* almanac.shared_row_cache_size, in kB */
int			almanac_shared_row_cache_size = 64 * 1024;

/* almanac.shared_row_cache: may this session's lookups use it? */
bool		almanac_shared_row_cache = true;

/* almanac.range_read_column_families: not written through (sharedcache.h) */
char	   *almanac_range_read_column_families = NULL;

#define NPARTITIONS 128

/* how far a sweep goes looking for a slot before it gives up the put */
#define SWEEP_MAX 512

typedef struct CacheTag
{
	uint64		hash;			/* of the key (rowcache.h) */
	int32		store;
	int32		pad;			/* zero: the tag is hashed as bytes */
} CacheTag;

typedef struct CacheMapEntry
{
	CacheTag	tag;
	int32		slot;
} CacheMapEntry;

enum
{
	SLOT_FREE = 0,
	SLOT_BUSY,
	SLOT_USED
};

typedef struct CacheSlot
{
	pg_atomic_uint32 state;
	pg_atomic_uint32 usage;		/* read since the clock hand last passed */
	CacheTag	tag;
	uint64		generation;		/* the store's when it was put */
	uint32		cf_id;
	uint32		klen;
	int32		vlen;			/* -1: the key was found missing */
	int32		next_free;		/* FREE: the next slot of the free list, or -1 */
	bool		written;		/* put by the owner's write of the key */
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* the key, then the value */
} CacheSlot;

/*
 * Two sizes of slot, each with half the memory: most rows of the core tables
 * fit a small one (a transaction's, an event's, an account state's), a
 * block's or a key's several versions after updates need a large one.  A
 * slot's id in the map carries its class in bit 30.
 */
#define NCLASSES 2
static const Size slot_size[NCLASSES] = {ALMANAC_SHARED_CACHE_SMALL_SLOT, ALMANAC_SHARED_CACHE_SLOT};

#define CLASS_BIT 30
#define SLOT_ID(cls, n) (((cls) << CLASS_BIT) | (n))
#define SLOT_CLASS(id) ((id) >> CLASS_BIT)
#define SLOT_NUM(id) ((id) & ((1 << CLASS_BIT) - 1))
#define SLOT_DATA(cls) (slot_size[cls] - offsetof(CacheSlot, data))

typedef union CachePartition
{
	struct
	{
		pg_atomic_uint32 invalidations;
		pg_atomic_uint64 hits;
		pg_atomic_uint64 misses;
	}			c;
	char		pad[PG_CACHE_LINE_SIZE];
} CachePartition;

typedef struct CacheControl
{
	int			nslots[NCLASSES];
	LWLockPadded *locks;
	/* per class, under free_lock: the first FREE slot (its number), or -1 */
	slock_t		free_lock[NCLASSES];
	int32		first_free[NCLASSES];
	pg_atomic_uint64 hand[NCLASSES];
	pg_atomic_uint64 puts;
	pg_atomic_uint64 evictions;
	pg_atomic_uint64 invalidated;	/* entries removed by the owner's writes */
	pg_atomic_uint64 generations[ALMANAC_MAX_STORES];
	CachePartition parts[NPARTITIONS];
} CacheControl;

static CacheControl *control = NULL;
static char *slots[NCLASSES];
static HTAB *map = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* slots of a class: half the memory each; none at all below one large slot each */
static int
cache_nslots(int cls)
{
	int64		bytes = (int64) almanac_shared_row_cache_size * 1024 / NCLASSES;

	if (bytes < ALMANAC_SHARED_CACHE_SLOT)
		return 0;
	return (int) Min(bytes / slot_size[cls], (int64) 1 << CLASS_BIT);
}

static int
cache_nslots_all(void)
{
	return cache_nslots(0) + cache_nslots(1);
}

#define SLOT(id) ((CacheSlot *) (slots[SLOT_CLASS(id)] + (Size) SLOT_NUM(id) * slot_size[SLOT_CLASS(id)]))
#define PARTITION(hashcode) ((hashcode) % NPARTITIONS)
#define PARTITION_LOCK(hashcode) (&control->locks[PARTITION(hashcode)].lock)

static void
shared_cache_shmem_request(void)
{
	int			n = cache_nslots_all();

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	if (n <= 0)
		return;
	RequestAddinShmemSpace(add_size(sizeof(CacheControl),
									add_size(add_size(mul_size(cache_nslots(0), slot_size[0]),
													  mul_size(cache_nslots(1), slot_size[1])),
											 hash_estimate_size(n, sizeof(CacheMapEntry)))));
	RequestNamedLWLockTranche("almanac shared row cache", NPARTITIONS);
}

static void
shared_cache_shmem_startup(void)
{
	int			n = cache_nslots_all();
	HASHCTL		info;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	if (n <= 0)
		return;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	control = ShmemInitStruct("almanac shared row cache", sizeof(CacheControl), &found);
	slots[0] = ShmemInitStruct("almanac shared row cache small slots",
							   mul_size(cache_nslots(0), slot_size[0]), &found);
	slots[1] = ShmemInitStruct("almanac shared row cache slots",
							   mul_size(cache_nslots(1), slot_size[1]), &found);
	if (!found)
	{
		memset(control, 0, sizeof(CacheControl));
		control->locks = GetNamedLWLockTranche("almanac shared row cache");
		for (int c = 0; c < NCLASSES; c++)
		{
			control->nslots[c] = cache_nslots(c);
			pg_atomic_init_u64(&control->hand[c], 0);
			SpinLockInit(&control->free_lock[c]);
			control->first_free[c] = control->nslots[c] > 0 ? 0 : -1;
			for (int i = 0; i < control->nslots[c]; i++)
			{
				pg_atomic_init_u32(&SLOT(SLOT_ID(c, i))->state, SLOT_FREE);
				pg_atomic_init_u32(&SLOT(SLOT_ID(c, i))->usage, 0);
				SLOT(SLOT_ID(c, i))->next_free = i + 1 < control->nslots[c] ? i + 1 : -1;
			}
		}
		pg_atomic_init_u64(&control->puts, 0);
		pg_atomic_init_u64(&control->evictions, 0);
		pg_atomic_init_u64(&control->invalidated, 0);
		for (int i = 0; i < ALMANAC_MAX_STORES; i++)
			pg_atomic_init_u64(&control->generations[i], 1);
		for (int i = 0; i < NPARTITIONS; i++)
		{
			pg_atomic_init_u32(&control->parts[i].c.invalidations, 0);
			pg_atomic_init_u64(&control->parts[i].c.hits, 0);
			pg_atomic_init_u64(&control->parts[i].c.misses, 0);
		}
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(CacheTag);
	info.entrysize = sizeof(CacheMapEntry);
	info.num_partitions = NPARTITIONS;
	map = ShmemInitHash("almanac shared row cache map", n, n, &info,
						HASH_ELEM | HASH_BLOBS | HASH_PARTITION);
	LWLockRelease(AddinShmemInitLock);
}

/* a list of names, as almanac_shared_cache_writes_through reads it */
static bool
check_range_read_column_families(char **newval, void **extra, GucSource source)
{
	char	   *copy = pstrdup(*newval);
	List	   *names = NIL;
	bool		ok = SplitGUCList(copy, ',', &names);

	list_free(names);
	pfree(copy);
	if (!ok)
		GUC_check_errdetail("List syntax is invalid.");
	return ok;
}

bool
almanac_shared_cache_writes_through(const char *cf_name)
{
	char	   *copy;
	List	   *names = NIL;
	bool		listed = false;
	ListCell   *lc;

	if (almanac_range_read_column_families == NULL ||
		almanac_range_read_column_families[0] == '\0')
		return true;
	copy = pstrdup(almanac_range_read_column_families);
	/* the check hook accepted it */
	(void) SplitGUCList(copy, ',', &names);
	foreach(lc, names)
		if (strcmp((const char *) lfirst(lc), cf_name) == 0)
			listed = true;
	list_free(names);
	pfree(copy);
	return !listed;
}

void
almanac_shared_cache_init(void)
{
	DefineCustomIntVariable("almanac.shared_row_cache_size",
							"Shared memory that keeps the newest stored values of keys, for every backend.",
							"A key the store owner wrote or any backend looked up is then a hash probe in "
							"shared memory for all of them, new connections included, instead of a "
							"catch-up and a RocksDB read. Half is in 512-byte slots, half in 2kB slots: "
							"a key and value longer than about 2kB are not kept. When it is full, "
							"keys not read lately are let go. 0 disables it.",
							&almanac_shared_row_cache_size,
							64 * 1024, 0, INT_MAX / 1024,
							PGC_POSTMASTER, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("almanac.shared_row_cache",
							 "Lets this session's point lookups read and fill the shared row cache.",
							 "Off, they read the store (and the session's own row cache) as if "
							 "almanac.shared_row_cache_size were 0; for diagnostics and tests.",
							 &almanac_shared_row_cache,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("almanac.range_read_column_families",
							   "Column families whose keys the store owner does not write through into the shared row cache.",
							   "A comma-separated list of column family names whose keys are read by range "
							   "(bounded iterators), not looked up one by one: writing them through costs the "
							   "owner CPU and evicts the keys point lookups use. Their entries are still "
							   "invalidated by every write, and point lookups still fill the cache.",
							   &almanac_range_read_column_families,
							   "mirror.events",
							   PGC_SIGHUP, GUC_LIST_INPUT,
							   check_range_read_column_families, NULL, NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shared_cache_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shared_cache_shmem_startup;
}

bool
almanac_shared_cache_enabled(void)
{
	return control != NULL && almanac_shared_row_cache;
}

static void
make_tag(CacheTag *tag, int store, uint64 hash)
{
	tag->hash = hash;
	tag->store = store;
	tag->pad = 0;
}

static uint64
key_hash(const char *key, size_t klen)
{
	return almanac_key_hash(key, klen);
}

/*
 * The key's entry, copied into *value and *vlen, if it is kept (written:
 * only an entry the owner's write put); returns whether it was, and the
 * partition's hash code in *hashcode.
 */
static bool
lookup(int store, uint32 cf_id, const char *key, size_t klen, bool written,
	   char **value, size_t *vlen, uint32 *hashcode_out)
{
	CacheTag	tag;
	uint32		hashcode;
	CacheMapEntry *e;
	bool		hit = false;

	make_tag(&tag, store, key_hash(key, klen));
	hashcode = get_hash_value(map, &tag);
	LWLockAcquire(PARTITION_LOCK(hashcode), LW_SHARED);
	e = hash_search_with_hash_value(map, &tag, hashcode, HASH_FIND, NULL);
	if (e)
	{
		CacheSlot  *s = SLOT(e->slot);

		if (s->generation == pg_atomic_read_u64(&control->generations[store]) &&
			s->cf_id == cf_id && s->klen == klen &&
			(s->written || !written) &&
			memcmp(s->data, key, klen) == 0)
		{
			if (s->vlen < 0)
			{
				*value = NULL;
				*vlen = 0;
			}
			else
			{
				/* palloc may fail: the lock is released by the abort */
				*value = palloc(s->vlen + 1);
				memcpy(*value, s->data + klen, s->vlen);
				(*value)[s->vlen] = '\0';
				*vlen = s->vlen;
			}
			if (pg_atomic_read_u32(&s->usage) == 0)
				pg_atomic_write_u32(&s->usage, 1);
			hit = true;
		}
	}
	LWLockRelease(PARTITION_LOCK(hashcode));
	*hashcode_out = hashcode;
	return hit;
}

bool
almanac_shared_cache_lookup(int store, uint32 cf_id, const char *key, size_t klen,
							char **value, size_t *vlen)
{
	uint32		hashcode;
	bool		hit;

	if (control == NULL)
		return false;
	hit = lookup(store, cf_id, key, klen, false, value, vlen, &hashcode);
	pg_atomic_fetch_add_u64(hit ? &control->parts[PARTITION(hashcode)].c.hits :
							&control->parts[PARTITION(hashcode)].c.misses, 1);
	return hit;
}

bool
almanac_shared_cache_lookup_written(int store, uint32 cf_id, const char *key, size_t klen,
									char **value, size_t *vlen)
{
	uint32		hashcode;

	if (control == NULL)
		return false;
	/* not counted in the hits and misses, which are the readers' */
	return lookup(store, cf_id, key, klen, true, value, vlen, &hashcode);
}

void
almanac_shared_cache_prepare(AlmanacSharedCacheTicket *t, int store,
							 const char *key, size_t klen)
{
	CacheTag	tag;

	t->store = store;
	if (control == NULL)
		return;
	t->hash = key_hash(key, klen);
	make_tag(&tag, store, t->hash);
	t->hashcode = get_hash_value(map, &tag);
	t->generation = pg_atomic_read_u64(&control->generations[store]);
	t->invalidations = pg_atomic_read_u32(&control->parts[PARTITION(t->hashcode)].c.invalidations);
	/* both before the caller reads the write log */
	pg_read_barrier();
}

/*
 * Slot id is FREE now (it was BUSY, or mapped and just unmapped): onto its
 * class's free list.  Only this makes a slot FREE, and only free_pop takes
 * a FREE slot, so a slot is on the list exactly while it is FREE.
 */
static void
free_push(int id)
{
	int			cls = SLOT_CLASS(id);
	CacheSlot  *s = SLOT(id);

	pg_atomic_write_u32(&s->state, SLOT_FREE);
	SpinLockAcquire(&control->free_lock[cls]);
	s->next_free = control->first_free[cls];
	control->first_free[cls] = SLOT_NUM(id);
	SpinLockRelease(&control->free_lock[cls]);
}

/*
 * A FREE slot of class cls, made BUSY; -1 if there is none.  Every slot on
 * the list is FREE (free_push); one that is not would be another's, so it
 * is left off the list rather than taken.
 */
static int
free_pop(int cls)
{
	for (;;)
	{
		int			n;
		uint32		state = SLOT_FREE;

		SpinLockAcquire(&control->free_lock[cls]);
		n = control->first_free[cls];
		if (n >= 0)
			control->first_free[cls] = SLOT(SLOT_ID(cls, n))->next_free;
		SpinLockRelease(&control->free_lock[cls]);
		if (n < 0)
			return -1;
		if (pg_atomic_compare_exchange_u32(&SLOT(SLOT_ID(cls, n))->state, &state, SLOT_BUSY))
			return SLOT_ID(cls, n);
	}
}

/*
 * A slot for the caller to fill, BUSY; -1 if none was found soon.  A free
 * slot of the class, else (a small value) a free large slot, else the clock
 * sweep's: a USED slot is taken only once the hand found it unread since it
 * passed last, and only if its partition lock is free at once: the caller
 * holds no lock, and a put that gives up costs a later Get, nothing else.
 */
static int
take_slot(int cls)
{
	int			n = free_pop(cls);

	if (n < 0 && cls == 0 && control->nslots[1] > 0)
		n = free_pop(1);
	if (n >= 0)
		return n;
	for (int i = 0; i < SWEEP_MAX; i++)
	{
		CacheSlot  *s;
		CacheTag	tag;
		uint32		hashcode;
		CacheMapEntry *e;
		bool		taken = false;

		n = SLOT_ID(cls, (int) (pg_atomic_fetch_add_u64(&control->hand[cls], 1) %
								control->nslots[cls]));
		s = SLOT(n);
		/* a FREE slot is another put's, from the free list */
		if (pg_atomic_read_u32(&s->state) != SLOT_USED)
			continue;
		if (pg_atomic_read_u32(&s->usage) > 0)
		{
			pg_atomic_write_u32(&s->usage, 0);
			continue;
		}
		/* read without the lock: the mapping decides below */
		tag = s->tag;
		hashcode = get_hash_value(map, &tag);
		if (!LWLockConditionalAcquire(PARTITION_LOCK(hashcode), LW_EXCLUSIVE))
			continue;
		e = hash_search_with_hash_value(map, &tag, hashcode, HASH_FIND, NULL);
		if (e && e->slot == n)
		{
			(void) hash_search_with_hash_value(map, &tag, hashcode, HASH_REMOVE, NULL);
			pg_atomic_write_u32(&s->state, SLOT_BUSY);
			taken = true;
		}
		LWLockRelease(PARTITION_LOCK(hashcode));
		if (taken)
		{
			pg_atomic_fetch_add_u64(&control->evictions, 1);
			return n;
		}
	}
	return -1;
}

/*
 * Put a key's value into a slot and map it, replacing the key's entry (or
 * another key's of the same hash).  With a ticket, only if neither the
 * partition's invalidation count nor the store's generation moved since it
 * was taken; without one (the owner's own write), always.
 */
static void
put_value(const AlmanacSharedCacheTicket *t, uint32 cf_id,
		  const char *key, size_t klen, const char *value, size_t vlen, bool check)
{
	CacheTag	tag;
	CacheSlot  *s;
	CacheMapEntry *e;
	LWLock	   *lock;
	int			n;
	bool		found;
	int			old = -1;
	Size		len = klen + (value ? vlen : 0);
	int			cls = len <= SLOT_DATA(0) ? 0 : 1;

	if (len > SLOT_DATA(1))
		return;
	n = take_slot(cls);
	if (n < 0)
		return;
	s = SLOT(n);
	make_tag(&tag, t->store, t->hash);
	s->tag = tag;
	s->generation = t->generation;
	s->cf_id = cf_id;
	s->klen = (uint32) klen;
	s->vlen = value ? (int32) vlen : -1;
	s->written = !check;
	memcpy(s->data, key, klen);
	if (value)
		memcpy(s->data + klen, value, vlen);
	pg_atomic_write_u32(&s->usage, 1);

	lock = PARTITION_LOCK(t->hashcode);
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (check &&
		(pg_atomic_read_u32(&control->parts[PARTITION(t->hashcode)].c.invalidations) != t->invalidations ||
		 pg_atomic_read_u64(&control->generations[t->store]) != t->generation))
	{
		/* the key may have been written since the caller's check */
		LWLockRelease(lock);
		free_push(n);
		return;
	}
	/* the table has a slot's worth of entries: HASH_ENTER cannot run out */
	e = hash_search_with_hash_value(map, &tag, t->hashcode, HASH_ENTER, &found);
	if (found)
		old = e->slot;			/* another key of this hash, or an older value */
	e->slot = n;
	pg_write_barrier();
	pg_atomic_write_u32(&s->state, SLOT_USED);
	if (old >= 0)
		free_push(old);
	LWLockRelease(lock);
	pg_atomic_fetch_add_u64(&control->puts, 1);
}

void
almanac_shared_cache_put(const AlmanacSharedCacheTicket *t, uint32 cf_id,
						 const char *key, size_t klen, const char *value, size_t vlen)
{
	if (control == NULL)
		return;
	put_value(t, cf_id, key, klen, value, vlen, true);
}

/* ---- owner side: write-through ---- */

typedef struct StagedValue
{
	uint32		cf_id;
	uint32		klen;
	uint32		vlen;			/* STAGED_NO_VALUE: too large for a slot */
	char	   *data;			/* the key, then the value */
} StagedValue;

#define STAGE_MAX_KEYS 4096
#define STAGED_NO_VALUE PG_UINT32_MAX

/* a key of the batch, by column family and hash: put_staged's "seen" set */
typedef struct StagedKey
{
	uint64		hash;
	uint64		cf_id;			/* 64 bits: no padding in a HASH_BLOBS key */
} StagedKey;

static MemoryContext staged_cxt = NULL;
static StagedValue *staged = NULL;
static int	nstaged = 0;
/* keys written after the stage was full, by hash (put_staged skips them) */
static StagedKey *unstaged = NULL;
static int	nunstaged = 0;
static int	maxunstaged = 0;

void
almanac_shared_cache_forget_staged(void)
{
	nstaged = 0;
	nunstaged = 0;
	maxunstaged = 0;
	if (staged_cxt)
		MemoryContextReset(staged_cxt);
	staged = NULL;
	unstaged = NULL;
}

/*
 * A batch may write a key more than once (the blind writes of mirrors are
 * sent in the order written, kv/xact.c: a reorg's erase and insert of a
 * block).  Only the last value of a key may be put: an earlier one put
 * after the write's invalidation would stay, stale.  So a value that cannot
 * be staged (too large for a slot) is staged without its value, and the
 * keys of a batch past STAGE_MAX_KEYS are kept by hash: either way, no
 * earlier value of the key is put.
 */
void
almanac_shared_cache_stage(uint32 cf_id, const char *key, size_t klen,
						   const char *value, size_t vlen)
{
	StagedValue *v;
	bool		fits = klen + vlen <= SLOT_DATA(1);

	if (control == NULL)
		return;
	if (staged_cxt == NULL)
		staged_cxt = AllocSetContextCreate(TopMemoryContext, "almanac shared row cache staging",
										   ALLOCSET_DEFAULT_SIZES);
	if (nstaged == STAGE_MAX_KEYS)
	{
		if (nunstaged == maxunstaged)
		{
			maxunstaged = Max(1024, maxunstaged * 2);
			unstaged = unstaged
				? repalloc(unstaged, sizeof(StagedKey) * maxunstaged)
				: MemoryContextAlloc(staged_cxt, sizeof(StagedKey) * maxunstaged);
		}
		unstaged[nunstaged].hash = key_hash(key, klen);
		unstaged[nunstaged].cf_id = cf_id;
		nunstaged++;
		return;
	}
	if (staged == NULL)
		staged = MemoryContextAlloc(staged_cxt, sizeof(StagedValue) * STAGE_MAX_KEYS);
	v = &staged[nstaged++];
	v->cf_id = cf_id;
	v->klen = (uint32) klen;
	v->vlen = fits ? (uint32) vlen : STAGED_NO_VALUE;
	v->data = MemoryContextAlloc(staged_cxt, klen + (fits ? vlen : 0));
	memcpy(v->data, key, klen);
	if (fits)
		memcpy(v->data + klen, value, vlen);
}

void
almanac_shared_cache_put_staged(int store)
{
	HTAB	   *seen = NULL;

	if (nstaged > 1 || nunstaged > 0)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(StagedKey);
		ctl.entrysize = sizeof(StagedKey);
		ctl.hcxt = staged_cxt;
		seen = hash_create("almanac staged keys", nstaged + nunstaged, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		for (int i = 0; i < nunstaged; i++)
			(void) hash_search(seen, &unstaged[i], HASH_ENTER, NULL);
	}
	/* newest first: a key's last value decides */
	for (int i = nstaged - 1; i >= 0; i--)
	{
		StagedValue *v = &staged[i];
		AlmanacSharedCacheTicket t;

		if (seen)
		{
			StagedKey	k;
			bool		found;

			memset(&k, 0, sizeof(k));
			k.hash = key_hash(v->data, v->klen);
			k.cf_id = v->cf_id;
			(void) hash_search(seen, &k, HASH_ENTER, &found);
			if (found)
				continue;
		}
		if (v->vlen == STAGED_NO_VALUE)
			continue;
		almanac_shared_cache_prepare(&t, store, v->data, v->klen);
		put_value(&t, v->cf_id, v->data, v->klen, v->data + v->klen, v->vlen, false);
	}
	almanac_shared_cache_forget_staged();
}

void
almanac_shared_cache_invalidate(int store, uint64 hash)
{
	CacheTag	tag;
	uint32		hashcode;
	CacheMapEntry *e;
	LWLock	   *lock;

	if (control == NULL)
		return;
	make_tag(&tag, store, hash);
	hashcode = get_hash_value(map, &tag);
	lock = PARTITION_LOCK(hashcode);
	LWLockAcquire(lock, LW_EXCLUSIVE);
	pg_atomic_fetch_add_u32(&control->parts[PARTITION(hashcode)].c.invalidations, 1);

	/*
	 * The slot is read before the entry is removed, never from what
	 * HASH_REMOVE returns: the removed entry goes to a free list that
	 * partitions share, and a put holding another partition's lock may take
	 * it and set its slot meanwhile; that slot, mapped by its key, would be
	 * freed and refilled under its readers.
	 */
	e = hash_search_with_hash_value(map, &tag, hashcode, HASH_FIND, NULL);
	if (e)
	{
		int			n = e->slot;

		(void) hash_search_with_hash_value(map, &tag, hashcode, HASH_REMOVE, NULL);
		free_push(n);
		/* a put in another partition meanwhile (test/t/031_shared_row_cache.pl) */
		ALMANAC_FAULT_PAUSE("shared_cache_after_remove", 3000);
	}
	LWLockRelease(lock);
	if (e)
		pg_atomic_fetch_add_u64(&control->invalidated, 1);
}

void
almanac_shared_cache_reset_store(int store)
{
	if (control == NULL)
		return;
	pg_atomic_fetch_add_u64(&control->generations[store], 1);
	/* before the write it announces, as the write log's entries are */
	pg_memory_barrier();
}

PG_FUNCTION_INFO_V1(almanac_shared_row_cache_stats_sql);
Datum
almanac_shared_row_cache_stats_sql(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7] = {false};
	uint64		hits = 0;
	uint64		misses = 0;
	int64		used = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (control == NULL)
	{
		for (int i = 0; i < 7; i++)
			values[i] = Int64GetDatum(0);
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}
	for (int i = 0; i < NPARTITIONS; i++)
	{
		hits += pg_atomic_read_u64(&control->parts[i].c.hits);
		misses += pg_atomic_read_u64(&control->parts[i].c.misses);
	}
	for (int c = 0; c < NCLASSES; c++)
		for (int i = 0; i < control->nslots[c]; i++)
			if (pg_atomic_read_u32(&SLOT(SLOT_ID(c, i))->state) == SLOT_USED)
				used++;
	values[0] = Int64GetDatum((int64) control->nslots[0] + control->nslots[1]);
	values[1] = Int64GetDatum(used);
	values[2] = Int64GetDatum((int64) hits);
	values[3] = Int64GetDatum((int64) misses);
	values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&control->puts));
	values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&control->evictions));
	values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&control->invalidated));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
