#!/usr/bin/env bash
# t-vsed-parity.sh - vsectl --url (through vsed) and vsectl --store (the
# library in process) run the same script of commands on two fresh
# stores: every command must print the same and exit the same, op_ids and
# times aside.  And vsectl bench --url runs its cycles through vsed.
set -u
. "$(dirname "$0")/vsed-lib.sh"
export USER=tester

start_vsed "$T/vsed.log" --store "sqlite:$T/b.db" --auth noauth ||
    { cat "$T/vsed.log"; exit 1; }

norm() {
    sed -E -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z/TIME/g' \
        -e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/OPID/g'
}

# play MODE...: run the script; every command's rc, stdout and stderr.
play() {
    local out=$1
    shift
    v() {
        echo "\$ vsectl $*"
        "$VSECTL" "${MODE[@]}" "$@" 2>&1
        echo "rc=$?"
    }
    MODE=("$@")
    {
        op=$("$VSECTL" "${MODE[@]}" create volume p1 --owner api@h1)
        echo "create rc=$?"
        v step p1 "$op" scheduling --release
        op2=$("$VSECTL" "${MODE[@]}" claim p1 "$op" --owner sched@h1)
        echo "claim rc=$?"
        v step p1 "$op" creating_vol
        v step p1 "$op2" creating_vol --json
        v finish p1 "$op2" available
        v finish p1 "$op2" available
        op3=$("$VSECTL" "${MODE[@]}" begin p1 extend --owner vol@h2 --ttl 5m)
        echo "begin rc=$?"
        v begin p1 delete --owner api@h1
        v renew p1 "$op3" --ttl 10m
        v get p1
        v get p1 --json
        v get nope
        v finish p1 "$op3" --request-id fin-1
        v finish p1 "$op3" --request-id fin-1
        v fail p1 not-an-op --reason x
        v create volume p1
        v create nosuch p2
        v create snapshot s1
        v create snapshot s2 --op create --request-id c-s2
        v create snapshot s2 --op create --request-id c-s2
        v reset-state p1 error --reason 'checked by hand'
        v reset-state p1 nosuch --reason x
        v history p1
        v history p1 --json --limit 3
        v history p1 --since 3
        v history nope
        v list
        v list --json --busy
        v list --machine volume --limit 1
        v list --after p1
        v list --stuck
        v reap
        v reap --json
        v purge --older-than 1d --json
        v purge --keep-terminal
        v watch --since 0 --count 5
        v watch --since 3 --count 2
    } 2>&1 | norm >"$out"
}

play "$T/store.out" --store "sqlite:$T/a.db"
play "$T/url.out" --url "$URL"
if diff -u "$T/store.out" "$T/url.out" >"$T/diff"; then
    ok "vsectl --url and --store: same output and exit statuses ($(grep -c '^rc=' "$T/store.out") commands)"
else
    not_ok "vsectl --url and --store differ" "$(head -60 "$T/diff")"
fi
grep -q '^rc=3$' "$T/url.out" && grep -q '^rc=4$' "$T/url.out" &&
    grep -q '^rc=2$' "$T/url.out" && ok "the script covers exit statuses 2, 3, 4" ||
    not_ok "exit status coverage" "$(cat "$T/url.out")"

"$VSECTL" --url "$URL" check >/dev/null 2>"$T/err"
[ $? = 2 ] && ok "check needs --store: exit 2" || not_ok "check with --url" "$(cat "$T/err")"
"$VSECTL" --url "http://127.0.0.1:1" get p1 >/dev/null 2>"$T/err"
[ $? = 1 ] && grep -q 'cannot reach vsed' "$T/err" && ok "unreachable vsed: exit 1" ||
    not_ok "unreachable vsed" "$(cat "$T/err")"
"$VSECTL" --url "ftp://x" get p1 >/dev/null 2>&1
[ $? = 2 ] && ok "bad --url: exit 2" || not_ok "bad --url: exit 2"

# bench --url: the same cycles through vsed, the same report.  The store
# vsed serves ends up with the bench volumes and a valid history.
"$VSECTL" --url "$URL" bench --clients 2 --resources 3 --seconds 1 \
    >"$T/bench" 2>&1
rc=$?
if [ "$rc" = 0 ] && python3 - "$T/bench" "$URL" <<'EOF2'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines[0] == ("bench: vse through vsed at %s, 2 clients, 3 resources, "
                    "1 s" % sys.argv[2]), lines
keys = [l.split()[0] for l in lines[1:]]
assert keys == ["transitions", "transitions_per_s", "refused", "p50_us",
                "p99_us"], lines
vals = dict(l.split() for l in lines[1:])
assert int(vals["transitions"]) > 0 and float(vals["transitions_per_s"]) > 0
assert int(vals["p50_us"]) <= int(vals["p99_us"]), lines
EOF2
then ok "bench --url (human)"; else not_ok "bench --url (human)" "rc=$rc" \
    "$(cat "$T/bench")"; fi
"$VSECTL" --url "$URL/" bench --clients 1 --resources 3 --seconds 1 --json \
    >"$T/bench" 2>&1
rc=$?
if [ "$rc" = 0 ] && python3 - "$T/bench" "$URL" <<'EOF2'
import json, sys
j = json.loads(open(sys.argv[1]).read())
assert set(j) == {"transitions", "transitions_per_s", "refused", "p50_us",
                  "p99_us", "clients", "resources", "seconds", "engine",
                  "store"}, j
assert j["engine"] == "vsed" and j["store"] == sys.argv[2], j
assert j["clients"] == 1 and j["resources"] == 3 and j["transitions"] > 0, j
EOF2
then ok "bench --url --json"; else not_ok "bench --url --json" "rc=$rc" \
    "$(cat "$T/bench")"; fi
out=$("$VSECTL" --url "$URL" list --state available 2>&1;
    "$VSECTL" --url "$URL" list --state in_use 2>&1)
n=$(grep -c '^bench-[012] ' <<<"$out")
[ "$n" = 3 ] && ok "bench --url made its 3 volumes in vsed's store" ||
    not_ok "bench volumes in vsed's store" "$out"
"$VSECTL" --url "http://127.0.0.1:1" bench --seconds 1 >/dev/null 2>"$T/err"
[ $? = 1 ] && grep -q 'cannot reach vsed' "$T/err" &&
    ok "bench --url, vsed unreachable: exit 1" ||
    not_ok "bench --url, vsed unreachable" "$(cat "$T/err")"
stop_vsed
"$VSECTL" --store "sqlite:$T/b.db" check >"$T/err" 2>&1
[ $? = 0 ] && ok "bench --url leaves a valid history" ||
    not_ok "bench --url leaves a valid history" "$(cat "$T/err")"
finish
