/* The fuse_operations table: thin, each op resolves its handle or path and
 * calls the module that knows the job. */
#include "s3cfs/fsops.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "s3cfs/dir.h"
#include "s3cfs/dirstream.h"
#include "s3cfs/dirtimes.h"
#include "s3cfs/fsqueue.h"
#include "s3cfs/log.h"
#include "s3cfs/lookup.h"
#include "s3cfs/node.h"
#include "s3cfs/objops.h"
#include "s3cfs/kernel_evict.h"
#include "s3cfs/pagekeep.h"

#define COPY_CHUNK (1u << 20)

static struct fs_ctx *the_ctx;

struct fs_ctx *fs_get(void)
{
    return the_ctx;
}

void fs_set(struct fs_ctx *ctx)
{
    the_ctx = ctx;
}

static struct fs_file *file_of(const struct fuse_file_info *fi)
{
    return fi ? (struct fs_file *)(uintptr_t)fi->fh : NULL;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    struct fs_ctx *c = fs_get();
    cfg->use_ino = 0;
    /* unlink or replacement of an open file: libfuse renames it to a hidden
     * name, which node.c keeps local (node_detach), so that fstat and the
     * other path-based calls on its descriptors still reach it; with
     * hard_remove libfuse would answer them ESTALE itself */
    cfg->hard_remove = 0;
    cfg->attr_timeout = c->opt.attr_ttl;
    cfg->entry_timeout = c->opt.attr_ttl;
    cfg->negative_timeout = c->opt.negative_ttl;
    /* bigger requests: fewer round trips through the kernel */
    if (conn->max_write < (1u << 20))
        conn->max_write = 1u << 20;
    conn->max_readahead = 1u << 20;
    return c;
}

/* With hard_remove, libfuse passes a NULL path to the operations that have
 * a handle (getattr, truncate, chmod, chown, utimens, read, write, flush,
 * fsync, release, readdir, fsyncdir...) once the name was unlinked: those
 * work on the handle's node, and no path may be dereferenced there. */

static int getattr_of(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    struct fs_file *f = file_of(fi);
    if (f) { /* fstat: the open file, whatever its name is now */
        node_fstat(f->node, st);
        return 0;
    }
    if (node_hidden_name(path)) /* an open file unlinked: local only */
        return node_stat(fs_get(), path, st, NULL);
    return path ? fs_lookup(fs_get(), path, st, NULL) : -ESTALE;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    int rc = getattr_of(path, st, fi);
    if (rc == 0)
        fs_shown(fs_get(), st);
    return rc;
}

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    struct dir_stream *s;
    int rc = dirstream_open(fs_get(), &s);
    if (rc == 0)
        fi->fh = (uint64_t)(uintptr_t)s;
    return rc;
}

/* Offsets in every entry (libfuse's readdir "mode 2"): a directory of any
 * size is listed a part at a time (dirstream.h). */
static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)flags;
    if (!path) /* removed while open: empty, as on a local disk */
        return 0;
    struct dir_stream *s = fi ? (struct dir_stream *)(uintptr_t)fi->fh : NULL;
    if (s)
        return dirstream_read(s, path, off, buf, filler);
    int rc = dirstream_open(fs_get(), &s); /* no handle: one call, from the start */
    if (rc == 0)
        rc = dirstream_read(s, path, off, buf, filler);
    dirstream_close(s);
    return rc;
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    dirstream_close((struct dir_stream *)(uintptr_t)fi->fh);
    fi->fh = 0;
    return 0;
}

/* A name was made or removed in path's directory: its mtime and ctime
 * change (written coalesced, dirtimes.h). Passes rc on. */
static int changed_parent(const char *path, int rc)
{
    if (rc == 0)
        dirtimes_touch_parent(fs_get()->dirtimes, path);
    return rc;
}

static int op_mkdir(const char *path, mode_t mode)
{
    struct fuse_context *fc = fuse_get_context();
    return changed_parent(path, dir_make(fs_get(), path, mode & ~fc->umask, fc->uid, fc->gid));
}

