/*-------------------------------------------------------------------------
 *
 * access.c
 *	  Reading and writing the rows of a table kept in a RocksDB column
 *	  family.  See access.h for the contract.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"

#include "codec/valuecodec.h"
#include "fault.h"
#include "kv/access.h"
#include "kv/keylock.h"
#include "kv/nested.h"
#include "kv/rocks.h"
#include "kv/rowcache.h"
#include "kv/sharedcache.h"
#include "kv/xact.h"
#include "store/store.h"

/* ---- the access ---- */

/* the accesses begun and not released, of every store (almanac_access_before_send) */
static dlist_head live_accesses = DLIST_STATIC_INIT(live_accesses);

/* what ALMANAC_CF_DEFERRED points at: never a handle */
char		almanac_cf_deferred_marker;

void
almanac_access_iter_end(AlmanacAccess *a)
{
	if (a->iter != NULL)
		rocksdb_iter_destroy(a->iter);
	a->iter = NULL;
	/* after the iterator, which reads it */
	if (a->batch_copy)
		rocksdb_writebatch_wi_destroy(a->batch_copy);
	a->batch_copy = NULL;
}

void
almanac_access_release(AlmanacAccess *a)
{
	almanac_access_iter_end(a);
	if (a->ropts)
		rocksdb_readoptions_destroy(a->ropts);
	a->ropts = NULL;
	if (a->live)
	{
		dlist_iter	it;
		bool		others = false;

		dlist_delete(&a->live_node);
		a->live = false;
		dlist_foreach(it, &live_accesses)
		{
			AlmanacAccess *other = dlist_container(AlmanacAccess, live_node, it.cur);

			if (other->store == a->store && other->pins)
				others = true;
		}
		/* nothing reads the instance any more that must not see a send */
		if (a->pins && !others)
			almanac_reader_pin(a->reader, false);
	}
}

static void
access_release_callback(void *arg)
{
	almanac_access_release((AlmanacAccess *) arg);
}

void
almanac_access_begin(AlmanacAccess *a, AlmanacKvTable *t, int flags)
{
	bool		deferred;

	memset(a, 0, sizeof(AlmanacAccess));
	/* first, so that an ERROR below finds it registered */
	a->release.func = access_release_callback;
	a->release.arg = a;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &a->release);

	a->t = t;
	a->store = almanac_store_attach(t->server);

	/*
	 * A point access reads the shared row cache first, which needs only the
	 * column family's id: the owner publishes them (store.h), so the
	 * instance is opened when a read needs it (access_open), if ever.  A
	 * column family the list does not name (missing, or the list unknown
	 * now) is asked of the instance, as before.
	 */
	deferred = (flags & ALMANAC_ACCESS_POINT) && !(flags & ~ALMANAC_ACCESS_POINT) &&
		almanac_store_cf_id(a->store, t->opts->column_family, &a->cf_id);
	a->reader = deferred ? almanac_reader_deferred(a->store) : almanac_reader(a->store);
	dlist_push_tail(&live_accesses, &a->live_node);
	a->live = true;
	/* outlives a: a's memory is the portal's (almanac_access_before_send) */
	a->portal = ActivePortal;
	/*
	 * After the statement's snapshot: see almanac_reader_catch_up.  A lazy
	 * access catches up later, before its reads, if they need it
	 * (access_catch_up_for_key).
	 */
	if (flags & ALMANAC_ACCESS_POINT)
		a->lazy = true;
	else if (!(flags & ALMANAC_ACCESS_NO_CATCH_UP))
		almanac_reader_catch_up(a->reader);
	if (deferred)
	{
		/* a->db stays NULL until access_open */
		a->cf = ALMANAC_CF_DEFERRED;
	}
	else
	{
		a->cf = almanac_reader_cf(a->reader, t->opts->column_family,
								  (flags & ALMANAC_ACCESS_CREATE) != 0, &a->cf_id);
		a->db = almanac_reader_db(a->reader);
	}
	a->keyvalues = palloc(sizeof(Datum) * Max(t->layout.nkeys, 1));
	/* lower and upper: by the first iteration (a point lookup makes none) */
	a->cxt = CurrentMemoryContext;
}

/*
 * A lazy access reads the reader's current instance: a catch-up, its own or
 * another access's, may have opened a new one (the old one no longer
 * catches up, so the write log no longer speaks for it).  A deferred access
 * (a->db NULL) takes it, opened now if the reader has none.
 */
static void
access_follow_reader(AlmanacAccess *a)
{
	rocksdb_t  *db;

	if (a->db == NULL)
	{
		Assert(a->lazy && a->cf == ALMANAC_CF_DEFERRED);
		almanac_reader_open(a->reader);
	}
	db = almanac_reader_db(a->reader);
	if (db == a->db || a->cf == NULL)
	{
		a->db = db;
		return;
	}
	Assert(a->iter == NULL);
	a->cf = almanac_reader_cf_by_id(a->reader, a->cf_id);
	a->db = db;
	if (a->cf == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the column family of table \"%s\" was dropped",
						RelationGetRelationName(a->t->rel))));
}

/*
 * Open a deferred access's instance (see almanac_access_begin), before
 * anything reads a->db or a->cf: after the statement's snapshot, so it holds
 * every commit the snapshot sees, as a catch-up would.  An access that stays
 * lazy then catches up per key on that instance, as any lazy access does.
 */
static inline void
access_open(AlmanacAccess *a)
{
	if (a->db == NULL)
		access_follow_reader(a);
}

/*
 * Before a lazy access reads key (NULL: before it iterates, whatever the
 * keys): open its instance (access_open), and catch the reader up if that
 * read needs it (see access.h).
 */
static void
access_catch_up_for_key(AlmanacAccess *a, const char *key, size_t klen)
{
	access_open(a);
	if (!a->lazy)
		return;
	if (key == NULL)
	{
		almanac_reader_catch_up(a->reader);
		a->lazy = false;
	}
	else
		almanac_reader_catch_up_for_key(a->reader, key, klen);
	access_follow_reader(a);
}

