#include "s3cfs/transfer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3cfs/log.h"
#include "s3cfs/pool.h"
#include "s3cfs/readahead.h"
#include "s3cfs/stage.h"

#define MAX_PARTS 10000
#define CHUNK     (8u << 20)
#define PAR_MIN   (2u << 20) /* windows at least this large are fetched in parallel */

int fs_fail(const char *op, const char *path, int rc, const struct s3_error *err)
{
    char msg[600];
    LOGW("%s %s: %s", op, path, s3_error_format(err, msg, sizeof msg));
    return rc;
}

/* ---------- uploads ---------- */

/* ---------- what a write carries over from the object it replaces ---------- */

/* s3fs's own metadata fields, which a rewrite writes from the stat */
static bool s3fs_field(const char *name)
{
    static const char *const own[] = {"mode",  "uid",   "gid",  "mtime",
                                      "ctime", "atime", "rdev", "xattr"};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        if (strcmp(name, own[i]) == 0)
            return true;
    return false;
}

/* Content headers describe the bytes: a COPY directive copies them, a
 * REPLACE drops them. The storage class and the encryption are reset by
 * every write that does not name them. The tag count is not sent: tags go
 * back with PutObjectTagging (tags_restore). */
static bool content_header(const char *name)
{
    return strncmp(name, "x-amz-", 6) != 0 || strcmp(name, "x-amz-website-redirect-location") == 0;
}

/* The write options of a write replacing an object, and what they own. */
struct transfer_carry {
    struct s3_write_opts wo;
    struct s3_meta *meta;
    struct s3_meta *hdrs;
};

static void transfer_carry_free(struct transfer_carry *cw)
{
    free(cw->meta);
    free(cw->hdrs);
    memset(cw, 0, sizeof *cw);
}

/* cw->wo for a write replacing `from` (NULL: nothing to keep): own's
 * metadata and content type (own NULL: keep all of from's metadata), then
 * from's other metadata, its content type if own has none, and its object
 * headers (the content headers only if content). cw->wo borrows from own
 * and from; free cw with transfer_carry_free. */
static int transfer_carry_build(struct transfer_carry *cw, const struct s3_write_opts *own,
                                const struct s3_head *from, bool content)
{
    memset(cw, 0, sizeof *cw);
    size_t nown = own ? own->nmeta : 0, nfrom = from ? from->nmeta : 0;
    size_t nh = from ? from->nheaders : 0;
    cw->meta = calloc(nown + nfrom + 1, sizeof *cw->meta);
    cw->hdrs = calloc(nh + 1, sizeof *cw->hdrs);
    if (!cw->meta || !cw->hdrs) {
        transfer_carry_free(cw);
        return -ENOMEM;
    }
    size_t n = nown;
    if (nown)
        memcpy(cw->meta, own->meta, nown * sizeof *cw->meta);
    /* with metadata of its own the write replaces s3fs's fields only */
    for (size_t i = 0; i < nfrom; i++)
        if (!own || !s3fs_field(from->meta[i].name))
            cw->meta[n++] = (struct s3_meta){from->meta[i].name, from->meta[i].value};
    size_t k = 0;
    for (size_t i = 0; i < nh; i++) {
        const char *name = from->headers[i].name;
        if (strcmp(name, "x-amz-tagging-count") != 0 && (content || !content_header(name)))
            cw->hdrs[k++] = (struct s3_meta){name, from->headers[i].value};
    }
    const char *type = own ? own->content_type : NULL;
    if (!type && from && from->content_type[0])
        type = from->content_type;
    cw->wo = (struct s3_write_opts){type, cw->meta, n, cw->hdrs, k};
    return 0;
}

/* The tags of the object h describes (at loc), read before a write that
 * loses them: radosgw drops them on every REPLACE copy whatever the
 * tagging directive says, and a PUT or a multipart upload starts without.
 * xml stays empty for an object without tags (no request). */
static int tags_read(struct fs_ctx *c, const struct fs_loc *loc, const struct s3_head *h,
                     struct sbuf *xml)
{
    struct s3_error err;
    if (!h || h->tag_count == 0)
        return 0;
    int rc = s3_get_object_tagging(c->s3, loc->bucket, loc->key, xml, &err);
    return rc ? fs_fail("get tagging (to keep)", loc->key, rc, &err) : 0;
}

