-- tables for bench/commit/run.sh: the same rows in a heap table with a btree
-- primary key and in an almanac_rocksdb foreign table
CREATE EXTENSION almanac;
CREATE TABLE commit_heap (chain_id text, block_number bigint, v bigint,
	PRIMARY KEY (chain_id, block_number));
CREATE FOREIGN TABLE commit_kv (chain_id text, block_number bigint, v bigint)
	SERVER almanac_store OPTIONS (key_prefix 'commit', key_columns 'chain_id, block_number');
