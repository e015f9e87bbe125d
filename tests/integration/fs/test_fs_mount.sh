#!/bin/bash
# mount(8) and systemd: "mount -t s3cfs" through mount-helpers/mount.s3cfs,
# "mount -t fuse.s3cfs" through fuse3's mount.fuse3, fstab entries of both
# types (mount -T FILE DIR), errors that reach the caller, options only
# mount(8) and fstab use dropped, and the command lines of s3cfs@.service.
#
# mount(8) runs helpers only from /sbin (/sbin/fs.d, /sbin/fs) and with PATH
# and HOME cleared, so mount.fuse3 finds s3cfs only in the default PATH. The
# test therefore runs itself in a private mount namespace where an overlay on
# /sbin adds mount.s3cfs and s3cfs, and a tmpfs on /run/mount keeps libmount's
# utab: nothing on the host changes, and concurrent runs do not meet.
#
# Every case mounts on mount points of its own (under $WORK/CASE) and puts
# through the S3 API the objects it reads, so that it runs alone.
if [ "${S3CFS_MOUNT_NS:-}" != 1 ]; then
    exec env S3CFS_MOUNT_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
HELPERS=$(cd "$(dirname "$0")/../../../mount-helpers" && pwd)
HELPER=$HELPERS/mount.s3cfs
UNIT=$HELPERS/s3cfs@.service
SBIN=$(readlink -f /sbin)
HMOUNTS=()

# mounts made through mount(8): unmount with umount(8) (it also clears utab)
# and wait for the daemon, which lands its queues first
daemon_pid() { pgrep -f -- "s3cfs .*$1( |\$)" | head -1; }
gone() { ! kill -0 "$1" 2>/dev/null; }
helper_umount() {
    local dir=$1 pid
    pid=$(daemon_pid "$dir")
    umount "$dir" 2>/dev/null || umount -l "$dir"
    [ -n "$pid" ] || return 0
    wait_until 15 gone "$pid" && return 0
    bad "s3cfs for $dir still running 15 s after umount"
    kill -9 "$pid" 2>/dev/null
}
helper_cleanup() {
    local m
    cd /
    for m in "${HMOUNTS[@]}"; do
        while mountpoint -q "$m" 2>/dev/null; do helper_umount "$m"; done
    done
    umount "$SBIN" /run/mount 2>/dev/null
}
trap 'helper_cleanup; fs_cleanup' EXIT

mkdir -p "$WORK/ovl/up" "$WORK/ovl/work"
mount -t overlay overlay -o "lowerdir=$SBIN,upperdir=$WORK/ovl/up,workdir=$WORK/ovl/work" "$SBIN" ||
    { echo "cannot put an overlay on $SBIN" >&2; exit 2; }
mkdir -p /run/mount && mount -t tmpfs tmpfs /run/mount || exit 2
ln -s "$HELPER" "$SBIN/mount.s3cfs"
ln -s "$S3CFS_BIN" "$SBIN/s3cfs"

BUCKET=$(new_bucket)
PW=$WORK/passwd-s3cfs
printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$PW"
chmod 600 "$PW"
OPTS="endpoint=$S3_ENDPOINT,passwd_file=$PW,attr_ttl=1,dir_ttl=1,negative_ttl=0"
# the credentials must come from passwd_file, through every layer
nocreds() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL "$@"; }
# mnt DIR: a fresh mount point, unmounted at the end
mnt() { mkdir -p "$1"; HMOUNTS+=("$1"); }
# how many mounts sit on DIR
mounts_on() { awk -v d="$1" '$5 == d' /proc/self/mountinfo | wc -l; }
# run COMMAND..., keep its output in OUT and its status in RC
run() { OUT=$("$@" 2>&1); RC=$?; }
# put KEY TEXT: an object (one line of TEXT) through the S3 API
put() { echo "$2" | aws_ s3 cp --quiet - "s3://$BUCKET/$1"; }
# the object's bytes through the S3 API
s3_text() { aws_ s3 cp --quiet "s3://$BUCKET/$1" -; }

# --- mount -t s3cfs BUCKET DIR -o ... -------------------------------------

