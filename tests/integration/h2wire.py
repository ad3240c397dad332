"""A minimal hand-made HTTP/2 (h2c, prior knowledge) + gRPC client for the robustness tests.

No third-party library: frames are built with struct, request headers are HPACK-encoded as
"literal header field without indexing — new name" (no Huffman), and the server's header blocks
are decoded by a small but complete HPACK decoder (static table, dynamic table, all literal forms,
table size updates, and Huffman-coded strings with the code of RFC 7541 Appendix B).

It is deliberately permissive as a client (it may send things a real client never would: bad
lengths, too many streams, a torn frame) and strict as a reader of what the server sends back.
"""

import select
import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
# flags
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# settings
SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6

GRPC_CONTENT_TYPE = "application/grpc"


# --------------------------------------------------------------------------------------------
# HPACK (RFC 7541)

STATIC_TABLE = [
    None,
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
    ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
    ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
    ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
    ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
    ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""),
    ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
    ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
]
assert len(STATIC_TABLE) == 62


def _huffman_lengths():
    """Code lengths of RFC 7541 Appendix B; the code itself is canonical (assigned in order of
    length, then symbol), so the lengths determine it completely."""
    lengths = {}

    def group(n, syms):
        for c in syms:
            lengths[ord(c) if isinstance(c, str) else c] = n

    group(5, "012aceiost")
    group(6, " %-./3456789=A_bdfghlmnpru")
    group(7, ":BCDEFGHIJKLMNOPQRSTUVWYjkqvwxyz")
    group(8, "&*,;XZ")
    group(10, "!\"()?")
    group(11, "'+|")
    group(12, "#>")
    group(13, [0] + list("$@[]~"))
    group(14, "^}")
    group(15, "<`{")
    group(19, ["\\", 195, 208])
    group(20, [128, 130, 131, 162, 184, 194, 224, 226])
    group(21, [153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230])
    group(22, [129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173, 178,
               181, 185, 186, 187, 189, 190, 196, 198, 228, 232, 233])
    group(23, [1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158,
               165, 166, 168, 174, 175, 180, 182, 183, 188, 191, 197, 231, 239])
    group(24, [9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237])
    group(25, [199, 207, 234, 235])
    group(26, [192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255])
    group(27, [203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250,
               251, 252, 253, 254])
    group(30, [10, 13, 22, 256])
    for sym in list(range(2, 32)) + [127, 220, 249]:
        lengths.setdefault(sym, 28)
    assert sorted(lengths) == list(range(257))
    return lengths


def _huffman_codes():
    lengths = _huffman_lengths()
    codes, code, prev = {}, 0, None
    for sym in sorted(lengths, key=lambda s: (lengths[s], s)):
        n = lengths[sym]
        if prev is not None:
            code = (code + 1) << (n - prev)
        prev = n
        codes[sym] = (code, n)
    assert codes[256] == (0x3FFFFFFF, 30)  # EOS: thirty ones
    return codes


HUFFMAN_CODES = _huffman_codes()  # symbol -> (code, length)
_HUFFMAN_DECODE = {(n, code): sym for sym, (code, n) in HUFFMAN_CODES.items()}


class HpackError(Exception):
    pass


def huffman_encode(data):
    acc, nbits, out = 0, 0, bytearray()
    for b in data:
        code, n = HUFFMAN_CODES[b]
        acc = (acc << n) | code
        nbits += n
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
    if nbits:
        out.append(((acc << (8 - nbits)) | ((1 << (8 - nbits)) - 1)) & 0xFF)
    return bytes(out)


def huffman_decode(data):
    out = bytearray()
    code, n = 0, 0
    for byte in data:
        for i in range(7, -1, -1):
            code = (code << 1) | ((byte >> i) & 1)
            n += 1
            sym = _HUFFMAN_DECODE.get((n, code))
            if sym is not None:
                if sym == 256:
                    raise HpackError("EOS in a Huffman-coded string")
                out.append(sym)
                code, n = 0, 0
            elif n > 30:
                raise HpackError("bad Huffman code")
    # padding: at most 7 bits, all ones (a prefix of EOS)
    if n > 7 or code != (1 << n) - 1:
        raise HpackError("bad Huffman padding")
    return bytes(out)


