"""cairnctl's membership commands — member add/remove/update/promote and move-leader — against
etcdctl 3.4, on a 3-member cairnd cluster (cluster.py) and on a single server of each kind.

An error leaves the cluster as it was, so etcdctl and cairnctl run one after the other on the same
cluster and must print the same bytes (stderr with "etcdctl" read as "cairnctl"). A change cannot
be made twice: etcdctl makes one, cairnctl an equivalent one (a learner on another free port),
and the output of each must equal the text built from the member list that follows — the members
a change answers with are the member list — so the etcdctl run proves the expectation that the
cairnctl run is held to. move-leader answers the same in both directions but with another term:
the two outputs are compared with the term and the answering member blanked.

End to end: a learner added with cairnctl and started from the CAIRN_* lines it printed, promoted
once in sync, made leader with move-leader, then another member removed; member list and endpoint
status are checked after each step.
"""

import json
import os
import re
import time

import pytest

from cluster import Cluster, Member
from conftest import CLUSTER_TOKEN, ETCDCTL, free_port, require_kind
from test_cairnctl import clean_err, help_flags, run

FORMATS = ["simple", "json", "protobuf", "fields", "table"]


@pytest.fixture(scope="module")
def cluster3(request):
    """One 3-member cairnd cluster for the tests that leave its membership as they found it;
    every process and directory gone afterwards, the members' logs printed if a test failed."""
    require_kind("cairnd")
    failed = request.session.testsfailed
    c = Cluster(3)
    try:
        c.start()
        c.wait_published()
        yield c
    finally:
        if request.session.testsfailed > failed:
            print(c.log_tails())
        c.close()


@pytest.fixture
def fresh_cluster(request):
    """A 3-member cairnd cluster of the test's own; every process and directory gone afterwards."""
    require_kind("cairnd")
    c = Cluster(3)
    try:
        c.start()
        c.wait_published()
        yield c
    finally:
        if getattr(request.node, "rep_call_failed", False):
            print(c.log_tails())
        c.close()


def eps(members):
    return ",".join(m.endpoint for m in members)


def same(endpoints, cairnctl, *args):
    """etcdctl and cairnctl with --endpoints endpoints: identical exit code, stdout, stderr."""
    e = run(ETCDCTL, endpoints, *args)
    c = run(cairnctl, endpoints, *args)
    what = " ".join(args)
    assert c[0] == e[0], f"exit code of {what}: cairnctl {c[0]}, etcdctl {e[0]}; {c[2]!r} {e[2]!r}"
    assert c[1] == e[1], f"stdout of {what}:\ncairnctl {c[1]!r}\netcdctl  {e[1]!r}"
    assert clean_err(c[2]) == clean_err(e[2]), f"stderr of {what}: {c[2]!r} vs {e[2]!r}"
    return c


def ok(binary, endpoints, *args):
    rc, out, err = run(binary, endpoints, *args)
    assert rc == 0, f"{os.path.basename(binary)} {' '.join(args)}: rc {rc}: {err}"
    return out


def members_json(endpoint):
    """MemberList as etcdctl -w json prints it: (bytes, parsed with the key order kept)."""
    out = ok(ETCDCTL, endpoint, "-w", "json", "member", "list")
    return out, json.loads(out)


