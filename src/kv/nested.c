/*-------------------------------------------------------------------------
 *
 * nested.c
 *	  Writes of commands nested in a writing statement (nested.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "executor/executor.h"
#include "tcop/pquery.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "almanac.h"
#include "codec/visibility.h"
#include "kv/nested.h"
#include "kv/reader.h"
#include "kv/rocks.h"
#include "kv/xact.h"

/* a key written: its bytes live in its record's memory context */
typedef struct NestedKey
{
	int			store;
	uint32		cf_id;
	uint32		klen;
	const char *key;
} NestedKey;

/* a write of a key recorded: the writing command, the subtransaction */
typedef struct KeyWrite
{
	CommandId	cid;
	SubTransactionId subid;
} KeyWrite;

/*
 * A record of writes per key (the nested writes; the priors kept for older
 * readers), in a memory context of its own, NULL until a write is
 * recorded.  Each key's entry holds its writes in the order recorded, as
 * items of itemsize bytes that start with a KeyWrite.
 */
typedef struct KeyRecord
{
	const char *name;
	Size		itemsize;
	MemoryContext cxt;
	HTAB	   *hash;
} KeyRecord;

typedef struct KeyEntry
{
	NestedKey	key;			/* hash key: first */
	int			nwrites;
	int			maxwrites;
	char	   *writes;			/* nwrites items */
	/*
	 * the priors' record: the command id of the key's last merged write,
	 * recorded or not (InvalidCommandId: not known)
	 */
	CommandId	last_cid;
	/* the priors' record: has a write whose prior is the store's row (NULL) */
	bool		unpinned;
} KeyEntry;

/* write i of entry e, an item of type */
#define KEY_WRITE(e, i, type) (&((type *) (e)->writes)[i])

/* a writer open in this transaction */
typedef struct OpenWriter
{
	CommandId	cid;
	int			store;
	uint32		cf_id;
	rocksdb_writebatch_wi_t **stmt;
	SubTransactionId subid;		/* the subtransaction it began in */
	void	   *portal;			/* a locking scan's portal, or NULL */
} OpenWriter;

/* writers open in this transaction, in the order opened */
static OpenWriter *open_writers = NULL;
static int	nopen = 0;
static int	maxopen = 0;

/* almanac_nested_visible's answer */
static AlmanacOpenWrites *visible = NULL;

/* the writes of later commands while writers are open */
static KeyRecord nested = {"almanac nested writes", sizeof(KeyWrite), NULL, NULL};

/* the record whose hash_search(HASH_ENTER) runs: its keycopy's context */
static KeyRecord *entering = NULL;

static uint32
nested_hash(const void *key, Size keysize)
{
	const NestedKey *k = key;

	return hash_combine(hash_bytes((const unsigned char *) k->key, k->klen),
						hash_combine((uint32) k->store, k->cf_id));
}

static int
nested_match(const void *key1, const void *key2, Size keysize)
{
	const NestedKey *a = key1;
	const NestedKey *b = key2;

	if (a->store != b->store || a->cf_id != b->cf_id || a->klen != b->klen)
		return 1;
	return memcmp(a->key, b->key, a->klen);
}

static void *
nested_keycopy(void *dest, const void *src, Size keysize)
{
	NestedKey  *d = dest;
	const NestedKey *s = src;
	char	   *bytes = MemoryContextAlloc(entering->cxt, Max(s->klen, 1));

	memcpy(bytes, s->key, s->klen);
	*d = *s;
	d->key = bytes;
	return dest;
}

/* key's entry in r, or NULL */
static KeyEntry *
record_find(KeyRecord *r, int store, uint32 cf_id, const char *key, size_t klen)
{
	NestedKey	k;

	if (r->hash == NULL)
		return NULL;
	k.store = store;
	k.cf_id = cf_id;
	k.klen = (uint32) klen;
	k.key = key;
	return hash_search(r->hash, &k, HASH_FIND, NULL);
}

/*
 * Record a write of key by command cid in the current subtransaction: the
 * new item (zeroed past its KeyWrite), in r's memory context.
 */
