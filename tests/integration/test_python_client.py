"""python3-etcd3 (0.12) against a fresh server — etcd 3.4 and cairnd, with the same assertions.

The library's own API where it has one (put/get/delete/get_prefix/get_range/get_all/transaction/
status/members/compact/delete_prefix); its generated stubs (client.kvstub ...) where the
library does not expose a field (a range at a revision). Errors the library does not translate
come out as grpc.RpcError with etcd's status code and message.
"""


import grpc
import pytest

import etcd3
import etcd3.exceptions
from etcd3 import etcdrpc

from conftest import CLUSTER_TOKEN, MEMBER_NAME, etcd_cluster_id, etcd_member_id

COMPACTED = "etcdserver: mvcc: required revision has been compacted"
FUTURE = "etcdserver: mvcc: required revision is a future revision"


def meta(m):
    return (m.key, m.create_revision, m.mod_revision, m.version)


def test_put_get_delete(server):
    c = server.client()
    r = c.put("k", "v1")
    assert r.header.revision == 2
    assert not r.HasField("prev_kv")
    value, m = c.get("k")
    assert value == b"v1" and meta(m) == (b"k", 2, 2, 1)
    assert m.lease_id == 0
    r = c.put("k", b"v2", prev_kv=True)
    assert r.header.revision == 3
    assert (r.prev_kv.key, r.prev_kv.value, r.prev_kv.version) == (b"k", b"v1", 1)
    value, m = c.get("k", serializable=True)
    assert value == b"v2" and meta(m) == (b"k", 2, 3, 2)
    assert c.get("missing") == (None, None)
    assert c.delete("missing") is False
    assert c.delete("k") is True  # rev 4
    assert c.get("k") == (None, None)
    c.put("k", "v3")  # rev 5: recreated, version starts again
    r = c.delete("k", prev_kv=True, return_response=True)  # rev 6
    assert r.deleted == 1 and r.header.revision == 6
    assert [(kv.key, kv.value, kv.create_revision, kv.version) for kv in r.prev_kvs] == [
        (b"k", b"v3", 5, 1)]
    # binary keys and values round-trip
    c.put(b"\x00\xff", b"\x01\x00\x02")
    assert c.get(b"\x00\xff")[0] == b"\x01\x00\x02"


def test_header_identity(server):
    c = server.client()
    r = c.put("a", "1")
    mid = etcd_member_id([server.peer_url], CLUSTER_TOKEN)
    assert r.header.member_id == mid
    assert r.header.cluster_id == etcd_cluster_id([mid])
    assert r.header.raft_term >= 1


def test_prefix_range_all_sorted(server):
    c = server.client()
    for k, v in [("p/b", "2"), ("p/a", "9"), ("p/c", "1"), ("q", "0"), ("p/a", "5")]:
        c.put(k, v)  # revs 2..6: p/a create 3 mod 6 version 2
    got = [(m.key, v) for v, m in c.get_prefix("p/")]
    assert got == [(b"p/a", b"5"), (b"p/b", b"2"), (b"p/c", b"1")]
    got = [m.key for _, m in c.get_prefix("p/", keys_only=True)]
    assert got == [b"p/a", b"p/b", b"p/c"]
    assert [v for v, _ in c.get_prefix("p/", keys_only=True)] == [b"", b"", b""]
    got = [m.key for _, m in c.get_prefix("p/", sort_order="descend")]
    assert got == [b"p/c", b"p/b", b"p/a"]
    got = [m.key for _, m in c.get_prefix("p/", sort_order="ascend", sort_target="value")]
    assert got == [b"p/c", b"p/b", b"p/a"]
    got = [m.key for _, m in c.get_prefix("p/", sort_order="descend", sort_target="create")]
    assert got == [b"p/c", b"p/a", b"p/b"]
    got = [m.key for _, m in c.get_prefix("p/", sort_order="ascend", sort_target="mod")]
    assert got == [b"p/b", b"p/c", b"p/a"]
    got = [m.key for _, m in c.get_prefix("p/", sort_order="descend", sort_target="version")]
    assert got[0] == b"p/a"
    # [start, end)
    got = [m.key for _, m in c.get_range("p/b", "q")]
    assert got == [b"p/b", b"p/c"]
    got = [m.key for _, m in c.get_range("p/a", "p/c", sort_order="descend")]
    assert got == [b"p/b", b"p/a"]
    # (the library's builder drops limit: use its stub)
    r = c.kvstub.Range(etcdrpc.RangeRequest(key=b"p/", range_end=b"p0", limit=2), timeout=10)
    assert r.count == 3 and r.more and [kv.key for kv in r.kvs] == [b"p/a", b"p/b"]
    assert r.header.revision == 6
    got = [m.key for _, m in c.get_all()]
    assert got == [b"p/a", b"p/b", b"p/c", b"q"]
    got = [m.key for _, m in c.get_all(sort_order="descend", sort_target="mod")]
    assert got == [b"p/a", b"q", b"p/c", b"p/b"]
    r = c.get_prefix_response("p/", count_only=None, keys_only=True)
    assert r.count == 3


