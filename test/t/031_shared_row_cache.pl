# The shared row cache (src/kv/sharedcache.h): a value one backend's point
# lookup read, or the owner wrote, is a hit for every other backend, new
# connections included; a committed write of the key replaces it, read
# without a catch-up; and a backend whose read races with
# the owner's write of the key never leaves the older value behind in the
# cache.  The races are made to last by two pause points between the Get and
# the put: before the backend takes its ticket (the write log must name the
# write) and after its check of the log (the partition's invalidation count
# must have moved).  Without either guard the next session reads the older
# value from the cache.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('shared_row_cache');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 10) g;
});

sub stats
{
	my $line = $node->safe_psql('postgres',
		'SELECT slots, hits, misses, puts, invalidated FROM almanac.shared_row_cache_stats()');
	my %s;
	@s{qw(slots hits misses puts invalidated)} = split /\|/, $line;
	return \%s;
}

# --- shared between sessions ---------------------------------------------------
my $s0 = stats();
is($s0->{slots}, 32 * 1024 * 1024 / 512 + 32 * 1024 * 1024 / 2048,
	'the default size: 64MB, half in 512-byte slots, half in 2kB slots');
cmp_ok($s0->{puts}, '>=', 10, 'the owner put the values it wrote (write-through)');
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 1'), 'v1', 'a first lookup');
my $s1 = stats();
is($s1->{hits} - $s0->{hits}, 1, 'answered from the shared cache');
is($s1->{misses}, $s0->{misses}, 'without a miss');
# a bulk load starts a new generation of the store's entries: what was kept
# before is read again, and put by the backend that read it
$node->safe_psql('postgres', q{COPY kv (k) FROM PROGRAM 'seq 500 599'});
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 1'), 'v1', 'after a bulk load');
my $s2 = stats();
is($s2->{misses} - $s1->{misses}, 1, 'a miss: the older generation does not answer');
is($s2->{puts} - $s1->{puts}, 1, 'the backend put the value it read');
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 1'), 'v1',
	'a new connection reads the same value');
my $s3 = stats();
is($s3->{hits} - $s2->{hits}, 1, 'from the shared cache: a hit, no Get');
is($s3->{puts}, $s2->{puts}, 'and no second put');
is($node->safe_psql('postgres', 'SELECT k, v FROM kv WHERE k = ANY (ARRAY[1, 4, 5]) ORDER BY k'),
	"1|v1\n4|v4\n5|v5", 'a lookup of several keys mixes hits and a MultiGet');
is(stats()->{puts} - $s3->{puts}, 2, 'the MultiGet\'s values are put too');

# --- a committed write replaces the value ----------------------------------------
$node->safe_psql('postgres', q{UPDATE kv SET v = 'w1' WHERE k = 1});
my $s4 = stats();
cmp_ok($s4->{invalidated} - $s3->{invalidated}, '>=', 1, 'the owner removed the written key before the write');
cmp_ok($s4->{puts} - $s3->{puts}, '>=', 1, 'and put its new value after it');
is($node->safe_psql('postgres', q{
	SELECT v FROM kv WHERE k = 1;
	SELECT catch_ups FROM almanac.reader_stats();}), "w1\n0",
	'a new connection reads the new value without catching up');
$node->safe_psql('postgres', q{DELETE FROM kv WHERE k = 4});
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv WHERE k = 4'), '0', 'a deleted key is gone');
is($node->safe_psql('postgres', q{
	BEGIN ISOLATION LEVEL REPEATABLE READ;
	SELECT v FROM kv WHERE k = 5;
	COMMIT;}), 'v5', 'a hit judged by the reader\'s snapshot');
my $rr = $node->background_psql('postgres');
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is($rr->query_safe('SELECT v FROM kv WHERE k = 5'), 'v5', 'a REPEATABLE READ transaction reads a value');
$node->safe_psql('postgres', q{UPDATE kv SET v = 'w5' WHERE k = 5});
is($rr->query_safe('SELECT v FROM kv WHERE k = 5'), 'v5',
	'and after another transaction committed a new one, which the cache holds, still its own');
$rr->query_safe('COMMIT');
is($rr->query_safe('SELECT v FROM kv WHERE k = 5'), 'w5', 'a new snapshot reads the new value');
$rr->quit;

# --- the races ---------------------------------------------------------------------
# A reads key $k: a miss, a Get of the value 'v$k'; it pauses at $point; B
# commits a new value; A goes on (and answers the value its snapshot saw);
# then a new session must read B's value.
sub race
{
	my ($point, $k) = @_;
	# a new generation: the key is no longer in the cache, so the reader misses
	$node->safe_psql('postgres', qq{COPY kv (k) FROM PROGRAM 'seq ${k}000 ${k}099'});
	my $log = -s $node->logfile;
	my $a = $node->background_psql('postgres');
	$a->query_safe("SET almanac.fault_point = '$point'");
	$a->query_until(qr/started/, qq{
\\echo started
SELECT v FROM kv WHERE k = $k;
});
	ok($node->wait_for_log(qr/fault point "$point" reached/, $log), "$point: the reader pauses");
	$node->safe_psql('postgres', "UPDATE kv SET v = 'new$k' WHERE k = $k");
	$a->quit;
	is($node->safe_psql('postgres', "SELECT v FROM kv WHERE k = $k"), "new$k",
		"$point: the next session reads the committed value, not the one the paused reader read");
	is($node->safe_psql('postgres', "SELECT v FROM kv WHERE k = $k"), "new$k", "$point: and again");
}
race('shared_cache_before_ticket', 2);
race('shared_cache_before_put', 3);

