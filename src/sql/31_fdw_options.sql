CREATE FUNCTION almanac.rocksdb_fdw_validator(text[], oid) RETURNS void
	LANGUAGE c STRICT
	AS 'MODULE_PATHNAME', 'almanac_rocksdb_fdw_validator';
