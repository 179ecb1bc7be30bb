#!/usr/bin/env bash
# t-vsed-volv2.sh - volume machine version 2 through the Cinder API (curl)
# with vsed (api, scheduler and reaper in one process, the volume manager in
# another; SQLite): three snapshot creates of one volume are all accepted
# and hold it, so that its delete, extend and detach are
# refused (409, naming the holders) while they run; a volume made from a
# snapshot and a clone end available with the source's data, and the
# snapshot's delete is refused while the volume is made from it; the
# validation of snapshot_id / source_volid; extend of an in-use volume at
# 3.42 (refused below); the pool matches the store at the end, and the
# pool check finds a held volume's missing file and a misplaced copy.
# The volume manager runs in a process of its own, stopped (SIGSTOP)
# while the refusals are asked for, so that the operations are in flight
# for as long as the test needs, whatever the machine's speed.
set -u
. "$(dirname "$0")/vsed-lib.sh"

POOL=$T/pool
S="sqlite:$T/s.db"
start_vsed "$T/vsed.log" --role api,scheduler,reaper --host h1 --auth noauth \
    --store "$S" --reaper-interval 1 || { cat "$T/vsed.log"; exit 1; }
"$VSED" --role volume --host h1 --pool "$POOL" --capacity-gb 20 \
    --store "$S" 2>"$T/mgr.log" &
MGR=$!
PIDS+=("$MGR")
up=0
for i in $(seq 1 500); do
    "$VSECTL" --store "$S" list --machine service 2>/dev/null |
        grep -q '^cinder-volume@h1 .* running' && { up=1; break; }
    sleep 0.02
done
[ $up = 1 ] || { cat "$T/mgr.log"; exit 1; }
H=(-H 'X-Auth-Token: alice:p1' -H 'OpenStack-API-Version: volume 3.70')
H41=(-H 'X-Auth-Token: alice:p1' -H 'OpenStack-API-Version: volume 3.41')

# show KIND ID: "status size" of a volume or snapshot, or "gone".
show() {
    curl -s "${H[@]}" "$URL/v3/$1s/$2" | python3 -c '
import json, sys
j = json.load(sys.stdin)
r = j.get("volume") or j.get("snapshot")
print(r["status"], r["size"])' 2>/dev/null || echo gone
}
# wait_for NAME WANT CMD...: poll CMD until it prints WANT (20 s deadline).
wait_for() {
    local name=$1 want=$2 got end=$((SECONDS + 20))
    shift 2
    while :; do
        got=$("$@")
        [ "$got" = "$want" ] && { ok "$name"; return 0; }
        [ $SECONDS -lt $end ] || break
        sleep 0.05
    done
    not_ok "$name" "want '$want', got '$got'"
    return 1
}
# jv EXPR: EXPR on the last answer's JSON, j.
jv() {
    printf '%s' "$BODY" | python3 -c "import json,sys; j = json.load(sys.stdin); print($1)"
}
# new_volume BODY: post it, answer 202, the id in NEWID.
new_volume() {
    req POST /v3/volumes "$1" "${H[@]}"
    NEWID=$(jv 'j["volume"]["id"]' 2>/dev/null)
}

new_volume '{"volume": {"size": 1, "name": "src"}}'
expect "create the source volume" 202
V=$NEWID
new_volume '{"volume": {"size": 1, "name": "attached"}}'
expect "create a second volume" 202
W=$NEWID
wait_for "source available" "available 1" show volume "$V"
wait_for "second available" "available 1" show volume "$W"
# A pattern in the source's file, which the copies must carry.
printf 'vse volume v2 pattern %s\n' "$V" |
    dd of="$POOL/volume-$V" conv=notrunc status=none
printf 'and a second block\n' |
    dd of="$POOL/volume-$V" bs=4096 seek=3 conv=notrunc status=none
req POST "/v3/volumes/$W/action" \
    '{"os-attach": {"instance_uuid": "srv-1", "mountpoint": "/dev/vdb"}}' \
    "${H[@]}"
expect "attach the second volume" 202
wait_for "second in-use" "in-use 1" show volume "$W"

