# upgrade-lib.sh - sourced by the t-machine-upgrade*.sh tests: a small
# machine `tiny` in three versions, and one scenario, run once per store,
# of `vsectl machine upgrade` with operations in flight.
#
#   v1       ready, spare (rest); making, growing (busy); grow: growing
#   v2       v1 plus a busy state `checking`, a second step of grow
#   v2b      version 2 again, with another status (same version changed)
#   v3       drops `spare` and the step `growing` (grow: enlarging)
#
# VSE_PREV_BUILD, when set, names the build of the previous release: the
# store is then made (v1, operations begun) by its vsectl, as a store of
# that release would be; else by this one.
B=${VSE_BUILD:?VSE_BUILD names the build directory}
V=$(cd "$B" && pwd)/vsectl
PV=$V
[ -n "${VSE_PREV_BUILD:-}" ] && PV=$(cd "$VSE_PREV_BUILD" && pwd)/vsectl
T=$(mktemp -d)
export USER=tester
HOST=$(hostname)
have_py=0
command -v python3 >/dev/null 2>&1 && have_py=1

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok   $1"
}
not_ok() {
    failed=$((failed + 1))
    echo "FAIL $1"
    shift
    for l in "$@"; do printf '     | %s\n' "$l"; done
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# vs ARGS / pvs ARGS: run this (the previous) vsectl; OUT, ERR, RC.
vs() {
    "$V" "$@" >"$T/.out" 2>"$T/.err" </dev/null
    RC=$?
    OUT=$(cat "$T/.out")
    ERR=$(cat "$T/.err")
}
pvs() {
    "$PV" "$@" >"$T/.out" 2>"$T/.err" </dev/null
    RC=$?
    OUT=$(cat "$T/.out")
    ERR=$(cat "$T/.err")
}
show_run() {
    printf '%s\n' "rc=$RC" "stdout:" "$OUT" "stderr:" "$ERR"
}
# is NAME RC OUT: exit status and exact stdout.
is() {
    if [ "$RC" = "$2" ] && [ "$OUT" = "$3" ]; then ok "$1"; else
        not_ok "$1" "want rc=$2 stdout:" "$3" "got:" "$(show_run)"
    fi
}
# is_rc NAME RC TEXT: exit status, stderr holding TEXT (fixed string).
is_rc() {
    if [ "$RC" = "$2" ] && [[ $ERR == *"$3"* ]]; then ok "$1"; else
        not_ok "$1" "want rc=$2 and stderr with: $3" "got:" "$(show_run)"
    fi
}
# py NAME CODE: python3 asserts on stdout (j: one JSON object; lines: a
# list of objects, one per line).
py() {
    if [ "$have_py" = 0 ]; then
        echo "skip $1 (no python3)"
        return
    fi
    if printf '%s\n' "$OUT" | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin.read().splitlines() if l.strip()]
j = lines[0] if lines else None
'"$2" 2>"$T/.py"; then ok "$1"; else
        not_ok "$1" "$(cat "$T/.py")" "$(show_run)"
    fi
}

cat >"$T/v1.yaml" <<'EOF'
machine: tiny
version: 1
statuses: [ready, busy, broken]
states:
  ready: {kind: rest, status: ready}
  spare: {kind: rest, status: ready}
  broken: {kind: rest, status: broken}
  making: {kind: busy, status: busy}
  growing: {kind: busy, status: busy}
operations:
  make:
    from: [new]
    steps: [making]
    success: [ready]
    failure: broken
    on_expiry: fail
  grow:
    from: [ready, spare]
    steps: [growing]
    success: [ready, spare]
    failure: broken
    on_expiry: retry
EOF
sed -e 's/^version: 1/version: 2/' \
    -e 's/^  growing: .*/&\n  checking: {kind: busy, status: busy}/' \
    -e 's/    steps: \[growing\]/    steps: [growing, checking]/' \
    "$T/v1.yaml" >"$T/v2.yaml"
sed -e 's/^  broken: {kind: rest, status: broken}/  broken: {kind: rest, status: busy}/' \
    "$T/v2.yaml" >"$T/v2b.yaml"
