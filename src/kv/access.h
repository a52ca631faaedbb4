/*-------------------------------------------------------------------------
 *
 * access.h
 *	  Reading and writing the rows of a table kept in a RocksDB column
 *	  family: the one read/write path of the foreign data wrapper (fdw/)
 *	  and of anything else that answers queries from RocksDB.
 *
 * A table kept in RocksDB (AlmanacKvTable) is a column family, a key layout
 * (codec/keycodec.h) that turns the key columns into a key, and a value
 * image (codec/valuecodec.h) of the other columns.  Each key's stored value
 * is a version list (codec/visibility.h); a transaction's own writes are
 * intents buffered in its write batch (kv/xact.h).
 *
 * What a caller sees, for every function below:
 *   - Reads run on the backend's secondary instance of the store
 *     (kv/reader.h), caught up once when the access begins, which must come
 *     after the statement's snapshot was taken.  An access begun with
 *     ALMANAC_ACCESS_POINT reads as if it had been, but catches up lazily:
 *     a point read (Get, MultiGet, a key lock's latest value) catches up
 *     first only if the owner's write log names its key since the reader's
 *     last catch-up (almanac_reader_catch_up_for_key), and the first
 *     iteration catches up whatever the keys.  Its reads use the reader's
 *     current instance, until the transaction sends writes to the owner
 *     while the access is open (almanac_access_before_send): the reader
 *     catches up just before, and the access reads that instance from then
 *     on, without catching up, since it must not see what its own statement
 *     sent.  The transaction's buffered
 *     writes come first, then (for point reads, before any catch-up) the
 *     shared row cache (kv/sharedcache.h), then the backend's row cache
 *     (kv/rowcache.h), then RocksDB.  The snapshot the caller passes judges which version is the
 *     row; a buffered intent is the transaction's own row.
 *   - A key that is not a row of the table has no row: the owner's catch-up
 *     marker, or a key of another table sharing the column family and prefix
 *     (another key_attribute).
 *   - Memory: results (keys, values, tuple images, decoded datums) are
 *     palloc'd in CurrentMemoryContext unless said otherwise; a caller that
 *     reads many rows resets a context of its own per row.
 *   - RocksDB objects (read options, iterators, pinned slices, batches) are
 *     released on every path, ERROR included: an access registers a reset
 *     callback on the memory context it was begun in, and a writer one on
 *     the context it was begun in.  No pinned slice is held while anything
 *     can raise.
 *   - Errors: a RocksDB failure is ERROR 58030 (io_error, kv/rocks.h); a
 *     key that does not decode with the table's layout is XX001; out of
 *     memory is 53200.
 *     Write conflicts are raised here only for what the backend can see
 *     (a duplicate key, 23505; a row gone since the snapshot, 40001); the
 *     owner checks the rest at commit.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_ACCESS_H
#define ALMANAC_ACCESS_H

#include "access/transam.h"
#include "executor/tuptable.h"
#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "nodes/lockoptions.h"
#include "storage/lockdefs.h"
#include "utils/palloc.h"
#include "utils/rel.h"
#include "utils/snapshot.h"

#include <rocksdb/c.h>

#include "codec/keycodec.h"
#include "codec/valuecodec.h"
#include "codec/visibility.h"
#include "fdw/option.h"
#include "kv/reader.h"

/*
 * A table kept in a RocksDB column family: its layout, resolved once and
 * read-only while in use.  The wrapper fills it from a foreign table's
 * options (almanac_table_open, fdw/fdw.h); another caller fills it the same
 * way for its own tables.
 */
typedef struct AlmanacKvTable
{
	Relation	rel;			/* its columns; its name in messages */
	AlmanacTableOptions *opts;	/* column_family, key_*, upsert, raw */
	AlmanacServerOptions *server;	/* the store: path and tuning */
	AlmanacKeyLayout layout;
	AttrNumber *keyattrs;		/* per key column, in key order */
	bool	   *is_key;			/* per attribute: stored in the key, not the value */
	int32	   *key_pad;		/* per key column: the typmod of char(n), to pad
								 * it back to n on read, or -1 */
	AlmanacValueLayout *values; /* the row layout values are written with
								 * (NULL for a raw table) */
	/* a raw table (option raw): its columns "key" and "value" (bytea) */
	AttrNumber	raw_value_attno;
} AlmanacKvTable;

