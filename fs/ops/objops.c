#include "s3cfs/objops.h"

#include <errno.h>
#include <stdio.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

#include "s3cfs/dir.h"
#include "s3cfs/dirtimes.h"
#include "s3cfs/fsqueue.h"
#include "s3cfs/engine.h"
#include "s3cfs/log.h"
#include "s3cfs/lookup.h"
#include "s3cfs/mime.h"
#include "s3cfs/node.h"
#include "s3cfs/nscache.h"
#include "s3cfs/pool.h"
#include "s3cfs/transfer.h"

#define SYMLINK_MAX 4096

/* What a metadata rewrite needs to know about the current object. */
struct current {
    struct fs_loc loc;
    struct stat st;
    struct s3_head head;         /* etag empty: a directory without a marker */
    char key[S3CFS_KEY_MAX + 2]; /* the object that carries the metadata */
};

static int load_current(struct fs_ctx *c, const char *path, struct current *cur)
{
    memset(cur, 0, sizeof *cur);
    int rc = path_resolve(&c->map, path, &cur->loc);
    if (rc)
        return rc;
    if (cur->loc.kind != LOC_OBJECT)
        return -EPERM; /* the mount's top and buckets carry no metadata */
    rc = fs_lookup_head(c, path, &cur->loc, &cur->st, &cur->head);
    if (rc)
        return rc;
    if (S_ISDIR(cur->st.st_mode)) /* "d/", or an old-style "d" / "d_$folder$" */
        return fs_dir_meta_key(&cur->loc, &cur->st, cur->key, sizeof cur->key);
    snprintf(cur->key, sizeof cur->key, "%s", cur->loc.key);
    return 0;
}

/* Write cur->st (and xattr) as the object's metadata: a self-copy with
 * REPLACE, or a new marker for a directory that had none. */
static int rewrite_meta(struct fs_ctx *c, const char *path, struct current *cur, const char *xattr)
{
    struct meta_set ms;
    meta_from_stat(&cur->st, &ms);
    if (xattr)
        meta_set_xattr(&ms, xattr);
    bool dir = S_ISDIR(cur->st.st_mode);
    const char *type = cur->head.content_type[0] ? cur->head.content_type
                       : dir                     ? "application/x-directory"
                                                 : NULL;
    struct s3_write_opts wo = {.content_type = type, .meta = ms.meta, .nmeta = ms.nmeta};
    struct s3_error err;
    char etag[80] = "";
    int rc;
    if (dir && !cur->head.etag[0]) {
        rc = s3_put_object(c->s3, cur->loc.bucket, cur->key, NULL, &wo, etag, &err);
        if (rc)
            return fs_fail("set attributes", path, rc, &err);
    } else { /* keeps all the object carries but s3fs's fields (transfer.h) */
        struct fs_loc at = cur->loc;
        snprintf(at.key, sizeof at.key, "%s", cur->key);
        if ((rc = transfer_rewrite(c, &at, &cur->head, &wo, etag, &err)))
            return rc; /* logged */
    }
    nscache_put(c->cache, path, &cur->st, etag);
    struct fs_node *n = node_find(c->nodes, path);
    if (n) { /* reads through open handles must accept the new ETag */
        pthread_mutex_lock(&n->lock);
        if (n->exists && !n->dirty)
            memcpy(n->etag, etag, sizeof n->etag);
        n->own_meta = false; /* its next upload keeps what this wrote */
        pthread_mutex_unlock(&n->lock);
        node_unref(c, n);
    }
    return 0;
}

static void resolve_time(struct timespec *dst, const struct timespec *req,
                         const struct timespec *now)
{
    if (req->tv_nsec == UTIME_NOW)
        *dst = *now;
    else if (req->tv_nsec != UTIME_OMIT)
        *dst = *req;
}

static void apply_change(struct stat *st, const struct obj_attr_change *ch)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (ch->set_mode)
        st->st_mode = (st->st_mode & S_IFMT) | (ch->mode & 07777);
    if (ch->set_owner && ch->uid != (uid_t)-1)
        st->st_uid = ch->uid;
    if (ch->set_owner && ch->gid != (gid_t)-1)
        st->st_gid = ch->gid;
    if (ch->set_times) {
        resolve_time(&st->st_atim, &ch->atime, &now);
        resolve_time(&st->st_mtim, &ch->mtime, &now);
    }
    st->st_ctim = now;
}

