#!/usr/bin/env bash
# Installs what is missing, builds (dev preset: -Werror), checks formatting, starts the real services the
# tests need (a private MariaDB in a temp dir), runs the whole suite, and stops everything on exit.
# Usage: ./scripts/test.sh [extra ctest args]     PRESET=asan ./scripts/test.sh   to use another preset.
# CERTCTRL_BUILD_TARGETS="a b": build only those targets (with a -R filter that picks their tests).
# Without arguments it also runs every fuzz target briefly (scripts/fuzz.sh; CERTCTRL_FUZZ_SECONDS, 0 skips).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/deps.sh
source scripts/lib/services.sh
preset=${PRESET:-dev}
start=$(date +%s)

certctrl_install_deps "$root" test

echo "== format check"
files=$(git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp')
if [ -n "$files" ]; then
    clang-format --dry-run --Werror $files
fi

echo "== build ($preset)"
cmake --preset "$preset" >/dev/null
if [ -n "${CERTCTRL_BUILD_TARGETS:-}" ]; then
    # shellcheck disable=SC2086
    cmake --build --preset "$preset" --target $CERTCTRL_BUILD_TARGETS
else
    cmake --build --preset "$preset"
fi
# ASan and UBSan (-fno-sanitize-recover) end a process at its first report; TSan is told to, so that a race in a
# server under test kills it and fails its test instead of leaving a line in a log.
if [ "$preset" = tsan ]; then
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp}
fi

tmp=$(mktemp -d /tmp/certctrl-test.XXXXXX)
cleanup() {
    pebble_stop "$tmp/pebble" || true
    knot_stop "$tmp/knot" || true
    mariadb_stop "$tmp/db/run" || true
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "== services"
# A template data directory with the test user; tests that need a MariaDB of their own copy it.
mariadb_init_datadir "$tmp/template"
port=$(certctrl_free_port)
mariadb_start "$tmp/template" "$tmp/template-run" "$port"
db_password=$(openssl rand -hex 16)
mariadb_sql "$tmp/template-run" "CREATE USER 'certctrl_test'@'127.0.0.1' IDENTIFIED BY '$db_password';
    GRANT ALL PRIVILEGES ON *.* TO 'certctrl_test'@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER 'certctrl_test'@'localhost' IDENTIFIED BY '$db_password';
    GRANT ALL PRIVILEGES ON *.* TO 'certctrl_test'@'localhost' WITH GRANT OPTION;"
mariadb_stop "$tmp/template-run"
mkdir -p "$tmp/db"
cp -a "$tmp/template" "$tmp/db/data"
mariadb_start "$tmp/db/data" "$tmp/db/run" "$port"
echo "MariaDB on 127.0.0.1:$port ($(mariadbd --version 2>/dev/null | awk '{print $3}'))"

export CERTCTRL_TEST_DB_HOST=127.0.0.1 CERTCTRL_TEST_DB_PORT=$port CERTCTRL_TEST_DB_USER=certctrl_test
export CERTCTRL_TEST_DB_PASSWORD=$db_password CERTCTRL_TEST_MARIADB_TEMPLATE=$tmp/template
export CERTCTRL_TEST_DB_SOCKET=$tmp/db/run/mysqld.sock CERTCTRL_TEST_TMP=$tmp

# A local ACME CA for the issuance tests: pebble resolving names through knot, which serves the zone
# certctrl.test (every name 127.0.0.1) and takes TSIG-signed RFC 2136 updates for DNS-01.
knot_start "$tmp/knot"
set -a; source "$tmp/knot/env"; set +a
export CERTCTRL_TEST_KNOT_SERVER=$KNOT_SERVER CERTCTRL_TEST_KNOT_PORT=$KNOT_PORT CERTCTRL_TEST_KNOT_ZONE=$KNOT_ZONE
export CERTCTRL_TEST_KNOT_TSIG_NAME=$KNOT_TSIG_NAME CERTCTRL_TEST_KNOT_TSIG_SECRET=$KNOT_TSIG_SECRET
# pebble rejects 5 % of good nonces (badNonce), as a real CA may: the ACME tests meet the client's retry.
CERTCTRL_PEBBLE_NONCEREJECT=5 pebble_start "$tmp/pebble" "127.0.0.1:$KNOT_PORT"
set -a; source "$tmp/pebble/env"; set +a
export CERTCTRL_TEST_PEBBLE_DIRECTORY=$PEBBLE_DIRECTORY_URL CERTCTRL_TEST_PEBBLE_CA_FILE=$PEBBLE_CA_FILE
export CERTCTRL_TEST_PEBBLE_MANAGEMENT=$PEBBLE_MANAGEMENT_URL CERTCTRL_TEST_PEBBLE_HTTP01_PORT=$PEBBLE_HTTP01_PORT
export CERTCTRL_TEST_CHALLTESTSRV=$PEBBLE_CHALLTESTSRV_URL
echo "pebble at $PEBBLE_DIRECTORY_URL (HTTP-01 on port $PEBBLE_HTTP01_PORT)"

echo "== tests"
ctest --preset "$preset" -j2 --timeout 600 "$@"

# Every fuzz target for a short time on its seed corpus (ASan + UBSan): a crash fails the run. Skipped when
# only some tests were asked for (arguments given) or with CERTCTRL_FUZZ_SECONDS=0.
fuzz_seconds=${CERTCTRL_FUZZ_SECONDS:-10}
if [ $# -eq 0 ] && [ "$fuzz_seconds" != 0 ]; then
    echo "== fuzz (${fuzz_seconds} s per target)"
    ./scripts/fuzz.sh "$fuzz_seconds"
fi
echo "test.sh: done in $(( $(date +%s) - start )) s"
