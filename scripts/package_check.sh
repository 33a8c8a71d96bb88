#!/usr/bin/env bash
# Builds the Debian package and checks it as an operator would use it, on this machine: meant for a fresh
# Debian 12 root, `../shared/tools/fresh-debian.sh './scripts/package_check.sh'` (it installs the package and
# starts a MariaDB on /run/mysqld). Checks: the package installs with apt, makes the certctrl user, its state
# folder and a master key; systemd-analyze verify accepts the unit; the installed server, run as certctrl with
# the installed config, migrates and answers /ready; the installed CLI logs in and works; purge cleans up.
# The runtime libraries are removed after the build, so the package's Depends must bring them back.
# Run by hand (not in .ci/run: a release build and package in a fresh root take about 15 minutes).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/deps.sh
source scripts/lib/services.sh
certctrl_install_deps "$root"
command -v systemd-analyze >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd >/dev/null

echo "== build the package"
cmake --preset release -DCERTCTRL_BUILD_TESTS=OFF >/dev/null
cmake --build --preset release -j2 --target package >/dev/null
deb=$(ls build/release/certctrl_*.deb | head -n1)
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p'
dpkg-deb --contents "$deb" | awk '{print $1, $NF}'

echo "== the package's Depends are enough"
# The build installed every library the binaries link. Remove the runtime libraries again (and what needs
# them: the -dev packages), so that only the package's Depends can bring them back; libc6, libgcc-s1,
# libstdc++6, libssl3 and passwd are part of every Debian system.
dpkg-deb -x "$deb" /tmp/certctrl-deb-unpacked
# Every library a binary needs directly (its NEEDED entries) belongs to a package named in Depends.
depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g')
for bin in /tmp/certctrl-deb-unpacked/usr/bin/*; do
    for name in $(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}'); do
        lib=$(ldd "$bin" | awk -v n="$name" '$1 == n && $2 == "=>" {print $3}')
        pkg=
        for path in "$lib" "$(readlink -f "$lib")" "${lib#/usr}" "$(readlink -f "$lib" | sed 's|^/usr||')"; do
            pkg=$(dpkg -S "$path" 2>/dev/null | head -n1 | cut -d: -f1) && [ -n "$pkg" ] && break
        done
        [ -n "$pkg" ] || { echo "$bin: no package owns $name ($lib)" >&2; exit 1; }
        grep -qx "$pkg" <<<"$depends" || { echo "$bin: $name comes from $pkg, which Depends does not name" >&2; exit 1; }
    done
done
echo "every library the binaries need is in Depends"
# libargon2-1 stays: systemd (systemd-analyze, below) needs it too.
runtime=(libboost-json1.81.0 libboost-url1.81.0 libfmt9 libjemalloc2 libldns3 libmysqlcppconn7v5
         libsodium23 libspdlog1.10 libzip4)
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${runtime[@]}" >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get autoremove -y -q >/dev/null
missing=$(ldd /tmp/certctrl-deb-unpacked/usr/bin/certctrl-server | grep -c 'not found' || true)
[ "$missing" -gt 0 ] || { echo "the purge left the runtime libraries: this check would prove nothing" >&2; exit 1; }
echo "$missing libraries missing before the install"
rm -rf /tmp/certctrl-deb-unpacked

echo "== install"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$deb" >/dev/null
for bin in /usr/bin/certctrl-server /usr/bin/certctrl; do
    if ldd "$bin" | grep 'not found'; then
        echo "$bin: a library above is missing from the package's Depends" >&2
        exit 1
    fi
done
id certctrl
stat -c '%U:%G %a %n' /var/lib/certctrl /etc/certctrl/master.key /etc/certctrl/db.password /etc/certctrl/certctrl.json
[ "$(tr -d '\n' </etc/certctrl/master.key | wc -c)" -eq 64 ] || { echo "master key is not 64 hex characters" >&2; exit 1; }
certctrl-server --version
certctrl --version
test -s /usr/share/man/man1/certctrl.1.gz && test -s /usr/share/man/man1/certctrl-server.1.gz
test -s /usr/share/bash-completion/completions/certctrl

echo "== systemd-analyze verify"
systemd-analyze verify /lib/systemd/system/certctrl-server.service
echo "unit accepted"

echo "== a MariaDB on /run/mysqld (where the installed config looks)"
tmp=$(mktemp -d /tmp/certctrl-pkg.XXXXXX)
mariadb_init_datadir "$tmp/data"
mariadb_start "$tmp/data" /run/mysqld "$(certctrl_free_port)"
pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
mariadb_sql /run/mysqld "CREATE DATABASE certctrl; CREATE USER 'certctrl'@'localhost' IDENTIFIED BY '$pw';
    GRANT ALL ON certctrl.* TO 'certctrl'@'localhost';"
echo "$pw" >/etc/certctrl/db.password
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && certctrl_wait_exit "$server_pid" 15 || true
    mariadb_stop /run/mysqld || true
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "== the installed server as certctrl, with the installed config"
runuser -u certctrl -- certctrl-server migrate --config /etc/certctrl/certctrl.json
runuser -u certctrl -- certctrl-server serve --config /etc/certctrl/certctrl.json >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:8080/ready >/dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:8080/ready; echo

echo "== the installed CLI"
echo 'package-check-password' | runuser -u certctrl -- certctrl-server user add --config /etc/certctrl/certctrl.json \
    --email ops@example.com --password-stdin >/dev/null
key=$(runuser -u certctrl -- certctrl-server apikey add --config /etc/certctrl/certctrl.json --email ops@example.com \
      --name check --scope 'cas:*[read,write]')
export HOME=$tmp
certctrl login --url http://127.0.0.1:8080 --api-key "$key"
certctrl cas create common_name="Package check root" valid_days=30 >/dev/null
certctrl cas ls

echo "== purge"
kill -TERM "$server_pid"; certctrl_wait_exit "$server_pid" 15; server_pid=
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q certctrl >/dev/null
[ ! -e /var/lib/certctrl ] && [ ! -e /etc/certctrl/master.key ] && [ ! -e /usr/bin/certctrl-server ] \
    || { echo "purge left files behind" >&2; exit 1; }
echo "package check: ok"