/* Make S3 hold what the file shows: flush an open node and wait for the
 * queued jobs on its key. */
static int settle(struct fs_ctx *c, const char *path)
{
    struct fs_loc loc;
    int rc = path_resolve(&c->map, path, &loc);
    if (rc || loc.kind != LOC_OBJECT)
        return rc;
    struct fs_node *n = node_find(c->nodes, path);
    if (n) {
        rc = node_flush(c, n);
        node_unref(c, n);
    }
    return rc ? rc : fsq_wait(c, &loc, 0);
}

/* cp -a/-p on a destination whose copy is queued: the attributes ride
 * along with the copy, no extra request. 1 when folded. */
static int fold_into_copy(struct fs_ctx *c, const char *path, const struct obj_attr_change *ch)
{
    struct fs_loc loc;
    struct stat st;
    if (path_resolve(&c->map, path, &loc) || loc.kind != LOC_OBJECT ||
        !fsq_pending(c, &loc, ENGINE_AS_DEST) || fs_lookup(c, path, &st, NULL))
        return 0;
    apply_change(&st, ch);
    if (fsq_fold_attrs(c, &loc, &st))
        return 0;
    struct fs_node *n = node_find(c->nodes, path);
    if (n) {
        node_setattr(n, &st);
        node_unref(c, n);
    }
    return 1;
}

/* A directory's marker is rewritten by dirtimes.c too: keep its writer
 * off while this rewrite reads and writes it (dirtimes.h). 0: not held. */
