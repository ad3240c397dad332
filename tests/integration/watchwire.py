"""Watch (etcdserverpb.Watch/Watch) clients for tests/integration/test_watch.py.

The generated stubs of python3-etcd3 (etcd3.etcdrpc) predate etcd 3.4's Watch: they lack
WatchCreateRequest.watch_id and .fragment, WatchRequest.progress_request and
WatchResponse.fragment. So the Watch messages are encoded and decoded here, by hand, from etcd
3.4's rpc.proto and kv.proto (field numbers below), and sent over python3-grpcio with identity
serializers. Every decoded message keeps its raw bytes (.raw), so that a test can reason about
encoded sizes exactly as etcd does (it fragments by WatchResponse.Size()).

WatchStream: one bidirectional Watch stream with a reader thread; every wait has a deadline.
CtlWatch: `etcdctl watch ...` as a child process with its stdout collected as it comes.
"""

import os
import queue
import subprocess
import threading
import time

import grpc

from conftest import ETCDCTL, clean_env

WATCH_METHOD = "/etcdserverpb.Watch/Watch"
PUT, DELETE = 0, 1            # mvccpb.Event.EventType
NOPUT, NODELETE = 0, 1        # WatchCreateRequest.FilterType
INVALID_WATCH_ID = -1         # clientv3.InvalidWatchID
STREAM_DEADLINE = 300         # seconds: a safety net on every stream (never reached if well)
MAX_MSG = 64 * 1024 * 1024    # receive limit of our channels (gRPC's default is 4 MiB)


# --------------------------------------------------------------------------------------------
# protobuf wire format, the few pieces needed

def _varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_varint(num, value):
    return _varint(num << 3) + _varint(value) if value else b""


def _field_bytes(num, data, always=False):
    if not data and not always:
        return b""
    return _varint((num << 3) | 2) + _varint(len(data)) + data


def _read_varint(buf, pos):
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint too long")


def _signed(n):
    return n - (1 << 64) if n >= 1 << 63 else n


