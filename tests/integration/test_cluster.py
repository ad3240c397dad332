"""cairnd replicated: clusters of three and five members on 127.0.0.1 (see cluster.py).

Every member takes writes and linearizable reads; members die (kill -9) or stop (SIGTERM) and come
back with their data dirs; an acknowledged write is never lost and the members converge to equal
HashKV; membership changes, MoveLeader and the cluster check. What is not built yet is marked as
skipped at the end.
"""

import base64
import json
import re
import shutil
import threading
import time

import pytest

from cluster import etcdctl_at
from conftest import CLUSTER_TOKEN, cluster_factory, etcd_cluster_id, etcd_member_id, free_port


@pytest.fixture
def cluster(request):
    """A factory: cluster(n) starts n cairnd members (conftest.cluster_factory)."""
    with cluster_factory(request) as make:
        yield make


@pytest.fixture(params=["etcd", "cairnd"])
def any_cluster(request, monkeypatch):
    """As cluster, of etcd 3.4 members or of cairnd members."""
    with cluster_factory(request, request.param, monkeypatch) as make:
        yield make


class Writer:
    """A thread putting w/<n> keys round-robin through the given members (one python3-etcd3 client
    each), recording every acknowledged put: .acked {key: (value, revision)}, .by_member {name:
    number acknowledged}, .errors [(name, exception)]."""

    def __init__(self, members, prefix="w/"):
        import etcd3

        self.members = list(members)
        self.prefix = prefix
        self.clients = {m.name: etcd3.client("127.0.0.1", m.port, timeout=5)
                        for m in self.members}
        self.acked = {}
        self.by_member = {m.name: 0 for m in self.members}
        self.errors = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        i = 0
        while not self.stop_event.is_set():
            m = self.members[i % len(self.members)]
            key, value = f"{self.prefix}{i:06d}", f"value-{i}-via-{m.name}"
            i += 1
            try:
                r = self.clients[m.name].put(key, value)
            except Exception as e:  # noqa: BLE001 - a member down, or no leader for now
                with self.lock:
                    self.errors.append((m.name, e))
                time.sleep(0.02)
                continue
            with self.lock:
                self.acked[key.encode()] = (value.encode(), r.header.revision)
                self.by_member[m.name] += 1

    def start(self):
        self.thread.start()
        return self

    def snapshot(self):
        with self.lock:
            return dict(self.acked), dict(self.by_member)

    def wait(self, pred, timeout, what):
        """Waits until pred(acked, by_member) holds."""
        deadline = time.monotonic() + timeout
        while not pred(*self.snapshot()):
            assert self.thread.is_alive(), "the writer thread died"
            if time.monotonic() > deadline:
                acked, by = self.snapshot()
                raise AssertionError(f"{what} not within {timeout}s: {len(acked)} acknowledged "
                                     f"({by}), last errors {self.errors[-3:]}")
            time.sleep(0.05)

    def stop(self):
        self.stop_event.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the writer did not stop within 30 s"
        for c in self.clients.values():
            c.close()
        return self.snapshot()[0]


def put_somewhere(cl, key, value, timeout=30):
    """Puts key through the running members in turn until one acknowledges it; returns the
    revision. Fails after timeout."""
    deadline = time.monotonic() + timeout
    errors = []
    while True:
        for m in cl.running():
            try:
                return m.put(key, value).header.revision
            except Exception as e:  # noqa: BLE001 - e.g. no leader for now
                errors.append((m.name, repr(e)))
        if time.monotonic() > deadline:
            raise AssertionError(f"put {key} not acknowledged by any member within {timeout}s; "
                                 f"last errors {errors[-3:]}")
        time.sleep(0.2)


def put_through(m, key, value, timeout=30):
    """Puts key through member m, retrying until it acknowledges; returns the response."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return m.put(key, value)
        except Exception as e:  # noqa: BLE001 - e.g. a new leader not known yet
            if time.monotonic() > deadline:
                raise AssertionError(f"put {key} through {m.name} failed for {timeout}s: {e!r}")
        time.sleep(0.2)


def local_kvs(m, prefix):
    """{key: (value, mod_revision)} under prefix, from m's local state (serializable)."""
    r = m.range(prefix, serializable=True, prefix=True)
    return {kv.key: (kv.value, kv.mod_revision) for kv in r.kvs}


