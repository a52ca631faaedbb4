#!/usr/bin/env bash
# bench/fresh/run.sh: what a new connection's first point lookups cost, by
# how its reader reads the SST files (almanac.reader_mmap) and how they are
# stored (server option compression).
#
#   bench/fresh/run.sh            # N=200000 RUNS=6 T=3: about 2 minutes
#
#   N     rows in each table (chain 'eth', block_number 1..N)
#   RUNS  rounds; each runs every configuration once, in list order in odd
#         rounds and reversed in even ones
#   T     seconds of each pgbench run
#
# The same rows are in a heap table with a btree primary key, in a foreign
# table on a store with compression 'lz4' and in one on a store with
# compression 'none' (the default).  almanac.reader_mmap is fixed per
# connection, so each configuration is a new connection with PGOPTIONS.
#
# Probe (probe.sql, backend CPU from /proc/self/schedstat, so the neighbours'
# load counts less than in wall time): the first lookup, of a key the shared
# row cache holds (no reader is opened for it), then one it does not answer
# (it opens the reader), 2000 lookups of keys the connection has not read, 2000 more, the
# first 2000 again, RssAnon at the end; with the row cache on and off.  When
# the router exists, the same keys in almanac.blocks, whose mirror is in the
# default store: routed (mmap, read()) and not (almanac.router = off).
# pgbench (-M prepared, 2 clients, T s each, paired in rounds as above): new
# connections for the run (pgbench's default), a new connection per lookup
# (-C), and a new connection per lookup of one of HOT keys (default 2000,
# looked up once before the rounds, so the shared row cache holds them).  Ratios are medians of the rounds' own ratios, with spread.
#
# Scratch instance in .build/bench-fresh (recreated, stopped on exit); every
# probe and run stays there.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../../test/scripts/common.sh"
source "$HERE/../lib.sh"

N=${N:-200000}
RUNS=${RUNS:-6}
T=${T:-3}
HOT=${HOT:-2000}
CMDLINE="N=$N RUNS=$RUNS T=$T HOT=$HOT bench/fresh/run.sh"

