/*-------------------------------------------------------------------------
 *
 * owner.h
 *	  The store owner: the background worker that opens a store's RocksDB
 *	  primary instance, its only writer, and serves the requests backends
 *	  post (store/store.h).  This header is what the worker and its helpers
 *	  share: maintenance.c (reader directories, the freeze sweep) and
 *	  bulk.c (ingesting bulk-load chunks) run inside the owner, on its open
 *	  store, and include nothing of the executor.
 *
 * Everything here runs in the owner process only.  An ERROR raised while
 * serving a request becomes that request's answer (its SQLSTATE and
 * message) and the owner goes on; RocksDB failures are raised with
 * almanac_rocks_check (kv/rocks.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_OWNER_H
#define ALMANAC_OWNER_H

#include <rocksdb/c.h>

#include "store/store.h"

/* the worker's entry point (registered by store.c) */
extern PGDLLEXPORT void almanac_owner_main(Datum arg);

/* the open store: its primary instance and column families (NULL: none with that id) */
extern rocksdb_t *almanac_owner_db(void);
extern rocksdb_column_family_handle_t *almanac_owner_cf(uint32 cf_id, const char **name);
/* the ids of every column family, palloc'd; *n receives their number */
extern uint32 *almanac_owner_cf_ids(int *n);

/*
 * If the store is a database's own (no "path") and that database was
 * dropped: close it, remove its directory and exit.  Between requests.
 */
extern void almanac_owner_drop_if_database_gone(void);

/*
 * The replication slot that held the WAL for the store at path, which is
 * gone: drop it if nobody uses it (owner.c, "PostgreSQL's WAL as the one
 * log").  Between requests.
 */
extern void almanac_owner_drop_slot_of(const char *path);

/*
 * Write a batch durably, with the keys noted for the write log
 * (almanac_write_log_note, kv/rowcache.h) logged before it and marked
 * written after it; 'bytes' (about what it adds to the write-ahead log)
 * counts towards the next flush; readers see the new sequence number.
 */
extern void almanac_owner_write(rocksdb_writebatch_t *batch, Size bytes);

/*
 * bulk.c: serve ALMANAC_REQ_INGEST (store: the owner's store index): ingest
 * the chunk, or set slot->ingested = false if a key of it exists.
 */
extern void almanac_owner_ingest(AlmanacRequestSlot *slot, int store,
								 const char *payload, Size len);

#endif							/* ALMANAC_OWNER_H */
