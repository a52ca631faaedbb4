-- The core chain schema.  Deviations from the design's column types, each for
-- a reason that bites at chain scale (docs/schema.md):
--   * ids are bigint identity, not serial: Ethereum alone has billions of logs;
--   * value is numeric(78,0): 2^256-1 has 78 digits and must round-trip exactly;
--   * timestamps are timestamptz;
--   * children carry their block's number beside block_id, so range queries
--     over block numbers need no join; a composite foreign key keeps the copy
--     equal to the block's.
-- Hashes and addresses are text, lowercase 0x hex as JSON-RPC returns them,
-- checked by constraints so a mixed-case or malformed value fails loudly
-- instead of silently missing in later lookups.

-- v ~ '^0x[0-9a-f]{2*nbytes}$', in C (src/ingest/ingest.c): these checks run on
-- every row of every writer, and a regular expression per value cost a
-- fifth of the time of a bulk insert into these tables.
CREATE FUNCTION almanac._is_hex_id(v text, nbytes integer) RETURNS boolean
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_is_hex_id_sql';
COMMENT ON FUNCTION almanac._is_hex_id(text, integer) IS 'true when v is "0x" and 2 * nbytes lowercase hex digits';

CREATE TABLE almanac.chains (
	chain_id		text PRIMARY KEY
		CONSTRAINT chains_chain_id_check
		CHECK (length(chain_id) BETWEEN 1 AND 64 AND chain_id !~ '[[:space:][:cntrl:]]'),
	evm_chain_id	bigint UNIQUE CHECK (evm_chain_id > 0),
	name			text,
	latest_block	bigint CHECK (latest_block >= 0),
	safe_block		bigint CHECK (safe_block >= 0),
	finalized_block bigint CHECK (finalized_block >= 0),
	created_at		timestamptz NOT NULL DEFAULT now(),
	-- finalized implies safe
	CONSTRAINT chains_finalized_not_above_safe
		CHECK (finalized_block IS NULL OR (safe_block IS NOT NULL AND finalized_block <= safe_block))
);
COMMENT ON TABLE almanac.chains IS 'one row per chain: its id, EVM chain id and latest, safe and finalized heads';

CREATE TABLE almanac.blocks (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	chain_id		text NOT NULL REFERENCES almanac.chains ON DELETE CASCADE,
	block_number	bigint NOT NULL CHECK (block_number >= 0),
	block_hash		text NOT NULL CHECK (almanac._is_hex_id(block_hash, 32)),
	parent_hash		text NOT NULL CHECK (almanac._is_hex_id(parent_hash, 32)),
	timestamp		timestamptz NOT NULL,
	is_finalized	boolean NOT NULL DEFAULT false,
	is_safe			boolean NOT NULL DEFAULT false,
	metadata		jsonb NOT NULL DEFAULT '{}',
	-- a block number is stored once per chain: lookups by number, latest block, ranges
	UNIQUE (chain_id, block_number),
	-- lookups by hash, and the parent-hash check of ingest
	UNIQUE (chain_id, block_hash),
	-- target of the children's composite foreign keys (keeps their copies exact)
	UNIQUE (id, chain_id, block_number),
	CONSTRAINT blocks_finalized_implies_safe CHECK (NOT is_finalized OR is_safe)
);
COMMENT ON TABLE almanac.blocks IS 'blocks of every chain; deleting one removes its transactions, events and state changes';
-- time-range queries ("blocks of the last hour")
CREATE INDEX blocks_chain_timestamp_idx ON almanac.blocks (chain_id, timestamp);

CREATE TABLE almanac.transactions (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	chain_id		text NOT NULL,
	block_id		bigint NOT NULL,
	block_number	bigint NOT NULL,
	tx_index		integer NOT NULL CHECK (tx_index >= 0),
	tx_hash			text NOT NULL CHECK (almanac._is_hex_id(tx_hash, 32)),
	tx_type			smallint CHECK (tx_type >= 0),
	from_address	text NOT NULL CHECK (almanac._is_hex_id(from_address, 20)),
	-- NULL for a contract creation
	to_address		text CHECK (almanac._is_hex_id(to_address, 20)),
	-- the address a contract creation deployed
	contract_address text CHECK (almanac._is_hex_id(contract_address, 20)),
	-- a uint256: numeric(78,0) alone would also take 2^256, which has 78 digits too
	value			numeric(78, 0) NOT NULL
		CHECK (value >= 0 AND value < 115792089237316195423570985008687907853269984665640564039457584007913129639936),
	nonce			bigint CHECK (nonce >= 0),
	data			bytea NOT NULL DEFAULT '\x',
	-- receipt status: 1 success, 0 failure; NULL when unknown
	status			smallint CHECK (status IN (0, 1)),
	gas_used		bigint CHECK (gas_used >= 0),
	timestamp		timestamptz NOT NULL,
	-- a transaction hash is stored once per chain
	UNIQUE (chain_id, tx_hash),
	-- a block's transactions in order; serves the cascade from blocks
	UNIQUE (block_id, tx_index),
	FOREIGN KEY (block_id, chain_id, block_number)
		REFERENCES almanac.blocks (id, chain_id, block_number) ON DELETE CASCADE
);
COMMENT ON TABLE almanac.transactions IS 'transactions with their receipt status and gas used';
-- "transactions sent by an address", newest first
CREATE INDEX transactions_from_idx ON almanac.transactions (chain_id, from_address, block_number);
-- "transactions received by an address", newest first
CREATE INDEX transactions_to_idx ON almanac.transactions (chain_id, to_address, block_number)
	WHERE to_address IS NOT NULL;

