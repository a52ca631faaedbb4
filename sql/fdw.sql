-- The almanac_rocksdb wrapper over the default store: reads, writes,
-- pushdown, transactions and savepoints.

CREATE FOREIGN TABLE kv_blocks (
	chain_id text, block_number bigint, block_hash text, gas_used bigint,
	value numeric(78,0), meta jsonb
) SERVER almanac_store
  OPTIONS (column_family 'blocks', key_prefix 'block', key_columns 'chain_id, block_number');

INSERT INTO kv_blocks VALUES
	('eth', 1, '0xaa', 10, 0, '{"a": 1}'),
	('eth', 2, '0xbb', 20, 115792089237316195423570985008687907853269984665640564039457584007913129639935, NULL),
	('eth', 3, '0xcc', NULL, 7, '[]'),
	('base', 1, '0xdd', 30, 1, '{}')
RETURNING chain_id, block_number;

SELECT * FROM kv_blocks ORDER BY chain_id, block_number;

-- equality on every key column is one Get, on the leading ones a bounded scan
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kv_blocks WHERE chain_id = 'eth' AND block_number = 2;
SELECT block_hash, value FROM kv_blocks WHERE chain_id = 'eth' AND block_number = 2;
EXPLAIN (COSTS OFF) SELECT * FROM kv_blocks WHERE chain_id = 'eth';
SELECT block_number FROM kv_blocks WHERE chain_id = 'eth' ORDER BY 1;
EXPLAIN (COSTS OFF) SELECT * FROM kv_blocks WHERE block_number = 1;
SELECT chain_id FROM kv_blocks WHERE block_number = 1 ORDER BY 1;
-- other conditions are still applied
SELECT block_number FROM kv_blocks WHERE chain_id = 'eth' AND gas_used > 15;
-- a key that is not there, a NULL and a negative number match nothing
SELECT count(*) FROM kv_blocks WHERE chain_id = 'eth' AND block_number = 99;
SELECT count(*) FROM kv_blocks WHERE chain_id = 'eth' AND block_number = NULL;
SELECT count(*) FROM kv_blocks WHERE chain_id = 'eth' AND block_number = -1;
-- prepared statements with parameters get the same pushdown
PREPARE get_block(text, bigint) AS SELECT block_hash FROM kv_blocks WHERE chain_id = $1 AND block_number = $2;
EXECUTE get_block('base', 1);
EXPLAIN (COSTS OFF) EXECUTE get_block('eth', 3);
DEALLOCATE get_block;

-- the rows are stored under exactly the design's key bytes
SELECT almanac.block_key('eth', 2) = '\x626c6f636b3a6574683a0000000000000002'::bytea AS key_bytes;

-- UPDATE, DELETE, RETURNING; an UPDATE of a key column moves the row
UPDATE kv_blocks SET gas_used = coalesce(gas_used, 0) + 1 WHERE chain_id = 'eth' RETURNING block_number, gas_used;
DELETE FROM kv_blocks WHERE chain_id = 'base' RETURNING *;
UPDATE kv_blocks SET block_number = 30 WHERE chain_id = 'eth' AND block_number = 3;
SELECT chain_id, block_number, gas_used FROM kv_blocks ORDER BY 1, 2;

-- a row that a join hands to UPDATE or DELETE twice is changed once, as in a heap table
BEGIN;
UPDATE kv_blocks SET block_hash = v.h FROM (VALUES (2, 'first'), (2, 'second')) v(n, h)
	WHERE chain_id = 'eth' AND block_number = v.n RETURNING block_number;
DELETE FROM kv_blocks USING (VALUES (1), (1)) v(n) WHERE chain_id = 'eth' AND block_number = v.n
	RETURNING block_number;
SELECT block_number FROM kv_blocks WHERE chain_id = 'eth' ORDER BY 1;
ROLLBACK;

-- key errors: duplicates, NULL key columns, negative numbers
SELECT sqlstate_of($$INSERT INTO kv_blocks VALUES ('eth', 1, 'dup', 0, 0, NULL)$$);
SELECT sqlstate_of($$INSERT INTO kv_blocks VALUES ('eth', 5, 'a', 0, 0, NULL), ('eth', 5, 'b', 0, 0, NULL)$$);
SELECT sqlstate_of($$INSERT INTO kv_blocks VALUES (NULL, 1, 'x', 0, 0, NULL)$$);
SELECT sqlstate_of($$INSERT INTO kv_blocks VALUES ('eth', -1, 'x', 0, 0, NULL)$$);
SELECT sqlstate_of($$UPDATE kv_blocks SET block_number = 2 WHERE block_number = 1$$);
-- a failed statement left nothing behind
SELECT count(*) FROM kv_blocks;

