# Group commit in the store owner (src/store/owner.c): applied batches are
# written without sync; RocksDB's write-ahead log is synced once per durable
# point (about once a second: PostgreSQL's WAL carries the batches
# meanwhile, docs/write-path.md), or, without a replication slot, once per
# round of requests before any of them is answered.
#
# 1. Eight clients increment random foreign rows, each in its own
#    transaction (conflicts are 40001, retried by pgbench): every committed
#    increment is there exactly once, and the commits shared syncs
#    (almanac.commit_stats: fewer syncs than batches) and RocksDB writes
#    (fewer batch_writes than batches: a round's batches go into one write).
# 2. The same load with a heap ledger row written in each transaction,
#    killed with SIGKILL to the postmaster mid-run: after restart each
#    counter equals the number of ledger rows for it, so every transaction
#    is there whole or not at all.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use AlmanacTest qw(almanac_node run_pgbench pgbench_stat start_after_crash);

my $clients = 8;
my $per_client = 250;
my $keys = 200;

my $node = almanac_node('group_commit');
$node->safe_psql('postgres', qq{
	CREATE FOREIGN TABLE counters (id bigint, v bigint)
		SERVER almanac_store OPTIONS (key_prefix 'ctr', key_columns 'id');
	CREATE TABLE ledger (id bigint);
	INSERT INTO counters SELECT g, 0 FROM generate_series(1, $keys) g;
});
my ($batches0, $syncs0, $writes0) = split /\|/,
  $node->safe_psql('postgres', 'SELECT batches, wal_syncs, batch_writes FROM almanac.commit_stats()');

my ($ret, $out) = run_pgbench($node,
	{ incr => "\\set id random(1, $keys)\nUPDATE counters SET v = v + 1 WHERE id = :id;\n" },
	'-n', '-c', $clients, '-j', $clients, '-t', $per_client, '--max-tries=1000');
is($ret, 0, 'pgbench: every client finished');
my $done = pgbench_stat($out, qr/number of transactions actually processed: (\d+)/);
is($done, $clients * $per_client, 'pgbench: every transaction committed');
is($node->safe_psql('postgres', 'SELECT sum(v) FROM counters'), $clients * $per_client,
	'every committed increment is there exactly once');

my ($batches, $syncs, $writes) = split /\|/,
  $node->safe_psql('postgres', 'SELECT batches, wal_syncs, batch_writes FROM almanac.commit_stats()');
cmp_ok($batches - $batches0, '>=', $clients * $per_client,
	'commit_stats counts a batch per committed transaction');
cmp_ok($syncs - $syncs0, '<', $batches - $batches0,
	"commits shared write-ahead log syncs ($batches batches, $syncs syncs)");
cmp_ok($writes - $writes0, '<', $batches - $batches0,
	"commits shared RocksDB writes ($batches batches, $writes writes)");
cmp_ok($writes - $writes0, '>', 0, 'batch_writes counts the writes');

# 2. atomic across a crash: a foreign increment and a heap ledger row per transaction
$node->safe_psql('postgres', 'UPDATE counters SET v = 0');
my $script = $node->basedir . '/pair.sql';
open(my $fh, '>', $script) or die "cannot write $script: $!";
print $fh "\\set id random(1, $keys)\nBEGIN;\nUPDATE counters SET v = v + 1 WHERE id = :id;\n"
  . "INSERT INTO ledger VALUES (:id);\nEND;\n";
close $fh;
my ($pout, $perr) = ('', '');
my $bench = IPC::Run::start(
	[ 'pgbench', '-h', $node->host, '-p', $node->port, '-n', '-c', $clients, '-j', $clients,
	  '-T', '30', '--max-tries=1000', '-f', $script, 'postgres' ],
	'>', \$pout, '2>', \$perr);
# until a few hundred transactions have committed
my $committed = 0;
for (my $i = 0; $i < 300 && $committed < 300; $i++)
{
	usleep(100_000);
	$committed = $node->safe_psql('postgres', 'SELECT count(*) FROM ledger');
}
cmp_ok($committed, '>=', 300, 'the load committed transactions before the crash');
$node->kill9;
$bench->finish;
my $started = start_after_crash($node);
ok($started, 'the server restarts after the crash');
my $mismatch = $node->safe_psql('postgres', q{
	SELECT count(*) FROM counters c
	  FULL JOIN (SELECT id, count(*) AS n FROM ledger GROUP BY id) l USING (id)
	 WHERE coalesce(c.v, 0) <> coalesce(l.n, 0)});
is($mismatch, 0, 'after the crash, every counter equals its ledger rows (no half transaction)');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM ledger'), '>=', $committed,
	'every transaction that had committed before the crash is there');

$node->stop;
done_testing();
