#!/usr/bin/env bash
# bench/router/run.sh: the storage router (almanac.router on) against the
# heap (almanac.router off) on the core tables, same rows, same instance.
#
#   bench/router/run.sh                      # about 10 minutes
#   NB=20000 NS=200000 NA=20000 RUNS=1 T=1 TW=3 bench/router/run.sh   # a check, 2 minutes
#
#   NB     blocks of chain 'eth' (default 100000)
#   TPB    transactions per block (5)
#   NA     accounts (100000), NS state rows over them (1000000)
#   T      seconds of each fresh-connection run (2)
#   TW     seconds of each warm-connection run (5); its rate is the median of
#          its last T per-second rates (-P 1)
#   RUNS   rounds (3): the table shows medians and the rounds' spread
#   PROBE_N  lookups per loop of the backend-CPU probe (20000; 0: no probe)
#
# Queries (pgbench scripts in this directory), -M prepared and -M simple, 2
# clients: a block by (chain_id, block_number), a transaction by hash, the
# latest block of the chain, the latest state of an account.  In each round
# every query runs on the heap route (PGOPTIONS='-c almanac.router=off') and
# on the routed one back to back, heap first in odd rounds, routed first in
# even ones, and each protocol has a floor run in the round: SELECT 1, or for
# the two queries whose key is a string, the same \gset that builds the key
# followed by SELECT 1 (pgbench computes only numbers, so under -M prepared
# those scripts fetch the key text first; under -M simple it is spliced into
# the literal).  Fresh: pgbench's default, connections opened at the start
# of the run, whose private caches start empty.  Warm: the end of a longer
# run.
#
# Reported per query, protocol and connection kind: tps of the floor, the
# heap and the router; routed/heap; and the excess, the query's cost above
# the floor as a share of the heap's, (1/routed - 1/floor) / (1/heap - 1/floor),
# each the median of the rounds' values, with their spread.
#
# The probe (after the pgbench rounds, PROBE_N > 0): each query as a
# PL/pgSQL loop of PROBE_N lookups in one connection (the plan cached as
# under -M prepared), timed by the backend's own CPU time
# (/proc/self/schedstat), which a shared machine disturbs far less than
# pgbench's tps, and without the protocol; its floor is the same loop around
# SELECT 1 INTO.  One more query, "block, 1,000 hot keys": block lookups of
# keys below 1000 only, which the routed side answers from its row cache
# after the first pass, i.e. what a routed lookup costs when its read is a
# hash probe in backend memory.  RUNS rounds, heap and routed alternating.
#
# Before the router exists (no almanac.router setting), both routes read the
# heap: the script says so and runs anyway.  The instance's data directory is
# .build/bench-router/data (recreated each run); logs, pgbench output, plans
# and the table stay in .build/bench-router.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../../test/scripts/common.sh"
source "$HERE/../lib.sh"

NB=${NB:-100000}
TPB=${TPB:-5}
NA=${NA:-100000}
NS=${NS:-1000000}
T=${T:-2}
TW=${TW:-5}
RUNS=${RUNS:-3}
BATCH=${BATCH:-100000}
BATCH_STATES=${BATCH_STATES:-5000}
PROBE_N=${PROBE_N:-20000}
CMDLINE="NB=$NB TPB=$TPB NA=$NA NS=$NS T=$T TW=$TW RUNS=$RUNS PROBE_N=$PROBE_N bench/router/run.sh"

if [ $((NS % NA)) != 0 ] || [ $((NB % (NS / NA))) != 0 ]; then
	echo "NS must be a multiple of NA, and NB a multiple of NS / NA (the state rows' rounds)" >&2
	exit 1
fi
if [ "$TW" -le "$T" ]; then
	echo "TW must be longer than T (the warm rate is taken from the last T seconds of TW)" >&2
	exit 1
fi

started=$(date +%s)
bench_start bench-router 54359 "checkpoint_timeout = 30min"
PGBENCH=("$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n
	-D "nb=$NB" -D "nt=$((NB * TPB))" -D "na=$NA")
# (1/routed - 1/floor) / (1/heap - 1/floor): "-" when the heap is not slower than the floor
excess() { awk -v r="$1" -v h="$2" -v f="$3" 'BEGIN { d = 1 / h - 1 / f; if (r > 0 && d > 0) printf "%.3f", (1 / r - 1 / f) / d; else print "-" }'; }

