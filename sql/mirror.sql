-- Mirrors (mirror.h): kept by triggers in the heap's transaction under the
-- foreign tables' keys, through ingest, reorgs, plain DML and TRUNCATE; the
-- router's fallbacks to the heap; verify and resync; bad input.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS almanac;
RESET client_min_messages;
\set SHOW_CONTEXT never
\getenv abs_srcdir PG_ABS_SRCDIR
\set anvil :abs_srcdir '/test/fixtures/anvil/'
\set corpus :abs_srcdir '/test/router/anvil.sql'
-- a clean start: earlier tests' chains go, through the mirrors' delete triggers
DELETE FROM almanac.chains;
SELECT relid, key_prefix, key_columns, key_attribute, latest_column, column_family, enabled, in_sync,
	   key_descending, signature = almanac._mirror_signature(relid, key_descending) AS current_shape
  FROM almanac.mirrors ORDER BY relid;

CREATE TABLE fx AS
SELECT name, pg_read_file(:'anvil' || 'b' || name || '.json')::jsonb AS block,
	   pg_read_file(:'anvil' || 'r' || name || '.json')::jsonb AS receipts
  FROM unnest(ARRAY['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '6-old', '7-old', '8-old']) AS name;
CREATE TABLE notes AS SELECT pg_read_file(:'anvil' || 'notes.json')::jsonb->'reorg' AS n;
SELECT n->>'tx_a' AS tx_a, n->>'tx_b' AS tx_b, n->>'tx_c' AS tx_c FROM notes \gset

-- blocks 0-5 and the old branch 6-8, and state changes in blocks 4 and old 7
SELECT almanac.ingest_blocks('anvil', jsonb_agg(block ORDER BY name), jsonb_agg(receipts ORDER BY name)) AS stored
  FROM fx WHERE name IN ('0', '1', '2', '3', '4', '5', '6-old', '7-old', '8-old');
INSERT INTO almanac.account_states (chain_id, account, block_number, state) VALUES
	('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', 4, '{"balance": "4"}'),
	('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', 7, '{"balance": "7"}');

-- the mirrors' keys are the foreign tables' keys: almanac.block_key and
-- almanac.account_state_key, tx:{chain}:{hash}
CREATE FOREIGN TABLE mirror_blocks (key bytea, value bytea)
	SERVER almanac_store OPTIONS (raw 'true', column_family 'mirror.blocks');
CREATE FOREIGN TABLE mirror_transactions (key bytea, value bytea)
	SERVER almanac_store OPTIONS (raw 'true', column_family 'mirror.transactions');
CREATE FOREIGN TABLE mirror_states (key bytea, value bytea)
	SERVER almanac_store OPTIONS (raw 'true', column_family 'mirror.account_states');
CREATE FOREIGN TABLE mirror_events (key bytea, value bytea)
	SERVER almanac_store OPTIONS (raw 'true', column_family 'mirror.events');
SELECT (SELECT count(*) FROM almanac.blocks) AS blocks, (SELECT count(*) FROM mirror_blocks) AS mirrored,
	   (SELECT count(*) FROM almanac.blocks b JOIN mirror_blocks m ON m.key = almanac.block_key(b.chain_id, b.block_number)) AS same_keys;
SELECT (SELECT count(*) FROM almanac.transactions) AS transactions, (SELECT count(*) FROM mirror_transactions) AS mirrored,
	   (SELECT count(*) FROM almanac.transactions t JOIN mirror_transactions m
		   ON m.key = almanac.make_key('tx', row(t.chain_id, t.tx_hash))) AS same_keys;
SELECT key = almanac.account_state_key('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8') AS state_key FROM mirror_states;
-- event:{chain}:{contract}:{event_type}:{block_number}:{log_index}, the
-- last two descending: complemented big-endian, so newest first in key order
SELECT (SELECT count(*) FROM almanac.events) AS events, (SELECT count(*) FROM mirror_events) AS mirrored,
	   (SELECT count(*) FROM almanac.events e JOIN mirror_events m
		   ON m.key = almanac.mirror_key('almanac.events', e)) AS same_keys;
SELECT almanac.decode_mirror_key('almanac.events', key) AS key FROM mirror_events ORDER BY key LIMIT 3;
SELECT e.block_number, e.log_index,
	   encode(substring(almanac.mirror_key('almanac.events', e) from octet_length(almanac.mirror_key('almanac.events', e)) - 12), 'hex') AS key_end
  FROM almanac.events e ORDER BY block_number, log_index LIMIT 2;
SELECT almanac.decode_key(key, '{text,text,text,bigint,integer}') FROM mirror_events LIMIT 1;
SELECT almanac.mirror_key('almanac.events', b) FROM almanac.blocks b LIMIT 1;
SELECT almanac.decode_mirror_key('almanac.events', almanac.block_key('anvil', 1)) AS not_an_event_key;
-- the value is the whole row
SELECT (almanac._decode_value(m.value, NULL::almanac.blocks)).block_hash = b.block_hash AS same_row
  FROM almanac.blocks b JOIN mirror_blocks m ON m.key = almanac.block_key(b.chain_id, b.block_number)
 WHERE b.block_number = 3;

-- the reorg: the new block 6 replaces old 6-8 (revert_to's cascades), 7-9 follow
SELECT almanac.ingest_block('anvil', block, receipts, on_reorg => 'revert') > 0 AS stored FROM fx WHERE name = '6';
SELECT name, almanac.ingest_block('anvil', block, receipts) > 0 AS stored
  FROM (SELECT * FROM fx WHERE name IN ('7', '8', '9') ORDER BY name) s;
-- table and mirror agree, and so do routed and heap lookups
SELECT 'blocks' AS t, * FROM almanac.verify('almanac.blocks')
UNION ALL SELECT 'transactions', * FROM almanac.verify('almanac.transactions')
UNION ALL SELECT 'account_states', * FROM almanac.verify('almanac.account_states')
UNION ALL SELECT 'events', * FROM almanac.verify('almanac.events');
-- the old branch's events are gone from the mirror too
SELECT count(*) AS old_branch_events FROM mirror_events m
 WHERE NOT EXISTS (SELECT FROM almanac.events e WHERE m.key = almanac.mirror_key('almanac.events', e));
SELECT contract_address AS ev_contract, event_type AS ev_type FROM almanac.events
 WHERE chain_id = 'anvil' GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT 1 \gset
SELECT almanac.router_stats_reset();
\i :corpus
SELECT table_name, routed > 0 AS routed, fallback_router_off FROM almanac.router_stats ORDER BY 1;
SET almanac.router = off;
\i :corpus
RESET almanac.router;

-- deleting an account's latest state puts back the one before it
INSERT INTO almanac.account_states (chain_id, account, block_number, state) VALUES
	('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', 8, '{"balance": "8"}'),
	('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', 9, '{"balance": "9"}');
SELECT almanac.account_state('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8') AS now;
DELETE FROM almanac.account_states WHERE chain_id = 'anvil' AND block_number = 9;
SELECT almanac.account_state('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8') AS after_delete;
UPDATE almanac.account_states SET block_number = 2 WHERE chain_id = 'anvil' AND block_number = 8;
SELECT almanac.account_state('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8') AS after_move_down;
SELECT * FROM almanac.verify('almanac.account_states');

-- a transaction writing more accounts than the shared lock table could hold
-- one lock each for (20,000): the mirror locks the table instead
INSERT INTO almanac.account_states (chain_id, account, block_number, state)
SELECT 'anvil', '0x' || lpad(to_hex(i), 40, '0'), 5, jsonb_build_object('i', i) FROM generate_series(1, 20000) i;
SELECT state FROM almanac.account_states
 WHERE chain_id = 'anvil' AND account = '0x' || lpad(to_hex(19999), 40, '0') ORDER BY block_number DESC LIMIT 1;
SELECT count(*) AS differences FROM almanac.verify('almanac.account_states');
DELETE FROM almanac.account_states WHERE chain_id = 'anvil' AND block_number = 5;

-- own writes: the transaction's lookups read the heap (counted), savepoints included
PREPARE latest_state AS SELECT block_number, state FROM almanac.account_states
 WHERE chain_id = 'anvil' AND account = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8' ORDER BY block_number DESC LIMIT 1;
SELECT almanac.router_stats_reset();
BEGIN;
EXECUTE latest_state;
INSERT INTO almanac.account_states (chain_id, account, block_number, state) VALUES
	('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', 9, '{"balance": "9 again"}');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE latest_state;
EXECUTE latest_state;
SAVEPOINT s;
DELETE FROM almanac.account_states WHERE chain_id = 'anvil' AND block_number = 9;
EXECUTE latest_state;
ROLLBACK TO SAVEPOINT s;
EXECUTE latest_state;
COMMIT;
EXECUTE latest_state;
BEGIN;
DELETE FROM almanac.account_states WHERE chain_id = 'anvil' AND block_number = 9;
ROLLBACK;
EXECUTE latest_state;
SELECT table_name, routed, fallback_own_writes FROM almanac.router_stats WHERE table_name = 'almanac.account_states'::regclass;
-- the same for events: a range and the latest of a contract, with a deleted event
PREPARE ev_range AS SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'anvil' AND contract_address = :'ev_contract' AND event_type = :'ev_type'
   AND block_number BETWEEN 0 AND 9 ORDER BY block_number DESC, log_index DESC LIMIT 3;
PREPARE ev_recent AS SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'anvil' AND contract_address = :'ev_contract' ORDER BY block_number DESC, log_index DESC LIMIT 3;
EXECUTE ev_range;
BEGIN;
DELETE FROM almanac.events e WHERE chain_id = 'anvil' AND contract_address = :'ev_contract'
   AND event_type = :'ev_type' AND (block_number, log_index) =
	   (SELECT block_number, log_index FROM almanac.events WHERE chain_id = 'anvil' AND contract_address = :'ev_contract'
		 ORDER BY block_number DESC, log_index DESC LIMIT 1);
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE ev_range;
EXECUTE ev_range;
EXECUTE ev_recent;
ROLLBACK;
EXECUTE ev_range;
EXECUTE ev_recent;
SELECT table_name, routed > 0 AS routed, fallback_own_writes FROM almanac.router_stats WHERE table_name = 'almanac.events'::regclass;
-- a statement that writes the table: a query it runs sees rows whose row
-- triggers have not fired yet, so it reads the heap too (block 11 is seen by
-- the lookup made while inserting block 12)
CREATE FUNCTION block_seen(bigint) RETURNS boolean LANGUAGE sql VOLATILE AS
$$ SELECT block_hash IS NOT NULL FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number = $1 $$;
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp, metadata)
SELECT 'anvil', n, '0x' || repeat(n::text, 32), '0x' || repeat('00', 32), '2024-01-01',
	   jsonb_build_object('previous_seen', coalesce(block_seen(n - 1), false))
  FROM generate_series(11, 12) n
RETURNING block_number, metadata;
DELETE FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number > 9;

-- rows written under session_replication_role = replica (logical
-- replication's apply, some loaders) reach the mirror too
SET session_replication_role = replica;
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
VALUES ('anvil', 11, '0x' || repeat('11', 32), '0x' || repeat('00', 32), '2024-01-01');
RESET session_replication_role;
SELECT count(*) AS differences FROM almanac.verify('almanac.blocks');
SELECT block_number FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number = 11;
DELETE FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number = 11;

-- a disabled mirror: plans read the heap again, writes no longer reach it
PREPARE blk(bigint) AS SELECT block_number, metadata->>'x' AS x FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number = $1;
EXPLAIN (COSTS OFF) EXECUTE blk(3);
SELECT almanac.disable_mirror('almanac.blocks');
EXPLAIN (COSTS OFF) EXECUTE blk(3);
UPDATE almanac.blocks SET metadata = metadata || '{"x": "changed"}' WHERE chain_id = 'anvil' AND block_number = 3;
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
SELECT 'anvil', 10, '0x' || repeat('10', 32), block_hash, timestamp FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number = 9;
DELETE FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number = 9;
EXECUTE blk(3);
-- verify and resync refuse a disabled mirror's repair; turning it on by hand plants the differences
SELECT sqlstate_of($$SELECT almanac.resync('almanac.blocks')$$);
UPDATE almanac.mirrors SET enabled = true WHERE relid = 'almanac.blocks'::regclass;
SELECT almanac.decode_key(key, '{text,bigint}') AS key, kind FROM almanac.verify('almanac.blocks') ORDER BY key;
SELECT almanac.decode_key(key, '{text,bigint}') AS key, kind FROM almanac.verify('almanac.blocks', 'anvil', 9, 10) ORDER BY key;
SELECT count(*) FROM almanac.verify('almanac.blocks', 'anvil', 0, 2);
SELECT count(*) FROM almanac.verify('almanac.blocks', 'nope');
-- the background check's sample (almanac.verify_interval) finds the missing
-- and the different row (not the extra one: it samples the table) and marks
-- the mirror out of sync: the router reads the heap until resync
SELECT almanac.verify_sample('almanac.blocks', 1000) AS sampled_differences;
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.blocks'::regclass;
SELECT almanac.verify_sample('almanac.blocks', 1000) AS skipped_when_out_of_sync;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE blk(3);
EXECUTE blk(3);
SELECT almanac.resync('almanac.blocks') AS rewritten;
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.blocks'::regclass;
SELECT count(*) AS differences FROM almanac.verify('almanac.blocks');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE blk(3);
EXECUTE blk(3);
-- enable_mirror fills a mirror that was off
SELECT almanac.disable_mirror('almanac.transactions');
DELETE FROM almanac.transactions WHERE chain_id = 'anvil' AND tx_hash = :'tx_c';
SELECT almanac.enable_mirror('almanac.transactions') AS rewritten;
SELECT count(*) AS differences FROM almanac.verify('almanac.transactions');
SELECT block_number FROM almanac.transactions WHERE chain_id = 'anvil' AND tx_hash = :'tx_c';
-- and the events mirror: differences planted by enabling it by hand (an
-- extra key, then a missing one, which the sample finds), then a backfill
SELECT almanac.disable_mirror('almanac.events');
CREATE TABLE deleted_event AS SELECT * FROM almanac.events
 WHERE chain_id = 'anvil' AND contract_address = :'ev_contract' AND event_type = :'ev_type'
 ORDER BY block_number DESC, log_index DESC LIMIT 1;
DELETE FROM almanac.events WHERE id = (SELECT id FROM deleted_event);
UPDATE almanac.mirrors SET enabled = true WHERE relid = 'almanac.events'::regclass;
SELECT almanac.decode_mirror_key('almanac.events', key) AS key, kind FROM almanac.verify('almanac.events');
SELECT almanac.resync('almanac.events') AS rewritten;
EXECUTE ev_range;
SELECT almanac.disable_mirror('almanac.events');
INSERT INTO almanac.events OVERRIDING SYSTEM VALUE SELECT * FROM deleted_event;
UPDATE almanac.mirrors SET enabled = true WHERE relid = 'almanac.events'::regclass;
SELECT almanac.decode_mirror_key('almanac.events', key) AS key, kind FROM almanac.verify('almanac.events');
SELECT almanac.verify_sample('almanac.events', 1000) AS sampled_differences;
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.events'::regclass;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE ev_range;
EXECUTE ev_range;
SELECT almanac.resync('almanac.events') AS rewritten;
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.events'::regclass;
SELECT almanac.disable_mirror('almanac.events');
DELETE FROM almanac.events WHERE id = (SELECT id FROM deleted_event);
SELECT almanac.enable_mirror('almanac.events') AS rewritten;
EXECUTE ev_range;
INSERT INTO almanac.events OVERRIDING SYSTEM VALUE SELECT * FROM deleted_event;
SELECT count(*) AS differences FROM almanac.verify('almanac.events');
EXECUTE ev_range;
DROP TABLE deleted_event;

-- the mirror's keys of the busiest contract and topic0, in key order: newest first
SELECT k[5] AS block_number, k[6] AS log_index
  FROM (SELECT almanac.decode_mirror_key('almanac.events', key) AS k, key FROM mirror_events) s
 WHERE k[3] = :'ev_contract' AND k[4] = :'ev_type' ORDER BY key LIMIT 4;

-- a mirror written in another key order (a catalog from before key_descending
-- lists none; here the catalog is changed under the store's keys) is
-- "altered": read from the heap, whole resync only, which erases the keys of
-- the other order (none of them decodes in this one) and writes every row
SELECT almanac.router_stats_reset();
UPDATE almanac.mirrors SET key_descending = '{}' WHERE relid = 'almanac.events'::regclass;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE ev_range;
EXECUTE ev_range;
EXECUTE ev_recent;
SELECT kind, count(*), count(almanac.decode_mirror_key('almanac.events', key)) AS decodable
  FROM almanac.verify('almanac.events') GROUP BY kind ORDER BY kind;
SELECT sqlstate_of($$SELECT almanac.resync('almanac.events', 'anvil')$$);
SELECT almanac.resync('almanac.events') = 2 * (SELECT count(*) FROM almanac.events) AS all_rewritten;
SELECT (SELECT count(*) FROM mirror_events) = (SELECT count(*) FROM almanac.events) AS same_count,
	   (SELECT count(*) FROM almanac.events e JOIN mirror_events m
		   ON m.key = almanac.make_key('event', row(e.chain_id, e.contract_address, e.event_type,
												   e.block_number, e.log_index))) = (SELECT count(*) FROM almanac.events) AS ascending_keys;
-- the ascending order is read backward, with the same answers
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE ev_range;
EXECUTE ev_range;
EXECUTE ev_recent;
\i :corpus
-- and back
UPDATE almanac.mirrors SET key_descending = '{block_number,log_index}' WHERE relid = 'almanac.events'::regclass;
EXECUTE ev_range;
SELECT almanac.resync('almanac.events') = 2 * (SELECT count(*) FROM almanac.events) AS all_rewritten;
SELECT count(*) AS differences FROM almanac.verify('almanac.events');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE ev_recent;
EXECUTE ev_recent;
SELECT table_name, routed > 0 AS routed, fallback_altered FROM almanac.router_stats
 WHERE table_name = 'almanac.events'::regclass;
-- only integer key columns can descend: another mirror is off
UPDATE almanac.mirrors SET key_descending = '{event_type}' WHERE relid = 'almanac.events'::regclass;
EXPLAIN (COSTS OFF) EXECUTE ev_range;
-- block_number descending but log_index not: no one iteration gives the
-- order, so neither events shape is routed
UPDATE almanac.mirrors SET key_descending = '{block_number}' WHERE relid = 'almanac.events'::regclass;
EXPLAIN (COSTS OFF) EXECUTE ev_range;
EXPLAIN (COSTS OFF) EXECUTE ev_recent;
UPDATE almanac.mirrors SET key_descending = '{block_number,log_index}' WHERE relid = 'almanac.events'::regclass;

-- an altered table: lookups read the heap until resync rewrites every row
ALTER TABLE almanac.transactions ADD COLUMN note text DEFAULT 'added';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT note FROM almanac.transactions WHERE chain_id = 'anvil' AND tx_hash = :'tx_a';
SELECT block_number, note FROM almanac.transactions WHERE chain_id = 'anvil' AND tx_hash = :'tx_a';
SELECT sqlstate_of($$SELECT almanac.resync('almanac.transactions', 'anvil')$$);
SELECT almanac.resync('almanac.transactions') = (SELECT count(*) FROM almanac.transactions) AS all_rewritten;
SELECT block_number, note FROM almanac.transactions WHERE chain_id = 'anvil' AND tx_hash = :'tx_a';
ALTER TABLE almanac.transactions DROP COLUMN note;
SELECT block_number FROM almanac.transactions WHERE chain_id = 'anvil' AND tx_hash = :'tx_a';
SELECT almanac.resync('almanac.transactions') = (SELECT count(*) FROM almanac.transactions) AS all_rewritten;
SELECT table_name, routed > 0 AS routed, fallback_disabled, fallback_out_of_sync, fallback_altered > 0 AS altered
  FROM almanac.router_stats ORDER BY 1;

-- bad input
SELECT sqlstate_of($$SELECT almanac.enable_mirror('almanac.cross_chain_messages')$$);
-- an event_type too long for the events mirror's key is refused while it is on
SELECT sqlstate_of($$INSERT INTO almanac.events (chain_id, block_id, block_number, log_index, contract_address,
	event_type, timestamp) SELECT chain_id, id, block_number, 99, '0x' || repeat('ab', 20), repeat('x', 2000),
	timestamp FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number = 1$$);
SELECT sqlstate_of($$SELECT * FROM almanac.verify('almanac.chains')$$);
SELECT sqlstate_of($$SELECT * FROM almanac.verify('almanac.no_such_table')$$);
SELECT sqlstate_of($$SELECT * FROM almanac.verify(NULL)$$);
SELECT sqlstate_of($$SELECT almanac.resync(NULL)$$);
SELECT sqlstate_of($$SELECT almanac.verify_sample('almanac.blocks', 0)$$);
SELECT sqlstate_of($$SELECT * FROM almanac.verify('almanac.blocks', from_block => 1, to_block => 0)$$);
CREATE ROLE mirror_user;
GRANT USAGE ON SCHEMA almanac TO mirror_user;
SET ROLE mirror_user;
SELECT sqlstate_of($$SELECT almanac.disable_mirror('almanac.blocks')$$);
SELECT sqlstate_of($$SELECT * FROM almanac.verify('almanac.blocks')$$);
-- the counters every session shares are reset only by those granted it, as
-- pg_stat_reset()
SELECT sqlstate_of($$SELECT almanac.router_stats_reset()$$);
-- the router checks privileges as the heap does
SELECT sqlstate_of($$SELECT block_hash FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number = 1$$);
RESET ROLE;
REVOKE USAGE ON SCHEMA almanac FROM mirror_user;
DROP ROLE mirror_user;

-- TRUNCATE empties the mirror
TRUNCATE almanac.account_states;
SELECT count(*) FROM mirror_states WHERE value IS NOT NULL;
EXECUTE latest_state;
SELECT count(*) AS differences FROM almanac.verify('almanac.account_states');
TRUNCATE almanac.events;
SELECT count(*) FROM mirror_events WHERE value IS NOT NULL;
EXECUTE ev_recent;
SELECT count(*) AS differences FROM almanac.verify('almanac.events');
DEALLOCATE latest_state;
DEALLOCATE ev_range;
DEALLOCATE ev_recent;
DEALLOCATE blk;
DROP FUNCTION block_seen(bigint);
DROP FOREIGN TABLE mirror_blocks, mirror_transactions, mirror_states, mirror_events;
DROP TABLE fx, notes;
