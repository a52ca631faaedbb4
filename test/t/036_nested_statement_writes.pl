# Commands a statement triggers see its writes so far, and their own writes
# of its rows stay, as on the heap: an AFTER ROW trigger that reads the
# table or updates the row just written, a function that updates a row the
# statement wrote earlier (src/kv/nested.h).
#
# A statement that updates or deletes a row a command it triggered already
# changed (a volatile function in its SET list or WHERE clause, a BEFORE ROW
# trigger) is refused, as the heap refuses it: "... already modified by an
# operation triggered by the current command" (27000).  Without the check
# the statement's write, computed from the row it read when it began, would
# silently replace the nested command's newer write (src/kv/nested.h).
# Each case runs against a heap table and a foreign table side by side and
# compares the outcome: error code and the rows left.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('nested_writes', "max_prepared_transactions = 2\n");
$node->safe_psql('postgres', q{
	CREATE TABLE heap_kv (k bigint PRIMARY KEY, v text);
	CREATE FOREIGN TABLE kv (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv', key_columns 'k');
	-- another foreign table over the same keys, and one over others
	CREATE FOREIGN TABLE kv_alias (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv', key_columns 'k');
	CREATE FOREIGN TABLE kv_other (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv_other', key_columns 'k');
	-- the same functions and triggers for both tables, by name
	CREATE FUNCTION set_inner(tab regclass, key bigint) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN EXECUTE format('UPDATE %s SET v = ''inner'' WHERE k = $1', tab) USING key;
			RETURN 'x'; END $$;
	CREATE FUNCTION del_inner(tab regclass, key bigint) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN EXECUTE format('DELETE FROM %s WHERE k = $1', tab) USING key;
			RETURN 'x'; END $$;
	CREATE FUNCTION set_big(tab regclass, key bigint) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN EXECUTE format('UPDATE %s SET v = repeat(''i'', 70000) WHERE k = $1', tab) USING key;
			RETURN 'x'; END $$;
	-- the nested write rolled back by an exception block: the row is unchanged
	CREATE FUNCTION set_undone(tab regclass, key bigint) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN
			BEGIN
				EXECUTE format('UPDATE %s SET v = ''undone'' WHERE k = $1', tab) USING key;
				RAISE EXCEPTION 'undo';
			EXCEPTION WHEN raise_exception THEN NULL;
			END;
			RETURN 'x'; END $$;
	CREATE FUNCTION touch(tab regclass, key bigint) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN EXECUTE format('UPDATE %s SET v = v || ''-n'' WHERE k = $1', tab) USING key;
			RETURN 'y'; END $$;
	CREATE FUNCTION seen(tab regclass) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ DECLARE r text; BEGIN
			EXECUTE format('SELECT string_agg(k || v, '' '' ORDER BY k) FROM %s', tab) INTO r;
			RETURN r; END $$;
	-- the same, rolled back by an exception block after it wrote
	CREATE FUNCTION touch_undone(tab regclass, key bigint) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN
			BEGIN
				EXECUTE format('UPDATE %s SET v = v || ''-n'' WHERE k = $1', tab) USING key;
				RAISE EXCEPTION 'undo';
			EXCEPTION WHEN raise_exception THEN NULL;
			END;
			RETURN 'y'; END $$;
	-- AFTER ROW triggers: one appends '+' to the row just updated, one
	-- records in a heap table what the trigger's own query sees
	CREATE TABLE seen_log (tab text, n int, s text);
	CREATE FUNCTION plus() RETURNS trigger LANGUAGE plpgsql
		AS $$ BEGIN
			IF NEW.v NOT LIKE '%+' THEN
				EXECUTE format('UPDATE %s SET v = v || ''+'' WHERE k = $1', TG_RELID::regclass)
					USING NEW.k;
			END IF;
			RETURN NULL; END $$;
	CREATE FUNCTION log_seen() RETURNS trigger LANGUAGE plpgsql
		AS $$ BEGIN
			INSERT INTO seen_log VALUES (TG_TABLE_NAME, NEW.k, seen(TG_RELID::regclass));
			RETURN NULL; END $$;
	-- reads the row it changes: the nested read must see the statement's write
	CREATE FUNCTION app_inner(tab regclass, key bigint) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN EXECUTE format('UPDATE %s SET v = v || ''+in'' WHERE k = $1', tab) USING key;
			RETURN 'x'; END $$;
	-- the nested write in an exception block, kept or rolled back
	CREATE FUNCTION app_sub(tab regclass, key bigint, fail bool) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN
			BEGIN
				EXECUTE format('UPDATE %s SET v = v || ''+sub'' WHERE k = $1', tab) USING key;
				IF fail THEN RAISE EXCEPTION 'undo'; END IF;
			EXCEPTION WHEN raise_exception THEN NULL;
			END;
			RETURN 'x'; END $$;
	-- an AFTER ROW trigger that updates the row it fires for
	CREATE FUNCTION after_self() RETURNS trigger LANGUAGE plpgsql
		AS $$ BEGIN IF pg_trigger_depth() = 1 THEN
			EXECUTE format('UPDATE %s SET v = v || ''+after'' WHERE k = $1', TG_RELID::regclass)
				USING NEW.k;
			END IF; RETURN NULL; END $$;
	-- makes pg_temp.fail_sql(): a SQL function whose UPDATE fails after it
	-- wrote a row; called as a PL/pgSQL simple expression, its executor state
	-- lives until its next call
	CREATE FUNCTION fail_midway(tab regclass) RETURNS int LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN EXECUTE format('CREATE OR REPLACE FUNCTION pg_temp.fail_sql() RETURNS int
			LANGUAGE sql VOLATILE AS ''UPDATE %s SET v = ''''dead'''' || (1 / (k - 2)) WHERE k IN (1, 2);
			SELECT 1''', tab); RETURN 0; END $$;
	-- a BEFORE ROW trigger that updates another row of its own table
	CREATE FUNCTION bump_next() RETURNS trigger LANGUAGE plpgsql
		AS $$ BEGIN EXECUTE format('UPDATE %s SET v = v || ''+'' WHERE k = $1', TG_RELID::regclass)
			USING NEW.k + 1; RETURN NEW; END $$;
});

sub reset_rows
{
	$node->safe_psql('postgres', q{
		DROP TRIGGER IF EXISTS bump ON heap_kv;
		DROP TRIGGER IF EXISTS bump ON kv;
		DROP TRIGGER IF EXISTS after_self ON heap_kv;
		DROP TRIGGER IF EXISTS after_self ON kv;
		DROP TRIGGER IF EXISTS plus ON heap_kv;
		DROP TRIGGER IF EXISTS plus ON kv;
		DROP TRIGGER IF EXISTS log_seen ON heap_kv;
		DROP TRIGGER IF EXISTS log_seen ON kv;
		DELETE FROM seen_log;
		DELETE FROM heap_kv; DELETE FROM kv;
		INSERT INTO heap_kv SELECT g, 'a' || g FROM generate_series(1, 4) g;
		INSERT INTO kv SELECT g, 'a' || g FROM generate_series(1, 4) g;
	});
}

# Run $sql (with TAB for the table) on both tables, in the session settings
# $pre; the two must end alike: the same SQLSTATE (or none), the same rows.
sub same_as_heap
{
	my ($name, $sql, $pre, $want_state) = @_;
	$pre //= '';
	my %res;
	for my $tab ('heap_kv', 'kv')
	{
		(my $q = $sql) =~ s/TAB/$tab/g;
		my ($ret, $out, $err) = $node->psql('postgres', "$pre $q",
			extra_params => [ '-v', 'VERBOSITY=verbose' ]);
		my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5})/;
		$res{$tab}{state} = $state // 'none';
		$res{$tab}{rows} = $node->safe_psql('postgres',
			"SELECT string_agg(k || '=' || v, ',' ORDER BY k) FROM $tab");
	}
	is($res{heap_kv}{state}, $want_state, "$name: the heap's outcome is $want_state");
	is($res{kv}{state}, $res{heap_kv}{state}, "$name: the foreign table's outcome is the heap's");
	is($res{kv}{rows}, $res{heap_kv}{rows}, "$name: the same rows are left ($res{heap_kv}{rows})");
}

reset_rows();
same_as_heap('a function in the SET list updated the row',
	q{UPDATE TAB SET v = 'outer' || set_inner('TAB', 1) WHERE k = 1}, '', '27000');
reset_rows();
same_as_heap('a function in the SET list deleted the row',
	q{UPDATE TAB SET v = 'outer' || del_inner('TAB', 1) WHERE k = 1}, '', '27000');
reset_rows();
same_as_heap('a DELETE whose WHERE clause updated a row it deletes later',
	q{DELETE FROM TAB WHERE k IN (1, 2) AND (k <> 1 OR set_inner('TAB', 2) = 'x')}, '', '27000');
reset_rows();
same_as_heap('a function updated another row the statement does not touch',
	q{UPDATE TAB SET v = 'outer' || set_inner('TAB', 3) WHERE k = 1}, '', 'none');
reset_rows();
same_as_heap('the nested write was rolled back by an exception block',
	q{UPDATE TAB SET v = 'outer' || set_undone('TAB', 1) WHERE k = 1}, '', 'none');

# the nested write sent to the owner mid-transaction is still caught
reset_rows();
same_as_heap('the nested write was sent to the owner before the statement wrote',
	q{BEGIN; UPDATE TAB SET v = 'outer' || set_big('TAB', 1) WHERE k = 1; COMMIT;},
	q{SET almanac.write_batch_size = 64;}, '27000');

# a BEFORE ROW trigger: fine for the row it fires on, refused on the next
reset_rows();
$node->safe_psql('postgres', q{
	CREATE TRIGGER bump BEFORE UPDATE ON heap_kv FOR EACH ROW EXECUTE FUNCTION bump_next();
	CREATE TRIGGER bump BEFORE UPDATE ON kv FOR EACH ROW EXECUTE FUNCTION bump_next();
});
same_as_heap('a BEFORE trigger updated a row the statement updates next',
	q{UPDATE TAB SET v = v || '!' WHERE k IN (1, 2)}, '', '27000');
same_as_heap('a BEFORE trigger updated a row the statement leaves alone',
	q{UPDATE TAB SET v = v || '!' WHERE k = 3}, '', 'none');

# writes of one command are not nested: two data-modifying CTEs of one statement
reset_rows();
same_as_heap('two data-modifying parts of one statement',
	q{WITH d AS (DELETE FROM TAB WHERE k = 4 RETURNING k) UPDATE TAB SET v = 'u' WHERE k = 3},
	'', 'none');

# a function updates a row the statement wrote earlier: the function sees
# the statement's write and its own update stays (k = 1 is written first)
reset_rows();
same_as_heap('a function updated a row the statement had written',
	q{UPDATE TAB SET v = CASE WHEN k = 2 THEN touch('TAB', 1) ELSE 'o' END WHERE k IN (1, 2)},
	q{SET enable_sort = off;}, 'none');
reset_rows();
same_as_heap('the same, the function\'s update rolled back by an exception block',
	q{UPDATE TAB SET v = CASE WHEN k = 2 THEN touch_undone('TAB', 1) ELSE 'o' END WHERE k IN (1, 2)},
	'', 'none');
reset_rows();
same_as_heap('a function reads what the statement wrote so far',
	q{UPDATE TAB SET v = CASE WHEN k = 3 THEN seen('TAB') ELSE 'o' END WHERE k IN (1, 2, 3)},
	'', 'none');
reset_rows();
same_as_heap('a data-modifying CTE\'s write is not seen by the rest of its statement',
	q{WITH u AS (UPDATE TAB SET v = 'u' WHERE k = 1 RETURNING k)
	  UPDATE TAB SET v = (SELECT v FROM TAB WHERE k = 1) || (SELECT count(*) FROM u) WHERE k = 4},
	'', 'none');

# AFTER ROW triggers: the update a trigger makes of the row just written stays
reset_rows();
$node->safe_psql('postgres', q{
	CREATE TRIGGER plus AFTER UPDATE ON heap_kv FOR EACH ROW EXECUTE FUNCTION plus();
	CREATE TRIGGER plus AFTER UPDATE ON kv FOR EACH ROW EXECUTE FUNCTION plus();
});
same_as_heap('an AFTER ROW trigger updated the row just updated',
	q{UPDATE TAB SET v = 'o' WHERE k IN (1, 3)}, '', 'none');
same_as_heap('the same, twice in one transaction',
	q{BEGIN; UPDATE TAB SET v = 'p' WHERE k = 2; UPDATE TAB SET v = 'q' WHERE k = 2; COMMIT;},
	q{SET almanac.write_batch_size = 64;}, 'none');

# AFTER ROW triggers see every row the statement wrote
reset_rows();
$node->safe_psql('postgres', q{
	CREATE TRIGGER log_seen AFTER INSERT OR UPDATE ON heap_kv FOR EACH ROW EXECUTE FUNCTION log_seen();
	CREATE TRIGGER log_seen AFTER INSERT OR UPDATE ON kv FOR EACH ROW EXECUTE FUNCTION log_seen();
});
$node->safe_psql('postgres', q{
	INSERT INTO heap_kv VALUES (5, 'i'), (6, 'i');
	INSERT INTO kv VALUES (5, 'i'), (6, 'i');
	UPDATE heap_kv SET v = 'w' WHERE k IN (1, 2);
	UPDATE kv SET v = 'w' WHERE k IN (1, 2);
});
is($node->safe_psql('postgres', q{
	SELECT string_agg(n || ': ' || s, E'\n' ORDER BY n, s) FROM seen_log WHERE tab = 'kv'}),
	$node->safe_psql('postgres', q{
	SELECT string_agg(n || ': ' || s, E'\n' ORDER BY n, s) FROM seen_log WHERE tab = 'heap_kv'}),
	'AFTER ROW triggers of an INSERT and an UPDATE see what the heap\'s see');
like($node->safe_psql('postgres', q{SELECT s FROM seen_log WHERE tab = 'kv' AND n = 5}),
	qr/5i 6i/, 'an AFTER INSERT trigger sees both rows its statement inserted');

# The other order: the statement wrote the row before the nested command
# changes it.  The nested command reads the statement's write and its own
# write stays.
reset_rows();
same_as_heap('a function updated a row the statement updated before',
	q{UPDATE TAB SET v = v || '!' || app_inner('TAB', k - 1) WHERE k IN (2, 3, 4)}, '', 'none');
reset_rows();
same_as_heap('a function deleted a row the statement updated before',
	q{UPDATE TAB SET v = v || '!' || del_inner('TAB', k - 1) WHERE k IN (2, 3)}, '', 'none');
reset_rows();
same_as_heap('a function read and rewrote a row the statement inserted before',
	q{INSERT INTO TAB SELECT g, 'n' || app_inner('TAB', g - 1) FROM generate_series(5, 7) g
		RETURNING k}, '', 'none');
reset_rows();
same_as_heap('a function in a data-modifying CTE updated a row the main statement updated',
	q{WITH u AS (UPDATE TAB SET v = 'cte' || app_inner('TAB', 2) WHERE k = 1 RETURNING k)
		UPDATE TAB SET v = 'main' WHERE k = 2}, '', 'none');
reset_rows();
same_as_heap('a function updated through another table a row the statement updated before',
	q{UPDATE TAB SET v = v || '!'
		|| app_inner(CASE 'TAB' WHEN 'kv' THEN 'kv_alias' ELSE 'TAB' END, k - 1)
		WHERE k IN (2, 3)}, '', 'none');
reset_rows();
same_as_heap('a function updated through another table a row the statement updates next',
	q{UPDATE TAB SET v = v || '!'
		|| app_inner(CASE 'TAB' WHEN 'kv' THEN 'kv_alias' ELSE 'TAB' END, k + 1)
		WHERE k IN (2, 3)}, '', '27000');

# an INSERT whose rows a volatile function runs for hands them over one by
# one: in a batch, the rows ahead would not be written yet when the function
# of the next runs
reset_rows();
same_as_heap('a function in an INSERT ... SELECT rewrote the row inserted before',
	q{INSERT INTO TAB SELECT g, 'n' || app_inner('TAB', g - 1) FROM generate_series(5, 8) g},
	'', 'none');
reset_rows();
same_as_heap('a function in a VALUES list rewrote the row inserted before',
	q{INSERT INTO TAB VALUES (5, 'n' || app_inner('TAB', 4)), (6, 'n' || app_inner('TAB', 5))},
	'', 'none');
reset_rows();
same_as_heap('a function in an INSERT ... SELECT\'s WHERE clause rewrote a row inserted before',
	q{INSERT INTO TAB SELECT g, 'n' FROM generate_series(5, 8) g
		WHERE g < 7 OR app_inner('TAB', g - 1) = 'x'}, '', 'none');

# in an exception block: kept, it is the newest write; rolled back, the
# statement's write stays
reset_rows();
same_as_heap('a function updated in an exception block a row the statement updated before',
	q{UPDATE TAB SET v = v || '!' || app_sub('TAB', k - 1, false) WHERE k IN (2, 3)}, '', 'none');
reset_rows();
same_as_heap('... and the exception block rolled it back',
	q{BEGIN;
	UPDATE TAB SET v = v || '!' || app_sub('TAB', k - 1, true) WHERE k IN (2, 3);
	SAVEPOINT a; UPDATE TAB SET v = v || '?' WHERE k < 3; ROLLBACK TO a;
	UPDATE TAB SET v = v || '.' WHERE k < 4;
	COMMIT;}, '', 'none');

# AFTER ROW triggers run before the statement's writer ends
reset_rows();
$node->safe_psql('postgres', q{
	CREATE TRIGGER after_self AFTER UPDATE OR INSERT ON heap_kv
		FOR EACH ROW EXECUTE FUNCTION after_self();
	CREATE TRIGGER after_self AFTER UPDATE OR INSERT ON kv
		FOR EACH ROW EXECUTE FUNCTION after_self();
});
same_as_heap('an AFTER UPDATE trigger updated the row it fired for',
	q{UPDATE TAB SET v = v || '!' WHERE k IN (1, 2)}, '', 'none');
same_as_heap('an AFTER INSERT trigger updated the row it fired for',
	q{INSERT INTO TAB VALUES (5, 'n'), (6, 'n')}, '', 'none');
same_as_heap('an AFTER INSERT trigger updated a row COPY wrote',
	"COPY TAB FROM STDIN;\n7\tc\n8\tc\n\\.\n", '', 'none');

# a statement that failed midway in an exception block, whose executor state
# outlives it: later commands do not see its writes
reset_rows();
same_as_heap('the writes of a statement that failed stay unseen',
	q{SELECT fail_midway('TAB');
	DO $$ DECLARE x int; BEGIN
		BEGIN x := pg_temp.fail_sql(); EXCEPTION WHEN division_by_zero THEN NULL; END;
		UPDATE TAB SET v = (SELECT v FROM TAB t WHERE t.k = 1) || '?' WHERE k = 3;
		UPDATE TAB SET v = v || '!' || app_inner('TAB', 1) WHERE k = 4;
	END $$;}, '', 'none');

# many statements of one transaction, a prepared statement run again
reset_rows();
same_as_heap('a loop of statements that call a writing function',
	q{DO $$ BEGIN FOR i IN 1..100 LOOP
		UPDATE TAB SET v = v || '.' || app_inner('TAB', 1 + (i + 1) % 4) WHERE k = 1 + i % 4;
	END LOOP; END $$;}, '', 'none');
reset_rows();
same_as_heap('a prepared statement run again',
	q{PREPARE p(bigint, bigint) AS UPDATE TAB SET v = v || app_inner('TAB', $1) WHERE k = $2;
	EXECUTE p(1, 2); EXECUTE p(2, 3); EXECUTE p(4, 4);}, '', '27000');

# a trigger that writes another table for each row records nothing: the
# record holds only writes that a statement of an earlier command may ask about
reset_rows();
$node->safe_psql('postgres', q{
	CREATE FUNCTION side_write() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO kv_other VALUES (NEW.k, 'side');
		IF NEW.k = 4 THEN
			RAISE NOTICE 'nested record: %', (SELECT count(*) FROM pg_backend_memory_contexts
				WHERE name = 'almanac nested writes');
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER side BEFORE UPDATE ON kv FOR EACH ROW EXECUTE FUNCTION side_write();
});
my ($ret, $out, $err) = $node->psql('postgres', q{UPDATE kv SET v = v || '!'});
like($err, qr/nested record: 0/, 'writes of another table are not recorded');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kv_other}), '4',
	'the trigger wrote its rows');
$node->safe_psql('postgres', q{DROP TRIGGER side ON kv});

# SELECT ... FOR UPDATE skips a row a command it triggered wrote after the
# scan began, as the heap's row lock does: a function in its WHERE clause
# (a multi-key lookup whose last key is skipped, a range)
sub rows_as_heap
{
	my ($name, $sql) = @_;
	my %out;
	for my $tab ('heap_kv', 'kv')
	{
		reset_rows();
		(my $q = $sql) =~ s/TAB/$tab/g;
		$out{$tab} = $node->safe_psql('postgres', $q);
	}
	is($out{kv}, $out{heap_kv}, "$name: the heap's rows ($out{heap_kv})");
}
rows_as_heap('FOR UPDATE, a function in the WHERE clause updated a row scanned later',
	q{SELECT k, v FROM TAB WHERE k IN (1, 2) AND (k = 2 OR set_inner('TAB', 2) = 'x') FOR UPDATE});
rows_as_heap('FOR UPDATE, a function in the WHERE clause updated a row of a range',
	q{SELECT k, v FROM TAB WHERE k > 0 AND (k <> 1 OR set_inner('TAB', 3) = 'x')
		ORDER BY k FOR UPDATE});
# the same in a statement that is not a SELECT (the locking query of an
# INSERT ... SELECT, a CTE, an UPDATE's subquery): a function in its select
# list updates the next row before LockRows locks it, which skips it; the
# rows were returned as the snapshot saw them (the scan registered for the
# record of later commands' writes in a SELECT only)
rows_as_heap('INSERT ... SELECT ... FOR UPDATE over a range, a function updated the rows ahead',
	q{INSERT INTO seen_log SELECT 'x', k, v || touch('TAB', k + 1) FROM TAB WHERE k > 0
		ORDER BY k FOR UPDATE;
	SELECT n, s FROM seen_log ORDER BY n});
rows_as_heap('INSERT ... SELECT ... FOR UPDATE over keys under a Sort, a function updated rows',
	q{INSERT INTO seen_log SELECT 'x', k, v || touch('TAB', 5 - k) FROM TAB WHERE k IN (1, 2, 3, 4)
		ORDER BY v FOR UPDATE;
	SELECT n, s FROM seen_log ORDER BY n});
rows_as_heap('a locking CTE of an INSERT, a function updated the rows ahead',
	q{WITH l AS (SELECT k, v, touch('TAB', k + 1) FROM TAB WHERE k > 0 ORDER BY k FOR SHARE)
	INSERT INTO seen_log SELECT 'x', k, v FROM l;
	SELECT n, s FROM seen_log ORDER BY n});
rows_as_heap('an UPDATE from a locking subquery, a function updated the rows ahead',
	q{INSERT INTO seen_log SELECT 'x', g, 'no' FROM generate_series(1, 4) g;
	UPDATE seen_log SET s = l.v FROM (SELECT k, v, touch('TAB', k + 1) FROM TAB WHERE k > 0
		ORDER BY k FOR UPDATE) l WHERE seen_log.n = l.k;
	SELECT n, s FROM seen_log ORDER BY n});
# a function in the WHERE clause of a locking scan (UPDATE, DELETE, FOR
# UPDATE by key, by keys, by range) runs once per row, as on the heap
$node->safe_psql('postgres', q{
	CREATE TABLE calls (n int);
	CREATE FUNCTION log_call() RETURNS bool LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN INSERT INTO calls VALUES (1); RETURN true; END $$;
});
rows_as_heap('calls of a function in the WHERE clause of locking scans',
	q{DELETE FROM calls;
	UPDATE TAB SET v = 'x' WHERE k IN (1, 2) AND log_call();
	DELETE FROM TAB WHERE k = 3 AND log_call();
	SELECT k FROM TAB WHERE k = 1 AND log_call() FOR UPDATE;
	SELECT k FROM TAB WHERE k IN (1, 2) AND log_call() ORDER BY k FOR UPDATE;
	SELECT k FROM TAB WHERE k > 0 AND log_call() ORDER BY k FOR SHARE;
	SELECT count(*) FROM calls;});

# a PL/pgSQL loop over a locking query that updates each row records nothing
reset_rows();
($ret, $out, $err) = $node->psql('postgres', q{
	DO $$ DECLARE r record; BEGIN
		FOR r IN SELECT k FROM kv WHERE k > 0 ORDER BY k FOR UPDATE LOOP
			UPDATE kv SET v = v || '.' WHERE k = r.k;
			IF r.k = 4 THEN
				RAISE NOTICE 'nested record: %', (SELECT count(*) FROM pg_backend_memory_contexts
					WHERE name = 'almanac nested writes');
			END IF;
		END LOOP;
	END $$;});
like($err, qr/nested record: 0/, 'the loop\'s updates are not recorded');
is($node->safe_psql('postgres', q{SELECT string_agg(v, ',' ORDER BY k) FROM kv}),
	'a1.,a2.,a3.,a4.', 'the loop updated every row');

# after the statement, a new statement updates the nested command's row as usual
reset_rows();
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT set_inner('kv', 2);
	UPDATE kv SET v = v || '-later' WHERE k = 2;
	COMMIT;
});
is($node->safe_psql('postgres', q{SELECT v FROM kv WHERE k = 2}), 'inner-later',
	'a later statement updates the row a function wrote earlier in the transaction');

# a savepoint rolled back after the statement failed: the transaction goes on
reset_rows();
is($node->safe_psql('postgres', q{
	BEGIN;
	SAVEPOINT s;
	DO $$ BEGIN
		UPDATE kv SET v = 'outer' || set_inner('kv', 1) WHERE k = 1;
	EXCEPTION WHEN triggered_data_change_violation THEN
		RAISE NOTICE 'refused';
	END $$;
	UPDATE kv SET v = 'after' WHERE k = 1;
	COMMIT;
	SELECT v FROM kv WHERE k = 1;
}), 'after', 'after the refusal is caught the transaction writes the row as usual');

# Command ids on the transaction's buffered writes: a reader whose snapshot
# is older than a command of the transaction (its curcid not above the
# command's id) does not see that command's writes, as on the heap.
$node->safe_psql('postgres', q{
	CREATE FUNCTION ins_inner(tab regclass, key bigint) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN EXECUTE format('INSERT INTO %s VALUES ($1, ''ins'')', tab) USING key;
			RETURN 'x'; END $$;
	-- reads the table, then writes a heap table (the command counter moves)
	CREATE TABLE counted (n int);
	CREATE FUNCTION count_then_log(tab regclass) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ DECLARE r text; BEGIN
			EXECUTE format('SELECT count(*) FROM %s', tab) INTO r;
			INSERT INTO counted VALUES (1);
			RETURN r; END $$;
	-- makes pg_temp.steps(): several commands in one SQL function
	CREATE FUNCTION sql_steps(tab regclass) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN EXECUTE format('CREATE OR REPLACE FUNCTION pg_temp.steps() RETURNS text
			LANGUAGE sql VOLATILE AS ''UPDATE %1$s SET v = v || ''''+s'''' WHERE k = 1;
			DELETE FROM %1$s WHERE k = 2; INSERT INTO %1$s VALUES (9, ''''s'''');
			SELECT string_agg(k || v, '''' '''' ORDER BY k) FROM %1$s''', tab); RETURN ''; END $$;
	-- a partitioned table whose partition is a heap table or a foreign table
	CREATE TABLE heap_kv_parted (k bigint, v text) PARTITION BY RANGE (k);
	CREATE TABLE heap_kv_parted_p PARTITION OF heap_kv_parted FOR VALUES FROM (0) TO (1000);
	CREATE TABLE kv_parted (k bigint, v text) PARTITION BY RANGE (k);
	CREATE FOREIGN TABLE kv_parted_p PARTITION OF kv_parted FOR VALUES FROM (0) TO (1000)
		SERVER almanac_store OPTIONS (key_prefix 'kv_parted', key_columns 'k');
});

# Run $sql (TAB: the table) on both tables after reset_rows, in the session
# settings $pre: the same output, SQLSTATE and rows left.
our $TODO;
sub output_as_heap
{
	my ($name, $sql, $pre, $todo) = @_;
	local $TODO = $todo;
	$pre //= '';
	my %res;
	for my $tab ('heap_kv', 'kv')
	{
		reset_rows();
		$node->safe_psql('postgres', 'DELETE FROM heap_kv_parted; DELETE FROM kv_parted;');
		(my $q = $sql) =~ s/TAB/$tab/g;
		my ($ret, $out, $err) = $node->psql('postgres', "$pre $q",
			extra_params => [ '-v', 'VERBOSITY=verbose' ]);
		my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5})/;
		$res{$tab}{state} = $state // 'none';
		$res{$tab}{out} = $out;
		$res{$tab}{rows} = $node->safe_psql('postgres',
			"SELECT string_agg(k || '=' || v, ',' ORDER BY k) FROM $tab");
	}
	is($res{kv}{state}, $res{heap_kv}{state}, "$name: the heap's outcome ($res{heap_kv}{state})");
	is($res{kv}{out}, $res{heap_kv}{out}, "$name: the heap's output");
	my $left = length($res{heap_kv}{rows}) > 80
		? substr($res{heap_kv}{rows}, 0, 80) . '...' : $res{heap_kv}{rows};
	is($res{kv}{rows}, $res{heap_kv}{rows}, "$name: the same rows are left ($left)");
}

my $nestloop = 'SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off;';

# 1. a scan its statement restarts after a command it triggered has ended
output_as_heap('a correlated subquery by key, after a function updated the row',
	q{SELECT g, touch('TAB', g), (SELECT v FROM TAB WHERE k = g) FROM generate_series(1, 3) g});
output_as_heap('a correlated subquery over a range, after a function updated a row',
	q{SELECT g, touch('TAB', g), (SELECT string_agg(k || v, ' ' ORDER BY k) FROM TAB
		WHERE k > 0 AND g > 0) FROM generate_series(1, 3) g});
output_as_heap('a correlated subquery over keys, after a function deleted and inserted rows',
	q{SELECT g, del_inner('TAB', g), ins_inner('TAB', g + 10),
		(SELECT string_agg(k || v, ' ' ORDER BY k) FROM TAB WHERE k IN (1, 2, 3, 11, 12) AND g > 0)
		FROM generate_series(1, 2) g});
output_as_heap('a nested loop rescans a foreign table after a function updated it',
	q{SELECT o.g, t.k, t.v FROM (SELECT g, touch('TAB', g) FROM generate_series(1, 3) g OFFSET 0) o,
		LATERAL (SELECT k, v FROM TAB WHERE k > 0 AND o.g > 0) t ORDER BY o.g, t.k}, $nestloop);
output_as_heap('an UPDATE whose subquery rereads a row a function of it updated',
	q{UPDATE TAB SET v = v || touch('TAB', 4) || (SELECT v FROM TAB t WHERE t.k = 4 AND TAB.k > 0)
		WHERE k IN (1, 2)}, 'SET enable_sort = off;');

# 2. cursors: the statements run between fetches are later commands
output_as_heap('a cursor by key, the row updated before the first fetch',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k = 3;
	UPDATE TAB SET v = 'changed' WHERE k = 3; FETCH ALL FROM c; COMMIT;});
