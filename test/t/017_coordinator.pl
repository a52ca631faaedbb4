# Issue 17: a coordinator (extension almanac_coordinator) in front of two
# almanac nodes, all three on 127.0.0.1.  Placement of chains on nodes,
# ingest and a reorg dispatched through PL/Proxy with the answers and
# SQLSTATEs of a direct call, reads across both nodes through postgres_fdw
# with no duplicate rows and ids unique across nodes, an aggregate pushed
# down to both nodes, a point lookup answered by the node's router, and no
# write path around almanac's functions.
use strict;
use warnings;

use PostgreSQL::Test::Utils;

# TCP on 127.0.0.1 for every instance: the coordinator reaches the nodes the
# way it would on other machines
BEGIN { $PostgreSQL::Test::Utils::use_unix_sockets = 0; }
use PostgreSQL::Test::Cluster;
use Test::More;
use AlmanacTest qw(almanac_node attempt);
use IPC::Run;

my $root = $ENV{ALMANAC_ROOT} or die "ALMANAC_ROOT is not set";

my $n1 = almanac_node('node1');
my $n2 = almanac_node('node2');
my $co = PostgreSQL::Test::Cluster->new('coordinator');
$co->init;
$co->start;

sub fixture
{
	my ($name) = @_;
	open my $fh, '<', "$root/test/fixtures/anvil/$name.json" or die "$name: $!";
	local $/;
	return <$fh>;
}

# the anvil fixtures as chain "anvil" (EVM chain id 31337, on node1), and with
# their transactions' chainId changed for chain "base" (8453, on node2)
sub json
{
	my ($evm, @names) = @_;
	my @docs = map { my $d = fixture($_); $d =~ s/"chainId": "0x7a69"/sprintf('"chainId": "0x%x"', $evm)/ge; $d } @names;
	my $j = @docs == 1 ? $docs[0] : '[' . join(',', @docs) . ']';
	return "\$json\$$j\$json\$";
}

$co->safe_psql('postgres', 'CREATE EXTENSION almanac_coordinator CASCADE');
is( $co->safe_psql('postgres',
		"SELECT almanac_coordinator.add_node('n1', '127.0.0.1', ${\$n1->port}, 'postgres'), "
		  . "almanac_coordinator.add_node('n2', '127.0.0.1', ${\$n2->port}, 'postgres')"),
	'1|2', 'two nodes added');
is($n2->safe_psql('postgres', 'SELECT node_id FROM almanac.node'), '2', 'node2 knows its node id');
like(attempt($co, "SELECT almanac_coordinator.add_node('n3', '127.0.0.1', ${\$n1->port}, 'postgres')"),
	qr/ERROR 42710/, 'a database is added once');
like(attempt($n1, 'CREATE EXTENSION almanac_coordinator CASCADE'),
	qr/ERROR 55000/, 'the coordinator is never installed into a node\'s database');

# placement
$co->safe_psql('postgres', q{
	SELECT almanac_coordinator.register_chain('anvil', 31337, 'n1', 'Anvil');
	SELECT almanac_coordinator.register_chain('base', 8453, 'n2', 'Base');
});
is($n1->safe_psql('postgres', 'SELECT chain_id, evm_chain_id, name FROM almanac.chains'),
	'anvil|31337|Anvil', 'register_chain registers the chain on its node');
is(attempt($co, "SELECT almanac_coordinator.register_chain('anvil', 1, 'n2')"), 'ERROR 23505',
	'a chain is placed once');
is(attempt($co, "SELECT almanac_coordinator.register_chain('base2', 8453, 'n1')"), 'ERROR 23505',
	'an EVM chain id is unique across the nodes');
is(attempt($co, "SELECT almanac_coordinator.register_chain('x', 99, 'n9')"), 'ERROR 42704',
	'an unknown node is named');
is($n1->safe_psql('postgres', q{SELECT count(*) FROM almanac.chains WHERE chain_id IN ('base', 'base2', 'x')}),
	'0', 'refused registrations leave nothing on the nodes');
