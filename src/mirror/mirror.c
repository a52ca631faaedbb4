/*-------------------------------------------------------------------------
 *
 * mirror.c
 *	  Mirror descriptors (cached per backend), reads and blind writes of a
 *	  mirror, the heap's lookup by key, and enable / disable.  See mirror.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "almanac.h"
#include "codec/valuecodec.h"
#include "codec/visibility.h"
#include "kv/xact.h"
#include "mirror/check.h"
#include "mirror/mirror.h"
#include "mirror/verify.h"
#include "router/router.h"
#include "store/store.h"

/*
 * Descriptors by table OID, negative entries included (the planner hook
 * asks for every single-table SELECT).  An invalidation of a table's
 * relcache entry (or of all) drops its entry; a statement still using it
 * keeps it until the transaction ends (its memory moves under
 * TopTransactionContext), as the foreign tables' layout cache does.
 */
typedef struct MirrorCacheEntry
{
	Oid			relid;
	AlmanacMirror *mirror;		/* NULL: the table has no mirror */
	MemoryContext cxt;
} MirrorCacheEntry;

static HTAB *mirror_cache = NULL;
static uint64 mirror_cache_flushes = 0;

/*
 * The entry almanac_mirror_lookup found last, while mirror_cache_flushes
 * stays what it was then (every removal from the cache counts a flush
 * first): a routed lookup asks for its table's at every execution.
 */
static Oid	last_relid = InvalidOid;
static AlmanacMirror *last_mirror = NULL;
static uint64 last_flushes = 0;

static void
mirror_entry_release(MirrorCacheEntry *e)
{
	if (e->cxt == NULL)
		return;
	if (IsTransactionState())
		MemoryContextSetParent(e->cxt, TopTransactionContext);
	else
		MemoryContextDelete(e->cxt);
	e->cxt = NULL;
}

static void
mirror_relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	MirrorCacheEntry *e;

	mirror_cache_flushes++;
	if (mirror_cache == NULL)
		return;
	if (OidIsValid(relid))
	{
		e = hash_search(mirror_cache, &relid, HASH_FIND, NULL);
		if (e)
		{
			mirror_entry_release(e);
			hash_search(mirror_cache, &relid, HASH_REMOVE, NULL);
		}
		return;
	}
	hash_seq_init(&seq, mirror_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		mirror_entry_release(e);
		hash_search(mirror_cache, &e->relid, HASH_REMOVE, NULL);
	}
}

/* this transaction's written tables (statement triggers), reset at its end */
#define MAX_WRITTEN 16
static Oid	written[MAX_WRITTEN];
static int	nwritten = 0;
static bool written_overflow = false;

/*
 * This transaction's writes of a mirror that a snapshot must be recent
 * enough to judge (almanac_mirror_rewritten_after): the table, the command
 * id a snapshot's curcid must reach (it sees the heap rows of the commands
 * before it), and, after a rewrite from a snapshot of its own
 * (almanac_mirror_note_rewrite), what the newest such snapshot saw as
 * running (xmax valid; its xip in TopTransactionContext, the array reused
 * by the next rewrite of the table).  Reset at its end.
 */
typedef struct MirrorRewrite
{
	Oid			relid;
	CommandId	min_curcid;
	TransactionId xmax;
	uint32		xcnt;
	uint32		cap;
	TransactionId *xip;
} MirrorRewrite;
static MirrorRewrite rewrites[MAX_WRITTEN];
static int	nrewrites = 0;
static bool rewrites_overflow = false;

static void
mirror_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			nwritten = 0;
			written_overflow = false;
			nrewrites = 0;
			rewrites_overflow = false;
			almanac_mirror_locks_forget(false);
			break;
		default:
			break;
	}
}

static void
mirror_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		almanac_mirror_locks_forget(true);
}

void
almanac_mirror_note_write(Oid relid)
{
	for (int i = 0; i < nwritten; i++)
		if (written[i] == relid)
			return;
	if (nwritten == MAX_WRITTEN)
		written_overflow = true;	/* every table counts as written */
	else
		written[nwritten++] = relid;
}

bool
almanac_mirror_written_by_me(Oid relid)
{
	if (written_overflow)
		return true;
	for (int i = 0; i < nwritten; i++)
		if (written[i] == relid)
			return true;
	return false;
}

/* the table's entry, made if missing; NULL when full (overflow set) */
static MirrorRewrite *
rewrite_entry(Oid relid)
{
	MirrorRewrite *r;

	for (int i = 0; i < nrewrites; i++)
		if (rewrites[i].relid == relid)
			return &rewrites[i];
	if (nrewrites == MAX_WRITTEN)
	{
		rewrites_overflow = true;	/* every snapshot counts as older */
		return NULL;
	}
	r = &rewrites[nrewrites++];
	memset(r, 0, sizeof(*r));
	r->relid = relid;
	return r;
}

