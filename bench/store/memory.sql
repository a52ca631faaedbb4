-- RSS of this backend (/proc/self/status of the backend = /proc/<pg_backend_pid()>/status)
-- before and after its first foreign-table read.  :key is set by run.sh.
SELECT pg_backend_pid() AS pid \gset
SELECT substring(pg_read_file('/proc/self/status') FROM 'VmRSS:\s+(\d+)')::int AS rss0,
       substring(pg_read_file('/proc/self/status') FROM 'RssAnon:\s+(\d+)')::int AS anon0 \gset
SELECT block_hash FROM bench_heap WHERE chain_id = 'eth' AND block_number = :key \gset
SELECT substring(pg_read_file('/proc/self/status') FROM 'VmRSS:\s+(\d+)')::int AS rss1,
       substring(pg_read_file('/proc/self/status') FROM 'RssAnon:\s+(\d+)')::int AS anon1 \gset
SELECT block_hash FROM bench_kv WHERE chain_id = 'eth' AND block_number = :key \gset
SELECT substring(pg_read_file('/proc/self/status') FROM 'VmRSS:\s+(\d+)')::int AS rss2,
       substring(pg_read_file('/proc/self/status') FROM 'RssAnon:\s+(\d+)')::int AS anon2 \gset
-- then 1000 more point reads (plpgsql: each is a Get with a parameter)
DO $$
DECLARE h text;
BEGIN
	FOR i IN 1..1000 LOOP
		SELECT block_hash INTO h FROM bench_kv WHERE chain_id = 'eth' AND block_number = i * 997;
	END LOOP;
END $$;
SELECT substring(pg_read_file('/proc/self/status') FROM 'VmRSS:\s+(\d+)')::int AS rss3,
       substring(pg_read_file('/proc/self/status') FROM 'RssAnon:\s+(\d+)')::int AS anon3 \gset
-- the row cache that those reads filled
SELECT coalesce(sum(total_bytes), 0) AS rowcache FROM pg_backend_memory_contexts
 WHERE name LIKE 'almanac row cache%' \gset
\echo :pid :rss0 :anon0 :rss1 :anon1 :rss2 :anon2 :rss3 :anon3 :rowcache
