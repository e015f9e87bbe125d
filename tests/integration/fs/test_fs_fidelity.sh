#!/bin/bash
# Nothing of an object is lost (README "What a change keeps"): chmod,
# chown, touch and setfattr on files and directory markers, mv, cp and data
# rewrites keep what another client put on the object: its x-amz-meta-*
# fields, Content-Type, Cache-Control, Content-Disposition,
# Content-Encoding, Content-Language, Expires, storage class and tags; the
# same above the copy threshold, where the copy is a multipart one. Checked
# through the mount and through the S3 API.
. "$(dirname "$0")/lib.sh"
fs_setup

# ---- what this server can exercise ----
echo probe >"$WORK/probe"
IA=STANDARD
if aws_ s3api put-object --bucket "$BUCKET" --key .probe-ia --body "$WORK/probe" \
    --storage-class STANDARD_IA >/dev/null 2>&1 &&
    [ "$(aws_ s3api head-object --bucket "$BUCKET" --key .probe-ia --query StorageClass \
        --output text)" == STANDARD_IA ]; then
    IA=STANDARD_IA
else
    echo "note: the server has no STANDARD_IA storage class: storage classes NOT exercised"
fi
aws_ s3 rm --quiet "s3://$BUCKET/.probe-ia" 2>/dev/null
if aws_ s3api put-object --bucket "$BUCKET" --key .probe-sse --body "$WORK/probe" \
    --server-side-encryption AES256 >/dev/null 2>&1; then
    echo "note: the server accepts SSE-S3; encryption headers are carried but not checked here"
    aws_ s3 rm --quiet "s3://$BUCKET/.probe-sse"
else
    echo "note: the server refuses SSE (radosgw: no KMS, plain HTTP): encryption NOT exercised"
fi
# ---- a rich object, and what must stay of it ----
# One Python process (botocore, which the aws CLI runs on) for many
# objects: an aws CLI call costs about a second here.
rich() { # put STORAGE_CLASS FILE KEY... | show KEY...
    python3 - "$@" <<'PYEOF'
import datetime, os, sys
import botocore.session
s3 = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1")
b = os.environ["BUCKET"]
if sys.argv[1] == "put":
    body = open(sys.argv[3], "rb").read()
    for key in sys.argv[4:]:
        s3.put_object(Bucket=b, Key=key, Body=body, Metadata={"foreign": "keepme", "other": "Two"},
                      ContentType="text/x-test", CacheControl="max-age=60",
                      ContentDisposition='attachment; filename="r.txt"', ContentEncoding="identity",
                      ContentLanguage="de", Expires=datetime.datetime(2030, 1, 1),
                      Tagging="team=blue&env=test", StorageClass=sys.argv[2])
    sys.exit(0)
for key in sys.argv[2:]:
    try:
        h = s3.head_object(Bucket=b, Key=key)
        t = s3.get_object_tagging(Bucket=b, Key=key).get("TagSet", [])
    except Exception as e:
        print(f"{key}\terror {e}")
        continue
    hh = h["ResponseMetadata"]["HTTPHeaders"]
    f = [h["Metadata"].get("foreign"), h["Metadata"].get("other"), h.get("ContentType"),
         h.get("CacheControl"), h.get("ContentDisposition"), h.get("ContentEncoding"),
         h.get("ContentLanguage"), hh.get("expires"), h.get("StorageClass", "STANDARD"),
         ",".join(sorted(f"{x['Key']}={x['Value']}" for x in t))]
    m = h["Metadata"]
    own = [m.get(x, "-") for x in ("mode", "uid", "gid", "mtime")] + [h["ETag"].strip('"')]
    print(key + "\t" + "|".join(x if x else "-" for x in f) + "\t" + " ".join(own))
PYEOF
}
export BUCKET
declare -A RICH OWN
# read what S3 has on the keys: RICH[key] the fields of WANT, OWN[key]
# "mode uid gid mtime etag"
rich_load() {
    local k v o
    while IFS=$'\t' read -r k v o; do RICH[$k]=$v OWN[$k]=$o; done < <(rich show "$@")
}
own_of() { cut -d' ' -f"$2" <<<"${OWN[$1]}"; } # KEY FIELD(1-5)
WANT="keepme|Two|text/x-test|max-age=60|attachment; filename=\"r.txt\"|identity|de"
WANT="$WANT|Tue, 01 Jan 2030 00:00:00 GMT|$IA|env=test,team=blue"

# rich_setup FILE KEY...: the rich objects KEY... holding FILE, checked in
# S3, and the mounts' caches of the top directory expired
rich_setup() {
    rich put "$IA" "$@"
    rich_load "$2"
    check_eq "setup: S3 has the rich object" "$WANT" "${RICH[$2]}"
    sleep 1.5 # only lets time pass: past attr_ttl
}
small=$WORK/small
printf 'hello %.0s' {1..50} >"$small"

