/* meta.h - POSIX attributes <-> S3 user metadata, in s3fs-fuse's format.
 *
 * A bucket written by s3fs-fuse reads the same here and the other way round
 * (doc/DESIGN.md §2). The user metadata, by name without "x-amz-meta-":
 *   mode   decimal st_mode with the file-type bits (0644 file = "33188")
 *   uid    decimal            gid   decimal
 *   mtime, ctime, atime       "%ld" seconds or "%ld.%09ld"
 *   xattr  URL-encoded JSON {"name":"base64(value)",...}
 *
 * Pure: no I/O, no locks, no FUSE. Nothing here keeps a pointer to its
 * arguments after returning except where a function says so.
 */
#ifndef S3CFS_META_H
#define S3CFS_META_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "s3cfs/buf.h"
#include "s3cfs/s3.h"

/* st_blksize reported for every entry: the largest request FUSE sends by
 * default (32 pages). stdio and cp size their buffers by it, so reads map
 * to whole FUSE requests, while a FILE's buffer stays small. */
#define META_BLKSIZE (128 * 1024)

/* S3 limits all user metadata of an object (names and values) to 2 KiB.
 * The encoded xattr value may use what the other fields leave: their names
 * and longest values take under 150 bytes; 256 are set aside. */
#define META_USER_LIMIT     2048
#define META_FIXED_MAX      256
#define META_XATTR_MAX      (META_USER_LIMIT - META_FIXED_MAX)
#define META_XATTR_NAME_MAX 255 /* as XATTR_NAME_MAX in <linux/limits.h> */

/* What the key says the entry is: the caller decides from the key. */
enum meta_kind {
    META_FILE, /* a plain object "name": regular file, or symlink/fifo/socket/device by its mode */
    META_DIR,  /* a marker "name/" or an implicit common prefix: always a directory */
};

/* Mount options, for objects that lack metadata. */
struct meta_defaults {
    uid_t uid;
    gid_t gid;
    mode_t umask;         /* applied to file_mode/dir_mode only, never to a stored mode */
    mode_t file_mode;     /* permission bits, e.g. 0644 */
    mode_t dir_mode;      /* permission bits, e.g. 0755 */
    struct timespec time; /* when there is no Last-Modified either (e.g. mount time) */
    int show_suid;        /* the mount has `suid`: setuid/setgid bits are shown (fsops.c) */
};

/* The value of metadata `name` (lower case, without "x-amz-meta-"), or NULL.
 * Points into m. */
const char *meta_find(const struct s3_meta *m, size_t n, const char *name);

/* Fill *st (zeroed first) from HeadObject metadata m[0..n) (n may be 0, as
 * for a listing entry), the object size and Last-Modified (NULL: d->time).
 *   - mode: permission and type bits as stored. A mode without a usable type
 *     is a regular file; META_DIR is always S_IFDIR, whatever the mode says;
 *     on META_FILE, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR and S_IFBLK are
 *     kept, S_IFDIR is read as a regular file (a plain object holds data).
 *     S_ISUID and S_ISGID are kept (so that rewrites keep them): the
 *     filesystem hides them at the FUSE boundary unless d->show_suid.
 *   - rdev: "rdev" (decimal dev_t, as s3fs writes it) for S_IFCHR/S_IFBLK,
 *     else 0.
 *   - a missing or malformed field (non-digits, overflow, mode > 0177777)
 *     is ignored: mode from d with d->umask, uid/gid from d, each missing
 *     time from Last-Modified.
 *   - st_nlink 1 (2 for directories), st_blocks ceil(size / 512) (coreutils
 *     takes fewer blocks as a sparse file), st_blksize META_BLKSIZE.
 * st_ino and st_dev are left 0 for the caller. */
void meta_to_stat(const struct s3_meta *m, size_t n, uint64_t size,
                  const struct timespec *last_modified, enum meta_kind kind,
                  const struct meta_defaults *d, struct stat *st);

/* ---- writing: the metadata of a PUT or CopyObject(REPLACE) ---- */

