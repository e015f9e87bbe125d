#!/usr/bin/env python3
"""Model-based random test of the s3cfs namespace (issue 11 §7).

A seeded generator makes a sequence of filesystem operations; each is applied
at once to a real s3cfs mount (FUSE, real radosgw) and to a local directory
(the model, on /tmp), and the two are compared after every step.

DECISIONS (also in tests/model/README.md)
- The model is a real local directory (ext4/tmpfs under the work dir): the
  kernel and the local filesystem are the oracle, nothing is re-implemented.
  Every operation is run with the same os-level call on both sides; a failing
  call must fail on both with the same errno (compared exactly). cp, cp -r,
  cp -a and rm -r run the real coreutils on both sides (cwd = the root, so
  the messages match); exit status and stderr must be identical.
- Compared after every step: the set of names, types, permission bits
  (st_mode & 07777 without setuid/setgid, which a nosuid mount hides; not for symlinks), sizes, bytes (sha1), symlink targets,
  user.* xattrs; for every open descriptor of the pool: fstat type, size and
  st_nlink (0 after unlink on both sides).
- Not compared, by design: times, inode numbers, st_nlink of directories,
  st_blocks, st_dev, owners, the size of directories, security./trusted./
  system. xattrs (ENOTSUP on s3cfs), the mode of symlinks.
- Known differences from a local disk, built into the model:
    * hard links: link() is EPERM on s3cfs. The `link` op runs link() in the
      model and undoes it; where the model succeeded the mount must say EPERM,
      where the model failed the mount must fail with the same errno.
    * user xattrs are stored in S3 user metadata (2 KiB in all): the generator
      keeps names and values short (at most 4 names of <= 40 bytes), so
      E2BIG never occurs on either side.
    * keys are at most 1024 bytes: paths stay shorter (depth <= 3, at most one
      255-byte name); names of 256 bytes are ENAMETOOLONG on both sides.
    * no O_DIRECT, no device files, no fifos: never generated.
- Sizes: mostly 0 B - 64 KiB, some up to 1.5 MiB (across stage_mem = 1 MiB),
  rarely 5-11 MiB: the mount uses the smallest thresholds s3cfs accepts
  (multipart_threshold=5, part_size=5, copy_threshold=5, copy_part_size=5;
  s3cfs refuses parts under 5 MiB), so big files go multipart and cp of them
  goes through parallel UploadPartCopy. At most 3 big files at a time.
- Descriptors: a pool of 3 slots, each a pair (model fd, mount fd) opened by
  the same `open` op; `unlink`/`rename` prefer paths that are open, so
  unlink-while-open then I/O on the fd, and rename-while-open, are common.
- Durability (SIGKILL): for every path the checker keeps the list of states
  (absent, or the exact entry) it may be in after a crash: the state at the
  last durability point that covered it, and every state it took after.
  Durability points: fsync of a path (file: that path; directory: the tree
  below), `s3cfs-ctl wait PATH` (the tree below), and a clean remount (all).
  After SIGKILL + lazy unmount + remount with the same journal_dir, every
  path on the mount must be in one of its acceptable states (so nothing not
  acknowledged is required, and nothing that never existed may appear); the
  namespace seen at once after the remount must equal the one seen after the
  replay drained (fsync of the root). Then the model is rebuilt from the
  mount and the run goes on. Not checked: that a not-acknowledged rename
  keeps its data under at least one of the two names (each path is judged
  alone).
- A clean unmount drains everything: after a remount the mount must equal
  the model exactly.
- After each run: clean unmount (daemon exit status 0, no 'Sanitizer' or
  'runtime error' in its log), then the bucket through the S3 API (an
  independent stdlib SigV4 client; the key set is cross-checked with the AWS
  CLI): every file is an object with the same bytes and x-amz-meta-mode,
  every symlink an object whose body is the target (S_IFLNK mode), every
  directory a `d/` marker or a prefix of other keys, user xattrs in
  x-amz-meta-xattr, and no other key at all.
- Shrinking: on a divergence the seed, the step and the log are printed, then
  the sequence is shrunk (truncate after the failing step, then delta
  debugging: drop chunks, replay from scratch on a fresh bucket/mount/model),
  bounded in time (--shrink-seconds); the shortest failing sequence is
  printed and written as JSON lines (replay it with --replay FILE).
- Every loop is bounded: per-seed time budget, a watchdog that SIGKILLs our
  own daemon when one step hangs for --step-timeout seconds (so a hang is
  reported, not waited for), timeouts on every subprocess.

Environment: S3CFS_BIN, S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
(from tests/integration/with-server.sh or s3-server.sh's env.sh); S3CFS_CTL
(default: s3cfs-ctl next to S3CFS_BIN).
"""

import argparse
import ctypes
import datetime
import errno
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

NAMES = ['a', 'b', 'c', 'd', 'e']
LONG_OK = 'L' * 255
LONG_BAD = 'M' * 256
XNAMES = ['user.a', 'user.bb', 'user.long-name-x', 'user.z']
MIB = 1024 * 1024
BIG = 4 * MIB
POOL = 3
DEFAULT_OPTS = ('attr_ttl=1,dir_ttl=1,multipart_threshold=5,part_size=5,'
                'copy_threshold=5,copy_part_size=5')

VERBOSE = False


def log(*a):
    text = ' '.join(str(x) for x in a)
    print(text.replace(LONG_OK, '<L*255>').replace(LONG_BAD, '<M*256>'), flush=True)


def vlog(*a):
    if VERBOSE:
        print(*a, flush=True)


class Divergence(Exception):
    def __init__(self, kind, msg):
        super().__init__(msg)
        self.kind = kind
        self.msg = msg


