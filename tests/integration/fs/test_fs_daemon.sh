#!/bin/bash
# s3cfs as a daemon (no -f): the command returns once the mount answers, the
# daemon logs to syslog and nothing to the terminal, and SIGINT drains the
# queued copies like SIGTERM does.
#
# Syslog is caught on a /dev/log of the test's own (private_syslog in
# lib.sh): the test runs itself in a private mount namespace. Nothing on the
# host changes. Each case starts a daemon of its own on a mount point of its
# own ($WORK/CASE) and ends it.
if [ "${S3CFS_MOUNT_NS:-}" != 1 ]; then
    exec env S3CFS_MOUNT_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
CTL=$(dirname "$S3CFS_BIN")/s3cfs-ctl
# the daemons the cases started (mount_fs does not know them): DIR PID
# lines, so that the EXIT trap ends those a failing case left running
DAEMONS=$WORK/.daemons
cleanup() {
    local dir pid
    cd /
    while read -r dir pid; do daemon_end "$dir" "$pid"; done < <(cat "$DAEMONS" 2>/dev/null)
    private_syslog_end
    fs_cleanup
}
trap cleanup EXIT
BUCKET=$(new_bucket)
start_proxy
private_syslog

# daemon_start DIR: s3cfs without -f on DIR, what it says before detaching
# in DIR.term; sets DPID (empty when no daemon runs) and RC (its exit status)
daemon_start() {
    local dir=$1
    mkdir -p "$dir"
    "$S3CFS_BIN" -o "endpoint=$PROXY,log_level=debug,journal_dir=$dir.journal,attr_ttl=1,dir_ttl=1" \
        "$BUCKET" "$dir" >"$dir.term" 2>&1
    RC=$?
    DPID=$(pgrep -f -- "s3cfs .*$BUCKET $dir\$" | head -1)
    [ -n "$DPID" ] && echo "$dir $DPID" >>"$DAEMONS"
}
# daemon_end DIR PID: unmount DIR if still mounted, wait for the daemon to
# end (it lands its queues first), kill it if it does not
daemon_end() {
    local dir=$1 pid=$2
    case $PWD/ in "$dir"/*) cd / ;; esac
    if mountpoint -q "$dir"; then fusermount3 -u "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null; fi
    if ! wait_until 120 not_running "$pid"; then
        bad "the daemon for $dir (pid $pid) still runs 120 s after its unmount: killed"
        kill -9 "$pid" 2>/dev/null
    fi
    sed -i "\\#^$dir $pid\$#d" "$DAEMONS"
}

# --- daemonized mount ----------------------------------------------------------
# the terminal (here a file) gets what s3cfs says before it detaches
case_daemonized_mount() {
    local m=$WORK/detach
    daemon_start "$m"
    check_eq "s3cfs without -f: exit 0 once mounted" 0 "$RC"
    check "the mount answers when the command returns" mountpoint -q "$m"
    check "the daemon runs detached (pid ${DPID:-none})" test -n "$DPID"
    [ -n "$DPID" ] || { fusermount3 -u "$m" 2>/dev/null; return; }
    check_not "the daemon is not a child of the shell" bash -c "ps -o ppid= -p '$DPID' | grep -qw $$"
    echo "through the daemon" >"$m/hello"
    check_eq "a file written through it: in S3" "through the daemon" "$(s3c get "$BUCKET" hello -)"
    wait_until 2 grep -q "mounted $BUCKET on $m" "$SYSLOG"
    check "syslog: 'mounted BUCKET on DIR' under the ident s3cfs[PID]" \
        grep -qE "s3cfs\[$DPID\]: .*mounted $BUCKET on $m" "$SYSLOG"
    check "syslog: debug lines name S3 requests and their results" grep -qE "PUT [^ ]*/hello -> 200" "$SYSLOG"
    check_not "syslog: every line is of the daemon facility (priority 24-31)" grep -qvE "^<(2[4-9]|3[01])>" "$SYSLOG"
    check_not "syslog: never the secret key" grep -qF "$AWS_SECRET_ACCESS_KEY" "$SYSLOG"
    check_not "syslog: never a signature" grep -q "Signature=" "$SYSLOG"
    # before detaching it checks the bucket (debug lines on the terminal);
    # after, nothing
    check_not "the terminal got nothing after detaching" grep -qE "mounted|/hello" "$m.term"
    daemon_end "$m" "$DPID"
}

# --- SIGINT during a cp -r: unmount, land every copy, exit --------------------
case_sigint_drains() {
    local m=$WORK/sigint n=300 i pending got
    daemon_start "$m"
    [ -n "$DPID" ] || { bad "the daemon did not start (exit $RC): $(cat "$m.term")"; return; }
    mkdir -p "$m/src"
    for i in $(seq 1 $n); do echo "file $i" >"$m/src/f$i"; done
    sync "$m"
    proxy_config "delay.CopyObject=1000"
    cp -r "$m/src" "$m/dst"
    pending=$("$CTL" status --raw "$m" | awk '$1=="jobs_pending"{print $2}')
    check "copies pending when SIGINT comes (${pending:-none})" test "${pending:-0}" -gt 0
    kill -INT "$DPID"
    wait_until 5 not_mounted "$m"
    check_not "after SIGINT the mount is gone" mountpoint -q "$m"
    wait_until 120 not_running "$DPID"
    check_not "the daemon exited" kill -0 "$DPID"
    proxy_config "delay.CopyObject=-1"
    got=$(aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix dst/f --query 'length(Contents || `[]`)')
    check_eq "every copy queued before SIGINT landed" $n "$got"
    check "syslog: the drain is announced" grep -q "unmounted $m; queued copies and deletes land before exit" "$SYSLOG"
    check "syslog: the daemon says everything landed" grep -q "exiting: every queued copy and delete landed" "$SYSLOG"
    check_not "syslog: no error while draining" grep -qE "queued operations failed|Sanitizer|runtime error" "$SYSLOG"
    daemon_end "$m" "$DPID"
}
case_timeout sigint_drains 200

run_cases "$@"
