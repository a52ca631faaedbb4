-- Privileges hold whatever table a role defines over the store
-- (src/fdw/keyspace.c).  Two tables map the same keys when they share the
-- store, the column family and the key prefix, or one is raw.  A role may
-- define a table over the keys of another only with the privileges of that
-- table's owner; raw tables only with those of the server's owner; and a
-- statement reaches rows through a table only with the same privileges on
-- every table mapping the same keys.
--
-- Before: USAGE on the server let a role refused SELECT on a table define
-- its own table with the same key_prefix and read, update and delete the
-- rows, or IMPORT FOREIGN SCHEMA the raw keys and values of every column
-- family.
CREATE ROLE regress_owner;
CREATE ROLE regress_intruder;
GRANT USAGE ON FOREIGN SERVER almanac_store TO regress_owner, regress_intruder;
CREATE SCHEMA owner_s AUTHORIZATION regress_owner;
CREATE SCHEMA intruder_s AUTHORIZATION regress_intruder;

SET ROLE regress_owner;
CREATE FOREIGN TABLE owner_s.secret (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'priv', key_prefix 'secret', key_columns 'k');
INSERT INTO owner_s.secret VALUES (1, 'one'), (2, 'two');
-- the owner may map its own keys twice (as a view of them)
CREATE FOREIGN TABLE owner_s.secret_again (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'priv', key_prefix 'secret', key_columns 'k');
SELECT * FROM owner_s.secret_again ORDER BY k;
GRANT USAGE ON SCHEMA owner_s TO regress_intruder;

SET ROLE regress_intruder;
SELECT * FROM owner_s.secret;
-- a table of its own over the same keys, created or altered onto them
CREATE FOREIGN TABLE intruder_s.mine (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'priv', key_prefix 'secret', key_columns 'k');
CREATE FOREIGN TABLE intruder_s.mine (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'priv', key_prefix 'mine', key_columns 'k');
ALTER FOREIGN TABLE intruder_s.mine OPTIONS (SET key_prefix 'secret');
INSERT INTO intruder_s.mine VALUES (1, 'mine');
-- raw tables: neither by IMPORT FOREIGN SCHEMA nor by hand
IMPORT FOREIGN SCHEMA rocksdb LIMIT TO (priv) FROM SERVER almanac_store INTO intruder_s;
CREATE FOREIGN TABLE intruder_s.raw (key bytea, value bytea) SERVER almanac_store
	OPTIONS (raw 'true', column_family 'priv');
-- nor a table over a reserved column family: the store owner's own, or a
-- core table's mirror (which would read and write almanac.blocks' rows in
-- RocksDB without its privileges)
CREATE FOREIGN TABLE intruder_s.owners (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'default', key_prefix 'x', key_columns 'k');
CREATE FOREIGN TABLE intruder_s.blocks (chain_id text, block_number bigint, v text) SERVER almanac_store
	OPTIONS (column_family 'mirror.blocks', key_prefix 'block', key_columns 'chain_id, block_number');
-- nor through a server of its own: one without option path uses the
-- default store too
RESET ROLE;
GRANT USAGE ON FOREIGN DATA WRAPPER almanac_rocksdb TO regress_intruder;
GRANT USAGE ON SCHEMA almanac TO regress_intruder;
SET ROLE regress_intruder;
-- a server without path would be one more over the database's own store:
-- refused, with or without tuning options (the store is opened with those
-- of whichever server attaches first)
CREATE SERVER intruder_srv FOREIGN DATA WRAPPER almanac_rocksdb;
CREATE SERVER intruder_srv FOREIGN DATA WRAPPER almanac_rocksdb
	OPTIONS (write_buffer_size '64kB', use_direct_io 'on');
