-- The extension installs, shows its version, drops without leaving anything
-- behind, and installs again.

-- helper for the suites: run a statement, return its SQLSTATE and message
CREATE FUNCTION public.sqlstate_of(stmt text) RETURNS text
	LANGUAGE plpgsql AS
$$
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

CREATE EXTENSION almanac;
\dx almanac
SELECT extversion FROM pg_extension WHERE extname = 'almanac';

-- installing twice is the standard error
SELECT sqlstate_of('CREATE EXTENSION almanac');

-- everything lives in schema almanac and belongs to the extension
SELECT c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'almanac' AND c.relkind IN ('r', 'v', 'f', 'm')
 ORDER BY 1;

DROP EXTENSION almanac CASCADE;

-- nothing is left behind: no schema, relation, function, type or FDW
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'almanac';
SELECT count(*) AS relations FROM pg_class WHERE relname LIKE '%almanac%'
	OR relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'almanac');
SELECT count(*) AS functions FROM pg_proc WHERE proname LIKE '%almanac%' OR prosrc LIKE 'almanac%';
SELECT count(*) AS types FROM pg_type WHERE typname LIKE '%almanac%';
SELECT count(*) AS wrappers FROM pg_foreign_data_wrapper WHERE fdwname LIKE 'almanac%';
SELECT count(*) AS servers FROM pg_foreign_server WHERE srvname LIKE 'almanac%';

-- and it installs again in the same database
CREATE EXTENSION almanac;
SELECT count(*) > 0 AS installed FROM pg_extension WHERE extname = 'almanac';
