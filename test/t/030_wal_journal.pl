# The apply journal at the owner's start (store/owner.c, (b); docs/write-path.md).
#
# Each batch the owner writes also writes a journal entry, kept until the
# requester's WAL (which carries the batch's xids) is durable.  At the next
# start, an entry of an earlier server lifetime whose batch message is not in
# the WAL from the durable point is an orphan: its versions are removed.
#  1. Entries whose message is durable are kept, not orphans: a transaction
#     killed after its commit record, and one prepared just before the kill.
#  2. A subtransaction's write is removed with its top transaction's orphan.
#  3. With no WAL to look in (the slot dropped by hand, as the hints of an
#     invalidated slot and of a failed replay say), every entry of an earlier
#     lifetime counts as an orphan: before, the entries were dropped and their
#     versions kept, and the orphan's row appeared once its xid was handed out
#     again and committed.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node start_after_crash);

my $node = almanac_node('wal_journal', "max_prepared_transactions = 5\nwal_writer_delay = 10s\n");
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'w', key_columns 'id');
	CREATE TABLE heap (id int PRIMARY KEY);
	CREATE TABLE other (id int);
	INSERT INTO kv VALUES (0, '0');
});
# the next durable point (once a second) deletes the set-up's entry
sleep(2);

# run $sql in a session stopped at fault point $point; returns the handle
sub stopped_at
{
	my ($point, $sql) = @_;
	my $offset = -s $node->logfile;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-c',
		  "SET almanac.fault_point = '$point'; $sql" ],
		'>', \$out, '2>', \$err);
	ok($node->wait_for_log(qr/almanac: fault point "$point" reached/, $offset),
		"a session stopped at $point");
	return $h;
}

# hand out xids until $xid is passed, each in a committed transaction
sub pass_xid
{
	my ($xid) = @_;
	my $next = 0;
	for (my $i = 0; $i < 100 && $next <= $xid + 2; $i++)
	{
		$next = $node->safe_psql('postgres',
			'BEGIN; INSERT INTO other VALUES (1); SELECT txid_current(); COMMIT;');
	}
	cmp_ok($next, '>', $xid + 2, "xid $xid handed out again, to committed transactions");
}

# --- 1. entries whose message is durable ------------------------------------
my $offset = -s $node->logfile;
my $h = stopped_at('after_commit_record',
	"BEGIN; INSERT INTO kv VALUES (100, 'committed'); INSERT INTO heap VALUES (100); COMMIT;");
$node->safe_psql('postgres', "BEGIN; INSERT INTO kv VALUES (200, 'prepared'); PREPARE TRANSACTION 'p1';");
$node->kill9;
$h->finish;
ok(start_after_crash($node), 'restarted after the crash');
is($node->safe_psql('postgres', 'SELECT count(*) FROM heap WHERE id = 100'), '1',
	'the transaction killed after its commit record has its heap row');
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE id = 100'), 'committed', 'and its foreign row');
$node->safe_psql('postgres', "COMMIT PREPARED 'p1'");
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE id = 200'), 'prepared',
	'the prepared transaction commits its foreign row after the restart');
ok($node->log_contains(qr/2 apply journal entries, 0 of them orphans/, $offset),
	'the start found two journal entries and no orphan');

# --- 2. a subtransaction's write ---------------------------------------------
$offset = -s $node->logfile;
$h = stopped_at('before_commit_record',
	"BEGIN; INSERT INTO kv VALUES (600, 'top'); SAVEPOINT s; INSERT INTO kv VALUES (601, 'sub'); RELEASE s; INSERT INTO heap VALUES (600); COMMIT;");
my $xid = $node->safe_psql('postgres', 'SELECT txid_current()');
$node->kill9;
$h->finish;
ok(start_after_crash($node), 'restarted after the second crash');
pass_xid($xid);
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv WHERE id IN (600, 601)'), '0',
	'neither the top transaction\'s nor the subtransaction\'s foreign row appears');
ok($node->log_contains(qr/1 apply journal entries, 1 of them orphans/, $offset),
	'the start removed one orphan');

# --- 3. no WAL to look in -----------------------------------------------------
$offset = -s $node->logfile;
$h = stopped_at('before_commit_record',
	"BEGIN; INSERT INTO kv VALUES (500, 'orphan'); INSERT INTO heap VALUES (500); COMMIT;");
$xid = $node->safe_psql('postgres',
	"SELECT backend_xid FROM pg_stat_activity WHERE query LIKE '%orphan%' AND pid <> pg_backend_pid()");
$node->kill9;
$h->finish;
ok(start_after_crash($node), 'restarted after the third crash');
# before the store is used again
$node->safe_psql('postgres',
	"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'almanac\\_%'");
pass_xid($xid);
is($node->safe_psql('postgres', 'SELECT count(*) FROM heap WHERE id = 500'), '0', 'the killed transaction has no heap row');
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv WHERE id = 500'), '0',
	'and, with its store\'s slot dropped, no foreign row either');
ok($node->log_contains(qr/with no WAL to look in, every entry of an earlier server lifetime counts as an orphan/i, $offset),
	'the start said why it removed the entry\'s versions');
is($node->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM kv'), '0,100,200',
	'the committed rows are all there');
$node->stop;
done_testing();
