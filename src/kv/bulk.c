/*-------------------------------------------------------------------------
 *
 * bulk.c
 *	  Bulk load of COPY FROM, the backend's side: the rows of a COPY into
 *	  chunks in dynamic shared memory (store/payload.h has their format),
 *	  posted to the store owner, whose side (store/bulk.c) writes each into
 *	  an SST file and ingests it.  See bulk.h for the contract.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "almanac.h"
#include "fault.h"
#include "codec/visibility.h"
#include "kv/bulk.h"
#include "kv/nested.h"
#include "kv/xact.h"
#include "store/payload.h"
#include "store/store.h"

/*
 * Largest chunk (below almanac.write_batch_size): a chunk's pages are new
 * shared memory the backend faults in, and the owner's work on the last
 * chunk is not hidden behind the backend's; 4MB chunks loaded faster than
 * 16MB ones (2.3x against 2.0x the heap's rows/s, 200k rows).
 */
#define BULK_CHUNK_MAX		((Size) 4 * 1024 * 1024)

/* almanac.bulk_copy */
bool		almanac_bulk_copy = true;

/* a chunk being filled, or with the owner */
typedef struct BulkChunk
{
	dsm_segment *seg;
	Size		size;			/* of the segment */
	Size		used;
	uint32		nrows;
} BulkChunk;

struct AlmanacBulk
{
	AlmanacAccess *a;
	AlmanacBulkFallback fallback;
	void	   *fallback_arg;
	BulkChunk	chunks[2];
	int			filling;		/* chunks[filling] takes new rows */
	bool		posted;			/* chunks[1 - filling] is with the owner */
	bool		refused;		/* rows go through the fallback from now on */
	MemoryContextCallback forget;	/* clears posted_bulk when b goes away */
};

/*
 * The bulk load whose chunk is with the owner, if any.  A backend has one
 * request slot: a COPY into a partitioned table, loading several foreign
 * partitions at once, waits for one partition's chunk before it posts
 * another's.
 */
static AlmanacBulk *posted_bulk = NULL;

void
almanac_bulk_init(void)
{
	DefineCustomBoolVariable("almanac.bulk_copy",
							 "Loads COPY FROM into almanac foreign tables as SST files the store owner ingests.",
							 "A chunk of rows (almanac.write_batch_size) whose key range holds keys already in "
							 "the store takes the per-row path instead, and so does the rest of the COPY.",
							 &almanac_bulk_copy,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}


/* the statement's memory goes, ERROR included: b's chunk is no one's to wait for */
static void
forget_bulk(void *arg)
{
	if (posted_bulk == arg)
		posted_bulk = NULL;
}

AlmanacBulk *
almanac_bulk_begin(AlmanacAccess *a, AlmanacBulkFallback fallback, void *arg)
{
	AlmanacBulk *b;

	/*
	 * An older snapshot of the transaction is open (a cursor): its readers
	 * must not see the rows, which the owner would write as versions of the
	 * transaction, with no prior kept for them (kv/nested.h).
	 */
	if (almanac_nested_must_keep_prior(GetCurrentCommandId(false), NULL))
		return NULL;
	b = palloc0(sizeof(AlmanacBulk));

	b->a = a;
	b->fallback = fallback;
	b->fallback_arg = arg;
	b->forget.func = forget_bulk;
	b->forget.arg = b;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &b->forget);
	return b;
}

/*
 * Make room for a row of 'need' bytes in c: a segment of BULK_CHUNK_MAX or
 * almanac.write_batch_size if smaller, or larger for a larger row.  Segments belong to
 * the transaction's resource owner, which detaches them on ERROR; the owner
 * keeps a posted one mapped until it is done with it.
 */
static void
chunk_reserve(BulkChunk *c, Size need)
{
	Size		size = Min((Size) almanac_write_batch_size * 1024, BULK_CHUNK_MAX);

	size = Max(size, ALMANAC_CHUNK_HEADER_LEN + need);

	if (c->seg != NULL && c->size >= ALMANAC_CHUNK_HEADER_LEN + need)
		return;
	if (c->seg != NULL)
		dsm_detach(c->seg);
	c->seg = dsm_create(size, 0);
	c->size = size;
	c->used = ALMANAC_CHUNK_HEADER_LEN;
	c->nrows = 0;
}