output_as_heap('a cursor over keys, rows changed before the first fetch',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k IN (1, 2, 3, 4, 5) ORDER BY k;
	UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 4;
	INSERT INTO TAB VALUES (5, 'new'); FETCH ALL FROM c; COMMIT;});
output_as_heap('a cursor over a range, rows changed before the first fetch',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;
	UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 4;
	INSERT INTO TAB VALUES (5, 'new'); FETCH ALL FROM c; COMMIT;});
output_as_heap('a cursor over a range, rows changed between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 4;
	INSERT INTO TAB VALUES (5, 'new'); FETCH ALL FROM c; COMMIT;});
output_as_heap('a cursor whose subquery reads by key, rows changed between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, (SELECT v FROM TAB WHERE k = g) FROM generate_series(1, 5) g;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 4;
	INSERT INTO TAB VALUES (5, 'new'); FETCH ALL FROM c; COMMIT;});
output_as_heap('a cursor, rows changed in a savepoint rolled back and kept',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, (SELECT v FROM TAB WHERE k = g) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; SAVEPOINT a; UPDATE TAB SET v = 'undone' WHERE k = 2; ROLLBACK TO a;
	UPDATE TAB SET v = 'changed' WHERE k = 3; FETCH ALL FROM c;
	SELECT k, v FROM TAB ORDER BY k; COMMIT;});
