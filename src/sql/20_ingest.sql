-- Chain ingest, reorgs and finality (README, "Ingest").
--
-- Input is what an Ethereum JSON-RPC follower already has in hand: the
-- result of eth_getBlockByNumber(n, true) and of eth_getBlockReceipts(n).
-- Everything is written with plain set-based statements on the core tables
-- (the RocksDB mirrors follow table changes, so there is no per-row logic to
-- replay), and every call is one transaction's worth of work: an error
-- anywhere leaves nothing behind.

-- Exact, checked conversions (src/ingest.c).  Each raises 22023 naming the
-- block, the item and the field of a bad value.
CREATE FUNCTION almanac._hex_bigint(v text, block bigint, item int, kind text, field text)
	RETURNS bigint LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_hex_bigint';
CREATE FUNCTION almanac._hex_numeric(v text, block bigint, item int, kind text, field text)
	RETURNS numeric LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_hex_numeric';
CREATE FUNCTION almanac._hex_id(v text, nbytes int, nullable boolean,
								block bigint, item int, kind text, field text)
	RETURNS text LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_hex_id';
CREATE FUNCTION almanac._hex_bytes(v text, block bigint, item int, kind text, field text)
	RETURNS bytea LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_hex_bytes';
CREATE FUNCTION almanac._hex_topics(v jsonb, block bigint, item int, kind text, field text)
	RETURNS text[] LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_hex_topics';
-- VOLATILE so that the planner never folds or moves a check away
CREATE FUNCTION almanac._ingest_assert(ok boolean, message text, got text, want text,
									   block bigint, item int, kind text, field text)
	RETURNS boolean LANGUAGE c VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_ingest_assert';