static uint64_t hold_dir(struct fs_ctx *c, const char *path)
{
    struct stat st;
    if (fs_lookup(c, path, &st, NULL) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    return dirtimes_hold(c->dirtimes, path);
}

int obj_setattr(struct fs_ctx *c, const char *path, const struct obj_attr_change *ch)
{
    if (fold_into_copy(c, path, ch))
        return 0;
    struct fs_node *n = node_find(c->nodes, path);
    if (n) {
        struct stat st;
        node_stat(c, path, &st, NULL);
        apply_change(&st, ch);
        int folded = node_setattr(n, &st);
        node_unref(c, n);
        if (folded)
            return 0; /* goes up with the data */
    }
    struct current cur = {0};
    int rc = settle(c, path);
    uint64_t held = rc ? 0 : hold_dir(c, path);
    if (rc == 0)
        rc = load_current(c, path, &cur);
    if (rc == 0) {
        dirtimes_apply(c->dirtimes, path, &cur.st); /* pending directory times */
        apply_change(&cur.st, ch);
        rc = rewrite_meta(c, path, &cur, meta_find(cur.head.meta, cur.head.nmeta, "xattr"));
    }
    dirtimes_release(c->dirtimes, path, held, rc == 0);
    s3_head_free(&cur.head);
    return rc;
}

static int lookup_loc(struct fs_ctx *c, const char *path, struct fs_loc *loc, struct stat *st,
                      char etag[80])
{
    int rc = path_resolve(&c->map, path, loc);
    if (rc)
        return rc;
    if (loc->kind != LOC_OBJECT)
        return -EBUSY;
    return st ? fs_lookup(c, path, st, etag) : 0;
}

int obj_unlink(struct fs_ctx *c, const char *path)
{
    struct fs_loc loc;
    struct stat st;
    char etag[80] = "";
    int rc = lookup_loc(c, path, &loc, &st, etag);
    if (rc)
        return rc;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    if ((rc = node_detach(c, path, NULL))) /* an open file keeps its content */
        return rc;
    nscache_invalidate(c->cache, path);
    return fsq_delete(c, &loc, path, etag); /* batched; the name is gone at once */
}

static int rename_file(struct fs_ctx *c, const char *from, const struct fs_loc *fl, const char *to,
                       const struct fs_loc *tl, const struct stat *st, unsigned flags)
{
    int rc = node_detach(c, to, NULL); /* an open target keeps its old content */
    if (rc)
        return rc;
    /* rename changes the file's ctime: the copy writes s3fs's fields
     * (REPLACE; transfer_copy keeps everything else the source carries).
     * The xattrs are s3fs's too: one HEAD reads them (the source has
     * landed, settle() waited). */
    struct s3_head h;
    struct s3_error err;
    if ((rc = s3_head_object(c->s3, fl->bucket, fl->key, &h, &err)))
        return fs_fail("head (rename)", from, rc, &err);
    struct stat moved = *st;
    clock_gettime(CLOCK_REALTIME, &moved.st_ctim);
    struct meta_set ms;
    meta_from_stat(&moved, &ms);
    meta_set_xattr(&ms, meta_find(h.meta, h.nmeta, "xattr"));
    struct s3_write_opts wo = {.meta = ms.meta, .nmeta = ms.nmeta};
    nscache_invalidate(c->cache, to);
    nscache_invalidate(c->cache, from);
    rc = fsq_move(c, fl, h.etag, h.size, tl, from, to, &moved, &wo, flags & RENAME_NOREPLACE);
    s3_head_free(&h);
    if (rc == 0)
        node_rename(c->nodes, from, to, tl);
    return rc;
}

/* ---- directory trees: one listing page at a time, so memory stays at a
 * page whatever the size of the tree ---- */

struct tree_move {
    struct fs_ctx *c;
    const struct fs_loc *fl, *tl;
    const char *from_prefix, *to_prefix;
    size_t fplen;
    bool noreplace; /* RENAME_NOREPLACE: each copy only onto a free key */
};

/* One listing page of a tree move: each object's copy and its source's
 * delete are queued (and journaled) together, the deletes held; once the
 * page's copies are confirmed the deletes go out as one DeleteObjects. A
 * source whose copy failed is kept (its delete is cancelled). */
static int move_page(const struct s3_list_page *p, void *arg)
{
    struct tree_move *m = arg;
    struct fs_loc from = *m->fl, to = *m->tl;
    from.kind = to.kind = LOC_OBJECT;
    uint64_t group = fsq_group(m->c);
    int rc = 0;
    size_t n = 0;
    for (; rc == 0 && n < p->nobjects; n++) {
        const struct s3_object *o = &p->objects[n];
        snprintf(from.key, sizeof from.key, "%s", o->key);
        if (snprintf(to.key, sizeof to.key, "%s%s", m->to_prefix, o->key + m->fplen) >
            S3CFS_KEY_MAX)
            rc = -ENAMETOOLONG;
        else
            rc = fsq_move_held(m->c, &from, o->etag, o->size, &to, group, m->noreplace);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(to.key, sizeof to.key, "%s%s", m->to_prefix, p->objects[i].key + m->fplen);
        int wrc = fsq_wait(m->c, &to, ENGINE_AS_DEST);
        rc = rc ? rc : wrc;
    }
    fsq_release(m->c, group);
    return rc;
}

/* An old-style directory object ("d", "d_$folder$") becomes the new
 * name's marker, keeping its metadata; the listing did not cover it. */
static int move_old_style(struct fs_ctx *c, const struct fs_loc *fl, const struct stat *st,
                          const struct fs_loc *tl, const char *to_marker)
{
    if (st->st_dev != FS_DIR_OBJECT && st->st_dev != FS_DIR_FOLDER)
        return 0;
    struct fs_loc from = *fl, to = *tl;
    from.kind = to.kind = LOC_OBJECT;
    int rc = fs_dir_meta_key(fl, st, from.key, sizeof from.key);
    snprintf(to.key, sizeof to.key, "%s", to_marker);
    return rc ? rc : fsq_move(c, &from, "", 0, &to, NULL, NULL, st, NULL, false);
}

static int rename_tree(struct fs_ctx *c, const char *from, const struct fs_loc *fl, const char *to,
                       const struct fs_loc *tl, const struct stat *st, unsigned flags)
{
    char fp[S3CFS_KEY_MAX + 2], tp[S3CFS_KEY_MAX + 2];
    int rc = path_dir_prefix(fl, fp, sizeof fp);
    if (rc == 0)
        rc = path_dir_prefix(tl, tp, sizeof tp);
    if (rc)
        return rc;
    if (fl->bucket[0] == tl->bucket[0] && strcmp(fl->bucket, tl->bucket) == 0 &&
        strncmp(tp, fp, strlen(fp)) == 0)
        return -EINVAL; /* into itself */
    struct tree_move m = {c, fl, tl, fp, tp, strlen(fp), flags & RENAME_NOREPLACE};
    struct s3_error err;
    s3_error_clear(&err);
    rc = node_flush_tree(c, from); /* open files' data goes with the tree */
    if (rc == 0)
        rc = fsq_wait_dir(c, fl); /* what was queued below it lands first */
    if (rc == 0)
        rc = s3_list_all(c->s3, fl->bucket, fp, NULL, move_page, &m, &err);
    if (rc == 0)
        rc = move_old_style(c, fl, st, tl, tp);
    if (rc && err.code[0])
        fs_fail("rename (list)", from, rc, &err);
    /* rename(2) answers when the tree moved, with the first error if any */
    int wrc = fsq_wait_dir(c, tl);
    int frc = fsq_wait_dir(c, fl);
    rc = rc ? rc : wrc ? wrc : frc;
    if (rc == 0) /* open files follow the tree: nothing is uploaded under the old name */
        node_rename_tree(c, from, to);
    nscache_invalidate_tree(c->cache, from);
    nscache_invalidate_tree(c->cache, to);
    nscache_invalidate(c->cache, from);
    nscache_invalidate(c->cache, to);
    if (rc == 0)
        nscache_put_negative(c->cache, from);
    return rc;
}

static int check_target(struct fs_ctx *c, const struct stat *fst, const char *to,
                        const struct fs_loc *tl, unsigned flags)
{
    struct stat tst;
    int rc = fs_lookup(c, to, &tst, NULL);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    if (flags & RENAME_NOREPLACE)
        return -EEXIST;
    if (S_ISDIR(tst.st_mode) && !S_ISDIR(fst->st_mode))
        return -EISDIR;
    if (!S_ISDIR(tst.st_mode) && S_ISDIR(fst->st_mode))
        return -ENOTDIR;
    if (S_ISDIR(tst.st_mode)) {
        rc = dir_has_children(c, to, tl);
        return rc > 0 ? -ENOTEMPTY : rc;
    }
    return 0;
}

int obj_rename(struct fs_ctx *c, const char *from, const char *to, unsigned flags)
{
    if (flags & ~(unsigned)RENAME_NOREPLACE)
        return -EINVAL;
    struct fs_loc fl, tl;
    struct stat st;
    char etag[80] = "";
    int rc = lookup_loc(c, to, &tl, NULL, NULL);
    if (rc == 0) /* rm b; mv a b: the queued delete never removes the new b */
        rc = fs_settle_name(c, to);
    if (rc == 0)
        rc = settle(c, from);
    if (rc == 0)
        rc = lookup_loc(c, from, &fl, &st, etag);
    if (rc == 0)
        rc = check_target(c, &st, to, &tl, flags);
    if (rc)
        return rc;
    if (!S_ISDIR(st.st_mode))
        return rename_file(c, from, &fl, to, &tl, &st, flags);
    return rename_tree(c, from, &fl, to, &tl, &st, flags);
}

/* A new object at path holding body[0..len) with st as its metadata
 * (symlinks, mknod): one PUT, after the name is settled. */
static int put_new(struct fs_ctx *c, const char *path, const struct fs_loc *loc,
                   const struct stat *st, const char *body, size_t len)
{
    struct meta_set ms;
    meta_from_stat(st, &ms);
    char type[128] = "";
    if (S_ISREG(st->st_mode))
        mime_type(c->mime, path, type, sizeof type);
    struct s3_write_opts wo = {
        .content_type = type[0] ? type : NULL, .meta = ms.meta, .nmeta = ms.nmeta};
    struct s3_body b = {.data = body, .fd = -1, .len = len};
    struct s3_error err;
    char etag[80];
    int rc = fs_settle_name(c, path); /* rm n; ln -s t n, rmdir n; mkfifo n */
    if (rc)
        return rc;
    rc = s3_put_object(c->s3, loc->bucket, loc->key, &b, &wo, etag, &err);
    if (rc)
        return fs_fail(S_ISLNK(st->st_mode) ? "symlink" : "mknod", path, rc, &err);
    nscache_put(c->cache, path, st, etag); /* also into the parent's listing (as mkdir) */
    return 0;
}

/* A name not taken yet: 0, -EEXIST, or the lookup's error. */
static int new_name(struct fs_ctx *c, const char *path, struct fs_loc *loc)
{
    struct stat st;
    int rc = lookup_loc(c, path, loc, &st, NULL);
    return rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
}

int obj_symlink(struct fs_ctx *c, const char *target, const char *path, uid_t uid, gid_t gid)
{
    struct fs_loc loc;
    struct stat st;
    int rc = new_name(c, path, &loc);
    if (rc)
        return rc;
    size_t len = strlen(target);
    if (len >= SYMLINK_MAX)
        return -ENAMETOOLONG;
    fs_new_stat(c, S_IFLNK | 0777, uid, gid, len, &st);
    return put_new(c, path, &loc, &st, target, len);
}

int obj_mknod(struct fs_ctx *c, const char *path, mode_t mode, dev_t rdev, uid_t uid, gid_t gid)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
        break;
    default:
        return -EINVAL; /* S_IFDIR is mkdir's, S_IFLNK symlink's */
    }
    struct fs_loc loc;
    struct stat st;
    int rc = new_name(c, path, &loc);
    if (rc)
        return rc;
    fs_new_stat(c, mode, uid, gid, 0, &st);
    if (S_ISCHR(mode) || S_ISBLK(mode))
        st.st_rdev = rdev;
    return put_new(c, path, &loc, &st, NULL, 0);
}