# a mount through the helper: files written through it are in S3, objects
# put through S3 show in it, umount(8) unmounts it
case_mount_t_s3cfs() {
    local M=$WORK/basic/m
    mnt "$M"
    run nocreds mount -t s3cfs "$BUCKET" "$M" -o "_netdev,nofail,$OPTS"
    check_eq "mount -t s3cfs BUCKET: exit 0 ($OUT)" 0 "$RC"
    check "mount -t s3cfs: mounted" mountpoint -q "$M"
    check_eq "mount -t s3cfs: type fuse.s3cfs" fuse.s3cfs "$(findmnt -rn -M "$M" -o FSTYPE)"
    head -c 100000 /dev/urandom >"$WORK/basic/data"
    cp "$WORK/basic/data" "$M/data"
    printf 'through mount -t\n' >"$M/hello.txt"
    check "a file written through it: in S3 byte for byte (aws)" same_in_s3 data "$WORK/basic/data"
    check_eq "a file written through it: s3c reads it" "through mount -t" "$(s3c get "$BUCKET" hello.txt -)"
    put dir/from-aws.txt "from aws"
    check_eq "an object put with the AWS CLI shows in the mount" "from aws" "$(cat "$M/dir/from-aws.txt")"
    helper_umount "$M"
    check_not "umount: unmounted" mountpoint -q "$M"
}

# options reach s3cfs: ro
case_ro() {
    local M=$WORK/ro/m
    mnt "$M"
    put ro/hello.txt "through mount -t"
    run nocreds mount -t s3cfs "$BUCKET" "$M" -o "ro,$OPTS"
    check_eq "mount -t s3cfs -o ro: exit 0 ($OUT)" 0 "$RC"
    check_err "-o ro reaches s3cfs: writing fails" "Read-only file system" touch "$M/nope"
    check_eq "-o ro: reading works" "through mount -t" "$(cat "$M/ro/hello.txt")"
    helper_umount "$M"
}

# BUCKET:/PREFIX
case_prefix() {
    local M=$WORK/prefix/m
    mnt "$M"
    put prefix/from-aws.txt "from aws"
    run nocreds mount -t s3cfs "$BUCKET:/prefix" "$M" -o "$OPTS"
    check_eq "mount -t s3cfs BUCKET:/PREFIX: exit 0 ($OUT)" 0 "$RC"
    check_eq "prefix mount shows the prefix" "from aws" "$(cat "$M/from-aws.txt")"
    echo under >"$M/added.txt"
    check_eq "written under the prefix" "under" "$(s3_text prefix/added.txt)"
    helper_umount "$M"
}

# the source "s3cfs": every bucket; and the binary found next to the helper
case_all_buckets() {
    local M=$WORK/all/m
    mnt "$M"
    put all/hello.txt "through mount -t"
    run nocreds env -u S3CFS_BIN mount -t s3cfs s3cfs "$M" -o "$OPTS"
    check_eq "mount -t s3cfs s3cfs (all buckets, S3CFS_BIN unset): exit 0 ($OUT)" 0 "$RC"
    check "all buckets: the bucket is a top-level directory" test -d "$M/$BUCKET"
    check_eq "all buckets: a file in it" "through mount -t" "$(cat "$M/$BUCKET/all/hello.txt")"
    helper_umount "$M"
}

# -f (fake) and -v: nothing mounted; the command line shows what is dropped
case_fake_drops_options() {
    local M=$WORK/fake/m
    mnt "$M"
    run nocreds mount -f -v -t s3cfs "$BUCKET" "$M" \
        -o "_netdev,nofail,user,users,auto,defaults,comment=x,x-systemd.automount,$OPTS"
    check_eq "mount -f: exit 0 ($OUT)" 0 "$RC"
    check_not "mount -f: nothing mounted" mountpoint -q "$M"
    check "mount -f -v: prints the s3cfs command" grep -q "would run: .*s3cfs $BUCKET $M -o .*endpoint=$S3_ENDPOINT" <<<"$OUT"
    check_not "_netdev, nofail, user, users, x-* are dropped" grep -qE "_netdev|nofail|user|x-systemd|comment" <<<"$(grep 'would run' <<<"$OUT")"
    # s3cfs itself refuses what the helper drops
    run "$S3CFS_BIN" -o "$OPTS,_netdev" "$BUCKET" "$M"
    check "s3cfs alone refuses _netdev (why the helper drops it)" test "$RC" -ne 0
    mountpoint -q "$M" && fusermount3 -u "$M"
}

