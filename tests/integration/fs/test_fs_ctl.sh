#!/bin/bash
# s3cfs-ctl against a real mount (doc/DESIGN.md §3.7-3.8): status during a cp -r,
# wait returning only once every copy landed (checked through the S3 API),
# the progress bar on a terminal and silence without one, a failed copy
# listed by wait (exit 1) and errors, a client killed mid-wait, other users
# refused, a directory that is no mount, and the final drain after SIGTERM.
. "$(dirname "$0")/lib.sh"
proxied_setup
N=300

# a field of "s3cfs-ctl status --raw PATH"
field() { "$CTL" status --raw "$2" | awk -v k="$1" '$1==k{print $2}'; }
# objects under a prefix, through the S3 API
count_s3() {
    aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1" --query 'length(Contents || `[]`)'
}
# the daemon's index in lib.sh's MOUNTS/PIDS
daemon_idx() {
    local i
    for i in "${!MOUNTS[@]}"; do [ "${MOUNTS[$i]}" == "$MNT" ] && echo "$i"; done
}

mkdir -p "$WORK/tree"
for i in $(seq 1 $N); do echo "file $i" >"$WORK/tree/f$i"; done
cp -r "$WORK/tree" "$MNT/src"
landed

# status of an idle mount, from the mount point and from inside it
check "status of the mount" "$CTL" status "$MNT"
check_eq "status: nothing pending when idle" 0 "$(field jobs_pending "$MNT")"
check_eq "status: the mount found from a path inside it" "$MNT" "$(field mount "$MNT/src/f1")"
check_eq "status: from a relative path" "$MNT" \
    "$(cd "$MNT/src" && "$CTL" status --raw | awk '$1=="mount"{print $2}')"
check_eq "status of a subdirectory: its pending jobs" 0 "$(field path_pending "$MNT/src")"
check_err "status of a directory that is not a mount" "is not in an s3cfs mount" "$CTL" status "$WORK"
check_err "an unknown command" "unknown command" "$CTL" frobnicate "$MNT"

# status while a cp -r runs: jobs queued and in flight
proxy_config "delay.CopyObject=100"
cp -r "$MNT/src" "$MNT/dst" &
cp_pid=$!
busy=0
while kill -0 $cp_pid 2>/dev/null; do
    q=$(field jobs_queued "$MNT")
    r=$(field jobs_running "$MNT")
    n=$((${q:-0} + ${r:-0}))
    [ "$n" -gt "$busy" ] && busy=$n
    sleep 0.05
done
wait $cp_pid
check "status during cp -r: jobs queued or in flight ($busy)" test "$busy" -gt 0
check "status during cp -r: human-readable form" bash -c "'$CTL' status '$MNT' | grep -q 'in flight'"

# wait DIR returns once every copy landed: all of them are in S3 right away
"$CTL" wait "$MNT/dst" 2>"$WORK/wait.err"
check_eq "wait DIR: exit 0" 0 $?
check_eq "wait DIR: every object in S3 when it returns" $N "$(count_s3 dst/f)"
check_eq "wait DIR: nothing on stderr without a terminal" "" "$(cat "$WORK/wait.err")"
check_eq "wait DIR: nothing pending below it" 0 "$(field path_pending "$MNT/dst")"

# slower copies: on a terminal (script gives one) a progress bar is drawn
proxy_config "delay.CopyObject=1000"
cp -r "$MNT/src" "$MNT/dst2"
pending=$(field path_pending "$MNT/dst2")
check "after cp -r returned, copies are pending below it ($pending)" test "${pending:-0}" -gt 0
script -qec "'$CTL' wait '$MNT/dst2'" "$WORK/tty.out" >/dev/null 2>&1
check_eq "wait on a terminal: exit 0" 0 $?
check_eq "then every object is in S3" $N "$(count_s3 dst2/f)"
check "wait on a terminal: a progress bar was drawn" grep -q "jobs landed" "$WORK/tty.out"
# the bar counts what was pending when wait started (copies that landed
# while cp -r was still running are not in it)
check "the bar moved" grep -qE "\[#+-+\] [0-9]+/[0-9]+ jobs landed" "$WORK/tty.out"
check "the bar ends full" grep -qE "#\] ([0-9]+)/\1 jobs landed" "$WORK/tty.out"
proxy_config "delay.CopyObject=300"
cp -r "$MNT/src" "$MNT/dst3"
script -qec "'$CTL' wait -q '$MNT/dst3'" "$WORK/tty-q.out" >/dev/null 2>&1
check_eq "wait -q on a terminal: exit 0" 0 $?
check_not "wait -q on a terminal: no progress bar" grep -q "jobs landed" "$WORK/tty-q.out"
check_eq "then every object is in S3" $N "$(count_s3 dst3/f)"
check "the older form: wait PATH MOUNTPOINT" "$CTL" wait "$MNT/dst3" "$MNT"

