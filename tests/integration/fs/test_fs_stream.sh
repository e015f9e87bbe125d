#!/bin/bash
# Issue 16 §2: a file written from its start uploads its parts while it is
# written (upstream.h): close waits only for the last parts, and tmpdir
# holds the keep window and the parts in flight, not the whole file. A
# write into a part still kept is sent again; a write, read or truncate
# into bytes given back fails with EIO; a failed part fails close and
# leaves S3 as it was; an unlinked file uploads nothing. Parts of 5 MiB,
# a keep window of 10 MiB, 20 MiB in flight; requests counted by the proxy,
# bytes checked through the mount and through the S3 API.
. "$(dirname "$0")/lib.sh"
TMPD=$(mktemp -d "/tmp/s3cfs-stream-tmp.XXXXXX")
OPTS=multipart_threshold=5,part_size=5,stream_keep=10,stream_inflight=20,tmpdir=$TMPD${S3CFS_STREAM_EXTRA:-}
proxied_setup -o "$OPTS"
trap 'fs_cleanup; rm -rf "$TMPD"' EXIT
MIB=$((1024 * 1024))
echo "old content" >"$WORK/old"
head -c $((64 * MIB)) /dev/urandom >"$WORK/src"

# writer.py MOUNT_PID OP...: one open file driven step by step; ops:
#   open:PATH (O_RDWR|O_CREAT|O_TRUNC)  write:MIB (the next MiBs of $WORK/src, 1 MiB a call)
#   pwrite:OFF_MIB:LEN_MIB  read:OFF_MIB  truncate:MIB  unlink:PATH  sleep:S
#   fsync  reopen:PATH (another descriptor with O_TRUNC)  close  peak (the largest tmpdir use seen after a write, in MiB)
#   parts (UploadPart requests so far, from the proxy)
# Prints one line per op: "op result".
cat >"$WORK/writer.py" <<'PY'
import json, os, sys, time, urllib.request
pid, tmpd, proxy, src = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
MIB = 1 << 20
data = open(src, 'rb').read()
fd, pos, peak = None, 0, 0
def staged():
    n = 0
    for f in os.listdir('/proc/%s/fd' % pid):
        try:
            if os.readlink('/proc/%s/fd/%s' % (pid, f)).startswith(tmpd + '/'):
                n += os.stat('/proc/%s/fd/%s' % (pid, f)).st_blocks * 512
        except OSError:
            pass
    return n
def stat(kind):
    t = urllib.request.urlopen(proxy + '/__proxy/stats', timeout=10).read().decode()
    for ln in t.splitlines():
        w = ln.split()
        if w and w[0] == kind:
            return int(w[1])
    return 0
def err(f, *a):
    try:
        r = f(*a)
        return 'ok' if r is None or isinstance(r, int) else 'ok'
    except OSError as e:
        return e.strerror
