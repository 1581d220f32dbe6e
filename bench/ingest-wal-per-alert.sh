#!/bin/bash
# PostgreSQL WAL written per alert accepted and applied: a fresh database, a
# CHECKPOINT, then `klaxon bench ingest` for DURATION (default 10s) at batch
# BATCH (default 1) with 32 connections; prints alerts, WAL bytes and bytes per alert.
# Needs: cargo build --release; PostgreSQL on 127.0.0.1 (trust).
set -eu
cd "$(dirname "$0")/.."
BIN=${KLAXON_BIN:-$PWD/target/release/klaxon}
TOKEN=kx_bench_admin_token_0123456789
PSQL="psql -h 127.0.0.1 -U postgres -At"
printf 'ingest:\n  rate_limit_per_second: 0\nauth:\n  rate_limit_per_second: 0\n' > /tmp/kx-wal.yaml
pkill -f "serve --listen 127.0.0.1:18081" 2>/dev/null || true; sleep 1
$PSQL -qc "DROP DATABASE IF EXISTS kx_wal" -c "CREATE DATABASE kx_wal"
KLAXON_ADMIN_TOKEN=$TOKEN KLAXON_LOG=warn $BIN serve --listen 127.0.0.1:18081 \
  --database-url postgres://postgres@127.0.0.1/kx_wal --config /tmp/kx-wal.yaml > /tmp/serve-wal.log 2>&1 &
PID=$!; trap 'kill $PID 2>/dev/null' EXIT; sleep 2
$PSQL -qc "CHECKPOINT"
L0=$($PSQL -c "SELECT pg_current_wal_lsn()")
$BIN bench ingest --url http://127.0.0.1:18081 --token $TOKEN --format alertmanager --batch ${BATCH:-1} \
  --connections 32 --duration ${DURATION:-10s} > /tmp/kx-wal-out.txt 2>&1
sleep 1
L1=$($PSQL -c "SELECT pg_current_wal_lsn()")
N=$(grep -oE " alerts=[0-9]+" /tmp/kx-wal-out.txt | head -1 | cut -d= -f2)
B=$($PSQL -c "SELECT pg_wal_lsn_diff('$L1', '$L0')::bigint")
echo "alerts=$N wal_bytes=$B bytes_per_alert=$(( B / N ))"
