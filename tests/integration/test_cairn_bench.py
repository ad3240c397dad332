"""cairn-bench, the load generator (etcd's benchmark tool's workloads), against both servers.

Each workload runs briefly against real etcd 3.4 and against cairnd; the -w json result must add
up (every request answered, histogram counts summing to the successes, min <= avg <= max,
percentiles monotonic) and the server must hold what the workload wrote. No timings are
asserted: those belong to `make bench-vs-etcd` (docs/BENCHMARKS.md).
"""

import json
import socket
import subprocess

import pytest

PCTLS = ["p10", "p25", "p50", "p75", "p90", "p95", "p99", "p99.9"]


def bench(binary, *args, timeout=120):
    p = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    assert "Sanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr
    return p


def bench_json(binary, server, *args):
    """Runs a workload with -w json against server; returns the parsed object."""
    p = bench(binary, "--endpoints", server.endpoint, "-w", "json", *args)
    assert p.returncode == 0, f"rc {p.returncode}: {p.stderr}"
    # Piped stderr: no progress bar, nothing else either after a clean run.
    assert p.stderr == "", p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1, p.stdout
    return json.loads(lines[0])


def check_numbers(r, total, errors=0):
    """The result of a run of `total` requests adds up."""
    assert r["requests"] == total
    assert r["errors"] == errors
    assert r["ok"] == total - errors
    assert sum(e["count"] for e in r["error_distribution"]) == errors
    assert r["total_ms"] > 0
    assert r["rps"] >= 0
    if r["ok"] == 0:
        return
    assert 0 < r["min_ms"] <= r["avg_ms"] <= r["max_ms"]
    assert r["stddev_ms"] >= 0
    pct = [r["percentiles_ms"][k] for k in PCTLS]
    assert pct == sorted(pct), pct
    assert r["min_ms"] <= pct[0] and pct[-1] <= r["max_ms"]
    hist = r["histogram"]
    assert len(hist) == 11
    assert sum(h["count"] for h in hist) == r["ok"]
    bounds = [h["le_ms"] for h in hist]
    assert bounds == sorted(bounds)
    assert bounds[0] == pytest.approx(r["min_ms"]) and bounds[-1] == pytest.approx(r["max_ms"])


def key_count(server):
    import etcd3

    rpc = etcd3.etcdrpc
    resp = server.client().kvstub.Range(
        rpc.RangeRequest(key=b"\0", range_end=b"\0", count_only=True), timeout=10)
    return resp.count, resp.header.revision


def zigzag_key(n, size=8):
    """Key number n as etcd's benchmark writes it: Go's PutVarint into a zeroed buffer."""
    u = n << 1
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out) + b"\0" * (size - len(out))


# ---- workloads against both servers


def test_put_sequential_keys(server, cairn_bench):
    r = bench_json(cairn_bench, server, "put", "--total", "300", "--clients", "8", "--conns", "2",
                   "--sequential-keys", "--key-space-size", "50", "--val-size", "32")
    check_numbers(r, 300)
    assert r["workload"] == "put" and r["clients"] == 8 and r["conns"] == 2
    assert r["endpoints"] == [server.endpoint]
    count, rev = key_count(server)
    assert count == 50
    assert rev == 1 + 300
    value, _ = server.client().get(zigzag_key(49))
    assert value is not None and len(value) == 32


def test_put_random_keys(server, cairn_bench):
    r = bench_json(cairn_bench, server, "put", "--total", "200", "--clients", "4",
                   "--key-space-size", "100000", "--key-size", "16")
    check_numbers(r, 200)
    count, rev = key_count(server)
    assert 1 <= count <= 200
    assert rev == 1 + 200


def test_put_defaults_one_key(server, cairn_bench):
    r = bench_json(cairn_bench, server, "put", "--total", "100")
    check_numbers(r, 100)
    assert key_count(server) == (1, 101)
    value, _ = server.client().get(zigzag_key(0))
    assert value is not None and len(value) == 8


def test_put_with_compaction(server, cairn_bench):
    r = bench_json(cairn_bench, server, "put", "--total", "400", "--clients", "4",
                   "--compact-interval", "20ms", "--compact-index-delta", "50")
    check_numbers(r, 400)


def test_txn_put(server, cairn_bench):
    r = bench_json(cairn_bench, server, "txn-put", "--total", "100", "--clients", "4",
                   "--txn-ops", "4", "--key-space-size", "400")
    check_numbers(r, 100)
    assert r["workload"] == "txn-put"
    # Txn i puts keys 4i .. 4i+3: every key once, one revision per txn.
    assert key_count(server) == (400, 101)


