#!/usr/bin/env bash
# t-holds.sh - holds between resources through vsectl on a SQLite store:
# --hold on create and begin, get and list (tables and --json) showing
# both sides of a hold, a refusal naming the holders (exit 3, nothing
# changed), the hold gone when its op ends, and `vsectl check`.
set -u
B=${VSE_BUILD:?VSE_BUILD names the build directory}
V=$B/vsectl
T=$(mktemp -d /tmp/vse-holds-XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
not_ok() {
    failed=$((failed + 1))
    echo "FAIL $1"
    shift
    for l in "$@"; do printf '     | %s\n' "$l"; done
}

cat >"$T/disk.yaml" <<'EOF'
machine: disk
version: 1
states:
  creating: {kind: busy, status: creating}
  ready: {kind: rest, status: ready}
  deleting: {kind: busy, status: deleting}
  deleted: {kind: rest, status: deleted}
  error: {kind: rest, status: error}
operations:
  create: {from: new, steps: [creating], success: ready, failure: error,
           on_expiry: fail}
  delete: {from: [ready, error], steps: [deleting], success: deleted,
           failure: error, on_expiry: fail,
           refused_while_held: [shared, exclusive]}
EOF
cat >"$T/snap.yaml" <<'EOF'
machine: snap
version: 1
states:
  creating: {kind: busy, status: creating}
  ready: {kind: rest, status: ready}
  error: {kind: rest, status: error}
operations:
  create: {from: new, steps: [creating], success: ready, failure: error,
           on_expiry: fail, holds: {machine: disk, mode: shared}}
EOF

# vs ARGS: vsectl on the store with both machines; OUT, ERR, RC.
vs() {
    "$V" --store "sqlite:$T/s.db" --machines "$T/disk.yaml" \
        --machines "$T/snap.yaml" "$@" >"$T/.out" 2>"$T/.err" </dev/null
    RC=$?
    OUT=$(cat "$T/.out")
    ERR=$(cat "$T/.err")
}
# py NAME EXPR: run python on OUT as j (one JSON document).
py() {
    if [ "$RC" = 0 ] && printf '%s' "$OUT" | python3 -c "
import json, sys
j = json.load(sys.stdin)
$2" 2>"$T/.py"; then ok "$1"; else
        not_ok "$1" "rc=$RC" "$OUT" "$ERR" "$(cat "$T/.py")"
    fi
}

vs create disk d1 --owner disk@h1
op=$OUT
vs finish d1 "$op"
vs create snap s1 --owner snap@h2 --hold d1
s1=$OUT
vs create snap s2 --owner snap@h2 --hold d1
s2=$OUT
[ "$RC" = 0 ] && ok "two shared holds on d1" || not_ok "second hold" "$ERR"

vs get d1 --json
py "get --json: holds on d1" '
assert [h["holder"] for h in j["holds"]] == ["s1", "s2"], j
h = j["holds"][0]
assert h["machine"] == "snap" and h["op"] == "create" and h["mode"] == "shared"
assert h["owner"] == "snap@h2" and h["op_id"] == "'"$s1"'" and h["since"]
assert j["holding"] is None, j'
vs get s1 --json
py "get --json: what s1 holds" '
assert j["holds"] == [], j
assert j["holding"]["held"] == "d1" and j["holding"]["mode"] == "shared", j'
vs get d1
if [ "$RC" = 0 ] && grep -q "^held_by:       shared by snap 's1' (create, owner snap@h2, since " <<<"$OUT" &&
    grep -q "^               shared by snap 's2' " <<<"$OUT"; then
    ok "get: held_by lines"
else
    not_ok "get: held_by lines" "$OUT"
fi
vs get s2
grep -q "^holding:       'd1' shared, since " <<<"$OUT" && ok "get: holding line" ||
    not_ok "get: holding line" "$OUT"
vs list
if grep -q "^d1 .* held by 2 (shared)$" <<<"$OUT" &&
    grep -q "^s1 .* holds d1 (shared)$" <<<"$OUT"; then
    ok "list: HOLDS column"
else
    not_ok "list: HOLDS column" "$OUT"
fi
vs list --json --machine disk
py "list --json: holds on each row" '
assert [h["holder"] for h in j["holds"]] == ["s1", "s2"], j'

vs begin d1 delete --owner disk@h1
if [ "$RC" = 3 ] && [[ $ERR == *"disk 'd1' is held: shared by snap 's1' (create, owner snap@h2, since "*"and 1 more; delete may not begin while it is held"* ]]; then
    ok "delete while held: refused (exit 3), holders named"
else
    not_ok "delete while held" "rc=$RC" "$ERR"
fi
vs get d1 --json
py "the refusal changed nothing" 'assert j["state"] == "ready" and j["version"] == 2, j'
vs create snap s3 --hold nosuch
[ "$RC" = 4 ] && [[ $ERR == *"disk 'nosuch' to be held by snap 's3'"* ]] &&
    ok "hold on a missing resource: exit 4" || not_ok "missing held" "rc=$RC" "$ERR"
vs create snap s3
[ "$RC" = 2 ] && [[ $ERR == *"holds a disk: name it"* ]] &&
    ok "hold not named: exit 2" || not_ok "hold not named" "rc=$RC" "$ERR"
vs create disk d2 --hold d1
[ "$RC" = 2 ] && [[ $ERR == *"holds nothing"* ]] &&
    ok "hold for an op that holds nothing: exit 2" || not_ok "holds nothing" "rc=$RC" "$ERR"

vs finish s1 "$s1"
vs fail s2 "$s2" --reason "copy failed"
vs get d1 --json
py "holds end with their ops (finish, fail)" 'assert j["holds"] == [], j'
vs check
[ "$RC" = 0 ] && ok "check: no violations" || not_ok "check" "rc=$RC" "$OUT" "$ERR"
vs begin d1 delete --owner disk@h1
[ "$RC" = 0 ] && ok "delete once nothing holds d1" || not_ok "delete" "$ERR"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
