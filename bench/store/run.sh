#!/usr/bin/env bash
# bench/store/run.sh: the almanac_rocksdb foreign table against a heap table
# with a btree primary key, on the same rows, in one scratch instance.
#
#   N=1000000 T=10 RUNS=3 T_SCAN=5 bench/store/run.sh
#
#   N       rows loaded into each table (chain 'eth', block_number 1..N)
#   T       seconds per pgbench point-lookup run
#   T_SCAN  seconds per pgbench run of the = ANY and range queries
#   RUNS    runs per configuration; the table shows the median tps
#   READER_CACHE  almanac.reader_block_cache_size of the instance (default 64MB: each
#           backend's block cache, as shared_buffers = 1GB is the heap's)
#   ROW_CACHE     almanac.reader_row_cache_size (default 64MB: each backend's
#           row cache, enough for the 200,000 rows of docs/benchmarks.md)
#
# Point lookups run heap and foreign runs in turn (heap first in odd rounds,
# foreign first in even ones), so a machine that slows down during the run
# slows both.  Each pgbench run opens new connections, whose caches start
# empty; the "warm connections" row instead runs 3T seconds and takes the
# median of the per-second rates of the last T.
#
# The instance's data directory is .build/bench-store/data (recreated each
# run), shared_buffers = 1GB, almanac preloaded; it is stopped on exit.
# Logs, pgbench output and the result table stay in .build/bench-store.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../../test/scripts/common.sh"
source "$HERE/../lib.sh"

N=${N:-1000000}
T=${T:-10}
T_SCAN=${T_SCAN:-5}
RUNS=${RUNS:-3}
READER_CACHE=${READER_CACHE:-64MB}
ROW_CACHE=${ROW_CACHE:-64MB}
CMDLINE="N=$N T=$T T_SCAN=$T_SCAN RUNS=$RUNS READER_CACHE=$READER_CACHE ROW_CACHE=$ROW_CACHE bench/store/run.sh"

started=$(date +%s)
bench_start bench-store 54339 "almanac.reader_block_cache_size = '$READER_CACHE'
almanac.reader_row_cache_size = '$ROW_CACHE'"
PGBENCH=("$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n -D "N=$N")

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }

echo "# $CMDLINE"
echo "instance on 127.0.0.1:$PORT, data $DATA"
"${PSQL[@]}" -f "$HERE/setup.sql"

# --- bulk load: the same file into both tables
ROWS=$OUT/rows.tsv
"${PSQL[@]}" -c "COPY (SELECT 'eth', n, '0x' || md5(n::text) || md5((n + 1)::text), (n * 7919) % 30000000
                        FROM generate_series(1, $N::bigint) AS n) TO '$ROWS'"
"${PSQL[@]}" -c "COPY bench_heap FROM '$ROWS'" || fail "COPY into bench_heap"
"${PSQL[@]}" -c "COPY bench_kv FROM '$ROWS'" 2>"$OUT/copy_kv.err" || fail "COPY into bench_kv: $(cat "$OUT/copy_kv.err")"

# --- bulk load rate: RUNS rounds of the same file into new tables, each COPY
# in a new session: a heap table with its primary key, and a foreign table
# (SST files ingested by the owner, the default); then RUNS rounds into a
# foreign table loaded row by row (almanac.bulk_copy off).  The row-by-row
# loads come last: they leave their rows in the owner's write-ahead log,
# which every new session's reader replays when it opens (see "Memory per
# backend" in docs/operations.md), and the other loads would pay for that.  The
# foreign tables share a column family of their own; afterwards every
# column family is flushed (the log is no longer needed) and that one is
# dropped.
copy_rate() { # table [setting]
	local t0 t1
	t0=$(now)
	PGOPTIONS="${2:-}" "${PSQL[@]}" -c "COPY $1 FROM '$ROWS'" 2>"$OUT/copy_$1.err" ||
		fail "COPY into $1: $(cat "$OUT/copy_$1.err")"
	t1=$(now)
	rate "$N" "$t0" "$t1"
}
load_table() { # kind round
	if [ "$1" = heap ]; then
		"${PSQL[@]}" -c "CREATE TABLE load_heap_$2 (LIKE bench_heap INCLUDING ALL)"
	else
		"${PSQL[@]}" -c "CREATE FOREIGN TABLE load_$1_$2 (chain_id text, block_number bigint, block_hash text, gas_used bigint)
			SERVER almanac_store OPTIONS (column_family 'bench_load', key_prefix '$1$2', key_columns 'chain_id, block_number')"
	fi
}
all_heap="" all_kv="" all_rows=""
for r in $(seq "$RUNS"); do
	load_table heap "$r"
	load_table kv "$r"
	all_heap="$all_heap $(copy_rate "load_heap_$r")"
	all_kv="$all_kv $(copy_rate "load_kv_$r")"
	echo "load round $r (rows/s): heap${all_heap##* } foreign${all_kv##* }"
