# The durable point's sync of RocksDB's log runs beside the store owner, not
# in it: commits go on while it lasts, and the durable point is recorded
# (the replication slot moves) only once it is done.
#
# The fault point owner_pause_durable_sync holds the sync before it starts,
# wherever it runs, until the point is disarmed.  While it is held,
# single-row foreign commits must complete (when the owner synced itself,
# every commit posted during a sync waited for it: here they would wait
# until the test timed out), the slot must not move (the state written
# before the sync is not durable yet), and a crash must lose none of those
# commits.  Once the point is disarmed the sync runs and the slot moves.
# No timing is asserted: the hold has no end of its own.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use AlmanacTest qw(almanac_node owner_fault);

my $node = almanac_node('durable_sync');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE t (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'ds', key_columns 'id');
	INSERT INTO t VALUES (0, 'start');
});
my $slot = $node->safe_psql('postgres',
	"SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'almanac_%'");
like($slot, qr/^almanac_[0-9a-f]{16}$/, 'the store owner holds its slot');

sub restart_lsn
{
	return $node->safe_psql('postgres',
		"SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '$slot'");
}

# before the point is armed: the setup's writes may make a durable point
# due while owner_fault waits for the reload
my $log_offset = -s $node->logfile;
owner_fault($node, 'owner_pause_durable_sync');
# a write makes the next durable point due (at most a second away)
$node->safe_psql('postgres', "INSERT INTO t VALUES (1, 'due')");
$node->wait_for_log(qr/fault point "owner_pause_durable_sync" reached/, $log_offset);
my $lsn_held = restart_lsn();

# commits while the sync is held: they complete, or the test times out
for my $i (2 .. 21)
{
	$node->safe_psql('postgres', "INSERT INTO t VALUES ($i, 'during the sync')");
}
pass('20 commits completed while the sync was held');
is(restart_lsn(), $lsn_held, 'the slot stays while the durable point is not synced');

# the sync is let go: the durable point is recorded and the slot moves on
owner_fault($node, undef);
my $moved = 0;
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	if (restart_lsn() ne $lsn_held)
	{
		$moved = 1;
		last;
	}
	usleep(100_000);
}
ok($moved, 'the slot moves once the sync is done');

# a crash while a sync is held loses no commit
$log_offset = -s $node->logfile;
owner_fault($node, 'owner_pause_durable_sync');
$node->safe_psql('postgres', "INSERT INTO t VALUES (22, 'due')");
$node->wait_for_log(qr/fault point "owner_pause_durable_sync" reached/, $log_offset);
for my $i (23 .. 32)
{
	$node->safe_psql('postgres', "INSERT INTO t VALUES ($i, 'before the crash')");
}
$node->safe_psql('postgres', 'ALTER SYSTEM RESET almanac.fault_point');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*), min(id), max(id) FROM t'), '33|0|32',
	'every commit made during the held sync survives the crash');

done_testing();