# --- errors reach the caller -----------------------------------------------

# refused DESC STATUS TEXT SOURCE OPTIONS [VAR=VALUE...]: mount -t s3cfs
# SOURCE, with the environment VAR=VALUE, on a mount point of its own, fails
# with STATUS (a number, or non-zero), its message says TEXT, and nothing is
# mounted
refused() {
    local desc=$1 want=$2 text=$3 src=$4 opts=$5 M
    shift 5
    M=$(mktemp -d "$WORK/refused.XXXXXX")
    mnt "$M"
    run nocreds env "$@" mount -t s3cfs "$src" "$M" -o "$opts"
    if [ "$want" == non-zero ]; then
        check "$desc: non-zero exit" test "$RC" -ne 0
    else
        check_eq "$desc: mount exits $want" "$want" "$RC"
    fi
    check "$desc: says '$text' ($OUT)" grep -qF "$text" <<<"$OUT"
    check_not "$desc: nothing mounted" mountpoint -q "$M"
}

# 32 is mount(8)'s "mount failure"
case_wrong_bucket() {
    refused "wrong bucket" 32 "bucket no-such-bucket-$$ does not exist" "no-such-bucket-$$" "$OPTS"
}

case_wrong_secret() {
    printf '%s:wrong\n' "$AWS_ACCESS_KEY_ID" >"$WORK/wrong-pw"
    chmod 600 "$WORK/wrong-pw"
    refused "wrong secret" 32 "access denied" "$BUCKET" "endpoint=$S3_ENDPOINT,passwd_file=$WORK/wrong-pw"
}

case_unknown_option() {
    refused "unknown option" non-zero no_such_option "$BUCKET" "$OPTS,no_such_option"
}

case_wrong_s3cfs_bin() {
    refused "S3CFS_BIN wrong" non-zero "S3CFS_BIN=/nonexistent/s3cfs is not an executable" \
        "$BUCKET" "$OPTS" S3CFS_BIN=/nonexistent/s3cfs
}

# s3cfs opens its journal after detaching; the helper checks it first
case_journal_not_writable() {
    refused "journal directory not writable" 32 "cannot write the journal directory /proc/no-journal" \
        "$BUCKET" "$OPTS,journal_dir=/proc/no-journal"
}

case_helper_usage() {
    run "$HELPER" "$BUCKET"
    check_eq "helper with one argument: usage, exit 1" 1 "$RC"
}

# --- fstab: mount -T FILE DIR, both types -----------------------------------

# fstab_setup NAME: $WORK/NAME/fstab (FSTAB) with four entries on mount
# points of their own, F1 to F4: type s3cfs on the bucket, fuse.s3cfs on
# BUCKET:/fuse, and two noauto ones on a bucket that does not exist
fstab_setup() {
    local d=$WORK/$1
    F1=$d/f1 F2=$d/f2 F3=$d/f3 F4=$d/f4 FSTAB=$d/fstab
    mnt "$F1"
    mnt "$F2"
    mnt "$F3"
    mnt "$F4"
    cat >"$FSTAB" <<EOF
# s3cfs test fstab
$BUCKET        $F1 s3cfs      defaults,_netdev,nofail,x-systemd.automount,x-systemd.mount-timeout=30,comment=t,$OPTS 0 0
$BUCKET:/fuse  $F2 fuse.s3cfs _netdev,nofail,allow_other,$OPTS 0 0
no-such-bucket-$$ $F3 fuse.s3cfs _netdev,noauto,$OPTS 0 0
no-such-bucket-$$ $F4 s3cfs      _netdev,noauto,$OPTS 0 0
EOF
}

case_fstab_type_s3cfs() {
    fstab_setup fstab-s3cfs
    run nocreds mount -T "$FSTAB" "$F1"
    check_eq "fstab, type s3cfs: mount DIR exits 0 ($OUT)" 0 "$RC"
    check "fstab, type s3cfs: mounted" mountpoint -q "$F1"
    echo fstab1 >"$F1/fstab1.txt"
    check_eq "fstab, type s3cfs: written file in S3" "fstab1" "$(s3_text fstab1.txt)"
    helper_umount "$F1"
    check_not "fstab, type s3cfs: unmounted" mountpoint -q "$F1"
}

