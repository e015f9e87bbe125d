#!/bin/bash
# A read that waits for a queued copy onto its file, when that copy failed
# for good, reads the version the store holds (and the failure is reported
# by s3cfs-ctl errors and the next wait), through the real mount.
# The read's second path (after following a new version) once used a
# read-ahead the handle did not have yet and crashed the daemon.
. "$(dirname "$0")/lib.sh"
proxied_setup

# every CopyObject onto keys containing KEY fails with 412 (N times), each
# after DELAY ms, so a read started meanwhile waits for the queued copy
fail_copies() {
    proxy_config "fail412_kinds=CopyObject&fail412_keys=$1&fail412_header=&fail412_count=$2&delay.CopyObject=$3"
}

case_read_after_failed_copy() {
    echo old >rf_dst
    echo newer >rf_src
    landed
    fail_copies rf_dst 50 1500
    cp rf_src rf_dst
    check_eq "the read after the failed copy: the stored bytes" old "$(cat rf_dst 2>&1)"
    check "the daemon still serves" stat "$MNT"
    fail_copies none 0 -1
    check "s3cfs-ctl errors lists the failed copy" bash -c "'$CTL' errors '$MNT' | grep -q rf_dst"
    check_eq "in S3: the destination kept its bytes" old \
        "$(aws_ s3 cp --quiet "s3://$BUCKET/rf_dst" - 2>&1)"
}

run_cases "$@"
