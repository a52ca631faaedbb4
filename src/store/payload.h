/*-------------------------------------------------------------------------
 *
 * payload.h
 *	  The byte formats of the request payloads a backend hands the store
 *	  owner in dynamic shared memory (store/store.h): written by one
 *	  process, read by another, so defined once, here.  Integers are
 *	  big-endian (codec/bigendian.h).
 *
 * ALMANAC_REQ_APPLY (kv/xact.c writes, store/owner.c applies): the
 * transaction's writes, one entry per key, each
 *
 *		u32 key length, key, u32 value length, value
 *
 * where the value is an intent (codec/visibility.h).
 *
 * ALMANAC_REQ_INGEST (a bulk-load chunk: kv/bulk.h): a header
 *
 *		u32 column family id, u8 upsert (0 or 1), u32 row count
 *
 * then per row, in the order COPY read them,
 *
 *		u32 key length, u32 value length, key, value
 *
 * where the value is a stored value of one version
 * (almanac_versions_new).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_PAYLOAD_H
#define ALMANAC_PAYLOAD_H

#include "lib/stringinfo.h"

#include "codec/bigendian.h"

/* ---- ALMANAC_REQ_APPLY ---- */

/* append an entry */
static inline void
almanac_apply_append(StringInfo buf, const char *key, size_t klen,
					 const char *value, size_t vlen)
{
	almanac_append_be32(buf, (uint32) klen);
	appendBinaryStringInfo(buf, key, klen);
	almanac_append_be32(buf, (uint32) vlen);
	appendBinaryStringInfo(buf, value, vlen);
}

/*
 * Read the entry at *p (before end) and advance *p past it.  The key and
 * value point into the payload.  ERROR if the entry runs past end.
 */
static inline void
almanac_apply_next(const char **p, const char *end,
				   const char **key, uint32 *klen, const char **value, uint32 *vlen)
{
	const char *q = *p;

	if (end - q < 4)
		elog(ERROR, "almanac: truncated write batch");
	*klen = almanac_get_be32(q);
	*key = q + 4;
	if ((Size) (end - *key) < (Size) *klen + 4)
		elog(ERROR, "almanac: truncated write batch");
	*vlen = almanac_get_be32(*key + *klen);
	*value = *key + *klen + 4;
	if ((Size) (end - *value) < (Size) *vlen)
		elog(ERROR, "almanac: truncated write batch");
	*p = *value + *vlen;
}

/* ---- ALMANAC_REQ_INGEST ---- */

#define ALMANAC_CHUNK_HEADER_LEN	(4 + 1 + 4)
#define ALMANAC_CHUNK_ROW_HEADER_LEN	(4 + 4)

static inline void
almanac_chunk_header_put(char *p, uint32 cf_id, bool upsert, uint32 nrows)
{
	almanac_put_be32(p, cf_id);
	p[4] = upsert ? 1 : 0;
	almanac_put_be32(p + 5, nrows);
}

/* ERROR if the payload is shorter than a header */
static inline void
almanac_chunk_header_get(const char *p, Size len, uint32 *cf_id, bool *upsert, uint32 *nrows)
{
	if (len < ALMANAC_CHUNK_HEADER_LEN)
		elog(ERROR, "almanac: truncated bulk-load chunk");
	*cf_id = almanac_get_be32(p);
	*upsert = p[4] != 0;
	*nrows = almanac_get_be32(p + 5);
}

/* the size of a row in a chunk */
static inline Size
almanac_chunk_row_size(size_t klen, size_t vlen)
{
	return ALMANAC_CHUNK_ROW_HEADER_LEN + klen + vlen;
}

/*
 * Write a row's header and key at p (which has almanac_chunk_row_size
 * bytes); returns where its value of vlen bytes goes.
 */
static inline char *
almanac_chunk_row_put(char *p, const char *key, size_t klen, size_t vlen)
{
	almanac_put_be32(p, (uint32) klen);
	almanac_put_be32(p + 4, (uint32) vlen);
	memcpy(p + ALMANAC_CHUNK_ROW_HEADER_LEN, key, klen);
	return p + ALMANAC_CHUNK_ROW_HEADER_LEN + klen;
}

/*
 * Read the row at *p (before end) and advance *p past it; key and value
 * point into the chunk.  ERROR if the row runs past end.
 */
static inline void
almanac_chunk_row_next(const char **p, const char *end,
					   const char **key, uint32 *klen, const char **value, uint32 *vlen)
{
	const char *q = *p;

	if (end - q < ALMANAC_CHUNK_ROW_HEADER_LEN)
		elog(ERROR, "almanac: truncated bulk-load chunk");
	*klen = almanac_get_be32(q);
	*vlen = almanac_get_be32(q + 4);
	q += ALMANAC_CHUNK_ROW_HEADER_LEN;
	if ((Size) (end - q) < (Size) *klen + *vlen)
		elog(ERROR, "almanac: truncated bulk-load chunk");
	*key = q;
	*value = q + *klen;
	*p = q + *klen + *vlen;
}

#endif							/* ALMANAC_PAYLOAD_H */
