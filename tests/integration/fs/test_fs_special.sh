#!/bin/bash
# Special files and modes (issue 12 §3) and the Content-Type of new files
# (§4): mkfifo, mknod c/b, a bound Unix socket, stored as s3fs stores them
# (an empty object, the type in x-amz-meta-mode, the device number in
# x-amz-meta-rdev) and read the same by s3fs-fuse both ways; devices inert
# unless the mount has `dev`; setuid/setgid shown only with `suid`; a FIFO
# planted in the bucket does not hang `cp -r`; Content-Type from the name.
. "$(dirname "$0")/lib.sh"
fs_setup
ct_of() { aws_ s3api head-object --bucket "$BUCKET" --key "$1" --query ContentType --output text; }
size_of() { aws_ s3api head-object --bucket "$BUCKET" --key "$1" --query ContentLength --output text; }

# made_nodes DIR: below $MNT/DIR (a directory of its own) a FIFO, a character
# and a block device and a bound socket, each made by a check; fails when one
# of them was not made
made_nodes() {
    local d=$MNT/$1 fail0=$FAIL
    mkdir "$d" || { bad "cannot mkdir $d"; return 1; }
    check "mkfifo" mkfifo -m 0640 "$d/fifo"
    check "mknod c 1 3" mknod -m 0620 "$d/null" c 1 3
    check "mknod b 7 0" mknod -m 0600 "$d/blk" b 7 0
    check "bind(2) of a Unix socket" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])' "$d/sock"
    [ "$FAIL" -eq "$fail0" ]
}

# the second mount of the bucket, with dev and suid (one for the whole run:
# the cases look there only at names it has not seen before)
MNT2=$WORK/mnt-dev
dev_mount() { mountpoint -q "$MNT2" || mount_fs "$MNT2" "$BUCKET" -o dev,suid; }

# ---- made through the mount ----
case_made_through_mount() {
    local d=$MNT/made
    made_nodes made || return
    check_err "mknod over an existing name" "File exists" mknod "$d/fifo" p
    check_eq "FIFO through the mount" "fifo 640" "$(stat -c '%F %a' "$d/fifo")"
    check_eq "character device through the mount" "character special file 1 3 620" \
        "$(stat -c '%F %t %T %a' "$d/null")"
    check_eq "block device through the mount" "block special file 7 0" "$(stat -c '%F %t %T' "$d/blk")"
    check_eq "socket through the mount" "socket" "$(stat -c '%F' "$d/sock")"
    check_eq "ls -l shows the types" "bcps" \
        "$(ls -l "$d" | awk 'NR > 1 {print substr($1, 1, 1)}' | sort | tr -d '\n')"
    landed
    check_eq "S3: FIFO mode (S_IFIFO|0640)" "$((8#010640))" "$(meta_of made/fifo mode)"
    check_eq "S3: FIFO is an empty object" "0" "$(size_of made/fifo)"
    check_eq "S3: char device mode and rdev" "$((8#020620)) $((1 << 8 | 3))" \
        "$(meta_of made/null mode) $(meta_of made/null rdev)"
    check_eq "S3: block device rdev" "$((7 << 8))" "$(meta_of made/blk rdev)"
    check_eq "S3: socket mode has S_IFSOCK" "$((8#140000))" "$(($(meta_of made/sock mode) & 8#170000))"
    check_eq "S3: no rdev on a FIFO" "None" "$(meta_of made/fifo rdev)"
}

# ---- devices are inert unless the mount allows them ----
case_devices_inert_without_dev() {
    local d=inert
    made_nodes "$d" || return
    check "the mount is nodev and nosuid" grep -Eq " $MNT fuse[^ ]* [^ ]*nosuid,nodev" /proc/mounts
    check_err "writing to a device node on a nodev mount" "Permission denied" \
        sh -c "echo x >'$MNT/$d/null'"
    dev_mount || { bad "the dev,suid mount failed"; return; }
    check "with -o dev the node is the device (writes to /dev/null)" sh -c "echo x >'$MNT2/$d/null'"
    check_eq "with -o dev reading it gives /dev/null's nothing" "0" "$(head -c 10 "$MNT2/$d/null" | wc -c)"
    check_eq "a fresh mount reads the types back" "fifo character special file socket" \
        "$(stat -c '%F' "$MNT2/$d/fifo" "$MNT2/$d/null" "$MNT2/$d/sock" | xargs)"
}

