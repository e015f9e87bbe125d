#!/bin/bash
# Build the libFuzzer targets (clang, ASan+UBSan) and run each for SECONDS.
#   tests/fuzz/run-fuzz.sh SECONDS [TARGET...]     (targets: xml journal
#   ctlproto meta uri credentials; default all)
# Each run starts from the seed corpus tests/fuzz/corpus/TARGET (left
# untouched) plus what earlier runs found in BUILD/corpus/TARGET. A crash,
# leak, UBSan report, timeout (FUZZ_TIMEOUT s per input, default 10) or
# out-of-memory fails the run; the input is kept as BUILD/artifacts/TARGET/*
# (reproduce: BUILD/tests/fuzz/fuzz_TARGET FILE). FUZZ_BUILD (default
# build-fuzz) is the build directory.
set -euo pipefail
ALL=(xml journal ctlproto meta uri credentials)
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
    echo "usage: tests/fuzz/run-fuzz.sh SECONDS [TARGET...]  (targets: ${ALL[*]})" >&2
    exit 2
fi
SECS=$1
shift
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
cd "$(dirname "$0")/../.."
SRC=$PWD
BUILD=${FUZZ_BUILD:-build-fuzz}
for t in "${TARGETS[@]}"; do
    [ -d "tests/fuzz/corpus/$t" ] || { echo "run-fuzz: no target $t (${ALL[*]})" >&2; exit 2; }
done
command -v clang >/dev/null || bash tests/tools/install-deps.sh
# a directory configured for another compiler cannot be switched to clang
if [ -f "$BUILD/CMakeCache.txt" ] && ! grep -q '^S3CFS_FUZZ:BOOL=ON' "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD"
fi
mkdir -p "$BUILD"
if ! { CC=clang cmake -S . -B "$BUILD" -DS3CFS_FUZZ=ON -DS3CFS_WERROR=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build "$BUILD" --target fuzz -j"$(nproc)"; } \
        >"$BUILD/build.log" 2>&1; then
    grep -E -A5 'error|Error' "$BUILD/build.log" | head -60 >&2
    echo "run-fuzz: build failed (full log: $BUILD/build.log)" >&2
    exit 1
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0 failed=0
for t in "${TARGETS[@]}"; do
    work=$BUILD/corpus/$t art=$BUILD/artifacts/$t log=$BUILD/fuzz-$t.log
    mkdir -p "$work" "$art"
    dict=()
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="$SRC/tests/fuzz/$t.dict")
    # new inputs go to the first directory only: the seeds stay as committed
    if "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECS" -timeout="${FUZZ_TIMEOUT:-10}" \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$art/" "${dict[@]}" \
        "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
        echo "fuzz $t: ok, ${runs:-?} inputs in ${SECS}s"
        passed=$((passed + 1))
    else
        echo "fuzz $t: FAILED (log: $log, input in $art/)" >&2
        grep -E -m1 -A25 'ERROR: |runtime error|invariant broken|==ERROR|Timeout|out-of-memory' "$log" >&2 || tail -40 "$log" >&2
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
