# An error at a subtransaction's start must never reach PostgreSQL: no
# almanac code may raise in SUBXACT_EVENT_START_SUB.
#
# PostgreSQL 15 runs the subtransaction callbacks at the end of
# StartSubTransaction; one that raises leaves the subtransaction half
# started.  A plain SAVEPOINT survives that, but PL/pgSQL does not: a
# block with an EXCEPTION clause in a DO block inside a savepoint got
# SIGSEGV in plpgsql_subxact_cb and the postmaster restarted every backend,
# and an outer EXCEPTION block that caught the error ended the session
# (FATAL).  kv/xact.c used to record each savepoint there: the growth of
# its array (almanac_grow_array, failed by the fault point
# grow_array_error as an allocation that fails is) and the fold of the
# mirrors' blind writes into the batch (fold_blind: "column family was
# dropped").  It now records a subtransaction's save point when the
# subtransaction first writes, so the error is the writing statement's, an
# ordinary ERROR (53200) that aborts that subtransaction alone.
#
# Each case checks that the postmaster did not restart, that the error is
# 53200, and that what commits is what the heap commits from the same
# statements: the writes of the levels around the failed one, and nothing
# of the failed level.  The savepoint array's first capacity is 16 (one
# entry per level that wrote), so the 17th level makes it grow.  Then what
# the lazy record must keep: a subtransaction that wrote nothing rolls back
# nothing, the mirrors' writes before it included (e); a released one's
# save points are its parent's (f).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node start_after_crash);

my $node = almanac_node('subxact_start_fault');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE t (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'st', key_columns 'id');
	CREATE TABLE h (id int PRIMARY KEY, v text);
	INSERT INTO almanac.chains (chain_id, evm_chain_id, name) VALUES ('eth', 1, 'Ethereum');
	-- one row in the foreign table and the same in the heap table
	CREATE PROCEDURE put(i int, val text) LANGUAGE sql
		BEGIN ATOMIC
			INSERT INTO h VALUES (i, val);
			INSERT INTO t VALUES (i, val);
		END;
	-- the fault point armed at depth arm_at (0: the body, 1: the outer
	-- block, 2: the inner one), local to the level that arms it: not
	-- before, since a function called from a query keeps priors of its
	-- writes (kv/nested.h) in arrays that grow too; disarmed by the handler
	CREATE FUNCTION arm(arm_at int, depth int) RETURNS text LANGUAGE sql AS $$
		SELECT CASE WHEN arm_at = depth
			THEN set_config('almanac.fault_point', 'grow_array_error', true) END
	$$;
	CREATE FUNCTION f(arm_at int) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE
		r text := 'nothing caught';
	BEGIN
		CALL put(200, 'f body');
		PERFORM arm(arm_at, 0);
		BEGIN
			CALL put(201, 'outer block');
			PERFORM arm(arm_at, 1);
			BEGIN
				CALL put(202, 'inner block');
				PERFORM arm(arm_at, 2);
				BEGIN
					CALL put(203, 'innermost block');
				EXCEPTION WHEN division_by_zero THEN NULL;
				END;
			EXCEPTION WHEN division_by_zero THEN NULL;
			END;
		EXCEPTION WHEN out_of_memory THEN
			r := 'caught ' || SQLSTATE;
			PERFORM set_config('almanac.fault_point', '', true);
			CALL put(204, 'handler');
		END;
		CALL put(205, 'after');
		RETURN r;
	END $$;
});

my $start = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

# psql's output and errors (verbose: with the SQLSTATE) for a script run in
# one session
sub run
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $ret = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$out, stderr => \$err, on_error_stop => 0);
	# the tests' servers do not restart after a crash: started again here,
	# for the checks that follow (which then fail)
	start_after_crash($node) unless eval { $node->safe_psql('postgres', 'SELECT 1'); 1 };
	return ($ret, $out, $err);
}

# the heap's rows from $from on, and the foreign table's
sub both
{
	my ($from) = @_;
	return (
		$node->safe_psql('postgres', "SELECT id, v FROM h WHERE id >= $from ORDER BY id"),
		$node->safe_psql('postgres', "SELECT id, v FROM t WHERE id >= $from ORDER BY id"));
}

