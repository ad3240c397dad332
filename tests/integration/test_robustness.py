"""Hostile and broken clients on the client port — etcd 3.4 and cairnd, the same assertions.

Raw sockets and hand-made HTTP/2 frames (h2wire.py: struct-built frames, an HPACK encoder of
literal fields and a full HPACK decoder with Huffman). After every abuse the server must still be
up, serve a normal etcdctl put/get, and still hold every key acknowledged before.
"""

import os
import socket
import struct
import time

import pytest

from etcd3 import etcdrpc

import h2wire
from conftest import sanitized
from h2wire import H2Conn, frame, grpc_message, recv_until_closed

PUT = "/etcdserverpb.KV/Put"
RANGE = "/etcdserverpb.KV/Range"
STATUS = "/etcdserverpb.Maintenance/Status"


def put_msg(key, value):
    return etcdrpc.PutRequest(key=key, value=value).SerializeToString()


def range_msg(key):
    return etcdrpc.RangeRequest(key=key).SerializeToString()


def seed(server, n=20):
    """Keys acknowledged before the abuse."""
    c = server.client()
    for i in range(n):
        c.put(f"seed/{i:03d}", f"value-{i}")
    return {f"seed/{i:03d}".encode(): f"value-{i}".encode() for i in range(n)}


def assert_healthy(server, acked, tag="after"):
    assert server.alive(), f"{server.kind} died; log:\n{server.log_tail()}"
    key = f"check/{tag}/{time.monotonic_ns()}"
    assert server.ctl_ok("put", key, "ok") == "OK\n"
    assert server.ctl_ok("get", key, "--print-value-only") == "ok\n"
    got = {m.key: v for v, m in server.client().get_prefix("seed/")}
    assert got == acked


def h2_frame_types(data):
    """The types of the complete HTTP/2 frames in data."""
    types, pos = [], 0
    while pos + 9 <= len(data):
        n = int.from_bytes(data[pos:pos + 3], "big")
        types.append(data[pos + 3])
        pos += 9 + n
    return types


def connect(server):
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def h2(server):
    c = H2Conn("127.0.0.1", server.port)
    assert c.handshake(), f"no SETTINGS from {server.kind}"
    return c


# --------------------------------------------------------------------------------------------
# the frame helpers themselves (no server)


def test_hpack_huffman_rfc7541_examples():
    # RFC 7541 C.4.1-C.4.3 and C.6.1
    cases = {
        "www.example.com": "f1e3c2e5f23a6ba0ab90f4ff",
        "no-cache": "a8eb10649cbf",
        "custom-key": "25a849e95ba97d7f",
        "custom-value": "25a849e95bb8e8b4bf",
        "302": "6402",
        "private": "aec3771a4b",
        "Mon, 21 Oct 2013 20:13:21 GMT": "d07abe941054d444a8200595040b8166e082a62d1bff",
        "https://www.example.com": "9d29ad171863c78f0b97c8e9ae82ae43d3",
    }
    for text, hexcode in cases.items():
        assert h2wire.huffman_encode(text.encode()).hex() == hexcode, text
        assert h2wire.huffman_decode(bytes.fromhex(hexcode)) == text.encode(), text
    every = bytes(range(256))
    assert h2wire.huffman_decode(h2wire.huffman_encode(every)) == every
    # C.4: requests with Huffman, through the dynamic table
    d = h2wire.HpackDecoder()
    assert d.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff")) == [
        (":method", "GET"), (":scheme", "http"), (":path", "/"),
        (":authority", "www.example.com")]
    assert d.decode(bytes.fromhex("828684be5886a8eb10649cbf")) == [
        (":method", "GET"), (":scheme", "http"), (":path", "/"),
        (":authority", "www.example.com"), ("cache-control", "no-cache")]
    assert d.decode(bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf")) == [
        (":method", "GET"), (":scheme", "https"), (":path", "/index.html"),
        (":authority", "www.example.com"), ("custom-key", "custom-value")]
    assert d.size == 164


# --------------------------------------------------------------------------------------------
# a well-formed call by hand: proves the hand-made client right before it misbehaves


