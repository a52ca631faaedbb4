# Crash proofs (src/fault.h): a process stopped at each named fault point of
# the commit path is killed with SIGKILL (the postmaster, or the store
# owner), the server restarts, and every transaction is there whole or not
# at all: present if its commit record was written, absent otherwise, in the
# foreign table and in the heap table it also wrote.
#
#   before_commit_record  batch durable in the store, no commit record:
#                         absent
#   after_commit_record   commit record written, COMMIT not returned:
#                         present
#   owner_after_sync      the owner synced the batch and did not answer:
#                         absent (killed: the owner)
#   owner_start           the owner opened the store after the crash and
#                         served nothing: every commit before is present
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node start_after_crash);

my $node = almanac_node('fault_points');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'f', key_columns 'id');
	CREATE TABLE heap (id int PRIMARY KEY);
});

my $committed = 0;		# ids 1000.. committed normally before each crash

# commit a few transactions normally
sub commit_some
{
	for (1 .. 3)
	{
		$committed++;
		my $id = 1000 + $committed;
		$node->safe_psql('postgres',
			"BEGIN; INSERT INTO kv VALUES ($id, 'ok'); INSERT INTO heap VALUES ($id); COMMIT;");
	}
}

# start a session that writes id in both tables and commits, with the
# session's fault point set (or none: the owner's); wait until some process
# reports reaching point
sub commit_until_fault
{
	my ($id, $point, $set) = @_;
	my $offset = -s $node->logfile;
	my $sql = ($set ? "SET almanac.fault_point = '$point';\n" : '')
	  . "BEGIN;\nINSERT INTO kv VALUES ($id, 'x');\nINSERT INTO heap VALUES ($id);\nCOMMIT;\n";
	my ($out, $err) = ('', '');
	my $file = $node->basedir . "/commit_$id.sql";
	open(my $fh, '>', $file) or die "cannot write $file: $!";
	print $fh $sql;
	close $fh;
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-f', $file ],
		'>', \$out, '2>', \$err);
	$node->wait_for_log(qr/almanac: fault point "$point" reached/, $offset);
	return ($h, \$out);
}

sub present
{
	my ($id) = @_;
	return $node->safe_psql('postgres',
		"SELECT (SELECT count(*) FROM kv WHERE id = $id) || ' ' || (SELECT count(*) FROM heap WHERE id = $id)");
}

sub all_committed_present
{
	return $node->safe_psql('postgres',
		"SELECT (SELECT count(*) FROM kv WHERE id > 1000 AND v = 'ok') || ' ' || (SELECT count(*) FROM heap WHERE id > 1000)");
}

# before_commit_record: absent
commit_some();
my ($h, $out) = commit_until_fault(1, 'before_commit_record', 1);
$node->kill9;
$h->finish;
unlike($$out, qr/COMMIT/, 'before_commit_record: COMMIT did not return');
ok(start_after_crash($node), 'before_commit_record: restarted');
is(present(1), '0 0', 'before_commit_record: the transaction is absent from both tables');
is(all_committed_present(), "$committed $committed", 'before_commit_record: every earlier commit is present');

# after_commit_record: present
commit_some();
($h, $out) = commit_until_fault(2, 'after_commit_record', 1);
$node->kill9;
$h->finish;
ok(start_after_crash($node), 'after_commit_record: restarted');
is(present(2), '1 1', 'after_commit_record: the transaction is present in both tables');
is(all_committed_present(), "$committed $committed", 'after_commit_record: every earlier commit is present');

# owner_after_sync: the owner is killed, the postmaster ends every process
# (the tests' clusters have restart_after_crash off) and is started again
commit_some();
$node->safe_psql('postgres', "ALTER SYSTEM SET almanac.fault_point = 'owner_after_sync'; SELECT pg_reload_conf();");
my $owner = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE application_name = 'almanac store owner'");
ok($owner > 0, 'owner_after_sync: the owner runs');
# the owner reloads its configuration before serving the next request
sleep(1);
($h, $out) = commit_until_fault(3, 'owner_after_sync', 0);
kill 'KILL', $owner;
$h->finish;
ok(start_after_crash($node), 'owner_after_sync: restarted');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET almanac.fault_point; SELECT pg_reload_conf();');
unlike($$out, qr/COMMIT/, 'owner_after_sync: COMMIT did not return');
is(present(3), '0 0', 'owner_after_sync: the transaction is absent from both tables');
is(all_committed_present(), "$committed $committed", 'owner_after_sync: every earlier commit is present');

# owner_start: armed for the owner's start after a restart
commit_some();
$node->safe_psql('postgres', "ALTER SYSTEM SET almanac.fault_point = 'owner_start'");
$node->restart;
my $offset = -s $node->logfile;
my ($rout, $rerr) = ('', '');
$h = IPC::Run::start(
	[ 'psql', '-X', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-c', 'SELECT count(*) FROM kv' ],
	'>', \$rout, '2>', \$rerr);
$node->wait_for_log(qr/almanac: fault point "owner_start" reached/, $offset);
$node->kill9;
$h->finish;
ok(start_after_crash($node), 'owner_start: restarted');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET almanac.fault_point; SELECT pg_reload_conf();');
is(all_committed_present(), "$committed $committed", 'owner_start: every earlier commit is present');
is(present(2), '1 1', 'owner_start: the committed transaction of after_commit_record is present');
is(present(1) . ' ' . present(3), '0 0 0 0', 'owner_start: the uncommitted ones are absent');

# a fault point is the superuser's
$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
my ($rc, $o, $e) = $node->psql('postgres', "SET almanac.fault_point = 'owner_start'",
	extra_params => [ '-U', 'plain' ]);
like($e, qr/permission denied to set parameter "almanac.fault_point"/,
	'only a superuser sets almanac.fault_point');

$node->stop;
done_testing();
