/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  Administration and observability of RocksDB stores, from SQL: list,
 *	  flush, compact and drop column families, and RocksDB's properties
 *	  per column family (src/sql/41_admin.sql; docs/operations.md,
 *	  "Administration and observability").
 *
 * Each function names a foreign server of the almanac_rocksdb wrapper; its
 * store is attached as any foreign table's is (starting the owner if none
 * runs).  Everything that needs the read-write instance (memtables,
 * compactions, dropping) is asked of the owner; only the list of column
 * families is read in process, from the store's MANIFEST, which the owner
 * writes before it answers a create or drop.
 *
 * Privileges: reading needs USAGE on the server; flush and compact need
 * ownership of the server or membership in pg_checkpoint (they are
 * checkpoint-like I/O, and lose nothing); drop needs ownership of every
 * server of the current database that uses the same store, and is refused
 * while a foreign table of the current database uses the column family
 * (other databases' catalogs cannot be read); a reserved column family
 * ("default", "mirror.*": fdw/option.h) is never dropped, by anyone.
 * Superusers pass every privilege check.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include <rocksdb/c.h>

#include "fdw/option.h"
#include "kv/rocks.h"
#include "store/store.h"

/* a server of the wrapper, resolved to its store */
typedef struct AdminStore
{
	ForeignServer *server;
	AlmanacServerOptions *opts;
	int			store;			/* -1 until attached */
} AdminStore;

/* a column family of a store, with what the owner says of it */
typedef struct AdminCf
{
	char	   *name;
	bool		known;			/* id and props were asked for */
	uint32		id;
	uint64		props[ALMANAC_NPROPS];
} AdminCf;

/* a foreign table of the current database, and the column family it uses */
typedef struct AdminTable
{
	Oid			relid;
	char	   *column_family;
} AdminTable;

/* the server called 'name'; ERROR if it does not exist or is not ours */
static AdminStore *
admin_store(Name name)
{
	AdminStore *s = palloc0(sizeof(AdminStore));

	s->server = GetForeignServerByName(NameStr(*name), false);
	if (!almanac_wrapper_is_ours(s->server->fdwid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("foreign server \"%s\" is not a server of the almanac_rocksdb wrapper",
						s->server->servername)));
	s->opts = almanac_server_options(s->server->serverid);
	s->store = -1;
	return s;
}

static void
admin_attach(AdminStore *s)
{
	if (s->store < 0)
		s->store = almanac_store_attach(s->opts);
}

static void
require_usage(AdminStore *s)
{
	AclResult	aclresult = pg_foreign_server_aclcheck(s->server->serverid,
													   GetUserId(), ACL_USAGE);

	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, s->server->servername);
}

/*
 * The column family argument.  The request slot carries NAMEDATALEN bytes
 * of it, so a longer name could only ever reach another column family.
 */
static char *
cf_name_arg(text *arg)
{
	char	   *name = text_to_cstring(arg);

	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("almanac column family name \"%s\" is too long", name),
				 errdetail("Column family names are at most %d bytes.", NAMEDATALEN - 1)));
	return name;
}

static int
cf_name_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst(a), lfirst(b));
}

/*
 * The column families of the store, sorted by name, with their ids and
 * properties.  RocksDB's "default" column family is left out: every store has
 * it, almanac never creates or writes it unless a foreign table names it, and
 * it cannot be dropped.
 */
static List *
store_column_families(AdminStore *s)
{
	rocksdb_options_t *options = rocksdb_options_create();
	char	   *err;
	List	   *names;
	List	   *sorted = NIL;
	List	   *cfs = NIL;
	ListCell   *lc;

	admin_attach(s);
	names = almanac_rocks_column_families(options, s->opts->path, &err);
	rocksdb_options_destroy(options);
	almanac_rocks_error(ERROR, ERRCODE_IO_ERROR, err,
						"could not read the column families of almanac store \"%s\"", s->opts->path);
	foreach(lc, names)
		if (strcmp(lfirst(lc), "default") != 0)
			sorted = lappend(sorted, lfirst(lc));
	list_sort(sorted, cf_name_cmp);

	foreach(lc, sorted)
	{
		AdminCf    *cf = palloc0(sizeof(AdminCf));

		cf->name = lfirst(lc);

		/*
		 * A name of NAMEDATALEN bytes or more (never almanac's, which checks
		 * column_family, but RocksDB's tools may add one) cannot be asked
		 * for: the request carries NAMEDATALEN bytes of it, which could name
		 * another column family.  Listed with its id and properties unknown.
		 */
		if (strlen(cf->name) >= NAMEDATALEN)
		{
			for (int p = 0; p < ALMANAC_NPROPS; p++)
				cf->props[p] = ALMANAC_PROP_UNKNOWN;
			cfs = lappend(cfs, cf);
			continue;
		}
		cf->known = true;
		cf->id = almanac_store_properties(s->store, cf->name, cf->props);
		/* dropped since the listing */
		if (cf->id == ALMANAC_CF_MISSING)
			continue;
		cfs = lappend(cfs, cf);
	}
	return cfs;
}

