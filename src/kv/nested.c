/*-------------------------------------------------------------------------
 *
 * nested.c
 *	  Writes of commands nested in a writing statement (nested.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "tcop/pquery.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "kv/nested.h"

/* a key written: its bytes live in nested_cxt */
typedef struct NestedKey
{
	int			store;
	uint32		cf_id;
	uint32		klen;
	const char *key;
} NestedKey;

typedef struct NestedWrite
{
	CommandId	cid;
	SubTransactionId subid;
} NestedWrite;

typedef struct NestedEntry
{
	NestedKey	key;			/* hash key: first */
	int			nwrites;
	int			maxwrites;
	NestedWrite *writes;
} NestedEntry;

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

/* the writes of later commands while writers are open: NULL when none */
static MemoryContext nested_cxt = NULL;
static HTAB *nested = NULL;

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
	char	   *bytes = MemoryContextAlloc(nested_cxt, Max(s->klen, 1));

	memcpy(bytes, s->key, s->klen);
	*d = *s;
	d->key = bytes;
	return dest;
}

/* key's entry, or NULL */
static NestedEntry *
find_entry(int store, uint32 cf_id, const char *key, size_t klen)
{
	NestedKey	k;

	if (nested == NULL)
		return NULL;
	k.store = store;
	k.cf_id = cf_id;
	k.klen = (uint32) klen;
	k.key = key;
	return hash_search(nested, &k, HASH_FIND, NULL);
}

static void
forget_all(void)
{
	if (nested_cxt != NULL)
		MemoryContextDelete(nested_cxt);
	nested_cxt = NULL;
	nested = NULL;
}

/* a writer, or with portal set a locking scan (almanac_nested_lock_scan_open) */
static void
open_writer(CommandId cid, int store, uint32 cf_id, rocksdb_writebatch_wi_t **stmt,
			void *portal)
{
	if (nopen == maxopen)
	{
		maxopen = Max(8, maxopen * 2);
		open_writers = open_writers
			? repalloc(open_writers, sizeof(OpenWriter) * maxopen)
			: MemoryContextAlloc(TopMemoryContext, sizeof(OpenWriter) * maxopen);
		visible = visible
			? repalloc(visible, sizeof(AlmanacOpenWrites) * maxopen)
			: MemoryContextAlloc(TopMemoryContext, sizeof(AlmanacOpenWrites) * maxopen);
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
	NestedKey	k;
	NestedEntry *e;
	bool		found;

	if (nopen == 0)
		return;

	/*
	 * Not nested (the outermost writer's command, or a write no open writer
	 * will ask about: a BEFORE trigger that writes another table for each
	 * row): recorded only for a key a nested command wrote already, so that
	 * the record keeps the order.
	 */
	if (!nested_in_open_writer(store, cf_id, cid) &&
		find_entry(store, cf_id, key, klen) == NULL)
		return;
	if (nested == NULL)
	{
		HASHCTL		ctl;

		nested_cxt = AllocSetContextCreate(TopTransactionContext, "almanac nested writes",
										   ALLOCSET_SMALL_SIZES);
		ctl.keysize = sizeof(NestedKey);
		ctl.entrysize = sizeof(NestedEntry);
		ctl.hash = nested_hash;
		ctl.match = nested_match;
		ctl.keycopy = nested_keycopy;
		ctl.hcxt = nested_cxt;
		nested = hash_create("almanac nested writes", 64, &ctl,
							 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_KEYCOPY |
							 HASH_CONTEXT);
	}
	k.store = store;
	k.cf_id = cf_id;
	k.klen = (uint32) klen;
	k.key = key;
	e = hash_search(nested, &k, HASH_ENTER, &found);
	if (!found)
	{
		e->nwrites = 0;
		e->maxwrites = 4;
		e->writes = MemoryContextAlloc(nested_cxt, sizeof(NestedWrite) * e->maxwrites);
	}
	else if (e->nwrites == e->maxwrites)
	{
		e->maxwrites *= 2;
		e->writes = repalloc(e->writes, sizeof(NestedWrite) * e->maxwrites);
	}
	e->writes[e->nwrites].cid = cid;
	e->writes[e->nwrites].subid = GetCurrentSubTransactionId();
	e->nwrites++;
}

bool
almanac_nested_recorded(void)
{
	return nested != NULL;
}

bool
almanac_nested_superseded(int store, uint32 cf_id, const char *key, size_t klen, CommandId cid)
{
	NestedEntry *e = find_entry(store, cf_id, key, klen);

	return e != NULL && e->nwrites > 0 && e->writes[e->nwrites - 1].cid > cid;
}

bool
almanac_nested_written_after(int store, uint32 cf_id, const char *key, size_t klen, CommandId cid)
{
	NestedEntry *e = find_entry(store, cf_id, key, klen);

	if (e == NULL)
		return false;
	for (int i = 0; i < e->nwrites; i++)
		if (e->writes[i].cid > cid)
			return true;
	return false;
}

/*
 * Subtransaction ids grow, so every subtransaction that began after subid
 * and wrote before its rollback is subid itself or one inside it: the
 * writes to forget are those of subid or later.
 */
void
almanac_nested_subxact_abort(SubTransactionId subid)
{
	HASH_SEQ_STATUS seq;
	NestedEntry *e;

	/*
	 * The writers begun in it are dead, whenever their memory goes (a SQL
	 * function's executor state lives until the function's next call, or
	 * the transaction's end): later commands must not see their batches.
	 */
	for (int i = nopen - 1; i >= 0; i--)
		if (open_writers[i].subid >= subid)
			drop_writer(i);
	if (nested == NULL)
		return;
	hash_seq_init(&seq, nested);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		int			kept = 0;

		for (int i = 0; i < e->nwrites; i++)
			if (e->writes[i].subid < subid)
				e->writes[kept++] = e->writes[i];
		e->nwrites = kept;
	}
}

void
almanac_nested_xact_end(void)
{
	nopen = 0;
	forget_all();
}
