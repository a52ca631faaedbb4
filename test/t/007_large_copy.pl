# Large writes in chunks.  With almanac.write_batch_size at its minimum
# (64kB), a transaction's buffered writes go to the store owner in chunks
# long before COMMIT.  Checked here:
#
#  (a) one COPY FROM STDIN of 300,000 rows in one transaction, and one
#      INSERT ... SELECT of as many: the backend's private memory, sampled
#      while the statement runs, stays bounded;
#  (b) after COMMIT every row is there, exact count and sum;
#  (c) a transaction that shipped several chunks (another session's INSERT
#      of one of its keys now conflicts) and then ROLLBACKs leaves nothing;
#  (d) a transaction that shipped chunks and then fails, on a duplicate key
#      in a statement or at COMMIT, leaves nothing;
#  (e) ROLLBACK TO SAVEPOINT after chunks of the subtransaction were shipped
#      undoes exactly them, and their keys can be written again;
#  (f) a cursor reading the transaction's buffered rows stays valid while
#      later statements would ship them (they are shipped once it is closed;
#      clearing the batch under the cursor's iterator crashed the backend);
#  (g) the same COPY by SST files (almanac.bulk_copy, on by default; (a) to
#      (f) test the per-row path): bounded memory, every row after COMMIT,
#      nothing after a crash before COMMIT, and the keys of that crashed load
#      can be loaded again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use AlmanacTest qw(almanac_node backend_memory);

my $started = time;
my $rows = 300_000;

my $node = almanac_node('large_copy');
# a store that flushes every 4MB, so that what the backend's secondary
# replays of the chunks (see 006_memory.pl) stays small next to what the
# backend would hold without chunks
$node->safe_psql('postgres', q{
	CREATE SERVER bulk FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (
		path 'almanac/bulk', max_total_wal_size '4MB');
	CREATE FOREIGN TABLE big (k bigint, v bigint, pad text)
		SERVER bulk OPTIONS (key_prefix 'big', key_columns 'k');
	INSERT INTO big VALUES (0, 0, 'seed');
});
is($node->safe_psql('postgres', "SELECT setting FROM pg_settings WHERE name = 'almanac.write_batch_size'"),
	'16384', 'almanac.write_batch_size defaults to 16MB');
my ($ret, $out, $err) = $node->psql('postgres', 'SET almanac.write_batch_size = 63');
like($err, qr/63 kB is outside the valid range.*\(64 \.\. /, 'and cannot be set below 64kB');

my $s = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $s->query_safe('SELECT pg_backend_pid()');
# the secondary is open and the statement planned before the baseline
$s->query_safe('SELECT count(*) FROM big');
$s->query_safe('SET almanac.write_batch_size = 64');
# (a) to (f): the per-row path, in chunks
$s->query_safe('SET almanac.bulk_copy = off');

# run one statement (ending in ";", or a COPY with its data) in the session,
# sampling the backend's private memory until it answers; returns (output,
# stderr, peak kB)
sub run_sampled
{
	my ($psql, $sql) = @_;
	my $banner = 'sampled statement done';
	my $peak = 0;
	$psql->{stdout} = '';
	$psql->{stderr} = '';
	$psql->{stdin} .= "$sql\n\\echo '$banner'\n";
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while ($psql->{stdout} !~ /$banner/ && time < $deadline)
	{
		$psql->{run}->pump_nb;
		my $m = backend_memory($pid);
		$peak = $m->{private_dirty} if $m->{private_dirty} > $peak;
		usleep(20_000);
	}
	die "statement timed out: $sql" unless $psql->{stdout} =~ /$banner/;
	(my $o = $psql->{stdout}) =~ s/\n?$banner\n//;
	my $e = $psql->{stderr};
	$psql->{stdout} = '';
	$psql->{stderr} = '';
	return ($o, $e, $peak);
}

# a statement that may fail: (output, error message)
sub query_err
{
	my ($psql, $sql) = @_;
	my ($o) = $psql->query($sql);
	my $e = $psql->{stderr};
	$psql->{stderr} = '';
	return ($o, $e);
}

# --- (a), (b): one COPY of 300,000 rows -------------------------------------
my $data = join('', map { "$_\t$_\t" . ('x' x 40) . "\n" } 1 .. $rows);
my $base = backend_memory($pid)->{private_dirty};
$s->query_safe('BEGIN');
my ($o, $e, $peak) = run_sampled($s, "COPY big FROM STDIN;\n$data\\.");
is($e, '', "COPY of $rows rows in one transaction");
my ($o2, $e2, $peak2) = run_sampled($s, 'COMMIT;');
is($e2, '', 'and COMMIT');
$peak = $peak2 if $peak2 > $peak;
my $grew = $peak - $base;
note "COPY of $rows rows (about " . int(length($data) / 1048576) . " MB of input): private memory grew by at most $grew kB (sampled every 20 ms)";
# bound: the secondary's replay of unflushed chunks (2 x max_total_wal_size,
# see 006_memory.pl) and a few chunks in flight, against 186 MB measured
# for this COPY before statements shipped their own chunks
my $bound = 2 * 4096 + 16 * 1024;
cmp_ok($grew, '<=', $bound,
	"with almanac.write_batch_size = 64kB the backend never holds the whole COPY (growth <= $bound kB)");
undef $data;

# the same with INSERT ... SELECT, a second bulk statement in one transaction
$base = backend_memory($pid)->{private_dirty};
$s->query_safe('BEGIN');
$s->query_safe("INSERT INTO big VALUES (900000, 0, 'small first statement')");
($o, $e, $peak) = run_sampled($s,
	"INSERT INTO big SELECT g, g, repeat('y', 40) FROM generate_series(1000001, 1300000) g;");
is($e, '', "INSERT ... SELECT of $rows rows after a small statement");
($o, $e, $peak2) = run_sampled($s,
	"INSERT INTO big SELECT g, g, repeat('y', 40) FROM generate_series(1300001, 1600000) g;");
is($e, '', "and another $rows rows in the same transaction");
$peak = $peak2 if $peak2 > $peak;
$grew = $peak - $base;
note "INSERT ... SELECT of $rows rows, twice in one transaction: private memory grew by at most $grew kB";
cmp_ok($grew, '<=', $bound, "nor these (growth <= $bound kB)");
$s->query_safe('ROLLBACK');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE k >= 900000'), '0',
	'rolled back, they leave nothing');

