# vsed-start.sh - sourced by the bench/ scripts that run vsed processes:
#
#   start LOG ARGS...   vsed --listen 127.0.0.1:0 ARGS in the background,
#                       its pid added to PIDS, URL set once /healthz
#                       answers (polled with a deadline); exits the script
#                       with vsed's log if it does not come up
#
# The caller sets B (the build directory) and PIDS=() and kills PIDS on
# exit.  (tests/integration/vsed-lib.sh is the tests' counterpart.)
start() {
    local log=$1 i port
    shift
    "$B/vsed" --listen 127.0.0.1:0 "$@" 2>"$log" &
    PIDS+=($!)
    for i in $(seq 1 500); do
        port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' \
            "$log" | head -1)
        if [ -n "$port" ] && curl -fs -m 2 "http://127.0.0.1:$port/healthz" \
            >/dev/null; then
            URL=http://127.0.0.1:$port
            return 0
        fi
        kill -0 "${PIDS[-1]}" 2>/dev/null || break
        sleep 0.02
    done
    echo "$(basename "$0"): vsed did not start:" >&2
    cat "$log" >&2
    exit 1
}
