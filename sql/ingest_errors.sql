-- Bad input: each a clear error naming the field and the block, with SQLSTATE
-- 22023 (or a better fit), and nothing half-ingested.

\set SHOW_CONTEXT never
\getenv abs_srcdir PG_ABS_SRCDIR
\set anvil :abs_srcdir '/test/fixtures/anvil/'
CREATE TABLE fx AS
SELECT name, pg_read_file(:'anvil' || 'b' || name || '.json')::jsonb AS block,
	   pg_read_file(:'anvil' || 'r' || name || '.json')::jsonb AS receipts
  FROM unnest(ARRAY['1', '2', '3']) AS name;
SELECT almanac.ingest_block('anvil', block, receipts) > 0 AS stored FROM fx WHERE name = '1';

-- try(block, receipts) ingests block 2 (or 3) mutated; counts prove nothing
-- was written
CREATE FUNCTION try_block(b jsonb, r jsonb) RETURNS text LANGUAGE sql AS
$$ SELECT sqlstate_of(format('SELECT almanac.ingest_block(%L, %L::jsonb, %L::jsonb)', 'anvil', b, r)) $$;
CREATE VIEW counts AS
SELECT (SELECT count(*) FROM almanac.blocks) AS blocks, (SELECT count(*) FROM almanac.transactions) AS txs,
	   (SELECT count(*) FROM almanac.events) AS events, (SELECT count(*) FROM almanac.chains) AS chains;
SELECT * FROM counts;

-- malformed JSON never reaches almanac: the jsonb input itself refuses it
SELECT sqlstate_of($$SELECT almanac.ingest_block('anvil', '{"number": "0x2", ', '[]')$$);
-- not an object / not an array
SELECT sqlstate_of($$SELECT almanac.ingest_block('anvil', '[1]', '[]')$$);
SELECT sqlstate_of($$SELECT almanac.ingest_block('anvil', NULL, '[]')$$);
SELECT try_block(block, '{}') FROM fx WHERE name = '2';
SELECT try_block(block, NULL) FROM fx WHERE name = '2';
SELECT sqlstate_of($$SELECT almanac.ingest_blocks('anvil', '{}', '[]')$$);
SELECT sqlstate_of($$SELECT almanac.ingest_blocks('anvil', '[{}]', '[]')$$);
SELECT sqlstate_of($$SELECT almanac.ingest_blocks('anvil', '[1]', '[[]]')$$);
SELECT sqlstate_of($$SELECT almanac.ingest_block(NULL, '{}', '[]')$$);
-- block-level fields: missing, non-hex, wrong length; a hash-only block
SELECT try_block(block - 'number', receipts) FROM fx WHERE name = '2';
SELECT try_block(block - 'hash', receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{timestamp}', '"1700000024"'), receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{number}', '"0xzz"'), receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{number}', '2'), receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{number}', '"0x"'), receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{parentHash}', '"0x1234"'), receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{transactions}', '["0x0d0435e97d81a2fd938ac4a09771182ac7826c77c5dfd32ec4469ed457b9e25c"]'), receipts)
  FROM fx WHERE name = '2';
