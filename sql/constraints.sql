-- Constraints, cascades and exact values of the core schema.

INSERT INTO almanac.chains (chain_id, evm_chain_id, name) VALUES
	('eth', 1, 'Ethereum'), ('base', 8453, 'Base');

INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
SELECT 'eth', n, '0x' || lpad(to_hex(n + 1), 64, '0'), '0x' || lpad(to_hex(n), 64, '0'),
	   timestamptz '2024-01-01 00:00:00+00' + n * interval '12 seconds'
  FROM generate_series(100, 102) AS n;

-- a second block with the same chain and number is a unique violation
SELECT sqlstate_of($$
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', 101, '0x' || repeat('ab', 32), '0x' || repeat('cd', 32), now())$$);
-- the same number on another chain is fine
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
VALUES ('base', 101, '0x' || repeat('ab', 32), '0x' || repeat('cd', 32), '2024-01-01 00:00:00+00');

-- a transaction pointing at a missing block is a foreign key violation
SELECT sqlstate_of($$
	INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash,
		from_address, value, timestamp)
	VALUES ('eth', 999999, 101, 0, '0x' || repeat('11', 32), '0x' || repeat('22', 20), 0, now())$$);
-- ... and so is one whose chain or number disagrees with its block
SELECT sqlstate_of($$
	INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash,
		from_address, value, timestamp)
	SELECT 'eth', id, 102, 0, '0x' || repeat('11', 32), '0x' || repeat('22', 20), 0, now()
	  FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 101$$);

-- malformed hashes and addresses are refused, not stored
SELECT sqlstate_of($$
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', 500, '0xABC', '0x' || repeat('cd', 32), now())$$);
SELECT sqlstate_of($$
	INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash,
		from_address, value, timestamp)
	SELECT 'eth', id, 101, 0, '0x' || repeat('11', 32), '0x' || repeat('AB', 20), 0, now()
	  FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 101$$);
-- the hex check is exactly the regular expression it stands for
SELECT v, almanac._is_hex_id(v, 32) AS is_hash, v ~ '^0x[0-9a-f]{64}$' AS regex,
	   almanac._is_hex_id(v, 20) AS is_address, v ~ '^0x[0-9a-f]{40}$' AS regex_address
  FROM unnest(ARRAY['0x' || repeat('0a', 32), '0x' || repeat('0A', 32), '0x' || repeat('ab', 20),
					'0x' || repeat('a', 63), '0x' || repeat('a', 65), '0X' || repeat('ab', 32),
					'0x' || repeat('ab', 31) || 'ag', '0x' || repeat('ab', 32) || E'\n', 'x' || repeat('ab', 32),
					'', '0x', NULL]) AS v;
SELECT sqlstate_of($$INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', -1, '0x' || repeat('ab', 32), '0x' || repeat('cd', 32), now())$$);
SELECT sqlstate_of($$INSERT INTO almanac.chains (chain_id) VALUES ('')$$);
SELECT sqlstate_of($$INSERT INTO almanac.chains (chain_id) VALUES ('has space')$$);

-- 2^256-1 round-trips through value digit for digit; 2^256 does not fit
INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash,
	from_address, to_address, value, status, gas_used, timestamp)
SELECT 'eth', id, 101, 0, '0x' || repeat('11', 32), '0x' || repeat('22', 20), '0x' || repeat('33', 20),
	   2::numeric ^ 256 - 1, 1, 21000, timestamp
  FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 101;
SELECT value, value::text = '115792089237316195423570985008687907853269984665640564039457584007913129639935' AS exact
  FROM almanac.transactions WHERE tx_hash = '0x' || repeat('11', 32);
SELECT sqlstate_of($$UPDATE almanac.transactions SET value = 2::numeric ^ 256$$);
SELECT sqlstate_of($$UPDATE almanac.transactions SET value = -1$$);

-- a transaction hash is stored once per chain
SELECT sqlstate_of($$
	INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash,
		from_address, value, timestamp)
	SELECT 'eth', id, 102, 0, '0x' || repeat('11', 32), '0x' || repeat('22', 20), 0, now()
	  FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 102$$);

-- events: an anonymous log and one with four topics; the natural key
-- (block, log index) keeps a block's events from being stored twice
INSERT INTO almanac.events (chain_id, block_id, block_number, transaction_id, log_index,
	contract_address, event_type, topics, data, timestamp)
