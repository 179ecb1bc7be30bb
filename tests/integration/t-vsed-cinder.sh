#!/usr/bin/env bash
# t-vsed-cinder.sh - the Cinder v3 API driven by the real Debian client
# (python3-cinderclient) against vsed --all-in-one on SQLite: create,
# list, show, extend, snapshots, attachments (and the legacy actions with
# curl), reset-state, force-delete, delete, service-list, limits; refusals
# name the status and the op in flight; files in the pool match the store.
# Cinder's behaviour clients rely on (curl): at-rest os-unreserve and
# os-roll_detaching change nothing, no force-delete of an attached volume,
# os-reserve shows attaching, noauth tokens without a colon, the keys of
# each microversion, volume and snapshot metadata calls (concurrent
# merges and replaces), snapshot PUT, list order, sort, paging and links.
# Then token mode: projects see only their volumes, members get 403 on
# admin actions, and the client works with --os-auth-type admin_token.
set -u
. "$(dirname "$0")/vsed-lib.sh"
# The system's python3, the Debian clients' own: a version manager's shim
# first in PATH costs ~0.3 s a start, and the checks start it often.
[ -x /usr/bin/python3 ] && python3() { /usr/bin/python3 "$@"; }
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
want = [("create", "creating_db"), ("step", "scheduling"),
        ("claim", "creating_vol"), ("claim", "creating_vol"),
        ("finish", "available")]
sys.exit(0 if [p[:2] for p in path] == want and
         "task schedule: done: host" in path[2][2] else 1)' "$T/watch" "$V"; }
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

# ---- Cinder's behaviour where clients rely on it ----------------------------
# V is available, at rest.
jv() { printf '%s' "$BODY" | python3 -c \
    "import json,sys; j = json.load(sys.stdin); print($1)"; }
vversion() { curl -s "$URL/v1/resources/$1" | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["version"])' 2>/dev/null; }
act() { req POST "/v3/p1/volumes/$V/action" "$1" "${H[@]}"; }
v0=$(vversion "$V")
act '{"os-unreserve": {}}'; expect "os-unreserve of an available volume: 202" 202
act '{"os-roll_detaching": {}}'
expect "os-roll_detaching of an available volume: 202" 202
[ -n "$v0" ] && [ "$(vversion "$V")" = "$v0" ] && [ "$(vstatus "$V")" = available ] &&
    ok "... and they changed nothing" ||
    not_ok "at-rest unreserve/roll_detaching change nothing" "$v0 $(vversion "$V")"
# The legacy reserve shows attaching, as Cinder's; the state is reserved.
act '{"os-reserve": {}}'; expect "os-reserve 202" 202
[ "$(vstatus "$V")" = attaching ] && ok "os-reserve shows attaching" ||
    not_ok "os-reserve shows attaching" "$(vstatus "$V")"
req GET "/v1/resources/$V"
expect "... in state reserved" 200 "j['state'] == 'reserved' and j['op'] == 'attach'"
req GET "/v3/p1/volumes/detail" '' "${H[@]}"
expect "... in lists too" 200 \
    "[v['status'] for v in j['volumes'] if v['id'] == '$V'] == ['attaching']"
act '{"os-unreserve": {}}'; expect "os-unreserve 202" 202
[ "$(vstatus "$V")" = available ] && ok "unreserved: available" ||
    not_ok "unreserved" "$(vstatus "$V")"
req POST /v3/p1/attachments "{\"attachment\": {\"volume_uuid\": \"$V\", \"instance_uuid\": \"srv-9\"}}" "${H[@]}"
expect "an attachment without a connector" 200 "j['attachment']['status'] == 'reserved'"
A=$(jv "j['attachment']['id']" 2>/dev/null)
[ "$(vstatus "$V")" = reserved ] && ok "... shows reserved after a legacy reserve" ||
    not_ok "attachment shows reserved" "$(vstatus "$V")"
req DELETE "/v3/p1/attachments/$A" '' "${H[@]}"; expect "attachment deleted" 200
# in use: unreserve and roll_detaching change nothing; force-delete refused.
act '{"os-reserve": {}}'
act '{"os-attach": {"instance_uuid": "srv-4", "mountpoint": "/dev/vdd"}}'
[ "$(vstatus "$V")" = in-use ] && ok "attached again" || not_ok "attached" "$(vstatus "$V")"
v0=$(vversion "$V")
act '{"os-unreserve": {}}'; expect "os-unreserve of an in-use volume: 202" 202
act '{"os-roll_detaching": {}}'; expect "os-roll_detaching of an in-use volume: 202" 202
[ "$(vversion "$V")" = "$v0" ] && [ "$(vstatus "$V")" = in-use ] &&
    ok "... and they changed nothing" || not_ok "in-use unchanged" "$(vstatus "$V")"
