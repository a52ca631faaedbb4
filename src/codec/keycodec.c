/*-------------------------------------------------------------------------
 *
 * keycodec.c
 *	  Encoding and decoding of the RocksDB keys of almanac's foreign tables,
 *	  and the SQL functions that expose them (src/sql/30_keys.sql).
 *
 * The layout and its guarantees are described in keycodec.h; docs/usage.md
 * section "Keys and values" is the user-facing version.  In short: integer
 * and uuid segments are fixed-width and big-endian, so a key prefix bounds a
 * range scan and byte order is value order; text and bytea segments escape
 * '\' and ':' so that a segment always ends at the first unescaped ':'.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"
#include "utils/uuid.h"

#include "codec/keycodec.h"

/* how a type's values are written as a segment */
typedef enum KeySegKind
{
	SEG_UNSUPPORTED = 0,
	SEG_INT2,
	SEG_INT4,
	SEG_INT8,
	SEG_UUID,
	SEG_TEXT,					/* text, varchar */
	SEG_BPCHAR,					/* text without trailing blanks */
	SEG_BYTEA
} KeySegKind;

static KeySegKind
seg_kind_of_base(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
			return SEG_INT2;
		case INT4OID:
			return SEG_INT4;
		case INT8OID:
			return SEG_INT8;
		case UUIDOID:
			return SEG_UUID;
		case TEXTOID:
		case VARCHAROID:
			return SEG_TEXT;
		case BPCHAROID:
			return SEG_BPCHAR;
		case BYTEAOID:
			return SEG_BYTEA;
		default:
			return SEG_UNSUPPORTED;
	}
}

/*
 * The segment kind of a type, looking through domains.  The common base types
 * are recognized without a catalog lookup, since this runs once per value.
 */
static KeySegKind
seg_kind(Oid typid)
{
	KeySegKind	kind = seg_kind_of_base(typid);

	if (kind == SEG_UNSUPPORTED && OidIsValid(typid))
		kind = seg_kind_of_base(getBaseType(typid));
	return kind;
}

/* fixed width of a segment kind, 0 for the variable-width ones */
static int
seg_width(KeySegKind kind)
{
	switch (kind)
	{
		case SEG_INT2:
			return 2;
		case SEG_INT4:
			return 4;
		case SEG_INT8:
			return 8;
		case SEG_UUID:
			return UUID_LEN;
		default:
			return 0;
	}
}

bool
almanac_key_type_supported(Oid typid)
{
	return seg_kind(typid) != SEG_UNSUPPORTED;
}

void
almanac_key_check_type(Oid typid, const char *colname)
{
	if (!almanac_key_type_supported(typid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("key column \"%s\" has type %s, which cannot be part of a key",
						colname, format_type_be(typid)),
				 errhint("Key columns must be of type smallint, integer, bigint, uuid, text, varchar, char or bytea, or of a domain over one of them.")));
}

bool
almanac_key_type_orders(Oid typid)
{
	return seg_width(seg_kind(typid)) > 0;
}

/* the value of an integer key column as int64, whatever its width */
static int64
int_value(KeySegKind kind, Datum value)
{
	switch (kind)
	{
		case SEG_INT2:
			return DatumGetInt16(value);
		case SEG_INT4:
			return DatumGetInt32(value);
		default:
			return DatumGetInt64(value);
	}
}

bool
almanac_key_value_in_domain(Oid typid, Datum value)
{
	KeySegKind	kind = seg_kind(typid);

	if (kind == SEG_INT2 || kind == SEG_INT4 || kind == SEG_INT8)
		return int_value(kind, value) >= 0;
	/* a value longer than a whole key is in no key (measured without detoasting) */
	if (kind == SEG_TEXT || kind == SEG_BPCHAR || kind == SEG_BYTEA)
		return toast_raw_datum_size(value) - VARHDRSZ <= ALMANAC_KEY_MAX_LEN;
	return kind != SEG_UNSUPPORTED;
}

