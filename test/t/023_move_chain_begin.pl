# Issue 17: moving a chain with the coordinator's functions (docs/scale-out.md,
# "Moving a chain"): move_chain_begin sets up the publication, the slot and
# the subscription, the chain keeps being ingested through the coordinator
# during the copy, move_chain_fence refuses its dispatched writes while the
# target catches up, and move_chain_finish flips the placement and lifts the
# fence.  (test/t/021_move_chain.pl runs the same procedure by hand, with
# the checks of the rows, the mirrors and the clean-up.)
use strict;
use warnings;

use PostgreSQL::Test::Utils;

BEGIN { $PostgreSQL::Test::Utils::use_unix_sockets = 0; }
use PostgreSQL::Test::Cluster;
use Test::More;
use AlmanacTest qw(almanac_node attempt);

my $root = $ENV{ALMANAC_ROOT} or die "ALMANAC_ROOT is not set";

my $n1 = almanac_node('node1', "wal_level = logical\nmax_wal_senders = 4\nmax_replication_slots = 8\n");
my $n2 = almanac_node('node2');
my $n3 = almanac_node('node3');
my $co = PostgreSQL::Test::Cluster->new('coordinator');
$co->init;
$co->start;

# fixtures as one JSON document, or with array => 1 as an array of them
sub json
{
	my @docs = map {
		open my $fh, '<', "$root/test/fixtures/anvil/$_.json" or die "$_: $!";
		local $/;
		scalar <$fh>;
	} grep { $_ ne 'array' } @_;
	my $j = (@docs == 1 && $_[0] ne 'array') ? $docs[0] : '[' . join(',', @docs) . ']';
	return "\$json\$$j\$json\$";
}

sub ingest_sql
{
	my (@n) = @_;
	return 'SELECT almanac_coordinator.ingest_blocks(\'anvil\', ' . json('array', map { "b$_" } @n) . ', '
	  . json('array', map { "r$_" } @n) . ')';
}

$co->safe_psql('postgres', q{
	CREATE EXTENSION almanac_coordinator CASCADE;
	SELECT almanac_coordinator.add_node('n1', '127.0.0.1', } . $n1->port . q{, 'postgres');
	SELECT almanac_coordinator.add_node('n2', '127.0.0.1', } . $n2->port . q{, 'postgres');
	SELECT almanac_coordinator.add_node('n3', '127.0.0.1', } . $n3->port . q{, 'postgres');
	SELECT almanac_coordinator.register_chain('anvil', 31337, 'n1', 'Anvil');
});
$co->safe_psql('postgres', ingest_sql(0 .. 5));

{
	my ($out, $err) = ('', '');
	$co->psql('postgres', q{\set VERBOSITY verbose
		SELECT almanac_coordinator.move_chain_begin('anvil', 'n1')}, stdout => \$out, stderr => \$err);
	like($err, qr/ERROR:  55000: chain "anvil" is on node "n1" already.*HINT:  Name another node as the target/s,
		'move_chain_begin refuses the chain\'s own node');
	$co->psql('postgres', q{\set VERBOSITY verbose
		SELECT almanac_coordinator.move_chain_finish('nowhere', 'n2')}, stdout => \$out, stderr => \$err);
	like($err, qr/ERROR:  42704: unknown chain "nowhere".*HINT:  Chains are placed on a node with almanac_coordinator.register_chain/s,
		'move_chain_finish refuses an unknown chain, naming it');
}
is(attempt($co, q{SELECT almanac_coordinator.move_chain_begin('anvil', 'n9')}), 'ERROR 42704', 'and an unknown node');
is(attempt($co, q{SELECT almanac_coordinator.move_chain_begin('nowhere', 'n2')}), 'ERROR 42704', 'and an unknown chain');

my $name = $co->safe_psql('postgres', q{SELECT almanac_coordinator.move_chain_begin('anvil', 'n2')});
like($name, qr/^almanac_move_[0-9a-f]{16}$/, 'move_chain_begin names its publication, slot and subscription');
is($co->safe_psql('postgres', q{SELECT almanac_coordinator.move_chain_begin('anvil', 'n2')}), $name,
	'calling it again is a no-op');
{
	my ($out, $err) = ('', '');
	$co->psql('postgres', q{\set VERBOSITY verbose
		SELECT almanac_coordinator.move_chain_begin('anvil', 'n3')}, stdout => \$out, stderr => \$err);
	like($err, qr/ERROR:  55000: chain "anvil" is being moved to node "n2" already.*HINT:  Finish that move/s,
		'a second move of the chain to another node is refused');
}
is($n3->safe_psql('postgres', q{SELECT (SELECT count(*) FROM pg_subscription), (SELECT count(*) FROM almanac.chains)}),
	'0|0', 'and leaves nothing on that node');
