\set n random(1, :N)
\set m random(1, :N)
BEGIN;
UPDATE commit_heap SET v = v + 1 WHERE chain_id = 'eth' AND block_number = :n;
UPDATE commit_heap SET v = v + 1 WHERE chain_id = 'eth' AND block_number = :m;
END;
