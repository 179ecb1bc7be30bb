#!/usr/bin/env bash
# t-concurrency.sh - the concurrency proof of DESIGN §8 on a real SQLite
# file: 4 worker processes and a reaper race 12,000 calls on 8 volumes with
# 80 ms leases; race checks every history afterwards (see race.c).
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$B/tests/race" --store "sqlite:$dir/race.db" --procs 4 --resources 8 \
    --attempts 12000 --ttl-ms 80 --dir "$dir"
"$B/vsectl" check --store "sqlite:$dir/race.db"
