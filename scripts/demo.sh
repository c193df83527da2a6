#!/bin/bash
# make demo: the main job, for real.
#
#   1. generate a 1 GiB raw disk (3/4 pseudo-random data, 1/4 holes);
#   2. start blockd with a writable NBD export of it (the "guest" disk);
#   3. take the reference copy (cp --sparse=always) before the job starts;
#   4. blockdev-backup sync=full to a new qcow2 target, and at once start a
#      writer that writes random data through NBD (qemu-io over nbd+unix)
#      until the job completes; progress from query-jobs while it runs;
#   5. the target must equal the reference (qemu-img compare) and pass
#      qemu-img check and blockd-img check; the disk must have changed
#      (the guest really wrote during the job);
#   6. print the throughput and one verdict line; exit 1 on failure.
#
# Usage: scripts/demo.sh [BUILD_DIR]   (DEMO_SIZE_MIB=1024 by default)
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
size_mib=${DEMO_SIZE_MIB:-1024}
for prog in "$build/blockd" "$build/blockd-img"; do
    if [ ! -x "$prog" ]; then
        echo "demo: FAIL $prog is not built"
        exit 1
    fi
done
for prog in qemu-img qemu-io python3; do
    if ! command -v "$prog" >/dev/null; then
        echo "demo: FAIL $prog is missing (scripts/install-deps.sh)"
        exit 1
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/blockd-demo-XXXXXX")
daemon_pid=
writer_pid=
cleanup() {
    [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null || true
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

disk=$work/disk.raw
ref=$work/reference.raw
target=$work/backup.qcow2
qmp=$work/qmp.sock
nbd=$work/nbd.sock
stop=$work/writer.stop
count=$work/writer.count

echo "== 1. generating a ${size_mib} MiB disk (3/4 pseudo-random, 1/4 holes)"
python3 - "$disk" "$size_mib" <<'PY'
import random, sys
path, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(20240229)
with open(path, 'wb') as f:
    f.truncate(mib << 20)
    for i in range(mib):
        if i % 4 != 3:          # every 4th MiB stays a hole
            f.seek(i << 20)
            f.write(rng.randbytes(1 << 20))
PY

echo "== 2. starting blockd with a writable NBD export of the disk"
"$build/blockd" \
    --chardev "socket,id=mon0,path=$qmp,server=on,wait=off" \
    --monitor chardev=mon0 \
    --blockdev "file,node-name=disk-file,filename=$disk" \
    --blockdev raw,node-name=disk,file=disk-file \
    --nbd-server "addr.type=unix,addr.path=$nbd" \
    --export type=nbd,id=exp0,node-name=disk,name=disk,writable=on \
    --pidfile "$work/blockd.pid" >"$work/blockd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
    [ -e "$work/blockd.pid" ] && break
    sleep 0.05
done
if [ ! -e "$work/blockd.pid" ]; then
    cat "$work/blockd.log"
    echo "demo: FAIL blockd did not start"
    exit 1
fi

echo "== 3. reference copy of the disk, before the job starts"
cp --sparse=always "$disk" "$ref"
"$build/blockd-img" create -q -f qcow2 "$target" "${size_mib}M"

# The writer: batches of random 4k-1M writes through NBD until told to stop
writer() {
    local n=0 seed=1 uri="nbd+unix:///disk?socket=$nbd"
    while [ ! -e "$stop" ]; do
        mapfile -t cmds < <(python3 -c '
import random, sys
rng = random.Random(int(sys.argv[1])); size = int(sys.argv[2]) << 20
for _ in range(32):
    ln = rng.choice([4096, 65536, 1 << 20]); off = rng.randrange(0, size - ln, 4096)
    print("-c"); print("write -P 0x%02x %d %d" % (rng.randrange(1, 256), off, ln))
' "$seed" "$size_mib")
        qemu-io -f raw "${cmds[@]}" "$uri" >/dev/null || return 1
        n=$((n + 32))
        seed=$((seed + 1))
        echo "$n" >"$count"
    done
}

echo "== 4. blockdev-backup sync=full to qcow2, guest writing over NBD"
export -f writer
export stop count nbd size_mib
exec 3>&1       # progress lines; stdout of the client is its result
result=$(python3 - "$qmp" "$target" "$stop" "$count" "$size_mib" <<'PY'
import json, os, socket, subprocess, sys, time

qmp_path, target, stop, count, mib = sys.argv[1:6]


class QMP:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.buf = b''
        self.events = []
        self.recv()                                  # greeting
        self.cmd('qmp_capabilities')

    def recv(self):
        while b'\n' not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError('blockd closed the monitor')
            self.buf += data
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def cmd(self, name, **args):
        self.sock.sendall(json.dumps({'execute': name,
                                      'arguments': args}).encode() + b'\n')
        while True:
            msg = self.recv()
            if 'event' in msg:
                self.events.append(msg)
                continue
            if 'error' in msg:
                raise RuntimeError('%s: %s' % (name, msg['error']['desc']))
            return msg['return']


progress = os.fdopen(3, 'w')


def log(msg):
    print(msg, file=progress, flush=True)


q = QMP(qmp_path)
q.cmd('blockdev-add', **{'driver': 'qcow2', 'node-name': 'backup',
                         'file': {'driver': 'file', 'filename': target}})
t0 = time.monotonic()
q.cmd('blockdev-backup', device='disk', target='backup', sync='full',
      **{'job-id': 'demo'})
# the writer starts right after the point in time
writer = subprocess.Popen(['bash', '-c', 'writer'], env=os.environ)
done = None
last = 0
while done is None:
    for ev in q.events:
        if ev['event'] in ('BLOCK_JOB_COMPLETED', 'BLOCK_JOB_CANCELLED') \
                and ev['data']['device'] == 'demo':
            done = ev
    q.events = [e for e in q.events if e is not done]
    if done:
        break
    jobs = [j for j in q.cmd('query-jobs') if j['id'] == 'demo']
    now = time.monotonic()
    if jobs and now - last >= 0.5:
        j = jobs[0]
        pct = 100.0 * j['current-progress'] / max(1, j['total-progress'])
        writes = open(count).read().strip() if os.path.exists(count) else '0'
        log('   %5.1fs  %-8s %6.1f%%  %5d / %d MiB   guest writes so far: %s'
            % (now - t0, j['status'], pct, j['current-progress'] >> 20,
               j['total-progress'] >> 20, writes))
        last = now
    time.sleep(0.05)
elapsed = time.monotonic() - t0
open(stop, 'w').close()
writer.wait()
writes = open(count).read().strip() if os.path.exists(count) else '0'
q.cmd('blockdev-del', **{'node-name': 'backup'})
q.cmd('quit')
err = done['data'].get('error')
print(json.dumps({'event': done['event'], 'error': err,
                  'len': done['data']['len'], 'seconds': elapsed,
                  'writes': int(writes), 'writer_rc': writer.returncode}))
PY
) || true
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=
if [ -z "$result" ]; then
    tail -5 "$work/blockd.log"
    echo "demo: FAIL the backup did not run to the end"
    exit 1
fi
read -r event error len seconds writes writer_rc < <(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(r["event"], (r["error"] or "-").replace(" ", "_"), r["len"],
      "%.2f" % r["seconds"], r["writes"], r["writer_rc"])' "$result")

echo "== 5. verifying the backup"
fail=
if [ "$event" != BLOCK_JOB_COMPLETED ] || [ "$error" != - ]; then
    fail="job ended with $event ($error)"
fi
if [ "$writer_rc" != 0 ] || [ "$writes" -eq 0 ]; then
    fail=${fail:-"the guest writer failed ($writes writes, rc $writer_rc)"}
fi
if qemu-img compare -q -f raw -F raw "$ref" "$disk"; then
    fail=${fail:-"the disk did not change during the job"}
else
    echo "   the disk changed during the job ($writes guest writes over NBD)"
fi
if qemu-img compare -q -f raw -F qcow2 "$ref" "$target"; then
    echo "   qemu-img compare: target == disk at job start"
else
    fail=${fail:-"the target differs from the disk at job start"}
fi
if qemu-img check -q "$target"; then
    echo "   qemu-img check: no errors"
else
    fail=${fail:-"qemu-img check found errors"}
fi
if "$build/blockd-img" check -q "$target"; then
    echo "   blockd-img check: no errors"
else
    fail=${fail:-"blockd-img check found errors"}
fi

mibps=$(python3 -c "print('%.0f' % (int('$len') / 1048576 / float('$seconds')))")
echo "== 6. result"
echo "   backup: $((len >> 20)) MiB in ${seconds}s = ${mibps} MiB/s" \
     "(raw -> qcow2, guest writing concurrently)"
if [ -n "$fail" ]; then
    echo "demo: FAIL $fail"
    exit 1
fi
echo "demo: PASS point-in-time backup of a ${size_mib} MiB disk in use," \
     "${mibps} MiB/s, $writes guest writes over NBD, target verified"
