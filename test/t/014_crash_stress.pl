# Randomized crash stress (issue 15, item 5).  Each round, concurrent
# clients run transactions that each write a heap table and a foreign table
# alike (insert a row into both, add one to a counter row in both, and every
# fourth also deletes an earlier row of the client from both); at a random
# moment the postmaster or the store owner is killed with SIGKILL; after the
# restart a full cross-check compares the two tables with each other and
# with what the clients saw committed:
#
#   lost commits  a transaction whose COMMIT returned is missing (a row it
#                 inserted is absent, a row it deleted is present), or the
#                 counters count fewer transactions than returned
#   divergences   the two tables differ (a row in one and not the other,
#                 another value, counters that differ), or a transaction
#                 that never reached COMMIT is present
#
# Only a client's last transaction, whose COMMIT was cut off, may be either
# present or absent (whole, in both tables).
#
# make test runs 3 rounds; a long run by hand (from the checkout, as root):
#   make test REGRESS=extension ISOLATION_SPECS= TAP_TESTS=test/t/014_crash_stress.pl ROUNDS=100
# (the environment variable ROUNDS reaches the test through make test); each
# round prints one line, the totals come last.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use AlmanacTest qw(almanac_node start_after_crash);

my $rounds = $ENV{ROUNDS} // 3;
my $clients = 4;
my $per_client = 3000;		# more than a round has time for

my $node = almanac_node('crash_stress');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id bigint, v bigint)
		SERVER almanac_store OPTIONS (key_prefix 's', key_columns 'id');
	CREATE TABLE heap (id bigint PRIMARY KEY, v bigint);
	INSERT INTO kv VALUES (0, 0);
	INSERT INTO heap VALUES (0, 0);
});

my ($total_lost, $total_div, $total_acked) = (0, 0, 0);
my $acked_all = 0;			# transactions whose COMMIT returned, all rounds
my $maybe_all = 0;			# transactions cut off in COMMIT, all rounds
my $seed = $ENV{SEED} // time;
srand($seed);
note "seed $seed";

# client c's transaction i (1-based): inserts id, every fourth deletes id - 2
sub txn_id { my ($round, $c, $i) = @_; return $round * 1_000_000 + $c * 100_000 + $i; }

