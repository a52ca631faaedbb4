\set i random(1000000000, 1000000000 + :na - 1)
SELECT '0x' || repeat(:i::text, 4) AS a \gset
SELECT * FROM almanac.account_states WHERE chain_id = 'eth' AND account = :a
 ORDER BY block_number DESC LIMIT 1;
