#!/usr/bin/env bash
# t-concurrency-pg.sh - the concurrency proof of DESIGN §8 (race.c) on a
# throwaway PostgreSQL cluster: 8 worker processes and a reaper race
# 30,000 calls on 8 volumes with 80 ms leases; race checks every history.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
. "$(dirname "$0")/../pg.sh"
pg_start
dir=$(mktemp -d)
trap 'pg_cleanup; rm -rf "$dir"' EXIT
"$B/tests/race" --store "$VSE_PG_URL" --procs 8 --resources 8 \
    --attempts 30000 --ttl-ms 80 --dir "$dir"
"$B/vsectl" check --store "$VSE_PG_URL"
# Holds under a race (holdrace.c), in a database of their own: its test
# machines are not vsectl's.
pg_psql -c "CREATE DATABASE holds" >/dev/null
"$B/tests/holdrace" --store "${VSE_PG_URL%/vse}/holds" --procs 6 --disks 2 \
    --attempts 500
