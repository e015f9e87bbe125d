/* upstream.c - the multipart upload of a file while it is written. */
#include "s3cfs/upstream.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3cfs/cond.h"
#include "s3cfs/log.h"
#include "s3cfs/meta.h"
#include "s3cfs/pool.h"
#include "s3cfs/stage.h"

/* S3's limit; the last part takes whatever is left past it */
#define UP_MAX_PARTS 10000

struct up_part {
    char etag[80];   /* lock: of the send that landed */
    unsigned flight; /* lock: sends running */
    bool landed;     /* lock: a send landed since the part was last cut or changed */
    bool changed;    /* lock: written after its send started */
};

struct upstream {
    struct fs_ctx *c;
    struct transfer_upload up; /* constant: where, and the attributes at the start */
    struct s3_head *kept;      /* constant, owned: what up.kept points to */
    struct transfer_write *w;  /* constant until finish */
    char *id;                  /* constant: the upload id */
    uint64_t ps;               /* constant: part size */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct up_part *parts; /* lock: parts [0, ncut) are cut; cap entries */
    size_t ncut, cap;
    unsigned inflight; /* lock: sends running */
    int error;         /* lock: the first failed send */
    bool completed;    /* owner: the object was made */
};

/* One send of part i: its body was described under the owner's lock. */
struct up_task {
    struct upstream *u;
    size_t i;
    struct s3_body body;
};

static int send_part(struct upstream *u, size_t i, const struct s3_body *body, char etag[80])
{
    struct s3_error err;
    int rc = s3_mpu_upload_part(u->c->s3, u->up.loc.bucket, u->up.loc.key, u->id, (int)i + 1, body,
                                etag, &err);
    return rc ? fs_fail("upload part (streamed)", u->up.loc.key, rc, &err) : 0;
}

static int run_task(void *arg)
{
    struct up_task *t = arg;
    struct upstream *u = t->u;
    char etag[80] = "";
    int rc = send_part(u, t->i, &t->body, etag);
    pthread_mutex_lock(&u->lock);
    struct up_part *p = &u->parts[t->i];
    p->flight--;
    if (rc == 0 && !p->changed && t->i < u->ncut) {
        memcpy(p->etag, etag, sizeof p->etag);
        p->landed = true;
    }
    if (rc && !u->error && t->i < u->ncut) /* a part cut away since does not count */
        u->error = rc;
    u->inflight--;
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
    free(t);
    return 0;
}

int upstream_begin(struct fs_ctx *c, const struct transfer_upload *up, struct s3_head *kept,
                   uint64_t part_size, struct upstream **out)
{
    struct upstream *u = calloc(1, sizeof *u);
    if (!u) {
        s3_head_free(kept);
        free(kept);
        return -ENOMEM;
    }
    u->c = c;
    u->up = *up;
    u->up.no_times = true;
    u->kept = kept;
    u->up.kept = kept;
    u->ps = part_size;
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cond, NULL);
    struct s3_error err;
    int rc = transfer_write_begin(c, &u->up, &u->w);
    if (rc == 0 && (rc = s3_mpu_create(c->s3, up->loc.bucket, up->loc.key,
                                       transfer_write_opts(u->w), &u->id, &err)))
        fs_fail("create multipart (streamed)", up->loc.key, rc, &err);
    if (rc) {
        upstream_free(u);
        return rc;
    }
    LOGD("%s: streaming its upload in parts of %llu bytes", up->loc.key,
         (unsigned long long)part_size);
    *out = u;
    return 0;
}

void upstream_will_write(struct upstream *u, uint64_t off, uint64_t len)
{
    pthread_mutex_lock(&u->lock);
    for (size_t i = (size_t)(off / u->ps); i < u->ncut && (uint64_t)i * u->ps < off + len; i++) {
        u->parts[i].changed = u->parts[i].flight > 0 || u->parts[i].landed;
        u->parts[i].landed = false;
    }
    pthread_mutex_unlock(&u->lock);
}

