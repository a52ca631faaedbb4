/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  DDL that keeps a foreign table's rows right.
 *
 * A foreign table's rows live in the store under its key space (column
 * family, key prefix, key attribute: keycodec.h) and hold values bound to
 * the row layout they were written with (valuecodec.h).  PostgreSQL changes
 * a foreign table's columns and options without looking at its rows, so:
 *
 * - ALTER [FOREIGN] TABLE on an almanac table that holds rows is refused
 *   before it runs when it would change what the rows mean: ALTER COLUMN
 *   TYPE, DROP COLUMN, ADD COLUMN with a default, NOT NULL, identity or
 *   generation (existing rows would read NULL where a heap table shows the
 *   default), and setting, adding or dropping key_columns, key_prefix,
 *   key_attribute, column_family or raw, and RENAME COLUMN of a key column
 *   (the rows could then be neither read nor deleted by a drop); likewise
 *   ALTER TYPE ... ADD / DROP / ALTER ATTRIBUTE of a composite type a column
 *   is built from, and ALTER
 *   SERVER ... OPTIONS changing path (the store) of the table's server.  A
 *   plain nullable ADD COLUMN is allowed: rows written before read it as
 *   NULL, as in a heap table.  The
 *   check runs in the event trigger almanac_ddl_guard (ddl_command_start,
 *   src/sql/43_ddl.sql), which sees the command's parse tree, and covers the
 *   foreign tables an ALTER of an inheritance or partition parent recurses
 *   to.  It takes the ALTER's own lock first, so that no writer can add a
 *   row between the check and the change.
 * - DROP of the last almanac table of a key space in this database deletes
 *   its rows with the drop, as DROP TABLE removes a heap table's: one
 *   deletion intent per row, written with the transaction (kv/xact.h, the
 *   same intents a DELETE writes, shipped in chunks when large), so a
 *   rolled-back drop keeps them and a committed one leaves nothing that a
 *   table created later on the same keys could find.  Values are not
 *   decoded, so rows of any layout go.  Another table of this database on
 *   the same store, column family, prefix and key attribute keeps them (it
 *   still maps them), but only if its owner holds SELECT, INSERT, UPDATE and
 *   DELETE on the dropped table: else the drop would hand that owner every
 *   row written through it (note_rows_left_to), and the statement fails at
 *   its end unless it dropped the other table too; a drop that no statement
 *   made (the temporary tables a session drops as it ends) cannot fail, and
 *   deletes the rows instead.  It runs in an object access hook
 *   (OAT_DROP), which sees every drop, DROP SCHEMA / SERVER / EXTENSION ...
 *   CASCADE and DROP OWNED included, while the table's catalog entries
 *   still exist.  (Two
 *   databases share a store only when a privileged role pointed their
 *   servers at one path; a table of the other database does not count.)
 * - almanac.purge(table) deletes the rows the same way, without dropping the
 *   table: the way to empty a table before an ALTER that the first rule
 *   refuses.
 *
 * "Holds rows" (and what a drop deletes) is judged with a fresh snapshot
 * after the lock was taken:
 * the first key of the table's range that the snapshot sees as a live row
 * (keys of other key attributes and deleted versions are skipped), the
 * transaction's own writes included.  Values are not decoded, so a row
 * written under another layout counts as well.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_type.h"
#include "catalog/pg_inherits.h"
#include "commands/event_trigger.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "almanac.h"
#include "fdw/fdw.h"
#include "kv/access.h"
#include "kv/xact.h"
#include "store/store.h"

static object_access_hook_type prev_object_access_hook = NULL;

static List *almanac_tables(Oid serverid);

/* is relid a foreign table of almanac's wrapper? */
static bool
is_almanac_table(Oid relid)
{
	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		return false;
	return almanac_wrapper_is_ours(GetForeignServer(GetForeignTable(relid)->serverid)->fdwid);
}

