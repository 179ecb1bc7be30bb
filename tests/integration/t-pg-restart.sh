#!/usr/bin/env bash
# t-pg-restart.sh - server loss (issue 4): 2 pgloss worker processes of 8
# threads each (more than a process's batches in flight, so that their
# transitions go in group commits, and a crash lands mid-batch) attach and detach volumes while PostgreSQL is stopped with `pg_ctl stop -m
# immediate` twice: once restarted at once (clients must reconnect by
# themselves and carry on), once kept down past the clients' reconnect
# budget (calls must be reported failed, or "outcome unknown", never
# silently lost).  pgloss then checks every call against the history and
# vsectl check the invariants.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
M=${VSE_TEST_TIMEOUT_MULTIPLIER:-1}
. "$(dirname "$0")/../pg.sh"
pg_start
dir=$(mktemp -d)
loss=
cleanup() {
    touch "$dir/stop"
    [ -n "$loss" ] && kill "$loss" 2>/dev/null
    pg_cleanup
    rm -rf "$dir"
}
trap cleanup EXIT

lines() { cat "$dir"/worker-*.log 2>/dev/null | wc -l; }
failures() { cat "$dir"/worker-*.log 2>/dev/null | awk '$5 >= 2' | wc -l; }
# wait_for WHAT CMD MIN: poll until CMD prints at least MIN, with deadline.
wait_for() {
    local what=$1 cmd=$2 min=$3 deadline=$((SECONDS + 30 * M))
    while [ "$($cmd)" -lt "$min" ]; do
        if [ $SECONDS -ge $deadline ]; then
            echo "t-pg-restart: timed out waiting for $what" >&2
            tail -n 3 "$dir"/worker-*.log >&2
            exit 1
        fi
        sleep 0.05
    done
}

# 3 s budget: a restart is bridged, the long outage is not.
VSE_PG_RECONNECT_MS=3000 "$B/tests/pgloss" --store "$VSE_PG_URL" \
    --procs 2 --threads 8 --resources 8 --ttl-ms 1000 --dir "$dir" &
loss=$!

wait_for "a first load" lines 500
pg_crash
pg_restart
n=$(lines)
wait_for "work after the restart" lines $((n + 500))
echo "t-pg-restart: clients carried on after a restart ($n calls before)"

f0=$(failures)
pg_crash
# Down until calls have reported failures: by then every client has run
# out of its reconnect budget at least once.
wait_for "calls reported failed" failures $((f0 + 16))
pg_restart
n=$(lines)
wait_for "work after the outage" lines $((n + 500))
touch "$dir/stop"
wait "$loss"
loss=
"$B/vsectl" check --store "$VSE_PG_URL"