static int op_rmdir(const char *path)
{
    int rc = dir_remove(fs_get(), path);
    if (rc == 0)
        dirtimes_forget_tree(fs_get()->dirtimes, path);
    pagekeep_forget_tree(fs_get()->pages, path);
    return changed_parent(path, rc);
}

static int open_node(const char *path, const struct stat *st, const char *etag,
                     struct fuse_file_info *fi)
{
    struct fs_ctx *c = fs_get();
    struct fs_loc loc;
    int rc = path_resolve(&c->map, path, &loc);
    if (rc)
        return rc;
    if (loc.kind != LOC_OBJECT)
        return -EISDIR;
    struct fs_file *f;
    rc = node_open(c, path, &loc, st, etag, fi->flags, &f);
    if (rc)
        return rc;
    fi->fh = (uint64_t)(uintptr_t)f;
    /* the kernel keeps its pages of path only when they hold the version
     * opened now (a new or truncated file has none to keep) */
    struct pagekeep_version v = {
        .etag = (fi->flags & O_TRUNC) ? NULL : etag,
        .size = (uint64_t)st->st_size,
        .mtime = st->st_mtim,
    };
    fi->keep_cache = pagekeep_open(c->pages, path, &v);
    if (fi->keep_cache)
        node_pages_kept(f, etag);
    return 0;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    struct fuse_context *fc = fuse_get_context();
    struct stat st;
    /* rmdir d; touch d: the queued delete of d/ lands first, so it cannot
     * hide or remove the new file */
    int rc = fs_settle_name(fs_get(), path);
    if (rc)
        return rc;
    fs_new_stat(fs_get(), S_IFREG | (mode & 07777 & ~fc->umask), fc->uid, fc->gid, 0, &st);
    return changed_parent(path, open_node(path, &st, NULL, fi));
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
    struct stat st;
    char etag[80] = "";
    int rc = fs_lookup(fs_get(), path, &st, etag);
    if (rc)
        return rc;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    return open_node(path, &st, etag, fi);
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    return node_read(fs_get(), file_of(fi), buf, size, off);
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)path;
    return node_write(fs_get(), file_of(fi), buf, size, off);
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    return node_flush(fs_get(), file_of(fi)->node);
}

/* fsync returns when the file's data and its queued jobs have landed */
static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path, (void)datasync;
    struct fs_node *n = file_of(fi)->node;
    int rc = node_flush(fs_get(), n);
    pthread_mutex_lock(&n->lock);
    struct fs_loc loc = n->loc;
    pthread_mutex_unlock(&n->lock);
    int wrc = fsq_wait(fs_get(), &loc, 0);
    return fsq_durable(fs_get(), rc ? rc : wrc);
}

/* fsync of a directory: every job below it */
static int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)datasync, (void)fi;
    if (!path) /* removed while open: nothing below it */
        return 0;
    struct fs_loc loc;
    int trc = dirtimes_flush(fs_get()->dirtimes, path); /* directory times too */
    int rc = path_resolve(&fs_get()->map, path, &loc);
    if (rc == 0) /* the all-buckets root: every job */
        rc = loc.kind == LOC_ROOT ? fsq_wait_all(fs_get()) : fsq_wait_dir(fs_get(), &loc);
    return fsq_durable(fs_get(), rc ? rc : trc);
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
    struct fs_ctx *c = fs_get();
    int rc = node_release(c, file_of(fi));
    if (path)
        kevict_note(c->evict, path);
    return rc;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    struct fs_ctx *c = fs_get();
    if (size < 0)
        return -EINVAL;
    struct fs_file *f = file_of(fi);
    if (f)
        return node_truncate(c, f->node, (uint64_t)size);
    if (!path)
        return -ESTALE;
    /* truncate(2) by name: through a short-lived handle that uploads on release */
    struct fuse_file_info tmp = {.flags = O_WRONLY};
    int rc = op_open(path, &tmp);
    if (rc)
        return rc;
    f = file_of(&tmp);
    rc = node_truncate(c, f->node, (uint64_t)size);
    int rrc = node_release(c, f);
    return rc ? rc : rrc;
}

