# The set-up step (test/scripts/deps.sh) against simulated package states:
# stubs of dpkg-query, apt-get and id come first on PATH (test/deps-stubs), so
# nothing is really installed.  For each starting state, checks which
# packages it asks apt to install, what it prints, and its exit status.  Then
# the rest of the set-up both `make demo` and `make test` go through
# (test/scripts/common.sh): the account servers run as, with stubs of id,
# useradd and runuser, a missing pg_config, and the private server copy.
use strict;
use warnings;
use File::Temp qw(tempdir);
use Test::More;

my $root  = $ENV{ALMANAC_ROOT} or die "ALMANAC_ROOT is not set";
my $deps  = "$root/test/scripts/deps.sh";
my $stubs = "$root/test/deps-stubs";

my @all = qw(make gcc postgresql-15 postgresql-client-15
  postgresql-server-dev-15 librocksdb-dev rocksdb-tools libipc-run-perl
  postgresql-15-plproxy);
my @bench = qw(gnuplot-nox python3);
# by its full path, so that a test may leave every other tool off PATH
my ($bash) = grep { -x } map { "$_/bash" } split /:/, $ENV{PATH};
die "bash not found on PATH" unless $bash;
my %archive = map { $_ => '1.0' } @all, @bench;
$archive{$_} = '15.20-0+deb12u1'
  for qw(postgresql-15 postgresql-client-15 postgresql-server-dev-15);

sub write_file
{
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh;
}

sub read_file
{
	my ($path) = @_;
	open my $fh, '<', $path or return '';
	local $/;
	return <$fh> // "";
}