/*
 * An open access to a table's column family: for one scan, one modify node,
 * one ANALYZE pass.  The fields are the access's own; callers read t, store
 * and cf (NULL: the column family was never created, so the table is empty)
 * and change none of them.  A point access may have no instance yet (db
 * NULL; see almanac_access_begin): its cf is then ALMANAC_CF_DEFERRED, not
 * NULL and not a handle, so a caller may compare cf with NULL and must pass
 * it nowhere (the functions below open the instance when they need it).
 */
typedef struct AlmanacAccess
{
	AlmanacKvTable *t;
	int			store;
	AlmanacReader *reader;
	/*
	 * The reader's instance when the access began, and its handle of the
	 * column family: a later reopen (another table's new column family)
	 * retires the instance but keeps it open, and a handle must be used
	 * with its own instance.
	 */
	rocksdb_t  *db;				/* NULL: deferred, not opened yet */
	rocksdb_column_family_handle_t *cf; /* NULL: not created yet, so empty;
										 * ALMANAC_CF_DEFERRED: exists, no
										 * handle yet */
	uint32		cf_id;
	rocksdb_readoptions_t *ropts;	/* the iterator's */
	rocksdb_iterator_t *iter;	/* the open iteration, if any */
	rocksdb_writebatch_wi_t *batch_copy;	/* its copy of the transaction's
											 * writes */
	MemoryContext cxt;			/* where the access lives */
	/* the open iteration's range [lower, upper) (made by the first) and direction */
	StringInfoData lower;
	StringInfoData upper;
	int			direction;
	bool		pending_step;	/* the iterator is on the entry returned last */
	Datum	   *keyvalues;		/* scratch: a decoded key */
	/*
	 * Set by a caller that reads only some columns (almanac_access_need),
	 * else NULL: per attribute, whether almanac_row_to_slot leaves it NULL
	 * (unneeded), and whether it does not decode it from the value (skip:
	 * unneeded or a key column, which comes from the key).
	 */
	bool	   *unneeded;
	bool	   *skip;
	bool		need_key;		/* with them: some key column is needed */
	/*
	 * Begun with ALMANAC_ACCESS_POINT and not caught up yet: each read
	 * catches the reader up only if its key may have been written since the
	 * last catch-up (stopped by almanac_access_before_send).
	 */
	bool		lazy;
	/* begun and not released: in the list almanac_access_before_send reads */
	bool		live;
	dlist_node	live_node;
	struct PortalData *portal;	/* the portal running when it began, or NULL */
	bool		pins;			/* its statement sent writes: keeps the reader
								 * pinned until released */
	MemoryContextCallback release;	/* frees ropts, iter and batch_copy */
} AlmanacAccess;

/* a->cf of an access whose instance is not open yet: never a handle */
extern char almanac_cf_deferred_marker;
#define ALMANAC_CF_DEFERRED ((rocksdb_column_family_handle_t *) &almanac_cf_deferred_marker)

/*
 * Only the attributes in needed (a pull_varattnos set: attno -
 * FirstLowInvalidHeapAttributeNumber; a whole-row reference means every
 * one) are to be read into slots from now on; the others are NULL.
 */
extern void almanac_access_need(AlmanacAccess *a, Bitmapset *needed);

/* flags of almanac_access_begin */
#define ALMANAC_ACCESS_CREATE		0x01	/* a writer: create the column
											 * family if missing */
#define ALMANAC_ACCESS_NO_CATCH_UP	0x02	/* blind writes only: the reader
											 * is not caught up */