static void *
record_append(KeyRecord *r, int store, uint32 cf_id, const char *key, size_t klen,
			  CommandId cid, KeyEntry **entry)
{
	NestedKey	k;
	KeyEntry   *e;
	KeyWrite   *w;
	bool		found;

	if (r->hash == NULL)
	{
		HASHCTL		ctl;

		/* the Internal call: the name is a literal, but reached through r */
		r->cxt = AllocSetContextCreateInternal(TopTransactionContext, r->name,
											   ALLOCSET_SMALL_SIZES);
		ctl.keysize = sizeof(NestedKey);
		ctl.entrysize = sizeof(KeyEntry);
		ctl.hash = nested_hash;
		ctl.match = nested_match;
		ctl.keycopy = nested_keycopy;
		ctl.hcxt = r->cxt;
		r->hash = hash_create(r->name, 64, &ctl,
							  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_KEYCOPY |
							  HASH_CONTEXT);
	}
	k.store = store;
	k.cf_id = cf_id;
	k.klen = (uint32) klen;
	k.key = key;
	entering = r;
	e = hash_search(r->hash, &k, HASH_ENTER, &found);
	if (!found)
	{
		e->nwrites = 0;
		e->last_cid = InvalidCommandId;
		e->unpinned = false;
		e->maxwrites = 0;
		e->writes = NULL;
	}

	/*
	 * Most keys are written once while recorded (a load under an older
	 * snapshot keeps a prior per key): room for one write, doubled as
	 * needed.  The capacity changes only once the memory is there: an out
	 * of memory caught by an exception block leaves the entry as it was.
	 */
	if (e->writes == NULL)
	{
		e->writes = MemoryContextAlloc(r->cxt, r->itemsize);
		e->maxwrites = 1;
	}
	else if (e->nwrites == e->maxwrites)
		e->writes = almanac_grow_array(e->writes, e->nwrites, &e->maxwrites, r->itemsize, 1);
	w = (KeyWrite *) (e->writes + r->itemsize * e->nwrites++);
	memset(w, 0, r->itemsize);
	w->cid = cid;
	w->subid = GetCurrentSubTransactionId();
	if (entry)
		*entry = e;
	return w;
}

/*
 * ROLLBACK TO SAVEPOINT subid: forget the writes of subid or later; the
 * command of each key's last write is then not known.  Then after (if not
 * NULL) on each entry.
 */
static void
record_subxact_abort(KeyRecord *r, SubTransactionId subid, void (*after) (KeyEntry *e))
{
	HASH_SEQ_STATUS seq;
	KeyEntry   *e;

	if (r->hash == NULL)
		return;
	hash_seq_init(&seq, r->hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		int			kept = 0;

		for (int i = 0; i < e->nwrites; i++)
		{
			char	   *item = e->writes + r->itemsize * i;

			if (((KeyWrite *) item)->subid < subid)
				memmove(e->writes + r->itemsize * kept++, item, r->itemsize);
		}
		e->nwrites = kept;
		e->last_cid = InvalidCommandId;
		if (after)
			after(e);
	}
}

static void
record_forget(KeyRecord *r)
{
	if (r->cxt != NULL)
		MemoryContextDelete(r->cxt);
	r->cxt = NULL;
	r->hash = NULL;
}

static void
forget_all(void)
{
	record_forget(&nested);
}

/* a writer, or with portal set a locking scan (almanac_nested_lock_scan_open) */
static void
open_writer(CommandId cid, int store, uint32 cf_id, rocksdb_writebatch_wi_t **stmt,
			void *portal)
{
	if (nopen == maxopen)
	{
		int			maxvisible = maxopen;

		/* visible: as many as the writers */
		visible = almanac_grow_array(visible, nopen, &maxvisible, sizeof(AlmanacOpenWrites), 8);
		open_writers = almanac_grow_array(open_writers, nopen, &maxopen, sizeof(OpenWriter), 8);
	}
	open_writers[nopen].cid = cid;
	open_writers[nopen].subid = GetCurrentSubTransactionId();
	open_writers[nopen].store = store;
	open_writers[nopen].cf_id = cf_id;
	open_writers[nopen].stmt = stmt;
	open_writers[nopen].portal = portal;
	nopen++;
}

void
almanac_nested_writer_open(CommandId cid, int store, uint32 cf_id, rocksdb_writebatch_wi_t **stmt)
{
	open_writer(cid, store, cf_id, stmt, NULL);
}

