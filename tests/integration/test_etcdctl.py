"""etcdctl (3.4, API v3) against a fresh server — etcd 3.4 and cairnd, with the same assertions.

Revisions are deterministic on a fresh server (it starts at revision 1; the first put makes
revision 2), so the expected outputs are written out exactly; only identity, raft term, version,
database size and raft indexes are blanked (conftest.normalize / normalize_fields).
"""

import base64
import json

import pytest

from conftest import (BLANK, CLUSTER_TOKEN, MEMBER_NAME, etcd_cluster_id, etcd_member_id,
                      normalize, normalize_fields)

COMPACTED = "etcdserver: mvcc: required revision has been compacted"
FUTURE = "etcdserver: mvcc: required revision is a future revision"


def b64(s):
    return base64.b64encode(s.encode()).decode()


def header(rev):
    return {"cluster_id": BLANK, "member_id": BLANK, "revision": rev, "raft_term": BLANK}


def kv(key, value, create, mod, version, with_value=True):
    d = {"key": b64(key), "create_revision": create, "mod_revision": mod, "version": version}
    if with_value and value != "":
        d["value"] = b64(value)
    return d


def jctl(server, *args, **kw):
    """etcdctl -w json that must succeed: the parsed, normalized output."""
    out = server.ctl_ok("-w", "json", *args, **kw)
    return normalize(json.loads(out))


def simple(*lines):
    return "".join(line + "\n" for line in lines)


def ctl_error(server, *args, **kw):
    """etcdctl that must fail: (rc, the 'Error: ...' line)."""
    rc, out, err = server.ctl(*args, **kw)
    assert rc != 0, f"etcdctl {' '.join(args)} succeeded on {server.kind}: {out!r}"
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert errors, f"no 'Error:' line from etcdctl {' '.join(args)} on {server.kind}: {err!r}"
    return rc, errors[-1]


# --------------------------------------------------------------------------------------------
# put / get


def test_put_get_simple_and_prev_kv(server):
    assert server.ctl_ok("put", "a", "1") == "OK\n"
    assert server.ctl_ok("get", "a") == simple("a", "1")
    assert server.ctl_ok("get", "missing") == ""
    # put --prev-kv prints OK and the previous pair
    assert server.ctl_ok("put", "a", "2", "--prev-kv") == simple("OK", "a", "1")
    # nothing before: just OK
    assert server.ctl_ok("put", "b", "x", "--prev-kv") == "OK\n"
    assert server.ctl_ok("get", "a", "--print-value-only") == "2\n"
    assert server.ctl_ok("get", "a", "--keys-only") == simple("a", "")
    assert server.ctl_ok("get", "a", "--consistency=s") == simple("a", "2")
    # an empty value
    assert server.ctl_ok("put", "empty", "") == "OK\n"
    assert server.ctl_ok("get", "empty") == simple("empty", "")


def test_put_get_json(server):
    server.ctl_ok("put", "a", "1")                      # rev 2
    server.ctl_ok("put", "a", "22")                     # rev 3
    assert jctl(server, "get", "a") == {
        "header": header(3), "kvs": [kv("a", "22", 2, 3, 2)], "count": 1}
    assert jctl(server, "get", "nope") == {"header": header(3)}
    assert jctl(server, "put", "b", "v") == {"header": header(4)}
    assert jctl(server, "put", "a", "333", "--prev-kv") == {
        "header": header(5), "prev_kv": kv("a", "22", 2, 3, 2)}
    assert jctl(server, "get", "a", "--keys-only") == {
        "header": header(5), "kvs": [kv("a", "", 2, 5, 3, with_value=False)], "count": 1}
    assert jctl(server, "get", "a", "--consistency=s") == {
        "header": header(5), "kvs": [kv("a", "333", 2, 5, 3)], "count": 1}


def test_get_fields_output(server):
    server.ctl_ok("put", "k", "v")
    server.ctl_ok("put", "k", "w")
    out = normalize_fields(server.ctl_ok("-w", "fields", "get", "k"))
    assert out == simple(
        f'"ClusterID" : {BLANK}', f'"MemberID" : {BLANK}', '"Revision" : 3',
        f'"RaftTerm" : {BLANK}', '"Key" : "k"', '"CreateRevision" : 2', '"ModRevision" : 3',
        '"Version" : 2', '"Value" : "w"', '"Lease" : 0', '"More" : false', '"Count" : 1')
    out = normalize_fields(server.ctl_ok("-w", "fields", "put", "k", "x", "--prev-kv"))
    assert out == simple(
        f'"ClusterID" : {BLANK}', f'"MemberID" : {BLANK}', '"Revision" : 4',
        f'"RaftTerm" : {BLANK}', '"PrevKey" : "k"', '"PrevCreateRevision" : 2',
        '"PrevModRevision" : 3', '"PrevVersion" : 2', '"PrevValue" : "w"', '"PrevLease" : 0')


