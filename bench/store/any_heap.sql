-- 100 keys spread over the table: (n + i*9973) mod N + 1, i = 0..99
\set n random(1, :N)
SELECT count(block_hash) FROM bench_heap WHERE chain_id = 'eth' AND block_number = ANY (ARRAY(SELECT (:n + i * 9973) % :N + 1 FROM generate_series(0, 99) AS i));