/*
 * Walk the rows of the table's key space that the snapshot sees, without
 * decoding them (kv/access.h).  With delete, write a deletion of each, as a
 * DELETE of the row would (the caller checked the privilege), and return how
 * many; otherwise return 1 at the first one, 0 if there is none.  Every
 * RocksDB object is released with a memory context of the walk's own, ERROR
 * included.
 */
static int64
key_space_rows(Relation rel, Snapshot snapshot, bool delete)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "almanac key space",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	MemoryContext rowcxt = AllocSetContextCreate(cxt, "almanac key space row",
												 ALLOCSET_SMALL_SIZES);
	AlmanacKvTable *t = almanac_table_open(rel);
	AlmanacAccess *a = palloc0(sizeof(AlmanacAccess));
	AlmanacAccess *wa = NULL;
	AlmanacKvWriter *w = NULL;
	StringInfoData lower;
	StringInfoData upper;
	AlmanacKvEntry e;
	int64		n = 0;

	/* a raw table maps no rows of its own; no column family: nothing stored */
	if (!t->opts->raw)
		almanac_access_begin(a, t, 0);
	if (t->opts->raw || a->cf == NULL)
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		return 0;
	}
	initStringInfo(&lower);
	initStringInfo(&upper);
	almanac_kv_key(t, &lower, 0, NULL, true);
	almanac_prefix_end(&lower, &upper);
	almanac_access_iter_begin(a, lower.data, lower.len, upper.data, upper.len, 0);
	if (delete)
	{
		/* the writer's own access, as a DELETE's modify node has */
		wa = palloc0(sizeof(AlmanacAccess));
		w = palloc0(sizeof(AlmanacKvWriter));
		almanac_access_begin(wa, t, ALMANAC_ACCESS_CREATE);
		almanac_writer_begin(w, wa, GetCurrentCommandId(false), NULL);
	}

	for (;;)
	{
		bool		more;

		MemoryContextReset(rowcxt);
		MemoryContextSwitchTo(rowcxt);
		more = almanac_access_iter_next(a, snapshot, &e);
		if (more && e.visible && delete)
		{
			almanac_writer_put(w, e.key, e.klen, ALMANAC_INTENT_DELETE, e.xid, NULL, 0);
			almanac_writer_row_done(w);
		}
		MemoryContextSwitchTo(cxt);
		if (!more)
			break;
		if (e.visible)
		{
			n++;
			if (!delete)
				break;
		}
	}
	almanac_access_iter_end(a);
	if (w != NULL)
		almanac_writer_end(w);

	MemoryContextSwitchTo(old);
	/* releases the accesses' RocksDB objects and the writer's batch */
	MemoryContextDelete(cxt);
	return n;
}

/*
 * Does the table hold a row?  The caller holds a lock that keeps writers
 * out; the check uses a snapshot taken now, so that it sees every commit
 * that happened before the lock was granted.
 */
static bool
table_holds_rows(Relation rel)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	bool		holds;

	PushActiveSnapshot(snapshot);
	PG_TRY();
	{
		holds = key_space_rows(rel, snapshot, false) > 0;
	}
	PG_FINALLY();
	{
		PopActiveSnapshot();
		UnregisterSnapshot(snapshot);
	}
	PG_END_TRY();
	return holds;
}

/* the key-space options of a foreign table (those that decide which keys are its rows) */
static bool
is_key_space_option(const char *name)
{
	return strcmp(name, "key_columns") == 0 ||
		strcmp(name, "key_prefix") == 0 ||
		strcmp(name, "key_attribute") == 0 ||
		strcmp(name, "column_family") == 0 ||
		strcmp(name, "raw") == 0;
}

/* what an ADD COLUMN gives rows written before it, if not NULL */
static const char *
added_column_fill(ColumnDef *def)
{
	ListCell   *lc;

	if (def->raw_default != NULL || def->cooked_default != NULL)
		return "a default";
	if (def->is_not_null)
		return "NOT NULL";
	if (def->identity)
		return "an identity";
	if (def->generated)
		return "a generation expression";
	foreach(lc, def->constraints)
	{
		Constraint *c = lfirst_node(Constraint, lc);

		switch (c->contype)
		{
			case CONSTR_DEFAULT:
				return "a default";
			case CONSTR_NOTNULL:
				return "NOT NULL";
			case CONSTR_IDENTITY:
				return "an identity";
			case CONSTR_GENERATED:
				return "a generation expression";
			default:
				break;
		}
	}
	return NULL;
}

