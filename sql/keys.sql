-- RocksDB keys (src/codec/keycodec.c): layout prefix:segment:...[:attribute],
-- integers fixed-width big-endian, text escaped, uuid raw.

-- helper for this and later suites: SQLSTATE, message, detail and hint of
-- the error a statement raises
CREATE FUNCTION public.error_of(stmt text) RETURNS text
	LANGUAGE plpgsql AS
$$
DECLARE
	state text;
	msg text;
	detail text;
	hint text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RETURN state || ': ' || msg
		|| CASE WHEN detail <> '' THEN E'\nDETAIL: ' || detail ELSE '' END
		|| CASE WHEN hint <> '' THEN E'\nHINT: ' || hint ELSE '' END;
END;
$$;

-- the documented examples, byte for byte
SELECT almanac.block_key('eth', 1);
SELECT almanac.block_key('eth', 1) = '\x626c6f636b3a6574683a0000000000000001'::bytea AS exact;
SELECT convert_from(almanac.account_state_key('eth', '0xabc'), 'UTF8');
SELECT almanac.block_key('eth', 0), almanac.block_key('eth', 9223372036854775807);

-- integers are unsigned: a negative value is refused, naming the column
SELECT sqlstate_of($$SELECT almanac.block_key('eth', -1)$$);
SELECT error_of($$SELECT almanac.block_key('eth', -1)$$);

-- byte order is numeric order: for a spread of numbers, sorting the keys
-- sorts the numbers
WITH n(v) AS (SELECT unnest(ARRAY[0, 1, 2, 255, 256, 65535, 65536, 16777216,
		2147483647, 2147483648, 4294967296, 72057594037927936, 9223372036854775807]::bigint[]))
SELECT array_agg(v ORDER BY almanac.block_key('eth', v)) =
	   array_agg(v ORDER BY v) AS byte_order_is_numeric_order
  FROM n;

-- separator and escape characters in text segments are escaped
SELECT convert_from(almanac.make_key('t', row('a:b'::text)), 'UTF8') AS colon,
	   convert_from(almanac.make_key('t', row('a\b'::text)), 'UTF8') AS backslash,
	   convert_from(almanac.make_key('t', row('\:'::text)), 'UTF8') AS both,
	   convert_from(almanac.make_key('t', row(''::text)), 'UTF8') AS empty;