def test_hand_made_grpc_call(server):
    acked = seed(server, 3)
    c = h2(server)
    try:
        st = c.call(PUT, put_msg(b"by-hand", b"1"))
        assert c.wait_stream(st), st
        assert st.status == "200" and st.grpc_status == 0, st
        assert st.header("content-type").startswith("application/grpc")
        resp = etcdrpc.PutResponse.FromString(st.messages()[0])
        assert resp.header.revision == 5
        st = c.call(RANGE, range_msg(b"by-hand"))
        assert c.wait_stream(st) and st.grpc_status == 0, st
        resp = etcdrpc.RangeResponse.FromString(st.messages()[0])
        assert [(kv.key, kv.value, kv.mod_revision) for kv in resp.kvs] == [(b"by-hand", b"1", 5)]
        # an error status with its message: etcd's text in grpc-message
        st = c.call(RANGE, range_msg(b""))
        assert c.wait_stream(st), st
        assert st.grpc_status == 3, st
        assert st.grpc_message == "etcdserver: key is not provided"
    finally:
        c.close()
    assert_healthy(server, acked)


# --------------------------------------------------------------------------------------------
# not HTTP/2 at all


def test_garbage_bytes_close_the_connection(server):
    acked = seed(server)
    other = h2(server)  # a well-behaved client connected meanwhile
    try:
        s = connect(server)
        garbage = bytes((i * 37 + 11) % 256 for i in range(4096))
        assert not garbage.startswith((b"PRI", b"GET", b"POST"))
        try:
            s.sendall(garbage)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = recv_until_closed(s, 15)
        s.close()
        assert closed, f"{server.kind} kept a garbage connection open (sent back {data[:100]!r})"
        st = other.call(RANGE, range_msg(b"seed/000"))
        assert other.wait_stream(st) and st.grpc_status == 0, st
    finally:
        other.close()
    assert_healthy(server, acked)


@pytest.mark.parametrize("request_bytes", [
    b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    b"POST /etcdserverpb.KV/Range HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    b"Content-Type: application/grpc\r\nContent-Length: 5\r\n\r\n\x00\x00\x00\x00\x00",
], ids=["get", "post-grpc-path"])
def test_http1_request_is_refused(server, request_bytes):
    acked = seed(server)
    s = connect(server)
    s.sendall(request_bytes)
    data, closed = recv_until_closed(s, 5)
    s.close()
    # either an HTTP/1.x answer comes back — which must not be a gRPC success — or the
    # connection is closed, at most after HTTP/2 frames ending in a GOAWAY (nghttp2's way)
    if data.startswith(b"HTTP/1."):
        assert b"grpc-status: 0" not in data.lower()
    else:
        assert closed, f"{server.kind} kept an HTTP/1.1 connection open: {data[:200]!r}"
        if data:
            assert h2_frame_types(data)[-1] == h2wire.GOAWAY, data[:200]
    assert_healthy(server, acked)


def test_truncated_frame_then_close(server):
    acked = seed(server)
    for torn in [
        # a HEADERS frame announcing 1000 bytes, 10 sent
        frame(h2wire.HEADERS, h2wire.END_HEADERS, 1, b"\x00" * 1000)[:19],
        # half a frame header
        frame(h2wire.SETTINGS, 0, 0, b"")[:4],
        # a DATA frame announcing 16 KiB after a valid HEADERS, 100 bytes sent
        frame(h2wire.HEADERS, h2wire.END_HEADERS, 1,
              h2wire.encode_headers(h2wire.request_headers(PUT)))
        + frame(h2wire.DATA, 0, 1, grpc_message(b"x" * 16000))[:109],
    ]:
        s = connect(server)
        s.sendall(h2wire.PREFACE + h2wire.settings_frame() + torn)
        time.sleep(0.2)
        s.close()
    # and a preface cut in the middle
    s = connect(server)
    s.sendall(h2wire.PREFACE[:10])
    s.close()
    time.sleep(0.3)
    assert_healthy(server, acked)


def test_frame_before_preface_and_bad_frames(server):
    """Protocol errors end the connection (GOAWAY and/or close), never the server."""
    acked = seed(server)
    # a DATA frame on stream 0 is a connection error
    c = h2(server)
    c.send(frame(h2wire.DATA, 0, 0, b"hello"))
    c.wait(lambda: c.goaway is not None, 5)
    c.wait(lambda: False, 2)
    assert c.goaway is not None or c.closed, "no GOAWAY nor close after DATA on stream 0"
    c.close()
    # a HEADERS block that is not valid HPACK (index 0x7f... beyond any table)
    c = h2(server)
    c.send(frame(h2wire.HEADERS, h2wire.END_HEADERS | h2wire.END_STREAM, 1,
                 b"\xff\xff\xff\xff\x0f"))
    c.wait(lambda: c.goaway is not None, 5)
    assert c.goaway is not None or c.closed, "no GOAWAY nor close after a bad header block"
    c.close()
    assert_healthy(server, acked)


