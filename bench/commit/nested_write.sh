#!/usr/bin/env bash
# bench/commit/nested_write.sh: a load run from a query against the same
# load run from a DO block (docs/write-path.md, "What is kept").
#
#   N=200000 RUNS=3 bench/commit/nested_write.sh
#   BEFORE=/path/to/other/checkout N=200000 RUNS=3 bench/commit/nested_write.sh
#
#   N      rows each run inserts (new keys each time)
#   RUNS   rounds; each round runs every case below once, the order
#          reversed every other round
#   SIZES  almanac.write_batch_size values ("default": the setting's default)
#   BEFORE another checkout (a worktree of an older commit): its build is
#          installed into its own .build/pg and started as a second scratch
#          instance, and each round measures both builds, so that the two
#          are compared under the same machine load
#
# f(a, b) is a PL/pgSQL function that runs INSERT INTO nested_kv SELECT g,
# repeat('v', 100) FROM generate_series(a, b) g into an upsert foreign table.
# The cases: "select" runs SELECT f(a, b), whose open query's snapshot is
# older than the INSERT's, so the INSERT keeps the priors of what it writes
# (kv/nested.h) and, before each send of the batch to the owner while the
# transaction goes on, reads what the store holds for them; "do" runs the
# same INSERT from a DO block (no older snapshot open: nothing kept).  Each
# run is one transaction; its time is psql's \timing of the statement.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../../test/scripts/common.sh"
source "$HERE/../lib.sh"

N=${N:-200000}
RUNS=${RUNS:-3}
SIZES=${SIZES:-4MB default}
BEFORE=${BEFORE:-}
CMDLINE="N=$N RUNS=$RUNS SIZES='$SIZES'${BEFORE:+ BEFORE=$BEFORE} bench/commit/nested_write.sh"

SETUP="CREATE EXTENSION almanac;
CREATE FOREIGN TABLE nested_kv (k bigint, v text)
	SERVER almanac_store OPTIONS (key_prefix 'nested', key_columns 'k', upsert 'true');
CREATE FUNCTION f(a bigint, b bigint) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
	INSERT INTO nested_kv SELECT g, repeat('v', 100) FROM generate_series(a, b) g;
END \$\$;"

bench_start bench-nested 54361
echo "# $CMDLINE"
"${PSQL[@]}" -c "$SETUP" >/dev/null || fail "setup"
declare -A PSQLS=([after]="${PSQL[*]}")
BUILDS=after
if [ -n "$BEFORE" ]; then
	BEFORE=$(cd "$BEFORE" && pwd)
	BTREE=$BEFORE/.build/pg
	BOUT=$BEFORE/.build/bench-nested
	BDATA=$BOUT/data
	ALMANAC_ROOT=$BEFORE PGTREE=$BTREE build_private_tree
	BBIN=$BTREE$("$PG_CONFIG" --bindir)
	if [ -f "$BDATA/postmaster.pid" ]; then
		run_as "$BBIN/pg_ctl" -D "$BDATA" stop -m immediate >/dev/null 2>&1 || true
	fi
	rm -rf "$BOUT"
	make_user_dir "$BOUT"
	run_as "$BBIN/initdb" -D "$BDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$BOUT/initdb.log"
	# the same settings as this checkout's instance
	sed -n '/^# .build\/bench-nested: bench\/lib.sh/,$p' "$DATA/postgresql.conf" >>"$BDATA/postgresql.conf"
	BPORT=$(free_port $((PORT + 1)))
	trap 'run_as pg_ctl -D "$DATA" stop -m fast >/dev/null 2>&1 || true; run_as "$BBIN/pg_ctl" -D "$BDATA" stop -m fast >/dev/null 2>&1 || true' EXIT
	run_as "$BBIN/pg_ctl" -D "$BDATA" -l "$BOUT/server.log" -o "-p $BPORT" -w start >/dev/null
	PSQLS[before]="$BBIN/psql -X -q -h 127.0.0.1 -p $BPORT -U postgres -v ON_ERROR_STOP=1 -d postgres"
	${PSQLS[before]} -c "$SETUP" >/dev/null || fail "setup of $BEFORE"
	BUILDS="before after"
fi

declare -A MS
next=0
# one_run build case size: prints the statement's milliseconds
one_run() {
	local a=$((next + 1)) b=$((next + N)) stmt set=""
	next=$b
	case $2 in
	select) stmt="SELECT f($a, $b);" ;;
	do) stmt="DO \$\$ BEGIN INSERT INTO nested_kv SELECT g, repeat('v', 100) FROM generate_series($a, $b) g; END \$\$;" ;;
	esac
	[ "$3" = default ] || set="SET almanac.write_batch_size = '$3';"
	# shellcheck disable=SC2086
	printf '%s\n\\timing on\n%s\n' "$set" "$stmt" | ${PSQLS[$1]} 2>&1 |
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | grep . || fail "$1 $2 $3"
}

CASES=()
for size in $SIZES; do
	for build in $BUILDS; do
		for c in select do; do CASES+=("$build $c $size"); done
	done
done
for r in $(seq 1 "$RUNS"); do
	order=("${CASES[@]}")
	if [ $((r % 2)) -eq 0 ]; then
		order=()
		for ((i = ${#CASES[@]} - 1; i >= 0; i--)); do order+=("${CASES[$i]}"); done
	fi
	for c in "${order[@]}"; do
		# shellcheck disable=SC2086
		MS[$c]="${MS[$c]:-} $(one_run $c)"
	done
	echo "round $r done ($(cut -d' ' -f1-3 /proc/loadavg) load)"
done

echo
echo "| build | write_batch_size | SELECT f() s | DO block s | SELECT f() / DO | runs (s): SELECT f(); DO |"
echo "|---|---|---:|---:|---:|---|"
s() { awk '{ for (i = 1; i <= NF; i++) printf "%s%.2f", (i > 1 ? " " : ""), $i / 1000 }'; }
for size in $SIZES; do
	for build in $BUILDS; do
		sel=$(echo "${MS[$build select $size]}" | median)
		d=$(echo "${MS[$build do $size]}" | median)
		echo "| $build | $size | $(ratio "$sel" 1000) | $(ratio "$d" 1000) | $(ratio "$sel" "$d") | $(echo "${MS[$build select $size]}" | s); $(echo "${MS[$build do $size]}" | s) |"
	done
done
