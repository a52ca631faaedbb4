# A hot standby never hangs on a foreign table: a read fails at once with
# 55000 and a hint (the RocksDB store is not replicated, and its owner, a
# background worker, would start only after recovery).  Before, the read
# waited on BgWorkerStartup until cancelled (10 minutes in the report).
# The PostgreSQL tables of schema almanac are read on the standby as usual.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'almanac'");
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION almanac;
	CREATE FOREIGN TABLE t (k int, v text) SERVER almanac_store
		OPTIONS (key_prefix 't', key_columns 'k');
	INSERT INTO t VALUES (1, 'one');
	INSERT INTO almanac.chains (chain_id) VALUES ('eth');
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', 7, '0x' || repeat('07', 32), '0x' || repeat('06', 32), now());
});
$primary->backup('b');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT chain_id FROM almanac.chains'),
	'eth', 'the standby reads the PostgreSQL tables');
# the router never routes during recovery: lookups on mirrored tables read the heap
is($standby->safe_psql('postgres',
		"SELECT block_number FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 7"),
	'7', 'a point lookup on a mirrored table reads the heap on the standby');
unlike($standby->safe_psql('postgres',
		"EXPLAIN SELECT * FROM almanac.blocks WHERE chain_id = 'eth' ORDER BY block_number DESC LIMIT 1"),
	qr/Almanac Lookup/, 'and is not routed');

for my $query ('SELECT * FROM t', 'SELECT v FROM t WHERE k = 1',
	'SELECT * FROM almanac.column_families()')
{
	my $start = time;
	my ($ret, $out, $err) = $standby->psql(
		'postgres', "SET statement_timeout = '20s'; $query",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	my $elapsed = time - $start;
	isnt($ret, 0, "$query fails on the standby");
	like($err, qr/ERROR:  55000: almanac foreign tables cannot be used during recovery/,
		'with 55000, not a statement timeout');
	like($err, qr/HINT:  Read almanac foreign tables on the primary/, 'and a hint');
	cmp_ok($elapsed, '<', 10, "at once ($elapsed s)");
}

# writes are refused by PostgreSQL itself (read-only transaction)
my ($ret, $out, $err) = $standby->psql('postgres', "INSERT INTO t VALUES (2, 'two')");
like($err, qr/cannot execute INSERT in a read-only transaction/, 'writes are refused');

# the primary is unaffected
is($primary->safe_psql('postgres', 'SELECT v FROM t WHERE k = 1'), 'one',
	'the primary reads its rows');

# a promoted standby: its store is the one the backup copied, older than
# its heap, so the router reads the heap until resync
$primary->safe_psql('postgres', q{
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', 8, '0x' || repeat('08', 32), '0x' || repeat('07', 32), now());
});
$primary->wait_for_catchup($standby);
$primary->stop;
$standby->promote;
my $lookup = "SELECT block_number FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 8";
is($standby->safe_psql('postgres', $lookup), '8',
	'after promotion, a routed lookup gives the heap\'s row');
like($standby->safe_psql('postgres', "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $lookup"),
	qr/Heap Fallback: out_of_sync/, 'read from the heap: the mirror is older than the new timeline');
cmp_ok($standby->safe_psql('postgres', "SELECT almanac.resync('almanac.blocks')"), '>=', 1,
	'resync writes what the mirror missed');
is($standby->safe_psql('postgres', $lookup), '8', 'and the mirror answers after resync');
unlike($standby->safe_psql('postgres', "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $lookup"),
	qr/Heap Fallback/, 'from the mirror');
is($standby->safe_psql('postgres', "SELECT count(*) FROM almanac.verify('almanac.blocks')"), '0',
	'with no difference left');

$standby->stop;
done_testing();
