"""cairnd's command line, environment variables, readiness line and signals (cairnd only)."""

import os
import signal
import subprocess
import time

import pytest

from conftest import (READY_LINE, Server, clean_env, etcdctl, free_port, port_listening,
                      require_kind)


def run(args, timeout=10, env=None):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                       env=clean_env(**(env or {})), stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])  # etcd accepts both (etcd -h | --help)
def test_help_exits_0(cairnd, flag):
    rc, out, err = run([cairnd, flag])
    assert rc == 0, (flag, rc, err)
    text = out + err
    for name in ("--data-dir", "--listen-client-urls", "--name", "--max-request-bytes"):
        assert name in text, f"{flag} does not mention {name}:\n{text}"


def test_version_exits_0(cairnd):
    rc, out, err = run([cairnd, "--version"])
    assert rc == 0, (rc, err)
    assert (out + err).strip(), "--version printed nothing"


@pytest.mark.parametrize("args,mentions", [
    (["--no-such-flag"], "no-such-flag"),
    (["--no-such-flag=1"], "no-such-flag"),
    (["--max-request-bytes", "abc"], "max-request-bytes"),
    (["--max-request-bytes=abc"], "max-request-bytes"),
    (["--quota-backend-bytes", "lots"], "quota-backend-bytes"),
    (["--max-txn-ops", "1x"], "max-txn-ops"),
    (["--initial-cluster-state", "bogus"], "initial-cluster-state"),
    (["--max-request-bytes"], "max-request-bytes"),  # the value is missing
], ids=["unknown", "unknown=", "bad-int", "bad-int=", "bad-quota", "bad-txn-ops", "bad-state",
        "missing-value"])
def test_bad_command_line_exits_2_with_one_line(cairnd, tmp_path, args, mentions):
    rc, out, err = run([cairnd, "--data-dir", str(tmp_path / "d"), *args])
    assert rc == 2, f"{args}: exit {rc}\nstdout: {out}\nstderr: {err}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"{args}: want one line on stderr, got:\n{err}"
    assert mentions in lines[0], f"{args}: the error does not name {mentions}: {lines[0]}"
    # nothing was created
    assert not (tmp_path / "d").exists()


def test_bad_value_from_environment_exits_2(cairnd, tmp_path):
    rc, out, err = run([cairnd, "--data-dir", str(tmp_path / "d")],
                       env={"CAIRN_MAX_REQUEST_BYTES": "abc"})
    assert rc == 2, (rc, out, err)
    assert "abc" in err or "MAX_REQUEST_BYTES" in err or "max-request-bytes" in err, err


class EnvServer(Server):
    """cairnd configured only through CAIRN_* environment variables."""

    def argv(self):
        return [str(self.binary)]

    def start(self):
        self.port, self.peer_port = free_port(), free_port()
        self.extra_env.update({
            "CAIRN_NAME": "from-env",
            "CAIRN_DATA_DIR": self.data_dir,
            "CAIRN_LISTEN_CLIENT_URLS": self.client_url,
            "CAIRN_ADVERTISE_CLIENT_URLS": self.client_url,
            "CAIRN_LISTEN_PEER_URLS": self.peer_url,
            "CAIRN_INITIAL_ADVERTISE_PEER_URLS": self.peer_url,
            "CAIRN_INITIAL_CLUSTER": f"from-env={self.peer_url}",
            "CAIRN_INITIAL_CLUSTER_STATE": "new",
            "CAIRN_INITIAL_CLUSTER_TOKEN": "env-token",
        })
        ok, why = self._launch()
        if not ok:
            raise RuntimeError(f"cairnd from the environment did not start: {why}\n"
                               + self.log_tail())
        return self


def test_configuration_from_environment(cairnd):
    s = EnvServer("cairnd")
    s.binary = cairnd
    try:
        s.start()
        assert s.ctl_ok("put", "k", "v") == "OK\n"
        assert s.ctl_ok("get", "k") == "k\nv\n"
        members = list(s.client().members)
        assert [(m.name, list(m.client_urls)) for m in members] == [("from-env", [s.client_url])]
        assert os.path.isdir(os.path.join(s.data_dir, "member"))
    finally:
        s.close()


