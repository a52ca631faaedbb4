/*-------------------------------------------------------------------------
 *
 * valuecodec.c
 *	  Encoding and decoding of the RocksDB values of almanac's foreign
 *	  tables (the format is described in valuecodec.h), and the internal SQL
 *	  functions the tests use to exercise it (src/sql/30_keys.sql).
 *
 * The image is a heap tuple because PostgreSQL already knows how to lay out
 * and read back every type, NULLs included, in that form; what this file
 * adds is making the tuple self-contained (no TOAST pointers) on the way in,
 * binding it to the row layout it was written with (the layout fingerprint
 * and checksum of valuecodec.h, which say why this and not per-type
 * validation), and refusing, on the way out, any value written under another
 * layout, damaged, or whose structure does not fit in its bytes, and any
 * array, composite, range, multirange or name whose inside its readers could
 * not read, so that it raises an error instead of being misread.
 *
 * Cost on the read path: one CRC-32C pass over the value (hardware
 * instructions), one 16-byte comparison of fingerprints, and a walk of the
 * datums that have a check (none for a row of scalars and text); the
 * fingerprints (SHA-256, natts + 1 of them) and the checks are computed once
 * per table layout (fdw.c and mirror.c cache them with the layout).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/tupmacs.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/int.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/multirangetypes.h"
#include "utils/rangetypes.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "almanac.h"
#include "codec/bigendian.h"
#include "codec/keycodec.h"
#include "codec/valuecodec.h"

/*
 * What the decoder checks inside a column's datum before anything reads it
 * (see "Checks inside datums" in valuecodec.h): the structure of arrays,
 * composite datums, ranges and multiranges, whose readers trust their
 * headers, offsets and the type OID they carry, and that a name ends within
 * its 64 bytes.  Built once per layout, with the type catalogs as they were
 * when the fingerprint was computed; NULL for a type that needs nothing.
 */
typedef enum ValueCheckKind
{
	CHECK_ARRAY,
	CHECK_COMPOSITE,
	CHECK_RANGE,
	CHECK_MULTIRANGE,
	CHECK_NAME,
	CHECK_NUMERIC,
	CHECK_JSONB
} ValueCheckKind;

struct AlmanacValueCheck
{
	ValueCheckKind kind;
	Oid			typid;			/* the OID the datum carries: an array's
								 * element type, a composite's row type, a
								 * range's or multirange's own type */
	int16		typlen;			/* of the array's elements or the range's
								 * bounds */
	char		typalign;
	const AlmanacValueCheck *sub;	/* check of the elements or bounds, or
									 * NULL */
	TupleDesc	desc;			/* composite: its attributes */
	const AlmanacValueCheck **atts; /* composite: a check per attribute, or
									 * NULL when none needs one */
};

/* where a corrupt value is reported: the table and the value's length */
typedef struct ValueWhere
{
	const char *relname;
	size_t		len;
} ValueWhere;

static void layout_attr(StringInfo buf, Form_pg_attribute att);
static const AlmanacValueCheck **value_checks_of(TupleDesc desc);
static void value_check_tuple(const char *img, uint32 tlen, TupleDesc desc,
							  const AlmanacValueCheck **checks, int limit, const bool *skip,
							  const ValueWhere *where,
							  Datum *values, bool *isnull);

/* append a type node (see layout_type) to a serialized layout */
static void
layout_node(StringInfo buf, Oid typid, int32 typmod, char typtype, int16 typlen,
			bool typbyval, char typalign, uint32 nchildren)
{
	almanac_append_be32(buf, typid);
	almanac_append_be32(buf, (uint32) typmod);
	appendStringInfoChar(buf, typtype);
	almanac_append_be16(buf, (uint16) typlen);
	appendStringInfoChar(buf, typbyval ? 'v' : 'r');
	appendStringInfoChar(buf, typalign);
	almanac_append_be32(buf, nchildren);
}

/*
 * Serialize a type into a layout: its OID, typmod, kind and storage, and
 * whatever it is built from whose layout can change or whose OID the stored
 * bytes carry (a domain's base type, an array's element type, a range's
 * subtype, a multirange's range type, a composite type's attributes), each
 * node with its count of children, so that the serialization is a prefix
 * code of the tree: two different layouts never serialize to the same bytes.
 * Composite types cannot contain themselves, so this ends; check_stack_depth
 * guards against deep nesting anyway.
 */
static void
layout_type(StringInfo buf, Oid typid, int32 typmod)
{
	HeapTuple	tp;
	Form_pg_type typ;
	char		typtype;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Oid			basetype;
	int32		basetypmod;
	Oid			elem;

	check_stack_depth();
	tp = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for type %u", typid);
	typ = (Form_pg_type) GETSTRUCT(tp);
	typtype = typ->typtype;
	typlen = typ->typlen;
	typbyval = typ->typbyval;
	typalign = typ->typalign;
	basetype = typ->typbasetype;
	basetypmod = typ->typtypmod;
	elem = typ->typelem;
	ReleaseSysCache(tp);

	switch (typtype)
	{
		case TYPTYPE_DOMAIN:
			layout_node(buf, typid, typmod, typtype, typlen, typbyval, typalign, 1);
			layout_type(buf, basetype, basetypmod);
			break;
		case TYPTYPE_COMPOSITE:
			{
				TupleDesc	desc = lookup_rowtype_tupdesc(typid, -1);

				layout_node(buf, typid, typmod, typtype, typlen, typbyval, typalign,
							(uint32) desc->natts);
				for (int i = 0; i < desc->natts; i++)
					layout_attr(buf, TupleDescAttr(desc, i));
				ReleaseTupleDesc(desc);
			}
			break;
		case TYPTYPE_RANGE:
			layout_node(buf, typid, typmod, typtype, typlen, typbyval, typalign, 1);
			layout_type(buf, get_range_subtype(typid), -1);
			break;
		case TYPTYPE_MULTIRANGE:
			layout_node(buf, typid, typmod, typtype, typlen, typbyval, typalign, 1);
			layout_type(buf, get_multirange_range(typid), -1);
			break;
		default:
			/* a true array (not a fixed-length type such as name or point) */
			if (OidIsValid(elem) && typlen == -1)
			{
				layout_node(buf, typid, typmod, typtype, typlen, typbyval, typalign, 1);
				layout_type(buf, elem, -1);
			}
			else
				layout_node(buf, typid, typmod, typtype, typlen, typbyval, typalign, 0);
			break;
	}
}

