# The durable point's sync of RocksDB's log runs beside the store owner, not
# in it: commits go on while it lasts, and the durable point is recorded
# (the replication slot moves) only once it is done.
#
# The fault point owner_pause_durable_sync makes the sync wait 10 seconds
# before it starts, wherever it runs.  While it waits, single-row foreign
# commits must complete at their usual pace (when the owner synced itself,
# every commit posted during a sync waited for it: 20 to 60 ms each second
# under load, bench/stall/run.sh; here each would wait out the 10 s), the
# slot must not move (the state written before the sync is not durable
# yet), and a crash must lose none of those commits.  Once the sync is done
# the slot moves.
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

owner_fault($node, 'owner_pause_durable_sync');
my $log_offset = -s $node->logfile;
# a write makes the next durable point due (at most a second away)
$node->safe_psql('postgres', "INSERT INTO t VALUES (1, 'due')");
$node->wait_for_log(qr/fault point "owner_pause_durable_sync" reached/, $log_offset);
my $held_at = time;
my $lsn_held = restart_lsn();

# commits while the sync waits
my $started = time;
for my $i (2 .. 21)
{
	$node->safe_psql('postgres', "INSERT INTO t VALUES ($i, 'during the sync')");
}
my $took = time - $started;
cmp_ok(time - $held_at, '<', 8, 'the commits ran while the sync was still held');
cmp_ok($took, '<', 5, "20 commits during the held sync took ${took}s, not its 10 s");
is(restart_lsn(), $lsn_held, 'the slot stays while the durable point is not synced');

# the sync ends: the durable point is recorded and the slot moves on
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
cmp_ok(time - $held_at, '>=', 9, 'not before the held sync ended');

# a crash while a sync is held loses no commit
owner_fault($node, undef);
owner_fault($node, 'owner_pause_durable_sync');
$log_offset = -s $node->logfile;
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