is($node->safe_psql('postgres', 'SELECT count(*), sum(k), sum(v) FROM big WHERE k > 0'),
	"$rows|" . ($rows * ($rows + 1) / 2) . '|' . ($rows * ($rows + 1) / 2),
	'every copied row is there after COMMIT (count and sums)');

# --- (c): several chunks shipped, then ROLLBACK ------------------------------
$s->query_safe('BEGIN');
for my $i (0 .. 4)
{
	my $lo = 1_000_000 + $i * 20_000;
	$s->query_safe("INSERT INTO big SELECT g, g, 'rolled back' FROM generate_series($lo, $lo + 19999) g");
}
is($s->query_safe('SELECT count(*) FROM big WHERE k >= 1000000'), '100000',
	'the transaction reads its own shipped chunks');
# another writer of one of its keys waits for the transaction (key locks:
# past almanac.key_lock_limit keys, on the whole column family)
($ret, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '200ms'; INSERT INTO big VALUES (1000001, 0, 'other')");
like($err, qr/canceling statement due to lock timeout/,
	'another INSERT of one of their keys waits for the transaction');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE k >= 1000000'), '0',
	'other sessions see none of the uncommitted chunks');
$s->query_safe('ROLLBACK');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE k >= 1000000'), '0',
	'after ROLLBACK nothing of the shipped chunks is visible');
$node->safe_psql('postgres', "INSERT INTO big VALUES (1000001, 0, 'other')");
is($node->safe_psql('postgres', 'SELECT v, pad FROM big WHERE k = 1000001'), '0|other',
	'and their keys can be inserted by others');
$node->safe_psql('postgres', 'DELETE FROM big WHERE k = 1000001');

# --- (d): chunks shipped, then the transaction fails --------------------------
# a duplicate of a committed key in a later statement
$s->query_safe('BEGIN');
$s->query_safe("INSERT INTO big SELECT g, g, 'doomed' FROM generate_series(2000000, 2049999) g");
($o, $e) = query_err($s, "INSERT INTO big VALUES (2050000, 0, 'x'), (7, 0, 'duplicate')");
like($e, qr/duplicate key value violates the key of foreign table "big"/,
	'a duplicate of a committed key fails the transaction');
$s->query_safe('ROLLBACK');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE k >= 2000000'), '0',
	'its shipped chunk is invisible');
is($node->safe_psql('postgres', 'SELECT v, pad FROM big WHERE k = 7'), '7|' . ('x' x 40),
	'and the row it collided with is unchanged');

# a duplicate within one statement, in a chunk after the one holding the key
($ret, $out, $err) = $node->psql('postgres', q{
	SET almanac.write_batch_size = 64;
	INSERT INTO big SELECT g, g, 'doomed' FROM generate_series(2000000, 2049999) g
		UNION ALL SELECT 2000001, 0, 'duplicate';});
like($err, qr/duplicate key value violates the key of foreign table "big"/,
	'a statement repeating a key of a chunk it shipped fails (the key, read once locked, is in the chunk)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE k >= 2000000'), '0', 'and leaves nothing');

