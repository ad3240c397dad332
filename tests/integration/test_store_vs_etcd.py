"""Differential test of the store: the same history against etcd 3.4 and against cairn's store.

Every request goes to a real etcd server (through python3-etcd3's gRPC stubs) and to the store
(through tests/tools/store_replay); everything observable must be equal: header revisions, prev
kvs, deleted counts, txn branches and per-op results, ranges at past revisions with sorting,
limits and filters, error messages (etcd's gRPC details against cairn_strerror), and HashKV.

A random history is reproducible from its seed, which every failure message names. Run one seed
with CAIRN_SEED=<n>; CAIRN_TEST_LONG=1 (make test-long) runs more seeds.
"""

import os
import random
from dataclasses import dataclass, field

import grpc
import pytest

# --------------------------------------------------------------------------------------------
# Requests, each with its store_replay line and its etcd protobuf message


def hx(b):
    """store_replay's byte encoding: hex, "-" for empty."""
    return b.hex() if b else "-"


@dataclass
class Put:
    key: bytes
    value: bytes
    prev: bool = False
    ignore_value: bool = False
    ignore_lease: bool = False

    def line(self):
        flags = "p" * self.prev + "v" * self.ignore_value + "l" * self.ignore_lease
        return f"put {hx(self.key)} {hx(self.value)} {flags or '-'}"

    def pb(self, rpc):
        return rpc.PutRequest(key=self.key, value=self.value, prev_kv=self.prev,
                              ignore_value=self.ignore_value, ignore_lease=self.ignore_lease)


@dataclass
class Delete:
    key: bytes
    end: bytes = b""
    prev: bool = False

    def line(self):
        return f"del {hx(self.key)} {hx(self.end)} {'p' if self.prev else '-'}"

    def pb(self, rpc):
        return rpc.DeleteRangeRequest(key=self.key, range_end=self.end, prev_kv=self.prev)


@dataclass
class Range:
    key: bytes
    end: bytes = b""
    rev: int = 0
    limit: int = 0
    order: int = 0   # RangeRequest.SortOrder
    target: int = 0  # RangeRequest.SortTarget
    keys_only: bool = False
    count_only: bool = False
    min_mod: int = 0
    max_mod: int = 0
    min_create: int = 0
    max_create: int = 0

    def line(self):
        return (f"get {hx(self.key)} {hx(self.end)} {self.rev} {self.limit} {self.order} "
                f"{self.target} {int(self.keys_only)} {int(self.count_only)} {self.min_mod} "
                f"{self.max_mod} {self.min_create} {self.max_create}")

    def pb(self, rpc):
        return rpc.RangeRequest(
            key=self.key, range_end=self.end, revision=self.rev, limit=self.limit,
            sort_order=self.order, sort_target=self.target, keys_only=self.keys_only,
            count_only=self.count_only, min_mod_revision=self.min_mod,
            max_mod_revision=self.max_mod, min_create_revision=self.min_create,
            max_create_revision=self.max_create)


CMP_VERSION, CMP_CREATE, CMP_MOD, CMP_VALUE, CMP_LEASE = range(5)
CMP_FIELD = {CMP_VERSION: "version", CMP_CREATE: "create_revision", CMP_MOD: "mod_revision",
             CMP_VALUE: "value", CMP_LEASE: "lease"}


@dataclass
class Cmp:
    result: int  # Compare.CompareResult: EQUAL 0, GREATER 1, LESS 2, NOT_EQUAL 3
    target: int  # Compare.CompareTarget
    key: bytes
    end: bytes
    arg: object  # bytes for VALUE, int otherwise

    def line(self):
        arg = hx(self.arg) if self.target == CMP_VALUE else str(self.arg)
        return f"{self.result} {self.target} {hx(self.key)} {hx(self.end)} {arg}"

    def pb(self, rpc):
        return rpc.Compare(result=self.result, target=self.target, key=self.key,
                           range_end=self.end, **{CMP_FIELD[self.target]: self.arg})


@dataclass
class NoOp:
    """An empty RequestOp."""

    def line(self):
        return "none"


