# Mirror writes sent to the store owner without waiting (kv/xact.c,
# almanac.mirror_send_size): once a transaction's buffered mirror writes
# reach that size they are posted to the owner, which applies them while the
# transaction goes on; the next send, the commit and any read of the store
# wait for the owner's answer first.
#
#   - the writes reach the owner before the commit (its batch count grows
#     while the transaction is open), and not with mirror_send_size = 0;
#   - a read of the store right after a send sees those writes although the
#     owner has not applied them yet (owner_pause_before_apply holds it);
#   - writes not sent yet are read by the transaction and undone by ROLLBACK
#     TO SAVEPOINT, and only they;
#   - a send the owner refuses (owner_refuse_apply) fails the commit even when
#     a subtransaction caught the error, unless the refused writes were all
#     the rolled-back subtransaction's;
#   - crashes: sent writes of a transaction without a commit record are
#     invisible; those of a committed one survive the owner losing them
#     (owner_skip_wal), replayed from their messages in PostgreSQL's WAL.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node attempt owner_fault start_after_crash);

my $node = almanac_node('mirror_send');
$node->safe_psql('postgres', q{
	INSERT INTO almanac.chains (chain_id, name) VALUES ('ms', 'mirror send');
	CREATE TABLE marks (id int PRIMARY KEY);
	-- about 400 bytes of mirror writes per block
	CREATE FUNCTION add_blocks(lo bigint, hi bigint) RETURNS void LANGUAGE sql AS $$
		INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
		SELECT 'ms', n, '0x' || lpad(to_hex(n), 64, '0'), '0x' || lpad(to_hex(n + 100000), 64, '0'),
			   timestamptz '2024-01-01 00:00:00+00' + n * interval '12 s'
		  FROM generate_series(lo, hi) n $$;
});

sub batches
{
	return $node->safe_psql('postgres', 'SELECT batches FROM almanac.commit_stats()');
}

sub blocks
{
	my ($lo, $hi) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM almanac.blocks WHERE chain_id = 'ms' AND block_number BETWEEN $lo AND $hi");
}

sub differences
{
	return $node->safe_psql('postgres', q{SELECT count(*) FROM almanac.verify('almanac.blocks', 'ms')});
}

# --- sent before the commit ---
my $s = $node->background_psql('postgres', on_error_stop => 0);
$s->query_safe(q{SET almanac.mirror_send_size = '1kB'});
my $before = batches();
$s->query_safe('BEGIN');
$s->query_safe('SELECT add_blocks(1, 40)');
cmp_ok(batches() - $before, '>=', 5, 'mirror writes reached the owner while the transaction was open');
is($s->query_safe(q{SELECT count(*) FROM almanac.verify('almanac.blocks', 'ms')}), '0',
	'the transaction reads every mirror write it sent');
$s->query_safe('COMMIT');
is(blocks(1, 40), '40', 'committed');
is(differences(), '0', 'the mirror holds every committed row');

$s->query_safe(q{SET almanac.mirror_send_size = 0});
$before = batches();
$s->query_safe('BEGIN');
$s->query_safe('SELECT add_blocks(41, 80)');
is(batches() - $before, 0, 'with mirror_send_size = 0 nothing is sent before the commit');
$s->query_safe('COMMIT');
is(differences(), '0', 'and the commit sends it all');
$s->query_safe(q{SET almanac.mirror_send_size = '1kB'});

# --- writes kept for the commit: read by the transaction, undone by a
# rollback to a savepoint ---
$s->query_safe(q{SET almanac.mirror_send_size = 0});
$s->query_safe('BEGIN');
$s->query_safe('SELECT add_blocks(501, 505)');
$s->query_safe('SAVEPOINT a');
$s->query_safe('SELECT add_blocks(506, 510)');
$s->query_safe('ROLLBACK TO SAVEPOINT a');
$s->query_safe('SELECT add_blocks(511, 512)');
is($s->query_safe(q{SELECT count(*) FROM almanac.verify('almanac.blocks', 'ms')}), '0',
	'the transaction reads its buffered mirror writes, without those rolled back');
$s->query_safe('SAVEPOINT b');
$s->query_safe('SELECT add_blocks(513, 514)');
$s->query_safe('RELEASE SAVEPOINT b');
$s->query_safe('SAVEPOINT c');
$s->query_safe('SELECT add_blocks(515, 515)');
$s->query_safe('ROLLBACK TO SAVEPOINT c');
$s->query_safe('COMMIT');
is(blocks(501, 515) . ' ' . differences(), '9 0',
	'committed: the writes before each savepoint and of the released one, in the mirror too');
$s->query_safe(q{SET almanac.mirror_send_size = '1kB'});

# --- the mirror's column family handle, found once per transaction
# (almanac_mirror_target), across a reopen of the session's reader: another
# session creates a column family, a read of the store in the next
# transaction reopens the reader (the old instance, whose handle the first
# transaction used, is closed at the start of the one after), and a write
# under a savepoint then looks its key up in the batch by that handle ---
$s->query_safe('BEGIN');
$s->query_safe('SELECT add_blocks(601, 602)');
$s->query_safe('COMMIT');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE target_other (k bigint, v text) SERVER almanac_store
		OPTIONS (key_prefix 'to', key_columns 'k', column_family 'target_other');
	INSERT INTO target_other VALUES (1, 'a');
});
is($s->query_safe(q{SELECT count(*) FROM almanac.verify('almanac.blocks', 'ms')}), '0',
	'a read reopens the reader for the new column family');
