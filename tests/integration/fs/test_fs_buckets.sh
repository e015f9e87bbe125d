#!/bin/bash
# The all-buckets root, a prefix mount, and the pre-mount checks with bad
# input: each gets a clear one-line error and a non-zero exit.
. "$(dirname "$0")/lib.sh"
trap fs_cleanup EXIT
B1=$(new_bucket)
B2=$(new_bucket)
echo one | aws_ s3 cp --quiet - "s3://$B1/x/one"
echo two | aws_ s3 cp --quiet - "s3://$B2/two"
ROOT=$WORK/all
mount_fs "$ROOT" || exit 2
check "root lists bucket 1" test -d "$ROOT/$B1"
check "root lists bucket 2" test -d "$ROOT/$B2"
check_eq "a file in bucket 1" "one" "$(cat "$ROOT/$B1/x/one")"
check_eq "a file in bucket 2" "two" "$(cat "$ROOT/$B2/two")"
check "ls of the root" sh -c "ls '$ROOT' | grep -qx '$B1'"
check_not "a name that is no bucket" test -e "$ROOT/no-such-bucket-$$"
cp "$ROOT/$B1/x/one" "$ROOT/$B2/copied"
landed "$ROOT/$B2"
check_eq "copy across buckets" "one" "$(aws_ s3 cp - - <<<"" >/dev/null 2>&1; aws_ s3 cp --quiet "s3://$B2/copied" -)"
unmount_fs "$ROOT"

# sync of the all-buckets root waits for every queued job (slow copies)
start_proxy
proxy_config "delay.CopyObject=500"
mount_fs "$ROOT" -o "endpoint=$PROXY" || exit 2
mkdir "$ROOT/$B1/tree"
for i in $(seq 1 20); do echo "f$i" >"$ROOT/$B1/tree/f$i"; done
cp -r "$ROOT/$B1/tree" "$ROOT/$B2/tree-copy"
sync "$ROOT"
check_eq "sync of the root: every cross-bucket copy landed" 20 \
    "$(aws_ s3api list-objects-v2 --bucket "$B2" --prefix tree-copy/f --query 'length(Contents || `[]`)')"
proxy_config "delay.CopyObject=-1"
unmount_fs "$ROOT"

PFX=$WORK/pfx
mount_fs "$PFX" "$B1:/x" || exit 2
check_eq "prefix mount shows the prefix's content" "one" "$(cat "$PFX/one")"
echo new >"$PFX/added"
check_eq "written under the prefix" "new" "$(aws_ s3 cp --quiet "s3://$B1/x/added" -)"
unmount_fs "$PFX"

# bad input at mount time
BAD=$WORK/bad
mkdir -p "$BAD"
out=$(AWS_SECRET_ACCESS_KEY=wrong timeout 60 "$S3CFS_BIN" -o "endpoint=$S3_ENDPOINT" "$B1" "$BAD" 2>&1)
rc=$?
check "wrong secret: non-zero exit" test $rc -ne 0
check "wrong secret: says SignatureDoesNotMatch" grep -q SignatureDoesNotMatch <<<"$out"
check_not "wrong secret: nothing mounted" mountpoint -q "$BAD"
out=$(timeout 60 "$S3CFS_BIN" -o "endpoint=$S3_ENDPOINT" "no-such-bucket-$$" "$BAD" 2>&1)
rc=$?
check "unknown bucket: non-zero exit" test $rc -ne 0
check "unknown bucket: says so" grep -q "does not exist" <<<"$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start=$(date +%s)
out=$(timeout 120 "$S3CFS_BIN" -o "endpoint=http://127.0.0.1:$port" "$B1" "$BAD" 2>&1)
rc=$?
check "unreachable endpoint: non-zero exit" test $rc -ne 0
check "unreachable endpoint: says cannot reach" grep -q "cannot reach" <<<"$out"
check "unreachable endpoint: gives up within a minute" test $(($(date +%s) - start)) -lt 60
printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$WORK/passwd"
chmod 644 "$WORK/passwd"
out=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY timeout 60 "$S3CFS_BIN" \
    -o "endpoint=$S3_ENDPOINT,passwd_file=$WORK/passwd" "$B1" "$BAD" 2>&1)
rc=$?
check "world-readable passwd file: refused" test $rc -ne 0
check "world-readable passwd file: says chmod 600" grep -q "chmod 600" <<<"$out"
chmod 600 "$WORK/passwd"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
    "$S3CFS_BIN" -o "endpoint=$S3_ENDPOINT,passwd_file=$WORK/passwd" "$B1" "$BAD" 2>&1
check "passwd file with mode 600: mounts" mountpoint -q "$BAD"
fusermount3 -u "$BAD"

# SIGHUP reads the credentials again: a wrong secret in the passwd file
# makes new requests fail once re-read, the right one makes them work again
mount_fs "$BAD" -o "endpoint=$S3_ENDPOINT,passwd_file=$WORK/passwd,attr_ttl=0,negative_ttl=0" "$B1"
hup_pid=${PIDS[$((${#PIDS[@]} - 1))]}
check "SIGHUP mount: works" test -d "$BAD"
printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "wrong-secret" >"$WORK/passwd"
kill -HUP "$hup_pid"
sleep 0.5
check_not "after SIGHUP with a wrong secret: a new request fails" stat "$BAD/hup-probe-1"
check "the daemon said so" grep -q "SIGHUP: credentials read again" "$WORK/s3cfs.log"
printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$WORK/passwd"
kill -HUP "$hup_pid"
sleep 0.5
echo hup >"$BAD/hup-ok"
check_eq "after SIGHUP with the right secret: writes again" "hup" "$(aws_ s3 cp --quiet "s3://$B1/hup-ok" -)"
check "SIGHUP did not unmount" mountpoint -q "$BAD"

# logging: debug names every S3 request and its result, never a secret
DBG=$WORK/dbg
mount_fs "$DBG" -o "endpoint=$S3_ENDPOINT,log_level=debug" "$B1"
ls "$DBG" >/dev/null
echo logged >"$DBG/dbg-file"
cat "$DBG/dbg-file" >/dev/null
unmount_fs "$DBG"
check "debug log: names requests and their results" grep -qE "PUT [^ ]*/dbg-file -> 200" \
    "$WORK/s3cfs.log"
check_not "debug log: never the secret key" grep -qF "$AWS_SECRET_ACCESS_KEY" "$WORK/s3cfs.log"
check_not "debug log: never a signature" grep -q "Signature=" "$WORK/s3cfs.log"
fs_done
