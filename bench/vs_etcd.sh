#!/usr/bin/env bash
# bench/vs_etcd.sh BUILD_DIR — cairnd and etcd 3.4 side by side under the same load generator
# (`make bench-vs-etcd` runs it with its build directory).
#
# Starts a single-member cairnd (BUILD_DIR/cairnd) and a single-member etcd 3.4 (/usr/bin/etcd,
# Debian's etcd-server, default settings: it fsyncs its WAL) on 127.0.0.1 with free ports and
# temporary data directories, runs each workload against one and then the other, ROUNDS times
# (the order flips every round, so that a noisy machine or a warm cache affects both), and takes
# the median per workload and server. Then it records both servers' memory (VmRSS, VmHWM,
# RssAnon) and writes a table into docs/BENCHMARKS.md between the markers
#   <!-- vs-etcd:begin --> and <!-- vs-etcd:end -->
# (the table is also printed). Both servers are stopped and their data removed on exit, on
# failure and on Ctrl-C.
#
# Environment:
#   VS_ETCD_ROUNDS=N   rounds (default 3)
#   VS_ETCD_QUICK=1    a smoke run: small totals, one round, docs/BENCHMARKS.md left alone
#   VS_ETCD_NO_DOCS=1  print the table only
#   VS_ETCD_WATCH=1    watch memory instead: bytes per watch stream and per watching on each server
#                      (bench/watch_mem.py), table between <!-- vs-etcd-watch:begin/end -->
#                      (`make bench-vs-etcd-watch`)
#   VS_ETCD_LEASE=1    lease keepalive throughput instead: cairn-bench lease-keepalive with 10,000
#                      leases on each server, table between <!-- vs-etcd-lease:begin/end -->
#                      (`make bench-vs-etcd-lease`)
#   VS_ETCD_CLUSTER=1  three-member clusters instead, with leader failover and the disk's bound per
#                      write: bench/vs_etcd_cluster.sh (`make bench-vs-etcd-cluster`)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ${VS_ETCD_CLUSTER:-0} == 1 ]]; then exec bash "$ROOT/bench/vs_etcd_cluster.sh" "$@"; fi
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
QUICK=${VS_ETCD_QUICK:-0}
WRITE_DOCS=1
[[ $QUICK == 1 || ${VS_ETCD_NO_DOCS:-0} == 1 ]] && WRITE_DOCS=0
[[ $QUICK == 1 ]] && ROUNDS=1

for f in "$CAIRND" "$BENCH" "$ETCD" "$ETCDCTL" "$PY"; do
    [[ -x $f ]] || { echo "vs_etcd: $f is missing (make deps $B/cairnd $B/cairn-bench)" >&2; exit 1; }
