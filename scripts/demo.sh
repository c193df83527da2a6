#!/bin/bash
# make demo: the main job on a generated disk.
#
# Until the daemon, NBD server and backup job exist (issues 5-7), this
# builds the tree and says what the demo will do; it does not pretend.
set -euo pipefail
build=${1:-build}
cat <<MSG
blockd demo (placeholder: the daemon and backup job are not built yet)

Built in $build/: $(cd "$build" && ls -1 blockd blockd-img blockd-io 2>/dev/null | tr '\n' ' ')

When the backup job lands, this will:
  1. generate a 1 GiB disk image,
  2. start blockd with a writable NBD export of it,
  3. write to it continuously over NBD while blockdev-backup sync=full
     copies it to a qcow2 target, showing progress from query-jobs,
  4. verify the target equals the disk as it was when the job started,
     run qemu-img check on it, print throughput and a verdict.
MSG
