#!/usr/bin/env bash
# t-zk-events.sh - ZooKeeper watches wake a watcher in another process
# soon after a commit (p99 under 100 ms, scaled by
# VSE_TEST_TIMEOUT_MULTIPLIER: a watch notification and a re-read of the
# log more than PostgreSQL's NOTIFY), and the watcher reads every event
# from the log (pgwatch.c, which takes any store).
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
M=${VSE_TEST_TIMEOUT_MULTIPLIER:-1}
. "$(dirname "$0")/../zk.sh"
zk_start
"$B/tests/pgwatch" --store "$VSE_ZK_URL" --events 200 --max-ms $((100 * M))
