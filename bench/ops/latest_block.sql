-- Latest Block Query: the newest block of a chain
\set c random(1, :chains)
SELECT * FROM almanac.blocks WHERE chain_id = 'chain' || :c ORDER BY block_number DESC LIMIT 1;
