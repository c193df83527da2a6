# iotests.py -- helpers for blockd's Python black-box tests.
#
# Design
# ------
# A Python test is a script run by ./check with its environment (TEST_DIR,
# SOCK_DIR, BLOCKD, IMGFMT, ... see README).  It prints what it observes
# through log(), which applies filters and dumps JSON with sorted keys so
# the output is deterministic and can be compared with the golden NNN.out.
#
# Pieces:
#   - paths and environment: TEST_DIR, SOCK_DIR, file_path(), sock_path()
#   - running tools: qemu_img(), qemu_io(), blockd_img(), blockd_io() return
#     (exit status, merged output); *_log() variants log filtered output;
#     qemu_img_pipe() returns the output only, qemu_img_json() parses it
#   - filters (filters.py-style, each works on text or on JSON values)
#   - QMPClient: a minimal QMP client over a unix socket.  Messages may
#     arrive split at any byte or several per read; JSONStreamSplitter
#     finds complete top-level objects.  Events that arrive while waiting
#     for a command's response are queued for event_wait()/get_events().
#   - Daemon: launches a qemu-storage-daemon compatible daemon (blockd by
#     default) with a private QMP socket, waits for it, negotiates
#     capabilities; cmd()/qmp_log()/event_wait()/wait_job()/shutdown().
#   - skip(), require_program(), require_daemon_is_blockd(), main().
#
# Only the Python 3 standard library is used.

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback

SKIP_STATUS = 77

