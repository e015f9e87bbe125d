#!/bin/bash
# doc/DESIGN.md §3 through a real mount, with the requests counted by the proxy:
# server-side cp/cp -r/cp -a/mv/rm -r, ordering rules, and a daemon killed
# with SIGKILL mid-copy that finishes the work at the next mount.
# The mount shows every bucket ($A is the test's bucket in it). The setup
# writes one tree of N files, src: cases only read it, each writes names of
# its own (a case that removes or moves a tree makes its own first).
. "$(dirname "$0")/lib.sh"
trap fs_cleanup EXIT
BUCKET=$(new_bucket)
B2=$(new_bucket)
start_proxy
MNT=$WORK/mnt
JDIR=$WORK/journal
mount_fs "$MNT" -o "endpoint=$PROXY,journal_dir=$JDIR" || exit 2
A=$MNT/$BUCKET
N=200
mkdir -p "$WORK/tree"
for d in 1 2 3 4; do
    mkdir -p "$WORK/tree/d$d"
    for i in $(seq 1 50); do echo "file $d $i" >"$WORK/tree/d$d/f$i"; done
done
# put_tree NAME: the local tree written to $A/NAME through the mount, landed
put_tree() { cp -r "$WORK/tree" "$A/$1" && landed "$A"; }
put_tree src || { echo "cannot write the tree src" >&2; exit 2; }

# same_tree_in_s3 BUCKET PREFIX: the objects under PREFIX/, fetched through
# the S3 API, are the local tree
same_tree_in_s3() {
    rm -rf "$WORK/s3tree"
    aws_ s3 cp --quiet --recursive "s3://$1/$2" "$WORK/s3tree" && diff -r "$WORK/tree" "$WORK/s3tree"
}
# objects_under PREFIX: how many objects of the bucket start with PREFIX/
objects_under() {
    aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1/" --query 'length(Contents || `[]`)'
}
# in_range LOW HIGH VALUE
in_range() { [ "$3" -ge "$1" ] && [ "$3" -le "$2" ]; }

# cp -r of N files: N CopyObject, no object data through the client
case_cp_r_server_side() {
    local copies
    proxy_reset
    cp -r "$A/src" "$A/copy"
    check_eq "the copy shows at once with its sizes" "$(stat -c %s "$A/src/d2/f7")" "$(stat -c %s "$A/copy/d2/f7")"
    landed "$A"
    # plus each new directory's times written to its marker (README: once it
    # is quiet, so once or twice in a cp -r; issue 12 §2)
    copies=$(proxy_count CopyObject)
    check "cp -r of $N files: $N CopyObject + 5 to 10 marker-time writes ($copies)" \
        in_range $((N + 5)) $((N + 10)) "$copies"
    check_eq "cp -r: no GetObject" 0 "$(proxy_count GetObject)"
    check_eq "cp -r: PutObject only for the 5 directory markers" 5 "$(proxy_count PutObject)"
    check "cp -r: tree identical through the mount" diff -r "$A/src" "$A/copy"
    check "cp -r: tree identical through the S3 API" same_tree_in_s3 "$BUCKET" copy
}

# cp -a keeps mode and mtime, folded into the copy: no extra request
case_cp_a_folds_attributes() {
    echo "file 1 1" >"$A/attrs" || { bad "cannot write attrs"; return; }
    chmod 604 "$A/attrs"
    touch -m -d '2019-05-06 07:08:09 UTC' "$A/attrs"
    landed "$A"
    proxy_reset
    cp -a "$A/attrs" "$A/kept"
    landed "$A"
    check_eq "cp -a: exactly one CopyObject (attributes folded in)" 1 "$(proxy_count CopyObject)"
    check_eq "cp -a: mode in S3" "33156" "$(meta_of kept mode)"
    check_eq "cp -a: mtime in S3" "1557126489" "$(meta_of kept mtime)"
}

