"""cairnctl watch against etcdctl 3.4 watch — both watching the same server at once must print the
same bytes.

Every test that takes `server` runs against etcd 3.4 and against cairnd. etcdctl and cairnctl
watch side by side (the same arguments, the same server, the same writes), so the headers in -w
json and -w fields are equal too. A watch runs until it is stopped, so each watcher's output is
read until a known last event has been printed, then the watcher is stopped and the outputs are
compared. Watches "from now" first see probe writes (as many as it takes until both print one),
and only what follows the last probe is compared. Every watcher process is stopped (and reaped)
at the end of its test, passed or failed.
"""

import base64
import subprocess
import threading
import time

import pytest

from conftest import ETCDCTL, clean_env
from test_cairnctl import DIAL, assert_same_run, clean_err, help_flags

WAIT = 60  # seconds a watcher may take to print what it must (a hang fails instead of blocking)


class Watcher:
    """etcdctl or cairnctl watching in the background; its stdout and stderr are collected."""

    def __init__(self, binary, endpoint, *args, stdin=False, globals_=()):
        self.cmd = [binary, "--endpoints", endpoint, *DIAL, *globals_, *args]
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=clean_env(ETCDCTL_API="3"), start_new_session=True)
        self.out = bytearray()
        self.err = bytearray()
        self.lock = threading.Lock()
        self.readers = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.out),
                                         daemon=True),
                        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err),
                                         daemon=True)]
        for r in self.readers:
            r.start()

    def _pump(self, f, buf):
        while True:
            b = f.read1(65536)
            if not b:
                return
            with self.lock:
                buf.extend(b)

    def stdout(self):
        with self.lock:
            return bytes(self.out)

    def stderr(self):
        with self.lock:
            return self.err.decode(errors="replace")

    def wait_for(self, pred, what):
        """Waits until pred(stdout) holds; fails with what was printed if it never does."""
        deadline = time.monotonic() + WAIT
        while not pred(self.stdout()):
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the readers take the rest
                if pred(self.stdout()):
                    return
                pytest.fail(f"{self.cmd[0]} exited {self.proc.returncode} before {what}: "
                            f"{self.stdout()!r} {self.stderr()!r}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.cmd[0]} never printed {what}: {self.stdout()!r} "
                            f"{self.stderr()!r}")
            time.sleep(0.02)

    def send(self, line):
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()

    def finish(self, timeout=WAIT):
        """Closes stdin and waits for the exit; returns the exit code."""
        self.proc.stdin.close()
        rc = self.proc.wait(timeout)
        for r in self.readers:
            r.join(10)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f:
                try:
                    f.close()
                except OSError:
                    pass


@pytest.fixture
def watchers():
    """Starts Watchers; every one is stopped afterwards, whatever the test did."""
    started = []

    def make(*a, **kw):
        w = Watcher(*a, **kw)
        started.append(w)
        return w

    try:
        yield make
    finally:
        for w in started:
            w.stop()


def setup_history(server):
    """The same history on any fresh server (revision 1 → 8); the last event puts k1=the-end."""
    for args in (["put", "k1", "v1"], ["put", "k2", 'a "b"\tc'], ["put", "k3", "3"],
                 ["put", "dir/a", "é\x01"], ["del", "k2"], ["put", "k2", "again"],
                 ["put", "k1", "the-end"]):
        server.ctl_ok(*args)


def printed(marker, fmt, hex_=False):
    """Whether an output holds the event that puts value marker, completely."""
    if hex_:
        marker = "".join(f"\\x{b:02x}" for b in marker.encode())
    if fmt == "json":
        needle = base64.b64encode(marker.encode())
    elif fmt == "protobuf":
        needle = marker.encode()
        return lambda out: needle in out
    else:
        needle = marker.encode()
    return lambda out: needle in out and out.endswith(b"\n")


def assert_same_output(e, c, what):
    eo, co = e.stdout(), c.stdout()
    assert co == eo, f"stdout of {what}:\ncairnctl {co!r}\netcdctl  {eo!r}"


# --------------------------------------------------------------------------------------------
# history: --rev, with the options and formats

HISTORY = [
    (["watch", "--rev", "2", "k1"], "simple"),
    (["watch", "--rev", "2", "--prefix", "k"], "simple"),
    (["watch", "--rev", "2", "--prefix", "k"], "json"),
    (["watch", "--rev", "2", "--prefix", "k"], "fields"),
    (["watch", "--rev", "2", "--prefix", "k"], "protobuf"),
    (["watch", "--rev", "3", "k", "k3"], "simple"),
    (["watch", "--rev", "2", "--prev-kv", "--prefix", ""], "simple"),
    (["watch", "--rev", "2", "--prev-kv", "--prefix", ""], "json"),
    (["watch", "--prev-kv", "--prefix", "--rev", "4", "", "-w", "fields"], "fields"),
    (["--hex", "watch", "--rev", "2", "--prefix", ""], "simple"),
    (["watch", "k1", "--rev=5"], "simple"),
]