$s->query_safe('BEGIN');
$s->query_safe(q{SELECT count(*) FROM almanac.verify('almanac.blocks', 'ms', 601, 602)});
$s->query_safe('SELECT add_blocks(603, 604)');
$s->query_safe('SAVEPOINT a');
$s->query_safe('SELECT add_blocks(605, 606)');
$s->query_safe('ROLLBACK TO SAVEPOINT a');
$s->query_safe(q{UPDATE almanac.blocks SET parent_hash = '0x' || repeat('e', 64) WHERE chain_id = 'ms' AND block_number = 603});
$s->query_safe('COMMIT');
is(blocks(601, 606) . ' ' . differences(), '4 0',
	'the writes of each transaction reach the mirror through the handle of its own reader instance');

# --- a read right after a send waits for the owner ---
owner_fault($node, 'owner_pause_before_apply');
my $log = -s $node->logfile;
$s->query_safe('BEGIN');
$s->query_safe('SELECT add_blocks(81, 84)');
ok($node->wait_for_log(qr/fault point "owner_pause_before_apply" reached/, $log),
	'a batch was posted and the owner holds it before applying it');
is($s->query_safe(q{SELECT count(*) FROM almanac.verify('almanac.blocks', 'ms')}), '0',
	'a read right after the send sees the writes the owner had not applied yet');
$s->query_safe('COMMIT');
owner_fault($node, undef);
is(blocks(81, 84) . ' ' . differences(), '4 0', 'committed, mirror and heap alike');

# --- a refused send ---
owner_fault($node, 'owner_refuse_apply');
# a level-1 block still buffered, sent with the subtransaction's blocks; the
# refusal is raised inside the subtransaction, which catches it
$s->query_safe('BEGIN');
$s->query_safe('INSERT INTO marks VALUES (1)');
$s->query_safe('SELECT add_blocks(101, 101)');
$s->query(q{
	DO $$ BEGIN PERFORM add_blocks(102, 110);
	EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'caught %', SQLSTATE; END $$});
like($s->{stderr}, qr/caught 58030/, 'the refusal was raised and caught in the subtransaction');
$s->{stderr} = '';
$s->query('COMMIT');
like($s->{stderr}, qr/refused writes this transaction sent before its end/,
	'the commit fails: the refused batch held writes of the transaction itself');
$s->{stderr} = '';
is(blocks(101, 110) . ' ' . $node->safe_psql('postgres', 'SELECT count(*) FROM marks'), '0 0',
	'nothing of the transaction committed');

# refused writes that were all a rolled-back subtransaction's do not fail it
$s->query_safe('BEGIN');
$s->query_safe('SAVEPOINT a');
$s->query('SELECT add_blocks(111, 130)');
like($s->{stderr}, qr/fault point "owner_refuse_apply" refused a batch/, 'the subtransaction\'s send was refused');
$s->{stderr} = '';
$s->query_safe('ROLLBACK TO SAVEPOINT a');
owner_fault($node, undef);
$s->query_safe('SELECT add_blocks(131, 131)');
$s->query('COMMIT');
is($s->{stderr}, '', 'the transaction commits without the rolled-back subtransaction');
is(blocks(111, 131) . ' ' . differences(), '1 0', 'only its own block, in the mirror too');
$s->quit;

# --- crashes ---
# a transaction that sent writes and stops before its commit record
my $file = $node->basedir . '/crash.sql';
sub commit_until_fault
{
	my ($lo, $hi, $point) = @_;
	my $offset = -s $node->logfile;
	open(my $fh, '>', $file) or die "cannot write $file: $!";
	print $fh "SET almanac.fault_point = '$point';\nSET almanac.mirror_send_size = '1kB';\n"
	  . "BEGIN;\nSELECT add_blocks($lo, $hi);\nCOMMIT;\n";
	close $fh;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-f', $file ],
		'>', \$out, '2>', \$err);
	$node->wait_for_log(qr/almanac: fault point "$point" reached/, $offset);
	return $h;
}

$before = batches();
my $h = commit_until_fault(201, 260, 'before_commit_record');
cmp_ok(batches() - $before, '>=', 5, 'before_commit_record: the writes were sent in several batches');
$node->kill9;
$h->finish;
ok(start_after_crash($node), 'before_commit_record: restarted');
is(blocks(201, 260) . ' ' . differences(), '0 0',
	'before_commit_record: in neither the heap nor the mirror');

# committed, and the owner lost its unsynced writes: replayed from the WAL
$node->safe_psql('postgres', "ALTER SYSTEM SET almanac.fault_point = 'owner_skip_wal'");
$node->restart;
$h = commit_until_fault(301, 360, 'after_commit_record');
# started without the fault point: the owner must not skip its log again
$node->safe_psql('postgres', 'ALTER SYSTEM RESET almanac.fault_point');
$node->kill9;
$h->finish;
ok(start_after_crash($node), 'after_commit_record: restarted');
is(blocks(301, 360) . ' ' . differences(), '60 0',
	'after_commit_record: in the heap and, replayed, in the mirror');

$node->stop;
done_testing();
