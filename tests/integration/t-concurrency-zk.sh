#!/usr/bin/env bash
# t-concurrency-zk.sh - the concurrency proof of DESIGN §8 (race.c) on a
# throwaway standalone ZooKeeper member: 8 worker processes and a reaper
# race 10,000 calls on 8 volumes with 80 ms leases; race checks every
# history, then vsectl check reads the store again from outside.  Log
# buckets of 64 entries make the writers race to seal them too.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
. "$(dirname "$0")/../zk.sh"
zk_start
dir=$(mktemp -d)
trap 'zk_cleanup; rm -rf "$dir"' EXIT
VSE_ZK_BUCKET_MAX=64 "$B/tests/race" --store "$VSE_ZK_URL" --procs 8 --resources 8 \
    --attempts 10000 --ttl-ms 80 --dir "$dir"
"$B/vsectl" check --store "$VSE_ZK_URL"
# Holds under a race (holdrace.c), in a chroot of their own: its test
# machines are not vsectl's.
"$B/tests/holdrace" --store "$VSE_ZK_URL-holds" --procs 6 --disks 2 \
    --attempts 300
