"""etcdctl 3.4's `lock` and `elect` between processes — etcd 3.4 and cairnd, the same assertions.

Both are built by etcdctl from leases, transactions and watches (clientv3/concurrency): a
contender puts its key under the lock's or election's prefix with its session's lease, and waits
until the key with the smallest create revision before it is deleted. So they work only if
leases (grant, keep-alive, revoke on exit), txns with create-revision compares, ranges sorted by
create revision and watches of deletes all behave as etcd's do.

Nothing here measures time: that a waiting contender has not acquired is checked by its absence
of output while the holder's key is still the first; waits have deadlines.
"""

import pytest

from watchwire import CtlWatch


def keys_under(server, prefix):
    """The keys under prefix, in create-revision order (as the contenders see their queue)."""
    out = server.ctl_ok("get", prefix, "--prefix", "--keys-only", "--sort-by=CREATE",
                        "--order=ASCEND")
    return [line for line in out.splitlines() if line]


def wait_keys(server, prefix, n, timeout=30):
    import time
    deadline = time.monotonic() + timeout
    while True:
        ks = keys_under(server, prefix)
        if len(ks) == n:
            return ks
        assert time.monotonic() < deadline, f"{n} keys under {prefix} not seen; last {ks}"
        time.sleep(0.1)


def test_lock_between_two_processes(server):
    with CtlWatch(server.endpoint, "mylock", command="lock") as a:
        held = a.wait_for(lambda t: t.endswith("\n"), what="the lock").strip()
        assert held.startswith("mylock/")
        with CtlWatch(server.endpoint, "mylock", command="lock") as b:
            queue = wait_keys(server, "mylock/", 2)
            assert queue[0] == held  # the holder is first; b waits behind it
            # a put elsewhere and a read: b has seen the lock held all along
            server.ctl_ok("put", "unrelated", "x")
            assert b.out() == ""
            a.stop()  # ends a's session: its lease is revoked, its key deleted
            got = b.wait_for(lambda t: t.endswith("\n"), what="the lock after a released it")
            assert got.strip() == queue[1]
            assert keys_under(server, "mylock/") == [queue[1]]
        # b gone as well: nothing left
        wait_keys(server, "mylock/", 0)


def test_lock_runs_a_command_and_releases(server):
    rc, out, err = server.ctl("lock", "cmdlock", "echo", "inside the lock")
    assert rc == 0, err
    assert out == "inside the lock\n"
    assert keys_under(server, "cmdlock/") == []


def test_elect_leader_and_observer(server):
    with CtlWatch(server.endpoint, "myelection", "p1", command="elect") as c1:
        lines = c1.wait_for(lambda t: t.count("\n") >= 2, what="the first proposal elected")
        key1, value1 = lines.splitlines()[:2]
        assert key1.startswith("myelection/") and value1 == "p1"
        with CtlWatch(server.endpoint, "myelection", "-l", command="elect") as obs, \
                CtlWatch(server.endpoint, "myelection", "p2", command="elect") as c2:
            obs.wait_for(lambda t: t == f"{key1}\np1\n", what="the observer seeing p1")
            queue = wait_keys(server, "myelection/", 2)
            assert queue[0] == key1
            assert c2.out() == ""
            c1.stop()  # the leader resigns (its session ends)
            got = c2.wait_for(lambda t: t.count("\n") >= 2, what="p2 elected")
            key2, value2 = got.splitlines()[:2]
            assert (key2, value2) == (queue[1], "p2")
            obs.wait_for(lambda t: t == f"{key1}\np1\n{key2}\np2\n",
                         what="the observer seeing p2")


def test_python_etcd3_uncontended_lock(server):
    """python3-etcd3's Lock (a lease, a create-revision txn, a watch while waiting), uncontended:
    acquire, hold, refresh, release. Contention is covered by etcdctl lock above: Debian's
    python3-etcd3 0.12 fails any contended acquire against etcd too."""
    c = server.client()
    lock = c.lock("pylock", ttl=30)
    assert lock.acquire(timeout=10)
    assert lock.is_acquired()
    # the lock's key, with its lease, is there
    value, meta = c.get("/locks/pylock")
    assert value is not None and meta.lease_id != 0
    lock.refresh()
    assert lock.is_acquired()
    assert lock.release()
    assert not lock.is_acquired()
    assert c.get("/locks/pylock") == (None, None)
    # and again, as a context manager
    with c.lock("pylock", ttl=30) as again:
        assert again.is_acquired()
    assert c.get("/locks/pylock") == (None, None)
