# Issue 17, item 5: moving a chain between almanac nodes (docs/scale-out.md,
# "Moving a chain").  Node n1 publishes the chain's rows with a row filter on
# chain_id, n2 subscribes, a block ingested on n1 during the copy reaches n2,
# then the placement flips on the coordinator, n2's mirrors are checked and
# resynced, and n1 forgets the chain.  The chain answers the same through the
# coordinator and on n2 as it did before, n2's router answers its lookups,
# new ingest goes to n2 and n1 holds nothing of it.
use strict;
use warnings;

use PostgreSQL::Test::Utils;

BEGIN { $PostgreSQL::Test::Utils::use_unix_sockets = 0; }
use PostgreSQL::Test::Cluster;
use Test::More;
use AlmanacTest qw(almanac_node attempt);

my $root = $ENV{ALMANAC_ROOT} or die "ALMANAC_ROOT is not set";

# the source publishes: logical WAL
my $n1 = almanac_node('node1', "wal_level = logical\nmax_wal_senders = 4\nmax_replication_slots = 8\n");
my $n2 = almanac_node('node2');
my $co = PostgreSQL::Test::Cluster->new('coordinator');
$co->init;
$co->start;

# fixtures; with a leading evm => N, their transactions' chainId made N
sub json
{
	my $evm;
	(undef, $evm) = splice(@_, 0, 2) if $_[0] eq 'evm';
	my @docs = map {
		open my $fh, '<', "$root/test/fixtures/anvil/$_.json" or die "$_: $!";
		local $/;
		my $d = <$fh>;
		$d =~ s/"chainId": "0x7a69"/sprintf('"chainId": "0x%x"', $evm)/ge if $evm;
		$d;
	} @_;
	my $j = @docs == 1 ? $docs[0] : '[' . join(',', @docs) . ']';
	return "\$json\$$j\$json\$";
}

sub ingest
{
	my (@n) = @_;
	return $co->safe_psql('postgres',
		'SELECT almanac_coordinator.ingest_blocks(\'anvil\', ' . json(map { "b$_" } @n) . ', '
		  . json(map { "r$_" } @n) . ')');
}

# the chain as its readers see it: every row of the core tables, ids included
my @tables = qw(blocks transactions events account_states orphaned_blocks);
sub contents
{
	my ($node, $schema) = @_;
	my %c;
	$c{block3} = $node->safe_psql('postgres',
		"SELECT block_hash FROM $schema.blocks WHERE chain_id = 'anvil' AND block_number = 3");
	$c{chain_head} = $node->safe_psql('postgres',
		"SELECT chain_id, evm_chain_id, name, latest_block, safe_block, finalized_block FROM $schema.chains WHERE chain_id = 'anvil'");
	foreach my $t (@tables)
	{
		my $cols = $t eq 'orphaned_blocks' ? 'chain_id, block_number, block_hash, tx_hashes' : '*';
		$c{$t} = $node->safe_psql('postgres',
			"SELECT $cols FROM $schema.$t x WHERE chain_id = 'anvil' ORDER BY " . ($t eq 'orphaned_blocks' ? '2, 3' : 'id'));
	}
	return \%c;
}