case_fstab_type_fuse_s3cfs() {
    fstab_setup fstab-fuse
    run nocreds mount -T "$FSTAB" "$F2"
    check_eq "fstab, type fuse.s3cfs (mount.fuse3, s3cfs from PATH): exit 0 ($OUT)" 0 "$RC"
    check "fstab, type fuse.s3cfs: mounted" mountpoint -q "$F2"
    check_eq "fstab, type fuse.s3cfs: type" fuse.s3cfs "$(findmnt -rn -M "$F2" -o FSTYPE)"
    check "fstab, type fuse.s3cfs: allow_other reached FUSE" grep -q allow_other <<<"$(findmnt -rn -M "$F2" -o OPTIONS)"
    echo fstab2 >"$F2/fstab2.txt"
    check_eq "fstab, type fuse.s3cfs: written file in S3 under the prefix" "fstab2" "$(s3_text fuse/fstab2.txt)"
    helper_umount "$F2"
    check_not "fstab, type fuse.s3cfs: unmounted" mountpoint -q "$F2"
}

# mounting an entry again must not stack a second s3cfs on it
case_fstab_mounted_again() {
    fstab_setup fstab-again
    run nocreds mount -T "$FSTAB" "$F1"
    check_eq "fstab, type s3cfs, first mount: exit 0 ($OUT)" 0 "$RC"
    run nocreds mount -T "$FSTAB" "$F1"
    check "fstab, type s3cfs, mounted again: non-zero exit" test "$RC" -ne 0
    check "fstab, type s3cfs, mounted again: says so ($OUT)" grep -q "already" <<<"$OUT"
    check_eq "fstab, type s3cfs, mounted again: still one mount" 1 "$(mounts_on "$F1")"
    helper_umount "$F1"
}

# mount -a: both entries (not the noauto ones)
case_mount_a() {
    fstab_setup fstab-all
    put fstab1.txt fstab1
    put fuse/fstab2.txt fstab2
    run nocreds mount -a -T "$FSTAB"
    check_eq "mount -a: exit 0 ($OUT)" 0 "$RC"
    check "mount -a: the s3cfs entry" mountpoint -q "$F1"
    check "mount -a: the fuse.s3cfs entry" mountpoint -q "$F2"
    check_not "mount -a: not the noauto entries" mountpoint -q "$F3"
    check_eq "mount -a: a file through each" "fstab1 fstab2" "$(cat "$F1/fstab1.txt" "$F2/fstab2.txt" | tr '\n' ' ' | sed 's/ $//')"
    # mount -a again skips what is mounted: mount(8) compares the source column
    if [ "$(findmnt -rn -M "$F2" -o SOURCE)" == "$BUCKET:/fuse" ]; then
        run nocreds mount -a -T "$FSTAB"
        check_eq "mount -a again: exit 0 ($OUT)" 0 "$RC"
        check_eq "mount -a again: one mount on the s3cfs entry" 1 "$(mounts_on "$F1")"
        check_eq "mount -a again: one mount on the fuse.s3cfs entry" 1 "$(mounts_on "$F2")"
    else
        echo "skip - mount -a again: s3cfs shows fsname $(findmnt -rn -M "$F2" -o SOURCE), not the source; mount(8) cannot tell the entries are mounted"
    fi
    helper_umount "$F1"
    helper_umount "$F2"
}

case_fstab_wrong_bucket() {
    fstab_setup fstab-nobucket
    run nocreds mount -T "$FSTAB" "$F3"
    check "fstab, fuse.s3cfs, wrong bucket: non-zero exit" test "$RC" -ne 0
    check "fstab, fuse.s3cfs, wrong bucket: says so ($OUT)" grep -q "does not exist" <<<"$OUT"
    check_not "fstab, fuse.s3cfs, wrong bucket: nothing mounted" mountpoint -q "$F3"
    run nocreds mount -T "$FSTAB" "$F4"
    check_eq "fstab, s3cfs, wrong bucket: exit 32" 32 "$RC"
    check "fstab, s3cfs, wrong bucket: says so ($OUT)" grep -q "does not exist" <<<"$OUT"
    check_not "fstab, s3cfs, wrong bucket: nothing mounted" mountpoint -q "$F4"
}

