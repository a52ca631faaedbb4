-- IMPORT FOREIGN SCHEMA: one raw (key bytea, value bytea) table per column
-- family; raw tables read a column family's keys as they are.

CREATE FOREIGN TABLE imp_blocks (chain_id text, block_number bigint, block_hash text)
	SERVER almanac_store OPTIONS (column_family 'imp_cf', key_prefix 'block', key_columns 'chain_id, block_number');
CREATE FOREIGN TABLE imp_accounts (chain_id text, account text, balance numeric)
	SERVER almanac_store OPTIONS (column_family 'imp_other', key_prefix 'account', key_columns 'chain_id, account', key_attribute 'state');
INSERT INTO imp_blocks SELECT 'eth', g, 'h' || g FROM generate_series(1, 5) g;
INSERT INTO imp_accounts VALUES ('eth', '0xab', 10);

CREATE SCHEMA imp;
IMPORT FOREIGN SCHEMA rocksdb LIMIT TO (imp_cf, imp_other, no_such_cf) FROM SERVER almanac_store INTO imp;
SELECT c.relname, ft.ftoptions
FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid
WHERE c.relnamespace = 'imp'::regnamespace ORDER BY 1;
\d imp.imp_cf

-- every key of the column family, in key order, with the encoded row
SELECT key = almanac.block_key('eth', block_number) AS same_key, length(value) > 0 AS has_value
FROM imp.imp_cf JOIN imp_blocks ON key = almanac.block_key('eth', block_number) ORDER BY key;
SELECT count(*) FROM imp.imp_cf;
SELECT key = almanac.account_state_key('eth', '0xab') AS account_key FROM imp.imp_other;
-- key equality is a Get, = ANY a MultiGet
EXPLAIN (COSTS OFF) SELECT * FROM imp.imp_cf WHERE key = almanac.block_key('eth', 3);
SELECT count(*) FROM imp.imp_cf WHERE key = almanac.block_key('eth', 3);
SELECT count(*) FROM imp.imp_cf WHERE key = ANY (ARRAY[almanac.block_key('eth', 1), almanac.block_key('eth', 9), '\x00'::bytea]);
-- snapshots apply: a deleted row disappears, an uncommitted one shows only to its writer
BEGIN;
DELETE FROM imp_blocks WHERE block_number >= 4;
INSERT INTO imp_blocks VALUES ('eth', 6, 'h6');
SELECT count(*) FROM imp.imp_cf;
ROLLBACK;
SELECT count(*) FROM imp.imp_cf;
-- ANALYZE works on raw tables too
ANALYZE imp.imp_cf;
SELECT reltuples FROM pg_class WHERE oid = 'imp.imp_cf'::regclass;

-- raw tables are read-only
SELECT sqlstate_of($$INSERT INTO imp.imp_cf VALUES ('\x01', '\x02')$$);
SELECT sqlstate_of($$DELETE FROM imp.imp_cf$$);
-- EXCEPT, and an import into a schema that already has the table
IMPORT FOREIGN SCHEMA rocksdb EXCEPT (imp_cf, imp_other) FROM SERVER almanac_store INTO imp;
SELECT count(*) FILTER (WHERE relname LIKE 'imp%') AS imp_tables, count(*) > 2 AS others_imported
FROM pg_class WHERE relnamespace = 'imp'::regnamespace;
SELECT sqlstate_of($$IMPORT FOREIGN SCHEMA rocksdb LIMIT TO (imp_cf) FROM SERVER almanac_store INTO imp$$);

-- bad raw tables
SELECT sqlstate_of($$CREATE FOREIGN TABLE bad_raw (key bytea, value bytea) SERVER almanac_store OPTIONS (raw 'true')$$);
SELECT sqlstate_of($$CREATE FOREIGN TABLE bad_raw (key bytea, value bytea) SERVER almanac_store OPTIONS (raw 'true', column_family 'imp_cf', key_prefix 'block')$$);
CREATE FOREIGN TABLE bad_raw (key text, value bytea) SERVER almanac_store OPTIONS (raw 'true', column_family 'imp_cf');
SELECT sqlstate_of($$SELECT * FROM bad_raw$$);
DROP FOREIGN TABLE bad_raw;

SET client_min_messages = warning;
DROP SCHEMA imp CASCADE;
RESET client_min_messages;
DROP FOREIGN TABLE imp_blocks, imp_accounts;
