#!/usr/bin/env bash
# Ingest benchmark: logs/s and blocks/s of ingest_block (one block per
# transaction), ingest_blocks (batches of 100 blocks) and the ceiling
# (INSERT ... SELECT of the same rows already decoded, same tables and
# indexes).  Starts its own instance in .build/bench, generates BLOCKS blocks
# (150 txs, 400 logs each, fixed seed), runs RUNS rounds, prints medians of
# the wall time and of the backend's CPU time (steadier on a shared machine).
# Each method runs with the mirrors of the core tables on (the default after
# CREATE EXTENSION) and off (almanac.disable_mirror), the two in turn, which
# first in odd runs and second in even ones; the first table is with mirrors
# on, the second compares the two (median of the runs' on/off ratios), with
# where the difference goes: the backend's time off CPU per block (wall
# minus CPU: with mirrors on, mostly waiting for the store owner to apply the
# mirrors' writes, at each send and at the commit) and the owner's CPU per
# block (bench_owner_cpu: the owner is another process).
#
# Every run starts from the same state, planner's included.  The instance
# runs without autovacuum, so the ingest tables never have statistics and
# their size is never measured: after the reset's TRUNCATE (relpages 0,
# reltuples -1) each run's backend plans its ingest statements and its
# foreign-key checks on "never vacuumed", and keeps those plans (index
# scans, as on tables of a real chain's size) for the whole run.  With
# autovacuum on, an ANALYZE that lands in the first seconds of a run (a few
# blocks stored) invalidates those plans and replans them for a table of a
# few rows: each transaction's and each log's foreign-key check on
# almanac.blocks becomes a sequential scan of all the blocks stored so far,
# 11 million rows read for 200 blocks, 1.0 to 1.5 s more backend CPU (an
# ANALYZE forced 0.7 s into the run); statistics left by an earlier run
# (TRUNCATE keeps them) can do the same, and turn two of _ingest's lookups
# into scans.
# Whether and when that happened depended on the autovacuum launcher's
# clock, which made runs after an instance's first dearer in every build
# (docs/benchmarks.md).  Each run line shows the rows the run read by
# sequential scans of the almanac tables: a few (almanac.mirrors, 4 rows)
# when the plans were the same, millions when they were not.
#
#   bench/ingest/run.sh            # BLOCKS=200 RUNS=3, about two minutes
source "$(dirname "${BASH_SOURCE[0]}")/../../test/scripts/common.sh"
BLOCKS=${BLOCKS:-200}
RUNS=${RUNS:-3}
B=$ALMANAC_ROOT/.build/bench
setup_run_user
build_private_tree
make_user_dir "$B"
if [ ! -f "$B/data/PG_VERSION" ]; then
	run_as initdb -D "$B/data" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$B/initdb.log"
	cat >>"$B/data/postgresql.conf" <<CONF
