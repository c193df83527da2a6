#!/bin/bash
# bench/img-convert.sh [BUILD_DIR] -- 1 GiB sequential copy with
# `blockd-img convert` vs `qemu-img convert`, raw -> qcow2 and qcow2 -> raw.
#
# The source is 1 GiB of non-zero, incompressible-enough data (so neither
# tool can skip anything).  Each direction runs 3 alternating rounds
# (blockd, qemu, blockd, qemu, ...), the target is removed and the page
# cache written back before each run; the timed part is the convert plus
# the sync that writes its data back (both tools default to cache=unsafe).  Prints
# per-run seconds, the medians and the ratio blockd/qemu (the issue's target
# is <= 1.3).  Not part of `make check`.
#
# Environment: BENCH_DIR (scratch, default $TMPDIR or /tmp), BENCH_SIZE_MB
# (default 1024), ROUNDS (default 3).
set -euo pipefail

build=${1:-build}
srcdir=$(cd "$(dirname "$0")/.." && pwd)
case $build in /*) ;; *) build=$srcdir/$build ;; esac
blockd_img=$build/blockd-img
qemu_img=$(command -v qemu-img || true)
size_mb=${BENCH_SIZE_MB:-1024}
rounds=${ROUNDS:-3}

if [ ! -x "$blockd_img" ]; then
    echo "blockd-img not built in $build" >&2
    exit 1
fi
if [ -z "$qemu_img" ]; then
    echo "qemu-img not installed; nothing to compare with" >&2
    exit 77
fi

dir=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/img-convert.XXXXXX")
trap 'rm -rf "$dir"' EXIT

echo "== preparing ${size_mb} MiB source images in $dir"
# pseudo-random data: 1 MiB of urandom repeated with a changing header
head -c 1M /dev/urandom > "$dir/block"
python3 - "$dir/block" "$dir/src.raw" "$size_mb" <<'EOF'
import sys
block = open(sys.argv[1], 'rb').read()
with open(sys.argv[2], 'wb') as f:
    for i in range(int(sys.argv[3])):
        f.write(i.to_bytes(8, 'little') + block[8:])
EOF
"$qemu_img" convert -f raw -O qcow2 "$dir/src.raw" "$dir/src.qcow2"
sync

# run_one TOOL ARGS... -> prints elapsed seconds
run_one() {
    local t0 t1
    rm -f "$dir/dst.raw" "$dir/dst.qcow2"
    sync
    t0=$(date +%s.%N)
    "$@" >/dev/null
    sync   # both tools use cache=unsafe: count writing back their data
    t1=$(date +%s.%N)
    python3 -c "print('%.3f' % ($t1 - $t0))"
}

median() {
    printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

bench_case() {
    local name=$1 src=$2 ifmt=$3 ofmt=$4 dst=$5
    local b=() q=() t i
    echo "== $name (${size_mb} MiB)"
    for ((i = 1; i <= rounds; i++)); do
        t=$(run_one "$blockd_img" convert -f "$ifmt" -O "$ofmt" "$src" "$dst")
        b+=("$t")
        t=$(run_one "$qemu_img" convert -f "$ifmt" -O "$ofmt" "$src" "$dst")
        q+=("$t")
        echo "   round $i: blockd-img ${b[-1]}s  qemu-img ${q[-1]}s"
    done
    # correctness of the last blockd-img run
    "$blockd_img" convert -f "$ifmt" -O "$ofmt" "$src" "$dst"
    "$qemu_img" compare -f "$ifmt" -F "$ofmt" "$src" "$dst" >/dev/null ||
        { echo "   MISMATCH: blockd-img output differs from the source"; exit 1; }
    local mb mq
    mb=$(median "${b[@]}")
    mq=$(median "${q[@]}")
    python3 -c "
b, q = $mb, $mq
print('   median: blockd-img %.3fs (%.0f MiB/s)  qemu-img %.3fs (%.0f MiB/s)  ratio %.2f' %
      (b, $size_mb / b, q, $size_mb / q, b / q))"
}

bench_case "raw -> qcow2" "$dir/src.raw" raw qcow2 "$dir/dst.qcow2"
bench_case "qcow2 -> raw" "$dir/src.qcow2" qcow2 raw "$dir/dst.raw"
