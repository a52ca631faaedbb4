-- Key conditions and orderings pushed into RocksDB: ranges, = ANY / IN as
-- one MultiGet, ORDER BY the key (forward and backward) with LIMIT, and
-- ANALYZE.  Each pushed shape is compared with the same query on a heap
-- table holding the same rows, so a wrong bound shows as a difference.

CREATE FOREIGN TABLE pd_blocks (
	chain_id text, block_number bigint, block_hash text, gas_used integer
) SERVER almanac_store
  OPTIONS (column_family 'pd_blocks', key_prefix 'pdblock', key_columns 'chain_id, block_number');
CREATE TABLE pd_heap (chain_id text, block_number bigint, block_hash text, gas_used integer,
					  PRIMARY KEY (chain_id, block_number));

-- chains whose names sort differently as key bytes than as text:
-- 'eth' < 'eth!' in SQL, but "eth:" > "eth!:" as bytes (':' > '!')
INSERT INTO pd_heap
SELECT c, n, 'h' || c || n, (n * 7) % 100
FROM unnest(ARRAY['eth', 'eth!', 'base', 'a:b']) AS c, generate_series(0, 300) AS n;
INSERT INTO pd_blocks SELECT * FROM pd_heap;

-- compare a query on the foreign table with the same on the heap table
CREATE FUNCTION pd_same(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	kv text[];
	heap text[];
	-- in the query's order if it has one, else sorted
	agg text := CASE WHEN q LIKE '%ORDER BY%' THEN 'array_agg(r::text)'
				ELSE 'array_agg(r::text ORDER BY r::text)' END;
BEGIN
	EXECUTE format('SELECT %s FROM (%s) r', agg, q) INTO kv;
	EXECUTE format('SELECT %s FROM (%s) r', agg, replace(q, 'pd_blocks', 'pd_heap')) INTO heap;
	IF kv IS NOT DISTINCT FROM heap THEN
		RETURN 'same ' || coalesce(cardinality(kv), 0) || ' rows';
	END IF;
	RETURN 'DIFFERENT: ' || coalesce(kv::text, 'none') || ' vs ' || coalesce(heap::text, 'none');
END $$;

-- ranges on the column after the equality columns: a bounded iterator
EXPLAIN (VERBOSE, COSTS OFF)
SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number BETWEEN 10 AND 20;
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number BETWEEN 10 AND 20$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth!' AND block_number > 295$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'a:b' AND block_number < 3$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number >= 300$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number <= 0$$);
-- the column on the right, cross-type (int4) values, a bound beyond the domain
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'base' AND 290 < block_number AND block_number < 295::int4$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'base' AND block_number > -5 AND block_number < 2$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'base' AND block_number < -5$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'base' AND block_number BETWEEN 20 AND 10$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'base' AND block_number > NULL::bigint$$);
-- the conditions behind the bounds are not checked again on each row; of two
-- lower bounds on the column, the one not used for the bound stays a Filter
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number > 5 AND block_number > 297$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number > 297 AND block_number > 5$$);
EXPLAIN (COSTS OFF)
SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number > 5 AND block_number > 297;
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number > 9223372036854775807$$);
SELECT pd_same($$SELECT count(*) FROM pd_blocks WHERE chain_id = 'a:b' AND block_number <= 9223372036854775807$$);
-- a scan of many rows decodes only the columns the query uses: used in
-- the target list, only in a condition, only in the order, only in a
-- subquery, in an aggregate, or as the whole row
SELECT pd_same($$SELECT block_hash FROM pd_blocks WHERE chain_id = 'eth' AND block_number BETWEEN 10 AND 14$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number < 50 AND block_hash LIKE '%4'$$);
SELECT pd_same($$SELECT block_hash FROM pd_blocks WHERE chain_id = 'base' AND block_number < 20 ORDER BY gas_used, block_number$$);
SELECT pd_same($$SELECT (SELECT count(*) FROM generate_series(1, 3) g WHERE g <= b.gas_used) FROM pd_blocks b WHERE chain_id = 'eth' AND block_number < 9$$);
SELECT pd_same($$SELECT count(block_hash), sum(gas_used) FROM pd_blocks WHERE chain_id = 'eth!' AND block_number BETWEEN 100 AND 199$$);
SELECT pd_same($$SELECT b FROM pd_blocks b WHERE chain_id = 'a:b' AND block_number > 295$$);
SELECT pd_same($$SELECT chain_id, gas_used FROM pd_blocks WHERE block_number = 7 AND gas_used > 10$$);
-- other conditions still apply inside the range
SELECT pd_same($$SELECT block_number, gas_used FROM pd_blocks WHERE chain_id = 'eth' AND block_number BETWEEN 10 AND 40 AND gas_used > 50$$);
-- a range on the first key column of a text type is not pushed (no byte order)
EXPLAIN (COSTS OFF) SELECT * FROM pd_blocks WHERE chain_id > 'eth';
SELECT pd_same($$SELECT chain_id, block_number FROM pd_blocks WHERE chain_id > 'eth' ORDER BY 1, 2$$);

