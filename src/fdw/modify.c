/*-------------------------------------------------------------------------
 *
 * modify.c
 *	  Writing foreign tables: INSERT (batched, and COPY), UPDATE, DELETE.
 *
 * Each row becomes an intent (codec/visibility.h) in the statement's
 * WriteBatchWithIndex (a writer of kv/access.h), merged into the
 * transaction's batch when the statement ends (kv/xact.h), so a failed
 * statement leaves nothing behind and the transaction reads its own writes.  UPDATE and DELETE identify the old
 * row by a whole-row junk column; an UPDATE that changes a key column
 * deletes the old key and inserts the new one.
 *
 * COPY FROM takes the bulk path (kv/bulk.h) where it can: its rows become SST
 * files that the store owner ingests.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/appendinfo.h"
#include "parser/analyze.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "almanac.h"
#include "kv/bulk.h"
#include "fdw/fdw.h"
#include "store/store.h"
#include "codec/valuecodec.h"
#include "codec/visibility.h"
#include "kv/xact.h"

typedef struct AlmanacModifyState
{
	AlmanacAccess a;
	AlmanacKvWriter w;			/* the statement's writes */
	AttrNumber	wholerow_attno;
	TupleDesc	desc;
	StringInfoData key;
	StringInfoData oldkey;
	StringInfoData value;
	MemoryContext rowcxt;
	bool		do_nothing;		/* INSERT ... ON CONFLICT DO NOTHING */
	bool		row_by_row;		/* INSERT: no batches (insert_row_by_row) */
	AlmanacBulk *bulk;			/* COPY FROM by SST files, or NULL */
} AlmanacModifyState;

/*
 * UPDATE and DELETE need the old row: its key, and the new row's unchanged
 * columns.  A whole-row Var of type record named "wholerow", exactly as the
 * core asks for on an UPDATE of any foreign table: through a partitioned
 * table or an inheritance parent, the row identities of all children must
 * be equal() but for the varno, so a Var of each child's own row type
 * conflicted ("conflicting uses of row-identity name").
 */
static void
almanacAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
							   RangeTblEntry *target_rte, Relation target_relation)
{
	Var		   *var = makeVar(rtindex, InvalidAttrNumber, RECORDOID, -1, InvalidOid, 0);

	add_row_identity_var(root, var, rtindex, "wholerow");
}

/*
 * Writing through rinfo's table with privileges perms needs the same
 * privileges on every table mapping the same keys (keyspace.c), for the
 * role the statement runs as (a view's owner through a view).
 */
static void
check_key_space(ResultRelInfo *rinfo, EState *estate, AclMode perms)
{
	Oid			userid = GetUserId();

	if (rinfo->ri_RangeTableIndex > 0)
	{
		RangeTblEntry *rte = exec_rt_fetch(rinfo->ri_RangeTableIndex, estate);

		if (OidIsValid(rte->checkAsUser))
			userid = rte->checkAsUser;
	}
	almanac_check_key_space_access(rinfo->ri_RelationDesc, userid, perms);
}

/* begin writing through rinfo's table with privileges perms */
static AlmanacModifyState *
modify_begin(ResultRelInfo *rinfo, EState *estate, AclMode perms)
{
	AlmanacModifyState *m = palloc0(sizeof(AlmanacModifyState));

	check_key_space(rinfo, estate, perms);

	/* it reads keys one by one (duplicates, key locks): lazily */
	almanac_access_begin(&m->a, almanac_table_open(rinfo->ri_RelationDesc),
						 ALMANAC_ACCESS_CREATE | ALMANAC_ACCESS_POINT);
	almanac_writer_begin(&m->w, &m->a, estate->es_output_cid, estate);
	m->desc = RelationGetDescr(rinfo->ri_RelationDesc);
	m->rowcxt = AllocSetContextCreate(estate->es_query_cxt, "almanac modify row",
									  ALLOCSET_SMALL_SIZES);
	initStringInfo(&m->key);
	initStringInfo(&m->oldkey);
	initStringInfo(&m->value);
	return m;
}