# --------------------------------------------------------------------------------------------
# gRPC-level abuse


def test_message_over_the_limit_is_resource_exhausted(server):
    acked = seed(server)
    c = h2(server)
    try:
        st = c.open(PUT)
        value = b"v" * (3 << 20)
        sent_all = c.send_data(st, grpc_message(put_msg(b"huge", value)))
        assert c.wait_stream(st, 20), (sent_all, st)
        assert st.grpc_status == 8, st  # RESOURCE_EXHAUSTED
        # the connection is still usable
        st2 = c.call(RANGE, range_msg(b"huge"))
        assert c.wait_stream(st2) and st2.grpc_status == 0, st2
        assert etcdrpc.RangeResponse.FromString(st2.messages()[0]).count == 0
    finally:
        c.close()
    assert server.ctl_ok("get", "huge") == ""
    assert_healthy(server, acked)


def test_4gib_length_prefix_does_not_allocate(server):
    acked = seed(server)
    rss_before = server.rss_kib()
    c = h2(server)
    try:
        st = c.open(PUT)
        c.send_data(st, grpc_message(b"\x0a\x01k" + b"z" * 1000, length=0xFFFFFFFF),
                    end_stream=False)
        c.wait_stream(st, 10)
        assert st.done, f"no answer to a 4 GiB length prefix from {server.kind}: {st}"
        assert st.grpc_status == 8, st  # RESOURCE_EXHAUSTED, at once
        # a lying 2 GiB length, and the stream ended after 3 bytes
        st = c.open(PUT)
        c.send_data(st, grpc_message(b"abc", length=0x80000000), end_stream=True)
        c.wait_stream(st, 10)
        assert st.done and st.grpc_status == 8, st
    finally:
        c.close()
    time.sleep(0.3)
    rss_after = server.rss_kib()
    assert server.alive()
    assert rss_after - rss_before < 64 * 1024, (rss_before, rss_after)
    assert server.ctl_ok("get", "k") == ""
    assert_healthy(server, acked)


@pytest.mark.parametrize("path", ["/etcdserverpb.KV/NoSuchMethod", "/no.such.Service/Get",
                                  "/etcdserverpb.Lease/Range"])
def test_unknown_method_is_unimplemented(server, path):
    acked = seed(server, 3)
    c = h2(server)
    try:
        st = c.call(path, range_msg(b"seed/000"))
        assert c.wait_stream(st), st
        assert st.status == "200" and st.grpc_status == 12, st  # UNIMPLEMENTED
        # the connection is still usable
        st = c.call(RANGE, range_msg(b"seed/000"))
        assert c.wait_stream(st) and st.grpc_status == 0, st
    finally:
        c.close()
    assert_healthy(server, acked)


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", None])
def test_wrong_content_type_is_not_served(server, content_type):
    """gRPC's spec: a server SHOULD answer HTTP 415; grpc-go (etcd) resets the stream instead.
    Either way the request must not be executed."""
    acked = seed(server, 3)
    c = h2(server)
    try:
        st = c.open(PUT, content_type=content_type)
        c.send_data(st, grpc_message(put_msg(b"ctype", b"1")))
        assert c.wait_stream(st), st
        assert st.rst is not None or st.status == "415", st
        assert st.grpc_status in (None, 2, 3, 12, 13), st
    finally:
        c.close()
    assert server.ctl_ok("get", "ctype") == ""
    assert_healthy(server, acked)