void
almanac_nested_lock_scan_open(CommandId cid, int store, uint32 cf_id, rocksdb_writebatch_wi_t **stmt)
{
	open_writer(cid, store, cf_id, stmt, ActivePortal);
}

/* forget open writer i; the record goes with the last one */
static void
drop_writer(int i)
{
	memmove(&open_writers[i], &open_writers[i + 1], sizeof(OpenWriter) * (nopen - i - 1));
	if (--nopen == 0)
		forget_all();
}

void
almanac_nested_writer_close(rocksdb_writebatch_wi_t **stmt)
{
	/*
	 * A writer's cleanup may run after the transaction's end emptied the
	 * list (its memory goes with the portal's, after the end callbacks), or
	 * after the rollback of the subtransaction it began in dropped it: it is
	 * then not found.
	 */
	for (int i = nopen - 1; i >= 0; i--)
	{
		if (open_writers[i].stmt != stmt)
			continue;
		drop_writer(i);
		return;
	}
}

/*
 * Is a write of command cid to column family cf_id of store nested in an
 * open writer of the same column family (of an earlier command)?  Only such
 * a writer asks about it (almanac_nested_written_after,
 * almanac_nested_superseded): one of another column family never does, nor
 * one begun later, whose command id is not below cid.
 */
static bool
nested_in_open_writer(int store, uint32 cf_id, CommandId cid)
{
	for (int i = 0; i < nopen; i++)
		if (open_writers[i].cid < cid && open_writers[i].store == store &&
			open_writers[i].cf_id == cf_id &&
			(open_writers[i].portal == NULL || open_writers[i].portal == ActivePortal))
			return true;
	return false;
}

void
almanac_nested_foreach_open(int store, almanac_open_batch_fn fn, void *arg)
{
	for (int i = 0; i < nopen; i++)
		if (open_writers[i].store == store && *open_writers[i].stmt != NULL)
			fn(*open_writers[i].stmt, open_writers[i].cf_id, arg);
}

bool
almanac_nested_any_open(void)
{
	/* not a locking scan: its batch is always NULL */
	for (int i = 0; i < nopen; i++)
		if (*open_writers[i].stmt != NULL)
			return true;
	return false;
}

int
almanac_nested_visible(int store, uint32 cf_id, AlmanacOpenWrites **out)
{
	CommandId	reader;
	int			n = 0;

	*out = visible;
	if (nopen == 0 || !ActiveSnapshotSet())
		return 0;
	reader = GetActiveSnapshot()->curcid;
	for (int i = 0; i < nopen; i++)
	{
		OpenWriter *w = &open_writers[i];

		if (w->cid >= reader || w->store != store || w->cf_id != cf_id || *w->stmt == NULL)
			continue;
		visible[n].stmt = *w->stmt;
		visible[n].cid = w->cid;
		/* oldest command first: insert in order (a handful at most) */
		for (int j = n; j > 0 && visible[j - 1].cid > visible[j].cid; j--)
		{
			AlmanacOpenWrites t = visible[j];

			visible[j] = visible[j - 1];
			visible[j - 1] = t;
		}
		n++;
	}
	return n;
}

void
almanac_nested_note_write(int store, uint32 cf_id, const char *key, size_t klen, CommandId cid)
{
	if (nopen == 0)
		return;

	/*
	 * Not nested (the outermost writer's command, or a write no open writer
	 * will ask about: a BEFORE trigger that writes another table for each
	 * row): recorded only for a key a nested command wrote already, so that
	 * the record keeps the order.
	 */
	if (!nested_in_open_writer(store, cf_id, cid) &&
		record_find(&nested, store, cf_id, key, klen) == NULL)
		return;
	(void) record_append(&nested, store, cf_id, key, klen, cid, NULL);
}

bool
almanac_nested_recorded(void)
{
	return nested.hash != NULL;
}

bool
almanac_nested_superseded(int store, uint32 cf_id, const char *key, size_t klen, CommandId cid)
{
	KeyEntry   *e = record_find(&nested, store, cf_id, key, klen);

	return e != NULL && e->nwrites > 0 && KEY_WRITE(e, e->nwrites - 1, KeyWrite)->cid > cid;
}

