-- A row a transaction inserted, then changed by a statement whose earlier
-- writes of the transaction went to the store owner ahead of it
-- (kv/xact.c, ship_earlier_than): the change was sent as an INSERT,
-- which the owner took for a duplicate of the transaction's own row
-- (23505 at the send or at COMMIT, the transaction lost).  Found by
-- test/t/043_differential_fuzz.pl.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS almanac;
RESET client_min_messages;

CREATE FOREIGN TABLE itu (k int, s text) SERVER almanac_store
	OPTIONS (key_prefix 'itu', key_columns 'k');

-- an UPDATE that reads, after a savepoint, a key written before it: its
-- subtransaction sends the transaction's batch, the new row's INSERT in it;
-- both rows are changed, as in a heap table
INSERT INTO itu VALUES (2, 'a');
BEGIN;
UPDATE itu SET s = 'b';
SAVEPOINT s;
ROLLBACK TO s;
INSERT INTO itu VALUES (1, 'x');
UPDATE itu SET s = s || ':u';
COMMIT;
SELECT * FROM itu ORDER BY k;

-- a DELETE of the new row there
BEGIN;
UPDATE itu SET s = 'c';
SAVEPOINT s;
ROLLBACK TO s;
INSERT INTO itu VALUES (0, 'x');
DELETE FROM itu WHERE s <> 'c' OR k = 0;
COMMIT;
SELECT * FROM itu ORDER BY k;

-- an UPDATE that outgrows almanac.write_batch_size sends the earlier
-- statements' writes first, the new row's INSERT with them
DELETE FROM itu;
INSERT INTO itu SELECT g, repeat('x', 1000) FROM generate_series(10, 200) g;
SET almanac.write_batch_size = '64kB';
BEGIN;
INSERT INTO itu VALUES (1, 'new');
UPDATE itu SET s = s || 'u';
COMMIT;
SELECT count(*), min(k), sum(length(s)), min(s) FROM itu;
-- a real duplicate is still refused after such a send
BEGIN;
INSERT INTO itu VALUES (3, 'new');
UPDATE itu SET s = s || 'v';
INSERT INTO itu VALUES (3, 'again');
ROLLBACK;
RESET almanac.write_batch_size;
SELECT count(*), sum(length(s)) FROM itu;

DROP FOREIGN TABLE itu;
