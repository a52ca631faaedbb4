-- Lookups on the anvil fixtures after the reorg (sql/mirror.sql runs them
-- with almanac.router on and off; both halves of the output are the same).
SELECT block_number, block_hash, parent_hash, metadata->>'miner' AS miner
  FROM almanac.blocks WHERE chain_id = 'anvil' ORDER BY block_number DESC LIMIT 1;
SELECT block_number, left(block_hash, 18) AS hash FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number IN (5, 6, 7, 8, 9, 10);
SELECT name, t.block_number, t.tx_index, t.status, t.value FROM notes, jsonb_each_text(n) AS x(name, hash),
	LATERAL (SELECT * FROM almanac.transactions WHERE chain_id = 'anvil' AND tx_hash = x.hash) t ORDER BY name;
SELECT block_number, tx_index, status FROM almanac.transactions WHERE chain_id = 'anvil' AND tx_hash = :'tx_a';
SELECT block_number, tx_index FROM almanac.transactions WHERE chain_id = 'anvil' AND tx_hash = :'tx_b';
SELECT block_number, tx_index FROM almanac.transactions WHERE chain_id = 'anvil' AND tx_hash = :'tx_c';
SELECT block_number, state FROM almanac.account_states
 WHERE chain_id = 'anvil' AND account = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8' ORDER BY block_number DESC LIMIT 1;
SELECT almanac.account_state('anvil', '0x70997970C51812dc3A010C7d01b50e0d17dc79C8') AS via_function;
SELECT (almanac.latest_block('anvil')).block_number AS via_latest_block;
-- events of the busiest contract and topic0 (sql/mirror.sql sets them), a
-- range across the reorg, and the contract's latest whatever the topic
SELECT block_number, log_index, transaction_id IS NOT NULL AS has_tx, topics[2] AS topic1 FROM almanac.events
 WHERE chain_id = 'anvil' AND contract_address = :'ev_contract' AND event_type = :'ev_type'
   AND block_number BETWEEN 5 AND 9 ORDER BY block_number DESC, log_index DESC LIMIT 6;
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'anvil' AND contract_address = :'ev_contract' AND event_type = :'ev_type'
   AND block_number <= 4 ORDER BY block_number DESC, log_index DESC LIMIT 4;
SELECT block_number, log_index, left(event_type, 10) AS topic0 FROM almanac.events
 WHERE chain_id = 'anvil' AND contract_address = :'ev_contract' ORDER BY block_number DESC, log_index DESC LIMIT 6;
