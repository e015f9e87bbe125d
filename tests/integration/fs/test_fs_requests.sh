#!/bin/bash
# What the mount sends, counted by the proxy: creating costs nothing until
# flush, cp is one CopyObject with no data through the client, ls -l sends no
# serial per-file requests, and a failed upload is returned by close.
. "$(dirname "$0")/lib.sh"
trap fs_cleanup EXIT
BUCKET=$(new_bucket)
start_proxy
MNT=$WORK/mnt
MNT_ARGS=(-o "endpoint=$PROXY")
mount_fs "$MNT" "$BUCKET" "${MNT_ARGS[@]}" || exit 2


# creating the destination costs nothing: no PUT until the file is flushed
# (python holds the descriptor: a shell's redirections dup and close it,
# and every close of a descriptor flushes)
case_create_puts_on_close() {
    local counts
    proxy_reset
    counts=$(python3 - "$MNT/new" "$PROXY" <<'PY'
import os, sys, urllib.request
def puts():
    s = urllib.request.urlopen(sys.argv[2] + "/__proxy/stats").read().decode()
    return sum(int(l.split()[1]) for l in s.splitlines() if l.startswith("PutObject "))
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
a = puts()
os.write(fd, b"data")
b = puts()
os.close(fd)
print(a, b, puts())
PY
    )
    check_eq "PutObject after open(O_CREAT), after write, after close" "0 0 1" "$counts"
}

# cp inside the mount: one CopyObject, no object data through the client
case_cp_is_one_copy() {
    head -c 200000 /dev/urandom >"$WORK/src"
    cp "$WORK/src" "$MNT/src" || { bad "cannot write src"; return; }
    landed
    proxy_reset
    cp "$MNT/src" "$MNT/dst"
    landed
    check_eq "cp = exactly one CopyObject" 1 "$(proxy_count CopyObject)"
    check_eq "cp: no GetObject" 0 "$(proxy_count GetObject)"
    check_eq "cp: no PutObject" 0 "$(proxy_count PutObject)"
    check "cp: the copy is byte-identical in S3" same_in_s3 dst "$WORK/src"
}

# ls -l of a directory listed once: attributes come with the listing
case_ls_no_head_per_file() {
    local i n
    mkdir "$MNT/many" || { bad "cannot mkdir many"; return; }
    for i in $(seq 1 60); do echo "$i" >"$MNT/many/f$i"; done
    remount -o "endpoint=$PROXY,listing_attrs_only" || return
    proxy_reset
    n=$(ls -l "$MNT/many" | grep -c '^-')
    check_eq "ls -l shows 60 files" 60 "$n"
    check "ls -l with listing_attrs_only: no HEAD per file" test "$(proxy_count HeadObject)" -le 3
    check "ls -l: one listing request (plus the directory's own lookup)" test "$(proxy_count ListObjects)" -le 2
    remount || return
    proxy_reset
    ls -l "$MNT/many" >/dev/null
    ls -l "$MNT/many" >/dev/null
    check "ls -l twice: one HEAD per file at most (cached after)" test "$(proxy_count HeadObject)" -le 62
}

# a large cp: parallel UploadPartCopy, still no data through the client
case_large_cp_part_copies() {
    remount -o "endpoint=$PROXY,copy_threshold=5,copy_part_size=5" || return
    head -c $((12 * 1024 * 1024 + 7)) /dev/urandom >"$WORK/large"
    cp "$WORK/large" "$MNT/large" || { bad "cannot write large"; return; }
    landed
    proxy_reset
    cp "$MNT/large" "$MNT/large-copy"
    landed
    check_eq "12 MiB cp: 3 UploadPartCopy" 3 "$(proxy_count UploadPartCopy)"
    check_eq "12 MiB cp: no CopyObject" 0 "$(proxy_count CopyObject)"
    check_eq "12 MiB cp: no GetObject" 0 "$(proxy_count GetObject)"
    check_eq "12 MiB cp: no UploadPart" 0 "$(proxy_count UploadPart)"
    check "12 MiB cp: byte-identical in S3" same_in_s3 large-copy "$WORK/large"
}

# a sequential read fetches every byte once: the kernel's read-ahead sends
# several reads at once, and those inside a window being fetched wait for it
case_sequential_read_once() {
    local got
    head -c $((12 * 1024 * 1024 + 7)) /dev/urandom >"$WORK/seq"
    cp "$WORK/seq" "$MNT/seq" || { bad "cannot write seq"; return; }
    # a fresh daemon: nothing of the file is cached
    remount || return
    stat -c %s "$MNT/seq" >/dev/null
    proxy_reset
    check "sequential read: right bytes" cmp "$MNT/seq" "$WORK/seq"
    got=$(curl -s "$PROXY/__proxy/stats" | awk '$1=="GetObject"{print $4}')
    check_eq "sequential read: GetObject bytes = the file's size" "$((12 * 1024 * 1024 + 7))" "${got:-0}"
}

# names made beside each other in a directory this mount made (its listing
# is held): each costs its one PUT, no lookup in S3 (issue 15 §3: mkdir used
# to drop the parent's listing, so the next name cost HEAD + LIST + HEAD)
case_mkdir_beside_mkdir_one_put() {
    mkdir "$MNT/made" || { bad "cannot mkdir made"; return; }
    proxy_reset
    mkdir "$MNT/made/a" || { bad "cannot mkdir made/a"; return; }
    check_eq "mkdir in a fresh directory: one PutObject" 1 "$(proxy_count PutObject)"
    mkdir "$MNT/made/b" && ln -s a "$MNT/made/l" && mkdir "$MNT/made/c" ||
        { bad "cannot make b, l, c"; return; }
    check_eq "three more names beside it: one PutObject each" 4 "$(proxy_count PutObject)"
    check_eq "no HeadObject" 0 "$(proxy_count HeadObject)"
    check_eq "no ListObjects" 0 "$(proxy_count ListObjects)"
    check_eq "ls shows the four" "a b c l" "$(ls "$MNT/made" | tr '\n' ' ' | sed 's/ $//')"
    check "made/b is a marker in S3" aws_ s3api head-object --bucket "$BUCKET" --key made/b/
}