void
almanac_mirror_note_row_write(Oid relid)
{
	MirrorRewrite *r;

	almanac_mirror_note_write(relid);
	r = rewrite_entry(relid);
	/* used: the next statement's snapshot sees this command's rows */
	if (r)
		r->min_curcid = Max(r->min_curcid, GetCurrentCommandId(true) + 1);
}

/*
 * Called with the newest snapshot of the transaction so far (taken after
 * the previous rewrite's), which sees whatever that one saw: it replaces it.
 */
void
almanac_mirror_note_rewrite(Oid relid, Snapshot snapshot)
{
	MirrorRewrite *r = rewrite_entry(relid);

	if (r == NULL)
		return;
	r->min_curcid = Max(r->min_curcid, snapshot->curcid);
	if (r->xip == NULL)
	{
		r->cap = Max(snapshot->xcnt, 8);
		r->xip = MemoryContextAlloc(TopTransactionContext, sizeof(TransactionId) * r->cap);
	}
	else if (snapshot->xcnt > r->cap)
	{
		r->cap = snapshot->xcnt;
		r->xip = repalloc(r->xip, sizeof(TransactionId) * r->cap);
	}
	r->xmax = snapshot->xmax;
	r->xcnt = snapshot->xcnt;
	memcpy(r->xip, snapshot->xip, sizeof(TransactionId) * snapshot->xcnt);
}

/*
 * Whether snapshot misses a command of this transaction that wrote the
 * mirror (a cursor's snapshot, older than the transaction's later writes:
 * the mirror's rows are read back from the transaction's buffer whatever
 * the command), or a transaction end that the rewrite's snapshot saw: one
 * that had ended for the rewrite (below its xmax, not in its xip) but not
 * for snapshot (from snapshot's xmax on, or in its xip).  The rewrite's
 * xmax - 1 had ended for it, so a smaller xmax misses that one.  A
 * transaction that aborted in between counts too, which only refuses.
 */
bool
almanac_mirror_rewritten_after(Oid relid, Snapshot snapshot)
{
	MirrorRewrite *r = NULL;

	if (rewrites_overflow)
		return true;
	for (int i = 0; i < nrewrites && r == NULL; i++)
		if (rewrites[i].relid == relid)
			r = &rewrites[i];
	if (r == NULL)
		return false;
	if (snapshot->curcid < r->min_curcid)
		return true;
	if (!TransactionIdIsValid(r->xmax))
		return false;
	if (TransactionIdPrecedes(snapshot->xmax, r->xmax))
		return true;
	for (uint32 i = 0; i < snapshot->xcnt; i++)
	{
		TransactionId xid = snapshot->xip[i];
		bool		running = false;

		if (!TransactionIdPrecedes(xid, r->xmax))
			continue;
		for (uint32 j = 0; j < r->xcnt && !running; j++)
			running = TransactionIdEquals(xid, r->xip[j]);
		if (!running)
			return true;
	}
	return false;
}

void
almanac_mirror_init(void)
{
	CacheRegisterRelcacheCallback(mirror_relcache_callback, (Datum) 0);
	RegisterXactCallback(mirror_xact_callback, NULL);
	RegisterSubXactCallback(mirror_subxact_callback, NULL);
}

char *
almanac_mirror_signature(Relation rel, const char *key_order)
{
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		if (att->attisdropped)
			appendStringInfoChar(&buf, '-');
		else
			appendStringInfo(&buf, "%s:%u:%d", NameStr(att->attname), att->atttypid,
							 att->atttypmod);
	}
	/* the key's byte order: a mirror written in another one is altered */
	if (key_order != NULL && key_order[0] != '\0')
		appendStringInfo(&buf, ";descending:%s", key_order);
	return buf.data;
}

