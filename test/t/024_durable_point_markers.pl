# The durable point's write carries the catch-up markers.
#
# RocksDB switches memtables at the start of the write after the one that
# filled them (or passed max_total_wal_size).  When writes pause, that write
# is usually the owner's once-a-second durable point, whose batch wrote only
# the default column family: the new WAL then began with no marker for the
# table's column family, RocksDB flushed that family, and a reader that had
# replayed part of the old WAL kept its memtable (its check saw a non-empty
# newest WAL that did not change during the catch-up): a point lookup
# returned the older value while a scan returned the newer one.  Found by a
# second read of the reader's stale-memtable check (store/owner.c,
# record_durable_point; kv/reader.c, memtable_may_be_stale).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('dp_markers');
$node->safe_psql('postgres', q{
	CREATE SERVER dp FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (
		path 'almanac/dp', max_total_wal_size '16kB');
	CREATE FOREIGN TABLE t (k bigint, v bigint, pad text)
		SERVER dp OPTIONS (key_prefix 't', key_columns 'k');
	SELECT almanac.flush('default', 'dp');
	INSERT INTO t VALUES (0, 0, NULL), (1, 0, NULL);
});
my $reader = $node->background_psql('postgres');
is($reader->query_safe('SELECT v FROM t WHERE k = 0'), '0', 'a reader replays the WAL holding v = 0');
$node->safe_psql('postgres', 'UPDATE t SET v = 1 WHERE k = 0');
# past max_total_wal_size: the next write switches memtables
$node->safe_psql('postgres',
	q{UPDATE t SET pad = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 220) g) WHERE k = 1});
$node->safe_psql('postgres',
	q{UPDATE t SET pad = (SELECT string_agg(md5((g + 1000)::text), '') FROM generate_series(1, 220) g) WHERE k = 1});
# writes pause: a durable point (once a second) takes the switch, then the flush
sleep 4;
is($reader->query_safe('SELECT v FROM t WHERE k = 0'), '1',
	'a point lookup in the reader sees the committed value');
is($reader->query_safe('SELECT sum(v) FROM t'), '1', 'as a scan does');
$reader->quit;
$node->stop;
done_testing();