-- Blocks removed by a revert, kept for audit: what was orphaned, when, and
-- which transactions it carried (some may be in the new branch again).
CREATE TABLE almanac.orphaned_blocks (
	chain_id		text NOT NULL REFERENCES almanac.chains ON DELETE CASCADE,
	block_number	bigint NOT NULL,
	block_hash		text NOT NULL,
	parent_hash		text NOT NULL,
	timestamp		timestamptz NOT NULL,
	tx_hashes		text[] NOT NULL,
	-- clock time: one transaction may orphan the same block twice
	orphaned_at		timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- "what did this chain orphan around block N"; not unique: a block can be
-- orphaned, ingested again and orphaned again
CREATE INDEX orphaned_blocks_chain_number_idx ON almanac.orphaned_blocks (chain_id, block_number);
COMMENT ON TABLE almanac.orphaned_blocks IS 'audit history: blocks removed by revert_to or a reorg';

-- The chains with their heads.
CREATE VIEW almanac.chain_heads AS
	SELECT chain_id, evm_chain_id, name, latest_block, safe_block, finalized_block
	  FROM almanac.chains;
COMMENT ON VIEW almanac.chain_heads IS 'every chain with its latest, safe and finalized block numbers';

-- Lock a chain's row for the rest of the transaction, so that concurrent
-- ingests, reverts and head moves of one chain queue up instead of racing on
-- the parent-hash checks.  Returns the row, or NULL when the chain is unknown.
CREATE FUNCTION almanac._lock_chain(p_chain text) RETURNS almanac.chains
	LANGUAGE sql AS
$$
	SELECT * FROM almanac.chains WHERE chain_id = p_chain FOR UPDATE
$$;

CREATE FUNCTION almanac._require_chain(p_chain text) RETURNS almanac.chains
	LANGUAGE plpgsql AS
$$
DECLARE
	c almanac.chains;
BEGIN
	IF p_chain IS NULL THEN
		RAISE EXCEPTION 'chain_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	c := almanac._lock_chain(p_chain);
	IF c.chain_id IS NULL THEN
		RAISE EXCEPTION 'unknown chain "%"', p_chain
			USING ERRCODE = 'undefined_object',
				  HINT = 'Chains are registered by their first almanac.ingest_block or almanac.ingest_blocks.';
	END IF;
	RETURN c;
END;
$$;

-- Remove every block above p_number (p_number may be -1: everything), with
-- what cascades from it, into the audit table.  The caller holds the chain
-- lock.  Returns the number of blocks removed.
CREATE FUNCTION almanac._revert(p_chain text, p_number bigint) RETURNS bigint
	LANGUAGE plpgsql AS
$$
DECLARE
	c almanac.chains;
	n bigint;
BEGIN
	c := almanac._require_chain(p_chain);
	IF c.finalized_block IS NOT NULL AND p_number < c.finalized_block THEN
		RAISE EXCEPTION 'cannot revert chain "%" to block %: block % is finalized',
			p_chain, p_number, c.finalized_block
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'A revert may not remove a finalized block.',
				  HINT = format('The lowest block chain %s can be reverted to is %s.', p_chain, c.finalized_block);
	END IF;

	-- one statement: the cascades remove transactions, events, account state
	-- changes and messages; the audit rows record what went
	WITH gone AS (
		DELETE FROM almanac.blocks
		 WHERE chain_id = p_chain AND block_number > p_number
		RETURNING id, block_number, block_hash, parent_hash, timestamp
	)
	INSERT INTO almanac.orphaned_blocks (chain_id, block_number, block_hash, parent_hash, timestamp, tx_hashes)
	SELECT p_chain, g.block_number, g.block_hash, g.parent_hash, g.timestamp,
		   coalesce((SELECT array_agg(t.tx_hash ORDER BY t.tx_index)
					   FROM almanac.transactions t WHERE t.block_id = g.id), '{}')
	  FROM gone g;
	GET DIAGNOSTICS n = ROW_COUNT;

	-- the safe head may have to come down with the blocks (a safe block can
	-- still be reorganised; only finalized ones cannot)
	UPDATE almanac.chains
	   SET latest_block = (SELECT max(block_number) FROM almanac.blocks WHERE chain_id = p_chain),
		   safe_block = CASE WHEN safe_block > p_number THEN nullif(greatest(p_number, -1), -1)
							 ELSE safe_block END
	 WHERE chain_id = p_chain;
	RETURN n;
END;
$$;

CREATE FUNCTION almanac.revert_to(chain_id text, block_number bigint) RETURNS bigint
	LANGUAGE plpgsql AS
$$
BEGIN
	IF block_number IS NULL OR block_number < 0 THEN
		RAISE EXCEPTION 'invalid block_number %: must be 0 or more', coalesce(block_number::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN almanac._revert(revert_to.chain_id, revert_to.block_number);
END;
$$;
COMMENT ON FUNCTION almanac.revert_to(text, bigint) IS 'remove every block above block_number with everything that belongs to it; returns the number of blocks removed';

-- The ingest core: p_blocks a JSON array of blocks in ascending order,
-- p_receipts the array of their receipt arrays.  p_reorg allows reverting to
-- the new first block's parent when it conflicts with what is stored (only
-- ingest_block offers it: a batch that does not fit is a follower bug).
-- Returns the number of blocks newly stored; blocks already stored with the
-- same hash are skipped.
CREATE FUNCTION almanac._ingest(p_chain text, p_blocks jsonb, p_receipts jsonb, p_reorg boolean)
	RETURNS bigint
	LANGUAGE plpgsql AS
$$
DECLARE
	c			almanac.chains;
	v_nums		bigint[];
	v_hashes	text[];
	v_parents	text[];
	v_ts		timestamptz[];
	v_new		bigint[];
	v_evm		bigint;
	bad			record;
	n_new		bigint;
	v_ancestor	bigint;
BEGIN
	IF p_chain IS NULL THEN
		RAISE EXCEPTION 'chain_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF p_blocks IS NULL OR jsonb_typeof(p_blocks) <> 'array' THEN
		RAISE EXCEPTION 'blocks must be a JSON array of blocks, not %', coalesce(jsonb_typeof(p_blocks), 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF p_receipts IS NULL OR jsonb_typeof(p_receipts) <> 'array' THEN
		RAISE EXCEPTION 'receipts must be a JSON array, not %', coalesce(jsonb_typeof(p_receipts), 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF jsonb_array_length(p_blocks) <> jsonb_array_length(p_receipts) THEN
		RAISE EXCEPTION '% blocks but % receipt arrays', jsonb_array_length(p_blocks), jsonb_array_length(p_receipts)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The i-th element of receipts is the eth_getBlockReceipts result of the i-th block.';
	END IF;
	IF jsonb_array_length(p_blocks) = 0 THEN
		RETURN 0;
	END IF;

	-- block headers, checked: objects, fields present and well formed
	SELECT array_agg(h.num ORDER BY h.ord), array_agg(h.hash ORDER BY h.ord),
		   array_agg(h.parent ORDER BY h.ord), array_agg(h.ts ORDER BY h.ord)
	  INTO v_nums, v_hashes, v_parents, v_ts
	  FROM (SELECT z.ord, n.num,
				   almanac._hex_id(z.b->>'hash', 32, false, n.num, NULL, 'block', 'hash') AS hash,
				   almanac._hex_id(z.b->>'parentHash', 32, false, n.num, NULL, 'block', 'parentHash') AS parent,
				   to_timestamp(almanac._hex_bigint(z.b->>'timestamp', n.num, NULL, 'block', 'timestamp')) AS ts,
				   almanac._ingest_assert(jsonb_typeof(z.b->'transactions') = 'array',
						'field "transactions" must be an array of transaction objects',
						jsonb_typeof(z.b->'transactions'), 'array', n.num, NULL, 'block', 'transactions') AS ok1,
				   almanac._ingest_assert(jsonb_typeof(z.r) = 'array',
						'its receipts must be a JSON array (the eth_getBlockReceipts result)',
						jsonb_typeof(z.r), 'array', n.num, NULL, 'block', 'receipts') AS ok2,
				   n.okb
			  FROM ROWS FROM (jsonb_array_elements(p_blocks), jsonb_array_elements(p_receipts))
					 WITH ORDINALITY AS z(b, r, ord)
			 CROSS JOIN LATERAL (
				SELECT almanac._ingest_assert(jsonb_typeof(z.b) = 'object', 'a block must be a JSON object',
						jsonb_typeof(z.b), 'object', NULL, z.ord::int - 1, 'batch position', 'block') AS okb,
					   almanac._hex_bigint(CASE WHEN jsonb_typeof(z.b) = 'object' THEN z.b->>'number' END,
						NULL, z.ord::int - 1, 'batch position', 'number') AS num
			 ) n) h
	 WHERE h.ok1 AND h.ok2 AND h.okb;

	-- the batch must be one contiguous piece of chain
	SELECT u.num, u.prev_num, u.parent, u.prev_hash INTO bad
	  FROM (SELECT num, parent, lag(num) OVER w AS prev_num, lag(hash) OVER w AS prev_hash
			  FROM unnest(v_nums, v_hashes, v_parents) WITH ORDINALITY AS x(num, hash, parent, ord)
			WINDOW w AS (ORDER BY ord)) u
	 WHERE u.prev_num IS NOT NULL AND (u.num <> u.prev_num + 1 OR u.parent <> u.prev_hash)
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'block %: does not follow block % of the batch', bad.num, bad.prev_num
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Its parentHash is %s, block %s has hash %s.', bad.parent, bad.prev_num, bad.prev_hash),
				  HINT = 'Pass the blocks of a batch in ascending order without gaps.';
	END IF;

	-- the chain: registered on first ingest; locked against concurrent changes
	c := almanac._lock_chain(p_chain);
	IF c.chain_id IS NULL THEN
		INSERT INTO almanac.chains (chain_id) VALUES (p_chain) ON CONFLICT DO NOTHING;
		c := almanac._lock_chain(p_chain);
	END IF;

	-- EVM chain id: every transaction that carries one (legacy pre-EIP-155
	-- ones do not) must agree with the chain's, learned on first sight
	v_evm := c.evm_chain_id;
	SELECT x.num, x.idx, x.cid INTO bad
	  FROM (SELECT y.*, min(y.cid) OVER () AS first_cid
			  FROM (SELECT b.num, t.ord::int - 1 AS idx,
						   almanac._hex_bigint(t.tx->>'chainId', b.num, t.ord::int - 1, 'transaction', 'chainId') AS cid
					  FROM ROWS FROM (jsonb_array_elements(p_blocks), unnest(v_nums)) AS b(blk, num),
						   jsonb_array_elements(b.blk->'transactions') WITH ORDINALITY AS t(tx, ord)
					 WHERE jsonb_typeof(t.tx) = 'object' AND t.tx->'chainId' <> 'null') y) x
	 WHERE x.cid <> coalesce(v_evm, x.first_cid)
	 ORDER BY x.num, x.idx
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'block %, transaction %: chainId % does not match chain "%"', bad.num, bad.idx, bad.cid, p_chain
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = CASE WHEN v_evm IS NULL THEN 'The transactions of the batch carry different chain ids.'
						   ELSE format('Chain "%s" has EVM chain id %s.', p_chain, v_evm) END,
				  HINT = 'Check that the follower feeds the right chain_id.';
	END IF;
	IF v_evm IS NULL THEN
		SELECT min(almanac._hex_bigint(v #>> '{}', NULL, NULL, 'transaction', 'chainId')) INTO v_evm
		  FROM jsonb_path_query(p_blocks, 'lax $[*].transactions[*].chainId') AS v
		 WHERE v <> 'null';
		IF v_evm IS NOT NULL THEN
			IF EXISTS (SELECT FROM almanac.chains WHERE evm_chain_id = v_evm AND chain_id <> p_chain) THEN
				RAISE EXCEPTION 'EVM chain id % of the transactions of chain "%" belongs to chain "%"', v_evm, p_chain,
					(SELECT chain_id FROM almanac.chains WHERE evm_chain_id = v_evm)
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			UPDATE almanac.chains SET evm_chain_id = v_evm WHERE chain_id = p_chain;
		END IF;
	END IF;

	-- compare with what is stored: the same block again is skipped; another
	-- block at a stored number, or a block whose neighbours in the store do
	-- not link to it, is a conflict
	SELECT x.num, x.hash, x.parent, x.why, x.stored INTO bad
	  FROM (SELECT u.num, u.hash, u.parent,
				   CASE WHEN s.block_hash IS NOT NULL AND s.block_hash <> u.hash THEN 'number'
						WHEN s.block_hash IS NULL AND below.block_hash <> u.parent THEN 'parent'
						WHEN s.block_hash IS NULL AND above.parent_hash <> u.hash
							 AND u.num + 1 <> ALL (v_nums) THEN 'child' END AS why,
				   coalesce(CASE WHEN s.block_hash <> u.hash THEN s.block_hash END,
							CASE WHEN below.block_hash <> u.parent THEN below.block_hash END,
							above.parent_hash) AS stored
			  FROM unnest(v_nums, v_hashes, v_parents) AS u(num, hash, parent)
			  LEFT JOIN almanac.blocks s ON s.chain_id = p_chain AND s.block_number = u.num
			  LEFT JOIN almanac.blocks below ON below.chain_id = p_chain AND below.block_number = u.num - 1
			  LEFT JOIN almanac.blocks above ON above.chain_id = p_chain AND above.block_number = u.num + 1) x
	 WHERE x.why IS NOT NULL
	 ORDER BY x.num
	 LIMIT 1;
	IF FOUND THEN
		IF NOT p_reorg THEN
			RAISE EXCEPTION 'block %: conflicts with the stored chain "%"', bad.num, p_chain
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = CASE bad.why
						WHEN 'number' THEN format('Block %s is stored with hash %s; the new block has hash %s.', bad.num, bad.stored, bad.hash)
						WHEN 'parent' THEN format('Its parentHash %s is not the hash %s of stored block %s.', bad.parent, bad.stored, bad.num - 1)
						ELSE format('Stored block %s names parent %s, not the new block''s hash %s.', bad.num + 1, bad.stored, bad.hash) END,
					  HINT = 'The chain reorganised: call almanac.ingest_block(..., on_reorg => ''revert'') or almanac.revert_to first.';
		END IF;
		-- revert to the common ancestor, the stored block the new block's
		-- parentHash names; without it the reorg is deeper than we can see
		SELECT block_number INTO v_ancestor
		  FROM almanac.blocks WHERE chain_id = p_chain AND block_hash = bad.parent;
		IF v_ancestor IS NULL AND EXISTS (SELECT FROM almanac.blocks
										   WHERE chain_id = p_chain AND block_number = bad.num - 1) THEN
			RAISE EXCEPTION 'block %: cannot reorg, its parent % is not stored', bad.num, bad.parent
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Stored block %s has another hash: the reorg is deeper than one block.', bad.num - 1),
					  HINT = 'Ingest the new branch from the common ancestor upwards, or call almanac.revert_to first.';
		END IF;
		IF v_ancestor IS NOT NULL AND v_ancestor <> bad.num - 1 THEN
			RAISE EXCEPTION 'block %: its parent % is stored as block %', bad.num, bad.parent, v_ancestor
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		PERFORM almanac._revert(p_chain, bad.num - 1);
		c := almanac._lock_chain(p_chain);
	END IF;

	-- the blocks not stored yet (positions in the batch)
	SELECT array_agg(u.ord) INTO v_new
	  FROM unnest(v_nums, v_hashes) WITH ORDINALITY AS u(num, hash, ord)
	 WHERE NOT EXISTS (SELECT FROM almanac.blocks s
						WHERE s.chain_id = p_chain AND s.block_number = u.num AND s.block_hash = u.hash);
	IF v_new IS NULL THEN
		RETURN 0;
	END IF;

	-- One statement stores the blocks, their transactions and their logs.
	-- Every conversion and cross-check raises from inside it, so a bad value
	-- anywhere in the batch aborts the statement with nothing written.
	WITH bl AS MATERIALIZED (
		SELECT z.b, z.r, z.num, z.hash, z.parent, z.ts
		  FROM ROWS FROM (jsonb_array_elements(p_blocks), jsonb_array_elements(p_receipts),
						  unnest(v_nums), unnest(v_hashes), unnest(v_parents), unnest(v_ts))
				 WITH ORDINALITY AS z(b, r, num, hash, parent, ts, ord)
		 WHERE z.ord = ANY (v_new)
	), ins_b AS (
		INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp,
									is_safe, is_finalized, metadata)
		SELECT p_chain, num, hash, parent, ts,
			   num <= coalesce(c.safe_block, -1), num <= coalesce(c.finalized_block, -1),
			   -- the header without what the tables hold already or is bulky
			   b - '{transactions,logsBloom,number,hash,parentHash,timestamp}'::text[]
		  FROM bl
		RETURNING id, block_number
	), tx AS MATERIALIZED (
		SELECT bl.num, bl.ts, bl.hash AS bhash, p.idx, p.j, p.rj,
			   almanac._hex_id(p.j->>'hash', 32, false, bl.num, p.idx, 'transaction', 'hash') AS tx_hash
		  FROM bl
		 CROSS JOIN LATERAL (
			SELECT t.ord::int - 1 AS idx,
				   almanac._ingest_assert(jsonb_typeof(t.j) = 'object',
						CASE WHEN t.j IS NULL THEN 'receipt without a transaction in the block'
							 ELSE 'a transaction must be a JSON object (call eth_getBlockByNumber with true)' END,
						jsonb_typeof(t.j), 'object', bl.num, t.ord::int - 1, 'transaction', 'transactions') AS ok_tx,
				   almanac._ingest_assert(jsonb_typeof(t.rj) = 'object',
						'transaction without a receipt object',
						jsonb_typeof(t.rj), 'object', bl.num, t.ord::int - 1, 'receipt', 'receipts') AS ok_rc,
				   t.j, t.rj
			  FROM ROWS FROM (jsonb_array_elements(bl.b->'transactions'), jsonb_array_elements(bl.r))
					 WITH ORDINALITY AS t(j, rj, ord)
		 ) p
		 WHERE p.ok_tx AND p.ok_rc
	), txd AS MATERIALIZED (
		SELECT tx.*,
			   almanac._ingest_assert(
					almanac._hex_id(rj->>'transactionHash', 32, false, num, idx, 'receipt', 'transactionHash') = tx_hash,
					'receipt does not belong to the transaction at its position',
					rj->>'transactionHash', tx_hash, num, idx, 'receipt', 'transactionHash')
			   AND almanac._ingest_assert(
					almanac._hex_id(rj->>'blockHash', 32, true, num, idx, 'receipt', 'blockHash') IS NOT DISTINCT FROM bhash
					OR rj->'blockHash' IS NULL,
					'receipt does not belong to the block',
					rj->>'blockHash', bhash, num, idx, 'receipt', 'blockHash') AS ok
		  FROM tx
	), ins_t AS (
		INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash, tx_type,
										  from_address, to_address, contract_address, value, nonce, data,
										  status, gas_used, timestamp)
		SELECT p_chain, ib.id, d.num, d.idx, d.tx_hash,
			   -- before EIP-2718 every transaction was legacy, type 0
			   coalesce(almanac._hex_bigint(d.j->>'type', d.num, d.idx, 'transaction', 'type'), 0)::smallint,
			   almanac._hex_id(d.j->>'from', 20, false, d.num, d.idx, 'transaction', 'from'),
			   almanac._hex_id(d.j->>'to', 20, true, d.num, d.idx, 'transaction', 'to'),
			   almanac._hex_id(d.rj->>'contractAddress', 20, true, d.num, d.idx, 'receipt', 'contractAddress'),
			   almanac._hex_numeric(d.j->>'value', d.num, d.idx, 'transaction', 'value'),
			   almanac._hex_bigint(d.j->>'nonce', d.num, d.idx, 'transaction', 'nonce'),
			   almanac._hex_bytes(coalesce(d.j->>'input', d.j->>'data'), d.num, d.idx, 'transaction', 'input'),
			   -- receipts before Byzantium carry a state root instead of a status
			   CASE WHEN d.rj ? 'status' THEN
					almanac._hex_bigint(d.rj->>'status', d.num, d.idx, 'receipt', 'status')::smallint END,
			   almanac._hex_bigint(d.rj->>'gasUsed', d.num, d.idx, 'receipt', 'gasUsed'),
			   d.ts
		  FROM txd d
		  JOIN ins_b ib ON ib.block_number = d.num
		 WHERE d.ok
		RETURNING id, block_id, block_number, tx_index, tx_hash, timestamp
	), lg AS (
		-- from txd, after its checks: a receipt of another transaction is
		-- reported as such, not as a log naming the wrong transaction
		SELECT tx.num, tx.idx, tx.tx_hash, l.j, l.ord::int - 1 AS pos
		  FROM txd tx
		 CROSS JOIN LATERAL jsonb_array_elements(
				CASE WHEN tx.rj ? 'logs' THEN tx.rj->'logs'
					 WHEN almanac._ingest_assert(false, 'missing field "logs"', NULL, 'an array',
												 tx.num, tx.idx, 'receipt', 'logs') THEN NULL END)
				WITH ORDINALITY AS l(j, ord)
		 WHERE tx.ok
	)
	INSERT INTO almanac.events (chain_id, block_id, block_number, transaction_id, log_index,
								contract_address, event_type, topics, data, timestamp)
	SELECT p_chain, it.block_id, it.block_number, it.id, e.log_index, e.address,
		   coalesce(e.topics[1], 'anonymous'), e.topics, e.data, it.timestamp
	  FROM (SELECT lg.num, lg.idx,
				   almanac._hex_bigint(lg.j->>'logIndex', lg.num, lg.idx, 'transaction', 'logs[].logIndex')::int AS log_index,
				   almanac._hex_id(lg.j->>'address', 20, false, lg.num, lg.idx, 'transaction', 'logs[].address') AS address,
				   almanac._hex_topics(lg.j->'topics', lg.num, lg.idx, 'transaction', 'logs[].topics') AS topics,
				   almanac._hex_bytes(lg.j->>'data', lg.num, lg.idx, 'transaction', 'logs[].data') AS data,
				   almanac._ingest_assert(
						lg.j->'transactionHash' IS NULL OR
						almanac._hex_id(lg.j->>'transactionHash', 32, false, lg.num, lg.idx, 'transaction',
										'logs[].transactionHash') = lg.tx_hash,
						'a log names a transaction that is not its receipt''s',
						lg.j->>'transactionHash', lg.tx_hash, lg.num, lg.idx, 'transaction', 'logs[].transactionHash') AS ok
			  FROM lg) e
	  JOIN ins_t it ON it.block_number = e.num AND it.tx_index = e.idx
	 WHERE e.ok;

	n_new := cardinality(v_new);
	UPDATE almanac.chains
	   SET latest_block = greatest(latest_block, (SELECT max(x) FROM unnest(v_nums) x))
	 WHERE chain_id = p_chain;
	RETURN n_new;
END;
$$;

CREATE FUNCTION almanac.ingest_block(chain_id text, block jsonb, receipts jsonb, on_reorg text DEFAULT 'error')
	RETURNS bigint
	LANGUAGE plpgsql AS
$$
DECLARE
	v_id bigint;
BEGIN
	IF on_reorg IS NULL OR on_reorg NOT IN ('error', 'revert') THEN
		RAISE EXCEPTION 'invalid on_reorg %: must be ''error'' or ''revert''', coalesce(quote_literal(on_reorg), 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF block IS NULL OR jsonb_typeof(block) <> 'object' THEN
		RAISE EXCEPTION 'block must be a JSON object (an eth_getBlockByNumber result), not %',
			coalesce(jsonb_typeof(block), 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM almanac._ingest(ingest_block.chain_id, jsonb_build_array(block), jsonb_build_array(receipts),
							on_reorg = 'revert');
	SELECT b.id INTO v_id
	  FROM almanac.blocks b
	 WHERE b.chain_id = ingest_block.chain_id
	   AND b.block_hash = almanac._hex_id(block->>'hash', 32, false, NULL, NULL, 'block', 'hash');
	RETURN v_id;
END;
$$;
COMMENT ON FUNCTION almanac.ingest_block(text, jsonb, jsonb, text) IS 'store one eth_getBlockByNumber(n, true) block with its eth_getBlockReceipts(n); returns the block id';

CREATE FUNCTION almanac.ingest_blocks(chain_id text, blocks jsonb, receipts jsonb) RETURNS bigint
	LANGUAGE sql AS
$$
	SELECT almanac._ingest(chain_id, blocks, receipts, false)
$$;
COMMENT ON FUNCTION almanac.ingest_blocks(text, jsonb, jsonb) IS 'store a JSON array of consecutive blocks with the array of their receipt arrays, all or nothing; returns the number of blocks newly stored';

-- Chain heads.  Heads only move forward: a call with a lower number than the
-- current head is a no-op (followers poll several providers, which can lag
-- each other by a block; that is not an error).  Both return the head after
-- the call.  The block must be stored.
CREATE FUNCTION almanac._move_head(p_chain text, p_number bigint, p_finalized boolean) RETURNS bigint
	LANGUAGE plpgsql AS
$$
DECLARE
	c almanac.chains;
	v_old_safe bigint;
	v_old_final bigint;
BEGIN
	c := almanac._require_chain(p_chain);
	IF p_number IS NULL OR p_number < 0 THEN
		RAISE EXCEPTION 'invalid block_number %: must be 0 or more', coalesce(p_number::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF c.latest_block IS NULL OR p_number > c.latest_block THEN
		RAISE EXCEPTION 'cannot mark block % of chain "%" %: it is above the latest stored block %',
			p_number, p_chain, CASE WHEN p_finalized THEN 'finalized' ELSE 'safe' END,
			coalesce(c.latest_block::text, '(none)')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	v_old_safe := coalesce(c.safe_block, -1);
	v_old_final := coalesce(c.finalized_block, -1);

	IF p_finalized THEN
		IF p_number <= v_old_final THEN
			RETURN c.finalized_block;
		END IF;
		-- finalized implies safe: the safe head comes along if it is lower
		UPDATE almanac.blocks
		   SET is_finalized = true, is_safe = true
		 WHERE chain_id = p_chain AND block_number > v_old_final AND block_number <= p_number;
		UPDATE almanac.chains
		   SET finalized_block = p_number, safe_block = greatest(safe_block, p_number)
		 WHERE chain_id = p_chain;
	ELSE
		IF p_number <= v_old_safe THEN
			RETURN c.safe_block;
		END IF;
		UPDATE almanac.blocks
		   SET is_safe = true
		 WHERE chain_id = p_chain AND block_number > v_old_safe AND block_number <= p_number;
		UPDATE almanac.chains SET safe_block = p_number WHERE chain_id = p_chain;
	END IF;
	RETURN p_number;
END;
$$;

CREATE FUNCTION almanac.set_safe(chain_id text, block_number bigint) RETURNS bigint
	LANGUAGE sql AS
$$
	SELECT almanac._move_head(chain_id, block_number, false)
$$;
COMMENT ON FUNCTION almanac.set_safe(text, bigint) IS 'move the safe head forward and mark the blocks up to it safe; a lower number is a no-op; returns the safe head';

CREATE FUNCTION almanac.set_finalized(chain_id text, block_number bigint) RETURNS bigint
	LANGUAGE sql AS
$$
	SELECT almanac._move_head(chain_id, block_number, true)
$$;
COMMENT ON FUNCTION almanac.set_finalized(text, bigint) IS 'move the finalized (and if needed the safe) head forward and mark the blocks up to it; a lower number is a no-op; returns the finalized head';

-- Query helpers.  Addresses and topics are lowercased, so a checksummed
-- address from a user still matches.
CREATE FUNCTION almanac.latest_block(chain_id text) RETURNS almanac.blocks
	LANGUAGE sql STABLE AS
$$
	SELECT b.* FROM almanac.blocks b
	 WHERE b.chain_id = latest_block.chain_id
	 ORDER BY b.block_number DESC
	 LIMIT 1
$$;

-- events of a contract, optionally of one type (topic0) and with given
-- further topics, over an inclusive block range, in chain order
CREATE FUNCTION almanac.contract_events(chain_id text, contract_address text, topic0 text DEFAULT NULL,
										from_block bigint DEFAULT 0, to_block bigint DEFAULT NULL,
										topic1 text DEFAULT NULL, topic2 text DEFAULT NULL,
										topic3 text DEFAULT NULL)
	RETURNS SETOF almanac.events
	LANGUAGE sql STABLE AS
$$
	SELECT e.* FROM almanac.events e
	 WHERE e.chain_id = contract_events.chain_id
	   AND e.contract_address = lower(contract_events.contract_address)
	   AND (contract_events.topic0 IS NULL OR e.event_type = lower(contract_events.topic0))
	   AND e.block_number BETWEEN from_block AND coalesce(to_block, 9223372036854775807)
	   AND (contract_events.topic1 IS NULL OR e.topics[2] = lower(contract_events.topic1))
	   AND (contract_events.topic2 IS NULL OR e.topics[3] = lower(contract_events.topic2))
	   AND (contract_events.topic3 IS NULL OR e.topics[4] = lower(contract_events.topic3))
	 ORDER BY e.block_number, e.log_index
$$;

-- transactions sent by, sent to, or deploying an address, in chain order
CREATE FUNCTION almanac.address_transactions(chain_id text, address text,
											 from_block bigint DEFAULT 0, to_block bigint DEFAULT NULL)
	RETURNS SETOF almanac.transactions
	LANGUAGE sql STABLE AS
$$
	SELECT t.* FROM almanac.transactions t
	 WHERE t.chain_id = address_transactions.chain_id
	   AND (t.from_address = lower(address) OR t.to_address = lower(address)
			OR t.contract_address = lower(address))
	   AND t.block_number BETWEEN from_block AND coalesce(to_block, 9223372036854775807)
	 ORDER BY t.block_number, t.tx_index
$$;

-- the state of an account as of a block (its latest change at or below it),
-- and now
CREATE FUNCTION almanac.account_state_at(chain_id text, account text, block_number bigint) RETURNS jsonb
	LANGUAGE sql STABLE AS
$$
	SELECT s.state FROM almanac.account_states s
	 WHERE s.chain_id = account_state_at.chain_id AND s.account = lower(account_state_at.account)
	   AND s.block_number <= account_state_at.block_number
	 ORDER BY s.block_number DESC
	 LIMIT 1
$$;

CREATE FUNCTION almanac.account_state(chain_id text, account text) RETURNS jsonb
	LANGUAGE sql STABLE AS
$$
	SELECT s.state FROM almanac.account_states s
	 WHERE s.chain_id = account_state.chain_id AND s.account = lower(account_state.account)
	 ORDER BY s.block_number DESC
	 LIMIT 1
$$;
