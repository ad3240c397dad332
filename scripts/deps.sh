#!/usr/bin/env bash
# scripts/deps.sh - install cairn's build/test dependencies (run by `make deps`).
#
#   scripts/deps.sh                install missing Debian packages; build libraft
#                                  >= 0.17.1 into build/deps/ if the system lacks it
#   scripts/deps.sh --raft-cflags  print the compiler flags for libraft (installs nothing)
#   scripts/deps.sh --raft-libs    print the linker flags for libraft (installs nothing)
#
# Meant for Debian 12 (bookworm), run as root. Idempotent: when everything is
# present it only checks, in well under a second.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DEPS=$ROOT/build/deps
RAFT_MIN=0.17.1         # older releases (bookworm ships 0.15.0) have safety bugs
RAFT_VER=0.22.1         # the version we build, from Debian 13 (trixie) sources
RAFT_SUITE=trixie
STAMP=$DEPS/.raft-$RAFT_VER.stamp
LOG=$DEPS/deps.log

PACKAGES=(
    libuv1-dev liblmdb-dev libprotobuf-c-dev protobuf-c-compiler libnghttp2-dev
    liblz4-dev libcmocka-dev pkg-config python3-pytest python3-etcd3 etcd-client
    # SHA-1 for etcd's member and cluster IDs
    libmd-dev
    # test and benchmark only: etcd 3.4 itself, the reference the differential tests and the
    # side-by-side benchmarks compare against
    etcd-server
    # test only: clang with libFuzzer and the sanitizer runtimes, for the fuzz targets
    clang libclang-rt-14-dev
    # to fetch and build libraft from source
    dpkg-dev autoconf automake libtool make gcc
)

# True if a usable libraft comes from outside build/deps (i.e. the system).
system_raft() {
    pkg-config --atleast-version="$RAFT_MIN" raft 2>/dev/null &&
        [[ $(pkg-config --variable=pcfiledir raft) != "$DEPS/lib/pkgconfig" ]]
}

case ${1:-} in
--raft-cflags)
    if system_raft; then pkg-config --cflags raft; else echo "-I$DEPS/include"; fi
    exit 0 ;;
--raft-libs)
    if system_raft; then pkg-config --libs raft; else echo "$DEPS/lib/libraft.a -luv -llz4"; fi
    exit 0 ;;
"") ;;
*)
    echo "usage: $0 [--raft-cflags | --raft-libs]" >&2
    exit 2 ;;
esac

mkdir -p "$DEPS"
exec 9>"$DEPS/.lock"    # serialise concurrent runs
flock 9

# Run a command with its output going to $LOG; on failure show the log's tail.
LOG_STARTED=
run() {
    [[ -n $LOG_STARTED ]] || { : >"$LOG"; LOG_STARTED=1; }
    echo "+ $*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        echo "deps: FAILED: $*" >&2
        tail -n 40 "$LOG" >&2
        exit 1
    fi
}

# ---- 1. Debian packages ---------------------------------------------------
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for p in "${PACKAGES[@]}"; do
    grep -qx "$p install ok installed" <<<"$installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "deps: apt-get update"
    run apt-get -q update
    echo "deps: installing ${missing[*]}"
    run env DEBIAN_FRONTEND=noninteractive \
        apt-get -q install -y --no-install-recommends "${missing[@]}"
fi

# ---- 2. libraft -----------------------------------------------------------
if system_raft; then
    echo "deps: libraft $(pkg-config --modversion raft) (system)"
    exit 0
fi
if [[ -f $STAMP && -f $DEPS/lib/libraft.a ]]; then
    echo "deps: libraft $RAFT_VER (static, build/deps)"
    exit 0
fi