done
for r in $(seq "$RUNS"); do
	load_table rows "$r"
	all_rows="$all_rows $(copy_rate "load_rows_$r" "-c almanac.bulk_copy=off")"
	echo "load round $r (rows/s): foreign row by row${all_rows##* }"
done
{
	echo "load.heap:$all_heap"
	echo "load.kv:$all_kv"
	echo "load.kv_rows:$all_rows"
} >>"$OUT/runs.txt"
load_heap=$(echo "$all_heap" | median)
load_kv=$(echo "$all_kv" | median)
load_rows=$(echo "$all_rows" | median)
for r in $(seq "$RUNS"); do
	"${PSQL[@]}" -c "DROP TABLE load_heap_$r" -c "DROP FOREIGN TABLE load_kv_$r, load_rows_$r"
done
flush_store ||
	fail "flushing the column families"
"${PSQL[@]}" -c "SELECT almanac.drop_column_family('bench_load')" >/dev/null || fail "dropping column family bench_load"
echo "load medians (rows/s): heap $load_heap, foreign $load_kv, foreign row by row $load_rows"
"${PSQL[@]}" -c "VACUUM ANALYZE bench_heap" -c "CHECKPOINT"
cnt=$("${PSQL[@]}" -Atc "SELECT count(*) FROM bench_kv WHERE chain_id = 'eth'") || fail "count of bench_kv"
[ "$cnt" = "$N" ] || fail "bench_kv has $cnt rows, expected $N"
mid=$((N / 2))
a=$("${PSQL[@]}" -Atc "SELECT block_hash FROM bench_heap WHERE chain_id = 'eth' AND block_number = $mid")
b=$("${PSQL[@]}" -Atc "SELECT block_hash FROM bench_kv WHERE chain_id = 'eth' AND block_number = $mid")
[ -n "$a" ] && [ "$a" = "$b" ] || fail "point read differs: heap '$a', foreign '$b'"