/* the attribute number of a live column by name, or InvalidAttrNumber */
static AttrNumber
column_attno(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

/*
 * The heap's unique btree index whose key columns are exactly attnos[0..n-1]
 * in order, or InvalidOid.  Fills the collations and equality procedures.
 */
static Oid
find_key_index(Relation rel, const AttrNumber *attnos, int n, Oid *collations,
			   RegProcedure *eqprocs, RegProcedure *cmpprocs)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		Relation	irel = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index ind = irel->rd_index;
		bool		match = irel->rd_rel->relam == BTREE_AM_OID && ind->indisunique &&
			ind->indisvalid && ind->indimmediate && ind->indnkeyatts == n &&
			RelationGetIndexPredicate(irel) == NIL && RelationGetIndexExpressions(irel) == NIL;

		for (int i = 0; match && i < n; i++)
			match = ind->indkey.values[i] == attnos[i];
		if (match)
		{
			for (int i = 0; i < n; i++)
			{
				Oid			opno = get_opfamily_member(irel->rd_opfamily[i], irel->rd_opcintype[i],
													   irel->rd_opcintype[i], BTEqualStrategyNumber);

				collations[i] = irel->rd_indcollation[i];
				eqprocs[i] = OidIsValid(opno) ? get_opcode(opno) : InvalidOid;
				cmpprocs[i] = index_getprocid(irel, i + 1, BTORDER_PROC);
				match = match && RegProcedureIsValid(eqprocs[i]) && RegProcedureIsValid(cmpprocs[i]);
			}
		}
		index_close(irel, NoLock);
		if (match)
		{
			found = lfirst_oid(lc);
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * The xmin of the table's pg_class row: a TRUNCATE writes a new one (its new
 * relfilenode), and invalidates the table's descriptor, which reads it again.
 */
static TransactionId
relation_xmin(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	TransactionId xid;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	xid = HeapTupleHeaderGetXmin(tup->t_data);
	ReleaseSysCache(tup);
	return xid;
}

/*
 * Read the table's row of almanac.mirrors and describe the mirror, in
 * CurrentMemoryContext.  NULL when it has none, or cannot have one as the
 * table is now (a key column gone: the descriptor then says disabled).
 */
static AlmanacMirror *
mirror_build(Relation rel)
{
	Oid			nsp = get_namespace_oid("almanac", true);
	Oid			catalog_relid;
	Relation	catalog;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tup;
	AlmanacMirror *m = NULL;
	TupleDesc	desc = RelationGetDescr(rel);

	if (!OidIsValid(nsp))
		return NULL;
	catalog_relid = get_relname_relid("mirrors", nsp);
	if (!OidIsValid(catalog_relid) || catalog_relid == RelationGetRelid(rel))
		return NULL;
	catalog = table_open(catalog_relid, AccessShareLock);
	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationGetRelid(rel)));
	scan = systable_beginscan(catalog, InvalidOid, false, NULL, 1, &skey);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	cdesc = RelationGetDescr(catalog);
		Datum		v[11];
		bool		n[11] = {0};
		Datum	   *cols;
		int			ncols;
		AttrNumber *keyattrs;
		Oid		   *typids;
		const char **names;
		AlmanacTableOptions *opts = palloc0(sizeof(AlmanacTableOptions));
		ForeignServer *server;
		bool		usable = true;
		AttrNumber *indattrs;

		/*
		 * 10 columns: a catalog made before key_descending, whose mirrors
		 * were all written ascending (and still are, as it says).
		 */
		if (cdesc->natts != 10 && cdesc->natts != 11)
			elog(ERROR, "almanac.mirrors has %d columns, expected 11", cdesc->natts);
		heap_deform_tuple(tup, cdesc, v, n);
		m = palloc0(sizeof(AlmanacMirror));
		m->relid = RelationGetRelid(rel);
		opts->key_prefix = TextDatumGetCString(v[1]);
		deconstruct_array(DatumGetArrayTypeP(v[2]), NAMEOID, NAMEDATALEN, false,
						  TYPALIGN_CHAR, &cols, NULL, &ncols);
		opts->key_attribute = n[3] ? NULL : TextDatumGetCString(v[3]);
		m->cfname = TextDatumGetCString(v[5]);
		opts->column_family = m->cfname;
		opts->upsert = true;
		m->enabled = DatumGetBool(v[6]);
		m->in_sync = DatumGetBool(v[7]);
		m->catalog_xmin = HeapTupleHeaderGetXmin(tup->t_data);
		m->catalog_raw_xmin = HeapTupleHeaderGetRawXmin(tup->t_data);
		m->relation_xmin = relation_xmin(RelationGetRelid(rel));
		/* promoted or restored since the last sync: the store is older (see 50_router.sql) */
		if (!RecoveryInProgress() && DatumGetInt64(v[9]) != (int64) GetWALInsertionTimeLine())
			m->in_sync = false;
		m->nkeys = ncols;
		keyattrs = palloc(sizeof(AttrNumber) * ncols);
		indattrs = palloc(sizeof(AttrNumber) * (ncols + 1));
		typids = palloc(sizeof(Oid) * ncols);
		names = palloc(sizeof(char *) * ncols);
		m->table.key_pad = palloc(sizeof(int32) * ncols);
		for (int i = 0; i < ncols; i++)
		{
			char	   *name = pstrdup(NameStr(*DatumGetName(cols[i])));

			keyattrs[i] = column_attno(desc, name);
			names[i] = name;
			opts->key_columns = lappend(opts->key_columns, makeString(name));
			m->table.key_pad[i] = -1;
			if (keyattrs[i] == InvalidAttrNumber ||
				!almanac_key_type_supported(TupleDescAttr(desc, keyattrs[i] - 1)->atttypid))
			{
				usable = false;
				typids[i] = InvalidOid;
				continue;
			}
			typids[i] = TupleDescAttr(desc, keyattrs[i] - 1)->atttypid;
			indattrs[i] = keyattrs[i];
		}
		m->table.layout.descending = palloc0(sizeof(bool) * ncols);
		if (cdesc->natts > 10 && !n[10])
		{
			Datum	   *dcols;
			int			ndcols;
			StringInfoData order;

			deconstruct_array(DatumGetArrayTypeP(v[10]), NAMEOID, NAMEDATALEN, false,
							  TYPALIGN_CHAR, &dcols, NULL, &ndcols);
			initStringInfo(&order);
			for (int d = 0; d < ndcols; d++)
			{
				const char *name = NameStr(*DatumGetName(dcols[d]));
				int			k = -1;

				for (int i = 0; i < ncols; i++)
					if (strcmp(names[i], name) == 0)
						k = i;
				/* only integer key columns have a descending form */
				if (k < 0 || !OidIsValid(typids[k]) ||
					!(typids[k] == INT2OID || typids[k] == INT4OID || typids[k] == INT8OID))
					usable = false;
				else
					((bool *) m->table.layout.descending)[k] = true;
				appendStringInfo(&order, "%s%s", d > 0 ? "," : "", name);
			}
			m->key_order = order.data;
		}
		m->altered = strcmp(TextDatumGetCString(v[8]), almanac_mirror_signature(rel, m->key_order)) != 0;
		if (!n[4])
		{
			m->latest_attno = column_attno(desc, NameStr(*DatumGetName(v[4])));
			if (m->latest_attno == InvalidAttrNumber)
				usable = false;
			indattrs[ncols] = m->latest_attno;
		}
		m->key_collations = palloc(sizeof(Oid) * (ncols + 1));
		m->key_eqprocs = palloc(sizeof(RegProcedure) * (ncols + 1));
		m->key_cmpprocs = palloc(sizeof(RegProcedure) * (ncols + 1));
		if (usable)
			m->index_oid = find_key_index(rel, indattrs, ncols + (m->latest_attno ? 1 : 0),
										  m->key_collations, m->key_eqprocs, m->key_cmpprocs);
		server = GetForeignServerByName("almanac_store", true);
		if (server)
			m->server = almanac_server_options(server->serverid);

		/* a mirror that cannot be kept right is off, whatever the catalog says */
		if (!usable || !OidIsValid(m->index_oid) || server == NULL)
			m->enabled = false;

		m->table.opts = opts;
		m->table.server = m->server;
		m->table.keyattrs = keyattrs;
		m->table.is_key = palloc0(sizeof(bool) * desc->natts);
		m->table.values = almanac_value_layout(desc, RelationGetRelationName(rel));
		m->table.layout.prefix = opts->key_prefix;
		m->table.layout.nkeys = ncols;
		m->table.layout.typids = typids;
		m->table.layout.names = names;
		m->table.layout.attribute = opts->key_attribute;
		m->counters = almanac_router_counters(m->relid);
	}
	systable_endscan(scan);
	table_close(catalog, AccessShareLock);
	return m;
}

