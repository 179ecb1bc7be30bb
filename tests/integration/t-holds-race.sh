#!/usr/bin/env bash
# t-holds-race.sh - holds under a multi-process race (holdrace.c) on a
# SQLite file: snappers take shared holds on two disks while deleters
# begin deletes of them; no delete may begin under a live hold, no hold
# may be taken on a disk being deleted, and nothing is left over.  The
# PostgreSQL and ZooKeeper runs are in t-concurrency-pg.sh / -zk.sh.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$B/tests/holdrace" --store "sqlite:$dir/holds.db" --procs 6 --disks 2 \
    --attempts 1000
