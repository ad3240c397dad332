"""Watch (etcdserverpb.Watch/Watch) against a fresh server — etcd 3.4 and cairnd, the same
assertions — and against a 3-member cluster.

Three clients: etcdctl 3.4 `watch` as a child process (its exact printed output), python3-etcd3's
watch API, and raw gRPC on a bidirectional stream (watchwire.py: etcd 3.4's Watch messages
encoded by hand, since python3-etcd3's generated stubs predate watch_id, fragment and progress
requests), for the wire-level rules of etcd 3.4 (etcdserver/api/v3rpc/watch.go,
mvcc/watchable_store.go, mvcc/watcher.go):

  * every create request is answered by a "created" response (created=true, the watch id, header
    revision = the store's current revision) before any event of that watcher;
  * server-assigned ids start at 0 on each stream and take the lowest unused id above the last
    one given; a client-chosen watch_id (non-zero: 0 means "assign one") is honoured; a duplicate
    id, or an empty range (key >= range_end), is answered created=true canceled=true
    watch_id=-1 with etcd's cancel_reason;
  * a live watcher receives every revision in its own response (header revision = that
    revision), all events of a revision in one response, in the order of the txn's operations
    (a range delete: key order); deletes carry the key and the delete's mod_revision, and
    prev_kv when asked (never for a create); NOPUT / NODELETE; range_end for [key, end), a
    prefix, and "\\0" = every key >= key;
  * start_revision below the compacted revision: created, then watch_id, canceled=true,
    compact_revision=<compacted revision> and no events (etcd 3.4's header revision there is 0);
  * cancel → watch_id, canceled=true; a cancel of an unknown id is not answered; a progress
    request → watch_id -1, no events, header revision = current revision;
  * fragment=true: a revision whose response would exceed etcd's limit (max-request-bytes
    1.5 MiB + 512 KiB gRPC overhead) is cut greedily into several responses, fragment=true on all
    but the last;
  * a consumer that stops reading loses nothing.

Replays from a past revision may be batched by the server (etcd sends up to 1000 revisions of
history in one response), so where history is replayed only the sequence of events is asserted,
not how it was cut into responses; for live watchers the cut (one revision per response) is.

Nothing here measures time: waits have deadlines and fail with what they last saw.
"""

import base64
import json
import queue
import threading
import time

import grpc
import pytest

import etcd3
import etcd3.events
import etcd3.exceptions
from etcd3 import etcdrpc

from conftest import (BLANK, CLUSTER_TOKEN, ETCDCTL, cluster_factory, etcd_cluster_id,
                      etcd_member_id, normalize)
from watchwire import (INVALID_WATCH_ID, NODELETE, NOPUT, PUT, CtlWatch, StreamEnded,
                       WatchStream, create_request, events_of, prefix_end, size_with)

# etcd's default --max-request-bytes plus grpcOverheadBytes: the fragmenting limit of watch.go
MAX_REQUEST_BYTES = 1536 * 1024
FRAGMENT_LIMIT = MAX_REQUEST_BYTES + 512 * 1024
DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream"
EMPTY_RANGE = "mvcc: watcher range is empty"


# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(autouse=True)
def server_survives(request):
    """After a test on the `server` fixture: the server must still be running (a watch that
    kills it shows up as a broken stream otherwise). Torn down before `server` is."""
    s = request.getfixturevalue("server") if "server" in request.fixturenames else None
    yield
    if s is not None:
        assert s.alive(), (f"{s.kind} died during the test (exit status {s.proc.returncode}); "
                           f"log:\n{s.log_tail()}")


def b(s):
    return s.encode() if isinstance(s, str) else s


def kv_stub(server):
    return server.client().kvstub


def put(server, key, value, prev_kv=False):
    """A raw Put; returns its revision."""
    return kv_stub(server).Put(etcdrpc.PutRequest(key=b(key), value=b(value), prev_kv=prev_kv),
                               timeout=10).header.revision


def delete(server, key, range_end=b""):
    r = kv_stub(server).DeleteRange(etcdrpc.DeleteRangeRequest(key=b(key), range_end=b(range_end)),
                                    timeout=10)
    return r.header.revision, r.deleted


def txn_puts(server, pairs):
    """One txn (no compares) putting every (key, value); returns its revision."""
    ops = [etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b(k), value=b(v)))
           for k, v in pairs]
    r = kv_stub(server).Txn(etcdrpc.TxnRequest(success=ops), timeout=10)
    assert r.succeeded
    return r.header.revision


def current_revision(server):
    return kv_stub(server).Range(etcdrpc.RangeRequest(key=b"\0"), timeout=10).header.revision


def compact(server, revision):
    kv_stub(server).Compact(etcdrpc.CompactionRequest(revision=revision, physical=True),
                            timeout=10)


def ev(e):
    """An event as a comparable tuple: (type, key, value, create, mod, version)."""
    kv = e.kv
    return (e.type_name, kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version)


def prev(e):
    return None if e.prev_kv is None else (e.prev_kv.key, e.prev_kv.value,
                                           e.prev_kv.mod_revision)


def simple(*lines):
    return "".join(line + "\n" for line in lines)


def b64(s):
    return base64.b64encode(b(s)).decode()


def assert_identity(server, header):
    mid = etcd_member_id([server.peer_url], CLUSTER_TOKEN)
    assert header.member_id == mid
    assert header.cluster_id == etcd_cluster_id([mid])
    assert header.raft_term >= 1


def put_until_seen(server, w, key, value="ready", timeout=30):
    """Puts key=value every so often until `etcdctl watch` printed it (the watch is in place);
    returns how many were put."""
    want = simple("PUT", key, value)
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        put(server, key, value)
        n += 1
        try:
            w.wait_for(lambda t: want in t, timeout=0.5, what=f"the {key}={value} put")
            return n
        except AssertionError:
            if time.monotonic() > deadline or w.proc.poll() is not None:
                raise


def strip_warmup(out, key, value="ready"):
    """out without the leading warm-up events; returns (count, rest)."""
    block = simple("PUT", key, value)
    n = 0
    while out.startswith(block):
        out = out[len(block):]
        n += 1
    return n, out


# --------------------------------------------------------------------------------------------
# 1. etcdctl watch: the exact printed output


def test_etcdctl_watch_key_live(server):
    with CtlWatch(server.endpoint, "k") as w:
        put_until_seen(server, w, "k")
        put(server, "k", "v1")
        put(server, "other", "x")      # not watched
        put(server, "k2", "x")         # not watched: a single key, not a prefix
        put(server, "k", "v2")
        delete(server, "k")
        delete(server, "k")            # nothing deleted: no revision, no event
        put(server, "k", "v3")
        put(server, "k", "end")
        w.wait_for(lambda t: t.endswith(simple("PUT", "k", "end")), what="the last event")
        out = w.stop()
    n, rest = strip_warmup(out, "k")
    assert n >= 1
    assert rest == simple("PUT", "k", "v1", "PUT", "k", "v2", "DELETE", "k", "",
                          "PUT", "k", "v3", "PUT", "k", "end")


