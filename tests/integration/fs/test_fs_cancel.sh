#!/bin/bash
# Issue 11 §3 and §6 through a real mount (doc/DESIGN.md §3.11): a copy that fails
# for good cancels only the delete of its own move (the source stays, in S3
# and in the mount); a later rm of that source lands in S3, rm -rf of its
# parent succeeds, and s3cfs-ctl errors lists both the failed copy and the
# kept source. Then six concurrent mv of directories of 1000 files each, whose
# held deletes would fill the engine's max_pending (4096), all finish.
. "$(dirname "$0")/lib.sh"
proxied_setup

in_s3() { aws_ s3api head-object --bucket "$BUCKET" --key "$1"; }
count_s3() {
    aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1" --query 'length(Contents || `[]`)'
}
# files (no directory markers) below a prefix
files_s3() {
    aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1" \
        --query "length(Contents[?!ends_with(Key, '/')] || \`[]\`)"
}

mkdir "$MNT/dir"
echo one >"$MNT/dir/f"
echo two >"$MNT/dir/g"
landed

# every CopyObject fails (500, after the client's and the engine's retries)
proxy_config "fault_rate=1&faults=500&fault_kinds=CopyObject"
check "mv of a file returns at once" mv "$MNT/dir/f" "$MNT/moved"
for _ in $(seq 1 600); do "$CTL" errors "$MNT" | grep -q "dir/f: delete" && break; sleep 0.1; done
proxy_config "fault_rate=0"
"$CTL" errors "$MNT" >"$WORK/errors.out" 2>&1
check "errors lists the failed copy" grep -q "^$BUCKET/moved: copy from $BUCKET/dir/f" "$WORK/errors.out"
check "errors lists the kept source" \
    grep -q "^$BUCKET/dir/f: delete: cancelled, the source is kept" "$WORK/errors.out"
check "the failed move kept its source in S3" in_s3 dir/f
check_not "nothing at the destination" in_s3 moved
for _ in $(seq 1 30); do [ -e "$MNT/dir/f" ] && break; sleep 0.1; done
check_eq "the kept source shows again, intact" "one" "$(cat "$MNT/dir/f" 2>&1)"

# the user's rm of it, with the failure not reported yet: it lands
check "rm of the kept source returns 0" rm "$MNT/dir/f"
check_not "and it is gone from the mount" test -e "$MNT/dir/f"
sync "$MNT/dir" 2>/dev/null # lands what is queued below dir/ (and reports the move's failure)
check_not "the rm landed in S3" in_s3 dir/f
check "rm -rf of the parent succeeds" rm -rf "$MNT/dir"
landed
check_eq "nothing left below dir/ in S3" 0 "$(count_s3 dir/)"
check_not "dir is gone from the mount" test -e "$MNT/dir"

# six concurrent tree moves of 1000 files: 12000 jobs for a max_pending of 4096
NDIR=6
NF=1000
mkdir -p "$WORK/tree"
for i in $(seq 1 $NF); do echo "$i" >"$WORK/tree/f$i"; done
aws_ s3 cp --quiet --recursive "$WORK/tree" "s3://$BUCKET/p1/t/"
for d in $(seq 2 $NDIR); do mkdir "$MNT/p$d" && cp -r "$MNT/p1/t" "$MNT/p$d/t"; done
landed
check_eq "the trees are in S3" $((NDIR * NF)) "$(files_s3 p)"
# each in its own directory: the kernel serializes renames in one directory
pids=()
for d in $(seq 1 $NDIR); do
    timeout 300 mv "$MNT/p$d/t" "$MNT/p$d/m" &
    pids+=($!)
done
stuck=0
for p in "${pids[@]}"; do wait "$p" || stuck=$((stuck + 1)); done
check_eq "$NDIR concurrent mv of $NF files each: all return 0 in time" 0 "$stuck"
landed
moved=0
left=0
for d in $(seq 1 $NDIR); do
    moved=$((moved + $(files_s3 "p$d/m/")))
    left=$((left + $(count_s3 "p$d/t")))
done
check_eq "every file moved" $((NDIR * NF)) "$moved"
check_eq "no source left" 0 "$left"
check "a moved tree is intact" diff -r "$WORK/tree" "$MNT/p$NDIR/m"
fs_done
