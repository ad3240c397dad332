"""bench/watch_mem.py HOST:PORT PID — a server's memory per watch stream and per watching.

Opens CONNS HTTP/2 connections, then STREAMS Watch streams spread over them with one watcher each,
then WATCHINGS more watchers spread over the streams (distinct keys under one prefix, as etcd's
benchmark tool's watch command does), waiting each time until the server has answered every create
request. After each phase it reads the server's RssAnon and VmRSS from /proc/PID/status (after
settling a moment, so that a garbage-collected server has a chance to return what it freed), and
prints one JSON object:
  {"conns":…, "streams":…, "watchings":…, "rss_anon_kib": [base, conns, streams, watchings],
   "vm_rss_kib": […], "per_stream_bytes":…, "per_watching_bytes":…}
per_stream_bytes = (streams phase − conns phase) / streams; per_watching_bytes = (watchings phase −
streams phase) / (watchings − streams), both from RssAnon (the process's own memory).

Environment: WATCH_MEM_CONNS (default 100), WATCH_MEM_STREAMS (1000), WATCH_MEM_WATCHINGS
(100000, the total including the first watcher of every stream). Uses the raw HTTP/2 client of
tests/integration (h2wire, watchwire), run by /usr/bin/python3.
"""
import json
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import h2wire  # noqa: E402
import watchwire  # noqa: E402

WATCH = "/etcdserverpb.Watch/Watch"


def status_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "VmRSS"):
                out[k] = int(v.split()[0])
    return out


def settle(pid):
    time.sleep(3)
    return status_kib(pid)


def answered(st):
    """Counts and drops the complete gRPC messages received on st so far."""
    d = st.data
    pos = 0
    n = 0
    while pos + 5 <= len(d):
        _, ln = struct.unpack(">BI", d[pos:pos + 5])
        if pos + 5 + ln > len(d):
            break
        pos += 5 + ln
        n += 1
    del d[:pos]
    st.count = getattr(st, "count", 0) + n
    if st.done:
        raise RuntimeError(f"the server ended a watch stream: {st}")
    return st.count


def wait_all(conns, want, deadline=600):
    end = time.monotonic() + deadline
    for c, streams in conns:
        for st in streams:
            while answered(st) < want[st.id, id(c)]:
                if time.monotonic() > end or c.closed:
                    raise RuntimeError("the server did not answer every create request")
                c.pump(0.05)


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    pid = int(sys.argv[2])
    n_conns = int(os.environ.get("WATCH_MEM_CONNS", "100"))
    n_streams = int(os.environ.get("WATCH_MEM_STREAMS", "1000"))
    n_watchings = int(os.environ.get("WATCH_MEM_WATCHINGS", "100000"))
    anon, rss = [], []

    def record():
        s = settle(pid)
        anon.append(s["RssAnon"])
        rss.append(s["VmRSS"])

    record()
    conns = []
    for _ in range(n_conns):
        c = h2wire.H2Conn(host, int(port), timeout=30)
        c.handshake()
        conns.append((c, []))
    record()
    want = {}
    key = 0
    for i in range(n_streams):
        c, streams = conns[i % n_conns]
        st = c.open(WATCH)
        st.data = bytearray()
        streams.append(st)
        c.send_data(st, h2wire.grpc_message(watchwire.create_request(f"/w/{key:08d}")),
                    end_stream=False)
        key += 1
        want[st.id, id(c)] = 1
        if i % 50 == 49:
            c.pump(0)
    wait_all(conns, want)
    record()
    # the other watchings, spread over the streams, several create requests per DATA frame
    per = (n_watchings - n_streams) // n_streams
    for c, streams in conns:
        for st in streams:
            body = b"".join(h2wire.grpc_message(watchwire.create_request(f"/w/{key + j:08d}"))
                            for j in range(per))
            key += per
            c.send_data(st, body, end_stream=False)
            want[st.id, id(c)] += per
            c.pump(0)
    wait_all(conns, want)
    record()
    watchings = n_streams * (1 + per)
    out = {
        "conns": n_conns, "streams": n_streams, "watchings": watchings,
        "rss_anon_kib": anon, "vm_rss_kib": rss,
        "per_stream_bytes": round((anon[2] - anon[1]) * 1024 / n_streams),
        "per_watching_bytes": round((anon[3] - anon[2]) * 1024 / (watchings - n_streams)),
    }
    print(json.dumps(out))
    for c, _ in conns:
        c.sock.close()


if __name__ == "__main__":
    main()
