#!/usr/bin/env bash
# t-pg-late.sh - a transition that holds an earlier position in the log
# and commits last (or rolls back) while a watcher reads: nothing is
# skipped, nothing is read out of order, and the commits after it did not
# wait for it (pglate.c; issue 11).
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
. "$(dirname "$0")/../pg.sh"
pg_start
"$B/tests/pglate" "$VSE_PG_URL"
