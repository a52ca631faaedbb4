/*-------------------------------------------------------------------------
 *
 * ingest.c
 *	  Exact, checked conversions of Ethereum JSON-RPC values for the set-based
 *	  ingest statements of src/sql/20_ingest.sql.
 *
 * Contract.  Every function takes the raw JSON string (as returned by
 * jsonb ->> 'field', so NULL when the field is absent or JSON null), the
 * number of the block being ingested (NULL if not known yet), the position of
 * the item inside the block (transaction index or log index, NULL for a
 * block-level field), the item kind ("block", "transaction", "receipt",
 * "log") and the field name.  They return the converted value or raise
 * ERRCODE_INVALID_PARAMETER_VALUE (22023) with a message that names the
 * block, the item and the field, so that a bad value in a batch of 100
 * blocks can be found without bisecting.  None of them writes anything, so an
 * error simply aborts the calling statement: nothing is half-ingested.
 *
 *	_hex_bigint		quantity ("0x" and 1..16 hex digits) -> bigint, refusing
 *					values above 2^63-1
 *	_hex_numeric	quantity of up to 64 hex digits (uint256) -> numeric,
 *					exactly: 2^256-1 comes out digit for digit
 *	_hex_id			hash or address of exactly nbytes bytes -> lowercase
 *					"0x" text (the core tables store lowercase); NULL passes
 *					through when nullable, otherwise it is a missing field
 *	_hex_bytes		"0x" and an even number of hex digits -> bytea
 *	_hex_topics		JSON array of 0..4 32-byte hashes -> text[] of lowercase
 *					hashes ('{}' for an anonymous log)
 *	_ingest_assert	raises when ok is false; used for cross-checks inside
 *					set-based statements (receipt belongs to its
 *					transaction, log names its transaction, ...), where a
 *					PL/pgSQL RAISE is not reachable without a per-row loop
 *
 * These are written in C because they run once per field of every
 * transaction and log: PL/pgSQL or regex-based SQL for the same checks costs
 * several times the insert itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "almanac.h"

PG_FUNCTION_INFO_V1(almanac_hex_bigint);
PG_FUNCTION_INFO_V1(almanac_hex_numeric);
PG_FUNCTION_INFO_V1(almanac_hex_id);
PG_FUNCTION_INFO_V1(almanac_hex_bytes);
PG_FUNCTION_INFO_V1(almanac_ingest_assert);
PG_FUNCTION_INFO_V1(almanac_hex_topics);

/* argument positions shared by the converters (after the value itself) */
typedef struct IngestWhere
{
	bool		has_block;
	int64		block;
	bool		has_item;
	int32		item;
	const char *kind;
	const char *field;
} IngestWhere;

static void
get_where(FunctionCallInfo fcinfo, int first, IngestWhere *w)
{
	w->has_block = !PG_ARGISNULL(first);
	w->block = w->has_block ? PG_GETARG_INT64(first) : 0;
	w->has_item = !PG_ARGISNULL(first + 1);
	w->item = w->has_item ? PG_GETARG_INT32(first + 1) : 0;
	w->kind = PG_ARGISNULL(first + 2) ? "block" : text_to_cstring(PG_GETARG_TEXT_PP(first + 2));
	w->field = PG_ARGISNULL(first + 3) ? "?" : text_to_cstring(PG_GETARG_TEXT_PP(first + 3));
}

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
	if (w->has_item && strcmp(w->kind, "block") != 0)
		appendStringInfo(&s, ", %s %d", w->kind, w->item);
	return s.data;
}

static void pg_attribute_noreturn()
fail(const IngestWhere *w, const char *what, const char *value, const char *hint)
{
	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: missing field \"%s\"", where_text(w), w->field),
				 hint ? errhint("%s", hint) : 0));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: field \"%s\" is not %s: \"%.80s\"", where_text(w), w->field, what, value),
			 hint ? errhint("%s", hint) : 0));
}

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
 * some nodes pad quantities).  Returns a pointer to the first digit and the
 * digit count, with leading zeros skipped.
 */
static const char *
quantity_digits(const char *s, int len, int maxdigits, int *ndigits,
				const IngestWhere *w, const char *what)
{
	const char *orig = s;
	int			origlen = len;
	int			i;

	if (len < 3 || s[0] != '0' || s[1] != 'x')
		fail(w, what, pnstrdup(s, len), "JSON-RPC quantities are strings of the form \"0x1a\".");
	for (i = 2; i < len; i++)
		if (hexval(s[i]) < 0)
			fail(w, what, pnstrdup(s, len), "JSON-RPC quantities are strings of the form \"0x1a\".");
	s += 2;
	len -= 2;
	while (len > 1 && *s == '0')
	{
		s++;
		len--;
	}
	if (len > maxdigits)
		fail(w, what, pnstrdup(orig, origlen), NULL);
	*ndigits = len;
	return s;
}