# ---- planted by another client ----

# plant P: below the prefix P (a directory of its own) another client puts
# a FIFO, a tty, a setuid/setgid program and a plain file; $WORK/prog is
# the program's (and the plain file's) content
plant() {
    local p=$1
    : >"$WORK/empty"
    echo '#!/bin/sh' >"$WORK/prog"
    aws_ s3api put-object --bucket "$BUCKET" --key "$p/fifo" --body "$WORK/empty" \
        --metadata mode=$((8#010600)) >/dev/null &&
        aws_ s3api put-object --bucket "$BUCKET" --key "$p/tty" --body "$WORK/empty" \
            --metadata mode=$((8#020600)),rdev=$((5 << 8 | 0)) >/dev/null &&
        aws_ s3api put-object --bucket "$BUCKET" --key "$p/setuid" --body "$WORK/prog" \
            --metadata mode=$((8#106755)) >/dev/null &&
        aws_ s3api put-object --bucket "$BUCKET" --key "$p/file.txt" --body "$WORK/prog" >/dev/null
}

case_planted_modes() {
    local p=planted
    plant "$p" || { bad "cannot plant the objects"; return; }
    dev_mount || { bad "the dev,suid mount failed"; return; }
    check_eq "planted device: type and rdev" "character special file 5 0" \
        "$(stat -c '%F %t %T' "$MNT/$p/tty")"
    check_eq "setuid/setgid not shown on a nosuid mount" "755" "$(stat -c %a "$MNT/$p/setuid")"
    check_eq "setuid/setgid shown on a suid mount" "6755" "$(stat -c %a "$MNT2/$p/setuid")"
    # what is not shown is still kept: a rewrite or a move on a nosuid mount
    # writes the stored bits back
    chown 1:1 "$MNT/$p/setuid"
    mv "$MNT/$p/setuid" "$MNT/$p/setuid2"
    landed
    check_eq "chown and mv on a nosuid mount keep the stored setuid/setgid" "$((8#106755)) 1" \
        "$(meta_of "$p/setuid2" mode) $(meta_of "$p/setuid2" uid)"
}

case_planted_fifo() {
    local p=planted-fifo out=$WORK/out-fifo writer
    plant "$p" || { bad "cannot plant the objects"; return; }
    # cp -r recreates special files (coreutils never opens them without
    # --copy-contents): the planted FIFO neither hangs nor blocks it
    timeout 60 cp -r "$MNT/$p" "$out"
    check_eq "cp -r out of the mount with a planted FIFO ends" "0" "$?"
    check "cp -r made a FIFO of it" test -p "$out/fifo"
    check_eq "cp -r copied the plain file" "#!/bin/sh" "$(cat "$out/file.txt")"
    # opening the FIFO is the kernel's local pipe: a reader waits for a writer
    timeout 3 cat "$MNT/$p/fifo" >/dev/null 2>&1
    check_eq "a reader of the FIFO waits for a writer (a local pipe)" "124" "$?"
    timeout 20 sh -c "echo through-the-pipe >'$MNT/$p/fifo'" &
    writer=$!
    check_eq "with a writer on this machine it is a pipe" "through-the-pipe" \
        "$(timeout 20 cat "$MNT/$p/fifo")"
    wait "$writer"
}

# ---- Content-Type from the name (/etc/mime.types) ----
case_content_type() {
    local mnt3=$WORK/mnt-nomime
    echo '#!/bin/sh' >"$WORK/page"
    echo text >"$MNT/a.txt"
    echo jpg >"$MNT/photo.JPG"
    echo gz >"$MNT/archive.tar.gz"
    echo none >"$MNT/noext"
    cp "$WORK/page" "$MNT/copied.html"
    check_eq "Content-Type of a.txt" "text/plain" "$(ct_of a.txt)"
    check_eq "Content-Type of photo.JPG (any case)" "image/jpeg" "$(ct_of photo.JPG)"
    check_eq "Content-Type of archive.tar.gz" "application/gzip" "$(ct_of archive.tar.gz)"
    check_eq "Content-Type of a file copied in" "text/html" "$(ct_of copied.html)"
    check_eq "no extension: the server's default" "binary/octet-stream" "$(ct_of noext)"
    echo more >>"$MNT/a.txt"
    check_eq "a rewrite keeps it" "text/plain" "$(ct_of a.txt)"
    mount_fs "$mnt3" "$BUCKET" -o nomime || { bad "the nomime mount failed"; return; }
    echo text >"$mnt3/b.txt"
    check_eq "-o nomime: no type from the name" "binary/octet-stream" "$(ct_of b.txt)"
    unmount_fs "$mnt3"
}

# ---- s3fs-fuse on the same bucket, both ways ----

# the s3fs-fuse mount of the bucket on $S3FS_MNT (its pid in S3FS_PID)
S3FS_MNT=$WORK/mnt-s3fs
start_s3fs() {
    mkdir -p "$S3FS_MNT"
    echo "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" >"$WORK/passwd-s3fs"
    chmod 600 "$WORK/passwd-s3fs"
    s3fs "$BUCKET" "$S3FS_MNT" -f -o "use_path_request_style,passwd_file=$WORK/passwd-s3fs,url=$S3_ENDPOINT,stat_cache_expire=1,dev" \
        >>"$WORK/s3fs.log" 2>&1 &
    S3FS_PID=$!
    wait_until 10 mountpoint -q "$S3FS_MNT"
}

# s3fs's FIFO and devices, read through the dev mount of ours
s3fs_nodes_here() {
    stat -c '%F %t %T' "$MNT2/s3fs-fifo" "$MNT2/s3fs-tun" "$MNT2/s3fs-sda1"
}

case_s3fs_both_ways() {
    local d=ours
    made_nodes "$d" || return
    dev_mount || { bad "the dev,suid mount failed"; return; }
    landed
    if start_s3fs; then
        # s3fs 1.90 (Debian 12) keeps the type of a special file but not its
        # device number: it shows our devices as 0,0 and writes no rdev
        check_eq "s3fs reads the types of our FIFO, devices and socket" \
            "fifo|character special file 0 0|block special file 0 0|socket" \
            "$(stat -c '%F %t %T' "$S3FS_MNT/$d/fifo" "$S3FS_MNT/$d/null" "$S3FS_MNT/$d/blk" "$S3FS_MNT/$d/sock" |
                sed 's/^\(fifo\|socket\) 0 0$/\1/' | paste -sd'|')"
        check "s3fs: mkfifo" mkfifo "$S3FS_MNT/s3fs-fifo"
        check "s3fs: mknod c 10 200" mknod "$S3FS_MNT/s3fs-tun" c 10 200
        check "s3fs: mknod b 8 1" mknod "$S3FS_MNT/s3fs-sda1" b 8 1
        wait_until 10 s3fs_nodes_here
        check_eq "s3fs's FIFO and devices read right here (1.90 stores no rdev: 0,0)" \
            "fifo|character special file 0 0|block special file 0 0" \
            "$(s3fs_nodes_here | sed 's/^fifo 0 0$/fifo/' | paste -sd'|')"
        check_eq "s3fs's mode carries the type" "$((8#020000))" "$(($(meta_of s3fs-tun mode) & 8#170000))"
        fusermount3 -u "$S3FS_MNT"
    else
        bad "s3fs did not mount: $(tail -3 "$WORK/s3fs.log")"
    fi
    wait_until 10 not_running "$S3FS_PID"
    kill "$S3FS_PID" 2>/dev/null
}

run_cases "$@"
