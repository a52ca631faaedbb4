# A new connection's point lookups open no secondary instance when the
# shared row cache answers them (src/kv/access.c, almanac_access_begin): the
# column family's id comes from the list the store owner publishes in shared
# memory (store.h, AlmanacStoreCf), and the instance is opened by the first
# read that needs it.  Shown by the backend's reader directory under
# almanac/secondary (<store>.<pid>) and almanac.reader_stats().opens.  A miss,
# a scan, a FOR UPDATE lookup and a lookup through the transaction's own
# writes open it and read what they would have; a column family created
# after a backend started, one dropped and created again, and a store owner
# started again keep the published list exact.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('deferred_reader');
$node->safe_psql('postgres', q{
	INSERT INTO almanac.chains (chain_id) VALUES ('c1');
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	SELECT 'c1', n, '0x' || lpad(to_hex(n), 64, '0'), '0x' || lpad(to_hex(n - 1), 64, '0'),
		   '2024-01-01 00:00:00+00'::timestamptz + n * interval '12 seconds'
	  FROM generate_series(1, 20) n;
	CREATE FOREIGN TABLE kv (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 10) g;
});

sub hash { return '0x' . sprintf('%064x', $_[0]); }

# appended to a session's queries: its reader directories and instances opened
my $opened = q{
	SELECT count(*) FROM pg_ls_dir('almanac/secondary', true, false) d
	 WHERE d LIKE '%.' || pg_backend_pid();
	SELECT opens FROM almanac.reader_stats();};

# --- hits open nothing -----------------------------------------------------------
like($node->safe_psql('postgres', q{
		EXPLAIN (COSTS OFF) SELECT block_number FROM almanac.blocks
		 WHERE chain_id = 'c1' AND block_number IN (6, 1000, 7)}),
	qr/Almanac Lookup\) on blocks/, 'the lookups below are routed');
is($node->safe_psql('postgres',
		"SELECT block_hash FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 3;"
		  . $opened),
	hash(3) . "\n0\n0",
	'a routed lookup of a key the owner wrote (kept in the shared cache) opens no instance');
is($node->safe_psql('postgres', q{
		SELECT block_number FROM almanac.blocks WHERE chain_id = 'c1' AND block_number IN (4, 5, 6);}
		  . $opened),
	"4\n5\n6\n0\n0", 'nor does a routed lookup of several keys, all kept');
is($node->safe_psql('postgres', "SELECT v FROM kv WHERE k = 7;" . $opened),
	"v7\n0\n0", 'nor a foreign table\'s lookup by key');
is($node->safe_psql('postgres', q{
		PREPARE q(bigint) AS SELECT block_hash FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = $1;
		EXECUTE q(1); EXECUTE q(2); EXECUTE q(3); EXECUTE q(4); EXECUTE q(5); EXECUTE q(6); EXECUTE q(7);}
		  . $opened),
	join("\n", map { hash($_) } 1 .. 7) . "\n0\n0",
	'nor seven executions of a prepared lookup (its generic plan too)');

# --- what needs the instance opens it, and reads right ------------------------------
is($node->safe_psql('postgres',
		"SELECT block_hash FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 999;" . $opened),
	"1\n1", 'a key never written: a miss opens the instance, and finds no row');
is($node->safe_psql('postgres',
		"SELECT block_hash FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 999;" . $opened),
	"0\n0", 'the next connection finds its absence kept');
is($node->safe_psql('postgres', q{
		SELECT block_number FROM almanac.blocks WHERE chain_id = 'c1' AND block_number IN (6, 1000, 7);}
		  . $opened),
	"6\n7\n1\n1", 'a lookup of several keys with one miss opens it once');
is($node->safe_psql('postgres', q{
		SET almanac.shared_row_cache = off;
		SELECT block_hash FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 8;} . $opened),
	hash(8) . "\n1\n1", 'with the shared cache off, a lookup opens it and reads the row');
is($node->safe_psql('postgres', "SELECT count(*), sum(k) FROM kv;" . $opened),
	"10|55\n1\n1", 'a scan opens it');
