# bench/locking/late_lock.pl: what a locking read costs (docs/write-path.md,
# key locks): the row ids a locking scan keeps, and the time of a plain read,
# a locking read under a Sort (late locking: a second read of each key, in the
# rows' order) and one in key order, over 100,000 rows, medians of 5.  Not a
# test: run it through the TAP harness, which starts the server,
#   make test REGRESS=extension ISOLATION_SPECS= TAP_TESTS=bench/locking/late_lock.pl
# and read the lines starting with "#" in .build/test/tap.log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use AlmanacTest qw(almanac_node);

my $node = almanac_node('measure_late_lock');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO kv SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
});
my $mem = $node->safe_psql('postgres', q{
	BEGIN;
	DECLARE c CURSOR FOR SELECT k, v FROM kv ORDER BY v FOR UPDATE;
	FETCH 1 FROM c;
	SELECT 'row ids: ' || sum(total_bytes) FROM pg_backend_memory_contexts WHERE name = 'almanac row ids';
	COMMIT;});
diag($mem);
for my $q ('SELECT k, v FROM kv ORDER BY v', 'SELECT k, v FROM kv ORDER BY v FOR UPDATE',
	'SELECT k, v FROM kv WHERE k > 0 FOR UPDATE')
{
	my @t;
	for (1 .. 5)
	{
		my $t0 = time;
		$node->safe_psql('postgres', "BEGIN; $q; COMMIT;");
		push @t, time - $t0;
	}
	@t = sort { $a <=> $b } @t;
	diag(sprintf("%-50s median %.3f s (min %.3f)", $q, $t[2], $t[0]));
}
ok(1, 'measured');
$node->stop;
done_testing();