def compact(obj):
    """Go's encoding/json of etcd's structs, for the ASCII values these tests have."""
    return json.dumps(obj, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# protobuf, by hand (python3-etcd3's generated messages predate isLearner)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field(num, value):
    """One field as gogo-protobuf writes it (zero values left out): int, bool, str or bytes of an
    embedded message (given as ("msg", bytes))."""
    if isinstance(value, tuple):
        data = value[1]
        return varint(num << 3 | 2) + varint(len(data)) + data
    if isinstance(value, bool):
        return varint(num << 3) + b"\x01" if value else b""
    if isinstance(value, int):
        return varint(num << 3) + varint(value) if value else b""
    data = value.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data if data else b""


def pb_header(h):
    return b"".join(pb_field(n, h.get(k, 0)) for n, k in
                    ((1, "cluster_id"), (2, "member_id"), (3, "revision"), (4, "raft_term")))


def pb_member(m):
    out = pb_field(1, m.get("ID", 0)) + pb_field(2, m.get("name", ""))
    out += b"".join(pb_field(3, u) for u in m.get("peerURLs", []))
    out += b"".join(pb_field(4, u) for u in m.get("clientURLs", []))
    return out + pb_field(5, m.get("isLearner", False))


def pb_fields(data):
    """Top-level fields of a message: [(number, wire type, int value or bytes)]."""
    out, i = [], 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(data, i)
        elif wt == 2:
            n, i = read_varint(data, i)
            v, i = data[i:i + n], i + n
        else:
            raise AssertionError(f"unexpected wire type {wt} in {data!r}")
        out.append((num, wt, v))
    return out


def read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


# --------------------------------------------------------------------------------------------
# the outputs of a change, built from the member list that follows it


def find_member(ml, url):
    return next(m for m in ml["members"] if m.get("peerURLs") == [url])


def expected_add(fmt, prefix, name, url_flag, ml, new):
    h = ml["header"]
    if fmt == "simple":
        conf = ",".join(f"{name if m['ID'] == new['ID'] else m.get('name', '')}={u}"
                        for m in ml["members"] for u in m.get("peerURLs", []))
        return (f"Member {new['ID']:16x} added to cluster {h['cluster_id']:16x}\n\n"
                f'{prefix}_NAME="{name}"\n{prefix}_INITIAL_CLUSTER="{conf}"\n'
                f'{prefix}_INITIAL_ADVERTISE_PEER_URLS="{url_flag}"\n'
                f'{prefix}_INITIAL_CLUSTER_STATE="existing"\n').encode()
    if fmt == "json":
        return (f'{{"header":{compact(h)},"member":{compact(new)},'
                f'"members":{compact(ml["members"])}}}\n').encode()
    return (pb_field(1, ("msg", pb_header(h))) + pb_field(2, ("msg", pb_member(new)))
            + b"".join(pb_field(3, ("msg", pb_member(m))) for m in ml["members"]))


def expected_change(fmt, what, member_id, ml):
    """member remove/update/promote: "<what>" is "removed from", "updated in", "promoted in"."""
    h = ml["header"]
    if fmt == "simple":
        return f"Member {member_id:16x} {what} cluster {h['cluster_id']:16x}\n".encode()
    if fmt == "json":
        return f'{{"header":{compact(h)},"members":{compact(ml["members"])}}}\n'.encode()
    return (pb_field(1, ("msg", pb_header(h)))
            + b"".join(pb_field(2, ("msg", pb_member(m))) for m in ml["members"]))


def check_learner_cycle(binary, endpoint, fmt, name="new", promote_error=False, cairnctl=None):
    """With binary (etcdctl or cairnctl): member add --learner, member update, member remove of a
    member on a free port that nobody starts, each output as it must be for fmt. Leaves the
    membership as it found it. With promote_error, also tries member promote of the learner (not
    in sync: an error) with both CLIs, which must answer alike."""
    prefix = "ETCD" if binary == ETCDCTL else "CAIRN"
    url = f"http://127.0.0.1:{free_port()}"
    before = members_json(endpoint)[1]["members"]
    rc, out, err = run(binary, endpoint, "-w", fmt, "member", "add", name, "--learner",
                       f"--peer-urls={url}")
    ml = members_json(endpoint)[1]
    new = find_member(ml, url)
    try:
        assert new.get("isLearner") is True and "name" not in new and "clientURLs" not in new
        if fmt in ("fields", "table"):
            # etcdctl has no such rendering: the member is added, then exit 4
            assert (rc, out, err) == (4, b"", f"Error: {fmt} not supported as output format\n")
        else:
            assert rc == 0, err
            assert out == expected_add(fmt, prefix, name, url, ml, new), (binary, fmt)
        if promote_error:
            rc, _, err = same(endpoint, cairnctl, "-w", fmt, "member", "promote",
                              f"{new['ID']:x}")
            assert rc == 1 and err.endswith(
                "Error: etcdserver: can only promote a learner member which is in sync with "
                "leader\n"), err
        url2 = f"http://127.0.0.1:{free_port()}"
        rc, out, err = run(binary, endpoint, "-w", fmt, "member", "update", f"{new['ID']:x}",
                           f"--peer-urls={url2}")
        ml = members_json(endpoint)[1]
        assert find_member(ml, url2)["ID"] == new["ID"]
        if fmt in ("fields", "table"):
            assert (rc, out, err) == (4, b"", f"Error: {fmt} not supported as output format\n")
        else:
            assert rc == 0, err
            assert out == expected_change(fmt, "updated in", new["ID"], ml), (binary, fmt)
    finally:
        rc, out, err = run(binary, endpoint, "-w", fmt, "member", "remove", f"{new['ID']:x}")
    ml = members_json(endpoint)[1]
    assert ml["members"] == before
    if fmt in ("fields", "table"):
        assert (rc, out, err) == (4, b"", f"Error: {fmt} not supported as output format\n")
    else:
        assert rc == 0, err
        assert out == expected_change(fmt, "removed from", new["ID"], ml), (binary, fmt)


# --------------------------------------------------------------------------------------------
# a 3-member cluster: errors byte for byte, changes by their shape


def error_cases(cl):
    m1, m2, _ = cl.members
    unknown = "1234abcd"
    return [
        ["member", "remove", unknown],
        ["member", "remove", "zz"],
        ["member", "remove"],
        ["member", "remove", "a", "b"],
        ["member", "remove", "0x12"],
        ["member", "remove", "10000000000000000"],
        ["member", "promote", f"{m1.id:x}"],
        ["member", "promote", unknown],
        ["member", "promote"],
        ["member", "update", f"{m1.id:x}", f"--peer-urls={m2.peer_url}"],
        ["member", "update", f"{m1.id:x}", f"--peer-urls=http://127.0.0.1:1,{m2.peer_url}"],
        ["member", "update", unknown, "--peer-urls=http://127.0.0.1:1"],
        ["member", "update", f"{m1.id:x}"],
        ["member", "update", "zz", "--peer-urls=http://127.0.0.1:1"],
        ["member", "update"],
        ["member", "update", f"{m1.id:x}", "--peer-urls=ftp://a:1"],
        ["member", "add"],
        ["member", "add", "x"],
        ["member", "add", "x", "--peer-urls="],
        ["member", "add", "x", "y", "http://z:1", "HTTPS://q", "h"],
        ["member", "add", "x", f"--peer-urls={m2.peer_url}"],
        ["member", "add", "x", "--learner", f"--peer-urls=http://127.0.0.1:1,{m2.peer_url}"],
        # the client's check of the URLs (Go's url.Parse and etcd's types.NewURLs)
        *[["member", "add", "x", f"--peer-urls={u}"] for u in [
            "ftp://a:1", "http://a", "https://127.0.0.1:9/", "http://a:1/p", ",", "http://a:1,",
            "http://a b:1", "http://[::1", "http://[::1]x:1", "http://a:1x", ":1", "a:1",
            "http://%zz:1", "http://%41:1", "http://u%z@a:1", "http://u{@a:1", "http://a:1/%z",
            "http://a:1#%z", "http:a:1", "http:/a:1", "http://a:1:2", "http://[::1%25eth0]:1/x",
            "http://[::1%zz]:1", "http://[::1%25%zz]:1", "http://a:1,ftp://b", " http://a ",
            "HTTP://A", "http://\u00e9:1/", "//a:1", "///a:1", "http://a]:1", "unix://a:1/",
            "http://a:1\x7f", "http://a\t:1", "\u00a0http://a", "http://u:p%@a:1",
            "http://[fe80::1%25en0]:x"]],
        ["move-leader", "1"],
        ["move-leader"],
        ["move-leader", "zz"],
        ["move-leader", "1", "2"],
        ["move-leader", "--", "-1"],
        ["move-leader", "0x1"],
    ]


def test_errors_equal(cluster3, cairnctl):
    all_eps = eps(cluster3.members)
    before = members_json(all_eps)[1]["members"]
    for args in error_cases(cluster3):
        rc, out, err = same(all_eps, cairnctl, *args)
        assert rc in (1, 128) and out == b"", (args, rc)
        for fmt in ("json", "fields"):
            if args[0] == "member" and args[1] in ("remove", "promote", "update"):
                same(all_eps, cairnctl, "-w", fmt, *args)
    # a flag error: the help (whose prose is cairnctl's own) between the two error lines
    for binary in (ETCDCTL, cairnctl):
        rc, out, err = run(binary, all_eps, "move-leader", "-1")
        assert rc == 1 and b"move-leader <transferee-member-id> [flags]" in out
        msg = "Error: unknown shorthand flag: '1' in -1\n"
        assert clean_err(err) == msg + "\n" + msg
    # move-leader asks the endpoints for the leader: only followers given, none found
    lead, followers = cluster3.followers()
    rc, _, err = same(eps(followers), cairnctl, "move-leader", f"{lead.id:x}")
    assert rc == 128 and err == (f"Error: no leader endpoint given at "
                                 f"[{' '.join(m.endpoint for m in followers)}]\n")
    rc, _, err = same(f"{followers[0].endpoint}, http://{followers[1].endpoint}", cairnctl,
                      "move-leader", f"{lead.id:x}")
    assert rc == 128 and "[" + followers[0].endpoint + " http://" in err
    # an endpoint that does not answer: its Status fails, the command too
    dead = f"127.0.0.1:{free_port()}"
    for binary in (ETCDCTL, cairnctl):
        rc, out, err = run(binary, f"{dead},{lead.endpoint}", "--command-timeout", "1s",
                           "move-leader", f"{lead.id:x}")
        assert (rc, out) == (1, b"") and err.splitlines()[-1] == "Error: context deadline exceeded"
    # moving the leadership to the leader is repeatable: nothing moves, the output is the same
    for fmt in FORMATS:
        rc, out, err = same(all_eps, cairnctl, "-w", fmt, "move-leader", f"{lead.id:x}")
        if fmt == "simple":
            assert out == f"Leadership transferred from {lead.id:x} to {lead.id:x}\n".encode()
        if fmt in ("fields", "table"):
            assert rc == 4 and err == f"Error: {fmt} not supported as output format\n"
    assert members_json(all_eps)[1]["members"] == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_learner_add_update_remove(cluster3, cairnctl, fmt):
    endpoint = cluster3.members[0].endpoint
    check_learner_cycle(ETCDCTL, endpoint, fmt)
    check_learner_cycle(cairnctl, endpoint, fmt, promote_error=fmt == "simple",
                        cairnctl=cairnctl)


def go_quote(s):
    """Go's %q of text without control characters but tabs and newlines."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace(
        "\n", "\\n") + '"'


def test_member_add_env_lines(cluster3, cairnctl):
    """Two peer URLs and a name that needs quoting: each line is Go's %q of its value, the initial
    cluster lists every peer URL of every member in the response's order."""
    endpoint = cluster3.members[0].endpoint
    for binary, prefix in ((ETCDCTL, "ETCD"), (cairnctl, "CAIRN")):
        u1, u2 = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
        flag = f"{u1},{u2}"
        name = 'n "q"\t\u00e9'
        rc, out, err = run(binary, endpoint, "member", "add", name, "--learner",
                           f"--peer-urls={flag}")
        ml = members_json(endpoint)[1]
        new = next(m for m in ml["members"] if u1 in m.get("peerURLs", []))
        try:
            assert rc == 0, err
            conf = ",".join(f"{name if m['ID'] == new['ID'] else m.get('name', '')}={u}"
                            for m in ml["members"] for u in m.get("peerURLs", []))
            lines = out.decode().split("\n")
            assert lines[1:] == ["", f"{prefix}_NAME={go_quote(name)}",
                                 f"{prefix}_INITIAL_CLUSTER={go_quote(conf)}",
                                 f"{prefix}_INITIAL_ADVERTISE_PEER_URLS={go_quote(flag)}",
                                 f'{prefix}_INITIAL_CLUSTER_STATE="existing"', ""], lines
        finally:
            ok(binary, endpoint, "member", "remove", f"{new['ID']:x}")


def normalize_move(fmt, out):
    """move-leader's output without the answering member and the term (they differ from one
    move to the next)."""
    if fmt == "json":
        obj = json.loads(out)
        for k in ("member_id", "raft_term"):
            if k in obj.get("header", {}):
                obj["header"][k] = "<x>"
        return compact(obj)
    if fmt == "protobuf":
        fields = pb_fields(out)
        assert all(num == 1 for num, _, _ in fields), fields  # the header alone
        return [[(n, v) for n, _, v in pb_fields(h) if n not in (2, 4)] for _, _, h in fields]
    return out


def test_move_leader_outputs(cluster3, cairnctl):
    all_eps = eps(cluster3.members)
    for fmt in FORMATS:
        outs = []
        for binary in (ETCDCTL, cairnctl):
            lead, followers = cluster3.followers()
            target = followers[0]
            rc, out, err = run(binary, all_eps, "-w", fmt, "move-leader", f"{target.id:x}")
            if fmt in ("fields", "table"):  # etcdctl: the leadership moves, then exit 4
                assert (rc, out, err) == (4, b"",
                                          f"Error: {fmt} not supported as output format\n")
            else:
                assert rc == 0, err
            if fmt == "simple":
                assert out == f"Leadership transferred from {lead.id:x} to {target.id:x}\n".encode()
            assert cluster3.leader() is target, (binary, fmt)
            outs.append(normalize_move(fmt, out))
        if fmt != "simple":  # (simple names the two members, checked above)
            assert outs[0] == outs[1], fmt


def test_help(cairnctl):
    paths = [["member"], ["member", "add"], ["member", "remove"], ["member", "update"],
             ["member", "promote"], ["member", "list"], ["move-leader"]]
    for path in paths:
        ours = run(cairnctl, "", *path, "--help", globals_=False)
        again = run(cairnctl, "", "help", *path, globals_=False)
        theirs = run(ETCDCTL, "", *path, "--help", globals_=False)
        assert ours[0] == again[0] == theirs[0] == 0, path
        assert ours[1] == again[1], path
        o, t = help_flags(ours[1].decode()), help_flags(theirs[1].decode())
        assert set(o) - {"DESCRIPTION"} == set(t) - {"DESCRIPTION"}, (path, o.keys(), t.keys())
        assert o.get("OPTIONS") == t.get("OPTIONS"), path
        assert o.get("GLOBAL OPTIONS") == t.get("GLOBAL OPTIONS"), path
        usage = re.search(rb"USAGE:\n\t\S+ (.*)\n", ours[1]).group(1)
        assert usage == re.search(rb"USAGE:\n\t\S+ (.*)\n", theirs[1]).group(1), path
    rc, out, _ = run(cairnctl, "", "--help", globals_=False)
    assert rc == 0 and all(f"\t{' '.join(p)}\t".encode() in out for p in paths[1:])


# --------------------------------------------------------------------------------------------
# a single server of each kind: what one member can show, the same from both CLIs


def test_single_server(server, cairnctl):
    """etcd 3.4 proves the expectations; on cairnd the same. One learner at a time (etcd's
    limit), never started, so the one voter keeps its quorum."""
    st = json.loads(ok(ETCDCTL, server.endpoint, "-w", "json", "endpoint", "status"))[0]
    me = st["Status"]["header"]["member_id"]
    for fmt in FORMATS:
        for args in (["move-leader", f"{me:x}"], ["move-leader", "1"], ["member", "remove", "1"],
                     ["member", "promote", f"{me:x}"],
                     ["member", "update", "1", f"--peer-urls={server.peer_url}"],
                     ["member", "add", "x", f"--peer-urls={server.peer_url}"]):
            same(server.endpoint, cairnctl, "-w", fmt, *args)
    for fmt in FORMATS:
        check_learner_cycle(ETCDCTL, server.endpoint, fmt)
        check_learner_cycle(cairnctl, server.endpoint, fmt, promote_error=True,
                            cairnctl=cairnctl)


# --------------------------------------------------------------------------------------------
# end to end


class AddedMember(Member):
    """A member added with member add and started with the environment its CAIRN_* lines give
    (cairnd reads CAIRN_<FLAG>), the other flags on the command line."""

    def __init__(self, cluster, index, env_lines, port, peer_port, member_id):
        super().__init__(cluster, index)
        self.env_lines = env_lines
        self.port, self.peer_port = port, peer_port
        self._id = member_id

    @property
    def id(self):
        return self._id  # as member add answered it

    def argv(self):
        return ["env", *self.env_lines, self.cluster.binary, "--data-dir", self.data_dir,
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-cluster-token", CLUSTER_TOKEN,
                "--election-timeout", "1000", "--heartbeat-interval", "100",
                "--log-level", "info"]


def env_lines(out):
    """The NAME=value lines of member add's output, values unquoted (Go's %q of plain text)."""
    lines = {}
    for line in out.decode().splitlines():
        m = re.fullmatch(r'(CAIRN_[A-Z_]+)="(.*)"', line)
        if m:
            lines[m.group(1)] = m.group(2)
    return lines


def status_json(cairnctl, endpoints):
    return {s["Endpoint"]: s["Status"] for s in
            json.loads(ok(cairnctl, endpoints, "-w", "json", "endpoint", "status"))}


def wait_for(what, pred, timeout=60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except AssertionError as e:
            last = e
        time.sleep(0.3)
    raise AssertionError(f"{what} not within {timeout}s; last {last!r}")


def promote(cairnctl, endpoints, m, fmt="simple"):
    """member promote; None while the learner is not in sync yet."""
    rc, out, err = run(cairnctl, endpoints, "-w", fmt, "member", "promote", f"{m.id:x}")
    if rc != 0:
        assert "can only promote a learner member which is in sync with leader" in err, err
        return None
    return out


def test_end_to_end(fresh_cluster, cairnctl):
    cl = fresh_cluster
    m1, m2, m3 = cl.members
    three = eps(cl.members)

    # 1. add a learner with cairnctl; its lines are what member list says
    port, peer_port = free_port(), free_port()
    while peer_port == port:
        peer_port = free_port()
    url = f"http://127.0.0.1:{peer_port}"
    rc, out, err = run(cairnctl, three, "member", "add", "m4", "--learner", f"--peer-urls={url}")
    assert rc == 0, err
    ml = members_json(m1.endpoint)[1]
    new = find_member(ml, url)
    assert out == expected_add("simple", "CAIRN", "m4", url, ml, new)
    lines = env_lines(out)
    assert lines["CAIRN_INITIAL_CLUSTER_STATE"] == "existing" and lines["CAIRN_NAME"] == "m4"
    assert sorted(lines["CAIRN_INITIAL_CLUSTER"].split(",")) == sorted(
        [f"{m.name}={m.peer_url}" for m in cl.members] + [f"m4={url}"])

    # 2. start it from those lines
    m4 = AddedMember(cl, 4, [f"{k}={v}" for k, v in lines.items()], port, peer_port, new["ID"])
    cl.members.append(m4)  # cl.close() ends it and removes its directory with the others
    m4.launch()
    four = eps(cl.members)
    wait_for("m4 started and listed with its name",
             lambda: next((m for m in members_json(m1.endpoint)[1]["members"]
                           if m["ID"] == m4.id and m.get("name") == "m4"
                           and m.get("clientURLs") == [m4.client_url]), None))
    st = status_json(cairnctl, m4.endpoint)[m4.endpoint]
    assert st.get("isLearner") is True

    # 3. promote it with cairnctl once it has caught up
    out = wait_for("promotion", lambda: promote(cairnctl, three, m4))
    cid = ml["header"]["cluster_id"]
    assert out == f"Member {m4.id:16x} promoted in cluster {cid:16x}\n".encode()
    listed = members_json(m1.endpoint)[1]["members"]
    assert [m.get("isLearner", False) for m in listed if m["ID"] == m4.id] == [False]
    wait_for("m4 a voter in its own status",
             lambda: status_json(cairnctl, m4.endpoint)[m4.endpoint].get("isLearner") is None)
    rc, out, _ = run(cairnctl, four, "-w", "json", "endpoint", "status", "--cluster")
    assert rc == 0 and sorted(s["Endpoint"] for s in json.loads(out)) == sorted(
        m.client_url for m in cl.members)

    # 4. make it the leader
    lead = cl.leader()
    rc, out, err = run(cairnctl, four, "move-leader", f"{m4.id:x}")
    assert (rc, err) == (0, ""), err
    assert out == f"Leadership transferred from {lead.id:x} to {m4.id:x}\n".encode()
    assert cl.leader() is m4
    st = status_json(cairnctl, four)
    assert {ep: s["leader"] for ep, s in st.items()} == {m.endpoint: m4.id for m in cl.members}
    rc, out, _ = run(cairnctl, four, "-w", "table", "endpoint", "status")
    row = next(line for line in out.decode().splitlines() if m4.endpoint in line)
    assert re.search(r"\|\s+true\s+\|\s+false\s+\|", row), row  # is leader, is not a learner

    # 5. remove another member with cairnctl, asking the members that stay
    rest = [m2, m3, m4]
    rc, out, err = run(cairnctl, eps(rest), "member", "remove", f"{m1.id:x}")
    assert rc == 0, err
    assert out == f"Member {m1.id:16x} removed from cluster {cid:16x}\n".encode()
    listed = json.loads(ok(cairnctl, eps(rest), "-w", "json", "member", "list"))["members"]
    assert sorted(m["ID"] for m in listed) == sorted(m.id for m in rest)
    assert all(m.get("name") and not m.get("isLearner") for m in listed)
    rc, out, _ = run(cairnctl, eps(rest), "member", "list")
    assert rc == 0 and len(out.splitlines()) == 3 and f"{m1.id:x}".encode() not in out
    st = status_json(cairnctl, eps(rest))
    assert {s["leader"] for s in st.values()} == {m4.id}
    # the three go on: a write through cairnctl, read back from each
    ok(cairnctl, eps(rest), "put", "after-remove", "yes")
    for m in rest:
        assert wait_for(f"the write on {m.name}", lambda m=m: ok(
            cairnctl, m.endpoint, "get", "after-remove", "--consistency", "s")) == \
            b"after-remove\nyes\n"

    # 6. once more with -w json (etcdctl 3.4 crashes printing a promotion so): a learner added,
    # started, promoted; each answer is the member list that follows
    port, peer_port = free_port(), free_port()
    url = f"http://127.0.0.1:{peer_port}"
    # (one endpoint: the answering member is in the header)
    rc, out, err = run(cairnctl, m4.endpoint, "-w", "json", "member", "add", "m5", "--learner",
                       f"--peer-urls={url}")
    assert rc == 0, err
    ml = members_json(m4.endpoint)[1]
    new = find_member(ml, url)
    assert out == expected_add("json", "CAIRN", "m5", url, ml, new)
    conf = ",".join(f"{m.get('name') or 'm5'}={m['peerURLs'][0]}" for m in ml["members"])
    m5 = AddedMember(cl, 5, ["CAIRN_NAME=m5", f"CAIRN_INITIAL_CLUSTER={conf}",
                             f"CAIRN_INITIAL_ADVERTISE_PEER_URLS={url}",
                             "CAIRN_INITIAL_CLUSTER_STATE=existing"], port, peer_port, new["ID"])
    cl.members.append(m5)
    m5.launch()
    out = wait_for("promotion of m5", lambda: promote(cairnctl, m4.endpoint, m5, "json"))
    ml = members_json(m4.endpoint)[1]
    assert out == expected_change("json", "promoted in", m5.id, ml)
    assert [m.get("isLearner", False) for m in ml["members"] if m["ID"] == m5.id] == [False]


GARBAGE = [
    ["member", "add", "x" * 100000, "--peer-urls=http://a"],
    ["member", "add", "x", "--peer-urls=" + "," * 10000],
    ["member", "add", "x", "--peer-urls=" + "http://a:1/" * 10000],
    *[["member", "add", "x", f"--peer-urls={u}"] for u in [
        "%", "[", "http://[", "http://@", "http://]", "http://%", "http://%2", "#", "?", "*",
        "\xff\xfe", "http://a:1?#%", "x:" + "9" * 1000, "http://[" + "%25" * 1000]],
    ["member", "update", "ffffffffffffffff", "--peer-urls=http://a:1?x"],
    ["member", "remove", "ffffffffffffffff"], ["member", "promote", "0"],
    ["member", "remove", ""], ["move-leader", ""], ["move-leader", "ffffffffffffffff"],
    ["move-leader", "0"], ["-w", "protobuf", "move-leader", "0"],
]


def test_garbage_never_crashes(cluster3, cairnctl):
    """Odd input, refused before anything is sent or by the server, as etcdctl's is; the cluster
    keeps its members."""
    all_eps = eps(cluster3.members)
    before = members_json(all_eps)[1]["members"]
    for args in GARBAGE:
        rc, out, err = same(all_eps, cairnctl, "--command-timeout", "3s", *args)
        assert rc > 0, f"cairnctl {[a[:40] for a in args]}: rc {rc}: {err[-500:]}"
        assert "Sanitizer" not in err and "runtime error" not in err, err[-2000:]
        assert err.startswith("Error: "), (args[:3], err[:300])
    assert members_json(all_eps)[1]["members"] == before