cat >"$T/v3.yaml" <<'EOF'
machine: tiny
version: 3
statuses: [ready, busy, broken]
states:
  ready: {kind: rest, status: ready}
  broken: {kind: rest, status: broken}
  making: {kind: busy, status: busy}
  enlarging: {kind: busy, status: busy}
operations:
  make:
    from: [new]
    steps: [making]
    success: [ready]
    failure: broken
    on_expiry: fail
  grow:
    from: [ready]
    steps: [enlarging]
    success: [ready]
    failure: broken
    on_expiry: retry
EOF

hash_of() {
    "$V" machine show "$1" | sed -n 's/.*hash \([0-9a-f]*\)$/\1/p'
}
H1=$(hash_of "$T/v1.yaml")
H2=$(hash_of "$T/v2.yaml")
H2B=$(hash_of "$T/v2b.yaml")
H3=$(hash_of "$T/v3.yaml")

# scenario STORE_URL: the whole story on one (fresh) store.
scenario() {
    local S=$1 g r busy_op spare_op list_before
    local m1=(--store "$S" --machines "$T/v1.yaml")
    local m2=(--store "$S" --machines "$T/v2.yaml")

    echo "# ${LABEL:-$S}: a store made with tiny version 1"
    # r-busy: grow in flight at `growing`, a step that stays in v2.
    pvs "${m1[@]}" create tiny r-busy
    pvs "${m1[@]}" finish r-busy "$OUT" ready
    pvs "${m1[@]}" begin r-busy grow
    busy_op=$OUT
    # r-rest: at rest in `ready`.
    pvs "${m1[@]}" create tiny r-rest
    pvs "${m1[@]}" finish r-rest "$OUT" ready
    # r-old: a grow that ended under v1 along an edge v2 no longer has
    # (growing -> ready): the checker must not hold that against it.
    pvs "${m1[@]}" create tiny r-old
    pvs "${m1[@]}" finish r-old "$OUT" ready
    pvs "${m1[@]}" begin r-old grow
    pvs "${m1[@]}" finish r-old "$OUT" ready
    # r-spare: at rest in `spare` (v3 drops it).
    pvs "${m1[@]}" create tiny r-spare
    pvs "${m1[@]}" finish r-spare "$OUT" ready
    pvs "${m1[@]}" begin r-spare grow
    spare_op=$OUT
    pvs "${m1[@]}" finish r-spare "$spare_op" spare
    pvs "${m1[@]}" check
    is "store made with v1 is clean" 0 "check: 0 violations found"

    echo "# ${LABEL:-$S}: upgrade to version 2 with an operation in flight"
    vs --store "$S" machine upgrade "$T/v2.yaml"
    is "upgrade 1 -> 2" 0 "machine tiny upgraded from version 1 to 2 (hash $H1 -> $H2)
  changes: version 1 -> 2; state 'checking' added; operation 'grow' changed (on_expiry, steps)"
    vs "${m2[@]}" step r-busy "$busy_op" checking
    is "the op begun under v1 steps to v2's new state" 0 ""
    vs "${m2[@]}" finish r-busy "$busy_op" ready
    is "and finishes under v2" 0 ""
    vs "${m2[@]}" get r-busy --json
    py "r-busy is at rest in ready, version 5" '
assert j["state"] == "ready" and j["op"] is None and j["version"] == 5, j'
    vs "${m2[@]}" check
    is "check after the upgrade: history of v1 and v2 accepted" 0 \
        "check: 0 violations found"
    vs "${m2[@]}" watch --timeout 2 --count 100
    py "the upgrade is one event of kind upgrade" '
u = [l for l in lines if l["kind"] == "upgrade"]
assert len(u) == 1, lines
u = u[0]
assert u["machine"] == "tiny" and u["resource"] is None, u
assert u["from"] == "version 1" and u["to"] == "version 2", u
assert u["owner"] == "tester@'"$HOST"'", u
assert u["reason"].startswith("machine tiny upgraded from version 1 to 2 (hash '"$H1 -> $H2"'): "), u
assert lines.index(u) == 13 and lines[14]["resource"] == "r-busy", lines'
    vs --store "$S" --machines "$T/v1.yaml" get r-rest
    is_rc "a process with v1 is refused now" 1 \
        "hint: a newer vse pinned this store: run a vse with version 2 or later of 'tiny'"

    echo "# ${LABEL:-$S}: refused upgrades change nothing"
    # r-rest: a grow in flight at `growing`, which v3 drops.
    vs "${m2[@]}" begin r-rest grow
    vs "${m2[@]}" list
    list_before=$OUT
    vs --store "$S" machine upgrade "$T/v3.yaml"
    if [ "$RC" = 2 ] && [ "$OUT" = "r-rest: operation 'grow' is at step 'growing', which version 3 drops
r-spare: state 'spare' is not in version 3" ] &&
        [[ $ERR == *"cannot upgrade machine 'tiny' to version 3: 2 resources are in the way"* ]]; then
        ok "upgrade to a version that drops a state in use: exit 2 and the list"
    else
        not_ok "upgrade 2 -> 3 refused" "$(show_run)"
    fi
    vs --store "$S" machine upgrade "$T/v3.yaml" --json
    py "the refusal as JSON: blockers an array" '
assert j["result"] == "refused" and j["machine"] == "tiny", j
assert j["from_version"] == 2 and j["to_version"] == 3, j
assert j["from_hash"] == "'"$H2"'" and j["to_hash"] == "'"$H3"'", j
assert j["seq"] == 0, j
assert j["blockers"] == [
    {"resource": "r-rest", "state": "growing", "op": "grow",
     "reason": "operation '"'grow'"' is at step '"'growing'"', which version 3 drops"},
    {"resource": "r-spare", "state": "spare", "op": None,
     "reason": "state '"'spare'"' is not in version 3"}], j["blockers"]'
    vs "${m2[@]}" list
    is "nothing changed: the resources" 0 "$list_before"
    vs --store "$S" machine upgrade "$T/v2.yaml" --json
    py "nothing changed: the pin is still version 2, hash equal" '
assert j["result"] == "unchanged", j
assert j["from_hash"] == j["to_hash"] == "'"$H2"'", j
assert j["from_version"] == j["to_version"] == 2, j'
    vs --store "$S" machine upgrade "$T/v2.yaml"
    is "an upgrade to the pinned definition is done already" 0 \
        "machine tiny version 2 (hash $H2) is pinned already: nothing changed"
    vs --store "$S" machine upgrade "$T/v2b.yaml"
    is_rc "the same version changed: refused" 1 \
        "machine 'tiny' (version 2, hash $H2B) differs from the one the store pinned (version 2, hash $H2)"
    vs --store "$S" machine upgrade "$T/v1.yaml"
    is_rc "a lower version: refused" 1 \
        "machine 'tiny' version 1 is older than the store's pin (version 2, hash $H2): a newer vse pinned this store"
    vs "${m2[@]}" watch --timeout 1 --count 100
    py "refusals wrote no event" '
assert [l["kind"] for l in lines].count("upgrade") == 1, lines'
    vs "${m2[@]}" check
    is "check after the refusals" 0 "check: 0 violations found"

    echo "# ${LABEL:-$S}: once out of the way, the upgrade goes through"
    g=$(cd "$T" && "$V" "${m2[@]}" get r-rest --json |
        sed -n 's/.*"op_id":"\([^"]*\)".*/\1/p')
    vs "${m2[@]}" step r-rest "$g" checking
    vs "${m2[@]}" finish r-rest "$g" ready
    vs "${m2[@]}" begin r-spare grow
    g=$OUT
    vs "${m2[@]}" step r-spare "$g" checking
    vs "${m2[@]}" finish r-spare "$g" ready
    vs --store "$S" machine upgrade "$T/v3.yaml"
    is "upgrade 2 -> 3" 0 "machine tiny upgraded from version 2 to 3 (hash $H2 -> $H3)
  changes: version 2 -> 3; state 'spare' removed; state 'growing' removed; state 'checking' removed; state 'enlarging' added; operation 'grow' changed (from, on_expiry, steps, success)"
    vs --store "$S" --machines "$T/v3.yaml" check
    is "check under v3: every earlier row accepted" 0 \
        "check: 0 violations found"
    vs --store "$S" --machines "$T/v3.yaml" begin r-busy grow
    r=$OUT
    vs --store "$S" --machines "$T/v3.yaml" finish r-busy "$r" ready
    is "v3's grow runs" 0 ""
}

# Which usage errors and refusals need no store to be right.
usage_checks() {
    local S=$1
    vs --store "$S" machine upgrade
    is_rc "upgrade needs FILE" 2 "missing argument"
    vs --url http://127.0.0.1:1 machine upgrade "$T/v2.yaml"
    is_rc "upgrade needs --store" 2 "works with --store only"
    printf 'machine: tiny\nversion: x\n' >"$T/bad.yaml"
    vs --store "$S" machine upgrade "$T/bad.yaml"
    is_rc "a bad file is refused before the store is opened" 2 \
        "'version' must be an integer"
    vs machine upgrade --help
    if [ "$RC" = 0 ] && [[ $OUT == "Usage: vsectl --store URL machine upgrade FILE|NAME [--json]"* ]]; then
        ok "machine upgrade --help"
    else
        not_ok "machine upgrade --help" "$(show_run)"
    fi
}

# race STORE ROWS...: the upgrade while transitions commit.  `vsectl
# bench` runs attach/detach cycles on volumes with handles opened before
# the upgrade (processes on the old definition, the documented window);
# the upgrade to a volume machine whose `attaching` is renamed is tried
# until it goes through (refused, exit 2, while a volume is attaching).
# Then the history, read by ROWS (a command printing "seq|resource|kind|
# to" lines in seq order: vsectl itself is refused by the store now),
# must show no volume attaching when the upgrade committed: the check and
# the re-pin were one transaction.
race() {
    local S=$1 i rc=1 v=0 bpid refused=0
    shift
    local yaml next
    yaml="$(dirname "${BASH_SOURCE[0]}")/../../machines/volume.yaml"
    # The built-in's version plus one, whichever it is.
    next=$(($(sed -n 's/^version: \([0-9]*\)$/\1/p' "$yaml") + 1))
    sed -e 's/\battaching\b/linking/g' -e "s/^version: [0-9]*\$/version: $next/" \
        "$yaml" >"$T/volume-race.yaml"
    "$V" --store "$S" bench --clients 2 --resources 2 --seconds 3 \
        >"$T/bench.out" 2>&1 &
    bpid=$!
    # Wait (with a deadline) until both clients are cycling.
    for i in $(seq 1 1000); do
        v=$("$V" --store "$S" get bench-1 --json 2>/dev/null |
            sed -n 's/.*"version":\([0-9]*\).*/\1/p')
        [ "${v:-0}" -ge 10 ] && break
        sleep 0.01
    done
    for i in $(seq 1 2000); do
        "$V" --store "$S" machine upgrade "$T/volume-race.yaml" \
            >"$T/race.out" 2>"$T/race.err"
        rc=$?
        [ "$rc" = 2 ] || break
        refused=$((refused + 1))
    done
    wait "$bpid"
    if [ "$rc" != 0 ]; then
        not_ok "race: the upgrade went through" "rc=$rc" \
            "$(cat "$T/race.out" "$T/race.err")"
        return
    fi
    ok "race: the upgrade went through beside transitions ($refused refused first)"
    "$@" >"$T/rows" 2>&1 || {
        not_ok "race: read the history" "$(cat "$T/rows")"
        return
    }
    local bad
    bad=$(awk -F'|' '
        $3 == "upgrade" && !u { u = $1; for (r in last) if (last[r] == "attaching") print r " attaching at the upgrade (seq " u ")"; next }
        !u { last[$2] = $4 }' "$T/rows")
    if [ -z "$bad" ] && grep -q '|upgrade|' "$T/rows" &&
        [ "$(awk -F'|' '$4 == "attaching"' "$T/rows" | wc -l)" -gt 0 ]; then
        ok "race: no volume was attaching when the upgrade committed"
    else
        not_ok "race: atomic check and re-pin" "$bad" "$(tail -20 "$T/rows")"
    fi
}
