\set n random(1, :N)
SELECT block_hash FROM bench_kv WHERE chain_id = 'eth' AND block_number = :n;
