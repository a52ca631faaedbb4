/*-------------------------------------------------------------------------
 *
 * option.h
 *	  Options of the almanac_rocksdb wrapper, its servers and foreign tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_OPTION_H
#define ALMANAC_OPTION_H

#include "nodes/pg_list.h"
#include "utils/relcache.h"

#define ALMANAC_DIRECT_IO_AUTO	0
#define ALMANAC_DIRECT_IO_ON	1
#define ALMANAC_DIRECT_IO_OFF	2

typedef struct AlmanacServerOptions
{
	char	   *path;			/* absolute */
	int64		write_buffer_size;
	int			max_write_buffer_number;
	int			min_write_buffer_number_to_merge;
	int			max_open_files;
	char	   *compression;
	int			bloom_bits_per_key;
	int			use_direct_io;	/* ALMANAC_DIRECT_IO_* */
	int64		max_total_wal_size;
} AlmanacServerOptions;

typedef struct AlmanacTableOptions
{
	char	   *column_family;
	char	   *key_prefix;
	List	   *key_columns;	/* of String */
	char	   *key_attribute;
	bool		upsert;
} AlmanacTableOptions;

extern AlmanacServerOptions *almanac_server_options(Oid serverid);
extern AlmanacTableOptions *almanac_table_options(Oid relid);
extern AttrNumber *almanac_key_attnums(Relation rel, const AlmanacTableOptions *opts);

#endif							/* ALMANAC_OPTION_H */
