-- bench/ops/load.sql: procedures that load gen.py's files (run.sh copies
-- them into the staging tables ops_blocks, ops_states and ops_messages
-- first) and time the ingest.
\set ON_ERROR_STOP 1

-- the blocks of one chain in batches of p_batch, one ingest_blocks call and
-- one transaction per batch, as a follower commits; timed around the call
-- and its commit only (a follower has its JSON in hand: the batch is built
-- from the staging table before)
CREATE PROCEDURE ops_ingest(p_chain text, p_batch int, INOUT secs float8, INOUT blocks bigint, INOUT events bigint)
	LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; lo bigint; b jsonb; rc jsonb; e0 bigint;
BEGIN
	SELECT count(*) INTO e0 FROM almanac.events WHERE chain_id = p_chain;
	secs := 0;
	blocks := 0;
	FOR lo IN SELECT generate_series(min(n), max(n), p_batch) FROM ops_blocks WHERE chain_id = p_chain LOOP
		SELECT jsonb_agg(j->'block' ORDER BY n), jsonb_agg(j->'receipts' ORDER BY n) INTO b, rc
		  FROM ops_blocks WHERE chain_id = p_chain AND n >= lo AND n < lo + p_batch;
		t0 := clock_timestamp();
		blocks := blocks + almanac.ingest_blocks(p_chain, b, rc);
		COMMIT;
		secs := secs + extract(epoch FROM clock_timestamp() - t0);
	END LOOP;
	SELECT count(*) - e0 INTO events FROM almanac.events WHERE chain_id = p_chain;
END $$;

-- account states by plain INSERT, in transactions of p_batch rows per chain
-- (the latest-state mirror locks the accounts it writes until commit)
CREATE PROCEDURE ops_load_states(p_batch int) LANGUAGE plpgsql AS $$
DECLARE lo bigint; hi bigint;
BEGIN
	SELECT min(id), max(id) INTO lo, hi FROM ops_states;
	WHILE lo <= hi LOOP
		INSERT INTO almanac.account_states (chain_id, account, block_number, state)
		SELECT chain_id, account, block_number, state FROM ops_states
		 WHERE id >= lo AND id < lo + p_batch ORDER BY id;
		COMMIT;
		lo := lo + p_batch;
	END LOOP;
END $$;

-- cross-chain messages: the transactions' ids from their hashes
CREATE PROCEDURE ops_load_messages() LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO almanac.cross_chain_messages (protocol, message_key, source_chain_id, source_transaction_id,
		destination_chain_id, destination_transaction_id, status, sent_at, delivered_at, payload)
	SELECT 'bench', m.message_key, m.source_chain, s.id, m.destination_chain, d.id, m.status,
		   to_timestamp(m.sent_at), to_timestamp(m.delivered_at), m.payload
	  FROM ops_messages m
	  JOIN almanac.transactions s ON s.chain_id = m.source_chain AND s.tx_hash = m.source_tx
	  LEFT JOIN almanac.transactions d ON d.chain_id = m.destination_chain AND d.tx_hash = m.destination_tx
	 ORDER BY m.id;
END $$;
