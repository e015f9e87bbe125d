#!/bin/bash
# doc/DESIGN.md §3 through a real mount, with the requests counted by the proxy:
# server-side cp/cp -r/cp -a/mv/rm -r, ordering rules, and a daemon killed
# with SIGKILL mid-copy that finishes the work at the next mount.
. "$(dirname "$0")/lib.sh"
trap fs_cleanup EXIT
BUCKET=$(new_bucket)
B2=$(new_bucket)
start_proxy
MNT=$WORK/mnt
JDIR=$WORK/journal
mount_fs "$MNT" -o "endpoint=$PROXY,journal_dir=$JDIR" || exit 2
A=$MNT/$BUCKET
N=200
mkdir -p "$WORK/tree"
for d in 1 2 3 4; do
    mkdir -p "$WORK/tree/d$d"
    for i in $(seq 1 50); do echo "file $d $i" >"$WORK/tree/d$d/f$i"; done
done
cp -r "$WORK/tree" "$A/src"
landed "$A"

# cp -r of N files: N CopyObject, no object data through the client
proxy_reset
cp -r "$A/src" "$A/copy"
check_eq "the copy shows at once with its sizes" "$(stat -c %s "$A/src/d2/f7")" "$(stat -c %s "$A/copy/d2/f7")"
landed "$A"
# plus each new directory's times written to its marker (README: once it
# is quiet, so once or twice in a cp -r; issue 12 §2)
copies=$(proxy_count CopyObject)
check "cp -r of $N files: $N CopyObject + 5 to 10 marker-time writes ($copies)" \
    test "$copies" -ge $((N + 5)) -a "$copies" -le $((N + 10))
check_eq "cp -r: no GetObject" 0 "$(proxy_count GetObject)"
check_eq "cp -r: PutObject only for the 5 directory markers" 5 "$(proxy_count PutObject)"
check "cp -r: tree identical through the mount" diff -r "$A/src" "$A/copy"
aws_ s3 cp --quiet --recursive "s3://$BUCKET/copy" "$WORK/copy-s3"
check "cp -r: tree identical through the S3 API" diff -r "$WORK/tree" "$WORK/copy-s3"

# cp -a keeps mode and mtime, folded into the copy: no extra request
chmod 604 "$A/src/d1/f1"
touch -m -d '2019-05-06 07:08:09 UTC' "$A/src/d1/f1"
landed "$A"
proxy_reset
cp -a "$A/src/d1/f1" "$A/kept"
landed "$A"
check_eq "cp -a: exactly one CopyObject (attributes folded in)" 1 "$(proxy_count CopyObject)"
check_eq "cp -a: mode in S3" "33156" "$(meta_of kept mode)"
check_eq "cp -a: mtime in S3" "1557126489" "$(meta_of kept mtime)"

# cp a b; cat b gives the right bytes; cp a b; echo x > a leaves b old
echo original >"$A/a"
landed "$A"
cp "$A/a" "$A/b"
check_eq "cp a b; cat b" "original" "$(cat "$A/b")"
cp "$A/a" "$A/c"
echo changed >"$A/a"
landed "$A"
check_eq "cp a c; echo x > a: c keeps the old content (S3)" "original" \
    "$(aws_ s3 cp --quiet "s3://$BUCKET/c" -)"
check_eq "and a has the new" "changed" "$(aws_ s3 cp --quiet "s3://$BUCKET/a" -)"

# cp -r a b && rm -r a leaves b complete
cp -r "$A/src" "$A/keep" && rm -r "$A/src"
check_not "rm -r: the source is gone at once" test -e "$A/src"
landed "$A"
check_eq "cp -r a b && rm -r a: b complete" "$N" "$(find "$A/keep" -type f | wc -l)"
aws_ s3 cp --quiet --recursive "s3://$BUCKET/keep" "$WORK/keep-s3"
check "cp -r a b && rm -r a: b identical in S3" diff -r "$WORK/tree" "$WORK/keep-s3"
check_eq "nothing left of the source in S3" 0 \
    "$(aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix src/ --query 'length(Contents || `[]`)')"

# mv of a directory: N copies + ceil(N/1000) DeleteObjects
proxy_reset
mv "$A/keep" "$A/moved"
landed "$A"
copies=$(proxy_count CopyObject) # + the moved directory's new ctime on its marker
check "mv of a directory of $N files (+5 markers, +1 ctime write): copies ($copies)" \
    test "$copies" -ge $((N + 6)) -a "$copies" -le $((N + 8))
check_eq "mv: one DeleteObjects" 1 "$(proxy_count DeleteObjects)"
check_eq "mv: no single DeleteObject" 0 "$(proxy_count DeleteObject)"
check "mv: tree identical" diff -r "$WORK/tree" "$A/moved"

# rm -r of N files: batched deletes
proxy_reset
rm -r "$A/moved"
landed "$A"
dels=$(proxy_count DeleteObjects)
check_eq "rm -r of $N files: one DeleteObjects" 1 "$dels"
check_eq "rm -r: no single DeleteObject" 0 "$(proxy_count DeleteObject)"
check_eq "rm -r: nothing left in S3" 0 \
    "$(aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix moved/ --query 'length(Contents || `[]`)')"

# cross-bucket cp -r
cp -r "$A/copy" "$MNT/$B2/across"
landed "$MNT/$B2"
aws_ s3 cp --quiet --recursive "s3://$B2/across" "$WORK/across-s3"
check "cross-bucket cp -r: identical in S3" diff -r "$WORK/tree" "$WORK/across-s3"

# SIGKILL during cp -r, then remount: every acknowledged copy lands
proxy_config "delay.CopyObject=3000"
cp -r "$A/copy" "$A/killed"
for i in "${!MOUNTS[@]}"; do [ "${MOUNTS[$i]}" == "$MNT" ] && pid=${PIDS[$i]} && idx=$i; done
kill -9 "$pid"
wait "$pid" 2>/dev/null
fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
unset 'MOUNTS[idx]' 'PIDS[idx]'
left=$(aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix killed/ --query 'length(Contents || `[]`)')
check "killed mid-copy: some copies had not landed ($left of $((N + 5)))" test "$left" -lt $((N + 5))
proxy_config "delay.CopyObject=-1"
check "the journal holds the unfinished copies" test -s "$(ls "$JDIR"/journal-*.log | head -1)"
mount_fs "$MNT" -o "endpoint=$PROXY,journal_dir=$JDIR" || exit 2
landed "$A"
aws_ s3 cp --quiet --recursive "s3://$BUCKET/killed" "$WORK/killed-s3"
check "after SIGKILL and remount: every copy present and identical" diff -r "$WORK/tree" "$WORK/killed-s3"
check "the source is intact" diff -r "$WORK/tree" "$A/copy"
fs_done
