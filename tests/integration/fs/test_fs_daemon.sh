#!/bin/bash
# s3cfs as a daemon (no -f): the command returns once the mount answers, the
# daemon logs to syslog and nothing to the terminal, and SIGINT drains the
# queued copies like SIGTERM does.
#
# Syslog is caught on a /dev/log of the test's own (private_syslog in
# lib.sh): the test runs itself in a private mount namespace. Nothing on the
# host changes.
if [ "${S3CFS_MOUNT_NS:-}" != 1 ]; then
    exec env S3CFS_MOUNT_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
CTL=$(dirname "$S3CFS_BIN")/s3cfs-ctl
DPID=
cleanup() {
    cd /
    if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
        fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$DPID" 2>/dev/null
    fi
    private_syslog_end
    fs_cleanup
}
trap cleanup EXIT
BUCKET=$(new_bucket)
start_proxy
MNT=$WORK/mnt
mkdir -p "$MNT"

private_syslog

# --- daemonized mount ----------------------------------------------------------
# the terminal (here a file) gets what s3cfs says before it detaches
"$S3CFS_BIN" -o "endpoint=$PROXY,log_level=debug,journal_dir=$WORK/journal,attr_ttl=1,dir_ttl=1" \
    "$BUCKET" "$MNT" >"$WORK/term.out" 2>&1
check_eq "s3cfs without -f: exit 0 once mounted" 0 $?
check "the mount answers when the command returns" mountpoint -q "$MNT"
DPID=$(pgrep -f -- "s3cfs .*$BUCKET $MNT\$" | head -1)
check "the daemon runs detached (pid ${DPID:-none})" test -n "$DPID"
check_not "the daemon is not a child of the shell" bash -c "ps -o ppid= -p '$DPID' | grep -qw $$"
echo "through the daemon" >"$MNT/hello"
check_eq "a file written through it: in S3" "through the daemon" "$(s3c get "$BUCKET" hello -)"
for _ in $(seq 1 20); do grep -q "mounted $BUCKET on $MNT" "$SYSLOG" && break; sleep 0.1; done
check "syslog: 'mounted BUCKET on DIR' under the ident s3cfs[PID]" \
    grep -qE "s3cfs\[$DPID\]: .*mounted $BUCKET on $MNT" "$SYSLOG"
check "syslog: debug lines name S3 requests and their results" grep -qE "PUT [^ ]*/hello -> 200" "$SYSLOG"
check_not "syslog: every line is of the daemon facility (priority 24-31)" grep -qvE "^<(2[4-9]|3[01])>" "$SYSLOG"
check_not "syslog: never the secret key" grep -qF "$AWS_SECRET_ACCESS_KEY" "$SYSLOG"
check_not "syslog: never a signature" grep -q "Signature=" "$SYSLOG"
# before detaching it checks the bucket (debug lines on the terminal);
# after, nothing
check_not "the terminal got nothing after detaching" grep -qE "mounted|/hello" "$WORK/term.out"

# --- SIGINT during a cp -r: unmount, land every copy, exit --------------------
N=300
mkdir -p "$MNT/src"
for i in $(seq 1 $N); do echo "file $i" >"$MNT/src/f$i"; done
sync "$MNT"
proxy_config "delay.CopyObject=1000"
cp -r "$MNT/src" "$MNT/dst"
pending=$("$CTL" status --raw "$MNT" | awk '$1=="jobs_pending"{print $2}')
check "copies pending when SIGINT comes (${pending:-none})" test "${pending:-0}" -gt 0
kill -INT "$DPID"
for _ in $(seq 1 50); do mountpoint -q "$MNT" || break; sleep 0.1; done
check_not "after SIGINT the mount is gone" mountpoint -q "$MNT"
for _ in $(seq 1 1200); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
check_not "the daemon exited" kill -0 "$DPID"
got=$(aws_ s3api list-objects-v2 --bucket "$BUCKET" --prefix dst/f --query 'length(Contents || `[]`)')
check_eq "every copy queued before SIGINT landed" $N "$got"
check "syslog: the drain is announced" grep -q "unmounted $MNT; queued copies and deletes land before exit" "$SYSLOG"
check "syslog: the daemon says everything landed" grep -q "exiting: every queued copy and delete landed" "$SYSLOG"
check_not "syslog: no error while draining" grep -qE "queued operations failed|Sanitizer|runtime error" "$SYSLOG"
DPID=
fs_done
