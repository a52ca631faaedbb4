-- Store maintenance (src/store/maintenance.c; docs/architecture.md, "The
-- RocksDB store: who owns what"): the owner's freeze sweep on demand, and the
-- versions of one stored value.
-- Both are for the server's owner (or a superuser): the C functions check.

CREATE FUNCTION almanac.freeze_sweep(server name DEFAULT 'almanac_store')
	RETURNS bigint
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_freeze_sweep_sql';
COMMENT ON FUNCTION almanac.freeze_sweep(name) IS
	'runs a full pass of the store owner''s freeze sweep and waits for it; returns the number of values it rewrote or removed';

CREATE FUNCTION almanac.value_versions(server name, column_family text, key bytea,
	OUT version integer, OUT xid xid8, OUT top_xid xid, OUT deleted boolean,
	OUT frozen boolean, OUT status text, OUT image_bytes integer)
	RETURNS SETOF record
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_value_versions_sql';
COMMENT ON FUNCTION almanac.value_versions(name, text, bytea) IS
	'the versions of a stored value, newest first: writer, flags, and what the commit log says (frozen, committed, aborted, in progress, unknown)';
