#!/bin/bash
# Mechanical checks run by `make check`:
#  1. banned unsafe C functions are not used;
#  2. every public header compiles on its own (includes what it uses);
# Prints "mechanical: N passed, N failed" and writes "P F 0" to $1/mechanical.summary.
set -uo pipefail
build=${1:-build}
srcdir=$(cd "$(dirname "$0")/.." && pwd)
cd "$srcdir" || exit 1
mak_var() { sed -n "s/^$1=//p" "$build/config.mak" 2>/dev/null; }
cc=$(mak_var CC); cc=${cc:-cc}
DEP_CFLAGS=$(mak_var DEP_CFLAGS)

passed=0 failed=0

banned=$(git grep -n -E '\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|strtok)\s*\(' \
    -- '*.c' '*.h' 2>/dev/null || true)
if [ -n "$banned" ]; then
    echo "FAIL banned functions in use:"
    echo "$banned"
    failed=$((failed + 1))
else
    passed=$((passed + 1))
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
hdr_fail=0
for h in $(git ls-files 'include/*.h' 2>/dev/null); do
    rel=${h#include/}
    printf '#include "qemu/osdep.h"\n#include "%s"\n' "$rel" > "$tmp/t.c"
    # shellcheck disable=SC2086
    if ! $cc -std=gnu11 -D_GNU_SOURCE -fsyntax-only -Wall -Werror \
            -I"$build" -I"$build/qapi" -Iinclude -I. $DEP_CFLAGS "$tmp/t.c" \
            2> "$tmp/err"; then
        echo "FAIL header does not compile on its own: $h"
        cat "$tmp/err"
        hdr_fail=1
    fi
done
if [ $hdr_fail -eq 0 ]; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi

echo "mechanical: $passed passed, $failed failed"
echo "$passed $failed 0" > "$build/mechanical.summary"
[ $failed -eq 0 ]