output_as_heap('a FOR UPDATE cursor over a range, rows changed between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k FOR UPDATE;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 4;
	INSERT INTO TAB VALUES (5, 'new'); FETCH ALL FROM c; COMMIT;});
output_as_heap('a FOR UPDATE cursor over keys, rows changed before the first fetch',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k IN (1, 2, 3, 4, 5) ORDER BY k FOR UPDATE;
	UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 4;
	INSERT INTO TAB VALUES (5, 'new'); FETCH ALL FROM c; COMMIT;});
output_as_heap('a FOR SHARE cursor by key, the row updated before the first fetch',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k = 2 FOR SHARE;
	UPDATE TAB SET v = 'changed' WHERE k = 2; FETCH ALL FROM c; COMMIT;});

# WITH queries and SQL functions: several commands in one statement
output_as_heap('a SQL function of several commands, called in a query over the table',
	q{SELECT sql_steps('TAB'); SELECT g, pg_temp.steps(), (SELECT string_agg(k || v, ' ' ORDER BY k)
		FROM TAB WHERE g > 0) FROM generate_series(1, 2) g});
output_as_heap('a data-modifying CTE and a rescanned subquery of the same statement',
	q{WITH u AS (UPDATE TAB SET v = 'u' WHERE k = 1 RETURNING k)
	  SELECT g, (SELECT v FROM TAB WHERE k = g), (SELECT count(*) FROM u)
	  FROM generate_series(1, 2) g});

