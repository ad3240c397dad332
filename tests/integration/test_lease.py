"""etcd's Lease service — etcd 3.4 and cairnd with the same assertions (the `server` fixture), and
leases on a three-member cairnd cluster (cluster.py).

Remaining TTLs depend on time, so outputs that carry one are matched with a pattern and checked to
lie within the granted TTL; expiry is awaited by polling with a generous deadline, never timed.
"""

import base64
import json
import re
import threading
import time

import grpc
import pytest

import etcd3
from etcd3 import etcdrpc

from conftest import cluster_factory

NOT_FOUND = "etcdserver: requested lease not found"
EXISTS = "etcdserver: lease already exists"
TOO_LARGE = "etcdserver: too large lease TTL"
MIN_TTL = 2  # ceil(1.5 × the default election timeout of 1 s), etcd's minimum


def granted_id(out, ttl):
    """The id of etcdctl's 'lease <hex> granted with TTL(<ttl>s)' line, as an int."""
    m = re.fullmatch(r"lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n", out)
    assert m, out
    assert int(m.group(2)) == ttl, out
    return int(m.group(1), 16)


def grant(server, ttl):
    return granted_id(server.ctl_ok("lease", "grant", str(ttl)), ttl)


def ctl_error(server, *args):
    rc, out, err = server.ctl(*args)
    assert rc != 0, f"etcdctl {' '.join(args)} succeeded on {server.kind}: {out!r}"
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert errors, err
    return errors[-1]


def rpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    return e.value.code(), e.value.details()


def wait_until(cond, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# etcdctl


def test_grant_put_timetolive_list_keepalive_revoke(server):
    lid = grant(server, 60)
    assert server.ctl_ok("put", "--lease", f"{lid:x}", "a", "1") == "OK\n"
    assert server.ctl_ok("put", "--lease", f"{lid:x}", "b", "2") == "OK\n"
    assert server.ctl_ok("put", "c", "3") == "OK\n"

    out = server.ctl_ok("lease", "timetolive", f"{lid:x}")
    m = re.fullmatch(rf"lease {lid:016x} granted with TTL\(60s\), remaining\((\d+)s\)\n", out)
    assert m and 0 < int(m.group(1)) <= 60, out
    t = json.loads(server.ctl_ok("-w", "json", "lease", "timetolive", "--keys", f"{lid:x}"))
    assert t["id"] == lid and t["granted-ttl"] == 60 and 0 < t["ttl"] <= 60, t
    assert sorted(base64.b64decode(k) for k in t["keys"]) == [b"a", b"b"]

    other = grant(server, 30)
    out = server.ctl_ok("lease", "list")
    lines = out.splitlines()
    assert lines[0] == "found 2 leases", out
    assert sorted(lines[1:]) == sorted([f"{lid:016x}", f"{other:016x}"]), out

    assert server.ctl_ok("lease", "keep-alive", "--once", f"{lid:x}") == \
        f"lease {lid:016x} keepalived with TTL(60)\n"

    assert server.ctl_ok("lease", "revoke", f"{lid:x}") == f"lease {lid:016x} revoked\n"
    assert server.ctl_ok("get", "--prefix", "") == "c\n3\n"
    assert server.ctl_ok("lease", "timetolive", f"{lid:x}") == f"lease {lid:016x} already expired\n"
    assert server.ctl_ok("lease", "list") == f"found 1 leases\n{other:016x}\n"


def test_short_ttl_is_raised_to_the_minimum_and_expires(server):
    lid = granted_id(server.ctl_ok("lease", "grant", "1"), MIN_TTL)
    assert server.ctl_ok("put", "--lease", f"{lid:x}", "e1", "x") == "OK\n"
    assert server.ctl_ok("put", "--lease", f"{lid:x}", "e2", "y") == "OK\n"
    assert server.ctl_ok("get", "--prefix", "e") == "e1\nx\ne2\ny\n"
    wait_until(lambda: server.ctl_ok("get", "--prefix", "e") == "",
               what="keys of the expired lease gone")
    assert server.ctl_ok("lease", "timetolive", f"{lid:x}") == f"lease {lid:016x} already expired\n"
    assert server.ctl_ok("lease", "list") == "found 0 leases\n"
    # both keys went in one revision: puts at 2 and 3, the revoke at 4
    r = json.loads(server.ctl_ok("-w", "json", "get", "x"))
    assert r["header"]["revision"] == 4, r


def test_errors(server):
    assert ctl_error(server, "put", "--lease", "1234", "x", "y") == f"Error: {NOT_FOUND}"
    assert ctl_error(server, "lease", "revoke", "1234") == \
        f"Error: failed to revoke lease ({NOT_FOUND})"
    assert server.ctl_ok("lease", "timetolive", "99") == "lease 0000000000000099 already expired\n"
    assert server.ctl_ok("get", "x") == ""


# --------------------------------------------------------------------------------------------
# python3-etcd3 and raw RPCs


def test_python_client_lease(server):
    c = server.client()
    lease = c.lease(30)
    assert lease.id > 0 and lease.ttl == 30
    c.put("pk", "v", lease=lease)
    value, meta = c.get("pk")
    assert value == b"v" and meta.lease_id == lease.id
    resps = lease.refresh()
    assert len(resps) == 1 and resps[0].ID == lease.id and resps[0].TTL == 30
    assert 0 < lease.remaining_ttl <= 30
    assert lease.granted_ttl == 30
    assert lease.keys == [b"pk"]
    lease.revoke()
    assert c.get("pk") == (None, None)
    info = c.get_lease_info(lease.id)
    assert info.ID == lease.id and info.TTL == -1 and info.grantedTTL == 0
    assert list(info.keys) == []


def test_grant_with_an_id(server):
    c = server.client()
    r = c.leasestub.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=20, ID=0x1234), timeout=10)
    assert (r.ID, r.TTL) == (0x1234, 20)
    assert rpc_error(c.leasestub.LeaseGrant, etcdrpc.LeaseGrantRequest(TTL=20, ID=0x1234),
                     timeout=10) == (grpc.StatusCode.FAILED_PRECONDITION, EXISTS)
    assert rpc_error(c.leasestub.LeaseGrant, etcdrpc.LeaseGrantRequest(TTL=9000000001, ID=7),
                     timeout=10) == (grpc.StatusCode.OUT_OF_RANGE, TOO_LARGE)
    r = c.leasestub.LeaseLeases(etcdrpc.LeaseLeasesRequest(), timeout=10)
    assert [s.ID for s in r.leases] == [0x1234]
    assert rpc_error(c.leasestub.LeaseRevoke, etcdrpc.LeaseRevokeRequest(ID=99),
                     timeout=10) == (grpc.StatusCode.NOT_FOUND, NOT_FOUND)


