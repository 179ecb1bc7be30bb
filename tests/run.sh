#!/usr/bin/env bash
# run.sh - the test runner `make check` calls: every BUILD_DIR/tests/test-*
# binary and every tests/integration/t-*.sh, each in its own process under
# a timeout (as libuv's runner), one PASS/FAIL line each as it ends, the
# tail of a failing test's output, and a last line "N passed, N failed".
#
#   tests/run.sh BUILD_DIR [NAME...]     NAME: run only tests whose name
#                                        contains one of these strings
#
# Tests run VSE_TEST_JOBS at a time (default 2, the cores of the machines
# this runs on): most of a test's time is spent waiting for servers and
# clients, not computing, and every test already works in its own temp
# directory on free ports.  The integration scripts start first because
# they are the long ones; the short unit binaries fill in behind them.
#
# Environment: VSE_TEST_TIMEOUT (seconds, default 300) is multiplied by
# VSE_TEST_TIMEOUT_MULTIPLIER (default 1; e.g. 3 under sanitizers);
# VSE_TEST_JOBS (1 runs one test at a time, as before).
set -u

build=${1:?usage: tests/run.sh BUILD_DIR [NAME...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$build" ] || { echo "run.sh: no build directory '$build'" >&2; exit 2; }
VSE_BUILD=$(cd "$build" && pwd)
export VSE_BUILD

base=${VSE_TEST_TIMEOUT:-300}
mult=${VSE_TEST_TIMEOUT_MULTIPLIER:-1}
limit=$(awk -v b="$base" -v m="$mult" 'BEGIN {
    t = b * m; if (t !~ /^[0-9.]+$/ || t <= 0) t = b; printf "%d", t + 0.999 }')
jobs=${VSE_TEST_JOBS:-2}
case $jobs in
'' | *[!0-9]* | 0*)
    echo "run.sh: VSE_TEST_JOBS must be a positive integer, not '$jobs'" >&2
    exit 2
    ;;
esac

tests=()
for t in "$root"/tests/integration/t-*.sh; do
    [ -f "$t" ] && tests+=("$t")
done
for t in "$VSE_BUILD"/tests/test-*; do
    [ -f "$t" ] && [ -x "$t" ] && tests+=("$t")
done

selected() {
    local name=$1 pat
    [ "${#patterns[@]}" -eq 0 ] && return 0
    for pat in "${patterns[@]}"; do
        case $name in *"$pat"*) return 0 ;; esac
    done
    return 1
}
patterns=("$@")

outdir=$(mktemp -d)
trap 'rm -rf "$outdir"' EXIT

# run_one NAME PATH: one test, its output in outdir/NAME.out; its exit
# status and seconds in outdir/NAME.rc once it ends.
run_one() {
    local name=$1 t=$2 start rc
    start=$(date +%s)
    # Each test starts in the repository root, as make does; the runner's
    # own stdin is not theirs.
    (cd "$root" && exec timeout --kill-after=10 "$limit" "$t") \
        </dev/null >"$outdir/$name.out" 2>&1
    rc=$?
    echo "$rc $(($(date +%s) - start))" >"$outdir/$name.rc"
}

passed=0
failed=0
declare -A pid_name=()

# report PID: print the line of the test that ran as PID.
report() {
    local name=${pid_name[$1]} rc secs why
    unset "pid_name[$1]"
    read -r rc secs <"$outdir/$name.rc" 2>/dev/null || { rc=1 secs=?; }
    if [ "$rc" -eq 0 ]; then
        echo "PASS $name (${secs}s)"
        passed=$((passed + 1))
    else
        why=$rc
        [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] &&
            why="$rc: timed out after ${limit}s"
        echo "FAIL $name ($why, ${secs}s)"
        # The test's own failing checks first: a long test's tail may
        # not hold them.
        grep -m 10 -E '^(FAIL|not ok)' "$outdir/$name.out" |
            sed 's/^/    ! /' || true
        tail -n 40 "$outdir/$name.out" | sed 's/^/    | /'
        failed=$((failed + 1))
    fi
}

# wait_one: wait for any running test to end and report it.
wait_one() {
    local done_pid
    wait -n -p done_pid "${!pid_name[@]}"
    report "$done_pid"
}

for t in "${tests[@]}"; do
    name=$(basename "$t")
    selected "$name" || continue
    while [ "${#pid_name[@]}" -ge "$jobs" ]; do
        wait_one
    done
    run_one "$name" "$t" &
    pid_name[$!]=$name
done
while [ "${#pid_name[@]}" -gt 0 ]; do
    wait_one
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
