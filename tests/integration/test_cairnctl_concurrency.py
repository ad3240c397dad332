"""cairnctl lock and elect against etcdctl 3.4's — between processes, with each other, and the
same output, exit codes and errors for the same situations.

Every test that takes `server` runs against etcd 3.4 and against cairnd. Long-running commands
(a held lock, a candidate, an observer) are watchwire.CtlWatch children, stopped at the end of the
test whatever happens. A contender that waits is checked by its silence while the holder's key is
still first under the prefix; nothing here measures time, and every wait has a deadline. Where a
scenario is run once per tool to compare them, the lease IDs (in the keys) and revisions differ
between the runs, so the outputs are compared with those replaced by placeholders.
"""

import contextlib
import json
import os
import re
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ETCDCTL
from test_cairnctl import assert_same_run, clean_err, help_flags, run
from test_concurrency import keys_under, wait_keys
from watchwire import CtlWatch

TOOLS = ["etcdctl", "cairnctl"]


def binary(tool, cairnctl):
    return ETCDCTL if tool == "etcdctl" else cairnctl


def held(w, what="the lock"):
    """The key a lock holder printed (simple format: the key, then its empty value)."""
    out = w.wait_for(lambda t: t.endswith("\n\n"), what=what)
    key = out[:-2]
    assert "\n" not in key, out
    return key


def lease_of(key):
    return key.rsplit("/", 1)[1]


def placeholders(text, keys=(), revs=()):
    """text with each key's lease ID replaced by <ID> and each revision by <REV>."""
    for k in keys:
        text = text.replace(lease_of(k), "<ID>")
    for r in revs:
        text = re.sub(rf"\b{r}\b", "<REV>", text)
    return text


# --------------------------------------------------------------------------------------------
# lock


def test_lock_between_two_cairnctl(server, cairnctl):
    with CtlWatch(server.endpoint, "mylock", command="lock", binary=cairnctl) as a:
        key_a = held(a)
        assert re.fullmatch(r"mylock/[0-9a-f]+", key_a), key_a
        lease = server.ctl_ok("lease", "timetolive", lease_of(key_a))
        assert "granted with TTL(10s)" in lease  # --ttl's default
        with CtlWatch(server.endpoint, "mylock", command="lock", binary=cairnctl) as b:
            queue = wait_keys(server, "mylock/", 2)
            assert queue[0] == key_a
            server.ctl_ok("put", "unrelated", "x")
            assert b.out() == ""  # b waits behind a
            assert a.signal(signal.SIGTERM) == 0
            assert a.err() == ""
            key_b = held(b, "the lock after a released it")
            assert key_b == queue[1]
            assert keys_under(server, "mylock/") == [key_b]
            assert b.signal(signal.SIGINT) == 0
            assert b.out() == key_b + "\n\n" and b.err() == ""
    assert keys_under(server, "mylock/") == []


@pytest.mark.parametrize("holder,waiter", [("etcdctl", "cairnctl"), ("cairnctl", "etcdctl")])
def test_lock_with_etcdctl(server, cairnctl, holder, waiter):
    with CtlWatch(server.endpoint, "shared", command="lock",
                  binary=binary(holder, cairnctl)) as a:
        key_a = held(a)
        with CtlWatch(server.endpoint, "shared", command="lock",
                      binary=binary(waiter, cairnctl)) as b:
            queue = wait_keys(server, "shared/", 2)
            assert queue[0] == key_a
            assert b.out() == ""
            assert a.signal(signal.SIGTERM) == 0
            assert held(b, "the lock after the other tool released it") == queue[1]
            assert b.signal(signal.SIGTERM) == 0
    assert keys_under(server, "shared/") == []


def interrupted_waiter(server, tool, cairnctl, command, *args):
    """Runs `tool <command> <args>` behind an etcdctl holder of the same name, interrupts it while
    it waits; returns (exit code, stdout, stderr) and checks the waiter's key went."""
    name = args[0]
    first = ("p0",) if command == "elect" else ()
    with CtlWatch(server.endpoint, name, *first, command=command) as a:
        a.wait_for(lambda t: t.count("\n") >= 2, what="the first holder")
        with CtlWatch(server.endpoint, *args, command=command,
                      binary=binary(tool, cairnctl)) as b:
            queue = wait_keys(server, name + "/", 2)
            rc = b.signal(signal.SIGINT)
            assert keys_under(server, name + "/") == queue[:1]  # the waiter's key is gone
            return rc, b.out(), clean_err(b.err())