static void
key_too_long(const AlmanacKeyLayout *layout, const char *colname, size_t len)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("key of \"%s\" would be %zu bytes long, more than the maximum of %d",
					layout->prefix, len, ALMANAC_KEY_MAX_LEN),
			 colname ? errdetail("The value of key column \"%s\" makes it too long.", colname) : 0,
			 errhint("Text and bytea key values are stored in the key; keep them short, or key the table by a hash of the value.")));
}

/*
 * Append the segment for one value.  start is where this key began in buf,
 * for the length limit.
 */
static void
append_segment(StringInfo buf, int start, const AlmanacKeyLayout *layout,
			   int col, Datum value)
{
	const char *colname = layout->names ? layout->names[col] : "?";
	KeySegKind	kind = seg_kind(layout->typids[col]);

	switch (kind)
	{
		case SEG_INT2:
		case SEG_INT4:
		case SEG_INT8:
			{
				int64		v = int_value(kind, value);
				int			width = seg_width(kind);
				char		be[8];

				if (v < 0)
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("key column \"%s\" of \"%s\" cannot be negative: " INT64_FORMAT,
									colname, layout->prefix, v),
							 errhint("Keys are unsigned: integer key values are stored big-endian so that byte order is numeric order, which holds only for values >= 0.")));
				for (int i = width - 1; i >= 0; i--)
				{
					be[i] = (char) (v & 0xFF);
					v >>= 8;
				}
				/* descending: the complement, byte order reversed */
				if (ALMANAC_KEY_DESCENDING(layout, col))
					for (int i = 0; i < width; i++)
						be[i] = (char) ~be[i];
				appendBinaryStringInfo(buf, be, width);
				break;
			}
		case SEG_UUID:
			appendBinaryStringInfo(buf, (const char *) DatumGetUUIDP(value)->data,
								   UUID_LEN);
			break;
		case SEG_TEXT:
		case SEG_BPCHAR:
		case SEG_BYTEA:
			{
				struct varlena *v = PG_DETOAST_DATUM_PACKED(value);
				const char *p = VARDATA_ANY(v);
				size_t		n = VARSIZE_ANY_EXHDR(v);
				size_t		escaped = n;

				/* char(n) compares without its padding: so do its keys */
				if (kind == SEG_BPCHAR)
					while (n > 0 && p[n - 1] == ' ')
						n--;

				/* measure first, so a huge value fails before it is copied */
				for (size_t i = 0; i < n; i++)
					if (p[i] == '\\' || p[i] == ALMANAC_KEY_SEP)
						escaped++;
				if ((size_t) (buf->len - start) + escaped > ALMANAC_KEY_MAX_LEN)
					key_too_long(layout, colname,
								 (size_t) (buf->len - start) + escaped);

				/* most values (hashes, addresses) have nothing to escape */
				if (escaped == n)
				{
					appendBinaryStringInfo(buf, p, (int) n);
					break;
				}
				enlargeStringInfo(buf, (int) escaped);
				for (size_t i = 0; i < n; i++)
				{
					if (p[i] == '\\' || p[i] == ALMANAC_KEY_SEP)
						buf->data[buf->len++] = '\\';
					buf->data[buf->len++] = p[i];
				}
				buf->data[buf->len] = '\0';
				break;
			}
		case SEG_UNSUPPORTED:
			almanac_key_check_type(layout->typids[col], colname);
			break;
	}

	if (buf->len - start > ALMANAC_KEY_MAX_LEN)
		key_too_long(layout, colname, (size_t) (buf->len - start));
}

