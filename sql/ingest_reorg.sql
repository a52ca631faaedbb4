-- Reorgs and finality on the anvil fixtures: blocks 6-8 of the old branch
-- are replaced by blocks 6-9 of the new one (common ancestor: block 5).  Tx A
-- moves from block 6 to block 8, tx C stays in block 7 (another block 7), tx B
-- and D are dropped, tx E is new.

-- errors with their detail and hint, without the PL/pgSQL call stack
\set SHOW_CONTEXT never
\getenv abs_srcdir PG_ABS_SRCDIR
\set anvil :abs_srcdir '/test/fixtures/anvil/'
CREATE TABLE fx AS
SELECT name, pg_read_file(:'anvil' || 'b' || name || '.json')::jsonb AS block,
	   pg_read_file(:'anvil' || 'r' || name || '.json')::jsonb AS receipts
  FROM unnest(ARRAY['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '6-old', '7-old', '8-old']) AS name;
CREATE TABLE notes AS SELECT pg_read_file(:'anvil' || 'notes.json')::jsonb->'reorg' AS n;

-- blocks 0-5 and the old branch 6-8 in one batch
SELECT almanac.ingest_blocks('anvil', jsonb_agg(block ORDER BY name), jsonb_agg(receipts ORDER BY name)) AS stored
  FROM fx WHERE name IN ('0', '1', '2', '3', '4', '5', '6-old', '7-old', '8-old');
-- an account state change in block 4 and one in the old block 7
INSERT INTO almanac.account_states (chain_id, account, block_number, state) VALUES
	('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', 4, '{"balance": "4"}'),
	('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', 7, '{"balance": "7"}');
SELECT almanac.account_state('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8') AS now,
	   almanac.account_state_at('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', 6) AS at_6,
	   almanac.account_state_at('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', 3) AS at_3;
-- a cross-chain message sent by tx B (old block 7)
INSERT INTO almanac.chains (chain_id) VALUES ('other');
INSERT INTO almanac.cross_chain_messages (protocol, message_key, source_chain_id, source_transaction_id,
	destination_chain_id, sent_at)
SELECT 'test-bridge', 'b', 'anvil', t.id, 'other', t.timestamp
  FROM almanac.transactions t, notes WHERE t.tx_hash = n->>'tx_b';

-- the new block 6 conflicts: by default an error, nothing changes; the hint
-- says how to take the new branch
SELECT error_of($$SELECT almanac.ingest_block('anvil', block, receipts) FROM fx WHERE name = '6'$$);
SELECT sqlstate_of($$SELECT almanac.ingest_blocks('anvil', jsonb_agg(block ORDER BY name), jsonb_agg(receipts ORDER BY name))
	FROM fx WHERE name IN ('6', '7')$$);
-- so is new block 7 on top of old block 6 (parent mismatch)
SELECT sqlstate_of($$SELECT almanac.ingest_block('anvil', block, receipts) FROM fx WHERE name = '7'$$);
SELECT almanac.ingest_block('anvil', block, receipts) FROM fx WHERE name = '6';
SELECT block_number, left(block_hash, 10) AS hash FROM almanac.blocks WHERE block_number >= 5 ORDER BY 1;

-- finality: safe up to 3, finalized up to 2; heads never move back
SELECT almanac.set_safe('anvil', 3) AS safe;
SELECT almanac.set_finalized('anvil', 2) AS finalized;
SELECT almanac.set_safe('anvil', 1) AS safe_unchanged, almanac.set_finalized('anvil', 0) AS finalized_unchanged;
SELECT block_number, is_safe, is_finalized FROM almanac.blocks WHERE chain_id = 'anvil' ORDER BY 1;
-- finalizing past the safe head brings the safe head along
SELECT almanac.set_finalized('anvil', 4) AS finalized;
SELECT chain_id, latest_block, safe_block, finalized_block FROM almanac.chain_heads WHERE chain_id = 'anvil';
SELECT block_number, is_safe, is_finalized FROM almanac.blocks WHERE chain_id = 'anvil' ORDER BY 1;
-- heads must name stored blocks; unknown chains and bad numbers are errors
SELECT sqlstate_of($$SELECT almanac.set_safe('anvil', 99)$$);
SELECT sqlstate_of($$SELECT almanac.set_finalized('nope', 1)$$);
SELECT sqlstate_of($$SELECT almanac.set_safe('anvil', -1)$$);
-- blocks written by INSERT (or COPY) leave chains.latest_block behind: the
-- error says that the block is there and how to set latest_block
INSERT INTO almanac.chains (chain_id) VALUES ('loaded');
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
VALUES ('loaded', 10, '0x' || repeat('01', 32), '0x' || repeat('00', 32), '2024-06-01 00:00:00+00'),
	   ('loaded', 11, '0x' || repeat('02', 32), '0x' || repeat('01', 32), '2024-06-01 00:00:12+00');
SELECT error_of($$SELECT almanac.set_finalized('loaded', 10)$$);
UPDATE almanac.chains SET latest_block = (SELECT max(block_number) FROM almanac.blocks WHERE chain_id = 'loaded') WHERE chain_id = 'loaded';
SELECT almanac.set_finalized('loaded', 10) AS finalized;
-- above every stored block it is the plain error
SELECT error_of($$SELECT almanac.set_safe('loaded', 12)$$);
DELETE FROM almanac.chains WHERE chain_id = 'loaded';
-- a revert below the finalized head is refused, and removes nothing
SELECT sqlstate_of($$SELECT almanac.revert_to('anvil', 3)$$);
SELECT almanac.revert_to('anvil', 3);
SELECT sqlstate_of($$SELECT almanac.revert_to('nope', 3)$$);
SELECT sqlstate_of($$SELECT almanac.revert_to('anvil', -1)$$);
SELECT count(*) AS blocks FROM almanac.blocks WHERE chain_id = 'anvil';

-- revert_to(5): the old branch goes with its transactions, events, state
-- changes and the message tx B sent; the latest state is block 4's again
SELECT almanac.revert_to('anvil', 5) AS removed;
SELECT chain_id, latest_block, safe_block, finalized_block FROM almanac.chain_heads WHERE chain_id = 'anvil';
SELECT (SELECT count(*) FROM almanac.blocks WHERE chain_id = 'anvil') AS blocks,
	   (SELECT count(*) FROM almanac.transactions WHERE block_number > 5) AS txs_above_5,
	   (SELECT count(*) FROM almanac.events WHERE block_number > 5) AS events_above_5,
	   (SELECT count(*) FROM almanac.account_states) AS state_changes,
	   (SELECT count(*) FROM almanac.cross_chain_messages) AS messages;
SELECT almanac.account_state('anvil', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8') AS now;
-- the audit history keeps what was orphaned
SELECT block_number, left(block_hash, 10) AS hash, cardinality(tx_hashes) AS txs,
	   tx_hashes @> ARRAY[(SELECT n->>'tx_b' FROM notes)] AS has_tx_b
  FROM almanac.orphaned_blocks ORDER BY block_number;
SELECT almanac.revert_to('anvil', 5) AS removed_again;

-- the new branch, one block at a time; A and C land in their new blocks
SELECT name, almanac.ingest_block('anvil', block, receipts) > 0 AS stored
  FROM (SELECT * FROM fx WHERE name IN ('6', '7', '8', '9') ORDER BY name) s;
SELECT CASE t.tx_hash WHEN n->>'tx_a' THEN 'A' WHEN n->>'tx_b' THEN 'B' WHEN n->>'tx_c' THEN 'C' ELSE '?' END AS tx,
	   t.block_number, left(b.block_hash, 10) AS block_hash
  FROM almanac.transactions t JOIN almanac.blocks b ON b.id = t.block_id, notes
 WHERE t.tx_hash IN (n->>'tx_a', n->>'tx_b', n->>'tx_c') ORDER BY 1;
SELECT count(*) AS events_above_5 FROM almanac.events WHERE block_number > 5;

-- cross-chain messages towards this chain's transactions, by hash only
-- (tx C), by id (tx A: the hash is filled in), and one towards a chain that
-- is not on this database (a coordinator's other node): no foreign key
INSERT INTO almanac.cross_chain_messages (protocol, message_key, source_chain_id, source_transaction_id,
	destination_chain_id, destination_tx_hash, destination_transaction_id, status, sent_at, delivered_at)
SELECT 'test-bridge', k, 'anvil', (SELECT min(id) FROM almanac.transactions WHERE block_number <= 5), dc, dh, di,
	   'delivered', now(), now()
  FROM notes, LATERAL (VALUES ('by-hash', 'anvil', n->>'tx_c', NULL::bigint),
		('by-id', 'anvil', NULL, (SELECT id FROM almanac.transactions WHERE tx_hash = n->>'tx_a')),
		('elsewhere', 'remote', '0x' || repeat('ab', 32), NULL)) AS v(k, dc, dh, di);
SELECT message_key, destination_chain_id,
	   CASE destination_tx_hash WHEN n->>'tx_a' THEN 'A' WHEN n->>'tx_c' THEN 'C' ELSE left(destination_tx_hash, 6) END AS dest,
	   destination_transaction_id IS NOT NULL AS has_id, status
  FROM almanac.cross_chain_messages, notes WHERE message_key IS NOT NULL ORDER BY 1;
-- the id and the hash must name the same transaction, of the destination
-- chain (ids depend on the tests before: shown as N)
SELECT regexp_replace(sqlstate_of($$INSERT INTO almanac.cross_chain_messages (protocol, message_key,
	source_chain_id, source_transaction_id, destination_chain_id, destination_tx_hash, destination_transaction_id,
	status, sent_at)
	SELECT 'test-bridge', 'bad-hash', 'anvil', t.id, 'anvil', '0x' || repeat('ab', 32), t.id, 'delivered', now()
	  FROM almanac.transactions t, notes WHERE t.tx_hash = n->>'tx_a'$$), 'transaction \d+', 'transaction N');
SELECT regexp_replace(sqlstate_of($$INSERT INTO almanac.cross_chain_messages (protocol, message_key,
	source_chain_id, source_transaction_id, destination_chain_id, destination_transaction_id, status, sent_at)
	SELECT 'test-bridge', 'bad-chain', 'anvil', t.id, 'remote', t.id, 'delivered', now()
	  FROM almanac.transactions t, notes WHERE t.tx_hash = n->>'tx_a'$$), 'transaction \d+', 'transaction N');

-- back to the old branch with on_reorg => 'revert': old block 6 replaces the
-- new block 6 (the chain is first reverted to block 5), then 7 and 8 follow
SELECT name, almanac.ingest_block('anvil', block, receipts, on_reorg => 'revert') > 0 AS stored
  FROM (SELECT * FROM fx WHERE name IN ('6-old', '7-old', '8-old') ORDER BY name) s;
SELECT block_number, left(block_hash, 10) AS hash, is_safe FROM almanac.blocks WHERE block_number >= 5 ORDER BY 1;
SELECT CASE t.tx_hash WHEN n->>'tx_a' THEN 'A' WHEN n->>'tx_b' THEN 'B' WHEN n->>'tx_c' THEN 'C' ELSE '?' END AS tx,
	   t.block_number
  FROM almanac.transactions t, notes
 WHERE t.tx_hash IN (n->>'tx_a', n->>'tx_b', n->>'tx_c') ORDER BY 1;
SELECT latest_block FROM almanac.chain_heads WHERE chain_id = 'anvil';
-- the messages delivered in the reverted blocks are pending again, their
-- hash kept (tx C is back, in old block 7: almanac_coordinator's
-- reconcile_messages would deliver it again); the other chain's is not
SELECT message_key,
	   CASE destination_tx_hash WHEN n->>'tx_a' THEN 'A' WHEN n->>'tx_c' THEN 'C' ELSE left(destination_tx_hash, 6) END AS dest,
	   destination_transaction_id IS NOT NULL AS has_id, status, delivered_at IS NOT NULL AS has_delivered_at
  FROM almanac.cross_chain_messages, notes WHERE message_key IS NOT NULL ORDER BY 1;
-- and forward again: new block 7 names new block 6 as parent, which is not
-- stored: the reorg is deeper than one block, so it is refused
SELECT sqlstate_of($$SELECT almanac.ingest_block('anvil', block, receipts, on_reorg => 'revert') FROM fx WHERE name = '7'$$);
-- ... while the new block 6 reorgs (ancestor 5) and then 7, 8, 9 follow
SELECT name, almanac.ingest_block('anvil', block, receipts, on_reorg => 'revert') > 0 AS stored
  FROM (SELECT * FROM fx WHERE name IN ('6', '7', '8', '9') ORDER BY name) s;
SELECT block_number, left(block_hash, 10) AS hash FROM almanac.blocks WHERE block_number >= 5 ORDER BY 1;
SELECT block_number, count(*) AS times_orphaned FROM almanac.orphaned_blocks GROUP BY 1 ORDER BY 1;
-- a reorg below the finalized head is refused
SELECT almanac.set_finalized('anvil', 7);
-- without on_reorg, the hint does not suggest a revert that would be refused
SELECT error_of($$SELECT almanac.ingest_block('anvil', block, receipts) FROM fx WHERE name = '6-old'$$);
SELECT sqlstate_of($$SELECT almanac.ingest_block('anvil', block, receipts, on_reorg => 'revert') FROM fx WHERE name = '6-old'$$);
SELECT sqlstate_of($$SELECT almanac.ingest_block('anvil', block, receipts, on_reorg => 'maybe') FROM fx WHERE name = '9'$$);

DELETE FROM almanac.chains;
DROP TABLE fx, notes;
