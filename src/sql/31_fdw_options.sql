-- Validator of the almanac_rocksdb foreign data wrapper's options
-- (src/fdw/option.c, docs/usage.md "Keys and values").  The wrapper and its default
-- server are created in a later part and reference it.
CREATE FUNCTION almanac.rocksdb_fdw_validator(text[], oid)
	RETURNS void
	LANGUAGE c STRICT
	AS 'MODULE_PATHNAME', 'almanac_rocksdb_fdw_validator_sql';
COMMENT ON FUNCTION almanac.rocksdb_fdw_validator(text[], oid) IS
	'validates the options of almanac_rocksdb servers and foreign tables';

-- Internal, for the tests: options as the wrapper reads them, defaults
-- filled in, the store path made absolute, key columns resolved.
CREATE FUNCTION almanac._server_options(server oid)
	RETURNS text[]
	LANGUAGE c STRICT STABLE
	AS 'MODULE_PATHNAME', 'almanac_server_options_sql';
COMMENT ON FUNCTION almanac._server_options(oid) IS
	'internal: the options of a server as almanac_rocksdb reads them';

CREATE FUNCTION almanac._table_options(foreign_table regclass)
	RETURNS text[]
	LANGUAGE c STRICT STABLE
	AS 'MODULE_PATHNAME', 'almanac_table_options_sql';
COMMENT ON FUNCTION almanac._table_options(regclass) IS
	'internal: the options of a foreign table as almanac_rocksdb reads them';
