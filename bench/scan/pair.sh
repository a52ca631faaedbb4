#!/usr/bin/env bash
# bench/scan/pair.sh: two builds of almanac, paired, on bench/scan's
# 100-event query: backend CPU per query routed and on the heap, the two
# builds' instances up together and measured in alternation, so that the
# machine's load drifts alike on both (docs/benchmarks.md, "Forward keys").
#
#   bench/scan/pair.sh BEFORE AFTER        # two checkouts (worktrees)
#   T=4 ROUNDS=8 QUERY=events bench/scan/pair.sh BEFORE AFTER
#
# Each checkout must have run bench/scan/run.sh (its scratch instance stays
# in .build/bench-scan, stopped, with the data and the query scripts; this
# starts and stops it again).  QUERY: events (SELECT *, the benchmark's) or
# narrow (block_number, log_index and transaction_id only).  Prints each
# round's CPU per query (us) and the medians of the rounds' own ratios:
# each build's heap / routed, and AFTER's routed / BEFORE's.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../../test/scripts/common.sh"
source "$HERE/../lib.sh"

[ $# = 2 ] || { echo "usage: bench/scan/pair.sh BEFORE AFTER (two checkouts that ran bench/scan/run.sh)" >&2; exit 1; }
T=${T:-4}
ROUNDS=${ROUNDS:-8}
QUERY=${QUERY:-events}
case "$QUERY" in events | narrow) ;; *) echo "QUERY must be events or narrow" >&2; exit 1 ;; esac
setup_run_user
declare -A DIR PORT
port=54391
for b in before after; do
	d=$(cd "$([ $b = before ] && echo "$1" || echo "$2")" && pwd)/.build/bench-scan
	[ -f "$d/data/PG_VERSION" ] && [ -f "$d/events.sql" ] || { echo "$d: no bench/scan instance (run bench/scan/run.sh there)" >&2; exit 1; }
	DIR[$b]=$d
	if [ "$QUERY" = narrow ]; then
		sed 's/^SELECT \* FROM/SELECT block_number, log_index, transaction_id FROM/' "$d/events.sql" >"$d/narrow.sql"
		chown "$RUN_USER" "$d/narrow.sql" 2>/dev/null || true
	fi
	port=$(free_port $((port + 1)))
	PORT[$b]=$port
done
stop_all() { for b in before after; do run_as pg_ctl -D "${DIR[$b]}/data" stop -m fast >/dev/null 2>&1 || true; done; }
trap stop_all EXIT
for b in before after; do
	run_as pg_ctl -D "${DIR[$b]}/data" -l "${DIR[$b]}/pair.log" -o "-p ${PORT[$b]}" -w start >/dev/null ||
		{ echo "could not start ${DIR[$b]}/data" >&2; exit 1; }
done
bin() { echo "${DIR[$1]}/../pg$("$PG_CONFIG" --bindir)"; }
cpu_per_query() { # build router(on|off): us of backend CPU per transaction
	local b=$1 log bg pid t0 t1 c0 c1 n
	log=$(mktemp -d)
	chmod 777 "$log"
	PGOPTIONS="-c almanac.router=$2" "$(bin "$b")/pgbench" -h 127.0.0.1 -p "${PORT[$b]}" -U postgres -n -M prepared \
		-c 1 -j 1 -T $((T + 2)) -l --log-prefix="$log/lat" -f "${DIR[$b]}/$QUERY.sql" postgres >"$log/out" 2>&1 &
	bg=$!
	sleep 1
	pid=$("$(bin "$b")/psql" -X -Atq -h 127.0.0.1 -p "${PORT[$b]}" -U postgres -d postgres -c \
		"SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' AND backend_type = 'client backend' LIMIT 1")
	[ -n "$pid" ] || { echo "no pgbench backend: $(cat "$log/out")" >&2; exit 1; }
	t0=$(date +%s.%N) c0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	sleep "$T"
	t1=$(date +%s.%N) c1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	wait "$bg" || { echo "pgbench failed: $(tail -n 3 "$log/out")" >&2; exit 1; }
	n=$(cat "$log"/lat* | awk -v a="$t0" -v b="$t1" '{ t = $5 + $6 / 1e6; if (t >= a && t <= b) n++ } END { print n + 0 }')
	rm -rf "$log"
	awk -v c=$((c1 - c0)) -v h="$(getconf CLK_TCK)" -v n="$n" 'BEGIN { if (n > 0) printf "%.1f\n", c / h * 1e6 / n; else print "-" }'
}
echo "# T=$T ROUNDS=$ROUNDS QUERY=$QUERY bench/scan/pair.sh $1 $2 (load average $(cut -d' ' -f1-3 /proc/loadavg))"
for b in before after; do cpu_per_query $b on >/dev/null; cpu_per_query $b off >/dev/null; done # warm-up
R_BEFORE="" R_AFTER="" R_ROUTED=""
for r in $(seq "$ROUNDS"); do
	order="before after"
	[ $((r % 2)) = 0 ] && order="after before"
	declare -A V=()
	for b in $order; do V[$b.on]=$(cpu_per_query $b on) V[$b.off]=$(cpu_per_query $b off); done
	echo "round $r: before routed ${V[before.on]} heap ${V[before.off]}, after routed ${V[after.on]} heap ${V[after.off]} us"
	R_BEFORE+=" $(ratio "${V[before.off]}" "${V[before.on]}")"
	R_AFTER+=" $(ratio "${V[after.off]}" "${V[after.on]}")"
	R_ROUTED+=" $(ratio "${V[after.on]}" "${V[before.on]}")"
done
echo "heap / routed, before: $(echo "$R_BEFORE" | median2) ($(echo "$R_BEFORE" | spread))"
echo "heap / routed, after: $(echo "$R_AFTER" | median2) ($(echo "$R_AFTER" | spread))"
echo "routed, after / before: $(echo "$R_ROUTED" | median2) ($(echo "$R_ROUTED" | spread))"
