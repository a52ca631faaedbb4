\set i random(1000000000, 1000000000 + :nt - 1)
SELECT * FROM almanac.transactions WHERE chain_id = 'eth' AND tx_hash = '0x0000:i:i:i:i:i:i';