/*
 * What the subcommand would change in the meaning of the table's stored
 * rows (for the error message), or NULL if it changes nothing they hold.
 */
static char *
subcommand_change(AlterTableCmd *cmd)
{
	switch (cmd->subtype)
	{
		case AT_AlterColumnType:
			return psprintf("change the type of column \"%s\"", cmd->name);
		case AT_DropColumn:
			return psprintf("drop column \"%s\"", cmd->name);
		case AT_AddColumn:
			{
				ColumnDef  *def = castNode(ColumnDef, cmd->def);
				const char *fill = added_column_fill(def);

				if (fill == NULL)
					return NULL;
				return psprintf("add column \"%s\" with %s", def->colname, fill);
			}
		case AT_GenericOptions:
			{
				ListCell   *lc;

				foreach(lc, castNode(List, cmd->def))
				{
					DefElem    *opt = lfirst_node(DefElem, lc);

					if (is_key_space_option(opt->defname))
						return psprintf("%s option \"%s\"",
										opt->defaction == DEFELEM_ADD ? "add" :
										opt->defaction == DEFELEM_DROP ? "drop" : "set",
										opt->defname);
				}
				return NULL;
			}
		default:
			return NULL;
	}
}

/*
 * Refuse the change if the almanac table relid holds rows.  own_check: the
 * change is an ALTER of the table itself (skipped for a role that does not
 * own it); otherwise the caller checked that the role owns what it alters.
 */
static void
refuse_if_rows(Oid relid, const char *change, bool own_check)
{
	Relation	rel;

	if (!is_almanac_table(relid))
		return;
	/*
	 * A role that does not own the table cannot ALTER it: PostgreSQL says so
	 * right after this trigger.  Neither lock the table for it nor tell it
	 * whether the table holds rows.
	 */
	if (own_check && !pg_class_ownercheck(relid, GetUserId()))
		return;
	/* the lock ALTER TABLE takes for these subcommands, taken before it does */
	rel = table_open(relid, AccessExclusiveLock);
	if (table_holds_rows(rel))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s: foreign table \"%s\" holds rows",
						change, RelationGetRelationName(rel)),
				 errdetail("Its stored rows were written for the table's current columns, keys and store; after the change they would be misread or left behind."),
				 errhint("Create a new table and copy the rows with INSERT ... SELECT, or remove them first with almanac.purge('%s').",
						 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
													RelationGetRelationName(rel)))));
	table_close(rel, NoLock);
}

/* the almanac foreign tables of the database, optionally of one server only */
static List *
almanac_tables(Oid serverid)
{
	Relation	ftrel = table_open(ForeignTableRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(ftrel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tup;
	List	   *result = NIL;

	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_foreign_table ft = (Form_pg_foreign_table) GETSTRUCT(tup);

		if ((!OidIsValid(serverid) || ft->ftserver == serverid) &&
			is_almanac_table(ft->ftrelid))
			result = lappend_oid(result, ft->ftrelid);
	}
	systable_endscan(scan);
	table_close(ftrel, AccessShareLock);
	return result;
}

/* is target typid itself, or a type typid is built from (domain, array, range, composite)? */
static bool
type_contains(Oid typid, Oid target)
{
	HeapTuple	tp;
	Form_pg_type typ;
	bool		result = false;

	check_stack_depth();
	if (typid == target)
		return true;
	tp = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tp))
		return false;
	typ = (Form_pg_type) GETSTRUCT(tp);
	if (typ->typtype == TYPTYPE_DOMAIN)
		result = type_contains(typ->typbasetype, target);
	else if (typ->typtype == TYPTYPE_RANGE)
		result = type_contains(get_range_subtype(typid), target);
	else if (typ->typtype == TYPTYPE_COMPOSITE)
	{
		TupleDesc	desc = lookup_rowtype_tupdesc(typid, -1);

		for (int i = 0; i < desc->natts && !result; i++)
			if (!TupleDescAttr(desc, i)->attisdropped)
				result = type_contains(TupleDescAttr(desc, i)->atttypid, target);
		ReleaseTupleDesc(desc);
	}
	else if (OidIsValid(typ->typelem) && typ->typlen == -1)
		result = type_contains(typ->typelem, target);
	ReleaseSysCache(tp);
	return result;
}

