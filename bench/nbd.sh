#!/bin/bash
# bench/nbd.sh [BUILD_DIR] -- the NBD server under load, blockd vs
# qemu-storage-daemon, each serving the same raw image over a unix socket
# with the same command line (--blockdev file + --nbd-server + --export):
#
#   randwrite  fio --ioengine=nbd, 4k random writes, iodepth 16, on a
#              writable export of a preallocated raw image, FIO_RUNTIME
#              seconds (default 20): IOPS
#   nbdcopy    nbdcopy export -> null: of a fully written image (no holes,
#              so nothing can be skipped): seconds and MiB/s
#
# ROUNDS rounds (default 3), the daemons alternating (blockd, qemu,
# blockd, qemu, ...), a fresh daemon per run.  Prints every run, the
# medians and the ratio blockd/qemu.  Not part of `make check`.
#
# Environment: BENCH_DIR (scratch, default $TMPDIR or /tmp), BENCH_SIZE_MB
# (image size, default 1024), ROUNDS, FIO_RUNTIME, BLOCKD_ARGS (extra
# daemon arguments for both, e.g. to pin aio=).
set -euo pipefail

build=${1:-build}
srcdir=$(cd "$(dirname "$0")/.." && pwd)
case $build in /*) ;; *) build=$srcdir/$build ;; esac
blockd=$build/blockd
qsd=$(command -v qemu-storage-daemon || true)
size_mb=${BENCH_SIZE_MB:-1024}
rounds=${ROUNDS:-3}
runtime=${FIO_RUNTIME:-20}

if [ ! -x "$blockd" ]; then
    echo "blockd not built in $build" >&2
    exit 1
fi
for p in fio nbdcopy qemu-img; do
    if ! command -v "$p" >/dev/null; then
        echo "$p not installed" >&2
        exit 77
    fi
done
if [ -z "$qsd" ]; then
    echo "qemu-storage-daemon not installed; nothing to compare with" >&2
    exit 77
fi

dir=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/nbd-bench.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

echo "== preparing ${size_mb} MiB images in $dir"
qemu-img create -q -f raw -o preallocation=falloc "$dir/w.raw" "${size_mb}M"
# the copy source: every byte written, non-zero
head -c 1M /dev/urandom > "$dir/block"
for ((i = 0; i < size_mb; i++)); do cat "$dir/block"; done > "$dir/r.raw"
rm "$dir/block"

# start_daemon PROGRAM IMAGE WRITABLE
start_daemon() {
    local sock=$dir/nbd.sock
    rm -f "$sock"
    # shellcheck disable=SC2086
    "$1" --blockdev "driver=file,node-name=f,filename=$2" \
        --nbd-server "addr.type=unix,addr.path=$sock" \
        --export "type=nbd,id=e,node-name=f,name=disk,writable=$3" \
        ${BLOCKD_ARGS:-} >"$dir/daemon.log" 2>&1 &
    pid=$!
    for ((i = 0; i < 500; i++)); do
        [ -S "$sock" ] && return 0
        sleep 0.01
    done
    echo "daemon $1 did not start:" >&2
    cat "$dir/daemon.log" >&2
    exit 1
}

stop_daemon() {
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
}

uri="nbd+unix:///disk?socket=$dir/nbd.sock"

run_fio() {
    start_daemon "$1" "$dir/w.raw" on
    fio --name=randwrite --ioengine=nbd --uri="$uri" --rw=randwrite \
        --bs=4k --iodepth=16 --size="${size_mb}M" --runtime="$runtime" \
        --time_based --output-format=json >"$dir/fio.json"
    stop_daemon
    python3 -c 'import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]
assert j["error"] == 0, j["error"]
print("%.0f" % j["write"]["iops"])' "$dir/fio.json"
}

run_copy() {
    local t0 t1
    start_daemon "$1" "$dir/r.raw" off
    sync
    t0=$(date +%s.%N)
    nbdcopy "$uri" null:
    t1=$(date +%s.%N)
    stop_daemon
    python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) -
                                            float(sys.argv[1])))' "$t0" "$t1"
}

median() {
    python3 -c 'import statistics, sys
print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"
}

declare -a fio_b fio_q copy_b copy_q
for ((r = 1; r <= rounds; r++)); do
    v=$(run_fio "$blockd"); fio_b+=("$v")
    echo "round $r randwrite blockd: $v IOPS"
    v=$(run_fio "$qsd"); fio_q+=("$v")
    echo "round $r randwrite qemu:   $v IOPS"
    v=$(run_copy "$blockd"); copy_b+=("$v")
    echo "round $r nbdcopy   blockd: $v s"
    v=$(run_copy "$qsd"); copy_q+=("$v")
    echo "round $r nbdcopy   qemu:   $v s"
done

mb=$(median "${fio_b[@]}"); mq=$(median "${fio_q[@]}")
cb=$(median "${copy_b[@]}"); cq=$(median "${copy_q[@]}")
python3 - "$mb" "$mq" "$cb" "$cq" "$size_mb" <<'EOF'
import sys
fb, fq, cb, cq, size = (float(x) for x in sys.argv[1:])
print("== medians")
print("randwrite 4k QD16 IOPS: blockd %.0f  qemu %.0f  blockd/qemu %.2f"
      % (fb, fq, fb / fq))
print("nbdcopy -> null: blockd %.3f s (%.0f MiB/s)  qemu %.3f s "
      "(%.0f MiB/s)  time blockd/qemu %.2f"
      % (cb, size / cb, cq, size / cq, cb / cq))
EOF
