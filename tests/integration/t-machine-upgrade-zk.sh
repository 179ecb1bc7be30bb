#!/usr/bin/env bash
# t-machine-upgrade-zk.sh - machines upgraded in place (upgrade-lib.sh)
# on a throwaway standalone ZooKeeper.
set -u
. "$(dirname "$0")/upgrade-lib.sh"
. "$(dirname "$0")/../zk.sh"
zk_start
trap 'zk_cleanup; rm -rf "$T"' EXIT

LABEL=zookeeper scenario "$VSE_ZK_URL"

finish