SRC_DIR = os.environ.get('SRC_DIR', os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get('BUILD_DIR', os.path.join(SRC_DIR, 'build'))
TEST_DIR = os.environ.get('TEST_DIR', os.getcwd())
SOCK_DIR = os.environ.get('SOCK_DIR', TEST_DIR)
IMGFMT = os.environ.get('IMGFMT', 'raw')
IMGPROTO = os.environ.get('IMGPROTO', 'file')
TEST_IMG = os.environ.get('TEST_IMG', os.path.join(TEST_DIR, 't.' + IMGFMT))
BLOCKD = os.environ.get('BLOCKD', os.path.join(BUILD_DIR, 'blockd'))
BLOCKD_KIND = os.environ.get('BLOCKD_KIND', 'blockd')
BLOCKD_IMG = os.environ.get('BLOCKD_IMG', os.path.join(BUILD_DIR,
                                                       'blockd-img'))
BLOCKD_IO = os.environ.get('BLOCKD_IO', os.path.join(BUILD_DIR, 'blockd-io'))
QEMU_IMG = os.environ.get('QEMU_IMG', shutil.which('qemu-img') or 'qemu-img')
QEMU_IO = os.environ.get('QEMU_IO', shutil.which('qemu-io') or 'qemu-io')
QEMU_STORAGE_DAEMON = os.environ.get(
    'QEMU_STORAGE_DAEMON',
    shutil.which('qemu-storage-daemon') or '/usr/bin/qemu-storage-daemon')
TIMEOUT = float(os.environ.get('IOTESTS_TIMEOUT', '300'))


# ---- skipping ----------------------------------------------------------

def skip(reason):
    """Skip the running test: record the reason and exit with status 77."""
    try:
        with open(os.path.join(TEST_DIR, 'skip-reason'), 'w',
                  encoding='utf-8') as f:
            f.write(reason + '\n')
    except OSError:
        pass
    sys.stdout.flush()
    print('skip: ' + reason, flush=True)
    sys.exit(SKIP_STATUS)


notrun = skip


def program_usable(path):
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def require_program(path, what=None):
    """Skip unless path (or a $PATH name) is an executable; return its path."""
    if path and os.sep not in path:
        path = shutil.which(path) or path
    if not program_usable(path):
        skip('%s %s is not available (not built or not installed)' %
             (what or 'program', path))
    return path


def require_daemon():
    """Skip unless the daemon under test exists."""
    return require_program(BLOCKD, 'daemon')


def require_daemon_is_blockd():
    """Skip unless the daemon under test is blockd itself (and is built)."""
    if BLOCKD_KIND != 'blockd':
        skip('needs blockd; daemon under test is %s' % BLOCKD)
    return require_program(BLOCKD, 'daemon')


def verify_image_format(supported_fmts=(), unsupported_fmts=()):
    if supported_fmts and IMGFMT not in supported_fmts:
        skip('format %s not supported by this test' % IMGFMT)
    if IMGFMT in unsupported_fmts:
        skip('format %s not supported by this test' % IMGFMT)


# ---- paths -------------------------------------------------------------

def file_path(*names):
    """Absolute path(s) of file(s) in the test's scratch directory."""
    paths = [os.path.join(TEST_DIR, n) for n in names]
    return paths[0] if len(paths) == 1 else paths


def sock_path(name):
    """Path for a unix socket in the short SOCK_DIR (< 108 bytes)."""
    path = os.path.join(SOCK_DIR, name)
    if len(path.encode()) >= 108:
        raise ValueError('socket path too long: %s' % path)
    return path


# ---- filters -----------------------------------------------------------
#
# Text filters take a string and return a string.  Wrapped with
# @json_filter they also accept dicts and lists and apply themselves to
# every string inside (keys are left alone), so one filter list serves
# both log('text') and log({'json': 'object'}).

def filter_qmp(obj, fn):
    """Apply fn(key, value) -> value to every leaf of a JSON value."""
    if isinstance(obj, dict):
        return {k: (filter_qmp(v, fn) if isinstance(v, (dict, list))
                    else fn(k, v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [filter_qmp(v, fn) if isinstance(v, (dict, list))
                else fn(None, v) for v in obj]
    return fn(None, obj)


def json_filter(text_fn):
    def wrapper(msg, *args, **kwargs):
        if isinstance(msg, (dict, list)):
            return filter_qmp(msg, lambda k, v: text_fn(v, *args, **kwargs)
                              if isinstance(v, str) else v)
        return text_fn(msg, *args, **kwargs)
    wrapper.__name__ = text_fn.__name__
    wrapper.__doc__ = text_fn.__doc__
    return wrapper


@json_filter
def filter_test_dir(msg):
    """Scratch paths -> TEST_DIR / SOCK_DIR."""
    pairs = sorted(((TEST_DIR, 'TEST_DIR'), (SOCK_DIR, 'SOCK_DIR')),
                   key=lambda p: len(p[0]), reverse=True)
    for path, word in pairs:
        if path:
            msg = msg.replace(path, word)
    return msg


filter_testfiles = filter_test_dir


@json_filter
def filter_imgfmt(msg):
    return msg.replace(IMGFMT, 'IMGFMT')


_QEMU_IO_TIMING = re.compile(
    r'[0-9]* ops; [0-9/:. sec]* '
    r'\([0-9/.inf]* [EPTGMKiBbytes]*/sec and [0-9/.inf]* ops/sec\)')


@json_filter
def filter_qemu_io(msg):
    """qemu-io timing lines -> 'X ops; XX:XX:XX.X (... )', test paths."""
    msg = filter_test_dir(msg)
    return _QEMU_IO_TIMING.sub(
        'X ops; XX:XX:XX.X (XXX YYY/sec and XXX ops/sec)', msg)


def filter_qmp_event(event):
    """Event timestamps -> {"seconds": "SECS", "microseconds": "USECS"}."""
    if isinstance(event, dict) and 'timestamp' in event:
        event = dict(event)
        event['timestamp'] = {'seconds': 'SECS', 'microseconds': 'USECS'}
    return event


def filter_img_info(output, filename=None, fmt=None):
    """qemu-img info text: drop sizes on disk, name the image TEST_IMG."""
    lines = []
    for line in output.split('\n'):
        if 'disk size' in line or 'actual-size' in line:
            continue
        if filename:
            line = line.replace(filename, 'TEST_IMG')
        line = filter_test_dir(line)
        if fmt:
            line = re.sub(r'\b%s\b' % re.escape(fmt), 'IMGFMT', line)
        line = re.sub(r'uuid: [-a-f0-9]+',
                      'uuid: XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX', line)
        lines.append(line)
    return '\n'.join(lines)


def filter_img_info_json(info, filename=None):
    """qemu-img info --output=json: drop sizes on disk, filter names."""
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items()
                    if k not in ('actual-size', 'dirty-flag')}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        if isinstance(obj, str):
            if filename:
                obj = obj.replace(filename, 'TEST_IMG')
            return filter_test_dir(obj)
        return obj
    return strip(info)


_PORT_RE = re.compile(r'((?:nbd|tcp)://[^/:\s"]+):[0-9]+')


@json_filter
def filter_nbd(msg):
    """NBD addresses: socket paths -> SOCK_DIR, TCP ports -> PORT."""
    msg = filter_test_dir(msg)
    msg = _PORT_RE.sub(r'\1:PORT', msg)
    msg = re.sub(r'(host|localhost|127\.0\.0\.1|\[::1\]|::1):[0-9]{2,5}\b',
                 r'\1:PORT', msg)
    msg = re.sub(r'(\bport[ =:]+)[0-9]+', r'\1PORT', msg)
    return msg


def filter_nbd_addr(obj):
    """QMP: "port": "10809" (string or number) -> "PORT"."""
    def fn(key, value):
        if key == 'port':
            return 'PORT'
        if isinstance(value, str):
            return filter_nbd(value)
        return value
    return filter_qmp(obj, fn)


_VERSION_RE = re.compile(r'\bversion [0-9]+\.[0-9]+(\.[0-9]+)?( \([^)]*\))?')


def filter_version(obj):
    """QMP greeting / query-version / --version text -> no version numbers."""
    if isinstance(obj, str):
        return _VERSION_RE.sub('version X.Y.Z (PACKAGE)', obj)

    def fix(v):
        if isinstance(v, dict):
            out = {}
            for k, val in v.items():
                if k in ('major', 'minor', 'micro') and \
                        isinstance(val, int):
                    out[k] = 'N'
                elif k == 'package' and isinstance(val, str):
                    out[k] = 'PACKAGE'
                else:
                    out[k] = fix(val)
            return out
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v
    return fix(obj)


_NODE_ID_RE = re.compile(r'#block[0-9]+')


@json_filter
def filter_generated_node_ids(msg):
    return _NODE_ID_RE.sub('NODE_NAME', msg)


def filter_chain(msg, filters):
    for f in filters:
        msg = f(msg)
    return msg


# ---- logging -----------------------------------------------------------

def _dumps(obj, indent=None):
    return json.dumps(obj, sort_keys=True, indent=indent)


def log(msg, filters=(), indent=None):
    """Print msg after the filters; dicts/lists as JSON with sorted keys."""
    msg = filter_chain(msg, filters)
    if isinstance(msg, (dict, list)):
        print(_dumps(msg, indent), flush=True)
    else:
        print(msg, flush=True)


# ---- running programs --------------------------------------------------

def run(args, input=None, env=None, timeout=None):
    """Run a program; return (exit status, stdout+stderr as text)."""
    args = [str(a) for a in args]
    proc = subprocess.run(args, input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=env,
                          timeout=timeout or TIMEOUT,
                          stdin=None if input is not None else
                          subprocess.DEVNULL)
    return proc.returncode, proc.stdout.decode('utf-8', errors='replace')


def _log_run(prog, args, filters):
    rc, out = run([prog] + list(args))
    if out:
        log(out.rstrip('\n'), filters=filters)
    return rc


def qemu_img(*args):
    return run([QEMU_IMG] + list(args))


def qemu_img_pipe(*args):
    return qemu_img(*args)[1]


def qemu_img_json(*args):
    """Run qemu-img with --output=json already in args; parse stdout."""
    rc, out = run([QEMU_IMG] + list(args))
    if rc != 0:
        raise RuntimeError('qemu-img %s failed (%d): %s' %
                           (' '.join(args), rc, out))
    return json.loads(out)


def qemu_img_create(*args):
    """qemu-img create; raises if it fails (setup step, not a test)."""
    rc, out = qemu_img('create', *args)
    if rc != 0:
        raise RuntimeError('qemu-img create %s failed: %s' %
                           (' '.join(str(a) for a in args), out))


def qemu_img_log(*args, filters=(filter_test_dir,)):
    return _log_run(QEMU_IMG, args, filters)


def qemu_io(*args):
    return run([QEMU_IO] + list(args))


def qemu_io_log(*args, filters=(filter_qemu_io,)):
    return _log_run(QEMU_IO, args, filters)


def blockd_img(*args):
    require_program(BLOCKD_IMG, 'image tool')
    return run([BLOCKD_IMG] + list(args))


def blockd_img_log(*args, filters=(filter_test_dir,)):
    require_program(BLOCKD_IMG, 'image tool')
    return _log_run(BLOCKD_IMG, args, filters)


def blockd_io(*args):
    require_program(BLOCKD_IO, 'I/O tool')
    return run([BLOCKD_IO] + list(args))


def blockd_io_log(*args, filters=(filter_qemu_io,)):
    require_program(BLOCKD_IO, 'I/O tool')
    return _log_run(BLOCKD_IO, args, filters)


def compare_images(a, b, fmt_a=None, fmt_b=None):
    """True iff qemu-img compare finds the guest-visible contents equal."""
    args = ['compare']
    if fmt_a:
        args += ['-f', fmt_a]
    if fmt_b:
        args += ['-F', fmt_b]
    rc, out = qemu_img(*(args + [a, b]))
    if rc not in (0, 1):
        raise RuntimeError('qemu-img compare failed (%d): %s' % (rc, out))
    return rc == 0


# ---- QMP ---------------------------------------------------------------

class QMPError(Exception):
    pass


class QMPTimeoutError(QMPError, TimeoutError):
    pass


class JSONStreamSplitter:
    """Splits a byte stream into complete top-level JSON objects.

    Tracks nesting depth outside strings, string state and backslash
    escapes.  Braces, brackets and quotes are ASCII, so scanning bytes is
    safe for UTF-8 even when a multi-byte character is split across
    reads.  Bytes between messages (whitespace, CR LF) are dropped.
    """

    def __init__(self):
        self.buf = bytearray()
        self.depth = 0
        self.in_string = False
        self.escape = False
        self.pos = 0           # scan position inside buf
        self.start = None      # start of the current message

    def feed(self, data):
        """Add bytes; return the list of complete messages (bytes)."""
        self.buf += data
        messages = []
        buf = self.buf
        i = self.pos
        n = len(buf)
        while i < n:
            c = buf[i]
            if self.start is None:
                if c in b' \t\r\n':
                    i += 1
                    continue
                if c not in b'{[':
                    raise QMPError('unexpected byte %r outside a JSON value'
                                   % bytes([c]))
                self.start = i
            if self.in_string:
                if self.escape:
                    self.escape = False
                elif c == 0x5c:           # backslash
                    self.escape = True
                elif c == 0x22:           # quote
                    self.in_string = False
            elif c == 0x22:
                self.in_string = True
            elif c in b'{[':
                self.depth += 1
            elif c in b'}]':
                self.depth -= 1
                if self.depth == 0:
                    messages.append(bytes(buf[self.start:i + 1]))
                    self.start = None
            i += 1
        # Drop consumed bytes
        keep_from = self.start if self.start is not None else n
        del buf[:keep_from]
        self.pos = n - keep_from
        if self.start is not None:
            self.start = 0
        return messages

    def pending(self):
        return bytes(self.buf)


class QMPClient:
    """Synchronous QMP client over a connected stream socket."""

    def __init__(self, sock):
        self.sock = sock
        self.splitter = JSONStreamSplitter()
        self.messages = []     # parsed, not yet consumed (any kind)
        self.events = []       # queued events, oldest first
        self.greeting = None
        self.closed = False

    @classmethod
    def connect_unix(cls, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return cls(s)
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def _read_some(self, deadline):
        """Read and parse more data; False on timeout."""
        if self.closed:
            raise ConnectionError('QMP connection closed')
        # A deadline in the past still allows a non-blocking look.
        remaining = None if deadline is None else \
            max(0.0, deadline - time.monotonic())
        r, _, _ = select.select([self.sock], [], [], remaining)
        if not r:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b''
        if not data:
            self.close()
            raise ConnectionError('QMP connection closed by peer')
        for raw in self.splitter.feed(data):
            self.messages.append(json.loads(raw.decode('utf-8')))
        return True

    def _next_message(self, deadline):
        while not self.messages:
            if not self._read_some(deadline):
                raise QMPTimeoutError('timed out waiting for QMP message')
        return self.messages.pop(0)

    @staticmethod
    def _deadline(timeout):
        return None if timeout is None else time.monotonic() + timeout

    def read_greeting(self, timeout=10.0):
        msg = self._next_message(self._deadline(timeout))
        if 'QMP' not in msg:
            raise QMPError('expected a QMP greeting, got %r' % (msg,))
        self.greeting = msg
        return msg

    def send(self, obj):
        if self.closed:
            raise ConnectionError('QMP connection closed')
        data = json.dumps(obj).encode('utf-8') + b'\n'
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close()
            raise ConnectionError('QMP connection closed by peer') from None

    def cmd_obj(self, obj, timeout=60.0):
        """Send a command object; return its response, queueing events."""
        self.send(obj)
        deadline = self._deadline(timeout)
        while True:
            msg = self._next_message(deadline)
            if 'event' in msg:
                self.events.append(msg)
                continue
            if 'return' in msg or 'error' in msg:
                return msg
            raise QMPError('unexpected QMP message %r' % (msg,))

    def cmd(self, name, args=None, timeout=60.0):
        obj = {'execute': name}
        if args:
            obj['arguments'] = args
        return self.cmd_obj(obj, timeout)

    def negotiate(self, timeout=10.0):
        if self.greeting is None:
            self.read_greeting(timeout)
        resp = self.cmd('qmp_capabilities', timeout=timeout)
        if resp != {'return': {}}:
            raise QMPError('qmp_capabilities failed: %r' % (resp,))
        return resp

    def _take_parsed(self):
        """Queue events already parsed (e.g. read along with a response)."""
        for msg in self.messages:
            if 'event' in msg:
                self.events.append(msg)
            else:
                raise QMPError('unexpected QMP message %r' % (msg,))
        self.messages = []

    def _poll_events(self, deadline):
        """Queue more events; True if any progress was made.

        Messages parsed earlier (that arrived in the same read as a
        response) count as progress without reading; otherwise read once,
        waiting until deadline at most.
        """
        if self.messages:
            self._take_parsed()
            return True
        got = self._read_some(deadline)
        self._take_parsed()
        return got

    def pull_event(self, wait=False, timeout=None):
        """Next queued event, or None.  wait: block up to timeout secs."""
        if not self.events and wait:
            deadline = self._deadline(timeout)
            while not self.events and self._poll_events(deadline):
                pass
        elif not self.events and not self.closed:
            while not self.events and self._poll_events(time.monotonic()):
                pass
        return self.events.pop(0) if self.events else None

    def get_events(self, wait=False, timeout=None):
        """All queued events (oldest first); clears the queue.

        wait: if nothing is queued, block up to timeout secs for an event.
        """
        if wait and not self.events:
            deadline = self._deadline(timeout)
            while not self.events and self._poll_events(deadline):
                pass
        # Pick up whatever has already arrived without blocking (after
        # shutdown, just hand out what was queued).
        while not self.closed and self._poll_events(time.monotonic()):
            pass
        events, self.events = self.events, []
        return events

    def event_wait(self, name, timeout=60.0, match=None):
        """Remove and return the first event called name matching match.

        Other events stay queued in order.  Raises QMPTimeoutError.
        """
        deadline = self._deadline(timeout)
        while True:
            for i, ev in enumerate(self.events):
                if ev.get('event') == name and event_match(ev, match):
                    return self.events.pop(i)
            if not self._poll_events(deadline):
                raise QMPTimeoutError('timed out waiting for event %s%s' %
                                      (name, ' matching %s' %
                                       _dumps(match) if match else ''))

    def wait_job(self, job_id, timeout=60.0, auto_dismiss=True,
                 dismiss=True, log_events=False, filters=()):
        """Wait for job job_id to finish; return a dict

        {'status': last status seen, 'error': error string or None,
         'completion': BLOCK_JOB_COMPLETED/CANCELLED event or None,
         'events': the job's events in arrival order}

        auto_dismiss must say how the job was started (QMP default true):
        then the job is done at status 'null'.  Otherwise, at 'concluded'
        the error (if any) is read with query-jobs and, if dismiss, the job
        is dismissed with job-dismiss and its 'null' event awaited.
        Only the job's own events are consumed; others stay queued.  A
        'created' -> 'null' pair (a command that failed to start a job of
        that id) is skipped.  log_events logs each job event (timestamps
        filtered) as it is seen.
        """
        deadline = self._deadline(timeout)
        result = {'status': None, 'error': None, 'completion': None,
                  'events': []}

        def mine(ev):
            data = ev.get('data', {})
            if ev.get('event') == 'JOB_STATUS_CHANGE':
                return data.get('id') == job_id
            if ev.get('event', '').startswith('BLOCK_JOB_'):
                return data.get('device') == job_id or \
                    data.get('id') == job_id
            return False

        def remaining():
            return None if deadline is None else \
                max(0.0, deadline - time.monotonic())

        while True:
            ev = None
            for i, queued in enumerate(self.events):
                if mine(queued):
                    ev = self.events.pop(i)
                    break
            if ev is None:
                if not self._poll_events(deadline):
                    raise QMPTimeoutError(
                        'timed out waiting for job %s; its events so far: %s'
                        % (job_id, _dumps([filter_qmp_event(e)
                                           for e in result['events']])))
                continue
            result['events'].append(ev)
            if log_events:
                log(ev, filters=[filter_qmp_event] + list(filters))
            name = ev['event']
            data = ev.get('data', {})
            if name in ('BLOCK_JOB_COMPLETED', 'BLOCK_JOB_CANCELLED'):
                result['completion'] = ev
                if data.get('error'):
                    result['error'] = data['error']
                continue
            if name != 'JOB_STATUS_CHANGE':
                continue
            if data.get('status') == 'null' and \
                    result['status'] in (None, 'created'):
                # created -> null: a job of this id that never started
                # (its command failed).  Not the job being waited for.
                result = {'status': None, 'error': None, 'completion': None,
                          'events': []}
                continue
            result['status'] = data.get('status')
            if result['status'] == 'null':
                return result
            if result['status'] == 'concluded' and not auto_dismiss:
                resp = self.cmd('query-jobs', timeout=remaining())
                for job in resp.get('return', []):
                    if job.get('id') == job_id and job.get('error'):
                        result['error'] = job['error']
                if not dismiss:
                    return result
                resp = self.cmd('job-dismiss', {'id': job_id},
                                timeout=remaining())
                if 'return' not in resp:
                    raise QMPError('job-dismiss failed: %r' % (resp,))
                # The 'null' event follows (or preceded the response).


def event_match(event, match):
    """True if every key/value of match is present in event (recursive)."""
    if match is None:
        return True
    if isinstance(match, dict):
        if not isinstance(event, dict):
            return False
        return all(k in event and event_match(event[k], v)
                   for k, v in match.items())
    if isinstance(match, list):
        if not isinstance(event, list) or len(event) != len(match):
            return False
        return all(event_match(e, m) for e, m in zip(event, match))
    return event == match


# ---- the daemon --------------------------------------------------------

class DaemonError(Exception):
    pass


class Daemon:
    """A qemu-storage-daemon compatible daemon with a private QMP socket.

    d = Daemon(args=['--blockdev', 'null-co,node-name=n0'])
    d.launch()
    d.qmp_log('query-named-block-nodes')
    d.shutdown()

    binary defaults to the daemon under test ($BLOCKD); a missing binary
    skips the test.  stdout and stderr go to TEST_DIR/<name>.log, readable
    through get_log() (also after shutdown).
    """

    _count = 0

    def __init__(self, binary=None, args=(), name=None, pidfile=False,
                 env=None):
        Daemon._count += 1
        self.binary = binary or BLOCKD
        self.args = [str(a) for a in args]
        self.name = name or 'daemon%d' % Daemon._count
        self.sock = sock_path('%s.qmp' % self.name)
        self.pidfile = file_path('%s.pid' % self.name) if pidfile else None
        self.logfile = file_path('%s.log' % self.name)
        self.env = env
        self.proc = None
        self.qmp = None
        self.exitcode = None
        self._log = None

    # context manager: always clean up the process
    def __enter__(self):
        if self.proc is None:
            self.launch()
        return self

    def __exit__(self, *exc):
        if self.proc is not None and self.exitcode is None:
            self.shutdown()
        return False

    def command_line(self):
        argv = [self.binary,
                '--chardev', 'socket,path=%s,server=on,wait=off,id=mon0' %
                self.sock,
                '--monitor', 'chardev=mon0']
        if self.pidfile:
            argv += ['--pidfile', self.pidfile]
        return argv + self.args

    def launch(self, timeout=10.0):
        require_program(self.binary, 'daemon')
        for path in (self.sock, self.pidfile):
            if path and os.path.exists(path):
                os.unlink(path)
        logf = open(self.logfile, 'wb')
        try:
            # Same process group as the test: ./check can kill leftovers.
            self.proc = subprocess.Popen(self.command_line(),
                                         stdin=subprocess.DEVNULL,
                                         stdout=logf,
                                         stderr=subprocess.STDOUT,
                                         env=self.env)
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        ready = self.pidfile or self.sock
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                self.exitcode = self.proc.returncode
                raise DaemonError('%s exited with %d during startup: %s' %
                                  (os.path.basename(self.binary),
                                   self.exitcode, self.get_log().strip()))
            if time.monotonic() >= deadline:
                self._kill()
                raise DaemonError('%s did not create %s within %gs' %
                                  (os.path.basename(self.binary), ready,
                                   timeout))
            time.sleep(0.01)
        self.qmp = QMPClient.connect_unix(
            self.sock, max(0.1, deadline - time.monotonic()))
        self.qmp.read_greeting(timeout)
        self.qmp.negotiate(timeout)
        return self

    @property
    def greeting(self):
        return self.qmp.greeting if self.qmp else None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    # ---- commands and events --------------------------------------------

    @staticmethod
    def _conv_keys(args):
        return {k.replace('_', '-'): v for k, v in args.items()}

    def cmd(self, name, args=None, conv_keys=True, timeout=60.0, **kwargs):
        """Execute a command; return the whole response dict.

        Keyword arguments have '_' turned into '-' (node_name ->
        node-name) unless conv_keys=False; args= passes a dict verbatim.
        """
        arguments = dict(args or {})
        arguments.update(self._conv_keys(kwargs) if conv_keys else kwargs)
        return self.qmp.cmd(name, arguments, timeout=timeout)

    qmp_cmd = cmd

    def cmd_ok(self, name, args=None, **kwargs):
        """Execute a command that must succeed; return its 'return' value."""
        resp = self.cmd(name, args, **kwargs)
        if 'return' not in resp:
            raise QMPError('%s failed: %s' % (name, _dumps(resp)))
        return resp['return']

    def qmp_log(self, name, args=None, filters=(filter_test_dir,),
                indent=None, conv_keys=True, **kwargs):
        """Log the command and its (filtered) response; return response."""
        arguments = dict(args or {})
        arguments.update(self._conv_keys(kwargs) if conv_keys else kwargs)
        obj = {'execute': name}
        if arguments:
            obj['arguments'] = arguments
        log(obj, filters=filters, indent=indent)
        resp = self.qmp.cmd_obj(obj)
        log(resp, filters=filters, indent=indent)
        return resp

    def event_wait(self, name, timeout=60.0, match=None):
        return self.qmp.event_wait(name, timeout, match)

    def get_events(self, wait=False, timeout=None):
        return self.qmp.get_events(wait, timeout)

    def pull_event(self, wait=False, timeout=None):
        return self.qmp.pull_event(wait, timeout)

    def wait_job(self, job_id, timeout=60.0, auto_dismiss=True,
                 dismiss=True, log_events=False, filters=()):
        """See QMPClient.wait_job()."""
        return self.qmp.wait_job(job_id, timeout, auto_dismiss, dismiss,
                                 log_events, filters)

    # ---- shutdown --------------------------------------------------------

    def _wait(self, timeout):
        try:
            self.exitcode = self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _kill(self):
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.exitcode = self.proc.wait()

    def shutdown(self, timeout=10.0, use_quit=True, term_timeout=5.0):
        """Stop the daemon: 'quit', then SIGTERM, then SIGKILL.

        Returns the exit code (negative: killed by that signal).
        """
        if self.proc is None:
            return None
        if self.exitcode is not None:
            return self.exitcode
        if use_quit and self.qmp and not self.qmp.closed:
            try:
                resp = self.qmp.cmd('quit', timeout=timeout)
                if 'return' not in resp:
                    raise QMPError('quit failed: %r' % (resp,))
            except (OSError, QMPError):
                pass
        if not self._wait(timeout if use_quit else 0):
            self.proc.send_signal(signal.SIGTERM)
            if not self._wait(term_timeout):
                self._kill()
        if self.qmp:
            # Keep events that arrived before the socket was closed.
            try:
                while self.qmp._poll_events(time.monotonic()):
                    pass
            except (OSError, QMPError):
                pass
            self.qmp.close()
        return self.exitcode

    def get_log(self):
        """The daemon's stdout+stderr so far."""
        try:
            with open(self.logfile, encoding='utf-8', errors='replace') as f:
                return f.read()
        except OSError:
            return ''


# ---- test entry point ----------------------------------------------------

def main(test_fn=None, supported_fmts=(), unsupported_fmts=(),
         required_programs=(), requires_blockd=False):
    """Run test_fn() after the usual checks, like QEMU's script_main().

    Skips (exit 77) for unsupported formats or missing programs; an
    exception prints its traceback and exits 1.
    """
    verify_image_format(supported_fmts, unsupported_fmts)
    for prog in required_programs:
        require_program(prog)
    if requires_blockd:
        require_daemon_is_blockd()
    if test_fn is None:
        return
    try:
        test_fn()
    except SystemExit:
        raise
    except BaseException:
        sys.stdout.flush()
        traceback.print_exc()
        sys.stderr.flush()
        sys.exit(1)
    sys.stdout.flush()


script_main = main
