#!/usr/bin/env bash
# t-vsed-openstack.sh - the Cinder v3 API driven by a second real client,
# Debian's python3-openstackclient (`openstack volume ...`), against vsed
# --all-in-one on SQLite in noauth mode, offline (admin_token auth: the
# token "USER:PROJECT" goes as X-Auth-Token, no keystone): volume create,
# list, show, set (name, properties), unset, snapshot create, set, list,
# delete, volume delete.  Volume API 3 (3.0): openstackclient 6.0 passes
# force=False to snapshot create, which its cinderclient refuses from
# 3.66 on, whatever the server.
set -u
. "$(dirname "$0")/vsed-lib.sh"
# The system's python3, the Debian clients' own: a version manager's shim
# first in PATH costs ~0.3 s a start, and the checks start it often.
[ -x /usr/bin/python3 ] && python3() { /usr/bin/python3 "$@"; }
command -v openstack >/dev/null || {
    echo "openstack client missing (scripts/deps.sh installs it)"
    exit 1
}

POOL=$T/pool
start_vsed "$T/vsed.log" --all-in-one --auth noauth --store "sqlite:$T/s.db" \
    --host h1 --pool "$POOL" --capacity-gb 20 --reaper-interval 1 ||
    { cat "$T/vsed.log"; exit 1; }
O=(openstack --os-auth-type admin_token --os-token alice:p1
   --os-endpoint "$URL/v3/p1" --os-volume-api-version 3)
H=(-H 'X-Auth-Token: alice:p1')
# jfield JSON KEY: one field of `-f json` output.
jfield() { printf '%s' "$1" | python3 -c \
    "import json,sys; v = json.load(sys.stdin)['$2']; print(json.dumps(v) if isinstance(v, (dict, list)) else v)" \
    2>/dev/null; }
vstatus() { curl -s "${H[@]}" "$URL/v3/p1/volumes/$1" | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["volume"]["status"])' 2>/dev/null; }
sstatus() { curl -s "${H[@]}" "$URL/v3/p1/snapshots/$1" | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["snapshot"]["status"])' \
    2>/dev/null || echo gone; }
wait_for() { # wait_for NAME CMD WANT (10 s deadline)
    local got i
    for i in $(seq 1 500); do
        got=$($2)
        [ "$got" = "$3" ] && { ok "$1"; return 0; }
        sleep 0.02
    done
    not_ok "$1" "want '$3', got '$got'"
}

out=$("${O[@]}" volume create --size 1 --property k=v --description d1 \
    -f json os-vol 2>&1)
V=$(jfield "$out" id)
[ "$(jfield "$out" name)" = os-vol ] && [ "$(jfield "$out" size)" = 1 ] &&
    ok "volume create" || not_ok "volume create" "$out"
wait_for "volume available" "vstatus $V" available
out=$("${O[@]}" volume list -f json 2>&1)
grep -q "\"$V\"" <<<"$out" && grep -q '"available"' <<<"$out" &&
    ok "volume list" || not_ok "volume list" "$out"
"${O[@]}" volume set --name os-vol2 --property a=1 --property b=2 os-vol \
    >"$T/set" 2>&1 && ok "volume set --name --property" ||
    not_ok "volume set" "$(cat "$T/set")"
"${O[@]}" volume unset --property a os-vol2 >"$T/set" 2>&1 &&
    ok "volume unset --property" || not_ok "volume unset" "$(cat "$T/set")"
out=$("${O[@]}" volume show -f json os-vol2 2>&1)
[ "$(jfield "$out" properties)" = '{"k": "v", "b": "2"}' ] &&
    [ "$(jfield "$out" description)" = d1 ] &&
    ok "volume show: name, properties" || not_ok "volume show" "$out"

out=$("${O[@]}" volume snapshot create --volume os-vol2 --property s=1 \
    -f json os-snap 2>&1)
S=$(jfield "$out" id)
[ -n "$S" ] && ok "snapshot create" || not_ok "snapshot create" "$out"
wait_for "snapshot available" "sstatus $S" available
out=$("${O[@]}" volume snapshot list -f json 2>&1)
grep -q "\"$S\"" <<<"$out" && grep -q '"os-snap"' <<<"$out" &&
    ok "snapshot list" || not_ok "snapshot list" "$out"
"${O[@]}" volume snapshot set --name os-snap2 --description sd \
    --property t=2 os-snap >"$T/set" 2>&1 &&
    ok "snapshot set --name --description --property" ||
    not_ok "snapshot set" "$(cat "$T/set")"
out=$("${O[@]}" volume snapshot show -f json os-snap2 2>&1)
[ "$(jfield "$out" description)" = sd ] &&
    [ "$(jfield "$out" properties)" = '{"s": "1", "t": "2"}' ] &&
    ok "snapshot show" || not_ok "snapshot show" "$out"
out=$("${O[@]}" volume delete os-vol2 2>&1)
grep -q "dependent snapshots" <<<"$out" &&
    ok "volume delete with a snapshot refused" || not_ok "delete refused" "$out"
"${O[@]}" volume snapshot delete os-snap2 >/dev/null 2>&1
wait_for "snapshot delete" "sstatus $S" gone
"${O[@]}" volume delete os-vol2 >/dev/null 2>&1
wait_for "volume delete" "vstatus $V" ""
out=$("${O[@]}" volume list -f json 2>&1)
[ "$out" = "[]" ] && ok "volume list empty" || not_ok "volume list empty" "$out"
stop_vsed
finish