# 3. a writer begun when the first row is routed to it has the statement's
# command id: the function's reads after its own writes see the rows
# inserted so far
output_as_heap('rows routed to a partition, a function reads them',
	q{INSERT INTO TAB_parted SELECT g, count_then_log('TAB_parted') FROM generate_series(1, 4) g;
	SELECT k, v FROM TAB_parted ORDER BY k});


# Readers' registration on every path: a PL/pgSQL FOR loop, cursors opened,
# closed or failed in subtransactions, WITH HOLD, PREPARE TRANSACTION; the
# state left must not leak into later commands or transactions
$node->safe_psql('postgres', q{
	CREATE FUNCTION loop_seen(tab regclass) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ DECLARE r record; o text := ''; BEGIN
			FOR r IN EXECUTE format('SELECT k, v FROM %s WHERE k > 0 ORDER BY k', tab) LOOP
				o := o || r.k || r.v || ' ';
				EXECUTE format('UPDATE %s SET v = ''loop'' WHERE k = $1', tab) USING r.k + 1;
				EXECUTE format('DELETE FROM %s WHERE k = $1', tab) USING r.k + 2;
				IF r.k < 10 THEN
					EXECUTE format('INSERT INTO %s VALUES ($1, ''new'')', tab) USING r.k + 10;
				END IF;
			END LOOP;
			RETURN o; END $$;
});
output_as_heap('a PL/pgSQL FOR loop over a range that changes the rows ahead',
	q{SELECT loop_seen('TAB'); SELECT k, v FROM TAB ORDER BY k});
output_as_heap('a cursor declared in a released savepoint, rows changed after',
	q{BEGIN; SAVEPOINT a; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;
	FETCH 1 FROM c; RELEASE a; UPDATE TAB SET v = 'changed' WHERE k = 3;
	SAVEPOINT b; UPDATE TAB SET v = 'undone' WHERE k = 2; ROLLBACK TO b;
	FETCH ALL FROM c; SELECT k, v FROM TAB ORDER BY k; COMMIT;});
output_as_heap('a cursor declared in a savepoint rolled back, writes after it',
	q{BEGIN; SAVEPOINT a; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;
	FETCH 1 FROM c; UPDATE TAB SET v = 'undone' WHERE k = 3; ROLLBACK TO a;
	UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 4;
	SELECT k, v FROM TAB ORDER BY k; COMMIT;});
output_as_heap('a cursor closed in a savepoint rolled back',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;
	FETCH 1 FROM c; SAVEPOINT a; UPDATE TAB SET v = 'undone' WHERE k = 2; CLOSE c; ROLLBACK TO a;
	UPDATE TAB SET v = 'changed' WHERE k = 3; SELECT k, v FROM TAB ORDER BY k; COMMIT;});
output_as_heap('a key changed before, in and after a savepoint rolled back, under two cursors',
	q{BEGIN; DECLARE c1 CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;
	UPDATE TAB SET v = 'u1' WHERE k = 3;
	DECLARE c2 CURSOR FOR SELECT k, v FROM TAB WHERE k IN (2, 3) ORDER BY k;
	SAVEPOINT a; UPDATE TAB SET v = 'u2' WHERE k = 3;
	DECLARE c3 CURSOR FOR SELECT k, v FROM TAB WHERE k = 3; FETCH ALL FROM c3; ROLLBACK TO a;
	UPDATE TAB SET v = 'u3' WHERE k = 3; FETCH ALL FROM c2; CLOSE c1;
	UPDATE TAB SET v = 'u4' WHERE k = 2; FETCH ALL FROM c2; SELECT k, v FROM TAB ORDER BY k; COMMIT;});
output_as_heap('a cursor whose fetch failed in a savepoint rolled back',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v, 1 / (k - 3) FROM TAB WHERE k > 0 ORDER BY k;
	FETCH 1 FROM c; SAVEPOINT a; UPDATE TAB SET v = 'changed' WHERE k = 2; FETCH ALL FROM c;
	ROLLBACK TO a; UPDATE TAB SET v = 'after' WHERE k = 1; SELECT k, v FROM TAB ORDER BY k;
	CLOSE c; UPDATE TAB SET v = 'closed' WHERE k = 4; SELECT k, v FROM TAB ORDER BY k; COMMIT;});
output_as_heap('a WITH HOLD cursor, rows changed before the commit, fetched after it',
	q{BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 4;
	COMMIT; FETCH ALL FROM c;
	BEGIN; DECLARE d CURSOR FOR SELECT k, v FROM TAB WHERE k IN (1, 2) ORDER BY k;
	UPDATE TAB SET v = 'later' WHERE k = 2; FETCH ALL FROM d; COMMIT;
	CLOSE c; SELECT k, v FROM TAB ORDER BY k;});
output_as_heap('a WITH HOLD cursor in a transaction rolled back',
	q{BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;
	UPDATE TAB SET v = 'undone' WHERE k = 3; ROLLBACK;
	BEGIN; DECLARE d CURSOR FOR SELECT k, v FROM TAB WHERE k > 2 ORDER BY k;
	UPDATE TAB SET v = 'changed' WHERE k = 3; FETCH ALL FROM d; COMMIT;
	SELECT k, v FROM TAB ORDER BY k;});
output_as_heap('PREPARE TRANSACTION with an open cursor',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; PREPARE TRANSACTION 'p_TAB';
	COMMIT PREPARED 'p_TAB';
	BEGIN; DECLARE d CURSOR FOR SELECT k, v FROM TAB WHERE k > 2 ORDER BY k;
	UPDATE TAB SET v = 'later' WHERE k = 3; FETCH ALL FROM d; COMMIT;
	SELECT k, v FROM TAB ORDER BY k;});