/* is a an access of the running statement (see almanac_access_before_send)? */
static bool
access_running(AlmanacAccess *a, int store)
{
	return a->store == store &&
		(a->portal == NULL || a->portal->status == PORTAL_ACTIVE);
}

void
almanac_access_before_send(int store, bool own)
{
	AlmanacReader *reader = almanac_reader(store);
	dlist_iter	it;
	bool		running = false;
	bool		lazy = false;

	/* the caller catches up in place after the send: see access.h */
	if (!own)
		almanac_reader_pin(reader, false);
	dlist_foreach(it, &live_accesses)
	{
		AlmanacAccess *a = dlist_container(AlmanacAccess, live_node, it.cur);

		if (!access_running(a, store))
			continue;
		running = true;
		lazy |= a->lazy;
	}
	/* what the lazy ones would have done as they began */
	if (lazy)
		almanac_reader_catch_up(reader);
	dlist_foreach(it, &live_accesses)
	{
		AlmanacAccess *a = dlist_container(AlmanacAccess, live_node, it.cur);

		if (!access_running(a, store))
			continue;
		if (a->lazy)
		{
			a->lazy = false;
			access_follow_reader(a);
		}
		if (own)
			a->pins = true;
	}
	if (own && running)
		almanac_reader_pin(reader, true);
}

/*
 * Read options of point lookups (Get, MultiGet): the defaults, made once per
 * backend and never changed, so that a lookup creates none.
 *
 * With them, RocksDB's per-thread perf context is turned off for the
 * backend: by default it counts (kEnableCount) every key comparison, block
 * read and memtable probe into thread-local counters that almanac never
 * reads, and in a library loaded with dlopen each count reaches its
 * thread-local through __tls_get_addr.  The setting is the backend thread's
 * own: iterations made before its first point lookup count as before, and
 * the owner is not affected.
 */
static const rocksdb_readoptions_t *
lookup_options(void)
{
	static rocksdb_readoptions_t *ropts = NULL;

	if (ropts == NULL)
	{
		ropts = rocksdb_readoptions_create();
		/* kDisable in RocksDB's PerfLevel */
		rocksdb_set_perf_level(1);
	}
	return ropts;
}

/* ---- keys ---- */

void
almanac_kv_key(AlmanacKvTable *t, StringInfo buf, int n, const Datum *values, bool prefix_only)
{
	if (t->opts->raw)
	{
		if (n > 0)
		{
			bytea	   *b = DatumGetByteaPP(values[0]);

			appendBinaryStringInfo(buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
		}
		return;
	}
	almanac_key_encode(buf, &t->layout, n, values, prefix_only);
}

void
almanac_prefix_end(StringInfo prefix, StringInfo upper)
{
	resetStringInfo(upper);
	appendBinaryStringInfo(upper, prefix->data, prefix->len);
	if (!almanac_key_successor(upper, 0))
		resetStringInfo(upper);
}

int
almanac_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

typedef struct SortKey
{
	char	   *key;
	size_t		len;
} SortKey;

static int
sort_key_cmp(const void *a, const void *b)
{
	const SortKey *x = a;
	const SortKey *y = b;

	return almanac_key_cmp(x->key, x->len, y->key, y->len);
}

int
almanac_keys_sort_unique(int n, char **keys, size_t *klens)
{
	SortKey    *sk = palloc(sizeof(SortKey) * Max(n, 1));
	int			m = 0;

	for (int i = 0; i < n; i++)
	{
		sk[i].key = keys[i];
		sk[i].len = klens[i];
	}
	qsort(sk, n, sizeof(SortKey), sort_key_cmp);
	for (int i = 0; i < n; i++)
	{
		if (m > 0 && sort_key_cmp(&sk[i], &sk[i - 1]) == 0)
			continue;
		keys[m] = sk[i].key;
		klens[m] = sk[i].len;
		m++;
	}
	pfree(sk);
	return m;
}

bool
almanac_kv_owns_key(AlmanacKvTable *t, const char *key, size_t klen)
{
	const char *attr = t->layout.attribute;
	size_t		alen;

	/* a raw table covers the whole column family, the owner's marker too */
	if (almanac_is_catch_up_marker(key, klen))
		return false;
	if (attr == NULL)
		return true;
	alen = strlen(attr);
	return klen > alen + 1 &&
		key[klen - alen - 1] == ALMANAC_KEY_SEP &&
		memcmp(key + klen - alen, attr, alen) == 0;
}

/* ---- stored values and rows ---- */

bool
almanac_value_row(const char *val, size_t vlen, Snapshot snapshot,
				  const char **tuple, uint32 *tuple_len, FullTransactionId *xid)
{
	*xid = InvalidFullTransactionId;
	if (almanac_is_intent(val, vlen))
	{
		AlmanacIntent intent;

		almanac_intent_parse(val, vlen, &intent);
		if (intent.kind == ALMANAC_INTENT_DELETE || intent.kind == ALMANAC_INTENT_ERASE)
			return false;
		*tuple = intent.tuple;
		*tuple_len = intent.tuple_len;
		return true;
	}
	else
	{
		AlmanacVersion v;

		if (!almanac_versions_find_visible(val, vlen, snapshot, &v))
			return false;
		*xid = v.xid;
		if (v.flags & ALMANAC_VERSION_DELETED)
			return false;
		*tuple = v.tuple;
		*tuple_len = v.tuple_len;
		return true;
	}
}

void
almanac_row_to_slot(AlmanacAccess *a, TupleTableSlot *slot, const char *key, size_t klen,
					const char *tuple, uint32 tuple_len)
{
	AlmanacKvTable *t = a->t;

	ExecClearTuple(slot);
	if (t->opts->raw)
	{
		TupleDesc	desc = slot->tts_tupleDescriptor;

		for (int i = 0; i < desc->natts; i++)
			slot->tts_isnull[i] = true;
		slot->tts_values[t->keyattrs[0] - 1] = PointerGetDatum(almanac_bytes_to_bytea(key, klen));
		slot->tts_isnull[t->keyattrs[0] - 1] = false;
		slot->tts_values[t->raw_value_attno - 1] = PointerGetDatum(almanac_bytes_to_bytea(tuple, tuple_len));
		slot->tts_isnull[t->raw_value_attno - 1] = false;
		ExecStoreVirtualTuple(slot);
		return;
	}
	if (a->skip != NULL)
	{
		TupleDesc	desc = slot->tts_tupleDescriptor;

		for (int i = 0; i < desc->natts; i++)
			if (a->unneeded[i])
				slot->tts_isnull[i] = true;
		almanac_value_decode(tuple, tuple_len, desc, t->values,
							 slot->tts_values, slot->tts_isnull, a->skip);
		if (!a->need_key)
		{
			ExecStoreVirtualTuple(slot);
			return;
		}
	}
	else
		almanac_value_decode(tuple, tuple_len, slot->tts_tupleDescriptor, t->values,
							 slot->tts_values, slot->tts_isnull, t->is_key);
	if (!almanac_key_decode(key, klen, &t->layout, a->keyvalues))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("key in column family \"%s\" does not match the key layout of foreign table \"%s\"",
						t->opts->column_family, RelationGetRelationName(t->rel))));
	for (int i = 0; i < t->layout.nkeys; i++)
	{
		AttrNumber	attno = t->keyattrs[i];
		Datum		v = a->keyvalues[i];

		/*
		 * A char(n) key is stored without its padding (char(n) equality
		 * ignores it); the column's value has it, as in a heap table.
		 */
		if (a->unneeded != NULL && a->unneeded[attno - 1])
			continue;
		if (t->key_pad[i] > VARHDRSZ)
			v = DirectFunctionCall3(bpchar, v, Int32GetDatum(t->key_pad[i]), BoolGetDatum(false));
		slot->tts_values[attno - 1] = v;
		slot->tts_isnull[attno - 1] = false;
	}
	ExecStoreVirtualTuple(slot);
}

