# What may change a key's stored value besides an APPLY the owner wrote, and
# so must keep the owner from checking the next write of the key against the
# value its own last write left in the shared row cache (src/store/owner.c,
# apply_intents; src/kv/sharedcache.h, almanac_shared_cache_lookup_written):
# a bulk load's ingested file (a new generation), the freeze sweep's rewrite
# (the write log), the same key bytes written in another column family (one
# cache slot per key hash), a column family dropped and created again under
# its name, and a shared row cache of size 0.  A stale entry there would be
# merged into and written back: a spurious serialization failure, a lost
# version, a duplicate key where there is none.  At the end a point lookup
# through the shared row cache and one that reads the store agree on every key.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

# The sessions leave the shared row cache alone (almanac.shared_row_cache
# off): a backend's read of a key would replace the owner's entry with its
# own, which the owner does not use, and hide a stale one.
my $node = almanac_node('owner_cached_writes',
	"max_prepared_transactions = 2\nalmanac.shared_row_cache = off\n");
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 10) g;
});

sub checked
{
	my ($n) = @_;
	my ($cache, $store) = split /\|/, ($n // $node)->safe_psql('postgres',
		'SELECT checked_in_cache, checked_in_store FROM almanac.commit_stats()');
	return ($cache, $store);
}

# sql's checks against the cache and against RocksDB
sub step
{
	my ($sql, $dcache, $dstore, $what, $n) = @_;
	$n //= $node;
	my ($c0, $s0) = checked($n);
	$n->safe_psql('postgres', $sql);
	my ($c1, $s1) = checked($n);
	is($c1 - $c0, $dcache, "$what: checked against the cache");
	is($s1 - $s0, $dstore, "$what: checked against RocksDB");
}

sub versions
{
	my ($cf, $prefix, $k) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(status || CASE WHEN deleted THEN ' deleted' ELSE '' END, ',' ORDER BY version)
		  FROM almanac.value_versions('almanac_store', '$cf', almanac.make_key('$prefix', row(${k}::bigint)))});
}

# --- a bulk load over keys the owner wrote last, with aborted versions only
$node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO kv SELECT g, 'never' FROM generate_series(100, 104) g;
	PREPARE TRANSACTION 'p';
	ROLLBACK PREPARED 'p';
});
is(versions('kv', 'kv', 101), 'aborted', 'k = 101: the prepared insert, rolled back');
step("COPY kv FROM STDIN;\n" . join('', map { "$_\tbulk$_\n" } 100 .. 104) . "\\.\n",
	0, 0, 'the COPY: by a file the owner ingests, no APPLY');
is(versions('kv', 'kv', 101), 'committed', 'k = 101: the file\'s version replaced the aborted one');
step(q{UPDATE kv SET v = v || '+' WHERE k = 101}, 0, 1,
	'an update of a key loaded over the owner\'s write');
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 101'), 'bulk101+', 'its value');
is(versions('kv', 'kv', 101), 'committed,frozen', 'k = 101: the update over the loaded version');
my ($rc, $out, $err) = $node->psql('postgres', q{INSERT INTO kv VALUES (102, 'dup')});
like($err, qr/duplicate key/, 'an insert of a loaded key is a duplicate');

# the load made a new generation: the entries of every key are gone
step(q{UPDATE kv SET v = v || 'a' WHERE k = 1}, 0, 1, 'an update of a key written before the load');

# --- the freeze sweep rewrites a value the owner wrote last
step(q{UPDATE kv SET v = v || 'b' WHERE k = 1}, 1, 0, 'an update of a key the owner wrote');
cmp_ok($node->safe_psql('postgres', 'SELECT almanac.freeze_sweep()'), '>', 0,
	'the sweep rewrote values');
step(q{UPDATE kv SET v = v || 'c' WHERE k = 1}, 0, 1, 'an update of a key the sweep rewrote');
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 1'), 'v1abc', 'its value');
is(versions('kv', 'kv', 1), 'committed,frozen', 'k = 1: the new version over the frozen one');