def test_etcdctl_watch_prefix_live(server):
    with CtlWatch(server.endpoint, "--prefix", "p/") as w:
        put_until_seen(server, w, "p/ready")
        put(server, "p/a", "1")
        put(server, "p", "not-under")  # "p" does not start with "p/"
        put(server, "q/a", "no")
        txn_puts(server, [("p/c", "3"), ("p/b", "2"), ("x", "no")])  # one revision
        delete(server, "p/a")
        delete(server, "p/", prefix_end("p/"))  # p/b, p/c, p/ready in one revision, key order
        put(server, "p/end", "e")
        w.wait_for(lambda t: t.endswith(simple("PUT", "p/end", "e")), what="the last event")
        out = w.stop()
    n, rest = strip_warmup(out, "p/ready")
    assert n >= 1
    assert rest == simple("PUT", "p/a", "1", "PUT", "p/c", "3", "PUT", "p/b", "2",
                          "DELETE", "p/a", "", "DELETE", "p/b", "", "DELETE", "p/c", "",
                          "DELETE", "p/ready", "", "PUT", "p/end", "e")


def history(server):
    """k: v0..v3 (revs 2-5), deleted (6), again (7); other keys between."""
    for i in range(4):
        put(server, "k", f"v{i}")
    assert delete(server, "k") == (6, 1)
    assert put(server, "k", "again") == 7
    assert put(server, "unrelated", "u") == 8


def test_etcdctl_watch_rev_replays_then_live(server):
    history(server)
    with CtlWatch(server.endpoint, "--rev", "3", "k") as w:
        replay = simple("PUT", "k", "v1", "PUT", "k", "v2", "PUT", "k", "v3",
                        "DELETE", "k", "", "PUT", "k", "again")
        out = w.wait_for(lambda t: t == replay or not replay.startswith(t),
                         what="the replay from revision 3")
        assert out == replay
        assert put(server, "k", "live") == 9
        delete(server, "k")
        w.wait_for(lambda t: t.endswith(simple("DELETE", "k", "")) and t != replay,
                   what="the live events")
        out = w.stop()
    assert out == replay + simple("PUT", "k", "live", "DELETE", "k", "")


def test_etcdctl_watch_rev_prefix_from_the_first_revision(server):
    for k in ("a/1", "b/1", "a/2", "a/1"):
        put(server, k, "x" + k)        # revs 2..5
    with CtlWatch(server.endpoint, "--rev", "1", "--prefix", "a/") as w:
        want = simple("PUT", "a/1", "xa/1", "PUT", "a/2", "xa/2", "PUT", "a/1", "xa/1")
        w.wait_for(lambda t: len(t) >= len(want), what="the replay")
        put(server, "a/3", "live")
        want += simple("PUT", "a/3", "live")
        w.wait_for(lambda t: len(t) >= len(want), what="the live event")
        out = w.stop()
    assert out == want


def test_etcdctl_watch_prev_kv(server):
    history(server)
    with CtlWatch(server.endpoint, "--rev", "2", "--prev-kv", "k") as w:
        # a create (v0, again) has no previous pair; a put prints the previous pair first; a
        # delete prints the deleted pair, then the tombstone (key, empty value)
        want = simple("PUT", "k", "v0",
                      "PUT", "k", "v0", "k", "v1",
                      "PUT", "k", "v1", "k", "v2",
                      "PUT", "k", "v2", "k", "v3",
                      "DELETE", "k", "v3", "k", "",
                      "PUT", "k", "again")
        out = w.wait_for(lambda t: len(t) >= len(want), what="the replay")
        assert out == want
        put(server, "k", "live")
        want += simple("PUT", "k", "again", "k", "live")
        w.wait_for(lambda t: len(t) >= len(want), what="the live event")
        out = w.stop()
    assert out == want


def json_header(rev):
    return {"cluster_id": BLANK, "member_id": BLANK, "revision": rev, "raft_term": BLANK}


def json_kv(key, value, create, mod, version):
    d = {"key": b64(key), "create_revision": create, "mod_revision": mod, "version": version}
    if value:
        d["value"] = b64(value)
    return d


def test_etcdctl_watch_json(server):
    history(server)
    with CtlWatch(server.endpoint, "-w", "json", "--rev", "4", "k") as w:
        w.wait_for(lambda t: "YWdhaW4=" in t, what="the replay (k=again)")  # b64("again")
        assert put(server, "k", "live") == 9
        w.wait_for(lambda t: b64("live") in t, what="the live event")
        out = w.stop()
    lines = [json.loads(line) for line in out.splitlines()]
    for line in lines:
        assert set(line) == {"Header", "Events", "CompactRevision", "Canceled", "Created"}, line
        assert (line["CompactRevision"], line["Canceled"], line["Created"]) == (0, False, False)
        assert line["Events"], line
        assert set(line["Header"]) == {"cluster_id", "member_id", "revision", "raft_term"}
    mid = etcd_member_id([server.peer_url], CLUSTER_TOKEN)
    assert {line["Header"]["member_id"] for line in lines} == {mid}
    assert {line["Header"]["cluster_id"] for line in lines} == {etcd_cluster_id([mid])}
    # the replay (however many responses it took), then the live put in a response of its own
    events = [e for line in lines for e in normalize(line)["Events"]]
    assert events == [
        {"kv": json_kv("k", "v2", 2, 4, 3)},
        {"kv": json_kv("k", "v3", 2, 5, 4)},
        {"type": 1, "kv": {"key": b64("k"), "mod_revision": 6}},   # DELETE: key + revision
        {"kv": json_kv("k", "again", 7, 7, 1)},
        {"kv": json_kv("k", "live", 7, 9, 2)},
    ]
    replay_lines = lines[:-1]
    assert all(line["Header"]["revision"] >= max(e["kv"]["mod_revision"] for e in line["Events"])
               for line in replay_lines)
    assert normalize(lines[-1]) == {"Header": json_header(9), "Events": [
        {"kv": json_kv("k", "live", 7, 9, 2)}], "CompactRevision": 0, "Canceled": False,
        "Created": False}


# --------------------------------------------------------------------------------------------
# 2. python3-etcd3's watch API


