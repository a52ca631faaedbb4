# No stored byte string crashes a backend (src/codec/valuecodec.h).
#
# Before values recorded the row layout they were written with, each of the
# three ways in of issue 13, finding 1, killed the backend with SIGSEGV (and
# the postmaster restarted every session): ALTER COLUMN TYPE over rows
# (bytea read as int4[]), a second foreign table on the same key_prefix with
# other column types, and almanac._decode_value of another row type.  Then a
# fuzz run feeds random and mutated values (bit flips, truncations,
# extensions, random bytes, values of other row types) to the decoder for
# every column type almanac supports.  Every outcome must be the original row
# or an ERROR of the decoder's (XX001 damaged, 42804 another layout, 55000
# format 1), and the server must not have restarted: same postmaster start
# time, no "terminated by signal" in its log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('values');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'almanac'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION almanac');
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

# run sql, expecting an ERROR with this SQLSTATE
sub fails_with
{
	my ($sql, $state, $name) = @_;
	my ($ret, $out, $err) =
	  $node->psql('postgres', "\\set VERBOSITY verbose\n$sql", on_error_stop => 1);
	like($err, qr/ERROR:\s+$state:/, $name) or diag "exit $ret, stdout: $out";
}

# 1. ALTER COLUMN TYPE over rows: refused up front; with the guard disabled
# (a superuser can), reading is a clean layout error
$node->safe_psql(
	'postgres', q{
	CREATE FOREIGN TABLE v_alter (id int, payload bytea) SERVER almanac_store
		OPTIONS (key_prefix 'v_alter', key_columns 'id');
	INSERT INTO v_alter SELECT i, decode(repeat('00e1f505', 40), 'hex') FROM generate_series(1, 20) AS i;
});
fails_with('ALTER FOREIGN TABLE v_alter ALTER COLUMN payload TYPE int4[]',
	'55000', 'ALTER COLUMN TYPE over rows is refused');
$node->safe_psql(
	'postgres', q{
	ALTER EVENT TRIGGER almanac_ddl_guard DISABLE;
	ALTER FOREIGN TABLE v_alter ALTER COLUMN payload TYPE int4[];
	ALTER EVENT TRIGGER almanac_ddl_guard ENABLE;
});
fails_with('SELECT array_length(payload, 1), payload[50000000] FROM v_alter',
	'42804', 'rows read after an unguarded ALTER COLUMN TYPE: layout error');
fails_with('SELECT payload FROM v_alter WHERE id = 3',
	'42804', '... by point lookup too');

# 2. a second table on the same keys with other column types
$node->safe_psql(
	'postgres', q{
	CREATE FOREIGN TABLE v_first (id int, doc bytea, n numeric) SERVER almanac_store
		OPTIONS (key_prefix 'v_shared', key_columns 'id');
	INSERT INTO v_first SELECT i, '\x0102030405060708090a', i FROM generate_series(1, 20) AS i;
	CREATE FOREIGN TABLE v_second (id int, doc jsonb, n int[]) SERVER almanac_store
		OPTIONS (key_prefix 'v_shared', key_columns 'id');
});
fails_with('SELECT doc->>0, n[1] FROM v_second',
	'42804', 'a second table with other column types: layout error');
fails_with('SELECT doc FROM v_second WHERE id = 7',
	'42804', '... by point lookup too');

# 3. _decode_value of another row type
$node->safe_psql(
	'postgres', q{
	CREATE TYPE v_a AS (x bytea, y text);
	CREATE TYPE v_b AS (x int4[], y jsonb);
});
fails_with(
	q{SELECT (almanac._decode_value(almanac._encode_value(ROW(decode(repeat('00e1f505', 40), 'hex'), 'x')::v_a), NULL::v_b)).x[1000]},
	'42804', '_decode_value of another row type: layout error');

