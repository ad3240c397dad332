"""Alarms (Maintenance.Alarm) and the NOSPACE alarm the quota raises — etcd 3.4 and cairnd, with the
same assertions.

etcd's behaviour: a write that would pass --quota-backend-bytes is refused and raises NOSPACE for
the member; from then on puts, txns with puts (and lease grants) are refused however small, while
reads, deletes and compaction go on, until the alarm is disarmed. A CORRUPT alarm refuses every
write. Alarms are replicated state and survive a restart.
"""

import grpc
import pytest

from etcd3 import etcdrpc

from conftest import CLUSTER_TOKEN, etcd_member_id
from test_python_client import SPACE, fill_quota, rpc_error

GET, ACTIVATE, DEACTIVATE = (etcdrpc.AlarmRequest.GET, etcdrpc.AlarmRequest.ACTIVATE,
                             etcdrpc.AlarmRequest.DEACTIVATE)
CORRUPT_MSG = "etcdserver: corrupt cluster"


def alarm(c, action, member=0, kind=etcdrpc.NONE):
    r = c.maintenancestub.Alarm(etcdrpc.AlarmRequest(action=action, memberID=member, alarm=kind),
                                timeout=10)
    assert not r.HasField("header"), "etcd's AlarmResponse has no header"
    return sorted((a.memberID, a.alarm) for a in r.alarms)


def test_nospace_alarm_after_quota(server_kind, servers):
    s = servers(server_kind, extra_args=["--quota-backend-bytes", str(4 << 20)])
    acked = fill_quota(s)
    c = s.client()
    me = etcd_member_id([s.peer_url], CLUSTER_TOKEN)
    # even a tiny put is refused now, and so is a txn with a put
    assert rpc_error(c.put, "small", "1") == (grpc.StatusCode.RESOURCE_EXHAUSTED, SPACE)
    t = c.transactions
    assert rpc_error(c.transaction, compare=[], success=[t.put("small", "1")], failure=[]) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, SPACE)
    assert alarm(c, GET) == [(me, etcdrpc.NOSPACE)]
    assert alarm(c, GET, kind=etcdrpc.NOSPACE) == [(me, etcdrpc.NOSPACE)]
    assert alarm(c, GET, kind=etcdrpc.CORRUPT) == []
    rc, out, err = s.ctl("alarm", "list")
    assert rc == 0 and out == f"memberID:{me} alarm:NOSPACE \n", (out, err)
    # endpoint status lists the alarm among its errors
    out = s.ctl_ok("endpoint", "status")
    assert out.rstrip().endswith(f"memberID:{me} alarm:NOSPACE"), out
    # reads, deletes and txns without puts still work
    assert c.get(f"q/{acked[0]:04d}")[0] is not None
    assert c.delete(f"q/{acked[0]:04d}") is True
    ok, _ = c.transaction(compare=[], success=[t.delete(f"q/{acked[1]:04d}")], failure=[])
    assert ok
    # the alarm is kept across a restart
    s.terminate()
    s.restart()
    c = s.client()
    assert alarm(c, GET) == [(me, etcdrpc.NOSPACE)]
    assert rpc_error(c.put, "small", "1") == (grpc.StatusCode.RESOURCE_EXHAUSTED, SPACE)
    # disarm (etcdctl deactivates every alarm it lists and prints them)
    rc, out, err = s.ctl("alarm", "disarm")
    assert rc == 0 and out == f"memberID:{me} alarm:NOSPACE \n", (out, err)
    assert alarm(c, GET) == []
    assert s.ctl_ok("alarm", "list") == ""


def test_alarm_activate_deactivate(server):
    c = server.client()
    assert alarm(c, GET) == []
    assert alarm(c, ACTIVATE, 3, etcdrpc.CORRUPT) == [(3, etcdrpc.CORRUPT)]
    assert alarm(c, ACTIVATE, 3, etcdrpc.CORRUPT) == [(3, etcdrpc.CORRUPT)]  # raised before: same
    assert alarm(c, ACTIVATE, 4, etcdrpc.CORRUPT) == [(4, etcdrpc.CORRUPT)]
    assert alarm(c, GET) == [(3, etcdrpc.CORRUPT), (4, etcdrpc.CORRUPT)]
    assert alarm(c, DEACTIVATE, 3, etcdrpc.NOSPACE) == []  # not raised: nothing cleared
    assert alarm(c, DEACTIVATE, 3, etcdrpc.CORRUPT) == [(3, etcdrpc.CORRUPT)]
    assert alarm(c, DEACTIVATE, 3, etcdrpc.CORRUPT) == []
    assert alarm(c, DEACTIVATE, 4, etcdrpc.CORRUPT) == [(4, etcdrpc.CORRUPT)]
    assert alarm(c, ACTIVATE, 5, etcdrpc.NOSPACE) == [(5, etcdrpc.NOSPACE)]
    assert alarm(c, ACTIVATE, 6, etcdrpc.NOSPACE) == [(6, etcdrpc.NOSPACE)]
    assert alarm(c, GET, kind=etcdrpc.NOSPACE) == [(5, etcdrpc.NOSPACE), (6, etcdrpc.NOSPACE)]
    assert alarm(c, GET, kind=etcdrpc.CORRUPT) == []
    # NOSPACE refuses puts, not deletes; the alarm another member raised stays as it was
    assert rpc_error(c.put, "k", "v") == (grpc.StatusCode.RESOURCE_EXHAUSTED, SPACE)
    assert c.delete("k") is False
    assert alarm(c, GET) == [(5, etcdrpc.NOSPACE), (6, etcdrpc.NOSPACE)]
    # writes resume only when no NOSPACE alarm is left
    assert alarm(c, DEACTIVATE, 5, etcdrpc.NOSPACE) == [(5, etcdrpc.NOSPACE)]
    assert rpc_error(c.put, "k", "v") == (grpc.StatusCode.RESOURCE_EXHAUSTED, SPACE)
    assert alarm(c, DEACTIVATE, 6, etcdrpc.NOSPACE) == [(6, etcdrpc.NOSPACE)]
    c.put("k", "v")
    assert c.get("k")[0] == b"v"


def test_corrupt_alarm_refuses_writes(server):
    c = server.client()
    c.put("k", "v")  # 2
    c.put("k", "w")  # 3
    alarm(c, ACTIVATE, 7, etcdrpc.CORRUPT)
    t = c.transactions
    data_loss = (grpc.StatusCode.DATA_LOSS, CORRUPT_MSG)
    assert rpc_error(c.put, "k", "x") == data_loss
    assert rpc_error(c.delete, "k") == data_loss
    assert rpc_error(c.compact, 2) == data_loss
    assert rpc_error(c.transaction, compare=[], success=[t.delete("k")], failure=[]) == data_loss
    # reads and read-only txns are answered
    assert c.get("k")[0] == b"w"
    ok, resp = c.transaction(compare=[], success=[t.get("k")], failure=[])
    assert ok and resp[0][0][0] == b"w"
    alarm(c, DEACTIVATE, 7, etcdrpc.CORRUPT)
    c.put("k", "x")
    assert c.get("k")[0] == b"x"
