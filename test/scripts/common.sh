# Shared by demo.sh and run-tests.sh: the private PostgreSQL tree, the account
# the server runs as, and a free port.  Source it; it sets:
#
#   ALMANAC_ROOT  the checkout
#   PGTREE        private copy of the PostgreSQL installation with almanac installed
#   PGBIN         its bin directory (first in PATH)
#   RUN_USER      the account servers run as (PostgreSQL refuses to run as root)
#   run_as        runs a command as RUN_USER with PATH set

set -euo pipefail

ALMANAC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
if ! command -v "$PG_CONFIG" >/dev/null 2>&1; then
	echo "almanac: $PG_CONFIG not found: install postgresql-server-dev-15 (make deps does)," >&2
	echo "almanac: or pass PG_CONFIG=/path/to/pg_config" >&2
	exit 1
fi
PGTREE=${ALMANAC_PGTREE:-$ALMANAC_ROOT/.build/pg}
PGBIN=$PGTREE$("$PG_CONFIG" --bindir)
PGXS_DIR=$(cd "$(dirname "$("$PG_CONFIG" --pgxs)")/../.." && pwd)

# Build almanac and install it into a private copy of the PostgreSQL
# installation inside the checkout.  PostgreSQL finds its share and lib
# directories relative to the postgres binary it runs, so a copied tree with
# almanac installed (DESTDIR) works without root and leaves the system's
# PostgreSQL untouched.
build_private_tree() {
	forget_stale_tree
	copy_server_files
	# every core: compiling is most of a first make demo (about 35 s of CPU)
	make -C "$ALMANAC_ROOT" -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG" all >/dev/null
	make -C "$ALMANAC_ROOT" -s PG_CONFIG="$PG_CONFIG" install DESTDIR="$PGTREE" >/dev/null
}

# the server the private tree is copied from: its version and its binary's time
server_stamp() {
	echo "$("$PG_CONFIG" --version) $(stat -c %Y "$("$PG_CONFIG" --bindir)/postgres" 2>/dev/null)"
}

# The copy is dropped whole when the server changed (deps.sh upgrades it to
# match its headers): a mix of two releases' files would fail in ways that
# name neither.  test/t/000_deps.pl checks it with a stand-in pg_config.
forget_stale_tree() {
	if [ "$(cat "$PGTREE/.server" 2>/dev/null)" != "$(server_stamp)" ]; then
		rm -rf "$PGTREE"
	fi
}

copy_server_files() {
	local d
	mkdir -p "$PGTREE"
	for d in "$("$PG_CONFIG" --bindir)" "$("$PG_CONFIG" --pkglibdir)" "$("$PG_CONFIG" --sharedir)"; do
		mkdir -p "$PGTREE$d"
		cp -a -u "$d/." "$PGTREE$d/"
	done
	server_stamp >"$PGTREE/.server"
}

# As root, servers run as an unprivileged account, created if missing.  It
# needs to reach the checkout: a clone under /root is not searchable by
# others, so every ancestor directory gets the search (x) bit for others,
# which lets the account open files it is told the path of, not list them.
setup_run_user() {
	if [ "$(id -u)" -ne 0 ]; then
		RUN_USER=$(id -un)
		return
	fi
	RUN_USER=${ALMANAC_RUN_USER:-almanac}
	if ! id -u "$RUN_USER" >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER"
		echo "created account $RUN_USER to run PostgreSQL (it refuses to run as root)"
	fi
	local d=$ALMANAC_ROOT
	while [ "$d" != / ]; do
		if ! runuser -u "$RUN_USER" -- test -x "$d"; then
			chmod o+x "$d"
			echo "gave others search permission on $d so that $RUN_USER can reach the checkout"
		fi
		d=$(dirname "$d")
	done
}

# run a command as RUN_USER, with the private tree first in PATH
run_as() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$RUN_USER" -- env PATH="$PGBIN:$PATH" HOME=/tmp "$@"
	else
		env PATH="$PGBIN:$PATH" "$@"
	fi
}

# a directory owned by RUN_USER
make_user_dir() {
	mkdir -p "$1"
	if [ "$(id -u)" -eq 0 ]; then
		chown -R "$RUN_USER" "$1"
	fi
}

# first free TCP port on 127.0.0.1 at or above $1
free_port() {
	local p=$1
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
		p=$((p + 1))
	done
	echo "$p"
}
