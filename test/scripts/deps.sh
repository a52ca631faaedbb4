#!/usr/bin/env bash
# Install the Debian packages that almanac builds, runs and tests with.
#
# As root: apt-get update once, then apt-get install whatever is missing.  The
# PostgreSQL server and its headers are always installed together, so that a
# machine image whose server is at an older minor release than the archive's
# headers ends up with a matching pair.  As a normal user: if anything is
# missing, print the one command that installs it and fail.
set -euo pipefail

PACKAGES=(
	make gcc
	postgresql-15 postgresql-client-15 postgresql-server-dev-15
	librocksdb-dev rocksdb-tools
	libipc-run-perl
)

installed_version() {
	dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null |
		awk '$1 == "installed" { print $2 }'
}

missing=()
for p in "${PACKAGES[@]}"; do
	[ -n "$(installed_version "$p")" ] || missing+=("$p")
done

# server and headers must be the same release
server=$(installed_version postgresql-15)
headers=$(installed_version postgresql-server-dev-15)
if [ -n "$server" ] && [ -n "$headers" ] && [ "$server" != "$headers" ]; then
	echo "deps: postgresql-15 is $server but postgresql-server-dev-15 is $headers; upgrading both"
	missing+=(postgresql-15 postgresql-server-dev-15)
fi

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: install them with: sudo apt-get update && sudo apt-get install -y ${PACKAGES[*]}" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# postgresql-common would otherwise create and start a 'main' cluster on 5432
mkdir -p /etc/postgresql-common/createcluster.d
if [ ! -e /etc/postgresql-common/createcluster.d/almanac.conf ]; then
	echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/almanac.conf
fi
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
echo "deps: installed"
