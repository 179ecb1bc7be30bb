#!/usr/bin/env bash
# t-vsed-cinder.sh - the Cinder v3 API driven by the real Debian client
# (python3-cinderclient) against vsed --all-in-one on SQLite: create,
# list, show, extend, snapshots, attachments (and the legacy actions with
# curl), reset-state, force-delete, delete, service-list, limits; refusals
# name the status and the op in flight; files in the pool match the store.
# Then token mode: projects see only their volumes, members get 403 on
# admin actions, and the client works with --os-auth-type admin_token.
set -u
. "$(dirname "$0")/vsed-lib.sh"
command -v cinder >/dev/null || { echo "cinder client missing"; exit 1; }

POOL=$T/pool
start_vsed "$T/vsed.log" --all-in-one --auth noauth --store "sqlite:$T/s.db" \
    --host h1 --pool "$POOL" --capacity-gb 20 --reaper-interval 1 ||
    { cat "$T/vsed.log"; exit 1; }
C=(cinder --os-auth-type noauth --os-user-id alice --os-project-id p1
   --os-endpoint "$URL/v3")
C2=(cinder --os-auth-type noauth --os-user-id bob --os-project-id p2
    --os-endpoint "$URL/v3")
H=(-H 'X-Auth-Token: alice:p1' -H 'OpenStack-API-Version: volume 3.70')

# field OUTPUT NAME: the value of a print_dict row.
field() { printf '%s\n' "$1" | awk -F'|' -v k="$2" \
    '{gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $3)} $2 == k {print $3}'; }
# vstatus ID: Cinder status via the API (curl: faster than the client).
vstatus() { [ -n "${1-}" ] || { echo "(no id)"; return; }; curl -s "${H[@]}" "$URL/v3/volumes/$1" | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["volume"]["status"])' \
    2>/dev/null; }
sstatus() { [ -n "${1-}" ] || { echo "(no id)"; return; }; curl -s "${H[@]}" "$URL/v3/snapshots/$1" | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["snapshot"]["status"])' \
    2>/dev/null || echo gone; }
# wait_for NAME CMD WANT: poll CMD until it prints WANT (10 s deadline).
wait_for() {
    local name=$1 want=$3 got i
    for i in $(seq 1 500); do
        got=$($2)
        [ "$got" = "$want" ] && { ok "$name"; return 0; }
        sleep 0.02
    done
    not_ok "$name" "want '$want', got '$got'"
    return 1
}
check() { # check NAME CONDITION-STATUS OUTPUT
    if [ "$2" -eq 0 ]; then ok "$1"; else not_ok "$1" "$3"; fi
}

# Version discovery as the client does it.
req GET /
expect "GET / is 300 with v3 3.70" 300 \
    "j['versions'][0]['version'] == '3.70' and j['versions'][0]['min_version'] == '3.0'"
req GET /v3/p1/volumes '' -H 'X-Auth-Token: alice:p1' \
    -H 'OpenStack-API-Version: volume 3.71'
expect "microversion 3.71 refused" 406
req GET /v3/p1/volumes '' -H 'X-Auth-Token: alice:p1' \
    -H 'OpenStack-API-Version: volume 3.27'
grep -qi '^OpenStack-API-Version: volume 3.27' <<<"$HDRS" &&
    ok "microversion echoed" || not_ok "microversion echoed" "$HDRS"
req GET /v3/p1/attachments '' -H 'X-Auth-Token: alice:p1' \
    -H 'OpenStack-API-Version: volume 3.26'
expect "attachments need 3.27" 404

# create -> available, through scheduling and the host's manager, seen
# live by a watcher that started before the create.
seq=$(curl -s "$URL/v1/events?since=0" -m 0.5 | sed -n 's/^id: //p' | tail -1)
"$VSECTL" --url "$URL" watch --since "${seq:-0}" --timeout 30 >"$T/watch" &
PIDS+=($!)
out=$("${C[@]}" create --name vol-a 1 2>&1)
V=$(field "$out" id)
[ "$(field "$out" status)" = creating ] && ok "create answers creating" ||
    not_ok "create answers creating" "$out"
wait_for "create ends available" "vstatus $V" available
[ -f "$POOL/volume-$V" ] && [ "$(stat -c %s "$POOL/volume-$V")" = 1073741824 ] &&
    ok "a 1 GiB sparse file in the pool" || not_ok "a 1 GiB file" "$(ls -l "$POOL")"
