#!/usr/bin/env bash
# Slow and hostile clients against normal ones (issue 18), on the release build: wrk's p99 on an authenticated
# list (API key, 20 items) alone, then while bench/slowloris.py holds 1,000 slowloris connections (from 2
# loopback addresses, each above the per-IP cap of 256) and sends header bombs (64 KiB) and body bombs
# (8 MiB announced, no credentials) in a loop. Prints both p99s and their ratio, and what the hostile
# clients met (per-IP caps, 431, 413, closes).
# Run by hand as root; results go to docs/benchmarks.md. Usage: bench/slowloris.sh [seconds=10] [slow=1000]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh
dur=${1:-10}
slow=${2:-1000}
conns=32

bench_prepare
bench_start_mariadb
cat >"$tmp/c.json" <<JSON
{ "server": {"port": 0, "threads": 2, "read_timeout_ms": 15000, "max_connections_per_ip": 256},
  "database": {"port": $dbport, "user": "bench", "name": "bench", "password_env": "BENCH_DB_PW", "pool_size": 4},
  "rate_limits": {"auth_per_minute": 0, "api_per_minute": 0, "unauthenticated_per_minute": 0},
  "issuance": {"workers": 0, "renewal_check_seconds": 0},
  "log": {"level": "warn"} }
JSON
key=$(bench_user_key 'certificates:*[read]')
bench_start_server
api="http://127.0.0.1:$port"
run() { run_wrk -H "Authorization: Bearer $key" "$api/apiv1/me/certificates?limit=20"; }
echo "wrk -t2 -c$conns -d${dur}s on the authenticated list; server, MariaDB, wrk and the hostile client share $(nproc) cores"
read -r r0 p50_0 p99_0 bad0 <<<"$(run)"
echo "alone: $r0 req/s, p50 $p50_0 ms, p99 $p99_0 ms, non-2xx $bad0"
python3 bench/slowloris.py "$port" "$slow" 2 >"$tmp/hostile.log" 2>&1 &
hostile=$!
sleep 3
read -r r1 p50_1 p99_1 bad1 <<<"$(run)"
echo "with $slow slowloris connections and bombs: $r1 req/s, p50 $p50_1 ms, p99 $p99_1 ms, non-2xx $bad1"
echo "p99 ratio (with / alone): $(ratio "$p99_1" "$p99_0")"
kill "$hostile" 2>/dev/null || true
wait "$hostile" 2>/dev/null || true
echo "hostile client, last report: $(tail -n1 "$tmp/hostile.log")"
echo "hostile client, first report: $(head -n1 "$tmp/hostile.log")"
bench_server_warnings
