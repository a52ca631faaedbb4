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