done
# The servers must not pick up the caller's settings.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ETCD|CAIRN)' || true)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-vs-etcd.XXXXXX")
declare -A PID PORT
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for kind in cairn etcd; do
        local p=${PID[$kind]:-}
        [[ -n $p ]] || continue
        kill "$p" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [[ $rc != 0 ]]; then
        for kind in cairn etcd; do
            [[ -f $WORK/$kind.log ]] && { echo "--- $kind log (tail):" >&2; tail -n 15 "$WORK/$kind.log" >&2; }
        done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_ports() { # prints N ports that nothing listens on right now
    "$PY" - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

start() { # start KIND: launches the server, waits until a linearizable read succeeds
    local kind=$1 client peer bin
    read -r client peer < <(free_ports 2)
    local curl=http://127.0.0.1:$client purl=http://127.0.0.1:$peer
    local args=(--name vs --data-dir "$WORK/$kind.data" --listen-client-urls "$curl"
                --advertise-client-urls "$curl" --listen-peer-urls "$purl"
                --initial-advertise-peer-urls "$purl" --initial-cluster "vs=$purl"
                --initial-cluster-state new)
    if [[ $kind == etcd ]]; then
        bin=$ETCD
        args+=(--logger zap --log-level warn)
    else
        bin=$CAIRND
    fi
    "$bin" "${args[@]}" </dev/null >"$WORK/$kind.log" 2>&1 &
    PID[$kind]=$!
    PORT[$kind]=$client
    local deadline=$((SECONDS + 30))
    until "$BENCH" --endpoints "127.0.0.1:$client" range vs-ready --total 1 -w json \
            >/dev/null 2>&1; do
        kill -0 "${PID[$kind]}" 2>/dev/null || { echo "vs_etcd: $kind exited" >&2; exit 1; }
        ((SECONDS < deadline)) || { echo "vs_etcd: $kind not ready within 30 s" >&2; exit 1; }
        sleep 0.2
    done
}

# name | target ratio | cairn-bench arguments (the --endpoints come first)
VAL=256
KS=100000
if [[ $QUICK == 1 ]]; then
    T_PUT1=500 T_PUT256=5000 T_RANGE=10000 T_TXN=2000
else
    # Each run takes seconds (etcd's range runs about 20 s); the whole script about 4 minutes.
    T_PUT1=10000 T_PUT256=120000 T_RANGE=200000 T_TXN=40000
fi
WORKLOADS=(
    "put, 1 client, 1 conn|1.5|put --clients 1 --conns 1 --val-size $VAL --key-space-size $KS --total $T_PUT1"
    "put, 256 clients, 16 conns|2|put --clients 256 --conns 16 --val-size $VAL --key-space-size $KS --total $T_PUT256"
    "range serializable, 256 clients, 16 conns|3|range foo --consistency s --clients 256 --conns 16 --total $T_RANGE"
    "range linearizable, 256 clients, 16 conns|3|range foo --consistency l --clients 256 --conns 16 --total $T_RANGE"
    "txn-put, 16 clients, 16 conns|2|txn-put --clients 16 --conns 16 --val-size $VAL --key-space-size $KS --total $T_TXN"
)

echo "vs_etcd: starting cairnd and etcd (work dir $WORK)" >&2
start cairn
start etcd

if [[ ${VS_ETCD_WATCH:-0} == 1 ]]; then
    PUTS=10000
    if [[ $QUICK == 1 ]]; then
        export WATCH_MEM_CONNS=10 WATCH_MEM_STREAMS=100 WATCH_MEM_WATCHINGS=10000
        PUTS=1000
    fi
    for kind in cairn etcd; do
        echo "vs_etcd: watch memory on $kind" >&2
        "$PY" "$ROOT/bench/watch_mem.py" "127.0.0.1:${PORT[$kind]}" "${PID[$kind]}" \
            >"$WORK/watch.$kind.json"
        cat "$WORK/watch.$kind.json" >&2
    done
    # fan-out: 1,000 watchers of one prefix on 100 streams, then the puts as fast as they go
    # (events/s); and the same at 500 puts/s, below what either server delivers, for the
    # put-to-event latency (unlimited puts would measure the backlog instead). Rounds alternate.
    FANOUT="watch --streams 100 --watch-per-stream 10 --put-total $PUTS --clients 16 --conns 4"
    LATENCY="watch --streams 100 --watch-per-stream 10 --put-total $((PUTS / 5)) --put-rate 500 --clients 16 --conns 4"
    export VS_FANOUT=$FANOUT VS_LATENCY=$LATENCY
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then order=(cairn etcd); else order=(etcd cairn); fi
        for what in fanout latency; do
            if [[ $what == fanout ]]; then args=$FANOUT; else args=$LATENCY; fi
            for kind in "${order[@]}"; do
                out=$WORK/$what.$kind.$r.json
                # shellcheck disable=SC2086 # args is a word list on purpose
                "$BENCH" --endpoints "127.0.0.1:${PORT[$kind]}" -w json $args >"$out" \
                    2>"$out.err" || {
                    echo "vs_etcd: cairn-bench watch failed on $kind:" >&2
                    cat "$out.err" >&2
                    exit 1
                }
                "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("vs_etcd: round %s watch %-7s %-5s %12.0f events/s  p99 %9.2f ms  %d of %d events" % (sys.argv[2], sys.argv[3], sys.argv[4], r["events_per_s"], r["events_report"]["percentiles_ms"]["p99"], r["events"], r["expected_events"]))' \
                    "$out" "$r" "$what" "$kind" >&2
            done
        done
    done
    export VS_ROUNDS=$ROUNDS
    VS_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [[ -z $(git -C "$ROOT" status --porcelain 2>/dev/null) ]] || VS_COMMIT="$VS_COMMIT (with uncommitted changes)"
    VS_DATE=$(date -u +%Y-%m-%d)
    VS_ETCD_VERSION=$("$ETCD" --version 2>/dev/null | awk '/^etcd Version/{print $3}')
    export VS_COMMIT VS_DATE VS_ETCD_VERSION
    "$PY" - "$WORK" "$DOC" "$WRITE_DOCS" <<'EOF'
import json, os, sys
work, doc, write_docs = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
c = json.load(open(f"{work}/watch.cairn.json"))
e = json.load(open(f"{work}/watch.etcd.json"))
import statistics
rounds = int(os.environ["VS_ROUNDS"])
runs = {k: [json.load(open(f"{work}/fanout.{k}.{r}.json")) for r in range(1, rounds + 1)]
        for k in ("cairn", "etcd")}
lat_runs = {k: [json.load(open(f"{work}/latency.{k}.{r}.json")) for r in range(1, rounds + 1)]
            for k in ("cairn", "etcd")}
rows = ["| measure | cairnd | etcd | cairn/etcd | target | |", "|---|--:|--:|--:|--:|---|"]
eps = {k: statistics.median(r["events_per_s"] for r in v) for k, v in runs.items()}
p99 = {k: statistics.median(r["events_report"]["percentiles_ms"]["p99"] for r in v)
       for k, v in lat_runs.items()}
complete = all(r["events"] == r["expected_events"]
               for rs in (runs, lat_runs) for v in rs.values() for r in v)
ratio = eps["cairn"] / eps["etcd"] if eps["etcd"] else float("inf")
rows.append(f"| watch fan-out: events delivered per second | {eps['cairn']:,.0f} | "
            f"{eps['etcd']:,.0f} | {ratio:.2f} | ≥ 2 | "
            f"{'PASS' if ratio >= 2 and complete else 'MISS'} |")
ratio = p99["cairn"] / p99["etcd"] if p99["etcd"] else float("inf")
rows.append(f"| watch fan-out at 500 puts/s: put-to-event latency p99 (ms) | {p99['cairn']:,.2f} | "
            f"{p99['etcd']:,.2f} | {ratio:.2f} | ≤ 1 | {'PASS' if ratio <= 1 else 'MISS'} |")
for name, key in (("bytes per watch stream", "per_stream_bytes"),
                  ("bytes per watching", "per_watching_bytes")):
    r = c[key] / e[key] if e[key] > 0 else float("inf")
    rows.append(f"| {name} | {c[key]:,} | {e[key]:,} | {r:.2f} | ≤ 0.5 | "
                f"{'PASS' if r <= 0.5 else 'MISS'} |")
mib = lambda k: f"{k / 1024:.1f} MiB"
lines = [
    f"Run on {os.environ['VS_DATE']} at commit {os.environ['VS_COMMIT']}: `make bench-vs-etcd-watch` "
    f"(= `VS_ETCD_WATCH=1 bash bench/vs_etcd.sh build`); etcd {os.environ['VS_ETCD_VERSION']}. "
    f"{c['conns']} connections, {c['streams']:,} streams, {c['watchings']:,} watchings "
    "(distinct keys); RssAnon of each server after each phase (start, connections, streams, "
    "watchings): cairnd " + ", ".join(mib(k) for k in c["rss_anon_kib"]) + "; etcd "
    + ", ".join(mib(k) for k in e["rss_anon_kib"]) + ". Fan-out: `cairn-bench --endpoints "
    f"127.0.0.1:PORT -w json {os.environ['VS_FANOUT']}` and (latency) `… {os.environ['VS_LATENCY']}` "
    f"against each, {rounds} round"
    f"{'s' if rounds != 1 else ''} alternating, medians"
    + ("" if complete else " (some runs did not receive every event)") + ".",
    "",
    *rows,
]
table = "\n".join(lines)
print(table)
if write_docs:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(doc)), "..", "bench"))
    from docblock import write_block
    write_block(doc, "vs-etcd-watch", table)