class Drain:
    """Moves what an etcd3 events iterator yields into a queue, in a thread (the iterator blocks
    without a deadline); get(n) takes n items with one deadline."""

    def __init__(self, iterator):
        self.q = queue.Queue()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(iterator,), daemon=True)
        self.thread.start()

    def _run(self, iterator):
        try:
            for item in iterator:
                self.q.put(item)
        except Exception as e:  # noqa: BLE001 - handed to the test
            self.q.put(e)
        finally:
            self.done.set()

    def get(self, n, timeout=15):
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < n:
            try:
                got.append(self.q.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"{len(got)} of {n} items within {timeout}s: {got!r}")
        return got


# python3-etcd3 0.12's watch thread outlives its client: when the fixture closes the client, the
# thread's next Watch call raises "Channel closed" in that thread. Not the server's doing.
etcd3_watch_thread = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning")


@etcd3_watch_thread
def test_etcd3_watch_iterator_and_cancel(server):
    c = server.client()
    start = current_revision(server)
    events, cancel = c.watch("k")
    d = Drain(events)
    try:
        c.put("k", "a")
        c.put("kk", "not-watched")
        c.delete("k")
        c.put("k", "b")
        got = d.get(3)
    finally:
        cancel()
    assert [type(e) for e in got] == [etcd3.events.PutEvent, etcd3.events.DeleteEvent,
                                      etcd3.events.PutEvent]
    assert [(e.key, e.value, e.mod_revision) for e in got] == [
        (b"k", b"a", start + 1), (b"k", b"", start + 3), (b"k", b"b", start + 4)]
    assert (got[0].create_revision, got[0].version) == (start + 1, 1)
    assert (got[2].create_revision, got[2].version) == (start + 4, 1)
    assert d.done.wait(15), "the events iterator did not end after cancel()"
    assert d.q.empty()


@etcd3_watch_thread
def test_etcd3_watch_prefix_with_start_revision(server):
    c = server.client()
    for k, v in [("p/a", "1"), ("q", "2"), ("p/b", "3"), ("p/a", "4")]:
        c.put(k, v)                    # revs 2..5
    events, cancel = c.watch_prefix("p/", start_revision=3)
    d = Drain(events)
    try:
        got = d.get(2)                 # history from revision 3: p/b@4, p/a@5
        c.delete_prefix("p/")          # rev 6: p/a, p/b
        c.put("p/c", "5")              # rev 7
        got += d.get(3)
    finally:
        cancel()
    assert [(type(e).__name__, e.key, e.value, e.mod_revision) for e in got] == [
        ("PutEvent", b"p/b", b"3", 4), ("PutEvent", b"p/a", b"4", 5),
        ("DeleteEvent", b"p/a", b"", 6), ("DeleteEvent", b"p/b", b"", 6),
        ("PutEvent", b"p/c", b"5", 7)]
    assert d.done.wait(15)


@etcd3_watch_thread
def test_etcd3_watch_callback_prev_kv_and_cancel_watch(server):
    c = server.client()
    first, second = queue.Queue(), queue.Queue()
    id1 = c.add_watch_callback("k", first.put, prev_kv=True)
    assert id1 == 0                    # the first watcher of the client's stream
    try:
        c.put("k", "1")
        c.put("k", "2")
        c.delete("k")
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 3:
            r = first.get(timeout=max(0.01, deadline - time.monotonic()))
            assert not isinstance(r, Exception), r
            got += r.events
    finally:
        c.cancel_watch(id1)
    assert [(type(e).__name__, e.value) for e in got] == [
        ("PutEvent", b"1"), ("PutEvent", b"2"), ("DeleteEvent", b"")]
    assert not got[0]._event.HasField("prev_kv")   # a create has no previous pair
    assert (got[1].prev_value, got[1].prev_mod_revision) == (b"1", 2)
    assert (got[2].prev_value, got[2].prev_version) == (b"2", 2)
    # a watcher made after the cancel: it sees the next put, the cancelled one does not
    id2 = c.add_watch_callback("k", second.put)
    try:
        assert id2 == 1                # ids are not reused on a stream
        c.put("k", "3")
        r = second.get(timeout=15)
        assert [(e.key, e.value) for e in r.events] == [(b"k", b"3")]
    finally:
        c.cancel_watch(id2)
    assert first.empty(), first.get()


@etcd3_watch_thread
def test_etcd3_watch_compacted_revision(server):
    c = server.client()
    for i in range(5):
        c.put("k", str(i))             # revs 2..6
    c.compact(5)
    events, cancel = c.watch("k", start_revision=3)
    d = Drain(events)
    try:
        assert d.done.wait(15), "the iterator did not end on the compacted revision"
        (err,) = d.get(1)
    finally:
        cancel()
    assert isinstance(err, etcd3.exceptions.RevisionCompactedError), err
    assert err.compacted_revision == 5
    # the compacted revision itself can still be watched from
    events, cancel = c.watch("k", start_revision=5)
    d = Drain(events)
    try:
        got = d.get(2)
    finally:
        cancel()
    assert [(e.value, e.mod_revision) for e in got] == [(b"3", 5), (b"4", 6)]


# --------------------------------------------------------------------------------------------
# 3. raw gRPC: the wire


def test_raw_created_first_ids_and_duplicates(server):
    history(server)                    # at revision 8
    with WatchStream(server.endpoint) as s:
        r = s.create("k", start_revision=2)
        assert (r.watch_id, r.revision, r.compact_revision, r.cancel_reason) == (0, 8, 0, "")
        assert_identity(server, r.header)
        got = s.collect(lambda rs: len(events_of(rs)) >= 6, what="the replay")
        assert {x.watch_id for x in got} == {0}
        assert not any(x.created or x.canceled or x.fragment for x in got)
        assert [ev(e)[:2] + (ev(e)[4],) for e in events_of(got)] == [
            ("PUT", b"k", 2), ("PUT", b"k", 3), ("PUT", b"k", 4), ("PUT", b"k", 5),
            ("DELETE", b"k", 6), ("PUT", b"k", 7)]
        assert s.create("a").watch_id == 1
        assert s.create("b").watch_id == 2
    with WatchStream(server.endpoint) as s:
        # a client-chosen id is honoured; assigned ids skip the ids in use
        r = s.create("k", watch_id=1)
        assert (r.watch_id, r.revision) == (1, 8)
        assert s.create("k").watch_id == 0
        assert s.create("k").watch_id == 2
        assert s.create("k", watch_id=100).watch_id == 100
        # a duplicate id, an empty range: created and canceled at once, id -1, etcd's reason
        r = s.create("other", watch_id=100, expect_canceled=True)
        assert (r.watch_id, r.cancel_reason, r.revision) == (INVALID_WATCH_ID, DUPLICATE_ID, 8)
        r = s.create("b", range_end="a", expect_canceled=True)
        assert (r.watch_id, r.cancel_reason) == (INVALID_WATCH_ID, EMPTY_RANGE)
        r = s.create("b", range_end="b", expect_canceled=True)
        assert (r.watch_id, r.cancel_reason) == (INVALID_WATCH_ID, EMPTY_RANGE)
        assert s.create("k").watch_id == 3  # the refused creates took no id
        # the id-100 watcher is the original one, still there
        assert put(server, "k", "x") == 9
        got = s.collect(lambda rs: {x.watch_id for x in rs} >= {0, 1, 2, 3, 100},
                        what="one response per watcher of k")
        assert sorted(x.watch_id for x in got) == [0, 1, 2, 3, 100]
        for x in got:
            assert x.revision == 9 and [ev(e) for e in x.events] == [
                ("PUT", b"k", b"x", 7, 9, 2)]
    with WatchStream(server.endpoint) as s:  # ids are per stream
        assert s.create("k").watch_id == 0


