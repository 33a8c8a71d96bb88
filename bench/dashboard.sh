#!/usr/bin/env bash
# The dashboard's costs, on the release build:
#   1. its files: GET / and GET /ui/<version>/app.js against nginx serving the same bytes (wrk);
#   2. its certificate list over 1,000,000 certificates of one user (limit 25, as the page asks): the first
#      page unfiltered, then each filter the page offers, timed one request at a time (median of 7, curl):
#      status=expiring (1 row in 1000 matches), status=pending (nearly all match), q=<common text>, and
#      q=<a name only the oldest row has> (the worst case: every row of the user is read).
# Results go to docs/benchmarks.md. Run by hand as root (installs wrk and nginx-light when missing).
# Usage: bench/dashboard.sh [seconds=10] [connections=64] [rows=1000000]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh
dur=${1:-10}
conns=${2:-64}
rows=${3:-1000000}

bench_prepare
command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light >/dev/null
MARIADB_EXTRA_ARGS="--innodb-buffer-pool-size=1G --innodb-log-file-size=256M" bench_start_mariadb
cat >"$tmp/c.json" <<JSON
{ "server": {"port": 0, "threads": 2},
  "database": {"port": $dbport, "user": "bench", "name": "bench", "password_env": "BENCH_DB_PW", "pool_size": 8},
  "rate_limits": {"auth_per_minute": 0, "api_per_minute": 0, "issuance_per_hour": 0},
  "issuance": {"workers": 0, "renewal_check_seconds": 0},
  "log": {"level": "warn"} }
JSON
key=$(bench_user_key 'acme_accounts:*[read,write]' 'certificates:*[read,write]')
bench_start_server
api="http://127.0.0.1:$port"
auth=(-H "Authorization: Bearer $key" -H 'Content-Type: application/json')
acct=$(curl -s "${auth[@]}" -d '{"name":"le","provider":"letsencrypt"}' "$api/apiv1/me/acme-accounts" |
       sed -E 's/^\{"data":\{"id":([0-9]+).*/\1/')

# 1. The files, against nginx serving the same bytes.
ng="$tmp/nginx"; mkdir -p "$ng/www" "$ng/logs"
ui=$(curl -s "$api/" | sed -nE 's/.*src="(\/ui\/[0-9a-f]+)\/app\.js".*/\1/p')
curl -s "$api/" >"$ng/www/index.html"
curl -s "$api$ui/app.js" >"$ng/www/app.js"
ngport=$(certctrl_free_port)
cat >"$ng/nginx.conf" <<NGINX
user root;
worker_processes 2;
pid $ng/nginx.pid;
error_log $ng/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $ng/body; proxy_temp_path $ng/proxy; fastcgi_temp_path $ng/fastcgi;
    uwsgi_temp_path $ng/uwsgi; scgi_temp_path $ng/scgi;
    server {
        listen 127.0.0.1:$ngport;
        root $ng/www;
        location = / { default_type text/html; try_files /index.html =404; }
        location = /app.js { default_type text/javascript; try_files /app.js =404; }
    }
}
NGINX
nginx -p "$ng" -c "$ng/nginx.conf" -e "$ng/logs/error.log" -g 'daemon off;' &
ngpid=$!
sleep 0.5
echo "wrk -t2 -c$conns -d${dur}s; server, MariaDB, nginx and wrk share $(nproc) cores; index $(wc -c <"$ng/www/index.html") B, app.js $(wc -c <"$ng/www/app.js") B"
for what in index app.js; do
    if [ "$what" = index ]; then n=$(run_wrk "http://127.0.0.1:$ngport/"); c=$(run_wrk "$api/")
    else n=$(run_wrk "http://127.0.0.1:$ngport/app.js"); c=$(run_wrk "$api$ui/app.js"); fi
    read -r nr np50 np99 nbad <<<"$n"; read -r cr cp50 cp99 cbad <<<"$c"
    echo "$what: nginx $nr req/s (p50 $np50 ms, p99 $np99 ms) | certctrl $cr req/s (p50 $cp50 ms, p99 $cp99 ms, non-2xx $cbad) | ratio $(ratio "$cr" "$nr")"
done
kill "$ngpid"; wait "$ngpid" 2>/dev/null || true

# 2. A million certificates: the oldest is the only "needle.example.org"; every 1000th is issued and ends in
#    10 days (expiring); the rest were never issued (pending).
uid=$(mariadb --no-defaults --socket="$tmp/run/mysqld.sock" -uroot -N bench -e "SELECT id FROM users WHERE email='bench@x.y'")
t0=$(date +%s)
mariadb --no-defaults --socket="$tmp/run/mysqld.sock" -uroot bench -e "
    INSERT INTO certificates (user_id, public_id, domain_name, sans, acct_id, created_at, updated_at)
    VALUES ($uid, UUID(), 'needle.example.org', '[\"needle.example.org\"]', $acct, UNIX_TIMESTAMP(), UNIX_TIMESTAMP());
    INSERT INTO certificates (user_id, public_id, domain_name, sans, acct_id, created_at, updated_at, cert_pem, not_after)
    SELECT $uid, UUID(), CONCAT('bulk', seq, '.example.com'), CONCAT('[\"bulk', seq, '.example.com\"]'), $acct,
           UNIX_TIMESTAMP(), UNIX_TIMESTAMP(), IF(seq % 1000 = 0, 'PEM', NULL),
           IF(seq % 1000 = 0, UNIX_TIMESTAMP() + 864000, 0) FROM seq_1_to_$((rows - 1));"
echo "inserted $rows certificates in $(( $(date +%s) - t0 )) s"
# Median of 7 sequential requests (after one to warm up), in ms, and the number of items of the last.
time_list() {
    local q=$1 times=() i items
    curl -s -o /dev/null -H "Authorization: Bearer $key" "$api/apiv1/me/certificates?limit=25$q"
    for i in 1 2 3 4 5 6 7; do
        times+=("$(curl -s -o "$tmp/page.json" -w '%{time_total}' -H "Authorization: Bearer $key" "$api/apiv1/me/certificates?limit=25$q")")
    done
    items=$(grep -o '"id":' "$tmp/page.json" | wc -l)
    printf '%s\n' "${times[@]}" | sort -n | awk -v n="$items" '{a[NR]=$1} END {printf "%.1f ms (%d items)\n", a[4] * 1000, n}'
}
base=$(time_list "")
echo "first page, no filter: $base"
for q in "&status=expiring" "&status=pending" "&q=bulk99" "&q=needle"; do
    echo "first page, ${q#&}: $(time_list "$q")"
done
bench_server_warnings
