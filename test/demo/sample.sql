-- A small deterministic multi-chain sample for `make demo`: three chains, 40
-- blocks each, a few transactions per block, ERC-20 style Transfer logs,
-- account state history and cross-chain messages from eth to the others.

INSERT INTO almanac.chains (chain_id, evm_chain_id, name) VALUES
	('eth', 1, 'Ethereum'), ('base', 8453, 'Base'), ('arbitrum', 42161, 'Arbitrum One');

-- blocks: hashes are md5-derived, each block's parent is the previous block
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp, metadata)
SELECT c.chain_id, 1000 + n,
	   '0x' || md5(c.chain_id || (1000 + n)) || md5((1000 + n) || c.chain_id),
	   '0x' || md5(c.chain_id || (999 + n)) || md5((999 + n) || c.chain_id),
	   timestamptz '2024-06-01 00:00:00+00' + c.start_offset + n * c.block_time,
	   jsonb_build_object('gas_limit', 30000000, 'miner', '0x' || left(md5(c.chain_id) || md5(c.chain_id), 40))
  FROM (VALUES ('eth', interval '0', interval '12 s'), ('base', interval '8 min', interval '2 s'),
			   ('arbitrum', interval '8 min', interval '250 ms'))
		AS c(chain_id, start_offset, block_time),
	   generate_series(0, 39) AS n;
-- the chains' latest block, as ingest_block would have kept it (set_safe and
-- set_finalized refuse a block above it)
UPDATE almanac.chains c
   SET latest_block = (SELECT max(b.block_number) FROM almanac.blocks b WHERE b.chain_id = c.chain_id);

-- five transactions per block among eight accounts
INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash, tx_type,
	from_address, to_address, value, nonce, data, status, gas_used, timestamp)
SELECT b.chain_id, b.id, b.block_number, i,
	   '0x' || md5(b.block_hash || i) || md5(i || b.block_hash),
	   2,
	   '0x' || left(md5('acct' || ((b.block_number + i) % 8)) || md5('acct' || ((b.block_number + i) % 8)), 40),
	   '0x' || left(md5('token' || (i % 2)) || md5('token' || (i % 2)), 40),
	   CASE WHEN b.chain_id = 'eth' AND b.block_number = 1007 AND i = 0
			THEN 115792089237316195423570985008687907853269984665640564039457584007913129639935
			ELSE (b.block_number * 7 + i) * 1000000000000000 END,
	   b.block_number - 1000,
	   '\xa9059cbb'::bytea,
	   CASE WHEN i = 4 AND b.block_number % 10 = 3 THEN 0 ELSE 1 END,
	   21000 + 30000 * i,
	   b.timestamp
  FROM almanac.blocks b, generate_series(0, 4) AS i;

-- one Transfer log per successful transaction
INSERT INTO almanac.events (chain_id, block_id, block_number, transaction_id, log_index,
	contract_address, event_type, topics, data, timestamp)
SELECT t.chain_id, t.block_id, t.block_number, t.id, t.tx_index, t.to_address,
	   '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef',
	   ARRAY['0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef',
			 '0x000000000000000000000000' || substr(t.from_address, 3),
			 '0x000000000000000000000000' || left(md5('acct' || (t.tx_index + 3) % 8) || md5('acct' || (t.tx_index + 3) % 8), 40)],
	   decode(lpad(to_hex(t.tx_index * 1000 + 1), 64, '0'), 'hex'),
	   t.timestamp
  FROM almanac.transactions t
 WHERE t.status = 1;

-- balances of the eight accounts every tenth block
INSERT INTO almanac.account_states (chain_id, account, block_number, state)
SELECT b.chain_id, '0x' || left(md5('acct' || a) || md5('acct' || a), 40), b.block_number,
	   jsonb_build_object('balance', ((a + 1) * 1000 - (b.block_number - 1000))::text, 'nonce', b.block_number - 1000)
  FROM almanac.blocks b, generate_series(0, 7) AS a
 WHERE b.block_number % 10 = 0;

-- messages from eth to base and arbitrum; the last three are still in flight
INSERT INTO almanac.cross_chain_messages (protocol, message_key, source_chain_id, source_transaction_id,
	destination_chain_id, destination_transaction_id, status, sent_at, delivered_at)
SELECT 'demo-bridge', 'msg-' || s.block_number, 'eth', s.id, d.chain_id,
	   CASE WHEN s.block_number < 1017 THEN d.id END,
	   CASE WHEN s.block_number < 1017 THEN 'delivered' ELSE 'pending' END,
	   s.timestamp,
	   CASE WHEN s.block_number < 1017 THEN d.timestamp END
  FROM almanac.transactions s
  JOIN almanac.transactions d
	ON d.chain_id = CASE WHEN s.block_number % 2 = 0 THEN 'base' ELSE 'arbitrum' END
   AND d.block_number = s.block_number + 20 AND d.tx_index = 0
 WHERE s.chain_id = 'eth' AND s.tx_index = 1 AND s.block_number BETWEEN 1010 AND 1019;

ANALYZE almanac.chains, almanac.blocks, almanac.transactions, almanac.events,
	almanac.account_states, almanac.cross_chain_messages;

SELECT (SELECT count(*) FROM almanac.chains) AS chains,
	   (SELECT count(*) FROM almanac.blocks) AS blocks,
	   (SELECT count(*) FROM almanac.transactions) AS transactions,
	   (SELECT count(*) FROM almanac.events) AS events,
	   (SELECT count(*) FROM almanac.account_states) AS account_states,
	   (SELECT count(*) FROM almanac.cross_chain_messages) AS messages;

-- the hot path: blocks mirrored into a RocksDB column family as a foreign
-- table (upsert, so reloading the demo overwrites the same keys)
CREATE FOREIGN TABLE public.rocks_blocks (chain_id text, block_number bigint, block_hash text, timestamp timestamptz)
	SERVER almanac_store
	OPTIONS (key_prefix 'block', key_columns 'chain_id, block_number', upsert 'true');
INSERT INTO public.rocks_blocks SELECT chain_id, block_number, block_hash, timestamp FROM almanac.blocks;
