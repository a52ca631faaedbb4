#!/usr/bin/env bash
# Ingest benchmark: logs/s and blocks/s of ingest_block (one block per
# transaction), ingest_blocks (batches of 100 blocks) and the ceiling
# (INSERT ... SELECT of the same rows already decoded, same tables and
# indexes).  Starts its own instance in .build/bench, generates BLOCKS blocks
# (150 txs, 400 logs each, fixed seed), runs RUNS rounds, prints medians of
# the wall time and of the backend's CPU time (steadier on a shared machine).
#
#   bench/ingest/run.sh            # BLOCKS=200 RUNS=3
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
run_as pg_ctl -D "$B/data" -l "$B/server.log" -o "-p $PORT" -w start >/dev/null
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

for run in $(seq "$RUNS"); do
	for mode in per_block batches ceiling; do
		"${PSQL[@]}" -c "CALL bench_reset()" -c "CHECKPOINT"
		IFS='|' read -r secs cpu < <("${PSQL[@]}" -Atc "CALL bench_$mode(NULL, NULL)")
		"${PSQL[@]}" -c "INSERT INTO bench_results SELECT $run, '$mode', $secs, $cpu,
			(SELECT count(*) FROM almanac.blocks), (SELECT count(*) FROM almanac.events)"
		echo "run $run $mode: $secs s, $cpu s CPU (load $(cut -d' ' -f1 /proc/loadavg))"
	done
done

echo
echo "ingest benchmark: $BLOCKS blocks of 150 txs / 400 logs, median of $RUNS runs"
"${PSQL[@]}" -P footer=off -c "
WITH m AS (
	SELECT mode, percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) AS secs,
		   percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu) AS cpu, max(blocks) AS blocks, max(logs) AS logs
	  FROM bench_results GROUP BY mode)
SELECT CASE mode WHEN 'per_block' THEN 'ingest_block, 1 block per call'
				 WHEN 'batches' THEN 'ingest_blocks, 100 blocks per call'
				 ELSE 'ceiling: INSERT ... SELECT decoded rows' END AS method,
	   round(secs::numeric, 2) AS seconds, round((blocks / secs)::numeric) AS blocks_per_s,
	   round((logs / secs)::numeric) AS logs_per_s,
	   round((100 * (SELECT secs FROM m WHERE mode = 'ceiling') / secs)::numeric) || ' %' AS of_ceiling,
	   round(cpu::numeric, 2) AS cpu_seconds,
	   round((100 * (SELECT cpu FROM m WHERE mode = 'ceiling') / cpu)::numeric) || ' %' AS cpu_of_ceiling
  FROM m ORDER BY array_position(ARRAY['per_block', 'batches', 'ceiling'], mode)"