def test_txn_put_errors_are_counted(server, cairn_bench):
    # Two puts of the same key in one txn: every request fails with etcd's error.
    r = bench_json(cairn_bench, server, "txn-put", "--total", "30", "--txn-ops", "2",
                   "--key-space-size", "1")
    check_numbers(r, 30, errors=30)
    assert r["error_distribution"] == [
        {"error": "etcdserver: duplicate key given in txn request", "count": 30}]
    assert r["histogram"] == []


@pytest.mark.parametrize("consistency", ["l", "s"])
def test_range(server, cairn_bench, consistency):
    server.client().put("foo", "bar")
    r = bench_json(cairn_bench, server, "range", "foo", "--total", "500", "--clients", "16",
                   "--conns", "3", "--consistency", consistency)
    check_numbers(r, 500)
    assert r["workload"] == "range" and r["conns"] == 3


def test_range_with_end_and_rate(server, cairn_bench):
    for k in ("a", "b", "c"):
        server.client().put(k, "v")
    r = bench_json(cairn_bench, server, "range", "a", "c", "--total", "40", "--clients", "4",
                   "--rate", "2000")
    check_numbers(r, 40)


def test_target_leader(server, cairn_bench):
    r = bench_json(cairn_bench, server, "--target-leader", "put", "--total", "50")
    check_numbers(r, 50)
    assert len(r["endpoints"]) == 1
    assert r["endpoints"][0].endswith(f":{server.port}")


def test_text_report(server, cairn_bench):
    server.client().put("foo", "bar")
    p = bench(cairn_bench, "--endpoints", server.endpoint, "range", "foo", "--total", "200")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.startswith("bench with linearizable range\n")
    for part in ("\nSummary:\n", "  Total:\t", "  Slowest:\t", "  Fastest:\t", "  Average:\t",
                 "  Stddev:\t", "  Requests/sec:\t", "\nResponse time histogram:\n",
                 "\nLatency distribution:\n", "  50% in ", "  99.9% in ", "secs.\n",
                 "p50 ", "p90 ", "p99 ", "p99.9 "):
        assert part in out, f"{part!r} missing in:\n{out}"
    assert "Error distribution" not in out
    rows = [line for line in out.splitlines() if line.startswith("  ") and "[" in line
            and "|" in line]
    assert len(rows) == 11
    assert sum(int(line.split("[")[1].split("]")[0]) for line in rows) == 200
    assert p.stderr == ""


def test_text_report_errors(server, cairn_bench):
    p = bench(cairn_bench, "--endpoints", server.endpoint, "--precise", "txn-put", "--total",
              "10", "--txn-ops", "3", "--key-space-size", "2")
    assert p.returncode == 0, p.stderr
    assert "\nError distribution:\n  [10]\tetcdserver: duplicate key given in txn request\n" \
        in p.stdout


# ---- command line: no server needed


def test_help(cairn_bench):
    p = bench(cairn_bench, "--help")
    assert p.returncode == 0
    for cmd in ("put", "range", "txn-put", "watch", "watch-latency", "lease-keepalive"):
        assert cmd in p.stdout
    p = bench(cairn_bench, "put", "--help")
    assert p.returncode == 0
    for flag in ("--key-size", "--val-size", "--total", "--sequential-keys", "--key-space-size",
                 "--compact-interval", "--compact-index-delta", "--endpoints", "--conns",
                 "--clients", "--rate", "--target-leader", "--dial-timeout", "--write-out"):
        assert flag in p.stdout, flag
    p = bench(cairn_bench, "range", "-h")
    assert p.returncode == 0 and "--consistency" in p.stdout
    p = bench(cairn_bench, "watch-latency", "--help")
    assert p.returncode == 0
    for flag, default in (("--put-rate", 100), ("--put-total", 1000), ("--streams", 10),
                          ("--watchers-per-stream", 10), ("--key-size", 32), ("--val-size", 32)):
        (line,) = [x for x in p.stdout.splitlines() if x.split()[:1] == [flag]]
        assert line.endswith(f"(default {default})"), line  # etcd's defaults for the command
    p = bench(cairn_bench, "lease-keepalive", "--help")
    assert p.returncode == 0
    for flag in ("--total", "--leases", "--ttl", "--keep-leases", "--clients", "--conns"):
        assert flag in p.stdout, flag


