/*-------------------------------------------------------------------------
 *
 * bulk.h
 *	  Bulk load: COPY FROM into a foreign table as sorted SST files that the
 *	  store owner writes and ingests, instead of one intent per row.
 *
 * The per-row write path checks every row against the store, buffers it as
 * an intent and has the owner merge it into the key's version list.  When a
 * COPY loads keys the store has never held (new blocks of a chain, a table's
 * first load), all of that reduces to a constant: every key gets a version
 * list of one version, written by this (sub)transaction.  So the backend
 * encodes each row's key and stored value into a chunk in dynamic shared
 * memory (4MB, or almanac.write_batch_size if smaller), and posts the full
 * chunk to the owner
 * without waiting for it: the owner sorts it, writes it into an SST file in
 * the store's file format (almanac_store_file_format) and ingests it, while
 * the backend reads the next chunk's rows.  At most one chunk is with the
 * owner at a time; the statement waits for the last one before it ends.
 *
 * The owner ingests a chunk only if none of its keys exists in the column
 * family with a version that is not aborted: not as a live row, not as an
 * old or an uncommitted version, so there is nothing to check or merge (the
 * value of a key whose versions all aborted, as after a failed load, is
 * replaced: a write would drop them).  (One seek answers for a chunk
 * whose key range is empty, the common case of a first load or of new
 * blocks; otherwise a MultiGet of its keys, mostly bloom filter probes.)  If
 * one exists it refuses, and the chunk's rows take the per-row path (the
 * fallback callback), as do all later rows of the statement.  The
 * transaction's earlier buffered writes are sent to the owner before a
 * chunk, so its check sees them.
 *
 * Visibility is the same as for every other write: each version carries the
 * writing (sub)transaction's id, which is in durable WAL before the chunk is
 * posted (kv/xact.h), and the commit log judges it.  A chunk ingested for a
 * transaction that aborts, or for a subtransaction rolled back to its
 * savepoint, holds versions nobody sees, pruned like any aborted version.
 *
 * Two rows of one chunk with the same key are 23505 (raised by the owner),
 * or for an upsert table the later one wins; a key repeated in a later
 * chunk exists when that chunk is checked, so it takes the per-row path,
 * which has the same outcome.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_BULK_H
#define ALMANAC_BULK_H

#include "kv/access.h"

extern bool almanac_bulk_copy;

typedef struct AlmanacBulk AlmanacBulk;

/* a row the owner refused to ingest: key and value-codec image */
typedef void (*AlmanacBulkFallback) (void *arg, const char *key, size_t klen,
									 const char *image, uint32 image_len);

extern void almanac_bulk_init(void);

/*
 * In CurrentMemoryContext, for the rows of one COPY into a's table; NULL
 * (the rows take the per-row path) while a snapshot of the transaction
 * older than the COPY is open (kv/nested.h)
 */
extern AlmanacBulk *almanac_bulk_begin(AlmanacAccess *a, AlmanacBulkFallback fallback,
									   void *arg);

/*
 * Add a row.  Returns false once a chunk was refused: its rows, and those
 * buffered after it, went through the fallback, almanac_bulk_end was
 * called, and the caller writes this row and the statement's further rows
 * itself.
 */
extern bool almanac_bulk_add(AlmanacBulk *b, const char *key, size_t klen,
							 const char *image, uint32 image_len);

/* load the rows still buffered and wait for the owner */
extern void almanac_bulk_end(AlmanacBulk *b);

/* the owner's side, almanac_owner_ingest, is in store/owner.h (store/bulk.c) */

#endif							/* ALMANAC_BULK_H */
