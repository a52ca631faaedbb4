-- COPY FROM into a foreign table by SST files the store owner ingests (src/store/bulk.h)
CREATE FOREIGN TABLE bulk_blocks (chain_id text, block_number bigint, block_hash text, gas_used bigint)
	SERVER almanac_store OPTIONS (column_family 'bulk', key_prefix 'block',
								  key_columns 'chain_id, block_number');
CREATE TABLE bulk_source (chain_id text, block_number bigint, block_hash text, gas_used bigint,
	PRIMARY KEY (chain_id, block_number));
INSERT INTO bulk_source
	SELECT 'eth', n, md5(n::text), CASE WHEN n % 10 <> 0 THEN n * 7 END
	FROM generate_series(1, 5000) AS n;
-- in random order (the owner sorts), in a file beside the test's results
\getenv abs_builddir PG_ABS_BUILDDIR
\set rows_file :abs_builddir '/results/fdw_bulk_rows.tsv'
COPY (SELECT * FROM bulk_source ORDER BY random()) TO :'rows_file';

-- SST files of the column family; rows loaded row by row are in memtables
CREATE FUNCTION bulk_files(cf text) RETURNS bigint LANGUAGE sql AS $$
	SELECT coalesce(sum(n), 0) FROM almanac.store_properties, unnest(sst_files_per_level) AS n
	WHERE column_family = cf $$;

SHOW almanac.bulk_copy;
SELECT bulk_files('bulk') AS files_before;
COPY bulk_blocks FROM :'rows_file';
SELECT bulk_files('bulk') > 0 AS ingested_files;
-- every row, NULLs included, as in the heap table
SELECT count(*) FROM bulk_blocks;
SELECT count(*) AS differences FROM (
	(SELECT * FROM bulk_blocks EXCEPT SELECT * FROM bulk_source)
	UNION ALL
	(SELECT * FROM bulk_source EXCEPT SELECT * FROM bulk_blocks)) AS d;
SELECT * FROM bulk_blocks WHERE chain_id = 'eth' AND block_number IN (1, 10, 5000) ORDER BY 2;
SELECT block_number FROM bulk_blocks WHERE chain_id = 'eth' ORDER BY block_number DESC LIMIT 2;
-- the loaded rows are rows like any other: update, delete
UPDATE bulk_blocks SET gas_used = -1 WHERE chain_id = 'eth' AND block_number = 2;
DELETE FROM bulk_blocks WHERE chain_id = 'eth' AND block_number = 3;
SELECT * FROM bulk_blocks WHERE chain_id = 'eth' AND block_number BETWEEN 1 AND 4 ORDER BY 2;

-- small chunks: several files, their key ranges overlap (random order), and
-- the owner checks each chunk's keys
CREATE FOREIGN TABLE bulk_chunks (chain_id text, block_number bigint, block_hash text, gas_used bigint)
	SERVER almanac_store OPTIONS (column_family 'bulk2', key_prefix 'block',
								  key_columns 'chain_id, block_number');
SET almanac.write_batch_size = 64;
COPY bulk_chunks FROM :'rows_file';
RESET almanac.write_batch_size;
SELECT bulk_files('bulk2') > 1 AS several_files;
SELECT count(*), sum(gas_used), count(DISTINCT block_hash) FROM bulk_chunks;
SELECT sum(gas_used) AS expected_sum FROM bulk_source;

-- keys that exist: the chunk goes row by row; a duplicate is 23505
COPY bulk_blocks FROM stdin;
eth	5001	new	1
eth	1	dup	1
\.
SELECT count(*) FROM bulk_blocks WHERE block_number > 5000;
-- new keys interleaved with existing ones are loaded row by row
COPY bulk_blocks FROM stdin;
eth	3	again	3
eth	5002	new	2
\.
SELECT * FROM bulk_blocks WHERE chain_id = 'eth' AND block_number IN (3, 5002) ORDER BY 2;

-- the same key twice in one COPY: 23505 and nothing is loaded
COPY bulk_blocks FROM stdin;
bsc	1	a	1
bsc	2	b	2
bsc	1	c	3
\.
SELECT count(*) FROM bulk_blocks WHERE chain_id = 'bsc';
-- a NULL key column
COPY bulk_blocks FROM stdin;
bsc	\N	a	1
\.

-- an upsert table: the later row of a key wins
CREATE FOREIGN TABLE bulk_state (chain_id text, account text, balance numeric)
	SERVER almanac_store OPTIONS (column_family 'bulk', key_prefix 'account',
								  key_columns 'chain_id, account', key_attribute 'state',
								  upsert 'true');
COPY bulk_state FROM stdin;
eth	0xb	1
eth	0xa	1
eth	0xa	2
eth	0xb	3
eth	0xc	1
\.
SELECT * FROM bulk_state ORDER BY account;