# --- a transaction that sent writes mid-transaction reads around the cache -----------
$node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 6');
is($node->safe_psql('postgres', q{
	SET almanac.write_batch_size = 64;
	BEGIN;
	INSERT INTO kv SELECT g, repeat('x', 1000) FROM generate_series(1000, 1300) g;
	SELECT hits + misses AS before FROM almanac.shared_row_cache_stats() \gset
	SELECT v FROM kv WHERE k = 6;
	SELECT hits + misses - :before FROM almanac.shared_row_cache_stats();
	COMMIT;}), "v6\n0", 'after sending writes mid-transaction, lookups do not consult the shared cache');

# --- the owner's removal of an entry and another partition's put -------------------
# The map's free lists are shared by its partitions: an entry the owner
# removes may be taken at once by a put holding another partition's lock.
# The owner must not read the removed entry's slot after that: it would free
# the slot of the other key, still mapped, for the next put to overwrite.
# Made to happen: a cache of four small slots (and a large one), key 'a'
# cached, the owner paused
# right after removing it (shared_cache_after_remove) while a session puts a
# key whose entry comes from the same free list (its dynahash hash code is
# 'a''s modulo 32, the free lists, not modulo 128, the partitions; PostgreSQL's
# hash_bytes, below, gives the code of the tag: the key's 64-bit hash, which
# hashtextextended computes for a key that is text, and the store's index, 0
# here).
sub rot32 { my ($x, $k) = @_; return (($x << $k) | ($x >> (32 - $k))) & 0xffffffff; }

sub hash_bytes_16
{
	my @k = @_;                      # four 32-bit words
	my $m = 0xffffffff;
	my ($a, $b, $c) = ((0x9e3779b9 + 16 + 3923095) & $m) x 3;
	$a = ($a + $k[0]) & $m; $b = ($b + $k[1]) & $m; $c = ($c + $k[2]) & $m;
	$a = ($a - $c) & $m; $a ^= rot32($c, 4);  $c = ($c + $b) & $m;
	$b = ($b - $a) & $m; $b ^= rot32($a, 6);  $a = ($a + $c) & $m;
	$c = ($c - $b) & $m; $c ^= rot32($b, 8);  $b = ($b + $a) & $m;
	$a = ($a - $c) & $m; $a ^= rot32($c, 16); $c = ($c + $b) & $m;
	$b = ($b - $a) & $m; $b ^= rot32($a, 19); $a = ($a + $c) & $m;
	$c = ($c - $b) & $m; $c ^= rot32($b, 4);  $b = ($b + $a) & $m;
	$a = ($a + $k[3]) & $m;
	$c ^= $b; $c = ($c - rot32($b, 14)) & $m;
	$a ^= $c; $a = ($a - rot32($c, 11)) & $m;
	$b ^= $a; $b = ($b - rot32($a, 25)) & $m;
	$c ^= $b; $c = ($c - rot32($b, 16)) & $m;
	$a ^= $c; $a = ($a - rot32($c, 4)) & $m;
	$b ^= $a; $b = ($b - rot32($a, 14)) & $m;
	$c ^= $b; $c = ($c - rot32($b, 24)) & $m;
	return $c;
}

# the check of the function above: hashtext of 16 bytes is hash_bytes of them
is(hash_bytes_16(unpack('V4', 'abcdefghijklmnop')),
	$node->safe_psql('postgres', q{SELECT hashtext('abcdefghijklmnop')::bigint & 4294967295}),
	'hash_bytes as PostgreSQL computes it');

# the hash codes of the tags of the keys of rows 'a', 'b0', 'b1', ... of kt
my @cands = ('a', map { "b$_" } 0 .. 1999);
my %code;
for my $row (split /\n/, $node->safe_psql('postgres',
	'SELECT k, h & 4294967295, (h >> 32) & 4294967295 FROM unnest(ARRAY[' .
	join(',', map { "'$_'" } @cands) . q{]) k,
	hashtextextended(convert_from(almanac.make_key('kt', row(k)), 'SQL_ASCII'), 0) h}))
{
	my ($k, $lo, $hi) = split /\|/, $row;
	$code{$k} = hash_bytes_16($lo, $hi, 0, 0);
}
my ($other) = grep { $_ ne 'a' && $code{$_} % 32 == $code{a} % 32 && $code{$_} % 128 != $code{a} % 128 } @cands;
ok(defined $other, "a key whose entry comes from 'a''s free list, in another partition: $other");