-- given one by a superuser, it may not tune it either
RESET ROLE;
CREATE SERVER intruder_srv FOREIGN DATA WRAPPER almanac_rocksdb;
ALTER SERVER intruder_srv OWNER TO regress_intruder;
SET ROLE regress_intruder;
ALTER SERVER intruder_srv OPTIONS (ADD max_write_buffer_number '2');
ALTER SERVER intruder_srv VERSION '2';
CREATE FOREIGN TABLE intruder_s.raw2 (key bytea, value bytea) SERVER intruder_srv
	OPTIONS (raw 'true', column_family 'priv');
CREATE FOREIGN TABLE intruder_s.blocks2 (chain_id text, block_number bigint, v text) SERVER intruder_srv
	OPTIONS (column_family 'mirror.blocks', key_prefix 'block', key_columns 'chain_id, block_number');
-- nor read the store's keys through maintenance functions on it
SELECT count(*) FROM almanac.value_versions('intruder_srv', 'priv', 'secret:1'::bytea);
SELECT almanac.flush('priv', 'intruder_srv');
DROP SERVER intruder_srv;
-- a privileged role may add one, and is warned if its tuning differs from
-- the other servers' (which one the store gets would be chance)
RESET ROLE;
CREATE SERVER priv_tuned FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (write_buffer_size '8MB');
ALTER SERVER priv_tuned OPTIONS (DROP write_buffer_size);
DROP SERVER priv_tuned;
SET ROLE regress_intruder;
-- nor can another server take raw and reserved tables away from a
-- non-superuser owner of almanac_store: the owner may, nobody else may
-- create one next to it
RESET ROLE;
ALTER SERVER almanac_store OWNER TO regress_owner;
SET ROLE regress_intruder;
CREATE SERVER intruder_srv FOREIGN DATA WRAPPER almanac_rocksdb;
SET ROLE regress_owner;
CREATE FOREIGN TABLE owner_s.raw_own (key bytea, value bytea) SERVER almanac_store
	OPTIONS (raw 'true', column_family 'owner_raw');
SELECT count(*) FROM owner_s.raw_own;
CREATE FOREIGN TABLE owner_s.blocks (chain_id text, block_number bigint, v text) SERVER almanac_store
	OPTIONS (column_family 'mirror.blocks', key_prefix 'block', key_columns 'chain_id, block_number');
-- and tune it
ALTER SERVER almanac_store OPTIONS (ADD max_open_files '500');
ALTER SERVER almanac_store OPTIONS (DROP max_open_files);
DROP FOREIGN TABLE owner_s.raw_own, owner_s.blocks;
RESET ROLE;
ALTER SERVER almanac_store OWNER TO CURRENT_USER;
-- (the grant went with the ownership)
GRANT USAGE ON FOREIGN SERVER almanac_store TO regress_owner;
SET ROLE regress_intruder;
-- ALTER TABLE on a foreign table is held to the rule as ALTER FOREIGN TABLE
CREATE FOREIGN TABLE intruder_s.b (chain_id text, block_number bigint, v text) SERVER almanac_store
	OPTIONS (column_family 'innocent', key_prefix 'block', key_columns 'chain_id, block_number');
ALTER TABLE intruder_s.b OPTIONS (SET column_family 'mirror.blocks');
ALTER TABLE intruder_s.b OPTIONS (SET key_prefix 'secret', SET column_family 'priv');
DROP FOREIGN TABLE intruder_s.b;
RESET ROLE;
REVOKE USAGE ON SCHEMA almanac FROM regress_intruder;
-- a server owned by the intruder over a store of its own cannot be moved
-- onto the default store under its tables
CREATE SERVER tenant FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (path 'almanac/tenant');
ALTER SERVER tenant OWNER TO regress_intruder;
SET ROLE regress_intruder;
CREATE FOREIGN TABLE intruder_s.t (chain_id text, block_number bigint, v text) SERVER tenant
	OPTIONS (column_family 'mirror.blocks', key_prefix 'block', key_columns 'chain_id, block_number');
