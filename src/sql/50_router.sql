-- Mirrors and the router (src/mirror/, src/router/, docs/router.md).
--
-- A mirror keeps every row of a core table (for account_states: the latest
-- row of each account) in a column family of the almanac_store server's
-- store, under the key the foreign tables use, written by the triggers below
-- in the same transaction as the heap rows.  The planner hook answers point
-- lookups and latest-row reads on a mirrored table from the mirror.

-- One row per table that has a mirror definition.  Edited by enable_mirror,
-- disable_mirror and resync; a change to a row invalidates every backend's
-- cached descriptor and the cached plans of the table (_mirrors_changed).
CREATE TABLE almanac.mirrors (
	relid			regclass PRIMARY KEY,
	key_prefix		text NOT NULL,
	-- the key's columns, in key order (keycodec.h)
	key_columns		name[] NOT NULL,
	key_attribute	text,
	-- set: one key per value of key_columns, holding the row with the
	-- highest latest_column (the latest state of an account)
	latest_column	name,
	column_family	text NOT NULL,
	enabled			boolean NOT NULL DEFAULT true,
	-- false: a check found a difference; the router reads the heap until resync
	in_sync			boolean NOT NULL DEFAULT true,
	-- the row shape (column types) the mirror's values were written with; a
	-- different shape (ALTER TABLE) makes the router read the heap until resync
	signature		text NOT NULL,
	-- the WAL timeline the mirror was last complete on.  The store is not in
	-- the WAL: a server promoted from a standby, or restored to a point in
	-- time, runs on a new timeline with the heap's rows but an older store,
	-- so the router reads the heap until resync records the new timeline.
	timeline		bigint NOT NULL,
	-- integer key columns stored in descending byte order (keycodec.h): the
	-- events mirror's block_number and log_index, so that newest first is a
	-- forward iteration.  The signature records them: a mirror written in
	-- another order is read from the heap until a whole resync rewrites it.
	key_descending	name[] NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE almanac.mirrors IS 'mirrors of core tables in the RocksDB store: key layout, column family, state';

CREATE FUNCTION almanac._mirror_signature(regclass, key_descending name[] DEFAULT '{}') RETURNS text
	LANGUAGE c STRICT STABLE
	AS 'MODULE_PATHNAME', 'almanac_mirror_signature_sql';
COMMENT ON FUNCTION almanac._mirror_signature(regclass, name[]) IS
	'internal: the row shape of a table and its mirror key''s descending columns, as almanac.mirrors.signature records them';

CREATE FUNCTION almanac._wal_timeline() RETURNS bigint
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_wal_timeline_sql';
COMMENT ON FUNCTION almanac._wal_timeline() IS
	'internal: the timeline this server writes WAL on (almanac.mirrors.timeline)';

CREATE FUNCTION almanac._mirrors_changed() RETURNS trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'almanac_mirrors_changed_sql';
CREATE TRIGGER mirrors_changed AFTER INSERT OR UPDATE OR DELETE ON almanac.mirrors
	FOR EACH ROW EXECUTE FUNCTION almanac._mirrors_changed();

-- keys: block:{chain_id}:{block_number} (= almanac.block_key),
-- tx:{chain_id}:{tx_hash as text}, account:{chain_id}:{account}:state
-- (= almanac.account_state_key),
-- event:{chain_id}:{contract_address}:{event_type}:{block_number}:{log_index}
-- (integers big-endian; block_number and log_index complemented, descending:
-- a contract's events of one type newest first).  One column family per
-- mirror, in the database's own store (almanac_store maps
-- almanac/base/<database oid>).
INSERT INTO almanac.mirrors (relid, key_prefix, key_columns, key_attribute, latest_column,
							 column_family, signature, timeline, key_descending)
SELECT t.relid::regclass, t.prefix, t.cols, t.attr, t.latest,
	   'mirror.' || t.name, almanac._mirror_signature(t.relid::regclass, t.descending),
	   almanac._wal_timeline(), t.descending
FROM (VALUES ('almanac.blocks', 'blocks', 'block', '{chain_id,block_number}'::name[], NULL, NULL, '{}'::name[]),
			 ('almanac.transactions', 'transactions', 'tx', '{chain_id,tx_hash}', NULL, NULL, '{}'),
			 ('almanac.account_states', 'account_states', 'account', '{chain_id,account}', 'state',
			  'block_number', '{}'),
			 ('almanac.events', 'events', 'event',
			  '{chain_id,contract_address,event_type,block_number,log_index}', NULL, NULL,
			  '{block_number,log_index}'))
	 AS t(relid, name, prefix, cols, attr, latest, descending);

-- Maintenance: every row change writes the mirror (blind puts, same
-- transaction); a statement writing the table marks it written by this
-- transaction (the router then reads the heap until the transaction ends);
-- TRUNCATE empties the mirror.
CREATE FUNCTION almanac._mirror_row() RETURNS trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'almanac_mirror_row_sql';
CREATE FUNCTION almanac._mirror_statement() RETURNS trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'almanac_mirror_statement_sql';
CREATE FUNCTION almanac._mirror_truncate() RETURNS trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'almanac_mirror_truncate_sql';

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['blocks', 'transactions', 'account_states', 'events'] LOOP
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON almanac.%I
							FOR EACH ROW EXECUTE FUNCTION almanac._mirror_row()', t || '_mirror', t);
		EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON almanac.%I
							FOR EACH STATEMENT EXECUTE FUNCTION almanac._mirror_statement()', t || '_mirror_statement', t);
		EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON almanac.%I
							FOR EACH STATEMENT EXECUTE FUNCTION almanac._mirror_truncate()', t || '_mirror_truncate', t);
		-- also under session_replication_role = replica (logical replication's
		-- apply workers, and loaders that set it): a row written without its
		-- mirror would be answered wrongly
		EXECUTE format('ALTER TABLE almanac.%I ENABLE ALWAYS TRIGGER %I, ENABLE ALWAYS TRIGGER %I,
							ENABLE ALWAYS TRIGGER %I', t, t || '_mirror', t || '_mirror_statement', t || '_mirror_truncate');
	END LOOP;
END;
$$;

-- the mirror's own keys (its layout: descending columns included)
CREATE FUNCTION almanac.mirror_key(table_name regclass, "row" record) RETURNS bytea
	LANGUAGE c STABLE
	AS 'MODULE_PATHNAME', 'almanac_mirror_key_sql';
COMMENT ON FUNCTION almanac.mirror_key(regclass, record) IS
	'the key of a row of the table in its mirror, e.g. almanac.mirror_key(''almanac.events'', e) FROM almanac.events e';

CREATE FUNCTION almanac.decode_mirror_key(table_name regclass, key bytea) RETURNS text[]
	LANGUAGE c STABLE
	AS 'MODULE_PATHNAME', 'almanac_decode_mirror_key_sql';
COMMENT ON FUNCTION almanac.decode_mirror_key(regclass, bytea) IS
	'a key of the table''s mirror as {prefix, key values...[, attribute]}; NULL when it is not one of the mirror''s layout';

CREATE FUNCTION almanac.enable_mirror(table_name regclass) RETURNS bigint
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_enable_mirror_sql';
COMMENT ON FUNCTION almanac.enable_mirror(regclass) IS
	'turn a table''s mirror on, writing every row into it (writers wait meanwhile); returns the keys written';

CREATE FUNCTION almanac.disable_mirror(table_name regclass) RETURNS void
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_disable_mirror_sql';
COMMENT ON FUNCTION almanac.disable_mirror(regclass) IS
	'turn a table''s mirror off: no more writes, every lookup reads the heap';

CREATE FUNCTION almanac.verify(table_name regclass, chain_id text DEFAULT NULL,
							   from_block bigint DEFAULT NULL, to_block bigint DEFAULT NULL,
							   OUT key bytea, OUT kind text)
	RETURNS SETOF record
	LANGUAGE c VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_verify_sql';
COMMENT ON FUNCTION almanac.verify(regclass, text, bigint, bigint) IS
	'differences between a table and its mirror: key, and kind missing / extra / different';

CREATE FUNCTION almanac.resync(table_name regclass, chain_id text DEFAULT NULL,
							   from_block bigint DEFAULT NULL, to_block bigint DEFAULT NULL)
	RETURNS bigint
	LANGUAGE c VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_resync_sql';
COMMENT ON FUNCTION almanac.resync(regclass, text, bigint, bigint) IS
	'rewrite the mirror''s keys that differ from the table (writers wait meanwhile); returns how many';

CREATE FUNCTION almanac.verify_sample(table_name regclass, keys integer DEFAULT 100)
	RETURNS bigint
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_verify_sample_sql';
COMMENT ON FUNCTION almanac.verify_sample(regclass, integer) IS
	'compare about that many sampled rows with the mirror, log each difference and mark the mirror out of sync if one differs (the background check of almanac.verify_interval); returns how many differ';

CREATE FUNCTION almanac._router_stats(OUT table_name regclass, OUT routed bigint,
									  OUT fallback_router_off bigint, OUT fallback_disabled bigint,
									  OUT fallback_out_of_sync bigint, OUT fallback_altered bigint,
									  OUT fallback_own_writes bigint, OUT fallback_serializable bigint)
	RETURNS SETOF record
	LANGUAGE c VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_router_stats_sql';
CREATE VIEW almanac.router_stats AS SELECT * FROM almanac._router_stats();
COMMENT ON VIEW almanac.router_stats IS
	'per mirrored table of this database: lookups the router answered from the mirror, and those it read from the heap, by reason';

CREATE FUNCTION almanac.router_stats_reset() RETURNS void
	LANGUAGE c VOLATILE
	AS 'MODULE_PATHNAME', 'almanac_router_stats_reset_sql';
COMMENT ON FUNCTION almanac.router_stats_reset() IS 'set the counters of almanac.router_stats to zero';
-- the counters are shared by every session of the database: like
-- pg_stat_reset(), zeroing them is for superusers and the roles they grant it
REVOKE EXECUTE ON FUNCTION almanac.router_stats_reset() FROM PUBLIC;