shared_preload_libraries = 'almanac'
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
shared_buffers = 512MB
max_wal_size = 4GB
checkpoint_timeout = 30min
CONF
fi
PORT=$(free_port 55432)
# without autovacuum (see above): on the command line, so that an instance
# made by an earlier version of this script gets it too
run_as pg_ctl -D "$B/data" -l "$B/server.log" -o "-p $PORT -c autovacuum=off" -w start >/dev/null
trap 'run_as pg_ctl -D "$B/data" stop -m fast >/dev/null' EXIT
PSQL=("$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -d postgres)

python3 "$ALMANAC_ROOT/bench/ingest/gen_blocks.py" --blocks "$BLOCKS" --seed 1 >"$B/blocks.jsonl"
chmod o+r "$B/blocks.jsonl"
"${PSQL[@]}" -c "DROP EXTENSION IF EXISTS almanac CASCADE" -c "CREATE EXTENSION almanac" \
	-c "DROP TABLE IF EXISTS bench_raw, bench_src" \
	-c "CREATE TABLE bench_raw (j jsonb)" \
	-c "COPY bench_raw FROM '$B/blocks.jsonl'" \
	-c "CREATE TABLE bench_src AS SELECT row_number() OVER (ORDER BY (j #>> '{block,number}')) - 1 AS n, j->'block' AS block, j->'receipts' AS receipts FROM bench_raw" \
	-c "DROP TABLE bench_raw" -c "VACUUM ANALYZE bench_src"
"${PSQL[@]}" -f "$ALMANAC_ROOT/bench/ingest/bench.sql"

# mirrors: on or off for the core tables that have one (issue 14); before the
# router exists both runs are the same
MIRRORS=$("${PSQL[@]}" -Atc "SELECT to_regproc('almanac.enable_mirror') IS NOT NULL")
[ "$MIRRORS" = t ] || echo "mirrors: not built (no function almanac.enable_mirror): 'on' and 'off' run the same code"
set_mirrors() { # on|off, after bench_reset: enabling backfills empty tables
	local f t
	[ "$MIRRORS" = t ] || return 0
	if [ "$1" = on ]; then f=enable_mirror; else f=disable_mirror; fi
	# every mirror (almanac.mirrors: blocks, transactions, account_states, events)
	"${PSQL[@]}" -Atc "SELECT almanac.$f(relid) FROM almanac.mirrors" >/dev/null
}

# Each run writes keys the store has never held, as a follower writing new
# blocks does: the mirrors get column families of their own for the run.
# Without this every run after the first re-ingests the keys the reset's
# TRUNCATE erased (an erased key keeps its version list until it is pruned),
# and the owner's merge of each new version reads that list, mostly from disk:
# measured (perf, BLOCKS=50) as three quarters of the owner's time and a third
# of all the CPU of ingest_block with mirrors on.  The mirrors' own column
# families are reserved (almanac.drop_column_family refuses them), so each
# run points almanac.mirrors at new ones, bench.<name>.<n> (enable_mirror
# creates them), and drops those of the run before.
FRESH=0
fresh_mirrors() {
	[ "$MIRRORS" = t ] || return 0
	FRESH=$((FRESH + 1))
	"${PSQL[@]}" -Atc "SELECT almanac.disable_mirror(relid) FROM almanac.mirrors" \
		-c "UPDATE almanac.mirrors
			   SET column_family = 'bench.' || regexp_replace(column_family, '^bench[.](.*)[.][0-9]+\$', '\\1') || '.$FRESH'" \
		-c "SELECT almanac.drop_column_family(c.column_family) FROM almanac.column_families() c
			 WHERE c.column_family LIKE 'bench.%'
			   AND NOT EXISTS (SELECT FROM almanac.mirrors m WHERE m.column_family = c.column_family)" >/dev/null
}

for run in $(seq "$RUNS"); do
	if [ $((run % 2)) = 1 ]; then order="on off"; else order="off on"; fi
	for mirrors in $order; do
		for mode in per_block batches ceiling; do
			# reset with the mirrors as they are (TRUNCATE empties an enabled mirror), then set them
			"${PSQL[@]}" -c "CALL bench_reset()"
			fresh_mirrors
			set_mirrors "$mirrors"
			"${PSQL[@]}" -c "CHECKPOINT"
			owner0=$("${PSQL[@]}" -Atc "SELECT bench_owner_cpu()")
			seq0=$("${PSQL[@]}" -Atc "SELECT bench_seq_rows()")
			IFS='|' read -r secs cpu < <(PGAPPNAME=bench_run "${PSQL[@]}" -Atc "CALL bench_$mode(NULL, NULL)")
			owner=$("${PSQL[@]}" -Atc "SELECT round((bench_owner_cpu() - $owner0)::numeric, 2)")
			# a backend reports its table statistics as it exits, before it
			# leaves pg_stat_activity
			until [ "$("${PSQL[@]}" -Atc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bench_run'")" = 0 ]; do
				sleep 0.1
			done
			seq=$("${PSQL[@]}" -Atc "SELECT bench_seq_rows() - $seq0")
			"${PSQL[@]}" -c "INSERT INTO bench_results SELECT $run, '$mode', '$mirrors', $secs, $cpu,
				(SELECT count(*) FROM almanac.blocks), (SELECT count(*) FROM almanac.events), $owner"
			echo "run $run $mode, mirrors $mirrors: $secs s, $cpu s CPU, owner $owner s CPU, $seq rows read by seq scans (load $(cut -d' ' -f1 /proc/loadavg))"
		done
	done
done
set_mirrors on

echo
echo "ingest benchmark: $BLOCKS blocks of 150 txs / 400 logs, median of $RUNS runs, mirrors on"
"${PSQL[@]}" -P footer=off -c "
WITH m AS (
	SELECT mode, percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) AS secs,
		   percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu) AS cpu, max(blocks) AS blocks, max(logs) AS logs
	  FROM bench_results WHERE mirrors = 'on' GROUP BY mode)