/*
 * ALTER TYPE ... ADD / DROP / ALTER ATTRIBUTE of a composite type changes
 * the layout of every almanac table with a column built from it: refused
 * while such a table holds rows.
 */
static void
guard_alter_type(Oid relid, AlterTableStmt *stmt)
{
	Oid			typid = get_rel_type_id(relid);
	ListCell   *lc;
	ListCell   *tc;
	List	   *tables = NIL;
	bool		changes = false;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		changes |= (cmd->subtype == AT_AddColumn || cmd->subtype == AT_DropColumn ||
					cmd->subtype == AT_AlterColumnType);
	}
	if (!changes || !OidIsValid(typid) || !pg_type_ownercheck(typid, GetUserId()))
		return;					/* (a non-owner's ALTER TYPE fails anyway) */
	tables = almanac_tables(InvalidOid);
	foreach(tc, tables)
	{
		Oid			table = lfirst_oid(tc);
		HeapTuple	tp;

		for (AttrNumber attno = 1;; attno++)
		{
			Form_pg_attribute att;
			bool		uses;

			tp = SearchSysCache2(ATTNUM, ObjectIdGetDatum(table), Int16GetDatum(attno));
			if (!HeapTupleIsValid(tp))
				break;
			att = (Form_pg_attribute) GETSTRUCT(tp);
			uses = !att->attisdropped && type_contains(att->atttypid, typid);
			if (uses)
			{
				char	   *change = psprintf("alter type \"%s\", of column \"%s\"",
											  format_type_be(typid), NameStr(att->attname));

				ReleaseSysCache(tp);
				refuse_if_rows(table, change, false);
				break;
			}
			ReleaseSysCache(tp);
		}
	}
}

/*
 * ALTER SERVER ... OPTIONS changing path points every table of the server
 * at another store, where their rows are not: refused while one holds rows.
 */
static void
guard_alter_server(AlterForeignServerStmt *stmt)
{
	ForeignServer *server = GetForeignServerByName(stmt->servername, true);
	ListCell   *lc;

	if (server == NULL || !pg_foreign_server_ownercheck(server->serverid, GetUserId()))
		return;					/* (a non-owner's ALTER SERVER fails anyway) */
	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		if (strcmp(opt->defname, "path") == 0)
		{
			ListCell   *tc;
			char	   *change = psprintf("%s option \"path\" of server \"%s\"",
										  opt->defaction == DEFELEM_ADD ? "add" :
										  opt->defaction == DEFELEM_DROP ? "drop" : "set",
										  stmt->servername);

			foreach(tc, almanac_tables(server->serverid))
				refuse_if_rows(lfirst_oid(tc), change, false);
			return;
		}
	}
}

static void
guard_alter_table(AlterTableStmt *stmt)
{
	ListCell   *lc;
	Oid			relid;

	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return;					/* ALTER itself reports it (or IF EXISTS skips it) */
	if (stmt->objtype == OBJECT_TYPE)
	{
		if (get_rel_relkind(relid) == RELKIND_COMPOSITE_TYPE)
			guard_alter_type(relid, stmt);
		return;
	}

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		char	   *change = subcommand_change(cmd);

		if (change == NULL)
			continue;
		/* column changes recurse to inheritors unless ONLY; options never do */
		if (stmt->relation->inh && cmd->subtype != AT_GenericOptions &&
			get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		{
			List	   *rels = find_all_inheritors(relid, NoLock, NULL);
			ListCell   *rc;

			foreach(rc, rels)
				refuse_if_rows(lfirst_oid(rc), change, true);
		}
		else
			refuse_if_rows(relid, change, true);
	}
}