# ---------------------------------------------------------------- S3 client
class S3:
    """A minimal SigV4 client (path-style), independent of s3cfs."""

    def __init__(self):
        self.ep = os.environ['S3_ENDPOINT'].rstrip('/')
        self.ak = os.environ['AWS_ACCESS_KEY_ID']
        self.sk = os.environ['AWS_SECRET_ACCESS_KEY']
        self.region = os.environ.get('AWS_DEFAULT_REGION', 'us-east-1')
        self.host = urllib.parse.urlparse(self.ep).netloc

    def req(self, method, bucket, key=None, query=None, ok=(200, 204), body=b'', headers=None):
        q = query or {}
        uri = '/' + bucket
        if key is not None:
            uri += '/' + urllib.parse.quote(key, safe='/-_.~')
        cq = '&'.join('%s=%s' % (urllib.parse.quote(k, safe='-_.~'),
                                 urllib.parse.quote(str(v), safe='-_.~'))
                      for k, v in sorted(q.items()))
        now = datetime.datetime.now(datetime.timezone.utc)
        amzdate = now.strftime('%Y%m%dT%H%M%SZ')
        day = now.strftime('%Y%m%d')
        ph = hashlib.sha256(body).hexdigest()
        extra = {k.lower(): v.strip() for k, v in (headers or {}).items()}
        hdrs = dict(extra, **{'host': self.host, 'x-amz-content-sha256': ph, 'x-amz-date': amzdate})
        sh = ';'.join(sorted(hdrs))
        ch = ''.join('%s:%s\n' % (k, hdrs[k]) for k in sorted(hdrs))
        creq = '\n'.join([method, uri, cq, ch, sh, ph])
        scope = '%s/%s/s3/aws4_request' % (day, self.region)
        sts = '\n'.join(['AWS4-HMAC-SHA256', amzdate, scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
        k = ('AWS4' + self.sk).encode()
        for part in (day, self.region, 's3', 'aws4_request'):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        auth = 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s' % (
            self.ak, scope, sh, sig)
        url = self.ep + uri + ('?' + cq if cq else '')
        r = urllib.request.Request(url, method=method, data=body if body else None, headers=dict(
            extra, **{'x-amz-content-sha256': ph, 'x-amz-date': amzdate, 'Authorization': auth}))
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as e:
            body = e.read()
            if e.code in ok:
                return e.code, dict(e.headers.items()), body
            raise RuntimeError('%s %s: HTTP %d %s' % (method, uri, e.code, body[:300]))

    def make_bucket(self, b):
        self.req('PUT', b)

    def list(self, b):
        keys, token = [], None
        for _ in range(1000):
            q = {'list-type': '2'}
            if token:
                q['continuation-token'] = token
            _, _, body = self.req('GET', b, None, q)
            root = ET.fromstring(body)
            ns = root.tag[:root.tag.index('}') + 1] if root.tag.startswith('{') else ''
            for c in root.findall(ns + 'Contents'):
                keys.append(c.find(ns + 'Key').text)
            t = root.find(ns + 'NextContinuationToken')
            if root.findtext(ns + 'IsTruncated') == 'true' and t is not None:
                token = t.text
            else:
                break
        return keys

    def get(self, b, key):
        _, h, body = self.req('GET', b, key)
        return {k.lower(): v for k, v in h.items()}, body

    def put(self, b, key, body, headers):
        self.req('PUT', b, key, body=body, headers=headers)

    def delete_bucket(self, b):
        for k in self.list(b):
            self.req('DELETE', b, k)
        self.req('DELETE', b)


# ----------------------------------------------------------------- helpers
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(src, dst, flags):
    if _libc.renameat2(-100, src.encode(), -100, dst.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), src)


def data(ds, n):
    return random.Random(ds).randbytes(n)


def err(e, stage=''):
    return ('err', stage, errno.errorcode.get(e.errno, e.errno))


def xattrs_of(p):
    try:
        out = []
        for n in sorted(os.listxattr(p, follow_symlinks=False)):
            if n.startswith('user.'):
                out.append((n, os.getxattr(p, n, follow_symlinks=False).hex()))
        return tuple(out)
    except OSError as e:
        return ('xerr', errno.errorcode.get(e.errno, e.errno))


def file_hash(p):
    h = hashlib.sha1()
    try:
        with open(p, 'rb') as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
        return h.hexdigest()[:16]
    except OSError as e:
        return 'readerr:' + errno.errorcode.get(e.errno, str(e.errno))


# the mode bits a nosuid mount shows: s3cfs stores setuid/setgid but shows
# them only on a mount with `suid` (README), as the kernel honours them
SHOWN = 0o7777 & ~0o6000


def snapshot(root, keep=0o7777):
    """relpath -> entry; entry types: ('d', mode, xattrs), ('f', mode, size,
    sha1, xattrs), ('l', target, size), or error entries. keep: the mode
    bits compared."""
    out = {}

    def walk(rel, depth):
        full = os.path.join(root, rel) if rel else root
        try:
            names = sorted(os.listdir(full))
        except OSError as e:
            out[rel or '.'] = ('listerr', errno.errorcode.get(e.errno, e.errno))
            return
        for n in names:
            r = rel + '/' + n if rel else n
            p = os.path.join(root, r)
            try:
                st = os.lstat(p)
            except OSError as e:
                out[r] = ('staterr', errno.errorcode.get(e.errno, e.errno))
                continue
            m = st.st_mode
            if stat.S_ISLNK(m):
                try:
                    out[r] = ('l', os.readlink(p), st.st_size)
                except OSError as e:
                    out[r] = ('l', 'readlinkerr:%d' % e.errno, st.st_size)
            elif stat.S_ISDIR(m):
                out[r] = ('d', oct(m & keep), xattrs_of(p))
                if depth < 8:
                    walk(r, depth + 1)
            elif stat.S_ISREG(m):
                out[r] = ('f', oct(m & keep), st.st_size, file_hash(p), xattrs_of(p))
            else:
                out[r] = ('other', oct(m))
    walk('', 0)
    return out


def diff_snap(a, b, la='model', lb='mount', limit=12):
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            lines.append('  %s: %s=%s %s=%s' % (k, la, short(a.get(k)), lb, short(b.get(k))))
            if len(lines) >= limit:
                lines.append('  ...')
                break
    return '\n'.join(lines)


def short(x):
    s = repr(x)
    return s if len(s) < 300 else s[:300] + '...'


def under(p, top):
    return top == '' or p == top or p.startswith(top + '/')


def resolve(snap, p, follow_last, hops=40):
    """p with the symlinks of a snapshot followed (the last component's only
    if follow_last), as the kernel would; a missing or looping path comes
    back as far as it got."""
    parts, done = p.split('/'), []
    while parts and hops > 0:
        name = parts.pop(0)
        if name in ('', '.'):
            continue
        if name == '..':
            done = done[:-1]
            continue
        here = '/'.join(done + [name])
        e = snap.get(here, ('x',))
        if e[0] == 'l' and (parts or follow_last):
            hops -= 1
            t = e[1]
            parts = t.split('/') + parts
            done = [] if t.startswith('/') else done
            continue
        done.append(name)
    return '/'.join(done)


