# pg_dump --include-foreign-data=almanac_store restores every row: two tables
# on one column family, a table with a key attribute, a bulk-sized table,
# into a fresh database (its own store).  Raw tables (IMPORT FOREIGN SCHEMA)
# are read-only views of the same keys: their data is left out of the dump
# with --exclude-table-data, and after the restore they show every key
# again.  Dumped with their data, each raw table's COPY fails on restore
# ("foreign table ... does not allow inserts"), pg_restore says so and
# exits non-zero, and every row of the other tables is restored all the
# same.  Before each database had its own store, the restore into a second
# database of the instance failed with 23505.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# Tables go to schema public: the test runs as a role named almanac, whose
# "$user" schema would otherwise be the extension's own.

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'almanac'");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION almanac;
	CREATE FOREIGN TABLE public.blocks (chain text, n bigint, hash text, gas numeric)
		SERVER almanac_store OPTIONS (column_family 'shared', key_prefix 'block', key_columns 'chain, n');
	CREATE FOREIGN TABLE public.txs (chain text, hash text, n bigint, tags text[])
		SERVER almanac_store OPTIONS (column_family 'shared', key_prefix 'tx', key_columns 'chain, hash');
	CREATE FOREIGN TABLE public.states (chain text, account text, state jsonb)
		SERVER almanac_store OPTIONS (key_prefix 'account', key_columns 'chain, account', key_attribute 'state');
	CREATE FOREIGN TABLE public.big (k int, v text) SERVER almanac_store
		OPTIONS (key_prefix 'big', key_columns 'k');
	INSERT INTO public.blocks SELECT 'eth', g, md5(g::text), g * 1000000000000000000::numeric FROM generate_series(1, 200) g;
	INSERT INTO public.txs SELECT 'eth', md5('t' || g), g % 200, ARRAY['a' || g, NULL] FROM generate_series(1, 500) g;
	INSERT INTO public.states VALUES ('eth', '0xab', '{"balance": "10", "nonce": 1}'), ('base', '0xcd', NULL);
	INSERT INTO public.big SELECT g, repeat('x', g % 100) FROM generate_series(1, 20000) g;
	DELETE FROM public.big WHERE k % 1000 = 0;
	CREATE SCHEMA raw;
	IMPORT FOREIGN SCHEMA rocksdb FROM SERVER almanac_store INTO raw;
});

# what each table holds, as one digest per table
my $digest = q{
	SELECT string_agg(t || ':' || n || ':' || d, ' ' ORDER BY t) FROM (
		SELECT 'blocks' AS t, count(*) AS n, md5(string_agg(b::text, ',' ORDER BY chain, n)) AS d FROM public.blocks b
		UNION ALL SELECT 'txs', count(*), md5(string_agg(x::text, ',' ORDER BY hash)) FROM public.txs x
		UNION ALL SELECT 'states', count(*), md5(string_agg(s::text, ',' ORDER BY account)) FROM public.states s
		UNION ALL SELECT 'big', count(*), md5(string_agg(g::text, ',' ORDER BY k)) FROM public.big g
		UNION ALL SELECT 'raw.' || c.relname, (xpath('/row/n/text()',
			query_to_xml(format('SELECT count(*) AS n FROM raw.%I', c.relname), false, true, '')))[1]::text::bigint, ''
		  FROM pg_class c WHERE c.relnamespace = 'raw'::regnamespace) x};
my $want = $node->safe_psql('src', $digest);
like($want, qr/^big:19980:\S+ blocks:200:\S+ raw\.account:2: raw\.big:19980: raw\.shared:700: states:2:\S+ txs:500:\S+$/,
	'the source holds what was written')
  or diag $want;

my $dump = $node->basedir . '/src.dump';
$node->command_ok(
	[
		'pg_dump', '-Fc', '--include-foreign-data=almanac_store',
		'--exclude-table-data=raw.*', '-d', $node->connstr('src'), '-f', $dump
	],
	'pg_dump, raw tables without their data');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ],
	'pg_restore into a fresh database, without an error');
is($node->safe_psql('dst', $digest), $want,
	'every row of every table, and of the raw tables over them, is restored');

# with the raw tables' data: their COPY fails, the rest is restored
my $dump2 = $node->basedir . '/src2.dump';
$node->command_ok(
	[
		'pg_dump', '-Fc', '--include-foreign-data=almanac_store',
		'-d', $node->connstr('src'), '-f', $dump2
	],
	'pg_dump with the raw tables\' data');
$node->safe_psql('postgres', 'CREATE DATABASE dst2');
my ($stdout, $stderr);
my $ok = IPC::Run::run([ 'pg_restore', '-d', $node->connstr('dst2'), $dump2 ],
	'>', \$stdout, '2>', \$stderr);
ok(!$ok, 'pg_restore reports the raw tables');
like($stderr, qr/COPY failed for table "shared": ERROR:  foreign table "shared" does not allow inserts/,
	'naming each raw table');
is($node->safe_psql('dst2', $digest), $want, 'and restores every row all the same');

$node->stop;
done_testing();