def _int_decode(buf, pos, prefix_bits):
    mask = (1 << prefix_bits) - 1
    if pos >= len(buf):
        raise HpackError("truncated integer")
    value = buf[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        if pos >= len(buf):
            raise HpackError("truncated integer")
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos
        if shift > 35:
            raise HpackError("integer too large")


def _int_encode(value, prefix_bits, first_byte_flags=0):
    mask = (1 << prefix_bits) - 1
    if value < mask:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | mask])
    value -= mask
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _str_decode(buf, pos):
    if pos >= len(buf):
        raise HpackError("truncated string")
    huff = buf[pos] & 0x80
    length, pos = _int_decode(buf, pos, 7)
    if pos + length > len(buf):
        raise HpackError("truncated string")
    raw = bytes(buf[pos:pos + length])
    pos += length
    return (huffman_decode(raw) if huff else raw), pos


def _str_encode(s, huffman=False):
    b = s.encode() if isinstance(s, str) else s
    if huffman:
        h = huffman_encode(b)
        return _int_encode(len(h), 7, 0x80) + h
    return _int_encode(len(b), 7) + b


def encode_headers(headers, huffman=False):
    """Header block: every field as a literal without indexing, with a literal name."""
    out = bytearray()
    for name, value in headers:
        out += b"\x00" + _str_encode(name, huffman) + _str_encode(value, huffman)
    return bytes(out)


class HpackDecoder:
    def __init__(self, max_size=4096):
        self.dynamic = []  # newest first
        self.size = 0
        self.max_size = max_size
        self.settings_max = max_size

    def _entry(self, index):
        if index == 0:
            raise HpackError("index 0")
        if index < len(STATIC_TABLE):
            return STATIC_TABLE[index]
        i = index - len(STATIC_TABLE)
        if i >= len(self.dynamic):
            raise HpackError(f"index {index} out of range")
        return self.dynamic[i]

    def _evict(self):
        while self.size > self.max_size and self.dynamic:
            n, v = self.dynamic.pop()
            self.size -= len(n.encode()) + len(v.encode()) + 32

    def _add(self, name, value):
        self.dynamic.insert(0, (name, value))
        self.size += len(name.encode()) + len(value.encode()) + 32
        self._evict()

    def decode(self, block):
        headers, pos = [], 0
        while pos < len(block):
            b = block[pos]
            if b & 0x80:  # indexed
                index, pos = _int_decode(block, pos, 7)
                headers.append(self._entry(index))
            elif b & 0xC0 == 0x40:  # literal with incremental indexing
                index, pos = _int_decode(block, pos, 6)
                if index:
                    name = self._entry(index)[0]
                else:
                    n, pos = _str_decode(block, pos)
                    name = n.decode("latin-1")
                v, pos = _str_decode(block, pos)
                value = v.decode("latin-1")
                headers.append((name, value))
                self._add(name, value)
            elif b & 0xE0 == 0x20:  # dynamic table size update
                size, pos = _int_decode(block, pos, 5)
                if size > self.settings_max:
                    raise HpackError("table size update above the limit")
                self.max_size = size
                self._evict()
            else:  # literal without indexing (0000) / never indexed (0001)
                index, pos = _int_decode(block, pos, 4)
                if index:
                    name = self._entry(index)[0]
                else:
                    n, pos = _str_decode(block, pos)
                    name = n.decode("latin-1")
                v, pos = _str_decode(block, pos)
                headers.append((name, v.decode("latin-1")))
        return headers


# --------------------------------------------------------------------------------------------
# Frames

def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags,
                                                             stream_id & 0x7FFFFFFF) + payload


def settings_frame(settings=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b"".join(struct.pack(">HI", k, v) for k, v in settings))


def window_update(stream_id, increment):
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def grpc_message(payload, length=None, compressed=False):
    """The 5-byte gRPC length prefix and the message (length may lie)."""
    n = len(payload) if length is None else length
    return struct.pack(">BI", 1 if compressed else 0, n) + payload


def request_headers(path, authority="127.0.0.1", content_type=GRPC_CONTENT_TYPE, extra=()):
    h = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", authority)]
    if content_type is not None:
        h.append(("content-type", content_type))
    h.append(("te", "trailers"))
    h.extend(extra)
    return h