# ------------------------------------------------------------------ mount
class Mount:
    def __init__(self, work, bucket, opts, step_timeout):
        self.bin = os.environ['S3CFS_BIN']
        self.ctl = os.environ.get('S3CFS_CTL') or os.path.join(os.path.dirname(self.bin), 's3cfs-ctl')
        self.ep = os.environ['S3_ENDPOINT']
        self.mnt = os.path.join(work, 'mnt')
        self.jdir = os.path.join(work, 'journal')
        self.logf = os.path.join(work, 's3cfs.log')
        self.bucket = bucket
        self.opts = opts
        self.proc = None
        self.step_timeout = step_timeout
        os.makedirs(self.mnt, exist_ok=True)
        os.makedirs(self.jdir, exist_ok=True)
        self.log_pos = 0

    def start(self):
        o = 'endpoint=%s,journal_dir=%s' % (self.ep, self.jdir)
        if self.opts:
            o += ',' + self.opts
        lf = open(self.logf, 'ab')
        self.proc = subprocess.Popen([self.bin, '-f', '-o', o, self.bucket, self.mnt],
                                     stdout=lf, stderr=lf, stdin=subprocess.DEVNULL)
        lf.close()
        for _ in range(300):
            if os.path.ismount(self.mnt):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise Divergence('mount', 'mount failed (status %s): %s' % (self.proc.poll(), self.log_tail()))

    def log_tail(self, n=15):
        try:
            with open(self.logf, errors='replace') as f:
                return ''.join(f.readlines()[-n:])
        except OSError:
            return ''

    def log_problems(self):
        try:
            with open(self.logf, errors='replace') as f:
                f.seek(self.log_pos)
                text = f.read()
                self.log_pos = f.tell()
        except OSError:
            return ''
        bad = [ln for ln in text.splitlines() if 'Sanitizer' in ln or 'runtime error' in ln]
        if bad:
            i = text.find(bad[0])
            return text[i:i + 3000]
        return ''

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Clean unmount: drains; the daemon must exit 0 with a clean log."""
        if self.proc is None:
            return
        r = subprocess.run(['fusermount3', '-u', self.mnt], capture_output=True, text=True, timeout=60)
        msg = ''
        if r.returncode != 0:
            msg = 'fusermount3 -u failed: %s' % r.stderr.strip()
            subprocess.run(['fusermount3', '-u', '-z', self.mnt], capture_output=True, timeout=60)
        try:
            st = self.proc.wait(timeout=max(60, self.step_timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            st = self.proc.wait()
            msg += ' daemon did not exit after unmount (killed)'
        self.proc = None
        probs = self.log_problems()
        if st != 0 or probs or msg:
            raise Divergence('unmount', 'daemon exit status %s %s\n%s\n%s' % (
                st, msg, probs, self.log_tail()))

    def kill9(self):
        if self.proc is None:
            return
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        subprocess.run(['fusermount3', '-u', '-z', self.mnt], capture_output=True, timeout=60)
        if os.path.ismount(self.mnt):
            subprocess.run(['umount', '-l', self.mnt], capture_output=True, timeout=60)
        probs = self.log_problems()
        if probs:
            raise Divergence('daemon', 'sanitizer report before SIGKILL:\n' + probs)

    def abort(self):
        """Tear down whatever state we are in (our own daemon only)."""
        if self.proc is not None:
            r = subprocess.run(['fusermount3', '-u', self.mnt], capture_output=True, timeout=60)
            if r.returncode != 0:
                subprocess.run(['fusermount3', '-u', '-z', self.mnt], capture_output=True, timeout=60)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        elif os.path.ismount(self.mnt):
            subprocess.run(['fusermount3', '-u', '-z', self.mnt], capture_output=True, timeout=60)


class Watchdog:
    """SIGKILLs our own daemon when one step takes too long, so that a hang
    turns into a reported divergence instead of a stuck test."""

    def __init__(self, timeout):
        self.timeout = timeout
        self.deadline = None
        self.mount = None
        self.fired = False
        self.lock = threading.Lock()
        t = threading.Thread(target=self.run, daemon=True)
        t.start()

    def arm(self, mount):
        with self.lock:
            self.mount = mount
            self.deadline = time.monotonic() + self.timeout
            self.fired = False

    def disarm(self):
        with self.lock:
            self.deadline = None

    def run(self):
        while True:
            time.sleep(1)
            with self.lock:
                if self.deadline and time.monotonic() > self.deadline and self.mount:
                    p = self.mount.proc
                    if p is not None and p.poll() is None:
                        log('watchdog: step hung for %d s: SIGKILL of our s3cfs (pid %d)' % (
                            self.timeout, p.pid))
                        p.kill()
                    self.fired = True
                    self.deadline = None


WATCHDOG = None


# ------------------------------------------------------------- operations
FLAGS = {
    'r': os.O_RDONLY, 'rw': os.O_RDWR, 'rwc': os.O_RDWR | os.O_CREAT,
    'wt': os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 'a': os.O_WRONLY | os.O_APPEND | os.O_CREAT,
    'excl': os.O_WRONLY | os.O_CREAT | os.O_EXCL,
}


def run_tool(argv, cwd):
    try:
        r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
        # several errors of one cp -r come in readdir order: compare them as a set
        return ('tool', r.returncode, tuple(sorted(r.stderr.strip().splitlines())))
    except subprocess.TimeoutExpired:
        return ('tool', 'timeout')


def cp_target(root, op):
    """Where cp puts its source: into an existing directory, or the name."""
    d = os.path.join(root, op['d'])
    return os.path.join(d, os.path.basename(op['s'])) if os.path.isdir(d) else d


def unstick_like(src, dst):
    """GNU cp -a/-p sets the mode of an existing destination through its ACL
    (system.posix_acl_access), which on ext4 keeps that file's sticky bit; the
    mount has no ACLs, so cp falls back to chmod with the source's mode, as
    POSIX says cp -p does. Make the model's files match that: a regular
    file that kept a sticky bit its source lacks gets the source's mode."""
    for base, _dirs, files in os.walk(src) if os.path.isdir(src) else [('', [], [src])]:
        for f in files:
            s = os.path.join(base, f) if base else f
            t = os.path.join(dst, os.path.relpath(s, src)) if base else dst
            try:
                ss, ts = os.lstat(s), os.lstat(t)
            except OSError:
                continue
            if stat.S_ISREG(ts.st_mode) and ts.st_mode & stat.S_ISVTX and not ss.st_mode & stat.S_ISVTX:
                os.chmod(t, stat.S_IMODE(ss.st_mode))