EOF
    exit 0
fi
if [[ ${VS_ETCD_LEASE:-0} == 1 ]]; then
    # 10,000 leases (granted before the clock starts, revoked after each run), 1,000 clients on
    # 100 connections each keeping its share alive on one LeaseKeepAlive stream, one keepalive
    # in flight per client: a load that saturates etcd (it answers no more than with 10 clients).
    # Rounds alternate which server goes first.
    LK_TOTAL=300000
    [[ $QUICK == 1 ]] && LK_TOTAL=20000
    LEASE="lease-keepalive --leases 10000 --clients 1000 --conns 100 --total $LK_TOTAL"
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then order=(cairn etcd); else order=(etcd cairn); fi
        for kind in "${order[@]}"; do
            out=$WORK/lease.$kind.$r.json
            # shellcheck disable=SC2086 # LEASE is a word list on purpose
            "$BENCH" --endpoints "127.0.0.1:${PORT[$kind]}" -w json $LEASE >"$out" 2>"$out.err" || {
                echo "vs_etcd: cairn-bench lease-keepalive failed on $kind:" >&2
                cat "$out.err" >&2
                exit 1
            }
            "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("vs_etcd: round %s lease-keepalive %-5s %10.0f keepalives/s  p99 %7.2f ms  errors %d" % (sys.argv[2], sys.argv[3], r["rps"], r["percentiles_ms"]["p99"], r["errors"]))' \
                "$out" "$r" "$kind" >&2
        done
    done
    VS_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [[ -z $(git -C "$ROOT" status --porcelain 2>/dev/null) ]] || VS_COMMIT="$VS_COMMIT (with uncommitted changes)"
    VS_ETCD_VERSION=$("$ETCD" --version 2>/dev/null | awk '/^etcd Version/{print $3}')
    VS_CPU="$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo) ($(nproc) CPUs)"
    VS_DATE=$(date -u +%Y-%m-%d)
    export VS_ROUNDS=$ROUNDS VS_LEASE=$LEASE VS_LK_TOTAL=$LK_TOTAL VS_COMMIT VS_ETCD_VERSION VS_CPU VS_DATE
    "$PY" - "$WORK" "$DOC" "$WRITE_DOCS" <<'EOF'