CREATE TABLE almanac.events (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	chain_id		text NOT NULL,
	block_id		bigint NOT NULL,
	block_number	bigint NOT NULL,
	transaction_id	bigint REFERENCES almanac.transactions ON DELETE CASCADE,
	log_index		integer NOT NULL CHECK (log_index >= 0),
	contract_address text NOT NULL CHECK (almanac._is_hex_id(contract_address, 20)),
	-- topic0, the event signature hash; see docs/schema.md for anonymous events
	event_type		text NOT NULL,
	topics			text[] NOT NULL DEFAULT '{}' CHECK (cardinality(topics) <= 4),
	data			bytea NOT NULL DEFAULT '\x',
	timestamp		timestamptz NOT NULL,
	-- natural key: loading a block twice can never duplicate its events;
	-- also serves "events of a block" and the cascade from blocks
	UNIQUE (block_id, log_index),
	FOREIGN KEY (block_id, chain_id, block_number)
		REFERENCES almanac.blocks (id, chain_id, block_number) ON DELETE CASCADE
);
COMMENT ON TABLE almanac.events IS 'logs emitted by transactions; event_type is topic0';
-- "events of a contract and type over a block range", newest first; unique
-- (chain_id, block_number, log_index already are, through blocks) as the key
-- of the events mirror (50_router.sql), whose heap lookups and fallback read it
CREATE UNIQUE INDEX events_contract_type_idx
	ON almanac.events (chain_id, contract_address, event_type, block_number, log_index);
-- "events with topic X in any position" (topics @> ARRAY[...])
CREATE INDEX events_topics_idx ON almanac.events USING gin (topics);
-- a transaction's logs, and the cascade from transactions
CREATE INDEX events_transaction_idx ON almanac.events (transaction_id);

CREATE TABLE almanac.account_states (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	chain_id		text NOT NULL,
	account			text NOT NULL CHECK (almanac._is_hex_id(account, 20)),
	block_number	bigint NOT NULL,
	state			jsonb NOT NULL,
	-- one state per account and block: "state at block N" and "state now" are
	-- one descending index probe
	UNIQUE (chain_id, account, block_number),
	-- a state change belongs to a stored block and goes with it on a revert
	FOREIGN KEY (chain_id, block_number)
		REFERENCES almanac.blocks (chain_id, block_number) ON DELETE CASCADE
);
COMMENT ON TABLE almanac.account_states IS 'account state history: the state of an account as of a block';
-- the cascade from blocks
CREATE INDEX account_states_block_idx ON almanac.account_states (chain_id, block_number);

-- A message is stored with its source transaction (on the node of its
-- source chain, behind a coordinator) and names its destination by chain and
-- transaction hash, which need not be here: behind a coordinator
-- (docs/scale-out.md) the destination chain may live on another node.
-- destination_transaction_id is the same transaction by id when it is here
-- (either may be given; a trigger fills and checks the other).
CREATE TABLE almanac.cross_chain_messages (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- the bridge or messaging protocol, and its own id for the message
	protocol		text,
	message_key		text,
	source_chain_id text NOT NULL REFERENCES almanac.chains ON DELETE CASCADE,
	source_transaction_id bigint NOT NULL REFERENCES almanac.transactions ON DELETE CASCADE,
	-- not a foreign key: the destination chain may live on another node
	destination_chain_id text NOT NULL
		CONSTRAINT cross_chain_messages_destination_chain_id_check
		CHECK (length(destination_chain_id) BETWEEN 1 AND 64 AND destination_chain_id !~ '[[:space:][:cntrl:]]'),
	-- the transaction that delivered it; NULL until delivered.  Kept when a
	-- revert of the destination makes the message pending again, so that
	-- reconciliation can tell whether that transaction came back.
	destination_tx_hash text CHECK (almanac._is_hex_id(destination_tx_hash, 32)),
	-- that transaction's id when it is on this node; a revert of the
	-- destination block sets it NULL and makes the message pending again
	destination_transaction_id bigint REFERENCES almanac.transactions ON DELETE SET NULL,
	status			text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'delivered', 'failed')),
	sent_at			timestamptz NOT NULL,
	delivered_at	timestamptz,
	payload			jsonb,
	UNIQUE (protocol, message_key),
	CONSTRAINT cross_chain_messages_delivered_check
		CHECK (status <> 'delivered' OR destination_tx_hash IS NOT NULL)
);
COMMENT ON TABLE almanac.cross_chain_messages IS 'messages from a transaction on one chain to a transaction on another';
-- the cascade from the source transaction
CREATE INDEX cross_chain_messages_source_idx ON almanac.cross_chain_messages (source_transaction_id);
-- the SET NULL from the destination transaction
CREATE INDEX cross_chain_messages_destination_idx ON almanac.cross_chain_messages (destination_transaction_id);
-- undelivery by the destination's reverted transactions (almanac.undeliver_messages)
CREATE INDEX cross_chain_messages_destination_tx_idx
	ON almanac.cross_chain_messages (destination_chain_id, destination_tx_hash);
