/*-------------------------------------------------------------------------
 *
 * fdw.c
 *	  The almanac_rocksdb foreign data wrapper: its handler, and the
 *	  layouts of its tables (kv/access.h reads and writes their rows).
 *	  See fdw.h.
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
	t->layout.descending = NULL;
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
	t->layout.descending = NULL;	/* foreign tables' keys ascend */
	t->values = almanac_value_layout(desc, RelationGetRelationName(rel));
}

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

/*
 * SELECT ... FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE lock late, as
 * the heap does: the scan reads without locking and gives each row a row id
 * (its ctid), and LockRows, as it returns a row, locks it through
 * almanacRefetchForeignRow (scan.c), which skips a row changed since by a
 * later command of the transaction and follows one another transaction
 * changed (EvalPlanQual re-checks it).  The mark is the one the heap takes
 * for the strength: LockRows counts ROW_MARK_REFERENCE as no lock (it would
 * call RefetchForeignRow only to fetch a row again for an EvalPlanQual
 * re-check, without locking it).
 *
 * A table the query does not lock (LCS_NONE: another table of it is locked
 * or updated) keeps ROW_MARK_COPY.  A re-check of the other table's newer
 * row then needs this table's row as the scan read it, which the copy is;
 * a reference would read it again, and every plain scan of such a query
 * would keep the key of each row it reads for that.
 */
static RowMarkType
almanacGetForeignRowMarkType(RangeTblEntry *rte, LockClauseStrength strength)
{
	switch (strength)
	{
		case LCS_NONE:
			break;
		case LCS_FORKEYSHARE:
			return ROW_MARK_KEYSHARE;
		case LCS_FORSHARE:
			return ROW_MARK_SHARE;
		case LCS_FORNOKEYUPDATE:
			return ROW_MARK_NOKEYEXCLUSIVE;
		case LCS_FORUPDATE:
			return ROW_MARK_EXCLUSIVE;
	}
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
	r->GetForeignRowMarkType = almanacGetForeignRowMarkType;
	r->BeginForeignScan = almanacBeginForeignScan;
	r->IterateForeignScan = almanacIterateForeignScan;
	r->ReScanForeignScan = almanacReScanForeignScan;
	r->EndForeignScan = almanacEndForeignScan;
	r->ExplainForeignScan = almanacExplainForeignScan;
	r->AnalyzeForeignTable = almanacAnalyzeForeignTable;
	r->ImportForeignSchema = almanacImportForeignSchema;
	r->RefetchForeignRow = almanacRefetchForeignRow;
	almanac_fdw_modify_routine(r);
	PG_RETURN_POINTER(r);
}