is(attempt($co, 'SELECT almanac_coordinator.ingest_block(\'nowhere\', ' . json(1, 'b1') . ', ' . json(1, 'r1') . ')'),
	'ERROR 42704', 'no implicit registration on first ingest through the coordinator');
is(attempt($n2, 'SELECT almanac.ingest_block(\'anvil\', ' . json(31337, 'b1') . ', ' . json(31337, 'r1') . ')'),
	'ERROR 42704', 'a node refuses a chain not placed on it');
is($co->safe_psql('postgres', 'SELECT count(*) FROM almanac_coordinator.check_placement()'), '0',
	'placement and nodes agree');

# The same ingest and reorg sequence for "anvil" through the coordinator and
# for "base" directly on its node: same answers, same SQLSTATEs.  Block ids
# are compared as offsets in the node's id range.
my @steps = (
	[ 'ingest_blocks', 'C, B(b0 b1 b2 b3 b4 b5), R(r0 r1 r2 r3 r4 r5)' ],
	[ 'ingest_block', 'C, B(b6-old), R(r6-old)', 'id' ],
	[ 'ingest_blocks', 'C, B(b7-old b8-old), R(r7-old r8-old)' ],
	[ 'set_safe', 'C, 7' ],
	[ 'set_finalized', 'C, 5' ],
	[ 'set_safe', 'C, 99' ],
	[ 'ingest_block', 'C, B(b6), R(r6)', 'id' ],
	[ 'ingest_block', 'C, B(b6), R(r6), \'revert\'', 'id' ],
	[ 'ingest_blocks', 'C, B(b7 b8 b9), R(r7 r8 r9)' ],
	[ 'revert_to', 'C, 4' ],
	[ 'revert_to', 'C, 8' ],
	[ 'ingest_block', 'C, B(b9), R(r9), \'sideways\'', 'id' ],
	[ 'ingest_block', 'C, B(b9), R(r9)', 'id' ],
	[ 'revert_to', 'nowhere, 1' ]);
my (@via, @direct);
foreach my $s (@steps)
{
	my ($fn, $args, $id) = @$s;
	foreach my $side ([ $co, 'almanac_coordinator', 'anvil', 31337, 1, \@via ],
		[ $n2, 'almanac', 'base', 8453, 2, \@direct ])
	{
		my ($node, $schema, $chain, $evm, $node_id, $out) = @$side;
		my $a = $args;
		$a =~ s/\bC\b/'$chain'/;
		$a =~ s/\bnowhere\b/'nowhere'/;
		$a =~ s/\b([BR])\(([^)]*)\)/json($evm, split(' ', $2))/ge;
		my $sql = "SELECT $schema.$fn($a)";
		$sql = "SELECT $schema.$fn($a) - (${node_id}::bigint << 48)" if $id;
		push @$out, "$fn: " . attempt($node, $sql);
	}
}
is_deeply(\@via, \@direct, 'dispatched ingest and reorg answer as a direct call, SQLSTATEs included')
  or diag explain [ \@via, \@direct ];
note join("\n", @via);
like(join(' ', @via), qr/ERROR 22023.*ERROR 55000.*ERROR 42704/, 'the sequence met its errors');
{
	my ($out, $err) = ('', '');
	$co->psql('postgres',
		'SELECT almanac_coordinator.ingest_block(\'anvil\', ' . json(31337, 'b6-old') . ', ' . json(31337, 'r6-old') . ')',
		stdout => \$out, stderr => \$err);
	like($err, qr/REMOTE ERROR: block 6: conflicts with the stored chain "anvil".*DETAIL:  Remote detail: Block 6 is stored with hash .*HINT:  Remote hint: The chain reorganised/s,
		'a dispatched error keeps its message, detail and hint');
}
is( $co->safe_psql('postgres', q{SELECT (almanac_coordinator.chain_head('anvil')).*}),
	'anvil|31337|Anvil|9|5|5', 'chain_head through the coordinator (the reorg brought the safe head down to 5)');