output_as_heap('PREPARE TRANSACTION with a WITH HOLD cursor is refused',
	q{BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;
	UPDATE TAB SET v = 'undone' WHERE k = 3; PREPARE TRANSACTION 'p_TAB';
	BEGIN; DECLARE d CURSOR FOR SELECT k, v FROM TAB WHERE k > 2 ORDER BY k;
	UPDATE TAB SET v = 'changed' WHERE k = 3; FETCH ALL FROM d; COMMIT;});
output_as_heap('EXPLAIN ANALYZE of a query whose function writes rows it rereads',
	q{DO $$ BEGIN EXECUTE 'EXPLAIN ANALYZE INSERT INTO seen_log SELECT ''x'', g,
		touch(''TAB'', g) || (SELECT v FROM TAB WHERE k = g) FROM generate_series(1, 3) g'; END $$;
	SELECT n, s FROM seen_log ORDER BY n});

# more of the same: writes sent to the owner under a cursor (ROLLBACK TO
# SAVEPOINT after a send, a bulk statement sent while it runs), a locking
# cursor whose later change was rolled back, a key inserted, deleted and
# inserted again under two cursors, a loop whose exception blocks roll back
output_as_heap('a cursor, a savepoint rolled back after writes sent to the owner',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, length(v) FROM TAB WHERE k > 0 ORDER BY k;
	FETCH 1 FROM c; UPDATE TAB SET v = repeat('a', 70000) WHERE k = 2; SAVEPOINT a;
	UPDATE TAB SET v = repeat('b', 70000) WHERE k = 3; UPDATE TAB SET v = repeat('c', 70000) WHERE k = 2;
	ROLLBACK TO a; UPDATE TAB SET v = 'x' WHERE k = 3; FETCH ALL FROM c;
	SELECT k, length(v) FROM TAB ORDER BY k; COMMIT;}, 'SET almanac.write_batch_size = 64;');
output_as_heap('a cursor, bulk statements sent to the owner while they run',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, length(v) FROM TAB WHERE k > 0 ORDER BY k;
	FETCH 1 FROM c; INSERT INTO TAB SELECT g, repeat('z', 1000) FROM generate_series(10, 400) g;
	UPDATE TAB SET v = v || 'u' WHERE k > 0; DELETE FROM TAB WHERE k > 300;
	FETCH ALL FROM c; SELECT count(*), sum(length(v)) FROM TAB; COMMIT;}, 'SET almanac.write_batch_size = 64;');
output_as_heap('a FOR UPDATE cursor, a change between fetches rolled back',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k FOR UPDATE;
	FETCH 1 FROM c; SAVEPOINT a; UPDATE TAB SET v = 'undone' WHERE k = 3; ROLLBACK TO a;
	UPDATE TAB SET v = 'kept' WHERE k = 4; FETCH ALL FROM c; COMMIT;});
output_as_heap('cursors over a key inserted, deleted, inserted and deleted again',
	q{BEGIN; INSERT INTO TAB VALUES (7, 'seven');
	DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;
	DELETE FROM TAB WHERE k = 7; INSERT INTO TAB VALUES (7, 'again'); UPDATE TAB SET v = 'u' WHERE k = 7;
	DECLARE d CURSOR FOR SELECT k, v FROM TAB WHERE k = 7;
	DELETE FROM TAB WHERE k = 7; FETCH ALL FROM c; FETCH ALL FROM d; SELECT k, v FROM TAB ORDER BY k; COMMIT;});
output_as_heap('a loop over a query whose exception blocks roll back writes',
	q{DO $$ DECLARE r record; BEGIN
		FOR r IN SELECT k, v FROM TAB WHERE k > 0 ORDER BY k LOOP
			BEGIN
				UPDATE TAB SET v = v || '!' WHERE k = r.k + 1;
				IF r.k = 2 THEN RAISE EXCEPTION 'x'; END IF;
				INSERT INTO TAB VALUES (r.k + 20, r.v);
			EXCEPTION WHEN raise_exception THEN NULL;
			END;
		END LOOP; END $$;
	SELECT k, v FROM TAB ORDER BY k;});
# SELECT ... FOR UPDATE / SHARE locks late, as the heap does (LockRows,
# almanacRefetchForeignRow): under a node that reads ahead (the Sort of an
# ORDER BY the scan does not give, a multi-key lookup's, a join) a row is
# locked when it is returned, so a row a statement changed or deleted since
# the first FETCH is skipped, as the heap's lock skips a tuple modified by a
# later command.  (The scan locked each row as it read it: every row was
# locked at the first FETCH and returned as the snapshot saw it.)
$node->safe_psql('postgres', q{
	CREATE TABLE join_src (k bigint, w text);
	INSERT INTO join_src SELECT g, 'w' || g FROM generate_series(1, 4) g;
});
output_as_heap('a FOR UPDATE cursor under a Sort, rows changed between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k IN (1, 2, 3, 4) ORDER BY k FOR UPDATE;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 4;
	FETCH ALL FROM c; COMMIT;});
# row ids past the first MaxOffsetNumber (2,048) take the next ctid block:
# the scan numbers all 5,004 rows it reads, the filter keeps a few of them
output_as_heap('a FOR UPDATE cursor under a Sort, row ids beyond 2,048, rows changed between fetches',
	q{BEGIN; INSERT INTO TAB SELECT g, 'b' || g FROM generate_series(5, 5004) g;
	DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 AND (k < 3 OR k > 4990) ORDER BY v DESC FOR UPDATE;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 5000; DELETE FROM TAB WHERE k = 4995;
	FETCH ALL FROM c; COMMIT;});
output_as_heap('a FOR SHARE cursor under a Sort, rows changed between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY v DESC FOR SHARE;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 2; DELETE FROM TAB WHERE k = 1;
	FETCH ALL FROM c; COMMIT;});
output_as_heap('a FOR NO KEY UPDATE and a FOR KEY SHARE cursor under a Sort, rows changed between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB ORDER BY v FOR NO KEY UPDATE;
	DECLARE d CURSOR FOR SELECT k, v FROM TAB ORDER BY v FOR KEY SHARE;
	FETCH 1 FROM c; FETCH 1 FROM d; UPDATE TAB SET v = 'changed' WHERE k = 3;
	FETCH ALL FROM c; FETCH ALL FROM d; COMMIT;});
output_as_heap('a FOR UPDATE cursor over = ANY keys, a row deleted between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k = ANY ('{4, 2, 3, 9}'::bigint[])
		ORDER BY v FOR UPDATE;
	FETCH 1 FROM c; DELETE FROM TAB WHERE k = 3; INSERT INTO TAB VALUES (9, 'new');
	FETCH ALL FROM c; COMMIT;});
output_as_heap('a join FOR UPDATE OF the foreign table, rows changed between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT t.k, t.v, j.w FROM TAB t JOIN join_src j ON j.k = t.k
		ORDER BY j.w DESC FOR UPDATE OF t;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 2; DELETE FROM TAB WHERE k = 1;
	UPDATE join_src SET w = 'x' WHERE k = 3;
	FETCH ALL FROM c; ROLLBACK;});
output_as_heap('a join FOR UPDATE of both tables, the foreign table on a rescanned inner side',
	$nestloop . q{ BEGIN; DECLARE c CURSOR FOR SELECT t.k, t.v, j.w FROM join_src j, TAB t
		WHERE t.k > 0 AND t.k <= j.k ORDER BY j.w, t.v FOR UPDATE;
	FETCH 1 FROM c; DELETE FROM TAB WHERE k = 2; UPDATE TAB SET v = 'changed' WHERE k = 3;
	FETCH ALL FROM c; COMMIT;});
output_as_heap('a FOR UPDATE cursor over a partitioned table with a foreign partition',
	q{BEGIN; INSERT INTO TAB_parted SELECT g, 'p' || g FROM generate_series(1, 4) g;
	DECLARE c CURSOR FOR SELECT k, v FROM TAB_parted WHERE k > 0 ORDER BY v DESC FOR UPDATE;
	FETCH 1 FROM c; UPDATE TAB_parted SET v = 'changed' WHERE k = 2; DELETE FROM TAB_parted WHERE k = 1;
	FETCH ALL FROM c; SELECT k, v FROM TAB_parted ORDER BY k; COMMIT;});
output_as_heap('FOR UPDATE under a Sort, a function in the WHERE clause updated a row read earlier',
	q{SELECT k, v FROM TAB WHERE k > 0 AND (k <> 4 OR set_inner('TAB', 1) = 'x') ORDER BY v DESC FOR UPDATE});
$node->safe_psql('postgres', q{
	CREATE FUNCTION lock_loop(tab regclass) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ DECLARE c refcursor; r record; o text := ''; BEGIN
			OPEN c FOR EXECUTE format('SELECT k, v FROM %s ORDER BY v FOR UPDATE', tab);
			LOOP
				FETCH c INTO r;
				EXIT WHEN NOT FOUND;
				o := o || r.k || r.v || ' ';
				EXECUTE format('DELETE FROM %s WHERE k = $1', tab) USING r.k + 1;
			END LOOP;
			RETURN o; END $$;
});
output_as_heap('a PL/pgSQL cursor loop over a locking query under a Sort that deletes the rows ahead',
	q{SELECT lock_loop('TAB')});
# the row ids live only for locking scans: a plain cursor keeps none
reset_rows();
($ret, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	DECLARE p CURSOR FOR SELECT k, v FROM kv WHERE k > 0 ORDER BY v;
	FETCH 1 FROM p;
	DO $$ BEGIN RAISE NOTICE 'row ids of a plain scan: %', (SELECT count(*)
		FROM pg_backend_memory_contexts WHERE name = 'almanac row ids'); END $$;
	DECLARE c CURSOR FOR SELECT k, v FROM kv WHERE k > 0 ORDER BY v FOR UPDATE;
	FETCH 1 FROM c;
	DO $$ BEGIN RAISE NOTICE 'row ids of a locking scan: %', (SELECT count(*)
		FROM pg_backend_memory_contexts WHERE name = 'almanac row ids'); END $$;
	COMMIT;});
like($err, qr/row ids of a plain scan: 0/, 'a plain scan keeps no row ids');
like($err, qr/row ids of a locking scan: 1/, 'a locking scan keeps its rows\' ids');

