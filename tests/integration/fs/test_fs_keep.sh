#!/bin/bash
# Rewriting a file's data (append, pwrite, truncate, O_TRUNC, an editor's
# save) keeps what the object carries besides its bytes (doc/DESIGN.md §3.13):
# its user xattrs, other clients' x-amz-meta-* fields and its
# Content-Type; checked through the mount, after a remount and through S3.
. "$(dirname "$0")/lib.sh"
fs_setup

xattr_of() { getfattr --only-values -n user.k "$1" 2>/dev/null; }
ctype_of() { aws_ s3api head-object --bucket "$BUCKET" --key "$1" --query ContentType --output text; }

# user xattrs survive every kind of data rewrite, through the mount and, after
# a remount, in the stored object
case_xattrs_kept_by_rewrites() {
    local i=0 how f
    for how in append pwrite truncate otrunc; do
        i=$((i + 1))
        f=x$i
        printf 'x%.0s' {1..772} >$f
        setfattr -n user.k -v "v$i" $f
        case $how in
        append) echo tail >>$f ;;
        pwrite) printf 'J' | dd of=$f bs=1 seek=3 conv=notrunc status=none ;;
        truncate) truncate -s 5 $f ;;
        otrunc) echo new >$f ;;
        esac
        check_eq "user xattr kept by $how" "v$i" "$(xattr_of $f)"
    done
    remount
    for i in 1 2 3 4; do
        check_eq "x$i: user xattr in the stored object" "v$i" "$(xattr_of x$i)"
    done
}

# another client's metadata and content type survive a rewrite
case_foreign_meta_kept_by_append() {
    echo hi | aws_ s3 cp --quiet - "s3://$BUCKET/foreign" --metadata foreign=keepme --content-type text/plain
    sleep 1.5 # past attr_ttl: the mount sees the object
    echo more >>foreign
    check_eq "append through the mount" "hi more" "$(tr '\n' ' ' <foreign | sed 's/ $//')"
    check_eq "foreign metadata kept by a rewrite" "keepme" "$(meta_of foreign foreign)"
    check_eq "Content-Type kept by a rewrite" "text/plain" "$(ctype_of foreign)"
    check_eq "s3fs mode written too" "33188" "$(meta_of foreign mode)"
}

# cp onto an existing file (server-side) keeps that file's xattrs, as
# O_TRUNC does on a local disk
case_cp_onto_file_keeps_xattrs() {
    echo source >cpsrc
    echo target >cpdst
    setfattr -n user.k -v kept cpdst
    cp cpsrc cpdst
    landed
    check_eq "cp onto an existing file: the new content" "source" "$(cat cpdst)"
    check_eq "cp onto an existing file keeps its user xattrs" "kept" "$(xattr_of cpdst)"
    remount
    check_eq "cpdst: user xattr in the stored object" "kept" "$(xattr_of cpdst)"
}

run_cases "$@"
