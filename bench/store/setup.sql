-- tables for bench/store/run.sh: the same rows in a heap table with a btree
-- primary key and in an almanac_rocksdb foreign table
CREATE EXTENSION almanac;
CREATE TABLE bench_heap (chain_id text, block_number bigint, block_hash text, gas_used bigint,
	PRIMARY KEY (chain_id, block_number));
CREATE FOREIGN TABLE bench_kv (chain_id text, block_number bigint, block_hash text, gas_used bigint)
	SERVER almanac_store OPTIONS (key_prefix 'block', key_columns 'chain_id, block_number');
