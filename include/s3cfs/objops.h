/* objops.h - operations on one name: unlink, rename, attribute changes,
 * symlinks, extended attributes, and server-side copy.
 *
 * Attribute changes on an object in S3 rewrite its metadata with a
 * CopyObject onto itself (metadata directive REPLACE, pinned to the ETag
 * just read, Content-Type kept). On a file open with unsaved data they are
 * folded into the coming upload instead, costing no request.
 */
#ifndef S3CFS_OBJOPS_H
#define S3CFS_OBJOPS_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "s3cfs/fs.h"

int obj_unlink(struct fs_ctx *c, const char *path);
/* flags: 0 or RENAME_NOREPLACE (others -EINVAL). */
int obj_rename(struct fs_ctx *c, const char *from, const char *to, unsigned flags);

/* What to change; fields marked unset are kept. */
struct obj_attr_change {
    int set_mode;
    mode_t mode;
    int set_owner;
    uid_t uid; /* (uid_t)-1: keep */
    gid_t gid; /* (gid_t)-1: keep */
    int set_times;
    struct timespec atime, mtime; /* tv_nsec UTIME_NOW / UTIME_OMIT honoured */
};
int obj_setattr(struct fs_ctx *c, const char *path, const struct obj_attr_change *ch);
/* The same on an open file that has no name any more (unlinked while
 * open): only its node changes, nothing is sent. */
struct fs_node;
int obj_fsetattr(struct fs_node *n, const struct obj_attr_change *ch);

/* The dirtimes.h write callback (ctx: the fs_ctx): the directory's marker
 * (or old-style object) gets mtime (NULL: kept) and ctime when they are
 * later than what it has, by a metadata rewrite (a self-copy keeping the
 * rest). 1 when no object carries the directory's times, -ENOENT when it
 * is no longer a directory. */
int obj_write_dir_times(void *ctx, const char *path, const struct timespec *mtime,
                        const struct timespec *ctime);

int obj_symlink(struct fs_ctx *c, const char *target, const char *path, uid_t uid, gid_t gid);
/* mknod(2): an empty object whose mode carries the type, as s3fs stores
 * it (regular file, FIFO, socket, character or block device; a device's
 * number in x-amz-meta-rdev). -EINVAL for other types. */
int obj_mknod(struct fs_ctx *c, const char *path, mode_t mode, dev_t rdev, uid_t uid, gid_t gid);
int obj_readlink(struct fs_ctx *c, const char *path, char *buf, size_t size);

int obj_setxattr(struct fs_ctx *c, const char *path, const char *name, const char *value,
                 size_t size, int flags);
int obj_getxattr(struct fs_ctx *c, const char *path, const char *name, char *value, size_t size);
int obj_listxattr(struct fs_ctx *c, const char *path, char *list, size_t size);
int obj_removexattr(struct fs_ctx *c, const char *path, const char *name);

#endif
