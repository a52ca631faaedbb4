# The store owner's maintenance duties:
#  - reader directories of backends that died without removing them are
#    removed (at owner start and periodically), live readers' are not;
#  - the freeze sweep freezes versions nobody rewrites, prunes aborted and
#    shadowed ones, keeps what a running snapshot still needs, starts by
#    itself once the store's freeze horizon is old enough, and remembers the
#    horizon across restarts.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('maint');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'almanac'
restart_after_crash = on
almanac.reader_cleanup_interval = 1
# no snapshot but the test's own holds the xmin horizon back
autovacuum = off
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION almanac;
	CREATE FOREIGN TABLE kv (k bigint, v text) SERVER almanac_store
		OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO kv VALUES (1, 'one');
});

# wait until $cond returns true, at most the framework's default timeout
sub wait_until
{
	my ($cond) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		return 1 if $cond->();
		usleep(100_000);
	}
	return 0;
}

# ---------------------------------------------------------------------------
# Reader directories
# ---------------------------------------------------------------------------

my $secondary = $node->data_dir . '/almanac/secondary';

my $victim = $node->background_psql('postgres');
my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
# a scan: a lookup by key that the shared row cache answers opens no reader
is($victim->query_safe('SELECT v FROM kv'), 'one', 'the victim reads the store');
my @victim_dirs = glob("$secondary/*.$victim_pid");
is(scalar @victim_dirs, 1, 'a backend that read the store has a reader directory');

my $crash_offset = -s $node->logfile;
kill 'KILL', $victim_pid;
eval { $victim->quit };
# the crash restart must have begun: a query before it is answered by the
# old server, and the next connection then meets recovery (seen in CI)
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $crash_offset);
$node->poll_query_until('postgres', 'SELECT true') or die "server did not come back";
ok(-d $victim_dirs[0],
	'SIGKILL left the directory behind (no owner has run since the crash restart)');

# a live reader, which starts the new owner
my $live = $node->background_psql('postgres');
my $live_pid = $live->query_safe('SELECT pg_backend_pid()');
is($live->query_safe('SELECT v FROM kv'), 'one', 'a new session reads the store after the crash');
my @live_dirs = glob("$secondary/*.$live_pid");
is(scalar @live_dirs, 1, 'the live reader has its directory');

ok(wait_until(sub { !-e $victim_dirs[0] }), 'the owner removed the dead backend\'s directory');
ok( wait_until(sub {
			$node->log_contains(
				qr/almanac: removed reader directory "\Q$victim_dirs[0]\E" of backend $victim_pid/);
		}),
	'and logged it');

# made after the live reader's directory: its removal proves that a periodic
# round ran while the live reader was there
my $dead_pid = 4_000_000;
$dead_pid++ while kill(0, $dead_pid);
my $fake = "$secondary/3.$dead_pid";
mkdir "$fake" or die;
mkdir "$fake/0" or die;
open(my $fh, '>', "$fake/0/LOG") or die;
print $fh "left behind\n";
close $fh;
mkdir "$secondary/notes" or die;

ok(wait_until(sub { !-e $fake }), 'a periodic round removes a directory of a pid that no process has');
ok(-d $live_dirs[0], 'the live reader\'s directory is untouched');
ok(-d "$secondary/notes", 'a directory not named <store>.<pid> is untouched');
is($live->query_safe('SELECT v FROM kv WHERE k = 1'), 'one', 'the live reader still reads');
$live->quit;
ok(wait_until(sub { !-e $live_dirs[0] }), 'a backend that exits removes its own directory');

# ---------------------------------------------------------------------------
# Freeze sweep
# ---------------------------------------------------------------------------

# versions of a key of table fz, newest first: "deleted|frozen|status"
sub versions
{
	my ($k) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(concat_ws('|', deleted, frozen, status), ',' ORDER BY version)
		  FROM almanac.value_versions('almanac_store', 'fz', almanac.make_key('fz', row(${k}::bigint)))});
}

