#!/usr/bin/env bash
# t-load-locks.sh - the side by side of issue 7, short: the same
# contention load (4 s, 8 clients, two API servers, two managers of one
# host, kill -9 of a manager) through bench/side-by-side.sh, once with
# the enforcer and once with `vsed --coordination local-locks` (per-host
# file locks and Cinder-style status reads).  The enforcer run must be
# clean; the local-locks run must show the damage the enforcer prevents,
# found by the same checkers: bad histories (vsectl check) and accepted
# requests that never took effect (vse-load).  Also vsed's refusals of
# bad --coordination and --lock-dir values.
set -u
. "$(dirname "$0")/vsed-lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

"$ROOT/bench/side-by-side.sh" --build "$B" --out "$T/sbs" --seconds 4 \
    --seed 5 --fault kill@1 >"$T/sbs.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && ok "side-by-side: the enforcer run is clean (exit 0)" ||
    not_ok "side-by-side exit 0" "rc $rc" "$(tail -30 "$T/sbs.out")"
py() {
    python3 -c "
import json, sys
j = json.load(open('$T/sbs/side-by-side.json'))
e, l = j['runs']['enforcer'], j['runs']['local-locks']
sys.exit(0 if ($1) else 1)" 2>/dev/null
}
py "e['accepted'] > 0 and e['refused'] > 0 and e['faults'] == 1 and
    e['load_violations'] == [] and e['check_rc'] == 0 and
    e['check'] == {'history': 0, 'pool': 0, 'stuck': 0}" &&
    ok "enforcer: refusals, a fault, 0 violations (vse-load and vsectl check)" ||
    not_ok "enforcer clean" "$(cat "$T/sbs/side-by-side.txt")"
py "l['accepted'] > 0 and l['faults'] == 1 and l['check_rc'] == 1 and
    l['check']['history'] > 0" &&
    ok "local-locks: vsectl check finds overlapping ops and bad edges" ||
    not_ok "local-locks breaks" "$(cat "$T/sbs/side-by-side.txt")"
grep -qE "operations overlap|may not begin from|not the current token" \
    "$T/sbs/local-locks/check.txt" &&
    ok "local-locks: the violations name what happened" ||
    not_ok "local-locks check lines" "$(head "$T/sbs/local-locks/check.txt")"
for f in side-by-side.txt side-by-side.json enforcer/report.json \
    local-locks/report.json enforcer/check.txt local-locks/check.txt; do
    [ -s "$T/sbs/$f" ] && ok "side-by-side file $f" ||
        not_ok "side-by-side file $f" "$(ls -R "$T/sbs" | head)"
done
grep -q "coordination: LOCAL-LOCKS (for comparison only)" \
    "$T/sbs/local-locks/api1.log" &&
    ok "vsed says it runs local-locks" ||
    not_ok "local-locks banner" "$(head -5 "$T/sbs/local-locks/api1.log")"

"$VSED" --coordination bogus >"$T/o" 2>&1
rc=$?
[ "$rc" -eq 2 ] && grep -q "coordination 'bogus': it is enforcer or local-locks" "$T/o" &&
    ok "vsed --coordination bogus: exit 2" ||
    not_ok "--coordination bogus" "rc $rc" "$(cat "$T/o")"
"$VSED" --listen 127.0.0.1:0 --auth noauth --store "sqlite:$T/x.db" \
    --role volume --pool "$T/p" --coordination local-locks \
    --lock-dir /proc/vse-no-such-dir >"$T/o" 2>&1
rc=$?
[ "$rc" -eq 1 ] && grep -q "cannot create lock directory '/proc/vse-no-such-dir'" "$T/o" &&
    ok "vsed --lock-dir that cannot be made: exit 1" ||
    not_ok "--lock-dir bad" "rc $rc" "$(cat "$T/o")"
"$ROOT/bench/side-by-side.sh" --seconds x --out "$T/bad" >"$T/o" 2>&1
[ $? -eq 2 ] && ok "side-by-side.sh --seconds x: exit 2" ||
    not_ok "side-by-side usage" "$(cat "$T/o")"
finish
