#!/bin/bash
# File data through the mount: sizes around the thresholds, both ways
# byte-identical with the S3 API, random reads, concurrent writers.
. "$(dirname "$0")/lib.sh"
fs_setup
MIB=$((1024 * 1024))
SRC=$WORK/src
mkdir -p "$SRC"

for size in 0 1 $((5 * MIB - 1)) $((5 * MIB)) $((5 * MIB + 1)) $((64 * MIB)); do
    head -c "$size" /dev/urandom >"$SRC/f$size"
    cp "$SRC/f$size" "$MNT/f$size"
    check "write $size bytes: same in S3" same_in_s3 "f$size" "$SRC/f$size"
    check "write $size bytes: same through the mount" cmp "$SRC/f$size" "$MNT/f$size"
    aws_ s3 cp --quiet "$SRC/f$size" "s3://$BUCKET/up$size"
    check "upload $size bytes with the CLI: same through the mount" cmp "$SRC/f$size" "$MNT/up$size"
done
# the 64 MiB file went up as a multipart upload (its ETag says so)
etag=$(aws_ s3api head-object --bucket "$BUCKET" --key "f$((64 * MIB))" --query ETag --output text)
check "64 MiB is a multipart upload (ETag $etag)" test "${etag##*-}" != "$etag"

# random-offset reads of the large file
big=$SRC/f$((64 * MIB))
fails=0
for i in $(seq 1 40); do
    off=$(( (RANDOM * 32768 + RANDOM) % (64 * MIB) ))
    len=$(( (RANDOM % 300000) + 1 ))
    a=$(dd if="$big" bs=1M iflag=skip_bytes,count_bytes skip=$off count=$len status=none | md5sum)
    b=$(dd if="$MNT/f$((64 * MIB))" bs=1M iflag=skip_bytes,count_bytes skip=$off count=$len status=none | md5sum)
    [ "$a" == "$b" ] || fails=$((fails + 1))
done
check_eq "40 random-offset reads match the source" 0 "$fails"

# overwrite the middle of a large existing file, then read it all back
printf 'PATCH' | dd of="$MNT/up$((5 * MIB + 1))" bs=1 seek=$((3 * MIB)) conv=notrunc status=none
printf 'PATCH' | dd of="$SRC/f$((5 * MIB + 1))" bs=1 seek=$((3 * MIB)) conv=notrunc status=none
check "patch in the middle of an existing object" same_in_s3 "up$((5 * MIB + 1))" "$SRC/f$((5 * MIB + 1))"

# concurrent writers on different files
writers=()
for i in $(seq 1 8); do
    (head -c $((i * 300000)) /dev/urandom >"$SRC/c$i" && cp "$SRC/c$i" "$MNT/c$i") &
    writers+=($!)
done
wait "${writers[@]}" # not a bare wait: the mount is a child of this shell too
fails=0
for i in $(seq 1 8); do same_in_s3 "c$i" "$SRC/c$i" || fails=$((fails + 1)); done
check_eq "8 concurrent writers: all objects right" 0 "$fails"

# append to an existing object and read through a second handle meanwhile
exec 7>>"$MNT/c1"
printf 'tail' >&7
exec 7>&-
cat "$SRC/c1" >"$SRC/c1.t" && printf 'tail' >>"$SRC/c1.t"
check "append through a handle" same_in_s3 c1 "$SRC/c1.t"

fs_done