static int tags_restore(struct fs_ctx *c, const struct fs_loc *loc, const struct sbuf *xml)
{
    struct s3_error err;
    if (xml->len == 0)
        return 0;
    int rc = s3_put_object_tagging(c->s3, loc->bucket, loc->key, xml, &err);
    return rc ? fs_fail("put tagging (kept)", loc->key, rc, &err) : 0;
}

static bool time_field(const char *name)
{
    return strcmp(name, "mtime") == 0 || strcmp(name, "ctime") == 0 || strcmp(name, "atime") == 0;
}

/* The metadata of an upload: s3fs's fields from st and xattr, then
 * everything else of the object it replaces. */
static int write_opts(const struct transfer_upload *up, struct meta_set *ms,
                      struct transfer_carry *cw)
{
    meta_from_stat(&up->st, ms);
    if (up->xattr)
        meta_set_xattr(ms, up->xattr);
    if (up->no_times) { /* the object's Last-Modified stands for them */
        size_t k = 0;
        for (size_t i = 0; i < ms->nmeta; i++)
            if (!time_field(ms->meta[i].name))
                ms->meta[k++] = ms->meta[i];
        ms->nmeta = k;
    }
    struct s3_write_opts own = {.content_type = up->content_type[0] ? up->content_type : NULL,
                                .meta = ms->meta,
                                .nmeta = ms->nmeta};
    return transfer_carry_build(cw, &own, up->kept, true);
}

/* One multipart transfer: parts uploaded from a stage, or copied from an
 * object (UploadPartCopy); the same driver runs both. */
struct mpu {
    struct fs_ctx *c;
    const struct fs_loc *dst;
    const char *id;
    uint64_t size, ps; /* total bytes, part size */
    struct s3_part *parts;
    struct stage *stage;               /* upload from here, or */
    const struct transfer_source *src; /* copy from here */
    bool create_only;                  /* complete with If-None-Match: * */
    bool self;                         /* src is dst: check src before completing */
    struct pool *pool;                 /* runs the parts */
};

static int source_unchanged(struct fs_ctx *c, const struct transfer_source *src);

struct mpu_part {
    struct mpu *m;
    size_t i;
};

static int mpu_part(void *arg)
{
    struct mpu_part *p = arg;
    struct mpu *m = p->m;
    uint64_t off = p->i * m->ps, len = m->size - off < m->ps ? m->size - off : m->ps;
    struct s3_part *part = &m->parts[p->i];
    struct s3_error err;
    int rc;
    if (m->stage) {
        struct s3_body body;
        stage_body(m->stage, off, len, &body);
        rc = s3_mpu_upload_part(m->c->s3, m->dst->bucket, m->dst->key, m->id, part->number, &body,
                                part->etag, &err);
    } else {
        rc = s3_mpu_copy_part(m->c->s3, m->dst->bucket, m->dst->key, m->id, part->number,
                              m->src->loc.bucket, m->src->loc.key, off, off + len - 1, m->src->etag,
                              part->etag, &err);
    }
    return rc ? fs_fail(m->stage ? "upload part" : "copy part", m->dst->key, rc, &err) : 0;
}

/* Submit every part to the pool, wait, complete; abort on any failure so
 * no parts linger in the bucket. */
static int mpu_parts(struct mpu *m, size_t n, char etag_out[80])
{
    struct mpu_part *tasks = calloc(n, sizeof *tasks);
    struct pool_group g;
    pool_group_init(&g);
    int rc = tasks ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        m->parts[i].number = (int)i + 1;
        tasks[i] = (struct mpu_part){m, i};
        rc = pool_submit_group(m->pool, &g, mpu_part, &tasks[i]);
    }
    int wrc = pool_group_wait(&g);
    pool_group_destroy(&g);
    free(tasks);
    rc = rc ? rc : wrc;
    struct s3_error err;
    /* a rewrite in place cannot check afterwards: it changed the source */
    if (rc == 0 && m->self && (rc = source_unchanged(m->c, m->src)) == -ESTALE)
        LOGW("rewrite of %s: the object changed during the copy; left as it was", m->dst->key);
    if (rc == 0 && (rc = s3_mpu_complete(m->c->s3, m->dst->bucket, m->dst->key, m->id, m->parts, n,
                                         m->create_only, etag_out, &err)))
        fs_fail("complete multipart", m->dst->key, rc, &err);
    if (rc && s3_mpu_abort(m->c->s3, m->dst->bucket, m->dst->key, m->id, &err))
        fs_fail("abort multipart", m->dst->key, rc, &err);
    return rc;
}

