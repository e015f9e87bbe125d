#!/bin/bash
# run-bench.sh - the side-by-side benchmark of doc/DESIGN.md §4 (W1-W7): s3cfs,
# s3fs-fuse and rclone mount against one local radosgw, through the counting
# proxy at 30 ms and at 0 ms of added latency, in the same run.
#
#   bash tests/bench/run-bench.sh [--quick] [BUILD_DIR]     (as root)
#
# BUILD_DIR defaults to build-bench at the top of the repository; s3cfs is
# built there when it is missing. s3fs and rclone are installed with apt-get
# when missing. Every workload runs on a fresh mount, with the proxy's
# counters reset just before it; "until landed" is checked through the S3 API
# directly on the server (not through the proxy): the time reported is the
# time until every object is there with the right size.
#
#   W1  cp -r of a tree of small files (1-4 KiB, 100 per directory)
#   W2  mv of the copied tree          W3  rm -r of it
#   W4  cold ls -lR of the source tree (fresh mount)
#   W5  sequential write (1 MiB writes; the note says how long close took after
#       the last write and the daemon's peak local staging), then read (fresh
#       mount) of a large file; s3cfs also with nostream (the whole file at close)
#   W6  cp of a large file inside the mount (at W6_DELAY, default the first)
#   W8  a tree shaped like a source checkout (W8_N files of 1-16 KiB, 5 per
#       directory, 3 levels: 2000 in 400 directories; peers get PEER_N_<delay>):
#       cp -r, mv, rm -r, and on fresh mounts ls -lR, find -name '*.c', du -s
#   W9  one flat directory of W9_N objects (100000/20000) written by a plain
#       client: ls | head -20, ls | wc -l, ls -l | tail -1, find | wc -l on fresh
#       mounts; the note has the time to the first name
#   W7  cp -r of many tiny files, s3cfs only, with the daemon's peak RSS (at
#       W7_DELAY, default the last: at 30 ms it would take hours, see BENCHMARKS.md)
#   ceiling: bench_copy_rate, the same CopyObject requests from a plain client
#            at 1 and 64 in flight through the same proxy
#
# Environment (defaults full / --quick):
#   DELAYS ("30 0")  PEER_N_<delay> files per peer tree (30: 200/200, 0: 2000/200)
#   W5_MIB (1024/256)  W6_MIB (s3cfs: "6144 2048" / "1024": the next size is
#   tried when one fails)  W6_PEER_MIB (512/256)  W7_N (100000/10000)
#   WL_TIMEOUT (900/600 s per workload; W7_TIMEOUT twice that)  OUT (results directory, kept)
#   SYSTEMS ("s3cfs s3fs rclone-off rclone-writes")  KEEP=1 keeps the work dir
#   BENCH_STORE (bluestore: the OSD in a sparse file in the work dir; memstore)
#   WORKLOADS ("ceiling tree W8 W9 W5 W6 W7": tree is W1-W4 and the max_inflight=1 seed)
#   W8_N (2000)  W9_N (100000/20000)
# Prints one markdown table per latency; OUT gets results.tsv, the tables,
# the proxy counters of every workload and the daemons' logs.
set -uo pipefail

QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(realpath -m "${1:-$ROOT/build-bench}")
T_START=$(date +%s)

if [ $QUICK = 1 ]; then
    : "${W5_MIB:=256}" "${W6_MIB:=1024}" "${W6_PEER_MIB:=256}" "${W7_N:=10000}" "${WL_TIMEOUT:=600}" "${W9_N:=20000}"
    : "${PEER_N_30:=200}" "${PEER_N_0:=200}" "${PROXY_MAX_S:=3000}"
else
    : "${W5_MIB:=1024}" "${W6_MIB:=6144 2048}" "${W6_PEER_MIB:=512}" "${W7_N:=100000}" "${WL_TIMEOUT:=900}" "${W9_N:=100000}"
    : "${PEER_N_30:=200}" "${PEER_N_0:=2000}" "${PROXY_MAX_S:=7200}"
fi
: "${DELAYS:=30 0}" "${SYSTEMS:=s3cfs s3fs rclone-off rclone-writes}"
: "${WORKLOADS:=ceiling tree W8 W9 W5 W6 W7}" "${W8_N:=2000}"
want() { case " $WORKLOADS " in *" $1 "*) return 0 ;; esac; return 1; }
: "${W6_DELAY:=${DELAYS%% *}}" "${W7_DELAY:=${DELAYS##* }}" "${W7_TIMEOUT:=$((2 * WL_TIMEOUT))}"
N_TREE=2000 # W1-W4 for s3cfs (20 directories of 100); peers use PEER_N_<delay>
BUCKET=bench
RUN=$(mktemp -d /tmp/s3cfs-bench.XXXXXX)
OUT=$(realpath -m "${OUT:-/tmp/s3cfs-bench-results.$(date +%Y%m%d-%H%M%S)}")
mkdir -p "$OUT" "$RUN/m" "$RUN/log" "$RUN/local"
cd "$RUN" || exit 1 # nothing lands in the caller's directory
RES=$OUT/results.tsv
: >"$RES"
exec > >(tee -a "$OUT/run.log") 2>&1

