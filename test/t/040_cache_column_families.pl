# Column families and the shared memory that names them:
#
# - The shared row cache (src/kv/sharedcache.c) tags an entry by store and
#   key hash, not by column family: the same key bytes in two column
#   families (two tables with one key_prefix and different column_family)
#   share a tag and replace each other.  A lookup compares the slot's column
#   family and whole key, so it never answers with the other family's value;
#   the collision costs hits only (each lookup of the other table misses).
# - The column-family list the owner publishes in shared memory (store.h,
#   AlmanacStoreCf) holds at most 64 families with names under 64 bytes; a
#   store with more, or with a longer name (which almanac itself never
#   creates: column_family is at most 63 bytes, but RocksDB's own tools can),
#   is published as not known and its lookups open the secondary instance as
#   before they had the list (almanac.reader_stats().opens), with the same
#   answers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('cache_column_families');

sub stats
{
	my $line = $node->safe_psql('postgres',
		'SELECT hits, misses FROM almanac.shared_row_cache_stats()');
	my %s;
	@s{qw(hits misses)} = split /\|/, $line;
	return \%s;
}

# --- one key in two column families ------------------------------------------------
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE in_a (k bigint, v text) SERVER almanac_store
		OPTIONS (key_prefix 'same', key_columns 'k', column_family 'cf_a');
	CREATE FOREIGN TABLE in_b (k bigint, v text) SERVER almanac_store
		OPTIONS (key_prefix 'same', key_columns 'k', column_family 'cf_b');
	INSERT INTO in_a VALUES (1, 'from a'), (2, 'a2');
	INSERT INTO in_b VALUES (1, 'from b'), (2, 'b2');
});
my $s0 = stats();
my @answers;
# each in a new connection (nothing of the session's own row cache), in turn
foreach my $t (qw(in_a in_b in_a in_b in_b in_a))
{
	push @answers, $t . '=' . $node->safe_psql('postgres', "SELECT v FROM $t WHERE k = 1");
}
is(join(',', @answers),
	'in_a=from a,in_b=from b,in_a=from a,in_b=from b,in_b=from b,in_a=from a',
	'each table reads its own column family\'s value of the same key bytes');
my $s1 = stats();
# the owner's write-through left in_b's value last (one tag for both): in_a
# misses and puts its own, in_b misses and puts back, ..., in_b's second
# lookup in a row hits
is($s1->{hits} - $s0->{hits}, 1, 'the same key in two column families shares one entry: one hit');
is($s1->{misses} - $s0->{misses}, 5, 'and a miss at each change of table');
# a lookup of several keys (MultiGet and hits mixed), and through the router's
# prepared statements, alternating
is($node->safe_psql('postgres', q{
	PREPARE pa(bigint) AS SELECT v FROM in_a WHERE k = $1;
	PREPARE pb(bigint) AS SELECT v FROM in_b WHERE k = $1;
	EXECUTE pa(1); EXECUTE pb(1); EXECUTE pa(2); EXECUTE pb(2); EXECUTE pa(1); EXECUTE pb(1);
	SELECT string_agg(k || v, ',' ORDER BY k) FROM in_a WHERE k IN (1, 2);
	SELECT string_agg(k || v, ',' ORDER BY k) FROM in_b WHERE k IN (1, 2);}),
	"from a\nfrom b\na2\nb2\nfrom a\nfrom b\n1from a,2a2\n1from b,2b2",
	'prepared lookups and lookups of several keys, alternating, too');
# a committed write of one replaces its entry; the other still reads its own
$node->safe_psql('postgres', q{UPDATE in_a SET v = 'new a' WHERE k = 1});
is($node->safe_psql('postgres', 'SELECT v FROM in_b WHERE k = 1'), 'from b',
	'after a write of the key in the other column family');
is($node->safe_psql('postgres', 'SELECT v FROM in_a WHERE k = 1'), 'new a',
	'and the written one reads its new value');
$node->safe_psql('postgres', q{DELETE FROM in_b WHERE k = 1});
is($node->safe_psql('postgres', 'SELECT count(*) FROM in_b WHERE k = 1'), '0',
	'a deleted key is missing in its column family');
is($node->safe_psql('postgres', 'SELECT v FROM in_a WHERE k = 1'), 'new a',
	'and still there in the other');
is($node->safe_psql('postgres', 'SELECT count(*) FROM in_b WHERE k = 1'), '0',
	'and missing again after the other was read');

# --- more column families than the published list holds ----------------------------
# a lookup of a key kept in the shared cache (read once first, in a
# connection of its own), in a new connection: its value, then the secondary
# instances the backend opened
sub lookup_opens
{
	my ($table, $k) = @_;
	$node->safe_psql('postgres', "SELECT v FROM $table WHERE k = $k");
	return $node->safe_psql('postgres',
		"SELECT v FROM $table WHERE k = $k; SELECT opens FROM almanac.reader_stats();");
}

