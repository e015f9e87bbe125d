#!/bin/bash
# Conditional requests (README "Conditional requests"):
#  1. the mount-time probe reports what the server really does: each
#     condition is tried here directly with boto3 (not with s3cfs's code)
#     and the mount's claim (s3cfs-ctl status) must match it;
#  2. against the real server (radosgw honours If-None-Match on PutObject):
#     an O_EXCL create that another client won fails with EEXIST at close
#     and at fsync, and the other client's object stays;
#  3. through the fault proxy, which answers 412 to the probe's requests (so
#     the mount believes the server honours everything) and then to one
#     chosen request of each conditional kind: O_EXCL create (PutObject and
#     CompleteMultipartUpload), RENAME_NOREPLACE (CopyObject), a move's
#     source delete (DeleteObjects per-key ETag, and DeleteObject If-Match
#     on a mount whose probe saw only that one honoured).
#
# The cases share one bucket, the server's answers (asked once, at the top)
# and the proxy. They use three mounts of the bucket, one at a time: on the
# server directly ($MNT, sections 1 and 2), through the proxy with every
# probe request answered 412 ($PM) and with only DeleteObject's ($PM2). A
# case mounts the one it needs and unmounts the others (real_mount,
# proxied_mount, proxied_mount2), unless it is mounted already: alone, a
# case makes its own mount; the whole script mounts each once, in order.
. "$(dirname "$0")/lib.sh"
CTL=${S3CFS_CTL:-$(dirname "$S3CFS_BIN")/s3cfs-ctl}
[ -x "$CTL" ] || { echo "no s3cfs-ctl next to $S3CFS_BIN" >&2; exit 2; }
trap fs_cleanup EXIT
BUCKET=$(new_bucket)
export WORK

conditions() { "$CTL" status --raw "$1" | sed -n 's/^conditions //p'; }
state_of() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
# through the S3 API (s3c: the AWS CLI starts slowly)
in_s3() { s3c head "$BUCKET" "$1" >/dev/null 2>&1; }
body_of() { s3c get "$BUCKET" "$1" - 2>/dev/null; }
uploads_of() {
    aws_ s3api list-multipart-uploads --bucket "$BUCKET" --prefix "$1" \
        --query 'length(Uploads || `[]`)' --output text
}

# ---- 1. the probe against the real server ----

# What the server does with each condition, asked directly: honoured (412
# and nothing changed), ignored (the request ran), rejected (another 4xx).
python3 - "$S3_ENDPOINT" "$BUCKET" >"$WORK/truth" <<'PYEOF'
import sys
import boto3
from botocore.exceptions import ClientError

ep, b = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1")
WRONG = '"00000000000000000000000000000000"'

def put(k, v):
    return s3.put_object(Bucket=b, Key=k, Body=v)["ETag"]

def body(k):
    try:
        return s3.get_object(Bucket=b, Key=k)["Body"].read()
    except ClientError:
        return None

def judge(call, key, before):
    try:
        call()
    except ClientError as e:
        st = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if st == 412:
            return "honoured" if body(key) == before else "412-but-changed"
        return "rejected" if 400 <= st < 500 else "unknown"
    return "ignored"

out = {}
put("t-a", b"a")
put("t-b", b"b")
out["put-if-none-match"] = judge(
    lambda: s3.put_object(Bucket=b, Key="t-a", Body=b"x", IfNoneMatch="*"), "t-a", b"a")
put("t-a", b"a")
up = s3.create_multipart_upload(Bucket=b, Key="t-a")["UploadId"]
pe = s3.upload_part(Bucket=b, Key="t-a", UploadId=up, PartNumber=1, Body=b"m")["ETag"]
out["complete-if-none-match"] = judge(
    lambda: s3.complete_multipart_upload(
        Bucket=b, Key="t-a", UploadId=up, IfNoneMatch="*",
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": pe}]}), "t-a", b"a")
try:
    s3.abort_multipart_upload(Bucket=b, Key="t-a", UploadId=up)
except ClientError:
    pass
put("t-a", b"a")
out["copy-if-none-match"] = judge(
    lambda: s3.copy_object(Bucket=b, Key="t-a", CopySource={"Bucket": b, "Key": "t-b"},
                           IfNoneMatch="*"), "t-a", b"a")
put("t-a", b"a")
put("t-b", b"b")
out["delete-if-match"] = judge(lambda: s3.delete_object(Bucket=b, Key="t-a", IfMatch=WRONG),
                               "t-a", b"a")
put("t-a", b"a")
r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "t-a", "ETag": WRONG}]})
errs = r.get("Errors", [])
out["delete-objects-etag"] = ("ignored" if not errs and body("t-a") is None else
                              "honoured" if errs and errs[0]["Code"] == "PreconditionFailed" and
                              body("t-a") == b"a" else "rejected")
