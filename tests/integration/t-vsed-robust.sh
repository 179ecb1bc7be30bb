#!/usr/bin/env bash
# t-vsed-robust.sh - vsed under hostile or heavy clients: idle, stalled
# and dripping connections are timed out; 1,000 concurrent connections
# are all served; SIGTERM with a request in flight finishes it, then
# exits 0 with the store closed.
set -u
. "$(dirname "$0")/vsed-lib.sh"
CL="python3 $(dirname "$0")/vsed-clients.py"

cat >"$T/vsed.yaml" <<YAML
auth: noauth
reaper_interval: 0
limits:
  idle_timeout: 1
  request_timeout: 2
  connections: 2000
YAML
start_vsed "$T/vsed.log" --store "sqlite:$T/s.db" --config "$T/vsed.yaml" ||
    { cat "$T/vsed.log"; exit 1; }
PORT=${URL##*:}

out=$($CL idle "$PORT" 5) && ok "idle connection timed out ($out)" ||
    not_ok "idle connection timed out" "$out"
out=$($CL slow "$PORT" 5) && ok "stalled body timed out ($out)" ||
    not_ok "stalled body timed out" "$out"
out=$($CL drip "$PORT" 8) && ok "dripping body cut ($out)" ||
    not_ok "dripping body cut" "$out"
out=$($CL many "$PORT" 1000) && ok "1000 concurrent connections ($out)" ||
    not_ok "1000 concurrent connections" "$out"
req GET /healthz
expect "still healthy after the crowd" 200

# Graceful shutdown: a request whose body is half sent when SIGTERM comes
# is still carried out and answered; new connections are refused.
mkfifo "$T/go"
$CL inflight "$PORT" /v1/resources <"$T/go" >"$T/inflight.out" &
cpid=$!
exec 7>"$T/go"
for i in $(seq 1 250); do
    grep -q ready "$T/inflight.out" && break
    sleep 0.02
done
kill -TERM "$PID"
for i in $(seq 1 250); do
    grep -q 'SIGTERM: stopping' "$T/vsed.log" && break
    sleep 0.02
done
if curl -s -m 2 -o /dev/null "$URL/healthz"; then
    not_ok "no new connections while stopping"
else
    ok "no new connections while stopping"
fi
kill -0 "$PID" 2>/dev/null && ok "waits for the request in flight" ||
    not_ok "waits for the request in flight"
echo >&7
exec 7>&-
wait "$cpid"
grep -q 'status 201' "$T/inflight.out" && ok "request in flight finished (201)" ||
    not_ok "request in flight finished" "$(cat "$T/inflight.out")"
wait "$PID"
rc=$?
[ "$rc" = 0 ] && ok "exit 0 after SIGTERM" || not_ok "exit 0 after SIGTERM" "rc $rc"
grep -q 'stopped; store closed' "$T/vsed.log" && ok "store closed" ||
    not_ok "store closed" "$(tail -3 "$T/vsed.log")"
"$VSECTL" --store "sqlite:$T/s.db" get inflight >/dev/null &&
    ok "the in-flight create is in the store" || not_ok "the in-flight create is in the store"
finish