is( $co->safe_psql('postgres',
		q{SELECT chain_id, count(*), count(DISTINCT block_hash) FROM almanac_coordinator.orphaned_blocks GROUP BY 1 ORDER BY 1}),
	"anvil|4|4\nbase|4|4", 'reverts leave their audit rows on each node');

# JSON as text: an untyped literal goes to the node unparsed, so the node
# rejects bad JSON (a jsonb argument would be parsed here first)
{
	my ($out, $err) = ('', '');
	$co->psql('postgres', q[SELECT almanac_coordinator.ingest_block('anvil', '{"number": ', '[]')],
		stdout => \$out, stderr => \$err);
	like($err, qr/REMOTE ERROR: invalid input syntax for type json/, 'JSON text is parsed on the node');
	$co->psql('postgres', q[SELECT almanac_coordinator.ingest_block('anvil', '{"number": '::jsonb, '[]')],
		stdout => \$out, stderr => \$err);
	unlike($err, qr/REMOTE ERROR/, 'jsonb is parsed on the coordinator');
}

# cross-node reads: every row once, ids unique across the nodes
my $per_node = $n1->safe_psql('postgres', 'SELECT count(*) FROM almanac.transactions') . '+'
  . $n2->safe_psql('postgres', 'SELECT count(*) FROM almanac.transactions');
my ($c1, $c2) = split /\+/, $per_node;
is( $co->safe_psql('postgres', 'SELECT count(*), count(DISTINCT id) FROM almanac_coordinator.transactions'),
	($c1 + $c2) . '|' . ($c1 + $c2), 'an unfiltered scan returns each node\'s rows once, ids unique');
ok($c1 > 0 && $c2 > 0, 'both nodes hold transactions');
is( $co->safe_psql('postgres', q{
		SELECT (SELECT count(*) FROM almanac_coordinator.events e JOIN almanac_coordinator.transactions t
				  ON e.transaction_id = t.id)
			 = (SELECT count(*) FROM almanac_coordinator.events e JOIN almanac_coordinator.transactions t
				  ON e.transaction_id = t.id AND e.chain_id = t.chain_id)}),
	't', 'a join on ids alone meets no row of the other node');
is( $co->safe_psql('postgres',
		q{SELECT min(id) >> 48, max(id) >> 48 FROM almanac_coordinator.blocks WHERE chain_id = 'base'}),
	'2|2', 'ids carry their node id in the high bits');

# an aggregate across chains runs on both nodes at once, whole
my $plan = $co->safe_psql('postgres', q{
	EXPLAIN (VERBOSE, COSTS OFF)
	SELECT chain_id, count(*), sum(gas_used) FROM almanac_coordinator.transactions GROUP BY chain_id});
