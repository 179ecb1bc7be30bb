#!/usr/bin/env bash
# t-vsed-hosts-pg.sh - the volume service across hosts on one PostgreSQL
# store (issue 6): 2 API processes, 1 scheduler (+ reaper), 3 volume
# managers with their own pools and capacities.  200 volumes are created
# at once through both APIs; all must end available with exactly one file
# each, on the host the store names, no pool over its capacity, each
# chosen by most free capacity; `cinder service-list` shows every service
# with its heartbeat.
set -u
. "$(dirname "$0")/vsed-lib.sh"
. "$(dirname "$0")/../pg.sh"
pg_start || exit 1
trap 'cleanup; pg_cleanup' EXIT
M=${VSE_TEST_TIMEOUT_MULTIPLIER:-1}
N=200

common=(--auth noauth --store "$VSE_PG_URL" --reaper-interval 1)
declare -A CAP=([ha]=120 [hb]=150 [hc]=180)
for h in ha hb hc; do
    start_vsed "$T/$h.log" "${common[@]}" --role volume --host "$h" \
        --pool "$T/pool-$h" --capacity-gb "${CAP[$h]}" ||
        { cat "$T/$h.log"; exit 1; }
done
start_vsed "$T/sched.log" "${common[@]}" --role scheduler,reaper \
    --host sched1 || { cat "$T/sched.log"; exit 1; }
start_vsed "$T/api1.log" "${common[@]}" --role api --host api1 ||
    { cat "$T/api1.log"; exit 1; }
API1=$URL
start_vsed "$T/api2.log" "${common[@]}" --role api --host api2 ||
    { cat "$T/api2.log"; exit 1; }
API2=$URL

# 200 creates from 16 threads, alternating between the two API processes;
# then poll (deadline) until none is creating; then check the pools.
python3 - "$API1" "$API2" "$N" "$T" "$M" <<'PY' && ok "200 volumes" || not_ok "200 volumes"
import json, os, sys, time, urllib.request, random
from concurrent.futures import ThreadPoolExecutor
api1, api2, n, tmp, mult = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
caps = {"ha": 120, "hb": 150, "hc": 180}
H = {"X-Auth-Token": "u1:p1", "OpenStack-API-Version": "volume 3.70",
     "Content-Type": "application/json"}
def call(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method, headers=H,
        data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read() or b"{}")
random.seed(6)
sizes = [random.choice([1, 2]) for _ in range(n)]
def create(i):
    st, j = call(api1 if i % 2 else api2, "POST", "/v3/volumes",
                 {"volume": {"size": sizes[i], "name": "bulk-%d" % i}})
    assert st == 202 and j["volume"]["status"] == "creating", (st, j)
    return j["volume"]["id"]
t0 = time.time()
with ThreadPoolExecutor(16) as ex:
    ids = list(ex.map(create, range(n)))
accepted = time.time() - t0
deadline = time.time() + 90 * mult
while True:
    st, j = call(api1, "GET", "/v3/volumes/detail")
    vols = {v["id"]: v for v in j["volumes"] if v["id"] in ids}
    busy = [v for v in vols.values() if v["status"] == "creating"]
    if not busy or time.time() > deadline:
        break
    time.sleep(0.1)
done = time.time() - t0
bad = [v for v in vols.values() if v["status"] != "available"]
print("accepted %d creates in %.2fs; all settled in %.2fs" % (n, accepted, done))
assert len(vols) == n and not bad, [(v["id"], v["status"]) for v in bad][:5]
used = {h: 0 for h in caps}
files = {}
for h in caps:
    for f in os.listdir(os.path.join(tmp, "pool-" + h)):
        files.setdefault(f, []).append(h)
for i, vid in enumerate(ids):
    h = vols[vid]["os-vol-host-attr:host"]
    where = files.get("volume-" + vid, [])
    assert where == [h], (vid, h, where)
    assert os.path.getsize(os.path.join(tmp, "pool-" + h, "volume-" + vid)) == sizes[i] << 30
    used[h] += sizes[i]
assert len(files) == n, "%d files for %d volumes: %s" % (len(files), n,
    [f for f in files if not f.startswith("volume-")][:5])
for h in caps:
    assert used[h] <= caps[h], (h, used[h], caps[h])
print("GiB used per host:", used, "of", caps)
# Most free first: the spread follows capacity.
assert used["hc"] >= used["hb"] >= used["ha"] - 2, used
PY

out=$(cinder --os-auth-type noauth --os-user-id u1 --os-project-id p1 \
    --os-endpoint "$API2/v3" service-list 2>&1)
for s in "cinder-api *| api1" "cinder-api *| api2" \
    "cinder-scheduler *| sched1" "vse-reaper *| sched1" \
    "cinder-volume *| ha" "cinder-volume *| hb" "cinder-volume *| hc"; do
    grep -q "$s .*| up *| 20[0-9-]*T" <<<"$out" && ok "service-list: $s up" ||
        not_ok "service-list: $s up" "$out"
done
# Every process stops cleanly (its services show down at once); then the
# whole store is checked at rest.
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
rc=0
for p in "${PIDS[@]}"; do wait "$p" || rc=$?; done
[ "$rc" = 0 ] && ok "every vsed stopped cleanly" || not_ok "clean stop" "rc $rc"
PIDS=()
"$VSECTL" check --store "$VSE_PG_URL" \
    >"$T/check.out" 2>&1 &&
    ok "vsectl check: every history a valid path" ||
    not_ok "vsectl check" "$(tail -5 "$T/check.out")"

# With the store gone, a stop does not wait out reconnect budgets (10 s
# per call: a minute in all, before vsed_stores_interrupt()).
start_vsed "$T/last.log" "${common[@]}" --role api,scheduler,volume \
    --host hz --pool "$T/pool-hz" || { cat "$T/last.log"; exit 1; }
pg_crash
t0=$(date +%s%N)
stop_vsed
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$STOP_RC" = 0 ] && [ "$ms" -lt 5000 ] &&
    ok "SIGTERM with the store down: stopped in $ms ms" ||
    not_ok "stop with the store down" "rc $STOP_RC after $ms ms" \
    "$(tail -5 "$T/last.log")"
PIDS=()
finish
