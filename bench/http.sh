#!/bin/sh
# http.sh - transitions per second over vsed's HTTP API (wrk driving
# attach/detach cycles, bench/http-cycle.lua) against library-direct
# (`vsectl bench`, the same cycles in process) on the same store file
# in the same run, at 1 and 4 clients; then GET throughput.  Shared,
# noisy machines: read the ratio.
#
#   bench/http.sh BUILD_DIR [SECONDS]
#   VSE_BENCH_SYNC=normal bench/http.sh build     (default: full)
set -eu
build=${1:?usage: http.sh BUILD_DIR [SECONDS]}
secs=${2:-5}
sync=${VSE_BENCH_SYNC:-full}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vse-bench-http.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
store="sqlite:$tmp/b.db?synchronous=$sync"

# Set the volumes up (and warm the file) with the library bench.
"$build/vsectl" --store "$store" bench --clients 4 --resources 4 \
    --seconds 1 >/dev/null

"$build/vsed" --store "$store" --listen 127.0.0.1:0 --auth noauth \
    --reaper-interval 0 2>"$tmp/vsed.log" &
pid=$!
url=
for _ in $(seq 1 500); do
    port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' \
        "$tmp/vsed.log" | head -1)
    if [ -n "$port" ] && curl -fs "http://127.0.0.1:$port/healthz" \
        >/dev/null; then
        url=http://127.0.0.1:$port
        break
    fi
    sleep 0.02
done
[ -n "$url" ] || { cat "$tmp/vsed.log" >&2; exit 1; }

printf '%-26s %8s %10s %9s %9s %7s\n' run clients 'trans/s' 'p50 ms' \
    'p99 ms' ratio
for c in 1 4; do
    lib=$("$build/vsectl" --store "$store" bench --clients "$c" \
        --resources "$c" --seconds "$secs" --json)
    http=$(wrk -t"$c" -c"$c" -d"${secs}s" -s "$here/http-cycle.lua" \
        "$url" | sed -n 's/^WRK //p')
    python3 - "$c" "$lib" "$http" <<'PY'
import json, sys
c, lib, http = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
lt = lib["transitions_per_s"]
p50, p99 = lib["p50_us"] / 1000, lib["p99_us"] / 1000
print(f"{'library (vsectl bench)':26s} {c:>8s} {lt:10.0f} {p50:9.3f} {p99:9.3f}")
print(f"{'HTTP (wrk, begin/step/finish)':26s} {c:>8s} {http['rps']:10.0f} "
      f"{http['p50_ms']:9.3f} {http['p99_ms']:9.3f} "
      f"{http['rps'] / lt if lt else 0:7.2f}")
if http["errors"]:
    print(f"  HTTP errors: {http['errors']}")
PY
done
get=$(wrk -t2 -c32 -d"${secs}s" -s "$here/http-get.lua" \
    "$url/v1/resources/bench-0" | sed -n 's/^WRK //p')
python3 -c "
import json, sys
h = json.loads(sys.argv[1])
print(f\"{'HTTP GET /v1/resources/ID':26s} {'32':>8s} {h['rps']:10.0f} \"
      f\"{h['p50_ms']:9.3f} {h['p99_ms']:9.3f}   (requests/s)\")" "$get"