#define ALMANAC_ACCESS_POINT		0x04	/* mostly point reads: catch up
											 * per key, when needed */

/*
 * Begin an access to t's table: attach the store (starting its owner if
 * needed), catch the backend's reader up (unless ALMANAC_ACCESS_NO_CATCH_UP),
 * find the column family (with ALMANAC_ACCESS_CREATE, ask the owner to
 * create it if missing).  An access begun with ALMANAC_ACCESS_POINT alone,
 * of a column family the store's owner lists (almanac_store_cf_id), opens
 * no instance: the first read that needs one (a key the shared row cache
 * does not answer, a buffered write to look up, an iteration, a key lock, a
 * writer) opens the reader's, after the statement's snapshot as a catch-up
 * would be; until then it reads only the shared row cache, by the listed
 * id.  a's RocksDB objects are released when
 * CurrentMemoryContext is reset or deleted, or earlier by
 * almanac_access_release.  t must live as long as a.
 */
extern void almanac_access_begin(AlmanacAccess *a, AlmanacKvTable *t, int flags);

/* release a's RocksDB objects now (idempotent; the access may not be used again) */
extern void almanac_access_release(AlmanacAccess *a);

/*
 * Before the transaction sends writes to store's owner while it goes on
 * (kv/xact.c).  The store's accesses of the running statement (begun while
 * a portal that is running now ran, or outside any portal) must not see
 * them if they are the statement's own (own): its lazy ones catch up, the
 * reader once, and read that instance from then on without catching up,
 * and until they are all released the reader is not caught up in place
 * (almanac_reader_pin).  Accesses of a cursor that is not running are left
 * alone: a scan reads the transaction's shipped writes as of its first
 * FETCH (sql/fdw_pushdown.sql; its buffered writes as its snapshot sees
 * them, kv/nested.h).  Not own (the transaction's
 * earlier statements' writes, which the caller catches the reader up with
 * after the send): the reader is unpinned.
 */
extern void almanac_access_before_send(int store, bool own);

/* ---- keys ---- */

/*
 * Append to buf the key of the first n key values (almanac_key_encode with
 * the table's layout; prefix_only: the prefix of all keys that start with
 * them, with the separator), or for a raw table the bytea value itself
 * (n = 1) or nothing (n = 0).  Values must be in the key domain
 * (almanac_key_value_in_domain).
 */
extern void almanac_kv_key(AlmanacKvTable *t, StringInfo buf, int n, const Datum *values,
						   bool prefix_only);

/* upper = the exclusive end of the keys starting with prefix; empty: no end */
extern void almanac_prefix_end(StringInfo prefix, StringInfo upper);

/* byte order of keys, as RocksDB's default comparator */
extern int	almanac_key_cmp(const char *a, size_t alen, const char *b, size_t blen);

/*
 * Sort n keys into byte order and drop duplicates, in place; returns how
 * many remain (the form almanac_access_lookup_many wants).
 */
extern int	almanac_keys_sort_unique(int n, char **keys, size_t *klens);

/*
 * Is key a row key of the table?  False for the owner's catch-up marker and
 * for a key of another table that shares the column family and prefix but
 * has another key_attribute (account:eth:0xab:code is not a row of the
 * table of account:eth:0xab:state).
 */
extern bool almanac_kv_owns_key(AlmanacKvTable *t, const char *key, size_t klen);

/* ---- stored values and rows ---- */

/*
 * The row a stored value (a version list) or a buffered intent holds for
 * snapshot: false when the snapshot sees none (no version it sees, or a
 * deletion).  *tuple points into val, and nothing is allocated; *xid
 * receives the version's writer (invalid for a buffered intent): what an
 * update or delete of the row is based on.
 */
extern bool almanac_value_row(const char *val, size_t vlen, Snapshot snapshot,
							  const char **tuple, uint32 *tuple_len,
							  FullTransactionId *xid);

/*
 * Store the row of key and tuple image in slot as a virtual tuple (datums
 * palloc'd in CurrentMemoryContext).  XX001 if the key does not decode with
 * the table's layout.
 */