/*
 * ALTER [FOREIGN] TABLE ... RENAME COLUMN of a key column (key_columns names
 * it): the table could no longer read its rows, nor delete them when dropped
 * (layout_usable), so they would wait under its keys for the next table
 * defined there, whoever's.  Refused while the table holds rows, as the
 * other changes of its keys are; through an inheritance parent too.
 */
static void
guard_rename_column(RenameStmt *stmt)
{
	Oid			relid;
	List	   *rels;
	ListCell   *lc;

	if (stmt->renameType != OBJECT_COLUMN || stmt->relation == NULL)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return;					/* RENAME itself reports it */
	rels = stmt->relation->inh ? find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid);
	foreach(lc, rels)
	{
		Oid			rel = lfirst_oid(lc);
		AlmanacTableOptions *opts;
		ListCell   *kc;

		if (!is_almanac_table(rel))
			continue;
		opts = almanac_table_options(rel);
		foreach(kc, opts->key_columns)
			if (strcmp(strVal(lfirst(kc)), stmt->subname) == 0)
				refuse_if_rows(rel, psprintf("rename key column \"%s\"", stmt->subname), true);
	}
}

/*
 * almanac._ddl_guard(): the ddl_command_start event trigger (see the file
 * header).  ALTER TABLE, ALTER FOREIGN TABLE (RENAME COLUMN included), ALTER
 * TYPE and ALTER SERVER reach it.
 */
PG_FUNCTION_INFO_V1(almanac_ddl_guard);
Datum
almanac_ddl_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("almanac._ddl_guard() is an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!almanac_preloaded)
		PG_RETURN_VOID();
	if (IsA(trigdata->parsetree, AlterTableStmt))
		guard_alter_table((AlterTableStmt *) trigdata->parsetree);
	else if (IsA(trigdata->parsetree, AlterForeignServerStmt))
		guard_alter_server((AlterForeignServerStmt *) trigdata->parsetree);
	else if (IsA(trigdata->parsetree, RenameStmt))
		guard_rename_column((RenameStmt *) trigdata->parsetree);
	PG_RETURN_VOID();
}

/*
 * The other almanac tables of this database that map the rows of t (same
 * store, column family, key prefix and key attribute).  Tables dropped
 * earlier in the same command are gone from the catalog already.
 */
static List *
key_space_mapped_elsewhere(Relation rel, AlmanacKvTable *t)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, almanac_tables(InvalidOid))
	{
		Oid			other = lfirst_oid(lc);
		AlmanacTableOptions *o;

		if (other == RelationGetRelid(rel))
			continue;
		o = almanac_table_options(other);
		if (!o->raw &&
			strcmp(o->column_family, t->opts->column_family) == 0 &&
			strcmp(o->key_prefix, t->opts->key_prefix) == 0 &&
			(o->key_attribute == NULL
			 ? t->opts->key_attribute == NULL
			 : t->opts->key_attribute != NULL &&
			 strcmp(o->key_attribute, t->opts->key_attribute) == 0) &&
			strcmp(almanac_server_options(GetForeignTable(other)->serverid)->path,
				   t->server->path) == 0)
			result = lappend_oid(result, other);
	}
	return result;
}

/*
 * Can the table's layout be read?  A table whose key columns were renamed
 * away or have a type keys cannot hold (the validator cannot see columns)
 * never read or wrote a row, and dropping it must not fail on its layout;
 * a raw table maps no rows of its own.
 */
static bool
layout_usable(Relation rel)
{
	AlmanacTableOptions *opts = almanac_table_options(RelationGetRelid(rel));
	TupleDesc	desc = RelationGetDescr(rel);
	ListCell   *lc;

	if (opts->raw)
		return false;
	foreach(lc, opts->key_columns)
	{
		const char *name = strVal(lfirst(lc));
		bool		found = false;

		for (int i = 0; i < desc->natts && !found; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			found = !att->attisdropped && strcmp(NameStr(att->attname), name) == 0 &&
				almanac_key_type_supported(att->atttypid);
		}
		if (!found)
			return false;
	}
	return true;
}

