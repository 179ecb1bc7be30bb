#!/bin/sh
# deps.sh - install the Debian packages vse builds and tests with, if any
# is missing ("deps.sh deb": and those `make deb` packages with).  A no-op (one dpkg-query) when all are there.  Needs root
# (or sudo) only when something must be installed.
set -eu
pkgs="gcc make pkg-config libsqlite3-dev libfyaml-dev libjansson-dev
libcmocka-dev graphviz libpq-dev postgresql
libmicrohttpd-dev nettle-dev libcurl4-openssl-dev wrk clang libclang-rt-14-dev
curl python3 python3-cinderclient python3-openstackclient gnuplot-nox
python3-pytest python3-taskflow
libzookeeper-mt-dev zookeeper clang-format"
# `make deb` (scripts/deps.sh deb) also needs the packaging tools; the
# build and the tests do not, so they are not installed for those.
if [ "${1:-}" = deb ]; then
    pkgs="$pkgs debhelper dpkg-dev lintian"
fi
missing=
for p in $pkgs; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