echo "# $CMDLINE"
echo "instance on 127.0.0.1:$PORT, data $DATA"
"${PSQL[@]}" -c "CREATE EXTENSION almanac"

# --- the router, or its absence
ROUTER=$("${PSQL[@]}" -Atc "SELECT count(*) FROM pg_settings WHERE name = 'almanac.router'")
MIRRORS=$("${PSQL[@]}" -Atc "SELECT to_regproc('almanac.enable_mirror') IS NOT NULL")
if [ "$ROUTER" = 1 ]; then
	HEAP_OPTS="-c almanac.router=off"
	ROUTE_NOTE="router: almanac.router exists; heap route = PGOPTIONS='$HEAP_OPTS'"
else
	HEAP_OPTS=""
	ROUTE_NOTE="router: NOT BUILT (no setting almanac.router): both routes read the heap, the routed column measures the heap again"
fi
echo "$ROUTE_NOTE"
[ "$MIRRORS" = t ] || echo "mirrors: not built (no function almanac.enable_mirror)"

# --- the rows, with the mirrors the extension enables
t0=$(date +%s)
"${PSQL[@]}" -v nb="$NB" -v tpb="$TPB" -v na="$NA" -v ns="$NS" -v batch="$BATCH" -v batch_states="$BATCH_STATES" -f "$HERE/load.sql" >"$OUT/load.log" 2>&1 ||
	fail "loading: $(tail -n 5 "$OUT/load.log")"
"${PSQL[@]}" -c "VACUUM ANALYZE almanac.chains, almanac.blocks, almanac.transactions, almanac.account_states" -c "CHECKPOINT"
# the owner's write-ahead log into SST files: every new connection's reader
# would replay it into memtables of its own
if [ "$MIRRORS" = t ]; then
	flush_store || fail "flushing the column families"
fi
echo "loaded $NB blocks, $((NB * TPB)) transactions, $NS state rows of $NA accounts in $(($(date +%s) - t0)) s"

# --- the same answers both ways, and the plans
check_same() { # name sql
	local a b
	a=$(PGOPTIONS="$HEAP_OPTS" "${PSQL[@]}" -Atc "$2") || fail "$1 on the heap"
	b=$("${PSQL[@]}" -Atc "$2") || fail "$1 routed"
	[ -n "$a" ] && [ "$a" = "$b" ] || fail "$1 differs: heap '$a', routed '$b'"
}
i=$((1000000000 + NB * TPB / 2)) a=$((1000000000 + NA / 3))
Q_BLOCK="SELECT * FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = $((NB / 2))"
Q_TX="SELECT * FROM almanac.transactions WHERE chain_id = 'eth' AND tx_hash = '0x0000$i$i$i$i$i$i'"
Q_LATEST="SELECT * FROM almanac.blocks WHERE chain_id = 'eth' ORDER BY block_number DESC LIMIT 1"
Q_ACCOUNT="SELECT * FROM almanac.account_states WHERE chain_id = 'eth' AND account = '0x$a$a$a$a' ORDER BY block_number DESC LIMIT 1"
check_same block "$Q_BLOCK"
check_same tx "$Q_TX"
check_same latest_block "$Q_LATEST"
check_same account "$Q_ACCOUNT"
[ "$("${PSQL[@]}" -Atc "SELECT block_number FROM ($Q_ACCOUNT) s")" = $(((NS / NA - 1) * (NB / (NS / NA)) + (NA / 3) % (NB / (NS / NA)))) ] ||
	fail "the latest state of an account is not its last round's"
{
	for q in "$Q_BLOCK" "$Q_TX" "$Q_LATEST" "$Q_ACCOUNT"; do
		echo "== heap route: $q"
		PGOPTIONS="$HEAP_OPTS" "${PSQL[@]}" -c "EXPLAIN (COSTS OFF) $q"
		echo "== routed: $q"
		"${PSQL[@]}" -c "EXPLAIN (COSTS OFF) $q"
	done
} >"$OUT/explain.txt" 2>&1 || fail "EXPLAIN: $(tail -n 5 "$OUT/explain.txt")"
if [ "$ROUTER" = 1 ]; then
	routed_plans=$(grep -c "Almanac Lookup" "$OUT/explain.txt" || true)
	echo "plans: $routed_plans of 4 routed queries show an Almanac Lookup (.build/bench-router/explain.txt)"