static int mpu_run(struct mpu *m, const struct s3_write_opts *wo, uint64_t part_size,
                   char etag_out[80])
{
    struct s3_error err;
    char *id = NULL;
    int rc = s3_mpu_create(m->c->s3, m->dst->bucket, m->dst->key, wo, &id, &err);
    if (rc)
        return fs_fail("create multipart", m->dst->key, rc, &err);
    m->id = id;
    m->ps = part_size;
    while ((m->size + m->ps - 1) / m->ps > MAX_PARTS)
        m->ps *= 2;
    size_t n = (size_t)((m->size + m->ps - 1) / m->ps);
    m->parts = calloc(n, sizeof *m->parts);
    rc = m->parts ? mpu_parts(m, n, etag_out) : -ENOMEM;
    if (rc == -ENOMEM && !m->parts)
        s3_mpu_abort(m->c->s3, m->dst->bucket, m->dst->key, id, &err);
    free(m->parts);
    free(id);
    return rc;
}

static int upload_with(struct fs_ctx *c, struct transfer_upload *up, const struct s3_write_opts *wo)
{
    uint64_t size = up->stage ? stage_size(up->stage) : 0;
    up->etag[0] = '\0';
    if (size > c->opt.multipart_threshold) {
        struct mpu m = {.c = c, .dst = &up->loc, .size = size, .stage = up->stage, .pool = c->pool};
        m.create_only = up->create_only && cond_on(&c->conds, COND_COMPLETE_CREATE);
        return mpu_run(&m, wo, c->opt.part_size, up->etag);
    }
    struct s3_body body = {.fd = -1};
    if (up->stage)
        stage_body(up->stage, 0, size, &body);
    struct s3_error err;
    bool create_only = up->create_only && cond_on(&c->conds, COND_PUT_CREATE);
    int rc = s3_put_object_cond(c->s3, up->loc.bucket, up->loc.key, &body, wo, create_only,
                                up->etag, &err);
    return rc ? fs_fail("put", up->loc.key, rc, &err) : 0;
}

struct transfer_write {
    struct meta_set ms;
    struct transfer_carry cw;
    struct sbuf tags;
};

