/*-------------------------------------------------------------------------
 *
 * visibility.c
 *	  Stored version lists and intents, and their judgement by snapshots
 *	  and the commit log.  See visibility.h for the contract.
 *
 * Stored value (all integers big-endian):
 *	 u8 ALMANAC_STORED_FORMAT, u16 nversions, then per version, newest first:
 *	 u64 full xid, u32 top-level xid, u8 flags, u32 image length, image bytes.
 *
 * Intent (the value of a write-batch entry):
 *	 u8 ALMANAC_INTENT_FORMAT, u32 column family id, u8 kind, u64 full xid,
 *	 u32 top-level xid, u64 expected full xid, then the image to the end.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "storage/procarray.h"
#include "utils/snapmgr.h"

#include "almanac.h"
#include "codec/bigendian.h"
#include "codec/visibility.h"

#define STORED_HEADER_LEN	(1 + 2)
#define VERSION_HEADER_LEN	(8 + 4 + 1 + 4)
#define VERSION_FLAGS_POS	(8 + 4)
#define INTENT_HEADER_LEN	(1 + 4 + 1 + 8 + 4 + 8)

static void
corrupted(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("almanac store value is corrupted: %s", what),
			 errhint("The value was not written by this version of almanac, or the store was modified by something else.")));
}

/*
 * Read the version at *p (before end) into v and move *p past it; v->tuple
 * points into the value.
 */
static void
read_version(const char **p, const char *end, AlmanacVersion *v)
{
	if (end - *p < VERSION_HEADER_LEN)
		corrupted("truncated version header");
	v->xid = FullTransactionIdFromU64(almanac_get_be64(*p));
	v->top = almanac_get_be32(*p + 8);
	v->flags = (uint8) (*p)[VERSION_FLAGS_POS];
	v->tuple_len = almanac_get_be32(*p + 13);
	*p += VERSION_HEADER_LEN;
	if ((size_t) (end - *p) < v->tuple_len)
		corrupted("truncated row image");
	v->tuple = *p;
	*p += v->tuple_len;
}

/* the number of versions of a stored list, after checking its header */
static int
versions_count(const char *data, size_t len)
{
	if (len < STORED_HEADER_LEN || (uint8) data[0] != ALMANAC_STORED_FORMAT)
		corrupted(len < 1 ? "empty value" : "unknown format byte");
	return almanac_get_be16(data + 1);
}

/*
 * Parse a stored version list.  The versions point into 'data', which must
 * outlive them.  Returns the number of versions.
 */
int
almanac_versions_parse(const char *data, size_t len, AlmanacVersion **versions)
{
	const char *p = data + STORED_HEADER_LEN;
	const char *end = data + len;
	int			n = versions_count(data, len);
	AlmanacVersion *v;

	v = palloc(sizeof(AlmanacVersion) * Max(n, 1));
	for (int i = 0; i < n; i++)
		read_version(&p, end, &v[i]);
	if (p != end)
		corrupted("trailing bytes");
	*versions = v;
	return n;
}

/* frozen: judged without the commit log (see ALMANAC_VERSION_FROZEN) */
bool
almanac_version_frozen(const AlmanacVersion *v)
{
	return (v->flags & ALMANAC_VERSION_FROZEN) != 0 ||
		XidFromFullTransactionId(v->xid) == FrozenTransactionId;
}

/*
 * Is this version visible to the snapshot?  The same judgement as a heap
 * tuple's xmin: our own (sub)transactions, then the snapshot, then the commit
 * log.
 */
static bool
version_visible(const AlmanacVersion *v, Snapshot snapshot)
{
	TransactionId xid = XidFromFullTransactionId(v->xid);

	if (almanac_version_frozen(v))
		return true;
	if (TransactionIdIsCurrentTransactionId(xid))
		return true;
	if (XidInMVCCSnapshot(xid, snapshot))
		return false;
	return TransactionIdDidCommit(xid);
}

/*
 * The version of a stored list that the snapshot sees, newest first, judged
 * in place: the same structure checks as almanac_versions_parse over the
 * whole value, but nothing is allocated (a scan judges one value per key it
 * passes).  False when it sees none; the caller treats a visible tombstone
 * as "no row".  *version points into data.
 */
bool
almanac_versions_find_visible(const char *data, size_t len, Snapshot snapshot,
							  AlmanacVersion *version)
{
	const char *p = data + STORED_HEADER_LEN;
	const char *end = data + len;
	int			n = versions_count(data, len);
	bool		found = false;

	for (int i = 0; i < n; i++)
	{
		AlmanacVersion v;

		read_version(&p, end, &v);
		if (!found && version_visible(&v, snapshot))
		{
			*version = v;
			found = true;
		}
	}
	if (p != end)
		corrupted("trailing bytes");
	return found;
}