static int op_unlink(const char *path)
{
    struct stat st;
    if (node_hidden_name(path)) /* the last close of an unlinked file */
        return node_stat(fs_get(), path, &st, NULL);
    pagekeep_forget(fs_get()->pages, path);
    return changed_parent(path, obj_unlink(fs_get(), path));
}

/* After rename(2): both directories changed; a renamed directory's own
 * ctime changes (a file's comes with its move, objops.c) and the times
 * kept for its old name are gone with it. */
static int renamed(const char *from, const char *to, int rc)
{
    struct fs_ctx *c = fs_get();
    struct stat st;
    if (rc)
        return rc;
    dirtimes_forget_tree(c->dirtimes, from);
    changed_parent(from, 0);
    changed_parent(to, 0);
    if (fs_lookup(c, to, &st, NULL) == 0 && S_ISDIR(st.st_mode))
        dirtimes_touch_ctime(c->dirtimes, to);
    return 0;
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
    struct fs_ctx *c = fs_get();
    if (node_hidden_name(from))
        return -EPERM; /* not an object: nothing to rename in S3 */
    /* the kernel's pages follow the inode, not the name */
    pagekeep_forget_tree(c->pages, from);
    pagekeep_forget_tree(c->pages, to);
    if (!node_hidden_name(to)) {
        /* a directory's unwritten times go with its tree (none: no I/O) */
        int trc = dirtimes_flush(c->dirtimes, from);
        if (trc)
            LOGW("rename %s: its directory times were not written (%s)", from, strerror(-trc));
        return renamed(from, to, obj_rename(c, from, to, flags));
    }
    /* libfuse hides a file unlinked (or replaced) while open: the node
     * keeps its content under the hidden name, the object goes */
    int rc = node_detach(c, from, to);
    if (rc == 0)
        rc = obj_unlink(c, from);
    rc = rc == -ENOENT ? 0 : rc; /* ENOENT: it never was in S3 */
    return changed_parent(from, rc);
}

/* chmod, chown, utimens: by name, or on the handle of a file that no
 * longer has one (fchmod after unlink) */
static int set_attrs(const char *path, struct fuse_file_info *fi, const struct obj_attr_change *ch)
{
    struct fs_ctx *c = fs_get();
    struct fs_file *f = file_of(fi);
    if (path && !node_hidden_name(path))
        return obj_setattr(c, path, ch);
    if (f)
        return obj_fsetattr(f->node, ch);
    struct fs_node *n = path ? node_find(c->nodes, path) : NULL;
    if (!n)
        return path ? -ENOENT : -ESTALE;
    int rc = obj_fsetattr(n, ch);
    node_unref(c, n);
    return rc;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    struct obj_attr_change ch = {.set_mode = 1, .mode = mode};
    return set_attrs(path, fi, &ch);
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    struct obj_attr_change ch = {.set_owner = 1, .uid = uid, .gid = gid};
    return set_attrs(path, fi, &ch);
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    struct obj_attr_change ch = {.set_times = 1};
    if (tv) {
        ch.atime = tv[0];
        ch.mtime = tv[1];
    } else {
        ch.atime.tv_nsec = ch.mtime.tv_nsec = UTIME_NOW;
    }
    return set_attrs(path, fi, &ch);
}

static int op_symlink(const char *target, const char *path)
{
    struct fuse_context *fc = fuse_get_context();
    return changed_parent(path, obj_symlink(fs_get(), target, path, fc->uid, fc->gid));
}

/* mkfifo, mknod, bind(2) of a Unix socket; regular files come by create */
static int op_mknod(const char *path, mode_t mode, dev_t rdev)
{
    struct fuse_context *fc = fuse_get_context();
    mode_t m = (mode & S_IFMT) | (mode & 07777 & ~fc->umask);
    return changed_parent(path, obj_mknod(fs_get(), path, m, rdev, fc->uid, fc->gid));
}

