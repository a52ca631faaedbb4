/*-------------------------------------------------------------------------
 *
 * xact.c
 *	  Transaction coordination.  See xact.h for the contract.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/subtrans.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "replication/message.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "almanac.h"
#include "fault.h"
#include "kv/access.h"
#include "kv/keylock.h"
#include "kv/nested.h"
#include "kv/reader.h"
#include "kv/rocks.h"
#include "store/payload.h"
#include "store/store.h"
#include "kv/xact.h"

int			almanac_write_batch_size = 16 * 1024;	/* kB */
int			almanac_mirror_send_size = 64;	/* kB */

/* the transaction's write state; at most one store written per transaction */
static int	xact_store = -1;
static rocksdb_writebatch_wi_t *xact_batch = NULL;

/*
 * The transaction's blind writes (almanac_xact_put_blind) since the last
 * send, as entries of an ALMANAC_REQ_APPLY payload, in the order written:
 * not in xact_batch, whose index every put would search and grow, and
 * whose entries each send would read back through an iterator (together a
 * third of what mirror writes added to a backend in bench/ingest, perf).
 * They are all written after the batch's last save point (a save point is
 * recorded only once they are moved into xact_batch: record_savepoints,
 * fold_blind), so a rollback to the subtransaction that owns it drops them
 * all.  Whatever reads the transaction's batch, and any write that is not
 * blind, moves them into xact_batch first, in order.
 * In TopMemoryContext, kept between transactions unless large.
 */
static StringInfoData blind = {0};
static bool xact_shipped = false;

/* the transaction sent writes mid-transaction (almanac_xact_sent_mid_xact) */
static bool sent_mid_xact = false;

/* a subtransaction wrote since the transaction began (see Restamp) */
static bool subxact_wrote = false;

/*
 * A batch posted without waiting (ship_batch's 'wait' false) whose answer
 * is not taken yet: its store, and its WAL message (header and payload, in
 * TopTransactionContext) to log once the owner has written it.
 */
static int	posted_store = -1;
static StringInfoData posted_message;

/*
 * Transaction nesting levels (GetCurrentTransactionNestLevel) of writes.
 * A send while the transaction went on that the owner refused (or did not
 * answer) leaves its writes in neither the batch nor the store: the
 * (sub)transactions that made them must not commit, even if a
 * subtransaction caught the error (a posted batch's error is raised by
 * whatever settles it, maybe a later statement).  doomed_level is the
 * outermost level whose writes were lost (0: none): its abort forgives the
 * loss, its release passes it to its parent, and PRE_COMMIT refuses it.
 * batch_level is the outermost level with writes in the batch, posted_level
 * that of the batch posted without waiting.
 */
static int	doomed_level = 0;
static int	batch_level = INT_MAX;
static int	posted_level = INT_MAX;

/* doomed_level after writes of level 'level' were lost */
static int
doom(int level)
{
	if (level == INT_MAX)
		level = 1;				/* cannot happen: a sent batch has writes */
	return doomed_level == 0 ? level : Min(doomed_level, level);
}

/* the last (sub)transaction id made known to the WAL (see note_xid) */
static FullTransactionId xact_logged_xid;

/* column families the transaction's batch has entries in */
static uint32 xact_cfs[64];
static int	xact_ncfs = 0;

/*
 * The batch's save points, oldest first, each as the nesting level
 * (GetCurrentTransactionNestLevel) of the open subtransaction it belongs
 * to: a rollback of the subtransaction of level L undoes the batch to the
 * first save point of level L or deeper.  A subtransaction's save point is
 * recorded when it first writes (record_savepoints), not when it starts:
 * an ERROR in SUBXACT_EVENT_START_SUB leaves PostgreSQL's subtransaction
 * half started, which PL/pgSQL does not survive (a DO block's exception
 * block crashed the backend with SIGSEGV and the postmaster restarted all
 * of them; a function's outer exception block that caught the error ended
 * the session, FATAL: test/t/044), and recording can raise (the array's
 * growth, fold_blind).  A subtransaction that has not written needs none:
 * the batch is as it was when it started (but for blind writes of outer
 * levels that a read folded in, which its rollback must keep anyway).  A
 * released subtransaction's save points become its parent's, and those
 * released into the top level (level 1) stay, unused.  So the levels never
 * decrease, and every open level from 2 up to the last one recorded has a
 * save point.
 *
 * Of the entries of one level only the first is ever a rollback's target;
 * the others (a released subtransaction's, left in its parent) stay only
 * because RocksDB's C API cannot drop a save point of a
 * WriteBatchWithIndex without rolling back to it, and each entry is one
 * save point in RocksDB's stack.  Rolling back to a save point rebuilds the
 * whole index of the batch (WriteBatchWithIndex::RollbackToSavePoint), so
 * undoing them one at a time cost the batch's size per entry: ROLLBACK TO a
 * savepoint after a loop of N exception blocks that each wrote a row took
 * 314 s at N = 20,000 (docs/write-path.md).  Each entry therefore keeps the
 * batch's record count when it was set, and a rollback that undoes more
 * than one rebuilds the batch once from its records up to the first one's
 * (rebuild_batch).  Whenever RocksDB's stack is set anew (a rebuild, a
 * cleared batch) the entries no rollback can target are dropped.
 */
typedef struct BatchSavePoint
{
	int			level;
	uint32		count;			/* the batch's records when it was set */
} BatchSavePoint;

static BatchSavePoint *savepoints = NULL;
static int	nsavepoints = 0;
static int	maxsavepoints = 0;

/*
 * Whether entry i can be no rollback's target: the one before it is of its
 * level (the levels do not decrease)
 */
static bool
savepoint_redundant(int i)
{
	return i > 0 && savepoints[i - 1].level == savepoints[i].level;
}

/*
 * Keep the first keep entries but the redundant ones; the caller sets
 * RocksDB's stack of save points anew to match.
 */
static void
compact_savepoints(int keep)
{
	int			n = 0;

	for (int i = 0; i < keep; i++)
		if (!savepoint_redundant(i))
			savepoints[n++] = savepoints[i];
	nsavepoints = n;
}

/* The batch was just created or cleared: every entry is at its start. */
static void
set_all_save_points(void)
{
	compact_savepoints(nsavepoints);
	for (int i = 0; i < nsavepoints; i++)
	{
		savepoints[i].count = (uint32) rocksdb_writebatch_wi_count(xact_batch);
		rocksdb_writebatch_wi_set_save_point(xact_batch);
	}
}

/*
 * Is x the (sub)transaction y, or one of y's subtransactions?  Then a write
 * by y may replace a write by x in the batch: whenever x's write counts, y's
 * does too (x commits only with every level above it), and y's is newer.
 * Otherwise (x is an outer level, or a released subtransaction that is no
 * descendant of y) y may roll back alone, and x's write must outlive that.
 */
static bool
xid_within(FullTransactionId x, FullTransactionId y)
{
	TransactionId xx = XidFromFullTransactionId(x);
	TransactionId yy = XidFromFullTransactionId(y);

	/* a subtransaction's id follows its parent's (AssignTransactionId) */
	while (TransactionIdIsNormal(xx) && TransactionIdFollows(xx, yy))
		xx = SubTransGetParent(xx);
	return TransactionIdEquals(xx, yy);
}

/*
 * Would a write by xid, the current (sub)transaction's, replace in the
 * batch's index a write that must outlive a rollback of xid?  The batch
 * keeps one entry per key, and what a ROLLBACK TO SAVEPOINT restores from it
 * is gone once the batch is sent: so such a write must not replace the
 * other in the batch, but follow it to the owner, which keeps the older
 * version under the newer (store/owner.c applies a request's entries in
 * order).  prev is the batch's entry.  At the top level every write of the
 * transaction is within xid.
 */