static int
table_oid_cmp(const ListCell *a, const ListCell *b)
{
	Oid			x = ((AdminTable *) lfirst(a))->relid;
	Oid			y = ((AdminTable *) lfirst(b))->relid;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * The foreign tables of the current database whose server uses the store at
 * 'path' (any server of the wrapper with that path, not only the one named),
 * in creation (oid) order, with the column family each one uses.
 */
static List *
store_tables(const char *path)
{
	Relation	rel = table_open(ForeignTableRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	List	   *same_store = NIL;	/* servers already checked, by answer */
	List	   *other_store = NIL;
	List	   *tables = NIL;
	HeapTuple	tup;

	while ((tup = systable_getnext(scan)) != NULL)
	{
		Form_pg_foreign_table ft = (Form_pg_foreign_table) GETSTRUCT(tup);
		AdminTable *t;
		ListCell   *lc;
		char	   *key_prefix = NULL;

		if (list_member_oid(other_store, ft->ftserver))
			continue;
		if (!list_member_oid(same_store, ft->ftserver))
		{
			if (almanac_server_uses_store(ft->ftserver, path))
				same_store = lappend_oid(same_store, ft->ftserver);
			else
			{
				other_store = lappend_oid(other_store, ft->ftserver);
				continue;
			}
		}

		/*
		 * The column family as almanac_table_options() resolves it
		 * (column_family, else key_prefix), without its error for a table
		 * that lacks options: such a table uses no column family yet.
		 */
		t = palloc0(sizeof(AdminTable));
		t->relid = ft->ftrelid;
		foreach(lc, GetForeignTable(ft->ftrelid)->options)
		{
			DefElem    *def = lfirst(lc);

			if (strcmp(def->defname, "column_family") == 0)
				t->column_family = defGetString(def);
			else if (strcmp(def->defname, "key_prefix") == 0)
				key_prefix = defGetString(def);
		}
		if (t->column_family == NULL)
			t->column_family = key_prefix;
		if (t->column_family != NULL)
			tables = lappend(tables, t);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	list_sort(tables, table_oid_cmp);
	return tables;
}

/* the oids of the tables of store_tables() that use column family 'name' */
static List *
tables_using(List *tables, const char *name)
{
	List	   *relids = NIL;
	ListCell   *lc;

	foreach(lc, tables)
	{
		AdminTable *t = lfirst(lc);

		if (strcmp(t->column_family, name) == 0)
			relids = lappend_oid(relids, t->relid);
	}
	return relids;
}

static ArrayType *
regclass_array(List *relids)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(relids), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, relids)
		elems[n++] = ObjectIdGetDatum(lfirst_oid(lc));
	return construct_array(elems, n, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT);
}

/* a property as bigint, NULL when RocksDB could not tell */
static void
put_property(Datum *value, bool *isnull, uint64 v)
{
	*isnull = (v == ALMANAC_PROP_UNKNOWN);
	*value = Int64GetDatum((int64) v);
}

/*
 * almanac.column_families(server name) RETURNS TABLE (column_family text,
 * id integer, foreign_tables regclass[])
 */
PG_FUNCTION_INFO_V1(almanac_column_families_sql);
Datum
almanac_column_families_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AdminStore *s = admin_store(PG_GETARG_NAME(0));
	List	   *cfs;
	List	   *tables;
	ListCell   *lc;

	require_usage(s);
	InitMaterializedSRF(fcinfo, 0);
	cfs = store_column_families(s);
	tables = store_tables(s->opts->path);
	foreach(lc, cfs)
	{
		AdminCf    *cf = lfirst(lc);
		Datum		values[3];
		bool		nulls[3] = {0};

		values[0] = CStringGetTextDatum(cf->name);
		values[1] = Int32GetDatum((int32) cf->id);
		nulls[1] = !cf->known;
		values[2] = PointerGetDatum(regclass_array(tables_using(tables, cf->name)));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * almanac.store_properties(server name) RETURNS TABLE (column_family text,
 * id integer, estimated_keys bigint, live_sst_bytes bigint, memtable_bytes
 * bigint, pending_compaction_bytes bigint, block_cache_bytes bigint,
 * running_compactions bigint, running_flushes bigint, sst_files_per_level
 * bigint[], memtable_entries bigint)
 */
PG_FUNCTION_INFO_V1(almanac_store_properties_sql);
Datum
almanac_store_properties_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AdminStore *s = admin_store(PG_GETARG_NAME(0));
	static const AlmanacProperty columns[] = {
		ALMANAC_PROP_ESTIMATED_KEYS,
		ALMANAC_PROP_LIVE_SST_BYTES,
		ALMANAC_PROP_MEMTABLE_BYTES,
		ALMANAC_PROP_PENDING_COMPACTION_BYTES,
		ALMANAC_PROP_BLOCK_CACHE_BYTES,
		ALMANAC_PROP_RUNNING_COMPACTIONS,
		ALMANAC_PROP_RUNNING_FLUSHES,
	};
	List	   *cfs;
	ListCell   *lc;

	require_usage(s);
	InitMaterializedSRF(fcinfo, 0);
	cfs = store_column_families(s);
	foreach(lc, cfs)
	{
		AdminCf    *cf = lfirst(lc);
		Datum		values[4 + lengthof(columns)];
		bool		nulls[4 + lengthof(columns)] = {0};
		Datum		levels[ALMANAC_PROP_LEVELS];
		bool		level_nulls[ALMANAC_PROP_LEVELS];
		int			dims[1] = {ALMANAC_PROP_LEVELS};
		int			lbs[1] = {0};
		int			i = 0;

		values[i++] = CStringGetTextDatum(cf->name);
		nulls[i] = !cf->known;
		values[i++] = Int32GetDatum((int32) cf->id);
		for (int c = 0; c < lengthof(columns); c++, i++)
			put_property(&values[i], &nulls[i], cf->props[columns[c]]);
		for (int level = 0; level < ALMANAC_PROP_LEVELS; level++)
			put_property(&levels[level], &level_nulls[level],
						 cf->props[ALMANAC_PROP_FILES_AT_LEVEL + level]);
		values[i++] = PointerGetDatum(construct_md_array(levels, level_nulls, 1, dims, lbs,
														 INT8OID, sizeof(int64),
														 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		put_property(&values[i], &nulls[i], cf->props[ALMANAC_PROP_MEMTABLE_ENTRIES]);
		i++;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Flush and compact rewrite files and lose nothing: like CHECKPOINT, the
 * server's owner or a member of pg_checkpoint may.  Drop destroys the data of
 * every server that uses the store (a server without a path option uses the
 * default store, and a superuser may give one to any role): the role must
 * own every server of this database that uses the store.
 * Superusers own everything.
 */
static void
require_privilege(AdminStore *s, const char *cf, AlmanacRequestType type)
{
	ListCell   *lc;

	if (type != ALMANAC_REQ_DROP_CF)
	{
		bool		owns_all = true;

		/* every server of the store: see maintained_store (maintenance.c) */
		foreach(lc, almanac_store_servers(s->opts->path))
			owns_all = owns_all && pg_foreign_server_ownercheck(lfirst_oid(lc), GetUserId());
		if (owns_all || has_privs_of_role(GetUserId(), ROLE_PG_CHECKPOINT))
			return;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s almanac column family \"%s\"",
						type == ALMANAC_REQ_FLUSH ? "flush" : "compact", cf),
				 errdetail("Only the owner of every foreign server that uses the store of \"%s\", superusers and members of pg_checkpoint may flush or compact its column families.",
						   s->server->servername)));
	}

	foreach(lc, almanac_store_servers(s->opts->path))
	{
		Oid			server = lfirst_oid(lc);

		if (!pg_foreign_server_ownercheck(server, GetUserId()))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to drop almanac column family \"%s\"", cf),
					 errdetail("Dropping destroys data of every foreign server that uses the same store, and the current role does not own foreign server \"%s\".",
							   GetForeignServer(server)->servername)));
	}
}

