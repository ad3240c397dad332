"""cairnctl against etcdctl 3.4 — the same commands on the same server must print the same bytes.

Every test that takes `server` runs against etcd 3.4 and against cairnd. Read-only commands run
etcdctl and cairnctl on the same server one after the other and compare stdout, stderr (with
"etcdctl" read as "cairnctl") and the exit code exactly. Writes change the state, so they run on
two fresh servers of the same kind with the same history: etcdctl on one, cairnctl on the other;
only the two servers' own member and cluster IDs are normalized. Timings (endpoint health's
"took") are the one other thing normalized.
"""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import ETCDCTL, clean_env, free_port

DIAL = ["--dial-timeout", "5s", "--command-timeout", "15s"]


def run(binary, endpoint, *args, input=None, env_extra=None, globals_=True, timeout=60):
    """Runs etcdctl (API v3) or cairnctl; returns (rc, stdout bytes, stderr text)."""
    env = clean_env(ETCDCTL_API="3", **(env_extra or {}))
    cmd = [binary]
    if globals_:
        cmd += ["--endpoints", endpoint, *DIAL]
    cmd += list(args)
    if isinstance(input, str):
        input = input.encode()
    p = subprocess.run(cmd, input=input if input is not None else b"", capture_output=True,
                       env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def clean_err(text):
    """stderr without etcd client's JSON log lines, with the program's name made one."""
    lines = [line for line in text.splitlines(keepends=True)
             if not line.startswith('{"level":')]
    return "".join(lines).replace("etcdctl", "cairnctl")


def error_lines(text):
    return [line for line in text.splitlines() if line.startswith("Error:")]


def assert_same(server, cairnctl, *args, input=None):
    """etcdctl and cairnctl on one server: identical exit code, stdout and stderr."""
    e = run(ETCDCTL, server.endpoint, *args, input=input)
    c = run(cairnctl, server.endpoint, *args, input=input)
    what = f"{' '.join(args)} on {server.kind}"
    assert c[0] == e[0], f"exit code of {what}: cairnctl {c[0]}, etcdctl {e[0]}; {c[2]!r}"
    assert c[1] == e[1], f"stdout of {what}:\ncairnctl {c[1]!r}\netcdctl  {e[1]!r}"
    assert clean_err(c[2]) == clean_err(e[2]), f"stderr of {what}: {c[2]!r} vs {e[2]!r}"
    return c


def setup_history(server):
    """The same history on any fresh server (revision 1 → 9)."""
    for args in (["put", "k1", "v1"], ["put", "k2", 'a "b"\tc'], ["put", "k3", "3"],
                 ["put", "k3", "33"], ["put", "dir/a", "é\x01"], ["put", "dir/b", ""],
                 ["del", "k2"], ["put", "k2", "again"]):
        server.ctl_ok(*args)


# --------------------------------------------------------------------------------------------
# read-only commands: same server, byte-identical output

READS = [
    ["get", "k1"],
    ["get", "k", "k4"],
    ["get", "--prefix", "k"],
    ["get", "--prefix", ""],
    ["get", "--from-key", "k2"],
    ["get", "--from-key", ""],
    ["get", "--prefix", "dir/", "--keys-only"],
    ["get", "--prefix", "k", "--print-value-only"],
    ["get", "--prefix", "k", "--limit", "2"],
    ["get", "--prefix", "k", "--limit=0x1"],
    ["get", "--prefix", "k", "--rev", "4"],
    ["get", "--prefix", "k", "--rev", "-1"],
    ["get", "--prefix", "k", "--sort-by", "value", "--order", "descend"],
    ["get", "--prefix", "k", "--sort-by=MODIFY"],
    ["get", "--prefix", "k", "--order=DESCEND"],
    ["get", "--prefix", "", "--sort-by", "create", "--order", "ascend"],
    ["get", "--prefix", "k", "--sort-by", "version"],
    ["get", "k3", "--consistency", "s"],
    ["get", "missing"],
    ["get", "--prefix", "dir/", "--hex"],
    ["get", "k1", "k2", "extra"],
    ["ge", "k1"],
    ["member", "list"],
    ["endpoint", "status"],
    ["endpoint", "hashkv"],
    ["endpoint", "hashkv", "--rev", "5"],
    ["alarm", "list"],
]
FORMATS = ["simple", "json", "fields", "protobuf", "table"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_reads_equal(server, cairnctl, fmt):
    setup_history(server)
    for args in READS:
        if fmt == "fields" and args[0] == "alarm":
            continue  # etcdctl crashes on Alarm's missing header (cairnctl prints the alarms)
        if "--print-value-only" in args and fmt != "simple":
            continue  # an error either way, tested in test_errors_equal
        assert_same(server, cairnctl, "-w", fmt, *args)


def test_reads_after_compaction(server, cairnctl):
    setup_history(server)
    server.ctl_ok("compaction", "4")
    for fmt in ("simple", "json", "fields"):
        assert_same(server, cairnctl, "-w", fmt, "get", "--prefix", "k", "--rev", "5")
        assert_same(server, cairnctl, "-w", fmt, "endpoint", "hashkv")
    rc, _, err = assert_same(server, cairnctl, "get", "k1", "--rev", "3")
    assert rc == 1 and error_lines(err) == [
        "Error: etcdserver: mvcc: required revision has been compacted"]
    rc, _, err = assert_same(server, cairnctl, "get", "k1", "--rev", "1000")
    assert rc == 1 and error_lines(err) == [
        "Error: etcdserver: mvcc: required revision is a future revision"]


def test_global_flags_anywhere(server, cairnctl):
    setup_history(server)
    assert_same(server, cairnctl, "get", "-w", "json", "k1")
    assert_same(server, cairnctl, "get", "k1", "--write-out=fields")
    assert_same(server, cairnctl, "-wjson", "get", "k1")
    assert_same(server, cairnctl, "get", "--", "k1")
    assert_same(server, cairnctl, "--hex", "get", "--prefix", "dir")


# --------------------------------------------------------------------------------------------
# writes: two fresh servers of the same kind, same history


def ids(server):
    st = json.loads(server.ctl_ok("-w", "json", "endpoint", "status"))[0]["Status"]["header"]
    return st["member_id"], st["cluster_id"]


def normalize_ids(data, server):
    """Replaces the server's member and cluster IDs (decimal and hex) by placeholders."""
    member, cluster = ids(server)
    for value, name in ((member, b"<member>"), (cluster, b"<cluster>")):
        data = data.replace(str(value).encode(), name).replace(f"{value:x}".encode(), name)
    return data


WRITES = [
    (["put", "k1", "new"], None),
    (["put", "k1", "newer", "--prev-kv"], None),
    (["put", "fresh", "--prev-kv"], "from stdin\n"),
    (["put", "k3", "--ignore-value"], None),
    (["put", "k1", "x", "--lease", "0"], None),
    (["put", "k1", "-w", "table", "t"], None),
    (["del", "k1", "--prev-kv"], None),
    (["del", "missing"], None),
    (["del", "dir/", "--prefix", "--prev-kv"], None),
    (["del", "k", "--from-key"], None),
    (["txn"], 'val("k1") = "v1"\n\nput k1 yes --prev-kv\nget k --prefix\ndel k3 --prev-kv\n\n'
              "get k1\n\n"),
    (["txn"], 'mod("k3") > "100"\nver("k1") = "1"\n\nput a b\n\nput k1 "failed \\"q\\"" '
              "--prev-kv\nget k1 --keys-only\n\n"),
    (["txn", "-i"], 'c("k2") != "0"\n\ndel k2\n\n\n'),
    (["txn"], "\n\n\n"),
    (["compaction", "3"], None),
    (["compaction", "--physical", "5"], None),
]


@pytest.mark.parametrize("fmt", ["simple", "json", "fields"])
def test_writes_equal(server_kind, servers, cairnctl, fmt):
    a, b = servers(server_kind), servers(server_kind)
    setup_history(a)
    setup_history(b)
    for args, stdin in WRITES:
        e = run(ETCDCTL, a.endpoint, "-w", fmt, *args, input=stdin)
        c = run(cairnctl, b.endpoint, "-w", fmt, *args, input=stdin)
        what = f"{' '.join(args)} -w {fmt} on {server_kind}"
        assert c[0] == e[0], f"exit code of {what}: {c[0]} vs {e[0]} ({c[2]!r} / {e[2]!r})"
        assert normalize_ids(c[1], b) == normalize_ids(e[1], a), f"stdout of {what}"
        assert clean_err(c[2]) == clean_err(e[2]), f"stderr of {what}"
    # and the two servers ended in the same state
    for fmt2 in ("json", "simple"):
        e = run(ETCDCTL, a.endpoint, "-w", fmt2, "get", "--prefix", "")
        c = run(cairnctl, b.endpoint, "-w", fmt2, "get", "--prefix", "")
        assert normalize_ids(c[1], b) == normalize_ids(e[1], a)


def test_put_value_from_stdin(server, cairnctl):
    rc, out, _ = run(cairnctl, server.endpoint, "put", "big", input=b"line 1\nline 2\n\0end")
    assert (rc, out) == (0, b"OK\n")
    assert server.ctl_ok("get", "big", "--print-value-only") == "line 1\nline 2\n\0end\n"
    # nothing on stdin: the usage error
    rc, _, err = assert_same(server, cairnctl, "put", "k")
    assert rc == 128


# --------------------------------------------------------------------------------------------
# errors: same exit code and the same "Error:" lines

ERRORS = [
    (["get"], None),
    (["get", "--prefix", "--from-key", "a"], None),
    (["get", "--prefix", "a", "b"], None),
    (["get", "a", "--order", "sideways"], None),
    (["get", "a", "--sort-by", "color"], None),
    (["get", "a", "--consistency", "x"], None),
    (["get", "a", "-w", "fields", "--print-value-only"], None),
    (["get", "a", "-w", "nope"], None),
    (["get", "a", "-w", "table"], None),
    (["put"], None),
    (["put", "a", "b", "--ignore-value"], None),
    (["put", "a", "b", "--lease", "zz"], None),
    (["put", "a", "b", "--lease", "8000000000000000"], None),
    (["del"], None),
    (["del", "a", "b", "c"], None),
    (["del", "--prefix", "--from-key", "a"], None),
    (["compaction"], None),
    (["compaction", "x"], None),
    (["compaction", "99999999999999999999"], None),
    (["compaction", "1000"], None),
    (["txn", "extra"], None),
    (["txn"], 'val("k1")="x"\n\n\n\n'),
    (["txn"], 'val("k1") ="x"\n\n\n\n'),
    (["txn"], 'nope("k1") = "x"\n\n\n\n'),
    (["txn"], 'ver("k1") = "one"\n\n\n\n'),
    (["txn"], "no parenthesis\n\n\n\n"),
    (["txn"], "\nput\n\n\n"),
    (["txn"], "\nput a\n\n\n"),
    (["txn"], "\nfrobnicate a b\n\n\n"),
    (["txn"], "\nput a b --bad\n\n\n"),
    (["txn"], 'c("a") > "0"\n'),
    (["txn"], "\n\nget a"),
    (["txn"], ""),
    (["alarm", "list", "extra"], None),
    (["alarm", "disarm", "extra"], None),
    (["nosuchcommand"], None),
    (["get", "--nosuchflag", "a"], None),
    (["get", "-x", "a"], None),
    (["get", "a", "--limit"], None),
    (["get", "a", "--limit", "ten"], None),
    (["get", "a", "--limit", "99999999999999999999"], None),
    (["get", "a", "--rev=1_0"], None),
    (["get", "a", "--prefix=maybe"], None),
    (["get", "a", "-w"], None),
    (["get", "a", "--command-timeout", "5"], None),
    (["get", "a", "--command-timeout", "5parsecs"], None),
    (["get", "a", "--dial-timeout=", "x"], None),
    (["get", "a", "---x"], None),
    (["endpoint", "status", "-w", "protobuf"], None),
    (["get", "a", "--command-timeout=-1s"], None),
]


def test_errors_equal(server, cairnctl):
    server.ctl_ok("put", "k1", "v1")
    for args, stdin in ERRORS:
        e = run(ETCDCTL, server.endpoint, *args, input=stdin)
        c = run(cairnctl, server.endpoint, *args, input=stdin)
        what = f"{' '.join(args)} (stdin {stdin!r}) on {server.kind}"
        assert c[0] == e[0], f"exit code of {what}: cairnctl {c[0]}, etcdctl {e[0]}: {c[2]!r}"
        assert error_lines(clean_err(c[2])) == error_lines(clean_err(e[2])), what
        if not error_lines(e[2]):
            assert c[1] == e[1], what


def test_unreachable_endpoint(cairnctl):
    ep = f"127.0.0.1:{free_port()}"
    for args in (["get", "a"], ["put", "a", "b"], ["endpoint", "hashkv"], ["member", "list"]):
        e = run(ETCDCTL, ep, "--command-timeout", "1s", *args, globals_=False,
                env_extra={"ETCDCTL_ENDPOINTS": ep})
        c = run(cairnctl, ep, "--command-timeout", "1s", *args, globals_=False,
                env_extra={"CAIRNCTL_ENDPOINTS": ep})
        assert c[0] == e[0] == 1, (args, c, e)
        assert error_lines(c[2]) == error_lines(e[2]) == ["Error: context deadline exceeded"], \
            (args, c[2])
    # endpoint status: the failure on stderr, exit 1, nothing printed
    e = run(ETCDCTL, ep, "--endpoints", ep, "--command-timeout", "1s", "endpoint", "status",
            globals_=False)
    c = run(cairnctl, ep, "--endpoints", ep, "--command-timeout", "1s", "endpoint", "status",
            globals_=False)
    assert c[0] == e[0] == 1 and c[1] == e[1] == b""
    assert clean_err(c[2]) == clean_err(e[2])


# --------------------------------------------------------------------------------------------
# endpoint health (timings differ), --cluster, alarms


def normalize_took(data):
    return re.sub(rb"(?i)(took\"?\s*[:=]\s*\"?)[0-9][0-9.a-z\xc2\xb5]*", rb"\1<took>", data)


def test_endpoint_health(server, cairnctl):
    for fmt in ("json", "fields"):
        e = run(ETCDCTL, server.endpoint, "-w", fmt, "endpoint", "health")
        c = run(cairnctl, server.endpoint, "-w", fmt, "endpoint", "health")
        assert c[0] == e[0] == 0
        assert normalize_took(c[1]) == normalize_took(e[1]), (c[1], e[1])
    e = run(ETCDCTL, server.endpoint, "endpoint", "health")
    c = run(cairnctl, server.endpoint, "endpoint", "health")
    assert c[0] == e[0] == 0 and c[1] == e[1] == b""
    assert normalize_took(clean_err(c[2]).encode()) == normalize_took(clean_err(e[2]).encode())
    # the table: same layout once the timing is the same width
    c = run(cairnctl, server.endpoint, "-w", "table", "endpoint", "health")
    assert c[0] == 0 and b"ENDPOINT" in c[1] and server.endpoint.encode() in c[1]
    # one endpoint down: listed unhealthy, "unhealthy cluster", exit 1
    dead = f"127.0.0.1:{free_port()}"
    for binary in (ETCDCTL, cairnctl):
        rc, out, err = run(binary, server.endpoint, "--endpoints", dead, "-w", "json",
                           "--command-timeout", "1s", "endpoint", "health", globals_=False,
                           env_extra={})
        assert rc == 1 and error_lines(err) == ["Error: unhealthy cluster"], (binary, err)
        assert json.loads(out) == [{"endpoint": dead, "health": False,
                                    "took": json.loads(out)[0]["took"],
                                    "error": "context deadline exceeded"}]


def test_endpoint_cluster(server, cairnctl):
    url = server.client_url
    # both servers commit their backend up to 100 ms after a write (cairnd's member publish at
    # start is one): compare the sizes in the status output only once they have settled
    settle_db_size(server)
    c = run(cairnctl, server.endpoint, "-w", "json", "endpoint", "status", "--cluster")
    assert c[0] == 0 and json.loads(c[1])[0]["Endpoint"] == url
    for fmt in ("simple", "json", "table", "fields"):
        assert_same(server, cairnctl, "-w", fmt, "endpoint", "status", "--cluster")
        assert_same(server, cairnctl, "-w", fmt, "endpoint", "hashkv", "--cluster")
    # the same rows as asking the member's URL directly
    d = run(cairnctl, url, "-w", "json", "endpoint", "hashkv")
    h = run(cairnctl, server.endpoint, "-w", "json", "endpoint", "hashkv", "--cluster")
    assert d[1] == h[1]
    # health: timing aside, the same
    e = run(ETCDCTL, server.endpoint, "-w", "json", "endpoint", "health", "--cluster")
    c = run(cairnctl, server.endpoint, "-w", "json", "endpoint", "health", "--cluster")
    assert c[0] == e[0] == 0 and normalize_took(c[1]) == normalize_took(e[1])


def settle_db_size(server, timeout=10):
    """Waits until the server's dbSize is the same in two Status answers 0.5 s apart."""
    end = time.monotonic() + timeout
    last = server.client().status().db_size
    while time.monotonic() < end:
        time.sleep(0.5)
        now = server.client().status().db_size
        if now == last:
            return
        last = now
    raise AssertionError(f"dbSize of {server.kind} still changing after {timeout} s")


def test_alarms(server_kind, servers, cairnctl):
    from test_python_client import fill_quota

    s = servers(server_kind, extra_args=["--quota-backend-bytes", str(4 << 20)])
    fill_quota(s)
    # etcd commits its backend up to 100 ms after a write, so its dbSize may still move: compare
    # the two CLIs' status output only once it has settled
    settle_db_size(s)
    for fmt in ("simple", "json", "protobuf"):
        assert_same(s, cairnctl, "-w", fmt, "alarm", "list")
    for fmt in ("simple", "json"):
        assert_same(s, cairnctl, "-w", fmt, "endpoint", "status")
    rc, out, _ = run(cairnctl, s.endpoint, "-w", "fields", "alarm", "list")
    assert rc == 0 and b'"AlarmType" : NOSPACE' in out
    rc, out, _ = run(cairnctl, s.endpoint, "alarm", "disarm")
    assert rc == 0 and out.endswith(b" alarm:NOSPACE \n") and out.startswith(b"memberID:")
    assert_same(s, cairnctl, "alarm", "list")
    assert run(cairnctl, s.endpoint, "alarm", "list")[1] == b""


# --------------------------------------------------------------------------------------------
# cairnctl's own: help, environment, --count-only, bad input


def help_flags(text):
    """The flag names of each section of an etcdctl-style help text."""
    sections, cur = {}, None
    for line in text.splitlines():
        if line.endswith(":") and not line.startswith((" ", "\t")):
            cur = line[:-1]
            sections[cur] = []
        elif cur in ("OPTIONS", "GLOBAL OPTIONS"):
            m = re.match(r"\s+(?:-\w, )?--([\w-]+)", line)
            if m:
                sections[cur].append(m.group(1))
    return sections


def assert_same_run(c, e, what):
    """cairnctl's run c and etcdctl's run e of the same command — (exit code, stdout, stderr) as
    run() returns them — agree: the code, stdout byte for byte (a flag error's help up to the
    global options, which ours words differently, and the same flags there), stderr but for
    timestamps."""
    assert c[0] == e[0], f"exit code of {what}: cairnctl {c[0]}, etcdctl {e[0]}; {c[2]!r}"
    if e[1].startswith(b"NAME:"):
        assert help_flags(c[1].decode()) == help_flags(e[1].decode()), what
        assert c[1].split(b"GLOBAL OPTIONS")[0].replace(b"cairnctl", b"etcdctl") == \
            e[1].split(b"GLOBAL OPTIONS")[0], what
    else:
        assert c[1] == e[1], f"stdout of {what}:\ncairnctl {c[1]!r}\netcdctl  {e[1]!r}"
    assert clean_err(c[2]) == clean_err(e[2]), f"stderr of {what}: {c[2]!r} vs {e[2]!r}"


HELP_PATHS = [["get"], ["put"], ["del"], ["txn"], ["compaction"], ["endpoint"],
              ["endpoint", "status"], ["endpoint", "health"], ["endpoint", "hashkv"],
              ["member"], ["member", "list"], ["alarm"], ["alarm", "list"], ["alarm", "disarm"]]


def test_help(cairnctl):
    for path in HELP_PATHS:
        ours = run(cairnctl, "", *path, "--help", globals_=False)
        again = run(cairnctl, "", "help", *path, globals_=False)
        theirs = run(ETCDCTL, "", *path, "--help", globals_=False)
        assert ours[0] == again[0] == theirs[0] == 0, path
        assert ours[1] == again[1], path
        o, t = help_flags(ours[1].decode()), help_flags(theirs[1].decode())
        # txn's help has a DESCRIPTION of its input grammar, etcdctl's has none
        assert set(o) - {"DESCRIPTION"} == set(t) - {"DESCRIPTION"}, (path, o.keys(), t.keys())
        extra = ["count-only"] if path == ["get"] else []
        assert o.get("OPTIONS") == sorted(t.get("OPTIONS", []) + extra), path
        assert o.get("GLOBAL OPTIONS") == t.get("GLOBAL OPTIONS"), path
        assert f"cairnctl {' '.join(path)}".encode() in ours[1]
    rc, out, _ = run(cairnctl, "", "--help", globals_=False)
    assert rc == 0 and all(f"\t{' '.join(p)}\t".encode() in out
                           for p in HELP_PATHS if p not in (["endpoint"], ["member"], ["alarm"]))
    rc, out, err = run(cairnctl, "", "help", "nosuch", globals_=False)
    assert rc == 0 and "Unknown help topic" in err and b"COMMANDS:" in out
    rc, out, _ = run(cairnctl, "", "version", globals_=False)
    assert rc == 0 and out.startswith(b"cairnctl version: ") and b"API version: 3.4" in out


def test_environment(server, cairnctl):
    server.ctl_ok("put", "k1", "v1")
    env = {"CAIRNCTL_ENDPOINTS": server.endpoint, "CAIRNCTL_WRITE_OUT": "json",
           "CAIRNCTL_COMMAND_TIMEOUT": "10s", "CAIRNCTL_DIAL_TIMEOUT": "3s"}
    rc, out, _ = run(cairnctl, "", "get", "k1", globals_=False, env_extra=env)
    assert rc == 0 and json.loads(out)["kvs"][0]["key"] == "azE="
    # flags beat the environment
    rc, out, _ = run(cairnctl, "", "-w", "simple", "get", "k1", globals_=False, env_extra=env)
    assert (rc, out) == (0, b"k1\nv1\n")
    # etcdctl's variables mean nothing to cairnctl
    rc, _, err = run(cairnctl, "", "--command-timeout", "1s", "get", "k1", globals_=False,
                     env_extra={"ETCDCTL_ENDPOINTS": server.endpoint,
                                "CAIRNCTL_ENDPOINTS": f"127.0.0.1:{free_port()}"})
    assert rc == 1 and error_lines(err) == ["Error: context deadline exceeded"]
    rc, _, err = run(cairnctl, "", "get", "k1", globals_=False,
                     env_extra=dict(env, CAIRNCTL_COMMAND_TIMEOUT="soon"))
    assert rc != 0 and error_lines(err) and "CAIRNCTL_COMMAND_TIMEOUT" in err


def test_count_only(server, cairnctl):
    for i in range(5):
        server.ctl_ok("put", f"c{i}", "x")
    rc, out, _ = run(cairnctl, server.endpoint, "-w", "fields", "get", "--prefix", "c",
                     "--count-only")
    assert rc == 0 and b'"Count" : 5\n' in out and b'"Key"' not in out
    rc, _, err = run(cairnctl, server.endpoint, "get", "--prefix", "c", "--count-only")
    assert rc == 128 and error_lines(err) == [
        "Error: --count-only is only for `--write-out=fields`"]


GARBAGE = [
    ["get", "\x01\x02"], ["get", "a", "--limit", "-9223372036854775808"],
    ["get", "a", "--rev", "9223372036854775807"], ["put", "", "v"], ["get", ""],
    ["del", ""], ["get", "a", "--command-timeout", "9999999999h"],
    ["get", "a", "--command-timeout", ".s"], ["get", "a", "--endpoints", ""],
    ["get", "a", "--endpoints", "not a host"], ["get", "a", "--endpoints", "https://x:1"],
    ["-", "get"], ["--", "get", "a"], ["get", "-", "a"], ["get", "-w=", "a"],
    ["endpoint", "bogus"], ["member", "bogus"], ["alarm"], ["get", "a", "--cert", ""],
    ["get", "a", "--cert", "c.pem"], ["get", "a", "--user", "root"], ["get", "a" * 100000],
    ["put", "k", "v" * 100000], ["compaction", "-1"], ["endpoint", "hashkv", "--rev", "-5"],
]


def test_garbage_never_crashes(server, cairnctl):
    for args in GARBAGE:
        rc, out, err = run(cairnctl, server.endpoint, "--command-timeout", "3s", *args)
        assert rc >= 0, f"cairnctl {args[:3]} died of signal {-rc}: {err[-500:]}"
        assert "Sanitizer" not in err and "runtime error" not in err, err[-2000:]
        if rc != 0:
            assert err.strip(), f"cairnctl {args[:3]} failed silently"
    # random bytes as txn input
    import random

    rnd = random.Random(7)
    for _ in range(30):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(200)))
        rc, _, err = run(cairnctl, server.endpoint, "txn", input=data + b"\n\n\n\n")
        assert rc >= 0 and "Sanitizer" not in err, (data, err[-2000:])


def test_sanitizer_build_if_present(server):
    """With SANITIZE=1 the fixture's build dir is build/san; this runs a few commands there."""
    from conftest import build_dir

    b = build_dir() / "cairnctl"
    if not os.access(b, os.X_OK):
        pytest.skip("cairnctl not built in this build dir")
    setup_history(server)
    for args in (["-w", "json", "get", "--prefix", ""], ["-w", "table", "endpoint", "status"],
                 ["-w", "fields", "member", "list"], ["endpoint", "health"], ["get"],
                 ["--bogus"], ["help", "txn"]):
        rc, _, err = run(str(b), server.endpoint, *args)
        assert "Sanitizer" not in err and "runtime error" not in err, err