/* "prefix" followed by ':' and the segments of values[0 .. n-1] */
static void
append_segments(StringInfo buf, int start, const AlmanacKeyLayout *layout,
				int n, const Datum *values)
{
	Assert(n >= 0 && n <= layout->nkeys);
	appendStringInfoString(buf, layout->prefix);
	if (buf->len - start > ALMANAC_KEY_MAX_LEN)
		key_too_long(layout, NULL, (size_t) (buf->len - start));
	for (int i = 0; i < n; i++)
	{
		appendStringInfoChar(buf, ALMANAC_KEY_SEP);
		append_segment(buf, start, layout, i, values[i]);
	}
}

void
almanac_key_encode(StringInfo buf, const AlmanacKeyLayout *layout, int n,
				   const Datum *values, bool prefix_only)
{
	int			start = buf->len;

	if (n < 0 || n > layout->nkeys || (!prefix_only && n != layout->nkeys))
		elog(ERROR, "almanac_key_encode: %d values for a key of %d columns%s",
			 n, layout->nkeys, prefix_only ? " (prefix)" : "");

	append_segments(buf, start, layout, n, values);
	if (prefix_only)
	{
		/* after the last column comes ':' only when an attribute follows */
		if (n < layout->nkeys || layout->attribute != NULL)
			appendStringInfoChar(buf, ALMANAC_KEY_SEP);
	}
	else if (layout->attribute != NULL)
	{
		appendStringInfoChar(buf, ALMANAC_KEY_SEP);
		appendStringInfoString(buf, layout->attribute);
	}

	if (buf->len - start > ALMANAC_KEY_MAX_LEN)
		key_too_long(layout, NULL, (size_t) (buf->len - start));
}

bool
almanac_key_successor(StringInfo buf, int start)
{
	int			end = buf->len;

	while (end > start && (unsigned char) buf->data[end - 1] == 0xFF)
		end--;
	if (end == start)
		return false;
	buf->data[end - 1] = (char) ((unsigned char) buf->data[end - 1] + 1);
	buf->len = end;
	buf->data[end] = '\0';
	return true;
}

