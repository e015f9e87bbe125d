#!/bin/bash
# The all-buckets root, a prefix mount, and the pre-mount checks with bad
# input: each gets a clear one-line error and a non-zero exit.
. "$(dirname "$0")/lib.sh"
trap fs_cleanup EXIT
B1=$(new_bucket)
B2=$(new_bucket)
echo one | aws_ s3 cp --quiet - "s3://$B1/x/one"
echo two | aws_ s3 cp --quiet - "s3://$B2/two"
start_proxy
# the all-buckets root, shared by the cases that only read and copy
ROOT=$WORK/all
mount_fs "$ROOT" || exit 2
# credentials in a file, mode 600 (each case that changes it writes its own)
passwd_file() { # FILE SECRET
    printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$2" >"$1"
    chmod 600 "$1"
}

case_root_lists_buckets() {
    check "root lists bucket 1" test -d "$ROOT/$B1"
    check "root lists bucket 2" test -d "$ROOT/$B2"
    check_eq "a file in bucket 1" "one" "$(cat "$ROOT/$B1/x/one")"
    check_eq "a file in bucket 2" "two" "$(cat "$ROOT/$B2/two")"
    check "ls of the root" sh -c "ls '$ROOT' | grep -qx '$B1'"
    check_not "a name that is no bucket" test -e "$ROOT/no-such-bucket-$$"
}

case_copy_across_buckets() {
    cp "$ROOT/$B1/x/one" "$ROOT/$B2/copied"
    landed "$ROOT/$B2"
    check_eq "copy across buckets" "one" "$(aws_ s3 cp --quiet "s3://$B2/copied" -)"
}

# sync of the all-buckets root waits for every queued job (slow copies)
case_root_sync_waits_for_copies() {
    local root=$WORK/all-proxied i
    proxy_config "delay.CopyObject=500"
    mount_fs "$root" -o "endpoint=$PROXY" || { bad "mount through the proxy"; return 1; }
    mkdir "$root/$B1/tree"
    for i in $(seq 1 20); do echo "f$i" >"$root/$B1/tree/f$i"; done
    cp -r "$root/$B1/tree" "$root/$B2/tree-copy"
    sync "$root"
    check_eq "sync of the root: every cross-bucket copy landed" 20 \
        "$(aws_ s3api list-objects-v2 --bucket "$B2" --prefix tree-copy/f --query 'length(Contents || `[]`)')"
    proxy_config "delay.CopyObject=-1"
    unmount_fs "$root"
}

case_prefix_mount() {
    local pfx=$WORK/pfx
    mount_fs "$pfx" "$B1:/x" || { bad "prefix mount"; return 1; }
    check_eq "prefix mount shows the prefix's content" "one" "$(cat "$pfx/one")"
    echo new >"$pfx/added"
    check_eq "written under the prefix" "new" "$(aws_ s3 cp --quiet "s3://$B1/x/added" -)"
    unmount_fs "$pfx"
}

# bad input at mount time
case_wrong_secret() {
    local bad=$WORK/bad-secret out rc
    mkdir -p "$bad"
    out=$(AWS_SECRET_ACCESS_KEY=wrong timeout 60 "$S3CFS_BIN" -o "endpoint=$S3_ENDPOINT" "$B1" "$bad" 2>&1)
    rc=$?
    check "wrong secret: non-zero exit" test $rc -ne 0
    check "wrong secret: says SignatureDoesNotMatch" grep -q SignatureDoesNotMatch <<<"$out"
    check_not "wrong secret: nothing mounted" mountpoint -q "$bad"
}

case_unknown_bucket() {
    local bad=$WORK/bad-bucket out rc
    mkdir -p "$bad"
    out=$(timeout 60 "$S3CFS_BIN" -o "endpoint=$S3_ENDPOINT" "no-such-bucket-$$" "$bad" 2>&1)
    rc=$?
    check "unknown bucket: non-zero exit" test $rc -ne 0
    check "unknown bucket: says so" grep -q "does not exist" <<<"$out"
}

