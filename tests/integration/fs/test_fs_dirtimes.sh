#!/bin/bash
# Directory times and rename ctime (issue 12 §2): creating, unlinking,
# renaming into or out of, mkdir and rmdir in a directory change its mtime
# and ctime at once through the mount; they reach the marker coalesced (a
# cp -r of N files into a directory costs O(1) marker writes, counted by
# the proxy) and survive a remount; a directory without a marker keeps
# them in memory; rename changes the ctime of what was renamed.
#
# Every case works in directories of its own (named after it).
. "$(dirname "$0")/lib.sh"
proxied_setup
mt() { stat -c %.9Y "$1"; }
ct() { stat -c %.9Z "$1"; }
later() { [ "$(echo "$1 > $2" | bc)" = 1 ]; }
# the same time, however written ("5" and "5.000000000")
same() { [ -n "$2" ] && [ "$2" != None ] && [ "$(echo "$1 == $2" | bc)" = 1 ]; }
# the marker of DIR/ carries the mtime M (for wait_until: s3c, as the AWS
# CLI starts slowly)
marker_mtime_is() { # DIR M
    same "$2" "$(s3c head "$BUCKET" "$1/" | awk '$1 == "meta" && $2 == "mtime" {print $3}')"
}
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
# old_dirs DIR...: directories with markers, dated 2001, landed
old_dirs() {
    mkdir "$@" && touch -d '2001-01-01 UTC' "$@" && landed
}

case_ops_change_dir_times() {
    local d=$MNT/ops-d e=$MNT/ops-e
    old_dirs "$d" "$e" || { bad "the directories ops-d and ops-e"; return; }
    changes "create" "$d" touch "$d/f"
    changes "unlink" "$d" rm "$d/f"
    changes "mkdir" "$d" mkdir "$d/sub"
    changes "rmdir" "$d" rmdir "$d/sub"
    changes "symlink" "$d" ln -s target "$d/l"
    changes "mkfifo" "$d" mkfifo "$d/p"
    echo x >"$e/moving"
    changes "rename into" "$d" mv "$e/moving" "$d/moving"
    changes "rename out of" "$d" mv "$d/moving" "$e/moving"
    changes "rename within" "$d" mv "$d/l" "$d/l2"
    check "e changed too (a name moved into and out of it)" later "$(mt "$e")" 978307200
    check_eq "ls -l shows the new time too" "$(stat -c %Y "$d")" \
        "$(ls -ld --time-style=+%s "$d" | awk '{print $6}')"
}

# written to the marker at a durability point, kept across a remount
case_marker_kept_across_remount() {
    local d=$MNT/keep m
    old_dirs "$d" || { bad "the directory keep"; return; }
    touch "$d/f"
    m=$(mt "$d")
    landed
    check "S3: keep/ marker carries the new mtime" same "$m" "$(meta_of keep/ mtime)"
    remount || return
    check_eq "mtime kept across a remount" "$m" "$(mt "$MNT/keep")"
}

# written without a durability point, after a short quiet time
case_marker_written_after_quiet() {
    local d=$MNT/quiet m
    old_dirs "$d" || { bad "the directory quiet"; return; }
    touch "$d/quiet"
    m=$(mt "$d")
    wait_until 20 marker_mtime_is quiet "$m"
    check "S3: written by itself after a second of quiet" same "$m" "$(meta_of quiet/ mtime)"
}

# coalesced: cp -r of N files into a directory = O(1) marker writes
case_cp_r_coalesced() {
    local n=40 i writes tree=$WORK/tree-coalesced
    mkdir -p "$tree"
    for i in $(seq 1 $n); do echo "$i" >"$tree/f$i"; done
    landed
    proxy_reset
    cp -r "$tree" "$MNT/big"
    landed
    writes=$(proxy_count CopyObject)
    check "cp -r of $n files: at most 2 marker writes, not $n (got $writes)" test "$writes" -ge 1 -a "$writes" -le 2
    check_eq "cp -r: one PutObject per file and the marker" $((n + 1)) "$(proxy_count PutObject)"
    check "S3: big/ carries the time of its last change" same "$(mt "$MNT/big")" "$(meta_of big/ mtime)"
}

# a directory without a marker: times in memory, no marker made
case_no_marker_in_memory() {
    local m0
    echo x >"$WORK/x"
    aws_ s3api put-object --bucket "$BUCKET" --key implicit/x --body "$WORK/x" >/dev/null
    # only lets time pass: past the cache lifetimes (1 s), so that the
    # mount sees the directory another client just made
    sleep 1.2
    m0=$(mt "$MNT/implicit")
    changes "create in a directory without a marker" "$MNT/implicit" touch "$MNT/implicit/y"
    landed
    check_not "S3: no marker was made for it" aws_ s3api head-object --bucket "$BUCKET" --key implicit/
    check "its new time is kept in memory" later "$(mt "$MNT/implicit")" "$m0"
}

# rename changes the ctime of what was renamed
case_rename_changes_ctime() {
    local d=$MNT/ren c0 m0 c1 c2
    mkdir "$d" || { bad "the directory ren"; return; }
    echo r >"$d/r"
    mkdir "$d/rd"
    landed
    # only lets time pass: the renames come over a second after the
    # creations, so their ctimes differ even where times are kept in seconds
    sleep 1.1
    c0=$(ct "$d/r") m0=$(mt "$d/r")
    mv "$d/r" "$d/r2"
    check "rename of a file changes its ctime" later "$(ct "$d/r2")" "$c0"
    check_eq "rename of a file keeps its mtime" "$m0" "$(mt "$d/r2")"
    c0=$(ct "$d/rd") m0=$(mt "$d/rd")
    mv "$d/rd" "$d/rd2"
    check "rename of a directory changes its ctime" later "$(ct "$d/rd2")" "$c0"
    check_eq "rename of a directory keeps its mtime" "$m0" "$(mt "$d/rd2")"
    c1=$(ct "$d/r2") c2=$(ct "$d/rd2")
    landed
    remount || return
    check_eq "a renamed file's ctime is kept across a remount" "$c1" "$(ct "$MNT/ren/r2")"
    check_eq "a renamed directory's ctime is kept across a remount" "$c2" "$(ct "$MNT/ren/rd2")"
    check "S3: the renamed file's ctime" same "$c1" "$(meta_of ren/r2 ctime)"
}

run_cases "$@"
