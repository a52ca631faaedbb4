#!/usr/bin/env bash
# make test: pg_regress, isolation and TAP suites, each against temporary
# instances it starts and stops itself, with almanac preloaded.  Exits non-zero
# if any suite fails; the last lines are pg_regress's and prove's summaries.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

setup_run_user
build_private_tree

OUT=$ALMANAC_ROOT/.build/test
rm -rf "$OUT"
make_user_dir "$OUT"
cd "$ALMANAC_ROOT"

status=0
summaries=()

# pg_regress: sql/*.sql against expected/*.out
if run_as "$PGXS_DIR/src/test/regress/pg_regress" \
	--temp-instance="$OUT/regress/instance" \
	--temp-config="$ALMANAC_ROOT/test/almanac.conf" \
	--bindir="$PGBIN" \
	--inputdir="$ALMANAC_ROOT" \
	--outputdir="$OUT/regress" \
	--dbname=contrib_regression \
	${REGRESS:?} >"$OUT/regress.log" 2>&1; then
	cat "$OUT/regress.log"
else
	cat "$OUT/regress.log"
	status=1
	[ ! -f "$OUT/regress/regression.diffs" ] || cat "$OUT/regress/regression.diffs"
fi
summaries+=("pg_regress: $(grep -E 'tests (passed|failed)|All [0-9]+ tests passed|failed \(ignoring' "$OUT/regress.log" | tail -n 1 | tr -s ' =')")

# isolation: test/isolation/specs/*.spec against test/isolation/expected/*.out
if [ -n "${ISOLATION_SPECS:-}" ]; then
	if run_as "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
		--temp-instance="$OUT/isolation/instance" \
		--temp-config="$ALMANAC_ROOT/test/almanac.conf" \
		--bindir="$PGBIN" \
		--inputdir="$ALMANAC_ROOT/test/isolation" \
		--outputdir="$OUT/isolation" \
		--dbname=isolation_regression \
		$ISOLATION_SPECS >"$OUT/isolation.log" 2>&1; then
		cat "$OUT/isolation.log"
	else
		cat "$OUT/isolation.log"
		status=1
		[ ! -f "$OUT/isolation/regression.diffs" ] || cat "$OUT/isolation/regression.diffs"
	fi
	summaries+=("isolation: $(grep -E 'tests (passed|failed)|All [0-9]+ tests passed' "$OUT/isolation.log" | tail -n 1 | tr -s ' =')")
fi

# TAP: test/t/*.pl with PostgreSQL's own test modules (TAP_TESTS picks
# some, as in `make test REGRESS=fdw ISOLATION_SPECS= TAP_TESTS=test/t/000_deps.pl`)
read -r -a tap_tests <<<"${TAP_TESTS-$(echo test/t/*.pl)}"
if [ ${#tap_tests[@]} -gt 0 ]; then
	make_user_dir "$OUT/tap"
	if ! run_as env TESTDIR="$OUT/tap" PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
		ALMANAC_ROOT="$ALMANAC_ROOT" ALMANAC_PG_INCLUDEDIR="$("$PG_CONFIG" --includedir)" \
		prove -I "$PGXS_DIR/src/test/perl" -I "$ALMANAC_ROOT/test" "${tap_tests[@]}" >"$OUT/tap.log" 2>&1; then
		status=1
	fi
	cat "$OUT/tap.log"
fi

echo
echo "== summary =="
for s in "${summaries[@]}"; do
	echo "$s"
done
if [ ${#tap_tests[@]} -gt 0 ]; then
	grep -E '^(Files=|Result:)' "$OUT/tap.log" || echo "prove: no result"
fi
exit $status