@dataclass
class Txn:
    compares: list = field(default_factory=list)
    success: list = field(default_factory=list)
    failure: list = field(default_factory=list)

    def line(self):
        parts = ["txn", str(len(self.compares))] + [c.line() for c in self.compares]
        for ops in (self.success, self.failure):
            parts += [str(len(ops))] + [op.line() for op in ops]
        return " ".join(parts)

    def pb(self, rpc):
        return rpc.TxnRequest(compare=[c.pb(rpc) for c in self.compares],
                              success=[request_op(op, rpc) for op in self.success],
                              failure=[request_op(op, rpc) for op in self.failure])


def request_op(op, rpc):
    if isinstance(op, Range):
        return rpc.RequestOp(request_range=op.pb(rpc))
    if isinstance(op, Put):
        return rpc.RequestOp(request_put=op.pb(rpc))
    if isinstance(op, Delete):
        return rpc.RequestOp(request_delete_range=op.pb(rpc))
    if isinstance(op, Txn):
        return rpc.RequestOp(request_txn=op.pb(rpc))
    return rpc.RequestOp()


@dataclass
class Compact:
    rev: int

    def line(self):
        return f"compact {self.rev}"


@dataclass
class Hash:
    rev: int = 0

    def line(self):
        return f"hash {self.rev}"


# --------------------------------------------------------------------------------------------
# etcd's responses in store_replay's JSON shape


def kv_dict(kv):
    return {"key": kv.key.hex(), "value": kv.value.hex(), "create": kv.create_revision,
            "mod": kv.mod_revision, "version": kv.version, "lease": kv.lease}


def range_dict(r):
    return {"rev": r.header.revision, "count": r.count, "more": r.more,
            "kvs": [kv_dict(kv) for kv in r.kvs]}


def put_dict(r):
    return {"rev": r.header.revision,
            "prev_kv": kv_dict(r.prev_kv) if r.HasField("prev_kv") else None}


def del_dict(r):
    return {"rev": r.header.revision, "deleted": r.deleted,
            "prev_kvs": [kv_dict(kv) for kv in r.prev_kvs]}


def txn_dict(r):
    responses = []
    for op in r.responses:
        which = op.WhichOneof("response")
        if which == "response_range":
            responses.append({"get": range_dict(op.response_range)})
        elif which == "response_put":
            responses.append({"put": put_dict(op.response_put)})
        elif which == "response_delete_range":
            responses.append({"del": del_dict(op.response_delete_range)})
        elif which == "response_txn":
            responses.append({"txn": txn_dict(op.response_txn)})
        else:
            responses.append({"none": {}})
    return {"rev": r.header.revision, "succeeded": r.succeeded, "responses": responses}


class Differ:
    """Runs each request against etcd and the store and asserts that both answered the same.

    Keeps the history (the requests) for failure messages, and the current and compacted
    revisions, which the generator uses to pick interesting revisions."""

    def __init__(self, etcd, replay, seed=None):
        self.etcd = etcd
        self.replay = replay
        self.seed = seed
        self.history = []
        self.rev = 1
        self.compact_rev = 0  # 0: never compacted

    def etcd_answer(self, req):
        rpc, kv, t = self.etcd.rpc, self.etcd.kv, 10
        try:
            if isinstance(req, Put):
                return put_dict(kv.Put(req.pb(rpc), timeout=t))
            if isinstance(req, Delete):
                return del_dict(kv.DeleteRange(req.pb(rpc), timeout=t))
            if isinstance(req, Range):
                return range_dict(kv.Range(req.pb(rpc), timeout=t))
            if isinstance(req, Txn):
                return txn_dict(kv.Txn(req.pb(rpc), timeout=t))
            if isinstance(req, Compact):
                r = kv.Compact(rpc.CompactionRequest(revision=req.rev, physical=True), timeout=t)
                return {"rev": r.header.revision}
            if isinstance(req, Hash):
                r = self.etcd.maintenance.HashKV(rpc.HashKVRequest(revision=req.rev), timeout=t)
                return {"rev": r.header.revision, "hash": r.hash,
                        "compact_rev": r.compact_revision}
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise AssertionError(f"etcd failed ({e.code()}: {e.details()}) on "
                                     f"{req.line()}\n{self.etcd.log_tail()}") from e
            return {"err": e.details()}
        raise TypeError(req)

    def do(self, req):
        """Runs req on both sides; returns the (equal) answer."""
        line = req.line()
        self.history.append(req)
        theirs = self.etcd_answer(req)
        ours = self.replay.cmd(line)
        if theirs != ours:
            first = max(0, len(self.history) - 25)
            recent = "\n".join(f"  {i}: {h.line()}"
                               for i, h in enumerate(self.history[first:], first))
            seed = "" if self.seed is None else f"seed {self.seed} (CAIRN_SEED={self.seed}), "
            raise AssertionError(
                f"{seed}op {len(self.history) - 1}: {line}\n"
                f"etcd:  {theirs}\ncairn: {ours}\nrecent history:\n{recent}")
        if "err" not in ours:
            if isinstance(req, (Put, Delete, Txn)):
                self.rev = ours["rev"]
            elif isinstance(req, Compact):
                self.compact_rev = req.rev
        return ours


