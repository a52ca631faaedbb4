/*-------------------------------------------------------------------------
 *
 * nested.h
 *	  Writes of commands nested in a writing statement: what lets an UPDATE
 *	  or DELETE of a foreign table refuse a row a command it triggered has
 *	  changed since the statement began, as the heap refuses it.
 *
 * A statement's scan reads the rows as they were when it began (its
 * command id).  A command it runs while it goes on (a volatile function in
 * its SET list or WHERE clause, a BEFORE ROW trigger) gets a later command
 * id and may write a row the statement has still to update.  The heap
 * refuses the statement's update of such a row: "tuple to be updated was
 * already modified by an operation triggered by the current command"
 * (27000), since the row's newest version carries a later command id than
 * the statement's.  Almanac's versions carry no command id (their owner
 * judges them by transaction id alone), and the transaction's batch keeps
 * one entry per key, so without this the statement's write, computed from
 * the old row, would silently replace the nested command's.
 *
 * So while a writer is open, every write a later command makes is recorded
 * here: key, the writer's command id, the subtransaction that made it.  An
 * UPDATE or DELETE asks before it writes a row whether a command later
 * than its own wrote the key (almanac_nested_written_after).  The record is
 * kept only while a writer is open (it is dropped when the last one ends)
 * and only for writes of later commands to a column family that an open
 * writer of an earlier command writes too (only such a writer asks), so a
 * plain statement, however large, records nothing, nor does a BEFORE
 * trigger that writes another table for each row; writes of one command
 * (a partitioned table's foreign partitions, two data-modifying CTEs) are
 * not nested.  ROLLBACK TO SAVEPOINT forgets the writes the subtransaction
 * made (they are undone), as the heap's aborted updater leaves the row
 * unmodified, and the writers begun in it: their statements failed, even
 * if their memory lives on (a SQL function's executor state stays until
 * the function's next call), and later commands must not see their writes.
 *
 * Later commands also see the statement's writes so far, as the heap's
 * later commands see its rows (their snapshots' command ids are above the
 * statement's): the open writers are registered here, and a read of the
 * transaction's own writes (xact.c: almanac_xact_buffered, a scan's
 * almanac_xact_batch_copy) looks in the statement batch of every open
 * writer whose command id is below the reading statement's (the active
 * snapshot's curcid), newest command first.  A statement never sees its own
 * batch this way, nor does another writer of the same command (a second
 * foreign partition, a second data-modifying CTE).  A key a later command
 * wrote after the statement did is "superseded" in the statement's batch:
 * readers skip that entry and the statement's merge into the transaction's
 * batch leaves it out, so the later write stays (an AFTER ROW trigger that
 * updates the row the statement just wrote keeps its update, as the heap's
 * does).  To know the order, once a key has a record, every writer's write
 * of it is recorded, the statement's own too.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_NESTED_H
#define ALMANAC_NESTED_H

#include <rocksdb/c.h>

#include "access/xact.h"

/*
 * A writer of command cid opens / ends (almanac_writer_begin, its cleanup):
 * its statement batch *stmt (which the writer may replace, or set to NULL
 * once merged) holds its writes to column family cf_id of store.
 */
extern void almanac_nested_writer_open(CommandId cid, int store, uint32 cf_id,
									   rocksdb_writebatch_wi_t **stmt);
extern void almanac_nested_writer_close(rocksdb_writebatch_wi_t **stmt);

/*
 * A locking SELECT's scan of command cid opens (*stmt stays NULL: it writes
 * nothing), to be closed as a writer is: the writes of later commands to
 * its column family are recorded while its portal runs (a function in its
 * WHERE clause; not the statements run between a cursor's fetches, which
 * would keep every write of a long loop), so that it can skip the rows they
 * wrote (almanac_nested_written_after), as the heap's row lock does.
 */
extern void almanac_nested_lock_scan_open(CommandId cid, int store, uint32 cf_id,
										  rocksdb_writebatch_wi_t **stmt);

/* an open writer's statement batch, as almanac_nested_visible lists them */
typedef struct AlmanacOpenWrites
{
	rocksdb_writebatch_wi_t *stmt;
	CommandId	cid;
} AlmanacOpenWrites;

/*
 * The statement batches of open writers of column family cf_id of store
 * that the running statement sees (command id below the active snapshot's),
 * oldest command first, in a static array valid until the next call;
 * returns how many.
 */
extern int	almanac_nested_visible(int store, uint32 cf_id, AlmanacOpenWrites **out);

/*
 * fn on the statement batch of every open writer of store, whatever its
 * command and column family (a send of the transaction's batch must mend
 * them all: kv/xact.c, uncombine_open).
 */
typedef void (*almanac_open_batch_fn) (rocksdb_writebatch_wi_t *stmt, uint32 cf_id, void *arg);
extern void almanac_nested_foreach_open(int store, almanac_open_batch_fn fn, void *arg);

/*
 * Is any writer with a batch open (not counting locking scans)?  A cheap
 * test before looking further: a reader that finds none need not open its
 * instance to look in batches.
 */
extern bool almanac_nested_any_open(void);

/*
 * Did a command later than cid write key after the writer of command cid
 * last did?  Then that writer's entry for key is out of date: readers skip
 * it and its merge leaves it out.
 */
extern bool almanac_nested_superseded(int store, uint32 cf_id, const char *key, size_t klen,
									  CommandId cid);

/* has any write been recorded? (merges check entries only then) */
extern bool almanac_nested_recorded(void);

