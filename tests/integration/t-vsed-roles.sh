#!/usr/bin/env bash
# t-vsed-roles.sh - the roles on one host, started as a new user would
# (issue 12): api, scheduler, reaper and two volume roles beside each
# other on one SQLite store, the non-API roles with only `--role R --store
# URL` (and --host/--pool/--capacity-gb for the volume roles).  Only the
# API listens: the other roles bind no port, all stay up, the real cinder
# client's service-list shows them, and a volume created through the API
# gets to available.  A second API role on a port already taken exits 1,
# naming the address, before it registers anything.  One volume role
# runs four workers (--volume-workers); sixteen creates at once end
# available, one file each.
set -u
. "$(dirname "$0")/vsed-lib.sh"
command -v cinder >/dev/null || { echo "cinder client missing"; exit 1; }
HOST=$(hostname)
S="sqlite:$T/s.db"

# The API listens on a free port (start_vsed adds --listen 127.0.0.1:0):
# its default, 127.0.0.1:8776, may be taken by another program on a
# shared machine.  noauth: the default token mode without tokens in a
# config would refuse the client.
start_vsed "$T/api.log" --role api --store "$S" --auth noauth ||
    { cat "$T/api.log"; exit 1; }
API_PID=$PID
PORT=${URL##*:}
role() { # LOG ARGS...: a role exactly as given, in the background
    local log=$1
    shift
    "$VSED" "$@" 2>"$log" &
    PIDS+=("$!")
    RPIDS+=("$!")
}
RPIDS=()
role "$T/sched.log" --role scheduler --store "$S"
role "$T/reaper.log" --role reaper --store "$S"
role "$T/hv1.log" --role volume --store "$S" --host hv1 --pool "$T/p1" \
    --capacity-gb 10
role "$T/hv2.log" --role volume --store "$S" --host hv2 --pool "$T/p2" \
    --capacity-gb 10 --volume-workers 4
C=(cinder --os-auth-type noauth --os-user-id alice --os-project-id p1
   --os-endpoint "$URL/v3")
H=(-H 'X-Auth-Token: alice:p1' -H 'OpenStack-API-Version: volume 3.70')

# Every service up in service-list, polled with a deadline (the client
# takes about a second a call, so poll the same route with curl first).
want="cinder-api@$HOST cinder-scheduler@$HOST vse-reaper@$HOST cinder-volume@hv1 cinder-volume@hv2"
services() { curl -s "${H[@]}" "$URL/v3/os-services" | python3 -c '
import json, sys
print(" ".join(sorted(s["binary"] + "@" + s["host"] for s in
                      json.load(sys.stdin)["services"] if s["state"] == "up")))
' 2>/dev/null; }
sorted=$(tr ' ' '\n' <<<"$want" | sort | tr '\n' ' ' | sed 's/ $//')
for i in $(seq 1 750); do
    [ "$(services)" = "$sorted" ] && break
    sleep 0.02
done
[ "$(services)" = "$sorted" ] && ok "os-services: all five roles up" ||
    not_ok "os-services: all five up" "got: $(services)" "want: $sorted" \
        "$(tail -3 "$T"/*.log)"
out=$("${C[@]}" service-list 2>&1)
for s in "cinder-api *| $HOST" "cinder-scheduler *| $HOST" \
    "vse-reaper *| $HOST" "cinder-volume *| hv1" "cinder-volume *| hv2"; do
    grep -q "$s .*| up " <<<"$out" && ok "cinder service-list: $s up" ||
        not_ok "cinder service-list: $s up" "$out"
done

# Only the API listens; every role is still running.
for i in "${!RPIDS[@]}"; do
    p=${RPIDS[$i]}
    if ! kill -0 "$p" 2>/dev/null; then
        not_ok "role $i (pid $p) is up" "$(cat "$T"/*.log | tail -20)"
        continue
    fi
    n=$(ss -Hltnp | grep -c "pid=$p,")
    [ "$n" -eq 0 ] && ok "role $i (pid $p) up, listening on nothing" ||
        not_ok "role $i listens on nothing" "$(ss -Hltnp | grep "pid=$p,")"
done
[ "$(ss -Hltnp | grep "pid=$API_PID," | grep -c ":$PORT ")" -eq 1 ] &&
    ok "the api role listens on 127.0.0.1:$PORT" ||
    not_ok "api listens" "$(ss -Hltnp | grep "pid=$API_PID,")"
grep -q "no HTTP: no api role and no --listen" "$T/sched.log" &&
    ok "the scheduler says it serves no HTTP" ||
    not_ok "scheduler log" "$(cat "$T/sched.log")"

# A volume through the API, the scheduler and a volume role.
out=$("${C[@]}" create --name r1 1 2>&1)
V=$(printf '%s\n' "$out" | awk -F'|' '{gsub(/ /, "", $2); gsub(/ /, "", $3)}
    $2 == "id" {print $3}')
vstatus() { curl -s "${H[@]}" "$URL/v3/volumes/$V" | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["volume"]["status"])' \
    2>/dev/null; }
for i in $(seq 1 500); do
    [ "$(vstatus)" = available ] && break
    sleep 0.02
done
[ -n "$V" ] && [ "$(vstatus)" = available ] &&
    ok "a volume created through the api gets to available" ||
    not_ok "volume available" "id '$V': $(vstatus)" "$out" \
        "$(tail -5 "$T"/hv*.log "$T/sched.log")"

# A second API role on the port the first one holds.
"$VSED" --role api --store "$S" --auth noauth --host api2 \
    --listen "127.0.0.1:$PORT" >"$T/o" 2>&1
rc=$?
[ "$rc" -eq 1 ] && grep -q "cannot listen on 127.0.0.1:$PORT: Address already in use" "$T/o" &&
    ! grep -q "port 0" "$T/o" &&
    ok "second api on a taken port: exit 1, the address named" ||
    not_ok "second api on a taken port" "rc $rc" "$(cat "$T/o")"
"$VSECTL" --store "$S" get "cinder-api@api2" >"$T/o" 2>&1
rc=$?
[ "$rc" -eq 4 ] && ok "the second api registered nothing" ||
    not_ok "second api registered nothing" "rc $rc" "$(cat "$T/o")"
# --volume-workers: hv2 carries its jobs with four threads; sixteen
# creates at once all end available, each with one file where the store
# says, and the pools agree with the store.
grep -q "volume: host hv2, .*, with 4 workers" "$T/hv2.log" &&
    ok "hv2 runs 4 volume workers" || not_ok "hv2 workers" "$(cat "$T/hv2.log")"
CURLS=()
for i in $(seq 1 16); do
    curl -s -o /dev/null "${H[@]}" -H 'Content-Type: application/json' \
        -d '{"volume": {"size": 1}}' "$URL/v3/volumes" &
    CURLS+=("$!")
done
wait_created() { curl -s "${H[@]}" "$URL/v3/volumes/detail" | python3 -c '
import json, sys
v = json.load(sys.stdin)["volumes"]
sys.exit(0 if len(v) >= 17 and all(x["status"] == "available" for x in v) else 1)'; }
wait "${CURLS[@]}" # only the curls: the roles are children too
for i in $(seq 1 500); do wait_created && break; sleep 0.04; done
wait_created && ok "16 creates at once: all available" ||
    not_ok "16 creates at once" "$(curl -s "${H[@]}" "$URL/v3/volumes/detail" | head -c 600)"
"$VSECTL" --store "$S" check --pool "hv1=$T/p1" --pool "hv2=$T/p2" \
    >"$T/check" 2>&1 && [ "$(ls "$T/p1" "$T/p2" | grep -c '^volume-')" -ge 17 ] &&
    ok "check --pool: every volume one file, in its host's pool" ||
    not_ok "check --pool with workers" "$(cat "$T/check")" "$(ls "$T/p1" "$T/p2")"
for bad in 0 65 x; do
    "$VSED" --role volume --store "$S" --host hv3 --pool "$T/p3" \
        --volume-workers "$bad" >"$T/o" 2>&1
    rc=$?
    [ "$rc" -eq 2 ] && grep -q "volume-workers '$bad' must be a number from 1 to 64" "$T/o" &&
        ok "--volume-workers $bad: exit 2" ||
        not_ok "--volume-workers $bad" "rc $rc" "$(cat "$T/o")"
done
for p in "${RPIDS[@]}" "$API_PID"; do
    kill -0 "$p" 2>/dev/null || not_ok "pid $p still up at the end"
done
finish
