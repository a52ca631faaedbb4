# A failing RocksDB iterator is an error, never an end of range: a scan
# (src/kv/access.c) and a walk of the transaction's writes (src/kv/xact.c,
# batch_foreach_range: a commit's send of more than 16 writes, a scan's copy
# of its own writes) check the iterator's status when it stops.  Unchecked,
# a failing scan returned no rows, and a commit whose walk failed sent
# nothing and succeeded: its writes were lost without a word.  The fault
# point iterator_error (src/fault.h) makes a backend's iterators fail, as an
# I/O error or a corrupted block does.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node);

my $node = almanac_node('iterator_errors');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (k bigint, v text)
		SERVER almanac_store OPTIONS (key_prefix 'kv', key_columns 'k');
	INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 3) g;
});

# runs sql with the fault point armed in its session: (exit code, stdout, stderr)
sub faulty
{
	my ($sql) = @_;
	my ($out, $err);
	my $rc = $node->psql('postgres',
		"SET almanac.fault_point = 'iterator_error';\n$sql",
		stdout => \$out, stderr => \$err, on_error_stop => 1);
	return ($rc, $out, $err);
}

my ($rc, $out, $err) = faulty('SELECT count(*) FROM kv');
isnt($rc, 0, 'a scan whose iterator fails is an error');
like($err, qr/almanac store read failed/, '... a read error');
is($out, '', '... not a count of the rows read before');

# 20 writes: a commit sends them through the batch's iterator
($rc, $out, $err) = faulty(q{
	BEGIN;
	INSERT INTO kv SELECT g, 'w' || g FROM generate_series(100, 119) g;
	COMMIT;
});
isnt($rc, 0, 'a commit whose walk of its writes fails is an error');
like($err, qr/almanac store read failed/, '... a read error');

# a few writes are sent from the batch's representation, with no iterator
($rc, $out, $err) = faulty(q{
	BEGIN;
	INSERT INTO kv SELECT g, 'w' || g FROM generate_series(200, 204) g;
	COMMIT;
});
is($rc, 0, 'a commit of 5 writes reads no iterator') or diag($err);

# a scan of the transaction's own writes copies them through an iterator
($rc, $out, $err) = faulty(q{
	BEGIN;
	INSERT INTO kv VALUES (300, 'own');
	SELECT k FROM kv WHERE k >= 300;
});
isnt($rc, 0, 'a scan of its own writes whose copy fails is an error');
like($err, qr/almanac store read failed/, '... a read error');

is($node->safe_psql('postgres', 'SELECT count(*) FROM kv WHERE k BETWEEN 100 AND 119'),
	'0', 'the failed commit wrote nothing');
is($node->safe_psql('postgres', q{SELECT string_agg(k::text, ',' ORDER BY k) FROM kv}),
	'1,2,3,200,201,202,203,204', 'every committed row, nothing else');

$node->stop;
done_testing();