fi

# --- pgbench
one_run() { # log script mode route secs warm: prints the run's tps
	local log=$1 script=$2 mode=$3 route=$4 secs=$5 warm=$6 opts=""
	[ "$route" = heap ] && opts=$HEAP_OPTS
	if [ "$warm" = warm ]; then
		PGOPTIONS="$opts" "${PGBENCH[@]}" -M "$mode" -c 2 -j 2 -T "$secs" -P 1 -f "$HERE/$script" postgres \
			>"$log" 2>&1 || fail "pgbench $log: $(tail -n 5 "$log")"
	else
		PGOPTIONS="$opts" "${PGBENCH[@]}" -M "$mode" -c 2 -j 2 -T "$secs" -f "$HERE/$script" postgres \
			>"$log" 2>&1 || fail "pgbench $log: $(tail -n 5 "$log")"
	fi
	grep -q "failed transactions: 0 " "$log" || fail "pgbench $log had failed transactions: $(grep failed "$log")"
	if [ "$warm" = warm ]; then
		# the last T per-second rates (pgbench may not print the last second's)
		local rates
		rates=$(sed -n 's/^progress: [0-9.]* s, \([0-9.]*\) tps.*/\1/p' "$log" | tail -n "$T" | tr '\n' ' ')
		[ -n "${rates// /}" ] || fail "pgbench $log printed no progress lines"
		echo "$rates" | median
	else
		sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log"
	fi
}

# script of a query under a protocol, and of its floor
script_of() { # query mode
	case "$1" in
		tx | account) echo "${1}_$2.sql" ;;
		*) echo "$1.sql" ;;
	esac
}
floor_of() { # query mode
	case "$1.$2" in
		tx.prepared | account.prepared) echo "$1_floor.sql" ;;
		*) echo floor.sql ;;
	esac
}

QUERIES="block tx latest_block account"
# the shared row cache's hits and misses so far ("0 0" without one), and
# what a run added: a routed lookup that misses pays a RocksDB Get, so
# runs.txt says how many of each run's lookups did
cache_counts() { "${PSQL[@]}" -Atc "SELECT hits || ' ' || misses FROM almanac.shared_row_cache_stats()" 2>/dev/null || echo "0 0"; }
cache_delta() { # before after
	echo "$1 $2" | awk '{ h = $3 - $1; m = $4 - $2; if (h + m > 0) printf " (shared row cache: %d hits, %d misses)", h, m }'
}
declare -A V # V[key] = the rounds' values, space-separated
declare -A F # F[floor script] = its tps in the current round and protocol
RUNLOG=$OUT/runs.txt
for r in $(seq "$RUNS"); do
	for conn in fresh warm; do
		if [ "$conn" = warm ]; then secs=$TW; else secs=$T; fi
		for mode in prepared simple; do
			# the floors of this protocol and round
			for f in $(for q in $QUERIES; do floor_of "$q" "$mode"; done | sort -u); do
				tps=$(one_run "$OUT/pgbench.$r.$conn.$mode.${f%.sql}.log" "$f" "$mode" routed "$secs" "$conn")
				F[$f]=$tps
				echo "$r $conn $mode floor ${f%.sql} $tps" >>"$RUNLOG"
			done
			for q in $QUERIES; do
				if [ $((r % 2)) = 1 ]; then order="heap routed"; else order="routed heap"; fi
				for route in $order; do
					c0=$(cache_counts)
					tps=$(one_run "$OUT/pgbench.$r.$conn.$mode.$q.$route.log" "$(script_of "$q" "$mode")" "$mode" "$route" "$secs" "$conn")
					if [ "$route" = heap ]; then h=$tps; else k=$tps; fi
					echo "$r $conn $mode $q $route $tps$(cache_delta "$c0" "$(cache_counts)")" >>"$RUNLOG"
				done
				f=${F[$(floor_of "$q" "$mode")]}
				key=$q.$mode.$conn
				V[$key.floor]="${V[$key.floor]:-} $f"
				V[$key.heap]="${V[$key.heap]:-} $h"
				V[$key.routed]="${V[$key.routed]:-} $k"
				V[$key.ratio]="${V[$key.ratio]:-} $(ratio "$k" "$h" 3)"
				V[$key.excess]="${V[$key.excess]:-} $(excess "$k" "$h" "$f")"
				echo "round $r $conn -M $mode $q: floor $f, heap $h, routed $k tps, ratio $(ratio "$k" "$h" 3), excess $(excess "$k" "$h" "$f")"
			done
		done
	done
