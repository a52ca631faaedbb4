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

my $node = almanac_node('nested_writes');
$node->safe_psql('postgres', q{
	CREATE TABLE heap_kv (k bigint PRIMARY KEY, v text);
	CREATE FOREIGN TABLE kv (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv', key_columns 'k');
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

$node->stop;
done_testing();