def test_raw_events_of_a_revision_in_one_response(server):
    with WatchStream(server.endpoint) as s:
        plain = s.create("t/", range_end=prefix_end("t/")).watch_id
        with_prev = s.create("t/", range_end=prefix_end("t/"), prev_kv=True).watch_id
        r1 = txn_puts(server, [("t/c", "3"), ("t/a", "1"), ("t/b", "2")])
        r2 = put(server, "t/a", "1b")
        r3, n = delete(server, "t/", prefix_end("t/"))
        assert n == 3
        r4 = put(server, "t/a", "again")
        rs = s.collect(lambda rs: len(rs) >= 8, what="4 responses for each of 2 watchers")
    for wid in (plain, with_prev):
        mine = [x for x in rs if x.watch_id == wid]
        assert [x.revision for x in mine] == [r1, r2, r3, r4]   # one response per revision
        assert not any(x.created or x.canceled or x.fragment or x.compact_revision
                       for x in mine)
        assert [[ev(e) for e in x.events] for x in mine] == [
            [("PUT", b"t/c", b"3", r1, r1, 1), ("PUT", b"t/a", b"1", r1, r1, 1),
             ("PUT", b"t/b", b"2", r1, r1, 1)],                  # the txn's order
            [("PUT", b"t/a", b"1b", r1, r2, 2)],
            [("DELETE", b"t/a", b"", 0, r3, 0), ("DELETE", b"t/b", b"", 0, r3, 0),
             ("DELETE", b"t/c", b"", 0, r3, 0)],                 # key order
            [("PUT", b"t/a", b"again", r4, r4, 1)]]
    mine = [x for x in rs if x.watch_id == plain]
    assert all(e.prev_kv is None for e in events_of(mine))
    mine = [x for x in rs if x.watch_id == with_prev]
    assert [[prev(e) for e in x.events] for x in mine] == [
        [None, None, None],                                      # creates: none
        [(b"t/a", b"1", r1)],
        [(b"t/a", b"1b", r2), (b"t/b", b"2", r1), (b"t/c", b"3", r1)],
        [None]]                                                  # a create after a delete


def test_raw_filters(server):
    with WatchStream(server.endpoint) as s:
        noput = s.create("f/", range_end=prefix_end("f/"), filters=[NOPUT]).watch_id
        nodel = s.create("f/", range_end=prefix_end("f/"), filters=[NODELETE],
                         prev_kv=True).watch_id
        put(server, "f/a", "1")
        put(server, "f/b", "2")
        ra, _ = delete(server, "f/a")
        txn_puts(server, [("f/c", "3"), ("f/a", "4")])
        rb, _ = delete(server, "f/", prefix_end("f/"))  # f/a, f/b, f/c; the NOPUT barrier
        rl = put(server, "f/last", "5")                  # the NODELETE barrier
        rs = s.collect(lambda rs: any(x.watch_id == noput and x.revision == rb for x in rs)
                       and any(x.watch_id == nodel and x.revision == rl for x in rs),
                       what="each filtered watcher's last event")
    got = [x for x in rs if x.watch_id == noput]
    assert [[(ev(e)[0], ev(e)[1]) for e in x.events] for x in got] == [
        [("DELETE", b"f/a")],
        [("DELETE", b"f/a"), ("DELETE", b"f/b"), ("DELETE", b"f/c")]]
    assert got[0].revision == ra
    got = [x for x in rs if x.watch_id == nodel]
    assert [[(ev(e)[0], ev(e)[1], ev(e)[2]) for e in x.events] for x in got] == [
        [("PUT", b"f/a", b"1")], [("PUT", b"f/b", b"2")],
        [("PUT", b"f/c", b"3"), ("PUT", b"f/a", b"4")], [("PUT", b"f/last", b"5")]]
    # prev_kv of a put after a delete of the key: none (it is a create)
    assert all(e.prev_kv is None for e in events_of(got))


def test_raw_ranges_on_one_stream(server):
    """Several watchers on one stream, each on its own range: each receives exactly the events in
    its range. Each range's last write (its barrier) is the last event it must see."""
    writes = ["a", "b", "bb", "c", "d", "m", "ma", "p", "p/x", "p0", "z", "\xff"]
    specs = {  # name: (key, range_end, the keys it must see)
        "single": ("bb", "", ["bb"]),
        "range": ("b", "d", ["b", "bb", "c"]),
        "prefix": ("p/", prefix_end("p/"), ["p/x"]),
        "from-key": ("m", "\0", ["m", "ma", "p", "p/x", "p0", "z", "\xff"]),
        "all": ("", "\0", writes),                   # the empty key: from "\0"
        "all-from-nul": ("\0", "\0", writes),
    }
    with WatchStream(server.endpoint) as s:
        ids = {name: s.create(key, range_end=end).watch_id for name, (key, end, _) in
               specs.items()}
        assert sorted(ids.values()) == list(range(len(specs)))
        revs = {}
        for k in writes:
            revs[k] = put(server, k.encode("latin-1"), "v-" + k)
        last = {name: revs[keys[-1]] for name, (_, _, keys) in specs.items()}
        rs = s.collect(lambda rs: all(any(x.watch_id == ids[n] and x.revision == last[n]
                                          for x in rs) for n in specs),
                       what="every watcher's last event")
        later, _ = s.no_response_before_barrier()
        rs += later
    for name, (_, _, keys) in specs.items():
        mine = [x for x in rs if x.watch_id == ids[name]]
        assert [(e.kv.key, e.kv.mod_revision) for e in events_of(mine)] == [
            (k.encode("latin-1"), revs[k]) for k in keys], name
        assert [x.revision for x in mine] == [revs[k] for k in keys], name


