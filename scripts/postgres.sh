#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and benchmarks (developers and .ci/run alike).
#
#   eval "$(bash scripts/postgres.sh start)"   # prints: export HEALTHSYNTH_TEST_POSTGRES_URL=...
#   bash scripts/postgres.sh stop              # stops it and deletes its folder
#
# start installs Debian's postgresql package when no server binaries are found (as root), makes a
# cluster in a new temporary folder, and starts it on 127.0.0.1 at a free port with password
# (scram-sha-256) logins only. PostgreSQL refuses to run as root, so as root the server runs as
# the 'postgres' user (created by the package). The folder is recorded in
# ${HEALTHSYNTH_PG_STATE:-/tmp/healthsynth-postgres.state}; stop reads it from there.
set -euo pipefail

STATE="${HEALTHSYNTH_PG_STATE:-/tmp/healthsynth-postgres.state}"
DB_USER=healthsynth
DB_NAME=healthsynth

find_bin() {
    local dir
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

as_owner() {
    # run a command as the cluster's owner: ourselves, or 'postgres' when we are root
    if [ "$(id -u)" = "0" ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

start() {
    local bin dir port password
    if ! bin="$(find_bin)"; then
        if [ "$(id -u)" != "0" ]; then
            echo "postgres.sh: no PostgreSQL server found; install Debian's 'postgresql' package" >&2
            exit 1
        fi
        echo "postgres.sh: installing Debian's postgresql package" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
        bin="$(find_bin)"
    fi
    if [ -f "$STATE" ]; then
        echo "postgres.sh: a cluster is already recorded in $STATE; run 'stop' first" >&2
        exit 1
    fi
    dir="$(mktemp -d /tmp/healthsynth-pg.XXXXXX)"
    chmod 755 "$dir"
    if [ "$(id -u)" = "0" ]; then
        chown postgres "$dir"
    fi
    password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    printf '%s\n' "$password" >"$dir/pwfile"
    chmod 600 "$dir/pwfile"
    if [ "$(id -u)" = "0" ]; then
        chown postgres "$dir/pwfile"
    fi
    as_owner "$bin/initdb" -D "$dir/data" -U "$DB_USER" --pwfile="$dir/pwfile" \
        --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$dir/pwfile"
    port="$(free_port)"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
    printf 'dir=%s\nbin=%s\nport=%s\n' "$dir" "$bin" "$port" >"$STATE"
    PGPASSWORD="$password" "$bin/psql" -q -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres \
        -c "CREATE DATABASE $DB_NAME" >/dev/null
    echo "export HEALTHSYNTH_TEST_POSTGRES_URL=postgresql://$DB_USER:$password@127.0.0.1:$port/$DB_NAME"
}

stop() {
    if [ ! -f "$STATE" ]; then
        echo "postgres.sh: no cluster recorded in $STATE" >&2
        return 0
    fi
    local dir bin
    dir="$(sed -n 's/^dir=//p' "$STATE")"
    bin="$(sed -n 's/^bin=//p' "$STATE")"
    if [ -d "$dir/data" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    case "$dir" in
        /tmp/healthsynth-pg.*) rm -rf "$dir" ;;
    esac
    rm -f "$STATE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: bash scripts/postgres.sh start|stop" >&2
        exit 2
        ;;
esac
