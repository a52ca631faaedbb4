# A store's owner starts when the WAL's insert position sits at a page
# boundary.  There GetXLogInsertRecPtr() names the position just past the
# next page's header, where no record has reached yet, and the owner's
# XLogFlush of it failed: "xlog flush request ... is not satisfied", so the
# store could not be opened (seen in test/t/009_databases.pl in a clean-clone
# CI run).  pg_switch_wal() puts the insert position at a segment's start;
# the first read of a fresh database's store then starts its owner there.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

# no background WAL between the switch and the owner's start
my $node = almanac_node('wal_boundary',
	"autovacuum = off\ncheckpoint_timeout = 1h\nbgwriter_delay = 10s\nlog_min_messages = debug1\n");

for my $round (1 .. 2)
{
	my $db = "b$round";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
		CREATE EXTENSION almanac;
		CREATE FOREIGN TABLE kv (id int, v text)
			SERVER almanac_store OPTIONS (key_prefix 'w', key_columns 'id');
	});
	# the store's owner is not running yet: nothing has read or written it
	my ($ret, $out, $err) = $node->psql($db, q{
		SELECT pg_switch_wal() IS NOT NULL AS switched \gset
		SELECT count(*) FROM kv;
	});
	is($ret, 0, "round $round: the store opens with the WAL at a segment's start")
	  or diag $err;
	is($node->safe_psql($db, q{INSERT INTO kv VALUES (1, 'x'); SELECT v FROM kv WHERE id = 1}), 'x',
		"round $round: and takes a write");
}
$node->stop;
done_testing();