for op in sys.argv[5:]:
    w = op.split(':')
    if w[0] == 'open':
        fd = os.open(w[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        r = 'ok'
    elif w[0] == 'write':
        r = 'ok'
        for _ in range(int(w[1])):
            r = err(os.pwrite, fd, data[pos:pos + MIB], pos)
            pos += MIB
            peak = max(peak, staged())
    elif w[0] == 'pwrite':
        r = err(os.pwrite, fd, b'X' * (int(w[2]) * MIB), int(w[1]) * MIB)
    elif w[0] == 'read':  # past the kernel's pages, which may still hold them
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        r = err(os.pread, fd, 4096, int(w[1]) * MIB)
    elif w[0] == 'truncate':
        r = err(os.ftruncate, fd, int(w[1]) * MIB)
        pos = int(w[1]) * MIB
    elif w[0] == 'unlink':
        r = err(os.unlink, w[1])
    elif w[0] == 'sleep':
        time.sleep(float(w[1]))
        r = 'ok'
    elif w[0] == 'close':
        r = err(os.close, fd)
    elif w[0] == 'fsync':
        r = err(os.fsync, fd)
    elif w[0] == 'reopen':  # a second descriptor with O_TRUNC, closed at once
        r = err(lambda: os.close(os.open(w[1], os.O_WRONLY | os.O_TRUNC)))
    elif w[0] == 'peak':
        r = str(peak // MIB)
    elif w[0] == 'parts':
        r = str(stat('UploadPart'))
    print(w[0], r, flush=True)
PY
drive() { python3 "$WORK/writer.py" "$(mount_pid "$1")" "$TMPD" "$PROXY" "$WORK/src" "${@:2}"; }
# the answer of op N (1-based) in drive's output
answer() { sed -n "${2}p" <<<"$1" | cut -d' ' -f2-; }
# the model: what the file holds, built with the same ops on a local file
model() { python3 "$WORK/writer.py" $$ /nonexistent "$PROXY" "$WORK/src" "$@" >/dev/null; }

case_sequential_write_streams() {
    local out
    proxy_reset
    out=$(drive "$MNT" "open:$MNT/seq" write:60 parts peak close)
    check_eq "the writes and the close succeed" "ok ok" "$(answer "$out" 2) $(answer "$out" 5)"
    check "parts went up while the file was written (UploadPart before close: $(answer "$out" 3))" \
        test "$(answer "$out" 3)" -ge 6
    # 10 MiB kept, 20 MiB in flight (4 parts of 5), the part being filled
    check "tmpdir held at most the keep window and the parts in flight ($(answer "$out" 4) MiB of 60)" \
        test "$(answer "$out" 4)" -le 45
    check "one multipart upload, completed once" test "$(proxy_count CompleteMultipartUpload)" -eq 1
    check "no single PUT of it" test "$(proxy_count PutObject)" -eq 0
    head -c $((60 * MIB)) "$WORK/src" >"$WORK/want"
    check "S3 has the bytes written" same_in_s3 seq "$WORK/want"
    check "  and so does the mount" cmp "$MNT/seq" "$WORK/want"
}

# the control for the bound above: without streaming the stage is whole
case_nostream_stages_whole() {
    local out m2=$WORK/mnt2
    mount_fs "$m2" "$BUCKET" -o "endpoint=$PROXY,journal_dir=$WORK/journal2,$OPTS,nostream" || return
    proxy_reset
    out=$(drive "$m2" "open:$m2/whole" write:30 parts peak close)
    check_eq "with nostream: no part before close" "0" "$(answer "$out" 3)"
    check "  and tmpdir held the whole file ($(answer "$out" 4) MiB of 30)" test "$(answer "$out" 4)" -ge 29
    head -c $((30 * MIB)) "$WORK/src" >"$WORK/want"
    check "  S3 has the bytes" same_in_s3 whole "$WORK/want"
    unmount_fs "$m2"
}

# transient faults (503, 500, resets: exactly three, on the first requests
# of the upload): retried, the file lands whole
case_faults_retried() {
    local out
    proxy_reset
    proxy_config "fault_rate=1&fault_count=3&faults=503,500,reset&fault_kinds=CreateMultipartUpload,UploadPart,CompleteMultipartUpload"
    out=$(drive "$MNT" "open:$MNT/flaky" write:30 close)
    proxy_config "fault_rate=0&fault_count=-1"
    check_eq "the writes and the close succeed" "ok ok" "$(answer "$out" 2) $(answer "$out" 3)"
    local n=$(($(proxy_count fault.503) + $(proxy_count fault.500) + $(proxy_count fault.reset)))
    check_eq "three faults were injected" 3 "$n"
    head -c $((30 * MIB)) "$WORK/src" >"$WORK/want"
    check "S3 has the bytes" same_in_s3 flaky "$WORK/want"
}

# written again within the window: the part is sent again
case_rewrite_in_window() {
    local out ops=(write:30 pwrite:24:1 pwrite:21:2 close)
    out=$(drive "$MNT" "open:$MNT/rew" "${ops[@]}")
    check_eq "writes into kept parts succeed" "ok ok ok ok ok" "$(cut -d' ' -f2 <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
    model "open:$WORK/rew.model" "${ops[@]}"
    check "S3 has the rewritten bytes" same_in_s3 rew "$WORK/rew.model"
    check "  and so does the mount" cmp "$MNT/rew" "$WORK/rew.model"
}

# further back than the window: EIO, and nothing else changes
case_released_bytes_eio() {
    local out
    out=$(drive "$MNT" "open:$MNT/rel" write:40 sleep:1 write:1 pwrite:0:1 read:0 truncate:3 close)
    check_eq "a write into bytes given back fails" "Input/output error" "$(answer "$out" 5)"
    check_eq "  and so does a read there" "Input/output error" "$(answer "$out" 6)"
    check_eq "  and a truncate into them" "Input/output error" "$(answer "$out" 7)"
    check_eq "the close succeeds" "ok" "$(answer "$out" 8)"
    head -c $((41 * MIB)) "$WORK/src" >"$WORK/want"
    check "S3 has the sequential bytes, untouched by the failed calls" same_in_s3 rel "$WORK/want"
}

case_truncate_then_grow() {
    local out ops=(write:30 truncate:27 write:5 close)
    out=$(drive "$MNT" "open:$MNT/tg" "${ops[@]}")
    check_eq "truncate above the window and grow again" "ok ok ok ok ok" "$(cut -d' ' -f2 <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
    model "open:$WORK/tg.model" "${ops[@]}"
    check "S3 has the bytes" same_in_s3 tg "$WORK/tg.model"
}

# fsync completes the upload; writing on after bytes were given back is a
# rewrite (the object is downloaded again), and the result is whole
case_fsync_mid_stream() {
    local out ops=(write:40 sleep:1 write:1 fsync write:5 pwrite:2:1 close)
    out=$(drive "$MNT" "open:$MNT/fs" "${ops[@]}")
    check_eq "every call succeeds" "ok ok ok ok ok ok ok ok" "$(cut -d' ' -f2 <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
    model "open:$WORK/fs.model" "${ops[@]}"
    check "S3 has the bytes" same_in_s3 fs "$WORK/fs.model"
    check "  and so does the mount" cmp "$MNT/fs" "$WORK/fs.model"
}

# another descriptor truncates the file to nothing while it streams
case_truncated_by_another_open() {
    local out ops=(write:30 "reopen:$MNT/tr" write:12 close)
    out=$(drive "$MNT" "open:$MNT/tr" "${ops[@]}")
    check_eq "every call succeeds" "ok ok ok ok ok" "$(cut -d' ' -f2 <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
    head -c $((30 * MIB)) /dev/zero >"$WORK/tr.model" # writes continue at their offsets
    dd if="$WORK/src" of="$WORK/tr.model" bs=1M skip=30 seek=30 count=12 conv=notrunc status=none
    check "S3 has the bytes" same_in_s3 tr "$WORK/tr.model"
}

aborts_above() { [ "$(proxy_count AbortMultipartUpload)" -gt "$1" ]; }

# every part fails: close fails, S3 keeps the old object, no part lingers
case_failed_part_fails_close() {
    local out
    echo "old content" >"$WORK/old"
    s3c put "$BUCKET" victim "$WORK/old" >/dev/null
    proxy_reset
    proxy_config "fault_rate=1&faults=500&fault_kinds=UploadPart"
    out=$(drive "$MNT" "open:$MNT/victim" write:20 close)
    # the kernel's release comes after close and tries the upload once more
    # (whole, not streamed): the faults stay until that attempt was aborted
    # too (the streamed upload's abort and its own)
    wait_until 120 aborts_above 1
    sleep 0.2 # the release lets the node go right after
    proxy_config "fault_rate=0"
    check "the streamed upload and the release's were aborted" aborts_above 1
    check_eq "close reports the failed upload" "Input/output error" "$(answer "$out" 3)"
    check "S3 still has the old object" same_in_s3 victim "$WORK/old"
    check "  never completed" test "$(proxy_count CompleteMultipartUpload)" -eq 0
    check "a new open shows what S3 has" cmp "$MNT/victim" "$WORK/old"
}

# parts landed and were given back, then one fails: the content is gone,
# every access fails until the close, and S3 keeps what it had
case_failure_after_release() {
    local out
    echo "older content" >"$WORK/old2"
    s3c put "$BUCKET" victim2 "$WORK/old2" >/dev/null
    out=$(drive "$MNT" "open:$MNT/victim2" write:31 close)
    check_eq "first upload fine" "ok" "$(answer "$out" 3)"
    # again, with the faults coming after parts were given back
    out=$(python3 - "$MNT/victim2" "$WORK/src" "$PROXY" <<'PY'
import os, sys, time, urllib.request
MIB = 1 << 20
data = open(sys.argv[2], 'rb').read()
fd = os.open(sys.argv[1], os.O_RDWR | os.O_TRUNC)
for i in range(30):
    os.pwrite(fd, data[i * MIB:(i + 1) * MIB], i * MIB)
time.sleep(1)
os.pwrite(fd, data[30 * MIB:31 * MIB], 30 * MIB)  # gives back what landed
urllib.request.urlopen(urllib.request.Request(
    sys.argv[3] + '/__proxy/config?fault_rate=1&faults=500&fault_kinds=UploadPart',
    method='POST'), timeout=10).read()
for i in range(31, 45):
    os.pwrite(fd, data[i * MIB:(i + 1) * MIB], i * MIB)
for what, f in (('close', lambda: os.close(fd)),):
    try:
        f()
        print(what, 'ok')
    except OSError as e:
        print(what, e.strerror)
PY
    )
    proxy_config "fault_rate=0"
    check_eq "close reports the failed upload" "close Input/output error" "$out"
    head -c $((31 * MIB)) "$WORK/src" >"$WORK/want"
    check "S3 has the version before it" same_in_s3 victim2 "$WORK/want"
    check "  and a new open shows it" cmp "$MNT/victim2" "$WORK/want"
}

# an unlinked file uploads nothing and leaves no part
case_unlink_while_streaming() {
    local out
    proxy_reset
    out=$(drive "$MNT" "open:$MNT/gone" write:20 "unlink:$MNT/gone" write:5 close)
    check_eq "writes after the unlink and the close succeed" "ok ok" "$(answer "$out" 4) $(answer "$out" 5)"
    check_not "no object" s3c head "$BUCKET" gone
    check "the upload was aborted" test "$(proxy_count AbortMultipartUpload)" -ge 1
    check "  never completed" test "$(proxy_count CompleteMultipartUpload)" -eq 0
}

# cp -p: mode and times set after the data are written as metadata
case_cp_p_keeps_attributes() {
    head -c $((20 * MIB)) "$WORK/src" >"$WORK/attrs"
    chmod 0640 "$WORK/attrs"
    touch -d '2001-02-03 04:05:06 UTC' "$WORK/attrs"
    cp -p "$WORK/attrs" "$MNT/attrs"
    check_eq "mode kept" "$(printf '%d' 0100640)" "$(meta_of attrs mode)"
    check_eq "mtime kept" "981173106" "$(meta_of attrs mtime | cut -d. -f1)"
    check "bytes" same_in_s3 attrs "$WORK/attrs"
    check_eq "the mount shows the times" "981173106" "$(stat -c %Y "$MNT/attrs")"
}

# DESIGN §3.13: a streamed rewrite of another client's object keeps its
# other metadata, content type, content headers and tags
case_overwrite_keeps_the_rest() {
    local out
    aws_ s3api put-object --bucket "$BUCKET" --key rich --body "$WORK/old" --content-type text/x-rich \
        --metadata foreign=keepme --cache-control max-age=60 --tagging 'team=blue' >/dev/null
    sleep 1.2 # past attr_ttl: the mount sees it
    proxy_reset
    out=$(drive "$MNT" "open:$MNT/rich" write:20 close)
    check_eq "the overwrite succeeds" "ok" "$(answer "$out" 3)"
    check "  and it streamed (parts before close)" test "$(proxy_count UploadPart)" -ge 3
    check_eq "foreign metadata kept" keepme "$(meta_of rich foreign)"
    check_eq "content type kept" text/x-rich \
        "$(aws_ s3api head-object --bucket "$BUCKET" --key rich --query ContentType --output text)"
    check_eq "cache-control kept" max-age=60 \
        "$(aws_ s3api head-object --bucket "$BUCKET" --key rich --query CacheControl --output text)"
    check_eq "tags kept" team=blue "$(aws_ s3api get-object-tagging --bucket "$BUCKET" --key rich \
        --query 'TagSet[0].[Key,Value]' --output text | tr '\t' =)"
    head -c $((20 * MIB)) "$WORK/src" >"$WORK/want"
    check "the bytes are the new ones" same_in_s3 rich "$WORK/want"
}

# cp of a new file: no metadata times (Last-Modified stands for them)
case_new_file_times_from_upload() {
    local t0
    t0=$(date +%s)
    head -c $((12 * MIB)) "$WORK/src" >"$WORK/plain"
    cp "$WORK/plain" "$MNT/plain"
    check_eq "no mtime field in the metadata" "None" "$(meta_of plain mtime)"
    check "the mount shows a current mtime" test "$(stat -c %Y "$MNT/plain")" -ge $((t0 - 1))
}

run_cases "$@"