def test_raw_compacted_start_revision(server):
    for i in range(6):
        put(server, "k", str(i))       # revs 2..7
    compact(server, 5)
    with WatchStream(server.endpoint) as s:
        r = s.create("k", start_revision=4)
        assert (r.watch_id, r.revision, r.compact_revision) == (0, 7, 0)
        r = s.next()
        assert (r.watch_id, r.canceled, r.created, r.compact_revision, r.events) == (
            0, True, False, 5, [])
        # etcd 3.4 sends this response with header revision 0 (the mvcc response carries none)
        assert r.revision == 0
        assert_identity(server, r.header)
        # from the compacted revision itself: its history is still there
        r = s.create("k", start_revision=5)
        assert r.watch_id == 1
        got = s.collect(lambda rs: len(events_of(rs)) >= 3, what="history from revision 5")
        assert [(e.kv.value, e.kv.mod_revision) for e in events_of(got)] == [
            (b"3", 5), (b"4", 6), (b"5", 7)]
        assert {x.watch_id for x in got} == {1}
        # the stream goes on: a live watcher on it
        live = s.create("live").watch_id
        assert live == 2
        rev = put(server, "live", "x")
        got = s.collect(lambda rs: any(x.watch_id == live for x in rs), what="the live event")
        assert [(x.watch_id, x.revision, [ev(e) for e in x.events]) for x in got] == [
            (live, rev, [("PUT", b"live", b"x", rev, rev, 1)])]


def test_raw_cancel_and_progress(server):
    history(server)                    # at revision 8
    with WatchStream(server.endpoint) as s:
        # a progress request on a stream without watchers: answered all the same
        s.progress()
        r = s.next()
        assert (r.watch_id, r.revision, r.created, r.canceled, r.events) == (
            INVALID_WATCH_ID, 8, False, False, [])
        assert_identity(server, r.header)
        k = s.create("k").watch_id
        barrier = s.create("barrier").watch_id
        assert put(server, "k", "1") == 9
        r = s.next()
        assert (r.watch_id, r.revision) == (k, 9)
        # cancel: answered with the id, canceled=true, the current revision
        s.cancel(k)
        r = s.next()
        assert (r.watch_id, r.canceled, r.created, r.revision, r.events) == (k, True, False, 9, [])
        # a cancel of an unknown or already cancelled id is not answered
        s.cancel(k)
        s.cancel(12345)
        before, r = s.no_response_before_barrier()
        assert before == []
        assert r.revision == 9
        # the cancelled watcher receives nothing more
        assert put(server, "k", "2") == 10
        assert put(server, "barrier", "b") == 11
        got = s.collect(lambda rs: any(x.watch_id == barrier for x in rs), what="the barrier")
        assert [(x.watch_id, x.revision) for x in got] == [(barrier, 11)]
        # progress: watch_id -1, no events, the current revision
        put(server, "unwatched", "u")
        before, r = s.no_response_before_barrier()
        assert before == []
        assert (r.watch_id, r.revision, r.events, r.compact_revision) == (
            INVALID_WATCH_ID, 12, [], 0)


def test_raw_fragment(server):
    n, size = 40, 100 * 1024           # 40 deletes carrying 100 KiB prev_kvs: ~4 MiB
    for i in range(n):
        put(server, f"big/{i:02d}", bytes([65 + i % 26]) * size)
    with WatchStream(server.endpoint) as s:
        frag = s.create("big/", range_end=prefix_end("big/"), prev_kv=True,
                        fragment=True).watch_id
        whole = s.create("big/", range_end=prefix_end("big/"), prev_kv=True).watch_id
        rev, deleted = delete(server, "big/", prefix_end("big/"))
        assert deleted == n
        rs = s.collect(lambda rs: any(x.watch_id == frag and not x.fragment for x in rs)
                       and any(x.watch_id == whole for x in rs),
                       timeout=60, what="the fragments and the whole response")
    parts = [x for x in rs if x.watch_id == frag]
    assert len(parts) >= 2
    assert [x.fragment for x in parts] == [True] * (len(parts) - 1) + [False]
    assert {x.revision for x in parts} == {rev}
    assert not any(x.created or x.canceled for x in parts)
    for x in parts:
        assert len(x.raw) < FRAGMENT_LIMIT
    for a, nxt in zip(parts, parts[1:]):  # greedy: the next event would not have fitted
        assert size_with(a.raw, nxt.events[0].raw) >= FRAGMENT_LIMIT
    want = [("DELETE", f"big/{i:02d}".encode(), b"", 0, rev, 0) for i in range(n)]
    assert [ev(e) for e in events_of(parts)] == want
    assert [e.prev_kv.value for e in events_of(parts)] == [
        bytes([65 + i % 26]) * size for i in range(n)]
    (one,) = [x for x in rs if x.watch_id == whole]
    assert not one.fragment and one.revision == rev
    assert [ev(e) for e in one.events] == want
    assert len(one.raw) > FRAGMENT_LIMIT


# --------------------------------------------------------------------------------------------
# 5. a consumer that stops reading


def put_many(server, keys, value_of, window=256):
    """Puts every key (concurrently, window requests in flight on one channel); returns
    {revision: (key, value)}."""
    channel = grpc.insecure_channel(server.endpoint)
    try:
        kv = etcdrpc.KVStub(channel)
        acked, inflight = {}, []

        def settle(k, v, f):
            acked[f.result().header.revision] = (k, v)

        for k in keys:
            v = value_of(k)
            inflight.append((k, v, kv.Put.future(etcdrpc.PutRequest(key=k, value=v),
                                                 timeout=60)))
            if len(inflight) >= window:
                settle(*inflight.pop(0))
        for item in inflight:
            settle(*item)
        return acked
    finally:
        channel.close()


def test_raw_slow_consumer_loses_nothing(server):
    n = 20000
    keys = [b"s/%05d" % i for i in range(n)]

    def value_of(k):
        return k * 8                   # 56 bytes, distinct per key

    with WatchStream(server.endpoint) as s:
        r = s.create("s/", range_end=prefix_end("s/"))
        start = r.revision
        s.pause()                      # stop reading: the server must hold, or block, not drop
        acked = put_many(server, keys, value_of)
        assert sorted(acked) == list(range(start + 1, start + n + 1))
        s.resume()
        got, count = [], 0
        deadline = time.monotonic() + 120
        while count < n:
            left = deadline - time.monotonic()
            assert left > 0, f"{count} of {n} events within 120s"
            x = s.next(left)
            got.append(x)
            count += len(x.events)
        extra, _ = s.no_response_before_barrier()
    assert extra == []
    assert not any(x.canceled or x.created or x.compact_revision for x in got)
    events = events_of(got)
    assert [e.kv.mod_revision for e in events] == list(range(start + 1, start + n + 1))
    assert all((e.kv.key, e.kv.value) == acked[e.kv.mod_revision] for e in events)
    assert all(e.type == PUT for e in events)
    for x in got:  # a response never reports a revision below its events'
        assert x.revision >= x.events[-1].kv.mod_revision


