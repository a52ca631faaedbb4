/*-------------------------------------------------------------------------
 *
 * valuecodec.h
 *	  RocksDB value format of almanac's foreign tables: an image of a row's
 *	  non-key columns, bound to the row layout it was written with.
 *
 * A value (format 3) is
 *
 *		[format byte = 3][layout: 16 bytes][checksum: 4 bytes][heap tuple image]
 *
 * - the image is what heap_form_tuple builds for the table's row type with
 *   the key columns (and any skipped column) set NULL.  Every varlena in it
 *   is plain: values that arrive TOASTed (external or compressed) are
 *   detoasted and expanded objects flattened first, so an image is
 *   self-contained and holds no pointer into PostgreSQL's storage.
 * - layout is the fingerprint of the row layout of the image's natts columns
 *   (its header's attribute count): the first 16 bytes of the SHA-256 of a
 *   serialization of the layout that no two layouts share (a prefix code):
 *   the column count, then for each column whether it is dropped, its
 *   length, alignment and by-value flag, its type OID, typmod, kind and
 *   storage, and, through domains, arrays, ranges, multiranges and composite
 *   types, the same for every type it is built from (a composite type's
 *   attributes can change under the same OID), each type with its count of
 *   parts.  See AlmanacValueLayout.
 * - checksum (big-endian) is the CRC-32C of the format byte, the layout and
 *   the image.
 *
 * A value is decoded only under the exact layout it was written with: its
 * layout must equal the fingerprint of the first natts columns of the
 * reading table (so columns added at the end since it was written read as
 * NULL, as in a heap table; any other change, a dropped column included, is
 * a mismatch), and its checksum must match.  Why this and not validating
 * each type's internal structure: PostgreSQL trusts the inside of many
 * varlena types (array headers and element type, jsonb containers, numeric
 * digits, composite datums and the type OID they carry, geometric types'
 * point counts, ...), and there is no validator for most of them (a jsonb or
 * a path cannot even be sent without trusting it), while bytes that
 * heap_form_tuple wrote from valid datums of the same types are valid for
 * them.  So the decoder establishes exactly that: the bytes were written for
 * this layout (fingerprint) and are the bytes written (checksum).
 *
 * The fingerprint must be collision-resistant, not merely a checksum: any
 * role with USAGE on a server chooses column types and typmods (varchar(n)
 * takes 2^30 values), and before format 3 the fingerprint was a CRC-32C,
 * which is linear: choosing typmods made two layouts share one (bytea read
 * as int4[], a crash).  SHA-256 truncated to 128 bits leaves a birthday
 * search of 2^64 hashes; it is computed once per table layout, so a read
 * pays one 16-byte comparison.  The checksum stays a CRC-32C: it catches
 * damage, not forgery: no SQL writes raw bytes into a store (raw tables are
 * read-only; the REVOKEd almanac._seal_value only returns bytes, which the
 * REVOKEd almanac._decode_value reads), so only whoever can write the
 * store's files could forge a whole value.
 *
 * Checks inside datums, whatever the fingerprint says (against forged store
 * files and any fingerprint mix-up): the image's own structure is
 * bounds-checked as heap_deform_tuple reads it, and so is the inside of
 * every array (dimensions, null bitmap, element type OID, each element in
 * bounds), composite datum (the row type OID it carries, its tuple, its
 * attributes recursively), range and multirange (type OID, bounds), jsonb
 * (container headers, entries in bounds, keys strings, nested containers
 * and numerics), numeric (its header) and name (zero-terminated), in any
 * column or nested in one another: a forged one is an ERROR XX001 naming
 * the table.  These are the types whose readers follow offsets, lengths or
 * a type OID from the bytes; the other types with trusted internals
 * (tsvector, tsquery, path, polygon, hstore and other extension types) rely
 * on the fingerprint and on raw writes being privileged.
 *
 * Values of formats 1 and 2 (almanac before layout checks: [1][image];
 * before collision-resistant fingerprints: [2][CRC layout: 4][CRC: 4][image])
 * are refused with an error asking to reload the data; almanac has no
 * on-disk compatibility promise yet.
 *
 * Stored bytes need not be aligned: decoding copies them into MAXALIGNed
 * memory.  Every allocation is in CurrentMemoryContext, and decoded
 * pass-by-reference values point into memory allocated there.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_VALUECODEC_H
#define ALMANAC_VALUECODEC_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "lib/stringinfo.h"

/* first byte of every value; formats 1 and 2 are refused as too old, others as corrupt */
#define ALMANAC_VALUE_FORMAT 3
#define ALMANAC_VALUE_FORMAT_V1 1
#define ALMANAC_VALUE_FORMAT_V2 2
/* bytes of a layout fingerprint */
#define ALMANAC_VALUE_LAYOUT_LEN 16
/* where the checksum is; format byte, layout, checksum */
#define ALMANAC_VALUE_CRC_OFFSET (1 + ALMANAC_VALUE_LAYOUT_LEN)
#define ALMANAC_VALUE_HEADER (ALMANAC_VALUE_CRC_OFFSET + 4)

/* what the decoder checks inside one column's datums (valuecodec.c) */
typedef struct AlmanacValueCheck AlmanacValueCheck;

/*
 * The layout fingerprints of a row type: prefix + n * ALMANAC_VALUE_LAYOUT_LEN
 * is the fingerprint of its first n attributes (n = 0 .. natts), and checks
 * what the decoder checks inside each column (NULL when no column needs a
 * check).  Computed once per table layout (it reads the type catalogs), then
 * used by every encode and decode.
 */
typedef struct AlmanacValueLayout
{
	int			natts;
	uint8	   *prefix;
	const AlmanacValueCheck **checks;
	const char *relname;		/* for messages: the table or row type */
} AlmanacValueLayout;

/* the layout of desc, palloc'd; relname is copied */
extern AlmanacValueLayout *almanac_value_layout(TupleDesc desc, const char *relname);

/*
 * Append the encoded value of the row to buf.  values/isnull have
 * desc->natts entries; columns with skip[i] true (the key columns) are
 * stored as NULL.  skip may be NULL (skip nothing).  layout is
 * almanac_value_layout(desc).
 */
extern void almanac_value_encode(StringInfo buf, TupleDesc desc,
								 const AlmanacValueLayout *layout,
								 const Datum *values, const bool *isnull,
								 const bool *skip);

/*
 * Decode a value into values/isnull (desc->natts entries); columns with
 * skip[i] true are left untouched (skip may be NULL), and the image is
 * deformed only up to the last column not skipped.  A column the image
 * does not have (added after it was written) is NULL.  ERROR XX001
 * (data_corrupted) naming layout->relname on an unknown format byte, a
 * checksum that does not match, an image whose structure does not fit in
 * len bytes or a datum whose inside fails its check (above); ERROR 42804
 * (datatype_mismatch) naming layout->relname when the value was written
 * under another row layout; ERROR 55000 for a value of format 1 or 2.
 */
extern void almanac_value_decode(const char *data, size_t len, TupleDesc desc,
								 const AlmanacValueLayout *layout,
								 Datum *values, bool *isnull, const bool *skip);

#endif							/* ALMANAC_VALUECODEC_H */