static int op_readlink(const char *path, char *buf, size_t size)
{
    return obj_readlink(fs_get(), path, buf, size);
}

static int op_statfs(const char *path, struct statvfs *s)
{
    (void)path;
    memset(s, 0, sizeof *s);
    s->f_bsize = s->f_frsize = 4096;
    /* S3 has no capacity: report a large, constant, mostly free disk */
    s->f_blocks = (fsblkcnt_t)1 << 38;
    s->f_bfree = s->f_bavail = s->f_blocks;
    s->f_files = s->f_ffree = s->f_favail = (fsfilcnt_t)1 << 32;
    s->f_namemax = S3CFS_NAME_MAX;
    return 0;
}

/* the extended attributes of a file unlinked while open are not kept */
static int op_setxattr(const char *path, const char *name, const char *value, size_t size,
                       int flags)
{
    if (node_hidden_name(path))
        return -ENOTSUP;
    return obj_setxattr(fs_get(), path, name, value, size, flags);
}

static int op_getxattr(const char *path, const char *name, char *value, size_t size)
{
    if (node_hidden_name(path))
        return -ENODATA;
    return obj_getxattr(fs_get(), path, name, value, size);
}

static int op_listxattr(const char *path, char *list, size_t size)
{
    if (node_hidden_name(path))
        return 0;
    return obj_listxattr(fs_get(), path, list, size);
}

static int op_removexattr(const char *path, const char *name)
{
    if (node_hidden_name(path))
        return -ENODATA;
    return obj_removexattr(fs_get(), path, name);
}

/* A range that cannot be a server-side copy goes through the data path:
 * never ENOSYS, which would turn copy_file_range off for the whole mount. */
static ssize_t copy_by_data(struct fs_file *in, off_t off_in, struct fs_file *out, off_t off_out,
                            size_t len)
{
    struct fs_ctx *c = fs_get();
    char *buf = malloc(len < COPY_CHUNK ? len : COPY_CHUNK);
    if (!buf)
        return -ENOMEM;
    ssize_t done = 0;
    while ((size_t)done < len) {
        size_t want = len - (size_t)done < COPY_CHUNK ? len - (size_t)done : COPY_CHUNK;
        int r = node_read(c, in, buf, want, off_in + done);
        if (r <= 0) {
            done = done ? done : r;
            break;
        }
        int w = node_write(c, out, buf, (size_t)r, off_out + done);
        if (w < 0) {
            done = done ? done : w;
            break;
        }
        done += w;
    }
    free(buf);
    return done;
}

static ssize_t op_copy_file_range(const char *path_in, struct fuse_file_info *fi_in, off_t off_in,
                                  const char *path_out, struct fuse_file_info *fi_out,
                                  off_t off_out, size_t len, int flags)
{
    (void)path_in, (void)path_out, (void)flags;
    struct fs_file *in = file_of(fi_in), *out = file_of(fi_out);
    if (off_in >= 0 && off_out >= 0) {
        ssize_t n = node_copy(fs_get(), in, out, (uint64_t)off_in, (uint64_t)off_out, len);
        if (n != -EAGAIN)
            return n;
    }
    return copy_by_data(in, off_in, out, off_out, len);
}

static const struct fuse_operations ops = {
    .init = op_init,
    .getattr = op_getattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .mkdir = op_mkdir,
    .rmdir = op_rmdir,
    .create = op_create,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .fsync = op_fsync,
    .fsyncdir = op_fsyncdir,
    .release = op_release,
    .truncate = op_truncate,
    .unlink = op_unlink,
    .rename = op_rename,
    .chmod = op_chmod,
    .chown = op_chown,
    .utimens = op_utimens,
    .symlink = op_symlink,
    .mknod = op_mknod,
    .readlink = op_readlink,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .copy_file_range = op_copy_file_range,
};

const struct fuse_operations *fsops_table(void)
{
    return &ops;
}
