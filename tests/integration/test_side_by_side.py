"""The same etcdctl session against etcd 3.4 and cairnd at once; every output compared after
normalizing (identity, raft term, version, sizes, raft indexes and timings blanked).

Complements the per-kind tests (which assert exact expected outputs): this one catches any
difference in what was not spelled out, including HashKV — cairn's store hashes its history
exactly as etcd's does.
"""

import json

import pytest

from conftest import normalize, normalize_fields

# (stdin or None, etcdctl args...)
SESSION = [
    (None, "put", "a", "1"),
    (None, "put", "b", "2", "--prev-kv"),
    (None, "put", "a", "11", "--prev-kv"),
    (None, "-w", "json", "put", "c", "3", "--prev-kv"),
    (None, "-w", "json", "put", "c", "33", "--prev-kv"),
    (None, "put", "a", "--ignore-value"),
    (None, "put", "nokey", "--ignore-value"),
    (None, "put", "dir/1", "x"),
    (None, "put", "dir/2", "y"),
    (None, "put", "dir/3", "z"),
    (None, "put", "dir0", "w"),
    (None, "get", "a"),
    (None, "get", "", "--prefix"),
    (None, "-w", "json", "get", "", "--prefix"),
    (None, "-w", "fields", "get", "dir/", "--prefix"),
    (None, "get", "dir/", "--prefix", "--limit", "2", "-w", "json"),
    (None, "get", "b", "--from-key", "--keys-only"),
    (None, "get", "", "--prefix", "--sort-by=VALUE", "--order=DESCEND"),
    (None, "get", "", "--prefix", "--sort-by=VERSION", "--order=ASCEND", "-w", "json"),
    (None, "get", "", "--prefix", "--sort-by=CREATE", "--order=DESCEND", "--limit", "3"),
    (None, "get", "", "--prefix", "--sort-by=MODIFY", "--print-value-only"),
    (None, "get", "a", "--rev=3"),
    (None, "get", "a", "--rev=100"),
    (None, "get", "a", "--consistency=s", "-w", "json"),
    ('value("a") = "11"\nversion("b") = "1"\n\nput a 12\nget a\ndel b --prev-kv\n\nput z 0\n\n',
     "txn"),
    ('mod("a") > "100"\n\nput a 12\n\nget dir/ --prefix\nput z 1\n\n', "-w", "json", "txn"),
    ('create("zz") = "0"\n\nput zz 1\n\n\n', "-w", "fields", "txn"),
    ('bad\n\n\n\n', "txn"),
    (None, "del", "dir/", "--prefix", "--prev-kv"),
    (None, "-w", "json", "del", "dir0", "--prev-kv"),
    (None, "del", "nothing"),
    (None, "-w", "json", "endpoint", "hashkv"),
    (None, "compaction", "5"),
    (None, "get", "a", "--rev=4"),
    (None, "get", "a", "--rev=5"),
    (None, "compaction", "5"),
    (None, "-w", "json", "endpoint", "hashkv"),
    (None, "-w", "json", "endpoint", "status"),
    (None, "-w", "json", "endpoint", "health"),
]


def outcome(server, stdin, args):
    rc, out, err = server.ctl(*args, input=stdin)
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    if "-w" in args and args[args.index("-w") + 1] == "json" and rc == 0:
        data = normalize(json.loads(out))
        # the endpoint address differs between the two servers
        for d in data if isinstance(data, list) else []:
            for k in ("Endpoint", "endpoint"):
                if k in d:
                    d[k] = "<endpoint>"
        out = data
    elif "fields" in args:
        out = normalize_fields(out)
    return rc, out, errors


