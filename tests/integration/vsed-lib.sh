# vsed-lib.sh - sourced by the t-vsed-*.sh tests: start vsed on a free
# port (port 0, read back from its log), wait for /healthz with a
# deadline (never a bare sleep), and stop every server on exit.
B=${VSE_BUILD:?VSE_BUILD names the build directory}
VSED=$B/vsed
VSECTL=$B/vsectl
T=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
not_ok() {
    failed=$((failed + 1))
    echo "FAIL $1"
    shift
    for l in "$@"; do printf '     | %s\n' "$l"; done
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# start_vsed LOG ARGS...: sets PID and URL; 1 if it did not come up.
start_vsed() {
    local log=$1 i port
    shift
    "$VSED" --listen 127.0.0.1:0 "$@" 2>"$log" &
    PID=$!
    PIDS+=("$PID")
    for i in $(seq 1 500); do
        port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' \
            "$log" | head -1)
        if [ -n "$port" ]; then
            URL=http://127.0.0.1:$port
            curl -fs -m 2 "$URL/healthz" >/dev/null && return 0
        fi
        kill -0 "$PID" 2>/dev/null || return 1
        sleep 0.02
    done
    return 1
}

# stop_vsed: SIGTERM, then wait for the exit; sets STOP_RC.
stop_vsed() {
    kill -TERM "$PID" 2>/dev/null
    wait "$PID"
    STOP_RC=$?
}

# req METHOD PATH [BODY [CURL ARGS...]]: CODE, BODY, HDRS.
req() {
    local m=$1 p=$2 body=${3-}
    shift 3 2>/dev/null || shift $#
    if [ -n "$body" ]; then
        CODE=$(curl -s -m 10 -o "$T/.body" -D "$T/.hdrs" -w '%{http_code}' \
            -X "$m" -H 'Content-Type: application/json' --data-binary "$body" \
            "$@" "$URL$p")
    else
        CODE=$(curl -s -m 10 -o "$T/.body" -D "$T/.hdrs" -w '%{http_code}' \
            -X "$m" "$@" "$URL$p")
    fi
    BODY=$(cat "$T/.body")
    HDRS=$(tr -d '\r' <"$T/.hdrs")
}

# expect NAME CODE [JQ-LIKE PYTHON EXPRESSION on j]
expect() {
    local name=$1 code=$2 expr=${3-}
    if [ "$CODE" != "$code" ]; then
        not_ok "$name" "want $code, got $CODE" "$BODY"
        return
    fi
    if [ -n "$expr" ] && ! printf '%s' "$BODY" | python3 -c "
import json, sys
j = json.load(sys.stdin)
sys.exit(0 if ($expr) else 1)" 2>/dev/null; then
        not_ok "$name" "body fails: $expr" "$BODY"
        return
    fi
    ok "$name"
}

jget() {
    printf '%s' "$BODY" | python3 -c "import json,sys; print($1)"
}

# check_clean STORE HOST=POOL STUCK_MS: poll `vsectl check --pool
# --stuck-after` (deadline 20 s x multiplier) until it finds nothing:
# 0 when clean, 1 with its last report in $T/check, followed by every
# volume not at rest in available, in-use or deleted, and the history of
# those and of every resource a violation names:
# what a failure needs to be understood from the log alone.
check_clean() {
    local end=$((SECONDS + 20 * ${VSE_TEST_TIMEOUT_MULTIPLIER:-1})) id
    until "$VSECTL" --store "$1" check --pool "$2" \
        --stuck-after "${3}ms" >"$T/check" 2>&1; do
        if [ $SECONDS -ge $end ]; then
            "$VSECTL" --store "$1" list --machine volume |
                grep -vE " (available|in_use|deleted) " >"$T/odd"
            # ...and every resource a violation names, at rest or not.
            for id in $(awk 'NR > 1 { print $1 }' "$T/odd") \
                $(sed -n 's/^\([0-9a-f-]\{36\}\): .*/\1/p' "$T/check"); do
                "$VSECTL" --store "$1" history "$id" >>"$T/odd" 2>&1
            done
            cat "$T/odd" >>"$T/check"
            return 1
        fi
        sleep 0.2
    done
}
