#!/bin/bash
# Open files outlive their names (doc/DESIGN.md §3.12): a file unlinked, replaced
# or renamed while open stays fully usable through its descriptors until
# the last close, as on a local disk, and nothing is uploaded under a name
# it no longer has (nor under libfuse's hidden .fuse_hidden* names).
# Each case uses names of its own, in the mount's top directory.
. "$(dirname "$0")/lib.sh"
fs_setup

# py SCRIPT: run a Python snippet in the mount; its stdout is the result
py() { python3 -c "$1" 2>&1; }
alive() { mountpoint -q "$MNT" && ls "$MNT" >/dev/null 2>&1; }
# the bucket's keys, one a line, sorted
keys() { s3c find "$BUCKET" | awk '{print $2}' | LC_ALL=C sort; }
# keys_added BEFORE: the keys the bucket holds now that BEFORE (an earlier
# `keys`) did not, on one line: what the case left, whatever its names,
# so a key under an old or a hidden name shows wherever it is
keys_added() { LC_ALL=C comm -13 <(printf '%s\n' "$1") <(keys) | tr '\n' ' ' | sed 's/ $//'; }
# ends_with LIVE BEFORE: the daemon is still up and, once everything
# landed, the case left exactly its live names LIVE in S3
ends_with() {
    check "the daemon is alive" alive
    landed
    check_eq "S3 holds exactly the live names" "$1" "$(keys_added "$2")"
}

