#!/bin/bash
# The main job: install, build, start a local S3 server (radosgw on
# loopback, the embedded default), mount it with s3cfs and show cp -r, mv and
# a large cp done server-side, with the S3 requests counted by the proxy in
# between. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=$ROOT/build-demo
RUN=$(mktemp -d /tmp/s3cfs-demo.XXXXXX)
MNT=$RUN/mnt
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
    cd /
    mountpoint -q "$MNT" 2>/dev/null && fusermount3 -u "$MNT"
    [ -n "${PROXY_PID:-}" ] && kill "$PROXY_PID" 2>/dev/null
    bash "$ROOT/tests/tools/radosgw/s3-server.sh" stop "$RUN/server" >/dev/null 2>&1 || true
    rm -rf "$RUN"
}
trap cleanup EXIT

say "installing dependencies and building"
bash tests/tools/install-deps.sh
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >"$RUN/build.log" 2>&1 || { tail -40 "$RUN/build.log"; exit 1; }

say "starting a local S3 server (Ceph radosgw on 127.0.0.1)"
bash tests/tools/radosgw/s3-server.sh start "$RUN/server" >/dev/null
# shellcheck disable=SC1091
source "$RUN/server/env.sh"
echo "radosgw at $S3_ENDPOINT"
# A proxy in front of it counts the S3 requests by kind, to show what was sent.
"$BUILD/tests/tools/proxy/s3proxy" --upstream "${S3_ENDPOINT#http://}" --listen 127.0.0.1:0 \
    --port-file "$RUN/proxy.port" --quiet --max-seconds 900 >/dev/null &
PROXY_PID=$!
for _ in $(seq 50); do [ -s "$RUN/proxy.port" ] && break; sleep 0.1; done
PROXY=http://127.0.0.1:$(cat "$RUN/proxy.port")
requests() {
    echo "   S3 requests sent:"
    curl -s "$PROXY/__proxy/stats" | awk '$1!~/^(fault|total)/{printf "     %-24s %s\n", $1, $2}'
    curl -s -X POST "$PROXY/__proxy/reset" >/dev/null
}
s3c() { S3_ENDPOINT=$PROXY "$BUILD/tests/tools/s3c/s3c" "$@"; }

s3c mb photos >/dev/null
s3c mb archive >/dev/null
mkdir -p "$MNT"
"$BUILD/fs/s3cfs" -o "endpoint=$PROXY,copy_threshold=16,copy_part_size=8" "$MNT"
say "mounted every bucket at $MNT"
ls -l "$MNT"

say "writing 200 small files and a 48 MiB file through the mount"
mkdir -p "$RUN/local/2024/"{jan,feb,mar,apr}
for m in jan feb mar apr; do
    for i in $(seq 1 50); do echo "photo $m $i" >"$RUN/local/2024/$m/img$i.jpg"; done
done
head -c $((48 << 20)) /dev/urandom >"$RUN/local/big.raw"
cp -r "$RUN/local/2024" "$MNT/photos/"
cp "$RUN/local/big.raw" "$MNT/photos/"
ls -l "$MNT/photos" "$MNT/photos/2024" | head -12
requests

say "cp -r photos/2024 photos/2024-backup: server-side, no object data through the client"
echo "   (cp returns once the copies are queued; 'sync DIR' waits until they landed)"
time cp -r "$MNT/photos/2024" "$MNT/photos/2024-backup"
time sync "$MNT/photos"
requests
diff -r "$MNT/photos/2024" "$MNT/photos/2024-backup" && echo "   trees identical (diff -r)"
curl -s -X POST "$PROXY/__proxy/reset" >/dev/null

say "mv photos/2024-backup archive/2024: a directory moved across buckets"
time mv "$MNT/photos/2024-backup" "$MNT/archive/2024"
sync "$MNT/archive" "$MNT/photos"
requests
find "$MNT/archive/2024" -type f | wc -l | sed 's/^/   files now in archive\/2024: /'
curl -s -X POST "$PROXY/__proxy/reset" >/dev/null

say "cp of the 48 MiB file to the other bucket: parallel UploadPartCopy"
time cp "$MNT/photos/big.raw" "$MNT/archive/big.raw"
sync "$MNT/archive"
requests
cmp "$RUN/local/big.raw" "$MNT/archive/big.raw" && echo "   byte-identical (cmp)"
curl -s -X POST "$PROXY/__proxy/reset" >/dev/null

say "rm -r archive/2024: the deletes go out in batches (DeleteObjects)"
time rm -r "$MNT/archive/2024"
sync "$MNT/archive"
requests

say "checked independently through the S3 API (AWS CLI)"
aws --endpoint-url "$S3_ENDPOINT" s3 ls --recursive s3://archive | awk '{n++; s+=$3} END {printf "   archive: %d objects, %d bytes\n", n, s}'
