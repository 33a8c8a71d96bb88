#!/usr/bin/env bash
# ACME engine benchmark (issue 14), release build, one run against one pebble resolving through one knot:
#   1. one DNS-01 certificate at a time: certctrl from POST .../issues to SUCCESS, and `lego run` (account
#      registered beforehand), median of `singles` runs each;
#   2. `count` DNS-01 certificates at once: certctrl (all queued at once) and lego with 8 processes (each runs
#      its share of the names one after another).
# Both publish the TXT records into knot over RFC 2136 with the same TSIG key; pebble runs with
# PEBBLE_VA_NOSLEEP=1 and checks the records through knot. Results go to docs/benchmarks.md by hand.
# Usage: bench/acme.sh [count=256] [singles=9] [workers=256]     BENCH_SKIP_LEGO=1: certctrl only
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh
count=${1:-256}
singles=${2:-9}
workers=${3:-256}

bench_prepare
command -v lego >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lego >/dev/null; }
bench_start_mariadb
bench_start_acme

cat >"$tmp/c.json" <<JSON
{ "server": {"port": 0, "threads": 2},
  "database": {"port": $dbport, "user": "bench", "name": "bench", "password_env": "BENCH_DB_PW", "pool_size": 8},
  "rate_limits": {"auth_per_minute": 0, "api_per_minute": 0, "issuance_per_hour": 0},
  "issuance": {"workers": $workers, "acme_ca_file": "$PEBBLE_CA_FILE", "max_concurrent_per_user": 0,
               "renewal_check_seconds": 0, "poll_interval_ms": 200},
  "egress": {"allow": ["127.0.0.1/32"]},
  "log": {"level": "${BENCH_LOG_LEVEL:-info}"} }
JSON
build/release/src/certctrl-server migrate --config "$tmp/c.json" >/dev/null
echo 'bench-password-1' | build/release/src/certctrl-server user add --config "$tmp/c.json" --email bench@x.y --password-stdin >/dev/null
key=$(build/release/src/certctrl-server apikey add --config "$tmp/c.json" --email bench@x.y --name bench \
      --scope 'certificates:*[read,write,issue]' --scope 'acme_accounts:*[read,write,issue]' \
      --scope 'dns_providers:*[read,write]')
bench_start_server
echo "== pebble $PEBBLE_DIRECTORY_URL, knot 127.0.0.1:$KNOT_PORT, certctrl :$port (workers $workers), $(nproc) cores shared by all"

# lego: RFC 2136 into the same knot; --dns.disable-cp because knot serves an update at once (lego would
# otherwise look for the zone's name servers on port 53).
export LEGO_CA_CERTIFICATES=$PEBBLE_CA_FILE RFC2136_NAMESERVER=127.0.0.1:$KNOT_PORT RFC2136_TSIG_KEY=$KNOT_TSIG_NAME
export RFC2136_TSIG_SECRET=$KNOT_TSIG_SECRET RFC2136_TSIG_ALGORITHM=hmac-sha256. RFC2136_POLLING_INTERVAL=1
export RFC2136_PROPAGATION_TIMEOUT=60 RFC2136_TTL=60
lego_run() {  # lego_run PATH DOMAIN
    lego --server "$PEBBLE_DIRECTORY_URL" --accept-tos --email bench@x.y --path "$1" --dns rfc2136 \
         --dns.disable-cp --domains "$2" run >>"$1.log" 2>&1
}
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }  # no bc on a fresh machine

python3 bench/acme.py "$port" "$key" "$PEBBLE_DIRECTORY_URL" "$KNOT_PORT" "$KNOT_TSIG_NAME" "$KNOT_TSIG_SECRET" \
    "$count" "$singles" | tee "$tmp/certctrl.out"

if [ -n "${BENCH_SKIP_LEGO:-}" ]; then bench_server_warnings; exit 0; fi
echo "== lego, one certificate at a time ($singles runs, account registered first)"
lego_run "$tmp/lego1" "warmup-$RANDOM.certctrl.test"
for i in $(seq 1 "$singles"); do
    t0=$(now); lego_run "$tmp/lego1" "l1-$i-$RANDOM.certctrl.test"; t1=$(now)
    calc "$t1 - $t0"; echo
done | sort -n | awk '{a[NR]=$1} END {printf "lego single: median %.3f s (min %.3f, max %.3f)\n", a[int((NR+1)/2)], a[1], a[NR]}'

echo "== lego, $count certificates with 8 processes"
for p in $(seq 0 7); do lego_run "$tmp/lego-p$p" "warmup-$p-$RANDOM.certctrl.test"; done
t0=$(now)
pids=()
for p in $(seq 0 7); do
    ( for i in $(seq "$p" 8 $((count - 1))); do lego_run "$tmp/lego-p$p" "lb-$i-$RANDOM.certctrl.test" || echo "lego failed: lb-$i" ; done ) &
    pids+=($!)
done
wait "${pids[@]}"
t1=$(now)
ok=$(ls "$tmp"/lego-p*/certificates/lb-*.crt 2>/dev/null | grep -vc 'issuer.crt$' || true)
lego_s=$(calc "$t1 - $t0")
echo "lego batch: $count certificates in $lego_s s, $(calc "$count / $lego_s") certs/s, $ok certificates written"
certctrl_rate=$(sed -nE 's/^certctrl batch: .* ([0-9.]+) certs\/s.*/\1/p' "$tmp/certctrl.out")
echo "== ratio: certctrl $certctrl_rate certs/s vs lego $(calc "$count / $lego_s") certs/s = $(calc "$certctrl_rate * $lego_s / $count")x"
grep -E "issued in" "$tmp/server.log" | tail -3 || true
bench_server_warnings
