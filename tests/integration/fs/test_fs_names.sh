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
