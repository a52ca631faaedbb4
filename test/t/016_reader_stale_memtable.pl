# A point lookup after a flush whose new write-ahead log is still empty, or
# was empty while the reader caught up.
#
# A reader's secondary instance replays the owner's WAL into its active
# memtable, and drops that memtable only when it replays a batch from a later
# WAL (store/owner.c, catch-up markers).  When RocksDB switches memtables
# itself, in a write that then stalls (too many memtables or level-0 files),
# the new WAL stays empty until the stall ends, while the flush of the old
# one completes and deletes it: a catch-up then installs the flushed file but
# keeps the old memtable, and a Get, which looks in the memtable first, finds
# an older version list of a key that a committed transaction changed since
# (seen in test/t/005_compaction_reads.pl: one snapshot's point lookups saw
# a transfer half applied).  The fault point owner_before_markers holds the
# owner right after almanac.flush(), before it writes markers into the new
# WAL, which is that state made to last.  The owner stops in the flush that
# a large write asks for (max_total_wal_size), which stays uncommitted.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use AlmanacTest qw(almanac_node);

# no idle flushes: one between the steps below would switch WALs on its own,
# and with owner_before_markers armed it would stop the owner early (seen:
# the test hung under load)
# and lookups read the reader's instance: the shared row cache would answer
# them with what the owner wrote, which is what a stale memtable must not hide
my $node = almanac_node('stale_memtable', "almanac.idle_flush_delay = 0\nalmanac.shared_row_cache = off\n");

# --- the stall ends between the catch-up and the reader's check -------------
# The reader used to look at the newest WAL only after its catch-up: if the
# stalled write landed in between, it saw a WAL with markers and kept the
# memtable the catch-up had not sealed.  owner_pause_before_markers holds the
# owner for 3 s after the switch, reader_after_catch_up holds the reader for
# 6 s after its catch-up: the catch-up reads the empty WAL, the check comes
# after the markers.
my $paused = $node->data_dir . '/almanac/paused';
$node->safe_psql('postgres', q{
	CREATE SERVER paused FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (
		path 'almanac/paused', max_total_wal_size '16kB');
	CREATE FOREIGN TABLE p (k bigint, v bigint, pad text)
		SERVER paused OPTIONS (key_prefix 'p', key_columns 'k');
	SELECT almanac.flush('default', 'paused');
	INSERT INTO p VALUES (0, 0, NULL), (1, 0, NULL);
});
my $preader = $node->background_psql('postgres');
is($preader->query_safe('SELECT v FROM p WHERE k = 0'), '0', 'a reader replays the WAL holding the first value');
$preader->query_safe(q{SET almanac.fault_point = 'reader_after_catch_up'});
$node->safe_psql('postgres', 'UPDATE p SET v = 1 WHERE k = 0');
my @pwal = glob("$paused/*.log");
$node->safe_psql('postgres', q{ALTER SYSTEM SET almanac.fault_point = 'owner_pause_before_markers'});
$node->reload;
my $plog = -s $node->logfile;
my $pwriter = $node->background_psql('postgres');
$pwriter->query_until(qr/started/, q{
\echo started
UPDATE p SET pad = repeat('y', 20000) WHERE k = 1;
});
ok($node->wait_for_log(qr/fault point "owner_pause_before_markers" reached/, $plog),
	'the owner switched to a new WAL and pauses before writing into it');
my $pwaited = 0;
usleep(10_000), $pwaited++ while (grep { -e } @pwal) && $pwaited < 100 * $PostgreSQL::Test::Utils::timeout_default;
my @pnow = glob("$paused/*.log");
ok(!(grep { -e } @pwal) && @pnow == 1 && -s $pnow[0] == 0,
	'the flushed WAL is gone and the new one is still empty when the reader catches up');
is($preader->query_safe('SELECT v FROM p WHERE k = 0'), '1',
	'a point lookup after the pause sees the committed value');
ok($node->log_contains(qr/fault point "reader_after_catch_up" reached/, $plog),
	'the reader paused between its catch-up and its check');
$pwriter->quit;
$preader->quit;
$node->safe_psql('postgres', 'ALTER SYSTEM RESET almanac.fault_point');
$node->reload;
is($node->safe_psql('postgres', 'SELECT sum(v) FROM p'), '1', 'a new session agrees');

# --- the store's directory cannot be listed -----------------------------------
# The reader judges its memtables by the newest WAL file it lists.  If the
# listing fails it cannot judge them, and must not take "nothing found" for
# "not stale" (it used to).  reader_wal_dir_unreadable makes the listing fail
# (EACCES) in this session: while the memtables hold entries, every instance
# is opened anew a few times, and then the statement fails naming the
# directory rather than answering from an instance it could not judge.
my $unreadable = $node->background_psql('postgres', on_error_stop => 0);
is($unreadable->query_safe('SELECT v FROM p WHERE k = 0'), '1', 'a reader sees the value');
$node->safe_psql('postgres', 'UPDATE p SET v = 2 WHERE k = 0');
$unreadable->query_safe(q{SET almanac.fault_point = 'reader_wal_dir_unreadable'});
my $uout = $unreadable->query('SELECT v FROM p WHERE k = 0');
my $uerr = $unreadable->{stderr};
$unreadable->{stderr} = '';
like($uerr, qr/could not read directory ".*almanac\/paused": Permission denied/,
	'with its memtables not empty and the directory unreadable, a lookup fails and names the directory');
