#!/usr/bin/env bash
# t-zk-store.sh - what the ZooKeeper store refuses and what it migrates,
# through vsectl on a throwaway standalone member: URLs it cannot use (exit
# 2), an unreachable ensemble, a chroot that is not a vse store and a
# store of a newer schema (exit 1, nothing written), and an older schema
# brought up to date on open.  Nodes are read and written behind vse's
# back with Debian's zkCli.sh.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
. "$(dirname "$0")/../zk.sh"
zk_start
zkcli() { /usr/share/zookeeper/bin/zkCli.sh -server "$ZK_HOSTS" "$@" 2>&1; }
# zkget PATH: a node's data (the line after the connection event).
zkget() { zkcli get "$1" | sed -n '/^WatchedEvent/{n;p}' | tail -1; }
fail() { echo "t-zk-store: $*" >&2; exit 1; }

# expect STATUS PATTERN vsectl ARGS: exit status and message.
expect() {
    local want=$1 pat=$2 out st=0
    shift 2
    out=$("$B/vsectl" "$@" 2>&1) || st=$?
    [ "$st" = "$want" ] || fail "vsectl $*: exit $st, not $want: $out"
    grep -q -- "$pat" <<<"$out" || fail "vsectl $*: no '$pat' in: $out"
}

H=$ZK_HOSTS
expect 2 'names no chroot path' --store "zookeeper://$H/" list
expect 2 'names no chroot path' --store "zookeeper://$H" list
expect 2 'each member must be HOST:PORT' --store "zookeeper://127.0.0.1/x" list
expect 2 'a port is not a number' --store "zookeeper://127.0.0.1:0/x" list
expect 2 'not the root or ZooKeeper' --store "zookeeper://$H/zookeeper" list
expect 2 'holds . or ..' --store "zookeeper://$H/a/../b" list
expect 2 'does not start with //' --store "zookeeper:$H/x" list
VSE_ZK_RECONNECT_MS=300 expect 1 'cannot connect to store' \
    --store "zookeeper://127.0.0.1:1/x" list

# A chroot with other nodes and no meta: refused, left as it was.
zkcli create /other x >/dev/null
zkcli create /other/foo y >/dev/null
expect 1 'is not a vse store' --store "zookeeper://$H/other" list
[ "$(zkcli ls /other | tail -1)" = "[foo]" ] || fail "/other was changed"

# A new chroot is created at the current schema version.
S="zookeeper://$H/deep/vse"
"$B/vsectl" --store "$S" create volume v1 >/dev/null
now=$(zkget /deep/vse/meta | sed -n 's/.*"schema_version":\([0-9]*\).*/\1/p')
[ -n "$now" ] && [ "$now" -ge 2 ] || fail "meta: $(zkget /deep/vse/meta)"

# A newer schema: refused, meta untouched.
zkcli set /deep/vse/meta '{"format":"vse","schema_version":999}' >/dev/null
expect 1 'schema version 999, newer than this vse understands' \
    --store "$S" list
[ "$(zkget /deep/vse/meta)" = '{"format":"vse","schema_version":999}' ] ||
    fail "newer meta was changed"

# An older one: migrated on open, the data kept.
zkcli set /deep/vse/meta '{"format":"vse","schema_version":1}' >/dev/null
expect 0 "schema version $now" --store "$S" migrate
zkget /deep/vse/meta | grep -q "\"schema_version\":$now" ||
    fail "not migrated: $(zkget /deep/vse/meta)"
expect 0 'v1' --store "$S" get v1
# Purge drops a deleted volume that was once held with its holds node
# (ROOT/holds/ID, left empty when the snapshot's hold ended).
S2="zookeeper://$H/purge"
vs2() { "$B/vsectl" --store "$S2" "$@"; }
op=$(vs2 create volume vh) && vs2 step vh "$op" scheduling >/dev/null &&
    vs2 step vh "$op" creating_vol >/dev/null &&
    vs2 finish vh "$op" available >/dev/null || fail "volume vh"
op=$(vs2 create snapshot sh --hold vh --attrs '{"volume_id":"vh"}') &&
    vs2 finish sh "$op" available >/dev/null || fail "snapshot sh holding vh"
zkcli ls /purge/holds | grep -q '\[.*vh.*\]' || fail "no holds node for vh: $(zkcli ls /purge/holds | tail -1)"
op=$(vs2 begin sh delete) && vs2 finish sh "$op" deleted >/dev/null &&
    op=$(vs2 begin vh delete) && vs2 finish vh "$op" deleted >/dev/null ||
    fail "deletes"
sleep 0.01 # older than the 1 ms purge keeps
vs2 purge --older-than 1ms >/dev/null || fail "purge"
expect 4 'not found' --store "$S2" get vh
[ "$(zkcli ls /purge/holds | tail -1)" = "[]" ] ||
    fail "purge left a holds node: $(zkcli ls /purge/holds | tail -1)"
echo "t-zk-store: ok"