# cp a b; cat b gives the right bytes; cp a b; echo x > a leaves b old
case_cp_then_overwrite_source() {
    echo original >"$A/a" || { bad "cannot write a"; return; }
    landed "$A"
    cp "$A/a" "$A/b"
    check_eq "cp a b; cat b" "original" "$(cat "$A/b")"
    cp "$A/a" "$A/c"
    echo changed >"$A/a"
    landed "$A"
    check_eq "cp a c; echo x > a: c keeps the old content (S3)" "original" \
        "$(aws_ s3 cp --quiet "s3://$BUCKET/c" -)"
    check_eq "and a has the new" "changed" "$(aws_ s3 cp --quiet "s3://$BUCKET/a" -)"
}

# cp -r a b && rm -r a leaves b complete
case_cp_r_then_rm_r_source() {
    put_tree rm-src || { bad "cannot write the tree rm-src"; return; }
    cp -r "$A/rm-src" "$A/keep" && rm -r "$A/rm-src"
    check_not "rm -r: the source is gone at once" test -e "$A/rm-src"
    landed "$A"
    check_eq "cp -r a b && rm -r a: b complete" "$N" "$(find "$A/keep" -type f | wc -l)"
    check "cp -r a b && rm -r a: b identical in S3" same_tree_in_s3 "$BUCKET" keep
    check_eq "nothing left of the source in S3" 0 "$(objects_under rm-src)"
}

# mv of a directory: N copies + ceil(N/1000) DeleteObjects
case_mv_directory() {
    local copies
    cp -r "$A/src" "$A/to-move" || { bad "cannot copy src to to-move"; return; }
    landed "$A"
    proxy_reset
    mv "$A/to-move" "$A/moved"
    landed "$A"
    copies=$(proxy_count CopyObject) # + the moved directory's new ctime on its marker
    check "mv of a directory of $N files (+5 markers, +1 ctime write): copies ($copies)" \
        in_range $((N + 6)) $((N + 8)) "$copies"
    check_eq "mv: one DeleteObjects" 1 "$(proxy_count DeleteObjects)"
    check_eq "mv: no single DeleteObject" 0 "$(proxy_count DeleteObject)"
    check "mv: tree identical" diff -r "$WORK/tree" "$A/moved"
}

# rm -r of N files: batched deletes
case_rm_r_batched() {
    cp -r "$A/src" "$A/to-remove" || { bad "cannot copy src to to-remove"; return; }
    landed "$A"
    proxy_reset
    rm -r "$A/to-remove"
    landed "$A"
    check_eq "rm -r of $N files: one DeleteObjects" 1 "$(proxy_count DeleteObjects)"
    check_eq "rm -r: no single DeleteObject" 0 "$(proxy_count DeleteObject)"
    check_eq "rm -r: nothing left in S3" 0 "$(objects_under to-remove)"
}

# cross-bucket cp -r
case_cross_bucket_cp_r() {
    cp -r "$A/src" "$MNT/$B2/across"
    landed "$MNT/$B2"
    check "cross-bucket cp -r: identical in S3" same_tree_in_s3 "$B2" across
}

# SIGKILL during cp -r, then remount: every acknowledged copy lands
case_sigkill_mid_copy() {
    local pid left
    proxy_config "delay.CopyObject=3000"
    cp -r "$A/src" "$A/killed"
    cd / # the mount is about to go: not busy
    pid=$(mount_pid "$MNT")
    [ -n "$pid" ] || { bad "no daemon serves $MNT"; proxy_config "delay.CopyObject=-1"; return; }
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
    forget_mount "$MNT"
    left=$(objects_under killed)
    check "killed mid-copy: some copies had not landed ($left of $((N + 5)))" test "$left" -lt $((N + 5))
    proxy_config "delay.CopyObject=-1"
    check "the journal holds the unfinished copies" test -s "$(ls "$JDIR"/journal-*.log | head -1)"
    mount_fs "$MNT" -o "endpoint=$PROXY,journal_dir=$JDIR" || { bad "remount of $MNT failed"; return; }
    landed "$A"
    check "after SIGKILL and remount: every copy present and identical" same_tree_in_s3 "$BUCKET" killed
    check "the source is intact" diff -r "$WORK/tree" "$A/src"
}

run_cases "$@"
