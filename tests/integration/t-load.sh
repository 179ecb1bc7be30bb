#!/usr/bin/env bash
# t-load.sh - the load harness, short: vse-load's contention workload (8
# clients, 8 s) against an API+scheduler+reaper vsed and a separate
# volume-role vsed on one SQLite store.  Mid-run the volume role is
# killed with SIGKILL and started again.  Every accepted request must
# settle, some requests must be refused, and `vsectl check --pool
# --stuck-after` must find no violation once the load has stopped.
set -u
. "$(dirname "$0")/vsed-lib.sh"
M=${VSE_TEST_TIMEOUT_MULTIPLIER:-1}
S="sqlite:$T/s.db"
POOL=$T/pool
LEASE_MS=1500
REAP_S=1
OUT=$T/out

start_vsed "$T/ctl.log" --auth noauth --store "$S" --role api,scheduler,reaper \
    --host ctl --reaper-interval $REAP_S --lease-ms $LEASE_MS ||
    { cat "$T/ctl.log"; exit 1; }
API=$URL
vol() {
    start_vsed "$T/vol$1.log" --auth noauth --store "$S" --role volume \
        --host hv --pool "$POOL" --capacity-gb 100000 --lease-ms $LEASE_MS ||
        { cat "$T/vol$1.log"; exit 1; }
    VOL=$PID
    URL=$API
}
vol 1

"$B/vse-load" --url "$API" --workload contention --clients 8 --seconds 8 \
    --settle-seconds $((20 * M)) --out "$OUT" >"$T/load.out" 2>&1 &
LOAD=$!
PIDS+=("$LOAD")

# The fault: once the manager has made volumes and holds a step (a
# driver op it claimed), kill it and start another.
made() {
    [ "$(find "$POOL" -name 'volume-*' 2>/dev/null | wc -l)" -ge 2 ] &&
        "$VSECTL" --store "$S" list --busy --json 2>/dev/null |
        grep -q '"owner":"volume@'
}
end=$((SECONDS + 6 * M))
until made; do
    [ $SECONDS -lt $end ] || break
    sleep 0.05
done
if made && kill -0 "$LOAD" 2>/dev/null; then
    kill -KILL "$VOL"
    held=$("$VSECTL" --store "$S" list --busy --json |
        grep -c "\"owner\":\"volume@hv:$VOL\"")
    ok "volume role killed mid-run (kill -9), holding $held op(s)"
    vol 2
    ok "volume role started again"
else
    not_ok "volume role killed mid-run" "$(ls "$POOL" 2>&1)" \
        "$(tail -5 "$T/load.out")"
fi

wait "$LOAD"
rc=$?
[ "$rc" -eq 0 ] && ok "vse-load: every accepted request settled (exit 0)" ||
    not_ok "vse-load exit 0" "rc $rc" "$(tail -30 "$T/load.out")"
for f in report.json report.txt timeline.tsv throughput.svg throughput.png \
    latency.svg latency.png; do
    if [ -s "$OUT/$f" ]; then ok "report file $f"
    else not_ok "report file $f" "$(ls -la "$OUT")"; fi
done
py() {
    python3 -c "
import json, sys
r = json.load(open('$OUT/report.json'))
sys.exit(0 if ($1) else 1)" 2>/dev/null
}
py "r['requests'] > 0 and r['workload'] == 'contention'" &&
    ok "report counts requests" || not_ok "report counts requests" \
    "$(head -3 "$OUT/report.txt")"
py "r['refused'] >= 1 and sum(r['refusals'].values()) >= 1" &&
    ok "conflicting requests were refused" ||
    not_ok "some refusals" "$(cat "$OUT/report.txt")"
py "r['outcomes']['accepted'] == r['accepted'] > 0 and
    r['outcomes']['settled'] == r['accepted'] and
    r['outcomes']['unresolved'] == 0" &&
    ok "every accepted request reached an outcome" ||
    not_ok "accepted requests settle" "$(cat "$OUT/report.txt")"
py "r['violations'] == [] and r['faults'] == []" &&
    ok "report: no violations" || not_ok "report: no violations" \
    "$(cat "$OUT/report.txt")"
py "all(k in r['operations']['extend'] for k in ('p50_ms', 'p99_ms'))" &&
    ok "latency percentiles per operation" ||
    not_ok "percentiles" "$(cat "$OUT/report.json")"

# After the lease and a reap interval nothing may still be busy: poll
# the checker until it is clean, with a deadline.
STUCK_MS=$((LEASE_MS + REAP_S * 1000 + 1000))
chk() {
    "$VSECTL" --store "$S" check \
        --pool "hv=$POOL" --stuck-after "${STUCK_MS}ms" >"$T/check" 2>&1
}
end=$((SECONDS + 20 * M))
until chk; do
    [ $SECONDS -lt $end ] || break
    sleep 0.2
done
chk && ok "vsectl check --pool --stuck-after: 0 violations" ||
    not_ok "vsectl check --pool" "$(tail -20 "$T/check")"

# The checker does find what it looks for: a file nobody owns, and a
# volume whose file went missing.
truncate -s 1G "$POOL/volume-squatter"
V=$("$VSECTL" --store "$S" list --machine volume --state available --json |
    python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])')
mv "$POOL/volume-$V" "$T/hidden"
chk
[ $? -eq 1 ] &&
    grep -q "^squatter: file .* has no volume in the store" "$T/check" &&
    grep -q "^$V: .*its file .* is missing" "$T/check" &&
    ok "check --pool reports a stray file and a missing one (exit 1)" ||
    not_ok "check --pool finds violations" "V=$V" "$(cat "$T/check")"
# Bad --pool arguments are usage errors (exit 2), before the store.
for bad in "--pool nohost" "--pool hv=$T/nonexistent" "x --pool hv=$POOL"; do
    # shellcheck disable=SC2086
    "$VSECTL" --store "$S" check $bad >/dev/null 2>&1
    rc=$?
    [ "$rc" -eq 2 ] && ok "check $bad: exit 2" || not_ok "check $bad" "rc $rc"
done
finish