/*
 * INSERT ... ON CONFLICT: DO NOTHING skips a row whose key exists (the
 * foreign table has no index to infer a conflict target from, so only the
 * form without one reaches here); DO UPDATE cannot be planned against a
 * foreign table, but is refused here too should a plan carry it.
 */
static bool
on_conflict_do_nothing(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	ModifyTable *plan = (ModifyTable *) mtstate->ps.plan;

	if (plan == NULL || plan->onConflictAction == ONCONFLICT_NONE)
		return false;
	if (plan->onConflictAction == ONCONFLICT_UPDATE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("INSERT ... ON CONFLICT DO UPDATE is not supported on almanac foreign table \"%s\"",
						RelationGetRelationName(rinfo->ri_RelationDesc)),
				 errhint("Declare the table with OPTIONS (upsert 'true') to let INSERT overwrite, or use ON CONFLICT DO NOTHING.")));
	return true;
}

/* planstate_tree_walker: does a node under an INSERT compute a volatile function per row? */
static bool
calls_volatile(PlanState *ps, void *context)
{
	Plan	   *plan = ps->plan;

	if (contain_volatile_functions((Node *) plan->targetlist) ||
		contain_volatile_functions((Node *) plan->qual))
		return true;
	if (IsA(plan, ValuesScan) &&
		contain_volatile_functions((Node *) ((ValuesScan *) plan)->values_lists))
		return true;
	if ((IsA(plan, NestLoop) || IsA(plan, MergeJoin) || IsA(plan, HashJoin)) &&
		contain_volatile_functions((Node *) ((Join *) plan)->joinqual))
		return true;
	return planstate_tree_walker(ps, calls_volatile, context);
}

/*
 * Must an INSERT hand its rows over one by one, not in batches?  A batch's
 * rows are written only when it is full, after the volatile functions of
 * the rows behind the first have run: those would not see the rows ahead of
 * theirs in the batch, which on the heap are inserted already (a function
 * that updates the row the statement inserted just before found none).
 * (The core writes the pending batch before a BEFORE ROW trigger runs.)
 */
static bool
insert_row_by_row(ModifyTableState *mtstate)
{
	return mtstate->ps.plan != NULL && calls_volatile(outerPlanState(mtstate), NULL);
}

static void
almanacBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						  List *fdw_private, int subplan_index, int eflags)
{
	AlmanacModifyState *m;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	m = modify_begin(rinfo, mtstate->ps.state,
					 mtstate->operation == CMD_INSERT ? ACL_INSERT :
					 mtstate->operation == CMD_UPDATE ? ACL_UPDATE : ACL_DELETE);
	if (mtstate->operation == CMD_UPDATE || mtstate->operation == CMD_DELETE)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		m->wholerow_attno = ExecFindJunkAttributeInTlist(subplan->targetlist, "wholerow");
		if (!AttributeNumberIsValid(m->wholerow_attno))
			elog(ERROR, "almanac: wholerow junk column missing");
	}
	m->do_nothing = on_conflict_do_nothing(mtstate, rinfo);
	if (mtstate->operation == CMD_INSERT)
		m->row_by_row = insert_row_by_row(mtstate);
	rinfo->ri_FdwState = m;
}

static void bulk_fallback(void *arg, const char *key, size_t klen,
						  const char *image, uint32 image_len);

/*
 * COPY FROM (no plan: tuple routing of an INSERT has one) loads by SST
 * files when almanac.bulk_copy is on.  Not with triggers: a row trigger
 * could read the table, and would see the rows of the chunks already
 * loaded.
 */
