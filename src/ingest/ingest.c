/*-------------------------------------------------------------------------
 *
 * ingest.c
 *	  Decoding of Ethereum JSON-RPC blocks and receipts for the set-based
 *	  ingest statements of src/sql/20_ingest.sql, and the hex check of the
 *	  core tables' constraints.
 *
 * The ingest function (PL/pgSQL) hands the JSON of a whole batch to these
 * functions, which walk it once each in C and return the rows ready for the
 * INSERTs:
 *
 *	_ingest_flatten			the batch fetched and decompressed once
 *	_ingest_headers			every block's number, hash, parent hash,
 *							timestamp and metadata, as arrays (the conflict
 *							checks and the blocks INSERT use them)
 *	_ingest_chain_id		the EVM chain id the batch's transactions carry,
 *							checked against the chain's
 *	_ingest_transactions	one row per transaction of the given blocks, with
 *							status, gas used and contract address from the
 *							receipts (set-returning)
 *	_ingest_logs			one row per log of the given blocks
 *							(set-returning)
 *
 * Every value is converted exactly (quantities up to 256 bits, hashes and
 * addresses lowercased) and every malformed or missing field raises
 * ERRCODE_INVALID_PARAMETER_VALUE (22023) naming the block, the item and the
 * field, so that a bad value in a batch of 100 blocks can be found without
 * bisecting.  None of them writes anything, so an error aborts the calling
 * statement with nothing half-ingested.
 *
 * Why C: JSON-RPC spells every number and byte string as hex text.  Walking
 * it with jsonb_array_elements and ->> costs a copy of every element and a
 * key lookup per field in SQL, then a function call per conversion; that
 * cost several times the inserts themselves.  Here each field is one key
 * lookup in the binary jsonb and one pass over its characters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "almanac.h"

PG_FUNCTION_INFO_V1(almanac_is_hex_id_sql);
PG_FUNCTION_INFO_V1(almanac_ingest_flatten_sql);
PG_FUNCTION_INFO_V1(almanac_ingest_headers_sql);
PG_FUNCTION_INFO_V1(almanac_ingest_chain_id_sql);
PG_FUNCTION_INFO_V1(almanac_ingest_transactions_sql);
PG_FUNCTION_INFO_V1(almanac_ingest_logs_sql);

/*
 * Where a value sits, for error messages: "block 12, transaction 3: field
 * "logs[].data" ...".  item < 0 is a block-level field.
 */
typedef struct IngestWhere
{
	bool		has_block;
	int64		block;
	int32		item;
	const char *kind;			/* "block", "transaction", "receipt", ... */
	const char *prefix;			/* "" or "logs[]." */
	const char *field;
} IngestWhere;

#define QUANTITY_HINT "JSON-RPC quantities are strings of the form \"0x1a\"."

/* "block 12, transaction 3" / "block 12" / "block (number unknown)" */
static char *
where_text(const IngestWhere *w)
{
	StringInfoData s;

	initStringInfo(&s);
	if (w->has_block)
		appendStringInfo(&s, "block " INT64_FORMAT, w->block);
	else
		appendStringInfoString(&s, "block (number unknown)");
	if (w->item >= 0 && strcmp(w->kind, "block") != 0)
		appendStringInfo(&s, ", %s %d", w->kind, w->item);
	return s.data;
}

/* the field is missing (value NULL) or is not what (value shown, cut) */
static void pg_attribute_noreturn()
fail(const IngestWhere *w, const char *what, const char *value, const char *hint)
{
	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: missing field \"%s%s\"", where_text(w), w->prefix, w->field),
				 hint ? errhint("%s", hint) : 0));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: field \"%s%s\" is not %s: \"%.80s\"",
					where_text(w), w->prefix, w->field, what, value),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * A cross-check failed: the message says what is wrong, the detail shows
 * the value found (NULL: missing) and the one expected.
 */
static void pg_attribute_noreturn()
fail_check(const IngestWhere *w, const char *message, const char *got, const char *want)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: %s", where_text(w), message),
			 errdetail("Field \"%s%s\" is %s%s%s, expected \"%s\".", w->prefix, w->field,
					   got ? "\"" : "", got ? got : "missing", got ? "\"" : "", want)));
}

/* ---------------------------------------------------------------------
 * Reading jsonb
 * --------------------------------------------------------------------- */

/* the value of key in an object container, or NULL when it is absent */
static inline JsonbValue *
get_key(JsonbContainer *obj, const char *key, JsonbValue *buf)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), buf);
}

static inline bool
is_object(const JsonbValue *v)
{
	return v != NULL && v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

static inline bool
is_array(const JsonbValue *v)
{
	return v != NULL && v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data);
}

/* jsonb_typeof of a value inside a document; NULL for a missing one */
static const char *
value_typeof(const JsonbValue *v)
{
	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "string";
		case jbvNumeric:
			return "number";
		case jbvBool:
			return "boolean";
		case jbvBinary:
			return JsonContainerIsObject(v->val.binary.data) ? "object" : "array";
		default:
			return "unknown";
	}
}

/* jsonb_typeof of a whole document (a scalar is a one-element raw array) */
static const char *
root_typeof(Jsonb *jb)
{
	if (JB_ROOT_IS_SCALAR(jb))
		return value_typeof(getIthJsonbValueFromContainer(&jb->root, 0));
	return JB_ROOT_IS_OBJECT(jb) ? "object" : "array";
}

/* the JSON text of a value, for error messages */
static char *
value_json(JsonbValue *v)
{
	if (v->type == jbvBinary)
		return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	return JsonbToCString(NULL, &JsonbValueToJsonb(v)->root, 0);
}

/*
 * What ->> gives: the characters of a string (not NUL-terminated), the JSON
 * text of anything else, NULL for a missing value or JSON null.
 */
static const char *
value_text(JsonbValue *v, int *len)
{
	char	   *s;

	if (v == NULL || v->type == jbvNull)
	{
		*len = 0;
		return NULL;
	}
	if (v->type == jbvString)
	{
		*len = v->val.string.len;
		return v->val.string.val;
	}
	s = value_json(v);
	*len = strlen(s);
	return s;
}

