#!/bin/bash
# s3cfs-ctl against a real mount (doc/DESIGN.md §3.7-3.8): status during a cp -r,
# wait returning only once every copy landed (checked through the S3 API),
# the progress bar on a terminal and silence without one, a failed copy
# listed by wait (exit 1) and errors, a client killed mid-wait, other users
# refused, a directory that is no mount, and the final drain after SIGTERM.
#
# The setup writes one tree of N files, src, to the shared mount: cases only
# read it and copy it to names of their own. Each case leaves the mount idle
# (settle: the proxy's faults and delays off, every queued job landed), so
# that the next case, and the final unmount, find nothing in flight. The
# SIGTERM case ends its daemon: it mounts the bucket on a mount point and
# journal of its own.
. "$(dirname "$0")/lib.sh"
proxied_setup
N=300

# a field of "s3cfs-ctl status --raw PATH"
field() { "$CTL" status --raw "$2" | awk -v k="$1" '$1==k{print $2}'; }
# objects under a prefix, through the S3 API
count_s3() {
    aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1" --query 'length(Contents || `[]`)'
}
# the proxy as it started: no faults, no delays
faults_off() {
    proxy_config "fault_rate=0&faults=none&fault_kinds=all"
    proxy_config "delay.CopyObject=-1"
}
# settle: what every case that queues jobs does before it returns: faults
# and delays off, then every job queued in the mount landed (or failed for
# good), so that nothing is left in flight for the next case or the unmount
settle() {
    faults_off
    "$CTL" wait -t 120 "$MNT" >/dev/null 2>&1
    [ $? -ne 3 ] || bad "${FUNCNAME[1]#case_}: jobs still pending in $MNT 120 s after the case"
}
# for wait_until: KEY is among the mount's failed jobs
failure_listed() { "$CTL" errors "$MNT" | grep -q "$1"; }
# for wait_until: PID (an s3cfs-ctl) is connected to the daemon (a unix
# socket in state connected) and asleep: waiting for the answer
client_waiting() {
    local ino
    [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" == S ] || return 1
    for ino in $(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n'); do
        awk -v i="$ino" '$7 == i && $6 == "03" {f = 1} END {exit !f}' /proc/net/unix && return 0
    done
    return 1
}
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# cp_slow NAME MS: each CopyObject delayed by MS, cp -r of src to NAME
cp_slow() {
    proxy_config "delay.CopyObject=$2"
    cp -r "$MNT/src" "$MNT/$1"
}

mkdir -p "$WORK/tree"
for i in $(seq 1 $N); do echo "file $i" >"$WORK/tree/f$i"; done
cp -r "$WORK/tree" "$MNT/src" || { echo "cannot write the tree src" >&2; exit 2; }
landed

# status of an idle mount, from the mount point and from inside it
case_status_idle() {
    landed # nothing queued: the idle state the checks expect
    check "status of the mount" "$CTL" status "$MNT"
    check_eq "status: nothing pending when idle" 0 "$(field jobs_pending "$MNT")"
    check_eq "status: the mount found from a path inside it" "$MNT" "$(field mount "$MNT/src/f1")"
    check_eq "status: from a relative path" "$MNT" \
        "$(cd "$MNT/src" && "$CTL" status --raw | awk '$1=="mount"{print $2}')"
    check_eq "status of a subdirectory: its pending jobs" 0 "$(field path_pending "$MNT/src")"
}

# a directory that is no mount, a command that does not exist
case_not_a_mount_unknown_command() {
    check_err "status of a directory that is not a mount" "is not in an s3cfs mount" "$CTL" status "$WORK"
    check_err "an unknown command" "unknown command" "$CTL" frobnicate "$MNT"
}

# status while a cp -r runs: jobs queued and in flight
case_status_during_cp_r() {
    local cp_pid busy=0 q r n
    cp_slow busy 100 &
    cp_pid=$!
    while kill -0 $cp_pid 2>/dev/null; do
        q=$(field jobs_queued "$MNT")
        r=$(field jobs_running "$MNT")
        n=$((${q:-0} + ${r:-0}))
        [ "$n" -gt "$busy" ] && busy=$n
        sleep 0.05 # the sampling interval, not a wait for a condition
    done
    wait $cp_pid
    check "status during cp -r: jobs queued or in flight ($busy)" test "$busy" -gt 0
    check "status during cp -r: human-readable form" bash -c "'$CTL' status '$MNT' | grep -q 'in flight'"
    settle
}

# wait DIR returns once every copy landed: all of them are in S3 right away
case_wait_dir() {
    local st
    cp_slow waited 100
    "$CTL" wait "$MNT/waited" 2>"$WORK/wait.err"
    st=$?
    check_eq "wait DIR: exit 0" 0 $st
    check_eq "wait DIR: every object in S3 when it returns" $N "$(count_s3 waited/f)"
    check_eq "wait DIR: nothing on stderr without a terminal" "" "$(cat "$WORK/wait.err")"
    check_eq "wait DIR: nothing pending below it" 0 "$(field path_pending "$MNT/waited")"
    settle
}

# slower copies: on a terminal (script gives one) a progress bar is drawn
case_wait_progress_bar() {
    local pending st
    cp_slow bar 1000
    pending=$(field path_pending "$MNT/bar")
    check "after cp -r returned, copies are pending below it ($pending)" test "${pending:-0}" -gt 0
    script -qec "'$CTL' wait '$MNT/bar'" "$WORK/tty.out" >/dev/null 2>&1
    st=$?
    check_eq "wait on a terminal: exit 0" 0 $st
    check_eq "then every object is in S3" $N "$(count_s3 bar/f)"
    check "wait on a terminal: a progress bar was drawn" grep -q "jobs landed" "$WORK/tty.out"
    # the bar counts what was pending when wait started (copies that landed
    # while cp -r was still running are not in it)
    check "the bar moved" grep -qE "\[#+-+\] [0-9]+/[0-9]+ jobs landed" "$WORK/tty.out"
    check "the bar ends full" grep -qE "#\] ([0-9]+)/\1 jobs landed" "$WORK/tty.out"
    settle
}

# wait -q: no bar even on a terminal; and the older form of wait
case_wait_quiet() {
    local st
    cp_slow quiet 300
    script -qec "'$CTL' wait -q '$MNT/quiet'" "$WORK/tty-q.out" >/dev/null 2>&1
    st=$?
    check_eq "wait -q on a terminal: exit 0" 0 $st
    check_not "wait -q on a terminal: no progress bar" grep -q "jobs landed" "$WORK/tty-q.out"
    check_eq "then every object is in S3" $N "$(count_s3 quiet/f)"
    check "the older form: wait PATH MOUNTPOINT" "$CTL" wait "$MNT/quiet" "$MNT"
    settle
}

# a client that goes away mid-wait costs the daemon nothing
case_client_killed_mid_wait() {
    local w_pid
    cp_slow killed 1000
    "$CTL" wait "$MNT/killed" 2>/dev/null &
    w_pid=$!
    disown $w_pid # no "Killed" notice from the shell
    # let it get into its wait (was: sleep 0.3)
    wait_until 10 client_waiting $w_pid
    kill -9 $w_pid
    wait_until 5 not_running $w_pid
    check "status after a client was killed mid-wait" "$CTL" status "$MNT"
    check "wait after that" "$CTL" wait "$MNT/killed"
    check_eq "and the copies landed" $N "$(count_s3 killed/f)"
    settle
}

# a copy that fails for good: wait exits 1 listing it, errors lists it
case_failed_copy_reported() {
    local st
    mkdir "$MNT/other" || { bad "cannot mkdir other"; return; }
    proxy_config "delay.CopyObject=-1&fault_rate=1&faults=500&fault_kinds=CopyObject"
    mkdir "$MNT/fail"
    cp "$MNT/src/f1" "$MNT/fail/bad1"
    cp "$MNT/src/f2" "$MNT/other/ok-elsewhere" # failing too, but not below fail/
    "$CTL" wait "$MNT/fail" >"$WORK/fail.out" 2>&1
    st=$?
    # the faults stay on until the other copy failed for good too
    wait_until 60 failure_listed ok-elsewhere
    faults_off
    check_eq "wait on a failed copy: exit 1" 1 "$st"
    check "wait lists the failed key" grep -q "$BUCKET/fail/bad1: " "$WORK/fail.out"
    check_not "wait lists only failures below its path" grep -q "ok-elsewhere" "$WORK/fail.out"
    "$CTL" errors "$MNT" >"$WORK/errors.out" 2>&1
    st=$?
    check_eq "errors: exit 0" 0 $st
    check "errors lists the failed key with its message" \
        grep -q "^$BUCKET/fail/bad1: copy from $BUCKET/src/f1" "$WORK/errors.out"
    check "errors lists the other failure too" grep -q "^$BUCKET/other/ok-elsewhere: " "$WORK/errors.out"
    check_not "errors PATH: only below PATH" bash -c "'$CTL' errors '$MNT/fail' | grep -q ok-elsewhere"
    check "status counts the failures" test "$(field jobs_failed "$MNT")" -ge 2
    # wait reported (and cleared) fail/'s error, as fsync would: a later sync
    # of fail/ no longer returns it; other/'s error is still there for its sync
    check "after wait reported it, sync of the directory succeeds" sync "$MNT/fail"
    check_not "the failure not yet reported is returned by sync" sync "$MNT/other"
    settle
}

# other users: refused by the socket's directory, and by the daemon itself
# (SO_PEERCRED) for one that could get past the directory
case_other_users_refused() {
    mkdir -p "$WORK/bin"
    cp "$CTL" "$WORK/bin/s3cfs-ctl"
    chmod 711 "$WORK"
    chmod 755 "$WORK/bin"
    check_err "nobody: status is refused" "permission denied" as_nobody "$WORK/bin/s3cfs-ctl" status "$MNT"
    check_err "nobody: wait is refused" "permission denied" as_nobody "$WORK/bin/s3cfs-ctl" wait "$MNT"
    if as_nobody --inh-caps=+dac_override --ambient-caps=+dac_override true 2>/dev/null; then
        check_err "nobody past the directory: refused by the daemon" \
            "only uid 0 (who mounted it) and root" \
            as_nobody --inh-caps=+dac_override --ambient-caps=+dac_override \
            "$WORK/bin/s3cfs-ctl" status "$MNT"
    fi
    chmod 700 "$WORK"
}

# SIGTERM during a cp -r: the mount goes, the daemon lands the rest and
# s3cfs-ctl can still watch it through the old mount point. A daemon of its
# own (the shared one serves the other cases), started outside the shared
# mount: s3cfs -f keeps the directory it starts in, which would keep that
# mount busy
case_sigterm_final_drain() {
    local m=$WORK/sigterm pid left st
    cd / || return
    mount_fs "$m" "$BUCKET" -o "endpoint=$PROXY,journal_dir=$m.journal" || { bad "cannot mount $m"; return; }
    pid=$(mount_pid "$m")
    proxy_config "delay.CopyObject=1000"
    cp -r "$m/src" "$m/drained"
    kill -TERM "$pid"
    wait_until 10 not_mounted "$m"
    check_not "after SIGTERM the mount is gone" mountpoint -q "$m"
    left=$(field jobs_pending "$m")
    check "status during the final drain: jobs still pending (${left:-none})" test "${left:-0}" -gt 0
    check "wait during the final drain" "$CTL" wait "$m"
    check_eq "every copy landed" $N "$(count_s3 drained/f)"
    wait_until 30 not_running "$pid"
    check_not "the daemon exited" kill -0 "$pid"
    kill -9 "$pid" 2>/dev/null # one that did not exit: wait must not block
    wait "$pid"
    st=$?
    forget_mount "$m"
    faults_off
    check_eq "SIGTERM: the daemon drained and exited cleanly" 0 "$st"
    check_err "status once it exited" "not in an s3cfs mount" "$CTL" status "$m"
    check_not "no sanitizer report" grep -qE 'Sanitizer|runtime error' "$WORK/s3cfs.log"
}

run_cases "$@"