def apply(op, root, fds, side, mount):
    """Run one operation on one side; return a comparable result."""
    k = op['op']
    P = lambda x: os.path.join(root, x)  # noqa: E731
    try:
        if k == 'write_file':
            try:
                fd = os.open(P(op['p']), FLAGS[op['fl']], int(op['mode'], 8))
            except OSError as e:
                return err(e, 'open')
            try:
                n = os.write(fd, data(op['ds'], op['n'])) if op['n'] else 0
            except OSError as e:
                os.close(fd)
                return err(e, 'write')
            try:
                os.close(fd)
            except OSError as e:
                return err(e, 'close')
            return ('ok', n)
        if k in ('pwrite', 'append'):
            fl = os.O_WRONLY | (os.O_APPEND if k == 'append' else 0)
            try:
                fd = os.open(P(op['p']), fl)
            except OSError as e:
                return err(e, 'open')
            try:
                d = data(op['ds'], op['n'])
                n = os.write(fd, d) if k == 'append' else os.pwrite(fd, d, op['off'])
            except OSError as e:
                os.close(fd)
                return err(e, 'write')
            try:
                os.close(fd)
            except OSError as e:
                return err(e, 'close')
            return ('ok', n)
        if k == 'truncate':
            os.truncate(P(op['p']), op['size'])
            return ('ok',)
        if k == 'open':
            old = fds.pop(op['slot'], None)
            res = []
            if old is not None:
                try:
                    os.close(old)
                    res.append('closed')
                except OSError as e:
                    res.append(err(e, 'close'))
            try:
                fds[op['slot']] = os.open(P(op['p']), FLAGS[op['fl']], 0o644)
                res.append('ok')
            except OSError as e:
                res.append(err(e, 'open'))
            return tuple(res)
        if k.startswith('fd_') or k == 'close':
            fd = fds.get(op['slot'])
            if fd is None:
                return ('noslot',)
            if k == 'close':
                del fds[op['slot']]
                os.close(fd)
                return ('ok',)
            if k == 'fd_write':
                return ('ok', os.pwrite(fd, data(op['ds'], op['n']), op['off']))
            if k == 'fd_read':
                b = os.pread(fd, op['n'], op['off'])
                return ('ok', len(b), hashlib.sha1(b).hexdigest()[:16])
            if k == 'fd_truncate':
                os.ftruncate(fd, op['size'])
                return ('ok',)
            if k == 'fd_fsync':
                os.fsync(fd)
                return ('ok',)
            if k == 'fd_fstat':
                st = os.fstat(fd)
                # a directory's size is the local filesystem's own (4096 on
                # ext4, 0 on the mount), as snapshot() does not compare it
                size = None if stat.S_ISDIR(st.st_mode) else st.st_size
                return ('ok', stat.S_IFMT(st.st_mode), oct(st.st_mode & SHOWN), size, st.st_nlink)
        if k == 'unlink':
            os.unlink(P(op['p']))
            return ('ok',)
        if k == 'mkdir':
            os.mkdir(P(op['p']), int(op['mode'], 8))
            return ('ok',)
        if k == 'rmdir':
            os.rmdir(P(op['p']))
            return ('ok',)
        if k == 'rename':
            os.rename(P(op['s']), P(op['d']))
            return ('ok',)
        if k == 'rename_noreplace':
            renameat2(P(op['s']), P(op['d']), 1)
            return ('ok',)
        if k == 'cp':
            target = cp_target(root, op)
            r = run_tool(['cp'] + op['fl'].split() + ['--', op['s'], op['d']], root)
            if side == 'model' and '-a' in op['fl'].split():
                unstick_like(P(op['s']), target)
            return r
        if k == 'rm_r':
            return run_tool(['rm', '-r', '--', op['p']], root)
        if k == 'symlink':
            os.symlink(op['t'], P(op['p']))
            return ('ok',)
        if k == 'chmod':
            os.chmod(P(op['p']), int(op['mode'], 8))
            return ('ok',)
        if k == 'setxattr':
            os.setxattr(P(op['p']), op['name'], bytes.fromhex(op['v']), op['fl'])
            return ('ok',)
        if k == 'removexattr':
            os.removexattr(P(op['p']), op['name'])
            return ('ok',)
        if k == 'fsync':
            try:
                fd = os.open(P(op['p']), os.O_RDONLY)
            except OSError as e:
                return err(e, 'open')
            try:
                os.fsync(fd)
            except OSError as e:
                os.close(fd)
                return err(e, 'fsync')
            os.close(fd)
            return ('ok',)
        if k == 'ctl_wait':
            if side == 'model':
                return ('tool', 0) if os.path.isdir(P(op['p'])) else ('tool', 'nodir')
            if not os.path.isdir(P(op['p'])):
                return ('tool', 'nodir')
            try:
                r = subprocess.run([mount.ctl, '-q', '-t', '120', 'wait', P(op['p'])],
                                   capture_output=True, text=True, timeout=180)
                return ('tool', r.returncode) if r.returncode == 0 else (
                    'tool', r.returncode, r.stdout.strip() + r.stderr.strip())
            except subprocess.TimeoutExpired:
                return ('tool', 'timeout')
        if k == 'ext_replace':
            # another client rewrites a file in place: same size, same
            # metadata (mode, owner, mtime, xattrs), other bytes, so only
            # the ETag tells the versions apart; the mount must show the new
            # bytes once the lifetimes (1 s) have passed, whatever the
            # kernel's pages hold
            if side == 'model':
                n = os.path.getsize(P(op['p']))
                fd = os.open(P(op['p']), os.O_WRONLY)
                try:
                    os.pwrite(fd, data(op['ds'], n), 0)
                finally:
                    os.close(fd)
                return ('ok', n)
            fd = os.open(root, os.O_RDONLY)
            try:
                os.fsync(fd)  # every queued job has landed: S3 has the file
            finally:
                os.close(fd)
            try:
                h, body = mount.s3.get(mount.bucket, op['p'])
            except RuntimeError as e:
                return ('err', 's3get', str(e)[:200])
            keep = {k: v for k, v in h.items() if k.startswith('x-amz-meta-') or k == 'content-type'}
            mount.s3.put(mount.bucket, op['p'], data(op['ds'], len(body)), keep)
            time.sleep(1.3)  # attr_ttl=1, dir_ttl=1
            return ('ok', len(body))
        if k == 'link':
            if side == 'model':
                os.link(P(op['s']), P(op['d']))
                os.unlink(P(op['d']))  # s3cfs has no hard links: undo
                return ('err', '', 'EPERM')  # what the mount must say
            os.link(P(op['s']), P(op['d']))
            return ('ok',)
        raise ValueError('unknown op %s' % k)
    except OSError as e:
        return err(e)


