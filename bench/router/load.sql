-- bench/router/load.sql: the benchmark's rows, generated in the database
-- (run.sh sets nb, tpb, na, ns and batch).  Every value satisfies the
-- schema's checks; keys are built so that pgbench scripts can name them:
--   block      chain 'eth', block_number 0 .. nb-1
--   tx_hash    '0x0000' || repeat(i::text, 6), i = 1000000000 + k, k = 0 .. nb*tpb-1
--   account    '0x' || repeat(i::text, 4),     i = 1000000000 + a, a = 0 .. na-1
--   state rows ns of them: row k is account k % na in round r = k / na; the
--              rounds take disjoint block ranges, so the latest state of an
--              account is its row of the last round
-- Written in transactions of at most :batch rows (:batch_states for state
-- rows, below), with whatever mirrors are enabled filled by the same
-- statements.
\set ON_ERROR_STOP 1
INSERT INTO almanac.chains (chain_id, evm_chain_id, name, latest_block)
VALUES ('eth', 1, 'bench', :nb - 1);

CREATE FUNCTION pg_temp.h32(t text) RETURNS text LANGUAGE sql IMMUTABLE
	AS $$ SELECT '0x' || encode(sha256(convert_to(t, 'UTF8')), 'hex') $$;

SELECT format($q$INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp,
		is_finalized, is_safe, metadata)
	SELECT 'eth', n, pg_temp.h32('b' || n), pg_temp.h32('b' || (n - 1)),
		   timestamptz '2020-01-01 00:00:00+00' + n * interval '12 s', true, true,
		   jsonb_build_object('gas_used', n * 7919 %% 30000000, 'miner', substr(pg_temp.h32('m' || n %% 50), 1, 42))
	  FROM generate_series(%1$s, %2$s) AS n$q$, lo, least(lo + :batch - 1, :nb - 1))
  FROM generate_series(0, :nb - 1, :batch) AS lo \gexec

-- tpb transactions per block: %3$s = na, %4$s = tpb
SELECT format($q$INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash, tx_type,
		from_address, to_address, value, nonce, data, status, gas_used, timestamp)
	SELECT 'eth', b.id, b.block_number, i, '0x0000' || repeat((1000000000 + k)::text, 6), 2,
		   '0x' || repeat((1000000000 + k %% %3$s)::text, 4),
		   '0x' || repeat((1000000000 + (k * 7) %% %3$s)::text, 4),
		   (k::numeric * 1000000007) %% 100000000000000000000, k / %3$s, '\x', 1, 21000, b.timestamp
	  FROM almanac.blocks b, generate_series(0, %4$s - 1) AS i, LATERAL (SELECT b.block_number * %4$s + i AS k) kk
	 WHERE b.chain_id = 'eth' AND b.block_number BETWEEN %1$s AND %2$s$q$,
	   lo, least(lo + greatest(:batch / :tpb, 1) - 1, :nb - 1), :na, :tpb)
  FROM generate_series(0, :nb - 1, greatest(:batch / :tpb, 1)) AS lo \gexec

-- state rows: %3$s = na, %4$s = the blocks of a round (nb / (ns / na)).
-- In transactions of :batch_states rows: the latest-state mirror locks each
-- account it writes until commit (src/mirror/trigger.c), and a transaction
-- writing more accounts than the lock table holds (max_locks_per_transaction
-- x connections, about 6,400 at the defaults) fails with "out of shared
-- memory"; a loader commits per block or per few blocks anyway.
SELECT format($q$INSERT INTO almanac.account_states (chain_id, account, block_number, state)
	SELECT 'eth', '0x' || repeat((1000000000 + k %% %3$s)::text, 4),
		   (k / %3$s) * %4$s + (k %% %3$s) %% %4$s,
		   jsonb_build_object('balance', (k::numeric * 999983)::text, 'nonce', k / %3$s)
	  FROM generate_series(%1$s, %2$s) AS k$q$, lo, least(lo + :batch_states - 1, :ns - 1), :na, :nb / (:ns / :na))
  FROM generate_series(0, :ns - 1, :batch_states) AS lo \gexec
