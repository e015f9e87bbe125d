#!/bin/bash
# Odd names and ordinary tools: unicode, spaces, '+', '%', 255-byte names,
# tar, rsync, find, an in-place edit, cp in and out.
. "$(dirname "$0")/lib.sh"
fs_setup

case_odd_names() {
    local n
    for n in "with space" "plus+sign" "per%cent" "élève-日本語" "q?mark" "semi;colon" "tab	in"; do
        echo "$n" >"$MNT/$n"
        check_eq "name [$n] through the mount" "$n" "$(cat "$MNT/$n")"
        check_eq "name [$n] in S3" "$n" "$(aws_ s3 cp --quiet "s3://$BUCKET/$n" -)"
    done
}

case_name_255_bytes() {
    local long
    long=$(printf 'n%.0s' $(seq 1 255))
    check "a 255-byte name" sh -c "echo x > '$MNT/$long'"
    check "a 255-byte name is listed" sh -c "ls '$MNT' | grep -qx '$long'"
    check_err "a 256-byte name" "File name too long" sh -c "echo x > '$MNT/${long}m'"
}

# the deliberate limits (README "What is POSIX and what is not")
case_key_limit_1024() {
    local b250 deep
    b250=$(printf 'b%.0s' $(seq 1 250))
    deep="$b250/$b250/$b250/$b250"
    check "a key of 1004 bytes" mkdir -p "$MNT/$deep"
    check_err "a key over 1024 bytes" "File name too long" mkdir "$MNT/$deep/$b250"
    check_err "a file whose key is over 1024 bytes" "File name too long" sh -c "echo x > '$MNT/$deep/f$b250'"
    check_eq "S3: nothing over 1024 bytes was made" "" \
        "$(aws_ s3api list-objects-v2 --bucket "$BUCKET" --query 'Contents[].Key' --output text | tr '\t' '\n' | awk 'length > 1024')"
    rm -rf "${MNT:?}/$b250"
}

case_root_no_attributes() {
    check_err "the mount's root carries no attributes: chmod" "not permitted" chmod 700 "$MNT"
    check_err "the mount's root: touch" "not permitted" touch "$MNT"
    check_err "the mount's root: chown" "not permitted" chown 1 "$MNT"
    check_err "the mount's root: setfattr" "not permitted" setfattr -n user.k -v v "$MNT"
}

case_no_hard_links() {
    echo x >"$MNT/hl"
    check_err "no hard links" "not permitted" ln "$MNT/hl" "$MNT/hl2"
    check_not "S3: no hard link object" aws_ s3api head-object --bucket "$BUCKET" --key hl2
    rm -f "$MNT/hl"
}

case_all_buckets_no_attributes() {
    local all=$WORK/all
    mount_fs "$all" || { bad "the all-buckets mount failed"; return; }
    check_err "a bucket directory carries no attributes: chmod" "not permitted" chmod 700 "$all/$BUCKET"
    check_err "a bucket directory: touch" "not permitted" touch "$all/$BUCKET"
    check_err "the all-buckets root: chmod" "not permitted" chmod 700 "$all"
    unmount_fs "$all"
}

# --- ordinary tools ---------------------------------------------------------

# local_tree DIR: DIR/t, a local tree of 21 files (20 in a/, one in a/b/)
local_tree() {
    local i
    mkdir -p "$1/t/a/b"
    for i in $(seq 1 20); do head -c $((i * 100)) /dev/urandom >"$1/t/a/f$i"; done
    echo deep >"$1/t/a/b/deep"
}

case_tar_rsync_find() {
    local src=$WORK/tools dst=$MNT/tools
    local_tree "$src"
    mkdir -p "$dst"
    check "tar extracts into the mount" sh -c "tar -C '$src' -cf - t | tar -C '$dst' -xf -"
    check "diff -r after tar" diff -r "$src/t" "$dst/t"
    check "rsync into the mount" rsync -a "$src/t/" "$dst/r/"
    check "diff -r after rsync" diff -r "$src/t" "$dst/r"
    check_eq "find counts the files" "21" "$(find "$dst/t" -type f | wc -l)"
}

case_inplace_edit() {
    mkdir -p "$MNT/edit"
    echo deep >"$MNT/edit/deep"
    sed -i 's/deep/DEEP/' "$MNT/edit/deep"
    check_eq "in-place edit (sed -i: temp file + rename)" "DEEP" "$(cat "$MNT/edit/deep")"
    check_eq "in-place edit: in S3" "DEEP" "$(aws_ s3 cp --quiet "s3://$BUCKET/edit/deep" -)"
}

case_copy_out() {
    local src=$WORK/outsrc dst=$MNT/out
    local_tree "$src"
    mkdir -p "$dst"
    tar -C "$src" -cf - t | tar -C "$dst" -xf -
    check "cp -r out of the mount" cp -r "$dst/t" "$WORK/out"
    check "copied out intact" diff -r "$src/t" "$WORK/out"
    check "tar of the mount" tar -C "$dst" -cf "$WORK/back.tar" t
    mkdir -p "$WORK/back"
    check "the tar of the mount holds the tree" sh -c "tar -C '$WORK/back' -xf '$WORK/back.tar' && diff -r '$src/t' '$WORK/back/t'"
}

run_cases "$@"
