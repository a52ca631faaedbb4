/*-------------------------------------------------------------------------
 *
 * fdw.h
 *	  Types shared by the callbacks of the almanac_rocksdb foreign data
 *	  wrapper: fdw.c (handler and row access), plan.c (planning),
 *	  scan.c (reading), modify.c (writing), analyze.c (ANALYZE)
 *	  and import.c (IMPORT FOREIGN SCHEMA).
 *
 * Reads run in the backend, on its secondary instance (kv/reader.h), judged by
 * the statement's snapshot (codec/visibility.h), over the transaction's own
 * buffered writes (kv/xact.h).  Writes become intents in the statement's batch.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_FDW_H
#define ALMANAC_FDW_H

#include "access/transam.h"
#include "executor/tuptable.h"
#include "foreign/fdwapi.h"
#include "utils/rel.h"
#include "utils/palloc.h"
#include "utils/snapshot.h"

#include <rocksdb/c.h>

#include "nodes/parsenodes.h"

#include "codec/keycodec.h"
#include "codec/valuecodec.h"
#include "fdw/option.h"
#include "kv/reader.h"

/* a foreign table's layout, resolved once per statement */
typedef struct AlmanacKvTable
{
	Relation	rel;
	AlmanacTableOptions *opts;
	AlmanacServerOptions *server;
	AlmanacKeyLayout layout;
	AttrNumber *keyattrs;
	bool	   *is_key;			/* per attribute: stored in the key, not the value */
	int32	   *key_pad;		/* per key column: the typmod of char(n), to pad
								 * it back to n on read, or -1 */
	AlmanacValueLayout *values; /* the row layout values are written with
								 * (NULL for a raw table) */
	/* a raw table (option raw): its columns "key" and "value" (bytea) */
	AttrNumber	raw_value_attno;
} AlmanacKvTable;

/* what scans and modifies share: the table, its store and column family */
typedef struct AlmanacAccess
{
	AlmanacKvTable *t;
	int			store;
	AlmanacReader *reader;
	/*
	 * The reader's instance when the access began, and its handle of the
	 * column family: a later reopen (another table's new column family)
	 * retires the instance but keeps it open, and a handle must be used
	 * with its own instance.
	 */
	rocksdb_t  *db;
	rocksdb_column_family_handle_t *cf; /* NULL: not created yet, so empty */
	uint32		cf_id;
	rocksdb_readoptions_t *ropts;	/* an iterator's, made on first use */
	rocksdb_iterator_t *iter;	/* the caller's iterator, if any */
	rocksdb_writebatch_wi_t *batch_copy;	/* the scan's copy of the
											 * transaction's writes */
	Datum	   *keyvalues;
	MemoryContextCallback release;	/* frees ropts and iter */
} AlmanacAccess;

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
	ALMANAC_PRIV_COUNT
};

/* fdw.c: tables and row access */
extern AlmanacKvTable *almanac_table_open(Relation rel);

/*
 * The key of the first n key values (almanac_key_encode), or for a raw
 * table the bytea value itself (n = 1) or nothing (n = 0).
 */
extern void almanac_table_key(AlmanacKvTable *t, StringInfo buf, int n, const Datum *values,
							  bool prefix_only);

/*
 * False for a key of another table that shares the column family and
 * prefix but has another key_attribute (account:eth:0xab:code is not a row
 * of the table of account:eth:0xab:state): scans skip such keys.
 */
extern bool almanac_table_owns_key(AlmanacKvTable *t, const char *key, size_t klen);

/* upper = the exclusive end of the keys starting with prefix; empty: no end */
extern void almanac_prefix_end(StringInfo prefix, StringInfo upper);
/*
 * Attach the table's store and column family.  The read options of
 * almanac_access_iter_options and a->iter (set by the caller) are released
 * when CurrentMemoryContext is reset or deleted, ERROR included, or earlier
 * by almanac_access_release.
 */
extern void almanac_access_init(AlmanacAccess *a, Relation rel, bool for_write);
/* read options of the access's own, for an iterator (bounds are set on them) */
extern rocksdb_readoptions_t *almanac_access_iter_options(AlmanacAccess *a);
/*
 * Read options of point lookups (Get, MultiGet): the defaults, made once per
 * backend and never changed, so that a lookup creates none.
 */
extern const rocksdb_readoptions_t *almanac_lookup_options(void);
extern void almanac_access_release(AlmanacAccess *a);
extern void almanac_access_close_iterator(AlmanacAccess *a);
extern bool almanac_value_row(const char *val, size_t vlen, Snapshot snapshot,
							  const char **tuple, uint32 *tuple_len,
							  FullTransactionId *xid);
extern void almanac_row_to_slot(AlmanacAccess *a, TupleTableSlot *slot,
							  const char *key, size_t klen,
							  const char *tuple, uint32 tuple_len);
extern char *almanac_store_get(AlmanacAccess *a, const char *key, size_t klen,
							   size_t *vlen, bool keep);
extern char *almanac_get_value(AlmanacAccess *a, rocksdb_writebatch_wi_t *stmt,
							   const char *key, size_t klen, size_t *vlen);

/*
 * keyspace.c: may userid reach rows through rel with privileges perms
 * (ACL_SELECT, ACL_INSERT, ACL_UPDATE, ACL_DELETE)?  ERROR 42501 unless it
 * holds them on every other table of the database mapping the same keys,
 * or if rel is a raw table whose owner lacks the privileges of the server's
 * owner.
 */
extern void almanac_check_key_space_access(Relation rel, Oid userid, AclMode perms);

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

/* modify.c */
extern void almanac_fdw_modify_routine(FdwRoutine *r);

/* analyze.c */
extern bool almanacAnalyzeForeignTable(Relation relation,
									   AcquireSampleRowsFunc *func,
									   BlockNumber *totalpages);

/* import.c */
extern List *almanacImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);

#endif							/* ALMANAC_FDW_H */
