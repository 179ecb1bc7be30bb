#!/usr/bin/env bash
# t-zk-failover.sh - a leader change under the race (issue 11): race.c's
# 8 worker processes and its reaper race on 8 volumes against a
# three-member ZooKeeper ensemble while the leader is killed (kill -9);
# the work must go on on the two members left (the clients reconnect by
# themselves), then the old leader is restarted and rejoins as a
# follower while the race goes on.  race (--faults) then proves every call
# answered "done" left exactly one history row, every call that failed
# none (one answered "outcome unknown" at most one), every history is a
# valid path and no transition was applied twice; vsectl check verifies
# the whole store at rest.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
M=${VSE_TEST_TIMEOUT_MULTIPLIER:-1}
. "$(dirname "$0")/../zk.sh"
dir=$(mktemp -d)
race=
cleanup() {
    [ -n "$race" ] && kill "$race" 2>/dev/null
    zk_cleanup
    rm -rf "$dir"
}
trap cleanup EXIT
zk_ensemble_start 3
trap cleanup EXIT
echo "t-zk-failover: ensemble up after ${SECONDS}s"

# The worker logs are written through stdio buffers: their size grows in
# steps, which is enough to see that work goes on.
size() { cat "$dir"/worker-*.log 2>/dev/null | wc -c; }
# wait_more WHAT BYTES: poll until the logs grew by BYTES (deadline).
wait_more() {
    local what=$1 want=$(($(size) + $2)) deadline=$((SECONDS + 30 * M))
    while [ "$(size)" -lt "$want" ]; do
        if ! kill -0 "$race" 2>/dev/null; then
            echo "t-zk-failover: race ended while waiting for $what" >&2
            return 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "t-zk-failover: timed out waiting for $what" >&2
            return 1
        fi
        sleep 0.05
    done
}

"$B/tests/race" --store "$VSE_ZK_URL" --procs 8 --resources 8 \
    --attempts 5000 --ttl-ms 80 --faults --dir "$dir" &
race=$!

# Kill the leader, see the race carry on without it, restart it and see
# it rejoin as a follower.
for round in 1; do
    wait_more "work before kill $round" 8192
    old=$(zk_wait_leader $((30 * M))) ||
        { echo "t-zk-failover: no leader" >&2; exit 1; }
    zk_kill "$old"
    # An election takes seconds on a quiet machine; 60 s leaves room for
    # two JVMs starved by whatever else the machine runs.
    new=$(zk_wait_leader $((60 * M))) ||
        { echo "t-zk-failover: no new leader after $old" >&2; exit 1; }
    [ "$new" != "$old" ]
    wait_more "work after killing leader $old" 8192
    echo "t-zk-failover: round $round (${SECONDS}s): leader $old killed," \
        "$new leads, the race went on"
    zk_restart "$old"
    mode=$(zk__mode "$old")
    [ "$mode" = follower ] ||
        { echo "t-zk-failover: member $old rejoined as '$mode'" >&2; exit 1; }
    echo "t-zk-failover: round $round (${SECONDS}s): member $old is back"
done

rc=0
wait "$race" || rc=$?
race=
[ "$rc" -eq 0 ] || { echo "t-zk-failover: race failed ($rc)" >&2; exit 1; }
echo "t-zk-failover: race done after ${SECONDS}s"
"$B/vsectl" check --store "$VSE_ZK_URL"