def assert_all_present(cl, acked, prefix, with_revision=True):
    """Every acknowledged (key: (value, revision)) is on every member, with that value and, if
    with_revision, that mod revision. Call after wait_converged()."""
    assert acked, "nothing was acknowledged"
    for m in cl:
        got = local_kvs(m, prefix)
        lost = [k for k in acked if k not in got]
        assert not lost, f"{len(lost)} of {len(acked)} acknowledged keys missing on {m.name}, " \
                         f"e.g. {lost[:5]}"
        wrong = [(k, acked[k], got[k]) for k in acked
                 if got[k][0] != acked[k][0] or (with_revision and got[k][1] != acked[k][1])]
        assert not wrong, f"acknowledged keys differ on {m.name}: {wrong[:5]}"


def assert_hashkv_equal(cl):
    """All members converge; HashKV at the current revision is equal everywhere (hash, header
    revision, compact revision)."""
    rev = cl.wait_converged(list(cl))
    hashes = cl.hashkvs(rev, list(cl))
    assert len(set(hashes.values())) == 1, f"HashKV at revision {rev} differs: {hashes}"
    assert next(iter(hashes.values()))[1] == rev
    return rev


# --------------------------------------------------------------------------------------------
# 1. reads and writes through every member; membership and identity


def test_writes_through_each_member_are_read_everywhere(cluster):
    cl = cluster(3)
    ids = {m.id for m in cl}
    for m in cl:
        assert m.id == etcd_member_id([m.peer_url], CLUSTER_TOKEN)
    cluster_id = etcd_cluster_id(sorted(ids))

    for writer in cl:
        key, value = f"k/{writer.name}", f"written via {writer.name}"
        r = writer.put(key, value)
        assert r.header.member_id == writer.id
        assert r.header.cluster_id == cluster_id
        rev = r.header.revision
        for reader in cl:
            # linearizable first: afterwards reader has applied the write, so its local
            # (serializable) state must show it too
            lin = reader.range(key)
            assert [(kv.key, kv.value, kv.mod_revision) for kv in lin.kvs] == \
                [(key.encode(), value.encode(), rev)], (writer.name, reader.name)
            assert lin.header.revision >= rev
            ser = reader.range(key, serializable=True)
            assert [(kv.key, kv.value, kv.mod_revision) for kv in ser.kvs] == \
                [(key.encode(), value.encode(), rev)], (writer.name, reader.name)
            for h in (lin.header, ser.header):
                assert (h.member_id, h.cluster_id) == (reader.id, cluster_id)

    # MemberList: all three by ID with peer URLs right away, names and client URLs once each
    # member has published itself
    for m in cl:
        r = m.members()
        assert {(x.ID, tuple(x.peerURLs)) for x in r.members} == \
            {(x.id, (x.peer_url,)) for x in cl}
    lists = cl.wait_published()
    assert set(lists) == {m.name for m in cl}
    for m in cl:
        r = lists[m.name]
        assert (r.header.member_id, r.header.cluster_id) == (m.id, cluster_id)
        assert sorted((x.ID, x.name, list(x.peerURLs), list(x.clientURLs)) for x in r.members) \
            == sorted((x.id, x.name, [x.peer_url], [x.client_url]) for x in cl)

    # Status: one leader, the same on all, which is a member; same cluster everywhere
    statuses = {m.name: m.status() for m in cl}
    assert len({s.leader for s in statuses.values()}) == 1, statuses
    assert next(iter(statuses.values())).leader in ids
    for m in cl:
        s = statuses[m.name]
        assert (s.header.member_id, s.header.cluster_id) == (m.id, cluster_id)
        assert s.raftTerm >= 1 and s.raftIndex >= 1


# --------------------------------------------------------------------------------------------
# 2. the leader killed under writes


