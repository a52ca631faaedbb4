/*-------------------------------------------------------------------------
 *
 * option.h
 *	  Options of the almanac_rocksdb foreign data wrapper: their validator
 *	  and the parsed forms the wrapper uses.
 *
 * Server options configure the RocksDB store (its directory and tuning);
 * table options map a foreign table onto keys (see codec/keycodec.h).  Every option
 * is checked by almanac.rocksdb_fdw_validator when it is set; the getters
 * below parse them again at use time, fill in the defaults, and resolve what
 * the validator cannot see (the table's columns).  Results are palloc'd in
 * CurrentMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_OPTION_H
#define ALMANAC_OPTION_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/relcache.h"

#include "codec/keycodec.h"

#define ALMANAC_DIRECT_IO_AUTO	0
#define ALMANAC_DIRECT_IO_ON	1
#define ALMANAC_DIRECT_IO_OFF	2

/*
 * Default store directory, relative to the data directory: one store per
 * database, almanac/base/<database oid> (as PostgreSQL's base/<oid>), so that
 * a server without "path" never maps another database's rows.
 */
#define ALMANAC_DEFAULT_STORE_DIR "almanac/base"

typedef struct AlmanacServerOptions
{
	char	   *path;			/* absolute, canonical, symlinks resolved:
								 * one store, one path (option.c) */
	int64		write_buffer_size;	/* bytes */
	int			max_write_buffer_number;
	int			min_write_buffer_number_to_merge;
	int			max_open_files; /* -1: unlimited */
	char	   *compression;	/* none, snappy, zlib, lz4, zstd */
	int			bloom_bits_per_key; /* 0: no bloom filter */
	int			use_direct_io;	/* ALMANAC_DIRECT_IO_AUTO/ON/OFF */
	int64		max_total_wal_size; /* bytes; 0: RocksDB's own rule */
	Oid			database;		/* without "path": the database whose own
								 * store this is; else InvalidOid */
} AlmanacServerOptions;

typedef struct AlmanacTableOptions
{
	char	   *column_family;	/* defaults to key_prefix */
	char	   *key_prefix;
	List	   *key_columns;	/* of String, in key order */
	char	   *key_attribute;	/* NULL when none */
	bool		upsert;			/* INSERT overwrites an existing key */
	bool		raw;			/* (key bytea, value bytea) over a whole column family */
} AlmanacTableOptions;

/*
 * Does the foreign data wrapper use almanac's handler (under any name)?
 * A server is an almanac store if its wrapper does.
 */
extern bool almanac_wrapper_is_ours(Oid fdwid);

/*
 * The servers of the current database that use the store at 'path' (a
 * server without option path uses the default store): OIDs, palloc'd.
 */
extern List *almanac_store_servers(const char *path);

/*
 * Column families no foreign table claims: the store owner's own
 * ("default") and the mirrors' (src/sql/50_router.sql names them
 * "mirror.<table>").  A table over one could read or write what the owner
 * or a core table's privileges guard (fdw/keyspace.c), and dropping it must
 * not delete their keys (fdw/ddl.c).
 */
extern bool almanac_reserved_column_family(const char *name);
/*
 * The first tuning option (all but path) whose value differs between two
 * servers' options, or NULL if they tune a store alike.
 */
extern const char *almanac_server_tuning_difference(const AlmanacServerOptions *a,
													const AlmanacServerOptions *b);

/* does server 'serverid' belong to the wrapper and use the store at 'path'? */
extern bool almanac_server_uses_store(Oid serverid, const char *path);

/* options of a server, defaults filled in */
extern AlmanacServerOptions *almanac_server_options(Oid serverid);

/* options of a foreign table; ERROR naming the table if required ones are missing */
extern AlmanacTableOptions *almanac_table_options(Oid relid);

/*
 * Resolve key_columns to attribute numbers (palloc'd, list_length entries),
 * checking each type with almanac_key_check_type.  ERROR 42703 for an
 * unknown column, naming table and column.
 */
extern AttrNumber *almanac_key_attnums(Relation rel,
									   const AlmanacTableOptions *opts);

/*
 * The key layout of a foreign table, for codec/keycodec.h: prefix, key column
 * types and names, attribute.  *attnums (if not NULL) receives
 * almanac_key_attnums().
 */
extern AlmanacKeyLayout *almanac_table_key_layout(Relation rel,
												  const AlmanacTableOptions *opts,
												  AttrNumber **attnums);

#endif							/* ALMANAC_OPTION_H */