isnt($uout, '1', 'and does not answer from the memtable it could not judge');
$unreadable->query_safe('RESET almanac.fault_point');
is($unreadable->query_safe('SELECT v FROM p WHERE k = 0'), '2', 'once it can be listed, the lookup sees the committed value');

# A statement's lookup by key goes on after a function it calls failed to open
# the reader's instance and caught the error: the lookup must open a new one,
# not use the closed instance (a crash, once lookups stopped catching up as
# they begin).  Per row: the lookup of key 1, then try_scan, whose scan's
# catch-up fails while the fault is armed (another session's write is
# pending) and which disarms it in its handler.
$unreadable->query_safe(q{
	CREATE FUNCTION try_scan() RETURNS int LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM sum(v) FROM p;
		RETURN 0;
	EXCEPTION WHEN others THEN
		PERFORM set_config('almanac.fault_point', '', false);
		RETURN -1;
	END $$});
# key 7 written, then two catch-ups: its write is out of the window the log
# is read from, so its lookup needs no catch-up
$node->safe_psql('postgres', 'INSERT INTO p VALUES (7, 7, NULL)');
for my $v (4, 5)
{
	$node->safe_psql('postgres', "UPDATE p SET v = $v WHERE k = 0");
	is($unreadable->query_safe('SELECT sum(v) FROM p'), $v + 7, 'the reader caught up');
}
$node->safe_psql('postgres', 'UPDATE p SET v = 3 WHERE k = 0');
$unreadable->query_safe(q{SET almanac.fault_point = 'reader_wal_dir_unreadable'});
# no row cache: the second lookup reads the instance
$unreadable->query_safe(q{SET almanac.reader_row_cache_size = 0});
is($unreadable->query_safe(q{
	SELECT string_agg((SELECT v FROM p WHERE k = 7) || '/' || try_scan(), ',' ORDER BY g)
	  FROM generate_series(1, 2) g}), '7/-1,7/0',
	'a lookup after a failed open caught by a handler opens a new instance and answers');
is($unreadable->query_safe('SELECT v FROM p WHERE k = 0'), '3', 'and the session reads on');
$unreadable->query_safe('RESET almanac.fault_point');
$unreadable->quit;
$node->safe_psql('postgres', 'UPDATE p SET v = 1 WHERE k = 0');

# --- the WAL stays empty --------------------------------------------------------
my $store = $node->data_dir . '/almanac/stall';
$node->safe_psql('postgres', q{
	CREATE SERVER stall FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (
		path 'almanac/stall', max_total_wal_size '16kB');
	CREATE FOREIGN TABLE t (k bigint, v bigint, pad text)
		SERVER stall OPTIONS (key_prefix 't', key_columns 'k');
	SELECT almanac.flush('default', 'stall');
});

# armed in the owner, which reads the configuration between requests; the
# large write below reaches the point
$node->safe_psql('postgres', q{ALTER SYSTEM SET almanac.fault_point = 'owner_before_markers'});
$node->reload;
$node->safe_psql('postgres', q{SELECT almanac.flush('default', 'stall')});
$node->safe_psql('postgres', 'INSERT INTO t VALUES (0, 0, NULL), (1, 0, NULL)');

# the reader's secondary replays the WAL that holds v = 0; so does a second
# reader's, which then finds the store's directory unreadable (it must take
# its memtables for stale when it cannot list the WAL files)
my $reader = $node->background_psql('postgres');
is($reader->query_safe('SELECT v FROM t WHERE k = 0'), '0', 'the reader sees the first value');
my $blind = $node->background_psql('postgres');
is($blind->query_safe('SELECT v FROM t WHERE k = 0'), '0', 'so does a second reader');
$blind->query_safe(q{SET almanac.fault_point = 'reader_wal_dir_unreadable'});

# committed into the same WAL; the reader does not catch up yet
$node->safe_psql('postgres', 'UPDATE t SET v = 1 WHERE k = 0');
my @wal = glob("$store/*.log");

# a write over 16kB makes the owner flush; it stops before writing into the
# new WAL, and that write is never answered
my $log_offset = -s $node->logfile;
my $writer = $node->background_psql('postgres', on_error_stop => 0);
$writer->query_until(qr/started/, q{
\echo started
UPDATE t SET pad = repeat('y', 20000) WHERE k = 1;
});
ok($node->wait_for_log(qr/fault point "owner_before_markers" reached/, $log_offset),
	'the owner asked for a flush and stopped before writing into the new WAL');
my $waited = 0;
usleep(10_000), $waited++ while (grep { -e } @wal) && $waited < 100 * $PostgreSQL::Test::Utils::timeout_default;
ok(!(grep { -e } @wal), 'the flushed WAL file is gone');
my @now = glob("$store/*.log");
is(scalar(@now), 1, 'one WAL file is left');
is(-s $now[0], 0, 'and it is empty');

is($reader->query_safe('SELECT v FROM t WHERE k = 0'), '1',
	'a point lookup in the reader sees the committed value');
is($reader->query_safe('SELECT v FROM t WHERE k = 1'), '0', 'and the older value of a key whose write is not committed');
is($reader->query_safe('SELECT sum(v) FROM t'), '1', 'so does a scan');
my $blog = -s $node->logfile;
is($blind->query_safe('SELECT v FROM t WHERE k = 0'), '1',
	'a reader that cannot list the WAL files takes its memtable for stale: its lookup sees the committed value');
ok($node->log_contains(qr/could not open directory ".*almanac\/stall": Permission denied/, $blog),
	'and the listing failed');

# the owner stays stopped until killed
$node->stop('immediate');
done_testing();