static bool
replaces_outliving_write(const char *prev, size_t prev_len, FullTransactionId xid)
{
	AlmanacIntent p;

	if (GetCurrentTransactionNestLevel() == 1)
		return false;
	almanac_intent_parse(prev, prev_len, &p);
	return !FullTransactionIdEquals(p.xid, xid) && !xid_within(p.xid, xid);
}

/* the reader's handle of a column family the transaction wrote to */
static rocksdb_column_family_handle_t *
written_cf(AlmanacReader *reader, uint32 cf_id)
{
	rocksdb_column_family_handle_t *cf = almanac_reader_cf_by_id(reader, cf_id);

	if (cf == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("an almanac column family this transaction wrote to was dropped"),
				 errdetail("The column family with id %u does not exist any more.", cf_id)));
	return cf;
}

/*
 * The blind writes go into xact_batch, in the order written, so that the
 * batch holds every write of the transaction (for a reader, a save point, a
 * write that is not blind).  None of them replaces there a write that must
 * outlive it: almanac_xact_put_blind sent the batch with such a write
 * instead.  So this never sends anything: a reader's look at the batch
 * sends nothing.
 */
static void
fold_blind(void)
{
	AlmanacReader *reader;
	AlmanacApplyIter it;

	if (blind.len == 0)
		return;
	Assert(xact_batch != NULL && xact_store >= 0);
	reader = almanac_reader(xact_store);
	almanac_apply_iter_init(&it, blind.data, blind.len);
	while (almanac_apply_iter_next(&it))
		rocksdb_writebatch_wi_put_cf(xact_batch, written_cf(reader, it.intent.cf_id),
									 it.key, it.klen, it.value, it.vlen);
	resetStringInfo(&blind);
}

rocksdb_writebatch_wi_t *
almanac_xact_batch(int store)
{
	if (xact_store != store)
		return NULL;
	fold_blind();
	return xact_batch;
}

/* whether the transaction has writes not sent yet */
static bool
xact_unsent(void)
{
	return blind.len > 0 ||
		(xact_batch != NULL && rocksdb_writebatch_wi_count(xact_batch) > 0);
}

/*
 * Before a write of the current (sub)transaction goes into the batch (or
 * the blind writes, or is sent on its own): a save point for each open
 * level that has none yet (see savepoints), after the blind writes so far,
 * which are the outer levels'.  An ERROR here is the writing statement's,
 * an ordinary one that aborts its subtransaction; the entries pushed
 * before it stay, each a save point of its level.
 */
static void
record_savepoints(void)
{
	int			level = GetCurrentTransactionNestLevel();
	int			recorded = nsavepoints > 0 ? savepoints[nsavepoints - 1].level : 1;

	if (recorded >= level)
		return;
	fold_blind();
	while (recorded < level)
	{
		savepoints = almanac_grow_array(savepoints, nsavepoints, &maxsavepoints,
										sizeof(BatchSavePoint), 16);
		savepoints[nsavepoints].level = ++recorded;
		savepoints[nsavepoints].count = (uint32) rocksdb_writebatch_wi_count(xact_batch);
		nsavepoints++;
		rocksdb_writebatch_wi_set_save_point(xact_batch);
	}
}

static rocksdb_writebatch_wi_t *
xact_batch_for_write(int store)
{
	if (xact_store >= 0 && xact_store != store)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a transaction can write to one almanac store only"),
				 errhint("Write the other store's foreign tables in a separate transaction.")));
	if (xact_batch == NULL)
	{
		xact_batch = rocksdb_writebatch_wi_create(0, 1);
		xact_store = store;
		set_all_save_points();
	}
	record_savepoints();
	batch_level = Min(batch_level, GetCurrentTransactionNestLevel());
	if (GetCurrentTransactionNestLevel() > 1)
		subxact_wrote = true;
	return xact_batch;
}

typedef void (*batch_entry_fn) (void *arg, rocksdb_column_family_handle_t *cf,
							   const char *k, size_t klen, const char *v, size_t vlen);

/*
 * Visit the entries of a batch in one column family.  RocksDB's C API can
 * iterate a batch only through a base iterator; an empty one (its upper
 * bound is below every key) leaves exactly the batch's entries.  The base
 * comes from the reader's current instance, with that instance's handle of
 * the column family (a batch knows column families by id, which a reopen
 * keeps; a handle and a db must be of the same instance).  It reads the
 * instance's memtables only (kMemtableTier): a base over every SST file
 * opened an iterator per level and sought each to its first key, to return
 * nothing, and every commit did it (bench/commit at 8 clients: 8 % of the
 * instance's samples, more than the owner's rocksdb_write; perf).
 */
static void
batch_foreach_range(rocksdb_writebatch_wi_t *batch, AlmanacReader *reader, uint32 cf_id,
					const char *lower, size_t lower_len, const char *upper, size_t upper_len,
					batch_entry_fn fn, void *arg)
{
	static const char nothing[1] = {0};
	rocksdb_column_family_handle_t *cf = written_cf(reader, cf_id);
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it;

	ro = rocksdb_readoptions_create();

	rocksdb_readoptions_set_read_tier(ro, ALMANAC_FAULT_ARMED("iterator_error")
									  ? ALMANAC_READ_TIER_PERSISTED
									  : ALMANAC_READ_TIER_MEMTABLE);
	rocksdb_readoptions_set_iterate_upper_bound(ro, nothing, 1);
	it = rocksdb_writebatch_wi_create_iterator_with_base_cf(batch,
															rocksdb_create_iterator_cf(almanac_reader_db(reader), ro, cf),
															cf);
	PG_TRY();
	{
		if (lower_len > 0)
			rocksdb_iter_seek(it, lower, lower_len);
		else
			rocksdb_iter_seek_to_first(it);
		for (; rocksdb_iter_valid(it); rocksdb_iter_next(it))
		{
			size_t		klen,
						vlen;
			const char *k = rocksdb_iter_key(it, &klen);
			const char *v = rocksdb_iter_value(it, &vlen);

			if (upper_len > 0)
			{
				int			c = memcmp(k, upper, Min(klen, upper_len));

				if (c > 0 || (c == 0 && klen >= upper_len))
					break;
			}
			fn(arg, cf, k, klen, v, vlen);
		}

		/*
		 * A base iterator that fails leaves the merged one invalid at once,
		 * as if the batch were empty: unchecked, a commit would send nothing
		 * and succeed, and a scan would miss the transaction's own writes.
		 */
		if (!rocksdb_iter_valid(it))
		{
			char	   *err = NULL;

			rocksdb_iter_get_error(it, &err);
			almanac_rocks_read_check(err);
		}
	}
	PG_FINALLY();
	{
		rocksdb_iter_destroy(it);
		rocksdb_readoptions_destroy(ro);
	}
	PG_END_TRY();
}

/*
 * Batches of at most this many writes are read from their representation
 * (almanac_rocks_batch_puts), not through an iterator: a commit of a few
 * writes spent more in creating the iterator over the reader's instance
 * that batch_foreach_range needs than in everything else it does to send
 * its batch (bench/commit kv1 at 8 clients: 3.6 % of the instance's
 * samples, perf).  Each write is compared with the later ones, so the
 * limit stays small.
 */
#define SMALL_BATCH 16

/*
 * Every entry of the batch in the column family: the last put of each key,
 * as the batch's index has it (small batches in the order written, others
 * in key order).
 */