like($plan, qr/Async Foreign Scan.*Relations: Aggregate on \(almanac_coordinator\.transactions_n1/s,
	'aggregate pushed down to node1, asynchronously');
like($plan, qr/Relations: Aggregate on \(almanac_coordinator\.transactions_n2/s, 'and to node2');
# the node plans postgres_fdw's cursor for all its rows (postgres_fdw
# fetches them all), not for the first tenth: no GroupAggregate over an
# index scan for a whole table (auto_explain logs the cursor's plan)
$n1->append_conf('postgresql.conf',
	"session_preload_libraries = 'auto_explain'\nauto_explain.log_min_duration = 0\n");
$n1->reload;
my $log_at = -s $n1->logfile;
is( $co->safe_psql('postgres',
		'SELECT chain_id, count(*) FROM almanac_coordinator.transactions GROUP BY chain_id ORDER BY 1'),
	"anvil|$c1\nbase|$c2", 'the pushed-down aggregate counts each node\'s rows');
my $cursor_plan = slurp_file($n1->logfile, $log_at);
like($cursor_plan, qr/DECLARE c\d+ CURSOR FOR\s+SELECT chain_id, count\(\*\).*HashAggregate.*Seq Scan on transactions/s,
	'node1 plans the cursor of the pushed-down aggregate for all its rows');
unlike($cursor_plan, qr/Index Scan|Index Only Scan/, 'not for a fast start');
$n1->append_conf('postgresql.conf', "session_preload_libraries = ''\n");
$n1->reload;
$plan = $co->safe_psql('postgres', q{
	EXPLAIN (COSTS OFF) SELECT * FROM almanac_coordinator.blocks WHERE chain_id = 'anvil'});
like($plan, qr/blocks_n1/, 'a condition on chain_id scans the chain\'s node');
unlike($plan, qr/blocks_n2/, 'and prunes the other');

# ORDER BY ... LIMIT (docs/scale-out.md): through the partitioned table the
# nodes sort but the limit stays on the coordinator; on the node's partition
# (or a dispatched function) it runs on the node
$plan = $co->safe_psql('postgres', q{EXPLAIN (VERBOSE, COSTS OFF)
	SELECT block_number FROM almanac_coordinator.blocks WHERE chain_id = 'anvil' ORDER BY block_number DESC LIMIT 2});
unlike($plan, qr/Remote SQL:.*LIMIT/, 'through the partitioned table the limit is not pushed down');
$plan = $co->safe_psql('postgres', q{EXPLAIN (VERBOSE, COSTS OFF)
	SELECT block_number FROM almanac_coordinator.blocks_n1 WHERE chain_id = 'anvil' ORDER BY block_number DESC LIMIT 2});
like($plan, qr/Remote SQL:.*ORDER BY block_number DESC.*LIMIT 2/, 'on the node\'s partition it is');

# check_placement finds a chain a node holds behind the coordinator's back
$n2->safe_psql('postgres', q{
	ALTER TABLE almanac.chains DISABLE TRIGGER chains_placed_check;
	INSERT INTO almanac.chains (chain_id) VALUES ('rogue');
	ALTER TABLE almanac.chains ENABLE TRIGGER chains_placed_check;});
is($co->safe_psql('postgres', 'SELECT * FROM almanac_coordinator.check_placement()'),
	'rogue|n2|present on this node, placed nowhere', 'check_placement names a stray chain');
$n2->safe_psql('postgres', q{DELETE FROM almanac.chains WHERE chain_id = 'rogue'});

# a point lookup through the dispatch function: one call, the node's router
my $row = $n1->safe_psql('postgres',
	q{SELECT b.* FROM almanac.blocks b WHERE chain_id = 'anvil' AND block_number = 3});
$n1->safe_psql('postgres', 'SELECT almanac.router_stats_reset()');
is($co->safe_psql('postgres', q{SELECT * FROM almanac_coordinator.block_at('anvil', 3)}),
	$row, 'block_at returns the node\'s row');
is( $n1->safe_psql('postgres', q{SELECT routed FROM almanac.router_stats WHERE table_name = 'almanac.blocks'::regclass}),
	'1', 'the node\'s router answered it from the mirror');
is($co->safe_psql('postgres', q{SELECT count(*) FROM almanac_coordinator.block_at('anvil', 1000)}),
	'0', 'no block is no row');
is( $co->safe_psql('postgres', q{SELECT (almanac_coordinator.latest_block('base')).block_number}),
	'9', 'latest_block through the coordinator');
my $tx = $n2->safe_psql('postgres', q{SELECT tx_hash FROM almanac.transactions WHERE chain_id = 'base' ORDER BY id LIMIT 1});
$n2->safe_psql('postgres', 'SELECT almanac.router_stats_reset()');
is( $co->safe_psql('postgres', qq{SELECT block_number FROM almanac_coordinator.transaction_by_hash('base', upper('$tx'))}),
	'1', 'transaction_by_hash through the coordinator');
$co->safe_psql('postgres', q{SELECT almanac_coordinator.latest_block('base')});
is( $n2->safe_psql('postgres', q{SELECT string_agg(table_name || '=' || routed, ' ' ORDER BY table_name::text)
		FROM almanac.router_stats WHERE table_name IN ('almanac.blocks'::regclass, 'almanac.transactions'::regclass)}),
	'blocks=1 transactions=1', 'the latest block and the transaction were answered by node2\'s router');

# Concurrent ingest of one chain through the coordinator queues on the
# node's chain lock (PL/Proxy's calls run in READ COMMITTED there) and both
# succeed: the first stores block 9 again, the second finds it stored.
# Through postgres_fdw's remote REPEATABLE READ the second failed with 40001.
is($co->safe_psql('postgres', q{SELECT almanac_coordinator.revert_to('anvil', 8)}), '1', 'block 9 reverted');
my $holder = $n1->background_psql('postgres');
$holder->query_safe(q{BEGIN; SELECT FROM almanac.chains WHERE chain_id = 'anvil' FOR UPDATE});
my @ingests;
my $ingest_sql = 'SELECT almanac_coordinator.ingest_block(\'anvil\', ' . json(31337, 'b9') . ', '
  . json(31337, 'r9') . ') - (1::bigint << 48)';
foreach my $i (1 .. 2)
{
	my %h = (out => '', err => '');
	$h{run} = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $co->connstr('postgres'), '-c', $ingest_sql ],
		'>', \$h{out}, '2>', \$h{err});
	push @ingests, \%h;
}
ok( $n1->poll_query_until('postgres',
		q{SELECT count(*) = 2 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%ingest_block%'}),
	'both ingests wait for the chain lock on the node');
$holder->query_safe('COMMIT');
$holder->quit;
my @answers;
foreach my $h (@ingests)
{
	$h->{run}->finish;
	push @answers, ($? >> 8) . ':' . $h->{out} . $h->{err};
}
my $id9 = $n1->safe_psql('postgres',
	q{SELECT id - (1::bigint << 48) FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number = 9});
is_deeply(\@answers, [ "0:$id9\n", "0:$id9\n" ],
	'both succeed with block 9\'s id, one storing the block, the other finding it stored');

# Cross-chain messages between nodes (docs/scale-out.md): stored on the
# source chain's node (base, node2) towards transactions of anvil (node1),
# named by hash.  A revert on node1 through the coordinator undelivers them
# on node2; reconcile_messages finds and repairs what disagrees.
my %tx = (a => '0x52596ba8d88b9c7bbaeb265e63257a3396dc591934eddb813af21ef98c0a7822',    # block 8
	c => '0x2b9fd07048b3946fce34faf8ed9ff5ddab52f4b94652f7c45a871892d5d370ec',        # block 7
	bogus => '0x' . 'cd' x 32);
$n2->safe_psql('postgres', qq{
	INSERT INTO almanac.cross_chain_messages (protocol, message_key, source_chain_id, source_transaction_id,
		destination_chain_id, destination_tx_hash, status, sent_at, delivered_at)
	SELECT 'bridge', k, 'base', (SELECT min(id) FROM almanac.transactions WHERE chain_id = 'base'), 'anvil', h,
		   'delivered', now(), now()
	  FROM (VALUES ('m1', '$tx{a}'), ('m2', '$tx{c}'), ('m3', '$tx{bogus}')) v(k, h)});
my $messages = q{SELECT string_agg(message_key || '=' || status, ' ' ORDER BY message_key) FROM almanac.cross_chain_messages};
is($n2->safe_psql('postgres', $messages), 'm1=delivered m2=delivered m3=delivered',
	'node2 stores messages towards transactions of a chain on node1');
is($co->safe_psql('postgres', q{SELECT almanac_coordinator.revert_to('anvil', 7)}), '2', 'anvil reverted to 7 on node1');
is($n2->safe_psql('postgres', $messages), 'm1=pending m2=delivered m3=delivered',
	'the message towards the reverted transaction is undelivered on node2');
is( $co->safe_psql('postgres',
		'SELECT almanac_coordinator.ingest_blocks(\'anvil\', ' . json(31337, 'b8', 'b9') . ', ' . json(31337, 'r8', 'r9') . ')'),
	'2', 'blocks 8 and 9 ingested again: tx A is back');
is( $co->safe_psql('postgres', q{SELECT node, message_id >> 48, destination_tx_hash, problem, repaired
		FROM almanac_coordinator.reconcile_messages(repair => false)}),
	"n2|2|$tx{a}|pending, destination transaction present|f",
	'reconciliation finds a pending message whose transaction exists, and leaves alone a delivered one whose '
	  . 'destination is not stored but was never reverted either (not ingested yet)');
is($n2->safe_psql('postgres', $messages), 'm1=pending m2=delivered m3=delivered', 'repair => false repairs nothing');
is($co->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE repaired) FROM almanac_coordinator.reconcile_messages()}),
	'1', 'reconciliation repairs it');