def test_many_streams_on_one_connection(server):
    """5000 Status calls opened back to back on one connection (none waited for), then 500
    streams that end without any request message (etcd never answers those), then the client
    goes away. Every real call is answered (or refused with REFUSED_STREAM)."""
    acked = seed(server)
    n = 5000
    c = h2(server)
    streams = []
    try:
        block = h2wire.encode_headers(h2wire.request_headers(STATUS))
        body = grpc_message(b"")  # an empty StatusRequest
        batch = bytearray()
        for i in range(n):
            st = c.new_stream()
            streams.append(st)
            batch += frame(h2wire.HEADERS, h2wire.END_HEADERS, st.id, block)
            batch += frame(h2wire.DATA, h2wire.END_STREAM, st.id, body)
            if len(batch) > 32 * 1024 or i == n - 1:
                c.send(bytes(batch))
                batch.clear()
                c.pump(0)
        c.wait(lambda: all(s.done for s in streams) or c.goaway is not None, 60)
        assert c.goaway is None and not c.closed, (c.goaway, c.closed)
        undone = [s for s in streams if not s.done]
        assert not undone, f"{len(undone)} of {n} streams never ended: {undone[:3]}"
        bad = [s for s in streams if not (s.grpc_status == 0 or s.rst == 7)]
        assert not bad, f"{len(bad)} of {n} streams failed: {bad[:3]}"
        ok = [s for s in streams if s.grpc_status == 0]
        assert ok, "every stream refused"
        resp = etcdrpc.StatusResponse.FromString(ok[-1].messages()[0])
        assert resp.header.revision == len(acked) + 1
        # streams without a request message, left hanging when the client goes
        batch = bytearray()
        for i in range(500):
            st = c.new_stream()
            batch += frame(h2wire.HEADERS, h2wire.END_HEADERS | h2wire.END_STREAM, st.id, block)
        c.send(bytes(batch))
        c.pump(0.5)
    finally:
        c.close()
    assert_healthy(server, acked)


def test_client_vanishes_mid_call(server):
    acked = seed(server)
    for i in range(20):
        c = h2(server)
        # a message announced as 100 bytes, 10 sent, then the client is gone
        st = c.open(PUT)
        c.send(frame(h2wire.DATA, 0, st.id, grpc_message(b"\x0a\x05vanis", length=100)))
        # a full request whose answer is never read
        c.call(RANGE, range_msg(b"seed/001"))
        # a watch stream left open
        c.open("/etcdserverpb.Watch/Watch")
        if i % 2:  # an RST instead of a FIN
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    # a client that stops reading while its answers pile up, then vanishes
    c = h2(server)
    big = b"b" * (512 << 10)
    cl = server.client()
    cl.put("seed-big", big)
    for _ in range(50):
        c.call(RANGE, range_msg(b"seed-big"))
    time.sleep(0.5)
    c.close()
    time.sleep(0.3)
    cl.delete("seed-big")
    assert_healthy(server, acked)


def test_rss_stable_under_junk_connections(server):
    """Many short-lived junk connections must not leak memory."""
    if server.kind == "cairnd" and sanitized():
        pytest.skip("ASan keeps freed memory in quarantine; its leak check at exit covers this")
    acked = seed(server, 5)
    for _ in range(50):  # warm up
        s = connect(server)
        s.sendall(h2wire.PREFACE + b"\x00\x00")
        s.close()
    time.sleep(0.3)
    before = server.rss_kib()
    for i in range(500):
        s = connect(server)
        if i % 2:
            s.sendall(h2wire.PREFACE + h2wire.settings_frame() +
                      frame(h2wire.HEADERS, h2wire.END_HEADERS, 1,
                            h2wire.encode_headers(h2wire.request_headers(PUT))))
        else:
            s.sendall(os.urandom(64))
        s.close()
    time.sleep(0.5)
    after = server.rss_kib()
    print(f"rss {server.kind}: {before} -> {after} KiB")
    assert after - before < 32 * 1024, (before, after)
    assert_healthy(server, acked)


def test_malformed_grpc_messages(server):
    acked = seed(server, 3)
    c = h2(server)
    try:
        # the compressed flag without a grpc-encoding: INTERNAL
        st = c.open(PUT)
        c.send_data(st, grpc_message(put_msg(b"m1", b"1"), compressed=True))
        assert c.wait_stream(st) and st.grpc_status == 13, st
        # bytes that are not a PutRequest: INTERNAL (unmarshalling)
        st = c.call(PUT, b"\xff\xff\xff")
        assert c.wait_stream(st) and st.grpc_status == 13, st
        # the stream ends inside the length prefix / inside the message
        for body in (b"\x00\x00\x00", grpc_message(put_msg(b"m2", b"1"))[:-1]):
            st = c.open(PUT)
            c.send_data(st, body)
            assert c.wait_stream(st), st
            assert st.rst is not None or st.grpc_status not in (None, 0), st
        # application/grpc+proto is gRPC too
        st = c.open(PUT, content_type="application/grpc+proto")
        c.send_data(st, grpc_message(put_msg(b"m3", b"1")))
        assert c.wait_stream(st) and st.grpc_status == 0, st
    finally:
        c.close()
    assert server.ctl_ok("get", "m", "--prefix", "--keys-only") == "m3\n\n"
    assert_healthy(server, acked)


