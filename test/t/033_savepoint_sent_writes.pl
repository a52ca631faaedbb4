# KNOWN BUG, kept as TODO tests until the write path fixes it (issue 15):
# a committed write is lost when a subtransaction overwrites a key that an
# outer level of the transaction wrote, that write is sent to the store owner
# while the transaction goes on (a batch past almanac.write_batch_size, or a
# mirror's send past almanac.mirror_send_size), and the subtransaction then
# rolls back.  The heap keeps the outer write; the store does not:
#  - src/kv/xact.c's almanac_xact_put combines the inner write with the
#    outer one under the inner subtransaction's id, and the batch keeps one
#    entry per key, so only the inner version is sent;
#  - the owner merges each entry of a request into the stored value, not into
#    an earlier entry of the same key in that request (a request may carry a
#    key twice since the mirrors' writes are sent as written).
# Fixes: send both versions (no combining across subtransaction levels, the
# owner applying a request's entries in order through a WriteBatchWithIndex
# as its WAL replay does), or refuse the commit when a rolled-back
# subtransaction's sent write replaced an outer level's (doomed_level).
# When fixed, these report "unexpectedly succeeded": drop the TODO.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('savepoint_sent');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO almanac.chains (chain_id, evm_chain_id, name) VALUES ('eth', 1, 'Ethereum');
});

my $fdw = $node->safe_psql('postgres', q{
	SET almanac.write_batch_size = 64;
	BEGIN;
	INSERT INTO kv VALUES (1, 'a');
	SAVEPOINT s;
	UPDATE kv SET v = 'b' WHERE k = 1;
	INSERT INTO kv SELECT g, repeat('x', 1000) FROM generate_series(1000, 1200) g;
	ROLLBACK TO SAVEPOINT s;
	COMMIT;
	SET almanac.shared_row_cache = off;
	SELECT coalesce((SELECT v FROM kv WHERE k = 1), 'missing');
	SELECT count(*) FROM kv WHERE k >= 1000;
});

my $mirror = $node->safe_psql('postgres', q{
	SET almanac.mirror_send_size = 1;
	BEGIN;
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', 100, '0x' || repeat('ab', 32), '0x' || repeat('cd', 32), '2024-01-01 00:00:00+00');
	SAVEPOINT s;
	UPDATE almanac.blocks SET block_hash = '0x' || repeat('ef', 32) WHERE block_number = 100;
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	SELECT 'eth', n, '0x' || lpad(to_hex(n + 1), 64, '0'), '0x' || lpad(to_hex(n), 64, '0'),
		   timestamptz '2024-01-01 00:00:00+00' + n * interval '12 seconds'
	  FROM generate_series(200, 230) AS n;
	ROLLBACK TO SAVEPOINT s;
	COMMIT;
	SELECT count(*) FROM almanac.verify('almanac.blocks');
});

TODO:
{
	local $TODO = 'known bug: a sent write of a rolled-back savepoint replaces the outer write (issue 15)';
	is($fdw, "a\n0", 'the outer write survives ROLLBACK TO SAVEPOINT of a sent update (wrapper)');
	is($mirror, '0', 'and the mirror agrees with the heap (router)');
}

$node->stop;
done_testing();
