/*-------------------------------------------------------------------------
 *
 * rocks.c
 *	  RocksDB errors and pinned lookups.  See rocks.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "storage/fd.h"

#include "kv/rocks.h"

#define ROCKS_MESSAGE_MAX 1024

void
almanac_rocks_error(int elevel, int sqlerrcode, char *err, const char *fmt,...)
{
	char		message[ROCKS_MESSAGE_MAX];
	StringInfoData what;

	if (err == NULL)
		return;
	/* RocksDB's string is malloc'd: copied and freed before anything can raise */
	strlcpy(message, err, sizeof(message));
	rocksdb_free(err);

	initStringInfo(&what);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&what, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&what, needed);
	}
	ereport(elevel,
			(errcode(sqlerrcode),
			 errmsg("%s: %s", what.data, message)));
}

char *
almanac_rocks_get(rocksdb_t *db, const rocksdb_readoptions_t *ropts,
				  rocksdb_column_family_handle_t *cf,
				  const char *key, size_t klen, size_t *vlen)
{
	char	   *err = NULL;
	rocksdb_pinnableslice_t *slice;
	const char *stored;
	char	   *val;

	slice = rocksdb_get_pinned_cf(db, ropts, cf, key, klen, &err);
	almanac_rocks_read_check(err);
	if (slice == NULL)
		return NULL;
	/* the slice pins a block: released before anything can raise an error */
	stored = rocksdb_pinnableslice_value(slice, vlen);
	val = palloc_extended(Max(*vlen, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (val != NULL)
		memcpy(val, stored, *vlen);
	rocksdb_pinnableslice_destroy(slice);
	if (val == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed on request of size %zu.", *vlen)));
	return val;
}

void
almanac_rocks_multiget(rocksdb_t *db, const rocksdb_readoptions_t *ropts,
					   rocksdb_column_family_handle_t *cf, int n,
					   const char *const *keys, const size_t *klens,
					   bool sorted_input, char **values, size_t *vlens)
{
	rocksdb_pinnableslice_t **slices;
	char	  **errs;
	char	   *first_err = NULL;
	size_t		failed_size = 0;
	bool		out_of_memory = false;

	if (n <= 0)
		return;
	/* everything that can fail is allocated before RocksDB pins anything */
	slices = palloc0(sizeof(rocksdb_pinnableslice_t *) * n);
	errs = palloc0(sizeof(char *) * n);
	rocksdb_batched_multi_get_cf(db, ropts, cf, n, (const char **) keys, klens,
								 slices, errs, sorted_input);
	for (int i = 0; i < n; i++)
	{
		values[i] = NULL;
		vlens[i] = 0;
		if (slices[i] != NULL)
		{
			size_t		len;
			const char *v = rocksdb_pinnableslice_value(slices[i], &len);

			if (v != NULL && !out_of_memory)
			{
				char	   *copy = palloc_extended(Max(len, 1),
												   MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);

				if (copy != NULL)
				{
					memcpy(copy, v, len);
					values[i] = copy;
					vlens[i] = len;
				}
				else
				{
					out_of_memory = true;
					failed_size = len;
				}
			}
			rocksdb_pinnableslice_destroy(slices[i]);
		}
		if (errs[i] != NULL)
		{
			if (first_err == NULL)
				first_err = errs[i];
			else
				rocksdb_free(errs[i]);
		}
	}
	pfree(slices);
	pfree(errs);
	if (out_of_memory)
	{
		if (first_err)
			rocksdb_free(first_err);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed on request of size %zu.", failed_size)));
	}
	almanac_rocks_read_check(first_err);
}

List *
almanac_rocks_column_families(const rocksdb_options_t *options, const char *path, char **err)
{
	char	  **names;
	size_t		n = 0;
	List	   *result = NIL;

	*err = NULL;
	if (options == NULL)
	{
		rocksdb_options_t *defaults = rocksdb_options_create();

		names = rocksdb_list_column_families(defaults, path, &n, err);
		rocksdb_options_destroy(defaults);
	}
	else
		names = rocksdb_list_column_families(options, path, &n, err);
	if (*err != NULL)
		return NIL;
	PG_TRY();
	{
		for (size_t i = 0; i < n; i++)
			result = lappend(result, pstrdup(names[i]));
	}
	PG_FINALLY();
	{
		rocksdb_list_column_families_destroy(names, n);
	}
	PG_END_TRY();
	return result;
}

/* RocksDB's ValueType tags of the records a batch of puts holds */
#define ROCKS_TAG_VALUE		0x1		/* kTypeValue: a put in column family 0 */
#define ROCKS_TAG_CF_VALUE	0x5		/* kTypeColumnFamilyValue */
#define ROCKS_BATCH_HEADER	12		/* fixed64 sequence, fixed32 count */

/* a varint32 at *p (below end) into *v; false if it does not parse */
static bool
rocks_varint32(const char **p, const char *end, uint32 *v)
{
	uint32		result = 0;

	for (int shift = 0; shift <= 28 && *p < end; shift += 7)
	{
		uint32		byte = (unsigned char) *(*p)++;

		result |= (byte & 0x7f) << shift;
		if ((byte & 0x80) == 0)
		{
			*v = result;
			return true;
		}
	}
	return false;
}

/* a length-prefixed slice at *p (below end); false if it does not parse */
static bool
rocks_slice(const char **p, const char *end, const char **data, size_t *len)
{
	uint32		n;

	if (!rocks_varint32(p, end, &n) || (size_t) (end - *p) < n)
		return false;
	*data = *p;
	*len = n;
	*p += n;
	return true;
}

/* the record count of a batch's representation (its header's fixed32) */
static uint32
rocks_batch_count(const char *rep)
{
	return (uint32) (unsigned char) rep[8] |
		((uint32) (unsigned char) rep[9] << 8) |
		((uint32) (unsigned char) rep[10] << 16) |
		((uint32) (unsigned char) rep[11] << 24);
}

/* the record at *p (below end) into *put; false if it is not a put or does not parse */
static bool
rocks_batch_put(const char **p, const char *end, AlmanacBatchPut *put)
{
	char		tag = *(*p)++;

	if (tag == ROCKS_TAG_CF_VALUE)
	{
		if (!rocks_varint32(p, end, &put->cf_id))
			return false;
	}
	else if (tag == ROCKS_TAG_VALUE)
		put->cf_id = 0;
	else
		return false;
	return rocks_slice(p, end, &put->key, &put->klen) &&
		rocks_slice(p, end, &put->val, &put->vlen);
}

int
almanac_rocks_batch_puts(const char *rep, size_t len, AlmanacBatchPut *puts, int max)
{
	const char *p = rep + ROCKS_BATCH_HEADER;
	const char *end = rep + len;
	uint32		count;
	int			n = 0;

	if (len < ROCKS_BATCH_HEADER)
		return -1;
	count = rocks_batch_count(rep);
	if (count > (uint32) max)
		return -1;
	while (p < end)
	{
		if (n == max || !rocks_batch_put(&p, end, &puts[n]))
			return -1;
		n++;
	}
	return n == (int) count ? n : -1;
}

void
almanac_rocks_wal_files(const char *path, bool unreadable, const char *detail,
						AlmanacWalFiles *files)
{
	DIR		   *dir = NULL;
	struct dirent *de;
	bool		opened;

	memset(files, 0, sizeof(AlmanacWalFiles));
	errno = EACCES;				/* unreadable: as if the opening failed so */
	if (!unreadable)
		dir = AllocateDir(path);
	opened = dir != NULL;
	if (!opened)
		files->error = errno;
	while (opened)
	{
		char	   *end;
		uint64		n;

		errno = 0;
		if ((de = readdir(dir)) == NULL)
		{
			files->error = errno;
			break;
		}
		n = strtou64(de->d_name, &end, 10);
		if (end == de->d_name || strcmp(end, ".log") != 0)
			continue;
		files->count++;
		if (n > files->newest)
		{
			files->newest = n;
			snprintf(files->newest_path, sizeof(files->newest_path), "%s/%s", path, de->d_name);
		}
	}
	if (opened)
		FreeDir(dir);
	if (files->error != 0)
	{
		errno = files->error;
		ereport(LOG,
				(errcode_for_file_access(),
				 !opened ? errmsg("could not open directory \"%s\": %m", path)
				 : errmsg("could not read directory \"%s\": %m", path),
				 detail ? errdetail_internal("%s", detail) : 0));
	}
}

bool
almanac_rocks_batch_each_put(const char *rep, size_t len, AlmanacBatchPutFn fn, void *arg)
{
	const char *end = rep + len;
	AlmanacBatchPut put;
	uint32		n = 0;

	if (len < ROCKS_BATCH_HEADER)
		return false;
	/* all of it parses as puts first: fn sees all or nothing */
	for (const char *p = rep + ROCKS_BATCH_HEADER; p < end; n++)
		if (!rocks_batch_put(&p, end, &put))
			return false;
	if (n != rocks_batch_count(rep))
		return false;
	for (const char *p = rep + ROCKS_BATCH_HEADER; p < end;)
	{
		(void) rocks_batch_put(&p, end, &put);
		fn(arg, &put);
	}
	return true;
}
