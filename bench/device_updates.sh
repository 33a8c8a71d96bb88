#!/usr/bin/env bash
# Load benchmark of the device update feed on the release build against a private MariaDB: wrk on the idle
# poll (GET /apiv1/devices/self/updates -> 204: JWT check, session row, rate-limit budget, feed read), then
# bench/device_updates.py holds N long-polls at once and measures memory and wake-up latency.
# Run by hand; results go to docs/benchmarks.md.
# Usage: bench/device_updates.sh [devices=1000] [changes=50] [wrk_seconds=10] [wrk_connections=64]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh
devices=${1:-1000}
changes=${2:-50}
dur=${3:-10}
conns=${4:-64}

bench_prepare
bench_start_mariadb
mport=$(certctrl_free_port)
cat >"$tmp/c.json" <<JSON
{ "server": {"port": 0, "threads": 2, "max_connections": $((devices + 200))},
  "database": {"port": $dbport, "user": "bench", "name": "bench", "password_env": "BENCH_DB_PW", "pool_size": 4},
  "metrics": {"listen_address": "127.0.0.1", "port": $mport},
  "rate_limits": {"auth_per_minute": 0, "api_per_minute": 0},
  "log": {"level": "warn"} }
JSON
ulimit -n $((devices * 2 + 1024))
build/release/src/certctrl-server migrate --config "$tmp/c.json" >/dev/null
echo 'bench-password-1' | build/release/src/certctrl-server user add --config "$tmp/c.json" --email bench@x.y --password-stdin >/dev/null
key=$(build/release/src/certctrl-server apikey add --config "$tmp/c.json" --email bench@x.y --name bench \
      --scope 'devices:*[read,write]' --scope 'ForDeviceAuthenticate:*[authenticate]')
bench_start_server

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
bench_server_warnings
