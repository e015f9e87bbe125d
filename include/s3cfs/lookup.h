/* lookup.h - what is at a path: attributes from the open-file table, the
 * namespace cache, or S3 (HeadObject, then a one-key listing for
 * directories that exist only as a marker or a common prefix).
 *
 * A key that is both "a" and "a/" shows as the file "a" (the file wins,
 * in getattr and readdir alike), so the namespace stays consistent.
 */
#ifndef S3CFS_LOOKUP_H
#define S3CFS_LOOKUP_H

#include <sys/stat.h>

#include "s3cfs/fs.h"

/* st and etag (may be NULL) of path; -ENOENT when nothing is there. */
int fs_lookup(struct fs_ctx *c, const char *path, struct stat *st, char etag[80]);

/* The same, answered only from S3 (no cache), with the object's HEAD kept
 * for callers that need its metadata (xattrs, content type). head->meta is
 * empty for implicit directories. */
int fs_lookup_head(struct fs_ctx *c, const char *path, const struct fs_loc *loc, struct stat *st,
                   struct s3_head *head);

/* Before a new object or marker is created at path (mkdir, symlink, the
 * target of a rename, a file's creation): wait until no queued job writes
 * the object key of path or its directory marker key (path + '/'). Then
 * no queued delete can remove what the caller creates, and the namespace
 * no longer pins a tombstone there (the landed delete leaves an ordinary
 * negative entry, which the caller's own cache update replaces), so
 * `rm n; mkdir n` or `rmdir d; touch d` behave as on a local disk. A
 * waiter makes the engine send a pending delete batch at once (jobs.h),
 * so this costs one DeleteObjects round trip when a delete is queued and
 * nothing otherwise. 0 (also for the mount's top and buckets), or the
 * negative errno of a failed wait (the queued job failed: the name may
 * still hold what it was to delete). */
int fs_settle_name(struct fs_ctx *c, const char *path);

/* Attributes of a directory with no marker object (or the mount's top). */
void fs_dir_stat(struct fs_ctx *c, struct stat *st);

/* Attributes of an object we are about to create: type and permission bits
 * in mode, the caller's owner, times now. */
void fs_new_stat(struct fs_ctx *c, mode_t mode, uid_t uid, gid_t gid, uint64_t size,
                 struct stat *st);

#endif
