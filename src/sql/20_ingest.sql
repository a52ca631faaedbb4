-- Chain ingest, reorgs and finality (docs/ingest.md).
--
-- Input is what an Ethereum JSON-RPC follower already has in hand: the
-- result of eth_getBlockByNumber(n, true) and of eth_getBlockReceipts(n).
-- Everything is written with plain set-based statements on the core tables
-- (the RocksDB mirrors follow table changes, so there is no per-row logic to
-- replay), and every call is one transaction's worth of work: an error
-- anywhere leaves nothing behind.

-- Decoders (src/ingest/ingest.c): each walks the JSON of a batch once in C,
-- converts every value exactly and raises 22023 naming the block, the item
-- and the field of a bad one.  They write nothing.  A batch is an array of
-- blocks and one of their receipt arrays or, with single, one block and its
-- receipts (ingest_block: no new arrays to build around them).
CREATE FUNCTION almanac._ingest_flatten(v jsonb) RETURNS jsonb
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_ingest_flatten_sql';
CREATE FUNCTION almanac._ingest_headers(blocks jsonb, receipts jsonb, single boolean,
		OUT nums bigint[], OUT hashes text[], OUT parents text[],
		OUT timestamps timestamptz[], OUT metadata jsonb[])
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_ingest_headers_sql';
CREATE FUNCTION almanac._ingest_chain_id(chain text, blocks jsonb, nums bigint[], known bigint,
										 single boolean)
	RETURNS bigint LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_ingest_chain_id_sql';
CREATE FUNCTION almanac._ingest_transactions(blocks jsonb, receipts jsonb, positions bigint[],
											 single boolean)
	RETURNS TABLE (block_number bigint, tx_index integer, tx_hash text, tx_type smallint,
				   from_address text, to_address text, contract_address text, value numeric,
				   nonce bigint, data bytea, status smallint, gas_used bigint)
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE ROWS 15000
	AS 'MODULE_PATHNAME', 'almanac_ingest_transactions_sql';
CREATE FUNCTION almanac._ingest_logs(receipts jsonb, nums bigint[], hashes text[], positions bigint[],
									 ntx bigint, single boolean)
	RETURNS TABLE (block_number bigint, tx_index integer, log_index integer, contract_address text,
				   event_type text, topics text[], data bytea)
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE ROWS 40000
	AS 'MODULE_PATHNAME', 'almanac_ingest_logs_sql';

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
-- what a call orphaned (almanac._orphaned_tx_hashes, for a coordinator)
CREATE INDEX orphaned_blocks_chain_time_idx ON almanac.orphaned_blocks (chain_id, orphaned_at);
COMMENT ON TABLE almanac.orphaned_blocks IS 'audit history: blocks removed by revert_to or a reorg';

-- The chains with their heads.
CREATE VIEW almanac.chain_heads AS
	SELECT chain_id, evm_chain_id, name, latest_block, safe_block, finalized_block
	  FROM almanac.chains;
COMMENT ON VIEW almanac.chain_heads IS 'every chain with its latest, safe and finalized block numbers';

-- Lock a chain's row for the rest of the transaction, so that concurrent
-- ingests, reverts and head moves of one chain queue up instead of racing on
-- the parent-hash checks.  Returns the row, or NULL when the chain is unknown.
-- On a node behind a coordinator (src/sql/60_node.sql), a chain held here but
-- no longer placed here was moved to another node (move_chain_finish takes
-- it off almanac.placed_chains): every write of it is refused, 40001, so that
-- a coordinator's call that read the placement before the flip (a REPEATABLE
-- READ transaction) fails instead of writing to the old node.
CREATE FUNCTION almanac._lock_chain(p_chain text) RETURNS almanac.chains
	LANGUAGE plpgsql AS
$$
DECLARE
	c almanac.chains;
BEGIN
	SELECT * INTO c FROM almanac.chains WHERE chain_id = p_chain FOR UPDATE;
	IF NOT FOUND THEN
		RETURN NULL;			/* not a row of nulls: as the SQL function was */
	END IF;
	IF EXISTS (SELECT FROM almanac.node)
		AND NOT EXISTS (SELECT FROM almanac.placed_chains p WHERE p.chain_id = p_chain) THEN
		RAISE EXCEPTION 'chain "%" was moved away from this node (node %)', p_chain, (SELECT n.node_id FROM almanac.node n)
			USING ERRCODE = 'serialization_failure',
				  HINT = 'Its writes go to its new node: retry the transaction through the coordinator.';
	END IF;
	RETURN c;