bool
almanac_nested_written_after(int store, uint32 cf_id, const char *key, size_t klen, CommandId cid)
{
	KeyEntry   *e = record_find(&nested, store, cf_id, key, klen);

	if (e == NULL)
		return false;
	for (int i = 0; i < e->nwrites; i++)
		if (KEY_WRITE(e, i, KeyWrite)->cid > cid)
			return true;
	return false;
}

/*
 * ---- The command ids of the transaction's merged writes ----
 *
 * A statement's writes lose their command id when its batch is merged into
 * the transaction's.  While a snapshot is open whose command id is not
 * above a writing command's (a statement that triggered the command, a
 * cursor declared before it, a query whose STABLE functions read under its
 * snapshot), each key the command's merge writes is recorded with the
 * command id and the transaction's buffered write of the key it replaces
 * (its "prior"; none: the store's row), so that a reader of that snapshot
 * goes on reading what came before (almanac_nested_prior).  The open
 * snapshots are those of every query whose executor is open
 * (nested_executor_start), its foreign scans' (and their restarts') among
 * them: a scan begun later under an older snapshot (a STABLE function's,
 * run with its caller's) uses the snapshot of such a query.
 */

/* a query open in this transaction */
typedef struct OpenReader
{
	CommandId	curcid;			/* its snapshot's */
	const void *query;			/* its executor state */
	SubTransactionId subid;		/* the subtransaction it began in */
} OpenReader;

static OpenReader *open_readers = NULL;
static int	nreaders = 0;
static int	maxreaders = 0;

/* a merged write: the command that made it, the write it replaced */
typedef struct PriorWrite
{
	KeyWrite	w;				/* the command, the merge's subtransaction */
	char	   *prior;			/* the buffered write before; NULL: none */
	uint32		prior_len;
} PriorWrite;

static KeyRecord priors = {"almanac prior writes", sizeof(PriorWrite), NULL, NULL};
static CommandId prior_max_cid = InvalidCommandId;

/* entries of priors whose unpinned is set */
static int	unpinned_entries = 0;

/*
 * The send under way (almanac_nested_ship_begin): the unpinned entries of
 * the keys it writes, in the order named.  Grown by almanac_grow_array, so
 * a growth that fails (out of memory, caught by an exception block) leaves
 * the capacity as it was; kept for the next send unless large.
 */
static KeyEntry **shipping = NULL;
static int	nshipping = 0;
static int	maxshipping = 0;

/* entries of shipping kept between transactions (64 kB of pointers) */
#define SHIPPING_KEEP 8192

/*
 * The merge almanac_nested_must_keep_prior answered for: the newest command
 * id of the open snapshots that do not see it
 */
static CommandId merge_newest_older = InvalidCommandId;

static ExecutorStart_hook_type prev_executor_start = NULL;

static void
forget_priors(void)
{
	record_forget(&priors);
	prior_max_cid = InvalidCommandId;
	unpinned_entries = 0;
	/* its pointers were to the record's entries */
	nshipping = 0;
	if (maxshipping > SHIPPING_KEEP)
	{
		pfree(shipping);
		shipping = NULL;
		maxshipping = 0;
	}
}

CommandId
almanac_nested_reader_cid(void)
{
	return ActiveSnapshotSet() ? GetActiveSnapshot()->curcid : InvalidCommandId;
}

static void
reader_open(CommandId curcid, const void *query)
{
	open_readers = almanac_grow_array(open_readers, nreaders, &maxreaders, sizeof(OpenReader), 8);
	open_readers[nreaders].curcid = curcid;
	open_readers[nreaders].query = query;
	open_readers[nreaders].subid = GetCurrentSubTransactionId();
	nreaders++;
}

/* forget open reader i; the record goes with the last one */
static void
drop_reader(int i)
{
	memmove(&open_readers[i], &open_readers[i + 1], sizeof(OpenReader) * (nreaders - i - 1));
	if (--nreaders == 0)
		forget_priors();
}

/* a query's executor state goes (ExecutorEnd, an ERROR's cleanup) */
static void
executor_reader_close(void *arg)
{
	/* not found after the transaction's end, or its subtransaction's rollback */
	for (int i = nreaders - 1; i >= 0; i--)
	{
		if (open_readers[i].query != arg)
			continue;
		drop_reader(i);
		return;
	}
}

