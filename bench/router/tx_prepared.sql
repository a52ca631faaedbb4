\set i random(1000000000, 1000000000 + :nt - 1)
SELECT '0x0000' || repeat(:i::text, 6) AS h \gset
SELECT * FROM almanac.transactions WHERE chain_id = 'eth' AND tx_hash = :h;
