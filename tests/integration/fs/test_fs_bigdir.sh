#!/bin/bash
# Issue 15 (W9): a flat directory of 5000 objects put by a plain S3 client
# is listed a page at a time through readdir's offsets: the first names
# need only the first LIST page, every name shows exactly once across the
# pages (also with files created through the mount and a delete queued
# meanwhile), seekdir and rewinddir work, the daemon does not hold the
# directory whole, and a small directory is still cached whole.
. "$(dirname "$0")/lib.sh"
proxied_setup -o attr_ttl=30,dir_ttl=30
N=5000
NAME=entry-with-a-longish-name # long names: ls -U | head stops ls early

# the big directory, put once with 32 PUTs in flight, straight to the server
big_dir() {
    [ -e "$WORK/big.names" ] && return 0
    python3 - "$BUCKET" "$N" "$NAME" >"$WORK/big.names" <<'PY' || { bad "cannot put big/"; return 1; }
import os, sys, boto3, concurrent.futures as cf
bucket, n, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
keys = ["%s-%05d" % (name, i) for i in range(n)]
with cf.ThreadPoolExecutor(32) as ex:
    list(ex.map(lambda k: s3.put_object(Bucket=bucket, Key="big/" + k, Body=b"x"), keys))
print("\n".join(keys))
PY
}

# a fresh daemon (nothing cached) that knows big/ exists
fresh() {
    remount "$@" || return 1
    stat "$MNT/big" >/dev/null || { bad "big/ not found"; return 1; }
    proxy_reset
}

vmhwm() { awk '/^VmHWM/ {print $2}' "/proc/$(mount_pid "$MNT")/status"; }

