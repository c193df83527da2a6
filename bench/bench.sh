#!/bin/bash
# bench/bench.sh BUILD_DIR -- run by `make bench` (scripts/bench.sh): the
# side-by-side benchmark of issue 8 (blockd vs qemu-storage-daemon), see
# bench/run-bench.py and bench/README.md.  Extra options for run-bench.py
# can be passed in BENCH_ARGS (e.g. BENCH_ARGS=--quick).
set -eu
cd "$(dirname "$0")/.."
# shellcheck disable=SC2086
exec python3 bench/run-bench.py "${1:-build}" ${BENCH_ARGS:-}
