"""Acknowledged writes survive kill -9 — etcd 3.4 and cairnd, the same assertions; and the data
dir is protected (cairnd only: etcd's handling of a shared or foreign data dir is not the
question).
"""

import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import clean_env, free_port, start_server


def all_kvs(server):
    """{key: (value, create, mod, version)} of every key, and the header revision."""
    r = server.client().get_all_response()
    return {kv.key: (kv.value, kv.create_revision, kv.mod_revision, kv.version)
            for kv in r.kvs}, r.header.revision


def test_acknowledged_writes_survive_kill9(server):
    c = server.client()
    n = 200
    for i in range(n):
        r = c.put(f"d/{i:04d}", f"v{i}")                     # revs 2..201
        assert r.header.revision == i + 2
    for i in range(0, n, 10):
        c.put(f"d/{i:04d}", f"w{i}")                         # 20 updates: 202..221
    for i in range(5, n, 50):
        assert c.delete(f"d/{i:04d}")                        # 4 deletes: 222..225
    ok, _ = c.transaction(compare=[c.transactions.version("d/0000") == 2],
                          success=[c.transactions.put("txn", "1"),
                                   c.transactions.delete("d/0001")], failure=[])
    assert ok                                                # 226
    assert server.ctl_ok("put", "via-etcdctl", "x") == "OK\n"  # 227
    before, rev = all_kvs(server)
    assert rev == 227 and len(before) == n - 4 - 1 + 2
    server.kill9()
    server.restart()
    after, rev_after = all_kvs(server)
    assert rev_after == rev
    assert after == before
    # history survives too
    assert server.ctl_ok("get", "d/0005", "--rev=100") == "d/0005\nv5\n"
    # and writing goes on from the same revision
    assert server.client().put("next", "1").header.revision == rev + 1
    # a second crash, right after a write
    server.kill9()
    server.restart()
    assert server.client().get("next")[1].mod_revision == rev + 1
    assert all_kvs(server)[1] == rev + 1


def test_writes_acknowledged_while_killed_are_kept(server):
    """A writer keeps putting while the server is killed: every put acknowledged before the kill
    is there afterwards, and the revision is at least the last acknowledged one."""
    acked = {}
    last_rev = [0]
    stop = threading.Event()
    errors = []

    def writer():
        c = server.client()
        i = 0
        while not stop.is_set():
            key, value = f"w/{i:06d}", f"value-{i}"
            try:
                r = c.put(key, value)
            except Exception as e:  # noqa: BLE001 - the kill
                errors.append(e)
                return
            acked[key.encode()] = (value.encode(), r.header.revision)
            last_rev[0] = r.header.revision
            i += 1

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    stop.set()
    t.join(15)
    assert not t.is_alive()
    assert len(acked) >= 50, f"only {len(acked)} puts acknowledged in 10 s"
    snapshot = dict(acked)
    server.kill9()
    server.restart()
    got, rev = all_kvs(server)
    assert rev >= last_rev[0]
    missing = [k for k in snapshot if k not in got]
    assert not missing, f"{len(missing)} acknowledged keys lost, e.g. {missing[:5]}"
    wrong = [k for k, (v, r) in snapshot.items() if got[k][0] != v or got[k][2] != r]
    assert not wrong, f"acknowledged keys changed: {[(k, got[k]) for k in wrong[:5]]}"


def test_graceful_stop_keeps_data(server):
    c = server.client()
    for i in range(50):
        c.put(f"g/{i}", str(i))
    before = all_kvs(server)
    rc = server.terminate()
    assert rc is not None, f"{server.kind} ignored SIGTERM for 15 s"
    if server.kind == "cairnd":
        assert rc == 0, f"cairnd exited {rc} on SIGTERM"
    server.restart()
    assert all_kvs(server) == before


# --------------------------------------------------------------------------------------------
# the data dir (cairnd)


