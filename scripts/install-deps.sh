#!/bin/bash
# Install what blockd needs on Debian: build dependencies and the test
# oracles (real QEMU and libnbd tools).  Does nothing when all are present.
# Without root or sudo it prints the command and returns success: tests that
# need a missing oracle skip (exit 77) and say so.
set -euo pipefail

build_pkgs="pkg-config libglib2.0-dev libjansson-dev liburing-dev libaio-dev zlib1g-dev check python3"
oracle_pkgs="qemu-utils qemu-system-common libnbd-bin fio xfsprogs"

missing=()
for p in $build_pkgs $oracle_pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: not a Debian system; please install: ${missing[*]}" >&2
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"
else
    echo "install-deps: run as root: apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