-- transactions: a rolled-back COPY leaves nothing, ROLLBACK TO SAVEPOINT
-- undoes the COPY after it, the transaction reads its own loaded rows
BEGIN;
COPY bulk_blocks FROM stdin;
op	1	a	1
op	2	b	2
\.
SELECT count(*) FROM bulk_blocks WHERE chain_id = 'op';
ROLLBACK;
SELECT count(*) FROM bulk_blocks WHERE chain_id = 'op';
BEGIN;
COPY bulk_blocks FROM stdin;
op	1	kept	1
\.
SAVEPOINT s;
COPY bulk_blocks FROM stdin;
op	2	undone	2
\.
ROLLBACK TO s;
UPDATE bulk_blocks SET gas_used = 10 WHERE chain_id = 'op' AND block_number = 1;
COMMIT;
SELECT * FROM bulk_blocks WHERE chain_id = 'op' ORDER BY 2;
-- the keys of a rolled-back load (versions of aborted transactions only)
-- are loaded again by a file
SELECT bulk_files('bulk') AS files_before \gset
COPY bulk_blocks FROM stdin;
op	2	reloaded	2
\.
SELECT bulk_files('bulk') > :files_before AS reloaded_by_file;
SELECT * FROM bulk_blocks WHERE chain_id = 'op' ORDER BY 2;

-- the transaction's earlier buffered writes go first: a key it inserted is
-- a duplicate, a key it deleted can be loaded
BEGIN;
INSERT INTO bulk_blocks VALUES ('base', 1, 'inserted', 1);
COPY bulk_blocks FROM stdin;
base	2	copied	1
base	1	copied	1
\.
ROLLBACK;
BEGIN;
DELETE FROM bulk_blocks WHERE chain_id = 'op' AND block_number = 2;
COPY bulk_blocks FROM stdin;
op	2	copied after delete	2
\.
COMMIT;
SELECT * FROM bulk_blocks WHERE chain_id = 'op' ORDER BY 2;

-- off, or with a row trigger: the per-row path (no new files)
CREATE FOREIGN TABLE bulk_rows (k bigint, v text)
	SERVER almanac_store OPTIONS (column_family 'bulk3', key_prefix 'r', key_columns 'k');
SET almanac.bulk_copy = off;
COPY bulk_rows FROM stdin;
1	one
2	two
\.
RESET almanac.bulk_copy;
CREATE FUNCTION bulk_upper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.v := upper(NEW.v); RETURN NEW; END $$;
CREATE TRIGGER bulk_upper BEFORE INSERT ON bulk_rows FOR EACH ROW EXECUTE FUNCTION bulk_upper();
COPY bulk_rows FROM stdin;
3	three
\.
SELECT bulk_files('bulk3') AS files;
SELECT * FROM bulk_rows ORDER BY k;
DROP TRIGGER bulk_upper ON bulk_rows;
COPY bulk_rows FROM stdin;
4	four
\.
SELECT bulk_files('bulk3') AS files;
SELECT * FROM bulk_rows ORDER BY k;

-- a partitioned table with foreign partitions: rows alternate between two
-- bulk loads, each with chunks of its own
CREATE TABLE bulk_parted (chain_id text, block_number bigint, block_hash text, gas_used bigint)
	PARTITION BY LIST (chain_id);
CREATE FOREIGN TABLE bulk_parted_eth PARTITION OF bulk_parted FOR VALUES IN ('eth')
	SERVER almanac_store OPTIONS (column_family 'bulk4', key_prefix 'pe',
								  key_columns 'chain_id, block_number');
CREATE FOREIGN TABLE bulk_parted_op PARTITION OF bulk_parted FOR VALUES IN ('op')
	SERVER almanac_store OPTIONS (column_family 'bulk4', key_prefix 'po',
								  key_columns 'chain_id, block_number');
\set parted_file :abs_builddir '/results/fdw_bulk_parted.tsv'
COPY (SELECT CASE WHEN n % 2 = 0 THEN 'eth' ELSE 'op' END, n, md5(n::text), n
	  FROM generate_series(1, 6000) AS n) TO :'parted_file';
SET almanac.write_batch_size = 64;
COPY bulk_parted FROM :'parted_file';
SELECT bulk_files('bulk4') > 2 AS several_files;
SELECT tableoid::regclass, count(*), sum(gas_used) FROM bulk_parted GROUP BY 1 ORDER BY 1;

-- an error after chunks went to the owner: nothing stays, the next COPY loads
\set bad_file :abs_builddir '/results/fdw_bulk_bad.tsv'
COPY (SELECT 'eth', n, md5(n::text), n FROM generate_series(100001, 106000) AS n
	  UNION ALL SELECT 'eth', NULL, 'bad', 0) TO :'bad_file';
COPY bulk_parted FROM :'bad_file';
SELECT count(*) FROM bulk_parted WHERE block_number > 100000;
COPY bulk_parted FROM stdin;
eth	100001	after the error	1
\.
SELECT * FROM bulk_parted WHERE block_number > 100000;
RESET almanac.write_batch_size;

-- a chunk damaged on its way to the owner (its last row runs past its end):
-- data_corrupted (XX001), naming what runs past the end, and nothing stays
SET almanac.fault_point = 'bulk_chunk_truncated';
\set VERBOSITY sqlstate
COPY bulk_blocks FROM stdin;
eth	7001	damaged	1
eth	7002	damaged	2
\.
\set VERBOSITY default
COPY bulk_blocks FROM stdin;
eth	7001	damaged	1
\.
RESET almanac.fault_point;
SELECT count(*) FROM bulk_blocks WHERE block_number > 7000;
COPY bulk_blocks FROM stdin;
eth	7001	whole	1
\.
SELECT * FROM bulk_blocks WHERE block_number > 7000;