void
almanac_access_need(AlmanacAccess *a, Bitmapset *needed)
{
	AlmanacKvTable *t = a->t;
	int			natts = RelationGetDescr(t->rel)->natts;
	MemoryContext old;

	/* a raw table's two columns are cheap; a whole-row reference wants all */
	if (t->opts->raw ||
		bms_is_member(InvalidAttrNumber - FirstLowInvalidHeapAttributeNumber, needed))
		return;
	old = MemoryContextSwitchTo(a->cxt);
	a->unneeded = palloc(sizeof(bool) * Max(natts, 1));
	a->skip = palloc(sizeof(bool) * Max(natts, 1));
	MemoryContextSwitchTo(old);
	for (int i = 0; i < natts; i++)
	{
		a->unneeded[i] = !bms_is_member(i + 1 - FirstLowInvalidHeapAttributeNumber, needed);
		a->skip[i] = a->unneeded[i] || t->is_key[i];
	}
	a->need_key = false;
	for (int i = 0; i < t->layout.nkeys; i++)
		if (!a->unneeded[t->keyattrs[i] - 1])
			a->need_key = true;
}

bool
almanac_access_value_to_slot(AlmanacAccess *a, Snapshot snapshot,
							 const char *key, size_t klen, const char *val, size_t vlen,
							 TupleTableSlot *slot)
{
	const char *tuple;
	uint32		tlen;
	FullTransactionId xid;

	ExecClearTuple(slot);
	if (val == NULL || !almanac_kv_owns_key(a->t, key, klen) ||
		!almanac_value_row(val, vlen, snapshot, &tuple, &tlen, &xid))
		return false;
	almanac_row_to_slot(a, slot, key, klen, tuple, tlen);
	return true;
}

/*
 * May a's lookups use the shared row cache (kv/sharedcache.h)?  Not once the
 * transaction sent writes to the owner mid-transaction: the newest value of
 * a key may then hold versions of its own that a running statement must not
 * see (its accesses stay on an instance without them).
 */
static bool
access_shares(AlmanacAccess *a)
{
	return almanac_shared_cache_enabled() && !almanac_xact_sent_mid_xact(a->store);
}

/*
 * Keep in the shared row cache what a Get of a's instance returned for key,
 * if that is the newest value: the instance is the reader's current one and
 * the owner's write log names no write of key since it caught up.  The
 * ticket comes first (sharedcache.h says why).
 */
static void
access_share(AlmanacAccess *a, const char *key, size_t klen, const char *val, size_t vlen)
{
	AlmanacSharedCacheTicket ticket;

	/* races made to last (test/t/031_shared_row_cache.pl) */
	ALMANAC_FAULT_PAUSE("shared_cache_before_ticket", 3000);
	almanac_shared_cache_prepare(&ticket, a->store, key, klen);
	if (!almanac_reader_holds_newest(a->reader, a->db, key, klen))
		return;
	ALMANAC_FAULT_PAUSE("shared_cache_before_put", 3000);
	almanac_shared_cache_put(&ticket, a->cf_id, key, klen, val, vlen);
}

/*
 * The transaction's buffered write of key (almanac_xact_buffered), for a's
 * column family: a batch lookup needs a handle, so a deferred access opens
 * its instance first, unless there is no batch to look in.  The one the
 * running reader's snapshot sees (kv/nested.h), or with newest the newest
 * (a key lock's: the key as it is now).
 */