extern void almanac_row_to_slot(AlmanacAccess *a, TupleTableSlot *slot,
								const char *key, size_t klen,
								const char *tuple, uint32 tuple_len);

/*
 * The row of key that snapshot sees, in slot (cleared when there is none):
 * the transaction's buffered write of key, else the stored value (row cache,
 * then a Get, kept in the row cache).  Returns whether there is one.
 */
extern bool almanac_access_get_row(AlmanacAccess *a, Snapshot snapshot,
								   const char *key, size_t klen, TupleTableSlot *slot);

/*
 * The value of key: the transaction's buffered write (of the statement's
 * batch stmt first, if not NULL), else the stored value; NULL when there is
 * none.  keep: keep a stored value that a Get found in the row cache (reads
 * do; a write does not, as the key is about to change).
 */
extern char *almanac_access_get(AlmanacAccess *a, rocksdb_writebatch_wi_t *stmt,
								const char *key, size_t klen, size_t *vlen, bool keep);

/*
 * The stored value of key, without the transaction's buffered writes (a
 * reader that must not see them: the router's, whose transaction did not
 * write the table); NULL when there is none.  keep as almanac_access_get.
 */
extern char *almanac_access_get_stored(AlmanacAccess *a, const char *key, size_t klen,
									   size_t *vlen, bool keep);

/*
 * The values of n keys, sorted and distinct (almanac_keys_sort_unique):
 * values[i] is key i's buffered write or stored value, or NULL, vlens[i] its
 * length.  One MultiGet reads the keys neither the transaction's buffer nor
 * the row cache answers, and its results are kept in the row cache.  Turn
 * each into a row with almanac_access_value_to_slot.
 */
extern void almanac_access_lookup_many(AlmanacAccess *a, int n, char *const *keys,
									   const size_t *klens, char **values, size_t *vlens);

/*
 * The row that snapshot sees in a value a lookup of key returned, in slot
 * (datums in CurrentMemoryContext); false, and slot cleared, when there is
 * none or key is not a row key of the table.
 */
extern bool almanac_access_value_to_slot(AlmanacAccess *a, Snapshot snapshot,
										 const char *key, size_t klen,
										 const char *val, size_t vlen,
										 TupleTableSlot *slot);

/* ---- iterating a key range ---- */

/* flags of almanac_access_iter_begin */
#define ALMANAC_ITER_BACKWARD		0x01	/* from the end of the range */
#define ALMANAC_ITER_STORE_ONLY		0x02	/* without the transaction's writes */
#define ALMANAC_ITER_NO_FILL_CACHE	0x04	/* a one-off pass: don't evict the
											 * block cache's working set */

/*
 * Position an iteration over the keys in [lower, upper) (upper_len 0: to
 * the end of the column family), in byte order or backward, over the store
 * and a copy of the transaction's buffered writes in the range taken now
 * (so the caller's later writes, shipping and ROLLBACK TO SAVEPOINT never
 * change what it reads).  Ends an iteration a had open.  lower and upper
 * are copied.
 */
extern void almanac_access_iter_begin(AlmanacAccess *a, const char *lower, size_t lower_len,
									  const char *upper, size_t upper_len, int flags);

/* one key of an iteration, valid until the next call */
typedef struct AlmanacKvEntry
{
	const char *key;
	size_t		klen;
	bool		visible;		/* the snapshot sees a row at key */
	const char *tuple;			/* if visible: the row's image, for */
	uint32		tuple_len;		/* almanac_row_to_slot */
	FullTransactionId xid;		/* its writer, as almanac_value_row */
	const char *value;			/* the stored value (version list or */
	size_t		vlen;			/* intent) the above were judged from */
} AlmanacKvEntry;

/*
 * The next row key of the table in the range (catch-up markers and other
 * tables' keys skipped), judged by snapshot, or false at the end.  The
 * version list is parsed in CurrentMemoryContext: reset it between calls.
 * Checks for interrupts.
 */
