/*-------------------------------------------------------------------------
 *
 * keyspace.c
 *	  Privileges that hold whatever table a role defines over the store.
 *
 * A foreign table reads and writes the keys of its key space: store (the
 * server's path), column family and key prefix.  Two tables of a database
 * whose key spaces overlap (same store and column family, and the same
 * prefix or either one raw) reach the same rows, so a privilege on one
 * alone would say nothing.  Two rules keep them meaningful:
 *
 * - Access: a statement may read or write through a table only if the role
 *   it runs as (the view owner's for a view) holds the same privileges
 *   (SELECT, INSERT, UPDATE, DELETE, as the statement needs them) on every
 *   other table of the database that overlaps it.  Checked when a scan or a
 *   write begins, and by ANALYZE.
 * - Definition (claims): a table may be created over, or altered onto, an
 *   overlapping key space only by a role that has the privileges of the
 *   owners of the tables already there (or a superuser), as for a view the
 *   first table's owner chooses who sees its rows.  Raw tables, which show
 *   every key of a column family, and tables over a reserved column family
 *   ("default", where the store owner keeps its own state, and the names
 *   starting with "mirror.", the core tables' mirrors, which no foreign
 *   table claims), only by a role with the privileges of the server's
 *   owner.  Checked by the event trigger almanac_key_spaces (enabled
 *   ALWAYS: session_replication_role does not switch it off) at the end of
 *   CREATE FOREIGN TABLE, ALTER FOREIGN TABLE, ALTER TABLE, ALTER SERVER
 *   (each table of the server) and IMPORT FOREIGN SCHEMA; the raw rule
 *   again at access, against the raw table's owner.  Dropping a table over
 *   a reserved column family never deletes its keys (fdw/ddl.c).
 * - Servers: the rule above counts the owners of every server over the
 *   store, and the store is opened with the tuning options of whichever of
 *   them attaches first after a restart, so a server over a store that
 *   other servers of the database use (every server without option path
 *   uses the database's own store) may be created, or have its options
 *   changed, only by a role with the privileges of their owners; the first
 *   over the database's own store only by one with the privileges of the
 *   wrapper's owner.  Else any role with USAGE on the wrapper could create
 *   one: set the tuning of a store others use, and, owning one of its
 *   servers, take raw tables and reserved column families away from the
 *   owner of the others.  Checked by the same event trigger at the end of
 *   CREATE SERVER and ALTER SERVER ... OPTIONS (path itself needs more:
 *   option.c).
 *
 * The key spaces of the database's tables are cached per backend and
 * rebuilt after any change to a foreign table or server; privileges and
 * owners are read at each check.  Tables in other databases are not seen:
 * each database has a store of its own unless a superuser points servers of
 * several at one path (option.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_foreign_table.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "fdw/fdw.h"

typedef struct KeySpace
{
	Oid			relid;
	Oid			serverid;
	char	   *path;
	char	   *column_family;
	char	   *key_prefix;		/* NULL for a raw table */
	bool		owner_only;		/* raw, or over a reserved column family */
} KeySpace;



static List *key_spaces = NIL;	/* of KeySpace, in key_space_cxt */
static bool key_spaces_valid = false;
static MemoryContext key_space_cxt = NULL;

static void
key_spaces_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	key_spaces_valid = false;
}

/* the wrapper of a foreign table's server is almanac_rocksdb */
static bool
server_is_ours(Oid serverid)
{
	return almanac_wrapper_is_ours(GetForeignServer(serverid)->fdwid);
}

/*
 * The key spaces of every foreign table of almanac_rocksdb in the database,
 * read from pg_foreign_table and the options (which the validator checked).
 */