static void
almanacBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	AlmanacModifyState *m;

	/*
	 * A foreign partition the same UPDATE updates, into which it moves a row
	 * of another partition: the core begins the insert on the ResultRelInfo
	 * the UPDATE began, and a second state would replace the first.  The
	 * UPDATE's rows would then go through the insert's state (which has no
	 * old row column: a crash) or, updated already, never be merged into the
	 * transaction's writes (a silent loss).  The rows moved in go through the
	 * UPDATE's writer; EndForeignModify ends it, EndForeignInsert finds it
	 * ended.
	 */
	if (rinfo->ri_FdwState != NULL)
	{
		check_key_space(rinfo, mtstate->ps.state, ACL_INSERT);
		return;
	}
	m = modify_begin(rinfo, mtstate->ps.state, ACL_INSERT);

	if (mtstate->ps.plan == NULL && almanac_bulk_copy && rinfo->ri_TrigDesc == NULL)
		m->bulk = almanac_bulk_begin(&m->a, bulk_fallback, m);
	m->do_nothing = on_conflict_do_nothing(mtstate, rinfo);
	m->row_by_row = insert_row_by_row(mtstate);
	rinfo->ri_FdwState = m;
}

/* the key of a row given as values/isnull; a NULL key column is 23502 */
static void
row_key(AlmanacModifyState *m, StringInfo buf, const Datum *values, const bool *isnull)
{
	AlmanacKvTable *t = m->a.t;

	for (int i = 0; i < t->layout.nkeys; i++)
	{
		AttrNumber attno = t->keyattrs[i];

		if (isnull[attno - 1])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in key column \"%s\" of foreign table \"%s\"",
							t->layout.names[i], RelationGetRelationName(t->rel)),
					 errdetail("Key columns form the RocksDB key and cannot be NULL.")));
		m->a.keyvalues[i] = values[attno - 1];
	}
	resetStringInfo(buf);
	almanac_key_encode(buf, &t->layout, t->layout.nkeys, m->a.keyvalues, false);
}

/* the row's value-codec image, in m->value */
static void
encode_row(AlmanacModifyState *m, TupleTableSlot *slot)
{
	resetStringInfo(&m->value);
	almanac_value_encode(&m->value, m->desc, m->a.t->values,
						 slot->tts_values, slot->tts_isnull, m->a.t->is_key);
}

static void
insert_row(AlmanacModifyState *m, StringInfo key, TupleTableSlot *slot)
{
	encode_row(m, slot);
	(void) almanac_writer_insert(&m->w, key->data, key->len, m->value.data, m->value.len,
								 m->do_nothing);
}

/* the row's work is done: back to the caller's context, free the row's memory */
static void
row_end(AlmanacModifyState *m, MemoryContext old)
{
	MemoryContextSwitchTo(old);
	MemoryContextReset(m->rowcxt);
}

/*
 * The core checks no partition constraint of a foreign partition (neither
 * on INSERT into the partition itself nor on UPDATE, which moves a heap
 * row to its new partition): a row the partition may not hold is refused
 * here, or it would be stored under the wrong partition.
 */
static void
check_partition(ResultRelInfo *rinfo, TupleTableSlot *slot, EState *estate,
				bool update)
{
	if (!rinfo->ri_RelationDesc->rd_rel->relispartition ||
		ExecPartitionCheck(rinfo, slot, estate, false))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("new row for almanac foreign partition \"%s\" violates its partition constraint",
					RelationGetRelationName(rinfo->ri_RelationDesc)),
			 update
			 ? errhint("An UPDATE cannot move a row out of an almanac foreign partition: DELETE it and INSERT it through the partitioned table.")
			 : errhint("INSERT through the partitioned table, which routes each row to its partition.")));
}

