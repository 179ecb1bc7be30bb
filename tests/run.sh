#!/usr/bin/env bash
# run.sh - the test runner `make check` calls: every BUILD_DIR/tests/test-*
# binary and every tests/integration/t-*.sh, each in its own process under
# a timeout (as libuv's runner), one PASS/FAIL line each, the tail of a
# failing test's output, and a last line "N passed, N failed".
#
#   tests/run.sh BUILD_DIR [NAME...]     NAME: run only tests whose name
#                                        contains one of these strings
#
# Environment: VSE_TEST_TIMEOUT (seconds, default 300) is multiplied by
# VSE_TEST_TIMEOUT_MULTIPLIER (default 1; e.g. 3 under sanitizers).
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

tests=()
for t in "$VSE_BUILD"/tests/test-*; do
    [ -f "$t" ] && [ -x "$t" ] && tests+=("$t")
done
for t in "$root"/tests/integration/t-*.sh; do
    [ -f "$t" ] && tests+=("$t")
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

passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in "${tests[@]}"; do
    name=$(basename "$t")
    selected "$name" || continue
    start=$(date +%s)
    # Each test starts in the repository root, as make does; the runner's
    # own stdin is not theirs.
    (cd "$root" && exec timeout --kill-after=10 "$limit" "$t") \
        </dev/null >"$out" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    if [ "$rc" -eq 0 ]; then
        echo "PASS $name (${secs}s)"
        passed=$((passed + 1))
    else
        why=$rc
        [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] &&
            why="$rc: timed out after ${limit}s"
        echo "FAIL $name ($why)"
        tail -n 40 "$out" | sed 's/^/    | /'
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