bool
almanac_is_intent(const char *data, size_t len)
{
	return len >= 1 && (uint8) data[0] == ALMANAC_INTENT_FORMAT;
}

void
almanac_intent_encode(StringInfo buf, const AlmanacIntent *intent)
{
	appendStringInfoChar(buf, (char) ALMANAC_INTENT_FORMAT);
	almanac_append_be32(buf, intent->cf_id);
	appendStringInfoChar(buf, (char) intent->kind);
	almanac_append_be64(buf, U64FromFullTransactionId(intent->xid));
	almanac_append_be32(buf, intent->top);
	almanac_append_be64(buf, U64FromFullTransactionId(intent->expected));
	if (intent->tuple_len > 0)
		appendBinaryStringInfo(buf, intent->tuple, intent->tuple_len);
}

void
almanac_intent_parse(const char *data, size_t len, AlmanacIntent *intent)
{
	if (len < INTENT_HEADER_LEN || (uint8) data[0] != ALMANAC_INTENT_FORMAT)
		corrupted("malformed write intent");
	intent->cf_id = almanac_get_be32(data + 1);
	intent->kind = (AlmanacIntentKind) (uint8) data[5];
	intent->xid = FullTransactionIdFromU64(almanac_get_be64(data + 6));
	intent->top = almanac_get_be32(data + 14);
	intent->expected = FullTransactionIdFromU64(almanac_get_be64(data + 18));
	intent->tuple = data + INTENT_HEADER_LEN;
	intent->tuple_len = len - INTENT_HEADER_LEN;
	if (intent->kind < ALMANAC_INTENT_INSERT || intent->kind > ALMANAC_INTENT_ERASE)
		corrupted("unknown write intent kind");
}

/* owner side: the commit log's verdict on a version */
static bool
version_committed(const AlmanacVersion *v)
{
	return almanac_version_frozen(v) ||
		TransactionIdDidCommit(XidFromFullTransactionId(v->xid));
}

static bool
version_aborted(const AlmanacVersion *v)
{
	TransactionId xid = XidFromFullTransactionId(v->xid);

	if (almanac_version_frozen(v) || TransactionIdDidCommit(xid))
		return false;
	/* in progress: not (yet) aborted; a crashed transaction is neither */
	if (TransactionIdIsInProgress(xid))
		return false;

	/*
	 * Ask the commit log again: the transaction may have committed between
	 * the two questions above (a writer's versions are applied before its
	 * commit record, so its commit can run while we judge them).  A
	 * transaction marks its commit in the commit log before it leaves the
	 * procarray, so once it is not in progress the commit log is final (the
	 * order heapam_visibility.c relies on).
	 */
	return !TransactionIdDidCommit(xid);
}

static void
append_version(StringInfo out, FullTransactionId xid, TransactionId top,
			   uint8 flags, const char *tuple, uint32 tuple_len)
{
	almanac_append_be64(out, U64FromFullTransactionId(xid));
	almanac_append_be32(out, top);
	appendStringInfoChar(out, (char) flags);
	almanac_append_be32(out, tuple_len);
	if (tuple_len > 0)
		appendBinaryStringInfo(out, tuple, tuple_len);
}

/*
 * Append to 'out' the versions of a stored list that a snapshot may still
 * need, at most 'room' of them, and return how many.  Aborted versions are
 * dropped.  Of the committed versions that precede 'horizon' (every snapshot
 * that can still run sees them all as committed) only the newest is kept,
 * frozen, so that its judgement no longer needs the commit log; the ones
 * below it are hidden by it from every such snapshot.  Versions written by
 * 'replaced' (if valid: the writer of the version put above them) are
 * dropped too: a snapshot sees all of a (sub)transaction's versions or none,
 * and the newest hides the others.
 */
static int
append_needed_versions(StringInfo out, const AlmanacVersion *versions, int n,
					   TransactionId horizon, int room, FullTransactionId replaced)
{
	int			kept = 0;

	for (int i = 0; i < n && kept < room; i++)
	{
		const AlmanacVersion *v = &versions[i];

		/* a frozen version is below the horizon; its xid may be too old to compare */
		if (!almanac_version_frozen(v))
		{
			if (FullTransactionIdEquals(v->xid, replaced) || version_aborted(v))
				continue;
			if (!version_committed(v) ||
				!TransactionIdPrecedes(XidFromFullTransactionId(v->xid), horizon))
			{
				append_version(out, v->xid, v->top, v->flags, v->tuple, v->tuple_len);
				kept++;
				continue;
			}
		}
		append_version(out, v->xid, v->top, v->flags | ALMANAC_VERSION_FROZEN,
					   v->tuple, v->tuple_len);
		return kept + 1;
	}
	return kept;
}