static List *
get_key_spaces(void)
{
	Relation	ftrel;
	SysScanDesc scan;
	HeapTuple	tuple;
	List	   *result = NIL;
	MemoryContext old;

	if (key_space_cxt == NULL)
	{
		key_space_cxt = AllocSetContextCreate(CacheMemoryContext, "almanac key spaces",
											  ALLOCSET_SMALL_SIZES);
		CacheRegisterSyscacheCallback(FOREIGNTABLEREL, key_spaces_invalidate, (Datum) 0);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, key_spaces_invalidate, (Datum) 0);
	}
	if (key_spaces_valid)
		return key_spaces;

	MemoryContextReset(key_space_cxt);
	key_spaces = NIL;
	/* set first: an invalidation while reading clears it again */
	key_spaces_valid = true;

	/*
	 * An error while reading (a statement_timeout or cancel at a page of
	 * the catalog, a table whose options fail) must not leave the empty list
	 * marked valid: every check would then find no table and pass.
	 */
	PG_TRY();
	{
		ftrel = table_open(ForeignTableRelationId, AccessShareLock);
		scan = systable_beginscan(ftrel, InvalidOid, false, NULL, 0, NULL);
		while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		{
			Form_pg_foreign_table ft = (Form_pg_foreign_table) GETSTRUCT(tuple);
			AlmanacTableOptions *opts;
			KeySpace   *ks;

			if (!server_is_ours(ft->ftserver))
				continue;
			old = MemoryContextSwitchTo(key_space_cxt);
			opts = almanac_table_options(ft->ftrelid);
			ks = palloc(sizeof(KeySpace));
			ks->relid = ft->ftrelid;
			ks->serverid = ft->ftserver;
			ks->path = almanac_server_options(ft->ftserver)->path;
			ks->column_family = opts->column_family;
			ks->key_prefix = opts->raw ? NULL : opts->key_prefix;
			ks->owner_only = opts->raw || almanac_reserved_column_family(opts->column_family);
			result = lappend(result, ks);
			MemoryContextSwitchTo(old);
		}
		systable_endscan(scan);
		table_close(ftrel, AccessShareLock);
	}
	PG_CATCH();
	{
		key_spaces_valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();

	key_spaces = result;
	return result;
}

static KeySpace *
find_key_space(List *spaces, Oid relid)
{
	ListCell   *lc;

	foreach(lc, spaces)
	{
		KeySpace   *ks = lfirst(lc);

		if (ks->relid == relid)
			return ks;
	}
	return NULL;
}

/*
 * A table of the wrapper that the list lacks: the checks fail closed rather
 * than find no other table and pass.  (The caller holds a lock on it, which
 * processed the invalidations of its creation.)
 */
static void pg_attribute_noreturn()
missing_key_space(Oid relid)
{
	elog(ERROR, "almanac: foreign table \"%s\" is missing from the key spaces",
		 get_rel_name(relid));
}

static bool
overlaps(const KeySpace *a, const KeySpace *b)
{
	return a->relid != b->relid &&
		strcmp(a->path, b->path) == 0 &&
		strcmp(a->column_family, b->column_family) == 0 &&
		(a->key_prefix == NULL || b->key_prefix == NULL ||
		 strcmp(a->key_prefix, b->key_prefix) == 0);
}

Oid
almanac_rel_owner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * Raw tables and tables over a reserved column family: for roles with the
 * privileges of the owner of every server of the database that uses the
 * table's store.  Not the table's server's alone: a server without option
 * path uses the default store, mirrors and all, and a superuser may give one
 * to any role (creating one takes the privileges of the owners of the
 * others: check_server_definition).
 */
