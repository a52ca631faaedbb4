/*-------------------------------------------------------------------------
 *
 * keylock.c
 *	  Key locks through PostgreSQL's lock manager.  See keylock.h for the
 *	  contract.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "kv/keylock.h"
#include "store/store.h"

int			almanac_key_lock_limit = 256;

/*
 * What the transaction holds in one column family: how many key locks it
 * took there, its intention lock and its escalated lock (NoLock: none).
 * The modes only grow while the transaction runs, except that ROLLBACK TO
 * SAVEPOINT may have released locks the subtransaction took: then the
 * modes are forgotten (the next key lock asks again, which costs a lookup
 * in the backend's own lock table when they are still held) and the count
 * is kept (it may then overstate what is held: escalation comes early,
 * never late).
 */
typedef struct KeyLockCf
{
	int			store;
	uint32		cf_id;
	uint32		tag_hash;		/* the tags' field1: store path and cf id */
	int			nkeys;
	LOCKMODE	intent;
	LOCKMODE	escalated;
} KeyLockCf;

static KeyLockCf *lock_cfs = NULL;
static int	lock_ncfs = 0;
static int	lock_maxcfs = 0;

static KeyLockCf *
lock_cf(int store, uint32 cf_id)
{
	KeyLockCf  *c;
	const char *path = almanac_shared->stores[store].path;

	for (int i = 0; i < lock_ncfs; i++)
		if (lock_cfs[i].store == store && lock_cfs[i].cf_id == cf_id)
			return &lock_cfs[i];
	if (lock_ncfs == lock_maxcfs)
	{
		lock_maxcfs = Max(8, lock_maxcfs * 2);
		lock_cfs = lock_cfs
			? repalloc(lock_cfs, sizeof(KeyLockCf) * lock_maxcfs)
			: MemoryContextAlloc(TopMemoryContext, sizeof(KeyLockCf) * lock_maxcfs);
	}
	c = &lock_cfs[lock_ncfs++];
	c->store = store;
	c->cf_id = cf_id;
	/* the path, not the store's slot: a prepared transaction's locks outlive a restart */
	c->tag_hash = hash_combine(hash_bytes((const unsigned char *) path, strlen(path)),
							   murmurhash32(cf_id));
	c->nkeys = 0;
	c->intent = NoLock;
	c->escalated = NoLock;
	return c;
}

/* take a transaction-level lock; false only with nowait, when it is not free */
static bool
acquire(const LOCKTAG *tag, LOCKMODE mode, bool nowait, LockAcquireResult *result)
{
	LockAcquireResult r = LockAcquire(tag, mode, false, nowait);

	if (result)
		*result = r;
	return r != LOCKACQUIRE_NOT_AVAIL;
}

/* the key lock modes, weakest first (keylock.h) */
static const LOCKMODE key_modes[] = {AccessShareLock, RowShareLock, ExclusiveLock, AccessExclusiveLock};

/* does the key lock mode let other transactions write the key's row? */
static inline bool
key_mode_shared(LOCKMODE mode)
{
	return mode == AccessShareLock || mode == RowShareLock;
}

bool
almanac_key_lock(int store, uint32 cf_id, const char *key, size_t klen,
				 LOCKMODE mode, bool nowait)
{
	KeyLockCf  *c;
	LOCKTAG		tag;
	uint64		h;
	LockAcquireResult r;
	bool		shared = key_mode_shared(mode);
	LOCKMODE	intent = shared ? RowShareLock : RowExclusiveLock;
	LOCKMODE	whole = shared ? ShareLock : ExclusiveLock;

	Assert(mode == AccessShareLock || mode == RowShareLock ||
		   mode == ExclusiveLock || mode == AccessExclusiveLock);
	c = lock_cf(store, cf_id);
	if (c->escalated >= whole)
		return true;

	if (c->nkeys >= almanac_key_lock_limit)
	{
		/*
		 * escalate: one lock on the column family covers every key in it.
		 * Under nowait (NOWAIT, SKIP LOCKED) it is not to be had while
		 * another transaction holds any key of the column family; the key
		 * is then locked alone, as below the limit, since failing would
		 * refuse or skip a key nobody holds (the lock table grows instead).
		 */
		SET_LOCKTAG_ADVISORY(tag, c->tag_hash, 0, 0, ALMANAC_LOCKTAG_CF);
		if (acquire(&tag, whole, nowait, NULL))
		{
			c->escalated = whole;
			return true;
		}
	}

	if (c->intent < intent)
	{
		SET_LOCKTAG_ADVISORY(tag, c->tag_hash, 0, 0, ALMANAC_LOCKTAG_CF);
		if (!acquire(&tag, intent, nowait, NULL))
			return false;
		c->intent = intent;
	}

	h = hash_bytes_extended((const unsigned char *) key, klen, 0);
	SET_LOCKTAG_ADVISORY(tag, c->tag_hash, (uint32) (h >> 32), (uint32) h,
						 ALMANAC_LOCKTAG_KEY);

	/*
	 * A stronger key lock the transaction holds covers a weaker one (each
	 * strength conflicts with all a weaker one does): an UPDATE's scan took
	 * FOR UPDATE's strength and the row keeps its key, or FOR KEY SHARE of
	 * a row the transaction wrote.  Not taking the weaker mode as well
	 * keeps one lock-table entry a key and the count of keys true.  A lock
	 * held is the current subtransaction's or an ancestor's, so it lasts
	 * as long as the one not taken would.
	 */
	for (int i = lengthof(key_modes) - 1; key_modes[i] > mode; i--)
		if (LockHeldByMe(&tag, key_modes[i]))
			return true;

	if (!acquire(&tag, mode, nowait, &r))
		return false;
	if (r == LOCKACQUIRE_OK)
		c->nkeys++;
	return true;
}

void
almanac_key_locks_xact_end(void)
{
	lock_ncfs = 0;
}

void
almanac_key_locks_subxact_abort(void)
{
	/* the subtransaction's locks are released: see KeyLockCf */
	for (int i = 0; i < lock_ncfs; i++)
	{
		lock_cfs[i].intent = NoLock;
		lock_cfs[i].escalated = NoLock;
	}
}

void
almanac_keylock_init(void)
{
	DefineCustomIntVariable("almanac.key_lock_limit",
							"Key locks a transaction takes in one almanac column family before it locks the whole column family instead.",
							"Bounds the lock table entries a large write (a COPY) uses; past the limit, other writers of the column family wait for the transaction to end.",
							&almanac_key_lock_limit,
							256, 0, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
}
