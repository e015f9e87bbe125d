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
DEF_OPTS="endpoint=$PROXY,attr_ttl=15,dir_ttl=15,negative_ttl=15"
mount_fs "$COH" "$BUCKET" -o "endpoint=$PROXY,coherent" || exit 2
# the default promise, with lifetimes the test can wait out
mount_fs "$DEF" "$BUCKET" -o "$DEF_OPTS" || exit 2

put() { printf '%s' "$2" | aws_ s3 cp --quiet - "s3://$BUCKET/$1" "${@:3}"; }
mode_of() { stat -c %a "$1" 2>&1; }

# others_change P MOUNT: below the prefix P (a directory of its own), MOUNT
# first learns the state (so it has something cached), then another client
# creates, rewrites, deletes, changes metadata; sets LEARNT (when MOUNT learnt)
others_change() {
    local p=$1 m=$2
    put "$p/f" "one" --metadata mode=33188
    put "$p/gone" "soon"
    mkdir "$COH/$p/d" && landed "$COH"
    stat "$m/$p/new" "$m/$p/gone" >/dev/null 2>&1
    cat "$m/$p/f" >/dev/null
    ls "$m/$p/d" >/dev/null
    ls "$m/$p" >/dev/null
    LEARNT=$(date +%s.%N)
    # one Python process (botocore, which the aws CLI runs on), since on a
    # loaded machine four aws CLI calls outlasted the default mount's lifetimes
    BUCKET=$BUCKET P=$p python3 - <<'PYEOF' || bad "the other client's changes"
import os
import botocore.session
s3 = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1")
b, p = os.environ["BUCKET"], os.environ["P"]
s3.put_object(Bucket=b, Key=p + "/new", Body=b"created")
s3.put_object(Bucket=b, Key=p + "/d/x", Body=b"inside")
s3.put_object(Bucket=b, Key=p + "/f", Body=b"rewritten, longer", Metadata={"mode": "33152"})
s3.delete_object(Bucket=b, Key=p + "/gone")
PYEOF
}

# the default mount still serves what it learnt, until the lifetimes end
case_default_serves_cache_until_lifetimes() {
    local d=$DEF/dflt
    others_change dflt "$DEF"
    check_not "default: a name that was missing stays missing for negative_ttl" stat "$d/new"
    check_eq "default: a listing stays as it was for dir_ttl" "" "$(ls "$d/d")"
    check_eq "default: a size stays as it was for attr_ttl" 3 "$(stat -c %s "$d/f")"
    check "default: a deleted name stays for attr_ttl" stat "$d/gone"
    # only lets time pass: out of the default mount's lifetimes (15 s from when it learnt)
    sleep "$(awk -v a="$LEARNT" -v b="$(date +%s.%N)" 'BEGIN { d = a + 15.5 - b; print (d > 0 ? d : 0) }')"
    check_eq "default: after the lifetimes, the created name is seen" "created" "$(cat "$d/new" 2>&1)"
    check_eq "default: after dir_ttl, the listing is fresh" "x" "$(ls "$d/d")"
    check_eq "default: after attr_ttl, the rewrite is read" "rewritten, longer" "$(cat "$d/f")"
    check_not "default: after attr_ttl, the deleted name is gone" stat "$d/gone"
}

case_coherent_sees_changes_at_once() {
    local c=$COH/coh
    others_change coh "$COH"
    check_eq "coherent: a name another client created is seen at once" "created" "$(cat "$c/new" 2>&1)"
    check_eq "coherent: it is listed at once" "d f new" "$(ls "$c" | tr '\n' ' ' | sed 's/ $//')"
    check_eq "coherent: a directory this mount made lists another client's file at once" "x" \
        "$(ls "$c/d")"
    check_err "coherent: rmdir of it is ENOTEMPTY" "not empty" rmdir "$c/d"
    check_eq "coherent: a rewrite is read whole at once" "rewritten, longer" "$(cat "$c/f")"
    check_eq "coherent: its size is seen at once" 17 "$(stat -c %s "$c/f")"
    check_eq "coherent: its new mode is seen at once" 600 "$(mode_of "$c/f")"
    check_not "coherent: a name another client deleted is gone at once" stat "$c/gone"
}

# what the mount writes itself is seen by itself at once
case_own_writes_seen_at_once() {
    echo mine >"$COH/mine"
    check_eq "coherent: the mount's own write reads back" "mine" "$(cat "$COH/mine")"
    mv "$COH/mine" "$COH/mine2"
    check_eq "coherent: the mount's own queued move shows at once" "mine" "$(cat "$COH/mine2")"
    check_not "coherent: and its source is gone at once" stat "$COH/mine"
    landed "$COH"
    check_eq "S3: the move landed" "mine" "$(aws_ s3 cp --quiet "s3://$BUCKET/mine2" -)"
}

cost() { # LABEL COMMAND...: prints the requests the command sent
    proxy_reset
    "${@:2}" >/dev/null 2>&1
    echo "$1: $(curl -s "$PROXY/__proxy/stats" | awk 'NF == 4 {printf "%s=%s ", $1, $2}')"
}
total() { curl -s "$PROXY/__proxy/stats" | awk '$1 == "total" {print $2}'; }
files_in() { aws_ s3 ls --recursive "s3://$BUCKET/$1/" | grep -vc '/$'; }

# the cost: requests of ls -lR twice and of cp -r, in each mode
case_cost_of_coherent() {
    local i j m dir again_DEF again_COH cp_DEF cp_COH cold=$WORK/def-cold
    mkdir -p "$WORK/tree"
    for i in 1 2 3 4; do
        mkdir -p "$WORK/tree/t$i"
        for j in $(seq 1 10); do echo "$i.$j" >"$WORK/tree/t$i/f$j"; done
    done
    cp -r "$WORK/tree" "$COH/tree" && landed "$COH"
    # both start cold: a fresh default mount, and the coherent one keeps nothing
    mount_fs "$cold" "$BUCKET" -o "$DEF_OPTS" || { bad "a fresh default mount"; return 1; }
    for m in DEF COH; do
        if [ $m == DEF ]; then dir=$cold; else dir=$COH; fi
        cost "$m ls -lR cold" ls -lR "$dir/tree"
        cost "$m ls -lR again" ls -lR "$dir/tree"
        printf -v "again_$m" %s "$(total)"
        cost "$m cp -r (40 files, 4 dirs)" cp -r "$dir/tree" "$dir/copy$m"
        printf -v "cp_$m" %s "$(total)"
        landed "$dir"
    done
    check "a second ls -lR within the lifetimes costs the default mount nothing" \
        test "$again_DEF" -eq 0
    check "a second ls -lR costs the coherent mount requests again" test "$again_COH" -gt 0
    echo "cost of coherent: ls -lR again $again_COH requests (default $again_DEF); cp -r $cp_COH (default $cp_DEF)"
    check_eq "S3: both copies are whole" "40 40" "$(files_in copyDEF) $(files_in copyCOH)"
    check_eq "the copies read the same through the coherent mount" "" \
        "$(diff -r "$WORK/tree" "$COH/copyCOH" 2>&1; diff -r "$WORK/tree" "$COH/copyDEF" 2>&1)"
    unmount_fs "$cold"
}

run_cases "$@"