bool
almanac_key_encode_bound(StringInfo buf, const AlmanacKeyLayout *layout,
						 int n, const Datum *values, AlmanacKeyBound bound)
{
	int			start = buf->len;
	Oid			typid;
	bool		lower = (bound == ALMANAC_KEY_GE || bound == ALMANAC_KEY_GT);
	bool		desc;

	if (n < 1 || n > layout->nkeys)
		elog(ERROR, "almanac_key_encode_bound: bounded column %d of a key of %d columns",
			 n, layout->nkeys);
	typid = layout->typids[n - 1];
	if (!almanac_key_type_orders(typid))
		elog(ERROR, "almanac_key_encode_bound: key column \"%s\" of type %s has no byte order",
			 layout->names ? layout->names[n - 1] : "?", format_type_be(typid));
	desc = ALMANAC_KEY_DESCENDING(layout, n - 1);

	if (!almanac_key_value_in_domain(typid, values[n - 1]))
	{
		/* every key value is >= 0, so: nothing below, everything above */
		if (!lower)
			return false;
		almanac_key_encode(buf, layout, n - 1, values, true);
		/* descending: everything is the upper bound past the group */
		if (desc && !almanac_key_successor(buf, start))
			elog(ERROR, "almanac_key_encode_bound: key has no successor");
		return true;
	}

	/*
	 * P = "prefix:seg_1:...:seg_n".  The bounded column is fixed-width, so
	 * every key whose column n equals the value starts with P and every key
	 * of the group that sorts before (after) the value in key order sorts
	 * before (after) all strings starting with P.  A bound that must exclude
	 * the keys equal to the value when they come first in key order
	 * (ascending GT, LE; descending GE, LT) is past them all.
	 */
	append_segments(buf, start, layout, n, values);
	if ((bound == ALMANAC_KEY_GT || bound == ALMANAC_KEY_LE) != desc)
	{
		if (!almanac_key_successor(buf, start))
			elog(ERROR, "almanac_key_encode_bound: key has no successor");
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Decoding
 * ---------------------------------------------------------------------
 */

/*
 * Decode the segments of key starting at *pos, after the prefix and its
 * ':'.  On success, *pos is just past the last segment.  When more follows
 * the last segment (an attribute), the last variable-width segment stops at
 * the first unescaped ':'.
 */
static bool
decode_segments(const char *key, size_t len, size_t *pos, int nkeys,
				const Oid *typids, const bool *descending, Datum *values)
{
	size_t		p = *pos;

	for (int i = 0; i < nkeys; i++)
	{
		KeySegKind	kind = seg_kind(typids[i]);
		int			width = seg_width(kind);

		if (i > 0)
		{
			if (p >= len || key[p] != ALMANAC_KEY_SEP)
				return false;
			p++;
		}

		if (kind == SEG_UNSUPPORTED)
			return false;
		if (width > 0)
		{
			if (len - p < (size_t) width)
				return false;
			if (kind == SEG_UUID)
			{
				pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

				memcpy(u->data, key + p, UUID_LEN);
				values[i] = UUIDPGetDatum(u);
			}
			else
			{
				uint64		v = 0;

				for (int b = 0; b < width; b++)
					v = (v << 8) | (unsigned char) key[p + b];
				if (descending != NULL && descending[i])
					v = ~v & (width == 8 ? ~UINT64CONST(0) : (UINT64CONST(1) << (width * 8)) - 1);
				/* the sign bit is never set in a key we wrote */
				if (v >> (width * 8 - 1))
					return false;
				if (kind == SEG_INT2)
					values[i] = Int16GetDatum((int16) v);
				else if (kind == SEG_INT4)
					values[i] = Int32GetDatum((int32) v);
				else
					values[i] = Int64GetDatum((int64) v);
			}
			p += width;
		}
		else
		{
			/* unescape up to the first unescaped ':' or the end */
			text	   *t = palloc(VARHDRSZ + (len - p));
			char	   *out = VARDATA(t);
			size_t		n = 0;

			while (p < len && key[p] != ALMANAC_KEY_SEP)
			{
				if (key[p] == '\\')
				{
					if (p + 1 >= len ||
						(key[p + 1] != '\\' && key[p + 1] != ALMANAC_KEY_SEP))
						return false;
					p++;
				}
				out[n++] = key[p++];
			}
			SET_VARSIZE(t, VARHDRSZ + n);
			values[i] = PointerGetDatum(t);
		}
	}
	*pos = p;
	return true;
}

/*
 * The prefix ends at the first ':' (prefixes contain none); returns its
 * length, or -1 if there is no ':'.
 */
static int
key_prefix_len(const char *key, size_t len)
{
	const char *sep = memchr(key, ALMANAC_KEY_SEP, len);

	return sep ? (int) (sep - key) : -1;
}

bool
almanac_key_decode(const char *key, size_t len, const AlmanacKeyLayout *layout,
				   Datum *values)
{
	size_t		plen = strlen(layout->prefix);
	size_t		pos = plen;

	if (len < plen || memcmp(key, layout->prefix, plen) != 0)
		return false;
	if (layout->nkeys > 0)
	{
		if (pos >= len || key[pos] != ALMANAC_KEY_SEP)
			return false;
		pos++;
		if (!decode_segments(key, len, &pos, layout->nkeys, layout->typids,
							 layout->descending, values))
			return false;
	}

	if (layout->attribute != NULL)
	{
		size_t		alen = strlen(layout->attribute);

		if (len - pos != alen + 1 || key[pos] != ALMANAC_KEY_SEP ||
			memcmp(key + pos + 1, layout->attribute, alen) != 0)
			return false;
		return true;
	}
	return pos == len;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

bytea *
almanac_bytes_to_bytea(const char *data, size_t len)
{
	bytea	   *result = palloc(VARHDRSZ + len);

	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), data, len);
	return result;
}

/* a prefix or attribute given to a SQL function: non-empty, no ':' */
static char *
check_key_name(text *t, const char *what)
{
	char	   *s = text_to_cstring(t);

	if (s[0] == '\0' || strchr(s, ALMANAC_KEY_SEP) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid key %s \"%s\"", what, s),
				 errdetail("A key %s must be non-empty and must not contain \":\", the key separator.", what)));
	return s;
}

