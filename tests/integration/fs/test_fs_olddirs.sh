#!/bin/bash
# s3fs conventions (issue 12 §4) and directory link counts (§2): old-style
# directory objects ("d" empty with Content-Type application/x-directory,
# and "d_$folder$") show as directories and work as ones (lookup, readdir,
# touch d/x, mkdir over them, rmdir and rm -r also remove the old-style
# object, mv makes it the new name's marker); st_nlink is 2 + the
# subdirectories when they are known, else 1, never a wrong constant.
. "$(dirname "$0")/lib.sh"
fs_setup
: >"$WORK/empty"
echo data >"$WORK/data"
put() { aws_ s3api put-object --bucket "$BUCKET" --body "$WORK/empty" "$@" >/dev/null; }
exists() { aws_ s3api head-object --bucket "$BUCKET" --key "$1" >/dev/null 2>&1; }
put --key old --content-type application/x-directory --metadata mode=$((8#040750)),mtime=1400000000
put --key folder_\$folder\$
put --key oldfull --content-type application/x-directory
aws_ s3api put-object --bucket "$BUCKET" --key oldfull/inside --body "$WORK/data" >/dev/null
aws_ s3api put-object --bucket "$BUCKET" --key notadir --body "$WORK/data" \
    --content-type application/x-directory >/dev/null
put --key gone --content-type application/x-directory
put --key gone2_\$folder\$
put --key moved --content-type "application/x-directory; charset=UTF-8"

check_eq "'d' typed x-directory is a directory" "directory 750" "$(stat -c '%F %a' "$MNT/old")"
check_eq "its metadata is the directory's" "1400000000" "$(stat -c %Y "$MNT/old")"
check_eq "'d_\$folder\$' is the directory d" "directory" "$(stat -c %F "$MNT/folder")"
check_eq "x-directory with data stays a file (no bytes hidden)" "regular file" \
    "$(stat -c %F "$MNT/notadir")"
check_eq "readdir shows them as directories, without the _\$folder\$ name" \
    "folder/ gone/ gone2/ moved/ notadir old/ oldfull/" \
    "$(cd "$MNT" && ls -dp -- * | sort | xargs)"
check_eq "readdir of an old-style directory with a child" "inside" "$(ls "$MNT/oldfull")"
check "touch old/x" touch "$MNT/old/x"
check "touch folder/y" touch "$MNT/folder/y"
check_err "mkdir over an old-style directory" "File exists" mkdir "$MNT/old"
check_err "mkdir over a _\$folder\$ directory" "File exists" mkdir "$MNT/folder"
check "mkdir inside one" mkdir "$MNT/old/sub"
landed
check "S3: old/x" exists old/x
check "S3: folder/y" exists folder/y

# rmdir / rm -r remove the old-style object with the directory
check "rmdir of an empty old-style 'd'" rmdir "$MNT/gone"
check "rmdir of an empty 'd_\$folder\$'" rmdir "$MNT/gone2"
check "rm -r of an old-style tree" rm -r "$MNT/old" "$MNT/folder"
landed
check_not "S3: the 'gone' object is deleted" exists gone
check_not "S3: the 'gone2_\$folder\$' object is deleted" exists 'gone2_$folder$'
check_not "S3: 'old' deleted by rm -r" exists old
check_not "S3: 'folder_\$folder\$' deleted by rm -r" exists 'folder_$folder$'
sleep 1.2
check_not "the directories are gone through the mount" stat "$MNT/gone" "$MNT/gone2" "$MNT/old"
# mv: the old-style object becomes the new name's marker
check "mv of an old-style directory" mv "$MNT/moved" "$MNT/renamed"
landed
check_not "S3: the old-style object moved away" exists moved
check_eq "S3: renamed/ is a marker" "application/x-directory; charset=UTF-8" \
    "$(aws_ s3api head-object --bucket "$BUCKET" --key renamed/ --query ContentType --output text)"
check_eq "mv: the new name is a directory" "directory" "$(stat -c %F "$MNT/renamed")"
check "chmod of an old-style directory object" chmod 700 "$MNT/oldfull"
check_eq "chmod rewrote the old-style object" "$((8#040700))" "$(meta_of oldfull mode)"

# st_nlink: 2 + subdirectories when known, else 1 ("unknown" to find).
# Listings are known for dir_ttl: a mount that keeps them for a minute.
aws_ s3api put-object --bucket "$BUCKET" --key implicit/deep/x --body "$WORK/data" >/dev/null
MNT2=$WORK/mnt2
mount_fs "$MNT2" "$BUCKET" -o dir_ttl=60 || exit 2
mkdir -p "$MNT2/n/a" "$MNT2/n/b" "$MNT2/n/c"
touch "$MNT2/n/f"
ls "$MNT2/n" >/dev/null
sleep 1.2 # the kernel's attributes of n (attr_ttl) predate the listing
check_eq "st_nlink of a listed directory: 2 + 3 subdirectories" "5" "$(stat -c %h "$MNT2/n")"
check_eq "st_nlink of an empty directory made here" "2" "$(stat -c %h "$MNT2/n/a")"
check_eq "a file: 1" "1" "$(stat -c %h "$MNT2/n/f")"
check_eq "an unlisted directory: 1 (unknown), not 2" "1" "$(stat -c %h "$MNT2/implicit")"
check_eq "find counts every directory" "implicit implicit/deep n n/a n/b n/c oldfull renamed" \
    "$(cd "$MNT2" && find . -mindepth 1 -type d | sed 's|^\./||' | sort | xargs)"
fs_done
