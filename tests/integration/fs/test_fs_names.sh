#!/bin/bash
# Odd names and ordinary tools: unicode, spaces, '+', '%', 255-byte names,
# tar, rsync, find, an in-place edit, cp in and out.
. "$(dirname "$0")/lib.sh"
fs_setup
for n in "with space" "plus+sign" "per%cent" "élève-日本語" "q?mark" "semi;colon" "tab	in"; do
    echo "$n" >"$MNT/$n"
    check_eq "name [$n] through the mount" "$n" "$(cat "$MNT/$n")"
    check_eq "name [$n] in S3" "$n" "$(aws_ s3 cp --quiet "s3://$BUCKET/$n" -)"
done
long=$(printf 'n%.0s' $(seq 1 255))
check "a 255-byte name" sh -c "echo x > '$MNT/$long'"
check "a 255-byte name is listed" sh -c "ls '$MNT' | grep -qx '$long'"
check_err "a 256-byte name" "File name too long" sh -c "echo x > '$MNT/${long}m'"

# the deliberate limits (README "What is POSIX and what is not")
b250=$(printf 'b%.0s' $(seq 1 250))
deep="$b250/$b250/$b250/$b250"
check "a key of 1004 bytes" mkdir -p "$MNT/$deep"
check_err "a key over 1024 bytes" "File name too long" mkdir "$MNT/$deep/$b250"
check_err "a file whose key is over 1024 bytes" "File name too long" sh -c "echo x > '$MNT/$deep/f$b250'"
check_eq "S3: nothing over 1024 bytes was made" "" \
    "$(aws_ s3api list-objects-v2 --bucket "$BUCKET" --query 'Contents[].Key' --output text | tr '\t' '\n' | awk 'length > 1024')"
check_err "the mount's root carries no attributes: chmod" "not permitted" chmod 700 "$MNT"
check_err "the mount's root: touch" "not permitted" touch "$MNT"
check_err "the mount's root: chown" "not permitted" chown 1 "$MNT"
check_err "the mount's root: setfattr" "not permitted" setfattr -n user.k -v v "$MNT"
echo x >"$MNT/hl"
check_err "no hard links" "not permitted" ln "$MNT/hl" "$MNT/hl2"
check_not "S3: no hard link object" aws_ s3api head-object --bucket "$BUCKET" --key hl2
ALL=$WORK/all
mount_fs "$ALL" || exit 2
check_err "a bucket directory carries no attributes: chmod" "not permitted" chmod 700 "$ALL/$BUCKET"
check_err "a bucket directory: touch" "not permitted" touch "$ALL/$BUCKET"
check_err "the all-buckets root: chmod" "not permitted" chmod 700 "$ALL"
unmount_fs "$ALL"
rm -rf "${MNT:?}/$b250" "$MNT/hl"

# ordinary tools
mkdir -p "$WORK/t/a/b"
for i in $(seq 1 20); do head -c $((i * 100)) /dev/urandom >"$WORK/t/a/f$i"; done
echo deep >"$WORK/t/a/b/deep"
check "tar extracts into the mount" sh -c "tar -C '$WORK' -cf - t | tar -C '$MNT' -xf -"
check "diff -r after tar" diff -r "$WORK/t" "$MNT/t"
check "rsync into the mount" rsync -a "$WORK/t/" "$MNT/r/"
check "diff -r after rsync" diff -r "$WORK/t" "$MNT/r"
check_eq "find counts the files" "21" "$(find "$MNT/t" -type f | wc -l)"
sed -i 's/deep/DEEP/' "$MNT/t/a/b/deep"
check_eq "in-place edit (sed -i: temp file + rename)" "DEEP" "$(cat "$MNT/t/a/b/deep")"
check "cp -r out of the mount" cp -r "$MNT/t" "$WORK/out"
check "copied out intact" diff -r "$MNT/t" "$WORK/out"
check "tar of the mount" tar -C "$MNT" -cf "$WORK/back.tar" t
fs_done