# ---- metadata changes: a copy onto itself with REPLACE ----
case_metadata_changes_keep_all() {
    local k
    aws_ s3api put-object --bucket "$BUCKET" --key d/ --content-type application/x-directory \
        --metadata foreign=keepme,other=Two --cache-control max-age=60 \
        --tagging 'team=blue&env=test' >/dev/null
    rich_setup "$small" f-chmod f-chown f-touch f-xattr
    chmod 600 f-chmod
    chown 1234:5678 f-chown
    touch -m -d '2020-01-02 03:04:05' f-touch
    setfattr -n user.k -v v1 f-xattr
    chmod 700 d
    landed
    rich_load f-chmod f-chown f-touch f-xattr d/
    for k in chmod chown touch xattr; do
        check_eq "$k keeps every header, the metadata and the tags" "$WANT" "${RICH[f-$k]}"
    done
    check_eq "chmod through the mount" "600" "$(stat -c %a f-chmod)"
    check_eq "chmod in S3" "33152" "$(own_of f-chmod 1)"
    check_eq "chown in S3" "1234 5678" "$(own_of f-chown 2-3)"
    check_eq "touch in S3" "$(date -d '2020-01-02 03:04:05' +%s)" "$(own_of f-touch 4)"
    check_eq "setfattr through the mount" "v1" "$(getfattr --only-values -n user.k f-xattr)"
    check_eq "the content is untouched" "$(cat "$small")" "$(cat f-chmod)"
    check_eq "chmod of a directory marker keeps its headers and tags" \
        "keepme|Two|application/x-directory|max-age=60|env=test,team=blue" \
        "$(cut -d'|' -f1-4,10 <<<"${RICH[d/]}")"
    check_eq "chmod of a directory marker through the mount" "700" "$(stat -c %a d)"
}

# ---- mv (copy + delete) and cp (a new object) ----
case_mv_cp_keep_all() {
    rich_setup "$small" f-mv f-cp
    mv f-mv g-mv
    cp f-cp g-cp
    landed
    rich_load g-mv g-cp f-mv
    check_eq "mv keeps everything" "$WANT" "${RICH[g-mv]}"
    check_eq "mv removed the source" "error" "$(cut -d' ' -f1 <<<"${RICH[f-mv]}")"
    check_eq "cp keeps the content headers, other metadata, storage class and tags" \
        "$WANT" "${RICH[g-cp]}"
    check "cp: the copy's content" same_in_s3 g-cp "$small"
}

# ---- a data rewrite (PUT of the new content) ----
case_rewrite_keeps_all() {
    rich_setup "$small" f-append
    echo more >>f-append
    landed
    rich_load f-append
    check_eq "append keeps every header, the metadata and the tags" "$WANT" "${RICH[f-append]}"
    check_eq "append through the mount" "hello more" "$(tail -c 11 f-append)"
}

# ---- above the copy threshold: multipart copies ----
case_multipart_copies_keep_all() {
    local mnt2=$WORK/mnt2 big=$WORK/big # above mnt2's copy threshold: 2 parts
    # a second mount of the bucket whose copies are multipart from 5 MiB on
    mount_fs "$mnt2" "$BUCKET" -o copy_threshold=5,copy_part_size=5 ||
        { bad "the mount with copy_threshold=5"; return; }
    head -c $((6 * 1024 * 1024 + 4096)) /dev/urandom >"$big"
    rich_setup "$big" b-chmod b-xattr b-mv b-cp
    cd "$mnt2" || { bad "cd $mnt2"; return; }
    chmod 640 b-chmod
    setfattr -n user.k -v big b-xattr
    mv b-mv bg-mv
    cp b-cp bg-cp
    landed "$mnt2"
    rich_load b-chmod b-xattr bg-mv bg-cp
    check_eq "large chmod keeps everything" "$WANT" "${RICH[b-chmod]}"
    check_eq "large chmod was a multipart copy" "-2" "$(own_of b-chmod 5 | grep -o -- '-[0-9]*$')"
    check_eq "large chmod in S3" "33184" "$(own_of b-chmod 1)"
    check "large chmod: the content" same_in_s3 b-chmod "$big"
    check_eq "large setfattr keeps everything" "$WANT" "${RICH[b-xattr]}"
    check_eq "large setfattr through the mount" "big" "$(getfattr --only-values -n user.k b-xattr)"
    check_eq "large mv keeps everything" "$WANT" "${RICH[bg-mv]}"
    check "large mv: the content" same_in_s3 bg-mv "$big"
    check_eq "large cp keeps everything" "$WANT" "${RICH[bg-cp]}"
    check "large cp: the content" same_in_s3 bg-cp "$big"
    unmount_fs "$mnt2"
}

run_cases "$@"
