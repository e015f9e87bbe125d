#!/bin/bash
# The intent journal through a real mount (issue 13 §1): a journal directory
# others can write to, or another user's, is refused; so are a symlink or
# another user's file planted at the journal's name; a journal of another
# source is not replayed, nor a record outside the mount; a second mount of
# the same mount point waits while the first one drains (no job runs
# twice); a replayed delete spares an object uploaded after it was queued;
# fsync, sync DIR, s3cfs-ctl wait and unmount fsync the journal.
. "$(dirname "$0")/lib.sh"
CTL=${S3CFS_CTL:-$(dirname "$S3CFS_BIN")/s3cfs-ctl}
[ -x "$CTL" ] || { echo "no s3cfs-ctl next to $S3CFS_BIN" >&2; exit 2; }
trap fs_cleanup EXIT
BUCKET=$(new_bucket)
B2=$(new_bucket)
start_proxy
MNT=$WORK/mnt
JDIR=$WORK/journal
mkdir -p "$MNT" "$JDIR"
chmod 700 "$JDIR"
OPTS="endpoint=$PROXY,journal_dir=$JDIR,attr_ttl=1,dir_ttl=1"

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
            wait_gone "$pid"
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
forget_mount() { # DIR PID: lib.sh no longer waits for that daemon
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
    forget_mount "$1" "$pid"
}
wait_gone() { # PID [TENTHS]
    for _ in $(seq 1 "${2:-300}"); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    return 1
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

# ---- directories and files the daemon must not trust ----
SHARED=$WORK/shared
mkdir -p "$SHARED" && chmod 1777 "$SHARED"
try_mount "$MNT" "$BUCKET" "$OPTS,journal_dir=$SHARED"
check "a world-writable journal directory is refused (exit $RC)" refused
check "  with a clear message" grep -q "journal directory $SHARED is writable by its group or by others" <<<"$OUT"
OTHER=$WORK/other
mkdir -p "$OTHER" && chmod 700 "$OTHER" && chown nobody "$OTHER"
try_mount "$MNT" "$BUCKET" "$OPTS,journal_dir=$OTHER"
check "another user's journal directory is refused (exit $RC)" refused
check "  with a clear message" grep -q "journal directory $OTHER is owned by uid" <<<"$OUT"

mount_fs "$MNT" "$BUCKET" -o "$OPTS" || exit 2
echo hello >"$MNT/hello"
unmount_fs "$MNT"
JFILE=$(ls "$JDIR"/journal-*.log)
check "one journal for the mount point" test -f "$JFILE"
check "its first line records the source" grep -q "^S 0 endpoint%3D.*$BUCKET.*mountpoint%3D" "$JFILE"
VICTIM=$WORK/victim
printf 'precious, no final newline' >"$VICTIM"
rm -f "$JFILE" && ln -s "$VICTIM" "$JFILE"
try_mount "$MNT" "$BUCKET"
check "a symlink planted at the journal's name is refused (exit $RC)" refused
check "  with a clear message" grep -q "is a symbolic link: refusing it" <<<"$OUT"
check_eq "  and its target is untouched" "precious, no final newline" "$(cat "$VICTIM")"
rm -f "$JFILE"
record "D 1 $BUCKET hello 0 1" >"$JFILE"
chown nobody "$JFILE"
try_mount "$MNT" "$BUCKET"
check "a journal planted by another user is refused (exit $RC)" refused
check "  with a clear message" grep -q "is owned by another user: refusing it" <<<"$OUT"
check "  and its job did not run" exists_s3 "$BUCKET" hello
rm -f "$JFILE"

# ---- a journal of another source is not replayed ----
echo one >"$WORK/one"
put_s3 "$B2" "one" "$WORK/one"
put_s3 "$BUCKET" "one" "$WORK/one"
sleep 1.1 # older than the second its delete is queued in (a replay spares newer ones)
mount_fs "$MNT" "$B2" -o "$OPTS" || exit 2
# after the mount: its condition probe sends deletes of its own
proxy_config "fault_rate=1&faults=stall&fault_kinds=DeleteObjects&stall_ms=30000"
rm "$MNT/one"
sleep 1 # the delete is sent, and stalls
kill_daemon "$MNT"
proxy_config "fault_rate=0&faults=none&fault_kinds=all"
check "the delete of $B2/one is still queued" exists_s3 "$B2" one
try_mount "$MNT" "$BUCKET"
check "a journal of another source with live jobs is refused (exit $RC)" refused
check "  with a clear message" grep -q "unfinished operations of another source: .*bucket=$B2" <<<"$OUT"
check "  its delete did not run on $BUCKET" exists_s3 "$BUCKET" one
check "  nor on $B2" exists_s3 "$B2" one
mount_fs "$MNT" "$B2" -o "$OPTS" || exit 2
check_not "the mount of its own source replays it" exists_s3 "$B2" one
unmount_fs "$MNT"

# ---- a record outside the mount is not replayed ----
echo out >"$WORK/out"
put_s3 "$BUCKET" "outside" "$WORK/out"
put_s3 "$BUCKET" "sub/inside" "$WORK/out"
mount_fs "$MNT" "$BUCKET:/sub" -o "$OPTS" || exit 2
unmount_fs "$MNT"
now=$(date +%s)
{ record "D 100 $BUCKET outside 0 $now"; record "D 101 $B2 one-more 0 $now"; \
  record "D 102 $BUCKET sub/inside 0 $((now + 5))"; } >>"$JFILE"
mount_fs "$MNT" "$BUCKET:/sub" -o "$OPTS" || exit 2
check "a replayed key outside the prefix is not deleted" exists_s3 "$BUCKET" outside
check "  and says why" grep -q "is not a key of this mount" "$WORK/s3cfs.log"
check_not "a replayed key inside it is" exists_s3 "$BUCKET" sub/inside
unmount_fs "$MNT"

# ---- a replayed delete spares what was uploaded after it was queued ----
echo old >"$WORK/old"
mount_fs "$MNT" "$BUCKET" -o "$OPTS" || exit 2
cp "$WORK/old" "$MNT/kept"
cp "$WORK/old" "$MNT/removed"
landed "$MNT"
sleep 1.2 # both objects are older than the second the deletes are queued in
proxy_config "fault_rate=1&faults=stall&fault_kinds=DeleteObjects&stall_ms=30000"
rm "$MNT/kept" "$MNT/removed"
sleep 1
kill_daemon "$MNT"
proxy_config "fault_rate=0&faults=none&fault_kinds=all"
echo "another client's" >"$WORK/new"
put_s3 "$BUCKET" "kept" "$WORK/new"
mount_fs "$MNT" "$BUCKET" -o "$OPTS" || exit 2
check_eq "the replayed delete spared the object uploaded after it" "another client's" \
    "$(s3c get "$BUCKET" kept -)"
check "  and says so" grep -q "not deleting $BUCKET/kept: it was written" "$WORK/s3cfs.log"
check_not "the other replayed delete ran" exists_s3 "$BUCKET" removed

# ---- durability points fsync the journal ----
unmount_fs "$MNT"
# LeakSanitizer cannot run in a traced process (the sanitizer builds)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mount_fs "$MNT" "$BUCKET" -o "$OPTS" || exit 2
pid=$(daemon_pid "$MNT")
STRACE=$WORK/strace.log
strace -f -y -e trace=fsync,fdatasync -p "$pid" -o "$STRACE" 2>/dev/null &
SPID=$!
sleep 1 # attached to every thread
synced() { grep -c "fsync(.*journal-" "$STRACE"; }
cp "$MNT/kept" "$MNT/c1"
before=$(synced)
sync "$MNT/c1"
check "fsync of a file fsyncs the journal" test "$(synced)" -gt "$before"
cp "$MNT/kept" "$MNT/c2"
before=$(synced)
sync "$MNT"
check "sync DIR fsyncs the journal" test "$(synced)" -gt "$before"
cp "$MNT/kept" "$MNT/c3"
before=$(synced)
"$CTL" wait "$MNT" >/dev/null
check "s3cfs-ctl wait fsyncs the journal" test "$(synced)" -gt "$before"
cp "$MNT/kept" "$MNT/c4"
before=$(synced)
fusermount3 -u "$MNT"
wait_gone "$pid"
forget_mount "$MNT" "$pid"
wait "$SPID" 2>/dev/null
check "unmount fsyncs the journal" test "$(synced)" -gt "$before"
check "the copies landed" exists_s3 "$BUCKET" c4

# ---- a second mount of the same mount point while the first drains ----
for i in 1 2 3 4 5 6; do echo "file $i" >"$WORK/f$i"; done
mount_fs "$MNT" "$BUCKET" -o "$OPTS" || exit 2
mkdir "$MNT/src"
cp "$WORK"/f? "$MNT/src/"
landed "$MNT"
proxy_config "delay.CopyObject=2500"
proxy_reset
cp -r "$MNT/src" "$MNT/dst"
first=$(daemon_pid "$MNT")
fusermount3 -u "$MNT" # the daemon goes on until its copies landed
mount_fs "$MNT" "$BUCKET" -o "$OPTS" || exit 2
# a mount replays before it serves: had it not waited, it would have
# run the first one's copies again
# (less the 3 CopyObject of the mount's condition probe: README,
# Conditional requests)
copies=$(($(proxy_count CopyObject) - 3))
# the second daemon queues copies at once; they stall (never reach S3)
proxy_config "fault_rate=1&faults=stall&fault_kinds=CopyObject&stall_ms=30000"
cp -r "$MNT/src" "$MNT/again"
check "the second mount waited with a message" grep -q "is in use by another s3cfs (pid $first)" "$WORK/s3cfs.log"
check "the first daemon exits" wait_gone "$first"
wait "$first" 2>/dev/null
forget_mount "$MNT" "$first"
# 6 copies of the files, and 1 self-copy of dst's marker carrying its new
# times (dirtimes); a replay by the second mount would have added 6 more
check_eq "the first mount's copies ran once (the second mount replayed none)" 7 "$copies"
check_eq "all of them in S3" 6 "$(count_s3 "$BUCKET" dst/f)"
# the first daemon's final compaction left the second one's records:
# killed with its copies queued, the next mount finishes them
kill_daemon "$MNT"
proxy_config "fault_rate=0&faults=none&fault_kinds=all"
proxy_config "delay.CopyObject=-1"
check_eq "the second daemon's copies had not landed" 0 "$(count_s3 "$BUCKET" again/f)"
mount_fs "$MNT" "$BUCKET" -o "$OPTS" || exit 2
landed "$MNT"
check_eq "the next mount replayed them" 6 "$(count_s3 "$BUCKET" again/f)"
fs_done
