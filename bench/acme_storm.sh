#!/usr/bin/env bash
# Renewal storm benchmark (issue 14), release build: `count` certificates of one user fall due at once and
# are renewed from pebble through bench/ca_proxy.py, a CA that answers rateLimited above `limit` requests per
# second. certctrl is configured under that limit (issuance.ca_limits: limit - 10 req/s, 64 orders at once).
# Meanwhile another user orders certificates one after another; their latency is compared with a quiet run.
# Prints the storm's rate, the CA's refusals (must be 0) and the on-demand latencies. HTTP-01 through the
# server's own challenge listener. Results go to docs/benchmarks.md by hand.
# Usage: bench/acme_storm.sh [count=10000] [limit=80]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh
count=${1:-10000}
limit=${2:-80}

bench_prepare
bench_start_mariadb
bench_start_acme
proxy_pid=
trap '[ -n "$proxy_pid" ] && kill -TERM "$proxy_pid" 2>/dev/null; pebble_stop "$tmp/pebble" || true; knot_stop "$tmp/knot" || true; bench_cleanup' EXIT
proxy_port=$(certctrl_free_port 14500)
# The proxy serves pebble's own TLS certificate (localhost / 127.0.0.1, signed by the CA the server trusts).
python3 bench/ca_proxy.py "$proxy_port" "$tmp/pebble/cert.pem" "$tmp/pebble/key.pem" \
    "${PEBBLE_DIRECTORY_URL%/dir}" "$PEBBLE_CA_FILE" "$limit" "$tmp/proxy.json" &
proxy_pid=$!
directory=https://127.0.0.1:$proxy_port/dir
for _ in $(seq 1 50); do curl -sf --cacert "$PEBBLE_CA_FILE" "$directory" >/dev/null && break; sleep 0.1; done
mport=$(certctrl_free_port)
cat >"$tmp/c.json" <<JSON
{ "server": {"port": 0, "threads": 2},
  "database": {"port": $dbport, "user": "bench", "name": "bench", "password_env": "BENCH_DB_PW", "pool_size": 8},
  "metrics": {"listen_address": "127.0.0.1", "port": $mport},
  "rate_limits": {"auth_per_minute": 0, "api_per_minute": 0, "issuance_per_hour": 0},
  "issuance": {"workers": 256, "acme_ca_file": "$PEBBLE_CA_FILE", "max_concurrent_per_user": 0,
               "http01_port": $PEBBLE_HTTP01_PORT, "renewal_check_seconds": 1, "poll_interval_ms": 200,
               "ca_limits": [{"directory_url": "$directory", "requests_per_second": $((limit - 10)),
                              "max_orders_in_flight": 64}]},
  "egress": {"allow": ["127.0.0.1/32"]},
  "log": {"level": "${BENCH_LOG_LEVEL:-warn}"} }
JSON
build/release/src/certctrl-server migrate --config "$tmp/c.json" >/dev/null
for u in storm ondemand; do
    echo 'bench-password-1' | build/release/src/certctrl-server user add --config "$tmp/c.json" --email $u@x.y --password-stdin >/dev/null
done
scopes=(--scope 'certificates:*[read,write,issue]' --scope 'acme_accounts:*[read,write,issue]')
storm_key=$(build/release/src/certctrl-server apikey add --config "$tmp/c.json" --email storm@x.y --name b "${scopes[@]}")
other_key=$(build/release/src/certctrl-server apikey add --config "$tmp/c.json" --email ondemand@x.y --name b "${scopes[@]}")
bench_start_server
echo "== $count renewals through a CA limited to $limit req/s (certctrl: $((limit - 10)) req/s, 64 orders); pebble, MariaDB, the proxy and certctrl share $(nproc) cores"
python3 bench/acme_storm.py "$port" "$storm_key" "$other_key" "$directory" "$count" "$tmp/run/mysqld.sock" "$mport"
kill -TERM "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=
echo "== the CA (proxy) saw: $(cat "$tmp/proxy.json")"
bench_server_warnings