# the server log says when a pass finished
ok($node->log_contains(qr/almanac: freeze sweep of store ".*" done/),
	'a new store (no freeze horizon yet) is swept when its owner starts');

$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE fz (k bigint, v text) SERVER almanac_store
		OPTIONS (key_prefix 'fz', key_columns 'k');
	INSERT INTO fz VALUES (1, 'once');
	INSERT INTO fz VALUES (2, 'kept'), (3, 'deleted'), (4, 'old');
	DELETE FROM fz WHERE k = 3;
});
# an aborted write that reached the store: a statement batch over
# almanac.write_batch_size is sent to the owner before the transaction ends
$node->safe_psql('postgres', q{
	SET almanac.write_batch_size = 64;
	BEGIN;
	UPDATE fz SET v = repeat('x', 100000) WHERE k = 2;
	ROLLBACK;
});
# advance the xid counter past the writes
$node->safe_psql('postgres', q{
	DO $$ BEGIN FOR i IN 1..50 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$;
});

is(versions(1), 'f|f|committed', 'before the sweep: a key written once has an unfrozen version');
is(versions(2), 'f|f|aborted,f|t|frozen', 'an aborted version reached the store (the write froze the one below)');
is(versions(3), 't|f|committed,f|t|frozen', 'a deletion on top of a version frozen by the write');

# a snapshot that still needs the old version of key 4
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is($holder->query_safe('SELECT v FROM fz WHERE k = 4'), 'old', 'the held snapshot sees the old row');
$node->safe_psql('postgres', q{UPDATE fz SET v = 'new' WHERE k = 4});

my $rewritten = $node->safe_psql('postgres', 'SELECT almanac.freeze_sweep()');
cmp_ok($rewritten, '>=', 3, 'freeze_sweep() rewrote values');
is(versions(1), 'f|t|frozen', 'the version written once is frozen');
is(versions(2), 'f|t|frozen', 'the aborted version is pruned, the committed one frozen');
is(versions(3), '', 'a key whose only version left is a frozen deletion is removed');
is(versions(4), 'f|f|committed,f|t|frozen',
	'the version the held snapshot needs is kept (frozen), the newer one stays unfrozen');
is($holder->query_safe('SELECT v FROM fz WHERE k = 4'), 'old', 'the held snapshot still sees the old row');
$holder->query_safe('COMMIT');
$holder->quit;

is($node->safe_psql('postgres', 'SELECT string_agg(k || \'=\' || v, \',\' ORDER BY k) FROM fz'),
	'1=once,2=kept,4=new', 'every row reads as before the sweep');

# once the snapshot is gone, the next pass leaves one frozen version
ok( wait_until(sub {
			$node->safe_psql('postgres', 'SELECT almanac.freeze_sweep()');
			versions(4) eq 'f|t|frozen';
		}),
	'after the snapshot ended, a pass freezes the newest version and prunes the old one');

# a transaction whose update is based on a version that a sweep freezes
# before it commits still commits: freezing keeps the xid the update names
# as the version it is based on
$node->safe_psql('postgres', q{INSERT INTO fz VALUES (5, 'five')});
is(versions(5), 'f|f|committed', 'key 5 is not frozen yet');
my $updater = $node->background_psql('postgres');
$updater->query_safe('BEGIN');
$updater->query_safe(q{UPDATE fz SET v = 'updated' WHERE k = 5});
$node->safe_psql('postgres', 'SELECT almanac.freeze_sweep()');
is(versions(5), 'f|t|frozen', 'a sweep froze the version the update is based on');
eval { $updater->query_safe('COMMIT'); };
is($@, '', 'the update commits (no false serialization failure)');
$updater->quit;
is($node->safe_psql('postgres', 'SELECT v FROM fz WHERE k = 5'), 'updated', 'and its row is stored');