int obj_readlink(struct fs_ctx *c, const char *path, char *buf, size_t size)
{
    struct fs_loc loc;
    struct stat st;
    int rc = lookup_loc(c, path, &loc, &st, NULL);
    if (rc)
        return rc;
    if (!S_ISLNK(st.st_mode))
        return -EINVAL;
    /* mv l m; readlink m: the link's object is there once its copy landed */
    if ((rc = fsq_wait(c, &loc, ENGINE_AS_DEST)))
        return rc;
    struct sbuf body = SBUF_INIT;
    struct s3_error err;
    rc = s3_get_object_buf(c->s3, loc.bucket, loc.key, &body, SYMLINK_MAX, &err);
    if (rc == 0) {
        size_t n = body.len < size - 1 ? body.len : size - 1;
        memcpy(buf, sbuf_str(&body), n);
        buf[n] = '\0';
    } else {
        fs_fail("readlink", path, rc, &err);
    }
    sbuf_free(&body);
    return rc;
}

/* ---- extended attributes: the s3fs x-amz-meta-xattr header ---- */

static int xattr_ns_ok(const char *name)
{
    /* no kernel-interpreted namespaces: cp -a then skips them quietly */
    return strncmp(name, "security.", 9) != 0 && strncmp(name, "system.", 7) != 0 &&
           strncmp(name, "trusted.", 8) != 0;
}