act '{"os-force_delete": {}}'
expect "os-force_delete of an attached volume: 400" 400 \
    "'attached' in j['badRequest']['message'] and 'detach it first' in j['badRequest']['message']"
act '{"os-begin_detaching": {}}'
act '{"os-force_delete": {}}'
expect "os-force_delete while detaching: 400" 400
[ "$(vstatus "$V")" = detaching ] && [ -f "$POOL/volume-$V" ] &&
    ok "... nothing changed, the file is there" || not_ok "force-delete refused" "$(vstatus "$V")"
act '{"os-detach": {}}'
[ "$(vstatus "$V")" = available ] && ok "detached" || not_ok "detached" "$(vstatus "$V")"

# noauth: a token without a colon is the user and the project.
req POST /v3/carol/volumes '{"volume": {"size": 1, "name": "c1"}}' \
    -H 'X-Auth-Token: carol' -H 'OpenStack-API-Version: volume 3.70'
expect "noauth token 'carol': user and project carol" 202 \
    "j['volume']['user_id'] == 'carol' and j['volume']['os-vol-tenant-attr:tenant_id'] == 'carol'"
CV=$(jv "j['volume']['id']" 2>/dev/null)

# Keys at each microversion, as Cinder's API reference shows them.
VK3_0="id name links status size availability_zone created_at updated_at
attachments description volume_type snapshot_id source_volid metadata
bootable encrypted multiattach replication_status consistencygroup_id user_id
os-vol-tenant-attr:tenant_id migration_status os-vol-host-attr:host
os-vol-mig-status-attr:migstat os-vol-mig-status-attr:name_id"
keys_at() { # keys_at MV: the volume keys at 3.MV
    local k="$VK3_0"
    [ "$1" -ge 13 ] && k="$k group_id"
    [ "$1" -ge 21 ] && k="$k provider_id"
    [ "$1" -ge 48 ] && k="$k shared_targets service_uuid"
    [ "$1" -ge 61 ] && k="$k cluster_name"
    [ "$1" -ge 63 ] && k="$k volume_type_id"
    [ "$1" -ge 65 ] && k="$k consumes_quota"
    echo $k
}
for mv in 0 13 21 48 61 63 65 70; do
    req GET "/v3/p1/volumes/$V" '' -H 'X-Auth-Token: alice:p1' \
        -H "OpenStack-API-Version: volume 3.$mv"
    want=$(keys_at $mv | tr ' ' '\n' | sort | tr '\n' ' ')
    expect "volume keys at 3.$mv" 200 \
        "sorted(j['volume']) == sorted('$want'.split())"
done
expect "3.65+: consumes_quota true, shared_targets false" 200 \
    "j['volume']['consumes_quota'] is True and j['volume']['shared_targets'] is False"

# Volume metadata: POST merges, PUT replaces, per key, Cinder's errors.
M=/v3/p1/volumes/$V/metadata
req POST "$M" '{"metadata": {"a": "1", "b": "2"}}' "${H[@]}"
expect "metadata POST merges" 200 "j == {'metadata': {'a': '1', 'b': '2'}}"
req POST "$M" '{"metadata": {"b": "3", "c": "4"}}' "${H[@]}"
expect "... again" 200 "j == {'metadata': {'a': '1', 'b': '3', 'c': '4'}}"
req PUT "$M" '{"metadata": {"d": "5"}}' "${H[@]}"
expect "metadata PUT replaces" 200 "j == {'metadata': {'d': '5'}}"
req GET "$M" '' "${H[@]}"; expect "metadata GET" 200 "j == {'metadata': {'d': '5'}}"
req GET "$M/d" '' "${H[@]}"; expect "metadata GET key" 200 "j == {'meta': {'d': '5'}}"
req GET "$M/a" '' "${H[@]}"; expect "metadata GET of a missing key: 404" 404
req PUT "$M/e" '{"meta": {"e": "6"}}' "${H[@]}"
expect "metadata PUT key" 200 "j == {'meta': {'e': '6'}}"
req PUT "$M/e" '{"meta": {"f": "6"}}' "${H[@]}"
expect "metadata PUT key: URI mismatch 400" 400 "'URI mismatch' in j['badRequest']['message']"
req PUT "$M/e" '{"meta": {"e": "6", "f": "7"}}' "${H[@]}"
expect "metadata PUT key: too many items 400" 400 "'too many items' in j['badRequest']['message']"
req DELETE "$M/e" '' "${H[@]}"; expect "metadata DELETE key" 200
req DELETE "$M/e" '' "${H[@]}"; expect "metadata DELETE of a missing key: 404" 404
long=$(printf 'x%.0s' $(seq 1 256))
req POST "$M" "{\"metadata\": {\"$long\": \"1\"}}" "${H[@]}"
expect "metadata key of 256 characters: 400" 400 "'1 to 255' in j['badRequest']['message']"
req POST "$M" "{\"metadata\": {\"k\": \"$long\"}}" "${H[@]}"
expect "metadata value of 256 characters: 400" 400
req POST "$M" "{\"metadata\": {\"k\": \"${long:1}\"}}" "${H[@]}"
expect "metadata value of 255 characters" 200 "len(j['metadata']['k']) == 255"
req PUT "/v3/p1/volumes/$V" '{"volume": {"metadata": {"x": "1"}}}' "${H[@]}"
expect "volume PUT replaces metadata" 200 "j['volume']['metadata'] == {'x': '1'}"
# Concurrent writes: merges all land; a replace is whole (one winner,
# never a mix), each answered 200 or 409.
bg=()
for i in 1 2 3 4 5 6; do
    curl -s -o /dev/null -X POST -H 'Content-Type: application/json' "${H[@]}" \
        --data-binary "{\"metadata\": {\"m$i\": \"$i\"}}" "$URL$M" &
    bg+=($!)
