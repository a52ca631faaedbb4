#!/usr/bin/env bash
# bench/scale/run.sh: a coordinator (almanac_coordinator) in front of two
# almanac nodes against the nodes directly, all on 127.0.0.1 (issue 17,
# docs/scale-out.md).  On one machine the figures are ratios, nothing more.
#
#   bench/scale/run.sh                           # BLOCKS=100 T=5, about 3 minutes
#   BLOCKS=20 T=3 ROUNDS=1 bench/scale/run.sh    # a check
#   KEEP=1 ...                                   # leave the instances running
#
# Instances in .build/bench-scale/{node1,node2,single,coord} (recreated).
# Chains of BLOCKS generated blocks each (bench/ingest/gen_blocks.py: 150
# transactions, 400 logs per block): c1 (node1) and c2 (node2) ingested
# through the coordinator, c3 (node1) ingested directly on node1; the
# instance "single" holds all three, ingested directly, for the aggregate.
#
#   ingest      one block per call and transaction, from a table of JSON on
#               the calling side: almanac_coordinator.ingest_block on the
#               coordinator (c1) against almanac.ingest_block on node1 (c3);
#               blocks/s, and coordinator / direct
#   lookup      a block by (chain, number), 2 clients, prepared, T seconds:
#               almanac_coordinator.block_at against the SELECT on node1;
#               ROUNDS (default 3) pairs, direct then coordinator, the ratio
#               of each pair and their median; and the CPU time per lookup of
#               each process (the backends of node1 and of the coordinator,
#               and pgbench), from /proc between the first and the last
#               second of each run: on a shared machine these move less
#               than tps does, and they bound the ratio (docs/scale-out.md)
#   floor       a PL/Proxy call with a constant connect string that runs
#               SELECT 1 on node1: what any dispatch costs, the same way
#   latest      the latest block of a chain, same: latest_block
#   aggregate   SELECT chain_id, count(*), sum(gas_used) FROM transactions
#               GROUP BY chain_id: on the coordinator (two nodes, pushed
#               down) against "single"; mean latency of runs 2 to 30 of
#               one session (the first, which through the coordinator
#               opens the connections to the nodes, printed apart)
#   footprint   bytes per block on "single", tables and RocksDB (for sizing)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../../test/scripts/common.sh"
BLOCKS=${BLOCKS:-100}
T=${T:-5}
ROUNDS=${ROUNDS:-3}
OUT=$ALMANAC_ROOT/.build/bench-scale
CMDLINE="BLOCKS=$BLOCKS T=$T ROUNDS=$ROUNDS bench/scale/run.sh"

setup_run_user
build_private_tree
rm -rf "$OUT"
make_user_dir "$OUT"
declare -A PORTS
started=()
stop_all() {
	local n
	for n in "${started[@]}"; do
		run_as pg_ctl -D "$OUT/$n" stop -m fast >/dev/null 2>&1 || true
	done
}
[ -n "${KEEP:-}" ] || trap stop_all EXIT

