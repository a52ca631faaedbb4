-- DDL on almanac foreign tables that hold rows (src/fdw/ddl.c), and stored
-- values read under another row layout (src/codec/valuecodec.h).  Before
-- the layout checks, the ALTER COLUMN TYPE and the second table below
-- crashed the backend (test/t/028_values.pl checks that the server stays up).

CREATE SCHEMA ddl_test;
SET search_path = ddl_test, public;
CREATE FOREIGN TABLE ddl_t (id bigint, payload bytea, note text) SERVER almanac_store
	OPTIONS (key_prefix 'ddl', key_columns 'id');

-- while the table is empty, its columns and keys may change
ALTER FOREIGN TABLE ddl_t ALTER COLUMN note TYPE varchar(20);
ALTER FOREIGN TABLE ddl_t ALTER COLUMN note TYPE text;
ALTER FOREIGN TABLE ddl_t OPTIONS (SET key_prefix 'ddl_tmp');
ALTER FOREIGN TABLE ddl_t OPTIONS (SET key_prefix 'ddl');

INSERT INTO ddl_t VALUES (1, '\x0102', 'one'), (2, repeat('ab', 50)::bytea, 'two');

-- once it holds rows, a change that would misread them is refused up front
ALTER FOREIGN TABLE ddl_t ALTER COLUMN payload TYPE int4[];
ALTER TABLE ddl_t ALTER COLUMN note TYPE varchar(3);
ALTER FOREIGN TABLE ddl_t DROP COLUMN note;
ALTER FOREIGN TABLE ddl_t ADD COLUMN extra int DEFAULT 5;
ALTER FOREIGN TABLE ddl_t ADD COLUMN extra int NOT NULL;
ALTER FOREIGN TABLE ddl_t ADD COLUMN extra int GENERATED ALWAYS AS (id * 2) STORED;
ALTER FOREIGN TABLE ddl_t OPTIONS (SET key_prefix 'ddl2');
ALTER FOREIGN TABLE ddl_t OPTIONS (SET key_columns 'id, note');
ALTER FOREIGN TABLE ddl_t OPTIONS (ADD key_attribute 'x');
ALTER FOREIGN TABLE ddl_t OPTIONS (ADD column_family 'ddl_other_cf');
-- one refused subcommand refuses the whole statement
ALTER FOREIGN TABLE ddl_t ADD COLUMN fine int, DROP COLUMN note;
SELECT * FROM ddl_t ORDER BY id;

-- a nullable column added at the end is allowed: rows written before read
-- it as NULL, as in a heap table; new rows store it
ALTER FOREIGN TABLE ddl_t ADD COLUMN extra int;
INSERT INTO ddl_t VALUES (3, NULL, 'three', 33);
SELECT id, payload = '\x0102' AS payload_ok, note, extra FROM ddl_t ORDER BY id;
UPDATE ddl_t SET extra = 11 WHERE id = 1;
SELECT id, extra FROM ddl_t ORDER BY id;
-- options that do not change which keys are rows are allowed
ALTER FOREIGN TABLE ddl_t OPTIONS (ADD upsert 'true');
ALTER FOREIGN TABLE ddl_t OPTIONS (DROP upsert);

-- rows written by the same transaction count
CREATE FOREIGN TABLE ddl_tx (id int, v text) SERVER almanac_store
	OPTIONS (key_prefix 'ddl_tx', key_columns 'id');
BEGIN;
INSERT INTO ddl_tx VALUES (1, 'a');
ALTER FOREIGN TABLE ddl_tx ALTER COLUMN v TYPE varchar(5);
ROLLBACK;
-- ... and rows deleted by it do not
INSERT INTO ddl_tx VALUES (1, 'a');
BEGIN;
DELETE FROM ddl_tx;
ALTER FOREIGN TABLE ddl_tx ALTER COLUMN v TYPE varchar(5);
INSERT INTO ddl_tx VALUES (2, 'b');
COMMIT;
SELECT * FROM ddl_tx;

-- through an inheritance parent, the ALTER reaches the child and is refused
CREATE TABLE ddl_parent (id bigint, payload bytea, note text, extra int);
ALTER FOREIGN TABLE ddl_t INHERIT ddl_parent;
ALTER TABLE ddl_parent ALTER COLUMN note TYPE varchar(10);
ALTER FOREIGN TABLE ddl_t NO INHERIT ddl_parent;
DROP TABLE ddl_parent;

-- a composite type inside a column is part of the layout: ALTER TYPE of it
-- is refused while a table built from it holds rows
CREATE TYPE ddl_ref AS (tx text, idx int);
CREATE TYPE ddl_outer AS (refs ddl_ref[], n int);
CREATE FOREIGN TABLE ddl_typed (id int, o ddl_outer) SERVER almanac_store
	OPTIONS (key_prefix 'ddl_typed', key_columns 'id');
ALTER TYPE ddl_ref ADD ATTRIBUTE extra int;
INSERT INTO ddl_typed VALUES (1, ROW(ARRAY[ROW('0x1', 1, NULL)::ddl_ref], 7));
ALTER TYPE ddl_ref ADD ATTRIBUTE more int;
ALTER TYPE ddl_ref ALTER ATTRIBUTE idx TYPE bigint;
ALTER TYPE ddl_outer DROP ATTRIBUTE n;
ALTER TYPE ddl_ref RENAME ATTRIBUTE tx TO tx_hash;
SELECT (o).refs[1].tx_hash, (o).n FROM ddl_typed;