# Readers keep what a later command replaced only while one is open: a plain
# write, however large, keeps nothing; under an open cursor it does, and
# ROLLBACK TO SAVEPOINT undoes it
reset_rows();
($ret, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	INSERT INTO kv SELECT g, 'b' FROM generate_series(10, 2000) g;
	UPDATE kv SET v = v || '.' WHERE k > 0;
	DO $$ BEGIN RAISE NOTICE 'kept without a reader: %', (SELECT count(*)
		FROM pg_backend_memory_contexts WHERE name = 'almanac prior writes'); END $$;
	DECLARE c CURSOR FOR SELECT k, v FROM kv WHERE k = 3;
	UPDATE kv SET v = v || '!' WHERE k > 0;
	DO $$ BEGIN RAISE NOTICE 'kept under a cursor: %', (SELECT count(*)
		FROM pg_backend_memory_contexts WHERE name = 'almanac prior writes'); END $$;
	FETCH ALL FROM c;
	CLOSE c;
	DO $$ BEGIN RAISE NOTICE 'kept after it: %', (SELECT count(*)
		FROM pg_backend_memory_contexts WHERE name = 'almanac prior writes'); END $$;
	COMMIT;});
like($err, qr/kept without a reader: 0/, 'a plain write keeps nothing for readers');
like($err, qr/kept under a cursor: [1-9]/, 'a write under an open cursor keeps what it replaced');
like($err, qr/kept after it: 0/, 'what was kept goes with the last reader');
is($out, '3|a3.', 'the cursor reads the row as of its declaration');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kv WHERE v LIKE '%.!'}), '1995',
	'every row was written');

# Writes sent to the owner while the transaction goes on
# (almanac.write_batch_size) are in the store as versions of the
# transaction, which carry no command id: before the send, an older
# snapshot's prior of each key sent that was the store's row takes the
# store's value (kv/nested.h, almanac_nested_ship_begin)
my $small = 'SET almanac.write_batch_size = 64;';
output_as_heap('a cursor by key, the row rewritten in a batch sent to the owner before the first fetch',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, length(v) FROM TAB WHERE k = 3;
	UPDATE TAB SET v = repeat('i', 70000) WHERE k = 3; FETCH ALL FROM c; COMMIT;}, $small);
output_as_heap('a cursor over a range, rows rewritten, deleted and inserted in batches sent to the owner',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, length(v) FROM TAB WHERE k > 0 ORDER BY k;
	UPDATE TAB SET v = repeat('i', 70000) WHERE k IN (2, 3); DELETE FROM TAB WHERE k = 4;
	INSERT INTO TAB VALUES (5, repeat('n', 70000)); FETCH ALL FROM c;
	SELECT k, length(v) FROM TAB ORDER BY k; COMMIT;}, $small);
output_as_heap('a cursor over keys, rows deleted, then a batch sent to the owner',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, length(v) FROM TAB WHERE k IN (1, 2, 3, 4, 5) ORDER BY k;
	DELETE FROM TAB WHERE k IN (2, 4); UPDATE TAB SET v = repeat('i', 70000) WHERE k = 1;
	FETCH ALL FROM c; COMMIT;}, $small);
output_as_heap('a cursor, a row written before its DECLARE, rewritten in a batch sent after',
	q{BEGIN; UPDATE TAB SET v = 'before' WHERE k = 3;
	DECLARE c CURSOR FOR SELECT k, length(v), left(v, 6) FROM TAB WHERE k > 0 ORDER BY k;
	DECLARE d CURSOR FOR SELECT k, left(v, 6) FROM TAB WHERE k = 3;
	UPDATE TAB SET v = repeat('i', 70000) WHERE k = 3; UPDATE TAB SET v = 'after' WHERE k = 3;
	FETCH ALL FROM c; FETCH ALL FROM d; COMMIT;}, $small);
output_as_heap('a cursor fetched once, rows sent to the owner, a savepoint rolled back between',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, (SELECT length(v) FROM TAB WHERE k = g) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; SAVEPOINT a; UPDATE TAB SET v = repeat('u', 70000) WHERE k = 2; ROLLBACK TO a;
	UPDATE TAB SET v = repeat('i', 70000) WHERE k = 3; FETCH ALL FROM c;
	SELECT k, length(v) FROM TAB ORDER BY k; COMMIT;}, $small);
output_as_heap('a cursor closed before the rows it would read were sent and read again',
	q{BEGIN; DECLARE c CURSOR FOR SELECT k, length(v) FROM TAB WHERE k > 0 ORDER BY k; FETCH 1 FROM c;
	UPDATE TAB SET v = repeat('i', 70000) WHERE k = 2; CLOSE c;
	UPDATE TAB SET v = repeat('j', 70001) WHERE k = 3; SELECT k, length(v) FROM TAB ORDER BY k;
	DECLARE d CURSOR FOR SELECT k, length(v) FROM TAB WHERE k IN (2, 3) ORDER BY k;
	UPDATE TAB SET v = 'x' WHERE k = 2; FETCH ALL FROM d; COMMIT;}, $small);
# A scan begun after the write under an older snapshot (a STABLE function's
# query runs with its caller's snapshot): the caller's query is an open
# reader from its ExecutorStart
$node->safe_psql('postgres', q{
	CREATE FUNCTION stable_v(tab regclass, key bigint) RETURNS text LANGUAGE plpgsql STABLE
		AS $$ DECLARE r text; BEGIN
			EXECUTE format('SELECT v FROM %s WHERE k = $1', tab) INTO r USING key;
			RETURN r; END $$;
	CREATE FUNCTION stable_seen(tab regclass) RETURNS text LANGUAGE plpgsql STABLE
		AS $$ DECLARE r text; BEGIN
			EXECUTE format('SELECT string_agg(k || left(v, 8), '' '' ORDER BY k) FROM %s WHERE k > 0', tab) INTO r;
			RETURN r; END $$;
	CREATE FUNCTION stable_keys(tab regclass) RETURNS text LANGUAGE plpgsql STABLE
		AS $$ DECLARE r text; BEGIN
			EXECUTE format('SELECT string_agg(k || v, '' '' ORDER BY k) FROM %s WHERE k IN (1, 2, 3, 4, 5)', tab) INTO r;
			RETURN r; END $$;
});
output_as_heap('a cursor whose STABLE function reads by key, rows changed between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; FETCH ALL FROM c; COMMIT;});
output_as_heap('a cursor whose STABLE function reads by key, rows deleted and inserted between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, stable_v('TAB', g) FROM generate_series(1, 5) g;
	FETCH 1 FROM c; DELETE FROM TAB WHERE k IN (2, 4); INSERT INTO TAB VALUES (5, 'new');
	FETCH ALL FROM c; COMMIT;});
output_as_heap('a cursor whose STABLE function reads a range, rows changed before and between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, stable_seen('TAB') FROM generate_series(1, 3) g;
	UPDATE TAB SET v = 'first' WHERE k = 1; FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3;
	DELETE FROM TAB WHERE k = 4; INSERT INTO TAB VALUES (5, 'new'); FETCH ALL FROM c; COMMIT;});
output_as_heap('a cursor whose STABLE function reads keys, rows changed between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, stable_keys('TAB') FROM generate_series(1, 3) g;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 4;
	INSERT INTO TAB VALUES (5, 'new'); FETCH ALL FROM c; COMMIT;});
output_as_heap('a cursor whose STABLE function reads, a savepoint rolled back between fetches',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; SAVEPOINT a; UPDATE TAB SET v = 'undone' WHERE k = 2; ROLLBACK TO a;
	UPDATE TAB SET v = 'kept' WHERE k = 3; UPDATE TAB SET v = 'again' WHERE k = 3;
	FETCH ALL FROM c; SELECT k, v FROM TAB ORDER BY k; COMMIT;});
output_as_heap('a cursor whose STABLE function reads, closed before the rows are read again',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; CLOSE c;
	SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g; COMMIT;});
output_as_heap('a query whose STABLE function reads a row a volatile function of it changed',
	q{SELECT g, touch('TAB', g), stable_v('TAB', g), stable_seen('TAB') FROM generate_series(1, 3) g});
# A query's ExecutorStart runs code after some of its foreign scans began:
# the initial pruning of a partitioned table's subplans calls STABLE
# functions, which may call volatile ones that write.  Those writes have the
# query's command id: its scans, begun or not, must not see them (the query
# is an open reader from before its executor starts, kv/nested.c).  A
# generic plan, so that the planner does not call the function too.
$node->safe_psql('postgres', q{
	CREATE FUNCTION stable_set(tab regclass, key bigint, n int) RETURNS int LANGUAGE plpgsql STABLE
		AS $$ BEGIN PERFORM set_inner(tab, key); RETURN n; END $$;
	CREATE TABLE pruned (k int, x text) PARTITION BY LIST (k);
	CREATE TABLE pruned_1 PARTITION OF pruned FOR VALUES IN (1);
	CREATE TABLE pruned_2 PARTITION OF pruned FOR VALUES IN (2);
	INSERT INTO pruned VALUES (1, 'p1'), (2, 'p2');
});
my $generic = 'SET plan_cache_mode = force_generic_plan;';
my $pruned_first = q{PREPARE q(int) AS SELECT (SELECT v FROM TAB WHERE k = 1), p.x FROM pruned p
	WHERE p.k = stable_set('TAB', 1, $1);};
my $pruned_then = q{PREPARE q(int) AS SELECT p.x, t.v FROM pruned p,
	LATERAL (SELECT v FROM TAB WHERE k = 2 AND p.k > 0 OFFSET 0) t WHERE p.k = stable_set('TAB', 2, $1);};
# (EXPLAIN starts the executor: it prunes, and so writes)
like($node->safe_psql('postgres', "$generic " . ($pruned_first =~ s/TAB/kv/gr)
		. ' EXPLAIN (COSTS OFF) EXECUTE q(1)'),
	qr/Append\n.*Subplans Removed: 1\n.*InitPlan 1.*\n.*Foreign Scan on kv/,
	'the subquery\'s foreign scan begins (InitPlan) before the Append prunes');
