#!/bin/bash
# Options and secrets of a daemon (no -f), which changes to / when it
# detaches:
#  - relative paths in options (journal_dir, tmpdir, passwd_file, the mount
#    point) are taken from the directory s3cfs was started in: the journal,
#    spills to tmpdir and a passwd file re-read on SIGHUP all work after the
#    detach, and nothing is created under /;
#  - the daemon is not dumpable (no core dump, no ptrace, /proc/PID files
#    are root's), unless -o dumpable asks; seen from a daemon run as nobody,
#    whose /proc/PID/status is then owned by root instead of nobody;
#  - an http:// endpoint gets one warning line on the terminal and one in
#    syslog.
# Syslog is caught as in test_fs_daemon.sh (private_syslog in lib.sh).
# The cases relative_* share one daemon with relative paths, started by the
# first of them that runs (rel_daemon) and unmounted by the last,
# relative_unmount_leaves_nothing; each other case has daemons of its own.
if [ "${S3CFS_MOUNT_NS:-}" != 1 ]; then
    exec env S3CFS_MOUNT_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
DAEMONS=()
CWD=$WORK/cwd
N=$WORK/nobody
J=s3cfs-rel-journal-$$ # unique names: a stray one under / is surely ours
T=s3cfs-rel-tmp-$$
K=s3cfs-rel-keys-$$
cleanup() {
    local m
    cd /
    # nobody's mounts deny root even a stat: unmount without asking
    for m in "$CWD/mnt" "$CWD/mnt2" "$N/mnt" "$N/mnt2"; do
        fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    for m in "${DAEMONS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$m" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$m" 2>/dev/null
    done
    # what a regression would leave under / (names unique to this run)
    rm -f "/$J"/journal-*.log 2>/dev/null
    rmdir "/$J" "/$T" "/$K" 2>/dev/null
    private_syslog_end
    fs_cleanup
}
trap cleanup EXIT
for d in "/$J" "/$T" "/$K"; do [ -e "$d" ] && { echo "$d exists before the test" >&2; exit 2; }; done
BUCKET=$(new_bucket)
private_syslog
mkdir -p "$CWD/$T" "$CWD/$K" "$CWD/mnt" "$CWD/mnt2"
nocreds() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN "$@"; }
# pid_of PATTERN: the daemon whose command line ends with PATTERN
pid_of() { pgrep -f -- "s3cfs .*$1\$" | head -1; }
# unmount DIR PID: unmount and wait (bounded) for the daemon to exit
unmount() {
    fusermount3 -u "$1" || umount -l "$1"
    wait_for 60 bash -c "! kill -0 $2"
}
nothing_under_root() { # DIR...: none of these names was made under /
    local d
    for d in "$@"; do check_not "nothing was created under / (/$d)" test -e "/$d"; done
}