static int load_xattrs(struct fs_ctx *c, const char *path, struct current *cur,
                       struct meta_xattrs *x)
{
    meta_xattrs_init(x);
    int rc = load_current(c, path, cur);
    if (rc == -EPERM)
        return 0; /* the mount's top and buckets: an empty set */
    if (rc)
        return rc;
    if (meta_xattr_parse(meta_find(cur->head.meta, cur->head.nmeta, "xattr"), x) == -EINVAL)
        LOGW("%s: unreadable x-amz-meta-xattr, treated as empty", path);
    return 0;
}

/* Read the xattr set of path (name NULL: list the names) into buf. */
static int read_xattrs(struct fs_ctx *c, const char *path, const char *name, char *buf, size_t size)
{
    struct current cur = {0};
    struct meta_xattrs x = META_XATTRS_INIT;
    int rc = settle(c, path);
    if (rc == 0)
        rc = load_xattrs(c, path, &cur, &x);
    if (rc == 0)
        rc = (int)(name ? meta_xattr_get(&x, name, buf, size) : meta_xattr_list(&x, buf, size));
    meta_xattrs_free(&x);
    s3_head_free(&cur.head);
    return rc;
}

int obj_getxattr(struct fs_ctx *c, const char *path, const char *name, char *value, size_t size)
{
    /* never stored, and asked for every file by ls: answer without a HEAD */
    if (!xattr_ns_ok(name))
        return -ENODATA;
    return read_xattrs(c, path, name, value, size);
}