/*
 * Serialize an attribute into a layout: whether it is dropped, its storage,
 * then (unless dropped) its type.
 */
static void
layout_attr(StringInfo buf, Form_pg_attribute att)
{
	appendStringInfoChar(buf, att->attisdropped ? 'd' : 'c');
	almanac_append_be16(buf, (uint16) att->attlen);
	appendStringInfoChar(buf, att->attalign);
	appendStringInfoChar(buf, att->attbyval ? 'v' : 'r');
	if (!att->attisdropped)
		layout_type(buf, att->atttypid, att->atttypmod);
}

/* the fingerprint of a serialized layout: SHA-256, truncated */
static void
layout_hash(pg_cryptohash_ctx *ctx, int natts, const char *attrs, size_t len,
			uint8 *dest)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		head[4];

	almanac_put_be32(head, (uint32) natts);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) "almanac row layout 3", 20) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) head, sizeof(head)) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) attrs, len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute the layout fingerprint: %s", pg_cryptohash_error(ctx));
	memcpy(dest, digest, ALMANAC_VALUE_LAYOUT_LEN);
}

AlmanacValueLayout *
almanac_value_layout(TupleDesc desc, const char *relname)
{
	AlmanacValueLayout *layout = palloc(sizeof(AlmanacValueLayout));
	StringInfoData attrs;
	int		   *ends = palloc(sizeof(int) * (desc->natts + 1));
	pg_cryptohash_ctx *ctx;

	layout->natts = desc->natts;
	layout->prefix = palloc(ALMANAC_VALUE_LAYOUT_LEN * (desc->natts + 1));
	layout->relname = pstrdup(relname);

	initStringInfo(&attrs);
	ends[0] = 0;
	for (int i = 0; i < desc->natts; i++)
	{
		layout_attr(&attrs, TupleDescAttr(desc, i));
		ends[i + 1] = attrs.len;
	}
	ctx = pg_cryptohash_create(PG_SHA256);
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	PG_TRY();
	{
		for (int i = 0; i <= desc->natts; i++)
			layout_hash(ctx, i, attrs.data, ends[i],
						layout->prefix + i * ALMANAC_VALUE_LAYOUT_LEN);
	}
	PG_FINALLY();
	{
		pg_cryptohash_free(ctx);
	}
	PG_END_TRY();
	pfree(attrs.data);
	pfree(ends);

	layout->checks = value_checks_of(desc);
	return layout;
}

/* the check of a value of type typid (see AlmanacValueCheck), or NULL */
static const AlmanacValueCheck *
value_check_of(Oid typid)
{
	AlmanacValueCheck *c;
	char		typtype;
	Oid			elem;

	check_stack_depth();
	typid = getBaseType(typid);
	typtype = get_typtype(typid);
	c = palloc0(sizeof(AlmanacValueCheck));
	c->typid = typid;
	switch (typtype)
	{
		case TYPTYPE_COMPOSITE:
			c->kind = CHECK_COMPOSITE;
			c->desc = lookup_rowtype_tupdesc_copy(typid, -1);
			c->atts = value_checks_of(c->desc);
			return c;
		case TYPTYPE_RANGE:
			elem = get_range_subtype(typid);
			c->kind = CHECK_RANGE;
			break;
		case TYPTYPE_MULTIRANGE:
			elem = get_range_subtype(get_multirange_range(typid));
			c->kind = CHECK_MULTIRANGE;
			break;
		default:
			if (typid == NAMEOID || typid == NUMERICOID || typid == JSONBOID)
			{
				c->kind = typid == NAMEOID ? CHECK_NAME :
					typid == NUMERICOID ? CHECK_NUMERIC : CHECK_JSONB;
				return c;
			}
			elem = get_element_type(typid);
			if (!OidIsValid(elem) || get_typlen(typid) != -1)
			{
				pfree(c);
				return NULL;
			}
			c->kind = CHECK_ARRAY;
			c->typid = elem;	/* an array carries its element type's OID */
			break;
	}
	{
		bool		byval;

		get_typlenbyvalalign(elem, &c->typlen, &byval, &c->typalign);
	}
	c->sub = value_check_of(elem);
	return c;
}

/* a check per attribute of desc, or NULL when none needs one */
static const AlmanacValueCheck **
value_checks_of(TupleDesc desc)
{
	const AlmanacValueCheck **checks = palloc0(sizeof(AlmanacValueCheck *) * Max(desc->natts, 1));
	bool		any = false;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		checks[i] = value_check_of(att->atttypid);
		any |= (checks[i] != NULL);
	}
	if (!any)
	{
		pfree(checks);
		return NULL;
	}
	return checks;
}

