"""A tiny NBD client for iotests, able to misbehave on purpose.

Speaks the fixed newstyle handshake, structured replies and the
transmission phase with plain blocking sockets (Python 3 stdlib only),
and lets a test send exactly the bytes it wants: bad magic, truncated
options, absurd lengths, requests past the end, a connection dropped in
the middle of a request.  Every receive has a timeout, so a server that
hangs fails the test instead of blocking it.
"""

import socket
import struct

NBD_INIT_MAGIC = 0x4e42444d41474943
NBD_OPTS_MAGIC = 0x49484156454F5054
NBD_REP_MAGIC = 0x0003e889045565a9
NBD_REQUEST_MAGIC = 0x25609513
NBD_SIMPLE_REPLY_MAGIC = 0x67446698
NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef

FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_SET_META_CONTEXT = 10

REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
REP_ERR_UNSUP = 2**31 + 1
REP_ERR_INVALID = 2**31 + 3
REP_ERR_UNKNOWN = 2**31 + 6

CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_BLOCK_STATUS = 7

REPLY_FLAG_DONE = 1
REPLY_TYPE_NONE = 0
REPLY_TYPE_OFFSET_DATA = 1
REPLY_TYPE_OFFSET_HOLE = 2
REPLY_TYPE_BLOCK_STATUS = 5

EPERM = 1
EINVAL = 22
EOVERFLOW = 75

ERRNAMES = {0: 'OK', 1: 'EPERM', 5: 'EIO', 12: 'ENOMEM', 22: 'EINVAL',
            28: 'ENOSPC', 75: 'EOVERFLOW', 95: 'ENOTSUP', 108: 'ESHUTDOWN'}


class Closed(Exception):
    """The server closed the connection."""


class Client:
    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.structured = False

    def close(self):
        self.sock.close()

    # ---- raw bytes ----

    def send(self, data):
        self.sock.sendall(data)

    def send_quiet(self, data):
        """Send, ignoring a server that hung up already."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def recv(self, n):
        buf = b''
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise Closed('server closed the connection')
            buf += chunk
        return buf

    def is_closed(self):
        """True if the server hangs up (reads EOF) within the timeout."""
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    # ---- handshake ----

    def greeting(self, cflags=FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES):
        magic, opts, hflags = struct.unpack('>QQH', self.recv(18))
        assert magic == NBD_INIT_MAGIC and opts == NBD_OPTS_MAGIC
        self.send(struct.pack('>I', cflags))
        return hflags

    def option(self, opt, data=b'', length=None, magic=NBD_OPTS_MAGIC):
        if length is None:
            length = len(data)
        self.send(struct.pack('>QII', magic, opt, length) + data)

    def reply(self):
        magic, opt, rtype, length = struct.unpack('>QIII', self.recv(20))
        assert magic == NBD_REP_MAGIC, hex(magic)
        return opt, rtype, self.recv(length)

    def replies_until_final(self):
        """Replies up to the ACK or an error; returns them all."""
        out = []
        while True:
            r = self.reply()
            out.append(r)
            if r[1] == REP_ACK or r[1] & 2**31:
                return out

    def structured_reply(self):
        self.option(OPT_STRUCTURED_REPLY)
        assert self.reply()[1] == REP_ACK
        self.structured = True

    def set_meta_context(self, export, *queries):
        name = export.encode()
        data = struct.pack('>I', len(name)) + name
        data += struct.pack('>I', len(queries))
        for q in queries:
            data += struct.pack('>I', len(q)) + q.encode()
        self.option(OPT_SET_META_CONTEXT, data)
        return self.replies_until_final()

    def go(self, export):
        """GO; returns (size, transmission flags) or raises on error."""
        name = export.encode()
        self.option(OPT_GO, struct.pack('>I', len(name)) + name +
                    struct.pack('>H', 0))
        size = flags = None
        for _, rtype, data in self.replies_until_final():
            if rtype & 2**31:
                raise RuntimeError('GO failed: %d %r' % (rtype - 2**31, data))
            if rtype == REP_INFO and struct.unpack('>H', data[:2])[0] == 0:
                size, flags = struct.unpack('>QH', data[2:12])
        return size, flags

    def connect_export(self, export, structured=True):
        self.greeting()
        if structured:
            self.structured_reply()
        return self.go(export)

    # ---- transmission ----

    def request(self, rtype, offset=0, length=0, flags=0, cookie=1,
                payload=b'', magic=NBD_REQUEST_MAGIC):
        self.send(struct.pack('>IHHQQI', magic, flags, rtype, cookie, offset,
                              length) + payload)

    def simple_reply(self, datalen=0):
        magic, err, cookie = struct.unpack('>IIQ', self.recv(16))
        assert magic == NBD_SIMPLE_REPLY_MAGIC, hex(magic)
        data = self.recv(datalen) if err == 0 and datalen else b''
        return err, cookie, data

    def chunks(self):
        """All chunks of one structured reply: [(type, payload)], error."""
        out = []
        err = 0
        while True:
            magic, flags, ctype, cookie, length = \
                struct.unpack('>IHHQI', self.recv(20))
            assert magic == NBD_STRUCTURED_REPLY_MAGIC, hex(magic)
            payload = self.recv(length)
            if ctype & 0x8000:
                err = struct.unpack('>I', payload[:4])[0]
            out.append((ctype, payload))
            if flags & REPLY_FLAG_DONE:
                return out, err

    def result(self, datalen=0):
        """Error of the next reply (simple or structured)."""
        if self.structured:
            return self.chunks()[1]
        return self.simple_reply(datalen)[0]

    def read(self, offset, length, flags=0):
        """READ; returns (error, data with holes filled)."""
        self.request(CMD_READ, offset, length, flags)
        if not self.structured:
            err, _, data = self.simple_reply(length)
            return err, data
        buf = bytearray(length)
        chunks, err = self.chunks()
        for ctype, payload in chunks:
            if ctype == REPLY_TYPE_OFFSET_DATA:
                off = struct.unpack('>Q', payload[:8])[0] - offset
                buf[off:off + len(payload) - 8] = payload[8:]
        return err, bytes(buf)

    def disconnect(self):
        self.request(CMD_DISC)
        self.close()
