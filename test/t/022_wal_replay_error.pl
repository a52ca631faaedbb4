# A replay that fails at the owner's start (docs/write-path.md) says what
# failed with its SQLSTATE and what to do: a damaged batch message is
# data_corrupted (XX001, was an internal error, XX000), the owner's log line
# hints at the way out (restore, or drop the slot to open the store as it
# is), and the backend's error points to that log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('wal_replay_error', "log_error_verbosity = verbose\n");
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'w', key_columns 'id');
	INSERT INTO kv VALUES (1, 'one');
});
my $slot = $node->safe_psql('postgres',
	"SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'almanac%'");
sleep(2);    # the write's durable point is recorded; none follows without store writes

# a transactional 'almanac' message of an unknown format after the durable point
$node->safe_psql('postgres',
	"SELECT pg_logical_emit_message(true, 'almanac', '\\x09'::bytea || decode(repeat('00', 40), 'hex'))");
$node->stop('immediate');
$node->start;
my ($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM kv');
like($err, qr/unknown format \(9\)/, 'the store does not open, naming the damaged message');
like($err, qr/HINT:  The server log gives the store owner's reason/, 'the backend points to the log');
ok($node->log_contains(qr/LOG:  XX001: almanac: could not replay the WAL into store/),
	'the owner logs the failure as data_corrupted');
ok($node->log_contains(qr/HINT:  The store does not open until this is fixed: .*pg_drop_replication_slot\('\Q$slot\E'\)/),
	'with a hint naming the slot to drop');
$node->safe_psql('postgres', "SELECT pg_drop_replication_slot('$slot')");
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE id = 1'), 'one',
	'without the slot the store opens as it is');
$node->stop;

# A batch message of the right format whose APPLY payload is truncated (an
# entry's key runs past its end): data_corrupted too (was XX000, an
# internal error, from the payload's iterator, store/payload.h).
my $node2 = almanac_node('wal_replay_truncated', "log_error_verbosity = verbose\n");
$node2->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'w', key_columns 'id');
	INSERT INTO kv VALUES (1, 'one');
});
my ($path) = slurp_file($node2->logfile) =~ /almanac: store owner ready for "([^"]+)"/;
ok(defined $path, 'the store\'s path, from the owner\'s log');
sleep(2);    # the durable point
# format 1, the first owner's incarnation (1), a sequence number past any the
# store holds, the path, then an entry whose 16-byte key has 2 bytes
my $message = sprintf('01%016x%016x%04x', 1, 1 << 40, length($path))
  . unpack('H*', $path) . '000000106162';
$node2->safe_psql('postgres',
	"SELECT pg_logical_emit_message(true, 'almanac', '\\x$message'::bytea)");
$node2->stop('immediate');
$node2->start;
($rc, $out, $err) = $node2->psql('postgres', 'SELECT count(*) FROM kv');
isnt($rc, 0, 'the store does not open');
ok($node2->log_contains(qr/LOG:  XX001: almanac: could not replay the WAL into store.*truncated write batch/),
	'the owner logs the truncated payload as data_corrupted')
  or diag(join("\n", grep { /could not replay/ } split /\n/, slurp_file($node2->logfile)));
$node2->stop;
done_testing();
