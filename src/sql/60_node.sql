-- A database as one node behind a coordinator (docs/scale-out.md).  The
-- coordinator (extension almanac_coordinator, in another database) places
-- each chain on one node.  Here, on the node:
--   * almanac.join_coordinator(node_id) puts the node id in the high bits of
--     every identity sequence, so ids are unique across the coordinator's
--     nodes (a join on transaction_id = id over two nodes meets no stranger);
--   * almanac.register_chain(...) registers a chain explicitly;
--   * once joined, the node refuses a chain not placed on it: the first
--     ingest of an unknown chain no longer registers it, so no rows of a
--     chain the coordinator placed elsewhere can appear here (an unfiltered
--     scan through the coordinator would return them twice).
-- A database that never joins behaves as before (chains registered by their
-- first ingest).

-- At most one row: the node id given by the coordinator.
CREATE TABLE almanac.node (
	node_id			integer NOT NULL CHECK (node_id BETWEEN 1 AND 32767),
	joined_at		timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX node_one_row_idx ON almanac.node ((true));
COMMENT ON TABLE almanac.node IS 'this database''s node id behind an almanac coordinator; empty when standalone';

-- The chains placed on this node by its coordinator.
CREATE TABLE almanac.placed_chains (
	chain_id		text PRIMARY KEY,
	placed_at		timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE almanac.placed_chains IS 'chains placed on this node by almanac.register_chain; a joined node refuses any other';

-- Identity values of node n: (n << 48) + 1 .. ((n + 1) << 48) - 1.  2^48 ids
-- per table and node (2.8e14; Ethereum has about 3e9 logs), 32767 nodes.
CREATE FUNCTION almanac.join_coordinator(node_id integer) RETURNS integer
	LANGUAGE plpgsql AS
$$
DECLARE
	v_old	integer;
	v_lo	bigint;
	r		record;
BEGIN
	IF node_id IS NULL OR node_id NOT BETWEEN 1 AND 32767 THEN
		RAISE EXCEPTION 'invalid node id %: must be between 1 and 32767', coalesce(node_id::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	LOCK TABLE almanac.node IN EXCLUSIVE MODE;
	SELECT n.node_id INTO v_old FROM almanac.node n;
	IF v_old = join_coordinator.node_id THEN
		RETURN v_old;
	ELSIF v_old IS NOT NULL THEN
		RAISE EXCEPTION 'this database is node % already, not node %', v_old, join_coordinator.node_id
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	-- ids given before the join would collide with other nodes' old ids
	IF EXISTS (SELECT FROM almanac.chains) THEN
		RAISE EXCEPTION 'cannot join a coordinator as node %: this database holds chains already', join_coordinator.node_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('It holds %s chain(s), e.g. "%s".', (SELECT count(*) FROM almanac.chains),
								  (SELECT min(chain_id) FROM almanac.chains)),
				  HINT = 'Add an empty almanac database as a node.';
	END IF;
	v_lo := (join_coordinator.node_id::bigint << 48) + 1;
	FOR r IN
		SELECT c.relname, a.attname
		  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		 WHERE c.relnamespace = 'almanac'::regnamespace AND c.relkind = 'r'
		   AND a.attidentity <> '' AND NOT a.attisdropped
		 ORDER BY 1
	LOOP
		EXECUTE format('ALTER TABLE almanac.%I ALTER COLUMN %I SET MINVALUE %s SET MAXVALUE %s SET START WITH %s RESTART',
					   r.relname, r.attname, v_lo, v_lo + (1::bigint << 48) - 2, v_lo);
	END LOOP;
	INSERT INTO almanac.node (node_id) VALUES (join_coordinator.node_id);
	RETURN join_coordinator.node_id;
END;
$$;
COMMENT ON FUNCTION almanac.join_coordinator(integer) IS 'make this empty database node node_id of a coordinator: ids in the node''s range, chains only by register_chain';

-- Register a chain before its first ingest (on a joined node, the only way).
-- Registering a chain again with the same EVM chain id (or none) is a no-op,
-- so a coordinator may repeat a call whose answer it lost.
CREATE FUNCTION almanac.register_chain(chain_id text, evm_chain_id bigint DEFAULT NULL, name text DEFAULT NULL)
	RETURNS almanac.chains
	LANGUAGE plpgsql AS
$$
DECLARE
	c almanac.chains;
	v_other text;
BEGIN
	IF register_chain.chain_id IS NULL THEN
		RAISE EXCEPTION 'chain_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- not almanac._lock_chain, which refuses a chain held but not placed
	-- here: registering it places it again
	SELECT * INTO c FROM almanac.chains ch WHERE ch.chain_id = register_chain.chain_id FOR UPDATE;
	IF c.chain_id IS NOT NULL THEN
		IF register_chain.evm_chain_id IS NOT NULL AND c.evm_chain_id IS DISTINCT FROM register_chain.evm_chain_id THEN
			RAISE EXCEPTION 'chain "%" is registered with EVM chain id %, not %', c.chain_id,
				coalesce(c.evm_chain_id::text, 'NULL'), register_chain.evm_chain_id
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		INSERT INTO almanac.placed_chains (chain_id) VALUES (c.chain_id) ON CONFLICT DO NOTHING;
		RETURN c;
	END IF;
	SELECT ch.chain_id INTO v_other FROM almanac.chains ch WHERE ch.evm_chain_id = register_chain.evm_chain_id;
	IF FOUND THEN
		RAISE EXCEPTION 'EVM chain id % belongs to chain "%"', register_chain.evm_chain_id, v_other
			USING ERRCODE = 'unique_violation';
	END IF;
	INSERT INTO almanac.placed_chains (chain_id) VALUES (register_chain.chain_id) ON CONFLICT DO NOTHING;
	INSERT INTO almanac.chains (chain_id, evm_chain_id, name)
	VALUES (register_chain.chain_id, register_chain.evm_chain_id, register_chain.name)
	RETURNING * INTO c;
	RETURN c;
END;
$$;
COMMENT ON FUNCTION almanac.register_chain(text, bigint, text) IS 'register a chain (with its EVM chain id) before its first ingest; a no-op for a chain registered alike';

-- On a joined node, a chain comes only from register_chain: the implicit
-- registration of a first ingest, or a plain INSERT, is refused.
CREATE FUNCTION almanac._chain_placed_check() RETURNS trigger
	LANGUAGE plpgsql AS
$$
DECLARE
	v_node integer;
BEGIN
	SELECT n.node_id INTO v_node FROM almanac.node n;
	IF v_node IS NOT NULL
		AND NOT EXISTS (SELECT FROM almanac.placed_chains p WHERE p.chain_id = NEW.chain_id) THEN
		RAISE EXCEPTION 'chain "%" is not placed on this node (node %)', NEW.chain_id, v_node
			USING ERRCODE = 'undefined_object',
				  HINT = 'Chains of a coordinated node are placed by almanac_coordinator.register_chain on the coordinator.';
	END IF;
	RETURN NEW;
END;
$$;
CREATE TRIGGER chains_placed_check
	BEFORE INSERT OR UPDATE OF chain_id ON almanac.chains
	FOR EACH ROW EXECUTE FUNCTION almanac._chain_placed_check();

-- Calls of a coordinator that may revert blocks (docs/scale-out.md,
-- "Cross-chain messages"): almanac.revert_to and almanac.ingest_block, which
-- also return the hashes of the transactions they reverted, so that the
-- coordinator can undeliver the messages towards them stored on other nodes
-- (this node's are undelivered by the revert itself).  The chain's lock is
-- taken first: every revert of the chain holds it, so the orphaned rows
-- written since are this call's.
CREATE FUNCTION almanac._orphaned_tx_hashes(p_chain text, p_since timestamptz) RETURNS text[]
	LANGUAGE sql STABLE AS
$$
	SELECT coalesce(array_agg(h), '{}')
	  FROM almanac.orphaned_blocks o, unnest(o.tx_hashes) h
	 WHERE o.chain_id = p_chain AND o.orphaned_at >= p_since
$$;

CREATE FUNCTION almanac._coordinator_revert_to(chain_id text, block_number bigint,
											   OUT reverted bigint, OUT tx_hashes text[])
	LANGUAGE plpgsql AS
$$
DECLARE
	t0 timestamptz;
BEGIN
	PERFORM almanac._lock_chain(_coordinator_revert_to.chain_id);
	t0 := clock_timestamp();
	reverted := almanac.revert_to(_coordinator_revert_to.chain_id, _coordinator_revert_to.block_number);
	tx_hashes := almanac._orphaned_tx_hashes(_coordinator_revert_to.chain_id, t0);
END;
$$;

CREATE FUNCTION almanac._coordinator_ingest_block(chain_id text, block jsonb, receipts jsonb, on_reorg text,
												  OUT block_id bigint, OUT tx_hashes text[])
	LANGUAGE plpgsql AS
$$
DECLARE
	t0 timestamptz;
BEGIN
	IF on_reorg IS DISTINCT FROM 'revert' THEN
		-- nothing is reverted
		block_id := almanac.ingest_block(_coordinator_ingest_block.chain_id, block, receipts, on_reorg);
		tx_hashes := '{}';
		RETURN;
	END IF;
	PERFORM almanac._lock_chain(_coordinator_ingest_block.chain_id);
	t0 := clock_timestamp();
	block_id := almanac.ingest_block(_coordinator_ingest_block.chain_id, block, receipts, on_reorg);
	tx_hashes := almanac._orphaned_tx_hashes(_coordinator_ingest_block.chain_id, t0);
END;
$$;

-- Reconciliation (almanac_coordinator.reconcile_messages): the messages of
-- this node that name a destination transaction, and which of a chain's
-- transaction hashes this node holds.
CREATE FUNCTION almanac._messages_with_destination(
		OUT id bigint, OUT destination_chain_id text, OUT destination_tx_hash text, OUT status text)
	RETURNS SETOF record
	LANGUAGE sql STABLE AS
$$
	SELECT m.id, m.destination_chain_id, m.destination_tx_hash, m.status
	  FROM almanac.cross_chain_messages m
	 WHERE m.destination_tx_hash IS NOT NULL AND m.status IN ('pending', 'delivered')
$$;

-- which of these transactions of a chain this node holds, with their times
CREATE FUNCTION almanac._present_transactions(chain_id text, tx_hashes text[],
		OUT tx_hash text, OUT "timestamp" timestamptz)
	RETURNS SETOF record
	LANGUAGE sql STABLE AS
$$
	SELECT t.tx_hash, t.timestamp FROM almanac.transactions t
	 WHERE t.chain_id = _present_transactions.chain_id AND t.tx_hash = ANY (_present_transactions.tx_hashes)
$$;

-- which of these transaction hashes of a chain this node has reverted: in
-- its orphaned blocks and not stored (again) since.  A hash neither stored
-- nor orphaned may simply not be ingested yet.
CREATE FUNCTION almanac._reverted_transactions(chain_id text, tx_hashes text[]) RETURNS SETOF text
	LANGUAGE sql STABLE AS
$$
	SELECT DISTINCT h
	  FROM almanac.orphaned_blocks o, unnest(o.tx_hashes) h
	 WHERE o.chain_id = _reverted_transactions.chain_id AND h = ANY (_reverted_transactions.tx_hashes)
	   AND NOT EXISTS (SELECT FROM almanac.transactions t
					    WHERE t.chain_id = _reverted_transactions.chain_id AND t.tx_hash = h)
$$;

-- A repair of reconciliation: these pending messages delivered, their
-- destination transaction exists (delivered_at becomes that transaction's
-- time, and its id is filled in when it is on this node).  Failed messages
-- and those that changed meanwhile are left alone.  Returns how many
-- changed.  (The other repair is almanac.undeliver_messages.)
CREATE FUNCTION almanac._set_messages_delivered(ids bigint[], delivered_at timestamptz[]) RETURNS bigint
	LANGUAGE plpgsql AS
$$
DECLARE
	n bigint;
BEGIN
	UPDATE almanac.cross_chain_messages m
	   SET status = 'delivered', delivered_at = x.at,
		   destination_transaction_id = (SELECT t.id FROM almanac.transactions t
										  WHERE t.chain_id = m.destination_chain_id
											AND t.tx_hash = m.destination_tx_hash)
	  FROM unnest(ids, _set_messages_delivered.delivered_at) AS x(id, at)
	 WHERE m.id = x.id AND m.status = 'pending' AND m.destination_tx_hash IS NOT NULL;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$$;


-- Moving a chain away (docs/scale-out.md, "Moving a chain"): the steps that
-- almanac_coordinator.move_chain_begin runs on the source node and on the
-- target node, each its own transaction there; each a no-op when repeated.

-- On the source: a replica identity covering chain_id on the tables whose
-- key is not chain_id (a publication with a row filter refuses an UPDATE or
-- DELETE otherwise), and a publication of the chain's rows.
CREATE FUNCTION almanac._move_publish(chain_id text, publication name) RETURNS name
	LANGUAGE plpgsql AS
$$
DECLARE
	t text;
BEGIN
	IF EXISTS (SELECT FROM pg_publication p WHERE p.pubname = _move_publish.publication) THEN
		RETURN publication;
	END IF;
	IF NOT EXISTS (SELECT FROM almanac.chains c WHERE c.chain_id = _move_publish.chain_id) THEN
		RAISE EXCEPTION 'this node does not hold chain "%"', chain_id USING ERRCODE = 'undefined_object';
	END IF;
	FOREACH t IN ARRAY ARRAY['blocks', 'transactions', 'events', 'account_states', 'orphaned_blocks',
							 'cross_chain_messages'] LOOP
		EXECUTE format('ALTER TABLE almanac.%I REPLICA IDENTITY FULL', t);
	END LOOP;
	EXECUTE format('CREATE PUBLICATION %I FOR TABLE almanac.chains WHERE (chain_id = %2$L), '
				   'almanac.blocks WHERE (chain_id = %2$L), almanac.transactions WHERE (chain_id = %2$L), '
				   'almanac.events WHERE (chain_id = %2$L), almanac.account_states WHERE (chain_id = %2$L), '
				   'almanac.orphaned_blocks WHERE (chain_id = %2$L), '
				   'almanac.cross_chain_messages WHERE (source_chain_id = %2$L)',
				   publication, chain_id);
	RETURN publication;
END;
$$;

-- On the source, in a transaction of its own (a logical slot cannot be
-- made after a write): the subscription's slot.
CREATE FUNCTION almanac._move_create_slot(slot name) RETURNS name
	LANGUAGE plpgsql AS
$$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_replication_slots s WHERE s.slot_name = _move_create_slot.slot) THEN
		PERFORM pg_create_logical_replication_slot(slot, 'pgoutput');
	END IF;
	RETURN slot;
END;
$$;

-- On the target, before anything is made on the source: true when the
-- subscription exists already (a repeated call), else 55000 when this node
-- holds the chain, else false.
-- The lock waits for a _move_subscribe in flight (its reply lost, the
-- coordinator asks again), so that the answer includes it; SHARE ROW
-- EXCLUSIVE conflicts with itself, so two calls of _move_subscribe do not
-- deadlock on their insert.
CREATE FUNCTION almanac._move_check_target(chain_id text, subscription name) RETURNS boolean
	LANGUAGE plpgsql AS
$$
BEGIN
	LOCK TABLE almanac.placed_chains IN SHARE ROW EXCLUSIVE MODE;
	IF EXISTS (SELECT FROM pg_subscription s
				WHERE s.subname = _move_check_target.subscription
				  AND s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())) THEN
		RETURN true;
	END IF;
	IF EXISTS (SELECT FROM almanac.chains c WHERE c.chain_id = _move_check_target.chain_id) THEN
		RAISE EXCEPTION 'this node holds chain "%" already', chain_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'A chain is copied to a node that does not hold it.';
	END IF;
	RETURN false;
END;
$$;

-- On the source, when the subscription could not be made: the slot and the
-- publication dropped, and the replica identities back to DEFAULT unless
-- another publication of almanac's tables remains.
-- The caller makes sure no subscription uses the slot any more; its
-- walsender may still be exiting, so an active slot is waited for (up to
-- 10 s), never taken from a live one.
CREATE FUNCTION almanac._move_unpublish(publication name) RETURNS name
	LANGUAGE plpgsql AS
$$
DECLARE
	t		text;
	v_pid	integer;
BEGIN
	FOR i IN 1 .. 200 LOOP
		SELECT s.active_pid INTO v_pid FROM pg_replication_slots s WHERE s.slot_name = _move_unpublish.publication;
		EXIT WHEN v_pid IS NULL;
		PERFORM pg_sleep(0.05);
	END LOOP;
	IF v_pid IS NOT NULL THEN
		RAISE EXCEPTION 'replication slot "%" is in use by process %', publication, v_pid
			USING ERRCODE = 'object_in_use',
				  HINT = 'A subscription still streams from it: drop that subscription first.';
	END IF;
	IF EXISTS (SELECT FROM pg_replication_slots s WHERE s.slot_name = _move_unpublish.publication) THEN
		PERFORM pg_drop_replication_slot(publication);
	END IF;
	EXECUTE format('DROP PUBLICATION IF EXISTS %I', publication);
	IF NOT EXISTS (SELECT FROM pg_publication_tables p WHERE p.schemaname = 'almanac') THEN
		FOREACH t IN ARRAY ARRAY['blocks', 'transactions', 'events', 'account_states', 'orphaned_blocks',
								 'cross_chain_messages'] LOOP
			EXECUTE format('ALTER TABLE almanac.%I REPLICA IDENTITY DEFAULT', t);
		END LOOP;
	END IF;
	RETURN publication;
END;
$$;

-- On the target: the chain placed here, and a subscription to the source's
-- publication on that slot (made beforehand: a subscription that makes its
-- slot cannot be created inside a function).  The target must not hold the
-- chain yet.
CREATE FUNCTION almanac._move_subscribe(chain_id text, subscription name, source_conninfo text) RETURNS name
	LANGUAGE plpgsql AS
$$
BEGIN
	IF almanac._move_check_target(chain_id, subscription) THEN
		RETURN subscription;
	END IF;
	INSERT INTO almanac.placed_chains (chain_id) VALUES (_move_subscribe.chain_id) ON CONFLICT DO NOTHING;
	EXECUTE format('CREATE SUBSCRIPTION %I CONNECTION %L PUBLICATION %I WITH (create_slot = false, slot_name = %L)',
				   subscription, source_conninfo, subscription, subscription);
	RETURN subscription;
END;
$$;

-- On the target, when a move is given up (move_chain_abandon): the
-- subscription disabled (its workers stop), detached from its slot and
-- dropped, without dropping the slot on the source (the coordinator does,
-- next, once no subscription uses it); then the chain's copied rows
-- deleted (the mirror triggers remove their keys) and the chain no longer
-- placed here.  Returns false, changing nothing, when there is no such
-- subscription (a move copied by hand is undone by hand).
CREATE FUNCTION almanac._move_unsubscribe(chain_id text, subscription name) RETURNS boolean
	LANGUAGE plpgsql AS
$$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_subscription s
					WHERE s.subname = _move_unsubscribe.subscription
					  AND s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())) THEN
		RETURN false;
	END IF;
	EXECUTE format('ALTER SUBSCRIPTION %I DISABLE', subscription);
	EXECUTE format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', subscription);
	EXECUTE format('DROP SUBSCRIPTION %I', subscription);
	DELETE FROM almanac.chains c WHERE c.chain_id = _move_unsubscribe.chain_id;
	DELETE FROM almanac.placed_chains p WHERE p.chain_id = _move_unsubscribe.chain_id;
	RETURN true;
