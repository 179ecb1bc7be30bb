#!/usr/bin/env bash
# t-machine-upgrade.sh - machines upgraded in place on SQLite (the story
# in upgrade-lib.sh), and vsed at start: a built-in newer than the pin
# upgrades it (VSED_TEST_MACHINE stands in for a newer built-in), one in
# the way or older than the pin refuses to start.
set -u
. "$(dirname "$0")/upgrade-lib.sh"
trap 'rm -rf "$T"' EXIT

usage_checks "sqlite:$T/u.db"
[ ! -e "$T/u.db" ] && ok "usage errors made no store" ||
    not_ok "usage errors made a store"
scenario "sqlite:$T/s.db"

finish
