/*-------------------------------------------------------------------------
 *
 * scan.c
 *	  Reading almanac_rocksdb foreign tables: Get, MultiGet and bounded
 *	  iterators on the backend's secondary instance, over the transaction's
 *	  own buffered writes, judged by the statement's snapshot.
 *
 * plan.c chose the access kind; here the key values are computed when
 * the scan starts (Params included) and turned into a key, a sorted set of
 * keys, or the [lower, upper) byte range of an iterator.  A key value that
 * no key can hold (NULL, a negative integer) matches nothing.
 *
 * Rows are read through kv/access.h, whose RocksDB objects (read options,
 * iterator) are released by a reset callback of the memory context the
 * scan lives in, so an ERROR anywhere in the query frees them.
 *
 * Locking: the scan of an UPDATE or DELETE target locks each row's key as
 * it reads it (lock_row).  SELECT ... FOR UPDATE / SHARE locks late, as the
 * heap does (fdw.c: almanacGetForeignRowMarkType): the scan only gives each
 * row a row id, and LockRows locks the row when it returns it
 * (almanacRefetchForeignRow), so that a row changed between a cursor's
 * fetches under a node that reads ahead (a Sort) is judged when it is
 * returned, not when it was read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "access/xact.h"
#include "commands/explain.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "fdw/fdw.h"
#include "kv/nested.h"

/* a key's bytes */
typedef struct KeyBytes
{
	const char *data;
	size_t		len;
} KeyBytes;

struct RowIds;

/* a key given a row id: its number in RowIds.keys (RowIds.by_key) */
typedef struct RowIdEntry
{
	uint32		id;
	uint32		hash;
	char		status;
} RowIdEntry;

static inline uint32 row_id_hash(struct RowIds *ids, uint32 id);
static inline bool row_id_equal(struct RowIds *ids, uint32 a, uint32 b);

#define SH_PREFIX		rowids
#define SH_ELEMENT_TYPE	RowIdEntry
#define SH_KEY_TYPE		uint32
#define SH_KEY			id
#define SH_HASH_KEY(tb, k)	row_id_hash((tb)->private_data, (k))
#define SH_EQUAL(tb, a, b)	row_id_equal((tb)->private_data, (a), (b))
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

struct AlmanacScanState;

/*
 * The row ids of a table locked late (SELECT ... FOR UPDATE / SHARE), kept
 * in its row mark's ermExtra for almanacRefetchForeignRow.  A row's id is
 * its ctid, the junk column LockRows hands back; it stands for the row's
 * key (the ctid's 6 bytes cannot hold a key): the id is the key's number in
 * keys, in the tid's block and offset.  Every scan of the table in the
 * query (the one of the plan, a copy EvalPlanQual runs) numbers its keys
 * here, a key read again (a rescanned inner side of a join) keeps its id,
 * and nothing is forgotten before the query ends: under a Sort every row is
 * read, and the scan may be rescanned, before the first is locked.  The
 * hash table holds only the numbers, the keys' bytes are packed in blocks:
 * about 50 bytes a row of 8-byte keys.
 */
typedef struct RowIds
{
	struct AlmanacScanState *scan;	/* the first scan (the plan's): refetches
									 * lock and read through its access */
	MemoryContext cxt;			/* the keys, for the query */
	rowids_hash *by_key;
	KeyBytes   *keys;			/* by id */
	uint32		n;
	uint32		max;
	char	   *block;			/* free room for the keys' bytes */
	size_t		block_free;
	MemoryContext rowcxt;		/* a refetched row's datums until the slot
								 * holds them */
} RowIds;

#define ROW_IDS_BLOCK	(64 * 1024)

/* simplehash's hash of a key number: the hash of the key's bytes */
static inline uint32
row_id_hash(struct RowIds *ids, uint32 id)
{
	return hash_bytes((const unsigned char *) ids->keys[id].data, (int) ids->keys[id].len);
}

/* simplehash's equality of two key numbers: the same key bytes */
static inline bool
row_id_equal(struct RowIds *ids, uint32 a, uint32 b)
{
	return ids->keys[a].len == ids->keys[b].len &&
		memcmp(ids->keys[a].data, ids->keys[b].data, ids->keys[a].len) == 0;
}

