#!/usr/bin/env bash
# load-run.sh - one full vse-load run with faults on SQLite, as recorded
# in docs/benchmarks.md and docs/reliability.md: two API servers (the
# first also scheduler and reaper, every second), two managers of one
# host run by vse-load (pool capacity 2,000 GiB, lease 1.5 s), 8 clients,
# faults kill@S/4, pool-full@5S/12 for S/12, kill@7S/12; then `vsectl
# check --pool --stuck-after` on the quiet store.  Exit 0 when neither
# vse-load nor the check found a violation.
set -u
usage() {
    cat <<'EOF'
Usage: bench/load-run.sh --out DIR [--build DIR] [--workload W]
           [--seconds S] [--clients N] [--seed N]

  --out DIR       where everything goes, new or empty: the store, the
                  pool, the logs, vse-load's report in DIR/out, check.txt
  --build DIR     the build to run (default build)
  --workload W    contention (default) or throughput
  --seconds S     load phase (default 60)
  --clients N     vse-load clients (default 8)
  --seed N        vse-load's random seed (default 60)
EOF
}
B=build D= W=contention S=60 N=8 SEED=60
while [ $# -gt 0 ]; do
    case $1 in
    --out) D=${2:?}; shift 2 ;;
    --build) B=${2:?}; shift 2 ;;
    --workload) W=${2:?}; shift 2 ;;
    --seconds) S=${2:?}; shift 2 ;;
    --clients) N=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "load-run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
[ -n "$D" ] || { usage >&2; exit 2; }
for n in "$S" "$N" "$SEED"; do
    case $n in ''|*[!0-9]*) echo "load-run.sh: '$n' is not a number" >&2
        exit 2 ;; esac
done
[ "$S" -ge 12 ] || { echo "load-run.sh: --seconds must be 12 or more" >&2
    exit 2; }
for f in vsed vsectl vse-load; do
    [ -x "$B/$f" ] || { echo "load-run.sh: no $B/$f (make first)" >&2
        exit 2; }
done
if [ -e "$D" ] && [ -n "$(ls -A "$D")" ]; then
    echo "load-run.sh: '$D' is not empty: a run starts from a new store" \
         "and an empty pool" >&2
    exit 2
fi
mkdir -p "$D/pool" || exit 2
D=$(cd "$D" && pwd)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done' EXIT

. "$(dirname "$0")/vsed-start.sh"

C=(--auth noauth --store "sqlite:$D/s.db" --lease-ms 1500)
start "$D/api1.log" "${C[@]}" --role api,scheduler,reaper --host api1 \
    --reaper-interval 1
U1=$URL
start "$D/api2.log" "${C[@]}" --role api --host api2
U2=$URL
M="$B/vsed --listen 127.0.0.1:0 ${C[*]} --role volume --host hv"
M="$M --pool $D/pool --capacity-gb 2000"
at() { awk "BEGIN{print $S*$1}"; }
"$B/vse-load" --url "$U1" --url "$U2" --workload "$W" --clients "$N" \
    --seconds "$S" --seed "$SEED" --manager "$M" --manager "$M" \
    --fault "kill@$(at 0.25)" --fault "pool-full@$(at 5/12):$(at 1/12)" \
    --fault "kill@$(at 7/12)" --pool "$D/pool" --pool-fill-gb 2000 \
    --out "$D/out"
rc=$?
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
wait 2>/dev/null
PIDS=()
"$B/vsectl" --store "sqlite:$D/s.db" check --pool "hv=$D/pool" \
    --stuck-after 3500ms | tee "$D/check.txt"
crc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] && [ "$crc" -eq 0 ]
