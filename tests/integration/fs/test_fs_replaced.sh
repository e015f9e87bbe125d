#!/bin/bash
# A file another client replaced while this mount still holds its old
# attributes (within attr_ttl) reads as the new version, whole: never EIO,
# never a mix, whether the new version is shorter, longer (the kernel must
# learn the new size) or as long as the old one. (Until it is read, stat
# may show the old attributes for attr_ttl: the documented cache promise.)
# These are the daemon's reads: with nokeep_cache, so that the kernel's
# pages of the old version are dropped at each open (with them kept, an
# open within attr_ttl may show the old version whole: test_fs_reread).
. "$(dirname "$0")/lib.sh"
fs_setup -o attr_ttl=60,dir_ttl=60,nokeep_cache
export WORK

# replaced I OLD NEW: fI is written through the mount with OLD bytes and read
# back, another client replaces it with NEW bytes, then it is read here
replaced() {
    local i=$1 old=$2 new=$3
    head -c "$old" /dev/urandom >"$WORK/old$i"
    head -c "$new" /dev/urandom >"$WORK/new$i"
    cp "$WORK/old$i" "f$i" || { bad "cannot write f$i"; return; }
    check "f$i: the old version reads back" cmp -s "f$i" "$WORK/old$i"
    aws_ s3 cp --quiet "$WORK/new$i" "s3://$BUCKET/f$i"
    # read it (cmp alone would compare the cached size and stop there)
    cat "f$i" >"$WORK/read$i"
    check "f$i: replaced elsewhere ($old -> $new bytes): the new version, whole" \
        cmp -s "$WORK/read$i" "$WORK/new$i"
    check_eq "f$i: once read, its size follows" "$new" "$(stat -c %s "f$i")"
}

case_replaced_longer() { replaced 1 1000 250000; }
case_replaced_shorter() { replaced 2 250000 1000; }
case_replaced_same_size() { replaced 3 5000 5000; }
case_replaced_tiny_by_large() { replaced 4 4 3000000; }

# a reader that opened the old version and read part of it does not get
# a mix of the two: it fails instead
case_open_reader_no_mix() {
    local out
    head -c 3000000 /dev/urandom >"$WORK/mixa"
    head -c 3000000 /dev/urandom >"$WORK/mixb"
    cp "$WORK/mixa" mix || { bad "cannot write mix"; return; }
    out=$(python3 - mix "$WORK/mixb" "$S3_ENDPOINT" "$BUCKET" <<'PYEOF'
import os, subprocess, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
first = os.pread(fd, 4096, 0)
subprocess.run(["aws", "--endpoint-url", sys.argv[3], "s3", "cp", "--quiet", sys.argv[2],
                "s3://%s/mix" % sys.argv[4]], check=True)
try:
    rest = os.pread(fd, 1 << 20, 2 << 20)
    old = open(os.environ["WORK"] + "/mixa", "rb").read()
    print("old" if rest == old[2 << 20:(2 << 20) + len(rest)] else "mix?")
except OSError as e:
    print("error", e.errno)
PYEOF
    )
    case $out in
    old | "error 5") ok "a read of the old version after its replacement: the old bytes or EIO ($out)" ;;
    *) bad "a read of the old version after its replacement gave: $out" ;;
    esac
}

run_cases "$@"