/* almanac._hex_bigint(v text, block bigint, item int, kind text, field text) */
Datum
almanac_hex_bigint(PG_FUNCTION_ARGS)
{
	IngestWhere w;
	text	   *t;
	const char *s;
	int			n,
				i;
	uint64		v = 0;

	if (PG_ARGISNULL(0))
	{
		get_where(fcinfo, 1, &w);
		fail(&w, NULL, NULL, NULL);
	}
	t = PG_GETARG_TEXT_PP(0);
	s = VARDATA_ANY(t);
	n = VARSIZE_ANY_EXHDR(t);
	/* fast path: well-formed and small, the common case */
	if (n >= 3 && n <= 17 && s[0] == '0' && s[1] == 'x')
	{
		for (i = 2; i < n; i++)
		{
			int			d = hexval(s[i]);

			if (d < 0)
				break;
			v = (v << 4) | d;
		}
		if (i == n && v <= (uint64) PG_INT64_MAX)
			PG_RETURN_INT64((int64) v);
	}
	get_where(fcinfo, 1, &w);
	s = quantity_digits(s, n, 16, &n, &w, "a hex quantity of at most 63 bits");
	v = 0;
	for (i = 0; i < n; i++)
		v = (v << 4) | hexval(s[i]);
	if (v > (uint64) PG_INT64_MAX)
		fail(&w, "a hex quantity of at most 63 bits", text_to_cstring(t), NULL);
	PG_RETURN_INT64((int64) v);
}