def test_delete_prefix(server):
    c = server.client()
    for i in range(5):
        c.put(f"d/{i}", str(i))
    c.put("d0", "outside")
    r = c.delete_prefix("d/")
    assert r.deleted == 5 and r.header.revision == 8
    assert list(c.get_prefix("d/")) == []
    assert c.get("d0")[0] == b"outside"
    r = c.delete_prefix("d/")
    assert r.deleted == 0 and r.header.revision == 8


def test_transactions_each_compare(server):
    c = server.client()
    t = c.transactions
    c.put("k", "1")  # 2
    c.put("k", "2")  # 3: k create 2, mod 3, version 2
    cases = [
        (t.value("k") == "2", True), (t.value("k") == "1", False),
        (t.value("k") != "1", True), (t.value("k") > "1", True), (t.value("k") < "2", False),
        (t.version("k") == 2, True), (t.version("k") > 2, False), (t.version("k") < 3, True),
        (t.version("k") != 2, False), (t.version("missing") == 0, True),
        (t.create("k") == 2, True), (t.create("k") > 1, True), (t.create("k") < 2, False),
        (t.create("missing") == 0, True),
        (t.mod("k") == 3, True), (t.mod("k") > 3, False), (t.mod("k") < 4, True),
        (t.mod("k") != 3, False),
    ]
    for compare, expected in cases:
        ok, responses = c.transaction(compare=[compare], success=[t.get("k")],
                                      failure=[t.get("missing")])
        assert ok is expected, compare
        if expected:
            assert [(v, m.key) for v, m in responses[0]] == [(b"2", b"k")]
        else:
            assert responses == [[]]
    # success branch writes, all in one revision
    ok, responses = c.transaction(
        compare=[t.value("k") == "2", t.version("k") == 2],
        success=[t.put("k", "3", prev_kv=True), t.put("other", "x"), t.delete("nothing")],
        failure=[t.put("never", "1")])
    assert ok is True
    assert responses[0].response_put.header.revision == 4
    assert responses[0].response_put.prev_kv.value == b"2"
    assert responses[2].response_delete_range.deleted == 0
    assert c.get("other")[1].mod_revision == 4
    assert c.get("never") == (None, None)
    # failure branch
    ok, responses = c.transaction(compare=[t.mod("k") < 4], success=[t.put("never", "1")],
                                  failure=[t.delete("other", prev_kv=True)])
    assert ok is False
    assert responses[0].response_delete_range.deleted == 1
    assert responses[0].response_delete_range.header.revision == 5
    assert c.get("never") == (None, None)
    # the library's helpers built on compares
    assert c.put_if_not_exists("fresh", "1") is True
    assert c.put_if_not_exists("fresh", "2") is False
    assert c.replace("fresh", "1", "3") is True
    assert c.replace("fresh", "1", "4") is False
    assert c.get("fresh")[0] == b"3"


def test_nested_txn_and_range_compare(server):
    c = server.client()
    t = c.transactions
    for k in ("r/1", "r/2", "r/3"):
        c.put(k, "v")  # 2..4
    # a compare over a range: every key in it must satisfy it
    ok, _ = c.transaction(compare=[t.version("r/", range_end="r0") == 1], success=[],
                          failure=[])
    assert ok is True
    c.put("r/2", "w")  # 5
    ok, _ = c.transaction(compare=[t.version("r/", range_end="r0") == 1], success=[],
                          failure=[])
    assert ok is False
    resp = c.kvstub.Txn(etcdrpc.TxnRequest(success=[etcdrpc.RequestOp(
        request_txn=etcdrpc.TxnRequest(success=[etcdrpc.RequestOp(
            request_put=etcdrpc.PutRequest(key=b"nested", value=b"1"))]))]), timeout=10)
    assert resp.succeeded and resp.header.revision == 6
    assert resp.responses[0].response_txn.succeeded
    assert c.get("nested")[1].mod_revision == 6


