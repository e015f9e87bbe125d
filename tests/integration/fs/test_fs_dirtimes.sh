#!/bin/bash
# Directory times and rename ctime (issue 12 §2): creating, unlinking,
# renaming into or out of, mkdir and rmdir in a directory change its mtime
# and ctime at once through the mount; they reach the marker coalesced (a
# cp -r of N files into a directory costs O(1) marker writes, counted by
# the proxy) and survive a remount; a directory without a marker keeps
# them in memory; rename changes the ctime of what was renamed.
. "$(dirname "$0")/lib.sh"
proxied_setup
mt() { stat -c %.9Y "$1"; }
ct() { stat -c %.9Z "$1"; }
later() { [ "$(echo "$1 > $2" | bc)" = 1 ]; }
# the same time, however written ("5" and "5.000000000")
same() { [ -n "$2" ] && [ "$2" != None ] && [ "$(echo "$1 == $2" | bc)" = 1 ]; }
# after OP in DIR: its mtime and ctime moved past the previous ones
changes() { # DESCRIPTION DIR COMMAND...
    local what=$1 dir=$2 m0 c0
    shift 2
    m0=$(mt "$dir") c0=$(ct "$dir")
    sleep 0.05
    "$@" >/dev/null 2>&1 || { bad "$what: the command failed"; return; }
    if later "$(mt "$dir")" "$m0" && later "$(ct "$dir")" "$c0"; then ok "$what changes mtime and ctime at once"
    else bad "$what: mtime $m0 -> $(mt "$dir"), ctime $c0 -> $(ct "$dir")"; fi
}

mkdir "$MNT/d" "$MNT/e"
touch -d '2001-01-01 UTC' "$MNT/d" "$MNT/e"
landed
changes "create" "$MNT/d" touch "$MNT/d/f"
changes "unlink" "$MNT/d" rm "$MNT/d/f"
changes "mkdir" "$MNT/d" mkdir "$MNT/d/sub"
changes "rmdir" "$MNT/d" rmdir "$MNT/d/sub"
changes "symlink" "$MNT/d" ln -s target "$MNT/d/l"
changes "mkfifo" "$MNT/d" mkfifo "$MNT/d/p"
echo x >"$MNT/e/moving"
changes "rename into" "$MNT/d" mv "$MNT/e/moving" "$MNT/d/moving"
changes "rename out of" "$MNT/d" mv "$MNT/d/moving" "$MNT/e/moving"
changes "rename within" "$MNT/d" mv "$MNT/d/l" "$MNT/d/l2"
check "e changed too (a name moved into and out of it)" later "$(mt "$MNT/e")" 978307200
check_eq "ls -l shows the new time too" "$(stat -c %Y "$MNT/d")" \
    "$(ls -ld --time-style=+%s "$MNT/d" | awk '{print $6}')"

# written to the marker at a durability point, kept across a remount
m=$(mt "$MNT/d")
landed
check "S3: d/ marker carries the new mtime" same "$m" "$(meta_of d/ mtime)"
unmount_fs "$MNT"
mount_fs "$MNT" "$BUCKET" -o "endpoint=$PROXY,journal_dir=$WORK/journal" || exit 2
check_eq "mtime kept across a remount" "$m" "$(mt "$MNT/d")"

# written without a durability point, after a short quiet time
touch "$MNT/e/quiet"
m=$(mt "$MNT/e")
for _ in $(seq 1 20); do same "$m" "$(meta_of e/ mtime)" && break; sleep 0.3; done
check "S3: written by itself after a second of quiet" same "$m" "$(meta_of e/ mtime)"

# coalesced: cp -r of N files into a directory = O(1) marker writes
N=40
mkdir -p "$WORK/tree"
for i in $(seq 1 $N); do echo "$i" >"$WORK/tree/f$i"; done
landed
proxy_reset
cp -r "$WORK/tree" "$MNT/big"
landed
writes=$(proxy_count CopyObject)
check "cp -r of $N files: at most 2 marker writes, not $N (got $writes)" test "$writes" -ge 1 -a "$writes" -le 2
check_eq "cp -r: one PutObject per file and the marker" $((N + 1)) "$(proxy_count PutObject)"
check "S3: big/ carries the time of its last change" same "$(mt "$MNT/big")" "$(meta_of big/ mtime)"

# a directory without a marker: times in memory, no marker made
echo x >"$WORK/x"
aws_ s3api put-object --bucket "$BUCKET" --key implicit/x --body "$WORK/x" >/dev/null
sleep 1.2
m0=$(mt "$MNT/implicit")
changes "create in a directory without a marker" "$MNT/implicit" touch "$MNT/implicit/y"
landed
check_not "S3: no marker was made for it" aws_ s3api head-object --bucket "$BUCKET" --key implicit/
check "its new time is kept in memory" later "$(mt "$MNT/implicit")" "$m0"

# rename changes the ctime of what was renamed
echo r >"$MNT/d/r"
mkdir "$MNT/d/rd"
landed
sleep 1.1
c0=$(ct "$MNT/d/r") m0=$(mt "$MNT/d/r")
mv "$MNT/d/r" "$MNT/d/r2"
check "rename of a file changes its ctime" later "$(ct "$MNT/d/r2")" "$c0"
check_eq "rename of a file keeps its mtime" "$m0" "$(mt "$MNT/d/r2")"
c0=$(ct "$MNT/d/rd") m0=$(mt "$MNT/d/rd")
mv "$MNT/d/rd" "$MNT/d/rd2"
check "rename of a directory changes its ctime" later "$(ct "$MNT/d/rd2")" "$c0"
check_eq "rename of a directory keeps its mtime" "$m0" "$(mt "$MNT/d/rd2")"
c1=$(ct "$MNT/d/r2") c2=$(ct "$MNT/d/rd2")
landed
unmount_fs "$MNT"
mount_fs "$MNT" "$BUCKET" -o "endpoint=$PROXY,journal_dir=$WORK/journal" || exit 2
check_eq "a renamed file's ctime is kept across a remount" "$c1" "$(ct "$MNT/d/r2")"
check_eq "a renamed directory's ctime is kept across a remount" "$c2" "$(ct "$MNT/d/rd2")"
check "S3: the renamed file's ctime" same "$c1" "$(meta_of d/r2 ctime)"
fs_done