is($n2->safe_psql('postgres', $messages), 'm1=delivered m2=delivered m3=delivered', 'node2\'s message repaired');
is( $n2->safe_psql('postgres', q{SELECT delivered_at FROM almanac.cross_chain_messages WHERE message_key = 'm1'}),
	$n1->safe_psql('postgres', qq{SELECT timestamp FROM almanac.transactions WHERE tx_hash = '$tx{a}'}),
	'a message delivered again takes its destination transaction\'s time');
# a revert run on node1 directly does not reach node2's messages:
# reconciliation undelivers the one whose transaction was reverted
is($n1->safe_psql('postgres', q{SELECT almanac.revert_to('anvil', 7)}), '2', 'a revert on node1 directly');
is( $co->safe_psql('postgres', q{SELECT node, message_id >> 48, destination_tx_hash, problem, repaired
		FROM almanac_coordinator.reconcile_messages()}),
	"n2|2|$tx{a}|delivered, destination transaction reverted|t",
	'reconciliation finds and repairs a delivered message whose transaction was reverted');
is($n2->safe_psql('postgres', $messages), 'm1=pending m2=delivered m3=delivered', 'only that one');
$co->safe_psql('postgres',
	'SELECT almanac_coordinator.ingest_blocks(\'anvil\', ' . json(31337, 'b8', 'b9') . ', ' . json(31337, 'r8', 'r9') . ')');
