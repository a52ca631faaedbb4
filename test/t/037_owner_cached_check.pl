# The owner checks a batch's intents against the value its own last write of
# the key left in the shared row cache (src/kv/sharedcache.h,
# almanac_shared_cache_lookup_written; src/store/owner.c, apply_intents)
# instead of reading RocksDB, and only against that: after a restart (a new
# generation), for a value a backend's read put there, and for a value too
# large for a slot it reads the store.  almanac.commit_stats() counts both.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('owner_cached_check');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 10) g;
});

sub checked
{
	my ($cache, $store) = split /\|/, $node->safe_psql('postgres',
		'SELECT checked_in_cache, checked_in_store FROM almanac.commit_stats()');
	return ($cache, $store);
}

sub step
{
	my ($sql, $dcache, $dstore, $what) = @_;
	my ($c0, $s0) = checked();
	$node->safe_psql('postgres', $sql);
	my ($c1, $s1) = checked();
	is($c1 - $c0, $dcache, "$what: checked against the cache");
	is($s1 - $s0, $dstore, "$what: checked against RocksDB");
}

# the INSERT's write put each value: the next writes of those keys need no Get
step(q{UPDATE kv SET v = 'a' WHERE k = 1}, 1, 0, 'an update of a key the owner wrote');
step(q{UPDATE kv SET v = v || 'b' WHERE k = 1}, 1, 0, 'and again');
step(q{BEGIN; UPDATE kv SET v = v || 'c' WHERE k = 1; UPDATE kv SET v = 'x' WHERE k = 2; COMMIT},
	2, 0, 'two keys in one batch');
is($node->safe_psql('postgres', 'SELECT k, v FROM kv WHERE k IN (1, 2) ORDER BY k'),
	"1|abc\n2|x", 'the values');

# a new generation at the owner's start: nothing is taken from before it
$node->restart;
step(q{UPDATE kv SET v = v || 'd' WHERE k = 1}, 0, 1, 'after a restart');
step(q{UPDATE kv SET v = v || 'e' WHERE k = 1}, 1, 0, 'then the owner\'s own write');
# a backend's read puts the value, which the owner does not use
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 3'), 'v3', 'a read of k = 3');
is($node->safe_psql('postgres',
	'SELECT puts > 0 FROM almanac.shared_row_cache_stats()'), 't', 'the backend put it');
step(q{UPDATE kv SET v = v || 'f' WHERE k = 3}, 0, 1, 'a key a backend put');
step(q{UPDATE kv SET v = v || 'g' WHERE k = 3}, 1, 0, 'then the owner\'s own write');

# a value larger than a slot is not kept
step(q{UPDATE kv SET v = 'w' WHERE k = 4}, 0, 1, 'a key last written before the restart');
step(q{UPDATE kv SET v = repeat('y', 3000) WHERE k = 4}, 1, 0, 'a key the owner wrote');
step(q{UPDATE kv SET v = v || 'z' WHERE k = 4}, 0, 1, 'a value too large for a slot');

# deleted, inserted again, and a rolled-back write
step(q{DELETE FROM kv WHERE k = 5}, 0, 1, 'a delete, the first write since the restart');
step(q{INSERT INTO kv VALUES (5, 'again')}, 1, 0, 'an insert over the deleted key');
$node->safe_psql('postgres', q{BEGIN; UPDATE kv SET v = 'never' WHERE k = 5; ROLLBACK});
step(q{UPDATE kv SET v = v || '!' WHERE k = 5}, 1, 0, 'after a rollback');

is($node->safe_psql('postgres', 'SELECT k, v FROM kv WHERE k IN (1, 3, 5) ORDER BY k'),
	"1|abcde\n3|v3fg\n5|again!", 'every write counted');
is($node->safe_psql('postgres', 'SELECT length(v) FROM kv WHERE k = 4'), '3001',
	'the large value');

$node->stop;
done_testing();
