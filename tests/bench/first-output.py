#!/usr/bin/env python3
"""first-output.py - a timestamping reader for the benchmark's pipes.

    LISTING | python3 first-output.py OUT_FILE | REST OF THE PIPELINE

Copies stdin to stdout unchanged and writes one line to OUT_FILE:

    FIRST_EPOCH LAST_EPOCH LINES BYTES

FIRST_EPOCH is when the first byte of the listing arrived (the time the
user sees output), LAST_EPOCH when its end did; "-" when nothing came.
When the rest of the pipeline stops reading (`head -20`), the reader stops
too, so the listing gets SIGPIPE as it would without the reader; the line
is written in every case (LINES then counts what was read so far).
"""
import os
import sys
import time


def main():
    out, first, last, lines, nbytes, piping = sys.argv[1], None, None, 0, 0, True
    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    try:
        while True:
            chunk = os.read(fd_in, 65536)
            if not chunk:
                break
            last = time.time()
            if first is None:
                first = last
            lines += chunk.count(b"\n")
            nbytes += len(chunk)
            if piping:
                try:
                    os.write(fd_out, chunk)
                except BrokenPipeError:
                    # the consumer has what it wanted: stop feeding the
                    # listing so it gets SIGPIPE as it would without us
                    piping = False
                    break
    finally:
        with open(out, "w") as f:
            fmt = lambda t: "-" if t is None else "%.6f" % t
            f.write("%s %s %d %d\n" % (fmt(first), fmt(last), lines, nbytes))


if __name__ == "__main__":
    main()
