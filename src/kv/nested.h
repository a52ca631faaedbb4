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
 * and only for writes of later commands, so a plain statement, however
 * large, records nothing; writes of one command (a partitioned table's
 * foreign partitions, two data-modifying CTEs) are not nested.  ROLLBACK TO
 * SAVEPOINT forgets the writes the subtransaction made (they are undone),
 * as the heap's aborted updater leaves the row unmodified.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALMANAC_NESTED_H
#define ALMANAC_NESTED_H

#include "access/xact.h"

/* a writer of command cid opens / ends (almanac_writer_begin, its cleanup) */
extern void almanac_nested_writer_open(CommandId cid);
extern void almanac_nested_writer_close(void);

/* a writer of command cid wrote key of column family cf_id in store */
extern void almanac_nested_note_write(int store, uint32 cf_id, const char *key, size_t klen,
									  CommandId cid);

/* did a command later than cid write key, in a subtransaction not rolled back? */
extern bool almanac_nested_written_after(int store, uint32 cf_id, const char *key, size_t klen,
										 CommandId cid);

/* ROLLBACK TO SAVEPOINT of subid; the transaction's end */
extern void almanac_nested_subxact_abort(SubTransactionId subid);
extern void almanac_nested_xact_end(void);

#endif							/* ALMANAC_NESTED_H */
