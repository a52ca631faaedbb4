# A request slot is not reused while an owner may still answer the request
# it held, and a waiter takes only the answer to its own request
# (store/store.h: request generations).
#
# A backend waits for the owner's answer in its request slot, and gives the
# request up when it sees the store's owner gone.  It used to read the
# owner's state and then, the lock released, the slot: a new owner could
# start in between and take the request up.  The backend then reported the
# commit failed, posted its next request in the same slot, and took the new
# owner's late answer to the first request for the answer to the second:
# COMMIT returned, and the second batch was never written.
#
# Two defences, each enough for this test: the backend gives a request up
# only under the lock an owner becomes READY under (so no owner works on a
# request given up), and it takes only an answer that names its request's
# generation (so a late answer to the slot's previous request is not taken,
# and the owner serves the new request after it).
#
# request_pause_before_give_up holds the backend (8 s) after it saw the
# owner gone; owner_pause_before_answer holds the new owner (15 s) between
# applying a request and answering it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use AlmanacTest qw(almanac_node);

my $node = almanac_node('slot_reuse', "almanac.idle_flush_delay = 0\n");
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE t (k int, v text)
		SERVER almanac_store OPTIONS (key_prefix 'r', key_columns 'k');
	INSERT INTO t VALUES (0, 'before');
});

# a transaction with a write to commit, in a session that will pause when it
# finds the owner gone
my $w = $node->background_psql('postgres', on_error_stop => 0);
$w->query_safe(q{SET almanac.fault_point = 'request_pause_before_give_up'});
$w->query_safe('BEGIN');
$w->query_safe(q{INSERT INTO t VALUES (1, 'first')});

# the owner exits (as after pg_terminate_backend): the commit finds none
my $owner = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'almanac store owner'});
like($owner, qr/^\d+$/, 'one store owner runs');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($owner)");
my $waited = 0;
usleep(10_000), $waited++ while kill(0, $owner) && $waited < 100 * $PostgreSQL::Test::Utils::timeout_default;
ok(!kill(0, $owner), 'the owner exited');

# the next owner pauses before each answer
$node->safe_psql('postgres', q{ALTER SYSTEM SET almanac.fault_point = 'owner_pause_before_answer'});
$node->reload;

my $log = -s $node->logfile;
$w->query_until(qr/committing/, "\\echo committing\nCOMMIT;\n");
ok($node->wait_for_log(qr/fault point "request_pause_before_give_up" reached/, $log),
	'the commit found the owner gone and pauses before giving its request up');

# another session starts a new owner, which takes the pending request up,
# applies it and pauses before answering
$node->safe_psql('postgres', 'SELECT count(*) FROM t');
ok($node->wait_for_log(qr/fault point "owner_pause_before_answer" reached/, $log),
	'a new owner took the request up and pauses before answering it');

# the same session's next transaction, in the same slot (psql sends it once
# the commit above has returned)
my ($out, $failed) = $w->query(q{BEGIN; INSERT INTO t VALUES (2, 'second'); COMMIT;});
my $first_failed = $w->{stderr} =~ /exited before answering/;
$w->{stderr} = '';
$w->quit;
$node->safe_psql('postgres', 'ALTER SYSTEM RESET almanac.fault_point');
$node->reload;

ok(!$first_failed,
	'the commit whose request a new owner took up waits for that answer instead of giving up');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE k = 1'), $first_failed ? '0' : '1',
	'the first commit is in the store exactly if it returned success');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE k = 2'), '1',
	'the second commit is in the store: it was not answered with the first one\'s answer');

# the owner answers every later request of the slot with its own answer
$node->safe_psql('postgres', q{INSERT INTO t VALUES (3, 'third')});
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '4', 'later commits too');

$node->stop;
done_testing();
