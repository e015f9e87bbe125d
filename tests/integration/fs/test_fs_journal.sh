#!/bin/bash
# The intent journal through a real mount (issue 13 §1): a journal directory
# others can write to, or another user's, is refused; so are a symlink or
# another user's file planted at the journal's name; a journal of another
# source is not replayed, nor a record outside the mount; a second mount of
# the same mount point waits while the first one drains (no job runs
# twice); a replayed delete spares an object uploaded after it was queued;
# fsync, sync DIR, s3cfs-ctl wait and unmount fsync the journal.
#
# Each case has a mount point and a journal directory of its own (own_dirs):
# the journal one case leaves (live jobs, a planted file) is never the next
# one's. The buckets and the proxy are shared.
. "$(dirname "$0")/lib.sh"
CTL=${S3CFS_CTL:-$(dirname "$S3CFS_BIN")/s3cfs-ctl}
[ -x "$CTL" ] || { echo "no s3cfs-ctl next to $S3CFS_BIN" >&2; exit 2; }
trap fs_cleanup EXIT
BUCKET=$(new_bucket)
B2=$(new_bucket)
start_proxy

# the proxy as it started: no faults, no delays
faults_off() {
    proxy_config "fault_rate=0&faults=none&fault_kinds=all"
    proxy_config "delay.CopyObject=-1"
}
# own_dirs: the calling case's own mount point (MNT) and journal directory
# (JDIR, mode 700), and OPTS to mount with them; the proxy without faults
own_dirs() {
    local name=${FUNCNAME[1]#case_}
    MNT=$WORK/$name
    JDIR=$WORK/$name.journal
    mkdir -p "$MNT" "$JDIR"
    chmod 700 "$JDIR"
    OPTS="endpoint=$PROXY,journal_dir=$JDIR,attr_ttl=1,dir_ttl=1"
    faults_off
}
# mount_j SPEC: mount SPEC (a bucket, or BUCKET:/PREFIX) on MNT with OPTS
mount_j() {
    mount_fs "$MNT" "$1" -o "$OPTS" || { bad "cannot mount $1 on $MNT"; return 1; }
}

# try_mount DIR SPEC [OPTS]: a mount expected to be refused before it
# mounts; sets RC (99: it mounted) and OUT (what it printed)
try_mount() {
    "$S3CFS_BIN" -f -o "${3:-$OPTS}" "$2" "$1" >"$WORK/try.out" 2>&1 &
    local pid=$!
    RC=
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid"; RC=$?; break; }
        if mountpoint -q "$1"; then
            RC=99
            fusermount3 -u "$1"
            wait_until 30 not_running "$pid"
            break
        fi
        sleep 0.1
    done
    [ -n "$RC" ] || { kill -9 "$pid"; RC=98; }
    wait "$pid" 2>/dev/null
    OUT=$(cat "$WORK/try.out")
}
refused() { [ "$RC" -ne 0 ] && [ "$RC" -lt 98 ]; }
daemon_pid() { # DIR: the newest daemon serving DIR
    local i p=
    for i in "${!MOUNTS[@]}"; do [ "${MOUNTS[$i]}" == "$1" ] && p=${PIDS[$i]}; done
    echo "$p"
}
forget_daemon() { # DIR PID: lib.sh no longer waits for that daemon
    local i
    for i in "${!MOUNTS[@]}"; do
        [ "${MOUNTS[$i]}" == "$1" ] && [ "${PIDS[$i]}" == "$2" ] && unset 'MOUNTS[i]' 'PIDS[i]'
    done
}
kill_daemon() { # DIR: SIGKILL its daemon, as a crash
    local pid
    pid=$(daemon_pid "$1")
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    fusermount3 -u "$1" 2>/dev/null || umount -l "$1"
    forget_daemon "$1" "$pid"
}
count_s3() { s3c ls "$1" "$2" | grep -c .; } # BUCKET PREFIX
exists_s3() { s3c head "$1" "$2" >/dev/null 2>&1; }
put_s3() { s3c put "$1" "$2" "$3" >/dev/null; } # BUCKET KEY FILE
# a journal line with its checksum (FNV-1a of the line, as fs/engine/journal.c)
record() {
    python3 -c 'import sys
h = 2166136261
for b in sys.argv[1].encode():
    h = ((h ^ b) * 16777619) & 0xffffffff
print("%s %08x" % (sys.argv[1], h))' "$1"
}
# the proxy has stalled more requests than N
stalls_above() { [ "$(proxy_count fault.stall)" -gt "$1" ]; }
# crash_with_deletes FILE...: rm the files through MNT while every
# DeleteObjects stalls, then kill the daemon while they do: the deletes
# stay queued in the journal, never done
crash_with_deletes() {
    local stalls
    stalls=$(proxy_count fault.stall)
    # after the mount: its condition probe sends deletes of its own
    proxy_config "fault_rate=1&faults=stall&fault_kinds=DeleteObjects&stall_ms=30000"
    rm "$@"
    wait_until 10 stalls_above "$stalls" # the delete is sent, and stalls
    kill_daemon "$MNT"
    faults_off
}

# ---- directories and files the daemon must not trust ----
# refused_journal_dir DIR WHAT MESSAGE: a mount with its journal in DIR is
# refused, and says MESSAGE
refused_journal_dir() {
    try_mount "$MNT" "$BUCKET" "$OPTS,journal_dir=$1"
    check "$2 is refused (exit $RC)" refused
    check "  with a clear message" grep -q "$3" <<<"$OUT"
}

case_world_writable_dir_refused() {
    local shared=$WORK/shared
    own_dirs
    mkdir -p "$shared" && chmod 1777 "$shared"
    refused_journal_dir "$shared" "a world-writable journal directory" \
        "journal directory $shared is writable by its group or by others"
}

case_other_users_dir_refused() {
    local other=$WORK/other
    own_dirs
    mkdir -p "$other" && chmod 700 "$other" && chown nobody "$other"
    refused_journal_dir "$other" "another user's journal directory" \
        "journal directory $other is owned by uid"
}

# mounted_once: $BUCKET mounted on MNT, hello written, unmounted; JFILE is
# the journal it left (status 1 when there is not exactly one)
mounted_once() {
    mount_j "$BUCKET" || return 1
    echo hello >"$MNT/hello"
    unmount_fs "$MNT"
    JFILE=$(ls "$JDIR"/journal-*.log)
    [ -f "$JFILE" ]
}

case_journal_records_source() {
    own_dirs
    mounted_once
    check "one journal for the mount point" test -f "$JFILE"
    check "its first line records the source" grep -q "^S 0 endpoint%3D.*$BUCKET.*mountpoint%3D" "$JFILE"
}

case_planted_symlink_refused() {
    local victim=$WORK/victim
    own_dirs
    mounted_once || { bad "no journal after a mount"; return; }
    printf 'precious, no final newline' >"$victim"
    rm -f "$JFILE" && ln -s "$victim" "$JFILE"
    try_mount "$MNT" "$BUCKET"
    check "a symlink planted at the journal's name is refused (exit $RC)" refused
    check "  with a clear message" grep -q "is a symbolic link: refusing it" <<<"$OUT"
    check_eq "  and its target is untouched" "precious, no final newline" "$(cat "$victim")"
    rm -f "$JFILE"
}

case_planted_other_users_journal_refused() {
    own_dirs
    mounted_once || { bad "no journal after a mount"; return; }
    rm -f "$JFILE"
    record "D 1 $BUCKET hello 0 1" >"$JFILE"
    chown nobody "$JFILE"
    try_mount "$MNT" "$BUCKET"
    check "a journal planted by another user is refused (exit $RC)" refused
    check "  with a clear message" grep -q "is owned by another user: refusing it" <<<"$OUT"
    check "  and its job did not run" exists_s3 "$BUCKET" hello
    rm -f "$JFILE"
}

# ---- a journal of another source is not replayed ----
case_other_source_not_replayed() {
    own_dirs
    echo one >"$WORK/one"
    put_s3 "$B2" "one" "$WORK/one"
    put_s3 "$BUCKET" "one" "$WORK/one"
    sleep 1.1 # older than the second its delete is queued in (a replay spares newer ones)
    mount_j "$B2" || return
    crash_with_deletes "$MNT/one"
    check "the delete of $B2/one is still queued" exists_s3 "$B2" one
    try_mount "$MNT" "$BUCKET"
    check "a journal of another source with live jobs is refused (exit $RC)" refused
    check "  with a clear message" grep -q "unfinished operations of another source: .*bucket=$B2" <<<"$OUT"
    check "  its delete did not run on $BUCKET" exists_s3 "$BUCKET" one
    check "  nor on $B2" exists_s3 "$B2" one
    mount_j "$B2" || return
    check_not "the mount of its own source replays it" exists_s3 "$B2" one
    unmount_fs "$MNT"
}

# ---- a record outside the mount is not replayed ----
case_outside_mount_not_replayed() {
    local now
    own_dirs
    echo out >"$WORK/out"
    put_s3 "$BUCKET" "outside" "$WORK/out"
    put_s3 "$BUCKET" "sub/inside" "$WORK/out"
    mount_j "$BUCKET:/sub" || return
    unmount_fs "$MNT"
    JFILE=$(ls "$JDIR"/journal-*.log)
    now=$(date +%s)
    { record "D 100 $BUCKET outside 0 $now"; record "D 101 $B2 one-more 0 $now"; \
      record "D 102 $BUCKET sub/inside 0 $((now + 5))"; } >>"$JFILE"
    mount_j "$BUCKET:/sub" || return
    check "a replayed key outside the prefix is not deleted" exists_s3 "$BUCKET" outside
    check "  and says why" grep -q "is not a key of this mount" "$WORK/s3cfs.log"
    check_not "a replayed key inside it is" exists_s3 "$BUCKET" sub/inside
    unmount_fs "$MNT"
}

# ---- a replayed delete spares what was uploaded after it was queued ----
case_replay_spares_newer_upload() {
    own_dirs
    echo old >"$WORK/old"
    mount_j "$BUCKET" || return
    cp "$WORK/old" "$MNT/kept"
    cp "$WORK/old" "$MNT/removed"
    landed "$MNT"
    sleep 1.2 # both objects are older than the second the deletes are queued in
    crash_with_deletes "$MNT/kept" "$MNT/removed"
    echo "another client's" >"$WORK/new"
    put_s3 "$BUCKET" "kept" "$WORK/new"
    mount_j "$BUCKET" || return
    check_eq "the replayed delete spared the object uploaded after it" "another client's" \
        "$(s3c get "$BUCKET" kept -)"
    check "  and says so" grep -q "not deleting $BUCKET/kept: it was written" "$WORK/s3cfs.log"
    check_not "the other replayed delete ran" exists_s3 "$BUCKET" removed
    unmount_fs "$MNT"
}

# ---- a replayed delete removes the file written in its own second ----
# in the first 0.3 s of a second (time for an upload and an rm in the same one)
early_in_second() { [ "$(date +%N | cut -c1)" -lt 3 ]; }
case_replay_deletes_own_upload_same_second() {
    own_dirs
    echo fresh >"$WORK/fresh"
    mount_j "$BUCKET" || return
    # Last-Modified has whole seconds: the object of a file written and
    # removed at once (rm -r after a build) ties with the second its delete
    # was queued in; the ETag the mount knew tells it from a later object.
    # Files are written and removed until one pair falls in one second.
    local stalls i tied=0
    stalls=$(proxy_count fault.stall)
    proxy_config "fault_rate=1&faults=stall&fault_kinds=DeleteObjects&stall_ms=30000"
    for i in 1 2 3 4 5 6 7 8; do
        wait_until 5 early_in_second
        local put_at
        put_at=$(date +%s)
        cp "$WORK/fresh" "$MNT/fresh$i"
        rm "$MNT/fresh$i"
        [ "$(date +%s)" = "$put_at" ] && tied=$i && break
    done
    wait_until 10 stalls_above "$stalls" # the deletes are sent, and stall
    kill_daemon "$MNT"
    faults_off
    check "an upload and its rm fell in one second (pair $tied)" [ "$tied" -gt 0 ]
    check "the delete of fresh$tied is still queued" exists_s3 "$BUCKET" "fresh$tied"
    mount_j "$BUCKET" || return
    check_eq "the replayed deletes removed every file" "" "$(s3c ls "$BUCKET" fresh)"
    check_not "  and the mount does not show it" test -e "$MNT/fresh$tied"
    unmount_fs "$MNT"
}

# ---- durability points fsync the journal ----
# every thread of PID is traced (strace attached to each)
all_traced() {
    local t
    for t in /proc/"$1"/task/*/status; do grep -qE '^TracerPid:\s+[1-9]' "$t" || return 1; done
}
synced() { grep -c "fsync(.*journal-" "$STRACE"; }
# syncs_journal DESCRIPTION COPY COMMAND...: queue a copy to COPY, then
# COMMAND: passes when the daemon fsynced its journal meanwhile
syncs_journal() {
    local d=$1 copy=$2 before
    shift 2
    cp "$MNT/durable" "$MNT/$copy"
    before=$(synced)
    "$@" >/dev/null
    check "$d" test "$(synced)" -gt "$before"
}
# traced_unmount PID SPID: unmount MNT, wait for the daemon PID and its
# strace SPID to end
traced_unmount() {
    fusermount3 -u "$MNT"
    wait_until 30 not_running "$1"
    forget_daemon "$MNT" "$1"
    wait "$2" 2>/dev/null
}

case_durability_points_fsync() {
    local pid spid
    own_dirs
    # LeakSanitizer cannot run in a traced process (the sanitizer builds)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mount_j "$BUCKET" || return
    echo durable >"$MNT/durable"
    landed "$MNT"
    pid=$(daemon_pid "$MNT")
    STRACE=$WORK/strace.log
    strace -f -y -e trace=fsync,fdatasync -p "$pid" -o "$STRACE" 2>/dev/null &
    spid=$!
    wait_until 10 all_traced "$pid" # attached to every thread
    syncs_journal "fsync of a file fsyncs the journal" c1 sync "$MNT/c1"
    syncs_journal "sync DIR fsyncs the journal" c2 sync "$MNT"
    syncs_journal "s3cfs-ctl wait fsyncs the journal" c3 "$CTL" wait "$MNT"
    syncs_journal "unmount fsyncs the journal" c4 traced_unmount "$pid" "$spid"
    check "the copies landed" exists_s3 "$BUCKET" c4
}

# ---- a second mount of the same mount point while the first drains ----
case_second_mount_waits_for_drain() {
    local i first copies src=$WORK/drain-src
    own_dirs
    mkdir -p "$src"
    for i in 1 2 3 4 5 6; do echo "file $i" >"$src/f$i"; done
    mount_j "$BUCKET" || return
    mkdir "$MNT/src"
    cp "$src"/f? "$MNT/src/"
    landed "$MNT"
    proxy_config "delay.CopyObject=2500"
    proxy_reset
    cp -r "$MNT/src" "$MNT/dst"
    first=$(daemon_pid "$MNT")
    fusermount3 -u "$MNT" # the daemon goes on until its copies landed
    mount_j "$BUCKET" || { faults_off; return; }
    # a mount replays before it serves: had it not waited, it would have
    # run the first one's copies again
    # (less the 3 CopyObject of the mount's condition probe: README,
    # Conditional requests)
    copies=$(($(proxy_count CopyObject) - 3))
    # the second daemon queues copies at once; they stall (never reach S3)
    proxy_config "fault_rate=1&faults=stall&fault_kinds=CopyObject&stall_ms=30000"
    cp -r "$MNT/src" "$MNT/again"
    check "the second mount waited with a message" grep -q "is in use by another s3cfs (pid $first)" "$WORK/s3cfs.log"
    check "the first daemon exits" wait_until 30 not_running "$first"
    wait "$first" 2>/dev/null
    forget_daemon "$MNT" "$first"
    # 6 copies of the files, and 1 self-copy of dst's marker carrying its new
    # times (dirtimes); a replay by the second mount would have added 6 more
    check_eq "the first mount's copies ran once (the second mount replayed none)" 7 "$copies"
    check_eq "all of them in S3" 6 "$(count_s3 "$BUCKET" dst/f)"
    # the first daemon's final compaction left the second one's records:
    # killed with its copies queued, the next mount finishes them
    kill_daemon "$MNT"
    faults_off
    check_eq "the second daemon's copies had not landed" 0 "$(count_s3 "$BUCKET" again/f)"
    mount_j "$BUCKET" || return
    landed "$MNT"
    check_eq "the next mount replayed them" 6 "$(count_s3 "$BUCKET" again/f)"
    unmount_fs "$MNT"
}

run_cases "$@"
