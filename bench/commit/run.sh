#!/usr/bin/env bash
# bench/commit/run.sh: small write transactions, heap against almanac, on the
# same rows in one scratch instance.
#
#   N=100000 T=8 RUNS=3 bench/commit/run.sh
#
#   N     rows in each table (chain 'eth', block_number 1..N)
#   T     seconds per pgbench run
#   RUNS  rounds; each round runs every pair below back to back, the order
#         alternating between rounds, and the table shows the median of the
#         rounds' ratios with their range
#   CLIENTS  client counts (default "1 2 8")
#
# Pairs, each a pgbench -M prepared run of one script (one transaction each):
#   one row:    UPDATE of one heap row       vs  UPDATE of one foreign row
#   two rows:   two heap rows                vs  one heap row + one foreign row
# and both pairs again at 8 clients with synchronous_commit = off.
# pgbench retries serialization failures (--max-tries=10); their count is in
# the logs under .build/bench-commit, and printed at the end with the store
# owner's checks of written keys (almanac.commit_stats: against its own
# last write in the shared row cache, or read from RocksDB).
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../../test/scripts/common.sh"
source "$HERE/../lib.sh"

N=${N:-100000}
T=${T:-8}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-1 2 8}
CMDLINE="N=$N T=$T RUNS=$RUNS CLIENTS='$CLIENTS' bench/commit/run.sh"

bench_start bench-commit 54349
PGBENCH=("$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n -D "N=$N" --max-tries=10)

echo "# $CMDLINE"
"${PSQL[@]}" -f "$HERE/setup.sql"
"${PSQL[@]}" -c "INSERT INTO commit_heap SELECT 'eth', n, 0 FROM generate_series(1, $N) AS n" || fail "load heap"
"${PSQL[@]}" -c "INSERT INTO commit_kv SELECT 'eth', n, 0 FROM generate_series(1, $N) AS n" || fail "load foreign"
flush_store 2>/dev/null || true
"${PSQL[@]}" -c "VACUUM ANALYZE commit_heap"

one_run() { # script clients options log: prints tps
	PGOPTIONS="$3" "${PGBENCH[@]}" -M prepared -c "$2" -j "$2" -T "$T" -f "$HERE/$1.sql" postgres >"$4" 2>&1 ||
		fail "pgbench $1 -c $2: $(tail -n 3 "$4")"
	sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$4" | cut -d. -f1
}

declare -A TPS RATIOS
# pair name base_script almanac_script clients options round
pair() {
	local name=$1 a=$2 b=$3 c=$4 opts=$5 r=$6 ta tb
	if [ $((r % 2)) -eq 1 ]; then
		ta=$(one_run "$a" "$c" "$opts" "$OUT/$name.$a.$r.log")
		tb=$(one_run "$b" "$c" "$opts" "$OUT/$name.$b.$r.log")
	else
		tb=$(one_run "$b" "$c" "$opts" "$OUT/$name.$b.$r.log")
		ta=$(one_run "$a" "$c" "$opts" "$OUT/$name.$a.$r.log")
	fi
	TPS[$name.a]="${TPS[$name.a]:-} $ta"
	TPS[$name.b]="${TPS[$name.b]:-} $tb"
	RATIOS[$name]="${RATIOS[$name]:-} $(ratio "$tb" "$ta")"
}

names=()
for r in $(seq 1 "$RUNS"); do
	for c in $CLIENTS; do
		pair "one.$c" heap1 kv1 "$c" "" "$r"
		pair "two.$c" heap2 mixed "$c" "" "$r"
	done
	pair "one.8.async" heap1 kv1 8 "-c synchronous_commit=off" "$r"
	pair "two.8.async" heap2 mixed 8 "-c synchronous_commit=off" "$r"
	echo "round $r done"
done

echo
echo "| transaction pair (-M prepared) | clients | heap tps | with almanac tps | ratio (median of rounds) | rounds' ratios |"
echo "|---|---:|---:|---:|---:|---|"
row() { # name label clients
	echo "| $2 | $3 | $(echo "${TPS[$1.a]}" | median) | $(echo "${TPS[$1.b]}" | median) | $(echo "${RATIOS[$1]}" | median2) | $(echo "${RATIOS[$1]}" | spread) |"
}
for c in $CLIENTS; do
	row "one.$c" "one heap row vs one foreign row" "$c"
done
for c in $CLIENTS; do
	row "two.$c" "two heap rows vs one heap + one foreign row" "$c"
done
row one.8.async "one row, synchronous_commit = off" 8
row two.8.async "two rows, synchronous_commit = off" 8
echo
echo "retried transactions (serialization failures): $(cat "$OUT"/*.log | sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')"
echo "owner's checks of written keys (almanac.commit_stats): $("${PSQL[@]}" -Atc "SELECT checked_in_cache || ' against its own last write in the shared row cache, ' || checked_in_store || ' read from RocksDB' FROM almanac.commit_stats()")"
