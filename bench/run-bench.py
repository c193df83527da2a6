#!/usr/bin/env python3
# bench/run-bench.py -- blockd vs qemu-storage-daemon, side by side (issue 8)
#
# Usage: python3 bench/run-bench.py [BUILD_DIR] [--quick] [--rounds N]
#            [--size SIZE] [--fio-runtime SECS] [--only METRIC,...]
#            [--no-write] [--keep]
#
# What it measures (per daemon: A = blockd, B = qemu-storage-daemon; the
# two run alternately A B A B ... so machine drift hits both alike):
#
#   1. blockdev-backup sync=full of a raw source to a raw target and to a
#      qcow2 target: wall time from sending the command to receiving
#      BLOCK_JOB_COMPLETED, allocated bytes of the target (st_blocks * 512)
#      and the daemon's peak RSS (VmHWM; every backup runs in a fresh
#      daemon so VmHWM belongs to that backup).  qemu-storage-daemon also
#      runs raw->raw with x-perf {use-copy-range: true}, its best setting.
#      `cp --sparse=always` of the same file is the copy limit.
#   2. 4k random writes with fio's nbd engine (QD16, time based) to a
#      writable export of (a fresh copy of) the source: IOPS idle, during
#      a sync=none backup, during a sync=full backup at speed 64 MiB/s.
#      For the latter, query-jobs after fio tells whether the backup was
#      still running for the whole fio run (reported per run).
#   3. nbdcopy of a read-only export of the source to null:, wall time.
#   4. As root with mkfs.xfs and loop devices: 1. raw->raw again on a
#      loop-mounted XFS image with reflink=1 (blockd clones clusters,
#      QSD copy-range reflinks); skipped with the reason otherwise.
#
# The source is SIZE bytes of raw image built deterministically from a seed:
# chunks of 256 KiB, exactly 3/4 of them pseudo-random data and 1/4 zero;
# half of the zero chunks are holes, half are written zeros (so both
# block-status skipping and zero detection matter).  Its allocation is
# reported and is the reference of the "target allocation" target.
#
# Page cache: dropping caches needs root and is not reliable here, so the
# run starts with a warm-up (the source is read, one backup per daemon is
# run and thrown away) and every measured run is page-cache warm.  Dirty
# data of the previous run is written back with sync(2) before each run
# (not timed).  Both daemons run with their default options (cache,
# aio mode, backup options) unless the metric says otherwise.
#
# Output: a Markdown table in bench/results.md (date, machine, versions,
# medians, A/B ratio, min-max, whether each issue-8 target is met) and the
# raw data in bench/results/<date>.json.  --no-write prints the table only.
#
# Only the Python 3 standard library is used; the QMP client and daemon
# launcher come from tests/qemu-iotests/iotests.py.

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SRC_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK = 256 * 1024
SEED = 8
SPEED_LIMITED = 64 * 1024 * 1024
JOB = 'bk'

# iotests.py reads TEST_DIR/SOCK_DIR when imported: set them first (main()).
iotests = None


def log(msg):
    print(msg, flush=True)


# ---- helpers -------------------------------------------------------------