static void
check_owner_only(const KeySpace *ks, Oid roleid, bool at_access)
{
	bool		raw = ks->key_prefix == NULL;
	ListCell   *lc;

	foreach(lc, almanac_store_servers(ks->path))
	{
		ForeignServer *server = GetForeignServer(lfirst_oid(lc));

		if (has_privs_of_role(roleid, server->owner))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 at_access
				 ? errmsg("%s foreign table \"%s\" is not owned by a role with the privileges of the owner of server \"%s\"",
						  raw ? "raw" : "reserved", get_rel_name(ks->relid), server->servername)
				 : errmsg("permission denied to define %s foreign table \"%s\" over the store of server \"%s\"",
						  raw ? "raw" : "reserved", get_rel_name(ks->relid), server->servername),
				 raw
				 ? errdetail("A raw table shows every key of its column family, whatever table wrote it.")
				 : errdetail("Column family \"%s\" is reserved: \"default\" holds the store owner's own state, and the names starting with \"mirror.\" the mirrors of almanac's core tables.",
							 ks->column_family),
				 raw
				 ? errhint("Only a role with the privileges of the owner of every server that uses the store (%s owns \"%s\") or a superuser may create raw tables, with IMPORT FOREIGN SCHEMA or option \"raw\".",
						   GetUserNameFromId(server->owner, false), server->servername)
				 : errhint("Only a role with the privileges of the owner of every server that uses the store (%s owns \"%s\") or a superuser may map a reserved column family; name another with option \"column_family\".",
						   GetUserNameFromId(server->owner, false), server->servername)));
	}
}

static const char *
privilege_names(AclMode perms)
{
	StringInfoData s;

	initStringInfo(&s);
	if (perms & ACL_SELECT)
		appendStringInfoString(&s, "SELECT");
	if (perms & ACL_INSERT)
		appendStringInfo(&s, "%sINSERT", s.len ? ", " : "");
	if (perms & ACL_UPDATE)
		appendStringInfo(&s, "%sUPDATE", s.len ? ", " : "");
	if (perms & ACL_DELETE)
		appendStringInfo(&s, "%sDELETE", s.len ? ", " : "");
	return s.data;
}

void
almanac_check_key_space_access(Relation rel, Oid userid, AclMode perms)
{
	Oid			relid = RelationGetRelid(rel);
	List	   *spaces = get_key_spaces();
	KeySpace   *self = find_key_space(spaces, relid);
	ListCell   *lc;

	if (self == NULL)
		missing_key_space(relid);
	if (self->owner_only)
		check_owner_only(self, rel->rd_rel->relowner, true);

	perms &= ACL_SELECT | ACL_INSERT | ACL_UPDATE | ACL_DELETE;
	if (perms == 0)
		return;
	foreach(lc, spaces)
	{
		KeySpace   *other = lfirst(lc);

		if (!overlaps(self, other))
			continue;
		if (pg_class_aclmask(other->relid, userid, perms, ACLMASK_ALL) == perms)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for foreign table \"%s\": it maps the keys of foreign table \"%s\"",
						RelationGetRelationName(rel), get_rel_name(other->relid)),
				 errdetail("Both map column family \"%s\"%s of one store; role \"%s\" lacks %s on \"%s\".",
						   self->column_family,
						   self->key_prefix && other->key_prefix
						   ? psprintf(" with key prefix \"%s\"", self->key_prefix) : "",
						   GetUserNameFromId(userid, false), privilege_names(perms),
						   get_rel_name(other->relid)),
				 errhint("A role reaches rows through a table only with the same privileges on every table that maps the same keys.")));
	}
}

bool
almanac_is_rocksdb_table(Oid relid)
{
	return get_rel_relkind(relid) == RELKIND_FOREIGN_TABLE &&
		server_is_ours(GetForeignTable(relid)->serverid);
}

/*
 * The definition rule for one foreign table, as the current user: see the
 * file header.  Tables of other wrappers are left alone.
 */
