#!/usr/bin/env bash
# The data-path benchmark of issue 11, all in one run on the release build, with nginx (2 workers, access log
# off) serving the same bytes as the peer:
#   1. GET /health                                   vs nginx serving the same body
#   2. GET /apiv1/me/certificates?offset=0&limit=20  (API key)  vs nginx serving the same 20-certificate body,
#      with the server reaching MariaDB over TCP, then (a second server) over its Unix socket
#   3. SELF_CA POST .../certificates/:id/issues (P-256 leaf under a P-256 CA, inline), durable commits
#   4. 1,000,000 certificates for one user: the first page vs a deep cursor page (limit 20)
# and the server's RSS when idle and at its peak. Prints the ratios; results go to docs/benchmarks.md.
# Run by hand as root (installs wrk and nginx-light when missing).
# Usage: bench/compare.sh [seconds=10] [connections=64] [rows=1000000] [runs=2]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh
dur=${1:-10}
conns=${2:-64}
rows=${3:-1000000}
runs=${4:-2}

bench_prepare
command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light >/dev/null
# A buffer pool that holds the million rows, as a production server would have.
MARIADB_EXTRA_ARGS="--innodb-buffer-pool-size=1G --innodb-log-file-size=256M" bench_start_mariadb
mariadb_sql "$tmp/run" "SELECT CONCAT('innodb_flush_log_at_trx_commit=', @@innodb_flush_log_at_trx_commit,
    ', sync_binlog=', @@sync_binlog, ', log_bin=', @@log_bin) AS durability\G" | tail -n1

cat >"$tmp/c.json" <<JSON
{ "server": {"port": 0, "threads": 2},
  "database": {"port": $dbport, "user": "bench", "name": "bench", "password_env": "BENCH_DB_PW", "pool_size": 8},
  "rate_limits": {"auth_per_minute": 0, "api_per_minute": 0, "issuance_per_hour": 0},
  "issuance": {"workers": 0, "renewal_check_seconds": 0},
  "log": {"level": "warn"} }
JSON
key=$(bench_user_key 'cas:*[read,write]' 'acme_accounts:*[read,write]' 'certificates:*[read,write,issue]')
bench_start_server
api="http://127.0.0.1:$port"
auth=(-H "Authorization: Bearer $key" -H 'Content-Type: application/json')
id_of() { sed -E 's/^\{"data":\{"id":([0-9]+).*/\1/'; }
ca=$(curl -s "${auth[@]}" -d '{"common_name":"Bench root","valid_days":365}' "$api/apiv1/me/cas" | id_of)
acct=$(curl -s "${auth[@]}" -d "{\"name\":\"self\",\"provider\":\"SELF_CA\",\"ca_id\":$ca,\"cert_valid_seconds\":86400}" \
       "$api/apiv1/me/acme-accounts" | id_of)
certs=()
for i in $(seq 1 200); do
    certs+=("$(curl -s "${auth[@]}" -d "{\"domain_name\":\"h$i.example.com\",\"sans\":[\"h$i.example.com\",\"www.h$i.example.com\"],\"acct_id\":$acct}" \
               "$api/apiv1/me/certificates" | id_of)")
done
# Issue the newest 20 so the list page carries real certificates.
for c in "${certs[@]: -20}"; do curl -s -o /dev/null -X POST "${auth[@]}" "$api/apiv1/me/certificates/$c/issues"; done
sleep 1
rss_idle=$(awk '/VmRSS/{print $2}' /proc/$server_pid/status)

# nginx serving the same bytes.
ng="$tmp/nginx"; mkdir -p "$ng/www" "$ng/logs"
curl -s "$api/health" >"$ng/www/health.json"
curl -s "${auth[@]}" "$api/apiv1/me/certificates?offset=0&limit=20" >"$ng/www/list.json"
ngport=$(certctrl_free_port)
cat >"$ng/nginx.conf" <<NGINX
user root;  # the files live under a private temp dir (mode 0700)
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
        location = /health { default_type application/json; try_files /health.json =404; }
        location = /list { default_type application/json; try_files /list.json =404; }
    }
}
NGINX
nginx -p "$ng" -c "$ng/nginx.conf" -e "$ng/logs/error.log" -g 'daemon off;' &
ngpid=$!
trap 'kill -QUIT $ngpid 2>/dev/null || true; bench_cleanup' EXIT
sleep 0.5
for what in health list; do
    cmp -s "$ng/www/$what.json" <(curl -sf "http://127.0.0.1:$ngport/$what") ||
        { echo "nginx does not serve the same bytes for /$what" >&2; exit 1; }
done
echo "bodies: /health $(wc -c <"$ng/www/health.json") bytes, list $(wc -c <"$ng/www/list.json") bytes (same bytes from nginx)"

# wrk's summary as "req/s p50 p99" (latencies in ms).
echo "wrk -t2 -c$conns -d${dur}s, $runs alternating run(s) each; server, MariaDB, nginx and wrk share $(nproc) cores"
for what in health list; do
    for r in $(seq 1 "$runs"); do
        n=$(run_wrk "http://127.0.0.1:$ngport/$what")
        if [ "$what" = health ]; then
            c=$(run_wrk "$api/health")
        else
            c=$(run_wrk -H "Authorization: Bearer $key" "$api/apiv1/me/certificates?offset=0&limit=20")
        fi
        read -r nr np50 np99 nbad <<<"$n"; read -r cr cp50 cp99 cbad <<<"$c"
        echo "$what run $r: nginx $nr req/s (p50 $np50 ms, p99 $np99 ms, non-2xx $nbad) | certctrl $cr req/s (p50 $cp50 ms, p99 $cp99 ms, non-2xx $cbad) | ratio $(ratio "$cr" "$nr")"
    done
