\set x random(1, :N - 9999)
SELECT count(block_hash) FROM bench_kv WHERE chain_id = 'eth' AND block_number BETWEEN :x AND :x + 9999;