put("t-a", b"a")
out["copy-source-if-match"] = judge(
    lambda: s3.copy_object(Bucket=b, Key="t-b", CopySource={"Bucket": b, "Key": "t-a"},
                           CopySourceIfMatch=WRONG), "t-b", body("t-b"))
put("t-b", b"b")

# radosgw's own spelling, which boto3 does not know: added before signing
def legacy(request, **kw):
    request.headers["x-amz-copy-if-match"] = WRONG
s3.meta.events.register("before-sign.s3.CopyObject", legacy)
out["copy-if-match-legacy"] = judge(
    lambda: s3.copy_object(Bucket=b, Key="t-b", CopySource={"Bucket": b, "Key": "t-a"}),
    "t-b", b"b")
s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "t-a"}, {"Key": "t-b"}]})
print(" ".join("%s=%s" % kv for kv in out.items()))
PYEOF
TRUTH=$(cat "$WORK/truth")
echo "the server, asked directly: $TRUTH"

start_proxy
MNT=$WORK/mnt
PM=$WORK/pmnt
PM2=$WORK/pmnt2
PROBE_412="fail412_kinds=PutObject,CompleteMultipartUpload,CopyObject,DeleteObject,DeleteObjects"
PROBE_412="$PROBE_412&fail412_keys=.s3cfs-probe-&fail412_header=if-none-match,if-match"

# only_mounted DIR: unmount the script's other mounts; succeeds when DIR is
# mounted already
only_mounted() {
    local d
    for d in "$MNT" "$PM" "$PM2"; do
        [ "$d" != "$1" ] && mountpoint -q "$d" && unmount_fs "$d"
    done
    mountpoint -q "$1"
}
# mount_on DIR OPTS: the bucket on DIR, with OPTS
mount_on() { mount_fs "$1" "$BUCKET" -o "$2" || { bad "cannot mount $BUCKET on $1"; return 1; }; }

# the mount on the server itself; CLAIM: what its probe says
real_mount() {
    only_mounted "$MNT" && return
    mount_on "$MNT" "journal_dir=$WORK/journal,log_level=info" || return 1
    CLAIM=$(conditions "$MNT")
    echo "the mount's probe:          $CLAIM"
}
# through the proxy, which answers 412 to the probe's requests: the mount
# believes the server honours everything; PCLAIM: what its probe says
proxied_mount() {
    only_mounted "$PM" && return
    proxy_config "$PROBE_412&fail412_count=5"
    mount_on "$PM" "endpoint=$PROXY,journal_dir=$WORK/pjournal,multipart_threshold=5,part_size=5" ||
        return 1
    PCLAIM=$(conditions "$PM")
    echo "the mount's probe through the proxy: $PCLAIM"
}
# a server that honours If-Match on DeleteObject only: conditional deletes
# go one by one; PCLAIM2: what its probe says
proxied_mount2() {
    only_mounted "$PM2" && return
    proxy_config "fail412_kinds=DeleteObject&fail412_keys=.s3cfs-probe-&fail412_header=if-match&fail412_count=1"
    mount_on "$PM2" "endpoint=$PROXY,journal_dir=$WORK/pjournal2" || return 1
    PCLAIM2=$(conditions "$PM2")
}

case_probe_as_server_does() {
    local k
    real_mount || return
    for k in put-if-none-match complete-if-none-match copy-if-none-match delete-if-match \
        delete-objects-etag copy-source-if-match copy-if-match-legacy; do
        check_eq "probe: $k as the server does it" "$(state_of "$TRUTH" "$k")" \
            "$(state_of "$CLAIM" "$k")"
    done
    check "the daemon logged the probe in one line" \
        grep -q "conditional requests honoured by .*put-if-none-match=" "$WORK/s3cfs.log"
    check_eq "the probe's scratch keys are gone" "" \
        "$(s3c ls "$BUCKET" | grep -o 's3cfs-probe[^[:space:]]*')"
    check_eq "the probe left no multipart upload" 0 "$(uploads_of .s3cfs-probe)"
}

# ---- 2. O_EXCL against the real server ----

