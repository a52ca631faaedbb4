-- Ingest of real JSON-RPC responses of an anvil dev chain (test/fixtures/anvil,
-- made by test/fixtures/generate.sh) and of a hand-written block
-- (test/fixtures/handmade): counts and exact values, idempotent re-ingest,
-- the batch form, the query helpers.

-- the fixtures, read from the source tree (pg_regress exports its path)
\getenv abs_srcdir PG_ABS_SRCDIR
\set anvil :abs_srcdir '/test/fixtures/anvil/'
\set handmade :abs_srcdir '/test/fixtures/handmade/'
CREATE TABLE fx AS
SELECT name, pg_read_file(:'anvil' || 'b' || name || '.json')::jsonb AS block,
	   pg_read_file(:'anvil' || 'r' || name || '.json')::jsonb AS receipts
  FROM unnest(ARRAY['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '6-old', '7-old', '8-old']) AS name;
INSERT INTO fx
SELECT 'hand100', pg_read_file(:'handmade' || 'b100.json')::jsonb, pg_read_file(:'handmade' || 'r100.json')::jsonb;

-- blocks 0-5 one by one: ingest_block returns the block id
CREATE TABLE ingested AS
SELECT name, almanac.ingest_block('anvil', block, receipts) AS id
  FROM (SELECT * FROM fx WHERE name IN ('0', '1', '2', '3', '4', '5') ORDER BY name) s;
SELECT i.name, b.block_number, i.id = b.id AS returns_id
  FROM ingested i JOIN almanac.blocks b ON b.block_hash = (SELECT block->>'hash' FROM fx WHERE fx.name = i.name)
 ORDER BY i.name;

-- the chain was registered, its EVM chain id learned from the transactions
SELECT * FROM almanac.chain_heads;

SELECT block_number, block_hash, parent_hash, timestamp, is_safe, is_finalized,
	   metadata->>'miner' AS miner, metadata->>'gasUsed' AS gas_used
  FROM almanac.blocks ORDER BY block_number;

-- every transaction: types 0-4, the creation with its contract address, the
-- failed call with status 0
SELECT block_number AS block, tx_index AS idx, tx_type AS type, tx_hash, from_address, to_address,
	   contract_address, value, nonce, status, gas_used, length(data) AS data_len
  FROM almanac.transactions ORDER BY block_number, tx_index;

-- the contract creation's bytecode arrived whole, the failed call has no logs
SELECT encode(data, 'hex') AS creation_code FROM almanac.transactions WHERE to_address IS NULL;
SELECT t.status, count(e.id) AS logs
  FROM almanac.transactions t LEFT JOIN almanac.events e ON e.transaction_id = t.id
 WHERE t.block_number = 3 GROUP BY t.status ORDER BY t.status;

-- events: 24 logs in block 3 (6 successful calls x 4), 4 in block 4 (the
-- EIP-7702 account runs the logger's code, so the logs come from the account)
SELECT block_number, count(*) AS events, count(*) FILTER (WHERE event_type = 'anonymous') AS anonymous,
	   min(log_index) AS first_index, max(log_index) AS last_index
  FROM almanac.events GROUP BY block_number ORDER BY block_number;
SELECT e.log_index, t.tx_index, e.contract_address, e.event_type, e.topics, e.data, e.timestamp
  FROM almanac.events e JOIN almanac.transactions t ON t.id = e.transaction_id
 WHERE e.block_number = 3 AND (e.log_index < 4 OR e.log_index >= 20)
 ORDER BY e.log_index;
SELECT e.contract_address, t.to_address, e.event_type, e.topics[4] AS callvalue
  FROM almanac.events e JOIN almanac.transactions t ON t.id = e.transaction_id
 WHERE e.block_number = 4 ORDER BY e.log_index;

-- every stored value equals the fixture's, field by field (lowercase hex,
-- exact integers): a self-check of the decoding against the JSON itself
SELECT count(*) AS transactions_checked,
	   count(*) FILTER (WHERE t.tx_hash = j->>'hash' AND t.from_address = j->>'from'
			AND t.to_address IS NOT DISTINCT FROM j->>'to'
			AND t.nonce = ('x' || lpad(substr(j->>'nonce', 3), 16, '0'))::bit(64)::bigint
			AND t.tx_type = ('x' || lpad(substr(j->>'type', 3), 8, '0'))::bit(32)::int
			AND '0x' || encode(t.data, 'hex') = j->>'input'
			AND t.gas_used = ('x' || lpad(substr(r->>'gasUsed', 3), 16, '0'))::bit(64)::bigint
			AND t.status = ('x' || lpad(substr(r->>'status', 3), 8, '0'))::bit(32)::int) AS equal
  FROM fx
 CROSS JOIN LATERAL jsonb_array_elements(fx.block->'transactions') WITH ORDINALITY AS x(j, i)
 CROSS JOIN LATERAL (SELECT fx.receipts->(x.i::int - 1) AS r) rr
  JOIN almanac.transactions t ON t.tx_hash = x.j->>'hash'
 WHERE fx.name IN ('0', '1', '2', '3', '4', '5');

-- re-ingesting a stored block is a no-op returning the same id
SELECT almanac.ingest_block('anvil', block, receipts) = (SELECT id FROM ingested WHERE name = '3') AS same_id
  FROM fx WHERE name = '3';
SELECT (SELECT count(*) FROM almanac.blocks) AS blocks, (SELECT count(*) FROM almanac.transactions) AS txs,
	   (SELECT count(*) FROM almanac.events) AS events;

-- the batch form: blocks 4-9 of the new branch, 4 and 5 already stored
SELECT almanac.ingest_blocks('anvil', jsonb_agg(block ORDER BY name), jsonb_agg(receipts ORDER BY name)) AS stored
  FROM fx WHERE name IN ('4', '5', '6', '7', '8', '9');
-- again: nothing new
SELECT almanac.ingest_blocks('anvil', jsonb_agg(block ORDER BY name), jsonb_agg(receipts ORDER BY name)) AS stored
  FROM fx WHERE name IN ('6', '7', '8', '9');
SELECT almanac.ingest_blocks('anvil', '[]', '[]') AS stored_empty;
SELECT block_number, block_hash, (SELECT count(*) FROM almanac.transactions t WHERE t.block_id = b.id) AS txs
  FROM almanac.blocks b WHERE block_number >= 6 ORDER BY block_number;
SELECT chain_id, latest_block FROM almanac.chain_heads;
SELECT (almanac.latest_block('anvil')).block_number AS latest, (almanac.latest_block('anvil')).block_hash;
SELECT almanac.latest_block('no-such-chain') IS NULL AS unknown_chain_has_no_latest;

-- the hand-written block: 2^256-1 wei, mixed-case input stored lowercase, a
-- transaction without chainId, logs from a contract that is not the
-- transaction's "to", an anonymous log, blockTimestamp as a JSON number
SELECT almanac.ingest_block('hand', block, receipts) > 0 AS stored FROM fx WHERE name = 'hand100';
SELECT evm_chain_id, latest_block FROM almanac.chains WHERE chain_id = 'hand';
SELECT tx_index, tx_hash, tx_type, to_address, value,
	   value = 2::numeric ^ 256 - 1 AS is_max_uint256, nonce, encode(data, 'hex') AS data, timestamp
  FROM almanac.transactions WHERE chain_id = 'hand' ORDER BY tx_index;
SELECT e.log_index, e.contract_address, t.to_address AS tx_to, e.event_type, e.topics, encode(e.data, 'hex') AS data
  FROM almanac.events e JOIN almanac.transactions t ON t.id = e.transaction_id
 WHERE e.chain_id = 'hand' ORDER BY e.log_index;
-- a transaction without "type" (nodes before EIP-2718 omit it) is legacy,
-- type 0: the same block again, without it
DELETE FROM almanac.chains WHERE chain_id = 'hand';
SELECT almanac.ingest_block('hand', block #- '{transactions,0,type}', receipts) > 0 AS stored
  FROM fx WHERE name = 'hand100';
SELECT tx_index, tx_type FROM almanac.transactions WHERE chain_id = 'hand' ORDER BY tx_index;

-- query helpers
-- Transfer events of the logger in blocks 3-4, with a given sender topic
SELECT block_number, log_index, topics[2] AS sender
  FROM almanac.contract_events('anvil', '0xE7F1725E7734CE288F8367E1BB143E90BB3F0512',
		'0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef', 3, 4,
		topic1 => '0x000000000000000000000000976ea74026e726554db657fa54763abd0c3a0aa9');
SELECT count(*) AS logger_events_all, count(DISTINCT event_type) AS types
  FROM almanac.contract_events('anvil', '0xe7f1725e7734ce288f8367e1bb143e90bb3f0512');
SELECT count(*) AS logger_events_block_7
  FROM almanac.contract_events('anvil', '0xe7f1725e7734ce288f8367e1bb143e90bb3f0512', from_block => 7, to_block => 7);
-- transactions of an address: sent, received, deployed
SELECT block_number, tx_index, from_address, to_address, contract_address
  FROM almanac.address_transactions('anvil', '0x70997970C51812dc3A010C7d01b50e0d17dc79C8');
SELECT block_number, tx_index, contract_address
  FROM almanac.address_transactions('anvil', '0xe7f1725e7734ce288f8367e1bb143e90bb3f0512', 0, 2);

DELETE FROM almanac.chains;
DROP TABLE fx, ingested;
