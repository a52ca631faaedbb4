-- The router: point lookups and latest-row reads on the core tables answered
-- from their mirrors, with the heap's answers.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS almanac;
RESET client_min_messages;
\getenv abs_srcdir PG_ABS_SRCDIR
\set corpus :abs_srcdir '/test/router/corpus.sql'
INSERT INTO almanac.chains (chain_id) VALUES ('c1'), ('c2');
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp, is_safe, metadata)
SELECT c, n, '0x' || lpad(to_hex(n) || c, 64, '0'), '0x' || lpad(to_hex(n - 1) || c, 64, '0'),
	   '2024-01-01 00:00:00+00'::timestamptz + n * interval '12 seconds', n < 3, jsonb_build_object('n', n)
  FROM unnest(ARRAY['c1', 'c2']) c, generate_series(1, 5) n
 WHERE c = 'c1' OR n < 3;
INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash, from_address, value, data, timestamp)
SELECT b.chain_id, b.id, b.block_number, 0, '0x' || lpad('11' || lpad(b.block_number::text, 2, '0'), 64, '1'),
	   '0x' || repeat('ab', 20), 10 ^ 30 + b.block_number, '\xdeadbeef', b.timestamp
  FROM almanac.blocks b WHERE chain_id = 'c1' ORDER BY b.block_number;
