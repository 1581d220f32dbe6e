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
# A server left on the port would take the load instead.
pkill -f "serve --listen 127.0.0.1:18080" 2>/dev/null; sleep 1
for db in sqlite postgres; do
  for batch in 1 100; do
    if [ $db = sqlite ]; then rm -f /tmp/kx-ing.db*; URL=sqlite:///tmp/kx-ing.db; else
      psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS kx_ing" -c "CREATE DATABASE kx_ing" 2>/dev/null; URL=postgres://postgres@127.0.0.1/kx_ing; fi
    KLAXON_ADMIN_TOKEN=$TOKEN KLAXON_LOG=warn $BIN serve --listen 127.0.0.1:18080 --database-url $URL --config /tmp/kx-bench.yaml > /tmp/serve-$db.log 2>&1 &
    PID=$!; sleep 2
    echo "== $db batch $batch"
    $BIN bench ingest --url http://127.0.0.1:18080 --token $TOKEN --format alertmanager --batch $batch --connections 32 --duration ${DURATION:-20s} --compare-alertmanager --rounds ${ROUNDS:-3} 2>&1 | grep -E "^klaxon|^alertmanager|ratio|^median|^[0-9]{3} |[Ee]rror"
    kill $PID; wait $PID 2>/dev/null
  done
done