static TupleTableSlot *
almanacExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	AlmanacModifyState *m = rinfo->ri_FdwState;
	MemoryContext old;

	check_partition(rinfo, slot, estate, false);
	old = MemoryContextSwitchTo(m->rowcxt);
	slot_getallattrs(slot);
	row_key(m, &m->key, slot->tts_values, slot->tts_isnull);
	encode_row(m, slot);
	if (m->bulk)
	{
		MemoryContextSwitchTo(old);
		if (almanac_bulk_add(m->bulk, m->key.data, m->key.len, m->value.data, m->value.len))
		{
			MemoryContextReset(m->rowcxt);
			return slot;
		}
		/* refused: this row and the rest go row by row */
		m->bulk = NULL;
		MemoryContextSwitchTo(m->rowcxt);
	}
	if (!almanac_writer_insert(&m->w, m->key.data, m->key.len, m->value.data, m->value.len,
							   m->do_nothing))
		slot = NULL;			/* ON CONFLICT DO NOTHING */
	row_end(m, old);
	almanac_writer_row_done(&m->w);
	return slot;
}

/* a row of a bulk-load chunk the owner refused: the per-row path */
static void
bulk_fallback(void *arg, const char *key, size_t klen, const char *image, uint32 image_len)
{
	AlmanacModifyState *m = arg;
	MemoryContext old = MemoryContextSwitchTo(m->rowcxt);

	(void) almanac_writer_insert(&m->w, key, klen, image, image_len, m->do_nothing);
	row_end(m, old);
	almanac_writer_row_done(&m->w);
}

static TupleTableSlot **
almanacExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
							  TupleTableSlot **slots, TupleTableSlot **planSlots,
							  int *numSlots)
{
	for (int i = 0; i < *numSlots; i++)
		almanacExecForeignInsert(estate, rinfo, slots[i], planSlots ? planSlots[i] : NULL);
	return slots;
}

static int
almanacGetForeignModifyBatchSize(ResultRelInfo *rinfo)
{
	AlmanacModifyState *m = rinfo->ri_FdwState;

	/*
	 * Rows are buffered in the statement batch anyway.  RETURNING needs them
	 * one by one, and so does ON CONFLICT DO NOTHING: a batch reports how
	 * many rows it inserted, not which; and so do volatile functions
	 * (insert_row_by_row).
	 */
	return rinfo->ri_projectReturning ||
		(m != NULL && (m->do_nothing || m->row_by_row)) ? 1 : 1000;
}

/* the key of the old row, from the wholerow junk column */
static void
old_row_key(AlmanacModifyState *m, TupleTableSlot *planSlot)
{
	bool		isnull;
	Datum		d = ExecGetJunkAttribute(planSlot, m->wholerow_attno, &isnull);
	HeapTupleHeader td;
	HeapTupleData tuple;
	Datum	   *values = palloc(sizeof(Datum) * m->desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * m->desc->natts);

	if (isnull)
		elog(ERROR, "almanac: wholerow is NULL");
	td = DatumGetHeapTupleHeader(d);
	tuple.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = td;
	heap_deform_tuple(&tuple, m->desc, values, nulls);
	row_key(m, &m->oldkey, values, nulls);
}

/*
 * Did this statement write oldkey already?  A join can hand UPDATE or DELETE
 * the same row twice; as for a heap row its command already modified, the
 * second time does nothing.  (Chunks a very large statement has shipped
 * early are no longer in its batch: the owner then applies the second write.)
 */
static bool
self_modified(AlmanacModifyState *m)
{
	return almanac_writer_wrote(&m->w, m->oldkey.data, m->oldkey.len);
}

/*
 * Lock oldkey and find the version an update or delete of it is based on:
 * the newest, which no other writer can change until the transaction ends.
 * The scan that found the row locked it already (scan.c), and under READ
 * COMMITTED returned the newest version; so that version changes here only
 * if it was deleted after the scan returned it but before it was locked.
 * Under REPEATABLE READ and SERIALIZABLE a version the snapshot does not see
 * is 40001.  Returns false when there is no row any more (READ COMMITTED):
 * the row is skipped, as a heap UPDATE skips a row deleted meanwhile.
 */
static bool
based_on(AlmanacModifyState *m, LOCKMODE mode, FullTransactionId *expected)
{
	AlmanacKeyNow now;

	almanac_writer_lock_key(&m->w, m->oldkey.data, m->oldkey.len, mode, GetActiveSnapshot(), &now);
	if (now.changed && IsolationUsesXactSnapshot())
		almanac_concurrent_update_error(m->a.t);
	*expected = now.xid;
	return now.live;
}