END;
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
	v_hashes text[];
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
	), orphaned AS (
		INSERT INTO almanac.orphaned_blocks (chain_id, block_number, block_hash, parent_hash, timestamp, tx_hashes)
		SELECT p_chain, g.block_number, g.block_hash, g.parent_hash, g.timestamp,
			   coalesce((SELECT array_agg(t.tx_hash ORDER BY t.tx_index)
						   FROM almanac.transactions t WHERE t.block_id = g.id), '{}')
		  FROM gone g
		RETURNING tx_hashes
	)
	SELECT (SELECT count(*) FROM orphaned), (SELECT array_agg(h) FROM orphaned o, unnest(o.tx_hashes) h)
	  INTO n, v_hashes;

	-- the messages delivered by the reverted transactions are in flight
	-- again: those whose destination was given by id already are (the
	-- foreign key's SET NULL), those given by hash only here; a coordinator
	-- does the same on its other nodes (docs/scale-out.md)
	IF v_hashes IS NOT NULL THEN
		PERFORM almanac.undeliver_messages(p_chain, v_hashes);
	END IF;

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
-- p_receipts the array of their receipt arrays (with p_single, one block and
-- its receipts).  p_reorg allows reverting to
-- the new first block's parent when it conflicts with what is stored (only
-- ingest_block offers it: a batch that does not fit is a follower bug).
-- Returns the number of blocks newly stored; blocks already stored with the
-- same hash are skipped.
CREATE FUNCTION almanac._ingest(p_chain text, p_blocks jsonb, p_receipts jsonb, p_reorg boolean,
								p_single boolean)
	RETURNS bigint
	LANGUAGE plpgsql
	-- A custom plan would copy the batch's JSON (megabytes) into the plan as
	-- a constant, for every statement that names it, on every call; the
	-- generic plans pass it by reference.  None of these plans depends on
	-- the values.
	SET plan_cache_mode = force_generic_plan
	AS
$$
DECLARE
	c			almanac.chains;
	v_nums		bigint[];
	v_hashes	text[];
	v_parents	text[];
	v_ts		timestamptz[];
	v_meta		jsonb[];
	v_new		bigint[];
	v_evm		bigint;
	bad			record;
	n_new		bigint;
	v_ancestor	bigint;
	v_constraint text;