# --------------------------------------------------------------- generator
class Gen:
    def __init__(self, rng, args):
        self.r = rng
        self.args = args
        self.slot_path = {}

    def pick(self, snap, kinds=None):
        c = [p for p, e in snap.items() if kinds is None or e[0] in kinds]
        return self.r.choice(c) if c else None

    def fresh(self, snap):
        r = self.r
        dirs = [p for p, e in snap.items() if e[0] == 'd' and p.count('/') < 2 and LONG_OK not in p]
        x = r.random()
        if x < 0.08:
            parent = r.choice(NAMES) + '/' + r.choice(NAMES)  # maybe missing
        elif dirs and x < 0.6:
            parent = r.choice(dirs)
        else:
            parent = ''
        y = r.random()
        name = LONG_OK if y < 0.01 else LONG_BAD if y < 0.015 else r.choice(NAMES)
        return parent + '/' + name if parent else name

    def not_under(self, snap, d, s):
        """A destination for cp -r of s that is not s or inside it. cp -r of
        a directory into itself stops at the first entry that is the copy
        being made, so what it copied (and which errors it met) before then
        depends on the readdir order, which differs between the model and
        the mount by design. d counts where cp writes: into d when d is a
        directory, through symlinks. fresh() may draw s again (seed 26475:
        cp -a a a, into the existing a), so draw until it is not."""
        real_s = resolve(snap, s, False)
        for _ in range(30):
            dd = resolve(snap, d, True)
            if snap.get(dd, ('x',))[0] == 'd':
                dd = dd + '/' + s.rsplit('/', 1)[-1]  # cp copies into it
            if not under(dd, real_s) and not under(d, s):
                return d
            d = self.fresh({})
        return 'L' * 256  # ENAMETOOLONG, on both sides

    def path(self, snap, kinds=None, p_exist=0.8):
        if self.r.random() < p_exist:
            p = self.pick(snap, kinds)
            if p:
                return p
        return self.fresh(snap)

    def size(self, snap):
        r = self.r
        x = r.random()
        if x < 0.08:
            return 0
        if x < 0.6:
            return r.randint(1, 4096)
        if x < 0.88:
            return r.randint(4097, 65536)
        if x < 0.97:
            return r.randint(65537, MIB + MIB // 2)
        big = sum(1 for e in snap.values() if e[0] == 'f' and e[2] > BIG)
        if big < 3 and not self.args.no_big:
            return r.choice([5 * MIB, 5 * MIB + 1, r.randint(5 * MIB, 11 * MIB)])
        return r.randint(1, 4096)

    def mode(self, d=False):
        r = self.r
        if r.random() < 0.1:
            return oct(r.choice([0o000, 0o4755, 0o1777, 0o2755, 0o7777]))
        return oct(r.choice([0o755, 0o700, 0o711, 0o555]) if d else r.choice([0o644, 0o600, 0o444, 0o755, 0o666]))

    WEIGHTS = dict(write_file=14, pwrite=6, append=5, truncate=5, open=5, fd_write=6, fd_read=3,
                   fd_truncate=2, fd_fstat=2, fd_fsync=2, close=4, unlink=6, mkdir=7, rmdir=4,
                   rename=9, rename_noreplace=3, cp=4, cp_r=3, cp_a=3, rm_r=1, symlink=3, chmod=3,
                   setxattr=4, removexattr=2, fsync=2, syncdir=2, ctl_wait=1, link=1, ext_replace=2)

    def op(self, snap, open_slots):
        r = self.r
        a = self.args
        if r.random() < a.kill_every:
            return {'op': 'kill', 'pre_sync': r.random() < 0.5}
        if r.random() < a.remount_every:
            return {'op': 'remount'}
        w = dict(self.WEIGHTS)
        if not a.ext_replace:
            w.pop('ext_replace')  # the sequences are then those of the op set before it
        if len(snap) > 60:
            w.update(unlink=20, rmdir=10, rm_r=8)
        for x in a.exclude:
            w.pop(x, None)
        kind = r.choices(list(w), weights=list(w.values()))[0]
        files = ('f',)
        open_paths = [p for s, p in self.slot_path.items() if s in open_slots and p in snap]
        if kind == 'write_file':
            fl = r.choice(['wt', 'wt', 'wt', 'excl', 'a', 'rwc'])
            return {'op': kind, 'p': self.path(snap, files, 0.5), 'fl': fl, 'mode': self.mode(),
                    'n': self.size(snap), 'ds': r.getrandbits(32)}
        if kind in ('pwrite', 'append'):
            p = self.path(snap, files, 0.9)
            sz = snap.get(p, ('f', 0, 0))[2] if snap.get(p, ('x',))[0] == 'f' else 0
            o = {'op': kind, 'p': p, 'n': r.choice([1, r.randint(1, 8192), self.size(snap)]),
                 'ds': r.getrandbits(32)}
            if kind == 'pwrite':
                o['off'] = r.choice([0, sz, r.randint(0, sz + 1), sz + r.randint(1, 70000)])
            return o
        if kind == 'truncate':
            p = self.path(snap, files, 0.9)
            sz = snap.get(p, ('f', 0, 0))[2] if snap.get(p, ('x',))[0] == 'f' else 0
            return {'op': kind, 'p': p, 'size': r.choice([0, sz // 2, sz + r.randint(1, 100000), r.randint(0, sz + 1)])}
        if kind == 'open':
            s = r.randrange(POOL)
            p = self.path(snap, files, 0.8)
            self.slot_path[s] = p
            return {'op': kind, 'slot': s, 'p': p, 'fl': r.choice(['r', 'rw', 'rw', 'rwc', 'wt', 'a'])}
        if kind in ('fd_write', 'fd_read', 'fd_truncate', 'fd_fstat', 'fd_fsync', 'close'):
            s = r.choice(sorted(open_slots)) if open_slots else r.randrange(POOL)
            o = {'op': kind, 'slot': s}
            if kind == 'fd_write':
                o.update(off=r.choice([0, r.randint(0, 70000)]), n=r.randint(1, 20000), ds=r.getrandbits(32))
            elif kind == 'fd_read':
                o.update(off=r.choice([0, r.randint(0, 70000)]), n=r.randint(1, 70000))
            elif kind == 'fd_truncate':
                o.update(size=r.randint(0, 100000))
            return o
        if kind == 'unlink':
            p = r.choice(open_paths) if open_paths and r.random() < 0.4 else self.path(snap, ('f', 'l'), 0.85)
            return {'op': kind, 'p': p}
        if kind == 'mkdir':
            return {'op': kind, 'p': self.path(snap, None, 0.15), 'mode': self.mode(True)}
        if kind == 'rmdir':
            return {'op': kind, 'p': self.path(snap, ('d',), 0.85)}
        if kind in ('rename', 'rename_noreplace'):
            s = r.choice(open_paths) if open_paths and r.random() < 0.3 else self.path(snap, None, 0.9)
            x = r.random()
            if x < 0.35:
                d = self.path(snap, None, 1.0)  # over an existing target
            elif x < 0.4 and snap.get(s, ('x',))[0] == 'd':
                d = s + '/' + r.choice(NAMES)  # into itself: EINVAL
            else:
                d = self.fresh(snap)
            return {'op': kind, 's': s, 'd': d}
        if kind in ('cp', 'cp_r', 'cp_a'):
            s = self.path(snap, ('f', 'l') if kind == 'cp' else None, 0.9)
            d = self.path(snap, None, 0.3)
            if kind != 'cp':
                d = self.not_under(snap, d, s)
            return {'op': 'cp', 'fl': {'cp': '', 'cp_r': '-r', 'cp_a': '-a'}[kind], 's': s, 'd': d}
        if kind == 'rm_r':
            return {'op': kind, 'p': self.path(snap, ('d',), 0.9)}
        if kind == 'symlink':
            t = r.choice(['a', 'b', 'd/a', '../a', '../../b/c', 'nowhere', 'x' * r.randint(1, 200)])
            return {'op': kind, 't': t, 'p': self.path(snap, None, 0.15)}
        if kind == 'chmod':
            p = self.path(snap, ('f', 'd'), 0.9)
            return {'op': kind, 'p': p, 'mode': self.mode(snap.get(p, ('x',))[0] == 'd')}
        if kind == 'setxattr':
            fl = r.choice([0, 0, 0, os.XATTR_CREATE, os.XATTR_REPLACE])
            v = r.randbytes(r.choice([0, 1, r.randint(1, 40)])).hex()
            return {'op': kind, 'p': self.path(snap, ('f', 'd'), 0.9), 'name': r.choice(XNAMES),
                    'v': v, 'fl': fl}
        if kind == 'removexattr':
            return {'op': kind, 'p': self.path(snap, ('f', 'd'), 0.9), 'name': r.choice(XNAMES)}
        if kind == 'fsync':
            return {'op': kind, 'p': self.path(snap, ('f',), 0.95)}
        if kind == 'syncdir':
            return {'op': 'fsync', 'p': r.choice(['.', '.'] + [p for p, e in snap.items() if e[0] == 'd'])}
        if kind == 'ctl_wait':
            return {'op': kind, 'p': r.choice(['.'] + [p for p, e in snap.items() if e[0] == 'd'])}
        if kind == 'link':
            return {'op': kind, 's': self.path(snap, ('f',), 0.95), 'd': self.fresh(snap)}
        if kind == 'ext_replace':
            # only with no descriptor open: an open file meeting another
            # client's version is a race the model cannot predict
            files = [p for p, e in snap.items() if e[0] == 'f' and e[2] > 0]
            if open_slots or not files:
                return {'op': 'fsync', 'p': '.'}
            return {'op': kind, 'p': r.choice(sorted(files)), 'ds': r.getrandbits(32)}
        raise ValueError(kind)


# ------------------------------------------------------------------ runner
class Runner:
    def __init__(self, args, tag):
        self.args = args
        self.s3 = S3()
        self.work = tempfile.mkdtemp(prefix='s3cfs-model-%s.' % tag, dir=args.workdir)
        self.local = os.path.join(self.work, 'model')
        os.mkdir(self.local)
        os.chmod(self.local, 0o755)
        self.bucket = 's3cfs-model-%d-%d' % (os.getpid(), random.randrange(10 ** 9))
        self.s3.make_bucket(self.bucket)
        self.mount = Mount(self.work, self.bucket, args.mount_opts, args.step_timeout)
        self.mount.s3 = self.s3  # for another client's writes (ext_replace)
        self.mfds, self.lfds = {}, {}
        self.snap = {}
        self.accept = {}   # path -> list of acceptable entries after a crash
        self.done = []     # operations run so far
        self.counts = {}   # op kind -> steps run
        self.big = 0       # writes above the multipart threshold

    # -- durability bookkeeping
    def track(self, snap):
        for p in set(snap) | set(self.accept):
            lst = self.accept.setdefault(p, [None])
            e = snap.get(p)
            if e not in lst:
                lst.append(e)

    def durable(self, top, snap):
        for p in set(snap) | set(self.accept):
            if under(p, top):
                self.accept[p] = [snap.get(p)]

    def close_all(self):
        res = []
        for s in sorted(set(self.lfds) | set(self.mfds)):
            r = []
            for fds in (self.lfds, self.mfds):
                fd = fds.pop(s, None)
                try:
                    if fd is not None:
                        os.close(fd)
                    r.append('ok')
                except OSError as e:
                    r.append(err(e))
            res.append((s, r))
        return res

    def fstat_same(self, slot, a, b):
        """fstat results of one descriptor agree, but for what README says
        differs by design: a directory's st_nlink is 1 ("unknown", as on
        btrfs) while its listing is not cached, and orphan_estale()."""
        if a == b or self.orphan_estale(slot, a, b):
            return True
        is_dir = a[0] == b[0] == 'ok' and a[1] == b[1] == stat.S_IFDIR
        return is_dir and b[-1] == 1 and a[:-1] == b[:-1]

    def orphan_estale(self, slot, a, b):
        """By design (libfuse): a file unlinked while open lives on under a
        hidden name in its directory; once that directory is removed too
        (rm -r), libfuse has no path for it and answers fstat ESTALE itself.
        Accepted only in exactly that case: unlinked, directory gone."""
        if b != ('err', '', 'ESTALE') or a[0] != 'ok' or a[-1] != 0:
            return False
        try:
            where = os.readlink('/proc/self/fd/%d' % self.lfds[slot])
        except (OSError, KeyError, TypeError):
            return False
        where = where[:-len(' (deleted)')] if where.endswith(' (deleted)') else where
        return not os.path.isdir(os.path.dirname(where))

    def compare(self, step, op):
        ls = snapshot(self.local, SHOWN)
        ms = snapshot(self.mount.mnt, SHOWN)
        if ls != ms:
            raise Divergence('tree', 'tree differs after step %d %s:\n%s' % (step, json.dumps(op), diff_snap(ls, ms)))
        for s in sorted(self.lfds):
            a = apply({'op': 'fd_fstat', 'slot': s}, self.local, self.lfds, 'model', self.mount)
            b = apply({'op': 'fd_fstat', 'slot': s}, self.mount.mnt, self.mfds, 'mount', self.mount)
            if not self.fstat_same(s, a, b):
                raise Divergence('fstat', 'fstat of slot %d differs after step %d %s: model=%s mount=%s' % (
                    s, step, json.dumps(op), a, b))
        self.snap = ls
        return ls

    def step(self, i, op):
        k = op['op']
        self.done.append(op)
        self.counts[k] = self.counts.get(k, 0) + 1
        WATCHDOG.arm(self.mount)
        try:
            if k == 'remount':
                return self.remount(i, op)
            if k == 'kill':
                return self.kill(i, op)
            if op.get('n', 0) > BIG:
                self.big += 1
            a = apply(op, self.local, self.lfds, 'model', self.mount)
            b = apply(op, self.mount.mnt, self.mfds, 'mount', self.mount)
            if not self.mount.alive():
                raise Divergence('daemon', 'step %d %s: the daemon died (status %s); model=%s mount=%s\n%s' % (
                    i, json.dumps(op), self.mount.proc.poll(), a, b,
                    self.mount.log_problems() or self.mount.log_tail()))
            if a != b and not (k == 'fd_fstat' and self.fstat_same(op['slot'], a, b)):
                raise Divergence('result:' + k, 'step %d %s: model=%s mount=%s' % (i, json.dumps(op), a, b))
            snap = self.compare(i, op)
            self.track(snap)
            if k in ('fsync', 'ctl_wait') and a[0] in ('ok', 'tool') and a[-1] in ('ok', 0):
                e = snap.get(op['p'])
                top = '' if op['p'] == '.' else op['p']
                if op['p'] == '.' or (e and e[0] == 'd'):
                    self.durable(top, snap)
                elif e:
                    self.accept[op['p']] = [e]
            if k == 'ext_replace' and a[0] == 'ok':
                self.durable('', snap)  # fsync of the root, then S3 itself
        finally:
            WATCHDOG.disarm()

    def remount(self, i, op):
        a = self.close_all()
        bad = [x for x in a if x[1][0] != x[1][1]]
        if bad:
            raise Divergence('result:close', 'step %d remount: close results differ %s' % (i, bad))
        self.mount.stop()
        self.mount.start()
        snap = self.compare(i, op)
        self.durable('', snap)

    def kill(self, i, op):
        if op.get('pre_sync'):
            self.step_inner_sync()
        self.close_all()
        self.mount.kill9()
        self.mount.start()
        o1 = snapshot(self.mount.mnt)
        try:
            fd = os.open(self.mount.mnt, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        except OSError as e:
            raise Divergence('kill', 'step %d: fsync of the root after the remount: %s' % (i, e))
        o2 = snapshot(self.mount.mnt)
        if o1 != o2:
            raise Divergence('kill-replay', 'step %d: after SIGKILL+remount the namespace changed while the '
                             'journal replayed:\n%s' % (i, diff_snap(o1, o2, 'at-mount', 'after-sync')))
        lines = []
        for p in sorted(set(o2) | set(self.accept)):
            ok = self.accept.get(p, [None])
            if o2.get(p) not in ok:
                lines.append('  %s: mount=%s acceptable=%s' % (p, short(o2.get(p)), short(ok)))
        if lines:
            keys = [k for k in self.s3.list(self.bucket)
                    if any(k == b or k.startswith(b + '/') or k.startswith(b + '_$')
                           for b in self.bad_kill_paths(o2))]
            raise Divergence('kill-state', 'step %d: after SIGKILL+remount, states that no durability rule '
                             'allows:\n%s\n  keys in S3 at those paths: %s' % (
                                 i, '\n'.join(lines[:12]), keys[:40]))
        # rebuild the model from what the mount shows, and go on from there
        shutil.rmtree(self.local)
        clone_tree(self.mount.mnt, self.local)
        snap = self.compare(i, op)
        self.accept = {}
        self.durable('', snap)

    def bad_kill_paths(self, snap):
        return [p for p in sorted(set(snap) | set(self.accept))
                if snap.get(p) not in self.accept.get(p, [None])]

    def step_inner_sync(self):
        for root in (self.local, self.mount.mnt):
            fd = os.open(root, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.durable('', self.snap)

    def finish(self):
        """Clean unmount, then the bucket against the model."""
        self.close_all()
        self.mount.stop()
        # SHOWN: after a SIGKILL the model is rebuilt from what the mount
        # shows, which has no setuid/setgid bits even where S3 keeps them
        check_bucket(self.s3, self.bucket, snapshot(self.local, SHOWN), self.local)

    def cleanup(self, keep):
        WATCHDOG.disarm()
        for fds in (self.lfds, self.mfds):
            for fd in fds.values():
                try:
                    os.close(fd)
                except OSError:
                    pass
            fds.clear()
        self.mount.abort()
        if not keep:
            try:
                self.s3.delete_bucket(self.bucket)
            except Exception as e:  # noqa: BLE001
                vlog('bucket cleanup: %s' % e)
            shutil.rmtree(self.work, ignore_errors=True)


def clone_tree(src, dst):
    os.mkdir(dst)
    os.chmod(dst, 0o755)
    dirs = []
    for top, dnames, fnames in os.walk(src):
        rel = os.path.relpath(top, src)
        dt = os.path.join(dst, rel) if rel != '.' else dst
        for n in sorted(dnames + fnames):
            s, d = os.path.join(top, n), os.path.join(dt, n)
            st = os.lstat(s)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
                continue
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(d)
                dirs.append((d, st.st_mode))
            else:
                with open(s, 'rb') as fi, open(d, 'wb') as fo:
                    shutil.copyfileobj(fi, fo)
                os.chmod(d, stat.S_IMODE(st.st_mode))
            for x in os.listxattr(s):
                if x.startswith('user.'):
                    os.setxattr(d, x, os.getxattr(s, x))
    for d, m in dirs:
        os.chmod(d, stat.S_IMODE(m))


def parse_xattr_meta(v):
    import base64
    t = urllib.parse.unquote(v)
    obj = json.loads(t)
    return tuple(sorted((k, base64.b64decode(x).hex()) for k, x in obj.items()))


def check_bucket(s3, bucket, snap, local):
    keys = s3.list(bucket)
    problems = []
    # cross-check the key set with the AWS CLI (one call)
    try:
        r = subprocess.run(['aws', '--endpoint-url', s3.ep, 's3api', 'list-objects-v2', '--bucket', bucket,
                            '--query', 'Contents[].Key', '--output', 'json'],
                           capture_output=True, text=True, timeout=120)
        if r.returncode == 0:
            cli = json.loads(r.stdout or 'null') or []
            if sorted(cli) != sorted(keys):
                problems.append('AWS CLI lists %s, the SigV4 client %s' % (sorted(cli), sorted(keys)))
        else:
            problems.append('aws s3api list-objects-v2 failed: %s' % r.stderr.strip()[-300:])
    except (OSError, subprocess.TimeoutExpired) as e:
        problems.append('aws CLI: %s' % e)
    keyset = set(keys)
    for p, e in sorted(snap.items()):
        if e[0] in ('f', 'l'):
            if p not in keyset:
                problems.append('%s: no object' % p)
                continue
            h, body = s3.get(bucket, p)
            mode = h.get('x-amz-meta-mode')
            if e[0] == 'f':
                if hashlib.sha1(body).hexdigest()[:16] != e[3] or len(body) != e[2]:
                    problems.append('%s: object bytes differ (%d B, model %d B)' % (p, len(body), e[2]))
                if mode is None or not stat.S_ISREG(int(mode)) or oct(int(mode) & SHOWN) != e[1]:
                    problems.append('%s: x-amz-meta-mode %s, model %s' % (p, mode, e[1]))
                xm = h.get('x-amz-meta-xattr')
                try:
                    xs = parse_xattr_meta(xm) if xm else ()
                except ValueError as ex:
                    xs = ('unparsable', xm, str(ex))
                if xs != e[4]:
                    problems.append('%s: x-amz-meta-xattr %s, model %s' % (p, short(xs), short(e[4])))
            else:
                if body != e[1].encode():
                    problems.append('%s: symlink body %r, target %r' % (p, body[:100], e[1]))
                if mode is None or not stat.S_ISLNK(int(mode)):
                    problems.append('%s: symlink x-amz-meta-mode %s' % (p, mode))
        elif e[0] == 'd':
            if p + '/' in keyset:
                h, _ = s3.get(bucket, p + '/')
                mode = h.get('x-amz-meta-mode')
                if mode is not None and (not stat.S_ISDIR(int(mode)) or oct(int(mode) & SHOWN) != e[1]):
                    problems.append('%s/: x-amz-meta-mode %s, model %s' % (p, mode, e[1]))
                xm = h.get('x-amz-meta-xattr')
                try:
                    xs = parse_xattr_meta(xm) if xm else ()
                except ValueError as ex:
                    xs = ('unparsable', xm, str(ex))
                if xs != e[2]:
                    problems.append('%s/: x-amz-meta-xattr %s, model %s' % (p, short(xs), short(e[2])))
            elif not any(k.startswith(p + '/') for k in keys):
                problems.append('%s: directory without a marker or keys below' % p)
    for k in keys:
        if k.endswith('/'):
            if snap.get(k[:-1], ('x',))[0] != 'd':
                problems.append('extra key %r (no such directory in the model)' % k)
        elif snap.get(k, ('x',))[0] not in ('f', 'l'):
            problems.append('extra key %r' % k)
    if problems:
        raise Divergence('bucket', 'bucket %s differs from the model:\n  %s' % (
            bucket, '\n  '.join(problems[:20])))


# ---------------------------------------------------------------- driving
def run_sequence(args, ops, tag, keep=False, quiet=True):
    """Replay a fixed list of ops from scratch; return None or the Divergence."""
    rn = Runner(args, tag)
    failed = None
    try:
        rn.mount.start()
        for i, op in enumerate(ops):
            rn.step(i, op)
        rn.finish()
    except Divergence as d:
        failed = d
    except Exception as e:  # noqa: BLE001  a crash of the harness itself is a failure too
        failed = Divergence('harness', 'harness error: %r' % e)
    finally:
        rn.cleanup(keep or (failed is not None and not quiet))
    return failed


def run_random(args, seed):
    rng = random.Random(seed)
    gen = Gen(rng, args)
    rn = Runner(args, 'seed%d' % seed)
    t0 = time.monotonic()
    failed = None
    i = 0
    try:
        rn.mount.start()
        while i < args.steps and time.monotonic() - t0 < args.seconds and not (
                args.deadline and time.monotonic() > args.deadline):
            op = gen.op(rn.snap, set(rn.lfds))
            vlog('%4d %s' % (i, json.dumps(op)))
            rn.step(i, op)
            i += 1
        rn.finish()
    except Divergence as d:
        failed = d
    except Exception as e:  # noqa: BLE001
        import traceback
        failed = Divergence('harness', 'harness error: %s' % traceback.format_exc())
    finally:
        rn.cleanup(failed is not None)
    return rn, failed, i, time.monotonic() - t0


def same_failure(a, b):
    return b is not None and b.kind == a.kind


def shrink(args, ops, fail):
    """Delta debugging over the op list, bounded by args.shrink_seconds."""
    t_end = time.monotonic() + args.shrink_seconds
    if args.deadline:
        t_end = min(t_end, args.deadline)
    best = list(ops)
    n = 2
    runs = 0
    # a flaky failure: make sure the whole sequence fails again first
    for _ in range(3):
        runs += 1
        if time.monotonic() >= t_end or same_failure(fail, run_sequence(args, best, 'shrink')):
            break
    else:
        log('  shrink: the sequence did not fail again in 3 replays (flaky); not shrinking')
        return best, runs
    while len(best) >= 2 and time.monotonic() < t_end:
        chunk = max(1, len(best) // n)
        reduced = False
        for start in range(0, len(best), chunk):
            if time.monotonic() >= t_end:
                break
            cand = best[:start] + best[start + chunk:]
            if not cand:
                continue
            runs += 1
            f = run_sequence(args, cand, 'shrink')
            if same_failure(fail, f):
                best = cand
                n = max(n - 1, 2)
                reduced = True
                log('  shrink: %d ops still fail (%s)' % (len(best), f.kind))
                break
        if not reduced:
            if chunk == 1:
                break
            n = min(n * 2, len(best))
    return best, runs


def report_failure(args, seed, ops, fail, rn_work=None):
    log('FAIL seed %s: %s' % (seed, fail.kind))
    log(fail.msg)
    if rn_work:
        log('(work dir kept: %s)' % rn_work)
    log('operation log (%d ops):' % len(ops))
    for i, op in enumerate(ops[-40:], start=max(0, len(ops) - 40)):
        log('  %4d %s' % (i, json.dumps(op)))
    best = ops
    if not args.no_shrink:
        log('shrinking (up to %d s)...' % args.shrink_seconds)
        best, runs = shrink(args, ops, fail)
        f = run_sequence(args, best, 'final')
        log('shortest failing sequence found: %d ops (%d replays)%s' % (
            len(best), runs, '' if f else ' [did not fail again on the last replay: flaky]'))
        if f:
            log(f.msg)
    out = os.path.join(args.out, 'fsmodel-fail-seed%s.jsonl' % seed)
    try:
        os.makedirs(args.out, exist_ok=True)
        with open(out, 'w') as fo:
            fo.write(json.dumps({'seed': seed, 'kind': fail.kind, 'mount_opts': args.mount_opts}) + '\n')
            for op in best:
                fo.write(json.dumps(op) + '\n')
        log('replay with: %s --replay %s' % (sys.argv[0], out))
    except OSError as e:
        log('cannot write %s: %s' % (out, e))
    for op in best:
        log('  ' + json.dumps(op))


def main():
    global VERBOSE, WATCHDOG
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int, help='first seed (default: random)')
    ap.add_argument('--seeds', type=int, default=1, help='number of seeds (seed, seed+1, ...)')
    ap.add_argument('--steps', type=int, default=100000, help='max steps per seed')
    ap.add_argument('--seconds', type=float, default=40, help='time budget per seed')
    ap.add_argument('--total-seconds', type=float, default=0,
                    help='whole-run budget: no new seed, step or shrink replay after it (0: none)')
    ap.add_argument('--mount-opts', default=DEFAULT_OPTS)
    ap.add_argument('--extra-opts', default='', help='appended to --mount-opts')
    ap.add_argument('--kill-every', type=float, default=0.01, help='probability of a SIGKILL step')
    ap.add_argument('--remount-every', type=float, default=0.01, help='probability of a remount step')
    ap.add_argument('--ext-replace', action='store_true',
                    help="generate ext_replace: another client's same-size rewrite")
    ap.add_argument('--exclude', default='', help='comma-separated op kinds not to generate (iteration only)')
    ap.add_argument('--no-big', action='store_true', help='no files above the thresholds')
    ap.add_argument('--no-shrink', action='store_true')
    ap.add_argument('--shrink-seconds', type=float, default=150)
    ap.add_argument('--step-timeout', type=float, default=180)
    ap.add_argument('--replay', help='run a recorded sequence (JSON lines)')
    ap.add_argument('--workdir', default='/tmp')
    ap.add_argument('--out', default='/tmp', help='where failing sequences are written')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    VERBOSE = args.verbose
    if args.extra_opts:
        args.mount_opts = ','.join(x for x in (args.mount_opts, args.extra_opts) if x)
    args.exclude = [x for x in args.exclude.split(',') if x]
    for v in ('S3CFS_BIN', 'S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'):
        if not os.environ.get(v):
            print('fsmodel: %s is not set' % v, file=sys.stderr)
            return 2
    os.umask(0o022)
    WATCHDOG = Watchdog(args.step_timeout)
    passed = failed = 0
    args.deadline = 0
    if args.replay:
        ops = []
        with open(args.replay) as f:
            for line in f:
                line = line.strip()
                if line:
                    o = json.loads(line)
                    if 'op' in o:
                        ops.append(o)
                    elif 'mount_opts' in o and o['mount_opts'] != args.mount_opts:
                        log('(recorded with -o %s)' % o['mount_opts'])
        t0 = time.monotonic()
        f = run_sequence(args, ops, 'replay', quiet=False)
        log('replay of %d ops: %s in %.1f s' % (len(ops), 'FAIL ' + f.kind if f else 'ok', time.monotonic() - t0))
        if f:
            log(f.msg)
            failed = 1
        else:
            passed = 1
        log('%d passed, %d failed' % (passed, failed))
        return 1 if failed else 0
    seed0 = args.seed if args.seed is not None else random.SystemRandom().randrange(10 ** 9)
    t_all = time.monotonic()
    args.deadline = t_all + args.total_seconds if args.total_seconds else 0
    fails = []
    for s in range(seed0, seed0 + args.seeds):
        if args.total_seconds and time.monotonic() - t_all > args.total_seconds:
            log('time budget spent: not starting seed %d' % s)
            break
        log('seed %d: up to %d steps / %.0f s, -o %s' % (s, args.steps, args.seconds, args.mount_opts))
        rn, f, n, dt = run_random(args, s)
        if f:
            failed += 1
            fails.append(s)
            log('seed %d: FAIL after %d steps in %.1f s' % (s, n + 1, dt))
            report_failure(args, s, rn.done, f, rn.work)
        else:
            passed += 1
            log('seed %d: ok, %d steps in %.1f s (%d SIGKILLs, %d remounts, %d big files written)' % (
                s, n, dt, rn.counts.get('kill', 0), rn.counts.get('remount', 0), rn.big))
    if fails:
        log('failing seeds: %s' % ' '.join(map(str, fails)))
    log('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