-- "messages still pending towards chain X"
CREATE INDEX cross_chain_messages_pending_idx ON almanac.cross_chain_messages (destination_chain_id, sent_at)
	WHERE status = 'pending';

-- The destination by id and by hash agree: a destination_transaction_id
-- names a transaction of this node on the destination chain, and fills in
-- (or must equal) destination_tx_hash.  When the foreign key's SET NULL
-- removes the id while the destination chain stays on this node (its block
-- was reverted), a delivered message is in flight again.  When the chain
-- itself is gone (moved to another node and forgotten here, docs/scale-out.md
-- "Moving a chain"), its transactions were not reverted: the message stays
-- delivered, by hash.
CREATE FUNCTION almanac._cross_chain_message_destination() RETURNS trigger
	LANGUAGE plpgsql AS
$$
DECLARE
	v_chain text;
	v_hash	text;
BEGIN
	IF NEW.destination_transaction_id IS NOT NULL
		AND (TG_OP = 'INSERT' OR NEW.destination_transaction_id IS DISTINCT FROM OLD.destination_transaction_id
			 OR NEW.destination_tx_hash IS DISTINCT FROM OLD.destination_tx_hash
			 OR NEW.destination_chain_id IS DISTINCT FROM OLD.destination_chain_id) THEN
		SELECT t.chain_id, t.tx_hash INTO v_chain, v_hash
		  FROM almanac.transactions t WHERE t.id = NEW.destination_transaction_id;
		-- no such transaction: the foreign key says so
		IF FOUND AND v_chain <> NEW.destination_chain_id THEN
			RAISE EXCEPTION 'destination transaction % of message % is on chain "%", not on its destination chain "%"',
				NEW.destination_transaction_id, coalesce(NEW.message_key, NEW.id::text), v_chain, NEW.destination_chain_id
				USING ERRCODE = 'foreign_key_violation';
		END IF;
		IF FOUND AND NEW.destination_tx_hash IS NOT NULL AND NEW.destination_tx_hash <> v_hash THEN
			RAISE EXCEPTION 'destination transaction % of message % has hash %, not %',
				NEW.destination_transaction_id, coalesce(NEW.message_key, NEW.id::text), v_hash, NEW.destination_tx_hash
				USING ERRCODE = 'foreign_key_violation',
					  HINT = 'Give the destination by hash or by id, or both alike.';
		END IF;
		NEW.destination_tx_hash := coalesce(v_hash, NEW.destination_tx_hash);
	ELSIF TG_OP = 'UPDATE' AND NEW.destination_transaction_id IS NULL
		AND OLD.destination_transaction_id IS NOT NULL AND NEW.status = 'delivered'
		AND EXISTS (SELECT FROM almanac.chains c WHERE c.chain_id = NEW.destination_chain_id) THEN
		NEW.status := 'pending';
		NEW.delivered_at := NULL;
	END IF;
	RETURN NEW;
END;
$$;
CREATE TRIGGER cross_chain_messages_destination
	BEFORE INSERT OR UPDATE OF destination_transaction_id, destination_tx_hash, destination_chain_id
	ON almanac.cross_chain_messages
	FOR EACH ROW EXECUTE FUNCTION almanac._cross_chain_message_destination();

-- Make the delivered messages towards these transactions of a chain pending
-- again (their destination was reverted).  Called by a revert for the
-- messages on this node, and by a coordinator on the other nodes
-- (docs/scale-out.md, "Cross-chain messages").  The hash is kept.  Returns
-- the number of messages made pending.
CREATE FUNCTION almanac.undeliver_messages(destination_chain_id text, tx_hashes text[]) RETURNS bigint
	LANGUAGE plpgsql AS
$$
DECLARE
	n bigint;
BEGIN
	UPDATE almanac.cross_chain_messages m
	   SET status = 'pending', delivered_at = NULL, destination_transaction_id = NULL
	 WHERE m.destination_chain_id = undeliver_messages.destination_chain_id
	   AND m.destination_tx_hash = ANY (undeliver_messages.tx_hashes)
	   AND m.status = 'delivered';
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$$;
COMMENT ON FUNCTION almanac.undeliver_messages(text, text[]) IS 'make the delivered messages towards these transactions of a chain pending again; returns how many';