import json, os, statistics, sys
work, doc, write_docs = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rounds = int(os.environ["VS_ROUNDS"])
total = int(os.environ["VS_LK_TOTAL"])
runs = {k: [json.load(open(f"{work}/lease.{k}.{r}.json")) for r in range(1, rounds + 1)]
        for k in ("cairn", "etcd")}
rps = {k: statistics.median(r["rps"] for r in v) for k, v in runs.items()}
p99 = {k: statistics.median(r["percentiles_ms"]["p99"] for r in v) for k, v in runs.items()}
errors = {k: sum(r["errors"] for r in v) for k, v in runs.items()}
complete = all(r["requests"] == total and r["leases"] == 10000 for v in runs.values() for r in v)
ratio = rps["cairn"] / rps["etcd"] if rps["etcd"] else float("inf")
verdict = "PASS" if ratio >= 2 else "MISS"
if not complete or any(errors.values()):
    verdict = "MISS (errors)"
rows = ["| measure | cairnd | etcd | cairn/etcd | target | |", "|---|--:|--:|--:|--:|---|"]
rows.append(f"| lease keepalive, 10,000 leases, {total:,} requests, 1,000 clients on 100 conns: "
            f"keepalives/s | {rps['cairn']:,.0f} | {rps['etcd']:,.0f} | {ratio:.2f} | ≥ 2 | "
            f"{verdict} |")