sub no_restart
{
	my ($what, $offset) = @_;
	my @bad = grep { /terminated by signal|FATAL|PANIC/ } split(/\n/, slurp_file($node->logfile, $offset));
	is(join("\n", @bad), '', "$what: no backend crashed or ended");
	is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $start,
		"$what: the postmaster did not restart");
}

# A first write in a fresh session grows nested.c's arrays: done before the
# fault point is armed.
my $warm = "CALL put(999, 'warm'); DELETE FROM t WHERE id = 999; DELETE FROM h WHERE id = 999;\n";
# $n savepoints each with a write (ids $base + 1 .. $base + $n) after one at the top level
sub savepoints
{
	my ($base, $n) = @_;
	return "BEGIN;\nCALL put($base, 'top');\n"
	  . join('', map { "SAVEPOINT s$_;\nCALL put(" . ($base + $_) . ", 's$_');\n" } 1 .. $n);
}

# (a) A DO block inside 16 savepoints: its exception block is the 17th
# level.  Caught in the block, then as the DO block's error.
my $offset = -s $node->logfile;
my ($ret, $out, $err) = run($warm . savepoints(0, 16) . q{
SET almanac.fault_point = 'grow_array_error';
DO $$
BEGIN
	CALL put(100, 'do body');
	BEGIN
		CALL put(101, 'exception block');
	EXCEPTION WHEN out_of_memory THEN
		RAISE NOTICE 'caught %', SQLSTATE;
	END;
	CALL put(102, 'after the block');
END $$;
DO $$
BEGIN
	BEGIN
		CALL put(103, 'block that does not catch it');
	EXCEPTION WHEN division_by_zero THEN NULL;
	END;
END $$;
ROLLBACK TO SAVEPOINT s16;
RESET almanac.fault_point;
CALL put(104, 'after rollback to s16');
COMMIT;
});
like($err, qr/NOTICE:  00000: caught 53200/, '(a) the exception block catches out of memory');
like($err, qr/ERROR:  53200: out of memory/, '(a) uncaught, the DO block fails with 53200');
unlike($err, qr/server closed the connection|FATAL|PANIC/, '(a) and the session goes on');
my ($heap, $kv) = both(0);
is($kv, $heap, '(a) the foreign table commits what the heap commits');
is($kv, join("\n", '0|top', map({ "$_|s$_" } 1 .. 15), '104|after rollback to s16'),
	'(a) the savepoints\' writes, without the failed levels\' nor s16\'s');
no_restart('(a)', $offset);

# (b) A function with an outer exception block, around two nested ones, in a
# transaction with 14 savepoints: the outer block is the 15th level, the
# innermost the 17th.
$offset = -s $node->logfile;
($ret, $out, $err) = run($warm . savepoints(300, 14) . q{
SELECT f(2);
COMMIT;
});
is($out, 'caught 53200', '(b) the outer exception block catches out of memory');
unlike($err, qr/ERROR|FATAL|PANIC|server closed the connection/, '(b) and nothing else fails')
  or diag($err);
($heap, $kv) = both(200);
is($kv, $heap, '(b) the foreign table commits what the heap commits');
is($kv, join("\n", '200|f body', '204|handler', '205|after', '300|top', map({ (300 + $_) . "|s$_" } 1 .. 14)),
	'(b) the outer levels\' writes and the handler\'s, none of the exception block\'s');
no_restart('(b)', $offset);

# (c) The same function in a fresh session with no savepoint: the outer
# block's start was the array's first growth.
$node->safe_psql('postgres', 'DELETE FROM t WHERE id >= 200; DELETE FROM h WHERE id >= 200');
$offset = -s $node->logfile;
($ret, $out, $err) = run($warm . q{
SELECT f(0);
});
is($out, 'caught 53200', '(c) the outer exception block catches out of memory');
unlike($err, qr/ERROR|FATAL|PANIC|server closed the connection/, '(c) and nothing else fails')
  or diag($err);
($heap, $kv) = both(200);
is($kv, $heap, '(c) the foreign table commits what the heap commits');
is($kv, "200|f body\n204|handler\n205|after", '(c) without the exception block\'s writes');
no_restart('(c)', $offset);

