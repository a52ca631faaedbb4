-- A stored value read under a layout forged to match the writer's
-- (src/codec/valuecodec.h).  The layout fingerprint was a CRC-32C, and CRC is
-- linear: an ordinary role (USAGE on the server, a schema of its own) chose
-- varchar(n) typmods so that (int, varchar(846170), bytea) and
-- (int, varchar(512528), int4[]) had the same fingerprint, and its bytea was
-- then read as an int4[] whose header claims 100,000,000 elements: SIGSEGV,
-- and every backend restarted.  The fingerprint is now a SHA-256 of the full
-- layout, and arrays, composites and ranges read from a value are checked
-- before anything reads them.  The other route (one table, ALTER COLUMN, a
-- REPEATABLE READ snapshot taken before the rows were deleted) is
-- test/isolation/specs/value_forgery.spec.
CREATE ROLE regress_forger;
CREATE ROLE regress_reader;
GRANT USAGE ON FOREIGN SERVER almanac_store TO regress_forger, regress_reader;
CREATE SCHEMA forger_s AUTHORIZATION regress_forger;
CREATE SCHEMA reader_s AUTHORIZATION regress_reader;
GRANT USAGE ON SCHEMA forger_s TO regress_reader;

-- one role, two tables over the same keys
SET ROLE regress_forger;
CREATE FOREIGN TABLE forger_s.w (k int, a varchar(846170), v bytea) SERVER almanac_store
	OPTIONS (key_prefix 'mal', key_columns 'k');
CREATE FOREIGN TABLE forger_s.r (k int, a varchar(512528), v int4[]) SERVER almanac_store
	OPTIONS (key_prefix 'mal', key_columns 'k');
INSERT INTO forger_s.w VALUES (1, 'x', '\x01000000000000001700000000e1f50501000000');
\set VERBOSITY sqlstate
SELECT * FROM forger_s.r;
SELECT v FROM forger_s.r WHERE k = 1;
\set VERBOSITY default
SELECT k, a, v FROM forger_s.w;
DROP FOREIGN TABLE forger_s.r;

-- two roles: the reader may not define its own table over the forger's
-- keys; once it has the forger's privileges, it reads a clean error
GRANT SELECT ON forger_s.w TO regress_reader;
SET ROLE regress_reader;
CREATE FOREIGN TABLE reader_s.r (k int, a varchar(512528), v int4[]) SERVER almanac_store
	OPTIONS (key_prefix 'mal', key_columns 'k');
RESET ROLE;
GRANT regress_forger TO regress_reader;
SET ROLE regress_reader;
CREATE FOREIGN TABLE reader_s.r (k int, a varchar(512528), v int4[]) SERVER almanac_store
	OPTIONS (key_prefix 'mal', key_columns 'k');
\set VERBOSITY sqlstate
SELECT v FROM reader_s.r WHERE k = 1;
\set VERBOSITY default
SELECT * FROM reader_s.r;
-- (its rows stay with forger_s.w, whose owner must hold its privileges on it:
-- privileges.sql)
GRANT SELECT, INSERT, UPDATE, DELETE ON reader_s.r TO regress_forger;
DROP FOREIGN TABLE reader_s.r;
RESET ROLE;
REVOKE regress_forger FROM regress_reader;

-- the server is still up, and the writer reads its row
SET ROLE regress_forger;
SELECT k, a, v FROM forger_s.w;
DROP FOREIGN TABLE forger_s.w;
RESET ROLE;
DROP SCHEMA forger_s, reader_s;