# a duplicate of a key the transaction shipped itself
$s->query_safe('BEGIN');
$s->query_safe("INSERT INTO big SELECT g, g, 'doomed' FROM generate_series(2000000, 2049999) g");
($o, $e) = query_err($s, "INSERT INTO big VALUES (2000123, 0, 'again')");
like($e, qr/duplicate key value violates the key of foreign table "big"/,
	'inserting again a key of an already shipped chunk is a duplicate');
$s->query_safe('ROLLBACK');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE k >= 2000000'), '0', 'nothing left');

# a failure at COMMIT: another session commits a key that the transaction
# has buffered but not shipped yet, by COPY's bulk path (the one write that
# takes no key lock: an INSERT would wait for the transaction); the owner
# refuses the last chunk
$s->query_safe('BEGIN');
$s->query_safe("INSERT INTO big SELECT g, g, 'doomed' FROM generate_series(3000000, 3049999) g");
$s->query_safe("INSERT INTO big VALUES (3100000, 0, 'last, small')");
$node->safe_psql('postgres',
	q{COPY big FROM PROGRAM $$printf '3100000\t1\tcommitted first\n'$$});
($o, $e) = query_err($s, 'COMMIT');
like($e, qr/duplicate key value violates the key of almanac column family "big"/,
	'COMMIT fails when the owner refuses the last chunk');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE k >= 3000000'), '1',
	'the chunks shipped before are invisible');
is($node->safe_psql('postgres', 'SELECT v, pad FROM big WHERE k = 3100000'), '1|committed first',
	'the other session\'s row stands');

