#!/bin/bash
# make bench: run every benchmark script in bench/ (each builds its own
# inputs, runs blockd and the reference tools side by side, and prints its
# figures).  Usage: scripts/bench.sh BUILD_DIR [SCRIPT...]
set -uo pipefail
build=${1:-build}
shift || true
srcdir=$(cd "$(dirname "$0")/.." && pwd)
export BUILD_DIR
BUILD_DIR=$(cd "$srcdir" && realpath "$build")

scripts=("$@")
if [ ${#scripts[@]} -eq 0 ]; then
    scripts=("$srcdir"/bench/*.sh)
fi
rc=0
for s in "${scripts[@]}"; do
    [ -f "$s" ] || continue
    echo "== $(basename "$s") =="
    bash "$s" "$BUILD_DIR" || { echo "bench: $(basename "$s") failed"; rc=1; }
done
exit $rc