# --------------------------------------------------------------------------------------------
# (a) random histories

# Twelve keys with shared prefixes and the extreme bytes, so that ranges, prefix ends and the
# "\0" range end cut through them in many ways.
KEYS = [b"\x00", b"\x00\x00", b"a", b"a\x00", b"a\xff", b"ab", b"ab\x00", b"abc", b"b",
        b"\xff", b"\xff\x00", b"\xff\xff"]
# A small set of values makes value compares hit; random bytes make them miss.
VALUES = [b"", b"\x00", b"\xff", b"v1", b"v2", b"v1\x00"]


def prefix_end(key):
    """etcd's GetPrefixRangeEnd: the key after the last one with this prefix."""
    k = bytearray(key)
    while k and k[-1] == 0xFF:
        k.pop()
    if not k:
        return b"\x00"
    k[-1] += 1
    return bytes(k)


class Gen:
    """A random request generator over KEYS, aware of the current and compacted revisions.

    One history in three uses only four of the keys, for longer key histories, more compares that
    hold and more overlapping ops in txns."""

    def __init__(self, rnd, differ):
        self.r = rnd
        self.d = differ
        self.keys = KEYS if rnd.random() < 0.67 else rnd.sample(KEYS, 4)

    def key(self, empty_chance=0.01):
        return b"" if self.r.random() < empty_chance else self.r.choice(self.keys)

    def value(self):
        if self.r.random() < 0.7:
            return self.r.choice(VALUES)
        return bytes(self.r.randrange(256) for _ in range(self.r.randrange(1, 7)))

    def end(self, key, single_chance=0.5):
        x = self.r.random()
        if x < single_chance:
            return b""
        return self.r.choice([b"\x00", prefix_end(key), self.r.choice(self.keys), key + b"\x00",
                              prefix_end(key)])

    def past_rev(self):
        """A revision to read at: mostly readable, sometimes compacted or in the future."""
        x = self.r.random()
        lo = max(self.d.compact_rev, 1)
        if x < 0.25:
            return 0
        if x < 0.3:
            return -1
        if x < 0.36 and self.d.compact_rev > 1:
            return self.r.randrange(1, self.d.compact_rev)  # compacted
        if x < 0.4:
            return self.d.rev + self.r.randrange(1, 3)  # future
        return self.r.randint(lo, self.d.rev)

    def small_rev(self):
        """A revision for filters and compares: around the history's span."""
        return self.r.randint(0, self.d.rev + 1)

    def put(self, top=True):
        p = Put(self.key(), self.value(), prev=self.r.random() < 0.4)
        # ignore_value/ignore_lease only at the top level: inside a txn, etcd checks them before
        # applying (on the state before the txn) and panics if an earlier op removed the key.
        if top and self.r.random() < 0.08:
            p.ignore_value = True
            if self.r.random() < 0.7:
                p.value = b""
        if top and self.r.random() < 0.05:
            p.ignore_lease = True
        return p

    def delete(self):
        k = self.key()
        return Delete(k, self.end(k), prev=self.r.random() < 0.5)

    def range(self, whole=False, rev=None):
        k = b"\x00" if whole else self.key()
        r = Range(k, b"\x00" if whole else self.end(k, 0.4))
        r.rev = self.past_rev() if rev is None else rev
        x = self.r.random()
        if x < 0.3:
            r.limit = self.r.randint(1, 4)
        elif x < 0.35:
            r.limit = -1
        if self.r.random() < 0.5:
            r.order = self.r.randrange(3)
            r.target = self.r.randrange(5)
        r.keys_only = self.r.random() < 0.2
        r.count_only = self.r.random() < 0.1
        for f in ("min_mod", "max_mod", "min_create", "max_create"):
            if self.r.random() < 0.12:
                setattr(r, f, self.small_rev())
        return r

    def compare(self):
        k = self.key(0.02)
        target = self.r.randrange(5)
        if target == CMP_VALUE:
            arg = self.value()
        elif target == CMP_VERSION:
            arg = self.r.randrange(4)
        elif target == CMP_LEASE:
            arg = 0 if self.r.random() < 0.8 else 1
        else:
            arg = self.small_rev()
        return Cmp(self.r.randrange(4), target, k, self.end(k, 0.8), arg)

    def ops(self, depth):
        ops = []
        for _ in range(self.r.choice([0, 1, 1, 2, 2, 3])):
            x = self.r.random()
            if x < 0.4:
                ops.append(self.put(top=False))
            elif x < 0.6:
                ops.append(self.delete())
            elif x < 0.85 or depth >= 2:
                # inside a txn, reads at the current revision mostly
                ops.append(self.range(rev=0 if self.r.random() < 0.7 else None))
            else:
                ops.append(self.txn(depth + 1))
        if self.r.random() < 0.005:
            ops.append(NoOp())
        return ops

    def txn(self, depth=0):
        n = self.r.choice([0, 1, 1, 1, 2, 3])
        return Txn([self.compare() for _ in range(n)], self.ops(depth), self.ops(depth))

    def compact(self):
        x = self.r.random()
        if x < 0.1 and self.d.compact_rev:
            return Compact(self.r.randint(1, self.d.compact_rev))  # already compacted
        if x < 0.15 or self.d.compact_rev >= self.d.rev:
            return Compact(self.d.rev + 1)  # future
        return Compact(self.r.randint(self.d.compact_rev + 1, self.d.rev))