/* CRC-32C of a value: its format byte and layout, then its image */
static pg_crc32c
value_checksum(const char *value, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, value, ALMANAC_VALUE_CRC_OFFSET);
	COMP_CRC32C(crc, value + ALMANAC_VALUE_HEADER, len - ALMANAC_VALUE_HEADER);
	FIN_CRC32C(crc);
	return crc;
}

void
almanac_value_encode(StringInfo buf, TupleDesc desc, const AlmanacValueLayout *layout,
					 const Datum *values, const bool *isnull, const bool *skip)
{
	int			natts = desc->natts;
	Datum	   *vals = palloc(sizeof(Datum) * Max(natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(natts, 1));
	bool	   *copied = palloc0(sizeof(bool) * Max(natts, 1));
	HeapTuple	tuple;

	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || isnull[i] || (skip && skip[i]))
		{
			vals[i] = (Datum) 0;
			nulls[i] = true;
			continue;
		}
		vals[i] = values[i];
		nulls[i] = false;

		/*
		 * A TOAST pointer is only meaningful inside this cluster's storage,
		 * and a compressed value would tie the image to PostgreSQL's
		 * compression methods; store the plain bytes (RocksDB compresses its
		 * blocks itself).  detoast_attr also flattens expanded objects, which
		 * heap_form_tuple would do anyway.
		 */
		if (att->attlen == -1)
		{
			struct varlena *v = (struct varlena *) DatumGetPointer(values[i]);

			if (VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v))
			{
				vals[i] = PointerGetDatum(detoast_attr(v));
				copied[i] = true;
			}
		}
	}

	if (layout->natts != natts)
		elog(ERROR, "almanac value layout of \"%s\" has %d columns, the descriptor %d",
			 layout->relname, layout->natts, natts);
	tuple = heap_form_tuple(desc, vals, nulls);
	{
		int			start = buf->len;
		char		header[ALMANAC_VALUE_HEADER];

		header[0] = (char) ALMANAC_VALUE_FORMAT;
		memcpy(header + 1, layout->prefix + natts * ALMANAC_VALUE_LAYOUT_LEN,
			   ALMANAC_VALUE_LAYOUT_LEN);
		almanac_put_be32(header + ALMANAC_VALUE_CRC_OFFSET, 0);
		appendBinaryStringInfo(buf, header, ALMANAC_VALUE_HEADER);
		appendBinaryStringInfo(buf, (char *) tuple->t_data, (int) tuple->t_len);
		almanac_put_be32(buf->data + start + ALMANAC_VALUE_CRC_OFFSET,
						 value_checksum(buf->data + start, buf->len - start));
	}

	/* the values can be large (up to 1 GB): free them now, not at reset */
	heap_freetuple(tuple);
	for (int i = 0; i < natts; i++)
		if (copied[i])
			pfree(DatumGetPointer(vals[i]));
	pfree(vals);
	pfree(nulls);
	pfree(copied);
}

static void
value_corrupt(const ValueWhere *where, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("stored value of \"%s\" is corrupt: %s", where->relname, what),
			 errdetail("The value is %zu bytes long.", where->len),
			 errhint("The RocksDB value was not written by almanac, or was damaged.")));
}

/* check a fixed-length datum with check c (only names need one) */
static void
value_check_fixed(const char *p, const AlmanacValueCheck *c, const ValueWhere *where)
{
	if (c->kind == CHECK_NAME && memchr(p, '\0', NAMEDATALEN) == NULL)
		value_corrupt(where, "a name without its terminating zero");
}

/* check a cstring that must end within room bytes; returns its size */
static uint32
value_check_cstring(const char *p, uint32 room, const ValueWhere *where)
{
	const char *end = memchr(p, '\0', room);

	if (end == NULL)
		value_corrupt(where, "truncated");
	return (uint32) (end - p) + 1;
}

static uint32 value_check_varlena(const char *p, uint32 room, const AlmanacValueCheck *c,
								  const ValueWhere *where);

/*
 * The offset, from off (< end), at which a datum of typlen and typalign lies
 * in a structure whose bytes base end at end, as a tuple's or a range's
 * readers find it (att_align_pointer: a varlena with a 1-byte header is not
 * aligned).  A varlena with a 4-byte header left unaligned (its first byte
 * not zero, so not taken for padding) is refused: nothing writes one, and
 * its readers, which read it in place, align what is inside it by address,
 * not by the offsets the checks count.  what names the structure in the
 * error.
 */
static uint32
value_align_at(const char *base, uint32 off, uint32 end, char typalign, int16 typlen,
			   const char *what, const ValueWhere *where)
{
	if (off >= end)
		value_corrupt(where, what);
	off = att_align_pointer(off, typalign, typlen, base + off);
	if (off != att_align_nominal(off, typalign) && !VARATT_IS_1B(base + off))
		value_corrupt(where, "a varlena with a 4-byte header is not aligned");
	return off;
}

/*
 * Check a datum of length typlen (> 0, -1 or -2) at offset off (aligned
 * already) of a structure whose bytes base end at end, with check c (may be
 * NULL); returns its size.
 */
static uint32
value_check_at(const char *base, uint32 off, uint32 end, int16 typlen,
			   const AlmanacValueCheck *c, const ValueWhere *where)
{
	if (off >= end)
		value_corrupt(where, "truncated");
	if (typlen > 0)
	{
		if (end - off < (uint32) typlen)
			value_corrupt(where, "truncated");
		if (c != NULL)
			value_check_fixed(base + off, c, where);
		return (uint32) typlen;
	}
	if (typlen == -1)
		return value_check_varlena(base + off, end - off, c, where);
	return value_check_cstring(base + off, end - off, where);
}

