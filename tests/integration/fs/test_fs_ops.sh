#!/bin/bash
# Every filesystem operation through a real mount, checked through the
# mount and through the S3 API.
. "$(dirname "$0")/lib.sh"
fs_setup

case_mkdir_rmdir() {
    check "mkdir" mkdir d1
    check_eq "mkdir writes a marker with the directory's mode" "16877" "$(meta_of d1/ mode)"
    check_err "mkdir of an existing directory" "File exists" mkdir d1
    check "nested mkdir -p" mkdir -p d1/a/b/c
    echo x >d1/a/file
    check_err "rmdir of a non-empty directory" "not empty" rmdir d1/a
    check "rmdir of an empty directory" rmdir d1/a/b/c
    check_not "it is gone" test -e d1/a/b/c
    check_err "rmdir of a file" "Not a directory" rmdir d1/a/file
}

case_write_read_append() {
    printf 'hello\n' >f1
    check_eq "read back" "hello" "$(cat f1)"
    check "object in S3 byte for byte" same_in_s3 f1 f1
    printf 'world\n' >>f1
    check_eq "append" "hello world" "$(cat f1 | tr '\n' ' ' | sed 's/ $//')"
    printf 'J' | dd of=f1 bs=1 seek=0 conv=notrunc status=none
    check_eq "overwrite in place" "Jello" "$(head -1 f1)"
    aws_ s3 cp --quiet "s3://$BUCKET/f1" "$WORK/f1.s3"
    check_eq "overwrite reached S3" "Jello" "$(head -1 "$WORK/f1.s3")"
}

case_truncate() {
    printf 'Jello\nworld\n' >tr1 || { bad "cannot write tr1"; return; }
    truncate -s 3 tr1
    check_eq "truncate shrink" "Jel" "$(cat tr1)"
    truncate -s 10 tr1
    check_eq "truncate extend: size" "10" "$(stat -c %s tr1)"
    check_eq "truncate extend: zeros" "4a656c00000000000000" "$(od -An -tx1 tr1 | tr -d ' \n')"
    check_eq "truncate reached S3" "10" "$(aws_ s3api head-object --bucket "$BUCKET" --key tr1 --query ContentLength)"
    : >tr1
    check_eq "O_TRUNC empties" "0" "$(stat -c %s tr1)"
}

# st_blocks = ceil(size/512): coreutils decides on sparse copies with it
case_st_blocks() {
    head -c 1000 /dev/zero >blk
    : >blk0
    check_eq "st_blocks of 1000 bytes" "2" "$(stat -c %b blk)"
    check_eq "st_blocks of 0 bytes" "0" "$(stat -c %b blk0)"
}

# creating costs nothing until flush; an empty file still exists after close
case_touch_creates_empty() {
    touch empty
    check_eq "touch creates an empty object" "0" "$(aws_ s3api head-object --bucket "$BUCKET" --key empty --query ContentLength)"
}

case_unlink() {
    head -c 1000 /dev/zero >ul || { bad "cannot write ul"; return; }
    check "unlink" rm ul
    check_not "unlinked: gone from the mount at once" test -e ul
    landed
    check_not "unlinked: gone from the mount" test -e ul
    check_not "unlinked: gone from S3" aws_ s3api head-object --bucket "$BUCKET" --key ul
    check_err "unlink of a missing file" "No such file" rm nothing
}

# rename of a file, metadata kept; NOREPLACE
case_rename_file() {
    mkdir rn || { bad "cannot mkdir rn"; return; }
    echo data >r1
    chmod 640 r1
    check "rename" mv r1 rn/r2
    check_eq "renamed content" "data" "$(cat rn/r2)"
    landed
    check_not "source gone" aws_ s3api head-object --bucket "$BUCKET" --key r1
    check_eq "mode kept" "33184" "$(meta_of rn/r2 mode)"
    echo other >r3
    mv -n r3 rn/r2
    check_eq "mv -n (RENAME_NOREPLACE) leaves the target" "data" "$(cat rn/r2)"
    check "mv -n leaves the source" test -e r3
    check "rename over an existing file" mv r3 rn/r2
    landed
    check_eq "replaced" "other" "$(cat rn/r2)"
}

# rename of a directory with contents
case_rename_dir() {
    mkdir -p tree/sub && echo 1 >tree/a && echo 2 >tree/sub/b || { bad "cannot make tree"; return; }
    check "rename a directory" mv tree tree2
    check_eq "tree moved" "1 2" "$(cat tree2/a tree2/sub/b | tr '\n' ' ' | sed 's/ $//')"
    check_eq "no object left under the old name" "" "$(aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix tree/ --query 'Contents[].Key' --output text | sed 's/None//')"
}

# chmod, chown, utimens in the s3fs format
case_chmod_chown_utimens() {
    echo m >meta
    chmod 600 meta
    check_eq "chmod in S3" "33152" "$(meta_of meta mode)"
    chown 1234:5678 meta
    check_eq "chown uid in S3" "1234" "$(meta_of meta uid)"
    check_eq "chown gid in S3" "5678" "$(meta_of meta gid)"
    touch -m -d '2021-02-03 04:05:06 UTC' meta
    check_eq "utimens mtime in S3" "1612325106" "$(meta_of meta mtime)"
    check_eq "mtime through the mount" "1612325106" "$(stat -c %Y meta)"
    check_eq "content survives metadata changes" "m" "$(cat meta)"
}

case_symlink() {
    mkdir sl && echo other >sl/r2 || { bad "cannot make sl/r2"; return; }
    ln -s sl/r2 link
    check_eq "readlink" "sl/r2" "$(readlink link)"
    check_eq "through the link" "other" "$(cat link)"
    check_eq "symlink mode in S3" "41471" "$(meta_of link mode)"
}

case_statfs() {
    check "df works" df "$MNT"
}

# extended attributes (s3fs x-amz-meta-xattr)
case_xattr() {
    command -v setfattr >/dev/null || { bad "setfattr not installed (package attr)"; return; }
    echo x >xa
    setfattr -n user.color -v blue xa
    check_eq "getfattr" "blue" "$(getfattr --only-values -n user.color xa)"
    check "xattr stored in S3" test -n "$(meta_of xa xattr)"
    setfattr -x user.color xa
    check_not "removed xattr" getfattr -n user.color xa
}

# a key that is both "a" and "a/": the file wins, consistently
case_file_and_dir_key() {
    aws_ s3api put-object --bucket "$BUCKET" --key both --body /etc/hostname >/dev/null
    aws_ s3api put-object --bucket "$BUCKET" --key both/inner --body /etc/hostname >/dev/null
    sleep 1.2 # only lets time pass: past the root's cached listing (dir_ttl=1)
    check "both a and a/: shows as a file" test -f both
    check_eq "both a and a/: listed once" "1" "$(ls | grep -c '^both$')"
}

# implicit directories (keys under a prefix with no marker)
case_implicit_dir() {
    aws_ s3api put-object --bucket "$BUCKET" --key implicit/x/y.txt --body /etc/hostname >/dev/null
    sleep 1.2 # only lets time pass: past the root's cached listing (dir_ttl=1)
    check "implicit directory" test -d implicit/x
    check_eq "file in implicit directory" "$(cat /etc/hostname)" "$(cat implicit/x/y.txt)"
}

run_cases "$@"