# 4. fuzz: every supported column type, random and mutated values
$node->safe_psql(
	'postgres', q{
CREATE DOMAIN v_amount AS numeric(78,0) CHECK (VALUE >= 0);
CREATE DOMAIN v_topics AS text[];
CREATE TYPE v_ref AS (tx text, idx int, topics text[], amount v_amount);
CREATE DOMAIN v_ref_d AS v_ref;
CREATE TYPE v_row AS (
	i2 int2, i4 int4, i8 int8, num numeric, amount v_amount, t text, vc varchar(12),
	ch char(6), b bytea, ts timestamp, tstz timestamptz, d date, f8 float8, ok bool,
	u uuid, ints int4[], grid int8[], texts text[], topics v_topics, doc jsonb,
	ref v_ref, refs v_ref[], refd v_ref_d);
CREATE TYPE v_small AS (a int4, b jsonb);
CREATE TYPE v_swap AS (
	i2 int2, i4 int4, i8 int8, num numeric, amount v_amount, t text, vc varchar(12),
	ch char(6), b bytea, ts timestamp, tstz timestamptz, d date, f8 float8, ok bool,
	u uuid, ints int8[], grid int4[], texts text[], topics v_topics, doc jsonb,
	ref v_ref, refs v_ref[], refd v_ref_d);

CREATE TABLE v_samples (r v_row);
INSERT INTO v_samples
SELECT ROW(i::int2, i * 1000, i::int8 << 40, (i * 1.5)::numeric ^ 7, (2::numeric ^ 200) + i,
		   repeat('text:\', i % 7), 'vc' || i, 'c' || (i % 10),
		   decode(repeat('00ff3a5c', i), 'hex'), '2024-01-01'::timestamp + i * interval '1 hour',
		   '2024-01-01 00:00+00'::timestamptz - i * interval '1 day', '2024-02-29'::date + i,
		   i / 3.0, i % 2 = 0, md5(i::text)::uuid,
		   ARRAY[i, -i, NULL, 2147483647], ARRAY[[i::int8, 2], [3, 4]],
		   ARRAY['a', NULL, repeat('t', i)], ARRAY['0xddf2', 'x' || i]::v_topics,
		   jsonb_build_object('n', i, 'a', jsonb_build_array(1, 'x', NULL, i * 0.5), 'o', jsonb_build_object('k', true)),
		   ROW('0x' || i, i, ARRAY['t0', 't' || i], i)::v_ref,
		   ARRAY[ROW('0x1', 0, '{}', 1)::v_ref, NULL, ROW(NULL, NULL, NULL, NULL)::v_ref],
		   ROW('d', i, NULL, 0)::v_ref)::v_row
  FROM generate_series(1, 12) AS i
UNION ALL SELECT ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
					 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::v_row;

-- one decode: 'same' (the original row), 'other' (a row that is not the
-- original: garbage), or the SQLSTATE of the error; the result is rendered
-- as text, which reads every field, the insides of arrays, jsonb and
-- composites included
CREATE FUNCTION v_try(img bytea, orig v_row) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r v_row;
BEGIN
	r := almanac._decode_value(img, NULL::v_row);
	RETURN CASE WHEN r::text IS NOT DISTINCT FROM orig::text THEN 'same' ELSE 'other' END;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END;
$$;
CREATE FUNCTION v_try_small(img bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r v_small;
	s text;
BEGIN
	r := almanac._decode_value(img, NULL::v_small);
	s := r::text;
	RETURN 'other';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END;
$$;

CREATE FUNCTION v_mutate(img bytea, kind int) RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE
	n int := length(img);
	pos int;
BEGIN
	CASE kind
	WHEN 0 THEN					-- flip one bit
		pos := floor(random() * n * 8)::int;
		RETURN set_bit(img, pos, 1 - get_bit(img, pos));
	WHEN 1 THEN					-- flip a few bits
		FOR j IN 1 .. 1 + floor(random() * 4)::int LOOP
			pos := floor(random() * n * 8)::int;
			img := set_bit(img, pos, 1 - get_bit(img, pos));
		END LOOP;
		RETURN img;
	WHEN 2 THEN					-- truncate
		RETURN substr(img, 1, floor(random() * n)::int);
	WHEN 3 THEN					-- extend with random bytes
		RETURN img || decode(md5(random()::text), 'hex');
	WHEN 4 THEN					-- overwrite a byte of the image
		pos := floor(random() * n)::int;
		RETURN set_byte(img, pos, floor(random() * 256)::int);
	WHEN 5 THEN					-- random bytes behind a valid format byte
		RETURN '\x03'::bytea || decode(repeat(md5(random()::text), 1 + floor(random() * 8)::int), 'hex');
	ELSE						-- the header kept, the image shuffled
		RETURN substr(img, 1, 21) || substr(img, 22 + floor(random() * (n - 21))::int)
			|| substr(img, 22, 9);
	END CASE;
END;
$$;
});

my $fuzz = $node->safe_psql(
	'postgres', q{
SELECT setseed(0.13) \gset

CREATE TEMP TABLE v_outcome AS
SELECT k.kind, v_try(v_mutate(almanac._encode_value(s.r), k.kind), s.r) AS outcome
  FROM v_samples s, generate_series(0, 6) AS k(kind), generate_series(1, 200) AS rep;
-- values of other row types, read as v_row
INSERT INTO v_outcome
SELECT 10, v_try(almanac._encode_value(ROW(i, jsonb_build_object('i', i))::v_small), NULL)
  FROM generate_series(1, 50) AS i;
INSERT INTO v_outcome
SELECT 11, v_try(almanac._encode_value(ROW((s.r).i2, (s.r).i4, (s.r).i8, (s.r).num, (s.r).amount,
		(s.r).t, (s.r).vc, (s.r).ch, (s.r).b, (s.r).ts, (s.r).tstz, (s.r).d, (s.r).f8, (s.r).ok,
		(s.r).u, (s.r).ints::int8[], (s.r).grid::int4[], (s.r).texts, (s.r).topics, (s.r).doc,
		(s.r).ref, (s.r).refs, (s.r).refd)::v_swap), s.r)
  FROM v_samples s;
-- v_row values read as another row type
INSERT INTO v_outcome
SELECT 12, v_try_small(almanac._encode_value(s.r)) FROM v_samples s;
-- unmutated values come back whole
INSERT INTO v_outcome
SELECT 13, v_try(almanac._encode_value(s.r), s.r) FROM v_samples s;
SELECT kind || ':' || outcome || ':' || count(*) FROM v_outcome GROUP BY kind, outcome ORDER BY kind, outcome;
});
note "fuzz outcomes (kind:outcome:count):\n$fuzz";

my %count;
for my $line (split /\n/, $fuzz)
{
	my ($kind, $outcome, $n) = split /:/, $line;
	$count{$kind}{$outcome} += $n;
}
my @bad = grep { !/^\d+:(same|XX001|42804|55000):/ } split /\n/, $fuzz;
is_deeply(\@bad, [], 'every mutated value decodes to the original row or a decoder error');
is_deeply([ grep { $_ ne 'same' } keys %{ $count{13} } ], [],
	'every unmutated value of every type comes back whole');
is($count{13}{same}, 13, 'all 13 sample rows checked');
is_deeply([ keys %{ $count{$_} } ], ['42804'], "kind $_: another row type is a layout error")
  for (10, 11, 12);
ok($count{0}{XX001} == 13 * 200, 'every single bit flip is caught');

# 5. forged values: images mutated, then sealed with the right layout
# fingerprint and a valid checksum (almanac._seal_value; only whoever writes
# the store's files could), for a row of every type whose readers follow
# offsets or a type OID from its bytes (arrays, composites, ranges,
# multiranges, jsonb, numerics, names) and the plain ones.  Any outcome but a
# crash will do: the row, another row, or an ERROR; the decoder's checks of
# those types' insides must turn up among them (XX001).
$node->safe_psql(
	'postgres', q{
CREATE TYPE v_sealed AS (
	i4 int4, num numeric, amount v_amount, t text, vc varchar(12), b bytea, ints int4[],
	grid int8[], texts text[], topics v_topics, ref v_ref, refs v_ref[], refd v_ref_d,
	r int4range, rs int4range[], m int4multirange, n name, ns name[], doc jsonb, docs jsonb[]);
CREATE TABLE v_sealed_samples AS
SELECT ROW((s.r).i4, (s.r).num, (s.r).amount, (s.r).t, (s.r).vc, (s.r).b, (s.r).ints,
		   (s.r).grid, (s.r).texts, (s.r).topics, (s.r).ref, (s.r).refs, (s.r).refd,
		   int4range((s.r).i4, (s.r).i4 + 7), ARRAY[int4range(1, 2), 'empty', NULL],
		   int4multirange(int4range(1, 3), int4range((s.r).i4, NULL)),
		   'name' || (s.r).i4, ARRAY['a'::name, NULL, (s.r).t::name], (s.r).doc,
		   ARRAY[(s.r).doc, NULL, '[1, {"k": 2.5}]'])::v_sealed AS r
  FROM v_samples s;
CREATE FUNCTION v_try_sealed(img bytea, orig v_sealed) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r v_sealed;
BEGIN
	r := almanac._decode_value(almanac._seal_value(img, NULL::v_sealed), NULL::v_sealed);
	RETURN CASE WHEN r::text IS NOT DISTINCT FROM orig::text THEN 'same' ELSE 'other' END;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END;
$$;
});
my $forged = $node->safe_psql(
	'postgres', q{
SELECT setseed(0.31) \gset
SELECT outcome || ':' || count(*)
  FROM (SELECT v_try_sealed(v_mutate(substr(almanac._encode_value(s.r), 22), k.kind), s.r) AS outcome
		  FROM v_sealed_samples s, unnest(ARRAY[0, 1, 4]) AS k(kind), generate_series(1, 200) AS rep) AS o
 GROUP BY outcome ORDER BY outcome;
});
note "forged outcomes (outcome:count):\n$forged";
like($forged, qr/^XX001:\d+$/m, 'forged values: the checks inside datums refuse some');
like($forged, qr/^same:\d+$/m, 'forged values: a change that changes nothing reads the row');
is($node->safe_psql('postgres',
		q{SELECT count(*) FILTER (WHERE almanac._decode_value(almanac._encode_value(r), NULL::v_sealed)::text = r::text)
			FROM v_sealed_samples}),
	'13', 'every unforged value of those types passes the checks');

# the server never restarted
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$started, 'the postmaster did not restart');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'no backend was terminated by a signal');

$node->stop;
done_testing();
