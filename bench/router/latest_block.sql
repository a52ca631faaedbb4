SELECT * FROM almanac.blocks WHERE chain_id = 'eth' ORDER BY block_number DESC LIMIT 1;
