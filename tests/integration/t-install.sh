#!/usr/bin/env bash
# t-install.sh - `make install` into a scratch DESTDIR holds what a Debian
# library holds (libvse.so.VERSION with its soname and links, libvse.a,
# vse.h, vse.pc, the tools, man pages, machines, examples, systemd units);
# libvse.so exports exactly the functions vse.h declares; a C program built
# with `pkg-config --cflags --libs vse` alone runs against the installed
# library on a real SQLite file; `make uninstall` leaves no file behind.
set -u

B=${VSE_BUILD:?VSE_BUILD names the build directory}
ROOT=$(pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
D=$T/dest
P=/usr/local

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok   $1"
}
not_ok() {
    failed=$((failed + 1))
    echo "FAIL $1"
    shift
    for l in "$@"; do printf '     | %s\n' "$l"; done
}
check() { # NAME WANT GOT
    if [ "$2" = "$3" ]; then ok "$1"; else
        not_ok "$1" "want:" "$2" "got:" "$3"
    fi
}

# The build under test, as it is: -o all installs what is built and
# builds nothing (under `make check` the build is already complete).
# This make is not a sub-make of the one that runs the tests.
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory \
        -C "$ROOT" VSE_DEPS_OK=1 BUILD="$B" -o all PREFIX=$P DESTDIR="$D" "$@"
}

echo "# install"
if mk install >"$T/install.log" 2>&1; then ok "make install"; else
    not_ok "make install" "$(tail -n 20 "$T/install.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi

version=$(sed -n 's/.*define VSE_VERSION_STRING "\([^"]*\)".*/\1/p' \
    include/vse.h)
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
# Before 1.0 each minor version may break the ABI (vse.h): the soname
# carries it.
if [ "$major" = 0 ]; then soname=libvse.so.0.$minor; else
    soname=libvse.so.$major; fi

pyver=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
want=$(sort <<EOF2
bin/vsectl
bin/vsed
include/vse.h
lib/libvse.a
lib/libvse.so -> $soname
lib/$soname -> libvse.so.$version
lib/libvse.so.$version
lib/pkgconfig/vse.pc
lib/systemd/system/vsed.service
lib/systemd/system/vsed@.service
$(cd man && for f in *.1; do echo "share/man/man1/$f"; done)
$(cd machines && for f in *.yaml; do echo "share/vse/machines/$f"; done)
$(cd etc && for f in *.yaml; do echo "share/vse/examples/$f"; done)
$(cd etc/vse && for f in *; do echo "share/vse/examples/etc-vse/$f"; done)
$(cd python/vse && for f in *.py; do echo "lib/python$pyver/dist-packages/vse/$f"; done)
EOF2
)
got=$(cd "$D$P" && find . ! -type d | sed 's|^\./||' | sort | while read -r f
    do if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else
        echo "$f"; fi; done)
check "installed files and links" "$want" "$got"
got=$(cd "$D" && find . ! -type d | grep -v "^\./${P#/}/" || true)
check "nothing outside PREFIX" "" "$got"

lib=$D$P/lib/libvse.so.$version
got=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
check "soname" "$soname" "$got"
for f in machines/*.yaml man/*.1 include/vse.h; do
    case $f in
    machines/*) i=$D$P/share/vse/$f ;;
    man/*) i=$D$P/share/man/man1/${f#man/} ;;
    *) i=$D$P/include/vse.h ;;
    esac
    cmp -s "$f" "$i" || not_ok "$f installed unchanged"
done
got=$(stat -c %a "$D$P/bin/vsed" "$D$P/lib/libvse.so.$version" \
    "$D$P/include/vse.h" | tr '\n' ' ')
check "modes" "755 644 644 " "$got"

# Exactly the functions vse.h declares, and no vse__ internals.
decl=$(grep -E '^[a-z][^(]*\bvse_[a-z0-9_]+\(' include/vse.h |
    grep -v '^typedef' | sed -E 's/.*\b(vse_[a-z0-9_]+)\(.*/\1/' | sort)
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort)
check "nm -D: the functions vse.h declares, nothing else" "$decl" \
    "$exported"

units=$D$P/lib/systemd/system
got=$(grep -h '^ExecStart=' "$units/vsed.service" "$units/vsed@.service")
check "units start the installed vsed" \
"ExecStart=$P/bin/vsed --all-in-one --config /etc/vse/vsed.yaml --pool /var/lib/vse/pool \$VSED_OPTS
ExecStart=$P/bin/vsed --role %i --config /etc/vse/%i.yaml \$VSED_OPTS" "$got"
if grep -q '@[A-Z]*@' "$units/vsed.service" "$units/vsed@.service"; then
    not_ok "units: every @VAR@ replaced"
