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

/* Which object carries a directory's metadata, kept in st_dev of the
 * stats this module returns (and the namespace cache stores). FUSE never
 * shows st_dev (its attributes have no device field; the kernel sets its
 * own), so it costs nothing and travels with the cached entry:
 *   FS_DIR_MARKER   the "d/" marker (s3fs's and ours)
 *   FS_DIR_UNKNOWN  not known (a listing's common prefix, the mount's top)
 *   FS_DIR_IMPLICIT no marker: only keys below it
 *   FS_DIR_OBJECT   an old-style "d" object: empty, Content-Type
 *                   application/x-directory (older s3fs, some tools)
 *   FS_DIR_FOLDER   an old-style "d_$folder$" object (S3 Organizer, Hadoop)
 * rmdir removes the old-style objects too; rename moves them to the new
 * name's marker; attribute changes rewrite the object that carries them. */
enum fs_dir_kind { FS_DIR_MARKER, FS_DIR_UNKNOWN, FS_DIR_IMPLICIT, FS_DIR_OBJECT, FS_DIR_FOLDER };
#define FS_FOLDER_SUFFIX "_$folder$"
/* The key of the object carrying the metadata of the directory at loc
 * with attributes st: "d/", "d" or "d_$folder$". */
int fs_dir_meta_key(const struct fs_loc *loc, const struct stat *st, char *key, size_t size);

/* st and etag (may be NULL) of path; -ENOENT when nothing is there. A
 * directory's st_nlink is 2 + its subdirectories when its listing is
 * cached, else 1: "unknown" to find and fts (meta.h). */
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
 * waiter makes the engine send a pending delete batch at once (engine.h),
 * so this costs one DeleteObjects round trip when a delete is queued and
 * nothing otherwise. 0 (also for the mount's top and buckets), or the
 * negative errno of a failed wait (the queued job failed: the name may
 * still hold what it was to delete). */
int fs_settle_name(struct fs_ctx *c, const char *path);

/* What the kernel is shown of st: setuid/setgid bits only on a mount
 * with `suid` (the kernel would not honour them; stored modes keep them). */
void fs_shown(struct fs_ctx *c, struct stat *st);

/* A directory's st_nlink as stat shows it: 2 + its subdirectories when
 * its listing is cached, else 1 ("unknown", as find expects). */
void fs_dir_nlink(struct fs_ctx *c, const char *path, struct stat *st);

/* Attributes of a directory with no marker object (or the mount's top). */
void fs_dir_stat(struct fs_ctx *c, struct stat *st);

/* Attributes of an object we are about to create: type and permission bits
 * in mode, the caller's owner, times now. */
void fs_new_stat(struct fs_ctx *c, mode_t mode, uid_t uid, gid_t gid, uint64_t size,
                 struct stat *st);

#endif