/* whether snapshot sees xid, the xmin of a catalog row read as committed */
static bool
catalog_xid_seen(TransactionId xid, Snapshot snapshot)
{
	/* frozen, or this transaction's own change: seen */
	if (!TransactionIdIsNormal(xid) || TransactionIdIsCurrentTransactionId(xid))
		return true;
	return !XidInMVCCSnapshot(xid, snapshot);
}

bool
almanac_mirror_seen_by(AlmanacMirror *m, Snapshot snapshot)
{
	return catalog_xid_seen(m->catalog_xmin, snapshot) &&
		catalog_xid_seen(m->relation_xmin, snapshot);
}

void
almanac_mirror_require_judge(Relation rel, AlmanacMirror *m, Snapshot snapshot, const char *what)
{
	int			code;
	const char *detail;
	const char *hint;

	if (!almanac_mirror_seen_by(m, snapshot))
	{
		/* a new transaction's snapshot sees it: a retry succeeds */
		code = ERRCODE_T_R_SERIALIZATION_FAILURE;
		detail = "A transaction that committed after the snapshot was taken rewrote the mirror or changed the table (almanac.enable_mirror, almanac.resync, TRUNCATE, ALTER TABLE, GRANT): the snapshot does not see its writes to the mirror, and may see the heap rows they copied.";
		hint = "Run %s again in a new transaction.";
	}
	else if (almanac_mirror_rewritten_after(m->relid, snapshot))
	{
		/* retrying the same transaction would do the same */
		code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		detail = "This transaction wrote the mirror in a command after the snapshot's (a cursor declared before the write), or rewrote it (almanac.enable_mirror, almanac.resync, TRUNCATE, or a write of a latest mirror) from heap rows of transactions that committed after the snapshot was taken.";
		hint = "Run %s after this transaction commits.";
	}
	else
		return;
	ereport(ERROR,
			(errcode(code),
			 errmsg("%s cannot judge the mirror of table \"%s\" with this snapshot",
					what, RelationGetRelationName(rel)),
			 errdetail("%s", detail),
			 errhint(hint, what)));
}

