#!/usr/bin/env bash
# Install the Debian packages that almanac builds, runs and tests with.
#
#   deps.sh          what `make demo` and `make test` need
#   deps.sh bench    that and what `make bench` needs besides (gnuplot, python3)
#
# As root: apt-get update once, then apt-get install whatever is missing.  The
# PostgreSQL server and its headers are always installed together, so that a
# machine whose server is at another minor release than the archive's headers
# (or that has the server and not the headers) ends up with a matching pair.
# As a normal user: if anything is missing, print the one command that
# installs it and fail.
#
# Every way this can fail ends with a line on stderr that says what failed and
# what to do, before the non-zero exit.  test/t/000_deps.pl runs this script
# against stubbed dpkg-query / apt-get / id for each starting state.
#
# Deliberately no `set -e`: a query that finds nothing is an answer here, not
# an error (dpkg-query exits 1 for a package it has never seen), and every
# command whose failure matters is checked where it runs.
set -uo pipefail

PACKAGES=(
	make gcc
	postgresql-15 postgresql-client-15 postgresql-server-dev-15
	librocksdb-dev rocksdb-tools
	libipc-run-perl
	postgresql-15-plproxy
)
# bench/ops/run.sh generates its data with python3 (not in a minimal Debian)
# and draws its chart with gnuplot (without X: gnuplot-nox); db_bench and
# sst_dump, its engine ceiling, are in rocksdb-tools above
BENCH_PACKAGES=(gnuplot-nox python3)
case "${1:-}" in
	'') ;;
	bench) PACKAGES+=("${BENCH_PACKAGES[@]}") ;;
	*)
		echo "deps: unknown argument '$1'" >&2
		echo "deps: usage: deps.sh [bench]" >&2
		exit 2
		;;
esac
SERVER=postgresql-15
HEADERS=postgresql-server-dev-15
# postgresql-common reads this directory when a server package is installed
CREATECLUSTER_DIR=${ALMANAC_CREATECLUSTER_DIR:-/etc/postgresql-common/createcluster.d}

say() { echo "deps: $*"; }

# fail WHAT [WHAT-TO-DO...]: the reason and the remedy on stderr, then exit 1
fail() {
	local line
	for line in "$@"; do
		echo "deps: $line" >&2
	done
	exit 1
}

for tool in dpkg-query apt-get; do
	command -v "$tool" >/dev/null 2>&1 ||
		fail "$tool not found: this set-up installs packages with Debian's tools" \
			"run it on Debian 12, or install by hand: ${PACKAGES[*]}"
done

# the installed version of a package, or nothing (never fails)
installed_version() {
	dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null |
		awk '$1 == "installed" { print $2; exit }'
	return 0
}

# sets `missing` to the packages to install, and `why` to one line per reason
plan() {
	local p server headers
	missing=()
	why=()
	for p in "${PACKAGES[@]}"; do
		[ -n "$(installed_version "$p")" ] || missing+=("$p")
	done
	server=$(installed_version "$SERVER")
	headers=$(installed_version "$HEADERS")
	if [ -n "$server" ] && [ -z "$headers" ]; then
		# the archive's headers may be newer than the machine's server:
		# ask for both so that apt upgrades the server to match
		why+=("$SERVER $server is installed without $HEADERS: installing both, so that they match")
		missing+=("$SERVER")
	elif [ -z "$server" ] && [ -n "$headers" ]; then
		why+=("$HEADERS $headers is installed without $SERVER: installing both, so that they match")
		missing+=("$HEADERS")
	elif [ -n "$server" ] && [ "$server" != "$headers" ]; then
		why+=("$SERVER is $server but $HEADERS is $headers: upgrading both, so that they match")
		missing+=("$SERVER" "$HEADERS")
	fi
	# each package once, in PACKAGES order
	local -A want=()
	for p in "${missing[@]}"; do want[$p]=1; done
	missing=()
	for p in "${PACKAGES[@]}"; do
		[ -z "${want[$p]:-}" ] || missing+=("$p")
	done
}

plan
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	for line in "${why[@]}"; do echo "deps: $line" >&2; done
	fail "missing Debian packages: ${missing[*]}" \
		"install them as root, then run this again:" \
		"  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
fi

for line in "${why[@]}"; do say "$line"; done
say "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp "${TMPDIR:-/tmp}/almanac-deps.XXXXXX")
trap 'rm -f "$log"' EXIT

# apt-get's own output only when it fails: it names the package or mirror
run_apt() {
	if ! apt-get "$@" >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		return 1
	fi
}

run_apt update -q ||
	fail "apt-get update failed (its output is above)" \
		"check that this machine reaches Debian's archive (/etc/apt/sources.list) and that no other apt or dpkg is running, then run this again"

# postgresql-common would otherwise create and start a 'main' cluster on 5432
if ! { mkdir -p "$CREATECLUSTER_DIR" &&
	{ [ -e "$CREATECLUSTER_DIR/almanac.conf" ] ||
		echo "create_main_cluster = false" >"$CREATECLUSTER_DIR/almanac.conf"; }; }; then
	fail "cannot write $CREATECLUSTER_DIR/almanac.conf" \
		"without it, installing $SERVER creates and starts a cluster on port 5432; check that $CREATECLUSTER_DIR is writable"
fi

run_apt install -y -q --no-install-recommends "${missing[@]}" ||
	fail "apt-get install ${missing[*]} failed (its output is above)" \
		"if a package was not found, run 'apt-get update' and check /etc/apt/sources.list; if dpkg was interrupted, run 'dpkg --configure -a'; then run this again"

# what apt did, checked: everything present, server and headers one release
plan
if [ ${#missing[@]} -ne 0 ]; then
	for line in "${why[@]}"; do echo "deps: $line" >&2; done
	fail "apt-get finished but these are still not installed: ${missing[*]}" \
		"install them by hand (apt-get install ${missing[*]}) and read what apt says"
fi
say "installed; $SERVER and $HEADERS are $(installed_version "$SERVER")"
