# Shared helpers for the filesystem tests: a real s3cfs mount (FUSE) on a
# fresh bucket of the test server, checks through the mount and through the
# AWS CLI, a pass/fail tally, and a runner of named cases. Source it; call
# fs_setup (or proxied_setup) first.
#
# Cases. A test is a set of functions named case_NAME, each checking one
# thing on its own, and ends with `run_cases "$@"` (which also reports and
# exits, like fs_done). The runner runs them in the order the script
# defines them, in the same shell, each starting in $MNT (or $WORK when
# there is no mount), each with its own time limit (CASE_TIMEOUT seconds,
# 300 by default; `case_timeout NAME SECONDS` sets one case's). A case that
# runs out of time has its commands killed and counts as a failure; the
# other cases still run. A case must not `exit`: it returns. The watchdog
# can kill only processes: a case stuck in the test shell itself (a builtin
# `read` from a fifo, a busy loop) is given CASE_GRACE more seconds (30),
# then the whole script is ended (failing, its EXIT trap cleaning up).
#   bash test_fs_x.sh --list          the case names (no server needed)
#   bash test_fs_x.sh NAME [NAME...]  only these cases (also S3CFS_CASES="A B",
#                                     as in: S3CFS_CASES=A ctest -R test_fs_x);
#                                     an unknown name fails before any setup
# Outside ctest, run a script under tests/integration/with-server.sh, which
# starts the server and sets the environment below.
#
# Environment (from with-server.sh): S3_ENDPOINT, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY; S3CFS_BIN (the s3cfs binary), S3CFS_S3C (the s3c
# client), S3CFS_PROXY (the proxy).
set -uo pipefail

# the case functions in the order the script defines them
case_names() {
    grep -oE '^case_[A-Za-z0-9_]+ *\(\)' "$0" | sed -E 's/^case_([A-Za-z0-9_]+).*/\1/'
}
# before any setup (sourced, this file sees the script's arguments): --list
# needs no server, and a name that is no case fails at once
case_args_check() {
    local n all
    all=" $(case_names | tr '\n' ' ') "
    [ "${1:-}" == "--list" ] && { case_names; exit 0; }
    [ $# -eq 0 ] && [ -n "${S3CFS_CASES:-}" ] && set -- $S3CFS_CASES
    for n in "$@"; do
        [[ $all == *" $n "* ]] || { echo "FAIL - no case named $n (--list shows them)"; exit 2; }
    done
}
# a script with no case runs as a plain script (fs_done)
[ -z "$(case_names)" ] || case_args_check "$@"

: "${S3CFS_BIN:?run through ctest (S3CFS_BIN unset)}" "${S3CFS_S3C:?}" "${S3CFS_PROXY:?}" "${S3_ENDPOINT:?}"
PASS=0
FAIL=0
T_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/s3cfs-$T_NAME.XXXXXX")
MOUNTS=()
PIDS=()

aws_() { aws --endpoint-url "$S3_ENDPOINT" "$@"; }
s3c() { "$S3CFS_S3C" "$@"; }

ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: passes when the command succeeds
check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi; }
# check_not DESCRIPTION COMMAND...: passes when the command fails
check_not() { local d=$1; shift; if "$@" >/dev/null 2>&1; then bad "$d"; else ok "$d"; fi; }
# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
    if [ "$2" == "$3" ]; then ok "$1"; else bad "$1: expected [$2], got [$3]"; fi
}
# the errno text a command printed, e.g. check_err "x" "File exists" mkdir d
check_err() {
    local d=$1 want=$2 out
    shift 2
    out=$("$@" 2>&1) && { bad "$d: succeeded, expected '$want'"; return; }
    case $out in *"$want"*) ok "$d" ;; *) bad "$d: expected '$want', got: $out" ;; esac
}

new_bucket() {
    local b
    b="s3cfs-$(echo "$T_NAME" | tr '_' '-')-$$-$RANDOM"
    s3c mb "$b" >/dev/null || { echo "cannot create bucket $b" >&2; exit 2; }
    echo "$b"
}

