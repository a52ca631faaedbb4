-- latest block of every chain
SELECT DISTINCT ON (chain_id) chain_id, block_number, block_hash, timestamp
  FROM almanac.blocks ORDER BY chain_id, block_number DESC;

-- the busiest senders on eth, with failed transactions counted apart
SELECT from_address, count(*) AS txs, count(*) FILTER (WHERE status = 0) AS failed
  FROM almanac.transactions WHERE chain_id = 'eth'
 GROUP BY 1 ORDER BY txs DESC, from_address LIMIT 3;

-- Transfer events of one token contract over a block range
SELECT block_number, log_index, topics[2] AS sender
  FROM almanac.events
 WHERE chain_id = 'base' AND contract_address = '0x' || left(md5('token1') || md5('token1'), 40)
   AND event_type = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef'
   AND block_number BETWEEN 1010 AND 1012
 ORDER BY block_number, log_index;

-- a full uint256 value, exact
SELECT tx_hash, value FROM almanac.transactions WHERE value > 1e70;

-- an account's balance as of block 1025 and now
SELECT chain_id, block_number, state->>'balance' AS balance
  FROM almanac.account_states
 WHERE chain_id = 'eth' AND account = '0x' || left(md5('acct3') || md5('acct3'), 40) AND block_number <= 1025
 ORDER BY block_number DESC LIMIT 1;

-- cross-chain messages with their source and destination transactions
SELECT m.message_key, m.destination_chain_id, m.status,
	   s.block_number AS source_block, d.block_number AS destination_block,
	   d.timestamp - s.timestamp AS latency
  FROM almanac.cross_chain_messages m
  JOIN almanac.transactions s ON s.id = m.source_transaction_id
  LEFT JOIN almanac.transactions d ON d.id = m.destination_transaction_id
 ORDER BY m.message_key;

-- the same block from RocksDB: one Get inside this backend
SELECT * FROM rocks_blocks WHERE chain_id = 'eth' AND block_number = 1039;
EXPLAIN (COSTS OFF) SELECT * FROM rocks_blocks WHERE chain_id = 'eth' AND block_number = 1039;

-- the latest block of a chain is one backward seek; IN is one MultiGet
EXPLAIN (COSTS OFF) SELECT block_number FROM rocks_blocks WHERE chain_id = 'eth' ORDER BY block_number DESC LIMIT 1;
SELECT block_number FROM rocks_blocks WHERE chain_id = 'eth' ORDER BY block_number DESC LIMIT 1;
SELECT block_number, left(block_hash, 10) AS hash FROM rocks_blocks WHERE chain_id = 'eth' AND block_number IN (1000, 1010, 1020);

-- lookups by key ask the row cache in shared memory first: the store owner
-- puts every value it writes there, so even a new connection's lookups of
-- keys written since need no RocksDB read (and open no RocksDB instance)
SELECT block_number FROM rocks_blocks WHERE chain_id = 'eth' AND block_number = 1039;
SELECT hits > 0 AS answered_from_shared_memory FROM almanac.shared_row_cache_stats();

-- the store's column families, as RocksDB reports them
SELECT column_family, estimated_keys, memtable_bytes FROM almanac.store_properties;