# a name looked up in a directory whose listing this mount does not hold:
# missing costs one HEAD and one LIST (the keys starting with the name say
# at once whether "name/", "name/..." or "name_$folder$" exists); each kind
# of directory is still found, also when the page of such keys is cut short
# before the answer (more than 100 keys "name-...": asked as before)
case_lookup_miss_two_requests() {
    local i
    aws_ s3api put-object --bucket "$BUCKET" --key lk/x --body /etc/hostname >/dev/null &&
        aws_ s3api put-object --bucket "$BUCKET" --key lk/imp/y --body /etc/hostname >/dev/null &&
        aws_ s3api put-object --bucket "$BUCKET" --key lk/mk/ --metadata mode=16832 >/dev/null &&
        aws_ s3api put-object --bucket "$BUCKET" --key 'lk/fo_$folder$' >/dev/null &&
        aws_ s3api put-object --bucket "$BUCKET" --key lk/cut/ >/dev/null ||
        { bad "cannot put the lk keys"; return; }
    for i in $(seq -w 1 101); do echo "lk/cut-$i"; echo "lk/gone-$i"; done |
        xargs -P 8 -I K "$S3CFS_S3C" put "$BUCKET" K /etc/hostname >/dev/null ||
        { bad "cannot put the cut keys"; return; }
    remount || return
    stat "$MNT/lk" >/dev/null || { bad "lk not found"; return; }
    proxy_reset
    check_not "a missing name is missing" stat "$MNT/lk/missing"
    check_eq "missing: one HeadObject" 1 "$(proxy_count HeadObject)"
    check_eq "missing: one ListObjects" 1 "$(proxy_count ListObjects)"
    check "an implicit directory is a directory" test -d "$MNT/lk/imp"
    check "a directory with a marker is a directory" test -d "$MNT/lk/mk"
    check_eq "its mode comes from the marker" 700 "$(stat -c %a "$MNT/lk/mk")"
    check "an old-style folder object is a directory" test -d "$MNT/lk/fo"
    check "a marker after 101 keys cut-NNN is found" test -d "$MNT/lk/cut"
    check_not "a missing name after 101 keys gone-NNN is missing" stat "$MNT/lk/gone"
    check "a file is a file" test -f "$MNT/lk/x"
}

# a new file written, fsynced and written again: each upload is one PUT; the
# second need not ask S3 what to keep, the object being the one the first
# made. A setxattr in between is kept by the next upload (it asks then).
case_rewrite_after_fsync_one_put() {
    mkdir "$MNT/fs2" || { bad "cannot mkdir fs2"; return; }
    proxy_reset
    # from /: a python started in the mount looks for .python-version there
    cd / || return
    python3 - "$MNT/fs2/n.txt" <<'PY' || { bad "write, fsync, write failed"; return; }
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"first ")
os.fsync(fd)
os.write(fd, b"second")
os.close(fd)
PY
    check_eq "write, fsync, write, close: two PutObject" 2 "$(proxy_count PutObject)"
    check_eq "and no HeadObject" 0 "$(proxy_count HeadObject)"
    check_eq "S3 has both writes" "first second" "$(s3c get "$BUCKET" fs2/n.txt -)"
    check_eq "the second upload kept the type from the name" text/plain \
        "$(aws_ s3api head-object --bucket "$BUCKET" --key fs2/n.txt --query ContentType --output text)"
    python3 - "$MNT/fs2/x.txt" <<'PY' || { bad "write, fsync, setxattr, write failed"; return; }
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"one ")
os.fsync(fd)
os.setxattr(sys.argv[1], "user.k", b"v")
os.write(fd, b"two")
os.close(fd)
PY
    check_eq "S3 has both writes of x.txt" "one two" "$(s3c get "$BUCKET" fs2/x.txt -)"
    check "the xattr set between the uploads is kept" test -n "$(meta_of fs2/x.txt xattr | grep -v None)"
    remount || return
    check_eq "and read back after a remount" v "$(getfattr --only-values -n user.k "$MNT/fs2/x.txt" 2>/dev/null)"
}

# the upload attempts of the file failing the log shows (close's and release's)
failed_puts() { [ "$(grep -c 'put .*failing' "$WORK/s3cfs.log")" -ge 2 ]; }

# a failed upload is returned by close, and nothing half-written is left
case_failed_upload_close() {
    local out
    proxy_config "fault_rate=1&faults=500&fault_kinds=PutObject"
    out=$(python3 - "$MNT/failing" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"lost")
try:
    os.close(fd)
    print("closed fine")
except OSError as e:
    print(e.strerror)
PY
    )
    check_eq "close reports the failed upload" "Input/output error" "$out"
    # the kernel's release comes after close and tries once more (with its own
    # retries): wait until that attempt has failed too before the faults stop
    wait_until 60 failed_puts
    proxy_config "fault_rate=0"
    check_not "the failed file is not in S3" aws_ s3api head-object --bucket "$BUCKET" --key failing
    check "the failure is logged" grep -q "InternalError" "$WORK/s3cfs.log"
}

run_cases "$@"