@pytest.mark.parametrize("args", [
    ["frobnicate"],
    ["put", "--no-such-flag"],
    ["put", "-x"],
    ["put", "--total"],
    ["put", "--total", "abc"],
    ["put", "--total", "-5"],
    ["put", "--total", "0"],
    ["put", "--clients", "0"],
    ["put", "--conns", "0"],
    ["put", "--key-space-size", "0"],
    ["put", "--key-size", "0"],
    ["put", "--key-size", "1", "--key-space-size", "1000"],
    ["put", "--val-size", "99999999999"],
    ["put", "--compact-interval", "5 minutes"],
    ["put", "--sequential-keys=maybe"],
    ["put", "--consistency", "s"],
    ["put", "extra-argument"],
    ["range"],
    ["range", "a", "b", "c"],
    ["range", "foo", "--consistency", "x"],
    ["range", "foo", "--txn-ops", "2"],
    ["txn-put", "--txn-ops", "0"],
    ["txn-put", "--sequential-keys"],
    ["watch", "--val-size", "4"],
    ["watch", "--streams", "0"],
    ["watch", "--total", "5"],
    ["watch", "--watch-threads", "0"],
    ["watch", "--watch-threads", "65"],
    ["put", "--watch-threads", "2"],
    ["watch-latency", "--put-rate", "0"],
    ["watch-latency", "--watchers-per-stream", "0"],
    ["watch-latency", "--watch-per-stream", "5"],
    ["watch-latency", "--key-space-size", "5"],
    ["watch-latency", "--val-size", "7"],
    ["watch-latency", "--streams", "1000", "--watchers-per-stream", "1000", "--put-total", "100"],
    ["put", "--put-total", "5"],
    ["--endpoints", "", "put"],
    ["--endpoints", "a:1,,b:2", "put"],
    ["-w", "yaml", "put"],
    ["--dial-timeout", "soon", "put"],
    ["lease-keepalive", "--leases", "0"],
    ["lease-keepalive", "--leases", "1000001"],
    ["lease-keepalive", "--ttl", "0"],
    ["lease-keepalive", "--ttl", "9000000001"],
    ["lease-keepalive", "--keep-leases=perhaps"],
    ["lease-keepalive", "--key-size", "8"],
    ["lease-keepalive", "--rate", "100"],
    ["lease-keepalive", "extra-argument"],
    ["put", "--leases", "5"],
    ["watch", "--ttl", "5"],
])
def test_bad_flags(cairn_bench, args):
    p = bench(cairn_bench, *args, timeout=20)
    assert p.returncode != 0, p.stdout
    assert "Error: " in p.stderr
    assert p.stdout == ""


def test_bad_endpoint(cairn_bench):
    p = bench(cairn_bench, "--endpoints", "ftp://127.0.0.1:2379", "put", "--total", "5",
              timeout=20)
    assert p.returncode != 0
    assert p.stderr


def test_unreachable_endpoint(cairn_bench):
    # A port that nothing listens on (bound, then closed).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = bench(cairn_bench, "--endpoints", f"127.0.0.1:{port}", "put", "--total", "5",
              timeout=30)
    assert p.returncode == 1
    assert "dial error" in p.stderr and f"127.0.0.1:{port}" in p.stderr
    assert p.stdout == ""


@pytest.mark.parametrize("threads,conns", [(1, 2), (2, 3), (5, 3)])
def test_watch(server, cairn_bench, threads, conns):
    """The watch workload: every watcher gets every put's event, and the numbers add up, also with
    the streams spread unevenly over several receiving threads (more threads than connections:
    one per connection)."""
    r = bench_json(cairn_bench, server, "watch", "--streams", "4", "--watch-per-stream", "5",
                   "--put-total", "200", "--clients", "4", "--conns", str(conns),
                   "--watch-threads", str(threads),
                   "--key-space-size", "10", "--sequential-keys", "--val-size", "16")
    assert r["workload"] == "watch" and r["streams"] == 4 and r["watch_per_stream"] == 5
    assert r["watchers"] == 20
    assert r["expected_events"] == r["events"] == 200 * 20
    assert r["watch_errors"] == 0
    assert r["events_per_s"] > 0
    check_numbers(r["puts"], 200)
    ev = r["events_report"]
    assert ev["ok"] == 200 * 20
    pct = [ev["percentiles_ms"][k] for k in PCTLS]
    assert pct == sorted(pct) and ev["min_ms"] <= pct[0] and pct[-1] <= ev["max_ms"]
    count, rev = key_count(server)
    assert count == 10 and rev == 1 + 200
    # the keys are under the workload's prefix, values of --val-size bytes
    value, _ = server.client().get(b"watch-bench/" + zigzag_key(0, 32))
    assert value is not None and len(value) == 16


