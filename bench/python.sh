#!/bin/sh
# python.sh - transitions per second through the Python binding at one
# client, in one run, against
#   - vsectl bench (C, the same cycle) on the same kind of store, and
#   - Cinder's own conditional_update (python3-cinder) flipping a volume's
#     status on the same kind of SQLite file (WAL, synchronous=FULL).
# Machines here are shared and noisy: read the ratios.  Each pair runs
# ROUNDS times, alternating which goes first.
#
#   bench/python.sh BUILD_DIR [SECONDS] [ROUNDS]
#   VSE_BENCH_PG=1 bench/python.sh build   also binding vs C on PostgreSQL
#
# python3-cinder is installed when missing (it is large; make check does
# not need it).
set -eu

build=${1:?usage: python.sh BUILD_DIR [SECONDS] [ROUNDS]}
secs=${2:-5}
rounds=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
vsectl=$build/vsectl
PY=/usr/bin/python3
[ -x "$vsectl" ] && [ -f "$build/libvse.so" ] ||
    { echo "python.sh: build first (make)" >&2; exit 1; }
if ! "$PY" -c 'import cinder.db.sqlalchemy.api' 2>/dev/null; then
    echo "python.sh: installing python3-cinder" >&2
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        --no-install-recommends python3-cinder >/dev/null
fi
export VSE_LIBRARY
VSE_LIBRARY=$(cd "$build" && pwd)/libvse.so

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vse-pybench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

c_bench() { # URL -> JSON
    "$vsectl" --store "$1" bench --clients 1 --resources 1 --seconds "$secs" \
        --json
}
py_bench() { "$PY" "$here/python_bench.py" vse "$1" "$secs"; }
cinder_bench() { "$PY" "$here/python_bench.py" cinder "$1" "$secs" 2>/dev/null; }
rate() { "$PY" -c 'import json,sys; print("%.0f" % json.loads(sys.argv[1])["transitions_per_s"])' "$1"; }

printf '%-6s %-8s %10s %10s %10s %8s %8s\n' round store python/s C/s \
    cinder/s py/C py/cinder
r=1
while [ "$r" -le "$rounds" ]; do
    a="sqlite:$tmp/py-$r.db"; b="sqlite:$tmp/c-$r.db"
    if [ $((r % 2)) -eq 1 ]; then
        py=$(py_bench "$a"); c=$(c_bench "$b"); ci=$(cinder_bench "$tmp/cinder-$r.db")
    else
        ci=$(cinder_bench "$tmp/cinder-$r.db"); c=$(c_bench "$b"); py=$(py_bench "$a")
    fi
    p=$(rate "$py"); cc=$(rate "$c"); k=$(rate "$ci")
    printf '%-6s %-8s %10s %10s %10s %8s %8s\n' "$r" sqlite "$p" "$cc" "$k" \
        "$(awk -v a="$p" -v b="$cc" 'BEGIN{printf "%.2f", a/b}')" \
        "$(awk -v a="$p" -v b="$k" 'BEGIN{printf "%.1f", a/b}')"
    r=$((r + 1))
done

if [ "${VSE_BENCH_PG:-0}" = 1 ]; then
    . "$here/../tests/pg.sh"
    pg_start
    r=1
    while [ "$r" -le "$rounds" ]; do
        pg_psql -q -c "SET client_min_messages=warning; DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"
        py=$(py_bench "$VSE_PG_URL")
        pg_psql -q -c "SET client_min_messages=warning; DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"
        c=$(c_bench "$VSE_PG_URL")
        p=$(rate "$py"); cc=$(rate "$c")
        printf '%-6s %-8s %10s %10s %10s %8s %8s\n' "$r" pg "$p" "$cc" - \
            "$(awk -v a="$p" -v b="$cc" 'BEGIN{printf "%.2f", a/b}')" -
        r=$((r + 1))
    done
fi