static void
batch_foreach(rocksdb_writebatch_wi_t *batch, AlmanacReader *reader,
			  uint32 cf_id, batch_entry_fn fn, void *arg)
{
	AlmanacBatchPut puts[SMALL_BATCH];
	const char *rep;
	size_t		len;
	int			n;
	rocksdb_column_family_handle_t *cf = NULL;

	rep = rocksdb_writebatch_wi_data(batch, &len);
	n = almanac_rocks_batch_puts(rep, len, puts, SMALL_BATCH);
	if (n < 0)
	{
		batch_foreach_range(batch, reader, cf_id, NULL, 0, NULL, 0, fn, arg);
		return;
	}
	for (int i = 0; i < n; i++)
	{
		bool		replaced = false;

		if (puts[i].cf_id != cf_id)
			continue;
		/* a later put of the key replaced this one in the index */
		for (int j = i + 1; j < n && !replaced; j++)
			replaced = puts[j].cf_id == cf_id && puts[j].klen == puts[i].klen &&
				memcmp(puts[j].key, puts[i].key, puts[i].klen) == 0;
		if (replaced)
			continue;
		if (cf == NULL)
			cf = written_cf(reader, cf_id);
		fn(arg, cf, puts[i].key, puts[i].klen, puts[i].val, puts[i].vlen);
	}
}

static void
note_cf(uint32 cf_id)
{
	for (int i = 0; i < xact_ncfs; i++)
		if (xact_cfs[i] == cf_id)
			return;
	if (xact_ncfs == lengthof(xact_cfs))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a transaction can write at most %d almanac column families", (int) lengthof(xact_cfs))));
	xact_cfs[xact_ncfs++] = cf_id;
}

/*
 * The payload of a send while the transaction goes on, whose entries written
 * by a subtransaction released since are restamped with the xid of its
 * innermost open ancestor.  Such a write is undone exactly when that
 * ancestor is (and committed with it), so every snapshot judges it as it
 * judges the ancestor's own writes; stamped so, it replaces at the owner the
 * versions that ancestor and its released subtransactions wrote before
 * (codec/visibility.c drops a version its own writer replaces), instead of
 * piling up one version per subtransaction: a PL/pgSQL loop whose exception
 * block writes a key sends the previous iteration's write each time
 * (replaces_outliving_write), and its version list would grow with every
 * iteration, each send rewriting it whole.
 */
typedef struct Restamp
{
	StringInfo	buf;
	int			nopen;			/* 0: every entry as it is */
	TransactionId *open;		/* the current (sub)transaction and its ancestors */
	TransactionId from;			/* the last entry restamped: its xid */
	TransactionId to;			/* and its ancestor's */
	StringInfoData entry;
} Restamp;

static bool
xid_open(const Restamp *r, TransactionId xid)
{
	for (int i = 0; i < r->nopen; i++)
		if (TransactionIdEquals(r->open[i], xid))
			return true;
	return false;
}

/*
 * Start a payload in buf.  Restamping is needed only when a subtransaction
 * wrote and the transaction goes on (at its end every level left is
 * released into the top one, whose xid the versions' judgement ends at
 * anyway), and possible only when the current (sub)transaction has an xid.
 */
static void
restamp_begin(Restamp *r, StringInfo buf, bool final)
{
	FullTransactionId cur = GetCurrentFullTransactionIdIfAny();

	memset(r, 0, sizeof(Restamp));
	r->buf = buf;
	if (final || !subxact_wrote || !FullTransactionIdIsValid(cur))
		return;
	r->open = palloc(sizeof(TransactionId) * GetCurrentTransactionNestLevel());
	for (TransactionId x = XidFromFullTransactionId(cur);
		 TransactionIdIsValid(x) && r->nopen < GetCurrentTransactionNestLevel();
		 x = SubTransGetParent(x))
		r->open[r->nopen++] = x;
	initStringInfo(&r->entry);
}

/* an entry of the ALMANAC_REQ_APPLY payload (store/payload.h) */
static void
restamp_append(Restamp *r, const char *k, size_t klen, const char *v, size_t vlen)
{
	AlmanacIntent intent;
	TransactionId xid;

	if (r->nopen == 0)
	{
		almanac_apply_append(r->buf, k, klen, v, vlen);
		return;
	}
	almanac_intent_parse(v, vlen, &intent);
	xid = XidFromFullTransactionId(intent.xid);
	if (xid_open(r, xid))
	{
		almanac_apply_append(r->buf, k, klen, v, vlen);
		return;
	}
	if (!TransactionIdEquals(xid, r->from))
	{
		TransactionId a = xid;

		/* the first open one up its chain of parents */
		while (TransactionIdIsValid(a) && !xid_open(r, a))
			a = SubTransGetParent(a);
		r->from = xid;
		r->to = a;
	}
	if (!TransactionIdIsValid(r->to))
	{
		/* cannot happen: the top-level transaction is open */
		almanac_apply_append(r->buf, k, klen, v, vlen);
		return;
	}
	intent.xid = FullTransactionIdFromU64(U64FromFullTransactionId(intent.xid) -
										  (uint32) (xid - r->to));
	resetStringInfo(&r->entry);
	almanac_intent_encode(&r->entry, &intent);
	almanac_apply_append(r->buf, k, klen, r->entry.data, r->entry.len);
}

/* a send's walk of its batch, one column family at a time */
typedef struct ShipWalk
{
	Restamp		restamp;
	int			store;
	uint32		cf_id;
	bool		priors;			/* name the keys to nested.c */
} ShipWalk;

static void
append_entry(void *arg, rocksdb_column_family_handle_t *cf,
			 const char *k, size_t klen, const char *v, size_t vlen)
{
	ShipWalk   *walk = arg;

	if (walk->priors)
		almanac_nested_ship_key(walk->store, walk->cf_id, k, klen);
	restamp_append(&walk->restamp, k, klen, v, vlen);
}

static void
restamp_end(Restamp *r)
{
	if (r->open)
		pfree(r->open);
	if (r->entry.data)
		pfree(r->entry.data);
}

/* the length of a batch message's header for the store */
static int
header_len(int store)
{
	return ALMANAC_BATCH_HEADER_LEN + (int) strlen(almanac_shared->stores[store].path);
}

/*
 * Before writes are sent to the owner while the transaction goes on: the
 * accesses open now, a statement's, must not see them if they are its own
 * (the versions carry its xid, so it would see them, as a heap scan never
 * sees the rows of its own command): see almanac_access_before_send.
 */
static void
before_mid_xact_send(int store, bool own)
{
	almanac_access_before_send(store, own);
	sent_mid_xact = true;
}

bool
almanac_xact_sent_mid_xact(int store)
{
	return sent_mid_xact && store == xact_store;
}

/* the entries of a statement batch to rewrite (uncombine_entry) */
typedef struct Uncombine
{
	StringInfoData keys;		/* each key: its length (size_t), its bytes */
	StringInfoData values;		/* each value: the same */
	rocksdb_column_family_handle_t *cf;
	int			n;
} Uncombine;

static void
append_sized(StringInfo buf, const char *data, size_t len)
{
	appendBinaryStringInfo(buf, (const char *) &len, sizeof(len));
	appendBinaryStringInfo(buf, data, len);
}

static const char *
read_sized(const char **pos, size_t *len)
{
	const char *data;

	memcpy(len, *pos, sizeof(*len));
	data = *pos + sizeof(*len);
	*pos = data + *len;
	return data;
}

/*
 * An INSERT of a statement batch whose key the transaction's batch holds
 * too: almanac_xact_put combined a write with the batch's INSERT of the
 * key into an INSERT (the row is still new to the owner).  It becomes an
 * UPDATE of the transaction's own version (see uncombine_open).
 */
static void
uncombine_entry(void *arg, rocksdb_column_family_handle_t *cf,
				const char *k, size_t klen, const char *v, size_t vlen)
{
	Uncombine  *u = arg;
	AlmanacIntent intent;
	char	   *prev;
	size_t		prev_len;
	StringInfoData buf;

	almanac_intent_parse(v, vlen, &intent);
	if (intent.kind != ALMANAC_INTENT_INSERT)
		return;
	prev = almanac_batch_lookup(xact_batch, cf, k, klen, &prev_len);
	if (prev == NULL)
		return;
	pfree(prev);
	intent.kind = ALMANAC_INTENT_UPDATE;
	initStringInfo(&buf);
	almanac_intent_encode(&buf, &intent);
	append_sized(&u->keys, k, klen);
	append_sized(&u->values, buf.data, buf.len);
	pfree(buf.data);
	u->cf = cf;
	u->n++;
}

