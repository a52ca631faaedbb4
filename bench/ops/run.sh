#!/usr/bin/env bash
# bench/ops/run.sh (make bench): the design's six operations, each on the
# RocksDB route (almanac.router = on: the router answers the shapes it takes
# from the mirrors) and on the PostgreSQL route (PGOPTIONS='-c
# almanac.router=off'), on the same data in the same run; the ingest rate
# with the mirrors on and off; db_bench's ceiling with the mirrors' key and
# value sizes.  Writes bench/results/operations.md and operations.svg.
#
#   BENCH_SCALE=small make bench      # about 3 minutes (the check)
#   make bench                        # BENCH_SCALE=default
#
#   BENCH_SCALE  small (200 blocks per chain), default (2000), large (20000),
#                or a number of blocks per chain; gen.py derives the rest
#   RUNS         paired rounds (small 2, else 3)
#   T            seconds of each fresh-connection run (small 1, else 2)
#   TW           seconds of each warm-connection run (small 2, else 5); its
#                tps is the median of its last T per-second rates
#   PROTOCOL     pgbench -M: prepared (default) or simple
#   SEED         gen.py's seed (1)
#   INGEST_PAIRS pairs of chain1 ingests with the mirrors off and on (2)
#   RESULTS      where the table and chart go (bench/results)
#
# After a warm-up run of each operation on both routes (not counted), each
# round runs every operation on both routes back to back (PostgreSQL
# first in odd rounds, RocksDB first in even ones), with fresh connections
# (pgbench's default: opened at the start of a T-second run, private caches
# empty) and warm ones (a TW-second run), 2 clients.  Latencies (median,
# p95, p99) are over every transaction of an operation and route, fresh and
# warm runs of every round pooled (pgbench -l).  The backend the router used
# is read from EXPLAIN of a sample (an Almanac Lookup node) and from
# almanac.router_stats around the routed runs.  Raw runs, logs and plans stay
# in .build/bench-ops.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../../test/scripts/common.sh"
source "$HERE/../lib.sh"

BENCH_SCALE=${BENCH_SCALE:-default}
case "$BENCH_SCALE" in
	small) d_runs=2 d_t=1 d_tw=2 ;;
	default | large) d_runs=3 d_t=2 d_tw=5 ;;
	*[!0-9]* | '')
		echo "BENCH_SCALE must be small, default, large or a number of blocks per chain, not '$BENCH_SCALE'" >&2
		exit 1
		;;
	*) d_runs=3 d_t=2 d_tw=5 ;;
esac
RUNS=${RUNS:-$d_runs}
T=${T:-$d_t}
TW=${TW:-$d_tw}
PROTOCOL=${PROTOCOL:-prepared}
SEED=${SEED:-1}
RESULTS=${RESULTS:-$ALMANAC_ROOT/bench/results}
INGEST_PAIRS=${INGEST_PAIRS:-2}
BATCH=100           # blocks per ingest_blocks call
CMDLINE="BENCH_SCALE=$BENCH_SCALE make bench"
[ "$RUNS/$T/$TW/$PROTOCOL/$SEED/$INGEST_PAIRS" = "$d_runs/$d_t/$d_tw/prepared/1/2" ] ||
	CMDLINE="BENCH_SCALE=$BENCH_SCALE RUNS=$RUNS T=$T TW=$TW PROTOCOL=$PROTOCOL SEED=$SEED INGEST_PAIRS=$INGEST_PAIRS make bench"
case "$PROTOCOL" in prepared | simple) ;; *) echo "PROTOCOL must be prepared or simple" >&2; exit 1 ;; esac
[ "$TW" -gt "$T" ] || { echo "TW must be longer than T (the warm rate is taken from the last T seconds of TW)" >&2; exit 1; }
for tool in gnuplot db_bench sst_dump; do
	command -v "$tool" >/dev/null || { echo "$tool not found: run 'make bench' (it installs it) or test/scripts/deps.sh bench" >&2; exit 1; }
done

