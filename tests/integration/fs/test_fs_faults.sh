#!/bin/bash
# The engine under faults and crashes (doc/DESIGN.md §3.5, §3.8, §3.9), on a tree of
# 2000 files in 20 directories: cp -r, mv and rm -r with 5 % of the requests
# failing (503 SlowDown, 500, connection reset after the server acted) lose
# nothing and leave nothing behind; SIGKILL of the daemon during cp -r and
# during mv of a directory, then a remount: every source intact, every
# acknowledged copy present, the interrupted move finished page by page.
. "$(dirname "$0")/lib.sh"
trap fs_cleanup EXIT
BUCKET=$(new_bucket)
start_proxy
MNT=$WORK/mnt
JDIR=$WORK/journal
OPTS="endpoint=$PROXY,journal_dir=$JDIR,attr_ttl=30,dir_ttl=30"
mount_fs "$MNT" "$BUCKET" -o "$OPTS" || exit 2
N=2000
T0=$SECONDS
phase() { echo "# $((SECONDS - T0)) s: $*"; T0=$SECONDS; }
OBJS=$((N + 21)) # the files and the markers of src/ and its 20 directories

mkdir -p "$WORK/tree"
for d in $(seq -w 1 20); do
    mkdir "$WORK/tree/d$d"
    for f in $(seq -w 1 100); do echo "file $d/$f $RANDOM" >"$WORK/tree/d$d/f$f"; done
done
# the source, written straight to the server in parallel (set-up only)
(cd "$WORK/tree" && find . -type f | sed 's|^\./||') |
    xargs -P 16 -I{} "$S3CFS_S3C" put "$BUCKET" "src/{}" "$WORK/tree/{}" >/dev/null
check_eq "the source: $N objects" "$N" "$(aws_ s3api list-objects-v2 --bucket "$BUCKET" \
    --prefix src/ --query 'length(Contents || `[]`)')"

count() { # objects under PREFIX, through the S3 API (all pages)
    aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1" --query 'length(Contents || `[]`)'
}
# 40 files of the tree through the S3 API (the whole tree is compared
# through the mount)
sample_same() { # PREFIX
    local d f
    for d in 01 07 13 20; do
        for f in 001 023 050 077 100 011 042 064 089 095; do
            s3c get "$BUCKET" "$1d$d/f$f" "$WORK/.sample" >/dev/null 2>&1 &&
                cmp -s "$WORK/.sample" "$WORK/tree/d$d/f$f" || return 1
        done
    done
}
daemon_pid() {
    local i
    for i in "${!MOUNTS[@]}"; do [ "${MOUNTS[$i]}" == "$MNT" ] && echo "${PIDS[$i]}"; done
}
kill_daemon() { # SIGKILL the mount's daemon, clear the dead mount
    local i pid
    cd /
    for i in "${!MOUNTS[@]}"; do
        [ "${MOUNTS[$i]}" == "$MNT" ] || continue
        pid=${PIDS[$i]}
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        unset 'MOUNTS[i]' 'PIDS[i]'
    done
    fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
}

# ---- 5 % faults: cp -r, mv, rm -r of 2000 files ----
proxy_reset
# on what the engine sends and the listings (the S3 client's retries of
# single lookups are tested by test_faults, and their back-off would only
# make this test slow)
proxy_config "fault_rate=0.05&faults=503,500,reset&fault_kinds=CopyObject,DeleteObjects,ListObjects,PutObject,UploadPartCopy"
cp -r "$MNT/src" "$MNT/copy"
check "cp -r under faults: cp succeeds" test $? -eq 0
check "cp -r under faults: landed without error" landed
check_eq "cp -r under faults: every object in S3" "$OBJS" "$(count copy/)"
check "cp -r under faults: a sample identical through the S3 API" sample_same copy/
phase "cp -r under faults"
mv "$MNT/copy" "$MNT/moved"
check "mv under faults: mv succeeds" test $? -eq 0
check "mv under faults: landed without error" landed
check_eq "mv under faults: nothing left at the source" 0 "$(count copy/)"
check_eq "mv under faults: every object at the target" "$OBJS" "$(count moved/)"
check "mv under faults: a sample identical through the S3 API" sample_same moved/
phase "mv under faults"
rm -r "$MNT/moved"
check "rm -r under faults: rm succeeds" test $? -eq 0
check "rm -r under faults: landed without error" landed
check_eq "rm -r under faults: nothing left behind" 0 "$(count moved/)"
phase "rm -r under faults"
faults=$(($(proxy_count fault.503) + $(proxy_count fault.500) + $(proxy_count fault.reset)))
echo "# $(proxy_count total) requests, $faults faults injected"
check "faults were injected ($faults)" test "$faults" -gt 50
proxy_config "fault_rate=0"
check "the source survived it all (through the mount)" diff -r "$WORK/tree" "$MNT/src"

# ---- SIGKILL during cp -r of 2000 files ----
proxy_config "delay.CopyObject=150"
cp -r "$MNT/src" "$MNT/killed"
check "cp -r returned once everything was queued" test $? -eq 0
kill_daemon
left=$(count killed/)
check "killed mid-copy: copies were still queued ($left of $OBJS landed)" test "$left" -lt "$OBJS"
proxy_config "delay.CopyObject=-1"
mount_fs "$MNT" "$BUCKET" -o "$OPTS" || exit 2
landed
check_eq "after SIGKILL and remount: every copy present" "$OBJS" "$(count killed/)"
check "after SIGKILL and remount: identical through the mount" diff -r "$WORK/tree" "$MNT/killed"
check "after SIGKILL and remount: a sample identical through the S3 API" sample_same killed/
check "the source is intact" diff -r "$WORK/tree" "$MNT/src"
phase "SIGKILL during cp -r"

# ---- SIGKILL during mv of a directory ----
proxy_config "delay.CopyObject=150"
mv "$MNT/killed" "$MNT/mvd" 2>/dev/null &
mvpid=$!
for _ in $(seq 1 100); do [ "$(count mvd/)" -gt 50 ] && break; sleep 0.1; done
kill_daemon
wait "$mvpid"
check "mv was cut short" test $? -ne 0
before=$(($(count killed/) + $(count mvd/)))
check "killed mid-move: the move was under way ($(count mvd/) moved)" test "$(count killed/)" -gt 0
proxy_config "delay.CopyObject=-1"
mount_fs "$MNT" "$BUCKET" -o "$OPTS" || exit 2
landed
moved=$(count mvd/)
rest=$(count killed/)
echo "# interrupted move: $before objects at kill time in both; after remount $moved moved, $rest not"
check_eq "after remount: every object exactly once (moved + not moved)" "$OBJS" $((moved + rest))
check "after remount: the journaled part of the move finished (≥ one page)" test "$moved" -ge 1000
merged=$WORK/merged
mkdir -p "$merged"
(cd "$MNT/killed" 2>/dev/null && cp -r . "$merged/")
(cd "$MNT/mvd" && cp -r . "$merged/")
check "after remount: the two halves together are the tree" diff -r "$WORK/tree" "$merged"
phase "SIGKILL during mv"
fs_done
