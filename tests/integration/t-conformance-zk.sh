#!/usr/bin/env bash
# t-conformance-zk.sh - the store conformance suite (tests/store/
# test-conformance.c), the one that runs on SQLite and PostgreSQL, run
# against a throwaway standalone ZooKeeper member; each test opens its
# own chroot, which the store creates.  Twice: as configured, and with
# log buckets of two entries, so that sealing and reading across buckets
# run in every test.
set -eu
B=${VSE_BUILD:?VSE_BUILD names the build directory}
. "$(dirname "$0")/../zk.sh"
zk_start
VSE_TEST_STORE=zookeeper VSE_TEST_ZK_HOSTS=$ZK_HOSTS \
    "$B/tests/test-conformance"
VSE_ZK_BUCKET_MAX=2 VSE_TEST_STORE=zookeeper VSE_TEST_ZK_HOSTS=$ZK_HOSTS \
    "$B/tests/test-conformance"
