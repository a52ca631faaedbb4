# almanac.drop_column_family() while other backends read and write the
# store: nobody crashes, readers never see the dropped data, writers racing a
# drop fail with a clear error, and the column family is created again on
# the next write.  The tables live in another database than the one that
# drops (a drop is refused while a table of the current database uses the
# column family), both on one store: each database has a store of its own
# unless a superuser points their servers at one path, as here.
#
# Before the owner reopened the store after a drop, RocksDB 7.8 secondaries
# crashed catching up once a flushed column family had been dropped and
# created again; a reader reopening on a stale list of column families could
# also start a second owner for the same store.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('admin_drop');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'almanac'");
$node->start;

for my $db ('dropper', 'app')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION almanac');
	$node->safe_psql($db, "ALTER SERVER almanac_store OPTIONS (ADD path 'almanac/shared')");
}
$node->safe_psql('app', q{
	CREATE FOREIGN TABLE t (k int, v int) SERVER almanac_store
		OPTIONS (column_family 'x', key_prefix 'x', key_columns 'k');
	CREATE FOREIGN TABLE u (k int, v int) SERVER almanac_store
		OPTIONS (column_family 'y', key_prefix 'y', key_columns 'k');
	INSERT INTO t VALUES (0, 0);
	INSERT INTO u VALUES (0, 0);
});

# A dropped column family that had SST files, created again under its name,
# then written and read by a backend that opened the store after that.
$node->safe_psql('dropper',
	"SELECT almanac.flush('x'); SELECT almanac.drop_column_family('x')");
is($node->safe_psql('app', 'SELECT count(*) FROM t'), '0',
	'the dropped rows are gone');
is( $node->safe_psql(
		'app', q{
	INSERT INTO t VALUES (1, 1);
	INSERT INTO t VALUES (2, 2);
	INSERT INTO u VALUES (1, 1);
	SELECT count(*) FROM t;
}), '2', 'a column family dropped after a flush is created again by the next write');

# Concurrently: a reader, a writer, and a session that flushes and drops x
# over and over.
my $rounds = 40;
my $dir = PostgreSQL::Test::Utils::tempdir;
my (@reader, @writer);
for my $i (1 .. 4 * $rounds)
{
	push @reader, "SELECT count(*) FROM t; SELECT v FROM u WHERE k = 0;";
	push @writer,
	  "INSERT INTO t VALUES ($i + 100, $i); INSERT INTO u VALUES ($i + 100, $i);";
}
PostgreSQL::Test::Utils::append_to_file("$dir/reader.sql", join("\n", @reader) . "\n");
PostgreSQL::Test::Utils::append_to_file("$dir/writer.sql", join("\n", @writer) . "\n");

my %out;
my @runs;
for my $who ('reader', 'writer')
{
	push @runs,
	  IPC::Run::start(
		[ 'psql', '-X', '-q', '-d', $node->connstr('app'), '-f', "$dir/$who.sql" ],
		'>', \$out{$who}, '2>', \$out{"${who}_err"});
}
# drops that found x (the writer creates it again), paced over the others' run
my ($ret, $dropper_out, $dropper_err) = $node->psql(
	'dropper', qq{
CREATE FUNCTION drop_loop(rounds int) RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE
	dropped int := 0;
BEGIN
	FOR i IN 1..rounds LOOP
		BEGIN
			IF i % 2 = 0 THEN
				PERFORM almanac.flush('x');
			END IF;
			PERFORM almanac.drop_column_family('x');
			dropped := dropped + 1;
		EXCEPTION WHEN undefined_object THEN
			NULL;		-- not created again yet
		END;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN dropped;
END
\$\$;
SELECT drop_loop($rounds) > 0;
});
$_->finish for @runs;

is($dropper_out, 't', 'the column family was dropped while in use');
is($dropper_err, '', 'without an unexpected error');
is($out{reader_err}, '', 'the reader never failed');
my @writer_errors = grep { /ERROR/ } split /\n/, $out{writer_err};
my @unexpected = grep {
	!/an almanac column family this transaction wrote to was dropped
	  |almanac\ column\ family\ with\ id\ \d+\ does\ not\ exist
	  |almanac\ column\ family\ "x"\ was\ dropped\ each\ time\ it\ was\ created
	  |the\ column\ family\ of\ (foreign\ )?table\ "t"\ was\ dropped/x
} @writer_errors;
note scalar(@writer_errors) . ' writes raced a drop';
is_deeply(\@unexpected, [], 'the writer failed only where a drop raced its write');
is( $node->safe_psql('app', 'SELECT count(*) FROM u WHERE k > 100'),
	4 * $rounds, 'every write to the other column family committed');

# the server never restarted: no backend crashed
is($node->safe_psql('app', 'SELECT count(*) FROM u WHERE k = 0'), '1', 'the server is up');
my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'no process crashed');
unlike($log, qr/could not open store/, 'no second owner was started for the store');

# and the column family works as before
$node->safe_psql('app', 'INSERT INTO t VALUES (9999, 1)');
is($node->safe_psql('app', 'SELECT v FROM t WHERE k = 9999'), '1',
	'the column family is written and read after the drops');

# Every drop reopens the store (owner_reopen), and every open renamed
# RocksDB's info log LOG.old.<time>, kept without bound (1000 by default):
# 40 and more after the drops above.  At most 10 info log files now
# (store/owner.c, build_options; docs/operations.md).
for my $i (1 .. 12)
{
	$node->safe_psql('app', "INSERT INTO t VALUES (20000 + $i, $i)");
	$node->safe_psql('dropper', "SELECT almanac.drop_column_family('x')");
}
$node->restart;
$node->safe_psql('app', 'SELECT count(*) FROM t');
my $store = $node->data_dir . '/almanac/shared';
opendir(my $dh, $store) or die "cannot list $store: $!";
my @old = grep { /^LOG\.old\./ } readdir($dh);
closedir($dh);
note scalar(@old) . ' LOG.old files after the drops and a restart';
ok(-f "$store/LOG", 'the store has its info log');
cmp_ok(scalar(@old), '<=', 9, 'and at most 9 older ones: the info log files stay within 10');

$node->stop;
done_testing();