# Three snapshots of one volume at once: all accepted, each holding it.
kill -STOP "$MGR"
SN=()
for i in 1 2 3; do
    req POST /v3/snapshots \
        "{\"snapshot\": {\"volume_id\": \"$V\", \"name\": \"s$i\"}}" "${H[@]}"
    expect "snapshot create $i accepted" 202
    SN+=("$(jv 'j["snapshot"]["id"]')")
done
req POST /v3/snapshots \
    "{\"snapshot\": {\"volume_id\": \"$W\", \"force\": true}}" "${H[@]}"
expect "snapshot of the in-use volume (force) accepted" 202
SW=$(jv 'j["snapshot"]["id"]')
req GET "/v1/holds?held=$V"
expect "the volume has three shared holds" 200 \
    "sorted(h['holder'] for h in j['holds']) == sorted('${SN[*]}'.split()) and all(h['mode'] == 'shared' for h in j['holds'])"
req DELETE "/v3/volumes/$V" '' "${H[@]}"
expect "delete refused while snapshots are made (409, holders named)" 409 \
    "'is held' in str(j) and '${SN[0]}' in str(j) and '${SN[2]}' in str(j)"
req POST "/v3/volumes/$V/action" '{"os-extend": {"new_size": 2}}' "${H[@]}"
expect "extend refused while snapshots are made (409, a holder named)" 409 \
    "'is held' in str(j) and 'snapshot' in str(j)"
req POST "/v3/volumes/$W/action" '{"os-detach": {}}' "${H[@]}"
expect "detach refused while a snapshot is made (409, the holder named)" \
    409 "'$SW' in str(j)"
kill -CONT "$MGR"
for s in "${SN[@]}" "$SW"; do
    wait_for "snapshot ${s:0:8} available" "available 1" show snapshot "$s"
done
req GET "/v1/holds?held=$V"
expect "the holds ended with the snapshots" 200 "j['holds'] == []"
[ "$(show volume "$V")" = "available 1" ] && ok "the source is available" ||
    not_ok "source after the snapshots" "$(show volume "$V")"

# Validation, as Cinder's.
new_volume "{\"volume\": {\"size\": 1, \"snapshot_id\": \"${SN[0]}\", \"source_volid\": \"$V\"}}"
expect "both sources: 400" 400 "'snapshot_id or source_volid' in str(j)"
new_volume '{"volume": {"size": 1, "snapshot_id": "00000000-0000-4000-8000-000000000000"}}'
expect "unknown snapshot: 404" 404 "'could not be found' in str(j)"
new_volume '{"volume": {"size": 1, "source_volid": "00000000-0000-4000-8000-000000000000"}}'
expect "unknown source volume: 404" 404 "'could not be found' in str(j)"
new_volume "{\"volume\": {\"source_volid\": \"$W\"}}"
expect "source volume in-use: 400" 400 "'in-use' in str(j)"
kill -STOP "$MGR"
new_volume "{\"volume\": {\"size\": 2, \"snapshot_id\": \"${SN[1]}\"}}"
expect "a volume from a snapshot accepted" 202 \
    "j['volume']['snapshot_id'] == '${SN[1]}'"
F=$NEWID
req DELETE "/v3/snapshots/${SN[1]}" '' "${H[@]}"
expect "snapshot delete refused while a volume is made from it (409)" 409 \
    "'is held' in str(j) and '$F' in str(j)"
new_volume "{\"volume\": {\"source_volid\": \"$V\"}}"
expect "a clone accepted (size from the source)" 202 \
    "j['volume']['source_volid'] == '$V' and j['volume']['size'] == 1"
K=$NEWID
req POST "/v3/volumes/$V/action" '{"os-extend": {"new_size": 2}}' "${H[@]}"
expect "extend of the source refused while it is cloned (409)" 409 \
    "'$K' in str(j)"
kill -CONT "$MGR"
wait_for "the volume from the snapshot is available at 2 GiB" "available 2" \
    show volume "$F"
wait_for "the clone is available" "available 1" show volume "$K"
cmp -s -n 65536 "$POOL/volume-$V" "$POOL/volume-$F" &&
    ok "the volume from the snapshot holds the source's data" ||
    not_ok "data of the volume from the snapshot" "$(head -c 60 "$POOL/volume-$F" | od -c | head -3)"
cmp -s -n 65536 "$POOL/volume-$V" "$POOL/volume-$K" &&
    ok "the clone holds the source's data" ||
    not_ok "data of the clone" "$(head -c 60 "$POOL/volume-$K" | od -c | head -3)"