is($co->safe_psql('postgres', q{SELECT count(*) FROM almanac_coordinator.reconcile_messages()}), '1',
	'back again, it is delivered again');
is($co->safe_psql('postgres', q{SELECT count(*) FROM almanac_coordinator.reconcile_messages()}), '0',
	'then nothing disagrees');
# a reorg through ingest_block(..., 'revert') undelivers too
is( $co->safe_psql('postgres',
		'SELECT almanac_coordinator.ingest_block(\'anvil\', ' . json(31337, 'b6-old') . ', ' . json(31337, 'r6-old')
		  . ', \'revert\') > 0'),
	't', 'a reorg to the old block 6 through the coordinator');
is($n2->safe_psql('postgres', $messages), 'm1=pending m2=pending m3=delivered',
	'the messages towards the reorganised blocks\' transactions are undelivered');
$co->safe_psql('postgres',
	'SELECT almanac_coordinator.ingest_block(\'anvil\', ' . json(31337, 'b6') . ', ' . json(31337, 'r6') . ', \'revert\'); '
	  . 'SELECT almanac_coordinator.ingest_blocks(\'anvil\', ' . json(31337, 'b7', 'b8', 'b9') . ', '
	  . json(31337, 'r7', 'r8', 'r9') . ')');
is($co->safe_psql('postgres', q{SELECT count(*) FROM almanac_coordinator.reconcile_messages()}), '2',
	'back on the new branch, reconciliation delivers both again');