# --- relative paths, from a directory of the test's own -----------------------
# rel_daemon: the daemon with relative paths on $CWD/mnt, started from $CWD
# unless it runs already (DPID); its terminal output in $WORK/term.out,
# its exit status in REL_RC
DPID=
rel_daemon() {
    [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null && mountpoint -q "$CWD/mnt" && return 0
    printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$CWD/$K/passwd"
    chmod 600 "$CWD/$K/passwd"
    # stage_mem=0: every written byte spills to a temp file in tmpdir
    (cd "$CWD" && nocreds "$S3CFS_BIN" \
        -o "endpoint=$S3_ENDPOINT,journal_dir=$J,tmpdir=./$T,passwd_file=$K/passwd" \
        -o "stage_mem=0,attr_ttl=0,dir_ttl=0,negative_ttl=0" \
        "$BUCKET" mnt >"$WORK/term.out" 2>&1)
    REL_RC=$?
    DPID=$(pid_of "$BUCKET mnt")
    [ -n "$DPID" ] && DAEMONS+=("$DPID")
    [ -n "$DPID" ]
}

case_relative_mount_detaches() {
    rel_daemon
    check_eq "s3cfs with relative paths, no -f: exit 0 ($(head -c 300 "$WORK/term.out"))" 0 "$REL_RC"
    check "the relative mount point is mounted" mountpoint -q "$CWD/mnt"
    check "the daemon runs (pid ${DPID:-none})" test -n "$DPID"
    check_eq "its current directory is /" / "$(readlink "/proc/$DPID/cwd")"
}

# the journal: in CWD/J, opened before and after the detach (the engine
# makes the directory again once detached)
case_relative_journal() {
    rel_daemon || { bad "the daemon with relative paths did not start"; return; }
    check "the journal is in the start directory" compgen -G "$CWD/$J/journal-*.log"
    check "the journal file is open by the daemon" bash -c "ls -l /proc/$DPID/fd | grep -q '$CWD/$J/journal-'"
    head -c 3000000 /dev/urandom >"$WORK/jdata"
    cp "$WORK/jdata" "$CWD/mnt/jsrc"
    cp "$CWD/mnt/jsrc" "$CWD/mnt/copied" # a queued copy, through the journal
    landed "$CWD/mnt"
    check "a copy through the journal landed" same_in_s3 copied "$WORK/jdata"
    nothing_under_root "$J"
}

# spills: a file written through the mount is staged in CWD/T
case_relative_tmpdir_spills() {
    rel_daemon || { bad "the daemon with relative paths did not start"; return; }
    head -c 3000000 /dev/urandom >"$WORK/data"
    exec 3>"$CWD/mnt/spilled"
    cat "$WORK/data" >&3
    check "a file being written is staged in the start directory's tmpdir" \
        bash -c "ls -l /proc/$DPID/fd | grep -q '$CWD/$T/'"
    exec 3>&-
    check "the spilled file reached S3 byte for byte" same_in_s3 spilled "$WORK/data"
    nothing_under_root "$T"
}

# SIGHUP re-reads the relative passwd file: a wrong secret makes new requests
# fail, the right one makes them work again
hup_read() { test "$(grep -c "SIGHUP: credentials read again (passwd file $CWD/$K/passwd)" "$SYSLOG")" -ge "$1"; }
case_relative_passwd_sighup() {
    local seen
    rel_daemon || { bad "the daemon with relative paths did not start"; return; }
    echo one >"$WORK/one" && echo two >"$WORK/two"
    s3c put "$BUCKET" hup1 "$WORK/one" >/dev/null
    s3c put "$BUCKET" hup2 "$WORK/two" >/dev/null
    # the reloads seen so far (none, but for an earlier run of this case)
    seen=$(grep -c "SIGHUP: credentials read again (passwd file $CWD/$K/passwd)" "$SYSLOG")
    printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "wrong-secret" >"$CWD/$K/passwd"
    kill -HUP "$DPID"
    check "SIGHUP: the passwd file is read again from the start directory" wait_for 20 hup_read $((seen + 1))
    check_err "a wrong secret after SIGHUP: a new request is refused" "Permission denied" cat "$CWD/mnt/hup1"
    printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$CWD/$K/passwd"
    kill -HUP "$DPID"
    check "SIGHUP again: read again" wait_for 20 hup_read $((seen + 2))
    check_eq "the right secret after SIGHUP: requests work" two "$(cat "$CWD/mnt/hup2")"
    check_not "syslog: no failed reload" grep -q "credentials not read again" "$SYSLOG"
    nothing_under_root "$K"
}

# one warning line for the http:// endpoint, on the terminal and in syslog
# (this daemon's lines: other cases start daemons of their own)
case_relative_http_warning() {
    rel_daemon || { bad "the daemon with relative paths did not start"; return; }
    check_eq "http:// endpoint: one warning line on the terminal" 1 "$(grep -c "warning: endpoint $S3_ENDPOINT is plain HTTP" "$WORK/term.out")"
    check_eq "http:// endpoint: the terminal has nothing else" 1 "$(wc -l <"$WORK/term.out")"
    check_eq "http:// endpoint: one warning line in syslog" 1 "$(grep -c "s3cfs\[$DPID\]: .*warning: endpoint $S3_ENDPOINT is plain HTTP" "$SYSLOG")"
    check_not "syslog: never the secret key" grep -qF "$AWS_SECRET_ACCESS_KEY" "$SYSLOG"
}

case_relative_unmount_leaves_nothing() {
    rel_daemon || { bad "the daemon with relative paths did not start"; return; }
    unmount "$CWD/mnt" "$DPID"
    check_not "the daemon exited after the unmount" kill -0 "$DPID"
    nothing_under_root "$J" "$T" "$K"
    check_not "syslog: no journal error" grep -qiE "journal.*(fail|cannot)" "$SYSLOG"
}

# a relative AWS_SHARED_CREDENTIALS_FILE is re-read on SIGHUP too
profile_read() { grep -q "s3cfs\[$1\]: .*SIGHUP: credentials read again (profile default)" "$SYSLOG"; }
case_relative_credentials_sighup() {
    local rc pid
    echo cred >"$WORK/cred"
    s3c put "$BUCKET" cred1 "$WORK/cred" >/dev/null
    printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
        "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$CWD/$K/credentials"
    (cd "$CWD" && nocreds env AWS_SHARED_CREDENTIALS_FILE="$K/credentials" "$S3CFS_BIN" \
        -o "endpoint=$S3_ENDPOINT,journal_dir=$J,attr_ttl=0,negative_ttl=0" "$BUCKET" mnt2 \
        >"$WORK/term2.out" 2>&1)
    rc=$?
    check_eq "relative AWS_SHARED_CREDENTIALS_FILE: mounted ($(head -c 300 "$WORK/term2.out"))" 0 $rc
    pid=$(pid_of "$BUCKET mnt2")
    [ -n "$pid" ] || { bad "no daemon on $CWD/mnt2"; return; }
    DAEMONS+=("$pid")
    kill -HUP "$pid"
    check "SIGHUP: the relative credentials file is read again" wait_for 20 profile_read "$pid"
    check_eq "and requests work" cred "$(cat "$CWD/mnt2/cred1")"
    unmount "$CWD/mnt2" "$pid"
    check_not "no failed reload" grep -q "credentials not read again" "$SYSLOG"
    check_not "still nothing under / (/$K)" test -e "/$K"
}

# --- not dumpable, unless -o dumpable ------------------------------------------
# seen from a daemon run as nobody: a non-dumpable process's /proc/PID files
# are root's (as root, s3cfs's would be root's either way). libfuse mounts
# through the setuid fusermount3 then, which needs a /dev/fuse others may
# open: a node of our own in the private /dev (the host's may be 0600).
# nobody_setup: that node and nobody's directories, once
nobody_setup() {
    [ -e "$N/.ready" ] && return 0
    umount /dev/fuse && rm -f /dev/fuse && mknod -m 666 /dev/fuse c 10 229 || return 1
    mkdir -p "$N/mnt" "$N/mnt2" "$N/journal" && chown -R nobody: "$N" &&
        chmod 711 "$WORK" "$CWD" && touch "$N/.ready"
}
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$N" "$@"; }
owner_mode() { stat -c '%U %a' "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
# start_as_nobody WHAT OPTS MNT [VAR=VALUE...]: BUCKET's daemon on MNT as
# nobody, with ",OPTS" after endpoint and tmpdir and the environment given;
# checks that it started, and sets PID (status 1 when there is none)
start_as_nobody() {
    local what=$1 opts=$2 mnt=$3 out rc
    shift 3
    out=$WORK/nobody-${mnt##*/}.out
    as_nobody env "$@" "$S3CFS_BIN" -o "endpoint=$S3_ENDPOINT,tmpdir=$N$opts" \
        "$BUCKET" "$mnt" >"$out" 2>&1
    rc=$?
    check_eq "$what as nobody: exit 0 ($(head -c 300 "$out"))" 0 $rc
    PID=$(pid_of "$BUCKET $mnt")
    [ -n "$PID" ] || { bad "no daemon on $mnt"; return 1; }
    DAEMONS+=("$PID")
}

case_nobody_not_dumpable() {
    local pid
    nobody_setup || { bad "the setup for nobody's daemons"; return; }
    # no journal_dir: a user other than root gets ~/.local/state/s3cfs
    start_as_nobody s3cfs "" "$N/mnt" || return
    pid=$PID
    check_eq "the daemon runs as nobody" nobody "$(ps -o user= -p "$pid" 2>/dev/null)"
    check_eq "not dumpable: /proc/PID/status of nobody's daemon is root's" root "$(stat -c %U "/proc/$pid/status")"
    check_eq "a file written through nobody's mount" "as nobody" \
        "$(echo "as nobody" | as_nobody tee "$N/mnt/nobody" >/dev/null; s3c get "$BUCKET" nobody -)"
    check_eq "nobody's default journal directory: ~/.local/state/s3cfs, nobody's, 0700" \
        "nobody 700 nobody 700" "$(owner_mode "$N/.local/state" "$N/.local/state/s3cfs")"
    check "nobody's journal is in it" compgen -G "$N/.local/state/s3cfs/journal-*.log"
    unmount "$N/mnt" "$pid"
    check_not "nobody's daemon exited" kill -0 "$pid"
}

case_nobody_dumpable() {
    local pid
    nobody_setup || { bad "the setup for nobody's daemons"; return; }
    # and $XDG_STATE_HOME/s3cfs when that is set
    start_as_nobody "s3cfs -o dumpable" ,dumpable "$N/mnt2" XDG_STATE_HOME="$N/xdg" || return
    pid=$PID
    check_eq "-o dumpable: /proc/PID/status is nobody's" nobody "$(stat -c %U "/proc/$pid/status")"
    check_eq "with XDG_STATE_HOME: \$XDG_STATE_HOME/s3cfs, nobody's, 0700" "nobody 700" \
        "$(owner_mode "$N/xdg/s3cfs")"
    check "that journal is in it" compgen -G "$N/xdg/s3cfs/journal-*.log"
    unmount "$N/mnt2" "$pid"
    check_not "nobody's -o dumpable daemon exited" kill -0 "$pid"
}

run_cases "$@"