[ "$(stat -c %s "$POOL/volume-$F")" = $((2 << 30)) ] &&
    ok "the volume from the snapshot has its own size" ||
    not_ok "size of the file" "$(stat -c %s "$POOL/volume-$F")"
new_volume "{\"volume\": {\"size\": 1, \"snapshot_id\": \"${SN[1]}\"}}"
[ "$CODE" = 202 ] && F2=$NEWID || F2=
new_volume "{\"volume\": {\"size\": 0, \"source_volid\": \"$F\"}}"
expect "a clone smaller than its source: 400" 400 \
    "'cannot be smaller' in str(j) or 'at least 1' in str(j)"
new_volume "{\"volume\": {\"size\": 1, \"source_volid\": \"$F\"}}"
expect "a clone smaller than its source: 400 (size named)" 400 \
    "'cannot be smaller than the volume size 2GB' in str(j)"
[ -n "$F2" ] && wait_for "a second volume from the snapshot" "available 1" \
    show volume "$F2"
req DELETE "/v3/snapshots/${SN[1]}" '' "${H[@]}"
expect "snapshot delete accepted once the volumes are made" 202

# Extend of an in-use volume: refused below 3.42, its own op from 3.42.
req POST "/v3/volumes/$W/action" '{"os-extend": {"new_size": 2}}' "${H41[@]}"
expect "in-use extend at 3.41 refused" 400 "'in-use' in str(j)"
req POST "/v3/volumes/$W/action" '{"os-extend": {"new_size": 3}}' "${H[@]}"
expect "in-use extend at 3.70 accepted" 202
wait_for "in-use extend ends in-use at 3 GiB" "in-use 3" show volume "$W"
"$VSECTL" --store "$S" history "$W" >"$T/h" 2>&1
grep -q "extend_in_use" "$T/h" && ok "history shows extend_in_use" ||
    not_ok "history of the in-use extend" "$(cat "$T/h")"
[ "$(stat -c %s "$POOL/volume-$W")" = $((3 << 30)) ] &&
    ok "the in-use volume's file grew" ||
    not_ok "in-use extend: file size" "$(stat -c %s "$POOL/volume-$W")"

check_clean "$S" "h1=$POOL" 60000 && ok "vsectl check --pool: clean" ||
    not_ok "vsectl check --pool" "$(cat "$T/check")"

# The pool check knows what holds and copies promise: the file of a held
# volume (its holder reads it), a copy on its source's host, no smaller
# than its snapshot.
# An operator's tools make both here, by hand, through vsectl.
"$VSECTL" --store "$S" create snapshot held-snap --owner tester --ttl 10m \
    --hold "$F" --attrs "{\"volume_id\": \"$F\", \"host\": \"h1\", \"size\": 2}" \
    >/dev/null 2>"$T/err" || not_ok "vsectl create snapshot --hold" "$(cat "$T/err")"
op=$("$VSECTL" --store "$S" create volume copy-x --op create_from_snapshot \
    --owner tester --hold held-snap \
    --attrs '{"host": "h2", "snapshot_id": "held-snap", "size": 1}')
for st in scheduling creating_vol; do
    "$VSECTL" --store "$S" step copy-x "$op" $st >/dev/null
done
"$VSECTL" --store "$S" finish copy-x "$op" available >/dev/null
mv "$POOL/volume-$F" "$T/hidden"
"$VSECTL" --store "$S" check --pool "h1=$POOL" >"$T/check" 2>&1
rc=$?
[ $rc = 1 ] &&
    grep -q "^$F: volume held shared by snapshot held-snap (op create) since .*, but its file '$POOL/volume-$F' is missing on host h1$" "$T/check" &&
    grep -q "^copy-x: volume made from snapshot held-snap on host h1 is on host h2" "$T/check" &&
    grep -q "^copy-x: volume of 1 GiB made from snapshot held-snap of 2 GiB" "$T/check" &&
    ok "check --pool: a held volume without its file, a misplaced and a short copy (exit 1)" ||
    not_ok "check --pool knows holds and copies" "rc $rc" "$(cat "$T/check")"
mv "$T/hidden" "$POOL/volume-$F"
finish
