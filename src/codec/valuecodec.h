/*-------------------------------------------------------------------------
 *
 * valuecodec.h
 *	  RocksDB value format of almanac's foreign tables: an image of a row's
 *	  non-key columns.
 *
 * A value is
 *
 *		[format byte = ALMANAC_VALUE_FORMAT][heap tuple header and data]
 *
 * the tuple being what heap_form_tuple builds for the table's row type with
 * the key columns (and any skipped column) set NULL.  Every varlena in it is
 * plain: values that arrive TOASTed (external or compressed) are detoasted
 * and expanded objects flattened first, so an image is self-contained and
 * holds no pointer into PostgreSQL's storage.  Any type, NULLs, and later
 * added columns (read as NULL) are handled; dropped columns keep their
 * position, as in a heap table.
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

/* first byte of every value; a different one is refused as corrupt */
#define ALMANAC_VALUE_FORMAT 1

/*
 * Append the encoded image of the row to buf.  values/isnull have desc->natts
 * entries; columns with skip[i] true (the key columns) are stored as NULL.
 * skip may be NULL (skip nothing).
 */
extern void almanac_value_encode(StringInfo buf, TupleDesc desc,
								 const Datum *values, const bool *isnull,
								 const bool *skip);

/*
 * Decode an image into values/isnull (desc->natts entries); columns with
 * skip[i] true are left untouched (skip may be NULL).  A column the image
 * does not have (added after it was written) is NULL.  ERROR XX001
 * (data_corrupted) on a wrong format byte or an image whose structure does
 * not fit in len bytes (truncated).
 */
extern void almanac_value_decode(const char *data, size_t len, TupleDesc desc,
								 Datum *values, bool *isnull, const bool *skip);

#endif							/* ALMANAC_VALUECODEC_H */