/* ->> of a key, see value_text */
static inline const char *
key_text(JsonbContainer *obj, const char *key, int *len)
{
	JsonbValue	buf;

	return value_text(get_key(obj, key, &buf), len);
}

/* ---------------------------------------------------------------------
 * Conversions.  s is what value_text returned (NULL: missing).
 * --------------------------------------------------------------------- */

static inline int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Check "0x" followed by 1..maxdigits hex digits (leading zeros allowed:
 * some nodes pad quantities).  Returns a pointer to the first significant
 * digit and sets their count.
 */
static const char *
quantity_digits(const char *s, int len, int maxdigits, int *ndigits,
				const IngestWhere *w, const char *what)
{
	const char *d;
	int			n,
				i;

	if (s == NULL)
		fail(w, NULL, NULL, NULL);
	if (len < 3 || s[0] != '0' || s[1] != 'x')
		fail(w, what, pnstrdup(s, len), QUANTITY_HINT);
	for (i = 2; i < len; i++)
		if (hexval(s[i]) < 0)
			fail(w, what, pnstrdup(s, len), QUANTITY_HINT);
	d = s + 2;
	n = len - 2;
	while (n > 1 && *d == '0')
	{
		d++;
		n--;
	}
	if (n > maxdigits)
		fail(w, what, pnstrdup(s, len), NULL);
	*ndigits = n;
	return d;
}

/* a quantity up to 2^63-1 */
static int64
conv_bigint(const char *s, int len, const IngestWhere *w)
{
	static const char what[] = "a hex quantity of at most 63 bits";
	const char *d;
	int			n,
				i;
	uint64		v = 0;

	d = quantity_digits(s, len, 16, &n, w, what);
	for (i = 0; i < n; i++)
		v = (v << 4) | hexval(d[i]);
	if (v > (uint64) PG_INT64_MAX)
		fail(w, what, pnstrdup(s, len), NULL);
	return (int64) v;
}

/* a quantity up to max, which what describes */
static int64
conv_small(const char *s, int len, int64 max, const char *what, const IngestWhere *w)
{
	int64		v = conv_bigint(s, len, w);

	if (v > max)
		fail(w, what, pnstrdup(s, len), NULL);
	return v;
}