static void
check_key_space_definition(Oid relid)
{
	List	   *spaces;
	KeySpace   *self;
	ListCell   *lc;
	Oid			userid = GetUserId();

	if (!almanac_is_rocksdb_table(relid))
		return;
	spaces = get_key_spaces();
	self = find_key_space(spaces, relid);
	if (self == NULL)
		missing_key_space(relid);
	if (self->owner_only)
		check_owner_only(self, userid, false);
	foreach(lc, spaces)
	{
		KeySpace   *other = lfirst(lc);
		Oid			owner;

		if (!overlaps(self, other))
			continue;
		owner = almanac_rel_owner(other->relid);
		if (has_privs_of_role(userid, owner))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to map foreign table \"%s\" onto the keys of foreign table \"%s\"",
						get_rel_name(relid), get_rel_name(other->relid)),
				 errdetail("Both would map column family \"%s\"%s of one store, and \"%s\" belongs to role \"%s\".",
						   self->column_family,
						   self->key_prefix && other->key_prefix
						   ? psprintf(" with key prefix \"%s\"", self->key_prefix) : "",
						   get_rel_name(other->relid), GetUserNameFromId(owner, false)),
				 errhint("Only a role with the privileges of the owner of the existing table may define another over its keys; choose another key_prefix or column_family.")));
	}
}

/*
 * The servers rule, as the current user, for a server that CREATE SERVER
 * made or ALTER SERVER ... OPTIONS changed (see the file header): every
 * other server of the database over the same store must belong to a role
 * whose privileges the current user has; a server that would be the first
 * over the database's own store (created, or moved there by a change of
 * path), to the wrapper's owner.  'options' are the
 * options the command named, for the message.
 */
static void
check_server_definition(Oid serverid, bool create, List *options)
{
	ForeignServer *server = GetForeignServer(serverid);
	AlmanacServerOptions *opts;
	Oid			userid = GetUserId();
	const char *option = NULL;
	ListCell   *lc;
	bool		others = false;
	bool		moved = create;
	bool		warned = false;

	/* ALTER SERVER ... VERSION alone leaves the store as it is */
	if (!almanac_wrapper_is_ours(server->fdwid) || (!create && options == NIL))
		return;
	opts = almanac_server_options(serverid);
	foreach(lc, options)
	{
		DefElem    *def = lfirst(lc);

		if (option == NULL)
			option = def->defname;
		/* setting or dropping path can move the server onto this store */
		if (strcmp(def->defname, "path") == 0)
			moved = true;
	}

	foreach(lc, almanac_store_servers(opts->path))
	{
		ForeignServer *other = GetForeignServer(lfirst_oid(lc));
		const char *differs;

		if (other->serverid == serverid)
			continue;
		others = true;
		if (has_privs_of_role(userid, other->owner))
		{
			/* allowed; but which tuning the store gets would be chance */
			differs = almanac_server_tuning_difference(opts, almanac_server_options(other->serverid));
			if (differs != NULL && !warned)
				ereport(WARNING,
						(errmsg("option \"%s\" of server \"%s\" differs from that of server \"%s\", which uses the same store",
								differs, server->servername, other->servername),
						 errdetail("A store is opened with the tuning options of whichever of its servers attaches first after a restart."),
						 errhint("Give every server of the store the same options.")));
			warned = warned || differs != NULL;
			continue;
		}
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 create
				 ? errmsg("permission denied to create server \"%s\" over the store of server \"%s\"",
						  server->servername, other->servername)
				 : errmsg("permission denied to change option \"%s\" of server \"%s\"",
						  option, server->servername),
				 errdetail("Server \"%s\" of role \"%s\" uses the same store%s: the store is opened with the tuning options of whichever of its servers attaches first, and its raw tables and tables over reserved column families are for roles with the privileges of the owner of each of its servers.",
						   other->servername, GetUserNameFromId(other->owner, false),
						   opts->database != InvalidOid ? " (the database's own, used by every server without option \"path\")" : ""),
				 errhint("Only a role with the privileges of role \"%s\" (or a superuser) may create or change a server over this store; use server \"%s\" instead (its owner may GRANT USAGE on it).",
						 GetUserNameFromId(other->owner, false), other->servername)));
	}

	/*
	 * The first server over the database's own store (its owner may tune it
	 * afterwards): its rows and mirrors are there
	 */
	if (!others && moved && opts->database != InvalidOid)
	{
		ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);

		if (!has_privs_of_role(userid, fdw->owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 create
					 ? errmsg("permission denied to create server \"%s\" over the database's own store",
							  server->servername)
					 : errmsg("permission denied to change option \"%s\" of server \"%s\"",
							  option, server->servername),
					 errdetail("No other server of this database uses the database's own store (every server without option \"path\" does), which holds the mirrors of almanac's core tables."),
					 errhint("Only a role with the privileges of role \"%s\", the owner of foreign-data wrapper \"%s\", or a superuser may create its first server.",
							 GetUserNameFromId(fdw->owner, false), fdw->fdwname)));
	}
}