lat = p99["cairn"] / p99["etcd"] if p99["etcd"] else float("inf")
rows.append(f"| the same: keepalive latency p99 (ms) | {p99['cairn']:,.2f} | {p99['etcd']:,.2f} | "
            f"{lat:.2f} | | |")
lines = [
    f"Run on {os.environ['VS_DATE']} at commit {os.environ['VS_COMMIT']}: `make bench-vs-etcd-lease` "
    f"(= `VS_ETCD_LEASE=1 bash bench/vs_etcd.sh build`); etcd {os.environ['VS_ETCD_VERSION']}; "
    f"{os.environ['VS_CPU']}. `cairn-bench --endpoints 127.0.0.1:PORT -w json "
    f"{os.environ['VS_LEASE']}` against each, {rounds} round{'s' if rounds != 1 else ''} "
    "alternating, medians"
    + (f"; failed keepalives: cairnd {errors['cairn']}, etcd {errors['etcd']}"
       if any(errors.values()) else "") + ".",
    "",
    *rows,
]
table = "\n".join(lines)
print(table)
if write_docs:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(doc)), "..", "bench"))
    from docblock import write_block
    write_block(doc, "vs-etcd-lease", table)
    print(f"vs_etcd: table written to {doc}", file=sys.stderr)
EOF
    exit 0
fi
# The key the range workloads read: "foo" with a 256-byte value, on both.
VALUE=$(head -c $VAL /dev/zero | tr '\0' v)
for kind in cairn etcd; do
    ETCDCTL_API=3 "$ETCDCTL" --endpoints "127.0.0.1:${PORT[$kind]}" put foo "$VALUE" >/dev/null
done

mkdir -p "$WORK/res"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(cairn etcd); else order=(etcd cairn); fi
    for i in "${!WORKLOADS[@]}"; do
        IFS='|' read -r name _ args <<<"${WORKLOADS[$i]}"
        for kind in "${order[@]}"; do
            out=$WORK/res/$i.$kind.$r.json
            # shellcheck disable=SC2086 # args is a word list on purpose
            if ! "$BENCH" --endpoints "127.0.0.1:${PORT[$kind]}" -w json $args >"$out" \
                    2>"$out.err"; then
                echo "vs_etcd: cairn-bench failed on $kind ($name):" >&2
                cat "$out.err" >&2
                exit 1
            fi
            "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("vs_etcd: round %s %-42s %-5s %10.0f req/s  p99 %7.2f ms  errors %d" % (sys.argv[2], sys.argv[3], sys.argv[4], r["rps"], r["percentiles_ms"]["p99"], r["errors"]))' \
                "$out" "$r" "$name" "$kind" >&2
        done
    done
done

mem() { # mem PID: "VmRSS VmHWM RssAnon" in KiB
    awk '/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} /^RssAnon:/{a=$2} END{print r, h, a}' "/proc/$1/status"
}
read -r C_RSS C_HWM C_ANON < <(mem "${PID[cairn]}")
read -r E_RSS E_HWM E_ANON < <(mem "${PID[etcd]}")

COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]]; then COMMIT="$COMMIT (with uncommitted changes)"; fi
CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
ETCD_VERSION=$("$ETCD" --version 2>/dev/null | awk '/^etcd Version/{print $3}')
NPROC=$(nproc)
DATE=$(date -u +%Y-%m-%d)

export VS_ROUNDS=$ROUNDS VS_BUILD_ARG=$B_ARG VS_COMMIT=$COMMIT VS_CPU="$CPU ($NPROC CPUs)" VS_ETCD_VERSION=$ETCD_VERSION
export VS_MEM="$C_RSS $C_HWM $C_ANON $E_RSS $E_HWM $E_ANON" VS_DATE=$DATE
printf '%s\n' "${WORKLOADS[@]}" >"$WORK/workloads"
"$PY" - "$WORK" "$DOC" "$WRITE_DOCS" <<'EOF'
import json, os, statistics, sys

