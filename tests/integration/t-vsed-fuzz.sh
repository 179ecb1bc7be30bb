#!/usr/bin/env bash
# t-vsed-fuzz.sh - run the libFuzzer target over vsed's request path
# (routing, query arguments, JSON bodies, the library's input checks), for
# /v1 and the Cinder v3 API (microversions, volume actions), from the
# seeds in tests/fuzz/corpus for a bounded time (VSE_FUZZ_SECONDS, default
# 15) under ASan+UBSan.  Any crash, leak or sanitizer report fails.
set -u
B=${VSE_BUILD:?VSE_BUILD names the build directory}
F=$B/tests/fuzz-api
[ -x "$F" ] || { echo "no $F: build it with 'make tests'"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T" /tmp/vse-fuzz-*.db*' EXIT
cp tests/fuzz/corpus/* "$T/"
mkdir "$T/art"
"$F" -max_total_time="${VSE_FUZZ_SECONDS:-15}" -max_len=4096 -timeout=10 \
    -rss_limit_mb=1024 -artifact_prefix="$T/art/" "$T" >"$T/log" 2>&1
rc=$?
tail -3 "$T/log"
if [ "$rc" -ne 0 ] || ls "$T/art" | grep -q .; then
    echo "FAIL fuzz-api (rc $rc)"
    grep -A20 'ERROR\|runtime error' "$T/log" | head -40
    for a in "$T"/art/*; do [ -f "$a" ] && od -c "$a" | head -10; done
    exit 1
fi
echo "ok   fuzz-api: $(sed -n "s/^Done \([0-9]*\) runs.*/\1/p" "$T/log") runs"