/* almanac.block_key(chain_id text, block_number bigint): block:{chain}:{BE8} */
PG_FUNCTION_INFO_V1(almanac_block_key_sql);
Datum
almanac_block_key_sql(PG_FUNCTION_ARGS)
{
	static const Oid typids[2] = {TEXTOID, INT8OID};
	static const char *const names[2] = {"chain_id", "block_number"};
	AlmanacKeyLayout layout = {"block", 2, typids, names, NULL};
	Datum		values[2] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)};
	StringInfoData buf;

	initStringInfo(&buf);
	almanac_key_encode(&buf, &layout, 2, values, false);
	PG_RETURN_BYTEA_P(almanac_bytes_to_bytea(buf.data, buf.len));
}

/* almanac.account_state_key(chain_id, account): account:{chain}:{account}:state */
PG_FUNCTION_INFO_V1(almanac_account_state_key_sql);
Datum
almanac_account_state_key_sql(PG_FUNCTION_ARGS)
{
	static const Oid typids[2] = {TEXTOID, TEXTOID};
	static const char *const names[2] = {"chain_id", "account"};
	AlmanacKeyLayout layout = {"account", 2, typids, names, "state"};
	Datum		values[2] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)};
	StringInfoData buf;

	initStringInfo(&buf);
	almanac_key_encode(&buf, &layout, 2, values, false);
	PG_RETURN_BYTEA_P(almanac_bytes_to_bytea(buf.data, buf.len));
}

/*
 * The layout and values of a (prefix, segments record, attribute) call: the
 * record's fields are the key columns, in order, typed as the record's
 * columns.  A null field is refused like a null key column.
 */
static void
layout_from_record(FunctionCallInfo fcinfo, int attr_argno,
				   AlmanacKeyLayout *layout, Datum **values)
{
	HeapTupleHeader rec = PG_GETARG_HEAPTUPLEHEADER(1);
	TupleDesc	desc;
	HeapTupleData tuple;
	Datum	   *vals;
	bool	   *nulls;
	Oid		   *typids;
	char	  **names;
	int			n = 0;

	layout->prefix = check_key_name(PG_GETARG_TEXT_PP(0), "prefix");
	layout->descending = NULL;
	layout->attribute = (PG_NARGS() > attr_argno && !PG_ARGISNULL(attr_argno)) ?
		check_key_name(PG_GETARG_TEXT_PP(attr_argno), "attribute") : NULL;

	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec),
								  HeapTupleHeaderGetTypMod(rec));
	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;

	vals = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(&tuple, desc, vals, nulls);

	*values = palloc(sizeof(Datum) * (desc->natts + 1));
	typids = palloc(sizeof(Oid) * (desc->natts + 1));
	names = palloc(sizeof(char *) * (desc->natts + 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		names[n] = pstrdup(NameStr(att->attname));
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("key segment %d (\"%s\") is null", n + 1, names[n]),
					 errdetail("Keys cannot contain nulls.")));
		if (att->atttypid == UNKNOWNOID)
		{
			/* an untyped literal, row('eth', ...): take it as text */
			typids[n] = TEXTOID;
			(*values)[n] = CStringGetTextDatum(DatumGetCString(vals[i]));
		}
		else
		{
			almanac_key_check_type(att->atttypid, names[n]);
			typids[n] = att->atttypid;
			(*values)[n] = vals[i];
		}
		n++;
	}
	ReleaseTupleDesc(desc);

	layout->nkeys = n;
	layout->typids = typids;
	layout->names = (const char *const *) names;
}

