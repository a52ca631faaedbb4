# A seeded differential fuzzer: random queries and writes whose answers must
# be the same two ways.
#
# 1. Wrapper against heap.  Four shapes of key, (text, bigint), (int), (text)
#    and (bigint, int), each a heap table with a primary key (h_X) and an
#    almanac foreign table (f_X, all four in one column family under
#    different prefixes), with NULLable numeric, jsonb, bytea, text[],
#    timestamptz, bool and text columns, with values at their types' edges
#    too (numeric infinities and 1,000-digit scales, 300-deep jsonb, bytea of
#    0 and 300 kB, multibyte and multi-line text, multi-dimensional arrays
#    and ones with a lower bound, the last timestamps).  Two sessions run the same script,
#    one on the heap tables, one on the foreign tables: reads (key equality,
#    IN, = ANY, ranges, non-key filters, ORDER BY, LIMIT/OFFSET, aggregates,
#    joins, subqueries, LATERAL, prepared statements past the custom plans,
#    SCROLL and WITH HOLD cursors) and writes (INSERT, ON CONFLICT DO
#    NOTHING, UPDATE of key and non-key columns, DELETE, RETURNING, COPY FROM
#    a file in text, CSV and binary format) in and
#    out of transactions, with SAVEPOINT / ROLLBACK TO / RELEASE and
#    REPEATABLE READ.  Every statement's rows and SQLSTATE must match; after
#    each transaction the whole tables must match.
# 2. Router on against off.  A few chains of blocks, transactions, events
#    and account states in the core tables; the shapes the router takes
#    (point lookups, IN / = ANY, latest block, latest state, event ranges,
#    latest events, with constants and with parameters past the custom
#    plans) and near misses it must leave alone, each run with
#    almanac.router on and then off in one session, compared exactly; with
#    writes (new blocks, reverts, updates and deletes of states, events,
#    transactions) by the same session, in transactions with savepoints, and
#    by a second session while the first holds a REPEATABLE READ snapshot or
#    a cursor.  What a chain indexer does too: almanac.ingest_block(s) of
#    JSON-RPC blocks (fz_rpc), reorgs (a stored height replaced, on_reorg
#    'revert' and 'error'), set_safe / set_finalized and reverts below
#    finality (refused), COPY into each core table, TRUNCATE (committed,
#    rolled back, in savepoints), disable_mirror / enable_mirror (backfill)
#    and resync, also by the second session while the first holds a snapshot;
#    the reading session's own writes before its reads, after ROLLBACK TO,
#    and between a cursor's fetches (WITH HOLD too); PREPARE TRANSACTION of
#    its writes, read while prepared, then COMMIT or ROLLBACK PREPARED by
#    either session.  After each step that writes, every enabled mirror must
#    equal its table: almanac.verify finds nothing, and every heap row looked
#    up by its key with the router on (fz_mirror_check: blocks and
#    transactions by key, each account's latest state, each contract and
#    topic0's events newest first) is the heap's row.
#
# FUZZ_TRACE=1 notes every statement with its SQLSTATE and error.
# Deterministic from FUZZ_SEED (default below) and FUZZ_QUERIES (steps per
# part; the default keeps `make test` short).  Rows without an ORDER BY of
# their own are compared as sorted lines; every ORDER BY with a LIMIT,
# OFFSET or cursor ends in the key columns, so it is total.  A mismatch is
# printed with the seed, the statement, both outputs and SQLSTATEs.
#
# A long run by hand (from the worktree; the TAP output is in
# .build/test/tap.log, the server logs under .build/test/tap):
#
#   for s in 1 2 3 4 5; do
#     FUZZ_SEED=$s FUZZ_QUERIES=3000 make test REGRESS=extension ISOLATION_SPECS= \
#       TAP_TESTS=test/t/043_differential_fuzz.pl || break
#   done
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);
use List::Util qw(min);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $seed = $ENV{FUZZ_SEED} // 20261207;
my $nq = $ENV{FUZZ_QUERIES} // 400;
srand($seed);
note "FUZZ_SEED=$seed FUZZ_QUERIES=$nq";

# (FUZZ_TRACE: the server logs every statement with its transaction id)
my $node = almanac_node('differential_fuzz', "max_prepared_transactions = 4\n"
	  . ($ENV{FUZZ_TRACE} ? "log_min_duration_statement = 0\nlog_line_prefix = '%m [%p] xid %x: '\n" : ''));
my @mismatches;
my $compared = 0;
my %tally;

# ---------------------------------------------------------------- sessions
# A psql process fed one statement at a time; each statement is followed by
# an \echo of a marker and the statement's SQLSTATE.
my $marker = 0;
# the statements since the last check of the mirrors, for a mismatch's report
my @recent;

sub session
{
	my ($name) = @_;
	my $s = { name => $name, in => '', out => '', err => '' };
	$s->{timer} = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
	$s->{h} = IPC::Run::start(
		[
			'psql', '-XAtq', '-v', 'ON_ERROR_STOP=0', '-P', 'null=<NULL>',
			'-d', $node->connstr('postgres'), '-f', '-'
		],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err}, $s->{timer});
	return $s;
}

# run $sql in session $s: (output, sqlstate, stderr)
sub run_sql
{
	my ($s, $sql) = @_;
	$marker++;
	$s->{out} = '';
	$s->{err} = '';
	$sql .= ';' unless $sql =~ /;\s*$/;
	$s->{in} .= "$sql\n\\echo \@\@M$marker :SQLSTATE\n";
	$s->{timer}->start($PostgreSQL::Test::Utils::timeout_default);
	while ($s->{out} !~ /\@\@M$marker (\S+)\n/)
	{
		eval { $s->{h}->pump; };
		if ($@ || !$s->{h}->pumpable)
		{
			my $log = slurp_file($node->logfile);
			my @crash = grep { /terminated by signal|server process .* was terminated/ } split /\n/, $log;
			fail("session $s->{name} died (seed $seed) at: $sql");
			diag("psql stderr: $s->{err}\nserver log:\n" . join("\n", @crash));
			done_testing();
			exit 1;
		}
	}
	my $out = $s->{out};
	$out =~ s/\@\@M$marker (\S+)\n//;
	my $state = $1;
	$tally{ $state eq '00000' ? ($out eq '' ? 'empty' : 'rows') : 'error' }++;
	$tally{"error $state"}++ if $state ne '00000';
	note("[$s->{name}] $sql\n=> $state $s->{err}") if $ENV{FUZZ_TRACE};
	push @recent, "[$s->{name}] $sql => $state";
	shift @recent if @recent > 60;
	return ($out, $state, $s->{err});
}

sub mismatch
{
	my ($what, $sql, $a, $b, $la, $lb) = @_;
	my $text = "MISMATCH ($what), FUZZ_SEED=$seed\nstatement: $sql\n"
	  . "--- $la (SQLSTATE $a->[1]):\n$a->[0]$a->[2]\n--- $lb (SQLSTATE $b->[1]):\n$b->[0]$b->[2]\n"
	  . "--- the statements before it (FUZZ_TRACE=1 shows all):\n" . join("\n", @recent[ -min(20, scalar @recent) .. -1 ]) . "\n";
	push @mismatches, $text;
	diag($text) if @mismatches <= 30;
}

# the rows as sorted lines (an empty key is an empty line: keep every one)
sub sorted_lines
{
	my @l = split /\n/, $_[0], -1;
	pop @l if @l && $l[-1] eq '';
	return join('', sort map { "$_\n" } @l);
}

