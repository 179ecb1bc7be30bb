#!/usr/bin/env bash
# t-vsectl.sh - vsectl end to end on real SQLite files: every command's
# happy path with its exact output, the exit-status contract (0/1/2/3/4),
# --help everywhere, and that bad input (arguments, machine files, store
# files) leaves a store byte for byte unchanged.
set -u

B=${VSE_BUILD:?VSE_BUILD names the build directory}
V=$(cd "$B" && pwd)/vsectl
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
export VSE_STORE="sqlite:$T/s.db"
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
skip() {
    echo "skip $1 ($2)"
}

# vs ARGS: run vsectl; OUT, ERR (trailing newlines cut) and RC.
vs() {
    "$V" "$@" >"$T/.out" 2>"$T/.err" </dev/null
    RC=$?
    OUT=$(cat "$T/.out")
    ERR=$(cat "$T/.err")
}
# Times and op_ids differ per run: compare them as placeholders.
norm() {
    sed -E -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z/TIME/g' \
        -e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/OPID/g'
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
# is_norm NAME RC OUT: the same, times and op_ids as placeholders.
is_norm() {
    local got
    got=$(printf '%s\n' "$OUT" | norm)
    if [ "$RC" = "$2" ] && [ "$got" = "$3" ]; then ok "$1"; else
        not_ok "$1" "want rc=$2 stdout:" "$3" "got (normalised):" "$got" \
            "stderr:" "$ERR"
    fi
}
# is_err NAME RC ERR: exit status, nothing on stdout, exact stderr.
is_err() {
    if [ "$RC" = "$2" ] && [ -z "$OUT" ] && [ "$ERR" = "$3" ]; then
        ok "$1"
    else
        not_ok "$1" "want rc=$2 stderr:" "$3" "got:" "$(show_run)"
    fi
}
# is_rc NAME RC [TEXT]: exit status, nothing on stdout, and stderr
# holding TEXT (a fixed string) when given.
is_rc() {
    if [ "$RC" = "$2" ] && [ -z "$OUT" ] &&
        { [ $# -lt 3 ] || [[ $ERR == *"$3"* ]]; }; then
        ok "$1"
    else
        not_ok "$1" "want rc=$2${3:+ and stderr with: $3}" "got:" "$(show_run)"
    fi
}
is_opid() {
    if [ "$RC" = 0 ] && [[ $OUT =~ ^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$ ]]
    then ok "$1"; else not_ok "$1" "want one op_id" "$(show_run)"; fi
}
# py NAME CODE: python3 asserts on stdout as JSON (j: the object, or
# lines: the list of objects, one per line).
py() {
    if [ "$have_py" = 0 ]; then skip "$1" "no python3"; return; fi
    if printf '%s\n' "$OUT" | python3 -c '
import json, sys
text = sys.stdin.read()
try:
    lines = [json.loads(text)] if text.strip() else []
except ValueError:
    lines = [json.loads(l) for l in text.splitlines() if l.strip()]
j = lines[0] if lines else None
'"$2" 2>"$T/.py"; then
        if [ "$RC" = 0 ]; then ok "$1"; else not_ok "$1" "$(show_run)"; fi
    else
        not_ok "$1" "$(cat "$T/.py")" "$(show_run)"
    fi
}
sum() {
    sha256sum "$1" | cut -d' ' -f1
}
same_file() {
    if [ "$2" = "$(sum "$3")" ]; then ok "$1"; else
        not_ok "$1" "$3 changed"
    fi
}

echo "# global options and help"
vs --version
if [ "$RC" = 0 ] && [[ $OUT =~ ^vsectl\ [0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    ok "--version"
else not_ok "--version" "$(show_run)"; fi
cmds="create begin step finish fail claim renew reset-state reap purge check
get history list watch bench"
for c in --help -h help; do
    vs $c
    [ "$RC" = 0 ] && [[ $OUT == Usage:* ]] && ok "vsectl $c" ||
        not_ok "vsectl $c" "$(show_run)"
done
for c in $cmds "machine" "machine validate" "machine show"; do
    # shellcheck disable=SC2086
    vs $c --help --store nope:
    [ "$RC" = 0 ] && [[ $OUT == Usage:\ vsectl\ $c* ]] &&
        [[ $OUT == *"Exit status:"* ]] && [[ $OUT == *"Example:"* ]] &&
        ok "$c --help" || not_ok "$c --help" "$(show_run)"
    # shellcheck disable=SC2086
    vs help $c
    [ "$RC" = 0 ] && [[ $OUT == Usage:\ vsectl\ $c* ]] &&
        ok "help $c" || not_ok "help $c" "$(show_run)"
done
vs get -h
[ "$RC" = 0 ] && [[ $OUT == Usage:* ]] && ok "get -h" || not_ok "get -h"
vs
is_rc "no command: usage, exit 2" 2 "Usage:"
vs frobnicate
is_err "unknown command" 2 "vsectl: 'frobnicate' is not a vsectl command
Try 'vsectl --help'."
vs help frobnicate
is_rc "help of an unknown command" 2 "not a vsectl command"
vs --bogus get x
is_err "unknown global option" 2 "vsectl: unknown option '--bogus'
Try 'vsectl --help'."

echo "# machine validate / show (no store)"
cat >lamp.yaml <<'EOF'
machine: lamp
version: 1
states:
  off:     {kind: rest, status: off}
  warming: {kind: busy, status: warming}
  on:      {kind: rest, status: on}
  broken:  {kind: rest, status: broken}
operations:
  install:
    from: [new]
    steps: [warming]
    success: [off]
    failure: broken
    on_expiry: fail
  switch:
    from: [off]
    steps: [warming]
    success: [on]
    failure: broken
    on_expiry: revert
EOF
sed 's/success: \[on\]/success: [lit]/' lamp.yaml >unknown-state.yaml
printf 'machine: lamp\nstates: [\n  off: {\n' >malformed.yaml
{
    cat lamp.yaml
    head -c 1100000 /dev/zero | tr '\0' '#'
} >oversized.yaml

vs machine validate lamp.yaml --store "sqlite:$T/none/x.db"
is "machine validate: valid" 0 \
    "lamp.yaml: machine lamp version 1 is valid (4 states, 2 operations, 6 transitions)"
vs machine validate unknown-state.yaml
is_err "machine validate: unknown state" 2 \
    "unknown-state.yaml:18:15: unknown state 'lit' in 'success' of operation 'switch'
vsectl: 'unknown-state.yaml' is not a valid machine (1 problem)"
vs machine validate malformed.yaml
is_rc "machine validate: malformed" 2 "malformed.yaml:"
vs machine validate oversized.yaml
is_rc "machine validate: oversized" 2 "limit is 1048576"
vs machine validate missing.yaml
is_rc "machine validate: missing file" 1 "missing.yaml"
vs machine validate
is_rc "machine validate: no file" 2 "missing argument"
vs machine show ./lamp.yaml
is "machine show FILE (table)" 0 "$(printf '%s\n' \
    "machine lamp  version 1  hash $(printf '%s\n' "$OUT" | sed -n '1s/.*hash //p')" \
    "" \
    "STATE    KIND  STATUS" \
    "off      rest  off" \
    "warming  busy  warming" \
    "on       rest  on  (terminal)" \
    "broken   rest  broken  (terminal)" \
    "" \
    "OP       KIND    FROM     TO" \
    "install  begin   new      warming" \
    "install  finish  warming  off" \
    "install  fail    warming  broken" \
    "switch   begin   off      warming" \
    "switch   finish  warming  on" \
    "switch   fail    warming  broken" \
    "" \
    "OP       STEP     ON EXPIRY" \
    "install  warming  fail" \
    "switch   warming  revert")"
vs --machines lamp.yaml machine show lamp --format json
py "machine show NAME from --machines, json" '
assert j["machine"] == "lamp" and len(j["transitions"]) == 6, j'
vs --store "sqlite:$T/lamp.db" --machines lamp.yaml create lamp l1 --owner me
is_opid "create of a machine loaded with --machines"
lop=$OUT
vs --store "sqlite:$T/lamp.db" finish l1 "$lop" --json --machines=lamp.yaml
py "finish it (--machines= after the command)" '
assert j["state"] == "off" and j["status"] == "off", j'
vs machine show volume --format dot
[ "$RC" = 0 ] && [[ $OUT == *digraph* ]] && ok "machine show volume dot" ||
    not_ok "machine show volume dot" "$(show_run)"
vs machine show volume --format mermaid
[ "$RC" = 0 ] && [[ $OUT == *stateDiagram-v2* ]] &&
    ok "machine show volume mermaid" || not_ok "machine show mermaid"
vs machine show volume -f svg
is_rc "machine show: unknown format" 2 "unknown format 'svg'"
vs machine show nosuch
is_rc "machine show: unknown built-in" 4 "built-in machines: volume"
vs machine frob
is_rc "machine: unknown subcommand" 2 "unknown subcommand 'frob'"

echo "# the create_volume flow, exact outputs"
vs create volume v1 --owner api@host1 --ttl 30
is_opid "create prints the op_id alone"
op1=$OUT
vs get v1
is_norm "get (human)" 0 "id:            v1
machine:       volume
state:         creating_db
status:        creating
op:            create
op_id:         OPID
owner:         api@host1
origin:        new
since:         TIME
lease_expires: TIME
version:       1
created:       TIME
updated:       TIME
attrs:         {}"
vs get v1 --json
py "get --json" '
assert j["id"] == "v1" and j["machine"] == "volume", j
assert j["state"] == "creating_db" and j["status"] == "creating", j
assert j["op"] == "create" and j["op_id"] == "'"$op1"'", j
assert j["owner"] == "api@host1" and j["version"] == 1, j
assert j["lease_expires"].endswith("Z") and j["origin"] == "new", j
for k in ("since", "created", "updated"):
    assert j[k].endswith("Z"), k
assert j["lease_ttl_ms"] == 30000, j'
vs step v1 "$op1" scheduling --release
is "step --release prints nothing" 0 ""
vs get v1 --json
py "step --release cleared the owner" '
assert j["state"] == "scheduling" and j["owner"] is None, j'
vs claim v1 "$op1" --owner scheduler@host1 --request-id claim-1
is_opid "claim prints the new op_id"
op2=$OUT
[ "$op2" != "$op1" ] && ok "claim made a new op_id" || not_ok "claim op_id"
vs claim v1 "$op1" --owner scheduler@host1 --request-id claim-1
is "claim repeated (same request id): the same op_id" 0 "$op2"
[ "$ERR" = "vsectl: already done (repeated): claim 'v1' by scheduler@host1" ] &&
    ok "claim repeated: note on stderr" || not_ok "repeat note" "$(show_run)"
vs renew v1 "$op2" --ttl 2m
is "renew" 0 ""
vs get v1 --json
py "renew moved the version (4) and writes no history row" '
assert j["version"] == 4, j'
vs step v1 "$op1" creating_vol
is_rc "step with the fenced op_id: exit 3" 3 "is fenced"
vs step v1 "$op2" creating_vol --json
py "step --json prints the resource" '
assert j["state"] == "creating_vol" and j["owner"] == "scheduler@host1", j
assert j["version"] == 5, j'
vs finish v1 "$op2" available
is "finish" 0 ""
vs finish v1 "$op2" available
is "finish repeated: done" 0 ""
[ "$ERR" = "vsectl: already done (repeated): finish 'v1' in available" ] &&
    ok "finish repeated: note on stderr" || not_ok "finish repeat" "$(show_run)"
vs begin v1 delete --owner volume@host2
is_opid "begin prints the op_id alone"
op3=$OUT
vs begin v1 extend --owner api@host1
if [ "$RC" = 3 ] && [ -z "$OUT" ] &&
    [[ $(printf '%s\n' "$ERR" | norm) == "vsectl: volume 'v1' is busy: delete, step deleting, owner volume@host2, since TIME; extend may not begin
  hint: allowed now, with op_id OPID: "* ]]; then
    ok "concurrent begin refused: exit 3, what is in the way, hint"
else not_ok "refused begin" "$(show_run)"; fi
vs step v1 00000000-0000-4000-8000-000000000000 deleting
is_rc "step with a wrong op_id: exit 3" 3 "fenced"
vs fail v1 "$op3" --reason "disk gone"
is "fail" 0 ""
vs reset-state v1 available --reason "checked by hand" --actor ops@desk
is "reset-state --actor" 0 ""
vs reset-state v1 error --reason "test the default actor" --json
py "reset-state: actor is \$USER@hostname" '
assert j["state"] == "error" and j["op"] is None, j'
vs history v1
is_norm "history (human table)" 0 "   SEQ  VER AT                          KIND    OP           FROM → TO                      OWNER                REASON
     1    1 TIME create  create       new → creating_db              api@host1
     2    2 TIME step    create       creating_db → scheduling       api@host1
     3    3 TIME claim   create       scheduling → scheduling        scheduler@host1
     4    5 TIME step    create       scheduling → creating_vol      scheduler@host1
     5    6 TIME finish  create       creating_vol → available       scheduler@host1
     6    7 TIME begin   delete       available → deleting           volume@host2
     7    8 TIME fail    delete       deleting → error_deleting      volume@host2         disk gone
     8    9 TIME reset   -            error_deleting → available     ops@desk             checked by hand
     9   10 TIME reset   -            available → error              $(printf '%-20s' "tester@$HOST") test the default actor"
vs check v1
is "check: the renew's gap in the versions is allowed" 0 "check: 0 violations found"
vs history v1 --json --since 5 --limit 2
py "history --json --since --limit" '
assert [e["seq"] for e in lines] == [6, 7], lines
e = lines[1]
for k in ("seq", "resource", "machine", "op", "op_id", "from", "to",
          "owner", "at", "reason", "kind", "version", "request_id"):
    assert k in e, k
assert e["kind"] == "fail" and e["reason"] == "disk gone", e
assert e["from"] == "deleting" and e["to"] == "error_deleting", e
assert e["op_id"] == "'"$op3"'" and e["request_id"] is None, e'
vs history v1 --json --since 9
is "history --since past the end: nothing" 0 ""

echo "# create with --op, --request-id; list"
vs create snapshot s1 --op create --hold v1 --request-id req-s1
is_opid "create snapshot --op --request-id"
sop=$OUT
vs create snapshot s1 --op create --hold v1 --request-id req-s1
is "create repeated with the same request id" 0 "$sop"
vs create snapshot s1 --hold v1
is_rc "create of an existing id: exit 3" 3 "s1"
vs list
is_norm "list (human table)" 0 "ID                       MACHINE    STATE          STATUS       OP           OWNER                LEASE_EXPIRES               VER  HOLDS
s1                       snapshot   creating       creating     create       -                    TIME 1    holds v1 (shared)
v1                       volume     error          error        -            -                    -                           10   held by s1 (shared)"
vs list --json
py "list --json" '
assert [r["id"] for r in lines] == ["s1", "v1"], lines
for r in lines:
    for k in ("id", "machine", "state", "status", "op", "op_id", "owner",
              "lease_expires", "version"):
        assert k in r, k'
vs list --busy --json
py "list --busy" 'assert [r["id"] for r in lines] == ["s1"], lines'
vs list --machine volume --state error --json
py "list --machine --state" 'assert [r["id"] for r in lines] == ["v1"]'
vs list --machine volume --not-state error --json
is "list --not-state: the one volume is in error" 0 ""
vs list --machine snapshot --not-state deleted --json
py "list --machine --not-state" 'assert [r["id"] for r in lines] == ["s1"]'
vs list --machine volume --not-state delted
is_rc "list --not-state with a state the machine lacks: exit 2" 2 "delted"
vs list --limit 1 --after s1 --json
py "list --limit --after" 'assert [r["id"] for r in lines] == ["v1"]'
vs list --stuck
is "list --stuck: header only" 0 "ID                       MACHINE    STATE          STATUS       OP           OWNER                LEASE_EXPIRES               VER   EXPIRIES"
vs finish s1 "$sop"
is "finish with the one success state implied" 0 ""

echo "# leases: reap, stuck"
vs create volume v2 --owner w@host9 --ttl 100ms
is_opid "create with a 100ms lease"
sleep 0.3
vs list --stuck --json
py "list --stuck" 'assert [r["id"] for r in lines] == ["v2"], lines'
vs reap
is "reap (create fails on expiry in creating_db)" 0 \
    "reap: 1 expired, 0 retried, 1 failed, 0 reverted, 0 skipped, 0 out of attempts, 0 not claimed in time"
vs reap --json
py "reap --json" '
assert j == {"examined": 0, "retried": 0, "failed": 0, "reverted": 0,
             "skipped": 0, "exhausted": 0, "unclaimed": 0}, j'
vs get v2 --json
py "reaped resource is in error" 'assert j["state"] == "error", j'

echo "# retry budget: a volume in extending with no volume host (issue 14)"
# A store of its own: the sections below count this one's events.
vs --store "sqlite:$T/rb.db" create volume rb --owner api@h1
rbop=$OUT
vs --store "sqlite:$T/rb.db" step rb "$rbop" scheduling
vs --store "sqlite:$T/rb.db" step rb "$rbop" creating_vol
vs --store "sqlite:$T/rb.db" finish rb "$rbop" available
is "rb available" 0 ""
# The API hands extend to the volume host unowned; no host ever claims it.
vs --store "sqlite:$T/rb.db" begin rb extend --ttl 100ms
is_opid "begin extend, unowned"
vs --store "sqlite:$T/rb.db" machine show volume
case $OUT in *"extend                5         10m0s  (default)"*) ok "machine show: default budget of extend" ;;
*) not_ok "machine show: default budget of extend" "$OUT" ;; esac
sleep 0.3
vs --store "sqlite:$T/rb.db" list --stuck --json
py "list --stuck shows what waits, with its expiries" '
assert [(r["id"], r["state"], r["owner"], r["expiries"]) for r in lines] == \
    [("rb", "extending", None, 0)], lines'
vs --store "sqlite:$T/rb.db" reap
is "reap: within its unclaimed budget it waits" 0 \
    "reap: 0 expired, 0 retried, 0 failed, 0 reverted, 0 skipped, 0 out of attempts, 0 not claimed in time"
# Eleven minutes later, as the store sees it: the op became unowned at
# lease_expires - lease_ttl.
back11() {
    if command -v sqlite3 >/dev/null 2>&1; then
        sqlite3 "$T/rb.db" "$1"
    elif [ "$have_py" = 1 ]; then
        python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()' "$T/rb.db" "$1"
    else
        return 1
    fi
}
back11 "UPDATE resources SET lease_expires = lease_expires - 660000000 WHERE id = 'rb'" &&
    ok "store clock moved back 11 minutes" || not_ok "store clock moved back (needs sqlite3 or python3)"
vs --store "sqlite:$T/rb.db" reap
is "reap: ended for want of a claim" 0 \
    "reap: 0 expired, 0 retried, 0 failed, 0 reverted, 0 skipped, 0 out of attempts, 1 not claimed in time"
vs --store "sqlite:$T/rb.db" get rb --json
py "rb ends in error_extending, at rest" '
assert (j["state"], j["status"], j["op"]) == ("error_extending", "error_extending", None), j'
vs --store "sqlite:$T/rb.db" history rb --json
py "the history says why" '
e = lines[-1]
assert e["kind"] == "expire" and e["to"] == "error_extending", e
import re
assert re.match(r"handed back 11m[0-9]+s ago and not claimed: step extending of extend waited longer than its unclaimed budget \(10m0s\)$", e["reason"]), e'
vs --store "sqlite:$T/rb.db" check rb
is "check: the budget end is a valid path" 0 "check: 0 violations found"

echo "# check, watch"
vs check
is "check" 0 "check: 0 violations found"
vs check v1 --json
py "check ID --json" 'assert j == {"violations": [], "count": 0}, j'
vs check nosuch
[ "$RC" = 4 ] || [ "$RC" = 0 ] && ok "check of a missing id (0 or 4)" ||
    not_ok "check missing" "$(show_run)"
vs watch --count 3
py "watch --count 3: the first three events" '
assert [e["seq"] for e in lines] == [1, 2, 3], lines
assert lines[0]["kind"] == "create" and lines[0]["resource"] == "v1"'
vs watch --since 2 --count 1
py "watch --since 2 --count 1" 'assert [e["seq"] for e in lines] == [3]'
vs history v2 --json
last=$(printf '%s\n' "$OUT" | tail -n 1 | sed -E 's/^\{"seq":([0-9]+),.*/\1/')
start=$(date +%s%N)
vs watch --since "$last" --timeout 1
took=$((($(date +%s%N) - start) / 1000000))
is "watch --timeout with nothing new: exit 0, no output" 0 ""
[ "$took" -ge 900 ] && [ "$took" -lt 5000 ] &&
    ok "watch --timeout 1 took about a second (${took}ms)" ||
    not_ok "watch --timeout took ${took}ms"
"$V" watch --since "$last" --count 1 --timeout 20 >"$T/w.out" 2>&1 &
wpid=$!
sleep 0.5
vs create volume v3
v3op=$OUT
wait "$wpid"
wrc=$?
OUT=$(cat "$T/w.out")
RC=$wrc
py "watch follows: sees a new event" '
assert len(lines) == 1 and lines[0]["resource"] == "v3", lines'
"$V" watch --since "$last" >"$T/w.out" 2>&1 &
wpid=$!
sleep 0.5
kill -TERM "$wpid"
wait "$wpid"
RC=$?
OUT=$(head -c 200 "$T/w.out")
[ "$RC" = 0 ] && [[ $OUT == '{"seq":'* ]] &&
    ok "watch stops on SIGTERM with exit 0 and flushed output" ||
    not_ok "watch SIGTERM" "$(show_run)"
"$V" watch --since "$last" >"$T/w.out" 2>&1 &
wpid=$!
sleep 0.3
kill -INT "$wpid"
wait "$wpid"
RC=$?
[ "$RC" = 0 ] && ok "watch stops on SIGINT with exit 0" ||
    not_ok "watch SIGINT" "rc=$RC" "$(head -c 300 "$T/w.out")"
vs watch --count 0
is_rc "watch --count 0: exit 2" 2 "out of range"

echo "# --store before or after the command, and from VSE_STORE"
cp s.db copy.db 2>/dev/null
vs --store "sqlite:$T/copy.db" get v1 --json
py "--store before the command" 'assert j["id"] == "v1"'
vs get v1 --json --store "sqlite:$T/copy.db"
py "--store after the command" 'assert j["id"] == "v1"'
vs --store="sqlite:$T/copy.db" get v1 --json
py "--store=URL" 'assert j["id"] == "v1"'
rm -f copy.db

echo "# bench"
vs --store "sqlite:$T/bench.db" bench --clients 2 --resources 3 --seconds 1 \
    --json
py "bench --json: one object, exactly these keys" '
assert len(lines) == 1
assert set(j) == {"transitions", "transitions_per_s", "refused", "p50_us",
                  "p99_us", "clients", "resources", "seconds", "engine",
                  "store"}, j
assert j["engine"] == "vse" and j["clients"] == 2 and j["resources"] == 3
assert j["transitions"] > 0 and j["p50_us"] <= j["p99_us"], j
assert j["store"].startswith("sqlite:"), j'
vs --store "sqlite:$T/bench.db" check
is "bench leaves a valid history" 0 "check: 0 violations found"
vs --store "sqlite:$T/bench.db" bench --clients 1 --resources 3 --seconds 1
if [ "$RC" = 0 ] && [[ $OUT == "bench: vse on sqlite:"* ]] &&
    [[ $OUT == *"p99_us "* ]]; then ok "bench (human)"; else
    not_ok "bench (human)" "$(show_run)"; fi
vs --store "sqlite:$T/bench.db" bench --threads --clients 3 --resources 4 \
    --seconds 1 --json
py "bench --threads: the clients as threads" '
assert j["clients"] == 3 and j["transitions"] > 0, j'
vs --store "sqlite:$T/bench.db" check
is "bench --threads leaves a valid history" 0 "check: 0 violations found"
vs --url http://127.0.0.1:1 bench --threads
is_rc "bench --threads with --url: exit 2" 2 "--threads runs store clients"
vs bench --clients 0
is_rc "bench --clients 0: exit 2" 2 "out of range"
# A closed stdout: stop quietly (no SIGPIPE death, no message).
"$V" --store "sqlite:$T/bench.db" watch --timeout 1 2>"$T/.err" | head -n 1 \
    >/dev/null
RC=${PIPESTATUS[0]}
[ "$RC" = 1 ] && [ ! -s "$T/.err" ] &&
    ok "watch | head -1: exit 1 quietly" ||
    not_ok "watch | head -1" "rc=$RC" "$(cat "$T/.err")"
"$V" list 2>"$T/.err" | head -n 1 >/dev/null
RC=${PIPESTATUS[0]}
[ ! -s "$T/.err" ] && ok "list | head -1: nothing on stderr (rc $RC)" ||
    not_ok "list | head -1" "$(cat "$T/.err")"

echo "# purge"
vs step v3 "$v3op" scheduling
vs step v3 "$v3op" creating_vol
vs finish v3 "$v3op" available
is "create v3 to available" 0 ""
vs begin v3 delete --owner w
del=$OUT
vs finish v3 "$del"
is "delete v3" 0 ""
vs purge --keep-terminal --json
py "purge --keep-terminal (default 30 days): nothing old" '
assert j == {"history_rows": 0, "resources": 0}, j'
sleep 1.2
vs purge --older-than 1s --keep-terminal --json
py "purge --older-than 1s --keep-terminal" '
assert j["history_rows"] > 0 and j["resources"] == 0, j'
vs purge --older-than 1s --json
py "purge --older-than 1s drops the deleted volume" '
assert j["resources"] == 1, j'
vs purge
is "purge (human)" 0 "purge: 0 history rows, 0 resources removed"
vs get v3
is_rc "purged resource is gone: exit 4" 4 "not found"
vs check
is "check after purge" 0 "check: 0 violations found"
for d in 30d 12h 90m 3600s 3600; do
    vs purge --older-than "$d"
    [ "$RC" = 0 ] && ok "purge --older-than $d" || not_ok "purge $d" "$(show_run)"
done
vs purge --older-than 5x
is_rc "purge --older-than 5x: exit 2" 2 "not a duration"

echo "# exit statuses: 4 not found, 1 store not usable"
vs get nosuch
is_err "get of a missing id: exit 4" 4 "vsectl: resource 'nosuch' not found"
vs history nosuch
is_rc "history of a missing id: exit 4" 4
vs begin nosuch delete
is_rc "begin on a missing id: exit 4" 4
vs get v1 --store "sqlite:$T/no/such/dir/x.db"
is_rc "store in a missing directory: exit 1" 1 "vsectl: "
vs get v1 --store "bogus:x"
is_rc "store URL with an unknown scheme: exit 2" 2 "unknown scheme"

echo "# bad input: exit 2, store unchanged"
before=$(sum s.db)
bad=(
    "step"
    "step v1"
    "create volume"
    "get"
    "get a b"
    "get v1 --bogus"
    "list extra"
    "create volume x --ttl 0"
    "create volume x --ttl -5"
    "create volume x --ttl 5x"
    "create volume x --ttl 1.5"
    "create volume x --ttl"
    "create volume x --ttl="
    "begin v1 delete --ttl 99999999999999999999"
    "claim v1 00000000-0000-4000-8000-000000000000"
    "fail v1 00000000-0000-4000-8000-000000000000"
    "reset-state v1 available"
    "step v1 not-an-op-id scheduling"
    "step v1 00000000-0000-4000-8000-00000000000 scheduling"
    "history v1 --limit 0"
    "history v1 --limit abc"
    "history v1 --since -1"
    "history v1 --since 5x"
    "list --limit 99999999999999999999"
    "watch --count x"
    "machine show"
    "get --json=yes v1"
)
for args in "${bad[@]}"; do
    # shellcheck disable=SC2086
    vs $args
    [ "$RC" = 2 ] && [[ $ERR == vsectl:\ * ]] && [[ $ERR == *"Try 'vsectl "* ]] &&
        ok "usage error: vsectl $args" ||
        not_ok "usage error: vsectl $args" "$(show_run)"
done
long=$(printf 'x%.0s' $(seq 256))
vs create volume ""
is_err "empty id" 2 "vsectl: resource id is empty
Try 'vsectl create --help'."
vs create volume "$long"
is_err "256-byte id" 2 "vsectl: resource id is 256 bytes long, the limit is 255
Try 'vsectl create --help'."
vs create volume "${long:1}"
is_opid "255-byte id is fine"
sum255=$(sum s.db)
vs create volume $'a\nb'
is_err "id with a newline" 2 "vsectl: resource id holds a control character (0x0a) at byte 2
Try 'vsectl create --help'."
vs create volume $'a\x01b'
is_rc "id with a control character" 2 "control character (0x01)"
vs create volume $'a\x7f'
is_rc "id with DEL" 2 "control character (0x7f)"
vs create volume $'\xff\xfe'
is_rc "id that is not UTF-8" 2 "not valid UTF-8"
vs create volume ok --owner ""
is_rc "empty owner" 2 "owner is empty"
vs create volume ok --owner "$long"
is_rc "long owner" 2 "owner is 256 bytes"
vs create volume ok --request-id $'r\t1'
is_rc "request id with a tab" 2 "request id holds a control character"
vs claim v1 00000000-0000-4000-8000-000000000000 --owner $'x\ny'
is_rc "claim owner with a newline" 2 "owner holds"
vs fail v1 00000000-0000-4000-8000-000000000000 --reason "$(printf 'r%.0s' $(seq 1024))"
is_rc "reason of 1024 bytes" 2 "reason is 1024 bytes long, the limit is 1023"
vs fail v1 00000000-0000-4000-8000-000000000000 --reason $'two\nlines'
is_rc "reason with a newline" 2 "reason holds a control character"
vs reset-state v1 available --reason ok --actor ""
is_rc "empty actor" 2 "actor is empty"
vs step v1 00000000-0000-4000-8000-000000000000 "$(printf 's%.0s' $(seq 64))"
is_rc "state name of 64 bytes" 2 "state is 64 bytes long"
for f in malformed.yaml oversized.yaml unknown-state.yaml missing.yaml; do
    vs --machines "$f" create lamp l1
    [ "$RC" = 2 ] || [ "$RC" = 1 ] && [[ $ERR == *"$f"* ]] && [ -z "$OUT" ] &&
        ok "--machines $f: refused before the store is opened (rc $RC)" ||
        not_ok "--machines $f" "$(show_run)"
    vs get v1 --machines "$f"
    [ "$RC" = 2 ] || [ "$RC" = 1 ] && ok "get --machines $f: refused" ||
        not_ok "get --machines $f" "$(show_run)"
done
same_file "store unchanged by bad input" "$sum255" s.db

echo "# refusals change nothing"
vs begin v1 delete --owner a
op4=$OUT
before=$(sum s.db)
vs begin v1 extend
is_rc "refused begin: exit 3" 3 "may not begin"
vs step v1 "$op4" available
is_rc "step to a rest state: refused or bad input" 3
vs step v1 "$op4" nosuchstate
is_rc "step to an unknown state: exit 2" 2 "nosuchstate"
vs begin v1 nosuchop
is_rc "begin of an unknown operation: exit 2" 2 "nosuchop"
vs create nosuchmachine x
is_rc "create of an unknown machine: exit 2" 2 "nosuchmachine"
vs claim v1 "$op4" --owner thief
is_rc "claim of a live, owned op: exit 3" 3 "lease is live"
vs get nosuch
is_rc "get missing: exit 4" 4
same_file "store unchanged by refusals" "$before" s.db
vs finish v1 "$op4"
is "finish the delete" 0 ""

echo "# store files vse must refuse, unchanged"
head -c 8192 /dev/urandom >junk.db
printf 'not a database at all\n' >>junk.db
for f in junk; do
    s0=$(sum $f.db)
    for args in "get x" "create volume x" "list"; do
        # shellcheck disable=SC2086
        vs --store "sqlite:$T/$f.db" $args
        first=$(printf '%s\n' "$ERR" | head -n 1)
        { [ "$RC" = 1 ] || [ "$RC" = 2 ]; } && [[ $first == vsectl:\ * ]] &&
            [[ $first == *"$f.db"* ]] && [ -z "$OUT" ] &&
            ok "$f store refused: $args (rc $RC)" ||
            not_ok "$f store: $args" "$(show_run)"
    done
    same_file "$f store file unchanged" "$s0" $f.db
done
if [ "$have_py" = 1 ]; then
    python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("CREATE TABLE inventory(id INTEGER PRIMARY KEY, name TEXT)")
c.execute("INSERT INTO inventory(name) VALUES (?)", ("disk",))
c.commit()
c.close()' other.db
    cp s.db newer.db
    python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE vse_meta SET value = ? WHERE key = ?",
          ("99", "schema_version"))
c.commit()
c.close()' newer.db
    for f in other newer; do
        s0=$(sum $f.db)
        for args in "get v1" "create volume x" "list"; do
            # shellcheck disable=SC2086
            vs --store "sqlite:$T/$f.db" $args
            first=$(printf '%s\n' "$ERR" | head -n 1)
            { [ "$RC" = 1 ] || [ "$RC" = 2 ]; } &&
                [[ $first == vsectl:\ * ]] && [[ $first == *"$f.db"* ]] &&
                [ -z "$OUT" ] &&
                ok "$f store refused: $args (rc $RC)" ||
                not_ok "$f store: $args" "$(show_run)"
        done
        same_file "$f store file unchanged" "$s0" $f.db
    done
    vs --store "sqlite:$T/newer.db" get v1
    is_rc "newer schema: says so" 1 "newer"
else
    skip "other-program and newer-schema stores" "no python3"
fi

# ---- attrs: set with transitions, changed by update, bad ones refused ----
vs create volume at1 --owner api@host1 --attrs '{"size":1,"name":"db"}'
is_opid "create --attrs prints the op_id"
aop=$OUT
vs step at1 "$aop" scheduling --attrs '{"host":"h2","name":null}' --json
py "step --attrs merges (RFC 7396)" '
assert j["attrs"] == {"size": 1, "host": "h2"}, j["attrs"]
assert j["state"] == "scheduling" and j["version"] == 2, j'
vs update at1 --attrs '{"name":"renamed"}' --json
py "update changes attrs only" '
assert j["attrs"] == {"size": 1, "host": "h2", "name": "renamed"}, j
assert j["state"] == "scheduling" and j["op"] == "create", j
assert j["version"] == 3, j'
vs history at1 --json
py "update is in the history" '
assert [l["kind"] for l in lines] == ["create", "step", "update"], lines
assert lines[2]["from"] == lines[2]["to"] == "scheduling", lines[2]'
vs update at1 --attrs '[1]'
is_rc "update: --attrs must be an object" 2 "JSON object"
vs update at1 --attrs '{oops'
is_rc "update: --attrs must be JSON" 2 "not valid JSON"
vs update at1
is_rc "update needs --attrs" 2 "needs --attrs"
vs get at1 --json
py "refused updates changed nothing" 'assert j["version"] == 3, j'
echo "# renew: a row only with --reason"
vs create volume rn1 --owner api@host1
rnop=$OUT
vs renew rn1 "$rnop"
vs history rn1 --json
py "renew without --reason: no history row" 'assert len(lines) == 1, lines'
vs renew rn1 "$rnop" --reason "task x: start"
vs history rn1 --json
py "renew --reason: recorded" '
assert len(lines) == 2 and lines[1]["kind"] == "renew", lines
assert lines[1]["reason"] == "task x: start" and lines[1]["version"] == 3, lines'
vs renew rn1 "$rnop" --reason "$(printf 'x%.0s' $(seq 1 1100))"
is_rc "renew --reason too long: exit 2" 2 "reason"
vs migrate
if [ "$RC" = 0 ] && [[ $OUT == *"schema version 6"* ]]; then
    ok "migrate reports the schema version"
else
    not_ok "migrate" "$(show_run)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
