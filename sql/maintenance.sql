-- Store maintenance functions (almanac.freeze_sweep, almanac.value_versions):
-- their settings, who may call them, and their errors.  What a sweep does to
-- the versions is in test/t/003_maintenance.pl, where the xmin horizon can be
-- waited for.

SELECT name, setting, unit, context, min_val, max_val
  FROM pg_settings
 WHERE name IN ('almanac.freeze_sweep_age', 'almanac.reader_cleanup_interval')
 ORDER BY name;

CREATE FOREIGN TABLE mt (k bigint, v text) SERVER almanac_store
	OPTIONS (key_prefix 'mt', key_columns 'k');
INSERT INTO mt VALUES (1, 'one');
UPDATE mt SET v = 'uno' WHERE k = 1;
INSERT INTO mt VALUES (2, 'two');
DELETE FROM mt WHERE k = 2;

-- the versions of a stored value, newest first: the newest is committed and
-- not frozen (nothing sweeps by itself at the default
-- almanac.freeze_sweep_age); the write kept the one below it, frozen unless a
-- snapshot older than it was running (which autovacuum could have had)
SELECT version, deleted, frozen, status, image_bytes > 0 AS has_image,
	   xid::text::xid = top_xid AS top_level
  FROM almanac.value_versions('almanac_store', 'mt', almanac.make_key('mt', row(1::bigint)))
 WHERE version = 1;
SELECT version, deleted, status IN ('frozen', 'committed') AS committed, image_bytes > 0 AS has_image
  FROM almanac.value_versions('almanac_store', 'mt', almanac.make_key('mt', row(2::bigint)))
 ORDER BY version;
-- the xid is the writer's, also once frozen
SELECT bool_and(xid > '3'::xid8) AS real_xids
  FROM almanac.value_versions('almanac_store', 'mt', almanac.make_key('mt', row(1::bigint)));
-- a key that is not stored has no versions
SELECT count(*) FROM almanac.value_versions('almanac_store', 'mt', almanac.make_key('mt', row(3::bigint)));

-- a sweep returns how many values it rewrote or removed
SELECT almanac.freeze_sweep() >= 0 AS swept;
SELECT almanac.freeze_sweep('almanac_store') >= 0 AS swept;
SELECT v FROM mt ORDER BY k;

-- errors
SELECT sqlstate_of($$SELECT almanac.freeze_sweep('no_such_server')$$);
SELECT sqlstate_of($$SELECT * FROM almanac.value_versions('almanac_store', 'no_such_cf', '\x00')$$);
CREATE FOREIGN DATA WRAPPER maint_other_fdw;
CREATE SERVER maint_other FOREIGN DATA WRAPPER maint_other_fdw;
SELECT sqlstate_of($$SELECT almanac.freeze_sweep('maint_other')$$);
SELECT sqlstate_of($$SELECT * FROM almanac.value_versions('maint_other', 'mt', '\x00')$$);
SELECT almanac.freeze_sweep(NULL) IS NULL AS strict;

-- only the server's owner (or a superuser) may sweep or look at raw versions:
-- value_versions shows every table's keys, whatever the table privileges
CREATE ROLE regress_maint;
GRANT USAGE ON FOREIGN DATA WRAPPER almanac_rocksdb TO regress_maint;
GRANT USAGE ON SCHEMA almanac TO regress_maint;
SET ROLE regress_maint;
SELECT sqlstate_of($$SELECT almanac.freeze_sweep()$$);
SELECT sqlstate_of($$SELECT * FROM almanac.value_versions('almanac_store', 'mt', '\x00')$$);
-- nor through a server of its own on the same store (no path: the default
-- store), which it may not create (keyspace.c) and, given one, needs to own
-- every server of the store
SELECT sqlstate_of($$CREATE SERVER maint_own FOREIGN DATA WRAPPER almanac_rocksdb$$);
RESET ROLE;
CREATE SERVER maint_own FOREIGN DATA WRAPPER almanac_rocksdb;
ALTER SERVER maint_own OWNER TO regress_maint;
SET ROLE regress_maint;
SELECT sqlstate_of($$SELECT almanac.freeze_sweep('maint_own')$$);
SELECT sqlstate_of($$SELECT count(*) FROM almanac.value_versions('maint_own', 'mt',
	almanac.make_key('mt', row(1::bigint)))$$);
RESET ROLE;

DROP SERVER maint_own;
DROP SERVER maint_other;
DROP FOREIGN DATA WRAPPER maint_other_fdw;
REVOKE USAGE ON FOREIGN DATA WRAPPER almanac_rocksdb FROM regress_maint;
REVOKE USAGE ON SCHEMA almanac FROM regress_maint;
DROP ROLE regress_maint;
DROP FOREIGN TABLE mt;
