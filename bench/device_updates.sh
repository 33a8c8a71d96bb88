#!/usr/bin/env bash
# Load benchmark of the device update feed on the release build against a private MariaDB: wrk on the idle
# poll (GET /apiv1/devices/self/updates -> 204: JWT check, session row, rate-limit budget, feed read), then
# bench/device_updates.py holds N long-polls at once and measures memory and wake-up latency.
# Run by hand; results go to docs/benchmarks.md.
# Usage: bench/device_updates.sh [devices=1000] [changes=50] [wrk_seconds=10] [wrk_connections=64]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/deps.sh
source scripts/lib/services.sh
devices=${1:-1000}
changes=${2:-50}
dur=${3:-10}
conns=${4:-64}

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
mport=$(certctrl_free_port)
cat >"$tmp/c.json" <<JSON
{ "server": {"port": 0, "threads": 2, "max_connections": $((devices + 200))},
  "database": {"port": $dbport, "user": "bench", "name": "bench", "password_env": "BENCH_DB_PW", "pool_size": 4},
  "metrics": {"listen_address": "127.0.0.1", "port": $mport},
  "rate_limits": {"auth_per_minute": 0, "api_per_minute": 0},
  "log": {"level": "warn"} }
JSON
export BENCH_DB_PW=benchpw CERTCTRL_MASTER_KEY=$(openssl rand -hex 32)
ulimit -n $((devices * 2 + 1024))
build/release/src/certctrl-server migrate --config "$tmp/c.json" >/dev/null
echo 'bench-password-1' | build/release/src/certctrl-server user add --config "$tmp/c.json" --email bench@x.y --password-stdin >/dev/null
key=$(build/release/src/certctrl-server apikey add --config "$tmp/c.json" --email bench@x.y --name bench \
      --scope 'devices:*[read,write]' --scope 'ForDeviceAuthenticate:*[authenticate]')
build/release/src/certctrl-server serve --config "$tmp/c.json" --port-file "$tmp/port" >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")

reg=$(curl -s -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d "{\"device_public_id\":\"ffffffff-0000-4000-8000-000000000000\",\"dev_pk\":\"$(openssl rand -base64 32)\"}" \
        "http://127.0.0.1:$port/apiv1/me/devices")
token=$(echo "$reg" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
device=$(echo "$reg" | sed -E 's/.*"device":\{"id":([0-9]+).*/\1/')
# one signal, so the idle poll carries a real cursor (the agent's steady state)
curl -s -o /dev/null -X PUT -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"installs":[]}' \
     "http://127.0.0.1:$port/apiv1/me/devices/$device/install-config"
cursor=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/apiv1/devices/self/updates" | sed -E 's/.*"cursor":"([0-9]+)".*/\1/')
echo "== idle poll with cursor $cursor: wrk -t2 -c$conns -d${dur}s GET /apiv1/devices/self/updates -> 204 (server and wrk share $(nproc) cores)"
wrk -t2 -c"$conns" -d"${dur}s" --latency -H "Authorization: Bearer $token" -H "If-None-Match: \"$cursor\"" \
    "http://127.0.0.1:$port/apiv1/devices/self/updates" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx|Socket errors'
echo "== $devices long-polls"
python3 bench/device_updates.py "$port" "$key" "$server_pid" "$devices" "$changes" "$mport"
echo "== server warnings and errors (count, message):"
grep -E " (warning|error|critical) " "$tmp/server.log" | sed -E 's/^[^ ]+ //; s/\[[0-9]+\] //' | sort | uniq -c | sort -rn | head -5 || true
