#!/usr/bin/env bash
# t-vsed-zk.sh - the volume service across hosts on a three-member
# ZooKeeper ensemble (issue 11): 2 API processes, 1 scheduler, 3 volume
# managers with their own pools and capacities, 1 reaper.  200 volumes are
# created at once through both APIs and the ensemble's leader is killed
# (kill -9) in the middle.  Every create is accepted the first time (the
# store settles a transition whose answer was lost rather than answering
# 503 "outcome unknown"); there is exactly one volume per name, every
# volume ends available with exactly one file, on the host the store
# names, and `vsectl check --pool` finds the store and the pools in
# agreement.
set -u
. "$(dirname "$0")/vsed-lib.sh"
. "$(dirname "$0")/../zk.sh"
zk_ensemble_start 3 || exit 1
client=
trap '[ -n "$client" ] && kill "$client" 2>/dev/null; cleanup; zk_cleanup' EXIT
M=${VSE_TEST_TIMEOUT_MULTIPLIER:-1}
N=200

common=(--auth noauth --store "$VSE_ZK_URL" --reaper-interval 1)
declare -A CAP=([ha]=120 [hb]=150 [hc]=180)
for h in ha hb hc; do
    start_vsed "$T/$h.log" "${common[@]}" --role volume --host "$h" \
        --pool "$T/pool-$h" --capacity-gb "${CAP[$h]}" ||
        { cat "$T/$h.log"; exit 1; }
done
start_vsed "$T/sched.log" "${common[@]}" --role scheduler --host sched1 ||
    { cat "$T/sched.log"; exit 1; }
start_vsed "$T/reaper.log" "${common[@]}" --role reaper --host reaper1 ||
    { cat "$T/reaper.log"; exit 1; }
start_vsed "$T/api1.log" "${common[@]}" --role api --host api1 ||
    { cat "$T/api1.log"; exit 1; }
API1=$URL
start_vsed "$T/api2.log" "${common[@]}" --role api --host api2 ||
    { cat "$T/api2.log"; exit 1; }
API2=$URL

# 200 creates from 16 threads, alternating between the two API processes;
# the client counts accepted creates in $T/accepted so that the leader
# can be killed half-way; then it polls (deadline) until none is creating.
python3 - "$API1" "$API2" "$N" "$T" "$M" >"$T/client.out" 2>&1 <<'PY' &
import json, os, sys, time, urllib.error, urllib.request, random, threading
from concurrent.futures import ThreadPoolExecutor
api1, api2, n, tmp, mult = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
caps = {"ha": 120, "hb": 150, "hc": 180}
H = {"X-Auth-Token": "u1:p1", "OpenStack-API-Version": "volume 3.70",
     "Content-Type": "application/json"}
def call(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method, headers=H,
        data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        print("%s %s: %d %s" % (method, path, e.code, e.read().decode()),
              file=sys.stderr)
        raise
random.seed(11)
sizes = [random.choice([1, 2]) for _ in range(n)]
lock = threading.Lock()
accepted = [0]
def create(i):
    # No create may answer 503: a multi whose answer the leader's death
    # lost is settled by the store (retrying within its reconnect
    # budget), not reported as "outcome unknown".
    base, name = (api1 if i % 2 else api2), "bulk-%d" % i
    st, j = call(base, "POST", "/v3/volumes",
                 {"volume": {"size": sizes[i], "name": name}})
    assert st == 202 and j["volume"]["status"] == "creating", (st, j)
    with lock:
        accepted[0] += 1
        with open(os.path.join(tmp, "accepted.tmp"), "w") as f:
            f.write("%d\n" % accepted[0])
        os.replace(os.path.join(tmp, "accepted.tmp"),
                   os.path.join(tmp, "accepted"))
    return j["volume"]["id"]
t0 = time.time()
with ThreadPoolExecutor(16) as ex:
    ids = list(ex.map(create, range(n)))
took = time.time() - t0
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
print("accepted %d creates in %.2fs, each the first time; all settled in "
      "%.2fs" % (n, took, done))
# One volume per name: no create was applied twice.
st, j = call(api1, "GET", "/v3/volumes/detail")
dups = {}
for v in j["volumes"]:
    dups.setdefault(v["name"], []).append(v["id"])
dups = {k: v for k, v in dups.items() if len(v) > 1}
assert not dups, dups
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
PY
client=$!

# Half the creates accepted: kill the leader.
end=$((SECONDS + 60 * M))
while [ "$(cat "$T/accepted" 2>/dev/null || echo 0)" -lt $((N / 2)) ]; do
    if ! kill -0 "$client" 2>/dev/null || [ $SECONDS -ge $end ]; then
        break
    fi
    sleep 0.02
done
at=$(cat "$T/accepted" 2>/dev/null || echo 0)
leader=$(zk_leader) && zk_kill "$leader"
if [ -n "${leader:-}" ] && [ "$at" -lt "$N" ]; then
    ok "ZooKeeper leader (member $leader) killed after $at of $N creates"
else
    not_ok "leader killed in the middle" "leader '${leader:-}', $at creates"
fi
if new=$(zk_wait_leader $((60 * M))) && [ "$new" != "$leader" ]; then
    ok "member $new leads now"
else
    # Seen in CI (2026-12-06, quiet machine): the two members left
    # elected nobody for over a minute.  Their own account of the
    # election, for whoever meets it next.
    not_ok "a new leader" "${new:-none} after $((60 * M)) s" \
        "$(for i in 1 2 3; do
            [ "$i" = "$leader" ] && continue
            echo "member $i:"
            grep -E "LOOKING|LEADING|FOLLOWING|Notification|WARN|ERROR" \
                "$ZK_DIR/$i/log" | tail -n 12
        done)"
fi

rc=0
wait "$client" || rc=$?
client=
if [ "$rc" -eq 0 ]; then
    ok "200 volumes: all available, one file each, on the host named"
else
    not_ok "200 volumes" "$(tail -5 "$T/client.out")"
fi
cat "$T/client.out"

"$VSECTL" check --store "$VSE_ZK_URL" --pool "ha=$T/pool-ha" \
    --pool "hb=$T/pool-hb" --pool "hc=$T/pool-hc" >"$T/check.out" 2>&1 &&
    ok "vsectl check --pool: the store and the pools agree" ||
    not_ok "vsectl check --pool" "$(tail -5 "$T/check.out")"

# Every process stops cleanly with one member still down.
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
rc=0
for p in "${PIDS[@]}"; do wait "$p" || rc=$?; done
[ "$rc" = 0 ] && ok "every vsed stopped cleanly" || not_ok "clean stop" "rc $rc"
PIDS=()
finish