-- = ANY and IN on the last key column: one MultiGet, duplicates and NULLs ignored
EXPLAIN (VERBOSE, COSTS OFF)
SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number IN (5, 3, 5, 999);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number IN (5, 3, 5, 999) ORDER BY 1$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth!' AND block_number = ANY (ARRAY[7, NULL, -1, 300]::int4[]) ORDER BY 1$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number = ANY ('{}'::bigint[])$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number = ANY (NULL::bigint[])$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number = ANY (ARRAY(SELECT g * 50 FROM generate_series(1, 10) g)) ORDER BY 1$$);
-- with a parameter, and reading the transaction's own uncommitted writes
PREPARE pd_any(text, bigint[]) AS
	SELECT block_number, block_hash FROM pd_blocks WHERE chain_id = $1 AND block_number = ANY ($2) ORDER BY 1;
EXPLAIN (COSTS OFF) EXECUTE pd_any('eth', '{1,2}');
BEGIN;
UPDATE pd_blocks SET block_hash = 'changed' WHERE chain_id = 'eth' AND block_number = 2;
DELETE FROM pd_blocks WHERE chain_id = 'eth' AND block_number = 3;
INSERT INTO pd_blocks VALUES ('eth', 1000, 'new', 0);
EXECUTE pd_any('eth', '{1,2,3,1000}');
ROLLBACK;
EXECUTE pd_any('eth', '{1,2,3,1000}');
DEALLOCATE pd_any;