is($n2->safe_psql('postgres', $messages), 'm1=delivered m2=delivered m3=delivered', 'as the nodes now say');
is( $co->safe_psql('postgres', q{SELECT count(*) FROM almanac_coordinator.cross_chain_messages WHERE destination_chain_id = 'anvil'}),
	'3', 'the coordinator reads them, by their source chain');

# A placement flip (move_chain_finish) fences dispatched calls: a call that
# waits for the flip's lock on the placement goes, once the flip commits, to
# the chain's new node.  Here the flip points anvil at node2, which does not
# hold it, so the waiting call finds no chain there (PL/Proxy: P0002); with
# the snapshot taken before the wait it went to node1 and answered 9.
my $flip = $co->background_psql('postgres');
$flip->query_safe(q{BEGIN; LOCK almanac_coordinator.placement IN ACCESS EXCLUSIVE MODE;
	SELECT set_config('almanac_coordinator.registry_write', 'on', true);
	UPDATE almanac_coordinator.placement SET node_id = 2 WHERE chain_id = 'anvil'});
my %waiting = (out => '', err => '');
$waiting{run} = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'VERBOSITY=verbose', '-d', $co->connstr('postgres'), '-c',
		q{SELECT latest_block FROM almanac_coordinator.chain_head('anvil')} ],
	'>', \$waiting{out}, '2>', \$waiting{err});
ok( $co->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%chain_head%'}),
	'a dispatched call waits for the flip');
$flip->query_safe('COMMIT');
$flip->quit;
$waiting{run}->finish;
like($waiting{out} . $waiting{err}, qr/^ERROR:  P0002/m, 'and then goes to the chain\'s new node');
$co->safe_psql('postgres', q{SELECT set_config('almanac_coordinator.registry_write', 'on', false);
	UPDATE almanac_coordinator.placement SET node_id = 1 WHERE chain_id = 'anvil'});
is($co->safe_psql('postgres', q{SELECT latest_block FROM almanac_coordinator.chain_head('anvil')}), '9',
	'flipped back');

# access is granted on the coordinator: nothing but the registry is open to
# PUBLIC, and a granted function reaches the node as the node's role
$co->safe_psql('postgres', 'CREATE ROLE reader');
is(attempt($co, q{SET ROLE reader; SELECT almanac_coordinator.revert_to('anvil', 0)}), 'ERROR 42501',
	'a role without a grant cannot call a dispatched function');
is(attempt($co, q{SET ROLE reader; SELECT count(*) FROM almanac_coordinator.blocks}), 'ERROR 42501',
	'nor read the core tables');
$co->safe_psql('postgres', 'GRANT EXECUTE ON FUNCTION almanac_coordinator.chain_head(text) TO reader');
is( $co->safe_psql('postgres', q{SET ROLE reader; SELECT latest_block FROM almanac_coordinator.chain_head('base')}),
	'9', 'a granted function answers');
# a follower granted as docs/scale-out.md says ingests and reverts: the
# entry points that call the internal _node_* functions run as their owner,
# and those (they take a connect string) stay closed
$co->safe_psql('postgres', q{CREATE ROLE follower;
	GRANT EXECUTE ON FUNCTION almanac_coordinator.ingest_block(text, jsonb, jsonb, text),
		almanac_coordinator.ingest_block(text, text, text, text),
		almanac_coordinator.revert_to(text, bigint) TO follower});
is($co->safe_psql('postgres', q{SET ROLE follower; SELECT almanac_coordinator.revert_to('anvil', 8)}), '1',
	'a granted role reverts');
is( $co->safe_psql('postgres',
		'SET ROLE follower; SELECT almanac_coordinator.ingest_block(\'anvil\', ' . json(31337, 'b9') . '::jsonb, '
		  . json(31337, 'r9') . '::jsonb) >> 48'),
	'1', 'and ingests with jsonb');
is( $co->safe_psql('postgres',
		'SET ROLE follower; SELECT almanac_coordinator.revert_to(\'anvil\', 8); '
		  . 'SELECT almanac_coordinator.ingest_block(\'anvil\', ' . json(31337, 'b9') . ', ' . json(31337, 'r9') . ') >> 48'),
	"1\n1", 'and with JSON as text');
