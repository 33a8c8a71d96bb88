#!/usr/bin/env bash
# Webhook delivery benchmark (issue 15) on the release build, one run, every part on this machine:
#   1. SELF_CA issuances per second without a webhook, then with one subscription (the outbox's cost: the
#      event and its delivery are written in the issuance's transaction). An instance with the sender off
#      queues the events.
#   2. Drain: a second instance with the sender on delivers the queued events to nginx over HTTPS (204);
#      deliveries per second from nginx's own arrival times.
#   3. The peer: wrk POSTs the same bytes to the same nginx location with as many connections as the sender
#      has slots (webhooks.concurrency) for the same number of requests' worth of time.
#   4. End to end: one issuance at a time, from the API request to the event's arrival at nginx.
# Run by hand as root (installs wrk and nginx-light when missing); results go to docs/benchmarks.md.
# Usage: bench/webhooks.sh [events=2000] [concurrency=16] [latency_samples=50]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh
events=${1:-2000}
conc=${2:-16}
samples=${3:-50}

bench_prepare
command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light >/dev/null
bench_start_mariadb

# The receiver: nginx over HTTPS with a certificate from a root the server trusts (webhooks.ca_file).
ng="$tmp/nginx"; mkdir -p "$ng/logs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=bench root' \
    -keyout "$ng/root.key" -out "$ng/root.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=127.0.0.1' \
    -keyout "$ng/leaf.key" -out "$ng/leaf.csr" 2>/dev/null
openssl x509 -req -in "$ng/leaf.csr" -CA "$ng/root.pem" -CAkey "$ng/root.key" -CAcreateserial -days 2 \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') -out "$ng/leaf.pem" 2>/dev/null
ngport=$(certctrl_free_port)
cat >"$ng/nginx.conf" <<NGINX
user root;  # the files live under a private temp dir (mode 0700)
worker_processes 2;
pid $ng/nginx.pid;
error_log $ng/logs/error.log warn;
events { worker_connections 4096; }
http {
    log_format arrivals '\$msec \$request_uri \$http_webhook_id';
    client_body_temp_path $ng/body; proxy_temp_path $ng/proxy; fastcgi_temp_path $ng/fastcgi;
    uwsgi_temp_path $ng/uwsgi; scgi_temp_path $ng/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$ngport ssl;
        ssl_certificate $ng/leaf.pem;
        ssl_certificate_key $ng/leaf.key;
        location = /hook { access_log $ng/logs/hook.log arrivals; return 204; }
        location = /peer { access_log off; return 204; }
    }
}
NGINX
nginx -p "$ng" -c "$ng/nginx.conf" -e "$ng/logs/error.log" -g 'daemon off;' &
ngpid=$!
trap 'kill -QUIT $ngpid 2>/dev/null || true; bench_cleanup' EXIT
sleep 0.5

config() {  # $1: sender true|false
    cat <<JSON
{ "server": {"port": 0, "threads": 2},
  "database": {"port": $dbport, "user": "bench", "name": "bench", "password_env": "BENCH_DB_PW", "pool_size": 8},
  "rate_limits": {"auth_per_minute": 0, "api_per_minute": 0, "issuance_per_hour": 0, "self_ca_issuance_per_hour": 0},
  "issuance": {"workers": 0, "renewal_check_seconds": 0},
  "egress": {"allow": ["127.0.0.1/32"]},
  "webhooks": {"sender": $1, "concurrency": $conc, "max_in_flight_per_user": $conc, "poll_interval_ms": 100,
               "ca_file": "$ng/root.pem", "expiry_check_seconds": 0},
  "log": {"level": "warn"} }
JSON
}
config false >"$tmp/c.json"
srv=build/release/src/certctrl-server
$srv migrate --config "$tmp/c.json" >/dev/null
echo 'bench-password-1' | $srv user add --config "$tmp/c.json" --email bench@x.y --password-stdin >/dev/null
echo 'bench-password-1' | $srv user add --config "$tmp/c.json" --email hooked@x.y --password-stdin >/dev/null
scopes=(--scope 'cas:*[read,write]' --scope 'acme_accounts:*[read,write]' --scope 'certificates:*[read,write,issue]'
        --scope 'webhooks:*[read,write]')
key=$($srv apikey add --config "$tmp/c.json" --email bench@x.y --name bench "${scopes[@]}")
hooked=$($srv apikey add --config "$tmp/c.json" --email hooked@x.y --name bench "${scopes[@]}")
bench_start_server
echo "== 1. SELF_CA issuances, $events without and $events with a subscription (sender off; 8 clients; server, MariaDB, nginx and the clients share $(nproc) cores)"
python3 bench/webhooks.py issue "$port" "$key" "$hooked" "$events" "https://127.0.0.1:$ngport/hook" "$tmp/sample.json"
kill -TERM "$server_pid"; certctrl_wait_exit "$server_pid" 15; rm -f "$tmp/port"
queued=$(mariadb_sql "$tmp/run" "SELECT COUNT(*) FROM bench.webhook_deliveries WHERE status = 'PENDING'" | tail -n1)

echo "== 2. drain: $queued queued deliveries, an instance with the sender on ($conc slots)"
config true >"$tmp/c.json"
bench_start_server
t0=$(date +%s.%N)
for _ in $(seq 1 600); do
    [ "$(wc -l <"$ng/logs/hook.log")" -ge "$queued" ] && break
    sleep 0.1
done
arrived=$(wc -l <"$ng/logs/hook.log")
# From the server's start (its port file, or the first arrival if that came first) to the last arrival.
drain=$(awk -v t0="$t0" 'NR == 1 {first = $1} {last = $1} END {start = first < t0 ? first : t0; printf "%.3f %.3f", last - start, last - first}' "$ng/logs/hook.log")
read -r from_start first_to_last <<<"$drain"
rate=$(awk -v n="$arrived" -v s="$from_start" 'BEGIN {printf "%.0f", n / s}')
dups=$(awk '{print $3}' "$ng/logs/hook.log" | sort | uniq -d | wc -l)
echo "delivered $arrived of $queued in $from_start s from the sender's start ($first_to_last s first to last): $rate deliveries/s, $dups delivered twice"
sleep 1
echo "log: $(mariadb_sql "$tmp/run" "SELECT CONCAT(status, ' ', COUNT(*), ' (attempts ', SUM(attempts), ')') FROM bench.webhook_deliveries GROUP BY status" | tail -n +2 | paste -sd ';')"

echo "== 3. the peer: wrk -t2 -c$conc POSTing the same bytes to the same nginx for 10 s"
body=$(head -n1 "$tmp/sample.json")
cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.body = [==[$body]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["webhook-id"] = "evt_0000000000000000000000000"
wrk.headers["webhook-timestamp"] = "1700000000"
wrk.headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
LUA
peer=$(wrk -t2 -c"$conc" -d10s -s "$tmp/post.lua" "https://127.0.0.1:$ngport/peer" | awk '/Requests\/sec/ {printf "%.0f", $2}')
echo "wrk: $peer req/s ($(wc -c <<<"$body") bytes per body); ratio certctrl/wrk $(awk -v a="$rate" -v b="$peer" 'BEGIN {printf "%.3f", a / b}')"

echo "== 4. end to end, one issuance at a time ($samples samples): API request sent -> event at nginx (the instance that stores an event wakes its sender)"
python3 bench/webhooks.py latency "$port" "$hooked" "$samples" "$ng/logs/hook.log"
bench_server_warnings
