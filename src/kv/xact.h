/*-------------------------------------------------------------------------
 *
 * xact.h
 *	  Transaction coordination: RocksDB writes commit with the PostgreSQL
 *	  transaction, both or neither.
 *
 * A transaction's writes are intents (codec/visibility.h) buffered in a RocksDB
 * WriteBatchWithIndex, so that the transaction reads its own writes.  Blind
 * writes (the mirrors') are kept apart, in the order written, as the next
 * send's payload, and go into the batch only when something reads it, a
 * subtransaction writes for the first time, or a write that is not blind
 * follows.  A
 * statement buffers its writes in a batch of its own, merged into the
 * transaction's batch when the statement's modify node ends, so a scan never
 * sees the rows its own statement writes (and never iterates a batch that
 * is being modified).
 *
 * At XACT_EVENT_PRE_COMMIT, before PostgreSQL writes its commit record, the
 * batch goes to the store owner, which checks it for conflicts and makes it
 * durable; a refusal is an ERROR that aborts the transaction.  If the
 * transaction then fails to commit, or the server crashes first, its
 * versions belong to a transaction the commit log never marks committed,
 * and no snapshot sees them.  Every intent is stamped with the writing
 * (sub)transaction's id, so that id is assigned and the transaction writes a
 * commit record even when it writes nothing but foreign tables.
 *
 * Mirror writes are posted to the owner without waiting once they reach
 * almanac.mirror_send_size (almanac_xact_put_blind, almanac_xact_settle).
 * A batch that grows past almanac.write_batch_size is sent to the owner
 * early, in chunks: at the end of the statement that made it grow, and an
 * INSERT or COPY sends its own batch whenever it grows that large, so a
 * large COPY never holds all its rows in memory.  Iterators read a copy of
 * the transaction's writes in their range, taken when they start reading, so
 * shipping or ROLLBACK TO SAVEPOINT never pulls a batch from under a cursor.
 * ROLLBACK TO SAVEPOINT undoes the batch's entries since the savepoint;
 * chunks already sent carry the aborted subtransaction's id and so are
 * invisible to everyone.  A subtransaction's save point in the batch is
 * recorded when it first writes, never when it starts: nothing here raises
 * in SUBXACT_EVENT_START_SUB, which PL/pgSQL does not survive (xact.c,
 * savepoints).  The batch keeps one entry per key, so a write
 * never replaces there an unsent write of another level that must outlive
 * it (an outer level's, a released sibling's): that one is sent first, and
 * the owner keeps it under the newer version (xact.c,
 * replaces_outliving_write).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_XACT_H
#define ALMANAC_XACT_H

#include <rocksdb/c.h>

#include "storage/dsm.h"
#include "codec/visibility.h"

extern int	almanac_write_batch_size;
extern int	almanac_mirror_send_size;

extern void almanac_xact_init(void);

/* the transaction's batch for this store, or NULL when it wrote nothing */
extern rocksdb_writebatch_wi_t *almanac_xact_batch(int store);

/* the write a batch holds for key (palloc'd), or NULL; batch may be NULL */
extern char *almanac_batch_lookup(rocksdb_writebatch_wi_t *batch,
								  rocksdb_column_family_handle_t *cf,
								  const char *key, size_t klen, size_t *vlen);

/* a scan's private copy of the transaction's writes in cf within [lower, upper) */
extern rocksdb_writebatch_wi_t *almanac_xact_batch_copy(int store, uint32 cf_id,
														const char *lower, size_t lower_len,
														const char *upper, size_t upper_len);

/* a statement's batch: created by the modify node, merged at its end */
extern rocksdb_writebatch_wi_t *almanac_stmt_batch_create(void);
/*
 * may take over *stmt as the transaction's batch, setting *stmt to NULL;
 * cid and query (its executor state, or NULL) are the statement's: while a
 * reader with an older snapshot is open, the writes its keys replace are
 * kept for it (kv/nested.h)
 */