-- Whatever the fingerprint says, the decoder checks the inside of arrays,
-- composite datums, ranges, multiranges, jsonb, numerics and names before
-- anything reads them.  almanac._seal_value forges a value: any image, under
-- the layout of a type, with a valid checksum (what only whoever writes the
-- store's files could do; no SQL writes raw bytes into a store).  The
-- reporter's bytea sealed as int4[] crashed the backend.
CREATE SCHEMA forge;
SET search_path = forge, public;
CREATE TYPE fz_bytes AS (a varchar, v bytea);
CREATE TYPE fz_ints AS (a varchar, v int4[]);
-- forged(image, NULL::t): image sealed as a value of row type t, decoded and
-- rendered as text (which reads the inside of every field), or the error
CREATE FUNCTION forged(image bytea, row_type anyelement) RETURNS text
	LANGUAGE plpgsql AS $$
BEGIN
	RETURN almanac._decode_value(almanac._seal_value(image, row_type), row_type)::text;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;
-- image(r): the heap tuple image of a row, after the value's 21-byte header
CREATE FUNCTION image(r anyelement) RETURNS bytea
	LANGUAGE sql AS $$ SELECT substr(almanac._encode_value(r), 22) $$;
SELECT forged(image(ROW('x', '\x01000000000000001700000000e1f50501000000')::fz_bytes), NULL::fz_ints);
-- an array of another element type (text)
SELECT forged(image(ROW('x', '\x0100000000000000190000000100000001000000')::fz_bytes), NULL::fz_ints);
-- too many dimensions; negative dimension; null bitmap offset that does not fit
SELECT forged(image(ROW('x', '\x070000000000000017000000')::fz_bytes), NULL::fz_ints);
SELECT forged(image(ROW('x', '\x0100000000000000170000000000008001000000')::fz_bytes), NULL::fz_ints);
SELECT forged(image(ROW('x', '\x0100000040000000170000000300000001000000')::fz_bytes), NULL::fz_ints);
-- a well-formed array read the same way is fine (the checks refuse only what
-- its readers could not read)
SELECT forged(image(ROW('x', '\x01000000000000001700000002000000010000000700000008000000')::fz_bytes), NULL::fz_ints);

-- a composite datum carrying another row type's OID, directly and as array
-- elements (another element type for the array)
CREATE TYPE fz_in AS (x int, y text);
CREATE TYPE fz_swapped AS (y text, x int);
CREATE TYPE fz_c AS (c fz_in, cs fz_in[]);
CREATE TYPE fz_c_swapped AS (c fz_swapped, cs fz_swapped[]);
SELECT forged(image(ROW(ROW(repeat('a', 200), 1), NULL)::fz_c_swapped), NULL::fz_c);
SELECT forged(image(ROW(NULL, ARRAY[ROW(repeat('a', 200), 1)::fz_swapped])::fz_c_swapped), NULL::fz_c);

-- ranges: another range type's OID; flags (the last byte) that claim the
-- bounds an empty range does not have
CREATE TYPE fz_r AS (r int4range);
CREATE TYPE fz_d AS (r daterange);
SELECT forged(image(ROW('[2024-01-01,2024-02-01)')::fz_d), NULL::fz_r);
SELECT forged(set_byte(img, length(img) - 1, 0), NULL::fz_r)
  FROM (SELECT image(ROW('empty')::fz_r) AS img) AS i;
-- multiranges: the length of the first range's bounds (the high byte of the
-- item after the 12-byte header, which starts 1 + 24 bytes into the image)
-- pointing past the end
CREATE TYPE fz_m AS (m int4multirange);
SELECT forged(set_byte(image(ROW('{[1,3),[5,8)}')::fz_m), 36, 127), NULL::fz_m);
-- a name without its terminating zero
CREATE TYPE fz_n AS (n name);
SELECT forged(overlay(image(ROW('abc')::fz_n) PLACING decode(repeat('78', 64), 'hex') FROM 25), NULL::fz_n);

