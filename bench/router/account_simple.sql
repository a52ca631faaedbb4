\set i random(1000000000, 1000000000 + :na - 1)
SELECT * FROM almanac.account_states WHERE chain_id = 'eth' AND account = '0x:i:i:i:i'
 ORDER BY block_number DESC LIMIT 1;