def test_listen_url_from_environment_only(cairnd, tmp_path):
    """CAIRN_LISTEN_CLIENT_URLS alone moves the client port (other settings by flag)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    peer = f"http://127.0.0.1:{free_port()}"
    s = Server("cairnd", env={"CAIRN_LISTEN_CLIENT_URLS": url})
    s.port, s.peer_port = port, int(peer.rsplit(":", 1)[1])
    s.argv = lambda: [cairnd, "--name", "n", "--data-dir", s.data_dir,
                      "--advertise-client-urls", url, "--listen-peer-urls", peer,
                      "--initial-advertise-peer-urls", peer, "--initial-cluster", f"n={peer}"]
    try:
        ok, why = s._launch()
        assert ok, f"{why}\n{s.log_tail()}"
        assert s.ctl_ok("put", "k", "v") == "OK\n"
    finally:
        s.close()


def start_plain(cairnd, tmp_path):
    port, peer = free_port(), free_port()
    url, purl = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer}"
    out = open(tmp_path / "stdout", "wb")
    err = open(tmp_path / "stderr", "wb")
    p = subprocess.Popen(
        [cairnd, "--name", "n", "--data-dir", str(tmp_path / "data"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
         "--initial-cluster", f"n={purl}", "--initial-cluster-state", "new"],
        stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=clean_env(),
        start_new_session=True)
    out.close()
    err.close()
    return p, port


def wait_ready_line(p, path, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if READY_LINE in path.read_text(errors="replace"):
            return True
        if p.poll() is not None:
            return False
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_ready_line_on_stderr_and_graceful_exit(cairnd, tmp_path, sig):
    p, port = start_plain(cairnd, tmp_path)
    try:
        assert wait_ready_line(p, tmp_path / "stderr"), \
            f"no '{READY_LINE}' on stderr (exit {p.poll()}):\n" \
            + (tmp_path / "stderr").read_text(errors="replace")[-3000:]
        # ready means serving
        assert port_listening(port)
        rc, out, err = etcdctl(f"127.0.0.1:{port}", "put", "k", "v")
        assert (rc, out) == (0, "OK\n"), err
        p.send_signal(sig)
        try:
            rc = p.wait(15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"cairnd still running 15 s after {sig.name}")
        assert rc == 0, f"exit {rc} after {sig.name}"
        assert not port_listening(port)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_default_data_dir_is_name_dot_cairn(cairnd, tmp_path):
    """--data-dir defaults to <name>.cairn in the working directory."""
    port, peer = free_port(), free_port()
    url, purl = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer}"
    p = subprocess.Popen(
        [cairnd, "--name", "dflt", "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
         "--initial-cluster", f"dflt={purl}"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env=clean_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not port_listening(port) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        rc, out, err = etcdctl(f"127.0.0.1:{port}", "put", "k", "v")
        assert rc == 0, err
        assert (tmp_path / "dflt.cairn" / "member").is_dir(), sorted(os.listdir(tmp_path))
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_max_request_bytes_flag_is_honoured(cairnd):
    require_kind("cairnd")
    s = Server("cairnd", extra_args=["--max-request-bytes", "10000"])
    try:
        s.start()
        rc, out, err = s.ctl("put", "small", "x" * 5000)
        assert rc == 0, err
        rc, out, err = s.ctl("put", "big", "x" * 20000)
        assert rc != 0 and "etcdserver: request is too large" in err, (rc, out, err)
    finally:
        s.close()


def test_max_txn_ops_flag_is_honoured(cairnd):
    s = Server("cairnd", extra_args=["--max-txn-ops", "3"])
    try:
        s.start()
        t = s.client().transactions
        ok, _ = s.client().transaction(compare=[], success=[t.put(f"k{i}", "v")
                                                            for i in range(3)], failure=[])
        assert ok
        import grpc
        with pytest.raises(grpc.RpcError) as ei:
            s.client().transaction(compare=[], success=[t.put(f"j{i}", "v") for i in range(4)],
                                   failure=[])
        assert ei.value.details() == "etcdserver: too many operations in txn request"
    finally:
        s.close()
