# The store owner's replication slot (docs/write-path.md): no free slot
# leaves no LWLock held (every CHECKPOINT and slot command would hang), and
# a slot another process holds fails the owner's start with a clear error
# instead of a wait without end.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('wal_slot', "max_replication_slots = 2\nmax_wal_senders = 2\n");
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'w', key_columns 'id');
	INSERT INTO kv VALUES (1, 'one');
});
my $slot = $node->safe_psql('postgres',
	"SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'almanac%'");
like($slot, qr/^almanac_[0-9a-f]{16}$/, 'the store owner made its slot');

# slots exhausted: the second database's owner cannot create its slot
$node->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('filler')");
$node->safe_psql('postgres', 'CREATE DATABASE second');
$node->safe_psql('second', q{
	CREATE EXTENSION almanac;
	CREATE FOREIGN TABLE t (id int) SERVER almanac_store OPTIONS (key_prefix 't', key_columns 'id');
	INSERT INTO t VALUES (1);
});
ok($node->log_contains(qr/could not create replication slot/), 'the second owner found no free slot');
is($node->safe_psql('second', 'SELECT count(*) FROM t'), '1', 'the second store works in synced mode');

my $timed_out = 0;
my ($ret) = $node->psql('postgres', "SELECT pg_drop_replication_slot('filler')",
	timeout => 10, timed_out => \$timed_out);
ok(!$timed_out && $ret == 0, 'pg_drop_replication_slot returns');
$timed_out = 0;
($ret) = $node->psql('postgres', 'CHECKPOINT', timeout => 10, timed_out => \$timed_out);
ok(!$timed_out && $ret == 0, 'CHECKPOINT returns');

# another process holds the store's slot while its owner starts (after a
# crash: a clean stop drops the slot, below)
$node->stop('immediate');
$node->start;
my $waldir = PostgreSQL::Test::Utils::tempdir;
my ($rout, $rerr) = ('', '');
my $receiver = IPC::Run::start(
	[ 'pg_receivewal', '-h', $node->host, '-p', $node->port, '-D', $waldir, '-S', $slot, '--no-loop' ],
	'>', \$rout, '2>', \$rerr);
my $active = 'f';
for (1 .. 100)
{
	$active = $node->safe_psql('postgres',
		"SELECT active FROM pg_replication_slots WHERE slot_name = '$slot'");
	last if $active eq 't';
	eval { $receiver->pump_nb };
	Time::HiRes::usleep(200_000);
}
is($active, 't', 'pg_receivewal holds the store\'s slot') or diag "pg_receivewal: $rerr";
my $t0 = time;
my ($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM kv', timeout => 60);
like($err, qr/is held by process/, 'the owner refuses a slot another process holds, naming it');
cmp_ok(time - $t0, '<', 30, 'and does not wait for it without end');
$receiver->kill_kill;
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE id = 1'), 'one',
	'the store starts once the slot is free');
# a clean stop leaves nothing to replay: no slot holds WAL while no owner runs
$node->restart;
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'"),
	'0', 'a clean stop drops the store\'s slot');
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE id = 1'), 'one', 'the store opens again');
is($node->safe_psql('postgres', "SELECT restart_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = '$slot'"),
	't', 'and its owner makes the slot anew');

# a crashed store whose slot lost its WAL (max_slot_wal_keep_size): a clear error, a way out
$node->safe_psql('postgres', "INSERT INTO kv VALUES (2, 'two')");
$node->stop('immediate');
$node->append_conf('postgresql.conf', "max_slot_wal_keep_size = 1MB\nmin_wal_size = 32MB\n");
$node->start;
$node->safe_psql('postgres', 'CREATE TABLE h (id int, pad text)');
for (1 .. 3)
{
	$node->safe_psql('postgres', "INSERT INTO h SELECT g, repeat('x', 200) FROM generate_series(1, 10000) g; SELECT pg_switch_wal(); CHECKPOINT;");
}
is($node->safe_psql('postgres', "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '$slot'"),
	'lost', 'the slot lost its WAL');
my $log_offset = -s $node->logfile;
($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM kv');
like($err, qr/replication slot "\Q$slot\E" was invalidated/, 'the store refuses to open, naming the slot');
# the owner's log line may reach the file after the client has its error
ok($node->wait_for_log(qr/HINT:  Restore the store from a backup, or drop the slot/, $log_offset), 'with a hint');
$node->safe_psql('postgres', "SELECT pg_drop_replication_slot('$slot')");
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE id = 1'), 'one',
	'without the slot the store opens as it is');
$node->stop;
done_testing();
