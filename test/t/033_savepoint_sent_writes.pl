# A write of a subtransaction that replaces, in the transaction's batch, a
# write of an outer level (or of a released sibling) of the same key, sent to
# the store owner while the transaction goes on (a batch past
# almanac.write_batch_size, a mirror send past almanac.mirror_send_size), must
# not take the older write with it when the subtransaction rolls back: the
# heap keeps the outer row version, and so must the store.
#  - src/kv/xact.c sends the older write first (replaces_outliving_write):
#    from the write path (almanac_xact_put) and from the mirrors' blind
#    writes (almanac_xact_put_blind), never when those are folded into the
#    batch (fold_blind, by a read or a subtransaction's first write);
#  - src/store/owner.c merges a key written twice in one request into the
#    version list the first write made (keys_written_twice), as the
#    mirrors' blind writes follow the batch's;
#  - src/codec/visibility.c drops a version its own writer replaces, so
#    that a key rewritten many times in one request keeps one version.
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

is($fdw, "a\n0", 'the outer write survives ROLLBACK TO SAVEPOINT of a sent update (wrapper)');
is($mirror, '0', 'and the mirror agrees with the heap (router)');

# A released sibling's write, replaced by a later subtransaction's that is
# sent and rolled back: the sibling's write is the transaction's.
my $sibling = $node->safe_psql('postgres', q{
	SET almanac.write_batch_size = 64;
	BEGIN;
	INSERT INTO kv VALUES (2, 'a');
	SAVEPOINT s1;
	UPDATE kv SET v = 'b' WHERE k = 2;
	RELEASE SAVEPOINT s1;
	SAVEPOINT s2;
	UPDATE kv SET v = 'c' WHERE k = 2;
	INSERT INTO kv SELECT g, repeat('y', 1000) FROM generate_series(2000, 2200) g;
	ROLLBACK TO SAVEPOINT s2;
	COMMIT;
	SET almanac.shared_row_cache = off;
	SELECT coalesce((SELECT v FROM kv WHERE k = 2), 'missing');
	SELECT count(*) FROM kv WHERE k >= 2000;
});
is($sibling, "b\n0", 'a released sibling subtransaction\'s write survives a later one\'s rollback');

# The same from PL/pgSQL: one subtransaction per iteration of an
# exception block, the last one sending its writes and then failing.
my $plpgsql = $node->safe_psql('postgres', q{
	SET almanac.write_batch_size = 64;
	INSERT INTO kv VALUES (3, '0');
	DO $$
	BEGIN
		FOR i IN 1..5 LOOP
			BEGIN
				UPDATE kv SET v = i::text WHERE k = 3;
				IF i = 5 THEN
					INSERT INTO kv SELECT g, repeat('z', 1000) FROM generate_series(3000, 3200) g;
					RAISE EXCEPTION 'undo iteration %', i;
				END IF;
			EXCEPTION WHEN raise_exception THEN
				NULL;
			END;
		END LOOP;
	END $$;
	SET almanac.shared_row_cache = off;
	SELECT coalesce((SELECT v FROM kv WHERE k = 3), 'missing');
	SELECT count(*) FROM kv WHERE k >= 3000;
});
is($plpgsql, "4\n0", 'an exception block\'s rollback keeps the earlier iterations\' write');

# Mirror writes folded into the batch at a save point: an outer write of the
# block stays in the batch, the first subtransaction's update of it is
# folded in at the second save point, the batch is sent (write_batch_size)
# inside the second, and the first rolls back.
my $folded = $node->safe_psql('postgres', q{
	SET almanac.mirror_send_size = 0;
	SET almanac.write_batch_size = 64;
	BEGIN;
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', 300, '0x' || repeat('12', 32), '0x' || repeat('cd', 32), '2024-01-01 00:00:00+00');
	SAVEPOINT s1;
	UPDATE almanac.blocks SET block_hash = '0x' || repeat('34', 32) WHERE block_number = 300;
	SAVEPOINT s2;
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	SELECT 'eth', n, '0x' || lpad(to_hex(n + 1), 64, '0'), '0x' || lpad(to_hex(n), 64, '0'),
		   timestamptz '2024-01-01 00:00:00+00' + n * interval '12 seconds'
	  FROM generate_series(400, 800) AS n;
	ROLLBACK TO SAVEPOINT s1;
	COMMIT;
	SELECT count(*) FROM almanac.verify('almanac.blocks');
	SELECT block_hash = '0x' || repeat('12', 32) FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 300;
	SELECT count(*) FROM almanac.blocks WHERE block_number >= 400;
});
is($folded, "0\nt\n0", 'a folded mirror write of a rolled-back subtransaction keeps the outer write');

