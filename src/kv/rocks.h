/*-------------------------------------------------------------------------
 *
 * rocks.h
 *	  The glue between PostgreSQL and RocksDB's C API (rocksdb/c.h) that
 *	  every subsystem shares: RocksDB's errors raised as PostgreSQL errors,
 *	  point lookups that copy what RocksDB pins, and what a store directory
 *	  holds.
 *
 * RocksDB reports a failure as a malloc'd string in an 'err' out-parameter,
 * and hands back values as pinned slices that hold a block of its cache
 * until destroyed.  Neither may be left behind by an ereport, which
 * longjmps past the code that would free it: the functions here copy what
 * they need into palloc'd memory and release RocksDB's objects before
 * anything can raise.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_ROCKS_H
#define ALMANAC_ROCKS_H

#include <rocksdb/c.h>

#include "nodes/pg_list.h"

/*
 * Report a RocksDB failure, if err is not NULL: err is freed, and the
 * report at elevel with SQLSTATE sqlerrcode reads "<fmt...>: <RocksDB's
 * message>".  At ERROR and above it does not return.  RocksDB's message is
 * copied before anything can raise (truncated to 1kB if need be).
 */
extern void almanac_rocks_error(int elevel, int sqlerrcode, char *err,
								const char *fmt,...) pg_attribute_printf(4, 5);

/* the owner's shorthand: ERROR 58030 "almanac store: <what> failed: <message>" */
#define almanac_rocks_check(err, what) \
	almanac_rocks_error(ERROR, ERRCODE_IO_ERROR, (err), "almanac store: %s failed", (what))

/* a failed read of a backend: ERROR 58030 "almanac store read failed: <message>" */
#define almanac_rocks_read_check(err) \
	almanac_rocks_error(ERROR, ERRCODE_IO_ERROR, (err), "almanac store read failed")

/*
 * ReadOptions::read_tier values (rocksdb::ReadTier; the C API takes an
 * int): the memtables only, and the tier iterators refuse (NotSupported),
 * with which the fault point iterator_error makes them fail (fault.h).
 */
#define ALMANAC_READ_TIER_MEMTABLE 3	/* kMemtableTier */
#define ALMANAC_READ_TIER_PERSISTED 2	/* kPersistedTier */

/*
 * Get key from cf: a palloc'd copy of its value (huge allocations allowed),
 * or NULL when there is none; *vlen its length.
 */
extern char *almanac_rocks_get(rocksdb_t *db, const rocksdb_readoptions_t *ropts,
							   rocksdb_column_family_handle_t *cf,
							   const char *key, size_t klen, size_t *vlen);

/*
 * MultiGet n keys of cf (sorted_input: the keys are in byte order): values[i]
 * receives a palloc'd copy of key i's value, or NULL when there is none,
 * vlens[i] its length.  Every pinned slice is copied and destroyed and every
 * error string freed before anything raises; a failed key, or running out
 * of memory, is raised after (values already copied stay palloc'd in
 * CurrentMemoryContext).
 */
extern void almanac_rocks_multiget(rocksdb_t *db, const rocksdb_readoptions_t *ropts,
								   rocksdb_column_family_handle_t *cf, int n,
								   const char *const *keys, const size_t *klens,
								   bool sorted_input, char **values, size_t *vlens);

/*
 * The names of the column families of the store at path (read with
 * options, NULL: the defaults), "default" included (a List of palloc'd strings, in RocksDB's order); NIL with *err
 * set (RocksDB's message, for almanac_rocks_error) when they cannot be read,
 * as for a store that does not exist yet.
 */
extern List *almanac_rocks_column_families(const rocksdb_options_t *options,
										   const char *path, char **err);

/* a put of a write batch, pointing into the batch's representation */
typedef struct AlmanacBatchPut
{
	uint32		cf_id;
	const char *key;
	size_t		klen;
	const char *val;
	size_t		vlen;
} AlmanacBatchPut;

/*
 * The records of a write batch's representation (rocksdb_writebatch_data,
 * rocksdb_writebatch_wi_data: RocksDB's WriteBatch format, a 12-byte header
 * of sequence number and count, then one tagged record per write) as puts,
 * in the order written, at most max of them into puts; what they point to
 * lives as long as the batch is not changed.  Returns their number, or -1,
 * having filled nothing usable, if the batch holds more than max records, a
 * record other than a put (a deletion, a merge, log data) or anything that
 * does not parse: the caller then reads the batch through RocksDB's
 * iterators.  A batch with an index keeps a put it replaced in its
 * representation: the last put of a key is the one its index holds.
 */
extern int	almanac_rocks_batch_puts(const char *rep, size_t len,
									 AlmanacBatchPut *puts, int max);

/* the write-ahead log files (RocksDB's NNNNNN.log) of a store directory */
typedef struct AlmanacWalFiles
{
	int			count;
	uint64		newest;			/* the greatest NNNNNN, 0 if there is none */
	char		newest_path[MAXPGPATH]; /* that file's path */
	int			error;			/* 0, or errno if not listed to the end */
} AlmanacWalFiles;

/*
 * List the write-ahead log files of the store directory path into *files.
 * If the directory cannot be opened or read to the end, that is logged (LOG,
 * with detail, if not NULL, as its errdetail) and files->error is set, the
 * rest being what was read: a partial listing can miss the newest file.
 * unreadable: fail as if the directory could not be opened (EACCES), for a
 * fault point.
 */
extern void almanac_rocks_wal_files(const char *path, bool unreadable, const char *detail,
									AlmanacWalFiles *files);

/*
 * fn for every record of a batch's representation, in the order written
 * (a key put twice is seen twice), if every record is a put that parses
 * (else false, having called fn for none): a walk of a big batch without
 * its index, whose iterator pays a search of the index per entry.
 */
typedef void (*AlmanacBatchPutFn) (void *arg, const AlmanacBatchPut *put);
extern bool almanac_rocks_batch_each_put(const char *rep, size_t len,
										 AlmanacBatchPutFn fn, void *arg);

#endif							/* ALMANAC_ROCKS_H */