static bool
same_key(const StringInfoData *a, const StringInfoData *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/*
 * The old row an UPDATE (newkey: the new row's key) or DELETE (newkey NULL)
 * acts on, from the plan's junk column: false (skip it) when this statement
 * already changed it, or when it is gone once its key lock is granted; else
 * *expected is the version it is based on.  The lock has the heap's
 * strength (kv/keylock.h): FOR NO KEY UPDATE's for an UPDATE that keeps the
 * key, FOR UPDATE's for the others.  A row a command the statement
 * triggered has changed since the statement began is refused with the
 * heap's error (27000, nested.h): the statement's write, computed from the
 * row it read, would replace the newer one.
 */
static bool
row_target(AlmanacModifyState *m, TupleTableSlot *planSlot, const StringInfoData *newkey,
		   FullTransactionId *expected)
{
	bool		delete = newkey == NULL;

	old_row_key(m, planSlot);
	if (self_modified(m))
		return false;
	if (almanac_writer_written_later(&m->w, m->oldkey.data, m->oldkey.len))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 delete
				 ? errmsg("row of foreign table \"%s\" to be deleted was already modified by an operation triggered by the current command",
						  RelationGetRelationName(m->a.t->rel))
				 : errmsg("row of foreign table \"%s\" to be updated was already modified by an operation triggered by the current command",
						  RelationGetRelationName(m->a.t->rel)),
				 errhint("Consider using an AFTER trigger instead of a BEFORE trigger to propagate changes to other rows.")));
	return based_on(m, !delete && same_key(newkey, &m->oldkey) ? ExclusiveLock : AccessExclusiveLock,
					expected);
}

static TupleTableSlot *
almanacExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	AlmanacModifyState *m = rinfo->ri_FdwState;
	MemoryContext old;
	FullTransactionId expected;

	check_partition(rinfo, slot, estate, true);
	old = MemoryContextSwitchTo(m->rowcxt);
	slot_getallattrs(slot);
	row_key(m, &m->key, slot->tts_values, slot->tts_isnull);
	if (!row_target(m, planSlot, &m->key, &expected))
	{
		row_end(m, old);
		return NULL;
	}

	if (same_key(&m->key, &m->oldkey))
	{
		encode_row(m, slot);
		almanac_writer_put(&m->w, m->key.data, m->key.len,
						   m->a.t->opts->upsert ? ALMANAC_INTENT_UPSERT : ALMANAC_INTENT_UPDATE,
						   expected, m->value.data, m->value.len);
	}
	else
	{
		/* a new key moves the row */
		almanac_writer_put(&m->w, m->oldkey.data, m->oldkey.len, ALMANAC_INTENT_DELETE,
						   expected, NULL, 0);
		insert_row(m, &m->key, slot);
	}
	row_end(m, old);
	almanac_writer_row_done(&m->w);
	return slot;
}

static TupleTableSlot *
almanacExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
						 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	AlmanacModifyState *m = rinfo->ri_FdwState;
	MemoryContext old = MemoryContextSwitchTo(m->rowcxt);
	FullTransactionId expected;

	if (!row_target(m, planSlot, NULL, &expected))
	{
		row_end(m, old);
		return NULL;
	}
	almanac_writer_put(&m->w, m->oldkey.data, m->oldkey.len, ALMANAC_INTENT_DELETE,
					   expected, NULL, 0);

	/* RETURNING: the deleted row, copied into the slot */
	if (rinfo->ri_projectReturning)
	{
		bool		isnull;
		Datum		d = ExecGetJunkAttribute(planSlot, m->wholerow_attno, &isnull);
		HeapTupleData tuple;

		tuple.t_data = DatumGetHeapTupleHeader(d);
		tuple.t_len = HeapTupleHeaderGetDatumLength(tuple.t_data);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = RelationGetRelid(rinfo->ri_RelationDesc);
		ExecForceStoreHeapTuple(&tuple, slot, false);
		ExecMaterializeSlot(slot);
	}
	row_end(m, old);
	almanac_writer_row_done(&m->w);
	return slot;
}