/*
 * A row id as a ctid: block id / MaxOffsetNumber, offset the rest plus one
 * (an offset is never 0, InvalidOffsetNumber), so every uint32 id has a
 * valid ctid and row_id_from_tid gives it back.
 */
static inline void
row_id_to_tid(uint32 id, ItemPointer tid)
{
	ItemPointerSet(tid, id / MaxOffsetNumber, id % MaxOffsetNumber + 1);
}

/* the row id of a ctid row_id_to_tid made; false for one it cannot have made */
static inline bool
row_id_from_tid(ItemPointer tid, uint64 *id)
{
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	if (off == InvalidOffsetNumber || off > MaxOffsetNumber)
		return false;
	*id = (uint64) ItemPointerGetBlockNumberNoCheck(tid) * MaxOffsetNumber + off - 1;
	return true;
}

typedef struct AlmanacScanState
{
	AlmanacAccess a;
	AlmanacAccessKind kind;
	int			neq;
	int			lower_bound;	/* AlmanacKeyBound or -1 */
	int			upper_bound;
	int			direction;		/* -1: backward */
	List	   *eq_states;		/* per equality value: a Const, or the
								 * ExprState that computes it */
	ExprState  *lower_state;
	ExprState  *upper_state;
	ExprState  *array_state;
	Snapshot	snapshot;
	MemoryContext rowcxt;		/* the current row's decoded values; a GET
								 * uses the executor's per-tuple memory */
	MemoryContext scancxt;		/* MULTIGET's keys and values, until a rescan */
	bool		started;
	bool		done;
	/* the key lock each row takes, or NoLock (plan.c: scan_lock) */
	LOCKMODE	lock_mode;
	/* locked late (SELECT ... FOR UPDATE / SHARE): the rows' ids, else NULL */
	RowIds	   *rowids;
	/*
	 * locked late: registered with kv/nested.h as a locking scan of its
	 * command (no_batch stays NULL), so that the writes of the commands it
	 * triggers to its keys are recorded (refetch_lock), in whatever
	 * statement the locking query is (a SELECT, the SELECT of an INSERT, a
	 * CTE or subquery of an UPDATE)
	 */
	bool		locks_for_select;
	rocksdb_writebatch_wi_t *no_batch;
	/*
	 * ends the locking scan's registration (scan_nested_close); the scan is
	 * no open reader of its own, its query is (almanacBeginForeignScan)
	 */
	MemoryContextCallback nested_close;
	/*
	 * The filter of a scan that locks as it reads (an UPDATE's or DELETE's):
	 * evaluated by lock_row before the lock (a row that fails it is not
	 * locked) and again on a newer version it returns,
	 * and taken out of the executor's qual, which would evaluate it once
	 * more on every row returned (a volatile function in it ran twice)
	 */
	ExprState  *lock_qual;
	/* iterator scans: [lower, upper); GET: lower is the key */
	StringInfoData lower;
	StringInfoData upper;
	/* MULTIGET: the keys in byte order, distinct, their values (NULL: none) */
	int			nkeys;
	int			next;
	char	  **keys;
	size_t	   *klens;
	char	  **values;
	size_t	   *vlens;
} AlmanacScanState;

/* a locking SELECT's scan ends: no longer an open writer (kv/nested.h) */
static void
scan_nested_close(void *arg)
{
	AlmanacScanState *s = arg;

	if (s->locks_for_select)
		almanac_nested_writer_close(&s->no_batch);
	s->locks_for_select = false;
}

/*
 * A scan of a table locked late (its row mark is a lock: fdw.c) numbers the
 * rows it reads (row_id_set), in the RowIds of the mark, made by the first
 * scan of the table to begin, the plan's (a copy of the plan that
 * EvalPlanQual runs begins later); plain scans find no mark.
 */
static void
row_ids_begin(AlmanacScanState *s, EState *estate, Index scanrelid)
{
	ExecRowMark *erm = ExecFindRowMark(estate, scanrelid, true);
	RowIds	   *ids;

	if (erm == NULL || !RowMarkRequiresRowShareLock(erm->markType))
		return;
	if (erm->ermExtra == NULL)
	{
		ids = palloc0(sizeof(RowIds));
		ids->scan = s;
		ids->cxt = AllocSetContextCreate(estate->es_query_cxt, "almanac row ids",
										 ALLOCSET_DEFAULT_SIZES);
		ids->rowcxt = AllocSetContextCreate(estate->es_query_cxt, "almanac locked row",
											ALLOCSET_SMALL_SIZES);
		ids->by_key = rowids_create(ids->cxt, 256, ids);
		ids->max = 256;
		ids->keys = MemoryContextAlloc(ids->cxt, sizeof(KeyBytes) * ids->max);
		erm->ermExtra = ids;
	}
	s->rowids = erm->ermExtra;
}