def run_history(etcd, replay, seed, n_ops=300):
    """Runs n_ops random requests on both sides, comparing every answer; every 20 requests also
    reads the whole keyspace at several revisions; hashes after each compaction and at the end."""
    d = Differ(etcd, replay, seed)
    g = Gen(random.Random(seed), d)
    r = g.r
    for i in range(n_ops):
        x = r.random()
        if x < 0.33:
            d.do(g.put())
        elif x < 0.47:
            d.do(g.delete())
        elif x < 0.75:
            d.do(g.txn())
        elif x < 0.93:
            d.do(g.range())
        elif x < 0.96:
            # negative revisions have their own test (test_hash_negative_revision)
            d.do(Hash(max(g.past_rev(), 0) if r.random() < 0.7 else 0))
        else:
            if "err" not in d.do(g.compact()):
                d.do(Hash(0))
        if i % 20 == 19:
            # the whole keyspace at a few past revisions, and just outside what can be read
            revs = [r.randint(max(d.compact_rev, 1), d.rev) for _ in range(3)] + [0]
            if d.compact_rev > 1:
                revs.append(d.compact_rev - 1)
            revs.append(d.rev + 1)
            for rev in revs:
                d.do(Range(b"\x00", b"\x00", rev=rev))
                d.do(g.range(whole=True, rev=rev))
    d.do(Hash(0))
    d.do(Range(b"\x00", b"\x00"))
    return d


SEEDS = [int(os.environ["CAIRN_SEED"])] if os.environ.get("CAIRN_SEED") else (
    list(range(1, 101)) if os.environ.get("CAIRN_TEST_LONG") else [1, 2, 3, 4, 5, 6])


@pytest.mark.parametrize("seed", SEEDS)
def test_random_history(etcd, replay, seed):
    d = run_history(etcd, replay, seed)
    assert d.rev > 50, f"seed {seed}: the history wrote too little to mean much ({d.rev})"


# --------------------------------------------------------------------------------------------
# (b) fixed edge cases, each also checked against the value etcd's documentation gives


def test_put_same_value_twice(etcd, replay):
    d = Differ(etcd, replay)
    assert d.do(Put(b"k", b"v"))["rev"] == 2
    r = d.do(Put(b"k", b"v", prev=True))
    assert r["rev"] == 3
    assert r["prev_kv"] == {"key": "6b", "value": "76", "create": 2, "mod": 2, "version": 1,
                            "lease": 0}
    kv = d.do(Range(b"k"))["kvs"][0]
    assert (kv["create"], kv["mod"], kv["version"]) == (2, 3, 2)
    d.do(Hash(0))


