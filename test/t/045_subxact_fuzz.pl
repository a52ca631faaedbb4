# A seeded fuzzer of subtransactions: random transactions whose writes go to
# a heap table and an almanac foreign table side by side (the same
# statements, one procedure writing both), and to a mirrored core table
# (almanac.blocks), under SQL savepoints (SAVEPOINT, RELEASE, ROLLBACK TO,
# an error rolled back to the innermost one), PL/pgSQL exception blocks
# (nested, in loops, raising on some iterations, writing in the handler),
# functions with exception blocks called from a writing statement, cursors
# whose rows write, fetched under savepoints, large statements that send
# the batch while they run (almanac.write_batch_size), mirror writes sent
# without waiting (almanac.mirror_send_size, in half the transactions: see
# below), COPY by SST files
# (almanac.bulk_copy), reads of the foreign table between writes (which
# fold the mirrors' buffered writes into the batch), and ends by COMMIT,
# ROLLBACK, PREPARE TRANSACTION then COMMIT or ROLLBACK PREPARED.
#
# kv/xact.c records a subtransaction's save point in the batch when it first
# writes, for every open level that has none yet, relabels those of a
# released one as its parent's and undoes to a level's first one when it
# aborts; a level that wrote nothing has none, and its abort leaves the
# batch and the mirrors' buffered writes alone.  Whatever it got wrong shows
# as a difference: between the heap and the foreign table (checked inside
# the transaction at random points and after it), or between
# almanac.blocks and its mirror (almanac.verify, after each transaction).
#
# Mirror writes sent to the owner without waiting (almanac.mirror_send_size)
# are on in half the transactions, chosen by the seed; SUBXACT_FUZZ_POSTED=1
# turns them on in all, SUBXACT_FUZZ_POSTED=0 off in all, the transactions
# otherwise the same.  With them on, most seeds of 300 transactions (3 to 7)
# failed one transaction with an error the heap does not raise: the owner's
# 23505 or 40001 on a key of t the transaction deleted and inserted again
# under subtransactions, the owner applying the posted insert after the
# subtransaction rolled back, its delete with it (now dropped by the owner:
# codec/visibility.c, refused; test/t/046 forces the timing).
#
# Deterministic from SUBXACT_FUZZ_SEED and SUBXACT_FUZZ_TXNS (100
# transactions by default, about 40 s), but for the timing of posted sends
# against the owner's applying them; a failing transaction is printed
# whole with its seed.  SUBXACT_FUZZ_DUMP=dir writes each transaction's
# script there, SUBXACT_FUZZ_TIMES=1 notes how long each took.  Each of two
# mistakes in kv/xact.c made by hand was found within the first 12
# transactions of the default seed: no relabel of a released
# subtransaction's save points, and an abort that drops the mirrors'
# buffered writes when the level wrote nothing.  A long run by hand:
#
#   for s in 1 2 3; do
#     SUBXACT_FUZZ_SEED=$s SUBXACT_FUZZ_TXNS=300 make test REGRESS=extension \
#       ISOLATION_SPECS= TAP_TESTS=test/t/045_subxact_fuzz.pl || break
#   done
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use AlmanacTest qw(almanac_node);

my $seed = $ENV{SUBXACT_FUZZ_SEED} // 20261207;
my $ntxn = $ENV{SUBXACT_FUZZ_TXNS} // 100;
srand($seed);
note "SUBXACT_FUZZ_SEED=$seed SUBXACT_FUZZ_TXNS=$ntxn";