static void
set_version_count(StringInfo out, int count_pos, int count)
{
	almanac_put_be16(out->data + count_pos, (uint16) count);
}

/*
 * The header of the stored value of a key that had no versions, after an
 * INSERT: what almanac_versions_apply makes of it, the image follows.  Bulk
 * loads (kv/bulk.h) build it in the backend.
 */
void
almanac_versions_new(char *out, FullTransactionId xid, TransactionId top, uint32 tuple_len)
{
	StaticAssertStmt(ALMANAC_NEW_VALUE_HEADER_LEN == STORED_HEADER_LEN + VERSION_HEADER_LEN,
					 "header length of a new value");
	out[0] = (char) ALMANAC_STORED_FORMAT;
	almanac_put_be16(out + 1, 1);
	almanac_put_be64(out + STORED_HEADER_LEN, U64FromFullTransactionId(xid));
	almanac_put_be32(out + STORED_HEADER_LEN + 8, top);
	out[STORED_HEADER_LEN + VERSION_FLAGS_POS] = 0;
	almanac_put_be32(out + STORED_HEADER_LEN + VERSION_FLAGS_POS + 1, tuple_len);
}

/*
 * Owner side: is every version of a stored value aborted?  Such a value is
 * as good as no value: every write drops those versions.
 */
bool
almanac_versions_all_aborted(const char *stored, size_t stored_len)
{
	AlmanacVersion *versions;
	int			n = almanac_versions_parse(stored, stored_len, &versions);
	bool		all = true;

	for (int i = 0; i < n && all; i++)
		all = version_aborted(&versions[i]);
	pfree(versions);
	return all;
}

/*
 * An intent the check refuses: unless its writer rolled back since it was
 * sent.  A batch posted without waiting (kv/xact.c, almanac.mirror_send_size)
 * is applied while its transaction goes on, maybe after a subtransaction that
 * wrote some of its intents rolled back (ROLLBACK TO SAVEPOINT, an exception
 * block).  Such an intent was based on what that subtransaction saw: say its
 * own delete of a committed row, sent before, which made its INSERT of the
 * key or its UPDATE expecting its own version right.  Aborted now, that
 * delete no longer counts, and the check would find the committed row again:
 * 23505 or 40001 for writes that count for nothing, raised in the
 * transaction that rolled them back.  Its writes abort with it, so such an
 * intent is dropped instead, as an aborted version would be.  (A write based
 * on an aborted version is the aborted subtransaction's own or its
 * descendant's: those the writer saw of its own transaction are its
 * ancestors' and those released into them.)
 */
static AlmanacApplyResult
refused(const AlmanacIntent *intent, AlmanacApplyResult r)
{
	AlmanacVersion writer = {.xid = intent->xid};

	return version_aborted(&writer) ? ALMANAC_APPLY_ABORTED : r;
}

/*
 * Merge an intent into the stored value (stored == NULL: the key is new).
 *
 * The conflict check runs in the owner, one batch at a time, so it sees every
 * write made durable before this one.  Versions of the intent's own top-level
 * transaction (written by an earlier chunk of it) are judged first: if the
 * transaction already wrote the key, its newest live write decides.
 * Otherwise the newest version that is not aborted must be the one the write
 * was based on; an INSERT needs it absent or deleted.  A refused intent whose
 * writer rolled back since is ALMANAC_APPLY_ABORTED: nothing to write
 * (refused).
 *
 * On success 'out' receives the new version list: the intent as newest
 * version, then the older versions a running snapshot may still need (see
 * append_needed_versions).
 */
