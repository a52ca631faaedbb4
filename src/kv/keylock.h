/*-------------------------------------------------------------------------
 *
 * keylock.h
 *	  Key locks: a writer of a key kept in RocksDB waits for the other
 *	  writers of that key, through PostgreSQL's lock manager.
 *
 * Every write of a key through the foreign data wrapper (INSERT, UPDATE,
 * DELETE, and SELECT ... FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE)
 * first takes a lock on the key, held to the end of the transaction (moved
 * to the prepared transaction by PREPARE TRANSACTION, released by ROLLBACK
 * TO SAVEPOINT of the subtransaction that took it).  Waits therefore get
 * lock_timeout, the deadlock detector, pg_locks and pg_blocking_pids as row
 * locks do.  A key lock has the strength of the heap's row lock for the same
 * statement, in the lock mode the heap itself takes on a tuple for it
 * (heapam.c's tupleLockExtraInfo), so that the lock manager's conflict table
 * is the heap's row-lock conflict table:
 *
 *	 FOR KEY SHARE						AccessShareLock
 *	 FOR SHARE							RowShareLock
 *	 FOR NO KEY UPDATE, an UPDATE that
 *	   keeps the key					ExclusiveLock
 *	 FOR UPDATE, DELETE, an UPDATE that
 *	   changes the key, INSERT			AccessExclusiveLock
 *
 * (an UPDATE that keeps the key does not wait for FOR KEY SHARE, and FOR KEY
 * SHARE not for it, as on the heap).  A lock is an advisory-type lock
 * (locktype 'advisory' in pg_locks) whose objsubid is almanac's own, so that
 * no pg_advisory_lock call can take or release it:
 *
 *	 objsubid = ALMANAC_LOCKTAG_KEY (161): one key;
 *			database = a hash of the store's path and the column family id,
 *			classid:objid = the 64-bit hash of the key;
 *	 objsubid = ALMANAC_LOCKTAG_CF (162): a whole column family, taken in
 *			an intention mode beside every key lock (RowShareLock beside a
 *			key share lock, RowExclusiveLock beside a key update lock), and in
 *			ShareLock or ExclusiveLock once the transaction holds more than
 *			almanac.key_lock_limit key locks in the column family (lock
 *			escalation: a COPY of millions of rows takes one lock, not
 *			millions, and a transaction past the limit takes no more key
 *			locks there).  The modes are those of table locks, so the
 *			escalated lock waits for the writers of single keys and they for
 *			it.  Escalated locks are coarser than key locks: a column family
 *			escalated in ShareLock also waits for (and holds off) updates
 *			that keep the key, and one in ExclusiveLock FOR KEY SHARE.
 *
 * Two different keys may share a hash: they then wait for each other as if
 * they were one key, which costs a wait and never a wrong answer.
 *
 * Writes that take no key lock: the mirror writes of the router (blind, the
 * heap row's lock orders them) and COPY's bulk path (SST files of new keys).
 * The store owner still checks every write against what was committed since
 * it was based on (first committer wins), as the safety net for those.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_KEYLOCK_H
#define ALMANAC_KEYLOCK_H

#include "storage/lockdefs.h"

#define ALMANAC_LOCKTAG_KEY	161
#define ALMANAC_LOCKTAG_CF	162

extern int	almanac_key_lock_limit;

extern void almanac_keylock_init(void);

/* the transaction ended (committed, aborted or prepared): its locks are gone */
extern void almanac_key_locks_xact_end(void);
/* ROLLBACK TO SAVEPOINT released the locks the subtransaction took */
extern void almanac_key_locks_subxact_abort(void);

/*
 * Lock key (of column family cf_id of store) in mode AccessShareLock,
 * RowShareLock, ExclusiveLock or AccessExclusiveLock (the row-lock strengths
 * above; a key the transaction holds in a stronger one is not locked again),
 * waiting as long as lock_timeout allows; 40P01 on a
 * deadlock, 55P03 on a timeout.  With nowait, returns false at once instead
 * of waiting (the caller raises 55P03 or skips the row), only when another
 * transaction holds the key (or the column family's escalated lock): past
 * the limit, a column family another transaction holds keys of is not
 * escalated to, the key is locked alone.  Returns true when the lock is
 * held, also when it was held already or the transaction holds the column
 * family's escalated lock.
 */
extern bool almanac_key_lock(int store, uint32 cf_id, const char *key, size_t klen,
							 LOCKMODE mode, bool nowait);

#endif							/* ALMANAC_KEYLOCK_H */
