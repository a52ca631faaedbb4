#!/usr/bin/env bash
# bench/values/run.sh: what decoding stored values costs a full scan, per
# row shape, for one or more checkouts (to compare two value formats).
#
#   bench/values/run.sh /work/main [/path/to/other/checkout ...]
#
# Each checkout must have its private PostgreSQL tree built (`make test` or
# `make demo` in it builds .build/pg).  For each, a temporary instance loads
# 200,000 rows into three foreign tables, then times `SELECT count(*)` over
# a full scan of each (every value is read and decoded; nothing is rendered),
# best of RUNS (15) scans:
#   plain  (id int, payload bytea (64 bytes), note text (32), n bigint)
#   arr    (id int, ints int4[] (10), texts text[] (3, one NULL), n bigint)
#   comp   (id int, r ref, rs ref[] (2), n bigint), ref = (tx text, idx int)
#   json   (id int, doc jsonb (an object of 4 keys, an array nested), n bigint)
# Run as root (the instance runs as the account `make test` uses).
set -euo pipefail
RUNS=${RUNS:-15}
RUN_USER=${ALMANAC_RUN_USER:-almanac}
port=55491
for ROOT in "$@"; do
	ROOT=$(cd "$ROOT" && pwd)
	BIN=$(ls -d "$ROOT"/.build/pg/usr/lib/postgresql/*/bin | head -1)
	D=$(mktemp -d /tmp/almanac-values-XXXXXX)
	chmod 755 "$D"
	chown "$RUN_USER" "$D"
	run() { runuser -u "$RUN_USER" -- env PATH="$BIN:$PATH" "$@"; }
	run initdb -D "$D/pg" -A trust >/dev/null
	cat >>"$D/pg/postgresql.conf" <<CONF
shared_preload_libraries = 'almanac'
port = $port
unix_socket_directories = '$D'
max_prepared_transactions = 0
CONF
	run pg_ctl -D "$D/pg" -l "$D/log" -w start >/dev/null
	P="psql -h $D -p $port -d postgres -qAtX"
	run $P -c "CREATE EXTENSION almanac" \
		-c "CREATE TYPE ref AS (tx text, idx int)" \
		-c "CREATE FOREIGN TABLE plain (id int, payload bytea, note text, n bigint) SERVER almanac_store OPTIONS (key_prefix 'p', key_columns 'id')" \
		-c "CREATE FOREIGN TABLE arr (id int, ints int4[], texts text[], n bigint) SERVER almanac_store OPTIONS (key_prefix 'a', key_columns 'id')" \
		-c "CREATE FOREIGN TABLE comp (id int, r ref, rs ref[], n bigint) SERVER almanac_store OPTIONS (key_prefix 'c', key_columns 'id')" \
		-c "CREATE FOREIGN TABLE json (id int, doc jsonb, n bigint) SERVER almanac_store OPTIONS (key_prefix 'j', key_columns 'id')" \
		-c "INSERT INTO plain SELECT i, decode(repeat(md5(i::text), 2), 'hex'), md5(i::text), i FROM generate_series(1, 200000) i" \
		-c "INSERT INTO arr SELECT i, ARRAY[i, i+1, i+2, i+3, i+4, i+5, i+6, i+7, i+8, i+9], ARRAY[md5(i::text), 'x', NULL], i FROM generate_series(1, 200000) i" \
		-c "INSERT INTO comp SELECT i, ROW(md5(i::text), i)::ref, ARRAY[ROW('a', 1)::ref, ROW(md5(i::text), i)::ref], i FROM generate_series(1, 200000) i" \
		-c "INSERT INTO json SELECT i, jsonb_build_object('block', i, 'hash', md5(i::text), 'ok', true, 'topics', jsonb_build_array(md5(i::text), i * 1.5)), i FROM generate_series(1, 200000) i" \
		-c "CHECKPOINT"
	for t in plain arr comp json; do
		best=$(for i in $(seq "$RUNS"); do
			run $P -c '\timing on' -c "SELECT count(*) FROM (SELECT $t.* FROM $t OFFSET 0) s" |
				sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
		done | sort -n | head -1)
		echo "$ROOT $t $best ms"
	done
	run pg_ctl -D "$D/pg" -w stop -m fast >/dev/null
	rm -rf "$D"
	port=$((port + 1))
done