-- a transaction reads its own writes; ROLLBACK discards them
BEGIN;
INSERT INTO kv_blocks VALUES ('op', 7, 'x', 1, 1, NULL);
SELECT chain_id, block_number FROM kv_blocks WHERE chain_id = 'op';
SELECT block_hash FROM kv_blocks WHERE chain_id = 'op' AND block_number = 7;
DELETE FROM kv_blocks WHERE chain_id = 'eth' AND block_number = 1;
SELECT count(*) FROM kv_blocks WHERE chain_id = 'eth';
ROLLBACK;
SELECT chain_id, block_number FROM kv_blocks ORDER BY 1, 2;

-- ROLLBACK TO SAVEPOINT undoes exactly the writes since the savepoint
BEGIN;
INSERT INTO kv_blocks VALUES ('op', 8, 'kept', 1, 1, NULL);
SAVEPOINT a;
UPDATE kv_blocks SET block_hash = 'undone' WHERE chain_id = 'op';
INSERT INTO kv_blocks VALUES ('op', 9, 'undone', 1, 1, NULL);
SAVEPOINT b;
DELETE FROM kv_blocks WHERE chain_id = 'eth';
ROLLBACK TO a;
INSERT INTO kv_blocks VALUES ('op', 10, 'after', 1, 1, NULL);
SAVEPOINT c;
INSERT INTO kv_blocks VALUES ('op', 11, 'released', 1, 1, NULL);
RELEASE c;
COMMIT;
SELECT chain_id, block_number, block_hash FROM kv_blocks ORDER BY 1, 2;

-- an error inside a savepoint, then the transaction goes on
BEGIN;
SAVEPOINT s;
INSERT INTO kv_blocks VALUES ('op', 12, 'lost', 1, 1, NULL);
INSERT INTO kv_blocks VALUES ('op', 8, 'duplicate', 1, 1, NULL);
ROLLBACK TO s;
INSERT INTO kv_blocks VALUES ('op', 13, 'kept', 1, 1, NULL);
COMMIT;
SELECT block_number, block_hash FROM kv_blocks WHERE chain_id = 'op' ORDER BY 1;

-- COPY FROM, and a write-only transaction that writes only the foreign table
COPY kv_blocks (chain_id, block_number, block_hash) FROM stdin;
arb	1	0x01
arb	2	0x02
arb	3	0x03
\.
SELECT chain_id, block_number, block_hash, gas_used FROM kv_blocks WHERE chain_id = 'arb' ORDER BY 2;

-- an upsert table: INSERT overwrites
CREATE FOREIGN TABLE kv_state (chain_id text, account text, state jsonb) SERVER almanac_store
	OPTIONS (column_family 'account', key_prefix 'account', key_columns 'chain_id, account',
			 key_attribute 'state', upsert 'true');
INSERT INTO kv_state VALUES ('eth', '0xabc', '{"balance": 1}');
INSERT INTO kv_state VALUES ('eth', '0xabc', '{"balance": 2}');
SELECT * FROM kv_state;
SELECT almanac.account_state_key('eth', '0xabc') AS key;

-- tables over one column family with different prefixes do not see each other
CREATE FOREIGN TABLE kv_tx (chain_id text, tx_hash text, block_number bigint) SERVER almanac_store
	OPTIONS (column_family 'blocks', key_prefix 'tx', key_columns 'chain_id, tx_hash');
INSERT INTO kv_tx VALUES ('eth', '0x01', 1), ('eth:x', '0x02', 2);
SELECT * FROM kv_tx WHERE chain_id = 'eth';
SELECT count(*) FROM kv_blocks;
-- a session caches table layouts; changing the options takes effect at once
-- (on a table that holds no rows: ddl.sql)
CREATE FOREIGN TABLE kv_tx_alias (chain_id text, tx_hash text, block_number bigint) SERVER almanac_store
	OPTIONS (column_family 'blocks', key_prefix 'tx2', key_columns 'chain_id, tx_hash');