AlmanacMirror *
almanac_mirror_lookup(Oid relid)
{
	MirrorCacheEntry *e;
	bool		found;
	Relation	rel;
	MemoryContext cxt;
	MemoryContext old;
	AlmanacMirror *m;
	uint64		flushes;

	if (mirror_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(MirrorCacheEntry);
		ctl.hcxt = CacheMemoryContext;
		mirror_cache = hash_create("almanac mirrors", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (relid == last_relid && last_flushes == mirror_cache_flushes)
		return last_mirror;
	e = hash_search(mirror_cache, &relid, HASH_FIND, NULL);
	if (e)
	{
		last_relid = relid;
		last_mirror = e->mirror;
		last_flushes = mirror_cache_flushes;
		return e->mirror;
	}

	/* only plain tables have mirrors: no catalog read for the others */
	if (get_rel_relkind(relid) != RELKIND_RELATION || relid < FirstNormalObjectId)
	{
		e = hash_search(mirror_cache, &relid, HASH_ENTER, &found);
		e->mirror = NULL;
		e->cxt = NULL;
		return NULL;
	}

	/*
	 * Built in a context of its own; an invalidation processed while
	 * reading the catalogs makes it used once and not cached.
	 */
	flushes = mirror_cache_flushes;
	cxt = AllocSetContextCreate(CacheMemoryContext, "almanac mirror", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		rel = table_open(relid, AccessShareLock);
		m = mirror_build(rel);
		table_close(rel, NoLock);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	if (flushes != mirror_cache_flushes)
	{
		if (IsTransactionState())
			MemoryContextSetParent(cxt, TopTransactionContext);
		return m;
	}
	if (m != NULL)
		almanac_mirror_check_ensure();
	e = hash_search(mirror_cache, &relid, HASH_ENTER, &found);
	e->mirror = m;
	e->cxt = cxt;
	if (m == NULL)
	{
		MemoryContextDelete(cxt);
		e->cxt = NULL;
	}
	return m;
}

AlmanacMirror *
almanac_mirror_get(Relation rel)
{
	AlmanacMirror *m = almanac_mirror_lookup(RelationGetRelid(rel));

	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table \"%s\" has no almanac mirror", RelationGetRelationName(rel)),
				 errhint("Mirrors exist for almanac.blocks, almanac.transactions, almanac.account_states and almanac.events (see almanac.mirrors).")));
	return m;
}

void
almanac_mirror_access(AlmanacMirror *m, AlmanacAccess *a, bool create)
{
	almanac_mirror_access_flags(m, a, create ? ALMANAC_ACCESS_CREATE | ALMANAC_ACCESS_NO_CATCH_UP : 0);
}

void
almanac_mirror_access_flags(AlmanacMirror *m, AlmanacAccess *a, int flags)
{
	if (m->server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("server \"almanac_store\" does not exist"),
				 errhint("Mirrors live in the store of the almanac_store server, which CREATE EXTENSION almanac creates.")));
	almanac_access_begin(a, &m->table, flags);
}

void
almanac_mirror_row_key(AlmanacMirror *m, StringInfo buf, const Datum *values,
					   const bool *isnull)
{
	Datum		keyvalues[INDEX_MAX_KEYS];

	for (int i = 0; i < m->nkeys; i++)
	{
		AttrNumber	attno = m->table.keyattrs[i];

		if (isnull[attno - 1])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in key column \"%s\" of the mirror of table \"%s\"",
							m->table.layout.names[i], get_rel_name(m->relid)),
					 errhint("Drop the mirror with almanac.disable_mirror() or keep the column NOT NULL.")));
		keyvalues[i] = values[attno - 1];
	}
	resetStringInfo(buf);
	almanac_key_encode(buf, &m->table.layout, m->nkeys, keyvalues, false);
}

const char *
almanac_mirror_read(AlmanacAccess *a, const char *key, size_t klen, Snapshot snapshot,
					bool own_writes, uint32 *len)
{
	size_t		vlen;
	char	   *val;
	const char *tuple;
	FullTransactionId xid;

	if (a->cf == NULL)
		return NULL;			/* never written */
	val = own_writes ? almanac_access_get(a, NULL, key, klen, &vlen, true)
		: almanac_access_get_stored(a, key, klen, &vlen, true);
	if (val == NULL)
		return NULL;
	if (!almanac_value_row(val, vlen, snapshot, &tuple, len, &xid))
		return NULL;
	return tuple;
}

