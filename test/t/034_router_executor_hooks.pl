# A routed plan under the extensions that watch the executor: the executor
# starts a copy of the statement whose plan node has an empty target list,
# and the scan's start-up puts the node as planned, with the query's, in its
# place (src/router/lookup.c, plan_info).  What
# reads the plan after the start-up must see that copy: pg_stat_statements
# counts the calls and rows of a generic routed plan, auto_explain (which
# explains the plan at ExecutorEnd) and EXPLAIN (ANALYZE, VERBOSE) show the
# output columns, and the rows are the heap's.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('router_executor_hooks',
	"shared_preload_libraries = 'almanac,pg_stat_statements'\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_stat_statements;
	INSERT INTO almanac.chains (chain_id) VALUES ('c1');
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	SELECT 'c1', n, '0x' || lpad(to_hex(n), 64, '0'), '0x' || lpad(to_hex(n - 1), 64, '0'),
		   '2024-01-01 00:00:00+00'::timestamptz + n * interval '12 seconds'
	  FROM generate_series(1, 20) n;
});

# eight executions: PostgreSQL's five custom plans, then the generic one
my $executions = join('', map { "EXECUTE q($_);\n" } 1 .. 8);
my $prepare = q{PREPARE q(bigint) AS SELECT block_hash, block_number * 2 AS twice
	FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = $1;};
my $routed = $node->safe_psql('postgres', "SELECT pg_stat_statements_reset();\n$prepare\n$executions"
	  . q{SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'q';
	SELECT calls, rows FROM pg_stat_statements WHERE query LIKE 'PREPARE q%';});
my $heap = $node->safe_psql('postgres', "SET almanac.router = off;\n$prepare\n$executions");
my @routed = split /\n/, $routed;
my @stats = splice(@routed, -2);
shift @routed;    # pg_stat_statements_reset()
is(join("\n", @routed), $heap, 'the generic routed plan returns the heap\'s rows');
is($stats[0], '3|5', 'three executions of the generic plan');
is($stats[1], '8|8', 'pg_stat_statements counts every call and row');

my $log_at = -s $node->logfile;
$node->safe_psql('postgres', qq{LOAD 'auto_explain';
	SET auto_explain.log_min_duration = 0;
	SET auto_explain.log_verbose = on;
	SET auto_explain.log_analyze = on;
	SET auto_explain.log_timing = off;
	$prepare
	$executions});
my $log = slurp_file($node->logfile, $log_at);
my @explained = $log =~ /(Custom Scan \(Almanac Lookup\) on almanac\.blocks.*?\n\s*Output: [^\n]*)/sg;
is(scalar(@explained), 8, 'auto_explain explains every execution, the generic plan\'s too');
is(scalar(grep { /actual rows=1 .*Output: block_hash, \(block_number \* 2\)$/s } @explained),
	8, 'with the output columns and the row');

like(
	$node->safe_psql('postgres', "$prepare\n$executions"
		  . 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE q(3);'),
	qr/Custom Scan \(Almanac Lookup\) on almanac\.blocks \(actual rows=1 loops=1\)\n\s+Output: block_hash, \(block_number \* 2\)\n\s+Key: /,
	'EXPLAIN (ANALYZE, VERBOSE) of the generic plan after its executions');

# The RowDescription message names each column's table and column number,
# which clients read (libpq's PQftable / PQftablecol, JDBC's getTableName):
# from the plan the portal holds, so a routed plan must keep its target list
# there (the executor starts a copy without it).  A client compiled here.
my $client = PostgreSQL::Test::Utils::tempdir() . '/row_description';
my $cc = $ENV{CC} // 'cc';
my $inc = $ENV{ALMANAC_PG_INCLUDEDIR} // '/usr/include/postgresql';
system($cc, '-o', $client, "$ENV{ALMANAC_ROOT}/test/client/row_description.c", "-I$inc", '-lpq') == 0
  or BAIL_OUT("cannot compile test/client/row_description.c with $cc");
my $relid = $node->safe_psql('postgres', q{SELECT 'almanac.blocks'::regclass::oid});
my %attnum = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	q{SELECT attname, attnum FROM pg_attribute WHERE attrelid = 'almanac.blocks'::regclass AND attnum > 0});
foreach my $q (
	[ q{SELECT block_hash, block_number * 2 AS twice, block_number FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 3},
		"block_hash=$relid.$attnum{block_hash} twice=0.0 block_number=$relid.$attnum{block_number}" ],
	[ q{SELECT * FROM almanac.blocks WHERE chain_id = 'c1' AND block_number = 4}, undef ],
	[ q{SELECT block_number, block_hash FROM almanac.blocks WHERE chain_id = 'c1' ORDER BY block_number DESC LIMIT 1},
		"block_number=$relid.$attnum{block_number} block_hash=$relid.$attnum{block_hash}" ])
{
	my ($sql, $want) = @$q;
	my %out;
	foreach my $route ('on', 'off')
	{
		my $conn = $node->connstr('postgres') . " options='-c almanac.router=$route'";
		my ($stdout, $stderr);
		IPC::Run::run([ $client, $conn, $sql, 8 ], '>', \$stdout, '2>', \$stderr)
		  or die "row_description failed: $stderr";
		$out{$route} = $stdout;
	}
	like($node->safe_psql('postgres', "EXPLAIN (COSTS OFF) $sql"), qr/Almanac Lookup/, "routed: $sql");
	is($out{on}, $out{off}, "the same columns' tables and numbers and rows, routed and from the heap: $sql");
	like($out{on}, qr/^simple: \Q$want\E\nprepared: \Q$want\E\n/, 'each column named with its table and number')
	  if defined $want;
}

done_testing();