/*
 * ExecutorStart_hook: every query (a cursor's, a PL/pgSQL loop's, the
 * statement that calls a function) is an open reader with its snapshot's
 * command id until its executor state goes, whether or not it scans a
 * foreign table itself: a function it calls later may, under its snapshot.
 * Not an EXPLAIN without ANALYZE, which runs nothing.
 *
 * Registered before its executor starts, keyed by its QueryDesc until the
 * executor state exists: starting runs code after some of its foreign
 * scans began (the initial pruning of a partitioned table's subplans calls
 * STABLE functions, which may call volatile ones that write, with the
 * query's command id), and the merges of those writes must keep what they
 * replace for the query's scans, begun or not (test/t/036).
 */
static void
executor_start(QueryDesc *queryDesc, int eflags)
{
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
nested_executor_start(QueryDesc *queryDesc, int eflags)
{
	Snapshot	snapshot = queryDesc->snapshot;
	MemoryContextCallback *cb = NULL;

	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) || snapshot == InvalidSnapshot ||
		!IsMVCCSnapshot(snapshot))
	{
		executor_start(queryDesc, eflags);
		return;
	}
	reader_open(snapshot->curcid, queryDesc);
	PG_TRY();
	{
		executor_start(queryDesc, eflags);
		if (queryDesc->estate != NULL)
			cb = MemoryContextAlloc(queryDesc->estate->es_query_cxt,
									sizeof(MemoryContextCallback));
	}
	PG_CATCH();
	{
		executor_reader_close(queryDesc);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (cb == NULL)
	{
		executor_reader_close(queryDesc);
		return;
	}
	/* rekeyed by the executor state, which goes with the query */
	for (int i = nreaders - 1; i >= 0; i--)
		if (open_readers[i].query == queryDesc)
		{
			open_readers[i].query = queryDesc->estate;
			break;
		}
	cb->func = executor_reader_close;
	cb->arg = queryDesc->estate;
	MemoryContextRegisterResetCallback(queryDesc->estate->es_query_cxt, cb);
}

void
almanac_nested_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = nested_executor_start;
}

bool
almanac_nested_must_keep_prior(CommandId cid, const void *query)
{
	bool		keep = false;

	merge_newest_older = InvalidCommandId;
	for (int i = 0; i < nreaders; i++)
	{
		if (open_readers[i].curcid > cid ||
			(query != NULL && open_readers[i].query == query))
			continue;
		if (!keep || open_readers[i].curcid > merge_newest_older)
			merge_newest_older = open_readers[i].curcid;
		keep = true;
	}
	return keep;
}

/*
 * A reader of command id s reads the prior of the first write of the key
 * whose command id is not below s.  So a write needs its prior kept only if
 * an open snapshot lies between the key's last write and it (its command id
 * above the last write's, not above this one's): the others are answered by
 * an earlier write's prior, or see this write.  A key rewritten by every
 * statement of a loop under one cursor keeps one prior, not one per
 * statement: the record holds at most one prior per key and open snapshot.
 * The key's last write is known once it has an entry, unless a ROLLBACK TO
 * SAVEPOINT undid writes since (then the prior is kept).
 */
void
almanac_nested_keep_prior(int store, uint32 cf_id, const char *key, size_t klen,
						  CommandId cid, const char *prior, size_t prior_len)
{
	KeyEntry   *e = record_find(&priors, store, cf_id, key, klen);
	PriorWrite *w;

	if (e != NULL && e->last_cid != InvalidCommandId &&
		merge_newest_older != InvalidCommandId && merge_newest_older <= e->last_cid)
	{
		e->last_cid = cid;
		return;
	}
	w = record_append(&priors, store, cf_id, key, klen, cid, &e);
	e->last_cid = cid;
	if (prior != NULL)
	{
		w->prior = MemoryContextAlloc(priors.cxt, Max(prior_len, 1));
		memcpy(w->prior, prior, prior_len);
		w->prior_len = (uint32) prior_len;
	}
	else if (!e->unpinned)
	{
		e->unpinned = true;
		unpinned_entries++;
	}
	if (prior_max_cid == InvalidCommandId || cid > prior_max_cid)
		prior_max_cid = cid;
}