/* a uint256 as numeric, exactly: 2^256-1 comes out digit for digit */
static Datum
conv_numeric(const char *s, int len, const IngestWhere *w)
{
	const char *d;
	int			n,
				i;
	uint64		limb[4] = {0, 0, 0, 0};	/* little-endian 64-bit limbs */
	char		dec[128];		/* 5 groups of 19 digits and the terminator */
	int			pos;

	d = quantity_digits(s, len, 64, &n, w, "a hex quantity of at most 256 bits");
	for (i = 0; i < n; i++)
		limb[i / 16] |= (uint64) hexval(d[n - 1 - i]) << (4 * (i % 16));

	if (limb[1] == 0 && limb[2] == 0 && limb[3] == 0 && limb[0] <= (uint64) PG_INT64_MAX)
		return NumericGetDatum(int64_to_numeric((int64) limb[0]));

	/*
	 * Long division of the 256-bit value by 10^19 (the largest power of ten
	 * in a uint64), collecting 19-digit groups from the right.
	 */
	pos = sizeof(dec) - 1;
	dec[pos] = '\0';
	while (limb[0] | limb[1] | limb[2] | limb[3])
	{
		const uint64 base = UINT64CONST(10000000000000000000);
		unsigned __int128 rem = 0;
		uint64		group;
		int			k;

		for (k = 3; k >= 0; k--)
		{
			unsigned __int128 cur = (rem << 64) | limb[k];

			limb[k] = (uint64) (cur / base);
			rem = cur % base;
		}
		group = (uint64) rem;
		for (k = 0; k < 19; k++)
		{
			dec[--pos] = '0' + (group % 10);
			group /= 10;
		}
	}
	while (dec[pos] == '0' && dec[pos + 1] != '\0')
		pos++;
	return DirectFunctionCall3(numeric_in, CStringGetDatum(&dec[pos]),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/*
 * Lowercase "0x" hex of exactly nbytes bytes into out (2 + 2 * nbytes
 * characters).  False when s is not that.
 */
static bool
lower_hex_id(const char *s, int len, int nbytes, char *out)
{
	int			i;

	if (len != 2 + 2 * nbytes || s[0] != '0' || s[1] != 'x')
		return false;
	out[0] = '0';
	out[1] = 'x';
	for (i = 2; i < len; i++)
	{
		char		c = s[i];

		if (c >= 'A' && c <= 'F')
			c += 'a' - 'A';
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		out[i] = c;
	}
	return true;
}

/* a hash (32 bytes) or address (20 bytes), as lowercase text */
static text *
conv_id(const char *s, int len, int nbytes, const IngestWhere *w)
{
	text	   *out;

	if (s == NULL)
		fail(w, NULL, NULL, NULL);
	out = (text *) palloc(VARHDRSZ + 2 + 2 * nbytes);
	SET_VARSIZE(out, VARHDRSZ + 2 + 2 * nbytes);
	if (!lower_hex_id(s, len, nbytes, VARDATA(out)))
		fail(w, nbytes == 20 ? "a 20-byte hex address" : "a 32-byte hex hash",
			 pnstrdup(s, len), NULL);
	return out;
}

/* "0x" and an even number of hex digits, as bytea */
static bytea *
conv_bytes(const char *s, int len, const IngestWhere *w)
{
	bytea	   *out;
	char	   *d;
	int			i;

	if (s == NULL)
		fail(w, NULL, NULL, NULL);
	if (len < 2 || len % 2 != 0 || s[0] != '0' || s[1] != 'x')
		goto bad;
	out = (bytea *) palloc(VARHDRSZ + (len - 2) / 2);
	SET_VARSIZE(out, VARHDRSZ + (len - 2) / 2);
	d = VARDATA(out);
	for (i = 2; i < len; i += 2)
	{
		int			hi = hexval(s[i]),
					lo = hexval(s[i + 1]);

		if (hi < 0 || lo < 0)
			goto bad;
		*d++ = (char) ((hi << 4) | lo);
	}
	return out;

bad:
	fail(w, "hex data (\"0x\" and an even number of hex digits)", pnstrdup(s, len), NULL);
}

/* seconds since the Unix epoch, as to_timestamp() reads them */
static TimestampTz
conv_timestamp(const char *s, int len, const IngestWhere *w)
{
	const int64 epoch = (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	int64		secs = conv_bigint(s, len, w);

	if (secs >= END_TIMESTAMP / USECS_PER_SEC + epoch)
		fail(w, "a Unix time within the range of timestamptz", pnstrdup(s, len), NULL);
	return (secs - epoch) * USECS_PER_SEC;
}

/*
 * A log's topics: a JSON array of 0..4 32-byte hashes, as text[] of
 * lowercase hashes ('{}' for an anonymous log).  The first one, if any, is
 * returned in *topic0.
 */
static ArrayType *
conv_topics(JsonbValue *v, const IngestWhere *w, text **topic0)
{
	JsonbContainer *arr;
	Datum		elems[4];
	int			n,
				i;

	if (v == NULL)
		fail(w, NULL, NULL, NULL);
	if (!is_array(v))
		fail(w, "a JSON array of 32-byte hex hashes", value_json(v), NULL);
	arr = v->val.binary.data;
	n = JsonContainerSize(arr);
	if (n > 4)
		goto bad;
	for (i = 0; i < n; i++)
	{
		JsonbValue *t = getIthJsonbValueFromContainer(arr, i);
		text	   *out = (text *) palloc(VARHDRSZ + 66);

		SET_VARSIZE(out, VARHDRSZ + 66);
		if (t->type != jbvString ||
			!lower_hex_id(t->val.string.val, t->val.string.len, 32, VARDATA(out)))
			goto bad;
		elems[i] = PointerGetDatum(out);
	}
	*topic0 = n > 0 ? DatumGetTextPP(elems[0]) : NULL;
	return construct_array_builtin(elems, n, TEXTOID);

bad:
	fail(w, "a JSON array of at most 4 32-byte hex hashes", value_json(v), NULL);
}

static inline bool
text_equal(text *a, text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/* ---------------------------------------------------------------------
 * The hex check of the core tables
 * --------------------------------------------------------------------- */

/*
 * almanac._is_hex_id(v text, nbytes int) RETURNS boolean
 *
 * v ~ '^0x[0-9a-f]{2*nbytes}$', for the CHECK constraints on hashes and
 * addresses.  Those run on every row every writer inserts; a regular
 * expression costs microseconds per value, a fifth of a bulk insert's time.
 */
Datum
almanac_is_hex_id_sql(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int32		nbytes = PG_GETARG_INT32(1);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	int			i;

	if (nbytes < 0 || len != 2 + 2 * (int64) nbytes || s[0] != '0' || s[1] != 'x')
		PG_RETURN_BOOL(false);
	for (i = 2; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(true);
}

/* ---------------------------------------------------------------------
 * Blocks
 * --------------------------------------------------------------------- */

/*
 * almanac._ingest_flatten(v jsonb) RETURNS jsonb
 *
 * v fetched and decompressed.  A batch read from a table arrives as a TOAST
 * pointer or compressed; PL/pgSQL keeps it that way, and every decoder below
 * would fetch and decompress megabytes again.
 */
Datum
almanac_ingest_flatten_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_JSONB_P(PG_GETARG_JSONB_P(0));
}

/*
 * One side of a batch, its blocks or their receipts: a JSON array with an
 * element per block, or for a single block (ingest_block) the element itself,
 * which spares wrapping a block's JSON into a new array.
 */
typedef struct BatchSide
{
	Jsonb	   *jb;				/* NULL for SQL NULL */
	bool		single;
} BatchSide;

/*
 * Argument argno as a batch side.  In a batch it must be an array, else the
 * error is message and what it is.  A single block's side is taken as it is
 * (its elements are checked where they are read).
 */
static BatchSide
batch_side(FunctionCallInfo fcinfo, int argno, bool single, const char *message)
{
	BatchSide	side = {PG_ARGISNULL(argno) ? NULL : PG_GETARG_JSONB_P(argno), single};

	if (single)
		return side;
	if (side.jb == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s, not NULL", message)));
	if (!JB_ROOT_IS_ARRAY(side.jb) || JB_ROOT_IS_SCALAR(side.jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s, not %s", message, root_typeof(side.jb))));
	return side;
}

/* the number of blocks a side holds */
static int
batch_size(const BatchSide *side)
{
	return side->single ? 1 : JsonContainerSize(&side->jb->root);
}

/* the element of block i (0-based), NULL when there is none */
static JsonbValue *
batch_elem(const BatchSide *side, int i)
{
	JsonbValue *v;

	if (side->jb == NULL || i < 0 || i >= batch_size(side))
		return NULL;
	if (!side->single)
		return getIthJsonbValueFromContainer(&side->jb->root, i);
	if (JB_ROOT_IS_SCALAR(side->jb))
		return getIthJsonbValueFromContainer(&side->jb->root, 0);
	v = palloc(sizeof(JsonbValue));
	v->type = jbvBinary;
	v->val.binary.data = &side->jb->root;
	v->val.binary.len = VARSIZE(side->jb) - VARHDRSZ;
	return v;
}

/*
 * Block i of a batch _ingest_headers checked: its object on the blocks side,
 * its receipts array on the other.
 */
static JsonbContainer *
batch_container(const BatchSide *side, int i, bool is_blocks)
{
	JsonbValue *v = batch_elem(side, i);

	if (is_blocks ? !is_object(v) : !is_array(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 is_blocks ? errmsg("block %d of the batch is not a JSON object", i) :
				 errmsg("the receipts of block %d of the batch are not a JSON array", i)));
	return v->val.binary.data;
}

/* the array at key of an object (the checks ran before) */
static JsonbContainer *
key_array(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf,
			   *v = get_key(obj, key, &buf);

	if (!is_array(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("field \"%s\" is not a JSON array", key)));
	return v->val.binary.data;
}

/*
 * The elements of a bigint[] argument about a batch of n blocks, none NULL:
 * positions of some of them (1 to n), or the number of each.
 */
static int64 *
int8_arg(FunctionCallInfo fcinfo, int argno, bool positions, int n, int *count)
{
	Datum	   *elems;
	bool	   *nulls;
	int64	   *v;
	int			i;

	deconstruct_array(PG_GETARG_ARRAYTYPE_P(argno), INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, count);
	if (!positions && *count != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d block numbers for %d blocks", *count, n)));
	v = palloc(sizeof(int64) * Max(*count, 1));
	for (i = 0; i < *count; i++)
	{
		if (nulls[i] ||
			(positions && (DatumGetInt64(elems[i]) < 1 || DatumGetInt64(elems[i]) > n)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("block %s %d of %d is out of range",
							positions ? "position" : "number", i + 1, *count)));
		v[i] = DatumGetInt64(elems[i]);
	}
	return v;
}

/*
 * The elements of a text[] argument about a batch of n blocks, none NULL:
 * the hash of each block, as C strings.
 */
static char **
text_arg(FunctionCallInfo fcinfo, int argno, int n)
{
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	char	  **v;

	deconstruct_array(PG_GETARG_ARRAYTYPE_P(argno), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &count);
	if (count != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d block hashes for %d blocks", count, n)));
	v = palloc(sizeof(char *) * Max(count, 1));
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("block hash %d of %d is NULL", i + 1, count)));
		v[i] = TextDatumGetCString(elems[i]);
	}
	return v;
}

/*
 * The first place an item was seen in a call: a transaction hash in the
 * batch, a log index in its block.  Keys are the hash's 66 characters, or
 * the log index.
 */
typedef struct SeenTx
{
	char		hash[67];
	int64		block;
	int32		item;
} SeenTx;

typedef struct SeenLog
{
	int32		log_index;
	int32		receipt;
	int32		log;
} SeenLog;

/*
 * The header without what the tables hold already (number, hash, parent
 * hash, timestamp), the transactions and the bulky logs bloom.
 */
static Jsonb *
header_metadata(JsonbContainer *obj)
{
	static const char *const dropped[] = {
		"transactions", "logsBloom", "number", "hash", "parentHash", "timestamp"
	};
	JsonbParseState *state = NULL;
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v,
			   *res = NULL;
	JsonbIteratorToken tok;
	bool		skip = false;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			int			i;

			skip = false;
			for (i = 0; i < lengthof(dropped); i++)
				if (v.val.string.len == strlen(dropped[i]) &&
					memcmp(v.val.string.val, dropped[i], v.val.string.len) == 0)
					skip = true;
		}
		if (skip && (tok == WJB_KEY || tok == WJB_VALUE))
			continue;
		res = pushJsonbValue(&state, tok, tok < WJB_BEGIN_ARRAY ? &v : NULL);
	}
	return JsonbValueToJsonb(res);
}

/*
 * almanac._ingest_headers(blocks jsonb, receipts jsonb, single boolean,
 *		OUT nums bigint[], OUT hashes text[], OUT parents text[],
 *		OUT timestamps timestamptz[], OUT metadata jsonb[])
 *
 * Checks the shape of a batch (two arrays of equal length, objects and
 * arrays where they belong) and decodes every block's header; the arrays are
 * in batch order.  With single, blocks is one block and receipts its
 * receipts.  Transactions, receipts and logs are checked by the decoders
 * that read them.
 */
Datum
almanac_ingest_headers_sql(PG_FUNCTION_ARGS)
{
	bool		single = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	BatchSide	blocks,
				receipts;
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	Datum	   *nums,
			   *hashes,
			   *parents,
			   *stamps,
			   *metas;
	int			n,
				i;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	blocks = batch_side(fcinfo, 0, single, "blocks must be a JSON array of blocks");
	receipts = batch_side(fcinfo, 1, single, "receipts must be a JSON array");
	n = batch_size(&blocks);
	if (batch_size(&receipts) != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d blocks but %d receipt arrays", n, batch_size(&receipts)),
				 errhint("The i-th element of receipts is the eth_getBlockReceipts result of the i-th block.")));

	nums = palloc(sizeof(Datum) * Max(n, 1));
	hashes = palloc(sizeof(Datum) * Max(n, 1));
	parents = palloc(sizeof(Datum) * Max(n, 1));
	stamps = palloc(sizeof(Datum) * Max(n, 1));
	metas = palloc(sizeof(Datum) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		JsonbValue *b = batch_elem(&blocks, i);
		JsonbValue *r = batch_elem(&receipts, i);
		IngestWhere w = {false, 0, i, "batch position", "", "block"};
		JsonbContainer *obj;
		JsonbValue	buf,
				   *txs;
		const char *s;
		int			len;
		int64		num;

		if (!is_object(b))
			fail_check(&w, "a block must be a JSON object", value_typeof(b), "object");
		obj = b->val.binary.data;
		w.field = "number";
		s = key_text(obj, "number", &len);
		num = conv_bigint(s, len, &w);
		nums[i] = Int64GetDatum(num);

		w = (IngestWhere) {true, num, -1, "block", "", "hash"};
		s = key_text(obj, "hash", &len);
		hashes[i] = PointerGetDatum(conv_id(s, len, 32, &w));
		w.field = "parentHash";
		s = key_text(obj, "parentHash", &len);
		parents[i] = PointerGetDatum(conv_id(s, len, 32, &w));
		w.field = "timestamp";
		s = key_text(obj, "timestamp", &len);
		stamps[i] = TimestampTzGetDatum(conv_timestamp(s, len, &w));
		w.field = "transactions";
		txs = get_key(obj, "transactions", &buf);
		if (!is_array(txs))
			fail_check(&w, "field \"transactions\" must be an array of transaction objects",
					   value_typeof(txs), "array");
		w.field = "receipts";
		if (!is_array(r))
			fail_check(&w, "its receipts must be a JSON array (the eth_getBlockReceipts result)",
					   value_typeof(r), "array");
		metas[i] = JsonbPGetDatum(header_metadata(obj));
	}

	values[0] = PointerGetDatum(construct_array(nums, n, INT8OID, sizeof(int64),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array_builtin(hashes, n, TEXTOID));
	values[2] = PointerGetDatum(construct_array_builtin(parents, n, TEXTOID));
	values[3] = PointerGetDatum(construct_array(stamps, n, TIMESTAMPTZOID, sizeof(TimestampTz),
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[4] = PointerGetDatum(construct_array(metas, n, JSONBOID, -1, false, TYPALIGN_INT));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * almanac._ingest_chain_id(chain text, blocks jsonb, nums bigint[], known bigint,
 *		single boolean) RETURNS bigint
 *
 * Every transaction that carries a chainId (legacy pre-EIP-155 ones do not)
 * must carry the chain's EVM chain id: known, or when the chain has none yet,
 * the smallest of the batch, which is returned to be learned.  The first
 * transaction that differs is the error.  Returns NULL when neither exists.
 * Transactions that are not objects are left to _ingest_transactions.
 */
Datum
almanac_ingest_chain_id_sql(PG_FUNCTION_ARGS)
{
	char	   *chain;
	BatchSide	blocks;
	bool		has_known = !PG_ARGISNULL(3);
	int64		known = has_known ? PG_GETARG_INT64(3) : 0;
	int64	   *nums;
	int			nblocks,
				b;
	/* every chainId seen, in batch order, with where it was */
	int			n = 0,
				cap = 64,
				k;
	int64	   *cids = palloc(sizeof(int64) * cap);
	int		   *cblock = palloc(sizeof(int) * cap);
	int		   *cidx = palloc(sizeof(int) * cap);
	int64		want;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("chain, blocks and block numbers must not be NULL")));
	chain = text_to_cstring(PG_GETARG_TEXT_PP(0));
	blocks = batch_side(fcinfo, 1, !PG_ARGISNULL(4) && PG_GETARG_BOOL(4),
						"blocks must be a JSON array of blocks");
	nums = int8_arg(fcinfo, 2, false, batch_size(&blocks), &nblocks);
	for (b = 0; b < nblocks; b++)
	{
		JsonbContainer *txs = key_array(batch_container(&blocks, b, true), "transactions");
		int			ntx = JsonContainerSize(txs),
					t;

		for (t = 0; t < ntx; t++)
		{
			JsonbValue *tx = getIthJsonbValueFromContainer(txs, t);
			IngestWhere w = {true, nums[b], t, "transaction", "", "chainId"};
			const char *s;
			int			len;

			if (!is_object(tx))
				continue;
			s = key_text(tx->val.binary.data, "chainId", &len);
			if (s == NULL)
				continue;
			if (n == cap)
			{
				cap *= 2;
				cids = repalloc(cids, sizeof(int64) * cap);
				cblock = repalloc(cblock, sizeof(int) * cap);
				cidx = repalloc(cidx, sizeof(int) * cap);
			}
			cids[n] = conv_bigint(s, len, &w);
			cblock[n] = b;
			cidx[n] = t;
			n++;
		}
	}
	if (n == 0)
	{
		if (!has_known)
			PG_RETURN_NULL();
		PG_RETURN_INT64(known);
	}

	want = cids[0];
	for (k = 1; k < n; k++)
		want = Min(want, cids[k]);
	if (has_known)
		want = known;
	for (k = 0; k < n; k++)
		if (cids[k] != want)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("block " INT64_FORMAT ", transaction %d: chainId " INT64_FORMAT " does not match chain \"%s\"",
							nums[cblock[k]], cidx[k], cids[k], chain),
					 has_known ?
					 errdetail("Chain \"%s\" has EVM chain id " INT64_FORMAT ".", chain, known) :
					 errdetail("The transactions of the batch carry different chain ids."),
					 errhint("Check that the follower feeds the right chain_id.")));
	PG_RETURN_INT64(want);
}

/*
 * A receipt's checks shared by both decoders: it is an object, names its
 * transaction and carries an array of logs.  Sets the (lowercase) hash it
 * names and its logs.
 */
static JsonbContainer *
receipt_object(JsonbValue *rc, IngestWhere *w, text **tx_hash, JsonbContainer **logs)
{
	JsonbContainer *obj;
	JsonbValue	buf,
			   *v;
	const char *s;
	int			len;

	w->field = "receipts";
	if (!is_object(rc))
		fail_check(w, "transaction without a receipt object", value_typeof(rc), "object");
	obj = rc->val.binary.data;
	w->field = "transactionHash";
	s = key_text(obj, "transactionHash", &len);
	*tx_hash = conv_id(s, len, 32, w);
	w->field = "logs";
	v = get_key(obj, "logs", &buf);
	if (v == NULL)
		fail(w, NULL, NULL, NULL);
	if (!is_array(v))
		fail_check(w, "field \"logs\" must be an array of log objects", value_typeof(v), "array");
	*logs = v->val.binary.data;
	return obj;
}

/* working state of a set-returning decoder */
typedef struct Decoder
{
	ReturnSetInfo *rsinfo;
	MemoryContext rowcxt;		/* reset after each row */
	MemoryContext oldcxt;
} Decoder;

static void
decoder_start(FunctionCallInfo fcinfo, Decoder *d)
{
	InitMaterializedSRF(fcinfo, 0);
	d->rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	d->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "almanac ingest row",
									  ALLOCSET_DEFAULT_SIZES);
}

static inline void
decoder_row_begin(Decoder *d)
{
	CHECK_FOR_INTERRUPTS();
	d->oldcxt = MemoryContextSwitchTo(d->rowcxt);
}

static inline void
decoder_row_end(Decoder *d, Datum *values, bool *nulls)
{
	tuplestore_putvalues(d->rsinfo->setResult, d->rsinfo->setDesc, values, nulls);
	MemoryContextSwitchTo(d->oldcxt);
	MemoryContextReset(d->rowcxt);
}

/* the columns of _ingest_transactions, in its RETURNS TABLE order */
typedef enum TxColumn
{
	TX_BLOCK_NUMBER,
	TX_INDEX,
	TX_HASH,
	TX_TYPE,
	TX_FROM_ADDRESS,
	TX_TO_ADDRESS,
	TX_CONTRACT_ADDRESS,
	TX_VALUE,
	TX_NONCE,
	TX_DATA,
	TX_STATUS,
	TX_GAS_USED,
	TX_NCOLUMNS
} TxColumn;

/* a transaction of a block with its receipt, and where they are for messages */
typedef struct TxPair
{
	int64		block_number;
	int			idx;
	JsonbContainer *txo;
	JsonbContainer *rco;
	text	   *tx_hash;
	IngestWhere w;				/* the transaction */
	IngestWhere wr;				/* its receipt */
} TxPair;

/*
 * A transaction hash not seen before in the call (seen: SeenTx by hash);
 * else 22023 naming both places, rather than the key's 23505 later.
 */
static void
tx_first_seen(HTAB *seen, text *tx_hash, IngestWhere *w)
{
	char		key[67];
	SeenTx	   *first;
	bool		found;

	memcpy(key, VARDATA(tx_hash), 66);
	key[66] = '\0';
	first = hash_search(seen, key, HASH_ENTER, &found);
	if (found)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: transaction %s is repeated", where_text(w), key),
				 errdetail("It is also transaction %d of block " INT64_FORMAT ".",
						   first->item, first->block)));
	first->block = w->block;
	first->item = w->item;
}