my $node = almanac_node('subxact_fuzz', "max_prepared_transactions = 2\n");
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE t (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'sx', key_columns 'id');
	CREATE TABLE h (id int PRIMARY KEY, v text);
	INSERT INTO almanac.chains (chain_id, evm_chain_id, name) VALUES ('eth', 1, 'Ethereum');
	-- each writes the heap table and the foreign table alike
	CREATE PROCEDURE setv(i int, val text) LANGUAGE sql BEGIN ATOMIC
		DELETE FROM h WHERE id = i; INSERT INTO h VALUES (i, val);
		DELETE FROM t WHERE id = i; INSERT INTO t VALUES (i, val);
	END;
	CREATE PROCEDURE bump(i int) LANGUAGE sql BEGIN ATOMIC
		UPDATE h SET v = v || '+' WHERE id = i;
		UPDATE t SET v = v || '+' WHERE id = i;
	END;
	CREATE PROCEDURE del(i int) LANGUAGE sql BEGIN ATOMIC
		DELETE FROM h WHERE id = i; DELETE FROM t WHERE id = i;
	END;
	CREATE PROCEDURE span(lo int, hi int, val text) LANGUAGE sql BEGIN ATOMIC
		UPDATE h SET v = val WHERE id BETWEEN lo AND hi;
		UPDATE t SET v = val WHERE id BETWEEN lo AND hi;
	END;
	-- n rows of len bytes from base on, the ones not there yet
	CREATE PROCEDURE bulk(base int, n int, len int) LANGUAGE sql BEGIN ATOMIC
		INSERT INTO h SELECT g, repeat('b', len) || g FROM generate_series(base, base + n - 1) g
			ON CONFLICT DO NOTHING;
		INSERT INTO t SELECT g, repeat('b', len) || g FROM generate_series(base, base + n - 1) g
			ON CONFLICT DO NOTHING;
	END;
	-- COPY of keys never written before: by SST files
	CREATE PROCEDURE load(lo int, hi int) LANGUAGE plpgsql AS $$
	BEGIN
		EXECUTE format('COPY h (id) FROM PROGRAM %L', format('seq %s %s', lo, hi));
		EXECUTE format('COPY t (id) FROM PROGRAM %L', format('seq %s %s', lo, hi));
	END $$;
	-- the mirrored table
	CREATE FUNCTION bhash(n int, tag text) RETURNS text LANGUAGE sql IMMUTABLE
		AS $$ SELECT '0x' || md5(n || '/' || tag) || md5(tag || '/' || n) $$;
	CREATE PROCEDURE blk(n int, tag text) LANGUAGE sql BEGIN ATOMIC
		INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
		VALUES ('eth', n, bhash(n, tag), bhash(n - 1, tag), '2024-01-01 00:00:00+00')
		ON CONFLICT (chain_id, block_number) DO UPDATE SET block_hash = excluded.block_hash,
			metadata = jsonb_build_object('tag', tag);
	END;
	CREATE PROCEDURE blk_del(n int) LANGUAGE sql BEGIN ATOMIC
		DELETE FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = n;
	END;
	-- differences between the two tables, seen from inside the transaction
	CREATE FUNCTION diff() RETURNS TABLE (side text, id int, v text) LANGUAGE sql AS $$
		(SELECT 'heap only', * FROM (SELECT * FROM h EXCEPT SELECT * FROM t) a)
		UNION ALL (SELECT 'foreign only', * FROM (SELECT * FROM t EXCEPT SELECT * FROM h) b)
	$$;
	CREATE PROCEDURE check_same(at text) LANGUAGE plpgsql AS $$
	BEGIN
		IF EXISTS (SELECT FROM diff()) THEN
			RAISE EXCEPTION 'MISMATCH at %: %', at, (SELECT string_agg(d::text, ' ') FROM diff() d)
				USING ERRCODE = 'ZZ999';
		END IF;
	END $$;
	-- a function writing under its own exception block, called from a query
	CREATE FUNCTION wr(i int, undo bool) RETURNS int LANGUAGE plpgsql AS $$
	BEGIN
		BEGIN
			CALL setv(i, 'wr' || i);
			CALL blk(i % 40 + 1, 'wr' || i);
			IF undo THEN RAISE EXCEPTION 'undo'; END IF;
		EXCEPTION WHEN raise_exception THEN NULL;
		END;
		RETURN i;
	END $$;
	-- a function writing with no block of its own
	CREATE FUNCTION w(i int) RETURNS int LANGUAGE plpgsql AS $$
	BEGIN CALL setv(i, 'w' || i); RETURN i; END $$;
});

sub pick { return $_[ int(rand(@_)) ]; }
sub chance { return rand() < $_[0]; }

my $fresh = 100000;    # COPY's keys, never written before
my $tagn = 0;