# open O_EXCL, write, let another client create the key, then fsync or
# close: prints the errno names (or "ok"). The other client runs from this
# shell while python waits: a fork of the process holding the descriptor
# would close it in the child, and a FUSE flush would upload at once.
excl_race() { # PATH KEY WHEN(close|fsync|none) TEXT
    rm -f "$WORK/ready" "$WORK/go"
    python3 - "$1" "$3" "$4" "$WORK" >"$WORK/race.out" <<'PYEOF' &
import errno, os, sys, time
path, when, text, work = sys.argv[1:5]
fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.write(fd, text.encode())
open(work + "/ready", "w").close()
for _ in range(1200):
    if os.path.exists(work + "/go"):
        break
    time.sleep(0.05)
res = []
try:
    if when == "fsync":
        os.fsync(fd)
        res.append("fsync ok")
except OSError as e:
    res.append("fsync " + errno.errorcode[e.errno])
try:
    os.close(fd)
    res.append("close ok")
except OSError as e:
    res.append("close " + errno.errorcode[e.errno])
print(" ".join(res))
PYEOF
    local py=$!
    wait_until 30 test -e "$WORK/ready"
    if [ "$3" != none ]; then
        echo "the other client's" >"$WORK/other"
        s3c put "$BUCKET" "$2" "$WORK/other" >/dev/null
    fi
    touch "$WORK/go"
    wait $py
    cat "$WORK/race.out"
}

# the mount on the server, when the server honours If-None-Match on
# PutObject (else O_EXCL is checked through the proxy only)
real_excl() {
    real_mount || return 1
    [ "$(state_of "$CLAIM" put-if-none-match)" = honoured ] && return
    echo "the server ignores If-None-Match on PutObject: O_EXCL is checked through the proxy only"
    return 1
}

case_excl_alone_lands() {
    real_excl || return
    check_eq "O_EXCL create, no one else: lands" "close ok" "$(excl_race "$MNT/ex0" ex0 none mine)"
    check_eq "O_EXCL create, no one else: the content in S3" "mine" "$(body_of ex0)"
}

case_excl_lost_at_close() {
    real_excl || return
    check_eq "O_EXCL create another client won: close fails with EEXIST" "close EEXIST" \
        "$(excl_race "$MNT/ex1" ex1 close mine)"
    check_eq "... and the other client's object stays" "the other client's" "$(body_of ex1)"
    check_eq "... and the mount shows it" "the other client's" "$(cat "$MNT/ex1")"
    check "the log names the lost create" grep -q "ex1: created with O_EXCL" "$WORK/s3cfs.log"
}

case_excl_lost_at_fsync() {
    real_excl || return
    check_eq "O_EXCL create another client won: fsync fails with EEXIST, and close again" \
        "fsync EEXIST close EEXIST" "$(excl_race "$MNT/ex2" ex2 fsync mine)"
    check_eq "... and the other client's object stays" "the other client's" "$(body_of ex2)"
}

# ---- 3. injected 412s, through the proxy ----

# arm one 412 for KIND on keys containing KEY, carrying HEADER
arm() { proxy_config "fail412_kinds=$1&fail412_keys=$2&fail412_header=$3&fail412_count=1"; }
left() { curl -s "$PROXY/__proxy/config" | awk '$1=="fail412_count"{print $2}'; }
field_of() { curl -s "$PROXY/__proxy/stats" | awk -v k="$1" '$1==k{print $2}'; }

case_proxied_probe_sees_412s() {
    local k
    proxied_mount || return
    for k in put-if-none-match complete-if-none-match copy-if-none-match delete-if-match \
        delete-objects-etag; do
        check_eq "probe through the proxy: $k seen honoured" honoured "$(state_of "$PCLAIM" "$k")"
    done
    check_eq "probe through the proxy: copy-source-if-match as the server does it" \
        "$(state_of "$TRUTH" copy-source-if-match)" "$(state_of "$PCLAIM" copy-source-if-match)"
}

# a plain create of px1 through PM (for wait_until)
create_px1() { echo again >"$PM/px1"; }

case_excl_put_412() {
    proxied_mount || return
    arm PutObject px1 if-none-match
    check_eq "proxied O_EXCL create, PutObject 412: close fails with EEXIST" "close EEXIST" \
        "$(excl_race "$PM/px1" px1 none mine)"
    check_eq "... the 412 was given" 0 "$(left)"
    check_not "... nothing was written" in_s3 px1
    # the kernel keeps the created name for attr_ttl (1 s here): until then an
    # open finds no object behind it (ENOENT), as after any delete elsewhere
    wait_until 10 create_px1
    check_eq "a plain create of the same name afterwards is not conditional: lands" "" \
        "$(echo again >"$PM/px1" 2>&1)"
    check_eq "... in S3" again "$(body_of px1)"
}