bool
almanac_mirror_heap_first(AlmanacMirror *m, Relation rel, Snapshot snapshot,
						  const Datum *keyvalues, int n, bool backward, TupleTableSlot *slot)
{
	Relation	irel = index_open(m->index_oid, AccessShareLock);
	IndexScanDesc scan;
	ScanKeyData skeys[INDEX_MAX_KEYS];
	bool		found;

	for (int i = 0; i < n; i++)
		ScanKeyEntryInitialize(&skeys[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
							   m->key_collations[i], m->key_eqprocs[i], keyvalues[i]);
	scan = index_beginscan(rel, irel, snapshot, n, 0);
	index_rescan(scan, skeys, n, NULL, 0);
	found = index_getnext_slot(scan, backward ? BackwardScanDirection : ForwardScanDirection,
							   slot);
	index_endscan(scan);
	index_close(irel, NoLock);
	return found;
}

bool
almanac_mirror_heap_lookup(AlmanacMirror *m, Relation rel, Snapshot snapshot,
						   const Datum *keyvalues, TupleTableSlot *slot)
{
	/* a latest mirror: the last row of the key, by the latest column */
	return almanac_mirror_heap_first(m, rel, snapshot, keyvalues, m->nkeys,
									 m->latest_attno != 0, slot);
}

void
almanac_mirror_scan(AlmanacMirror *m, AlmanacAccess *a, StringInfo lower, StringInfo upper,
					Snapshot snapshot, AlmanacMirrorRowFn fn, void *arg)
{
	StringInfoData lo;
	StringInfoData hi;
	AlmanacKvEntry e;

	if (a->cf == NULL)
		return;
	initStringInfo(&lo);
	initStringInfo(&hi);
	if (lower && lower->len > 0)
		appendBinaryStringInfo(&lo, lower->data, lower->len);
	else
		almanac_key_encode(&lo, &m->table.layout, 0, NULL, true);
	if (upper && upper->len > 0)
		appendBinaryStringInfo(&hi, upper->data, upper->len);
	else
	{
		StringInfoData prefix;

		initStringInfo(&prefix);
		almanac_key_encode(&prefix, &m->table.layout, 0, NULL, true);
		almanac_prefix_end(&prefix, &hi);
	}
	/* the transaction's buffered writes included */
	almanac_access_iter_begin(a, lo.data, lo.len, hi.data, hi.len, 0);
	while (almanac_access_iter_next(a, snapshot, &e))
		if (e.visible)
			fn(arg, e.key, e.klen, e.tuple, e.tuple_len);
	almanac_access_iter_end(a);
}

void
almanac_mirror_target(AlmanacMirror *m, int *store, rocksdb_column_family_handle_t **cf,
					  uint32 *cf_id)
{
	if (m->target_lxid != MyProc->lxid || m->target_cf == NULL)
	{
		AlmanacAccess *a = palloc(sizeof(AlmanacAccess));

		almanac_mirror_access(m, a, true);
		m->target_store = a->store;
		m->target_cf = a->cf;
		m->target_cf_id = a->cf_id;
		m->target_lxid = MyProc->lxid;
		/* a itself stays: its memory context's reset calls its release again */
		almanac_access_release(a);
	}
	*store = m->target_store;
	*cf = m->target_cf;
	*cf_id = m->target_cf_id;
}

/*
 * The writes of enable_mirror's backfill, resync and TRUNCATE.  The table
 * counts as written by this transaction, as the row triggers make it: its
 * later lookups read the heap, since a routed one would not see these
 * writes, which wait in the transaction's buffer (it answered the rows a
 * backfill had just erased, in the transaction that enabled the mirror).
 */
void
almanac_mirror_put(AlmanacMirror *m, AlmanacAccess *a, const char *key, size_t klen,
				   const char *image, uint32 len)
{
	almanac_mirror_note_write(m->relid);
	almanac_xact_put_blind(a->store, a->cf, a->cf_id, key, klen, image, len);
}

void
almanac_mirror_erase(AlmanacMirror *m, AlmanacAccess *a, const char *key, size_t klen)
{
	almanac_mirror_note_write(m->relid);
	almanac_xact_put_blind(a->store, a->cf, a->cf_id, key, klen, NULL, 0);
}

/* the table, locked against writers (ShareLock), checked for ownership */
Relation
almanac_mirror_open_owned(Oid relid, LOCKMODE lockmode)
{
	Relation	rel = table_open(relid, lockmode);

	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
	return rel;
}

/* set almanac.mirrors' columns for the table (its trigger invalidates) */
void
almanac_mirror_catalog_update(Oid relid, const char *set, const char *signature)
{
	if (!almanac_mirror_catalog_update_if(relid, set, signature, InvalidTransactionId))
		elog(ERROR, "almanac: could not update almanac.mirrors");
}

bool
almanac_mirror_catalog_update_if(Oid relid, const char *set, const char *signature,
								 TransactionId raw_xmin)
{
	Oid			types[3] = {OIDOID, TEXTOID, XIDOID};
	Datum		values[3];
	char		nulls[3] = {' ', signature ? ' ' : 'n', ' '};
	char		query[256];
	int			rc;
	bool		done;

	values[0] = ObjectIdGetDatum(relid);
	values[1] = signature ? CStringGetTextDatum(signature) : (Datum) 0;
	values[2] = TransactionIdGetDatum(raw_xmin);
	snprintf(query, sizeof(query), "UPDATE almanac.mirrors SET %s WHERE relid = $1%s", set,
			 TransactionIdIsValid(raw_xmin) ? " AND xmin = $3" : "");
	SPI_connect();
	rc = SPI_execute_with_args(query, TransactionIdIsValid(raw_xmin) ? 3 : signature ? 2 : 1,
							   types, values, nulls, false, 0);
	if (rc != SPI_OK_UPDATE || SPI_processed > 1)
		elog(ERROR, "almanac: could not update almanac.mirrors");
	done = SPI_processed == 1;
	SPI_finish();
	CommandCounterIncrement();
	return done;
}

/*
 * Refuse to call a mirror complete (enable_mirror, a whole-table resync)
 * while the table's three mirror triggers are not all there and enabled
 * ALWAYS: rows written meanwhile would miss the mirror and the router would
 * answer them wrongly (src/sql/51_mirror_triggers.sql marks such a mirror
 * out of sync as the triggers change).
 */
void
almanac_mirror_require_triggers(Relation rel)
{
	static const char *const funcs[] = {"_mirror_row", "_mirror_statement", "_mirror_truncate"};
	TriggerDesc *td = rel->trigdesc;

	for (int i = 0; i < lengthof(funcs); i++)
	{
		Oid			fn = LookupFuncName(list_make2(makeString("almanac"), makeString(unconstify(char *, funcs[i]))),
										0, NULL, false);
		bool		found = false;

		for (int j = 0; td != NULL && j < td->numtriggers && !found; j++)
			found = td->triggers[j].tgfoid == fn &&
				td->triggers[j].tgenabled == TRIGGER_FIRES_ALWAYS;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the mirror of table \"%s\" cannot be brought in sync while its triggers do not fire on every write",
							RelationGetRelationName(rel)),
					 errdetail("No trigger calling almanac.%s() is enabled ALWAYS on the table.", funcs[i]),
					 errhint("Enable the table's mirror triggers with ALTER TABLE ... ENABLE ALWAYS TRIGGER, then retry.")));
	}
}