# the operations: script, name, and the store the design gives them to
OPS="latest_block account_state cross_chain historical_state events_simple events_complex"
declare -A NAME=(
	[latest_block]="Latest Block Query" [account_state]="Account State Lookup"
	[cross_chain]="Cross-Chain Message Tracking" [historical_state]="Historical State Analysis"
	[events_simple]="Event Filtering (simple)" [events_complex]="Event Filtering (complex)")
declare -A DESIGN=(
	[latest_block]=RocksDB [account_state]=RocksDB [cross_chain]=PostgreSQL
	[historical_state]=PostgreSQL [events_simple]=RocksDB [events_complex]=PostgreSQL)

started=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
# autovacuum off: an automatic ANALYZE while the ingest pairs below hold a
# few blocks makes each ingest's foreign-key checks plan sequential scans
# of almanac.blocks, and whichever pair it lands in pays them
# (bench/ingest/run.sh measured it); the load is analysed explicitly
bench_start bench-ops 54371 "checkpoint_timeout = 30min
autovacuum = off"
PGOFF="-c almanac.router=off"
echo "# $CMDLINE"
echo "instance on 127.0.0.1:$PORT, data $DATA"
"${PSQL[@]}" -c "CREATE EXTENSION almanac"
"${PSQL[@]}" -Atc "SELECT 1 FROM pg_settings WHERE name = 'almanac.router'" | grep -q 1 ||
	fail "no setting almanac.router: this benchmark compares the router's two routes"

# --- the data
GEN=$OUT/gen
t0=$(date +%s.%N)
python3 "$HERE/gen.py" --scale "$BENCH_SCALE" --seed "$SEED" "$GEN" || fail "gen.py"
gen_secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
declare -A P
while IFS='=' read -r k v; do P[$k]=$v; done <"$GEN/params.env"
echo "generated ${P[chains]} chains x ${P[blocks]} blocks, ${P[transactions]} transactions, ${P[logs]} logs, ${P[states]} states, ${P[messages]} messages in $gen_secs s ($(du -sh "$GEN" | cut -f1))"

"${PSQL[@]}" <<SQL || fail "staging"
CREATE UNLOGGED TABLE ops_blocks (chain_id text, n bigint, j jsonb);
\copy ops_blocks FROM '$GEN/blocks.tsv'
CREATE UNLOGGED TABLE ops_states (id bigserial, chain_id text, account text, block_number bigint, state jsonb);
\copy ops_states (chain_id, account, block_number, state) FROM '$GEN/states.tsv'
CREATE UNLOGGED TABLE ops_messages (id bigserial, message_key text, source_chain text, source_tx text,
	destination_chain text, destination_tx text, status text, sent_at bigint, delivered_at bigint, payload jsonb);
\copy ops_messages (message_key, source_chain, source_tx, destination_chain, destination_tx, status, sent_at, delivered_at, payload) FROM '$GEN/messages.tsv'
CREATE INDEX ON ops_blocks (chain_id, n);
VACUUM ANALYZE ops_blocks, ops_states, ops_messages;
SQL
"${PSQL[@]}" -f "$HERE/load.sql" >/dev/null || fail "load.sql"

MIRRORED=$("${PSQL[@]}" -Atc "SELECT string_agg(relid::text, ' ' ORDER BY relid::text) FROM almanac.mirrors")
set_mirrors() { # on|off: every mirror the extension has
	local f t
	if [ "$1" = on ]; then f=enable_mirror; else f=disable_mirror; fi
	for t in $MIRRORED; do "${PSQL[@]}" -Atc "SELECT almanac.$f('$t')" >/dev/null; done
}
ingest() { # chain: prints "secs blocks events"
	"${PSQL[@]}" -Atc "CALL ops_ingest('$1', $BATCH, NULL, NULL, NULL)" | awk -F'|' '{ printf "%.2f %d %d\n", $1, $2, $3 }'
}