$node->append_conf('postgresql.conf', "almanac.shared_row_cache_size = '4kB'\n");
$node->restart;
is(stats()->{slots}, 5, 'four small slots and a large one');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kt (k text, v text) SERVER almanac_store
		OPTIONS (key_prefix 'kt', key_columns 'k');
	INSERT INTO kt VALUES ('z', 'z');});
sub kt_get
{
	my ($k) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM kt WHERE k = '$k'");
}
# 'a' cached by the session that puts the other key later, its reader open
my $reader = $node->background_psql('postgres');
$reader->query_safe(q{SELECT count(*) FROM kt WHERE k = 'a'});
is(stats()->{puts}, 2, "'z' written through, 'a' looked up: two small slots taken");
$node->safe_psql('postgres', q{ALTER SYSTEM SET almanac.fault_point = 'shared_cache_after_remove'; SELECT pg_reload_conf();});
my $log = -s $node->logfile;
my $writer = $node->background_psql('postgres');
$writer->query_until(qr/started/, q{
\echo started
INSERT INTO kt VALUES ('a', 'a');
});
ok($node->wait_for_log(qr/fault point "shared_cache_after_remove" reached/, $log),
	'the owner removed the entry of the written key, and pauses');
my $s6 = stats();
$reader->query_safe("SELECT count(*) FROM kt WHERE k = '$other'");
is(stats()->{puts} - $s6->{puts}, 1, 'meanwhile another partition\'s key is put');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET almanac.fault_point; SELECT pg_reload_conf();});
$writer->quit;
# the owner's put of 'a' takes the last free slot; the next put after it
# takes a free slot: the one 'a''s entry had, not the other key's
kt_get('c');
my $s7 = stats();
is(kt_get($other), '0', 'the other key, absent');
my $s8 = stats();
is($s8->{hits} - $s7->{hits}, 1, 'is still a hit: its slot was not freed under it');
$reader->quit;

# --- free slots before the clock sweep -----------------------------------------------
# 64kB: 64 small slots and 16 large ones.  Keys that fit are never let go: a
# put takes a free slot of its size, a small value a free large slot when no
# small one is left, and the sweep evicts only when no slot is free.  Before,
# the hand took whatever came first, a free slot or a key not read since it
# passed: the 65th small value evicted a key while the large slots stood
# empty, and keys rewritten again and again (each write frees the old slot
# and takes another) evicted keys while slots were free, which made a tenth
# of the router benchmark's random lookups miss (docs/benchmarks.md, "Seventh
# pass").
$node->append_conf('postgresql.conf', "almanac.shared_row_cache_size = '64kB'\n");
$node->restart;
sub cache_line
{
	return $node->safe_psql('postgres',
		'SELECT slots, used, hits, misses, evicted FROM almanac.shared_row_cache_stats()');
}
# every key of kf looked up once, each in its own statement: hits and misses
sub kf_read_all
{
	my ($n) = @_;
	my $before = cache_line();
	$node->safe_psql('postgres', qq{DO \$\$ DECLARE c bigint; BEGIN
		FOR i IN 1..$n LOOP SELECT count(*) INTO c FROM kf WHERE k = i; END LOOP; END \$\$});
	my (undef, undef, $h0, $m0) = split /\|/, $before;
	my (undef, undef, $h1, $m1) = split /\|/, cache_line();
	return ($h1 - $h0) . '|' . ($m1 - $m0);
}
like(cache_line(), qr/^80\|0\|/, '64kB: 64 small slots and 16 large ones, all free');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kf (k int, v text) SERVER almanac_store
		OPTIONS (key_prefix 'kf', key_columns 'k');
	INSERT INTO kf SELECT g, 'v' FROM generate_series(1, 70) g;});
like(cache_line(), qr/^80\|70\|\d+\|\d+\|0$/,
	'70 small values written through: all kept, 6 in large slots, none evicted');
is(kf_read_all(70), '70|0', 'every key is a hit');
foreach my $round (1 .. 6)
{
	$node->safe_psql('postgres', "UPDATE kf SET v = 'w$round'");
}
like(cache_line(), qr/^80\|70\|\d+\|\d+\|0$/,
	'each key rewritten six times: the freed slots taken again, none evicted');
is(kf_read_all(70), '70|0', 'every key is still a hit');
is($node->safe_psql('postgres', "SELECT count(*) FROM kf WHERE v = 'w6'"), '70', 'the newest values');

# --- off ----------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "almanac.shared_row_cache_size = 0\n");
$node->restart;
is(stats()->{slots}, 0, 'almanac.shared_row_cache_size = 0: no cache');
is($node->safe_psql('postgres', 'SELECT v FROM kv WHERE k = 2'), 'new2', 'lookups read the store');
is(stats()->{hits} + stats()->{misses}, 0, 'without it');

$node->stop;
done_testing();
