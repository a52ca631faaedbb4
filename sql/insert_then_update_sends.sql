-- Sends of the transaction's batch that insert_then_update does not reach:
-- a statement running inside an UPDATE (a function it calls) whose writes
-- send the batch, the outer UPDATE having combined a write with the
-- transaction's INSERT of a key (kv/xact.c, ship_earlier_than).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS almanac;
RESET client_min_messages;

CREATE FOREIGN TABLE its (k int, s text) SERVER almanac_store
	OPTIONS (key_prefix 'its', key_columns 'k');
CREATE FOREIGN TABLE its_other (k int, s text) SERVER almanac_store
	OPTIONS (key_prefix 'its_other', key_columns 'k');
CREATE TABLE its_heap (k int PRIMARY KEY, s text);
CREATE TABLE its_heap_other (k int PRIMARY KEY, s text);

-- writes big rows into another table of the store, past write_batch_size
CREATE FUNCTION its_fill(tbl regclass) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('INSERT INTO %s SELECT g, repeat(''y'', 1000) FROM generate_series(1, 100) g', tbl);
	RETURN '';
END $$;
-- writes a few rows, each statement's batch below write_batch_size, the
-- transaction's past it
CREATE FUNCTION its_fill_small(tbl regclass) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..100 LOOP
		EXECUTE format('INSERT INTO %s VALUES ($1, repeat(''z'', 1000))', tbl) USING i;
	END LOOP;
	RETURN '';
END $$;

SET almanac.write_batch_size = '64kB';

-- the function's statement outgrows write_batch_size (its own early send)
INSERT INTO its VALUES (2, 'a');
INSERT INTO its_heap VALUES (2, 'a');
BEGIN;
INSERT INTO its VALUES (1, 'new');
UPDATE its SET s = s || CASE WHEN k = 2 THEN its_fill('its_other') ELSE 'u' END;
COMMIT;
BEGIN;
INSERT INTO its_heap VALUES (1, 'new');
UPDATE its_heap SET s = s || CASE WHEN k = 2 THEN its_fill('its_heap_other') ELSE 'u' END;
COMMIT;
SELECT * FROM its ORDER BY k;
SELECT * FROM its_heap ORDER BY k;
SELECT count(*) FROM its_other;

-- the function's statements each stay small: the transaction's batch
-- outgrows write_batch_size when one of them ends
DELETE FROM its; DELETE FROM its_other;
DELETE FROM its_heap; DELETE FROM its_heap_other;
INSERT INTO its VALUES (2, 'a');
BEGIN;
INSERT INTO its VALUES (1, 'new');
UPDATE its SET s = s || CASE WHEN k = 2 THEN its_fill_small('its_other') ELSE 'u' END;
COMMIT;
SELECT * FROM its ORDER BY k;
SELECT count(*) FROM its_other;

RESET almanac.write_batch_size;

-- mirror writes of a heap table the function writes, sent without waiting
-- past almanac.mirror_send_size
INSERT INTO almanac.chains (chain_id, name) VALUES ('its', 'insert then update sends');
CREATE FUNCTION its_blocks() RETURNS text LANGUAGE sql AS $$
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	SELECT 'its', n, '0x' || lpad(to_hex(n), 64, '0'), '0x' || lpad(to_hex(n + 100000), 64, '0'),
		   timestamptz '2024-01-01 00:00:00+00' + n * interval '12 s'
	  FROM generate_series(1, 40) n;
	SELECT '' $$;
DELETE FROM its;
INSERT INTO its VALUES (2, 'a');
SET almanac.mirror_send_size = '1kB';
BEGIN;
INSERT INTO its VALUES (1, 'new');
UPDATE its SET s = s || CASE WHEN k = 2 THEN its_blocks() ELSE 'u' END;
COMMIT;
RESET almanac.mirror_send_size;
SELECT * FROM its ORDER BY k;
SELECT count(*) FROM almanac.blocks WHERE chain_id = 'its';
SELECT count(*) FROM almanac.verify('almanac.blocks', 'its');
DELETE FROM almanac.blocks WHERE chain_id = 'its';
DELETE FROM almanac.chains WHERE chain_id = 'its';
DROP FUNCTION its_blocks;

DROP FOREIGN TABLE its, its_other;
DROP TABLE its_heap, its_heap_other;
DROP FUNCTION its_fill, its_fill_small;
