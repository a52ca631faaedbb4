\set n random(0, :nb - 1)
SELECT * FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = :n;
