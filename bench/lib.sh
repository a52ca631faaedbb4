# bench/lib.sh: what the benchmarks under bench/ share.  Source it after
# test/scripts/common.sh.
#
#   bench_start NAME PORT [CONF]  a scratch instance in .build/NAME (recreated;
#                  stopped on exit): almanac preloaded, shared_buffers = 1GB,
#                  almanac.shared_row_cache_size = 1GB,
#                  max_wal_size = 4GB, TCP on 127.0.0.1 from PORT up, plus the
#                  lines CONF.  Sets OUT, DATA, PORT and PSQL (psql as
#                  postgres, ON_ERROR_STOP).
#   fail MSG       prints MSG and the end of the server log, exits 1
#   flush_store [SERVER]  every column family of the store into SST files,
#                  RocksDB's "default" too, so that no write-ahead log is left
#                  for a new connection's reader to replay
#   median, median2  of the numbers on stdin (blank-separated; "-" entries,
#                  which ratio prints for no value, are left out): rounded to
#                  an integer, to 2 places; "-" when there are none
#   spread         "lowest to highest" of the same numbers, 2 places
#   ratio A B [P]  A / B with P decimal places (2), "-" when B is 0

bench_start() {
	local name=$1 conf=${3:-}
	OUT=$ALMANAC_ROOT/.build/$name
	DATA=$OUT/data
	setup_run_user
	build_private_tree
	if [ -f "$DATA/postmaster.pid" ]; then
		run_as pg_ctl -D "$DATA" stop -m immediate >/dev/null 2>&1 || true
	fi
	rm -rf "$OUT"
	make_user_dir "$OUT"
	run_as initdb -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$OUT/initdb.log"
	cat >>"$DATA/postgresql.conf" <<CONF

# .build/$name: bench/lib.sh
shared_preload_libraries = 'almanac'
shared_buffers = 1GB
# the mirrors' shared row cache gets what the heap's buffer pool gets
almanac.shared_row_cache_size = 1GB
max_wal_size = 4GB
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
$conf
CONF
	PORT=$(free_port "$2")
	trap 'run_as pg_ctl -D "$DATA" stop -m fast >/dev/null 2>&1 || true' EXIT
	run_as pg_ctl -D "$DATA" -l "$OUT/server.log" -o "-p $PORT" -w start >/dev/null
	PSQL=("$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -d postgres)
}

fail() {
	echo "FAILED: $*" >&2
	echo "--- last lines of $OUT/server.log" >&2
	tail -n 30 "$OUT/server.log" >&2
	exit 1
}

# almanac.column_families() leaves out "default", which the owner's
# catch-up markers (src/store/owner.c) write to as to every column family:
# unflushed, it keeps the whole write-ahead log alive
flush_store() {
	local server=${1:-almanac_store}
	"${PSQL[@]}" -c "SELECT almanac.flush(cf, '$server')
		FROM (SELECT column_family FROM almanac.column_families('$server') UNION ALL SELECT 'default') s(cf)" >/dev/null
}

_bench_values() { tr ' ' '\n' | { grep -v -e '^$' -e '^-$' || true; } | sort -g; }
_bench_median() { _bench_values | awk -v f="$1" '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) printf f "\n", v[(NR + 1) / 2]; else printf f "\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
median() { _bench_median "%.0f"; }
median2() { _bench_median "%.2f"; }
spread() { _bench_values | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR == 0) print "-"; else printf "%.2f to %.2f\n", lo, hi }'; }
ratio() { awk -v a="$1" -v b="$2" -v p="${3:-2}" 'BEGIN { if (b > 0) printf "%." p "f", a / b; else print "-" }'; }