static void
uncombine_stmt(rocksdb_writebatch_wi_t *stmt, AlmanacReader *reader, uint32 cf_id)
{
	Uncombine	u;
	const char *kpos;
	const char *vpos;

	if (stmt == NULL || rocksdb_writebatch_wi_count(stmt) == 0)
		return;
	initStringInfo(&u.keys);
	initStringInfo(&u.values);
	u.cf = NULL;
	u.n = 0;
	batch_foreach(stmt, reader, cf_id, uncombine_entry, &u);
	kpos = u.keys.data;
	vpos = u.values.data;
	for (int i = 0; i < u.n; i++)
	{
		size_t		klen,
					vlen;
		const char *k = read_sized(&kpos, &klen);
		const char *v = read_sized(&vpos, &vlen);

		rocksdb_writebatch_wi_put_cf(stmt, u.cf, k, klen, v, vlen);
	}
	pfree(u.keys.data);
	pfree(u.values.data);
}

/* almanac_nested_foreach_open's fn for uncombine_open */
static void
uncombine_open_stmt(rocksdb_writebatch_wi_t *stmt, uint32 cf_id, void *arg)
{
	/* merged as it is into an empty batch (almanac_stmt_batch_merge) */
	if (stmt != xact_batch)
		uncombine_stmt(stmt, (AlmanacReader *) arg, cf_id);
}

/*
 * Before the transaction's batch goes to the owner while the transaction
 * goes on: the statement batches of the open writers (the running
 * statement's and those of the statements it runs inside, of any column
 * family) may hold writes not sent yet.  A write of theirs that
 * almanac_xact_put combined with the transaction's INSERT of the key is an
 * INSERT, which the owner checks against the version before the
 * transaction; once that INSERT has gone on its own, the owner holds the
 * transaction's version of the key, which the check would take for a
 * duplicate (23505 at the statement's send or at COMMIT, for a row the
 * transaction only inserted, then updated: an UPDATE that reads a key the
 * transaction wrote before a savepoint, that outgrows
 * almanac.write_batch_size, or that calls a function whose writes send the
 * batch).  So such writes become UPDATEs of the transaction's own version
 * first, which the owner applies unchecked (almanac_versions_apply).  An
 * INSERT of a key new to the transaction that a later command wrote too
 * (so the transaction's batch holds the key) becomes an UPDATE expecting
 * the version its INSERT found under the key lock it still holds: the
 * owner accepts it exactly when it would have accepted the INSERT.
 */
static void
uncombine_open(int store)
{
	if (xact_batch != NULL && rocksdb_writebatch_wi_count(xact_batch) > 0)
		almanac_nested_foreach_open(store, uncombine_open_stmt, almanac_reader(store));
}

/*
 * Send the transaction's batch to the owner, which applies it, and start an
 * empty one.
 *
 * The owner writes the batch with an apply journal entry that it keeps
 * until this backend's WAL records so far (they carry the xids of the
 * batch's versions: see note_xid) are durable; in synced mode it flushes
 * them first instead.  If it did not sync that write (its usual mode: see
 * docs/write-path.md, "PostgreSQL's WAL as the one log"), the batch goes
 * into PostgreSQL's WAL here, as a transactional logical message, after the
 * write and before the commit (or PREPARE) record: the commit record's own
 * flush makes it durable, and the owner replays it at its start if RocksDB
 * lost the write.  Logged after the write, never before: the owner's
 * durable point (an LSN it reads, then syncs RocksDB) must not pass a
 * message whose batch it has not written yet.
 *
 * final: at commit or PREPARE (nothing runs after it); own: see
 * almanac_access_before_send.
 */
/*
 * A batch message buf (header and payload) after the owner applied its
 * payload: into PostgreSQL's WAL if the owner did not sync the write.
 */
static void
log_batch(int store, StringInfo buf, bool to_log, uint64 incarnation, uint64 seq)
{
	StringInfoData head;

	if (!to_log)
		return;
	/* the header again, now that the owner told where it wrote */
	initStringInfo(&head);
	almanac_batch_message_header(&head, incarnation, seq, almanac_shared->stores[store].path);
	Assert(head.len == header_len(store));
	memcpy(buf->data, head.data, head.len);
	pfree(head.data);
	(void) LogLogicalMessage(ALMANAC_WAL_PREFIX, buf->data, buf->len, true);
}

/*
 * Take the owner's answer to the batch posted without waiting, if any, and
 * log its message: raises the owner's error.  Before anything else is sent,
 * before the commit (or PREPARE) record, and before the transaction reads
 * the store (almanac_xact_settle).
 */
static void
settle_posted(void)
{
	int			store = posted_store;
	uint64		seq;
	uint64		incarnation;
	bool		to_log;
	int			doomed = doomed_level;

	if (store < 0)
		return;

	posted_store = -1;
	doomed_level = doom(posted_level);
	to_log = almanac_store_apply_wait(&incarnation, &seq);
	log_batch(store, &posted_message, to_log, incarnation, seq);
	doomed_level = doomed;
	pfree(posted_message.data);
	posted_message.data = NULL;
}

void
almanac_xact_settle(int store)
{
	if (posted_store == store && IsTransactionState())
		settle_posted();
}

/*
 * wait false: post the batch and return, the owner applying it while the
 * transaction goes on (settle_posted takes the answer), unless this is the
 * final send.
 */
static void
ship_batch(bool final, bool own, bool wait)
{
	AlmanacReader *reader;
	StringInfoData buf;
	uint64		seq;
	uint64		incarnation;
	MemoryContext old;
	ShipWalk	walk;
	Restamp    *restamp = &walk.restamp;

	/* earlier sends first: their messages precede this one's in the WAL */
	settle_posted();
	if (final && doomed_level != 0)
		ereport(ERROR,
				(errcode(ERRCODE_TRANSACTION_ROLLBACK),
				 errmsg("the almanac store owner refused writes this transaction sent before its end"),
				 errdetail("The owner's error was raised earlier in the transaction; the transaction cannot commit without those writes.")));
	if (!xact_unsent())
		return;
	/*
	 * The open statements' writes combined with an INSERT this send carries
	 * go as UPDATEs (uncombine_open), and older snapshots' priors of the keys
	 * sent are the store's before (nested.h)
	 */
	if (!final)
		uncombine_open(xact_store);
	walk.priors = !final && almanac_nested_ship_begin(xact_store);
	walk.store = xact_store;
	if (!final)
		before_mid_xact_send(xact_store, own);
	reader = almanac_reader(xact_store);
	/* a posted message outlives the statement that sends it */
	old = MemoryContextSwitchTo(TopTransactionContext);
	initStringInfo(&buf);
	MemoryContextSwitchTo(old);
	almanac_batch_message_header(&buf, 0, 0, almanac_shared->stores[xact_store].path);
	restamp_begin(restamp, &buf, final);
	if (rocksdb_writebatch_wi_count(xact_batch) > 0)
		for (int i = 0; i < xact_ncfs; i++)
		{
			walk.cf_id = xact_cfs[i];
			batch_foreach(xact_batch, reader, xact_cfs[i], append_entry, &walk);
		}
	/* after the batch's: written after them (a write that is not blind folds) */
	if (blind.len > 0 && restamp->nopen == 0)
		appendBinaryStringInfo(&buf, blind.data, blind.len);
	else if (blind.len > 0)
	{
		AlmanacApplyIter it;

		almanac_apply_iter_init(&it, blind.data, blind.len);
		while (almanac_apply_iter_next(&it))
			restamp_append(restamp, it.key, it.klen, it.value, it.vlen);
	}
	restamp_end(restamp);
	/* before the owner writes them */
	if (walk.priors)
		almanac_nested_ship_end(xact_store);
	if (!wait && !final)
	{
		almanac_store_post_apply(xact_store, buf.data + header_len(xact_store),
								 buf.len - header_len(xact_store));
		posted_store = xact_store;
		posted_message = buf;
		posted_level = batch_level;
	}
	else
	{
		int			doomed = doomed_level;
		bool		to_log;

		if (!final)
			doomed_level = doom(batch_level);
		almanac_store_request(xact_store, ALMANAC_REQ_APPLY, buf.data + header_len(xact_store),
							  buf.len - header_len(xact_store), NULL, NULL, NULL);
		to_log = almanac_store_batch_to_log(&incarnation, &seq);
		log_batch(xact_store, &buf, to_log, incarnation, seq);
		doomed_level = doomed;
		pfree(buf.data);
	}
	batch_level = INT_MAX;
	xact_shipped = true;
	rocksdb_writebatch_wi_clear(xact_batch);
	if (blind.data != NULL)
		resetStringInfo(&blind);
	set_all_save_points();
}

