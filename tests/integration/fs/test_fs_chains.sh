#!/bin/bash
# Chains of mv and cp on destinations whose copy is still queued end
# exactly as on a local disk, at every size (doc/DESIGN.md §3.10): below the
# multipart-copy threshold (one CopyObject) and above it (parallel
# UploadPartCopy, whose result has another ETag than its source). The
# proxy slows the copies so that each step finds the previous one queued.
# Also: a copy_file_range that covers only the start of its source,
# followed by a write, keeps the copied bytes.
. "$(dirname "$0")/lib.sh"
trap fs_cleanup EXIT
BUCKET=$(new_bucket)
start_proxy
MNT=$WORK/mnt
mount_fs "$MNT" "$BUCKET" -o "endpoint=$PROXY,journal_dir=$WORK/j,copy_threshold=8,copy_part_size=5" ||
    exit 2
head -c 4096 /dev/urandom >"$WORK/data.small"
head -c 20971520 /dev/urandom >"$WORK/data.large"

keys() { aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1" --query 'Contents[].Key' --output text; }
# same_everywhere DESC FILE LOCAL: through the mount and through S3 (FILE
# relative to the current directory, which is $MNT/$DIR)
DIR=
same_everywhere() {
    check "$1: through the mount" cmp -s "$2" "$3"
    check "$1: in S3" same_in_s3 "$DIR$2" "$3"
}
# in_chain_dir TAG STEP: a directory of its own for one chain, the copies slowed
in_chain_dir() {
    proxy_config "delay.CopyObject=300&delay.UploadPartCopy=300"
    DIR=$1-$2/
    mkdir "$MNT/$DIR" && cd "$MNT/$DIR"
}

chain_mv_mv() { # TAG
    local tag=$1 d=$1-mvmv
    in_chain_dir "$tag" mvmv || return 1
    cp "$WORK/data.$tag" a
    mv a b && mv b c
    landed "$MNT"
    same_everywhere "$tag: mv a b; mv b c" c "$WORK/data.$tag"
    check_eq "$tag: only c is left" "$d/	$d/c" "$(keys $d/)"
}

# c, the source of the next steps, is itself the result of a queued move
chain_cp_mv() { # TAG
    local tag=$1
    in_chain_dir "$tag" cpmv || return 1
    cp "$WORK/data.$tag" a && mv a c
    landed "$MNT"
    cp c d && mv d e
    landed "$MNT"
    same_everywhere "$tag: cp c d; mv d e" e "$WORK/data.$tag"
}

chain_mv_cp() { # TAG
    local tag=$1 d=$1-mvcp
    in_chain_dir "$tag" mvcp || return 1
    cp "$WORK/data.$tag" a && mv a c
    landed "$MNT"
    cp c d && mv d e
    landed "$MNT"
    mv e f && cp f g
    landed "$MNT"
    same_everywhere "$tag: mv e f; cp f g (the copy's source)" f "$WORK/data.$tag"
    same_everywhere "$tag: mv e f; cp f g (the copy)" g "$WORK/data.$tag"
    check_eq "$tag: c f g are left" "$d/	$d/c	$d/f	$d/g" "$(keys $d/)"
}

# a tree moved while its members are still being copied into it
chain_tree_mv() { # TAG
    local tag=$1 d=$1-tree
    in_chain_dir "$tag" tree || return 1
    cp "$WORK/data.$tag" a && mv a g
    landed "$MNT"
    mkdir t && cp g t/x && cp g t/y && mv t t2 && mv t2/x t2/z
    landed "$MNT"
    same_everywhere "$tag: tree mv of queued copies (y)" t2/y "$WORK/data.$tag"
    same_everywhere "$tag: tree mv of queued copies, then mv of a member" t2/z "$WORK/data.$tag"
    check_eq "$tag: nothing left of the old tree" "" "$(keys $d/t/ | sed 's/None//')"
}

case_small_mv_mv() { chain_mv_mv small; }
case_small_cp_mv() { chain_cp_mv small; }
case_small_mv_cp() { chain_mv_cp small; }
case_small_tree_mv() { chain_tree_mv small; }
case_large_mv_mv() { chain_mv_mv large; }
case_large_cp_mv() { chain_cp_mv large; }
case_large_mv_cp() { chain_mv_cp large; }
case_large_tree_mv() { chain_tree_mv large; }

# a name renamed just after it was written is listed at once, and the old
# name is not: a LIST that S3 made while the move landed must not undo it
case_rename_listed_at_once() {
    local misses
    proxy_config "delay.CopyObject=-1&delay.UploadPartCopy=-1"
    mkdir lst
    misses=$(python3 - lst <<'PYEOF'
import os, sys
d, bad = sys.argv[1], 0
for i in range(60):
    with open(f"{d}/c{i}", "wb") as f:
        f.write(os.urandom(45104))
    os.rename(f"{d}/c{i}", f"{d}/e{i}")
    names = os.listdir(d)
    bad += f"e{i}" not in names or f"c{i}" in names
print(bad)
PYEOF
    )
    check_eq "60 renames of fresh files: readdir shows each new name, never the old" "0" "$misses"
}

# copy_file_range of the first half, then a write after it (issue 11 §6)
case_partial_copy_file_range() {
    proxy_config "delay.CopyObject=-1&delay.UploadPartCopy=-1"
    DIR=
    head -c 100000 /dev/urandom >"$WORK/half"
    cp "$WORK/half" half_src
    python3 - half_src half_dst <<'EOF2'
import os, sys
fi = os.open(sys.argv[1], os.O_RDONLY)
fo = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
n = os.copy_file_range(fi, fo, 50000, 0, 0)
os.pwrite(fo, b"TAIL", n)
os.close(fo)
os.close(fi)
EOF2
    { head -c 50000 "$WORK/half"; printf TAIL; } >"$WORK/half.want"
    same_everywhere "a partial copy_file_range, then a write" half_dst "$WORK/half.want"
}

run_cases "$@"
