/*-------------------------------------------------------------------------
 *
 * valuecodec.h
 *	  RocksDB value format of almanac's foreign tables: an image of a row's
 *	  non-key columns, bound to the row layout it was written with.
 *
 * A value (format 2) is
 *
 *		[format byte = 2][layout: 4 bytes][checksum: 4 bytes][heap tuple image]
 *
 * - the image is what heap_form_tuple builds for the table's row type with
 *   the key columns (and any skipped column) set NULL.  Every varlena in it
 *   is plain: values that arrive TOASTed (external or compressed) are
 *   detoasted and expanded objects flattened first, so an image is
 *   self-contained and holds no pointer into PostgreSQL's storage.
 * - layout (big-endian) is the fingerprint of the row layout of the image's
 *   natts columns (its header's attribute count): for each column whether it
 *   is dropped, its length, alignment and by-value flag, its type OID and
 *   typmod, and, through domains, arrays, ranges and composite types, the
 *   same for every type it is built from (a composite type's attributes can
 *   change under the same OID).  See AlmanacValueLayout.
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
 * this layout (fingerprint) and are the bytes written (checksum), and bounds-
 * checks the image's own structure.  The checksum is CRC-32C (hardware
 * instructions, a few GB/s): it catches damage and mix-ups, not forgery; only
 * roles that can write raw bytes into a store (raw tables of IMPORT FOREIGN
 * SCHEMA, the REVOKEd almanac._decode_value) could forge one.
 *
 * Values of format 1 (almanac before layout checks: [1][image]) are refused
 * with an error asking to reload the data; almanac had no released users
 * when the format changed.
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

/* first byte of every value; format 1 is refused as too old, others as corrupt */
#define ALMANAC_VALUE_FORMAT 2
#define ALMANAC_VALUE_FORMAT_V1 1
/* format byte, layout, checksum */
#define ALMANAC_VALUE_HEADER 9

/*
 * The layout fingerprints of a row type: prefix[n] is the fingerprint of its
 * first n attributes (n = 0 .. natts).  Computed once per table layout (it
 * reads the type catalogs), then used by every encode and decode.
 */
typedef struct AlmanacValueLayout
{
	int			natts;
	uint32	   *prefix;
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
 * (data_corrupted) on an unknown format byte, a checksum that does not match
 * or an image whose structure does not fit in len bytes; ERROR 42804
 * (datatype_mismatch) naming layout->relname when the value was written
 * under another row layout; ERROR 55000 for a value of format 1.
 */
extern void almanac_value_decode(const char *data, size_t len, TupleDesc desc,
								 const AlmanacValueLayout *layout,
								 Datum *values, bool *isnull, const bool *skip);

#endif							/* ALMANAC_VALUECODEC_H */