def _fields(buf):
    """(field number, wire type, value) of each field in buf: an int for varints, bytes for
    length-delimited fields."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = _read_varint(buf, pos)
        elif wt == 2:
            n, pos = _read_varint(buf, pos)
            v = bytes(buf[pos:pos + n])
            if len(v) != n:
                raise ValueError("truncated field")
            pos += n
        elif wt == 1:
            v, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wt == 5:
            v, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def to_bytes(s):
    return s.encode() if isinstance(s, str) else bytes(s)


def prefix_end(prefix):
    """The range_end covering every key that starts with prefix (etcd's clientv3.GetPrefixRangeEnd
    for a non-empty prefix without a trailing 0xff)."""
    prefix = to_bytes(prefix)
    return prefix[:-1] + bytes([prefix[-1] + 1])


# --------------------------------------------------------------------------------------------
# requests (etcdserverpb.WatchRequest)

def create_request(key, range_end=b"", start_revision=0, progress_notify=False, filters=(),
                   prev_kv=False, watch_id=0, fragment=False):
    """A WatchRequest{create_request}, encoded. filters: NOPUT/NODELETE (sent packed)."""
    c = (_field_bytes(1, to_bytes(key)) + _field_bytes(2, to_bytes(range_end))
         + _field_varint(3, start_revision) + _field_varint(4, int(progress_notify)))
    if filters:
        c += _field_bytes(5, b"".join(_varint(f) for f in filters))
    c += (_field_varint(6, int(prev_kv)) + _field_varint(7, watch_id)
          + _field_varint(8, int(fragment)))
    return _field_bytes(1, c, always=True)


def cancel_request(watch_id):
    return _field_bytes(2, _field_varint(1, watch_id), always=True)


def progress_request():
    return _field_bytes(3, b"", always=True)


# --------------------------------------------------------------------------------------------
# responses (etcdserverpb.WatchResponse, mvccpb.Event, mvccpb.KeyValue)

class Header:
    __slots__ = ("cluster_id", "member_id", "revision", "raft_term")

    def __init__(self, buf):
        self.cluster_id = self.member_id = self.revision = self.raft_term = 0
        for num, wt, v in _fields(buf):
            if wt != 0:
                continue
            if num == 1:
                self.cluster_id = v
            elif num == 2:
                self.member_id = v
            elif num == 3:
                self.revision = _signed(v)
            elif num == 4:
                self.raft_term = v

    def __repr__(self):
        return f"Header(rev={self.revision})"


class KeyValue:
    __slots__ = ("key", "create_revision", "mod_revision", "version", "value", "lease")

    def __init__(self, buf):
        self.key = self.value = b""
        self.create_revision = self.mod_revision = self.version = self.lease = 0
        for num, wt, v in _fields(buf):
            if num == 1 and wt == 2:
                self.key = v
            elif num == 2 and wt == 0:
                self.create_revision = _signed(v)
            elif num == 3 and wt == 0:
                self.mod_revision = _signed(v)
            elif num == 4 and wt == 0:
                self.version = _signed(v)
            elif num == 5 and wt == 2:
                self.value = v
            elif num == 6 and wt == 0:
                self.lease = _signed(v)

    def tuple(self):
        return (self.key, self.value, self.create_revision, self.mod_revision, self.version)

    def __repr__(self):
        return (f"KV({self.key!r}={self.value[:20]!r} c{self.create_revision} "
                f"m{self.mod_revision} v{self.version})")


class Event:
    __slots__ = ("type", "kv", "prev_kv", "raw")

    def __init__(self, buf):
        self.raw = buf
        self.type = PUT
        self.kv = self.prev_kv = None
        for num, wt, v in _fields(buf):
            if num == 1 and wt == 0:
                self.type = v
            elif num == 2 and wt == 2:
                self.kv = KeyValue(v)
            elif num == 3 and wt == 2:
                self.prev_kv = KeyValue(v)

    @property
    def type_name(self):
        return {PUT: "PUT", DELETE: "DELETE"}.get(self.type, str(self.type))

    def __repr__(self):
        prev = f" prev={self.prev_kv!r}" if self.prev_kv is not None else ""
        return f"{self.type_name} {self.kv!r}{prev}"


class WatchResponse:
    __slots__ = ("header", "watch_id", "created", "canceled", "compact_revision",
                 "cancel_reason", "fragment", "events", "raw", "other_fields")

    def __init__(self, buf):
        self.raw = buf
        self.header = None
        self.watch_id = self.compact_revision = 0
        self.created = self.canceled = self.fragment = False
        self.cancel_reason = ""
        self.events = []
        self.other_fields = []
        for num, wt, v in _fields(buf):
            if num == 1 and wt == 2:
                self.header = Header(v)
            elif num == 2 and wt == 0:
                self.watch_id = _signed(v)
            elif num == 3 and wt == 0:
                self.created = bool(v)
            elif num == 4 and wt == 0:
                self.canceled = bool(v)
            elif num == 5 and wt == 0:
                self.compact_revision = _signed(v)
            elif num == 6 and wt == 2:
                self.cancel_reason = v.decode()
            elif num == 7 and wt == 0:
                self.fragment = bool(v)
            elif num == 11 and wt == 2:
                self.events.append(Event(v))
            else:
                self.other_fields.append(num)

    @property
    def revision(self):
        return self.header.revision if self.header is not None else None

    def __repr__(self):
        flags = [f for f in ("created", "canceled", "fragment") if getattr(self, f)]
        extra = f" compact={self.compact_revision}" if self.compact_revision else ""
        extra += f" reason={self.cancel_reason!r}" if self.cancel_reason else ""
        return (f"WatchResponse(id={self.watch_id} rev={self.revision} {'/'.join(flags)}{extra} "
                f"events={self.events!r})")


def size_with(resp_raw, event_raw):
    """The encoded size of a WatchResponse of resp_raw bytes with one more event appended."""
    return (len(resp_raw) + len(_varint((11 << 3) | 2)) + len(_varint(len(event_raw)))
            + len(event_raw))


# --------------------------------------------------------------------------------------------
# one bidirectional stream

_END = object()


class StreamEnded(Exception):
    """The server ended the stream (OK status, or the RpcError as .error)."""

    def __init__(self, error=None):
        super().__init__(repr(error) if error is not None else "stream ended")
        self.error = error


class WatchStream:
    """A Watch stream to endpoint ("host:port") on its own channel. A reader thread moves every
    response into a queue, unless paused: pause() stops it taking more from gRPC (the slow
    consumer), resume() lets it go on. Always close() it (it is also a context manager)."""

    def __init__(self, endpoint, paused=False, metadata=None):
        self.endpoint = endpoint
        self.channel = grpc.insecure_channel(
            endpoint, options=[("grpc.max_receive_message_length", MAX_MSG),
                               ("grpc.max_send_message_length", MAX_MSG)])
        self._requests = queue.Queue()
        method = self.channel.stream_stream(WATCH_METHOD, request_serializer=lambda b: b,
                                            response_deserializer=WatchResponse)
        self.call = method(iter(self._requests.get, _END), timeout=STREAM_DEADLINE,
                           metadata=metadata)
        self.responses = queue.Queue()
        self.received = 0
        self._gate = threading.Event()
        if not paused:
            self._gate.set()
        self._closing = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        try:
            while True:
                self._gate.wait()
                if self._closing:
                    return
                r = next(self.call)
                self.received += 1
                self.responses.put(r)
        except StopIteration:
            self.responses.put(StreamEnded())
        except grpc.RpcError as e:
            self.responses.put(StreamEnded(e))
        except Exception as e:  # noqa: BLE001 - a decoding error: hand it to the test
            self.responses.put(e)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def pause(self):
        self._gate.clear()

    def resume(self):
        self._gate.set()

    def send(self, request):
        self._requests.put(request)

    def create(self, key, **kw):
        """Sends a create request and returns the next response, which must be its "created"
        answer (with canceled=False unless expect_canceled)."""
        expect_canceled = kw.pop("expect_canceled", False)
        timeout = kw.pop("timeout", 15)
        self.send(create_request(key, **kw))
        r = self.next(timeout)
        assert r.created, f"expected a created response, got {r!r}"
        assert r.canceled == expect_canceled, r
        assert not r.events, r
        return r

    def cancel(self, watch_id):
        self.send(cancel_request(watch_id))

    def progress(self):
        self.send(progress_request())

    def next(self, timeout=15):
        """The next response; fails the test if none comes within timeout seconds; raises
        StreamEnded if the stream ended."""
        try:
            r = self.responses.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no watch response within {timeout}s from {self.endpoint}")
        if isinstance(r, Exception):
            self.responses.put(r)  # it stays ended
            raise r
        return r

    def pending(self):
        """Responses already received and not yet taken (without waiting)."""
        out = []
        while True:
            try:
                r = self.responses.get_nowait()
            except queue.Empty:
                return out
            if isinstance(r, Exception):
                self.responses.put(r)
                return out
            out.append(r)

    def no_response_before_barrier(self):
        """Sends a progress request and returns every response that came before its answer
        (the answer itself, watch_id -1 with no events, is consumed)."""
        self.progress()
        before = []
        while True:
            r = self.next()
            if r.watch_id == INVALID_WATCH_ID and not r.events and not r.created \
                    and not r.canceled:
                return before, r
            before.append(r)

    def collect(self, until, timeout=30, what="events"):
        """Responses until until(responses so far) holds; fails after timeout (one deadline)."""
        deadline = time.monotonic() + timeout
        got = []
        while not until(got):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what} not complete within {timeout}s; got {got!r}"[:4000])
            try:
                got.append(self.next(left))
            except AssertionError:
                raise AssertionError(f"{what} not complete within {timeout}s; got {got!r}"[:4000])
        return got

    def close(self):
        self._closing = True
        self._gate.set()
        self._requests.put(_END)
        self.call.cancel()
        self._thread.join(10)
        self.channel.close()


def events_of(responses, watch_id=None):
    """Every event in responses (of watch_id, if given), in order."""
    return [e for r in responses if watch_id is None or r.watch_id == watch_id for e in r.events]


# --------------------------------------------------------------------------------------------
# etcdctl watch as a child process

class CtlWatch:
    """`etcdctl --endpoints endpoint watch args...` (or another long-running command: lock,
    elect; or the same through another binary, e.g. cairnctl) running in the background; .out()
    is its stdout so far (text). Always stop() it (it is also a context manager)."""

    def __init__(self, endpoint, *args, command="watch", binary=ETCDCTL, env_extra=None):
        self.args = (command, *args)
        self.name = os.path.basename(str(binary))
        self.proc = subprocess.Popen(
            [str(binary), "--endpoints", endpoint, "--dial-timeout", "5s", command, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=clean_env(ETCDCTL_API="3", **(env_extra or {})), start_new_session=True)
        self._out, self._err = bytearray(), bytearray()
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._pump, args=(f, buf), daemon=True)
                         for f, buf in ((self.proc.stdout, self._out),
                                        (self.proc.stderr, self._err))]
        for t in self._threads:
            t.start()

    def _pump(self, f, buf):
        while True:
            chunk = f.read1(65536)
            with self._cond:
                if not chunk:
                    self._cond.notify_all()
                    return
                buf += chunk
                self._cond.notify_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def out(self):
        with self._cond:
            return self._out.decode(errors="replace")

    def err(self):
        with self._cond:
            return self._err.decode(errors="replace")

    def wait_for(self, pred, timeout=30, what="output"):
        """Waits until pred(stdout so far) holds; returns the stdout. Fails after timeout, or if
        etcdctl exits first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                text = self._out.decode(errors="replace")
                if pred(text):
                    return text
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                    raise AssertionError(f"{self.name} {' '.join(self.args)} exited "
                                         f"{self.proc.returncode} before {what}; stdout "
                                         f"{text!r}, stderr {self._err.decode(errors='replace')!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name} {' '.join(self.args)}: no {what} within "
                                         f"{timeout}s; stdout {text!r}, stderr "
                                         f"{self._err.decode(errors='replace')!r}")
                self._cond.wait(min(left, 0.5))

    def signal(self, signum, timeout=30):
        """Sends signum and waits (with a deadline) for the exit; returns the exit code, with
        all of stdout and stderr collected. stop() still runs (a no-op then)."""
        self.proc.send_signal(signum)
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(10)
        return rc

    def stop(self):
        """Ends the process (SIGTERM, then SIGKILL) and returns its whole stdout."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.out()
