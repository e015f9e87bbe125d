#include "s3cfs/node.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3cfs/fsqueue.h"
#include "s3cfs/engine.h"
#include "s3cfs/htab.h"
#include "s3cfs/log.h"
#include "s3cfs/mime.h"
#include "s3cfs/nscache.h"
#include "s3cfs/pagekeep.h"
#include "s3cfs/readahead.h"
#include "s3cfs/stage.h"
#include "s3cfs/transfer.h"
#include "s3cfs/upstream.h"
#include "s3cfs/kernel_evict.h"

#define FIRST_BUCKETS 64 /* the table doubles as files are opened */

struct node_table {
    pthread_mutex_t lock; /* guards nodes and every node's refs, path and h */
    struct htab nodes;    /* struct fs_node by path; a detached node ("") is not in it */
};

static struct fs_node *node_of(const struct htab_node *h)
{
    return (struct fs_node *)(void *)((const char *)h - offsetof(struct fs_node, h));
}

/* h.user is the path's length: most other paths differ in it */
static bool node_eq(const struct htab_node *h, const void *path, size_t len)
{
    return h->user == len && memcmp(node_of(h)->path, path, len) == 0;
}

int node_table_new(struct node_table **out)
{
    struct node_table *t = calloc(1, sizeof *t);
    if (!t || htab_init(&t->nodes, FIRST_BUCKETS, node_eq) != 0) {
        free(t);
        return -ENOMEM;
    }
    pthread_mutex_init(&t->lock, NULL);
    *out = t;
    return 0;
}

static void node_free(struct fs_node *n)
{
    if (n->stream) { /* never flushed (unlinked while open): no part lingers */
        upstream_abort(n->stream);
        upstream_free(n->stream);
    }
    if (n->stage)
        stage_free(n->stage);
    free(n->path);
    pthread_mutex_destroy(&n->lock);
    pthread_cond_destroy(&n->cond);
    free(n);
}

static bool free_entry(struct htab_node *h, void *arg)
{
    (void)arg;
    node_free(node_of(h));
    return true;
}