case_excl_multipart_412() {
    local out
    proxied_mount || return
    head -c 7000000 /dev/urandom >"$WORK/big"
    arm CompleteMultipartUpload px2 if-none-match
    out=$(python3 -c '
import errno, os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.write(fd, open(sys.argv[2], "rb").read())
try:
    os.close(fd); print("close ok")
except OSError as e:
    print("close " + errno.errorcode[e.errno])' "$PM/px2" "$WORK/big")
    check_eq "proxied O_EXCL multipart create, Complete 412: close fails with EEXIST" "close EEXIST" \
        "$out"
    check_eq "... the 412 was given" 0 "$(left)"
    check_not "... nothing was written" in_s3 px2
    check_eq "... and the upload was aborted" 0 "$(uploads_of px2)"
}

case_noreplace_copy_412() {
    proxied_mount || return
    echo "source" >"$PM/mv1"
    landed "$PM"
    arm CopyObject px3 if-none-match
    mv "$PM/mv1" "$PM/px3" # coreutils mv: renameat2(RENAME_NOREPLACE)
    check_err "RENAME_NOREPLACE, CopyObject 412: the next fsync of the directory reports it" \
        "Stale file handle" sync "$PM"
    check_eq "... the 412 was given" 0 "$(left)"
    check_eq "... the source stays in S3" source "$(body_of mv1)"
    check_not "... the destination was not written" in_s3 px3
    check "... s3cfs-ctl errors lists the copy" bash -c "'$CTL' errors '$PM' | grep -q px3"
    check_eq "... the mount shows the source again" source "$(cat "$PM/mv1" 2>&1)"
}

case_move_delete_objects_412() {
    proxied_mount || return
    echo "moved" >"$PM/px4"
    landed "$PM"
    arm DeleteObjects px4 ""
    mv "$PM/px4" "$PM/dst4"
    check "a move whose source delete got PreconditionFailed: fsync of the directory succeeds" \
        sync "$PM"
    check_eq "... the 412 was given" 0 "$(left)"
    check_eq "... the destination landed" moved "$(body_of dst4)"
    check_eq "... the source (another client's object) stays in S3" moved "$(body_of px4)"
    check "... s3cfs-ctl errors lists it as kept" \
        bash -c "'$CTL' errors '$PM' | grep px4 | grep -q kept"
    check_eq "... the mount shows the source again" moved "$(cat "$PM/px4" 2>&1)"
}

case_probe_delete_if_match_only() {
    proxied_mount2 || return
    check_eq "probe: only delete-if-match seen honoured" "honoured ignored" \
        "$(state_of "$PCLAIM2" delete-if-match) $(state_of "$PCLAIM2" delete-objects-etag)"
}

case_move_delete_object_412() {
    proxied_mount2 || return
    echo "moved" >"$PM2/px5"
    landed "$PM2"
    proxy_reset
    arm DeleteObject px5 if-match
    mv "$PM2/px5" "$PM2/dst5"
    check "a move whose DeleteObject If-Match got 412: fsync of the directory succeeds" sync "$PM2"
    check_eq "... the 412 was given" 0 "$(left)"
    check_eq "... the delete went alone, not in a DeleteObjects" 0 "$(proxy_count DeleteObjects)"
    check_eq "... the destination landed" moved "$(body_of dst5)"
    check_eq "... the source stays in S3" moved "$(body_of px5)"
    check "... s3cfs-ctl errors lists it as kept" \
        bash -c "'$CTL' errors '$PM2' | grep px5 | grep -q kept"
}

# an O_EXCL create whose PutObject landed but whose answer was lost (the
# proxy resets the connection after the server answered): the retry meets
# the object, 412, and must recognise it as its own. At a rate of 0.25,
# all 20 first attempts pass with p = 0.3%; 8 resets in a row (the
# client gives up) have p = 0.002% per file
case_excl_lost_answer_retried() {
    local i r lost=0
    proxied_mount2 || return
    proxy_config "fail412_count=0&faults=reset&fault_kinds=PutObject&fault_rate=0.25"
    proxy_reset
    for i in $(seq 1 20); do
        r=$(excl_race "$PM2/rs$i" rs$i none "retried $i")
        [ "$r" = "close ok" ] && [ "$(body_of rs$i)" = "retried $i" ] || { lost=$((lost + 1)); echo "rs$i: $r, in S3: $(body_of rs$i)"; }
    done
    proxy_config "fault_rate=0"
    check "answers were lost (the proxy reset PutObjects)" [ "$(field_of fault.reset)" -gt 0 ]
    check_eq "O_EXCL creates whose answer was lost: every close succeeds, content in S3" 0 "$lost"
}

# without an injected failure the conditional delete removes the source
case_move_conditional_delete_holds() {
    proxied_mount2 || return
    echo "moved" >"$PM2/px6"
    landed "$PM2"
    mv "$PM2/px6" "$PM2/dst6"
    landed "$PM2"
    check_not "a move with a conditional DeleteObject that holds: the source is gone" in_s3 px6
    check_eq "... the destination landed" moved "$(body_of dst6)"
}

run_cases "$@"