started=$(date +%s)
bench_start bench-fresh 54379
PGBENCH=("$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n -D "N=$N")

echo "# $CMDLINE"
ROWS=$OUT/rows.tsv
"${PSQL[@]}" <<SQL || fail "set-up"
CREATE EXTENSION almanac;
CREATE SERVER store_lz4 FOREIGN DATA WRAPPER almanac_rocksdb OPTIONS (path 'almanac/bench_lz4', compression 'lz4');
CREATE TABLE bench_heap (chain_id text, block_number bigint, block_hash text, gas_used bigint,
	PRIMARY KEY (chain_id, block_number));
-- kv_none's keys differ from those of almanac.blocks' mirror, in the same
-- store (the same key lengths as 'block'): the shared row cache keeps one
-- entry per key per store, so keys equal in two column families would take
-- each other's place
CREATE FOREIGN TABLE kv_none (chain_id text, block_number bigint, block_hash text, gas_used bigint)
	SERVER almanac_store OPTIONS (key_prefix 'kvblk', key_columns 'chain_id, block_number');
CREATE FOREIGN TABLE kv_lz4 (chain_id text, block_number bigint, block_hash text, gas_used bigint)
	SERVER store_lz4 OPTIONS (key_prefix 'block', key_columns 'chain_id, block_number');
-- the rows of bench/store: a 66-character hash whose halves repeat between
-- neighbours (so LZ4 has something to compress) and a bigint
COPY (SELECT 'eth', n, '0x' || md5(n::text) || md5((n + 1)::text), (n * 7919) % 30000000
        FROM generate_series(1, $N::bigint) AS n) TO '$ROWS';
COPY bench_heap FROM '$ROWS';
COPY kv_none FROM '$ROWS';
COPY kv_lz4 FROM '$ROWS';
VACUUM ANALYZE bench_heap;
SQL
{ flush_store && flush_store store_lz4; } || fail "flush"
# the core table almanac.blocks with the same keys, and its mirror when the
# router exists (issue 14): lookups routed to the mirror, or the heap's
ROUTER=$("${PSQL[@]}" -Atc "SELECT count(*) FROM pg_settings WHERE name = 'almanac.router'")
if [ "$ROUTER" = 1 ]; then
	"${PSQL[@]}" <<SQL || fail "loading almanac.blocks"
INSERT INTO almanac.chains (chain_id) VALUES ('eth');
INSERT INTO almanac.blocks (chain_id, block_number, block_hash, parent_hash, timestamp)
SELECT 'eth', n, '0x' || md5(n::text) || md5((n + 1)::text), '0x' || md5((n - 1)::text) || md5(n::text),
	   timestamptz '2020-01-01 00:00:00+00' + n * interval '12 s'
  FROM generate_series(1, $N) AS n;
VACUUM ANALYZE almanac.blocks;
SQL
	flush_store || fail "flush"
fi
sizes=$("${PSQL[@]}" -Atc "SELECT string_agg(server || ' ' || column_family || ' ' || pg_size_pretty(live_sst_bytes), ', ') FROM almanac.store_properties")
echo "SST bytes: $sizes"
mid=$((N / 2))
for t in kv_none kv_lz4; do
	for m in on off; do
		[ "$(PGOPTIONS="-c almanac.reader_mmap=$m" "${PSQL[@]}" -Atc "SELECT block_hash FROM $t WHERE chain_id = 'eth' AND block_number = $mid")" = \
			"$("${PSQL[@]}" -Atc "SELECT block_hash FROM bench_heap WHERE chain_id = 'eth' AND block_number = $mid")" ] ||
			fail "$t with reader_mmap $m reads another row than the heap"
	done
done

# configuration: name|table|PGOPTIONS
CONFIGS=(
	"lz4, read()|kv_lz4|-c almanac.reader_mmap=off"
	"lz4, mmap|kv_lz4|-c almanac.reader_mmap=on"
	"none, read()|kv_none|-c almanac.reader_mmap=off"
	"none, mmap|kv_none|-c almanac.reader_mmap=on"
	"heap|bench_heap|"
	"lz4, read(), no row cache|kv_lz4|-c almanac.reader_mmap=off -c almanac.reader_row_cache_size=0"
	"none, mmap, no row cache|kv_none|-c almanac.reader_mmap=on -c almanac.reader_row_cache_size=0"
)
if [ "$ROUTER" = 1 ]; then
	CONFIGS+=(
		"almanac.blocks, router off (heap)|almanac.blocks|-c almanac.router=off"
		"almanac.blocks, routed, read()|almanac.blocks|-c almanac.reader_mmap=off"
		"almanac.blocks, routed, mmap|almanac.blocks|-c almanac.reader_mmap=on"
	)
fi
declare -A P # P[config.measure] = the rounds' values
# warm the OS page cache and the catalog: one probe of each table
for t in kv_none kv_lz4 bench_heap $([ "$ROUTER" = 1 ] && echo almanac.blocks); do
	"${PSQL[@]}" -v tbl="$t" -v n="$N" -v s=0 -f "$HERE/probe.sql" >/dev/null || fail "probe of $t"
done
for r in $(seq "$RUNS"); do
	if [ $((r % 2)) = 1 ]; then idx=$(seq 0 $((${#CONFIGS[@]} - 1))); else idx=$(seq $((${#CONFIGS[@]} - 1)) -1 0); fi
	for i in $idx; do
		IFS='|' read -r name tbl opts <<<"${CONFIGS[$i]}"
		read -r c0 ck c1 c2 c3 c4 anon < <(PGOPTIONS="$opts" "${PSQL[@]}" -v tbl="$tbl" -v n="$N" -v s="$((r * 104729))" -f "$HERE/probe.sql") ||
			fail "probe $name"
		echo "$r|$name|$c0 $ck $c1 $c2 $c3 $c4 $anon" >>"$OUT/probes.txt"
		P[$name.kept]="${P[$name.kept]:-} $(((ck - c0) / 1000))"
		P[$name.first]="${P[$name.first]:-} $(((c1 - ck) / 1000))"
		P[$name.cold]="${P[$name.cold]:-} $(((c2 - c1) / 2000))"
		P[$name.cold2]="${P[$name.cold2]:-} $(((c3 - c2) / 2000))"
		P[$name.again]="${P[$name.again]:-} $(((c4 - c3) / 2000))"
		P[$name.anon]="${P[$name.anon]:-} $anon"
	done
	echo "probe round $r done"
done
if [ "$ROUTER" = 1 ]; then
	routed=$("${PSQL[@]}" -Atc "SELECT routed FROM almanac.router_stats WHERE table_name = 'almanac.blocks'::regclass")
	[ "${routed:-0}" -gt 0 ] || fail "no lookup of almanac.blocks was routed"
	echo "routed lookups of almanac.blocks: $routed"
fi
# the rounds' ratios to a baseline configuration
rel() { # config baseline measure: the rounds' ratios
	local a b out="" j
	read -ra a <<<"${P[$1.$3]}"
	read -ra b <<<"${P[$2.$3]}"
	for j in "${!a[@]}"; do out="$out $(ratio "${a[$j]}" "${b[$j]}" 3)"; done
	echo "$out"
}

# --- pgbench: old defaults (lz4, read()) against new (none, mmap), and the heap
one_run() { # log opts secs extra...: tps
	local log=$1 opts=$2 secs=$3
	shift 3
	PGOPTIONS="$opts" "${PGBENCH[@]}" -M prepared -c 2 -j 2 -T "$secs" "$@" >"$log" 2>&1 || fail "pgbench $log: $(tail -n 3 "$log")"
	sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log"
}
for t in kv_none kv_lz4 bench_heap; do
	printf '\\set n random(1, :N)\nSELECT block_hash FROM %s WHERE chain_id = '"'eth'"' AND block_number = :n;\n' "$t" >"$OUT/point_$t.sql"
	printf '\\set n random(1, %s)\nSELECT block_hash FROM %s WHERE chain_id = '"'eth'"' AND block_number = :n;\n' "$HOT" "$t" >"$OUT/hot_$t.sql"
	# the hot keys, looked up once: kept in the shared row cache
	"${PSQL[@]}" -c "DO \$\$ DECLARE h text; BEGIN FOR k IN 1..$HOT LOOP SELECT block_hash INTO h FROM $t WHERE chain_id = 'eth' AND block_number = k; END LOOP; END \$\$" ||
		fail "looking up the hot keys of $t"
done
chmod o+r "$OUT"/point_*.sql "$OUT"/hot_*.sql
BENCH=("old|kv_lz4|-c almanac.reader_mmap=off" "new|kv_none|-c almanac.reader_mmap=on" "heap|bench_heap|")
declare -A B
for r in $(seq "$RUNS"); do
	if [ $((r % 2)) = 1 ]; then idx="0 1 2"; else idx="2 1 0"; fi
	for kind in run conn hot; do
		for i in $idx; do
			IFS='|' read -r name tbl opts <<<"${BENCH[$i]}"
			if [ "$kind" = run ]; then extra=(); else extra=(-C); fi
			script=point
			[ "$kind" = hot ] && script=hot
			tps=$(one_run "$OUT/pgbench.$r.$kind.$name.log" "$opts" "$T" "${extra[@]}" -f "$OUT/${script}_$tbl.sql" postgres)
			B[$kind.$name]="${B[$kind.$name]:-} $tps"
			echo "$r $kind $name $tps" >>"$OUT/runs.txt"
		done
	done
	echo "pgbench round $r: run old/new/heap$(for n in old new heap; do echo -n " ${B[run.$n]##* }"; done), per-lookup connections$(for n in old new heap; do echo -n " ${B[conn.$n]##* }"; done), of hot keys$(for n in old new heap; do echo -n " ${B[hot.$n]##* }"; done)"
done
brel() { # kind a b
	local x y out="" j
	read -ra x <<<"${B[$1.$2]}"
	read -ra y <<<"${B[$1.$3]}"
	for j in "${!x[@]}"; do out="$out $(ratio "${x[$j]}" "${y[$j]}" 3)"; done
	echo "$out"
}

{
	echo "Command: \`$CMDLINE\` ($(date -u +%Y-%m-%d), $(nproc) cores, PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}'), defaults otherwise: reader_block_cache_size 16MB, reader_row_cache_size 16MB); SST bytes: $sizes"
	echo
	echo "Backend CPU of a new connection (probe.sql), medians of $RUNS rounds; ratios (to \`lz4, read()\`, the defaults before, and for almanac.blocks to its heap) are medians of the rounds' own ratios, (spread) lowest to highest:"
	echo
	echo "| store, reader | first lookup (a kept key), us | then a key not kept, us | next 2000 lookups, ns each | 2000 more | first 2000 again | RssAnon at the end, kB |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for c in "${CONFIGS[@]}"; do
		IFS='|' read -r name _ _ <<<"$c"
		base="lz4, read()"
		[[ $name == *"no row cache"* ]] && base="lz4, read(), no row cache"
		[[ $name == almanac.blocks* ]] && base="almanac.blocks, router off (heap)"
		line="| $name"
		for m in kept first cold cold2 again anon; do
			v=$(echo "${P[$name.$m]}" | median)
			if [ "$name" = "$base" ] || [ "$name" = heap ] || [ "$name" = "almanac.blocks, router off (heap)" ]; then
				line="$line | $v"
			else
				rr=$(rel "$name" "$base" "$m")
				line="$line | $v ($(echo "$rr" | median2)x, $(echo "$rr" | spread))"
			fi
		done
		echo "$line |"
	done
	echo
	echo "pgbench -M prepared, 2 clients, ${T} s runs, medians of $RUNS rounds (tps; ratios are medians of the rounds' ratios, with spread):"
	echo
	echo "| connections | lz4, read() (before) | none, mmap (now) | now/before | heap | now/heap |"
	echo "|---|---:|---:|---:|---:|---:|"
	for kind in run conn hot; do
		case $kind in
		run) lbl="new for each run (pgbench default)" ;;
		conn) lbl="new for each lookup (-C)" ;;
		hot) lbl="new for each lookup (-C), $HOT kept keys" ;;
		esac
		rn=$(brel "$kind" new old) rh=$(brel "$kind" new heap)
		echo "| $lbl | $(echo "${B[$kind.old]}" | median) | $(echo "${B[$kind.new]}" | median) | $(echo "$rn" | median2) ($(echo "$rn" | spread)) | $(echo "${B[$kind.heap]}" | median) | $(echo "$rh" | median2) ($(echo "$rh" | spread)) |"
	done
	echo
	echo "Every probe in .build/bench-fresh/probes.txt (c0 ck c1..c4 ns, RssAnon kB), every run in .build/bench-fresh/runs.txt."
} >"$OUT/results.md"
echo
cat "$OUT/results.md"
echo "done in $(($(date +%s) - started)) s"