-- ORDER BY the key: no Sort, forward or backward; LIMIT stops the iterator
EXPLAIN (VERBOSE, COSTS OFF)
SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' ORDER BY block_number DESC LIMIT 1;
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' ORDER BY block_number DESC LIMIT 1$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth!' ORDER BY block_number DESC LIMIT 5$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'a:b' ORDER BY chain_id, block_number LIMIT 3$$);
EXPLAIN (COSTS OFF)
SELECT block_number FROM pd_blocks WHERE chain_id = 'base' AND block_number < 100 ORDER BY block_number DESC LIMIT 3;
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'base' AND block_number < 100 ORDER BY block_number DESC LIMIT 3$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'base' AND block_number >= 298 ORDER BY block_number$$);
-- backward over the transaction's own writes, at both ends of the range
BEGIN;
INSERT INTO pd_heap VALUES ('eth', 301, 'x', 0), ('eth', 400, 'y', 0);
INSERT INTO pd_blocks VALUES ('eth', 301, 'x', 0), ('eth', 400, 'y', 0);
DELETE FROM pd_heap WHERE chain_id = 'eth' AND block_number = 300;
DELETE FROM pd_blocks WHERE chain_id = 'eth' AND block_number = 300;
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' ORDER BY block_number DESC LIMIT 3$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number < 400 ORDER BY block_number DESC LIMIT 2$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number > 298 ORDER BY block_number$$);
ROLLBACK;
-- after its first FETCH a cursor reads the transaction's writes as they were
-- then, through later writes, a savepoint rolled back and a batch shipped early
BEGIN;
INSERT INTO pd_blocks VALUES ('cur', 1, 'a', 0), ('cur', 2, 'b', 0);
DECLARE c CURSOR FOR SELECT block_number, block_hash FROM pd_blocks WHERE chain_id = 'cur' ORDER BY block_number;
FETCH 1 FROM c;
INSERT INTO pd_blocks VALUES ('cur', 3, 'c', 0);
UPDATE pd_blocks SET block_hash = 'B' WHERE chain_id = 'cur' AND block_number = 2;
SAVEPOINT s;
INSERT INTO pd_blocks VALUES ('cur', 4, 'd', 0);
ROLLBACK TO SAVEPOINT s;
SET LOCAL almanac.write_batch_size = 64;
INSERT INTO pd_blocks SELECT 'cur', g, 'x', 0 FROM generate_series(10, 2000) g;
FETCH ALL FROM c;
CLOSE c;
SELECT count(*), min(block_hash) FILTER (WHERE block_number = 2) FROM pd_blocks WHERE chain_id = 'cur';
ROLLBACK;
-- a cursor reads the transaction's writes as of DECLARE, as a heap cursor
-- does: rows the statements run before its first FETCH write are not seen
-- (src/kv/nested.h)
BEGIN;
DECLARE g CURSOR FOR SELECT block_hash FROM pd_blocks WHERE chain_id = 'cur' AND block_number = 100;
DECLARE m CURSOR FOR SELECT block_hash FROM pd_blocks WHERE chain_id = 'cur' AND block_number IN (100, 101);
INSERT INTO pd_blocks VALUES ('cur', 100, 'late', 0), ('cur', 101, 'late', 0);
FETCH ALL FROM g;
FETCH ALL FROM m;
ROLLBACK;
-- ... nor rows sent to the store early, whose versions carry no command id
-- (the cursor keeps the store's rows as they were: docs/write-path.md)
BEGIN;
DECLARE n CURSOR FOR SELECT count(*) FROM pd_blocks WHERE chain_id = 'cur2';
SET LOCAL almanac.write_batch_size = 64;
INSERT INTO pd_blocks SELECT 'cur2', g, repeat('x', 200), 0 FROM generate_series(1, 2000) g;
SELECT count(*) FROM pd_blocks WHERE chain_id = 'cur2';
FETCH ALL FROM n;
ROLLBACK;
SELECT count(*) FROM pd_blocks WHERE chain_id = 'cur';
-- where byte order is not SQL order the planner sorts: text key columns
EXPLAIN (COSTS OFF) SELECT chain_id, block_number FROM pd_blocks ORDER BY chain_id, block_number LIMIT 5;
SELECT pd_same($$SELECT chain_id, block_number FROM pd_blocks ORDER BY chain_id, block_number LIMIT 5$$);
SELECT pd_same($$SELECT chain_id, block_number FROM pd_blocks WHERE block_number = 7 ORDER BY chain_id DESC$$);
-- ... and when the ORDER BY skips a key column or mixes directions
EXPLAIN (COSTS OFF) SELECT * FROM pd_blocks ORDER BY block_number LIMIT 1;
EXPLAIN (COSTS OFF) SELECT * FROM pd_blocks WHERE chain_id = 'eth' ORDER BY block_number, gas_used DESC LIMIT 1;

-- tables that share a column family and prefix but not the key attribute
-- (the design's account:{chain}:{account}:state and :code) read only their own keys
CREATE FOREIGN TABLE pd_state (chain_id text, account text, balance bigint) SERVER almanac_store
	OPTIONS (column_family 'pd_acc', key_prefix 'account', key_columns 'chain_id, account', key_attribute 'state');
CREATE FOREIGN TABLE pd_code (chain_id text, account text, code bytea) SERVER almanac_store
	OPTIONS (column_family 'pd_acc', key_prefix 'account', key_columns 'chain_id, account', key_attribute 'code');
INSERT INTO pd_state VALUES ('eth', '0xab', 10), ('eth', '0xcd', 20);
INSERT INTO pd_code VALUES ('eth', '0xab', '\x6080');
SELECT * FROM pd_state WHERE chain_id = 'eth' ORDER BY account;
SELECT * FROM pd_code;
SELECT * FROM pd_code WHERE chain_id = 'eth' AND account = '0xcd';
ANALYZE pd_state;
SELECT reltuples FROM pg_class WHERE oid = 'pd_state'::regclass;
DROP FOREIGN TABLE pd_state, pd_code;

-- a Get or a MultiGet checks on the row only the conditions that are not its
-- key: other columns, a second condition on a key column (eth 5 has gas 35,
-- eth 8 has 56)
EXPLAIN (COSTS OFF)
SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number = 5 AND gas_used > 50;
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number = 5 AND gas_used > 50$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number = 8 AND gas_used > 50$$);
EXPLAIN (COSTS OFF)
SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number = 7 AND block_number IN (5, 6);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number = 7 AND block_number IN (5, 6)$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number = 6 AND block_number IN (5, 6)$$);
SELECT pd_same($$SELECT block_number FROM pd_blocks WHERE chain_id = 'eth' AND block_number IN (5, 8, 11) AND gas_used > 50 ORDER BY 1$$);
-- ... and rows found by key have exactly the key values asked for, for every
-- key type: char(n) padding, varchar, bytea and uuid, text with separators
CREATE FOREIGN TABLE pd_types (c char(4), v varchar(8), b bytea, u uuid, t text, x int)
	SERVER almanac_store OPTIONS (column_family 'pd_types', key_prefix 'types', key_columns 'c, v, b, u, t');
CREATE TABLE pd_types_heap (c char(4), v varchar(8), b bytea, u uuid, t text, x int,
	PRIMARY KEY (c, v, b, u, t));
INSERT INTO pd_types_heap VALUES
	('ab', 'v:1', '\x003a5c', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'a\:b', 1),
	('ab c', 'v', '\x', '00000000-0000-0000-0000-000000000000', '', 2);
