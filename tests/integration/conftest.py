"""Fixtures of cairn's integration tests: a real etcd 3.4 server and the store_replay tool.

Both run as child processes in their own temporary directories, which are removed, and the
processes ended, when the test ends, whether it passed or not. A test is skipped (with the reason)
only when etcd or the tool is not there; any other trouble starting them is a failure.
"""

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
