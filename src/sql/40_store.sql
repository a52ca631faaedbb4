-- The RocksDB store: the almanac_rocksdb wrapper and the default server.

CREATE FUNCTION almanac.rocksdb_fdw_handler() RETURNS fdw_handler
	LANGUAGE c STRICT
	AS 'MODULE_PATHNAME', 'almanac_rocksdb_fdw_handler';

CREATE FOREIGN DATA WRAPPER almanac_rocksdb
	HANDLER almanac.rocksdb_fdw_handler
	VALIDATOR almanac.rocksdb_fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER almanac_rocksdb IS 'RocksDB column families as foreign tables';

-- The embedded default: a store under the data directory (almanac/store).
CREATE SERVER almanac_store FOREIGN DATA WRAPPER almanac_rocksdb;
COMMENT ON SERVER almanac_store IS 'the default almanac store, under the data directory';
