-- almanac.reader_mmap (reader.h): a backend's reader maps the store's SST
-- files and reads them in place; turned off for a connection, it reads them
-- with read() into its block cache.  The same rows either way.  And the
-- reader's info log, which a new connection used to fill on every open.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS almanac;
RESET client_min_messages;
CREATE FOREIGN TABLE mm (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'mm', key_prefix 'mm', key_columns 'k');
INSERT INTO mm SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
-- into an SST file, which is what a reader maps
SELECT almanac.flush('mm');
CREATE FUNCTION mm_mapped() RETURNS boolean LANGUAGE sql
	AS $$ SELECT pg_read_file('/proc/self/maps') ~ '/almanac/base/\d+/\d+\.sst' $$;
CREATE FUNCTION mm_lookups() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	h text;
	n int := 0;
	acc text := '';
BEGIN
	FOR i IN 1..5000 BY 37 LOOP
		SELECT v INTO h FROM mm WHERE k = i;
		acc := md5(acc || h);
		n := n + 1;
	END LOOP;
	RETURN n || ' ' || acc;
END $$;

-- a new connection, the default: mapped once its reader opens
\c
SHOW almanac.reader_mmap;
SELECT mm_mapped() AS mapped_before_first_read;
SELECT v FROM mm WHERE k = 4321;
SELECT mm_mapped() AS mapped;
SELECT mm_lookups() AS lookups_mapped \gset
SELECT count(*), sum(length(v)) FROM mm WHERE k BETWEEN 100 AND 3999;
-- the reader's info log keeps warnings and errors only: after a clean open
-- it is empty (at RocksDB's default level it holds the options dump)
SELECT (pg_stat_file('almanac/secondary/' || d || '/0/LOG')).size AS info_log_bytes
  FROM pg_ls_dir('almanac/secondary') AS d
 WHERE d LIKE '%.' || pg_backend_pid();
-- fixed for the connection: its readers are configured when they open
SET almanac.reader_mmap = off;

-- a connection with it off: nothing mapped, the same answers
\c -reuse-previous=on "options=-calmanac.reader_mmap=off"
SHOW almanac.reader_mmap;
SELECT v FROM mm WHERE k = 4321;
SELECT mm_mapped() AS mapped;
SELECT mm_lookups() = :'lookups_mapped' AS same_lookups;
SELECT count(*), sum(length(v)) FROM mm WHERE k BETWEEN 100 AND 3999;

\c
-- the store owner writes flushed and compacted files through the page cache
-- (use_direct_io 'auto' while the readers map the files): a file written
-- with direct I/O is not in it, and every page a reader maps would first be
-- read from disk.  RocksDB records the options it runs with.
SELECT DISTINCT substring(pg_read_file('almanac/base/' || db.oid || '/' || f)
                          FROM 'use_direct_io_for_flush_and_compaction=(\w+)') AS direct_io_writes,
       substring(pg_read_file('almanac/base/' || db.oid || '/' || f)
                 FROM 'use_direct_reads=(\w+)') AS direct_reads
  FROM pg_database db, pg_ls_dir('almanac/base/' || db.oid) AS f
 WHERE db.datname = current_database() AND f LIKE 'OPTIONS-%';
DROP FOREIGN TABLE mm;
DROP FUNCTION mm_mapped(), mm_lookups();
SELECT almanac.drop_column_family('mm');