extern bool almanac_access_iter_next(AlmanacAccess *a, Snapshot snapshot, AlmanacKvEntry *e);

/*
 * The next row the snapshot sees, in slot, its datums in rowcxt (reset for
 * each key read); false, and slot cleared, at the end.
 */
extern bool almanac_access_iter_next_row(AlmanacAccess *a, Snapshot snapshot,
										 TupleTableSlot *slot, MemoryContext rowcxt);

/* end the iteration (idempotent) */
extern void almanac_access_iter_end(AlmanacAccess *a);

/*
 * The image of the last row in [lower, upper) that snapshot sees, from the
 * store only (none of the transaction's writes), copied into
 * CurrentMemoryContext; false if it sees none.  The same answer as a
 * backward ALMANAC_ITER_STORE_ONLY iteration stopping at its first visible
 * entry, which it is the first time: the stored values that iteration
 * judged (up to the first visible one, a few at most) are kept per range
 * in backend memory, and while the reader's instance holds the same data
 * (almanac_reader_epoch unchanged: nothing was committed to the store
 * since), a later call judges those values again with its own snapshot
 * instead of iterating.  Judging again is what makes it right for any
 * snapshot: a version invisible to the first caller (committed after its
 * snapshot) can be visible to the next, and the other way round.  Only
 * when none of the kept values is visible and the iteration had not
 * reached the range's start does it iterate again.  Ends an iteration a
 * had open.
 */
extern bool almanac_access_last_row(AlmanacAccess *a, const char *lower, size_t lower_len,
									const char *upper, size_t upper_len, Snapshot snapshot,
									const char **tuple, uint32 *tuple_len);

/* ---- key locks (kv/keylock.h) ---- */

/* a key as it is once locked */
typedef struct AlmanacKeyNow
{
	bool		live;			/* there is a row */
	const char *tuple;			/* if live: its image, for almanac_row_to_slot */
	uint32		tuple_len;
	FullTransactionId xid;		/* the newest version's writer: what a write
								 * of the key is based on (invalid: none, or
								 * the transaction's own buffered write) */
	bool		changed;		/* another transaction committed a version
								 * of the key that 'snapshot' does not see */
	bool		seen_live;		/* if changed: 'snapshot' sees a row ... */
	const char *seen_tuple;		/* ... with this image */
	uint32		seen_tuple_len;
} AlmanacKeyNow;

/*
 * Lock key in mode (a row-lock strength: kv/keylock.h) for the rest of the
 * transaction, then read it as it is now: the transaction's own buffered
 * write if there is one, else the newest committed version (the reader
 * catches up, and a fresh snapshot judges it), which no other key-locking
 * transaction can change until this one ends (in AccessShareLock, FOR KEY
 * SHARE's, none can delete it: others may update its other columns).
 * 'changed' says whether that differs from what snapshot sees; the
 * caller then follows the isolation level (almanac_concurrent_update_error
 * under REPEATABLE READ and SERIALIZABLE; the new row under READ
 * COMMITTED, as a heap UPDATE acts on the newest version of its row).
 * wait: LockWaitBlock waits (lock_timeout, deadlock detection: 55P03,
 * 40P01), LockWaitError raises 55P03 at once, LockWaitSkip returns false.
 * now's pointers point into memory of CurrentMemoryContext.
 */
extern bool almanac_access_lock_key(AlmanacAccess *a, const char *key, size_t klen,
									LOCKMODE mode, LockWaitPolicy wait, Snapshot snapshot,
									AlmanacKeyNow *now);

/* 40001: another transaction committed a row of t this one read, since its snapshot */
extern void almanac_concurrent_update_error(AlmanacKvTable *t) pg_attribute_noreturn();

/* ---- writing ---- */