def test_same_session_same_outputs(servers):
    cairnd = servers("cairnd")  # first: skips before etcd starts if cairnd is not built
    etcd = servers("etcd")
    diffs = []
    for stdin, *args in SESSION:
        want = outcome(etcd, stdin, args)
        got = outcome(cairnd, stdin, args)
        if want != got:
            diffs.append(f"etcdctl {' '.join(args)}" + (f" <<< {stdin!r}" if stdin else "")
                         + f"\n  etcd:   {want}\n  cairnd: {got}")
    assert not diffs, "\n".join(diffs)


@pytest.mark.parametrize("n", [200])
def test_hashkv_matches_after_random_history(servers, n):
    """A longer deterministic history through the python client; HashKV at several revisions
    and after a compaction must be equal."""
    import random

    from etcd3 import etcdrpc

    cairnd = servers("cairnd")  # first: skips before etcd starts if cairnd is not built
    etcd = servers("etcd")
    rng = random.Random(7)
    keys = [f"h/{i}" for i in range(20)]
    for s in (etcd, cairnd):
        rng.seed(7)
        c = s.client()
        for i in range(n):
            k = rng.choice(keys)
            op = rng.random()
            if op < 0.7:
                c.put(k, str(rng.randrange(1000)))
            elif op < 0.9:
                c.delete(k)
            else:
                c.delete_prefix("h/1")
    revs = [etcd.client().maintenancestub.Status(etcdrpc.StatusRequest(), timeout=10)
            .header.revision]
    assert cairnd.client().maintenancestub.Status(etcdrpc.StatusRequest(), timeout=10) \
        .header.revision == revs[0]

    def hashes(s, rev):
        r = s.client().maintenancestub.HashKV(etcdrpc.HashKVRequest(revision=rev), timeout=10)
        return r.hash, r.compact_revision, r.header.revision

    for rev in (0, revs[0] // 2, revs[0]):
        assert hashes(etcd, rev) == hashes(cairnd, rev), rev
    for s in (etcd, cairnd):
        s.client().compact(revs[0] // 3)
    for rev in (0, revs[0] // 2):
        assert hashes(etcd, rev) == hashes(cairnd, rev), rev


def rpc_session():
    """(stub name, method, request) — raw gRPC calls through python3-etcd3's stubs."""
    from etcd3 import etcdrpc as r

    put = lambda k, v, **kw: ("kvstub", "Put", r.PutRequest(key=k, value=v, **kw))  # noqa: E731
    rng = lambda k, **kw: ("kvstub", "Range", r.RangeRequest(key=k, **kw))  # noqa: E731
    op_put = lambda k, v: r.RequestOp(request_put=r.PutRequest(key=k, value=v))  # noqa: E731
    return [
        put(b"a", b"1"), put(b"b", b"2"), put(b"a", b"3", prev_kv=True),
        put(b"c", b"", prev_kv=True), put(b"a", b"", ignore_value=True, prev_kv=True),
        put(b"zz", b"", ignore_value=True), put(b"", b"x"), put(b"l", b"x", lease=12345),
        rng(b"a"), rng(b"", range_end=b"\0"), rng(b"a", range_end=b"\0", count_only=True),
        rng(b"a", range_end=b"z", limit=1), rng(b"a", range_end=b"z", keys_only=True),
        rng(b"a", range_end=b"z", min_mod_revision=3), rng(b"a", range_end=b"z",
                                                            max_create_revision=2),
        rng(b"a", range_end=b"z", min_create_revision=3, max_mod_revision=4),
        rng(b"a", revision=2), rng(b"a", revision=99), rng(b"a", serializable=True),
        rng(b"a", range_end=b"z", sort_order=2, sort_target=4, limit=2),
        rng(b"a", range_end=b"z", sort_order=0, sort_target=1, limit=2),
        ("kvstub", "DeleteRange", r.DeleteRangeRequest(key=b"nothing")),
        ("kvstub", "DeleteRange", r.DeleteRangeRequest(key=b"b", prev_kv=True)),
        ("kvstub", "DeleteRange", r.DeleteRangeRequest(key=b"")),
        ("kvstub", "Txn", r.TxnRequest(
            compare=[r.Compare(key=b"a", target=r.Compare.VALUE, result=r.Compare.EQUAL,
                               value=b"3")],
            success=[op_put(b"t", b"1"), r.RequestOp(request_range=r.RangeRequest(key=b"t")),
                     r.RequestOp(request_txn=r.TxnRequest(success=[op_put(b"u", b"1")]))],
            failure=[])),
        ("kvstub", "Txn", r.TxnRequest(
            compare=[r.Compare(key=b"a", target=r.Compare.MOD, result=r.Compare.LESS,
                               mod_revision=2)],
            success=[], failure=[r.RequestOp(request_range=r.RangeRequest(
                key=b"a", range_end=b"z", count_only=True))])),
        ("kvstub", "Txn", r.TxnRequest(success=[op_put(b"d", b"1"), op_put(b"d", b"2")])),
        ("kvstub", "Txn", r.TxnRequest()),
        ("kvstub", "Compact", r.CompactionRequest(revision=3)),
        ("kvstub", "Compact", r.CompactionRequest(revision=3)),
        ("kvstub", "Compact", r.CompactionRequest(revision=1000)),
        ("kvstub", "Compact", r.CompactionRequest(revision=4, physical=True)),
        rng(b"a", revision=3),
        ("maintenancestub", "HashKV", r.HashKVRequest(revision=0)),
        ("maintenancestub", "HashKV", r.HashKVRequest(revision=2)),
        ("maintenancestub", "Hash", r.HashRequest()),
        ("maintenancestub", "Status", r.StatusRequest()),
        ("clusterstub", "MemberList", r.MemberListRequest()),
        ("maintenancestub", "Alarm", r.AlarmRequest(action=r.AlarmRequest.GET)),
        ("maintenancestub", "Alarm", r.AlarmRequest(action=r.AlarmRequest.ACTIVATE, memberID=9,
                                                    alarm=r.NOSPACE)),
        put(b"a", b"4"),
        ("kvstub", "Txn", r.TxnRequest(success=[op_put(b"e", b"1")])),
        ("kvstub", "DeleteRange", r.DeleteRangeRequest(key=b"t", prev_kv=True)),
        ("maintenancestub", "Alarm", r.AlarmRequest(action=r.AlarmRequest.DEACTIVATE, memberID=9,
                                                    alarm=r.NOSPACE)),
        put(b"a", b"5"),
    ]


_RPC_BLANK = {"clusterId", "memberId", "raftTerm", "version", "dbSize", "dbSizeInUse",
              "leader", "raftIndex", "raftAppliedIndex", "ID", "peerURLs", "clientURLs"}


def _blank_rpc(obj, method):
    if isinstance(obj, list):
        return [_blank_rpc(x, method) for x in obj]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            kv_version = k == "version" and "createRevision" in obj
            # Hash hashes etcd's whole bolt file: never comparable (HashKV is)
            if (k in _RPC_BLANK and not kv_version) or (method == "Hash" and k == "hash"):
                out[k] = "<blank>"
            else:
                out[k] = _blank_rpc(v, method)
        return out
    return obj


def test_raw_rpcs_same_responses(servers):
    import grpc
    from google.protobuf.json_format import MessageToDict

    cairnd = servers("cairnd")
    etcd = servers("etcd")
    diffs = []
    for stub, method, req in rpc_session():
        got = []
        for s in (etcd, cairnd):
            fn = getattr(getattr(s.client(), stub), method)
            try:
                resp = fn(req, timeout=10)
                got.append(("ok", _blank_rpc(MessageToDict(resp), method)))
            except grpc.RpcError as e:
                got.append((e.code().name, e.details()))
        if got[0] != got[1]:
            diffs.append(f"{stub}.{method}({req!s:.200})\n  etcd:   {got[0]}\n  cairnd: {got[1]}")
    assert not diffs, "\n".join(diffs)
