/* pagekeep.h - whether the kernel may keep a file's cached pages when it is
 * opened again.
 *
 * FUSE drops an inode's page cache at every open unless the open answers
 * keep_cache: without it, every cat of an unchanged file downloads it
 * again. This table remembers, per path, which version of the object the
 * kernel's pages were filled from (ETag, size, mtime: all three must match,
 * so a server that gave two contents one ETag is still caught when size or
 * time differ). An open of the same version keeps the pages; any other
 * open drops them (keep_cache 0) and records the version it will fill them
 * from.
 *
 * The ETag changes whenever the object does, through this mount or another
 * client (seen once the namespace cache's lifetimes have passed). What it
 * does not see is content that changes locally without a new object: a
 * write, a truncate or a copy into an open file, a version taken while it
 * was open, a name renamed or removed. Those forget the path, so the next
 * open drops the pages; forgetting is always safe, it only costs a
 * download.
 *
 * Bounded: at most PAGEKEEP_MAX paths; a new one evicts the least recently
 * opened (its next open drops the pages). An empty ETag (a version not
 * known yet, such as a queued copy) is never recorded and never matches.
 *
 * Locking: one mutex, held for a table operation only; no I/O, no
 * callbacks, so any lock may be held while calling in.
 * Errors: pagekeep_new returns 0 or -ENOMEM; when a record cannot be
 * allocated, the path is simply not kept (the next open drops again).
 */
#ifndef S3CFS_PAGEKEEP_H
#define S3CFS_PAGEKEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PAGEKEEP_MAX 8192

struct pagekeep;

/* The version of an object the kernel's pages hold. */
struct pagekeep_version {
    const char *etag; /* "" or NULL: unknown */
    uint64_t size;
    struct timespec mtime;
};

int pagekeep_new(size_t max, struct pagekeep **out);
/* NULL is fine. */
void pagekeep_free(struct pagekeep *p);

/* path is being opened with content v: true when the kernel's pages of
 * path came from v (keep them); else v is recorded (or, unknown, the path
 * forgotten) and false returned (drop them). NULL p: always false. */
bool pagekeep_open(struct pagekeep *p, const char *path, const struct pagekeep_version *v);
/* path's content changed, or may have, without a new ETag. NULL p or path
 * is ignored. */
void pagekeep_forget(struct pagekeep *p, const char *path);
/* dir and every path below it ("/": everything). */
void pagekeep_forget_tree(struct pagekeep *p, const char *dir);
/* Paths recorded (for tests). */
size_t pagekeep_count(struct pagekeep *p);

#endif