/*
 * The transaction and receipt at idx of a block (either may be missing),
 * checked against each other: both objects, the transaction's hash not
 * seen before in the call, the receipt's transactionHash the transaction's
 * hash, its blockHash (when it has one) block_hash.
 */
static void
tx_pair(TxPair *t, int64 num, int idx, JsonbValue *tx, JsonbValue *rc,
		const char *block_hash, HTAB *seen)
{
	const char *s;
	int			len;
	JsonbValue	buf,
			   *v;
	text	   *rc_hash;
	JsonbContainer *logs;
	char		got_hash[67];

	t->block_number = num;
	t->idx = idx;
	t->w = (IngestWhere) {true, num, idx, "transaction", "", "transactions"};
	t->wr = (IngestWhere) {true, num, idx, "receipt", "", "receipts"};
	if (!is_object(tx))
		fail_check(&t->w, tx == NULL ? "receipt without a transaction in the block" :
				   "a transaction must be a JSON object (call eth_getBlockByNumber with true)",
				   value_typeof(tx), "object");
	t->txo = tx->val.binary.data;
	if (!is_object(rc))
		fail_check(&t->wr, "transaction without a receipt object", value_typeof(rc), "object");

	t->w.field = "hash";
	s = key_text(t->txo, "hash", &len);
	t->tx_hash = conv_id(s, len, 32, &t->w);
	tx_first_seen(seen, t->tx_hash, &t->w);

	t->rco = receipt_object(rc, &t->wr, &rc_hash, &logs);
	t->wr.field = "transactionHash";
	if (!text_equal(rc_hash, t->tx_hash))
	{
		s = key_text(t->rco, "transactionHash", &len);
		fail_check(&t->wr, "receipt does not belong to the transaction at its position",
				   pnstrdup(s, len), text_to_cstring(t->tx_hash));
	}
	/* an absent blockHash is fine; one that is there must be the block's */
	t->wr.field = "blockHash";
	v = get_key(t->rco, "blockHash", &buf);
	if (v != NULL)
	{
		s = value_text(v, &len);
		if (s == NULL || !lower_hex_id(s, len, 32, got_hash) ||
			memcmp(got_hash, block_hash, 66) != 0)
		{
			if (s != NULL)
				(void) conv_id(s, len, 32, &t->wr);	/* malformed: say so */
			fail_check(&t->wr, "receipt does not belong to the block",
					   s ? pnstrdup(s, len) : NULL, block_hash);
		}
	}
}