# ingest with the mirrors off and on: chain1 into empty tables, INGEST_PAIRS
# pairs, off first in odd pairs and on first in even ones; then every chain
# with them on (the load the operations read)
MIRRORS_NOW=on
mirrors_to() { [ "$1" = "$MIRRORS_NOW" ] || { set_mirrors "$1"; MIRRORS_NOW=$1; }; }
# Empty tables, and mirrors whose column families never held the keys: a
# TRUNCATE leaves each erased key's version list in the store until it is
# pruned, and re-ingesting the same blocks would make the owner merge every
# new version with it, mostly read from disk (bench/ingest/run.sh measured
# it as three quarters of the owner's time), which a follower writing new
# blocks never pays.  So the mirrors are disabled and given column families
# of their own, bench.<name>.<n>, which enabling them creates; the mirrors'
# own column families are reserved (almanac.drop_column_family refuses
# them), those of the reset before are dropped (bench/ingest/run.sh does the
# same).
FRESH=0
reset_tables() {
	"${PSQL[@]}" -c "TRUNCATE almanac.chains, almanac.blocks, almanac.transactions, almanac.events,
		almanac.account_states, almanac.cross_chain_messages, almanac.orphaned_blocks"
	mirrors_to off
	FRESH=$((FRESH + 1))
	"${PSQL[@]}" -Atc "UPDATE almanac.mirrors
			SET column_family = 'bench.' || regexp_replace(column_family, '^bench[.](.*)[.][0-9]+\$', '\\1') || '.$FRESH'" \
		-c "SELECT almanac.drop_column_family(c.column_family) FROM almanac.column_families() c
			 WHERE c.column_family LIKE 'bench.%'
			   AND NOT EXISTS (SELECT FROM almanac.mirrors m WHERE m.column_family = c.column_family)" >/dev/null
}
declare -A ING
for pr in $(seq "$INGEST_PAIRS"); do
	if [ $((pr % 2)) = 1 ]; then order="off on"; else order="on off"; fi
	for m in $order; do
		reset_tables
		mirrors_to "$m"
		"${PSQL[@]}" -c CHECKPOINT
		read -r s b e < <(ingest chain1)
		echo "ingest chain1, mirrors $m (pair $pr): $b blocks, $e events in $s s"
		ING[$m.secs]="${ING[$m.secs]:-} $s"
		ING[$pr.$m]=$s
		ING[blocks]=$b ING[events]=$e
	done
	ING[ratio]="${ING[ratio]:-} $(ratio "${ING[$pr.off]}" "${ING[$pr.on]}" 3)"
done
reset_tables
mirrors_to on
"${PSQL[@]}" -c CHECKPOINT
on_secs=0 on_blocks=0 on_events=0
for c in $(seq "${P[chains]}"); do
	read -r s b e < <(ingest "chain$c")
	echo "ingest chain$c, mirrors on: $b blocks, $e events in $s s"
	on_secs=$(awk -v a="$on_secs" -v b="$s" 'BEGIN { printf "%.2f", a + b }')
	on_blocks=$((on_blocks + b)) on_events=$((on_events + e))
done
[ "$on_blocks" = $((P[chains] * P[blocks])) ] && [ "$on_events" = "${P[logs]}" ] ||
	fail "ingested $on_blocks blocks and $on_events events, gen.py wrote $((P[chains] * P[blocks])) and ${P[logs]}"

