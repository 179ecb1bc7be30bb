#!/usr/bin/env bash
# create-curve.sh - issue 15's measure against the number of clients:
# vse-load's create-only throughput workload (each client creates a 1 GiB
# volume, polls it to `available`, and goes on) at 1, 4, 16 and 64
# clients, each on a fresh store, and a plot of accepted creates/s and
# create -> available latency (p50, p99) against clients.
#
# SQLite: one vsed with every role, as `make run` starts it (--all-in-one).
# PostgreSQL: a throwaway server (tests/pg.sh), one vsed with the API,
# scheduler and reaper roles and --hosts volume hosts, each a vsed of its
# own with its own pool: the shape of a small real deployment.
#
# Writes OUT/N/ (vse-load's report per client count, the logs),
# OUT/curve.tsv, OUT/curve.txt and OUT/curve.svg/.png; prints the table.
# Exit 0 when every run's creates all ended available, 1 otherwise, 2 on
# a usage error.  docs/benchmarks.md shows a run.
set -u
usage() {
    cat <<'EOF'
Usage: bench/create-curve.sh --out DIR [--build DIR] [--seconds S]
           [--clients "N..."] [--store sqlite|postgresql] [--hosts N]
           [--volume-workers N] [--poll-ms MS] [--group-commit on|off]

Measure accepted creates/s and create -> available latency against the
number of clients, each count on a fresh store.

  --out DIR           where the runs, the table and the plot go (created)
  --build DIR         the build to run (default build)
  --seconds S         load phase of each run (default 8)
  --clients "N..."    the client counts (default "1 4 16 64")
  --store KIND        sqlite (default: one all-in-one vsed, as make run)
                      or postgresql (a throwaway server; an API vsed and
                      --hosts volume hosts)
  --hosts N           volume hosts with --store postgresql (default 3)
  --volume-workers N  passed to every volume role (default: 4 on sqlite, as
                      make run's etc/vsed-dev.yaml; 1 per host on postgresql,
                      where 4 did no better: docs/benchmarks.md)
  --poll-ms MS        vse-load's interval between two polls of a create
                      (default 2): every poll is a GET the server answers,
                      so at 64 clients a 2 ms poll is most of the load
  --group-commit on|off
                      the store's group commit (default on, as the
                      store's own default)
EOF
}
B=build OUT= S=8 COUNTS="1 4 16 64" KIND=sqlite HOSTS=3 WORKERS= POLL=2
GC=on
while [ $# -gt 0 ]; do
    case $1 in
    --out) OUT=${2:?}; shift 2 ;;
    --build) B=${2:?}; shift 2 ;;
    --seconds) S=${2:?}; shift 2 ;;
    --clients) COUNTS=${2:?}; shift 2 ;;
    --store) KIND=${2:?}; shift 2 ;;
    --hosts) HOSTS=${2:?}; shift 2 ;;
    --volume-workers) WORKERS=${2:?}; shift 2 ;;
    --poll-ms) POLL=${2:?}; shift 2 ;;
    --group-commit) GC=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "create-curve.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
[ -n "$OUT" ] || { usage >&2; exit 2; }
[ -n "$WORKERS" ] || { [ "$KIND" = postgresql ] && WORKERS=1 || WORKERS=4; }
for n in "$S" "$HOSTS" "$WORKERS" $COUNTS; do
    case $n in ''|*[!0-9]*|0) echo "create-curve.sh: '$n' is not a" \
        "positive number" >&2; exit 2 ;; esac
done
case $POLL in ''|*[!0-9.]*|*.*.*) echo "create-curve.sh: --poll-ms '$POLL'" \
    "is not a number" >&2; exit 2 ;; esac
for f in vsed vse-load; do
    [ -x "$B/$f" ] || { echo "create-curve.sh: no $B/$f (make first)" >&2
        exit 2; }
done
case $GC in on|off) ;; *)
    echo "create-curve.sh: --group-commit is on or off" >&2; exit 2 ;;
esac
case $KIND in sqlite|postgresql) ;; *)
    echo "create-curve.sh: --store is sqlite or postgresql" >&2; exit 2 ;;
esac
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
PIDS=()
stop_all() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    [ "$KIND" = postgresql ] && pg_cleanup
}
if [ "$KIND" = postgresql ]; then
    . "$(dirname "$0")/../tests/pg.sh"
    pg_start || exit 1
