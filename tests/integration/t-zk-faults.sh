#!/usr/bin/env bash
# t-zk-faults.sh - store-level faults on a standalone ZooKeeper member:
# one transition (zkfault.c) across each of
#   1. the server killed (-9) and restarted while the call waits: the
#      client reconnects by itself, the call is done, exactly once;
#   2. the server down past the client's reconnect budget: the call fails
#      clearly (VSE_ESTORE) and wrote nothing;
#   3. the server frozen (SIGSTOP) with the multi sent, longer than the
#      client waits for an answer: the answer is lost, the store settles
#      it by reading the history node the multi would have made, and the
#      call is done, exactly once.  The call is made at the store level
#      (zkfault --direct), so that the multi is what meets the frozen
#      server: through libvse the reads before it would wait for the
#      server, and the multi go to a live one;
#   4. the session expired (the client process stopped until the server
#      drops it): the store opens a new session and the call is done;
#   5. as 3, for a renew that writes no history row: settled by the row
#      alone, done exactly once, no history row.
# Settling closes the session the write went out on first: the frozen
# server reads the request when it wakes, and without the close it could
# still commit it after the read that settled it as not written.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
M=${VSE_TEST_TIMEOUT_MULTIPLIER:-1}
. "$(dirname "$0")/../zk.sh"
zk_start
work=$(mktemp -d)
helper=
cleanup() {
    [ -n "$helper" ] && kill -CONT "$helper" 2>/dev/null
    [ -n "$helper" ] && kill "$helper" 2>/dev/null
    zk_cleanup
    rm -rf "$work"
}
trap cleanup EXIT
# The shortest session the member grants (minSessionTimeout): the client
# gives up on a silent server after two thirds of it.
export VSE_ZK_SESSION_MS=2000

# await FILE: poll for it with a deadline.
await() {
    local deadline=$((SECONDS + 30 * M))
    while [ ! -e "$1" ]; do
        if [ $SECONDS -ge $deadline ]; then
            echo "t-zk-faults: timed out waiting for $1" >&2
            exit 1
        fi
        sleep 0.05
    done
}

# mntr KEY: the member's monitoring value.
mntr() {
    timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
        printf mntr >&3; cat <&3' mntr "$ZK_PORTS" 2>/dev/null |
        awk -v k="$1" '$1 == k { print $2 }'
}

# run NAME EXPECT [OPTION...]: start zkfault on a fresh chroot.
n=0
run() {
    n=$((n + 1))
    d=$work/$1
    mkdir -p "$d"
    "$B/tests/zkfault" --store "zookeeper://$ZK_HOSTS/faults-$n" --dir "$d" \
        --expect "$2" "${@:3}" >"$d/out" 2>&1 &
    helper=$!
    await "$d/ready"
}

# answered PATTERN: the call's answer (DIR/result) matches.
answered() {
    await "$d/result"
    grep -q "$1" "$d/result" && return 0
    echo "t-zk-faults: $d: expected an answer matching '$1':" >&2
    cat "$d/result" "$d/out" >&2
    exit 1
}

finish() {
    touch "$d/check"
    if ! wait "$helper"; then
        echo "t-zk-faults: $1:" >&2
        cat "$d/out" >&2
        exit 1
    fi
    helper=
    echo "$1: $(head -c 200 "$d/result")"
}

# 1. Killed and restarted within the budget.
VSE_ZK_RECONNECT_MS=$((60000 * M)) run restart done
zk_kill 1
touch "$d/go"
zk_restart 1
answered '^VSE_OK '
finish restart

# 2. Down past the budget: nothing sent, nothing written.
VSE_ZK_RECONNECT_MS=1500 run outage failed
zk_kill 1
touch "$d/go"
answered '^VSE_ESTORE .*cannot connect'
zk_restart 1
finish outage

# lost_answer NAME [OPTION...]: the server frozen as the write is sent,
# for longer than the client waits (2/3 of 2 s); a duration is the fault
# here.  The call must be done, after the freeze.
lost_answer() {
    local pid=${ZK_PIDS%% *} ms
    VSE_ZK_RECONNECT_MS=$((60000 * M)) run "$1" done --direct "${@:2}"
    kill -STOP "$pid"
    touch "$d/go"
    sleep 3
    kill -CONT "$pid"
    answered '^VSE_OK '
    ms=$(awk '{ print $2 }' "$d/result")
    [ "$ms" -ge 2500 ] || { echo "t-zk-faults: $1 took $ms ms" >&2; exit 1; }
    finish "$1"
}

# 3. The answer of a transition's multi lost.
lost_answer lost-answer

# 4. Session expiry: the client stopped until the member drops its
# connection (it does so when it expires the session); mntr counts its
# own connection, so 1 is "nobody else".
VSE_ZK_RECONNECT_MS=$((60000 * M)) run expiry done --pause
deadline=$((SECONDS + 30 * M))
until [ "$(mntr zk_num_alive_connections)" = 1 ]; do
    if [ $SECONDS -ge $deadline ]; then
        echo "t-zk-faults: the session was never expired" >&2
        exit 1
    fi
    sleep 0.1
done
kill -CONT "$helper"
answered '^VSE_OK '
finish expiry

# 5. As 3, for a renew without a history row (a heartbeat).
lost_answer lost-renew --renew