def put_ranges(server):
    for k, v in [("a", "1"), ("foo", "2"), ("foo/1", "3"), ("foo/2", "4"), ("fop", "5"),
                 ("z", "6")]:
        server.ctl_ok("put", k, v)  # revs 2..7


def test_get_prefix_from_key_range_limit(server):
    put_ranges(server)
    assert server.ctl_ok("get", "foo", "--prefix") == simple("foo", "2", "foo/1", "3",
                                                             "foo/2", "4")
    assert server.ctl_ok("get", "foo/", "--prefix", "--keys-only") == simple(
        "foo/1", "", "foo/2", "")
    assert server.ctl_ok("get", "foo", "--prefix", "--print-value-only") == simple("2", "3", "4")
    assert server.ctl_ok("get", "fop", "--from-key") == simple("fop", "5", "z", "6")
    assert server.ctl_ok("get", "", "--from-key", "--keys-only") == simple(
        *[x for k in ["a", "foo", "foo/1", "foo/2", "fop", "z"] for x in (k, "")])
    # explicit [key, range_end)
    assert server.ctl_ok("get", "foo/", "fop") == simple("foo/1", "3", "foo/2", "4")
    assert server.ctl_ok("get", "", "--prefix", "--limit", "2") == simple("a", "1", "foo", "2")
    assert server.ctl_ok("get", "foo", "--prefix", "--consistency=s", "--keys-only") == simple(
        "foo", "", "foo/1", "", "foo/2", "")
    assert jctl(server, "get", "foo", "--prefix", "--limit", "2") == {
        "header": header(7), "kvs": [kv("foo", "2", 3, 3, 1), kv("foo/1", "3", 4, 4, 1)],
        "more": True, "count": 3}
    assert jctl(server, "get", "", "--from-key", "--limit", "1", "--keys-only") == {
        "header": header(7), "kvs": [kv("a", "", 2, 2, 1, with_value=False)],
        "more": True, "count": 6}
    assert jctl(server, "get", "zz", "--from-key") == {"header": header(7)}


def put_sortable(server):
    """Three keys whose CREATE/KEY/MODIFY/VALUE/VERSION orders all differ:
    a (create 3, mod 3, version 1, "3"), b (4, 7, 3, "0"), c (2, 5, 2, "5")."""
    for k, v in [("c", "1"), ("a", "3"), ("b", "2"), ("c", "5"), ("b", "4"), ("b", "0")]:
        server.ctl_ok("put", k, v)


SORT_ASCEND = {
    "CREATE": ["c", "a", "b"],
    "KEY": ["a", "b", "c"],
    "MODIFY": ["a", "c", "b"],
    "VALUE": ["b", "a", "c"],
    "VERSION": ["a", "c", "b"],
}
VALUES = {"a": "3", "b": "0", "c": "5"}


def test_get_sort_by_and_order(server):
    put_sortable(server)
    for target, ascend in SORT_ASCEND.items():
        for order, keys in [("ASCEND", ascend), ("DESCEND", ascend[::-1])]:
            out = server.ctl_ok("get", "", "--prefix", f"--sort-by={target}", f"--order={order}")
            assert out == simple(*[x for k in keys for x in (k, VALUES[k])]), (target, order)
        # ascending by default
        out = server.ctl_ok("get", "", "--prefix", f"--sort-by={target}", "--keys-only")
        assert out == simple(*[x for k in ascend for x in (k, "")]), target
    # --order alone sorts by key
    assert server.ctl_ok("get", "", "--prefix", "--order=DESCEND", "--keys-only") == simple(
        "c", "", "b", "", "a", "")
    # sorting with a limit sorts the whole range first
    assert server.ctl_ok("get", "", "--prefix", "--sort-by=VERSION", "--order=DESCEND",
                         "--limit", "1") == simple("b", "0")
    assert jctl(server, "get", "", "--prefix", "--sort-by=MODIFY", "--order=DESCEND",
                "--limit", "2") == {
        "header": header(7), "kvs": [kv("b", "0", 4, 7, 3), kv("c", "5", 2, 5, 2)],
        "more": True, "count": 3}