/* the row of _ingest_transactions for a checked pair */
static void
tx_row(TxPair *t, Datum *values, bool *nulls)
{
	IngestWhere *w = &t->w;
	IngestWhere *wr = &t->wr;
	JsonbContainer *txo = t->txo;
	JsonbContainer *rco = t->rco;
	const char *s;
	int			len;
	JsonbValue	buf,
			   *v;

	values[TX_BLOCK_NUMBER] = Int64GetDatum(t->block_number);
	values[TX_INDEX] = Int32GetDatum(t->idx);
	values[TX_HASH] = PointerGetDatum(t->tx_hash);
	/* before EIP-2718 every transaction was legacy, type 0 */
	w->field = "type";
	s = key_text(txo, "type", &len);
	values[TX_TYPE] = Int16GetDatum(s == NULL ? 0 :
									conv_small(s, len, PG_INT16_MAX,
											   "a transaction type of at most 0x7fff", w));
	w->field = "from";
	s = key_text(txo, "from", &len);
	values[TX_FROM_ADDRESS] = PointerGetDatum(conv_id(s, len, 20, w));
	/* no "to": a contract creation */
	w->field = "to";
	s = key_text(txo, "to", &len);
	nulls[TX_TO_ADDRESS] = s == NULL;
	if (s != NULL)
		values[TX_TO_ADDRESS] = PointerGetDatum(conv_id(s, len, 20, w));
	wr->field = "contractAddress";
	s = key_text(rco, "contractAddress", &len);
	nulls[TX_CONTRACT_ADDRESS] = s == NULL;
	if (s != NULL)
		values[TX_CONTRACT_ADDRESS] = PointerGetDatum(conv_id(s, len, 20, wr));
	w->field = "value";
	s = key_text(txo, "value", &len);
	values[TX_VALUE] = conv_numeric(s, len, w);
	w->field = "nonce";
	s = key_text(txo, "nonce", &len);
	values[TX_NONCE] = Int64GetDatum(conv_bigint(s, len, w));
	/* "input" in every node today, "data" in some old ones */
	w->field = "input";
	s = key_text(txo, "input", &len);
	if (s == NULL)
		s = key_text(txo, "data", &len);
	values[TX_DATA] = PointerGetDatum(conv_bytes(s, len, w));
	/* receipts before Byzantium carry a state root instead of a status */
	wr->field = "status";
	v = get_key(rco, "status", &buf);
	nulls[TX_STATUS] = v == NULL;
	if (v != NULL)
	{
		s = value_text(v, &len);
		values[TX_STATUS] = Int16GetDatum(conv_small(s, len, 1, "0x0 or 0x1", wr));
	}
	wr->field = "gasUsed";
	s = key_text(rco, "gasUsed", &len);
	values[TX_GAS_USED] = Int64GetDatum(conv_bigint(s, len, wr));
}

