#!/usr/bin/env bash
# t-conformance-pg.sh - the store conformance suite (tests/store/
# test-conformance.c), the one that runs on SQLite, run against a
# throwaway PostgreSQL 15 cluster.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
. "$(dirname "$0")/../pg.sh"
pg_start
VSE_TEST_STORE=postgresql VSE_TEST_PG_URL=$VSE_PG_URL \
    "$B/tests/test-conformance"
