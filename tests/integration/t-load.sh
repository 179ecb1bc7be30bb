#!/usr/bin/env bash
# t-load.sh - the load harness, short, on SQLite: vse-load's contention
# workload (8 clients, 8 s) through two API processes, against two volume
# managers of one host that vse-load runs itself, with faults: kill -9 of
# a manager (started again), and the pool filled so that the driver
# refuses creates and extends for a while.  No violation may be found by
# vse-load (every accepted request settles in a status its operation may
# end in, no 5xx) nor by `vsectl check --pool --stuck-after` afterwards;
# the pool-full fault must have made the driver fail.  (The stop fault
# is in t-load-pg.sh: on SQLite a process frozen inside a write
# transaction stops every writer; docs/reliability.md.)
set -u
. "$(dirname "$0")/vsed-lib.sh"
M=${VSE_TEST_TIMEOUT_MULTIPLIER:-1}
S="sqlite:$T/s.db"
POOL=$T/pool
LEASE_MS=1500
REAP_S=1
CAP=2000
OUT=$T/out

common=(--auth noauth --store "$S" --lease-ms $LEASE_MS)
start_vsed "$T/api1.log" "${common[@]}" --role api,scheduler,reaper \
    --host ctl --reaper-interval $REAP_S || { cat "$T/api1.log"; exit 1; }
API1=$URL
start_vsed "$T/api2.log" "${common[@]}" --role api --host ctl2 ||
    { cat "$T/api2.log"; exit 1; }
API2=$URL
MGR="$VSED --listen 127.0.0.1:0 ${common[*]} --role volume --host hv \
--pool $POOL --capacity-gb $CAP"

"$B/vse-load" --url "$API1" --url "$API2" --workload contention \
    --clients 8 --seconds 8 --settle-seconds $((20 * M)) --seed 7 \
    --manager "$MGR" --manager "$MGR" \
    --fault kill@2 --fault pool-full@4:1.5 --pool "$POOL" \
    --pool-fill-gb $CAP --out "$OUT" >"$T/load.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && ok "vse-load: no violation (exit 0)" ||
    not_ok "vse-load exit 0" "rc $rc" "$(tail -30 "$T/load.out")"
for f in report.json report.txt timeline.tsv faults.tsv throughput.svg \
    throughput.png latency.svg latency.png manager-1.log manager-2.log; do
    if [ -s "$OUT/$f" ]; then ok "report file $f"
    else not_ok "report file $f" "$(ls -la "$OUT")"; fi
done
py() {
    python3 -c "
import json, sys
r = json.load(open('$OUT/report.json'))
sys.exit(0 if ($1) else 1)" 2>/dev/null
}
py "r['requests'] > 0 and r['workload'] == 'contention' and
    len(r['urls']) == 2 and r['seed'] == 7" &&
    ok "report counts requests over two API servers" ||
    not_ok "report counts requests" "$(head -5 "$OUT/report.txt")"
py "all(r['operations'][o]['accepted'] > 0 for o in
        ('create_from_snapshot', 'clone', 'extend_in_use'))" &&
    ok "volumes from snapshots, clones and in-use extends were accepted" ||
    not_ok "the new operations in the mix" "$(cat "$OUT/report.txt")"
py "r['refused'] >= 1 and sum(r['refusals'].values()) >= 1" &&
    ok "conflicting requests were refused" ||
    not_ok "some refusals" "$(cat "$OUT/report.txt")"
py "r['outcomes']['accepted'] == r['accepted'] > 0 and
    r['outcomes']['settled'] == r['accepted'] and
    r['outcomes']['unresolved'] == 0" &&
    ok "every accepted request reached an outcome" ||
    not_ok "accepted requests settle" "$(cat "$OUT/report.txt")"
py "r['violations'] == [] and r['errors'] == 0" &&
    ok "report: no violations, no errors" || not_ok "report: no violations" \
    "$(cat "$OUT/report.txt")"
py "[(f['kind'], f['ok']) for f in r['faults']] ==
    [('kill', True), ('pool-full', True)] and
    r['faults'][0]['new_pid'] != r['faults'][0]['pid']" &&
    ok "faults recorded: kill (restarted), pool-full" ||
    not_ok "faults recorded" "$(grep -A5 FAULTS "$OUT/report.txt")"
py "[m['end'] for m in r['managers']] and len(r['managers'][0]['pids']) == 2" &&
    ok "the killed manager ran twice" ||
    not_ok "managers" "$(grep -A3 MANAGERS "$OUT/report.txt")"
[ "$(wc -l <"$OUT/faults.tsv")" -ge 3 ] && grep -q 'pool-full' "$OUT/plot.gp" &&
    ok "faults in faults.tsv and on the plots" ||
    not_ok "fault markers" "$(cat "$OUT/faults.tsv")"
# The filler made the driver refuse: a capacity check failed (and its op
# failed or was rescheduled) while it was there; it is gone now.
grep -q "check_capacity: failed: pool .* GiB free" "$OUT"/manager-*.log &&
    ok "pool-full: the driver failed for lack of space" ||
    not_ok "pool-full had an effect" "$(tail -5 "$OUT"/manager-*.log)"
