#!/usr/bin/env bash
# Faults under load, at the sizes of issue 18: three instances on a 3-node Galera cluster (each starting on
# another node; node 3 is killed under the load and brought back; CERTCTRL_CHAOS_GALERA=0 for one MariaDB),
# a random instance killed with SIGKILL every CERTCTRL_CHAOS_KILL_MS and started again, while 10,000 SELF_CA
# issuances are made through the live instances and 200 ACME orders (pebble, DNS-01 through knot) run in
# their workers; then the Galera test (the server's node killed under load). Prints jobs, kills, lost and
# duplicated (both must be 0). test.sh runs the same tests at small sizes on one MariaDB.
# Usage: ./scripts/chaos.sh [self_ca=10000] [acme=200] [kill_ms=2000]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CERTCTRL_CHAOS_SELF_CA=${1:-10000} CERTCTRL_CHAOS_ACME=${2:-200} CERTCTRL_CHAOS_KILL_MS=${3:-2000}
export CERTCTRL_FUZZ_SECONDS=0 CERTCTRL_CHAOS_GALERA=${CERTCTRL_CHAOS_GALERA:-1}
"$root/scripts/test.sh" -R '^(Chaos|Galera)\.' --timeout 3600 -V | grep -E '^[0-9]+: (chaos:|galera:|[0-9]+ issuances before)|tests passed|Failure|FAILED'