/* the rows of the block at batch position pos (0-based): its transactions, its receipts */
static void
block_transactions(Decoder *d, JsonbContainer *block, JsonbContainer *txs,
				   JsonbContainer *rcs, int64 pos, HTAB *seen)
{
	IngestWhere bw = {false, 0, pos, "batch position", "", "number"};
	const char *s;
	int			len;
	int64		num;
	char		block_hash[67];
	int			ntx = JsonContainerSize(txs);
	int			nrc = JsonContainerSize(rcs);

	s = key_text(block, "number", &len);
	num = conv_bigint(s, len, &bw);
	bw = (IngestWhere) {true, num, -1, "block", "", "hash"};
	s = key_text(block, "hash", &len);
	memcpy(block_hash, VARDATA(conv_id(s, len, 32, &bw)), 66);
	block_hash[66] = '\0';

	for (int idx = 0; idx < Max(ntx, nrc); idx++)
	{
		TxPair		t;
		Datum		values[TX_NCOLUMNS];
		bool		nulls[TX_NCOLUMNS] = {false};

		decoder_row_begin(d);
		tx_pair(&t, num, idx,
				idx < ntx ? getIthJsonbValueFromContainer(txs, idx) : NULL,
				idx < nrc ? getIthJsonbValueFromContainer(rcs, idx) : NULL,
				block_hash, seen);
		tx_row(&t, values, nulls);
		decoder_row_end(d, values, nulls);
	}
}