/*
 * Check the bounds of a range (with flags) of a range or multirange datum d,
 * the first at offset *off, all before offset end, as range_deserialize and
 * multirange_get_bounds read them: each bound aligned as a tuple's attribute
 * (a varlena with a 1-byte header unaligned).  c is the range's check
 * (typlen, typalign, sub of its subtype).
 */
static void
value_check_bounds(const char *d, uint32 *off, uint32 end, uint8 flags,
				   const AlmanacValueCheck *c, const ValueWhere *where)
{
	for (int b = 0; b < 2; b++)
	{
		if (b == 0 ? !RANGE_HAS_LBOUND(flags) : !RANGE_HAS_UBOUND(flags))
			continue;
		*off = value_align_at(d, *off, end, c->typalign, c->typlen, "truncated range", where);
		*off += value_check_at(d, *off, end, c->typlen, c->sub, where);
	}
}

/*
 * Check a multirange datum d of total bytes (offsets as in
 * value_check_varlena).  Its layout, private to
 * multirangetypes.c: the header (length, type OID, range count), then
 * rangeCount - 1 uint32 items (each the length of a range's bounds, or every
 * MULTIRANGE_ITEM_OFFSET_STRIDE-th their offset, flagged by the high bit),
 * rangeCount flag bytes, then the bounds, aligned for the subtype.  The
 * offsets are computed as multirange_get_bounds_offset does, in uint32.
 */
#define MR_ITEM_OFF_BIT 0x80000000
static void
value_check_multirange(const char *d, uint32 total, const AlmanacValueCheck *c,
					   const ValueWhere *where)
{
	Oid			typid;
	uint32		count;
	uint64		start;
	uint32		offset = 0;

	if (total < sizeof(MultirangeType))
		value_corrupt(where, "bad multirange");
	memcpy(&typid, d + offsetof(MultirangeType, multirangetypid), sizeof(Oid));
	memcpy(&count, d + offsetof(MultirangeType, rangeCount), sizeof(uint32));
	if (typid != c->typid)
		value_corrupt(where, "bad multirange");
	if (count == 0)
		return;
	start = (uint64) sizeof(MultirangeType) + (uint64) (count - 1) * sizeof(uint32) + count;
	if (start > total)
		value_corrupt(where, "truncated multirange");
	start = att_align_nominal(start, c->typalign);
	for (uint32 i = 0; i < count; i++)
	{
		uint8		flags = (uint8) d[sizeof(MultirangeType) + (count - 1) * sizeof(uint32) + i];
		uint64		begin;
		uint32		off;

		if (i > 0)
		{
			uint32		item;

			memcpy(&item, d + sizeof(MultirangeType) + (i - 1) * sizeof(uint32), sizeof(uint32));
			offset = (item & MR_ITEM_OFF_BIT) ? (item & ~MR_ITEM_OFF_BIT)
				: offset + (item & ~MR_ITEM_OFF_BIT);
		}
		begin = start + offset;
		if (begin > total)
			value_corrupt(where, "truncated multirange");
		off = (uint32) begin;
		value_check_bounds(d, &off, total, flags, c, where);
	}
}

/* the check of a numeric inside a jsonb */
static const AlmanacValueCheck numeric_check = {.kind = CHECK_NUMERIC};

/*
 * Check a jsonb container of len bytes at cont (any alignment), as
 * fillJsonbValue and the jsonb iterator read it (utils/jsonb.h): its header
 * (an object, an array, or the one-element array of a scalar), its entries,
 * each entry's bytes within the data after them (offsets computed as
 * getJsonbOffset does), object keys strings, numerics sound varlenas and
 * nested containers, each at the int-aligned offset readers take, checked
 * the same way.
 */
static void
value_check_jsonb(const char *cont, uint32 len, const ValueWhere *where)
{
	uint32		header;
	uint32		count;
	uint32		nelems;
	uint32		data;
	uint32		offset = 0;
	bool		is_object = false;

	check_stack_depth();
	if (len < sizeof(uint32))
		value_corrupt(where, "bad jsonb");
	memcpy(&header, cont, sizeof(uint32));
	count = header & JB_CMASK;
	switch (header & ~JB_CMASK)
	{
		case JB_FOBJECT:
			is_object = true;
			break;
		case JB_FARRAY:
			break;
		case JB_FARRAY | JB_FSCALAR:
			if (count != 1)
				value_corrupt(where, "bad jsonb");
			break;
		default:
			value_corrupt(where, "bad jsonb");
	}
	nelems = is_object ? count * 2 : count;
	if (((uint64) nelems + 1) * sizeof(JEntry) > len)
		value_corrupt(where, "bad jsonb");
	data = (nelems + 1) * sizeof(JEntry);
	for (uint32 i = 0; i < nelems; i++)
	{
		JEntry		je;
		uint32		end;
		uint32		elen;
		uint32		pad;

		memcpy(&je, cont + (i + 1) * sizeof(JEntry), sizeof(JEntry));
		if (JBE_HAS_OFF(je))
		{
			end = JBE_OFFLENFLD(je);
			if (end < offset)
				value_corrupt(where, "bad jsonb");
			elen = end - offset;
		}
		else
		{
			elen = JBE_OFFLENFLD(je);
			end = offset + elen;	/* both below 2^28 */
		}
		if (end > len - data)
			value_corrupt(where, "bad jsonb");
		if (is_object && i < count && !JBE_ISSTRING(je))
			value_corrupt(where, "bad jsonb");
		switch (je & JENTRY_TYPEMASK)
		{
			case JENTRY_ISSTRING:
			case JENTRY_ISBOOL_FALSE:
			case JENTRY_ISBOOL_TRUE:
			case JENTRY_ISNULL:
				break;
			case JENTRY_ISNUMERIC:
			case JENTRY_ISCONTAINER:
				pad = INTALIGN(offset) - offset;
				if (pad > elen)
					value_corrupt(where, "bad jsonb");
				if (JBE_ISNUMERIC(je))
					value_check_varlena(cont + data + offset + pad, elen - pad,
										&numeric_check, where);
				else
					value_check_jsonb(cont + data + offset + pad, elen - pad, where);
				break;
			default:
				value_corrupt(where, "bad jsonb");
		}
		offset = end;
	}
}