say() { printf '[bench %5ds] %s\n' $(($(date +%s) - T_START)) "$*"; }
now() { date +%s.%N; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# ---------------------------------------------------------------- cleanup

PIDS=()      # proxies we started
declare -A LIVE # daemons we started and have not reaped yet
MOUNTS=()    # mount points we created
SERVER_UP=0
cleanup() {
    local rc=$?
    set +e
    cd /
    for m in "${MOUNTS[@]}"; do
        mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
    done
    for p in "${PIDS[@]}" "${!LIVE[@]}"; do kill "$p" 2>/dev/null; done
    sleep 1
    for p in "${PIDS[@]}" "${!LIVE[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ $SERVER_UP = 1 ] && timeout -k 5 60 bash "$ROOT/tests/tools/radosgw/s3-server.sh" stop "$RUN/server" >/dev/null 2>&1
    cp -f "$RUN"/log/*.log "$OUT/" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $RUN"; else rm -rf "$RUN"; fi
    echo "results in $OUT"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- install, build

need_pkgs=()
command -v s3fs >/dev/null || need_pkgs+=(s3fs)
command -v rclone >/dev/null || need_pkgs+=(rclone)
command -v python3 >/dev/null || need_pkgs+=(python3)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get install -y "${need_pkgs[@]}" >"$RUN/log/apt.log" 2>&1 ||
        { timeout 300 apt-get update >>"$RUN/log/apt.log" 2>&1 &&
          timeout 600 apt-get install -y "${need_pkgs[@]}" >>"$RUN/log/apt.log" 2>&1; } ||
        { tail -20 "$RUN/log/apt.log"; exit 1; }
fi
S3CFS=$BUILD/fs/s3cfs
S3C=$BUILD/tests/tools/s3c/s3c
S3PROXY=$BUILD/tests/tools/proxy/s3proxy
CEILING=$BUILD/tests/bench/bench_copy_rate
if [ ! -x "$S3CFS" ] || [ ! -x "$S3C" ] || [ ! -x "$S3PROXY" ] || [ ! -x "$CEILING" ]; then
    say "building s3cfs in $BUILD"
    timeout 900 bash "$ROOT/tests/tools/install-deps.sh" || exit 1
    { timeout 300 cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
      timeout 1800 cmake --build "$BUILD" -j"$(nproc)"; } >"$RUN/log/build.log" 2>&1 ||
        { tail -30 "$RUN/log/build.log"; exit 1; }
fi

# ---------------------------------------------------------------- server, proxies

say "free memory before start: $(free -g | awk '/^Mem/ {print $7}') GiB available"
# The OSD stores on bluestore in a sparse file by default: memstore keeps
# every object in RAM, and W6's 6 GiB source plus its copy got the OSD
# OOM-killed on a 24 GiB machine. BENCH_STORE=memstore restores it.
W6_MAX=$(echo "$W6_MIB" | tr ' ' '\n' | sort -n | tail -1)
STORE_MIB=$(( 4 * W6_MAX + 8 * W5_MIB + 8192 ))
: "${BENCH_STORE:=bluestore}"
if [ "$BENCH_STORE" = bluestore ]; then
    FREE_MIB=$(df -m --output=avail "$RUN" | tail -1)
    [ "$FREE_MIB" -gt $((STORE_MIB + 4096)) ] ||
        { say "need $((STORE_MIB + 4096)) MiB free in $RUN for the OSD, have $FREE_MIB"; exit 1; }
fi
say "starting radosgw ($BENCH_STORE, up to $((STORE_MIB >> 10)) GiB)"
SERVER_UP=1
CEPH_OSD_STORE=$BENCH_STORE CEPH_OSD_SIZE=${STORE_MIB}M CEPH_MEMSTORE_BYTES=$((STORE_MIB << 20)) \
    timeout -k 10 400 bash "$ROOT/tests/tools/radosgw/s3-server.sh" start "$RUN/server" \
    >"$RUN/env.sh" 2>"$RUN/log/s3-server.log" || { tail "$RUN/log/s3-server.log"; exit 1; }
# shellcheck disable=SC1091
source "$RUN/env.sh"
unset AWS_CA_BUNDLE # rclone refuses a custom CA bundle with its own transport
DIRECT=$S3_ENDPOINT
S3CD() { timeout 300 "$S3C" --endpoint "$DIRECT" "$@"; }
S3CD mb "$BUCKET" >/dev/null && S3CD mb ceiling >/dev/null || exit 1
echo warm >"$RUN/warm"
S3CD put "$BUCKET" warm-up "$RUN/warm" >/dev/null && S3CD rm "$BUCKET" warm-up

declare -A PROXY
for d in $DELAYS; do
    "$S3PROXY" --upstream "${DIRECT#http://}" --listen 127.0.0.1:0 --port-file "$RUN/proxy-$d.port" \
        --delay-ms "$d" --quiet --max-seconds "$PROXY_MAX_S" >"$RUN/log/proxy-$d.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do [ -s "$RUN/proxy-$d.port" ] && break; sleep 0.1; done
    PROXY[$d]=http://127.0.0.1:$(cat "$RUN/proxy-$d.port")
    curl -sf -m 5 "${PROXY[$d]}/__proxy/stats" >/dev/null || { say "proxy $d ms did not start"; exit 1; }
    say "proxy ${d} ms at ${PROXY[$d]}"
done

# ---------------------------------------------------------------- helpers

# credentials for the peers: an s3fs passwd file and an rclone.conf, both 0600
umask 077
echo "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" >"$RUN/passwd-s3fs"
cat >"$RUN/rclone.conf" <<EOF
[rgw]
type = s3
provider = Ceph
access_key_id = $AWS_ACCESS_KEY_ID
secret_access_key = $AWS_SECRET_ACCESS_KEY
endpoint = $DIRECT
EOF
umask 022

S3FS_OPTS="use_path_request_style,passwd_file=$RUN/passwd-s3fs,sigv4,endpoint=us-east-1"
S3FS_OPTS+=",parallel_count=16,multireq_max=32,multipart_size=8,max_stat_cache_size=100000"
S3FS_OPTS+=",enable_noobj_cache,notsup_compat_dir"
RCLONE_OPTS=(--use-server-modtime --s3-no-head --transfers 16 --s3-upload-concurrency 8
             --s3-chunk-size 8M --vfs-write-back 0s)
S3CFS_OPTS="journal_dir=$RUN/journal"

MNT=$RUN/m/x
MPID=
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
RSS_MIB=-
CPU_S=-
mount_sys() { # SYS ENDPOINT [EXTRA_S3CFS_OPTS]
    local sys=$1 ep=$2 extra=${3:-} log="$RUN/log/$1.log"
    MNT=$RUN/m/$sys.$RANDOM
    mkdir -p "$MNT"
    MOUNTS+=("$MNT")
    echo "=== $(date +%T) mount $sys $ep $extra" >>"$log"
    case $sys in
    s3cfs*) "$S3CFS" -f -o "endpoint=$ep,$S3CFS_OPTS${extra:+,$extra}" "$BUCKET" "$MNT" 2>>"$log" & ;;
    s3fs) s3fs "$BUCKET" "$MNT" -f -o "$S3FS_OPTS,url=$ep" 2>>"$log" & ;;
    rclone-off | rclone-writes)
        rm -rf "$RUN/rclone-cache"
        rclone --config "$RUN/rclone.conf" mount "rgw:$BUCKET" "$MNT" --s3-endpoint "$ep" \
            --vfs-cache-mode "${sys#rclone-}" --cache-dir "$RUN/rclone-cache" "${RCLONE_OPTS[@]}" \
            2>>"$log" & ;;
    *) say "unknown system $sys"; return 1 ;;
    esac
    MPID=$!
    LIVE[$MPID]=1
    for _ in $(seq 300); do
        mountpoint -q "$MNT" && return 0
        alive "$MPID" || break
        sleep 0.1
    done
    say "mount of $sys failed; see $log"
    tail -5 "$log"
    return 1
}
unmount_sys() { # records RSS_MIB (VmHWM) and CPU_S of the daemon, then unmounts
    RSS_MIB=$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$MPID/status" 2>/dev/null || echo -)
    CPU_S=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' \
        "/proc/$MPID/stat" 2>/dev/null || echo -)
    
    for _ in $(seq 20); do
        fusermount3 -u "$MNT" 2>/dev/null && break
        sleep 0.5
    done
    mountpoint -q "$MNT" && umount -l "$MNT"
    for _ in $(seq 1200); do alive "$MPID" || break; sleep 0.1; done
    if alive "$MPID"; then
        say "daemon $MPID still running 120 s after unmount: killing it"
        kill "$MPID" 2>/dev/null; sleep 2; kill -9 "$MPID" 2>/dev/null
    fi
    wait "$MPID" 2>/dev/null
    unset "LIVE[$MPID]"
    rmdir "$MNT" 2>/dev/null
    return 0
}

P=        # the proxy of the current latency
reset_stats() { curl -sf -m 5 -X POST "$P/__proxy/reset" >/dev/null; }
# requests by kind (per item when DIV > 1) and the bytes sent / received
stats_line() { # DIV FILE -> "kind n, ...|up_MiB|down_MiB"
    curl -sf -m 5 "$P/__proxy/stats" >"$2"
    awk -v div="$1" '
        NF == 4 { n[$1] = $2; up += $3; down += $4; order[++k] = $1 }
        END {
            # most frequent first
            for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
                if (n[order[j]] > n[order[i]]) { t = order[i]; order[i] = order[j]; order[j] = t }
            s = ""
            for (i = 1; i <= k; i++) {
                v = div > 1 ? sprintf("%.3g", n[order[i]] / div) : n[order[i]]
                s = s (s == "" ? "" : ", ") order[i] " " v
            }
            printf "%s|%.1f|%.1f", (s == "" ? "none" : s), up / 1048576, down / 1048576
        }' "$2"
}
# objects below PREFIX on the server, directly: "files bytes all" (all counts markers)
objs() { S3CD find "$BUCKET" "$1" | awk '{ a++ } $2 !~ /\/$/ { n++; b += $1 } END { printf "%d %.0f %d\n", n, b, a }'; }
# poll until COND (a shell function on "files bytes all") holds; sets T_LANDED,
# and FIRST=1 when it held at the first look
wait_landed() { # PREFIX COND DEADLINE_EPOCH
    local o
    FIRST=1
    while :; do
        o=$(objs "$1")
        # shellcheck disable=SC2086
        $2 $o && { T_LANDED=$(now); return 0; }
        FIRST=0
        [ "$(date +%s)" -lt "$3" ] || { LAST_OBJS=$o; return 1; }
        sleep 0.5
    done
}

# results: one line per measurement
record() { # LAT WL SYS N UNIT SECONDS NOTE [REQS UP DOWN]
    local lat=$1 wl=$2 sys=$3 n=$4 unit=$5 secs=$6 note=$7 reqs=${8:--} up=${9:--} down=${10:--} rate=-
    [[ $secs =~ ^[0-9.]+$ ]] && rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0) ? n / s : 0 }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$lat" "$wl" "$sys" "$n" "$unit" "$secs" \
        "$rate" "$reqs" "$up" "$down" "$RSS_MIB" "$CPU_S" "$note" >>"$RES"
    say "$wl $sys lat=$lat n=$n $unit: ${secs}s rate=$rate/s rss=${RSS_MIB}MiB cpu=${CPU_S}s reqs: $reqs up=${up}MiB down=${down}MiB $note"
}

# Runs "$@" under the workload timeout, records the outcome in RC.
timed() { timeout -k 10 "$WL_TIMEOUT" "$@"; RC=$?; }

# One measured workload on a fresh mount: mount SYS through the proxy, reset the
# counters, run CMD (a shell string with $M as the mount point), then wait until
# CHECK holds on PREFIX through the S3 API, read the counters, unmount.
# Sets SECS and NOTE.
measure() { # LAT WL SYS N UNIT PREFIX CHECK CMD [EXTRA_S3CFS_OPTS] [DIV]
    local lat=$1 wl=$2 sys=$3 n=$4 unit=$5 prefix=$6 check=$7 cmd=$8 extra=${9:-} div=${10:-$4}
    local t0 t1 st note="" secs
    RSS_MIB=- CPU_S=-
    if ! mount_sys "${sys%% *}" "$P" "$extra"; then
        record "$lat" "$wl" "$sys" "$n" "$unit" FAIL "mount failed"
        return 1
    fi
    reset_stats
    rm -f "$RUN/wl.note"
    t0=$(now)
    export M=$MNT MPID
    timed bash -c "$cmd" 2>"$RUN/wl.err"
    t1=$(now)
    cat "$RUN/wl.err" >&2
    [ -s "$RUN/wl.note" ] && note="$(cat "$RUN/wl.note"); "
    if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
        note="TIMEOUT after ${WL_TIMEOUT}s"
        secs=TIMEOUT
    else
        local wait_s=$WL_TIMEOUT
        if [ "$RC" != 0 ]; then # failed: only look whether S3 gets there anyway
            note="command exit $RC ($(tail -1 "$RUN/wl.err" | tr -d '|' | cut -c1-120)); "
            wait_s=15
        fi
        if [ -n "$prefix" ]; then
            if wait_landed "$prefix" "$check" $(( $(date +%s) + wait_s )); then
                # landed at once: the command's own time; later: the time it was seen
                if [ "$RC" != 0 ]; then
                    secs=FAIL
                    note+="S3 reached the expected state $(fsub "$T_LANDED" "$t1") s after the command returned"
                elif [ "$FIRST" = 0 ]; then
                    secs=$(fsub "$T_LANDED" "$t0")
                    note+="landed $(fsub "$T_LANDED" "$t1") s after the command returned"
                else
                    secs=$(fsub "$t1" "$t0")
                fi
            else
                secs=FAIL
                note+="not landed: S3 has $LAST_OBJS (files bytes keys)"
            fi
        else
            secs=$(fsub "$t1" "$t0")
            [ "$RC" = 0 ] || secs=FAIL
        fi
    fi
    st=$(stats_line "$div" "$OUT/stats.$lat.$wl.${sys// /_}.$n.txt")
    unmount_sys
    record "$lat" "$wl" "$sys" "$n" "$unit" "$secs" "${note%; }" \
        "${st%%|*}" "$(echo "$st" | cut -d'|' -f2)" "$(echo "$st" | cut -d'|' -f3)"
}

# ---------------------------------------------------------------- setup (not measured)

gen_tree() { # DIR NDIRS NPER MIN MAX (sizes in bytes, random content)
    python3 - "$@" <<'EOF'
import os, sys, random
root, ndirs, nper, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(4242)
for d in range(1, ndirs + 1):
    dd = os.path.join(root, "d%03d" % d)
    os.makedirs(dd, exist_ok=True)
    for f in range(1, nper + 1):
        with open(os.path.join(dd, "f%04d" % f), "wb") as fh:
            fh.write(os.urandom(rnd.randint(lo, hi)))
EOF
}
# W8's tree: N files of 1-16 KiB, 5 in every directory at every level, in
# directories 3 levels deep (per top directory: 7 below it, each with its
# own leaves), .c, .h and .txt names
gen_w8() { # DIR N
    python3 - "$@" <<'EOF'
import os, sys, random
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(8888)
dirs = max(1, n // 5)
top = max(1, round(dirs / 50))
leaves = max(0, (dirs // top - 8) // 7)
paths = []
for t in range(top):
    a = os.path.join(root, "src%02d" % t)
    paths.append(a)
    for m in range(7):
        b = os.path.join(a, "mod%d" % m)
        paths.append(b)
        paths += [os.path.join(b, "sub%d" % l) for l in range(leaves)]
made = 0
for d in paths:
    os.makedirs(d, exist_ok=True)
    for f in range(5):
        if made == n:
            break
        ext = (".c", ".c", ".h", ".txt", ".c")[f]
        with open(os.path.join(d, "file%d%s" % (f, ext)), "wb") as fh:
            fh.write(os.urandom(rnd.randint(1024, 16384)))
        made += 1
EOF
}
# a local tree into the bucket through s3cfs mounted directly on the server,
# one cp -r per directory, PAR at a time (faster than aws s3 sync here)
upload_tree() { # LOCAL_DIR NAME PAR
    local t0 t1
    t0=$(now)
    mkdir -p "$MSET/$2" &&
        (cd "$1" && ls | timeout -k 10 3600 xargs -P "$3" -I{} cp -r {} "$MSET/$2/") &&
        timeout 600 sync "$MSET/$2" || { say "upload of $2 failed"; return 1; }
    t1=$(now)
    say "setup: $2 uploaded in $(fsub "$t1" "$t0") s"
}
tree_bytes() { find "$1" -type f -printf '%s\n' | awk '{ b += $1 } END { printf "%.0f\n", b }'; }

declare -A TREE_BYTES
tree_sizes() { # every tree size in use
    { echo "$N_TREE"; for d in $DELAYS; do v=PEER_N_$d; echo "${!v:-200}"; done; } | sort -un
}
say "setup: generating local trees"
want tree && for n in $(tree_sizes); do
    gen_tree "$RUN/local/t$n" $((n / 100)) 100 1024 4096
    TREE_BYTES[$n]=$(tree_bytes "$RUN/local/t$n")
done
want W7 && gen_tree "$RUN/local/w7" $((W7_N / 1000)) 1000 16 256
W7_BYTES=$(want W7 && tree_bytes "$RUN/local/w7")
declare -A W8_FILES W8_BYTES W8_C
w8_sizes() { { echo "$W8_N"; for d in $DELAYS; do v=PEER_N_$d; echo "${!v:-200}"; done; } | sort -un; }
if want W8; then
    for n in $(w8_sizes); do
        gen_w8 "$RUN/local/w8-$n" "$n"
        W8_FILES[$n]=$(find "$RUN/local/w8-$n" -type f | wc -l)
        W8_BYTES[$n]=$(tree_bytes "$RUN/local/w8-$n")
        W8_C[$n]=$(find "$RUN/local/w8-$n" -name '*.c' | wc -l)
    done
fi

mount_sys s3cfs-setup "$DIRECT" || exit 1
MSET=$MNT SETPID=$MPID
want tree && for n in $(tree_sizes); do upload_tree "$RUN/local/t$n" "t$n" 8 || exit 1; done
if want W8; then
    for n in $(w8_sizes); do upload_tree "$RUN/local/w8-$n" "w8-$n" 8 || exit 1; done
fi
if want W9; then # a plain writer: the flat directory never goes through a mount
    say "setup: W9's $W9_N objects under w9/"
    timeout -k 10 1800 "$CEILING" --endpoint "$DIRECT" --bucket "$BUCKET" --objects "$W9_N" --size 16 \
        --inflight 64 --put-only --prefix w9/f --seconds-max 1700 >"$OUT/w9-setup.txt" 2>&1 ||
        { say "W9 setup failed: $(tail -2 "$OUT/w9-setup.txt")"; exit 1; }
fi
SETUP_W7_T0=$(now) SETUP_W7_S=0
want W7 && { upload_tree "$RUN/local/w7" w7src 32 || exit 1; }
want W7 && SETUP_W7_S=$(fsub "$(now)" "$SETUP_W7_T0")
want tree && for n in $(tree_sizes); do
    o=$(objs "t$n/")
    [ "${o% *}" = "$n ${TREE_BYTES[$n]}" ] || { say "tree t$n incomplete on the server: $o"; exit 1; }
done
rm -rf "$RUN/local/w7"
say "setup: W7 source of $W7_N files uploaded in $SETUP_W7_S s ($(awk -v n="$W7_N" -v s="$SETUP_W7_S" 'BEGIN{printf "%.0f", n/s}') files/s)"
want W5 && head -c $((W5_MIB << 20)) /dev/urandom >"$RUN/local/big"
if want W6; then
    say "setup: W6 peers' source ($W6_PEER_MIB MiB)"
    head -c $((W6_PEER_MIB << 20)) /dev/urandom >"$MSET/w6peer" && timeout 600 sync "$MSET/w6peer" || exit 1
fi
MPID=$SETPID MNT=$MSET unmount_sys

# ---------------------------------------------------------------- the workloads

ok_files() { [ "$1" = "$WANT_N" ] && [ "$2" = "$WANT_B" ]; } # files bytes all
ok_empty() { [ "$3" = 0 ]; }
ok_size() { [ "$1" = 1 ] && [ "$2" = "$WANT_B" ]; }

# W1-W4 on a tree of N files for SYS; EXTRA (s3cfs options) for a variant
tree_workloads() { # LAT SYS N [LABEL_SUFFIX EXTRA]
    local lat=$1 sys=$2 n=$3 label=$2${4:-} extra=${5:-} dst
    local fin=""
    case $sys in s3cfs*) fin=' && sync "$M"' ;; esac
    dst=c-${label// /_}-$lat-$n
    dst=${dst//[^A-Za-z0-9_.-]/_}
    WANT_N=$n WANT_B=${TREE_BYTES[$n]}
    measure "$lat" W1 "$label" "$n" files "$dst/" ok_files "cp -r \"\$M/t$n\" \"\$M/$dst\"$fin" "$extra"
    [ "${4:-}" = " max_inflight=1" ] && return # the seed row: W1 only
    measure "$lat" W2 "$label" "$n" files "$dst-mv/" ok_files "mv \"\$M/$dst\" \"\$M/$dst-mv\"$fin" "$extra"
    o=$(objs "$dst/")
    [ "${o##* }" = 0 ] || say "W2 $label: $o objects left under the old name $dst/"
    measure "$lat" W3 "$label" "$n" files "$dst-mv/" ok_empty "rm -r \"\$M/$dst-mv\"$fin" "$extra"
    S3CD rmr "$BUCKET" "$dst/" >/dev/null 2>&1
    S3CD rmr "$BUCKET" "$dst-mv/" >/dev/null 2>&1
    measure "$lat" W4 "$label" "$n" files "" "" "test \$(ls -lR \"\$M/t$n\" | grep -c '^-') = $n" "$extra"
    [ "$sys" = s3cfs ] && [ -z "$extra" ] &&
        measure "$lat" W4 "s3cfs listing_attrs_only" "$n" files "" "" \
            "test \$(ls -lR \"\$M/t$n\" | grep -c '^-') = $n" listing_attrs_only
}

# W8 on the source-shaped tree of N files for SYS
w8_workloads() { # LAT SYS N
    local lat=$1 sys=$2 n=$3 fin="" dst=w8c-$2-$1-$3 src
    case $sys in s3cfs*) fin=' && sync "$M"' ;; esac
    src=w8-$n
    WANT_N=${W8_FILES[$n]} WANT_B=${W8_BYTES[$n]}
    measure "$lat" W8-cp "$sys" "$WANT_N" files "$dst/" ok_files "cp -r \"\$M/$src\" \"\$M/$dst\"$fin"
    measure "$lat" W8-mv "$sys" "$WANT_N" files "$dst-mv/" ok_files "mv \"\$M/$dst\" \"\$M/$dst-mv\"$fin"
    measure "$lat" W8-rm "$sys" "$WANT_N" files "$dst-mv/" ok_empty "rm -r \"\$M/$dst-mv\"$fin"
    S3CD rmr "$BUCKET" "$dst/" >/dev/null 2>&1
    S3CD rmr "$BUCKET" "$dst-mv/" >/dev/null 2>&1
    measure "$lat" W8-ls "$sys" "$WANT_N" files "" "" "test \$(ls -lR \"\$M/$src\" | grep -c '^-') = $WANT_N"
    measure "$lat" W8-find "$sys" "$WANT_N" files "" "" \
        "test \$(find \"\$M/$src\" -name '*.c' | wc -l) = ${W8_C[$n]}"
    measure "$lat" W8-du "$sys" "$WANT_N" files "" "" "du -s \"\$M/$src\" >/dev/null"
}

# W9 on the flat directory: one listing command, the time to its first line
# in the note (first-output.py between the listing and the rest)
w9_one() { # LAT SYS WL PIPE_HEAD PIPE_TAIL CHECK_EXPR
    local t="$RUN/w9.first"
    measure "$1" "$3" "$2" "$W9_N" files "" "" \
        "$4 | python3 \"$ROOT/tests/bench/first-output.py\" \"$t\" | $5 >\"$RUN/w9.out\"; $6 && \
         awk -v t0=\$(cat \"$RUN/w9.t0\") '{ printf \"first name after %.2f s\", \$1 - t0 }' \"$t\" >\"$RUN/wl.note\""
}
w9_workloads() { # LAT SYS
    local lat=$1 sys=$2 pre="date +%s.%N >\"$RUN/w9.t0\"; cd \"\$M/w9\" &&"
    w9_one "$lat" "$sys" W9-head "$pre ls" "head -20" "test \$(wc -l <\"$RUN/w9.out\") = 20"
    w9_one "$lat" "$sys" W9-count "$pre ls" "wc -l" "test \$(cat \"$RUN/w9.out\") = $W9_N"
    w9_one "$lat" "$sys" W9-ls-l "$pre ls -l" "tail -1" "grep -q f \"$RUN/w9.out\""
    w9_one "$lat" "$sys" W9-find "$pre find ." "wc -l" "test \$(cat \"$RUN/w9.out\") = $((W9_N + 1))"
}

w5() { # LAT SYS
    local lat=$1 sys=$2 key=big-$2-$1
    WANT_B=$((W5_MIB << 20))
    # as cp does (1 MiB writes), timing close and sampling the daemon's staging
    measure "$lat" W5-write "$sys" "$W5_MIB" MiB "$key" ok_size \
        "python3 \"$ROOT/tests/bench/w5-writer.py\" \"$RUN/local/big\" \"\$M/$key\" \"\$MPID\" \"$RUN/wl.note\"" "" 1
    [ "$sys" = s3cfs ] && measure "$lat" W5-write "s3cfs nostream" "$W5_MIB" MiB "$key-ns" ok_size \
        "python3 \"$ROOT/tests/bench/w5-writer.py\" \"$RUN/local/big\" \"\$M/$key-ns\" \"\$MPID\" \"$RUN/wl.note\"" nostream 1
    measure "$lat" W5-read "$sys" "$W5_MIB" MiB "" "" \
        "test \$(dd if=\"\$M/$key\" bs=1M 2>/dev/null | wc -c) = $WANT_B" "" 1
    S3CD rm "$BUCKET" "$key" >/dev/null 2>&1
    S3CD rm "$BUCKET" "$key-ns" >/dev/null 2>&1
}

w6_s3cfs() { # LAT: the configured sizes in turn until one works
    local lat=$1 mib rc
    for mib in $W6_MIB; do
        say "W6 setup: a $mib MiB source (free: $(free -g | awk '/^Mem/ {print $7}') GiB)"
        local ok=1
        if mount_sys s3cfs-setup "$DIRECT"; then
            timeout 1800 bash -c "head -c $((mib << 20)) /dev/urandom >\"$MNT/w6src\" && sync \"$MNT/w6src\"" ||
                { rc=$?; ok=0; say "W6 setup: writing the source failed (exit $rc)"; }
            unmount_sys
        else ok=0; fi
        WANT_B=$((mib << 20))
        [ $ok = 1 ] && say "W6 setup: the server has (files bytes keys) $(objs w6src)"
        # shellcheck disable=SC2046
        if [ $ok = 1 ] && ok_size $(objs w6src); then
            measure "$lat" W6 s3cfs "$mib" MiB w6big-dst ok_size 'cp "$M/w6src" "$M/w6big-dst" && sync "$M"' "" 1
        else
            RSS_MIB=- CPU_S=-
            record "$lat" W6 s3cfs "$mib" MiB FAIL "could not write the $mib MiB source"
        fi
        S3CD rm "$BUCKET" w6src >/dev/null 2>&1
        S3CD rm "$BUCKET" w6big-dst >/dev/null 2>&1
        sleep 15 # radosgw's garbage collection frees the memstore
        tail -1 "$RES" | cut -f6 | grep -q '^[0-9]' && break
    done
}

w6_peer() { # LAT SYS
    local fin=""
    case $2 in s3cfs*) fin=' && sync "$M"' ;; esac
    WANT_B=$((W6_PEER_MIB << 20))
    measure "$1" W6 "$2" "$W6_PEER_MIB" MiB "w6dst-$2" ok_size "cp \"\$M/w6peer\" \"\$M/w6dst-$2\"$fin" "" 1
    S3CD rm "$BUCKET" "w6dst-$2" >/dev/null 2>&1
}

w7() { # LAT
    WANT_N=$W7_N WANT_B=$W7_BYTES
    WL_TIMEOUT=$W7_TIMEOUT measure "$1" W7 s3cfs "$W7_N" files w7dst/ ok_files 'cp -r "$M/w7src" "$M/w7dst" && sync "$M/w7dst"'
    # the copy stays: deleting it takes minutes and touches no other workload's keys
}

ceiling() { # LAT: bench_copy_rate 1 and 64 in flight, 2000 objects of the tree's mean size
    local lat=$1
    say "ceiling: bench_copy_rate through the $lat ms proxy"
    timeout -k 10 $((WL_TIMEOUT + 200)) "$CEILING" --endpoint "$P" --bucket ceiling --objects "$N_TREE" \
        --size 2560 --inflight 1,64 --head-copy 64 --seconds-max "$WL_TIMEOUT" --prefix "c$lat/" \
        --proxy-stats "$P/__proxy/stats" >"$OUT/ceiling-$lat.txt" 2>&1
    cat "$OUT/ceiling-$lat.txt"
    local l s
    for l in 1 64; do
        read -r s < <(awk -v l="inflight=$l" '$1 == "copyobject" && $2 == l {
            for (i = 3; i <= NF; i++) { if ($i ~ /^seconds=/) s = substr($i, 9); if ($i ~ /^rate=/) r = substr($i, 6) }
            print s }' "$OUT/ceiling-$lat.txt")
        RSS_MIB=- CPU_S=-
        record "$lat" W1 "ceiling: plain client, $l in flight" "$N_TREE" files "${s:-FAIL}" "CopyObject of 2560 B objects" \
            "CopyObject 1" - -
    done
    # the same mix as cp -r: per file the source's HEAD, then its CopyObject
    s=$(awk '$1 == "headcopy" && $2 == "inflight=64" { for (i = 3; i <= NF; i++) if ($i ~ /^seconds=/) print substr($i, 9) }' \
        "$OUT/ceiling-$lat.txt")
    RSS_MIB=- CPU_S=-
    record "$lat" W1 "ceiling: plain client, HEAD+Copy, 64 in flight" "$N_TREE" files "${s:-FAIL}" \
        "HeadObject + CopyObject per 2560 B object" "HeadObject 1, CopyObject 1" - -
}

# FN LAT SYS N for every system: s3cfs on the full tree (and on the peers'
# size too, for the ratio), the peers on theirs
each_system() { # FN LAT FULL_N PEER_N
    local fn=$1 lat=$2 full=$3 peer=$4 sys
    for sys in $SYSTEMS; do
        if [ "$sys" = s3cfs ]; then
            "$fn" "$lat" s3cfs "$full"
            [ "$peer" != "$full" ] && "$fn" "$lat" s3cfs "$peer"
        else
            "$fn" "$lat" "$sys" "$peer"
        fi
    done
}
for lat in $DELAYS; do
    P=${PROXY[$lat]}
    v=PEER_N_$lat
    peer_n=${!v:-200}
    say "==================== latency $lat ms ===================="
    want ceiling && ceiling "$lat"
    want tree && tree_workloads "$lat" s3cfs "$N_TREE" " max_inflight=1" max_inflight=1
    want tree && each_system tree_workloads "$lat" "$N_TREE" "$peer_n"
    want W8 && each_system w8_workloads "$lat" "$W8_N" "$peer_n"
    want W9 && for sys in $SYSTEMS; do w9_workloads "$lat" "$sys"; done
    want W5 && for sys in $SYSTEMS; do w5 "$lat" "$sys"; done
    if [ "$lat" = "$W6_DELAY" ] && want W6; then
        for sys in $SYSTEMS; do
            if [ "$sys" = s3cfs ]; then w6_s3cfs "$lat"; w6_peer "$lat" s3cfs; else w6_peer "$lat" "$sys"; fi
        done
    fi
    if [ "$lat" = "$W7_DELAY" ] && want W7; then
        case " $SYSTEMS " in *" s3cfs "*) w7 "$lat" ;; esac
    fi
done

# ---------------------------------------------------------------- report

say "total run time $(( $(date +%s) - T_START )) s"
{
    echo "# s3cfs benchmark $(date -u +%Y-%m-%dT%H:%MZ) ($( [ $QUICK = 1 ] && echo quick || echo full ))"
    echo
    echo "W7 source tree setup: $W7_N files in $SETUP_W7_S s through s3cfs mounted directly (32 parallel cp -r, one per directory of 1000)"
    echo
    python3 - "$RES" <<'EOF'
import sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
K = ["lat", "wl", "sys", "n", "unit", "secs", "rate", "reqs", "up", "down", "rss", "cpu", "note"]
rows = [dict(zip(K, r)) for r in rows]
def num(x):
    try: return float(x)
    except ValueError: return None
def ceiling(lat):
    for r in rows:
        if r["lat"] == lat and r["sys"] == "ceiling: plain client, 64 in flight": return num(r["rate"])
for lat in dict.fromkeys(r["lat"] for r in rows):
    print(f"## Through the proxy at {lat} ms\n")
    print("| workload | system | size | seconds | rate | % of ceiling | requests per file (by kind) | MiB up / down | peak RSS MiB | daemon CPU s | s3cfs ÷ this | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ceil = ceiling(lat)
    for r in rows:
        if r["lat"] != lat: continue
        unit = r["unit"]
        rate = num(r["rate"])
        ratestr = f'{rate:.1f} {"files" if unit == "files" else "MiB"}/s' if rate else "-"
        pct = "-"
        if ceil and rate and r["wl"] in ("W1", "W2", "W7") and not r["sys"].startswith("ceiling"):
            pct = f"{100 * rate / ceil:.0f} %"
        ratio = "-"
        if rate and not r["sys"].startswith("s3cfs") and not r["sys"].startswith("ceiling"):
            for s in rows:
                if s["lat"] == lat and s["wl"] == r["wl"] and s["sys"] == "s3cfs" and s["n"] == r["n"] and num(s["rate"]):
                    ratio = f'{num(s["rate"]) / rate:.1f}×'
        reqs = r["reqs"] if unit == "files" or r["reqs"] == "-" else r["reqs"] + " (counts)"
        size = f'{r["n"]} files' if unit == "files" else f'{r["n"]} MiB'
        print(f'| {r["wl"]} | {r["sys"]} | {size} | {r["secs"]} | {ratestr} | {pct} | {reqs} | {r["up"]} / {r["down"]} | {r["rss"]} | {r["cpu"]} | {ratio} | {r["note"]} |')
    print()
EOF
    echo "Options:"
    echo
    echo "- s3cfs: \`s3cfs -f -o endpoint=PROXY,${S3CFS_OPTS//$RUN/RUN} bench MNT\` (all else default: max_inflight=64)"
    echo "- s3fs: \`s3fs bench MNT -f -o ${S3FS_OPTS//$RUN/RUN},url=PROXY\`"
    echo "- rclone: \`rclone --config RUN/rclone.conf mount rgw:bench MNT --s3-endpoint PROXY --vfs-cache-mode off|writes --cache-dir RUN/rclone-cache ${RCLONE_OPTS[*]}\` (remote: type s3, provider Ceph, keys in the 0600 config)"
} >"$OUT/tables.md"
echo
cat "$OUT/tables.md"