work, doc, write_docs = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rounds = int(os.environ["VS_ROUNDS"])
workloads = [line.rstrip("\n").split("|") for line in open(f"{work}/workloads") if line.strip()]

def runs(i, kind):
    return [json.load(open(f"{work}/res/{i}.{kind}.{r}.json")) for r in range(1, rounds + 1)]

rows = [
    "| workload | cairn req/s | etcd req/s | cairn/etcd | target | | cairn p99 ms | etcd p99 ms |",
    "|---|--:|--:|--:|--:|---|--:|--:|",
]
errors = []
for i, (name, target, args) in enumerate(workloads):
    c, e = runs(i, "cairn"), runs(i, "etcd")
    c_rps = statistics.median(r["rps"] for r in c)
    e_rps = statistics.median(r["rps"] for r in e)
    c_p99 = statistics.median(r["percentiles_ms"]["p99"] for r in c)
    e_p99 = statistics.median(r["percentiles_ms"]["p99"] for r in e)
    ratio = c_rps / e_rps if e_rps else float("inf")
    verdict = "PASS" if ratio >= float(target) else "MISS"
    for kind, rs in (("cairn", c), ("etcd", e)):
        n = sum(r["errors"] for r in rs)
        if n:
            errors.append(f"{name} on {kind}: {n} failed requests "
                          f"({rs[0]['error_distribution'][:1]})")
            verdict = "MISS (errors)"
    rows.append(f"| {name} | {c_rps:,.0f} | {e_rps:,.0f} | {ratio:.2f} | ≥ {target} | {verdict} "
                f"| {c_p99:.2f} | {e_p99:.2f} |")

c_rss, c_hwm, c_anon, e_rss, e_hwm, e_anon = (int(x) for x in os.environ["VS_MEM"].split())
mib = lambda k: f"{k / 1024:.1f} MiB"
mem_ratio = c_rss / e_rss if e_rss else float("inf")
anon_ratio = c_anon / e_anon if e_anon else float("inf")
rows.append(f"| server memory after the runs: VmRSS | {mib(c_rss)} | {mib(e_rss)} | {mem_ratio:.2f} "
            f"| ≤ 0.25 | {'PASS' if mem_ratio <= 0.25 else 'MISS'} | | |")
rows.append(f"| server memory after the runs: RssAnon (VmRSS without file pages) | {mib(c_anon)} "
            f"| {mib(e_anon)} | {anon_ratio:.2f} | ≤ 0.25 | "
            f"{'PASS' if anon_ratio <= 0.25 else 'MISS'} | | |")

lines = [
    f"Run on {os.environ['VS_DATE']} at commit {os.environ['VS_COMMIT']}: "
    f"`make bench-vs-etcd` (= `bash bench/vs_etcd.sh {os.environ['VS_BUILD_ARG']}`), {rounds} "
    f"round{'s' if rounds != 1 else ''}, median per workload; etcd {os.environ['VS_ETCD_VERSION']}; {os.environ['VS_CPU']}.",
    "",
    *rows,
    "",
    f"Memory after the runs: cairnd VmRSS {mib(c_rss)}, VmHWM {mib(c_hwm)}, RssAnon "
    f"{mib(c_anon)}; etcd VmRSS {mib(e_rss)}, VmHWM {mib(e_hwm)}, RssAnon {mib(e_anon)}. "
    "VmRSS counts the pages of the database files each server has mapped (LMDB's for cairnd, "
    "bbolt's for etcd) once touched; they are the kernel's page cache, shared and reclaimable. "
    "RssAnon is the process's own memory.",
    "",
    "The cairn-bench command of each workload (after `--endpoints 127.0.0.1:PORT -w json`):",
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
    write_block(doc, "vs-etcd", table)
    print(f"vs_etcd: table written to {doc}", file=sys.stderr)
EOF