done
wait "${bg[@]}"
req GET "$M" '' "${H[@]}"
expect "6 concurrent merges all land" 200 \
    "sorted(j['metadata']) == ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'x']"
bg=()
for i in 1 2 3 4 5 6; do
    curl -s -o "$T/put$i" -w '%{http_code}\n' -X PUT -H 'Content-Type: application/json' \
        "${H[@]}" --data-binary "{\"metadata\": {\"p$i\": \"$i\", \"q$i\": \"$i\"}}" \
        "$URL$M" >"$T/code$i" &
    bg+=($!)
done
wait "${bg[@]}"
req GET "$M" '' "${H[@]}"
expect "6 concurrent replaces: one whole winner" 200 \
    "len(j['metadata']) == 2 and len(set(k[1] for k in j['metadata'])) == 1"
codes=$(cat "$T"/code* | sort | uniq | tr '\n' ' ')
[[ "$codes" =~ ^(200 |200 409 |409 )$ ]] && grep -q 200 <<<"$codes" &&
    ok "... each answered 200 or 409 ($codes)" || not_ok "replace answers" "$codes"
req PUT "$M" '{"metadata": {}}' "${H[@]}"; expect "metadata PUT {} empties" 200 "j == {'metadata': {}}"

# Lists: newest first, sort, limit/marker paging with next links.
LH=(-H 'X-Auth-Token: dave:p3' -H 'OpenStack-API-Version: volume 3.70')
L=()
for n in b a c; do
    req POST /v3/p3/volumes "{\"volume\": {\"size\": 1, \"name\": \"$n\"}}" "${LH[@]}"
    L+=("$(jv "j['volume']['id']")")
done
ids() { printf '%s' "$BODY" | python3 -c "import json,sys; print(' '.join(v['$2'] for v in json.load(sys.stdin)['$1']))"; }
req GET /v3/p3/volumes '' "${LH[@]}"
[ "$(ids volumes id)" = "${L[2]} ${L[1]} ${L[0]}" ] && ok "volumes: newest first" ||
    not_ok "newest first" "${L[*]}" "$BODY"
req GET "/v3/p3/volumes/detail?sort=name:asc" '' "${LH[@]}"
[ "$(ids volumes name)" = "a b c" ] && ok "sort=name:asc" || not_ok "sort=name:asc" "$BODY"
req GET "/v3/p3/volumes?sort_key=name&sort_dir=desc" '' "${LH[@]}"
[ "$(ids volumes name)" = "c b a" ] && ok "sort_key/sort_dir" || not_ok "sort_key" "$BODY"
req GET "/v3/p3/volumes?sort=size:asc,name" '' "${LH[@]}"
[ "$(ids volumes name)" = "c b a" ] && ok "sort=size:asc,name (desc by default)" ||
    not_ok "two sort keys" "$BODY"
req GET "/v3/p3/volumes?limit=2" '' "${LH[@]}"
expect "limit=2: a full page has a next link" 200 \
    "[v['id'] for v in j['volumes']] == ['${L[2]}', '${L[1]}'] and j['volumes_links'][0]['rel'] == 'next' and j['volumes_links'][0]['href'].endswith('/v3/p3/volumes?limit=2&marker=${L[1]}')"
next=$(jv "j['volumes_links'][0]['href']" | sed "s|^$URL||")
req GET "$next" '' "${LH[@]}"
expect "... which gives the rest, with no link" 200 \
    "[v['id'] for v in j['volumes']] == ['${L[0]}'] and 'volumes_links' not in j"
req GET "/v3/p3/volumes/detail?sort=name:asc&limit=1&marker=${L[1]}" '' "${LH[@]}"
expect "detail, sort and marker" 200 \
    "[v['name'] for v in j['volumes']] == ['b'] and j['volumes_links'][0]['href'].endswith('/volumes/detail?sort=name:asc&limit=1&marker=${L[0]}')"