# A key rewritten many times by one (sub)transaction, all in one request:
# one version, not one per write.
my $versions = $node->safe_psql('postgres', q{
	SET almanac.mirror_send_size = 0;
	BEGIN;
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', 900, '0x' || repeat('56', 32), '0x' || repeat('cd', 32), '2024-01-01 00:00:00+00');
	UPDATE almanac.blocks SET is_safe = NOT is_safe WHERE block_number = 900;
	UPDATE almanac.blocks SET is_safe = NOT is_safe WHERE block_number = 900;
	UPDATE almanac.blocks SET is_safe = NOT is_safe WHERE block_number = 900;
	COMMIT;
	SELECT count(*) FROM almanac.value_versions('almanac_store', 'mirror.blocks',
		almanac.block_key('eth', 900));
	SELECT is_safe FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 900;
});
is($versions, "1\nt", 'one version for a key written four times by one transaction in one request');

# A loop whose exception block writes a key sends each iteration's write
# when the next one writes the key (the next may roll back alone).  Sent
# after its subtransaction was released, a write is stamped with the
# innermost open level (here the top one), whose visibility it shares, so
# it replaces the earlier iterations' versions at the owner instead of
# adding one version per iteration (each send rewriting them all).
my $loop = $node->safe_psql('postgres', q{
	INSERT INTO kv VALUES (4, '0');
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', 940, '0x' || repeat('9a', 32), '0x' || repeat('cd', 32), '2024-01-01 00:00:00+00');
	SET almanac.mirror_send_size = 0;
	BEGIN;
	DO $$
	BEGIN
		FOR i IN 1..300 LOOP
			BEGIN
				UPDATE kv SET v = i::text WHERE k = 4;
				UPDATE almanac.blocks SET is_safe = NOT is_safe WHERE block_number = 940;
				IF i = 300 THEN
					RAISE EXCEPTION 'undo iteration %', i;
				END IF;
			EXCEPTION WHEN raise_exception THEN
				NULL;
			END;
		END LOOP;
	END $$;
	SELECT count(*) FROM almanac.value_versions('almanac_store', 'kv', almanac.make_key('kv', row(4::bigint)));
	SELECT count(*) FROM almanac.value_versions('almanac_store', 'mirror.blocks', almanac.block_key('eth', 940));
	COMMIT;
	SET almanac.shared_row_cache = off;
	SELECT v FROM kv WHERE k = 4;
	SELECT is_safe FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 940;
	SELECT count(*) FROM almanac.verify('almanac.blocks');
});
is($loop, "2\n2\n299\nt\n0",
	'a released iteration\'s sent write replaces the earlier ones\' versions; the last iteration\'s rollback keeps the one before');

# A save point's start sends nothing: PostgreSQL cannot take an ERROR there
# (the owner's refusal of a send), and an enclosing PL/pgSQL exception block
# that caught one would end the session (FATAL "unexpected state SUBBEGIN").
# The outer block's mirror write of a block the transaction wrote before
# the block is sent with it by the write itself, whose refusal the outer
# block catches; the transaction then cannot commit.
$node->safe_psql('postgres', q{
	INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
	VALUES ('eth', 950, '0x' || repeat('78', 32), '0x' || repeat('cd', 32), '2024-01-01 00:00:00+00');
});
$node->safe_psql('postgres', "ALTER SYSTEM SET almanac.fault_point = 'owner_refuse_apply'");
$node->reload;
sleep(1);
my ($out, $err) = ('', '');
$node->psql('postgres', q{
	SET almanac.mirror_send_size = 0;
	BEGIN;
	UPDATE almanac.blocks SET is_safe = NOT is_safe WHERE block_number = 950;
	DO $$
	BEGIN
		UPDATE almanac.blocks SET is_safe = NOT is_safe WHERE block_number = 950;
		BEGIN
			PERFORM 1;
		EXCEPTION WHEN OTHERS THEN
			RAISE NOTICE 'inner block caught %', SQLSTATE;
		END;
	EXCEPTION WHEN OTHERS THEN
		RAISE NOTICE 'outer block caught %', SQLSTATE;
	END $$;
	SELECT 'session alive';
	COMMIT;
}, stdout => \$out, stderr => \$err);
$node->safe_psql('postgres', 'ALTER SYSTEM RESET almanac.fault_point');
$node->reload;
sleep(1);
unlike($err, qr/FATAL/, 'a refused send inside nested exception blocks does not end the session');
like($err, qr/outer block caught 58030/, 'the write that sent raised the refusal, in the outer block');
is($out, 'session alive', 'the session goes on');
like($err, qr/refused writes this transaction sent before its end/,
	'and the transaction, which lost its write, cannot commit');
is($node->safe_psql('postgres', q{
	SELECT is_safe FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = 950;
	SELECT count(*) FROM almanac.verify('almanac.blocks');
}), "f\n0", 'nothing of it committed, in the heap or the mirror');

$node->stop;
done_testing();