t0=$(date +%s.%N)
"${PSQL[@]}" -c "CALL ops_load_states(5000)" -c "CALL ops_load_messages()" || fail "states and messages"
rest_secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
read -r n_states n_messages n_delivered < <("${PSQL[@]}" -Atc "SELECT (SELECT count(*) FROM almanac.account_states),
	(SELECT count(*) FROM almanac.cross_chain_messages), (SELECT count(*) FROM almanac.cross_chain_messages WHERE status = 'delivered')" | tr '|' ' ')
[ "$n_states" = "${P[states]}" ] && [ "$n_messages" = "${P[messages]}" ] && [ "$n_delivered" = "${P[delivered]}" ] ||
	fail "loaded $n_states states and $n_messages messages ($n_delivered delivered), gen.py wrote ${P[states]} and ${P[messages]} (${P[delivered]})"
"${PSQL[@]}" -c "DROP TABLE ops_blocks, ops_states, ops_messages" \
	-c "VACUUM ANALYZE almanac.chains, almanac.blocks, almanac.transactions, almanac.events, almanac.account_states, almanac.cross_chain_messages" \
	-c CHECKPOINT
flush_store || fail "flushing the column families"
echo "states and messages in $rest_secs s"
heap_size=$("${PSQL[@]}" -Atc "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'almanac' AND c.relkind = 'r'")
store_size=$(du -sh "$DATA/almanac" 2>/dev/null | cut -f1)

# --- the mirrors' key and value sizes, from their SST files' properties
declare -A KSZ VSZ NKEYS CF
while IFS='|' read -r rel cf; do CF[$rel]=$cf; done < <("${PSQL[@]}" -Atc "SELECT relid::regclass::text, column_family FROM almanac.mirrors")
# ("raw key size" counts RocksDB's internal keys: the user key and 8 bytes of
# sequence number and type; a file compacted away meanwhile is skipped)
for f in $(find "$DATA/almanac" -name '*.sst'); do
	sst_dump --command=none --show_properties --file="$f" 2>/dev/null || true
done | awk '/^ *# entries:/ { n = $NF } /raw key size:/ { k = $NF } /raw value size:/ { v = $NF }
		/column family name:/ { cf = $NF; N[cf] += n; K[cf] += k; V[cf] += v }
		END { for (c in N) if (N[c] > 0) printf "%s %d %d %d\n", c, N[c], K[c] / N[c] - 8 + 0.5, V[c] / N[c] + 0.5 }' |
	sort >"$OUT/sst_sizes.txt"
while read -r cf n k v; do NKEYS[$cf]=$n KSZ[$cf]=$k VSZ[$cf]=$v; done <"$OUT/sst_sizes.txt"
echo "mirror sizes (column family, keys, key bytes, value bytes):"
cat "$OUT/sst_sizes.txt"

# --- db_bench: the engine's ceiling with a mirror's key and value sizes,
# 2 threads as 2 clients, the store's format (uncompressed, bloom 10, mmap reads)
declare -A ENGINE ENGINE_WHAT
db_bench_cf() { # op cf benchmark extra-args...: sets ENGINE[op] (us per op per thread)
	local op=$1 cf=$2 bm=$3 dir=$OUT/dbbench/$1 n
	shift 3
	[ -n "$cf" ] && [ -n "${NKEYS[$cf]:-}" ] || return 0
	n=$((NKEYS[$cf] < 10000 ? 10000 : NKEYS[$cf]))
	mkdir -p "$dir"
	local args=(--num="$n" --key_size="${KSZ[$cf]}" --value_size="${VSZ[$cf]}" --compression_type=none
		--bloom_bits=10 --mmap_read=1 --db="$dir/db")
	db_bench --benchmarks=fillrandom "${args[@]}" --threads=1 >"$dir/fill.log" 2>&1 || fail "db_bench fill $cf: $(tail -n 3 "$dir/fill.log")"
	db_bench --benchmarks="$bm" --use_existing_db=1 "${args[@]}" --threads=2 --duration="$T" "$@" >"$dir/read.log" 2>&1 ||
		fail "db_bench $bm $cf: $(tail -n 3 "$dir/read.log")"
	ENGINE[$op]=$(sed -n "s/^$bm *: *\([0-9.]*\) micros\/op \([0-9]*\) ops\/sec.*/\1/p" "$dir/read.log" | head -n 1)
	ENGINE_OPS[$op]=$(sed -n "s/^$bm *: *\([0-9.]*\) micros\/op \([0-9]*\) ops\/sec.*/\2/p" "$dir/read.log" | head -n 1)
	ENGINE_WHAT[$op]="$bm $* ($cf: $n keys of ${KSZ[$cf]} B, values ${VSZ[$cf]} B)"
	rm -rf "$dir/db"
}
declare -A ENGINE_OPS
db_bench_cf latest_block "${CF[almanac.blocks]:-}" seekrandom --reverse_iterator=1 --seek_nexts=1
db_bench_cf account_state "${CF[almanac.account_states]:-}" readrandom
# the events mirror's key descends (newest first is a forward iteration, docs/router.md)
db_bench_cf events_simple "${CF[almanac.events]:-}" seekrandom --seek_nexts=100

# --- the same answers on both routes, and the plans
declare -A SAMPLE=([c]=1 [i]=1000000000 [j]=2000000000 [e]=1 [m]=0 [since]=$((P[t_end] - 3600))
	[hi]=$((10000000 + P[blocks] - 1)) [lo]=$((10000000 + P[blocks] * 3 / 4)))
for k in chains blocks accounts contracts messages stride t_end; do SAMPLE[$k]=${P[$k]}; done
sample_sql() { # script: its statement with the sample values
	local vars="" k
	for k in "${!SAMPLE[@]}"; do vars+="$k=${SAMPLE[$k]} "; done
	VARS="$vars" perl -ne 'BEGIN { %v = map { split /=/ } split / /, $ENV{VARS} }
		next if /^\s*(--|\\set)/; s/(?<![:\w]):(\w+)/exists $v{$1} ? $v{$1} : ":$1"/ge; print' "$HERE/$1.sql"
}
declare -A USED PLAN
: >"$OUT/explain.txt"
for op in $OPS; do
	q=$(sample_sql "$op")
	a=$(PGOPTIONS="$PGOFF" "${PSQL[@]}" -Atc "$q") || fail "$op on the PostgreSQL route"
	b=$("${PSQL[@]}" -Atc "$q") || fail "$op routed"
	[ -n "$a" ] || fail "$op returns no row for the sample (gen.py and $op.sql disagree): $q"
	[ "$a" = "$b" ] || fail "$op differs: PostgreSQL route '$a', RocksDB route '$b'"
	{
		echo "== $op, PostgreSQL route: $q"
		PGOPTIONS="$PGOFF" "${PSQL[@]}" -c "EXPLAIN (COSTS OFF) $q"
		echo "== $op, router on"
		"${PSQL[@]}" -c "EXPLAIN (COSTS OFF) $q" | tee "$OUT/plan.$op.txt"
	} >>"$OUT/explain.txt" 2>&1 || fail "EXPLAIN $op"
	if grep -q "Almanac Lookup" "$OUT/plan.$op.txt"; then PLAN[$op]=lookup; else PLAN[$op]=heap; fi
done
echo "same answers on both routes; plans in $OUT/explain.txt"

# --- pgbench
PGBENCH=("$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n -M "$PROTOCOL" -c 2 -j 2)
for k in chains blocks accounts contracts messages stride t_end; do PGBENCH+=(-D "$k=${P[$k]}"); done
stats() { # routed and fallback lookups so far, all tables
	"${PSQL[@]}" -Atc "SELECT coalesce(sum(routed), 0) || ' ' || coalesce(sum(fallback_router_off + fallback_disabled
		+ fallback_out_of_sync + fallback_altered + fallback_own_writes + fallback_serializable), 0) FROM almanac.router_stats"
}
one_run() { # op route conn round: prints tps
	local op=$1 route=$2 conn=$3 r=$4 secs opts="" log prog=()
	log=$OUT/runs/$r.$conn.$op.$route
	[ "$route" = postgresql ] && opts=$PGOFF
	if [ "$conn" = warm ]; then secs=$TW prog=(-P 1); else secs=$T; fi
	PGOPTIONS="$opts" "${PGBENCH[@]}" -T "$secs" "${prog[@]}" -l --log-prefix="$log.lat" -f "$HERE/$op.sql" postgres \
		>"$log.out" 2>&1 || fail "pgbench $log.out: $(tail -n 5 "$log.out")"
	grep -q "failed transactions: 0 " "$log.out" || fail "pgbench $log.out had failed transactions"
	if [ "$conn" = warm ]; then
		sed -n 's/^progress: [0-9.]* s, \([0-9.]*\) tps.*/\1/p' "$log.out" | tail -n "$T" | tr '\n' ' ' | median
	else
		sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log.out" | xargs printf '%.0f\n'
	fi
}
mkdir -p "$OUT/runs" "$OUT/warmup"
# a warm-up run of every operation on both routes, not counted: shared
# buffers and the page cache (the mirrors' SST files are read through mmap)
# hold what the first round reads, alike for both routes
for op in $OPS; do
	for route in postgresql rocksdb; do one_run "$op" "$route" fresh 0 >/dev/null; done
