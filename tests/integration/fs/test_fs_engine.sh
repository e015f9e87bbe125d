#!/bin/bash
# doc/DESIGN.md §3 rules through a real mount that test_fs_jobs does not cover:
# consecutive copy_file_range ranges make one copy (§3.1), a copy whose
# source changed behind our back fails cleanly (§3.3), -o sync_jobs (§3.9),
# throttling lowers the concurrency (§3.8), a large copy's parts run in
# parallel. Requests are counted by the proxy.
. "$(dirname "$0")/lib.sh"
trap fs_cleanup EXIT
BUCKET=$(new_bucket)
start_proxy
MNT=$WORK/mnt
MNT_ARGS=(-o "endpoint=$PROXY,journal_dir=$WORK/j1,max_inflight=16")
mount_fs "$MNT" "$BUCKET" "${MNT_ARGS[@]}" || exit 2

# copy_file_range SRC DST CHUNK [LIMIT]: copy [0, LIMIT or the size) in
# ranges of CHUNK bytes at the same offsets, as cp does for large files
cfr() {
    python3 - "$@" <<'PYEOF'
import os, sys
src, dst, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
fi = os.open(src, os.O_RDONLY)
fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
size = int(sys.argv[4]) if len(sys.argv) > 4 else os.fstat(fi).st_size
off = 0
while off < size:
    n = os.copy_file_range(fi, fo, min(chunk, size - off), off, off)
    if n <= 0:
        break
    off += n
os.close(fo)
os.close(fi)
sys.exit(0 if off == size else 1)
PYEOF
}

# big3 NAME: a 3 MiB file NAME in $WORK and, landed, in the mount
big3() {
    head -c $((3 << 20)) /dev/urandom >"$WORK/$1"
    cp "$WORK/$1" "$MNT/$1"
    landed
}

# ---- §3.1: consecutive ranges accumulate into one copy job ----
case_ranges_make_one_copy() {
    big3 big3
    proxy_reset
    check "three consecutive 1 MiB ranges copied" cfr "$MNT/big3" "$MNT/ranged" $((1 << 20))
    check_eq "the destination shows the whole size at once" $((3 << 20)) "$(stat -c %s "$MNT/ranged")"
    landed
    check_eq "ranges: exactly one CopyObject" 1 "$(proxy_count CopyObject)"
    check_eq "ranges: no GetObject" 0 "$(proxy_count GetObject)"
    check_eq "ranges: no PutObject" 0 "$(proxy_count PutObject)"
    check "ranges: identical through the S3 API" same_in_s3 ranged "$WORK/big3"
}

# only the first range: the destination is that prefix, through the data path
case_partial_range() {
    big3 big3p
    proxy_reset
    check "a range covering part of the source" cfr "$MNT/big3p" "$MNT/prefix" $((1 << 20)) $((1 << 20))
    landed
    head -c $((1 << 20)) "$WORK/big3p" >"$WORK/prefix"
    check "partial range: the destination is the prefix (S3)" same_in_s3 prefix "$WORK/prefix"
    check_eq "partial range: no CopyObject of the whole source" 0 "$(proxy_count CopyObject)"
}