def test_raw_slow_stream_of_many_watchers(server):
    """One stream that stops reading while it has watchers of every kind — the whole prefix, one
    key, a sub-range, prev_kv, NOPUT, NODELETE, one started in the past — and thousands of
    revisions are written: when it reads again, each watcher has exactly its events, in order,
    as a watcher alone on a stream of its own sees them (the server may catch them up together
    from the history)."""
    keys = [b"w/%04d" % i for i in range(3000)]
    with WatchStream(server.endpoint) as ref, WatchStream(server.endpoint) as s:
        ref.create("w/", range_end=prefix_end("w/"), prev_kv=True)
        early = put(server, "w/early", "0")  # before the past watcher's start, and after it
        now = put(server, "w/early", "1")
        specs = {
            "all": dict(key="w/", range_end=prefix_end("w/")),
            "one": dict(key="w/0042"),
            "sub": dict(key="w/1", range_end="w/2"),
            "prev": dict(key="w/", range_end=prefix_end("w/"), prev_kv=True),
            "noput": dict(key="w/", range_end=prefix_end("w/"), filters=[NOPUT]),
            "nodel": dict(key="w/2", range_end=prefix_end("w/2"), filters=[NODELETE]),
            "past": dict(key="w/", range_end=prefix_end("w/"), start_revision=early),
        }
        ids = {name: s.create(**spec).watch_id for name, spec in specs.items()}
        s.pause()
        put_many(server, keys, lambda k: k * 160)  # ~1 KB values: ~10 MB the reader leaves
        for k in keys[::7]:  # a seventh of the keys deleted and put again
            delete(server, k)
            put(server, k, b"again")
        last = put(server, "w/zlast", "end")
        history = events_of(ref.collect(
            lambda rs: any(e.kv.mod_revision == last for r in rs for e in r.events),
            timeout=120, what="the reference watcher's events"))

        def within(e, lo, hi):
            return lo.encode() <= e.kv.key < hi.encode()

        wanted = {
            "all": lambda e: e.kv.mod_revision > now,
            "one": lambda e: e.kv.key == b"w/0042",
            "sub": lambda e: within(e, "w/1", "w/2"),
            "prev": lambda e: e.kv.mod_revision > now,
            "noput": lambda e: e.type != PUT,
            "nodel": lambda e: within(e, "w/2", "w/3") and e.type == PUT,
            "past": lambda e: e.kv.mod_revision >= early,
        }
        expect = {name: [e for e in history if f(e)] for name, f in wanted.items()}
        s.resume()

        def complete(rs):
            return all(len(events_of(rs, ids[name])) >= len(ev) for name, ev in expect.items())

        got = s.collect(complete, timeout=120, what="every watcher's events")
        extra, _ = s.no_response_before_barrier()
    assert extra == []
    assert not any(r.canceled or r.compact_revision for r in got)
    assert all(r.revision >= r.events[-1].kv.mod_revision for r in got if r.events)

    def plain(e):  # an event as a watcher without prev_kv receives it
        return (e.type, e.kv.tuple())

    def with_prev(e):
        return (e.type, e.kv.tuple(), e.prev_kv.tuple() if e.prev_kv else None)

    for name, ev in expect.items():
        form = with_prev if name == "prev" else plain
        assert [form(e) for e in events_of(got, ids[name])] == [form(e) for e in ev], name
    assert len(expect["one"]) == 3 and len(expect["noput"]) == len(keys[::7])


def test_raw_compaction_while_lagging(server):
    """A watcher that stops reading while its history is compacted away: what it receives is a
    gapless prefix of the history, and then either the rest (the server had it buffered) or a
    cancel with compact_revision — never events after a silent gap."""
    value = "x" * 200
    with WatchStream(server.endpoint) as s:
        r = s.create("c/", range_end=prefix_end("c/"))
        start = r.revision
        s.pause()
        last = start
        for i in range(300):  # 300 revisions of 100 events: ~7 MiB the reader does not take
            last = txn_puts(server, [(f"c/{i:03d}/{j:03d}", value) for j in range(100)])
        compact(server, last)
        s.resume()
        got = s.collect(lambda rs: (sum(len(x.events) for x in rs) == 30000
                                    or any(x.canceled for x in rs)),
                        timeout=120, what="the events or the cancel")
    events = events_of(got)
    revs = sorted({e.kv.mod_revision for e in events})
    assert revs == list(range(start + 1, start + 1 + len(revs))), "a gap in the revisions"
    assert all(len([e for e in events if e.kv.mod_revision == rv]) == 100 for rv in revs)
    cancels = [x for x in got if x.canceled]
    if cancels:
        (c,) = cancels
        assert c is got[-1]
        assert c.compact_revision == last
        assert (revs[-1] if revs else start) + 1 < last  # it still needed compacted history
    else:
        assert revs[-1] == last


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon")


def test_raw_stopped_reader_bounded_memory(servers):
    """100,000 events (about 100 MiB) written while a watch stream does not read: cairnd's own
    memory grows by far less than what it would hold if it queued them (it keeps one send queue,
    and the watcher reads the rest from the history later); when the reader goes on it receives
    every event, in order. cairnd only: etcd 3.4 sends a lagging watcher up to 1,000 revisions in
    one response (85 MB here), beyond what gRPC clients accept by default."""
    value = "v" * 1000
    # the same writes without a watcher: what the store and the log take by themselves
    alone = servers("cairnd")
    before = rss_anon_kib(alone.proc.pid)
    for i in range(1000):
        txn_puts(alone, [(f"m/{i:04d}/{j:02d}", value) for j in range(100)])
    baseline = (rss_anon_kib(alone.proc.pid) - before) / 1024
    server = servers("cairnd")
    with WatchStream(server.endpoint) as s:
        r = s.create("m/", range_end=prefix_end("m/"))
        start = r.revision
        s.pause()
        before = rss_anon_kib(server.proc.pid)
        last = start
        for i in range(1000):
            last = txn_puts(server, [(f"m/{i:04d}/{j:02d}", value) for j in range(100)])
        after = rss_anon_kib(server.proc.pid)
        assert last == start + 1000
        s.resume()
        count = 0
        deadline = time.monotonic() + 180
        while count < 100000:
            left = deadline - time.monotonic()
            assert left > 0, f"{count} of 100000 events within 180s"
            x = s.next(left)
            assert not (x.canceled or x.compact_revision), x
            for e in x.events:
                i, j = divmod(count, 100)
                assert (e.kv.mod_revision, e.kv.key) == (start + 1 + i, b"m/%04d/%02d" % (i, j))
                count += 1
    grew = (after - before) / 1024
    # queued, the events would take over 100 MiB; the watcher may cost its send queue and
    # HTTP/2 window (a few MiB) and one revision
    assert grew < baseline + 16, (f"cairnd's own memory grew {grew:.1f} MiB while the reader "
                                  f"stopped, {baseline:.1f} MiB without a watcher")