def parse_size(text):
    """'1G', '256M', '512MiB', '4096' -> bytes."""
    units = {'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40}
    t = text.strip().lower()
    for suffix in ('ib', 'b'):
        if t.endswith(suffix) and len(t) > len(suffix) and \
                t[-len(suffix) - 1] in units:
            t = t[:-len(suffix)]
            break
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def fmt_size(n):
    for unit, div in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if n >= div:
            return '%.4g %s' % (n / div, unit)
    return '%d B' % n


def allocated(path):
    return os.stat(path).st_blocks * 512


def vm_status(pid, key):
    """A /proc/PID/status value in bytes (VmHWM, VmRSS), or None."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def run(argv, **kwargs):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kwargs)


def make_source(path, size, seed=SEED):
    """SIZE bytes: 3/4 pseudo-random chunks, 1/4 zero (half holes)."""
    nchunks = size // CHUNK
    assert nchunks * CHUNK == size and nchunks >= 8
    rng = random.Random(seed)
    kinds = ['data'] * nchunks
    zero_idx = rng.sample(range(nchunks), nchunks // 4)
    for n, i in enumerate(zero_idx):
        kinds[i] = 'hole' if n % 2 == 0 else 'zero'
    zeros = bytes(CHUNK)
    with open(path, 'wb') as f:
        f.truncate(size)
        for i, kind in enumerate(kinds):
            if kind == 'data':
                f.seek(i * CHUNK)
                f.write(rng.randbytes(CHUNK))
            elif kind == 'zero':
                f.seek(i * CHUNK)
                f.write(zeros)
        f.flush()
        os.fsync(f.fileno())
    return {'chunks': nchunks, 'chunk_size': CHUNK, 'seed': seed,
            'data_chunks': kinds.count('data'),
            'zero_chunks': kinds.count('zero'),
            'hole_chunks': kinds.count('hole')}


def fsync_time(path):
    """Seconds an fsync of path takes (its dirty page cache written back).

    BLOCK_JOB_COMPLETED does not promise a durable target (neither QEMU
    nor blockd flush it before; both flush when it is closed); the
    'durable' figures add this fsync: time until the backup is on disk.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        t0 = time.monotonic()
        os.fsync(fd)
        return time.monotonic() - t0
    finally:
        os.close(fd)


def disk_activity():
    """(I/Os in flight, sectors written) summed over all block devices."""
    inflight = written = 0
    with open('/proc/diskstats') as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 12:
                written += int(fields[9])
                inflight += int(fields[11])
    return inflight, written


def settle(*warm, timeout=10.0):
    """sync(2), read the files in warm, wait until the disks are quiet.

    All untimed.  The files are read again because this VM runs DAMON with
    a pageout scheme (/sys/kernel/mm/damon/admin): page cache idle for a
    few seconds is evicted, so the first run after a pause (always the same
    daemon) read its source from disk while the other found it cached.

    sync returns before everything the previous run set off is over (ext4
    discards of deleted files, write-back of metadata); without this the
    run right after a write-heavy one (always the same daemon, as A and B
    alternate in a fixed order) paid for it.
    """
    os.sync()
    for path in warm:
        read_through(path)
    deadline = time.monotonic() + timeout
    last = disk_activity()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = disk_activity()
        if now[0] == 0 and now[1] == last[1]:
            return
        last = now


def read_through(path):
    with open(path, 'rb') as f:
        while f.read(1 << 20):
            pass


# ---- one daemon --------------------------------------------------------

class Bench:
    def __init__(self, opts, workdir, daemons):
        self.opts = opts
        self.dir = workdir
        self.daemons = daemons          # {'blockd': path, 'qsd': path}
        self.src = os.path.join(workdir, 'src.raw')
        self.size = opts.size
        self.seq = 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def on_xfs(self):
        """The Bench on the XFS (reflink) mount; raises Skip without one."""
        if not hasattr(self, 'xfs'):
            self.xfs = XfsMount(self)
        return self.xfs.get()

    def launch(self, kind, src, export=None, writable=False):
        """Start a fresh daemon of kind with src as node 'src'.

        export: NBD socket path to export 'src' on (export name 'src').
        """
        self.seq += 1
        args = ['--blockdev',
                'driver=file,node-name=src-file,filename=%s' % src,
                '--blockdev', 'driver=raw,node-name=src,file=src-file']
        if export:
            args += ['--nbd-server', 'addr.type=unix,addr.path=%s' % export,
                     '--export', 'type=nbd,id=exp,node-name=src,name=src,'
                     'writable=%s' % ('on' if writable else 'off')]
        d = iotests.Daemon(binary=self.daemons[kind], args=args,
                           name='%s-%d' % (kind, self.seq))
        d.launch(timeout=30.0)
        return d

    @staticmethod
    def stop(d):
        d.shutdown(timeout=30.0)

    def add_target(self, d, fmt):
        """Create the target image (qemu-img / truncate), open it as 'tgt'."""
        tgt = self.path('tgt.' + fmt)
        if os.path.exists(tgt):
            os.unlink(tgt)
        if fmt == 'raw':
            with open(tgt, 'wb') as f:
                f.truncate(self.size)
        else:
            run(['qemu-img', 'create', '-q', '-f', fmt, tgt,
                 str(self.size)])
        d.cmd_ok('blockdev-add', {'driver': 'file', 'node-name': 'tgt-file',
                                  'filename': tgt})
        d.cmd_ok('blockdev-add', {'driver': fmt, 'node-name': 'tgt',
                                  'file': 'tgt-file'})
        return tgt

    def start_backup(self, d, sync, speed=0, x_perf=None):
        args = {'job-id': JOB, 'device': 'src', 'target': 'tgt',
                'sync': sync}
        if speed:
            args['speed'] = speed
        if x_perf:
            args['x-perf'] = x_perf
        t0 = time.monotonic()
        resp = d.cmd('blockdev-backup', args)
        if 'return' not in resp:
            raise RuntimeError('blockdev-backup: %s' %
                               resp.get('error', {}).get('desc', resp))
        return t0

    @staticmethod
    def wait_completed(d, timeout=900.0):
        ev = d.event_wait('BLOCK_JOB_COMPLETED', timeout=timeout,
                          match={'data': {'device': JOB}})
        t1 = time.monotonic()
        err = ev.get('data', {}).get('error')
        if err:
            raise RuntimeError('backup failed: %s' % err)
        return t1

    @staticmethod
    def cancel(d):
        resp = d.cmd('block-job-cancel', {'device': JOB, 'force': True})
        if 'return' not in resp:
            # Already gone (finished on its own).
            return
        while True:
            ev = d.pull_event(wait=True, timeout=120.0)
            if ev is None:
                raise RuntimeError('no event after block-job-cancel')
            if ev['event'] in ('BLOCK_JOB_CANCELLED',
                               'BLOCK_JOB_COMPLETED') and \
                    ev.get('data', {}).get('device') == JOB:
                return

    # ---- 1. full backup ------------------------------------------------

    def backup(self, kind, fmt, x_perf=None):
        settle(self.src)
        d = self.launch(kind, self.src)
        try:
            tgt = self.add_target(d, fmt)
            t0 = self.start_backup(d, 'full', x_perf=x_perf)
            t1 = self.wait_completed(d)
            hwm = vm_status(d.pid, 'VmHWM')
            fsync_s = fsync_time(tgt)
        finally:
            self.stop(d)
        res = {'seconds': t1 - t0, 'target_alloc': allocated(tgt),
               'peak_rss': hwm, 'durable_seconds': t1 - t0 + fsync_s}
        os.unlink(tgt)
        return res

    def cp_sparse(self):
        settle(self.src)
        dst = self.path('cp.raw')
        t0 = time.monotonic()
        run(['cp', '--sparse=always', self.src, dst])
        t1 = time.monotonic()
        res = {'seconds': t1 - t0, 'target_alloc': allocated(dst),
               'durable_seconds': t1 - t0 + fsync_time(dst)}
        os.unlink(dst)
        return res

    # ---- 2. guest writes ---------------------------------------------

    def fio(self, sock):
        """Run fio; return (IOPS, per-second IOPS list)."""
        prefix = self.path('fio')
        out = run(['fio', '--name=guest', '--ioengine=nbd',
                   '--uri=nbd+unix:///src?socket=%s' % sock,
                   '--rw=randwrite', '--bs=4k', '--iodepth=16',
                   '--runtime=%d' % self.opts.fio_runtime, '--time_based',
                   '--write_iops_log=%s' % prefix, '--log_avg_msec=1000',
                   '--output-format=json'])
        text = out.stdout
        data = json.loads(text[text.index('{'):])
        series = []
        logf = prefix + '_iops.1.log'
        if os.path.exists(logf):
            with open(logf) as f:
                for line in f:
                    fields = [x.strip() for x in line.split(',')]
                    if len(fields) >= 2:
                        series.append(int(fields[1]))
            os.unlink(logf)
        return data['jobs'][0]['write']['iops'], series

    def guest_writes(self, kind, mode):
        """mode: idle, none, full64 -> {'iops': ..., ...}."""
        settle()
        src = self.path('fio-src.raw')
        run(['cp', '--sparse=always', self.src, src])
        sock = self.path('%s.nbd' % kind)
        d = self.launch(kind, src, export=sock, writable=True)
        res = {}
        try:
            if mode != 'idle':
                self.add_target(d, 'raw')
                sync, speed = ('none', 0) if mode == 'none' \
                    else ('full', SPEED_LIMITED)
                self.start_backup(d, sync, speed=speed)
            fio_start = time.time()
            res['iops'], res['iops_per_second'] = self.fio(sock)
            if mode == 'full64':
                # Still running = no completion event yet and not at 100 %.
                done = [e for e in d.get_events()
                        if e['event'] == 'BLOCK_JOB_COMPLETED']
                jobs = d.cmd_ok('query-jobs')
                job = [j for j in jobs if j.get('id') == JOB]
                if job:
                    res['progress'] = [job[0].get('current-progress'),
                                       job[0].get('total-progress')]
                # Still running = no completion event yet and the job is
                # in state running (it may have copied everything already
                # and only be waiting out its rate limit: 'progress').
                res['still_running'] = not done and bool(job) and \
                    job[0].get('status') == 'running'
                if not done and not res['still_running']:
                    # Not running any more: the event is imminent.
                    done = [d.event_wait('BLOCK_JOB_COMPLETED',
                                         timeout=30.0,
                                         match={'data': {'device': JOB}})]
                if done:
                    ts = done[0].get('timestamp', {})
                    after = ts.get('seconds', 0) + \
                        ts.get('microseconds', 0) / 1e6 - fio_start
                    res['completed_after_fio_start'] = round(after, 2)
                    # Per-second samples taken entirely before completion.
                    before = res['iops_per_second'][:int(after)]
                    res['iops_while_running'] = \
                        statistics.mean(before) if before else None
                else:
                    res['iops_while_running'] = res['iops']
            if mode != 'idle':
                self.cancel(d)
        finally:
            self.stop(d)
            for f in (src, self.path('tgt.raw')):
                if os.path.exists(f):
                    os.unlink(f)
        return res

    # ---- 3. nbdcopy ----------------------------------------------------

    def nbdcopy(self, kind):
        settle(self.src)
        sock = self.path('%s.nbd' % kind)
        d = self.launch(kind, self.src, export=sock, writable=False)
        try:
            t0 = time.monotonic()
            run(['nbdcopy', 'nbd+unix:///src?socket=%s' % sock, 'null:'])
            t1 = time.monotonic()
        finally:
            self.stop(d)
        return {'seconds': t1 - t0}


# ---- the plan -------------------------------------------------------------

# (metric id, daemons it runs on, function(bench, kind) -> result dict)
METRICS = [
    ('backup-raw', ('blockd', 'qsd'), lambda b, k: b.backup(k, 'raw')),
    ('backup-raw-copy-range', ('qsd',),
     lambda b, k: b.backup(k, 'raw', x_perf={'use-copy-range': True})),
    ('backup-qcow2', ('blockd', 'qsd'), lambda b, k: b.backup(k, 'qcow2')),
    ('cp-sparse', ('cp',), lambda b, k: b.cp_sparse()),
    ('iops-idle', ('blockd', 'qsd'), lambda b, k: b.guest_writes(k, 'idle')),
    ('iops-none', ('blockd', 'qsd'), lambda b, k: b.guest_writes(k, 'none')),
    ('iops-full64', ('blockd', 'qsd'),
     lambda b, k: b.guest_writes(k, 'full64')),
    ('nbdcopy', ('blockd', 'qsd'), lambda b, k: b.nbdcopy(k)),
    ('xfs-backup-raw', ('blockd', 'qsd'),
     lambda b, k: b.on_xfs().backup(k, 'raw')),
    ('xfs-backup-raw-copy-range', ('qsd',),
     lambda b, k: b.on_xfs().backup(k, 'raw',
                                    x_perf={'use-copy-range': True})),
]


class Skip(Exception):
    """A metric that cannot run on this machine (reason in the message)."""


class XfsMount:
    """A loop-mounted XFS (reflink=1) image in workdir, for the reflink rows.

    Needs root, mkfs.xfs (xfsprogs) and loop devices; otherwise the XFS
    metrics are skipped with the reason.  The source is copied onto it
    (a real copy, not a clone) and a Bench there runs the backups.
    """

    def __init__(self, bench):
        self.bench = bench
        self.img = bench.path('xfs.img')
        self.mnt = bench.path('xfs')
        self.mounted = False
        self.xbench = None
        self.reason = None

    def setup(self):
        if os.geteuid() != 0:
            raise Skip('needs root to loop-mount an XFS image')
        if not shutil.which('mkfs.xfs'):
            raise Skip('mkfs.xfs (xfsprogs) not installed')
        with open(self.img, 'wb') as f:
            f.truncate(3 * self.bench.size + (512 << 20))
        os.makedirs(self.mnt, exist_ok=True)
        for argv in (['mkfs.xfs', '-q', '-m', 'reflink=1', self.img],
                     ['mount', '-o', 'loop', self.img, self.mnt]):
            r = subprocess.run(argv, capture_output=True, text=True)
            if r.returncode != 0:
                raise Skip('%s failed: %s' % (argv[0], r.stderr.strip()))
        self.mounted = True
        xb = Bench(self.bench.opts, self.mnt, self.bench.daemons)
        xb.seq = 1000
        run(['cp', '--sparse=always', '--reflink=never', self.bench.src,
             xb.src])
        settle()
        read_through(xb.src)
        for kind in xb.daemons:         # warm-up, not measured
            xb.backup(kind, 'raw')
        self.xbench = xb

    def get(self):
        if self.xbench is None and self.reason is None:
            try:
                self.setup()
            except Skip as e:
                self.reason = str(e)
                log('  XFS rows skipped: %s' % e)
        if self.reason:
            raise Skip(self.reason)
        return self.xbench

    def cleanup(self):
        if self.mounted:
            subprocess.run(['umount', self.mnt])
            self.mounted = False


def run_rounds(bench, opts, results):
    """results[metric][kind] = list of per-round dicts (or {'error':...})."""
    metrics = [m for m in METRICS if not opts.only or m[0] in opts.only]
    for rnd in range(opts.rounds):
        log('== round %d/%d' % (rnd + 1, opts.rounds))
        for name, kinds, fn in metrics:
            # A B in odd rounds, B A in even ones would hide drift the other
            # way; the issue asks for plain alternation A B A B.
            for kind in kinds:
                if kind not in bench.daemons and kind != 'cp':
                    continue
                try:
                    r = fn(bench, kind)
                except Skip:
                    continue
                except Exception as e:     # record and go on
                    r = {'error': '%s: %s' % (type(e).__name__, e)}
                results.setdefault(name, {}).setdefault(kind, []).append(r)
                log('  %-22s %-6s %s' % (name, kind, json.dumps(r)))


def warm_up(bench):
    log('== warm-up (not measured): read the source, one backup each')
    read_through(bench.src)
    for kind in bench.daemons:
        try:
            bench.backup(kind, 'raw')
        except Exception as e:
            log('  warm-up %s: %s' % (kind, e))


# ---- summary ---------------------------------------------------------------

def values(results, metric, kind, key):
    runs = results.get(metric, {}).get(kind, [])
    return [r[key] for r in runs if key in r and r[key] is not None]


def summary(results, metric, kind, key):
    v = values(results, metric, kind, key)
    if not v:
        errs = [r['error'] for r in results.get(metric, {}).get(kind, [])
                if 'error' in r]
        return {'median': None, 'min': None, 'max': None, 'n': 0,
                'error': errs[0] if errs else None}
    return {'median': statistics.median(v), 'min': min(v), 'max': max(v),
            'n': len(v)}


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# Rows of the table: (label, metric, key, unit, B column source, target
# function(med) -> (text, met or None)).  med(metric, kind, key) gives a
# median or None.

def build_rows(results, src_alloc, opts):
    def med(metric, kind, key):
        return summary(results, metric, kind, key)['median']

    def check(value, limit, op, text):
        if value is None or limit is None:
            return text, None
        return text, (value <= limit if op == '<=' else value >= limit)

    rows = []

    def row(label, metric, key, unit, target=None, b_kind='qsd',
            b_metric=None):
        a = summary(results, metric, 'blockd', key)
        b = summary(results, b_metric or metric, b_kind, key)
        tgt_text, met = target() if target else ('', None)
        rows.append({'label': label, 'metric': metric, 'key': key,
                     'unit': unit, 'a': a, 'b': b, 'b_kind': b_kind,
                     'ratio': ratio(a['median'], b['median']),
                     'target': tgt_text, 'met': met})

    rr = med('backup-raw', 'blockd', 'seconds')
    row('full backup raw→raw, time', 'backup-raw', 'seconds', 's',
        lambda: check(rr, None if med('backup-raw', 'qsd', 'seconds') is None
                      else med('backup-raw', 'qsd', 'seconds') / 5, '<=',
                      '≤ 1/5 of QSD default'))
    row('  vs QSD x-perf use-copy-range', 'backup-raw', 'seconds', 's',
        lambda: check(rr, med('backup-raw-copy-range', 'qsd', 'seconds'),
                      '<=', '≤ QSD copy-range'),
        b_metric='backup-raw-copy-range')
    row('  vs cp --sparse=always', 'backup-raw', 'seconds', 's',
        lambda: check(rr, None if med('cp-sparse', 'cp', 'seconds') is None
                      else 1.5 * med('cp-sparse', 'cp', 'seconds'), '<=',
                      '≤ 1.5× cp'),
        b_kind='cp', b_metric='cp-sparse')
    rrd = med('backup-raw', 'blockd', 'durable_seconds')
    row('  same, until the target is durable (+ fsync)', 'backup-raw',
        'durable_seconds', 's',
        lambda: check(rrd, med('backup-raw-copy-range', 'qsd',
                               'durable_seconds'), '<=',
                      '(≤ QSD copy-range, durable)'),
        b_metric='backup-raw-copy-range')
    row('  same, durable, vs QSD default', 'backup-raw',
        'durable_seconds', 's')
    row('  same, durable, vs cp + fsync', 'backup-raw', 'durable_seconds',
        's', lambda: check(rrd, None if med('cp-sparse', 'cp',
                                            'durable_seconds') is None
                           else 1.5 * med('cp-sparse', 'cp',
                                          'durable_seconds'), '<=',
                           '(≤ 1.5× cp, durable)'),
        b_kind='cp', b_metric='cp-sparse')
    rq = med('backup-qcow2', 'blockd', 'seconds')
    row('full backup raw→qcow2, time', 'backup-qcow2', 'seconds', 's',
        lambda: check(rq, None if med('backup-qcow2', 'qsd', 'seconds')
                      is None else med('backup-qcow2', 'qsd', 'seconds') / 2,
                      '<=', '≤ 1/2 of QSD'))
    rqd = med('backup-qcow2', 'blockd', 'durable_seconds')
    row('  same, until the target is durable (+ fsync)', 'backup-qcow2',
        'durable_seconds', 's',
        lambda: check(rqd, None if med('backup-qcow2', 'qsd',
                                       'durable_seconds') is None
                      else med('backup-qcow2', 'qsd', 'durable_seconds') / 2,
                      '<=', '(≤ 1/2 of QSD, durable)'))
    for metric, label in (('backup-raw', 'raw'), ('backup-qcow2', 'qcow2')):
        row('target allocation, %s' % label, metric, 'target_alloc', 'bytes',
            lambda metric=metric: check(med(metric, 'blockd',
                                            'target_alloc'),
                                        src_alloc, '<=',
                                        '≤ source (%s)' % fmt_size(src_alloc)))
    row('target allocation, raw, QSD copy-range', 'backup-raw',
        'target_alloc', 'bytes', None, b_metric='backup-raw-copy-range')
    row('target allocation, cp --sparse=always', 'backup-raw',
        'target_alloc', 'bytes', None, b_kind='cp', b_metric='cp-sparse')
    for metric, label in (('backup-raw', 'raw'), ('backup-qcow2', 'qcow2')):
        row('peak RSS, backup →%s' % label, metric, 'peak_rss', 'bytes',
            lambda metric=metric: check(
                med(metric, 'blockd', 'peak_rss'),
                None if med(metric, 'qsd', 'peak_rss') is None
                else med(metric, 'qsd', 'peak_rss') / 2, '<=',
                '≤ 1/2 of QSD'))
    idle_a = med('iops-idle', 'blockd', 'iops')
    idle_b = med('iops-idle', 'qsd', 'iops')
    row('guest 4k randwrite QD16, idle', 'iops-idle', 'iops', 'IOPS',
        lambda: check(idle_a, None if idle_b is None else 1.2 * idle_b,
                      '>=', '≥ 1.2× QSD'))
    for metric, label, frac, qsd_note in (
            ('iops-none', 'during sync=none backup', 0.6, '0.3'),
            ('iops-full64', 'during sync=full @64 MiB/s', 0.7, '0.45')):
        a = med(metric, 'blockd', 'iops')
        row('guest IOPS %s' % label, metric, 'iops', 'IOPS',
            lambda a=a, frac=frac, qsd_note=qsd_note: check(
                a, None if idle_a is None else frac * idle_a, '>=',
                '≥ %.1f× own idle (QSD ~%s×)' % (frac, qsd_note)))
    a = med('iops-full64', 'blockd', 'iops_while_running')
    row('  same, only seconds before the backup completed',
        'iops-full64', 'iops_while_running', 'IOPS',
        lambda: check(a, None if idle_a is None else 0.7 * idle_a, '>=',
                      '(≥ 0.7× own idle)'))
    rx = med('xfs-backup-raw', 'blockd', 'seconds')
    row('full backup raw→raw on XFS (reflink), time', 'xfs-backup-raw',
        'seconds', 's',
        lambda: check(rx, None if med('xfs-backup-raw', 'qsd', 'seconds')
                      is None else med('xfs-backup-raw', 'qsd',
                                       'seconds') / 5, '<=',
                      '(≤ 1/5 of QSD default, XFS)'))
    row('  vs QSD x-perf use-copy-range (XFS)', 'xfs-backup-raw', 'seconds',
        's', lambda: check(rx, med('xfs-backup-raw-copy-range', 'qsd',
                                   'seconds'), '<=',
                           '(≤ QSD copy-range, XFS)'),
        b_metric='xfs-backup-raw-copy-range')
    row('nbdcopy export→null, time', 'nbdcopy', 'seconds', 's',
        lambda: check(med('nbdcopy', 'blockd', 'seconds'),
                      None if med('nbdcopy', 'qsd', 'seconds') is None
                      else 0.8 * med('nbdcopy', 'qsd', 'seconds'), '<=',
                      '≤ 0.8× QSD'))
    return rows


def fmt_val(v, unit):
    if v is None:
        return '—'
    if unit == 'bytes':
        return fmt_size(v)
    if unit == 'IOPS':
        return '%.0f' % v
    return '%.2f s' % v if unit == 's' else '%g' % v


def fmt_stat(s, unit):
    if s['median'] is None:
        return 'n/a (failed)' if s.get('error') else 'n/a'
    return fmt_val(s['median'], unit)


def fmt_range(s, unit):
    if s['median'] is None:
        return '—'
    return '%s – %s' % (fmt_val(s['min'], unit), fmt_val(s['max'], unit))


def idle_fractions(results, kind):
    idle = summary(results, 'iops-idle', kind, 'iops')['median']
    out = {}
    for m in ('iops-none', 'iops-full64'):
        v = summary(results, m, kind, 'iops')['median']
        out[m] = None if v is None or not idle else v / idle
    return out


def markdown(meta, results, rows):
    kinds = {'qsd': 'QSD', 'cp': 'cp'}
    lines = ['# blockd vs qemu-storage-daemon: benchmark results', '',
             'Generated by `bench/run-bench.py` (`make bench`); raw data in '
             '`bench/results/%s.json`. A = blockd, B = qemu-storage-daemon '
             '(or `cp` where the row says so). Medians over %d rounds '
             '(A and B alternate within each round); ratio = A/B median.'
             % (meta['date'], meta['rounds']), '',
             '- date: %s' % meta['date'],
             '- machine: %s, %d CPUs, %s RAM, kernel %s' % (
                 meta['machine']['cpu'], meta['machine']['nproc'],
                 fmt_size(meta['machine']['mem_bytes']),
                 meta['machine']['kernel']),
             '- blockd: %s (commit %s)' % (meta['versions']['blockd_describe'],
                                           meta['versions']['blockd_commit']),
             '- qemu-storage-daemon: %s' % meta['versions']['qsd'],
             '- fio %s, nbdcopy %s, cp %s' % (
                 meta['versions']['fio'], meta['versions']['nbdcopy'],
                 meta['versions']['cp']),
             '- source: %s raw, %s allocated (3/4 pseudo-random, 1/4 zero: '
             'half holes, half written zeros; 256 KiB chunks, seed %d)' % (
                 fmt_size(meta['size']), fmt_size(meta['source_alloc']),
                 meta['source']['seed']),
             '- page cache: warm (one unmeasured warm-up round; caches are '
             'not dropped; before each run, untimed: sync(2), wait for quiet '
             'disks, re-read the source)',
             '- fio: nbd engine, randwrite bs=4k iodepth=16, %d s time based'
             % meta['fio_runtime'],
             '- XFS rows: %s (same source copied onto it; a fresh target '
             'file per run)' % meta.get('xfs', 'not run'), '',
             '| metric | blockd (A) | B | B median | A/B | A min–max | '
             'B min–max | target | met |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        met = {True: 'yes', False: '**no**', None: '—'}[r['met']]
        lines.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            r['label'], fmt_stat(r['a'], r['unit']), kinds[r['b_kind']],
            fmt_stat(r['b'], r['unit']),
            '—' if r['ratio'] is None else '%.2f' % r['ratio'],
            fmt_range(r['a'], r['unit']), fmt_range(r['b'], r['unit']),
            r['target'] or '—', met))
    lines.append('')
    fr = {k: idle_fractions(results, k) for k in ('blockd', 'qsd')}

    def f(v):
        return '—' if v is None else '%.2f' % v
    lines.append('Guest IOPS as a fraction of the same daemon\'s idle IOPS: '
                 'blockd sync=none %s, sync=full@64MiB/s %s; '
                 'qemu-storage-daemon sync=none %s, sync=full@64MiB/s %s.' % (
                     f(fr['blockd']['iops-none']),
                     f(fr['blockd']['iops-full64']),
                     f(fr['qsd']['iops-none']), f(fr['qsd']['iops-full64'])))
    lines.append('')
    sr = []
    for kind in ('blockd', 'qsd'):
        runs = results.get('iops-full64', {}).get(kind, [])
        flags = [('yes (%.0f %% copied)' % (100.0 * r['progress'][0] /
                                             r['progress'][1])
                  if r.get('progress') and r['progress'][1] else 'yes')
                 if r.get('still_running') else
                 ('error' if 'error' in r else
                  'NO (completed %s s after fio started)' %
                  r.get('completed_after_fio_start', '?'))
                 for r in runs]
        sr.append('%s: %s' % (kind, ', '.join(flags) or '—'))
    lines.append('sync=full @64 MiB/s backup still running when fio ended '
                 '(per round; %d s fio runs): %s.' % (
                     meta['fio_runtime'], '; '.join(sr)))
    errors = []
    for metric, per_kind in results.items():
        for kind, runs in per_kind.items():
            for i, r in enumerate(runs):
                if 'error' in r:
                    errors.append('- %s / %s round %d: %s' % (
                        metric, kind, i + 1, r['error']))
    if errors:
        lines += ['', 'Failed runs:', ''] + errors
    lines.append('')
    return '\n'.join(lines)


