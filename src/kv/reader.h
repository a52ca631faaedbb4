/*-------------------------------------------------------------------------
 *
 * reader.h
 *	  The backend's read path: a RocksDB secondary instance of a store,
 *	  opened in process on first use and caught up only when the owner has
 *	  written since.
 *
 * Catch-up happens after the statement's snapshot was taken, never before
 * (almanac_reader_catch_up is called from the scan's begin): every commit the
 * snapshot sees made its RocksDB write durable before its commit record, so
 * it is in what the secondary reads.  A read-only workload pays nothing: the
 * published sequence number does not change.
 *
 * The secondary keeps every file it opened (max_open_files = -1), so files
 * the owner compacts away stay readable.  Its directory, under the data
 * directory, is removed when the backend exits, or by a store owner once the
 * backend is gone if it died without exiting cleanly (store/maintenance.h).
 *
 * When a column family was created or dropped since the instance opened
 * (the store's cf_version changed), catching up opens a new instance
 * instead; the replaced one stays open until the next transaction, for the
 * scans that still use it.
 *
 * Fresh connections.  Every backend opens an instance of its own, and its
 * caches start empty.  With almanac.reader_mmap (the default) the instance
 * maps its SST files (allow_mmap_reads), and a block stored uncompressed
 * (compression 'none', the default) is searched where it lies in the OS page
 * cache, shared by every backend: a backend's first read of a block costs a
 * page-table entry instead of a read() into a buffer and a copy into its
 * private block cache, and the block cache stays empty (blocks of a
 * compressed store are still decompressed into it).  And a point access
 * opens no instance while the shared row cache answers it
 * (almanac_reader_deferred, kv/access.h).  Measured in docs/benchmarks.md
 * ("Fresh connections").
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_READER_H
#define ALMANAC_READER_H

#include <rocksdb/c.h>

/* under the data directory: one directory per reading backend, <store>.<pid> */
#define ALMANAC_READER_DIR "almanac/secondary"

typedef struct AlmanacReader AlmanacReader;
typedef struct AlmanacRowCache AlmanacRowCache;

extern int	almanac_reader_block_cache_size;
extern bool almanac_reader_mmap;

extern void almanac_reader_init(void);
extern AlmanacReader *almanac_reader(int store);

/*
 * The backend's reader of store, its instance opened or not: opened later
 * by almanac_reader_open or almanac_reader.  Until then the reader has no
 * instance (almanac_reader_db is NULL), and nothing but the two reads it: a
 * point access whose keys the shared row cache answers (kv/access.c) never
 * opens one, which is most of a new connection's first lookup (opening reads
 * the MANIFEST, opens every SST file, makes the backend's directory).
 */
extern AlmanacReader *almanac_reader_deferred(int store);

/*
 * Make sure reader has a current instance: open one if it has none (it
 * holds every commit published before the call, as a catch-up's does), or
 * reopen it if a column family was created or dropped since it opened.
 */
extern void almanac_reader_open(AlmanacReader *reader);

/*
 * A second reader of the store, read only for the newest value of a key a
 * key lock was granted on, once the transaction has sent writes to the
 * owner mid-transaction (kv/xact.h): the backend's reader must then not
 * catch up in place, since accesses of the statement that sent them still
 * read it and would see them.  Opened on first use, kept like the reader.
 */
extern AlmanacReader *almanac_lock_reader(int store);
extern rocksdb_t *almanac_reader_db(AlmanacReader *reader);
/* the backend's directory for this store, removed with the reader (kv/bulk.h files) */
extern const char *almanac_reader_dir(AlmanacReader *reader);
extern void almanac_reader_catch_up(AlmanacReader *reader);

/*
 * Catch up only if the instance may lack a write of key (any column family)
 * that the owner logged before the call (almanac_row_cache_key_written):
 * afterwards a Get of key returns what it would after
 * almanac_reader_catch_up, usually without the catch-up's cost (reading the
 * MANIFEST, listing and replaying the write-ahead log).  It may reopen the
 * instance, as a catch-up may.
 */
extern void almanac_reader_catch_up_for_key(AlmanacReader *reader, const char *key,
											size_t klen);

/*
 * Pinned, the current instance never changes in place: accesses still read
 * it that must not see writes the transaction sent since (kv/access.h,
 * almanac_access_before_send).  A catch-up then opens a new instance
 * instead (they go on reading the old one, retired), which is not pinned.
 */
extern void almanac_reader_pin(AlmanacReader *reader, bool pinned);

/*
 * A number that changes whenever what the reader's current instance holds
 * may change: at each open (a new instance) and each catch-up, the only
 * times a secondary instance takes in the owner's writes.  While it stays
 * the same, the current instance reads the same keys and values, so a
 * result computed from them earlier still holds (access.c's last-row
 * cache).  Instances are told apart by almanac_reader_db, not by it.
 */
extern uint64 almanac_reader_epoch(AlmanacReader *reader);

/*
 * The row cache (rowcache.h) of the reader's current instance, emptied when
 * it catches up or reopens; NULL if db is not that instance (a scan that
 * began before a reopen goes on with the retired one, uncached).
 */
extern AlmanacRowCache *almanac_reader_rows(AlmanacReader *reader, rocksdb_t *db);

/*
 * Does db, read for key now, give the newest value the owner wrote?  True
 * when db is the reader's current instance and the owner's write log names
 * no write of key since it caught up (almanac_row_cache_key_written; the log
 * is read at the call, so a write logged after it is not counted: the shared
 * row cache's protocol, kv/sharedcache.h, settles that race).
 */
extern bool almanac_reader_holds_newest(AlmanacReader *reader, rocksdb_t *db,
										const char *key, size_t klen);

/*
 * The column family's handle; NULL if it does not exist and !create.  With
 * create, asks the owner to create it.  *cf_id receives its id.
 */
extern rocksdb_column_family_handle_t *almanac_reader_cf(AlmanacReader *reader,
														 const char *name, bool create,
														 uint32 *cf_id);
extern rocksdb_column_family_handle_t *almanac_reader_cf_by_id(AlmanacReader *reader,
															   uint32 cf_id);

#endif							/* ALMANAC_READER_H */
