# The memory each backend's secondary adds.  A store with a small
# max_total_wal_size holds a few hundred thousand rows, with its WAL filled
# to most of that size again (unflushed data is what a secondary replays into
# memtables of its own).  Then ten new sessions each read one key, and the
# backend's private memory (Private_Dirty of /proc/<pid>/smaps_rollup) is
# taken before and after that first read.  The statement is planned once
# before (EXPLAIN), so the difference is the store: attaching, opening the
# secondary (every SST file opened, max_open_files = -1), replaying the WAL,
# one Get.
#
# Bound: the secondary replays what the owner left unflushed, which the owner
# keeps under max_total_wal_size by flushing once that much has been written
# since the last flush (one batch may overshoot it), and a memtable costs
# about 1.5 times the WAL bytes it replays (skiplist nodes, arena slack).
# Every SST file is kept open (max_open_files = -1) with its index and bloom
# filter in memory: about 0.6 bytes per stored key, measured.  So:
#
#   memory a backend adds <= 2 x max_total_wal_size + 1 byte per stored key + 8 MB
#
# the 8 MB being the RocksDB instance and the block cache pages one Get
# touches.  A scan can add up to almanac.reader_block_cache_size (the backend's block cache) on
# top (each backend has its own), measured once below.
#
# The figures go to the test's log (note).  ALMANAC_TEST_WAL_MB (default 4)
# and ALMANAC_TEST_ROWS (default 300000) change the two sizes, to measure.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use AlmanacTest qw(almanac_node backend_memory);

my $started = time;
my $wal_limit_mb = $ENV{ALMANAC_TEST_WAL_MB} // 4;
my $wal_limit = $wal_limit_mb * 1024 * 1024;
my $rows = $ENV{ALMANAC_TEST_ROWS} // 300_000;
my $sessions = 10;

my $node = almanac_node('memory');
my $store = $node->data_dir . '/almanac/mem';
$node->safe_psql('postgres', qq{
	CREATE SERVER mem FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (
		path 'almanac/mem', max_total_wal_size '${wal_limit_mb}MB');
	CREATE FOREIGN TABLE kv (k bigint, v bigint, pad text)
		SERVER mem OPTIONS (key_prefix 'kv', key_columns 'k');
});
# the load: 300,000 rows in ten transactions
for my $i (0 .. 9)
{
	my ($lo, $hi) = ($i * $rows / 10, ($i + 1) * $rows / 10 - 1);
	$node->safe_psql('postgres',
		"INSERT INTO kv SELECT g, g, md5(g::text) FROM generate_series($lo, $hi) g");
}

# the store's WAL files, once RocksDB removed the flushed ones: one is left
# when every column family was flushed since the others were written (the
# owner's flush, or its flush again when RocksDB's own left one behind:
# store/owner.c, stranded_log_step); waits for it up to the timeout
sub wal_files
{
	my @logs;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while ((@logs = glob("$store/*.log")) > 1 && time < $deadline)
	{
		usleep(10_000);
	}
	return @logs;
}

# the WAL a new secondary replays
sub live_wal_bytes
{
	my @logs = wal_files();
	die "flushed WAL files were not removed: @logs" if @logs != 1;
	return -s $logs[0];
}

# then fill the WAL to between 3/4 and all of the limit: small transactions
# until the live WAL is that large (when one makes the owner flush, the WAL
# starts again from nothing)
my $next = $rows;
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (live_wal_bytes() < 0.75 * $wal_limit && time < $deadline)
{
	$node->safe_psql('postgres',
		"INSERT INTO kv SELECT g, g, md5(g::text) FROM generate_series($next, $next + 999) g");
	$next += 1000;
}
my $wal = live_wal_bytes();
cmp_ok($wal, '>=', 0.75 * $wal_limit, 'the WAL holds most of max_total_wal_size');
cmp_ok($wal, '<=', 1.25 * $wal_limit, 'and not much more: the owner flushes at the limit');
my $total = $next;
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv'), $total, "$total rows stored");

# ten sessions, each reading one key for the first time
my $bound_kb = int((2 * $wal_limit + $total + 8 * 1024 * 1024) / 1024);
my (@deltas, @rss_deltas, $scan_delta);
for my $s (1 .. $sessions)
{
	my $psql = $node->background_psql('postgres');
	my $pid = $psql->query_safe('SELECT pg_backend_pid()');
	my $key = $s * 7919;
	$psql->query_safe("EXPLAIN SELECT v FROM kv WHERE k = $key");
	my $before = backend_memory($pid);
	is($psql->query_safe("SELECT v FROM kv WHERE k = $key"), $key, "session $s reads its key");
	my $after = backend_memory($pid);
	my $delta = $after->{private_dirty} - $before->{private_dirty};
	push @deltas, $delta;
	push @rss_deltas, $after->{rss} - $before->{rss};
	cmp_ok($delta, '<=', $bound_kb,
		"session $s: the first read adds $delta kB private memory, at most $bound_kb kB");
	if ($s == 1)
	{
		# a full scan fills the backend's block cache
		is($psql->query_safe('SELECT count(*) FROM kv'), $total, 'session 1 scans every row');
		my $scanned = backend_memory($pid);
		$scan_delta = $scanned->{private_dirty} - $before->{private_dirty};
		my $cache_kb = $psql->query_safe(
			"SELECT setting FROM pg_settings WHERE name = 'almanac.reader_block_cache_size'");
		cmp_ok($scan_delta, '<=', $bound_kb + $cache_kb,
			"after a full scan it has added $scan_delta kB, at most the bound plus the $cache_kb kB block cache");
	}
	$psql->quit;
}

my @sorted = sort { $a <=> $b } @deltas;
my $sum = 0;
$sum += $_ foreach @deltas;
my $mean = $sum / @deltas;
note sprintf('max_total_wal_size %d MB, live WAL %.1f MB, %d rows', $wal_limit_mb, $wal / 1048576, $total);
note sprintf('private memory added by the first read, kB: min %d, median %d, max %d, mean %.0f',
	$sorted[0], $sorted[ $#sorted / 2 ], $sorted[-1], $mean);
note sprintf('RSS added by the first read (shared library pages included), kB: %s', join(' ', @rss_deltas));
note "private memory added by the first read and a full scan: $scan_delta kB";
note sprintf('100 connections that each read one key: %.0f MB measured, at most %.0f MB by the bound',
	100 * $mean / 1024, 100 * $bound_kb / 1024);

# A flush of one column family moves it to a new WAL file and leaves the
# others' last writes (the owner's markers) in the old one, as RocksDB's own
# flush at max_total_wal_size does while the owner's flushes run late (a
# loaded machine): the owner flushes those too once RocksDB's flushes are
# done, and the store at rest keeps one WAL file.  First the store at rest:
# the owner's idle flush has left a WAL file of a few markers.
my @rest;
$deadline = time + $PostgreSQL::Test::Utils::timeout_default;
until (((@rest = glob("$store/*.log")) == 1 && -s $rest[0] < 4096) || time > $deadline)
{
	usleep(10_000);
}
is(scalar(@rest), 1, 'at rest, the store has one WAL file');
cmp_ok(-s $rest[0], '<', 4096, 'which holds no rows: the idle flush wrote them into SST files');
$node->safe_psql('postgres', "SELECT almanac.flush('kv', 'mem')");
my @left = wal_files();
is(scalar(@left), 1, 'after a flush of one column family, one WAL file is left')
  or diag("WAL files: @left");

$node->stop;
note sprintf('runtime %.1f s', time - $started);
done_testing();