/*
 * Give the row of key in slot its row id (its ctid), the same for every
 * read of the key in the query.
 */
static void
row_id_set(AlmanacScanState *s, TupleTableSlot *slot, const char *key, size_t klen)
{
	RowIds	   *ids = s->rowids;
	RowIdEntry *e;
	bool		found;

	if (ids->n == ids->max)
	{
		if ((uint64) ids->max * 2 > PG_UINT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many rows of foreign table \"%s\" to lock in one query",
							RelationGetRelationName(s->a.t->rel))));
		ids->max *= 2;
		ids->keys = repalloc_huge(ids->keys, sizeof(KeyBytes) * ids->max);
	}
	/* as the next number, until the table says whether the key has one */
	ids->keys[ids->n].data = key;
	ids->keys[ids->n].len = klen;
	e = rowids_insert(ids->by_key, ids->n, &found);
	if (!found)
	{
		if (ids->block == NULL || klen > ids->block_free)
		{
			ids->block_free = Max(klen, ROW_IDS_BLOCK);
			ids->block = MemoryContextAlloc(ids->cxt, ids->block_free);
		}
		memcpy(ids->block, key, klen);
		ids->keys[ids->n++].data = ids->block;
		ids->block += klen;
		ids->block_free -= klen;
	}
	row_id_to_tid(e->id, &slot->tts_tid);
}

/*
 * BeginForeignScan: attach the store, catch the secondary up (after the
 * statement's snapshot was taken), prepare the key expressions.  Nothing is
 * read until the first row is asked for.
 */