done

# The same list from a second server that reaches MariaDB over its Unix socket (database.socket) instead of TCP;
# the first one idles meanwhile.
sed "s|\"port\": $dbport,|\"socket\": \"$tmp/run/mysqld.sock\",|" "$tmp/c.json" >"$tmp/c-socket.json"
build/release/src/certctrl-server serve --config "$tmp/c-socket.json" --port-file "$tmp/port-socket" >"$tmp/server-socket.log" 2>&1 &
sock_pid=$!
for _ in $(seq 1 100); do [ -s "$tmp/port-socket" ] && break; sleep 0.1; done
sock_api="http://127.0.0.1:$(cat "$tmp/port-socket")"
cmp -s "$ng/www/list.json" <(curl -sf -H "Authorization: Bearer $key" "$sock_api/apiv1/me/certificates?offset=0&limit=20") ||
    { echo "the socket server does not answer the same list" >&2; exit 1; }
for r in $(seq 1 "$runs"); do
    n=$(run_wrk "http://127.0.0.1:$ngport/list")
    c=$(run_wrk -H "Authorization: Bearer $key" "$sock_api/apiv1/me/certificates?offset=0&limit=20")
    read -r nr np50 np99 nbad <<<"$n"; read -r cr cp50 cp99 cbad <<<"$c"
    echo "list over the Unix socket run $r: nginx $nr req/s (p50 $np50 ms, p99 $np99 ms) | certctrl $cr req/s (p50 $cp50 ms, p99 $cp99 ms, non-2xx $cbad) | ratio $(ratio "$cr" "$nr")"
done
kill -TERM "$sock_pid"; certctrl_wait_exit "$sock_pid" 15 || true

# SELF_CA issuance: each request picks one of the 200 certificates at random.
cat >"$tmp/issue.lua" <<LUA
local ids = { $(IFS=,; echo "${certs[*]}") }
local key = "$key"
request = function()
    local id = ids[math.random(#ids)]
    return wrk.format("POST", "/apiv1/me/certificates/" .. id .. "/issues",
                      {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, "")
end
LUA
before=$(mariadb --no-defaults --socket="$tmp/run/mysqld.sock" -uroot -N bench -e "SELECT COUNT(*) FROM issue_history WHERE status='SUCCESS'")
t0=$(date +%s.%N)
i=$(run_wrk -s "$tmp/issue.lua" "$api/")
t1=$(date +%s.%N)
after=$(mariadb --no-defaults --socket="$tmp/run/mysqld.sock" -uroot -N bench -e "SELECT COUNT(*) FROM issue_history WHERE status='SUCCESS'")
read -r ir ip50 ip99 ibad <<<"$i"
echo "SELF_CA issuance: $ir req/s (p50 $ip50 ms, p99 $ip99 ms, non-2xx $ibad); $((after - before)) SUCCESS rows in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}') s = $(awk -v n=$((after - before)) -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", n / (b - a)}') issuances/s"
rss_peak=$(awk '/VmHWM/{print $2}' /proc/$server_pid/status)

# A million certificates for the user, then the first page against a deep cursor page.
uid=$(mariadb --no-defaults --socket="$tmp/run/mysqld.sock" -uroot -N bench -e "SELECT id FROM users WHERE email='bench@x.y'")
t0=$(date +%s)
mariadb --no-defaults --socket="$tmp/run/mysqld.sock" -uroot bench -e "
    INSERT INTO certificates (user_id, public_id, domain_name, sans, acct_id, created_at, updated_at)
    SELECT $uid, UUID(), CONCAT('bulk', seq, '.example.com'), CONCAT('[\"bulk', seq, '.example.com\"]'), $acct,
           UNIX_TIMESTAMP(), UNIX_TIMESTAMP() FROM seq_1_to_${rows};"
echo "inserted $rows certificates in $(( $(date +%s) - t0 )) s"
low=$(mariadb --no-defaults --socket="$tmp/run/mysqld.sock" -uroot -N bench -e "SELECT MIN(id) + 1000 FROM certificates WHERE user_id = $uid")
deep=$(printf '{"id":%s}' "$low" | base64 -w0)
# Index entries MariaDB stepped through (Handler_read_next + _prev): a page that scans past what it returns shows.
index_steps() {
    mariadb --no-defaults --socket="$tmp/run/mysqld.sock" -uroot -N -e "SELECT SUM(VARIABLE_VALUE) FROM
        information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('HANDLER_READ_NEXT', 'HANDLER_READ_PREV')"
}
for r in $(seq 1 "$runs"); do
    f=$(run_wrk -H "Authorization: Bearer $key" "$api/apiv1/me/certificates?limit=20")
    prev0=$(index_steps)
    d=$(run_wrk -H "Authorization: Bearer $key" "$api/apiv1/me/certificates?limit=20&cursor=$deep")
    prev1=$(index_steps)
    read -r fr fp50 fp99 fbad <<<"$f"; read -r dr dp50 dp99 dbad <<<"$d"
    echo "1M rows run $r: first page $fr req/s (p50 $fp50, p99 $fp99 ms, non-2xx $fbad) | deep cursor page (id < $low) $dr req/s (p50 $dp50, p99 $dp99 ms, non-2xx $dbad, $(awk -v a="$prev0" -v b="$prev1" -v n="$dr" -v t="$dur" 'BEGIN{printf "%.0f", (b - a) / (n * t)}') index steps per request) | p99 ratio deep/first $(ratio "$dp99" "$fp99")"
done
rss_peak=$(awk '/VmHWM/{print $2}' /proc/$server_pid/status)
echo "server RSS: idle $((rss_idle / 1024)) MiB, peak $((rss_peak / 1024)) MiB"
bench_server_warnings
