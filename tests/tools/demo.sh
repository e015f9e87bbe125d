#!/bin/bash
# The main job: install, build, start a local S3 server (radosgw on
# loopback, the embedded default) and show s3cfs at work against it.
# Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=$ROOT/build-demo
RUN=$(mktemp -d /tmp/s3cfs-demo.XXXXXX)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
    [ -n "${PROXY_PID:-}" ] && kill "$PROXY_PID" 2>/dev/null || true
    bash tests/tools/radosgw/s3-server.sh stop "$RUN/server" >/dev/null 2>&1 || true
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
echo "endpoint $S3_ENDPOINT"

# The proxy counts requests by kind, so the demo can show what was sent.
"$BUILD/tests/tools/proxy/s3proxy" --upstream "${S3_ENDPOINT#http://}" --listen 127.0.0.1:0 \
    --port-file "$RUN/proxy.port" --quiet --max-seconds 600 >/dev/null &
PROXY_PID=$!
for _ in $(seq 50); do [ -s "$RUN/proxy.port" ] && break; sleep 0.1; done
PROXY=http://127.0.0.1:$(cat "$RUN/proxy.port")
export S3_ENDPOINT=$PROXY
s3c() { "$BUILD/tests/tools/s3c/s3c" "$@"; }
stats() { curl -s "$PROXY/__proxy/stats" | grep -v -E '^fault|^total'; curl -s -X POST "$PROXY/__proxy/reset" >/dev/null; }

say "a bucket with a small tree and a 24 MiB file"
s3c mb demo
mkdir -p "$RUN/tree/docs" "$RUN/tree/src"
for i in $(seq 1 20); do echo "document $i" >"$RUN/tree/docs/doc$i.txt"; done
for i in $(seq 1 10); do echo "int f$i(void);" >"$RUN/tree/src/f$i.h"; done
for f in "$RUN"/tree/*/*; do s3c put demo "tree/${f#"$RUN"/tree/}" "$f" >/dev/null; done
head -c $((24 << 20)) /dev/urandom >"$RUN/big.bin"
s3c put demo big.bin "$RUN/big.bin" >/dev/null
s3c ls demo tree/
stats

say "server-side copy of every object under tree/ to backup/ (CopyObject: no data through the client)"
s3c find demo tree/ | while read -r _ key; do s3c cp demo "$key" demo "backup/${key#tree/}" >/dev/null; done
s3c ls demo backup/
stats

say "server-side multipart copy of big.bin (UploadPartCopy, 8 MiB parts)"
s3c mpcopy demo big.bin demo big-copy.bin 8
s3c get demo big-copy.bin "$RUN/big-copy.bin"
cmp "$RUN/big.bin" "$RUN/big-copy.bin" && echo "big-copy.bin is byte-identical to big.bin"
stats

say "batch delete of backup/ (DeleteObjects, up to 1000 keys per request)"
s3c rmr demo backup/
stats

say "done: the filesystem mount demo arrives with the FUSE layer"
