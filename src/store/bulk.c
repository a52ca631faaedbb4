/*-------------------------------------------------------------------------
 *
 * bulk.c
 *	  Bulk load of COPY FROM, the store owner's side: check a chunk a
 *	  backend posted (kv/bulk.c; format in store/payload.h) against the
 *	  column family, write it into an SST file in the store's file format
 *	  and ingest it.  See kv/bulk.h for the contract.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "common/file_perm.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "almanac.h"
#include "codec/keycodec.h"
#include "codec/visibility.h"
#include "kv/rocks.h"
#include "store/owner.h"
#include "store/payload.h"

/*
 * Where owners write the files they ingest, under the data directory:
 * store<index>.chunk, a name RocksDB would not take for one of its own
 * files should a store path point here.
 */
#define ALMANAC_BULK_DIR	"almanac/ingest"

/* keys per MultiGet of the owner's check */
#define CHECK_BATCH			1024


typedef struct OwnerRow
{
	const char *key;
	const char *value;
	uint32		klen;
	uint32		vlen;
	uint32		seq;			/* position in the chunk */
} OwnerRow;

static int
row_cmp(const void *x, const void *y)
{
	const OwnerRow *a = x;
	const OwnerRow *b = y;
	int			c = memcmp(a->key, b->key, Min(a->klen, b->klen));

	if (c != 0)
		return c;
	if (a->klen != b->klen)
		return a->klen < b->klen ? -1 : 1;
	return a->seq < b->seq ? -1 : (a->seq > b->seq ? 1 : 0);
}

/* the chunk's n rows (after its header), sorted by key (then by position) */
static OwnerRow *
chunk_rows(const char *payload, Size len, uint32 n)
{
	const char *p = payload + ALMANAC_CHUNK_HEADER_LEN;
	const char *end = payload + len;
	OwnerRow   *rows;

	rows = palloc_extended(sizeof(OwnerRow) * Max(n, 1), MCXT_ALLOC_HUGE);
	for (uint32 i = 0; i < n; i++)
	{
		almanac_chunk_row_next(&p, end, &rows[i].key, &rows[i].klen,
							   &rows[i].value, &rows[i].vlen);
		rows[i].seq = i;
	}
	/* qsort notices input that is sorted already (rows in key order) */
	qsort(rows, n, sizeof(OwnerRow), row_cmp);
	return rows;
}

/*
 * Does the column family hold any key in [first, last]?  Any key: a live
 * row, an old or an uncommitted version, a key of another table; only the
 * catch-up marker (never inside a table's range, see store.h) is skipped.
 * The common bulk load (keys after those loaded before, or a first load)
 * answers with one seek.
 */
