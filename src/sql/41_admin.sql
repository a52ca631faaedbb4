-- Administration and observability of the RocksDB stores (src/store/admin.c,
-- docs/operations.md "Administration and observability").  Every function names a
-- server of the almanac_rocksdb wrapper and works on its store; RocksDB's
-- own "default" column family is never listed.  Privileges are checked in C:
-- reading needs USAGE on the server, flush and compact its ownership or
-- pg_checkpoint, drop its ownership.

CREATE FUNCTION almanac.column_families(
	server name DEFAULT 'almanac_store',
	OUT column_family text, OUT id integer, OUT foreign_tables regclass[])
	RETURNS SETOF record
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_column_families_sql';
COMMENT ON FUNCTION almanac.column_families(name) IS
	'the column families of a server''s store, with the foreign tables of this database that use each';

CREATE FUNCTION almanac.store_properties(
	server name DEFAULT 'almanac_store',
	OUT column_family text, OUT id integer,
	OUT estimated_keys bigint, OUT live_sst_bytes bigint, OUT memtable_bytes bigint,
	OUT pending_compaction_bytes bigint, OUT block_cache_bytes bigint,
	OUT running_compactions bigint, OUT running_flushes bigint,
	OUT sst_files_per_level bigint[], OUT memtable_entries bigint)
	RETURNS SETOF record
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_store_properties_sql';
COMMENT ON FUNCTION almanac.store_properties(name) IS
	'RocksDB''s properties of each column family of a server''s store, from its owner';

-- One row per server the current user may use (USAGE) and column family of
-- its store.  The conditions on the server are applied before the function
-- runs, so a server the user may not use is never opened.
CREATE VIEW almanac.store_properties AS
SELECT s.srvname AS server, p.*
  FROM pg_foreign_server s
  JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
 CROSS JOIN LATERAL almanac.store_properties(s.srvname) p
 WHERE w.fdwhandler = 'almanac.rocksdb_fdw_handler'::regproc
   AND has_server_privilege(s.oid, 'USAGE');
COMMENT ON VIEW almanac.store_properties IS
	'RocksDB''s properties per server and column family (servers the current user may use)';
-- it filters by USAGE itself (the schema's USAGE is still needed)
GRANT SELECT ON almanac.store_properties TO PUBLIC;

CREATE FUNCTION almanac.commit_stats(server name DEFAULT 'almanac_store',
	OUT batches bigint, OUT wal_syncs bigint,
	OUT checked_in_cache bigint, OUT checked_in_store bigint,
	OUT batch_writes bigint)
	RETURNS record
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_commit_stats_sql';
COMMENT ON FUNCTION almanac.commit_stats(name) IS
	'batches the store owner applied for committing transactions since the server started, and the syncs of RocksDB''s write-ahead log that made them durable (one per durable point, about once a second, while PostgreSQL''s WAL carries the batches; without a replication slot one per round of commits), and the written keys whose stored value the owner took from the shared row cache (its own last write of the key left it there) or read from RocksDB, and the RocksDB writes that applied the batches (one per round of commits, or fewer)';

CREATE FUNCTION almanac.flush(column_family text, server name DEFAULT 'almanac_store')
	RETURNS void
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_flush_sql';
COMMENT ON FUNCTION almanac.flush(text, name) IS
	'writes a column family''s memtables to SST files and waits for it';

CREATE FUNCTION almanac.compact(column_family text, server name DEFAULT 'almanac_store')
	RETURNS void
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_compact_sql';
COMMENT ON FUNCTION almanac.compact(text, name) IS
	'compacts the whole key range of a column family and waits for it';

CREATE FUNCTION almanac.drop_column_family(column_family text, server name DEFAULT 'almanac_store')
	RETURNS void
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_drop_column_family_sql';
COMMENT ON FUNCTION almanac.drop_column_family(text, name) IS
	'drops a column family and all its data, unless a foreign table of this database uses it';

CREATE FUNCTION almanac.reader_stats(
	OUT opens bigint, OUT catch_ups bigint, OUT catch_ups_skipped bigint)
	RETURNS record
	LANGUAGE c VOLATILE STRICT
	AS 'MODULE_PATHNAME', 'almanac_reader_stats_sql';
COMMENT ON FUNCTION almanac.reader_stats() IS
	'This session''s reads of the store: instances opened, catch-ups that read the store owner''s '
	'writes, and point lookups that needed no catch-up because nobody wrote their key since the last one';

CREATE FUNCTION almanac.shared_row_cache_stats(
	OUT slots bigint, OUT used bigint, OUT hits bigint, OUT misses bigint,
	OUT puts bigint, OUT evicted bigint, OUT invalidated bigint)
	RETURNS record
	LANGUAGE c VOLATILE STRICT
	AS 'MODULE_PATHNAME', 'almanac_shared_row_cache_stats_sql';
COMMENT ON FUNCTION almanac.shared_row_cache_stats() IS
	'The row cache in shared memory (almanac.shared_row_cache_size), all stores and backends since the '
	'server started: slots and slots in use, point lookups answered from it (hits) or not (misses), '
	'values put, entries evicted to make room, and entries removed because the store owner wrote their key';

CREATE FUNCTION almanac.reader_row_cache_stats(
	OUT hits bigint, OUT misses bigint, OUT dropped bigint, OUT evicted bigint,
	OUT emptied bigint)
	RETURNS record
	LANGUAGE c VOLATILE STRICT
	AS 'MODULE_PATHNAME', 'almanac_reader_row_cache_stats_sql';
COMMENT ON FUNCTION almanac.reader_row_cache_stats() IS
	'This session''s row cache: point lookups answered from it (hits) or not (misses), '
	'entries dropped because the store owner wrote their key, entries evicted to make room, '
	'and how often a cache was emptied';
