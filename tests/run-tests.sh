#!/bin/bash
# The whole test suite: install what is needed, build from scratch, run
# every unit and integration test (a real radosgw on loopback, started and
# stopped by ctest). Options: --sanitize (ASan+UBSan build), --tsan,
# --build-dir DIR, and anything after -- goes to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build
FLAGS=(-DS3CFS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
while [ $# -gt 0 ]; do
    case $1 in
    --sanitize) FLAGS+=(-DS3CFS_SANITIZE=ON); BUILD=build-asan ;;
    --tsan) FLAGS+=(-DS3CFS_TSAN=ON); BUILD=build-tsan ;;
    --build-dir) BUILD=$2; shift ;;
    --) shift; break ;;
    *) echo "usage: tests/run-tests.sh [--sanitize|--tsan] [--build-dir DIR] [-- CTEST_ARGS]" >&2; exit 2 ;;
    esac
    shift
done
bash tests/tools/install-deps.sh
rm -rf "$BUILD"
cmake -S . -B "$BUILD" "${FLAGS[@]}" >/dev/null
if ! cmake --build "$BUILD" -j"$(nproc)" >"$BUILD/build.log" 2>&1; then
    grep -E -A5 'error|Error' "$BUILD/build.log" | head -80 >&2
    echo "run-tests: build failed (full log: $BUILD/build.log)" >&2
    exit 1
fi
cd "$BUILD"
# two tests at a time: most of a test's time is waiting on the server
# (stage 23's CI took 45 min one at a time, 33 two at a time)
export CTEST_PARALLEL_LEVEL=${CTEST_PARALLEL_LEVEL:-2}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --output-on-failure --timeout 900 "$@"
