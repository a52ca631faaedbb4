/*-------------------------------------------------------------------------
 *
 * fdw.c
 *	  The almanac_rocksdb foreign data wrapper: its handler, and the row
 *	  access that planning, scans, writes and ANALYZE share.  See fdw.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "almanac.h"
#include "fdw/fdw.h"
#include "kv/rowcache.h"
#include "store/store.h"
#include "codec/valuecodec.h"
#include "codec/visibility.h"
#include "kv/xact.h"

/*
 * Table layouts are cached per backend, by relation OID: every query plans
 * and opens its foreign tables, and reading the options from the catalogs
 * each time costs as much as a point lookup.  Any change to a foreign
 * table, a foreign server or a relation empties the cache.
 */
typedef struct TableCacheEntry
{
	Oid			relid;
	AlmanacKvTable table;			/* rel is not set */
	MemoryContext cxt;			/* holds what table points to */
} TableCacheEntry;

static HTAB *table_cache = NULL;
static MemoryContext table_cache_cxt = NULL;
static uint64 table_cache_flushes = 0;

static void
table_cache_flush(void)
{
	table_cache_flushes++;
	if (table_cache == NULL)
		return;
	hash_destroy(table_cache);
	table_cache = NULL;

	/*
	 * The entries' contexts are children of table_cache_cxt.  Scans, writes
	 * and the planner of the running transaction may still use layouts they
	 * got from the cache (an invalidation arrives whenever a lock is taken),
	 * so inside a transaction the old layouts are freed with it.
	 */
	if (IsTransactionState())
	{
		MemoryContextSetParent(table_cache_cxt, TopTransactionContext);
		table_cache_cxt = AllocSetContextCreate(CacheMemoryContext, "almanac table layouts",
												ALLOCSET_SMALL_SIZES);
	}
	else
		MemoryContextReset(table_cache_cxt);
}

static void
table_cache_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	table_cache_flush();
}

static void
table_cache_relcache_callback(Datum arg, Oid relid)
{
	table_cache_flush();
}

/* the attribute number of a raw table's column, which must be bytea */
static AttrNumber
raw_column(Relation rel, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0 &&
			att->atttypid == BYTEAOID)
			return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_COLUMN_NAME),
			 errmsg("raw foreign table \"%s\" has no bytea column \"%s\"",
					RelationGetRelationName(rel), name),
			 errhint("A raw table has the columns (key bytea, value bytea), as IMPORT FOREIGN SCHEMA creates them.")));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/*
 * A raw table's layout: one key column, "key", whose bytea value is the
 * whole RocksDB key; "value" is the bytes of the version the snapshot sees.
 */
static void
raw_layout_read(Relation rel, AlmanacKvTable *t)
{
	static const Oid bytea_type[1] = {BYTEAOID};
	static const char *const key_name[1] = {"key"};

	t->keyattrs = palloc(sizeof(AttrNumber));
	t->keyattrs[0] = raw_column(rel, "key");
	t->raw_value_attno = raw_column(rel, "value");
	t->is_key = palloc0(sizeof(bool) * RelationGetDescr(rel)->natts);
	t->layout.prefix = NULL;
	t->layout.nkeys = 1;
	t->layout.typids = bytea_type;
	t->layout.names = key_name;
	t->layout.attribute = NULL;
}

/* read the layout from the catalogs, allocating in CurrentMemoryContext */
static void
table_layout_read(Relation rel, AlmanacKvTable *t)
{
	TupleDesc	desc = RelationGetDescr(rel);
	ForeignTable *ft = GetForeignTable(RelationGetRelid(rel));
	int			n;
	Oid		   *typids;
	const char **names;

	memset(t, 0, sizeof(AlmanacKvTable));
	t->opts = almanac_table_options(RelationGetRelid(rel));
	t->server = almanac_server_options(ft->serverid);
	if (t->opts->raw)
	{
		raw_layout_read(rel, t);
		return;
	}
	t->keyattrs = almanac_key_attnums(rel, t->opts);
	n = list_length(t->opts->key_columns);
	typids = palloc(sizeof(Oid) * n);
	names = palloc(sizeof(char *) * n);
	t->is_key = palloc0(sizeof(bool) * desc->natts);
	t->key_pad = palloc(sizeof(int32) * n);
	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, t->keyattrs[i] - 1);

		typids[i] = att->atttypid;
		names[i] = pstrdup(NameStr(att->attname));

		/* char(n), or a domain over char(n): its n (the domain's typmod) */
		t->key_pad[i] = att->atttypmod;
		if (getBaseTypeAndTypmod(att->atttypid, &t->key_pad[i]) != BPCHAROID ||
			t->key_pad[i] <= VARHDRSZ)
			t->key_pad[i] = -1;
		t->is_key[t->keyattrs[i] - 1] = true;
	}
	t->layout.prefix = t->opts->key_prefix;
	t->layout.nkeys = n;
	t->layout.typids = typids;
	t->layout.names = names;
	t->layout.attribute = t->opts->key_attribute;
	t->values = almanac_value_layout(desc, RelationGetRelationName(rel));
}

