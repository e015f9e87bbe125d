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

# ---- made through the mount ----
check "mkfifo" mkfifo -m 0640 "$MNT/fifo"
check "mknod c 1 3" mknod -m 0620 "$MNT/null" c 1 3
check "mknod b 7 0" mknod -m 0600 "$MNT/blk" b 7 0
check "bind(2) of a Unix socket" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])' "$MNT/sock"
check_err "mknod over an existing name" "File exists" mknod "$MNT/fifo" p
check_eq "FIFO through the mount" "fifo 640" "$(stat -c '%F %a' "$MNT/fifo")"
check_eq "character device through the mount" "character special file 1 3 620" \
    "$(stat -c '%F %t %T %a' "$MNT/null")"
check_eq "block device through the mount" "block special file 7 0" "$(stat -c '%F %t %T' "$MNT/blk")"
check_eq "socket through the mount" "socket" "$(stat -c '%F' "$MNT/sock")"
check_eq "ls -l shows the types" "bcps" \
    "$(ls -l "$MNT" | awk 'NR > 1 {print substr($1, 1, 1)}' | sort | tr -d '\n')"
landed
check_eq "S3: FIFO mode (S_IFIFO|0640)" "$((8#010640))" "$(meta_of fifo mode)"
check_eq "S3: FIFO is an empty object" "0" "$(size_of fifo)"
check_eq "S3: char device mode and rdev" "$((8#020620)) $((1 << 8 | 3))" \
    "$(meta_of null mode) $(meta_of null rdev)"
check_eq "S3: block device rdev" "$((7 << 8))" "$(meta_of blk rdev)"
check_eq "S3: socket mode has S_IFSOCK" "$((8#140000))" "$(($(meta_of sock mode) & 8#170000))"
check_eq "S3: no rdev on a FIFO" "None" "$(meta_of fifo rdev)"

# ---- devices are inert unless the mount allows them ----
check "the mount is nodev and nosuid" grep -Eq " $MNT fuse[^ ]* [^ ]*nosuid,nodev" /proc/mounts
check_err "writing to a device node on a nodev mount" "Permission denied" \
    sh -c "echo x >'$MNT/null'"
MNT2=$WORK/mnt-dev
mount_fs "$MNT2" "$BUCKET" -o dev,suid || exit 2
check "with -o dev the node is the device (writes to /dev/null)" sh -c "echo x >'$MNT2/null'"
check_eq "with -o dev reading it gives /dev/null's nothing" "0" "$(head -c 10 "$MNT2/null" | wc -c)"
check_eq "a fresh mount reads the types back" "fifo character special file socket" \
    "$(stat -c '%F' "$MNT2/fifo" "$MNT2/null" "$MNT2/sock" | xargs)"