void
almanacBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fs = (ForeignScan *) node->ss.ps.plan;
	AlmanacScanState *s = palloc0(sizeof(AlmanacScanState));
	EState	   *estate = node->ss.ps.state;
	List	   *states = NIL;
	int			n = 0;
	ListCell   *lc;

	node->fdw_state = s;
	s->kind = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_KIND));
	s->neq = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_NEQ));
	s->lower_bound = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_LOWER));
	s->upper_bound = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_UPPER));
	s->direction = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_DIRECTION));
	s->lock_mode = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_LOCK_MODE));
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	s->snapshot = estate->es_snapshot;

	/*
	 * The privileges the statement needs on this table, on every table that
	 * maps the same keys (keyspace.c).  An inheritance child or partition
	 * has none of its own (the parent's were checked): reading it reads.
	 */
	{
		RangeTblEntry *rte = exec_rt_fetch(fs->scan.scanrelid, estate);

		almanac_check_key_space_access(node->ss.ss_currentRelation,
									   OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId(),
									   rte->requiredPerms ? rte->requiredPerms : ACL_SELECT);
	}
	/* a lookup by key catches the reader up only for keys written since */
	almanac_access_begin(&s->a, almanac_table_open(node->ss.ss_currentRelation),
						 s->kind == ALMANAC_ACCESS_GET || s->kind == ALMANAC_ACCESS_MULTIGET ?
						 ALMANAC_ACCESS_POINT : 0);
	if (s->lock_mode != NoLock)
	{
		s->lock_qual = node->ss.ps.qual;
		node->ss.ps.qual = NULL;
	}
	s->nested_close.func = scan_nested_close;
	s->nested_close.arg = s;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &s->nested_close);

	/*
	 * The scan is no open reader of its own (kv/nested.h): its query's
	 * ExecutorStart_hook registers the query with the same snapshot's
	 * command id, in the same subtransaction, before the executor starts
	 * and so before the scan begins (starting may run writes: a partition's
	 * initial pruning), until its executor state's memory (es_query_cxt)
	 * goes, later than the scan ends.  The one scan begun otherwise,
	 * EvalPlanQual's copy, runs within its query with the query's snapshot
	 * but in an executor state of its own: registered, it would make the
	 * statement's own merges keep priors, for a copy of one of its scans,
	 * where the merge leaves out its other scans (a statement does not read
	 * its own writes through them).
	 */
	row_ids_begin(s, estate, fs->scan.scanrelid);
	if (s->rowids != NULL)
	{
		almanac_nested_lock_scan_open(s->snapshot->curcid, s->a.store, s->a.cf_id, &s->no_batch);
		s->locks_for_select = true;
	}

	/*
	 * A plain read of many rows decodes only the columns the query uses
	 * (plan.c): the others stay NULL, and when no key column is used the key
	 * is not decoded.  Not a scan feeding an UPDATE or DELETE (modify.c
	 * reads their rows), and not a Get, whose one row is not worth the
	 * setup.  A row locked late is read again with the same columns: the
	 * re-check of EvalPlanQual uses no others.
	 */
	if (s->kind != ALMANAC_ACCESS_GET && s->lock_mode == NoLock &&
		estate->es_plannedstmt->commandType == CMD_SELECT)
	{
		Bitmapset  *needed = NULL;
		ListCell   *lc2;

		foreach(lc2, (List *) list_nth(fs->fdw_private, ALMANAC_PRIV_NEEDED))
			needed = bms_add_member(needed, intVal(lfirst(lc2)) - FirstLowInvalidHeapAttributeNumber);
		almanac_access_need(&s->a, needed);
	}
	/*
	 * fdw_exprs: the equality values, then lower, upper, array as present.
	 * An equality value that is a Const (the usual case) is used as it is,
	 * not compiled into an expression program at each execution.
	 */
	foreach(lc, fs->fdw_exprs)
	{
		Expr	   *e = lfirst(lc);

		if (foreach_current_index(lc) < s->neq && IsA(e, Const))
			states = lappend(states, e);
		else
			states = lappend(states, ExecInitExpr(e, (PlanState *) node));
	}
	s->eq_states = list_truncate(list_copy(states), s->neq);
	n = s->neq;
	if (s->lower_bound >= 0)
		s->lower_state = list_nth(states, n++);
	if (s->upper_bound >= 0)
		s->upper_state = list_nth(states, n++);
	if (s->kind == ALMANAC_ACCESS_MULTIGET)
		s->array_state = list_nth(states, n++);
	Assert(n == list_length(states));

	/*
	 * A scan that may pass over rows the snapshot does not see decodes each
	 * into a context reset for the next; a Get decodes its one row where
	 * IterateForeignScan runs, in memory the executor resets per row.
	 */
	if (s->kind != ALMANAC_ACCESS_GET)
		s->rowcxt = AllocSetContextCreate(estate->es_query_cxt, "almanac scan row",
										  ALLOCSET_SMALL_SIZES);
	if (s->kind == ALMANAC_ACCESS_MULTIGET)
		s->scancxt = AllocSetContextCreate(estate->es_query_cxt, "almanac scan keys",
										   ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&s->lower);
	initStringInfo(&s->upper);
}

/* evaluate a key value (a Const or an ExprState); false if no key can hold it */
static bool
key_value(Node *expr, ExprContext *econtext, Oid typid, Datum *value)
{
	bool		isnull;

	if (IsA(expr, Const))
	{
		*value = ((Const *) expr)->constvalue;
		isnull = ((Const *) expr)->constisnull;
	}
	else
		*value = ExecEvalExpr((ExprState *) expr, econtext, &isnull);
	return !isnull && almanac_key_value_in_domain(typid, *value);
}

/*
 * MULTIGET: the keys of the array's elements (values[0 .. neq-1] are the
 * equality columns), in byte order and distinct, so that each row comes
 * back once, as "= ANY" returns it.  Elements no key can hold (NULL, a
 * negative integer) match nothing.  In the scan's key context.
 */
static void
multiget_keys(AlmanacScanState *s, ExprContext *econtext, Datum *values)
{
	AlmanacKvTable *t = s->a.t;
	Oid			typid = t->layout.typids[s->neq];
	Datum		arraydatum;
	bool		isnull;
	ArrayType  *arr;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			n = 0;

	arraydatum = ExecEvalExpr(s->array_state, econtext, &isnull);
	if (isnull)
		return;
	arr = DatumGetArrayTypeP(arraydatum);
	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
					  &elems, &nulls, &nelems);

	s->keys = palloc(sizeof(char *) * Max(nelems, 1));
	s->klens = palloc(sizeof(size_t) * Max(nelems, 1));
	for (int i = 0; i < nelems; i++)
	{
		StringInfoData buf;

		if (nulls[i] || !almanac_key_value_in_domain(typid, elems[i]))
			continue;
		values[s->neq] = elems[i];
		initStringInfo(&buf);
		almanac_kv_key(t, &buf, t->layout.nkeys, values, false);
		s->keys[n] = buf.data;
		s->klens[n] = buf.len;
		n++;
	}
	s->nkeys = almanac_keys_sort_unique(n, s->keys, s->klens);
}