for my $round (1 .. $rounds)
{
	my (@h, @out);
	for my $c (0 .. $clients - 1)
	{
		my $file = $node->basedir . "/r${round}_c$c.sql";
		open(my $fh, '>', $file) or die "cannot write $file: $!";
		print $fh "\\set ON_ERROR_STOP 1\n";
		for my $i (1 .. $per_client)
		{
			my $id = txn_id($round, $c, $i);
			print $fh "BEGIN;\nINSERT INTO kv VALUES ($id, $id);\nINSERT INTO heap VALUES ($id, $id);\n";
			if ($i % 4 == 0)
			{
				my $old = $id - 2;
				print $fh "DELETE FROM kv WHERE id = $old;\nDELETE FROM heap WHERE id = $old;\n";
			}
			print $fh "UPDATE kv SET v = v + 1 WHERE id = 0;\nUPDATE heap SET v = v + 1 WHERE id = 0;\n"
			  . "COMMIT;\n\\echo ok $i\n";
		}
		close $fh;
		my $o = '';
		push @out, \$o;
		push @h, IPC::Run::start(
			[ 'psql', '-X', '-q', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-f', $file ],
			'>', \$o, '2>', \my $e);
	}

	# let them run, then kill at a random moment, the postmaster or the owner
	usleep(int(500_000 + rand(2_500_000)));
	my $victim = rand() < 0.5 ? 'postmaster' : 'owner';
	if ($victim eq 'owner')
	{
		my $pid = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE application_name = 'almanac store owner'");
		if ($pid) { kill 'KILL', $pid; }
		else { $victim = 'postmaster'; }
	}
	$node->kill9 if $victim eq 'postmaster';
	$_->finish for @h;
	# a killed owner ends the server (restart_after_crash is off in tests)
	if ($victim eq 'owner')
	{
		for (my $i = 0; $i < 100 && -e $node->data_dir . '/postmaster.pid'; $i++) { usleep(100_000); }
		delete $node->{_pid};
	}
	die "round $round: the server did not restart" unless start_after_crash($node);

	# what the clients saw: per client the last transaction whose COMMIT returned
	my (%expect_present, %expect_absent, %maybe);
	my ($acked, $cut) = (0, 0);
	for my $c (0 .. $clients - 1)
	{
		my $last = 0;
		$last = $1 while ${ $out[$c] } =~ /^ok (\d+)$/mg;
		$acked += $last;
		for my $i (1 .. $last)
		{
			my $id = txn_id($round, $c, $i);
			$expect_present{$id} = 1;
			delete $expect_present{ $id - 2 }, $expect_absent{ $id - 2 } = 1 if $i % 4 == 0;
		}
		if ($last < $per_client)
		{
			# the transaction cut off in COMMIT (or earlier): either whole or absent
			my $i = $last + 1;
			my $id = txn_id($round, $c, $i);
			$maybe{$id} = 1;
			$maybe{ $id - 2 } = 1 if $i % 4 == 0;
			$cut++;
		}
	}
	$acked_all += $acked;
	$maybe_all += $cut;

	my $lo = $round * 1_000_000;
	my $hi = $lo + 1_000_000;
	my %kv = map { split /\|/ } split /\n/,
	  $node->safe_psql('postgres', "SELECT id, v FROM kv WHERE id >= $lo AND id < $hi");
	my %heap = map { split /\|/ } split /\n/,
	  $node->safe_psql('postgres', "SELECT id, v FROM heap WHERE id >= $lo AND id < $hi");
	my ($kc, $hc) = split /\|/,
	  $node->safe_psql('postgres', 'SELECT (SELECT v FROM kv WHERE id = 0), (SELECT v FROM heap WHERE id = 0)');

	my ($lost, $div) = (0, 0);
	my @notes;
	for my $id (keys %expect_present)
	{
		next if $maybe{$id};
		if (!exists $kv{$id} || !exists $heap{$id}) { $lost++; push @notes, "lost insert $id"; }
	}
	for my $id (keys %expect_absent)
	{
		next if $maybe{$id};
		if (exists $kv{$id} || exists $heap{$id}) { $lost++; push @notes, "lost delete of $id"; }
	}
	for my $id (keys %kv)
	{
		if (!exists $heap{$id}) { $div++; push @notes, "$id in kv only"; }
		elsif ($kv{$id} != $heap{$id}) { $div++; push @notes, "$id differs"; }
		elsif (!$expect_present{$id} && !$maybe{$id} && !$expect_absent{$id})
		{
			$div++;
			push @notes, "$id present, never committed";
		}
	}
	for my $id (keys %heap)
	{
		if (!exists $kv{$id}) { $div++; push @notes, "$id in heap only"; }
	}
	if ($kc != $hc) { $div++; push @notes, "counters differ: kv $kc, heap $hc"; }
	if ($kc < $acked_all) { $lost++; push @notes, "counter $kc below $acked_all committed"; }
	if ($kc > $acked_all + $maybe_all) { $div++; push @notes, "counter $kc above $acked_all + $maybe_all"; }

	$total_lost += $lost;
	$total_div += $div;
	$total_acked += $acked;
	diag(sprintf("round %d: killed the %s, %d commits returned, %d cut off, %d lost, %d divergences%s",
		$round, $victim, $acked, $cut, $lost, $div, @notes ? ': ' . join(', ', @notes[0 .. ($#notes < 9 ? $#notes : 9)]) : ''));
	# counters stay exact across rounds: the cut-off transactions are settled now
	$acked_all = $kc if $lost == 0 && $div == 0;
	$maybe_all = 0;
}

diag("crash stress: $rounds rounds, $total_acked commits returned, $total_lost lost commits, $total_div divergences");
is($total_lost, 0, "no lost commit over $rounds rounds");
is($total_div, 0, "no divergence over $rounds rounds");
cmp_ok($total_acked, '>', 0, 'the rounds committed transactions');

$node->stop;
done_testing();