/*
 * The layout of a foreign table: options, key columns, store.  The result
 * is palloc'd; what it points to is shared with the cache and read-only.
 */
AlmanacKvTable *
almanac_table_open(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	AlmanacKvTable *t = palloc(sizeof(AlmanacKvTable));
	TableCacheEntry *entry;
	bool		found;
	uint64		flushes;
	MemoryContext cxt;
	MemoryContext old;

	if (table_cache_cxt == NULL)
	{
		table_cache_cxt = AllocSetContextCreate(CacheMemoryContext, "almanac table layouts",
												ALLOCSET_SMALL_SIZES);
		CacheRegisterSyscacheCallback(FOREIGNTABLEREL, table_cache_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, table_cache_syscache_callback, (Datum) 0);
		CacheRegisterRelcacheCallback(table_cache_relcache_callback, (Datum) 0);
	}
	if (table_cache != NULL)
	{
		entry = hash_search(table_cache, &relid, HASH_FIND, NULL);
		if (entry != NULL)
		{
			*t = entry->table;
			t->rel = rel;
			return t;
		}
	}

	/*
	 * Read it into a context of its own, under the caller's until it is
	 * complete: reading the catalogs may process invalidations, which flush
	 * the cache; a layout read across a flush is used once, not cached.
	 */
	flushes = table_cache_flushes;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "almanac table layout",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	table_layout_read(rel, t);
	MemoryContextSwitchTo(old);
	t->rel = rel;
	if (flushes != table_cache_flushes)
		return t;

	if (table_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TableCacheEntry);
		ctl.hcxt = table_cache_cxt;
		table_cache = hash_create("almanac table layouts", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(table_cache, &relid, HASH_ENTER, &found);
	MemoryContextSetParent(cxt, table_cache_cxt);
	entry->table = *t;
	entry->table.rel = NULL;
	entry->cxt = cxt;
	return t;
}

void
almanac_access_close_iterator(AlmanacAccess *a)
{
	if (a->iter == NULL)
		return;
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
	almanac_access_close_iterator(a);
	if (a->ropts)
		rocksdb_readoptions_destroy(a->ropts);
	a->ropts = NULL;
}

static void
access_release_callback(void *arg)
{
	almanac_access_release((AlmanacAccess *) arg);
}

void
almanac_access_init(AlmanacAccess *a, Relation rel, bool for_write)
{
	/* first, so that an ERROR below finds it registered */
	a->ropts = NULL;
	a->release.func = access_release_callback;
	a->release.arg = a;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &a->release);

	a->t = almanac_table_open(rel);
	a->store = almanac_store_attach(a->t->server);
	a->reader = almanac_reader(a->store);
	/* after the statement's snapshot: see almanac_reader_catch_up */
	almanac_reader_catch_up(a->reader);
	a->cf = almanac_reader_cf(a->reader, a->t->opts->column_family, for_write, &a->cf_id);
	a->db = almanac_reader_db(a->reader);
	a->keyvalues = palloc(sizeof(Datum) * Max(a->t->layout.nkeys, 1));
}

rocksdb_readoptions_t *
almanac_access_iter_options(AlmanacAccess *a)
{
	if (a->ropts == NULL)
		a->ropts = rocksdb_readoptions_create();
	return a->ropts;
}

const rocksdb_readoptions_t *
almanac_lookup_options(void)
{
	static rocksdb_readoptions_t *ropts = NULL;

	if (ropts == NULL)
		ropts = rocksdb_readoptions_create();
	return ropts;
}

/*
 * Turn a stored value or a buffered intent into the row the snapshot sees.
 * Returns false when it sees none (nothing visible, or a deletion).
 * *xid receives the version's writer (invalid for a buffered intent).
 */
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
		AlmanacVersion *versions;
		int			n = almanac_versions_parse(val, vlen, &versions);
		int			i = almanac_versions_visible(versions, n, snapshot);

		if (i < 0)
			return false;
		*xid = versions[i].xid;
		if (versions[i].flags & ALMANAC_VERSION_DELETED)
			return false;
		*tuple = versions[i].tuple;
		*tuple_len = versions[i].tuple_len;
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
		if (t->key_pad[i] > VARHDRSZ)
			v = DirectFunctionCall3(bpchar, v, Int32GetDatum(t->key_pad[i]), BoolGetDatum(false));
		slot->tts_values[attno - 1] = v;
		slot->tts_isnull[attno - 1] = false;
	}
	ExecStoreVirtualTuple(slot);
}

