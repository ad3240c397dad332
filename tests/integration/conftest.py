"""Fixtures of cairn's integration tests: a real etcd 3.4 server and the store_replay tool.

Both run as child processes in their own temporary directories, which are removed, and the
processes ended, when the test ends, whether it passed or not. A test is skipped (with the reason)
only when etcd or the tool is not there; any other trouble starting them is a failure.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ETCD = "/usr/bin/etcd"  # Debian's etcd-server, 3.4


def build_dir():
    """$BUILD_DIR (default "build"), relative to the repository root unless absolute."""
    d = Path(os.environ.get("BUILD_DIR", "build"))
    return d if d.is_absolute() else REPO / d


def sanitized():
    """Whether cairnd is the ASan + UBSan build (SANITIZE=1 make test uses build/san)."""
    return build_dir().name == "san"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc, timeout=10):
    """Ends a child process (SIGTERM, then SIGKILL) and reaps it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Etcd:
    """A single-member etcd server on 127.0.0.1 with random free client and peer ports."""

    def __init__(self):
        import etcd3  # python3-etcd3: its client and generated gRPC stubs

        self.dir = tempfile.mkdtemp(prefix="cairn-etcd-")
        self.proc = None
        self.client = None
        self.log_path = os.path.join(self.dir, "etcd.log")
        self.port = None
        try:
            # A port found free can be taken before etcd binds it: retry with new ones.
            for _ in range(3):
                if self._start(etcd3):
                    break
            else:
                raise RuntimeError("etcd did not start:\n" + self.log_tail())
        except BaseException:
            self.close()
            raise

    def _start(self, etcd3):
        self.port, peer = free_port(), free_port()
        client_url = f"http://127.0.0.1:{self.port}"
        peer_url = f"http://127.0.0.1:{peer}"
        data_dir = os.path.join(self.dir, f"data-{self.port}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [ETCD, "--name", "cairn-test", "--data-dir", data_dir,
                 "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                 "--initial-cluster", f"cairn-test={peer_url}",
                 "--initial-cluster-state", "new", "--logger", "zap", "--log-level", "warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                start_new_session=True)
        deadline = time.monotonic() + 20
        # Wait for the client port first: a gRPC channel that found nothing there backs off for
        # seconds before it tries again.
        while not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stop(self.proc)
                return False
            time.sleep(0.05)
        self.client = etcd3.client("127.0.0.1", self.port, timeout=10)
        self.kv = self.client.kvstub
        self.maintenance = self.client.maintenancestub
        self.rpc = etcd3.etcdrpc
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.client.close()
                self.client = None
                return False
            try:
                self.maintenance.Status(self.rpc.StatusRequest(), timeout=1)
                # Status answers before the member has elected itself; a read needs a leader.
                self.kv.Range(self.rpc.RangeRequest(key=b"\0"), timeout=1)
                return True
            except Exception:
                time.sleep(0.1)
        stop(self.proc)
        self.client.close()
        self.client = None
        return False

    def _listening(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def log_tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def close(self):
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.proc is not None:
            stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class Replay:
    """tests/tools/store_replay on a fresh store: cmd(line) runs one command.

    Returns the parsed JSON object of an "ok" answer, or {"err": text} for an "err" answer."""

    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="cairn-replay-")
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen(
            [str(binary), os.path.join(self.dir, "store")], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, encoding="ascii", bufsize=1)

    def cmd(self, line):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
        except BrokenPipeError:
            answer = ""
        if not answer:
            self.proc.wait(5)
            self.stderr.seek(0)
            raise RuntimeError(f"store_replay died (exit {self.proc.returncode}) on {line!r}: "
                               f"{self.stderr.read()}")
        answer = answer.rstrip("\n")
        if answer.startswith("ok "):
            return json.loads(answer[3:])
        if answer.startswith("err "):
            return {"err": answer[4:]}
        raise RuntimeError(f"store_replay: unexpected answer {answer!r} to {line!r}")

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def etcd():
    """A fresh etcd 3.4 server (at revision 1), killed and removed afterwards."""
    if not os.access(ETCD, os.X_OK):
        pytest.skip(f"etcd 3.4 server not installed ({ETCD}; Debian package etcd-server)")
    try:
        import etcd3  # noqa: F401
    except ImportError:
        pytest.skip("python3-etcd3 is not installed for this interpreter")
    server = Etcd()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def replay():
    """store_replay on a fresh store in a temporary directory, removed afterwards."""
    binary = build_dir() / "tests" / "tools" / "store_replay"
    if not os.access(binary, os.X_OK):
        pytest.skip(f"{binary} is not built (make {binary})")
    r = Replay(binary)
    try:
        yield r
    finally:
        r.close()


# ============================================================================================
# One server, either kind: real etcd 3.4 (the reference) or cairnd — the `server` fixture.
#
# Every behavioural test that takes `server` runs twice, once per kind, with the same
# assertions: the etcd run proves the expectation right, the cairnd run checks cairn against it.

ETCDCTL = "/usr/bin/etcdctl"  # Debian's etcd-client, 3.4
SERVER_KINDS = ["etcd", "cairnd"]
CLUSTER_TOKEN = "cairn-test"
MEMBER_NAME = "cairn-test"
READY_LINE = "ready to serve client requests"


def cairnd_binary():
    return build_dir() / "cairnd"


def require_kind(kind):
    """Skips the test (with the reason) when a server of this kind cannot be run here."""
    if kind == "etcd":
        if not os.access(ETCD, os.X_OK):
            pytest.skip(f"etcd 3.4 server not installed ({ETCD}; Debian package etcd-server)")
    else:
        b = cairnd_binary()
        if not os.access(b, os.X_OK):
            pytest.skip(f"cairnd not built yet ({b}; set BUILD_DIR or build it)")
    try:
        import etcd3  # noqa: F401
    except ImportError:
        pytest.skip("python3-etcd3 is not installed for this interpreter")


@contextlib.contextmanager
def cluster_factory(request, kind="cairnd", monkeypatch=None):
    """make(n, extra_args=()) for a fixture: starts an n-member cluster of kind through
    cluster.py and waits until every member is ready. For "etcd" (monkeypatch required) the
    helper runs /usr/bin/etcd in place of cairnd — the flags it gives are etcd's — which proves
    the expectations. Every process is ended and every directory removed afterwards; a failed
    test prints each member's log."""
    require_kind(kind)
    import cluster

    if kind == "etcd":
        monkeypatch.setattr(cluster, "cairnd_binary", lambda: Path(ETCD))
    made = []

    def make(n, extra_args=()):
        c = cluster.Cluster(n, extra_args)
        made.append(c)
        return c.start()

    try:
        yield make
    finally:
        for c in made:
            if getattr(request.node, "rep_call_failed", False):
                print(c.log_tails())
            c.close()


def clean_env(**extra):
    """The environment for a child: without ETCD*/ETCDCTL*/CAIRN* variables of the caller."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ETCD", "CAIRN"))}
    env.update(extra)
    return env


def etcdctl(endpoint, *args, input=None, timeout=30, env_extra=None):
    """Runs etcdctl (API v3) against endpoint. Returns (rc, stdout, stderr) as text."""
    env = clean_env(ETCDCTL_API="3", **(env_extra or {}))
    cmd = [ETCDCTL, "--endpoints", endpoint, "--dial-timeout", "5s",
           "--command-timeout", "15s", *args]
    p = subprocess.run(cmd, input=input, capture_output=True, text=True, env=env,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def port_listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Server:
    """A single-member server of one kind on 127.0.0.1 with free client and peer ports and a
    temporary data dir.

    .kind ("etcd"/"cairnd"), .endpoint ("127.0.0.1:port"), .port, .peer_port, .data_dir, .proc,
    .log_path; start() / kill9() / terminate() / restart() (same data dir and ports);
    client() (a python3-etcd3 client, recreated after a restart); ctl(*args) (etcdctl)."""

    def __init__(self, kind, extra_args=(), env=None, ready_timeout=30):
        self.kind = kind
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.ready_timeout = ready_timeout
        self.dir = tempfile.mkdtemp(prefix=f"cairn-it-{kind}-")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, f"{kind}.log")
        self.proc = None
        self._client = None
        self.port = self.peer_port = None
        self.starts = 0

    # ---- command line

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    @property
    def client_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}"

    def argv(self):
        binary = ETCD if self.kind == "etcd" else str(cairnd_binary())
        args = [binary, "--name", MEMBER_NAME, "--data-dir", self.data_dir,
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", f"{MEMBER_NAME}={self.peer_url}",
                "--initial-cluster-state", "new",
                "--initial-cluster-token", CLUSTER_TOKEN]
        if self.kind == "etcd":
            args += ["--logger", "zap", "--log-level", "warn"]
        else:
            args += ["--log-level", "info"]
        return args + self.extra_args

    # ---- lifecycle

    def start(self):
        """First start: picks free ports (retrying if one was taken meanwhile)."""
        last = None
        for _ in range(3):
            self.port, self.peer_port = free_port(), free_port()
            ok, last = self._launch()
            if ok:
                return self
            if "address already in use" not in last.lower():
                break
        raise RuntimeError(f"{self.kind} did not become ready: {last}\n--- log:\n"
                           + self.log_tail())

    def restart(self):
        """Starts again on the same data dir and ports (after kill9() or terminate())."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("restart() of a running server")
        ok, why = self._launch()
        if not ok:
            raise RuntimeError(f"{self.kind} did not come back: {why}\n--- log:\n"
                               + self.log_tail())
        return self

    def _launch(self):
        import etcd3

        self._close_client()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.argv())}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=clean_env(**self.extra_env), start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout
        # The client port first: a gRPC channel that found nothing there backs off for seconds.
        while not port_listening(self.port):
            if self.proc.poll() is not None:
                return False, f"exited with {self.proc.returncode} before listening"
            if time.monotonic() > deadline:
                self._kill()
                return False, "client port never listened"
            time.sleep(0.05)
        client = etcd3.client("127.0.0.1", self.port, timeout=10)
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False, f"exited with {self.proc.returncode}"
                try:
                    client.maintenancestub.Status(etcd3.etcdrpc.StatusRequest(), timeout=1)
                    # Status may answer before a leader exists; a linearizable read needs one.
                    client.kvstub.Range(etcd3.etcdrpc.RangeRequest(key=b"\0"), timeout=1)
                    return True, ""
                except Exception as e:  # noqa: BLE001 - not ready yet
                    why = repr(e)
                    time.sleep(0.1)
            self._kill()
            return False, f"not ready within {self.ready_timeout}s (last error {why})"
        finally:
            client.close()

    def ready_line_seen(self):
        return READY_LINE in self.log_since_start()

    def log_since_start(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except (OSError, AttributeError):
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def kill9(self):
        """SIGKILL and reap: no chance to flush anything."""
        self._close_client()
        self._kill()

    def terminate(self, timeout=15):
        """SIGTERM; returns the exit status (SIGKILL after timeout, then returns None)."""
        self._close_client()
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            return None

    def close(self):
        """Teardown: SIGKILL (a test that wants a graceful stop calls terminate() itself). With the
        sanitizer build, a graceful stop instead, so that the leak check runs at exit; then any
        sanitizer report in the log (from this or an earlier run on the data dir) fails the test."""
        reports = []
        try:
            if self.kind == "cairnd" and sanitized():
                running = self.alive()  # an exit before (a refused start) is the test's business
                rc = self.terminate()
                with open(self.log_path, errors="replace") as f:
                    log = f.read()
                reports = [line for line in log.splitlines()
                           if "Sanitizer" in line or "runtime error:" in line]
                if running and rc not in (0, None) and not reports and self.proc.returncode > 0:
                    reports = [f"cairnd exited {rc} on SIGTERM"]
        finally:
            self._close_client()
            self._kill()
            shutil.rmtree(self.dir, ignore_errors=True)
        assert not reports, "sanitizer: " + "\n".join(reports[:20])

    # ---- clients

    def client(self):
        import etcd3

        if self._client is None:
            self._client = etcd3.client("127.0.0.1", self.port, timeout=10)
        return self._client

    def _close_client(self):
        if self._client is not None:
            self._client.close()
            self._client = None

    def ctl(self, *args, **kw):
        return etcdctl(self.endpoint, *args, **kw)

    def ctl_ok(self, *args, **kw):
        """etcdctl that must succeed; returns stdout."""
        rc, out, err = self.ctl(*args, **kw)
        assert rc == 0, f"etcdctl {' '.join(args)} failed (rc {rc}) on {self.kind}: {err}"
        return out

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def __repr__(self):
        return f"<{self.kind} at {self.endpoint}, data {self.data_dir}>"


def start_server(kind, **kw):
    require_kind(kind)
    s = Server(kind, **kw)
    try:
        s.start()
    except BaseException:
        s.close()
        raise
    return s


@pytest.fixture(params=SERVER_KINDS)
def server(request):
    """A fresh single-member server (revision 1) of each kind: etcd 3.4 and cairnd.

    Killed and its temporary directory removed afterwards, whether the test passed or not."""
    s = start_server(request.param)
    try:
        yield s
    finally:
        if getattr(request.node, "rep_call_failed", False):
            print(f"--- {s.kind} log tail:\n{s.log_tail()}")
        s.close()


@pytest.fixture(params=SERVER_KINDS)
def server_kind(request):
    """Just the kind (for tests that start servers themselves with start_server())."""
    require_kind(request.param)
    return request.param


@pytest.fixture
def servers():
    """A factory for extra servers (start_server(kind, ...)), all closed afterwards."""
    started = []

    def make(kind, **kw):
        s = start_server(kind, **kw)
        started.append(s)
        return s

    try:
        yield make
    finally:
        for s in started:
            s.close()


@pytest.fixture
def cairnd():
    """The cairnd binary's path (skips while it is not built)."""
    require_kind("cairnd")
    return str(cairnd_binary())


def built_tool(name):
    """The path of a binary of ours in the build dir (cairnctl, cairn-bench); skips the test while
    it is not built."""
    b = build_dir() / name
    if not os.access(b, os.X_OK):
        pytest.skip(f"{name} not built yet ({b}; set BUILD_DIR or build it)")
    return str(b)


@pytest.fixture
def cairnctl():
    """The cairnctl binary's path (skips while it is not built)."""
    return built_tool("cairnctl")


@pytest.fixture
def cairn_bench():
    """The cairn-bench binary's path (skips while it is not built)."""
    return built_tool("cairn-bench")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        item.rep_call_failed = True


# --------------------------------------------------------------------------------------------
# Normalizers: blank what legitimately differs between etcd and cairnd (identity, raft term,
# version, database size, raft indexes, timings); everything else must be equal.

BLANK = "<blank>"
_BLANK_JSON_KEYS = {"cluster_id", "member_id", "raft_term", "version", "dbSize",
                    "dbSizeInUse", "leader", "raftIndex", "raftTerm", "raftAppliedIndex", "ID",
                    "took"}
# "version" is also a KeyValue field (the key's version): only blank it outside kvs.
_KV_KEYS = {"key", "create_revision", "mod_revision", "version", "value", "lease"}


def normalize(obj, _in_kv=False):
    """A copy of parsed etcdctl -w json output with the differing fields blanked."""
    if isinstance(obj, list):
        return [normalize(x, _in_kv) for x in obj]
    if isinstance(obj, dict):
        is_kv = "key" in obj and set(obj) <= _KV_KEYS
        out = {}
        for k, v in obj.items():
            if k in _BLANK_JSON_KEYS and not (is_kv and k == "version"):
                out[k] = BLANK
            else:
                out[k] = normalize(v)
        return out
    return obj


_FIELDS_BLANK = ("ClusterID", "MemberID", "RaftTerm")


def normalize_fields(text):
    """etcdctl -w fields output with "ClusterID"/"MemberID"/"RaftTerm" values blanked."""
    out = []
    for line in text.splitlines():
        for f in _FIELDS_BLANK:
            if line.startswith(f'"{f}" : '):
                line = f'"{f}" : {BLANK}'
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def etcd_member_id(peer_urls, token):
    """etcd's member ID: the first 8 bytes (big-endian) of SHA-1(sorted peer URLs + token)."""
    import hashlib
    import struct

    b = "".join(sorted(peer_urls)).encode() + token.encode()
    return struct.unpack(">Q", hashlib.sha1(b).digest()[:8])[0]


def etcd_cluster_id(member_ids):
    """etcd's cluster ID: the first 8 bytes of SHA-1 over the sorted member IDs (big-endian)."""
    import hashlib
    import struct

    b = b"".join(struct.pack(">Q", m) for m in sorted(member_ids))
    return struct.unpack(">Q", hashlib.sha1(b).digest()[:8])[0]