like($node->safe_psql('postgres', "$generic $nestloop " . ($pruned_then =~ s/TAB/kv/gr)
		. ' EXPLAIN (COSTS OFF) EXECUTE q(1)'),
	qr/Nested Loop\n.*Append\n.*Subplans Removed: 1\n(.*\n)+.*Foreign Scan on kv/,
	'the foreign scan begins after the Append prunes');
output_as_heap('a subquery scan begun before an initial pruning that updates its row',
	"$pruned_first EXECUTE q(1); SELECT k, v FROM TAB ORDER BY k;", $generic);
output_as_heap('a scan begun after an initial pruning that updated its row',
	"$pruned_then EXECUTE q(1); SELECT k, v FROM TAB ORDER BY k;", "$generic $nestloop");
# a COPY under a cursor takes the per-row path: the bulk load's versions
# would have no prior for the cursor (keys never written: a bulk load)
$node->safe_psql('postgres', q{
	CREATE TABLE heap_kv_fresh (k bigint PRIMARY KEY, v text);
	CREATE FOREIGN TABLE kv_fresh (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv_fresh', key_columns 'k');
});
output_as_heap('a cursor whose STABLE function reads, rows loaded by COPY',
	"BEGIN; DECLARE e CURSOR FOR SELECT g, stable_v('TAB_fresh', g), stable_seen('TAB_fresh') FROM generate_series(1, 2) g;\n"
	. "COPY TAB_fresh FROM STDIN;\n1\tc\n2\tc\n\\.\nFETCH ALL FROM e; SELECT k, v FROM TAB_fresh ORDER BY k; COMMIT;");
# (in kv, keys 900 and 901 were inserted above, 10..2000, then deleted: the
# store holds their committed versions, so the owner would refuse a bulk
# chunk of them anyway, store/bulk.c any_key_exists; kv_fresh is the case
# that the refusal under a cursor covers)
output_as_heap('cursors by keys and over a range, rows loaded by COPY',
	"BEGIN; DECLARE c CURSOR FOR SELECT k, v FROM TAB WHERE k IN (1, 900, 901) ORDER BY k;\n"
	. "DECLARE d CURSOR FOR SELECT k, v FROM TAB WHERE k > 0 ORDER BY k;\n"
	. "COPY TAB FROM STDIN;\n900\tc\n901\tc\n\\.\nFETCH ALL FROM c; FETCH ALL FROM d;\n"
	. "SELECT k, v FROM TAB ORDER BY k; COMMIT;");
output_as_heap('a cursor whose STABLE function reads rows rewritten in a batch sent to the owner',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, length(stable_v('TAB', g)), length(stable_seen('TAB'))
		FROM generate_series(1, 4) g;
	FETCH 1 FROM c; UPDATE TAB SET v = repeat('i', 70000) WHERE k = 3; DELETE FROM TAB WHERE k = 2;
	UPDATE TAB SET v = repeat('j', 70000) WHERE k = 4; FETCH ALL FROM c; COMMIT;}, $small);

# review of the command-id change: savepoints, sends, PREPARE, WITH HOLD,
# another table
output_as_heap('a cursor whose STABLE function reads, a kept prior rolled back to a savepoint',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; SAVEPOINT a; UPDATE TAB SET v = 'undone' WHERE k = 3; ROLLBACK TO a;
	UPDATE TAB SET v = 'kept' WHERE k = 3; FETCH ALL FROM c; SELECT k, v FROM TAB ORDER BY k; COMMIT;});
output_as_heap('two cursors, a savepoint rolled back between the writes of a key',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; UPDATE TAB SET v = 'x' WHERE k = 3; SAVEPOINT a;
	DECLARE d CURSOR FOR SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g; FETCH 1 FROM d;
	UPDATE TAB SET v = 'y' WHERE k = 3; ROLLBACK TO a;
	DECLARE e CURSOR FOR SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g; FETCH 1 FROM e;
	UPDATE TAB SET v = 'z' WHERE k = 3; FETCH ALL FROM c; FETCH ALL FROM e; COMMIT;});
output_as_heap('two cursors, a key rewritten across two sends to the owner',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, left(stable_v('TAB', g), 3), stable_seen('TAB') FROM generate_series(1, 4) g;
	FETCH 1 FROM c; UPDATE TAB SET v = 'x' || repeat('i', 70000) WHERE k = 3;
	DECLARE d CURSOR FOR SELECT g, left(stable_v('TAB', g), 3), stable_seen('TAB') FROM generate_series(1, 4) g;
	FETCH 1 FROM d; UPDATE TAB SET v = 'y' || repeat('j', 70000) WHERE k = 3;
	INSERT INTO TAB VALUES (7, repeat('k', 70000)); UPDATE TAB SET v = 'z' WHERE k = 7;
	FETCH ALL FROM c; FETCH ALL FROM d; COMMIT;}, $small);
output_as_heap('a cursor, then PREPARE TRANSACTION and COMMIT PREPARED',
	q{BEGIN; DECLARE c CURSOR FOR SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 2;
	FETCH ALL FROM c; PREPARE TRANSACTION 'p'; COMMIT PREPARED 'p';
	BEGIN; DECLARE c CURSOR FOR SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; UPDATE TAB SET v = 'again' WHERE k = 3; FETCH ALL FROM c; COMMIT;});
output_as_heap('a cursor WITH HOLD whose STABLE function reads, rows changed before the commit',
	q{BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; DELETE FROM TAB WHERE k = 2;
	COMMIT; FETCH ALL FROM c; CLOSE c;
	BEGIN; UPDATE TAB SET v = 'later' WHERE k = 4; SELECT g, stable_v('TAB', g) FROM generate_series(1, 4) g; COMMIT;});
output_as_heap('a cursor WITH HOLD, rows sent to the owner before the commit',
	q{BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT g, length(stable_v('TAB', g)) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; UPDATE TAB SET v = repeat('i', 70000) WHERE k = 3; COMMIT; FETCH ALL FROM c;}, $small);
output_as_heap('a cursor reading two tables, the same keys written in both',
	q{DELETE FROM kv_other; INSERT INTO kv_other SELECT g, 'o' || g FROM generate_series(1, 4) g;
	BEGIN; DECLARE c CURSOR FOR SELECT g, stable_v('TAB', g), stable_v('kv_other', g) FROM generate_series(1, 4) g;
	FETCH 1 FROM c; UPDATE TAB SET v = 'changed' WHERE k = 3; UPDATE kv_other SET v = 'other' WHERE k = 3;
	UPDATE kv_other SET v = 'other2' WHERE k = 4; FETCH ALL FROM c; COMMIT;});

# What is kept, and for how long: nothing in a big transaction without an
# older snapshot (writes sent to the owner as it goes, a DO block's loop);
# one prior for a key rewritten many times under one cursor
my $big = q{
	SET almanac.write_batch_size = 64;
	BEGIN;
	INSERT INTO TAB SELECT g, repeat('b', 200) FROM generate_series(10, 3000) g;
	UPDATE TAB SET v = v || '.' WHERE k > 0;
	DELETE FROM TAB WHERE k > 2500;
	DO $$ BEGIN
		FOR i IN 1..100 LOOP UPDATE TAB SET v = v || '!' WHERE k = 10 + i; END LOOP;
		RAISE NOTICE 'kept without an older snapshot: %', (SELECT count(*)
			FROM pg_backend_memory_contexts WHERE name = 'almanac prior writes');
	END $$;
	COMMIT;};
my %left;
for my $tab ('heap_kv', 'kv')
{
	reset_rows();
	(my $q = $big) =~ s/TAB/$tab/g;
	($ret, $out, $err) = $node->psql('postgres', $q);
	like($err, qr/kept without an older snapshot: 0/,
		'a big transaction whose writes go to the owner early keeps nothing without an older snapshot')
		if $tab eq 'kv';
	$left{$tab} = $node->safe_psql('postgres', "SELECT count(*), sum(length(v)) FROM $tab");
}
is($left{kv}, $left{heap_kv}, "the big transaction wrote the heap's rows ($left{heap_kv})");

sub kept_bytes_after
{
	my ($n) = @_;
	reset_rows();
	my ($ret, $out, $err) = $node->psql('postgres', qq{
		BEGIN;
		DECLARE c CURSOR FOR SELECT k, v FROM kv WHERE k = 3;
		DO \$\$ BEGIN FOR i IN 1..$n LOOP UPDATE kv SET v = v || '!' WHERE k = 3; END LOOP; END \$\$;
		SELECT total_bytes FROM pg_backend_memory_contexts WHERE name = 'almanac prior writes';
		FETCH ALL FROM c;
		COMMIT;});
	return $out;
}
# a key written once under a cursor keeps one prior: its record entry is
# sized for one write, not four (a SELECT f() whose f loads rows keeps one
# prior per key, its caller's snapshot being older)
reset_rows();
($ret, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	DECLARE c CURSOR FOR SELECT k, v FROM kv WHERE k = 3;
	INSERT INTO kv SELECT g, 'b' FROM generate_series(10, 4009) g;
	SELECT round(sum(total_bytes) / 4000.0) FROM pg_backend_memory_contexts
		WHERE name = 'almanac prior writes';
	COMMIT;});
my ($per_key) = $out =~ /^(\d+)$/m;
cmp_ok($per_key, '<', 260, "a key written once under a cursor keeps under 260 bytes ($per_key)");

my ($once) = kept_bytes_after(1) =~ /^(\d+)$/m;
my ($many) = kept_bytes_after(300) =~ /^(\d+)$/m;
ok(defined $once && $once > 0, 'a write under a cursor keeps its prior');
is($many, $once, 'a key rewritten 300 times under one cursor keeps one prior (as many bytes as once)');
like(kept_bytes_after(300), qr/^3\|a3$/m, 'the cursor reads the row as of its declaration');

