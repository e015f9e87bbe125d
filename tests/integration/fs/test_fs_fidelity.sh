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
# a second mount of the bucket whose copies are multipart from 5 MiB on
MNT2=$WORK/mnt2
mount_fs "$MNT2" "$BUCKET" -o copy_threshold=5,copy_part_size=5 || exit 2

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
put_rich() { # KEY FILE
    aws_ s3api put-object --bucket "$BUCKET" --key "$1" --body "$2" \
        --metadata foreign=keepme,other=Two --content-type text/x-test \
        --cache-control max-age=60 --content-disposition 'attachment; filename="r.txt"' \
        --content-encoding identity --content-language de --expires 2030-01-01T00:00:00Z \
        --tagging 'team=blue&env=test' --storage-class "$IA" >/dev/null
}
WANT="keepme|Two|text/x-test|max-age=60|attachment; filename=\"r.txt\"|identity|de"
WANT="$WANT|Tue, 01 Jan 2030 00:00:00 GMT|$IA|env=test,team=blue"
# the fields of WANT as S3 now has them on KEY
rich_of() { # KEY
    local h t
    h=$(aws_ s3api head-object --bucket "$BUCKET" --key "$1" --output json) || return
    t=$(aws_ s3api get-object-tagging --bucket "$BUCKET" --key "$1" --output json |
        jq -r '[.TagSet[]? | "\(.Key)=\(.Value)"] | sort | join(",")')
    jq -r --arg t "$t" '[.Metadata.foreign, .Metadata.other, .ContentType, .CacheControl,
        .ContentDisposition, .ContentEncoding, .ContentLanguage, .ExpiresString,
        (.StorageClass // "STANDARD"), $t] | map(. // "-") | join("|")' <<<"$h"
}
etag_of() { aws_ s3api head-object --bucket "$BUCKET" --key "$1" --query ETag --output text; }
mode_of() { meta_of "$1" mode; }

small=$WORK/small
printf 'hello %.0s' {1..50} >"$small"
big=$WORK/big # above the second mount's copy threshold: 2 parts
head -c $((6 * 1024 * 1024 + 4096)) /dev/urandom >"$big"
for k in chmod chown touch xattr mv cp append; do put_rich "f-$k" "$small"; done
for k in chmod xattr mv cp; do put_rich "b-$k" "$big"; done
aws_ s3api put-object --bucket "$BUCKET" --key d/ --content-type application/x-directory \
    --metadata foreign=keepme,other=Two --cache-control max-age=60 \
    --tagging 'team=blue&env=test' >/dev/null
check_eq "setup: S3 has the rich object" "$WANT" "$(rich_of f-chmod)"
sleep 1.5 # past attr_ttl

# ---- metadata changes: a copy onto itself with REPLACE ----
cd "$MNT" || exit 2
chmod 600 f-chmod
chown 1234:5678 f-chown
touch -m -d '2020-01-02 03:04:05' f-touch
setfattr -n user.k -v v1 f-xattr
chmod 700 d
for k in chmod chown touch xattr; do
    check_eq "$k keeps every header, the metadata and the tags" "$WANT" "$(rich_of f-$k)"
done
check_eq "chmod through the mount" "600" "$(stat -c %a f-chmod)"
check_eq "chmod in S3" "33152" "$(mode_of f-chmod)"
check_eq "chown in S3" "1234:5678" "$(meta_of f-chown uid):$(meta_of f-chown gid)"
check_eq "touch in S3" "$(date -d '2020-01-02 03:04:05' +%s)" "$(meta_of f-touch mtime)"
check_eq "setfattr through the mount" "v1" "$(getfattr --only-values -n user.k f-xattr)"
check_eq "the content is untouched" "$(cat "$small")" "$(cat f-chmod)"
check_eq "chmod of a directory marker keeps its headers and tags" \
    "keepme|Two|application/x-directory|max-age=60|env=test,team=blue" \
    "$(rich_of d/ | cut -d'|' -f1-4,10)"
check_eq "chmod of a directory marker through the mount" "700" "$(stat -c %a d)"

# ---- mv (copy + delete) and cp (a new object) ----
mv f-mv g-mv
cp f-cp g-cp
landed
check_eq "mv keeps everything" "$WANT" "$(rich_of g-mv)"
check_not "mv removed the source" aws_ s3api head-object --bucket "$BUCKET" --key f-mv
check_eq "cp keeps the content headers, other metadata, storage class and tags" \
    "$WANT" "$(rich_of g-cp)"
check "cp: the copy's content" same_in_s3 g-cp "$small"

# ---- a data rewrite (PUT of the new content) ----
echo more >>f-append
check_eq "append keeps every header, the metadata and the tags" "$WANT" "$(rich_of f-append)"
check_eq "append through the mount" "hello more" "$(tail -c 11 f-append)"

# ---- above the copy threshold: multipart copies ----
cd "$MNT2" || exit 2
chmod 640 b-chmod
setfattr -n user.k -v big b-xattr
mv b-mv bg-mv
cp b-cp bg-cp
landed "$MNT2"
check_eq "large chmod keeps everything" "$WANT" "$(rich_of b-chmod)"
check_eq "large chmod was a multipart copy" "-2" "$(etag_of b-chmod | tr -d '"' | grep -o -- '-[0-9]*$')"
check_eq "large chmod in S3" "33184" "$(mode_of b-chmod)"
check "large chmod: the content" same_in_s3 b-chmod "$big"
check_eq "large setfattr keeps everything" "$WANT" "$(rich_of b-xattr)"
check_eq "large setfattr through the mount" "big" "$(getfattr --only-values -n user.k b-xattr)"
check_eq "large mv keeps everything" "$WANT" "$(rich_of bg-mv)"
check "large mv: the content" same_in_s3 bg-mv "$big"
check_eq "large cp keeps everything" "$WANT" "$(rich_of bg-cp)"
check "large cp: the content" same_in_s3 bg-cp "$big"

fs_done
