#!/usr/bin/env bash
# t-pg-events.sh - LISTEN/NOTIFY wakes a watcher in another process within
# 50 ms of a commit (p99, scaled by VSE_TEST_TIMEOUT_MULTIPLIER), and the
# watcher reads every event from the history (pgwatch.c).
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
M=${VSE_TEST_TIMEOUT_MULTIPLIER:-1}
. "$(dirname "$0")/../pg.sh"
pg_start
"$B/tests/pgwatch" --store "$VSE_PG_URL" --events 200 --max-ms $((50 * M))
