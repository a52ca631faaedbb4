# Reads during heavy flushing and compaction.  A store with the smallest
# write buffers flushes after every few transactions and compacts level 0
# all the time, deleting the files it merged.  Two pgbench writers rewrite
# the same 2,000 keys over and over (each transaction keeps the sum of v at
# zero and the row count at 2,000) while other sessions read: full scans and
# point lookups of every key, each checked for the exact count and sum; and a
# cursor opened before the writers start is read to the end only after
# compaction deleted the files it started on (secondaries keep every file
# open, max_open_files = -1, so they must stay readable).
#
# Before that, two checks on a store that flushes after every write
# (max_total_wal_size 16kB): a session whose secondary replayed a value from
# the WAL must see, by point lookup, the newer value once the owner flushed
# it (RocksDB 7.8 secondaries kept serving the replayed one, see
# src/store/owner.c, catch-up marker); and eight pgbench clients compare a
# foreign counter with a heap counter written in the same transactions (this
# also caught, once, a flush completing inside a catch-up, see
# src/kv/reader.c: a race, so a check that fails only sometimes when it
# breaks).
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use AlmanacTest qw(almanac_node run_pgbench pgbench_stat);

my $started = time;
my $nkeys = 2000;
my $writer_clients = 2;
my $writer_txns = 250;    # per client

my $node = almanac_node('compaction');

# --- a point lookup after a flush -------------------------------------------
my $flushy = $node->data_dir . '/almanac/flushy';
$node->safe_psql('postgres', q{
	CREATE SERVER flushy FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (
		path 'almanac/flushy', max_total_wal_size '16kB');
	CREATE FOREIGN TABLE counter (k bigint, v bigint, pad text)
		SERVER flushy OPTIONS (key_prefix 'counter', key_columns 'k');
	INSERT INTO counter VALUES (0, 0, 'x');
	CREATE TABLE heap_counter (n bigint);
	INSERT INTO heap_counter VALUES (0);
});
my $reader = $node->background_psql('postgres');
is($reader->query_safe('SELECT v FROM counter WHERE k = 0'), '0', 'a reader sees the first value');
# small: stays in the WAL, which the reader's secondary replays
$node->safe_psql('postgres', 'UPDATE counter SET v = 1 WHERE k = 0');
is($reader->query_safe('SELECT v FROM counter WHERE k = 0'), '1', 'and the next, from the WAL');
# over 16kB: the owner flushes; wait until the WAL file holding 1 is gone
my @wal = glob("$flushy/*.log");
$node->safe_psql('postgres', q{UPDATE counter SET v = 2, pad = repeat('y', 20000) WHERE k = 0});
my $waited = 0;
usleep(10_000), $waited++ while (grep { -e } @wal) && $waited < 100 * $PostgreSQL::Test::Utils::timeout_default;
ok(!(grep { -e } @wal), 'the owner flushed and removed the WAL file');
is($reader->query_safe('SELECT v FROM counter WHERE k = 0'), '2',
	'a point lookup in the same session sees the flushed value');
is($reader->query_safe('SELECT v FROM counter'), '2', 'so does a scan');
$reader->quit;

# --- eight clients compare a foreign and a heap counter ---------------------
$node->safe_psql('postgres', 'UPDATE counter SET v = 0, pad = NULL WHERE k = 0');
my ($ret, $out, $err) = run_pgbench($node, {
	'bump@1' => q{
BEGIN;
UPDATE counter SET v = v + 1, pad = repeat(md5(random()::text), 550) WHERE k = 0;
UPDATE heap_counter SET n = n + 1;
END;
},
	# one snapshot: both counters or neither
	'compare@4' => q{
SELECT CASE WHEN a = b THEN 1 ELSE ('foreign ' || a || ' heap ' || b)::int END
	FROM (SELECT (SELECT v FROM counter WHERE k = 0) a, (SELECT n FROM heap_counter) b) s;
},
	}, '-n', '-M', 'prepared', '-c', 8, '-j', 2, '-t', 300, '--max-tries=1000', '--random-seed=6');
is($ret, 0, 'the counter clients ran to the end');
unlike($err, qr/ERROR|aborted/, 'every reader saw the foreign counter equal to the heap counter');
my $bumps = $node->safe_psql('postgres', 'SELECT n FROM heap_counter');
is($node->safe_psql('postgres', 'SELECT v FROM counter WHERE k = 0'), $bumps,
	"and so does a new session ($bumps increments, each over 16kB, so each followed by a flush)");