is( attempt($co, q{SET ROLE follower;
		SELECT almanac_coordinator._node_revert_to((SELECT conninfo FROM almanac_coordinator.nodes WHERE node_id = 1), 'anvil', 8)}),
	'ERROR 42501', 'but cannot call the internal functions that take a connect string');
is(attempt($co, q{SET ROLE follower; SELECT almanac_coordinator.reconcile_messages()}), 'ERROR 42501',
	'nor an entry point it was not granted');

# no write path around almanac's functions
like(attempt($co, q{INSERT INTO almanac_coordinator.chains (chain_id) VALUES ('anvil')}),
	qr/ERROR 55000/, 'the core tables are not writable through the coordinator');
like(attempt($co, q{INSERT INTO almanac_coordinator.chains (chain_id) VALUES ('anvil2')}),
	qr/ERROR 23514/, 'nor for a chain placed nowhere');
like(attempt($co, q{DELETE FROM almanac_coordinator.blocks WHERE chain_id = 'anvil'}),
	qr/ERROR 55000/, 'nor deletable');
like(attempt($co, q{TRUNCATE almanac_coordinator.blocks}), qr/ERROR/, 'nor truncatable');
like(attempt($co, q{UPDATE almanac_coordinator.placement SET node_id = 2}), qr/ERROR 42501/,
	'the placement is written by register_chain only');
is($n1->safe_psql('postgres', 'SELECT count(*) FROM almanac.blocks'), '10', 'node1 kept its blocks');

# a node's dump restores a node: its id, its placement, ids in its range
my $dump = $n1->basedir . '/node1.sql';
$n1->command_ok([ 'pg_dump', '-d', $n1->connstr('postgres'), '-f', $dump ], 'node1 dumped');
$n1->safe_psql('postgres', 'CREATE DATABASE restored');
$n1->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $n1->connstr('restored'), '-f', $dump ],
	'and restored into a new database');
is( $n1->safe_psql('restored',
		q{SELECT (SELECT node_id FROM almanac.node), (SELECT string_agg(chain_id, ',') FROM almanac.placed_chains),
				 (SELECT count(*) FROM almanac.blocks)}),
	'1|anvil|10', 'the restored node keeps its id, its placed chain and its rows');
is(attempt($n1, 'SELECT almanac.ingest_block(\'base\', ' . json(8453, 'b1') . ', ' . json(8453, 'r1') . ')', 'restored'),
	'ERROR 42704', 'and refuses a chain not placed on it');
is( $n1->safe_psql('restored',
		q{SELECT almanac.revert_to('anvil', 8); SELECT almanac.ingest_block('anvil', }
		  . json(31337, 'b9') . ', ' . json(31337, 'r9') . ') >> 48'),
	"1
1", 'its new ids stay in its range');

# the coordinator's dump, restored with session_replication_role = replica
# (the registry's guard stays quiet), is a working coordinator
$dump = $co->basedir . '/coordinator.sql';
$co->command_ok([ 'pg_dump', '-d', $co->connstr('postgres'), '-f', $dump ], 'coordinator dumped');
$co->safe_psql('postgres', 'CREATE DATABASE coordinator2');
{
	local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
	$co->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $co->connstr('coordinator2'), '-f', $dump ],
		'and restored');
}
is( $co->safe_psql('coordinator2',
		q{SELECT (almanac_coordinator.chain_head('base')).latest_block,
				 (SELECT count(*) FROM almanac_coordinator.placement),
				 (SELECT count(*) FROM almanac_coordinator.blocks)}),
	'9|2|20', 'the restored coordinator dispatches and reads both nodes');
is(attempt($co, q{DELETE FROM almanac_coordinator.placement}, 'coordinator2'), 'ERROR 42501',
	'and its registry is guarded again');

$co->stop;
$n1->stop;
$n2->stop;
done_testing();