/*
 * almanac._ingest_transactions(blocks jsonb, receipts jsonb, positions bigint[],
 *		single boolean) RETURNS TABLE (block_number bigint, tx_index int, tx_hash text,
 *		tx_type smallint, from_address text, to_address text,
 *		contract_address text, value numeric, nonce bigint, data bytea,
 *		status smallint, gas_used bigint)
 *
 * The transactions of the blocks at the given positions (1-based) of a batch
 * that _ingest_headers accepted, in order, each with its receipt: the i-th
 * receipt must be the i-th transaction's (its transactionHash) and the
 * block's (its blockHash, when it has one).
 */
Datum
almanac_ingest_transactions_sql(PG_FUNCTION_ARGS)
{
	bool		single = PG_GETARG_BOOL(3);
	BatchSide	blocks = batch_side(fcinfo, 0, single, "blocks must be a JSON array of blocks");
	BatchSide	receipts = batch_side(fcinfo, 1, single, "receipts must be a JSON array");
	int64	   *pos;
	int			npos;
	Decoder		d;
	HASHCTL		ctl;
	HTAB	   *seen;

	pos = int8_arg(fcinfo, 2, true, batch_size(&blocks), &npos);
	decoder_start(fcinfo, &d);
	/* the transactions of the call, to name a repeated one (not the key's 23505) */
	ctl.keysize = 67;
	ctl.entrysize = sizeof(SeenTx);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("almanac ingest transactions", 256, &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (int p = 0; p < npos; p++)
	{
		JsonbContainer *block = batch_container(&blocks, pos[p] - 1, true);
		JsonbContainer *txs = key_array(block, "transactions");
		JsonbContainer *rcs = batch_container(&receipts, pos[p] - 1, false);

		block_transactions(&d, block, txs, rcs, pos[p] - 1, seen);
	}
	return (Datum) 0;
}

/* the columns of _ingest_logs, in its RETURNS TABLE order */
typedef enum LogColumn
{
	LOG_BLOCK_NUMBER,
	LOG_TX_INDEX,
	LOG_INDEX,
	LOG_CONTRACT_ADDRESS,
	LOG_EVENT_TYPE,
	LOG_TOPICS,
	LOG_DATA,
	LOG_NCOLUMNS
} LogColumn;

/*
 * A logIndex (s, len: its text) not seen before in the block (seen: SeenLog
 * by index), for log l of receipt idx; else 22023 naming both logs, rather
 * than the key's 23505 later.
 */
static void
log_first_seen(HTAB *seen, int32 log_index, int idx, int l, const char *s, int len,
			   IngestWhere *w)
{
	bool		found;
	SeenLog    *first = hash_search(seen, &log_index, HASH_ENTER, &found);

	if (found)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: log %d repeats logIndex %s",
						where_text(w), l, pnstrdup(s, len)),
				 errdetail("Log %d of transaction %d of the block has it too.",
						   first->log, first->receipt)));
	first->receipt = idx;
	first->log = l;
}

/* nodes repeat the block in each log: its blockNumber and blockHash, when present, must be num's */
static void
log_check_block(JsonbContainer *lo, int64 num, const char *block_hash, IngestWhere *w)
{
	const char *s;
	int			len;
	JsonbValue	buf,
			   *v;

	w->field = "blockNumber";
	s = key_text(lo, "blockNumber", &len);
	if (s != NULL && conv_bigint(s, len, w) != num)
		fail_check(w, "a log names another block than its receipt's",
				   pnstrdup(s, len), psprintf("0x%" INT64_MODIFIER "x", num));
	w->field = "blockHash";
	v = get_key(lo, "blockHash", &buf);
	if (v != NULL)
	{
		char		got_hash[67];

		s = value_text(v, &len);
		if (s == NULL || !lower_hex_id(s, len, 32, got_hash) ||
			strlen(block_hash) != 66 || memcmp(got_hash, block_hash, 66) != 0)
		{
			if (s != NULL)
				(void) conv_id(s, len, 32, w); /* malformed: say so */
			fail_check(w, "a log names another block than its receipt's",
					   s ? pnstrdup(s, len) : NULL, block_hash);
		}
	}
}

/*
 * The row of log l (lv) of receipt idx of block num, whose transaction is
 * tx_hash: its fields checked, in document order, against the block and the
 * transaction.
 */