void upstream_truncated(struct upstream *u, uint64_t size)
{
    pthread_mutex_lock(&u->lock);
    size_t keep = (size_t)(size / u->ps); /* whole parts below size */
    if (keep < u->ncut)
        u->ncut = keep;
    pthread_mutex_unlock(&u->lock);
}

/* Lock held: room for part i. */
static int parts_room(struct upstream *u, size_t i)
{
    if (i < u->cap)
        return 0;
    size_t cap = u->cap ? u->cap * 2 : 16;
    struct up_part *v = realloc(u->parts, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    memset(v + u->cap, 0, (cap - u->cap) * sizeof *v);
    u->parts = v;
    u->cap = cap;
    return 0;
}

/* Lock held: cut part ncut and hand it to the pool. 1: no slot (or its
 * previous send still runs). */
static int cut_next(struct upstream *u, const struct stage *stage)
{
    size_t i = u->ncut;
    uint64_t most = u->c->opt.stream_inflight / u->ps;
    if (u->inflight >= (most > 2 ? most : 2) || (i < u->cap && u->parts[i].flight > 0))
        return 1;
    struct up_task *t = malloc(sizeof *t);
    int rc = t ? parts_room(u, i) : -ENOMEM;
    if (rc) {
        free(t);
        return rc;
    }
    *t = (struct up_task){.u = u, .i = i};
    stage_body(stage, (uint64_t)i * u->ps, u->ps, &t->body);
    u->parts[i] = (struct up_part){.flight = 1};
    u->ncut++;
    u->inflight++;
    pthread_mutex_unlock(&u->lock);
    rc = pool_submit(u->c->pool, run_task, t); /* blocks only on a full queue */
    pthread_mutex_lock(&u->lock);
    return rc;
}

int upstream_feed(struct upstream *u, const struct stage *stage, uint64_t size)
{
    int rc = 0;
    pthread_mutex_lock(&u->lock);
    /* the last part is sent by upstream_finish: it may be short */
    while (rc == 0 && !u->error && u->ncut + 1 < UP_MAX_PARTS &&
           (uint64_t)(u->ncut + 1) * u->ps < size)
        rc = cut_next(u, stage);
    pthread_mutex_unlock(&u->lock);
    return rc;
}

void upstream_wait_slot(struct upstream *u)
{
    pthread_mutex_lock(&u->lock);
    unsigned now = u->inflight;
    while (u->inflight > 0 && u->inflight >= now)
        pthread_cond_wait(&u->cond, &u->lock);
    pthread_mutex_unlock(&u->lock);
}

uint64_t upstream_releasable(struct upstream *u, uint64_t size, uint64_t keep)
{
    pthread_mutex_lock(&u->lock);
    size_t i = 0;
    while (i < u->ncut && u->parts[i].landed && (uint64_t)(i + 1) * u->ps + keep <= size)
        i++;
    pthread_mutex_unlock(&u->lock);
    return (uint64_t)i * u->ps;
}

bool upstream_completed(const struct upstream *u)
{
    return u->completed;
}

bool upstream_failed(struct upstream *u)
{
    pthread_mutex_lock(&u->lock);
    bool failed = u->error != 0;
    pthread_mutex_unlock(&u->lock);
    return failed;
}

static void wait_flights(struct upstream *u)
{
    pthread_mutex_lock(&u->lock);
    while (u->inflight > 0)
        pthread_cond_wait(&u->cond, &u->lock);
    pthread_mutex_unlock(&u->lock);
}

/* Busy, no part in flight: the part list to complete with, every part
 * that did not land (or changed) sent again and the tail [ncut * ps, size)
 * as the last part. *n gets the count. */
static int final_parts(struct upstream *u, const struct stage *stage, uint64_t size,
                       struct s3_part **out, size_t *n)
{
    size_t cut = u->ncut, total = cut + ((uint64_t)cut * u->ps < size || cut == 0);
    struct s3_part *v = calloc(total, sizeof *v);
    int rc = v ? u->error : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < total; i++) {
        v[i].number = (int)i + 1;
        if (i < cut && u->parts[i].landed && !u->parts[i].changed) {
            memcpy(v[i].etag, u->parts[i].etag, sizeof v[i].etag);
            continue;
        }
        struct s3_body body;
        uint64_t off = (uint64_t)i * u->ps;
        stage_body(stage, off, i + 1 < total ? u->ps : size - off, &body);
        rc = send_part(u, i, &body, v[i].etag);
    }
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = total;
    return 0;
}