static bool
range_has_keys(rocksdb_column_family_handle_t *cf, const OwnerRow *first, const OwnerRow *last)
{
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it;
	bool		found = false;
	char	   *err = NULL;

	/* exclusive: the last key itself is looked up below */
	rocksdb_readoptions_set_iterate_upper_bound(ro, last->key, last->klen);
	it = rocksdb_create_iterator_cf(almanac_owner_db(), ro, cf);
	for (rocksdb_iter_seek(it, first->key, first->klen); rocksdb_iter_valid(it); rocksdb_iter_next(it))
	{
		size_t		klen;
		const char *k = rocksdb_iter_key(it, &klen);

		if (!almanac_is_catch_up_marker(k, klen))
		{
			found = true;
			break;
		}
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	if (!found && err == NULL)
	{
		size_t		vlen;
		char	   *v = rocksdb_get_cf(almanac_owner_db(), ro, cf, last->key, last->klen, &vlen, &err);

		found = v != NULL;
		if (v)
			rocksdb_free(v);
	}
	rocksdb_readoptions_destroy(ro);
	almanac_rocks_check(err, "read");
	return found;
}

/*
 * Does the column family hold any of the chunk's keys with a version that is
 * not aborted?  (MultiGets of sorted keys.)  A key whose versions all
 * aborted (a failed load, retried) is replaced by the file's version, as a
 * write would drop them.
 */
static bool
any_key_exists(rocksdb_column_family_handle_t *cf, const OwnerRow *rows, uint32 n)
{
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	const char *keys[CHECK_BATCH];
	size_t		lens[CHECK_BATCH];
	char	   *values[CHECK_BATCH];
	size_t		vlens[CHECK_BATCH];
	bool		found = false;

	/* a bloom filter probe for most keys of a new range */
	rocksdb_readoptions_set_fill_cache(ro, 0);
	PG_TRY();
	{
		for (uint32 start = 0; start < n && !found; start += CHECK_BATCH)
		{
			uint32		m = Min(CHECK_BATCH, n - start);

			for (uint32 i = 0; i < m; i++)
			{
				keys[i] = rows[start + i].key;
				lens[i] = rows[start + i].klen;
			}
			almanac_rocks_multiget(almanac_owner_db(), ro, cf, m, keys, lens, true,
								   values, vlens);
			for (uint32 i = 0; i < m; i++)
			{
				if (values[i] == NULL)
					continue;
				if (!found && !almanac_versions_all_aborted(values[i], vlens[i]))
					found = true;
				pfree(values[i]);
			}
		}
	}
	PG_FINALLY();
	{
		rocksdb_readoptions_destroy(ro);
	}
	PG_END_TRY();
	return found;
}

/*
 * Write the sorted rows into the SST file 'path'.  Rows with a key repeated
 * are 23505, or for an upsert table all but the last are left out.
 */
static void
write_file(int store, const char *path, const char *cf_name, OwnerRow *rows, uint32 n,
		   bool upsert)
{
	rocksdb_options_t *opts = rocksdb_options_create();
	rocksdb_envoptions_t *env = rocksdb_envoptions_create();
	rocksdb_sstfilewriter_t *w;
	char	   *err = NULL;
	uint32		dup = 0;

	almanac_store_file_format(opts, &almanac_shared->stores[store]);
	w = rocksdb_sstfilewriter_create(env, opts);
	rocksdb_envoptions_destroy(env);
	rocksdb_options_destroy(opts);

	rocksdb_sstfilewriter_open(w, path, &err);
	for (uint32 i = 0; i < n && err == NULL; i++)
	{
		if (i + 1 < n && rows[i].klen == rows[i + 1].klen &&
			memcmp(rows[i].key, rows[i + 1].key, rows[i].klen) == 0)
		{
			/* the later row of an upsert wins */
			if (upsert)
				continue;
			dup = i + 1;
			break;
		}
		rocksdb_sstfilewriter_put(w, rows[i].key, rows[i].klen, rows[i].value, rows[i].vlen, &err);
	}
	if (err == NULL && dup == 0)
		rocksdb_sstfilewriter_finish(w, &err);
	rocksdb_sstfilewriter_destroy(w);
	if (err || dup)
		(void) unlink(path);
	almanac_rocks_check(err, "writing a bulk-load file");
	if (dup)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("duplicate key value violates the key of almanac column family \"%s\"", cf_name),
				 errdetail("Key %s appears twice in the rows of one COPY.",
						   almanac_key_for_message(rows[dup].key, rows[dup].klen)),
				 errhint("Declare the foreign table with OPTIONS (upsert 'true') to let the later row overwrite.")));
}

void
almanac_owner_ingest(AlmanacRequestSlot *slot, int store, const char *payload, Size len)
{
	uint32		cf_id;
	bool		upsert;
	const char *cf_name;
	rocksdb_column_family_handle_t *cf;
	OwnerRow   *rows;
	uint32		n;
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	const char *paths[1];
	rocksdb_ingestexternalfileoptions_t *io;
	rocksdb_writebatch_t *markers;
	char	   *err = NULL;

	slot->ingested = false;
	almanac_chunk_header_get(payload, len, &cf_id, &upsert, &n);
	cf = almanac_owner_cf(cf_id, &cf_name);
	if (cf == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("almanac column family with id %u does not exist", cf_id),
				 errhint("It was dropped while the transaction wrote to it.")));
	rows = chunk_rows(payload, len, n);
	if (n == 0)
		return;
	/* nothing to check or merge only if none of the keys exists */
	if (range_has_keys(cf, &rows[0], &rows[n - 1]) && any_key_exists(cf, rows, n))
		return;

	snprintf(dir, sizeof(dir), "%s/" ALMANAC_BULK_DIR, DataDir);
	if (pg_mkdir_p(dir, pg_dir_create_mode) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));
	snprintf(path, sizeof(path), "%s/store%d.chunk", dir, store);
	/* left by an owner that crashed while ingesting */
	(void) unlink(path);
	write_file(store, path, cf_name, rows, n, upsert);

	io = rocksdb_ingestexternalfileoptions_create();
	/* hard-link the file into the store (RocksDB copies it across file systems) */
	rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
	paths[0] = path;

	/*
	 * Its keys are not logged one by one: an entry that empties every row
	 * cache, logged before the file can be seen and marked written after.
	 */
	almanac_write_log_forget();
	almanac_write_log_note_all();
	almanac_write_log_append(&almanac_shared->stores[store].writelog, store);
	rocksdb_ingest_external_file_cf(almanac_owner_db(), cf, paths, 1, io, &err);
	rocksdb_ingestexternalfileoptions_destroy(io);
	/* moved into the store, or failed: not needed any more */
	(void) unlink(path);
	almanac_rocks_check(err, "ingest of a bulk-load file");
	almanac_write_log_mark_written(&almanac_shared->stores[store].writelog);
	slot->ingested = true;

	/* catch-up markers, and a new sequence number for readers to catch up to */
	markers = rocksdb_writebatch_create();
	PG_TRY();
	{
		almanac_owner_write(markers, 0);
	}
	PG_FINALLY();
	{
		rocksdb_writebatch_destroy(markers);
	}
	PG_END_TRY();
}
