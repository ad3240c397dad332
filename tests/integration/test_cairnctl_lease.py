"""cairnctl's lease commands against etcdctl 3.4's — on the same server, the same output.

Every test that takes `server` runs against etcd 3.4 and against cairnd. Commands that only read
(timetolive, list, keep-alive --once of a lease granted before) run etcdctl and cairnctl on the
same lease one after the other and compare exit code, stdout and stderr; only the remaining TTL,
which can tick between the two runs, is normalized. Grants and revokes make a lease per tool, so
the outputs are compared with each tool's lease ID replaced by a placeholder. The keep-alive loop
runs as a child process of the test, killed at the end whatever happens.
"""

import re
import subprocess
import threading
import time

import pytest

from conftest import ETCDCTL, clean_env, free_port

DIAL = ["--dial-timeout", "5s", "--command-timeout", "15s"]
FORMATS = ["simple", "json", "fields", "protobuf", "table"]
WAIT = 60  # seconds: a deadline for things that must happen, never a measure of speed


def run(binary, endpoint, *args, timeout=WAIT):
    """Runs etcdctl (API v3) or cairnctl; returns (rc, stdout bytes, stderr text)."""
    env = clean_env(ETCDCTL_API="3")
    cmd = [binary, "--endpoints", endpoint, *DIAL, *args]
    p = subprocess.run(cmd, input=b"", capture_output=True, env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def clean_err(text):
    """stderr without etcd client's JSON log lines, with the program's name made one."""
    lines = [line for line in text.splitlines(keepends=True)
             if not line.startswith('{"level":')]
    return "".join(lines).replace("etcdctl", "cairnctl")


REMAINING = [
    (rb"remaining\(\d+s\)", b"remaining(Ns)"),
    (rb'"ttl":\d+,"granted-ttl"', b'"ttl":N,"granted-ttl"'),
    (rb'"TTL" : \d+\n"GrantedTTL"', b'"TTL" : N\n"GrantedTTL"'),
]


def normalize_remaining(out):
    for pat, rep in REMAINING:
        out = re.sub(pat, rep, out)
    return out


def assert_same(server, cairnctl, *args, normalize=lambda b: b):
    """etcdctl and cairnctl on one server: the same exit code, stdout and stderr."""
    e = run(ETCDCTL, server.endpoint, *args)
    c = run(cairnctl, server.endpoint, *args)
    what = f"{' '.join(args)} on {server.kind}"
    assert c[0] == e[0], f"exit code of {what}: cairnctl {c[0]}, etcdctl {e[0]}; {c[2]!r}"
    assert normalize(c[1]) == normalize(e[1]), \
        f"stdout of {what}:\ncairnctl {c[1]!r}\netcdctl  {e[1]!r}"
    assert clean_err(c[2]) == clean_err(e[2]), f"stderr of {what}: {c[2]!r} vs {e[2]!r}"
    return c


def grant(server, ttl):
    """A lease granted by etcdctl; returns its ID in hex."""
    out = server.ctl_ok("lease", "grant", str(ttl))
    m = re.fullmatch(r"lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n", out)
    assert m, out
    return m.group(1)


def with_placeholder(out, hex_id):
    """out with a lease ID (hex, and decimal as JSON and fields print it) replaced by "ID"."""
    dec = str(int(hex_id, 16)).encode()
    return out.replace(hex_id.encode(), b"<ID>").replace(dec, b"<ID>")


# --------------------------------------------------------------------------------------------
# reads: the same lease through both tools


@pytest.mark.parametrize("fmt", FORMATS)
def test_lease_reads_same_output(server, cairnctl, fmt):
    lid = grant(server, 300)
    server.ctl_ok("put", "--lease=" + lid, "lk", "v")
    w = ["-w", fmt]
    out = assert_same(server, cairnctl, *w, "lease", "timetolive", lid,
                      normalize=normalize_remaining)
    if fmt == "simple":
        m = re.fullmatch(rb"lease [0-9a-f]{16} granted with TTL\(300s\), remaining\((\d+)s\)\n",
                         out[1])
        assert m and 0 < int(m.group(1)) <= 300, out
    assert_same(server, cairnctl, *w, "lease", "timetolive", "--keys", lid,
                normalize=normalize_remaining)
    assert_same(server, cairnctl, *w, "lease", "list")
    out = assert_same(server, cairnctl, *w, "lease", "keep-alive", "--once", lid)
    if fmt == "simple":
        assert out[1] == f"lease {lid} keepalived with TTL(300)\n".encode()
    # a lease that does not exist
    assert_same(server, cairnctl, *w, "lease", "timetolive", "1234")
    assert_same(server, cairnctl, *w, "lease", "keep-alive", "--once", "1234")
    assert_same(server, cairnctl, *w, "lease", "keep-alive", "1234")
    assert_same(server, cairnctl, *w, "lease", "revoke", "1234")


def test_lease_list_empty_and_several(server, cairnctl):
    for fmt in ("simple", "json", "fields", "protobuf"):
        assert_same(server, cairnctl, "-w", fmt, "lease", "list")
    ids = {grant(server, 100) for _ in range(3)}
    rc, out, err = run(cairnctl, server.endpoint, "lease", "list")
    assert rc == 0, err
    lines = out.decode().splitlines()
    assert lines[0] == "found 3 leases"
    assert set(lines[1:]) == ids
    e = run(ETCDCTL, server.endpoint, "lease", "list")
    assert sorted(e[1].decode().splitlines()) == sorted(lines)


BAD_ARGS = [
    ["lease", "grant"],
    ["lease", "grant", "x"],
    ["lease", "grant", "1", "2"],
    ["lease", "revoke"],
    ["lease", "revoke", "zz"],
    ["lease", "timetolive"],
    ["lease", "timetolive", "1g"],
    ["lease", "keep-alive"],
    ["lease", "keep-alive", "--once", "xyz"],
    ["put", "--lease=zz", "a", "b"],
    ["put", "--lease=1234", "a", "b"],
]


@pytest.mark.parametrize("args", BAD_ARGS, ids=[" ".join(a) for a in BAD_ARGS])
def test_lease_errors_same_output(server, cairnctl, args):
    assert_same(server, cairnctl, *args)


# --------------------------------------------------------------------------------------------
# writes: a lease per tool, compared with its ID replaced


def id_from(fmt, out):
    """The lease ID (hex) in a grant's output, or None where the format has none (protobuf)."""
    text = out.decode(errors="replace")
    if fmt == "simple":
        return re.match(r"lease ([0-9a-f]{16}) ", text).group(1)
    if fmt == "json":
        return "%016x" % int(re.search(r'"ID":(\d+)', text).group(1))
    if fmt == "fields":
        return "%016x" % int(re.search(r'"ID" : (\d+)', text).group(1))
    return None


@pytest.mark.parametrize("fmt", FORMATS)
def test_lease_grant_revoke_same_shape(server, cairnctl, fmt):
    w = ["-w", fmt]
    e = run(ETCDCTL, server.endpoint, *w, "lease", "grant", "120")
    c = run(cairnctl, server.endpoint, *w, "lease", "grant", "120")
    assert c[0] == e[0], (c, e)
    assert clean_err(c[2]) == clean_err(e[2])
    if fmt == "table":
        # the lease was granted before the printer refused: both are listed
        assert c[1] == e[1] == b""
        rc, out, _ = run(cairnctl, server.endpoint, "lease", "list")
        assert out.startswith(b"found 2 leases\n")
        return
    e_id, c_id = id_from(fmt, e[1]), id_from(fmt, c[1])
    if fmt == "protobuf":
        assert c[1] == e[1]  # only the header: the IDs are not printed
        ids = run(ETCDCTL, server.endpoint, "lease", "list")[1].decode().split()[3:]
        assert len(ids) == 2
        e_id, c_id = ids
    else:
        assert e_id != c_id
        assert with_placeholder(c[1], c_id) == with_placeholder(e[1], e_id)
    # the lease cairnctl granted is one etcdctl sees, and the other way round
    for lid in (e_id, c_id):
        rc, out, _ = run(ETCDCTL, server.endpoint, "lease", "timetolive", lid)
        assert rc == 0 and b"granted with TTL(120s)" in out, out
    # revoke: each tool its own lease
    e = run(ETCDCTL, server.endpoint, *w, "lease", "revoke", e_id)
    c = run(cairnctl, server.endpoint, *w, "lease", "revoke", c_id)
    assert c[0] == e[0], (c, e)
    assert with_placeholder(c[1], c_id) == with_placeholder(e[1], e_id)
    assert clean_err(c[2]) == clean_err(e[2])
    for lid in (e_id, c_id):  # revoked even where the printer refused (protobuf)
        out = run(ETCDCTL, server.endpoint, "lease", "timetolive", lid)[1]
        assert out == f"lease {lid} already expired\n".encode()


def test_put_with_lease(server, cairnctl):
    rc, out, err = run(cairnctl, server.endpoint, "lease", "grant", "100")
    assert rc == 0, err
    lid = re.match(rb"lease ([0-9a-f]{16}) granted", out).group(1).decode()
    assert run(cairnctl, server.endpoint, "put", "--lease=" + lid, "pk", "pv")[:2] == (0, b"OK\n")
    rc, out, _ = run(ETCDCTL, server.endpoint, "-w", "fields", "get", "pk")
    assert f'"Lease" : {int(lid, 16)}\n'.encode() in out, out
    assert_same(server, cairnctl, "lease", "timetolive", "--keys", lid,
                normalize=normalize_remaining)
    # revoking the lease deletes the key
    assert run(cairnctl, server.endpoint, "lease", "revoke", lid)[:2] == \
        (0, f"lease {lid} revoked\n".encode())
    assert run(ETCDCTL, server.endpoint, "get", "pk")[1] == b""
    assert_same(server, cairnctl, "put", "--lease=" + lid, "pk", "pv")


# --------------------------------------------------------------------------------------------
# keep-alive: the loop


class Proc:
    """A child process whose stdout and stderr are collected by threads; killed by stop()."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=clean_env(ETCDCTL_API="3"))
        self.out, self.err = bytearray(), bytearray()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._pump, args=(f, b), daemon=True)
                        for f, b in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self.threads:
            t.start()

    def _pump(self, f, buf):
        for chunk in iter(lambda: f.read1(65536), b""):
            with self.lock:
                buf.extend(chunk)

    def lines(self):
        with self.lock:
            return bytes(self.out).decode(errors="replace").splitlines(keepends=True)

    def wait_for(self, pred, what):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if pred(self.lines()):
                return self.lines()
            if self.p.poll() is not None:
                for t in self.threads:
                    t.join(5)
                if pred(self.lines()):
                    return self.lines()
                break
            time.sleep(0.05)
        raise AssertionError(f"{what}: never happened; out {bytes(self.out)!r} "
                             f"err {bytes(self.err)!r}")

    def finish(self):
        rc = self.p.wait(WAIT)
        for t in self.threads:
            t.join(5)
        return rc

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for t in self.threads:
            t.join(5)
        self.p.stdout.close()
        self.p.stderr.close()


@pytest.fixture
def procs():
    started = []

    def make(cmd):
        p = Proc(cmd)
        started.append(p)
        return p

    try:
        yield make
    finally:
        for p in started:
            p.stop()


@pytest.mark.parametrize("fmt", ["simple", "json"])
def test_keepalive_loop_same_output(server, cairnctl, procs, fmt):
    """Both tools keep a short lease alive past several TTLs, printing each renewal, and stop
    when it is revoked: simple prints "expired or revoked" then, and both exit 0."""
    lid = grant(server, 3)
    ttl = int(re.search(r"TTL\((\d+)s\)", server.ctl_ok("lease", "timetolive", lid)).group(1))
    tools = {}
    for name, binary in (("etcdctl", ETCDCTL), ("cairnctl", cairnctl)):
        tools[name] = procs([binary, "--endpoints", server.endpoint, *DIAL, "-w", fmt,
                             "lease", "keep-alive", lid])
    for name, p in tools.items():
        # renewals every TTL/3: after 3 * 3 + 1 of them the lease has outlived 3 TTLs
        p.wait_for(lambda ls: len(ls) >= 10, f"{name}'s keep-alives")
    rc, out, _ = run(ETCDCTL, server.endpoint, "lease", "timetolive", lid)
    assert rc == 0 and b"remaining(" in out, out  # still alive
    server.ctl_ok("lease", "revoke", lid)
    outs = {}
    for name, p in tools.items():
        assert p.finish() == 0, (name, bytes(p.err))
        outs[name] = p.lines()
    for name, lines in outs.items():
        body = lines[:-1] if fmt == "simple" else lines
        if fmt == "simple":
            assert lines[-1] == f"lease {lid} expired or revoked.\n", (name, lines[-1])
            assert set(body) == {f"lease {lid} keepalived with TTL({ttl})\n"}, (name, body)
        else:
            shapes = {re.sub(r'"revision":\d+,', '"revision":R,', ln) for ln in body}
            assert len(shapes) == 1, (name, shapes)
            outs[name] = shapes
    if fmt == "json":
        assert outs["cairnctl"] == outs["etcdctl"]


def test_keepalive_on_another_endpoint(server, cairnctl, procs):
    """cairnctl's keep-alive with a dead endpoint first: it reaches the live one and goes on."""
    lid = grant(server, 30)
    dead = f"127.0.0.1:{free_port()}"
    p = procs([cairnctl, "--endpoints", f"{dead},{server.endpoint}", *DIAL,
               "lease", "keep-alive", lid])
    p.wait_for(lambda ls: len(ls) >= 1, "the first keep-alive")
    assert p.lines()[0] == f"lease {lid} keepalived with TTL(30)\n"
    server.ctl_ok("lease", "revoke", lid)
    assert p.finish() == 0
    assert p.lines()[-1] == f"lease {lid} expired or revoked.\n"


def test_keepalive_survives_server_restart(server, cairnctl, procs):
    """The server restarts under a running keep-alive: the stream is opened again, the renewals
    go on and the lease lives."""
    lid = grant(server, 20)
    p = procs([cairnctl, "--endpoints", server.endpoint, *DIAL, "lease", "keep-alive", lid])
    p.wait_for(lambda ls: len(ls) >= 1, "the first keep-alive")
    server.terminate()
    server.restart()
    n = len(p.lines())
    p.wait_for(lambda ls: len(ls) >= n + 2, "keep-alives after the restart")
    assert all(ln == f"lease {lid} keepalived with TTL(20)\n" for ln in p.lines())
    rc, out, _ = run(ETCDCTL, server.endpoint, "lease", "timetolive", lid)
    assert rc == 0 and b"granted with TTL(20s)" in out, out
    server.ctl_ok("lease", "revoke", lid)
    assert p.finish() == 0
    assert p.lines()[-1] == f"lease {lid} expired or revoked.\n"


def test_lease_help(cairnctl):
    rc, out, _ = run(cairnctl, "127.0.0.1:1", "lease", "--help")
    assert rc == 0
    text = out.decode()
    for sub in ("grant", "revoke", "timetolive", "list", "keep-alive"):
        assert sub in text