ALTER SERVER tenant OPTIONS (DROP path);
DROP FOREIGN TABLE intruder_s.t;
RESET ROLE;
DROP SERVER tenant;
-- nor does session_replication_role = replica switch the rule off
GRANT SET ON PARAMETER session_replication_role TO regress_intruder;
SET ROLE regress_intruder;
SET session_replication_role = replica;
CREATE FOREIGN TABLE intruder_s.raw3 (key bytea, value bytea) SERVER almanac_store
	OPTIONS (raw 'true', column_family 'priv');
RESET session_replication_role;
RESET ROLE;
REVOKE SET ON PARAMETER session_replication_role FROM regress_intruder;
REVOKE USAGE ON FOREIGN DATA WRAPPER almanac_rocksdb FROM regress_intruder;
SET ROLE regress_intruder;
SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'intruder_s'::regnamespace ORDER BY 1;
-- its own keys are its own
SELECT * FROM intruder_s.mine;
RESET ROLE;

-- a table over the secret keys that the intruder owns (a superuser made it):
-- the intruder reaches no row through it without privileges on "secret"
CREATE FOREIGN TABLE intruder_s.shadow (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'priv', key_prefix 'secret', key_columns 'k');
ALTER FOREIGN TABLE intruder_s.shadow OWNER TO regress_intruder;
SET ROLE regress_intruder;
SELECT * FROM intruder_s.shadow;
SELECT * FROM intruder_s.shadow WHERE k = 1;
UPDATE intruder_s.shadow SET v = 'stolen';
DELETE FROM intruder_s.shadow WHERE k = 1;
INSERT INTO intruder_s.shadow VALUES (3, 'planted');
COPY intruder_s.shadow FROM stdin;
3	planted
\.
ANALYZE intruder_s.shadow;
-- nor through a view of its own
CREATE VIEW intruder_s.v AS SELECT * FROM intruder_s.shadow;
SELECT * FROM intruder_s.v;
RESET ROLE;
-- nor after reading the key spaces failed: an error there (a statement_timeout
-- or a cancel while the catalog is read, here a table whose options were
-- edited by hand) must not leave behind an empty list that passes every check
CREATE FOREIGN TABLE public.priv_broken (k int) SERVER almanac_store
	OPTIONS (key_prefix 'broken', key_columns 'k');
UPDATE pg_foreign_table SET ftoptions = '{key_prefix=broken,key_columns=k,bogus=1}'
 WHERE ftrelid = 'public.priv_broken'::regclass;
SET ROLE regress_intruder;
SELECT * FROM intruder_s.shadow;
SELECT * FROM intruder_s.shadow;
RESET ROLE;
UPDATE pg_foreign_table SET ftoptions = '{key_prefix=broken,key_columns=k}'
 WHERE ftrelid = 'public.priv_broken'::regclass;
DROP FOREIGN TABLE public.priv_broken;

-- what the owner grants, the other table allows, and no more
SET ROLE regress_owner;
GRANT SELECT ON owner_s.secret, owner_s.secret_again TO regress_intruder;
SET ROLE regress_intruder;
SELECT * FROM intruder_s.shadow ORDER BY k;
DELETE FROM intruder_s.shadow WHERE k = 1;
RESET ROLE;

-- the rule binds both ways: while "shadow" maps its keys, the owner of
-- "secret" needs privileges on "shadow" too (a superuser handed it out; it
-- could not have been made by a role without the privileges of "secret"'s
-- owner)
SET ROLE regress_owner;
SELECT * FROM owner_s.secret ORDER BY k;
RESET ROLE;
-- and dropping "shadow" would hand "secret"'s owner every row written
-- through it: it may go once that owner holds its privileges on it
DROP FOREIGN TABLE intruder_s.shadow CASCADE;
GRANT SELECT, INSERT, UPDATE, DELETE ON intruder_s.shadow TO regress_owner;
DROP FOREIGN TABLE intruder_s.shadow CASCADE;
-- the owner still reads and writes everything, and nothing was changed
SET ROLE regress_owner;
UPDATE owner_s.secret SET v = v || '!' WHERE k = 2;
SELECT * FROM owner_s.secret ORDER BY k;
RESET ROLE;

