#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of the PostgreSQL store.
#
#   eval "$(scripts/postgres.sh start)"   # starts it (installing PostgreSQL if needed), exports the URL
#   cargo test --release -p allowly-core --features postgres
#   scripts/postgres.sh stop              # stops it (the data stays until `destroy`)
#   scripts/postgres.sh url               # prints the database URL
#   scripts/postgres.sh status            # exit 0 when it is running
#   scripts/postgres.sh destroy           # stops it and deletes its files
#   scripts/postgres.sh fresh-database N  # (re)creates an empty database N on the running cluster, prints its URL
#
# Idempotent: `start` on a running cluster only prints the exports. Works as root on a fresh Debian
# machine (installs the `postgresql` package, runs the server as the `postgres` user) and as an
# ordinary user who has PostgreSQL installed. Only `export ...` lines and comments go to stdout, so
# the output can be `eval`ed; progress goes to stderr.
#
# Settings (environment): ALLOWLY_PG_DIR (default /tmp/allowly-pg), ALLOWLY_PG_PORT (default 55432),
# ALLOWLY_PG_DATABASE (default allowly_test).
set -euo pipefail

dir=${ALLOWLY_PG_DIR:-/tmp/allowly-pg}
port=${ALLOWLY_PG_PORT:-55432}
database=${ALLOWLY_PG_DATABASE:-allowly_test}
data="$dir/data"
log="$dir/server.log"
url="postgres://postgres@127.0.0.1:$port/$database"
script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

say() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

bin_dir() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$found" ] && [ -x "$found/initdb" ]; then
        printf '%s\n' "$found"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

install_postgres() {
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed; install it (Debian: apt-get install postgresql) or run as root"
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is not available"
    say "installing PostgreSQL (apt-get)"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
}

# Runs a command as the cluster's owner: `postgres` when we are root (the server refuses root).
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        # From a directory the owner can read, or tools complain about the working directory.
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

running() {
    [ -n "${bin:-}" ] && [ -f "$data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start() {
    bin=$(bin_dir)
    if [ -z "$bin" ]; then
        install_postgres
        bin=$(bin_dir)
        [ -n "$bin" ] || die "no initdb found after installing PostgreSQL"
    fi
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        as_owner true # creates the user if needed
        chown postgres "$dir"
        chmod 700 "$dir"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        say "creating a cluster in $data"
        rm -rf "$data"
        as_owner "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=trust -E UTF8 \
            --locale=C >/dev/null
    fi
    if running; then
        say "already running on port $port"
    else
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "port $port is taken by another program; set ALLOWLY_PG_PORT"
        fi
        say "starting on 127.0.0.1:$port (log: $log)"
        # Enough connections for parallel tests (each store has its own pool); the socket lives in
        # the cluster's directory, so nothing needs /var/run/postgresql.
        as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=400 -c shared_buffers=256MB" \
            start >/dev/null || {
            tail -n 20 "$log" >&2 || true
            die "the server did not start"
        }
    fi
    local exists
    exists=$(as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$database'")
    if [ "$exists" != "1" ]; then
        say "creating database $database"
        as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE \"$database\"" >/dev/null
    fi
    printf 'export ALLOWLY_TEST_DATABASE_URL=%s\n' "$url"
    printf '# stop it with: %s stop\n' "$script"
}

stop() {
    bin=$(bin_dir)
    if running; then
        say "stopping"
        as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    else
        say "not running"
    fi
}

# Drops database $1 if it exists and creates it empty; prints its URL.
fresh_database() {
    local name=$1
    [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || die "database names here are lowercase identifiers: $name"
    bin=$(bin_dir)
    running || die "the cluster is not running (scripts/postgres.sh start)"
    PGOPTIONS="-c client_min_messages=warning" as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -q \
        -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" -c "CREATE DATABASE \"$name\"" >/dev/null
    printf 'postgres://postgres@127.0.0.1:%s/%s\n' "$port" "$name"
}

case "${1:-}" in
    start) start ;;
    fresh-database) fresh_database "${2:?usage: postgres.sh fresh-database NAME}" ;;
    stop) stop ;;
    url) printf '%s\n' "$url" ;;
    status)
        bin=$(bin_dir)
        if running; then
            say "running on port $port"
        else
            say "not running"
            exit 1
        fi
        ;;
    destroy)
        stop
        rm -rf "$dir"
        ;;
    *)
        printf 'usage: %s start|stop|url|status|destroy|fresh-database NAME\n' "$0" >&2
        exit 2
        ;;
esac