/*
 * The writes of one statement to one table: intents in a statement batch,
 * merged into the transaction's batch at almanac_writer_end (kv/xact.h), so
 * that a failed statement leaves nothing behind and a scan never sees its
 * own statement's rows.  The batch is freed with the memory context the
 * writer was begun in, ERROR included.
 */
typedef struct AlmanacKvWriter
{
	AlmanacAccess *a;			/* begun for_write */
	rocksdb_writebatch_wi_t *stmt;
	bool		shipped_early;	/* chunks of the batch went to the owner */
	/* the buffered write almanac_writer_key_visible found for 'looked_up' */
	StringInfoData looked_up;
	bool		have_looked_up;
	char	   *buffered;
	size_t		buffered_len;
	bool		buffered_in_stmt;	/* found in a statement batch */
	CommandId	cid;			/* the statement's command id */
	const void *query;			/* the statement's executor state, or NULL */
	bool		nested_open;	/* counted open in nested.h */
	MemoryContextCallback cleanup;
} AlmanacKvWriter;

/*
 * cid: the writing statement's command id (its EState's es_output_cid).
 * Not the current one: a writer begun lazily (the partition a row is first
 * routed to) begins after commands the statement triggered may have moved
 * the command counter on, and with their id it would count as one of them.
 * query: the statement's executor state (NULL: none), which tells its own
 * scans from older readers (kv/nested.h).
 */
extern void almanac_writer_begin(AlmanacKvWriter *w, AlmanacAccess *a, CommandId cid,
								 const void *query);

/*
 * Whether snapshot sees a live row at key (through the statement's and the
 * transaction's writes), and in *xid the writer of the version it sees: the
 * version a write of key is based on.
 */
extern bool almanac_writer_key_visible(AlmanacKvWriter *w, Snapshot snapshot,
									   const char *key, size_t klen,
									   FullTransactionId *xid);

/*
 * almanac_access_lock_key for a write of key (in mode, the write's strength:
 * kv/keylock.h; waiting), through the statement's and the transaction's
 * writes; the next almanac_writer_put of key combines with the buffered
 * write found.
 */
extern void almanac_writer_lock_key(AlmanacKvWriter *w, const char *key, size_t klen,
									LOCKMODE mode, Snapshot snapshot, AlmanacKeyNow *now);

/*
 * Buffer an intent of kind for key, stamped with the current
 * (sub)transaction (which gets an xid), based on the version 'expected'
 * (almanac_writer_key_visible), with the row image tuple (none for a
 * delete); combined with an earlier write of key by this transaction.
 */
extern void almanac_writer_put(AlmanacKvWriter *w, const char *key, size_t klen,
							   AlmanacIntentKind kind, FullTransactionId expected,
							   const char *tuple, uint32 tuple_len);

/*
 * Write the row image of a new row at key, once the key is locked, if no
 * row is there (committed now, or the transaction's own, earlier in this
 * statement too).  If one is and the table is not upsert: with
 * skip_existing (ON CONFLICT DO NOTHING) nothing is written and false
 * returned, else 23505.  An upsert table's row is overwritten.  True when
 * the row was written.
 */
extern bool almanac_writer_insert(AlmanacKvWriter *w, const char *key, size_t klen,
								  const char *image, uint32 image_len, bool skip_existing);

/* did this statement write key already (in the part of its batch it still holds)? */
extern bool almanac_writer_wrote(AlmanacKvWriter *w, const char *key, size_t klen);

/*
 * Did a command this statement triggered (a volatile function it calls, a
 * BEFORE ROW trigger) write key after the statement began?  An UPDATE or
 * DELETE of such a row is refused, as the heap's is (nested.h).
 */
extern bool almanac_writer_written_later(AlmanacKvWriter *w, const char *key, size_t klen);

/* after each row: a batch grown past almanac.write_batch_size goes to the owner now */
extern void almanac_writer_row_done(AlmanacKvWriter *w);

/* the statement's writes become the transaction's; the writer is done */
extern void almanac_writer_end(AlmanacKvWriter *w);

#endif							/* ALMANAC_ACCESS_H */
