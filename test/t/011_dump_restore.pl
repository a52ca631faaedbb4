# pg_dump restores every row of almanac's core tables (chains, blocks,
# transactions, events, account states, cross-chain messages, orphaned
# blocks), with their identity sequences, and the restore fills the new
# database's mirrors through the tables' triggers.  Which mirrors are
# disabled comes along too (before, a disabled mirror came back enabled).  Before the core tables
# were marked with pg_extension_config_dump, the dump held none of their
# rows and the restored tables were empty.
#
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

# the core tables: two chains, blocks with transactions, events and state
# changes, a cross-chain message each way (one delivered), and a revert that
# leaves orphaned blocks
$node->safe_psql('src', q{
	CREATE FUNCTION pg_temp.h32(t text) RETURNS text LANGUAGE sql IMMUTABLE
		AS $$ SELECT '0x' || encode(sha256(convert_to(t, 'UTF8')), 'hex') $$;
	INSERT INTO almanac.chains (chain_id, evm_chain_id, name) VALUES ('eth', 1, 'Ethereum'), ('base', 8453, 'Base');
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp, metadata)
	SELECT c, n, pg_temp.h32(c || n), pg_temp.h32(c || (n - 1)),
		   timestamptz '2024-01-01 00:00:00+00' + n * interval '12 s', jsonb_build_object('gas', n * 3)
	  FROM unnest(ARRAY['eth', 'base']) c, generate_series(0, 39) n;
	INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash, tx_type,
			from_address, to_address, value, nonce, data, status, gas_used, timestamp)
	SELECT b.chain_id, b.id, b.block_number, i, pg_temp.h32('t' || b.chain_id || b.block_number || '.' || i), 2,
		   substr(pg_temp.h32('a' || i), 1, 42), substr(pg_temp.h32('a' || (i + 1)), 1, 42),
		   b.block_number * 1000000000000000000::numeric + i, i, '\xdead', 1, 21000, b.timestamp
	  FROM almanac.blocks b, generate_series(0, 2) i;
	INSERT INTO almanac.events (chain_id, block_id, block_number, transaction_id, log_index, contract_address,
			event_type, topics, data, timestamp)
	SELECT t.chain_id, t.block_id, t.block_number, t.id, t.tx_index, substr(pg_temp.h32('c' || t.tx_index), 1, 42),
		   pg_temp.h32('Transfer'), ARRAY[pg_temp.h32('Transfer'), pg_temp.h32('x' || t.id)], '\x01', t.timestamp
	  FROM almanac.transactions t;
	INSERT INTO almanac.account_states (chain_id, account, block_number, state)
	SELECT c, substr(pg_temp.h32('a' || (n % 7)), 1, 42), n, jsonb_build_object('balance', (n * 11)::text, 'nonce', n)
	  FROM unnest(ARRAY['eth', 'base']) c, generate_series(0, 39) n;
	INSERT INTO almanac.cross_chain_messages (protocol, message_key, source_chain_id, source_transaction_id,
			destination_chain_id, destination_transaction_id, status, sent_at, delivered_at, payload)
	SELECT 'bridge', 'm1', 'eth', s.id, 'base', d.id, 'delivered', s.timestamp, d.timestamp, '{"amount": "5"}'
	  FROM almanac.transactions s, almanac.transactions d
	 WHERE s.chain_id = 'eth' AND s.block_number = 3 AND s.tx_index = 0
	   AND d.chain_id = 'base' AND d.block_number = 5 AND d.tx_index = 1;
	INSERT INTO almanac.cross_chain_messages (protocol, message_key, source_chain_id, source_transaction_id,
			destination_chain_id, sent_at)
	SELECT 'bridge', 'm2', 'base', id, 'eth', timestamp FROM almanac.transactions
	 WHERE chain_id = 'base' AND block_number = 7 AND tx_index = 2;
	SELECT almanac.revert_to('eth', 35);
});

# a mirror turned off: the dump carries that (only the rows of disabled
# mirrors are dumped; restoring one disables the mirror that CREATE
# EXTENSION wrote instead of adding a second row)
$node->safe_psql('src', q{SELECT almanac.disable_mirror('almanac.events')});
my $mirrors_state = q{
	SELECT string_agg(c.relname || ':' || m.enabled, ' ' ORDER BY c.relname)
	  FROM almanac.mirrors m JOIN pg_class c ON c.oid = m.relid};
is($node->safe_psql('src', $mirrors_state),
	'account_states:true blocks:true events:false transactions:true',
	'the source has one mirror disabled');