@pytest.mark.parametrize("command", ["lock", "elect"])
def test_interrupted_while_waiting_same_as_etcdctl(server, cairnctl, command):
    args = ("waitlock",) if command == "lock" else ("waitelect", "p1")
    e = interrupted_waiter(server, "etcdctl", cairnctl, command, *args)
    c = interrupted_waiter(server, "cairnctl", cairnctl, command, *args)
    assert e == (1, "", "Error: context canceled\n")
    assert c == e


def session_revoked(server, tool, cairnctl, command, *args):
    """Holds (lock) or wins (elect) with tool, then revokes its session's lease from outside;
    returns (exit code, stdout with the lease ID as <ID>, stderr)."""
    with CtlWatch(server.endpoint, *args, command=command, binary=binary(tool, cairnctl)) as w:
        out = w.wait_for(lambda t: t.count("\n") >= 2, what="the lock or leadership")
        key = out.splitlines()[0]
        server.ctl_ok("lease", "revoke", lease_of(key))
        rc = w.proc.wait(90)  # the next keep-alive (a third of the TTL) finds the lease gone
        w.stop()
        return rc, placeholders(w.out(), [key]), clean_err(w.err())


@pytest.mark.parametrize("command,args,error", [
    ("lock", ("revlock",), "session expired"),
    ("elect", ("revelect", "p"), "elect: session expired"),
])
def test_session_revoked_same_as_etcdctl(server, cairnctl, command, args, error):
    # Both tools at once, each on a name of its own (so neither waits behind the other): each waits
    # for its next keep-alive, 20 s for elect's fixed 60 s session, and one after the other doubled it.
    name, rest = args[0], args[1:]
    with ThreadPoolExecutor(2) as pool:
        fe = pool.submit(session_revoked, server, "etcdctl", cairnctl, command, name + "-e", *rest)
        fc = pool.submit(session_revoked, server, "cairnctl", cairnctl, command, name + "-c", *rest)
        e, c = fe.result(), fc.result()
    e = (e[0], e[1].replace(name + "-e/", name + "/"), e[2])
    c = (c[0], c[1].replace(name + "-c/", name + "/"), c[2])
    assert e[1].startswith(name + "/<ID>\n")
    assert e[0] == 1 and e[2] == f"Error: {error}\n"
    assert c == e


# --------------------------------------------------------------------------------------------
# lock with a command


def test_lock_command_sees_the_lock(server, cairnctl):
    """The command runs while the key exists: ETCD_LOCK_KEY is it, ETCD_LOCK_REV its create
    revision (uncontended), stdin is empty; the key is deleted afterwards."""
    script = ('read line; echo "key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV stdin=$line"; '
              '"$0" --endpoints "$1" get "$ETCD_LOCK_KEY" -w fields | grep CreateRevision')
    for tool in TOOLS:
        rc, out, err = run(binary(tool, cairnctl), server.endpoint, "lock", "cmdlock", "--",
                           "sh", "-c", script, ETCDCTL, server.endpoint)
        assert rc == 0, (tool, err)
        m = re.fullmatch(r"key=(cmdlock/[0-9a-f]+) rev=(\d+) stdin=\n"
                         r'"CreateRevision" : (\d+)\n', out.decode())
        assert m and m.group(2) == m.group(3), (tool, out)
        assert keys_under(server, "cmdlock/") == []


