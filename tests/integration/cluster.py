"""A cluster of cairnd members on 127.0.0.1 — the fixture of tests/integration/test_cluster.py.

Cluster(n) runs n cairnd members, each with free client and peer ports, its own temporary data dir
and log file. The members are started together: one alone cannot become ready, since readiness is
a linearizable Range succeeding on it, and that needs a quorum. A member can be killed (kill9),
stopped (terminate) and started again on the same ports and data dir (Cluster.restart); close()
ends every process and removes every directory, whatever state the test left them in.

The waits here are bounded (they raise with what they last saw, and the members' log tails are
printed by the fixture when a test fails) but never measured: the machine may be slow.
"""

import os
import shutil
import subprocess
import tempfile
import time

from conftest import (CLUSTER_TOKEN, ETCDCTL, cairnd_binary, clean_env, etcd_member_id,
                      free_port, port_listening, sanitized)

ELECTION_TIMEOUT_MS = 1000  # cairnd's and etcd's defaults, given explicitly
HEARTBEAT_INTERVAL_MS = 100
RPC_TIMEOUT = 10            # seconds, for one gRPC call of the tests' clients


def rpc():
    import etcd3

    return etcd3.etcdrpc


def prefix_end(prefix):
    """The range_end that makes a Range over every key starting with prefix (bytes)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


class Member:
    """One cairnd member of a Cluster.

    .name, .port, .peer_port, .endpoint ("127.0.0.1:port"), .client_url, .peer_url, .id (etcd's
    member ID from the peer URL and the cluster token), .data_dir, .log_path, .proc."""

    def __init__(self, cluster, index):
        self.cluster = cluster
        self.name = f"m{index}"
        self.dir = os.path.join(cluster.dir, self.name)
        os.mkdir(self.dir)
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "cairnd.log")
        self.port = self.peer_port = None
        self.proc = None
        self.starts = 0
        self.sigterms = 0         # SIGTERMs the test sent, to tell them from someone else's
        self.state = "new"        # --initial-cluster-state
        self.token = CLUSTER_TOKEN  # --initial-cluster-token
        self.stopped_by_test = False
        self.member_id = None     # the ID once its peer URL was changed (else from the URL)
        self.advertised_client_url = None  # --advertise-client-urls if not client_url
        self._client = None
        self._log_offset = 0

    # ---- identity

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    @property
    def client_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def id(self):
        if self.member_id is not None:
            return self.member_id
        return etcd_member_id([self.peer_url], self.token)

    def argv(self):
        return [self.cluster.binary, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.advertised_client_url or self.client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", self.cluster.initial_cluster(),
                "--initial-cluster-state", self.state,
                "--initial-cluster-token", self.token,
                "--election-timeout", str(ELECTION_TIMEOUT_MS),
                "--heartbeat-interval", str(HEARTBEAT_INTERVAL_MS),
                "--log-level", "info", *self.cluster.extra_args]

    # ---- lifecycle

    def launch(self):
        """Starts the process (not waiting for anything). Must not be running."""
        assert not self.alive(), f"{self.name} is already running"
        self.close_client()
        self.starts += 1
        self.stopped_by_test = False
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.argv())}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=clean_env(), start_new_session=True)

    def wait_ready(self, timeout=60):
        """Waits until a linearizable Range succeeds on this member (a serializable one on a
        learner, which refuses the other). Returns (ok, why not)."""
        import etcd3

        deadline = time.monotonic() + timeout
        # The client port first: a gRPC channel that found nothing there backs off for seconds.
        while not port_listening(self.port):
            if not self.alive():
                return False, f"{self.name} exited with {self.proc.returncode} before listening"
            if time.monotonic() > deadline:
                return False, f"{self.name}: client port {self.port} never listened"
            time.sleep(0.05)
        why = "no attempt"
        client = etcd3.client("127.0.0.1", self.port, timeout=RPC_TIMEOUT)
        try:
            while time.monotonic() < deadline:
                if not self.alive():
                    return False, f"{self.name} exited with {self.proc.returncode}"
                try:
                    client.kvstub.Range(rpc().RangeRequest(key=b"\0"), timeout=2)
                    return True, ""
                except Exception as e:  # noqa: BLE001 - not ready yet
                    why = repr(e)
                    if "not supported for learner" in why:
                        # a learner serves serializable reads only (etcd's rule): ready
                        # once it answers one
                        try:
                            client.kvstub.Range(rpc().RangeRequest(key=b"\0", serializable=True),
                                                timeout=2)
                            return True, ""
                        except Exception as e2:  # noqa: BLE001
                            why = repr(e2)
                    time.sleep(0.1)
            return False, f"{self.name} not ready within {timeout}s (last error {why})"
        finally:
            client.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """SIGKILL and reap."""
        self.close_client()
        self.stopped_by_test = True
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def terminate(self, timeout=15):
        """SIGTERM; returns the exit status (None if it had to be SIGKILLed after timeout)."""
        self.close_client()
        self.stopped_by_test = True
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.sigterms += 1
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    # ---- clients

    def client(self):
        """A python3-etcd3 client of this member (recreated after a restart)."""
        import etcd3

        if self._client is None:
            self._client = etcd3.client("127.0.0.1", self.port, timeout=RPC_TIMEOUT)
        return self._client

    def close_client(self):
        if self._client is not None:
            self._client.close()
            self._client = None

    def range(self, key, serializable=False, prefix=False, revision=0, count_only=False):
        """A raw RangeRequest on this member (key: str or bytes; prefix: every key under it)."""
        key = key.encode() if isinstance(key, str) else key
        req = rpc().RangeRequest(key=key, serializable=serializable, revision=revision,
                                 count_only=count_only)
        if prefix:
            req.range_end = prefix_end(key)
        return self.client().kvstub.Range(req, timeout=RPC_TIMEOUT)

    def put(self, key, value):
        """A PutRequest on this member; returns the response."""
        return self.client().kvstub.Put(rpc().PutRequest(key=key.encode(), value=value.encode()),
                                        timeout=RPC_TIMEOUT)

    def status(self, timeout=RPC_TIMEOUT):
        return self.client().maintenancestub.Status(rpc().StatusRequest(), timeout=timeout)

    def members(self):
        """MemberListResponse of this member."""
        return self.client().clusterstub.MemberList(rpc().MemberListRequest(),
                                                    timeout=RPC_TIMEOUT)

    def hashkv(self, revision):
        return self.client().maintenancestub.HashKV(rpc().HashKVRequest(revision=revision),
                                                    timeout=RPC_TIMEOUT)

    def ctl(self, *args, command_timeout="15s", timeout=60):
        """etcdctl (API v3) against this member. Returns (rc, stdout, stderr)."""
        return etcdctl_at([self.endpoint], *args, command_timeout=command_timeout,
                          timeout=timeout)

    # ---- logs

    def log_since_start(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def notes(self):
        """What happened to this process that the test did not do, as text ("" if nothing)."""
        out = []
        if self.proc is not None and self.proc.poll() is not None and not self.stopped_by_test:
            out.append(f"{self.name} exited by itself (status {self.proc.returncode})")
        try:
            with open(self.log_path, errors="replace") as f:
                received = f.read().count("received SIGTERM")
        except OSError:
            received = 0
        if received > self.sigterms:
            out.append(f"{self.name} logged {received} SIGTERM(s), the test sent "
                       f"{self.sigterms}: something outside the test signalled it")
        return "; ".join(out)

    def __repr__(self):
        state = "running" if self.alive() else "stopped"
        return f"<{self.name} {self.endpoint} {state}>"


def etcdctl_at(endpoints, *args, input=None, command_timeout="15s", timeout=60):
    """etcdctl (API v3) with --endpoints a,b,...; returns (rc, stdout, stderr) as text."""
    cmd = [ETCDCTL, "--endpoints", ",".join(endpoints), "--dial-timeout", "5s",
           "--command-timeout", command_timeout, *args]
    p = subprocess.run(cmd, input=input, capture_output=True, text=True,
                       env=clean_env(ETCDCTL_API="3"), timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class Cluster:
    """n cairnd members forming one cluster. .members; start(), restart(m), leader(),
    wait_converged(), hashkvs(), close().

    Everything lives in one temporary directory: a member's data dir and log in <dir>/<name>, and
    a copy of cairnd taken when the cluster is made, so that a rebuild while the test runs (the
    tree is shared) cannot start members of one cluster from different binaries."""

    def __init__(self, n, extra_args=()):
        self.extra_args = list(extra_args)
        self.members = []
        self.dir = tempfile.mkdtemp(prefix="cairn-cluster-")
        try:
            self.binary = os.path.join(self.dir, "cairnd")
            shutil.copy2(cairnd_binary(), self.binary)
            self.members = [Member(self, i) for i in range(1, n + 1)]
        except BaseException:
            self.close()
            raise

    def __getitem__(self, i):
        return self.members[i]

    def __iter__(self):
        return iter(self.members)

    def __len__(self):
        return len(self.members)

    def initial_cluster(self):
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def endpoints(self):
        return [m.endpoint for m in self.members]

    def running(self):
        return [m for m in self.members if m.alive()]

    def add_member(self):
        """A new member object (not started) on fresh ports, listed in the initial cluster of
        every later start; to start it with --initial-cluster-state existing after MemberAdd."""
        m = Member(self, len(self.members) + 1)
        used = {p for x in self.members for p in (x.port, x.peer_port)}
        while m.port is None or m.port in used or m.peer_port in used or m.port == m.peer_port:
            m.port, m.peer_port = free_port(), free_port()
        m.state = "existing"
        self.members.append(m)
        return m

    def by_id(self, member_id):
        return next((m for m in self.members if m.id == member_id), None)

    # ---- lifecycle

    def start(self, timeout=60):
        """First start of every member together, on fresh ports; returns when all are ready.
        A port found free can be taken before cairnd binds it: then it all starts again on new
        ports and empty data dirs."""
        why = ""
        for _ in range(3):
            ports = set()
            while len(ports) < 2 * len(self.members):
                ports.add(free_port())
            ports = sorted(ports)
            for i, m in enumerate(self.members):
                m.port, m.peer_port = ports[2 * i], ports[2 * i + 1]
            for m in self.members:
                m.launch()
            ok, why = self.wait_ready(self.members, timeout)
            if ok:
                return self
            if not any("address already in use" in m.log_since_start() for m in self.members):
                break
            for m in self.members:
                m.kill9()
                shutil.rmtree(m.data_dir, ignore_errors=True)
        raise RuntimeError(f"the cluster did not become ready: {why}")

    def wait_ready(self, members, timeout=60):
        """Waits until each of members is ready (one deadline for all). Returns (ok, why not)."""
        deadline = time.monotonic() + timeout
        for m in members:
            ok, why = m.wait_ready(max(1.0, deadline - time.monotonic()))
            if not ok:
                return False, why
        return True, ""

    def restart(self, *members, timeout=60):
        """Starts stopped members again (same ports and data dirs), together, and waits until
        they are ready."""
        for m in members:
            m.launch()
        ok, why = self.wait_ready(members, timeout)
        if not ok:
            raise RuntimeError(f"{members} did not come back: {why}")

    def close(self):
        """Ends every member and removes the directory. With the sanitizer build the running
        members get SIGTERM first, so that the leak check runs at exit, and a sanitizer report in
        any member's log fails the test (as conftest's Server does)."""
        reports = []
        try:
            if sanitized():
                for m in self.members:
                    if m.alive():
                        m.terminate()
                for m in self.members:
                    try:
                        with open(m.log_path, errors="replace") as f:
                            reports += [f"{m.name}: {line}" for line in f.read().splitlines()
                                        if "Sanitizer" in line or "runtime error:" in line]
                    except OSError:
                        pass
            for m in self.members:
                m.kill9()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        assert not reports, "sanitizer: " + "\n".join(reports[:20])

    # ---- state

    def leader(self, among=None, timeout=30):
        """The leader that every member of among (default: the running ones) agrees on, itself
        one of them; waits for one up to timeout."""
        among = list(among or self.running())
        deadline = time.monotonic() + timeout
        seen = None
        while True:
            try:
                leaders = {m.name: m.status(timeout=2).leader for m in among}
                seen = leaders
                ids = set(leaders.values())
                if len(ids) == 1:
                    lead = self.by_id(ids.pop())
                    if lead in among:
                        return lead
            except Exception as e:  # noqa: BLE001 - a member not answering yet
                seen = repr(e)
            if time.monotonic() > deadline:
                raise AssertionError(f"no leader agreed on by {among} within {timeout}s; "
                                     f"last seen {seen}")
            time.sleep(0.2)

    def followers(self, among=None):
        lead = self.leader(among)
        return lead, [m for m in (among or self.running()) if m is not lead]

    def wait_converged(self, among=None, timeout=60):
        """Waits until every member of among (default: the running ones) has applied the same
        revision as a linearizable read on the first of them returns; returns that revision."""
        among = list(among or self.running())
        deadline = time.monotonic() + timeout
        seen = None
        while True:
            try:
                rev = among[0].range("\0").header.revision
                seen = {m.name: m.range("\0", serializable=True).header.revision for m in among}
                if set(seen.values()) == {rev}:
                    return rev
            except Exception as e:  # noqa: BLE001 - a member not answering yet
                seen = repr(e)
            if time.monotonic() > deadline:
                raise AssertionError(f"{among} did not converge within {timeout}s; last "
                                     f"revisions {seen}")
            time.sleep(0.2)

    def hashkvs(self, revision, among=None):
        """{name: (hash, header revision, compact revision)} of HashKV at revision."""
        out = {}
        for m in among or self.running():
            r = m.hashkv(revision)
            out[m.name] = (r.hash, r.header.revision, r.compact_revision)
        return out

    def wait_published(self, timeout=30):
        """Waits until MemberList on every running member lists every member with its name and
        client URLs; returns {name: MemberListResponse}."""
        want = {(m.id, m.name, (m.peer_url,), (m.client_url,)) for m in self.members}
        deadline = time.monotonic() + timeout
        while True:
            seen = {}
            try:
                for m in self.running():
                    r = m.members()
                    got = {(x.ID, x.name, tuple(x.peerURLs), tuple(x.clientURLs))
                           for x in r.members}
                    seen[m.name] = (r, got)
                if all(got == want for _, got in seen.values()):
                    return {name: r for name, (r, _) in seen.items()}
            except Exception as e:  # noqa: BLE001 - a member not answering yet
                seen = repr(e)
            if time.monotonic() > deadline:
                last = seen if isinstance(seen, str) else {k: g for k, (_, g) in seen.items()}
                raise AssertionError(f"members not all published within {timeout}s: want "
                                     f"{want}, last seen {last}")
            time.sleep(0.2)

    def log_tails(self, n=40):
        """Each member's log tail, after a note of what the test did not do to it, if any."""
        out = []
        for m in self.members:
            note = m.notes()
            out.append(f"--- {m.name} ({m.endpoint}, peer {m.peer_port}) log tail:\n"
                       + (f"NOTE: {note}\n" if note else "") + m.log_tail(n) + "\n")
        return "".join(out)
