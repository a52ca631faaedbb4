/*-------------------------------------------------------------------------
 *
 * fdw.h
 *	  Types shared by the callbacks of the almanac_rocksdb foreign data
 *	  wrapper: fdw.c (handler and table layouts), plan.c (planning),
 *	  scan.c (reading), modify.c (writing), analyze.c (ANALYZE)
 *	  and import.c (IMPORT FOREIGN SCHEMA).
 *
 * The callbacks read and write rows only through kv/access.h, which runs
 * reads in the backend, on its secondary instance (kv/reader.h), judged by
 * the statement's snapshot (codec/visibility.h), over the transaction's own
 * buffered writes (kv/xact.h), and turns writes into intents in the
 * statement's batch.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_FDW_H
#define ALMANAC_FDW_H

#include "access/transam.h"
#include "executor/tuptable.h"
#include "foreign/fdwapi.h"
#include "nodes/parsenodes.h"
#include "utils/rel.h"
#include "utils/palloc.h"
#include "utils/snapshot.h"

#include "fdw/option.h"
#include "kv/access.h"

/*
 * How a scan reaches its rows, decided by plan.c and carried to scan.c
 * in ForeignScan.fdw_private (see plan.c for the list's layout).
 */
typedef enum AlmanacAccessKind
{
	ALMANAC_ACCESS_FULL,		/* every key of the table's prefix */
	ALMANAC_ACCESS_PREFIX,		/* equality on leading key columns */
	ALMANAC_ACCESS_RANGE,		/* ... and a range on the next one */
	ALMANAC_ACCESS_GET,			/* equality on every key column */
	ALMANAC_ACCESS_MULTIGET		/* ... the last one "= ANY (array)" */
} AlmanacAccessKind;

/* positions in ForeignScan.fdw_private */
enum
{
	ALMANAC_PRIV_KIND,			/* Integer: AlmanacAccessKind */
	ALMANAC_PRIV_NEQ,			/* Integer: equality on the first neq key columns */
	ALMANAC_PRIV_LOWER,			/* Integer: AlmanacKeyBound of the lower bound, or -1 */
	ALMANAC_PRIV_UPPER,			/* Integer: AlmanacKeyBound of the upper bound, or -1 */
	ALMANAC_PRIV_DIRECTION,		/* Integer: 1 ordered forward, -1 backward, 0 any */
	ALMANAC_PRIV_BOUNDS,		/* List: the pushed-down conditions (varno 1), for EXPLAIN */
	ALMANAC_PRIV_LOCK_MODE,		/* Integer: the key lock each row takes as it
								 * is read (NoLock, or the write's strength
								 * for the rows of an UPDATE or DELETE:
								 * plan.c scan_lock, kv/keylock.h) */
	ALMANAC_PRIV_NEEDED,		/* List of Integer: the attnos the query uses
								 * (0: the whole row), pull_varattnos of the
								 * rel's target and remaining conditions */
	ALMANAC_PRIV_COUNT
};

/*
 * fdw.c: the layout of a foreign table (options, key columns, store), from
 * a per-backend cache; palloc'd, and what it points to is shared with the
 * cache and read-only.
 */
extern AlmanacKvTable *almanac_table_open(Relation rel);

/*
 * keyspace.c: may userid reach rows through rel with privileges perms
 * (ACL_SELECT, ACL_INSERT, ACL_UPDATE, ACL_DELETE)?  ERROR 42501 unless it
 * holds them on every other table of the database mapping the same keys,
 * or if rel is a raw table whose owner lacks the privileges of the server's
 * owner.
 */
extern void almanac_check_key_space_access(Relation rel, Oid userid, AclMode perms);
/* is relid a foreign table of almanac_rocksdb (of this database's extension)? */
extern bool almanac_is_rocksdb_table(Oid relid);
/* a relation's owner (ERROR if it does not exist) */
extern Oid	almanac_rel_owner(Oid relid);

/* modify.c: hooks set up at library load (_PG_init) */
extern void almanac_modify_init(void);

/* plan.c */
extern void almanacGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
									 Oid foreigntableid);
extern void almanacGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
								   Oid foreigntableid);
extern ForeignScan *almanacGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
										  Oid foreigntableid, ForeignPath *best_path,
										  List *tlist, List *scan_clauses,
										  Plan *outer_plan);

/* scan.c */
extern void almanacBeginForeignScan(ForeignScanState *node, int eflags);
extern TupleTableSlot *almanacIterateForeignScan(ForeignScanState *node);
extern void almanacReScanForeignScan(ForeignScanState *node);
extern void almanacEndForeignScan(ForeignScanState *node);
extern void almanacExplainForeignScan(ForeignScanState *node, struct ExplainState *es);
extern void almanacRefetchForeignRow(EState *estate, ExecRowMark *erm, Datum rowid,
									 TupleTableSlot *slot, bool *updated);

/* modify.c */
extern void almanac_fdw_modify_routine(FdwRoutine *r);

/* analyze.c */
extern bool almanacAnalyzeForeignTable(Relation relation,
									   AcquireSampleRowsFunc *func,
									   BlockNumber *totalpages);

/* ddl.c: the object access hook that deletes the rows of a dropped table */
extern void almanac_ddl_init(void);

/* import.c */
extern List *almanacImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);

#endif							/* ALMANAC_FDW_H */