def test_idle_connections_do_not_block_others(server):
    acked = seed(server, 3)
    idle = []
    try:
        for i in range(200):
            s = connect(server)
            if i % 2:
                s.sendall(h2wire.PREFACE[:5])  # a preface that never completes
            idle.append(s)
        t0 = time.monotonic()
        assert_healthy(server, acked)
        assert time.monotonic() - t0 < 5
    finally:
        for s in idle:
            s.close()
    assert_healthy(server, acked, "closed")


def test_huge_header_block(server):
    """A 4 MiB header block in HEADERS + CONTINUATION frames: refused or served, never a crash
    nor a memory jump."""
    acked = seed(server, 3)
    before = server.rss_kib()
    c = h2(server)
    try:
        st = c.new_stream()
        block = h2wire.encode_headers(h2wire.request_headers(
            PUT, extra=[(f"x-big-{i}", "a" * 4000) for i in range(1000)]))
        chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        try:
            c.send(frame(h2wire.HEADERS, 0, st.id, chunks[0]))
            for i, ch in enumerate(chunks[1:], 1):
                c.send(frame(h2wire.CONTINUATION,
                             h2wire.END_HEADERS if i == len(chunks) - 1 else 0, st.id, ch))
                if i % 16 == 0:
                    c.pump(0)
            c.send(frame(h2wire.DATA, h2wire.END_STREAM, st.id,
                         grpc_message(put_msg(b"hdr", b"1"))))
        except h2wire.ConnectionClosed:
            pass
        c.wait(lambda: st.done or c.goaway is not None, 10)
        assert st.done or c.goaway is not None or c.closed, st
    finally:
        c.close()
    time.sleep(0.3)
    assert server.rss_kib() - before < 64 * 1024
    assert_healthy(server, acked)


def test_flow_control_violations(server):
    acked = seed(server, 3)
    # WINDOW_UPDATEs that overflow 2^31-1 (RFC 7540 6.9.1: a FLOW_CONTROL_ERROR; etcd's
    # grpc-go lets it pass): whatever the answer, the server stays up
    for sid in (0, 1):
        c = h2(server)
        try:
            if sid:
                c.open(RANGE)
            c.send(window_update_frame(sid, 0x7FFFFFFF))
            c.send(window_update_frame(sid, 0x7FFFFFFF))
            c.pump(0.5)
            c.send(window_update_frame(sid, 1))
        except h2wire.ConnectionClosed:
            pass
        c.close()
    # DATA beyond the server's stream window
    c = h2(server)
    window = c.server_settings.get(h2wire.SETTINGS_INITIAL_WINDOW_SIZE, 65535)
    st = c.open(PUT)
    sent = 0
    try:
        while sent <= window + 65536 and not c.closed and not st.done:
            c.send(frame(h2wire.DATA, 0, st.id, b"\x00" * 16384))
            sent += 16384
            c.pump(0)
    except h2wire.ConnectionClosed:
        pass
    c.wait(lambda: st.done or c.goaway is not None, 5)
    assert st.done or c.goaway is not None or c.closed, st
    c.close()
    assert_healthy(server, acked)


def window_update_frame(sid, inc):
    return h2wire.window_update(sid, inc)


def test_slow_reader_with_small_windows(server):
    """A client with a 16 KiB stream window (and the default 64 KiB connection window) reading
    a 3 MiB answer: the server must wait for WINDOW_UPDATEs, never overrun the windows, and
    still deliver every byte; meanwhile other clients are served."""
    acked = seed(server, 3)
    value = bytes(range(256)) * (1 << 12)  # 1 MiB, three times
    for i in range(3):
        server.client().put(f"slow/{i}", value)
    c = H2Conn("127.0.0.1", server.port, window=16384, conn_window=0)
    try:
        assert c.handshake()
        st = c.call(RANGE, etcdrpc.RangeRequest(key=b"slow/", range_end=b"slow0")
                    .SerializeToString())
        for _ in range(20):  # read in small sips
            c.pump(0.05)
        assert_healthy(server, acked, "during")
        assert c.wait_stream(st, 30), st
        assert st.grpc_status == 0, st
        assert c.max_window_overrun() <= 0, c.max_window_overrun()
        resp = etcdrpc.RangeResponse.FromString(st.messages()[0])
        assert [kv.value for kv in resp.kvs] == [value] * 3
    finally:
        c.close()
    assert_healthy(server, acked)