/*
 * almanac.make_key(prefix text, segments record, attribute text DEFAULT NULL)
 *		RETURNS bytea
 *
 * The key for the record's fields as key columns.  Not strict because
 * attribute may be NULL; a NULL prefix or segments yields NULL.
 */
PG_FUNCTION_INFO_V1(almanac_make_key_sql);
Datum
almanac_make_key_sql(PG_FUNCTION_ARGS)
{
	AlmanacKeyLayout layout;
	Datum	   *values;
	StringInfoData buf;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	layout_from_record(fcinfo, 2, &layout, &values);

	initStringInfo(&buf);
	almanac_key_encode(&buf, &layout, layout.nkeys, values, false);
	PG_RETURN_BYTEA_P(almanac_bytes_to_bytea(buf.data, buf.len));
}

/*
 * almanac.key_prefix(prefix text, segments record) RETURNS bytea
 *
 * The scan prefix of the keys whose leading columns equal the record's
 * fields, in a layout with more key columns or an attribute: "prefix:" and
 * each segment followed by ':' (almanac_key_encode with prefix_only and
 * n < nkeys).
 */
PG_FUNCTION_INFO_V1(almanac_key_prefix_sql);
Datum
almanac_key_prefix_sql(PG_FUNCTION_ARGS)
{
	AlmanacKeyLayout layout;
	Datum	   *values;
	StringInfoData buf;

	layout_from_record(fcinfo, 2, &layout, &values);
	/* one more column than given: the prefix then ends with ':' */
	layout.nkeys++;
	((Oid *) layout.typids)[layout.nkeys - 1] = TEXTOID;
	((const char **) layout.names)[layout.nkeys - 1] = "";

	initStringInfo(&buf);
	almanac_key_encode(&buf, &layout, layout.nkeys - 1, values, true);
	PG_RETURN_BYTEA_P(almanac_bytes_to_bytea(buf.data, buf.len));
}

/*
 * almanac._key_bound(prefix text, segments record, op text) RETURNS bytea
 *
 * Test hook for almanac_key_encode_bound: the record's last field is the
 * bounded column, op one of >=, >, <=, <.  NULL when no key can satisfy it.
 */
PG_FUNCTION_INFO_V1(almanac_key_bound_sql);
Datum
almanac_key_bound_sql(PG_FUNCTION_ARGS)
{
	AlmanacKeyLayout layout;
	Datum	   *values;
	char	   *op;
	AlmanacKeyBound bound;
	StringInfoData buf;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	op = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(op, ">=") == 0)
		bound = ALMANAC_KEY_GE;
	else if (strcmp(op, ">") == 0)
		bound = ALMANAC_KEY_GT;
	else if (strcmp(op, "<=") == 0)
		bound = ALMANAC_KEY_LE;
	else if (strcmp(op, "<") == 0)
		bound = ALMANAC_KEY_LT;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid comparison \"%s\"", op),
				 errhint("Use one of >=, >, <=, <.")));

	/* the bounded column decides; an attribute would not change the bound */
	layout_from_record(fcinfo, 3, &layout, &values);
	if (layout.nkeys < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a key bound needs at least one segment")));
	if (!almanac_key_type_orders(layout.typids[layout.nkeys - 1]))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("key segment of type %s cannot be bounded",
						format_type_be(layout.typids[layout.nkeys - 1])),
				 errdetail("Only integer and uuid segments sort like their values.")));

	initStringInfo(&buf);
	if (!almanac_key_encode_bound(&buf, &layout, layout.nkeys, values, bound))
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(almanac_bytes_to_bytea(buf.data, buf.len));
}

/*
 * almanac.decode_key(key bytea, key_types regtype[],
 *					  has_attribute boolean DEFAULT false) RETURNS text[]
 *
 * {prefix, segment_1, ..., segment_n[, attribute]}, each segment rendered by
 * its type's output function.  The prefix is whatever precedes the first
 * ':'; the attribute, whatever follows the last segment.
 */
