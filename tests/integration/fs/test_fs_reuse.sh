#!/bin/bash
# Names reused while their delete is still queued behave as on a local disk
# (doc/DESIGN.md §3.10, issue 11 §4), and rmdir / rm -r never succeed while S3
# holds objects below the directory (issue 11 §5). Every step runs right
# after the one before, so the deletes are still queued (a batch waits for
# 200 ms of quiet) when the name is reused. Each case works in a directory
# of its own below the mount's root.
. "$(dirname "$0")/lib.sh"
fs_setup

# own_dir NAME: the case's directory $MNT/NAME, made and entered
own_dir() { mkdir "$MNT/$1" && cd "$MNT/$1" || return; }
# the key prefix of the directory the case works in ("" at the root)
rel() { case $PWD in "$MNT"/*) printf '%s/' "${PWD#"$MNT"/}" ;; esac }
# KEY (relative to the case's directory) is in S3
in_s3() { aws_ s3api head-object --bucket "$BUCKET" --key "$(rel)$1" >/dev/null 2>&1; }
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
    landed
    check_eq "$1: still a directory after sync" "directory $dirmode" "$(kind n)"
    s3_has "$1: the marker n/" n/
    s3_lacks "$1: the file n" n
    check "$1: n can be removed again" rmdir n
    landed
}

case_mkdir_over_removed_file() {
    own_dir rm-file || { bad "cannot make the case's directory"; return; }
    touch n && rm n
    reuse_dir "touch n; rm n"
}

case_mkdir_over_moved_file() {
    own_dir mv-file || { bad "cannot make the case's directory"; return; }
    touch n && mv n m
    reuse_dir "touch n; mv n m"
    check_eq "mv n m: m is the file" "regular empty file" "$(stat -c %F m 2>&1)"
    rm m
}

case_mkdir_over_removed_symlink() {
    own_dir rm-symlink || { bad "cannot make the case's directory"; return; }
    ln -s target n && rm n
    reuse_dir "ln -s; rm symlink"
}

case_file_over_removed_dir_moved() {
    own_dir file-mv || { bad "cannot make the case's directory"; return; }
    mkdir -p a b && mkdir a/x && rmdir a/x && touch a/x
    check_eq "mkdir a/x; rmdir a/x; touch a/x: a file" "regular empty file" "$(stat -c %F a/x 2>&1)"
    check "then mv a/x b/y returns 0" mv a/x b/y
    check_eq "b/y is the file" "regular empty file" "$(stat -c %F b/y 2>&1)"
    check_not "a/x is gone" test -e a/x
    landed
    s3_has "mv a/x b/y: b/y" b/y
    s3_lacks "mv a/x b/y: a/x" a/x
    s3_lacks "mv a/x b/y: a/x/" a/x/
}

case_mkdir_after_rm_r() {
    own_dir rm-r || { bad "cannot make the case's directory"; return; }
    mkdir d && echo old >d/g && mkdir d/sub && echo s >d/sub/h
    check "rm -r d" rm -r d
    check "then mkdir d" mkdir d
    check "then touch d/f" touch d/f
    check_eq "d/f is shown" "regular empty file" "$(stat -c %F d/f 2>&1)"
    check_eq "d lists only f" "f" "$(ls d | tr '\n' ' ' | sed 's/ $//')"
    landed
    s3_has "rm -r d; mkdir d: d/" d/
    s3_has "rm -r d; mkdir d; touch d/f: d/f" d/f
    s3_lacks "rm -r d: d/g" d/g
    s3_lacks "rm -r d: d/sub/h" d/sub/h
    check_eq "after landing d still lists f" "f" "$(ls d | tr '\n' ' ' | sed 's/ $//')"
    rm -r d
    landed
}

case_symlink_over_removed_dir() {
    own_dir dir-symlink || { bad "cannot make the case's directory"; return; }
    mkdir d && rmdir d
    check "rmdir d; ln -s t d returns 0" ln -s t d
    check_eq "d is a symlink to t" "t" "$(readlink d 2>&1)"
    landed
    check_eq "after sync, d is still a symlink" "t" "$(readlink d 2>&1)"
    s3_has "rmdir d; ln -s t d: d" d
    s3_lacks "rmdir d; ln -s t d: d/" d/
    rm d
    landed
}

case_file_over_removed_dir() {
    own_dir dir-file || { bad "cannot make the case's directory"; return; }
    mkdir d && rmdir d && echo content >d
    check_eq "rmdir d; echo >d: d is a file" "regular file" "$(stat -c %F d 2>&1)"
    landed
    check_eq "after sync, d holds the content" "content" "$(cat d 2>&1)"
    s3_has "rmdir d; echo >d: d" d
    s3_lacks "rmdir d; echo >d: d/" d/
    rm d
    landed
}

case_mv_file_over_removed_dir() {
    own_dir dir-mv || { bad "cannot make the case's directory"; return; }
    echo moved >s && mkdir d && rmdir d
    check "rmdir d; mv s d returns 0" mv s d
    check_eq "d is the moved file" "moved" "$(cat d 2>&1)"
    landed
    check_eq "after sync, d is the moved file" "moved" "$(cat d 2>&1)"
    s3_has "rmdir d; mv s d: d" d
    s3_lacks "rmdir d; mv s d: d/" d/
    rm d
    landed
}

case_mv_dir_over_removed_file() {
    own_dir file-dir-mv || { bad "cannot make the case's directory"; return; }
    mkdir -p t/sub && echo 1 >t/sub/f && touch n && rm n
    check "rm n; mv t n (a directory onto the deleted file) returns 0" mv t n
    check_eq "n is the moved directory" "directory 1" "$(stat -c %F n 2>&1) $(cat n/sub/f 2>&1)"
    landed
    check_eq "after sync, n is the moved directory" "directory 1" "$(stat -c %F n 2>&1) $(cat n/sub/f 2>&1)"
    s3_lacks "rm n; mv t n: the file n" n
    s3_has "rm n; mv t n: n/sub/f" n/sub/f
    rm -r n
    landed
}

# The target of a rename whose marker delete is queued, with a copy slower
# than the attribute TTL: the landed delete must not take the pin of the
# copy with it (d would vanish until the copy lands).
case_slow_copy_keeps_target() {
    local slow=$WORK/slow
    cd "$WORK" || return # the proxy must not keep the mount busy through its cwd
    start_proxy
    proxy_config "delay.CopyObject=3000"
    mount_fs "$slow" "$BUCKET" -o "endpoint=$PROXY" || { bad "the proxied mount failed"; return; }
    echo slow >"$slow/s2" && mkdir "$slow/d2" && rmdir "$slow/d2"
    check "rmdir d; mv s d (slow copy) returns 0" mv "$slow/s2" "$slow/d2"
    sleep 1.6 # the delete landed, attr_ttl=1 passed, the copy is still on its way
    check_eq "d is shown while its copy is queued" "regular file 5" "$(stat -c '%F %s' "$slow/d2" 2>&1)"
    check_eq "and reads the moved content" "slow" "$(cat "$slow/d2" 2>&1)"
    proxy_config "delay.CopyObject=-1"
    unmount_fs "$slow"
    rm "$MNT/d2"
    landed
}

# ---- B. rmdir / rm -r confirm with S3 ----

# A directory this mount made is cached as empty: with long cache
# lifetimes (the AWS CLI may take longer than dir_ttl=1 to start) rmdir
# must still ask S3 and find what another client put there.
case_rmdir_asks_s3() {
    local long=$WORK/long ld rc
    own_dir rmdir-s3 || { bad "cannot make the case's directory"; return; }
    landed
    ld=$long/$(rel)d
    mount_fs "$long" "$BUCKET" -o "dir_ttl=60,negative_ttl=60" || { bad "the long-lived mount failed"; return; }
    mkdir "$ld"
    echo x | aws_ s3 cp - "s3://$BUCKET/$(rel)d/x" >/dev/null
    check_err "an object put by another client into a directory this mount just made: rmdir fails" \
        "not empty" rmdir "$ld"
    rm -rf "$ld" 2>/dev/null
    rc=$?
    landed "$long"
    if [ "$rc" -eq 0 ]; then
        s3_lacks "rm -rf d succeeded, so it removed d/x" d/x
    else
        s3_has "rm -rf d failed, so d/x is still" d/x
        s3_has "rm -rf d failed, so the marker d/ is still" d/
    fi
    unmount_fs "$long"
    rm -rf d
    landed
    aws_ s3 rm --quiet "s3://$BUCKET/$(rel)d/x"
}

case_rmdir_orphan_marker() {
    own_dir orphan || { bad "cannot make the case's directory"; return; }
    mkdir d
    aws_ s3api put-object --bucket "$BUCKET" --key "$(rel)d/sub/" >/dev/null
    check_err "an orphaned marker d/sub/: rmdir d fails" "not empty" rmdir d
    s3_has "the marker d/ stays" d/
    rm -rf d
    landed
    s3_lacks "rm -rf d then removes d/sub/" d/sub/
    s3_lacks "and d/" d/
}

# Keys with an empty or dot component show under a reserved name: readdir
# lists it, rmdir refuses to remove the directory above them (ENOTEMPTY)
# rather than leave them behind, and rm -rf removes them with it.
odd_key() { # KEY ALIAS (KEY below d/, in the case's directory)
    local k=$1 alias=$2
    mkdir d
    echo odd | aws_ s3 cp - "s3://$BUCKET/$(rel)$k" >/dev/null
    sleep 1.1 # only lets time pass: d's listing (dir_ttl=1) was cached empty by mkdir
    check_eq "$k: readdir of d shows $alias" "$alias" "$(ls -A d 2>&1)"
    check_eq "$k: read through it" odd "$(cat "d/$alias/x")"
    check_err "$k: rmdir d fails" "not empty" rmdir d
    landed
    s3_has "$k: stays" "$k"
    s3_has "$k: the marker d/ stays" d/
    check "$k: rm -rf d removes it" rm -rf d
    landed
    s3_lacks "$k: gone from S3" "$k"
    s3_lacks "$k: and the marker d/" d/
}

case_odd_key_empty() {
    own_dir odd-empty || { bad "cannot make the case's directory"; return; }
    odd_key d//x .s3cfs-empty
}
case_odd_key_dot() {
    own_dir odd-dot || { bad "cannot make the case's directory"; return; }
    odd_key d/./x .s3cfs-dot
}
case_odd_key_dotdot() {
    own_dir odd-dotdot || { bad "cannot make the case's directory"; return; }
    odd_key d/../x .s3cfs-dotdot
}

run_cases "$@"
