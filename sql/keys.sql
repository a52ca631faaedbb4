-- RocksDB keys (src/keycodec.c): layout prefix:segment:...[:attribute],
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
