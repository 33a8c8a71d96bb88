#!/usr/bin/env bash
# Load benchmark of the HTTP core: wrk against GET /health (no database) and GET /ready (one pooled query
# per request) on the release build, against a private MariaDB. Run by hand; results go to docs/benchmarks.md.
# Usage: bench/http_health.sh [duration_s=10] [connections=64]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh
dur=${1:-10}
conns=${2:-64}

bench_prepare
bench_start_mariadb
cat >"$tmp/c.json" <<JSON
{ "server": {"port": 0, "threads": 2},
  "database": {"port": $dbport, "user": "bench", "name": "bench", "password_env": "BENCH_DB_PW", "pool_size": 4},
  "metrics": {"listen_address": "127.0.0.1", "port": 0},
  "log": {"level": "warn"} }
JSON
bench_start_server
echo "certctrl on 127.0.0.1:$port, wrk -t2 -c$conns -d${dur}s (server and wrk share $(nproc) cores)"
for path in /health /ready; do
    echo "== GET $path"
    wrk -t2 -c"$conns" -d"${dur}s" --latency "http://127.0.0.1:$port$path" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx|Socket errors'
done
bench_server_warnings
echo "== server RSS after the runs: $(awk '/VmRSS/{print $2, $3}' /proc/$server_pid/status)"