static char *
access_buffered(AlmanacAccess *a, rocksdb_writebatch_wi_t *stmt, const char *key,
				size_t klen, size_t *vlen, bool newest)
{
	bool		in_stmt;
	char	   *val;
	const char *prior;
	size_t		prior_len;

	if (a->db == NULL)
	{
		if (stmt == NULL && almanac_xact_batch(a->store) == NULL && !almanac_nested_any_open())
			return NULL;
		access_open(a);
	}
	val = almanac_xact_buffered(a->store, stmt, a->cf, a->cf_id, key, klen, vlen, &in_stmt);

	/*
	 * A write of a command the reader's snapshot does not see (nested.h):
	 * the one before it, or none.  A statement batch's entry was found by
	 * the reader's command id already.
	 */
	if (in_stmt || newest ||
		!almanac_nested_prior(a->store, a->cf_id, key, klen, almanac_nested_reader_cid(),
							  &prior, &prior_len))
		return val;
	if (val)
		pfree(val);
	if (prior == NULL)
		return NULL;
	*vlen = prior_len;
	val = palloc(prior_len);
	memcpy(val, prior, prior_len);
	return val;
}

/*
 * The stored value of key, ignoring buffered writes: from the shared row
 * cache, before any catch-up (unless the transaction sent writes
 * mid-transaction: access_shares), else from the reader's row cache if a Get
 * of this instance found it before, else a Get ('keep': kept in both caches).
 */
char *
almanac_access_get_stored(AlmanacAccess *a, const char *key, size_t klen, size_t *vlen,
						  bool keep)
{
	AlmanacRowCache *rows;
	char	   *val;
	bool		shared = access_shares(a);

	/*
	 * The shared row cache first, before any catch-up: what it holds is the
	 * newest value of the key, which a lazy access would otherwise catch up
	 * to read (a write of the key puts its value there: owner write-through).
	 */
	if (shared && almanac_shared_cache_lookup(a->store, a->cf_id, key, klen, &val, vlen))
		return val;
	access_catch_up_for_key(a, key, klen);
	rows = almanac_reader_rows(a->reader, a->db);
	if (almanac_row_cache_lookup(rows, a->cf_id, key, klen, &val, vlen))
		return val;
	val = almanac_rocks_get(a->db, lookup_options(), a->cf, key, klen, vlen);
	if (keep)
		almanac_row_cache_put(rows, a->cf_id, key, klen, val, *vlen);
	if (shared && keep)
		access_share(a, key, klen, val, *vlen);
	return val;
}

char *
almanac_access_get(AlmanacAccess *a, rocksdb_writebatch_wi_t *stmt, const char *key,
				   size_t klen, size_t *vlen, bool keep)
{
	char	   *val = access_buffered(a, stmt, key, klen, vlen, false);

	return val ? val : almanac_access_get_stored(a, key, klen, vlen, keep);
}

bool
almanac_access_get_row(AlmanacAccess *a, Snapshot snapshot, const char *key, size_t klen,
					   TupleTableSlot *slot)
{
	size_t		vlen;
	char	   *val;

	ExecClearTuple(slot);
	if (a->cf == NULL)
		return false;			/* the column family was never created: empty */
	val = almanac_access_get(a, NULL, key, klen, &vlen, true);
	return almanac_access_value_to_slot(a, snapshot, key, klen, val, vlen, slot);
}

void
almanac_access_lookup_many(AlmanacAccess *a, int n, char *const *keys, const size_t *klens,
						   char **values, size_t *vlens)
{
	AlmanacRowCache *rows;
	bool		shared;
	bool	   *from_shared;
	char	  **shared_values;
	size_t	   *shared_lens;
	const char **missing_keys;
	size_t	   *missing_lens;
	int		   *missing_at;
	char	  **found;
	size_t	   *found_lens;
	int			nmissing = 0;

	if (n <= 0)
		return;
	if (a->cf == NULL)
	{
		memset(values, 0, sizeof(char *) * n);
		memset(vlens, 0, sizeof(size_t) * n);
		return;
	}

	/*
	 * The shared row cache first: the newest values, which need no catch-up
	 * (as in almanac_access_get_stored); the transaction's own writes still
	 * come before them, below.
	 */
	shared = access_shares(a);
	from_shared = palloc0(sizeof(bool) * n);
	shared_values = palloc(sizeof(char *) * n);
	shared_lens = palloc(sizeof(size_t) * n);
	for (int i = 0; i < n && shared; i++)
		from_shared[i] = almanac_shared_cache_lookup(a->store, a->cf_id, keys[i], klens[i],
													 &shared_values[i], &shared_lens[i]);
	for (int i = 0; i < n && a->lazy; i++)
		if (!from_shared[i])
			access_catch_up_for_key(a, keys[i], klens[i]);

	/*
	 * The reader's cache only now: computing the keys may have run SQL that
	 * reopened the reader, and this access goes on with its own instance.
	 * A deferred access whose keys the shared cache all answered has none
	 * (access_buffered opens it if the transaction has writes to look in).
	 */
	rows = a->db ? almanac_reader_rows(a->reader, a->db) : NULL;

	/* the transaction's own writes come first, then the row caches */
	missing_keys = palloc(sizeof(char *) * n);
	missing_lens = palloc(sizeof(size_t) * n);
	missing_at = palloc(sizeof(int) * n);
	for (int i = 0; i < n; i++)
	{
		values[i] = access_buffered(a, NULL, keys[i], klens[i], &vlens[i], false);
		if (values[i] != NULL)
			continue;
		if (from_shared[i])
		{
			values[i] = shared_values[i];
			vlens[i] = shared_lens[i];
			continue;
		}
		if (!almanac_row_cache_lookup(rows, a->cf_id, keys[i], klens[i], &values[i], &vlens[i]))
		{
			missing_keys[nmissing] = keys[i];
			missing_lens[nmissing] = klens[i];
			missing_at[nmissing] = i;
			nmissing++;
		}
	}
	if (nmissing == 0)
		return;
	/* a key the shared cache did not answer opened it above */
	Assert(a->db != NULL);

	/* the rest: one MultiGet of the sorted keys, its answers kept */
	found = palloc(sizeof(char *) * nmissing);
	found_lens = palloc(sizeof(size_t) * nmissing);
	almanac_rocks_multiget(a->db, lookup_options(), a->cf, nmissing,
						   missing_keys, missing_lens, true, found, found_lens);
	for (int i = 0; i < nmissing; i++)
	{
		values[missing_at[i]] = found[i];
		vlens[missing_at[i]] = found_lens[i];
		almanac_row_cache_put(rows, a->cf_id, missing_keys[i], missing_lens[i],
							  found[i], found_lens[i]);
		if (shared)
			access_share(a, missing_keys[i], missing_lens[i], found[i], found_lens[i]);
	}
}

