#!/usr/bin/env bash
# bench/scan/run.sh: what issue 16's two scan goals cost, as backend CPU per
# query (steadier than tps on a shared machine), and the bounds that decide
# whether they can be met (docs/benchmarks.md, "Scans: where the goals stand").
#
#   bench/scan/run.sh                 # BENCH_SCALE=default N=200000 T=5 RUNS=3: about 6 minutes
#   BENCH_SCALE=small RUNS=1 T=2 bench/scan/run.sh    # a check, about 2 minutes
#
#   BENCH_SCALE  events as make bench generates them (bench/ops/gen.py)
#   N            rows of bench/store's key-range tables
#   T            seconds of each measured window
#   RUNS         rounds; each runs every query once, in an order that
#                alternates between rounds; the table shows medians
#
# Queries, one client, -M prepared:
#   events, routed / heap  the 100 newest events of the hottest contract's
#                Transfer in the last 200 blocks of a random chain (the
#                shape of bench/ops/events_simple.sql), almanac.router on / off
#   events, floor          SELECT * of a heap table holding those 100 rows:
#                what returning the rows costs without finding them; no
#                route can cost less, so heap / floor bounds routed / heap
#   range, foreign / heap  bench/store's 10,000-row key range
# Each query's cost is its backend's CPU time (/proc/PID/stat, user +
# system) over a T-second window divided by the transactions pgbench logged
# as ending in that window.  Then db_bench, the engine alone with the
# mirrors' key and value sizes (from their SST files): a reverse seek and
# 100 entries against a forward one, against the same bytes in entries of 7
# events (a hot contract's block); and 10,000 entries of the store table
# against the same bytes in entries of 64 rows.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../../test/scripts/common.sh"
source "$HERE/../lib.sh"

BENCH_SCALE=${BENCH_SCALE:-default}
N=${N:-200000}
T=${T:-5}
RUNS=${RUNS:-3}
CMDLINE="BENCH_SCALE=$BENCH_SCALE N=$N T=$T RUNS=$RUNS bench/scan/run.sh"
command -v db_bench >/dev/null && command -v sst_dump >/dev/null ||
	{ echo "db_bench or sst_dump not found: run test/scripts/deps.sh bench" >&2; exit 1; }

bench_start bench-scan 54381 "checkpoint_timeout = 30min
almanac.reader_block_cache_size = '64MB'
almanac.reader_row_cache_size = '64MB'"
echo "# $CMDLINE"
echo "instance on 127.0.0.1:$PORT, data $DATA, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# --- data: bench/store's tables, and make bench's events
"${PSQL[@]}" -f "$HERE/../store/setup.sql" >/dev/null
"${PSQL[@]}" -c "COPY (SELECT 'eth', n, '0x' || md5(n::text) || md5((n + 1)::text), (n * 7919) % 30000000
	FROM generate_series(1, $N::bigint) AS n) TO '$OUT/rows.tsv'" -c "COPY bench_heap FROM '$OUT/rows.tsv'" \
	-c "COPY bench_kv FROM '$OUT/rows.tsv'" >/dev/null || fail "loading bench_heap and bench_kv"
python3 "$HERE/../ops/gen.py" --scale "$BENCH_SCALE" --seed 1 "$OUT/gen" >/dev/null || fail "gen.py"
declare -A P
while IFS='=' read -r k v; do P[$k]=$v; done <"$OUT/gen/params.env"
"${PSQL[@]}" <<SQL >/dev/null || fail "staging"
CREATE UNLOGGED TABLE ops_blocks (chain_id text, n bigint, j jsonb);
\copy ops_blocks FROM '$OUT/gen/blocks.tsv'
CREATE INDEX ON ops_blocks (chain_id, n);
SQL
"${PSQL[@]}" -f "$HERE/../ops/load.sql" >/dev/null || fail "load.sql"
for c in $(seq "${P[chains]}"); do
	"${PSQL[@]}" -Atc "CALL ops_ingest('chain$c', 100, NULL, NULL, NULL)" >/dev/null || fail "ingest chain$c"
done
HOT="'0x' || repeat('2000000000', 4)"
TRANSFER="'0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef'"
"${PSQL[@]}" -c "DROP TABLE ops_blocks" \
	-c "CREATE TABLE scan_floor AS SELECT * FROM almanac.events WHERE chain_id = 'chain1'
		AND contract_address = $HOT AND event_type = $TRANSFER ORDER BY block_number DESC, log_index DESC LIMIT 100" \
	-c "VACUUM ANALYZE" -c CHECKPOINT >/dev/null || fail "scan_floor"