def run_cairnd(binary, data_dir, timeout=15, extra=()):
    """Starts cairnd on fresh ports and waits for it to exit. Returns (rc, stderr+stdout);
    rc None if still running after timeout (then killed)."""
    port, peer = free_port(), free_port()
    url, purl = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer}"
    p = subprocess.Popen(
        [binary, "--name", "second", "--data-dir", data_dir, "--listen-client-urls", url,
         "--advertise-client-urls", url, "--listen-peer-urls", purl,
         "--initial-advertise-peer-urls", purl, "--initial-cluster", f"second={purl}",
         "--initial-cluster-state", "new", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=clean_env(), start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, (err + out).decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, (err + out).decode(errors="replace")


def assert_refused(rc, output, data_dir, what):
    assert rc is not None, f"cairnd kept running on {what}; output:\n{output}"
    assert rc != 0, f"cairnd exited 0 on {what}; output:\n{output}"
    low = output.lower()
    assert output.strip(), f"cairnd refused {what} without a word"
    assert data_dir in output or "data dir" in low or "data-dir" in low, \
        f"the error about {what} does not name the data dir:\n{output}"


def test_second_cairnd_on_same_data_dir_is_refused(cairnd):
    s = start_server("cairnd")
    try:
        s.client().put("first", "1")
        rc, out = run_cairnd(cairnd, s.data_dir)
        assert_refused(rc, out, s.data_dir, "a data dir in use")
        # the first one is unharmed
        assert s.alive()
        assert s.client().get("first")[0] == b"1"
        assert s.ctl_ok("put", "after", "2") == "OK\n"
    finally:
        s.close()


@pytest.mark.parametrize("layout", ["garbage-store", "store-is-a-file", "data-dir-is-a-file",
                                    "etcd-data-dir"])
def test_foreign_data_dir_is_refused(cairnd, tmp_path, layout):
    data_dir = str(tmp_path / "data")
    if layout == "garbage-store":
        store = tmp_path / "data" / "member" / "store"
        store.mkdir(parents=True)
        (store / "data.mdb").write_bytes(b"this is not an LMDB file\n" * 1000)
    elif layout == "store-is-a-file":
        (tmp_path / "data" / "member").mkdir(parents=True)
        (tmp_path / "data" / "member" / "store").write_bytes(b"\x00" * 4096)
    elif layout == "data-dir-is-a-file":
        (tmp_path / "data").write_text("just a file\n")
    else:
        # a real etcd 3.4 data dir (member/snap, member/wal)
        e = start_server("etcd")
        try:
            e.client().put("k", "v")
            e.terminate()
            os.rename(e.data_dir, data_dir)
        finally:
            e.close()
        assert os.path.isdir(os.path.join(data_dir, "member", "wal"))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    rc, out = run_cairnd(cairnd, data_dir)
    assert_refused(rc, out, data_dir, f"a foreign data dir ({layout})")
    if layout == "etcd-data-dir":
        # nothing written into someone else's directory
        assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_data_lives_in_member_store(cairnd):
    s = start_server("cairnd")
    try:
        s.client().put("k", "v")
        assert os.path.isdir(os.path.join(s.data_dir, "member", "store")), \
            sorted(os.listdir(s.data_dir))
    finally:
        s.close()


def test_concurrent_writers_killed(server):
    """Four writers on their own connections (so the server batches their commits); kill -9
    while they write; everything acknowledged survives with its revision."""
    import etcd3

    acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w):
        c = etcd3.client("127.0.0.1", server.port, timeout=10)
        try:
            i = 0
            while not stop.is_set():
                key = f"cw/{w}/{i:06d}"
                try:
                    r = c.put(key, f"{w}-{i}")
                except Exception:  # noqa: BLE001 - the kill
                    return
                with lock:
                    acked[key.encode()] = (f"{w}-{i}".encode(), r.header.revision)
                i += 1
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(acked) < 400 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    with lock:
        snapshot = dict(acked)
    stop.set()
    for t in threads:
        t.join(15)
    revs = sorted(r for _, r in snapshot.values())
    assert len(revs) == len(set(revs)), "two acknowledged puts share a revision"
    server.kill9()
    server.restart()
    got, rev = all_kvs(server)
    assert rev >= revs[-1]
    lost = [k for k in snapshot if k not in got]
    assert not lost, f"{len(lost)} of {len(snapshot)} acknowledged keys lost, e.g. {lost[:5]}"
    wrong = [k for k, (v, r) in snapshot.items() if (got[k][0], got[k][2]) != (v, r)]
    assert not wrong, [(k, snapshot[k], got[k]) for k in wrong[:5]]


def test_sigterm_with_clients_connected(server):
    """SIGTERM while clients hold connections (one idle, one in the middle of a request, one with
    an open Watch stream): the server still exits promptly, and acknowledged data is kept."""
    import h2wire

    c = server.client()
    for i in range(20):
        c.put(f"t/{i}", str(i))
    before = all_kvs(server)
    conns = []
    try:
        idle = h2wire.H2Conn("127.0.0.1", server.port)
        idle.handshake()
        partial = h2wire.H2Conn("127.0.0.1", server.port)
        partial.handshake()
        st = partial.open("/etcdserverpb.KV/Put")
        partial.send(h2wire.frame(h2wire.DATA, 0, st.id, h2wire.grpc_message(b"\x0a", length=50)))
        watch = h2wire.H2Conn("127.0.0.1", server.port)
        watch.handshake()
        watch.open("/etcdserverpb.Watch/Watch")
        conns = [idle, partial, watch]
        rc = server.terminate(timeout=15)
        assert rc is not None, f"{server.kind} still running 15 s after SIGTERM"
        if server.kind == "cairnd":
            assert rc == 0, f"cairnd exited {rc}"
        for conn in conns:
            conn.wait(lambda: False, 0.5)
            assert conn.closed or conn.goaway is not None
    finally:
        for conn in conns:
            conn.close()
    server.restart()
    assert all_kvs(server) == before


def raft_dir(s):
    return os.path.join(s.data_dir, "member", "raft")


def segments(s):
    """libraft's segment files: closed ones (FIRST-LAST) by first index, then open ones."""
    names = os.listdir(raft_dir(s))
    closed = sorted(n for n in names if len(n) == 33 and n[16] == "-"
                    and n.replace("-", "").isdigit())
    return closed, sorted(n for n in names if n.startswith("open-"))


def flip_middle(path):
    """Inverts 16 bytes in the middle of the file's written part (an open segment is allocated
    whole, zeros after its last entry). Returns their offset and the bytes as they were."""
    with open(path, "rb") as f:
        written = len(f.read().rstrip(b"\0"))
    with open(path, "r+b") as f:
        f.seek(written // 2)
        good = f.read(16)
        f.seek(written // 2)
        f.write(bytes(b ^ 0xFF for b in good))
    return written // 2, good


def dir_state(path):
    """{name: bytes} of the files in path."""
    out = {}
    for n in sorted(os.listdir(path)):
        with open(os.path.join(path, n), "rb") as f:
            out[n] = f.read()
    return out


def assert_start_refused(s, *words):
    """s (stopped) does not start: exit 1, the log saying all of words."""
    with pytest.raises(RuntimeError):
        s.restart()
    log = s.log_since_start()
    assert s.proc.returncode == 1, f"exit {s.proc.returncode}:\n{log}"
    for w in words:
        assert w in log, f"{w!r} not in:\n{log}"


def test_damaged_raft_log_is_refused_and_left_as_it_was(cairnd):
    """A checksum mismatch in a closed segment is an error, as a damaged WAL is to etcd: cairnd
    does not let libraft set the segment aside (its auto-recovery) and start without its
    acknowledged entries. The last closed segment is the one libraft would set aside. Nothing in
    the log is renamed or rewritten; with the segment mended the member starts with every write."""
    s = start_server("cairnd")
    try:
        c = s.client()
        written = {f"k{i:04d}".encode(): os.urandom(512) for i in range(300)}
        for k, v in written.items():
            c.put(k, v)
        assert s.terminate() == 0  # a graceful stop closes the open segment
        closed, _ = segments(s)
        seg = os.path.join(raft_dir(s), closed[-1])
        at, good = flip_middle(seg)
        before = dir_state(raft_dir(s))

        assert_start_refused(s, "checksum mismatch", os.path.basename(seg))
        assert dir_state(raft_dir(s)) == before

        with open(seg, "r+b") as f:
            f.seek(at)
            f.write(good)
        s.restart()
        kvs, _ = all_kvs(s)
        assert {k: kvs[k][0] for k in written} == written
    finally:
        s.close()


def test_damaged_open_segment_is_refused(cairnd):
    """libraft cuts an open segment at its first entry that does not decode (a torn last write
    after a crash, it assumes), also when later entries were written whole: those are entries this
    member acknowledged and applied. The single member refuses to start without them (its store
    is ahead of its log), and goes on refusing."""
    s = start_server("cairnd")
    try:
        c = s.client()
        for i in range(300):
            c.put(f"k{i:04d}", os.urandom(512))
        time.sleep(1)  # the store commits its applies within 100 ms (raft/node.c)
        s.kill9()  # the open segment stays open
        _, open_segs = segments(s)
        biggest = max(open_segs, key=lambda n: os.path.getsize(os.path.join(raft_dir(s), n)))
        flip_middle(os.path.join(raft_dir(s), biggest))

        assert_start_refused(s, "the raft log in", "but the store has applied entries up to index")
        assert_start_refused(s, "the raft log in", "but the store has applied entries up to index")
    finally:
        s.close()


def test_raft_log_older_than_store_is_refused(cairnd):
    """A single member whose log ends below what its store applied lost acknowledged entries; it
    would put new entries at their indexes and skip them as applied. It refuses to start."""
    s = start_server("cairnd")
    try:
        for i in range(50):
            s.client().put(f"early{i}", "v")
        assert s.terminate() == 0
        old = os.path.join(s.dir, "raft.old")  # outside the data dir, which must hold only ours
        shutil.copytree(raft_dir(s), old)
        s.restart()
        for i in range(50):
            s.client().put(f"late{i}", "v")
        assert s.terminate() == 0
        new = os.path.join(s.dir, "raft.new")
        os.rename(raft_dir(s), new)
        os.rename(old, raft_dir(s))

        assert_start_refused(s, "the raft log in", "but the store has applied entries up to index")

        shutil.rmtree(raft_dir(s))
        os.rename(new, raft_dir(s))
        s.restart()
        kvs, _ = all_kvs(s)
        assert all(f"early{i}".encode() in kvs and f"late{i}".encode() in kvs for i in range(50))
    finally:
        s.close()