/*
 * almanac.enable_mirror(regclass): writers wait (ShareLock) while every row
 * is compared with the mirror and written where they differ (a resync of
 * the whole table): simplest correct, and no write made meanwhile is lost.
 */
PG_FUNCTION_INFO_V1(almanac_enable_mirror_sql);
Datum
almanac_enable_mirror_sql(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel = almanac_mirror_open_owned(relid, ShareLock);
	AlmanacMirror *m = almanac_mirror_get(rel);
	int64		n;
	Snapshot	snap;

	(void) m;
	almanac_mirror_require_triggers(rel);
	almanac_mirror_catalog_update(relid, "enabled = true, in_sync = true, signature = $2, timeline = almanac._wal_timeline()",
				   almanac_mirror_signature(rel, m->key_order));
	m = almanac_mirror_get(rel);
	if (!m->enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the mirror of table \"%s\" cannot be enabled", RelationGetRelationName(rel)),
				 errdetail("Its key columns must exist, with a unique btree index on them (plus the latest column for a latest mirror)."),
				 errhint("See almanac.mirrors for the key columns.")));
	/* after the lock: every committed row, and no writer until we commit */
	snap = RegisterSnapshot(GetLatestSnapshot());
	n = almanac_mirror_sync(rel, m, NULL, snap, true, NULL);
	UnregisterSnapshot(snap);
	table_close(rel, NoLock);
	PG_RETURN_INT64(n);
}

PG_FUNCTION_INFO_V1(almanac_disable_mirror_sql);
Datum
almanac_disable_mirror_sql(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel = almanac_mirror_open_owned(relid, ShareLock);

	(void) almanac_mirror_get(rel);
	almanac_mirror_catalog_update(relid, "enabled = false", NULL);
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(almanac_wal_timeline_sql);
Datum
almanac_wal_timeline_sql(PG_FUNCTION_ARGS)
{
	/* a standby has none of its own yet: the one it replays */
	if (RecoveryInProgress())
		PG_RETURN_INT64(0);
	PG_RETURN_INT64((int64) GetWALInsertionTimeLine());
}

PG_FUNCTION_INFO_V1(almanac_mirror_signature_sql);
Datum
almanac_mirror_signature_sql(PG_FUNCTION_ARGS)
{
	Relation	rel = table_open(PG_GETARG_OID(0), AccessShareLock);
	StringInfoData order;
	char	   *s;

	/* the descending key columns, as almanac.mirrors.key_descending lists them */
	initStringInfo(&order);
	if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
	{
		Datum	   *cols;
		int			ncols;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), NAMEOID, NAMEDATALEN, false,
						  TYPALIGN_CHAR, &cols, NULL, &ncols);
		for (int i = 0; i < ncols; i++)
			appendStringInfo(&order, "%s%s", i > 0 ? "," : "", NameStr(*DatumGetName(cols[i])));
	}
	s = almanac_mirror_signature(rel, order.data);

	table_close(rel, AccessShareLock);
	PG_RETURN_TEXT_P(cstring_to_text(s));
}