def test_delete_then_recreate(etcd, replay):
    d = Differ(etcd, replay)
    d.do(Put(b"k", b"v1"))
    d.do(Put(b"k", b"v2"))
    r = d.do(Delete(b"k", prev=True))
    assert (r["rev"], r["deleted"]) == (4, 1)
    r = d.do(Put(b"k", b"v3", prev=True))
    assert (r["rev"], r["prev_kv"]) == (5, None)
    kv = d.do(Range(b"k"))["kvs"][0]
    assert (kv["create"], kv["mod"], kv["version"]) == (5, 5, 1)
    assert d.do(Range(b"k", rev=3))["kvs"][0]["version"] == 2
    assert d.do(Range(b"k", rev=4))["kvs"] == []
    d.do(Hash(0))


def test_delete_nothing(etcd, replay):
    d = Differ(etcd, replay)
    d.do(Put(b"a", b"1"))
    for req in (Delete(b"b"), Delete(b"b", b"c", prev=True), Delete(b"\xff", b"\x00"),
                Delete(b"b", b"a"), Txn([], [Delete(b"zz")], [])):
        assert d.do(req)["rev"] == 2  # no change, no new revision
    assert d.do(Put(b"b", b"2"))["rev"] == 3
    d.do(Hash(0))


def test_txn_two_puts_share_a_revision(etcd, replay):
    d = Differ(etcd, replay)
    d.do(Put(b"a", b"0"))
    r = d.do(Txn([Cmp(0, CMP_VERSION, b"a", b"", 1)],
                 [Put(b"a", b"1", prev=True), Put(b"b", b"2"), Range(b"a", b"c")], []))
    assert r["succeeded"] and r["rev"] == 3
    assert [op[k]["rev"] for op, k in zip(r["responses"], ("put", "put", "get"))] == [3, 3, 3]
    kvs = d.do(Range(b"a", b"c"))["kvs"]
    assert [(kv["mod"], kv["version"]) for kv in kvs] == [(3, 2), (3, 1)]
    # the failure branch, and a txn that only reads: no new revision
    r = d.do(Txn([Cmp(0, CMP_VERSION, b"a", b"", 1)], [Put(b"a", b"x")], [Range(b"a")]))
    assert not r["succeeded"] and r["rev"] == 3
    d.do(Hash(0))


def test_compaction_boundary(etcd, replay):
    d = Differ(etcd, replay)
    for i in range(5):
        d.do(Put(b"k", b"v%d" % i))  # revisions 2..6
    d.do(Delete(b"k"))  # 7
    d.do(Put(b"j", b"x"))  # 8
    assert "err" not in d.do(Compact(5))
    assert d.do(Range(b"k", rev=5))["kvs"][0]["value"] == b"v3".hex()
    assert d.do(Range(b"k", rev=4)) == {
        "err": "etcdserver: mvcc: required revision has been compacted"}
    assert d.do(Range(b"k", rev=9)) == {
        "err": "etcdserver: mvcc: required revision is a future revision"}
    assert "err" in d.do(Compact(5))
    assert "err" in d.do(Compact(4))
    assert "err" in d.do(Compact(9))
    assert "err" in d.do(Hash(5))
    d.do(Hash(6))
    d.do(Hash(0))
    assert "err" not in d.do(Compact(8))  # the tombstone at 7 goes too
    assert d.do(Range(b"\x00", b"\x00", rev=8))["count"] == 1
    d.do(Hash(0))


def test_hash_with_nothing_live(etcd, replay):
    """etcd's HashByRev counts every record left below the compacted revision when no key is live
    at the hashed revision (its keep set is empty)."""
    d = Differ(etcd, replay)
    d.do(Put(b"a", b"1"))
    d.do(Put(b"a", b"2"))
    d.do(Put(b"b", b"3"))
    d.do(Compact(4))
    d.do(Hash(0))
    d.do(Delete(b"\x00", b"\x00"))
    d.do(Hash(0))
    d.do(Hash(4 + 1))
    d.do(Put(b"c", b"4"))
    d.do(Hash(0))
    d.do(Hash(5))


