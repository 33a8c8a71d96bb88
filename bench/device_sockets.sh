#!/usr/bin/env bash
# Idle device WebSockets on the release build against a private MariaDB (agent contract 6.3): N devices each
# hold one socket; prints the server's RSS per socket and the time from a change to its signal on the socket.
# Run by hand as root (installs python3-websockets when missing); results go to docs/benchmarks.md.
# Usage: bench/device_sockets.sh [devices=10000] [changes=50]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh
devices=${1:-10000}
changes=${2:-50}

bench_prepare
/usr/bin/python3 -c 'import websockets' 2>/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-websockets >/dev/null
bench_start_mariadb
mport=$(certctrl_free_port)
cat >"$tmp/c.json" <<JSON
{ "server": {"port": 0, "threads": 2, "max_connections": $((devices + 500)), "max_connections_per_ip": 0},
  "database": {"port": $dbport, "user": "bench", "name": "bench", "password_env": "BENCH_DB_PW", "pool_size": 4},
  "metrics": {"listen_address": "127.0.0.1", "port": $mport},
  "rate_limits": {"auth_per_minute": 0, "api_per_minute": 0},
  "devices": {"max_devices_per_user": $((devices + 10))},
  "log": {"level": "${BENCH_LOG_LEVEL:-warn}"} }
JSON
ulimit -n $((devices * 3 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"  # the server and the client each hold one fd per socket
build/release/src/certctrl-server migrate --config "$tmp/c.json" >/dev/null
echo 'bench-password-1' | build/release/src/certctrl-server user add --config "$tmp/c.json" --email bench@x.y --password-stdin >/dev/null
key=$(build/release/src/certctrl-server apikey add --config "$tmp/c.json" --email bench@x.y --name bench \
      --scope 'devices:*[read,write]' --scope 'ForDeviceAuthenticate:*[authenticate]')
bench_start_server
/usr/bin/python3 bench/device_sockets.py "$port" "$key" "$server_pid" "$devices" "$changes" "$mport"
bench_server_warnings
