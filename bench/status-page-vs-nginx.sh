#!/bin/bash
# The status page under a flood of readers: wrk -t2 -c64 -d15s on /status and
# /api/v2/summary.json from Klaxon, and the same bytes as static files from nginx
# (2 workers, one per core), in one run. Klaxon has an open SEV-1 with a public update.
# Needs: cargo build --release; wrk; nginx (Debian nginx-light).
set -eu
cd "$(dirname "$0")/.."
BIN=${KLAXON_BIN:-$PWD/target/release/klaxon}
TOKEN=kx_bench_admin_token_0123456789
DIR=$(mktemp -d /tmp/kx-status-bench.XXXX)
cat > "$DIR/klaxon.yaml" <<YAML
auth: {rate_limit_per_second: 0}
status_page:
  name: Acme Status
  url: http://127.0.0.1:18090
  components:
    - {id: api, name: Public API, group: Core platform}
    - {id: auth, name: Login, group: Core platform}
    - {id: web, name: Website}
    - {id: search, name: Search}
YAML
KLAXON_ADMIN_TOKEN=$TOKEN KLAXON_LOG=warn "$BIN" serve --listen 127.0.0.1:18090 \
  --database-url "sqlite://$DIR/k.db" --config "$DIR/klaxon.yaml" > "$DIR/serve.log" 2>&1 &
KPID=$!
trap 'kill $KPID 2>/dev/null; [ -f "$DIR/nginx.pid" ] && kill "$(cat "$DIR/nginx.pid")" 2>/dev/null; true' EXIT
sleep 2
export KLAXON_URL=http://127.0.0.1:18090 KLAXON_TOKEN=$TOKEN
ID=$("$BIN" incident declare --json --title "Checkout unavailable" --severity SEV-1 --service api | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$BIN" incident post-update "$ID" "Payments fail for all customers. We are rolling back the 13:55 deploy." --public --status identified > /dev/null
sleep 2
mkdir -p "$DIR/www/status" "$DIR/www/api/v2"
curl -sf http://127.0.0.1:18090/status > "$DIR/www/status/index.html"
curl -sf http://127.0.0.1:18090/api/v2/summary.json > "$DIR/www/api/v2/summary.json"
cat > "$DIR/nginx.conf" <<NGINX
worker_processes 2;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  types { text/html html; application/json json; }
  server {
    listen 127.0.0.1:18091;
    root $DIR/www;
    location = /status { default_type text/html; try_files /status/index.html =404; }
  }
}
NGINX
nginx -c "$DIR/nginx.conf"
sleep 1
printf '%-9s %-22s %10s %9s %9s\n' server path req/s p50 p99
run() { # server url
  wrk -t2 -c64 -d15s --latency "$2" | awk -v s="$1" -v p="${2#http://127.0.0.1:*/}" '
    /Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2}
    END {printf "%-9s %-22s %10s %9s %9s\n", s, "/" p, rps, p50, p99}'
}
for path in status api/v2/summary.json; do
  run klaxon "http://127.0.0.1:18090/$path"
  run nginx "http://127.0.0.1:18091/$path"
done
echo "bytes: /status $(wc -c < "$DIR/www/status/index.html"), summary.json $(wc -c < "$DIR/www/api/v2/summary.json")"