# a range at other offsets goes through the data path too, never ENOSYS
case_range_at_offset() {
    printf 'abcdefgh' >"$WORK/small"
    cp "$WORK/small" "$MNT/small"
    landed
    check "a range at offset 3" python3 -c "
import os
fi = os.open('$MNT/small', os.O_RDONLY)
fo = os.open('$MNT/off3', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
assert os.copy_file_range(fi, fo, 4, 3, 0) == 4
os.close(fo)"
    check_eq "offset range: the right bytes" "defg" "$(cat "$MNT/off3")"
}

# ---- §3.3: a copy whose source changed behind our back fails cleanly ----
case_changed_source_fails() {
    echo "version 1" >"$MNT/moving"
    landed
    proxy_config "delay.CopyObject=3000"
    cp "$MNT/moving" "$MNT/pinned"
    echo "version 2" >"$WORK/v2"
    s3c put "$BUCKET" moving "$WORK/v2" >/dev/null # at once, not through the mount
    check_not "the copy reports the changed source (open+fsync of the destination)" python3 -c "
import os
fd = os.open('$MNT/pinned', os.O_RDONLY)
os.fsync(fd)"
    proxy_config "delay.CopyObject=-1"
    check_not "no copy of the changed source in S3" aws_ s3api head-object --bucket "$BUCKET" --key pinned
    check "the daemon logged why" grep -q "pinned.*PreconditionFailed\|PreconditionFailed.*pinned" \
        "$WORK/s3cfs.log"
    check_eq "the source keeps its new content" "version 2" "$(aws_ s3 cp --quiet "s3://$BUCKET/moving" -)"
    sleep 1.2 # only lets time pass: past the attribute cache (attr_ttl=1)
    check_not "the failed destination does not show in the mount" test -e "$MNT/pinned"
}

# ---- a large copy: UploadPartCopy parts in parallel ----
case_large_copy_parallel_parts() {
    local m2=$WORK/m2 max
    mount_fs "$m2" "$BUCKET" -o "endpoint=$PROXY,journal_dir=$WORK/j2,copy_threshold=8,copy_part_size=5" ||
        { bad "the mount with copy_threshold=8"; return; }
    head -c $((25 << 20)) /dev/urandom >"$WORK/big25"
    cp "$WORK/big25" "$m2/big25"
    landed "$m2"
    proxy_config "delay.UploadPartCopy=400"
    proxy_reset
    cp "$m2/big25" "$m2/big25copy"
    landed "$m2"
    check_eq "25 MiB at 5 MiB parts: 5 UploadPartCopy" 5 "$(proxy_count UploadPartCopy)"
    max=$(proxy_count inflight_max)
    check "parts ran in parallel ($max requests in flight at most)" test "$max" -ge 4
    check_eq "no data through the client" 0 "$(proxy_count GetObject)"
    check "large copy identical in S3" same_in_s3 big25copy "$WORK/big25"
    proxy_config "delay.UploadPartCopy=-1"
    unmount_fs "$m2"
}

# ---- §3.9: -o sync_jobs: each cp and rm has landed when it returns ----
case_sync_jobs() {
    local m3=$WORK/m3
    mount_fs "$m3" "$BUCKET" -o "endpoint=$PROXY,journal_dir=$WORK/j3,sync_jobs" ||
        { bad "the mount with sync_jobs"; return; }
    echo "sync me" >"$m3/sj-src"
    proxy_config "delay.CopyObject=800&delay.DeleteObjects=800"
    cp "$m3/sj-src" "$m3/sj-dst"
    check "sync_jobs: the copy is in S3 when cp returns" aws_ s3api head-object --bucket "$BUCKET" \
        --key sj-dst
    rm "$m3/sj-src"
    check_not "sync_jobs: the delete is done when rm returns" aws_ s3api head-object \
        --bucket "$BUCKET" --key sj-src
    proxy_config "delay.CopyObject=-1&delay.DeleteObjects=-1"
    unmount_fs "$m3"
}

# hundred DIR: 100 small files in $WORK/tree and, landed, in $MNT/DIR
hundred() {
    local i
    mkdir -p "$WORK/tree"
    for i in $(seq 1 100); do echo "file $i" >"$WORK/tree/f$i"; done
    cp -r "$WORK/tree" "$MNT/$1"
    landed
}
first_503() { [ "$(proxy_count fault.503)" -gt 0 ]; }

# ---- §3.8: throttling (503 SlowDown) lowers the concurrency ----
# Measured two ways: the engine's own limit (s3cfs-ctl status) and the
# requests the proxy sees in flight once the pre-throttle ones are over.
case_throttling_lowers_concurrency() {
    local ctl base cppid limit thr
    ctl=$(dirname "$S3CFS_BIN")/s3cfs-ctl
    hundred src
    proxy_config "delay.CopyObject=1000"
    proxy_reset
    cp -r "$MNT/src" "$MNT/t1"
    landed
    base=$(proxy_count inflight_max) # over the whole run: the pool filled up
    proxy_config "delay.CopyObject=1000&fault_rate=0.25&faults=503&fault_kinds=CopyObject"
    cp -r "$MNT/src" "$MNT/t2" &
    cppid=$!
    wait_until 20 first_503
    sleep 3 # only lets time pass: what was in flight before the cuts is over (1 s per request)
    limit=$("$ctl" status --raw "$MNT" | awk '$1=="jobs_limit"{print $2}')
    proxy_reset
    sleep 2 # only lets time pass: the window in which the throttled requests in flight are counted
    thr=$(proxy_count inflight_max)
    proxy_config "delay.CopyObject=-1&fault_rate=0"
    wait "$cppid"
    landed
    check "without throttling the pool is full ($base in flight of 16)" test "$base" -ge 14
    check "503 SlowDown cut the engine's limit (${limit:-?} of 16)" test "${limit:-16}" -le 8
    check "and the requests in flight ($thr, was $base)" test "$((thr * 2))" -le "$base"
    check "throttled copies: all landed, identical" diff -r "$WORK/tree" "$MNT/t2"
    aws_ s3 cp --quiet --recursive "s3://$BUCKET/t2" "$WORK/t2-s3"
    check "throttled copies: identical through the S3 API" diff -r "$WORK/tree" "$WORK/t2-s3"
}

# cp -r into a new directory asks S3 nothing per destination file: the
# listing cached at mkdir answers the lookups, also after copies landed
case_cp_r_no_lookups_per_file() {
    local m4=$WORK/m4 copies
    hundred src4
    mount_fs "$m4" "$BUCKET" -o "endpoint=$PROXY,journal_dir=$WORK/j4,attr_ttl=30,dir_ttl=30" ||
        { bad "the mount with 30 s lifetimes"; return; }
    ls -l "$m4/src4" >/dev/null # the source's attributes, as any cp -r would read them
    proxy_reset
    cp -r "$m4/src4" "$m4/t3"
    landed "$m4"
    # + t3's times written to its marker once (issue 12 §2), or twice if the
    # cp paused for over a second
    copies=$(proxy_count CopyObject)
    check "cp -r of 100 files: 100 CopyObject + 1 or 2 marker-time writes ($copies)" \
        test "$copies" -ge 101 -a "$copies" -le 102
    # each copy job reads its source's headers (one HEAD, README "What a
    # change keeps"): 100, plus at most 5 for the destinations and 2 for
    # each marker-time write
    check "cp -r: no HEAD per destination file ($(proxy_count HeadObject))" \
        test "$(proxy_count HeadObject)" -le 109
    check "cp -r: no LIST per destination file ($(proxy_count ListObjects))" \
        test "$(proxy_count ListObjects)" -le 5
    unmount_fs "$m4"
}

run_cases "$@"
