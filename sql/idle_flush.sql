-- almanac.idle_flush_delay (store/owner.c): once its owner has written
-- nothing for that long, the store keeps no write-ahead log for a new
-- connection's reader to replay.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS almanac;
RESET client_min_messages;
-- the default (test/almanac.conf turns it off for the other tests)
SELECT boot_val, unit FROM pg_settings WHERE name = 'almanac.idle_flush_delay';
CREATE FOREIGN TABLE idf (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'idf', key_prefix 'idf', key_columns 'k');
-- bytes in the write-ahead log files of this database's store
CREATE FUNCTION idf_wal_bytes() RETURNS bigint LANGUAGE sql AS $$
	SELECT coalesce(sum((pg_stat_file(d || '/' || f)).size), 0)::bigint
	  FROM (SELECT 'almanac/base/' || oid AS d FROM pg_database WHERE datname = current_database()) s,
		   pg_ls_dir(d) AS f
	 WHERE f LIKE '%.log' $$;
CREATE FUNCTION idf_wait_for_wal_below(n bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..600 LOOP
		IF idf_wal_bytes() < n THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN false;
END $$;

-- turned off: what a statement wrote stays in the log
ALTER SYSTEM SET almanac.idle_flush_delay = 0;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
INSERT INTO idf SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g;
SELECT pg_sleep(1.5);
SELECT idf_wal_bytes() > 1000000 AS still_in_the_log;

-- on: flushed once the owner has been idle for the delay
ALTER SYSTEM SET almanac.idle_flush_delay = '200ms';
SELECT pg_reload_conf();
SELECT idf_wait_for_wal_below(10000) AS flushed;
-- and again after the next write
UPDATE idf SET v = repeat('y', 200) WHERE k <= 2500;
SELECT idf_wait_for_wal_below(10000) AS flushed_again;
SELECT count(*), count(*) FILTER (WHERE v LIKE 'y%') AS updated FROM idf;

ALTER SYSTEM RESET almanac.idle_flush_delay;
SELECT pg_reload_conf();
DROP FOREIGN TABLE idf;
DROP FUNCTION idf_wal_bytes(), idf_wait_for_wal_below(bigint);
SELECT almanac.drop_column_family('idf');