/* ---- iterating a key range ---- */

void
almanac_access_iter_begin(AlmanacAccess *a, const char *lower, size_t lower_len,
						  const char *upper, size_t upper_len, int flags)
{
	rocksdb_iterator_t *base;

	almanac_access_iter_end(a);
	access_catch_up_for_key(a, NULL, 0);
	/* a new iteration starts on its first entry, not past it */
	a->pending_step = false;
	if (a->ropts != NULL)
		rocksdb_readoptions_destroy(a->ropts);
	a->ropts = NULL;
	if (a->lower.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(a->cxt);

		initStringInfo(&a->lower);
		initStringInfo(&a->upper);
		MemoryContextSwitchTo(old);
	}
	resetStringInfo(&a->lower);
	appendBinaryStringInfo(&a->lower, lower, lower_len);
	resetStringInfo(&a->upper);
	appendBinaryStringInfo(&a->upper, upper, upper_len);
	a->direction = (flags & ALMANAC_ITER_BACKWARD) ? -1 : 1;
	if (a->cf == NULL)
		return;					/* the column family was never created: empty */

	/* the options hold pointers to the bounds: a's own copies */
	a->ropts = rocksdb_readoptions_create();
	if (!(flags & ALMANAC_ITER_STORE_ONLY))
		a->batch_copy = almanac_xact_batch_copy(a->store, a->cf_id, a->lower.data, a->lower.len,
												a->upper.data, a->upper.len);
	/* the bounds let RocksDB skip files and stop at the range's end */
	rocksdb_readoptions_set_iterate_lower_bound(a->ropts, a->lower.data, a->lower.len);
	if (a->upper.len > 0)		/* empty: a raw table's whole column family */
		rocksdb_readoptions_set_iterate_upper_bound(a->ropts, a->upper.data, a->upper.len);
	if (flags & ALMANAC_ITER_NO_FILL_CACHE)
		rocksdb_readoptions_set_fill_cache(a->ropts, 0);
	if (ALMANAC_FAULT_ARMED("iterator_error"))
		rocksdb_readoptions_set_read_tier(a->ropts, ALMANAC_READ_TIER_PERSISTED);
	base = rocksdb_create_iterator_cf(a->db, a->ropts, a->cf);
	a->iter = a->batch_copy
		? rocksdb_writebatch_wi_create_iterator_with_base_cf(a->batch_copy, base, a->cf)
		: base;
	if (a->direction > 0)
		rocksdb_iter_seek(a->iter, a->lower.data, a->lower.len);
	else if (a->upper.len > 0)
		rocksdb_iter_seek_for_prev(a->iter, a->upper.data, a->upper.len);
	else
		rocksdb_iter_seek_to_last(a->iter);
}

bool
almanac_access_iter_next(AlmanacAccess *a, Snapshot snapshot, AlmanacKvEntry *e)
{
	if (a->iter == NULL)
		return false;
	for (;;)
	{
		size_t		klen,
					vlen;
		const char *key;
		const char *val;
		bool		below;
		bool		above;
		bool		first = !a->pending_step;

		/* the entry returned last stays valid until this call: step past it now */
		if (a->pending_step)
		{
			if (a->direction > 0)
				rocksdb_iter_next(a->iter);
			else
				rocksdb_iter_prev(a->iter);
			CHECK_FOR_INTERRUPTS();
		}
		a->pending_step = true;
		if (!rocksdb_iter_valid(a->iter))
		{
			char	   *err = NULL;

			/* an error (a corrupted block, a file gone) is no end of range */
			rocksdb_iter_get_error(a->iter, &err);
			almanac_rocks_read_check(err);
			return false;
		}
		key = rocksdb_iter_key(a->iter, &klen);
		val = rocksdb_iter_value(a->iter, &vlen);

		/*
		 * The batch's entries are not bounded by RocksDB; the store's are
		 * (iterate_lower_bound and iterate_upper_bound, which clamp Seek and
		 * SeekForPrev too), so without a batch only the entry a seek landed
		 * on is checked, a cheap guard should the read options ever change
		 * (a key comparison per row was a few percent of a long range's
		 * time); assertion-enabled builds check every entry.
		 */
		Assert(a->batch_copy != NULL ||
			   (almanac_key_cmp(key, klen, a->lower.data, a->lower.len) >= 0 &&
				(a->upper.len == 0 ||
				 almanac_key_cmp(key, klen, a->upper.data, a->upper.len) < 0)));
		if (a->batch_copy != NULL || first)
		{
			below = almanac_key_cmp(key, klen, a->lower.data, a->lower.len) < 0;
			above = a->upper.len > 0 &&
				almanac_key_cmp(key, klen, a->upper.data, a->upper.len) >= 0;
			if (a->direction > 0 && above)
				return false;	/* forward: past the end */
			if (a->direction < 0 && below)
				return false;	/* backward: before the start */
			if (below || above)
				continue;
		}
		if (!almanac_kv_owns_key(a->t, key, klen))
			continue;
		e->key = key;
		e->klen = klen;
		e->value = val;
		e->vlen = vlen;
		e->visible = almanac_value_row(val, vlen, snapshot, &e->tuple, &e->tuple_len, &e->xid);
		return true;
	}
}