req GET "/v3/p3/volumes?sort=frob:asc" '' "${LH[@]}"
expect "bad sort key: 400" 400 "'Invalid sort key' in j['badRequest']['message']"
req GET "/v3/p3/volumes?sort=name:up" '' "${LH[@]}"
expect "bad sort direction: 400" 400 "'Unknown sort direction' in j['badRequest']['message']"
req GET "/v3/p3/volumes?sort=name&sort_key=id" '' "${LH[@]}"
expect "sort with sort_key: 400" 400 "'cannot be used with' in j['badRequest']['message']"
req GET "/v3/p3/volumes?marker=nope" '' "${LH[@]}"
expect "unknown marker: 400" 400 "'marker' in j['badRequest']['message']"
req GET "/v3/p3/volumes?limit=-1" '' "${LH[@]}"; expect "negative limit: 400" 400
req GET "/v3/p3/volumes?limit=x" '' "${LH[@]}"; expect "limit not a number: 400" 400
# snapshots: the same rules; their keys; PUT; metadata.
for i in 0 1 2; do wait_for "list volume $i available" "vstatus ${L[$i]}" available; done
SN=()
for n in s2 s1; do
    req POST /v3/p3/snapshots "{\"snapshot\": {\"volume_id\": \"${L[0]}\", \"name\": \"$n\"}}" "${LH[@]}"
    SN+=("$(jv "j['snapshot']['id']")")
done
for s in "${SN[@]}"; do wait_for "snapshot available" "sstatus $s" available; done
req GET "/v3/p3/snapshots?limit=1" '' "${LH[@]}"
expect "snapshots: newest first, next link" 200 \
    "[s['id'] for s in j['snapshots']] == ['${SN[1]}'] and j['snapshots_links'][0]['href'].endswith('/v3/p3/snapshots?limit=1&marker=${SN[1]}')"
req GET "/v3/p3/snapshots/detail?sort=name:asc" '' "${LH[@]}"
expect "snapshots/detail sort=name:asc" 200 \
    "[s['name'] for s in j['snapshots']] == ['s1', 's2'] and 'snapshots_links' not in j"
req GET "/v3/p3/snapshots?sort=availability_zone" '' "${LH[@]}"
expect "a volume-only sort key on snapshots: 400" 400
req GET "/v3/p3/snapshots/${SN[0]}" '' "${LH[@]}"
expect "snapshot keys at 3.70" 200 \
    "sorted(j['snapshot']) == sorted('id name status size volume_id description created_at updated_at metadata os-extended-snapshot-attributes:project_id os-extended-snapshot-attributes:progress group_snapshot_id user_id consumes_quota'.split()) and j['snapshot']['os-extended-snapshot-attributes:progress'] == '100%'"
req PUT "/v3/p3/snapshots/${SN[0]}" '{"snapshot": {"name": "s3", "description": "d3"}}' "${LH[@]}"
expect "snapshot PUT" 200 "j['snapshot']['name'] == 's3' and j['snapshot']['description'] == 'd3'"
req GET "/v3/p3/snapshots/${SN[0]}" '' "${LH[@]}"
expect "... shows" 200 "j['snapshot']['name'] == 's3'"
req PUT "/v3/p3/snapshots/${SN[0]}" '{"name": "s4"}' "${LH[@]}"
expect "snapshot PUT without 'snapshot': 400" 400
req POST "/v3/p3/snapshots/${SN[0]}/metadata" '{"metadata": {"k": "v"}}' "${LH[@]}"
expect "snapshot metadata POST" 200 "j == {'metadata': {'k': 'v'}}"
# attachments/detail carries connection_info
req POST /v3/p3/attachments "{\"attachment\": {\"volume_uuid\": \"${L[1]}\", \"instance_uuid\": \"srv-5\", \"connector\": {\"host\": \"h1\"}}}" "${LH[@]}"
A=$(jv "j['attachment']['id']" 2>/dev/null)
for l in attachments attachments/detail; do
    req GET /v3/p3/$l '' "${LH[@]}"
    expect "$l carries connection_info" 200 \
        "j['attachments'][0]['connection_info']['data']['volume_id'] == '${L[1]}' and sorted(j['attachments'][0]) == sorted('id volume_id instance status attached_at detached_at attach_mode connection_info'.split())"
done
req DELETE "/v3/p3/attachments/$A" '' "${LH[@]}"
for s in "${SN[@]}"; do
    req DELETE "/v3/p3/snapshots/$s" '' "${LH[@]}"
    wait_for "list snapshot deleted" "sstatus $s" gone
done
for v in "${L[@]}" "$CV"; do
    req DELETE "/v3/p3/volumes/$v" '' "${H[@]}"
    wait_for "list volume deleted" "vstatus $v" ""
done

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