END;
$$;

-- On the source, at the flip (move_chain_finish): the chain no longer placed
-- here, so almanac._lock_chain refuses its writes (40001) from now on, also
-- those of a coordinator transaction that read the placement before the
-- flip.  The rows stay until the operator removes them (step 6).
CREATE FUNCTION almanac._move_unplace(chain_id text) RETURNS text
	LANGUAGE sql AS
$$
	DELETE FROM almanac.placed_chains p WHERE p.chain_id = _move_unplace.chain_id;
	SELECT chain_id;
$$;

-- On the target of a move, every message row the subscription copies or
-- applies (logical replication's workers run with session_replication_role
-- = replica: this trigger is ENABLE REPLICA, almanac's origin triggers and
-- foreign keys do not fire there): a destination_transaction_id names a
-- transaction of the source node, which the target holds only when the
-- destination chain is placed here (the moved chain itself, or a chain
-- moved here before, ids kept).  Otherwise (the destination chain stays on
-- the source) the id is cleared, the hash and the status kept: a dangling
-- id would fail the node's dump on restore.  Settling each row as it
-- arrives, rather than once at the flip, means no later change of the
-- message on the source (the subscription runs until it is dropped, after
-- the flip) can bring the id back.  A standalone database is left alone.
CREATE FUNCTION almanac._move_settle_message() RETURNS trigger
	LANGUAGE plpgsql AS