# --------------------------------------------------------------------------------------------
# 4. a 3-member cluster


@pytest.fixture(params=["etcd", "cairnd"])
def watch_cluster(request, monkeypatch):
    """A factory: a cluster of etcd 3.4 or of cairnd members (conftest.cluster_factory)."""
    with cluster_factory(request, request.param, monkeypatch) as make:
        yield make


def retry(fn, what, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - e.g. no leader for now
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} failed for {timeout}s: {e!r}")
            time.sleep(0.2)


class Follower:
    """A watcher of prefix w/ on one member, from revision `start`, that re-creates itself on a
    new stream from the last revision it saw + 1 if its stream breaks. .seen: [(revision, type,
    key, value)] of every event, in the order received."""

    def __init__(self, member, start):
        self.member = member
        self.next_rev = start
        self.seen = []
        self.restarts = 0
        self.stream = None
        self._open()

    def _open(self):
        if self.stream is not None:
            self.stream.close()
        self.stream = WatchStream(self.member.endpoint)
        r = self.stream.create("w/", range_end=prefix_end("w/"), start_revision=self.next_rev)
        assert r.watch_id == 0

    def poll_until(self, revision, timeout=60):
        """Takes responses until it has seen revision (re-creating the watch on a broken
        stream)."""
        deadline = time.monotonic() + timeout
        while self.next_rev <= revision:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"watcher on {self.member.name} saw up to revision "
                                     f"{self.next_rev - 1} of {revision} within {timeout}s")
            try:
                r = self.stream.next(min(left, 5))
            except StreamEnded:
                self.restarts += 1
                retry(self._open, f"re-creating the watch on {self.member.name}",
                      timeout=max(1, deadline - time.monotonic()))
                continue
            except AssertionError:
                continue  # nothing for now
            assert not r.canceled and not r.compact_revision, r
            for e in r.events:
                self.seen.append((e.kv.mod_revision, e.type_name, e.kv.key, e.kv.value))
                self.next_rev = e.kv.mod_revision + 1

    def close(self):
        if self.stream is not None:
            self.stream.close()


def test_cluster_watchers_agree(watch_cluster):
    cl = watch_cluster(3)
    start = cl.wait_converged() + 1
    followers = [Follower(m, start) for m in cl]
    try:
        acked = {}
        for i in range(30):
            m = cl[i % 3]
            key = f"w/{i % 7}"
            if i % 5 == 4:
                r = retry(lambda: m.client().kvstub.DeleteRange(
                    etcdrpc.DeleteRangeRequest(key=key.encode()), timeout=10), f"delete {key}")
                if r.deleted:
                    acked[r.header.revision] = ("DELETE", key.encode(), b"")
            else:
                value = f"{i}-via-{m.name}"
                rev = retry(lambda: m.put(key, value), f"put {key}").header.revision
                acked[rev] = ("PUT", key.encode(), value.encode())
        last = max(acked)
        for f in followers:
            f.poll_until(last)
    finally:
        for f in followers:
            f.close()
    want = [(rev,) + acked[rev] for rev in sorted(acked)]
    assert [r for r, *_ in want] == list(range(start, last + 1))
    for f in followers:
        assert f.seen == want, f.member.name


def test_cluster_watchers_survive_leader_kill(watch_cluster):
    cl = watch_cluster(3)
    start = cl.wait_converged() + 1
    followers = {m.name: Follower(m, start) for m in cl}
    try:
        lead = cl.leader()
        survivors = [m for m in cl if m is not lead]
        for i in range(20):
            m = survivors[i % 2]
            retry(lambda: m.put(f"w/before/{i:02d}", f"v{i}"), "put before the kill")
        lead.kill9()
        followers.pop(lead.name).close()
        acked = {}
        for i in range(20):
            m = survivors[i % 2]
            rev = retry(lambda: m.put(f"w/after/{i:02d}", f"v{i}"), "put after the kill",
                        timeout=60).header.revision
            acked[rev] = (f"w/after/{i:02d}".encode(), f"v{i}".encode())
        final = cl.wait_converged(among=survivors)
        for f in followers.values():
            f.poll_until(final)
        # what the survivors hold: every key under w/, with its revision
        state = {kv.key: (kv.value, kv.mod_revision) for kv in survivors[0].range(
            "w/", prefix=True).kvs}
    finally:
        for f in followers.values():
            f.close()
    assert len(state) == 40
    for name, f in followers.items():
        revs = [r for r, *_ in f.seen]
        # every revision exactly once, in order, no gap (each is one put of a new key)
        assert revs == list(range(start, final + 1)), name
        by_key = {k: (v, r) for r, _, k, v in f.seen}
        assert by_key == state, name
        for rev, (k, v) in acked.items():
            assert (rev, "PUT", k, v) in f.seen, (name, rev)


@pytest.mark.parametrize("tool", ["etcdctl", "cairnctl"])
def test_cluster_client_watch_resumes_as_members_die(watch_cluster, tool, cairnctl):
    """A watch through a client given all three endpoints — etcdctl (clientv3) or cairnctl (our C
    client library) — while each member in turn is killed and restarted, with puts meanwhile:
    whichever member carried the stream, the client resumes on another from the last revision it
    delivered + 1, so it prints every put's event exactly once, in order."""
    cl = watch_cluster(3)
    start = cl.wait_converged() + 1
    endpoints = ",".join(m.endpoint for m in cl)
    binary = ETCDCTL if tool == "etcdctl" else cairnctl
    acked = {}

    def put_through(members, i):
        m = members[i % len(members)]
        r = retry(lambda: m.put(f"r/{i:03d}", f"v{i}"), f"put r/{i:03d} on {m.name}")
        acked[r.header.revision] = (f"r/{i:03d}".encode(), f"v{i}".encode())

    def seen(text):
        out = []
        for line in text.splitlines():
            for e in json.loads(line).get("Events") or []:
                out.append((e["kv"]["mod_revision"], base64.b64decode(e["kv"]["key"]),
                            base64.b64decode(e["kv"].get("value", ""))))
        return out

    with CtlWatch(endpoints, "--prefix", "r/", "--rev", str(start), "-w", "json",
                  binary=binary) as w:
        i = 0
        for victim in list(cl):
            for _ in range(20):
                put_through(list(cl), i)
                i += 1
            victim.kill9()
            survivors = [m for m in cl if m is not victim]
            for _ in range(20):
                put_through(survivors, i)
                i += 1
            cl.restart(victim)
        last = max(acked)
        text = w.wait_for(lambda t: any(r == last for r, _, _ in seen(t.rsplit("\n", 1)[0])),
                          timeout=60, what="the last put's event")
    events = seen(text.rsplit("\n", 1)[0])
    revs = [r for r, _, _ in events]
    # nothing but these puts (and a retried one's second write) changes the cluster
    assert revs == list(range(start, last + 1)), "a gap, a duplicate or a reordering"
    got = {r: (k, v) for r, k, v in events}
    assert all(got[r] == kv for r, kv in acked.items())


