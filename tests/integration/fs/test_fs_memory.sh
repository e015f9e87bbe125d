#!/bin/bash
# Bounded memory for big trees (issue 4, W7): the kernel's cached entries
# of closed files are dropped beyond kept_files (so libfuse frees its
# nodes), and the files stay fully usable afterwards; expired cache entries
# go without waiting for the cache to fill. The 100,000-file figure itself
# is measured by tests/bench (W7), not here.
. "$(dirname "$0")/lib.sh"
CTL=${S3CFS_CTL:-$(dirname "$S3CFS_BIN")/s3cfs-ctl}
trap fs_cleanup EXIT
BUCKET=$(new_bucket)
MNT=$WORK/mnt
N=300
KEEP=50
mount_fs "$MNT" "$BUCKET" -o "kept_files=$KEEP,journal_dir=$WORK/journal" || exit 2
field() { "$CTL" status --raw "$MNT" | awk -v k="$1" '$1==k{print $2}'; }

mkdir -p "$WORK/tree/a" "$WORK/tree/b"
for i in $(seq 1 $N); do echo "file $i $RANDOM" >"$WORK/tree/$((i % 2 ? 1 : 2))-f$i"; done
mv "$WORK"/tree/1-* "$WORK/tree/a/"
mv "$WORK"/tree/2-* "$WORK/tree/b/"
cp -r "$WORK/tree" "$MNT/src" # N files written and closed
cp -r "$MNT/src" "$MNT/dst"   # N sources and N copies opened and closed
landed
want=$((3 * N - KEEP - 30))
for _ in $(seq 1 100); do # the trimming thread may still be working
    dropped=$(field kernel_entries_dropped)
    [ "${dropped:-0}" -ge $want ] && break
    sleep 0.1
done
# 3N closes, the last KEEP kept; a few may be skipped (name already gone)
check "kernel entries of closed files dropped beyond kept_files (${dropped:-none})" \
    test "${dropped:-0}" -ge $want
check "status shows the daemon's memory" test "$(field rss_peak_kib)" -gt 0

# every dropped name is looked up again and is right, through the mount and in S3
check "the copied tree reads back identical" diff -r "$WORK/tree" "$MNT/dst"
check "the written tree reads back identical" diff -r "$WORK/tree" "$MNT/src"
check_eq "every copy in S3" $N "$(aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix dst/ \
    --query 'length(Contents[?!ends_with(Key, `/`)])')"
f=$(ls "$MNT/dst/a" | head -1)
echo changed >"$MNT/dst/a/$f"
check_eq "a dropped file can be rewritten" changed "$(cat "$MNT/dst/a/$f")"
mv "$MNT/dst/b" "$MNT/dst/b2"
check_eq "and its directory renamed" $((N / 2)) "$(ls "$MNT/dst/b2" | wc -l)"
rm -r "$MNT/src"
check_not "and removed" test -e "$MNT/src"

# expired cache entries are freed without waiting for cache_entries
sleep 7 # attr_ttl=1, dir_ttl=1 here; the next insertions trim the cold end
stat "$MNT/dst/a" >/dev/null
ls -l "$MNT/dst/b2" >/dev/null
entries=$(field cache_entries)
check "expired attribute entries freed (${entries:-none} left of at least $N seen)" \
    test "${entries:-99999}" -lt $((N / 2 + 20))
fs_done
