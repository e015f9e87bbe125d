/* dir.h - directories: mkdir, rmdir, and whether one has children (the
 * listing a reader sees, readdir, is dirstream.h).
 */
#ifndef S3CFS_DIR_H
#define S3CFS_DIR_H

#define FUSE_USE_VERSION 314
#include <fuse.h>

#include "s3cfs/fs.h"

int dir_make(struct fs_ctx *c, const char *path, mode_t mode, uid_t uid, gid_t gid);
int dir_remove(struct fs_ctx *c, const char *path);
/* Whether the directory at path (loc) has any child: 1, 0 or -errno.
 * rmdir and a rename onto a directory ask it, so it never trusts the
 * cache: it lists S3 (a page of the marker, the queued deletes below and
 * one key more) and every key below counts except the marker and keys
 * whose delete is queued - also objects another client put into a
 * directory this mount made, an orphaned "sub/" marker, and keys readdir
 * leaves out because they have no name there ("d//x", "d/./x"). Queued
 * copies onto a child and files created and not yet flushed count too. */
int dir_has_children(struct fs_ctx *c, const char *path, const struct fs_loc *loc);

#endif