# --- reads during compaction --------------------------------------------------
my $store = $node->data_dir . '/almanac/churn';
$node->safe_psql('postgres', qq{
	CREATE SERVER churn FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (
		path 'almanac/churn', write_buffer_size '64kB', max_write_buffer_number '2',
		min_write_buffer_number_to_merge '1', max_total_wal_size '256kB',
		compression 'none');
	CREATE FOREIGN TABLE kv (k bigint, v bigint, pad text)
		SERVER churn OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO kv SELECT g, 0, repeat('p', 100) FROM generate_series(0, $nkeys - 1) g;
	-- every key by point lookup, all in the caller's snapshot (STABLE), each
	-- compared with a scan of the same snapshot: a stale memtable can serve
	-- a whole transaction's older values, which keeps the sum at 0
	CREATE FUNCTION lookup_all() RETURNS text LANGUAGE plpgsql STABLE AS \$\$
	DECLARE
		r bigint;
		found_n bigint := 0;
		total numeric := 0;
		arr bigint[];
		diffs text := '';
	BEGIN
		SELECT array_agg(v ORDER BY k) INTO arr FROM kv;
		FOR i IN 0 .. $nkeys - 1 LOOP
			SELECT v INTO r FROM kv WHERE k = i;
			IF FOUND THEN
				found_n := found_n + 1;
				total := total + r;
			END IF;
			IF r IS DISTINCT FROM arr[i + 1] THEN
				diffs := diffs || format(' k%s: %s / %s', i, r, arr[i + 1]);
			END IF;
		END LOOP;
		RETURN found_n || '|' || total
			|| CASE WHEN diffs <> '' THEN ' (lookups differ from a scan:' || left(diffs, 300) || ')' ELSE '' END;
	END \$\$;
});
like($node->safe_psql('postgres', 'EXPLAIN SELECT v FROM kv WHERE k = 7'),
	qr/point lookup \(Get\)/, 'lookup_all reads with Gets');

# events in the owner's RocksDB log
sub store_events
{
	my %n = (flush => 0, compaction => 0, deletion => 0);
	open(my $fh, '<', "$store/LOG") or return \%n;
	while (<$fh>)
	{
		$n{flush}++ if /"event": "flush_finished"/;
		$n{compaction}++ if /"event": "compaction_finished"/;
		$n{deletion}++ if /"event": "table_file_deletion"/;
	}
	close $fh;
	return \%n;
}

my $expect = "$nkeys|0";

# a cursor over the whole table, opened on the files as they are now
my $cursor = $node->background_psql('postgres');
$cursor->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$cursor->query_safe('DECLARE c CURSOR FOR SELECT k, v FROM kv');
my $first = $cursor->query_safe('FETCH 500 FROM c');
my @rows = split /\n/, $first;
my $events_at_open = store_events();

# the writers: 250 transactions each, retried on write conflicts
my $dir = $node->basedir;
open(my $fh, '>', "$dir/rewrite.sql") or die;
print $fh q{
\set lo random(0, 9)
\set d random(1, 1000)
UPDATE kv SET v = v + :d * CASE WHEN k % 2 = 0 THEN 1 ELSE -1 END,
	pad = CASE WHEN pad = 'reinserted' THEN pad ELSE md5(random()::text) || repeat('x', 100) END
	WHERE k >= :lo * 200 AND k < :lo * 200 + 200;
};
close $fh;
open($fh, '>', "$dir/reinsert.sql") or die;
print $fh qq{
\\set x random(0, $nkeys - 1)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT v AS oldv FROM kv WHERE k = :x \\gset
DELETE FROM kv WHERE k = :x;
INSERT INTO kv VALUES (:x, :oldv, 'reinserted');
END;
};
close $fh;
my ($wout, $werr) = ('', '');
my $writer = IPC::Run::start(
	[ 'pgbench', '-h', $node->host, '-p', $node->port, '-n', '-M', 'prepared',
	  '-c', $writer_clients, '-j', $writer_clients, '-t', $writer_txns,
	  '--max-tries=1000', '--random-seed=5',
	  '-f', "$dir/rewrite.sql\@3", '-f', "$dir/reinsert.sql\@1", 'postgres' ],
	'>', \$wout, '2>', \$werr);