is($co->safe_psql('postgres', q{SELECT moving_to FROM almanac_coordinator.placement WHERE chain_id = 'anvil'}), '2',
	'the placement records the move in progress');
is(attempt($co, q{SELECT almanac_coordinator.move_chain_finish('anvil', 'n3')}), 'ERROR 55000',
	'the flip refuses another target than the move\'s');
is( $n1->safe_psql('postgres',
		qq{SELECT (SELECT count(*) FROM pg_publication WHERE pubname = '$name'),
				  (SELECT count(*) FROM pg_publication_tables WHERE pubname = '$name'),
				  (SELECT string_agg(DISTINCT relreplident::text, '') FROM pg_class
					WHERE relnamespace = 'almanac'::regnamespace
					  AND relname IN ('blocks', 'transactions', 'events', 'account_states', 'orphaned_blocks',
									  'cross_chain_messages'))}),
	'1|7|f', 'node1 publishes the chain\'s seven tables, with replica identity full');
ok($n2->poll_query_until('postgres',
		qq{SELECT count(*) = 0 FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
			WHERE s.subname = '$name' AND r.srsubstate NOT IN ('r', 's')}),
	'node2 copied the chain');
is($co->safe_psql('postgres', q{SELECT node_id FROM almanac_coordinator.placement WHERE chain_id = 'anvil'}), '1',
	'the chain is still placed on node1');

# writes go on during the copy, through the coordinator to node1
is($co->safe_psql('postgres', ingest_sql(6 .. 8)), '3', 'ingest goes on during the copy');
$co->safe_psql('postgres', q{SELECT almanac_coordinator.set_safe('anvil', 7)});

# a REPEATABLE READ transaction that takes its snapshot before the fence
my $rr = $co->background_psql('postgres', on_error_stop => 0);
$rr->query_safe('\set VERBOSITY verbose');
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1');