# ------------------------------------------------------------ random pieces
sub pick { return $_[ int(rand(@_)) ]; }
sub chance { return rand() < $_[0]; }
sub lit { my ($v) = @_; $v =~ s/'/''/g; return "'$v'"; }

my @text_keys = ('', 'a', 'b', 'ab', 'a:b', 'a:', ':a', ':', '\\', 'a\\b', 'a\\:b', 'eth', 'eth!', 'eth:x',
	'ethx', 'Z', "\xc3\xa9", ' a', 'a ', 'k' x 200, '0x' . md5_hex('t'), "it's");
my @bigint_keys = (0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 255, 256, 65535, 65536, 2147483647, 2147483648,
	4294967295, 4294967296, '9223372036854775806', '9223372036854775807');
my @int_keys = (0 .. 10, 255, 256, 65535, 65536, 2147483646, 2147483647);
my @bigint_far = (-1, '-9223372036854775808', -256, '9223372036854775807');
my @int_far = (-1, -2147483648, 2147483647);

my %nonkey_pool = (
	n => [ '0', '-1', '1.5', '-0.000001', '1e30', '115792089237316195423570985008687907853269984665640564039457584007913129639935',
		"'NaN'", '-9223372036854775808', '42', '3.14159265358979323846264338327950288' ],
	j => [ lit('{}'), lit('[]'), lit('{"a": 1}'), lit('{"a": [1, 2, {"b": null}]}'), lit('"str"'), lit('null'), lit('1.50'),
		lit('{"a": "x:y", "k": [true, false]}') ],
	b => [ lit('\x'), lit('\x00'), lit('\xdeadbeef'), lit('\x3a5c3a'), "decode(repeat('ab', 3000), 'hex')", lit('\x0001ff') ],
	a => [ lit('{}'), lit('{a,b}'), lit('{NULL}'), lit('{"a:b","",NULL}'), lit('{z}'), "ARRAY[repeat('y', 500)]" ],
	ts => [ lit('2024-01-01 00:00:00+00'), lit('infinity'), lit('-infinity'), lit('1970-01-01 00:00:00.000001+00'),
		lit('2262-04-11 23:47:16.854775+00'), lit('1999-12-31 23:59:59.999999+00'), lit('4713-01-01 00:00:00+00 BC') ],
	f => [ 'true', 'false' ],
	s => [ lit(''), lit('x'), lit('a:b'), lit('\\'), "repeat('long', 1000)", lit("it's"), lit('eth'), lit('ab') ],
);
# values at the edges of their types, rarer than the above
my %edge_pool = (
	n => [ "'Infinity'", "'-Infinity'", "'-0'", "('0.' || repeat('0', 900) || '1')::numeric", "'1e1000'::numeric",
		"'123456789012345678901234567890.123456789012345678901234567890'", "(1 / 3::numeric(1000, 999))" ],
	j => [ "(repeat('[', 300) || repeat(']', 300))::jsonb", "(SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 400) g)",
		lit("{\"\xc3\xa9\": \"\xf0\x9f\x98\x80\", \"\": [[], {}, null, 1e-300]}"), lit('{"a": {"b": {"c": {"d": [1, [2, [3, [4]]]]}}}}') ],
	b => [ "decode(repeat('ab', 150000), 'hex')", "''::bytea", "'\\x00'::bytea || decode(repeat('00', 9000), 'hex')" ],
	a => [ lit('{{a,b},{c,d}}'), lit('[0:1]={x,y}'), 'ARRAY[NULL]::text[]', lit("{\"\xf0\x9f\x98\x80\",\"\xe4\xb8\xad\"}"), "'{}'::text[]" ],
	# (not the last timestamp itself: whether "ts + interval '1 day'" in a
	# select list fails would depend on the plan, whether it projects rows
	# before a sort or after a limit)
	ts => [ lit('epoch'), lit('294276-12-01 00:00:00+00'), lit('4713-11-24 00:00:00+00 BC'), lit('2000-02-29 12:00:00.5+14') ],
	f => [ 'NULL' ],
	s => [ lit("\xf0\x9f\x98\x80\xc3\xa9\xe4\xb8\xad"), lit("line1\nline2"), lit("tab\there"), "repeat('\xe4\xb8\xad', 40000)",
		lit("\xcc\x81combining") ],
);
push @{ $nonkey_pool{$_} }, @{ $edge_pool{$_} } for keys %edge_pool;
my %nonkey_type = (n => 'numeric', j => 'jsonb', b => 'bytea', a => 'text[]', ts => 'timestamptz', f => 'bool', s => 'text');
my @nonkeys = qw(n j b a ts f s);

my @shapes = (
	{ name => 'a', keys => [ [ 'k1', 'text' ], [ 'k2', 'bigint' ] ], prefix => 'p' },
	{ name => 'b', keys => [ [ 'k1', 'int' ] ], prefix => 'p2' },
	{ name => 'c', keys => [ [ 'k1', 'text' ] ], prefix => 'pp' },
	{ name => 'd', keys => [ [ 'k1', 'bigint' ], [ 'k2', 'int' ] ], prefix => 'q' },
);

sub key_value
{
	my ($type, $far) = @_;
	return lit(pick(@text_keys)) if $type eq 'text';
	if ($far && chance(0.15))
	{
		return pick($type eq 'int' ? @int_far : @bigint_far);
	}
	return pick($type eq 'int' ? @int_keys : @bigint_keys);
}

sub nonkey_value
{
	my ($c) = @_;
	return 'NULL' if chance(0.25);
	return pick(@{ $nonkey_pool{$c} });
}

sub keys_of { return map { $_->[0] } @{ $_[0]->{keys} }; }
sub cols_of { return (keys_of($_[0]), @nonkeys); }

# a total order: some columns, then every key column
sub total_order
{
	my ($s, $al) = @_;
	my $p = $al ? "$al." : '';
	my @o;
	for my $c (grep { chance(0.3) } cols_of($s))
	{
		next if $c eq 'j' || $c eq 'a' && chance(0.5);    # jsonb and arrays order too, but rarely
		push @o, "$p$c" . pick('', ' DESC', ' ASC NULLS FIRST', ' DESC NULLS LAST');
	}
	push @o, map { "$p$_" . pick('', ' DESC') } keys_of($s);
	return join(', ', @o);
}

sub key_pred
{
	my ($s, $al) = @_;
	my $p = $al ? "$al." : '';
	my @k = @{ $s->{keys} };
	my ($k1, $t1) = @{ $k[0] };
	my ($k2, $t2) = @k > 1 ? @{ $k[1] } : (undef, undef);
	my $last = $k[-1];
	my $lead = @k > 1 ? "$p$k1 = " . key_value($t1, 1) . ' AND ' : '';
	my $int_col = $t1 ne 'text' ? [ $k1, $t1 ] : (defined $k2 && $t2 ne 'text' ? [ $k2, $t2 ] : undef);
	my $r = int(rand(12));
	if ($r == 0) { return join(' AND ', map { "$p$_->[0] = " . key_value($_->[1], 1) } @k); }
	if ($r == 1)
	{
		return $lead . "$p$last->[0] IN (" . join(', ', map { key_value($last->[1], 1) } 1 .. 1 + int(rand(4))) . ')';
	}
	if ($r == 2)
	{
		my @v = map { chance(0.1) ? 'NULL' : key_value($last->[1], 1) } 1 .. 1 + int(rand(4));
		return $lead . "$p$last->[0] = ANY (ARRAY[" . join(', ', @v) . "]::$last->[1]\[])";
	}
	if ($r == 3 && @k > 1) { return "$p$k1 = " . key_value($t1, 1); }
	if ($r == 4 && $int_col)
	{
		my ($c, $t) = @$int_col;
		my $pre = ($c eq 'k2') ? "$p$k1 = " . key_value($t1, 1) . ' AND ' : '';
		my $op = pick('<', '<=', '>', '>=', 'BETWEEN', 'rev', 'two');
		return $pre . "$p$c BETWEEN " . key_value($t, 1) . ' AND ' . key_value($t, 1) if $op eq 'BETWEEN';
		return $pre . key_value($t, 1) . " < $p$c" if $op eq 'rev';
		return $pre . "$p$c > " . key_value($t, 1) . " AND $p$c <= " . key_value($t, 1) if $op eq 'two';
		return $pre . "$p$c $op " . key_value($t, 1);
	}
	if ($r == 5 && defined $k2) { return "$p$k2 = " . key_value($t2, 1); }
	if ($r == 6)
	{
		return '(' . join(' AND ', map { "$p$_->[0] = " . key_value($_->[1], 1) } @k) . ' OR '
		  . join(' AND ', map { "$p$_->[0] = " . key_value($_->[1], 1) } @k) . ')';
	}
	if ($r == 7)
	{
		# (not LIKE a pattern that ends in its escape character: the heap's
		# index turns it into an equality and never evaluates it, so whether
		# it raises 22025 depends on the plan)
		my $v = key_value($t1, 1);
		return "$p$k1 " . pick('<', '>=', $t1 eq 'text' && $v !~ /\\'$/ ? 'LIKE' : '<>') . " $v";
	}
	if ($r == 8 && $t1 ne 'text')
	{
		# cross-type values: smallint, int, numeric constants and expressions
		return $lead . "$p$last->[0] = " . pick('2::smallint', '3::int', '4::numeric', '(1 + 1)', "'5'", '10::bigint');
	}
	if ($r == 9) { return "$p$k1 IS " . pick('NULL', 'NOT NULL'); }
	if ($r == 10) { return $lead . "$p$last->[0] = NULL"; }
	return 'true';
}

sub nonkey_pred
{
	my ($al) = @_;
	my $p = $al ? "$al." : '';
	return pick("${p}n > 0", "${p}n IS NULL", "${p}j ? 'a'", "${p}j \@> '{\"a\": 1}'", "${p}b = '\\x00'",
		"length(${p}b) > 2", "${p}a \@> '{a}'", "cardinality(${p}a) = 0", "${p}ts < '2000-01-01'",
		"${p}ts IS NOT NULL", "${p}f", "NOT ${p}f", "${p}f IS NULL", "${p}s LIKE 'a%'", "${p}s IS NULL",
		"length(${p}s) > 100", "${p}s = ''", "${p}n = 'NaN'", "${p}j IS NOT NULL");
}

sub where_of
{
	my ($s, $al) = @_;
	my $w = key_pred($s, $al);
	my $r = rand();
	if ($r < 0.3) { $w .= ' AND ' . nonkey_pred($al); }
	elsif ($r < 0.4) { $w = "($w) OR " . nonkey_pred($al); }
	elsif ($r < 0.45) { $w = "NOT ($w)"; }
	return $w;
}

sub select_list
{
	my ($s, $al) = @_;
	my $p = $al ? "$al." : '';
	my $r = rand();
	return $al ? "$al.*" : '*' if $r < 0.4;
	if ($r < 0.55)
	{
		return join(', ', map { pick("length(${p}s)", "${p}j->>'a'", "md5(${p}b)", "${p}n + 1", "${p}a[1]",
					"${p}ts + interval '1 day'", "${p}f IS TRUE", "$p" . (keys_of($s))[0], "${p}s || ':'") } 1 .. 3);
	}
	if ($r < 0.62) { return $al ? "row_to_json($al)" : "row_to_json(t)"; }
	my @c = grep { chance(0.5) } cols_of($s);
	@c = ((keys_of($s))[0]) unless @c;
	return join(', ', map { "$p$_" } @c);
}

sub tname { return "\@T_$_[0]->{name}\@"; }

# --------------------------------------------------- part 1: wrapper/heap
my ($hs, $fs) = (session('heap'), session('foreign'));

sub run_both
{
	my ($sql, $sort) = @_;
	my $hsql = $sql =~ s/\@T_(\w)\@/h_$1/gr;
	my $fsql = $sql =~ s/\@T_(\w)\@/f_$1/gr;
	my @h = run_sql($hs, $hsql);
	my @f = run_sql($fs, $fsql);
	$compared++;
	my ($ho, $fo) = $sort ? (sorted_lines($h[0]), sorted_lines($f[0])) : ($h[0], $f[0]);
	return 0 unless $ho ne $fo || $h[1] ne $f[1];
	mismatch('heap vs foreign table', $fsql, \@h, \@f, 'heap', 'foreign');
	return 1;
}

my $setup = '';
for my $s (@shapes)
{
	my $cols = join(', ', (map { "$_->[0] $_->[1]" } @{ $s->{keys} }), map { "$_ $nonkey_type{$_}" } @nonkeys);
	my $keys = join(', ', keys_of($s));
	$setup .= "CREATE TABLE h_$s->{name} ($cols, PRIMARY KEY ($keys));\n";
	$setup .= "CREATE FOREIGN TABLE f_$s->{name} ($cols) SERVER almanac_store OPTIONS "
	  . "(column_family 'fuzz', key_prefix '$s->{prefix}', key_columns '$keys');\n";
}
$node->safe_psql('postgres', $setup);

sub insert_sql
{
	my ($s, $n) = @_;
	my @rows;
	for (1 .. $n)
	{
		push @rows, '(' . join(', ', (map { key_value($_->[1], 0) } @{ $s->{keys} }), map { nonkey_value($_) } @nonkeys) . ')';
	}
	return 'INSERT INTO ' . tname($s) . ' VALUES ' . join(', ', @rows);
}

for my $s (@shapes)
{
	run_both(insert_sql($s, 40) . ' ON CONFLICT DO NOTHING', 0);
	my $n = $node->safe_psql('postgres', "SELECT count(*) FROM f_$s->{name}");
	BAIL_OUT("the first rows of f_$s->{name} were not loaded") if $n < 10;
}

sub compare_tables
{
	for my $s (@shapes)
	{
		my $keys = join(', ', keys_of($s));
		if (run_both('SELECT * FROM ' . tname($s) . " ORDER BY $keys", 0))
		{
			# resynchronise, so that one difference is reported once
			run_sql($fs, "DELETE FROM f_$s->{name}; INSERT INTO f_$s->{name} SELECT * FROM h_$s->{name}");
		}
	}
}

sub gen_select
{
	my $s = pick(@shapes);
	my $t = tname($s);
	my $from = "$t t";
	my $w = where_of($s, 't');
	my $sel = select_list($s, 't');
	if (chance(0.45))
	{
		my $sql = "SELECT $sel FROM $from WHERE $w ORDER BY " . total_order($s, 't');
		$sql .= ' LIMIT ' . pick(0, 1, 2, 5, 'ALL', 'NULL') if chance(0.6);
		$sql .= ' OFFSET ' . pick(0, 1, 3) if chance(0.3);
		return ($sql, 0);
	}
	if (chance(0.15))
	{
		# the latest key under a prefix, forward and backward
		my @k = keys_of($s);
		my $dir = pick('DESC', 'ASC');
		return ("SELECT $sel FROM $from WHERE $w ORDER BY " . join(', ', map { "t.$_ $dir" } @k) . ' LIMIT ' . pick(1, 2, 3), 0);
	}
	return ("SELECT $sel FROM $from WHERE $w", 1);
}

sub gen_aggregate
{
	my $s = pick(@shapes);
	my $t = tname($s);
	my ($k1) = keys_of($s);
	my $w = where_of($s, undef);
	my $ord = join(', ', keys_of($s));
	my $r = rand();
	return ("SELECT count(*), count(s), sum(n), min($k1), max($k1), bool_or(f), max(ts), "
		  . "string_agg(${k1}::text, ',' ORDER BY $ord), md5(string_agg(b, '\\x00' ORDER BY $ord)) FROM $t WHERE $w", 0)
	  if $r < 0.5;
	return ("SELECT $k1, count(*), max(n), array_agg(s ORDER BY $ord) FROM $t WHERE $w GROUP BY $k1"
		  . (chance(0.3) ? ' HAVING count(*) > 1' : ''), 1)
	  if $r < 0.8;
	return ("SELECT count(DISTINCT j), count(a), min(length(s)) FROM $t WHERE $w", 0);
}

my @joins = (
	[ 'a', 'd', 'x.k2 = y.k1' ],
	[ 'b', 'd', 'x.k1 = y.k2' ],
	[ 'a', 'c', 'x.k1 = y.k1' ],
	[ 'd', 'b', 'x.k2 = y.k1' ],
	[ 'c', 'a', 'x.k1 = y.k1' ],
	[ 'a', 'a', 'x.k1 = y.k1 AND x.k2 < y.k2' ],
);
my %shape_by_name = map { $_->{name} => $_ } @shapes;

sub gen_join
{
	my ($xn, $yn, $on) = @{ pick(@joins) };
	my ($x, $y) = ($shape_by_name{$xn}, $shape_by_name{$yn});
	my $kind = pick('JOIN', 'LEFT JOIN', 'JOIN');
	my $w = where_of($x, 'x');
	$w .= ' AND ' . where_of($y, 'y') if chance(0.4) && $kind eq 'JOIN';
	my $sel = join(', ', (map { "x.$_" } keys_of($x)), (map { "y.$_" } keys_of($y)), pick('x.n', 'y.s', 'y.j', 'x.b'));
	my $sql = "SELECT $sel FROM " . tname($x) . " x $kind " . tname($y) . " y ON $on WHERE $w";
	if (chance(0.4))
	{
		return ("$sql ORDER BY " . join(', ', (map { "x.$_ DESC" } keys_of($x)), map { "y.$_" } keys_of($y)) . ' LIMIT ' . pick(1, 3, 10), 0);
	}
	return ($sql, 1);
}

sub gen_subquery
{
	my $r = int(rand(5));
	my ($a, $b, $c, $d) = @shape_by_name{qw(a b c d)};
	return ("SELECT x.k1, x.k2, x.s FROM \@T_a\@ x WHERE x.k2 IN (SELECT k1 FROM \@T_d\@ WHERE " . where_of($d, undef) . ")", 1)
	  if $r == 0;
	return ("SELECT y.* FROM \@T_d\@ y WHERE " . pick('', 'NOT ') . "EXISTS (SELECT 1 FROM \@T_b\@ z WHERE z.k1 = y.k2 AND "
		  . nonkey_pred('z') . ')', 1)
	  if $r == 1;
	return ("SELECT x.k1, x.k2, (SELECT count(*) FROM \@T_d\@ y WHERE y.k1 = x.k2), "
		  . "(SELECT max(z.s) FROM \@T_c\@ z WHERE z.k1 = x.k1) FROM \@T_a\@ x WHERE " . where_of($a, 'x'), 1)
	  if $r == 2;
	return ("SELECT b.k1, l.* FROM \@T_b\@ b, LATERAL (SELECT d.k1, d.k2, d.n FROM \@T_d\@ d WHERE d.k2 = b.k1 ORDER BY d.k1 "
		  . pick('DESC', 'ASC') . ', d.k2 LIMIT 2) l WHERE ' . where_of($b, 'b'), 1)
	  if $r == 3;
	return ("SELECT c.k1, c.n FROM \@T_c\@ c WHERE c.k1 = (SELECT min(k1) FROM \@T_a\@ WHERE " . where_of($a, undef) . ')', 1);
}

my $prep = 0;

sub gen_prepared
{
	my $s = pick(@shapes);
	my @k = @{ $s->{keys} };
	my $t = tname($s);
	my @types = map { $_->[1] } @k;
	my (@conds, @ptypes);
	my $r = int(rand(5));
	my $i = 1;
	my $order = total_order($s, undef);
	my $limit = '';
	if ($r == 0)
	{
		@conds = map { "$_->[0] = \$" . $i++ } @k;
		@ptypes = @types;
	}
	elsif ($r == 1)
	{
		@conds = map { "$_->[0] = \$" . $i++ } @k[ 0 .. $#k - 1 ];
		push @conds, "$k[-1][0] = ANY (\$$i)";
		@ptypes = (@types[ 0 .. $#types - 1 ], "$types[-1]\[]");
	}
	elsif ($r == 2)
	{
		@conds = map { "$_->[0] = \$" . $i++ } @k[ 0 .. $#k - 1 ];
		push @conds, "$k[-1][0] >= \$$i", "$k[-1][0] < \$" . ($i + 1);
		@ptypes = (@types[ 0 .. $#types - 1 ], $types[-1], $types[-1]);
	}
	elsif ($r == 3)
	{
		@conds = map { "$_->[0] = \$" . $i++ } @k[ 0 .. $#k - 1 ];
		@conds = ('true') unless @conds;
		@ptypes = @types[ 0 .. $#types - 1 ];
		$order = join(', ', map { "$_->[0] DESC" } @k);
		$limit = ' LIMIT $' . (@ptypes + 1);
		push @ptypes, 'bigint';
	}
	else
	{
		@conds = ("$k[-1][0] IN (\$1, \$2)");
		@ptypes = ($types[-1], $types[-1]);
	}
	$prep++;
	my $name = "p$prep";
	my $sel = select_list($s, undef);
	$sel = '*' if $sel =~ /row_to_json/;
	my $w = join(' AND ', @conds);
	$w .= ' AND ' . nonkey_pred(undef) if chance(0.2);
	run_both("PREPARE $name(" . join(', ', @ptypes) . ") AS SELECT $sel FROM $t WHERE $w ORDER BY $order$limit", 0);
	for (1 .. 6 + int(rand(4)))
	{
		my @args;
		for my $pt (@ptypes)
		{
			if ($pt =~ /\[\]$/)
			{
				my $bt = $pt =~ s/\[\]//r;
				push @args, 'ARRAY[' . join(', ', map { key_value($bt, 1) } 1 .. 1 + int(rand(3))) . "]::$pt";
			}
			else { push @args, chance(0.05) ? 'NULL' : key_value($pt, 1); }
		}
		$args[-1] = pick(0, 1, 2, 5, 'NULL') if $limit;
		run_both("EXECUTE $name(" . join(', ', @args) . ')', 0);
	}
	run_both("DEALLOCATE $name", 0);
}

sub gen_cursor
{
	my $s = pick(@shapes);
	my $t = tname($s);
	my $hold = chance(0.25);
	my $sql = 'SELECT ' . select_list($s, 't') . " FROM $t t WHERE " . where_of($s, 't') . ' ORDER BY ' . total_order($s, 't');
	run_both('BEGIN', 0);
	run_both('DECLARE cur SCROLL CURSOR ' . ($hold ? 'WITH HOLD ' : '') . "FOR $sql", 0);
	run_both('COMMIT', 0) if $hold;
	for (1 .. 4 + int(rand(8)))
	{
		if (!$hold && chance(0.15))
		{
			# a write after the DECLARE: the cursor does not see it
			dml_step();
			next;
		}
		run_both(pick('FETCH 2 FROM cur', 'FETCH BACKWARD 1 FROM cur', 'FETCH ABSOLUTE ' . pick(1, 3, -1, -2, 0, 100) . ' FROM cur',
				'FETCH RELATIVE ' . pick(-2, 2, 0) . ' FROM cur', 'FETCH FIRST FROM cur', 'FETCH LAST FROM cur',
				'FETCH PRIOR FROM cur', 'FETCH NEXT FROM cur', 'MOVE 2 IN cur', 'FETCH ALL FROM cur',
				'FETCH BACKWARD ALL FROM cur', 'MOVE LAST IN cur'), 0);
	}
	run_both($hold ? 'CLOSE cur' : pick('COMMIT', 'ROLLBACK'), 0);
}

my $copy_in = $node->basedir . '/fz_copy_in.dat';

# COPY FROM a file of rows with values of every kind, in text, CSV or
# binary format: the same file into the heap and the foreign table
sub gen_copy
{
	my $s = pick(@shapes);
	my $fmt = pick('', ' (FORMAT csv)', ' (FORMAT binary)', " (FORMAT csv, NULL 'nul', QUOTE '''')");
	my @rows;
	for (1 .. 1 + int(rand(6)))
	{
		push @rows, '(' . join(', ', (map { key_value($_->[1], 0) . "::$_->[1]" } @{ $s->{keys} }),
			map { '(' . nonkey_value($_) . ")::$nonkey_type{$_}" } @nonkeys) . ')';
	}
	my $cols = join(', ', cols_of($s));
	$node->safe_psql('postgres', "COPY (SELECT * FROM (VALUES " . join(', ', @rows) . ") v($cols)) TO '$copy_in'$fmt");
	return run_both('COPY ' . tname($s) . " FROM '$copy_in'$fmt", 1);
}

sub dml_step
{
	my $s = pick(@shapes);
	my $t = tname($s);
	my $ret = chance(0.5) ? ' RETURNING *' : '';
	my $r = rand();
	return gen_copy() if chance(0.06);
	if ($r < 0.35)
	{
		return run_both(insert_sql($s, 1 + int(rand(3))) . (chance(0.3) ? ' ON CONFLICT DO NOTHING' : '') . $ret, 1);
	}
	if ($r < 0.6)
	{
		my @set;
		for my $c (grep { chance(0.35) } @nonkeys)
		{
			push @set, "$c = " . pick(nonkey_value($c),
				{ n => 'n + 1', j => "j || '{\"u\": 1}'", b => "b || '\\x3a'", a => "array_append(a, 'z')",
					ts => "ts + interval '1 day'", f => 'NOT f', s => "s || ':'" }->{$c});
		}
		@set = ('s = ' . nonkey_value('s')) unless @set;
		return run_both("UPDATE $t SET " . join(', ', @set) . ' WHERE ' . where_of($s, undef) . $ret, 1);
	}
	if ($r < 0.75)
	{
		# a key update: of one row (by its whole key), or to one constant
		my @k = @{ $s->{keys} };
		my ($c, $ty) = @{ pick(@k) };
		my $full = join(' AND ', map { "$_->[0] = " . key_value($_->[1], 0) } @k);
		if (chance(0.5))
		{
			my $v = $ty eq 'text' ? pick("$c || ':'", "$c || 'x'", key_value($ty, 0)) : pick("$c + 1", "$c + 256", key_value($ty, 0));
			return run_both("UPDATE $t SET $c = $v WHERE $full$ret", 1);
		}
		return run_both("UPDATE $t SET $c = " . key_value($ty, 0) . ', s = ' . nonkey_value('s') . ' WHERE ' . where_of($s, undef) . $ret, 1);
	}
	if ($r < 0.78 && chance(0.5))
	{
		# many rows in one statement: past almanac.write_batch_size when it is small
		my $base = pick(5, 100000, 100150, 100300);
		my $n = pick(10, 100, 300);
		return run_both(pick(
				"INSERT INTO \@T_d\@ SELECT g, (g % 7)::int, g * 1.5, jsonb_build_object('g', g), decode(repeat('cd', 200), 'hex'), "
				  . "ARRAY[g::text], NULL, g % 2 = 0, repeat('v', 300) FROM generate_series($base, $base + $n) g"
				  . (chance(0.7) ? ' ON CONFLICT DO NOTHING' : ''),
				"UPDATE \@T_d\@ SET s = s || 'w', n = n + 1 WHERE k1 BETWEEN $base AND $base + $n",
				"DELETE FROM \@T_d\@ WHERE k1 >= $base AND k1 < $base + $n",
				"INSERT INTO \@T_c\@ SELECT k1 || '!' || k2, n, j, b, a, ts, f, s FROM \@T_a\@ WHERE " . where_of($shape_by_name{a}, undef)
				  . ' ON CONFLICT DO NOTHING',
				"UPDATE \@T_b\@ b SET n = d.n, s = d.s FROM \@T_d\@ d WHERE d.k2 = b.k1 AND d.k1 = " . key_value('bigint', 0)) . $ret, 1);
	}
	if ($r < 0.8)
	{
		# a delete through a subquery of another table
		return run_both('DELETE FROM @T_a@ WHERE k2 IN (SELECT k1 FROM @T_d@ WHERE ' . where_of($shape_by_name{d}, undef) . ")$ret", 1);
	}
	return run_both("DELETE FROM $t WHERE " . where_of($s, undef) . $ret, 1);
}

sub gen_transaction
{
	my @sp;
	my $n = 0;
	run_both('BEGIN' . (chance(0.3) ? ' ISOLATION LEVEL REPEATABLE READ' : ''), 0);
	for (1 .. 2 + int(rand(8)))
	{
		my $r = rand();
		if ($r < 0.5) { dml_step(); }
		elsif ($r < 0.65) { run_both(gen_select()); }
		elsif ($r < 0.7)
		{
			# the whole table as this transaction sees it
			my $s = pick(@shapes);
			run_both('SELECT * FROM ' . tname($s) . ' ORDER BY ' . join(', ', keys_of($s)), 0);
		}
		elsif ($r < 0.8) { $n++; push @sp, "s$n"; run_both("SAVEPOINT s$n", 0); }
		elsif ($r < 0.92 && @sp)
		{
			my $i = int(rand(@sp));
			run_both("ROLLBACK TO $sp[$i]", 0);
			splice(@sp, $i + 1);
		}
		elsif (@sp)
		{
			my $i = int(rand(@sp));
			run_both("RELEASE $sp[$i]", 0);
			splice(@sp, $i);
		}
	}
	run_both(chance(0.8) ? 'COMMIT' : 'ROLLBACK', 0);
}

my $t0 = time;
for my $step (1 .. $nq)
{
	my $r = rand();
	if ($r < 0.3) { run_both(gen_select()); }
	elsif ($r < 0.4) { run_both(gen_aggregate()); }
	elsif ($r < 0.5) { run_both(gen_join()); }
	elsif ($r < 0.58) { run_both(gen_subquery()); }
	elsif ($r < 0.64) { gen_prepared(); }
	elsif ($r < 0.70) { gen_cursor(); }
	elsif ($r < 0.78) { dml_step(); }
	elsif ($r < 0.93) { gen_transaction(); compare_tables(); }
	else
	{
		# plan variety: parameterised nested loops, no sorts by index
		my $v = pick('on', 'off');
		run_both(pick("SET enable_hashjoin = $v; SET enable_mergejoin = $v", "SET almanac.write_batch_size = '64kB'",
				'RESET almanac.write_batch_size', 'SET almanac.key_lock_limit = ' . pick(0, 1, 3), 'RESET almanac.key_lock_limit',
				'SET almanac.reader_row_cache_size = ' . pick(0, "'64kB'"), 'RESET almanac.reader_row_cache_size',
				"SET almanac.shared_row_cache = $v", "SET plan_cache_mode = force_generic_plan", 'RESET plan_cache_mode',
				"SET enable_sort = $v", "SET enable_indexscan = $v", "SET enable_material = $v"), 0);
	}
}
compare_tables();
my $part1 = @mismatches;
note sprintf('part 1: %d steps, %d statements compared in %d s, %d mismatches', $nq, $compared, time - $t0, $part1);
note 'statements by outcome: ' . join(', ', map { "$_: $tally{$_}" } sort keys %tally);
cmp_ok($tally{rows} // 0, '>', $compared / 3, 'a good share of the statements returned rows');
%tally = ();
is($part1, 0, "wrapper against heap: no differences (FUZZ_SEED=$seed)");

# ------------------------------------------------- part 2: router on/off
my ($ms, $ws) = (session('router'), session('writer'));
$compared = 0;
$t0 = time;

sub hash_of { return '0x' . md5_hex($_[0]) . md5_hex($_[0] . '!'); }
sub addr_of { return '0x' . md5_hex($_[0]) . substr(md5_hex($_[0] . 'x'), 0, 8); }

$node->safe_psql('postgres', q{
CREATE FUNCTION fz_hash(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT '0x' || md5(t) || md5(t || '!') $$;
CREATE FUNCTION fz_addr(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT '0x' || md5(t) || left(md5(t || 'x'), 8) $$;
-- the next block of chain c, with ntx transactions, nev events and some account states
CREATE FUNCTION fz_add_block(c text, ver int, ntx int, nev int, seed int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
	bid bigint;
	tid bigint;
BEGIN
	SELECT coalesce(max(block_number) + 1, 0) INTO n FROM almanac.blocks WHERE chain_id = c;
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp, is_safe, metadata)
	VALUES (c, n, fz_hash(c || n || 'v' || ver), fz_hash(c || (n - 1) || 'v' || ver),
			'2024-01-01 00:00:00+00'::timestamptz + n * interval '12 seconds', n % 3 = 0,
			jsonb_build_object('n', n, 'v', ver))
	RETURNING id INTO bid;
	FOR i IN 0 .. ntx - 1 LOOP
		INSERT INTO almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash, from_address,
										  to_address, value, data, status, gas_used, timestamp)
		VALUES (c, bid, n, i, fz_hash('tx' || c || n || ':' || i || 'v' || ver), fz_addr('from' || (seed + i) % 3),
				CASE WHEN i % 4 = 3 THEN NULL ELSE fz_addr('to' || i) END, (seed * 7 + i)::numeric * 10 ^ 20,
				int4send(seed + i), CASE i % 3 WHEN 0 THEN 1 WHEN 1 THEN 0 END, 21000 + i,
				'2024-01-01 00:00:00+00'::timestamptz + n * interval '12 seconds')
		RETURNING id INTO tid;
	END LOOP;
	FOR l IN 0 .. nev - 1 LOOP
		INSERT INTO almanac.events (chain_id, block_id, block_number, transaction_id, log_index, contract_address,
									event_type, topics, data, timestamp)
		VALUES (c, bid, n, CASE WHEN l % 2 = 0 THEN tid END, l, fz_addr('contract' || (seed + l) % 3),
				CASE (seed + l * 5) % 4 WHEN 0 THEN 'anonymous' ELSE fz_hash('topic' || (seed + l * 5) % 4) END,
				CASE (seed + l * 5) % 4 WHEN 0 THEN '{}'::text[] ELSE ARRAY[fz_hash('topic' || (seed + l * 5) % 4), fz_hash('x' || l)] END,
				int4send(l * 1000 + seed), '2024-01-01 00:00:00+00'::timestamptz + n * interval '12 seconds');
	END LOOP;
	INSERT INTO almanac.account_states (chain_id, account, block_number, state)
	SELECT c, fz_addr('acct' || (seed + k) % 4), n, jsonb_build_object('bal', seed + k, 'n', n)
	  FROM generate_series(0, seed % 3 - 1) k;
	UPDATE almanac.chains SET latest_block = greatest(latest_block, n) WHERE chain_id = c;
	RETURN n;
END
$$;
INSERT INTO almanac.chains (chain_id) VALUES ('c1'), ('c2'), ('a:b'), ('a\b');
-- cnt JSON-RPC blocks (eth_getBlockByNumber(n, true)) with their receipts
-- (eth_getBlockReceipts(n)), from back blocks below the chain's next one: the
-- first one's parent is the stored block below it, so back > 0 replaces
-- stored blocks (a reorg)
CREATE FUNCTION fz_rpc(c text, back int, cnt int, ver int, ntx int, nev int, seed int,
					   OUT blocks jsonb, OUT receipts jsonb) LANGUAGE plpgsql AS $$
DECLARE
	n0 bigint;
	parent text;
	h text;
	th text;
	txs jsonb;
	rcs jsonb;
	logs jsonb;
	li int;
	a text;
BEGIN
	SELECT greatest(coalesce(max(block_number) + 1, 0) - back, 0) INTO n0 FROM almanac.blocks WHERE chain_id = c;
	SELECT block_hash INTO parent FROM almanac.blocks WHERE chain_id = c AND block_number = n0 - 1;
	parent := coalesce(parent, fz_hash(c || (n0 - 1) || 'root'));
	blocks := '[]';
	receipts := '[]';
	FOR k IN 0 .. cnt - 1 LOOP
		h := fz_hash(c || (n0 + k) || 'v' || ver);
		txs := '[]';
		rcs := '[]';
		li := 0;
		FOR i IN 0 .. ntx - 1 LOOP
			th := fz_hash('tx' || c || (n0 + k) || ':' || i || 'v' || ver);
			logs := '[]';
			FOR l IN 0 .. nev - 1 LOOP
				CONTINUE WHEN l % ntx <> i;
				a := fz_addr('contract' || (seed + l) % 3);
				-- checksummed addresses are lowercased by ingest
				IF (seed + l) % 5 = 0 THEN a := '0x' || upper(substr(a, 3)); END IF;
				logs := logs || jsonb_build_array(jsonb_build_object(
					'logIndex', '0x' || to_hex(li), 'address', a,
					'topics', CASE (seed + l * 5) % 4 WHEN 0 THEN '[]'::jsonb
							  ELSE jsonb_build_array(fz_hash('topic' || (seed + l * 5) % 4), fz_hash('x' || l)) END,
					'data', '0x' || lpad(to_hex(l * 1000 + seed), 8, '0'),
					'blockHash', h, 'transactionHash', th));
				li := li + 1;
			END LOOP;
			txs := txs || jsonb_build_array(jsonb_build_object(
				'hash', th, 'type', '0x2', 'from', fz_addr('from' || (seed + i) % 3),
				'to', CASE WHEN i % 4 = 3 THEN NULL ELSE fz_addr('to' || i) END,
				'value', '0x' || to_hex((seed * 7 + i)::bigint * 1000000007), 'nonce', '0x' || to_hex(i),
				'input', '0x' || lpad(to_hex(seed + i), 8, '0')));
			rcs := rcs || jsonb_build_array(jsonb_build_object(
				'transactionHash', th, 'status', CASE WHEN i % 3 = 1 THEN '0x0' ELSE '0x1' END,
				'gasUsed', '0x' || to_hex(21000 + i), 'contractAddress', NULL, 'logs', logs));
		END LOOP;
		blocks := blocks || jsonb_build_array(jsonb_build_object(
			'number', '0x' || to_hex(n0 + k), 'hash', h, 'parentHash', parent,
			'timestamp', '0x' || to_hex(1700000000 + (n0 + k) * 12), 'transactions', txs,
			'miner', fz_addr('miner'), 'v', ver));
		receipts := receipts || jsonb_build_array(rcs);
		parent := h;
	END LOOP;
END
$$;
-- every heap row of the core tables looked up by its key (routed with the
-- router on: PL/pgSQL's variables are parameters), and each account's latest
-- state and each contract's events: one line per row that differs
CREATE FUNCTION fz_mirror_check() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	r record;
	x record;
	got text;
BEGIN
	FOR r IN SELECT * FROM almanac.blocks LOOP
		SELECT * INTO x FROM almanac.blocks WHERE chain_id = r.chain_id AND block_number = r.block_number;
		IF NOT FOUND OR x::text IS DISTINCT FROM r::text THEN
			RETURN NEXT format('blocks %s %s: heap %s, lookup %s', r.chain_id, r.block_number, r, x);
		END IF;
	END LOOP;
	FOR r IN SELECT * FROM almanac.transactions LOOP
		SELECT * INTO x FROM almanac.transactions WHERE chain_id = r.chain_id AND tx_hash = r.tx_hash;
		IF NOT FOUND OR x::text IS DISTINCT FROM r::text THEN
			RETURN NEXT format('transactions %s %s: heap %s, lookup %s', r.chain_id, r.tx_hash, r, x);
		END IF;
	END LOOP;
	FOR r IN SELECT DISTINCT ON (chain_id, account) * FROM almanac.account_states
			  ORDER BY chain_id, account, block_number DESC LOOP
		SELECT * INTO x FROM almanac.account_states WHERE chain_id = r.chain_id AND account = r.account
		 ORDER BY block_number DESC LIMIT 1;
		IF NOT FOUND OR x::text IS DISTINCT FROM r::text THEN
			RETURN NEXT format('account_states %s %s: heap %s, lookup %s', r.chain_id, r.account, r, x);
		END IF;
	END LOOP;
	FOR r IN SELECT chain_id, contract_address, event_type,
					string_agg(e::text, ' ' ORDER BY block_number DESC, log_index DESC) AS rows
			   FROM almanac.events e GROUP BY 1, 2, 3 LOOP
		got := NULL;
		FOR x IN SELECT * FROM almanac.events WHERE chain_id = r.chain_id AND contract_address = r.contract_address
				   AND event_type = r.event_type ORDER BY block_number DESC, log_index DESC LOOP
			got := coalesce(got || ' ', '') || x::text;
		END LOOP;
		IF got IS DISTINCT FROM r.rows THEN
			RETURN NEXT format('events %s %s %s: heap %s, lookup %s', r.chain_id, r.contract_address, r.event_type, r.rows, got);
		END IF;
	END LOOP;
END
$$;
-- lookups with PL/pgSQL variables as keys, past the plan cache's custom plans
CREATE FUNCTION fz_vars(c text, ks bigint[], acct text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	s text := '';
	h text;
	n bigint;
	st jsonb;
	e record;
BEGIN
	FOREACH n IN ARRAY ks LOOP
		SELECT block_hash INTO h FROM almanac.blocks WHERE chain_id = c AND block_number = n;
		s := s || coalesce(right(h, 4), '-') || ' ';
		SELECT block_number INTO n FROM almanac.blocks WHERE chain_id = c ORDER BY block_number DESC LIMIT 1;
		s := s || coalesce(n::text, '-') || ' ';
		SELECT state INTO st FROM almanac.account_states WHERE chain_id = c AND account = acct ORDER BY block_number DESC LIMIT 1;
		s := s || coalesce(st::text, '-') || ' ';
		FOR e IN SELECT block_number, log_index FROM almanac.events WHERE chain_id = c AND contract_address = fz_addr('contract1')
				   ORDER BY block_number DESC, log_index DESC LIMIT 3 LOOP
			s := s || e.block_number || '.' || e.log_index || ' ';
		END LOOP;
		s := s || '| ';
	END LOOP;
	RETURN s;
END
$$;
});

my @chains = ('c1', 'c2', 'a:b', 'a\\b');
my %height = map { $_ => -1 } @chains;
my $ver = 0;

sub add_block_sql
{
	my ($c) = @_;
	$ver++;
	return 'SELECT fz_add_block(' . lit($c) . ", $ver, " . int(rand(4)) . ', ' . int(rand(9)) . ', ' . int(rand(1000)) . ')';
}
for my $c (@chains)
{
	my $n = $c eq 'c1' ? 25 : 8;
	$node->safe_psql('postgres', join(";\n", map { add_block_sql($c) } 1 .. $n));
}

my @contracts = map { addr_of("contract$_") } 0 .. 2;
my @topics = ((map { hash_of("topic$_") } 1 .. 3), 'anonymous');
my @accounts = map { addr_of("acct$_") } 0 .. 3;

sub r_chain { return lit(chance(0.05) ? 'nope' : pick(@chains)); }
sub r_block { return pick(0, 1, 2, 3, 5, 7, 8, 10, 15, 20, 24, 25, 26, 30, -1, '9223372036854775807'); }

sub r_tx_hash
{
	return lit(pick(hash_of('nope'), uc(hash_of('x')))) if chance(0.1);
	my $c = pick(@chains);
	my $n = int(rand($c eq 'c1' ? 28 : 10));
	# the version is unknown here: ask the table for one, or make one up
	return chance(0.7)
	  ? "(SELECT tx_hash FROM almanac.transactions WHERE chain_id = " . lit($c) . " ORDER BY tx_hash OFFSET $n LIMIT 1)"
	  : lit(hash_of("tx$c$n:0v" . int(rand($ver + 1))));
}

sub r_range
{
	my @b;
	my $r = int(rand(8));
	return ('block_number BETWEEN ' . r_block() . ' AND ' . r_block()) if $r == 0;
	return ('block_number >= ' . r_block()) if $r == 1;
	return (r_block() . ' < block_number') if $r == 2;
	return ('block_number <= ' . r_block()) if $r == 3;
	return ('block_number > ' . r_block() . ' AND block_number < ' . r_block()) if $r == 4;
	return ('block_number >= ' . r_block() . '::smallint') if $r == 5;
	return ();
}

sub r_cols
{
	my ($table) = @_;
	my %c = (
		blocks => [ '*', 'block_number, block_hash', 'chain_id, block_number, metadata, is_safe', 'row_to_json(t)',
			'block_number + 1, metadata->>\'v\'', 'timestamp, parent_hash' ],
		transactions => [ '*', 'tx_hash, block_number, value', 'row_to_json(t)', 'data, status, to_address', 'value / 3, gas_used' ],
		account_states => [ '*', 'block_number, state', 'account, state->\'bal\'', 'row_to_json(t)', 'chain_id, account, block_number' ],
		events => [ '*', 'block_number, log_index', 'block_number, log_index, event_type, topics, data', 'row_to_json(t)',
			'contract_address, transaction_id, log_index + 1' ],
	);
	return pick(@{ $c{$table} });
}

# a routed shape or a near miss: (sql, whether the rows need sorting)
sub gen_router_query
{
	my $r = int(rand(9));
	my $c = r_chain();
	if ($r == 0)
	{
		my $extra = chance(0.2) ? ' AND ' . pick('is_safe', 'NOT is_safe', "metadata->>'v' > '5'", 'block_number > 3') : '';
		return ('SELECT ' . r_cols('blocks') . " FROM almanac.blocks t WHERE chain_id = $c AND block_number = "
			  . pick(r_block(), r_block() . '::int', '(' . r_block() . ' + 0)') . $extra, 0);
	}
	if ($r == 1)
	{
		my @v = map { chance(0.1) ? 'NULL' : r_block() } 1 .. 1 + int(rand(5));
		return ('SELECT ' . r_cols('blocks') . " FROM almanac.blocks t WHERE chain_id = $c AND block_number "
			  . (chance(0.5) ? 'IN (' . join(', ', @v) . ')' : '= ANY (ARRAY[' . join(', ', @v) . ']::bigint[])'), 1);
	}
	if ($r == 2)
	{
		# the latest block, and near misses
		my $m = int(rand(8));
		my $tail = ('ORDER BY block_number DESC LIMIT 1', 'ORDER BY block_number DESC LIMIT 2', 'ORDER BY block_number LIMIT 1',
			'ORDER BY block_number DESC LIMIT 1 OFFSET 1', 'ORDER BY block_number DESC, block_hash LIMIT 1',
			'ORDER BY block_number DESC LIMIT 0', 'ORDER BY block_number DESC LIMIT 1', 'ORDER BY block_number DESC NULLS LAST LIMIT 1')[$m];
		my $extra = chance(0.15) ? ' AND ' . pick('is_safe', 'block_number < 5', 'block_number <= ' . r_block()) : '';
		return ('SELECT ' . r_cols('blocks') . " FROM almanac.blocks t WHERE chain_id = $c$extra $tail", 0);
	}
	if ($r == 3)
	{
		my $w = chance(0.6) ? "tx_hash = " . r_tx_hash() : 'tx_hash IN (' . join(', ', map { r_tx_hash() } 1 .. 1 + int(rand(3))) . ')';
		$w .= ' AND status = 1' if chance(0.15);
		return ('SELECT ' . r_cols('transactions') . " FROM almanac.transactions t WHERE chain_id = $c AND $w", 1);
	}
	if ($r == 4)
	{
		# the latest state, and near misses
		my $a = lit(pick(@accounts));
		$a = "lower(" . uc($a) . ")" if chance(0.1);
		my $m = int(rand(7));
		my $extra = ('', '', '', ' AND block_number <= ' . r_block(), " AND state ? 'bal'", ' AND block_number < ' . r_block(), '')[$m];
		my $tail = pick('ORDER BY block_number DESC LIMIT 1', 'ORDER BY block_number DESC LIMIT 1', 'ORDER BY block_number DESC LIMIT 2',
			'ORDER BY block_number LIMIT 1', 'ORDER BY block_number DESC LIMIT 1 OFFSET 1');
		return ('SELECT ' . r_cols('account_states') . " FROM almanac.account_states t WHERE chain_id = $c AND account = $a$extra $tail", 0);
	}
	if ($r == 5 || $r == 6)
	{
		# events of a contract and topic0 over a range, newest first
		my @w = ("chain_id = $c", 'contract_address = ' . lit(pick(@contracts)), 'event_type = ' . lit(pick(@topics)), r_range());
		push @w, pick('log_index > 1', "topics[2] IS NOT NULL", 'transaction_id IS NULL') if chance(0.15);
		my $m = int(rand(6));
		my $limit = chance(0.6) ? ' LIMIT ' . pick(0, 1, 2, 3, 10, 'ALL', 'NULL') : '';
		my $tail = ('ORDER BY block_number DESC, log_index DESC', 'ORDER BY block_number DESC, log_index DESC',
			'ORDER BY block_number, log_index', '', 'ORDER BY block_number DESC, log_index DESC', 'ORDER BY block_number DESC, log_index DESC')[$m];
		$limit = '' if $tail eq '';
		$limit .= ' OFFSET 1' if $limit && chance(0.1);
		return ('SELECT ' . r_cols('events') . ' FROM almanac.events t WHERE ' . join(' AND ', @w) . " $tail$limit", $tail eq '');
	}
	if ($r == 7)
	{
		# the latest events of a contract
		my $limit = pick(1, 2, 3, 5, 10, 50, 'NULL', 'ALL');
		my $extra = chance(0.15) ? ' AND ' . pick('block_number > 3', "event_type <> 'anonymous'") : '';
		my $tail = pick('ORDER BY block_number DESC, log_index DESC', 'ORDER BY block_number DESC, log_index DESC',
			'ORDER BY block_number DESC, log_index');
		return ('SELECT ' . r_cols('events') . " FROM almanac.events t WHERE chain_id = $c AND contract_address = "
			  . lit(pick(@contracts)) . "$extra $tail LIMIT $limit", 0);
	}
	if ($r == 8 && chance(0.5))
	{
		# through almanac's SQL functions (inlined) and a PL/pgSQL function's variables (generic plans)
		my $a = lit(pick(@accounts));
		return (pick("SELECT (almanac.latest_block($c)).block_number", "SELECT * FROM almanac.latest_block($c)",
				"SELECT almanac.account_state($c, $a)", "SELECT almanac.account_state(${c}, upper($a))",
				"SELECT almanac.account_state_at($c, $a, " . r_block() . ')',
				"SELECT block_number, log_index, data FROM almanac.contract_events($c, " . lit(pick(@contracts)) . ', '
				  . pick('NULL', lit(pick(@topics))) . ', ' . r_block() . ', ' . pick('NULL', r_block()) . ')',
				"SELECT block_number, tx_hash FROM almanac.address_transactions($c, " . lit(addr_of('from' . int(rand(3)))) . ')',
				"SELECT fz_vars($c, ARRAY[" . join(', ', map { r_block() } 1 .. 8) . "]::bigint[], $a)"), 0);
	}
	# not routed at all: aggregates, joins
	return (pick("SELECT count(*), max(block_number) FROM almanac.blocks WHERE chain_id = $c",
			"SELECT b.block_number, count(t.id) FROM almanac.blocks b LEFT JOIN almanac.transactions t ON t.block_id = b.id WHERE b.chain_id = $c GROUP BY 1",
			"SELECT account, max(block_number) FROM almanac.account_states WHERE chain_id = $c GROUP BY 1",
			"SELECT event_type, count(*) FROM almanac.events WHERE chain_id = $c GROUP BY 1"), 1);
}

# in a transaction block, each side runs under a savepoint, so that an error
# of the first does not abort the second
my $in_xact = 0;

sub run_routed_side
{
	my ($s, $setting, $sql) = @_;
	return run_sql($s, "SET almanac.router = $setting;\n$sql") unless $in_xact;
	# (in a transaction aborted already, no savepoint: both sides fail alike)
	my (undef, $state) = run_sql($s, 'SAVEPOINT rq');
	my @r = run_sql($s, "SET almanac.router = $setting;\n$sql");
	run_sql($s, $r[1] eq '00000' ? 'RELEASE rq' : 'ROLLBACK TO rq; RELEASE rq') if $state eq '00000';
	return @r;
}

sub run_router
{
	my ($s, $sql, $sort) = @_;
	my @on = run_routed_side($s, 'on', $sql);
	my @off = run_routed_side($s, 'off', $sql);
	$compared++;
	my ($a, $b) = $sort ? (sorted_lines($on[0]), sorted_lines($off[0])) : ($on[0], $off[0]);
	return unless $a ne $b || $on[1] ne $off[1];
	mismatch('router on vs off', $sql, \@on, \@off, 'router on', 'router off');
	diagnose($s, $sql);
}

# what a mismatch's statement read: its plan, its answer without the row
# caches, the versions stored under a block's key
sub diagnose
{
	my ($s, $sql) = @_;
	my @d;
	push @d, [ run_sql($s, "SET almanac.router = on; EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $sql") ];
	push @d, [ run_sql($s, "SET almanac.router = on; SET almanac.reader_row_cache_size = 0; SET almanac.shared_row_cache = off; $sql") ];
	run_sql($s, 'RESET almanac.reader_row_cache_size; RESET almanac.shared_row_cache');
	if ($sql =~ /FROM almanac.blocks t WHERE chain_id = ('(?:[^']|'')*') AND block_number = \(?(\d+)/)
	{
		push @d, [ run_sql($s, "SELECT * FROM almanac.value_versions('almanac_store', 'mirror.blocks', almanac.block_key($1, $2))") ];
	}
	push @d, [ run_sql($s, 'SELECT txid_current_if_assigned(), txid_current_snapshot()') ];
	diag("diagnosis:\n" . join("\n", map { "($_->[1]) $_->[0]$_->[2]" } @d));
}

sub gen_router_prepared
{
	my $r = int(rand(4));
	my ($def, @gen);
	if ($r == 0)
	{
		$def = '(text, bigint) AS SELECT ' . r_cols('blocks') . ' FROM almanac.blocks t WHERE chain_id = $1 AND block_number = $2';
		@gen = sub { r_chain() . ', ' . r_block() };
	}
	elsif ($r == 1)
	{
		$def = '(text) AS SELECT ' . r_cols('blocks') . ' FROM almanac.blocks t WHERE chain_id = $1 ORDER BY block_number DESC LIMIT 1';
		@gen = sub { r_chain() };
	}
	elsif ($r == 2)
	{
		$def = '(text, text) AS SELECT ' . r_cols('account_states')
		  . ' FROM almanac.account_states t WHERE chain_id = $1 AND account = $2 ORDER BY block_number DESC LIMIT 1';
		@gen = sub { r_chain() . ', ' . lit(pick(@accounts)) };
	}
	else
	{
		$def = '(text, text, text, bigint, bigint, bigint) AS SELECT ' . r_cols('events')
		  . ' FROM almanac.events t WHERE chain_id = $1 AND contract_address = $2 AND event_type = $3'
		  . ' AND block_number BETWEEN $4 AND $5 ORDER BY block_number DESC, log_index DESC LIMIT $6';
		@gen = sub {
			join(', ', r_chain(), lit(pick(@contracts)), lit(pick(@topics)), r_block(), r_block(), pick(0, 1, 3, 'NULL'));
		};
	}
	$prep++;
	run_sql($ms, "SET almanac.router = on; PREPARE ron$prep$def");
	run_sql($ms, "SET almanac.router = off; PREPARE roff$prep$def");
	for (1 .. 7)
	{
		my $args = $gen[0]->();
		my @on = run_sql($ms, "SET almanac.router = on; EXECUTE ron$prep($args)");
		my @off = run_sql($ms, "SET almanac.router = off; EXECUTE roff$prep($args)");
		$compared++;
		mismatch('router on vs off, prepared', "PREPARE p$def; EXECUTE p($args)", \@on, \@off, 'router on', 'router off')
		  if $on[0] ne $off[0] || $on[1] ne $off[1];
	}
	run_sql($ms, "DEALLOCATE ron$prep; DEALLOCATE roff$prep");
}

# what a chain indexer writes: JSON-RPC blocks ingested one by one and in
# batches, reorgs (a block replaced at a stored height), the safe and
# finalized heads, reverts below finality (refused), COPY into the core tables
sub indexer_write
{
	my ($c) = @_;
	my $qc = lit($c);
	my $r = int(rand(9));
	my $rpc = sub {
		my ($back, $cnt) = @_;
		$ver++;
		return "fz_rpc($qc, $back, $cnt, $ver, " . int(rand(4)) . ', ' . int(rand(7)) . ', ' . int(rand(1000)) . ') f';
	};
	my $latest = "(SELECT max(block_number) FROM almanac.blocks WHERE chain_id = $qc)";
	return 'SELECT almanac.ingest_block(' . pick($qc, $qc, lit(uc($c))) . ', f.blocks->0, f.receipts->0) IS NOT NULL FROM ' . $rpc->(0, 1)
	  if $r <= 1;
	# a reorg: the block at a stored height replaced (its parent is stored)
	return "SELECT almanac.ingest_block($qc, f.blocks->0, f.receipts->0, " . lit(pick('revert', 'revert', 'error')) . ') IS NOT NULL FROM '
	  . $rpc->(1 + int(rand(3)), 1)
	  if $r == 2;
	return "SELECT almanac.ingest_blocks($qc, f.blocks, f.receipts) FROM " . $rpc->(pick(0, 0, 0, 1), 1 + int(rand(3))) if $r == 3;
	return "SELECT almanac.set_safe($qc, $latest - " . int(rand(4)) . ')' if $r == 4;
	return "SELECT almanac.set_finalized($qc, $latest - " . (3 + int(rand(8))) . ')' if $r == 5 && chance(0.5);
	# below finality: refused
	return "SELECT almanac.revert_to($qc, (SELECT finalized_block - " . int(rand(3)) . " FROM almanac.chains WHERE chain_id = $qc))"
	  if $r == 5;
	return copy_sql($c);
}

my $copy_file = $node->basedir . '/fz_copy.dat';

# COPY rows made from the stored blocks into a core table, through a file
# in text, CSV or binary format
sub copy_sql
{
	my ($c) = @_;
	my $qc = lit($c);
	my $fmt = pick('', ' (FORMAT csv)', ' (FORMAT binary)');
	$ver++;
	my $r = int(rand(4));
	my ($src, $dst);
	my $recent = "block_number >= (SELECT max(block_number) - " . int(rand(5)) . " FROM almanac.blocks WHERE chain_id = $qc)";
	if ($r == 0)
	{
		$src = "SELECT chain_id, fz_addr('acct' || (block_number + $ver) % 6), block_number, jsonb_build_object('copy', $ver, 'n', block_number) "
		  . "FROM almanac.blocks WHERE chain_id = $qc AND " . pick($recent, 'block_number % 3 = ' . int(rand(3)));
		$dst = 'almanac.account_states (chain_id, account, block_number, state)';
	}
	elsif ($r == 1)
	{
		$src = "SELECT chain_id, id, block_number, NULL::bigint, 100 + $ver % 50, fz_addr('contract' || block_number % 3), "
		  . "fz_hash('topic' || (1 + block_number % 3)), ARRAY[fz_hash('topic' || (1 + block_number % 3))], int4send($ver), timestamp "
		  . "FROM almanac.blocks WHERE chain_id = $qc AND $recent";
		$dst = 'almanac.events (chain_id, block_id, block_number, transaction_id, log_index, contract_address, event_type, topics, data, timestamp)';
	}
	elsif ($r == 2)
	{
		$src = "SELECT chain_id, id, block_number, 1000 + $ver % 1000, fz_hash('copytx' || $ver || ':' || block_number), fz_addr('from0'), "
		  . "NULL::text, 10::numeric ^ 30, ''::bytea, NULL::smallint, 21000::bigint, timestamp FROM almanac.blocks WHERE chain_id = $qc AND $recent";
		$dst = 'almanac.transactions (chain_id, block_id, block_number, tx_index, tx_hash, from_address, to_address, value, data, status, gas_used, timestamp)';
	}
	else
	{
		my $next = "(SELECT coalesce(max(block_number) + 1, 0) FROM almanac.blocks WHERE chain_id = $qc)";
		$src = "SELECT $qc, n, fz_hash($qc || n || 'v' || $ver), "
		  . "coalesce((SELECT block_hash FROM almanac.blocks WHERE chain_id = $qc AND block_number = n - 1), fz_hash('p' || n)), "
		  . "'2024-01-01'::timestamptz + n * interval '12 seconds', false, false, jsonb_build_object('copy', $ver) "
		  . "FROM generate_series($next, $next + " . int(rand(3)) . ') n';
		$dst = 'almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp, is_finalized, is_safe, metadata)';
	}
	return "COPY ($src) TO '$copy_file'$fmt;\nCOPY $dst FROM '$copy_file'$fmt";
}

# writes of the reading session only: they take locks that would wait for
# the other session's snapshot or cursor (TRUNCATE), or change the mirrors
my @mirrored = qw(blocks transactions account_states events);

sub admin_write
{
	my $t = pick(@mirrored);
	my $r = int(rand(6));
	return pick('TRUNCATE almanac.account_states', 'TRUNCATE almanac.events', 'TRUNCATE almanac.transactions CASCADE',
		'TRUNCATE almanac.blocks CASCADE', 'TRUNCATE almanac.account_states, almanac.events')
	  if $r == 0;
	return "SELECT almanac.disable_mirror('almanac.$t')" if $r <= 2;
	return "SELECT almanac.enable_mirror('almanac.$t') >= 0" if $r <= 4;
	# a consistent mirror: nothing to rewrite
	return "SELECT almanac.resync('almanac.$t')";
}

sub r_write
{
	my $c = pick(@chains);
	my $qc = lit($c);
	my $a = lit(pick(@accounts));
	my $r = int(rand(20));
	return indexer_write($c) if $r >= 12;
	return add_block_sql($c) if $r <= 2;
	return "SELECT almanac.revert_to($qc, (SELECT greatest(max(block_number) - " . (1 + int(rand(3))) . ", 0) FROM almanac.blocks WHERE chain_id = $qc))"
	  if $r == 3;
	return "UPDATE almanac.blocks SET metadata = metadata || '{\"u\": $ver}', is_safe = NOT is_safe WHERE chain_id = $qc AND block_number = " . r_block()
	  if $r == 4;
	return "UPDATE almanac.account_states SET state = state || '{\"u\": 1}' WHERE chain_id = $qc AND account = $a"
	  . (chance(0.5) ? " AND block_number = (SELECT max(block_number) FROM almanac.account_states WHERE chain_id = $qc AND account = $a)" : '')
	  if $r == 5;
	return "DELETE FROM almanac.account_states WHERE chain_id = $qc AND account = $a AND block_number = "
	  . "(SELECT max(block_number) FROM almanac.account_states WHERE chain_id = $qc AND account = $a)"
	  if $r == 6;
	return "INSERT INTO almanac.account_states (chain_id, account, block_number, state) SELECT chain_id, $a, block_number, '{\"ins\": true}' "
	  . "FROM almanac.blocks WHERE chain_id = $qc AND block_number = " . r_block() . ' ON CONFLICT DO NOTHING'
	  if $r == 7;
	return "UPDATE almanac.account_states SET block_number = block_number - 1 WHERE chain_id = $qc AND account = $a AND block_number = "
	  . "(SELECT max(block_number) FROM almanac.account_states WHERE chain_id = $qc AND account = $a)"
	  if $r == 8;
	return "UPDATE almanac.events SET event_type = " . lit(pick(@topics)) . ', contract_address = ' . lit(pick(@contracts))
	  . " WHERE chain_id = $qc AND block_number = " . r_block() . ' AND log_index = ' . int(rand(4))
	  if $r == 9;
	return "DELETE FROM almanac.events WHERE chain_id = $qc AND block_number = " . r_block() . ' AND log_index <= ' . int(rand(3))
	  if $r == 10;
	return "DELETE FROM almanac.transactions WHERE chain_id = $qc AND tx_hash = " . r_tx_hash();
}

# the mirrors against the heap, outside a transaction: verify of every
# enabled mirror (nothing), and every heap row looked up by its key with the
# router on (the same row).  $prepared: a prepared transaction holds locks,
# so a difference is not repaired (resync would wait for it)
sub check_mirrors
{
	my ($prepared) = @_;
	my @v = run_sql($ms, 'SELECT m.relid, v.kind, almanac.decode_mirror_key(m.relid, v.key) FROM almanac.mirrors m, '
		  . 'almanac.verify(m.relid) v WHERE m.enabled ORDER BY 1, 2, 3');
	my @d = run_sql($ms, 'SET almanac.router = on; SELECT * FROM fz_mirror_check() ORDER BY 1');
	$compared += 2;
	for my $x ([ 'verify', \@v ], [ 'lookups', \@d ])
	{
		my ($what, $res) = @$x;
		next if $res->[0] eq '' && $res->[1] eq '00000';
		mismatch("mirror vs heap ($what)", 'the mirrors after the statements below', $res, [ '', '00000', '' ], $what, 'expected');
		run_sql($ms, 'SELECT almanac.resync(relid) FROM almanac.mirrors WHERE enabled') unless $prepared;
	}
	@recent = ();
}

my $gid = 0;

sub router_step
{
	my $r = rand();
	if ($r < 0.02)
	{
		run_sql($ms, pick("SET almanac.mirror_send_size = 0", 'RESET almanac.mirror_send_size', 'SET almanac.reader_row_cache_size = 0',
				'RESET almanac.reader_row_cache_size', 'SET almanac.shared_row_cache = off', 'RESET almanac.shared_row_cache',
				'SET plan_cache_mode = force_generic_plan', 'RESET plan_cache_mode'));
	}
	elsif ($r < 0.50) { run_router($ms, gen_router_query()); }
	elsif ($r < 0.56) { gen_router_prepared(); }
	elsif ($r < 0.68)
	{
		if (chance(0.15)) { run_sql($ms, admin_write()); }
		else { run_sql(pick($ms, $ws), r_write()); }
		check_mirrors();
	}
	elsif ($r < 0.80)
	{
		# a transaction of the reading session: its own writes, savepoints,
		# then COMMIT, ROLLBACK or PREPARE TRANSACTION
		run_sql($ms, 'BEGIN' . (chance(0.4) ? ' ISOLATION LEVEL REPEATABLE READ' : ''));
		$in_xact = 1;
		my $sp = 0;
		my $truncated = 0;
		for (1 .. 3 + int(rand(6)))
		{
			my $x = rand();
			if ($x < 0.45) { run_router($ms, gen_router_query()); }
			elsif ($x < 0.7) { run_sql($ms, r_write()); }
			elsif ($x < 0.75)
			{
				my $w = admin_write();
				$truncated = 1 if $w =~ /TRUNCATE/;
				run_sql($ms, $w);
			}
			elsif ($x < 0.85) { $sp++; run_sql($ms, "SAVEPOINT s$sp"); }
			elsif ($sp) { run_sql($ms, "ROLLBACK TO s" . (1 + int(rand($sp)))); }
		}
		$in_xact = 0;
		# (a prepared TRUNCATE would hold its lock against the reads below)
		if (!$truncated && chance(0.25))
		{
			$gid++;
			run_sql($ms, "PREPARE TRANSACTION 'fz$gid'");
			# prepared: its writes are invisible, to the router too
			run_router($ms, gen_router_query()) for 1 .. int(rand(3));
			check_mirrors(1);
			run_sql(pick($ms, $ws), pick('COMMIT', 'COMMIT', 'ROLLBACK') . " PREPARED 'fz$gid'");
		}
		else { run_sql($ms, chance(0.8) ? 'COMMIT' : 'ROLLBACK'); }
		check_mirrors();
	}
	elsif ($r < 0.90)
	{
		# another session commits while this one holds a snapshot (with the
		# mirrors turned off and on, resynced)
		run_sql($ms, 'BEGIN ISOLATION LEVEL ' . pick('REPEATABLE READ', 'READ COMMITTED'));
		$in_xact = 1;
		for (1 .. 2 + int(rand(5)))
		{
			if (chance(0.5)) { run_router($ms, gen_router_query()); }
			elsif (chance(0.1))
			{
				my $w = admin_write();
				run_sql($ws, $w) unless $w =~ /TRUNCATE/;
			}
			else { run_sql($ws, r_write()); }
		}
		run_sql($ms, 'COMMIT');
		$in_xact = 0;
		check_mirrors();
	}
	else
	{
		# a cursor of a routed shape, forward only, with writes between
		# fetches: of another session, or of its own transaction, or (WITH
		# HOLD) of both sessions after it committed
		my ($sql, $unordered) = gen_router_query();
		($sql, $unordered) = gen_router_query() while $unordered;    # a cursor's fetches need a total order
		my $scroll = pick('NO SCROLL', 'NO SCROLL', 'SCROLL', '');
		my $hold = chance(0.2) ? ' WITH HOLD' : '';
		my $writer = pick($ws, $ws, $ms);
		run_sql($ms, 'BEGIN');
		run_sql($ms, 'SET LOCAL almanac.router = on');
		run_sql($ms, "DECLARE con $scroll CURSOR$hold FOR $sql");
		run_sql($ms, 'SET LOCAL almanac.router = off');
		run_sql($ms, "DECLARE coff $scroll CURSOR$hold FOR $sql");
		run_sql($ms, 'COMMIT') if $hold;
		for (1 .. 3)
		{
			run_sql($writer, r_write()) if chance(0.5);
			# (a cursor declared without SCROLL scrolls only when its plan
			# can: the error of one that cannot is no difference)
			my $n = $scroll ne 'SCROLL' ? pick(1, 2, 'ALL') : pick(1, 2, 'ALL', 'BACKWARD 1', 'ABSOLUTE 2', 'PRIOR', 'FIRST', 'LAST');
			# (each cursor read with its own setting: a routed plan run
			# with the router off reads the heap)
			my $local = $hold ? '' : ' LOCAL';
			my @on = run_sql($ms, "SET$local almanac.router = on; FETCH $n FROM con");
			my @off = run_sql($ms, "SET$local almanac.router = off; FETCH $n FROM coff");
			$compared++;
			mismatch('router on vs off, cursor', "DECLARE c $scroll CURSOR$hold FOR $sql; FETCH $n", \@on, \@off, 'router on', 'router off')
			  if $on[0] ne $off[0] || $on[1] ne $off[1];
		}
		run_sql($ms, $hold ? 'CLOSE con; CLOSE coff' : 'COMMIT');
		check_mirrors();
	}
}

run_sql($_, "SET lock_timeout = '20s'") for ($ms, $ws);
for (1 .. $nq) { router_step(); }
run_sql($ms, 'RESET almanac.router');
my $part2 = @mismatches - $part1;
my ($stats) = run_sql($ms, 'SELECT sum(routed), sum(fallback_router_off), sum(fallback_own_writes) FROM almanac.router_stats');
chomp $stats;
note sprintf('part 2: %d steps, %d queries compared in %d s, %d mismatches; routed|router_off|own_writes: %s',
	$nq, $compared, time - $t0, $part2, $stats);
is($part2, 0, "router on against off: no differences (FUZZ_SEED=$seed)");
note 'statements by outcome: ' . join(', ', map { "$_: $tally{$_}" } sort keys %tally);
my ($routed) = split /\|/, $stats;
cmp_ok($routed, '>', $nq / 10, 'the router answered a good share of the queries');

# the mirrors still agree with their tables, all of them on again
run_sql($ms, "SELECT almanac.enable_mirror(relid) >= 0 FROM almanac.mirrors WHERE NOT enabled");
check_mirrors();
for my $t (qw(blocks transactions account_states events))
{
	my ($v) = run_sql($ms, "SELECT count(*) FROM almanac.verify('almanac.$t', NULL, NULL, NULL)");
	is($v, "0\n", "verify finds no difference in $t");
}

for my $s ($hs, $fs, $ms, $ws)
{
	$s->{in} .= "\\q\n";
	$s->{h}->finish;
}
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC/, 'no backend crashed');
$node->stop;
done_testing();
