#!/usr/bin/env bash
# Installs what is missing, builds, starts a private MariaDB and a local pebble under var/, migrates, and
# serves certctrl on 127.0.0.1:8080 in the foreground. Ctrl-C stops the server and the services.
# Everything the instance needs (config, dev secrets, master key, data) lives under var/, so
#   ./build/release/src/certctrl-server migrate --config var/certctrl.json
# works beside it. A second run keeps the data. `./scripts/run.sh stop` stops services left running.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/deps.sh
source scripts/lib/services.sh
var=$root/var

stop_services() {
    mariadb_stop "$var/mariadb/run" || true
    pebble_stop "$var/pebble" || true
}
if [ "${1:-}" = "stop" ]; then
    stop_services
    echo "stopped"
    exit 0
fi

certctrl_install_deps "$root"
cmake --preset release >/dev/null
cmake --build --preset release --target certctrl-server
bin=$root/build/release/src/certctrl-server

mkdir -p "$var/secrets" "$var/mariadb" "$var/log"
chmod 700 "$var/secrets"
[ -f "$var/secrets/db_password" ] || openssl rand -hex 24 >"$var/secrets/db_password"
[ -f "$var/secrets/master.key" ] || openssl rand -hex 32 >"$var/secrets/master.key"
chmod 600 "$var/secrets/"*

trap stop_services EXIT
mariadb_init_datadir "$var/mariadb/data"
db_port=$(cat "$var/mariadb/run/port" 2>/dev/null || true)
if ! { [ -f "$var/mariadb/run/mariadbd.pid" ] && kill -0 "$(cat "$var/mariadb/run/mariadbd.pid")" 2>/dev/null; }; then
    db_port=$(certctrl_free_port "${db_port:-3307}")
fi
mariadb_start "$var/mariadb/data" "$var/mariadb/run" "$db_port"
mariadb_sql "$var/mariadb/run" "CREATE DATABASE IF NOT EXISTS certctrl CHARACTER SET utf8mb4;
    CREATE USER IF NOT EXISTS 'certctrl'@'127.0.0.1' IDENTIFIED BY '$(cat "$var/secrets/db_password")';
    ALTER USER 'certctrl'@'127.0.0.1' IDENTIFIED BY '$(cat "$var/secrets/db_password")';
    GRANT ALL PRIVILEGES ON certctrl.* TO 'certctrl'@'127.0.0.1';"
pebble_start "$var/pebble"

port=${CERTCTRL_PORT:-8080}
source "$var/pebble/env"
cat >"$var/certctrl.json" <<JSON
{
  "server": { "listen_address": "127.0.0.1", "port": $port, "public_url": "http://127.0.0.1:$port" },
  "database": { "host": "127.0.0.1", "port": $db_port, "user": "certctrl", "name": "certctrl",
                "password_file": "secrets/db_password", "migrate_on_start": true },
  "crypto": { "master_key_file": "secrets/master.key" },
  "issuance": { "http01_port": $PEBBLE_HTTP01_PORT, "acme_ca_file": "$PEBBLE_CA_FILE" },
  "egress": { "allow": ["127.0.0.1/32"] },
  "log": { "level": "info" }
}
JSON
"$bin" migrate --config "$var/certctrl.json"

# A demo user and an API key, made once and kept in var/secrets/ (printed below).
demo_email=demo@certctrl.local
if [ ! -f "$var/secrets/demo_password" ]; then
    openssl rand -hex 12 >"$var/secrets/demo_password"
    chmod 600 "$var/secrets/demo_password"
fi
"$bin" user add --config "$var/certctrl.json" --email "$demo_email" --password-stdin --admin \
    <"$var/secrets/demo_password" >/dev/null 2>&1 || true   # exists already on later runs
if [ ! -s "$var/secrets/demo_api_key" ]; then
    "$bin" apikey add --config "$var/certctrl.json" --email "$demo_email" --name run.sh-demo \
        --scope 'certificates:*[read,write,issue,export]' --scope 'devices:*[read,write,assign]' \
        --scope 'acme_accounts:*[read,write]' --scope 'apikeys:*[read,write]' --scope 'audit:*[read]' \
        --scope 'cas:*[read,write]' --scope 'dns_providers:*[read,write]' \
        >"$var/secrets/demo_api_key"
    chmod 600 "$var/secrets/demo_api_key"
fi

cat <<MSG

certctrl is starting on http://127.0.0.1:$port   (MariaDB on 127.0.0.1:$db_port, pebble: $(grep DIRECTORY "$var/pebble/env" | cut -d= -f2))
  curl http://127.0.0.1:$port/health
  Dashboard: http://127.0.0.1:$port/   (in a browser; sign in with the login below)
  Login:   $demo_email / $(cat "$var/secrets/demo_password")   (the dashboard, or POST /auth/general)
  API key: $(cat "$var/secrets/demo_api_key")
           curl -H "Authorization: Bearer \$(cat var/secrets/demo_api_key)" http://127.0.0.1:$port/apiv1/me/apikeys
  Stop: press Ctrl-C here (stops the server, MariaDB and pebble), or from another shell: kill \$(pgrep -f 'certctrl-server serve') ; ./scripts/run.sh stop
  Config and dev secrets: var/certctrl.json, var/secrets/   Logs: var/log/

MSG
"$bin" serve --config "$var/certctrl.json" 2>&1 | tee -a "$var/log/certctrl.log"