# mount_fs DIR [ARGS...]: mount in the foreground in the background, wait
# until it answers; extra ARGS go to s3cfs (e.g. a bucket spec, -o opts).
mount_fs() {
    local dir=$1
    shift
    mkdir -p "$dir"
    "$S3CFS_BIN" -f -o "endpoint=$S3_ENDPOINT,attr_ttl=1,dir_ttl=1" "$@" "$dir" \
        >>"$WORK/s3cfs.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do
        mountpoint -q "$dir" && { MOUNTS+=("$dir"); PIDS+=("$pid"); echo "$pid" >>"$WORK/.pids"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "mount of $dir failed:" >&2
    tail -5 "$WORK/s3cfs.log" >&2
    return 1
}

unmount_fs() {
    local dir=$1 i st
    case $PWD/ in "$dir"/*) cd / ;; esac # a case starts in $MNT: not busy
    fusermount3 -u "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null
    for i in "${!MOUNTS[@]}"; do
        if [ "${MOUNTS[$i]}" == "$dir" ]; then
            # up to 60 s: an ASan daemon draining on a loaded machine took over 15
            for _ in $(seq 1 600); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
            kill -9 "${PIDS[$i]}" 2>/dev/null
            wait "${PIDS[$i]}" 2>/dev/null
            st=$?
            # the daemon must end cleanly: no crash, no sanitizer report
            if [ $st -ne 0 ] || grep -qE 'Sanitizer|runtime error' "$WORK/s3cfs.log"; then
                bad "s3cfs for $dir exited with status $st"
                grep -E -A12 'Sanitizer|runtime error' "$WORK/s3cfs.log" | head -40
                grep -E 'error|fuse' "$WORK/s3cfs.log" | tail -15
            fi
            unset 'MOUNTS[i]' 'PIDS[i]'
        fi
    done
}

fs_cleanup() {
    local m
    cd / # a shell inside the mount keeps it busy
    for m in "${MOUNTS[@]}"; do [ -n "$m" ] && unmount_fs "$m"; done
    for m in "${PIDS[@]}"; do kill "$m" 2>/dev/null; done
    rm -rf "$WORK"
}

# unmount everything and report: the last step of every test
fs_finish() {
    local m
    cd /
    for m in "${MOUNTS[@]}"; do [ -n "$m" ] && unmount_fs "$m"; done
}

fs_setup() {
    trap fs_cleanup EXIT
    BUCKET=$(new_bucket)
    MNT=$WORK/mnt
    MNT_ARGS=("$@")
    mount_fs "$MNT" "$BUCKET" "$@" || exit 2
}

# remount [ARGS...]: unmount $MNT and mount the same bucket there again
# (with ARGS; without, with those fs_setup or proxied_setup mounted it
# with), then cd into it: what a fresh daemon reads from S3
MNT_ARGS=()
remount() {
    [ $# -eq 0 ] && set -- "${MNT_ARGS[@]}"
    cd / && unmount_fs "$MNT"
    mount_fs "$MNT" "$BUCKET" "$@" || { bad "remount of $MNT failed"; return 1; }
    cd "$MNT" || return 1
}

# fsync of the mount's top directory: returns when every queued copy and
# delete has landed (doc/DESIGN.md §3.7), so the S3 API sees the result
landed() { sync "${1:-$MNT}"; }

# the object's bytes through the S3 API, compared with a local file
same_in_s3() { # KEY FILE
    aws_ s3 cp --quiet "s3://$BUCKET/$1" "$WORK/.s3copy" && cmp -s "$WORK/.s3copy" "$2"
}

# the object's user metadata field, through the S3 API
meta_of() { # KEY FIELD
    aws_ s3api head-object --bucket "$BUCKET" --key "$1" --query "Metadata.$2" --output text
}

fs_done() {
    fs_finish
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}

# private_syslog: catch what a daemon (s3cfs without -f) sends to syslog in
# $SYSLOG. Run it in a private mount namespace (the test re-executes itself
# under `unshare --mount --propagation private`, see test_fs_daemon.sh): it
# puts a tmpfs on /dev holding the device nodes s3cfs uses (bound from the
# real /dev) and a datagram socket /dev/log served by a small listener.
# Nothing on the host changes; private_syslog_end before WORK is removed.
SYSLOG_NODES=(fuse null zero urandom random full tty)
private_syslog() {
    local n
    # each node is bound on its own (never all of /dev into WORK: removing
    # WORK must not be able to reach the host's /dev)
    for n in "${SYSLOG_NODES[@]}"; do
        [ -e "/dev/$n" ] || continue
        touch "$WORK/node-$n" && mount --bind "/dev/$n" "$WORK/node-$n" || exit 2
    done
    mount -t tmpfs -o mode=755 tmpfs /dev || exit 2
    for n in "${SYSLOG_NODES[@]}"; do
        [ -e "$WORK/node-$n" ] || continue
        touch "/dev/$n" && mount --bind "$WORK/node-$n" "/dev/$n" || exit 2
    done
    ln -s /proc/self/fd /dev/fd
    SYSLOG=$WORK/syslog
    python3 -u - "$SYSLOG" <<'PY' >/dev/null 2>&1 &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
PY
    PIDS+=($!)
    MOUNTS+=("")
    echo "$!" >>"$WORK/.pids"
    for _ in $(seq 1 50); do [ -S /dev/log ] && break; sleep 0.1; done
    [ -S /dev/log ] || { echo "the syslog listener did not start" >&2; exit 2; }
}
# the host's device nodes are bound into WORK: unbind before it is removed
private_syslog_end() {
    local n
    for n in "${SYSLOG_NODES[@]}"; do umount "$WORK/node-$n" 2>/dev/null; done
}

# wait_until SECONDS COMMAND...: poll every 0.1 s until the command
# succeeds (status 1 if it never does in time). Use it, never a bare sleep,
# to wait for something to happen; a sleep only to let time pass (past a
# cache lifetime, say) says so in a comment. wait_for is the older name.
wait_until() { wait_for "$@"; }
wait_for() {
    local end=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.1
    done
}

# for wait_until: PID has ended; DIR is no mount point
not_running() { ! kill -0 "$1" 2>/dev/null; }
not_mounted() { ! mountpoint -q "$1"; }

# start_proxy [ARGS...]: the fault/latency proxy in front of the server;
# sets PROXY (its URL). proxy_count KIND, proxy_reset, proxy_config QUERY.
start_proxy() {
    "$S3CFS_PROXY" --upstream "${S3_ENDPOINT#http://}" --port-file "$WORK/proxy.port" \
        --quiet --max-seconds 1200 "$@" >/dev/null 2>&1 &
    PIDS+=($!)
    MOUNTS+=("")
    echo "$!" >>"$WORK/.pids"
    for _ in $(seq 1 50); do [ -s "$WORK/proxy.port" ] && break; sleep 0.1; done
    PROXY=http://127.0.0.1:$(cat "$WORK/proxy.port")
}
proxy_count() { curl -s "$PROXY/__proxy/stats" | awk -v k="$1" 'BEGIN{n=0} $1==k{n=$2} END{print n}'; }
proxy_reset() { curl -s -X POST "$PROXY/__proxy/reset" >/dev/null; }
proxy_config() { curl -s -X POST "$PROXY/__proxy/config?$1" >/dev/null; }

# proxied_setup [ARGS...]: the proxy, a fresh bucket mounted through it on
# $MNT with its own journal, and CTL (s3cfs-ctl next to the s3cfs binary)
proxied_setup() {
    CTL=${S3CFS_CTL:-$(dirname "$S3CFS_BIN")/s3cfs-ctl}
    [ -x "$CTL" ] || { echo "no s3cfs-ctl next to $S3CFS_BIN" >&2; exit 2; }
    trap fs_cleanup EXIT
    BUCKET=$(new_bucket)
    start_proxy
    MNT=$WORK/mnt
    MNT_ARGS=(-o "endpoint=$PROXY,journal_dir=$WORK/journal" "$@")
    mount_fs "$MNT" "$BUCKET" "${MNT_ARGS[@]}" || exit 2
}

# mount_pid DIR: the pid of the daemon serving DIR (empty when none)
mount_pid() {
    local i
    for i in "${!MOUNTS[@]}"; do [ "${MOUNTS[$i]}" == "$1" ] && echo "${PIDS[$i]}"; done
}
# forget_mount DIR: stop tracking DIR's daemon without unmounting (after the
# test killed it on purpose); the caller reaps it
forget_mount() {
    local i
    for i in "${!MOUNTS[@]}"; do [ "${MOUNTS[$i]}" == "$1" ] && unset 'MOUNTS[i]' 'PIDS[i]'; done
}

declare -A CASE_LIMIT=()
CASE_TIMEOUT=${CASE_TIMEOUT:-300}
case_timeout() { CASE_LIMIT[$1]=$2; }

CASE_GRACE=${CASE_GRACE:-30}
# the processes of the running case: the test shell's children and all
# their descendants (a pipeline in a command substitution, say), never the
# watchdog (PID ME) nor the daemons and proxies of $WORK/.pids
case_victims() { # PID ME
    local c
    for c in $(pgrep -P "$1"); do
        [ "$c" == "$2" ] && continue
        grep -qx "$c" "$WORK/.pids" 2>/dev/null && continue
        case_victims "$c" "$2"
        echo "$c"
    done
}

# the watchdog of one case: after LIMIT seconds it marks the case timed out
# and then keeps killing the case's processes until the case ends; a case
# still running CASE_GRACE seconds later is stuck in the test shell itself,
# which is then ended
case_watchdog() { # LIMIT FLAG SHELLPID NAME
    local me=$BASHPID end v
    # its sleeps hold no descriptor of the script: a reader of the script's
    # output (a command substitution) must not wait for them
    sleep "$1" >/dev/null 2>&1
    touch "$2"
    end=$((SECONDS + CASE_GRACE))
    while [ -e "$2" ]; do
        v=$(case_victims "$3" "$me")
        # shellcheck disable=SC2086
        [ -n "$v" ] && kill -KILL $v 2>/dev/null
        if [ $SECONDS -ge $end ]; then
            echo "FAIL - $4: still running ${CASE_GRACE} s after its time limit of $1 s," \
                "stuck in the test shell (a builtin?): ending the script"
            kill -TERM "$3"
            return
        fi
        sleep 0.5 >/dev/null 2>&1
    done
}

run_one_case() { # NAME
    local name=$1 limit=${CASE_LIMIT[$1]:-$CASE_TIMEOUT} fail0=$FAIL start=$SECONDS wd flag kids
    flag=$WORK/.timeout.$name
    echo "# case $name"
    # the watchdog starts outside the mount: its working directory would
    # keep the mount busy, and an unmount in the case would not end it
    cd / && case_watchdog "$limit" "$flag" $$ "$name" 2>/dev/null &
    wd=$!
    if [ -n "${MNT:-}" ] && mountpoint -q "$MNT"; then cd "$MNT" || return; else cd "$WORK" || return; fi
    "case_$name"
    # the watchdog first, then its sleep: its sleep killed first, it would go
    # on and mark a case that ended in time as timed out
    kids=$(pgrep -P "$wd")
    kill "$wd" 2>/dev/null
    wait "$wd" 2>/dev/null
    # shellcheck disable=SC2086
    [ -n "$kids" ] && kill $kids 2>/dev/null
    if [ -e "$flag" ]; then
        rm -f "$flag"
        bad "$name: timed out after $limit s (its commands were killed)"
    fi
    cd /
    if [ "$FAIL" -eq "$fail0" ]; then
        echo "# case $name: ok ($((SECONDS - start)) s)"
    else
        echo "# case $name: FAILED ($((FAIL - fail0)) checks, $((SECONDS - start)) s)"
        FAILED_CASES+=("$name")
    fi
}

# run_cases [--list | NAME...]: run the cases (all, or the named ones, or
# those of S3CFS_CASES), then report and exit as fs_done does
FAILED_CASES=()
run_cases() {
    local all n want=("$@")
    mapfile -t all < <(case_names)
    if [ "${1:-}" == "--list" ]; then printf '%s\n' "${all[@]}"; exit 0; fi
    [ ${#want[@]} -eq 0 ] && [ -n "${S3CFS_CASES:-}" ] && read -ra want <<<"$S3CFS_CASES"
    [ ${#want[@]} -eq 0 ] && want=("${all[@]}")
    for n in "${want[@]}"; do
        if ! declare -F "case_$n" >/dev/null; then
            bad "no case named $n (--list shows them)"
            continue
        fi
        run_one_case "$n"
    done
    [ ${#FAILED_CASES[@]} -gt 0 ] && echo "# failed cases: ${FAILED_CASES[*]}"
    fs_done
}
