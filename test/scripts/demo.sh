#!/usr/bin/env bash
# make demo / make demo-stop: a local PostgreSQL instance whose data directory
# is .demo/data inside the checkout, with almanac preloaded, a small
# multi-chain sample and a handful of example queries.  Running it again
# reuses the running instance and reloads the sample.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEMO=$ALMANAC_ROOT/.demo
DATA=$DEMO/data

setup_run_user

running() {
	[ -f "$DATA/postmaster.pid" ] && run_as pg_ctl -D "$DATA" status >/dev/null 2>&1
}

case "${1:-start}" in
stop)
	if running; then
		run_as pg_ctl -D "$DATA" stop -m fast
	else
		echo "demo instance is not running"
	fi
	exit 0
	;;
start) ;;
*)
	echo "usage: demo.sh start|stop" >&2
	exit 2
	;;
esac

started=$(date +%s)
build_private_tree
make_user_dir "$DEMO"

if [ ! -f "$DATA/PG_VERSION" ]; then
	run_as initdb -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$DEMO/initdb.log"
	cat >>"$DATA/postgresql.conf" <<CONF

# almanac demo
shared_preload_libraries = 'almanac'
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
CONF
fi

if running; then
	PORT=$(cat "$DEMO/port")
	echo "demo instance already running on port $PORT"
else
	PORT=$(free_port 54329)
	echo "$PORT" >"$DEMO/port"
	run_as pg_ctl -D "$DATA" -l "$DEMO/server.log" -o "-p $PORT" -w start >/dev/null
	echo "started demo instance on 127.0.0.1:$PORT (data directory $DATA)"
fi

PSQL=("$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1)
if [ "$("${PSQL[@]}" -d postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'almanac'")" = 0 ]; then
	"${PSQL[@]}" -d postgres -c "CREATE DATABASE almanac"
fi

# quietly: the first run has no extension to drop, a later one cascades to the sample
"${PSQL[@]}" -d almanac -c "SET client_min_messages = warning" -c "DROP EXTENSION IF EXISTS almanac CASCADE" -c "CREATE EXTENSION almanac"
"${PSQL[@]}" -d almanac -f "$ALMANAC_ROOT/test/demo/sample.sql"
echo
echo "== example queries =="
"${PSQL[@]}" -d almanac -e -f "$ALMANAC_ROOT/test/demo/queries.sql"

cat <<MSG

demo ready in $(($(date +%s) - started)) s.
  connect:  $PGBIN/psql -h 127.0.0.1 -p $PORT -U postgres almanac
  stop:     make demo-stop
MSG