AlmanacApplyResult
almanac_versions_apply(StringInfo out,
					   const char *stored, size_t stored_len,
					   const AlmanacIntent *intent, TransactionId horizon)
{
	AlmanacVersion *versions = NULL;
	int			n = 0;
	const AlmanacVersion *own = NULL;
	const AlmanacVersion *other = NULL;
	int			count_pos;
	int			kept = 1;

	if (stored != NULL)
		n = almanac_versions_parse(stored, stored_len, &versions);

	for (int i = 0; i < n && other == NULL; i++)
	{
		if (version_aborted(&versions[i]))
			continue;
		/* a frozen version's top-level xid may have been reused since */
		if (!almanac_version_frozen(&versions[i]) && versions[i].top == intent->top)
		{
			if (own == NULL)
				own = &versions[i];
			continue;
		}
		other = &versions[i];
	}

	switch (intent->kind)
	{
		case ALMANAC_INTENT_INSERT:
			if (own != NULL)
			{
				if (!(own->flags & ALMANAC_VERSION_DELETED))
					return refused(intent, ALMANAC_APPLY_DUPLICATE);
			}
			else if (other != NULL && !(other->flags & ALMANAC_VERSION_DELETED))
				return refused(intent, version_committed(other) ?
							   ALMANAC_APPLY_DUPLICATE : ALMANAC_APPLY_CONFLICT);
			break;
		case ALMANAC_INTENT_UPDATE:
		case ALMANAC_INTENT_DELETE:
			/* based on our own earlier write: that write was checked already */
			if (own != NULL)
				break;
			/* expected nothing (a delete of a row only we inserted) */
			if (other == NULL)
			{
				if (FullTransactionIdIsValid(intent->expected))
					return refused(intent, ALMANAC_APPLY_CONFLICT);
			}
			else if (!FullTransactionIdEquals(other->xid, intent->expected))
				return refused(intent, ALMANAC_APPLY_CONFLICT);
			break;
		case ALMANAC_INTENT_UPSERT:
		case ALMANAC_INTENT_ERASE:
			break;
	}

	appendStringInfoChar(out, (char) ALMANAC_STORED_FORMAT);
	count_pos = out->len;
	almanac_append_be16(out, 0);			/* patched below */
	append_version(out, intent->xid, intent->top,
				   (intent->kind == ALMANAC_INTENT_DELETE ||
					intent->kind == ALMANAC_INTENT_ERASE) ? ALMANAC_VERSION_DELETED : 0,
				   intent->tuple, intent->tuple_len);

	kept += append_needed_versions(out, versions, n, horizon, PG_UINT16_MAX - 1, intent->xid);
	set_version_count(out, count_pos, kept);

	if (versions)
		pfree(versions);
	return ALMANAC_APPLY_OK;
}

/*
 * The freeze sweep's rewrite of a stored value (the owner walks every key,
 * so that versions of keys nobody writes again are frozen before the commit
 * log forgets their xids): the same pruning and freezing as
 * almanac_versions_apply, without a new version.
 *
 * Returns false when the value would stay as it is.  Otherwise 'out' (empty
 * on entry) receives the new value, or stays empty when the key can be
 * removed: no version is left, or only a frozen deletion, which every
 * snapshot that can still run judges exactly like an absent key.
 */
bool
almanac_versions_freeze(StringInfo out, const char *stored, size_t stored_len,
						TransactionId horizon)
{
	AlmanacVersion *versions;
	int			n = almanac_versions_parse(stored, stored_len, &versions);
	int			count_pos;
	int			kept;
	bool		changed;

	appendStringInfoChar(out, (char) ALMANAC_STORED_FORMAT);
	count_pos = out->len;
	almanac_append_be16(out, 0);			/* patched below */
	kept = append_needed_versions(out, versions, n, horizon, PG_UINT16_MAX,
								  InvalidFullTransactionId);
	set_version_count(out, count_pos, kept);

	if (kept == 1)
	{
		uint8		flags = (uint8) out->data[STORED_HEADER_LEN + VERSION_FLAGS_POS];

		if ((flags & ALMANAC_VERSION_FROZEN) && (flags & ALMANAC_VERSION_DELETED))
			kept = 0;
	}
	if (kept == 0)
		resetStringInfo(out);
	changed = out->len != stored_len || memcmp(out->data, stored, stored_len) != 0;
	pfree(versions);
	return changed;
}

/*
 * Owner side, an orphan's removal (owner.c, the apply journal): drop the
 * versions written by 'xid' (a transaction that never committed, whose xid
 * PostgreSQL may hand out again).  Returns false when the value has none;
 * otherwise 'out' (empty on entry) receives the new value, or stays empty
 * when no version is left and the key can go.  Frozen versions are kept:
 * a frozen version committed, so it is never the orphan's.  Nothing else is
 * judged: the commit log may know nothing of 'xid' yet.
 */
bool
almanac_versions_remove_xid(StringInfo out, const char *stored, size_t stored_len,
							FullTransactionId xid)
{
	AlmanacVersion *versions;
	int			n = almanac_versions_parse(stored, stored_len, &versions);
	int			count_pos;
	int			kept = 0;

	appendStringInfoChar(out, (char) ALMANAC_STORED_FORMAT);
	count_pos = out->len;
	almanac_append_be16(out, 0);			/* patched below */
	for (int i = 0; i < n; i++)
	{
		const AlmanacVersion *v = &versions[i];

		if (!almanac_version_frozen(v) && FullTransactionIdEquals(v->xid, xid))
			continue;
		append_version(out, v->xid, v->top, v->flags, v->tuple, v->tuple_len);
		kept++;
	}
	set_version_count(out, count_pos, kept);
	pfree(versions);
	if (kept == n)
	{
		resetStringInfo(out);
		return false;
	}
	if (kept == 0)
		resetStringInfo(out);
	return true;
}
