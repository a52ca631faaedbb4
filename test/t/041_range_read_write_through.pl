# The store owner does not write the keys of column families read by range
# only (almanac.range_read_column_families, default mirror.events) through
# into the shared row cache (src/kv/sharedcache.h): ingesting blocks puts
# their blocks', transactions' and account states' values, not their
# events'.  Such keys are still invalidated by every write: a point lookup
# of an event through a raw foreign table over mirror.events (which puts
# what it read) returns the newest value after the event is rewritten,
# whether the key was in the cache when it was rewritten or not.  With the
# list empty every column family is written through again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('range_read_write_through');
my $root = $ENV{ALMANAC_ROOT} or die "ALMANAC_ROOT is not set";
my $anvil = "$root/test/fixtures/anvil/";

$node->safe_psql('postgres', qq{
	CREATE TABLE fx AS
	SELECT name, pg_read_file('$anvil' || 'b' || name || '.json')::jsonb AS block,
		   pg_read_file('$anvil' || 'r' || name || '.json')::jsonb AS receipts
	  FROM unnest(ARRAY['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) AS name;
	CREATE FOREIGN TABLE mirror_events (key bytea, value bytea)
		SERVER almanac_store OPTIONS (raw 'true', column_family 'mirror.events');
});

sub stats
{
	my $line = $node->safe_psql('postgres',
		'SELECT hits, misses, puts, invalidated FROM almanac.shared_row_cache_stats()');
	my %s;
	@s{qw(hits misses puts invalidated)} = split /\|/, $line;
	return \%s;
}

# ingest blocks $from..$to (fixture names) in one transaction; returns the
# growth of the cache's puts and the number of events they carried
sub ingest
{
	my ($from, $to) = @_;
	my $s0 = stats();
	$node->safe_psql('postgres', qq{
		SELECT almanac.ingest_blocks('anvil', jsonb_agg(block ORDER BY name::int),
									 jsonb_agg(receipts ORDER BY name::int))
		  FROM fx WHERE name::int BETWEEN $from AND $to});
	my $events = $node->safe_psql('postgres',
		"SELECT count(*) FROM almanac.events WHERE block_number BETWEEN $from AND $to");
	my $others = $node->safe_psql('postgres', qq{
		SELECT (SELECT count(*) FROM almanac.blocks WHERE block_number BETWEEN $from AND $to)
			 + (SELECT count(*) FROM almanac.transactions WHERE block_number BETWEEN $from AND $to)
			 + (SELECT count(*) FROM almanac.account_states WHERE block_number BETWEEN $from AND $to)});
	return (stats()->{puts} - $s0->{puts}, $events, $others);
}

# --- events are not written through --------------------------------------------------
my ($puts, $events, $others) = ingest(0, 4);
cmp_ok($events, '>', 0, "the blocks carry events ($events)");
cmp_ok($puts, '>', 0, "the owner wrote the other mirrors' keys through ($puts puts)");
cmp_ok($puts, '<=', $others,
	"but not the events: the puts ($puts) are at most the other mirrors' keys ($others)");

# the event keys, and one to look up
my $key_sql = q{
	SELECT almanac.mirror_key('almanac.events', e) FROM almanac.events e
	 ORDER BY block_number, log_index};
my @keys = split /\n/, $node->safe_psql('postgres', $key_sql);
cmp_ok(scalar @keys, '>=', 2, 'two events at least');
my ($k1, $k2) = @keys[0, 1];

# a point lookup's value, and what a session without the cache reads
sub lookup
{
	my ($key, $cache) = @_;
	return $node->safe_psql('postgres', qq{
		SET almanac.shared_row_cache = $cache;
		SELECT md5(value) FROM mirror_events WHERE key = '$key'::bytea});
}

sub rewrite
{
	my ($key, $data) = @_;
	$node->safe_psql('postgres', qq{
		UPDATE almanac.events e SET data = '\\x$data'::bytea
		 WHERE almanac.mirror_key('almanac.events', e) = '$key'::bytea});
}

my $s0 = stats();
my $v1 = lookup($k1, 'on');
isnt($v1, '', 'an event\'s key is found');
my $s1 = stats();
is($s1->{misses} - $s0->{misses}, 1, 'the first lookup of an event misses: its write did not put it');
is($s1->{puts} - $s0->{puts}, 1, 'and the lookup put the value it read');
is(lookup($k1, 'on'), $v1, 'the next lookup reads the same value');
my $s2 = stats();
is($s2->{hits} - $s1->{hits}, 1, 'from the cache');

# --- a rewrite of a cached key ---------------------------------------------------------
rewrite($k1, 'c0ffee');
my $s3 = stats();
cmp_ok($s3->{invalidated} - $s2->{invalidated}, '>=', 1, 'the rewrite removed the cached entry');
is($s3->{puts}, $s2->{puts}, 'and put nothing back');
my $w1 = lookup($k1, 'on');
isnt($w1, $v1, 'a lookup after the rewrite reads the new value');
is($w1, lookup($k1, 'off'), 'the value the store holds');
is(lookup($k1, 'on'), $w1, 'and so does the next, from the cache');

# --- a rewrite of a key not cached ------------------------------------------------------
my $v2 = lookup($k2, 'off');
rewrite($k2, 'beef');
my $w2 = lookup($k2, 'on');
isnt($w2, $v2, 'a key not cached when rewritten: the lookup reads the new value');
is($w2, lookup($k2, 'off'), 'the value the store holds');
rewrite($k2, 'beef01');
my $w2b = lookup($k2, 'on');
isnt($w2b, $w2, 'rewritten again once cached: the new value');
is($w2b, lookup($k2, 'off'), 'the value the store holds');

# a revert and a re-ingest: the block's events deleted, then written again
my $b1 = $node->safe_psql('postgres', qq{
	SELECT block_number FROM almanac.events e
	 WHERE almanac.mirror_key('almanac.events', e) = '$k1'::bytea});
isnt(lookup($k1, 'on'), '', 'the event is cached before the revert');
$node->safe_psql('postgres', "DELETE FROM almanac.blocks WHERE block_number = $b1");
is(lookup($k1, 'on'), '', 'after the revert the event is gone');
ingest($b1, $b1);
my $r1 = lookup($k1, 'on');
isnt($r1, '', 'after the re-ingest the event is back');
is($r1, lookup($k1, 'off'), 'with the value the store holds');

# --- an empty list: every column family is written through --------------------------------
$node->append_conf('postgresql.conf', "almanac.range_read_column_families = ''");
$node->restart;
my ($puts_all, $events_all, $others_all) = ingest(5, 9);
cmp_ok($events_all, '>', 0, "more blocks with events ($events_all)");
cmp_ok($puts_all, '>=', $others_all + $events_all,
	"with the list empty the events are written through too ($puts_all puts)");

$node->stop;
done_testing();