done
mv "$OUT"/runs/0.* "$OUT/warmup/"
declare -A V ROUTED FALLBACK TXS
for r in $(seq "$RUNS"); do
	for conn in fresh warm; do
		for op in $OPS; do
			if [ $((r % 2)) = 1 ]; then order="postgresql rocksdb"; else order="rocksdb postgresql"; fi
			line="round $r $conn $op:"
			for route in $order; do
				read -r r0 f0 < <(stats)
				tps=$(one_run "$op" "$route" "$conn" "$r")
				read -r r1 f1 < <(stats)
				n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$OUT/runs/$r.$conn.$op.$route.out")
				V[$op.$route.$conn]="${V[$op.$route.$conn]:-} $tps"
				ROUTED[$op.$route]=$((${ROUTED[$op.$route]:-0} + r1 - r0))
				FALLBACK[$op.$route]=$((${FALLBACK[$op.$route]:-0} + f1 - f0))
				TXS[$op.$route]=$((${TXS[$op.$route]:-0} + n))
				line+=" $route $tps tps (routed $((r1 - r0)), fallbacks $((f1 - f0)))"
				echo "$r $conn $op $route $tps $n $((r1 - r0)) $((f1 - f0))" >>"$OUT/runs.txt"
			done
			echo "$line"
		done
	done