def test_revoke_deletes_attached_keys_in_one_revision(server):
    c = server.client()
    lease = c.lease(60)
    c.put("r/a", "1", lease=lease)  # revision 2
    c.put("r/b", "2", lease=lease)  # 3
    c.put("r/c", "3")               # 4
    r = c.leasestub.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=lease.id), timeout=10)
    assert r.header.revision == 5
    assert [m.key for _, m in c.get_prefix("r/")] == [b"r/c"]
    old = c.kvstub.Range(etcdrpc.RangeRequest(key=b"r/", range_end=b"r0", revision=4), timeout=10)
    assert [kv.key for kv in old.kvs] == [b"r/a", b"r/b", b"r/c"]


def test_keepalive_stream(server):
    """Every request of one stream is answered with its id and TTL; an unknown lease gets TTL 0
    and the stream goes on."""
    c = server.client()
    lease = c.lease(40)
    reqs = [etcdrpc.LeaseKeepAliveRequest(ID=i) for i in (lease.id, 4242, lease.id)]
    resps = list(c.leasestub.LeaseKeepAlive(iter(reqs), timeout=10))
    assert [(r.ID, r.TTL) for r in resps] == [(lease.id, 40), (4242, 0), (lease.id, 40)]
    assert all(r.header.revision == 1 for r in resps)


def alarm(c, action, member, kind):
    c.maintenancestub.Alarm(etcdrpc.AlarmRequest(action=action, memberID=member, alarm=kind),
                            timeout=10)


def test_alarms_refuse_grants_and_revokes(server):
    """etcd's capped applier refuses grants while a NOSPACE alarm is raised (revokes go on); its
    corrupt applier refuses both."""
    c = server.client()
    kept = c.lease(60)
    gone = c.lease(60)
    alarm(c, etcdrpc.AlarmRequest.ACTIVATE, 5, etcdrpc.NOSPACE)
    assert rpc_error(c.leasestub.LeaseGrant, etcdrpc.LeaseGrantRequest(TTL=20), timeout=10) == \
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")
    c.revoke_lease(gone.id)
    alarm(c, etcdrpc.AlarmRequest.DEACTIVATE, 5, etcdrpc.NOSPACE)
    alarm(c, etcdrpc.AlarmRequest.ACTIVATE, 6, etcdrpc.CORRUPT)
    corrupt = (grpc.StatusCode.DATA_LOSS, "etcdserver: corrupt cluster")
    assert rpc_error(c.leasestub.LeaseGrant, etcdrpc.LeaseGrantRequest(TTL=20),
                     timeout=10) == corrupt
    assert rpc_error(c.leasestub.LeaseRevoke, etcdrpc.LeaseRevokeRequest(ID=kept.id),
                     timeout=10) == corrupt
    alarm(c, etcdrpc.AlarmRequest.DEACTIVATE, 6, etcdrpc.CORRUPT)
    r = c.leasestub.LeaseLeases(etcdrpc.LeaseLeasesRequest(), timeout=10)
    assert [s.ID for s in r.leases] == [kept.id]