class Stream:
    def __init__(self, sid):
        self.id = sid
        self.headers = None   # first header block (response headers, or trailers-only)
        self.trailers = None  # second header block
        self.data = bytearray()
        self.ended = False    # END_STREAM seen from the server
        self.rst = None       # RST_STREAM error code from the server
        self.send_window = 0
        self.recv_window = 0

    @property
    def done(self):
        return self.ended or self.rst is not None

    def header(self, name):
        for block in (self.trailers, self.headers):
            for n, v in block or ():
                if n == name:
                    return v
        return None

    @property
    def status(self):
        """HTTP :status (str) or None."""
        for n, v in self.headers or ():
            if n == ":status":
                return v
        return None

    @property
    def grpc_status(self):
        """grpc-status (int) from the trailers (or a trailers-only response), or None."""
        v = self.header("grpc-status")
        return int(v) if v is not None else None

    @property
    def grpc_message(self):
        return self.header("grpc-message")

    def messages(self):
        """The gRPC messages of the response body (payloads)."""
        out, pos, d = [], 0, bytes(self.data)
        while pos + 5 <= len(d):
            _, n = struct.unpack(">BI", d[pos:pos + 5])
            out.append(d[pos + 5:pos + 5 + n])
            pos += 5 + n
        return out

    def __repr__(self):
        return (f"Stream({self.id}, headers={self.headers}, trailers={self.trailers}, "
                f"data={len(self.data)}B, ended={self.ended}, rst={self.rst})")


class ConnectionClosed(Exception):
    pass


