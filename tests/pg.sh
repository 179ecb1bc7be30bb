# pg.sh - a throwaway PostgreSQL cluster for tests and benchmarks; source it.
#
#   pg_start      initdb into a temp dir, start on 127.0.0.1:<free port>
#                 (unix socket in the temp dir), create database "vse";
#                 exports VSE_PG_URL, PG_PORT, PG_DIR, PG_DATA, PG_PID
#   pg_stop       stop it (pg_ctl -m fast; the recorded pid if that fails)
#   pg_crash      pg_ctl stop -m immediate: no checkpoint, clients cut off
#   pg_restart    start it again on the same port (after pg_crash/pg_stop)
#   pg_psql ARGS  psql on the test database
#   pg_cleanup    stop and remove everything; set as an EXIT trap by
#                 pg_start (a caller with its own trap calls it there)
#
# Runs as the Debian "postgres" user when invoked as root (initdb refuses
# root).  fsync stays on: the tests are about what a commit means.
# Host connections use a password (scram-sha-256) given in the URL, so the
# URL path of libpq is what the tests exercise.

PG_BIN=${PG_BIN:-}
if [ -z "$PG_BIN" ]; then
    for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        if [ -x "$d/pg_ctl" ]; then PG_BIN=$d; break; fi
    done
fi
PG_PASSWORD=vse-test-pw

pg__as() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Below the kernel's ephemeral range: the tests restart the server on its
# port, and an outgoing connection may meanwhile have been given that port
# as its own end (tests/zk.sh met it: a new leader could not bind).
pg__free_port() {
    local p i low
    low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    [ "${low:-0}" -gt 12000 ] 2>/dev/null || low=32768
    for i in $(seq 1 50); do
        p=$((10000 + RANDOM % (low - 10000)))
        # Nothing answers on it: free enough (pg_ctl fails otherwise and
        # pg_start tries another).
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

pg__ctl_start() {
    pg__as "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT \
            -c unix_socket_directories=$PG_DIR -c fsync=on \
            -c max_connections=${PG_MAX_CONNECTIONS:-600} \
            -c shared_buffers=128MB" start >/dev/null
}

pg_start() {
    if [ -z "$PG_BIN" ]; then
        echo "pg.sh: PostgreSQL server binaries not found" \
             "(apt-get install postgresql)" >&2
        return 1
    fi
    PG_DIR=$(mktemp -d /tmp/vse-pg.XXXXXX) || return 1
    PG_DATA=$PG_DIR/data
    trap pg_cleanup EXIT
    # bash runs EXIT traps on exit, not when a signal kills it: make the
    # runner's timeout (TERM) and ^C (INT) exits, so that no server
    # outlives its test (a caller's own EXIT trap then runs too).
    trap 'exit 143' TERM
    trap 'exit 130' INT
    [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
    chmod 700 "$PG_DIR"
    printf '%s\n' "$PG_PASSWORD" >"$PG_DIR/pw"
    [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR/pw"
    pg__as "$PG_BIN/initdb" -D "$PG_DATA" -U vse --pwfile="$PG_DIR/pw" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$PG_DIR/initdb.log" 2>&1 || {
        cat "$PG_DIR/initdb.log" >&2
        return 1
    }
    local tries=0
    while :; do
        PG_PORT=$(pg__free_port) || return 1
        pg__ctl_start && break
        tries=$((tries + 1))
        if [ $tries -ge 5 ]; then
            echo "pg.sh: the server does not start:" >&2
            tail -20 "$PG_DIR/log" >&2
            return 1
        fi
    done
    PG_PID=$(head -1 "$PG_DATA/postmaster.pid")
    pg__as "$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U vse vse || return 1
    VSE_PG_URL="postgresql://vse:$PG_PASSWORD@127.0.0.1:$PG_PORT/vse"
    export VSE_PG_URL PG_PORT PG_DIR PG_DATA PG_PID
}

pg_psql() {
    pg__as "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" \
        -p "$PG_PORT" -U vse -d vse "$@"
}

pg__alive() {
    [ -n "${PG_PID:-}" ] && kill -0 "$PG_PID" 2>/dev/null
}

pg_stop() {
    pg__alive || return 0
    pg__as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop \
        >/dev/null 2>&1 || kill -9 "$PG_PID" 2>/dev/null
    PG_PID=
}

pg_crash() {
    pg__alive || return 0
    pg__as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop \
        >/dev/null
    PG_PID=
}

pg_restart() {
    pg__alive && return 0
    pg__ctl_start || { tail -20 "$PG_DIR/log" >&2; return 1; }
    PG_PID=$(head -1 "$PG_DATA/postmaster.pid")
    export PG_PID
}

pg_cleanup() {
    if pg__alive; then
        pg__as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop \
            >/dev/null 2>&1 || kill -9 "$PG_PID" 2>/dev/null
    fi
    PG_PID=
    [ -n "${PG_DIR:-}" ] && rm -rf "$PG_DIR"
    PG_DIR=
}
