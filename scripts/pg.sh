#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests (issue 16).
#
#   scripts/pg.sh start DIR   initdb in DIR (as a non-root user when run as root),
#                             listen on 127.0.0.1 on a free port, unix socket in DIR;
#                             prints `export SLIPWAY_TEST_PG=postgres://...` on stdout
#   scripts/pg.sh stop DIR    stops the cluster and removes DIR
#
# Installs the Debian `postgresql` package when its binaries are missing.
# The tests create one database per test in this cluster (tests/common/pg.rs).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi

bin() {
    local b
    b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$b" ] && [ -x "$b/initdb" ] && echo "$b"
}

# Runs a command as the cluster's owner: root may not run the server.
user=slipwaypg
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
    b=$(bin || true)
    if [ -z "$b" ]; then
        echo "== installing postgresql (Debian)" >&2
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        else
            sudo apt-get update -qq >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        fi
        b=$(bin) || { echo "error: no initdb under /usr/lib/postgresql/*/bin after installing postgresql" >&2; exit 2; }
    fi
    if [ "$(id -u)" = 0 ] && ! id "$user" >/dev/null 2>&1; then
        useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$user"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown "$user" "$dir"
    # A free port: the kernel picks one for a socket bound to port 0.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$b/initdb" -D "$dir/data" -U slipway --auth=trust --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # Many tests run in parallel, each with a few connections per server.
    as_owner "$b/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=500 -c fsync=on" \
        start >&2 || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "export SLIPWAY_TEST_PG=postgres://slipway@127.0.0.1:$port/postgres"
    ;;
stop)
    if [ -d "$dir/data" ]; then
        b=$(bin || true)
        [ -n "$b" ] && as_owner "$b/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
