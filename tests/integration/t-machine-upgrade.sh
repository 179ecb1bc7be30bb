#!/usr/bin/env bash
# t-machine-upgrade.sh - machines upgraded in place on SQLite (the story
# in upgrade-lib.sh), and vsed at start: a built-in newer than the pin
# upgrades it (VSED_TEST_MACHINE stands in for a newer built-in), one in
# the way or older than the pin refuses to start.
set -u
. "$(dirname "$0")/upgrade-lib.sh"
trap 'rm -rf "$T"' EXIT

usage_checks "sqlite:$T/u.db"
[ ! -e "$T/u.db" ] && ok "usage errors made no store" ||
    not_ok "usage errors made a store"
vs --store "sqlite:$T/fresh.db" machine upgrade "$T/v2.yaml"
is "a machine the store never pinned is pinned" 0 \
    "machine tiny version 2 (hash $H2) pinned: the store had no pin of it"
vs --store "sqlite:$T/fresh.db" --machines "$T/v1.yaml" list
is_rc "and older versions are refused by it" 1 "a newer vse pinned this store"
scenario "sqlite:$T/s.db"

echo "# an upgrade beside transitions"
race "sqlite:$T/race.db" python3 -c '
import sqlite3, sys
for r in sqlite3.connect(sys.argv[1]).execute(
        "SELECT seq, resource, kind, to_state FROM history ORDER BY seq"):
    print("|".join(str(x) for x in r))
' "$T/race.db"

echo "# vsed at start"
VSED=$(cd "$B" && pwd)/vsed
VPID=
trap '[ -n "$VPID" ] && kill -KILL "$VPID" 2>/dev/null; rm -rf "$T"' EXIT
# vsed_up LOG ARGS...: start vsed on a free port; 0 once /healthz
# answers, 1 if it exited (VRC: its status) or never answered.
vsed_up() {
    local log=$1 i port
    shift
    "$VSED" --listen 127.0.0.1:0 --auth noauth "$@" 2>"$log" &
    VPID=$!
    for i in $(seq 1 500); do
        port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' \
            "$log" | head -1)
        if [ -n "$port" ] &&
            curl -fs -m 2 "http://127.0.0.1:$port/healthz" >/dev/null; then
            return 0
        fi
        if ! kill -0 "$VPID" 2>/dev/null; then
            wait "$VPID"
            VRC=$?
            VPID=
            return 1
        fi
        sleep 0.02
    done
    return 1
}
vsed_down() {
    kill -"${1:-TERM}" "$VPID" 2>/dev/null
    wait "$VPID" 2>/dev/null
    VPID=
}
# A newer built-in volume machine: the same states, version 3 (the built-in is version 2).
sed 's/^version: 2$/version: 3/' "$(dirname "$0")/../../machines/volume.yaml" \
    >"$T/volume-v2.yaml"
# A service machine whose busy state is renamed: a running role is in
# its way.
sed -e 's/running/alive/g' -e 's/^version: 1$/version: 2/' \
    "$(dirname "$0")/../../machines/service.yaml" >"$T/service-v2.yaml"
HV1=$("$V" machine show volume | sed -n 's/.*hash \([0-9a-f]*\)$/\1/p')
HV2=$(hash_of "$T/volume-v2.yaml")
VS="sqlite:$T/vsed.db"

vs --store "sqlite:$T/n.db" machine upgrade volume
is "upgrade NAME: this vsectl's built-in" 0 \
    "machine volume version 2 (hash $HV1) pinned: the store had no pin of it"
vs --store "sqlite:$T/n.db" machine upgrade volume
is "upgrade NAME again: done already" 0 \
    "machine volume version 2 (hash $HV1) is pinned already: nothing changed"
vs --store "sqlite:$T/n.db" machine upgrade nosuch
is_rc "upgrade NAME of no built-in" 4 "built-in machines: volume snapshot service"

# A store of the previous release: the built-in volume (version 2)
# pinned, a volume mid-create.
pvs --store "$VS" create volume vol-1 --owner api@h1
vs --store "$VS" list --json
py "a volume in flight under volume version 2" '
assert j["id"] == "vol-1" and j["state"] == "creating_db", j'
if VSED_TEST_MACHINE=$T/volume-v2.yaml vsed_up "$T/v1.log" --store "$VS" \
    --all-in-one --pool "$T/pool"; then
    ok "vsed with a newer built-in starts on the older store"
else
    not_ok "vsed with a newer built-in" "$(cat "$T/v1.log")"
fi
vsed_down
if grep -q "vsed: machine volume upgraded from version 2 to 3 (hash $HV1 -> $HV2): version 2 -> 3" "$T/v1.log"; then
    ok "vsed logs the upgrade"
else
    not_ok "vsed logs the upgrade" "$(cat "$T/v1.log")"
fi
# This vsectl's built-in volume is older than the pin now: read the
# store's history table itself.
OUT=$(python3 -c '
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(json.dumps(db.execute("SELECT kind, machine, resource, owner, from_state,"
                 " to_state FROM history WHERE kind = ?", ("upgrade",)).fetchall()))
' "$T/vsed.db" 2>&1)
RC=$?
py "the upgrade is in the store's history, by vsed" '
assert j == [["upgrade", "volume", "", "vsed@'"$HOST"'", "version 2",
              "version 3"]], j'
vs --store "$VS" list
is_rc "vsectl with the older built-in is refused" 1 \
    "hint: a newer vse pinned this store: run a vse with version 3 or later of 'volume'"
if vsed_up "$T/v2.log" --store "$VS" --all-in-one --pool "$T/pool"; then
    vsed_down
    not_ok "vsed with an older built-in started" "$(cat "$T/v2.log")"
elif [ "$VRC" = 1 ] && grep -q "vsed: machine 'volume' version 2 is older than the store's pin (version 3, hash $HV2): a newer vse pinned this store" "$T/v2.log"; then
    ok "vsed with an older built-in refuses to start"
else
    not_ok "vsed with an older built-in" "rc=$VRC" "$(cat "$T/v2.log")"
fi

# A role that died while running: its service row stays in `running`,
# which service version 2 drops.
VS2="sqlite:$T/vsed2.db"
vsed_up "$T/v3.log" --store "$VS2" --all-in-one --pool "$T/pool2" ||
    not_ok "vsed starts on a new store" "$(cat "$T/v3.log")"
vsed_down KILL
vs --store "$VS2" list --machine service
before=$OUT
svc=$(printf '%s\n' "$OUT" | awk 'NR > 1 && $3 == "running" {print $1}' | sort)
if VSED_TEST_MACHINE=$T/service-v2.yaml vsed_up "$T/v4.log" \
    --store "$VS2" --all-in-one --pool "$T/pool2"; then
    vsed_down
    not_ok "vsed started with resources in the way" "$(cat "$T/v4.log")"
else
    want="vsed: cannot upgrade machine 'service' to version 2: $(echo "$svc" | wc -l) resource"
    lines=$(grep '^vsed:   ' "$T/v4.log" | sort)
    exp=$(for s in $svc; do
        echo "vsed:   $s: operation 'run' is at step 'running', which version 2 drops"
    done)
    if [ "$VRC" = 1 ] && [ -n "$svc" ] && [ "$lines" = "$exp" ] &&
        grep -q "$want" "$T/v4.log"; then
        ok "vsed refuses to start, listing the resources in the way"
    else
        not_ok "vsed refusal with resources in the way" "rc=$VRC" \
            "want:" "$exp" "$(cat "$T/v4.log")"
    fi
fi
vs --store "$VS2" list --machine service
is "the refused upgrade changed nothing" 0 "$before"

finish