int transfer_write_begin(struct fs_ctx *c, const struct transfer_upload *up,
                         struct transfer_write **out)
{
    struct transfer_write *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    sbuf_init(&w->tags);
    int rc = tags_read(c, &up->loc, up->kept, &w->tags);
    if (rc == 0)
        rc = write_opts(up, &w->ms, &w->cw);
    if (rc) {
        sbuf_free(&w->tags);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

const struct s3_write_opts *transfer_write_opts(const struct transfer_write *w)
{
    return &w->cw.wo;
}

int transfer_write_end(struct fs_ctx *c, const struct fs_loc *loc, struct transfer_write *w, int rc)
{
    if (!w)
        return rc;
    if (rc == 0)
        rc = tags_restore(c, loc, &w->tags);
    transfer_carry_free(&w->cw);
    sbuf_free(&w->tags);
    free(w);
    return rc;
}

int transfer_upload(struct fs_ctx *c, struct transfer_upload *up)
{
    struct transfer_write *w = NULL;
    int rc = transfer_write_begin(c, up, &w);
    if (rc == 0)
        rc = upload_with(c, up, transfer_write_opts(w));
    return transfer_write_end(c, &up->loc, w, rc);
}

/* ---------- server-side copies ---------- */

/* radosgw ignores the ETag condition on UploadPartCopy: check afterwards. */
static int source_unchanged(struct fs_ctx *c, const struct transfer_source *src)
{
    struct s3_head h;
    struct s3_error err;
    int rc = s3_head_object(c->s3, src->loc.bucket, src->loc.key, &h, &err);
    if (rc)
        return fs_fail("copy (recheck source)", src->loc.key, rc, &err);
    rc = strcmp(h.etag, src->etag) == 0 ? 0 : -ESTALE;
    s3_head_free(&h);
    return rc;
}

/* The source as it is now, pinned to its ETag for the parts and the final
 * check; h gets what it carries besides its bytes. A source queued as the
 * destination of an earlier copy or move is known only by name (its ETag
 * is learnt when that copy lands, and a multipart copy's differs from its
 * own source's): the HEAD names it. */
static int pin_source(struct fs_ctx *c, const struct transfer_source *src, struct s3_head *h,
                      struct transfer_source *pinned, struct s3_error *err)
{
    int rc = s3_head_object(c->s3, src->loc.bucket, src->loc.key, h, err);
    if (rc)
        return fs_fail("copy (source)", src->loc.key, rc, err);
    if (src->etag[0] && strcmp(h->etag, src->etag) != 0) {
        LOGW("copy of %s: the source changed before the copy", src->loc.key);
        s3_error_set(err, "PreconditionFailed", "the source changed before the copy");
        return -ESTALE;
    }
    *pinned = *src;
    snprintf(pinned->etag, sizeof pinned->etag, "%s", h->etag);
    pinned->size = h->size;
    return 0;
}

static int copy_multipart(struct fs_ctx *c, const struct transfer_source *src,
                          const struct fs_loc *dst, const struct s3_write_opts *wo, bool self,
                          char etag_out[80])
{
    /* part copies are background work: on the engine's pool, whose limit
     * S3's throttling lowers, and never queued ahead of the foreground
     * pool's reads and listings (one copy has up to 10000 parts) */
    struct mpu m = {.c = c,
                    .dst = dst,
                    .size = src->size,
                    .src = src,
                    .self = self,
                    .pool = c->engine_pool ? c->engine_pool : c->pool};
    m.create_only = src->dst_create_only && cond_on(&c->conds, COND_COMPLETE_CREATE);
    int rc = mpu_run(&m, wo, c->opt.copy_part_size, etag_out);
    if (rc == 0 && !self && (rc = source_unchanged(c, src)) == -ESTALE) {
        struct s3_error err;
        LOGW("copy of %s: the source changed during the copy; copy removed", src->loc.key);
        s3_delete_object(c->s3, dst->bucket, dst->key, NULL, &err);
    }
    return rc;
}

/* One CopyObject of the pinned source onto dst. With replace, cw's
 * metadata replaces the source's; without, the source's is copied and
 * cw's headers, which S3 would reset, are sent again. */
static int copy_single(struct fs_ctx *c, const struct transfer_source *src,
                       const struct fs_loc *dst, const struct s3_write_opts *cw, bool replace,
                       bool self, char etag_out[80], struct s3_error *err)
{
    struct s3_copy_opts co = {.if_match = src->etag, .replace = replace ? cw : NULL};
    co.if_none_match = src->dst_create_only && cond_on(&c->conds, COND_COPY_CREATE);
    if (!replace) {
        co.headers = cw->headers;
        co.nheaders = cw->nheaders;
    }
    int rc = s3_copy_object(c->s3, src->loc.bucket, src->loc.key, dst->bucket, dst->key, &co,
                            etag_out, err);
    if (rc)
        fs_fail(self ? "rewrite metadata" : "copy", dst->key, rc, err);
    return rc;
}

/* Copy the pinned source h describes. With wo (REPLACE) the copy has wo's
 * metadata and keeps the rest of the source's (other clients' fields,
 * content headers); without, it keeps all of it. Either way the storage
 * class, the encryption and the tags are sent again, which S3 would reset.
 * A multipart copy copies nothing by itself: everything is sent. */
static int copy_pinned(struct fs_ctx *c, const struct transfer_source *src, const struct s3_head *h,
                       const struct fs_loc *dst, const struct s3_write_opts *wo, bool self,
                       char etag_out[80], struct s3_error *err)
{
    bool multi = src->size > c->opt.copy_threshold && src->size > 0;
    struct transfer_carry cw = {0}; /* transfer_carry_free takes it unbuilt */
    struct sbuf tags = SBUF_INIT;
    int rc = tags_read(c, &src->loc, h, &tags);
    if (rc == 0)
        rc = transfer_carry_build(&cw, wo, h, wo || multi);
    if (rc == 0 && multi)
        rc = copy_multipart(c, src, dst, &cw.wo, self, etag_out); /* errors logged */
    else if (rc == 0)
        rc = copy_single(c, src, dst, &cw.wo, wo != NULL, self, etag_out, err);
    transfer_carry_free(&cw);
    if (rc == 0)
        rc = tags_restore(c, dst, &tags);
    sbuf_free(&tags);
    return rc;
}

int transfer_copy(struct fs_ctx *c, const struct transfer_source *src, const struct fs_loc *dst,
                  const struct s3_write_opts *wo, char etag_out[80], struct s3_error *err)
{
    s3_error_clear(err);
    struct s3_head h;
    struct transfer_source pinned;
    int rc = pin_source(c, src, &h, &pinned, err);
    if (rc == 0)
        rc = copy_pinned(c, &pinned, &h, dst, wo, false, etag_out, err);
    s3_head_free(&h);
    return rc;
}

int transfer_rewrite(struct fs_ctx *c, const struct fs_loc *loc, const struct s3_head *h,
                     const struct s3_write_opts *wo, char etag_out[80], struct s3_error *err)
{
    s3_error_clear(err);
    struct transfer_source src = {.loc = *loc, .size = h->size};
    snprintf(src.etag, sizeof src.etag, "%s", h->etag);
    return copy_pinned(c, &src, h, loc, wo, true, etag_out, err);
}

/* ---------- downloads ---------- */

struct get_task {
    struct fs_ctx *c;
    const struct fs_loc *loc;
    const char *etag;
    uint64_t off;
    size_t len;
    char *dst;
};

static int get_range(void *arg)
{
    struct get_task *t = arg;
    struct s3_error err;
    size_t got = 0;
    int rc = s3_get_object(t->c->s3, t->loc->bucket, t->loc->key, t->off, t->len,
                           t->etag && *t->etag ? t->etag : NULL, t->dst, &got, &err);
    if (rc == -ESTALE) /* the caller decides: follow the new version, or fail */
        return rc;
    if (rc)
        return fs_fail("get", t->loc->key, rc, &err);
    return got == t->len ? 0 : -EIO; /* the object is shorter than we were told */
}

int transfer_get_parallel(struct fs_ctx *c, const struct fs_loc *loc, const char *etag,
                          uint64_t off, size_t len, char *dst, int ways)
{
    if (ways <= 1 || len < PAR_MIN) {
        struct get_task t = {c, loc, etag, off, len, dst};
        return get_range(&t);
    }
    struct get_task tasks[16];
    if (ways > 16)
        ways = 16;
    size_t piece = (len + (size_t)ways - 1) / (size_t)ways;
    struct pool_group g;
    pool_group_init(&g);
    int rc = 0, i = 0;
    for (size_t done = 0; rc == 0 && done < len; done += piece, i++) {
        size_t n = len - done < piece ? len - done : piece;
        tasks[i] = (struct get_task){c, loc, etag, off + done, n, dst + done};
        rc = pool_submit_group(c->pool, &g, get_range, &tasks[i]);
    }
    int wrc = pool_group_wait(&g);
    pool_group_destroy(&g);
    return rc ? rc : wrc;
}

int transfer_download(struct fs_ctx *c, const struct fs_loc *loc, const char *etag,
                      struct stage *stage, uint64_t len)
{
    char *buf = malloc(len < CHUNK ? (size_t)len : CHUNK);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    for (uint64_t off = 0; rc == 0 && off < len; off += CHUNK) {
        size_t n = len - off < CHUNK ? (size_t)(len - off) : CHUNK;
        rc = transfer_get_parallel(c, loc, etag, off, n, buf, 4);
        if (rc == 0) {
            ssize_t w = stage_pwrite(stage, buf, n, (off_t)off);
            rc = w < 0 ? (int)w : 0;
        }
    }
    free(buf);
    return rc;
}

/* ---------- reads with read-ahead ---------- */

_Static_assert(sizeof(struct transfer_source) <= RA_SRC_MAX, "a source fits the read-ahead");

static int ra_fetch(void *ctx, const void *src, uint64_t off, size_t len, char *dst)
{
    const struct transfer_source *s = src;
    return transfer_get_parallel(ctx, &s->loc, s->etag, off, len, dst, 4);
}

static int ra_spawn(void *ctx, int (*fn)(void *), void *arg)
{
    struct fs_ctx *c = ctx;
    return pool_try_submit(c->pool, fn, arg);
}

void transfer_ra_config(struct fs_ctx *c, struct ra_config *cfg)
{
    *cfg =
        (struct ra_config){.fetch = ra_fetch, .spawn = ra_spawn, .ctx = c, .budget = &c->ra_budget};
}

int transfer_read(struct readahead *ra, const struct transfer_source *src, char *buf, size_t size,
                  off_t off)
{
    return ra_read(ra, src, sizeof *src, src->size, buf, size, (uint64_t)off);
}