/*
 * Check one varlena datum of a column, array element or range bound at p,
 * with room bytes left in the structure that holds it: that its length word
 * lies and fits within them, that it is neither a TOAST pointer nor
 * compressed (almanac_value_encode and the array and range constructors
 * never leave one), then, with check c, its inside.  Returns its size.
 */
static uint32
value_check_varlena(const char *p, uint32 room, const AlmanacValueCheck *c,
					const ValueWhere *where)
{
	uint32		size;

	if (room < 1)
		value_corrupt(where, "truncated");
	if (VARATT_IS_1B_E(p))
		value_corrupt(where, "it refers to TOAST storage");
	if (VARATT_IS_1B(p))
		size = VARSIZE_1B(p);
	else
	{
		if (room < VARHDRSZ)
			value_corrupt(where, "truncated");
		if (VARATT_IS_4B_C(p))
			value_corrupt(where, "it holds a compressed value");
		size = VARSIZE_4B(p);
		if (size < VARHDRSZ)
			value_corrupt(where, "bad length word");
	}
	if (size < 1 || room < size)
		value_corrupt(where, "truncated");
	if (c != NULL)
	{
		/*
		 * The checks read a datum as its readers will, after detoasting has
		 * copied it to MAXALIGNed memory with a 4-byte length word: offsets
		 * (and so alignment padding) count from the start of that word, and
		 * total is the size with it.  d + o is the byte at such an offset o
		 * (>= VARHDRSZ: the checks never read the length word itself); for a
		 * 1-byte header, d is 3 bytes before p, still within the image or
		 * datum that holds p, whose own header is longer.
		 */
		const char *d = VARATT_IS_1B(p) ? p + 1 - VARHDRSZ : p;
		uint32		total = VARATT_IS_1B(p) ? size - 1 + VARHDRSZ : size;

		switch (c->kind)
		{
			case CHECK_ARRAY:
				{
					int32		ndim;
					int32		dataoffset;
					Oid			elemtype;
					int64		nitems = 1;
					uint32		off;
					const bits8 *bitmap = NULL;

					if (total < ARR_OVERHEAD_NONULLS(0))
						value_corrupt(where, "bad array header");
					memcpy(&ndim, d + offsetof(ArrayType, ndim), sizeof(int32));
					memcpy(&dataoffset, d + offsetof(ArrayType, dataoffset), sizeof(int32));
					memcpy(&elemtype, d + offsetof(ArrayType, elemtype), sizeof(Oid));
					if (ndim < 0 || ndim > MAXDIM || elemtype != c->typid)
						value_corrupt(where, "bad array header");
					if (ndim == 0)
						nitems = 0;
					else if (total < ARR_OVERHEAD_NONULLS(ndim))
						value_corrupt(where, "bad array header");
					for (int i = 0; i < ndim; i++)
					{
						int32		dim;
						int32		lb;
						int32		ub;

						memcpy(&dim, d + sizeof(ArrayType) + i * sizeof(int32), sizeof(int32));
						memcpy(&lb, d + sizeof(ArrayType) + (ndim + i) * sizeof(int32), sizeof(int32));
						if (dim < 0 || pg_add_s32_overflow(lb, dim, &ub))
							value_corrupt(where, "bad array dimensions");
						nitems *= dim;
						if (nitems > (int64) MaxArraySize)
							value_corrupt(where, "bad array dimensions");
					}
					if (dataoffset != 0)
					{
						if (ndim == 0 ||
							(uint32) dataoffset != ARR_OVERHEAD_WITHNULLS(ndim, nitems) ||
							(uint32) dataoffset > total)
							value_corrupt(where, "bad array header");
						bitmap = (const bits8 *) d + sizeof(ArrayType) + 2 * sizeof(int) * ndim;
						off = (uint32) dataoffset;
					}
					else
						off = ndim == 0 ? total : ARR_OVERHEAD_NONULLS(ndim);

					/*
					 * As array_out walks them: each element aligned nominally.
					 * Fixed-length elements, none NULL and none checked, are
					 * a stride apart from an aligned start: one comparison.
					 */
					if (bitmap == NULL && c->typlen > 0 && c->sub == NULL && nitems > 0)
					{
						uint64		stride = att_align_nominal(c->typlen, c->typalign);

						if (off > total ||
							(uint64) (total - off) < stride * (uint64) (nitems - 1) + c->typlen)
							value_corrupt(where, "truncated");
						nitems = 0;
					}
					for (int64 i = 0; i < nitems; i++)
					{
						if (bitmap != NULL && !(bitmap[i / 8] & (1 << (i % 8))))
							continue;
						off = att_align_nominal(off, c->typalign);
						off += value_check_at(d, off, total, c->typlen, c->sub, where);
					}
				}
				break;
			case CHECK_COMPOSITE:
				if (total < SizeofHeapTupleHeader ||
					HeapTupleHeaderGetTypeId((HeapTupleHeader) d) != c->typid ||
					HeapTupleHeaderGetTypMod((HeapTupleHeader) d) != -1)
					value_corrupt(where, "bad composite datum");
				value_check_tuple(d, total, c->desc, c->atts, c->desc->natts, NULL, where,
							  NULL, NULL);
				break;
			case CHECK_RANGE:
				{
					Oid			typid;
					uint32		off = sizeof(RangeType);

					if (total < sizeof(RangeType) + 1)
						value_corrupt(where, "bad range");
					memcpy(&typid, d + offsetof(RangeType, rangetypid), sizeof(Oid));
					if (typid != c->typid)
						value_corrupt(where, "bad range");
					/* the bounds lie before the flags, the last byte */
					value_check_bounds(d, &off, total - 1, (uint8) d[total - 1], c, where);
				}
				break;
			case CHECK_MULTIRANGE:
				value_check_multirange(d, total, c, where);
				break;
			case CHECK_NUMERIC:
				{
					uint16		nheader;

					/* numeric.c reads a 2-byte header, 4 bytes in the long form */
					if (total < VARHDRSZ + sizeof(uint16))
						value_corrupt(where, "bad numeric");
					memcpy(&nheader, d + VARHDRSZ, sizeof(uint16));
					if ((nheader & 0x8000) == 0 && total < VARHDRSZ + 2 * sizeof(uint16))
						value_corrupt(where, "bad numeric");
				}
				break;
			case CHECK_JSONB:
				value_check_jsonb(d + VARHDRSZ, total - VARHDRSZ, where);
				break;
			case CHECK_NAME:
				/* not reached: a name is fixed-length */
				break;
		}
	}
	return size;
}