# the core tables' rows, one digest per table, and the identity sequences
my $core_digest = q{
	SELECT string_agg(t || ':' || n || ':' || d, ' ' ORDER BY t) FROM (
		SELECT 'chains' AS t, count(*) AS n, md5(string_agg(x::text, ',' ORDER BY chain_id)) AS d FROM almanac.chains x
		UNION ALL SELECT 'blocks', count(*), md5(string_agg(x::text, ',' ORDER BY id)) FROM almanac.blocks x
		UNION ALL SELECT 'transactions', count(*), md5(string_agg(x::text, ',' ORDER BY id)) FROM almanac.transactions x
		UNION ALL SELECT 'events', count(*), md5(string_agg(x::text, ',' ORDER BY id)) FROM almanac.events x
		UNION ALL SELECT 'account_states', count(*), md5(string_agg(x::text, ',' ORDER BY id)) FROM almanac.account_states x
		UNION ALL SELECT 'cross_chain_messages', count(*), md5(string_agg(x::text, ',' ORDER BY id)) FROM almanac.cross_chain_messages x
		UNION ALL SELECT 'orphaned_blocks', count(*), md5(string_agg(x::text, ',' ORDER BY chain_id, block_number)) FROM almanac.orphaned_blocks x
	) x};
my $core_want = $node->safe_psql('src', $core_digest);
like($core_want,
	qr/^account_states:76:\S+ blocks:76:\S+ chains:2:\S+ cross_chain_messages:2:\S+ events:228:\S+ orphaned_blocks:4:\S+ transactions:228:\S+$/,
	'the source\'s core tables hold what was written')
  or diag $core_want;

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
is($node->safe_psql('dst', $core_digest), $core_want,
	'every row of every core table is restored');

is($node->safe_psql('dst', $mirrors_state), $node->safe_psql('src', $mirrors_state),
	'the disabled mirror is disabled after the restore, the others enabled, one row each');
my $event_lookup = $node->safe_psql('src', q{
	SELECT format('SELECT e::text FROM almanac.events e WHERE chain_id = %L AND contract_address = %L'
				  ' AND event_type = %L AND block_number = %s AND log_index = %s',
				  chain_id, contract_address, event_type, block_number, log_index)
	  FROM almanac.events ORDER BY id LIMIT 1});
unlike($node->safe_psql('dst', "EXPLAIN $event_lookup"), qr/Almanac Lookup/,
	'and lookups on its table read the heap');

# the restore went through the mirror triggers: each mirror of the new
# database's store matches its table, and the router answers from it
is($node->safe_psql('dst', q{
	SELECT string_agg(m.relid::text || ':' || (SELECT count(*) FROM almanac.verify(m.relid)), ' ' ORDER BY m.relid::text)
	  FROM almanac.mirrors m WHERE m.enabled}),
	$node->safe_psql('src', q{
	SELECT string_agg(m.relid::text || ':0', ' ' ORDER BY m.relid::text) FROM almanac.mirrors m WHERE m.enabled}),
	'every enabled mirror of the restored database matches its table');
my $lookup = q{SELECT b::text FROM almanac.blocks b WHERE chain_id = 'base' AND block_number = 39};
like($node->safe_psql('dst', "EXPLAIN $lookup"), qr/Almanac Lookup\) on blocks/, 'a lookup is routed in the restored database');
is($node->safe_psql('dst', $lookup), $node->safe_psql('src', $lookup), 'and answers the source\'s row');

# the disabled mirror, enabled again, is brought in sync
$node->safe_psql('dst', q{SELECT almanac.enable_mirror('almanac.events')});
is($node->safe_psql('dst', q{SELECT count(*) FROM almanac.verify('almanac.events')}), '0',
	'the mirror disabled by the restore, enabled again, matches its table');
like($node->safe_psql('dst', "EXPLAIN $event_lookup"), qr/Almanac Lookup\) on events/,
	'and its lookups are routed again');
is($node->safe_psql('dst', $event_lookup), $node->safe_psql('src', $event_lookup), 'answering the source\'s row');

# the identity sequences came along: new rows get new ids
is($node->safe_psql('dst', q{
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', 36, '0x' || repeat('ab', 32), '0x' || repeat('cd', 32), now())
	RETURNING id > (SELECT max(id) FROM almanac.blocks WHERE block_number <> 36 OR chain_id <> 'eth')}),
	't', 'a block inserted after the restore gets a new id');
is($node->safe_psql('dst', q{
	SELECT count(*) FROM (
		SELECT 'transactions' AS t, last_value FROM almanac.transactions_id_seq
		UNION ALL SELECT 'events', last_value FROM almanac.events_id_seq
		UNION ALL SELECT 'account_states', last_value FROM almanac.account_states_id_seq
		UNION ALL SELECT 'cross_chain_messages', last_value FROM almanac.cross_chain_messages_id_seq) s
	 WHERE last_value < CASE t WHEN 'transactions' THEN (SELECT max(id) FROM almanac.transactions)
							   WHEN 'events' THEN (SELECT max(id) FROM almanac.events)
							   WHEN 'account_states' THEN (SELECT max(id) FROM almanac.account_states)
							   ELSE (SELECT max(id) FROM almanac.cross_chain_messages) END}),
	'0', 'every identity sequence is at or past its table\'s highest id');

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