INSERT INTO almanac.account_states (chain_id, account, block_number, state) VALUES
	('c1', '0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, '{"balance": 1}'),
	('c1', '0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 3, '{"balance": 3}'),
	('c1', '0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 2, '{"balance": 2}'),
	('c1', '0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 4, '{"balance": 4}');
-- events: per block, logs 0-5 of two contracts and two topic0s (and one
-- anonymous log), inserted out of order
INSERT INTO almanac.events (chain_id, block_id, block_number, log_index, contract_address, event_type,
							topics, data, timestamp)
SELECT b.chain_id, b.id, b.block_number, l, '0x' || repeat(CASE WHEN l % 3 = 2 THEN 'c2' ELSE 'c1' END, 20),
	   CASE WHEN l = 5 THEN 'anonymous' WHEN l % 2 = 0 THEN '0x' || repeat('dd', 32) ELSE '0x' || repeat('8c', 32) END,
	   CASE WHEN l = 5 THEN '{}'::text[] ELSE ARRAY['0x' || repeat(CASE WHEN l % 2 = 0 THEN 'dd' ELSE '8c' END, 32)] END,
	   int4send(b.block_number::int * 100 + l), b.timestamp
  FROM almanac.blocks b, generate_series(0, 5) l ORDER BY l % 2, b.block_number % 3, l DESC;

-- the recognised shapes
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2;
EXPLAIN (COSTS OFF, VERBOSE) SELECT block_hash, block_number + 1 FROM almanac.blocks WHERE block_number = 3 AND chain_id = 'c1' AND is_safe;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number IN (1, 2);
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' ORDER BY block_number DESC LIMIT 1;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.transactions WHERE chain_id = 'c1' AND tx_hash = $$0x11$$;
EXPLAIN (COSTS OFF) SELECT state FROM almanac.account_states
 WHERE chain_id = 'c1' AND account = '0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' ORDER BY block_number DESC LIMIT 1;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number BETWEEN 2 AND 4 ORDER BY block_number DESC, log_index DESC LIMIT 10;
EXPLAIN (COSTS OFF) SELECT log_index FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1' AND event_type = 'anonymous'
   AND 2 < block_number;
EXPLAIN (COSTS OFF) SELECT block_number, log_index, event_type FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
 ORDER BY block_number DESC, log_index DESC LIMIT 5;
PREPARE p(text, bigint) AS SELECT * FROM almanac.blocks WHERE chain_id = $1 AND block_number = $2;
EXPLAIN (COSTS OFF) EXECUTE p('c1', 1);
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE p('c1', 1);
RESET plan_cache_mode;
DEALLOCATE p;
-- SQL functions in a key value are inlined into the plan, those they call
-- too: replacing any of them replans a cached plan, as it replans one of
-- PostgreSQL's planner (the query names only the outer one)
CREATE FUNCTION router_step(bigint) RETURNS bigint LANGUAGE sql STABLE AS 'SELECT $1 + 1';
CREATE FUNCTION router_key_of(bigint) RETURNS bigint LANGUAGE sql STABLE AS 'SELECT router_step($1)';
SET plan_cache_mode = force_generic_plan;
PREPARE p(bigint) AS SELECT block_number FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = router_key_of($1);
EXPLAIN (COSTS OFF) EXECUTE p(1);
EXECUTE p(1);
CREATE OR REPLACE FUNCTION router_step(bigint) RETURNS bigint LANGUAGE sql STABLE AS 'SELECT $1 + 2';
EXECUTE p(1);
RESET plan_cache_mode;
DEALLOCATE p;
DROP FUNCTION router_key_of(bigint);
DROP FUNCTION router_step(bigint);

-- The scan's result descriptor and target list are built once per plan,
-- kept until the plan's memory goes (router/lookup.c, plan_info): a sort
-- column the query does not return is no output of the scan (a SQL
-- function's junk filter still finds the columns it returns); dynamic SQL's
-- one-shot plans, each with another target list, freed and their addresses
-- taken again, each get their own; so do prepared statements made anew
-- under one name, a cursor's copy of its plan, and the generic plan that
-- EXPLAIN EXECUTE shows after executions
EXPLAIN (COSTS OFF, VERBOSE) SELECT block_hash FROM almanac.blocks WHERE chain_id = 'c1' ORDER BY block_number DESC LIMIT 1;
SELECT block_hash FROM almanac.blocks WHERE chain_id = 'c1' ORDER BY block_number DESC LIMIT 1;
CREATE FUNCTION pg_temp.latest_hash(text) RETURNS text LANGUAGE sql STABLE
	AS $$SELECT block_hash FROM almanac.blocks WHERE chain_id = $1 ORDER BY block_number DESC LIMIT 1$$;
SELECT pg_temp.latest_hash('c1'), pg_temp.latest_hash('c2'), pg_temp.latest_hash('none');
DO $$
DECLARE
	v bigint;
	h text;
	bad int := 0;
BEGIN
	FOR i IN 1 .. 40 LOOP
		IF i % 3 = 0 THEN
			EXECUTE format('SELECT block_hash FROM almanac.blocks WHERE chain_id = %L AND block_number = %s', 'c1', i % 5 + 1)
				INTO h;
			IF h IS DISTINCT FROM '0x' || lpad(to_hex(i % 5 + 1) || 'c1', 64, '0') THEN
				bad := bad + 1;
			END IF;
		ELSE
			EXECUTE format('SELECT block_number * %s FROM almanac.blocks WHERE chain_id = %L AND block_number = 2', i, 'c1')
				INTO v;
			IF v IS DISTINCT FROM 2 * i THEN
				bad := bad + 1;
			END IF;
		END IF;
	END LOOP;
	RAISE NOTICE 'dynamic SQL, wrong answers: %', bad;
END
$$;
SET plan_cache_mode = force_generic_plan;
PREPARE p(bigint) AS SELECT block_number + 1 AS next FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = $1;
EXECUTE p(1);
EXECUTE p(2);
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE p(2);
DEALLOCATE p;
PREPARE p(bigint) AS SELECT block_hash, is_safe FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = $1;
EXECUTE p(1);
EXECUTE p(3);
DEALLOCATE p;
RESET plan_cache_mode;
BEGIN;
DECLARE c NO SCROLL CURSOR FOR SELECT block_number, is_safe FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 4;
FETCH c;
FETCH c;
CLOSE c;
COMMIT;

-- not routed: other shapes go to PostgreSQL's planner
-- a false condition: no row, and the key values after it are never computed,
-- as PostgreSQL's planner folds the clause; a true one changes nothing
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE false AND chain_id = 'c1' AND block_number = 1 / 0;
SELECT block_number FROM almanac.blocks WHERE false AND chain_id = 'c1' AND block_number = 1 / 0;
EXPLAIN (COSTS OFF) SELECT block_number FROM almanac.blocks WHERE true AND chain_id = 'c1' AND block_number = 2;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1';
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2 FOR UPDATE;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number > 2;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2 OR block_number = 3;
EXPLAIN (COSTS OFF) SELECT ctid FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' ORDER BY block_number LIMIT 1;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND is_safe ORDER BY block_number DESC LIMIT 1;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.account_states WHERE chain_id = 'c1' AND account = '0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = (SELECT 2);
EXPLAIN (COSTS OFF) SELECT * FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = 'anonymous' AND block_number > 2 ORDER BY block_number, log_index LIMIT 1;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = 'anonymous' AND block_number > 2 AND block_number > 3;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = 'anonymous' AND block_number > 2 AND topics = '{}';
EXPLAIN (COSTS OFF) SELECT * FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = 'anonymous' ORDER BY block_number DESC, log_index DESC OFFSET 1;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
 ORDER BY block_number DESC, log_index DESC;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
 ORDER BY block_number DESC LIMIT 3;
-- the latest log of a block: log_index is stored descending in the events
-- mirror, whose last key is then the block's first log
EXPLAIN (COSTS OFF) SELECT * FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = 'anonymous' AND block_number = 3 ORDER BY log_index DESC LIMIT 1;
SET almanac.router = off;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2;
RESET almanac.router;

-- the corpus, routed, then planned by PostgreSQL: the same output
SELECT almanac.router_stats_reset();
\i :corpus
SELECT table_name, routed > 0 AS routed, fallback_router_off FROM almanac.router_stats ORDER BY 1;
SET almanac.router = off;
SELECT almanac.router_stats_reset();
\i :corpus
SELECT table_name, routed, fallback_router_off FROM almanac.router_stats ORDER BY 1;
RESET almanac.router;

-- a small row cache whose generations turn over: every routed lookup,
-- answered by a Get, by an entry of the current generation or by one moved
-- from the previous one, gives the heap's row
INSERT INTO almanac.chains (chain_id) VALUES ('rc');
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp, metadata)
SELECT 'rc', n, '0x' || lpad(to_hex(n), 64, 'e'), '0x' || lpad(to_hex(n - 1), 64, 'e'),
	   '2024-01-01 00:00:00+00'::timestamptz + n * interval '12 seconds', jsonb_build_object('pad', repeat('x', 300))
  FROM generate_series(1, 120) n;
CREATE TEMP TABLE rc_heap AS SELECT * FROM almanac.blocks WHERE chain_id = 'rc';
SET almanac.reader_row_cache_size = '64kB';
SET almanac.shared_row_cache = off;
CREATE FUNCTION pg_temp.rc_differences() RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
	r almanac.blocks;
	h almanac.blocks;
	k bigint;
	bad bigint := 0;
BEGIN
	FOR pass IN 0 .. 3 LOOP
		FOR i IN 0 .. 129 LOOP
			-- in order, backward, and hopping (also past the last block)
			k := CASE pass WHEN 1 THEN 130 - i WHEN 2 THEN (i * 7) % 130 ELSE i % 40 + 1 END;
			SELECT * INTO r FROM almanac.blocks WHERE chain_id = 'rc' AND block_number = k;
			SELECT * INTO h FROM rc_heap WHERE block_number = k;
			IF r IS DISTINCT FROM h THEN
				bad := bad + 1;
			END IF;
		END LOOP;
	END LOOP;
	RETURN bad;
END
$f$;
SELECT hits AS hits0, evicted AS evicted0 FROM almanac.reader_row_cache_stats() \gset
SELECT pg_temp.rc_differences() AS differences;
SELECT hits > :hits0 AS hit, evicted > :evicted0 AS evicted FROM almanac.reader_row_cache_stats();
SELECT routed > 0 AS routed FROM almanac.router_stats WHERE table_name = 'almanac.blocks'::regclass;
RESET almanac.reader_row_cache_size;
RESET almanac.shared_row_cache;
