#!/usr/bin/env bash
# t-pg-migrate.sh - a PostgreSQL store of schema version 1 is migrated on
# open, never reinterpreted (pgmigrate.c); `vsectl migrate` then finds it
# current.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
. "$(dirname "$0")/../pg.sh"
pg_start
"$B/tests/pgmigrate" "$VSE_PG_URL"
out=$("$B/vsectl" --store "$VSE_PG_URL" migrate)
case $out in
*"schema version 2"*) echo "t-pg-migrate: $out" ;;
*) echo "t-pg-migrate: unexpected: $out" >&2; exit 1 ;;
esac