$$
BEGIN
	IF NEW.destination_transaction_id IS NOT NULL
		AND EXISTS (SELECT FROM almanac.node)
		AND NOT EXISTS (SELECT FROM almanac.placed_chains p WHERE p.chain_id = NEW.destination_chain_id) THEN
		NEW.destination_transaction_id := NULL;
	END IF;
	RETURN NEW;
END;
$$;
CREATE TRIGGER cross_chain_messages_move_settle
	BEFORE INSERT OR UPDATE ON almanac.cross_chain_messages
	FOR EACH ROW EXECUTE FUNCTION almanac._move_settle_message();
ALTER TABLE almanac.cross_chain_messages ENABLE REPLICA TRIGGER cross_chain_messages_move_settle;

-- A node's dump keeps it a node (src/sql/60_dump.sql marks the core tables):
-- its id and its placed chains are restored with the rows.  pg_restore
-- loads marked tables in name order where no foreign key orders them, so
-- almanac.chains comes before almanac.node, while the restored database is
-- still standalone and the trigger above lets its chains in.  The identity
-- sequences' values are restored (60_dump.sql), so new ids stay in the
-- node's range; their MINVALUE and MAXVALUE are not.
SELECT pg_catalog.pg_extension_config_dump('almanac.node', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.placed_chains', '');
