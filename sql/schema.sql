-- The core schema: every table and column the design names, with the types
-- almanac chose, and the indexes its queries rely on.

SELECT c.relname AS "table", a.attnum, a.attname AS "column",
	   format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
	   CASE WHEN a.attidentity = 'a' THEN 'identity always' ELSE '' END AS identity
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'almanac' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.relname, a.attnum;

SELECT tablename, indexname, indexdef
  FROM pg_indexes
 WHERE schemaname = 'almanac'
 ORDER BY tablename, indexname;

-- every foreign key and what it does on delete
SELECT conrelid::regclass AS "table", conname,
	   pg_get_constraintdef(oid) AS definition
  FROM pg_constraint
 WHERE contype = 'f' AND connamespace = 'almanac'::regnamespace
 ORDER BY 1, 2;