# The mirror URI this machine's apt already uses for the main release (not
# -security), from deb822 *.sources files or one-line *.list files.
# shellcheck source=/dev/null
. /etc/os-release
codename=${VERSION_CODENAME:-bookworm}
mirror_uri() {
    local f
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        awk -v want="$codename" '
            BEGIN { RS = "" }            # one paragraph per record
            {
                delete v; key = ""
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    l = lines[i]
                    if (l ~ /^#/) continue
                    if (l ~ /^[ \t]/ && key != "") { v[key] = v[key] " " l; continue }
                    if (match(l, /^[A-Za-z-]+:/)) {
                        key = tolower(substr(l, 1, RLENGTH - 1))
                        v[key] = substr(l, RLENGTH + 1)
                    }
                }
                if (tolower(v["enabled"]) ~ /no/ || v["suites"] ~ /-security/) next
                ns = split(v["suites"], s, /[ \t]+/)
                for (i = 1; i <= ns; i++)
                    if (s[i] == want) { split(v["uris"], u, /[ \t]+/); print (u[1] != "" ? u[1] : u[2]); exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        awk -v want="$codename" '
            $1 == "deb" || $1 == "deb-src" {
                i = 2
                if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }   # skip [options]
                if ($(i + 1) == want) { print $i; exit }
            }' "$f"
    done
}
uri=$(mirror_uri | head -n 1)
uri=${uri%/}
if [[ -z $uri ]]; then
    echo "deps: no apt mirror for '$codename' found in /etc/apt/sources.list{,.d}" >&2
    exit 1
fi

echo "deps: building libraft $RAFT_VER from $RAFT_SUITE sources (log: ${LOG#"$ROOT"/})"

# A private apt setup under build/deps/apt: its own sources list, index lists,
# cache and (empty) dpkg status, so the machine's apt state is left untouched.
# debian-archive-keyring in bookworm (2023.3+deb12u2) carries trixie's keys,
# so the trixie Release file is verified as usual.
APTDIR=$DEPS/apt
mkdir -p "$APTDIR/sources.list.d" "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
: >"$APTDIR/status"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $RAFT_SUITE main" \
    >"$APTDIR/sources.list"
APT_OPTS=(
    -o Dir::Etc::SourceList="$APTDIR/sources.list"
    -o Dir::Etc::SourceParts="$APTDIR/sources.list.d"
    -o Dir::State::Lists="$APTDIR/lists"
    -o Dir::Cache="$APTDIR/cache"
    -o Dir::State::status="$APTDIR/status"
)
run apt-get -q "${APT_OPTS[@]}" update
srcver=$(apt-cache "${APT_OPTS[@]}" showsrc raft |
    awk -v v="$RAFT_VER" '$1 == "Version:" && index($2, v "-") == 1 { print $2 }' | sort -V | tail -n 1)
if [[ -z $srcver ]]; then
    echo "deps: raft $RAFT_VER not found in $RAFT_SUITE sources" >&2
    exit 1
fi

# Download (as apt's sandbox user, who must be able to write there) and unpack.
SRC=$DEPS/src
rm -rf "$SRC"
mkdir -p "$SRC"
if id -u _apt >/dev/null 2>&1; then chown _apt "$SRC"; fi
(cd "$SRC" && run apt-get -q "${APT_OPTS[@]}" source --download-only "raft=$srcver")
(cd "$SRC" && run dpkg-source -x "raft_${srcver#*:}.dsc" raft)

# Static build with the libuv backend and lz4; tests, examples and benchmarks
# are not built by `make` (check_PROGRAMS / off by default).
(
    cd "$SRC/raft"
    run autoreconf -i
    run ./configure --prefix="$DEPS" --disable-shared --enable-static --with-pic \
        --enable-uv --with-lz4 --disable-example --disable-benchmark
    run make -j2
    run make install
)
rm -f "$DEPS/lib/libraft.la"
rmdir "$DEPS/bin" 2>/dev/null || true    # created empty by make install
# raft.pc lists only -lraft; add the static link dependencies for --static use.
echo "Requires.private: libuv liblz4" >>"$DEPS/lib/pkgconfig/raft.pc"

touch "$STAMP"
echo "deps: libraft $RAFT_VER (static, build/deps)"