-- a superuser (the server's owner) may import raw tables
CREATE SCHEMA priv_raw;
IMPORT FOREIGN SCHEMA rocksdb LIMIT TO (priv) FROM SERVER almanac_store INTO priv_raw;
SELECT count(*) FROM priv_raw.priv;
-- handed to a role without the server owner's privileges, it reads nothing
ALTER FOREIGN TABLE priv_raw.priv OWNER TO regress_intruder;
GRANT USAGE ON SCHEMA priv_raw TO regress_intruder;
SET ROLE regress_intruder;
SELECT count(*) FROM priv_raw.priv;
RESET ROLE;

-- a table over a mirror's column family that a superuser made and handed
-- to a role without the server owner's privileges reads nothing either
CREATE FOREIGN TABLE priv_raw.blocks (chain_id text, block_number bigint, v text) SERVER almanac_store
	OPTIONS (column_family 'mirror.blocks', key_prefix 'block', key_columns 'chain_id, block_number');
SELECT count(*) FROM priv_raw.blocks WHERE chain_id = 'none' AND block_number = 1;
ALTER FOREIGN TABLE priv_raw.blocks OWNER TO regress_intruder;
SET ROLE regress_intruder;
SELECT count(*) FROM priv_raw.blocks WHERE chain_id = 'none' AND block_number = 1;
RESET ROLE;

-- dropping a table over a mirror's column family leaves the mirror's keys:
-- they are the core table's, whoever mapped them
INSERT INTO almanac.chains (chain_id) VALUES ('priv_chain');
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
VALUES ('priv_chain', 1, '0x' || repeat('1', 64), '0x' || repeat('0', 64), '2024-01-01');
CREATE FOREIGN TABLE public.su_blocks (chain_id text, block_number bigint, v text) SERVER almanac_store
	OPTIONS (column_family 'mirror.blocks', key_prefix 'block', key_columns 'chain_id, block_number');
DROP FOREIGN TABLE public.su_blocks;
-- nor does almanac.drop_column_family drop a mirror's column family once no
-- foreign table maps it, or the store owner's: they are in use all the same
DROP FOREIGN TABLE priv_raw.blocks;
SELECT almanac.drop_column_family('mirror.blocks');
SELECT almanac.drop_column_family('default');
SELECT count(*) AS mirror_differences FROM almanac.verify('almanac.blocks', 'priv_chain');
SELECT block_number FROM almanac.blocks WHERE chain_id = 'priv_chain' AND block_number = 1;
DELETE FROM almanac.chains WHERE chain_id = 'priv_chain';

-- a key column is not renamed while the table holds rows: the table could
-- then neither read them nor delete them when dropped, and they would wait
-- for the next table over its keys, here the intruder's
SET ROLE regress_owner;
CREATE FOREIGN TABLE owner_s.renamed (k int, v text) SERVER almanac_store
	OPTIONS (key_prefix 'renamed', key_columns 'k');
INSERT INTO owner_s.renamed VALUES (1, 'private');
ALTER FOREIGN TABLE owner_s.renamed RENAME COLUMN k TO id;
ALTER TABLE owner_s.renamed RENAME COLUMN k TO id;
-- (a value column may be renamed: rows do not record names)
ALTER FOREIGN TABLE owner_s.renamed RENAME COLUMN v TO note;
DROP FOREIGN TABLE owner_s.renamed;
SET ROLE regress_intruder;
CREATE FOREIGN TABLE intruder_s.renamed (k int, v text) SERVER almanac_store
	OPTIONS (key_prefix 'renamed', key_columns 'k');
SELECT * FROM intruder_s.renamed;
DROP FOREIGN TABLE intruder_s.renamed;
RESET ROLE;

-- a second server over the same directory, its path written another way
-- (a symbolic link: /proc/self/cwd is the data directory), is the same
-- store to the rules
CREATE SERVER priv_here FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (path 'almanac/priv_alias');
CREATE SERVER priv_there FOREIGN DATA WRAPPER almanac_rocksdb
	OPTIONS (path '/proc/self/cwd/almanac/./priv_alias/');
SELECT (almanac._server_options(h.oid))[1] = (almanac._server_options(t.oid))[1] AS one_store
  FROM pg_foreign_server h, pg_foreign_server t
 WHERE h.srvname = 'priv_here' AND t.srvname = 'priv_there';
GRANT USAGE ON FOREIGN SERVER priv_here TO regress_owner;
GRANT USAGE ON FOREIGN SERVER priv_there TO regress_intruder;
SET ROLE regress_owner;
CREATE FOREIGN TABLE owner_s.aliased (k int, v text) SERVER priv_here
	OPTIONS (key_prefix 'aliased', key_columns 'k');
SET ROLE regress_intruder;
CREATE FOREIGN TABLE intruder_s.aliased (k int, v text) SERVER priv_there
	OPTIONS (key_prefix 'aliased', key_columns 'k');
RESET ROLE;
-- nor does such a path reach into almanac/base, the databases' own stores
CREATE SERVER priv_base FOREIGN DATA WRAPPER almanac_rocksdb
	OPTIONS (path '/proc/self/cwd/almanac/base/1');
DROP SERVER priv_here, priv_there CASCADE;

-- squatting: a role maps the keys a privileged role will use before it does;
-- while both tables exist it reads nothing, and dropping the privileged
-- table would leave it every row written through that table: refused
SET ROLE regress_intruder;
CREATE FOREIGN TABLE intruder_s.squat (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'payroll', key_prefix 'salary', key_columns 'k');
RESET ROLE;
CREATE SCHEMA priv_hr;
CREATE FOREIGN TABLE priv_hr.salary (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'payroll', key_prefix 'salary', key_columns 'k');
INSERT INTO priv_hr.salary VALUES (1, 'private');
SET ROLE regress_intruder;
SELECT * FROM intruder_s.squat;
RESET ROLE;
DROP FOREIGN TABLE priv_hr.salary;
-- (had it gone, this would show the row)
SET ROLE regress_intruder;
SELECT * FROM intruder_s.squat;
RESET ROLE;
DROP SCHEMA priv_hr CASCADE;
-- nor through a function that catches the error
DO $$
BEGIN
	DROP FOREIGN TABLE priv_hr.salary;
EXCEPTION WHEN insufficient_privilege THEN
	RAISE NOTICE 'refused: %', SQLERRM;
END $$;
SELECT * FROM priv_hr.salary;
-- nor when a function that the DROP runs (an event trigger) catches the
-- refusal of a drop of its own: the DROP's check still runs at its end
SET ROLE regress_intruder;
CREATE FOREIGN TABLE intruder_s.squat_bonus (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'payroll', key_prefix 'bonus', key_columns 'k');
RESET ROLE;
CREATE FOREIGN TABLE priv_hr.bonus (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'payroll', key_prefix 'bonus', key_columns 'k');
INSERT INTO priv_hr.bonus VALUES (1, 'private bonus');
CREATE FUNCTION priv_drop_bonus() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects()
			   WHERE object_identity = 'priv_hr.salary') THEN
		BEGIN
			DROP FOREIGN TABLE priv_hr.bonus;
		EXCEPTION WHEN insufficient_privilege THEN
			RAISE NOTICE 'bonus kept: %', SQLERRM;
		END;
	END IF;
