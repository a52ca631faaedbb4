# A batch posted without waiting (almanac.mirror_send_size) that the owner
# applies only after the subtransaction that wrote it rolled back.
#
# A subtransaction deletes a committed row of a foreign table, a send takes
# the delete to the owner, the subtransaction inserts the key again (an
# INSERT: the transaction's own deleted version is the owner's now), a
# mirror write posts that insert, and the subtransaction rolls back before
# the owner applies it (owner_pause_before_apply holds the owner).  The
# owner then judges the insert with the delete it was based on aborted: the
# committed row is live again, the insert a duplicate, or, for an update of
# the transaction's own version, a conflict with it.  Those writes are the
# rolled-back subtransaction's and count for nothing: the owner must drop
# them, not raise 23505 or 40001 at the next read or at the commit (found
# by test/t/045_subxact_fuzz.pl with SUBXACT_FUZZ_POSTED=1).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node owner_fault);

my $node = almanac_node('posted_subxact_abort');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE t (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'pa', key_columns 'id');
	INSERT INTO almanac.chains (chain_id, evm_chain_id, name) VALUES ('eth', 1, 'Ethereum');
	CREATE PROCEDURE blk(n int) LANGUAGE sql BEGIN ATOMIC
		INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
		VALUES ('eth', n, '0x' || lpad(to_hex(n), 64, '0'), '0x' || lpad(to_hex(n + 1000), 64, '0'),
				'2024-01-01 00:00:00+00')
		ON CONFLICT (chain_id, block_number) DO UPDATE SET block_hash = excluded.block_hash;
	END;
	INSERT INTO t VALUES (1, 'committed'), (2, 'committed');
});

owner_fault($node, 'owner_pause_before_apply');
my $s = $node->background_psql('postgres', on_error_stop => 0);
$s->query_safe(q{SET almanac.mirror_send_size = '1kB'});

# each case: what the subtransaction does to key 1 after its delete was sent
my %cases = (
	'insert' => q{INSERT INTO t VALUES (1, repeat('i', 2000))},
	# the insert goes to the owner first: the update expects its version
	'update of its own insert' => q{INSERT INTO t VALUES (1, repeat('i', 2000));
		CALL blk(100);
		UPDATE t SET v = repeat('u', 2000) WHERE id = 1},
);
my $n = 0;
foreach my $case (sort keys %cases)
{
	$n += 2;
	$s->query_safe('BEGIN');
	$s->query_safe('SAVEPOINT a');
	$s->query_safe('DELETE FROM t WHERE id = 1');
	# a large row and a mirror write: posts the batch, the delete with it
	$s->query_safe(q{UPDATE t SET v = repeat('x', 2000) WHERE id = 2});
	$s->query_safe("CALL blk($n)");
	$s->query_safe($cases{$case});
	# posts the insert; the owner holds it while the subtransaction rolls back
	$s->query_safe("CALL blk($n + 1)");
	$s->query_safe('ROLLBACK TO SAVEPOINT a');
	$s->{stderr} = '';
	my $rows = $s->query(q{SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM t WHERE id <= 2});
	is($s->{stderr}, '', "$case: the read after the rollback waits for the send without an error");
	is($rows, '1:committed,2:committed', "$case: the rolled-back writes are undone");
	# a write of the parent's: shows that the COMMIT below commits (a
	# transaction the owner's error aborted ends at COMMIT without an error)
	$s->query("INSERT INTO t VALUES ($n + 100, 'parent')");
	$s->{stderr} = '';
	$s->query('COMMIT');
	is($s->{stderr}, '', "$case: the transaction commits");
	$s->{stderr} = '';
	is($node->safe_psql('postgres', "SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM t WHERE id <= 2 OR id = $n + 100"),
		"1:committed,2:committed," . ($n + 100) . ":parent", "$case: committed as the heap would");
}
$s->quit;
owner_fault($node, undef);
done_testing();