/* a change to almanac.mirrors: every backend drops the table's descriptor and plans */
PG_FUNCTION_INFO_V1(almanac_mirrors_changed_sql);
Datum
almanac_mirrors_changed_sql(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "almanac._mirrors_changed() must be called as a trigger");
	if (td->tg_trigtuple)
	{
		Datum		d = heap_getattr(td->tg_trigtuple, 1, RelationGetDescr(td->tg_relation), &isnull);

		if (!isnull)
			CacheInvalidateRelcacheByRelid(DatumGetObjectId(d));
	}
	if (td->tg_newtuple)
	{
		Datum		d = heap_getattr(td->tg_newtuple, 1, RelationGetDescr(td->tg_relation), &isnull);

		if (!isnull)
			CacheInvalidateRelcacheByRelid(DatumGetObjectId(d));
	}
	return PointerGetDatum(NULL);
}

/*
 * almanac.mirror_key(regclass, record): the key the mirror of the table
 * gives a row of it (the row's type must be the table's), in the mirror's
 * layout, descending columns included; NULL for a null row.
 */
PG_FUNCTION_INFO_V1(almanac_mirror_key_sql);
Datum
almanac_mirror_key_sql(PG_FUNCTION_ARGS)
{
	Relation	rel;
	AlmanacMirror *m;
	HeapTupleHeader rec;
	HeapTupleData tuple;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *isnull;
	StringInfoData key;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	rel = table_open(PG_GETARG_OID(0), AccessShareLock);
	m = almanac_mirror_get(rel);
	rec = PG_GETARG_HEAPTUPLEHEADER(1);
	desc = RelationGetDescr(rel);
	if (HeapTupleHeaderGetTypeId(rec) != desc->tdtypeid)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the row given to almanac.mirror_key() is of type %s, not a row of table \"%s\"",
						format_type_be(HeapTupleHeaderGetTypeId(rec)), RelationGetRelationName(rel)),
				 errhint("Pass the table's own row, as in almanac.mirror_key('almanac.events', e) FROM almanac.events e.")));
	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	values = palloc(sizeof(Datum) * desc->natts);
	isnull = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(&tuple, desc, values, isnull);
	initStringInfo(&key);
	almanac_mirror_row_key(m, &key, values, isnull);
	table_close(rel, AccessShareLock);
	PG_RETURN_BYTEA_P(almanac_bytes_to_bytea(key.data, key.len));
}

/*
 * almanac.decode_mirror_key(regclass, bytea): a key of the table's mirror as
 * text, {prefix, key column values..., attribute} as almanac.decode_key
 * gives it; NULL when the bytes are not a key of the mirror's layout (an
 * "extra" key of almanac.verify may be one of another layout).
 */
PG_FUNCTION_INFO_V1(almanac_decode_mirror_key_sql);
Datum
almanac_decode_mirror_key_sql(PG_FUNCTION_ARGS)
{
	Relation	rel;
	AlmanacMirror *m;
	bytea	   *key;
	Datum		keyvalues[INDEX_MAX_KEYS];
	Datum	   *out;
	int			nout = 0;
	const AlmanacKeyLayout *layout;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	rel = table_open(PG_GETARG_OID(0), AccessShareLock);
	m = almanac_mirror_get(rel);
	table_close(rel, AccessShareLock);
	layout = &m->table.layout;
	key = PG_GETARG_BYTEA_PP(1);
	if (!almanac_key_decode(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), layout, keyvalues))
		PG_RETURN_NULL();
	out = palloc(sizeof(Datum) * (layout->nkeys + 2));
	out[nout++] = CStringGetTextDatum(layout->prefix);
	for (int i = 0; i < layout->nkeys; i++)
	{
		Oid			outfunc;
		bool		isvarlena;

		getTypeOutputInfo(layout->typids[i], &outfunc, &isvarlena);
		out[nout++] = CStringGetTextDatum(OidOutputFunctionCall(outfunc, keyvalues[i]));
	}
	if (layout->attribute)
		out[nout++] = CStringGetTextDatum(layout->attribute);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, nout, TEXTOID, -1, false, TYPALIGN_INT));
}