[ ! -e "$POOL/fill-vse-load" ] && ok "pool-full: filler removed" ||
    not_ok "filler removed"

# After the lease and a reap interval nothing may still be busy: poll
# the checker until it is clean, with a deadline.
STUCK_MS=$((LEASE_MS + REAP_S * 1000 + 1000))
check_clean "$S" "hv=$POOL" "$STUCK_MS" &&
    ok "vsectl check --pool --stuck-after: 0 violations" ||
    not_ok "vsectl check --pool" "$(head -100 "$T/check")"

chk() {
    "$VSECTL" --store "$S" check \
        --pool "hv=$POOL" --stuck-after "${STUCK_MS}ms" >"$T/check" 2>&1
}
# The checker does find what it looks for: a file nobody owns, a volume
# whose file went missing, and a host whose usage and pool disagree.
read -r V VSIZE < <("$VSECTL" --store "$S" list --machine volume \
    --state available --json | python3 -c 'import json, sys
r = json.loads(sys.stdin.readline())
print(r["id"], r["attrs"]["size"])')
mv "$POOL/volume-$V" "$T/hidden"
# A size other than the hidden volume's, so that the totals differ.
truncate -s "$((VSIZE + 1))G" "$POOL/volume-squatter"
chk
[ $? -eq 1 ] &&
    grep -q "^squatter: file .* has no volume in the store" "$T/check" &&
    grep -q "^$V: .*its file .* is missing" "$T/check" &&
    grep -q "^cinder-volume@hv: host hv: the store counts [0-9]* GiB of volumes on it; the volume files in its pool .* take [0-9]* GiB" "$T/check" &&
    ok "check --pool reports a stray file, a missing one, usage (exit 1)" ||
    not_ok "check --pool finds violations" "V=$V" "$(cat "$T/check")"
# Bad --pool arguments are usage errors (exit 2), before the store.
for bad in "--pool nohost" "--pool hv=$T/nonexistent" "x --pool hv=$POOL"; do
    # shellcheck disable=SC2086
    "$VSECTL" --store "$S" check $bad >/dev/null 2>&1
    rc=$?
    [ "$rc" -eq 2 ] && ok "check $bad: exit 2" || not_ok "check $bad" "rc $rc"
done
# Bad fault specs are usage errors (exit 2) before any load.
for bad in "bogus@1" "kill@x" "kill@99" "stop@1:0" "pool-full@1" \
    "pg-restart@1"; do
    "$B/vse-load" --url "$API1" --workload contention --clients 1 \
        --seconds 5 --out "$T/bad" --fault "$bad" >"$T/bad.out" 2>&1
    rc=$?
    [ "$rc" -eq 2 ] && [ ! -e "$T/bad/report.json" ] &&
        ok "vse-load --fault $bad: exit 2" ||
        not_ok "vse-load --fault $bad" "rc $rc" "$(cat "$T/bad.out")"
done
# Only creates, each polled to available by its client (issue 15).
for bad in "--workload throughput --mix bogus" \
    "--workload contention --mix create" \
    "--workload throughput --mix create --poll-ms 0" \
    "--workload throughput --mix create --poll-ms 20000" \
    "--workload throughput --mix create --poll-ms x"; do
    # shellcheck disable=SC2086
    "$B/vse-load" --url "$API1" $bad --clients 1 --seconds 1 \
        --out "$T/bad" >"$T/bad.out" 2>&1
    rc=$?
    [ "$rc" -eq 2 ] && [ ! -e "$T/bad/report.json" ] &&
        ok "vse-load $bad: exit 2" || not_ok "vse-load $bad" "rc $rc"
done
"$B/vse-load" --url "$API1" --url "$API2" --workload throughput --mix create \
    --clients 4 --seconds 2 --settle-seconds $((20 * M)) --poll-ms 3 \
    --manager "$MGR" --out "$T/create" >"$T/create.out" 2>&1
rc=$?
python3 - "$T/create/report.json" <<'PY' && [ "$rc" = 0 ] &&
import json, sys
r = json.load(open(sys.argv[1]))
c = r["creates"]
ok = (r["mix"] == "create" and set(r["operations"]) == {"create"} and
      c["accepted"] > 0 and c["available"] == c["accepted"] and
      c["not_available"] == 0 and c["poll_ms"] == 3 and
      abs(c["accepted_per_s"] - c["accepted"] / r["elapsed_s"]) < 1e-6 and
      0 < c["create_to_available_ms"]["p50"] <= c["create_to_available_ms"]["p99"]
        <= c["create_to_available_ms"]["max"])
sys.exit(0 if ok else 1)
PY
    grep -q "^creates: [0-9]* accepted, [0-9.]*/s; [0-9]* available, create -> available p50 " "$T/create.out" &&
    ok "--mix create: every create accepted ends available; creates/s and create->available" ||
    not_ok "--mix create" "rc $rc" "$(head -12 "$T/create.out")"
finish
