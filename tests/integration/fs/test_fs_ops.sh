#!/bin/bash
# Every filesystem operation through a real mount, checked through the
# mount and through the S3 API.
. "$(dirname "$0")/lib.sh"
fs_setup
cd "$MNT" || exit 2

# mkdir / rmdir
check "mkdir" mkdir d1
check_eq "mkdir writes a marker with the directory's mode" "16877" "$(meta_of d1/ mode)"
check_err "mkdir of an existing directory" "File exists" mkdir d1
check "nested mkdir -p" mkdir -p d1/a/b/c
echo x >d1/a/file
check_err "rmdir of a non-empty directory" "not empty" rmdir d1/a
check "rmdir of an empty directory" rmdir d1/a/b/c
check_not "it is gone" test -e d1/a/b/c
check_err "rmdir of a file" "Not a directory" rmdir d1/a/file

# create, write, read, append, overwrite
printf 'hello\n' >f1
check_eq "read back" "hello" "$(cat f1)"
check "object in S3 byte for byte" same_in_s3 f1 f1
printf 'world\n' >>f1
check_eq "append" "hello world" "$(cat f1 | tr '\n' ' ' | sed 's/ $//')"
printf 'J' | dd of=f1 bs=1 seek=0 conv=notrunc status=none
check_eq "overwrite in place" "Jello" "$(head -1 f1)"
aws_ s3 cp --quiet "s3://$BUCKET/f1" "$WORK/f1.s3"
check_eq "overwrite reached S3" "Jello" "$(head -1 "$WORK/f1.s3")"

# truncate
truncate -s 3 f1
check_eq "truncate shrink" "Jel" "$(cat f1)"
truncate -s 10 f1
check_eq "truncate extend: size" "10" "$(stat -c %s f1)"
check_eq "truncate extend: zeros" "4a656c00000000000000" "$(od -An -tx1 f1 | tr -d ' \n')"
check_eq "truncate reached S3" "10" "$(aws_ s3api head-object --bucket "$BUCKET" --key f1 --query ContentLength)"
: >f1
check_eq "O_TRUNC empties" "0" "$(stat -c %s f1)"

# st_blocks = ceil(size/512): coreutils decides on sparse copies with it
head -c 1000 /dev/zero >blk
check_eq "st_blocks of 1000 bytes" "2" "$(stat -c %b blk)"
check_eq "st_blocks of 0 bytes" "0" "$(stat -c %b f1)"

# creating costs nothing until flush; an empty file still exists after close
touch empty
check_eq "touch creates an empty object" "0" "$(aws_ s3api head-object --bucket "$BUCKET" --key empty --query ContentLength)"

# unlink
check "unlink" rm blk
check_not "unlinked: gone from the mount at once" test -e blk
landed
check_not "unlinked: gone from the mount" test -e blk
check_not "unlinked: gone from S3" aws_ s3api head-object --bucket "$BUCKET" --key blk
check_err "unlink of a missing file" "No such file" rm nothing

# rename of a file, metadata kept; NOREPLACE
echo data >r1
chmod 640 r1
check "rename" mv r1 d1/r2
check_eq "renamed content" "data" "$(cat d1/r2)"
landed
check_not "source gone" aws_ s3api head-object --bucket "$BUCKET" --key r1
check_eq "mode kept" "33184" "$(meta_of d1/r2 mode)"
echo other >r3
mv -n r3 d1/r2
check_eq "mv -n (RENAME_NOREPLACE) leaves the target" "data" "$(cat d1/r2)"
check "mv -n leaves the source" test -e r3
check "rename over an existing file" mv r3 d1/r2
landed
check_eq "replaced" "other" "$(cat d1/r2)"

# rename of a directory with contents
mkdir -p tree/sub && echo 1 >tree/a && echo 2 >tree/sub/b
check "rename a directory" mv tree tree2
check_eq "tree moved" "1 2" "$(cat tree2/a tree2/sub/b | tr '\n' ' ' | sed 's/ $//')"
check_eq "no object left under the old name" "" "$(aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix tree/ --query 'Contents[].Key' --output text | sed 's/None//')"

# chmod, chown, utimens in the s3fs format
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

# symlinks
ln -s d1/r2 link
check_eq "readlink" "d1/r2" "$(readlink link)"
check_eq "through the link" "other" "$(cat link)"
check_eq "symlink mode in S3" "41471" "$(meta_of link mode)"

# statfs
check "df works" df "$MNT"

# extended attributes (s3fs x-amz-meta-xattr)
if command -v setfattr >/dev/null; then
    setfattr -n user.color -v blue meta
    check_eq "getfattr" "blue" "$(getfattr --only-values -n user.color meta)"
    check "xattr stored in S3" test -n "$(meta_of meta xattr)"
    setfattr -x user.color meta
    check_not "removed xattr" getfattr -n user.color meta
else
    bad "setfattr not installed (package attr)"
fi

# a key that is both "a" and "a/": the file wins, consistently
aws_ s3api put-object --bucket "$BUCKET" --key both --body /etc/hostname >/dev/null
aws_ s3api put-object --bucket "$BUCKET" --key both/inner --body /etc/hostname >/dev/null
sleep 1.2
check "both a and a/: shows as a file" test -f both
check_eq "both a and a/: listed once" "1" "$(ls | grep -c '^both$')"

# implicit directories (keys under a prefix with no marker)
aws_ s3api put-object --bucket "$BUCKET" --key implicit/x/y.txt --body /etc/hostname >/dev/null
sleep 1.2
check "implicit directory" test -d implicit/x
check_eq "file in implicit directory" "$(cat /etc/hostname)" "$(cat implicit/x/y.txt)"

fs_done
