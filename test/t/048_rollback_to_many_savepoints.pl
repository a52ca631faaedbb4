# ROLLBACK TO a savepoint after many released subtransactions that wrote.
#
# The transaction's write batch (src/kv/xact.c) gets a save point when a
# subtransaction first writes, and a released subtransaction's save point
# stays, its parent's now: RocksDB's C API cannot drop a save point of a
# batch with an index.  A rollback undid them one at a time, and each undo
# rebuilt the batch's whole index: ROLLBACK TO a savepoint after a DO
# block's loop of N exception blocks that each inserted a row took 15 s at
# N = 5,000 and 314 s at 20,000.  A rollback that undoes several save
# points now rebuilds the batch once, from its records before the first of
# them (rebuild_batch), and drops the save points no rollback can target.
#
# The test checks what the transaction reads and commits, never a time
# (docs/write-path.md has the figures).  Without the fix (a) runs for many
# minutes, and fails when safe_psql's timeout (180 s by default) ends it.
#  (a) the issue's loop: 30,000 released exception blocks that each insert
#      a row, then ROLLBACK TO the savepoint around them;
#  (b) mixtures, the same statements on a heap table beside the foreign
#      one, compared at each step: writes before the savepoint, loops of
#      released exception blocks, a savepoint rolled back with a child
#      still open, one rolled back twice, one released into its parent,
#      an exception block that rolls back a loop of released ones, and the
#      mirrored almanac.blocks written in the same transaction (checked
#      with almanac.verify after the commit); everything kept in the batch,
#      then small batches sent to the owner while the transaction goes on;
#  (c) a loop whose exception blocks each update a row of the top level,
#      which sends the batch at each iteration (replaces_outliving_write);
#  (d) (b) and (c) with the fault point savepoint_rebuild_error: the
#      rebuild fails, and the rollback undoes the save points one at a time.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('rollback_to_many');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE t (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'rt', key_columns 'id');
	CREATE TABLE h (id int PRIMARY KEY, v text);
	INSERT INTO almanac.chains (chain_id, evm_chain_id, name) VALUES ('eth', 1, 'Ethereum');
	-- a row in the foreign table and the same in the heap table
	CREATE PROCEDURE put(i int, val text) LANGUAGE sql
		BEGIN ATOMIC
			INSERT INTO h VALUES (i, val);
			INSERT INTO t VALUES (i, val);
		END;
	CREATE PROCEDURE upd(i int, val text) LANGUAGE sql
		BEGIN ATOMIC
			UPDATE h SET v = val WHERE id = i;
			UPDATE t SET v = val WHERE id = i;
		END;
	-- a mirrored row (almanac.blocks)
	CREATE PROCEDURE putb(n int) LANGUAGE sql
		BEGIN ATOMIC
			INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
			VALUES ('eth', n, '0x' || lpad(to_hex(n + 1), 64, '0'), '0x' || lpad(to_hex(n), 64, '0'),
					timestamptz '2024-01-01 00:00:00+00' + n * interval '12 seconds');
		END;
	-- body run with $1 = i in an exception block for each i from a to b,
	-- each block released
	CREATE PROCEDURE in_blocks(a int, b int, body text) LANGUAGE plpgsql AS $$
	BEGIN
		FOR i IN a..b LOOP
			BEGIN
				EXECUTE body USING i;
			EXCEPTION WHEN division_by_zero THEN
				NULL;
			END;
		END LOOP;
	END $$;
	-- a row, and a block every 10 rows
	CREATE PROCEDURE loop_row(i int) LANGUAGE plpgsql AS $$
	BEGIN
		CALL put(i, 'loop');
		IF i % 10 = 0 THEN
			CALL putb(i);
		END IF;
	END $$;
	CREATE PROCEDURE loop(a int, b int) LANGUAGE plpgsql AS $$
	BEGIN
		CALL in_blocks(a, b, 'CALL loop_row($1)');
	END $$;
	-- a row of the loop of (c), after an update of the row the top level wrote
	CREATE PROCEDURE upd_then_put(i int) LANGUAGE plpgsql AS $$
	BEGIN
		CALL upd(1, 'iteration ' || i);
		CALL put(100 + i, 'loop');
	END $$;
	-- the same loop inside an exception block that then rolls it back
	CREATE PROCEDURE loop_then_fail(a int, b int) LANGUAGE plpgsql AS $$
	BEGIN
		BEGIN
			CALL loop(a, b);
			RAISE division_by_zero;
		EXCEPTION WHEN division_by_zero THEN
			NULL;
		END;
	END $$;
	-- the foreign table's rows as the heap's ('same' and their number), or both
	CREATE FUNCTION same() RETURNS text LANGUAGE sql AS $$
		SELECT CASE WHEN a IS NOT DISTINCT FROM b THEN 'same ' || n
			ELSE 'heap ' || coalesce(a, '') || ' foreign ' || coalesce(b, '') END
		  FROM (SELECT string_agg(id || '=' || v, ',' ORDER BY id) a, count(*) n FROM h) x,
			   (SELECT string_agg(id || '=' || v, ',' ORDER BY id) b FROM t) y
	$$;
});

