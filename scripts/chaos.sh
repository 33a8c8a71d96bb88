#!/usr/bin/env bash
# Faults under load, at the sizes of issue 18: three instances on one database, a random one killed with
# SIGKILL every CERTCTRL_CHAOS_KILL_MS and started again, while 10,000 SELF_CA issuances are made through the
# live instances and 200 ACME orders (pebble, DNS-01 through knot) run in their workers; then the Galera test
# (the server's node killed under load). Prints jobs, kills, lost and duplicated (both must be 0).
# test.sh runs the same tests at small sizes. Usage: ./scripts/chaos.sh [self_ca=10000] [acme=200] [kill_ms=2000]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CERTCTRL_CHAOS_SELF_CA=${1:-10000} CERTCTRL_CHAOS_ACME=${2:-200} CERTCTRL_CHAOS_KILL_MS=${3:-2000}
export CERTCTRL_FUZZ_SECONDS=0
"$root/scripts/test.sh" -R '^(Chaos|Galera)\.' --timeout 3600 -V | grep -E '^[0-9]+: (chaos:|[0-9]+ issuances before)|tests passed|Failure|FAILED'
