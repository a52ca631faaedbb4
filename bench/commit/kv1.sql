\set n random(1, :N)
UPDATE commit_kv SET v = v + 1 WHERE chain_id = 'eth' AND block_number = :n;
