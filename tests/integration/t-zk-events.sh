#!/usr/bin/env bash
# t-zk-events.sh - ZooKeeper watches wake a watcher in another process
# soon after a commit (p99 under 250 ms, scaled by
# VSE_TEST_TIMEOUT_MULTIPLIER; without the watch it would be woken by the
# end of its 1 s wait slice, half a second on average; p50 was 7-15 ms
# here), and the watcher reads every event
# from the log (pgwatch.c, which takes any store), across log buckets of
# 16 entries.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
M=${VSE_TEST_TIMEOUT_MULTIPLIER:-1}
. "$(dirname "$0")/../zk.sh"
zk_start
VSE_ZK_BUCKET_MAX=16 "$B/tests/pgwatch" --store "$VSE_ZK_URL" --events 200 --max-ms $((250 * M))