-- so the scan prefix of chain 'eth' matches the blocks of no other chain
SELECT convert_from(almanac.key_prefix('block', row('eth'::text)), 'UTF8') AS eth_prefix;
SELECT c AS chain,
	   position(almanac.key_prefix('block', row('eth'::text))
				IN almanac.block_key(c, 7)) = 1 AS in_eth_scan
  FROM unnest(ARRAY['eth', 'eth:x', 'eth\', 'ethx', 'et', 'eth:', 'eth\:']) AS c;

-- decode_key reverses make_key, whatever the bytes
SELECT almanac.decode_key(almanac.block_key('eth', 42), '{text,bigint}');
SELECT almanac.decode_key(almanac.account_state_key('e:t\h', '0xabc'), '{text,text}', true);
SELECT almanac.decode_key(almanac.make_key('t', row(s)), '{text}')
  FROM unnest(ARRAY['a:b', 'a\b', '\\::', ':', '\', '', 'plain']) AS s;
SELECT s, almanac.decode_key(almanac.make_key('t', row(s), 'attr'), '{text}', true)
  FROM unnest(ARRAY['a:b', ':', '\']) AS s;

-- every supported type, mixed, with an attribute; and a domain over bigint
CREATE DOMAIN pg_temp.block_no AS bigint CHECK (VALUE >= 0);
SELECT almanac.make_key('mixed', row(1::smallint, 2::integer, 3::bigint,
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, 'x:y'::text,
		'v'::varchar, 'c  '::char(3), '\x003a5c00'::bytea, 5::pg_temp.block_no), 'attr');
SELECT almanac.decode_key(
	almanac.make_key('mixed', row(1::smallint, 2::integer, 3::bigint,
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, 'x:y'::text,
		'v'::varchar, 'c  '::char(3), '\x003a5c00'::bytea, 5::pg_temp.block_no), 'attr'),
	'{smallint,integer,bigint,uuid,text,varchar,char,bytea,pg_temp.block_no}', true);
-- char(n) keys ignore the padding, as char(n) equality does
SELECT almanac.make_key('t', row('ab'::char(5))) = almanac.make_key('t', row('ab'::char(2))) AS bpchar_pad;
-- integer widths: 2, 4 and 8 bytes
SELECT almanac.make_key('t', row(258::smallint)), almanac.make_key('t', row(258::int)),
	   almanac.make_key('t', row(258::bigint));
SELECT sqlstate_of($$SELECT almanac.make_key('t', row((-1)::smallint))$$);
SELECT sqlstate_of($$SELECT almanac.make_key('t', row(-2147483648))$$);

-- unsupported types are refused, naming the field and the type
SELECT sqlstate_of($$SELECT almanac.make_key('t', row(1.5::numeric))$$);
SELECT sqlstate_of($$SELECT almanac.make_key('t', row('eth'::text, now()))$$);
SELECT sqlstate_of($$SELECT almanac.decode_key('\x00'::bytea, '{jsonb}')$$);
SELECT error_of($$SELECT almanac.make_key('t', row(true))$$);

-- null fields and bad prefixes or attributes
SELECT sqlstate_of($$SELECT almanac.make_key('t', row('a'::text, null::bigint))$$);
SELECT sqlstate_of($$SELECT almanac.make_key('a:b', row(1::bigint))$$);
SELECT sqlstate_of($$SELECT almanac.make_key('', row(1::bigint))$$);
SELECT sqlstate_of($$SELECT almanac.make_key('t', row(1::bigint), 'x:y')$$);
SELECT almanac.make_key(NULL, row(1::bigint)) IS NULL AS null_prefix,
	   almanac.make_key('t', NULL::record) IS NULL AS null_record;

-- the key length limit is 1024 bytes, escapes included
SELECT length(almanac.make_key('t', row(repeat('x', 1022)))) AS longest;
SELECT sqlstate_of($$SELECT almanac.make_key('t', row(repeat('x', 1023)))$$);
SELECT sqlstate_of($$SELECT almanac.make_key('t', row(repeat(':', 600)))$$);
SELECT sqlstate_of($$SELECT almanac.make_key('t', row(repeat('x', 1020)), 'attr')$$);
SELECT sqlstate_of($$SELECT almanac.make_key('t', row(repeat('x', 100000)))$$);

-- scan prefixes: the segments, each followed by ':'
SELECT convert_from(almanac.key_prefix('p', row()), 'UTF8') AS zero,
	   convert_from(almanac.key_prefix('p', row('a'::text)), 'UTF8') AS one,
	   almanac.key_prefix('p', row('a:'::text, 1::smallint)) AS two,
	   convert_from(almanac.make_key('p', row('a'::text), 'attr'), 'UTF8') AS full_attr;
-- every key of account 0xabc on eth (any attribute) starts with its prefix
SELECT position(almanac.key_prefix('account', row('eth', '0xabc'))
				IN almanac.account_state_key('eth', '0xabc')) = 1 AS state_in_prefix,
	   position(almanac.key_prefix('account', row('eth', '0xabc'))
				IN almanac.account_state_key('eth', '0xabcd')) = 1 AS longer_account_not;

-- keys that do not match the layout are refused
SELECT sqlstate_of($$SELECT almanac.decode_key(almanac.block_key('eth', 1), '{text}')$$);
SELECT sqlstate_of($$SELECT almanac.decode_key(almanac.block_key('eth', 1), '{text,integer}')$$);
SELECT sqlstate_of($$SELECT almanac.decode_key(almanac.block_key('eth', 1), '{text,bigint}', true)$$);
SELECT sqlstate_of($$SELECT almanac.decode_key(convert_to('t:a\b', 'UTF8'), '{text}')$$);
SELECT sqlstate_of($$SELECT almanac.decode_key(convert_to('t:a\', 'UTF8'), '{text}')$$);
SELECT almanac.decode_key(convert_to('t:a\\', 'UTF8'), '{text}') AS good_escape;
SELECT sqlstate_of($$SELECT almanac.decode_key('\x743a8000000000000001'::bytea, '{bigint}')$$);
SELECT sqlstate_of($$SELECT almanac.decode_key('nocolon', '{text}')$$);
SELECT sqlstate_of($$SELECT almanac.decode_key(':a', '{text}')$$);
SELECT sqlstate_of($$SELECT almanac.decode_key('t:a:b', '{text}')$$);
SELECT sqlstate_of($$SELECT almanac.decode_key('t:a:b:c', '{text}', true)$$);

-- range-scan bounds: chain_id = 'eth' AND block_number <op> v, over keys of
-- three chains whose names collide on prefixes; the keys between the bounds
-- are exactly the matching ones
CREATE TEMP TABLE k AS
SELECT c, n, almanac.block_key(c, n) AS key
  FROM unnest(ARRAY['eth', 'et', 'eth:x', 'ethx']) AS c,
	   unnest(ARRAY[0, 1, 2, 99, 100, 101, 255, 256, 1000,
					9223372036854775807]::bigint[]) AS n;
CREATE TEMP TABLE q(lo_op text, lo bigint, hi_op text, hi bigint);
INSERT INTO q VALUES ('>=', 100, '<=', 256), ('>', 100, '<', 256), ('>=', 0, '<=', 0),
	('>', -5, '<', 2), ('>=', -1, '<=', 9223372036854775807),
	('>', 9223372036854775806, '<=', 9223372036854775807), ('>=', 5, '<', 0);
SELECT q.*,
	   (SELECT array_agg(n ORDER BY key) FROM k
		 WHERE key >= almanac._key_bound('block', row('eth'::text, lo), lo_op)
		   AND key < almanac._key_bound('block', row('eth'::text, hi), hi_op)) AS scanned,
	   (SELECT array_agg(n ORDER BY n) FROM k
		 WHERE c = 'eth'
		   AND CASE lo_op WHEN '>=' THEN n >= lo ELSE n > lo END
		   AND CASE hi_op WHEN '<=' THEN n <= hi ELSE n < hi END) AS expected
  FROM q;
-- upper bounds of nothing are NULL (no key can match)
SELECT almanac._key_bound('block', row('eth'::text, -1::bigint), '<') IS NULL AS lt_negative,
	   almanac._key_bound('block', row('eth'::text, 0::bigint), '<') AS lt_zero;
SELECT sqlstate_of($$SELECT almanac._key_bound('block', row('eth'::text), '>=')$$);
SELECT sqlstate_of($$SELECT almanac._key_bound('block', row(1::bigint), '=')$$);
-- uuid bounds, including the all-ones uuid
SELECT almanac._key_bound('u', row('ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid), '<=') AS uuid_max_upper;

-- values (src/codec/valuecodec.h): [format byte 3][layout: 16 bytes of SHA-256][CRC-32C][heap tuple image]
CREATE DOMAIN pos_amount AS numeric(78,0) CHECK (VALUE >= 0);
CREATE TYPE log_ref AS (tx_hash text, log_index int, topics text[]);
CREATE TABLE vals (
	id bigint,
	wei numeric(78,0),
	amount pos_amount,
	doc jsonb,
	topics text[],
	grid int[],
	note text,
	raw bytea,
	at timestamptz,
	ref log_ref,
	refs log_ref[],
	flag boolean,
	u uuid,
	f8 float8,
	ch char(4)
);
INSERT INTO vals VALUES
	(1, 2::numeric ^ 256 - 1, 115792089237316195423570985008687907853269984665640564039457584007913129639935,
	 '{"a": [1, 2.5, "x:y\\z", null], "b": {"c": true}}', ARRAY['0xddf2', NULL, 'a:b\c'],
	 '{{1,2},{3,4}}', 'text with : and \ and \: and ''quotes''', '\x00003a5c0000',
	 '2024-02-29 23:59:59.999999+00', ROW('0xabc', 7, ARRAY['t0', 't1']),
	 ARRAY[ROW('0x1', 0, '{}')::log_ref, NULL, ROW(NULL, NULL, NULL)::log_ref],
	 true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'NaN', 'ab'),
	(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(3, 0, 0, 'null', '{}', '{}', '', '', '-infinity', ROW(NULL, NULL, NULL), '{}',
	 false, '00000000-0000-0000-0000-000000000000', '-0', '');

-- every row comes back equal, field by field, and the image starts with the
-- format byte
SELECT id, almanac._decode_value(almanac._encode_value(v), NULL::vals) IS NOT DISTINCT FROM v AS same,
	   substr(almanac._encode_value(v), 1, 1) AS format
  FROM vals v ORDER BY id;
SELECT (almanac._decode_value(almanac._encode_value(v), NULL::vals)).*
  FROM vals v WHERE id = 1;
-- 2^256-1 digit for digit
SELECT (almanac._decode_value(almanac._encode_value(v), NULL::vals)).wei::text =
	   '115792089237316195423570985008687907853269984665640564039457584007913129639935' AS exact_wei
  FROM vals v WHERE id = 1;

-- one value at a time, decoded from an unaligned copy
SELECT almanac._value_roundtrip(wei) = wei AS wei, almanac._value_roundtrip(doc) = doc AS doc,
	   almanac._value_roundtrip(raw) = raw AS raw, almanac._value_roundtrip(ref) = ref AS ref,
	   almanac._value_roundtrip(at) = at AS at, almanac._value_roundtrip(grid) = grid AS grid,
	   almanac._value_roundtrip(amount) = amount AS domain_value
  FROM vals WHERE id = 1;
SELECT almanac._value_roundtrip(NULL::jsonb) IS NULL AS null_value;

-- large values: TOASTed in the table (compressed inline, compressed
-- external, and external uncompressed), plain in the image
CREATE TABLE big (id int, t text, b bytea);
ALTER TABLE big ALTER COLUMN b SET STORAGE EXTERNAL;
INSERT INTO big
SELECT 1, repeat('x:\', 1000), decode(repeat('00ff', 1500), 'hex')
UNION ALL
SELECT 2, repeat('abc:\', 300000), decode(repeat('5c3a00', 400000), 'hex')
UNION ALL
SELECT 3, string_agg(md5(i::text), ':' ORDER BY i), decode(string_agg(md5(i::text), '' ORDER BY i), 'hex')
  FROM generate_series(1, 40000) AS i;
SELECT id, octet_length(t) AS t_bytes, pg_column_size(t) < octet_length(t) AS t_compressed,
	   octet_length(b) AS b_bytes,
	   almanac._value_roundtrip(t) = t AS t_same, almanac._value_roundtrip(b) = b AS b_same,
	   almanac._decode_value(almanac._encode_value(big), NULL::big) = big AS row_same,
	   octet_length(almanac._encode_value(big)) > octet_length(t) + octet_length(b) AS image_is_plain
  FROM big ORDER BY id;

-- a column added after the image was written reads as NULL
CREATE TYPE v1 AS (a int, b text);
CREATE TYPE v2 AS (a int, b text, c jsonb, d int[]);
SELECT almanac._decode_value(almanac._encode_value(ROW(1, 'x')::v1), NULL::v2);
-- a dropped column changes the layout: the value written before is refused
-- (the foreign table refuses DROP COLUMN while it holds rows, see ddl.sql)
CREATE TABLE drop_t (a int, gone text, c text);
INSERT INTO drop_t VALUES (1, 'old', 'kept');
CREATE TEMP TABLE drop_img AS SELECT almanac._encode_value(d) AS img FROM drop_t d;
ALTER TABLE drop_t DROP COLUMN gone;
SELECT sqlstate_of($$SELECT almanac._decode_value(img, NULL::drop_t) FROM drop_img$$);
-- ... and so is any other layout: another type, another typmod, a changed
-- composite type inside a column
CREATE TYPE v1_int AS (a int, b int);
CREATE TYPE v1_mod AS (a int, b varchar(3));
SELECT sqlstate_of($$SELECT almanac._decode_value(almanac._encode_value(ROW(1, 'x')::v1), NULL::v1_int)$$);
SELECT sqlstate_of($$SELECT almanac._decode_value(almanac._encode_value(ROW(1, 'x')::v1), NULL::v1_mod)$$);
CREATE TYPE inner_t AS (x int, y text);
CREATE TYPE outer_t AS (id int, inner_v inner_t);
CREATE TEMP TABLE outer_img AS SELECT almanac._encode_value(ROW(1, ROW(2, 'two'))::outer_t) AS img;
SELECT (almanac._decode_value(img, NULL::outer_t)).inner_v FROM outer_img;
ALTER TYPE inner_t ALTER ATTRIBUTE y TYPE int[];
SELECT sqlstate_of($$SELECT almanac._decode_value(img, NULL::outer_t) FROM outer_img$$);

-- damaged images are refused as data_corrupted, never read past their end:
-- an unknown format byte, a format 1 value (before layouts), a format 2
-- value (before collision-resistant layouts), a flipped bit
SELECT error_of($$SELECT almanac._decode_value('\x04'::bytea || substr(almanac._encode_value(ROW(1, 'x')::v1), 2), NULL::v1)$$);
SELECT error_of($$SELECT almanac._decode_value('\x01'::bytea || substr(almanac._encode_value(ROW(1, 'x')::v1), 22), NULL::v1)$$);
SELECT error_of($$SELECT almanac._decode_value('\x02'::bytea || substr(almanac._encode_value(ROW(1, 'x')::v1), 14), NULL::v1)$$);
SELECT error_of($$SELECT almanac._decode_value(set_byte(img, 30, get_byte(img, 30) # 4), NULL::v1)
				   FROM (SELECT almanac._encode_value(ROW(1, 'x')::v1) AS img) AS i$$);
SELECT sqlstate_of($$SELECT almanac._decode_value(''::bytea, NULL::v1)$$);
SELECT sqlstate_of($$SELECT almanac._decode_value('\x01'::bytea, NULL::v1)$$);
SELECT n, sqlstate_of(format('SELECT almanac._decode_value(%L::bytea, NULL::v1)',
		substr(almanac._encode_value(ROW(1, repeat('y', 200))::v1), 1, n)))
  FROM unnest(ARRAY[10, 24, 30, 44, 100, 200]) AS n;
-- an image read as a type it was not written for, with a length word that
-- points past its end
SELECT sqlstate_of($$SELECT almanac._decode_value(almanac._encode_value(ROW(1, 2147483647)), NULL::v1)$$);
SELECT sqlstate_of($$SELECT almanac._decode_value('\x01', NULL::int)$$);