/*
 * Check that every attribute the tuple image img (a heap tuple header at a
 * MAXALIGNed address, tlen bytes) claims to hold, up to the first limit,
 * lies within its bytes, reading it as heap_deform_tuple will, so that
 * deforming it that far cannot read past the end, and check the inside of
 * each attribute that has a check in checks (NULL: none has) and is not
 * skipped (skip may be NULL): a skipped column is never read.  TOAST
 * pointers and compressed values are refused as well: almanac_value_encode
 * never writes them, and a composite datum never holds them.
 *
 * values and isnull, when not NULL, get the attributes checked, as
 * heap_deform_tuple would deform them (the caller then need not walk the
 * image a second time): each one once it is known to lie within the bytes.
 */
static void
value_check_tuple(const char *img, uint32 tlen, TupleDesc desc,
				  const AlmanacValueCheck **checks, int limit, const bool *skip,
				  const ValueWhere *where, Datum *values, bool *isnull)
{
	HeapTupleHeader hdr = (HeapTupleHeader) img;
	int			natts = Min(Min(HeapTupleHeaderGetNatts(hdr), desc->natts), limit);
	bool		hasnulls = (hdr->t_infomask & HEAP_HASNULL) != 0;
	uint32		hoff = hdr->t_hoff;
	uint32		off;
	uint32		len;

	/*
	 * heap_deform_tuple, the readers' and the one of almanac_value_decode
	 * when it skips columns, aligns the attributes by their offsets from
	 * t_hoff, this walk by their offsets from img: the same only for a
	 * MAXALIGNed t_hoff, which every tuple has (heap_form_tuple).  Else a
	 * reader would read its attributes elsewhere than where they were checked.
	 */
	if (hoff < SizeofHeapTupleHeader || hoff != MAXALIGN(hoff) ||
		(hasnulls && hoff < SizeofHeapTupleHeader + BITMAPLEN(HeapTupleHeaderGetNatts(hdr))) ||
		hoff > tlen)
		value_corrupt(where, "bad header");
	if (hdr->t_infomask & HEAP_HASEXTERNAL)
		value_corrupt(where, "it refers to TOAST storage");

	off = hoff;
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const AlmanacValueCheck *check =
			(checks != NULL && (skip == NULL || !skip[i])) ? checks[i] : NULL;

		if (hasnulls && att_isnull(i, hdr->t_bits))
		{
			if (values != NULL)
			{
				values[i] = (Datum) 0;
				isnull[i] = true;
			}
			continue;
		}

		off = value_align_at(img, off, tlen, att->attalign, att->attlen, "truncated", where);
		len = value_check_at(img, off, tlen, att->attlen, check, where);
		if (values != NULL)
		{
			values[i] = fetchatt(att, img + off);
			isnull[i] = false;
		}
		off += len;
	}
}

/* the first 8 bytes of a layout fingerprint in hex, for messages */
static char *
layout_hex(const uint8 *fingerprint)
{
	char	   *hex = palloc(17);

	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", fingerprint[i]);
	return hex;
}