def test_txn_checks(etcd, replay):
    """The API's checks of a txn (checkTxnRequest, checkIntervals) reject the same requests."""
    d = Differ(etcd, replay)
    d.do(Put(b"a", b"1"))
    d.do(Put(b"b", b"1"))
    cases = [
        Txn([], [Put(b"a", b"x"), Put(b"a", b"y")], []),
        Txn([], [Delete(b"a", b"c"), Put(b"b", b"y")], []),
        Txn([], [Put(b"b", b"y"), Delete(b"a", b"c")], []),
        Txn([], [Put(b"a", b"x")], [Put(b"a", b"y")]),
        Txn([], [Txn([], [Put(b"a", b"x")], [Put(b"a", b"y")]), Put(b"a", b"z")], []),
        Txn([], [Txn([], [Put(b"a", b"x")], []), Txn([], [], [Put(b"a", b"y")])], []),
        Txn([], [Txn([], [Delete(b"a")], []), Put(b"a", b"z")], []),
        Txn([], [Delete(b"a"), Txn([], [Put(b"a", b"x")], [])], []),
        Txn([], [Delete(b"a", b"\x00"), Put(b"b", b"y")], []),
        Txn([Cmp(0, CMP_VERSION, b"", b"", 0)], [], []),
        Txn([], [NoOp()], []),
        Txn([], [Range(b"")], []),
        Txn([], [], [Range(b"a", rev=99)]),
        Txn([], [Range(b"a", rev=99)], []),
    ]
    for t in cases:
        d.do(t)
    d.do(Range(b"\x00", b"\x00"))
    d.do(Hash(0))


# --------------------------------------------------------------------------------------------
# Behaviours of etcd that a store could easily miss: each found by the random histories, here
# reduced to a minimal history.


def test_sort_descend_keeps_ties_in_key_order(etcd, replay):
    """etcd sorts with sort.Sort(sort.Reverse(...)); for up to 12 key-values Go sorts by insertion,
    which is stable, so equal elements stay in key order also when descending."""
    d = Differ(etcd, replay)
    d.do(Put(b"a", b"1"))
    d.do(Put(b"b", b"1"))
    d.do(Put(b"c", b"0"))
    d.do(Put(b"c", b"0"))
    for target in (1, 2, 3, 4):  # version, create, mod, value
        d.do(Range(b"a", b"\x00", order=2, target=target))
    r = d.do(Range(b"a", b"\x00", order=2, target=1))
    assert [kv["key"] for kv in r["kvs"]] == ["63", "61", "62"]


def test_sort_target_without_order_sorts_only_the_limited_prefix(etcd, replay):
    """applierV3backend.Range lifts the limit only for an explicit sort order or a filter: with
    sort_order NONE and a target other than KEY it reads the first limit+1 keys, sorts those
    ascending by the target, then cuts to the limit."""
    d = Differ(etcd, replay)
    for _ in range(3):
        d.do(Put(b"a", b"x"))  # version 3
    for _ in range(2):
        d.do(Put(b"b", b"x"))  # version 2
    d.do(Put(b"c", b"x"))  # version 1
    r = d.do(Range(b"a", b"\x00", limit=1, order=0, target=1))
    assert ([kv["key"] for kv in r["kvs"]], r["count"], r["more"]) == (["62"], 3, True)
    d.do(Range(b"a", b"\x00", limit=2, order=0, target=3))
    d.do(Range(b"a", b"\x00", limit=1, order=1, target=1))  # an explicit order sorts all


def test_nested_txn_same_put_in_both_branches(etcd, replay):
    """checkIntervals collects put keys in a set: a nested txn that puts the same key in both of
    its branches passes on one key, however deep it sits."""
    d = Differ(etcd, replay)
    inner = Txn([], [Put(b"a", b"1")], [Put(b"a", b"2")])
    d.do(Txn([], [inner], []))
    r = d.do(Txn([], [Txn([], [inner], [])], []))
    assert "err" not in r
    d.do(Txn([], [Txn([], [inner, Put(b"b", b"1")], [])], []))
    d.do(Txn([], [Txn([], [inner], []), Put(b"a", b"3")], []))  # a duplicate: rejected


def test_hash_negative_revision(etcd, replay):
    """HashByRev treats only 0 as "current": a negative revision passes its checks and hashes no
    record at all (just the bucket name)."""
    d = Differ(etcd, replay)
    d.do(Put(b"a", b"1"))
    d.do(Hash(-1))
    d.do(Compact(2))
    d.do(Hash(-5))