# psql's output of a script run in one session; its errors fail the test
sub run
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', $sql, stdout => \$out, stderr => \$err, on_error_stop => 1);
	is($err, '', 'no error') or diag($sql);
	return $out;
}

sub reset_tables
{
	$node->safe_psql('postgres',
		"DELETE FROM t; DELETE FROM h; DELETE FROM almanac.blocks WHERE chain_id = 'eth'");
}

# (a)
my $offset = -s $node->logfile;
is( run(q{
BEGIN;
INSERT INTO t VALUES (1, 'before the savepoint');
SAVEPOINT s;
CALL in_blocks(100001, 130000, 'INSERT INTO t VALUES ($1, ''loop'')');
SELECT count(*) FROM t;
ROLLBACK TO SAVEPOINT s;
SELECT count(*) FROM t;
INSERT INTO t VALUES (2, 'after the rollback');
COMMIT;
SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM t;
}),
	"30001\n1\n1=before the savepoint,2=after the rollback",
	'(a) the loop\'s 30,000 rows are undone, the rows around them committed');

# (b), (d): the mixture
my $mixture = q{
BEGIN;
CALL put(1, 'top');
CALL putb(1);
SAVEPOINT a;
CALL put(2, 'a');
CALL loop(1000, 1199);
SAVEPOINT b;
CALL put(3, 'b');
CALL loop(2000, 2199);
SAVEPOINT c;
CALL put(4, 'c');
CALL upd(4, 'c updated');
CALL loop(3000, 3099);
SELECT same();
ROLLBACK TO SAVEPOINT b;
SELECT same();
CALL put(5, 'b again');
CALL loop(4000, 4099);
ROLLBACK TO SAVEPOINT b;
SELECT same();
CALL put(5, 'b a third time');
RELEASE SAVEPOINT b;
CALL loop(5000, 5099);
SAVEPOINT d;
CALL loop(6000, 6049);
RELEASE SAVEPOINT d;
CALL loop_then_fail(8000, 8099);
SELECT same();
ROLLBACK TO SAVEPOINT a;
SELECT same();
CALL put(6, 'after');
CALL loop(7000, 7009);
COMMIT;
SELECT same();
SELECT count(*) FROM almanac.verify('almanac.blocks');
SELECT string_agg(block_number::text, ',' ORDER BY block_number) FROM almanac.blocks;
};
my $mixture_out = join("\n",
	'same 504',    # 1, 2, 1000..1199, 3, 2000..2199, 4, 3000..3099
	'same 202',    # 1, 2, 1000..1199
	'same 202',
	'same 353',    # 1, 2, 1000..1199, 5, 5000..5099, 6000..6049
	'same 1',
	'same 12',     # 1, 6, 7000..7009
	'0',
	'1,7000');

# (c), (d): each iteration's update replaces a write of the top level
my $outliving = q{
BEGIN;
CALL put(1, 'top');
SAVEPOINT s;
CALL put(2, 's');
CALL in_blocks(1, 300, 'CALL upd_then_put($1)');
SELECT same();
SELECT v FROM t WHERE id = 1;
ROLLBACK TO SAVEPOINT s;
SELECT same();
SELECT v FROM t WHERE id = 1;
COMMIT;
SELECT same();
SELECT v FROM t WHERE id = 1;
};
my $outliving_out = "same 302\niteration 300\nsame 1\ntop\nsame 1\ntop";

# a script's output from empty tables, after the settings given
sub from_empty
{
	my ($settings, $script) = @_;
	reset_tables();
	return run($settings . $script);
}

my $in_batch = "SET almanac.mirror_send_size = 0;\n";
my $sent = "SET almanac.write_batch_size = 64;\nSET almanac.mirror_send_size = 1;\n";
my $heap = 'the foreign table reads and commits what the heap does, the mirror agrees';
my $back = 'the top level\'s row is back as it was, the loop\'s rows are undone';
is(from_empty($in_batch, $mixture), $mixture_out, "(b) kept in the batch: $heap");
is(from_empty($sent, $mixture), $mixture_out, "(b) sent while the transaction goes on: $heap");
is(from_empty('', $outliving), $outliving_out, "(c) $back");

my $fault = "SET almanac.fault_point = 'savepoint_rebuild_error';\n";
is(from_empty($fault . $in_batch, $mixture), $mixture_out, "(d) rebuild failing, kept in the batch: $heap");
is(from_empty($fault . $sent, $mixture), $mixture_out,
	"(d) rebuild failing, sent while the transaction goes on: $heap");
is(from_empty($fault, $outliving), $outliving_out, "(d) rebuild failing: $back");

# every undo found its save point in the batch (xact.c warns otherwise)
my @bad = grep { /save point missing|terminated by signal|PANIC/ }
  split(/\n/, slurp_file($node->logfile, $offset));
is(join("\n", @bad), '', 'no save point missing, no crash');

$node->stop;
done_testing();