void
almanac_value_decode(const char *data, size_t len, TupleDesc desc,
					 const AlmanacValueLayout *layout,
					 Datum *values, bool *isnull, const bool *skip)
{
	int			natts = desc->natts;
	int			img_natts;
	int			last;
	uint32		tlen;
	char	   *img;
	HeapTupleData tuple;
	Datum	   *vals;
	bool	   *nulls;
	ValueWhere	where;

	where.relname = layout->relname;
	where.len = len;
	if (layout->natts != natts)
		elog(ERROR, "almanac value layout of \"%s\" has %d columns, the descriptor %d",
			 layout->relname, layout->natts, natts);
	if (len < 1)
		value_corrupt(&where, "empty");
	if ((unsigned char) data[0] == ALMANAC_VALUE_FORMAT_V1 ||
		(unsigned char) data[0] == ALMANAC_VALUE_FORMAT_V2)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stored value of \"%s\" has format %d, which this version of almanac no longer reads",
						layout->relname, (unsigned char) data[0]),
				 errdetail("Format %d values do not record the row layout they were written with in a form that cannot be forged.",
						   (unsigned char) data[0]),
				 errhint("Reload the table's rows with the almanac that wrote them (pg_dump --include-foreign-data), then restore them with this one.")));
	if ((unsigned char) data[0] != ALMANAC_VALUE_FORMAT)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored value of \"%s\" has format %d, expected %d",
						layout->relname, (unsigned char) data[0], ALMANAC_VALUE_FORMAT),
				 errdetail("The value is %zu bytes long.", len),
				 errhint("The RocksDB value was not written by almanac, or was damaged.")));
	if (len < ALMANAC_VALUE_HEADER + SizeofHeapTupleHeader ||
		len - ALMANAC_VALUE_HEADER > MaxAllocSize)
		value_corrupt(&where, "truncated");
	if (value_checksum(data, len) != almanac_get_be32(data + ALMANAC_VALUE_CRC_OFFSET))
		value_corrupt(&where, "checksum mismatch");

	/* palloc'd memory is MAXALIGNed, as heap_deform_tuple needs */
	tlen = (uint32) (len - ALMANAC_VALUE_HEADER);
	img = palloc(tlen);
	memcpy(img, data + ALMANAC_VALUE_HEADER, tlen);

	/* the value's bytes are the ones written: were they written for this layout? */
	img_natts = HeapTupleHeaderGetNatts((HeapTupleHeader) img);
	if (img_natts > natts ||
		memcmp(layout->prefix + img_natts * ALMANAC_VALUE_LAYOUT_LEN, data + 1,
			   ALMANAC_VALUE_LAYOUT_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("stored value of \"%s\" was written with another row layout",
						layout->relname),
				 errdetail("The value holds %d columns of layout %s; the first %d columns of \"%s\" have layout %s.",
						   img_natts, layout_hex((const uint8 *) data + 1), Min(img_natts, natts),
						   layout->relname,
						   layout_hex(layout->prefix + Min(img_natts, natts) * ALMANAC_VALUE_LAYOUT_LEN)),
				 errhint("The table's columns or their types changed since the row was written, or another table with other columns writes the same keys. Give each table its own key_prefix or column_family, or create a new table and copy the rows with INSERT ... SELECT.")));

	/*
	 * Deform only as far as the last column the caller wants: the tuple's
	 * column count, in our copy, says where heap_deform_tuple stops (set
	 * below), and it makes the columns after NULL.
	 */
	last = natts;
	if (skip != NULL)
		while (last > 0 && skip[last - 1])
			last--;

	/*
	 * Bounds-check the image that far, and check the inside of the arrays,
	 * composite datums, ranges, jsonb, numerics and names of the columns
	 * wanted, whatever the fingerprint says (defence in depth: whoever can
	 * write the store's files can forge one).
	 *
	 * Every column wanted (a point lookup's SELECT *): the same walk deforms
	 * the image straight into the caller's arrays, as heap_deform_tuple
	 * would (the columns the image does not hold, added since it was
	 * written, get their missing values), instead of a second walk.
	 */
	if (skip == NULL)
	{
		value_check_tuple(img, tlen, desc, layout->checks, natts, NULL, &where, values, isnull);
		for (int i = img_natts; i < natts; i++)
			values[i] = getmissingattr(desc, i + 1, &isnull[i]);
		return;
	}
	value_check_tuple(img, tlen, desc, layout->checks, last, skip, &where, NULL, NULL);

	/*
	 * The image is a composite datum of the writing table's row type, and
	 * recent PostgreSQL 15 minor releases mark such datums (both xmax hint
	 * bits set, which no heap tuple has) so that heap_deform_tuple checks the
	 * row type still exists and matches: a table dropped and created again
	 * over the same keys could not read its rows.  The image is read with
	 * this table's descriptor and was bounds-checked above, so it is read as
	 * a plain tuple.
	 */
	if ((((HeapTupleHeader) img)->t_infomask & (HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID)) ==
		(HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID))
		((HeapTupleHeader) img)->t_infomask &= ~HEAP_XMAX_COMMITTED;

	if (last < img_natts)
		HeapTupleHeaderSetNatts((HeapTupleHeader) img, last);

	tuple.t_len = tlen;
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = (HeapTupleHeader) img;

	vals = palloc(sizeof(Datum) * Max(natts, 1));
	nulls = palloc(sizeof(bool) * Max(natts, 1));
	heap_deform_tuple(&tuple, desc, vals, nulls);
	for (int i = 0; i < natts; i++)
	{
		if (skip[i])
			continue;
		values[i] = vals[i];
		isnull[i] = nulls[i];
	}
	pfree(vals);
	pfree(nulls);
}

/* ---------------------------------------------------------------------
 * Internal SQL functions, for the tests
 * ---------------------------------------------------------------------
 */

