#!/bin/bash
# Other clients: with -o coherent another client's create, rewrite and
# delete are seen through the mount at once; by default they are seen after
# the cache lifetimes (and not before, which is what the option changes).
# Prints the option's request cost on `ls -lR` and `cp -r`.
. "$(dirname "$0")/lib.sh"
start_proxy
BUCKET=$(new_bucket)
trap fs_cleanup EXIT
COH=$WORK/coh
DEF=$WORK/def
mount_fs "$COH" "$BUCKET" -o "endpoint=$PROXY,coherent" || exit 2
# the default promise, with lifetimes the test can wait out
mount_fs "$DEF" "$BUCKET" -o "endpoint=$PROXY,attr_ttl=15,dir_ttl=15,negative_ttl=15" || exit 2

put() { printf '%s' "$2" | aws_ s3 cp --quiet - "s3://$BUCKET/$1" "${@:3}"; }
mode_of() { stat -c %a "$1" 2>&1; }

# each mount first learns the state (so each has something cached)
put f "one" --metadata mode=33188
put gone "soon"
mkdir "$COH/d" && landed "$COH"
for m in "$COH" "$DEF"; do
    stat "$m/new" "$m/gone" >/dev/null 2>&1
    cat "$m/f" >/dev/null
    ls "$m/d" >/dev/null
    ls "$m" >/dev/null
done
learnt=$(date +%s.%N)

# another client creates, rewrites, deletes, changes metadata
put new "created"
put d/x "inside"
put f "rewritten, longer" --metadata mode=33152
aws_ s3 rm --quiet "s3://$BUCKET/gone"

# the default mount still serves what it learnt, until the lifetimes end
check_not "default: a name that was missing stays missing for negative_ttl" stat "$DEF/new"
check_eq "default: a listing stays as it was for dir_ttl" "" "$(ls "$DEF/d")"
check_eq "default: a size stays as it was for attr_ttl" 3 "$(stat -c %s "$DEF/f")"
check "default: a deleted name stays for attr_ttl" stat "$DEF/gone"

check_eq "coherent: a name another client created is seen at once" "created" "$(cat "$COH/new" 2>&1)"
check_eq "coherent: it is listed at once" "d f new" "$(ls "$COH" | tr '\n' ' ' | sed 's/ $//')"
check_eq "coherent: a directory this mount made lists another client's file at once" "x" \
    "$(ls "$COH/d")"
check_err "coherent: rmdir of it is ENOTEMPTY" "not empty" rmdir "$COH/d"
check_eq "coherent: a rewrite is read whole at once" "rewritten, longer" "$(cat "$COH/f")"
check_eq "coherent: its size is seen at once" 17 "$(stat -c %s "$COH/f")"
check_eq "coherent: its new mode is seen at once" 600 "$(mode_of "$COH/f")"
check_not "coherent: a name another client deleted is gone at once" stat "$COH/gone"

# wait out the default mount's lifetimes (15 s from when it learnt)
sleep "$(awk -v a="$learnt" -v b="$(date +%s.%N)" 'BEGIN { d = a + 15.5 - b; print (d > 0 ? d : 0) }')"
check_eq "default: after the lifetimes, the created name is seen" "created" "$(cat "$DEF/new" 2>&1)"
check_eq "default: after dir_ttl, the listing is fresh" "x" "$(ls "$DEF/d")"
check_eq "default: after attr_ttl, the rewrite is read" "rewritten, longer" "$(cat "$DEF/f")"
check_not "default: after attr_ttl, the deleted name is gone" stat "$DEF/gone"

# what the mount writes itself is seen by itself at once in both modes
echo mine >"$COH/mine"
check_eq "coherent: the mount's own write reads back" "mine" "$(cat "$COH/mine")"
mv "$COH/mine" "$COH/mine2"
check_eq "coherent: the mount's own queued move shows at once" "mine" "$(cat "$COH/mine2")"
check_not "coherent: and its source is gone at once" stat "$COH/mine"
landed "$COH"
check_eq "S3: the move landed" "mine" "$(aws_ s3 cp --quiet "s3://$BUCKET/mine2" -)"

# the cost: requests of ls -lR twice and of cp -r, in each mode
mkdir -p "$WORK/tree"
for i in 1 2 3 4; do
    mkdir -p "$WORK/tree/t$i"
    for j in $(seq 1 10); do echo "$i.$j" >"$WORK/tree/t$i/f$j"; done
done
cp -r "$WORK/tree" "$COH/tree" && landed "$COH"
# both start cold: a fresh default mount, and the coherent one keeps nothing
unmount_fs "$DEF"
mount_fs "$DEF" "$BUCKET" -o "endpoint=$PROXY,attr_ttl=15,dir_ttl=15,negative_ttl=15" || exit 2
cost() { # LABEL COMMAND...: prints the requests the command sent
    proxy_reset
    "${@:2}" >/dev/null 2>&1
    echo "$1: $(curl -s "$PROXY/__proxy/stats" | awk 'NF == 4 {printf "%s=%s ", $1, $2}')"
}
total() { curl -s "$PROXY/__proxy/stats" | awk '$1 == "total" {print $2}'; }
for m in DEF COH; do
    dir=${!m}
    cost "$m ls -lR cold" ls -lR "$dir/tree"
    cost "$m ls -lR again" ls -lR "$dir/tree"
    eval "again_$m=$(total)"
    cost "$m cp -r (40 files, 4 dirs)" cp -r "$dir/tree" "$dir/copy$m"
    eval "cp_$m=$(total)"
    landed "$dir"
done
# shellcheck disable=SC2154
{
    check "a second ls -lR within the lifetimes costs the default mount nothing" \
        test "$again_DEF" -eq 0
    check "a second ls -lR costs the coherent mount requests again" test "$again_COH" -gt 0
    echo "cost of coherent: ls -lR again $again_COH requests (default $again_DEF); cp -r $cp_COH (default $cp_DEF)"
}
files_in() { aws_ s3 ls --recursive "s3://$BUCKET/$1/" | grep -vc '/$'; }
check_eq "S3: both copies are whole" "40 40" "$(files_in copyDEF) $(files_in copyCOH)"
check_eq "the copies read the same through the coherent mount" "" \
    "$(diff -r "$WORK/tree" "$COH/copyCOH" 2>&1; diff -r "$WORK/tree" "$COH/copyDEF" 2>&1)"

fs_done
