#!/usr/bin/env bash
# t-pg-batch.sh - a group commit whose connection is lost mid-batch: the
# batch's transaction never commits, each of its transitions is settled
# by its history row and sent again alone, and every caller is answered
# once; a renew that writes no history row, lost the same way, is settled
# by the row (pgbatch.c; issue 15).
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
. "$(dirname "$0")/../pg.sh"
pg_start
"$B/tests/pgbatch" "$VSE_PG_URL"
