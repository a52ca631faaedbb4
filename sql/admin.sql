-- Administration and observability of the store: column families, RocksDB
-- properties, flush, compact, drop, and who may do what.  Numbers that depend
-- on RocksDB's layout are asserted as booleans.  The tables are created in
-- public, so that their names print the same for every role.

CREATE FOREIGN TABLE public.admin_kv (k text, v bigint) SERVER almanac_store
	OPTIONS (column_family 'admin_cf', key_prefix 'akv', key_columns 'k');
-- a second table in the same column family, under another prefix
CREATE FOREIGN TABLE public.admin_kv2 (k text, v bigint) SERVER almanac_store
	OPTIONS (column_family 'admin_cf', key_prefix 'akv2', key_columns 'k');
-- a table whose column family is its key prefix (the default)
CREATE FOREIGN TABLE public.admin_other (k text) SERVER almanac_store
	OPTIONS (key_prefix 'admin_other', key_columns 'k');
INSERT INTO admin_kv SELECT 'k' || i, i FROM generate_series(1, 1000) i;
INSERT INTO admin_other VALUES ('a');

-- column families are created on first use; each lists the tables of this
-- database that use it, and RocksDB's own "default" is not listed
SELECT column_family, foreign_tables FROM almanac.column_families()
 WHERE column_family LIKE 'admin%' ORDER BY 1;
SELECT count(*) AS default_listed FROM almanac.column_families() WHERE column_family = 'default';
SELECT (SELECT count(*) FROM almanac.column_families() JOIN almanac.store_properties() USING (column_family, id))
       = (SELECT count(*) FROM almanac.column_families()) AS same_ids;

-- before a flush the rows are in the owner's memtables, not in SST files
SELECT estimated_keys > 0 AS has_keys, memtable_bytes > 0 AS in_memtable,
       live_sst_bytes = 0 AS no_sst, sst_files_per_level = '[0:6]={0,0,0,0,0,0,0}' AS no_files,
       pending_compaction_bytes >= 0 AND block_cache_bytes >= 0
         AND running_compactions >= 0 AND running_flushes >= 0 AS store_numbers
  FROM almanac.store_properties() WHERE column_family = 'admin_cf';
SELECT memtable_bytes AS before_memtable FROM almanac.store_properties()
 WHERE column_family = 'admin_cf' \gset

-- flush writes them to one level-0 file and empties the memtable
SELECT almanac.flush('admin_cf');
SELECT estimated_keys > 0 AS has_keys, live_sst_bytes > 0 AS in_sst,
       memtable_bytes < :before_memtable AS memtable_smaller,
       sst_files_per_level[0] = 1 AS one_l0_file
  FROM almanac.store_properties() WHERE column_family = 'admin_cf';
-- the rows read the same
SELECT count(*), sum(v) FROM admin_kv;

-- a second flush, then compact: the level-0 files move down
INSERT INTO admin_kv SELECT 'j' || i, i FROM generate_series(1, 100) i;
SELECT almanac.flush('admin_cf');
SELECT sst_files_per_level[0] AS l0_files FROM almanac.store_properties() WHERE column_family = 'admin_cf';
SELECT almanac.compact('admin_cf');
SELECT sst_files_per_level[0] AS l0_files, (SELECT sum(n) FROM unnest(sst_files_per_level) n) > 0 AS has_files,
       live_sst_bytes > 0 AS in_sst
  FROM almanac.store_properties() WHERE column_family = 'admin_cf';
SELECT count(*), sum(v) FROM admin_kv;

-- each write puts one entry into the memtable of each column family it
-- writes, the owner's catch-up marker (src/store/owner.c) only into those it
-- does not: 20 one-row transactions after a flush (whose markers are one
-- entry) add 20 entries, not 40; the owner's durable point, once a second,
-- adds one marker
SELECT almanac.flush('admin_cf');
DO $$ BEGIN FOR i IN 1..20 LOOP INSERT INTO admin_kv VALUES ('m' || i, i); COMMIT; END LOOP; END $$;
SELECT memtable_entries BETWEEN 21 AND 30 AS one_entry_per_write
  FROM almanac.store_properties() WHERE column_family = 'admin_cf';

