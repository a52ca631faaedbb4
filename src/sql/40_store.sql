-- The RocksDB store: the almanac_rocksdb wrapper and the default server.

CREATE FUNCTION almanac.rocksdb_fdw_handler() RETURNS fdw_handler
	LANGUAGE c STRICT
	AS 'MODULE_PATHNAME', 'almanac_rocksdb_fdw_handler_sql';

CREATE FOREIGN DATA WRAPPER almanac_rocksdb
	HANDLER almanac.rocksdb_fdw_handler
	VALIDATOR almanac.rocksdb_fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER almanac_rocksdb IS 'RocksDB column families as foreign tables';

-- The embedded default: a store under the data directory (almanac/store).
CREATE SERVER almanac_store FOREIGN DATA WRAPPER almanac_rocksdb;
COMMENT ON SERVER almanac_store IS 'the default almanac store, under the data directory';

-- Key spaces (src/fdw/keyspace.c): a table may be defined over the keys of
-- another (same store, column family and key prefix, or a raw table) only by
-- a role with the privileges of that table's owner; a raw table only by one
-- with the privileges of the server's owner; a server over a store other
-- servers use (every server without path uses the database's own) only by a
-- role with the privileges of their owners.  Checked at the end of every
-- command that creates or alters foreign tables or servers.
CREATE FUNCTION almanac._key_spaces_ddl() RETURNS event_trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'almanac_key_spaces_ddl_sql';
CREATE EVENT TRIGGER almanac_key_spaces ON ddl_command_end
	WHEN TAG IN ('CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE', 'ALTER TABLE',
				 'CREATE SERVER', 'ALTER SERVER', 'IMPORT FOREIGN SCHEMA')
	EXECUTE FUNCTION almanac._key_spaces_ddl();
-- fires under session_replication_role = replica too: a role allowed to set
-- it (PostgreSQL 15's GRANT SET ON PARAMETER) must not escape the rule
ALTER EVENT TRIGGER almanac_key_spaces ENABLE ALWAYS;