-- jsonb: the length of the first entry (its third byte, 1 + 4 + 2 bytes
-- into the datum at 24) pointing past the end; a key that is not a string
-- (the type bits of the first entry's high byte); a numeric too short for
-- its header (a 1-byte length word of 2 bytes)
CREATE TYPE fz_j AS (j jsonb);
CREATE TYPE fz_num AS (n numeric);
SELECT forged(set_byte(image(ROW('{"a": [1, "x"]}')::fz_j), 31, 127), NULL::fz_j);
SELECT forged(set_byte(image(ROW('{"a": [1, "x"]}')::fz_j), 32, 16), NULL::fz_j);
SELECT forged(set_byte(image(ROW(1.5)::fz_num), 24, 5), NULL::fz_num);

-- where the attributes lie: the checks count offsets from the start of a
-- tuple, heap_deform_tuple (a composite's readers, and the decoder's when it
-- skips columns) from t_hoff, the same only for a MAXALIGNed t_hoff, which
-- every tuple has.  A composite (x int2, y text) whose t_hoff (its 23rd
-- byte, 1 + 21 bytes into the image) says 23: y was checked at 26, a 1-byte
-- header, and record_out read it at 25, a 4-byte header of 400 MB: SIGSEGV.
-- At the top, the same t_hoff.
CREATE TYPE fz_h AS (x int2, y text);
CREATE TYPE fz_hc AS (c fz_h);
SELECT forged(set_byte(set_byte(set_byte(image(ROW(ROW(1, 'abc')::fz_h)::fz_hc), 43, 23), 45, 0), 46, 4), NULL::fz_hc);
SELECT forged(set_byte(image(ROW(1, 'abc')::fz_h), 22, 23), NULL::fz_h);
-- a varlena with a 4-byte header is aligned (a 1-byte header is not, and a
-- non-zero first byte is never padding): its readers read it in place and
-- align what it holds by address.  A composite (x int2, a text[]) whose
-- array (its first byte 0x80) starts at 26, its two pad bytes cut out (and
-- the composite's length word, 1 + 24 bytes into the image, 2 less): the
-- array's second element was checked at 32, array_out read it at 30, two
-- pad bytes and half its length word, 256 MB: SIGSEGV.  At the top, a text
-- of 200 bytes at 26.
CREATE TYPE fz_ai AS (x int2, a text[]);
CREATE TYPE fz_ao AS (c fz_ai);
CREATE FUNCTION le32(n int) RETURNS bytea LANGUAGE sql AS $$
	SELECT set_byte(set_byte(set_byte(set_byte('\x00000000'::bytea, 0, n & 255),
		1, (n >> 8) & 255), 2, (n >> 16) & 255), 3, (n >> 24) & 255) $$;
SELECT forged(overlay(overlay(img PLACING '' FROM 51 FOR 2)
				PLACING le32((((get_byte(img, 24) | (get_byte(img, 25) << 8)) >> 2) - 2) << 2) FROM 25 FOR 4),
			  NULL::fz_ao)
  FROM (SELECT image(ROW(ROW(1, ARRAY['ab', repeat('u', 4092)])::fz_ai)::fz_ao) AS img) AS i;
SELECT forged(overlay(image(ROW(1, repeat('t', 200))::fz_h) PLACING '' FROM 27 FOR 2), NULL::fz_h);
-- and in a range (its bounds are aligned as a tuple's attributes): the
-- upper bound, 200 bytes of text, at 10 of the range, not 12
CREATE TYPE fz_txr AS RANGE (subtype = text);
CREATE TYPE fz_tr AS (r fz_txr);
SELECT forged(overlay(overlay(img PLACING '' FROM 35 FOR 2)
				PLACING le32((((get_byte(img, 24) | (get_byte(img, 25) << 8)) >> 2) - 2) << 2) FROM 25 FOR 4),
			  NULL::fz_tr)
  FROM (SELECT image(ROW(fz_txr('a', repeat('v', 200)))::fz_tr) AS img) AS i;
-- the same rows unforged read back
SELECT forged(image(r), NULL::fz_hc) = r::text AS same
  FROM (SELECT ROW(ROW(1, 'abc')::fz_h)::fz_hc AS r) AS i;
SELECT forged(image(r), NULL::fz_ao) = r::text AS same
  FROM (SELECT ROW(ROW(1, ARRAY['ab', repeat('u', 4092)])::fz_ai)::fz_ao AS r) AS i;
SELECT forged(image(r), NULL::fz_h) = r::text AS same
  FROM (SELECT ROW(1, repeat('t', 200))::fz_h AS r) AS i;
SELECT forged(image(r), NULL::fz_tr) = r::text AS same
  FROM (SELECT ROW(fz_txr('a', repeat('v', 200)))::fz_tr AS r) AS i;

-- the tuple's own checks, which the decoder makes in the walk that also
-- deforms it (x int2 at 24, y text at 26 with a 1-byte header; the text of
-- 200 bytes at 28 with a 4-byte one): t_hoff below the header's size or past
-- the end; the TOAST flag; x cut short; y longer than what is left; a TOAST
-- pointer; a compressed value; a 4-byte length word below 4
SELECT forged(set_byte(image(ROW(1, 'abc')::fz_h), 22, 16), NULL::fz_h);
SELECT forged(set_byte(image(ROW(1, 'abc')::fz_h), 22, 40), NULL::fz_h);
SELECT forged(set_byte(image(ROW(1, 'abc')::fz_h), 20, 6), NULL::fz_h);
SELECT forged(substr(image(ROW(1, 'abc')::fz_h), 1, 25), NULL::fz_h);
SELECT forged(set_byte(image(ROW(1, 'abc')::fz_h), 26, 11), NULL::fz_h);
SELECT forged(set_byte(image(ROW(1, 'abc')::fz_h), 26, 1), NULL::fz_h);
SELECT forged(set_byte(image(ROW(1, repeat('t', 200))::fz_h), 28, 50), NULL::fz_h);
SELECT forged(set_byte(set_byte(image(ROW(1, repeat('t', 200))::fz_h), 28, 8), 29, 0), NULL::fz_h);
-- NULLs, and a column the image does not hold (added since it was written)
SELECT forged(image(ROW(NULL, 'abc')::fz_h), NULL::fz_h), forged(image(ROW(1, NULL)::fz_h), NULL::fz_h);
CREATE TYPE fz_h1 AS (x int2);
SELECT forged(image(ROW(7)::fz_h1), NULL::fz_h);

-- and every value of these types that almanac writes passes the checks
CREATE TYPE fz_all AS (n name, r int4range, er int4range, tr tsrange, m int4multirange,
	em int4multirange, c fz_in, cs fz_in[], grid int8[], e int[], nulls text[], nr numrange[],
	j jsonb, js jsonb[], num numeric, nums numeric[], bigm int4multirange, numm nummultirange,
	bigj jsonb, bigja jsonb, tsv tsmultirange, v int2vector, o oidvector);
CREATE TEMP TABLE fz_rows AS
SELECT ROW(repeat('n', 63), int4range(i, i + 10), 'empty', tsrange('2024-01-01', NULL),
		   int4multirange(int4range(1, i + 2), int4range(i + 5, NULL)), '{}',
		   ROW(i, repeat('y', i * 40)), ARRAY[ROW(i, 'z')::fz_in, NULL, ROW(NULL, NULL)::fz_in],
		   ARRAY[[i::int8, 2], [3, NULL]], '{}', ARRAY[NULL, repeat('t', i * 50), NULL],
		   ARRAY[numrange(i, i * 1.5), NULL],
		   jsonb_build_object('n', i, 'a', jsonb_build_array(1.5, 'x', NULL, true, i * 2 ^ 70),
			   'o', jsonb_build_object('k', repeat('v', i * 30), 'e', '{}'::jsonb, 'l', '[]'::jsonb)),
		   ARRAY['1'::jsonb, '"s"', 'null', '[[[]]]'], 'NaN', ARRAY[0, -1.25, 2 ^ 200, NULL],
		   -- more ranges and entries than the strides at which offsets are stored
		   (SELECT range_agg(int4range(k * 10, k * 10 + i)) FROM generate_series(1, 12) AS k),
		   (SELECT range_agg(numrange(k * 10.5, k * 10.5 + (i::numeric) ^ 40)) FROM generate_series(1, 9) AS k),
		   (SELECT jsonb_object_agg('k' || k, CASE k % 4 WHEN 0 THEN to_jsonb(k * 1.5) WHEN 1 THEN to_jsonb(repeat('s', k))
				WHEN 2 THEN jsonb_build_array(k, NULL, false) ELSE jsonb_build_object('x', k) END)
			  FROM generate_series(1, 40 * i) AS k),
		   (SELECT jsonb_agg(CASE WHEN k % 3 = 0 THEN to_jsonb(k) ELSE to_jsonb(md5(k::text)) END) FROM generate_series(1, 70) AS k),
		   tsmultirange(tsrange('2024-01-01', '2024-02-01'), tsrange('2024-03-01', NULL)),
		   '1 2 3'::int2vector, '4 5'::oidvector)::fz_all AS r
  FROM generate_series(1, 4) AS i;
SELECT count(*) AS rows,
	   count(*) FILTER (WHERE forged(image(r), NULL::fz_all) = r::text) AS same
  FROM fz_rows;
DROP TABLE fz_rows;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA forge CASCADE;
RESET client_min_messages;
REVOKE USAGE ON FOREIGN SERVER almanac_store FROM regress_forger, regress_reader;
DROP ROLE regress_forger, regress_reader;