class H2Conn:
    """One h2c connection. Reads are driven by the caller (pump / wait_*)."""

    def __init__(self, host, port, timeout=10, window=1 << 24, conn_window=1 << 30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.decoder = HpackDecoder()
        self.streams = {}
        self.next_id = 1
        self.closed = False
        self.goaway = None  # (last_stream_id, error_code, debug)
        self.server_settings = {}
        self.settings_received = False
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.conn_send_window = 65535
        self.received_window_used = 0
        self._hdr_sid = None
        self._hdr_block = bytearray()
        self._hdr_end_stream = False
        self.sock.sendall(PREFACE + settings_frame([
            (SETTINGS_ENABLE_PUSH, 0),
            (SETTINGS_INITIAL_WINDOW_SIZE, window),
            (SETTINGS_MAX_FRAME_SIZE, 16384)])
            + (window_update(0, conn_window) if conn_window else b""))
        # what the server may still send us (RFC 7540 6.9): checked against what it does send
        self.recv_conn_window = 65535 + conn_window
        self.recv_initial_window = window
        self.overrun = 0

    # ---- sending

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.closed = True
            raise ConnectionClosed(str(e))

    def new_stream(self):
        sid = self.next_id
        self.next_id += 2
        st = Stream(sid)
        st.send_window = self.peer_initial_window
        st.recv_window = self.recv_initial_window
        self.streams[sid] = st
        return st

    def headers_frame(self, sid, headers, end_stream=False):
        return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid,
                     encode_headers(headers))

    def open(self, path, end_stream=False, **kw):
        """Starts a request stream: sends its HEADERS. Returns the Stream."""
        st = self.new_stream()
        self.send(self.headers_frame(st.id, request_headers(path, **kw), end_stream))
        return st

    def send_data(self, st, data, end_stream=True, deadline=30):
        """Sends data on st respecting flow control (and the peer's max frame size), reading
        the server's frames while the windows are exhausted. Stops early (returns False) if
        the server ends or resets the stream, or the connection closes."""
        end = time.monotonic() + deadline
        view = memoryview(data)
        pos = 0
        while True:
            if st.done or self.closed:
                return False
            n = min(len(view) - pos, self.peer_max_frame, st.send_window, self.conn_send_window)
            if n > 0 or (pos == len(view)):
                last = pos + n == len(view)
                self.send(frame(DATA, END_STREAM if (last and end_stream) else 0, st.id,
                                bytes(view[pos:pos + n])))
                pos += n
                st.send_window -= n
                self.conn_send_window -= n
                if last:
                    return True
                self.pump(0)
            else:
                if time.monotonic() > end:
                    raise TimeoutError(f"flow control window stayed shut; {st}")
                self.pump(0.2)

    def call(self, path, message, **kw):
        """A unary gRPC call: HEADERS, one framed message (END_STREAM). Returns the Stream
        (not waited for)."""
        st = self.open(path, **kw)
        self.send_data(st, grpc_message(message))
        return st

    # ---- receiving

    def pump(self, timeout):
        """Reads what arrives within timeout seconds (0: only what is there) and handles it."""
        if self.closed:
            return
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return
        try:
            chunk = self.sock.recv(1 << 20)
        except (ConnectionResetError, socket.timeout, TimeoutError):
            chunk = b""
        if not chunk:
            self.closed = True
            return
        self.buf += chunk
        self._parse()

    def _parse(self):
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + length:
                return
            ftype, flags, sid = struct.unpack(">BBI", self.buf[3:9])
            sid &= 0x7FFFFFFF
            payload = bytes(self.buf[9:9 + length])
            del self.buf[:9 + length]
            self._handle(ftype, flags, sid, payload)

    def _handle(self, ftype, flags, sid, payload):
        if ftype == SETTINGS:
            if flags & ACK:
                return
            self.settings_received = True
            for i in range(0, len(payload), 6):
                k, v = struct.unpack(">HI", payload[i:i + 6])
                self.server_settings[k] = v
                if k == SETTINGS_INITIAL_WINDOW_SIZE:
                    delta = v - self.peer_initial_window
                    self.peer_initial_window = v
                    for st in self.streams.values():
                        st.send_window += delta
                elif k == SETTINGS_MAX_FRAME_SIZE:
                    self.peer_max_frame = v
            self.send(settings_frame(ack=True))
        elif ftype == PING:
            if not flags & ACK:
                self.send(frame(PING, ACK, 0, payload))
        elif ftype == WINDOW_UPDATE:
            inc = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            if sid == 0:
                self.conn_send_window += inc
            elif sid in self.streams:
                self.streams[sid].send_window += inc
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code, payload[8:])
        elif ftype == RST_STREAM:
            st = self.streams.get(sid)
            if st is not None:
                st.rst = struct.unpack(">I", payload)[0]
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                pos = 0
                pad = 0
                if flags & PADDED:
                    pad = payload[0]
                    pos = 1
                if flags & PRIORITY_FLAG:
                    pos += 5
                self._hdr_sid = sid
                self._hdr_block = bytearray(payload[pos:len(payload) - pad])
                self._hdr_end_stream = bool(flags & END_STREAM)
            else:
                self._hdr_block += payload
            if flags & END_HEADERS:
                hdrs = self.decoder.decode(bytes(self._hdr_block))
                st = self.streams.get(self._hdr_sid)
                if st is not None:
                    if st.headers is None:
                        st.headers = hdrs
                    else:
                        st.trailers = hdrs
                    if self._hdr_end_stream:
                        st.ended = True
        elif ftype == DATA:
            body = payload
            if flags & PADDED:
                body = payload[1:len(payload) - payload[0]]
            st = self.streams.get(sid)
            self.recv_conn_window -= len(payload)
            self.overrun = max(self.overrun, -self.recv_conn_window)
            if st is not None:
                st.recv_window -= len(payload)
                self.overrun = max(self.overrun, -st.recv_window)
                st.data += body
                if flags & END_STREAM:
                    st.ended = True
            # give the credit back so long responses never stall
            self.received_window_used += len(payload)
            if self.received_window_used >= min(32768, self.recv_initial_window):
                self.send(window_update(0, self.received_window_used))
                self.recv_conn_window += self.received_window_used
                self.received_window_used = 0
            if st is not None and len(payload) and not st.done:
                self.send(window_update(sid, len(payload)))
                st.recv_window += len(payload)

    def max_window_overrun(self):
        """The most bytes the server sent beyond a window it had been given (0: never)."""
        return self.overrun

    def wait(self, pred, timeout=10):
        """Pumps until pred() is true, the connection closes, or timeout; returns pred()."""
        end = time.monotonic() + timeout
        while not pred():
            if self.closed:
                break
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                self.pump(min(left, 0.2))
            except ConnectionClosed:
                break  # answering a frame found the peer gone: closed is what we wait for
        return pred()

    def wait_stream(self, st, timeout=10):
        return self.wait(lambda: st.done, timeout)

    def handshake(self, timeout=10):
        """Waits for the server's SETTINGS (True if they came)."""
        return self.wait(lambda: self.settings_received, timeout)

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


def recv_until_closed(sock, timeout):
    """Reads from a raw socket until EOF/reset or timeout. Returns (data, closed)."""
    end = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return bytes(data), False
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            continue
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return bytes(data), True
        if not chunk:
            return bytes(data), True
        data += chunk
