-- Statements that work on a heap table work on a foreign table:
-- INSERT ... ON CONFLICT DO NOTHING, and UPDATE / DELETE through a
-- partitioned table or an inheritance parent with almanac children.
-- Before: ON CONFLICT DO NOTHING of an existing key was 23505, and UPDATE or
-- DELETE through a parent was XX000 "conflicting uses of row-identity name
-- "wholerow"".

CREATE FOREIGN TABLE st_kv (k int, v text) SERVER almanac_store
	OPTIONS (column_family 'st', key_prefix 'kv', key_columns 'k');
INSERT INTO st_kv VALUES (1, 'one'), (2, 'two');

-- ON CONFLICT DO NOTHING: existing keys are skipped, new ones inserted,
-- a key repeated in the statement is inserted once; RETURNING shows what went in
INSERT INTO st_kv VALUES (1, 'again') ON CONFLICT DO NOTHING;
INSERT INTO st_kv VALUES (2, 'again'), (3, 'three'), (3, 'twice') ON CONFLICT DO NOTHING RETURNING *;
INSERT INTO st_kv SELECT g, 'g' || g FROM generate_series(1, 5) g ON CONFLICT DO NOTHING;
SELECT * FROM st_kv ORDER BY k;
-- the transaction's own rows count, deleted ones do not
BEGIN;
INSERT INTO st_kv VALUES (6, 'six');
DELETE FROM st_kv WHERE k = 1;
INSERT INTO st_kv VALUES (6, 'dup'), (1, 'back') ON CONFLICT DO NOTHING RETURNING *;
COMMIT;
SELECT * FROM st_kv WHERE k IN (1, 6) ORDER BY k;
-- without it, an existing key is still 23505
SELECT sqlstate_of($$INSERT INTO st_kv VALUES (1, 'x')$$);
-- a conflict target, and DO UPDATE (which needs one), are refused with
-- 0A000 and what to do instead (PostgreSQL's own refusal is 42P10, "no
-- unique or exclusion constraint matching", which says nothing of the key)
SELECT error_of($$INSERT INTO st_kv VALUES (1, 'x') ON CONFLICT (k) DO NOTHING$$);
SELECT error_of($$INSERT INTO st_kv VALUES (1, 'x') ON CONFLICT (k) DO UPDATE SET v = excluded.v$$);
-- a heap table is not affected
CREATE TABLE st_heap (k int PRIMARY KEY, v text);
INSERT INTO st_heap VALUES (1, 'x') ON CONFLICT (k) DO UPDATE SET v = excluded.v;
DROP TABLE st_heap;

-- a partitioned table: two foreign partitions and a heap one
CREATE TABLE st_p (chain text, n int, v text) PARTITION BY LIST (chain);
CREATE FOREIGN TABLE st_p_a PARTITION OF st_p FOR VALUES IN ('a') SERVER almanac_store
	OPTIONS (column_family 'st', key_prefix 'pa', key_columns 'chain, n');
CREATE FOREIGN TABLE st_p_b PARTITION OF st_p FOR VALUES IN ('b') SERVER almanac_store
	OPTIONS (column_family 'st', key_prefix 'pb', key_columns 'chain, n');
CREATE TABLE st_p_c PARTITION OF st_p FOR VALUES IN ('c');
INSERT INTO st_p SELECT c, g, c || g FROM unnest(ARRAY['a', 'b', 'c']) c, generate_series(1, 3) g;
UPDATE st_p SET v = v || '!' WHERE n = 2;
DELETE FROM st_p WHERE n = 3;
UPDATE st_p SET v = upper(v) WHERE chain = 'b' RETURNING *;
-- a new partition key moves a heap row into a foreign partition; a row of
-- a foreign partition cannot move (the core leaves it to the wrapper) and is
-- refused rather than kept under the wrong partition; nor does a foreign
-- partition take a row of another partition directly
UPDATE st_p SET chain = 'a', n = 20 WHERE chain = 'c' AND n = 1;
SELECT sqlstate_of($$UPDATE st_p SET chain = 'b', n = 10 WHERE chain = 'a' AND n = 1$$);
SELECT error_of($$INSERT INTO st_p_a VALUES ('b', 5, 'wrong')$$);
UPDATE st_p SET n = 10 WHERE chain = 'a' AND n = 1;
-- a foreign partition the UPDATE updates too takes a row moved from the heap
-- partition scanned after it: its own updated row stays updated
UPDATE st_p SET chain = 'a', n = CASE chain WHEN 'a' THEN n ELSE n + 50 END, v = v || '>'
	WHERE (chain = 'a' AND n = 10) OR (chain = 'c' AND n = 2);
SELECT tableoid::regclass, * FROM st_p ORDER BY chain, n;
-- ON CONFLICT DO NOTHING routed to a foreign partition
INSERT INTO st_p VALUES ('a', 2, 'dup'), ('a', 4, 'a4') ON CONFLICT DO NOTHING;
SELECT * FROM st_p WHERE chain = 'a' ORDER BY n;
DELETE FROM st_p;
SELECT count(*) FROM st_p;

-- an inheritance parent with a foreign child
CREATE TABLE st_parent (k int, v text);
CREATE FOREIGN TABLE st_child () INHERITS (st_parent) SERVER almanac_store
	OPTIONS (column_family 'st', key_prefix 'child', key_columns 'k');
INSERT INTO st_parent VALUES (1, 'parent');
INSERT INTO st_child VALUES (1, 'child'), (2, 'child');
UPDATE st_parent SET v = v || '+' WHERE k = 1;
SELECT tableoid::regclass, * FROM st_parent ORDER BY 1, k;
DELETE FROM st_parent WHERE k = 2 RETURNING tableoid::regclass, *;
DELETE FROM st_parent;
SELECT count(*) FROM st_parent;

-- the same with the heap partition scanned first: the foreign partition's
-- rows are updated after a row moved into it
CREATE TABLE st_r (n int, v text) PARTITION BY RANGE (n);
CREATE TABLE st_r_heap PARTITION OF st_r FOR VALUES FROM (0) TO (10);
CREATE FOREIGN TABLE st_r_kv PARTITION OF st_r FOR VALUES FROM (10) TO (100)
	SERVER almanac_store OPTIONS (column_family 'st', key_prefix 'r', key_columns 'n');
INSERT INTO st_r VALUES (1, 'h1'), (2, 'h2'), (11, 'f11'), (12, 'f12');
UPDATE st_r SET n = n + 20, v = v || '>' WHERE n IN (1, 11, 12);
SELECT tableoid::regclass, * FROM st_r ORDER BY n;

DROP TABLE st_p, st_parent, st_r CASCADE;
DELETE FROM st_kv;
DROP FOREIGN TABLE st_kv;
