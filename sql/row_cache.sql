-- The row cache (src/kv/rowcache.h): point lookups answered from backend memory,
-- its setting, and a cache too small for what is read.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS almanac;
RESET client_min_messages;
-- the backend's row cache alone: the shared one answers first otherwise
-- (test/t/031_shared_row_cache.pl)
SET almanac.shared_row_cache = off;
CREATE FOREIGN TABLE rc (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'rc', key_prefix 'rc', key_columns 'k');
CREATE TABLE rc_heap (k int PRIMARY KEY, v text);
INSERT INTO rc SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
INSERT INTO rc_heap SELECT * FROM rc;

CREATE TEMP TABLE mark AS SELECT * FROM almanac.reader_row_cache_stats();
CREATE FUNCTION rc_delta(OUT hits bigint, OUT misses bigint, OUT evicted bigint)
	LANGUAGE sql AS $$
	SELECT s.hits - m.hits, s.misses - m.misses, s.evicted - m.evicted
	  FROM almanac.reader_row_cache_stats() s, mark m $$;
CREATE FUNCTION rc_mark() RETURNS void LANGUAGE sql AS $$
	DELETE FROM mark; INSERT INTO mark SELECT * FROM almanac.reader_row_cache_stats() $$;

-- Get: a miss, then a hit; a missing key is kept as missing
SELECT rc_mark();
SELECT v FROM rc WHERE k = 7;
SELECT v FROM rc WHERE k = 7;
SELECT v FROM rc WHERE k = 99999;
SELECT v FROM rc WHERE k = 99999;
SELECT hits, misses FROM rc_delta();

-- MultiGet: the keys looked up before are hits, the others one MultiGet
SELECT rc_mark();
SELECT k, v FROM rc WHERE k IN (7, 8, 99999) ORDER BY k;
SELECT hits, misses FROM rc_delta();

-- prepared statements go through it too
SELECT rc_mark();
PREPARE get(int) AS SELECT v FROM rc WHERE k = $1;
EXECUTE get(8);
EXECUTE get(8);
SELECT hits, misses FROM rc_delta();

-- turned off: neither looked up nor filled
SET almanac.reader_row_cache_size = 0;
SELECT rc_mark();
SELECT v FROM rc WHERE k = 9;
SELECT v FROM rc WHERE k = 9;
SELECT hits, misses FROM rc_delta();
RESET almanac.reader_row_cache_size;

-- an UPDATE finds its row by a Get (a miss) and reads it again once its
-- key is locked, in the scan and in the write (two hits); the committed row
-- is read again
SELECT rc_mark();
UPDATE rc SET v = 'updated' WHERE k = 10;
UPDATE rc_heap SET v = 'updated' WHERE k = 10;
SELECT hits, misses FROM rc_delta();
SELECT v FROM rc WHERE k = 10;

-- the session's own writes: its buffered row, then the store again on abort
BEGIN;
SELECT v FROM rc WHERE k = 7;
UPDATE rc SET v = 'mine' WHERE k = 7;
SELECT v FROM rc WHERE k = 7;
ROLLBACK;
SELECT v FROM rc WHERE k = 7;

-- a committed write of its own is read again
UPDATE rc SET v = 'committed' WHERE k = 7;
UPDATE rc_heap SET v = 'committed' WHERE k = 7;
SELECT v FROM rc WHERE k = 7;

-- a cache far smaller than what is read lets entries go, and the answers
-- are the heap's
SET almanac.reader_row_cache_size = '128kB';
SELECT rc_mark();
SELECT count(*) AS differ FROM generate_series(1, 2000) g
 WHERE (SELECT v FROM rc WHERE k = g) IS DISTINCT FROM (SELECT v FROM rc_heap WHERE k = g);
SELECT count(*) AS differ FROM generate_series(1, 2000) g
 WHERE (SELECT v FROM rc WHERE k = g) IS DISTINCT FROM (SELECT v FROM rc_heap WHERE k = g);
SELECT evicted > 1000 AS evicted, hits > 0 AS some_hits FROM rc_delta();
SELECT sum(total_bytes) <= 128 * 1024 AS within_setting FROM pg_backend_memory_contexts
 WHERE name LIKE 'almanac row cache%';


-- a key read again survives the generations that let the others go: 4000
-- keys read for the first time, each beside the hot key; without moving a
-- hit into the current generation the hot key would go every other one
INSERT INTO rc SELECT g, md5(g::text) FROM generate_series(10001, 14000) g;
SELECT rc_mark();
SELECT count((SELECT v FROM rc WHERE k = 7 + 0 * g)) AS hot,
	   count((SELECT v FROM rc WHERE k = g)) AS cold
  FROM generate_series(10001, 14000) g;
SELECT hits >= 3998 AS hot_key_kept, misses >= 4000 AS cold_keys_missed,
	   evicted > 3000 AS others_evicted FROM rc_delta();
RESET almanac.reader_row_cache_size;

-- below 64kB nothing is kept
SET almanac.reader_row_cache_size = '32kB';
SELECT rc_mark();
SELECT v FROM rc WHERE k = 11;
SELECT v FROM rc WHERE k = 11;
SELECT hits, misses FROM rc_delta();
RESET almanac.reader_row_cache_size;

-- the setting takes a size
SET almanac.reader_row_cache_size = '-1';
SET almanac.reader_row_cache_size = 'lots';

DROP FOREIGN TABLE rc;
SELECT almanac.drop_column_family('rc');
DROP TABLE rc_heap;
DROP FUNCTION rc_delta(), rc_mark();
