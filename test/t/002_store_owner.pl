# The store owner: killing it with SIGKILL loses no committed write, the
# server recovers by itself and the next session uses the store again; a
# store path that cannot be created is a clear error, not a crash.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('owner');
$node->init;
# the owner's death is a crash of a shared-memory process: PostgreSQL
# reinitializes, as it does for any backend crash (the test framework turns
# that off by default)
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'almanac'\nrestart_after_crash = on");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION almanac;
	CREATE FOREIGN TABLE kv (k bigint, v text) SERVER almanac_store
		OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 1000) g;
	UPDATE kv SET v = 'updated' WHERE k <= 10;
	DELETE FROM kv WHERE k > 990;
});
is($node->safe_psql('postgres', 'SELECT count(*), count(*) FILTER (WHERE v = \'updated\') FROM kv'),
	'990|10', 'committed writes are visible');

my $owner = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'almanac store owner'");
like($owner, qr/^\d+$/, 'the store owner runs as a background worker');

kill 'KILL', $owner;
# the postmaster treats it as a crash and reinitializes; wait until it is back
$node->poll_query_until('postgres', 'SELECT true') or die "server did not come back";

is($node->safe_psql('postgres', 'SELECT count(*), count(*) FILTER (WHERE v = \'updated\') FROM kv'),
	'990|10', 'no committed write was lost to SIGKILL of the owner');
$node->safe_psql('postgres', "INSERT INTO kv VALUES (5000, 'after')");
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 5000'), 'after',
	'a new owner takes writes after the crash');

# a store path that cannot be created
$node->safe_psql('postgres', q{
	CREATE SERVER bad_store FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (path '/proc/almanac-cannot-exist');
	CREATE FOREIGN TABLE bad_kv (k bigint, v text) SERVER bad_store OPTIONS (key_prefix 'kv', key_columns 'k');
});
my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT * FROM bad_kv");
isnt($ret, 0, 'reading an unopenable store fails');
like($err, qr/ERROR:\s+58030: could not open almanac store "\/proc\/almanac-cannot-exist"/, 'with a clear I/O error naming the path');
like($err, qr/HINT:/, 'and a hint');
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv'), '991', 'the good store is unaffected');

$node->stop;
done_testing();