# start NAME PRELOAD: an instance on the first free port from 55470
start() {
	local name=$1 port
	run_as initdb -D "$OUT/$name" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$OUT/$name.initdb.log"
	port=$(free_port $((55470 + ${#started[@]} * 3)))
	cat >>"$OUT/$name/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
port = $port
shared_buffers = 512MB
max_wal_size = 4GB
checkpoint_timeout = 30min
${2:+shared_preload_libraries = 'almanac'}
CONF
	run_as pg_ctl -D "$OUT/$name" -l "$OUT/$name.log" -w start >/dev/null
	started+=("$name")
	PORTS[$name]=$port
}
sql() {
	local name=$1
	shift
	PGOPTIONS='-c client_min_messages=warning' "$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "${PORTS[$name]}" -U postgres -v ON_ERROR_STOP=1 -d postgres "$@"
}

echo "# $CMDLINE"
for n in node1 node2 single; do
	start $n almanac
	sql $n -c "CREATE EXTENSION almanac"
done
start coord
sql coord -c "CREATE EXTENSION almanac_coordinator CASCADE" \
	-c "SELECT almanac_coordinator.add_node('n1', '127.0.0.1', ${PORTS[node1]}, 'postgres')" \
	-c "SELECT almanac_coordinator.add_node('n2', '127.0.0.1', ${PORTS[node2]}, 'postgres')" \
	-c "SELECT almanac_coordinator.register_chain('c1', 1, 'n1')" \
	-c "SELECT almanac_coordinator.register_chain('c2', 2, 'n2')" \
	-c "SELECT almanac_coordinator.register_chain('c3', 3, 'n1')" >/dev/null

python3 "$ALMANAC_ROOT/bench/ingest/gen_blocks.py" --blocks "$BLOCKS" --seed 1 >"$OUT/blocks.jsonl"
chmod o+r "$OUT/blocks.jsonl"
# the blocks of chain N: the same blocks, its transactions carrying chainId N
load_src() {
	local name=$1 evm=$2
	sed "s/\"chainId\":\"0x1\"/\"chainId\":\"0x$evm\"/g" "$OUT/blocks.jsonl" >"$OUT/blocks-$evm.jsonl"
	chmod o+r "$OUT/blocks-$evm.jsonl"
	sql "$name" -c "DROP TABLE IF EXISTS src_$evm, raw_$evm" \
		-c "CREATE TABLE raw_$evm (j jsonb)" \
		-c "COPY raw_$evm FROM '$OUT/blocks-$evm.jsonl'" \
		-c "CREATE TABLE src_$evm AS SELECT (j #>> '{block,number}') AS n, (j->'block')::text AS block,
				(j->'receipts')::text AS receipts FROM raw_$evm" \
		-c "VACUUM ANALYZE src_$evm"
}
# ingest NAME SCHEMA CHAIN EVM: seconds to ingest the blocks one per
# transaction, from JSON text as a follower has it: almanac parses it (::jsonb
# where it runs), the coordinator passes it on as text
ingest() {
	local name=$1 schema=$2 chain=$3 evm=$4 cast=
	[ "$schema" = almanac_coordinator ] || cast=::jsonb
	load_src "$name" "$evm"
	sql "$name" -c "CREATE OR REPLACE PROCEDURE pg_temp.run(INOUT secs float8) LANGUAGE plpgsql AS \$\$
		DECLARE t0 timestamptz := clock_timestamp(); r record;
		BEGIN
			FOR r IN SELECT block, receipts FROM src_$evm ORDER BY n LOOP
				PERFORM $schema.ingest_block('$chain', r.block$cast, r.receipts$cast);
				COMMIT;
			END LOOP;
			secs := extract(epoch FROM clock_timestamp() - t0);
		END \$\$" -c "CALL pg_temp.run(NULL)"
}
t_coord=$(ingest coord almanac_coordinator c1 1)
t_direct=$(ingest node1 almanac c3 3)
ingest coord almanac_coordinator c2 2 >/dev/null
for c in 1 2 3; do
	sql single -c "SELECT almanac.register_chain('c$c', $c)" >/dev/null
	ingest single almanac "c$c" "$c" >/dev/null
done
check=$(sql coord -c "SELECT string_agg(chain_id || '=' || n, ' ' ORDER BY chain_id) FROM (SELECT chain_id, count(*) n FROM almanac_coordinator.blocks GROUP BY 1) x")
echo "blocks per chain through the coordinator: $check"

# pgbench NAME SCRIPT [ARGS]: tps of 2 clients, prepared, T seconds
tps() {
	local name=$1 script=$2
	shift 2
	printf '%s\n' "$script" >"$OUT/script.sql"
	chmod o+r "$OUT/script.sql"
	"$PGBIN/pgbench" -n -h 127.0.0.1 -p "${PORTS[$name]}" -U postgres -M prepared -c 2 -j 2 -T "$T" \
		-D lo=19000000 -D hi=$((19000000 + BLOCKS - 1)) "$@" -f "$OUT/script.sql" postgres 2>"$OUT/pgbench.err" |
		awk '/^tps = / { printf "%.0f\n", $3 }'
}
# cpu NAME SCRIPT INSTANCE...: like tps, and the CPU time per transaction
# (microseconds, user + system, from /proc/PID/stat) of the client backends
# of each INSTANCE and of pgbench, from second 1 to second T-1 (transactions
# counted by pgbench's progress reports over the same seconds): prints
# "tps us_instance... us_pgbench"
cpu() {
	local name=$1 script=$2 inst pm pid bp t0 t1 n hz line
	shift 2
	printf '%s\n' "$script" >"$OUT/script.sql"
	chmod o+r "$OUT/script.sql"
	"$PGBIN/pgbench" -n -h 127.0.0.1 -p "${PORTS[$name]}" -U postgres -M prepared -c 2 -j 2 -T "$T" -P 1 \
		-D lo=19000000 -D hi=$((19000000 + BLOCKS - 1)) -f "$OUT/script.sql" postgres >"$OUT/cpu.out" 2>&1 &
	bp=$!
	sleep 1
	# the backends serving a client over TCP (PL/Proxy's included)
	backends() { ps --ppid "$(head -1 "$OUT/$1/postmaster.pid")" -o pid=,args= | awk '/postgres: postgres postgres 127\.0\.0\.1/ { print $1 }'; }
	ticks() { local p s=0; for p in "$@"; do s=$((s + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $s; }
	declare -A pids before
	for inst in "$@"; do pids[$inst]=$(backends "$inst"); before[$inst]=$(ticks ${pids[$inst]}); done
	t0=$(ticks $bp)
	sleep $((T > 2 ? T - 2 : 1))
	line=
	hz=$(getconf CLK_TCK)
	for inst in "$@"; do line="$line $(($(ticks ${pids[$inst]}) - ${before[$inst]}))"; done
	t1=$(($(ticks $bp) - t0))
	wait $bp
	n=$(awk -v a=1 -v b=$((T > 2 ? T - 1 : 2)) '/^progress: / { s = $2 + 0; if (s > a && s <= b) n += $4 } END { printf "%.0f", n }' "$OUT/cpu.out")
	awk -v n="$n" -v hz="$hz" -v t="$(awk '/^tps = / { printf "%.0f", $3 }' "$OUT/cpu.out")" -v l="$line $t1" \
		'BEGIN { printf "%s", t; k = split(l, a, " "); for (i = 1; i <= k; i++) printf " %.0f", (n > 0 ? a[i] / hz * 1e6 / n : 0); print "" }'
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# latency in ms of 30 runs in one session, one client: "mean first", the
# mean of runs 2 to 30 and the first run alone (which, through the
# coordinator, also opens the session's connections to the nodes)
latency() {
	local name=$1 script=$2 dir
	printf '%s\n' "$script" >"$OUT/script.sql"
	chmod o+r "$OUT/script.sql"
	dir=$(mktemp -d "$OUT/latency.XXXXXX")
	(cd "$dir" && "$PGBIN/pgbench" -n -h 127.0.0.1 -p "${PORTS[$name]}" -U postgres -M prepared -c 1 -t 30 -l \
		-f "$OUT/script.sql" postgres >/dev/null 2>>"$OUT/pgbench.err")
	awk 'NR == 1 { f = $3 } NR > 1 { s += $3; n++ } END { printf "%.3f %.3f\n", s / n / 1000, f / 1000 }' "$dir"/pgbench_log.*
	rm -rf "$dir"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# lookups in pairs of rounds; CPU per lookup (us): direct = node1's backend,
# coordinator = its backend + node1's backend (PL/Proxy's connection)
sql coord -c "CREATE FUNCTION bench_dispatch_floor() RETURNS integer LANGUAGE plproxy AS
	\$\$ CONNECT 'host=127.0.0.1 port=${PORTS[node1]} dbname=postgres user=postgres'; SELECT 1; \$\$" >/dev/null
ratios=
cpu_lines=
for r in $(seq "$ROUNDS"); do
	d=$(cpu node1 $'\\set n random(:lo, :hi)\nSELECT * FROM almanac.blocks WHERE chain_id = \'c1\' AND block_number = :n;' node1)
	c=$(cpu coord $'\\set n random(:lo, :hi)\nSELECT * FROM almanac_coordinator.block_at(\'c1\', :n);' coord node1)
	f=$(cpu coord 'SELECT bench_dispatch_floor();' coord node1)
	set -- $d $c $f
	# $1 tps, $2 node1, $3 pgbench | $4 tps, $5 coordinator, $6 node1, $7 pgbench | floor $8..$11
	ratios="$ratios $(ratio "$4" "$1")"
	cpu_lines="$cpu_lines
round $r: direct $1 tps (node1 $2 us, pgbench $3 us per lookup); coordinator $4 tps (coordinator $5 us, node1 $6 us, pgbench $7 us); ratio $(ratio "$4" "$1"); CPU bound $(ratio $(($2 + $3)) $(($5 + $6 + $7))); PL/Proxy SELECT 1: coordinator $9 us, node1 ${10} us"
	l_direct=$1 l_coord=$4
done
sql coord -c "DROP FUNCTION bench_dispatch_floor()" >/dev/null
l_ratio=$(echo "$ratios" | median)
echo "lookups, paired rounds (CPU bound: direct CPU per lookup / coordinator's, the ratio two saturated cores would allow):$cpu_lines"
h_direct=$(tps node1 "SELECT * FROM almanac.latest_block('c1');")
h_coord=$(tps coord "SELECT * FROM almanac_coordinator.latest_block('c1');")
agg='SELECT chain_id, count(*), sum(gas_used) FROM %s.transactions GROUP BY chain_id;'
set -- $(latency single "$(printf "$agg" almanac)") $(latency coord "$(printf "$agg" almanac_coordinator)")
a_single=$1 a_coord=$3
echo "aggregate, first run of a session: coordinator $4 ms, single $2 ms"
sql coord -c "EXPLAIN (VERBOSE, COSTS OFF) $(printf "$agg" almanac_coordinator)" >"$OUT/aggregate.plan"
grep -q 'Relations: Aggregate on' "$OUT/aggregate.plan" || echo "warning: the aggregate was not pushed down (plan in $OUT/aggregate.plan)"

# footprint of a block (150 transactions, 400 logs) on "single": the
# almanac tables with their indexes and TOAST, and the RocksDB store (its
# mirrors) once flushed
sql single -c "SELECT almanac.flush(column_family) FROM almanac.column_families()" >/dev/null
fp_heap=$(sql single -c "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
	WHERE c.relnamespace = 'almanac'::regnamespace AND c.relkind = 'r'")
fp_rocks=$(du -sb "$OUT/single/almanac" | cut -f1)
echo "footprint per block (150 transactions, 400 logs): tables and indexes $((fp_heap / (3 * BLOCKS))) bytes, RocksDB $((fp_rocks / (3 * BLOCKS))) bytes"

echo
echo "| measure | through the coordinator | directly | coordinator / direct | goal |"
echo "|---|---:|---:|---:|---|"
echo "| ingest, blocks/s (one per call) | $(awk -v b="$BLOCKS" -v t="$t_coord" 'BEGIN { printf "%.1f", b / t }') | $(awk -v b="$BLOCKS" -v t="$t_direct" 'BEGIN { printf "%.1f", b / t }') | $(ratio "$t_direct" "$t_coord") | >= 0.8 |"
echo "| block by number, tps (2 clients; last round, median ratio of $ROUNDS) | $l_coord | $l_direct | $l_ratio | >= 0.5 |"
echo "| latest block, tps (2 clients) | $h_coord | $h_direct | $(ratio "$h_coord" "$h_direct") | >= 0.5 |"
echo "| aggregate by chain, ms (two nodes / one) | $a_coord | $a_single | $(ratio "$a_coord" "$a_single") (time) | <= 1.2 |"