BEGIN
	IF p_chain IS NULL THEN
		RAISE EXCEPTION 'chain_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- read by several decoders: fetched and decompressed once
	p_blocks := almanac._ingest_flatten(p_blocks);
	p_receipts := almanac._ingest_flatten(p_receipts);

	-- the shape of the batch and every block header, checked
	SELECT h.nums, h.hashes, h.parents, h.timestamps, h.metadata
	  INTO v_nums, v_hashes, v_parents, v_ts, v_meta
	  FROM almanac._ingest_headers(p_blocks, p_receipts, p_single) h;
	IF cardinality(v_nums) = 0 THEN
		RETURN 0;
	END IF;

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
	v_evm := almanac._ingest_chain_id(p_chain, p_blocks, v_nums, c.evm_chain_id, p_single);
	IF c.evm_chain_id IS NULL AND v_evm IS NOT NULL THEN
		IF EXISTS (SELECT FROM almanac.chains WHERE evm_chain_id = v_evm AND chain_id <> p_chain) THEN
			RAISE EXCEPTION 'EVM chain id % of the transactions of chain "%" belongs to chain "%"', v_evm, p_chain,
				(SELECT chain_id FROM almanac.chains WHERE evm_chain_id = v_evm)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		UPDATE almanac.chains SET evm_chain_id = v_evm WHERE chain_id = p_chain;
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
					  -- the stored block in the way is finalized: a revert
					  -- would be refused, so do not suggest one
					  HINT = CASE WHEN c.finalized_block >= bad.num + CASE bad.why WHEN 'parent' THEN -1 WHEN 'child' THEN 1 ELSE 0 END
						THEN format('Stored block %s of chain "%s" is finalized and cannot be reverted: the new block comes from another chain or from a node on a fork.',
									bad.num + CASE bad.why WHEN 'parent' THEN -1 WHEN 'child' THEN 1 ELSE 0 END, p_chain)
						ELSE 'The chain reorganised: call almanac.ingest_block(..., on_reorg => ''revert'') or almanac.revert_to first.' END;
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
	SELECT array_agg(u.ord ORDER BY u.ord) INTO v_new
	  FROM unnest(v_nums, v_hashes) WITH ORDINALITY AS u(num, hash, ord)
	 WHERE NOT EXISTS (SELECT FROM almanac.blocks s
						WHERE s.chain_id = p_chain AND s.block_number = u.num AND s.block_hash = u.hash);
	IF v_new IS NULL THEN
		RETURN 0;
	END IF;

	-- One statement stores the blocks, their transactions and their logs,
	-- decoded in C.  Every conversion and cross-check raises from inside it,
	-- so a bad value anywhere in the batch aborts the statement with nothing
	-- written.  The logs decoder takes the number of transactions stored:
	-- that makes the transactions (and their checks) go first, and the
	-- events then join the rows the INSERT returned, not the table.
	-- A transaction stored already, in a block of the chain outside the batch,
	-- is named with its block and position instead of the key's 23505 (the
	-- decoder names a transaction repeated within the batch).
	BEGIN
		WITH ins_b AS (
			INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp,
										is_safe, is_finalized, metadata)
			SELECT p_chain, u.num, u.hash, u.parent, u.ts,
				   u.num <= coalesce(c.safe_block, -1), u.num <= coalesce(c.finalized_block, -1), u.meta
			  FROM unnest(v_nums, v_hashes, v_parents, v_ts, v_meta) WITH ORDINALITY
					 AS u(num, hash, parent, ts, meta, ord)
			 WHERE u.ord = ANY (v_new)
			RETURNING id, block_number, timestamp
		), ins_t AS (
			INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash, tx_type,
											  from_address, to_address, contract_address, value, nonce, data,
											  status, gas_used, timestamp)
			SELECT p_chain, b.id, t.block_number, t.tx_index, t.tx_hash, t.tx_type, t.from_address,
				   t.to_address, t.contract_address, t.value, t.nonce, t.data, t.status, t.gas_used, b.timestamp
			  FROM almanac._ingest_transactions(p_blocks, p_receipts, v_new, p_single) t
			  JOIN ins_b b ON b.block_number = t.block_number
			RETURNING id, block_id, block_number, tx_index, timestamp
		)
		INSERT INTO almanac.events (chain_id, block_id, block_number, transaction_id, log_index,
									contract_address, event_type, topics, data, timestamp)
		SELECT p_chain, t.block_id, t.block_number, t.id, l.log_index, l.contract_address, l.event_type,
			   l.topics, l.data, t.timestamp
		  FROM almanac._ingest_logs(p_receipts, v_nums, v_hashes, v_new, (SELECT count(*) FROM ins_t), p_single) l
		  JOIN ins_t t ON t.block_number = l.block_number AND t.tx_index = l.tx_index;
	EXCEPTION WHEN unique_violation THEN
		GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
		IF v_constraint IS DISTINCT FROM 'transactions_chain_id_tx_hash_key' THEN
			RAISE;
		END IF;
		SELECT t.block_number AS num, t.tx_index AS idx, t.tx_hash AS hash, s.block_number AS stored
		  INTO bad
		  FROM almanac._ingest_transactions(p_blocks, p_receipts, v_new, p_single) t
		  JOIN almanac.transactions s ON s.chain_id = p_chain AND s.tx_hash = t.tx_hash
		 ORDER BY t.block_number, t.tx_index LIMIT 1;
		IF NOT FOUND THEN
			RAISE;
		END IF;
		RAISE EXCEPTION 'block %, transaction %: transaction % is already stored in block %',
			bad.num, bad.idx, bad.hash, bad.stored
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A transaction belongs to one block of a chain; if the chain reorganised, revert the old block first (almanac.revert_to, or on_reorg => ''revert'').';
	END;

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
	-- read three times here: fetched and decompressed once
	block := almanac._ingest_flatten(block);
	IF block IS NULL OR jsonb_typeof(block) <> 'object' THEN
		RAISE EXCEPTION 'block must be a JSON object (an eth_getBlockByNumber result), not %',
			coalesce(jsonb_typeof(block), 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM almanac._ingest(ingest_block.chain_id, block, receipts, on_reorg = 'revert', true);
	-- the hash is well formed, or _ingest would have raised
	SELECT b.id INTO v_id
	  FROM almanac.blocks b
	 WHERE b.chain_id = ingest_block.chain_id AND b.block_hash = lower(block->>'hash');
	RETURN v_id;
END;
$$;
COMMENT ON FUNCTION almanac.ingest_block(text, jsonb, jsonb, text) IS 'store one eth_getBlockByNumber(n, true) block with its eth_getBlockReceipts(n); returns the block id';

CREATE FUNCTION almanac.ingest_blocks(chain_id text, blocks jsonb, receipts jsonb) RETURNS bigint
	LANGUAGE sql AS
$$
	SELECT almanac._ingest(chain_id, blocks, receipts, false, false)
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
		-- chains.latest_block is kept by ingest and revert only: rows put
		-- into almanac.blocks by INSERT or COPY leave it behind, and the
		-- message alone would deny blocks the user can see
		IF EXISTS (SELECT FROM almanac.blocks b WHERE b.chain_id = p_chain AND b.block_number >= p_number) THEN
			RAISE EXCEPTION 'cannot mark block % of chain "%" %: the chain''s latest_block is %',
				p_number, p_chain, CASE WHEN p_finalized THEN 'finalized' ELSE 'safe' END,
				coalesce(c.latest_block::text, 'NULL')
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('almanac.blocks holds blocks of chain "%s" up to %s; almanac.ingest_block(s) and almanac.revert_to keep latest_block, rows written into almanac.blocks otherwise do not.',
									  p_chain, (SELECT max(b.block_number) FROM almanac.blocks b WHERE b.chain_id = p_chain)),
					  HINT = format('Set it: UPDATE almanac.chains SET latest_block = (SELECT max(block_number) FROM almanac.blocks WHERE chain_id = %L) WHERE chain_id = %L', p_chain, p_chain);
		END IF;
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
