"""cairnd when its disk fills up: a clear error, never a crash, never a lost acknowledged write.

The data directory lives on a small tmpfs mounted for the test (root only; skipped elsewhere),
filled with sequential 4 KiB puts. Which file meets the full disk first depends on the size and on
timing (a snapshot may run first):
- libraft's log cannot prepare its next segment: the member refuses writes with
  RESOURCE_EXHAUSTED "cairn: no space left on the data directory's disk", goes on serving reads,
  and takes writes again once space is freed;
- the store cannot commit what the log already committed: it cannot skip those entries, so the
  member stops, exit status 1, saying why (as etcd stops when bbolt cannot commit).
Either way, once the disk has room again a restart finds every acknowledged write with its value.
"""
import contextlib
import os
import subprocess
import tempfile
import time

import pytest

from conftest import Server, require_kind

NO_SPACE = "cairn: no space left on the data directory's disk"
VALUE_SIZE = 4096


@contextlib.contextmanager
def small_disk(size):
    """A tmpfs of size mounted on a fresh directory; unmounted and removed afterwards."""
    d = tempfile.mkdtemp(prefix="cairn-it-disk-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", d],
                       capture_output=True, text=True)
    if p.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip() or p.returncode}")
    try:
        yield d
    finally:
        if subprocess.run(["umount", d], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", d], capture_output=True)
        os.rmdir(d)


def grow(disk, size):
    subprocess.run(["mount", "-o", f"remount,size={size}", disk], check=True)


def fill(s):
    """Puts k000000, k000001, ... until one fails. Returns (acknowledged {key: value}, the error)."""
    c = s.client()
    acked = {}
    for i in range(100000):
        key, value = f"k{i:06d}", os.urandom(VALUE_SIZE // 2).hex()
        try:
            c.put(key, value)
        except Exception as e:  # noqa: BLE001 - the error is what the test looks at
            return acked, e
        acked[key] = value
    pytest.fail(f"{len(acked)} puts of {VALUE_SIZE} bytes fit on the small disk")


def exit_status(s, timeout=30):
    try:
        return s.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("size", ["20m", "45m"])
def test_full_disk_is_a_clear_error_and_loses_nothing(size):
    require_kind("cairnd")
    import grpc

    with small_disk(size) as disk:
        s = Server("cairnd")
        s.data_dir = os.path.join(disk, "data")
        try:
            s.start()
            acked, err = fill(s)
            assert len(acked) > 100, f"only {len(acked)} puts before {err!r}"

            code = getattr(err, "code", lambda: None)()
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                # the log is full: refused, the member goes on serving reads
                print(f"{size}: the log met the full disk after {len(acked)} puts")
                assert NO_SPACE in err.details(), err.details()
                assert s.alive()
                c = s.client()
                first = next(iter(acked))
                assert c.get(first)[0].decode() == acked[first]
                again = None
                for _ in range(3):  # still full: still refused, the same way
                    try:
                        c.put("k-refused", "x")
                    except grpc.RpcError as e:
                        again = e
                    else:
                        pytest.fail("a put succeeded on a full disk")
                assert again.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                grow(disk, "512m")
                deadline = time.monotonic() + 30
                while True:  # libraft prepares its next segment again on its own
                    try:
                        c.put("k-after", "room again")
                        break
                    except grpc.RpcError as e:
                        assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
                        assert time.monotonic() < deadline, "writes refused after space was freed"
                        time.sleep(0.2)
                acked["k-after"] = "room again"
                s.kill9()
            else:
                # the store is full: the member stops, saying why
                print(f"{size}: the store met the full disk after {len(acked)} puts")
                assert exit_status(s) == 1, f"still running after {err!r}"
                assert NO_SPACE in s.log_since_start(), s.log_tail()
                grow(disk, "512m")
            assert "Sanitizer" not in s.log_since_start(), s.log_tail()

            s.restart()
            c = s.client()
            wrong = [k for k, v in acked.items()
                     if (c.get(k)[0] or b"").decode() != v]
            assert not wrong, f"{len(wrong)} of {len(acked)} acknowledged writes lost: {wrong[:5]}"
            c.put("k-restarted", "ok")
            assert c.get("k-restarted")[0] == b"ok"
        finally:
            s.close()


@pytest.fixture
def cluster(request):
    """A factory: cluster(n) starts n cairnd members (conftest.cluster_factory)."""
    from conftest import cluster_factory

    with cluster_factory(request) as make:
        yield make


def test_full_disk_on_a_follower_stops_nothing_else(cluster):
    """One follower's data directory is on a small tmpfs. Writes through the leader fill it and go
    on being acknowledged (the other two are a quorum); the follower refuses or stops with the
    no-space error, never a crash. With room made and the follower restarted, all three agree on
    every key."""
    import shutil

    from cluster import etcdctl_at

    c = cluster(3)
    c.wait_published()
    lead = c.leader()
    small = next(m for m in c if m is not lead)
    with small_disk("24m") as disk:
        assert small.terminate() == 0
        shutil.copytree(small.data_dir, os.path.join(disk, "data"))
        shutil.rmtree(small.data_dir)
        small.data_dir = os.path.join(disk, "data")
        try:
            c.restart(small)
            lead = c.leader()
            if lead is small:
                other = next(m for m in c if m is not small)
                rc, out, err = etcdctl_at(c.endpoints(), "move-leader", f"{other.id:x}")
                assert rc == 0, (out, err)
                lead = c.leader()
            assert lead is not small

            acked = {}
            cl = lead.client()
            more = None  # puts left once the follower stopped
            for i in range(10000):  # 40 MiB of values, more than the follower's disk holds
                key, value = f"big/{i:05d}", os.urandom(VALUE_SIZE // 2).hex()
                cl.put(key, value)  # raises if the quorum of the other two fails
                acked[key] = value
                if more is None and i % 100 == 0 and not small.alive():
                    more = 300
                elif more is not None:
                    more -= 1
                    if more == 0:
                        break
            log = small.log_since_start()
            assert NO_SPACE in log or "no space" in log.lower(), small.log_tail()
            assert "Sanitizer" not in log, small.log_tail()
            if not small.alive():
                assert small.proc.returncode == 1, small.log_tail()

            grow(disk, "512m")
            if small.alive():
                small.terminate()
            c.restart(small)
            c.wait_converged()
            r = small.range("big/", prefix=True, serializable=True, count_only=True)
            assert r.count == len(acked)
            for key in list(acked)[::97]:  # and values, a sample; HashKV compares them all
                assert small.range(key, serializable=True).kvs[0].value.decode() == acked[key]
            hashes = c.hashkvs(0)
            assert len(set(hashes.values())) == 1, hashes
        finally:
            small.kill9()