# run deps.sh with the given installed packages ({name => version}); returns
# exit status, stdout, stderr, the apt-get calls and the final state
sub run_deps
{
	my (%o) = @_;
	my $dir = tempdir(CLEANUP => 1);
	write_file("$dir/state",
		join('', map { "$_ $o{installed}{$_}\n" }
			  grep { defined $o{installed}{$_} } sort keys %{ $o{installed} }));
	my %arch = (%archive, %{ $o{archive} // {} });
	write_file("$dir/archive",
		join('', map { "$_ $arch{$_}\n" } grep { defined $arch{$_} } sort keys %arch));
	write_file("$dir/fail-$_", '') for @{ $o{fail} // [] };
	my $cc_dir = "$dir/createcluster.d";
	if (defined $o{cc_existing})
	{
		mkdir $cc_dir or die "$cc_dir: $!";
		write_file("$cc_dir/almanac.conf", $o{cc_existing});
	}
	# a path under a regular file: no one can create it, root included
	$cc_dir = "$dir/state/createcluster.d" if $o{cc_unwritable};
	local $ENV{PATH} = $o{path} // "$stubs:$ENV{PATH}";
	local $ENV{STUB_DIR} = $dir;
	local $ENV{STUB_UID} = $o{uid} // 0;
	local $ENV{TMPDIR} = $dir;
	local $ENV{ALMANAC_CREATECLUSTER_DIR} = $cc_dir;
	my $args = join ' ', @{ $o{args} // [] };
	my $rc = system("$bash '$deps' $args >'$dir/out' 2>'$dir/err'") >> 8;
	my %state = map { split / / } split /\n/, read_file("$dir/state");
	return {
		rc    => $rc,
		out   => read_file("$dir/out"),
		err   => read_file("$dir/err"),
		apt   => [ split /\n/, read_file("$dir/apt.log") ],
		state => \%state,
		cc    => read_file("$dir/createcluster.d/almanac.conf"),
	};
}

sub installs
{
	my ($r) = @_;
	my ($line) = grep { /^install / } @{ $r->{apt} };
	return '' unless defined $line;
	my (undef, @args) = split / /, $line;
	return join ' ', grep { !/^-/ } @args;
}

my %full = map { $_ => $archive{$_} } @all;
my $pg   = '15.20-0+deb12u1';
my $old  = '15.18-0+deb12u1';

# nothing installed
my $r = run_deps(installed => {});
is($r->{rc}, 0, 'nothing installed: succeeds');
is_deeply([ map { (split / /)[0] } @{ $r->{apt} } ],
	[ 'update', 'install' ], 'nothing installed: apt-get update, then one install');
is(installs($r), join(' ', @all), 'nothing installed: installs every package');
like($r->{out}, qr/deps: installed; postgresql-15 and postgresql-server-dev-15 are \Q$pg\E/,
	'nothing installed: reports the installed release');
is($r->{cc}, "create_main_cluster = false\n",
	'nothing installed: postgresql-common told not to create a main cluster');
is($r->{err}, '', 'nothing installed: nothing on stderr');

# the server without its headers (a fresh Debian 12 image)
$r = run_deps(installed =>
	  { make => '1.0', gcc => '1.0', 'postgresql-15' => $old, 'postgresql-client-15' => $old });
is($r->{rc}, 0, 'server without headers: succeeds');
is(installs($r),
	'postgresql-15 postgresql-server-dev-15 librocksdb-dev rocksdb-tools libipc-run-perl postgresql-15-plproxy',
	'server without headers: installs the headers and the server with them');
like($r->{out}, qr/postgresql-15 \Q$old\E is installed without postgresql-server-dev-15/,
	'server without headers: says why the server is reinstalled');
is($r->{state}{'postgresql-15'}, $r->{state}{'postgresql-server-dev-15'},
	'server without headers: ends with server and headers at one release');

# server and headers at different minor releases
$r = run_deps(installed => { %full, 'postgresql-15' => $old });
is($r->{rc}, 0, 'different minor releases: succeeds');
is(installs($r), 'postgresql-15 postgresql-server-dev-15',
	'different minor releases: installs the pair, nothing else');
like($r->{out}, qr/postgresql-15 is \Q$old\E but postgresql-server-dev-15 is \Q$pg\E/,
	'different minor releases: names both versions');
is($r->{state}{'postgresql-15'}, $pg, 'different minor releases: server upgraded');

# the headers without the server
$r = run_deps(installed => { %full, 'postgresql-15' => undef });
is($r->{rc}, 0, 'headers without server: succeeds');
is(installs($r), 'postgresql-15 postgresql-server-dev-15',
	'headers without server: installs the server with its headers');

# everything already there
$r = run_deps(installed => \%full);
is($r->{rc}, 0, 'everything installed: succeeds');
is_deeply($r->{apt}, [], 'everything installed: apt-get not called');
is($r->{out} . $r->{err}, '', 'everything installed: prints nothing');

# make bench: gnuplot and python3 besides, and only there
$r = run_deps(installed => \%full, args => ['bench']);
is($r->{rc}, 0, 'bench, everything else installed: succeeds');
is(installs($r), 'gnuplot-nox python3', 'bench, everything else installed: installs gnuplot-nox and python3 alone');
$r = run_deps(installed => { %full, python3 => '1.0' }, args => ['bench']);
is(installs($r), 'gnuplot-nox', 'bench, python3 there: installs gnuplot-nox alone');
$r = run_deps(installed => {}, args => ['bench']);
is(installs($r), join(' ', @all, @bench), 'bench, nothing installed: installs every package, gnuplot-nox and python3');
$r = run_deps(installed => { %full, map { $_ => '1.0' } @bench }, args => ['bench']);
is_deeply($r->{apt}, [], 'bench, everything installed: apt-get not called');
$r = run_deps(installed => {}, args => ['bnech']);
is($r->{rc}, 2, 'unknown argument: fails');
is_deeply($r->{apt}, [], 'unknown argument: apt-get not called');
like($r->{err}, qr/deps: unknown argument 'bnech'\ndeps: usage: deps.sh \[bench\]/,
	'unknown argument: names it and gives the usage');

# not root, something missing
$r = run_deps(installed => { %full, 'librocksdb-dev' => undef }, uid => 1000);
is($r->{rc}, 1, 'not root: fails');
is_deeply($r->{apt}, [], 'not root: apt-get not called');
like($r->{err}, qr/missing Debian packages: librocksdb-dev\n/, 'not root: names what is missing');
like($r->{err}, qr/sudo apt-get update && sudo apt-get install -y --no-install-recommends librocksdb-dev/,
	'not root: gives the command that installs it');

# not root, nothing missing
$r = run_deps(installed => \%full, uid => 1000);
is($r->{rc}, 0, 'not root, everything installed: succeeds');

# apt-get update fails
$r = run_deps(installed => {}, fail => ['update']);
is($r->{rc}, 1, 'update fails: fails');
like($r->{err}, qr/stubbed failure of apt-get update/, 'update fails: shows apt\'s own words');
like($r->{err}, qr/deps: apt-get update failed.*\ndeps: check that this machine reaches Debian's archive/s,
	'update fails: says what failed and what to do');
is(scalar(grep { /^install / } @{ $r->{apt} }), 0, 'update fails: install not tried');

# apt-get install fails: a package the archive lacks
$r = run_deps(installed => {}, archive => { 'rocksdb-tools' => undef });
is($r->{rc}, 1, 'package not in archive: fails');
like($r->{err}, qr/Unable to locate package rocksdb-tools/, 'package not in archive: shows apt\'s own words');
like($r->{err}, qr/deps: apt-get install .* failed .*\ndeps: if a package was not found/s,
	'package not in archive: says what failed and what to do');

# apt-get succeeds but cannot make the pair match (it does not downgrade)
$r = run_deps(installed => { %full, 'postgresql-server-dev-15' => '15.21-0+deb12u1' });
is($r->{rc}, 1, 'unmatched after install: fails');
like($r->{err}, qr/postgresql-15 is \Q$pg\E but postgresql-server-dev-15 is 15\.21-0\+deb12u1/,
	'unmatched after install: names both versions');
like($r->{err}, qr/deps: apt-get finished but these are still not installed: postgresql-15 postgresql-server-dev-15/,
	'unmatched after install: says what is still wrong');

# not Debian: no dpkg-query or apt-get on PATH
$r = run_deps(installed => {}, path => tempdir(CLEANUP => 1));
is($r->{rc}, 1, 'no Debian package tools: fails');
like($r->{err}, qr/deps: dpkg-query not found: this set-up installs packages with Debian's tools\n/,
	'no Debian package tools: names the missing tool');
like($r->{err}, qr/deps: run it on Debian 12, or install by hand: \Q@all\E\n/,
	'no Debian package tools: lists the packages to install by hand');

# postgresql-common's configuration cannot be written: nothing is installed,
# as the server package would create and start a cluster on port 5432
$r = run_deps(installed => {}, cc_unwritable => 1);
is($r->{rc}, 1, 'createcluster.d not writable: fails');
is(scalar(grep { /^install / } @{ $r->{apt} }), 0, 'createcluster.d not writable: install not tried');
like($r->{err}, qr{deps: cannot write .*/createcluster\.d/almanac\.conf\ndeps: without it, installing postgresql-15 creates and starts a cluster on port 5432}s,
	'createcluster.d not writable: says what failed and why it matters');

# an almanac.conf of postgresql-common that is there already is kept
$r = run_deps(installed => {}, cc_existing => "create_main_cluster = false # by hand\n");
is($r->{rc}, 0, 'createcluster.d/almanac.conf there: succeeds');
is($r->{cc}, "create_main_cluster = false # by hand\n", 'createcluster.d/almanac.conf there: left as it was');

# apt-get install itself fails (dpkg interrupted, a full disk)
$r = run_deps(installed => {}, fail => ['install']);
is($r->{rc}, 1, 'install fails: fails');
like($r->{err}, qr/stubbed failure of apt-get install/, 'install fails: shows apt\'s own words');
like($r->{err}, qr/if dpkg was interrupted, run 'dpkg --configure -a'/, 'install fails: says what to do');

# The account the servers run as (test/scripts/common.sh, setup_run_user, for
# make demo and make test): as root it is created if missing, and a checkout
# others cannot reach (a clone under /root) gets the search bit on its
# ancestors; stubs of id, useradd and runuser stand in for the system's.
{
	my $dir = tempdir(CLEANUP => 1);
	chmod 0755, $dir;
	mkdir "$dir/$_" for qw(home home/clone home/clone/test home/clone/test/scripts
	  pgxs pgxs/src pgxs/src/makefiles);
	chmod 0700, "$dir/home";
	system('cp', "$root/test/scripts/common.sh", "$dir/home/clone/test/scripts/") == 0 or die;
	write_file("$dir/pg_config", qq{#!/bin/sh
case "\$1" in
--pgxs) echo '$dir/pgxs/src/makefiles/pgxs.mk' ;;
*) echo '$dir/pgxs' ;;
esac
});
	chmod 0755, "$dir/pg_config";
	my $setup = sub {
		my (%o) = @_;
		local $ENV{PATH} = "$stubs:$ENV{PATH}";
		local $ENV{STUB_DIR} = $dir;
		local $ENV{STUB_UID} = $o{uid} // 0;
		local $ENV{PG_CONFIG} = $o{pg_config} // "$dir/pg_config";
		# as demo.sh and run-tests.sh do: sourced as a command of its own,
		# so that its set -e holds (it would not on the left of an &&)
		my $rc = system($bash, '-c',
			"{ source '$dir/home/clone/test/scripts/common.sh'; setup_run_user; echo \"run as \$RUN_USER\"; }"
			  . " >'$dir/out' 2>'$dir/err'") >> 8;
		return { rc => $rc, out => read_file("$dir/out"), err => read_file("$dir/err") };
	};

	my $u = $setup->();
	is($u->{rc}, 0, 'run user, as root: succeeds');
	is(read_file("$dir/useradd.log"), "--system --no-create-home --shell /usr/sbin/nologin almanac\n",
		'run user, as root: creates the system account almanac, without a home or a shell');
	like($u->{out}, qr/^created account almanac to run PostgreSQL/m, 'run user, as root: says so');
	like($u->{out}, qr/^gave others search permission on \Q$dir\E\/home so that almanac can reach the checkout$/m,
		'run user, as root: names the directory it opened');
	is((stat "$dir/home")[2] & 07777, 0701, 'run user, as root: the search bit for others, nothing else');
	is((stat "$dir/home/clone")[2] & 07777, 0755, 'run user, as root: a reachable directory is left alone');
	like($u->{out}, qr/^run as almanac$/m, 'run user, as root: servers run as almanac');

	$u = $setup->();
	is($u->{out}, "run as almanac\n", 'run user, again: nothing created, nothing changed');
	is(read_file("$dir/useradd.log") =~ tr/\n//, 1, 'run user, again: useradd not called');

	$u = $setup->(uid => 1000);
	is($u->{out}, "run as stub\n", 'run user, not root: servers run as the caller');

	$u = $setup->(pg_config => "$dir/no-such-pg_config");
	is($u->{rc}, 1, 'pg_config missing: fails');
	like($u->{err}, qr/almanac: \Q$dir\E\/no-such-pg_config not found: install postgresql-server-dev-15 \(make deps does\),\nalmanac: or pass PG_CONFIG=/,
		'pg_config missing: says what to install or pass');
}

# The private copy of the server under .build/pg (test/scripts/common.sh) is
# refreshed when the server changes, e.g. upgraded by the install above: a
# stand-in pg_config describes a server in a temporary directory.
{
	my $dir = tempdir(CLEANUP => 1);
	mkdir "$dir/server";
	mkdir "$dir/server/$_" for qw(bin lib share);
	system("mkdir -p '$dir/server/lib/pgxs/src/makefiles'") == 0 or die;
	write_file("$dir/server/bin/postgres", "release 15.18\n");
	write_file("$dir/version", "PostgreSQL 15.18\n");
	write_file("$dir/pg_config", qq{#!/bin/sh
case "\$1" in
--version) cat '$dir/version' ;;
--bindir) echo '$dir/server/bin' ;;
--pkglibdir) echo '$dir/server/lib' ;;
--sharedir) echo '$dir/server/share' ;;
--pgxs) echo '$dir/server/lib/pgxs/src/makefiles/pgxs.mk' ;;
esac
});
	chmod 0755, "$dir/pg_config";
	my $tree = "$dir/tree";
	my $refresh = sub {
		local $ENV{PG_CONFIG} = "$dir/pg_config";
		local $ENV{ALMANAC_PGTREE} = $tree;
		return system('bash', '-c',
			"source '$root/test/scripts/common.sh' && forget_stale_tree && copy_server_files") >> 8;
	};
	is($refresh->(), 0, 'private tree: copied');
	is(read_file("$tree$dir/server/bin/postgres"), "release 15.18\n",
		'private tree: holds the server\'s files');
	write_file("$tree/left-by-an-earlier-run", '');
	is($refresh->(), 0, 'private tree: same server, kept');
	ok(-e "$tree/left-by-an-earlier-run", 'private tree: same server, not copied again');
	write_file("$dir/version", "PostgreSQL 15.20\n");
	write_file("$dir/server/bin/postgres", "release 15.20\n");
	is($refresh->(), 0, 'private tree: server upgraded, refreshed');
	ok(!-e "$tree/left-by-an-earlier-run", 'private tree: server upgraded, the old copy dropped');
	is(read_file("$tree$dir/server/bin/postgres"), "release 15.20\n",
		'private tree: server upgraded, holds the new server\'s files');
}

done_testing();
