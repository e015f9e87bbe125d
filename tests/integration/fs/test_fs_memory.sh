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

# trees P: a local tree $WORK/P of N files (half in a/, half in b/), written
# to $MNT/P/src and copied to $MNT/P/dst: N files written and closed, then
# N sources and N copies opened and closed (3N closes)
trees() {
    local p=$1 i
    mkdir -p "$WORK/$p/a" "$WORK/$p/b"
    for i in $(seq 1 $N); do echo "file $i $RANDOM" >"$WORK/$p/$((i % 2 ? 1 : 2))-f$i"; done
    mv "$WORK/$p"/1-* "$WORK/$p/a/"
    mv "$WORK/$p"/2-* "$WORK/$p/b/"
    mkdir "$MNT/$p" && cp -r "$WORK/$p" "$MNT/$p/src" && cp -r "$MNT/$p/src" "$MNT/$p/dst" ||
        return 1
    landed
}
# 3N closes, the last KEEP kept; a few may be skipped (name already gone)
WANT=$((3 * N - KEEP - 30))
# dropped_since BEFORE: at least WANT more kernel entries dropped than BEFORE
dropped_since() { [ "$(($(field kernel_entries_dropped) - $1))" -ge $WANT ]; }

# first: its count since mounting is its own trees' alone (the counter
# only grows; later cases count from their own start)
case_kernel_entries_dropped() {
    local before dropped
    before=$(field kernel_entries_dropped)
    trees drop || { bad "the trees of drop/ were not written"; return; }
    wait_until 10 dropped_since "${before:-0}" # the trimming thread may still be working
    dropped=$(($(field kernel_entries_dropped) - ${before:-0}))
    check "kernel entries of closed files dropped beyond kept_files ($dropped)" \
        test "$dropped" -ge $WANT
    check "status shows the daemon's memory" test "$(field rss_peak_kib)" -gt 0
}

# every dropped name is looked up again and is right, through the mount and in S3
case_dropped_files_usable() {
    local before f
    before=$(field kernel_entries_dropped)
    trees use || { bad "the trees of use/ were not written"; return; }
    check "the kernel entries of use/ were dropped before they are used again" \
        wait_until 10 dropped_since "${before:-0}"
    check "the copied tree reads back identical" diff -r "$WORK/use" "$MNT/use/dst"
    check "the written tree reads back identical" diff -r "$WORK/use" "$MNT/use/src"
    check_eq "every copy in S3" $N "$(aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix use/dst/ \
        --query 'length(Contents[?!ends_with(Key, `/`)])')"
    f=$(ls "$MNT/use/dst/a" | head -1)
    echo changed >"$MNT/use/dst/a/$f"
    check_eq "a dropped file can be rewritten" changed "$(cat "$MNT/use/dst/a/$f")"
    mv "$MNT/use/dst/b" "$MNT/use/dst/b2"
    check_eq "and its directory renamed" $((N / 2)) "$(ls "$MNT/use/dst/b2" | wc -l)"
    rm -r "$MNT/use/src"
    check_not "and removed" test -e "$MNT/use/src"
}

# expired cache entries are freed without waiting for cache_entries
case_expired_entries_freed() {
    local entries
    trees exp || { bad "the trees of exp/ were not written"; return; }
    ls -l "$MNT/exp/src/a" "$MNT/exp/src/b" "$MNT/exp/dst/a" "$MNT/exp/dst/b" >/dev/null
    # only lets time pass: attr_ttl=1, dir_ttl=1 here, so every entry seen
    # so far expires; the next insertions trim the cold end
    sleep 7
    stat "$MNT/exp/dst/a" >/dev/null
    ls -l "$MNT/exp/dst/b" >/dev/null
    entries=$(field cache_entries)
    check "expired attribute entries freed (${entries:-none} left of at least $N seen)" \
        test "${entries:-99999}" -lt $((N / 2 + 20))
}

run_cases "$@"