/*
 * A drop that would leave its table's rows to another table whose owner lacks
 * SELECT, INSERT, UPDATE or DELETE on the dropped table: refused at the end
 * of the command unless that table is gone by then (dropped by the same
 * command, in whatever order).  Recorded by drop_table_rows at the
 * utility_depth of the statement that drops, checked and forgotten by
 * almanac_process_utility when that statement ends (forgotten only, if it
 * fails).
 */
typedef struct PendingDrop
{
	int			depth;
	/* names schema-qualified: tenants' schemas often hold tables of one name */
	char	   *table;
	Oid			other;
	char	   *other_name;
	char	   *other_owner;
} PendingDrop;

#define ROWS_PRIVILEGES (ACL_SELECT | ACL_INSERT | ACL_UPDATE | ACL_DELETE)

static ProcessUtility_hook_type prev_process_utility_hook = NULL;
static int	utility_depth = 0;
static List *pending_drops = NIL;	/* of PendingDrop, in TopTransactionContext */

/* a relation's name with its schema's, quoted where needed */
static char *
qualified_rel_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * The tables that would keep rel's rows and whose owner lacks SELECT,
 * INSERT, UPDATE or DELETE on rel: while rel exists they reach no row
 * without them (a role needs its privileges on every table over the keys:
 * keyspace.c); after the drop they would read and change every row written
 * through rel.  This is how a role that claimed a key prefix first (a table
 * over keys it expects a privileged role to use) would come by that role's
 * rows.  rel's owner leaves them the rows by granting those privileges.
 * Returns true when the rows must go with the drop instead: no statement
 * can be refused for it (a session's end drops its temporary tables), and
 * leaving them would hand them to such an owner.
 */
static bool
note_rows_left_to(Relation rel, List *others)
{
	int			holds = -1;		/* not known yet */
	ListCell   *lc;

	foreach(lc, others)
	{
		Oid			other = lfirst_oid(lc);
		Oid			other_owner;
		MemoryContext old;
		PendingDrop *p;

		other_owner = almanac_rel_owner(other);
		if (pg_class_aclmask(RelationGetRelid(rel), other_owner, ROWS_PRIVILEGES,
							 ACLMASK_ALL) == ROWS_PRIVILEGES)
			continue;
		/* an empty key space leaves nothing behind */
		if (holds < 0)
			holds = table_holds_rows(rel);
		if (!holds)
			return false;
		if (utility_depth == 0)
			return true;
		old = MemoryContextSwitchTo(TopTransactionContext);
		p = palloc(sizeof(PendingDrop));
		p->depth = utility_depth;
		p->table = qualified_rel_name(RelationGetRelid(rel));
		p->other = other;
		p->other_name = qualified_rel_name(other);
		p->other_owner = pstrdup(GetUserNameFromId(other_owner, false));
		pending_drops = lappend(pending_drops, p);
		MemoryContextSwitchTo(old);
	}
	return false;
}

/*
 * At the end of a statement at depth: refuse the drops it recorded whose
 * other table still exists; forget them either way.  Those of the statements
 * around it (lower depths) stay, refusal included: a function run by an
 * outer statement (an event trigger of its DROP) may catch this error, and
 * the outer statement's own drops must still be checked when it ends.
 */
static void
check_pending_drops(int depth, bool check)
{
	List	   *keep = NIL;
	PendingDrop *refused = NULL;
	ListCell   *lc;
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

	foreach(lc, pending_drops)
	{
		PendingDrop *p = lfirst(lc);

		if (p->depth < depth)
			keep = lappend(keep, p);
		else if (check && refused == NULL &&
				 SearchSysCacheExists1(RELOID, ObjectIdGetDatum(p->other)))
			refused = p;
	}
	pending_drops = keep;
	MemoryContextSwitchTo(old);
	if (refused != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to drop foreign table \"%s\" while foreign table \"%s\" maps its keys",
						refused->table, refused->other_name),
				 errdetail("Its rows would stay, readable and writable through \"%s\", whose owner \"%s\" lacks SELECT, INSERT, UPDATE or DELETE on \"%s\".",
						   refused->other_name, refused->other_owner, refused->table),
				 errhint("Drop \"%s\" in the same statement, empty \"%s\" with almanac.purge() first, or, to leave its rows to \"%s\", grant SELECT, INSERT, UPDATE, DELETE on \"%s\" to role \"%s\" first.",
						 refused->other_name, refused->table, refused->other_name,
						 refused->table, refused->other_owner)));
}