#define META_SET_MAX   8  /* mode uid gid mtime ctime atime [rdev] [xattr] */
#define META_VALUE_MAX 32 /* "-9223372036854775808.999999999" and its NUL */

/* meta[0..nmeta) is what to send (s3_write_opts.meta/nmeta). Its names are
 * static strings and its values point into value[] of the same struct:
 * keep the struct in place (no copy by value) while meta[] is in use. */
struct meta_set {
    struct s3_meta meta[META_SET_MAX];
    size_t nmeta;
    size_t nfields; /* entries before the xattr header */
    char value[META_SET_MAX - 1][META_VALUE_MAX];
};

/* mode, uid, gid, mtime, ctime, atime of st into *out (6 entries, and
 * rdev for a character or block device: 7). Times
 * are written "%ld" when tv_nsec is 0, else "%ld.%09ld"; the caller must
 * have resolved UTIME_NOW/UTIME_OMIT (an out-of-range tv_nsec is dropped). */
void meta_from_stat(const struct stat *st, struct meta_set *out);

/* Add (or, with NULL or "", leave out) the xattr header after
 * meta_from_stat(). `encoded` is borrowed: it must outlive the use of out. */
void meta_set_xattr(struct meta_set *out, const char *encoded);

/* ---- extended attributes ---- */

struct meta_xattr {
    char *name;           /* non-empty C string, at most META_XATTR_NAME_MAX bytes */
    unsigned char *value; /* len bytes, binary (may hold NULs); never NULL */
    size_t len;
};

/* Owns v[] and every name and value; kept in insertion order. */
struct meta_xattrs {
    struct meta_xattr *v;
    size_t n;
    size_t cap;
};

#define META_XATTRS_INIT                                                                           \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void meta_xattrs_init(struct meta_xattrs *x);
void meta_xattrs_free(struct meta_xattrs *x);

/* Parse the x-amz-meta-xattr value (URL-encoded JSON; plain JSON works too)
 * into *out, which this initialises: free it with meta_xattrs_free() in
 * every case. NULL or "" is the empty set. Names may use JSON escapes
 * (\" \\ \/ \uXXXX ...). On malformed input (bad %-escape, JSON, base64 or
 * name) *out is the empty set and -EINVAL is returned for the caller to log;
 * -ENOMEM likewise. A repeated name keeps its last value. */
int meta_xattr_parse(const char *encoded, struct meta_xattrs *out);

/* getxattr(2) semantics: with size 0 the value's length; else copy it to
 * buf and return its length, or -ERANGE if it does not fit; -ENODATA if
 * there is no such attribute. */
ssize_t meta_xattr_get(const struct meta_xattrs *x, const char *name, void *buf, size_t size);

/* listxattr(2) semantics: the names, each NUL-terminated, back to back;
 * with size 0 the length needed; -ERANGE if buf is too small. */
ssize_t meta_xattr_list(const struct meta_xattrs *x, char *buf, size_t size);

/* setxattr(2) semantics; flags 0, XATTR_CREATE (-EEXIST if present) or
 * XATTR_REPLACE (-ENODATA if absent) from <sys/xattr.h>. value/len are
 * copied. -EINVAL for an empty name, -ERANGE for a name over
 * META_XATTR_NAME_MAX, -E2BIG if the set would no longer encode within
 * META_XATTR_MAX. On any error the set is unchanged. */
int meta_xattr_set(struct meta_xattrs *x, const char *name, const void *value, size_t len,
                   int flags);

/* removexattr(2) semantics: 0 or -ENODATA. */
int meta_xattr_remove(struct meta_xattrs *x, const char *name);

/* Append the x-amz-meta-xattr value for x to out, URL-encoded as s3fs
 * writes it. The empty set appends nothing: leave the header out. Returns
 * -E2BIG if the value would exceed META_XATTR_MAX (possible for a set
 * parsed from another tool's object), -ENOMEM; out is unchanged on error. */
int meta_xattr_encode(const struct meta_xattrs *x, struct sbuf *out);

#endif