-- transaction fields
SELECT try_block(block #- '{transactions,1,from}', receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{transactions,1,value}', '"0x1g"'), receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{transactions,1,value}', ('"0x1' || repeat('0', 64) || '"')::jsonb), receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{transactions,1,nonce}', '"0x8000000000000000"'), receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{transactions,1,input}', '"0xabc"'), receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{transactions,1,to}', '"0x3c44cdddb6a900fa2b585dd299e03d12fa4293"'), receipts) FROM fx WHERE name = '2';
-- receipts not belonging to the block: another block's, one missing, one
-- extra, another block hash
SELECT try_block(b.block, r.receipts) FROM fx b, fx r WHERE b.name = '2' AND r.name = '3';
SELECT try_block(block, receipts - 1) FROM fx WHERE name = '2';
SELECT try_block(block, receipts || jsonb_build_array(receipts->0)) FROM fx WHERE name = '2';
SELECT try_block(block, jsonb_set(receipts, '{1,blockHash}', to_jsonb('0x' || repeat('ab', 32)))) FROM fx WHERE name = '2';
-- receipt fields: missing gasUsed, non-hex status, missing logs
SELECT try_block(block, receipts #- '{0,gasUsed}') FROM fx WHERE name = '2';
SELECT try_block(block, jsonb_set(receipts, '{1,status}', '"yes"')) FROM fx WHERE name = '2';
SELECT try_block(block, receipts #- '{0,logs}') FROM fx WHERE name = '2';
-- logs: one naming a transaction that is not in the block, bad topics, bad
-- log index, five topics
SELECT try_block(block, jsonb_set(receipts, '{2,logs,1,transactionHash}', to_jsonb('0x' || repeat('cd', 32)))) FROM fx WHERE name = '3';
SELECT try_block(block, jsonb_set(receipts, '{2,logs,1,topics}', '["0x12"]')) FROM fx WHERE name = '3';
SELECT try_block(block, jsonb_set(receipts, '{2,logs,1,topics}', '"0x12"')) FROM fx WHERE name = '3';
SELECT try_block(block, jsonb_set(receipts, '{2,logs,3,topics}', (receipts #> '{2,logs,3,topics}') || '["0x0000000000000000000000000000000000000000000000000000000000000000"]'))
  FROM fx WHERE name = '3';
SELECT try_block(block, receipts #- '{2,logs,1,logIndex}') FROM fx WHERE name = '3';
SELECT try_block(block, receipts #- '{2,logs,1,address}') FROM fx WHERE name = '3';
-- a log a reorg removed (removed: true, as eth_getLogs sends them) is not
-- the block's; removed false or null is
SELECT try_block(block, jsonb_set(receipts, '{2,logs,1,removed}', 'true')) FROM fx WHERE name = '3';
SELECT try_block(block, jsonb_set(receipts, '{2,logs,1,removed}', '"yes"')) FROM fx WHERE name = '3';
-- values that parse but do not fit their column, and logs that are not
-- arrays of objects
SELECT try_block(block, jsonb_set(receipts, '{2,logs,1,logIndex}', '"0x80000000"')) FROM fx WHERE name = '3';
SELECT try_block(block, jsonb_set(receipts, '{2,logs,1}', '"0x12"')) FROM fx WHERE name = '3';
SELECT try_block(block, jsonb_set(receipts, '{2,logs}', 'null')) FROM fx WHERE name = '3';
SELECT try_block(block, jsonb_set(receipts, '{1,status}', '"0x2"')) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{transactions,1,type}', '"0x10000"'), receipts) FROM fx WHERE name = '2';
SELECT try_block(jsonb_set(block, '{timestamp}', '"0x7fffffffffffffff"'), receipts) FROM fx WHERE name = '2';
-- a transaction of another EVM chain (anvil is 31337 = 0x7a69)
SELECT try_block(jsonb_set(block, '{transactions,0,chainId}', '"0x1"'), receipts) FROM fx WHERE name = '2';
-- a new chain whose batch carries two chain ids: the smaller would be the
-- chain's, the first transaction with the other is the error
SELECT sqlstate_of(format('SELECT almanac.ingest_blocks(%L, %L::jsonb, %L::jsonb)', 'fresh',
		jsonb_build_array(b2.block, jsonb_set(b3.block, '{transactions,1,chainId}', '"0x1"')),
		jsonb_build_array(b2.receipts, b3.receipts)))
  FROM fx b2, fx b3 WHERE b2.name = '2' AND b3.name = '3';
-- a batch that is not contiguous, or not in order
SELECT sqlstate_of(format('SELECT almanac.ingest_blocks(%L, %L::jsonb, %L::jsonb)', 'anvil',
		jsonb_build_array(b3.block, b2.block), jsonb_build_array(b3.receipts, b2.receipts)))
  FROM fx b2, fx b3 WHERE b2.name = '2' AND b3.name = '3';
SELECT sqlstate_of(format('SELECT almanac.ingest_blocks(%L, %L::jsonb, %L::jsonb)', 'anvil',
		jsonb_build_array(b1.block, b3.block), jsonb_build_array(b1.receipts, b3.receipts)))
  FROM fx b1, fx b3 WHERE b1.name = '1' AND b3.name = '3';
SELECT sqlstate_of($$SELECT almanac.ingest_blocks('anvil', '[{}]', '[[], []]')$$);
-- a bad value in the last block of a batch leaves the first one unwritten
SELECT sqlstate_of(format('SELECT almanac.ingest_blocks(%L, %L::jsonb, %L::jsonb)', 'anvil',
		jsonb_build_array(b2.block, jsonb_set(b3.block, '{transactions,6,value}', '"-1"')),
		jsonb_build_array(b2.receipts, b3.receipts)))
  FROM fx b2, fx b3 WHERE b2.name = '2' AND b3.name = '3';
-- an unknown chain whose first block is bad is not registered
SELECT sqlstate_of(format('SELECT almanac.ingest_block(%L, %L::jsonb, %L::jsonb)', 'fresh',
		block - 'timestamp', receipts)) FROM fx WHERE name = '2';
-- a chain id that is not valid for almanac.chains
SELECT sqlstate_of(format('SELECT almanac.ingest_block(%L, %L::jsonb, %L::jsonb)', 'has space',
		block, receipts)) FROM fx WHERE name = '2';
-- the internal decoders, called directly, refuse what _ingest never passes
-- them with an error, not a crash
SELECT sqlstate_of($$SELECT * FROM almanac._ingest_transactions('[1]', '[[]]', '{1}', false)$$);
SELECT sqlstate_of($$SELECT * FROM almanac._ingest_transactions('[]', '[]', '{1}', false)$$);
SELECT sqlstate_of($$SELECT * FROM almanac._ingest_transactions('{}', '[]', '{1}', false)$$);
SELECT sqlstate_of($$SELECT * FROM almanac._ingest_logs('[{}]', '{1}', '{0x00}', '{1}', 0, false)$$);
SELECT sqlstate_of($$SELECT * FROM almanac._ingest_logs('[[]]', '{1,2}', '{0x00,0x00}', '{1}', 0, false)$$);
SELECT sqlstate_of(format($$SELECT * FROM almanac._ingest_logs(%L, '{5}', '{0x00}', '{1}', 0, false)$$,
		jsonb_build_array(jsonb_build_array(jsonb_build_object('transactionHash', '0x' || repeat('ab', 32),
															   'logs', '[]'::jsonb)))));
SELECT sqlstate_of($$SELECT almanac._ingest_chain_id('c', '[]', '{1}', NULL, false)$$);

-- logs that disagree with their block, repeated log indexes and repeated
-- transactions: 22023 naming the block and the item (before: accepted, or a
-- unique violation naming internal ids)
SELECT try_block(block, jsonb_set(receipts, '{2,logs,1,blockHash}', to_jsonb('0x' || repeat('ab', 32)))) FROM fx WHERE name = '3';
SELECT try_block(block, jsonb_set(receipts, '{2,logs,1,blockNumber}', '"0x2"')) FROM fx WHERE name = '3';
SELECT try_block(block, jsonb_set(receipts, '{3,logs,0,logIndex}', '"0x4"')) FROM fx WHERE name = '3';
SELECT try_block(block, jsonb_set(receipts, '{2,logs,1,logIndex}', '"0x8"')) FROM fx WHERE name = '3';
SELECT try_block(jsonb_set(block, '{transactions,1}', block->'transactions'->0),
				 jsonb_set(receipts, '{1}', receipts->0)) FROM fx WHERE name = '3';
SELECT error_of(format('SELECT almanac.ingest_blocks(%L, %L::jsonb, %L::jsonb)', 'anvil',
		jsonb_build_array(b2.block, jsonb_set(b3.block, '{transactions,0}', b2.block->'transactions'->1)),
		jsonb_build_array(b2.receipts, jsonb_set(b3.receipts, '{0}',
			jsonb_set(b2.receipts->1, '{blockHash}', b3.block->'hash')))))
  FROM fx b2, fx b3 WHERE b2.name = '2' AND b3.name = '3';
SELECT almanac.ingest_block('anvil', block, jsonb_set(receipts, '{3,logs,0,logIndex}', '"0x4"'))
  FROM fx WHERE name = '3';
-- a transaction stored in another block of the chain (block 1)
SELECT almanac.ingest_block('anvil', jsonb_set(b2.block, '{transactions,1}', b1.block->'transactions'->2),
		jsonb_set(b2.receipts, '{1}', jsonb_set(b1.receipts->2, '{blockHash}', b2.block->'hash')))
  FROM fx b1, fx b2 WHERE b1.name = '1' AND b2.name = '2';

-- one error in full: message, detail, hint
SELECT almanac.ingest_block('anvil', block, jsonb_set(receipts, '{2,logs,1,removed}', 'true'))
  FROM fx WHERE name = '3';
SELECT almanac.ingest_block('anvil', block, jsonb_set(receipts, '{1,blockHash}', to_jsonb('0x' || repeat('ab', 32))))
  FROM fx WHERE name = '2';
SELECT almanac.ingest_block('anvil', jsonb_set(block, '{transactions,0,chainId}', '"0x1"'), receipts)
  FROM fx WHERE name = '2';

-- nothing of all this was written
SELECT * FROM counts;
-- removed null counts as absent: the blocks go in (and are rolled back)
BEGIN;
SELECT almanac.ingest_blocks('anvil', jsonb_agg(block ORDER BY name),
		jsonb_agg(CASE name WHEN '3' THEN jsonb_set(receipts, '{2,logs,1,removed}', 'null') ELSE receipts END ORDER BY name)) AS stored
  FROM fx WHERE name IN ('2', '3');
ROLLBACK;
-- and the unmodified blocks still go in
SELECT almanac.ingest_blocks('anvil', jsonb_agg(block ORDER BY name), jsonb_agg(receipts ORDER BY name)) AS stored
  FROM fx WHERE name IN ('2', '3');
SELECT * FROM counts;

-- an unknown chain locks nothing and gives NULL, not a row of nulls
SELECT almanac._lock_chain('no such chain') IS DISTINCT FROM NULL AS a_row;

DELETE FROM almanac.chains;
DROP VIEW counts;
DROP FUNCTION try_block;
DROP TABLE fx;
