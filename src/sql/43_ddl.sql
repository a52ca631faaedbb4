-- DDL that keeps a foreign table's rows right (src/fdw/ddl.c): ALTER of an
-- almanac table that holds rows is refused when it would change what they
-- mean, and the last table of rows that remain cannot be dropped until
-- almanac.purge removed them.

CREATE FUNCTION almanac._ddl_guard() RETURNS event_trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'almanac_ddl_guard';
COMMENT ON FUNCTION almanac._ddl_guard() IS
	'internal: refuses ALTER of an almanac foreign table that would misread its stored rows';

CREATE EVENT TRIGGER almanac_ddl_guard ON ddl_command_start
	WHEN TAG IN ('ALTER TABLE', 'ALTER FOREIGN TABLE', 'ALTER TYPE', 'ALTER SERVER')
	EXECUTE FUNCTION almanac._ddl_guard();
ALTER EVENT TRIGGER almanac_ddl_guard ENABLE ALWAYS;

-- Deletes every key of the table's key space that the statement's snapshot
-- sees as a row, whatever layout its value was written with (a DELETE would
-- have to decode them), with the transaction.
CREATE FUNCTION almanac.purge(foreign_table regclass) RETURNS bigint
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_purge';
COMMENT ON FUNCTION almanac.purge(regclass) IS
	'deletes every stored row of an almanac foreign table''s key space in this transaction (needs DELETE on it); returns how many';