/*
 * drop: never a reserved column family.  The store owner's own state and the
 * core tables' mirrors are in use whether or not a foreign table maps them:
 * without its mirror's keys, the router would answer lookups on almanac.blocks
 * with no rows.
 */
static void
check_not_reserved(const char *name)
{
	if (almanac_reserved_column_family(name))
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("cannot drop almanac column family \"%s\" because it is reserved", name),
				 errdetail("Column family \"%s\" is reserved: \"default\" holds the store owner's own state, and the names starting with \"mirror.\" the mirrors of almanac's core tables.",
						   name),
				 strncmp(name, "mirror.", 7) == 0
				 ? errhint("A mirror that differs from its table is rewritten with almanac.resync().")
				 : 0));
}

/* drop: refuse while a foreign table of this database uses the column family */
static void
check_not_used(AdminStore *s, const char *name)
{
	List	   *relids = tables_using(store_tables(s->opts->path), name);
	StringInfoData list;
	ListCell   *lc;

	if (relids == NIL)
		return;
	initStringInfo(&list);
	foreach(lc, relids)
		appendStringInfo(&list, "%s%s", list.len > 0 ? ", " : "",
						 DatumGetCString(DirectFunctionCall1(regclassout,
															 ObjectIdGetDatum(lfirst_oid(lc)))));
	ereport(ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg("cannot drop almanac column family \"%s\" because foreign tables use it", name),
			 errdetail_plural("Foreign table %s uses it.", "Foreign tables %s use it.",
							  list_length(relids), list.data),
			 errhint("Drop the foreign tables first: dropping the column family destroys their data.")));
}

