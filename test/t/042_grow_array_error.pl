# almanac_grow_array (src/almanac.c) after a growth that failed.
#
# The store owner keeps its pending apply journal entries (store/owner.c,
# journal_note_pending) in an array that almanac_grow_array enlarges.  The
# helper recorded the new capacity before it allocated: when the allocation
# failed (out of memory, or past MaxAllocSize), the capacity said there was
# room the array did not have, and the next entry was written past its end
# (here: into a NULL array, the first growth having failed), a segfault of
# the owner that restarted the whole server.  The fault point
# grow_array_error fails the growth as an allocation failure does.  The
# owner makes room for a round's journal entries before its write: once
# written, an entry left out of the list was taken for an orphan at the next
# start, which removed its committed row.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node owner_fault);

my $node = almanac_node('grow_array_error');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'g', key_columns 'id');
});

# the owner's first journaled write needs the array: its growth fails,
# before the write (group_write makes room for the round's entries first)
owner_fault($node, 'grow_array_error');
my ($ret, $out, $err) = $node->psql('postgres', "INSERT INTO kv VALUES (1, 'refused')");
isnt($ret, 0, 'a commit whose journal entry finds no room fails');
like($err, qr/out of memory/, 'as an allocation that fails does');
owner_fault($node, undef);

# the next write grows the array for real
my $offset = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', "INSERT INTO kv VALUES (2, 'kept')");
is($ret, 0, 'the next commit succeeds') or diag($err);
unlike(slurp_file($node->logfile, $offset), qr/terminated by signal/,
	'and the store owner did not crash');
is($node->safe_psql('postgres', 'SELECT id, v FROM kv ORDER BY id'), '2|kept',
	'only the second row is there');
# 78 commits in one session, within about a durable point's second: the
# pending entries may pass the first capacity (64)
$node->safe_psql('postgres', join('', map { "INSERT INTO kv VALUES ($_, 'more');\n" } 3 .. 80));
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv'), '79', 'and later commits too');

# Every row committed is there after a restart.  When the growth failed
# after the write, the commit returned but its journal entry was in no
# list: the clean shutdown left it, and the start took it for an orphan
# and removed the committed row (79 rows of 80).
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM kv');
$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv'), $before, 'after a restart too');
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE id = 2'), 'kept', 'the row kept among them');

# A backend's savepoints (kv/xact.c) are kept in an array almanac_grow_array
# enlarges, an entry per level of open subtransaction that wrote, each with
# a save point of the transaction's write batch, recorded at the level's
# first write (not at SAVEPOINT: an error there crashes PL/pgSQL,
# test/t/044).  When the growth fails, the write fails, and the
# subtransaction aborts without an entry of its own, perhaps after its
# parent got one: its abort must leave the entries of the subtransactions
# around it, and the writes made under them.  (Undoing down to its own
# entry, it undid every save point of the batch: the outer savepoints'
# writes were lost.)
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE sp (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'sp', key_columns 'id');
});
# 15 savepoints that write, then two that do not; the write under the last
# records the entries of both: the first fills the array's first capacity
# (16), the second grows it
my $script = "BEGIN;\nINSERT INTO sp VALUES (0, 'before');\n"
  . join('', map { "SAVEPOINT s$_;\nINSERT INTO sp VALUES ($_, 'under s$_');\n" } 1 .. 15)
  . "SAVEPOINT s16;\n"
  . "SAVEPOINT s17;\n"
  . "SET almanac.fault_point = 'grow_array_error';\n"
  . "INSERT INTO sp VALUES (17, 'refused');\n"
  . "ROLLBACK TO SAVEPOINT s17;\n"    # undoes the SET too
  . "SELECT count(*) FROM sp;\n"
  . "INSERT INTO sp VALUES (17, 'under s17');\n"
  . "ROLLBACK TO SAVEPOINT s16;\n"
  . "SELECT count(*) FROM sp;\n"
  . "INSERT INTO sp VALUES (16, 'under s16');\n"
  . "ROLLBACK TO SAVEPOINT s8;\n"
  . "SELECT count(*) FROM sp;\n"
  . "COMMIT;\n";
($ret, $out, $err) = $node->psql('postgres', $script, on_error_stop => 0);
like($err, qr/out of memory.*\n.*grow_array_error/, 'a write whose savepoint entry finds no room fails');
is($out, "16\n16\n8", 'after ROLLBACK TO its savepoint the transaction sees the writes '
	. 'made under the outer savepoints, ROLLBACK TO the savepoint around it undoes the writes '
	. 'made since, and ROLLBACK TO one of the outer ones undoes only what followed it');
is($node->safe_psql('postgres', "SELECT count(*), min(id), max(id) FROM sp"), '8|0|7',
	'and it commits them');

$node->stop;
done_testing();
