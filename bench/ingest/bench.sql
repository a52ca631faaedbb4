-- Ingest benchmark body, run by run.sh against a scratch instance.
-- Expects table bench_src(n int, block jsonb, receipts jsonb) loaded.
\set ON_ERROR_STOP 1

-- CPU seconds this backend has used, user + system: on a machine shared
-- with other work, wall time measures the neighbours too.  Fields 14 and 15
-- of /proc/self/stat (ticks of 1/100 s), the 12th and 13th after "pid (comm) ".
CREATE OR REPLACE FUNCTION bench_cpu() RETURNS float8 LANGUAGE sql AS $$
	SELECT (split_part(s, ' ', 12)::bigint + split_part(s, ' ', 13)::bigint) / 100.0
	  FROM (SELECT split_part(pg_read_file('/proc/self/stat'), ') ', 2) AS s) x
$$;

-- CPU seconds of the store owners, the processes that apply the mirrors'
-- writes (the backend waits for them at each send and at its commit)
CREATE OR REPLACE FUNCTION bench_owner_cpu() RETURNS float8 LANGUAGE sql AS $$
	SELECT coalesce(sum((split_part(s, ' ', 12)::bigint + split_part(s, ' ', 13)::bigint) / 100.0), 0)
	  FROM (SELECT split_part(pg_read_file('/proc/' || pid || '/stat'), ') ', 2) AS s
			  FROM pg_stat_activity WHERE backend_type = 'almanac store owner') x
$$;

-- rows read by sequential scans of the almanac tables so far (the
-- statistics of a backend that has exited): a run whose plans scan
-- almanac.blocks instead of using its indexes reads millions (run.sh)
CREATE OR REPLACE FUNCTION bench_seq_rows() RETURNS bigint LANGUAGE sql AS $$
	SELECT coalesce(sum(seq_tup_read), 0)::bigint FROM pg_stat_all_tables WHERE schemaname = 'almanac'
$$;

-- one unit of work per transaction, as a follower would commit
CREATE OR REPLACE PROCEDURE bench_per_block(INOUT secs float8, INOUT cpu float8) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); c0 float8 := bench_cpu(); r record;
BEGIN
	FOR r IN SELECT block, receipts FROM bench_src ORDER BY n LOOP
		PERFORM almanac.ingest_block('bench', r.block, r.receipts);
		COMMIT;
	END LOOP;
	secs := extract(epoch FROM clock_timestamp() - t0);
	cpu := bench_cpu() - c0;
END $$;

-- the batches are built before timing: a follower has its JSON in hand
DROP TABLE IF EXISTS bench_batch;
CREATE TABLE bench_batch AS
SELECT n / 100 AS b, jsonb_agg(block ORDER BY n) AS blocks, jsonb_agg(receipts ORDER BY n) AS receipts
  FROM bench_src GROUP BY n / 100;

CREATE OR REPLACE PROCEDURE bench_batches(INOUT secs float8, INOUT cpu float8) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); c0 float8 := bench_cpu(); r record;
BEGIN
	FOR r IN SELECT blocks, receipts FROM bench_batch ORDER BY b LOOP
		PERFORM almanac.ingest_blocks('bench', r.blocks, r.receipts);
		COMMIT;
	END LOOP;
	secs := extract(epoch FROM clock_timestamp() - t0);
	cpu := bench_cpu() - c0;
END $$;

-- the ceiling: the same rows already decoded, inserted with INSERT ... SELECT
-- from relational staging tables into the same tables and indexes, in the
-- same batches of 100 blocks, ids resolved by joins as ingest does
CREATE OR REPLACE PROCEDURE bench_ceiling(INOUT secs float8, INOUT cpu float8) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); c0 float8 := bench_cpu(); lo bigint; hi bigint; b bigint;
BEGIN
	SELECT min(block_number), max(block_number) INTO lo, hi FROM stage_blocks;
	INSERT INTO almanac.chains (chain_id, evm_chain_id) VALUES ('bench', 1) ON CONFLICT DO NOTHING;
	b := lo;
	WHILE b <= hi LOOP
		WITH ib AS (
			INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp, metadata)
			SELECT 'bench', block_number, block_hash, parent_hash, timestamp, metadata
			  FROM stage_blocks WHERE block_number >= b AND block_number < b + 100
			RETURNING id, block_number
		), it AS (
			INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash, tx_type,
				from_address, to_address, contract_address, value, nonce, data, status, gas_used, timestamp)
			SELECT 'bench', ib.id, s.block_number, s.tx_index, s.tx_hash, s.tx_type, s.from_address,
				   s.to_address, s.contract_address, s.value, s.nonce, s.data, s.status, s.gas_used, s.timestamp
			  FROM stage_tx s JOIN ib ON ib.block_number = s.block_number
			RETURNING id, block_id, block_number, tx_index
		)
		INSERT INTO almanac.events (chain_id, block_id, block_number, transaction_id, log_index,
			contract_address, event_type, topics, data, timestamp)
		SELECT 'bench', it.block_id, s.block_number, it.id, s.log_index, s.contract_address, s.event_type,
			   s.topics, s.data, s.timestamp
		  FROM stage_ev s JOIN it ON it.block_number = s.block_number AND it.tx_index = s.tx_index;
		UPDATE almanac.chains SET latest_block = least(b + 99, hi) WHERE chain_id = 'bench';
		COMMIT;
		b := b + 100;
	END LOOP;
	secs := extract(epoch FROM clock_timestamp() - t0);
	cpu := bench_cpu() - c0;
END $$;

-- Every run starts from the same state: empty tables never vacuumed nor
-- analysed (TRUNCATE sets relpages 0 and reltuples -1 but keeps the
-- statistics of an ANALYZE, hence the check; run.sh turns autovacuum off)
CREATE OR REPLACE PROCEDURE bench_reset() LANGUAGE plpgsql AS $$
BEGIN
	TRUNCATE almanac.chains, almanac.blocks, almanac.transactions, almanac.events,
		almanac.account_states, almanac.cross_chain_messages, almanac.orphaned_blocks;
	IF EXISTS (SELECT FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid
				WHERE c.relnamespace = 'almanac'::regnamespace) THEN
		RAISE EXCEPTION 'the almanac tables have planner statistics: the runs would not start alike'
			USING HINT = 'Run the benchmark with autovacuum off (run.sh does) and without ANALYZE of them.';
	END IF;
END $$;

DROP TABLE IF EXISTS bench_results;
CREATE TABLE bench_results (run int, mode text, mirrors text, secs float8, cpu float8, blocks bigint, logs bigint,
	owner_cpu float8);

-- staging tables: decode once with ingest_blocks (also a warm-up), keep rows
CALL bench_reset();
CALL bench_batches(NULL, NULL);
DROP TABLE IF EXISTS stage_blocks, stage_tx, stage_ev;
CREATE TABLE stage_blocks AS SELECT * FROM almanac.blocks;
CREATE TABLE stage_tx AS SELECT * FROM almanac.transactions;
CREATE TABLE stage_ev AS SELECT e.*, t.tx_index FROM almanac.events e JOIN almanac.transactions t ON t.id = e.transaction_id;
-- vacuumed now, so that autovacuum does not work on them during the runs
VACUUM ANALYZE stage_blocks, stage_tx, stage_ev, bench_batch;