# the first names need the first page only (through a 30 ms proxy: the
# times are printed, not asserted, doc/DESIGN.md §4): a reader's first
# getdents, then ls -U | head (which reads a few getdents more before
# SIGPIPE ends it)
case_head_first_page() {
    local t0 t1 first ms
    big_dir && fresh || return
    proxy_config "delay_ms=30"
    # (from /: python looks for its modules in its working directory)
    read -r ms first < <(cd / && python3 -c 'import os, sys, time
t = time.monotonic()
it = os.scandir(sys.argv[1])
names = [next(it).name for _ in range(5)]
print(int((time.monotonic() - t) * 1000), " ".join(names))' "$MNT/big")
    echo "# opendir and the first getdents: $ms ms, $(proxy_count ListObjects) ListObjects," \
        "$(proxy_count HeadObject) HeadObject"
    check_eq "the first five names" "$(head -5 "$WORK/big.names" | tr '\n' ' ' | sed 's/ $//')" "$first"
    check_eq "one LIST page for them" 1 "$(proxy_count ListObjects)"
    check "HEADs only of the first part (< 1000 of $N)" test "$(proxy_count HeadObject)" -lt 1000
    fresh || return
    proxy_config "delay_ms=30"
    t0=$(date +%s%N)
    first=$(ls -U "$MNT/big" | head -5 | tr '\n' ' ')
    t1=$(date +%s%N)
    proxy_config "delay_ms=0"
    echo "# ls -U | head -5: $(((t1 - t0) / 1000000)) ms, $(proxy_count ListObjects) ListObjects," \
        "$(proxy_count HeadObject) HeadObject"
    check_eq "ls -U | head -5: the first five names" "$(head -5 "$WORK/big.names" | tr '\n' ' ')" "$first"
    check "ls -U | head -5: not every page (of 5)" test "$(proxy_count ListObjects)" -le 3
}

# every name once across the page boundaries; ls -l too, HEADed in parallel
case_exact_count() {
    local t0 t1
    big_dir && fresh || return
    ls -U "$MNT/big" >"$WORK/ls.out"
    check_eq "ls: $N names" "$N" "$(wc -l <"$WORK/ls.out")"
    check_eq "no name twice" "" "$(sort "$WORK/ls.out" | uniq -d | head -3)"
    check_eq "the names S3 lists" "" "$(sort "$WORK/ls.out" | diff - "$WORK/big.names" | head -3)"
    check_eq "ls: one LIST per page" 5 "$(proxy_count ListObjects)"
    check_eq "ls: one HEAD per name" "$N" "$(proxy_count HeadObject)"
    check_eq "not cached whole: no listing kept" 0 "$("$CTL" status --raw "$MNT" | awk '$1=="cache_names"{print $2}')"
    fresh || return
    t0=$(date +%s%N)
    check_eq "ls -l: $N files" "$N" "$(ls -l "$MNT/big" | grep -c "^-.* $NAME-")"
    t1=$(date +%s%N)
    echo "# cold ls -l of $N: $(((t1 - t0) / 1000000)) ms, $(proxy_count ListObjects) ListObjects," \
        "$(proxy_count HeadObject) HeadObject"
    check_eq "ls -l: every HEAD once, no serial lookups after" "$N" "$(proxy_count HeadObject)"
    check_eq "ls -l and ls agree" "" "$(ls -l "$MNT/big" | awk '/^-/ {print $NF}' | diff - "$WORK/big.names")"
}

# seekdir back across a page boundary, then rewinddir
case_seek_back() {
    local out
    big_dir && fresh || return
    out=$(perl -e '
        opendir(my $d, $ARGV[0]) or die;
        readdir($d) for 1 .. 1500;
        my $pos = telldir($d);
        my @a = map { scalar readdir($d) } 1 .. 10;
        seekdir($d, $pos);
        my @b = map { scalar readdir($d) } 1 .. 10;
        rewinddir($d);
        my $n = () = readdir($d);
        print join(",", @a) eq join(",", @b) ? "same" : "differ: @a / @b", " $n\n";
    ' "$MNT/big")
    check_eq "seekdir back: the same names; rewinddir: all again" "same $((N + 2))" "$out"
}

# created through the mount (open, closed) and a queued delete while the
# directory is read across pages: each name once, the deleted one gone
case_changes_between_pages() {
    local want
    big_dir && fresh || return
    rm "$MNT/big/$NAME-02500" || { bad "rm"; return; }
    python3 - "$MNT/big" "$NAME" >"$WORK/chg.out" <<'PY'
import os, sys
d, name = sys.argv[1], sys.argv[2]
held = [os.open(os.path.join(d, n), os.O_WRONLY | os.O_CREAT, 0o644)
        for n in ("0-first", name + "-01500x", "zz-last")]
it = os.scandir(d)
names = [next(it).name for _ in range(1200)]
# made while the listing is between pages, in a page not read yet: shown once
fd = os.open(os.path.join(d, name + "-04000x"), os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"y"); os.close(fd)
names += [e.name for e in it]
for fd in held:
    os.close(fd)
print("\n".join(names))
PY
    check_eq "no name twice" "" "$(sort "$WORK/chg.out" | uniq -d | head -3)"
    check_not "the deleted name is gone" grep -qx "$NAME-02500" "$WORK/chg.out"
    for want in 0-first "$NAME-01500x" zz-last "$NAME-04000x" "$NAME-00000" "$NAME-04999"; do
        check "$want is listed" grep -qx "$want" "$WORK/chg.out"
    done
    check_eq "the count" $((N - 1 + 4)) "$(wc -l <"$WORK/chg.out")"
    landed
    check_eq "after the jobs landed, ls agrees" $((N - 1 + 4)) "$(ls -U "$MNT/big" | wc -l)"
    rm -f "$MNT/big/0-first" "$MNT/big/$NAME-01500x" "$MNT/big/zz-last" "$MNT/big/$NAME-04000x"
    cp /etc/hostname "$MNT/big/$NAME-02500"
    landed
}

# the daemon holds a page or two, not the directory: its peak memory does
# not grow with it (listing_attrs_only and a small attribute cache leave
# only what the listing itself holds; pages of 100 keys; one malloc arena,
# so that the peaks of the threads serving the calls do not add up)
case_memory_bounded() {
    local before after
    big_dir || return
    MALLOC_ARENA_MAX=1 fresh -o "endpoint=$PROXY,journal_dir=$WORK/journal,listing_attrs_only,cache_entries=100" \
        -o "attr_ttl=30,dir_ttl=30,max_listing=${BIGDIR_PAGE:-100}" || return
    before=$(vmhwm)
    check_eq "ls: $N names" "$N" "$(ls -U "$MNT/big" | wc -l)"
    check_eq "again" "$N" "$(ls -U "$MNT/big" | wc -l)"
    after=$(vmhwm)
    echo "# VmHWM before listing ${before} kB, after two listings of $N ${after} kB"
    # measured: held whole (before issue 15) the 5000 entries took 7.2 MiB
    # more; pages of 1000 keys 4.6 MiB (the page, its XML and their parse)
    if grep -q libasan "/proc/$(mount_pid "$MNT")/maps"; then
        echo "# peak memory not compared: ASan's quarantine keeps what the daemon frees"
    else
        check "peak memory grew by less than 3 MiB ($((after - before)) kB)" test $((after - before)) -lt 3072
    fi
    remount
}

# a small directory is still cached whole: the second ls sends nothing
case_small_cached_whole() {
    local i
    for i in $(seq 1 20); do echo "s/f$i"; done |
        xargs -P 8 -I K "$S3CFS_S3C" put "$BUCKET" K /etc/hostname >/dev/null || { bad "put"; return; }
    remount || return
    ls "$MNT/s" >/dev/null
    proxy_reset
    check_eq "ls again: 20 names" 20 "$(ls "$MNT/s" | wc -l)"
    check_eq "ls again: no request" 0 "$(($(proxy_count ListObjects) + $(proxy_count HeadObject)))"
    check_not "a missing name costs nothing" stat "$MNT/s/missing"
    check_eq "no request for it" 0 "$(($(proxy_count ListObjects) + $(proxy_count HeadObject)))"
}

case_timeout changes_between_pages 120
run_cases "$@"