/* the rows of a chunk through the per-row path, in the order COPY read them */
static void
chunk_fall_back(AlmanacBulk *b, BulkChunk *c)
{
	const char *p = (char *) dsm_segment_address(c->seg) + ALMANAC_CHUNK_HEADER_LEN;
	const char *end = (char *) dsm_segment_address(c->seg) + c->used;

	for (uint32 i = 0; i < c->nrows; i++)
	{
		const char *key;
		const char *value;
		uint32		klen;
		uint32		vlen;

		almanac_chunk_row_next(&p, end, &key, &klen, &value, &vlen);
		b->fallback(b->fallback_arg, key, klen,
					value + ALMANAC_NEW_VALUE_HEADER_LEN,
					vlen - ALMANAC_NEW_VALUE_HEADER_LEN);
	}
	c->used = ALMANAC_CHUNK_HEADER_LEN;
	c->nrows = 0;
}

/* the owner's answer to the posted chunk; its rows fall back if refused */
static void
wait_posted(AlmanacBulk *b)
{
	BulkChunk  *c = &b->chunks[1 - b->filling];

	if (!b->posted)
		return;
	b->posted = false;
	posted_bulk = NULL;
	if (!almanac_store_ingest_wait())
	{
		b->refused = true;
		chunk_fall_back(b, c);
	}
	c->used = ALMANAC_CHUNK_HEADER_LEN;
	c->nrows = 0;
}

/* hand the filled chunk to the owner, or to the fallback once one was refused */
static void
post_filling(AlmanacBulk *b)
{
	BulkChunk  *c = &b->chunks[b->filling];
	char	   *p;
	Size		len;

	wait_posted(b);
	if (c->nrows == 0)
		return;
	if (posted_bulk != NULL)
		wait_posted(posted_bulk);
	if (b->refused)
	{
		chunk_fall_back(b, c);
		return;
	}
	p = dsm_segment_address(c->seg);
	almanac_chunk_header_put(p, b->a->cf_id, b->a->t->opts->upsert, c->nrows);
	len = c->used;
	/* a chunk damaged on its way: its last row runs past the end */
	if (ALMANAC_FAULT_ARMED("bulk_chunk_truncated"))
		len--;
	almanac_xact_ingest_post(b->a->store, GetCurrentFullTransactionId(), c->seg, len);
	b->posted = true;
	posted_bulk = b;
	b->filling = 1 - b->filling;
}

bool
almanac_bulk_add(AlmanacBulk *b, const char *key, size_t klen,
				 const char *image, uint32 image_len)
{
	BulkChunk  *c = &b->chunks[b->filling];
	Size		vlen = ALMANAC_NEW_VALUE_HEADER_LEN + (Size) image_len;
	Size		need = almanac_chunk_row_size(klen, vlen);
	char	   *p;

	if (c->seg != NULL && c->used + need > c->size)
	{
		post_filling(b);
		if (b->refused)
		{
			almanac_bulk_end(b);
			return false;
		}
		c = &b->chunks[b->filling];
	}
	chunk_reserve(c, need);

	p = almanac_chunk_row_put((char *) dsm_segment_address(c->seg) + c->used, key, klen, vlen);
	/* the stored value: one version, by this (sub)transaction */
	almanac_versions_new(p, GetCurrentFullTransactionId(), GetTopTransactionId(), image_len);
	memcpy(p + ALMANAC_NEW_VALUE_HEADER_LEN, image, image_len);
	c->used += need;
	c->nrows++;
	return true;
}

void
almanac_bulk_end(AlmanacBulk *b)
{
	post_filling(b);
	wait_posted(b);
	for (int i = 0; i < 2; i++)
	{
		if (b->chunks[i].seg)
			dsm_detach(b->chunks[i].seg);
		b->chunks[i].seg = NULL;
	}
}
