#!/bin/bash
# QEMU 7.2.0's own qemu-iotests against blockd-img / blockd-io (the
# conformance suite in the shared developer folder, ../shared/conformance/
# qemu-iotests/run.sh beside this repository; see its README).
#
#   QEMU_GIT_DIR=<git dir with QEMU history up to v7.2.0> \
#       scripts/check-conformance.sh BUILD_DIR [raw|qcow2]...
#
# Runs each format twice over:
#   as-blockd  the tools under their own names; messages say "blockd-img:"
#              where QEMU's golden output says "qemu-img:"
#   as-qemu    the same binaries invoked as qemu-img / qemu-io (hard links
#              in BUILD_DIR/conformance/), which is how a distribution
#              would offer them as drop-in replacements: the tools name
#              themselves after argv[0], as QEMU's do
# and prints the summary line of each run.  Nothing of QEMU's tree is kept
# in this repository; run.sh extracts it from QEMU_GIT_DIR at run time.
set -uo pipefail

build=$(realpath "${1:-build}")
shift || true
formats=${*:-raw qcow2}
srcdir=$(cd "$(dirname "$0")/.." && pwd)
suite=${CONFORMANCE_DIR:-$srcdir/../shared/conformance/qemu-iotests}

if [ ! -x "$suite/run.sh" ]; then
    echo "conformance suite not found in $suite (set CONFORMANCE_DIR)" >&2
    exit 2
fi
if [ -z "${QEMU_GIT_DIR:-}" ] && [ ! -d "${QIOT_DIR:-/tmp/qiot}/qemu-7.2.0" ]; then
    echo "set QEMU_GIT_DIR to a git dir holding QEMU's history up to v7.2.0" >&2
    exit 2
fi

compat=$build/conformance
mkdir -p "$compat"
ln -f "$build/blockd-img" "$compat/qemu-img"
ln -f "$build/blockd-io" "$compat/qemu-io"

rc=0
for fmt in $formats; do
    for naming in as-blockd as-qemu; do
        if [ $naming = as-blockd ]; then
            img=$build/blockd-img io=$build/blockd-io
        else
            img=$compat/qemu-img io=$compat/qemu-io
        fi
        out=$build/conformance/$naming-$fmt.txt
        QIOT_TAG=$naming "$suite/run.sh" "$img" "$io" "$fmt" > "$out" 2>&1 ||
            rc=1
        echo "$fmt $naming: $(tail -n 1 "$out")   ($out)"
    done
done
exit $rc