void node_table_free(struct node_table *t)
{
    if (!t)
        return;
    htab_filter(&t->nodes, free_entry, NULL);
    htab_free(&t->nodes);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* table lock held */
static struct fs_node *find_locked(struct node_table *t, const char *path)
{
    size_t len = strlen(path);
    struct htab_node *h = htab_find(&t->nodes, hash_fnv1a32(path, len), path, len);
    return h ? node_of(h) : NULL;
}

/* table lock held: n, whose path is not "", goes into the table */
static void insert_locked(struct node_table *t, struct fs_node *n)
{
    size_t len = strlen(n->path);
    n->h.user = (uint32_t)len;
    htab_insert(&t->nodes, &n->h, hash_fnv1a32(n->path, len));
}

struct fs_node *node_find(struct node_table *t, const char *path)
{
    pthread_mutex_lock(&t->lock);
    struct fs_node *n = find_locked(t, path);
    if (n)
        n->refs++;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void node_unref(struct fs_ctx *c, struct fs_node *n)
{
    struct node_table *t = c->nodes;
    pthread_mutex_lock(&t->lock);
    bool last = --n->refs == 0;
    if (last && n->path[0])
        htab_remove(&t->nodes, &n->h);
    pthread_mutex_unlock(&t->lock);
    if (!last)
        return;
    /* the cache already has what a clean node knew, from the moment it
     * was learnt (the lookup, the upload, the new version): putting it
     * again now would restart its lifetime, and a file opened once per
     * attr_ttl would never see another client's version */
    if (!n->path[0])
        ; /* unlinked while open: nothing to remember */
    else if (n->exists && !n->dirty && n->etag[0])
        ;
    else if (n->exists && !n->dirty && !n->copy_pending)
        ; /* a queued copy: its pin in the cache shows it until it lands */
    else
        nscache_invalidate(c->cache, n->path);
    node_free(n);
}

int node_stat(struct fs_ctx *c, const char *path, struct stat *st, char etag[80])
{
    struct fs_node *n = node_find(c->nodes, path);
    if (!n)
        return -ENOENT;
    pthread_mutex_lock(&n->lock);
    *st = n->st;
    if (etag)
        memcpy(etag, n->etag, 80);
    pthread_mutex_unlock(&n->lock);
    node_unref(c, n); /* may be the last reference if a release raced us */
    return 0;
}

/* table lock held: give n, which is in the table, another path ("": none,
 * unlinked). The path is written under both the table and the node lock,
 * so either lock is enough to read it. */
static void set_path_locked(struct node_table *t, struct fs_node *n, char *p,
                            const struct fs_loc *loc)
{
    htab_remove(&t->nodes, &n->h);
    pthread_mutex_lock(&n->lock);
    char *old = n->path;
    n->path = p;
    if (loc)
        n->loc = *loc;
    n->own_meta = false; /* the moved object's type and fields are the move's */
    pthread_mutex_unlock(&n->lock);
    free(old);
    if (p[0])
        insert_locked(t, n);
}

void node_rename(struct node_table *t, const char *from, const char *to,
                 const struct fs_loc *to_loc)
{
    pthread_mutex_lock(&t->lock);
    struct fs_node *n = find_locked(t, from);
    char *p = n ? strdup(to) : NULL;
    if (n && p)
        set_path_locked(t, n, p, to_loc);
    pthread_mutex_unlock(&t->lock);
}

static struct fs_node *node_new(const char *path, const struct fs_loc *loc)
{
    struct fs_node *n = calloc(1, sizeof *n);
    if (!n || !(n->path = strdup(path))) {
        free(n);
        return NULL;
    }
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->cond, NULL);
    n->loc = *loc;
    n->refs = 1;
    return n;
}

/* Find or insert the node of path; a new one is initialised from st. */
static struct fs_node *node_get(struct fs_ctx *c, const char *path, const struct fs_loc *loc,
                                const struct stat *st, const char *etag)
{
    struct node_table *t = c->nodes;
    pthread_mutex_lock(&t->lock);
    struct fs_node *n = find_locked(t, path);
    if (n) {
        n->refs++;
        pthread_mutex_unlock(&t->lock);
        return n;
    }
    n = node_new(path, loc);
    if (n) {
        n->st = *st;
        n->exists = etag != NULL;
        snprintf(n->etag, sizeof n->etag, "%s", etag ? etag : "");
        insert_locked(t, n);
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* node lock held: wait until no transfer runs */
static void wait_idle(struct fs_node *n)
{
    while (n->busy)
        pthread_cond_wait(&n->cond, &n->lock);
}

static void set_idle(struct fs_node *n)
{
    n->busy = false;
    pthread_cond_broadcast(&n->cond);
}

/* node lock held, not busy: give the node an (empty) stage */
static int stage_empty(struct fs_ctx *c, struct fs_node *n)
{
    if (n->stage)
        return stage_truncate(n->stage, 0);
    return stage_new(c->opt.tmpdir, c->opt.stage_mem, &n->stage);
}

static void touch_times(struct fs_node *n)
{
    clock_gettime(CLOCK_REALTIME, &n->st.st_mtim);
    n->st.st_ctim = n->st.st_mtim;
    n->times_set = false; /* a write's time wins over one set before it */
}

static void set_size_st(struct stat *st, uint64_t size)
{
    st->st_size = (off_t)size;
    st->st_blocks = (blkcnt_t)((size + 511) / 512);
}

static void set_size(struct fs_node *n, uint64_t size)
{
    set_size_st(&n->st, size);
}

/* node lock held, not busy: copy_file_range covered only the start of its
 * source, so the destination is that prefix: fetch it into a stage and
 * let the upload write it (correct, not server-side; a rare case). */
static int copy_prefix_by_data(struct fs_ctx *c, struct fs_node *n)
{
    struct stage *s = NULL;
    int rc = stage_new(c->opt.tmpdir, c->opt.stage_mem, &s);
    if (rc)
        return rc;
    struct fs_copy_src src = n->copy_src;
    uint64_t len = n->copy_done;
    n->busy = true;
    pthread_mutex_unlock(&n->lock);
    rc = transfer_download(c, &src.loc, src.etag, s, len);
    pthread_mutex_lock(&n->lock);
    set_idle(n);
    if (rc) {
        stage_free(s);
        return rc;
    }
    n->stage = s;
    n->dirty = true;
    n->copy_pending = false;
    return 0;
}

static int read_kept(struct fs_ctx *c, const struct fs_loc *loc, struct s3_head *h);

/* node lock held, not busy: queue the copy copy_file_range recorded */
static int submit_copy(struct fs_ctx *c, struct fs_node *n)
{
    if (!n->copy_pending || n->unlinked)
        return 0;
    if (n->copy_done < n->copy_src.size)
        return copy_prefix_by_data(c, n);
    n->busy = true;
    struct fs_loc dloc = n->loc;
    struct stat st = n->st;
    struct fs_copy_src src = n->copy_src;
    char *path = strdup(n->path);
    bool replaces = n->exists; /* cp onto an existing file keeps its xattrs */
    pthread_mutex_unlock(&n->lock);
    struct s3_head kept;
    memset(&kept, 0, sizeof kept);
    int rc = path ? 0 : -ENOMEM;
    if (rc == 0 && replaces)
        rc = read_kept(c, &dloc, &kept);
    if (rc == 0)
        rc = fsq_copy(c, &src.loc, src.etag, src.size, &dloc, path, &st,
                      replaces ? meta_find(kept.meta, kept.nmeta, "xattr") : NULL);
    s3_head_free(&kept);
    free(path);
    pthread_mutex_lock(&n->lock);
    if (rc == 0) {
        n->copy_pending = false;
        n->exists = true;
    }
    set_idle(n);
    return rc;
}

/* node lock held, not busy: the content must be in S3 before we read or
 * change it (cp a b; cat b). */
static int settle_copy(struct fs_ctx *c, struct fs_node *n)
{
    int rc = submit_copy(c, n);
    if (rc || !fsq_pending(c, &n->loc, ENGINE_AS_DEST))
        return rc;
    struct fs_loc loc = n->loc;
    n->busy = true;
    pthread_mutex_unlock(&n->lock);
    rc = fsq_wait(c, &loc, ENGINE_AS_DEST);
    pthread_mutex_lock(&n->lock);
    set_idle(n);
    return rc;
}

/* node lock held, not busy: make the stage hold the first `upto` bytes of
 * the object (all of it for UINT64_MAX), downloading without the lock. */
static int load_stage(struct fs_ctx *c, struct fs_node *n, uint64_t upto)
{
    if (n->stage)
        return 0;
    int rc = settle_copy(c, n);
    if (rc || n->stage) /* a partial copy was just fetched into a stage */
        return rc;
    struct stage *s = NULL;
    rc = stage_new(c->opt.tmpdir, c->opt.stage_mem, &s);
    if (rc)
        return rc;
    uint64_t size = (uint64_t)n->st.st_size;
    uint64_t want = upto < size ? upto : size;
    if (n->exists && want > 0) {
        struct fs_loc loc = n->loc;
        char etag[80];
        memcpy(etag, n->etag, sizeof etag);
        n->busy = true;
        pthread_mutex_unlock(&n->lock);
        rc = transfer_download(c, &loc, etag, s, want);
        pthread_mutex_lock(&n->lock);
        set_idle(n);
    }
    if (rc == 0 && want < size)
        rc = stage_truncate(s, size);
    if (rc) {
        stage_free(s);
        return rc;
    }
    n->stage = s;
    n->stream_ok = false; /* a rewrite: staged whole, uploaded at close */
    return 0;
}

int node_open(struct fs_ctx *c, const char *path, const struct fs_loc *loc, const struct stat *st,
              const char *etag, int flags, struct fs_file **out)
{
    struct fs_file *f = calloc(1, sizeof *f);
    struct fs_node *n = f ? node_get(c, path, loc, st, etag) : NULL;
    if (!n) {
        free(f);
        return -ENOMEM;
    }
    pthread_mutex_init(&f->lock, NULL);
    f->node = n;
    f->fd_flags = flags;
    int rc = 0;
    pthread_mutex_lock(&n->lock);
    wait_idle(n);
    if (!etag && (flags & O_EXCL) && !n->exists)
        n->create_only = true;
    if (!etag || (flags & O_TRUNC)) {
        rc = n->lost ? -EIO : stage_empty(c, n);
        n->stream_ok = rc == 0 && !n->copy_pending;
        if (rc == 0 && n->stream)
            upstream_truncated(n->stream, 0);
        if (rc == 0 && (n->st.st_size != 0 || !n->exists)) {
            n->dirty = true; /* a new file is created by its first flush */
            set_size(n, 0);
            touch_times(n);
        }
    }
    pthread_mutex_unlock(&n->lock);
    if (rc) {
        node_release(c, f);
        return rc;
    }
    *out = f;
    return 0;
}

/* Busy, no lock: what the upload must keep of the object it replaces
 * (its user xattrs, other clients' metadata, its content type), read just
 * before it so that a change made since (setfattr, another client) is
 * kept too. Nothing there any more: nothing to keep. */
static int read_kept(struct fs_ctx *c, const struct fs_loc *loc, struct s3_head *h)
{
    struct s3_error err;
    memset(h, 0, sizeof *h);
    int rc = s3_head_object(c->s3, loc->bucket, loc->key, h, &err);
    if (rc == -ENOENT)
        memset(h, 0, sizeof *h);
    else if (rc)
        return fs_fail("head (metadata to keep)", loc->key, rc, &err);
    return 0;
}

/* Busy, no lock: what an upload of path keeps of the object it replaces
 * (read into *kept, which up then borrows) besides s3fs's own fields; a
 * new object gets its type from its name, as with s3fs. */
static int keep_for(struct fs_ctx *c, struct transfer_upload *up, const char *path, bool replaces,
                    struct s3_head *kept)
{
    memset(kept, 0, sizeof *kept);
    if (!replaces) {
        mime_type(c->mime, path, up->content_type, sizeof up->content_type);
        return 0;
    }
    int rc = read_kept(c, &up->loc, kept);
    if (rc)
        return rc;
    snprintf(up->content_type, sizeof up->content_type, "%s", kept->content_type);
    up->xattr = meta_find(kept->meta, kept->nmeta, "xattr");
    up->kept = kept;
    return 0;
}

/* Busy, no lock: upload the stage, keeping what the object it replaces
 * carries besides s3fs's own fields. */
static int upload_keeping(struct fs_ctx *c, struct transfer_upload *up, const char *path,
                          bool replaces)
{
    struct s3_head kept;
    int rc = keep_for(c, up, path, replaces, &kept);
    if (rc == 0)
        rc = transfer_upload(c, up);
    s3_head_free(&kept);
    return rc;
}

/* An O_EXCL create lost: another client's object took the key between the
 * open and this upload (the server answered 412 to If-None-Match: *). */
static int excl_lost(const struct fs_loc *loc)
{
    LOGW("%s: created with O_EXCL, but another client created the object first: not "
         "overwritten (EEXIST)",
         loc->key);
    return -EEXIST;
}

/* ---------- streamed uploads (upstream.h) ---------- */

/* Node lock held, not busy: drop the streamed upload (abort it). */
static void stream_drop(struct fs_node *n)
{
    struct upstream *u = n->stream;
    if (!u)
        return;
    n->busy = true;
    pthread_mutex_unlock(&n->lock);
    upstream_abort(u);
    upstream_free(u);
    pthread_mutex_lock(&n->lock);
    n->stream = NULL;
    set_idle(n);
}

/* Node lock held, not busy: whether n, grown past the threshold, should
 * start uploading while it is written. */
static bool stream_wanted(const struct fs_ctx *c, const struct fs_node *n)
{
    uint64_t size = n->stage ? stage_size(n->stage) : 0;
    return !c->opt.nostream && n->stream_ok && !n->stream && !n->unlinked && !n->lost &&
           !n->copy_pending && n->dirty && n->path[0] && stage_is_spilled(n->stage) &&
           size > c->opt.multipart_threshold && size > c->opt.part_size;
}

/* Busy, no lock: begin the upload of up's stage as the node had it. */
static int stream_begin(struct fs_ctx *c, struct transfer_upload *up, const char *path,
                        bool replaces, struct upstream **out)
{
    struct s3_head *kept = calloc(1, sizeof *kept);
    if (!kept)
        return -ENOMEM;
    /* queued copies from or onto this key come first, as for any upload */
    int rc = fsq_wait(c, &up->loc, 0);
    if (rc)
        LOGW("%s: an earlier queued operation failed (%s); writing anyway", path, strerror(-rc));
    rc = keep_for(c, up, path, replaces, kept);
    if (rc) {
        s3_head_free(kept);
        free(kept);
        return rc;
    }
    if (!replaces) {
        free(kept);
        kept = NULL;
    }
    return upstream_begin(c, up, kept, c->opt.part_size, out);
}

/* Node lock held, not busy: start the streamed upload. A failure leaves
 * the file staged whole, uploaded at close as without streaming. */
static void stream_start(struct fs_ctx *c, struct fs_node *n)
{
    struct transfer_upload up = {.loc = n->loc, .stage = n->stage, .st = n->st};
    bool replaces = n->exists && !n->own_meta;
    up.create_only = n->create_only && !replaces;
    char *path = strdup(n->path);
    if (!path)
        return;
    struct upstream *u = NULL;
    n->busy = true;
    pthread_mutex_unlock(&n->lock);
    int rc = stream_begin(c, &up, path, replaces, &u);
    pthread_mutex_lock(&n->lock);
    set_idle(n);
    if (rc)
        LOGW("%s: cannot upload while it is written (%s): uploaded at close", path, strerror(-rc));
    n->stream = u;
    n->stream_ok = rc == 0;
    n->times_set = false;
    free(path);
}

/* Node lock held, not busy, after a write: send what is ready, waiting
 * for a slot when the file's parts in flight are at their bound, and give
 * back what landed below the keep window. */
static void stream_step(struct fs_ctx *c, struct fs_node *n)
{
    if (n->unlinked) /* never uploaded again */
        stream_drop(n);
    if (stream_wanted(c, n))
        stream_start(c, n);
    while (n->stream && upstream_feed(n->stream, n->stage, stage_size(n->stage)) == 1) {
        struct upstream *u = n->stream;
        n->busy = true;
        pthread_mutex_unlock(&n->lock);
        upstream_wait_slot(u);
        pthread_mutex_lock(&n->lock);
        set_idle(n);
    }
    if (!n->stream)
        return;
    uint64_t upto = upstream_releasable(n->stream, stage_size(n->stage), c->opt.stream_keep);
    int rc = stage_release(n->stage, upto);
    if (rc)
        LOGW("%s: cannot give back what was uploaded (%s)", n->path, strerror(-rc));
}

/* Node lock held: the streamed upload ended (made: the object exists). */
static int stream_ended(struct fs_ctx *c, struct fs_node *n, int rc, bool made, bool replaces,
                        const char *etag)
{
    bool released = stage_released(n->stage) > 0;
    if (made) {
        n->own_meta = !replaces;
        n->dirty = false;
        n->exists = true;
        n->create_only = false;
        memcpy(n->etag, etag, sizeof n->etag);
        nscache_put(c->cache, n->path, &n->st, n->etag);
    } else if (released) {
        /* nothing to upload again from: S3 keeps what it had */
        LOGE("%s: the upload failed after the written data was uploaded in part (%s): "
             "not written; every access fails until it is closed",
             n->path, strerror(-rc));
        n->lost = true;
        n->dirty = false;
        nscache_invalidate(c->cache, n->path);
        return rc ? rc : -EIO;
    }
    if (made && released) { /* the content is the object now */
        stage_free(n->stage);
        n->stage = NULL;
    }
    n->stream_ok = made; /* after a failure the next flush uploads it whole */
    return rc;
}

/* Node lock held, not busy, dirty with a stream: complete the upload. */
static int stream_flush(struct fs_ctx *c, struct fs_node *n)
{
    struct upstream *u = n->stream;
    uint64_t size = stage_size(n->stage);
    struct stat st = n->st;
    struct fs_loc loc = n->loc;
    bool times = n->times_set, replaces = n->exists && !n->own_meta;
    bool excl = n->create_only && !replaces;
    char etag[80] = "";
    n->busy = true;
    pthread_mutex_unlock(&n->lock);
    int rc = fsq_wait(c, &loc, 0);
    if (rc)
        LOGW("%s: an earlier queued operation failed (%s); writing anyway", loc.key, strerror(-rc));
    rc = upstream_finish(u, n->stage, size, &st, times, etag);
    bool made = upstream_completed(u);
    upstream_free(u);
    if (rc == -ESTALE && excl && !made)
        rc = excl_lost(&loc);
    pthread_mutex_lock(&n->lock);
    n->stream = NULL;
    rc = stream_ended(c, n, rc, made, replaces, etag);
    if (rc == -EEXIST) {
        n->dirty = false;
        n->error = -EEXIST;
        nscache_invalidate(c->cache, n->path);
    }
    set_idle(n);
    return rc;
}

int node_flush(struct fs_ctx *c, struct fs_node *n)
{
    pthread_mutex_lock(&n->lock);
    wait_idle(n);
    int rc = n->lost ? -EIO : n->error;
    n->error = 0;
    if (rc == 0 && n->copy_pending)
        rc = submit_copy(c, n); /* returns once queued: cp stays asynchronous */
    if (n->stream && (n->unlinked || !n->dirty))
        stream_drop(n);
    /* a file cut back below the threshold goes up in one request */
    if (n->stream && stage_released(n->stage) == 0 &&
        stage_size(n->stage) <= c->opt.multipart_threshold)
        stream_drop(n);
    if (rc == 0 && n->stream && n->dirty) {
        rc = stream_flush(c, n);
        pthread_mutex_unlock(&n->lock);
        return rc;
    }
    if (rc || !n->dirty || n->unlinked) {
        pthread_mutex_unlock(&n->lock);
        return rc;
    }
    struct transfer_upload up = {.loc = n->loc, .stage = n->stage, .st = n->st};
    bool replaces = n->exists && !n->own_meta; /* what it carries must be kept */
    up.create_only = n->create_only && !replaces;
    char *path = strdup(n->path);
    n->busy = true;
    pthread_mutex_unlock(&n->lock);
    /* queued copies from or onto this key come first (cp a b; echo x > a) */
    rc = fsq_wait(c, &up.loc, 0);
    if (rc)
        LOGW("%s: an earlier queued operation failed (%s); writing anyway", path ? path : "?",
             strerror(-rc));
    rc = upload_keeping(c, &up, path ? path : "", replaces); /* writers wait for busy */
    free(path);
    if (rc == -ESTALE && up.create_only)
        rc = excl_lost(&up.loc);
    pthread_mutex_lock(&n->lock);
    if (rc == -EEXIST) {
        /* the create failed: its data goes, as with a failed open(O_EXCL);
         * the next flush (close after fsync) reports it again */
        n->dirty = false;
        n->error = -EEXIST;
        nscache_invalidate(c->cache, n->path); /* show the other client's object */
    }
    if (rc == 0) {
        n->own_meta = !replaces;
        n->dirty = false;
        n->exists = true;
        n->create_only = false;
        memcpy(n->etag, up.etag, sizeof n->etag);
        nscache_put(c->cache, n->path, &n->st, n->etag);
    }
    set_idle(n);
    pthread_mutex_unlock(&n->lock);
    return rc;
}

/* Node lock held: the node's content changed without a new ETag (or the
 * ETag is not known yet): the kernel's pages of it must not be kept at the
 * next open (pagekeep.h). */
static void content_changed(struct fs_ctx *c, const struct fs_node *n)
{
    if (n->path[0])
        pagekeep_forget(c->pages, n->path);
}

void node_pages_kept(struct fs_file *f, const char *etag)
{
    struct fs_node *n = f->node;
    pthread_mutex_lock(&n->lock);
    if (etag && etag[0] && strcmp(n->etag, etag) == 0)
        n->served = true;
    pthread_mutex_unlock(&n->lock);
}

int node_release(struct fs_ctx *c, struct fs_file *f)
{
    struct fs_node *n = f->node;
    int rc = node_flush(c, n);
    node_unref(c, n);
    pthread_mutex_destroy(&f->lock);
    ra_free(f->ra);
    free(f);
    return rc;
}

int node_write(struct fs_ctx *c, struct fs_file *f, const char *buf, size_t size, off_t off)
{
    struct fs_node *n = f->node;
    pthread_mutex_lock(&n->lock);
    wait_idle(n);
    int rc = n->lost ? -EIO : load_stage(c, n, UINT64_MAX);
    if (rc == 0 && (f->fd_flags & O_APPEND))
        off = (off_t)stage_size(n->stage);
    ssize_t w = rc ? rc : stage_pwrite(n->stage, buf, size, off);
    /* after the write: a part being sent meanwhile is sent again */
    if (w > 0 && n->stream)
        upstream_will_write(n->stream, (uint64_t)off, (uint64_t)w);
    if (w >= 0) {
        n->dirty = true;
        set_size(n, stage_size(n->stage));
        touch_times(n);
        content_changed(c, n);
        stream_step(c, n);
    }
    pthread_mutex_unlock(&n->lock);
    return (int)w;
}

/* Busy, no lock: the object's current version, as stat and ETag. */
static int head_version(struct fs_ctx *c, const struct fs_loc *loc, struct stat *st, char etag[80])
{
    struct s3_head h;
    struct s3_error err;
    int rc = s3_head_object(c->s3, loc->bucket, loc->key, &h, &err);
    if (rc == -ENOENT)
        return -ESTALE; /* deleted by another client: as NFS says it */
    if (rc)
        return fs_fail("head (changed object)", loc->key, rc, &err);
    meta_to_stat(h.meta, h.nmeta, h.size, &h.mtime, META_FILE, &c->defaults, st);
    snprintf(etag, 80, "%s", h.etag);
    s3_head_free(&h);
    return 0;
}

/* Node lock held, not busy: take the object's current version (another
 * client replaced it since the node learnt its ETag), tell the namespace
 * and make the kernel ask for the new size. */
static int take_new_version(struct fs_ctx *c, struct fs_node *n)
{
    struct fs_loc loc = n->loc;
    char *path = strdup(n->path);
    struct stat st;
    char etag[80];
    n->busy = true;
    pthread_mutex_unlock(&n->lock);
    int rc = path ? head_version(c, &loc, &st, etag) : -ENOMEM;
    pthread_mutex_lock(&n->lock);
    set_idle(n);
    /* a shorter version: the read's short answer shrinks the kernel's
     * size by itself (and would not, had the attributes been invalidated
     * meanwhile); a longer one: the kernel must ask for the size */
    bool grew = rc == 0 && st.st_size > n->st.st_size;
    if (rc == 0) {
        st.st_nlink = n->st.st_nlink;
        n->st = st;
        memcpy(n->etag, etag, sizeof n->etag);
        n->own_meta = false;
        content_changed(c, n);
        if (path[0] && !node_hidden_name(path))
            nscache_put(c->cache, path, &st, etag);
        LOGI("%s was replaced by another client: reading the new version", path);
    }
    pthread_mutex_unlock(&n->lock);
    if (grew && path[0]) /* its attributes, not its pages: no lock taken */
        kevict_forget_attrs(c->evict, path);
    free(path);
    pthread_mutex_lock(&n->lock);
    return rc;
}

/* node lock held: bytes of the old version were served already (or the
 * kernel kept pages of it from an earlier open); reading on would mix two
 * versions. The next open asks S3 again and drops the kernel's pages. */
static int changed_while_read(struct fs_ctx *c, const struct fs_node *n)
{
    LOGW("%s: the object changed while it was being read", n->path);
    if (n->path[0] && !node_hidden_name(n->path))
        nscache_invalidate(c->cache, n->path);
    content_changed(c, n);
    return -EIO;
}

/* A read of the object found another version than src (ETag condition):
 * before any byte of this node's version was served, follow the new one,
 * so a reader gets one version whole; after that it would get a mix:
 * -EIO. src becomes the version to read. */
static int follow_version(struct fs_ctx *c, struct fs_node *n, struct transfer_source *src)
{
    pthread_mutex_lock(&n->lock);
    wait_idle(n);
    int rc = 0;
    if (strcmp(n->etag, src->etag) == 0) /* nobody followed it yet */
        rc = n->served ? changed_while_read(c, n) : take_new_version(c, n);
    src->size = (uint64_t)n->st.st_size;
    memcpy(src->etag, n->etag, sizeof src->etag);
    pthread_mutex_unlock(&n->lock);
    return rc;
}

static void mark_served(struct fs_node *n, const struct transfer_source *src)
{
    pthread_mutex_lock(&n->lock);
    if (strcmp(n->etag, src->etag) == 0)
        n->served = true;
    pthread_mutex_unlock(&n->lock);
}

/* A read of the object through the handle's read-ahead, which the
 * handle's first read makes (whichever path reaches it first). */
static int read_object(struct fs_ctx *c, struct fs_file *f, const struct transfer_source *src,
                       char *buf, size_t size, off_t off)
{
    int rc = 0;
    pthread_mutex_lock(&f->lock);
    if (!f->ra) {
        struct ra_config cfg;
        transfer_ra_config(c, &cfg);
        rc = ra_new(&cfg, &f->ra);
    }
    struct readahead *ra = f->ra;
    pthread_mutex_unlock(&f->lock);
    return rc ? rc : transfer_read(ra, src, buf, size, off);
}

int node_read(struct fs_ctx *c, struct fs_file *f, char *buf, size_t size, off_t off)
{
    struct fs_node *n = f->node;
    pthread_mutex_lock(&n->lock);
    wait_idle(n);
    int rc = n->lost ? -EIO : settle_copy(c, n); /* cp a b; cat b */
    if (rc == 0 && n->stage) {
        ssize_t r = stage_pread(n->stage, buf, size, off);
        pthread_mutex_unlock(&n->lock);
        return (int)r;
    }
    struct transfer_source src = {.loc = n->loc, .size = (uint64_t)n->st.st_size};
    memcpy(src.etag, n->etag, sizeof src.etag);
    pthread_mutex_unlock(&n->lock);
    if (rc == 0 && fsq_pending(c, &src.loc, ENGINE_AS_DEST))
        rc = fsq_wait(c, &src.loc, ENGINE_AS_DEST);
    if (rc == 0)
        rc = read_object(c, f, &src, buf, size, off);
    if (rc == -ESTALE && (rc = follow_version(c, n, &src)) == 0)
        rc = read_object(c, f, &src, buf, size, off);
    if (rc == -ESTALE)
        rc = -EIO; /* changed again: give up rather than mix versions */
    if (rc > 0)
        mark_served(n, &src);
    return rc;
}

int node_truncate(struct fs_ctx *c, struct fs_node *n, uint64_t size)
{
    pthread_mutex_lock(&n->lock);
    wait_idle(n);
    int rc = n->lost ? -EIO : load_stage(c, n, size);
    if (rc == 0)
        rc = stage_truncate(n->stage, size);
    if (rc == 0 && n->stream)
        upstream_truncated(n->stream, size);
    if (rc == 0) {
        n->dirty = true;
        set_size(n, size);
        touch_times(n);
        content_changed(c, n);
    }
    pthread_mutex_unlock(&n->lock);
    return rc;
}

int node_setattr(struct fs_node *n, const struct stat *st)
{
    pthread_mutex_lock(&n->lock);
    wait_idle(n);
    n->st.st_mode = st->st_mode;
    n->st.st_uid = st->st_uid;
    n->st.st_gid = st->st_gid;
    n->times_set |= memcmp(&n->st.st_mtim, &st->st_mtim, sizeof st->st_mtim) != 0 ||
                    memcmp(&n->st.st_atim, &st->st_atim, sizeof st->st_atim) != 0;
    n->st.st_atim = st->st_atim;
    n->st.st_mtim = st->st_mtim;
    n->st.st_ctim = st->st_ctim;
    int folded = n->dirty || n->copy_pending;
    pthread_mutex_unlock(&n->lock);
    return folded;
}

/* path is strictly below dir */
static bool is_below(const char *dir, const char *path)
{
    size_t dl = strcmp(dir, "/") == 0 ? 0 : strlen(dir);
    return strncmp(path, dir, dl) == 0 && path[dl] == '/' && path[dl + 1];
}

/* A walk over the table that collects, into v, an element of elem bytes
 * for each node it keeps (n of cap, doubling from first). */
struct walk {
    const char *dir;
    void *v;
    size_t n, cap, elem, first;
};

/* Room for the next element of w->v: the element, or NULL (w->v is then
 * unchanged). */
static void *walk_next(struct walk *w)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : w->first;
        void *v = realloc(w->v, cap * w->elem);
        if (!v)
            return NULL;
        w->v = v;
        w->cap = cap;
    }
    return (char *)w->v + w->n++ * w->elem;
}

/* keep(node, w) for each node under the table lock: 0, or -ENOMEM when
 * keep ran out of memory (w->v holds what it collected so far). */
static int walk_table(struct node_table *t, bool (*keep)(struct htab_node *, void *),
                      struct walk *w)
{
    pthread_mutex_lock(&t->lock);
    bool all = htab_each(&t->nodes, keep, w);
    pthread_mutex_unlock(&t->lock);
    return all ? 0 : -ENOMEM;
}

/* table lock held: a reference to a node below w->dir */
static bool ref_below(struct htab_node *h, void *arg)
{
    struct walk *w = arg;
    struct fs_node *nd = node_of(h);
    if (!is_below(w->dir, nd->path))
        return true;
    struct fs_node **ref = walk_next(w);
    if (ref) {
        nd->refs++;
        *ref = nd;
    }
    return ref != NULL;
}

/* References to every open node below dir (*out: free it, node_unref each;
 * on -ENOMEM it holds those taken so far). */
static int nodes_below(struct node_table *t, const char *dir, struct fs_node ***out, size_t *n)
{
    struct walk w = {.dir = dir, .elem = sizeof **out, .first = 16};
    int rc = walk_table(t, ref_below, &w);
    *out = w.v;
    *n = w.n;
    return rc;
}

static void unref_all(struct fs_ctx *c, struct fs_node **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        node_unref(c, v[i]);
    free(v);
}

int node_flush_tree(struct fs_ctx *c, const char *dir)
{
    struct fs_node **v;
    size_t n;
    int rc = nodes_below(c->nodes, dir, &v, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = node_flush(c, v[i]);
    unref_all(c, v, n);
    return rc;
}

/* table lock held: n (below from) moves below to */
static void move_below(struct fs_ctx *c, struct fs_node *n, const char *from, const char *to)
{
    size_t fl = strlen(from);
    char *p = malloc(strlen(to) + strlen(n->path + fl) + 1);
    struct fs_loc loc;
    if (!p)
        return; /* the node keeps its old name: logged by the caller's check */
    strcpy(p, to);
    strcat(p, n->path + fl);
    if (path_resolve(&c->map, p, &loc) != 0) {
        free(p);
        return;
    }
    pthread_mutex_lock(&n->lock);
    if (!n->dirty) /* a multipart copy has another ETag: read what is there */
        n->etag[0] = '\0';
    pthread_mutex_unlock(&n->lock);
    set_path_locked(c->nodes, n, p, &loc);
}

void node_rename_tree(struct fs_ctx *c, const char *from, const char *to)
{
    struct fs_node **v;
    size_t n;
    if (nodes_below(c->nodes, from, &v, &n) != 0)
        LOGE("rename %s: out of memory: open files below it keep their old names", from);
    pthread_mutex_lock(&c->nodes->lock);
    for (size_t i = 0; i < n; i++)
        if (is_below(from, v[i]->path))
            move_below(c, v[i], from, to);
    pthread_mutex_unlock(&c->nodes->lock);
    unref_all(c, v, n);
}

static bool is_child(const char *dir, const char *path)
{
    size_t dl = strcmp(dir, "/") == 0 ? 0 : strlen(dir);
    return strncmp(path, dir, dl) == 0 && path[dl] == '/' && !strchr(path + dl + 1, '/');
}

/* table lock held: a child of w->dir not in S3 yet */
static bool add_pending_child(struct htab_node *h, void *arg)
{
    struct walk *w = arg;
    struct fs_node *nd = node_of(h);
    if (!is_child(w->dir, nd->path))
        return true;
    pthread_mutex_lock(&nd->lock);
    bool pending = !nd->exists && !nd->unlinked;
    struct stat st = nd->st;
    pthread_mutex_unlock(&nd->lock);
    struct node_child *child = pending ? walk_next(w) : NULL;
    if (child) {
        snprintf(child->name, sizeof child->name, "%s", path_basename(nd->path));
        child->st = st;
    }
    return !pending || child;
}

int node_children(struct node_table *t, const char *dir, struct node_child **out, size_t *n)
{
    struct walk w = {.dir = dir, .elem = sizeof **out, .first = 8};
    int rc = walk_table(t, add_pending_child, &w);
    *out = w.v;
    *n = w.n;
    return rc;
}

void node_children_free(struct node_child *v, size_t n)
{
    (void)n;
    free(v);
}

/* node lock held, not busy: make the stage hold the node's whole content,
 * so that its handles no longer need the object (which is about to be
 * deleted or overwritten). A copy not yet queued is fetched from its
 * source. */
static int own_content(struct fs_ctx *c, struct fs_node *n)
{
    int rc = 0;
    if (n->copy_pending && !n->stage)
        rc = copy_prefix_by_data(c, n);
    return rc ? rc : load_stage(c, n, UINT64_MAX);
}

int node_detach(struct fs_ctx *c, const char *path, const char *hidden)
{
    struct node_table *t = c->nodes;
    struct fs_node *n = node_find(t, path);
    if (!n)
        return 0;
    char *none = hidden ? strdup(hidden) : calloc(1, 1);
    pthread_mutex_lock(&n->lock);
    wait_idle(n);
    int rc = none ? own_content(c, n) : -ENOMEM;
    if (rc == 0) {
        n->unlinked = true;
        n->exists = false;
        n->copy_pending = false;
        n->st.st_nlink = 0;
    }
    pthread_mutex_unlock(&n->lock);
    if (rc == 0) {
        /* its path is free for a new file: the node stays reachable only
         * through its open handles (and libfuse's hidden name) */
        pthread_mutex_lock(&t->lock);
        if (n->path[0] && strcmp(n->path, path) == 0)
            set_path_locked(t, n, none, NULL);
        else
            free(none);
        pthread_mutex_unlock(&t->lock);
    } else {
        free(none);
        LOGW("%s is open and its content could not be kept (%s): not removed", path, strerror(-rc));
    }
    node_unref(c, n);
    return rc;
}

bool node_hidden_name(const char *path)
{
    return path &&
           strncmp(path_basename(path), NODE_HIDDEN_PREFIX, strlen(NODE_HIDDEN_PREFIX)) == 0;
}

void node_fstat(struct fs_node *n, struct stat *st)
{
    pthread_mutex_lock(&n->lock);
    *st = n->st;
    pthread_mutex_unlock(&n->lock);
}

/* src lock: snapshot a source whose content is the object in S3 (not
 * written locally, not itself a copy still unsubmitted), or -EAGAIN */
static int copy_source(struct fs_node *n, struct fs_copy_src *src)
{
    pthread_mutex_lock(&n->lock);
    wait_idle(n);
    int rc = n->exists && !n->dirty && !n->copy_pending ? 0 : -EAGAIN;
    if (rc == 0) {
        src->loc = n->loc;
        src->size = (uint64_t)n->st.st_size;
        memcpy(src->etag, n->etag, sizeof src->etag);
    }
    pthread_mutex_unlock(&n->lock);
    return rc;
}

/* dst lock held, not busy: a destination just created or truncated */
static bool fresh(const struct fs_node *n)
{
    return n->stage && stage_size(n->stage) == 0 && n->st.st_size == 0 && !n->unlinked;
}

static bool same_source(const struct fs_copy_src *a, const struct fs_copy_src *b)
{
    return strcmp(a->loc.bucket, b->loc.bucket) == 0 && strcmp(a->loc.key, b->loc.key) == 0 &&
           strcmp(a->etag, b->etag) == 0 && a->size == b->size;
}

/* dst lock held: may the range [off, off+len) of s extend dst's copy? The
 * first range starts a copy on a fresh destination; each next one must
 * continue exactly where the copy so far ends (cp of a file larger than
 * the kernel's per-call cap arrives as consecutive ranges). */
static bool copy_extends(const struct fs_node *n, const struct fs_copy_src *s, uint64_t off)
{
    if (off == 0)
        return fresh(n) && !n->copy_pending;
    return n->copy_pending && n->copy_done == off && same_source(&n->copy_src, s);
}

ssize_t node_copy(struct fs_ctx *c, struct fs_file *src, struct fs_file *dst, uint64_t off_in,
                  uint64_t off_out, size_t len)
{
    struct fs_copy_src s;
    if (off_in != off_out || src->node == dst->node || copy_source(src->node, &s))
        return -EAGAIN;
    if (off_in >= s.size)
        return -EAGAIN; /* nothing server-side to do at or past the end */
    uint64_t want = len < s.size - off_in ? len : s.size - off_in;
    struct fs_node *n = dst->node;
    pthread_mutex_lock(&n->lock);
    wait_idle(n);
    if (!copy_extends(n, &s, off_in)) {
        pthread_mutex_unlock(&n->lock);
        return -EAGAIN;
    }
    if (off_in == 0) {
        /* queued at close (submit_copy); until then the open node shows
         * the destination with the size copied so far */
        stage_free(n->stage);
        n->stage = NULL;
        n->dirty = false;
        n->etag[0] = '\0';   /* known when it lands */
        n->own_meta = false; /* the copy carries the source's type */
        n->copy_pending = true;
        n->copy_src = s;
    }
    n->copy_done = off_in + want;
    set_size(n, n->copy_done);
    content_changed(c, n);
    pthread_mutex_unlock(&n->lock);
    return (ssize_t)want;
}
