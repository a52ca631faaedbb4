-- Renamed settings: almanac.reader_cache_size is almanac.reader_block_cache_size
-- (the block cache of each backend's reader).  The old name still works for
-- this release: setting it warns and sets the new one; the one assigned last
-- in the configuration wins; unsetting it gives the new name its own value
-- back.  A reload is seen by the next connection (\c).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS almanac;
RESET client_min_messages;
SHOW almanac.reader_block_cache_size;

-- the old name: a warning that names the new one, and the value forwarded
ALTER SYSTEM SET almanac.reader_cache_size = '2MB';
SELECT pg_reload_conf();
\c
SHOW almanac.reader_block_cache_size;
SELECT name, setting, unit FROM pg_settings
 WHERE name IN ('almanac.reader_block_cache_size', 'almanac.reader_cache_size') ORDER BY name;

-- the new name set after it wins, without a warning
ALTER SYSTEM SET almanac.reader_block_cache_size = '3MB';
SELECT pg_reload_conf();
\c
SHOW almanac.reader_block_cache_size;

-- the old name set again, last, wins again; unset, the new name's own value
-- comes back
ALTER SYSTEM SET almanac.reader_cache_size = '1MB';
SELECT pg_reload_conf();
\c
SHOW almanac.reader_block_cache_size;
ALTER SYSTEM RESET almanac.reader_cache_size;
SELECT pg_reload_conf();
\c
SHOW almanac.reader_block_cache_size;

-- neither set: the default
ALTER SYSTEM SET almanac.reader_cache_size = '1MB';
ALTER SYSTEM RESET almanac.reader_block_cache_size;
SELECT pg_reload_conf();
\c
SHOW almanac.reader_block_cache_size;
ALTER SYSTEM RESET almanac.reader_cache_size;
SELECT pg_reload_conf();
\c
SHOW almanac.reader_block_cache_size;

-- a bad value of the old name is refused as one of the new would be
ALTER SYSTEM SET almanac.reader_cache_size = -2;

