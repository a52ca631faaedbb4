-- pg_dump and the core tables (docs/operations.md#backups-and-standbys).
--
-- The tables of schema almanac belong to the extension, so pg_dump writes
-- CREATE EXTENSION almanac and, unless a table is marked here, none of its
-- rows: a dump of an indexing database would restore empty.  Marked, their
-- rows are dumped as COPY data after CREATE EXTENSION, in an order that the
-- foreign keys between them accept (pg_dump orders marked tables by their
-- foreign keys), and the identity sequences with them, so that the next
-- ingest after a restore does not collide with a restored id.
--
-- On restore the rows go through the tables' triggers, so the mirrors of the
-- restored database (its own store) are filled by the same COPY.
--
-- almanac.mirrors: CREATE EXTENSION writes its rows, every mirror enabled
-- and in sync, which the COPY makes true.  What a dump must carry is which
-- mirrors were disabled (almanac.disable_mirror): only those rows are
-- dumped, and their restore, which would collide with the rows CREATE
-- EXTENSION wrote, disables the mirror instead (_mirrors_restore).  The
-- rest of such a row (key layout, column family, sync state, timeline)
-- describes the source's store, not the restored database's.
CREATE FUNCTION almanac._mirrors_restore() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF EXISTS (SELECT FROM almanac.mirrors WHERE relid = NEW.relid) THEN
		-- only ever off: enabling takes almanac.enable_mirror, which brings
		-- the mirror in sync first
		IF NOT NEW.enabled THEN
			UPDATE almanac.mirrors SET enabled = false WHERE relid = NEW.relid AND enabled;
		END IF;
		RETURN NULL;
	END IF;
	RETURN NEW;
END;
$$;
COMMENT ON FUNCTION almanac._mirrors_restore() IS
	'internal: a row of almanac.mirrors inserted for a table that has one (pg_restore) disables its mirror or does nothing';
CREATE TRIGGER mirrors_restore BEFORE INSERT ON almanac.mirrors
	FOR EACH ROW EXECUTE FUNCTION almanac._mirrors_restore();
SELECT pg_catalog.pg_extension_config_dump('almanac.mirrors', 'WHERE NOT enabled');
--
-- One call per statement: each call rewrites the extension's catalog row,
-- which a second call in the same statement could not see.
SELECT pg_catalog.pg_extension_config_dump('almanac.chains', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.blocks', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.transactions', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.events', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.account_states', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.cross_chain_messages', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.orphaned_blocks', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.blocks_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.transactions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.account_states_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('almanac.cross_chain_messages_id_seq', '');