/*
 * MULTIGET: compute the keys, then look them up (the transaction's buffered
 * writes first, then the reader's row cache, the rest with one MultiGet).
 */
static void
multiget_start(AlmanacScanState *s, ExprContext *econtext, Datum *values)
{
	MemoryContext old;

	s->nkeys = 0;
	s->next = 0;
	MemoryContextReset(s->scancxt);
	old = MemoryContextSwitchTo(s->scancxt);
	multiget_keys(s, econtext, values);
	s->values = palloc(sizeof(char *) * Max(s->nkeys, 1));
	s->vlens = palloc(sizeof(size_t) * Max(s->nkeys, 1));
	almanac_access_lookup_many(&s->a, s->nkeys, s->keys, s->klens, s->values, s->vlens);
	MemoryContextSwitchTo(old);
}

/* compute the key, the set of keys, or the iterator's bounds; false: no rows */
static bool
scan_start(ForeignScanState *node, AlmanacScanState *s)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	AlmanacKvTable *t = s->a.t;
	Datum	   *values = palloc(sizeof(Datum) * t->layout.nkeys);
	int			i = 0;
	ListCell   *lc;

	resetStringInfo(&s->lower);
	resetStringInfo(&s->upper);
	foreach(lc, s->eq_states)
	{
		if (!key_value(lfirst(lc), econtext, t->layout.typids[i], &values[i]))
			return false;
		i++;
	}
	if (s->a.cf == NULL)
		return false;			/* the column family was never created: empty */

	switch (s->kind)
	{
		case ALMANAC_ACCESS_GET:
			almanac_kv_key(t, &s->lower, s->neq, values, false);
			return true;
		case ALMANAC_ACCESS_MULTIGET:
			multiget_start(s, econtext, values);
			return s->nkeys > 0;
		default:
			break;
	}

	/* iterators: the equality prefix, narrowed by the range's bounds */
	if (s->lower_state != NULL)
	{
		bool		isnull;

		values[s->neq] = ExecEvalExpr(s->lower_state, econtext, &isnull);
		if (isnull)
			return false;
		(void) almanac_key_encode_bound(&s->lower, &t->layout, s->neq + 1, values,
										s->lower_bound);
	}
	else
		almanac_kv_key(t, &s->lower, s->neq, values, true);

	if (s->upper_state != NULL)
	{
		bool		isnull;

		values[s->neq] = ExecEvalExpr(s->upper_state, econtext, &isnull);
		if (isnull ||
			!almanac_key_encode_bound(&s->upper, &t->layout, s->neq + 1, values,
									  s->upper_bound))
			return false;
	}
	else
	{
		StringInfoData prefix;

		initStringInfo(&prefix);
		almanac_kv_key(t, &prefix, s->neq, values, true);
		almanac_prefix_end(&prefix, &s->upper);
	}
	/* an empty range, such as BETWEEN 10 AND 5 */
	return s->upper.len == 0 ||
		almanac_key_cmp(s->lower.data, s->lower.len, s->upper.data, s->upper.len) < 0;
}

/*
 * The scan of an UPDATE or DELETE target (plan.c: scan_lock), on a row the
 * snapshot sees in slot: if the row meets the scan's conditions (rows that
 * do not are neither locked nor returned), lock its key, and follow a newer
 * version committed meanwhile: 40001 under REPEATABLE READ and
 * SERIALIZABLE, under READ COMMITTED the newest version replaces the row in
 * slot if it meets the conditions too (checked again, as the heap's
 * EvalPlanQual does), or, deleted, the row is skipped.  The conditions are
 * the scan's lock_qual, which the executor does not evaluate once more.
 * Returns whether the row is to be returned.  (A row a command the
 * statement triggered changed meanwhile is modify.c's to refuse.)
 */