COMMANDS = [
    ["--", "sh", "-c", "exit 3"],
    ["--", "sh", "-c", "echo out; echo err >&2"],
    ["true"],
    ["false"],
    ["no-such-command-here"],
    ["/no/such/path"],
    ["--", "sh", "-c", "kill -9 $$"],
    ["--", "sh", "-c", "kill -TERM $$"],
    ["--", "sh", "-c", 'echo "$ETCD_LOCK_KEY"'],  # set by the caller: the caller's value wins
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_lock_command_same_as_etcdctl(server, cairnctl, cmd):
    env = {"ETCD_LOCK_KEY": "from-caller"} if "ETCD_LOCK_KEY" in " ".join(cmd) else None
    e = run(ETCDCTL, server.endpoint, "lock", "cmdlock", *cmd, env_extra=env)
    c = run(cairnctl, server.endpoint, "lock", "cmdlock", *cmd, env_extra=env)
    assert c[0] == e[0], (c, e)
    assert c[1] == e[1]
    assert clean_err(c[2]) == clean_err(e[2])
    assert keys_under(server, "cmdlock/") == []


def test_lock_command_outlives_a_signal(server, cairnctl):
    """SIGTERM while the command runs changes nothing: the command finishes, then the lock is
    released and its exit decides, as in etcdctl."""
    for tool in TOOLS:
        with tempfile.TemporaryDirectory() as d:
            fifo = os.path.join(d, "go")
            os.mkfifo(fifo)
            script = f'echo started; read x < "{fifo}"; echo "done $x"'
            with CtlWatch(server.endpoint, "siglock", "--", "sh", "-c", script, command="lock",
                          binary=binary(tool, cairnctl)) as w:
                w.wait_for(lambda t: t == "started\n", what="the command")
                w.proc.send_signal(signal.SIGTERM)
                with open(fifo, "w") as f:
                    f.write("now\n")
                assert w.proc.wait(30) == 0, (tool, w.err())
                w.stop()
                assert w.out() == "started\ndone now\n" and w.err() == "", tool
        assert keys_under(server, "siglock/") == []


# --------------------------------------------------------------------------------------------
# output formats of the held lock


def normalized_json(text, key):
    obj = json.loads(text)
    for f in ("revision", "raft_term", "member_id", "cluster_id"):
        obj["header"][f] = type(obj["header"][f]).__name__
    kv = obj["kvs"][0]
    assert kv.pop("key") and kv.pop("lease") == int(lease_of(key), 16)
    assert kv["create_revision"] == kv["mod_revision"]
    kv["create_revision"] = kv["mod_revision"] = "rev"
    return obj


@pytest.mark.parametrize("fmt", ["json", "fields", "simple"])
def test_lock_output_formats_same_as_etcdctl(server, cairnctl, fmt):
    outs = []
    for tool in TOOLS:
        with CtlWatch(server.endpoint, "-w", fmt, "fmtlock", command="lock",
                      binary=binary(tool, cairnctl)) as w:
            key = wait_keys(server, "fmtlock/", 1)[0]
            rev = server.ctl_ok("get", key, "-w", "fields")
            rev = re.search(r'"CreateRevision" : (\d+)', rev).group(1)
            out = w.wait_for(lambda t: t.endswith("\n") and (fmt != "fields" or "Count" in t),
                             what=f"the lock in -w {fmt}")
            assert w.signal(signal.SIGTERM) == 0
            if fmt == "json":
                outs.append(normalized_json(out, key))
            else:
                lid = str(int(lease_of(key), 16))
                out = re.sub(r'"(ClusterID|MemberID|RaftTerm)" : \d+', r'"\1" : N', out)
                outs.append(placeholders(out.replace(lid, "<LEASE>"), [key], [rev]))
        wait_keys(server, "fmtlock/", 0)
    assert outs[1] == outs[0]


# --------------------------------------------------------------------------------------------
# elect


def test_elect_candidates_and_observers(server, cairnctl):
    """Two cairnctl candidates and an etcdctl one; a cairnctl and an etcdctl observer (-w json)
    print the same leader changes, byte for byte."""
    def obs(tool):
        return CtlWatch(server.endpoint, "-w", "json", "-l", "myelection", command="elect",
                        binary=binary(tool, cairnctl))

    with obs("cairnctl") as o1, obs("etcdctl") as o2:
        with CtlWatch(server.endpoint, "myelection", "p1", command="elect",
                      binary=cairnctl) as c1:
            out = c1.wait_for(lambda t: t.count("\n") >= 2, what="p1 elected")
            key1, value1 = out.splitlines()
            assert key1.startswith("myelection/") and value1 == "p1"
            for o in (o1, o2):  # both have read (or watched) the first leader before any other
                o.wait_for(lambda t: t.count("\n") == 1, what="the first leader")
            with contextlib.ExitStack() as later:
                # p2 queues second, then p3 third (started once p2's key is there)
                c2 = later.enter_context(CtlWatch(server.endpoint, "myelection", "p2",
                                                  command="elect", binary=cairnctl))
                wait_keys(server, "myelection/", 2)
                c3 = later.enter_context(CtlWatch(server.endpoint, "myelection", "p3",
                                                  command="elect"))
                queue = wait_keys(server, "myelection/", 3)
                assert queue[0] == key1
                assert c2.out() == "" and c3.out() == ""
                assert c1.signal(signal.SIGTERM) == 0  # resigns
                assert c1.err() == ""
                got = c2.wait_for(lambda t: t.count("\n") >= 2, what="p2 elected")
                key2 = queue[1]
                assert got == f"{key2}\np2\n" and c3.out() == ""
                # a new value of the leader's key: the observers print it
                server.ctl_ok("put", key2, "p2 again")
                for o in (o1, o2):
                    o.wait_for(lambda t: t.count("\n") == 3, what="three leader values")
                assert c2.signal(signal.SIGINT) == 0
                got = c3.wait_for(lambda t: t.count("\n") >= 2, what="p3 elected")
                assert got == f"{queue[2]}\np3\n"
                for o in (o1, o2):
                    o.wait_for(lambda t: t.count("\n") == 4, what="four leader values")
        assert o1.signal(signal.SIGTERM) == 0 and o2.signal(signal.SIGTERM) == 0
        assert o1.out() == o2.out()
        values = [json.loads(line)["kvs"][0]["value"] for line in o1.out().splitlines()]
        assert values == ["cDE=", "cDI=", "cDIgYWdhaW4=", "cDM="]  # p1, p2, "p2 again", p3
        assert clean_err(o1.err()) == clean_err(o2.err()) == ""
    assert keys_under(server, "myelection/") == []


def test_elect_observer_before_any_candidate(server, cairnctl):
    """An observer started on an empty election prints the first proposal when it comes."""
    with CtlWatch(server.endpoint, "-w", "json", "-l", "late", command="elect",
                  binary=cairnctl) as o1, \
            CtlWatch(server.endpoint, "-w", "json", "-l", "late", command="elect") as o2:
        # both observers are observing once each has made its session (a lease)
        deadline = time.monotonic() + 30
        while server.ctl_ok("lease", "list").count("\n") < 3:
            assert time.monotonic() < deadline, "the observers' sessions never appeared"
            time.sleep(0.1)
        with CtlWatch(server.endpoint, "late", "first", command="elect") as c:
            c.wait_for(lambda t: t.count("\n") >= 2, what="first elected")
            for o in (o1, o2):
                o.wait_for(lambda t: t.count("\n") == 1, what="the first leader")
        assert o1.signal(signal.SIGINT) == 0 and o2.signal(signal.SIGINT) == 0
        assert o1.out() == o2.out()


# --------------------------------------------------------------------------------------------
# arguments and help

ARG_ERRORS = [
    ["lock"],
    ["lock", "--ttl", "x", "a"],
    ["lock", "--ttl"],
    ["lock", "a", "sh", "-c", "true"],  # -c is a flag to etcdctl too
    ["lock", "--bogus", "a"],
    ["elect"],
    ["elect", "a"],
    ["elect", "-l"],
    ["elect", "-l", "a", "b"],
    ["elect", "a", "b", "c"],
    ["elect", "--listen=maybe", "a"],
]


@pytest.mark.parametrize("args", ARG_ERRORS, ids=[" ".join(a) for a in ARG_ERRORS])
def test_argument_errors_same_as_etcdctl(server, cairnctl, args):
    e = run(ETCDCTL, server.endpoint, *args)
    c = run(cairnctl, server.endpoint, *args)
    assert_same_run(c, e, f"{' '.join(args)} on {server.kind}")


@pytest.mark.parametrize("command", ["lock", "elect"])
def test_help_same_as_etcdctl(cairnctl, command):
    ours = run(cairnctl, "", command, "--help", globals_=False)
    theirs = run(ETCDCTL, "", command, "--help", globals_=False)
    assert ours[0] == theirs[0] == 0
    assert help_flags(ours[1].decode()) == help_flags(theirs[1].decode())
    assert ours[1].split(b"GLOBAL OPTIONS")[0].replace(b"cairnctl", b"etcdctl") == \
        theirs[1].split(b"GLOBAL OPTIONS")[0]
    rc, out, _ = run(cairnctl, "", "--help", globals_=False)
    assert rc == 0 and f"\t{command}\t".encode() in out
