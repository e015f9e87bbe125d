#!/bin/bash
# Install everything s3cfs needs to build, test and demo on Debian 12 (root).
# Quiet unless something fails; skips apt-get when all is there already.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git
      libcurl4-openssl-dev libssl-dev libxml2-dev libfuse3-dev fuse3 libcmocka-dev
      ceph-mon ceph-osd radosgw ceph-common uuid-runtime curl awscli
      attr psmisc procps rsync python3 bc
      s3fs media-types    # s3fs-fuse for the interop tests; media-types: /etc/mime.types
      clang libclang-rt-dev) # the fuzz build (tests/fuzz): clang and its libFuzzer/ASan runtimes
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v aws >/dev/null || missing+=(awscli)
# test_fs_cond asks the server directly with boto3 (headers the CLI cannot send)
python3 -c 'import boto3' 2>/dev/null || missing+=(python3-boto3)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    if ! { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        tail -30 "$log" >&2
        echo "install-deps: apt-get failed" >&2
        exit 1
    fi
    rm -f "$log"
fi
