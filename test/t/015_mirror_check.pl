# The background check of the mirrors (almanac.verify_interval): a worker of
# the database samples each mirrored table, logs a difference and marks the
# mirror out of sync, so that the router reads the heap until resync.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('check');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'almanac'\nalmanac.verify_interval = 1");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION almanac;
	INSERT INTO almanac.chains (chain_id) VALUES ('eth');
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	SELECT 'eth', n, '0x' || lpad(to_hex(n), 64, '0'), '0x' || lpad(to_hex(n + 1000), 64, '0'), now()
	  FROM generate_series(1, 50) n;
});
my $lookup = "SELECT block_hash FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 7";

# the worker runs and finds nothing while table and mirror agree
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'almanac mirror check'"),
	'the check worker of the database runs');
sleep 3;
is($node->safe_psql('postgres', "SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.blocks'::regclass"),
	't', 'a mirror that agrees with its table stays in sync');

# a difference: the mirror is turned back on by hand after a write it missed
$node->safe_psql('postgres', q{
	SELECT almanac.disable_mirror('almanac.blocks');
	UPDATE almanac.blocks SET block_hash = '0x' || repeat('77', 32) WHERE chain_id = 'eth' AND block_number = 7;
	UPDATE almanac.mirrors SET enabled = true WHERE relid = 'almanac.blocks'::regclass;
});
ok($node->poll_query_until('postgres',
		"SELECT NOT in_sync FROM almanac.mirrors WHERE relid = 'almanac.blocks'::regclass"),
	'the check marks the mirror out of sync');
ok($node->log_contains('the mirror of table "blocks" differs from the table at key'),
	'and logs the difference');
is($node->safe_psql('postgres', $lookup), '0x' . ('77' x 32), 'lookups give the heap\'s row');
like($node->safe_psql('postgres', "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $lookup"),
	qr/Heap Fallback: out_of_sync/, 'read from the heap');
is($node->safe_psql('postgres', "SELECT almanac.resync('almanac.blocks')"), '1', 'resync repairs the key');
is($node->safe_psql('postgres', "SELECT in_sync FROM almanac.mirrors WHERE relid = 'almanac.blocks'::regclass"),
	't', 'and the mirror is in sync again');
unlike($node->safe_psql('postgres', "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $lookup"),
	qr/Heap Fallback/, 'lookups read the mirror again');

# 0 stops the worker
$node->append_conf('postgresql.conf', "almanac.verify_interval = 0");
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'almanac mirror check'"),
	'almanac.verify_interval = 0 stops the worker');

$node->stop;
done_testing();
