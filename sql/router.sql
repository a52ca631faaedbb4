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

-- the recognised shapes
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2;
EXPLAIN (COSTS OFF, VERBOSE) SELECT block_hash, block_number + 1 FROM almanac.blocks WHERE block_number = 3 AND chain_id = 'c1' AND is_safe;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number IN (1, 2);
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' ORDER BY block_number DESC LIMIT 1;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.transactions WHERE chain_id = 'c1' AND tx_hash = $$0x11$$;
EXPLAIN (COSTS OFF) SELECT state FROM almanac.account_states
 WHERE chain_id = 'c1' AND account = '0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' ORDER BY block_number DESC LIMIT 1;
PREPARE p(text, bigint) AS SELECT * FROM almanac.blocks WHERE chain_id = $1 AND block_number = $2;
EXPLAIN (COSTS OFF) EXECUTE p('c1', 1);
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE p('c1', 1);
RESET plan_cache_mode;
DEALLOCATE p;

-- not routed: other shapes go to PostgreSQL's planner
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1';
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2 FOR UPDATE;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number > 2;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2 OR block_number = 3;
EXPLAIN (COSTS OFF) SELECT ctid FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' ORDER BY block_number LIMIT 1;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND is_safe ORDER BY block_number DESC LIMIT 1;
EXPLAIN (COSTS OFF) SELECT * FROM almanac.account_states WHERE chain_id = 'c1' AND account = '0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = (SELECT 2);
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
