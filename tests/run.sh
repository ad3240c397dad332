#!/usr/bin/env bash
# Runs every test and prints the combined summary as the last line: "N passed, N failed".
#   tests/run.sh BUILD_DIR
# Unit tests: each cmocka binary under BUILD_DIR/tests/unit. Integration tests: pytest under
# /usr/bin/python3 (Debian's interpreter, which has python3-etcd3 and pytest) in tests/integration.
set -uo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
passed=0
failed=0
failures=()
log_dir=$build/test-logs
mkdir -p "$log_dir"

# Unit test binaries, then fuzz corpus replays (each prints cmocka-style RUN/OK lines).
for bin in "$build"/tests/unit/test_* "$build"/tests/fuzz/replay_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    log=$log_dir/$name.log
    args=()
    case $name in replay_*) args=(tests/fuzz/corpus/${name#replay_}) ;; esac
    CMOCKA_MESSAGE_OUTPUT=stdout timeout 900 "$bin" "${args[@]}" >"$log" 2>&1
    rc=$?
    ok=$(grep -c '^\[       OK \]' "$log")
    run=$(grep -c '^\[ RUN      \]' "$log")
    # cmocka prints a skipped test's name twice (when it runs and in the summary list) and a
    # "[  SKIPPED ] N test(s), listed below:" line: count the tests from that line
    skipped=$(grep -oE '^\[  SKIPPED \] [0-9]+ test' "$log" | grep -oE '[0-9]+' | head -1)
    skipped=${skipped:-0}
    bad=$((run - ok - skipped))
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    passed=$((passed + ok))
    failed=$((failed + bad))
    if [ "$bad" -ne 0 ]; then
        failures+=("$name")
        echo "FAIL $name (exit $rc): see $log"
        grep -E '^\[  (FAILED|ERROR) |^\[  ERROR|error:|Assert|Seed|seed' "$log" | head -20
    else
        echo "ok   $name ($ok tests)"
    fi
done

# libFuzzer on each target (build/fuzz/fuzz_<name>, ASan + UBSan): FUZZ_TEST_RUNS inputs from a
# fixed seed, starting from the committed corpus; new inputs go to a temporary directory. One test
# each: it fails if libFuzzer finds a crash, a leak or undefined behaviour.
for bin in build/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=${bin##*/fuzz_}
    log=$log_dir/fuzz_$name.log
    work=$(mktemp -d)
    timeout 900 "$bin" -runs="${FUZZ_TEST_RUNS:-50000}" -seed=1 -artifact_prefix="$log_dir/" \
        "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    rm -rf "$work"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok   fuzz_$name (${FUZZ_TEST_RUNS:-50000} inputs)"
    else
        failed=$((failed + 1))
        failures+=("fuzz_$name")
        echo "FAIL fuzz_$name (exit $rc): see $log"
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -10
    fi
done

if compgen -G "tests/integration/test_*.py" >/dev/null; then
    log=$log_dir/integration.log
    BUILD_DIR=$build timeout 1800 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration \
        >"$log" 2>&1
    rc=$?
    line=$(grep -E '^(=+ )?[0-9]+ (passed|failed)|no tests ran' "$log" | tail -1)
    p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
    f=$(echo "$line" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s += $1} END {print s + 0}')
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failures+=(integration)
        echo "FAIL integration: see $log"
        tail -30 "$log"
    else
        echo "ok   integration ($p tests)"
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