def test_get_rev_history_and_future(server):
    server.ctl_ok("put", "k", "v1")  # 2
    server.ctl_ok("put", "k", "v2")  # 3
    server.ctl_ok("del", "k")        # 4
    server.ctl_ok("put", "k", "v3")  # 5
    assert server.ctl_ok("get", "k", "--rev=1") == ""
    assert server.ctl_ok("get", "k", "--rev=2") == simple("k", "v1")
    assert server.ctl_ok("get", "k", "--rev=3") == simple("k", "v2")
    assert server.ctl_ok("get", "k", "--rev=4") == ""
    assert server.ctl_ok("get", "k", "--rev=5") == simple("k", "v3")
    assert jctl(server, "get", "k", "--rev=3") == {
        "header": header(5), "kvs": [kv("k", "v2", 2, 3, 2)], "count": 1}
    assert jctl(server, "get", "k", "--rev=5") == {
        "header": header(5), "kvs": [kv("k", "v3", 5, 5, 1)], "count": 1}
    rc, err = ctl_error(server, "get", "k", "--rev=6")
    assert (rc, err) == (1, f"Error: {FUTURE}")
    rc, err = ctl_error(server, "get", "k", "--rev=1000000")
    assert (rc, err) == (1, f"Error: {FUTURE}")


def test_compaction(server):
    for i in range(5):
        server.ctl_ok("put", "k", f"v{i}")  # revs 2..6
    assert server.ctl_ok("compaction", "4") == "compacted revision 4\n"
    for rev in ("1", "2", "3"):
        rc, err = ctl_error(server, "get", "k", f"--rev={rev}")
        assert (rc, err) == (1, f"Error: {COMPACTED}"), rev
    # the compaction revision itself and later stay readable
    assert server.ctl_ok("get", "k", "--rev=4") == simple("k", "v2")
    assert server.ctl_ok("get", "k", "--rev=6") == simple("k", "v4")
    assert server.ctl_ok("get", "k") == simple("k", "v4")
    # compacting again at or below the compacted revision, or in the future, is refused
    assert ctl_error(server, "compaction", "4") == (1, f"Error: {COMPACTED}")
    assert ctl_error(server, "compaction", "3") == (1, f"Error: {COMPACTED}")
    assert ctl_error(server, "compaction", "7") == (1, f"Error: {FUTURE}")
    # compaction does not make a revision
    assert jctl(server, "get", "k") == {
        "header": header(6), "kvs": [kv("k", "v4", 2, 6, 5)], "count": 1}
    assert server.ctl_ok("compaction", "--physical", "6") == "compacted revision 6\n"
    assert ctl_error(server, "get", "k", "--rev=5") == (1, f"Error: {COMPACTED}")


# --------------------------------------------------------------------------------------------
# del


def test_del(server):
    put_ranges(server)  # a foo foo/1 foo/2 fop z at revs 2..7
    assert server.ctl_ok("del", "nothing") == "0\n"
    assert server.ctl_ok("del", "a") == "1\n"                      # rev 8
    assert server.ctl_ok("get", "a") == ""
    assert server.ctl_ok("del", "foo/", "--prefix", "--prev-kv") == simple(  # rev 9
        "2", "foo/1", "3", "foo/2", "4")
    assert jctl(server, "del", "f", "--prefix", "--prev-kv") == {           # rev 10
        "header": header(10), "deleted": 2,
        "prev_kvs": [kv("foo", "2", 3, 3, 1), kv("fop", "5", 6, 6, 1)]}
    assert jctl(server, "del", "nothing") == {"header": header(10)}
    assert server.ctl_ok("del", "", "--from-key") == "1\n"                  # rev 11
    assert jctl(server, "get", "", "--prefix") == {"header": header(11)}
    # a deleted key's history stays readable
    assert server.ctl_ok("get", "foo/1", "--rev=8") == simple("foo/1", "3")


# --------------------------------------------------------------------------------------------
# txn (non-interactive: compares, blank line, success ops, blank line, failure ops)


def txn(*compares, success=(), failure=()):
    return "\n".join([*compares, "", *success, "", *failure, ""]) + "\n"