int obj_listxattr(struct fs_ctx *c, const char *path, char *list, size_t size)
{
    return read_xattrs(c, path, NULL, list, size);
}

/* Change the xattr set (value NULL: remove) and rewrite the metadata. */
static int change_xattr(struct fs_ctx *c, const char *path, const char *name, const char *value,
                        size_t size, int flags)
{
    if (!xattr_ns_ok(name))
        return -ENOTSUP;
    struct fs_loc loc;
    int lrc = path_resolve(&c->map, path, &loc);
    if (lrc || loc.kind != LOC_OBJECT)
        return lrc ? lrc : -EPERM;
    struct current cur = {0};
    struct meta_xattrs x = META_XATTRS_INIT;
    struct sbuf enc = SBUF_INIT;
    int rc = settle(c, path);
    uint64_t held = rc ? 0 : hold_dir(c, path);
    if (rc == 0)
        rc = load_xattrs(c, path, &cur, &x);
    if (rc == 0)
        rc = value ? meta_xattr_set(&x, name, value, size, flags) : meta_xattr_remove(&x, name);
    if (rc == 0)
        rc = meta_xattr_encode(&x, &enc);
    if (rc == 0) {
        dirtimes_apply(c->dirtimes, path, &cur.st); /* pending directory times */
        clock_gettime(CLOCK_REALTIME, &cur.st.st_ctim);
        rc = rewrite_meta(c, path, &cur, sbuf_str(&enc));
    }
    dirtimes_release(c->dirtimes, path, held, rc == 0);
    if (rc == -E2BIG)
        rc = -ENOSPC; /* S3's 2 KiB of user metadata is full */
    sbuf_free(&enc);
    meta_xattrs_free(&x);
    s3_head_free(&cur.head);
    return rc;
}

int obj_setxattr(struct fs_ctx *c, const char *path, const char *name, const char *value,
                 size_t size, int flags)
{
    return change_xattr(c, path, name, value ? value : "", size, flags);
}

int obj_removexattr(struct fs_ctx *c, const char *path, const char *name)
{
    return change_xattr(c, path, name, NULL, 0, 0);
}

static bool later(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

int obj_write_dir_times(void *ctx, const char *path, const struct timespec *mtime,
                        const struct timespec *ctime)
{
    struct fs_ctx *c = ctx;
    struct current cur = {0};
    int rc = load_current(c, path, &cur);
    if (rc == -EPERM)
        rc = 1; /* the mount's top, a bucket: no object carries its times */
    else if (rc == 0 && !S_ISDIR(cur.st.st_mode))
        rc = -ENOENT; /* not a directory any more */
    else if (rc == 0 && !cur.head.etag[0])
        rc = 1; /* no marker: the times stay in memory */
    if (rc == 0) {
        if (mtime && later(mtime, &cur.st.st_mtim))
            cur.st.st_mtim = *mtime;
        if (later(ctime, &cur.st.st_ctim))
            cur.st.st_ctim = *ctime;
        rc = rewrite_meta(c, path, &cur, meta_find(cur.head.meta, cur.head.nmeta, "xattr"));
    }
    s3_head_free(&cur.head);
    return rc;
}

int obj_fsetattr(struct fs_node *n, const struct obj_attr_change *ch)
{
    struct stat st;
    node_fstat(n, &st);
    apply_change(&st, ch);
    node_setattr(n, &st);
    return 0;
}
