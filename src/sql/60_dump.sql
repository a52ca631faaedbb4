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
-- almanac.mirrors is not marked: CREATE EXTENSION writes its rows, and a
-- restored database starts with every mirror enabled and in sync, which the
-- COPY just made true.
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
