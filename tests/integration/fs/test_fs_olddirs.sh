#!/bin/bash
# s3fs conventions (issue 12 §4) and directory link counts (§2): old-style
# directory objects ("d" empty with Content-Type application/x-directory,
# and "d_$folder$") show as directories and work as ones (lookup, readdir,
# touch d/x, mkdir over them, rmdir and rm -r also remove the old-style
# object, mv makes it the new name's marker); st_nlink is 2 + the
# subdirectories when they are known, else 1, never a wrong constant.
# Each case puts its objects below a directory of its own (named as the case).
. "$(dirname "$0")/lib.sh"
fs_setup
exists() { aws_ s3api head-object --bucket "$BUCKET" --key "$1" >/dev/null 2>&1; }
# put SPEC...: objects put by one Python process (botocore, which the aws
# CLI runs on: one CLI start per object made this test twice as slow);
# SPEC is KEY|CONTENT-TYPE|METADATA (k=v,...)|BODY (empty, or data: "data\n")
put() {
    BUCKET=$BUCKET python3 - "$@" <<'PYEOF'
import os, sys
import botocore.session
s3 = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1")
for spec in sys.argv[1:]:
    key, ctype, meta, body = spec.split("|")
    kw = {"Bucket": os.environ["BUCKET"], "Key": key, "Body": b"data\n" if body == "data" else b""}
    if ctype:
        kw["ContentType"] = ctype
    if meta:
        kw["Metadata"] = dict(m.split("=", 1) for m in meta.split(","))
    s3.put_object(**kw)
PYEOF
}
# old_style P NAME...: below P, the old-style objects of these names, of
# the kinds below (one put), then wait until the mount shows P
old_style() {
    local p=$1 n specs=()
    shift
    for n in "$@"; do
        case $n in
        old) specs+=("$p/old|application/x-directory|mode=$((8#040750)),mtime=1400000000|") ;;
        folder) specs+=("$p/folder_\$folder\$|||") ;;
        oldfull) specs+=("$p/oldfull|application/x-directory||" "$p/oldfull/inside|||data") ;;
        notadir) specs+=("$p/notadir|application/x-directory||data") ;;
        gone) specs+=("$p/gone|application/x-directory||") ;;
        gone2) specs+=("$p/gone2_\$folder\$|||") ;;
        moved) specs+=("$p/moved|application/x-directory; charset=UTF-8||") ;;
        *) return 1 ;;
        esac
    done
    put "${specs[@]}" || return 1
    # P is new at the root, whose listing this mount may hold from a case
    # just before (dir_ttl=1): another writer's name shows within dir_ttl
    wait_until 5 test -d "$MNT/$p"
}

case_old_style_shows_as_dir() {
    local m=$MNT/show
    old_style show old folder oldfull notadir gone gone2 moved || { bad "the objects of show/"; return; }
    check_eq "'d' typed x-directory is a directory" "directory 750" "$(stat -c '%F %a' "$m/old")"
    check_eq "its metadata is the directory's" "1400000000" "$(stat -c %Y "$m/old")"
    check_eq "'d_\$folder\$' is the directory d" "directory" "$(stat -c %F "$m/folder")"
    check_eq "x-directory with data stays a file (no bytes hidden)" "regular file" \
        "$(stat -c %F "$m/notadir")"
    check_eq "readdir shows them as directories, without the _\$folder\$ name" \
        "folder/ gone/ gone2/ moved/ notadir old/ oldfull/" \
        "$(cd "$m" && ls -dp -- * | sort | xargs)"
    check_eq "readdir of an old-style directory with a child" "inside" "$(ls "$m/oldfull")"
}

case_old_style_works_as_dir() {
    local m=$MNT/work
    old_style work old folder || { bad "the objects of work/"; return; }
    check "touch old/x" touch "$m/old/x"
    check "touch folder/y" touch "$m/folder/y"
    check_err "mkdir over an old-style directory" "File exists" mkdir "$m/old"
    check_err "mkdir over a _\$folder\$ directory" "File exists" mkdir "$m/folder"
    check "mkdir inside one" mkdir "$m/old/sub"
    landed
    check "S3: old/x" exists work/old/x
    check "S3: folder/y" exists work/folder/y
}

