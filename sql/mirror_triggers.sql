-- A mirror whose triggers stop firing on every write is marked out of sync
-- (src/sql/51_mirror_triggers.sql), so the router reads the heap instead of
-- answering rows the mirror missed; enable_mirror and resync refuse while the
-- triggers are off, and bring the mirror back once they are on again.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS almanac;
RESET client_min_messages;
\set SHOW_CONTEXT never
DELETE FROM almanac.chains;
INSERT INTO almanac.chains (chain_id, name) VALUES ('mt', 'mirror triggers');
CREATE FUNCTION add_block(n bigint) RETURNS void LANGUAGE sql AS $$
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('mt', n, '0x' || lpad(to_hex(n), 64, '0'), '0x' || lpad(to_hex(n + 1000), 64, '0'),
			timestamptz '2024-01-01 00:00:00+00' + n * interval '12 s') $$;
SELECT add_block(1);
PREPARE blk(bigint) AS SELECT block_number, block_hash FROM almanac.blocks WHERE chain_id = 'mt' AND block_number = $1;
SELECT almanac.router_stats_reset();

-- DISABLE TRIGGER: marked out of sync, with a warning naming the table
ALTER TABLE almanac.blocks DISABLE TRIGGER blocks_mirror;
SELECT relid, enabled, in_sync FROM almanac.mirrors ORDER BY relid;
-- a row written meanwhile misses the mirror; the router reads the heap
SELECT add_block(2);
EXECUTE blk(2);
SELECT count(*) AS differences FROM almanac.verify('almanac.blocks');
-- enabling the trigger again does not bring the missed row back: still out of sync
ALTER TABLE almanac.blocks ENABLE ALWAYS TRIGGER blocks_mirror;
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.blocks'::regclass;
EXECUTE blk(2);
SELECT table_name, routed, fallback_out_of_sync FROM almanac.router_stats WHERE table_name = 'almanac.blocks'::regclass;
-- resync repairs it, and lookups are routed again
SELECT almanac.resync('almanac.blocks') AS rewritten;
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.blocks'::regclass;
EXECUTE blk(2);
SELECT table_name, routed, fallback_out_of_sync FROM almanac.router_stats WHERE table_name = 'almanac.blocks'::regclass;

-- ENABLE TRIGGER without ALWAYS: rows written under session_replication_role
-- = replica would skip it
ALTER TABLE almanac.transactions ENABLE TRIGGER transactions_mirror_statement;
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.transactions'::regclass;
-- resync and enable_mirror refuse until the triggers are on again
SELECT sqlstate_of($$SELECT almanac.resync('almanac.transactions')$$);
SELECT almanac.resync('almanac.transactions');
SELECT almanac.disable_mirror('almanac.transactions');
SELECT sqlstate_of($$SELECT almanac.enable_mirror('almanac.transactions')$$);
ALTER TABLE almanac.transactions ENABLE ALWAYS TRIGGER transactions_mirror_statement;
SELECT almanac.enable_mirror('almanac.transactions') AS rewritten;
SELECT enabled, in_sync FROM almanac.mirrors WHERE relid = 'almanac.transactions'::regclass;

-- DISABLE TRIGGER ALL, as pg_restore --disable-triggers does, in a
-- transaction that then writes: the mark commits with the writes
BEGIN;
ALTER TABLE almanac.blocks DISABLE TRIGGER ALL;
SELECT add_block(3);
ALTER TABLE almanac.blocks ENABLE TRIGGER ALL;
COMMIT;
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.blocks'::regclass;
EXECUTE blk(3);
-- ENABLE TRIGGER ALL enables them for origin writes only, not ALWAYS:
-- resync refuses until they are ALWAYS again
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'almanac.blocks'::regclass AND tgname LIKE 'blocks_mirror%' ORDER BY 1;
SELECT sqlstate_of($$SELECT almanac.resync('almanac.blocks')$$);
ALTER TABLE almanac.blocks ENABLE ALWAYS TRIGGER blocks_mirror, ENABLE ALWAYS TRIGGER blocks_mirror_statement,
	ENABLE ALWAYS TRIGGER blocks_mirror_truncate;
SELECT almanac.resync('almanac.blocks') AS rewritten;
-- a rolled-back DISABLE leaves the mirror in sync
BEGIN;
ALTER TABLE almanac.blocks DISABLE TRIGGER blocks_mirror_truncate;
ROLLBACK;
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.blocks'::regclass;

-- DROP TRIGGER, and a trigger replaced by one calling another function
BEGIN;
DROP TRIGGER account_states_mirror ON almanac.account_states;
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.account_states'::regclass;
ROLLBACK;
CREATE FUNCTION not_a_mirror() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
BEGIN;
CREATE OR REPLACE TRIGGER account_states_mirror AFTER INSERT OR UPDATE OR DELETE ON almanac.account_states
	FOR EACH ROW EXECUTE FUNCTION not_a_mirror();
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.account_states'::regclass;
ROLLBACK;
SELECT relid, enabled, in_sync FROM almanac.mirrors ORDER BY relid;

-- the check fires under session_replication_role = replica too (its event
-- trigger is ENABLE ALWAYS): a trigger disabled there is caught all the same
SELECT evtenabled FROM pg_event_trigger WHERE evtname = 'almanac_mirror_triggers';
BEGIN;
SET LOCAL session_replication_role = replica;
ALTER TABLE almanac.blocks DISABLE TRIGGER blocks_mirror;
SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.blocks'::regclass;
ROLLBACK;

-- other tables' DDL, by a role that may not touch almanac.mirrors, is not disturbed
CREATE ROLE mt_user;
CREATE SCHEMA mt AUTHORIZATION mt_user;
SET ROLE mt_user;
CREATE TABLE mt.own (k int);
CREATE FUNCTION mt.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER mt_t AFTER INSERT ON mt.own FOR EACH ROW EXECUTE FUNCTION mt.noop();
ALTER TABLE mt.own DISABLE TRIGGER mt_t;
ALTER TABLE mt.own ADD COLUMN v text;
DROP TRIGGER mt_t ON mt.own;
RESET ROLE;
DROP SCHEMA mt CASCADE;
DROP ROLE mt_user;
SELECT relid, enabled, in_sync FROM almanac.mirrors ORDER BY relid;

DELETE FROM almanac.chains;
DROP FUNCTION add_block(bigint);
DROP FUNCTION not_a_mirror();
