-- The router's query corpus (sql/router.sql runs it with almanac.router on
-- and off; both halves of the expected output are the same).
-- point lookups of blocks: constants, cross-type, parameters, expressions
SELECT chain_id, block_number, block_hash, parent_hash, timestamp, is_finalized, is_safe, metadata
  FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2;
SELECT block_hash, block_number + 1 AS next, metadata->>'n' AS n FROM almanac.blocks WHERE block_number = 3 AND chain_id = 'c1';
SELECT block_hash, is_finalized FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2::smallint;
SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 99;
SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = -1;
SELECT * FROM almanac.blocks WHERE chain_id = 'nope' AND block_number = 1;
SELECT row_to_json(b)->'block_hash' AS whole_row FROM almanac.blocks b WHERE chain_id = 'c2' AND block_number = 1;
SELECT count(*) FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 1;
-- a residual condition
SELECT block_number FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2 AND is_safe;
SELECT block_number FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 2 AND NOT is_safe;
-- arrays
SELECT block_number, block_hash FROM almanac.blocks WHERE chain_id = 'c1' AND block_number IN (3, 1, 3, 42, -5);
SELECT block_number FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = ANY ('{2,4,NULL}'::bigint[]);
-- latest block
SELECT block_number, block_hash FROM almanac.blocks WHERE chain_id = 'c1' ORDER BY block_number DESC LIMIT 1;
SELECT block_number FROM almanac.blocks WHERE chain_id = 'c2' ORDER BY block_number DESC LIMIT 1;
SELECT block_number FROM almanac.blocks WHERE chain_id = 'none' ORDER BY block_number DESC LIMIT 1;
-- transactions by hash
SELECT tx_hash, block_number, value, data FROM almanac.transactions
 WHERE chain_id = 'c1' AND tx_hash = '0x1111111111111111111111111111111111111111111111111111111111111102';
SELECT tx_hash FROM almanac.transactions
 WHERE chain_id = 'c1' AND tx_hash = '0x1111111111111111111111111111111111111111111111111111111111111199';
SELECT tx_hash, block_number FROM almanac.transactions WHERE chain_id = 'c1' AND tx_hash IN
 ('0x1111111111111111111111111111111111111111111111111111111111111101',
  '0x1111111111111111111111111111111111111111111111111111111111111103');
-- latest account state
SELECT block_number, state FROM almanac.account_states
 WHERE chain_id = 'c1' AND account = '0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' ORDER BY block_number DESC LIMIT 1;
SELECT chain_id, account, block_number, state FROM almanac.account_states
 WHERE account = '0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' AND chain_id = 'c1' ORDER BY block_number DESC LIMIT 1;
SELECT state FROM almanac.account_states
 WHERE chain_id = 'c1' AND account = '0xcccccccccccccccccccccccccccccccccccccccc' ORDER BY block_number DESC LIMIT 1;
-- prepared statements, past the plan cache's custom plans
PREPARE blk(text, bigint) AS SELECT block_number, block_hash FROM almanac.blocks WHERE chain_id = $1 AND block_number = $2;
EXECUTE blk('c1', 1); EXECUTE blk('c1', 2); EXECUTE blk('c1', 3); EXECUTE blk('c1', 4);
EXECUTE blk('c1', 5); EXECUTE blk('c1', 1); EXECUTE blk('c2', 1); EXECUTE blk(NULL, 1);
PREPARE latest(text) AS SELECT block_number FROM almanac.blocks WHERE chain_id = $1 ORDER BY block_number DESC LIMIT 1;
EXECUTE latest('c1'); EXECUTE latest('c2'); EXECUTE latest('c1'); EXECUTE latest('c2');
EXECUTE latest('c1'); EXECUTE latest('c2'); EXECUTE latest('c3');
PREPARE txs(text, text[]) AS SELECT block_number FROM almanac.transactions WHERE chain_id = $1 AND tx_hash = ANY ($2);
EXECUTE txs('c1', ARRAY['0x1111111111111111111111111111111111111111111111111111111111111103',
						'0x1111111111111111111111111111111111111111111111111111111111111102']);