# --- s3cfs@.service: its command lines, as systemd would run them ----------
# (no systemd here: expand ${NAME} and $$ as systemd does, then run them)

# unit_setup NAME BUCKET: the unit's configuration $S/unit.conf, S=$WORK/NAME
unit_setup() {
    S=$WORK/$1
    mnt "$S/mnt"
    cat >"$S/unit.conf" <<EOF
BUCKET=$2
MOUNTPOINT=$S/mnt
ENDPOINT=
PASSWD_FILE=$PW
OPTIONS=attr_ttl=1,dir_ttl=1
EOF
}
unit_line() { # KEY [N]: the Nth KEY= line of the unit, systemd-expanded
    local line name val
    line=$(sed -n "s/^$1=[-@+!:]*//p" "$UNIT" | sed -n "${2:-1}p")
    while [[ $line =~ \$\{([A-Z_]+)\} ]]; do
        name=${BASH_REMATCH[1]}
        val=$(sed -n "s/^$name=//p" "$S/unit.conf")
        line=${line//"\${$name}"/$val}
    done
    printf '%s\n' "${line//\$\$/\$}"
}
# the unit's processes, with the unit's environment (and no AWS_* keys)
svc_env() {
    SVC=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL="$S3_ENDPOINT"
        BUCKET="$(sed -n 's/^BUCKET=//p' "$S/unit.conf")" MOUNTPOINT="$S/mnt"
        MAINPID="${MAINPID:-}")
}
svc() { svc_env; "${SVC[@]}" "$@"; }
# start the unit's main process (in the background: MAINPID), then its
# ExecStartPost (in the background: POSTPID)
svc_start() {
    eval "set -- $(unit_line ExecStart)"
    check_eq "unit: ExecStart runs mount.s3cfs" mount.s3cfs "$(basename "$1")"
    # the overlay holds the helper where the unit names it; elsewhere use ours
    [ -x "$1" ] || set -- "$SBIN/mount.s3cfs" "${@:2}"
    MAINPID=
    svc_env
    "${SVC[@]}" "$@" >"$S/svc.log" 2>&1 &
    MAINPID=$!
    eval "set -- $(unit_line ExecStartPost)"
    svc timeout 60 "$@" &
    POSTPID=$!
}

# ENDPOINT is empty in the configuration: the endpoint then comes from
# AWS_ENDPOINT_URL, and the empty endpoint= must not reach s3cfs
case_unit_start_stop() {
    unit_setup svc "$BUCKET"
    eval "set -- $(unit_line ExecStartPre 1)"
    check "unit: ExecStartPre (stale mount)" svc "$@"
    eval "set -- $(unit_line ExecStartPre 2)"
    check "unit: ExecStartPre (mkdir)" svc "$@"
    svc_start
    wait $POSTPID
    check_eq "unit: ExecStartPost returns 0 once mounted" 0 $?
    check "unit: mounted" mountpoint -q "$S/mnt"
    check_eq "unit: the main process is s3cfs itself, in the foreground" "s3cfs" "$(ps -o comm= -p $MAINPID)"
    echo unit >"$S/mnt/unit.txt"
    check_eq "unit: written file in S3" "unit" "$(s3_text unit.txt)"
    eval "set -- $(unit_line ExecStop)"
    svc timeout 60 "$@" &
    local stoppid=$!
    wait $MAINPID
    check_eq "unit: s3cfs exits with status 0 after ExecStop" 0 $?
    wait $stoppid
    check_eq "unit: ExecStop unmounts, waits for s3cfs, returns 0" 0 $?
    check_not "unit: unmounted" mountpoint -q "$S/mnt"
}

# a wrong bucket in the configuration: ExecStart fails, ExecStartPost too
case_unit_wrong_bucket() {
    unit_setup svc-nobucket "no-such-bucket-$$"
    svc_start
    wait $MAINPID
    check "unit, wrong bucket: s3cfs exits non-zero" test $? -ne 0
    wait $POSTPID
    check "unit, wrong bucket: ExecStartPost fails" test $? -ne 0
    check "unit, wrong bucket: the reason is in the log (journal)" grep -q "does not exist" "$S/svc.log"
    check_not "unit, wrong bucket: nothing mounted" mountpoint -q "$S/mnt"
}

run_cases "$@"