# Priors taken at the sends of a long load run from a query
# (almanac_nested_ship_end): thousands of keys per send (more than one
# MultiGet's chunk), stored keys rewritten and deleted, new keys inserted,
# two column families in one send (a loop's statements write both tables in
# turn), keys rewritten across sends.  Cursors declared before it read by
# key and by range through STABLE functions (their snapshot's): they must
# see every row as it was.
$node->safe_psql('postgres', q{
	CREATE TABLE heap_kv_two (k bigint PRIMARY KEY, v text);
	CREATE FOREIGN TABLE kv_two (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv_two', key_columns 'k');
	CREATE FUNCTION stable_sum(tab regclass) RETURNS text LANGUAGE plpgsql STABLE
		AS $$ DECLARE r text; BEGIN
			EXECUTE format('SELECT count(*) || '':'' || sum(length(v)) || '':'' || sum(k)
				|| '':'' || count(*) FILTER (WHERE v = ''loop'') FROM %s WHERE k > 0', tab) INTO r;
			RETURN r; END $$;
	CREATE FUNCTION load_two(tab regclass, two regclass) RETURNS int LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN
			EXECUTE format('UPDATE %s SET v = v || ''!'' WHERE k > 0', tab);
			EXECUTE format('DELETE FROM %s WHERE k %% 7 = 0', tab);
			EXECUTE format('INSERT INTO %s SELECT g, repeat(''n'', 40) FROM generate_series(3001, 6000) g', tab);
			FOR i IN 1..1500 LOOP
				EXECUTE format('UPDATE %s SET v = ''loop'' WHERE k = $1', two) USING i * 2;
				EXECUTE format('INSERT INTO %s VALUES ($1, ''loop'')', tab) USING 6000 + i;
			END LOOP;
			RETURN 0; END $$;
});
output_as_heap('cursors over a load run from a query, thousands of keys of two column families sent in several batches',
	q{DELETE FROM TAB_two; INSERT INTO TAB_two SELECT g, repeat('t', 40) FROM generate_series(1, 3000) g;
	INSERT INTO TAB SELECT g, repeat('o', 40) FROM generate_series(5, 3000) g;
	BEGIN;
	DECLARE c CURSOR FOR SELECT g, stable_v('TAB', g), stable_v('TAB_two', g) FROM generate_series(1, 7500, 97) g;
	DECLARE e CURSOR FOR SELECT g, stable_sum('TAB'), stable_sum('TAB_two') FROM generate_series(1, 2) g;
	FETCH 2 FROM c; FETCH 1 FROM e;
	SELECT load_two('TAB', 'TAB_two');
	FETCH ALL FROM c; FETCH ALL FROM e;
	SELECT stable_sum('TAB'), stable_sum('TAB_two');
	COMMIT;
	SELECT stable_sum('TAB_two');}, 'SET almanac.write_batch_size = 128;');

# Sends of priors, more cases against the heap (each function call is a
# query: the statements it runs write under the cursors' older snapshots):
# a savepoint open (no merge into an empty batch takes the statement's batch
# whole) and rolled back; keys moved (a delete and an insert each); keys
# inserted and deleted; loads that fail after their sends, caught;
# savepoints released and rolled back around sends; a send per statement.
# (A statement that frees a key and takes it again, so that its batch's
# records hold two puts of it, cannot be compared: the heap refuses or not
# (23505) by its physical order.)
$node->safe_psql('postgres', q{
	CREATE FUNCTION stable_md5(tab regclass) RETURNS text LANGUAGE plpgsql STABLE
		AS $$ DECLARE r text; BEGIN
			EXECUTE format('SELECT count(*) || '':'' || md5(coalesce(string_agg(k || v, '','' ORDER BY k), ''''))
				FROM %s WHERE k > -1000000', tab) INTO r;
			RETURN r; END $$;
	CREATE FUNCTION run(sql text) RETURNS int LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN EXECUTE sql; RETURN 0; END $$;
	CREATE FUNCTION run_caught(sql text) RETURNS text LANGUAGE plpgsql VOLATILE
		AS $$ BEGIN EXECUTE sql; RETURN 'ok';
			EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$;
});
my $cur_two = q{DELETE FROM TAB_two; INSERT INTO TAB_two SELECT g, repeat('t', 30) FROM generate_series(1, 3000) g;
	INSERT INTO TAB SELECT g, repeat('o', 30) FROM generate_series(5, 3000) g;
	BEGIN;
	DECLARE c CURSOR FOR SELECT g, stable_v('TAB', g), stable_v('TAB_two', g) FROM generate_series(1, 9000, 37) g;
	DECLARE e CURSOR FOR SELECT g, stable_md5('TAB'), stable_md5('TAB_two') FROM generate_series(1, 3) g;
	FETCH 1 FROM c; FETCH 1 FROM e;};
my $end_two = q{FETCH ALL FROM c; FETCH ALL FROM e; SELECT stable_md5('TAB'), stable_md5('TAB_two');
	COMMIT; SELECT stable_md5('TAB_two');};

output_as_heap('a load run from a query with a savepoint open, rolled back, then others',
	qq{$cur_two SAVEPOINT s;
	SELECT run('UPDATE TAB SET v = v || ''!'' WHERE k > 0');
	FETCH 40 FROM c; FETCH 1 FROM e;
	ROLLBACK TO s;
	FETCH 40 FROM c;
	SELECT run('UPDATE TAB_two SET v = ''two'' WHERE k % 3 = 0');
	SELECT run('INSERT INTO TAB SELECT g, ''new'' FROM generate_series(3001, 6000) g');
	$end_two}, $small);

output_as_heap('keys moved by a statement under cursors, sent in several batches',
	qq{$cur_two
	SELECT run('UPDATE TAB SET k = k + 100000 WHERE k % 2 = 0');
	FETCH 100 FROM c; FETCH 1 FROM e;
	SELECT run('UPDATE TAB SET v = v || ''2'' WHERE k % 3 = 0');
	$end_two}, $small);

output_as_heap('rows inserted and deleted by functions under cursors, with sends between',
	qq{$cur_two
	SELECT run('INSERT INTO TAB SELECT g, ''x'' FROM generate_series(3001, 5000) g');
	SELECT run('DELETE FROM TAB WHERE k % 2 = 0');
	SELECT run('UPDATE TAB_two SET v = v || k');
	FETCH 100 FROM c; FETCH 1 FROM e;
	SELECT run('DELETE FROM TAB_two WHERE k % 5 = 0');
	$end_two}, $small);

output_as_heap('exception blocks catch loads failed after their sends, the next loads send',
	qq{$cur_two
	SELECT run_caught('UPDATE TAB SET v = v || ''?'' WHERE k > 0; SELECT 1/0');
	SELECT run_caught('UPDATE TAB SET v = ''x'' || k WHERE k > 10; UPDATE TAB SET k = 1 WHERE k = 2');
	FETCH 60 FROM c; FETCH 1 FROM e;
	SELECT run('UPDATE TAB SET v = v || ''#'' WHERE k % 2 = 1');
	SELECT run('UPDATE TAB_two SET v = v || ''#'' WHERE k % 2 = 0');
	$end_two}, $small);

output_as_heap('savepoints rolled back and released around sends, writes after each',
	qq{$cur_two
	SELECT run('UPDATE TAB SET v = ''a'' WHERE k < 1500');
	SAVEPOINT s1; SELECT run('UPDATE TAB SET v = ''b'' WHERE k > 500'); FETCH 30 FROM c;
	SAVEPOINT s2; SELECT run('UPDATE TAB_two SET v = ''c'' WHERE k > 100'); ROLLBACK TO s2;
	RELEASE s1; FETCH 30 FROM c; FETCH 1 FROM e;
	SELECT run('UPDATE TAB SET v = ''d'' WHERE k > 2000');
	SELECT run('UPDATE TAB_two SET v = ''e'' WHERE k < 2000');
	$end_two}, $small);

output_as_heap('a DO block under cursors, a send after each statement',
	qq{$cur_two
	DO \$\$ BEGIN FOR i IN 1..40 LOOP
		UPDATE TAB SET v = repeat('l', 70000) || i WHERE k = i * 7;
		UPDATE TAB_two SET v = 'loop' || i WHERE k = i * 5;
		UPDATE TAB SET v = 'again' || i WHERE k = i * 7;
	END LOOP; END \$\$;
	$end_two}, $small);

# The array of the keys a send names (almanac_nested_ship_key) grows by
# almanac_grow_array: a growth that fails (out of memory; the fault point
# grow_array_error fails it as that does) is an ordinary ERROR that an
# exception block catches, and leaves the capacity as it was.  Grown by
# hand, the capacity was doubled before the allocation: after a failure
# caught, the next send wrote its keys past the end of the array.  The first
# transaction grows the arrays of open readers and writers and of savepoints
# (an exception block's), which the second must not.
$node->safe_psql('postgres', q{
	DELETE FROM kv; INSERT INTO kv SELECT g, repeat('o', 30) FROM generate_series(1, 3000) g;});
($ret, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	DECLARE c CURSOR FOR SELECT g, stable_v('kv', g) FROM generate_series(1, 3) g;
	FETCH 1 FROM c; SELECT run('UPDATE kv SET v = ''w'' WHERE k = 1'); FETCH ALL FROM c;
	SELECT run_caught('UPDATE kv SET v = ''w'' WHERE k = 2');
	ROLLBACK;
	SET almanac.write_batch_size = 64;
	BEGIN;
	DECLARE c CURSOR FOR SELECT g, left(stable_v('kv', g), 5) FROM generate_series(1, 3000, 1000) g;
	FETCH 1 FROM c;
	SET almanac.fault_point = 'grow_array_error';
	SELECT run_caught('UPDATE kv SET v = ''lost'' WHERE k > 0');
	RESET almanac.fault_point;
	SELECT run('UPDATE kv SET v = ''kept'' || k WHERE k > 0');
	FETCH ALL FROM c;
	SELECT count(*) FILTER (WHERE v = 'kept' || k), count(*) FILTER (WHERE v = 'lost') FROM kv;
	COMMIT;});
is($ret, 0, 'a failed growth of the keys sent, caught: the transaction goes on') or diag($err);
like($out, qr/^53200$/m, 'the growth failed as an allocation that fails does (53200, caught)');
like($out, qr/^1001\|ooooo\n2001\|ooooo$/m, 'the cursor reads the rows as of its declaration after the next sends');
like($out, qr/^3000\|0$/m, 'every row has the write after the failure, none the one undone');
is($node->safe_psql('postgres', "SELECT count(*) FROM kv WHERE v = 'kept' || k"), '3000',
	'and they are committed');

$node->stop;
done_testing();
