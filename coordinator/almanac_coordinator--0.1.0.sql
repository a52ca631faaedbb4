-- almanac_coordinator: one database in front of several almanac nodes
-- (docs/scale-out.md).  A chain is the unit of placement: each chain lives on
-- one node.  Writes and per-chain functions go to the chain's node through
-- PL/Proxy (one round trip, almanac's own functions run there); reads across
-- chains go through postgres_fdw, the core tables being partitioned tables
-- here with one foreign partition per node, listed by chain_id.

\echo Use "CREATE EXTENSION almanac_coordinator" to load this file. \quit

-- A coordinator holds no chain data: almanac in the same database would mean
-- two answers to every query of almanac's tables.
DO $$
BEGIN
	IF EXISTS (SELECT FROM pg_extension WHERE extname = 'almanac') THEN
		RAISE EXCEPTION 'almanac_coordinator cannot be installed into a database that has extension almanac'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Create the coordinator in its own database; almanac nodes are added to it with almanac_coordinator.add_node.';
	END IF;
END;
$$;

CREATE SCHEMA almanac_coordinator;
COMMENT ON SCHEMA almanac_coordinator IS 'almanac coordinator: chains placed on almanac nodes';

-- Registry: the nodes, and the node of each chain.
CREATE TABLE almanac_coordinator.nodes (
	node_id			integer PRIMARY KEY CHECK (node_id BETWEEN 1 AND 32767),
	-- names the node's foreign server and partitions: blocks_<node_name>
	node_name		text NOT NULL UNIQUE CHECK (node_name ~ '^[a-z][a-z0-9_]{0,39}$'),
	host			text NOT NULL,
	port			integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
	dbname			text NOT NULL,
	-- the role every call and scan uses on the node
	user_name		text NOT NULL,
	-- PL/Proxy's connect string (no password: use ~/.pgpass of the server's account)
	conninfo		text NOT NULL,
	fdw_server		name NOT NULL UNIQUE,
	added_at		timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE almanac_coordinator.nodes IS 'the almanac nodes behind this coordinator';

CREATE TABLE almanac_coordinator.placement (
	chain_id		text PRIMARY KEY
		CHECK (length(chain_id) BETWEEN 1 AND 64 AND chain_id !~ '[[:space:][:cntrl:]]'),
	-- required here: a node learning it on first ingest could not check it
	-- against the chains of the other nodes
	evm_chain_id	bigint NOT NULL UNIQUE CHECK (evm_chain_id > 0),
	node_id			integer NOT NULL REFERENCES almanac_coordinator.nodes,
	registered_at	timestamptz NOT NULL DEFAULT now(),
	-- dispatched writes refused while the chain is moved (move_chain_fence)
	writes_fenced	boolean NOT NULL DEFAULT false,
	-- the target of the move in progress: set by move_chain_begin, cleared
	-- by move_chain_finish or move_chain_abandon
	moving_to		integer REFERENCES almanac_coordinator.nodes
);
CREATE INDEX placement_node_idx ON almanac_coordinator.placement (node_id);
COMMENT ON TABLE almanac_coordinator.placement IS 'the node of each chain; written only by almanac_coordinator.register_chain';

-- The registry is written by add_node and register_chain only, which also
-- change the nodes and the partitions: a row written by hand would place a
-- chain where no partition bound or node knows of it.
CREATE FUNCTION almanac_coordinator._registry_guard() RETURNS trigger
	LANGUAGE plpgsql AS
$$
BEGIN
	IF current_setting('almanac_coordinator.registry_write', true) IS DISTINCT FROM 'on' THEN
		RAISE EXCEPTION 'table almanac_coordinator.% is written only by almanac_coordinator''s functions', TG_TABLE_NAME
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Use almanac_coordinator.add_node and almanac_coordinator.register_chain.';
	END IF;
	RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
CREATE TRIGGER nodes_guard BEFORE INSERT OR UPDATE OR DELETE ON almanac_coordinator.nodes
	FOR EACH ROW EXECUTE FUNCTION almanac_coordinator._registry_guard();
CREATE TRIGGER nodes_guard_truncate BEFORE TRUNCATE ON almanac_coordinator.nodes
	FOR EACH STATEMENT EXECUTE FUNCTION almanac_coordinator._registry_guard();
CREATE TRIGGER placement_guard BEFORE INSERT OR UPDATE OR DELETE ON almanac_coordinator.placement
	FOR EACH ROW EXECUTE FUNCTION almanac_coordinator._registry_guard();
CREATE TRIGGER placement_guard_truncate BEFORE TRUNCATE ON almanac_coordinator.placement
	FOR EACH STATEMENT EXECUTE FUNCTION almanac_coordinator._registry_guard();

-- The core tables of the nodes (src/sql/10_schema.sql, 20_ingest.sql), same
-- columns, partitioned by chain: each node's foreign partition lists the
-- chains placed on it (and a placeholder no chain id can equal, as a list
-- may not be empty), so a condition on chain_id prunes to one node.
CREATE TABLE almanac_coordinator.chains (
	chain_id text, evm_chain_id bigint, name text, latest_block bigint, safe_block bigint,
	finalized_block bigint, created_at timestamptz
) PARTITION BY LIST (chain_id);
CREATE TABLE almanac_coordinator.blocks (
	id bigint, chain_id text, block_number bigint, block_hash text, parent_hash text,
	timestamp timestamptz, is_finalized boolean, is_safe boolean, metadata jsonb
) PARTITION BY LIST (chain_id);
CREATE TABLE almanac_coordinator.transactions (
	id bigint, chain_id text, block_id bigint, block_number bigint, tx_index integer, tx_hash text,
	tx_type smallint, from_address text, to_address text, contract_address text, value numeric(78, 0),
	nonce bigint, data bytea, status smallint, gas_used bigint, timestamp timestamptz
) PARTITION BY LIST (chain_id);
CREATE TABLE almanac_coordinator.events (
	id bigint, chain_id text, block_id bigint, block_number bigint, transaction_id bigint,
	log_index integer, contract_address text, event_type text, topics text[], data bytea,
	timestamp timestamptz
) PARTITION BY LIST (chain_id);
CREATE TABLE almanac_coordinator.account_states (
	id bigint, chain_id text, account text, block_number bigint, state jsonb
) PARTITION BY LIST (chain_id);
-- on the node of its source chain
CREATE TABLE almanac_coordinator.cross_chain_messages (
	id bigint, protocol text, message_key text, source_chain_id text, source_transaction_id bigint,
	destination_chain_id text, destination_tx_hash text, destination_transaction_id bigint, status text, sent_at timestamptz,
	delivered_at timestamptz, payload jsonb
) PARTITION BY LIST (source_chain_id);
CREATE TABLE almanac_coordinator.orphaned_blocks (
	chain_id text, block_number bigint, block_hash text, parent_hash text, timestamp timestamptz,
	tx_hashes text[], orphaned_at timestamptz
) PARTITION BY LIST (chain_id);
CREATE VIEW almanac_coordinator.chain_heads AS
	SELECT chain_id, evm_chain_id, name, latest_block, safe_block, finalized_block
	  FROM almanac_coordinator.chains;

-- the partitioned tables and their partition keys
CREATE FUNCTION almanac_coordinator._core_tables(OUT table_name text, OUT key_column text)
	RETURNS SETOF record
	LANGUAGE sql IMMUTABLE AS
$$
	VALUES ('chains', 'chain_id'), ('blocks', 'chain_id'), ('transactions', 'chain_id'),
		   ('events', 'chain_id'), ('account_states', 'chain_id'),
		   ('cross_chain_messages', 'source_chain_id'), ('orphaned_blocks', 'chain_id')
$$;

-- Calls on one node by its connect string, for add_node and register_chain.
-- PL/Proxy runs each in its own transaction on the node (autocommit).
CREATE FUNCTION almanac_coordinator._node_join(conninfo text, node_id integer) RETURNS integer
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT almanac.join_coordinator($2);
$$;
CREATE FUNCTION almanac_coordinator._node_register(conninfo text, chain_id text, evm_chain_id bigint, name text)
	RETURNS text
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT r.chain_id FROM almanac.register_chain($2, $3, $4) r;
$$;
-- the chains of a node, as the node sees them (check_placement)
CREATE FUNCTION almanac_coordinator._node_chains(conninfo text) RETURNS SETOF text
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT c.chain_id FROM almanac.chains c;
$$;

-- Make the database the coordinator lives in plan for its partitions:
-- aggregates and joins per node (pushed down whole by postgres_fdw), for the
-- sessions that start after this.
DO $$
BEGIN
	EXECUTE format('ALTER DATABASE %I SET enable_partitionwise_aggregate = on', current_database());
	EXECUTE format('ALTER DATABASE %I SET enable_partitionwise_join = on', current_database());
END;
$$;

-- Set the partition bounds of a node's partitions to the chains placed on it.
-- DETACH and ATTACH take an ACCESS EXCLUSIVE lock on each parent: a
-- registration waits for the reads in flight and makes new ones wait.
CREATE FUNCTION almanac_coordinator._bind_partitions(p_node integer) RETURNS void
	LANGUAGE plpgsql AS
$$
DECLARE
	n		almanac_coordinator.nodes;
	v_list	text;
	t		record;
BEGIN
	SELECT * INTO STRICT n FROM almanac_coordinator.nodes WHERE node_id = p_node;
	SELECT string_agg(quote_literal(v), ', ' ORDER BY v) INTO v_list
	  FROM (SELECT format(' node %s', p_node) AS v
			UNION ALL
			SELECT chain_id FROM almanac_coordinator.placement WHERE node_id = p_node) x;
	FOR t IN SELECT * FROM almanac_coordinator._core_tables() LOOP
		IF EXISTS (SELECT FROM pg_inherits
					WHERE inhrelid = format('almanac_coordinator.%I', t.table_name || '_' || n.node_name)::regclass) THEN
			EXECUTE format('ALTER TABLE almanac_coordinator.%I DETACH PARTITION almanac_coordinator.%I',
						   t.table_name, t.table_name || '_' || n.node_name);
		END IF;
		EXECUTE format('ALTER TABLE almanac_coordinator.%I ATTACH PARTITION almanac_coordinator.%I FOR VALUES IN (%s)',
					   t.table_name, t.table_name || '_' || n.node_name, v_list);
	END LOOP;
END;
$$;

-- Add an empty almanac database as a node: its foreign server (asynchronous
-- scans; not updatable, not truncatable: writes go through almanac's
-- functions only), a user mapping for PUBLIC, one foreign partition per core
-- table, and the node told its id (almanac.join_coordinator: ids in the
-- node's range, chains only by registration).  Scans and calls reach the node
-- as user_name, by default the role that runs add_node (neither PL/Proxy's
-- CONNECT nor postgres_fdw would otherwise name one, and libpq would take the
-- server's operating-system account).  Returns the node id.
CREATE FUNCTION almanac_coordinator.add_node(node_name text, host text, port integer, dbname text,
											  user_name text DEFAULT NULL)
	RETURNS integer
	LANGUAGE plpgsql AS
$$
DECLARE
	v_id		integer;
	v_server	name;
	v_conninfo	text;
	t			record;
BEGIN
	IF node_name IS NULL OR node_name !~ '^[a-z][a-z0-9_]{0,39}$' THEN
		RAISE EXCEPTION 'invalid node name %', coalesce(quote_literal(node_name), 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A node name is 1 to 40 lowercase letters, digits or _, starting with a letter.';
	END IF;
	IF host IS NULL OR port IS NULL OR dbname IS NULL THEN
		RAISE EXCEPTION 'node "%": host, port and dbname must not be NULL', node_name
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	LOCK TABLE almanac_coordinator.nodes IN EXCLUSIVE MODE;
	IF EXISTS (SELECT FROM almanac_coordinator.nodes n WHERE n.node_name = add_node.node_name) THEN
		RAISE EXCEPTION 'node "%" exists already', node_name USING ERRCODE = 'duplicate_object';
	END IF;
	IF EXISTS (SELECT FROM almanac_coordinator.nodes n
				WHERE n.host = add_node.host AND n.port = add_node.port AND n.dbname = add_node.dbname) THEN
		RAISE EXCEPTION 'database % on %:% is a node already: node "%"', dbname, host, port,
			(SELECT n.node_name FROM almanac_coordinator.nodes n
			  WHERE n.host = add_node.host AND n.port = add_node.port AND n.dbname = add_node.dbname)
			USING ERRCODE = 'duplicate_object';
	END IF;
	SELECT coalesce(max(n.node_id), 0) + 1 INTO v_id FROM almanac_coordinator.nodes n;
	v_server := 'almanac_node_' || node_name;
	user_name := coalesce(user_name, current_user);
	v_conninfo := format('host=%s port=%s dbname=%s user=%s', quote_literal(host), port,
						 quote_literal(dbname), quote_literal(user_name));

	-- cursor_tuple_fraction = 1 on the node's sessions: postgres_fdw reads
	-- through a cursor, which the node otherwise plans for its first tenth
	-- of rows (a pushed-down aggregate became a GroupAggregate over an
	-- index scan, five times the time of a HashAggregate over a seq scan),
	-- while postgres_fdw always fetches every row
	EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L, '
				   'options ''-c cursor_tuple_fraction=1'', '
				   'async_capable ''true'', updatable ''false'', truncatable ''false'', fetch_size ''10000'')',
				   v_server, host, port::text, dbname);
	EXECUTE format('CREATE USER MAPPING FOR PUBLIC SERVER %I OPTIONS (user %L)', v_server, user_name);
	FOR t IN SELECT * FROM almanac_coordinator._core_tables() LOOP
		EXECUTE format('CREATE FOREIGN TABLE almanac_coordinator.%I PARTITION OF almanac_coordinator.%I '
					   'FOR VALUES IN (%L) SERVER %I OPTIONS (schema_name ''almanac'', table_name %L)',
					   t.table_name || '_' || node_name, t.table_name, format(' node %s', v_id),
					   v_server, t.table_name);
	END LOOP;

	PERFORM set_config('almanac_coordinator.registry_write', 'on', true);
	INSERT INTO almanac_coordinator.nodes (node_id, node_name, host, port, dbname, user_name, conninfo, fdw_server)
	VALUES (v_id, node_name, host, port, dbname, user_name, v_conninfo, v_server);
	PERFORM set_config('almanac_coordinator.registry_write', 'off', true);

	-- last: a node that refuses (not almanac, holds chains) undoes the above
	PERFORM almanac_coordinator._node_join(v_conninfo, v_id);
	RETURN v_id;
END;
$$;
COMMENT ON FUNCTION almanac_coordinator.add_node(text, text, integer, text, text) IS 'add an empty almanac database as a node; returns its node id';

-- The node of that name; 42704 naming it when there is none.
CREATE FUNCTION almanac_coordinator._node_named(node text) RETURNS almanac_coordinator.nodes
	LANGUAGE plpgsql STABLE AS
$$
DECLARE
	n	almanac_coordinator.nodes;
BEGIN
	SELECT * INTO n FROM almanac_coordinator.nodes x WHERE x.node_name = _node_named.node;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown node "%"', node
			USING ERRCODE = 'undefined_object',
				  HINT = 'Nodes are added with almanac_coordinator.add_node.';
	END IF;
	RETURN n;
END;
$$;

-- Place a chain on a node and register it there.  The EVM chain id is
-- required: it is unique across the nodes only if the coordinator knows it.
CREATE FUNCTION almanac_coordinator.register_chain(chain_id text, evm_chain_id bigint, node text,
													name text DEFAULT NULL)
	RETURNS almanac_coordinator.placement
	LANGUAGE plpgsql AS
$$
DECLARE
	n	almanac_coordinator.nodes;
	p	almanac_coordinator.placement;
BEGIN
	IF chain_id IS NULL OR evm_chain_id IS NULL OR node IS NULL THEN
		RAISE EXCEPTION 'chain_id, evm_chain_id and node must not be NULL'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	n := almanac_coordinator._node_named(node);
	LOCK TABLE almanac_coordinator.placement IN EXCLUSIVE MODE;
	SELECT * INTO p FROM almanac_coordinator.placement x WHERE x.chain_id = register_chain.chain_id;
	IF FOUND THEN
		IF p.node_id = n.node_id AND p.evm_chain_id = register_chain.evm_chain_id THEN
			-- repeated: make sure the node has it too
			PERFORM almanac_coordinator._node_register(n.conninfo, chain_id, evm_chain_id, name);
			RETURN p;
		END IF;
		RAISE EXCEPTION 'chain "%" is placed already: on node "%" with EVM chain id %', chain_id,
			(SELECT x.node_name FROM almanac_coordinator.nodes x WHERE x.node_id = p.node_id), p.evm_chain_id
			USING ERRCODE = 'unique_violation';
	END IF;
	SELECT * INTO p FROM almanac_coordinator.placement x WHERE x.evm_chain_id = register_chain.evm_chain_id;
	IF FOUND THEN
		RAISE EXCEPTION 'EVM chain id % belongs to chain "%"', evm_chain_id, p.chain_id
			USING ERRCODE = 'unique_violation';
	END IF;

	PERFORM set_config('almanac_coordinator.registry_write', 'on', true);
	INSERT INTO almanac_coordinator.placement (chain_id, evm_chain_id, node_id)
	VALUES (chain_id, evm_chain_id, n.node_id)
	RETURNING * INTO p;
	PERFORM set_config('almanac_coordinator.registry_write', 'off', true);
	PERFORM almanac_coordinator._bind_partitions(n.node_id);
	-- last: when the node refuses, the placement is rolled back.  Not atomic
	-- the other way: a failure after this call leaves the chain registered
	-- on the node only, and registering it again completes it.
	PERFORM almanac_coordinator._node_register(n.conninfo, chain_id, evm_chain_id, name);
	RETURN p;
END;
$$;
COMMENT ON FUNCTION almanac_coordinator.register_chain(text, bigint, text, text) IS 'place a chain on a node and register it there';

-- A chain as a node holds it, for move_chain_finish to compare source and
-- target: its head and the number of its rows in each core table.  NULL when
-- the node does not hold the chain (one row always: PL/Proxy raises P0002
-- for none).  Counts scan the chain's rows: a move
-- copies them all anyway.
CREATE FUNCTION almanac_coordinator._node_chain_digest(conninfo text, chain_id text) RETURNS text
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT (SELECT format('head %s/%s/%s, blocks %s, transactions %s, events %s, account_states %s, orphaned_blocks %s, cross_chain_messages %s',
				  c.latest_block, c.safe_block, c.finalized_block,
				  (SELECT count(*) FROM almanac.blocks x WHERE x.chain_id = $2),
				  (SELECT count(*) FROM almanac.transactions x WHERE x.chain_id = $2),
				  (SELECT count(*) FROM almanac.events x WHERE x.chain_id = $2),
				  (SELECT count(*) FROM almanac.account_states x WHERE x.chain_id = $2),
				  (SELECT count(*) FROM almanac.orphaned_blocks x WHERE x.chain_id = $2),
				  (SELECT count(*) FROM almanac.cross_chain_messages x WHERE x.source_chain_id = $2))
	  FROM almanac.chains c WHERE c.chain_id = $2);
$$;

-- The node-side steps of move_chain_begin (src/sql/60_node.sql), each a
-- call on one node by its connect string: (name, arguments after conninfo,
-- the node's function).
DO $$
DECLARE
	f record;
BEGIN
	FOR f IN
		VALUES ('_node_move_publish', 'chain_id text, publication name', 'almanac._move_publish($2, $3)'),
			   ('_node_move_create_slot', 'slot name', 'almanac._move_create_slot($2)'),
			   ('_node_move_unpublish', 'publication name', 'almanac._move_unpublish($2)'),
			   ('_node_move_subscribe', 'chain_id text, subscription name, source_conninfo text',
				'almanac._move_subscribe($2, $3, $4)')
	LOOP
		EXECUTE format('CREATE FUNCTION almanac_coordinator.%I(conninfo text, %s) RETURNS name LANGUAGE plproxy AS %L',
					   f.column1, f.column2, format('CONNECT conninfo; SELECT %s;', f.column3));
	END LOOP;
END;
$$;

-- On the target, giving a move up: the subscription stopped and dropped
-- without its slot, and the chain's copied rows deleted; false (nothing
-- done) when there is no such subscription.
CREATE FUNCTION almanac_coordinator._node_move_unsubscribe(conninfo text, chain_id text, subscription name)
	RETURNS boolean
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT almanac._move_unsubscribe($2, $3);
$$;
-- whether a node has a replication slot of that name
CREATE FUNCTION almanac_coordinator._node_has_slot(conninfo text, slot name) RETURNS boolean
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT EXISTS (SELECT FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $2);
$$;
CREATE FUNCTION almanac_coordinator._node_move_check_target(conninfo text, chain_id text, subscription name)
	RETURNS boolean
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT almanac._move_check_target($2, $3);
$$;
CREATE FUNCTION almanac_coordinator._node_move_unplace(conninfo text, chain_id text) RETURNS text
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT almanac._move_unplace($2);
$$;

-- The target node of a move (move_chain_begin, move_chain_finish): 22004
-- for a NULL argument, 42704 for an unknown node.
CREATE FUNCTION almanac_coordinator._move_target(chain_id text, target_node text) RETURNS almanac_coordinator.nodes
	LANGUAGE plpgsql AS
$$
BEGIN
	IF chain_id IS NULL OR target_node IS NULL THEN
		RAISE EXCEPTION 'chain_id and target_node must not be NULL'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	RETURN almanac_coordinator._node_named(target_node);
END;
$$;

-- Start moving a chain to another node (docs/scale-out.md, "Moving a
-- chain", steps 1 and 2): on the chain's node, replica identities covering
-- chain_id, a publication of the chain's rows and a logical replication
-- slot; on the target, the chain placed there and a subscription that
-- copies the rows and then follows the source's changes.  The
-- publication, slot and subscription are all named almanac_move_ and 16
-- hex digits of the chain id's md5, returned.  The target connects to the
-- source with the source's connect string from the registry.  Each node
-- step commits on its node (each is a no-op when repeated, so a failed call
-- is completed by calling again); the placement does not change: reads and
-- writes stay on the source until move_chain_finish.  With copy => false,
-- only the move is recorded (the operator copies the chain by hand: the
-- target must not hold it yet) and NULL is returned.
CREATE FUNCTION almanac_coordinator.move_chain_begin(chain_id text, target_node text, copy boolean DEFAULT true)
	RETURNS name
	LANGUAGE plpgsql AS
$$
DECLARE
	n		almanac_coordinator.nodes;
	src		almanac_coordinator.nodes;
	p		almanac_coordinator.placement;
	v_name	name;
	v_subscribed boolean;
BEGIN
	n := almanac_coordinator._move_target(chain_id, target_node);
	src := almanac_coordinator._chain_node(chain_id);
	IF src.node_id = n.node_id THEN
		RAISE EXCEPTION 'chain "%" is on node "%" already', chain_id, target_node
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Name another node as the target: almanac_coordinator.placement shows where each chain is.';
	END IF;
	-- one move of a chain at a time: a second target would take a second
	-- subscription on the same slot.  The row lock orders concurrent calls.
	SELECT * INTO STRICT p FROM almanac_coordinator.placement x WHERE x.chain_id = move_chain_begin.chain_id FOR UPDATE;
	IF p.moving_to IS DISTINCT FROM n.node_id AND p.moving_to IS NOT NULL THEN
		RAISE EXCEPTION 'chain "%" is being moved to node "%" already', chain_id,
			(SELECT x.node_name FROM almanac_coordinator.nodes x WHERE x.node_id = p.moving_to)
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Finish that move with almanac_coordinator.move_chain_finish, or undo it (docs/scale-out.md, "If it stops halfway") and call almanac_coordinator.move_chain_abandon.';
	END IF;
	IF copy IS NULL THEN
		RAISE EXCEPTION 'copy must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	v_name := 'almanac_move_' || left(md5(chain_id), 16);
	IF NOT copy THEN
		IF p.moving_to IS NULL THEN
			-- 55000 when the target holds the chain already
			PERFORM almanac_coordinator._node_move_check_target(n.conninfo, chain_id, v_name);
		END IF;
		PERFORM set_config('almanac_coordinator.registry_write', 'on', true);
		UPDATE almanac_coordinator.placement x SET moving_to = n.node_id WHERE x.chain_id = move_chain_begin.chain_id;
		PERFORM set_config('almanac_coordinator.registry_write', 'off', true);
		RETURN NULL;
	END IF;
	PERFORM set_config('almanac_coordinator.registry_write', 'on', true);
	UPDATE almanac_coordinator.placement x SET moving_to = n.node_id WHERE x.chain_id = move_chain_begin.chain_id;
	PERFORM set_config('almanac_coordinator.registry_write', 'off', true);
	-- the target first: a target that cannot take the chain leaves nothing
	-- behind on the source
	v_subscribed := almanac_coordinator._node_move_check_target(n.conninfo, chain_id, v_name);
	-- a subscription whose slot is gone (dropped by hand) would stream from
	-- a new slot made now, missing every change in between
	IF v_subscribed AND NOT almanac_coordinator._node_has_slot(src.conninfo, v_name) THEN
		RAISE EXCEPTION 'the subscription % of the move of chain "%" exists on node "%", but its slot is gone from node "%"',
			v_name, chain_id, n.node_name, src.node_name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Its copy misses the changes since the slot was dropped: give the move up with almanac_coordinator.move_chain_abandon and begin it again.';
	END IF;
	PERFORM almanac_coordinator._node_move_publish(src.conninfo, chain_id, v_name);
	PERFORM almanac_coordinator._node_move_create_slot(src.conninfo, v_name);
	BEGIN
		PERFORM almanac_coordinator._node_move_subscribe(n.conninfo, chain_id, v_name, src.conninfo);
	EXCEPTION WHEN OTHERS THEN
		-- The call may have failed after the target committed the
		-- subscription (its reply lost): ask the target again before
		-- dropping anything that subscription streams from.  A target that
		-- cannot be asked keeps them: a slot dropped under a live
		-- subscription loses changes.
		BEGIN
			v_subscribed := almanac_coordinator._node_move_check_target(n.conninfo, chain_id, v_name);
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'node "%" could not be asked whether it has the subscription %: its publication and slot are kept on node "%": %',
				n.node_name, v_name, src.node_name, SQLERRM
				USING HINT = 'Call almanac_coordinator.move_chain_begin again once the node answers, or give the move up with almanac_coordinator.move_chain_abandon.';
			v_subscribed := NULL;
		END;
		IF v_subscribed THEN
			RETURN v_name;	-- made there: only the reply was lost
		END IF;
		-- no subscription uses the slot and the publication (no other move
		-- of the chain may start): drop them, as they pin the source's WAL
		IF v_subscribed IS NOT NULL THEN
			BEGIN
				PERFORM almanac_coordinator._node_move_unpublish(src.conninfo, v_name);
			EXCEPTION WHEN OTHERS THEN
				RAISE WARNING 'the publication and slot % were left on node "%": %', v_name, src.node_name, SQLERRM
					USING HINT = format('Drop them there: SELECT pg_drop_replication_slot(%L); DROP PUBLICATION %I;',
										v_name, v_name);
			END;
		END IF;
		RAISE;
	END;
	RETURN v_name;
END;
$$;
COMMENT ON FUNCTION almanac_coordinator.move_chain_begin(text, text, boolean) IS 'start copying a chain to another node: publication and slot on its node, subscription on the target (with copy => false, only record the move)';

-- Fence (or, with false, open again) the dispatched writes of a chain being
-- moved, so that the target can catch up before move_chain_finish, which
-- lifts it.  Takes the placement in ACCESS EXCLUSIVE mode: the dispatched
-- calls in flight finish first, and every later write of the chain is
-- refused with 55000 (reads go on).  Writers connected to the node directly
-- are not fenced.
CREATE FUNCTION almanac_coordinator.move_chain_fence(chain_id text, fenced boolean DEFAULT true) RETURNS void
	LANGUAGE plpgsql AS
$$
BEGIN
	IF chain_id IS NULL OR fenced IS NULL THEN
		RAISE EXCEPTION 'chain_id and fenced must not be NULL'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	LOCK TABLE almanac_coordinator.placement IN ACCESS EXCLUSIVE MODE;
	PERFORM almanac_coordinator._chain_node(chain_id);
	PERFORM set_config('almanac_coordinator.registry_write', 'on', true);
	UPDATE almanac_coordinator.placement x SET writes_fenced = move_chain_fence.fenced
	 WHERE x.chain_id = move_chain_fence.chain_id;
	PERFORM set_config('almanac_coordinator.registry_write', 'off', true);
END;
$$;
COMMENT ON FUNCTION almanac_coordinator.move_chain_fence(text, boolean) IS 'refuse (or, with false, allow again) the dispatched writes of a chain being moved';

-- The placement flip of a chain moved to another node (docs/scale-out.md,
-- "Moving a chain"): the chain's rows must already be on the target node
-- (copied there by logical replication) and its writers stopped.  Takes the
-- placement in ACCESS EXCLUSIVE mode, so it waits for the dispatched calls in
-- flight (each holds its lookup of the placement until its transaction ends)
-- and makes new ones wait until it commits; then points the chain at the
-- target and rebinds both nodes' partitions.  Changes no node: the procedure
-- removes the chain from the source node afterwards.
CREATE FUNCTION almanac_coordinator.move_chain_finish(chain_id text, target_node text)
	RETURNS almanac_coordinator.placement
	LANGUAGE plpgsql AS
$$
DECLARE
	n			almanac_coordinator.nodes;
	src			almanac_coordinator.nodes;
	p			almanac_coordinator.placement;
	v_source	text;
	v_target	text;
BEGIN
	n := almanac_coordinator._move_target(chain_id, target_node);
	LOCK TABLE almanac_coordinator.placement IN ACCESS EXCLUSIVE MODE;
	SELECT * INTO p FROM almanac_coordinator.placement x WHERE x.chain_id = move_chain_finish.chain_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown chain "%"', chain_id
			USING ERRCODE = 'undefined_object',
				  HINT = 'Chains are placed on a node with almanac_coordinator.register_chain; almanac_coordinator.placement lists them.';
	END IF;
	IF p.node_id = n.node_id THEN
		RETURN p;	-- repeated after success: nothing to do
	END IF;
	-- only a move that was begun: a flip nobody prepared (a mistyped chain
	-- or node) would point readers at a node that was never meant to serve it
	IF p.moving_to IS NULL THEN
		RAISE EXCEPTION 'chain "%" has no move recorded: it is not being moved to node "%"', chain_id, target_node
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = format('Begin the move with almanac_coordinator.move_chain_begin(%L, %L) (for a copy made by hand, with copy => false) before the flip.',
								chain_id, target_node);
	ELSIF p.moving_to <> n.node_id THEN
		RAISE EXCEPTION 'chain "%" is being moved to node "%", not to node "%"', chain_id,
			(SELECT x.node_name FROM almanac_coordinator.nodes x WHERE x.node_id = p.moving_to), target_node
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Finish that move with almanac_coordinator.move_chain_finish naming its target, or give it up with almanac_coordinator.move_chain_abandon.';
	END IF;
	-- the target must hold the chain as the source does: a flip to a node
	-- still copying would hide the rows it lacks from every reader
	v_target := almanac_coordinator._node_chain_digest(n.conninfo, chain_id);
	IF v_target IS NULL THEN
		RAISE EXCEPTION 'node "%" does not hold chain "%"', target_node, chain_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Copy the chain there first with a publication and a subscription (docs/scale-out.md, "Moving a chain").';
	END IF;
	SELECT * INTO src FROM almanac_coordinator.nodes x WHERE x.node_id = p.node_id;
	v_source := almanac_coordinator._node_chain_digest(src.conninfo, chain_id);
	IF v_source IS DISTINCT FROM v_target THEN
		RAISE EXCEPTION 'node "%" does not hold chain "%" as node "%" does', target_node, chain_id, src.node_name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('Node "%s": %s; node "%s": %s.', src.node_name, coalesce(v_source, 'no such chain'),
								  target_node, v_target),
				  HINT = 'Stop the chain''s writers and wait until the subscription has caught up.';
	END IF;

	PERFORM set_config('almanac_coordinator.registry_write', 'on', true);
	UPDATE almanac_coordinator.placement x SET node_id = n.node_id, writes_fenced = false, moving_to = NULL
	 WHERE x.chain_id = move_chain_finish.chain_id;
	PERFORM set_config('almanac_coordinator.registry_write', 'off', true);
	PERFORM almanac_coordinator._bind_partitions(p.node_id);
	PERFORM almanac_coordinator._bind_partitions(n.node_id);
	-- last, committed on the source before the flip commits here: the
	-- source refuses the chain's writes (40001), also those of a REPEATABLE
	-- READ transaction whose snapshot still shows the old placement.  Should
	-- the flip fail after this, the chain's writes are refused until
	-- move_chain_finish is run again.
	PERFORM almanac_coordinator._node_move_unplace(src.conninfo, chain_id);
	SELECT * INTO p FROM almanac_coordinator.placement x WHERE x.chain_id = move_chain_finish.chain_id;
	RETURN p;
END;
$$;
COMMENT ON FUNCTION almanac_coordinator.move_chain_finish(text, text) IS 'point a chain copied to another node at that node (the placement flip of a move)';

-- Give up a move that move_chain_begin started (docs/scale-out.md, "If it
-- stops halfway"): the subscription it made on the target is stopped and
-- dropped and the chain's copied rows deleted there, then its slot and
-- publication are dropped on the source (in that order: a slot dropped
-- under a live subscription would lose changes), and the chain is no
-- longer being moved nor its writes fenced.  A move copied by hand (no
-- such subscription) is undone by hand first: refused (55000) while the
-- target still holds the chain.  Each node step commits there and is a
-- no-op when repeated.  A no-op for a chain not being moved.
CREATE FUNCTION almanac_coordinator.move_chain_abandon(chain_id text) RETURNS almanac_coordinator.placement
	LANGUAGE plpgsql AS
$$
DECLARE
	p		almanac_coordinator.placement;
	n		almanac_coordinator.nodes;
	src		almanac_coordinator.nodes;
	v_name	name;
BEGIN
	IF chain_id IS NULL THEN
		RAISE EXCEPTION 'chain_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	src := almanac_coordinator._chain_node(chain_id);
	SELECT * INTO STRICT p FROM almanac_coordinator.placement x WHERE x.chain_id = move_chain_abandon.chain_id FOR UPDATE;
	IF p.moving_to IS NULL THEN
		RETURN p;
	END IF;
	SELECT * INTO STRICT n FROM almanac_coordinator.nodes x WHERE x.node_id = p.moving_to;
	v_name := 'almanac_move_' || left(md5(chain_id), 16);
	PERFORM almanac_coordinator._node_move_unsubscribe(n.conninfo, chain_id, v_name);
	IF almanac_coordinator._node_chain_digest(n.conninfo, chain_id) IS NOT NULL THEN
		RAISE EXCEPTION 'node "%" still holds chain "%"', n.node_name, chain_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Drop the subscription there and delete the chain there first (docs/scale-out.md, "If it stops halfway").';
	END IF;
	PERFORM almanac_coordinator._node_move_unpublish(src.conninfo, v_name);
	PERFORM set_config('almanac_coordinator.registry_write', 'on', true);
	UPDATE almanac_coordinator.placement x SET moving_to = NULL, writes_fenced = false
	 WHERE x.chain_id = move_chain_abandon.chain_id
	RETURNING * INTO p;
	PERFORM set_config('almanac_coordinator.registry_write', 'off', true);
	RETURN p;
END;
$$;
COMMENT ON FUNCTION almanac_coordinator.move_chain_abandon(text) IS 'give up a move: its subscription, copied rows, slot and publication dropped, the chain no longer being moved, its writes no longer fenced';

-- Chains whose placement and nodes disagree: placed but missing on its node,
-- or present on a node it is not placed on (rows an unfiltered scan would
-- show twice or from the wrong node).  Empty when all is well.
CREATE FUNCTION almanac_coordinator.check_placement()
	RETURNS TABLE (chain_id text, node text, problem text)
	LANGUAGE sql AS
$$
	WITH seen AS (
		SELECT n.node_id, n.node_name, c AS chain_id
		  FROM almanac_coordinator.nodes n, almanac_coordinator._node_chains(n.conninfo) c
	)
	SELECT p.chain_id, n.node_name, 'placed on this node, missing there'
	  FROM almanac_coordinator.placement p JOIN almanac_coordinator.nodes n USING (node_id)
	 WHERE NOT EXISTS (SELECT FROM seen s WHERE s.node_id = p.node_id AND s.chain_id = p.chain_id)
	UNION ALL
	SELECT s.chain_id, s.node_name, 'present on this node, placed ' ||
		   coalesce('on node ' || (SELECT x.node_name FROM almanac_coordinator.nodes x
									 JOIN almanac_coordinator.placement y USING (node_id)
									WHERE y.chain_id = s.chain_id), 'nowhere')
	  FROM seen s
	 WHERE NOT EXISTS (SELECT FROM almanac_coordinator.placement p
						WHERE p.node_id = s.node_id AND p.chain_id = s.chain_id)
	 ORDER BY 1, 2
$$;
COMMENT ON FUNCTION almanac_coordinator.check_placement() IS 'chains on which the placement and the nodes disagree; empty when all is well';

-- The node of a chain; 42704 when the chain is placed nowhere.  VOLATILE,
-- so that its lookup takes its snapshot after its lock on the placement: a
-- call that waited for a placement flip (move_chain_finish) reads the new
-- placement, where a STABLE function would read the caller's snapshot,
-- taken before the wait, and go to the old node.
-- With for_write, 55000 when the chain's writes are fenced for a move
-- (move_chain_fence).
CREATE FUNCTION almanac_coordinator._chain_node(chain_id text, for_write boolean DEFAULT false)
	RETURNS almanac_coordinator.nodes
	LANGUAGE plpgsql VOLATILE AS
$$
DECLARE
	r record;
BEGIN
	IF chain_id IS NULL THEN
		RAISE EXCEPTION 'chain_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT x AS node, p.writes_fenced AS fenced INTO r
	  FROM almanac_coordinator.placement p JOIN almanac_coordinator.nodes x USING (node_id)
	 WHERE p.chain_id = _chain_node.chain_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown chain "%"', chain_id
			USING ERRCODE = 'undefined_object',
				  HINT = 'Chains are placed on a node with almanac_coordinator.register_chain before their first ingest.';
	END IF;
	IF for_write AND r.fenced THEN
		RAISE EXCEPTION 'chain "%" is being moved from node "%": its writes are fenced', chain_id, (r.node).node_name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Retry after almanac_coordinator.move_chain_finish, or lift the fence with almanac_coordinator.move_chain_fence(chain_id, false).';
	END IF;
	RETURN r.node;
END;
$$;

-- The connect string of a chain's node: how every dispatched function finds
-- its node, a local lookup before the one round trip to the node.  Neither
-- SECURITY DEFINER (its GUC save and restore showed in perf) nor a SQL
-- lookup (not inlined, for its sub-select, so planned on every call: 1.6k
-- lookups/s against 4k); callers read the registry, which holds no password.
-- Inlined into PL/Proxy's CONNECT query (VOLATILE like _chain_node: a
-- STABLE wrapper of a VOLATILE call is not inlined).
CREATE FUNCTION almanac_coordinator._chain_conninfo(chain_id text) RETURNS text
	LANGUAGE sql VOLATILE AS
$$
	SELECT (almanac_coordinator._chain_node(chain_id)).conninfo
$$;
-- the same for the dispatched writes: refused while fenced
CREATE FUNCTION almanac_coordinator._chain_writer_conninfo(chain_id text) RETURNS text
	LANGUAGE sql VOLATILE AS
$$
	SELECT (almanac_coordinator._chain_node(chain_id, true)).conninfo
$$;

-- Dispatched functions: almanac's signatures, run by almanac on the chain's
-- node, its answer and its errors (SQLSTATE, message, detail, hint) passed
-- back.  Each call is its own transaction on the node: a rollback here does
-- not undo it.

-- (name, arguments, result): each runs almanac.<name> with the same arguments
DO $$
DECLARE
	f record;
BEGIN
	FOR f IN
		VALUES ('ingest_blocks', 'chain_id text, blocks jsonb, receipts jsonb', 'bigint', true),
			   ('set_safe', 'chain_id text, block_number bigint', 'bigint', true),
			   ('set_finalized', 'chain_id text, block_number bigint', 'bigint', true),
			   ('latest_block', 'chain_id text', 'almanac_coordinator.blocks', false),
			   ('contract_events', 'chain_id text, contract_address text, topic0 text DEFAULT NULL, '
				'from_block bigint DEFAULT 0, to_block bigint DEFAULT NULL, topic1 text DEFAULT NULL, '
				'topic2 text DEFAULT NULL, topic3 text DEFAULT NULL', 'SETOF almanac_coordinator.events', false),
			   ('address_transactions', 'chain_id text, address text, from_block bigint DEFAULT 0, '
				'to_block bigint DEFAULT NULL', 'SETOF almanac_coordinator.transactions', false),
			   ('account_state_at', 'chain_id text, account text, block_number bigint', 'jsonb', false),
			   ('account_state', 'chain_id text, account text', 'jsonb', false)
	LOOP
		EXECUTE format('CREATE FUNCTION almanac_coordinator.%I(%s) RETURNS %s LANGUAGE plproxy AS %L',
					   f.column1, f.column2, f.column3,
					   format('CONNECT almanac_coordinator.%I(chain_id); TARGET almanac.%I;',
							  CASE WHEN f.column4 THEN '_chain_writer_conninfo' ELSE '_chain_conninfo' END, f.column1));
		EXECUTE format('COMMENT ON FUNCTION almanac_coordinator.%I IS %L', f.column1,
					   format('almanac.%s, run on the chain''s node', f.column1));
	END LOOP;
END;
$$;
CREATE FUNCTION almanac_coordinator.chain_head(chain_id text) RETURNS almanac_coordinator.chain_heads
	LANGUAGE plproxy AS
$$
	CONNECT almanac_coordinator._chain_conninfo(chain_id);
	SELECT h.chain_id, h.evm_chain_id, h.name, h.latest_block, h.safe_block, h.finalized_block
	  FROM almanac.chain_heads h WHERE h.chain_id = $1;
$$;

-- Cross-chain messages (docs/scale-out.md, "Cross-chain messages").  A
-- message lives on the node of its source chain and names its destination by
-- (chain, transaction hash).  A revert on the destination's node undelivers
-- the messages there; the coordinator's revert_to and ingest_block get the
-- reverted transactions' hashes back from the node and undeliver the
-- messages towards them on every other node, each node in its own
-- transaction: not atomic across nodes.  A node that cannot be reached is
-- named in a WARNING, and reconcile_messages repairs what it missed.


CREATE FUNCTION almanac_coordinator._node_revert_to(conninfo text, chain_id text, block_number bigint,
													 OUT reverted bigint, OUT tx_hashes text[])
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT r.reverted, r.tx_hashes FROM almanac._coordinator_revert_to($2, $3) r;
$$;
CREATE FUNCTION almanac_coordinator._node_ingest_block(conninfo text, chain_id text, block text, receipts text,
														on_reorg text, OUT block_id bigint, OUT tx_hashes text[])
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT r.block_id, r.tx_hashes FROM almanac._coordinator_ingest_block($2, $3::jsonb, $4::jsonb, $5) r;
$$;
CREATE FUNCTION almanac_coordinator._node_undeliver(conninfo text, chain_id text, tx_hashes text[]) RETURNS bigint
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT almanac.undeliver_messages($2, $3);
$$;

-- Undeliver the messages towards these reverted transactions of a chain on
-- every node but the chain's own (whose revert did it).  A node that fails
-- is named in a WARNING: the revert has committed on the chain's node, and
-- failing the call would tell its caller otherwise.  Returns how many
-- messages were made pending.
CREATE FUNCTION almanac_coordinator._undeliver_elsewhere(chain_id text, chain_node integer, tx_hashes text[])
	RETURNS bigint
	LANGUAGE plpgsql AS
$$
DECLARE
	n		almanac_coordinator.nodes;
	total	bigint := 0;
BEGIN
	IF cardinality(tx_hashes) = 0 THEN
		RETURN 0;
	END IF;
	FOR n IN SELECT * FROM almanac_coordinator.nodes x WHERE x.node_id <> chain_node ORDER BY x.node_id LOOP
		BEGIN
			total := total + almanac_coordinator._node_undeliver(n.conninfo, chain_id, tx_hashes);
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'the messages on node "%" towards the % reverted transaction(s) of chain "%" were not undelivered: %',
				n.node_name, cardinality(tx_hashes), chain_id, SQLERRM
				USING HINT = 'Run almanac_coordinator.reconcile_messages() once the node answers.';
		END;
	END LOOP;
	RETURN total;
END;
$$;

-- revert_to, both ingest_block and reconcile_messages are SECURITY DEFINER:
-- they call the internal _node_* functions, which take a connect string
-- and are not granted to anyone (a grantee could connect anywhere with the
-- server's ~/.pgpass), so a role granted these entry points needs no more.
-- Hence search_path pg_catalog, pg_temp and every name qualified.
CREATE FUNCTION almanac_coordinator.revert_to(chain_id text, block_number bigint) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	n almanac_coordinator.nodes;
	r record;
BEGIN
	n := almanac_coordinator._chain_node(chain_id, true);
	r := almanac_coordinator._node_revert_to(n.conninfo, chain_id, block_number);
	PERFORM almanac_coordinator._undeliver_elsewhere(chain_id, n.node_id, r.tx_hashes);
	RETURN r.reverted;
END;
$$;
COMMENT ON FUNCTION almanac_coordinator.revert_to(text, bigint) IS 'almanac.revert_to, run on the chain''s node; then the messages towards the reverted transactions are undelivered on the other nodes';

-- The JSON as text: a follower's JSON-RPC answer goes to the node as it
-- came and is parsed once, there, instead of into jsonb here and back out to
-- text for the wire.  An untyped literal or a text parameter chooses this
-- (PostgreSQL prefers text for an argument of unknown type); jsonb
-- arguments choose almanac's signature, below.  A reorg (on_reorg =>
-- 'revert') undelivers messages like revert_to.
CREATE FUNCTION almanac_coordinator.ingest_block(chain_id text, block text, receipts text,
												  on_reorg text DEFAULT 'error')
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	n almanac_coordinator.nodes;
	r record;
BEGIN
	n := almanac_coordinator._chain_node(chain_id, true);
	r := almanac_coordinator._node_ingest_block(n.conninfo, chain_id, block, receipts, on_reorg);
	PERFORM almanac_coordinator._undeliver_elsewhere(chain_id, n.node_id, r.tx_hashes);
	RETURN r.block_id;
END;
$$;
COMMENT ON FUNCTION almanac_coordinator.ingest_block(text, text, text, text) IS 'almanac.ingest_block with the JSON as text, run on the chain''s node';
-- SECURITY DEFINER too: a role granted only this version (docs/scale-out.md,
-- "Access") calls the text version as the owner
CREATE FUNCTION almanac_coordinator.ingest_block(chain_id text, block jsonb, receipts jsonb,
												  on_reorg text DEFAULT 'error')
	RETURNS bigint
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
	SELECT almanac_coordinator.ingest_block(chain_id, block::text, receipts::text, on_reorg)
$$;
COMMENT ON FUNCTION almanac_coordinator.ingest_block(text, jsonb, jsonb, text) IS 'almanac.ingest_block, run on the chain''s node';

-- Reconciliation: the messages of a node that name a destination
-- transaction, which of a chain's transactions its node holds, and the
-- repairs (src/sql/60_node.sql).
CREATE FUNCTION almanac_coordinator._node_messages(conninfo text, OUT id bigint, OUT destination_chain_id text,
												   OUT destination_tx_hash text, OUT status text)
	RETURNS SETOF record
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT m.id, m.destination_chain_id, m.destination_tx_hash, m.status FROM almanac._messages_with_destination() m;
$$;
CREATE FUNCTION almanac_coordinator._node_present_transactions(conninfo text, chain_id text, tx_hashes text[],
															   OUT tx_hash text, OUT "timestamp" timestamptz)
	RETURNS SETOF record
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT t.tx_hash, t.timestamp FROM almanac._present_transactions($2, $3) t;
$$;
CREATE FUNCTION almanac_coordinator._node_reverted_transactions(conninfo text, chain_id text, tx_hashes text[])
	RETURNS SETOF text
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT almanac._reverted_transactions($2, $3);
$$;
CREATE FUNCTION almanac_coordinator._node_set_delivered(conninfo text, ids bigint[], delivered_at timestamptz[])
	RETURNS bigint
	LANGUAGE plproxy AS
$$
	CONNECT conninfo;
	SELECT almanac._set_messages_delivered($2, $3);
$$;

-- Find (and with repair, the default, repair) the messages whose status and
-- destination disagree: delivered while their destination transaction was
-- reverted on its chain's node, in its orphaned blocks and not stored
-- again (a revert whose undelivery did not reach the message's node), or
-- pending while it is stored (the transaction came back in the new branch
-- of a reorg).  A delivered message whose destination is neither stored
-- nor reverted is left alone: its destination chain may not have been
-- ingested that far yet.  Messages without a destination
-- transaction and failed ones are not checked; a destination chain placed
-- nowhere is reported, not repaired.  Reads every node's messages that name
-- a destination, and asks each destination chain's node for those
-- transactions.  Not atomic: a message that changes between the check and
-- the repair is left alone by the repair (it checks the status again), a
-- revert in between is found by the next run.
CREATE FUNCTION almanac_coordinator.reconcile_messages(repair boolean DEFAULT true)
	RETURNS TABLE (node text, message_id bigint, destination_chain_id text, destination_tx_hash text,
				   problem text, repaired boolean)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	s		almanac_coordinator.nodes;
	d		record;
	dest	almanac_coordinator.nodes;
	f_ids		bigint[];
	f_hashes	text[];
	f_statuses	text[];
	f_at		timestamptz[];
	v_missing	text[];
	v_deliver	bigint[];
	v_at		timestamptz[];
	v_reverted	text[];
BEGIN
	FOR s IN SELECT * FROM almanac_coordinator.nodes ORDER BY node_id LOOP
		FOR d IN
			SELECT m.destination_chain_id AS chain, array_agg(m.id ORDER BY m.id) AS ids,
				   array_agg(m.destination_tx_hash ORDER BY m.id) AS hashes,
				   array_agg(m.status ORDER BY m.id) AS statuses
			  FROM almanac_coordinator._node_messages(s.conninfo) m
			 GROUP BY m.destination_chain_id
			 ORDER BY 1
		LOOP
			SELECT x.* INTO dest
			  FROM almanac_coordinator.placement p JOIN almanac_coordinator.nodes x USING (node_id)
			 WHERE p.chain_id = d.chain;
			IF NOT FOUND THEN
				RETURN QUERY
					SELECT s.node_name, m.id, d.chain, m.hash, 'destination chain placed nowhere', false
					  FROM unnest(d.ids, d.hashes) AS m(id, hash) ORDER BY m.id;
				CONTINUE;
			END IF;
			-- the delivered messages' hashes that were reverted there
			v_reverted := ARRAY(SELECT almanac_coordinator._node_reverted_transactions(dest.conninfo, d.chain,
								  ARRAY(SELECT m.hash FROM unnest(d.hashes, d.statuses) AS m(hash, status)
										 WHERE m.status = 'delivered')));
			-- the disagreements of this node's messages towards this chain
			SELECT array_agg(m.id ORDER BY m.id), array_agg(m.hash ORDER BY m.id),
				   array_agg(m.status ORDER BY m.id), array_agg(t.timestamp ORDER BY m.id)
			  INTO f_ids, f_hashes, f_statuses, f_at
			  FROM unnest(d.ids, d.hashes, d.statuses) AS m(id, hash, status)
			  LEFT JOIN almanac_coordinator._node_present_transactions(dest.conninfo, d.chain, d.hashes) t
				ON t.tx_hash = m.hash
			 WHERE CASE m.status WHEN 'delivered' THEN m.hash = ANY (v_reverted)
								 ELSE t.tx_hash IS NOT NULL END;
			CONTINUE WHEN f_ids IS NULL;
			IF repair THEN
				SELECT array_agg(f.hash) FILTER (WHERE f.status = 'delivered'),
					   array_agg(f.id) FILTER (WHERE f.status = 'pending'),
					   array_agg(f.at) FILTER (WHERE f.status = 'pending')
				  INTO v_missing, v_deliver, v_at
				  FROM unnest(f_ids, f_hashes, f_statuses, f_at) AS f(id, hash, status, at);
				-- every delivered message towards a reverted transaction disagrees
				IF v_missing IS NOT NULL THEN
					PERFORM almanac_coordinator._node_undeliver(s.conninfo, d.chain, v_missing);
				END IF;
				IF v_deliver IS NOT NULL THEN
					PERFORM almanac_coordinator._node_set_delivered(s.conninfo, v_deliver, v_at);
				END IF;
			END IF;
			RETURN QUERY
				SELECT s.node_name, f.id, d.chain, f.hash,
					   CASE f.status WHEN 'delivered' THEN 'delivered, destination transaction reverted'
									 ELSE 'pending, destination transaction present' END,
					   repair
				  FROM unnest(f_ids, f_hashes, f_statuses) AS f(id, hash, status) ORDER BY f.id;
		END LOOP;
	END LOOP;
END;
$$;
COMMENT ON FUNCTION almanac_coordinator.reconcile_messages(boolean) IS 'cross-chain messages whose status disagrees with their destination transaction''s existence, repaired unless repair => false';
CREATE FUNCTION almanac_coordinator.ingest_blocks(chain_id text, blocks text, receipts text) RETURNS bigint
	LANGUAGE plproxy AS
$$
	CONNECT almanac_coordinator._chain_writer_conninfo(chain_id);
	SELECT almanac.ingest_blocks($1, $2::jsonb, $3::jsonb);
$$;

-- Point lookups, answered on the node by its router from the RocksDB
-- mirrors (docs/router.md): no row is no row, not an error.
CREATE FUNCTION almanac_coordinator.block_at(chain_id text, block_number bigint)
	RETURNS SETOF almanac_coordinator.blocks
	LANGUAGE plproxy AS
$$
	CONNECT almanac_coordinator._chain_conninfo(chain_id);
	SELECT b.* FROM almanac.blocks b WHERE b.chain_id = $1 AND b.block_number = $2;
$$;
CREATE FUNCTION almanac_coordinator.block_by_hash(chain_id text, block_hash text)
	RETURNS SETOF almanac_coordinator.blocks
	LANGUAGE plproxy AS
$$
	CONNECT almanac_coordinator._chain_conninfo(chain_id);
	SELECT b.* FROM almanac.blocks b WHERE b.chain_id = $1 AND b.block_hash = lower($2);
$$;
CREATE FUNCTION almanac_coordinator.transaction_by_hash(chain_id text, tx_hash text)
	RETURNS SETOF almanac_coordinator.transactions
	LANGUAGE plproxy AS
$$
	CONNECT almanac_coordinator._chain_conninfo(chain_id);
	SELECT t.* FROM almanac.transactions t WHERE t.chain_id = $1 AND t.tx_hash = lower($2);
$$;

-- Nothing is open to PUBLIC but the registry (read) and the lookup of a
-- chain's node: the coordinator reaches every node as one role, so who may
-- read and write is decided here, by GRANTs (docs/scale-out.md, "Access").
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA almanac_coordinator FROM PUBLIC;
GRANT USAGE ON SCHEMA almanac_coordinator TO PUBLIC;
GRANT SELECT ON almanac_coordinator.nodes, almanac_coordinator.placement TO PUBLIC;

-- pg_dump keeps the registry (the servers, user mappings and foreign
-- partitions add_node created are not members of the extension, so they are
-- dumped as they are).  The restore loads it with
-- session_replication_role = replica, under which the guard does not fire
-- (docs/scale-out.md, "Backups").
SELECT pg_catalog.pg_extension_config_dump('almanac_coordinator.nodes', '');
SELECT pg_catalog.pg_extension_config_dump('almanac_coordinator.placement', '');
GRANT EXECUTE ON FUNCTION almanac_coordinator._chain_conninfo(text), almanac_coordinator._chain_writer_conninfo(text),
	almanac_coordinator._chain_node(text, boolean) TO PUBLIC;