$co->safe_psql('postgres', q{
	CREATE EXTENSION almanac_coordinator CASCADE;
	SELECT almanac_coordinator.add_node('n1', '127.0.0.1', } . $n1->port . q{, 'postgres');
	SELECT almanac_coordinator.add_node('n2', '127.0.0.1', } . $n2->port . q{, 'postgres');
	SELECT almanac_coordinator.register_chain('anvil', 31337, 'n1', 'Anvil');
});
ingest(0 .. 5);
$co->safe_psql('postgres', q{SELECT almanac_coordinator.ingest_block('anvil', } . json('b6-old') . ', ' . json('r6-old') . ')');
$co->safe_psql('postgres', q{SELECT almanac_coordinator.revert_to('anvil', 5)});
ok($n1->safe_psql('postgres', q{SELECT count(*) FROM almanac.orphaned_blocks}) > 0, 'a revert left an audit row');
# account states are written by the indexer on the chain's node
$n1->safe_psql('postgres', q{
	INSERT INTO almanac.account_states (chain_id, account, block_number, state)
	SELECT 'anvil', a, n, jsonb_build_object('balance', n * 10 + length(a))
	  FROM unnest(ARRAY['0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb']) a,
		   unnest(ARRAY[2, 4]) n});

# on node1, a message from the first transaction of one chain delivered by
# the first transaction of another, given by id, sent at 00:00 and
# delivered at 00:01 on 2026-01-01; returns the destination's hash
sub deliver_message
{
	my ($key, $source, $destination) = @_;
	$n1->safe_psql('postgres', qq{
		INSERT INTO almanac.cross_chain_messages (protocol, message_key, source_chain_id, source_transaction_id,
			destination_chain_id, destination_transaction_id, status, sent_at, delivered_at)
		SELECT 'bridge', '$key', '$source', (SELECT min(id) FROM almanac.transactions WHERE chain_id = '$source'),
			   '$destination', (SELECT min(id) FROM almanac.transactions WHERE chain_id = '$destination'),
			   'delivered', '2026-01-01 00:00:00+00', '2026-01-01 00:01:00+00'});
	return $n1->safe_psql('postgres',
		qq{SELECT tx_hash FROM almanac.transactions WHERE chain_id = '$destination' ORDER BY id LIMIT 1});
}

# another chain on node1, not moved
$co->safe_psql('postgres', q{SELECT almanac_coordinator.register_chain('other', 8453, 'n1')});
$co->safe_psql('postgres',
	'SELECT almanac_coordinator.ingest_blocks(\'other\', ' . json(evm => 8453, 'b0', 'b1') . ', '
	  . json(evm => 8453, 'r0', 'r1') . ')');

# the flip refuses a chain whose move was never begun
{
	my ($out, $err) = ('', '');
	$co->psql('postgres', q{\set VERBOSITY verbose
		SELECT almanac_coordinator.move_chain_finish('anvil', 'n2')}, stdout => \$out, stderr => \$err);
	like($err,
		qr/ERROR:  55000: chain "anvil" has no move recorded: it is not being moved to node "n2".*HINT:  Begin the move with almanac_coordinator.move_chain_begin\('anvil', 'n2'\)/s,
		'move_chain_finish refuses a chain with no move recorded, naming it');
}
is($co->safe_psql('postgres', q{SELECT node_id FROM almanac_coordinator.placement WHERE chain_id = 'anvil'}),
	'1', 'and the chain stays on node1');
is(attempt($co, q{SELECT almanac_coordinator.move_chain_finish('anvil', 'n9')}), 'ERROR 42704',
	'and an unknown node');

# 0. on the coordinator: the move recorded, the copy made by hand
is($co->safe_psql('postgres', q{SELECT almanac_coordinator.move_chain_begin('anvil', 'n2', copy => false) IS NULL}),
	't', 'move_chain_begin with copy => false records the move only');
is($co->safe_psql('postgres', q{SELECT moving_to FROM almanac_coordinator.placement WHERE chain_id = 'anvil'}), '2',
	'the placement records the move');
is($co->safe_psql('postgres', q{SELECT node_id FROM almanac_coordinator.move_chain_finish('anvil', 'n1')}), '1',
	'a flip to the chain\'s own node is a no-op');
is(attempt($co, q{SELECT almanac_coordinator.move_chain_finish('anvil', 'n2')}), 'ERROR 55000',
	'move_chain_finish refuses a target without the chain');

# the tables whose key is not chain_id: an UPDATE or DELETE published with a
# row filter needs the filter column in the replica identity
sub replica_identity
{
	my ($identity) = @_;
	return join("\n",
		map { "ALTER TABLE almanac.$_ REPLICA IDENTITY $identity;" }
		  qw(blocks transactions events account_states orphaned_blocks cross_chain_messages));
}

# 1. on the source: replica identity covering chain_id, a publication with a
# row filter, one table at a time
my $pub = join(', ',
	(map { "almanac.$_ WHERE (chain_id = 'anvil')" } qw(chains blocks transactions events account_states orphaned_blocks)),
	"almanac.cross_chain_messages WHERE (source_chain_id = 'anvil')");
$n1->safe_psql('postgres', qq{
	${\replica_identity('FULL')}
	CREATE PUBLICATION move_anvil FOR TABLE $pub;
});
# 2. on the target: the chain allowed, a subscription copying its rows
$n2->safe_psql('postgres', q{INSERT INTO almanac.placed_chains (chain_id) VALUES ('anvil')});
$n2->safe_psql('postgres',
	q{CREATE SUBSCRIPTION move_anvil CONNECTION 'host=127.0.0.1 port=} . $n1->port . q{ dbname=postgres' PUBLICATION move_anvil});
ok($n2->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')}),
	'the initial copy is done');

# the chain keeps being written on the source during the copy: inserts and updates reach the target
ingest(6 .. 8);
$co->safe_psql('postgres', q{SELECT almanac_coordinator.set_safe('anvil', 7); SELECT almanac_coordinator.set_finalized('anvil', 6)});
$n1->safe_psql('postgres', q{
	INSERT INTO almanac.account_states (chain_id, account, block_number, state)
	VALUES ('anvil', '0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 7, '{"balance": 7}');
	UPDATE almanac.account_states SET state = '{"balance": 5}'
	 WHERE account = '0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' AND block_number = 4});

# a message of anvil delivered by a transaction of "other", which stays on
# node1: its destination id is node1's, and is copied to node2 as it is
my $m2_hash = deliver_message('m2', 'anvil', 'other');

# the flip refuses a target that is behind: changes held back on node2
$n2->safe_psql('postgres', 'ALTER SUBSCRIPTION move_anvil DISABLE');
$co->safe_psql('postgres', q{SELECT almanac_coordinator.set_safe('anvil', 8)});
is(attempt($co, q{SELECT almanac_coordinator.move_chain_finish('anvil', 'n2')}), 'ERROR 55000',
	'move_chain_finish refuses a target that has not caught up');
is($co->safe_psql('postgres', q{SELECT node_id FROM almanac_coordinator.placement WHERE chain_id = 'anvil'}),
	'1', 'and the chain stays on node1');
$n2->safe_psql('postgres', 'ALTER SUBSCRIPTION move_anvil ENABLE');

# 3. writers stopped: wait until the target has everything
$n1->wait_for_catchup('move_anvil');
my $before = contents($co, 'almanac_coordinator');
my $before_n1 = contents($n1, 'almanac');
is_deeply($before, $before_n1, 'before the move the coordinator reads node1');
is_deeply(contents($n2, 'almanac'), $before_n1, 'the target holds the same rows, ids kept');

# 4. the flip
is($co->safe_psql('postgres', q{SELECT node_id FROM almanac_coordinator.move_chain_finish('anvil', 'n2')}),
	'2', 'the placement flips to node2');
is($co->safe_psql('postgres', q{SELECT node_id FROM almanac_coordinator.move_chain_finish('anvil', 'n2')}),
	'2', 'a repeated flip is a no-op');
is( $n2->safe_psql('postgres', q{SELECT status, delivered_at = '2026-01-01 00:01:00+00', destination_tx_hash,
		destination_transaction_id IS NULL FROM almanac.cross_chain_messages WHERE message_key = 'm2'}),
	"delivered|t|$m2_hash|t",
	'node2 holds no destination id naming a transaction of node1, the message kept delivered by hash');
my $dangling = q{SELECT count(*) FROM almanac.cross_chain_messages m
	WHERE destination_transaction_id IS NOT NULL
	  AND NOT EXISTS (SELECT FROM almanac.transactions t WHERE t.id = m.destination_transaction_id)};
is($n2->safe_psql('postgres', $dangling), '0', 'no destination id dangles on node2');

# The subscription lives until step 5: a change of the message on node1
# after the flip (a straggling writer) still reaches node2, and the id it
# carries, naming node1's transaction, is cleared again as it arrives.
$n1->safe_psql('postgres', q{UPDATE almanac.cross_chain_messages SET payload = '{"late": true}' WHERE message_key = 'm2'});
$n1->wait_for_catchup('move_anvil');
is( $n2->safe_psql('postgres', q{SELECT payload ->> 'late', status, destination_transaction_id IS NULL
		FROM almanac.cross_chain_messages WHERE message_key = 'm2'}),
	'true|delivered|t', 'a change replicated after the flip does not bring the dangling id back');
is($n2->safe_psql('postgres', $dangling), '0', 'no destination id dangles on node2 after it');

# 5. on the target: subscription gone, mirrors checked and resynced
$n2->safe_psql('postgres', 'DROP SUBSCRIPTION move_anvil');
foreach my $t (qw(blocks transactions events account_states))
{
	# the mirror triggers are ENABLE ALWAYS: the apply worker's rows (copy
	# and changes) reached node2's mirror already, resync is a safety net
	is($n2->safe_psql('postgres', "SELECT count(*) FROM almanac.verify('almanac.$t', 'anvil')"),
		'0', "the replicated rows of $t reached node2's mirror");
	$n2->safe_psql('postgres', "SELECT almanac.resync('almanac.$t', 'anvil')");
	is($n2->safe_psql('postgres', "SELECT count(*) FROM almanac.verify('almanac.$t', 'anvil')"),
		'0', "node2's mirror of $t agrees with its table");
}

# A message of another chain on node1 ("other"), delivered by a transaction
# of anvil while both were on node1: its destination by id and by hash.
my $m1_hash = deliver_message('m1', 'other', 'anvil');

# 6. on the source: the chain forgotten, the publication dropped
$n1->safe_psql('postgres', q{
	DROP PUBLICATION move_anvil;
	DELETE FROM almanac.placed_chains WHERE chain_id = 'anvil';
	DELETE FROM almanac.chains WHERE chain_id = 'anvil';
} . replica_identity('DEFAULT'));
is($co->safe_psql('postgres', 'SELECT count(*) FROM almanac_coordinator.check_placement()'), '0',
	'placement and nodes agree after the move');
# forgetting the moved chain reverted none of its transactions
is( $n1->safe_psql('postgres', q{SELECT status, delivered_at = '2026-01-01 00:01:00+00', destination_tx_hash, destination_transaction_id IS NULL
		FROM almanac.cross_chain_messages WHERE message_key = 'm1'}),
	"delivered|t|$m1_hash|t",
	'a message towards the moved chain stays delivered, by hash, when node1 forgets the chain');
is($co->safe_psql('postgres', 'SELECT count(*) FROM almanac_coordinator.reconcile_messages(repair => false)'), '0',
	'and reconciliation finds its destination transaction on node2');

# the same answers after the move
is_deeply(contents($co, 'almanac_coordinator'), $before, 'the coordinator reads the same chain after the move');
is_deeply(contents($n2, 'almanac'), $before_n1, 'node2 holds it as node1 did');
my $plan = $co->safe_psql('postgres', q{EXPLAIN (COSTS OFF) SELECT * FROM almanac_coordinator.blocks WHERE chain_id = 'anvil'});
like($plan, qr/blocks_n2/, 'the coordinator reads the chain on node2');
unlike($plan, qr/blocks_n1/, 'and not on node1');
my $acct = $n2->safe_psql('postgres', q{SELECT account FROM almanac.account_states WHERE chain_id = 'anvil' ORDER BY id LIMIT 1});
ok($acct ne '', 'the chain has account states');
is($co->safe_psql('postgres', qq{SELECT almanac_coordinator.account_state('anvil', '$acct')}),
	$n2->safe_psql('postgres', qq{SELECT state FROM almanac.account_states WHERE chain_id = 'anvil' AND account = '$acct' ORDER BY block_number DESC LIMIT 1}),
	'the latest account state through the coordinator');
my $tx = $n2->safe_psql('postgres', q{SELECT tx_hash FROM almanac.transactions WHERE chain_id = 'anvil' ORDER BY id LIMIT 1});
is($co->safe_psql('postgres', qq{SELECT id, block_number FROM almanac_coordinator.transaction_by_hash('anvil', '$tx')}),
	$n2->safe_psql('postgres', qq{SELECT id, block_number FROM almanac.transactions WHERE tx_hash = '$tx'}),
	'a transaction lookup through the coordinator');

# node2's router answers the moved chain's lookups from its mirror
like($n2->safe_psql('postgres', q{EXPLAIN (COSTS OFF) SELECT * FROM almanac.blocks WHERE chain_id = 'anvil' AND block_number = 3}),
	qr/Almanac Lookup/, 'a lookup on node2 is routed');
$n2->safe_psql('postgres', 'SELECT almanac.router_stats_reset()');
is($co->safe_psql('postgres', q{SELECT block_hash FROM almanac_coordinator.block_at('anvil', 3)}),
	$before_n1->{block3},
	'block_at answers the moved block');
is($n2->safe_psql('postgres', q{SELECT routed FROM almanac.router_stats WHERE table_name = 'almanac.blocks'::regclass}),
	'1', 'from node2\'s mirror');

# new ingest goes to node2, with node2's ids; node1 holds nothing of the chain
is($co->safe_psql('postgres', q{SELECT almanac_coordinator.ingest_block('anvil', } . json('b9') . ', ' . json('r9') . ') >> 48'),
	'2', 'new ingest lands on node2 with node2\'s ids');
is($co->safe_psql('postgres', q{SELECT latest_block FROM almanac_coordinator.chain_head('anvil')}), '9',
	'the head moved on');
foreach my $t ('chains', @tables, 'placed_chains')
{
	is($n1->safe_psql('postgres', "SELECT count(*) FROM almanac.$t WHERE chain_id = 'anvil'"), '0',
		"node1 holds no $t of the chain");
}
is(attempt($n1, 'SELECT almanac.ingest_block(\'anvil\', ' . json('b9') . ', ' . json('r9') . ')'), 'ERROR 42704',
	'node1 refuses the chain now');
foreach my $t (qw(blocks transactions events account_states))
{
	is($n1->safe_psql('postgres', "SELECT count(*) FROM almanac.verify('almanac.$t')"), '0',
		"node1's mirror of $t dropped the chain's keys");
}
is($n1->safe_psql('postgres', q{SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'move_anvil'}), '0',
	'the subscription\'s slot is gone from node1');

$co->stop;
$n1->stop;
$n2->stop;
done_testing();