# rmdir / rm -r remove the old-style object with the directory
case_rmdir_removes_old_style() {
    local m=$MNT/rm
    old_style rm old folder gone gone2 || { bad "the objects of rm/"; return; }
    # old and folder hold a tree, as in use
    touch "$m/old/x" "$m/folder/y" && mkdir "$m/old/sub" || { bad "the trees in rm/old and rm/folder"; return; }
    check "rmdir of an empty old-style 'd'" rmdir "$m/gone"
    check "rmdir of an empty 'd_\$folder\$'" rmdir "$m/gone2"
    check "rm -r of an old-style tree" rm -r "$m/old" "$m/folder"
    landed
    check_not "S3: the 'gone' object is deleted" exists rm/gone
    check_not "S3: the 'gone2_\$folder\$' object is deleted" exists 'rm/gone2_$folder$'
    check_not "S3: 'old' deleted by rm -r" exists rm/old
    check_not "S3: 'folder_\$folder\$' deleted by rm -r" exists 'rm/folder_$folder$'
    sleep 1.2 # only lets time pass: past the kernel's attr_ttl (1 s)
    check_not "the directories are gone through the mount" stat "$m/gone" "$m/gone2" "$m/old"
}

# mv: the old-style object becomes the new name's marker
case_mv_old_style() {
    local m=$MNT/mv
    old_style mv moved || { bad "the objects of mv/"; return; }
    check "mv of an old-style directory" mv "$m/moved" "$m/renamed"
    landed
    check_not "S3: the old-style object moved away" exists mv/moved
    check_eq "S3: renamed/ is a marker" "application/x-directory; charset=UTF-8" \
        "$(aws_ s3api head-object --bucket "$BUCKET" --key mv/renamed/ --query ContentType --output text)"
    check_eq "mv: the new name is a directory" "directory" "$(stat -c %F "$m/renamed")"
}

case_chmod_old_style() {
    old_style chmod oldfull || { bad "the objects of chmod/"; return; }
    check "chmod of an old-style directory object" chmod 700 "$MNT/chmod/oldfull"
    check_eq "chmod rewrote the old-style object" "$((8#040700))" "$(meta_of chmod/oldfull mode)"
}

# st_nlink: 2 + subdirectories when known, else 1 ("unknown" to find).
# Listings are known for dir_ttl: a mount that keeps them for a minute.
case_nlink() {
    local m2=$WORK/mnt2 d
    # beside n/: an implicit directory, an old-style one with a child, a marker
    put "nlink/implicit/deep/x|||data" "nlink/renamed/|application/x-directory; charset=UTF-8||" &&
        old_style nlink oldfull || { bad "the objects of nlink/"; return; }
    mount_fs "$m2" "$BUCKET" -o dir_ttl=60 || { bad "the mount with dir_ttl=60 failed"; return; }
    d=$m2/nlink
    mkdir -p "$d/n/a" "$d/n/b" "$d/n/c"
    touch "$d/n/f"
    ls "$d/n" >/dev/null
    sleep 1.2 # only lets time pass: the kernel's attributes of n (attr_ttl) predate the listing
    check_eq "st_nlink of a listed directory: 2 + 3 subdirectories" "5" "$(stat -c %h "$d/n")"
    check_eq "st_nlink of an empty directory made here" "2" "$(stat -c %h "$d/n/a")"
    check_eq "a file: 1" "1" "$(stat -c %h "$d/n/f")"
    check_eq "an unlisted directory: 1 (unknown), not 2" "1" "$(stat -c %h "$d/implicit")"
    check_eq "find counts every directory" "implicit implicit/deep n n/a n/b n/c oldfull renamed" \
        "$(cd "$d" && find . -mindepth 1 -type d | sed 's|^\./||' | sort | xargs)"
    unmount_fs "$m2"
}

run_cases "$@"