@pytest.mark.parametrize("args,fmt", HISTORY, ids=[" ".join(a) + f" -w {f}" for a, f in HISTORY])
def test_watch_history_same_output(server, cairnctl, watchers, args, fmt):
    setup_history(server)
    g = ["-w", fmt]
    e = watchers(ETCDCTL, server.endpoint, *args, globals_=g)
    c = watchers(cairnctl, server.endpoint, *args, globals_=g)
    done = printed("the-end", fmt, hex_="--hex" in args)
    e.wait_for(done, "the last event")
    c.wait_for(done, "the last event")
    assert_same_output(e, c, f"{args} -w {fmt} on {server.kind}")
    assert c.proc.poll() is None, "the watch ended by itself"


# --------------------------------------------------------------------------------------------
# live events: a watch from now

PROBE = "live/probe"


def sync_probes(server, ws, fmt):
    """Puts PROBE until every watcher has printed one."""
    needle = base64.b64encode(PROBE.encode()) if fmt == "json" else PROBE.encode()
    deadline = time.monotonic() + WAIT
    n = 0
    while not all(needle in w.stdout() for w in ws):
        assert time.monotonic() < deadline, [w.stdout() for w in ws]
        server.ctl_ok("put", PROBE, f"p{n}")
        n += 1
        time.sleep(0.05)


def after_probes(out, fmt, prev_kv):
    """The output after the last probe event."""
    lines = out.split(b"\n")
    if fmt == "json":
        needle = base64.b64encode(PROBE.encode())
        last = max(i for i, line in enumerate(lines) if needle in line)
        return b"\n".join(lines[last + 1:])
    last = max(i for i, line in enumerate(lines) if line == PROBE.encode())
    return b"\n".join(lines[last + 2:])


LIVE = [
    (["watch", "--prefix", "live/"], "simple"),
    (["watch", "--prefix", "live/"], "json"),
    (["watch", "--prefix", "--prev-kv", "live/"], "simple"),
    (["watch", "--prev-kv", "live/", "live0"], "json"),
]


@pytest.mark.parametrize("args,fmt", LIVE, ids=[" ".join(a) + f" -w {f}" for a, f in LIVE])
def test_watch_live_same_output(server, cairnctl, watchers, args, fmt):
    server.ctl_ok("put", "live/a", "before")
    g = ["-w", fmt]
    e = watchers(ETCDCTL, server.endpoint, *args, globals_=g)
    c = watchers(cairnctl, server.endpoint, *args, globals_=g)
    sync_probes(server, [e, c], fmt)
    server.ctl_ok("put", "live/a", "1")
    server.ctl_ok("put", "other", "x")
    server.ctl_ok("put", "live/b", "tab\there")
    server.ctl_ok("del", "live/a")
    server.ctl_ok("txn", input="\n\nput live/c 3\nput live/d 4\n\n")
    server.ctl_ok("put", "live/z", "the-end")
    done = printed("the-end", fmt)
    e.wait_for(done, "the last event")
    c.wait_for(done, "the last event")
    prev = "--prev-kv" in args
    eo, co = after_probes(e.stdout(), fmt, prev), after_probes(c.stdout(), fmt, prev)
    assert co == eo, f"stdout of {args} -w {fmt} on {server.kind}:\n{co!r}\n{eo!r}"
    assert b"the-end" in eo or base64.b64encode(b"the-end") in eo


# --------------------------------------------------------------------------------------------
# a watch the server cancels, argument errors: the command ends