static void
almanac_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	int			depth = ++utility_depth;

	PG_TRY();
	{
		if (prev_process_utility_hook)
			prev_process_utility_hook(pstmt, queryString, readOnlyTree, context, params,
									  queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		utility_depth = depth - 1;
		/* a failed statement's drops are undone with it */
		check_pending_drops(depth, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	utility_depth = depth - 1;
	if (pending_drops != NIL)
		check_pending_drops(depth, true);
}

/*
 * OAT_DROP of a relation: when the almanac table is the last one of its key
 * space in this database, delete its rows with the drop (see the file
 * header); when others map it, note those that would come by its rows.
 */
static void
drop_table_rows(Oid relid)
{
	Relation	rel;
	AlmanacKvTable *t;
	List	   *others;

	if (!is_almanac_table(relid))
		return;
	/* the drop holds AccessExclusiveLock already */
	rel = relation_open(relid, NoLock);
	if (!layout_usable(rel))
	{
		relation_close(rel, NoLock);
		return;
	}
	t = almanac_table_open(rel);
	/* a mirror's or the store owner's keys are theirs, whatever table mapped them */
	if (!almanac_reserved_column_family(t->opts->column_family) &&
		((others = key_space_mapped_elsewhere(rel, t)) == NIL ||
		 note_rows_left_to(rel, others)))
	{
		Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());

		PushActiveSnapshot(snapshot);
		(void) key_space_rows(rel, snapshot, true);
		PopActiveSnapshot();
		UnregisterSnapshot(snapshot);
	}
	relation_close(rel, NoLock);
}

static void
almanac_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					  int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == RelationRelationId && subId == 0 &&
		IsTransactionState() && !IsBinaryUpgrade &&
		get_rel_relkind(objectId) == RELKIND_FOREIGN_TABLE)
		drop_table_rows(objectId);
}

/*
 * A transaction's end forgets what its statements recorded: a statement that
 * failed outside almanac_process_utility's reach leaves nothing for the next.
 */
static void
ddl_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE)
		pending_drops = NIL;
}

void
almanac_ddl_init(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = almanac_object_access;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = almanac_process_utility;
	RegisterXactCallback(ddl_xact_callback, NULL);
}

/*
 * almanac.purge(regclass) RETURNS bigint: delete every row of the table's key
 * space, whatever layout it was written with, as part of the transaction.
 * Needs the DELETE privilege on the table (and, as a DELETE does, on every
 * table over the same keys: keyspace.c).  Returns the number of rows.
 */
PG_FUNCTION_INFO_V1(almanac_purge);
Datum
almanac_purge(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel;
	AclResult	aclresult;
	int64		n;

	almanac_require_preload();
	if (!is_almanac_table(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a foreign table of almanac's wrapper",
						get_rel_name(relid) ? get_rel_name(relid) : "?")));
	rel = table_open(relid, RowExclusiveLock);
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_DELETE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_TABLE, RelationGetRelationName(rel));
	/* as a DELETE through the table: the same privilege on every table over its keys */
	almanac_check_key_space_access(rel, GetUserId(), ACL_DELETE);
	if (almanac_table_open(rel)->opts->raw)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot purge raw foreign table \"%s\"", RelationGetRelationName(rel)),
				 errdetail("A raw table maps a whole column family and holds no rows of its own.")));
	n = key_space_rows(rel, GetActiveSnapshot(), true);
	table_close(rel, NoLock);
	PG_RETURN_INT64(n);
}
