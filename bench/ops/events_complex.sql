-- Event Filtering (complex): the Transfer, Approval and Swap events naming
-- one account (Zipf-skewed) in topic1 or topic2, in the last 10 to 60
-- minutes of the chain, with their successful transactions and blocks,
-- aggregated per contract and event type
\set c random(1, :chains)
\set i 1000000000 + random_zipfian(0, :accounts - 1, 1.1)
\set since :t_end - random(600, 3600)
SELECT e.contract_address, e.event_type, count(*) AS events, count(DISTINCT e.transaction_id) AS transactions,
	   sum(t.gas_used) AS gas_used, min(b.timestamp) AS first_seen, max(b.timestamp) AS last_seen,
	   max(b.block_number) AS last_block
  FROM almanac.events e
  JOIN almanac.transactions t ON t.id = e.transaction_id
  JOIN almanac.blocks b ON b.id = e.block_id
 WHERE e.chain_id = 'chain' || :c
   AND e.event_type IN ('0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef',
						'0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925',
						'0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822')
   AND e.topics && ARRAY['0x000000000000000000000000' || repeat(:i::text, 4)]
   AND b.timestamp >= to_timestamp(:since::bigint) AND t.status = 1
 GROUP BY e.contract_address, e.event_type
 ORDER BY events DESC, e.contract_address, e.event_type LIMIT 20;