# ---- planted by another client ----
: >"$WORK/empty"
aws_ s3api put-object --bucket "$BUCKET" --key planted/fifo --body "$WORK/empty" \
    --metadata mode=$((8#010600)) >/dev/null
aws_ s3api put-object --bucket "$BUCKET" --key planted/tty --body "$WORK/empty" \
    --metadata mode=$((8#020600)),rdev=$((5 << 8 | 0)) >/dev/null
echo '#!/bin/sh' >"$WORK/prog"
aws_ s3api put-object --bucket "$BUCKET" --key planted/setuid --body "$WORK/prog" \
    --metadata mode=$((8#106755)) >/dev/null
aws_ s3api put-object --bucket "$BUCKET" --key planted/file.txt --body "$WORK/prog" >/dev/null
check_eq "planted device: type and rdev" "character special file 5 0" \
    "$(stat -c '%F %t %T' "$MNT/planted/tty")"
check_eq "setuid/setgid not shown on a nosuid mount" "755" "$(stat -c %a "$MNT/planted/setuid")"
check_eq "setuid/setgid shown on a suid mount" "6755" "$(stat -c %a "$MNT2/planted/setuid")"
# cp -r recreates special files (coreutils never opens them without
# --copy-contents): the planted FIFO neither hangs nor blocks it
timeout 60 cp -r "$MNT/planted" "$WORK/out"
check_eq "cp -r out of the mount with a planted FIFO ends" "0" "$?"
check "cp -r made a FIFO of it" test -p "$WORK/out/fifo"
check_eq "cp -r copied the plain file" "#!/bin/sh" "$(cat "$WORK/out/file.txt")"
# what is not shown is still kept: a rewrite or a move on a nosuid mount
# writes the stored bits back
chown 1:1 "$MNT/planted/setuid"
mv "$MNT/planted/setuid" "$MNT/planted/setuid2"
landed
check_eq "chown and mv on a nosuid mount keep the stored setuid/setgid" "$((8#106755)) 1" \
    "$(meta_of planted/setuid2 mode) $(meta_of planted/setuid2 uid)"
# opening the FIFO is the kernel's local pipe: a reader waits for a writer
timeout 3 cat "$MNT/planted/fifo" >/dev/null 2>&1
check_eq "a reader of the FIFO waits for a writer (a local pipe)" "124" "$?"
timeout 20 sh -c "echo through-the-pipe >'$MNT/planted/fifo'" &
writer=$!
check_eq "with a writer on this machine it is a pipe" "through-the-pipe" \
    "$(timeout 20 cat "$MNT/planted/fifo")"
wait "$writer"

# ---- Content-Type from the name (/etc/mime.types) ----
echo text >"$MNT/a.txt"
echo jpg >"$MNT/photo.JPG"
echo gz >"$MNT/archive.tar.gz"
echo none >"$MNT/noext"
cp "$WORK/prog" "$MNT/copied.html"
check_eq "Content-Type of a.txt" "text/plain" "$(ct_of a.txt)"
check_eq "Content-Type of photo.JPG (any case)" "image/jpeg" "$(ct_of photo.JPG)"
check_eq "Content-Type of archive.tar.gz" "application/gzip" "$(ct_of archive.tar.gz)"
check_eq "Content-Type of a file copied in" "text/html" "$(ct_of copied.html)"
check_eq "no extension: the server's default" "binary/octet-stream" "$(ct_of noext)"
echo more >>"$MNT/a.txt"
check_eq "a rewrite keeps it" "text/plain" "$(ct_of a.txt)"
MNT3=$WORK/mnt-nomime
mount_fs "$MNT3" "$BUCKET" -o nomime || exit 2
echo text >"$MNT3/b.txt"
check_eq "-o nomime: no type from the name" "binary/octet-stream" "$(ct_of b.txt)"
unmount_fs "$MNT3"

# ---- s3fs-fuse on the same bucket, both ways ----
S3FS_MNT=$WORK/mnt-s3fs
mkdir -p "$S3FS_MNT"
echo "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" >"$WORK/passwd-s3fs"
chmod 600 "$WORK/passwd-s3fs"
s3fs "$BUCKET" "$S3FS_MNT" -f -o "use_path_request_style,passwd_file=$WORK/passwd-s3fs,url=$S3_ENDPOINT,stat_cache_expire=1,dev" \
    >>"$WORK/s3fs.log" 2>&1 &
S3FS_PID=$!
for _ in $(seq 1 100); do mountpoint -q "$S3FS_MNT" && break; sleep 0.1; done
if mountpoint -q "$S3FS_MNT"; then
    # s3fs 1.90 (Debian 12) keeps the type of a special file but not its
    # device number: it shows our devices as 0,0 and writes no rdev
    check_eq "s3fs reads the types of our FIFO, devices and socket" \
        "fifo|character special file 0 0|block special file 0 0|socket" \
        "$(stat -c '%F %t %T' "$S3FS_MNT/fifo" "$S3FS_MNT/null" "$S3FS_MNT/blk" "$S3FS_MNT/sock" |
            sed 's/^\(fifo\|socket\) 0 0$/\1/' | paste -sd'|')"
    check "s3fs: mkfifo" mkfifo "$S3FS_MNT/s3fs-fifo"
    check "s3fs: mknod c 10 200" mknod "$S3FS_MNT/s3fs-tun" c 10 200
    check "s3fs: mknod b 8 1" mknod "$S3FS_MNT/s3fs-sda1" b 8 1
    sleep 1.5
    check_eq "s3fs's FIFO and devices read right here (1.90 stores no rdev: 0,0)" \
        "fifo|character special file 0 0|block special file 0 0" \
        "$(stat -c '%F %t %T' "$MNT2/s3fs-fifo" "$MNT2/s3fs-tun" "$MNT2/s3fs-sda1" |
            sed 's/^fifo 0 0$/fifo/' | paste -sd'|')"
    check_eq "s3fs's mode carries the type" "$((8#020000))" "$(($(meta_of s3fs-tun mode) & 8#170000))"
    fusermount3 -u "$S3FS_MNT"
else
    bad "s3fs did not mount: $(tail -3 "$WORK/s3fs.log")"
fi
for _ in $(seq 1 100); do kill -0 "$S3FS_PID" 2>/dev/null || break; sleep 0.1; done
kill "$S3FS_PID" 2>/dev/null
fs_done
