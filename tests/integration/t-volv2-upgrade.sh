#!/usr/bin/env bash
# t-volv2-upgrade.sh - a store made by the previous release (volume and
# snapshot machines version 1 pinned) with operations in flight: vsed
# upgrades both to version 2 when it starts, the operations in flight go
# on under version 2, and the new operations (holds, in-use extend) work
# on the upgraded store.
#
# The previous release is 0.4.0, commit fab9690: the test builds its
# vsectl from `git archive` of that commit (8 s here; once, cached in
# build/prev-fab9690) to make the store as that release would; this
# release's vsectl can no longer write a store pinned to version 1 (it
# refuses a pin older than its built-in).  VSE_PREV_BUILD=DIR names a
# build of it made by other means.  Outside a git checkout that has the
# commit (a release tarball), the test says so and is skipped.
set -u
. "$(dirname "$0")/vsed-lib.sh"

PREV=fab9690
if [ -z "${VSE_PREV_BUILD:-}" ]; then
    root=$(cd "$(dirname "$0")/../.." && pwd)
    cache=$root/build/prev-$PREV
    if [ ! -x "$cache/build/vsectl" ]; then
        if ! git -C "$root" cat-file -e "$PREV^{commit}" 2>/dev/null; then
            echo "skipped: no git history with $PREV, the previous release"
            exit 0
        fi
        rm -rf "$cache.new" && mkdir -p "$cache.new" &&
            git -C "$root" archive "$PREV" | tar -x -C "$cache.new" &&
            env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
                make -C "$cache.new" -s VSE_DEPS_OK=1 -j2 build/vsectl \
                >"$T/prev-build.log" 2>&1 &&
            rm -rf "$cache" && mv "$cache.new" "$cache" || {
            not_ok "build the previous release ($PREV)" \
                "$(tail -20 "$T/prev-build.log")"
            finish
            exit 1
        }
    fi
    VSE_PREV_BUILD=$cache/build
fi
S="sqlite:$T/s.db"
PV=(env -u VSE_STORE "$(cd "$VSE_PREV_BUILD" && pwd)/vsectl" --store "$S")
A='{"host":"h1","provider_location":"/nowhere","size":1,"attachments":[],"project_id":"p1","user_id":"alice"}'
# made NAME ARGS...: run the previous vsectl; its stdout in OUT.
made() {
    local name=$1
    shift
    if OUT=$("${PV[@]}" "$@" 2>"$T/err"); then return 0; fi
    not_ok "previous release: $name" "$(cat "$T/err")"
    return 1
}
# An available volume, its op_id ignored.
available() {
    local op
    made "create $1" create volume "$1" --owner api@h1 --attrs "$A" || return
    op=$OUT
    made "$1 scheduling" step "$1" "$op" scheduling &&
        made "$1 creating_vol" step "$1" "$op" creating_vol &&
        made "$1 available" finish "$1" "$op" available
}
available vol-a
available vol-b
available vol-d
made "snapshot in flight" create snapshot snap-1 \
    --attrs '{"volume_id":"vol-a","host":"h1","size":1}'
made "extend in flight" begin vol-b extend --attrs '{"new_size":2}'
made "create in flight" create volume vol-c --owner api@h1 --attrs "$A" &&
    made "vol-c scheduling" step vol-c "$OUT" scheduling --release
made "attach" begin vol-d attach --owner api@h1 && op=$OUT &&
    made "attaching" step vol-d "$op" attaching &&
    made "in use" finish vol-d "$op" in_use
"${PV[@]}" list --json >"$T/before" 2>&1
python3 - "$T/before" <<'EOF' && ok "the store of the previous release: 4 in flight" || not_ok "the previous store" "$(cat "$T/before")"
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[r["id"]] = (r["state"], r["op"])
assert rows["snap-1"] == ("creating", "create"), rows
assert rows["vol-b"] == ("extending", "extend"), rows
assert rows["vol-c"] == ("scheduling", "create"), rows
assert rows["vol-d"] == ("in_use", None), rows
EOF

# vsed of this release, without a manager or scheduler, so that what is
# in flight stays so until this test moves it.
start_vsed "$T/vsed.log" --role api,reaper --host h1 --auth noauth \
    --store "$S" || { cat "$T/vsed.log"; exit 1; }
for m in volume snapshot; do
    grep -q "vsed: machine $m upgraded from version 1 to 2" "$T/vsed.log" &&
        ok "vsed upgraded $m from version 1 to 2" ||
        not_ok "vsed upgrade of $m" "$(cat "$T/vsed.log")"
done
"$VSECTL" --store "$S" history vol-a >/dev/null 2>&1 &&
    ok "this vsectl opens the upgraded store" ||
    not_ok "vsectl on the upgraded store"

# What was in flight goes on under version 2.
step() { # step NAME ARGS...: this vsectl; OUT
    local name=$1
    shift
    if OUT=$("$VSECTL" --store "$S" "$@" 2>"$T/err"); then
        ok "$name"
    else
        not_ok "$name" "$(cat "$T/err")"
    fi
}
op() { "$VSECTL" --store "$S" get "$1" --json | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["op_id"])'; }
step "the snapshot in flight is claimed" claim snap-1 "$(op snap-1)" \
    --owner volume@h1
step "and finished" finish snap-1 "$OUT" available
step "the extend in flight is claimed" claim vol-b "$(op vol-b)" \
    --owner volume@h1
step "and finished" finish vol-b "$OUT" available
step "the create in flight is claimed" claim vol-c "$(op vol-c)" \
    --owner scheduler@h1
step "and goes on" step vol-c "$OUT" creating_vol

# The new operations on the upgraded store.
H=(-H 'X-Auth-Token: alice:p1' -H 'OpenStack-API-Version: volume 3.70')
req POST /v3/snapshots '{"snapshot": {"volume_id": "vol-a"}}' "${H[@]}"
expect "a snapshot create holds its volume" 202
SN=$(printf '%s' "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshot"]["id"])')
req DELETE /v3/volumes/vol-a '' "${H[@]}"
expect "the volume's delete is refused while it is held" 409 "'$SN' in str(j)"
req POST /v3/volumes/vol-d/action '{"os-extend": {"new_size": 2}}' "${H[@]}"
expect "an in-use extend begins" 202
"$VSECTL" --store "$S" get vol-d --json >"$T/d" 2>&1
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert (j["op"], j["state"]) == ("extend_in_use", "extending"), j' "$T/d" &&
    ok "as extend_in_use" || not_ok "extend_in_use" "$(cat "$T/d")"
"$VSECTL" --store "$S" check >"$T/check" 2>&1 &&
    ok "vsectl check: the upgraded store is sound" ||
    not_ok "vsectl check" "$(cat "$T/check")"
finish