# a client that goes away mid-wait costs the daemon nothing
proxy_config "delay.CopyObject=1000"
cp -r "$MNT/src" "$MNT/dst4"
"$CTL" wait "$MNT/dst4" 2>/dev/null &
w_pid=$!
disown $w_pid # no "Killed" notice from the shell
sleep 0.3
kill -9 $w_pid
for _ in $(seq 1 50); do kill -0 $w_pid 2>/dev/null || break; sleep 0.1; done
check "status after a client was killed mid-wait" "$CTL" status "$MNT"
check "wait after that" "$CTL" wait "$MNT/dst4"
check_eq "and the copies landed" $N "$(count_s3 dst4/f)"

# a copy that fails for good: wait exits 1 listing it, errors lists it
proxy_config "delay.CopyObject=-1&fault_rate=1&faults=500&fault_kinds=CopyObject"
mkdir "$MNT/fail"
cp "$MNT/src/f1" "$MNT/fail/bad1"
cp "$MNT/src/f2" "$MNT/dst/ok-elsewhere" # failing too, but not below fail/
"$CTL" wait "$MNT/fail" >"$WORK/fail.out" 2>&1
st=$?
# the faults stay on until the other copy failed for good too
for _ in $(seq 1 600); do "$CTL" errors "$MNT" | grep -q ok-elsewhere && break; sleep 0.1; done
proxy_config "fault_rate=0"
check_eq "wait on a failed copy: exit 1" 1 "$st"
check "wait lists the failed key" grep -q "$BUCKET/fail/bad1: " "$WORK/fail.out"
check_not "wait lists only failures below its path" grep -q "ok-elsewhere" "$WORK/fail.out"
"$CTL" errors "$MNT" >"$WORK/errors.out" 2>&1
check_eq "errors: exit 0" 0 $?
check "errors lists the failed key with its message" \
    grep -q "^$BUCKET/fail/bad1: copy from $BUCKET/src/f1" "$WORK/errors.out"
check "errors lists the other failure too" grep -q "^$BUCKET/dst/ok-elsewhere: " "$WORK/errors.out"
check_not "errors PATH: only below PATH" bash -c "'$CTL' errors '$MNT/fail' | grep -q ok-elsewhere"
check "status counts the failures" test "$(field jobs_failed "$MNT")" -ge 2
# wait reported (and cleared) fail/'s error, as fsync would: a later sync
# of fail/ no longer returns it; dst/'s error is still there for its sync
check "after wait reported it, sync of the directory succeeds" sync "$MNT/fail"
check_not "the failure not yet reported is returned by sync" sync "$MNT/dst"

# other users: refused by the socket's directory, and by the daemon itself
# (SO_PEERCRED) for one that could get past the directory
mkdir -p "$WORK/bin"
cp "$CTL" "$WORK/bin/s3cfs-ctl"
chmod 711 "$WORK"
chmod 755 "$WORK/bin"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
check_err "nobody: status is refused" "permission denied" as_nobody "$WORK/bin/s3cfs-ctl" status "$MNT"
check_err "nobody: wait is refused" "permission denied" as_nobody "$WORK/bin/s3cfs-ctl" wait "$MNT"
if as_nobody --inh-caps=+dac_override --ambient-caps=+dac_override true 2>/dev/null; then
    check_err "nobody past the directory: refused by the daemon" \
        "only uid 0 (who mounted it) and root" \
        as_nobody --inh-caps=+dac_override --ambient-caps=+dac_override \
        "$WORK/bin/s3cfs-ctl" status "$MNT"
fi
chmod 700 "$WORK"

# SIGTERM during a cp -r: the mount goes, the daemon lands the rest and
# s3cfs-ctl can still watch it through the old mount point
proxy_config "delay.CopyObject=1000"
cp -r "$MNT/src" "$MNT/dst5"
idx=$(daemon_idx)
pid=${PIDS[$idx]}
kill -TERM "$pid"
for _ in $(seq 1 50); do mountpoint -q "$MNT" || break; sleep 0.1; done
check_not "after SIGTERM the mount is gone" mountpoint -q "$MNT"
left=$(field jobs_pending "$MNT")
check "status during the final drain: jobs still pending (${left:-none})" test "${left:-0}" -gt 0
check "wait during the final drain" "$CTL" wait "$MNT"
check_eq "every copy landed" $N "$(count_s3 dst5/f)"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check_not "the daemon exited" kill -0 "$pid"
wait "$pid"
st=$?
check_eq "SIGTERM: the daemon drained and exited cleanly" 0 "$st"
unset 'MOUNTS[idx]' 'PIDS[idx]'
check_err "status once it exited" "not in an s3cfs mount" "$CTL" status "$MNT"
check_not "no sanitizer report" grep -qE 'Sanitizer|runtime error' "$WORK/s3cfs.log"
fs_done
