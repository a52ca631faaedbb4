\set n random(1, :N)
UPDATE commit_heap SET v = v + 1 WHERE chain_id = 'eth' AND block_number = :n;
