"""A follower's forwarded write outlives the leader it was sent to, and is applied once.

Three cairnd members. Clients write distinct keys only through the members that follow when the
leader is killed (kill -9); the leader comes back and the next one is killed, a few times. A
write in flight at a kill may or may not be in the log: the follower sends it again to the next
leader, and the applier drops a second copy by its request id (raft/fsm.c, store/requests.c).

Afterwards every acknowledged put is on every member with its value and revision, every key
written has version 1 (a put applied twice would have version 2), and HashKV is equal everywhere.
Writes in flight at a kill were sent again (the followers say so in their logs) and some of them
succeeded: a put begun before the kill and acknowledged.
"""

import time

from test_cluster import Writer, assert_all_present, assert_hashkv_equal, cluster  # noqa: F401

KILLS = 3
WRITERS_PER_FOLLOWER = 2


class TimedClient:
    """A python3-etcd3 client whose puts record (began, ended, key) of every acknowledged put."""

    def __init__(self, client, log):
        self.client = client
        self.log = log

    def put(self, key, value):
        began = time.monotonic()
        r = self.client.put(key, value)
        self.log.append((began, time.monotonic(), key))
        return r

    def close(self):
        self.client.close()


def timed_writer(members, prefix):
    w = Writer(members, prefix)
    w.timed = []
    w.clients = {name: TimedClient(c, w.timed) for name, c in w.clients.items()}
    return w


def test_forwarded_writes_survive_leader_kills_once_each(cluster):
    cl = cluster(3)
    acked = {}
    spanning = 0  # acknowledged puts begun before a kill and acknowledged after it
    for round_ in range(KILLS):
        lead, followers = cl.followers()
        writers = [timed_writer([f], f"f/{round_}/{f.name}/{k}/")
                   for f in followers for k in range(WRITERS_PER_FOLLOWER)]
        for w in writers:
            w.start()
        try:
            for w in writers:
                w.wait(lambda a, by: len(a) >= 10, 60, "10 forwarded puts acknowledged")
            killed_at = time.monotonic()
            lead.kill9()
            cl.leader(among=followers, timeout=30)
            for w in writers:
                seen = len(w.snapshot()[0])
                w.wait(lambda a, by, seen=seen: len(a) >= seen + 10, 60,
                       "10 more puts after the kill")
        finally:
            for w in writers:
                acked.update(w.stop())
        spanning += sum(1 for w in writers for began, ended, _ in w.timed
                        if began < killed_at < ended)
        cl.restart(lead)
        cl.leader(timeout=30)

    assert_hashkv_equal(cl)
    assert_all_present(cl, acked, "f/")
    for m in cl:
        kvs = m.range("f/", serializable=True, prefix=True).kvs
        twice = [(kv.key, kv.version) for kv in kvs if kv.version != 1]
        assert not twice, f"keys written more than once on {m.name}: {twice[:5]}"
    resent = 0
    for m in cl:
        with open(m.log_path, errors="replace") as f:  # every start's log
            resent += f.read().count("forwarded writes again")
    print(f"resends logged {resent}, puts acknowledged across a kill {spanning}")
    assert resent > 0, "no follower sent a forwarded write again after a kill"
    assert spanning > 0, "no put in flight at a kill was acknowledged"
