#!/usr/bin/env bash
# t-machine-upgrade-pg.sh - machines upgraded in place (upgrade-lib.sh)
# on a throwaway PostgreSQL 15 cluster.
set -u
. "$(dirname "$0")/upgrade-lib.sh"
. "$(dirname "$0")/../pg.sh"
pg_start
trap 'pg_cleanup; rm -rf "$T"' EXIT

LABEL=postgresql scenario "$VSE_PG_URL"
echo "# postgresql: an upgrade beside transitions"
race "$VSE_PG_URL" pg_psql -At -F '|' -c \
    "SELECT seq, resource, kind, to_state FROM history ORDER BY seq"

finish
