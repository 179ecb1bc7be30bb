#!/bin/sh
# compare-sqlite.sh - vse on the SQLite store against raw SQLite doing the
# same SQL (bench/raw-sqlite.c), in one run, at 1 and 4 clients on 8
# resources.  Machines here are shared and noisy: read the ratio.
#
#   bench/compare-sqlite.sh BUILD_DIR [SECONDS]
#   VSE_BENCH_SYNC=normal bench/compare-sqlite.sh build    (default: full)
set -eu

build=${1:?usage: compare-sqlite.sh BUILD_DIR [SECONDS]}
secs=${2:-5}
sync=${VSE_BENCH_SYNC:-full}
vsectl=$build/vsectl
raw=$build/bench/raw-sqlite
for b in "$vsectl" "$raw"; do
    [ -x "$b" ] || { echo "compare-sqlite: $b is not built" >&2; exit 1; }
done
case $sync in
full | normal) ;;
*) echo "compare-sqlite: VSE_BENCH_SYNC must be full or normal" >&2; exit 2 ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vse-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
failed=0

# One engine, one client count: its JSON object into $tmp/$1-$2.json.
run_vse() {
    db=$tmp/vse-$1.db
    "$vsectl" --store "sqlite:$db?synchronous=$sync" list >/dev/null
    "$vsectl" --store "sqlite:$db?synchronous=$sync" bench --clients "$1" \
        --resources 8 --seconds "$secs" --json >"$tmp/vse-$1.json" ||
        { echo "compare-sqlite: vsectl bench --clients $1 failed" >&2
          failed=1; }
}
run_raw() {
    db=$tmp/raw-$1.db
    "$vsectl" --store "sqlite:$db" list >/dev/null
    "$raw" --db "$db" --clients "$1" --resources 8 --seconds "$secs" \
        --synchronous "$sync" --json >"$tmp/raw-$1.json" ||
        { echo "compare-sqlite: raw-sqlite --clients $1 failed" >&2; failed=1; }
}

# Alternate which engine goes first, so a noisy neighbour that comes and
# goes does not always land on the same one.
for n in 1 4; do
    if [ "$n" = 1 ]; then
        run_vse "$n"; run_raw "$n"
    else
        run_raw "$n"; run_vse "$n"
    fi
done

python3 - "$tmp" "$sync" "$secs" <<'EOF' || failed=1
import json, sys
tmp, sync, secs = sys.argv[1:4]
def load(name):
    try:
        with open(f"{tmp}/{name}.json") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"compare-sqlite: no result from {name}: {e}", file=sys.stderr)
        return None
print(f"SQLite store vs raw SQLite, same SQL: synchronous={sync}, "
      f"8 resources, {secs} s per run")
print(f"{'clients':>7} {'vse tx/s':>10} {'raw tx/s':>10} {'ratio':>6} "
      f"{'vse p50/p99 us':>16} {'raw p50/p99 us':>16}")
bad = False
for n in (1, 4):
    v, r = load(f"vse-{n}"), load(f"raw-{n}")
    if v is None or r is None:
        bad = True
        continue
    vt, rt = float(v["transitions_per_s"]), float(r["transitions_per_s"])
    ratio = f"{vt / rt:.2f}" if rt > 0 else "-"
    print(f"{n:>7} {vt:>10.0f} {rt:>10.0f} {ratio:>6} "
          f"{str(v['p50_us']) + '/' + str(v['p99_us']):>16} "
          f"{str(r['p50_us']) + '/' + str(r['p99_us']):>16}")
sys.exit(1 if bad else 0)
EOF
exit $failed