# --- (e): ROLLBACK TO SAVEPOINT across shipped chunks --------------------------
$s->query_safe('BEGIN');
$s->query_safe("INSERT INTO big SELECT g, g, 'kept' FROM generate_series(4000000, 4029999) g");
$s->query_safe('SAVEPOINT s1');
$s->query_safe("INSERT INTO big SELECT g, g, 'undone' FROM generate_series(4030000, 4059999) g");
$s->query_safe("UPDATE big SET pad = 'undone too' WHERE k >= 4000000 AND k < 4000100");
$s->query_safe("INSERT INTO big SELECT g, g, 'undone' FROM generate_series(4060000, 4089999) g");
is($s->query_safe('SELECT count(*) FROM big WHERE k >= 4000000'), '90000', 'before ROLLBACK TO: all of it');
# another writer waits: the transaction locked the column family (past
# almanac.key_lock_limit keys) before the savepoint, so it keeps that lock
# after ROLLBACK TO
($ret, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '200ms'; INSERT INTO big VALUES (4089999, 0, 'other')");
like($err, qr/lock timeout/, 'another writer of the savepoint\'s keys waits');
$s->query_safe('ROLLBACK TO SAVEPOINT s1');
($ret, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '200ms'; INSERT INTO big VALUES (4089999, 0, 'other')");
like($err, qr/lock timeout/, 'and still after ROLLBACK TO (the escalated lock predates the savepoint)');
is($s->query_safe("SELECT count(*), count(*) FILTER (WHERE pad = 'kept') FROM big WHERE k >= 4000000"),
	'30000|30000', 'after ROLLBACK TO: the transaction sees only what it wrote before the savepoint');
# the undone keys are free again, in the same transaction
$s->query_safe("INSERT INTO big SELECT g, -g, 'rewritten' FROM generate_series(4030000, 4039999) g");
is($s->query_safe('SELECT count(*) FROM big WHERE k >= 4000000'), '40000', 'and writes the undone keys again');
$s->query_safe('COMMIT');
is($node->safe_psql('postgres',
	"SELECT count(*), count(*) FILTER (WHERE pad = 'kept'), count(*) FILTER (WHERE pad = 'rewritten' AND v = -k) FROM big WHERE k >= 4000000"),
	'40000|30000|10000', 'after COMMIT exactly the rows outside the rolled back savepoint');

# an error inside a savepoint after its chunk was shipped, then the transaction goes on
$s->query_safe('BEGIN');
$s->query_safe('SAVEPOINT s2');
$s->query_safe("INSERT INTO big SELECT g, g, 'undone' FROM generate_series(5000000, 5029999) g");
($o, $e) = query_err($s, "INSERT INTO big VALUES (7, 0, 'duplicate')");
like($e, qr/duplicate key/, 'an error after a shipped chunk inside a savepoint');
$s->query_safe('ROLLBACK TO SAVEPOINT s2');
$s->query_safe("INSERT INTO big VALUES (5000001, 1, 'after the error')");
$s->query_safe('COMMIT');
is($node->safe_psql('postgres', 'SELECT count(*), min(pad) FROM big WHERE k >= 5000000'),
	'1|after the error', 'ROLLBACK TO undoes the shipped chunk, the transaction commits the rest');

# --- (f): a cursor over buffered rows while a later statement would ship them
$s->query_safe('BEGIN');
$s->query_safe("INSERT INTO big SELECT g, g, 'under a cursor' FROM generate_series(6000000, 6000099) g");
$s->query_safe('DECLARE c CURSOR FOR SELECT k FROM big WHERE k >= 6000000');
is($s->query_safe('FETCH 10 FROM c'), join("\n", 6000000 .. 6000009), 'a cursor reads buffered rows');
# 30,000 rows: the batch passes 64kB at the end of this statement
$s->query_safe("INSERT INTO big SELECT g, g, 'more' FROM generate_series(6100000, 6129999) g");
is($s->query_safe('FETCH 90 FROM c'), join("\n", 6000010 .. 6000099),
	'the cursor reads on after a statement that would have shipped its batch');
# the scan reads a copy of the transaction's writes taken when it opened:
# the batch could be shipped under it, and the cursor does not see later rows
is($s->query_safe('FETCH ALL FROM c'), '', 'the cursor does not see rows written after it opened');
($ret, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '200ms'; INSERT INTO big VALUES (6100001, 0, 'other')");
like($err, qr/lock timeout/, 'another session waits for one of its keys');
$s->query_safe('CLOSE c');
is($s->query_safe('SELECT count(*) FROM big WHERE k >= 6000000'), '30100',
	'after the cursor the transaction sees all it wrote');
$s->query_safe('ROLLBACK');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE k >= 6000000'), '0',
	'the transaction left nothing');

is($node->safe_psql('postgres', 'SELECT count(*) FROM big'), 1 + $rows + 1 + 40000 + 1,
	'the table holds exactly the committed rows');

# --- (g): the COPY by SST files ------------------------------------------------
sub sst_files
{
	return $node->safe_psql('postgres', q{
		SELECT coalesce(sum(n), 0) FROM almanac.store_properties, unnest(sst_files_per_level) AS n
		WHERE server = 'bulk' AND column_family = 'big'});
}
sub bulk_rows
{
	my ($from) = @_;
	return join('', map { "$_\t$_\t" . ('z' x 40) . "\n" } $from + 1 .. $from + $rows);
}
my $sums = "$rows|" . ($rows * ($rows + 1) / 2 + $rows * 10_000_000);
$s->query_safe('RESET almanac.bulk_copy');
my $files = sst_files();
$data = bulk_rows(10_000_000);
$base = backend_memory($pid)->{private_dirty};
$s->query_safe('BEGIN');
($o, $e, $peak) = run_sampled($s, "COPY big FROM STDIN;\n$data\\.");
is($e, '', "a bulk COPY of $rows rows in one transaction");
$grew = $peak - $base;
note "bulk COPY of $rows rows: private memory grew by at most $grew kB";
cmp_ok($grew, '<=', $bound, "the bulk COPY holds no more than the per-row one (growth <= $bound kB)");
cmp_ok(sst_files() - $files, '>=', 2, 'it was loaded as SST files, in several chunks');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE k > 10000000'), '0',
	'other sessions see none of it before COMMIT');
is($s->query_safe('SELECT count(*), sum(k) FROM big WHERE k > 10000000'), $sums,
	'the transaction sees all of it');
$s->query_safe('COMMIT');
is($node->safe_psql('postgres', 'SELECT count(*), sum(k) FROM big WHERE k > 10000000'), $sums,
	'after COMMIT every row is there (count and sum)');
$s->quit;

# a crash before COMMIT: the ingested files hold versions of a transaction
# that never committed
$data = bulk_rows(20_000_000);
$s = $node->background_psql('postgres', on_error_stop => 0);
$pid = $s->query_safe('SELECT pg_backend_pid()');
$s->query_safe('BEGIN');
($o, $e) = run_sampled($s, "COPY big FROM STDIN;\n$data\\.");
is($e, '', 'another bulk COPY, not committed');
$node->stop('immediate');
$s->quit;
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE k > 20000000'), '0',
	'after a crash before COMMIT nothing of the bulk COPY is visible');
$files = sst_files();
($ret, $out, $err) = $node->psql('postgres', "COPY big FROM STDIN;\n$data\\.\n");
is($err, '', 'the same rows load again');
cmp_ok(sst_files() - $files, '>=', 2,
	'by SST files: their keys hold only versions of the crashed transaction');
is($node->safe_psql('postgres', 'SELECT count(*), sum(k) FROM big WHERE k > 20000000'),
	"$rows|" . ($rows * ($rows + 1) / 2 + $rows * 20_000_000), 'and are all there');

$node->stop;
note sprintf('runtime %.1f s', time - $started);
done_testing();
