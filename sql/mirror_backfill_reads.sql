-- The transaction that writes a mirror outside the row triggers, by the
-- backfill of enable_mirror or a resync, reads the heap for the rest of the
-- transaction, as one that writes the table does: those writes wait in the
-- transaction's buffer, which a routed lookup does not read.  The rows a
-- TRUNCATE left in a disabled mirror were answered again in the transaction
-- that enabled it, after its backfill had erased them.  Found by
-- test/t/043_differential_fuzz.pl (FUZZ_SEED=11).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS almanac;
RESET client_min_messages;

INSERT INTO almanac.chains (chain_id) VALUES ('mbr');
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp, is_safe, metadata)
SELECT 'mbr', n, '0x' || lpad(to_hex(n), 64, '0'), '0x' || lpad(to_hex(n + 100), 64, '0'), '2024-01-01', true,
	   jsonb_build_object('v', 1)
  FROM generate_series(1, 4) n;
INSERT INTO almanac.account_states (chain_id, account, block_number, state)
SELECT 'mbr', '0x' || repeat('ab', 20), n, jsonb_build_object('n', n) FROM generate_series(1, 4) n;
SELECT almanac.router_stats_reset();

-- the mirrors off, the tables emptied (their mirrors keep the rows)
SELECT almanac.disable_mirror('almanac.blocks');
SELECT almanac.disable_mirror('almanac.account_states');
SET client_min_messages = warning;
TRUNCATE almanac.blocks CASCADE;
RESET client_min_messages;

-- enabled again in a transaction: the backfill erases the rows, and the
-- transaction's own lookups find none of them
BEGIN;
SELECT almanac.enable_mirror('almanac.blocks') AS blocks_erased,
	   almanac.enable_mirror('almanac.account_states') AS states_erased;
SELECT block_number FROM almanac.blocks WHERE chain_id = 'mbr' AND block_number = 2;
SELECT block_number FROM almanac.blocks WHERE chain_id = 'mbr' AND block_number IN (1, 3);
SELECT block_number FROM almanac.blocks WHERE chain_id = 'mbr' ORDER BY block_number DESC LIMIT 1;
SELECT state FROM almanac.account_states WHERE chain_id = 'mbr' AND account = '0x' || repeat('ab', 20)
 ORDER BY block_number DESC LIMIT 1;
COMMIT;
-- read from the heap, not routed
SELECT sum(routed) AS routed, sum(fallback_own_writes) AS own_writes FROM almanac.router_stats;
SELECT block_number FROM almanac.blocks WHERE chain_id = 'mbr' AND block_number = 2;
SELECT count(*) FROM almanac.verify('almanac.blocks');

-- a resync in a transaction: a row deleted while the mirror's trigger was
-- off, found in the heap no more by the transaction that repaired it
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
SELECT 'mbr', n, '0x' || lpad(to_hex(n), 64, '0'), '0x' || lpad(to_hex(n + 100), 64, '0'), '2024-01-01'
  FROM generate_series(1, 3) n;
SET client_min_messages = error;
ALTER TABLE almanac.blocks DISABLE TRIGGER blocks_mirror;
DELETE FROM almanac.blocks WHERE chain_id = 'mbr' AND block_number = 3;
ALTER TABLE almanac.blocks ENABLE ALWAYS TRIGGER blocks_mirror;
RESET client_min_messages;
BEGIN;
SELECT almanac.resync('almanac.blocks');
SELECT block_number FROM almanac.blocks WHERE chain_id = 'mbr' AND block_number = 3;
SELECT block_number FROM almanac.blocks WHERE chain_id = 'mbr' ORDER BY block_number DESC LIMIT 1;
COMMIT;
SELECT block_number FROM almanac.blocks WHERE chain_id = 'mbr' AND block_number = 3;
SELECT count(*) FROM almanac.verify('almanac.blocks');

DELETE FROM almanac.chains WHERE chain_id = 'mbr';