static bool
lock_row(ForeignScanState *node, AlmanacScanState *s, const char *key, size_t klen,
		 TupleTableSlot *slot)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	AlmanacKeyNow now;

	econtext->ecxt_scantuple = slot;
	if (s->lock_qual != NULL && !ExecQual(s->lock_qual, econtext))
		return false;
	(void) almanac_access_lock_key(&s->a, key, klen, s->lock_mode, LockWaitBlock, s->snapshot,
								   &now);
	if (!now.changed)
		return true;
	if (IsolationUsesXactSnapshot())
		almanac_concurrent_update_error(s->a.t);
	if (!now.live)
		return false;
	almanac_row_to_slot(&s->a, slot, key, klen, now.tuple, now.tuple_len);
	return s->lock_qual == NULL || ExecQual(s->lock_qual, econtext);
}

/*
 * The next row of an iterator scan that locks its rows as it reads them
 * (lock_row) or gives them row ids (row_id_set)
 */
static bool
iter_next_keyed(ForeignScanState *node, AlmanacScanState *s, TupleTableSlot *slot)
{
	for (;;)
	{
		AlmanacKvEntry e;
		MemoryContext old;
		bool		more;
		bool		keep = false;

		MemoryContextReset(s->rowcxt);
		old = MemoryContextSwitchTo(s->rowcxt);
		more = almanac_access_iter_next(&s->a, s->snapshot, &e);
		if (more && e.visible && s->lock_mode != NoLock)
		{
			/* a copy: locking catches the reader up, under the open iterator */
			char	   *key = palloc(e.klen);

			memcpy(key, e.key, e.klen);
			almanac_row_to_slot(&s->a, slot, key, e.klen, e.tuple, e.tuple_len);
			keep = lock_row(node, s, key, e.klen, slot);
		}
		else if (more && e.visible)
		{
			almanac_row_to_slot(&s->a, slot, e.key, e.klen, e.tuple, e.tuple_len);
			row_id_set(s, slot, e.key, e.klen);
			keep = true;
		}
		MemoryContextSwitchTo(old);
		if (!more)
		{
			ExecClearTuple(slot);
			return false;
		}
		if (keep)
			return true;
	}
}

/* IterateForeignScan: the next row the snapshot sees, or an empty slot */
TupleTableSlot *
almanacIterateForeignScan(ForeignScanState *node)
{
	AlmanacScanState *s = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	ExecClearTuple(slot);
	if (!s->started)
	{
		s->started = true;
		s->done = !scan_start(node, s);
		if (!s->done && s->kind == ALMANAC_ACCESS_GET)
		{
			/* its one row, in the executor's per-row memory */
			s->done = true;
			if (!almanac_access_get_row(&s->a, s->snapshot, s->lower.data, s->lower.len, slot))
				return slot;
			if (s->lock_mode != NoLock &&
				!lock_row(node, s, s->lower.data, s->lower.len, slot))
				ExecClearTuple(slot);
			else if (s->rowids != NULL)
				row_id_set(s, slot, s->lower.data, s->lower.len);
			return slot;
		}
		/* a rescan opens a new iterator for its range */
		if (!s->done && s->kind != ALMANAC_ACCESS_MULTIGET)
			almanac_access_iter_begin(&s->a, s->lower.data, s->lower.len,
									  s->upper.data, s->upper.len,
									  s->direction < 0 ? ALMANAC_ITER_BACKWARD : 0);
	}
	if (s->done)
		return slot;

	if (s->kind == ALMANAC_ACCESS_MULTIGET)
	{
		while (s->next < s->nkeys)
		{
			int			i = s->next++;
			MemoryContext old;
			bool		found;

			if (s->values[i] == NULL)
				continue;
			MemoryContextReset(s->rowcxt);
			old = MemoryContextSwitchTo(s->rowcxt);
			found = almanac_access_value_to_slot(&s->a, s->snapshot, s->keys[i], s->klens[i],
												 s->values[i], s->vlens[i], slot);
			if (found && s->lock_mode != NoLock)
				found = lock_row(node, s, s->keys[i], s->klens[i], slot);
			else if (found && s->rowids != NULL)
				row_id_set(s, slot, s->keys[i], s->klens[i]);
			MemoryContextSwitchTo(old);
			if (found)
				return slot;
		}
		/* the last key's row may have been refused by lock_row: not returned */
		s->done = true;
		ExecClearTuple(slot);
		return slot;
	}

	if (s->lock_mode != NoLock || s->rowids != NULL)
	{
		if (!iter_next_keyed(node, s, slot))
			s->done = true;
	}
	else if (!almanac_access_iter_next_row(&s->a, s->snapshot, slot, s->rowcxt))
		s->done = true;
	return slot;
}

