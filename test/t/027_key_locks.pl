# Key locks (src/kv/keylock.h) under load.
#
# 1. The issue's contended counter: N sessions x 1000 increments of one
#    foreign row in READ COMMITTED, without retries (pgbench's default
#    --max-tries=1), end at exactly N x 1000 with no error: each writer
#    waits for the key's lock and then adds to the newest committed row.
#    Before key locks, most of them failed with 40001.
# 2. A large write does not exhaust the lock table: past
#    almanac.key_lock_limit keys a transaction locks the column family
#    instead.  The same INSERT with the limit out of reach runs out of
#    shared memory for locks (53200).
# 3. Weaker key locks of a key the transaction holds in a stronger mode
#    take no lock-table entry of their own.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node run_pgbench pgbench_stat);

my $clients = 4;
my $per_client = 1000;

my $node = almanac_node('key_locks');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE counter (id int, v bigint)
		SERVER almanac_store OPTIONS (key_prefix 'ctr', key_columns 'id');
	INSERT INTO counter VALUES (1, 0);
	CREATE FOREIGN TABLE big (id int, pad text)
		SERVER almanac_store OPTIONS (key_prefix 'big', key_columns 'id');
});

# 1. the contended counter
my ($ret, $out, $err) = run_pgbench($node,
	{ incr => "UPDATE counter SET v = v + 1 WHERE id = 1;\n" },
	'-n', '-c', $clients, '-j', $clients, '-t', $per_client);
is($ret, 0, 'pgbench: every client finished without an error');
is(pgbench_stat($out, qr/number of transactions actually processed: (\d+)/),
	$clients * $per_client, 'pgbench: every increment committed');
is(pgbench_stat($out, qr/number of failed transactions: (\d+)/) // 0, 0,
	'pgbench: no transaction failed');
is($node->safe_psql('postgres', 'SELECT v FROM counter WHERE id = 1'),
	$clients * $per_client, "$clients sessions x $per_client increments end at exactly "
	  . $clients * $per_client);

# the key and column family locks the session holds, by mode
my $held_locks = q{
	SELECT string_agg(objsubid || ' ' || mode || ' ' || n, ', ' ORDER BY objsubid, mode)
	  FROM (SELECT objsubid, mode, count(*) AS n FROM pg_locks
			 WHERE locktype = 'advisory' AND objsubid IN (161, 162) AND pid = pg_backend_pid()
			 GROUP BY 1, 2) l;
};

# 2. escalation: a 100,000-row INSERT, row by row
my $locks = $node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO big SELECT g, 'x' FROM generate_series(1, 100000) g;
} . $held_locks . 'COMMIT;');
is($locks, '161 AccessExclusiveLock 256, 162 ExclusiveLock 1, 162 RowExclusiveLock 1',
	'100,000 keys written under almanac.key_lock_limit 256 hold 256 key locks and the column family lock');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big'), 100000, 'the rows are there');

my ($rc, $stdout, $stderr) = $node->psql('postgres', q{
	SET almanac.key_lock_limit = 2147483647;
	INSERT INTO big SELECT g, 'y' FROM generate_series(100001, 200000) g;
});
like($stderr, qr/out of shared memory/,
	'without escalation the same write exhausts the lock table');

# 3. one lock-table entry a key whatever strengths the transaction asked
# for: an UPDATE that sets the key column locks in FOR UPDATE's strength
# as it reads (plan.c scan_lock), then each row that keeps its key asks
# for FOR NO KEY UPDATE's (modify.c row_target), and FOR KEY SHARE of the
# rows written asks for the weakest; the strongest held covers the others
# (kv/keylock.c), so they count once toward almanac.key_lock_limit
$locks = $node->safe_psql('postgres', q{
	BEGIN;
	UPDATE big SET id = id, pad = 'z' WHERE id BETWEEN 1 AND 3;
	SELECT count(*) FROM (SELECT 1 FROM big WHERE id BETWEEN 1 AND 3 FOR KEY SHARE) r;
	SELECT count(*) FROM (SELECT 1 FROM big WHERE id BETWEEN 1 AND 3 FOR NO KEY UPDATE) r;
} . $held_locks . 'COMMIT;');
is($locks, "3\n3\n161 AccessExclusiveLock 3, 162 RowExclusiveLock 1",
	'an UPDATE of the key column keeping the keys, then FOR KEY SHARE and FOR NO KEY UPDATE of its rows, hold one key lock a row');

$node->stop;
done_testing();
