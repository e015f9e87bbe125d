#!/bin/bash
# s3fs-fuse compatibility both ways: objects written through the S3 API with
# s3fs headers show those modes, owners and times; what we write carries them.
. "$(dirname "$0")/lib.sh"
fs_setup

# objects another client wrote with s3fs headers, read through the mount
case_reads_s3fs_headers() {
    echo content >"$WORK/c"
    aws_ s3api put-object --bucket "$BUCKET" --key s3fs-file --body "$WORK/c" \
        --metadata mode=33216,uid=1001,gid=1002,mtime=1500000000 >/dev/null
    aws_ s3api put-object --bucket "$BUCKET" --key s3fs-dir/ --content-type application/x-directory \
        --metadata mode=16832,uid=1003,gid=1004,mtime=1400000000 >/dev/null
    printf 's3fs-file' >"$WORK/target"
    aws_ s3api put-object --bucket "$BUCKET" --key s3fs-link --body "$WORK/target" \
        --metadata mode=41471 >/dev/null
    aws_ s3api put-object --bucket "$BUCKET" --key plain --body "$WORK/c" >/dev/null
    aws_ s3api put-object --bucket "$BUCKET" --key nsec --body "$WORK/c" \
        --metadata mode=33188,mtime=1600000000.123456789 >/dev/null
    # only lets time pass: past the cache lifetimes (1 s) of what the mount
    # may hold of its top directory from before the objects were put
    sleep 1.2
    check_eq "s3fs mode/uid/gid on a file" "700 1001 1002" "$(stat -c '%a %u %g' "$MNT/s3fs-file")"
    check_eq "s3fs mtime on a file" "1500000000" "$(stat -c %Y "$MNT/s3fs-file")"
    check_eq "s3fs directory marker" "directory 700 1003 1004" "$(stat -c '%F %a %u %g' "$MNT/s3fs-dir")"
    check_eq "s3fs directory mtime" "1400000000" "$(stat -c %Y "$MNT/s3fs-dir")"
    check_eq "s3fs symlink" "s3fs-file" "$(readlink "$MNT/s3fs-link")"
    check_eq "an object without metadata: default mode" "644" "$(stat -c %a "$MNT/plain")"
    check_eq "mtime with nanoseconds" "1600000000.123456789" "$(stat -c %.9Y "$MNT/nsec")"
    # ls -l of the directory shows the same as stat (attributes come with readdir)
    check_eq "ls -l agrees" "-rwx------ 1001 1002" "$(ls -ln "$MNT" | awk '$9=="s3fs-file"{print $1, $3, $4}')"
}

# what we write carries s3fs headers
case_writes_s3fs_headers() {
    echo x >"$MNT/ours"
    chmod 751 "$MNT/ours"
    chown 2001:2002 "$MNT/ours"
    check_eq "our mode header" "33257" "$(meta_of ours mode)"
    check_eq "our uid header" "2001" "$(meta_of ours uid)"
    check_eq "our gid header" "2002" "$(meta_of ours gid)"
    check "our mtime header is a number" grep -Eq '^[0-9]+(\.[0-9]{9})?$' <<<"$(meta_of ours mtime)"
    mkdir "$MNT/ourdir"
    check_eq "our directory marker content type" "application/x-directory" \
        "$(aws_ s3api head-object --bucket "$BUCKET" --key ourdir/ --query ContentType --output text)"
}

run_cases "$@"