INSERT INTO pd_types SELECT * FROM pd_types_heap;
SELECT (SELECT array_agg(x) FROM pd_types
		WHERE c = q.c AND v = q.v AND b = q.b AND u = q.u AND t = q.t) AS kv,
	   (SELECT array_agg(x) FROM pd_types_heap
		WHERE c = q.c AND v = q.v AND b = q.b AND u = q.u AND t = q.t) AS heap
FROM (VALUES ('ab  '::char(4), 'v:1'::varchar, '\x003a5c'::bytea, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, 'a\:b'),
			 ('ab', 'v:1', '\x003a5c', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'a\:'),
			 ('ab c', 'v', '\x', '00000000-0000-0000-0000-000000000000', ''),
			 ('ab c', 'v ', '\x', '00000000-0000-0000-0000-000000000000', '')) AS q(c, v, b, u, t);
EXPLAIN (COSTS OFF) SELECT x FROM pd_types WHERE c = 'ab' AND v = 'v:1' AND b = '\x003a5c'
	AND u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' AND t = 'a\:b';
-- and the key columns read back as the heap table stores them (char(n) padded)
SELECT (SELECT array_agg(r::text ORDER BY x) FROM pd_types r) =
	   (SELECT array_agg(r::text ORDER BY x) FROM pd_types_heap r) AS same_rows;
SELECT c, octet_length(c), c || '|' AS c_concat FROM pd_types ORDER BY x;
DROP FOREIGN TABLE pd_types;
DROP TABLE pd_types_heap;
-- ... also through a domain over char(n), whose n is the domain's typmod
CREATE DOMAIN pd_char3 AS char(3);
CREATE FOREIGN TABLE pd_dchar (c pd_char3, x int) SERVER almanac_store
	OPTIONS (column_family 'pd_dchar', key_prefix 'dchar', key_columns 'c');
INSERT INTO pd_dchar VALUES ('a', 1), ('ab ', 2);
SELECT c, octet_length(c), c::bytea FROM pd_dchar ORDER BY x;
SELECT octet_length(c) FROM pd_dchar WHERE c = 'a';
DROP FOREIGN TABLE pd_dchar;
DROP DOMAIN pd_char3;

-- a value longer than any key matches nothing, as in a heap table
SELECT count(*) FROM pd_blocks WHERE chain_id = repeat('x', 2000);
SELECT count(*) FROM pd_blocks WHERE chain_id = repeat('x', 2000) AND block_number = 1;
SELECT count(*) FROM pd_blocks WHERE chain_id = repeat('x', 2000) AND block_number > 1;

-- a nondeterministic collation's equality is not byte equality: not pushed
CREATE COLLATION pd_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE FOREIGN TABLE pd_ci_t (name text COLLATE pd_ci, v int) SERVER almanac_store
	OPTIONS (column_family 'pd_ci', key_prefix 'ci', key_columns 'name');
INSERT INTO pd_ci_t VALUES ('Alice', 1);
EXPLAIN (COSTS OFF) SELECT v FROM pd_ci_t WHERE name = 'ALICE';
SELECT v FROM pd_ci_t WHERE name = 'ALICE';
SELECT v FROM pd_ci_t WHERE name IN ('alice', 'bob');
DROP FOREIGN TABLE pd_ci_t;
DROP COLLATION pd_ci;
-- a domain key column: values are compared as the base type, so a domain's
-- CHECK does not fail a comparison the heap would evaluate
CREATE DOMAIN pd_small AS bigint CHECK (VALUE < 1000);
CREATE FOREIGN TABLE pd_dom (k pd_small, v int) SERVER almanac_store
	OPTIONS (column_family 'pd_dom', key_prefix 'dom', key_columns 'k');
INSERT INTO pd_dom VALUES (5, 1), (999, 2);
SELECT v FROM pd_dom WHERE k < 5000 ORDER BY k;
SELECT v FROM pd_dom WHERE k = 5000;
SELECT v FROM pd_dom WHERE k IN (5, 5000);
DROP FOREIGN TABLE pd_dom;
DROP DOMAIN pd_small;

-- ANALYZE gathers statistics from a pass over the table: estimates follow
SELECT reltuples FROM pg_class WHERE oid = 'pd_blocks'::regclass;
ANALYZE pd_blocks;
SELECT reltuples FROM pg_class WHERE oid = 'pd_blocks'::regclass;
SELECT attname, n_distinct FROM pg_stats WHERE tablename = 'pd_blocks' AND attname IN ('chain_id', 'gas_used') ORDER BY 1;
EXPLAIN SELECT * FROM pd_blocks WHERE chain_id = 'eth' AND gas_used = 1;

DROP FUNCTION pd_same(text);
DROP TABLE pd_heap;
DROP FOREIGN TABLE pd_blocks;
