# almanac_grow_array (src/almanac.c) after a growth that failed.
#
# The store owner keeps its pending apply journal entries (store/owner.c,
# journal_note_pending) in an array that almanac_grow_array enlarges.  The
# helper recorded the new capacity before it allocated: when the allocation
# failed (out of memory, or past MaxAllocSize), the capacity said there was
# room the array did not have, and the next entry was written past its end
# (here: into a NULL array, the first growth having failed), a segfault of
# the owner that restarted the whole server.  The fault point
# grow_array_error fails the growth as an allocation failure does.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AlmanacTest qw(almanac_node owner_fault);

my $node = almanac_node('grow_array_error');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE kv (id int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'g', key_columns 'id');
});

# the owner's first journaled write needs the array: its growth fails after
# the write, which stands (group_write: a batch written is answered as
# written; its journal entry is left uncounted)
owner_fault($node, 'grow_array_error');
my ($ret, $out, $err) = $node->psql('postgres', "INSERT INTO kv VALUES (1, 'written')");
is($ret, 0, 'a commit whose journal entry found no room was written') or diag($err);
owner_fault($node, undef);

# the next write grows the array for real
my $offset = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', "INSERT INTO kv VALUES (2, 'kept')");
is($ret, 0, 'the next commit succeeds') or diag($err);
unlike(slurp_file($node->logfile, $offset), qr/terminated by signal/,
	'and the store owner did not crash');
is($node->safe_psql('postgres', 'SELECT id, v FROM kv ORDER BY id'), "1|written\n2|kept",
	'both rows are there');
# 78 commits in one session, within about a durable point's second: the
# pending entries may pass the first capacity (64)
$node->safe_psql('postgres', join('', map { "INSERT INTO kv VALUES ($_, 'more');\n" } 3 .. 80));
is($node->safe_psql('postgres', 'SELECT count(*) FROM kv'), '80', 'and later commits too');

$node->stop;
done_testing();
