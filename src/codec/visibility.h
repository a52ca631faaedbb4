/*-------------------------------------------------------------------------
 *
 * visibility.h
 *	  What a stored RocksDB value looks like, and which of its versions a
 *	  PostgreSQL snapshot sees.
 *
 * PostgreSQL alone decides what is committed.  Every stored value is a list
 * of versions, newest first; each version carries the FullTransactionId of
 * the (sub)transaction that wrote it and the top-level xid it belongs to.  A
 * reader judges each version with its statement's snapshot and the commit
 * log, exactly as a heap tuple is judged:
 *
 *	 - written by the reader's own transaction (or a live subtransaction of
 *	   it): visible;
 *	 - frozen: visible;
 *	 - in progress, or in the snapshot's future: invisible;
 *	 - otherwise visible if and only if the commit log says it committed.
 *
 * The first visible version is the row; a visible tombstone means no row.
 * A crash between the RocksDB write and PostgreSQL's commit record leaves
 * versions of a transaction that never committed: invisible by the same rule.
 *
 * While a transaction runs, its writes are "intents" in its write batch:
 * the new row image plus the xid of the version it was based on.  The store
 * owner turns intents into versions at commit (almanac_versions_apply), and
 * refuses a batch whose intents conflict with what was committed since.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_VISIBILITY_H
#define ALMANAC_VISIBILITY_H

#include "access/transam.h"
#include "lib/stringinfo.h"
#include "utils/snapshot.h"

/* first byte of a stored value (a version list) and of an intent */
#define ALMANAC_STORED_FORMAT	0xA1
#define ALMANAC_INTENT_FORMAT	0xB1

/* version flags */
#define ALMANAC_VERSION_DELETED 0x01

/*
 * Committed, and older than every snapshot that can still run: visible
 * without asking the commit log, which may no longer know the xid.  The xid
 * stays, as the version's identity: a transaction that read the version
 * names it as the version its write is based on.  (Values written before
 * this flag existed mark a frozen version with FrozenTransactionId instead.)
 */
#define ALMANAC_VERSION_FROZEN	0x02

/* what an intent asks for */
typedef enum AlmanacIntentKind
{
	ALMANAC_INTENT_INSERT = 1,	/* the key must have no live version */
	ALMANAC_INTENT_UPDATE = 2,	/* based on the version 'expected' */
	ALMANAC_INTENT_DELETE = 3,	/* based on the version 'expected' */
	ALMANAC_INTENT_UPSERT = 4,	/* overwrite whatever is there */
	ALMANAC_INTENT_ERASE = 5	/* delete whatever is there, unchecked: the
								 * blind delete of a mirror (mirror.h), whose
								 * writers the heap's row locks order */
} AlmanacIntentKind;

typedef struct AlmanacVersion
{
	FullTransactionId xid;		/* the (sub)transaction that wrote it */
	TransactionId top;			/* its top-level transaction */
	uint8		flags;
	const char *tuple;			/* value-codec image; points into the value */
	uint32		tuple_len;
} AlmanacVersion;

typedef struct AlmanacIntent
{
	uint32		cf_id;			/* column family id */
	AlmanacIntentKind kind;
	FullTransactionId xid;		/* the writing (sub)transaction */
	TransactionId top;			/* its top-level transaction */
	FullTransactionId expected; /* version the write was based on, or 0 */
	const char *tuple;			/* new image; empty for a delete */
	uint32		tuple_len;
} AlmanacIntent;

/* result of applying one intent in the owner */
typedef enum AlmanacApplyResult
{
	ALMANAC_APPLY_OK,
	ALMANAC_APPLY_DUPLICATE,	/* INSERT of a key with a committed live row */
	ALMANAC_APPLY_CONFLICT,		/* someone else wrote the key meanwhile */
	ALMANAC_APPLY_ABORTED		/* refused, but its writer rolled back: write
								 * nothing (see almanac_versions_apply) */
} AlmanacApplyResult;

/* stored values */
extern int	almanac_versions_parse(const char *data, size_t len, AlmanacVersion **versions);
extern bool almanac_version_frozen(const AlmanacVersion *v);

/*
 * The version of a stored list that snapshot sees (*version points into
 * data), judged in place without allocating, the whole list's structure
 * checked; false when it sees none.  A visible tombstone means no row.
 */
extern bool almanac_versions_find_visible(const char *data, size_t len, Snapshot snapshot,
										  AlmanacVersion *version);

/* intents */
extern void almanac_intent_encode(StringInfo buf, const AlmanacIntent *intent);
extern void almanac_intent_parse(const char *data, size_t len, AlmanacIntent *intent);
extern bool almanac_is_intent(const char *data, size_t len);

/*
 * The stored value of a new key after an INSERT by xid: a header of
 * ALMANAC_NEW_VALUE_HEADER_LEN bytes written into out, then the image.
 */
#define ALMANAC_NEW_VALUE_HEADER_LEN 20
extern void almanac_versions_new(char *out, FullTransactionId xid, TransactionId top,
								 uint32 tuple_len);

/* owner side: every version aborted (bulk loads may replace such a value) */
extern bool almanac_versions_all_aborted(const char *stored, size_t stored_len);

/* owner side: merge an intent into the stored value */
extern AlmanacApplyResult almanac_versions_apply(StringInfo out,
												 const char *stored, size_t stored_len,
												 const AlmanacIntent *intent,
												 TransactionId horizon);

/*
 * Owner side, the freeze sweep: prune and freeze a stored value as
 * almanac_versions_apply does to the older versions of a key it writes.
 * Returns false when the value is already in that state; otherwise 'out'
 * receives the new value, or stays empty when the key can go altogether.
 */
extern bool almanac_versions_freeze(StringInfo out,
									const char *stored, size_t stored_len,
									TransactionId horizon);

/*
 * Owner side, the removal of an orphan's versions at the owner's start
 * (store/owner.c, the apply journal): drop the versions written by xid.
 * Returns false when there are none; otherwise 'out' receives the new
 * value, or stays empty when the key can go altogether.
 */
extern bool almanac_versions_remove_xid(StringInfo out,
										const char *stored, size_t stored_len,
										FullTransactionId xid);

#endif							/* ALMANAC_VISIBILITY_H */
