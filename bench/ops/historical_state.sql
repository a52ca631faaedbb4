-- Historical State Analysis: an account's states over a block range (half
-- of the chain), aggregated; accounts Zipf-skewed as gen.py's activity is
\set c random(1, :chains)
\set i 1000000000 + random_zipfian(0, :accounts - 1, 1.1)
\set lo :c * 10000000 + random(0, :blocks / 2)
\set hi :lo + :blocks / 2
SELECT count(*) AS changes, min(block_number) AS first_block, max(block_number) AS last_block,
	   min((state->>'balance')::numeric) AS min_balance, max((state->>'balance')::numeric) AS max_balance,
	   avg((state->>'balance')::numeric) AS avg_balance,
	   max((state->>'nonce')::bigint) - min((state->>'nonce')::bigint) AS nonces
  FROM almanac.account_states
 WHERE chain_id = 'chain' || :c AND account = '0x' || repeat(:i::text, 4) AND block_number BETWEEN :lo AND :hi;