else
    ok "units: every @VAR@ replaced"
fi
if command -v systemd-analyze >/dev/null 2>&1; then
    # The unit files themselves: the binary is not at $P here.  A
    # template is verified as one of its instances.
    cp "$units/vsed.service" "$units/vsed@.service" "$T"
    cp "$units/vsed@.service" "$T/vsed@api.service"
    for u in vsed.service vsed@api.service; do
        out=$(cd "$T" && systemd-analyze verify --man=no "./$u" 2>&1 |
            grep -v "Command $P/bin/vsed is not executable" || true)
        check "systemd-analyze verify $u" "" "$out"
    done
fi

echo "# a program built with pkg-config alone"
export PKG_CONFIG_PATH=$D$P/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D
check "pkg-config --modversion vse" "$version" \
    "$(pkg-config --modversion vse 2>&1)"
flags=$(pkg-config --cflags --libs vse)
# A sanitizer build's libvse.so needs the same runtime in the program.
san=
if nm -D "$lib" | grep -q ' U __asan_'; then
    san="-fsanitize=address,undefined"
fi
cat >"$T/prog.c" <<'EOF2'
#include <vse.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    struct vse_resource r;
    struct vse_error err;
    vse_db *db;

    if (argc != 2 || vse_open(argv[1], &db, &err) != 0 ||
        vse_create(db, "volume", "vol-1", NULL, NULL, &err) != 0 ||
        vse_get(db, "vol-1", &r, &err) != 0) {
        fprintf(stderr, "prog: %s\n", err.msg);
        return 1;
    }
    printf("%s %s %s %s v%lld\n", VSE_VERSION_STRING, r.id, r.machine,
           r.state, (long long)r.version);
    vse_close(db);
    return 0;
}
EOF2
# shellcheck disable=SC2086
if cc -std=c17 -Wall -Werror $san -o "$T/prog" "$T/prog.c" $flags \
    >"$T/cc.log" 2>&1; then ok "cc prog.c \$(pkg-config --cflags --libs vse)"
else not_ok "cc prog.c \$(pkg-config --cflags --libs vse)" "$flags" \
    "$(cat "$T/cc.log")"; fi
got=$(LD_LIBRARY_PATH=$D$P/lib ldd "$T/prog" | awk '/libvse/ {print $1, $3}')
check "prog loads the installed libvse" "$soname $lib" \
    "$(echo "$got" | sed "s|$D$P/lib/$soname|$lib|")"
out=$(LD_LIBRARY_PATH=$D$P/lib "$T/prog" "sqlite:$T/s.db" 2>&1)
check "prog creates and reads back a resource" \
    "$version vol-1 volume creating_db v1" "$out"
out=$("$D$P/bin/vsectl" --store "sqlite:$T/s.db" get vol-1 2>&1 | head -n 1)
case $out in
*vol-1*) ok "the installed vsectl reads it" ;;
*) not_ok "the installed vsectl reads it" "$out" ;;
esac
check "installed vsectl --version" "vsectl $version" \
    "$("$D$P/bin/vsectl" --version 2>&1)"
check "installed vsed --version" "vsed $version" \
    "$("$D$P/bin/vsed" --version 2>&1)"

# The Python package, as Debian's python3 finds it under this prefix, on
# the installed library (a sanitizer build cannot be loaded into python3).
if [ -z "$san" ]; then
    out=$(cd "$T" && PYTHONPATH=$D$P/lib/python$pyver/dist-packages \
        VSE_LIBRARY=$lib /usr/bin/python3 -c '
import sys, vse
st = vse.open(sys.argv[1])
r = st.get("vol-1")
print(vse.__file__.startswith(sys.argv[2]), r["state"], r["version"])
' "sqlite:$T/s.db" "$D$P/lib/python$pyver" 2>&1)
    check "the installed Python package reads it" "True creating_db 1" "$out"
fi

echo "# uninstall"
if mk uninstall >"$T/uninstall.log" 2>&1; then ok "make uninstall"; else
    not_ok "make uninstall" "$(tail -n 20 "$T/uninstall.log")"; fi
check "no file or link left" "" "$(cd "$D" && find . ! -type d)"
check "no vse directory left" "" "$(cd "$D" && find . -path '*vse*')"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