def test_txn_value_compare(server):
    server.ctl_ok("put", "a", "3")  # 2
    out = server.ctl_ok("txn", input=txn('value("a") = "3"', success=["put a 4", "get a"],
                                         failure=["put b fail"]))
    assert out == simple("SUCCESS", "", "OK", "", "a", "4")  # rev 3
    out = server.ctl_ok("txn", input=txn('value("a") = "3"', success=["put a 5"],
                                         failure=["put b fail", "get b"]))
    assert out == simple("FAILURE", "", "OK", "", "b", "fail")  # rev 4
    out = server.ctl_ok("txn", input=txn('value("a") > "3"', 'value("a") < "5"',
                                         success=["get a"], failure=["put never 1"]))
    assert out == simple("SUCCESS", "", "a", "4")
    out = server.ctl_ok("txn", input=txn('value("a") != "4"', success=["put never 1"],
                                         failure=["del b"]))
    assert out == simple("FAILURE", "", "1")  # rev 5
    assert server.ctl_ok("get", "never") == ""
    # a compare against a missing key is false for value
    out = server.ctl_ok("txn", input=txn('value("missing") = ""', success=["put never 1"]))
    assert out == simple("FAILURE")
    assert jctl(server, "get", "a") == {
        "header": header(5), "kvs": [kv("a", "4", 2, 3, 2)], "count": 1}


def test_txn_version_create_mod_compares(server):
    server.ctl_ok("put", "k", "1")  # 2
    server.ctl_ok("put", "k", "2")  # 3
    server.ctl_ok("put", "j", "x")  # 4
    cases = [
        ('version("k") = "2"', True), ('version("k") > "1"', True), ('version("k") < "2"', False),
        ('version("k") != "2"', False), ('version("none") = "0"', True),
        ('create("k") = "2"', True), ('create("k") > "2"', False), ('create("j") > "2"', True),
        ('create("none") = "0"', True), ('create("k") != "2"', False),
        ('mod("k") = "3"', True), ('mod("k") < "3"', False), ('mod("j") > "3"', True),
        ('mod("none") = "0"', True), ('mod("k") != "4"', True),
    ]
    for compare, expected in cases:
        out = server.ctl_ok("txn", input=txn(compare, success=["get k --keys-only"],
                                             failure=["get j --keys-only"]))
        want = simple("SUCCESS", "", "k", "") if expected else simple("FAILURE", "", "j", "")
        assert out == want, compare
    # several compares: all must hold
    out = server.ctl_ok("txn", input=txn('version("k") = "2"', 'mod("j") = "3"',
                                         success=["put s 1"], failure=["put f 1"]))
    assert out == simple("FAILURE", "", "OK")
    assert server.ctl_ok("get", "f", "--print-value-only") == "1\n"
    assert server.ctl_ok("get", "s") == ""


def test_txn_json_and_fields(server):
    server.ctl_ok("put", "a", "1")  # 2
    server.ctl_ok("put", "b", "2")  # 3
    got = jctl(server, "txn", input=txn('version("a") = "9"', 'mod("b") > "0"',
                                        success=["put a 4"],
                                        failure=["put b fail", "del a --prev-kv", "get b"]))
    assert got == {"header": header(4), "responses": [
        {"Response": {"ResponsePut": {"header": {"revision": 4}}}},
        {"Response": {"ResponseDeleteRange": {"header": {"revision": 4}, "deleted": 1,
                                              "prev_kvs": [kv("a", "1", 2, 2, 1)]}}},
        {"Response": {"ResponseRange": {"header": {"revision": 4},
                                        "kvs": [kv("b", "fail", 3, 4, 2)], "count": 1}}},
    ]}
    got = jctl(server, "txn", input=txn('create("a") = "0"', success=["put a new"]))
    assert got == {"header": header(5), "succeeded": True, "responses": [
        {"Response": {"ResponsePut": {"header": {"revision": 5}}}}]}
    out = normalize_fields(server.ctl_ok("-w", "fields", "txn",
                                         input=txn('mod("a") < "100"', failure=["del a"])))
    assert out == simple(f'"ClusterID" : {BLANK}', f'"MemberID" : {BLANK}', '"Revision" : 5',
                         f'"RaftTerm" : {BLANK}', '"Succeeded" : true')


def test_txn_errors(server):
    rc, err = ctl_error(server, "txn", input="badcompare\n\n\n\n")
    assert err == "Error: malformed comparison: badcompare"
    # the same key put twice in one txn is refused by the server
    rc, err = ctl_error(server, "txn", input=txn('create("x") = "0"',
                                                 success=["put x 1", "put x 2"]))
    assert err == "Error: etcdserver: duplicate key given in txn request"
    assert server.ctl_ok("get", "x") == ""


# --------------------------------------------------------------------------------------------
# cluster and maintenance


