#!/bin/bash
# A hostile or broken server, and hostile bucket contents (issue 13 §4):
# answers rewritten by the proxy (an over-long ETag, a HEAD without or with a
# rubbish Content-Length, a flood of headers) give a clear error, never a
# truncated ETag or a 0-byte file; key names with control bytes reach neither
# the log nor s3cfs-ctl's output raw.
. "$(dirname "$0")/lib.sh"
CTL=${S3CFS_CTL:-$(dirname "$S3CFS_BIN")/s3cfs-ctl}
[ -x "$CTL" ] || { echo "no s3cfs-ctl next to $S3CFS_BIN" >&2; exit 2; }
trap fs_cleanup EXIT
BUCKET=$(new_bucket)
start_proxy
MNT=$WORK/mnt
mount_fs "$MNT" "$BUCKET" -o "endpoint=$PROXY,journal_dir=$WORK/journal" || exit 2
LOG=$WORK/s3cfs.log

# ---- headers: each answer rewritten on HEAD only; a fresh name each time,
# so the mount has nothing cached and must ask with a HEAD ----
echo "twelve bytes" >"$WORK/twelve"
hdr_case() { # hdr_case MANGLE LOG_TEXT
    local key=hdr-$1
    s3c put "$BUCKET" "$key" "$WORK/twelve" >/dev/null
    proxy_config "mangle=$1&mangle_kinds=HeadObject"
    stat -c %s "$MNT/$key" >"$WORK/stat.out" 2>&1
    local st=$?
    proxy_config "mangle=none"
    check_eq "$1: stat fails, no file of another size" "1" "$st"
    check "$1: the log says why" grep -q "$2" "$LOG"
    check_eq "$1: the same name once the server behaves" 13 "$(stat -c %s "$MNT/$key")"
}
hdr_case etag_long "ETag longer than 79 bytes"
hdr_case clen_missing "HEAD answer without a Content-Length"
hdr_case clen_invalid "Content-Length"
hdr_case meta_flood "response headers larger than 256 KiB"

# ---- control bytes in key names: escaped in the log and in s3cfs-ctl ----
ESC=$'\e'
NAME="red${ESC}[31mred"$'\n'"line"$'\r'"x"
echo data >"$MNT/plain"
landed
proxy_config "fault_rate=1&faults=500&fault_kinds=CopyObject"
cp "$MNT/plain" "$MNT/$NAME"
for _ in $(seq 1 600); do "$CTL" errors "$MNT" | grep -q 'red' && break; sleep 0.1; done
proxy_config "fault_rate=0"
"$CTL" errors "$MNT" >"$WORK/errors.out" 2>&1
check "errors names the key, escaped" grep -qF "$BUCKET/red\\x1b[31mred\\x0aline\\x0dx: " "$WORK/errors.out"
check_not "errors prints no raw control byte" grep -q "[$ESC"$'\r'"]" "$WORK/errors.out"
check_eq "errors: one line per failure" 1 "$(wc -l <"$WORK/errors.out")"
check "the log names the key, escaped" grep -qF 'red\x1b[31mred\x0aline\x0dx' "$LOG"
check_not "the log holds no raw control byte" grep -q "[$ESC"$'\r'"]" "$LOG"
rm -f "$MNT/$NAME"
fs_done