-- the view: one row per server the user may use and column family
SELECT server, column_family, id = (SELECT id FROM almanac.column_families() WHERE column_family = 'admin_cf') AS same_id,
       live_sst_bytes > 0 AS in_sst
  FROM almanac.store_properties WHERE column_family LIKE 'admin%' ORDER BY 1, 2;

-- what does not exist
SELECT sqlstate_of($$SELECT almanac.flush('admin_nope')$$);
SELECT sqlstate_of($$SELECT almanac.compact('admin_nope')$$);
SELECT sqlstate_of($$SELECT almanac.drop_column_family('admin_nope')$$);
SELECT sqlstate_of($$SELECT * FROM almanac.column_families('no_such_server')$$);
SELECT sqlstate_of($$SELECT * FROM almanac.store_properties('no_such_server')$$);
SELECT sqlstate_of($$SELECT almanac.flush('admin_cf', 'no_such_server')$$);
SELECT sqlstate_of(format('SELECT almanac.flush(%L)', repeat('x', 64)));
-- a server of another wrapper
CREATE FOREIGN DATA WRAPPER admin_wrapper;
CREATE SERVER admin_elsewhere FOREIGN DATA WRAPPER admin_wrapper;
SELECT sqlstate_of($$SELECT * FROM almanac.column_families('admin_elsewhere')$$);
SELECT sqlstate_of($$SELECT almanac.drop_column_family('admin_cf', 'admin_elsewhere')$$);
-- and the view skips it
SELECT count(*) AS rows_for_other_wrapper FROM almanac.store_properties WHERE server = 'admin_elsewhere';
DROP SERVER admin_elsewhere;
DROP FOREIGN DATA WRAPPER admin_wrapper;

-- a column family in use by foreign tables of this database is not dropped
SELECT almanac.drop_column_family('admin_cf');
SELECT almanac.drop_column_family('admin_other');
-- nor is RocksDB's default one
SELECT sqlstate_of($$SELECT almanac.drop_column_family('default')$$);
DROP FOREIGN TABLE admin_kv2;
SELECT almanac.drop_column_family('admin_cf');
SELECT id AS old_id FROM almanac.column_families() WHERE column_family = 'admin_cf' \gset
DROP FOREIGN TABLE admin_kv;
SELECT almanac.drop_column_family('admin_cf');
SELECT count(*) AS still_listed FROM almanac.column_families() WHERE column_family = 'admin_cf';
SELECT count(*) AS still_in_properties FROM almanac.store_properties WHERE column_family = 'admin_cf';
SELECT sqlstate_of($$SELECT almanac.drop_column_family('admin_cf')$$);
SELECT sqlstate_of($$SELECT almanac.flush('admin_cf')$$);

-- This backend read and wrote the dropped column family through its
-- secondary instance.  A new table over the same name finds it empty (the
-- dropped data is not served from a stale handle), and its first write
-- creates the column family again, with a new id.  (Other backends, and
-- drops racing reads and writes: test/isolation/specs/admin_drop.spec and
-- test/t/008_admin_drop.pl.)
CREATE FOREIGN TABLE public.admin_kv (k text, v bigint) SERVER almanac_store
	OPTIONS (column_family 'admin_cf', key_prefix 'akv', key_columns 'k');
SELECT count(*) AS rows_after_drop FROM admin_kv;
SELECT count(*) AS listed_after_read FROM almanac.column_families() WHERE column_family = 'admin_cf';
INSERT INTO admin_kv VALUES ('new', 1);
INSERT INTO admin_kv VALUES ('newer', 2);
SELECT * FROM admin_kv ORDER BY k;
SELECT id <> :old_id AS new_id, foreign_tables FROM almanac.column_families() WHERE column_family = 'admin_cf';
SELECT count(*) AS other_rows FROM admin_other;