done

# --- latencies: every transaction's, from pgbench's logs (3rd field, us)
declare -A LAT
for op in $OPS; do
	for route in rocksdb postgresql; do
		LAT[$op.$route]=$(cat "$OUT"/runs/*."$op.$route".lat.* | awk '{ print $3 }' | sort -n |
			awk '{ v[NR] = $1 } END { if (NR == 0) { print "- - -"; exit }
				i50 = int(NR * 0.50 + 0.5); i95 = int(NR * 0.95 + 0.5); i99 = int(NR * 0.99 + 0.5)
				if (i50 < 1) i50 = 1; if (i95 < 1) i95 = 1; if (i99 < 1) i99 = 1
				print v[i50], v[i95], v[i99] }')
	done
done

# --- the table
ms() { awk -v u="$1" 'BEGIN { if (u == "-") print "-"; else printf "%.3f", u / 1000 }'; }
machine="$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo) memory, Linux $(uname -r)"
settings=$("${PSQL[@]}" -Atc "SELECT string_agg(name || ' = ' || current_setting(name), ', ' ORDER BY name)
	FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', 'effective_cache_size', 'max_wal_size',
		'synchronous_commit', 'jit', 'random_page_cost', 'autovacuum') OR (name LIKE 'almanac.%' AND source <> 'default')")
almanac_defaults=$("${PSQL[@]}" -Atc "SELECT string_agg(name || ' = ' || current_setting(name), ', ' ORDER BY name)
	FROM pg_settings WHERE name LIKE 'almanac.%' AND (name LIKE '%cache%' OR name LIKE '%mmap%' OR name = 'almanac.router')")
elapsed=$(($(date +%s) - started))
mkdir -p "$RESULTS"
CHART=$OUT/chart.dat
: >"$CHART"
{
	echo "# The six operations on both routes"
	echo
	echo "\`$CMDLINE\` ($(date -u '+%Y-%m-%d %H:%M UTC'), $elapsed s in all; bench/ops/run.sh, described in docs/benchmarks.md)."
	echo
	echo "| Operation Type | RocksDB (ms) | PostgreSQL (ms) | Used Backend | RocksDB p50 / p95 / p99 (us) | PostgreSQL p50 / p95 / p99 (us) | RocksDB tps, fresh / warm | PostgreSQL tps, fresh / warm | engine (db_bench, us/op) | RocksDB route / engine | faster? |"
	echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"
	notes="" counted=""
	for op in $OPS; do
		read -r k50 k95 k99 <<<"${LAT[$op.rocksdb]}"
		read -r h50 h95 h99 <<<"${LAT[$op.postgresql]}"
		per=$(awk -v r="${ROUTED[$op.rocksdb]}" -v n="${TXS[$op.rocksdb]}" 'BEGIN { if (n > 0) printf "%.2f", r / n; else print 0 }')
		if [ "${PLAN[$op]}" = lookup ] && [ "${ROUTED[$op.rocksdb]}" -gt 0 ]; then
			used=RocksDB
			rcol=$(ms "$k50")
			if awk -v a="$k50" -v b="$h50" 'BEGIN { exit !(a <= b) }'; then faster=yes; else faster=no; fi
		else
			used=PostgreSQL
			rcol="- (not routed)"
			notes+="- ${NAME[$op]}: the router does not take this shape (no Almanac Lookup in its plan, ${ROUTED[$op.rocksdb]} routed lookups in its router-on runs), so both runs read the heap; router on: median $(ms "$k50") ms, p95 $k95 us, p99 $k99 us."
			if [ "${DESIGN[$op]}" = PostgreSQL ]; then
				faster=yes
				notes+=" The design gives it to PostgreSQL, the only store that holds what it reads.\n"
			else
				faster=no
				notes+=" The design gives it to RocksDB: not met.\n"
			fi
		fi
		eng="-" eratio="-"
		if [ -n "${ENGINE[$op]:-}" ]; then
			eng=${ENGINE[$op]}
			[ "$used" = RocksDB ] && eratio=$(awk -v a="$k50" -v b="$eng" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }')
		fi
		echo "| ${NAME[$op]} | $rcol | $(ms "$h50") | $used | $k50 / $k95 / $k99 | $h50 / $h95 / $h99 | $(echo "${V[$op.rocksdb.fresh]}" | median) / $(echo "${V[$op.rocksdb.warm]}" | median) | $(echo "${V[$op.postgresql.fresh]}" | median) / $(echo "${V[$op.postgresql.warm]}" | median) | $eng | $eratio | $faster |"
		mark=""
		[ "$used" = RocksDB ] || mark=" *"
		printf '"%s%s" %s %s %s %s\n' "${NAME[$op]}" "$mark" "$k50" "$k99" "$h50" "$h99" >>"$CHART"
		counted+="${NAME[$op]} $per routed and $(awk -v f="${FALLBACK[$op.rocksdb]}" -v n="${TXS[$op.rocksdb]}" 'BEGIN { if (n > 0) printf "%.2f", f / n; else print 0 }') heap fallbacks; "
	done
	echo
	echo "RocksDB: \`almanac.router = on\` (the default: the router answers the shapes it takes from the mirrors, Almanac Lookup); PostgreSQL: \`PGOPTIONS='$PGOFF'\`. Both routes in the same instance on the same data; after a warm-up run of each operation on both routes (not counted), in each of $RUNS rounds every operation ran on both back to back (PostgreSQL first in odd rounds), with fresh connections (a $T s run) and warm ones (a $TW s run; tps = median of its last $T per-second rates), 2 clients, \`pgbench -M $PROTOCOL\`. Latencies: median (the ms columns), p95 and p99 of every transaction of the operation and route (pgbench -l), fresh and warm runs of all rounds pooled; tps: medians of the rounds. Used Backend: RocksDB when the router-on plan of a sample has an Almanac Lookup and almanac.router_stats counted routed lookups during the router-on runs. faster?: whether the used backend's median is the lower one; for an operation the router does not take, yes when the design gives it to PostgreSQL, no when it gives it to RocksDB."
	echo "almanac.router_stats during the router-on runs, lookups per query: ${counted%; }."
	echo "Engine: db_bench with the mirror's key and value sizes (measured from its SST files), uncompressed, bloom 10, mmap reads, 2 threads, the mirror's number of keys (10,000 at least); us per operation and thread, against the route's median latency per query at 2 clients (which includes the client, the protocol and the executor)."
	echo
	if [ -n "$notes" ]; then echo "Notes:"; echo; printf '%b' "$notes"; echo; fi
	echo "| engine ceiling | db_bench | ops/s (2 threads) | us/op | RocksDB route, warm tps | route / engine |"
	echo "|---|---|---:|---:|---:|---:|"
	for op in latest_block account_state events_simple; do
		if [ -n "${ENGINE[$op]:-}" ]; then
			w=$(echo "${V[$op.rocksdb.warm]}" | median)
			echo "| ${NAME[$op]} | ${ENGINE_WHAT[$op]} | ${ENGINE_OPS[$op]} | ${ENGINE[$op]} | $w | $(ratio "$w" "${ENGINE_OPS[$op]}" 3) |"
		else
			echo "| ${NAME[$op]} | no mirror of its table in the store: not run | - | - | - | - |"
		fi
	done
	echo
	echo "| ingest (ingest_blocks, $BATCH blocks per call, one transaction each) | blocks | events | seconds | blocks/s | events/s |"
	echo "|---|---:|---:|---:|---:|---:|"
	for m in off on; do
		secs=$(echo "${ING[$m.secs]}" | median2)
		what="chain1, mirrors $m"
		[ "$m" = off ] && what+=" (almanac.disable_mirror on $(echo "$MIRRORED" | sed 's/ /, /g'))"
		echo "| $what, median of $INGEST_PAIRS | ${ING[blocks]} | ${ING[events]} | $secs | $(ratio "${ING[blocks]}" "$secs" 0) | $(ratio "${ING[events]}" "$secs" 0) |"
	done
	echo "| all ${P[chains]} chains, mirrors on (the load measured below) | $on_blocks | $on_events | $on_secs | $(ratio "$on_blocks" "$on_secs" 0) | $(ratio "$on_events" "$on_secs" 0) |"
	echo
	echo "Mirrors on against off (chain1's ingest rate, on / off): $(echo "${ING[ratio]}" | median2) ($(echo "${ING[ratio]}" | spread)), the median of $INGEST_PAIRS pairs' own ratios; each ingest into emptied tables after a checkpoint, off first in odd pairs and on first in even ones. Seconds count the ingest_blocks calls and their commits, not the building of each batch's JSON from the staging table."
	echo
	echo "- Scale: BENCH_SCALE=$BENCH_SCALE, seed $SEED: ${P[chains]} chains x ${P[blocks]} blocks (12 s apart), ${P[transactions]} transactions (${P[tpb]} a block), ${P[logs]} events over ${P[contracts]} contracts (Zipf 1.1), ${P[states]} account states of ${P[accounts]} accounts, ${P[messages]} cross-chain messages (${P[delivered]} delivered, ${P[pending]} pending, ${P[failed]} failed). Generated in $gen_secs s; states and messages loaded by INSERT in $rest_secs s; tables $heap_size, store $store_size."
	echo "- PostgreSQL $("$PGBIN/postgres" -V | awk '{ print $3 }'): $settings; almanac: $almanac_defaults."
	echo "- Machine: $machine; load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end."
	echo "- Raw runs in .build/bench-ops/runs.txt (round, connections, operation, route, tps, transactions, routed lookups, fallbacks), plans in .build/bench-ops/explain.txt."
	echo
	echo "![latencies per operation and route](operations.svg)"
} >"$RESULTS/operations.md"

gnuplot <<GP || fail "gnuplot"
set terminal svg size 1000,520 dynamic font 'sans,12'
set output '$RESULTS/operations.svg'
set title "almanac: the six operations, BENCH_SCALE=$BENCH_SCALE, 2 clients, -M $PROTOCOL ($(date -u +%Y-%m-%d))" noenhanced
set format y "%.0f"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set logscale y
set ylabel "latency per query, us (bar: median, whisker: p99)"
set xtics nomirror rotate by -15 scale 0
set key top left
set grid ytics
set yrange [10:1000000]
set label "* not routed: both runs read the heap" at graph 0.99, graph 0.95 right
plot '$CHART' using 2:2:3:xtic(1) title 'RocksDB route (almanac.router = on)' lc rgb '#d95f02', \
	'' using 4:4:5 title 'PostgreSQL route (almanac.router = off)' lc rgb '#1b9e77'
GP
cat "$RESULTS/operations.md"
echo
echo "wrote $RESULTS/operations.md and operations.svg in $(($(date +%s) - started)) s"
