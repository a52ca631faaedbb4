# CREATE EXTENSION almanac in a server that did not preload the library fails
# with an error naming the setting to add, and leaves nothing behind; once the
# library is preloaded the same command succeeds, and the server's limit on
# open files is raised.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;

my ($ret, $stdout, $stderr) = $node->psql('postgres', 'CREATE EXTENSION almanac');
isnt($ret, 0, 'CREATE EXTENSION fails without preload');
like($stderr, qr/almanac must be loaded via shared_preload_libraries/, 'error says why');
like($stderr, qr/HINT:.*shared_preload_libraries = 'almanac'/, 'hint names the setting to add');

($ret, $stdout, $stderr) = $node->psql('postgres', "\\set VERBOSITY verbose\nCREATE EXTENSION almanac");
like($stderr, qr/ERROR:\s+55000/, 'SQLSTATE is object_not_in_prerequisite_state');

is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_namespace WHERE nspname = 'almanac'"), '0',
	'the failed CREATE EXTENSION left no schema behind');

$node->append_conf('postgresql.conf', "shared_preload_libraries = 'almanac'");
$node->restart;
$node->safe_psql('postgres', 'CREATE EXTENSION almanac');
is($node->safe_psql('postgres',
	"SELECT extversion FROM pg_extension WHERE extname = 'almanac'"), '0.1.0',
	'CREATE EXTENSION succeeds once preloaded');

# a backend's reader keeps every SST file of a store open: the postmaster
# raised its soft limit on open files to the hard one for every process
my $pid = $node->safe_psql('postgres', 'SELECT pg_backend_pid()');
my ($soft, $hard);
SKIP:
{
	my $fh;
	skip "no /proc/$pid/limits: $!", 1 unless open($fh, '<', "/proc/$pid/limits");
	while (<$fh>)
	{
		($soft, $hard) = ($1, $2) if /^Max open files\s+(\S+)\s+(\S+)/;
	}
	close $fh;
	is($soft, $hard, "a backend's soft limit on open files is the hard one ($hard)");
}

$node->stop;
done_testing();
