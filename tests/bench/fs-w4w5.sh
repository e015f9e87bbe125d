#!/bin/bash
# W4 and W5 of doc/DESIGN.md §4 for s3cfs: a cold `ls -lR` of 2000 small files in
# 20 directories, and a sequential write and read of a large file, against
# radosgw through the proxy at a given latency. Prints figures; asserts
# nothing about time. Usage: fs-w4w5.sh [BUILD_DIR] [DELAY_MS] [SIZE_MIB]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(realpath "${1:-$ROOT/build}")
DELAY=${2:-30}
SIZE_MIB=${3:-256}
RUN=$(mktemp -d /tmp/s3cfs-w4w5.XXXXXX)
PIDS=()
cleanup() {
    cd /
    for m in "$RUN"/m*; do mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m"; done
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    bash "$ROOT/tests/tools/radosgw/s3-server.sh" stop "$RUN/server" >/dev/null 2>&1 || true
    rm -rf "$RUN"
}
trap cleanup EXIT

bash "$ROOT/tests/tools/radosgw/s3-server.sh" start "$RUN/server" >/dev/null
# shellcheck disable=SC1091
source "$RUN/server/env.sh"
"$BUILD/tests/tools/proxy/s3proxy" --upstream "${S3_ENDPOINT#http://}" --port-file "$RUN/port" \
    --delay-ms "$DELAY" --quiet --max-seconds 1500 >/dev/null &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$RUN/port" ] && break; sleep 0.1; done
PROXY=http://127.0.0.1:$(cat "$RUN/port")
stat_of() { curl -s "$PROXY/__proxy/stats" | awk -v k="$1" '$1==k{print $2} END{}' | head -1; }
reset() { curl -s -X POST "$PROXY/__proxy/reset" >/dev/null; }
mnt() { # DIR ENDPOINT [OPTS]
    mkdir -p "$1"
    timeout 60 "$BUILD/fs/s3cfs" -o "endpoint=$2${3:+,$3}" bench "$1"
}
now() { date +%s.%N; }
"$BUILD/tests/tools/s3c/s3c" mb bench >/dev/null

# the tree, written directly to the server (setup, not measured)
mnt "$RUN/mset" "$S3_ENDPOINT"
for d in $(seq -w 1 20); do
    mkdir -p "$RUN/local/tree/d$d"
    for f in $(seq -w 1 100); do
        head -c $((1024 + (RANDOM % 3072))) /dev/urandom >"$RUN/local/tree/d$d/f$f"
    done
done
cp -r "$RUN/local/tree" "$RUN/mset/"
fusermount3 -u "$RUN/mset"

w4() { # LABEL [OPTS]
    mnt "$RUN/m4" "$PROXY" "${2:-}"
    reset
    local t0 t1 n
    t0=$(now)
    n=$(ls -lR "$RUN/m4/tree" | grep -c '^-')
    t1=$(now)
    printf 'W4 %-28s files=%s seconds=%.2f files/s=%.0f requests=%s (LIST %s, HEAD %s)\n' "$1" "$n" \
        "$(echo "$t1 - $t0" | bc)" "$(echo "$n / ($t1 - $t0)" | bc -l)" "$(stat_of total)" \
        "$(stat_of ListObjects)" "$(stat_of HeadObject)"
    fusermount3 -u "$RUN/m4"
}
w4 "cold ls -lR (HEAD in parallel)"
w4 "cold ls -lR listing_attrs_only" listing_attrs_only

head -c $((SIZE_MIB << 20)) /dev/urandom >"$RUN/local/big"
mnt "$RUN/m5" "$PROXY"
reset
t0=$(now)
cp "$RUN/local/big" "$RUN/m5/big"
t1=$(now)
printf 'W5 write %d MiB: seconds=%.2f MiB/s=%.1f requests=%s (UploadPart %s)\n' "$SIZE_MIB" \
    "$(echo "$t1 - $t0" | bc)" "$(echo "$SIZE_MIB / ($t1 - $t0)" | bc -l)" "$(stat_of total)" \
    "$(stat_of UploadPart)"
fusermount3 -u "$RUN/m5"
sync
echo 3 >/proc/sys/vm/drop_caches || true
mnt "$RUN/m5" "$PROXY"
reset
t0=$(now)
cat "$RUN/m5/big" >/dev/null
t1=$(now)
printf 'W5 read  %d MiB: seconds=%.2f MiB/s=%.1f requests=%s (GetObject %s)\n' "$SIZE_MIB" \
    "$(echo "$t1 - $t0" | bc)" "$(echo "$SIZE_MIB / ($t1 - $t0)" | bc -l)" "$(stat_of total)" \
    "$(stat_of GetObject)"
cmp "$RUN/local/big" "$RUN/m5/big" && echo "W5 read back byte-identical"
