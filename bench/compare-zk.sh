#!/usr/bin/env bash
# compare-zk.sh - vse on ZooKeeper against the ZooKeeper C client issuing
# the same requests (raw-zk.c: zoo_get, then one zoo_multi setting the row
# at its version and creating the history entry), same servers, same run:
# transitions per second and their ratio at 1, 4 and 16 clients, first
# against one standalone member, then against a three-member ensemble
# (throwaway servers on loopback, fsync on).  Each topology is warmed up
# first: the JVM halves its CPU per request over its first ~15 s.
# Usage: bench/compare-zk.sh BUILD [SECONDS]
# (VSE_ZK_URL set: measure that server only, under its chroot and the
# chroot's name + "-raw".)
# vsectl bench runs its clients as threads (--threads), as the raw
# program does: like for like.
set -eu
B=${1:?usage: compare-zk.sh BUILD [SECONDS]}
S=${2:-5}
WARM=${VSE_ZK_WARMUP:-15}
. "$(dirname "$0")/../tests/zk.sh"

tps() { sed -n 's/.*"transitions_per_s":\([0-9.]*\).*/\1/p'; }

# measure TITLE: the table for the servers VSE_ZK_URL names.
measure() {
    local U=$VSE_ZK_URL R=${VSE_ZK_URL}-raw n v r
    "$B/vsectl" --store "$U" list >/dev/null # creates the tree
    # The warm-up runs both programs, so that both chroots exist and the
    # server's JIT has seen both request shapes before anything counts.
    "$B/vsectl" --store "$U" bench --threads --clients 4 --resources 64 \
        --seconds $(((WARM + 1) / 2)) --json >/dev/null
    "$B/bench/raw-zk" --url "$R" --clients 4 --resources 64 \
        --seconds $(((WARM + 1) / 2)) --json >/dev/null
    echo "$1"
    printf '%-8s %12s %12s %7s\n' clients vse/s raw/s ratio
    for n in 1 4 16; do
        v=$("$B/vsectl" --store "$U" bench --threads --clients $n --resources 64 \
            --seconds "$S" --json | tps)
        r=$("$B/bench/raw-zk" --url "$R" --clients $n --resources 64 \
            --seconds "$S" --json | tps)
        printf '%-8s %12.0f %12.0f %7.2f\n' $n "$v" "$r" \
            "$(awk -v v="$v" -v r="$r" 'BEGIN { print (r > 0 ? v / r : 0) }')"
    done
}

if [ -n "${VSE_ZK_URL:-}" ]; then
    measure "ZooKeeper at $VSE_ZK_URL"
    exit 0
fi
zk_start
measure "ZooKeeper, one member (standalone), fsync on"
zk_cleanup
echo
zk_ensemble_start 3
measure "ZooKeeper, three members on this machine, fsync on"
zk_cleanup
