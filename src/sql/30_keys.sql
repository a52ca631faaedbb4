-- RocksDB keys: prefix ':' segment ':' ... [':' attribute] (src/codec/keycodec.h,
-- docs/usage.md "Keys and values").  These functions compute the exact bytes the
-- foreign tables store, for lookups with ldb and for tests.

CREATE FUNCTION almanac.block_key(chain_id text, block_number bigint)
	RETURNS bytea
	LANGUAGE c STRICT IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_block_key_sql';
COMMENT ON FUNCTION almanac.block_key(text, bigint) IS
	'RocksDB key of a block: block:{chain_id}:{block_number as 8 bytes big-endian}';

CREATE FUNCTION almanac.account_state_key(chain_id text, account text)
	RETURNS bytea
	LANGUAGE c STRICT IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_account_state_key_sql';
COMMENT ON FUNCTION almanac.account_state_key(text, text) IS
	'RocksDB key of the latest state of an account: account:{chain_id}:{account}:state';

-- The key columns are the fields of a record, so they keep their types:
-- make_key('block', row('eth', 1::bigint)).  Not strict: attribute may be
-- NULL (no attribute); a NULL prefix or record gives NULL, a NULL field is an
-- error.
CREATE FUNCTION almanac.make_key(prefix text, segments record,
								 attribute text DEFAULT NULL)
	RETURNS bytea
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_make_key_sql';
COMMENT ON FUNCTION almanac.make_key(text, record, text) IS
	'RocksDB key for the record''s fields as key columns';

-- key_prefix('block', row('eth')) = 'block:eth:': every key whose leading
-- columns are these values starts with it, and no other key does.
CREATE FUNCTION almanac.key_prefix(prefix text, segments record)
	RETURNS bytea
	LANGUAGE c STRICT IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_key_prefix_sql';
COMMENT ON FUNCTION almanac.key_prefix(text, record) IS
	'scan prefix of the keys whose leading key columns equal the record''s fields';

-- Stable, not immutable: segments are rendered by their types' output
-- functions, and bytea's depends on bytea_output.
CREATE FUNCTION almanac.decode_key(key bytea, key_types regtype[],
								   has_attribute boolean DEFAULT false)
	RETURNS text[]
	LANGUAGE c STRICT STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_decode_key_sql';
COMMENT ON FUNCTION almanac.decode_key(bytea, regtype[], boolean) IS
	'{prefix, segments as text..., attribute} of a RocksDB key, given its segment types';

-- Test hook for the range-scan bounds of the foreign data wrapper: the
-- record's last field is the bounded column.  NULL when nothing can match.
CREATE FUNCTION almanac._key_bound(prefix text, segments record, op text)
	RETURNS bytea
	LANGUAGE c STRICT IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_key_bound_sql';
COMMENT ON FUNCTION almanac._key_bound(text, record, text) IS
	'internal: scan bound for key column comparisons (>=, > inclusive lower; <=, < exclusive upper)';

-- RocksDB values: [format byte 2][layout][checksum][heap tuple image of the
-- non-key columns]
-- (src/codec/valuecodec.h).  Internal functions for the tests and for inspecting
-- values dumped with ldb; the foreign data wrapper calls the C API.
CREATE FUNCTION almanac._encode_value(row_value record)
	RETURNS bytea
	LANGUAGE c STRICT IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_encode_value_sql';
COMMENT ON FUNCTION almanac._encode_value(record) IS
	'internal: the stored RocksDB value image of a row';

-- row_type: a typed NULL of the composite type to decode into (NULL::t)
CREATE FUNCTION almanac._decode_value(image bytea, row_type anyelement)
	RETURNS anyelement
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_decode_value_sql';
COMMENT ON FUNCTION almanac._decode_value(bytea, anyelement) IS
	'internal: the row of type row_type stored in a RocksDB value image';

CREATE FUNCTION almanac._value_roundtrip(value anyelement)
	RETURNS anyelement
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_value_roundtrip_sql';
COMMENT ON FUNCTION almanac._value_roundtrip(anyelement) IS
	'internal: value stored as a one-column RocksDB value image and read back';

-- image: a heap tuple image, as the bytes after the header of a value;
-- row_type as for _decode_value.  Forges a value: for the tests of what the
-- decoder checks whatever the fingerprint says.
CREATE FUNCTION almanac._seal_value(image bytea, row_type anyelement)
	RETURNS bytea
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'almanac_seal_value_sql';
COMMENT ON FUNCTION almanac._seal_value(bytea, anyelement) IS
	'internal: a RocksDB value of image with the layout of row_type and a valid checksum';

-- The value functions take and return raw stored bytes: a row decoded from
-- bytes that almanac did not write is only as safe as its checksum
-- (src/codec/valuecodec.h), so they are for the extension's owner and the
-- roles it grants them to, not for every role with USAGE on the schema.
REVOKE EXECUTE ON FUNCTION almanac._encode_value(record) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION almanac._decode_value(bytea, anyelement) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION almanac._value_roundtrip(anyelement) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION almanac._seal_value(bytea, anyelement) FROM PUBLIC;
