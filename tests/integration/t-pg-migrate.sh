#!/usr/bin/env bash
# t-pg-migrate.sh - a PostgreSQL store of schema version 1 is migrated on
# open, never reinterpreted (pgmigrate.c); `vsectl migrate` then finds it
# current; a new database opened by six processes at once is created once.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
. "$(dirname "$0")/../pg.sh"
pg_start
"$B/tests/pgmigrate" "$VSE_PG_URL"
out=$("$B/vsectl" --store "$VSE_PG_URL" migrate)
case $out in
*"schema version 6"*) echo "t-pg-migrate: $out" ;;
*) echo "t-pg-migrate: unexpected: $out" >&2; exit 1 ;;
esac

# A new database opened by several processes at once is created once and
# every one of them succeeds (an API and a volume vsed starting together
# once failed with 'relation "vse_meta" already exists').
for round in 1 2 3; do
    pg_psql -c "CREATE DATABASE fresh$round" >/dev/null
    url=${VSE_PG_URL%/vse}/fresh$round
    pids=()
    for i in 1 2 3 4 5 6; do
        "$B/vsectl" --store "$url" migrate >"$PG_DIR/mig.$i" 2>&1 &
        pids+=($!)
    done
    for i in 1 2 3 4 5 6; do
        if ! wait "${pids[$((i - 1))]}"; then
            echo "t-pg-migrate: concurrent open of a new database failed:" >&2
            cat "$PG_DIR/mig.$i" >&2
            exit 1
        fi
    done
done
echo "t-pg-migrate: 3 x 6 processes opened a new database at once"

# group_commit is vse's own URL parameter: any other value is a usage
# error that touches nothing; on and off, among libpq's own parameters,
# reach libpq without it.
pg_psql -c "CREATE DATABASE gcurl" >/dev/null
url=${VSE_PG_URL%/vse}/gcurl
set +e
out=$("$B/vsectl" --store "$url?group_commit=maybe" migrate 2>&1)
rc=$?
set -e
case "$rc $out" in
"2 "*"unknown value for group_commit (on or off): 'maybe'"*) ;;
*) echo "t-pg-migrate: group_commit=maybe: rc $rc: $out" >&2; exit 1 ;;
esac
[ "$(pg_psql -d gcurl -Atc "SELECT count(*) FROM pg_tables WHERE
    tablename = 'vse_meta'")" = 0 ] ||
    { echo "t-pg-migrate: a refused URL created the store" >&2; exit 1; }
for q in "?group_commit=off" "?connect_timeout=5&group_commit=on" \
         "?group_commit=off&connect_timeout=5"; do
    "$B/vsectl" --store "$url$q" migrate >/dev/null ||
        { echo "t-pg-migrate: '$q' refused" >&2; exit 1; }
done
echo "t-pg-migrate: group_commit=on|off accepted, anything else refused"