-- a server's path is where its tables' rows are: changing it is refused
-- while one of them holds rows
CREATE SERVER ddl_srv FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (path 'almanac/ddl_test_a');
CREATE FOREIGN TABLE ddl_on_srv (id int, v text) SERVER ddl_srv
	OPTIONS (key_prefix 'ddl_srv', key_columns 'id');
ALTER SERVER ddl_srv OPTIONS (SET path 'almanac/ddl_test_b');
INSERT INTO ddl_on_srv VALUES (1, 'one');
ALTER SERVER ddl_srv OPTIONS (SET path 'almanac/ddl_test_a');
ALTER SERVER ddl_srv OPTIONS (ADD write_buffer_size '8MB');
SELECT * FROM ddl_on_srv;
DROP FOREIGN TABLE ddl_on_srv;
DROP SERVER ddl_srv;

-- a second table on the same keys with other column types reads an ERROR,
-- not the bytes of a bytea as an array header (this crashed the backend)
CREATE FOREIGN TABLE ddl_other (id bigint, payload int4[], note jsonb) SERVER almanac_store
	OPTIONS (key_prefix 'ddl', key_columns 'id');
SELECT array_length(payload, 1) FROM ddl_other WHERE id = 2;
SELECT * FROM ddl_other;
-- a table with the same columns reads them (the layout, not the table, is checked)
CREATE FOREIGN TABLE ddl_same (id bigint, payload bytea, note text, extra int) SERVER almanac_store
	OPTIONS (key_prefix 'ddl', key_columns 'id');
SELECT id, note, extra FROM ddl_same ORDER BY id;
-- ... and one without the added column reads the rows written before it was added
CREATE FOREIGN TABLE ddl_fewer (id bigint, payload bytea, note text) SERVER almanac_store
	OPTIONS (key_prefix 'ddl', key_columns 'id');
SELECT id, note FROM ddl_fewer WHERE id = 2;
SELECT id, note FROM ddl_fewer WHERE id = 3;
-- dropping a table while another maps the same keys keeps the rows
DROP FOREIGN TABLE ddl_other, ddl_same, ddl_fewer;
SELECT count(*) FROM ddl_t;

-- purge: every row of the key space goes with the transaction; it needs
-- DELETE on the table
CREATE ROLE ddl_reader;
GRANT USAGE ON SCHEMA almanac, ddl_test TO ddl_reader;
GRANT SELECT ON ddl_t TO ddl_reader;
SET ROLE ddl_reader;
SELECT almanac.purge('ddl_t');
-- a role that does not own the table hears that, not whether it holds rows
ALTER FOREIGN TABLE ddl_t DROP COLUMN note;
-- the value functions are not for ordinary roles
SELECT almanac._encode_value(ROW(1, 'x'));
SELECT almanac._decode_value('\x02', NULL::ddl_t);
SELECT almanac._value_roundtrip(1);
RESET ROLE;
BEGIN;
SELECT almanac.purge('ddl_t');
SELECT count(*) FROM ddl_t;
-- now the column type may change, in the same transaction
ALTER FOREIGN TABLE ddl_t ALTER COLUMN payload TYPE int4[];
ROLLBACK;
SELECT count(*) FROM ddl_t;
SELECT almanac.purge('ddl_t');
ALTER FOREIGN TABLE ddl_t ALTER COLUMN payload TYPE int4[];
INSERT INTO ddl_t VALUES (1, '{1,2,3}', 'again', NULL);
SELECT * FROM ddl_t;
SELECT almanac.purge('ddl_t');
SELECT almanac.purge('ddl_parent_none');
SELECT almanac.purge('pg_class');

-- DROP of the last table of a key space deletes its rows with the drop:
-- a table created later on the same keys finds nothing
INSERT INTO ddl_t VALUES (1, '{1}', 'kept?', NULL), (2, '{2}', 'kept?', NULL);
BEGIN;
DROP FOREIGN TABLE ddl_t;
ROLLBACK;
SELECT count(*) FROM ddl_t;
DROP FOREIGN TABLE ddl_t;
CREATE FOREIGN TABLE ddl_t (id bigint, payload int4[], note text, extra int) SERVER almanac_store
	OPTIONS (key_prefix 'ddl', key_columns 'id');
SELECT count(*) FROM ddl_t;
DROP FOREIGN TABLE ddl_t;

-- ... also when the drop cascades from a schema
CREATE SCHEMA ddl_s;
CREATE FOREIGN TABLE ddl_s.t (id int, v text) SERVER almanac_store
	OPTIONS (key_prefix 'ddl_s', key_columns 'id');
INSERT INTO ddl_s.t SELECT i, 'v' || i FROM generate_series(1, 100) AS i;
DROP SCHEMA ddl_s CASCADE;
CREATE FOREIGN TABLE ddl_s_again (id int, v text) SERVER almanac_store
	OPTIONS (key_prefix 'ddl_s', key_columns 'id');
SELECT count(*) FROM ddl_s_again;
DROP FOREIGN TABLE ddl_s_again, ddl_tx, ddl_typed;
DROP TYPE ddl_outer, ddl_ref;
REVOKE USAGE ON SCHEMA almanac FROM ddl_reader;
DROP SCHEMA ddl_test;
DROP ROLE ddl_reader;