END $$;
CREATE EVENT TRIGGER priv_drop_bonus ON sql_drop EXECUTE FUNCTION priv_drop_bonus();
DROP FOREIGN TABLE priv_hr.salary;
DROP EVENT TRIGGER priv_drop_bonus;
DROP FUNCTION priv_drop_bonus();
-- (had it gone, this would show the row)
SET ROLE regress_intruder;
SELECT * FROM intruder_s.squat;
RESET ROLE;
DROP FOREIGN TABLE priv_hr.bonus, intruder_s.squat_bonus;
-- nor through a temporary table, dropped as its session ends, where no
-- statement can be refused: its rows go with it
SET ROLE regress_intruder;
CREATE FOREIGN TABLE intruder_s.squat_scratch (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'payroll', key_prefix 'scratch', key_columns 'k');
RESET ROLE;
CREATE FOREIGN TABLE pg_temp.scratch (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'payroll', key_prefix 'scratch', key_columns 'k');
INSERT INTO pg_temp.scratch VALUES (1, 'private scratch');
\c -
DO $$
BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN NOT EXISTS (SELECT FROM pg_class WHERE relname = 'scratch'
							  AND relpersistence = 't');
		PERFORM pg_sleep(0.1);
	END LOOP;
END $$;
SELECT count(*) AS temporary_tables_left FROM pg_class
 WHERE relname = 'scratch' AND relpersistence = 't';