# a leaf write or read, as a statement (SQL and PL/pgSQL alike but for the
# read, whose form differs)
sub leaf
{
	my ($plpgsql, $k) = @_;
	my $i = defined $k && chance(0.5) ? "$k + " . int(rand(30)) : 1 + int(rand(40));
	my $r = rand();
	$tagn++;
	return "CALL setv($i, 'v$tagn')" if $r < 0.25;
	return "CALL bump($i)" if $r < 0.35;
	return "CALL del($i)" if $r < 0.43;
	if ($r < 0.48)
	{
		my $lo = 1 + int(rand(40));
		return "CALL span($lo, " . ($lo + int(rand(10))) . ", 's$tagn')";
	}
	return "CALL bulk(" . (1 + int(rand(60))) . ", " . (20 + int(rand(100))) . ", "
	  . pick(10, 1000) . ")" if $r < 0.53;
	if ($r < 0.56 && !defined $k)
	{
		# (not in a loop, which would load its keys twice)
		my $lo = $fresh;
		$fresh += 20 + int(rand(200));
		return "CALL load($lo, " . ($fresh - 1) . ")";
	}
	return "CALL blk(" . (1 + int(rand(40))) . ", 'b$tagn')" if $r < 0.74;
	return "CALL blk_del(" . (1 + int(rand(40))) . ")" if $r < 0.79;
	# (not in a loop: a scan of both tables per iteration is slow)
	return "CALL check_same('$tagn')" if $r < 0.9 && !defined $k;
	# a read of the foreign table: folds the mirrors' writes into the batch
	return $plpgsql
	  ? "PERFORM count(*) FROM t WHERE id < " . int(rand(50))
	  : "SELECT count(*) >= 0 AS read FROM t WHERE id < " . int(rand(50));
}