done

# --- the probe: backend CPU per lookup in a PL/pgSQL loop
probe_one() { # route mod prep lookup: ns of backend CPU per lookup
	local opts=""
	[ "$1" = heap ] && opts=$HEAP_OPTS
	PGOPTIONS="$opts" "${PSQL[@]}" -At <<-SQL
		DO \$\$ DECLARE r record; k bigint := 0; h text; BEGIN $3 $4 END \$\$;
		SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint AS c0 \gset
		DO \$\$ DECLARE r record; k bigint; h text; BEGIN FOR i IN 1..$PROBE_N LOOP k := (i::bigint * 7919 + $RANDOM) % $2; $3 $4 END LOOP; END \$\$;
		SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint AS c1 \gset
		SELECT (:c1 - :c0) / $PROBE_N;
	SQL
}
PROBES="block block_hot tx latest_block account"
probe_mod() {
	case "$1" in
		block | latest_block) echo "$NB" ;;
		block_hot) echo 1000 ;;
		tx) echo $((NB * TPB)) ;;
		account) echo "$NA" ;;
	esac
}
probe_prep() {
	case "$1" in
		tx) echo "h := '0x0000' || repeat((1000000000 + k)::text, 6);" ;;
		account) echo "h := '0x' || repeat((1000000000 + k)::text, 4);" ;;
	esac
}
probe_sql() {
	case "$1" in
		block | block_hot) echo "SELECT * INTO r FROM almanac.blocks WHERE chain_id = 'eth' AND block_number = k;" ;;
		tx) echo "SELECT * INTO r FROM almanac.transactions WHERE chain_id = 'eth' AND tx_hash = h;" ;;
		latest_block) echo "SELECT * INTO r FROM almanac.blocks WHERE chain_id = 'eth' ORDER BY block_number DESC LIMIT 1;" ;;
		account) echo "SELECT * INTO r FROM almanac.account_states WHERE chain_id = 'eth' AND account = h ORDER BY block_number DESC LIMIT 1;" ;;
	esac
}
declare -A P # P[query.kind] = the rounds' values
if [ "$PROBE_N" -gt 0 ]; then
	for r in $(seq "$RUNS"); do
		for q in $PROBES; do
			mod=$(probe_mod "$q") prep=$(probe_prep "$q") sql=$(probe_sql "$q")
			f=$(probe_one routed "$mod" "$prep" "SELECT 1 INTO r;") || fail "probe floor $q"
			if [ $((r % 2)) = 1 ]; then order="heap routed"; else order="routed heap"; fi
			for route in $order; do
				v=$(probe_one "$route" "$mod" "$prep" "$sql") || fail "probe $q $route"
				if [ "$route" = heap ]; then h=$v; else k=$v; fi
			done
			# ns per lookup: the excess is computed on costs, as (k - f) / (h - f)
			P[$q.floor]="${P[$q.floor]:-} $f"
			P[$q.heap]="${P[$q.heap]:-} $h"
			P[$q.routed]="${P[$q.routed]:-} $k"
			P[$q.ratio]="${P[$q.ratio]:-} $(ratio "$h" "$k" 3)"
			P[$q.excess]="${P[$q.excess]:-} $(awk -v k="$k" -v h="$h" -v f="$f" 'BEGIN { if (h > f) printf "%.3f", (k - f) / (h - f); else print "-" }')"
			echo "$r probe $q floor $f heap $h routed $k ns" >>"$RUNLOG"
			echo "probe round $r $q: floor $f, heap $h, routed $k ns per lookup"
		done
	done
fi