/* almanac._encode_value(record) RETURNS bytea: the image of a row */
PG_FUNCTION_INFO_V1(almanac_encode_value_sql);
Datum
almanac_encode_value_sql(PG_FUNCTION_ARGS)
{
	HeapTupleHeader rec = PG_GETARG_HEAPTUPLEHEADER(0);
	TupleDesc	desc;
	HeapTupleData tuple;
	Datum	   *vals;
	bool	   *nulls;
	StringInfoData buf;

	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec),
								  HeapTupleHeaderGetTypMod(rec));
	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	vals = palloc(sizeof(Datum) * Max(desc->natts, 1));
	nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	heap_deform_tuple(&tuple, desc, vals, nulls);

	initStringInfo(&buf);
	almanac_value_encode(&buf, desc,
						 almanac_value_layout(desc, format_type_be(desc->tdtypeid)),
						 vals, nulls, NULL);
	ReleaseTupleDesc(desc);
	PG_RETURN_BYTEA_P(almanac_bytes_to_bytea(buf.data, buf.len));
}

/* the row type of a _decode_value or _seal_value call: its second argument's */
static Oid
value_sql_rowtype(FunctionCallInfo fcinfo, const char *fname)
{
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 1);

	if (!type_is_rowtype(typid) || typid == RECORDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s needs a named composite type, not %s",
						fname, format_type_be(typid)),
				 errhint("Pass a typed null of the row type, such as NULL::mytable.")));
	return typid;
}

/*
 * almanac._seal_value(image bytea, type anyelement) RETURNS bytea: the value
 * of a heap tuple image under the layout of composite type "type", with a
 * valid checksum, whatever the image holds: a forged value, for the tests
 * of the checks the decoder makes whatever the fingerprint says.
 */
PG_FUNCTION_INFO_V1(almanac_seal_value_sql);
Datum
almanac_seal_value_sql(PG_FUNCTION_ARGS)
{
	Oid			typid;
	bytea	   *image;
	TupleDesc	desc;
	AlmanacValueLayout *layout;
	StringInfoData buf;
	int			natts;
	char		header[ALMANAC_VALUE_HEADER];

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	typid = value_sql_rowtype(fcinfo, "_seal_value");
	image = PG_GETARG_BYTEA_PP(0);
	desc = lookup_rowtype_tupdesc_copy(typid, -1);
	layout = almanac_value_layout(desc, format_type_be(typid));
	natts = desc->natts;
	if (VARSIZE_ANY_EXHDR(image) >= SizeofHeapTupleHeader)
		natts = Min(natts, HeapTupleHeaderGetNatts((HeapTupleHeader) VARDATA_ANY(image)));

	initStringInfo(&buf);
	header[0] = (char) ALMANAC_VALUE_FORMAT;
	memcpy(header + 1, layout->prefix + natts * ALMANAC_VALUE_LAYOUT_LEN,
		   ALMANAC_VALUE_LAYOUT_LEN);
	almanac_put_be32(header + ALMANAC_VALUE_CRC_OFFSET, 0);
	appendBinaryStringInfo(&buf, header, ALMANAC_VALUE_HEADER);
	appendBinaryStringInfo(&buf, VARDATA_ANY(image), VARSIZE_ANY_EXHDR(image));
	almanac_put_be32(buf.data + ALMANAC_VALUE_CRC_OFFSET, value_checksum(buf.data, buf.len));
	PG_RETURN_BYTEA_P(almanac_bytes_to_bytea(buf.data, buf.len));
}

/*
 * almanac._decode_value(image bytea, type anyelement) RETURNS anyelement:
 * the row of composite type "type" (pass NULL::thetype) stored in image.
 */
PG_FUNCTION_INFO_V1(almanac_decode_value_sql);
Datum
almanac_decode_value_sql(PG_FUNCTION_ARGS)
{
	Oid			typid;
	bytea	   *image;
	TupleDesc	desc;
	Datum	   *vals;
	bool	   *nulls;
	HeapTuple	tuple;
	Datum		result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	typid = value_sql_rowtype(fcinfo, "_decode_value");
	image = PG_GETARG_BYTEA_PP(0);

	desc = lookup_rowtype_tupdesc_copy(typid, -1);
	vals = palloc(sizeof(Datum) * Max(desc->natts, 1));
	nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	almanac_value_decode(VARDATA_ANY(image), VARSIZE_ANY_EXHDR(image), desc,
						 almanac_value_layout(desc, format_type_be(typid)),
						 vals, nulls, NULL);
	tuple = heap_form_tuple(desc, vals, nulls);
	result = HeapTupleGetDatum(tuple);
	PG_RETURN_DATUM(result);
}

/*
 * almanac._value_roundtrip(v anyelement) RETURNS anyelement: v stored as the
 * only column of an image and read back.  Unlike a row, a function argument
 * can be a TOAST pointer into a table, which exercises the detoasting.
 */
PG_FUNCTION_INFO_V1(almanac_value_roundtrip_sql);
Datum
almanac_value_roundtrip_sql(PG_FUNCTION_ARGS)
{
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 0);
	TupleDesc	desc = CreateTemplateTupleDesc(1);
	Datum		value = PG_GETARG_DATUM(0);
	bool		isnull = PG_ARGISNULL(0);
	StringInfoData buf;
	AlmanacValueLayout *layout;

	TupleDescInitEntry(desc, (AttrNumber) 1, "value", typid, -1, 0);
	layout = almanac_value_layout(desc, format_type_be(typid));
	initStringInfo(&buf);
	almanac_value_encode(&buf, desc, layout, &value, &isnull, NULL);

	/* decode from an odd address: stored bytes come unaligned */
	{
		char	   *odd = palloc(buf.len + 1);

		memcpy(odd + 1, buf.data, buf.len);
		almanac_value_decode(odd + 1, buf.len, desc, layout, &value, &isnull, NULL);
	}
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(value);
}