extern void almanac_stmt_batch_merge(int store, rocksdb_writebatch_wi_t **stmt,
									 rocksdb_column_family_handle_t *cf, uint32 cf_id,
									 CommandId cid, const void *query, bool ship_all);

/* a statement's batch, shipped before the statement ends if it is large */
extern bool almanac_stmt_batch_ship_early(int store, rocksdb_writebatch_wi_t **stmt,
										  rocksdb_column_family_handle_t *cf,
										  uint32 cf_id, CommandId cid, const void *query);

/*
 * Buffer a write of 'key' in the statement batch, combining it with an
 * earlier write of the same key by this statement or transaction so that
 * the owner checks it against what the transaction first read.  prev is
 * that earlier write, as almanac_xact_buffered returned it (NULL: none);
 * the caller usually looked it up already.  If prev must outlive a rollback
 * of the writing subtransaction, the transaction's batch is sent first (the
 * running statement goes on seeing it) and the write is not combined; not
 * when prev_in_stmt (almanac_xact_buffered found prev in a statement batch).
 */
extern void almanac_xact_put(int store, rocksdb_writebatch_wi_t *stmt,
							 rocksdb_column_family_handle_t *cf,
							 const char *key, size_t klen, AlmanacIntent *intent,
							 const char *prev, size_t prev_len, bool prev_in_stmt);

/*
 * A blind write of key, for the mirrors (mirror/mirror.h): an UPSERT of image, or
 * with image NULL an ERASE, stamped with the current (sub)transaction and
 * put straight into the transaction's batch (mirror writes come from row
 * triggers, one row at a time, and no scan of this statement reads them:
 * the router does not read a mirror its transaction writes).  The owner
 * applies blind intents without a conflict or duplicate check, so they never
 * fail a transaction the heap accepted; the heap's own locks order the
 * writers of a key.  Once the batch has grown past almanac.mirror_send_size
 * it is posted to the owner without waiting (almanac_xact_settle), past
 * almanac.write_batch_size (if smaller) as any other.
 */
extern void almanac_xact_put_blind(int store, rocksdb_column_family_handle_t *cf,
								   uint32 cf_id, const char *key, size_t klen,
								   const char *image, uint32 image_len);

/*
 * Post a bulk-load chunk whose versions xid writes (kv/bulk.h) to the owner,
 * after the transaction's buffered writes; almanac_store_ingest_wait
 * answers it.
 */
extern void almanac_xact_ingest_post(int store, FullTransactionId xid,
									 dsm_segment *seg, Size payload_len);

/*
 * Has the transaction sent writes to store's owner while it went on (a
 * large batch, a bulk-load chunk)?  Before each such send the accesses open
 * then stop catching up (kv/access.h, almanac_access_before_send), and the
 * rows a statement sent must stay out of the instance they read: from then
 * on, until the transaction ends, a key lock reads the newest value from
 * almanac_lock_reader instead of catching the backend's reader up.
 */
extern bool almanac_xact_sent_mid_xact(int store);

/*
 * Wait until the owner has applied the mirror writes this transaction sent
 * to store without waiting (almanac.mirror_send_size), and log them; raises
 * the owner's error.  Every read of the store calls it first (the reader's
 * catch-up, kv/reader.c): those writes are in neither the transaction's
 * batch nor the store until then.
 */
extern void almanac_xact_settle(int store);
/*
 * The write this transaction has buffered for key, if any (palloc'd): in
 * stmt (the statement's batch, may be NULL), else in the batches of the
 * statements the running one runs inside (kv/nested.h), else in the
 * transaction's batch.  *in_stmt: not found in the transaction's batch.
 */
extern char *almanac_xact_buffered(int store, rocksdb_writebatch_wi_t *stmt,
								   rocksdb_column_family_handle_t *cf, uint32 cf_id,
								   const char *key, size_t klen, size_t *vlen,
								   bool *in_stmt);

#endif							/* ALMANAC_XACT_H */