/* the batch goes to the owner while the transaction goes on */
static void
ship(void)
{
	ship_batch(false, true, true);
}

/*
 * The earlier statements' writes go to the owner, and the reader catches up
 * with them, in place: the running statement must see them.
 */
static void
ship_earlier(int store)
{
	ship_batch(false, false, true);
	almanac_reader_catch_up(almanac_reader(store));
}

static size_t
batch_bytes(rocksdb_writebatch_wi_t *batch)
{
	size_t		size;

	(void) rocksdb_writebatch_wi_data(batch, &size);
	return size;
}

static void
reset_state(void)
{
	/* an abort's: its versions belong to an aborted transaction */
	if (posted_store >= 0)
		almanac_store_apply_forget();
	posted_store = -1;
	posted_message.data = NULL;	/* TopTransactionContext's */
	almanac_key_locks_xact_end();
	almanac_nested_xact_end();
	if (xact_batch)
		rocksdb_writebatch_wi_destroy(xact_batch);
	xact_batch = NULL;
	if (blind.data != NULL && blind.maxlen > 1024 * 1024)
	{
		/* a large transaction's: do not keep it */
		pfree(blind.data);
		memset(&blind, 0, sizeof(blind));
	}
	else if (blind.data != NULL)
		resetStringInfo(&blind);
	xact_store = -1;
	xact_shipped = false;
	doomed_level = 0;
	batch_level = INT_MAX;
	posted_level = INT_MAX;
	sent_mid_xact = false;
	subxact_wrote = false;
	xact_ncfs = 0;
	xact_logged_xid = InvalidFullTransactionId;
	nsavepoints = 0;
}

/* rebuild_batch's walk of the batch's records */
typedef struct Rebuild
{
	rocksdb_writebatch_wi_t *into;
	AlmanacReader *reader;
	rocksdb_column_family_handle_t *cfs[lengthof(xact_cfs)];	/* xact_cfs' */
	uint32		cut;			/* the records kept */
	uint32		n;				/* the records put into 'into' */
	int			keep;			/* the entries kept */
	int			next;			/* the next of them to set in 'into' */
	bool		failed;
} Rebuild;

/* the kept entries' save points at the records put so far */
static void
rebuild_save_points(Rebuild *r)
{
	for (; r->next < r->keep && savepoints[r->next].count <= r->n; r->next++)
		if (!savepoint_redundant(r->next))
			rocksdb_writebatch_wi_set_save_point(r->into);
}

static void
rebuild_put(void *arg, const AlmanacBatchPut *put)
{
	Rebuild    *r = arg;
	int			i = 0;

	if (r->n == r->cut || r->failed)
		return;
	rebuild_save_points(r);
	while (i < xact_ncfs && xact_cfs[i] != put->cf_id)
		i++;
	/* i == xact_ncfs cannot happen: note_cf notes each column family written */
	if (i < xact_ncfs && r->cfs[i] == NULL)
		r->cfs[i] = almanac_reader_cf_by_id(r->reader, put->cf_id);
	if (i == xact_ncfs || r->cfs[i] == NULL)
	{
		r->failed = true;
		return;
	}
	rocksdb_writebatch_wi_put_cf(r->into, r->cfs[i], put->key, put->klen,
								 put->val, put->vlen);
	r->n++;
}

/*
 * Undo the batch to entry keep's save point, dropping it and every entry
 * after it, with one rebuild of the batch instead of a rollback to each
 * (see savepoints): a new batch gets the records written before that save
 * point, in order (its index then holds the last put of each key, as
 * RocksDB's own rollback would rebuild it), and a save point at each kept
 * entry's count, the redundant ones left out.  Called while a
 * subtransaction aborts, where nothing may raise: false, having changed
 * nothing, if the batch's records cannot be walked (a record other than a
 * put) or a column family written has no handle in the reader (dropped);
 * the caller then rolls back one save point at a time.
 */
static bool
rebuild_batch(int keep)
{
	Rebuild		r;
	const char *rep;
	size_t		len;

	memset(&r, 0, sizeof(r));
	r.cut = savepoints[keep].count;
	r.keep = keep;
	/* the one whose handles wrote the batch (without an instance: none) */
	r.reader = almanac_reader_deferred(xact_store);
	r.into = rocksdb_writebatch_wi_create(0, 1);
	rep = rocksdb_writebatch_wi_data(xact_batch, &len);
	if (!almanac_rocks_batch_each_put(rep, len, rebuild_put, &r) || r.failed ||
		r.n != r.cut || ALMANAC_FAULT_ARMED("savepoint_rebuild_error"))
	{
		rocksdb_writebatch_wi_destroy(r.into);
		return false;
	}
	rebuild_save_points(&r);
	Assert(r.next == keep);
	rocksdb_writebatch_wi_destroy(xact_batch);
	xact_batch = r.into;
	compact_savepoints(keep);
	return true;
}

static void
almanac_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			/* durable in RocksDB before PostgreSQL's commit record */
			ship_batch(true, false, true);
			if (xact_shipped)
				ALMANAC_FAULT_POINT("before_commit_record");
			break;
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * Durable in RocksDB before the PREPARE record, as before a
			 * commit record.  The versions carry the transaction's xid, which
			 * stays in progress while prepared (across a restart too: the
			 * versions stay invisible), until COMMIT PREPARED or ROLLBACK
			 * PREPARED settles it in the commit log.  The key locks
			 * (keylock.h) move to the prepared transaction with its other
			 * locks.
			 */
			ship_batch(true, false, true);
			break;
		case XACT_EVENT_COMMIT:
			if (xact_shipped)
				ALMANAC_FAULT_POINT("after_commit_record");
			reset_state();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			reset_state();
			break;
		default:
			break;
	}
}