/* the statement's writes become the transaction's */
static void
modify_end(AlmanacModifyState *m)
{
	if (m == NULL || m->w.stmt == NULL)
		return;
	if (m->bulk)
		almanac_bulk_end(m->bulk);
	m->bulk = NULL;
	almanac_writer_end(&m->w);
	almanac_access_release(&m->a);
}

static void
almanacEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	modify_end(rinfo->ri_FdwState);
}

static void
almanacEndForeignInsert(EState *estate, ResultRelInfo *rinfo)
{
	modify_end(rinfo->ri_FdwState);
}

static int
almanacIsForeignRelUpdatable(Relation rel)
{
	/* raw tables are read-only: their values are version images, not rows */
	if (almanac_table_open(rel)->opts->raw)
		return 0;
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

static post_parse_analyze_hook_type prev_post_parse_analyze_hook = NULL;

/*
 * INSERT ... ON CONFLICT with a conflict target, or DO UPDATE, on an almanac
 * foreign table: 0A000 with what to do instead.  The planner would refuse
 * it anyway, with 42P10 "there is no unique or exclusion constraint
 * matching the ON CONFLICT specification", which says nothing of the
 * table's key.  (A target must be inferred from a unique index, and DO
 * UPDATE needs one; a foreign table has no index.)
 */
static void
almanac_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze_hook)
		prev_post_parse_analyze_hook(pstate, query, jstate);

	if (query->commandType == CMD_INSERT && query->onConflict != NULL &&
		(query->onConflict->action == ONCONFLICT_UPDATE ||
		 query->onConflict->arbiterElems != NIL ||
		 OidIsValid(query->onConflict->constraint)))
	{
		RangeTblEntry *rte = rt_fetch(query->resultRelation, query->rtable);

		if (rte->relkind == RELKIND_FOREIGN_TABLE && almanac_is_rocksdb_table(rte->relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 query->onConflict->action == ONCONFLICT_UPDATE
					 ? errmsg("INSERT ... ON CONFLICT DO UPDATE is not supported on almanac foreign table \"%s\"",
							  get_rel_name(rte->relid))
					 : errmsg("INSERT ... ON CONFLICT with a conflict target is not supported on almanac foreign table \"%s\"",
							  get_rel_name(rte->relid)),
					 errdetail("A conflict is always on the table's key; there is no other target to choose."),
					 query->onConflict->action == ONCONFLICT_UPDATE
					 ? errhint("Declare the table with OPTIONS (upsert 'true') to let INSERT overwrite, or use ON CONFLICT DO NOTHING.")
					 : errhint("Omit the target: ON CONFLICT DO NOTHING skips the rows whose key exists.")));
	}
}

void
almanac_modify_init(void)
{
	prev_post_parse_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = almanac_post_parse_analyze;
}

/* install the write callbacks in the wrapper's routine */
void
almanac_fdw_modify_routine(FdwRoutine *r)
{
	r->AddForeignUpdateTargets = almanacAddForeignUpdateTargets;
	r->BeginForeignModify = almanacBeginForeignModify;
	r->ExecForeignInsert = almanacExecForeignInsert;
	r->ExecForeignBatchInsert = almanacExecForeignBatchInsert;
	r->GetForeignModifyBatchSize = almanacGetForeignModifyBatchSize;
	r->ExecForeignUpdate = almanacExecForeignUpdate;
	r->ExecForeignDelete = almanacExecForeignDelete;
	r->EndForeignModify = almanacEndForeignModify;
	r->BeginForeignInsert = almanacBeginForeignInsert;
	r->EndForeignInsert = almanacEndForeignInsert;
	r->IsForeignRelUpdatable = almanacIsForeignRelUpdatable;
}
