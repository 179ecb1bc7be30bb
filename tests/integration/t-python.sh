#!/usr/bin/env bash
# t-python.sh - the Python binding (python/vse) and its taskflow
# integration under pytest, with Debian's python3, python3-pytest and
# python3-taskflow: on SQLite files and on a throwaway PostgreSQL server
# (tests/pg.sh).  A sanitizer build's libvse.so cannot be loaded into an
# uninstrumented python3, so that build skips this test (say so, pass).
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
PY=/usr/bin/python3
if ldd "$B/libvse.so" | grep -Eq 'libasan|libtsan|libubsan'; then
    echo "skipped: $B/libvse.so is a sanitizer build (the plain build runs it)"
    exit 0
fi
"$PY" -c 'import pytest, taskflow' || {
    echo "t-python: python3-pytest and python3-taskflow are needed" \
         "(make check installs them through scripts/deps.sh)" >&2
    exit 1
}
. "$(dirname "$0")/../pg.sh"
. "$(dirname "$0")/../zk.sh"
pg_start
zk_start
# Each starter sets its own cleanup as the EXIT trap: keep both.
trap 'zk_cleanup; pg_cleanup' EXIT
export VSE_LIBRARY=$B/libvse.so VSE_TEST_PG_URL=$VSE_PG_URL \
    VSE_TEST_ZK_URL=$VSE_ZK_URL VSE_BUILD=$B
# -p no:cacheprovider: no .pytest_cache in the tree; -W error: a
# deprecation in the binding fails here first.
cd "$(dirname "$0")/../.."
"$PY" -m pytest -p no:cacheprovider -q -W error::DeprecationWarning \
    tests/python