# the fence: dispatched writes refused, reads answered
$co->safe_psql('postgres', q{SELECT almanac_coordinator.move_chain_fence('anvil')});
{
	my ($out, $err) = ('', '');
	$co->psql('postgres', ingest_sql(9), stdout => \$out, stderr => \$err);
	like($err, qr/ERROR:  chain "anvil" is being moved from node "n1": its writes are fenced/,
		'a fenced chain refuses ingest_blocks');
}
is(attempt($co, q{SELECT almanac_coordinator.ingest_block('anvil', } . json('b9') . ', ' . json('r9') . ')'),
	'ERROR 55000', 'ingest_block');
is(attempt($co, q{SELECT almanac_coordinator.set_finalized('anvil', 6)}), 'ERROR 55000', 'set_finalized');
is(attempt($co, q{SELECT almanac_coordinator.revert_to('anvil', 7)}), 'ERROR 55000', 'and revert_to');
is($co->safe_psql('postgres', q{SELECT latest_block, safe_block FROM almanac_coordinator.chain_head('anvil')}),
	'8|7', 'and answers reads');

# the target catches up, the flip lifts the fence.  The REPEATABLE READ
# transaction's snapshot predates the fence and the flip, so it still reads
# the old placement, unfenced: its write reaches node1, which refuses the
# moved chain.
$n1->wait_for_catchup($name);
is( $co->safe_psql('postgres',
		q{SELECT p.node_id, p.writes_fenced FROM almanac_coordinator.move_chain_finish('anvil', 'n2') p}),
	'2|f', 'move_chain_finish flips the placement and lifts the fence');
is($co->safe_psql('postgres', q{SELECT moving_to IS NULL FROM almanac_coordinator.placement WHERE chain_id = 'anvil'}), 't',
	'and ends the move');
$rr->query(q{SELECT almanac_coordinator.set_safe('anvil', 8)});
like($rr->{stderr}, qr/ERROR:  40001: .*REMOTE ERROR: chain "anvil" was moved away from this node/,
	'a REPEATABLE READ transaction older than the flip cannot write to the old node');
$rr->query('ROLLBACK');
$rr->quit;
is($n1->safe_psql('postgres', q{SELECT safe_block FROM almanac.chains WHERE chain_id = 'anvil'}), '7',
	'node1 kept the chain as it was');
is($co->safe_psql('postgres', ingest_sql(9)), '1', 'ingest goes on');
is( $n2->safe_psql('postgres', q{SELECT count(*), max(block_number), max(id) >> 48 FROM almanac.blocks WHERE chain_id = 'anvil'}),
	'10|9|2', 'on node2, with node2\'s ids for the new block');
is($n1->safe_psql('postgres', q{SELECT max(block_number) FROM almanac.blocks WHERE chain_id = 'anvil'}), '8',
	'and not on node1');
is(attempt($co, q{SELECT almanac_coordinator.move_chain_begin('anvil', 'n2')}), 'ERROR 55000',
	'the chain is on node2 now');

# move_chain_fence(chain, false) opens a fence again
$co->safe_psql('postgres', q{SELECT almanac_coordinator.move_chain_fence('anvil')});
is(attempt($co, q{SELECT almanac_coordinator.set_safe('anvil', 8)}), 'ERROR 55000', 'fenced again');
$co->safe_psql('postgres', q{SELECT almanac_coordinator.move_chain_fence('anvil', false)});
is($co->safe_psql('postgres', q{SELECT almanac_coordinator.set_safe('anvil', 8)}), '8', 'and open');

$n2->safe_psql('postgres', qq{DROP SUBSCRIPTION $name});
is($n1->safe_psql('postgres', qq{SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$name'}), '0',
	'dropping the subscription dropped the slot on node1');

# A failed move_chain_begin leaves nothing on the source: a target that
# holds the chain is refused before anything is made there, and when the
# subscription fails (here a trigger on node3 refuses the placement) the
# slot and the publication are dropped again.
$co->safe_psql('postgres', q{SELECT almanac_coordinator.register_chain('other', 8453, 'n1')});
my $other = 'almanac_move_' . substr($co->safe_psql('postgres', q{SELECT md5('other')}), 0, 16);
my $on_source = qq{SELECT (SELECT count(*) FROM pg_publication WHERE pubname = '$other'),
	(SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$other')};
$n3->safe_psql('postgres', q{INSERT INTO almanac.placed_chains VALUES ('other'); INSERT INTO almanac.chains (chain_id) VALUES ('other')});
is(attempt($co, q{SELECT almanac_coordinator.move_chain_begin('other', 'n3')}), 'ERROR 55000',
	'move_chain_begin refuses a target that holds the chain');
is($n1->safe_psql('postgres', $on_source), '0|0', 'before making anything on the source');
# node3 holds "other" as node1 does (no rows on either), but no move of it
# was begun: no flip
is(attempt($co, q{SELECT almanac_coordinator.move_chain_finish('other', 'n3')}), 'ERROR 55000',
	'move_chain_finish refuses a chain with no move recorded, even to a node that holds it alike');
is($co->safe_psql('postgres', q{SELECT node_id, moving_to IS NULL FROM almanac_coordinator.placement WHERE chain_id = 'other'}),
	'1|t', 'and leaves it on node1');
$n3->safe_psql('postgres', q{DELETE FROM almanac.chains WHERE chain_id = 'other'; DELETE FROM almanac.placed_chains;
	CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'refused'; END$$;
	CREATE TRIGGER refuse BEFORE INSERT ON almanac.placed_chains FOR EACH ROW EXECUTE FUNCTION refuse()});
like(attempt($co, q{SELECT almanac_coordinator.move_chain_begin('other', 'n3')}), qr/ERROR P0001/,
	'when the subscription fails, move_chain_begin fails');
is($n1->safe_psql('postgres', $on_source), '0|0', 'and drops the publication and the slot it made on the source');
is($co->safe_psql('postgres', q{SELECT moving_to IS NULL FROM almanac_coordinator.placement WHERE chain_id = 'other'}), 't',
	'and the chain is not being moved');

# A lost reply: _move_subscribe commits on the target but its answer never
# reaches the coordinator (a wrapper makes the call, then fails as a dropped
# connection would).  move_chain_begin asks the target again and keeps the
# slot and the publication the subscription streams from; a retry finds the
# subscription.
$n3->safe_psql('postgres', 'DROP TRIGGER refuse ON almanac.placed_chains');
$co->safe_psql('postgres', q{
	ALTER FUNCTION almanac_coordinator._node_move_subscribe(text, text, name, text) RENAME TO _node_move_subscribe_real;
	CREATE FUNCTION almanac_coordinator._node_move_subscribe(conninfo text, chain_id text, subscription name,
															 source_conninfo text)
		RETURNS name LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM almanac_coordinator._node_move_subscribe_real(conninfo, chain_id, subscription, source_conninfo);
		RAISE EXCEPTION 'server closed the connection unexpectedly' USING ERRCODE = 'connection_failure';
	END;
	$$});
is($co->safe_psql('postgres', q{SELECT almanac_coordinator.move_chain_begin('other', 'n3')}), $other,
	'the subscription step\'s reply lost: move_chain_begin finds the subscription made');
is($n1->safe_psql('postgres', $on_source), '1|1', 'and keeps the publication and the slot it streams from');
ok($n1->poll_query_until('postgres', qq{SELECT active FROM pg_replication_slots WHERE slot_name = '$other'}),
	'node3 streams from the slot');
ok($n3->poll_query_until('postgres', q{SELECT count(*) = 1 FROM almanac.chains WHERE chain_id = 'other'}),
	'and copies the chain');
$co->safe_psql('postgres', q{DROP FUNCTION almanac_coordinator._node_move_subscribe(text, text, name, text);
	ALTER FUNCTION almanac_coordinator._node_move_subscribe_real(text, text, name, text) RENAME TO _node_move_subscribe});
is($co->safe_psql('postgres', q{SELECT almanac_coordinator.move_chain_begin('other', 'n3')}), $other,
	'a retry is a no-op');
my $subscribed = qq{SELECT count(*) FROM pg_subscription WHERE subname = '$other'};
is($n1->safe_psql('postgres', $on_source) . '|' . $n3->safe_psql('postgres', $subscribed), '1|1|1',
	'one publication, slot and subscription');

# move_chain_abandon undoes the move, the live subscription first: its
# slot is dropped only once nothing streams from it
is( $co->safe_psql('postgres',
		q{SELECT moving_to IS NULL, writes_fenced FROM almanac_coordinator.move_chain_abandon('other')}),
	't|f', 'move_chain_abandon gives up a move whose subscription is live');
is( $n3->safe_psql('postgres',
		qq{SELECT ($subscribed), (SELECT count(*) FROM almanac.chains WHERE chain_id = 'other'),
				  (SELECT count(*) FROM almanac.placed_chains WHERE chain_id = 'other')}),
	'0|0|0', 'dropping the subscription and the copied chain on node3');
is($n1->safe_psql('postgres', $on_source), '0|0', 'then the publication and the slot on node1');
is($n1->safe_psql('postgres', q{SELECT count(*) FROM almanac.chains WHERE chain_id = 'other'}), '1',
	'node1 keeps the chain');
is($co->safe_psql('postgres', q{SELECT moving_to IS NULL FROM almanac_coordinator.move_chain_abandon('other')}), 't',
	'and abandoning it again is a no-op');

# a subscription whose slot was dropped under it is not given a new slot,
# which would miss the changes in between
is($co->safe_psql('postgres', q{SELECT almanac_coordinator.move_chain_begin('other', 'n3')}), $other,
	'the move begun again');
$n3->safe_psql('postgres', "ALTER SUBSCRIPTION $other DISABLE");
ok($n1->poll_query_until('postgres', qq{SELECT NOT active FROM pg_replication_slots WHERE slot_name = '$other'}),
	'its subscription disabled');
$n1->safe_psql('postgres', qq{SELECT pg_drop_replication_slot('$other')});
{
	my ($out, $err) = ('', '');
	$co->psql('postgres', q{\set VERBOSITY verbose
		SELECT almanac_coordinator.move_chain_begin('other', 'n3')}, stdout => \$out, stderr => \$err);
	like($err, qr/ERROR:  55000: the subscription $other of the move of chain "other" exists on node "n3", but its slot is gone from node "n1".*HINT:  .*move_chain_abandon/s,
		'move_chain_begin refuses a subscription whose slot is gone');
}
is($n1->safe_psql('postgres', $on_source), '1|0', 'and makes no new slot under it');
$co->safe_psql('postgres', q{SELECT almanac_coordinator.move_chain_abandon('other')});
is($n1->safe_psql('postgres', $on_source) . '|' . $n3->safe_psql('postgres', $subscribed), '0|0|0',
	'move_chain_abandon cleans that up too');

$co->stop;
$n1->stop;
$n2->stop;
$n3->stop;
done_testing();
