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
 * The batch message (kv/xact.c logs it, store/owner.c replays it; see
 * docs/write-path.md, "PostgreSQL's WAL as the one log"): the payload of a
 * transactional logical message with prefix "almanac" that a backend logs
 * right after the owner applied its batch,
 *
 *		u8 format (1), u64 owner incarnation, u64 RocksDB sequence number of
 *		the applied write, u16 store path length, store path, then the
 *		ALMANAC_REQ_APPLY payload
 *
 * An empty message with the same prefix only carries a transaction id into
 * the WAL (note_xid in kv/xact.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_PAYLOAD_H
#define ALMANAC_PAYLOAD_H

#include "lib/stringinfo.h"

#include "codec/bigendian.h"
#include "codec/visibility.h"

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
 * The walk over an APPLY payload's entries, the one reader of the format
 * (the backend folds and restamps its blind writes with it, kv/xact.c; the
 * owner applies, hashes and replays with it, store/owner.c).
 *
 *		AlmanacApplyIter it;
 *
 *		almanac_apply_iter_init(&it, payload, len);
 *		while (almanac_apply_iter_next(&it))
 *			... it.key, it.klen, it.value, it.vlen, it.intent ...
 *
 * Each step reads one entry, in the payload's order, and parses its value as
 * an intent (almanac_intent_parse): key, value and intent.tuple point into
 * the payload, which must outlive their use; nothing is allocated, so an
 * iterator needs no cleanup and may be abandoned at any step.  ERROR
 * (corrupted data) if an entry runs past the end or its value is no intent;
 * the entries before it were handed out already, so a caller that must not
 * act on part of a payload checks it first or acts where an ERROR undoes it
 * (a batch, a transaction).  false at the end, and from then on.
 */
typedef struct AlmanacApplyIter
{
	const char *next;			/* the entry after the current one */
	const char *end;
	/* the current entry, once almanac_apply_iter_next returned true */
	const char *key;
	uint32		klen;
	const char *value;
	uint32		vlen;
	AlmanacIntent intent;		/* the value, parsed */
} AlmanacApplyIter;

/* a stored or received payload is damaged: data_corrupted, as its intents' */
static inline void almanac_apply_truncated(void) pg_attribute_noreturn();

static inline void
almanac_apply_truncated(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("almanac: truncated write batch")));
}

static inline void
almanac_apply_iter_init(AlmanacApplyIter *it, const char *payload, Size len)
{
	it->next = payload;
	it->end = payload + len;
}

static inline bool
almanac_apply_iter_next(AlmanacApplyIter *it)
{
	const char *q = it->next;

	if (q >= it->end)
		return false;
	if (it->end - q < 4)
		almanac_apply_truncated();
	it->klen = almanac_get_be32(q);
	it->key = q + 4;
	if ((Size) (it->end - it->key) < (Size) it->klen + 4)
		almanac_apply_truncated();
	it->vlen = almanac_get_be32(it->key + it->klen);
	it->value = it->key + it->klen + 4;
	if ((Size) (it->end - it->value) < (Size) it->vlen)
		almanac_apply_truncated();
	it->next = it->value + it->vlen;
	almanac_intent_parse(it->value, it->vlen, &it->intent);
	return true;
}

/* ---- the batch message ---- */

#define ALMANAC_WAL_PREFIX			"almanac"
#define ALMANAC_BATCH_MESSAGE_FORMAT	1
#define ALMANAC_BATCH_HEADER_LEN	(1 + 8 + 8 + 2)

/* the header of a batch message; the APPLY payload follows it */
static inline void
almanac_batch_message_header(StringInfo buf, uint64 incarnation, uint64 seq,
							 const char *path)
{
	size_t		len = strlen(path);
	char		h[ALMANAC_BATCH_HEADER_LEN];

	h[0] = ALMANAC_BATCH_MESSAGE_FORMAT;
	almanac_put_be64(h + 1, incarnation);
	almanac_put_be64(h + 9, seq);
	h[17] = (char) ((len >> 8) & 0xff);
	h[18] = (char) (len & 0xff);
	appendBinaryStringInfo(buf, h, sizeof(h));
	appendBinaryStringInfo(buf, path, len);
}

/*
 * Parse a batch message of len bytes at p: false if it is no batch message
 * of this format (an empty xid message); ERROR if it is truncated.  *path
 * points into the message and is not NUL-terminated; *payload is the
 * APPLY payload.
 */
static inline bool
almanac_batch_message_parse(const char *p, Size len, uint64 *incarnation, uint64 *seq,
							const char **path, Size *path_len,
							const char **payload, Size *payload_len)
{
	if (len == 0)
		return false;
	if (len < ALMANAC_BATCH_HEADER_LEN || p[0] != ALMANAC_BATCH_MESSAGE_FORMAT)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a batch message of almanac in the WAL has an unknown format (%u)",
						(unsigned int) (unsigned char) p[0]),
				 errdetail("It was written by another version of almanac, or the WAL is damaged.")));
	*incarnation = almanac_get_be64(p + 1);
	*seq = almanac_get_be64(p + 9);
	*path_len = ((Size) (unsigned char) p[17] << 8) | (unsigned char) p[18];
	if (len < ALMANAC_BATCH_HEADER_LEN + *path_len)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a batch message of almanac in the WAL is truncated: %zu bytes, the header names %zu",
						(size_t) len, (size_t) (ALMANAC_BATCH_HEADER_LEN + *path_len))));
	*path = p + ALMANAC_BATCH_HEADER_LEN;
	*payload = *path + *path_len;
	*payload_len = len - ALMANAC_BATCH_HEADER_LEN - *path_len;
	return true;
}

/* ---- ALMANAC_REQ_INGEST ---- */

#define ALMANAC_CHUNK_HEADER_LEN	(4 + 1 + 4)
#define ALMANAC_CHUNK_ROW_HEADER_LEN	(4 + 4)

/*
 * A chunk handed over in shared memory is damaged: data_corrupted, as a
 * damaged APPLY payload is; 'what' names the part that runs past its end.
 */
static inline void almanac_chunk_truncated(const char *what) pg_attribute_noreturn();

static inline void
almanac_chunk_truncated(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("almanac: truncated bulk-load chunk"),
			 errdetail("%s runs past the end of the chunk.", what)));
}

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
		almanac_chunk_truncated("Its header");
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
		almanac_chunk_truncated("A row's header");
	*klen = almanac_get_be32(q);
	*vlen = almanac_get_be32(q + 4);
	q += ALMANAC_CHUNK_ROW_HEADER_LEN;
	if ((Size) (end - q) < (Size) *klen + *vlen)
		almanac_chunk_truncated("A row");
	*key = q;
	*value = q + *klen;
	*p = q + *klen + *vlen;
}

#endif							/* ALMANAC_PAYLOAD_H */