# a PL/pgSQL block: statements, nested blocks with exception clauses,
# loops; $k is the innermost loop variable, if any
sub plblock
{
	my ($depth, $k) = @_;
	my $s = '';
	my $n = 1 + int(rand(4));
	for (1 .. $n)
	{
		my $r = rand();
		if ($depth < 4 && ($k // '') !~ /k[123]/ && $r < 0.3)
		{
			my $var = "k$depth";
			$s .= "FOR $var IN 1.." . (1 + int(rand(6))) .  " LOOP\n" . plblock($depth + 1, $var) . "END LOOP;\n";
		}
		elsif ($depth < 5 && $r < 0.6)
		{
			my $cond = defined $k ? "$k % " . (2 + int(rand(3))) . " = 0" : pick('true', 'false');
			$s .= "BEGIN\n" . plblock($depth + 1, $k)
			  . (chance(0.6) ? "IF $cond THEN RAISE EXCEPTION 'undo'; END IF;\n" : '')
			  . "EXCEPTION WHEN raise_exception THEN\n"
			  . (chance(0.5) ? leaf(1, $k) . ";\n" : "NULL;\n") . "END;\n";
		}
		elsif ($r < 0.7)
		{
			# a block that writes nothing (it may read) and rolls back
			$s .= "BEGIN\n" . (chance(0.5) ? "PERFORM count(*) FROM t WHERE id < 10;\n" : '')
			  . "RAISE EXCEPTION 'undo';\nEXCEPTION WHEN raise_exception THEN NULL;\nEND;\n";
		}
		else
		{
			$s .= leaf(1, $k) . ";\n";
		}
	}
	return $s;
}

# one transaction's statements
sub transaction
{
	my @sql;
	my @sp;
	my $spn = 0;
	# the cursor: 0 none, else 1 + how many savepoints were open when it
	# was declared (a rollback to one of them closes it)
	my $cursor = 0;

	push @sql, "SET almanac.write_batch_size = " . pick("'64kB'", "'16MB'");
	# mirror writes posted without waiting (1: at each mirror write; 64:
	# once the batch reaches 64kB or almanac.write_batch_size) in half the
	# transactions, or in all of them with SUBXACT_FUZZ_POSTED=1, none with
	# SUBXACT_FUZZ_POSTED=0; one draw either way, so the three runs of a
	# seed differ only in this setting
	my $p = rand();
	my $posted = $ENV{SUBXACT_FUZZ_POSTED} // '';
	my $send = $posted eq '0' ? 0
	  : $posted eq '1' ? ($p < 0.5 ? 1 : 64)
	  : ($p < 0.25 ? 1 : $p < 0.5 ? 64 : 0);
	push @sql, "SET almanac.mirror_send_size = $send";
	push @sql, "BEGIN";
	for (1 .. 3 + int(rand(15)))
	{
		my $r = rand();
		if ($r < 0.15)
		{
			$spn++;
			push @sp, "s$spn";
			push @sql, "SAVEPOINT s$spn";
		}
		elsif ($r < 0.22 && @sp)
		{
			my $i = int(rand(@sp));
			push @sql, "RELEASE $sp[$i]";
			splice(@sp, $i);
			$cursor = $i + 1 if $cursor > $i + 1;
		}
		elsif ($r < 0.32 && @sp)
		{
			my $i = int(rand(@sp));
			push @sql, "ROLLBACK TO $sp[$i]";
			splice(@sp, $i + 1);
			$cursor = 0 if $cursor && $i < $cursor - 1;
		}
		elsif ($r < 0.34)
		{
			# a savepoint that writes nothing (it may read), rolled back or released
			push @sql, "SAVEPOINT q", pick("SELECT 1", "SELECT count(*) >= 0 AS read FROM t WHERE id < 10"),
			  pick("ROLLBACK TO q", "RELEASE q");
		}
		elsif ($r < 0.38 && @sp)
		{
			# an error in the innermost savepoint, rolled back to it
			push @sql, leaf(0), "SELECT 1 / 0", "ROLLBACK TO $sp[-1]";
			$cursor = 0 if $cursor && $#sp < $cursor - 1;
		}
		elsif ($r < 0.5)
		{
			push @sql, "DO \$\$\nDECLARE k0 int; k1 int; k2 int; k3 int;\nBEGIN\n" . plblock(0) . "END \$\$";
		}
		elsif ($r < 0.56)
		{
			my $lo = 1 + int(rand(40));
			push @sql, "SELECT count(wr(i, i % " . (2 + int(rand(3))) . " = 0)) FROM generate_series($lo, "
			  . ($lo + int(rand(8))) . ") i";
		}
		elsif ($r < 0.6 && !$cursor)
		{
			my $lo = 1 + int(rand(40));
			$cursor = 1 + @sp;
			push @sql, "DECLARE c CURSOR FOR SELECT w(i) FROM generate_series($lo, " . ($lo + 10) . ") i";
		}
		elsif ($r < 0.66 && $cursor)
		{
			push @sql, "FETCH " . (1 + int(rand(3))) . " FROM c";
		}
		else
		{
			push @sql, leaf(0);
		}
	}
	push @sql, "SELECT 'MISMATCH', * FROM diff()" if chance(0.5);
	my $r = rand();
	if ($r < 0.7) { push @sql, "COMMIT"; }
	elsif ($r < 0.8) { push @sql, "ROLLBACK"; }
	else
	{
		push @sql, "PREPARE TRANSACTION 'p'";
		push @sql, chance(0.7) ? "COMMIT PREPARED 'p'" : "ROLLBACK PREPARED 'p'";
	}
	return @sql;
}

my @failures;
for my $n (1 .. $ntxn)
{
	my @sql = transaction();
	my $script = join('', map { "$_;\n" } @sql);
	my ($out, $err) = ('', '');
	my $t0 = time();
	append_to_file("$ENV{SUBXACT_FUZZ_DUMP}/$n.sql", $script) if $ENV{SUBXACT_FUZZ_DUMP};
	$node->psql('postgres', "\\set VERBOSITY verbose\n$script",
		stdout => \$out, stderr => \$err, on_error_stop => 0);
	note(sprintf("transaction %d: %.2f s", $n, time() - $t0)) if $ENV{SUBXACT_FUZZ_TIMES};
	my $after = $node->safe_psql('postgres', q{
		SELECT (SELECT count(*) FROM diff()) || ' ' || (SELECT count(*) FROM almanac.verify('almanac.blocks'))
	});
	# the only error a script raises on purpose: the division by zero
	my @errors = grep { /ERROR/ && !/22012: division by zero/ } split /\n/, $err;
	my $problem = '';
	$problem .= "errors:\n" . join("\n", @errors) . "\n" if @errors;
	$problem .= "mismatch inside the transaction:\n$out\n" if $out =~ /MISMATCH/;
	$problem .= "after it (heap/foreign differences, mirror differences): $after\n" if $after ne '0 0';
	$problem .= "server:\n$err\n" if $err =~ /server closed|FATAL|PANIC/;
	if ($problem ne '')
	{
		push @failures, $n;
		diag("SUBXACT_FUZZ_SEED=$seed transaction $n:\n$problem--- script:\n$script");
		# the next ones start from the state the heap has
		$node->safe_psql('postgres', q{
			DELETE FROM t; INSERT INTO t SELECT * FROM h;
			SELECT almanac.resync('almanac.blocks');
		});
		last if @failures >= 3;
	}
}
is(join(',', @failures), '', "every transaction ($ntxn, seed $seed) kept the foreign table and the mirror as the heap");

$node->stop;
done_testing();
