-- almanac install script, assembled by `make` from src/sql/*.sql in file-name
-- order.  Edit the parts, not the assembled almanac--<version>.sql.

\echo Use "CREATE EXTENSION almanac" to load this file. \quit

-- The schema is created here, not through the control file, so that it is a
-- member of the extension and DROP EXTENSION removes it with everything in it.
CREATE SCHEMA almanac;
COMMENT ON SCHEMA almanac IS 'almanac: indexed blockchain data';

-- Refuse to install into a server that did not preload the library: the store
-- needs a background worker, hooks and shared memory from server start.
CREATE FUNCTION almanac._require_preload() RETURNS void
	LANGUAGE c STRICT
	AS 'MODULE_PATHNAME', 'almanac_require_preload_sql';
SELECT almanac._require_preload();
