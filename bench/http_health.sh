#!/usr/bin/env bash
# Load benchmark of the HTTP core: wrk against GET /health (no database) and GET /ready (one pooled query
# per request) on the release build, against a private MariaDB. Run by hand; results go to docs/benchmarks.md.
# Usage: bench/http_health.sh [duration_s=10] [connections=64]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/deps.sh
source scripts/lib/services.sh
dur=${1:-10}
conns=${2:-64}

certctrl_install_deps "$root"
command -v wrk >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk >/dev/null; }
cmake --preset release >/dev/null
cmake --build --preset release --target certctrl-server >/dev/null

tmp=$(mktemp -d /tmp/certctrl-bench.XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && certctrl_wait_exit "$server_pid" 15
    mariadb_stop "$tmp/run" || true
    rm -rf "$tmp"
}
trap cleanup EXIT

mariadb_init_datadir "$tmp/data"
dbport=$(certctrl_free_port)
mariadb_start "$tmp/data" "$tmp/run" "$dbport"
mariadb_sql "$tmp/run" "CREATE DATABASE bench; CREATE USER 'bench'@'127.0.0.1' IDENTIFIED BY 'benchpw';
    GRANT ALL ON bench.* TO 'bench'@'127.0.0.1';"
cat >"$tmp/c.json" <<JSON
{ "server": {"port": 0, "threads": 2},
  "database": {"port": $dbport, "user": "bench", "name": "bench", "password_env": "BENCH_DB_PW", "pool_size": 4},
  "metrics": {"listen_address": "127.0.0.1", "port": 0},
  "log": {"level": "warn"} }
JSON
BENCH_DB_PW=benchpw build/release/src/certctrl-server serve --config "$tmp/c.json" --port-file "$tmp/port" \
    >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")
echo "certctrl on 127.0.0.1:$port, wrk -t2 -c$conns -d${dur}s (server and wrk share $(nproc) cores)"
for path in /health /ready; do
    echo "== GET $path"
    wrk -t2 -c"$conns" -d"${dur}s" --latency "http://127.0.0.1:$port$path" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx|Socket errors'
done
echo "== server warnings and errors (count, message):"
grep -E " (warning|error|critical) " "$tmp/server.log" | sed -E 's/^[^ ]+ //; s/\[[0-9]+\] //' | sort | uniq -c | sort -rn | head -5 || true
echo "== server RSS after the runs: $(awk '/VmRSS/{print $2, $3}' /proc/$server_pid/status)"
