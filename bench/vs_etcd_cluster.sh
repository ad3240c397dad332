#!/usr/bin/env bash
# bench/vs_etcd_cluster.sh BUILD_DIR — three-member cairnd and etcd 3.4 clusters side by side
# under the same load generator (`make bench-vs-etcd-cluster`, which runs
# `VS_ETCD_CLUSTER=1 bash bench/vs_etcd.sh BUILD_DIR`; bench/vs_etcd.sh hands over to this file).
#
# First measures this disk's bound for one replicated write: the median time to append 4 KiB to a
# file and fdatasync it, in the file system of the data directories, and the median round trip of
# a loopback TCP ping-pong; the bound is leader fdatasync + follower fdatasync + round trip.
# Then starts a three-member cairnd cluster (BUILD_DIR/cairnd) and a three-member etcd 3.4 cluster
# (/usr/bin/etcd, default settings: it fsyncs its WAL), every member on 127.0.0.1 with free client
# and peer ports and a temporary data directory, both with the default election timeout (1000 ms)
# and heartbeat (100 ms) given explicitly, all six running for the whole benchmark. Each workload
# runs with --endpoints set to the three members of the cluster under test (puts with
# --target-leader) against one cluster and then the other, ROUNDS times, the order flipping every
# round; the median per workload and system is taken. Then it records every member's memory
# (VmRSS, VmHWM, RssAnon) and measures leader failover FAILOVERS times per system, alternating:
# find the leader (Maintenance.Status), kill -9 it, time from the kill to the first successful
# put through a surviving member, start the killed member again on its ports and data, and wait
# until the cluster is healthy. It writes two tables into docs/BENCHMARKS.md between the markers
#   <!-- vs-etcd-cluster:begin --> and <!-- vs-etcd-cluster:end -->
# (they are also printed). All six members are stopped and their data removed on exit, on
# failure and on Ctrl-C.
#
# Environment:
#   VS_ETCD_ROUNDS=N     rounds (default 3)
#   VS_ETCD_FAILOVERS=N  leader kills per system (default 5)
#   VS_ETCD_QUICK=1      a smoke run: small totals, one round, one failover per system,
#                        docs/BENCHMARKS.md left alone
#   VS_ETCD_NO_DOCS=1    print the table only
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B_ARG=${1:-build}
B=$B_ARG
[[ $B == /* ]] || B=$ROOT/$B
CAIRND=$B/cairnd
BENCH=$B/cairn-bench
ETCD=/usr/bin/etcd
ETCDCTL=/usr/bin/etcdctl
PY=/usr/bin/python3
DOC=$ROOT/docs/BENCHMARKS.md
ROUNDS=${VS_ETCD_ROUNDS:-3}
FAILOVERS=${VS_ETCD_FAILOVERS:-5}
QUICK=${VS_ETCD_QUICK:-0}
WRITE_DOCS=1
[[ $QUICK == 1 || ${VS_ETCD_NO_DOCS:-0} == 1 ]] && WRITE_DOCS=0
[[ $QUICK == 1 ]] && ROUNDS=1 FAILOVERS=1
MEMBERS=3
ELECTION_MS=1000 # both systems' default, given explicitly to both
HEARTBEAT_MS=100

for f in "$CAIRND" "$BENCH" "$ETCD" "$ETCDCTL" "$PY"; do
    [[ -x $f ]] || { echo "vs_etcd: $f is missing (make deps $B/cairnd $B/cairn-bench)" >&2; exit 1; }
done
"$PY" -c 'import etcd3' 2>/dev/null ||
    { echo "vs_etcd: python3-etcd3 is missing (make deps)" >&2; exit 1; }
# The servers must not pick up the caller's settings.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ETCD|CAIRN)' || true)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-vs-etcd-cluster.XXXXXX")
declare -A PID CPORT PPORT # key "KIND.I": process id, client port, peer port of member I
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local m
    for m in "${!PID[@]}"; do kill "${PID[$m]}" 2>/dev/null || true; done
    for m in "${!PID[@]}"; do
        local p=${PID[$m]}
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [[ $rc != 0 ]]; then
        for m in "${!PID[@]}"; do
            [[ -f $WORK/$m.log ]] && { echo "--- $m log (tail):" >&2; tail -n 15 "$WORK/$m.log" >&2; }
        done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The cluster helpers, in python3 with python3-etcd3 (gRPC):
#   disk DIR N          median µs of appending 4 KiB to a file in DIR + fdatasync, N times
#   rtt N               median µs of a 64-byte loopback TCP ping-pong between two processes
#   healthy SECS EP...  waits until every EP answers a linearizable Range and all agree on a
#                       leader among them; prints the leader's EP (exit 1 after SECS)
#   failover PID SECS EP...  kill -9 PID, then sends a put to each EP (the survivors) every
#                       20 ms, each with a 500 ms timeout, until one succeeds; prints the
#                       seconds from the kill to that success ("none" after SECS) and the
#                       errors seen before it
cat >"$WORK/cluster.py" <<'EOF'
import collections, os, signal, socket, statistics, sys, threading, time

signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once, also inside a gRPC call

def disk(d, n):
    path = os.path.join(d, "fdatasync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    page, us = b"\0" * 4096, []
    for _ in range(n):
        t = time.perf_counter_ns()
        os.write(fd, page)
        os.fdatasync(fd)
        us.append((time.perf_counter_ns() - t) / 1000)
    os.close(fd)
    os.unlink(path)
    print(f"{statistics.median(us):.0f}")

def rtt(n):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    if os.fork() == 0:  # the echo side
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(64):
            conn.sendall(data)
        os._exit(0)
    c = socket.create_connection(srv.getsockname())
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg, us = b"p" * 64, []
    for _ in range(n):
        t = time.perf_counter_ns()
        c.sendall(msg)
        got = 0
        while got < len(msg):
            got += len(c.recv(64))
        us.append((time.perf_counter_ns() - t) / 1000)
    c.close()
    os.wait()
    print(f"{statistics.median(us):.0f}")

def clients(eps):
    import etcd3
    return {ep: etcd3.client(ep.split(":")[0], int(ep.split(":")[1])) for ep in eps}

def healthy(secs, eps):
    import etcd3, grpc
    rpc = etcd3.etcdrpc
    deadline = time.monotonic() + secs
    # The client ports first: a gRPC channel that found nothing there backs off for seconds.
    for ep in eps:
        while socket.socket().connect_ex((ep.split(":")[0], int(ep.split(":")[1]))) != 0:
            if time.monotonic() > deadline:
                sys.exit(f"vs_etcd: {ep} never listened")
            time.sleep(0.05)
    cs, last = clients(eps), "nothing"
    while time.monotonic() < deadline:
        try:
            leader, ids = set(), {}
            for ep, c in cs.items():
                c.kvstub.Range(rpc.RangeRequest(key=b"\0"), timeout=2)
                st = c.maintenancestub.Status(rpc.StatusRequest(), timeout=2)
                leader.add(st.leader)
                ids[st.header.member_id] = ep
            last = f"leaders {sorted(leader)} of members {ids}"
            if len(leader) == 1 and (lead := leader.pop()) in ids:
                print(ids[lead])
                return
        except grpc.RpcError as e:
            last = f"{e.code().name} {e.details()!r}"
        time.sleep(0.1)
    sys.exit(f"vs_etcd: {' '.join(eps)} not healthy within {secs} s; last seen: {last}")

def failover(pid, secs, eps):
    import etcd3, grpc
    req = etcd3.etcdrpc.PutRequest(key=b"vs-failover", value=b"x")
    stubs = [c.kvstub for c in clients(eps).values()]
    for s in stubs:  # connections open before the clock starts
        s.Put(req, timeout=5)
    lock, done, first, errors = threading.Lock(), threading.Event(), [], collections.Counter()
    def answered(fut):
        now = time.monotonic()
        with lock:
            if fut.cancelled():
                return
            if fut.exception() is None:
                first.append(now)
                done.set()
            else:
                errors[f"{fut.exception().code().name} {fut.exception().details()!r}"] += 1
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    futs = []
    while not done.is_set() and time.monotonic() - t0 < secs:
        for s in stubs:
            futs.append(s.Put.future(req, timeout=0.5))
            futs[-1].add_done_callback(answered)
        done.wait(0.02)
    for f in futs:
        f.cancel()
    with lock:
        took = f"{min(first) - t0:.3f}" if first else "none"
        seen = "; ".join(f"{n} × {e}" for e, n in errors.most_common(3)) or "none"
    print(f"{took} errors before: {seen}")

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "disk":
    disk(args[0], int(args[1]))
elif cmd == "rtt":
    rtt(int(args[0]))
elif cmd == "healthy":
    healthy(float(args[0]), args[1:])
elif cmd == "failover":
    failover(int(args[0]), float(args[1]), args[2:])
EOF
cluster() { "$PY" "$WORK/cluster.py" "$@"; }

free_ports() { # prints N ports that nothing listens on right now
    "$PY" - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

endpoints() { # endpoints KIND [SKIP]: the members' client endpoints, but member SKIP's
    local kind=$1 skip=${2:--1} i eps=()
    for ((i = 0; i < MEMBERS; i++)); do
        ((i == skip)) || eps+=("127.0.0.1:${CPORT[$kind.$i]}")
    done
    echo "${eps[*]}"
}

member_at() { # member_at KIND EP: the number of KIND's member whose client endpoint is EP
    local i
    for ((i = 0; i < MEMBERS; i++)); do
        [[ $2 == "127.0.0.1:${CPORT[$1.$i]}" ]] && { echo "$i"; return; }
    done
    echo "vs_etcd: $2 is no $1 member" >&2
    return 1
}

launch() { # launch KIND I: starts member I (again: same ports and data dir), waits for nothing
    local kind=$1 i=$2 bin m=$1.$2 cluster="" j
    for ((j = 0; j < MEMBERS; j++)); do
        cluster+="${cluster:+,}m$j=http://127.0.0.1:${PPORT[$kind.$j]}"
    done
    local curl=http://127.0.0.1:${CPORT[$m]} purl=http://127.0.0.1:${PPORT[$m]}
    local args=(--name "m$i" --data-dir "$WORK/$m.data" --listen-client-urls "$curl"
                --advertise-client-urls "$curl" --listen-peer-urls "$purl"
                --initial-advertise-peer-urls "$purl" --initial-cluster "$cluster"
                --initial-cluster-state new --initial-cluster-token "vs-etcd-cluster-$kind"
                --election-timeout "$ELECTION_MS" --heartbeat-interval "$HEARTBEAT_MS")
    if [[ $kind == etcd ]]; then
        bin=$ETCD
        args+=(--logger zap --log-level warn)
    else
        bin=$CAIRND
    fi
    echo "===== vs_etcd: start $(date -u +%T.%N)" >>"$WORK/$m.log"
    "$bin" "${args[@]}" </dev/null >>"$WORK/$m.log" 2>&1 &
    PID[$m]=$!
}

alive() { # alive KIND: fails, naming the member, unless all of KIND's members run
    local i
    for ((i = 0; i < MEMBERS; i++)); do
        kill -0 "${PID[$1.$i]}" 2>/dev/null || { echo "vs_etcd: $1 member m$i exited" >&2; return 1; }
    done
}

# name | target ratio | cairn-bench arguments (after --endpoints of the three members, -w json)
VAL=256
KS=100000
if [[ $QUICK == 1 ]]; then
    T_PUT1=500 T_PUT256=5000 T_RANGE=10000
else
    T_PUT1=10000 T_PUT256=120000 T_RANGE=200000
fi
WORKLOADS=(
    "put, 1 client, 1 conn|1.5|--target-leader put --clients 1 --conns 1 --val-size $VAL --key-space-size $KS --total $T_PUT1"
    "put, 256 clients, 16 conns|2|--target-leader put --clients 256 --conns 16 --val-size $VAL --key-space-size $KS --total $T_PUT256"
    "range linearizable, 256 clients, 16 conns|2|range foo --consistency l --clients 256 --conns 16 --total $T_RANGE"
    "range serializable, 256 clients, 16 conns|3|range foo --consistency s --clients 256 --conns 16 --total $T_RANGE"
)

echo "vs_etcd: measuring the disk and the loopback (work dir $WORK)" >&2
FSYNC_US=$(cluster disk "$WORK" 300)
RTT_US=$(cluster rtt 1000)
echo "vs_etcd: 4 KiB append + fdatasync median $FSYNC_US µs, loopback round trip median $RTT_US µs" >&2

echo "vs_etcd: starting three cairnd and three etcd members" >&2
read -r -a ports < <(free_ports $((4 * MEMBERS)))
for kind in cairn etcd; do
    for ((i = 0; i < MEMBERS; i++)); do
        CPORT[$kind.$i]=${ports[0]} PPORT[$kind.$i]=${ports[1]}
        ports=("${ports[@]:2}")
    done
done
for kind in cairn etcd; do
    for ((i = 0; i < MEMBERS; i++)); do launch "$kind" "$i"; done
done
for kind in cairn etcd; do
    # shellcheck disable=SC2046 # the endpoints are a word list on purpose
    lead=$(cluster healthy 60 $(endpoints "$kind"))
    echo "vs_etcd: $kind cluster healthy, leader $lead" >&2
done
# The key the range workloads read: "foo" with a 256-byte value, on both.
VALUE=$(head -c $VAL /dev/zero | tr '\0' v)
for kind in cairn etcd; do
    list=$(endpoints "$kind")
    ETCDCTL_API=3 "$ETCDCTL" --endpoints "${list// /,}" put foo "$VALUE" >/dev/null
done

mkdir -p "$WORK/res"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(cairn etcd); else order=(etcd cairn); fi
    for i in "${!WORKLOADS[@]}"; do
        IFS='|' read -r name _ args <<<"${WORKLOADS[$i]}"
        for kind in "${order[@]}"; do
            out=$WORK/res/$i.$kind.$r.json
            list=$(endpoints "$kind")
            # shellcheck disable=SC2086 # args is a word list on purpose
            if ! "$BENCH" --endpoints "${list// /,}" -w json $args >"$out" 2>"$out.err"; then
                echo "vs_etcd: cairn-bench failed on $kind ($name):" >&2
                cat "$out.err" >&2
                exit 1
            fi
            "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("vs_etcd: round %s %-42s %-5s %10.0f req/s  avg %6.2f ms  p99 %7.2f ms  errors %d" % (sys.argv[2], sys.argv[3], sys.argv[4], r["rps"], r["avg_ms"], r["percentiles_ms"]["p99"], r["errors"]))' \
                "$out" "$r" "$name" "$kind" >&2
            alive "$kind"
        done
    done
done

mem() { # mem PID: "VmRSS VmHWM RssAnon" in KiB
    awk '/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} /^RssAnon:/{a=$2} END{print r, h, a}' "/proc/$1/status"
}
for kind in cairn etcd; do
    for ((i = 0; i < MEMBERS; i++)); do echo "$kind $i $(mem "${PID[$kind.$i]}")"; done
done >"$WORK/mem"

# Leader failover, alternating the systems as the rounds do.
for ((f = 1; f <= FAILOVERS; f++)); do
    if ((f % 2)); then order=(cairn etcd); else order=(etcd cairn); fi
    for kind in "${order[@]}"; do
        # shellcheck disable=SC2046
        lead=$(cluster healthy 60 $(endpoints "$kind"))
        i=$(member_at "$kind" "$lead")
        # shellcheck disable=SC2046
        got=$(cluster failover "${PID[$kind.$i]}" 30 $(endpoints "$kind" "$i"))
        wait "${PID[$kind.$i]}" 2>/dev/null || true
        echo "vs_etcd: failover $f $kind: killed leader m$i, first write after ${got%% *} s (${got#* })" >&2
        echo "${got%% *}" >>"$WORK/failover.$kind"
        launch "$kind" "$i"
        # shellcheck disable=SC2046
        cluster healthy 60 $(endpoints "$kind") >/dev/null
        alive "$kind"
    done
done

COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]]; then COMMIT="$COMMIT (with uncommitted changes)"; fi
CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
ETCD_VERSION=$("$ETCD" --version 2>/dev/null | awk '/^etcd Version/{print $3}')
DATE=$(date -u +%Y-%m-%d)
NPROC=$(nproc)

export VS_ROUNDS=$ROUNDS VS_FAILOVERS=$FAILOVERS VS_BUILD_ARG=$B_ARG VS_COMMIT=$COMMIT
export VS_CPU="$CPU ($NPROC CPUs)" VS_ETCD_VERSION=$ETCD_VERSION VS_DATE=$DATE
export VS_FSYNC_US=$FSYNC_US VS_RTT_US=$RTT_US
printf '%s\n' "${WORKLOADS[@]}" >"$WORK/workloads"
"$PY" - "$WORK" "$DOC" "$WRITE_DOCS" <<'EOF'
import json, os, statistics, sys

work, doc, write_docs = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rounds, failovers = int(os.environ["VS_ROUNDS"]), int(os.environ["VS_FAILOVERS"])
workloads = [line.rstrip("\n").split("|") for line in open(f"{work}/workloads") if line.strip()]

def runs(i, kind):
    return [json.load(open(f"{work}/res/{i}.{kind}.{r}.json")) for r in range(1, rounds + 1)]

def verdict(ok):
    return "PASS" if ok else "MISS"

rows = [
    "| workload | cairn req/s | etcd req/s | cairn/etcd | target | | cairn p99 ms | etcd p99 ms |",
    "|---|--:|--:|--:|--:|---|--:|--:|",
]
errors, avg_ms = [], {}
for i, (name, target, args) in enumerate(workloads):
    c, e = runs(i, "cairn"), runs(i, "etcd")
    c_rps = statistics.median(r["rps"] for r in c)
    e_rps = statistics.median(r["rps"] for r in e)
    c_p99 = statistics.median(r["percentiles_ms"]["p99"] for r in c)
    e_p99 = statistics.median(r["percentiles_ms"]["p99"] for r in e)
    if i == 0:
        avg_ms = {"cairn": statistics.median(r["avg_ms"] for r in c),
                  "etcd": statistics.median(r["avg_ms"] for r in e)}
    ratio = c_rps / e_rps if e_rps else float("inf")
    v = verdict(ratio >= float(target))
    for kind, rs in (("cairn", c), ("etcd", e)):
        n = sum(r["errors"] for r in rs)
        if n:
            errors.append(f"{name} on {kind}: {n} failed requests "
                          f"({rs[0]['error_distribution'][:1]})")
            v = "MISS (errors)"
    rows.append(f"| {name} | {c_rps:,.0f} | {e_rps:,.0f} | {ratio:.2f} | ≥ {target} | {v} "
                f"| {c_p99:.2f} | {e_p99:.2f} |")

# The disk's bound for one replicated write, and put-1-client's average latency against it.
fsync_us, rtt_us = int(os.environ["VS_FSYNC_US"]), int(os.environ["VS_RTT_US"])
bound_us = 2 * fsync_us + rtt_us
c_bound, e_bound = (avg_ms[k] * 1000 / bound_us for k in ("cairn", "etcd"))

# Failover: seconds from the kill to the first write, per round; "none" if no write came.
took = {k: [l.strip() for l in open(f"{work}/failover.{k}")] for k in ("cairn", "etcd")}
fo_median = {}
for k, ts in took.items():
    ok = [float(t) for t in ts if t != "none"]
    fo_median[k] = statistics.median(ok) if ok else float("inf")
    if len(ok) < len(ts):
        errors.append(f"leader failover on {k}: no write within 30 s in {len(ts) - len(ok)} "
                      f"of {len(ts)} rounds")
fo_ratio = fo_median["cairn"] / fo_median["etcd"] if fo_median["etcd"] else float("inf")

mem = {"cairn": [], "etcd": []}
for line in open(f"{work}/mem"):
    kind, _, rss, hwm, anon = line.split()
    mem[kind].append((int(rss), int(hwm), int(anon)))
mib = lambda k: f"{k / 1024:.1f} MiB"
def mem_row(label, col):
    c = [m[col] for m in mem["cairn"]]
    e = [m[col] for m in mem["etcd"]]
    ca, ea = sum(c) / len(c), sum(e) / len(e)
    ratio = ca / ea if ea else float("inf")
    return (f"| {label} | {mib(ca)} ({mib(max(c))}) | {mib(ea)} ({mib(max(e))}) | {ratio:.2f} "
            f"| ≤ 0.25 | {verdict(ratio <= 0.25)} |")

rows += [
    "",
    "| measure | cairn | etcd | ratio | target | |",
    "|---|--:|--:|--:|--:|---|",
    f"| put, 1 client: average latency, and its ratio to the disk bound per write "
    f"({bound_us} µs) | {avg_ms['cairn']:.3f} ms ({c_bound:.2f}×) | {avg_ms['etcd']:.3f} ms "
    f"({e_bound:.2f}×) | {c_bound:.2f} | ≤ 2 | {verdict(c_bound <= 2)} |",
    f"| leader failover: kill -9 to the first write, median of {failovers}, and cairn/etcd "
    f"| {fo_median['cairn']:.2f} s | {fo_median['etcd']:.2f} s | {fo_ratio:.2f} | | |",
    mem_row("member memory after the runs: VmRSS, average (max), and cairn/etcd", 0),
    mem_row("member memory after the runs: RssAnon (VmRSS without file pages), average (max)", 2),
]

members = lambda k: ", ".join(f"m{i} {mib(r)} / {mib(h)} / {mib(a)}"
                              for i, (r, h, a) in enumerate(mem[k]))
lines = [
    f"Run on {os.environ['VS_DATE']} at commit {os.environ['VS_COMMIT']}: "
    f"`make bench-vs-etcd-cluster` (= `VS_ETCD_CLUSTER=1 bash bench/vs_etcd.sh "
    f"{os.environ['VS_BUILD_ARG']}`), {rounds} round{'s' if rounds != 1 else ''}, median per "
    f"workload; {failovers} failover{'s' if failovers != 1 else ''} per system; etcd "
    f"{os.environ['VS_ETCD_VERSION']}; {os.environ['VS_CPU']}.",
    "",
    *rows,
    "",
    f"Disk bound per write = leader fdatasync {fsync_us} µs + follower fdatasync {fsync_us} µs "
    f"+ loopback round trip {rtt_us} µs = {bound_us} µs (medians: 4 KiB appended to a file and "
    "fdatasync'd, 300 times, in the data directories' file system; a 64-byte TCP ping-pong "
    "between two python3 processes, 1000 times).",
    "",
    f"Failover, seconds from the kill to the first write: cairn {', '.join(took['cairn'])}; "
    f"etcd {', '.join(took['etcd'])}.",
    "",
    f"Memory per member after the runs (VmRSS / VmHWM / RssAnon): cairnd {members('cairn')}; "
    f"etcd {members('etcd')}.",
    "",
    "The cairn-bench command of each workload (after `--endpoints EP1,EP2,EP3 -w json`):",
    "",
    *[f"- {name}: `{args}`" for name, target, args in workloads],
]
if errors:
    lines += ["", "Failed requests:", *[f"- {e}" for e in errors]]
table = "\n".join(lines)
print(table)

if write_docs:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(doc)), "..", "bench"))
    from docblock import write_block
    write_block(doc, "vs-etcd-cluster", table)
    print(f"vs_etcd: table written to {doc}", file=sys.stderr)
EOF