bool
almanac_nested_hides_any(CommandId curcid)
{
	return priors.hash != NULL && prior_max_cid >= curcid;
}

/* the prior the reader of curcid reads for e (see almanac_nested_prior) */
static PriorWrite *
entry_prior(KeyEntry *e, CommandId curcid)
{
	/* the first write the reader does not see: what it replaced */
	for (int i = 0; i < e->nwrites; i++)
	{
		PriorWrite *w = KEY_WRITE(e, i, PriorWrite);

		if (w->w.cid >= curcid)
			return w;
	}
	return NULL;
}

bool
almanac_nested_prior(int store, uint32 cf_id, const char *key, size_t klen, CommandId curcid,
					 const char **prior, size_t *prior_len)
{
	KeyEntry   *e;
	PriorWrite *w;

	if (!almanac_nested_hides_any(curcid))
		return false;
	e = record_find(&priors, store, cf_id, key, klen);
	if (e == NULL || (w = entry_prior(e, curcid)) == NULL)
		return false;
	*prior = w->prior;
	*prior_len = w->prior_len;
	return true;
}

void
almanac_nested_priors_in_range(int store, uint32 cf_id, const char *lower, size_t lower_len,
							   const char *upper, size_t upper_len, CommandId curcid,
							   AlmanacPriorFn fn, void *arg)
{
	HASH_SEQ_STATUS seq;
	KeyEntry   *e;

	if (!almanac_nested_hides_any(curcid))
		return;
	hash_seq_init(&seq, priors.hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		const NestedKey *k = &e->key;
		PriorWrite *w;
		int			c;

		if (k->store != store || k->cf_id != cf_id)
			continue;
		c = memcmp(k->key, lower, Min(k->klen, lower_len));
		if (c < 0 || (c == 0 && k->klen < lower_len))
			continue;
		if (upper_len > 0)
		{
			c = memcmp(k->key, upper, Min(k->klen, upper_len));
			if (c > 0 || (c == 0 && k->klen >= upper_len))
				continue;
		}
		if ((w = entry_prior(e, curcid)) != NULL && w->prior != NULL)
			fn(arg, k->key, k->klen, w->prior, w->prior_len);
	}
}

bool
almanac_nested_ship_begin(int store)
{
	nshipping = 0;
	return unpinned_entries > 0;
}

void
almanac_nested_ship_key(int store, uint32 cf_id, const char *key, size_t klen)
{
	KeyEntry   *e = record_find(&priors, store, cf_id, key, klen);

	if (e == NULL || !e->unpinned)
		return;
	shipping = almanac_grow_array(shipping, nshipping, &maxshipping, sizeof(KeyEntry *), 64);
	shipping[nshipping++] = e;
}

/* the keys of one MultiGet: a bounded copy of values at a time */
#define SHIP_MULTIGET_KEYS 1024

/* entry e's writes whose prior is the store's row take value */
static void
pin_entry(KeyEntry *e, char *value, size_t vlen)
{
	for (int i = 0; i < e->nwrites; i++)
	{
		PriorWrite *w = KEY_WRITE(e, i, PriorWrite);

		if (w->prior != NULL)
			continue;
		w->prior = value;
		w->prior_len = (uint32) vlen;
	}
	e->unpinned = false;
	unpinned_entries--;
}

/* a deletion intent (palloc'd), the prior of a key with no stored value */
static char *
encode_deletion(uint32 cf_id, size_t *len)
{
	AlmanacIntent del = {0};
	StringInfoData buf;

	del.cf_id = cf_id;
	del.kind = ALMANAC_INTENT_DELETE;
	del.xid = del.expected = InvalidFullTransactionId;
	initStringInfo(&buf);
	almanac_intent_encode(&buf, &del);
	*len = buf.len;
	return buf.data;
}

/*
 * The newest stored values are read through the store's lock reader
 * (kv/reader.h), caught up once: the backend's reader may be pinned for
 * the running statement's accesses, which must not see what it sends.  The
 * keys are read by MultiGet in chunks of one column family, in the order
 * the send named them (key order, but for a batch of a few writes, which
 * it reads in the order written); the copies are made in the record's
 * memory, where they stay as the priors.  A key with no stored value gets
 * a deletion, which no snapshot sees as a row: one copy serves a chunk.
 */
