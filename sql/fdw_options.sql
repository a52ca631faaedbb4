-- Options of the almanac_rocksdb wrapper (src/fdw/option.c), checked through a
-- throwaway wrapper that uses the same validator.
CREATE FOREIGN DATA WRAPPER test_wrapper VALIDATOR almanac.rocksdb_fdw_validator;

-- defaults: the database's own store under the data directory, the design's tuning
CREATE SERVER s_default FOREIGN DATA WRAPPER test_wrapper;
SELECT replace(replace(o, current_setting('data_directory'), '$PGDATA'),
			   '/' || (SELECT oid FROM pg_database WHERE datname = current_database()), '/<database oid>') AS option
  FROM unnest(almanac._server_options((SELECT oid FROM pg_foreign_server WHERE srvname = 's_default'))) AS o;

-- every server option, with units and spellings
CREATE SERVER s_all FOREIGN DATA WRAPPER test_wrapper OPTIONS (
	path 'stores/main', write_buffer_size '128MB', max_write_buffer_number '6',
	min_write_buffer_number_to_merge '3', max_open_files '-1', compression 'ZSTD',
	bloom_bits_per_key '0', use_direct_io 'on', max_total_wal_size '1 GB');
SELECT replace(o, current_setting('data_directory'), '$PGDATA') AS option
  FROM unnest(almanac._server_options((SELECT oid FROM pg_foreign_server WHERE srvname = 's_all'))) AS o;
ALTER SERVER s_all OPTIONS (SET path '/var/lib/almanac//x/', SET write_buffer_size '65536',
	SET use_direct_io 'false', SET max_total_wal_size '0');
SELECT o AS option
  FROM unnest(almanac._server_options((SELECT oid FROM pg_foreign_server WHERE srvname = 's_all'))) AS o
 WHERE o ~ '^(path|write_buffer_size|use_direct_io|max_total_wal_size)=';
-- a smaller max_write_buffer_number pulls the default merge count down
CREATE SERVER s_two FOREIGN DATA WRAPPER test_wrapper OPTIONS (max_write_buffer_number '2');
SELECT o AS option
  FROM unnest(almanac._server_options((SELECT oid FROM pg_foreign_server WHERE srvname = 's_two'))) AS o
 WHERE o LIKE '%write_buffer_number%';

-- unknown options, in every context, with the valid ones in the hint
SELECT error_of($$CREATE SERVER s_bad FOREIGN DATA WRAPPER test_wrapper OPTIONS (cache_size '1GB')$$);
SELECT error_of($$CREATE SERVER s_bad FOREIGN DATA WRAPPER test_wrapper OPTIONS (key_prefix 'x')$$);
SELECT error_of($$ALTER FOREIGN DATA WRAPPER test_wrapper OPTIONS (path '/tmp')$$);
SELECT error_of($$CREATE USER MAPPING FOR CURRENT_USER SERVER s_default OPTIONS (user 'x')$$);
CREATE USER MAPPING FOR CURRENT_USER SERVER s_default;

-- bad values name the option and what it accepts
SELECT error_of($$CREATE SERVER s_bad FOREIGN DATA WRAPPER test_wrapper OPTIONS (compression 'brotli')$$);
SELECT o, v, sqlstate_of(format('CREATE SERVER s_bad FOREIGN DATA WRAPPER test_wrapper OPTIONS (%I %L)', o, v))
  FROM (VALUES ('path', ''), ('write_buffer_size', '64 furlongs'), ('write_buffer_size', '1kB'),
			   ('write_buffer_size', '65GB'), ('write_buffer_size', '-1MB'),
			   ('write_buffer_size', '99999999999999999999'), ('write_buffer_size', '9000000000TB'),
			   ('max_write_buffer_number', '1'), ('max_write_buffer_number', 'four'),
			   ('max_write_buffer_number', '4.5'), ('min_write_buffer_number_to_merge', '0'),
			   ('max_open_files', '10'), ('max_open_files', '-2'),
			   ('bloom_bits_per_key', '101'), ('bloom_bits_per_key', '-1'),
			   ('use_direct_io', 'sometimes'), ('max_total_wal_size', '65GB'),
			   ('max_total_wal_size', '1e9')) AS t(o, v);
-- limits and other spellings that are accepted
CREATE SERVER s_edge FOREIGN DATA WRAPPER test_wrapper OPTIONS (max_open_files '20',
	use_direct_io 'AUTO', write_buffer_size '64GB', max_total_wal_size '32mb',
	bloom_bits_per_key '100', max_write_buffer_number '64', min_write_buffer_number_to_merge '63');
SELECT o AS option
  FROM unnest(almanac._server_options((SELECT oid FROM pg_foreign_server WHERE srvname = 's_edge'))) AS o
 WHERE o !~ '^path=';
SELECT error_of($$CREATE SERVER s_bad FOREIGN DATA WRAPPER test_wrapper
	OPTIONS (max_write_buffer_number '3', min_write_buffer_number_to_merge '3')$$);
SELECT error_of($$CREATE SERVER s_bad FOREIGN DATA WRAPPER test_wrapper
	OPTIONS (min_write_buffer_number_to_merge '4')$$);
SELECT sqlstate_of($$CREATE SERVER s_bad FOREIGN DATA WRAPPER test_wrapper
	OPTIONS (compression 'lz4', compression 'zstd')$$);