def run(binary, endpoint, *args, timeout=WAIT):
    p = subprocess.run([binary, "--endpoints", endpoint, *DIAL, *args], stdin=subprocess.DEVNULL,
                       capture_output=True, env=clean_env(ETCDCTL_API="3"), timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


ENDING = [
    ["watch", "--rev", "2", "k1"],  # compacted: "watch was canceled (...)", exit 5
    ["-w", "json", "watch", "--rev", "2", "--prefix", "k"],
    ["watch"],
    ["watch", "--prefix"],
    ["watch", "a", "b", "--prefix"],
    ["watch", "k1", "--"],
    ["watch", "--rev", "x", "k1"],
    ["watch", "--bogus", "k1"],
    ["-w", "table", "watch", "--rev", "5", "k1"],
]


@pytest.mark.parametrize("args", ENDING, ids=[" ".join(a) for a in ENDING])
def test_watch_that_ends_same_output(server, cairnctl, args):
    setup_history(server)
    server.ctl_ok("compaction", "4")
    e = run(ETCDCTL, server.endpoint, *args)
    c = run(cairnctl, server.endpoint, *args)
    assert_same_run(c, e, f"{' '.join(args)} on {server.kind}")


def test_watch_help(cairnctl):
    ours = run(cairnctl, "", "watch", "--help")
    theirs = run(ETCDCTL, "", "watch", "--help")
    assert ours[0] == theirs[0] == 0
    assert help_flags(ours[1].decode()) == help_flags(theirs[1].decode())
    assert ours[1].split(b"GLOBAL OPTIONS")[0].replace(b"cairnctl", b"etcdctl") == \
        theirs[1].split(b"GLOBAL OPTIONS")[0]


# --------------------------------------------------------------------------------------------
# -i: watch lines from stdin

def test_watch_interactive_same_output(server, cairnctl, watchers):
    setup_history(server)
    ws = [watchers(b, server.endpoint, "watch", "-i", stdin=True) for b in (ETCDCTL, cairnctl)]
    steps = [
        ("watch --rev 2 k1\n", lambda o: o.endswith(b"k1\nthe-end\n")),
        ("bogus line\n", None),
        ("\n", None),
        ("watch\n", None),
        ("watch a b --prefix\n", None),
        ("watch --prefix --prev-kv --rev 2 dir/\n", lambda o: o.count("é\x01".encode()) == 1),
        ("watch --rev 8 k3\n", None),
    ]
    for line, done in steps:
        for w in ws:
            w.send(line)
            if done:
                w.wait_for(done, f"the output of {line!r}")
    server.ctl_ok("put", "k3", "live")
    for w in ws:
        w.wait_for(lambda o: o.endswith(b"k3\nlive\n"), "the live event")
    for w in ws:
        w.send("progress\n")
    for w in ws:  # one notification per watch, all at the same revision
        w.wait_for(lambda o: o.count(b"progress notify: ") == 3, "the progress notifications")
    rcs = [w.finish() for w in ws]
    assert rcs[1] == rcs[0] == 3
    assert ws[1].stdout() == ws[0].stdout(), (ws[1].stdout(), ws[0].stdout())
    err = [clean_err(w.stderr()) for w in ws]
    assert err[1] == err[0], err
    assert err[0].endswith("Error: Error reading watch request line: EOF\n")


# --------------------------------------------------------------------------------------------
# watch key -- command: ETCD_WATCH_* per event

def test_watch_exec_same_output(server, cairnctl, watchers):
    setup_history(server)
    cmd = ['sh', '-c', 'echo "[$ETCD_WATCH_REVISION][$ETCD_WATCH_EVENT_TYPE][$ETCD_WATCH_KEY]'
           '[$ETCD_WATCH_VALUE]"']
    args = ["watch", "--rev", "2", "--prefix", "k", "--", *cmd]
    e = watchers(ETCDCTL, server.endpoint, *args)
    c = watchers(cairnctl, server.endpoint, *args)
    done = lambda o: o.endswith(b'["the-end"]\n')  # noqa: E731
    e.wait_for(done, "the last command's output")
    c.wait_for(done, "the last command's output")
    assert_same_output(e, c, f"{args} on {server.kind}")


# --------------------------------------------------------------------------------------------
# the server restarts under the watch: it resumes, no event twice, none missed

def test_watch_resumes_across_restart(server, cairnctl, watchers):
    server.ctl_ok("put", "r/0", "before")
    e = watchers(ETCDCTL, server.endpoint, "watch", "--prefix", "r/")
    c = watchers(cairnctl, server.endpoint, "watch", "--prefix", "r/")
    n = 0
    while not all(b"r/sync" in w.stdout() for w in (e, c)):
        server.ctl_ok("put", "r/sync", f"s{n}")
        n += 1
        time.sleep(0.05)
        assert n < WAIT * 20
    server.ctl_ok("put", "r/1", "one")
    for w in (e, c):
        w.wait_for(lambda o: o.endswith(b"r/1\none\n"), "r/1")
    server.terminate()
    server.restart()
    server.ctl_ok("put", "r/2", "two")
    server.ctl_ok("put", "r/3", "three")
    for w in (e, c):
        w.wait_for(lambda o: o.endswith(b"r/3\nthree\n"), "r/3 after the restart")
    eo, co = e.stdout(), c.stdout()
    tail = b"PUT\nr/1\none\nPUT\nr/2\ntwo\nPUT\nr/3\nthree\n"
    assert co.endswith(tail), co
    assert co.count(b"r/2\ntwo\n") == 1 and co.count(b"r/1\none\n") == 1
    cut = lambda o: o[o.rindex(b"r/sync\n"):]  # noqa: E731  (how many syncs each saw differs)
    assert cut(co) == cut(eo)
    assert c.proc.poll() is None and e.proc.poll() is None