void
almanac_nested_ship_end(int store)
{
	static rocksdb_readoptions_t *ropts = NULL;
	AlmanacReader *reader;
	const char **keys;
	size_t	   *klens;
	char	  **values;
	size_t	   *vlens;
	MemoryContext old;

	if (nshipping == 0)
		return;
	if (ropts == NULL)
		ropts = rocksdb_readoptions_create();
	reader = almanac_lock_reader(store);
	almanac_reader_catch_up(reader);
	old = MemoryContextSwitchTo(priors.cxt);
	keys = palloc(sizeof(char *) * SHIP_MULTIGET_KEYS);
	klens = palloc(sizeof(size_t) * SHIP_MULTIGET_KEYS);
	values = palloc(sizeof(char *) * SHIP_MULTIGET_KEYS);
	vlens = palloc(sizeof(size_t) * SHIP_MULTIGET_KEYS);
	for (int start = 0, end; start < nshipping; start = end)
	{
		uint32		cf_id = shipping[start]->key.cf_id;
		rocksdb_column_family_handle_t *cf = almanac_reader_cf_by_id(reader, cf_id);
		bool		sorted = true;
		char	   *deletion = NULL;
		size_t		deletion_len = 0;
		int			n;

		for (end = start; end < nshipping && end - start < SHIP_MULTIGET_KEYS &&
			 shipping[end]->key.cf_id == cf_id; end++)
		{
			const NestedKey *k = &shipping[end]->key;

			n = end - start;
			keys[n] = k->key;
			klens[n] = k->klen;
			if (n > 0 && sorted)
			{
				int			c = memcmp(keys[n - 1], k->key, Min(klens[n - 1], k->klen));

				sorted = c < 0 || (c == 0 && klens[n - 1] < k->klen);
			}
		}
		n = end - start;
		if (cf != NULL)
			almanac_rocks_multiget(almanac_reader_db(reader), ropts, cf, n, keys, klens,
								   sorted, values, vlens);
		else
		{
			/* dropped: no row */
			memset(values, 0, sizeof(char *) * n);
			memset(vlens, 0, sizeof(size_t) * n);
		}
		for (int i = 0; i < n; i++)
		{
			if (values[i] == NULL && deletion == NULL)
				deletion = encode_deletion(cf_id, &deletion_len);
			if (values[i] == NULL)
				pin_entry(shipping[start + i], deletion, deletion_len);
			else
				pin_entry(shipping[start + i], values[i], vlens[i]);
		}
	}
	pfree(keys);
	pfree(klens);
	pfree(values);
	pfree(vlens);
	MemoryContextSwitchTo(old);
	nshipping = 0;
}

/* record_subxact_abort's after for priors: the writes left decide */
static void
recount_unpinned(KeyEntry *e)
{
	e->unpinned = false;
	for (int i = 0; i < e->nwrites && !e->unpinned; i++)
		e->unpinned = KEY_WRITE(e, i, PriorWrite)->prior == NULL;
	if (e->unpinned)
		unpinned_entries++;
}

/* ROLLBACK TO SAVEPOINT subid: its readers and merges are gone */
static void
priors_subxact_abort(SubTransactionId subid)
{
	for (int i = nreaders - 1; i >= 0; i--)
		if (open_readers[i].subid >= subid)
			drop_reader(i);
	unpinned_entries = 0;
	record_subxact_abort(&priors, subid, recount_unpinned);
}

/*
 * Subtransaction ids grow, so every subtransaction that began after subid
 * and wrote before its rollback is subid itself or one inside it: the
 * writes to forget are those of subid or later.
 */
void
almanac_nested_subxact_abort(SubTransactionId subid)
{
	priors_subxact_abort(subid);

	/*
	 * The writers begun in it are dead, whenever their memory goes (a SQL
	 * function's executor state lives until the function's next call, or
	 * the transaction's end): later commands must not see their batches.
	 */
	for (int i = nopen - 1; i >= 0; i--)
		if (open_writers[i].subid >= subid)
			drop_writer(i);
	record_subxact_abort(&nested, subid, NULL);
}

void
almanac_nested_xact_end(void)
{
	nopen = 0;
	forget_all();
	nreaders = 0;
	forget_priors();
}