/*
 * Lock the key of a row locked late (almanacRefetchForeignRow) in mode,
 * waiting as wait says, and read it as it is now, in now.  Returns whether
 * the row is to be returned: not when SKIP LOCKED found the key locked;
 * not when a command later than the scan's snapshot changed or deleted it
 * (a function its WHERE clause calls, a statement run since a cursor was
 * declared: kv/nested.h keeps their writes apart), as the heap's lock,
 * finding the tuple modified by a later command of the transaction, skips
 * it; not when another transaction deleted it since the snapshot (READ
 * COMMITTED).  40001 under REPEATABLE READ and SERIALIZABLE when another
 * transaction committed a version the snapshot does not see; under READ
 * COMMITTED now.changed says that now holds that newer row.  FOR KEY SHARE
 * minds only a deletion: of a row updated meanwhile, its key kept, now
 * holds the row the snapshot sees, unchanged.
 */
static bool
refetch_lock(AlmanacScanState *s, const char *key, size_t klen, LOCKMODE mode,
			 LockWaitPolicy wait, AlmanacKeyNow *now)
{
	const char *prior;
	size_t		prior_len;

	Assert(s->locks_for_select);
	if (almanac_nested_prior(s->a.store, s->a.cf_id, key, klen, s->snapshot->curcid,
							 &prior, &prior_len))
		return false;
	if (!almanac_access_lock_key(&s->a, key, klen, mode, wait, s->snapshot, now))
		return false;			/* SKIP LOCKED */
	if (almanac_nested_written_after(s->a.store, s->a.cf_id, key, klen, s->snapshot->curcid))
		return false;
	if (now->changed && mode == AccessShareLock && now->live && now->seen_live)
	{
		/*
		 * FOR KEY SHARE conflicts only with a DELETE and a change of the
		 * key (which deletes the row at this key): a row another
		 * transaction updated since the snapshot, its key kept, is locked
		 * and returned as the snapshot sees it, at every isolation level,
		 * as the heap's heap_lock_tuple locks such a tuple (TM_Ok: no
		 * 40001, no re-check of the newest version) where every stronger
		 * lock fails.  A row deleted and inserted again meanwhile passes
		 * for one updated, which the heap would refuse: the key exists
		 * and is locked all the same.
		 */
		now->tuple = now->seen_tuple;
		now->tuple_len = now->seen_tuple_len;
		now->changed = false;
	}
	if (now->changed && IsolationUsesXactSnapshot())
		almanac_concurrent_update_error(s->a.t);
	return now->live;
}

/* the key lock of a row mark's strength: the heap's tuple lock mode for it (kv/keylock.h) */
static LOCKMODE
mark_lock_mode(RowMarkType mark)
{
	switch (mark)
	{
		case ROW_MARK_EXCLUSIVE:
			return AccessExclusiveLock;
		case ROW_MARK_NOKEYEXCLUSIVE:
			return ExclusiveLock;
		case ROW_MARK_SHARE:
			return RowShareLock;
		case ROW_MARK_KEYSHARE:
			return AccessShareLock;
		default:
			elog(ERROR, "almanac: row mark %d locks no row", (int) mark);
	}
	return NoLock;				/* keep the compiler quiet */
}

/*
 * RefetchForeignRow: LockRows locks a row of a table locked late (fdw.c:
 * almanacGetForeignRowMarkType) as it returns the row, where the heap calls
 * heap_lock_tuple.  rowid is the ctid the scan gave the row (row_id_set).
 * The key is locked with the mark's strength (mark_lock_mode), waiting as
 * erm->waitPolicy says (NOWAIT: 55P03), and slot receives (refetch_lock):
 * nothing, and LockRows skips the row (SKIP LOCKED, changed by a later
 * command, deleted); the newest row with *updated set, when another
 * transaction committed a change the snapshot does not see (READ
 * COMMITTED: LockRows re-checks the query's conditions on it with
 * EvalPlanQual, whose copy of this scan returns the row as it is, since the
 * key conditions the scan applied hold for any row of the key, and then
 * applies the scan's other conditions); or the row itself.
 */