/* The attributes sent at the start still hold: no rewrite needed. */
static bool same_attrs(const struct stat *a, const struct stat *b)
{
    return a->st_mode == b->st_mode && a->st_uid == b->st_uid && a->st_gid == b->st_gid;
}

/* The object just made gets st as its metadata (a self-copy). */
static int rewrite_attrs(struct upstream *u, const struct stat *st, char etag[80])
{
    struct meta_set ms;
    meta_from_stat(st, &ms);
    meta_set_xattr(&ms, u->up.xattr);
    struct s3_write_opts wo = {.content_type = u->up.content_type[0] ? u->up.content_type : NULL,
                               .meta = ms.meta,
                               .nmeta = ms.nmeta};
    struct s3_head h;
    struct s3_error err;
    int rc = s3_head_object(u->c->s3, u->up.loc.bucket, u->up.loc.key, &h, &err);
    if (rc)
        return fs_fail("head (streamed upload's attributes)", u->up.loc.key, rc, &err);
    rc = transfer_rewrite(u->c, &u->up.loc, &h, &wo, etag, &err);
    s3_head_free(&h);
    return rc;
}

static int complete(struct upstream *u, const struct s3_part *v, size_t n, char etag[80])
{
    struct s3_error err;
    bool excl = u->up.create_only && cond_on(&u->c->conds, COND_COMPLETE_CREATE);
    int rc =
        s3_mpu_complete(u->c->s3, u->up.loc.bucket, u->up.loc.key, u->id, v, n, excl, etag, &err);
    return rc ? fs_fail("complete multipart (streamed)", u->up.loc.key, rc, &err) : 0;
}

int upstream_finish(struct upstream *u, const struct stage *stage, uint64_t size,
                    const struct stat *st, bool times_set, char etag_out[80])
{
    struct s3_part *v = NULL;
    size_t n = 0;
    wait_flights(u);
    int rc = final_parts(u, stage, size, &v, &n);
    if (rc == 0)
        rc = complete(u, v, n, etag_out);
    free(v);
    if (rc) {
        upstream_abort(u);
        return rc;
    }
    free(u->id);
    u->id = NULL; /* completed: nothing to abort */
    u->completed = true;
    rc = transfer_write_end(u->c, &u->up.loc, u->w, 0);
    u->w = NULL;
    if (rc == 0 && (times_set || !same_attrs(st, &u->up.st)))
        rc = rewrite_attrs(u, st, etag_out);
    return rc;
}

void upstream_abort(struct upstream *u)
{
    wait_flights(u);
    if (!u->id)
        return;
    struct s3_error err;
    int rc = s3_mpu_abort(u->c->s3, u->up.loc.bucket, u->up.loc.key, u->id, &err);
    if (rc)
        fs_fail("abort multipart (streamed)", u->up.loc.key, rc, &err);
    free(u->id);
    u->id = NULL;
}

void upstream_free(struct upstream *u)
{
    if (!u)
        return;
    transfer_write_end(u->c, &u->up.loc, u->w, -ECANCELED);
    free(u->id);
    free(u->parts);
    if (u->kept) {
        s3_head_free(u->kept);
        free(u->kept);
    }
    pthread_cond_destroy(&u->cond);
    pthread_mutex_destroy(&u->lock);
    free(u);
}