def test_leader_killed_under_writes(cluster):
    cl = cluster(3)
    old = cl.leader()
    old_term = old.status().raftTerm
    w = Writer(cl).start()
    try:
        w.wait(lambda acked, by: all(n >= 20 for n in by.values()), 60,
               "20 puts acknowledged through each member")
        old.kill9()
        before_kill, by_before = w.snapshot()
        survivors = [m for m in cl if m is not old]

        new = cl.leader(among=survivors, timeout=30)
        assert new is not old
        assert new.status().raftTerm > old_term
        # writes succeed again, through both survivors
        w.wait(lambda acked, by: all(by[m.name] >= by_before[m.name] + 10 for m in survivors),
               60, "10 more puts through each survivor after the kill")

        cl.restart(old)
        # the writer goes on while the restarted member catches up
        _, by_restart = w.snapshot()
        w.wait(lambda acked, by: all(by[m.name] >= by_restart[m.name] + 5 for m in survivors),
               60, "5 more puts through each survivor after the restart")
    finally:
        acked = w.stop()

    revs = [r for _, r in acked.values()]
    assert len(revs) == len(set(revs)), "two acknowledged puts share a revision"
    assert len(acked) > len(before_kill)
    cl.leader(timeout=30)
    assert_hashkv_equal(cl)
    assert_all_present(cl, acked, "w/")


# --------------------------------------------------------------------------------------------
# 3. a rolling restart


def test_rolling_restart_keeps_every_write(cluster):
    cl = cluster(3)
    acked = {}

    def write(tag, n=10):
        for i in range(n):
            key, value = f"r/{tag}/{i:03d}", f"{tag}-{i}"
            put_somewhere(cl, key, value)
            acked[key.encode()] = (value.encode(), None)

    for m in cl:
        write(f"before-{m.name}")
        rc = m.terminate()
        assert rc == 0, f"{m.name} exited {rc} on SIGTERM"
        write(f"without-{m.name}")
        cl.restart(m)
        cl.leader(timeout=30)
        write(f"after-{m.name}")
    assert_hashkv_equal(cl)
    assert_all_present(cl, acked, "r/", with_revision=False)
    assert len(local_kvs(cl[0], "r/")) == 3 * 3 * 10


# --------------------------------------------------------------------------------------------
# 4. quorum: five members, two and then three down


def test_five_members_lose_quorum_and_recover(cluster):
    cl = cluster(5)
    acked = {}
    for i in range(10):
        rev = put_somewhere(cl, f"q/before/{i}", str(i))
        acked[f"q/before/{i}".encode()] = (str(i).encode(), rev)

    # two down (the leader and one follower): three of five are a quorum
    lead, followers = cl.followers()
    down = [lead, followers[0]]
    for m in down:
        m.kill9()
    up = [m for m in cl if m not in down]
    cl.leader(among=up, timeout=30)
    for m in up:
        key, value = f"q/three/{m.name}", f"via {m.name}"
        r = put_through(m, key, value)
        acked[key.encode()] = (value.encode(), r.header.revision)
    for m in up:
        for key, (value, rev) in acked.items():
            kvs = m.range(key).kvs
            assert [(kv.value, kv.mod_revision) for kv in kvs] == [(value, rev)], (m.name, key)
    last_rev = cl.wait_converged(up)

    # a third down (the new leader): two of five are no quorum
    third = cl.leader(among=up)
    third.kill9()
    down.append(third)
    up.remove(third)
    for m in up:
        rc, out, err = m.ctl("get", "q/three/" + up[0].name, command_timeout="3s")
        assert rc != 0, f"a linearizable read on {m.name} answered without a quorum: {out!r}"
        rc, out, err = m.ctl("put", f"q/noquorum/{m.name}", "x", command_timeout="3s")
        assert rc != 0, f"a write through {m.name} was acknowledged without a quorum: {out!r}"
        # serializable: from local state, which has everything up to last_rev
        rc, out, err = m.ctl("get", "q/", "--prefix", "--consistency=s", "-w", "json",
                             command_timeout="3s")
        assert rc == 0, f"a serializable read on {m.name} failed: {err}"
        got = json.loads(out)
        assert got["header"]["revision"] >= last_rev
        local = {base64.b64decode(kv["key"]): (base64.b64decode(kv["value"]),
                                                kv["mod_revision"]) for kv in got["kvs"]}
        assert {k: v for k, v in local.items() if k in acked} == acked, m.name
        assert local_kvs(m, "q/") == local

    # all back: everything converges, nothing acknowledged is lost
    cl.restart(*down)
    cl.leader(timeout=30)
    r = put_through(cl[0], "q/after", "1")
    acked[b"q/after"] = (b"1", r.header.revision)
    assert_hashkv_equal(cl)
    assert_all_present(cl, acked, "q/")