# --- what the router says it did
if [ "$ROUTER" = 1 ]; then
	"${PSQL[@]}" -c "SELECT * FROM almanac.router_stats" >"$OUT/router_stats.txt" 2>&1 ||
		echo "almanac.router_stats could not be read: $(tail -n 2 "$OUT/router_stats.txt")"
fi

# --- the table
label() {
	case "$1" in
		block) echo "block by (chain_id, block_number)" ;;
		tx) echo "transaction by hash" ;;
		latest_block) echo "latest block of the chain" ;;
		account) echo "latest state of an account" ;;
	esac
}
{
	echo "Command: \`$CMDLINE\` ($(date -u +%Y-%m-%d), $(nproc) cores, PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}'), shared_buffers 1GB, 2 clients)"
	echo
	echo "$ROUTE_NOTE"
	echo
	echo "| query | protocol | connections | floor tps | heap tps | routed tps | routed/heap | excess |"
	echo "|---|---|---|---:|---:|---:|---:|---:|"
	for q in $QUERIES; do
		for mode in prepared simple; do
			for conn in fresh warm; do
				key=$q.$mode.$conn
				echo "| $(label "$q") | $mode | $conn | $(echo "${V[$key.floor]:-}" | median) | $(echo "${V[$key.heap]:-}" | median) | $(echo "${V[$key.routed]:-}" | median) | $(echo "${V[$key.ratio]:-}" | median2) ($(echo "${V[$key.ratio]:-}" | spread)) | $(echo "${V[$key.excess]:-}" | median2) ($(echo "${V[$key.excess]:-}" | spread)) |"
			done
		done
	done
	echo
	echo "Medians of $RUNS rounds, (spread) = lowest-highest of the rounds' own ratio or excess (each round's heap and routed runs ran back to back; the floor ran in the same round)."
	echo "excess = (1/routed - 1/floor) / (1/heap - 1/floor); goals at 2 clients: <= 0.5 prepared and <= 0.4 simple for point lookups, <= 0.33 for the latest block and the latest account state."
	echo "Fresh: pgbench's default (connections opened at the start of a ${T} s run); warm: median per-second rate of the last ${T} s of a ${TW} s run."
	echo "Settings: shared_buffers $("${PSQL[@]}" -Atc "SHOW shared_buffers"), almanac.shared_row_cache_size $("${PSQL[@]}" -Atc "SHOW almanac.shared_row_cache_size" 2>/dev/null || echo -) (bench/lib.sh); shared row cache at the end: $("${PSQL[@]}" -Atc "SELECT format('%s of %s slots used, %s hits, %s misses', used, slots, hits, misses) FROM almanac.shared_row_cache_stats()" 2>/dev/null || echo -)."
	echo "Every run in .build/bench-router/runs.txt, plans in .build/bench-router/explain.txt."
	if [ "$PROBE_N" -gt 0 ]; then
		echo
		echo "Backend CPU per lookup, ns: a PL/pgSQL loop of $PROBE_N lookups in one connection (the plan cached, as under -M prepared), the backend's own CPU time (/proc/self/schedstat); floor: the same loop around SELECT 1 INTO."
		echo
		echo "| query | floor ns | heap ns | routed ns | heap/routed | excess |"
		echo "|---|---:|---:|---:|---:|---:|"
		for q in $PROBES; do
			if [ "$q" = block_hot ]; then l="block by (chain_id, block_number), 1,000 hot keys"; else l=$(label "$q"); fi
			echo "| $l | $(echo "${P[$q.floor]:-}" | median) | $(echo "${P[$q.heap]:-}" | median) | $(echo "${P[$q.routed]:-}" | median) | $(echo "${P[$q.ratio]:-}" | median2) ($(echo "${P[$q.ratio]:-}" | spread)) | $(echo "${P[$q.excess]:-}" | median2) ($(echo "${P[$q.excess]:-}" | spread)) |"
		done
		echo
		echo "Medians of $RUNS rounds (spread of the rounds' own ratio and excess); heap/routed is a speed ratio like routed/heap tps above; excess = (routed - floor) / (heap - floor) on these costs."
	fi
} >"$OUT/results.md"
echo
cat "$OUT/results.md"
[ -f "$OUT/router_stats.txt" ] && { echo; echo "== almanac.router_stats"; cat "$OUT/router_stats.txt"; }
echo "done in $(($(date +%s) - started)) s"
