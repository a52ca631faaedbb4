#!/usr/bin/env bash
# bench/stall/run.sh: the longest commits of small foreign writes, and what
# the store owner was doing meanwhile, in one scratch instance.
#
#   T=60 C=8 WAL=16MB PAD=1000 bench/stall/run.sh
#
#   T     seconds of pgbench
#   C     clients
#   WAL   the store's max_total_wal_size (the owner flushes every column
#         family once that much is written)
#   PAD   bytes of padding per row (the log grows by about that per commit)
#   CONF  extra postgresql.conf lines
#   STRACE 1: the owner's fsync/fdatasync calls, per thread, with their
#         durations, in strace.txt (10 s from 5 s in)
#   SAMPLE 1: wait events of the clients and the owner every ~5 ms (10 s)
#   PERF  1: system-wide perf with call graphs for 8 s from 5 s in
#   HEAP  1: the same load on a heap table instead (the baseline: what the
#         machine's own stalls cost a commit, PostgreSQL's WAL flush among them)
#
# Each transaction is one INSERT of a random key (upsert) into a foreign
# table.  Prints pgbench's summary, the commit latency percentiles and
# maximum from its per-transaction log, the owner's slow steps from the
# server log ("almanac stall:", when the owner logs them) and the store's
# commit_stats.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../../test/scripts/common.sh"
source "$HERE/../lib.sh"

T=${T:-60}
C=${C:-8}
WAL=${WAL:-16MB}
PAD=${PAD:-1000}
NAME=${NAME:-bench-stall}
CMDLINE="T=$T C=$C WAL=$WAL PAD=$PAD HEAP=${HEAP:-0} bench/stall/run.sh"

bench_start "$NAME" 54400 "${CONF:-}"
echo "# $CMDLINE"
"${PSQL[@]}" <<SQL || fail "setup"
CREATE EXTENSION almanac;
CREATE SERVER stall FOREIGN DATA WRAPPER almanac_rocksdb
	OPTIONS (path 'almanac/stall', max_total_wal_size '$WAL');
CREATE FOREIGN TABLE kv (k bigint, v bigint, pad text)
	SERVER stall OPTIONS (key_prefix 'kv', key_columns 'k', upsert 'true');
INSERT INTO kv VALUES (0, 0, '');
CREATE TABLE heap (k bigint PRIMARY KEY, v bigint, pad text);
SQL
if [ "${HEAP:-0}" = 1 ]; then
	cat >"$OUT/insert.sql" <<SQL
\set k random(1, 1000000)
INSERT INTO heap VALUES (:k, 1, repeat('x', $PAD)) ON CONFLICT (k) DO UPDATE SET v = heap.v + 1, pad = excluded.pad;
SQL
else
	cat >"$OUT/insert.sql" <<SQL
\set k random(1, 1000000)
INSERT INTO kv VALUES (:k, 1, repeat('x', $PAD));
SQL
fi
chmod a+r "$OUT/insert.sql"
OWNER=$("${PSQL[@]}" -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'almanac store owner'" | head -1)
echo "# owner pid $OWNER; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$OWNER" >"$OUT/owner.pid"
if [ "${SAMPLE:-0}" = 1 ]; then
	# wait events of the clients and the owner every ~5 ms, from 5 s in, for 10 s
	"${PSQL[@]}" -c "CREATE UNLOGGED TABLE samples (t timestamptz, pid int, btype text, state text, wet text, we text)"
	(sleep 5; "${PSQL[@]}" -c "DO \$\$ BEGIN FOR i IN 1..2000 LOOP PERFORM pg_stat_clear_snapshot();
		INSERT INTO samples SELECT clock_timestamp(), pid, backend_type, state, wait_event_type, wait_event
		FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type IN ('client backend', 'almanac store owner');
		PERFORM pg_sleep(0.004); EXIT WHEN clock_timestamp() > statement_timestamp() + interval '10 s'; END LOOP; END \$\$") &
fi
if [ "${STRACE:-0}" = 1 ]; then
	# the owner's syncs, every thread of it, from 5 s in, for 10 s: which
	# thread waits for the disk, and how long
	(sleep 5; timeout -s INT 10 strace -f -tt -T -e trace=fsync,fdatasync -p "$OWNER" -o "$OUT/strace.txt" >/dev/null 2>&1) &
fi
if [ "${PERF:-0}" = 1 ]; then
	# every process's stacks, on CPU and at each switch off it, from 5 s in, for 8 s
	(sleep 5; python3 -c "import time; print(time.time() - time.monotonic())" >"$OUT/clock.txt"; perf record -q -a -g -e cpu-clock -e sched:sched_switch -o "$OUT/perf.data" -- sleep 8 >/dev/null 2>&1) &
fi
(cd "$OUT" && "$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n -M prepared \
	-c "$C" -j "$C" -T "$T" -P 10 -l --log-prefix=tx -f insert.sql postgres) >"$OUT/pgbench.log" 2>&1 ||
	fail "pgbench: $(tail -n 3 "$OUT/pgbench.log")"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E '^(tps|latency|number of transactions actually)' "$OUT/pgbench.log"
# per-transaction log: client tx_no time_us script_no epoch epoch_us
cat "$OUT"/tx.* | awk '{ print $3 }' | sort -n | awk '
	{ v[NR] = $1 }
	END { printf "commits %d: p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms; over 100 ms: ", NR,
		v[int(NR * 0.5)] / 1000, v[int(NR * 0.99)] / 1000, v[int(NR * 0.999)] / 1000, v[NR] / 1000;
		n = 0; for (i = 1; i <= NR; i++) if (v[i] > 100000) n++; print n }'
echo "# owner steps over 20 ms (server log)"
grep -o 'almanac stall: .*' "$OUT/server.log" | sed 's/ [0-9.]* ms$//' | sort | uniq -c | sort -rn | head -20
grep -o 'almanac stall: .*' "$OUT/server.log" | sort -t' ' -k4 -g | awk '{ print $NF, $0 }' | sort -g | tail -8 | cut -d' ' -f2-
"${PSQL[@]}" -c "SELECT * FROM almanac.commit_stats('stall')"
if [ "${STRACE:-0}" = 1 ]; then
	echo "# the owner's syncs (strace -f -T): thread, calls, total and longest seconds"
	awk -v main="$OWNER" '/(fsync|fdatasync)\(/ { t = $NF; gsub(/[<>]/, "", t); who = ($1 == main) ? "owner thread" : "other threads"; if ($1 != main) tids[$1] = 1;
		n[who]++; s[who] += t; if (t > m[who]) m[who] = t }
		END { for (w in n) printf "%s: %d calls, %.3f s in all, longest %.3f s\n", w, n[w], s[w], m[w];
			k = 0; for (t in tids) k++; printf "(other threads: %d distinct: RocksDB'"'"'s flush and compaction threads, and one per durable point with the fix)\n", k }' "$OUT/strace.txt"
fi
if [ "${SAMPLE:-0}" = 1 ]; then
	wait
	"${PSQL[@]}" -c "\\copy samples to '$OUT/samples.txt'"
fi
