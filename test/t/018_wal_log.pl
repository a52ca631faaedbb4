# PostgreSQL's WAL as the one log (docs/write-path.md): the store owner
# writes batches without syncing RocksDB, each backend logs its batch in
# PostgreSQL's WAL before its commit record, and the owner replays what the
# store lost at its start, from the durable point its replication slot holds
# the WAL from.
#
# 1. The owner's replication slot exists and is the owner's.
# 2. Replay: with the fault point owner_skip_wal armed, the owner writes
#    without RocksDB's log, so a SIGKILL of the owner loses those writes as
#    an operating-system crash loses unsynced ones.  Committed inserts,
#    updates, a delete, a prepared transaction and a rolled-back one whose
#    batch was shipped early: after the restart every committed write is
#    back, the rolled-back one stays invisible, and COMMIT PREPARED settles
#    the prepared one.  Without the replay the committed rows are lost.
#    (Each key is written once while the point is armed: readers follow
#    RocksDB's log, so they do not see what the owner writes without it.)
# 3. The xid-reuse hazard: the postmaster is killed after the owner wrote a
#    batch and before the commit record (fault point before_commit_record),
#    with the WAL writer asleep, so nothing but the owner flushed the
#    transaction's WAL.  After the restart new transactions commit past the
#    killed transaction's xid; its rows (surviving in RocksDB: the owner's
#    write reached the operating system) never become visible.  The owner
#    does not flush the WAL before its write: the batch's apply journal
#    entry survives with it, and the owner's start finds no batch message
#    of it in the WAL and removes its versions (an orphan).  Without that,
#    recovery hands the xid out again and the orphaned row appears once
#    that transaction commits.
# 4. A dropped database's store takes its replication slot with it.
# 5. wal_level = minimal: no slot, the owner syncs every commit, as before.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use AlmanacTest qw(almanac_node start_after_crash);

my $node = almanac_node('wal_log',
	"max_prepared_transactions = 5\nwal_writer_delay = 10s\nalmanac.reader_cleanup_interval = 1\n");
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'w', key_columns 'id');
	CREATE TABLE heap (id int PRIMARY KEY);
	CREATE TABLE other (id int);
	INSERT INTO kv VALUES (0, '0'), (1, 'one'), (2, 'two');
});

# 1. the slot
is( $node->safe_psql('postgres',
		"SELECT slot_type || ' ' || active FROM pg_replication_slots WHERE slot_name LIKE 'almanac\\_%'"),
	'physical true', 'the store owner holds a physical replication slot');

sub kill_owner
{
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'almanac store owner'");
	kill 'KILL', $pid;
	# a killed owner ends the server (restart_after_crash is off in tests)
	for (my $i = 0; $i < 100 && -e $node->data_dir . '/postmaster.pid'; $i++) { usleep(100_000); }
	delete $node->{_pid};
	return start_after_crash($node);
}

sub rows { return $node->safe_psql('postgres', 'SELECT id, v FROM kv ORDER BY id') }

# 2. replay
$node->safe_psql('postgres', "ALTER SYSTEM SET almanac.fault_point = 'owner_skip_wal'; SELECT pg_reload_conf();");
# the owner reloads its configuration when its latch is set
sleep(1);
$node->safe_psql('postgres', 'SELECT count(*) FROM kv');
$node->safe_psql('postgres', $_) for (
	"BEGIN; INSERT INTO kv VALUES (10, 'ten'); INSERT INTO heap VALUES (10); COMMIT;",
	"UPDATE kv SET v = v || '+1' WHERE id = 0",
	"BEGIN; UPDATE kv SET v = v || '+2' WHERE id = 1; INSERT INTO heap VALUES (1); COMMIT;",
	"DELETE FROM kv WHERE id = 2",
	"BEGIN; INSERT INTO kv VALUES (11, 'prepared'); PREPARE TRANSACTION 'w1';",
	# shipped early (past write_batch_size), then rolled back
	"BEGIN; SET LOCAL almanac.write_batch_size = 64; "
	  . "INSERT INTO kv SELECT g, repeat('x', 1000) FROM generate_series(1000, 1200) g; ROLLBACK;");