-- privileges: reading needs USAGE on the server, flush and compact its
-- ownership or pg_checkpoint, drop the ownership of every server of this
-- database that uses the same store
CREATE ROLE regress_admin_user;
GRANT USAGE ON SCHEMA almanac TO regress_admin_user;
SET ROLE regress_admin_user;
SELECT sqlstate_of($$SELECT * FROM almanac.column_families()$$);
SELECT sqlstate_of($$SELECT * FROM almanac.store_properties()$$);
SELECT count(*) AS visible_rows FROM almanac.store_properties;
SELECT sqlstate_of($$SELECT almanac.flush('admin_cf')$$);
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER almanac_store TO regress_admin_user;
SET ROLE regress_admin_user;
SELECT column_family, foreign_tables FROM almanac.column_families() WHERE column_family LIKE 'admin%' ORDER BY 1;
SELECT count(*) > 0 AS visible_rows FROM almanac.store_properties WHERE column_family LIKE 'admin%';
SELECT almanac.flush('admin_cf');
SELECT almanac.compact('admin_cf');
SELECT almanac.drop_column_family('admin_nope');
RESET ROLE;
GRANT pg_checkpoint TO regress_admin_user;
SET ROLE regress_admin_user;
SELECT almanac.flush('admin_cf');
SELECT almanac.compact('admin_cf');
SELECT sqlstate_of($$SELECT almanac.drop_column_family('admin_other')$$);
RESET ROLE;
SELECT count(*) AS other_rows FROM admin_other;

-- owning a server that uses the default store (no path) is not enough to
-- flush, compact or drop there: almanac_store uses it too
CREATE ROLE regress_admin_owner;
GRANT USAGE ON SCHEMA almanac TO regress_admin_owner;
GRANT CREATE ON SCHEMA public TO regress_admin_owner;
CREATE SERVER admin_default FOREIGN DATA WRAPPER almanac_rocksdb;
ALTER SERVER admin_default OWNER TO regress_admin_owner;
DROP FOREIGN TABLE admin_other;
SET ROLE regress_admin_owner;
SELECT almanac.flush('admin_other', 'admin_default');
SELECT almanac.drop_column_family('admin_other', 'admin_default');
RESET ROLE;
SELECT almanac.drop_column_family('admin_other', 'admin_default');
SELECT count(*) AS still_listed FROM almanac.column_families() WHERE column_family = 'admin_other';

-- the owner of a server with a store of its own may drop its column families
CREATE SERVER admin_owned FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (path 'almanac/admin_store');
ALTER SERVER admin_owned OWNER TO regress_admin_owner;
SET ROLE regress_admin_owner;
CREATE FOREIGN TABLE public.admin_own (k text) SERVER admin_owned OPTIONS (key_prefix 'own', key_columns 'k');
INSERT INTO admin_own VALUES ('a'), ('b');
SELECT almanac.flush('own', 'admin_owned');
SELECT column_family, foreign_tables FROM almanac.column_families('admin_owned');
SELECT almanac.drop_column_family('own', 'admin_owned');
DROP FOREIGN TABLE admin_own;
SELECT almanac.drop_column_family('own', 'admin_owned');
SELECT count(*) AS cfs_left FROM almanac.column_families('admin_owned');
RESET ROLE;
-- servers that share a store each show its column families; admin_owned's
-- store has none left
SELECT server, count(*) FROM almanac.store_properties WHERE column_family LIKE 'admin%' GROUP BY 1 ORDER BY 1;

DROP FOREIGN TABLE admin_kv;
SELECT almanac.drop_column_family('admin_cf');
DROP SERVER admin_default, admin_owned;
REVOKE pg_checkpoint FROM regress_admin_user;
REVOKE USAGE ON FOREIGN SERVER almanac_store FROM regress_admin_user;
REVOKE USAGE ON SCHEMA almanac FROM regress_admin_user, regress_admin_owner;
REVOKE CREATE ON SCHEMA public FROM regress_admin_owner;
DROP ROLE regress_admin_user, regress_admin_owner;
SELECT count(*) AS admin_cfs_left FROM almanac.column_families() WHERE column_family LIKE 'admin%';