PG_FUNCTION_INFO_V1(almanac_decode_key_sql);
Datum
almanac_decode_key_sql(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	ArrayType  *types = PG_GETARG_ARRAYTYPE_P(1);
	bool		has_attribute = PG_GETARG_BOOL(2);
	const char *data = VARDATA_ANY(key);
	size_t		len = VARSIZE_ANY_EXHDR(key);
	Datum	   *typdatums;
	bool	   *typnulls;
	int			nkeys;
	Oid		   *typids;
	Datum	   *values;
	Datum	   *out;
	int			nout = 0;
	int			plen;
	size_t		pos;
	bool		ok;

	if (ARR_NDIM(types) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("key_types must be a one-dimensional array")));
	deconstruct_array(types, REGTYPEOID, sizeof(Oid), true, TYPALIGN_INT,
					  &typdatums, &typnulls, &nkeys);
	typids = palloc(sizeof(Oid) * (nkeys + 1));
	for (int i = 0; i < nkeys; i++)
	{
		char	   *name = psprintf("key_types[%d]", i + 1);

		if (typnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("key_types must not contain nulls")));
		typids[i] = DatumGetObjectId(typdatums[i]);
		almanac_key_check_type(typids[i], name);
	}

	values = palloc(sizeof(Datum) * (nkeys + 1));
	plen = key_prefix_len(data, len);
	if (plen < 0 && nkeys == 0 && !has_attribute)
		plen = (int) len;		/* a key of no columns is the prefix alone */
	ok = plen > 0;
	pos = ok ? (size_t) plen : 0;
	if (ok && nkeys > 0)
	{
		pos++;
		ok = decode_segments(data, len, &pos, nkeys, typids, NULL, values);
	}
	if (ok)
	{
		if (has_attribute)
			ok = len - pos >= 2 && data[pos] == ALMANAC_KEY_SEP &&
				memchr(data + pos + 1, ALMANAC_KEY_SEP, len - pos - 1) == NULL;
		else
			ok = pos == len;
	}
	if (ok)
	{
		/* now that prefix and attribute are known, decode as the FDW does */
		AlmanacKeyLayout layout;

		layout.prefix = pnstrdup(data, plen);
		layout.nkeys = nkeys;
		layout.typids = typids;
		layout.names = NULL;
		layout.descending = NULL;
		layout.attribute = has_attribute ?
			pnstrdup(data + pos + 1, len - pos - 1) : NULL;
		ok = almanac_key_decode(data, len, &layout, values);
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("key does not have the layout prefix:%s%s",
						nkeys > 0 ? "segments" : "",
						has_attribute ? ":attribute" : ""),
				 errdetail("The key is %zu bytes long; key_types lists %d segments.",
						   len, nkeys)));

	out = palloc(sizeof(Datum) * (nkeys + 2));
	out[nout++] = PointerGetDatum(cstring_to_text_with_len(data, plen));
	for (int i = 0; i < nkeys; i++)
	{
		Oid			outfunc;
		bool		isvarlena;

		getTypeOutputInfo(typids[i], &outfunc, &isvarlena);
		out[nout++] = CStringGetTextDatum(OidOutputFunctionCall(outfunc, values[i]));
	}
	if (has_attribute)
		out[nout++] = PointerGetDatum(cstring_to_text_with_len(data + pos + 1,
															   len - pos - 1));

	PG_RETURN_ARRAYTYPE_P(construct_array(out, nout, TEXTOID, -1, false,
										  TYPALIGN_INT));
}

/* a key for messages: printable bytes as they are, others as \xNN */
char *
almanac_key_for_message(const char *key, size_t len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (size_t i = 0; i < len && buf.len < 200; i++)
	{
		unsigned char c = key[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			appendStringInfoChar(&buf, c);
		else
			appendStringInfo(&buf, "\\x%02x", c);
	}
	return buf.data;
}