ok(kill_owner(), 'replay: restarted after the owner was killed');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET almanac.fault_point; SELECT pg_reload_conf();');
is(rows(), "0|0+1\n1|one+2\n10|ten", 'replay: every committed write is back');
ok($node->log_contains(qr/almanac: store "[^"]*": replayed [1-9]\d* batches from the WAL/),
	'replay: the owner says it replayed batches');
is($node->safe_psql('postgres', 'SELECT count(*) FROM heap WHERE id IN (1, 10)'), '2', 'replay: with the heap rows');
$node->safe_psql('postgres', "COMMIT PREPARED 'w1'");
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE id = 11'), 'prepared',
	'replay: COMMIT PREPARED after the restart settles the prepared transaction');
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv WHERE id >= 1000'), '0',
	'replay: the rolled-back transaction stays invisible');
# and once more: a second restart replays nothing twice
$node->restart;
is(rows(), "0|0+1\n1|one+2\n10|ten\n11|prepared", 'replay: the same rows after a clean restart');

# 3. the xid-reuse hazard
my $offset = -s $node->logfile;
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-c',
	  "SET almanac.fault_point = 'before_commit_record'; BEGIN; INSERT INTO kv VALUES (500, 'orphan'); INSERT INTO heap VALUES (500); COMMIT;" ],
	'>', \$out, '2>', \$err);
$node->wait_for_log(qr/almanac: fault point "before_commit_record" reached/, $offset);
my $xid = $node->safe_psql('postgres',
	"SELECT backend_xid FROM pg_stat_activity WHERE query LIKE '%orphan%' AND pid <> pg_backend_pid()");
ok($xid > 0, "xid reuse: the stopped transaction has xid $xid");
$node->kill9;
$h->finish;
ok(start_after_crash($node), 'xid reuse: restarted after the postmaster was killed');
my $next = 0;
for (my $i = 0; $i < 100 && $next <= $xid + 2; $i++)
{
	$next = $node->safe_psql('postgres', 'BEGIN; INSERT INTO other VALUES (1); SELECT txid_current(); COMMIT;');
}
cmp_ok($next, '>', $xid + 2, 'xid reuse: new transactions committed past the old xid');
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv WHERE id = 500'), '0',
	'xid reuse: the killed transaction\'s foreign row never appears');
ok($node->log_contains(qr/apply journal entries, 1 of them orphans whose versions were removed/, $offset),
	'xid reuse: the owner\'s start removed the orphan\'s versions');
is($node->safe_psql('postgres', 'SELECT count(*) FROM heap WHERE id = 500'), '0',
	'xid reuse: nor its heap row');

# 4. a dropped database's store drops its slot
$node->safe_psql('postgres', 'CREATE DATABASE gone');
$node->safe_psql('gone', q{
	CREATE EXTENSION almanac;
	CREATE FOREIGN TABLE t (id int) SERVER almanac_store OPTIONS (key_prefix 't', key_columns 'id');
	INSERT INTO t VALUES (1);
});
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'almanac\\_%'"),
	'2', 'each store has its slot');
$node->safe_psql('postgres', 'DROP DATABASE gone');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name LIKE 'almanac\\_%'"),
	'the slot of a dropped database\'s store is dropped with it');
$node->stop;

# 5. no slot: synced mode
my $plain = almanac_node('wal_log_minimal', "wal_level = minimal\nmax_wal_senders = 0\n");
$plain->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'w', key_columns 'id');
	INSERT INTO kv VALUES (1, 'one');
});
ok($plain->log_contains(qr/almanac: store "[^"]*" syncs every commit/),
	'wal_level = minimal: the owner says it syncs every commit');
my ($batches, $syncs) = split /\|/, $plain->safe_psql('postgres', 'SELECT batches, wal_syncs FROM almanac.commit_stats()');
cmp_ok($syncs, '>=', 1, 'wal_level = minimal: commits are synced');
$plain->kill9;
ok(start_after_crash($plain), 'wal_level = minimal: restarted after a crash');
is($plain->safe_psql('postgres', 'SELECT v FROM kv'), 'one', 'wal_level = minimal: the commit is there');
$plain->stop;

done_testing();