def test_raw_malformed_requests(server):
    """Bytes that are not a WatchRequest end that stream with an error (gRPC's INTERNAL decoding
    failure), and nothing else: the server keeps serving watches and writes."""
    with WatchStream(server.endpoint) as s:
        s.create("ok")
        s.send(b"\x0a\xff\xff\xff\xff\x0f")  # a create request whose length runs past the end
        with pytest.raises(StreamEnded) as e:
            while True:
                s.next(timeout=15)
        assert e.value.error is not None
        assert e.value.error.code() == grpc.StatusCode.INTERNAL
    # an empty request (no union member) and an unknown field are ignored, as etcd ignores them
    with WatchStream(server.endpoint) as s:
        s.send(b"")
        s.send(b"\xa2\x06\x01x")  # field 100, length-delimited
        r = s.create("k")
        assert (r.watch_id, r.canceled) == (0, False)
        rev = put(server, "k", "v")
        got = s.collect(lambda rs: any(x.events for x in rs), what="the event after junk")
        assert [(x.revision, [ev(e) for e in x.events]) for x in got if x.events] == [
            (rev, [("PUT", b"k", b"v", rev, rev, 1)])]


@pytest.mark.parametrize("kind", ["etcd", "cairnd"])
def test_raw_progress_notify(servers, kind):
    """progress_notify with etcd's --experimental-watch-progress-notify-interval made short: a
    watcher that asked for them gets empty responses with its id and the current revision while
    nothing happens to its keys; one that did not ask gets none; no event at or below a notified
    revision follows."""
    server = servers(kind, extra_args=["--experimental-watch-progress-notify-interval", "300ms"])
    with WatchStream(server.endpoint) as s:
        quiet = s.create("p", progress_notify=True).watch_id
        other = s.create("q").watch_id
        rev = put(server, "elsewhere", "1")

        def notifications(rs):
            return [x for x in rs if x.watch_id == quiet and not x.events
                    and not (x.created or x.canceled)]

        got = s.collect(lambda rs: len(notifications(rs)) >= 2, what="two progress notifications")
        assert not any(x.watch_id == other for x in got)
        assert notifications(got)[-1].revision == rev
        assert_identity(server, notifications(got)[-1].header)
        put(server, "p", "v")
        got = s.collect(lambda rs: any(x.events for x in rs)
                        and len(notifications(rs[[i for i, x in enumerate(rs) if x.events][0]:]))
                        >= 1, what="the event, then a notification")
        notified = None
        for x in got:
            if x.events:
                assert notified is None or x.events[0].kv.mod_revision > notified
            elif x in notifications(got):
                notified = x.revision
        assert notified == current_revision(server)
        later = put(server, "p", "w")
        assert later > notified
        got = s.collect(lambda rs: any(x.events for x in rs), what="the later event")
        assert [e.kv.mod_revision for x in got for e in x.events] == [later]


def test_cluster_hasleader_streams(watch_cluster):
    """clientv3's WithRequireLeader ("hasleader" metadata) on Watch: a stream open when the member
    loses its quorum ends with "etcdserver: no leader" (etcd's leader monitor), and a new one is
    refused so."""
    cl = watch_cluster(3)
    cl.wait_converged()
    leader = cl.leader()
    survivor = next(m for m in cl if m is not leader)
    hasleader = [("hasleader", "true")]
    with WatchStream(survivor.endpoint, metadata=hasleader) as s:
        s.create("h")
        for m in cl:
            if m is not survivor:
                m.kill9()
        with pytest.raises(StreamEnded) as e:
            while True:
                s.next(timeout=60)
        assert e.value.error is not None
        assert (e.value.error.code(), e.value.error.details()) == (
            grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")
    with WatchStream(survivor.endpoint, metadata=hasleader) as s:
        s.send(create_request("h"))
        with pytest.raises(StreamEnded) as e:
            s.next(timeout=30)
        assert (e.value.error.code(), e.value.error.details()) == (
            grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")


def test_cluster_learner_refuses_watch(watch_cluster):
    """A learner serves no streams: Watch on it fails "etcdserver: rpc not supported for
    learner" (etcd's stream interceptor); of the unary calls it answers Status and serializable
    Ranges only (etcd's isRPCSupportedForLearner)."""
    from test_cluster import etcdctl_at

    cl = watch_cluster(3)
    cl.wait_converged()
    new = cl.add_member()
    deadline = time.monotonic() + 60
    while True:  # etcd refuses reconfiguration until its members have been up for a while
        rc, out, err = etcdctl_at(cl.endpoints()[:3], "member", "add", new.name,
                                  f"--peer-urls={new.peer_url}", "--learner")
        if rc == 0 or "unhealthy cluster" not in err or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert rc == 0, err
    cl.restart(new)
    with WatchStream(new.endpoint) as s:
        s.send(create_request("l"))
        with pytest.raises(StreamEnded) as e:
            s.next(timeout=30)
        assert (e.value.error.code(), e.value.error.details()) == (
            grpc.StatusCode.UNAVAILABLE, "etcdserver: rpc not supported for learner")
    refused = (grpc.StatusCode.UNAVAILABLE, "etcdserver: rpc not supported for learner")
    c = new.client()
    assert c.kvstub.Range(etcdrpc.RangeRequest(key=b"l", serializable=True), timeout=10)
    assert c.maintenancestub.Status(etcdrpc.StatusRequest(), timeout=10).header.member_id
    for call, req in ((c.kvstub.Range, etcdrpc.RangeRequest(key=b"l")),
                      (c.kvstub.Put, etcdrpc.PutRequest(key=b"l", value=b"v")),
                      (c.kvstub.Txn, etcdrpc.TxnRequest()),
                      (c.clusterstub.MemberList, etcdrpc.MemberListRequest()),
                      (c.leasestub.LeaseGrant, etcdrpc.LeaseGrantRequest(TTL=10))):
        with pytest.raises(grpc.RpcError) as e:
            call(req, timeout=10)
        assert (e.value.code(), e.value.details()) == refused, call
