-- bench/fresh/probe.sql: what a new connection's lookups cost its backend.
-- CPU time of this backend (first field of /proc/self/schedstat, ns) around:
-- its first lookup, of key 1, which every probe reads first (so the shared
-- row cache holds it after the warm-up: no reader is opened for it), then a
-- lookup of another key that the shared row cache may not answer (it is
-- off for that lookup, so the reader is opened and read), the next
-- 2000 lookups of keys it has not read (cold), 2000 more, then the first
-- 2000 again (row cache hits), and its RssAnon at the end.  run.sh sets tbl (a table name, used
-- as is), n (rows) and s (a per-round offset, so that rounds read different
-- keys).  The key is a bigint variable, a parameter of the lookup, which is
-- the shape the router answers from a mirror.
\set cpu 'SELECT split_part(pg_read_file(''/proc/self/schedstat''), '' '', 1)::bigint'
\set loop 'SELECT format(''DO $$ DECLARE h text; k bigint; BEGIN FOR i IN %s..%s LOOP k := (i * 7919 + %s) %% %s + 1; SELECT block_hash INTO h FROM %s WHERE chain_id = ''''eth'''' AND block_number = k; END LOOP; END $$'', '
:cpu AS c0 \gset
SELECT block_hash FROM :tbl WHERE chain_id = 'eth' AND block_number = 1 \gset
:cpu AS ck \gset
SET almanac.shared_row_cache = off;
SELECT block_hash FROM :tbl WHERE chain_id = 'eth' AND block_number = :s % :n + 2 \gset
RESET almanac.shared_row_cache;
:cpu AS c1 \gset
:loop 1, 2000, :s, :n, :'tbl') \gexec
:cpu AS c2 \gset
:loop 2001, 4000, :s, :n, :'tbl') \gexec
:cpu AS c3 \gset
:loop 1, 2000, :s, :n, :'tbl') \gexec
:cpu AS c4 \gset
SELECT substring(pg_read_file('/proc/self/status') FROM 'RssAnon:\s+(\d+)') AS anon \gset
\echo :c0 :ck :c1 :c2 :c3 :c4 :anon
