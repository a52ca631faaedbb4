/*-------------------------------------------------------------------------
 *
 * mirror.h
 *	  Mirrors: the core tables' rows kept in the RocksDB store, for the
 *	  router (router.h) to answer point lookups from.
 *
 * A mirror is a column family of the almanac_store server's store.  Its key
 * is the foreign tables' key (keycodec.h) of the row's key columns:
 *
 *	blocks			block:{chain_id}:{block_number}  = almanac.block_key()
 *	transactions	tx:{chain_id}:{tx_hash as its text}
 *	account_states	account:{chain_id}:{account}:state
 *												 = almanac.account_state_key()
 *	events			event:{chain_id}:{contract_address}:{event_type}:
 *					{block_number}:{log_index}	(router.h: RANGE, RECENT),
 *					block_number and log_index descending (keycodec.h),
 *					so that a contract's events of a type are newest first
 *
 * and its value is the whole heap row, every column, in the value codec's
 * format (valuecodec.h), as a version list (visibility.h) stamped with the
 * writing transaction's id: the statement's snapshot judges a mirror's row
 * exactly as it judges the heap's.  A mirror of account_states holds one key
 * per (chain_id, account): its row with the highest block_number.
 *
 * The definitions are rows of almanac.mirrors; the backend caches each
 * table's descriptor (AlmanacMirror), rebuilt after any invalidation of the
 * table's relcache entry (ALTER TABLE, enable/disable, a change to its
 * almanac.mirrors row), so that per-row and per-lookup work reads no catalog.
 *
 * Writes (trigger.c) are blind puts in the transaction's batch (xact.h:
 * almanac_xact_put_blind), made by row triggers in the same transaction as
 * the heap change.  Nothing reads a mirror its own transaction has written
 * (almanac_mirror_written_by_me): the router reads the heap instead.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_MIRROR_H
#define ALMANAC_MIRROR_H

#include "postgres.h"

#include "access/attnum.h"
#include "lib/stringinfo.h"
#include "storage/lockdefs.h"
#include "storage/proc.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

#include "kv/access.h"

/* the shared counters of a table (router.h) */
typedef struct AlmanacRouterCounters AlmanacRouterCounters;

typedef struct AlmanacMirror
{
	Oid			relid;
	bool		enabled;
	bool		in_sync;		/* and written on this WAL timeline */
	bool		altered;		/* the table's shape differs from the signature */

	/*
	 * The transaction that last wrote the table's row of almanac.mirrors
	 * (enable_mirror, resync, ...), whose writes into the mirror (a
	 * backfill, repairs) a snapshot that does not see it does not see
	 * either, and the one that last wrote the table's row of pg_class (a
	 * TRUNCATE, which empties the heap for every snapshot, older ones
	 * included, but the mirror only for those that see it): see
	 * almanac_mirror_seen_by.
	 */
	TransactionId catalog_xmin;
	TransactionId relation_xmin;
	/* catalog_xmin as the row's xmin column gives it, frozen or not */
	TransactionId catalog_raw_xmin;
	char	   *cfname;
	/*
	 * almanac.mirrors.key_descending: the integer key columns stored in
	 * descending byte order (keycodec.h), comma-separated, as the signature
	 * records them; NULL: none.  table.layout.descending says it per column.
	 */
	char	   *key_order;
	/*
	 * The mirror described as a foreign table layout, so that the key and
	 * value codecs and kv/access.h apply unchanged: every column
	 * is in the value (is_key all false), the key columns in the key too.
	 */
	AlmanacKvTable table;
	AlmanacServerOptions *server;
	AttrNumber	latest_attno;	/* account_states: block_number; else 0 */
	Oid			index_oid;		/* the heap's unique index on key columns
								 * (+ latest column): the heap's lookups */
	int			nkeys;
	Oid		   *key_collations; /* per key column */
	RegProcedure *key_eqprocs;	/* per key column: the btree equality */
	RegProcedure *key_cmpprocs; /* per key column: the btree comparison */
	AlmanacRouterCounters *counters;	/* NULL when shared memory is full */
	/* where this transaction's blind writes go (almanac_mirror_target) */
	LocalTransactionId target_lxid;
	int			target_store;
	rocksdb_column_family_handle_t *target_cf;
	uint32		target_cf_id;
} AlmanacMirror;

