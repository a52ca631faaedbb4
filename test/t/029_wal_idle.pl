# A store nobody writes while the rest of the server does (heap-only work):
# the owner's durable points (docs/write-path.md) make nothing durable
# then, so it records none, and its state write is no user write: no
# catch-up markers, no idle flush.  Before, every second's durable point
# flushed every column family (27 RocksDB flushes in 10 s of heap-only
# writes against 0).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use AlmanacTest qw(almanac_node);

my $node = almanac_node('wal_idle', "almanac.idle_flush_delay = 500\n");
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'w', key_columns 'id');
	CREATE FOREIGN TABLE kv2 (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'x', key_columns 'id', column_family 'cf2');
	INSERT INTO kv VALUES (1, 'one');
	INSERT INTO kv2 VALUES (1, 'one');
	CREATE TABLE h (id int);
});
sleep(3);    # the writes' durable point and idle flush are done
my $dbid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'postgres'");
my $dir = $node->data_dir . "/almanac/base/$dbid";

sub flushes
{
	my $n = 0;
	for my $f (glob("$dir/LOG*"))
	{
		open(my $fh, '<', $f) or next;
		while (<$fh>) { $n++ if /"event": "flush_finished"/ }
	}
	return $n;
}
sub syncs { return $node->safe_psql('postgres', 'SELECT wal_syncs FROM almanac.commit_stats()'); }

my ($f0, $s0) = (flushes(), syncs());
my $t0 = time;
while (time - $t0 < 6)
{
	$node->safe_psql('postgres', 'INSERT INTO h VALUES (1)');
	usleep(200_000);
}
my ($f1, $s1) = (flushes(), syncs());
note "heap-only 6 s: RocksDB flushes $f0 -> $f1, durable-point syncs $s0 -> $s1";
is($f1 - $f0, 0, 'no RocksDB flush while only the heap is written');
is($s1 - $s0, 0, 'no durable point while the store is not written');

# a store write is made durable as before: one durable point, then a crash
$node->safe_psql('postgres', "INSERT INTO kv VALUES (2, 'two')");
$node->poll_query_until('postgres', "SELECT wal_syncs > $s1 FROM almanac.commit_stats()")
  or die 'no durable point after a store write';
$node->safe_psql('postgres', "INSERT INTO kv VALUES (3, 'three'); INSERT INTO h VALUES (2)");
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT string_agg(v, \',\' ORDER BY id) FROM kv'), 'one,two,three',
	'every committed store write survives a crash');
$node->stop;
done_testing();