SELECT CASE mode WHEN 'per_block' THEN 'ingest_block, 1 block per call'
				 WHEN 'batches' THEN 'ingest_blocks, 100 blocks per call'
				 ELSE 'ceiling: INSERT ... SELECT decoded rows' END AS method,
	   round(secs::numeric, 2) AS seconds, round((blocks / secs)::numeric) AS blocks_per_s,
	   round((logs / secs)::numeric) AS logs_per_s,
	   round((100 * (SELECT secs FROM m WHERE mode = 'ceiling') / secs)::numeric) || ' %' AS of_ceiling,
	   round(cpu::numeric, 2) AS cpu_seconds,
	   round((100 * (SELECT cpu FROM m WHERE mode = 'ceiling') / cpu)::numeric) || ' %' AS cpu_of_ceiling
  FROM m ORDER BY array_position(ARRAY['per_block', 'batches', 'ceiling'], mode)"

echo
echo "mirrors on against off: blocks/s (medians of $RUNS runs) and the median of the runs' on/off ratios, with their range; goal: on >= 75 % of off"
"${PSQL[@]}" -P footer=off -c "
WITH r AS (
	SELECT a.run, a.mode, a.blocks / a.secs AS on_bps, b.blocks / b.secs AS off_bps,
		   b.secs / a.secs AS ratio, b.cpu / a.cpu AS cpu_ratio,
		   1000 * (a.secs - a.cpu) / a.blocks AS on_wait_ms, 1000 * (b.secs - b.cpu) / b.blocks AS off_wait_ms,
		   1000 * a.owner_cpu / a.blocks AS owner_ms
	  FROM bench_results a JOIN bench_results b USING (run, mode)
	 WHERE a.mirrors = 'on' AND b.mirrors = 'off')
SELECT CASE mode WHEN 'per_block' THEN 'ingest_block, 1 block per call'
				 WHEN 'batches' THEN 'ingest_blocks, 100 blocks per call'
				 ELSE 'ceiling: INSERT ... SELECT decoded rows' END AS method,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY off_bps)::numeric) AS off_blocks_per_s,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY on_bps)::numeric) AS on_blocks_per_s,
	   round((100 * percentile_cont(0.5) WITHIN GROUP (ORDER BY ratio))::numeric) || ' % ('
		   || round((100 * min(ratio))::numeric) || '-' || round((100 * max(ratio))::numeric) || ')' AS on_of_off,
	   round((100 * percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu_ratio))::numeric) || ' %' AS cpu_on_of_off,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY on_wait_ms)::numeric, 1) || ' / '
		   || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY off_wait_ms)::numeric, 1) AS off_cpu_ms_per_block_on_off,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY owner_ms)::numeric, 1) AS owner_cpu_ms_per_block
  FROM r GROUP BY mode ORDER BY array_position(ARRAY['per_block', 'batches', 'ceiling'], mode)"