fi
trap stop_all EXIT
. "$(dirname "$0")/vsed-start.sh"

run() {
    local n=$1 d=$OUT/$1 store
    rm -rf "$d"
    mkdir -p "$d"
    PIDS=()
    if [ "$KIND" = sqlite ]; then
        mkdir -p "$d/pool"
        store="sqlite:$d/store.db?group_commit=$GC"
        start "$d/vsed.log" --all-in-one --auth noauth --store "$store" \
            --host h1 --pool "$d/pool" --capacity-gb 10000000 \
            --volume-workers "$WORKERS"
    else
        pg_psql -c "CREATE DATABASE curve_$n" >/dev/null || exit 1
        store="${VSE_PG_URL%/vse}/curve_$n?group_commit=$GC"
        start "$d/api.log" --auth noauth --store "$store" \
            --role api,scheduler,reaper --host ctl
        local api=$URL
        for h in $(seq 1 "$HOSTS"); do
            mkdir -p "$d/pool-h$h"
            start "$d/h$h.log" --auth noauth --store "$store" --role volume \
                --host "h$h" --pool "$d/pool-h$h" --capacity-gb 10000000 \
                --volume-workers "$WORKERS"
        done
        URL=$api
    fi
    "$B/vse-load" --url "$URL" --workload throughput --mix create \
        --clients "$n" --seconds "$S" --poll-ms "$POLL" --out "$d" \
        >"$d/vse-load.out" 2>&1
    echo "$?" >"$d/vse-load.rc"
    [ -s "$d/report.json" ] || {
        echo "create-curve.sh: vse-load wrote no report:" >&2
        tail -5 "$d/vse-load.out" >&2
        exit 1
    }
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
    done
    PIDS=()
}

desc="$KIND"
[ "$KIND" = postgresql ] && desc="$KIND, $HOSTS volume hosts"
desc="$desc, polled every $POLL ms"
echo "create-curve: $desc, $S s per run, clients: $COUNTS," \
     "volume workers: $WORKERS"
for n in $COUNTS; do run "$n"; done
python3 - "$OUT" "$desc" $COUNTS <<'PY'
import json, sys

out, desc, counts = sys.argv[1], sys.argv[2], sys.argv[3:]
rows, bad = [], 0
for n in counts:
    c = json.load(open(f"{out}/{n}/report.json"))["creates"]
    lat = c["create_to_available_ms"]
    rows.append((int(n), c["accepted_per_s"], lat["p50"], lat["p99"],
                 lat["max"], c["accepted"], c["not_available"]))
    bad += c["not_available"]
with open(f"{out}/curve.tsv", "w") as f:
    f.write("clients\tcreates_per_s\tp50_ms\tp99_ms\tmax_ms\taccepted\t"
            "not_available\n")
    for r in rows:
        f.write("%d\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\n" % r)
txt = [f"creates only ({desc}): accepted creates/s and create -> available",
       "",
       "clients  creates/s   p50 ms   p99 ms   max ms  accepted  not available"]
txt += ["%7d  %9.1f  %7.1f  %7.1f  %7.1f  %8d  %13d" % r for r in rows]
open(f"{out}/curve.txt", "w").write("\n".join(txt) + "\n")
print("\n".join(txt))
sys.exit(1 if bad else 0)
PY
rc=$?
if command -v gnuplot >/dev/null; then
    for t in "svg size 900,380" "pngcairo size 900,380"; do
        ext=${t%% *}; ext=${ext#png}; [ "$ext" = cairo ] && ext=png
        gnuplot <<EOF 2>/dev/null || echo "create-curve.sh: gnuplot failed" >&2
set terminal $t
set output "$OUT/curve.$ext"
set multiplot layout 1,2 title "vse creates only ($desc)"
set logscale x 2
set xlabel "clients"
set key top left
set grid
set ylabel "accepted creates/s"
set yrange [0:*]
plot "$OUT/curve.tsv" using 1:2 skip 1 with linespoints title "creates/s"
set ylabel "create -> available, ms"
set yrange [*:*]
set logscale y
plot "$OUT/curve.tsv" using 1:3 skip 1 with linespoints title "p50", \
     "" using 1:4 skip 1 with linespoints title "p99"
unset multiplot
EOF
    done
fi
exit $rc
