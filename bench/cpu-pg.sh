#!/usr/bin/env bash
# cpu-pg.sh - CPU per transition on PostgreSQL, server and client apart:
# vsectl bench with group commit (the default), with group_commit=off,
# and raw-pg (the bare transaction), each for S seconds at N clients, on
# one throwaway server.  Server CPU is the postmaster's, with its exited
# backends' (utime + stime + cutime + cstime of /proc/PID/stat, read
# before and after a run); client CPU is the bench process's (bash's
# `time`).  Throughput alone is noisy on a shared machine; CPU per
# transition says where the work is.
#   Usage: bench/cpu-pg.sh BUILD [SECONDS] [CLIENTS...]   (default 4; 4 16)
set -eu
B=${1:?usage: cpu-pg.sh BUILD [SECONDS] [CLIENTS...]}
S=${2:-4}
shift $(($# >= 2 ? 2 : 1))
CLIENTS=${*:-4 16}
. "$(dirname "$0")/../tests/pg.sh"
pg_start
U=$VSE_PG_URL
case $U in *\?*) OFF="$U&group_commit=off" ;; *) OFF="$U?group_commit=off" ;; esac
"$B/vsectl" --store "$U" list >/dev/null # creates the schema
"$B/bench/raw-pg" --url "$U" --clients 1 --resources 64 --seconds 1 \
    --json >/dev/null                    # and raw's
HZ=$(getconf CLK_TCK)
out=$(mktemp)
trap 'rm -f "$out"; pg_cleanup' EXIT

# The server's CPU seconds so far (its exited backends' included).
server_cpu() {
    awk -v hz="$HZ" '{ print ($14 + $15 + $16 + $17) / hz }' \
        "/proc/$PG_PID/stat"
}

# run LABEL CMD...: one run, one line.
run() {
    local label=$1 s0 s1 tps n c TIMEFORMAT='%U %S'
    shift
    sleep 0.5 # backends of the run before have exited
    s0=$(server_cpu)
    c=$({ time "$@" --json >"$out"; } 2>&1 | tail -1)
    sleep 0.5
    s1=$(server_cpu)
    tps=$(sed -n 's/.*"transitions_per_s":\([0-9.]*\).*/\1/p' "$out")
    n=$(sed -n 's/.*"transitions":\([0-9]*\).*/\1/p' "$out")
    [ -n "$n" ] || n=$(awk -v t="$tps" -v s="$S" 'BEGIN { print int(t * s) }')
    awk -v l="$label" -v s0="$s0" -v s1="$s1" -v n="$n" -v t="$tps" \
        -v c="$c" 'BEGIN { split(c, a, " ");
        printf "%-8s %8.0f/s  server %5.0f us  client %5.0f us\n", l, t,
            (s1 - s0) * 1e6 / n, (a[1] + a[2]) * 1e6 / n }'
}

echo "CPU per transition on PostgreSQL, $S s per run"
for n in $CLIENTS; do
    echo "clients $n"
    run vse "$B/vsectl" --store "$U" bench --threads --clients "$n" \
        --resources 64 --seconds "$S"
    run alone "$B/vsectl" --store "$OFF" bench --threads --clients "$n" \
        --resources 64 --seconds "$S"
    run raw "$B/bench/raw-pg" --url "$U" --clients "$n" --resources 64 \
        --seconds "$S"
done