# readers, while the writers run
my @readers = map { $node->background_psql('postgres', on_error_stop => 0) } 1 .. 2;
my ($scans, $lookups, $bad) = (0, 0, 0);
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while ($writer->pumpable && time < $deadline)
{
	$writer->pump_nb;
	foreach my $r (@readers)
	{
		my ($res, $failed) = $r->query('SELECT count(*) || \'|\' || sum(v) FROM kv');
		$scans++;
		if ($failed || $res ne $expect)
		{
			$bad++;
			diag "full scan returned '$res': $r->{stderr}" if $bad <= 5;
			$r->{stderr} = '';
		}
		($res, $failed) = $r->query('SELECT lookup_all()');
		$lookups++;
		if ($failed || $res ne $expect)
		{
			$bad++;
			diag "point lookups returned '$res': $r->{stderr}" if $bad <= 5;
			$r->{stderr} = '';
		}
	}
	# the cursor's session catches up its secondary in between (same
	# instance the cursor's iterator reads)
	my ($res, $failed) = $cursor->query('SELECT v FROM kv WHERE k = 1');
	$bad++, diag("lookup beside the cursor failed: $cursor->{stderr}") if $failed;
}
$writer->finish;
my $wret = $? >> 8;
note "writers: exit $wret\n$wout";
is($wret, 0, 'the writers ran to the end');
is(pgbench_stat($wout, qr/number of failed transactions: (\d+)/), 0, 'no writer transaction failed');
unlike($werr, qr/ERROR|aborted/, 'writers saw no error other than retried conflicts');
is($bad, 0, "$scans full scans and $lookups rounds of $nkeys point lookups during the writes all saw count $nkeys, sum 0");
cmp_ok($scans, '>=', 10, 'reads ran throughout the writes');

my $events = store_events();
note sprintf('store events during the run: %d flushes, %d compactions, %d table files deleted',
	$events->{flush} - $events_at_open->{flush},
	$events->{compaction} - $events_at_open->{compaction},
	$events->{deletion} - $events_at_open->{deletion});
cmp_ok($events->{flush} - $events_at_open->{flush}, '>=', 50, 'the store flushed often');
cmp_ok($events->{compaction} - $events_at_open->{compaction}, '>=', 10, 'and compacted often');
cmp_ok($events->{deletion} - $events_at_open->{deletion}, '>=', 10,
	'deleting files the open cursor started on');

# the cursor, opened before all that, reads its snapshot to the end
my $rest = $cursor->query('FETCH ALL FROM c');
is($cursor->{stderr}, '', 'the cursor reads on after compaction deleted its files');
push @rows, split /\n/, $rest;
my ($n, $sum, $prev, $ordered) = (0, 0, -1, 1);
foreach (@rows)
{
	my ($k, $v) = split /\|/;
	$n++;
	$sum += $v;
	$ordered = 0 if $k <= $prev;
	$prev = $k;
}
is("$n|$sum", $expect, 'and sees exactly the rows of its snapshot');
ok($ordered, 'in key order, each key once');
$cursor->query_safe('COMMIT');

# how often a secondary found WAL the owner had already purged (RocksDB then
# catches up from the MANIFEST alone); for the record, the checks above
# are what must hold
my $purged = 0;
my @logs = glob($node->data_dir . '/almanac/secondary/*/*/LOG');
foreach my $log (@logs)
{
	open(my $lf, '<', $log) or next;
	$purged += grep { /already been purged/ } <$lf>;
	close $lf;
}
note "secondary catch-ups that found WAL already purged: $purged (" . scalar(@logs) . ' secondary logs)';
$cursor->quit;
$_->quit foreach @readers;

# afterwards: the writes all count
is($node->safe_psql('postgres', 'SELECT count(*) || \'|\' || sum(v) FROM kv'), $expect,
	'a new session sees count and sum unchanged');
is($node->safe_psql('postgres', 'SELECT lookup_all()'), $expect, 'also key by key');
is($node->safe_psql('postgres', "SELECT count(*) > 0 FROM kv WHERE pad = 'reinserted'"), 't',
	'the reinserting writer committed');

$node->stop;
note sprintf('runtime %.1f s', time - $started);
done_testing();