static void
log_row(JsonbValue *lv, int64 num, int idx, int l, const char *block_hash, text *tx_hash,
		HTAB *seen, text *anonymous, Datum *values)
{
	IngestWhere w = {true, num, idx, "transaction", "", "logs"};
	JsonbContainer *lo;
	JsonbValue	buf,
			   *v;
	const char *s;
	int			len;
	text	   *topic0;

	if (!is_object(lv))
		fail_check(&w, "a log must be a JSON object", value_typeof(lv), "object");
	lo = lv->val.binary.data;
	w.prefix = "logs[].";

	values[LOG_BLOCK_NUMBER] = Int64GetDatum(num);
	values[LOG_TX_INDEX] = Int32GetDatum(idx);
	w.field = "logIndex";
	s = key_text(lo, "logIndex", &len);
	values[LOG_INDEX] = Int32GetDatum(conv_small(s, len, PG_INT32_MAX,
												 "a log index of at most 0x7fffffff", &w));
	log_first_seen(seen, DatumGetInt32(values[LOG_INDEX]), idx, l, s, len, &w);
	log_check_block(lo, num, block_hash, &w);

	/*
	 * A log marked removed (eth_getLogs and subscriptions send them when a
	 * reorg takes their block out of the chain) is not part of the block:
	 * stored, it would read as a live event.
	 */
	w.field = "removed";
	v = get_key(lo, "removed", &buf);
	if (v != NULL && v->type != jbvNull && !(v->type == jbvBool && !v->val.boolean))
		fail_check(&w, "a log marked removed by a reorg is not part of the block",
				   v->type == jbvBool ? "true" : value_typeof(v), "false");
	w.field = "address";
	s = key_text(lo, "address", &len);
	values[LOG_CONTRACT_ADDRESS] = PointerGetDatum(conv_id(s, len, 20, &w));
	w.field = "topics";
	values[LOG_TOPICS] = PointerGetDatum(conv_topics(get_key(lo, "topics", &buf), &w, &topic0));
	values[LOG_EVENT_TYPE] = PointerGetDatum(topic0 ? topic0 : anonymous);
	w.field = "data";
	s = key_text(lo, "data", &len);
	values[LOG_DATA] = PointerGetDatum(conv_bytes(s, len, &w));
	/* nodes repeat the transaction hash in each log */
	w.field = "transactionHash";
	v = get_key(lo, "transactionHash", &buf);
	if (v != NULL)
	{
		s = value_text(v, &len);
		if (!text_equal(conv_id(s, len, 32, &w), tx_hash))
			fail_check(&w, "a log names a transaction that is not its receipt's",
					   pnstrdup(s, len), text_to_cstring(tx_hash));
	}
}

/*
 * The rows of the logs of block num's receipts (rcs); seen holds the
 * block's log indexes.  rcptcxt: what a receipt's logs share, reset for
 * each.
 */
static void
block_logs(Decoder *d, JsonbContainer *rcs, int64 num, const char *block_hash,
		   HTAB *seen, MemoryContext rcptcxt, text *anonymous)
{
	int			nrc = JsonContainerSize(rcs);

	for (int idx = 0; idx < nrc; idx++)
	{
		IngestWhere wr = {true, num, idx, "receipt", "", "receipts"};
		JsonbContainer *logs;
		text	   *tx_hash;
		MemoryContext oldcxt;
		int			nlogs;

		MemoryContextReset(rcptcxt);
		oldcxt = MemoryContextSwitchTo(rcptcxt);
		(void) receipt_object(getIthJsonbValueFromContainer(rcs, idx), &wr, &tx_hash, &logs);
		MemoryContextSwitchTo(oldcxt);
		nlogs = JsonContainerSize(logs);
		for (int l = 0; l < nlogs; l++)
		{
			Datum		values[LOG_NCOLUMNS];
			bool		nulls[LOG_NCOLUMNS] = {false};

			decoder_row_begin(d);
			log_row(getIthJsonbValueFromContainer(logs, l), num, idx, l, block_hash, tx_hash,
					seen, anonymous, values);
			decoder_row_end(d, values, nulls);
		}
	}
}

/*
 * almanac._ingest_logs(receipts jsonb, nums bigint[], hashes text[], positions bigint[],
 *		ntx bigint, single boolean) RETURNS TABLE (block_number bigint, tx_index int,
 *		log_index int, contract_address text, event_type text, topics text[], data bytea)
 *
 * The logs of the blocks at the given positions, in order.  ntx is the
 * number of transactions the same statement stored from those blocks: it
 * must match the receipts, and computing it (a scalar subquery over the
 * transactions INSERT) makes the statement run that INSERT, with every
 * transaction and receipt check, before the logs are read, so errors come in
 * document order whatever plan is chosen.  A log with no topics is an
 * anonymous event: event_type 'anonymous', topics '{}'.
 */
Datum
almanac_ingest_logs_sql(PG_FUNCTION_ARGS)
{
	BatchSide	receipts = batch_side(fcinfo, 0, PG_GETARG_BOOL(5), "receipts must be a JSON array");
	int64		ntx = PG_GETARG_INT64(4);
	int64		nseen = 0;
	char	  **hashes;
	HASHCTL		ctl;
	HTAB	   *seen = NULL;
	int64	   *pos;
	int64	   *nums;
	int			nnums,
				npos;
	Decoder		d;
	MemoryContext rcptcxt;		/* what a receipt's logs share */
	text	   *anonymous = cstring_to_text("anonymous");

	nums = int8_arg(fcinfo, 1, false, batch_size(&receipts), &nnums);
	hashes = text_arg(fcinfo, 2, batch_size(&receipts));
	pos = int8_arg(fcinfo, 3, true, batch_size(&receipts), &npos);
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(SeenLog);
	decoder_start(fcinfo, &d);
	rcptcxt = AllocSetContextCreate(CurrentMemoryContext, "almanac ingest receipt",
									ALLOCSET_SMALL_SIZES);
	for (int p = 0; p < npos; p++)
	{
		JsonbContainer *rcs = batch_container(&receipts, pos[p] - 1, false);

		nseen += JsonContainerSize(rcs);
		/* the block's log indexes, to name a repeated one (not the key's 23505) */
		if (seen)
			hash_destroy(seen);
		ctl.hcxt = CurrentMemoryContext;
		seen = hash_create("almanac ingest log indexes", 256, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		block_logs(&d, rcs, nums[pos[p] - 1], hashes[pos[p] - 1], seen, rcptcxt, anonymous);
	}
	if (nseen != ntx)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the blocks have " INT64_FORMAT " receipts, not " INT64_FORMAT, nseen, ntx)));
	return (Datum) 0;
}