flush_store || fail "flushing the column families"

cat >"$OUT/events.sql" <<SQL
\set c random(1, ${P[chains]})
\set hi :c * 10000000 + ${P[blocks]} - 1
\set lo :hi - 200
SELECT * FROM almanac.events WHERE chain_id = 'chain' || :c AND contract_address = $HOT
   AND event_type = $TRANSFER AND block_number BETWEEN :lo AND :hi
 ORDER BY block_number DESC, log_index DESC LIMIT 100;
SQL
echo "SELECT * FROM scan_floor;" >"$OUT/floor.sql"
sample=$(sed -e '/^\\set/d' -e 's/:c/1/g' -e "s/:hi/$((10000000 + P[blocks] - 1))/" \
	-e "s/:lo/$((10000000 + P[blocks] - 201))/" -e 's/;$//' "$OUT/events.sql")
rows=$("${PSQL[@]}" -Atc "SELECT count(*) FROM ($sample) s")
[ "$rows" = 100 ] || fail "the events query returns $rows rows on chain1, not 100: BENCH_SCALE too small"
"${PSQL[@]}" -c "EXPLAIN (COSTS OFF) $sample" | grep -q "Almanac Lookup" || fail "the events query is not routed"

# --- backend CPU per query
PGB=("$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n -M prepared -c 1 -j 1 -D "N=$N")
cpu_per_query() { # script router(on|off): us of backend CPU per transaction
	local opts="" log=$OUT/runs/$RANDOM pid t0 t1 c0 c1 n bg
	[ "$2" = off ] && opts="-c almanac.router=off"
	mkdir -p "$log"
	PGOPTIONS="$opts" "${PGB[@]}" -T $((T + 3)) -l --log-prefix="$log/lat" -f "$1" postgres >"$log/out" 2>&1 &
	bg=$!
	sleep 1.5
	pid=$("${PSQL[@]}" -Atc "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' AND backend_type = 'client backend' LIMIT 1")
	[ -n "$pid" ] || fail "no pgbench backend: $(cat "$log/out")"
	t0=$(date +%s.%N) c0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	sleep "$T"
	t1=$(date +%s.%N) c1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	wait "$bg" || fail "pgbench $1: $(tail -n 3 "$log/out")"
	n=$(cat "$log"/lat* | awk -v a="$t0" -v b="$t1" '{ t = $5 + $6 / 1e6; if (t >= a && t <= b) n++ } END { print n + 0 }')
	awk -v c=$((c1 - c0)) -v h="$(getconf CLK_TCK)" -v n="$n" 'BEGIN { if (n > 0) printf "%.1f\n", c / h * 1e6 / n; else print "-" }'
}
QUERIES="ev_heap ev_routed ev_floor range_heap range_kv"
declare -A SCRIPT=([ev_heap]="$OUT/events.sql off" [ev_routed]="$OUT/events.sql on" [ev_floor]="$OUT/floor.sql off"
	[range_heap]="$HERE/../store/range_heap.sql off" [range_kv]="$HERE/../store/range_kv.sql on")
for q in $QUERIES; do cpu_per_query ${SCRIPT[$q]} >/dev/null; done # warm-up, not counted
declare -A V
R_EV="" R_BOUND="" R_RANGE=""
for r in $(seq "$RUNS"); do
	order=$QUERIES
	[ $((r % 2)) = 0 ] && order=$(echo "$QUERIES" | tr ' ' '\n' | tac | tr '\n' ' ')
	line="round $r:"
	for q in $order; do
		v=$(cpu_per_query ${SCRIPT[$q]})
		V[$q]="${V[$q]:-} $v"
		line+=" $q $v"
	done
	echo "$line us"
	# the round's own ratios (both sides of a ratio ran in the same round)
	R_EV+=" $(ratio "$(echo "${V[ev_heap]}" | awk '{ print $NF }')" "$(echo "${V[ev_routed]}" | awk '{ print $NF }')")"
	R_BOUND+=" $(ratio "$(echo "${V[ev_heap]}" | awk '{ print $NF }')" "$(echo "${V[ev_floor]}" | awk '{ print $NF }')")"
	R_RANGE+=" $(ratio "$(echo "${V[range_heap]}" | awk '{ print $NF }')" "$(echo "${V[range_kv]}" | awk '{ print $NF }')")"
done
declare -A M
for q in $QUERIES; do M[$q]=$(echo "${V[$q]}" | median); done

# --- the engine alone: db_bench with the mirrors' key and value sizes
sizes() { # column family (a regular expression): "keys key_bytes value_bytes" from its SST files
	for f in $(find "$DATA/almanac" -name '*.sst'); do
		sst_dump --command=none --show_properties --file="$f" 2>/dev/null || true
	done | awk -v want="$1" '/^ *# entries:/ { n = $NF } /raw key size:/ { k = $NF } /raw value size:/ { v = $NF }
		/column family name:/ { if ($NF ~ want) { N += n; K += k; V += v } }
		END { if (N > 0) printf "%d %d %d\n", N, K / N - 8 + 0.5, V / N + 0.5 }'
}
engine() { # keys key_bytes value_bytes seek_nexts extra...: us per seek and its nexts (median of 3 runs)
	local n=$1 k=$2 v=$3 nexts=$4 dir=$OUT/dbbench
	shift 4
	rm -rf "$dir"
	db_bench --benchmarks=fillrandom --num="$n" --key_size="$k" --value_size="$v" --compression_type=none \
		--db="$dir" --threads=1 >/dev/null 2>&1 || fail "db_bench fill"
	for i in 1 2 3; do
		db_bench --benchmarks=seekrandom --use_existing_db=1 --num="$n" --key_size="$k" --value_size="$v" \
			--compression_type=none --mmap_read=1 --bloom_bits=10 --db="$dir" --threads=1 --duration="$T" \
			--seek_nexts="$nexts" "$@" 2>&1 | sed -n 's/^seekrandom *: *\([0-9.]*\) micros\/op.*/\1/p'
	done | tr '\n' ' ' | median
	rm -rf "$dir"
}
read -r en ek ev < <(sizes '^mirror[.]events$')
read -r sn sk sv < <(sizes '^(N/A|block)$')  # bench_kv's: files written by COPY name none
E_REV=$(engine "$en" "$ek" "$ev" 100 --reverse_iterator=1)
E_FWD=$(engine "$en" "$ek" "$ev" 100)
E_REV7=$(engine $((en / 7)) "$ek" $((ev * 7)) 15 --reverse_iterator=1)
E_FWD7=$(engine $((en / 7)) "$ek" $((ev * 7)) 15)
S_1=$(engine "$sn" "$sk" "$sv" 10000)
S_64=$(engine $((sn / 64)) "$sk" $((sv * 64)) 157)

{
	echo "# bench/scan: $CMDLINE ($(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
	echo
	echo "| query (1 client, -M prepared) | backend CPU per query, us (median of $RUNS) | rounds |"
	echo "|---|---:|---|"
	for q in $QUERIES; do echo "| $q | ${M[$q]} | ${V[$q]# } |"; done
	echo
	echo "Ratios: medians of the rounds' own ratios (lowest to highest), in tps terms (heap CPU / other CPU):"
	echo
	echo "- events, routed against the heap: $(echo "$R_EV" | median2)x ($(echo "$R_EV" | spread)); goals: above 1.0x, and 1.5x"
	echo "- events, the most any route can reach (heap / floor: finding the rows at no cost): $(echo "$R_BOUND" | median2)x ($(echo "$R_BOUND" | spread))"
	echo "- events above the floor, us: routed $(awk -v a="${M[ev_routed]}" -v b="${M[ev_floor]}" 'BEGIN { print a - b }'), heap $(awk -v a="${M[ev_heap]}" -v b="${M[ev_floor]}" 'BEGIN { print a - b }') (medians)"
	echo "- 10,000-row range, foreign against the heap: $(echo "$R_RANGE" | median2)x ($(echo "$R_RANGE" | spread)); goal 1.0x"
	echo
	echo "| engine alone (db_bench, 1 thread, uncompressed, mmap reads) | us per operation |"
	echo "|---|---:|"
	echo "| events: reverse seek + 100 entries ($en keys of $ek B, values $ev B) | $E_REV |"
	echo "| events: forward seek + 100 entries | $E_FWD |"
	echo "| events: the same bytes 7 events an entry, reverse seek + 15 entries | $E_REV7 |"
	echo "| events: the same, forward | $E_FWD7 |"
	echo "| range: seek + 10,000 entries ($sn keys of $sk B, values $sv B) | $S_1 |"
	echo "| range: the same bytes 64 rows an entry, seek + 157 entries | $S_64 |"
} | tee "$OUT/result.md"