/* flush, compact and drop: the column family, then the server */
static void
admin_request(FunctionCallInfo fcinfo, AlmanacRequestType type)
{
	char	   *cf = cf_name_arg(PG_GETARG_TEXT_PP(0));
	AdminStore *s = admin_store(PG_GETARG_NAME(1));

	require_privilege(s, cf, type);
	if (type == ALMANAC_REQ_DROP_CF)
	{
		check_not_reserved(cf);
		check_not_used(s, cf);
	}
	admin_attach(s);
	almanac_store_request(s->store, type, NULL, 0, cf, NULL, NULL);
}

/* almanac.flush(column_family text, server name): memtables to SST files, waiting */
PG_FUNCTION_INFO_V1(almanac_flush_sql);
Datum
almanac_flush_sql(PG_FUNCTION_ARGS)
{
	admin_request(fcinfo, ALMANAC_REQ_FLUSH);
	PG_RETURN_VOID();
}

/* almanac.compact(column_family text, server name): all of its key range */
PG_FUNCTION_INFO_V1(almanac_compact_sql);
Datum
almanac_compact_sql(PG_FUNCTION_ARGS)
{
	admin_request(fcinfo, ALMANAC_REQ_COMPACT);
	PG_RETURN_VOID();
}

/* almanac.drop_column_family(column_family text, server name) */
PG_FUNCTION_INFO_V1(almanac_drop_column_family_sql);
Datum
almanac_drop_column_family_sql(PG_FUNCTION_ARGS)
{
	admin_request(fcinfo, ALMANAC_REQ_DROP_CF);
	PG_RETURN_VOID();
}

/*
 * almanac.commit_stats(server name): the batches the store's owner applied
 * for committing transactions since the server started, the syncs of
 * its write-ahead log that made them durable (one per durable point, or per
 * round of commits without a replication slot: owner.c), and the intents it
 * checked against the value its own last write left in the shared row cache
 * or against RocksDB
 */
PG_FUNCTION_INFO_V1(almanac_commit_stats_sql);
Datum
almanac_commit_stats_sql(PG_FUNCTION_ARGS)
{
	AdminStore *s = admin_store(PG_GETARG_NAME(0));
	AlmanacStoreEntry *e;
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	require_usage(s);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	admin_attach(s);
	e = &almanac_shared->stores[s->store];
	values[0] = Int64GetDatum((int64) pg_atomic_read_u64(&e->commit_batches));
	values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&e->commit_syncs));
	values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&e->checked_in_cache));
	values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&e->checked_in_store));
	values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&e->batch_writes));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
