# PREPARE TRANSACTION with foreign writes (src/kv/xact.c): the writes are
# made durable in the store at PREPARE, under the prepared transaction's id,
# which stays in progress until COMMIT PREPARED or ROLLBACK PREPARED settles
# it in the commit log; across a crash and restart in between too.  Before
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

# a crash between PREPARE and COMMIT PREPARED
$node->kill9;
ok(start_after_crash($node), 'the server restarts after the crash');
is(rows(), "1|0\n3|3", 'after a crash, prepared writes are still invisible');

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

$node->stop;
done_testing();
