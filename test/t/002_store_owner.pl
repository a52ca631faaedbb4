# The store owner: killing it with SIGKILL loses no committed write, the
# server recovers by itself and the next session uses the store again; after
# a clean exit of the owner a session that used the store starts a new one; a
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

my $crash_offset = -s $node->logfile;
kill 'KILL', $owner;
# the postmaster treats it as a crash and reinitializes; wait until it has
# begun (a query before that is answered by the old server) and is back
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $crash_offset);
$node->poll_query_until('postgres', 'SELECT true') or die "server did not come back";

is($node->safe_psql('postgres', 'SELECT count(*), count(*) FILTER (WHERE v = \'updated\') FROM kv'),
	'990|10', 'no committed write was lost to SIGKILL of the owner');
$node->safe_psql('postgres', "INSERT INTO kv VALUES (5000, 'after')");
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 5000'), 'after',
	'a new owner takes writes after the crash');

# An owner that exits keeps its store's entry in shared memory: a store
# opened meanwhile must not take it over, or the next owner of that entry
# would serve the first store's requests (here the commit of a buffered
# row) against the other store.
$node->safe_psql('postgres', q{
	CREATE SERVER other FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (path 'almanac/other');
	CREATE FOREIGN TABLE kv_other (k bigint, v text) SERVER other
		OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO kv_other VALUES (1, 'other');
});
my $s = $node->background_psql('postgres', on_error_stop => 0);
$s->query_safe('BEGIN');
$s->query_safe("INSERT INTO kv VALUES (7777, 'buffered')");
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'almanac store owner'");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'almanac store owner'")
  or die "the owners did not exit";
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv_other'), '1',
	'the other store gets an owner again');
$s->query('COMMIT');
like($s->{stderr}, qr/exited before answering/,
	'COMMIT after the owner exited fails, with no owner to answer it');
$s->quit;
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv_other WHERE k = 7777'), '0',
	'the row did not land in the other store');
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv WHERE k = 7777'), '0',
	'nor in its own');

# An owner that exits cleanly (SIGTERM) is no crash: sessions go on.  One
# that used the store before, and so attaches it the short way, must notice
# that the owner is gone and start a new one for its next write.
my $session = $node->background_psql('postgres');
is($session->query_safe('SELECT v FROM kv WHERE k = 5000'), 'after', 'a session reads the store');
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'almanac store owner'");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'almanac store owner'")
  or die "the owners did not exit";
$session->query_safe("INSERT INTO kv VALUES (5001, 'after exit')");
is($session->query_safe('SELECT v FROM kv WHERE k = 5001'), 'after exit',
	'the same session writes through a new owner after the old one exited');
$session->quit;

# a store path that cannot be created
$node->safe_psql('postgres', q{
	CREATE SERVER bad_store FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (path '/proc/almanac-cannot-exist');
	CREATE FOREIGN TABLE bad_kv (k bigint, v text) SERVER bad_store OPTIONS (key_prefix 'kv', key_columns 'k');
});
my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT * FROM bad_kv");
isnt($ret, 0, 'reading an unopenable store fails');
like($err, qr/ERROR:\s+58030: could not open almanac store "\/proc\/almanac-cannot-exist"/, 'with a clear I/O error naming the path');
like($err, qr/HINT:/, 'and a hint');
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv'), '992', 'the good store is unaffected');

$node->stop;
done_testing();
