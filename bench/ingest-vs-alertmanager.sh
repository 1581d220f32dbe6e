#!/bin/bash
# Klaxon's durable ingest against Alertmanager's in-memory POST /api/v2/alerts, with the
# same load generator: SQLite and PostgreSQL, batch 1 and 100, 32 connections, 20 s each,
# alternating Klaxon and Alertmanager for ROUNDS rounds (default 3) and printing the medians.
# Needs: cargo build --release; prometheus-alertmanager; PostgreSQL on 127.0.0.1 (trust).
set -u
cd "$(dirname "$0")/.."
BIN=${KLAXON_BIN:-$PWD/target/release/klaxon}
TOKEN=kx_bench_admin_token_0123456789
printf 'ingest:\n  rate_limit_per_second: 0\nauth:\n  rate_limit_per_second: 0\n' > /tmp/kx-bench.yaml
# CPU time (clock ticks) of every PostgreSQL process on this machine so far.
pg_cpu_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" { t += $14 + $15 } END { print t + 0 }'; }
# WAL bytes, flushes and ms spent flushing, so far (pg_stat_wal; the time stays 0
# unless track_wal_io_timing is on, see docs/operations.md).
pg_wal() { psql -h 127.0.0.1 -U postgres -Atc "SELECT wal_bytes, wal_sync, wal_sync_time FROM pg_stat_wal" 2>/dev/null | tr '|' ' '; }
# A server left on the port would take the load instead.
pkill -f "serve --listen 127.0.0.1:18080" 2>/dev/null; sleep 1
for db in sqlite postgres; do
  for batch in 1 100; do
    if [ $db = sqlite ]; then rm -f /tmp/kx-ing.db*; URL=sqlite:///tmp/kx-ing.db; else
      psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS kx_ing" -c "CREATE DATABASE kx_ing" 2>/dev/null; URL=postgres://postgres@127.0.0.1/kx_ing; fi
    KLAXON_ADMIN_TOKEN=$TOKEN KLAXON_LOG=warn $BIN serve --listen 127.0.0.1:18080 --database-url $URL --config /tmp/kx-bench.yaml > /tmp/serve-$db.log 2>&1 &
    PID=$!; sleep 2
    echo "== $db batch $batch"
    PG0=$(pg_cpu_ticks); WAL0=$(pg_wal)
    $BIN bench ingest --url http://127.0.0.1:18080 --token $TOKEN --format alertmanager --batch $batch --connections 32 --duration ${DURATION:-20s} --compare-alertmanager --rounds ${ROUNDS:-3} 2>&1 | tee /tmp/kx-bench-out.txt | grep -E "^klaxon|^alertmanager|ratio|^median|^[0-9]{3} |[Ee]rror"
    if [ $db = postgres ]; then
      # PostgreSQL works only for Klaxon's loads (Alertmanager keeps its alerts in
      # memory): its CPU over the whole run, per alert Klaxon was sent, comes on
      # top of Klaxon's server CPU per alert.
      ALERTS=$(grep -E "^klaxon \(" /tmp/kx-bench-out.txt | grep -oE " alerts=[0-9]+" | cut -d= -f2 | paste -sd+ | bc)
      awk -v t=$(( $(pg_cpu_ticks) - PG0 )) -v hz=$(getconf CLK_TCK) -v n=${ALERTS:-0} \
        'BEGIN { if (n > 0) printf "postgresql CPU               %.2fs of CPU: %.1f µs per klaxon alert\n", t / hz, t / hz * 1e6 / n }'
      # Its WAL too: bytes per alert, and the flushes (each journal commit's) with
      # their mean time, which sets the pace at batch 1.
      SECS=$(grep -E "^klaxon \(" /tmp/kx-bench-out.txt | grep -oE " duration=[0-9.]+" | cut -d= -f2 | paste -sd+ | bc)
      echo "$WAL0 $(pg_wal)" | awk -v n=${ALERTS:-0} -v secs=${SECS:-0} '
        NF == 6 && n > 0 && secs > 0 {
          flushes = $5 - $2; ms = $6 - $3
          printf "postgresql WAL               %.0f bytes per klaxon alert; %.0f flushes/s", ($4 - $1) / n, flushes / secs
          if (ms > 0 && flushes > 0) printf ", %.0f µs each", ms * 1000 / flushes; else printf " (flush time: track_wal_io_timing is off)"
          printf "\n" }'
    fi
    kill $PID; wait $PID 2>/dev/null
  done
done