/* a writer of command cid wrote key of column family cf_id in store */
extern void almanac_nested_note_write(int store, uint32 cf_id, const char *key, size_t klen,
									  CommandId cid);

/* did a command later than cid write key, in a subtransaction not rolled back? */
extern bool almanac_nested_written_after(int store, uint32 cf_id, const char *key, size_t klen,
										 CommandId cid);

/*
 * Readers with older snapshots.  Versions carry no command id, and a
 * statement's batch loses its writes' command id when it is merged into the
 * transaction's: a reader whose snapshot is not above a command (the
 * statement that triggered the command, restarting a scan after it ended; a
 * cursor declared before it; a STABLE function's query, run later under
 * its caller's snapshot) would see its writes, where the heap's snapshot
 * (its curcid) hides them.  So the transaction's open snapshots are
 * registered here with their command ids: every query from before its
 * executor starts (starting may run writes of its command id: a
 * partition's initial pruning) until its executor state goes (an
 * ExecutorStart_hook; the only way a scan begun later gets an
 * older snapshot is through such a query, whose snapshot its read-only
 * functions run with).  A foreign scan is not registered apart: it begins
 * in its query's ExecutorStart (or in EvalPlanQual's copy, within its
 * query) with its query's snapshot, and ends before it.  While one is
 * open whose command id is not above a writing command's (and is not of
 * the same statement, which never reads its own writes), the merge of that
 * command's batch records for each key the transaction's buffered write it
 * replaces (its prior, or none: the store's row), unless no open snapshot
 * lies between the key's last write and this one (then an earlier prior
 * answers every such reader): at most one prior per key and open snapshot.
 * A reader then reads the prior of the first write its snapshot does not
 * see.  A statement with no older snapshot open records nothing (a plain
 * statement, a bulk write at the top level or in a DO block); one run from
 * a query (SELECT f()) records what it replaces while that query runs.  The
 * record goes with the last open snapshot, and ROLLBACK TO SAVEPOINT
 * forgets the merges it undid and the readers begun in it.  Writes sent to
 * the owner while the transaction goes on (almanac.write_batch_size) leave
 * the batch for the store, whose versions carry only the transaction id:
 * before such a send, the recorded writes whose prior is the store's row
 * take the store's value as it is before the send (almanac_nested_ship_begin).
 */
/* the running reader's snapshot's command id (the active snapshot's), or InvalidCommandId */
extern CommandId almanac_nested_reader_cid(void);

/* at load: the hook that registers every query's snapshot */
extern void almanac_nested_init(void);

/*
 * Must the merge of command cid's batch (of statement query: its executor
 * state, or NULL) keep the priors of its keys?  The keep_prior calls that
 * follow are that merge's.
 */
extern bool almanac_nested_must_keep_prior(CommandId cid, const void *query);

/*
 * Command cid replaces prior (NULL: none buffered) as key's buffered write,
 * in the merge almanac_nested_must_keep_prior answered true for last
 */
extern void almanac_nested_keep_prior(int store, uint32 cf_id, const char *key, size_t klen,
									  CommandId cid, const char *prior, size_t prior_len);

/* may a reader of snapshot command id curcid have writes to skip? (cheap) */
extern bool almanac_nested_hides_any(CommandId curcid);

/*
 * Did a command the reader of curcid does not see (its id not below
 * curcid) replace key's buffered write?  Then *prior is what the reader
 * sees instead (NULL: no buffered write, the store's row; else a buffered
 * intent, or the stored version list the store held before a send), valid
 * until the record changes.
 */
extern bool almanac_nested_prior(int store, uint32 cf_id, const char *key, size_t klen,
								 CommandId curcid, const char **prior, size_t *prior_len);

/*
 * For each key of column family cf_id of store in [lower, upper) (upper
 * empty: no end) whose prior the reader of curcid reads and that is not
 * the store's row: fn with the key and that prior (a scan's copy of the
 * transaction's writes, which the batch alone does not give once a send
 * emptied it).
 */
typedef void (*AlmanacPriorFn) (void *arg, const char *key, size_t klen,
								const char *prior, size_t prior_len);
extern void almanac_nested_priors_in_range(int store, uint32 cf_id,
										   const char *lower, size_t lower_len,
										   const char *upper, size_t upper_len,
										   CommandId curcid, AlmanacPriorFn fn, void *arg);

/*
 * The transaction's batch is about to go to store's owner while the
 * transaction goes on: each recorded write of a key it holds whose prior is
 * the store's row takes the store's value as it is before the send (the
 * newest version list; a deletion when there is none), since after the send
 * the store holds the transaction's version, which every snapshot of it
 * sees.  The send asks almanac_nested_ship_begin whether any recorded write
 * has such a prior; if so it names each key it writes as it reads its batch
 * (almanac_nested_ship_key; in key order within a column family makes the
 * reads cheaper), then, before it posts them, calls almanac_nested_ship_end,
 * which reads the store's values of the keys named that have such writes
 * (one catch-up, MultiGet) and keeps them as those writes' priors.
 */
extern bool almanac_nested_ship_begin(int store);
extern void almanac_nested_ship_key(int store, uint32 cf_id, const char *key, size_t klen);
extern void almanac_nested_ship_end(int store);

/* ROLLBACK TO SAVEPOINT of subid; the transaction's end */
extern void almanac_nested_subxact_abort(SubTransactionId subid);
extern void almanac_nested_xact_end(void);

#endif							/* ALMANAC_NESTED_H */
