# Each database has a store of its own: a server without "path" (the
# extension's almanac_store included) maps almanac/base/<database oid> under
# the data directory.  The same table in two databases holds two sets of
# rows; a DELETE in one leaves the other's alone; one dump restores into two
# databases.  Two databases share a store only when a superuser (or a member
# of pg_write_server_files) points their servers at one path, outside
# almanac/base; a dropped database's store is removed by its owner.
#
# Before, every database's almanac_store was one store: the second INSERT of
# the same key was 23505 and a DELETE in one database removed the rows of
# the other.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('databases');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'almanac'\nalmanac.reader_cleanup_interval = 1\nmax_worker_processes = 16");
$node->start;

my $table = q{CREATE FOREIGN TABLE t (k int, v text) SERVER almanac_store
	OPTIONS (key_prefix 't', key_columns 'k')};
for my $db ('a', 'b')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION almanac');
	$node->safe_psql($db, $table);
}

$node->safe_psql('a', q{INSERT INTO t VALUES (1, 'a1'), (2, 'a2')});
my ($ret, $out, $err) = $node->psql('b', q{INSERT INTO t VALUES (1, 'b1')});
is($ret, 0, 'the same key in another database is another row') or diag $err;
is($node->safe_psql('b', 'SELECT string_agg(k || v, \',\' ORDER BY k) FROM t'),
	'1b1', "database b sees its own row only");
$node->safe_psql('b', 'DELETE FROM t');
is($node->safe_psql('a', 'SELECT string_agg(k || v, \',\' ORDER BY k) FROM t'),
	'1a1,2a2', "a DELETE in database b leaves database a's rows");

my %oid = map {
	$_ => $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = '$_'")
} ('a', 'b');
ok(-d $node->data_dir . "/almanac/base/$oid{$_}", "database $_ has its store in almanac/base/<oid>")
  for ('a', 'b');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'almanac store owner'"),
	'2',
	'one owner process per database in use');

# a database made from a template gets the tables, not the rows
$node->safe_psql('postgres', 'CREATE DATABASE c TEMPLATE a');
is($node->safe_psql('c', 'SELECT count(*) FROM t'), '0',
	'a database copied from a template starts with an empty store');
$node->safe_psql('c', q{INSERT INTO t VALUES (1, 'c1')});
is($node->safe_psql('a', 'SELECT count(*) FROM t'), '2', 'and writes to its own');

# one dump, restored into two fresh databases
my $dump = $node->basedir . '/a.dump';
$node->command_ok(
	[
		'pg_dump', '-Fc', '--include-foreign-data=almanac_store',
		'-d', $node->connstr('a'), '-f', $dump
	],
	'pg_dump of database a');
for my $db ('r1', 'r2')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->command_ok([ 'pg_restore', '-d', $node->connstr($db), $dump ],
		"restored into $db");
	is($node->safe_psql($db, 'SELECT string_agg(k || v, \',\' ORDER BY k) FROM t'),
		'1a1,2a2', "database $db holds every row of the dump");
}

# a dropped database's store goes with it: its owner removes the directory
# and exits (checked every almanac.reader_cleanup_interval, 1 s here)
$node->safe_psql('postgres', 'CREATE DATABASE gone');
$node->safe_psql('gone', 'CREATE EXTENSION almanac');
$node->safe_psql('gone', $table);
$node->safe_psql('gone', q{INSERT INTO t VALUES (1, 'gone')});
my $gone_oid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'gone'");
my $gone_dir = $node->data_dir . "/almanac/base/$gone_oid";
ok(-d $gone_dir, 'the database to drop has a store');
my $owners = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'almanac store owner'");
$node->safe_psql('postgres', 'DROP DATABASE gone');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = $owners - 1 FROM pg_stat_activity WHERE backend_type = 'almanac store owner'"),
	'its owner exits');
ok(!-e $gone_dir, 'and its store directory is removed');
ok($node->log_contains(qr/almanac: database $gone_oid was dropped: removing its store/),
	'saying so in the log');
is($node->safe_psql('a', 'SELECT count(*) FROM t'), '2', 'other databases keep their rows');

# a database dropped while no owner holds its store (here: after a
# restart, before any use): the next owner to run removes the directory
$node->safe_psql('postgres', 'CREATE DATABASE gone2');
$node->safe_psql('gone2', 'CREATE EXTENSION almanac');
$node->safe_psql('gone2', $table);
$node->safe_psql('gone2', q{INSERT INTO t VALUES (1, 'gone')});
my $gone2_dir = $node->data_dir . '/almanac/base/'
  . $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'gone2'");
$node->restart;
$node->safe_psql('postgres', 'DROP DATABASE gone2');
ok(-d $gone2_dir, 'a store whose database was dropped while its owner was not running');
is($node->safe_psql('a', 'SELECT count(*) FROM t'), '2', 'another database is used');
ok($node->poll_query_until('postgres', "SELECT NOT EXISTS (SELECT FROM pg_ls_dir('almanac/base') d WHERE '$gone2_dir' LIKE '%/' || d)"),
	'and its owner removes the orphaned store');

# entries of removed stores are reused: more databases than the 32 store
# entries in shared memory, each used and dropped in turn (before, each
# database ever used held an entry until a restart)
$node->safe_psql('postgres', 'CREATE DATABASE tmpl');
$node->safe_psql('tmpl', 'CREATE EXTENSION almanac');
$node->safe_psql('tmpl', $table);
my $failed = '';
for my $i (1 .. 36)
{
	$node->safe_psql('postgres', "CREATE DATABASE c$i TEMPLATE tmpl");
	my ($ret, $out, $err) = $node->psql("c$i", "INSERT INTO t VALUES ($i, 'c$i')");
	$failed ||= "c$i: $err" if $ret != 0;
	$node->safe_psql('postgres', "DROP DATABASE c$i");
}
is($failed, '', '36 databases used and dropped one after the other');

# no server may point into almanac/base, not even a superuser's
my ($r, $o, $e) = $node->psql('a', "CREATE SERVER s2 FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (path 'almanac/base/$oid{b}')");
like($e, qr/invalid value for option "path": "almanac\/base\/$oid{b}" is inside almanac\/base/,
	'almanac/base is reserved for the databases\' own stores');

# a shared store only on purpose: a superuser points both servers at one path
# (emptied first: a server whose tables hold rows keeps its path, ddl.c)
for my $db ('a', 'b')
{
	$node->safe_psql($db, 'DELETE FROM t');
	$node->safe_psql($db, "ALTER SERVER almanac_store OPTIONS (ADD path 'almanac/shared')");
}
$node->safe_psql('a', q{INSERT INTO t VALUES (7, 'shared')});
is($node->safe_psql('b', 'SELECT v FROM t WHERE k = 7'), 'shared',
	'servers pointed at one path by a superuser share its rows');

$node->stop;
done_testing();