bool
almanac_access_iter_next_row(AlmanacAccess *a, Snapshot snapshot, TupleTableSlot *slot,
							 MemoryContext rowcxt)
{
	for (;;)
	{
		AlmanacKvEntry e;
		MemoryContext old;
		bool		more;

		MemoryContextReset(rowcxt);
		old = MemoryContextSwitchTo(rowcxt);
		more = almanac_access_iter_next(a, snapshot, &e);
		if (more && e.visible)
			almanac_row_to_slot(a, slot, e.key, e.klen, e.tuple, e.tuple_len);
		MemoryContextSwitchTo(old);
		if (!more)
		{
			ExecClearTuple(slot);
			return false;
		}
		if (e.visible)
			return true;
	}
}

/* ---- the last row of a range, cached ---- */

/*
 * The cache of almanac_access_last_row: per range, the stored values its
 * last iteration judged, newest first, with the reader instance and epoch
 * they were read at.  Ranges whose bounds are longer than the key allows,
 * or whose iteration judged more than LAST_MAX_VALUES values or bytes
 * before its answer, are not kept; past LAST_MAX_RANGES ranges the cache
 * starts again empty.
 */
#define LAST_MAX_BOUNDS 128		/* bytes of lower and upper together */
#define LAST_MAX_VALUES 8
#define LAST_MAX_BYTES (64 * 1024)
#define LAST_MAX_RANGES 1024

typedef struct LastKey
{
	AlmanacReader *reader;
	uint32		cf_id;
	uint16		lower_len;
	uint16		upper_len;
	char		bounds[LAST_MAX_BOUNDS];	/* lower, then upper; zeros after */
} LastKey;

typedef struct LastEntry
{
	LastKey		key;			/* hash key: first */
	rocksdb_t  *db;				/* the instance the values were read from */
	uint64		epoch;			/* and its epoch then */
	bool		complete;		/* the values reach the range's start */
	int			nvalues;
	char	   *values;			/* nvalues times: uint32 length, value */
} LastEntry;

static HTAB *last_cache = NULL;
static MemoryContext last_cxt = NULL;

/*
 * The entry last_cache_entry returned last (entries are never removed, only
 * the whole table dropped): the latest block of one chain read over and over
 * compares its key instead of hashing all of it (a LastKey is 144 bytes).
 */
static LastEntry *last_found = NULL;

static LastEntry *
last_cache_entry(const LastKey *key, bool create)
{
	bool		found;
	LastEntry  *e;

	if (!create && last_found != NULL && memcmp(&last_found->key, key, sizeof(LastKey)) == 0)
		return last_found;
	if (last_cache == NULL || (create && hash_get_num_entries(last_cache) >= LAST_MAX_RANGES))
	{
		HASHCTL		ctl;

		if (!create)
			return NULL;
		/* nothing points into the memory reset below, even on an ERROR */
		last_found = NULL;
		last_cache = NULL;
		if (last_cxt == NULL)
			last_cxt = AllocSetContextCreate(TopMemoryContext, "almanac last-row cache",
											 ALLOCSET_DEFAULT_SIZES);
		else
			MemoryContextReset(last_cxt);
		ctl.keysize = sizeof(LastKey);
		ctl.entrysize = sizeof(LastEntry);
		ctl.hcxt = last_cxt;
		last_cache = hash_create("almanac last-row cache", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(last_cache, key, create ? HASH_ENTER : HASH_FIND, &found);
	if (e != NULL)
		last_found = e;
	if (create && found && e->values)
		pfree(e->values);
	if (create)
	{
		/* matches no instance until the caller fills it in */
		e->db = NULL;
		e->values = NULL;
		e->nvalues = 0;
	}
	return e;
}

/* the image of a visible row, copied into CurrentMemoryContext */
static bool
last_judge(const char *val, size_t vlen, Snapshot snapshot, const char **tuple, uint32 *tuple_len)
{
	const char *t;
	uint32		tlen;
	FullTransactionId xid;
	char	   *copy;

	if (!almanac_value_row(val, vlen, snapshot, &t, &tlen, &xid))
		return false;
	copy = palloc(tlen);
	memcpy(copy, t, tlen);
	*tuple = copy;
	*tuple_len = tlen;
	return true;
}

bool
almanac_access_last_row(AlmanacAccess *a, const char *lower, size_t lower_len,
						const char *upper, size_t upper_len, Snapshot snapshot,
						const char **tuple, uint32 *tuple_len)
{
	LastKey		key;
	LastEntry  *entry;
	bool		cacheable;
	bool		found = false;
	bool		complete = true;
	uint64		epoch;
	StringInfoData kept;
	int			nkept = 0;
	AlmanacKvEntry e;

	almanac_access_iter_end(a);
	/* before the cache below, which is valid for the epoch of a caught-up reader */
	access_catch_up_for_key(a, NULL, 0);
	if (a->cf == NULL)
		return false;			/* the column family was never created: empty */

	/* a scan that began before a reopen reads a retired instance: uncached */
	cacheable = lower_len + upper_len <= LAST_MAX_BOUNDS &&
		a->db == almanac_reader_db(a->reader);
	epoch = almanac_reader_epoch(a->reader);
	if (cacheable)
	{
		memset(&key, 0, sizeof(key));
		key.reader = a->reader;
		key.cf_id = a->cf_id;
		key.lower_len = lower_len;
		key.upper_len = upper_len;
		memcpy(key.bounds, lower, lower_len);
		memcpy(key.bounds + lower_len, upper, upper_len);
		entry = last_cache_entry(&key, false);
		if (entry != NULL && entry->db == a->db && entry->epoch == epoch)
		{
			const char *p = entry->values;

			for (int i = 0; i < entry->nvalues; i++)
			{
				uint32		vlen;

				memcpy(&vlen, p, sizeof(vlen));
				if (last_judge(p + sizeof(vlen), vlen, snapshot, tuple, tuple_len))
					return true;
				p += sizeof(vlen) + vlen;
			}
			if (entry->complete)
				return false;
			/* none of them visible now: iterate further back */
		}
	}

	initStringInfo(&kept);
	almanac_access_iter_begin(a, lower, lower_len, upper, upper_len,
							  ALMANAC_ITER_BACKWARD | ALMANAC_ITER_STORE_ONLY);
	for (;;)
	{
		if (!almanac_access_iter_next(a, snapshot, &e))
			break;
		if (cacheable && nkept < LAST_MAX_VALUES &&
			kept.len + sizeof(uint32) + e.vlen <= LAST_MAX_BYTES)
		{
			uint32		vlen = (uint32) e.vlen;

			appendBinaryStringInfo(&kept, (const char *) &vlen, sizeof(vlen));
			appendBinaryStringInfo(&kept, e.value, e.vlen);
			nkept++;
		}
		else
			cacheable = false;
		if (e.visible)
		{
			char	   *copy = palloc(e.tuple_len);

			memcpy(copy, e.tuple, e.tuple_len);
			*tuple = copy;
			*tuple_len = e.tuple_len;
			found = true;
			complete = false;
			break;
		}
	}
	almanac_access_iter_end(a);

	if (cacheable)
	{
		entry = last_cache_entry(&key, true);
		entry->db = a->db;
		entry->epoch = epoch;
		entry->complete = complete;
		entry->values = MemoryContextAlloc(last_cxt, Max(kept.len, 1));
		memcpy(entry->values, kept.data, kept.len);
		entry->nvalues = nkept;
	}
	pfree(kept.data);
	return found;
}

/* ---- key locks ---- */

/*
 * The stored value of key as it is now: the reader caught up first if it may
 * lack a write of key, so that it holds every write of key the owner applied
 * (a writer's batch is applied, and its keys logged, before its commit
 * record, so before its locks go).  Read from the reader's
 * current instance, which is the access's unless a catch-up reopened it.
 *
 * Once the transaction has sent writes mid-transaction, from the lock
 * reader instead: catching the reader up in place would show the rows a
 * statement sent to the accesses it began before (the lookups of an UPDATE
 * whose key lock waited for another's commit read rows the UPDATE itself
 * had written: test/isolation/specs/lazy_review.spec).
 */
static char *
latest_stored_value(AlmanacAccess *a, const char *key, size_t klen, size_t *vlen)
{
	AlmanacReader *reader = a->reader;
	rocksdb_t  *db;
	rocksdb_column_family_handle_t *cf;

	if (almanac_xact_sent_mid_xact(a->store))
		reader = almanac_lock_reader(a->store);
	else if (access_shares(a))
	{
		char	   *val;

		/* the newest value, as after a catch-up (kv/sharedcache.h) */
		if (almanac_shared_cache_lookup(a->store, a->cf_id, key, klen, &val, vlen))
			return val;
	}
	/* a->db below is the access's instance, compared with the reader's */
	access_open(a);
	almanac_reader_catch_up_for_key(reader, key, klen);
	db = almanac_reader_db(reader);
	if (db == a->db)
		return almanac_access_get_stored(a, key, klen, vlen, false);
	cf = almanac_reader_cf_by_id(reader, a->cf_id);
	if (cf == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the column family of foreign table \"%s\" was dropped",
						RelationGetRelationName(a->t->rel))));
	return almanac_rocks_get(db, lookup_options(), cf, key, klen, vlen);
}

