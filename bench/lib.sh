# Shared by the bench scripts (sourced from the project root): install and build the release server, start a
# private MariaDB with a `bench` database, start the server, and clean up on exit.
source scripts/lib/deps.sh
source scripts/lib/services.sh

# Installs what is missing (wrk too) and builds the release certctrl-server.
bench_prepare() {
    certctrl_install_deps "$(pwd)"
    command -v wrk >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk >/dev/null; }
    cmake --preset release >/dev/null
    cmake --build --preset release --target certctrl-server >/dev/null
}

# Starts MariaDB under a new $tmp (user bench / benchpw, database bench) and sets $dbport; stops it on exit.
bench_start_mariadb() {
    tmp=$(mktemp -d /tmp/certctrl-bench.XXXXXX)
    server_pid=
    trap bench_cleanup EXIT
    mariadb_init_datadir "$tmp/data"
    dbport=$(certctrl_free_port)
    mariadb_start "$tmp/data" "$tmp/run" "$dbport"
    mariadb_sql "$tmp/run" "CREATE DATABASE bench; CREATE USER 'bench'@'127.0.0.1' IDENTIFIED BY 'benchpw';
        GRANT ALL ON bench.* TO 'bench'@'127.0.0.1'; CREATE USER 'bench'@'localhost' IDENTIFIED BY 'benchpw';
        GRANT ALL ON bench.* TO 'bench'@'localhost';"
    export BENCH_DB_PW=benchpw
    export CERTCTRL_MASTER_KEY=${CERTCTRL_MASTER_KEY:-$(openssl rand -hex 32)}  # serve refuses to start without one
}

# Migrates $tmp/c.json's database, adds the user bench@x.y and prints a new API key of it with the
# --scope arguments given (bench_user_key 'certificates:*[read]' ...).
bench_user_key() {
    local srv=build/release/src/certctrl-server args=() s
    $srv migrate --config "$tmp/c.json" >/dev/null
    echo 'bench-password-1' | $srv user add --config "$tmp/c.json" --email bench@x.y --password-stdin >/dev/null
    for s in "$@"; do args+=(--scope "$s"); done
    $srv apikey add --config "$tmp/c.json" --email bench@x.y --name bench "${args[@]}"
}

# Serves with $tmp/c.json in the background; sets $server_pid and $port.
bench_start_server() {
    ${SERVER_PRELOAD:+env LD_PRELOAD=$SERVER_PRELOAD} build/release/src/certctrl-server serve --config "$tmp/c.json" --port-file "$tmp/port" >"$tmp/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
    port=$(cat "$tmp/port")
}

# The server's warnings and errors, counted.
bench_server_warnings() {
    echo "== server warnings and errors (count, message):"
    grep -E " (warning|error|critical) " "$tmp/server.log" | sed -E 's/^[^ ]+ //; s/\[[0-9]+\] //' | sort | uniq -c | sort -rn | head -5 || true
}

# Starts knot and pebble resolving through it (scripts/lib/services.sh) under $tmp, exports their settings
# (KNOT_*, PEBBLE_*) and stops both on exit, before the rest of bench_cleanup.
bench_start_acme() {
    trap 'pebble_stop "$tmp/pebble" || true; knot_stop "$tmp/knot" || true; bench_cleanup' EXIT
    knot_start "$tmp/knot"
    set -a; source "$tmp/knot/env"; set +a
    pebble_start "$tmp/pebble" "127.0.0.1:$KNOT_PORT"
    set -a; source "$tmp/pebble/env"; set +a
}

# wrk with $conns connections for $dur seconds: prints "req/s p50_ms p99_ms non2xx".
run_wrk() {
    wrk -t2 -c"$conns" -d"${dur}s" --latency "$@" | awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ {rps=$2} / 50%/ {p50=ms($2)} / 99%/ {p99=ms($2)} /Non-2xx/ {bad=$NF}
        END {printf "%.0f %.2f %.2f %s\n", rps, p50, p99, bad == "" ? 0 : bad}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }

bench_cleanup() {
    [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && certctrl_wait_exit "$server_pid" 15
    mariadb_stop "$tmp/run" || true
    [ -n "${BENCH_KEEP_LOG:-}" ] && cp "$tmp/server.log" "$BENCH_KEEP_LOG" || true
    rm -rf "$tmp"
}
