# Helpers shared by the TAP tests in test/t (run-tests.sh puts test/ on
# prove's include path).
package AlmanacTest;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run;
use Time::HiRes;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT_OK = qw(almanac_node attempt backend_memory owner_fault run_pgbench pgbench_stat start_after_crash);

# A started cluster with almanac preloaded and created in database postgres.
# Extra postgresql.conf lines may be passed (later lines win).  The test
# framework's clusters have wal_level = minimal; these get PostgreSQL's
# default, replica, with room for the store owner's replication slot, so
# that commits go the usual way (docs/write-path.md: PostgreSQL's WAL as the
# one log).
sub almanac_node
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'almanac'\nwal_level = replica\nmax_replication_slots = 4\n"
		  . ($conf // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION almanac');
	return $node;
}

# A statement's output, or "ERROR sqlstate" when it fails (psql's verbose
# error line), in database $db (default postgres) of $node.
sub attempt
{
	my ($node, $sql, $db) = @_;
	my ($out, $err) = ('', '');
	$node->psql($db // 'postgres', "\\set VERBOSITY verbose\n$sql", stdout => \$out, stderr => \$err);
	return "ERROR $1" if $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	die "no result and no error for: $sql\n$err" if $err ne '' && $out eq '';
	return $out;
}

# Memory of a process, in kB, from /proc/<pid>/smaps_rollup (falling back to
# /proc/<pid>/status): private_dirty is what the process alone has written
# (its heap, RocksDB memtables and caches), rss everything mapped in,
# shared buffers included.  The test runs as the server's own account, so it
# may read them.
sub backend_memory
{
	my ($pid) = @_;
	my %m;

	if (open(my $fh, '<', "/proc/$pid/smaps_rollup"))
	{
		while (<$fh>)
		{
			$m{rss} = $1 if /^Rss:\s+(\d+) kB/;
			$m{private_dirty} = $1 if /^Private_Dirty:\s+(\d+) kB/;
			$m{anonymous} = $1 if /^Anonymous:\s+(\d+) kB/;
		}
		close $fh;
	}
	else
	{
		open(my $st, '<', "/proc/$pid/status") or die "cannot read memory of process $pid: $!";
		while (<$st>)
		{
			$m{rss} = $1 if /^VmRSS:\s+(\d+) kB/;
			$m{private_dirty} = $1 if /^RssAnon:\s+(\d+) kB/;
		}
		close $st;
		$m{anonymous} = $m{private_dirty};
	}
	die "no memory figures for process $pid" unless defined $m{rss} && defined $m{private_dirty};
	return \%m;
}

# Run pgbench against the node with the given scripts (name => text, the name
# may carry pgbench's @weight suffix) and arguments.  Returns (exit code,
# stdout, stderr); the caller checks them, so that a failure shows the output.
sub run_pgbench
{
	my ($node, $scripts, @args) = @_;
	my @files;

	foreach my $name (sort keys %$scripts)
	{
		my ($base, $weight) = split /@/, $name;
		my $file = $node->basedir . "/$base.sql";
		open(my $fh, '>', $file) or die "cannot write $file: $!";
		print $fh $scripts->{$name};
		close $fh;
		push @files, '-f', defined $weight ? "$file\@$weight" : $file;
	}
	my ($out, $err) = ('', '');
	my @cmd = ('pgbench', '-h', $node->host, '-p', $node->port, @args, @files, 'postgres');
	note "running: @cmd";
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	my $ret = $? >> 8;
	my @errlines = split /\n/, $err;
	splice(@errlines, 0, @errlines - 20) if @errlines > 20;
	note "pgbench exit code $ret\nstdout:\n$out\nstderr (last lines):\n"
	  . join("\n", @errlines);
	return ($ret, $out, $err);
}

# A number from pgbench's report: the first capture of the pattern, or undef.
sub pgbench_stat
{
	my ($out, $re) = @_;
	return $out =~ $re ? $1 : undef;
}

# Start the node again after its postmaster was killed (kill9).  The
# postmaster's children exit when they notice it is gone; until then its
# shared memory is still in use and a new postmaster refuses to start, so
# try for up to 20 s.  Returns whether it started.
sub start_after_crash
{
	my ($node) = @_;

	for (my $i = 0; $i < 100; $i++)
	{
		Time::HiRes::usleep(200_000);
		# a failed start leaves the stale pid behind in the node object
		delete $node->{_pid};
		return 1 if $node->start(fail_ok => 1);
	}
	return 0;
}

# Arm fault point $point (src/fault.h) in every process of $node, the store
# owner included (it reads the configuration file), or disarm it ($point
# undef); waits a second for the owner to take the reload.
sub owner_fault
{
	my ($node, $point) = @_;
	$node->safe_psql('postgres',
		$point ? "ALTER SYSTEM SET almanac.fault_point = '$point'" : 'ALTER SYSTEM RESET almanac.fault_point');
	$node->reload;
	sleep(1);
}

1;