/*
 * The OIDs in the first column of query's rows, run through SPI, in a list
 * allocated in cxt: SPI_finish frees what was allocated while connected.
 */
static List *
event_oids(const char *query, MemoryContext cxt)
{
	List	   *result = NIL;

	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "almanac: could not list the commands of the event");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			result = lappend_oid(result, DatumGetObjectId(d));
			MemoryContextSwitchTo(old);
		}
	}
	return result;
}

/*
 * almanac._key_spaces_ddl(): the event trigger almanac_key_spaces, at the
 * end of CREATE FOREIGN TABLE, ALTER FOREIGN TABLE, ALTER TABLE, CREATE
 * SERVER, ALTER SERVER and IMPORT FOREIGN SCHEMA: the servers rule for a
 * server the command created or whose options it changed, and the
 * definition rule for every foreign table the command created or altered,
 * or whose server it altered.
 */
PG_FUNCTION_INFO_V1(almanac_key_spaces_ddl_sql);
Datum
almanac_key_spaces_ddl_sql(PG_FUNCTION_ARGS)
{
	List	   *relids;
	List	   *serverids = NIL;
	ListCell   *lc;
	Node	   *stmt;
	MemoryContext cxt = CurrentMemoryContext;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("almanac._key_spaces_ddl() must be called as an event trigger")));
	stmt = ((EventTriggerData *) fcinfo->context)->parsetree;

	SPI_connect();
	/*
	 * The server CREATE SERVER made or ALTER SERVER ... OPTIONS changed (not
	 * ALTER SERVER ... OWNER TO or RENAME: the store keeps its servers)
	 */
	if (IsA(stmt, CreateForeignServerStmt) || IsA(stmt, AlterForeignServerStmt))
		serverids = event_oids("SELECT objid FROM pg_catalog.pg_event_trigger_ddl_commands() "
							   "WHERE classid = 'pg_catalog.pg_foreign_server'::pg_catalog.regclass",
							   cxt);
	/*
	 * The foreign tables the command created or altered (ALTER TABLE can
	 * alter a foreign table's options too), and every foreign table of a
	 * server it altered (ALTER SERVER ... OPTIONS (DROP path) moves them
	 * onto another store).
	 */
	relids = event_oids("SELECT objid FROM pg_catalog.pg_event_trigger_ddl_commands() "
						"WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
						"AND object_type = 'foreign table' "
						"UNION SELECT ft.ftrelid FROM pg_catalog.pg_event_trigger_ddl_commands() c "
						"JOIN pg_catalog.pg_foreign_table ft ON ft.ftserver = c.objid "
						"WHERE c.classid = 'pg_catalog.pg_foreign_server'::pg_catalog.regclass",
						cxt);
	SPI_finish();

	foreach(lc, serverids)
		check_server_definition(lfirst_oid(lc), IsA(stmt, CreateForeignServerStmt),
								IsA(stmt, CreateForeignServerStmt)
								? ((CreateForeignServerStmt *) stmt)->options
								: ((AlterForeignServerStmt *) stmt)->options);
	foreach(lc, relids)
		check_key_space_definition(lfirst_oid(lc));
	PG_RETURN_NULL();
}