void
almanac_table_key(AlmanacKvTable *t, StringInfo buf, int n, const Datum *values, bool prefix_only)
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

bool
almanac_table_owns_key(AlmanacKvTable *t, const char *key, size_t klen)
{
	const char *attr = t->layout.attribute;
	size_t		alen;

	if (attr == NULL)
		return true;
	alen = strlen(attr);
	return klen > alen + 1 &&
		key[klen - alen - 1] == ALMANAC_KEY_SEP &&
		memcmp(key + klen - alen, attr, alen) == 0;
}

/*
 * Get a key from the store (the secondary), ignoring buffered writes: from
 * the reader's row cache if a Get of this instance found it before.  'keep'
 * caches what a Get finds: reads do, writes do not (the key they look up is
 * about to change).
 */
char *
almanac_store_get(AlmanacAccess *a, const char *key, size_t klen, size_t *vlen,
				  bool keep)
{
	AlmanacRowCache *rows = almanac_reader_rows(a->reader, a->db);
	char	   *val;

	if (almanac_row_cache_lookup(rows, a->cf_id, key, klen, &val, vlen))
		return val;
	val = almanac_reader_get(a->db, almanac_lookup_options(), a->cf, key, klen, vlen);
	if (keep)
		almanac_row_cache_put(rows, a->cf_id, key, klen, val, *vlen);
	return val;
}

/* Get a key: the transaction's buffered write, else the store */
char *
almanac_get_value(AlmanacAccess *a, rocksdb_writebatch_wi_t *stmt, const char *key,
				  size_t klen, size_t *vlen)
{
	char	   *val = almanac_xact_buffered(a->store, stmt, a->cf, key, klen, vlen);

	return val ? val : almanac_store_get(a, key, klen, vlen, true);
}

/*
 * SELECT ... FOR UPDATE / FOR SHARE (and FOR NO KEY UPDATE, FOR KEY SHARE)
 * of a foreign table: refused, as no key lock exists yet to take (the
 * write path's key locks will bring them).  Without this the core copies
 * the rows and locks nothing, and read-then-write code loses updates.  A
 * table read without a lock by a statement that locks others (FOR UPDATE OF
 * another table, UPDATE ... FROM) gets the core's copy of its row, which is
 * right: nothing is promised about it.
 */
static RowMarkType
almanacGetForeignRowMarkType(RangeTblEntry *rte, LockClauseStrength strength)
{
	if (strength != LCS_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot be applied to almanac foreign table \"%s\"",
						strength == LCS_FORUPDATE ? "FOR UPDATE" :
						strength == LCS_FORNOKEYUPDATE ? "FOR NO KEY UPDATE" :
						strength == LCS_FORSHARE ? "FOR SHARE" : "FOR KEY SHARE",
						get_rel_name(rte->relid)),
				 errdetail("almanac does not lock the keys of foreign tables yet; the rows would be read without a lock."),
				 errhint("Update the rows directly (UPDATE ... SET v = v + 1 checks that no other transaction wrote them since, and fails with 40001 if one did), or lock a row of a PostgreSQL table; key locks come with the write path's issue.")));
	return ROW_MARK_COPY;
}

PG_FUNCTION_INFO_V1(almanac_rocksdb_fdw_handler_sql);
Datum
almanac_rocksdb_fdw_handler_sql(PG_FUNCTION_ARGS)
{
	FdwRoutine *r = makeNode(FdwRoutine);

	r->GetForeignRelSize = almanacGetForeignRelSize;
	r->GetForeignPaths = almanacGetForeignPaths;
	r->GetForeignPlan = almanacGetForeignPlan;
	r->BeginForeignScan = almanacBeginForeignScan;
	r->IterateForeignScan = almanacIterateForeignScan;
	r->ReScanForeignScan = almanacReScanForeignScan;
	r->EndForeignScan = almanacEndForeignScan;
	r->ExplainForeignScan = almanacExplainForeignScan;
	r->AnalyzeForeignTable = almanacAnalyzeForeignTable;
	r->ImportForeignSchema = almanacImportForeignSchema;
	r->GetForeignRowMarkType = almanacGetForeignRowMarkType;
	almanac_fdw_modify_routine(r);
	PG_RETURN_POINTER(r);
}
