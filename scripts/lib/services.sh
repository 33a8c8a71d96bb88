#!/usr/bin/env bash
# Private MariaDB and pebble instances for run.sh and test.sh: never systemd, never the system MySQL,
# always 127.0.0.1. Sourced; functions only.

MARIADBD=${MARIADBD:-/usr/sbin/mariadbd}

# Prints a TCP port on 127.0.0.1 that nothing listens on, preferring $1 when given and free. Random ports
# come from below the kernel's ephemeral range, where client sockets could hold them without listening.
certctrl_free_port() {
    local want=${1:-} p
    if [ -n "$want" ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$want") 2>/dev/null; then
        echo "$want"; return
    fi
    for _ in $(seq 1 200); do
        local low
        low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
        p=$((10000 + RANDOM % (low - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"; return
        fi
    done
    echo "certctrl: no free port found" >&2
    return 1
}

# Waits up to $2 seconds (default 30) for the pid in file $1 to exit.
certctrl_wait_exit() {
    local pid=$1 limit=$((${2:-30} * 10))
    for _ in $(seq 1 "$limit"); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# mariadb_init_datadir DIR: a fresh data directory (skipped when DIR already holds one).
mariadb_init_datadir() {
    local dir=$1
    [ -d "$dir/mysql" ] && return 0
    mkdir -p "$dir"
    # --force: a minimal machine may have no /etc/hosts, and install-db's hostname check then fails;
    # we only ever connect over the socket or 127.0.0.1, so no host-name grants are needed.
    mariadb-install-db --no-defaults --force --user=root --datadir="$dir" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve >"$dir.install.log" 2>&1 || {
        echo "certctrl: mariadb-install-db failed:" >&2; tail -n 20 "$dir.install.log" >&2; return 1; }
}

# mariadb_start DATADIR RUNDIR PORT: starts mariadbd in the background and waits until it answers.
# MARIADB_EXTRA_ARGS (words) are appended, so they win over the defaults (e.g. a bigger buffer pool).
mariadb_start() {
    local data=$1 run=$2 port=$3
    mkdir -p "$run"
    if [ -f "$run/mariadbd.pid" ] && kill -0 "$(cat "$run/mariadbd.pid")" 2>/dev/null; then
        return 0
    fi
    "$MARIADBD" --no-defaults --user=root --datadir="$data" --socket="$run/mysqld.sock" \
        --port="$port" --bind-address=127.0.0.1 --pid-file="$run/mariadbd.pid" --log-error="$run/mariadb.err" \
        --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
        --max-connections=500 ${MARIADB_EXTRA_ARGS:-} >/dev/null 2>&1 &
    echo $! >"$run/mariadbd.pid"
    echo "$port" >"$run/port"
    for _ in $(seq 1 300); do
        if mariadb-admin --no-defaults --socket="$run/mysqld.sock" -uroot ping >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$(cat "$run/mariadbd.pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "certctrl: MariaDB did not start; last lines of $run/mariadb.err:" >&2
    tail -n 20 "$run/mariadb.err" >&2
    return 1
}

# mariadb_sql RUNDIR SQL: runs SQL as root over the private socket.
mariadb_sql() {
    mariadb --no-defaults --socket="$1/mysqld.sock" -uroot -e "$2"
}

# mariadb_stop RUNDIR: stops the instance started with that RUNDIR (no-op when not running).
mariadb_stop() {
    local run=$1 pid
    [ -f "$run/mariadbd.pid" ] || return 0
    pid=$(cat "$run/mariadbd.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        certctrl_wait_exit "$pid" 60 || kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$run/mariadbd.pid"
}

# knot_start DIR: an authoritative DNS server (knot) for the zone certctrl.test on a free loopback port that
# accepts TSIG-signed RFC 2136 updates (key acme-update, hmac-sha256). Every name resolves to 127.0.0.1,
# except unreachable.certctrl.test (127.0.0.2, where nothing answers). Address and key in DIR/env.
knot_start() {
    local dir=$1
    mkdir -p "$dir/run" "$dir/db" "$dir/zones"
    if [ -f "$dir/knot.pid" ] && kill -0 "$(cat "$dir/knot.pid")" 2>/dev/null; then
        return 0
    fi
    local port secret
    port=$(certctrl_free_port 5353)
    secret=$(openssl rand -base64 32)
    cat >"$dir/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$port
    rundir: $dir/run
    user: root:root
database:
    storage: $dir/db
log:
  - target: stderr
    any: info
key:
  - id: acme-update
    algorithm: hmac-sha256
    secret: $secret
acl:
  - id: update_acl
    key: acme-update
    action: update
template:
  - id: default
    storage: $dir/zones
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: certctrl.test
    acl: update_acl
CONF
    cat >"$dir/zones/certctrl.test.zone" <<'ZONE'
$ORIGIN certctrl.test.
$TTL 60
@ SOA ns.certctrl.test. hostmaster.certctrl.test. 1 3600 600 86400 60
@ NS ns.certctrl.test.
ns A 127.0.0.1
@ A 127.0.0.1
* A 127.0.0.1
unreachable A 127.0.0.2
ZONE
    knotd -c "$dir/knot.conf" >"$dir/knot.log" 2>&1 &
    echo $! >"$dir/knot.pid"
    cat >"$dir/env" <<ENV
KNOT_SERVER=127.0.0.1
KNOT_PORT=$port
KNOT_ZONE=certctrl.test
KNOT_TSIG_NAME=acme-update
KNOT_TSIG_ALGORITHM=hmac-sha256
KNOT_TSIG_SECRET=$secret
ENV
    for _ in $(seq 1 100); do
        # knot answers a TCP connection once it is up
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "certctrl: knot did not start; see $dir/knot.log" >&2
    return 1
}

# knot_stop DIR
knot_stop() {
    local dir=$1 pid
    [ -f "$dir/knot.pid" ] || return 0
    pid=$(cat "$dir/knot.pid")
    kill -TERM "$pid" 2>/dev/null && certctrl_wait_exit "$pid" 10
    rm -f "$dir/knot.pid"
}

# pebble_start DIR [DNS]: a local ACME CA (pebble) on fixed loopback ports recorded in DIR/env. pebble resolves
# names through DNS (host:port) when given (e.g. knot, for DNS-01), else through its own challenge test
# server, which answers 127.0.0.1 for every name. Makes the CA and TLS certificate pebble needs on first use.
pebble_start() {
    local dir=$1 upstream=${2:-}
    mkdir -p "$dir"
    if [ -f "$dir/pebble.pid" ] && kill -0 "$(cat "$dir/pebble.pid")" 2>/dev/null; then
        return 0
    fi
    if [ ! -f "$dir/cert.pem" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca.key" \
            -out "$dir/ca.pem" -days 3650 -subj "/CN=certctrl local pebble CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/key.pem" \
            -out "$dir/localhost.csr" -subj "/CN=localhost" 2>/dev/null
        printf "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" \
            >"$dir/ext.cnf"
        openssl x509 -req -in "$dir/localhost.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
            -out "$dir/cert.pem" -days 3650 -extfile "$dir/ext.cnf" 2>/dev/null
    fi
    local acme mgmt dns chall http01
    acme=$(certctrl_free_port 14000) mgmt=$(certctrl_free_port 15000) dns=$(certctrl_free_port 8053)
    chall=$(certctrl_free_port 8055) http01=$(certctrl_free_port 5002)
    cat >"$dir/pebble-config.json" <<JSON
{ "pebble": { "listenAddress": "127.0.0.1:$acme", "managementListenAddress": "127.0.0.1:$mgmt",
  "certificate": "$dir/cert.pem", "privateKey": "$dir/key.pem",
  "httpPort": $http01, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false } }
JSON
    if [ -n "$upstream" ]; then
        dns=${upstream#127.0.0.1:}
    else
        pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$dns" -http01 "" -https01 "" \
            -tlsalpn01 "" -management "127.0.0.1:$chall" >"$dir/challtestsrv.log" 2>&1 &
        echo $! >"$dir/challtestsrv.pid"
    fi
    # CERTCTRL_PEBBLE_NONCEREJECT: the percentage of good nonces pebble rejects with badNonce (its own default is
    # 5; 0 here unless asked, as certbot 2.1 trips over it).
    PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=${CERTCTRL_PEBBLE_NONCEREJECT:-0} PEBBLE_AUTHZREUSE=0 \
        pebble -config "$dir/pebble-config.json" -dnsserver "${upstream:-127.0.0.1:$dns}" >"$dir/pebble.log" 2>&1 &
    echo $! >"$dir/pebble.pid"
    cat >"$dir/env" <<ENV
PEBBLE_DIRECTORY_URL=https://127.0.0.1:$acme/dir
PEBBLE_MANAGEMENT_URL=https://127.0.0.1:$mgmt
PEBBLE_CA_FILE=$dir/ca.pem
PEBBLE_DNS=127.0.0.1:$dns
PEBBLE_CHALLTESTSRV_URL=http://127.0.0.1:$chall
PEBBLE_HTTP01_PORT=$http01
ENV
    for _ in $(seq 1 100); do
        curl -sf --cacert "$dir/ca.pem" "https://127.0.0.1:$acme/dir" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "certctrl: pebble did not start; see $dir/pebble.log" >&2
    return 1
}

# pebble_stop DIR
pebble_stop() {
    local dir=$1 f pid
    for f in pebble challtestsrv; do
        [ -f "$dir/$f.pid" ] || continue
        pid=$(cat "$dir/$f.pid")
        kill -TERM "$pid" 2>/dev/null && certctrl_wait_exit "$pid" 10
        rm -f "$dir/$f.pid"
    done
}

# galera_start DIR [NODES=3]: a MariaDB Galera cluster of NODES nodes on loopback ports, under DIR/n1..nN
# (data, socket, log), the first bootstrapped, the others joined by SST (mariabackup: rsync SST fails as
# root here). Galera's own timeouts: a killed node is evicted after about 6 s (evs.suspect_timeout 5 s),
# and writes wait until then. Writes DIR/env: GALERA_PORTS (SQL ports, comma-separated) and GALERA_NODES. Root has no
# password over the sockets; SST authenticates as root over them.
galera_start() {
    local dir=$1 nodes=${2:-3} i addresses="" ports=""
    mkdir -p "$dir"
    for i in $(seq 1 "$nodes"); do
        local n="$dir/n$i"
        mkdir -p "$n"
        echo "$(certctrl_free_port) $(certctrl_free_port) $(certctrl_free_port) $(certctrl_free_port)" >"$n/ports"
        addresses+="${addresses:+,}127.0.0.1:$(awk '{print $2}' "$n/ports")"
        ports+="${ports:+,}$(awk '{print $1}' "$n/ports")"
    done
    echo "$addresses" >"$dir/addresses"
    printf 'GALERA_PORTS=%s\nGALERA_NODES=%s\n' "$ports" "$nodes" >"$dir/env"
    for i in $(seq 1 "$nodes"); do
        [ "$i" = 1 ] && mariadb_init_datadir "$dir/n1/data"
        mkdir -p "$dir/n$i/data"
        galera_node_start "$dir" "$i" $([ "$i" = 1 ] && echo new) || return 1
    done
}

# galera_node_start DIR I [new]: starts node I of the cluster under DIR (again, after galera_node_stop);
# "new" bootstraps a new cluster from it. Waits until the node is synced.
galera_node_start() {
    local dir=$1 i=$2 new=${3:-}
    local n="$dir/n$i" sql group ist sst
    read -r sql group ist sst <"$n/ports"
    if [ -f "$n/mariadbd.pid" ] && kill -0 "$(cat "$n/mariadbd.pid")" 2>/dev/null; then
        return 0
    fi
    # A defaults file (not --no-defaults): the SST scripts and mariadb-backup read their groups from it.
    cat >"$n/my.cnf" <<CNF
[mysqld]
user=root
datadir=$n/data
socket=$n/mysqld.sock
port=$sql
bind-address=127.0.0.1
pid-file=$n/mariadbd.pid
log-error=$n/mariadb.err
skip-name-resolve
innodb-buffer-pool-size=64M
innodb-log-file-size=16M
max-connections=500
binlog-format=ROW
innodb-autoinc-lock-mode=2
default-storage-engine=InnoDB
wsrep-on=ON
wsrep-provider=/usr/lib/galera/libgalera_smm.so
wsrep-cluster-name=certctrl
wsrep-cluster-address=gcomm://$(cat "$dir/addresses")
wsrep-node-name=n$i
wsrep-node-address=127.0.0.1:$group
wsrep-node-incoming-address=127.0.0.1:$sql
wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:$group;ist.recv_addr=127.0.0.1:$ist;gcache.size=64M
wsrep-sst-method=mariabackup
wsrep-sst-auth=root:
wsrep-sst-receive-address=127.0.0.1:$sst
[client]
socket=$n/mysqld.sock
[mariabackup]
socket=$n/mysqld.sock
[sst]
sst-syslog=-1
CNF
    "$MARIADBD" --defaults-file="$n/my.cnf" ${new:+--wsrep-new-cluster} >/dev/null 2>&1 &
    echo $! >"$n/mariadbd.pid"
    for _ in $(seq 1 600); do
        if [ "$(mariadb --no-defaults --socket="$n/mysqld.sock" -uroot -N -e \
                "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | awk '{print $2}')" = Synced ]; then
            return 0
        fi
        kill -0 "$(cat "$n/mariadbd.pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "certctrl: Galera node $i did not join; last lines of $n/mariadb.err:" >&2
    tail -n 30 "$n/mariadb.err" >&2
    return 1
}

# galera_node_stop DIR I [KILL]: stops node I (SIGTERM, or SIGKILL with KILL).
galera_node_stop() {
    local n="$1/n$2" pid
    [ -f "$n/mariadbd.pid" ] || return 0
    pid=$(cat "$n/mariadbd.pid")
    kill -"${3:-TERM}" "$pid" 2>/dev/null
    certctrl_wait_exit "$pid" 60 || kill -KILL "$pid" 2>/dev/null
    rm -f "$n/mariadbd.pid"
}

# galera_stop DIR: stops every node.
galera_stop() {
    local d
    for d in "$1"/n*; do
        [ -d "$d" ] && galera_node_stop "$1" "${d##*/n}"
    done
    return 0
}
