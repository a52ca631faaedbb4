# PREPARE TRANSACTION with foreign writes (src/kv/xact.c): the writes are
# made durable in the store at PREPARE, under the prepared transaction's id,
# which stays in progress until COMMIT PREPARED or ROLLBACK PREPARED settles
# it in the commit log; across a crash and restart in between too.  The
# key locks move to the prepared transaction (pg_locks shows them without a
# pid) and other writers of those keys wait for it, after a crash too (the
# lock tag hashes the store's path, not its slot in shared memory).  Before
# this, PREPARE of a transaction that wrote a foreign table was refused
# (0A000).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node start_after_crash);

my $node = almanac_node('prepare', "max_prepared_transactions = 5\n");
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id int, v int)
		SERVER almanac_store OPTIONS (key_prefix 'p', key_columns 'id');
	CREATE TABLE heap (id int);
	INSERT INTO kv VALUES (1, 0), (3, 3);
});

sub rows { return $node->safe_psql('postgres', 'SELECT id, v FROM kv ORDER BY id') }

$node->safe_psql('postgres', q{
	BEGIN;
	UPDATE kv SET v = 1 WHERE id = 1;
	INSERT INTO kv VALUES (2, 2);
	INSERT INTO heap VALUES (1);
	PREPARE TRANSACTION 'p1';
	BEGIN;
	DELETE FROM kv WHERE id = 3;
	PREPARE TRANSACTION 'p2';
});
is(rows(), "1|0\n3|3", 'prepared writes are invisible');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 161 AND pid IS NULL"),
	3, 'the prepared transactions hold the key locks of their three keys');
my ($rc, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '100ms'; UPDATE kv SET v = 10 WHERE id = 1");
like($err, qr/lock timeout/, 'a writer of a prepared key waits for the prepared transaction');

# a crash between PREPARE and COMMIT PREPARED
$node->kill9;
ok(start_after_crash($node), 'the server restarts after the crash');
is(rows(), "1|0\n3|3", 'after a crash, prepared writes are still invisible');
($rc, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '100ms'; DELETE FROM kv WHERE id = 3");
like($err, qr/lock timeout/, 'after a crash, the prepared transaction still holds its key locks');

$node->safe_psql('postgres', "COMMIT PREPARED 'p1'");
is(rows(), "1|1\n2|2\n3|3", 'COMMIT PREPARED makes the writes visible');
is($node->safe_psql('postgres', 'SELECT count(*) FROM heap'), 1, 'with the heap write');
$node->safe_psql('postgres', "ROLLBACK PREPARED 'p2'");
is(rows(), "1|1\n2|2\n3|3", 'ROLLBACK PREPARED leaves the row it deleted');

# after a clean restart too
$node->safe_psql('postgres', q{
	BEGIN;
	UPDATE kv SET v = v + 100;
	PREPARE TRANSACTION 'p3';
});
$node->restart;
$node->safe_psql('postgres', "COMMIT PREPARED 'p3'");
is(rows(), "1|101\n2|102\n3|103", 'COMMIT PREPARED after a restart');
$node->safe_psql('postgres', "SET lock_timeout = '1s'; UPDATE kv SET v = 0 WHERE id = 1");
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE id = 1'), 0,
	'the keys are free once the prepared transaction is settled');

$node->stop;
done_testing();
