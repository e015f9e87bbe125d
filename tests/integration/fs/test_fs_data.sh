#!/bin/bash
# File data through the mount: sizes around the thresholds, both ways
# byte-identical with the S3 API, random reads, concurrent writers.
. "$(dirname "$0")/lib.sh"
fs_setup
MIB=$((1024 * 1024))
SRC=$WORK/src
mkdir -p "$SRC"

# both_ways SIZE: SIZE bytes written through the mount and read back both
# ways, and uploaded with the CLI and read through the mount
both_ways() {
    local size=$1
    head -c "$size" /dev/urandom >"$SRC/f$size"
    cp "$SRC/f$size" "$MNT/f$size"
    check "write $size bytes: same in S3" same_in_s3 "f$size" "$SRC/f$size"
    check "write $size bytes: same through the mount" cmp "$SRC/f$size" "$MNT/f$size"
    aws_ s3 cp --quiet "$SRC/f$size" "s3://$BUCKET/up$size"
    check "upload $size bytes with the CLI: same through the mount" cmp "$SRC/f$size" "$MNT/up$size"
}

case_size_0() { both_ways 0; }
case_size_1() { both_ways 1; }
case_size_5mib_less_1() { both_ways $((5 * MIB - 1)); }
case_size_5mib() { both_ways $((5 * MIB)); }
case_size_5mib_more_1() { both_ways $((5 * MIB + 1)); }

case_size_64mib_multipart() {
    local etag
    both_ways $((64 * MIB))
    # the 64 MiB file went up as a multipart upload (its ETag says so)
    etag=$(aws_ s3api head-object --bucket "$BUCKET" --key "f$((64 * MIB))" --query ETag --output text)
    check "64 MiB is a multipart upload (ETag $etag)" test "${etag##*-}" != "$etag"
}
case_timeout size_64mib_multipart 600

# random-offset reads of a large file written through the mount
case_random_reads() {
    local big=$SRC/big fails=0 i off len a b
    head -c $((64 * MIB)) /dev/urandom >"$big"
    cp "$big" "$MNT/big" || { bad "cannot write big"; return; }
    for i in $(seq 1 40); do
        off=$(((RANDOM * 32768 + RANDOM) % (64 * MIB)))
        len=$(((RANDOM % 300000) + 1))
        a=$(dd if="$big" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none | md5sum)
        b=$(dd if="$MNT/big" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none | md5sum)
        [ "$a" == "$b" ] || fails=$((fails + 1))
    done
    check_eq "40 random-offset reads match the source" 0 "$fails"
}
case_timeout random_reads 600

# overwrite the middle of a large existing file, then read it all back
case_patch_middle() {
    local f=$SRC/patch
    head -c $((5 * MIB + 1)) /dev/urandom >"$f"
    aws_ s3 cp --quiet "$f" "s3://$BUCKET/patch" || { bad "cannot upload patch"; return; }
    printf 'PATCH' | dd of="$MNT/patch" bs=1 seek=$((3 * MIB)) conv=notrunc status=none
    printf 'PATCH' | dd of="$f" bs=1 seek=$((3 * MIB)) conv=notrunc status=none
    check "patch in the middle of an existing object" same_in_s3 patch "$f"
}

# concurrent writers on different files
case_concurrent_writers() {
    local writers=() fails=0 i
    for i in $(seq 1 8); do
        (head -c $((i * 300000)) /dev/urandom >"$SRC/c$i" && cp "$SRC/c$i" "$MNT/c$i") &
        writers+=($!)
    done
    wait "${writers[@]}" # not a bare wait: the mount is a child of this shell too
    for i in $(seq 1 8); do same_in_s3 "c$i" "$SRC/c$i" || fails=$((fails + 1)); done
    check_eq "8 concurrent writers: all objects right" 0 "$fails"
}

# append to an existing object and read through a second handle meanwhile
case_append_handle() {
    head -c 300000 /dev/urandom >"$SRC/ap"
    cp "$SRC/ap" "$MNT/ap" || { bad "cannot write ap"; return; }
    exec 7>>"$MNT/ap"
    printf 'tail' >&7
    exec 7>&-
    cat "$SRC/ap" >"$SRC/ap.t" && printf 'tail' >>"$SRC/ap.t"
    check "append through a handle" same_in_s3 ap "$SRC/ap.t"
}

run_cases "$@"