def test_endpoint_status_json(server):
    server.ctl_ok("put", "a", "1")
    server.ctl_ok("put", "b", "2")
    out = json.loads(server.ctl_ok("-w", "json", "endpoint", "status"))
    assert len(out) == 1
    assert out[0]["Endpoint"] == server.endpoint
    st = out[0]["Status"]
    for field in ("header", "version", "dbSize", "leader", "raftIndex", "raftTerm",
                  "raftAppliedIndex", "dbSizeInUse"):
        assert field in st, (field, st)
    h = st["header"]
    assert h["revision"] == 3
    assert h["cluster_id"] and h["member_id"] and h["raft_term"] >= 1
    assert st["leader"] == h["member_id"]
    assert st["raftTerm"] == h["raft_term"]
    assert st["raftIndex"] >= 2 and st["raftAppliedIndex"] >= 2
    assert st["raftAppliedIndex"] <= st["raftIndex"]
    assert st["dbSize"] > 0 and 0 < st["dbSizeInUse"] <= st["dbSize"]
    assert isinstance(st["version"], str) and st["version"]
    # writes advance the raft index
    server.ctl_ok("put", "c", "3")
    st2 = json.loads(server.ctl_ok("-w", "json", "endpoint", "status"))[0]["Status"]
    assert st2["header"]["revision"] == 4
    assert st2["raftIndex"] > st["raftIndex"]
    assert normalize(st2) == {
        "header": header(4), "version": BLANK, "dbSize": BLANK, "leader": BLANK,
        "raftIndex": BLANK, "raftTerm": BLANK, "raftAppliedIndex": BLANK, "dbSizeInUse": BLANK}


def test_endpoint_health(server):
    rc, out, err = server.ctl("endpoint", "health")
    assert rc == 0, err
    assert f"{server.endpoint} is healthy: successfully committed proposal: took = " in out + err
    got = json.loads(server.ctl_ok("-w", "json", "endpoint", "health"))
    assert normalize(got) == [{"endpoint": server.endpoint, "health": True, "took": BLANK}]


def test_member_list(server):
    got = json.loads(server.ctl_ok("-w", "json", "member", "list"))
    assert normalize(got) == {
        "header": {"cluster_id": BLANK, "member_id": BLANK, "raft_term": BLANK},
        "members": [{"ID": BLANK, "name": MEMBER_NAME, "peerURLs": [server.peer_url],
                     "clientURLs": [server.client_url]}]}
    # identities are derived as etcd derives them (peer URLs + cluster token)
    mid = etcd_member_id([server.peer_url], CLUSTER_TOKEN)
    assert got["members"][0]["ID"] == mid
    assert got["header"]["member_id"] == mid
    assert got["header"]["cluster_id"] == etcd_cluster_id([mid])
    out = server.ctl_ok("member", "list")
    assert out == f"{mid:x}, started, {MEMBER_NAME}, {server.peer_url}, {server.client_url}, " \
                  "false\n"


def test_hex_keys_and_binary_values(server):
    # --hex prints byte strings as hex; keys/values with odd bytes round-trip
    server.ctl_ok("put", "k\x01", "v\tw")
    assert server.ctl_ok("get", "k\x01") == simple("k\x01", "v\tw")
    assert server.ctl_ok("--hex", "get", "k\x01") == simple("\\x6b\\x01", "\\x76\\x09\\x77")


@pytest.mark.parametrize("n", [300])
def test_many_keys_prefix_count(server, n):
    # one txn-less burst through the python client, counted back through etcdctl
    c = server.client()
    for i in range(n):
        c.put(f"bulk/{i:04d}", str(i))
    got = json.loads(server.ctl_ok("-w", "json", "get", "bulk/", "--prefix", "--keys-only",
                                   "--limit", "10"))
    assert got["count"] == n and got["more"] is True and len(got["kvs"]) == 10
    assert got["header"]["revision"] == n + 1
    out = server.ctl_ok("get", "bulk/", "--prefix", "--keys-only")
    assert out.split() == [f"bulk/{i:04d}" for i in range(n)]


def test_large_range_response(server):
    """~24 MiB in one Range answer: beyond every default flow-control window."""
    c = server.client()
    n = 24
    for i in range(n):
        c.put(f"big/{i:02d}", bytes([97 + i]) * (1 << 20))
    rc, out, err = server.ctl("get", "big/", "--prefix", "--print-value-only", timeout=60)
    assert rc == 0, err
    values = out.split("\n")[:-1]
    assert [len(v) for v in values] == [1 << 20] * n
    assert [v[0] for v in values] == [chr(97 + i) for i in range(n)]