# encoded value size of the foreign table's rows (format byte + heap tuple of non-key columns)
vsize=$("${PSQL[@]}" -Atc "SELECT round(avg(length(almanac._encode_value(row(NULL::text, NULL::bigint, block_hash, gas_used)::bench_kv))))
                            FROM bench_heap WHERE block_number <= 1000" 2>/dev/null) || vsize=100
echo "encoded value size: $vsize bytes"

# --- plans
{
	for t in heap kv; do
		echo "== bench_$t"
		"${PSQL[@]}" -c "EXPLAIN (COSTS OFF) SELECT block_hash FROM bench_$t WHERE chain_id = 'eth' AND block_number = 42"
		"${PSQL[@]}" -c "EXPLAIN (COSTS OFF) SELECT count(block_hash) FROM bench_$t WHERE chain_id = 'eth' AND block_number = ANY (ARRAY(SELECT (7 + i * 9973) % $N + 1 FROM generate_series(0, 99) AS i))"
		"${PSQL[@]}" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(block_hash) FROM bench_$t WHERE chain_id = 'eth' AND block_number BETWEEN 5000 AND 14999"
	done
} >"$OUT/explain.txt" 2>&1 || fail "EXPLAIN: $(tail -n 5 "$OUT/explain.txt")"

# --- pgbench
one_run() { # log script mode clients seconds [warm]: prints the run's tps
	local log=$1 script=$2 mode=$3 clients=$4 secs=$5 warm=${6:-}
	if [ -n "$warm" ]; then
		"${PGBENCH[@]}" -M "$mode" -c "$clients" -j "$clients" -T "$((3 * secs))" -P 1 -f "$HERE/$script" postgres \
			>"$log" 2>&1 || fail "pgbench $log: $(tail -n 5 "$log")"
	else
		"${PGBENCH[@]}" -M "$mode" -c "$clients" -j "$clients" -T "$secs" -f "$HERE/$script" postgres \
			>"$log" 2>&1 || fail "pgbench $log: $(tail -n 5 "$log")"
	fi
	grep -q "failed transactions: 0 " "$log" || fail "pgbench $log had failed transactions: $(grep failed "$log")"
	if [ -n "$warm" ]; then
		sed -n 's/^progress: \([0-9.]*\) s, \([0-9.]*\) tps.*/\1 \2/p' "$log" |
			awk -v from="$((2 * secs))" '$1 > from { print $2 }' | tr '\n' ' ' | median
	else
		sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log"
	fi
}
# heap and foreign in turn, RUNS rounds; sets R[name.heap] and R[name.kv] to
# the medians, and R[name.ratio] to the median of the rounds' foreign/heap
# ratios (each round's pair ran back to back, so drift cancels within it)
bench_pair() { # name script-prefix mode clients seconds [warm]
	local name=$1 prefix=$2 mode=$3 clients=$4 secs=$5 warm=${6:-} r t order all_heap="" all_kv="" all_ratio="" tps h k
	for r in $(seq "$RUNS"); do
		if [ $((r % 2)) = 1 ]; then order="heap kv"; else order="kv heap"; fi
		for t in $order; do
			tps=$(one_run "$OUT/pgbench.$name.$t.$r.log" "${prefix}_$t.sql" "$mode" "$clients" "$secs" "$warm")
			if [ "$t" = heap ]; then h=$tps; else k=$tps; fi
		done
		all_heap="$all_heap $h" all_kv="$all_kv $k" all_ratio="$all_ratio $(ratio "$k" "$h")"
	done
	echo "$name.heap:$all_heap" >>"$OUT/runs.txt"
	echo "$name.kv:$all_kv" >>"$OUT/runs.txt"
	echo "$name.ratio:$all_ratio" >>"$OUT/runs.txt"
	R[$name.heap]=$(echo "$all_heap" | median)
	R[$name.kv]=$(echo "$all_kv" | median)
	R[$name.ratio]=$(echo "$all_ratio" | median2)
	echo "$name: heap ${R[$name.heap]}, foreign ${R[$name.kv]} tps, ratio ${R[$name.ratio]} (runs: heap$all_heap; foreign$all_kv; ratios$all_ratio)"
}

declare -A R
for t in heap kv; do
	# warm-up: the OS page cache, shared_buffers
	"${PGBENCH[@]}" -M prepared -c 2 -j 2 -T 2 -f "$HERE/point_$t.sql" postgres >"$OUT/pgbench.warmup.$t.log" 2>&1 ||
		fail "pgbench warm-up $t: $(tail -n 5 "$OUT/pgbench.warmup.$t.log")"
done
for mode in prepared simple; do
	for c in 1 2; do
		bench_pair "point.$mode.$c" point "$mode" "$c" "$T"
	done
done
bench_pair point.warm.2 point prepared 2 "$T" warm
for q in any range; do
	bench_pair "$q" "$q" prepared 1 "$T_SCAN"
done

# --- memory of one backend around its first foreign-table read
read -r mpid rss0 anon0 rss1 anon1 rss2 anon2 rss3 anon3 rowcache < <("${PSQL[@]}" -v key="$mid" -v N="$N" -f "$HERE/memory.sql") ||
	fail "memory probe"
echo "memory (kB): pid $mpid rss $rss0 -> heap read $rss1 -> first foreign read $rss2 -> +1000 reads $rss3; anon $anon0 $anon1 $anon2 $anon3; row cache $rowcache bytes"

"${PSQL[@]}" -c "SELECT pg_size_pretty(pg_total_relation_size('bench_heap')) AS heap_size" -At >"$OUT/heap_size.txt"
store_du=$(du -sh "$DATA/almanac/base" 2>/dev/null | cut -f1) || store_du=?

# --- RocksDB's own ceiling (db_bench, same key size and about the same value size)
DBB=$OUT/dbbench
mkdir -p "$DBB"
DBB_ARGS=(--num="$N" --key_size=18 --value_size="$vsize" --compression_type=lz4 --bloom_bits=10 --db="$DBB/db")
db_bench --benchmarks=fillseq,readrandom "${DBB_ARGS[@]}" --threads=1 >"$DBB/t1.log" 2>&1 || fail "db_bench t1: $(tail -n 5 "$DBB/t1.log")"
db_bench --benchmarks=readrandom --use_existing_db=1 "${DBB_ARGS[@]}" --threads=2 >"$DBB/t2.log" 2>&1 || fail "db_bench t2: $(tail -n 5 "$DBB/t2.log")"
dbops() { sed -n "s/^$1 *:.* \([0-9]*\) ops\/sec.*/\1/p" "$2" | head -n 1; }
dbb_fill=$(dbops fillseq "$DBB/t1.log")
dbb_r1=$(dbops readrandom "$DBB/t1.log")
dbb_r2=$(dbops readrandom "$DBB/t2.log")
rm -rf "$DBB/db"

# --- the table
{
	echo "Command: \`$CMDLINE\` ($(date -u +%Y-%m-%d), $(nproc) cores, PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}'), shared_buffers 1GB, almanac.reader_block_cache_size $READER_CACHE, almanac.reader_row_cache_size $ROW_CACHE)"
	echo
	echo "| measurement | heap + btree PK | almanac_rocksdb | foreign/heap |"
	echo "|---|---:|---:|---:|"
	echo "| bulk load, COPY FROM file, rows/s | $load_heap | $load_kv | $(ratio "$load_kv" "$load_heap") |"
	echo "| the same row by row (almanac.bulk_copy off), rows/s | $load_heap | $load_rows | $(ratio "$load_rows" "$load_heap") |"
	for mode in prepared simple; do
		for c in 1 2; do
			h=${R[point.$mode.$c.heap]} k=${R[point.$mode.$c.kv]}
			echo "| point lookup, -M $mode, $c client$([ "$c" = 1 ] || echo s), tps | $h | $k | ${R[point.$mode.$c.ratio]} |"
		done
	done
	h=${R[point.warm.2.heap]} k=${R[point.warm.2.kv]}
	echo "| point lookup, -M prepared, 2 clients, warm connections, tps | $h | $k | ${R[point.warm.2.ratio]} |"
	echo "| \`= ANY\` of 100 keys, prepared, 1 client, tps | ${R[any.heap]} | ${R[any.kv]} | ${R[any.ratio]} |"
	echo "| 10,000-row key range (BETWEEN), prepared, 1 client, tps | ${R[range.heap]} | ${R[range.kv]} | ${R[range.ratio]} |"
	echo "| backend RSS after first read, kB (VmRSS / RssAnon added) | +$((rss1 - rss0)) / +$((anon1 - anon0)) | +$((rss2 - rss1)) / +$((anon2 - anon1)) | |"
	echo "| backend RSS added by 1000 more foreign point reads, kB | | +$((rss3 - rss2)) / +$((anon3 - anon2)) | |"
	echo "| row cache after those 1000 reads, kB | | $((rowcache / 1024)) | |"
	echo "| size on disk | $(cat "$OUT/heap_size.txt") | $store_du (store dir) | |"
	echo
	echo "| db_bench (key 18 B, value $vsize B, lz4, bloom 10) | ops/s |"
	echo "|---|---:|"
	echo "| fillseq, 1 thread | $dbb_fill |"
	echo "| readrandom, 1 thread | $dbb_r1 |"
	echo "| readrandom, 2 threads | $dbb_r2 |"
	echo
	echo "Point lookups vs RocksDB's ceiling: foreign prepared 1 client / db_bench readrandom 1 thread = $(ratio "${R[point.prepared.1.kv]}" "$dbb_r1"); 2 clients / 2 threads = $(ratio "${R[point.prepared.2.kv]}" "$dbb_r2")."
	echo "Medians of $RUNS runs; for pgbench rows the last column is the median of the rounds' ratios (heap and foreign run back to back in each round). Every run in .build/bench-store/runs.txt, plans in .build/bench-store/explain.txt."
} >"$OUT/results.md"
echo
cat "$OUT/results.md"
echo
echo "== plans"
cat "$OUT/explain.txt"
echo "done in $(($(date +%s) - started)) s"
