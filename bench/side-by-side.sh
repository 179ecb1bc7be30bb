#!/usr/bin/env bash
# side-by-side.sh - the same load, the same faults, the same processes,
# twice: once with vse's enforcer, once with --coordination local-locks
# (per-host file locks around the manager functions and Cinder-style
# status reads: the approach vse replaces).  Each run: a fresh SQLite
# store, two API processes (the first also the scheduler and, with the
# enforcer, the reaper), two volume managers serving one host "hv" from
# one pool with a lock directory each (two nodes of an active-active
# cluster), all driven by vse-load's contention workload, which starts
# the managers itself so that it can kill and stop them.  Then `vsectl
# check --pool --stuck-after` on the quiet store.
#
# Writes OUT/enforcer/ and OUT/local-locks/ (vse-load's report, the
# logs, check.txt) and OUT/side-by-side.txt and .json; prints the table.
# Exit 0 when the enforcer run has no violation at all, 1 otherwise, 2
# on a usage error.  docs/reliability.md shows a run.
set -u
usage() {
    cat <<'EOF'
Usage: bench/side-by-side.sh --out DIR [--build DIR] [--seconds S]
           [--clients N] [--seed N] [--lease-ms MS] [--fault SPEC]...
           [--store sqlite|postgresql]

Run vse-load's contention workload against vsed twice, with the enforcer
and with --coordination local-locks, and compare what each left behind.

  --out DIR       where the runs and the comparison go (created)
  --build DIR     the build to run (default build)
  --seconds S     load phase of each run (default 20)
  --clients N     vse-load clients (default 8)
  --seed N        vse-load's random seed, the same for both runs
                  (default: the time)
  --lease-ms MS   managers' lease (default 1500); the reaper runs every
                  second, and a volume busy for longer than lease + 2 s
                  is reported stuck
  --fault SPEC    a vse-load fault (repeatable; see vse-load --help);
                  default: kill@S/4, and with PostgreSQL also stop@S/2
                  for lease + 2.5 s and pg-restart@3S/4
  --store KIND    sqlite (default: a file per run) or postgresql (a
                  throwaway server, tests/pg.sh, a database per run).
                  On SQLite a process stopped inside a write transaction
                  stops every writer, so the stop fault belongs with
                  PostgreSQL (docs/reliability.md)
EOF
}
B=build OUT= S=20 N=8 SEED=$(date +%s) LEASE=1500 KIND=sqlite
FAULTS=()
while [ $# -gt 0 ]; do
    case $1 in
    --out) OUT=${2:?}; shift 2 ;;
    --build) B=${2:?}; shift 2 ;;
    --seconds) S=${2:?}; shift 2 ;;
    --clients) N=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --lease-ms) LEASE=${2:?}; shift 2 ;;
    --fault) FAULTS+=(--fault "${2:?}"); shift 2 ;;
    --store) KIND=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "side-by-side.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
[ -n "$OUT" ] || { usage >&2; exit 2; }
for n in "$S" "$N" "$SEED" "$LEASE"; do
    case $n in ''|*[!0-9]*) echo "side-by-side.sh: '$n' is not a number" >&2
        exit 2 ;; esac
done
for f in vsed vsectl vse-load; do
    [ -x "$B/$f" ] || { echo "side-by-side.sh: no $B/$f (make first)" >&2
        exit 2; }
done
case $KIND in sqlite|postgresql) ;; *)
    echo "side-by-side.sh: --store is sqlite or postgresql" >&2; exit 2 ;;