# (d) The mirrors' blind writes: each savepoint writes a mirrored row, the
# exception block's write is the first blind write of the 17th level.
sub block
{
	my ($n) = @_;
	return "INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp) "
	  . "VALUES ('eth', $n, '0x' || lpad(to_hex($n + 1), 64, '0'), '0x' || lpad(to_hex($n), 64, '0'), "
	  . "'2024-01-01 00:00:00+00');\n";
}
$offset = -s $node->logfile;
($ret, $out, $err) = run($warm . "BEGIN;\n" . block(1)
	  . join('', map { "SAVEPOINT s$_;\n" . block(1 + $_) } 1 .. 16) . q{
SET almanac.fault_point = 'grow_array_error';
DO $$
BEGIN
	BEGIN
		INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
		VALUES ('eth', 100, '0x' || repeat('b0', 32), '0x' || repeat('c0', 32), '2024-01-01 00:00:00+00');
	EXCEPTION WHEN out_of_memory THEN
		RAISE NOTICE 'caught %', SQLSTATE;
	END;
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', 101, '0x' || repeat('b1', 32), '0x' || repeat('c1', 32), '2024-01-01 00:00:00+00');
END $$;
RESET almanac.fault_point;
ROLLBACK TO SAVEPOINT s9;
COMMIT;
SELECT count(*) FROM almanac.verify('almanac.blocks');
SELECT string_agg(block_number::text, ',' ORDER BY block_number) FROM almanac.blocks;
SELECT count(*) FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 9;
SELECT count(*) FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 100;
});
like($err, qr/NOTICE:  00000: caught 53200/, '(d) a mirrored write\'s out of memory is caught');
unlike($err, qr/ERROR|FATAL|PANIC|server closed the connection/, '(d) and nothing else fails')
  or diag($err);
is($out, "0\n1,2,3,4,5,6,7,8,9\n1\n0",
	'(d) the mirror agrees with the heap: the rows of the levels kept, none of the failed one');
no_restart('(d)', $offset);

# (e) Subtransactions that write nothing have no save point, and their
# rollback keeps the mirror writes buffered before them (the parent's): one
# that only raises, one that reads the foreign table (which moves those
# writes into the batch) and rolls back, one released.
$offset = -s $node->logfile;
($ret, $out, $err) = run("BEGIN;\n" . block(20) . q{
DO $$
BEGIN
	BEGIN
		PERFORM 1 / 0;
	EXCEPTION WHEN division_by_zero THEN NULL;
	END;
END $$;
} . block(21) . q{
SAVEPOINT r;
SELECT count(*) FROM t WHERE id = 0;
ROLLBACK TO SAVEPOINT r;
} . block(22) . q{
SAVEPOINT k;
RELEASE SAVEPOINT k;
COMMIT;
SELECT count(*) FROM almanac.verify('almanac.blocks');
SELECT string_agg(block_number::text, ',' ORDER BY block_number) FROM almanac.blocks WHERE block_number >= 20;
});
is($err, '', '(e) nothing fails');
is($out, "1\n0\n20,21,22", '(e) the mirror has every row of the transaction');
no_restart('(e)', $offset);

# (f) A released subtransaction's save points are its parent's: a later
# sibling that writes gets its own, and its rollback leaves the released
# one's writes; so does a rollback of a level whose released child wrote
# before it did.
($ret, $out, $err) = run(q{
BEGIN;
SAVEPOINT a;
CALL put(400, 'a, released');
RELEASE SAVEPOINT a;
SAVEPOINT b;
CALL put(401, 'b, rolled back');
ROLLBACK TO SAVEPOINT b;
SAVEPOINT c;
SAVEPOINT d;
CALL put(402, 'd, released into c');
RELEASE SAVEPOINT d;
CALL put(403, 'c');
ROLLBACK TO SAVEPOINT c;
CALL put(404, 'top');
COMMIT;
});
is($err, '', '(f) nothing fails');
($heap, $kv) = both(400);
is($kv, $heap, '(f) the foreign table commits what the heap commits');
is($kv, "400|a, released\n404|top", '(f) the released sibling\'s write and the top level\'s');

$node->stop;
done_testing();