/*
 * The table's mirror descriptor, or NULL when it has none (no row in
 * almanac.mirrors, or the extension is not installed).  Valid until the next
 * invalidation is processed; callers use it within one statement.
 */
extern AlmanacMirror *almanac_mirror_lookup(Oid relid);

/*
 * Whether snapshot sees the mirror's state as the catalog gives it: false
 * when the transaction that last changed the mirror's row of almanac.mirrors
 * (an enable_mirror whose backfill wrote the rows changed while the mirror
 * was off, a resync) is not visible to it.  Such a snapshot would read the
 * mirror's rows as they were before those writes, while the heap gives it
 * the rows as they were after the writes the backfill copied: it must read
 * the heap.  The same for the last change of the table's pg_class row: a
 * TRUNCATE (not MVCC-safe: the heap is empty to older snapshots too), but
 * also any ALTER or GRANT, which only makes older snapshots read the heap.
 */
extern bool almanac_mirror_seen_by(AlmanacMirror *m, Snapshot snapshot);

/* as almanac_mirror_lookup, ERROR (42809, naming the table) when none */
extern AlmanacMirror *almanac_mirror_get(Relation rel);

/*
 * What almanac.mirrors.signature records: the row shape, and the key's
 * descending columns (key_order, AlmanacMirror.key_order; NULL or "" for
 * none), so that a mirror written with another row shape or another key
 * byte order is "altered": read from the heap until a whole resync.
 */
extern char *almanac_mirror_signature(Relation rel, const char *key_order);

/* access to the mirror's column family; create: create it if missing */
extern void almanac_mirror_access(AlmanacMirror *m, AlmanacAccess *a, bool create);
/* the same with almanac_access_begin's flags */
extern void almanac_mirror_access_flags(AlmanacMirror *m, AlmanacAccess *a, int flags);

/* key of a heap row's key columns (values/isnull: the whole row) */
extern void almanac_mirror_row_key(AlmanacMirror *m, StringInfo buf,
								   const Datum *values, const bool *isnull);

/*
 * The image the snapshot sees for key, or NULL (no row); *len its length.
 * own_writes: the transaction's buffered writes first (verify, resync);
 * the router reads the store only (see the header).
 */
extern const char *almanac_mirror_read(AlmanacAccess *a, const char *key, size_t klen,
									   Snapshot snapshot, bool own_writes, uint32 *len);

/*
 * The heap's row for a key (key values in key column order), as the
 * snapshot sees it, in slot: by the unique index, the last row by the
 * latest column for a latest mirror.  False when there is none.
 */
extern bool almanac_mirror_heap_lookup(AlmanacMirror *m, Relation rel, Snapshot snapshot,
									   const Datum *keyvalues, TupleTableSlot *slot);

/*
 * The first row, forward or backward, of the heap's unique index with the
 * first n key columns equal to keyvalues, in slot (a slot of the table's
 * own type); false when none.
 */
extern bool almanac_mirror_heap_first(AlmanacMirror *m, Relation rel, Snapshot snapshot,
									  const Datum *keyvalues, int n, bool backward,
									  TupleTableSlot *slot);

/*
 * Call fn for every key of the mirror in [lower, upper) (upper empty: to the
 * end of the mirror's prefix; lower empty: from its start) whose row the
 * snapshot sees, the transaction's buffered writes included, in key order.
 */
typedef void (*AlmanacMirrorRowFn) (void *arg, const char *key, size_t klen,
									const char *image, uint32 len);
extern void almanac_mirror_scan(AlmanacMirror *m, AlmanacAccess *a, StringInfo lower,
								StringInfo upper, Snapshot snapshot,
								AlmanacMirrorRowFn fn, void *arg);