hist=$("$VSECTL" --url "$URL" history "$V" 2>&1)
for st in creating_db scheduling creating_vol available; do
    grep -q "→ $st" <<<"$hist" || { not_ok "history passes $st" "$hist"; continue; }
    ok "history passes $st"
done
grep -q 'task create_volume.driver_create: done' <<<"$hist" &&
    ok "tasks recorded in history" || not_ok "tasks recorded" "$hist"
watched() { python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
path = [(r["kind"], r["to"], r.get("reason") or "") for r in rows
        if r["resource"] == sys.argv[2]]
want = ["creating_db", "scheduling", "scheduling", "creating_vol",
        "creating_vol", "creating_vol", "available"]
sys.exit(0 if [p[1] for p in path] == want and
         "task schedule: start" in path[2][2] else 1)' "$T/watch" "$V"; }
for i in $(seq 1 250); do watched && break; sleep 0.02; done
watched && ok "vsectl watch shows the flow live, task by task" ||
    not_ok "vsectl watch shows the flow" "$(cat "$T/watch")"

out=$("${C[@]}" list 2>&1)
grep -q "$V.*available.*vol-a.*| 1 " <<<"$out" && ok "list" || not_ok "list" "$out"
out=$("${C2[@]}" list 2>&1)
grep -q "$V" <<<"$out" && not_ok "other project does not list it" "$out" ||
    ok "other project does not list it"
out=$("${C[@]}" show "$V" 2>&1)
[ "$(field "$out" name)" = vol-a ] && [ "$(field "$out" size)" = 1 ] &&
    ok "show" || not_ok "show" "$out"
"${C[@]}" rename "$V" vol-b >/dev/null 2>&1
out=$("${C[@]}" show "$V" 2>&1)
[ "$(field "$out" name)" = vol-b ] && ok "rename (PUT)" || not_ok "rename" "$out"

# extend
"${C[@]}" extend "$V" 3 >/dev/null 2>&1
wait_for "extend ends available" "vstatus $V" available
out=$("${C[@]}" show "$V" 2>&1)
[ "$(field "$out" size)" = 3 ] && [ "$(stat -c %s "$POOL/volume-$V")" = 3221225472 ] &&
    ok "extend grew the volume and its file" || not_ok "extend" "$out"
out=$("${C[@]}" extend "$V" 2 2>&1)
grep -q 'must be greater than current size' <<<"$out" &&
    ok "shrink refused" || not_ok "shrink refused" "$out"
out=$("${C[@]}" extend "$V" 100 2>&1)
wait_for "extend over capacity ends error_extending" "vstatus $V" error_extending
"${C[@]}" reset-state --state available "$V" >/dev/null 2>&1
[ "$(vstatus "$V")" = available ] && ok "reset-state to available" ||
    not_ok "reset-state" "$(vstatus "$V")"

# snapshots
out=$("${C[@]}" snapshot-create --name snap-a "$V" 2>&1)
S=$(field "$out" id)
wait_for "snapshot ends available" "sstatus $S" available
[ -f "$POOL/snapshot-$S" ] && ok "snapshot file" || not_ok "snapshot file" "$(ls "$POOL")"
out=$("${C[@]}" snapshot-list 2>&1)
grep -q "$S.*$V.*available.*snap-a" <<<"$out" && ok "snapshot-list" ||
    not_ok "snapshot-list" "$out"
out=$("${C[@]}" delete "$V" 2>&1)
grep -q 'still has 1 dependent snapshots' <<<"$out" &&
    ok "delete refused while a snapshot exists" || not_ok "delete with snapshot" "$out"
"${C[@]}" snapshot-delete "$S" >/dev/null 2>&1
wait_for "snapshot deleted" "sstatus $S" gone
[ ! -e "$POOL/snapshot-$S" ] && ok "snapshot file removed" ||
    not_ok "snapshot file removed" "$(ls "$POOL")"

# attachments (3.27+): reserve, connect, complete, refuse, delete
out=$("${C[@]}" attachment-create "$V" srv-1 2>&1)
A=$(field "$out" id)
[ "$(field "$out" status)" = reserved ] && [ "$(vstatus "$V")" = reserved ] &&
    ok "attachment-create reserves" || not_ok "attachment-create" "$out"
out=$("${C[@]}" delete "$V" 2>&1)
grep -q "status is 'reserved'.*attach" <<<"$out" &&
    ok "delete of a reserved volume refused, naming status and op" ||
    not_ok "delete refused while reserved" "$out"
"${C[@]}" attachment-delete "$A" >/dev/null 2>&1
[ "$(vstatus "$V")" = available ] && ok "attachment-delete unreserves" ||
    not_ok "attachment-delete unreserves" "$(vstatus "$V")"
out=$("${C[@]}" attachment-create --connect true --host node1 \
    --mountpoint /dev/vdb "$V" srv-2 2>&1)
A=$(field "$out" id)
grep -q "device_path.*$POOL/volume-$V" <<<"$out" &&
    ok "connection info names the file" || not_ok "connection info" "$out"
[ "$(vstatus "$V")" = attaching ] && ok "attaching" ||
    not_ok "attaching" "$(vstatus "$V")"
"${C[@]}" attachment-complete "$A" >/dev/null 2>&1
[ "$(vstatus "$V")" = in-use ] && ok "attachment-complete: in-use" ||
    not_ok "in-use" "$(vstatus "$V")"
out=$("${C[@]}" attachment-list 2>&1)
grep -q "$A.*$V.*attached.*srv-2" <<<"$out" && ok "attachment-list" ||
    not_ok "attachment-list" "$out"
# Below 3.42 an attached volume is not extended (Cinder); from 3.42 on it
# is, by its own operation, and stays in-use.
out=$("${C[@]}" --os-volume-api-version 3.41 extend "$V" 4 2>&1)
grep -q "HTTP 400" <<<"$out" && grep -q "in-use" <<<"$out" &&
    ok "extend of an in-use volume at 3.41 refused with its status" ||
    not_ok "extend in-use at 3.41 refused" "$out"
out=$("${C[@]}" extend "$V" 4 2>&1)
check "extend of an in-use volume at 3.42+ accepted" $? "$out"
vsize() { curl -s "${H[@]}" "$URL/v3/volumes/$1" | python3 -c \
    'import json,sys; v=json.load(sys.stdin)["volume"]; print(v["status"], v["size"])'; }
wait_for "in-use extend: in-use at 4 GiB" "vsize $V" "in-use 4"
"${C[@]}" attachment-delete "$A" >/dev/null 2>&1
[ "$(vstatus "$V")" = available ] && ok "attachment-delete detaches" ||
    not_ok "attachment-delete detaches" "$(vstatus "$V")"

# The legacy actions (os-reserve ... os-detach), as Nova's older flow.
act() { req POST "/v3/p1/volumes/$V/action" "$1" "${H[@]}"; }
act '{"os-reserve": {}}'; expect "os-reserve 202" 202
act '{"os-reserve": {}}'; expect "os-reserve twice: 400" 400
grep -q "operation attach in flight\|busy: attach" <<<"$BODY" &&
    ok "refusal names the op in flight" || not_ok "names the op" "$BODY"
act '{"os-unreserve": {}}'; expect "os-unreserve 202" 202
act '{"os-reserve": {}}'
act '{"os-attach": {"instance_uuid": "srv-3", "mountpoint": "/dev/vdc"}}'
expect "os-attach 202" 202
[ "$(vstatus "$V")" = in-use ] && ok "os-attach: in-use" || not_ok "os-attach" "$(vstatus "$V")"
act '{"os-begin_detaching": {}}'; expect "os-begin_detaching 202" 202
[ "$(vstatus "$V")" = detaching ] && ok "detaching" || not_ok "detaching" "$(vstatus "$V")"
act '{"os-roll_detaching": {}}'; expect "os-roll_detaching 202" 202
[ "$(vstatus "$V")" = in-use ] && ok "rolled back to in-use" || not_ok "roll" "$(vstatus "$V")"
act '{"os-detach": {}}'; expect "os-detach 202" 202
[ "$(vstatus "$V")" = available ] && ok "os-detach: available" || not_ok "os-detach" "$(vstatus "$V")"
act '{"os-frobnicate": {}}'; expect "unknown action 400" 400 \
    "'no such action' in j['badRequest']['message']"

# force-delete fences what is in flight; delete removes the file.
W=$(field "$("${C[@]}" create 1 2>&1)" id)
wait_for "second volume available" "vstatus $W" available
act() { req POST "/v3/p1/volumes/$W/action" "$1" "${H[@]}"; }
act '{"os-reserve": {}}'
act '{"os-force_delete": {}}'; expect "os-force_delete 202" 202
wait_for "force-deleted volume gone" "vstatus $W" ""
"${C[@]}" delete "$V" >/dev/null 2>&1
wait_for "deleted volume gone" "vstatus $V" ""
n=$(find "$POOL" -type f | wc -l)
[ "$n" = 0 ] && ok "pool empty after deletes" || not_ok "pool empty" "$(ls -la "$POOL")"

out=$("${C[@]}" service-list 2>&1)
for b in cinder-api cinder-scheduler cinder-volume vse-reaper; do
    grep -q "$b *| h1 .*| up " <<<"$out" && ok "service-list: $b up" ||
        not_ok "service-list: $b up" "$out"
done
req GET /v3/p1/limits '' "${H[@]}"
expect "limits" 200 "j['limits']['absolute']['totalVolumesUsed'] == 0"
stop_vsed

# ---- token mode ------------------------------------------------------------
cat >"$T/tok.yaml" <<YAML
auth: token
reaper_interval: 1
tokens:
  - {name: ann, hash: "$(printf ann-secret | "$VSED" hash-token)", role: member, project: p1}
  - {name: ben, hash: "$(printf ben-secret | "$VSED" hash-token)", role: member, project: p2}
  - {name: ops, hash: "$(printf ops-secret | "$VSED" hash-token)", role: admin, project: admin}
YAML
start_vsed "$T/tok.log" --all-in-one --config "$T/tok.yaml" \
    --store "sqlite:$T/t.db" --host h1 --pool "$T/pool2" ||
    { cat "$T/tok.log"; exit 1; }
# The client insists on a project id even with admin_token; vsed takes
# the project from the token.
TA=(cinder --os-auth-type admin_token --os-token ann-secret --os-project-id p1
    --os-endpoint "$URL/v3/p1")
TB=(cinder --os-auth-type admin_token --os-token ben-secret --os-project-id p2
    --os-endpoint "$URL/v3/p2")
TO=(cinder --os-auth-type admin_token --os-token ops-secret
    --os-project-id admin --os-endpoint "$URL/v3/admin")
out=$("${TA[@]}" create --name tok-vol 1 2>&1)
V=$(field "$out" id)
[ -n "$V" ] && ok "token: create" || not_ok "token: create" "$out"
H=(-H 'X-Auth-Token: ann-secret' -H 'OpenStack-API-Version: volume 3.70')
wait_for "token: available" "vstatus $V" available
out=$("${TB[@]}" show "$V" 2>&1)
grep -q "No volume with a name or ID" <<<"$out" &&
    ok "token: another project gets not found" || not_ok "token: 404" "$out"
out=$("${TB[@]}" list 2>&1)
grep -q "$V" <<<"$out" && not_ok "token: other project's list" "$out" ||
    ok "token: other project's list is empty"
out=$("${TA[@]}" reset-state --state error "$V" 2>&1)
grep -q "HTTP 403" <<<"$out" && ok "token: member reset-state 403" ||
    not_ok "token: member reset-state 403" "$out"
out=$("${TA[@]}" force-delete "$V" 2>&1)
grep -q "HTTP 403" <<<"$out" && ok "token: member force-delete 403" ||
    not_ok "token: member force-delete 403" "$out"
out=$("${TA[@]}" service-list 2>&1)
grep -q "HTTP 403" <<<"$out" && ok "token: member service-list 403" ||
    not_ok "token: member service-list 403" "$out"
out=$("${TO[@]}" service-list 2>&1)
grep -q "cinder-volume" <<<"$out" && ok "token: admin service-list" ||
    not_ok "token: admin service-list" "$out"
"${TO[@]}" reset-state --state error "$V" >/dev/null 2>&1
[ "$(vstatus "$V")" = error ] && ok "token: admin reset-state" ||
    not_ok "token: admin reset-state" "$(vstatus "$V")"
out=$(cinder --os-auth-type admin_token --os-token wrong --os-project-id p1 \
    --os-endpoint "$URL/v3/p1" list 2>&1)
grep -q "HTTP 401" <<<"$out" && ok "token: bad token 401" ||
    not_ok "token: bad token 401" "$out"
"${TA[@]}" delete "$V" >/dev/null 2>&1
wait_for "token: member deletes its volume" "vstatus $V" ""
stop_vsed
finish