is($node->safe_psql('postgres', "SELECT v FROM kv WHERE k = 2 FOR UPDATE;" . $opened),
	"v2\n0\n0", 'a lookup FOR UPDATE: the key lock\'s newest value is the shared cache\'s');
is($node->safe_psql('postgres', q{
		SET almanac.shared_row_cache = off;
		SELECT v FROM kv WHERE k = 2 FOR UPDATE;} . $opened),
	"v2\n1\n1", 'without it, the key lock opens the instance');
is($node->safe_psql('postgres', q{
		BEGIN;
		UPDATE kv SET v = 'mine' WHERE k = 9;
		SELECT v FROM kv WHERE k = 9;
		SELECT v FROM kv WHERE k = 10;
		ROLLBACK;}),
	"mine\nv10", 'a lookup through the transaction\'s own writes reads them');
is($node->safe_psql('postgres', "SELECT v FROM kv WHERE k = 9;" . $opened),
	"v9\n0\n0", 'and the rolled-back write left the cached value alone');

# --- a column family created after the backend started --------------------------------
my $s = $node->background_psql('postgres');
is($s->query_safe("SELECT v FROM kv WHERE k = 1;" . $opened), "v1\n0\n0",
	'a session begins with a hit');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE late (k bigint, v text)
		SERVER almanac_store OPTIONS (column_family 'late', key_prefix 'late', key_columns 'k');
	INSERT INTO late SELECT g, 'late' || g FROM generate_series(1, 5) g;
});
is($s->query_safe("SELECT v FROM late WHERE k = 2;" . $opened), "late2\n0\n0",
	'a column family created since: its id is published, its key a hit');
is($s->query_safe("SELECT count(*) FROM late;" . $opened), "5\n1\n1",
	'a scan of it opens an instance that has it');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE later (k bigint, v text)
		SERVER almanac_store OPTIONS (column_family 'later', key_prefix 'later', key_columns 'k');
	INSERT INTO later VALUES (1, 'later1');
});
is($s->query_safe(q{
		SET almanac.shared_row_cache = off;
		SELECT v FROM later WHERE k = 1;
		RESET almanac.shared_row_cache;
		SELECT opens FROM almanac.reader_stats();}), "later1\n2",
	'a miss in a column family created after the instance opened reopens it');

# --- dropped and created again ------------------------------------------------------------
$node->safe_psql('postgres', q{
	DROP FOREIGN TABLE late;
	SELECT almanac.drop_column_family('late');
	CREATE FOREIGN TABLE late (k bigint, v text)
		SERVER almanac_store OPTIONS (column_family 'late', key_prefix 'late', key_columns 'k');
});
is($s->query_safe("SELECT count(*) FROM late WHERE k = 2"), '0',
	'a dropped column family reads as empty');
is($node->safe_psql('postgres', "SELECT count(*) FROM late WHERE k = 2;" . $opened), "0\n1\n1",
	'for a new connection too (a column family not listed is asked of the instance)');
$node->safe_psql('postgres', q{INSERT INTO late VALUES (2, 'again2')});
is($s->query_safe("SELECT v FROM late WHERE k = 2"), 'again2',
	'created again: the new value, not the dropped one kept under the old id');
is($node->safe_psql('postgres', "SELECT v FROM late WHERE k = 2;" . $opened), "again2\n0\n0",
	'a new connection reads it without an instance');
$s->quit;

# --- a new store owner --------------------------------------------------------------------
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'almanac store owner'");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'almanac store owner'")
  or die "the owner did not exit";
# a new owner starts a new generation of the shared cache: the first read misses
is($node->safe_psql('postgres', "SELECT v FROM late WHERE k = 2;" . $opened), "again2\n1\n1",
	'after the owner exited, a lookup starts a new one and reads through an instance');
is($node->safe_psql('postgres', "SELECT v FROM late WHERE k = 2;" . $opened), "again2\n0\n0",
	'the new owner published its column families: the next connection opens nothing');
is($node->safe_psql('postgres',
		"SELECT block_hash FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 3;"),
	hash(3), 'the mirror reads the same after it');

$node->stop;
done_testing();