void
almanacRefetchForeignRow(EState *estate, ExecRowMark *erm, Datum rowid,
						 TupleTableSlot *slot, bool *updated)
{
	RowIds	   *ids = erm->ermExtra;
	ItemPointer tid = (ItemPointer) DatumGetPointer(rowid);
	uint64		id;
	KeyBytes	key;
	AlmanacKeyNow now;
	MemoryContext old;

	*updated = false;
	ExecClearTuple(slot);
	if (ids == NULL || !row_id_from_tid(tid, &id) || id >= ids->n)
		elog(ERROR, "almanac: row (%u,%u) of foreign table \"%s\" was not read by this query",
			 ItemPointerGetBlockNumberNoCheck(tid), ItemPointerGetOffsetNumberNoCheck(tid),
			 RelationGetRelationName(erm->relation));
	key = ids->keys[id];

	MemoryContextReset(ids->rowcxt);
	old = MemoryContextSwitchTo(ids->rowcxt);
	if (refetch_lock(ids->scan, key.data, key.len,
					 mark_lock_mode(erm->markType),
					 erm->waitPolicy, &now))
	{
		almanac_row_to_slot(&ids->scan->a, slot, key.data, key.len, now.tuple, now.tuple_len);
		ExecMaterializeSlot(slot);
		slot->tts_tid = *tid;
		slot->tts_tableOid = erm->relid;
		*updated = now.changed;
	}
	MemoryContextSwitchTo(old);
}

/* ReScanForeignScan: start again, recomputing the key values (they may be Params) */
void
almanacReScanForeignScan(ForeignScanState *node)
{
	AlmanacScanState *s = node->fdw_state;

	almanac_access_iter_end(&s->a);
	s->started = false;
	s->done = false;
}

/* EndForeignScan: release what the scan holds (the reset callback would too) */
void
almanacEndForeignScan(ForeignScanState *node)
{
	AlmanacScanState *s = node->fdw_state;

	if (s)
	{
		scan_nested_close(s);
		almanac_access_release(&s->a);
	}
}

/* ExplainForeignScan: the access kind, the column family, and in VERBOSE the key conditions */
void
almanacExplainForeignScan(ForeignScanState *node, struct ExplainState *es)
{
	ForeignScan *fs = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	AlmanacTableOptions *opts = almanac_table_options(RelationGetRelid(rel));
	AlmanacAccessKind kind = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_KIND));
	int			neq = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_NEQ));
	int			direction = intVal(list_nth(fs->fdw_private, ALMANAC_PRIV_DIRECTION));
	List	   *pushed = list_nth(fs->fdw_private, ALMANAC_PRIV_BOUNDS);
	int			nkeys = list_length(opts->key_columns);
	const char *access = NULL;

	switch (kind)
	{
		case ALMANAC_ACCESS_GET:
			access = "point lookup (Get)";
			break;
		case ALMANAC_ACCESS_MULTIGET:
			access = "multi-key lookup (MultiGet)";
			break;
		case ALMANAC_ACCESS_PREFIX:
			access = psprintf("prefix scan on %d of %d key columns", neq, nkeys);
			break;
		case ALMANAC_ACCESS_RANGE:
			access = psprintf("range scan on key column %d of %d", neq + 1, nkeys);
			break;
		case ALMANAC_ACCESS_FULL:
			access = "full scan of key prefix";
			break;
	}
	ExplainPropertyText("Almanac Access", access, es);
	if (direction != 0)
		ExplainPropertyText("Key Order", direction > 0 ? "ascending" : "descending", es);
	ExplainPropertyText("Column Family", opts->column_family, es);
	if (es->verbose)
	{
		if (opts->key_prefix)
			ExplainPropertyText("Key Prefix", opts->key_prefix, es);
		if (pushed != NIL)
		{
			List	   *context = deparse_context_for(RelationGetRelationName(rel),
													  RelationGetRelid(rel));
			StringInfoData buf;
			ListCell   *lc;

			initStringInfo(&buf);
			foreach(lc, pushed)
			{
				if (buf.len > 0)
					appendStringInfoString(&buf, " AND ");
				appendStringInfoString(&buf, deparse_expression(lfirst(lc), context, false, false));
			}
			ExplainPropertyText("Key Conditions", buf.data, es);
		}
	}
}