/*
 * The body of almanac_access_lock_key; buffered is the transaction's
 * buffered write of key (NULL: none), which the caller looked up.
 */
static bool
lock_key(AlmanacAccess *a, const char *key, size_t klen, LOCKMODE mode,
		 LockWaitPolicy wait, Snapshot snapshot, const char *buffered, size_t buffered_len,
		 AlmanacKeyNow *now)
{
	char	   *val;
	size_t		vlen;
	const char *tuple;
	uint32		tlen;
	FullTransactionId seen_xid;
	bool		seen;

	memset(now, 0, sizeof(AlmanacKeyNow));
	if (!almanac_key_lock(a->store, a->cf_id, key, klen, mode, wait != LockWaitBlock))
	{
		if (wait == LockWaitSkip)
			return false;
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("could not obtain lock on row in foreign table \"%s\"",
						RelationGetRelationName(a->t->rel))));
	}
	if (buffered != NULL)
	{
		/* the transaction's own write: its row, whatever others did before */
		now->live = almanac_value_row(buffered, buffered_len, snapshot,
									  &now->tuple, &now->tuple_len, &now->xid);
		return true;
	}
	val = a->cf ? latest_stored_value(a, key, klen, &vlen) : NULL;
	if (val == NULL)
		return true;
	seen = almanac_value_row(val, vlen, snapshot, &tuple, &tlen, &seen_xid);
	now->live = almanac_value_row(val, vlen, GetLatestSnapshot(),
								  &now->tuple, &now->tuple_len, &now->xid);
	now->changed = seen != now->live || !FullTransactionIdEquals(seen_xid, now->xid);
	if (now->changed && seen)
	{
		now->seen_live = true;
		now->seen_tuple = tuple;
		now->seen_tuple_len = tlen;
	}
	return true;
}

bool
almanac_access_lock_key(AlmanacAccess *a, const char *key, size_t klen, LOCKMODE mode,
						LockWaitPolicy wait, Snapshot snapshot, AlmanacKeyNow *now)
{
	size_t		blen = 0;
	char	   *buffered = access_buffered(a, NULL, key, klen, &blen, true);

	return lock_key(a, key, klen, mode, wait, snapshot, buffered, blen, now);
}

void
almanac_concurrent_update_error(AlmanacKvTable *t)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not serialize access due to concurrent update of foreign table \"%s\"",
					RelationGetRelationName(t->rel))));
}