static void
almanac_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:

			/*
			 * Nothing: whatever can raise here would leave the
			 * subtransaction half started (see savepoints).
			 */
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			/* the released subtransaction's writes are its parent's now */
			{
				int			level = GetCurrentTransactionNestLevel();

				for (int i = nsavepoints - 1; i >= 0 && savepoints[i].level >= level; i--)
					savepoints[i].level = level - 1;
				if (doomed_level >= level)
					doomed_level = level - 1;
				if (batch_level != INT_MAX && batch_level >= level)
					batch_level = level - 1;
				if (posted_level != INT_MAX && posted_level >= level)
					posted_level = level - 1;
			}
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			{
				int			level = GetCurrentTransactionNestLevel();
				int			first = nsavepoints;

				almanac_key_locks_subxact_abort();
				almanac_nested_subxact_abort(mySubid);
				/* writes lost at this level or deeper were undone anyway */
				if (doomed_level >= level)
					doomed_level = 0;

				/*
				 * A subtransaction with no save point wrote nothing (its
				 * first write records one): the batch, and the blind writes,
				 * are its parent's.
				 */
				while (first > 0 && savepoints[first - 1].level >= level)
					first--;
				if (first == nsavepoints)
					break;
				/* all written after its first save point: undone */
				if (blind.data != NULL)
					resetStringInfo(&blind);

				/*
				 * Undo to its first save point, through those of the
				 * subtransactions it released (its own from then on): at
				 * once if there are several (see savepoints), else, or if
				 * that fails, one at a time.
				 */
				if (nsavepoints - first > 1 && xact_batch != NULL &&
					rebuild_batch(first))
					break;
				while (nsavepoints > first)
				{
					char	   *err = NULL;

					nsavepoints--;
					/* cannot happen: an entry is recorded in the batch */
					if (xact_batch == NULL)
						continue;
					rocksdb_writebatch_wi_rollback_to_save_point(xact_batch, &err);
					/* cannot happen: every entry has a save point */
					almanac_rocks_error(WARNING, ERRCODE_INTERNAL_ERROR, err,
										"almanac: write batch save point missing");
				}
			}
			break;
		default:
			break;
	}
}