esac
if [ ${#FAULTS[@]} -eq 0 ]; then
    FAULTS=(--fault "kill@$(awk "BEGIN{print $S/4}")")
    [ "$KIND" = postgresql ] && FAULTS+=(
        --fault "stop@$(awk "BEGIN{print $S/2}"):$(awk "BEGIN{print $LEASE/1000+2.5}")"
        --fault "pg-restart@$(awk "BEGIN{print $S*3/4}")")
fi
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
STUCK_MS=$((LEASE + 2000))
PIDS=()
stop_all() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    if [ "$KIND" = postgresql ]; then
        PG_PID=$(head -1 "$PG_DATA/postmaster.pid" 2>/dev/null)
        pg_cleanup
    fi
}
PGARGS=()
if [ "$KIND" = postgresql ]; then
    . "$(dirname "$0")/../tests/pg.sh"
    pg_start || exit 1
    CTL="$PG_BIN/pg_ctl -D $PG_DATA -l $PG_DIR/log -w -t 60"
    [ "$(id -u)" -eq 0 ] && CTL="runuser -u postgres -- $CTL"
    PGARGS=(--pg-restart "$CTL -m immediate restart")
fi
trap stop_all EXIT

. "$(dirname "$0")/vsed-start.sh"

run() {
    local mode=$1 d=$OUT/$1 store common
    rm -rf "$d"
    mkdir -p "$d/pool"
    store=sqlite:$d/store.db
    if [ "$KIND" = postgresql ]; then
        local db=vse_${mode//-/_}
        pg_psql -c "CREATE DATABASE $db" || exit 1
        store=${VSE_PG_URL%/vse}/$db
    fi
    common=(--auth noauth --store "$store" --lease-ms "$LEASE"
            --coordination "$mode")
    PIDS=()
    start "$d/api1.log" "${common[@]}" --role api,scheduler,reaper \
        --host api1 --reaper-interval 1 --lock-dir "$d/locks-api1"
    local u1=$URL
    start "$d/api2.log" "${common[@]}" --role api --host api2 \
        --lock-dir "$d/locks-api2"
    local u2=$URL
    local mgr="$B/vsed --listen 127.0.0.1:0 ${common[*]} --role volume"
    mgr="$mgr --host hv --pool $d/pool --capacity-gb 100000"
    "$B/vse-load" --url "$u1" --url "$u2" --workload contention \
        --clients "$N" --seconds "$S" --seed "$SEED" --settle-seconds 30 \
        --manager "$mgr --lock-dir $d/locks-node1" \
        --manager "$mgr --lock-dir $d/locks-node2" \
        "${FAULTS[@]}" "${PGARGS[@]}" --out "$d" >"$d/vse-load.out" 2>&1
    echo "$?" >"$d/vse-load.rc"
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
    PIDS=()
    "$B/vsectl" --store "$store" check --pool "hv=$d/pool" \
        --stuck-after "${STUCK_MS}ms" >"$d/check.txt" 2>&1
    echo "$?" >"$d/check.rc"
}

echo "side-by-side: $KIND, $S s of contention, $N clients, seed $SEED," \
     "faults: ${FAULTS[*]}"
run enforcer
run local-locks
python3 - "$OUT" "$S" "$N" "$SEED" "${FAULTS[*]}" "$KIND" <<'PY'
import json, re, sys

out, secs, clients, seed, faults, kind = sys.argv[1:7]
modes = ["enforcer", "local-locks"]

def classify(line):
    if re.search(r"operations overlap|: version \d+: ", line):
        return "history"
    if re.search(r" busy in .* since ", line):
        return "stuck"
    return "pool"

res = {}
for m in modes:
    d = f"{out}/{m}"
    r = json.load(open(f"{d}/report.json"))
    lines = [l.rstrip("\n") for l in open(f"{d}/check.txt")
             if not l.startswith("check:")]
    checks = {"history": [], "pool": [], "stuck": []}
    for l in lines:
        checks[classify(l)].append(l)
    res[m] = {
        "requests": r["requests"], "accepted": r["accepted"],
        "refused": r["refused"], "errors": r.get("errors", 0),
        "faults": len(r.get("faults", [])),
        "load_violations": r["violations"],
        "check_rc": int(open(f"{d}/check.rc").read()),
        "check": {k: len(v) for k, v in checks.items()},
        "check_examples": {k: v[:3] for k, v in checks.items()},
    }
rows = [("requests", lambda x: x["requests"]),
        ("accepted (202/200)", lambda x: x["accepted"]),
        ("refused at once", lambda x: x["refused"]),
        ("faults injected", lambda x: x["faults"]),
        ("vse-load violations", lambda x: sum(v["count"] for v in
                                              x["load_violations"])),
        ("check: bad history", lambda x: x["check"]["history"]),
        ("check: pool/usage", lambda x: x["check"]["pool"]),
        ("check: stuck busy", lambda x: x["check"]["stuck"])]
txt = [f"side by side on {kind}: contention, {clients} clients, {secs} s, "
       f"seed {seed}",
       f"faults: {faults}", "",
       f"{'':24}{'enforcer':>12}{'local-locks':>14}"]
for name, f in rows:
    txt.append(f"{name:24}{f(res['enforcer']):>12}{f(res['local-locks']):>14}")
for m in modes:
    ex = [f'{v["kind"]}: {v["message"]}' for v in res[m]["load_violations"][:3]]
    for k in ("history", "pool", "stuck"):
        ex += res[m]["check_examples"][k][:2]
    if ex:
        txt += ["", f"{m}: first violations"] + ["  " + e[:200] for e in ex]
txt.append("")
open(f"{out}/side-by-side.txt", "w").write("\n".join(txt) + "\n")
json.dump({"store": kind, "seconds": float(secs), "clients": int(clients), "seed": int(seed),
           "faults": faults, "runs": res},
          open(f"{out}/side-by-side.json", "w"), indent=2)
print("\n".join(txt))
e = res["enforcer"]
sys.exit(0 if not e["load_violations"] and e["check_rc"] == 0 else 1)
PY