# --------------------------------------------------------------------------------------------
# 5. etcdctl 3.4 with all endpoints


def test_etcdctl_with_all_endpoints(cluster):
    cl = cluster(3)
    eps = cl.endpoints()

    def ctl(*args, input=None):
        rc, out, err = etcdctl_at(eps, *args, input=input)
        assert rc == 0, f"etcdctl {' '.join(args)} failed (rc {rc}): {err}"
        return out

    assert ctl("put", "a", "1") == "OK\n"
    assert ctl("put", "b", "2") == "OK\n"
    assert ctl("get", "a") == "a\n1\n"
    assert ctl("get", "", "--prefix") == "a\n1\nb\n2\n"
    out = ctl("txn", input='value("a") = "1"\n\nput a 10\nget a\n\nput a never\n\n')
    assert out == "SUCCESS\n\nOK\n\na\n10\n"
    out = ctl("txn", input='value("a") = "1"\n\nput a never\n\ndel b\n\n')
    assert out == "FAILURE\n\n1\n"
    assert ctl("del", "a") == "1\n"
    assert ctl("get", "", "--prefix") == ""
    assert ctl("put", "c", "3") == "OK\n"
    for m in cl:  # each member on its own has it
        rc, out, err = m.ctl("get", "c")
        assert (rc, out) == (0, "c\n3\n"), (m.name, err)

    cl.wait_published()
    lead = cl.leader()

    # endpoint status --cluster: a row per member, exactly one leader
    rows = table_rows(ctl("endpoint", "status", "--cluster", "-w", "table"))
    head, rows = rows[0], rows[1:]
    assert len(rows) == 3, rows
    col = {name: i for i, name in enumerate(head)}
    assert {r[col["ENDPOINT"]] for r in rows} == {m.client_url for m in cl}
    assert {r[col["ID"]] for r in rows} == {f"{m.id:x}" for m in cl}
    leaders = [r for r in rows if r[col["IS LEADER"]] == "true"]
    assert len(leaders) == 1, rows
    assert leaders[0][col["ID"]] == f"{lead.id:x}"
    assert all(r[col["IS LEADER"]] in ("true", "false") for r in rows)

    # member list: names, peer and client URLs
    rows = table_rows(ctl("member", "list", "-w", "table"))
    head, rows = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(head)}
    got = sorted((r[col["ID"]], r[col["STATUS"]], r[col["NAME"]], r[col["PEER ADDRS"]],
                  r[col["CLIENT ADDRS"]]) for r in rows)
    assert got == sorted((f"{m.id:x}", "started", m.name, m.peer_url, m.client_url) for m in cl)

    # endpoint hashkv --cluster: equal hashes
    cl.wait_converged(list(cl))
    out = ctl("endpoint", "hashkv", "--cluster")
    lines = [line.split(", ") for line in out.splitlines()]
    assert sorted(ep for ep, _ in lines) == sorted(m.client_url for m in cl), out
    assert len({h for _, h in lines}) == 1, out


