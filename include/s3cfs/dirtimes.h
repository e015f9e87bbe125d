/* dirtimes.h - a directory's mtime and ctime as POSIX says they change
 * (create, unlink, mkdir, rmdir, rename into or out of it; rename of the
 * directory itself changes its ctime), without a request per change.
 *
 * A change sets the times in memory at once (lookups overlay them: stat
 * shows them immediately) and marks the directory dirty. A background
 * thread writes a dirty directory's times once it has been quiet for
 * DIRTIMES_QUIET_MS, or DIRTIMES_MAX_DIRTY_MS after its first change,
 * with one call of the write callback (a metadata rewrite of the marker:
 * a cp -r of N files into a directory costs O(1) writes, not N);
 * dirtimes_flush writes them at a durability point (fsync of a directory,
 * unmount). A directory without a marker object (a common prefix, the
 * mount's top, a bucket) keeps its times in memory only, while its entry
 * stays in the table.
 *
 * Bounded: at most DIRTIMES_MAX directories; a new one evicts the least
 * recently changed clean entry, else (all dirty) the oldest dirty one,
 * whose times are then lost (logged). A crash loses the dirty times of at
 * most the last DIRTIMES_MAX_DIRTY_MS.
 *
 * Locking: one mutex for the table, never held while the write callback
 * runs. The callback runs on the table's thread (or the flusher's caller).
 */
#ifndef S3CFS_DIRTIMES_H
#define S3CFS_DIRTIMES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#define DIRTIMES_MAX          4096
#define DIRTIMES_QUIET_MS     1000
#define DIRTIMES_MAX_DIRTY_MS 5000

/* Write path's times: 0 written, 1 the directory has no marker (keep the
 * times in memory), -ENOENT it is gone (forget them), else -errno (kept
 * dirty, tried again later). mtime/ctime: the times to store. */
typedef int (*dirtimes_write_fn)(void *ctx, const char *path, const struct timespec *mtime,
                                 const struct timespec *ctime);

struct dirtimes;

/* Starts the writer thread. -ENOMEM, -EAGAIN (thread). */
int dirtimes_new(dirtimes_write_fn write, void *ctx, struct dirtimes **out);
/* Writes every dirty entry, stops the thread, frees. NULL is fine. */
void dirtimes_free(struct dirtimes *d);

/* The directory containing path changed (a name made or removed). */
void dirtimes_touch_parent(struct dirtimes *d, const char *path);
/* The directory dir itself was renamed to here: its ctime is now. */
void dirtimes_touch_ctime(struct dirtimes *d, const char *dir);
/* dir and everything below it went away (rmdir, moved): forget them. */
void dirtimes_forget_tree(struct dirtimes *d, const char *dir);
/* Overlay path's times on st when they are newer. */
void dirtimes_apply(struct dirtimes *d, const char *path, struct stat *st);
/* A rewrite of dir's metadata outside this module (chmod, xattrs): wait
 * until no write of dir's times is in flight and keep the writer off it
 * until dirtimes_release (a self-copy of an empty marker keeps its ETag,
 * so the copy's condition cannot tell two rewrites apart: one would undo
 * the other). The caller overlays dirtimes_apply on what it writes; with
 * written, its rewrite carried the times (clean unless changed since).
 * Returns a token for release (0: nothing held). */
uint64_t dirtimes_hold(struct dirtimes *d, const char *dir);
void dirtimes_release(struct dirtimes *d, const char *dir, uint64_t token, bool written);
/* Write the dirty entries at or below dir ("/" or NULL: all) now; the
 * first error, or 0. */
int dirtimes_flush(struct dirtimes *d, const char *dir);

#endif
