#!/usr/bin/env bash
# Installs (only what is missing) the Debian 12 packages certctrl needs to build, run and test,
# and makes the Connector/C++ 1.1 headers available without the libboost-dev 1.74 conflict.
# Sourced by scripts/run.sh and scripts/test.sh; idempotent.

CERTCTRL_APT_PACKAGES=(
    # toolchain
    g++ cmake ninja-build pkg-config clang-format ca-certificates curl openssl procps
    # libFuzzer targets (scripts/fuzz.sh, run briefly by scripts/test.sh)
    clang-16 libclang-rt-16-dev
    # libraries (Boost 1.81: headers + the compiled parts we use)
    libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev
    libmysqlcppconn7v5 libspdlog-dev libssl-dev libsodium-dev libargon2-dev libzip-dev libldns-dev
    libgtest-dev libgmock-dev libjemalloc-dev
    # services run by the scripts (never as system services)
    mariadb-server mariadb-client pebble knot
    # tests: the operator guide's webhook receiver example runs as written
    python3
)
# Only for scripts/test.sh: the dashboard's tests drive a real headless Chromium; several instances are
# tested behind a real HAProxy, and on a 3-node Galera cluster (SST with mariadb-backup over socat).
CERTCTRL_TEST_PACKAGES=(chromium chromium-driver python3-selenium haproxy galera-4 mariadb-backup socat)

# Prints the packages of CERTCTRL_APT_PACKAGES that are not installed.
certctrl_missing_packages() {
    local p missing=()
    for p in "${CERTCTRL_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    echo "${missing[@]}"
}

# Installs missing packages. Services that packages would start (mariadb) are kept from starting
# with a temporary policy-rc.d, so a system MySQL is never started or touched.
certctrl_install_packages() {
    local missing
    missing=$(certctrl_missing_packages)
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "certctrl: missing packages ($missing); run as root or install them first" >&2
        return 1
    fi
    echo "certctrl: installing: $missing"
    local policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    { apt-get update -q && apt-get install -y -q --no-install-recommends $missing; } || rc=$?
    [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d
    return $rc
}

# Connector/C++ 1.1 headers: libmysqlcppconn-dev depends on libboost-dev (1.74), which conflicts with
# libboost1.81-dev. We take its headers from the .deb into $1 (project-local, ignored by git) instead
# of installing it; CMake finds them there (MYSQLCPPCONN_ROOT).
certctrl_extract_connector_headers() {
    local dest=$1
    [ -f "$dest/usr/include/mysql_driver.h" ] && return 0
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -q libmysqlcppconn-dev >/dev/null 2>&1) || {
        apt-get update -q >/dev/null && (cd "$tmp" && apt-get download -q libmysqlcppconn-dev >/dev/null 2>&1)
    } || { echo "certctrl: cannot download libmysqlcppconn-dev" >&2; rm -rf "$tmp"; return 1; }
    mkdir -p "$dest"
    dpkg-deb -x "$tmp"/libmysqlcppconn-dev_*.deb "$dest"
    rm -rf "$tmp"
    [ -f "$dest/usr/include/mysql_driver.h" ]
}

# certctrl_install_deps ROOT [test]: with "test", the test-only packages too.
certctrl_install_deps() {
    local root=$1
    [ "${2:-}" = test ] && CERTCTRL_APT_PACKAGES+=("${CERTCTRL_TEST_PACKAGES[@]}")
    certctrl_install_packages && certctrl_extract_connector_headers "$root/var/deps/mysqlcppconn"
}