-- table options: key_prefix and key_columns are required
CREATE FOREIGN TABLE blocks_ft (
	chain_id text, block_number bigint, block_hash text, metadata jsonb
) SERVER s_default OPTIONS (key_prefix 'block', key_columns ' chain_id ,  block_number ');
SELECT almanac._table_options('blocks_ft');
SELECT error_of($$CREATE FOREIGN TABLE ft_bad (a int) SERVER s_default$$);
SELECT error_of($$CREATE FOREIGN TABLE ft_bad (a int) SERVER s_default OPTIONS (key_prefix 'a')$$);
SELECT error_of($$CREATE FOREIGN TABLE ft_bad (a int) SERVER s_default OPTIONS (key_columns 'a')$$);
SELECT error_of($$ALTER FOREIGN TABLE blocks_ft OPTIONS (DROP key_columns)$$);
SELECT error_of($$CREATE FOREIGN TABLE ft_bad (a int) SERVER s_default OPTIONS (key_prefix 'a', key_columns 'a', path 'x')$$);
SELECT error_of($$CREATE FOREIGN TABLE ft_bad (a int OPTIONS (key 'true')) SERVER s_default OPTIONS (key_prefix 'a', key_columns 'a')$$);
-- every table option, quoted column names, an attribute and upsert
CREATE FOREIGN TABLE states_ft (
	"Chain" text, account varchar(42), dropped int, state jsonb
) SERVER s_default OPTIONS (column_family 'account_state', key_prefix 'account',
	key_columns '"Chain",ACCOUNT', key_attribute 'state', upsert 'on');
ALTER FOREIGN TABLE states_ft DROP COLUMN dropped;
SELECT almanac._table_options('states_ft');
SELECT almanac.decode_key(almanac.account_state_key('eth', '0xabc'), '{text,varchar}', true);
-- bad table option values
SELECT o, v, sqlstate_of(format('CREATE FOREIGN TABLE ft_bad (a int) SERVER s_default OPTIONS (%s)',
		CASE o WHEN 'key_prefix' THEN format('key_prefix %L, key_columns %L', v, 'a')
			   WHEN 'key_columns' THEN format('key_prefix %L, key_columns %L', 'p', v)
			   ELSE format('key_prefix %L, key_columns %L, %I %L', 'p', 'a', o, v) END))
  FROM (VALUES ('key_prefix', 'a:b'), ('key_prefix', ''), ('key_columns', ''), ('key_columns', 'a,,b'),
			   ('key_columns', 'a, "unterminated'), ('key_columns', 'a, A'), ('key_attribute', 'x:'),
			   ('key_attribute', ''), ('column_family', ''), ('upsert', 'maybe'),
			   ('column_family', repeat('c', 64)), ('key_prefix', repeat('p', 64))) AS t(o, v);
-- a key prefix names the column family when column_family is absent
SELECT error_of(format('CREATE FOREIGN TABLE ft_bad (a int) SERVER s_default OPTIONS (key_prefix %L, key_columns %L)',
		repeat('p', 64), 'a'));
DO $$ BEGIN
	EXECUTE format('CREATE FOREIGN TABLE ft_long (a int) SERVER s_default OPTIONS (key_prefix %L, key_columns %L, column_family %L)',
		repeat('p', 64), 'a', repeat('c', 63));
END $$;
DROP FOREIGN TABLE ft_long;
-- columns are resolved at use time: unknown or unsupported ones fail then
CREATE FOREIGN TABLE ft_late (a int, b numeric, c text)
	SERVER s_default OPTIONS (key_prefix 'late', key_columns 'a, nope');
SELECT error_of($$SELECT almanac._table_options('ft_late')$$);
ALTER FOREIGN TABLE ft_late OPTIONS (SET key_columns 'a, b');
SELECT error_of($$SELECT almanac._table_options('ft_late')$$);
ALTER FOREIGN TABLE ft_late OPTIONS (SET key_columns 'c, a');
SELECT almanac._table_options('ft_late');
ALTER FOREIGN TABLE ft_late DROP COLUMN a;
SELECT error_of($$SELECT almanac._table_options('ft_late')$$);

-- path: only superusers and pg_write_server_files members may set it
CREATE ROLE regress_almanac_user;
CREATE ROLE regress_almanac_writer IN ROLE pg_write_server_files;
GRANT USAGE ON FOREIGN DATA WRAPPER test_wrapper TO regress_almanac_user, regress_almanac_writer;
SET ROLE regress_almanac_user;
SELECT error_of($$CREATE SERVER s_user FOREIGN DATA WRAPPER test_wrapper OPTIONS (path '/tmp/almanac')$$);
CREATE SERVER s_user FOREIGN DATA WRAPPER test_wrapper OPTIONS (compression 'none');
SELECT sqlstate_of($$ALTER SERVER s_user OPTIONS (ADD path 'elsewhere')$$);
ALTER SERVER s_user OPTIONS (SET compression 'snappy');
RESET ROLE;
SET ROLE regress_almanac_writer;
CREATE SERVER s_writer FOREIGN DATA WRAPPER test_wrapper OPTIONS (path '/tmp/almanac');
ALTER SERVER s_writer OPTIONS (SET path 'relative/dir');
RESET ROLE;
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname IN ('s_user', 's_writer') ORDER BY 1;

DROP SERVER s_user, s_writer;
REVOKE USAGE ON FOREIGN DATA WRAPPER test_wrapper FROM regress_almanac_user, regress_almanac_writer;
DROP ROLE regress_almanac_user, regress_almanac_writer;
DROP USER MAPPING FOR CURRENT_USER SERVER s_default;
DROP FOREIGN DATA WRAPPER test_wrapper CASCADE;