def table_rows(text):
    """The cells of etcdctl's -w table output: the header row first."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]


# --------------------------------------------------------------------------------------------
# 6. read-your-writes on the member that took the write


def test_follower_reads_its_own_writes(cluster):
    cl = cluster(3)
    lead, followers = cl.followers()
    f = followers[0]
    assert f.status().leader == lead.id != f.id
    for i in range(50):
        key, value = f"ryw/{i:02d}", f"v{i}"
        r = f.put(key, value)
        assert r.header.member_id == f.id
        got = f.range(key, serializable=True)
        assert [(kv.value, kv.mod_revision) for kv in got.kvs] == \
            [(value.encode(), r.header.revision)], f"put {i} through follower {f.name}"
        assert got.header.revision >= r.header.revision
    assert len(local_kvs(f, "ryw/")) == 50


# --------------------------------------------------------------------------------------------
# not built yet


def test_member_add_learner_promote_remove(cluster):
    """etcdctl 3.4 changes the membership: a learner is added, started with the state
    "existing", catches up, is promoted, and a voter is removed, which stops it."""
    c = cluster(3)
    eps = c.endpoints()
    for i in range(20):
        c[i % 3].put(f"before/{i}", f"v{i}")
    new = c.add_member()
    rc, out, err = etcdctl_at(eps, "member", "add", new.name, f"--peer-urls={new.peer_url}",
                              "--learner")
    assert rc == 0, err
    assert f"Member {new.id:16x} added to cluster" in out, out
    assert f'ETCD_NAME="{new.name}"' in out and 'ETCD_INITIAL_CLUSTER_STATE="existing"' in out
    # the same ID the new member computes for itself from its peer URL and the token
    listed = {m.ID: m for m in c[0].members().members}
    assert new.id in listed
    rc, out, err = etcdctl_at(eps, "member", "list", "-w", "json")
    assert rc == 0, err
    learners = {m["ID"]: m.get("isLearner", False) for m in json.loads(out)["members"]}
    assert learners[new.id] is True
    # adding the same peer URLs again is refused with etcd's error
    rc, out, err = etcdctl_at(eps, "member", "add", "again", f"--peer-urls={new.peer_url}")
    assert rc != 0 and "etcdserver: Peer URLs already exists" in err, err
    c.restart(new)
    # the learner has the data, and reports itself as a learner
    assert new.range("before/19", serializable=True).kvs[0].value == b"v19"
    rc, out, err = etcdctl_at([new.endpoint], "endpoint", "status", "-w", "json")
    assert rc == 0 and json.loads(out)[0]["Status"]["isLearner"] is True, (out, err)
    # promoted once in sync (the leader refuses before: "learner member which is in sync")
    deadline = time.monotonic() + 30
    while True:
        rc, out, err = etcdctl_at(eps, "member", "promote", f"{new.id:x}")
        if rc == 0 or time.monotonic() > deadline:
            break
        assert "in sync with leader" in err, err
        time.sleep(0.5)
    assert rc == 0 and "promoted in cluster" in out, (out, err)
    rc, out, err = etcdctl_at([new.endpoint], "endpoint", "status", "-w", "json")
    assert rc == 0 and not json.loads(out)[0]["Status"].get("isLearner"), (out, err)
    rc, out, err = etcdctl_at(eps, "member", "promote", f"{new.id:x}")
    assert rc != 0 and "etcdserver: can only promote a learner member" in err, err
    # a voter removed (a follower: removing the leader is test_member_remove_leader's): the others
    # go on, the removed member stops
    gone = next(m for m in c if m is not new and m is not c.leader())
    rc, out, err = etcdctl_at(eps, "member", "remove", f"{gone.id:x}")
    assert rc == 0 and "removed from cluster" in out, (out, err)
    gone.proc.wait(timeout=30)
    rest = [m for m in c if m is not gone]
    c.leader(among=rest)
    assert {m.ID for m in rest[0].members().members} == {m.id for m in rest}
    rc, out, err = etcdctl_at([m.endpoint for m in rest], "member", "remove",
                              f"{gone.id:x}")
    assert rc != 0 and "etcdserver: member not found" in err, err
    rest[0].put("after", "remove")
    c.wait_converged(among=rest)
    for m in rest:
        assert m.range("after").kvs[0].value == b"remove"
    hashes = c.hashkvs(0, among=rest)
    assert len({h for h in hashes.values()}) == 1, hashes


def test_member_update_moves_a_member(any_cluster):
    """etcdctl member update gives a follower a new peer URL; restarted listening there, it is
    reached at the new address: it catches up and follows the writes that came meanwhile (in
    etcd the peers' transport takes the new URL; libraft's configuration keeps the old one, so
    cairnd's transport asks the member table)."""
    c = any_cluster(3)
    c.wait_published()
    moved = c.followers()[1][0]
    for i in range(10):
        c[i % 3].put(f"before/{i}", f"v{i}")
    moved.member_id = moved.id
    new_port = free_port()
    rc, out, err = etcdctl_at(c.endpoints(), "member", "update", f"{moved.id:x}",
                              f"--peer-urls=http://127.0.0.1:{new_port}")
    assert rc == 0 and "updated in cluster" in out, (out, err)
    moved.terminate()
    moved.peer_port = new_port
    rest = [m for m in c if m is not moved]
    for i in range(10):
        rest[i % 2].put(f"meanwhile/{i}", f"v{i}")
    c.restart(moved)
    last = rest[0].put("after", "moved").header.revision
    deadline = time.monotonic() + 30
    while moved.range("after", serializable=True).header.revision < last:
        assert time.monotonic() < deadline, "the moved member did not catch up"
        time.sleep(0.2)
    assert moved.range("meanwhile/9", serializable=True).kvs[0].value == b"v9"
    listed = {m.ID: list(m.peerURLs) for m in moved.members().members}
    assert listed[moved.id] == [f"http://127.0.0.1:{new_port}"]
    assert len({h for h in c.hashkvs(0).values()}) == 1


def test_member_remove_leader(cluster):
    """Removing the leader: it stops once it applied its removal, the others elect a leader
    among themselves and go on with two voters."""
    c = cluster(3)
    c.wait_published()
    leader = c.leader()
    rc, out, err = etcdctl_at(c.endpoints(), "member", "remove", f"{leader.id:x}")
    assert rc == 0 and "removed from cluster" in out, (out, err)
    leader.proc.wait(timeout=30)
    rest = [m for m in c if m is not leader]
    assert c.leader(among=rest) in rest
    rest[0].put("after", "leader removed")
    for m in rest:
        assert m.range("after").kvs[0].value == b"leader removed"
    assert {m.ID for m in rest[1].members().members} == {m.id for m in rest}


def test_move_leader(cluster):
    """etcdctl move-leader moves the leadership to the member named; errors as etcd's."""
    c = cluster(3)
    c.wait_published()
    eps = c.endpoints()
    leader = c.leader()
    target = next(m for m in c if m is not leader)
    rc, out, err = etcdctl_at(eps, "move-leader", f"{target.id:x}")
    assert rc == 0 and f"Leadership transferred from {leader.id:x} to {target.id:x}" in out, \
        (out, err)
    assert c.leader() is target
    rc, out, err = etcdctl_at(eps, "move-leader", "1234")
    assert rc != 0 and "etcdserver: bad leader transferee" in err, err
    target.put("moved", "1")
    assert leader.range("moved").kvs[0].value == b"1"


def test_lagging_member_catches_up_by_snapshot(cluster):
    """A follower stopped while the others write past the snapshot threshold (and past the log
    entries kept behind a snapshot) comes back by installing the leader's store, then follows
    the log again: every write is there, HashKV equal everywhere. The store (~6 MiB of values)
    travels in several pieces of the leader's stream."""
    c = cluster(3, extra_args=["--snapshot-count", "500"])
    lagging = next(m for m in c if m is not c.leader())
    lagging.terminate()
    rest = [m for m in c if m is not lagging]
    # more than snapshot-count + the ~5000 requests of entries kept behind a snapshot
    for i in range(6000):
        rest[i % 2].put(f"lag/{i:05d}", f"v{i}".ljust(1000, "."))
    c.restart(lagging)
    log = lagging.log_since_start()
    assert "fetching the store" in log and "installed the store" in log, log
    received = re.search(r"received (\d+) bytes of store", log)
    assert received and int(received.group(1)) > 3 * 1024 * 1024, log
    rest[0].put("after", "install")
    c.wait_converged()
    r = lagging.range("lag/", prefix=True, serializable=True, count_only=True)
    assert r.count == 6000
    assert lagging.range("after", serializable=True).kvs[0].value == b"install"
    hashes = c.hashkvs(0)
    assert len(set(hashes.values())) == 1, hashes
    # and it restarts from its installed store
    lagging.kill9()
    c.restart(lagging)
    assert lagging.range("lag/05999").kvs[0].value == b"v5999".ljust(1000, b".")


def wait_log(member, text, timeout=60):
    """Waits until member's log since its start holds text; returns the log."""
    deadline = time.monotonic() + timeout
    while text not in (log := member.log_since_start()):
        assert member.alive(), f"{member.name} exited: {member.log_tail()}"
        assert time.monotonic() < deadline, f"{member.name} never logged {text!r}: {log[-3000:]}"
        time.sleep(0.05)
    return log


def test_store_comes_from_another_member(cluster):
    """A member that needs the store takes it from any member that has it, not only the leader:
    here the leader's advertised client URL leads nowhere. Killed while no member could send it
    (the leader unreachable, the other follower stopped), after libraft saved the snapshot but
    before the store came, it restarts with no leader known yet and still gets its store: every
    write is there and HashKV is equal on all members."""
    c = cluster(3, extra_args=["--snapshot-count", "500"])
    x, m, y = c[0], c[1], c[2]
    x.terminate()
    x.advertised_client_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    c.restart(x)
    lead = c.leader()
    if lead is not x:
        rc, out, err = etcdctl_at([lead.endpoint], "move-leader", f"{x.id:x}")
        assert rc == 0, (out, err)
    assert c.leader() is x
    dead = x.advertised_client_url.removeprefix("http://")

    # 1. the leader cannot send it: the other follower does
    m.terminate()
    for i in range(6000):
        x.put(f"far/{i:05d}", f"v{i}".ljust(500, "."))
    # (m's linearizable reads ask the leader at its advertised URL: only serializable ones here)
    m.launch()
    log = wait_log(m, "installed the store")
    assert f"fetching the store from the member at {dead}" in log, log
    assert f"fetching the store from the member at {y.endpoint}" in log, log
    assert "installed the store" in log, log

    # 2. nobody can send it: killed while it asks in turn, then restarted once one can
    m.terminate()
    for i in range(6000, 12000):
        x.put(f"far/{i:05d}", f"v{i}".ljust(500, "."))
    y.terminate()
    m.launch()  # x and m are a quorum: x sends m its snapshot, m asks x (dead) and y (down)
    wait_log(m, f"fetching the store from the member at {y.endpoint}")
    m.kill9()
    assert "installed the store" not in m.log_since_start()
    y.launch()
    m.launch()
    log = wait_log(m, "installed the store")
    assert "fetching the store" in log, log
    put_through(x, "after", "install")  # y, back, may have taken the lead meanwhile
    c.wait_converged()
    r = m.range("far/", prefix=True, serializable=True, count_only=True)
    assert r.count == 12000
    assert "no leader" not in log
    assert m.range("after", serializable=True).kvs[0].value == b"install"
    hashes = c.hashkvs(0)
    assert len(set(hashes.values())) == 1, hashes


@pytest.mark.parametrize("case", ["two-logs-lost", "log-lost-and-old-member"])
def test_members_whose_logs_lost_applied_entries(cluster, case):
    """m1's log is put back to a copy from before writes its store applied (a damaged disk, a log
    restored from an older copy); m3, which has those entries, is down. It starts with a warning.
    - two-logs-lost: m2 likewise. Neither votes for the other, whose log lacks entries it knows
      are committed (each logs the refusal): no leader, nothing acknowledged.
    - log-lost-and-old-member: m2's whole data dir is the old copy, consistent but behind. m2
      votes for m1 (their logs are equal), and m1, leading, would put new entries at indexes its
      store applied, where it would skip them: it stops at its first proposal, saying why,
      before anything is acknowledged.
    Once m3 is back it leads (its log is the longer), sends the entries again, m2 applies or skips
    them, and the two agree on every key."""
    c = cluster(3)
    for i in range(30):
        put_through(c.leader(), f"early/{i}", "v")
    c.wait_converged()
    m1, m2, m3 = c[0], c[1], c[2]
    for m in c:
        assert m.terminate() == 0
    lost = [m1, m2] if case == "two-logs-lost" else [m1]
    for m in lost:
        shutil.copytree(m.data_dir + "/member/raft", m.dir + "/raft.old")
    if case == "log-lost-and-old-member":
        shutil.copytree(m2.data_dir, m2.dir + "/data.old")
    c.restart(*c)
    for i in range(30):
        put_through(c.leader(), f"late/{i}", "v")
    c.wait_converged()
    for m in c:
        assert m.terminate() == 0
    for m in lost:
        shutil.rmtree(m.data_dir + "/member/raft")
        shutil.copytree(m.dir + "/raft.old", m.data_dir + "/member/raft")
    if case == "log-lost-and-old-member":
        shutil.rmtree(m2.data_dir)
        shutil.copytree(m2.dir + "/data.old", m2.data_dir)
    m1.launch()
    m2.launch()

    acked = []

    def try_puts():
        for m in (m1, m2):
            try:
                m.put("after/reuse", m.name)
                acked.append(m.name)
            except Exception:  # noqa: BLE001 - refused, not ready or stopped: all fine here
                pass

    if case == "two-logs-lost":
        deadline = time.monotonic() + 60
        while not all("vote request of member" in m.log_since_start() for m in lost):
            assert time.monotonic() < deadline, (m1.log_tail(), m2.log_tail())
            try_puts()
            time.sleep(0.2)
        try_puts()
        assert m1.alive() and m2.alive(), (m1.log_tail(), m2.log_tail())
        for m in (m1, m2):
            while True:  # the client port may open after the first refusal
                try:
                    leader = m.status().leader
                    break
                except Exception:  # noqa: BLE001 - not listening yet
                    assert time.monotonic() < deadline, m.log_tail()
                    time.sleep(0.2)
            assert leader == 0, m.log_tail()
    else:
        deadline = time.monotonic() + 60
        while m1.alive():
            assert time.monotonic() < deadline, m1.log_tail()
            try_puts()
            time.sleep(0.2)
        log = m1.log_since_start()
        assert m1.proc.returncode == 1, log
        assert "which the store applied before: its log lost entries" in log, log
        assert m2.alive(), m2.log_tail()
    survivor = m2  # m1 stopped in the second case; in the first either would do
    for m in lost:
        assert "below the store's" in m.log_since_start(), m.log_since_start()
    assert not acked, f"writes acknowledged by {acked}"

    c.restart(m3)
    among = [m for m in c if m.alive()]
    assert c.leader(among=among) is m3
    put_through(survivor, "after/whole", "back")
    c.wait_converged(among=among)
    keys = {kv.key for p in ("early/", "late/", "after/")
            for kv in survivor.range(p, prefix=True, serializable=True).kvs}
    assert {f"{p}/{i}".encode() for p in ("early", "late") for i in range(30)} <= keys
    assert b"after/reuse" not in keys and b"after/whole" in keys
    hashes = c.hashkvs(0, among=among)
    assert len(set(hashes.values())) == 1, hashes


def test_wrong_cluster_token_is_refused(cluster):
    """A member started afresh with another --initial-cluster-token finds the others in another
    cluster: it stops with an error saying so, and the cluster goes on without it."""
    c = cluster(3)
    odd = c[2]
    odd.terminate()
    shutil.rmtree(odd.data_dir)
    odd.token = "another-token"
    odd.launch()
    odd.proc.wait(timeout=30)
    assert odd.proc.returncode == 1
    log = odd.log_since_start()
    assert "belongs to cluster" in log and "--initial-cluster-token" in log, log
    rest = [c[0], c[1]]
    # if the member stopped was the leader, a write waits for (or times out before) the new one,
    # as with etcd: wait until the two agree on a leader among themselves
    c.leader(among=rest)
    rest[0].put("still", "works")
    assert rest[1].range("still").kvs[0].value == b"works"