def test_status_and_members(server):
    c = server.client()
    c.put("a", "1")
    st = c.status()
    assert isinstance(st.version, str) and st.version
    assert st.db_size > 0
    assert st.raft_index >= 1 and st.raft_term >= 1
    mid = etcd_member_id([server.peer_url], CLUSTER_TOKEN)
    assert st.leader is not None and st.leader.id == mid
    members = list(c.members)
    assert len(members) == 1
    m = members[0]
    assert (m.id, m.name, list(m.peer_urls), list(m.client_urls)) == (
        mid, MEMBER_NAME, [server.peer_url], [server.client_url])
    raw = c.maintenancestub.Status(etcdrpc.StatusRequest(), timeout=10)
    assert raw.header.revision == 2 and raw.leader == mid
    assert raw.raftIndex >= st.raft_index and raw.raftTerm == raw.header.raft_term
    c.put("b", "2")
    assert c.maintenancestub.Status(etcdrpc.StatusRequest(), timeout=10).raftIndex > raw.raftIndex


def rpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as ei:
        fn(*args, **kw)
    return ei.value.code(), ei.value.details()


def test_compacted_and_future_revisions(server):
    c = server.client()
    for i in range(5):
        c.put("k", str(i))  # 2..6
    c.compact(4)
    assert rpc_error(c.kvstub.Range, etcdrpc.RangeRequest(key=b"k", revision=3),
                     timeout=10) == (grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
    r = c.kvstub.Range(etcdrpc.RangeRequest(key=b"k", revision=4), timeout=10)
    assert r.kvs[0].value == b"2" and r.header.revision == 6
    assert rpc_error(c.kvstub.Range, etcdrpc.RangeRequest(key=b"k", revision=7),
                     timeout=10) == (grpc.StatusCode.OUT_OF_RANGE, FUTURE)
    assert rpc_error(c.compact, 4) == (grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
    assert rpc_error(c.compact, 100) == (grpc.StatusCode.OUT_OF_RANGE, FUTURE)
    c.compact(5, physical=True)
    assert rpc_error(c.kvstub.Range, etcdrpc.RangeRequest(key=b"k", revision=4),
                     timeout=10) == (grpc.StatusCode.OUT_OF_RANGE, COMPACTED)


def test_invalid_requests(server):
    c = server.client()
    code, msg = rpc_error(c.put, "", "v")
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided")
    code, msg = rpc_error(c.kvstub.Range, etcdrpc.RangeRequest(key=b""), timeout=10)
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided")
    t = c.transactions
    code, msg = rpc_error(c.transaction, compare=[],
                          success=[t.put(f"k{i}", "v") for i in range(129)], failure=[])
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT,
                           "etcdserver: too many operations in txn request")
    code, msg = rpc_error(c.transaction, compare=[],
                          success=[t.put("dup", "1"), t.put("dup", "2")], failure=[])
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT,
                           "etcdserver: duplicate key given in txn request")
    # over --max-request-bytes (default 1.5 MiB) but under the transport's limit
    code, msg = rpc_error(c.put, "big", b"x" * (1536 * 1024 + 100))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large")
    # just under the limit is accepted
    c.put("big", b"y" * (1024 * 1024))
    assert len(c.get("big")[0]) == 1024 * 1024
    # nothing of the refused requests was applied
    assert c.get("k0") == (None, None) and c.get("dup") == (None, None)
    assert c.get("big")[1].version == 1
    assert c.kvstub.Range(etcdrpc.RangeRequest(key=b"big"), timeout=10).header.revision == 2


SPACE = "etcdserver: mvcc: database space exceeded"


def fill_quota(s, limit=400):
    """Puts 100 KiB values until the quota refuses one; returns the acknowledged keys."""
    c = s.client()
    acked = []
    for i in range(limit):
        try:
            c.put(f"q/{i:04d}", bytes([65 + i % 26]) * (100 << 10))
        except grpc.RpcError as e:
            assert (e.code(), e.details()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, SPACE)
            return acked
        acked.append(i)
    pytest.fail(f"{limit} puts of 100 KiB fit in a 4 MiB quota on {s.kind}")


def test_quota_backend_bytes(server_kind, servers):
    s = servers(server_kind, extra_args=["--quota-backend-bytes", str(4 << 20)])
    acked = fill_quota(s)
    assert acked, "not a single put fit"
    c = s.client()
    # reads and deletes still work, acknowledged data intact
    for i in acked:
        v, m = c.get(f"q/{i:04d}")
        assert v == bytes([65 + i % 26]) * (100 << 10), i
    assert c.delete(f"q/{acked[0]:04d}") is True