SELECT t.chain_id, t.block_id, t.block_number, t.id, i, '0x' || repeat('44', 20),
	   CASE WHEN i = 0 THEN 'anonymous' ELSE '0x' || repeat('e' || i, 32) END,
	   CASE WHEN i = 0 THEN '{}'::text[] ELSE ARRAY['0x' || repeat('e' || i, 32), '0x' || repeat('0a', 32)] END,
	   '\x01', t.timestamp
  FROM almanac.transactions t, generate_series(0, 2) AS i;
SELECT sqlstate_of($$
	INSERT INTO almanac.events (chain_id, block_id, block_number, transaction_id, log_index,
		contract_address, event_type, timestamp)
	SELECT chain_id, block_id, block_number, transaction_id, 1, contract_address, event_type, timestamp
	  FROM almanac.events WHERE log_index = 1$$);
SELECT sqlstate_of($$UPDATE almanac.events SET topics = ARRAY['a','b','c','d','e'] WHERE log_index = 1$$);
SELECT log_index, event_type, topics FROM almanac.events ORDER BY log_index;

-- account state history: a state change must belong to a stored block
INSERT INTO almanac.account_states (chain_id, account, block_number, state) VALUES
	('eth', '0x' || repeat('22', 20), 100, '{"balance": "10", "nonce": 0}'),
	('eth', '0x' || repeat('22', 20), 101, '{"balance": "7", "nonce": 1}');
SELECT sqlstate_of($$INSERT INTO almanac.account_states (chain_id, account, block_number, state)
	VALUES ('eth', '0x' || repeat('22', 20), 777, '{}')$$);

-- a cross-chain message from eth to base, delivered
INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash,
	from_address, value, timestamp)
SELECT 'base', id, 101, 0, '0x' || repeat('55', 32), '0x' || repeat('22', 20), 0, timestamp
  FROM almanac.blocks WHERE chain_id = 'base' AND block_number = 101;
INSERT INTO almanac.cross_chain_messages (protocol, message_key, source_chain_id, source_transaction_id,
	destination_chain_id, destination_transaction_id, status, sent_at, delivered_at)
SELECT 'test-bridge', 'm1', 'eth', s.id, 'base', d.id, 'delivered', s.timestamp, d.timestamp
  FROM almanac.transactions s, almanac.transactions d
 WHERE s.tx_hash = '0x' || repeat('11', 32) AND d.tx_hash = '0x' || repeat('55', 32);
-- delivered needs a destination
SELECT sqlstate_of($$INSERT INTO almanac.cross_chain_messages (source_chain_id, source_transaction_id,
	destination_chain_id, status, sent_at)
	SELECT 'eth', id, 'base', 'delivered', now() FROM almanac.transactions WHERE tx_hash = '0x' || repeat('11', 32)$$);

-- finalized implies safe, on blocks and on chain heads
SELECT sqlstate_of($$UPDATE almanac.blocks SET is_finalized = true WHERE block_number = 100$$);
SELECT sqlstate_of($$UPDATE almanac.chains SET safe_block = 5, finalized_block = 6 WHERE chain_id = 'eth'$$);

-- deleting the destination block cascades to its transaction and puts the
-- message back in flight
DELETE FROM almanac.blocks WHERE chain_id = 'base' AND block_number = 101;
SELECT protocol, status, destination_transaction_id, delivered_at FROM almanac.cross_chain_messages;

-- deleting a block removes its transactions, events and state changes; the
-- message whose source was in it goes too
DELETE FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 101;
SELECT (SELECT count(*) FROM almanac.transactions) AS transactions,
	   (SELECT count(*) FROM almanac.events) AS events,
	   (SELECT count(*) FROM almanac.account_states) AS account_states,
	   (SELECT count(*) FROM almanac.cross_chain_messages) AS messages,
	   (SELECT count(*) FROM almanac.blocks) AS blocks;

-- deleting a chain removes everything of it
DELETE FROM almanac.chains WHERE chain_id = 'eth';
SELECT chain_id, count(*) FROM almanac.blocks GROUP BY 1 ORDER BY 1;

-- a failed multi-row statement leaves no partial rows behind
SELECT sqlstate_of($$INSERT INTO almanac.chains (chain_id) VALUES ('ok-1'), ('ok-2'), ('')$$);
SELECT count(*) AS partial_rows FROM almanac.chains WHERE chain_id LIKE 'ok-%';

DELETE FROM almanac.chains;
