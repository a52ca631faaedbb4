# What `make demo` loads and what README.md tells a new user to run against
# it: test/demo/sample.sql leaves each chain's head where ingest would (so
# set_safe and set_finalized take its blocks), test/demo/queries.sql runs, and
# the README's five-minute tour, taken from README.md itself, runs without an
# error and shows the figures its comments promise.
use strict;
use warnings;
use AlmanacTest;
use Test::More;

my $root = $ENV{ALMANAC_ROOT} or die "ALMANAC_ROOT is not set";
my $node = AlmanacTest::almanac_node('demo');

# a file run by psql (-XAtq: unaligned rows, no headers), stopping at the
# first error
sub run_file
{
	my ($file) = @_;
	my ($out, $err) = ('', '');
	my $ret = $node->psql('postgres', "\\i $file", stdout => \$out, stderr => \$err);
	return ($ret, $out, $err);
}

my ($ret, $out, $err) = run_file("$root/test/demo/sample.sql");
is($ret, 0, 'sample.sql loads') or diag($err);
is($node->safe_psql('postgres',
		'SELECT string_agg(chain_id || \'=\' || latest_block, \',\' ORDER BY chain_id) FROM almanac.chain_heads'),
	'arbitrum=1039,base=1039,eth=1039',
	'sample.sql: every chain\'s latest_block is its last block');
is($node->safe_psql('postgres',
		"SELECT almanac.set_safe('eth', 1035) || ' ' || almanac.set_finalized('eth', 1030)"),
	'1035 1030', 'sample.sql: the heads of a sample chain move');

($ret, $out, $err) = run_file("$root/test/demo/queries.sql");
is($ret, 0, 'queries.sql runs') or diag($err);
like($out, qr/^0x[0-9a-f]{64}\|115792089237316195423570985008687907853269984665640564039457584007913129639935$/m,
	'queries.sql: 2^256-1 exactly');

# the tour: the first ```sql block after its heading; psql runs it from the
# checkout, as the README says (step 5 reads fixtures by relative paths)
open my $fh, '<', "$root/README.md" or die "README.md: $!";
my $readme = do { local $/; <$fh> };
close $fh;
my ($tour) = $readme =~ /^## A five-minute tour\n.*?^```sql\n(.*?)^```/ms;
ok(defined $tour && $tour =~ /ingest_block/, 'README.md has the tour');
my $tour_file = "${PostgreSQL::Test::Utils::tmp_check}/tour.sql";
open $fh, '>', $tour_file or die "$tour_file: $!";
print $fh $tour;
close $fh;
chdir $root or die "$root: $!";
($ret, $out, $err) = run_file($tour_file);
is($ret, 0, 'the tour runs without an error') or diag($err);
like($out, qr/^1007\|0\|115792089237316195423570985008687907853269984665640564039457584007913129639935$/m,
	'tour step 1: 2^256-1 exactly');
like($out, qr/^Custom Scan \(Almanac Lookup\) on blocks$/m, 'tour step 1: the router answers');
like($out, qr/^\s*Almanac Access: point lookup \(Get\)$/m, 'tour step 3: one Get');
like($out, qr/^\s*Almanac Access: multi-key lookup \(MultiGet\)$/m, 'tour step 3: one MultiGet');
is($node->safe_psql('postgres', "SELECT count(*) FROM balances WHERE chain_id = 'base'"), '8',
	'tour step 4: the rolled back DELETE left the 8 rows');
like($out, qr/^anvil\|31337\|\|1\|\|$/m, 'tour step 5: evm_chain_id 31337, latest_block 1');
like($out, qr/^balance\|\{balances\}$/m, 'tour step 6: the column family of balances');

$node->stop;
done_testing();
