#!/bin/sh
# format.sh - clang-format the C sources in place with the committed
# .clang-format, or with --check only report the files that differ (what
# `make check-style` runs; `make format` runs the other).  One file list
# for both, so that what the check covers is what the formatter fixes.
#
#   scripts/format.sh [--check]
#
# The layout is pinned to clang-format 14 (Debian 12's): other versions
# break some lines differently.  CLANG_FORMAT names another binary.
set -eu
cd "$(dirname "$0")/.."

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
    if command -v clang-format-14 >/dev/null 2>&1; then
        cf=clang-format-14
    else
        cf=clang-format
    fi
fi
command -v "$cf" >/dev/null 2>&1 || {
    echo "format.sh: '$cf' not found (apt-get install clang-format)" >&2
    exit 2
}
case $("$cf" --version) in
*" version 14."*) ;;
*) echo "format.sh: warning: $("$cf" --version) is not clang-format 14;" \
        "its layout may differ from the committed one" >&2 ;;
esac

# Every C file of the tree; build/ and var/ are outside these directories.
files=$(find include src tests bench -type f -name '*.[ch]' | LC_ALL=C sort)

case ${1:-} in
--check)
    # shellcheck disable=SC2086
    "$cf" --style=file --dry-run --Werror $files ;;
"")
    # shellcheck disable=SC2086
    "$cf" --style=file -i $files ;;
*)
    echo "usage: scripts/format.sh [--check]" >&2
    exit 2 ;;
esac
