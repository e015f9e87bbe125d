#!/bin/bash
# Names reused while their delete is still queued behave as on a local disk
# (doc/DESIGN.md §3.10, issue 11 §4), and rmdir / rm -r never succeed while S3
# holds objects below the directory (issue 11 §5). Every step runs right
# after the one before, so the deletes are still queued (a batch waits for
# 200 ms of quiet) when the name is reused.
. "$(dirname "$0")/lib.sh"
fs_setup
cd "$MNT" || exit 2

in_s3() { aws_ s3api head-object --bucket "$BUCKET" --key "$1" >/dev/null 2>&1; }
# KEY: present / absent, as S3 says after every queued job landed
s3_has() { check "$1 in S3" in_s3 "$2"; }
s3_lacks() { check_not "$1: not in S3" in_s3 "$2"; }
kind() { stat -c '%F %a' "$1" 2>&1; }
dirmode=$(printf '%o' $((0777 & ~$(umask))))

# ---- A. mkdir / ln -s / rename onto a name whose delete is queued ----

# reuse_dir DESC: after the delete of n (queued by the caller), mkdir n
reuse_dir() {
    check "$1: mkdir n returns 0" mkdir n
    check_eq "$1: stat shows a directory at once" "directory $dirmode" "$(kind n)"
    check_eq "$1: ls -l shows it (no d?????????)" "d" "$(ls -l | awk '$NF == "n" {print substr($1, 1, 1)}')"
    landed .
    check_eq "$1: still a directory after sync" "directory $dirmode" "$(kind n)"
    s3_has "$1: the marker n/" n/
    s3_lacks "$1: the file n" n
    check "$1: n can be removed again" rmdir n
    landed .
}

touch n && rm n
reuse_dir "touch n; rm n"
touch n && mv n m
reuse_dir "touch n; mv n m"
check_eq "mv n m: m is the file" "regular empty file" "$(stat -c %F m 2>&1)"
rm m
ln -s target n && rm n
reuse_dir "ln -s; rm symlink"

mkdir -p a b && mkdir a/x && rmdir a/x && touch a/x
check_eq "mkdir a/x; rmdir a/x; touch a/x: a file" "regular empty file" "$(stat -c %F a/x 2>&1)"
check "then mv a/x b/y returns 0" mv a/x b/y
check_eq "b/y is the file" "regular empty file" "$(stat -c %F b/y 2>&1)"
check_not "a/x is gone" test -e a/x
landed .
s3_has "mv a/x b/y: b/y" b/y
s3_lacks "mv a/x b/y: a/x" a/x
s3_lacks "mv a/x b/y: a/x/" a/x/

mkdir d && echo old >d/g && mkdir d/sub && echo s >d/sub/h
check "rm -r d" rm -r d
check "then mkdir d" mkdir d
check "then touch d/f" touch d/f
check_eq "d/f is shown" "regular empty file" "$(stat -c %F d/f 2>&1)"
check_eq "d lists only f" "f" "$(ls d | tr '\n' ' ' | sed 's/ $//')"
landed .
s3_has "rm -r d; mkdir d: d/" d/
s3_has "rm -r d; mkdir d; touch d/f: d/f" d/f
s3_lacks "rm -r d: d/g" d/g
s3_lacks "rm -r d: d/sub/h" d/sub/h
check_eq "after landing d still lists f" "f" "$(ls d | tr '\n' ' ' | sed 's/ $//')"
rm -r d
landed .

mkdir d && rmdir d
check "rmdir d; ln -s t d returns 0" ln -s t d
check_eq "d is a symlink to t" "t" "$(readlink d 2>&1)"
landed .
check_eq "after sync, d is still a symlink" "t" "$(readlink d 2>&1)"
s3_has "rmdir d; ln -s t d: d" d
s3_lacks "rmdir d; ln -s t d: d/" d/
rm d
landed .

mkdir d && rmdir d && echo content >d
check_eq "rmdir d; echo >d: d is a file" "regular file" "$(stat -c %F d 2>&1)"
landed .
check_eq "after sync, d holds the content" "content" "$(cat d 2>&1)"
s3_has "rmdir d; echo >d: d" d
s3_lacks "rmdir d; echo >d: d/" d/
rm d
landed .

echo moved >s && mkdir d && rmdir d
check "rmdir d; mv s d returns 0" mv s d
check_eq "d is the moved file" "moved" "$(cat d 2>&1)"
landed .
check_eq "after sync, d is the moved file" "moved" "$(cat d 2>&1)"
s3_has "rmdir d; mv s d: d" d
s3_lacks "rmdir d; mv s d: d/" d/
rm d
landed .

