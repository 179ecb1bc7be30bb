#!/bin/sh
# render-docs.sh BUILD_DIR - regenerate docs/diagrams/ from the built-in
# machines, with the vsectl in BUILD_DIR and Graphviz's dot.  Run by
# `make docs`; commit the result with the change that caused it.
set -eu

build=${1:?usage: scripts/render-docs.sh BUILD_DIR}
vsectl=$build/vsectl
out=docs/diagrams

if [ ! -x "$vsectl" ]; then
    echo "render-docs: no $vsectl; run make first" >&2
    exit 1
fi
if ! command -v dot >/dev/null; then
    echo "render-docs: dot not found (apt-get install graphviz)" >&2
    exit 1
fi
mkdir -p "$out"
for m in volume snapshot; do
    "$vsectl" machine show "$m" --format dot > "$out/$m.dot.tmp"
    mv "$out/$m.dot.tmp" "$out/$m.dot"
    dot -Tsvg "$out/$m.dot" > "$out/$m.svg.tmp"
    mv "$out/$m.svg.tmp" "$out/$m.svg"
    echo "render-docs: $out/$m.dot, $out/$m.svg"
done
