#!/bin/bash
# Run blockd's test suites and print one total line at the end:
#   Total: N passed, N failed, N skipped
# Usage: run-checks.sh [--unit|--iotests|--stress] BUILD_DIR
set -uo pipefail

mode=all
case "${1:-}" in
--unit) mode=unit; shift ;;
--iotests) mode=iotests; shift ;;
--stress) mode=stress; shift ;;
esac
build=${1:-build}
srcdir=$(cd "$(dirname "$0")/.." && pwd)

passed=0 failed=0 skipped=0

if [ -n "${CONFIG_SANITIZERS_ASAN_OPTIONS:-}" ]; then
    export ASAN_OPTIONS=$CONFIG_SANITIZERS_ASAN_OPTIONS
fi
# Coroutine stack switches are annotated; fake stacks confuse them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=0:detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_unit() {
    local t out checks fails errs rc
    echo "== unit tests =="
    for t in "$build"/tests/unit/test-*; do
        [ -x "$t" ] || continue
        case "$t" in *.o|*.d) continue ;; esac
        out=$(CK_VERBOSITY=normal "$t" 2>&1)
        rc=$?
        # Check prints "NN%: Checks: C, Failures: F, Errors: E" per runner
        read -r checks fails errs < <(printf '%s\n' "$out" |
            sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' |
            awk '{c+=$1; f+=$2; e+=$3} END {print c+0, f+0, e+0}')
        if [ "$checks" -eq 0 ] || { [ $rc -ne 0 ] && [ $((fails + errs)) -eq 0 ]; }; then
            printf '%s\n' "$out"
            echo "FAIL $(basename "$t") (exit $rc, no Check summary)"
            failed=$((failed + 1))
            continue
        fi
        passed=$((passed + checks - fails - errs))
        failed=$((failed + fails + errs))
        if [ $((fails + errs)) -ne 0 ]; then
            printf '%s\n' "$out"
            echo "FAIL $(basename "$t"): $checks checks, $fails failures, $errs errors"
        else
            echo "ok   $(basename "$t"): $checks checks"
        fi
    done
}

run_iotests() {
    local group=$1 sum="$build/iotests.summary" p f s
    echo "== iotests ($group) =="
    rm -f "$sum"
    if [ -f "$srcdir/tests/qemu-iotests/check" ]; then
        (cd "$srcdir/tests/qemu-iotests" &&
            python3 ./check --build-dir "$(cd "$srcdir" && realpath "$build")" \
                -g "$group" --summary-file "$(cd "$srcdir" && realpath "$build")/iotests.summary")
        if [ -f "$sum" ]; then
            read -r p f s < "$sum"
            passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
        else
            echo "FAIL iotests runner wrote no summary"
            failed=$((failed + 1))
        fi
    fi
}

run_mechanical() {
    local p f s
    echo "== mechanical checks =="
    "$srcdir/scripts/check-mechanical.sh" "$build"
    if read -r p f s < "$build/mechanical.summary"; then
        passed=$((passed + p)); failed=$((failed + f))
    else
        failed=$((failed + 1))
    fi
}

cd "$srcdir" || exit 1
case $mode in
all) run_mechanical; run_unit; run_iotests quick ;;
unit) run_unit ;;
iotests) run_iotests quick ;;
stress) BLOCKD_STRESS=1 run_unit; run_iotests stress ;;
esac

echo "Total: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