# --------------------------------------------------------------------------------------------
# A three-member cairnd cluster


@pytest.fixture
def cluster3(request):
    with cluster_factory(request) as make:
        yield make(3)


def keys_with_prefix(member, prefix):
    r = member.range(prefix, serializable=True, prefix=True)
    return [kv.key for kv in r.kvs]


def test_cluster_expired_lease_keys_vanish_everywhere_at_one_revision(cluster3):
    lead, (f1, f2) = cluster3.followers()
    lease = f1.client().lease(MIN_TTL)
    assert lease.ttl == MIN_TTL
    f2.client().put("x/a", "1", lease=lease)
    rev = f1.client().put("x/b", "2", lease=lease).header.revision
    for m in cluster3:
        wait_until(lambda m=m: keys_with_prefix(m, "x/") == [], what=f"x/ gone on {m.name}")
    final = cluster3.wait_converged()
    assert final == rev + 1  # one revision deleted both keys
    for m in cluster3:
        before = m.range("x/", prefix=True, revision=rev, serializable=True)
        assert [kv.key for kv in before.kvs] == [b"x/a", b"x/b"], m
        after = m.range("x/", prefix=True, revision=rev + 1, serializable=True)
        assert len(after.kvs) == 0, m
    hashes = cluster3.hashkvs(final)
    assert len({h[0] for h in hashes.values()}) == 1, hashes
    for m in cluster3:
        info = m.client().get_lease_info(lease.id)
        assert info.TTL == -1


def test_cluster_keepalive_through_a_follower(cluster3):
    lead, (f1, f2) = cluster3.followers()
    lease = f1.client().lease(3)
    f1.client().put("k/alive", "1", lease=lease)
    # renew through the follower, well within the TTL, for several TTLs
    end = time.monotonic() + 9
    while time.monotonic() < end:
        resps = list(f2.client().refresh_lease(lease.id))
        assert [(r.ID, r.TTL) for r in resps] == [(lease.id, 3)]
        time.sleep(0.5)
    for m in cluster3:
        assert keys_with_prefix(m, "k/") == [b"k/alive"], m
    info = f2.client().get_lease_info(lease.id)
    assert info.grantedTTL == 3 and 0 <= info.TTL <= 3 and list(info.keys) == [b"k/alive"]
    # renewals stop: the lease expires
    for m in cluster3:
        wait_until(lambda m=m: keys_with_prefix(m, "k/") == [], what=f"k/ gone on {m.name}")
    assert list(f2.client().refresh_lease(lease.id))[0].TTL == 0


def test_cluster_lease_kept_alive_through_a_leader_kill(cluster3):
    lead, followers = cluster3.followers()
    lease = followers[0].client().lease(6)
    followers[0].client().put("s/held", "1", lease=lease)
    clients = [etcd3.client("127.0.0.1", m.port, timeout=10) for m in followers]
    stop = threading.Event()
    renewed_after_kill = []
    killed = threading.Event()
    errors = []

    def renew():
        i = 0
        while not stop.is_set():
            try:
                r = list(clients[i % 2].refresh_lease(lease.id))
                if r and r[0].TTL > 0 and killed.is_set():
                    renewed_after_kill.append(r[0].TTL)
            except Exception as e:  # noqa: BLE001 - no leader for a moment
                errors.append(repr(e))
            i += 1
            time.sleep(0.5)

    t = threading.Thread(target=renew, daemon=True)
    t.start()
    try:
        time.sleep(1)
        lead.kill9()
        killed.set()
        new = cluster3.leader(among=followers)
        assert new in followers
        # keep renewing for more than the TTL past the new leader's start
        end = time.monotonic() + 10
        while time.monotonic() < end:
            time.sleep(0.2)
    finally:
        stop.set()
        t.join(30)
        for c in clients:
            c.close()
    assert renewed_after_kill, errors
    for m in followers:
        assert keys_with_prefix(m, "s/") == [b"s/held"], m
    info = followers[1].client().get_lease_info(lease.id)
    assert info.TTL > 0 and info.grantedTTL == 6