/*
 * The store and column family of the mirror's blind writes, found (and the
 * column family created if missing) by the transaction's first call: a row
 * trigger begins no access per row.  The handle stays valid to the
 * transaction's end (a reader retired by a reopen stays open until then:
 * kv/reader.h), and a mirror's column family is never dropped under it.
 */
extern void almanac_mirror_target(AlmanacMirror *m, int *store,
								  rocksdb_column_family_handle_t **cf, uint32 *cf_id);

/* blind writes of one key: a row image, or its removal */
extern void almanac_mirror_put(AlmanacMirror *m, AlmanacAccess *a, const char *key, size_t klen,
							   const char *image, uint32 len);
extern void almanac_mirror_erase(AlmanacMirror *m, AlmanacAccess *a, const char *key, size_t klen);

/* this transaction has written the table (a statement trigger fired) */
extern void almanac_mirror_note_write(Oid relid);
extern bool almanac_mirror_written_by_me(Oid relid);

/*
 * This transaction rewrote the table's mirror from what snapshot (taken
 * after the lock that keeps the key's or table's writers out) showed of the
 * heap: enable_mirror's backfill and resync (almanac_mirror_sync), TRUNCATE's
 * erasures, a latest mirror's recomputed row.  Such writes, read back from
 * the transaction's buffer, agree with the heap only for a snapshot that
 * sees every transaction that one saw: not a REPEATABLE READ transaction's
 * own snapshot when a writer committed after it, nor the snapshot of the
 * statement that ran enable_mirror when a writer it waited for committed
 * meanwhile.  almanac_mirror_rewritten_after: this transaction made such a
 * rewrite of the table from a snapshot that saw more than this one (the
 * router reads the heap, verify refuses), also when the rewrite wrote no key
 * (the mirror then matched the heap as that newer snapshot saw it, not as
 * this one does).
 */
extern void almanac_mirror_note_rewrite(Oid relid, Snapshot snapshot);
extern bool almanac_mirror_rewritten_after(Oid relid, Snapshot snapshot);

/*
 * A row trigger's write of the table's mirror, in the current command
 * (almanac_mirror_note_write too): almanac_mirror_rewritten_after is then
 * also true for a snapshot of an earlier command, such as a cursor's
 * declared before it, which does not see the heap rows of that write but
 * would read its mirror rows back from the transaction's buffer.
 */
extern void almanac_mirror_note_row_write(Oid relid);

/*
 * ERROR unless snapshot can judge the mirror, i.e. compare it with the heap
 * and find only real differences: it must see the last change of the
 * mirror's definition and of the table (almanac_mirror_seen_by; else 40001:
 * a new transaction can), and no write or rewrite of this transaction may
 * be newer than it (almanac_mirror_rewritten_after; else 55000: after this
 * transaction commits).  what names the caller in the message.
 */
extern void almanac_mirror_require_judge(Relation rel, AlmanacMirror *m, Snapshot snapshot,
										 const char *what);

/* the table, locked in lockmode; ERROR unless the user owns it */
extern Relation almanac_mirror_open_owned(Oid relid, LOCKMODE lockmode);

/* UPDATE almanac.mirrors SET <set> WHERE relid = $1 ($2: signature, may be NULL) */
extern void almanac_mirror_catalog_update(Oid relid, const char *set, const char *signature);

/*
 * The same, only if the row is still the version whose xmin column is
 * raw_xmin (InvalidTransactionId: any); false when it is not (the row
 * changed since a descriptor was read from it).
 */
extern bool almanac_mirror_catalog_update_if(Oid relid, const char *set, const char *signature,
											 TransactionId raw_xmin);

/* ERROR unless the table's mirror triggers are all there, enabled ALWAYS */
extern void almanac_mirror_require_triggers(Relation rel);

/* trigger.c: forget the latest mirrors' locks at (sub)transaction abort or end */
extern void almanac_mirror_locks_forget(bool subxact);

extern void almanac_mirror_init(void);

#endif							/* ALMANAC_MIRROR_H */