@pytest.mark.parametrize("threads", [1, 2])
def test_watch_latency(server, cairn_bench, threads):
    """etcd's watch-latency: watchers of one key, paced puts of it; every watcher gets every put's
    event, each timed from its put's answer."""
    r = bench_json(cairn_bench, server, "watch-latency", "--streams", "3",
                   "--watchers-per-stream", "4", "--put-total", "150", "--put-rate", "500",
                   "--val-size", "20", "--key-size", "12", "--conns", "2",
                   "--watch-threads", str(threads))
    assert r["workload"] == "watch-latency" and r["streams"] == 3 and r["watch_per_stream"] == 4
    assert r["watchers"] == 12
    assert r["expected_events"] == r["events"] == 150 * 12
    assert r["watch_errors"] == 0
    check_numbers(r["puts"], 150)
    ev = r["events_report"]
    assert ev["ok"] == 150 * 12
    pct = [ev["percentiles_ms"][k] for k in PCTLS]
    assert pct == sorted(pct) and ev["min_ms"] <= pct[0] and pct[-1] <= ev["max_ms"]
    count, rev = key_count(server)
    assert count == 1 and rev == 1 + 150  # one key, put 150 times


# ---- lease-keepalive


def lease_ids(server):
    import etcd3

    resp = server.client().leasestub.LeaseLeases(etcd3.etcdrpc.LeaseLeasesRequest(), timeout=10)
    return sorted(lease.ID for lease in resp.leases)


def test_lease_keepalive(server, cairn_bench):
    """--leases leases kept alive by the clients round robin: every keepalive answered, the leases
    left on the server (--keep-leases) with the TTL asked for."""
    import etcd3

    r = bench_json(cairn_bench, server, "lease-keepalive", "--total", "500", "--leases", "40",
                   "--clients", "6", "--conns", "2", "--ttl", "60", "--keep-leases")
    check_numbers(r, 500)
    assert r["workload"] == "lease-keepalive" and r["leases"] == 40 and r["ttl"] == 60
    assert r["clients"] == 6 and r["conns"] == 2 and r["endpoints"] == [server.endpoint]
    ids = lease_ids(server)
    assert len(ids) == 40
    for lease_id in (ids[0], ids[-1]):
        ttl = server.client().leasestub.LeaseTimeToLive(
            etcd3.etcdrpc.LeaseTimeToLiveRequest(ID=lease_id), timeout=10)
        assert ttl.grantedTTL == 60 and 0 < ttl.TTL <= 60
    assert key_count(server) == (0, 1)  # leases are not revisions


def test_lease_keepalive_defaults_revoke(server, cairn_bench):
    """One lease per client by default (etcd's benchmark), revoked after the run."""
    r = bench_json(cairn_bench, server, "lease-keepalive", "--total", "300", "--clients", "5")
    check_numbers(r, 300)
    assert r["leases"] == 5 and r["ttl"] == 100
    assert lease_ids(server) == []


def test_lease_keepalive_fewer_leases_than_clients(server, cairn_bench):
    r = bench_json(cairn_bench, server, "lease-keepalive", "--total", "200", "--clients", "8",
                   "--conns", "3", "--leases", "3", "--keep-leases")
    check_numbers(r, 200)
    assert len(lease_ids(server)) == 3


def test_lease_keepalive_text_report(server, cairn_bench):
    p = bench(cairn_bench, "--endpoints", server.endpoint, "lease-keepalive", "--total", "100",
              "--clients", "2", "--leases", "4")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("4 leases (TTL 100 s), 2 clients on 1 conns: 100 keepalives\n")
    assert "\nSummary:\n" in p.stdout and "  Requests/sec:\t" in p.stdout
    assert "Error distribution" not in p.stdout
    assert p.stderr == ""


def test_lease_keepalive_unreachable(cairn_bench):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = bench(cairn_bench, "--endpoints", f"127.0.0.1:{port}", "lease-keepalive", "--total", "5",
              timeout=30)
    assert p.returncode == 1
    assert "lease grant failed" in p.stderr
    assert p.stdout == ""