void
almanac_xact_init(void)
{
	DefineCustomIntVariable("almanac.write_batch_size",
							"Size of a transaction's buffered RocksDB writes at which they are sent to the store owner early.",
							"Bounds the memory a large transaction (a bulk COPY) holds in the backend.",
							&almanac_write_batch_size,
							16 * 1024, 64, INT_MAX / 1024,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("almanac.mirror_send_size",
							"Size of a transaction's buffered mirror writes at which they are sent to the store owner without waiting.",
							"The owner applies them while the transaction goes on; 0 sends them at commit (or at almanac.write_batch_size).",
							&almanac_mirror_send_size,
							64, 0, INT_MAX / 1024,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	RegisterXactCallback(almanac_xact_callback, NULL);
	RegisterSubXactCallback(almanac_subxact_callback, NULL);
	almanac_nested_init();
}

rocksdb_writebatch_wi_t *
almanac_stmt_batch_create(void)
{
	return rocksdb_writebatch_wi_create(0, 1);
}

static void
merge_entry(void *arg, rocksdb_column_family_handle_t *cf,
			const char *k, size_t klen, const char *v, size_t vlen)
{
	rocksdb_writebatch_wi_put_cf((rocksdb_writebatch_wi_t *) arg, cf, k, klen, v, vlen);
}

/*
 * merge_entry for a statement's entries: those a later command superseded
 * stay out, and with keep_prior the write each replaces is kept for the
 * readers with older snapshots (nested.h, almanac_nested_keep_prior).
 */
typedef struct MergeCurrent
{
	rocksdb_writebatch_wi_t *into;
	int			store;
	uint32		cf_id;
	CommandId	cid;			/* the statement's */
	bool		keep_prior;
	bool		into_empty;		/* into was empty: no key has a prior there */
} MergeCurrent;

static void
merge_current_entry(void *arg, rocksdb_column_family_handle_t *cf,
					const char *k, size_t klen, const char *v, size_t vlen)
{
	MergeCurrent *mc = arg;

	if (almanac_nested_recorded() &&
		almanac_nested_superseded(mc->store, mc->cf_id, k, klen, mc->cid))
		return;
	if (mc->keep_prior)
	{
		size_t		prior_len = 0;

		/*
		 * A statement's batch holds a key once, so a key of an empty into
		 * finds only what this merge put there: a lookup in the batch it
		 * fills (a search of a skiplist as big as the statement's, each
		 * step a cache miss) would find nothing
		 */
		char	   *prior = mc->into_empty ? NULL
			: almanac_batch_lookup(mc->into, cf, k, klen, &prior_len);

		almanac_nested_keep_prior(mc->store, mc->cf_id, k, klen, mc->cid, prior, prior_len);
		if (prior)
			pfree(prior);
	}
	rocksdb_writebatch_wi_put_cf(mc->into, cf, k, klen, v, vlen);
}

/*
 * A merge's keys when nothing was buffered before: their prior is none.  A
 * key the statement wrote twice is seen twice, which keeps one prior
 * (almanac_nested_keep_prior keeps none for the second write of a merge).
 */
static void
keep_no_prior(void *arg, rocksdb_column_family_handle_t *cf,
			  const char *k, size_t klen, const char *v, size_t vlen)
{
	MergeCurrent *mc = arg;

	almanac_nested_keep_prior(mc->store, mc->cf_id, k, klen, mc->cid, NULL, 0);
}

static void
keep_no_prior_put(void *arg, const AlmanacBatchPut *put)
{
	MergeCurrent *mc = arg;

	if (put->cf_id == mc->cf_id)
		almanac_nested_keep_prior(mc->store, mc->cf_id, put->key, put->klen, mc->cid, NULL, 0);
}

/*
 * merge_entry for a reader's copy of the transaction's entries: what the
 * reader's snapshot sees (a write of a command it does not see replaced
 * by the write before it, or left out if there was none: nested.h)
 */
typedef struct CopySeen
{
	rocksdb_writebatch_wi_t *into;
	rocksdb_column_family_handle_t *cf; /* put_prior's */
	int			store;
	uint32		cf_id;
	CommandId	curcid;			/* the reader's snapshot's */
} CopySeen;

static void
copy_seen_entry(void *arg, rocksdb_column_family_handle_t *cf,
				const char *k, size_t klen, const char *v, size_t vlen)
{
	CopySeen   *cs = arg;
	const char *prior;
	size_t		prior_len;

	if (!almanac_nested_prior(cs->store, cs->cf_id, k, klen, cs->curcid, &prior, &prior_len))
		rocksdb_writebatch_wi_put_cf(cs->into, cf, k, klen, v, vlen);
	else if (prior != NULL)
		rocksdb_writebatch_wi_put_cf(cs->into, cf, k, klen, prior, prior_len);
}

/* almanac_nested_priors_in_range's fn for a scan's copy: the prior over the store's */
static void
put_prior(void *arg, const char *key, size_t klen, const char *prior, size_t prior_len)
{
	CopySeen   *cs = arg;

	rocksdb_writebatch_wi_put_cf(cs->into, cs->cf, key, klen, prior, prior_len);
}

/*
 * A copy of the transaction's writes in cf within [lower, upper) (upper
 * empty: no end), for a scan: it iterates the copy over the store, never the
 * transaction's batch itself, which shipping clears and ROLLBACK TO
 * SAVEPOINT rebuilds under an open iterator (a cursor's).  Only the scan's
 * range is copied, so the cost is that of the rows the scan reads.  NULL
 * when the transaction wrote nothing in this store.
 */
rocksdb_writebatch_wi_t *
almanac_xact_batch_copy(int store, uint32 cf_id, const char *lower, size_t lower_len,
						const char *upper, size_t upper_len)
{
	rocksdb_writebatch_wi_t *batch = almanac_xact_batch(store);
	rocksdb_writebatch_wi_t *copy;
	AlmanacOpenWrites *open;
	int			nopen = almanac_nested_visible(store, cf_id, &open);
	CommandId	curcid = almanac_nested_reader_cid();
	bool		hides = almanac_nested_hides_any(curcid);

	if ((batch == NULL || rocksdb_writebatch_wi_count(batch) == 0) && nopen == 0 && !hides)
		return NULL;
	copy = rocksdb_writebatch_wi_create(0, 1);
	PG_TRY();
	{
		if (batch != NULL && hides)
		{
			CopySeen	cs;

			cs.into = copy;
			cs.store = store;
			cs.cf_id = cf_id;
			cs.curcid = curcid;
			batch_foreach_range(batch, almanac_reader(store), cf_id, lower, lower_len,
								upper, upper_len, copy_seen_entry, &cs);
		}
		else if (batch != NULL)
			batch_foreach_range(batch, almanac_reader(store), cf_id, lower, lower_len,
								upper, upper_len, merge_entry, copy);
		/*
		 * And the priors of keys a send took out of the batch (nested.h):
		 * only a send does, so a transaction that sent nothing while it went
		 * on need not walk the record.
		 */
		if (hides && almanac_xact_sent_mid_xact(store))
		{
			CopySeen	cs;

			cs.into = copy;
			cs.cf = written_cf(almanac_reader(store), cf_id);
			almanac_nested_priors_in_range(store, cf_id, lower, lower_len, upper, upper_len,
										   curcid, put_prior, &cs);
		}

		/*
		 * Over them, what the statements this one runs inside have written
		 * so far (nested.h), the oldest command first, but not the entries a
		 * later command superseded: the batch above has the newer write.
		 */
		for (int i = 0; i < nopen; i++)
		{
			MergeCurrent mc;

			mc.into = copy;
			mc.store = store;
			mc.cf_id = cf_id;
			mc.cid = open[i].cid;
			mc.keep_prior = false;
			mc.into_empty = false;
			batch_foreach_range(open[i].stmt, almanac_reader(store), cf_id, lower, lower_len,
								upper, upper_len, merge_current_entry, &mc);
		}
	}
	PG_CATCH();
	{
		rocksdb_writebatch_wi_destroy(copy);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return copy;
}

/*
 * The statement's writes (all in column family cf) become the transaction's.
 * If the transaction's batch has grown past almanac.write_batch_size, or
 * ship_all is set, it goes to the owner now.
 */
void
almanac_stmt_batch_merge(int store, rocksdb_writebatch_wi_t **stmt,
						 rocksdb_column_family_handle_t *cf, uint32 cf_id,
						 CommandId cid, const void *query, bool ship_all)
{
	rocksdb_writebatch_wi_t *into;
	bool		keep_prior;

	if (rocksdb_writebatch_wi_count(*stmt) == 0)
		return;
	into = xact_batch_for_write(store);
	/* the blind writes came first */
	fold_blind();
	note_cf(cf_id);
	keep_prior = almanac_nested_must_keep_prior(cid, query);
	if (keep_prior && !almanac_nested_recorded() &&
		rocksdb_writebatch_wi_count(into) == 0 && nsavepoints == 0)
	{
		MergeCurrent mc;
		const char *rep;
		size_t		len;

		/*
		 * Nothing buffered before (a load run from a query, after each send):
		 * no key has a prior but the store's row, and the statement's batch
		 * becomes the transaction's as below, once those priors are kept
		 * (first: an ERROR in between leaves the batch the statement's)
		 */
		mc.into = NULL;
		mc.store = store;
		mc.cf_id = cf_id;
		mc.cid = cid;
		rep = rocksdb_writebatch_wi_data(*stmt, &len);
		if (!almanac_rocks_batch_each_put(rep, len, keep_no_prior_put, &mc))
			batch_foreach(*stmt, almanac_reader(store), cf_id, keep_no_prior, &mc);
		rocksdb_writebatch_wi_destroy(into);
		xact_batch = into = *stmt;
		*stmt = NULL;
	}
	else if (almanac_nested_recorded() || keep_prior)
	{
		MergeCurrent mc;

		/*
		 * A command the statement triggered may have written some of its
		 * keys after it did (nested.h): that newer write stays.  A reader
		 * with an older snapshot is open: it must go on reading the writes
		 * this one replaces.
		 */
		mc.into = into;
		mc.store = store;
		mc.cf_id = cf_id;
		mc.cid = cid;
		mc.keep_prior = keep_prior;
		mc.into_empty = rocksdb_writebatch_wi_count(into) == 0;
		batch_foreach(*stmt, almanac_reader(store), cf_id, merge_current_entry, &mc);
		rocksdb_writebatch_wi_clear(*stmt);
	}
	else if (rocksdb_writebatch_wi_count(into) == 0 && nsavepoints == 0)
	{
		/*
		 * Nothing buffered before and no save point to keep: the statement's
		 * batch becomes the transaction's
		 * as it is, instead of being copied entry by entry (the common case
		 * of one big INSERT or COPY).
		 */
		rocksdb_writebatch_wi_destroy(into);
		xact_batch = into = *stmt;
		*stmt = NULL;
	}
	else
	{
		batch_foreach(*stmt, almanac_reader(store), cf_id, merge_entry, into);
		rocksdb_writebatch_wi_clear(*stmt);
	}

	if (ship_all || batch_bytes(into) >= (size_t) almanac_write_batch_size * 1024)
		ship();
}

/*
 * A statement ships its rows while it runs: once its statement batch has
 * grown past almanac.write_batch_size, the batch goes to the owner at once,
 * as the transaction's.  The statement must not see its own shipped rows (it
 * does not: its secondary does not catch up with them, and its scans'
 * iterators read what the secondary had when they opened), but must go on
 * seeing what earlier statements of the transaction wrote; so if those are
 * still in the transaction's batch, they are shipped first, on their own,
 * and the secondary catches up with them before the statement's rows follow.
 * A later row with a key of a shipped chunk is then refused by the owner
 * (23505) rather than by the backend.  Returns whether it shipped: the statement
 * should then ship the rest at its end too (ship_all), so that a next bulk
 * statement starts with an empty batch.  *stmt may be replaced.
 */
bool
almanac_stmt_batch_ship_early(int store, rocksdb_writebatch_wi_t **stmt,
							  rocksdb_column_family_handle_t *cf, uint32 cf_id,
							  CommandId cid, const void *query)
{
	if (batch_bytes(*stmt) < (size_t) almanac_write_batch_size * 1024)
		return false;
	if (xact_unsent())
		ship_earlier(store);
	almanac_stmt_batch_merge(store, stmt, cf, cf_id, cid, query, true);
	if (*stmt == NULL)
		*stmt = almanac_stmt_batch_create();
	return true;
}

char *
almanac_batch_lookup(rocksdb_writebatch_wi_t *batch, rocksdb_column_family_handle_t *cf,
					 const char *key, size_t klen, size_t *vlen)
{
	/* read options of batch lookups: made once, not per row */
	static rocksdb_options_t *opts = NULL;
	char	   *err = NULL;
	char	   *val;
	char	   *copy;

	if (batch == NULL)
		return NULL;
	if (opts == NULL)
		opts = rocksdb_options_create();
	val = rocksdb_writebatch_wi_get_from_batch_cf(batch, opts, cf, key, klen, vlen, &err);
	almanac_rocks_error(ERROR, ERRCODE_INTERNAL_ERROR, err,
						"almanac: lookup in the transaction's write batch failed");
	if (val == NULL)
		return NULL;
	copy = palloc(*vlen);
	memcpy(copy, val, *vlen);
	rocksdb_free(val);
	return copy;
}

char *
almanac_xact_buffered(int store, rocksdb_writebatch_wi_t *stmt,
					  rocksdb_column_family_handle_t *cf, uint32 cf_id,
					  const char *key, size_t klen, size_t *vlen, bool *in_stmt)
{
	char	   *val = almanac_batch_lookup(stmt, cf, key, klen, vlen);
	AlmanacOpenWrites *open;
	int			n;

	*in_stmt = true;
	if (val)
		return val;

	/*
	 * Then what the statements this one runs inside have written so far
	 * (nested.h), the newest command first; an entry a later command
	 * superseded is the transaction's batch's to answer.
	 */
	n = almanac_nested_visible(store, cf_id, &open);
	for (int i = n - 1; i >= 0; i--)
	{
		if (open[i].stmt == stmt)
			continue;
		val = almanac_batch_lookup(open[i].stmt, cf, key, klen, vlen);
		if (val == NULL)
			continue;
		if (!almanac_nested_superseded(store, cf_id, key, klen, open[i].cid))
			return val;
		pfree(val);
		break;
	}
	*in_stmt = false;
	return almanac_batch_lookup(almanac_xact_batch(store), cf, key, klen, vlen);
}

/*
 * Make the writing (sub)transaction's id known to the WAL, once per id.
 *
 * Versions carry the xid of their writer, and PostgreSQL judges them by it.
 * Two things go wrong if the versions may outlive every durable WAL record
 * of that xid.  A transaction that wrote nothing but foreign tables
 * would commit asynchronously (PostgreSQL flushes a commit record only for a
 * transaction that wrote WAL), so a crash could lose a commit whose RocksDB
 * writes are durable.  And after a crash between the RocksDB write and the
 * commit record, recovery would not advance the next xid past it, so a later
 * transaction could get the same id and, by committing, make the orphaned
 * versions visible.  A small transactional WAL message per writing
 * (sub)transaction carries its id (recovery advances past every record's
 * xid); the request's wal_lsn (XactLastRecEnd when the batch is sent) is
 * past it.  The owner keeps the batch's apply journal entry until the WAL
 * is flushed to wal_lsn, and at its start removes the versions of an entry
 * left whose batch message never reached durable WAL (store/owner.c; in
 * synced mode it flushes the WAL to wal_lsn before it writes instead).
 */
static void
note_xid(FullTransactionId xid)
{
	if (FullTransactionIdEquals(xid, xact_logged_xid))
		return;
	(void) LogLogicalMessage(ALMANAC_WAL_PREFIX, "", 0, true);
	xact_logged_xid = xid;
}

/*
 * Combine a new write with an earlier buffered write of the same key, so
 * that the owner checks the combination against the version the
 * transaction's first write was based on.
 */
void
almanac_xact_put(int store, rocksdb_writebatch_wi_t *stmt,
				 rocksdb_column_family_handle_t *cf,
				 const char *key, size_t klen, AlmanacIntent *intent,
				 const char *prev, size_t prev_len, bool prev_in_stmt)
{
	StringInfoData buf;

	/*
	 * An earlier write of another level that must outlive this one goes to
	 * the owner first, and this one stays uncombined: the owner, holding the
	 * transaction's own version of the key, checks nothing more.  Not one in
	 * a statement batch (this statement's, or one it runs inside): this
	 * write replaces nothing there, and goes away with its statement's batch
	 * if its subtransaction rolls back.
	 */
	if (prev && !prev_in_stmt && replaces_outliving_write(prev, prev_len, intent->xid))
	{
		ship_earlier(store);
		prev = NULL;
	}
	if (prev)
	{
		AlmanacIntent p;

		almanac_intent_parse(prev, prev_len, &p);
		intent->expected = p.expected;
		if (p.kind == ALMANAC_INTENT_UPSERT)
		{
			/* a blind write stays blind; a delete keeps its kind */
			if (intent->kind != ALMANAC_INTENT_DELETE)
				intent->kind = ALMANAC_INTENT_UPSERT;
		}
		else if (p.kind == ALMANAC_INTENT_INSERT)
		{
			/* the row is still new: an insert, or a delete of nothing */
			if (intent->kind != ALMANAC_INTENT_DELETE)
				intent->kind = ALMANAC_INTENT_INSERT;
		}
		else if (intent->kind == ALMANAC_INTENT_INSERT)
		{
			/* deleted, then inserted again: replaces the version read */
			intent->kind = ALMANAC_INTENT_UPDATE;
		}
	}

	note_xid(intent->xid);
	initStringInfo(&buf);
	almanac_intent_encode(&buf, intent);
	(void) xact_batch_for_write(store);
	rocksdb_writebatch_wi_put_cf(stmt, cf, key, klen, buf.data, buf.len);
	pfree(buf.data);
}

void
almanac_xact_put_blind(int store, rocksdb_column_family_handle_t *cf, uint32 cf_id,
					   const char *key, size_t klen, const char *image, uint32 image_len)
{
	/* one buffer for every row of the backend, not an allocation per row */
	static StringInfoData buf = {0};
	AlmanacIntent intent;
	rocksdb_writebatch_wi_t *batch;
	size_t		bytes;
	bool		outliving = false;

	if (buf.data == NULL || blind.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		if (buf.data == NULL)
			initStringInfo(&buf);
		if (blind.data == NULL)
			initStringInfo(&blind);
		MemoryContextSwitchTo(old);
	}
	intent.cf_id = cf_id;
	intent.kind = image ? ALMANAC_INTENT_UPSERT : ALMANAC_INTENT_ERASE;
	intent.xid = GetCurrentFullTransactionId();
	intent.top = GetTopTransactionId();
	intent.expected = InvalidFullTransactionId;
	intent.tuple = image;
	intent.tuple_len = image ? image_len : 0;
	note_xid(intent.xid);
	batch = xact_batch_for_write(store);
	note_cf(cf_id);

	/*
	 * Folded into the batch later (fold_blind), this write would replace
	 * there the batch's write of the key, if any: if that one must outlive
	 * this subtransaction, both go to the owner now, in order.  Checked here,
	 * where a send may raise, not when folding, which a read does (see
	 * fold_blind).  The batch's entry is the one the fold would replace: the
	 * blind writes before this one, which the fold puts first, are all
	 * within this (sub)transaction: record_savepoints, above, folded those
	 * of outer levels before it recorded this level's save point.
	 */
	if (GetCurrentTransactionNestLevel() > 1 && rocksdb_writebatch_wi_count(batch) > 0)
	{
		size_t		prev_len;
		char	   *prev = almanac_batch_lookup(batch, cf, key, klen, &prev_len);

		if (prev)
		{
			outliving = replaces_outliving_write(prev, prev_len, intent.xid);
			pfree(prev);
		}
	}
	resetStringInfo(&buf);
	almanac_intent_encode(&buf, &intent);
	almanac_apply_append(&blind, key, klen, buf.data, buf.len);
	if (buf.maxlen > 64 * 1024)
	{
		/* a huge row: do not keep its buffer */
		pfree(buf.data);
		buf.data = NULL;
	}
	bytes = batch_bytes(batch) + blind.len;
	/*
	 * Sent early, without waiting: the owner applies the chunk on another
	 * core while the backend goes on (the statement's next rows, its
	 * foreign-key checks, the next statements), instead of applying all of a
	 * transaction's mirror writes after its commit asked for them.  The next
	 * send, the commit and any read of the store wait for it (settle_posted).
	 */
	if (almanac_mirror_send_size > 0 &&
		(outliving ||
		 bytes >= (size_t) Min(almanac_mirror_send_size, almanac_write_batch_size) * 1024))
		ship_batch(false, true, false);
	else if (outliving || bytes >= (size_t) almanac_write_batch_size * 1024)
		ship();
}

void
almanac_xact_ingest_post(int store, FullTransactionId xid, dsm_segment *seg, Size payload_len)
{
	(void) xact_batch_for_write(store);

	/*
	 * Earlier writes first: the owner's check must see them, and they are
	 * older.  As in almanac_stmt_batch_ship_early, the secondary catches up
	 * with them, for the rows of a refused chunk to be checked against.
	 */
	if (xact_unsent())
		ship_earlier(store);
	note_xid(xid);
	before_mid_xact_send(store, true);
	/*
	 * The xid is in durable WAL before its versions exist: an ingested file
	 * carries no apply journal entry that would let the owner's next start
	 * remove its versions if a crash lost the xid (store/owner.c, (b)).
	 */
	XLogFlush(XactLastRecEnd);
	xact_shipped = true;
	almanac_store_post_ingest(store, seg, payload_len);
}
