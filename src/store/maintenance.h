/*-------------------------------------------------------------------------
 *
 * maintenance.h
 *	  The store owner's maintenance duties, run between requests, and the
 *	  SQL functions that look after them.
 *
 * Reader directories.  Every backend that reads a store opens a secondary
 * instance in a directory of its own, almanac/secondary/<store>.<pid> under
 * the data directory, and removes it when it exits (kv/reader.c).  A backend
 * that dies without running its exit callbacks (SIGKILL, and every backend
 * on a crash restart) leaves it behind.  Owners remove the directories of
 * backends that are gone: when an owner starts, and then every
 * almanac.reader_cleanup_interval.
 *
 * Freeze sweep.  A version is judged with the commit log until it is
 * frozen, and VACUUM truncates the commit log up to the oldest datfrozenxid
 * of the cluster: a version whose xid falls below that can no longer be
 * judged.  The owner freezes the older versions of a key whenever it writes
 * the key (almanac_versions_apply), but a key written once and never again
 * would keep its writer's xid forever.  So the owner also sweeps: it walks
 * every column family, a bounded number of keys per step between requests,
 * and prunes and freezes each value as a write would
 * (almanac_versions_freeze).
 *
 * The store's freeze horizon says how far that went: no version of an older
 * transaction is left unfrozen.  It is the xmin horizon at the start of the
 * last completed pass, kept under a reserved key of the default column
 * family.  That bound needs no bookkeeping on the write path: every
 * transaction that can still write was running when the pass started, or
 * started later, so its xid is not older than that horizon.  A pass starts
 * when the freeze horizon is more than almanac.freeze_sweep_age transactions
 * old and the xmin horizon has moved at least half that far beyond it (else
 * a pass could freeze little: a long-running transaction holds it back), or
 * when almanac.freeze_sweep() asks for one, or at once when the store has
 * no freeze horizon yet (a new store, or one written before the sweep).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_MAINTENANCE_H
#define ALMANAC_MAINTENANCE_H

#include <rocksdb/c.h>

/* settings, defined by almanac_maintenance_init (from _PG_init) */
extern int	almanac_freeze_sweep_age;
extern int	almanac_reader_cleanup_interval;	/* seconds */
extern int	almanac_idle_flush_delay;	/* milliseconds, owner.c */

extern void almanac_maintenance_init(void);

/*
 * Owner side, called by owner.c: after the store is open; in the main loop
 * after each round of requests (returns how long the owner may sleep, in
 * milliseconds: 0 while a sweep is in progress); for ALMANAC_REQ_FREEZE.
 */
extern void almanac_maintenance_start(int store);
extern long almanac_maintenance_step(void);
extern void almanac_freeze_sweep_request(void);

#endif							/* ALMANAC_MAINTENANCE_H */