SET ROLE regress_intruder;
SELECT * FROM intruder_s.squat_scratch;
DROP FOREIGN TABLE intruder_s.squat_scratch;
RESET ROLE;
-- dropped with the other table, in either order, the rows go with both
BEGIN;
DROP FOREIGN TABLE priv_hr.salary, intruder_s.squat;
ROLLBACK;
BEGIN;
DROP FOREIGN TABLE intruder_s.squat, priv_hr.salary;
CREATE FOREIGN TABLE priv_hr.salary (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'payroll', key_prefix 'salary', key_columns 'k');
SELECT count(*) AS rows_left FROM priv_hr.salary;
ROLLBACK;
-- with its owner's privileges on the table, the squatting table keeps them
BEGIN;
GRANT USAGE ON SCHEMA priv_hr TO regress_intruder;
GRANT SELECT, INSERT, UPDATE ON priv_hr.salary TO regress_intruder;
SAVEPOINT s;
DROP FOREIGN TABLE priv_hr.salary;
ROLLBACK TO s;
GRANT DELETE ON priv_hr.salary TO regress_intruder;
DROP FOREIGN TABLE priv_hr.salary;
SET ROLE regress_intruder;
SELECT * FROM intruder_s.squat;
ROLLBACK;
-- emptied first, the table may go: the other finds no row
SELECT almanac.purge('priv_hr.salary');
DROP FOREIGN TABLE priv_hr.salary;
SET ROLE regress_intruder;
SELECT * FROM intruder_s.squat;
DROP FOREIGN TABLE intruder_s.squat;
RESET ROLE;
-- a table of the same owner keeps the rows (it could read them anyway)
CREATE FOREIGN TABLE priv_hr.salary (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'payroll', key_prefix 'salary', key_columns 'k');
CREATE FOREIGN TABLE priv_hr.salary_again (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'payroll', key_prefix 'salary', key_columns 'k');
INSERT INTO priv_hr.salary VALUES (2, 'kept');
DROP FOREIGN TABLE priv_hr.salary;
SELECT * FROM priv_hr.salary_again;
DROP SCHEMA priv_hr CASCADE;

-- a dropped table leaves its key space to others
DROP SCHEMA priv_raw CASCADE;
SET ROLE regress_owner;
DELETE FROM owner_s.secret;
DROP FOREIGN TABLE owner_s.secret, owner_s.secret_again;
SET ROLE regress_intruder;
-- (emptied first: a table that holds rows does not move to other keys, ddl.sql)
DELETE FROM intruder_s.mine;
ALTER FOREIGN TABLE intruder_s.mine OPTIONS (SET key_prefix 'secret');
SELECT * FROM intruder_s.mine;
RESET ROLE;

DROP SCHEMA owner_s, intruder_s CASCADE;
REVOKE USAGE ON FOREIGN SERVER almanac_store FROM regress_owner, regress_intruder;
DROP ROLE regress_owner, regress_intruder;
