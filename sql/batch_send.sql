-- A transaction's writes as they go to the store owner (src/kv/xact.c,
-- batch_foreach): a batch of up to 16 writes is read from its
-- representation, where a key written twice appears twice and only its
-- last write counts; a larger one through RocksDB's iterator.  Every case
-- runs on a heap twin too, and the two must agree.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS almanac;
RESET client_min_messages;
-- two column families whose keys are the same bytes
CREATE FOREIGN TABLE bs1 (k int, v int) SERVER almanac_store
	OPTIONS (column_family 'bs1', key_prefix 'bs', key_columns 'k');
CREATE FOREIGN TABLE bs2 (k int, v int) SERVER almanac_store
	OPTIONS (column_family 'bs2', key_prefix 'bs', key_columns 'k');
CREATE TABLE bs1_heap (k int PRIMARY KEY, v int);
CREATE TABLE bs2_heap (k int PRIMARY KEY, v int);
INSERT INTO bs1 SELECT g, 0 FROM generate_series(1, 40) g;
INSERT INTO bs1_heap SELECT g, 0 FROM generate_series(1, 40) g;
CREATE FUNCTION bs_diff() RETURNS TABLE (t text, k int, v int) LANGUAGE sql AS $$
	(SELECT 'bs1 only', * FROM bs1 EXCEPT SELECT 'bs1 only', * FROM bs1_heap)
	UNION ALL (SELECT 'bs1_heap only', * FROM bs1_heap EXCEPT SELECT 'bs1_heap only', * FROM bs1)
	UNION ALL (SELECT 'bs2 only', * FROM bs2 EXCEPT SELECT 'bs2 only', * FROM bs2_heap)
	UNION ALL (SELECT 'bs2_heap only', * FROM bs2_heap EXCEPT SELECT 'bs2_heap only', * FROM bs2)
	ORDER BY 1, 2 $$;
-- runs stmt on the foreign tables and on the heap twins (%1$s: bs1 or
-- bs1_heap, %2$s: bs2 or bs2_heap)
CREATE PROCEDURE bs_both(stmt text) LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format(stmt, 'bs1', 'bs2');
	EXECUTE format(stmt, 'bs1_heap', 'bs2_heap');
END $$;

-- one key written by two statements: both increments count
BEGIN;
UPDATE bs1 SET v = v + 1 WHERE k = 1;
UPDATE bs1 SET v = v + 10 WHERE k = 1;
UPDATE bs1 SET v = v + 100 WHERE k = 2;
COMMIT;
BEGIN;
UPDATE bs1_heap SET v = v + 1 WHERE k = 1;
UPDATE bs1_heap SET v = v + 10 WHERE k = 1;
UPDATE bs1_heap SET v = v + 100 WHERE k = 2;
COMMIT;
SELECT k, v FROM bs1 WHERE k IN (1, 2) ORDER BY k;

-- inserted then deleted, inserted then updated, deleted then inserted
BEGIN;
CALL bs_both('INSERT INTO %1$s VALUES (101, 1)');
CALL bs_both('DELETE FROM %1$s WHERE k = 101');
CALL bs_both('INSERT INTO %1$s VALUES (102, 1)');
CALL bs_both('UPDATE %1$s SET v = 7 WHERE k = 102');
CALL bs_both('DELETE FROM %1$s WHERE k = 3');
CALL bs_both('INSERT INTO %1$s VALUES (3, 33)');
COMMIT;
SELECT k, v FROM bs1 WHERE k IN (3, 101, 102) ORDER BY k;

-- the same key bytes in both column families, each written twice
BEGIN;
CALL bs_both('INSERT INTO %2$s VALUES (4, 40)');
CALL bs_both('UPDATE %1$s SET v = 41 WHERE k = 4');
CALL bs_both('UPDATE %2$s SET v = 42 WHERE k = 4');
CALL bs_both('UPDATE %1$s SET v = v + 1 WHERE k = 4');
COMMIT;
SELECT 'bs1' AS t, k, v FROM bs1 WHERE k = 4 UNION ALL SELECT 'bs2', k, v FROM bs2 WHERE k = 4;

-- a rollback to a savepoint takes the later writes out of the batch
BEGIN;
CALL bs_both('UPDATE %1$s SET v = 50 WHERE k = 5');
SAVEPOINT s;
CALL bs_both('UPDATE %1$s SET v = 51 WHERE k = 5');
CALL bs_both('UPDATE %1$s SET v = 61 WHERE k = 6');
CALL bs_both('INSERT INTO %2$s VALUES (6, 62)');
ROLLBACK TO SAVEPOINT s;
CALL bs_both('UPDATE %1$s SET v = v + 2 WHERE k = 5');
COMMIT;
SELECT 'bs1' AS t, k, v FROM bs1 WHERE k IN (5, 6) UNION ALL SELECT 'bs2', k, v FROM bs2 WHERE k IN (5, 6);

-- 16 writes, then 17 (past the small batch: through the iterator), with
-- keys written twice in each
BEGIN;
CALL bs_both('UPDATE %1$s SET v = v + 1 WHERE k BETWEEN 7 AND 14');
CALL bs_both('UPDATE %1$s SET v = v + 1 WHERE k BETWEEN 7 AND 14');
COMMIT;
BEGIN;
CALL bs_both('UPDATE %1$s SET v = v + 1 WHERE k BETWEEN 15 AND 23');
CALL bs_both('UPDATE %1$s SET v = v + 1 WHERE k BETWEEN 15 AND 22');
COMMIT;
SELECT k, v FROM bs1 WHERE k BETWEEN 7 AND 23 ORDER BY k;

-- a transaction's own writes read back before its commit
BEGIN;
CALL bs_both('UPDATE %1$s SET v = 240 WHERE k = 24');
CALL bs_both('UPDATE %1$s SET v = v + 1 WHERE k = 24');
SELECT k, v FROM bs1 WHERE k = 24;
COMMIT;

-- nothing differs from the heap
SELECT * FROM bs_diff();