mkdir -p t/sub && echo 1 >t/sub/f && touch n && rm n
check "rm n; mv t n (a directory onto the deleted file) returns 0" mv t n
check_eq "n is the moved directory" "directory 1" "$(stat -c %F n 2>&1) $(cat n/sub/f 2>&1)"
landed .
check_eq "after sync, n is the moved directory" "directory 1" "$(stat -c %F n 2>&1) $(cat n/sub/f 2>&1)"
s3_lacks "rm n; mv t n: the file n" n
s3_has "rm n; mv t n: n/sub/f" n/sub/f
rm -r n
landed .

# The target of a rename whose marker delete is queued, with a copy slower
# than the attribute TTL: the landed delete must not take the pin of the
# copy with it (d would vanish until the copy lands).
cd "$WORK" # the proxy must not keep the mount busy through its cwd
start_proxy
cd "$MNT" || exit 2
proxy_config "delay.CopyObject=3000"
SLOW=$WORK/slow
mount_fs "$SLOW" "$BUCKET" -o "endpoint=$PROXY" || exit 2
echo slow >"$SLOW/s2" && mkdir "$SLOW/d2" && rmdir "$SLOW/d2"
check "rmdir d; mv s d (slow copy) returns 0" mv "$SLOW/s2" "$SLOW/d2"
sleep 1.6 # the delete landed, attr_ttl=1 passed, the copy is still on its way
check_eq "d is shown while its copy is queued" "regular file 5" "$(stat -c '%F %s' "$SLOW/d2" 2>&1)"
check_eq "and reads the moved content" "slow" "$(cat "$SLOW/d2" 2>&1)"
proxy_config "delay.CopyObject=-1"
unmount_fs "$SLOW"
rm "$MNT/d2"
landed .

# ---- B. rmdir / rm -r confirm with S3 ----

# A directory this mount made is cached as empty: with long cache
# lifetimes (the AWS CLI may take longer than dir_ttl=1 to start) rmdir
# must still ask S3 and find what another client put there.
LONG=$WORK/long
mount_fs "$LONG" "$BUCKET" -o "dir_ttl=60,negative_ttl=60" || exit 2
mkdir "$LONG/d"
echo x | aws_ s3 cp - "s3://$BUCKET/d/x" >/dev/null
check_err "an object put by another client into a directory this mount just made: rmdir fails" \
    "not empty" rmdir "$LONG/d"
rm -rf "$LONG/d" 2>/dev/null
rc=$?
landed "$LONG"
if [ $rc -eq 0 ]; then
    s3_lacks "rm -rf d succeeded, so it removed d/x" d/x
else
    s3_has "rm -rf d failed, so d/x is still" d/x
    s3_has "rm -rf d failed, so the marker d/ is still" d/
fi
unmount_fs "$LONG"
rm -rf d
landed .
aws_ s3 rm --quiet "s3://$BUCKET/d/x"

mkdir d
aws_ s3api put-object --bucket "$BUCKET" --key d/sub/ >/dev/null
check_err "an orphaned marker d/sub/: rmdir d fails" "not empty" rmdir d
s3_has "the marker d/ stays" d/
rm -rf d
landed .
s3_lacks "rm -rf d then removes d/sub/" d/sub/
s3_lacks "and d/" d/

# Keys with an empty or dot component show under a reserved name: readdir
# lists it, rmdir refuses to remove the directory above them (ENOTEMPTY)
# rather than leave them behind, and rm -rf removes them with it.
for k in d//x:.s3cfs-empty d/./x:.s3cfs-dot d/../x:.s3cfs-dotdot; do
    alias=${k#*:}
    k=${k%%:*}
    mkdir d
    echo odd | aws_ s3 cp - "s3://$BUCKET/$k" >/dev/null
    sleep 1.1 # d's listing (dir_ttl=1) was cached empty by mkdir
    check_eq "$k: readdir of d shows $alias" "$alias" "$(ls -A d 2>&1)"
    check_eq "$k: read through it" odd "$(cat "d/$alias/x")"
    check_err "$k: rmdir d fails" "not empty" rmdir d
    landed .
    s3_has "$k: stays" "$k"
    s3_has "$k: the marker d/ stays" d/
    check "$k: rm -rf d removes it" rm -rf d
    landed .
    s3_lacks "$k: gone from S3" "$k"
    s3_lacks "$k: and the marker d/" d/
done

fs_done