DEALLOCATE blk; DEALLOCATE latest; DEALLOCATE txs;
-- PL/pgSQL variables as keys (its parameters come through its fetch hook),
-- past the plan cache's custom plans: int4 against the bigint column, NULL,
-- and a text array
CREATE OR REPLACE FUNCTION pg_temp.corpus_vars(c text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
	h text;
	t text;
	n bigint;
	k int;
	s text := '';
	hs text[];
BEGIN
	FOR i IN 0 .. 7 LOOP
		k := CASE WHEN i = 6 THEN NULL ELSE i % 6 END;
		SELECT block_hash INTO h FROM almanac.blocks WHERE chain_id = c AND block_number = k;
		SELECT block_number INTO n FROM almanac.blocks WHERE chain_id = c ORDER BY block_number DESC LIMIT 1;
		hs := ARRAY['0x' || lpad('11' || lpad(k::text, 2, '0'), 64, '1')];
		SELECT tx_hash INTO t FROM almanac.transactions WHERE chain_id = c AND tx_hash = ANY (hs);
		s := s || coalesce(substr(h, 63, 4), '-') || '/' || coalesce(n::text, '-') || '/' || coalesce(right(t, 2), '-') || ' ';
	END LOOP;
	RETURN s;
END
$f$;
SELECT pg_temp.corpus_vars('c1') AS c1, pg_temp.corpus_vars('c2') AS c2, pg_temp.corpus_vars(NULL) AS nul;
-- events of a contract and topic0 over a block range, newest first
SELECT block_number, log_index, topics, data FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number BETWEEN 2 AND 4 ORDER BY block_number DESC, log_index DESC;
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number BETWEEN 2 AND 4 ORDER BY block_number DESC, log_index DESC LIMIT 3;
SELECT block_number, log_index, length(event_type) FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0x8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c'
   AND block_number >= 4 ORDER BY block_number DESC, log_index DESC;
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0x8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c'
   AND block_number > 4::smallint ORDER BY block_number DESC, log_index DESC;
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number < 3 ORDER BY block_number DESC, log_index DESC;
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND 2 >= block_number ORDER BY block_number DESC, log_index DESC;
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'c2' AND contract_address = '0xc2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
 ORDER BY block_number DESC, log_index DESC;
-- without ORDER BY: one row
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2'
   AND event_type = 'anonymous' AND block_number >= 5;
-- empty ranges, odd bounds and limits
SELECT block_number FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number BETWEEN 4 AND 2 ORDER BY block_number DESC, log_index DESC;
SELECT block_number FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number BETWEEN -5 AND 1 ORDER BY block_number DESC, log_index DESC;
SELECT block_number FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number < 0 ORDER BY block_number DESC, log_index DESC;
SELECT block_number FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number > 9223372036854775807 ORDER BY block_number DESC, log_index DESC;
SELECT block_number FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number <= 9223372036854775807 ORDER BY block_number DESC, log_index DESC LIMIT 2;
SELECT block_number FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number >= 1 ORDER BY block_number DESC, log_index DESC LIMIT 0;
SELECT block_number FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number >= 4 ORDER BY block_number DESC, log_index DESC LIMIT ALL;
SELECT block_number FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = 'nope' AND block_number >= 1 ORDER BY block_number DESC, log_index DESC;
-- the edges of the events mirror's descending block_number (keycodec.h)
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number >= 0 AND block_number <= 9223372036854775806 ORDER BY block_number DESC, log_index DESC;
SELECT block_number FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number <= 0 ORDER BY block_number DESC, log_index DESC;
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number BETWEEN 3 AND 3 ORDER BY block_number DESC, log_index DESC;
-- the columns a routed range's plan reads are the only ones decoded: the
-- whole row (less its serial ids), one column past the key's, an expression over two
SELECT to_jsonb(e) - 'id' - 'block_id' AS e FROM almanac.events e
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number BETWEEN 2 AND 3 ORDER BY block_number DESC, log_index DESC;
SELECT timestamp FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number >= 4 ORDER BY block_number DESC, log_index DESC LIMIT 3;
SELECT cardinality(topics) + length(data) AS n, block_id IS NOT NULL AS has_block FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2'
 ORDER BY block_number DESC, log_index DESC LIMIT 4;
-- every key column but log_index (descending): the last log of a block, and some logs
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number = 3 ORDER BY log_index DESC LIMIT 1;
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
   AND event_type = '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'
   AND block_number = 3 AND log_index IN (4, 0, 2, 3);
-- the latest events of a contract, whatever their topic0
SELECT block_number, log_index, event_type, data FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
 ORDER BY block_number DESC, log_index DESC LIMIT 5;
SELECT block_number, log_index, left(event_type, 6) FROM almanac.events
 WHERE chain_id = 'c2' AND contract_address = '0xc2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2'
 ORDER BY block_number DESC, log_index DESC LIMIT 100;
SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
 ORDER BY block_number DESC, log_index DESC LIMIT 0;
SELECT block_number FROM almanac.events
 WHERE chain_id = 'c1' AND contract_address = '0x0000000000000000000000000000000000000000'
 ORDER BY block_number DESC, log_index DESC LIMIT 5;
-- prepared, past the custom plans, NULL and negative parameters
PREPARE evr(text, text, text, bigint, bigint) AS SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = $1 AND contract_address = $2 AND event_type = $3 AND block_number BETWEEN $4 AND $5
 ORDER BY block_number DESC, log_index DESC LIMIT 4;
EXECUTE evr('c1', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd', 1, 5);
EXECUTE evr('c1', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd', 2, 3);
EXECUTE evr('c1', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', '0x8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c', 1, 5);
EXECUTE evr('c1', '0xc2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2', 'anonymous', 0, 9);
EXECUTE evr('c2', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd', 0, 9);
EXECUTE evr('c1', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd', NULL, 5);
EXECUTE evr('c1', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', '0xdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd', -3, 2);
PREPARE evc(text, text, bigint) AS SELECT block_number, log_index FROM almanac.events
 WHERE chain_id = $1 AND contract_address = $2 ORDER BY block_number DESC, log_index DESC LIMIT $3;
EXECUTE evc('c1', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', 3); EXECUTE evc('c1', '0xc2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2', 3);
EXECUTE evc('c2', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', 2); EXECUTE evc('c1', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', 1);
EXECUTE evc('c1', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', NULL); EXECUTE evc('c1', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', 2);
-- (through sqlstate_of: a psql error line would name this file's path)
SELECT sqlstate_of($$EXECUTE evc('c1', '0xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', -1)$$);
DEALLOCATE evr; DEALLOCATE evc;
-- cursors: PostgreSQL makes a cursor declared without SCROLL or NO SCROLL
-- scrollable when its plan can run backward (an index scan can), so such
-- cursors are left to it; NO SCROLL cursors are routed
BEGIN;
DECLARE cur CURSOR FOR SELECT block_number, block_hash FROM almanac.blocks
 WHERE chain_id = 'c1' AND block_number = 2;
FETCH 2 FROM cur;
FETCH BACKWARD 1 FROM cur;
DECLARE cur_ns NO SCROLL CURSOR FOR SELECT block_number FROM almanac.blocks
 WHERE chain_id = 'c1' ORDER BY block_number DESC LIMIT 1;
FETCH 1 FROM cur_ns;
COMMIT;
