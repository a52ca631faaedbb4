/*-------------------------------------------------------------------------
 *
 * verify.h
 *	  Comparing a table with its mirror (almanac.verify), and repairing the
 *	  mirror (almanac.resync, almanac.enable_mirror's backfill).
 *
 * A comparison runs in two passes under one snapshot: every row of the
 * table (for a latest mirror, the latest row of each key) against the
 * mirror's row of its key (missing, or different: the images differ byte
 * for byte), then every row of the mirror against the heap's row of its key
 * (extra: the heap has none).  Both read with the same snapshot, so
 * concurrent writers cause no false differences, provided the snapshot can
 * judge the mirror at all (almanac_mirror_require_judge: almanac.verify
 * refuses one older than an enable_mirror, resync or TRUNCATE, or than this
 * transaction's own rewrite); a repair takes the table's SHARE lock first
 * and a snapshot after it, so that no writer runs and every committed row is
 * seen, and notes it (almanac_mirror_note_rewrite).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_VERIFY_H
#define ALMANAC_VERIFY_H

#include "funcapi.h"
#include "utils/relcache.h"

#include "mirror/mirror.h"

/* the rows compared: NULL members compare everything */
typedef struct AlmanacSyncRange
{
	text	   *chain_id;		/* chain_id = this */
	bool		has_from;		/* block_number >= from */
	int64		from;
	bool		has_to;			/* block_number <= to */
	int64		to;
} AlmanacSyncRange;

/*
 * Compare (range NULL: everything).  repair: write the differing keys (the
 * caller holds the table's ShareLock); out (not NULL): one row (key bytea,
 * kind text) per difference.  Returns the number of differences.  NOTICEs
 * report progress every 100,000 rows.
 */
extern int64 almanac_mirror_sync(Relation rel, AlmanacMirror *m, const AlmanacSyncRange *range,
								 Snapshot snapshot, bool repair, ReturnSetInfo *out);

#endif							/* ALMANAC_VERIFY_H */