case_unreachable_endpoint() {
    local bad=$WORK/bad-endpoint out rc port start
    mkdir -p "$bad"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    start=$(date +%s)
    out=$(timeout 120 "$S3CFS_BIN" -o "endpoint=http://127.0.0.1:$port" "$B1" "$bad" 2>&1)
    rc=$?
    check "unreachable endpoint: non-zero exit" test $rc -ne 0
    check "unreachable endpoint: says cannot reach" grep -q "cannot reach" <<<"$out"
    check "unreachable endpoint: gives up within a minute" test $(($(date +%s) - start)) -lt 60
}

case_passwd_file_mode() {
    local bad=$WORK/bad-passwd pw=$WORK/passwd-mode out rc
    mkdir -p "$bad"
    passwd_file "$pw" "$AWS_SECRET_ACCESS_KEY"
    chmod 644 "$pw"
    out=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY timeout 60 "$S3CFS_BIN" \
        -o "endpoint=$S3_ENDPOINT,passwd_file=$pw" "$B1" "$bad" 2>&1)
    rc=$?
    check "world-readable passwd file: refused" test $rc -ne 0
    check "world-readable passwd file: says chmod 600" grep -q "chmod 600" <<<"$out"
    chmod 600 "$pw"
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
        "$S3CFS_BIN" -o "endpoint=$S3_ENDPOINT,passwd_file=$pw" "$B1" "$bad" 2>&1
    check "passwd file with mode 600: mounts" mountpoint -q "$bad"
    fusermount3 -u "$bad"
}

# SIGHUP reads the credentials again: a wrong secret in the passwd file
# makes new requests fail once re-read, the right one makes them work again
hup_count() { grep -c "SIGHUP: credentials read again" "$WORK/s3cfs.log"; }
hup_count_above() { [ "$(hup_count)" -gt "$1" ]; }
case_sighup_rereads_credentials() {
    local dir=$WORK/hup pw=$WORK/passwd-hup pid n
    passwd_file "$pw" "$AWS_SECRET_ACCESS_KEY"
    mount_fs "$dir" -o "endpoint=$S3_ENDPOINT,passwd_file=$pw,attr_ttl=0,negative_ttl=0" "$B1" ||
        { bad "mount with a passwd file"; return 1; }
    pid=$(mount_pid "$dir")
    check "SIGHUP mount: works" test -d "$dir"
    passwd_file "$pw" "wrong-secret"
    n=$(hup_count)
    kill -HUP "$pid"
    wait_until 10 hup_count_above "$n"
    check_not "after SIGHUP with a wrong secret: a new request fails" stat "$dir/hup-probe-1"
    check "the daemon said so" hup_count_above "$n"
    passwd_file "$pw" "$AWS_SECRET_ACCESS_KEY"
    n=$(hup_count)
    kill -HUP "$pid"
    wait_until 10 hup_count_above "$n"
    echo hup >"$dir/hup-ok"
    check_eq "after SIGHUP with the right secret: writes again" "hup" "$(aws_ s3 cp --quiet "s3://$B1/hup-ok" -)"
    check "SIGHUP did not unmount" mountpoint -q "$dir"
    unmount_fs "$dir"
}

# logging: debug names every S3 request and its result, never a secret
case_debug_log() {
    local dbg=$WORK/dbg
    mount_fs "$dbg" -o "endpoint=$S3_ENDPOINT,log_level=debug" "$B1" || { bad "debug mount"; return 1; }
    ls "$dbg" >/dev/null
    echo logged >"$dbg/dbg-file"
    cat "$dbg/dbg-file" >/dev/null
    unmount_fs "$dbg"
    check "debug log: names requests and their results" grep -qE "PUT [^ ]*/dbg-file -> 200" \
        "$WORK/s3cfs.log"
    check_not "debug log: never the secret key" grep -qF "$AWS_SECRET_ACCESS_KEY" "$WORK/s3cfs.log"
    check_not "debug log: never a signature" grep -q "Signature=" "$WORK/s3cfs.log"
}

run_cases "$@"