# --- the same key bytes in two column families: one cache slot
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE e1 (k bigint, v text)
		SERVER almanac_store OPTIONS (column_family 'e1', key_prefix 'e', key_columns 'k');
	CREATE FOREIGN TABLE e2 (k bigint, v text)
		SERVER almanac_store OPTIONS (column_family 'e2', key_prefix 'e', key_columns 'k');
	INSERT INTO e1 VALUES (1, 'a');
	INSERT INTO e2 VALUES (1, 'b');
});
step(q{UPDATE e1 SET v = v || '1' WHERE k = 1}, 0, 1, 'e1 after e2\'s write of the same key');
step(q{UPDATE e2 SET v = v || '2' WHERE k = 1}, 0, 1, 'e2 after e1\'s');
step(q{BEGIN; UPDATE e1 SET v = v || 'x' WHERE k = 1; UPDATE e2 SET v = v || 'y' WHERE k = 1; COMMIT},
	1, 1, 'both in one batch (e1 reads the store: the slot holds e2\'s entry)');
# one slot for both: which of the two the batch leaves there is not said
$node->safe_psql('postgres', q{UPDATE e2 SET v = v || 'z' WHERE k = 1});
step(q{UPDATE e2 SET v = v || 'w' WHERE k = 1}, 1, 0, 'e2 again: its own entry');
step(q{UPDATE e1 SET v = v || 'w' WHERE k = 1}, 0, 1, 'e1: never e2\'s entry');
is($node->safe_psql('postgres',
	q{SELECT (SELECT v FROM e1 WHERE k = 1) || ' ' || (SELECT v FROM e2 WHERE k = 1)}),
	'a1xw b2yzw', 'each column family its own value');

# --- a column family dropped and created again under its name
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE d (k bigint, v text)
		SERVER almanac_store OPTIONS (column_family 'dd', key_prefix 'dd', key_columns 'k');
	INSERT INTO d VALUES (1, 'old');
	UPDATE d SET v = 'older' WHERE k = 1;
});
my $old_id = $node->safe_psql('postgres',
	q{SELECT id FROM almanac.column_families() WHERE column_family = 'dd'});
$node->safe_psql('postgres', q{
	DROP FOREIGN TABLE d;
	SELECT almanac.drop_column_family('dd');
	CREATE FOREIGN TABLE d (k bigint, v text)
		SERVER almanac_store OPTIONS (column_family 'dd', key_prefix 'dd', key_columns 'k');
});
step(q{INSERT INTO d VALUES (1, 'new')}, 0, 1, 'an insert into the new column family');
isnt($node->safe_psql('postgres', q{SELECT id FROM almanac.column_families() WHERE column_family = 'dd'}),
	$old_id, 'the new column family has another id');
is($node->safe_psql('postgres', 'SELECT v FROM d WHERE k = 1'), 'new', 'its value');
is(versions('dd', 'dd', 1), 'committed', 'one version: nothing of the dropped one');

# --- every key: a lookup through the shared row cache, and one of the store
for my $t (['kv', 'k BETWEEN 1 AND 10 OR k BETWEEN 100 AND 104'], ['e1', 'true'], ['e2', 'true'], ['d', 'true'])
{
	my ($table, $where) = @$t;
	my @keys = split /\n/, $node->safe_psql('postgres', "SELECT k FROM $table WHERE $where ORDER BY k");
	my ($cached, $stored) = ('', '');
	for my $k (@keys)
	{
		$cached .= $node->safe_psql('postgres',
			"SET almanac.shared_row_cache = on; SELECT v FROM $table WHERE k = $k") . "\n";
		$stored .= $node->safe_psql('postgres',
			"SET almanac.shared_row_cache = off; SELECT v FROM $table WHERE k = $k") . "\n";
	}
	is($cached, $stored, "$table: the shared row cache agrees with the store on every key");
}
$node->stop;

# --- no shared row cache: every check reads the store
my $none = almanac_node('owner_cached_none', "almanac.shared_row_cache_size = 0\n");
$none->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO kv VALUES (1, 'a');
});
step(q{UPDATE kv SET v = v || 'b' WHERE k = 1}, 0, 1, 'no shared row cache', $none);
step(q{UPDATE kv SET v = v || 'c' WHERE k = 1}, 0, 1, 'no shared row cache, again', $none);
is($none->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 1'), 'abc', 'its value');
$none->stop;
done_testing();
