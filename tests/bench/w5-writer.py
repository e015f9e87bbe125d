#!/usr/bin/env python3
"""w5-writer.py SRC DST PID NOTE: copy SRC to DST in 1 MiB writes, as cp does,
and write to NOTE how long close() took after the last write and the largest
local staging of the daemon PID seen meanwhile: the bytes allocated to the
regular files it holds open (its temporary or cache files), less what they
held before the copy."""
import os
import sys
import time

src, dst, pid, note = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
MIB = 1 << 20


def staged():
    total = 0
    fds = '/proc/%s/fd' % pid
    for f in os.listdir(fds):
        try:
            st = os.stat(os.path.join(fds, f))
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o100000:
            total += st.st_blocks * 512
    return total


base = staged()
peak = 0
with open(src, 'rb') as s:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    n = 0
    while True:
        b = s.read(MIB)
        if not b:
            break
        os.write(fd, b)
        n += 1
        if n % 4 == 0:
            peak = max(peak, staged() - base)
    t_last = time.time()
    os.close(fd)
    t_close = time.time()
with open(note, 'w') as f:
    f.write('close returned %.2f s after the last write; peak local staging %d MiB'
            % (t_close - t_last, max(peak, 0) // MIB))
