/*-------------------------------------------------------------------------
 *
 * fault.h
 *	  Named fault points in the commit path, for crash tests.
 *
 * almanac.fault_point (superuser only; in postgresql.conf or ALTER SYSTEM
 * for the store owner, which reads the configuration file, or SET in a
 * session for that session's backend) names one point.  A process that
 * reaches the named point logs
 *
 *	   almanac: fault point "NAME" reached
 *
 * and stops there, doing nothing, until it is killed (a test kill -9's the
 * postmaster or the process), or exits at once if the postmaster is gone.
 * Unarmed, a fault point costs a test of a static variable.
 *
 * The points:
 *	 owner_after_sync		the owner wrote a group's batches (synced them,
 *							in synced mode) and answered none of them: their
 *							transactions have no commit record and never
 *							will
 *	 before_commit_record	a backend's batch is in the store and its
 *							message in the WAL (XACT_EVENT_PRE_COMMIT), its
 *							commit record not written
 *	 after_commit_record	a backend's commit record is written
 *							(XACT_EVENT_COMMIT), and COMMIT has not returned
 *	 owner_start			the owner opened the store (RocksDB recovered
 *							its log), has not replayed PostgreSQL's WAL,
 *							and serves nothing yet
 *	 owner_skip_wal			not a stop: while armed, the store owner writes
 *							everything without RocksDB's write-ahead log
 *							(disableWAL) and does not advance its durable
 *							point, so that a SIGKILL of the owner loses
 *							those writes as an operating-system crash loses
 *							unsynced ones; the restarted owner must replay
 *							them from PostgreSQL's WAL
 *	 owner_before_markers	the owner asked for a flush of every column
 *							family (max_total_wal_size reached) and wrote
 *							nothing into the new write-ahead log yet, as
 *							while RocksDB stalls the write that follows a
 *							memtable switch (kv/reader.c); the batch that
 *							asked is not answered
 *	 owner_refuse_apply		not a stop: while armed, the store owner refuses
 *							every batch of writes (ALMANAC_REQ_APPLY) with
 *							an I/O error, writing nothing of it
 *	 reader_wal_dir_unreadable	not a stop: while armed, a backend's reader
 *							finds the store's directory unreadable (EACCES)
 *							when it lists the write-ahead log files to judge
 *							its memtables (kv/reader.c, newest_wal)
 *	 iterator_error			not a stop: while armed, a backend's iterators
 *							over its reader (a scan's, kv/access.c, and the
 *							base of a walk of the transaction's writes,
 *							kv/xact.c) fail at once, as an I/O error or a
 *							corrupted block makes them fail (test/t/038)
 *	 grow_array_error		not a stop: while armed, almanac_grow_array
 *							(almanac.h) fails every growth of an array as an
 *							allocation that fails does, out of memory
 *							(test/t/042)
 *	 savepoint_rebuild_error	not a stop: while armed, a rollback of a
 *							subtransaction that undoes several save points
 *							of the transaction's write batch at once fails
 *							to rebuild the batch, as a column family with
 *							no handle makes it fail, having built a new
 *							batch; the rollback then undoes them one at a
 *							time (kv/xact.c, rebuild_batch; test/t/048)
 *	 bulk_chunk_truncated	not a stop: while armed, a backend posts each
 *							bulk-load chunk (kv/bulk.c) one byte short, its
 *							last row running past the end, as a chunk
 *							damaged on its way to the owner (test fdw_bulk)
 *
 * Two more pause instead of stopping: the process logs the same line, waits
 * the given time, and goes on (races made to last, test/t/016):
 *	 owner_pause_before_markers	as owner_before_markers, for 3 seconds
 *	 reader_after_catch_up	a backend caught its reader up and has not
 *							judged its memtables yet (kv/reader.c), for 6
 *							seconds
 *	 request_pause_before_give_up	a backend waiting for the owner's answer
 *							saw the store's owner gone and has not given its
 *							request up yet (store/store.c, wait_answer), for
 *							8 seconds (test/t/025)
 *	 owner_pause_before_answer	the owner served a request and has not
 *							answered it yet, for 15 seconds, at every
 *							answer (test/t/025)
 *	 shared_cache_before_ticket	a backend read a key's value from its
 *							instance to put it into the shared row cache
 *							and has not taken its ticket yet
 *							(kv/sharedcache.h), for 3 seconds (test/t/031)
 *	 shared_cache_before_put	the same backend found the value the newest
 *							and has not put it yet, for 3 seconds
 *	 owner_pause_before_apply	the owner took up a batch of writes and has
 *							not applied it yet, for 3 seconds, at every
 *							batch (test/t/032: a batch a backend posted
 *							without waiting, kv/xact.c)
 *	 shared_cache_after_remove	the store owner removed a written key's entry
 *							from the shared row cache and still holds its
 *							partition's lock, for 3 seconds
 *	 owner_pause_durable_sync	the store owner wrote a durable point's state
 *							and started the sync of RocksDB's log that
 *							makes it durable: the sync, on its own thread,
 *							waits first, until the point is disarmed,
 *							while the owner goes on serving; the point is
 *							recorded (the slot advanced) only once the
 *							sync is done (test/t/047)
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_FAULT_H
#define ALMANAC_FAULT_H

extern bool almanac_fault_armed;

extern void almanac_fault_init(void);
extern void almanac_fault_reached(const char *name);
extern bool almanac_fault_is(const char *name);

/* true if name is the armed point; costs a test of a variable unarmed */
#define ALMANAC_FAULT_ARMED(name) \
	(unlikely(almanac_fault_armed) && almanac_fault_is(name))

/* if name is the armed point, wait ms milliseconds, then go on */
extern void almanac_fault_pause(const char *name, int ms);

#define ALMANAC_FAULT_PAUSE(name, ms) \
	do { \
		if (unlikely(almanac_fault_armed)) \
			almanac_fault_pause(name, ms); \
	} while (0)

#define ALMANAC_FAULT_POINT(name) \
	do { \
		if (unlikely(almanac_fault_armed)) \
			almanac_fault_reached(name); \
	} while (0)

#endif							/* ALMANAC_FAULT_H */
