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
errors_show() { "$CTL" errors "$MNT" | grep -q "$1"; }

# failed_move D: D/f and D/g landed, then mv of D/f to D-moved while every
# CopyObject fails (500, after the client's and the engine's retries),
# until s3cfs-ctl errors shows the cancelled delete of D/f (at most 60 s)
failed_move() {
    local d=$1
    mkdir "$MNT/$d" && echo one >"$MNT/$d/f" && echo two >"$MNT/$d/g" || return 1
    landed
    proxy_config "fault_rate=1&faults=500&fault_kinds=CopyObject"
    check "mv of a file returns at once" mv "$MNT/$d/f" "$MNT/$d-moved"
    wait_until 60 errors_show "$d/f: delete"
    proxy_config "fault_rate=0"
}

# one case: the rm is of the source the failed move kept, while the move's
# failure is not reported yet (a case of its own would repeat the failing
# move, whose retries take a sixth of this test's time)
case_failed_copy_keeps_source() {
    local d=dir
    failed_move $d || { bad "the files of $d/"; return; }
    "$CTL" errors "$MNT" >"$WORK/errors.out" 2>&1
    check "errors lists the failed copy" grep -q "^$BUCKET/$d-moved: copy from $BUCKET/$d/f" "$WORK/errors.out"
    check "errors lists the kept source" \
        grep -q "^$BUCKET/$d/f: delete: cancelled, the source is kept" "$WORK/errors.out"
    check "the failed move kept its source in S3" in_s3 $d/f
    check_not "nothing at the destination" in_s3 $d-moved
    wait_until 3 test -e "$MNT/$d/f"
    check_eq "the kept source shows again, intact" "one" "$(cat "$MNT/$d/f" 2>&1)"

    # the user's rm of it, with the failure not reported yet: it lands
    check "rm of the kept source returns 0" rm "$MNT/$d/f"
    check_not "and it is gone from the mount" test -e "$MNT/$d/f"
    sync "$MNT/$d" 2>/dev/null # lands what is queued below dir/ (and reports the move's failure)
    check_not "the rm landed in S3" in_s3 $d/f
    check "rm -rf of the parent succeeds" rm -rf "$MNT/$d"
    landed
    check_eq "nothing left below $d/ in S3" 0 "$(count_s3 $d/)"
    check_not "$d is gone from the mount" test -e "$MNT/$d"
}

# six concurrent tree moves of 1000 files: 12000 jobs for a max_pending of 4096
case_timeout concurrent_tree_moves 600
case_concurrent_tree_moves() {
    local ndir=6 nf=1000 i d p stuck=0 moved=0 left=0 pids=()
    proxy_config "fault_rate=0" # even after a failed_move that ran out of time
    mkdir -p "$WORK/tree"
    for i in $(seq 1 $nf); do echo "$i" >"$WORK/tree/f$i"; done
    aws_ s3 cp --quiet --recursive "$WORK/tree" "s3://$BUCKET/p1/t/"
    for d in $(seq 2 $ndir); do mkdir "$MNT/p$d" && cp -r "$MNT/p1/t" "$MNT/p$d/t"; done
    landed
    check_eq "the trees are in S3" $((ndir * nf)) "$(files_s3 p)"
    # each in its own directory: the kernel serializes renames in one directory
    for d in $(seq 1 $ndir); do
        timeout 300 mv "$MNT/p$d/t" "$MNT/p$d/m" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || stuck=$((stuck + 1)); done
    check_eq "$ndir concurrent mv of $nf files each: all return 0 in time" 0 "$stuck"
    landed
    for d in $(seq 1 $ndir); do
        moved=$((moved + $(files_s3 "p$d/m/")))
        left=$((left + $(count_s3 "p$d/t")))
    done
    check_eq "every file moved" $((ndir * nf)) "$moved"
    check_eq "no source left" 0 "$left"
    check "a moved tree is intact" diff -r "$WORK/tree" "$MNT/p$ndir/m"
}

run_cases "$@"