# a pass over more keys than one step holds (1000) resumes where each step
# stopped, and covers every column family
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE big (k bigint, v text) SERVER almanac_store
		OPTIONS (key_prefix 'big', key_columns 'k');
	INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 2500) g;
	INSERT INTO kv VALUES (2, 'two');
});
my $unfrozen_big = q{
	SELECT count(*) FROM generate_series(1, 2500) g,
		LATERAL almanac.value_versions('almanac_store', 'big', almanac.make_key('big', row(g::bigint)))
	 WHERE NOT frozen};
is($node->safe_psql('postgres', $unfrozen_big), '2500', '2500 keys written once, unfrozen');
cmp_ok($node->safe_psql('postgres', 'SELECT almanac.freeze_sweep()'), '>=', 2501,
	'a pass rewrites all of them');
is($node->safe_psql('postgres', $unfrozen_big), '0', 'every one of them is frozen');
is($node->safe_psql('postgres', q{
	SELECT string_agg(status, ',') FROM almanac.value_versions('almanac_store', 'kv',
		almanac.make_key('kv', row(2::bigint)))}), 'frozen', 'and the other column families\' keys');
is($node->safe_psql('postgres', q{SELECT count(*), sum(length(v)) FROM big}), '2500|11393',
	'the rows read as written');

# automatic trigger: the freeze horizon gets older than almanac.freeze_sweep_age
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET almanac.freeze_sweep_age = 1000;
	SELECT pg_reload_conf();
	INSERT INTO fz VALUES (10, 'auto');
});
is(versions(10), 'f|f|committed', 'a new version is not frozen while the horizon is young');
$node->safe_psql('postgres', q{
	DO $$ BEGIN FOR i IN 1..1100 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$;
});
# any request wakes the owner; after serving it, it sees the old horizon
$node->safe_psql('postgres', q{INSERT INTO fz VALUES (11, 'wake')});
ok(wait_until(sub { versions(10) eq 'f|t|frozen' }),
	'the owner sweeps by itself once the freeze horizon is older than almanac.freeze_sweep_age');

# the freeze horizon survives a restart: the new owner does not sweep again
$node->safe_psql('postgres', q{
	ALTER SYSTEM RESET almanac.freeze_sweep_age;
	SELECT pg_reload_conf();
});
$node->restart;
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{INSERT INTO fz VALUES (20, 'a')});
$node->safe_psql('postgres', q{INSERT INTO fz VALUES (21, 'b')});
ok($node->log_contains(qr/almanac: store owner ready/, $log_offset), 'a new owner started');
ok(!$node->log_contains(qr/almanac: freeze sweep of store/, $log_offset),
	'and did not sweep: the store remembers its freeze horizon');
is($node->safe_psql('postgres', 'SELECT string_agg(k || \'=\' || v, \',\' ORDER BY k) FROM fz'),
	'1=once,2=kept,4=new,5=updated,10=auto,11=wake,20=a,21=b', 'every row survives');

# a value that cannot be parsed (written behind the store's back with ldb,
# from rocksdb-tools) is logged and skipped; the sweep freezes the rest
my $store = $node->data_dir . '/almanac/base/'
  . $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'postgres'});
$node->stop;
# key fz:<99 as 8 bytes>, value: format byte, 65535 versions, nothing more
system('ldb', "--db=$store", '--try_load_options', '--column_family=fz', '--hex',
	'put', '0x667A3A0000000000000063', '0xA1FFFF') == 0
  or die "ldb put failed";
$node->start;
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{INSERT INTO fz VALUES (100, 'fresh')});
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT v FROM fz WHERE k = 99');
like($err, qr/almanac store value is corrupted/, 'readers refuse the corrupted value');
$node->safe_psql('postgres', 'SELECT almanac.freeze_sweep()');
is(versions(100), 'f|t|frozen', 'a sweep freezes the other values');
ok( $node->log_contains(
		qr/freeze sweep skipped a corrupted value: almanac store value is corrupted: truncated version header\n.*CONTEXT:  freeze sweep of almanac store ".*", column family "fz", key fz:\\x00\\x00\\x00\\x00\\x00\\x00\\x00c/,
		$log_offset),
	'and logs the one it skipped, naming column family and key');

$node->stop;
done_testing();