# the store's column families, RocksDB's "default" included
sub ncfs
{
	return 1 + $node->safe_psql('postgres', 'SELECT count(*) FROM almanac.column_families()');
}

$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE probe (k bigint, v text) SERVER almanac_store
		OPTIONS (key_prefix 'probe', key_columns 'k');
	INSERT INTO probe VALUES (1, 'p1');
});
my $n = ncfs();
cmp_ok($n, '<', 64, "the store starts with fewer than 64 column families ($n)");
is(lookup_opens('probe', 1), "p1\n0", 'a cached lookup opens no instance: the list names its family');
# one more column family: table many_<i> and its row
sub add_family
{
	my ($i) = @_;
	$node->safe_psql('postgres', qq{
		CREATE FOREIGN TABLE many_$i (k bigint, v text) SERVER almanac_store
			OPTIONS (key_prefix 'many_$i', key_columns 'k');
		INSERT INTO many_$i VALUES ($i, 'row $i');});
}

# fill the store up to 64 column families
my $i = 0;
add_family(++$i) while ncfs() < 64;
is(ncfs(), 64, '64 column families');
is(lookup_opens("many_$i", $i), "row $i\n0", 'with 64, the list is published: no instance opened');
add_family(++$i);
is(ncfs(), 65, '65 column families');
is(lookup_opens("many_$i", $i), "row $i\n1",
	'with 65, the list is not published: the lookup opens the instance, and reads its row');
is(lookup_opens('probe', 1), "p1\n1", 'so does a lookup of a family created before');
my $all = join(' UNION ALL ', map { "SELECT v FROM many_$_ WHERE k = $_" } 1 .. $i);
is($node->safe_psql('postgres', "SELECT string_agg(v, ',') FROM ($all) s"),
	join(',', map { "row $_" } 1 .. $i), 'every table reads its own row');
is($node->safe_psql('postgres', 'SELECT v FROM in_a WHERE k = 2; SELECT v FROM in_b WHERE k = 2'),
	"a2\nb2", 'and the two tables over one key, too');
# after a restart the owner publishes the list again: still too long
$node->restart;
is(lookup_opens("many_$i", $i), "row $i\n1", 'after a restart, the same');
# back to 64: the list is published again
$node->safe_psql('postgres', qq{DROP FOREIGN TABLE many_$i; SELECT almanac.drop_column_family('many_$i');});
is(ncfs(), 64, 'one family dropped: 64');
is(lookup_opens('probe', 1), "p1\n0", 'the list is published again: no instance opened');

# --- a column family name of 64 bytes or more ----------------------------------------
# almanac never names one so (column_family is at most 63 bytes), but a store
# is a RocksDB directory and RocksDB's ldb can add one while the server is down
my $long = 'l' x 70;
my $store = $node->data_dir . '/almanac/base/'
  . $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'postgres'});
$node->safe_psql('postgres', qq{DROP FOREIGN TABLE many_@{[$i - 1]}; SELECT almanac.drop_column_family('many_@{[$i - 1]}');});
is(ncfs(), 63, '63 column families before the long name');
$node->stop;
my ($ok, $out, $err) = (0, '', '');
$ok = IPC::Run::run(['ldb', "--db=$store", 'create_column_family', $long], '>', \$out, '2>', \$err);
ok($ok, 'ldb added a column family with a 70-byte name') or diag("ldb: $out$err");
$node->start;
is(ncfs(), 64, '64 column families, one of them named with 70 bytes');
is($node->safe_psql('postgres', qq{SELECT id IS NULL FROM almanac.column_families() WHERE column_family = '$long'}),
	't', 'the long name is listed, its id unknown (a request carries 63 bytes of a name)');
is($node->safe_psql('postgres', qq{
	SELECT id IS NULL, estimated_keys IS NULL FROM almanac.store_properties() WHERE column_family = '$long'}),
	't|t', 'and so are its properties');
is(lookup_opens('probe', 1), "p1\n1",
	'a name too long for the list: not published, the lookup opens the instance');
is(lookup_opens('in_a', 2), "a2\n1", 'and reads the right row');
my $left = join(' UNION ALL ', map { "SELECT v FROM many_$_ WHERE k = $_" } 1 .. $i - 2);
is($node->safe_psql('postgres', "SELECT string_agg(v, ',') FROM ($left) s"),
	join(',', map { "row $_" } 1 .. $i - 2), 'every remaining table reads its own row');

$node->stop;
done_testing();