# the pattern that killed the daemon: create, unlink, then I/O on the fd
case_unlinked_new_file_io() {
    local out before
    before=$(keys)
    out=$(py "
import os
fd = os.open('f', os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
os.unlink('f')
os.write(fd, b'hello')
st = os.fstat(fd)
print(os.pread(fd, 5, 0).decode(), st.st_nlink, st.st_size, end=' ')
os.ftruncate(fd, 3)
os.fchmod(fd, 0o600)
os.fsync(fd)
st = os.fstat(fd)
print(os.pread(fd, 10, 0).decode(), st.st_size, oct(st.st_mode & 0o777), os.path.exists('f'), end=' ')
os.close(fd)
print('closed')")
    check_eq "unlinked while open: write, pread, fstat (nlink 0), ftruncate, fchmod, fsync" \
        "hello 0 5 hel 3 0o600 False closed" "$out"
    check "the daemon is alive" alive
    landed
    check_eq "nothing uploaded under the old or a hidden name" "" "$(keys_added "$before")"
}

# an object in S3, opened, unlinked: its content stays readable
case_unlinked_object_readable() {
    local out before
    before=$(keys)
    head -c 300000 /dev/urandom >"$WORK/g"
    cp "$WORK/g" g
    out=$(py "
import os, hashlib
fd = os.open('g', os.O_RDONLY)
os.unlink('g')
st = os.fstat(fd)
data = b''
while True:
    b = os.read(fd, 65536)
    if not b: break
    data += b
print(st.st_nlink, st.st_size, hashlib.md5(data).hexdigest(), end=' ')
with open('g', 'w') as n: n.write('new file')
print(os.pread(fd, 4, 0) == data[:4], open('g').read())
os.close(fd)")
    check_eq "unlinked object: fstat and the whole content through the fd; a new g is independent" \
        "0 300000 $(md5sum <"$WORK/g" | cut -d' ' -f1) True new file" "$out"
    landed
    check_eq "S3 holds only the new g" "new file" "$(aws_ s3 cp --quiet "s3://$BUCKET/g" -)"
    ends_with "g" "$before"
}

# writes through the fd of an unlinked object stay local
case_unlinked_object_writes_local() {
    local out before
    before=$(keys)
    echo original >w
    out=$(py "
import os
fd = os.open('w', os.O_RDWR)
os.unlink('w')
os.pwrite(fd, b'CHANGED', 0)
print(os.pread(fd, 20, 0).decode().strip())
os.close(fd)")
    check_eq "write to an unlinked object through its fd" "CHANGEDl" "$out"
    landed
    check_not "the unlinked object is not uploaded again" aws_ s3api head-object --bucket "$BUCKET" --key w
    ends_with "" "$before"
}

# a rename over an open file: the open fd keeps the old content
case_rename_over_open_file() {
    local out before
    before=$(keys)
    echo old >h
    echo new >h2
    out=$(py "
import os
fd = os.open('h', os.O_RDONLY)
os.rename('h2', 'h')
print(os.pread(fd, 10, 0).decode().strip(), open('h').read().strip(), os.fstat(fd).st_nlink)
os.close(fd)")
    check_eq "rename over an open file: the fd reads the old content, the name the new" "old new 0" "$out"
    landed
    check_eq "S3: the name has the new content" "new" "$(aws_ s3 cp --quiet "s3://$BUCKET/h" -)"
    ends_with "h" "$before"
}

# an open file renamed, then written: uploaded under its new name only
case_open_file_renamed_written() {
    local out before
    before=$(keys)
    out=$(py "
import os
fd = os.open('r1', os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b'first')
os.fsync(fd)
os.rename('r1', 'r2')
os.write(fd, b'-second')
os.close(fd)
print(open('r2').read())")
    check_eq "write after rename of the open file" "first-second" "$out"
    landed
    check_eq "S3: r2 has every byte" "first-second" "$(aws_ s3 cp --quiet "s3://$BUCKET/r2" -)"
    check_not "S3: nothing under the old name" aws_ s3api head-object --bucket "$BUCKET" --key r1
    ends_with "r2" "$before"
}

# a server-side copy's destination, open, then unlinked before it landed
case_unlinked_copy_destination() {
    local out before
    before=$(keys)
    head -c 100000 /dev/urandom >"$WORK/src"
    cp "$WORK/src" src
    out=$(py "
import os, hashlib, subprocess
subprocess.run(['cp', 'src', 'dst'], check=True)
fd = os.open('dst', os.O_RDONLY)
os.unlink('dst')
data = os.pread(fd, 200000, 0)
print(len(data), hashlib.md5(data).hexdigest())
os.close(fd)")
    check_eq "a copied file unlinked while open reads the copy" \
        "100000 $(md5sum <"$WORK/src" | cut -d' ' -f1)" "$out"
    landed
    check_not "S3: the unlinked copy is gone" aws_ s3api head-object --bucket "$BUCKET" --key dst
    ends_with "src" "$before"
}

# a directory removed while open: libfuse itself answers ESTALE to a
# readdir of it (it has no path for it any more); the daemon stays up
case_removed_open_directory() {
    local out before
    before=$(keys)
    mkdir gone
    out=$(py "
import os
fd = os.open('gone', os.O_RDONLY | os.O_DIRECTORY)
os.rmdir('gone')
try:
    print(os.listdir(fd), end=' ')
except OSError as e:
    print(e.errno == 116, end=' ')
os.close(fd)
print('ok')")
    check_eq "readdir of a removed directory: ESTALE from libfuse" "True ok" "$out"
    ends_with "" "$before"
}

# open files inside a directory that is renamed follow it
case_open_files_follow_dir_rename() {
    local out before
    before=$(keys)
    mkdir od
    echo a >od/x
    out=$(py "
import os
fd = os.open('od/f', os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b'one')
fd2 = os.open('od/x', os.O_RDONLY)
os.rename('od', 'od2')
os.write(fd, b'-two')
os.close(fd)
print(os.read(fd2, 10).decode().strip(), open('od2/f').read())
os.close(fd2)")
    check_eq "open files follow their directory's rename" "a one-two" "$out"
    landed
    check_eq "S3: the open file landed under the new name only" "one-two" \
        "$(aws_ s3 cp --quiet "s3://$BUCKET/od2/f" -)"
    check_not "S3: nothing under the old directory" aws_ s3api head-object --bucket "$BUCKET" --key od/f
    ends_with "od2/ od2/f od2/x" "$before"
}

# renames of an open file racing its own flushes (close of a dup) in another
# thread: the node's path is read by the flush and replaced by the rename
# (the TSan run of this test is the check that both are under one lock)
case_renames_racing_flushes() {
    local out before
    before=$(keys)
    out=$(py "
import os, threading
fd = os.open('ra', os.O_CREAT | os.O_RDWR, 0o644)
stop = False
def writer():
    i = 0
    while not stop:
        os.pwrite(fd, b'%04d' % i, 0)
        os.close(os.dup(fd))  # a flush: the kernel does not order it with rename
        if i % 8 == 0:
            os.fsync(fd)
        i += 1
t = threading.Thread(target=writer)
t.start()
for i in range(40):
    os.rename('ra' if i % 2 == 0 else 'rb', 'rb' if i % 2 == 0 else 'ra')
stop = True
t.join()
os.pwrite(fd, b'done', 0)
os.close(fd)
print(open('ra').read(), os.path.exists('rb'))")
    check_eq "renames racing flushes: the file ends whole under its last name" "done False" "$out"
    landed
    check_eq "S3: the raced file is under its last name only" "done" "$(aws_ s3 cp --quiet "s3://$BUCKET/ra" -)"
    check_not "S3: nothing under its other name" aws_ s3api head-object --bucket "$BUCKET" --key rb
    ends_with "ra" "$before"
}

run_cases "$@"
