-- Account State Lookup: the latest state of one account (any account number
-- gen.py can name; those it never changed return no row)
\set c random(1, :chains)
\set i 1000000000 + random(0, :accounts - 1)
SELECT * FROM almanac.account_states WHERE chain_id = 'chain' || :c AND account = '0x' || repeat(:i::text, 4)
 ORDER BY block_number DESC LIMIT 1;