SELECT count(*) FROM kv_tx_alias;
-- and so does renaming a key column (of a table that holds no rows)
ALTER FOREIGN TABLE kv_tx_alias RENAME COLUMN tx_hash TO hash;
SELECT hash FROM kv_tx_alias WHERE chain_id = 'eth:x';
ALTER FOREIGN TABLE kv_tx_alias RENAME COLUMN hash TO tx_hash;
ALTER FOREIGN TABLE kv_tx_alias OPTIONS (SET key_prefix 'tx');
SELECT count(*) FROM kv_tx_alias;
DROP FOREIGN TABLE kv_tx_alias;
SELECT count(*) FROM kv_tx;
-- a key column of a table that holds rows is not renamed (ddl.c)
ALTER FOREIGN TABLE kv_tx RENAME COLUMN tx_hash TO hash;
-- a running scan keeps its layout when an invalidation empties the cache
-- and another table's layout is read into the cache meanwhile
CREATE FOREIGN TABLE kv_wide (a uuid, b int, zz text, k2 int8) SERVER almanac_store
	OPTIONS (column_family 'wide', key_prefix 'wide', key_columns 'k2');
INSERT INTO kv_wide VALUES (NULL, 7, 'w', 1);
CREATE FUNCTION churn(n bigint) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	CREATE TEMP TABLE IF NOT EXISTS churn_tmp (a int);
	DROP TABLE churn_tmp;
	RETURN (SELECT b FROM kv_wide WHERE k2 = 1) + n;
END $$;
SELECT chain_id, block_number, churn(block_number) FROM kv_blocks WHERE chain_id = 'eth' ORDER BY block_number;
DROP FUNCTION churn(bigint);
DROP FOREIGN TABLE kv_wide;

-- a key column of a type without a key encoding
CREATE FOREIGN TABLE kv_bad (k numeric, v text) SERVER almanac_store
	OPTIONS (key_prefix 'bad', key_columns 'k');
SELECT sqlstate_of($$SELECT * FROM kv_bad$$);

-- a column family created while a scan of this backend is open
CREATE FOREIGN TABLE kv_new (h text) SERVER almanac_store
	OPTIONS (column_family 'created_mid_scan', key_prefix 'new', key_columns 'h');
DO $$
DECLARE r record;
BEGIN
	FOR r IN SELECT tx_hash FROM kv_tx LOOP
		INSERT INTO kv_new VALUES (r.tx_hash);
	END LOOP;
END $$;
SELECT * FROM kv_new ORDER BY h;
-- ... and while a scan of the same statement reads another column family
CREATE FOREIGN TABLE kv_new2 (h text) SERVER almanac_store
	OPTIONS (column_family 'created_by_insert_select', key_prefix 'new2', key_columns 'h');
INSERT INTO kv_new2 SELECT b.block_hash FROM kv_blocks b JOIN kv_tx t ON t.block_number = b.block_number;
SELECT * FROM kv_new2 ORDER BY h;
DROP FOREIGN TABLE kv_new2;

-- a statement bigger than almanac.write_batch_size is sent to the owner in
-- chunks as it goes; it is still all or nothing, and a key written twice
-- across chunks is still a duplicate
CREATE FOREIGN TABLE kv_chunks (n bigint, pad text) SERVER almanac_store
	OPTIONS (key_prefix 'chunk', key_columns 'n');
SET almanac.write_batch_size = 64;
BEGIN;
INSERT INTO kv_chunks SELECT g, repeat('x', 100) FROM generate_series(1, 3000) g;
SELECT count(*), sum(n) FROM kv_chunks;
ROLLBACK;
SELECT count(*) FROM kv_chunks;
INSERT INTO kv_chunks SELECT g, repeat('x', 100) FROM generate_series(1, 3000) g;
SELECT count(*), sum(n), min(length(pad)) FROM kv_chunks;
SELECT sqlstate_of($$INSERT INTO kv_chunks SELECT g % 2500 + 5000, repeat('y', 100) FROM generate_series(1, 3000) g$$);
SELECT count(*) FROM kv_chunks;
-- a savepoint rolled back after chunks of its statement were sent
BEGIN;
SAVEPOINT s;
DELETE FROM kv_chunks WHERE n > 1000;
ROLLBACK TO SAVEPOINT s;
INSERT INTO kv_chunks VALUES (0, 'zero');
COMMIT;
SELECT count(*), sum(n) FROM kv_chunks;
RESET almanac.write_batch_size;
-- a table dropped and created again over the same keys finds none: the
-- drop of the last table of a key space deleted its rows (ddl.sql)
DROP FOREIGN TABLE kv_chunks;
CREATE FOREIGN TABLE kv_chunks (n bigint, pad text) SERVER almanac_store
	OPTIONS (key_prefix 'chunk', key_columns 'n');
SELECT count(*), sum(n) FROM kv_chunks;
UPDATE kv_chunks SET pad = 'again' WHERE n = 0 RETURNING *;

DROP FOREIGN TABLE kv_blocks, kv_state, kv_tx, kv_bad, kv_new, kv_chunks;