/* almanac._hex_numeric(v text, block bigint, item int, kind text, field text) */
Datum
almanac_hex_numeric(PG_FUNCTION_ARGS)
{
	IngestWhere w;
	text	   *t;
	const char *s;
	int			n,
				i;
	uint64		limb[4] = {0, 0, 0, 0};	/* little-endian 64-bit limbs */
	char		dec[128];		/* 5 groups of 19 digits and the terminator */
	int			pos;

	get_where(fcinfo, 1, &w);
	if (PG_ARGISNULL(0))
		fail(&w, NULL, NULL, NULL);
	t = PG_GETARG_TEXT_PP(0);
	s = quantity_digits(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), 64, &n, &w,
						"a hex quantity of at most 256 bits");

	/* hex digits into limbs, least significant digit first */
	for (i = 0; i < n; i++)
	{
		int			d = hexval(s[n - 1 - i]);

		limb[i / 16] |= (uint64) d << (4 * (i % 16));
	}

	if (limb[1] == 0 && limb[2] == 0 && limb[3] == 0 && limb[0] <= (uint64) PG_INT64_MAX)
		PG_RETURN_NUMERIC(int64_to_numeric((int64) limb[0]));

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
	PG_RETURN_DATUM(DirectFunctionCall3(numeric_in, CStringGetDatum(&dec[pos]),
										ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
}

/*
 * almanac._hex_id(v text, nbytes int, nullable bool,
 *				   block bigint, item int, kind text, field text)
 */
Datum
almanac_hex_id(PG_FUNCTION_ARGS)
{
	IngestWhere w;
	text	   *t,
			   *out;
	const char *s;
	char	   *d;
	int			n,
				nbytes = PG_GETARG_INT32(1),
				i;

	if (PG_ARGISNULL(0))
	{
		if (!PG_ARGISNULL(2) && PG_GETARG_BOOL(2))
			PG_RETURN_NULL();
		get_where(fcinfo, 3, &w);
		fail(&w, NULL, NULL, NULL);
	}
	t = PG_GETARG_TEXT_PP(0);
	s = VARDATA_ANY(t);
	n = VARSIZE_ANY_EXHDR(t);
	if (n != 2 + 2 * nbytes || s[0] != '0' || s[1] != 'x')
		goto bad;
	out = (text *) palloc(VARHDRSZ + n);
	SET_VARSIZE(out, VARHDRSZ + n);
	d = VARDATA(out);
	d[0] = '0';
	d[1] = 'x';
	for (i = 2; i < n; i++)
	{
		char		c = s[i];

		if (c >= 'A' && c <= 'F')
			c += 'a' - 'A';
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			goto bad;
		d[i] = c;
	}
	PG_RETURN_TEXT_P(out);

bad:
	get_where(fcinfo, 3, &w);
	fail(&w, nbytes == 20 ? "a 20-byte hex address" : "a 32-byte hex hash",
		 text_to_cstring(t), NULL);
}

/* almanac._hex_bytes(v text, block bigint, item int, kind text, field text) */
Datum
almanac_hex_bytes(PG_FUNCTION_ARGS)
{
	IngestWhere w;
	text	   *t;
	bytea	   *out;
	const char *s;
	char	   *d;
	int			n,
				i;

	if (PG_ARGISNULL(0))
	{
		get_where(fcinfo, 1, &w);
		fail(&w, NULL, NULL, NULL);
	}
	t = PG_GETARG_TEXT_PP(0);
	s = VARDATA_ANY(t);
	n = VARSIZE_ANY_EXHDR(t);
	if (n < 2 || n % 2 != 0 || s[0] != '0' || s[1] != 'x')
		goto bad;
	out = (bytea *) palloc(VARHDRSZ + (n - 2) / 2);
	SET_VARSIZE(out, VARHDRSZ + (n - 2) / 2);
	d = VARDATA(out);
	for (i = 2; i < n; i += 2)
	{
		int			hi = hexval(s[i]),
					lo = hexval(s[i + 1]);

		if (hi < 0 || lo < 0)
			goto bad;
		*d++ = (char) ((hi << 4) | lo);
	}
	PG_RETURN_BYTEA_P(out);

bad:
	get_where(fcinfo, 1, &w);
	fail(&w, "hex data (\"0x\" and an even number of hex digits)", text_to_cstring(t), NULL);
}

/*
 * almanac._ingest_assert(ok bool, message text, got text, want text,
 *						  block bigint, item int, kind text, field text)
 *
 * Returns true when ok; otherwise raises 22023 "<where>: <message>" with the
 * offending and the expected value in the detail.  A NULL ok counts as
 * failure (a missing counterpart in an outer join).
 */
Datum
almanac_ingest_assert(PG_FUNCTION_ARGS)
{
	IngestWhere w;

	if (!PG_ARGISNULL(0) && PG_GETARG_BOOL(0))
		PG_RETURN_BOOL(true);
	get_where(fcinfo, 4, &w);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: %s", where_text(&w),
					PG_ARGISNULL(1) ? "invalid input" : text_to_cstring(PG_GETARG_TEXT_PP(1))),
			 errdetail("Field \"%s\" is %s%s%s, expected %s%s%s.", w.field,
					   PG_ARGISNULL(2) ? "" : "\"",
					   PG_ARGISNULL(2) ? "missing" : text_to_cstring(PG_GETARG_TEXT_PP(2)),
					   PG_ARGISNULL(2) ? "" : "\"",
					   PG_ARGISNULL(3) ? "" : "\"",
					   PG_ARGISNULL(3) ? "nothing" : text_to_cstring(PG_GETARG_TEXT_PP(3)),
					   PG_ARGISNULL(3) ? "" : "\"")));
	PG_RETURN_BOOL(false);
}

/*
 * almanac._hex_topics(v jsonb, block bigint, item int, kind text, field text)
 */
Datum
almanac_hex_topics(PG_FUNCTION_ARGS)
{
	IngestWhere w;
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	Datum		elems[4];
	int			n = 0;

	if (PG_ARGISNULL(0))
	{
		get_where(fcinfo, 1, &w);
		fail(&w, NULL, NULL, NULL);
	}
	jb = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_ARRAY(jb) || JB_ROOT_IS_SCALAR(jb))
	{
		get_where(fcinfo, 1, &w);
		fail(&w, "a JSON array of 32-byte hex hashes",
			 JsonbToCString(NULL, &jb->root, VARSIZE(jb)), NULL);
	}
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		text	   *out;
		char	   *d;
		int			i;

		if (tok != WJB_ELEM)
			continue;
		if (n == 4 || v.type != jbvString || v.val.string.len != 66 ||
			v.val.string.val[0] != '0' || v.val.string.val[1] != 'x')
			goto bad;
		out = (text *) palloc(VARHDRSZ + 66);
		SET_VARSIZE(out, VARHDRSZ + 66);
		d = VARDATA(out);
		d[0] = '0';
		d[1] = 'x';
		for (i = 2; i < 66; i++)
		{
			char		c = v.val.string.val[i];

			if (c >= 'A' && c <= 'F')
				c += 'a' - 'A';
			else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				goto bad;
			d[i] = c;
		}
		elems[n++] = PointerGetDatum(out);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));

bad:
	get_where(fcinfo, 1, &w);
	fail(&w, "a JSON array of at most 4 32-byte hex hashes",
		 JsonbToCString(NULL, &jb->root, VARSIZE(jb)), NULL);
}
