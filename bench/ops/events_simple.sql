-- Event Filtering (simple): the newest 100 events of one contract and topic0
-- in a recent block range (the last 5 % to 25 % of the chain); contracts
-- Zipf-skewed as gen.py's logs are; topic0 Transfer 7 times in 10, else
-- Approval, Swap or Sync
\set c random(1, :chains)
\set j 2000000000 + random_zipfian(0, :contracts - 1, 1.1)
\set e random(1, 10)
\set hi :c * 10000000 + :blocks - 1
\set lo :hi - random(:blocks / 20, :blocks / 4)
SELECT * FROM almanac.events
 WHERE chain_id = 'chain' || :c AND contract_address = '0x' || repeat(:j::text, 4)
   AND event_type = CASE WHEN :e <= 7 THEN '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef'
						 WHEN :e = 8 THEN '0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925'
						 WHEN :e = 9 THEN '0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822'
						 ELSE '0x1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1' END
   AND block_number BETWEEN :lo AND :hi
 ORDER BY block_number DESC, log_index DESC LIMIT 100;