# ---- metadata -------------------------------------------------------------

def machine_info():
    cpu = 'unknown'
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    mem = 0
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemTotal:'):
                mem = int(line.split()[1]) * 1024
    return {'nproc': os.cpu_count(), 'mem_bytes': mem, 'cpu': cpu,
            'kernel': platform.release()}


def tool_version(argv):
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True).stdout
        return out.strip().splitlines()[0] if out.strip() else 'unknown'
    except OSError:
        return 'missing'


def git(*args):
    try:
        return subprocess.run(['git', '-C', SRC_DIR] + list(args),
                              stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL,
                              text=True).stdout.strip() or 'unknown'
    except OSError:
        return 'unknown'


# ---- main ----------------------------------------------------------------

def main():
    global iotests
    p = argparse.ArgumentParser(
        description='blockd vs qemu-storage-daemon benchmark (issue 8)')
    p.add_argument('build', nargs='?', default='build',
                   help='blockd build directory (default build)')
    p.add_argument('--quick', action='store_true',
                   help='256 MiB source, 3 s fio runs (about 2 minutes)')
    p.add_argument('--rounds', type=int, help='rounds (default 5)')
    p.add_argument('--size', help='source size (default 1G; quick 256M)')
    p.add_argument('--fio-runtime', type=int,
                   help='seconds per fio run (default 10; quick 3)')
    p.add_argument('--only', help='comma-separated metrics: ' +
                   ','.join(m[0] for m in METRICS))
    p.add_argument('--no-write', action='store_true',
                   help='print the table, do not write bench/results*')
    p.add_argument('--keep', action='store_true',
                   help='keep the scratch directory')
    opts = p.parse_args()
    opts.rounds = opts.rounds or 5
    opts.size = parse_size(opts.size or ('256M' if opts.quick else '1G'))
    opts.size -= opts.size % CHUNK
    opts.fio_runtime = opts.fio_runtime or (3 if opts.quick else 10)
    opts.only = set(opts.only.split(',')) if opts.only else None
    if opts.only and opts.only - {m[0] for m in METRICS}:
        p.error('unknown metric(s): %s' %
                ', '.join(sorted(opts.only - {m[0] for m in METRICS})))

    build = opts.build if os.path.isabs(opts.build) else \
        os.path.join(os.getcwd(), opts.build)
    if not os.path.isdir(build):
        build = os.path.join(SRC_DIR, opts.build)
    blockd = os.path.join(build, 'blockd')
    qsd = shutil.which('qemu-storage-daemon')
    missing = [t for t in ('fio', 'nbdcopy', 'qemu-img')
               if not shutil.which(t)]
    if not os.access(blockd, os.X_OK):
        log('blockd not built in %s' % build)
        return 1
    if not qsd or missing:
        log('missing %s; nothing to compare with' %
            ', '.join((['qemu-storage-daemon'] if not qsd else []) + missing))
        return 77

    # SIGTERM (make bench interrupted, timeout): clean up like ^C.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    workdir = tempfile.mkdtemp(prefix='blockd-bench.',
                               dir=os.environ.get('BENCH_DIR'))
    os.environ['TEST_DIR'] = workdir
    os.environ['SOCK_DIR'] = workdir
    sys.path.insert(0, os.path.join(SRC_DIR, 'tests', 'qemu-iotests'))
    import iotests as _iotests
    iotests = _iotests

    started = time.monotonic()
    now = datetime.datetime.now(datetime.timezone.utc)
    date = now.strftime('%Y-%m-%dT%H%M%SZ')
    meta = {
        'date': date, 'rounds': opts.rounds, 'size': opts.size,
        'quick': opts.quick, 'fio_runtime': opts.fio_runtime,
        'machine': machine_info(),
        'versions': {
            'blockd_describe': git('describe', '--always', '--dirty',
                                   '--tags'),
            'blockd_commit': git('rev-parse', 'HEAD'),
            'blockd': tool_version([blockd, '--version']),
            'qsd': tool_version([qsd, '--version']),
            'fio': tool_version(['fio', '--version']),
            'nbdcopy': tool_version(['nbdcopy', '--version']),
            'cp': tool_version(['cp', '--version']),
        },
    }
    results = {}
    try:
        bench = Bench(opts, workdir, {'blockd': blockd, 'qsd': qsd})
        log('== source: %s in %s' % (fmt_size(opts.size), workdir))
        meta['source'] = make_source(bench.src, opts.size)
        meta['source_alloc'] = allocated(bench.src)
        warm_up(bench)
        run_rounds(bench, opts, results)
    finally:
        if 'bench' in locals() and hasattr(bench, 'xfs'):
            bench.xfs.cleanup()
            meta['xfs'] = bench.xfs.reason or 'loop-mounted XFS, reflink=1'
        if opts.keep:
            log('scratch directory kept: %s' % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    meta['elapsed_seconds'] = time.monotonic() - started

    rows = build_rows(results, meta['source_alloc'], opts)
    md = markdown(meta, results, rows)
    print(md)
    if not opts.no_write:
        resdir = os.path.join(SRC_DIR, 'bench', 'results')
        os.makedirs(resdir, exist_ok=True)
        with open(os.path.join(resdir, '%s.json' % date), 'w') as f:
            json.dump({'meta': meta, 'results': results,
                       'summary': rows}, f, indent=1, sort_keys=True)
            f.write('\n')
        with open(os.path.join(SRC_DIR, 'bench', 'results.md'), 'w') as f:
            f.write(md)
        log('wrote bench/results.md and bench/results/%s.json' % date)
    failed = any('error' in r for per in results.values()
                 for runs in per.values() for r in runs)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