/* ---- writing ---- */

static void
writer_cleanup(void *arg)
{
	AlmanacKvWriter *w = arg;

	if (w->stmt)
		rocksdb_writebatch_wi_destroy(w->stmt);
	w->stmt = NULL;
	if (w->nested_open)
		almanac_nested_writer_close(&w->stmt);
	w->nested_open = false;
}

void
almanac_writer_begin(AlmanacKvWriter *w, AlmanacAccess *a, CommandId cid, const void *query)
{
	memset(w, 0, sizeof(AlmanacKvWriter));
	w->cleanup.func = writer_cleanup;
	w->cleanup.arg = w;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &w->cleanup);
	/* a writer's handle goes into its batches (writers are begun eagerly) */
	access_open(a);
	w->a = a;
	initStringInfo(&w->looked_up);
	w->stmt = almanac_stmt_batch_create();
	w->cid = cid;
	w->query = query;
	almanac_nested_writer_open(w->cid, a->store, a->cf_id, &w->stmt);
	w->nested_open = true;
}

/* the buffered write of key, remembered for almanac_writer_put */
static void
look_up_buffered(AlmanacKvWriter *w, const char *key, size_t klen)
{
	w->buffered = almanac_xact_buffered(w->a->store, w->stmt, w->a->cf, w->a->cf_id, key, klen,
										&w->buffered_len, &w->buffered_in_stmt);
	resetStringInfo(&w->looked_up);
	appendBinaryStringInfo(&w->looked_up, key, klen);
	w->have_looked_up = true;
}

bool
almanac_writer_key_visible(AlmanacKvWriter *w, Snapshot snapshot, const char *key, size_t klen,
						   FullTransactionId *xid)
{
	size_t		vlen;
	char	   *val;
	const char *tuple;
	uint32		tlen;

	/* remembered for almanac_writer_put, which combines the new write with it */
	look_up_buffered(w, key, klen);
	val = w->buffered;
	vlen = w->buffered_len;
	if (val == NULL)
		val = almanac_access_get_stored(w->a, key, klen, &vlen, false);

	*xid = InvalidFullTransactionId;
	if (val == NULL)
		return false;
	return almanac_value_row(val, vlen, snapshot, &tuple, &tlen, xid);
}

void
almanac_writer_lock_key(AlmanacKvWriter *w, const char *key, size_t klen, LOCKMODE mode,
						Snapshot snapshot, AlmanacKeyNow *now)
{
	/* remembered for almanac_writer_put, which combines the new write with it */
	look_up_buffered(w, key, klen);
	(void) lock_key(w->a, key, klen, mode, LockWaitBlock, snapshot,
					w->buffered, w->buffered_len, now);
}

void
almanac_writer_put(AlmanacKvWriter *w, const char *key, size_t klen, AlmanacIntentKind kind,
				   FullTransactionId expected, const char *tuple, uint32 tuple_len)
{
	AlmanacIntent intent;

	intent.cf_id = w->a->cf_id;
	intent.kind = kind;
	/* stamps the (sub)transaction and makes sure it gets an xid */
	intent.xid = GetCurrentFullTransactionId();
	intent.top = GetTopTransactionId();
	intent.expected = expected;
	intent.tuple = tuple;
	intent.tuple_len = tuple_len;
	if (!w->have_looked_up || w->looked_up.len != klen ||
		memcmp(w->looked_up.data, key, klen) != 0)
		look_up_buffered(w, key, klen);
	almanac_xact_put(w->a->store, w->stmt, w->a->cf, key, klen, &intent,
					 w->buffered, w->buffered_len, w->buffered_in_stmt);
	almanac_nested_note_write(w->a->store, w->a->cf_id, key, klen, w->cid);
	w->have_looked_up = false;
}

bool
almanac_writer_insert(AlmanacKvWriter *w, const char *key, size_t klen,
					  const char *image, uint32 image_len, bool skip_existing)
{
	AlmanacKeyNow now;
	bool		upsert = w->a->t->opts->upsert;

	/*
	 * As a unique index does: wait for the key's other writer, then judge by
	 * what is committed now, whatever the isolation level (a row deleted
	 * since the snapshot is no duplicate; one inserted since is).
	 */
	almanac_writer_lock_key(w, key, klen, AccessExclusiveLock, GetActiveSnapshot(), &now);
	if (now.live && skip_existing && !upsert)
	{
		w->have_looked_up = false;
		return false;
	}
	if (now.live && !upsert)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("duplicate key value violates the key of foreign table \"%s\"",
						RelationGetRelationName(w->a->t->rel)),
				 errhint("Declare the table with OPTIONS (upsert 'true') to let INSERT overwrite.")));
	almanac_writer_put(w, key, klen, upsert ? ALMANAC_INTENT_UPSERT : ALMANAC_INTENT_INSERT,
					   now.xid, image, image_len);
	return true;
}

bool
almanac_writer_written_later(AlmanacKvWriter *w, const char *key, size_t klen)
{
	return almanac_nested_written_after(w->a->store, w->a->cf_id, key, klen, w->cid);
}

bool
almanac_writer_wrote(AlmanacKvWriter *w, const char *key, size_t klen)
{
	size_t		vlen;

	return w->stmt != NULL &&
		almanac_batch_lookup(w->stmt, w->a->cf, key, klen, &vlen) != NULL;
}

void
almanac_writer_row_done(AlmanacKvWriter *w)
{
	if (almanac_stmt_batch_ship_early(w->a->store, &w->stmt, w->a->cf, w->a->cf_id, w->cid,
									  w->query))
		w->shipped_early = true;
}

void
almanac_writer_end(AlmanacKvWriter *w)
{
	if (w->stmt == NULL)
		return;
	almanac_stmt_batch_merge(w->a->store, &w->stmt, w->a->cf, w->a->cf_id, w->cid,
							 w->query, w->shipped_early);
	writer_cleanup(w);
}
