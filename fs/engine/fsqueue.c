#include "s3cfs/fsqueue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3cfs/engine.h"
#include "s3cfs/htab.h"
#include "s3cfs/journal.h"
#include "s3cfs/log.h"
#include "s3cfs/nscache.h"
#include "s3cfs/transfer.h"

#define PATH_SIZE 4352

static void loc_of(struct fs_loc *l, const char *bucket, const char *key)
{
    memset(l, 0, sizeof *l);
    l->kind = LOC_OBJECT;
    snprintf(l->bucket, sizeof l->bucket, "%s", bucket);
    snprintf(l->key, sizeof l->key, "%s", key);
}

/* The last job writing a key is over: landed (rc 0), failed for good or
 * cancelled; retries keep the pin, so the name never flickers. A landed
 * job's pinned entry is what S3 now has: it becomes an ordinary cache entry
 * and the parent's listing stays (dropping it made every later lookup in a
 * directory being filled by cp -r cost a HEAD and a LIST). Otherwise the
 * namespace asks S3 again. Runs under the engine's lock: the cache's lock
 * is a leaf. */
static void job_over(void *ctx, const char *bucket, const char *key, int rc, bool last)
{
    struct fs_ctx *c = ctx;
    char path[PATH_SIZE];
    if (!last || path_from_key(&c->map, bucket, key, path, sizeof path) != 0)
        return;
    if (!nscache_unpin(c->cache, path) || rc != 0)
        nscache_invalidate(c->cache, path);
}

static int exec_copy(void *ctx, uint64_t id, const struct job_spec *spec, struct s3_error *err)
{
    (void)id;
    struct fs_ctx *c = ctx;
    struct transfer_source src = {.size = spec->src_size};
    struct fs_loc dst;
    loc_of(&src.loc, spec->src_bucket, spec->src_key);
    snprintf(src.etag, sizeof src.etag, "%s", spec->src_etag ? spec->src_etag : "");
    src.dst_create_only = spec->dst_create_only;
    loc_of(&dst, spec->bucket, spec->key);
    struct s3_write_opts wo = {
        .content_type = spec->content_type, .meta = spec->meta, .nmeta = spec->nmeta};
    char etag[80];
    int rc = transfer_copy(c, &src, &dst, spec->meta ? &wo : NULL, etag, err);
    if (rc && !err->code[0])
        s3_error_set(err, "CopyFailed", strerror(-rc));
    return rc;
}

static int delete_batch(struct fs_ctx *c, const char *bucket, const char *const *keys,
                        const char *const *etags, size_t n, int *per_key_rc, struct s3_error *err)
{
    struct s3_delete_error *errs = NULL;
    size_t nerrs = 0;
    int rc = s3_delete_objects(c->s3, bucket, keys, etags, n, &errs, &nerrs, err);
    for (size_t i = 0; i < n; i++) {
        per_key_rc[i] = rc;
        for (size_t j = 0; rc == 0 && j < nerrs; j++)
            if (strcmp(errs[j].key, keys[i]) == 0 && strcmp(errs[j].code, "NoSuchKey") != 0)
                per_key_rc[i] = s3_errno_for(errs[j].code, 0);
    }
    if (rc == 0)
        s3_delete_errors_free(errs, nerrs);
    return rc;
}

/* The keys of a batch that carry an ETag, each as its own DeleteObject
 * with If-Match (for a server that honours that but not DeleteObjects'
 * per-key ETags); they leave the batch (keys[i] becomes NULL). */
static void delete_each_if_match(struct fs_ctx *c, const char *bucket, const char **keys,
                                 const char *const *etags, size_t n, int *per_key_rc)
{
    for (size_t i = 0; i < n; i++) {
        if (!etags[i])
            continue;
        struct s3_error e;
        int rc = s3_delete_object(c->s3, bucket, keys[i], etags[i], &e);
        if (rc && rc != -ENOENT && rc != -ESTALE)
            fs_fail("delete", keys[i], rc, &e);
        per_key_rc[i] = rc == -ENOENT ? 0 : rc;
        keys[i] = NULL;
    }
}

/* Conditions a delete batch can carry: per-key ETags in DeleteObjects, or
 * If-Match on single deletes, or none (cond.h: only what the server was
 * seen to honour). */
static int exec_delete(void *ctx, const char *bucket, const char *const *keys,
                       const char *const *etags, size_t n, int *per_key_rc, struct s3_error *err)
{
    struct fs_ctx *c = ctx;
    bool any = false;
    for (size_t i = 0; etags && i < n; i++)
        any = any || etags[i];
    if (!any || cond_on(&c->conds, COND_DELETES_ETAG) || !cond_on(&c->conds, COND_DELETE_IF_MATCH))
        return delete_batch(c, bucket, keys, cond_on(&c->conds, COND_DELETES_ETAG) ? etags : NULL,
                            n, per_key_rc, err);
    const char **rest = malloc(n * sizeof *rest);
    if (!rest) {
        s3_error_set(err, "NoMemory", "out of memory");
        return -ENOMEM;
    }
    memcpy(rest, keys, n * sizeof *rest);
    delete_each_if_match(c, bucket, rest, etags, n, per_key_rc);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) /* the unconditional ones still go as one batch */
        if (rest[i])
            rest[m++] = rest[i];
    int rc = 0;
    if (m) {
        int *rcs = calloc(m, sizeof *rcs);
        rc = rcs ? delete_batch(c, bucket, rest, NULL, m, rcs, err) : -ENOMEM;
        if (!rcs)
            s3_error_set(err, "NoMemory", "out of memory");
        for (size_t i = 0, j = 0; rcs && i < n; i++)
            if (!etags[i])
                per_key_rc[i] = rc ? rc : rcs[j++];
        free(rcs);
    }
    free(rest);
    return rc;
}

static void on_throttle(void *arg)
{
    struct fs_ctx *c = arg;
    if (c->jobs)
        engine_throttled(c->jobs);
}

#define JOURNAL_LOCK_WAIT_MS 60000 /* a previous mount of the same place still draining */

/* Where journals live: -o journal_dir, else /var/lib/s3cfs for root and
 * $XDG_STATE_HOME/s3cfs (or ~/.local/state/s3cfs) for anyone else, so that
 * no user needs a shared directory. The default's parents are created. */
static int journal_dir(struct fs_ctx *c, char *out, size_t size)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int n;
    if (c->opt.journal_dir)
        n = snprintf(out, size, "%s", c->opt.journal_dir);
    else if (geteuid() == 0)
        n = snprintf(out, size, "/var/lib/s3cfs");
    else if (xdg && xdg[0] == '/')
        n = snprintf(out, size, "%s/s3cfs", xdg);
    else if (home && home[0] == '/')
        n = snprintf(out, size, "%s/.local/state/s3cfs", home);
    else
        return -ENOENT;
    if (n < 0 || (size_t)n >= size)
        return -ENAMETOOLONG;
    for (char *p = c->opt.journal_dir ? NULL : strchr(out + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        int rc = mkdir(out, 0700) == 0 || errno == EEXIST ? 0 : -errno;
        *p = '/';
        if (rc)
            return rc;
    }
    return mkdir(out, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

/* One journal per mount point: the next mount of the same place finishes
 * what this one could not. */
static int journal_path(struct fs_ctx *c, char *out, size_t size)
{
    char dir[PATH_SIZE - 32];
    int rc = journal_dir(c, dir, sizeof dir);
    if (rc)
        return rc;
    const char *mp = c->opt.mountpoint ? c->opt.mountpoint : "";
    snprintf(out, size, "%s/journal-%08x.log", dir, (unsigned)hash_fnv1a32(mp, strlen(mp)));
    return 0;
}

/* What the jobs of this mount act on: a journal of another source (or of
 * another mount point sharing the name's hash) is not replayed here. */
static void journal_source(struct fs_ctx *c, char *out, size_t size)
{
    snprintf(out, size, "endpoint=%s bucket=%s prefix=%s mountpoint=%s", s3_client_endpoint(c->s3),
             c->map.all_buckets ? "*" : c->map.bucket, c->map.prefix,
             c->opt.mountpoint ? c->opt.mountpoint : "");
}

int fsq_open_journal(struct fs_ctx *c)
{
    char path[PATH_SIZE] = "", source[PATH_SIZE + 2 * S3CFS_KEY_MAX];
    int rc = journal_path(c, path, sizeof path);
    journal_source(c, source, sizeof source);
    struct journal_opts o = {.source = source, .lock_wait_ms = JOURNAL_LOCK_WAIT_MS};
    if (rc == 0)
        rc = journal_open_opts(path, &o, &c->journal);
    if (rc)
        LOGE("cannot open the intent journal %s: %s (see -o journal_dir)",
             rc == -ENOENT && !path[0] ? "(no HOME)" : path, strerror(-rc));
    return rc;
}

/* A key a replayed job may touch: what the mount could have made. */
static bool replay_key_ok(struct fs_ctx *c, const char *bucket, const char *key)
{
    char path[PATH_SIZE];
    size_t n = key ? strlen(key) : 0;
    return bucket && path_bucket_name_ok(bucket) && n > 0 && n <= S3CFS_KEY_MAX + 1 &&
           (c->map.all_buckets || strcmp(bucket, c->map.bucket) == 0) &&
           path_from_key(&c->map, bucket, key, path, sizeof path) == 0;
}

/* A replayed delete removes only what was there when it was queued: an
 * object written since (another client's upload, or ours before a power
 * loss ate the delete's DONE) is kept. Last-Modified has whole seconds:
 * an object of a later second is newer, one of an earlier second older;
 * one of the same second (a file written and removed at once, as rm -r
 * after a build) is the one the delete meant if it has the ETag the mount
 * knew when it queued the delete, or if that was not known (a later
 * writer within that second races the delete as it would have without the
 * crash). Its object being an earlier replayed job's result, or a record
 * without a time (older versions), it runs as it is. */
static enum engine_admit replay_delete(struct fs_ctx *c, const struct job_spec *s)
{
    struct s3_head h = {0};
    struct s3_error err = {0};
    int rc = s3_head_object(c->s3, s->bucket, s->key, &h, &err);
    LOGD("replay: HEAD %s/%s: %d (%d)", s->bucket, s->key, rc, err.http_status);
    if (rc == -ENOENT)
        return ENGINE_ADMIT_DROP; /* already gone */
    if (rc) {
        LOGW("replay: cannot check %s/%s before its delete (%s): left in the journal for the "
             "next mount",
             s->bucket, s->key, strerror(-rc));
        return ENGINE_ADMIT_KEEP;
    }
    int64_t mtime = (int64_t)h.mtime.tv_sec;
    bool seen = s->seen_etag && *s->seen_etag;
    bool same = !seen || strcmp(s->seen_etag, h.etag) == 0;
    s3_head_free(&h);
    if (mtime < s->queued_s || (mtime == s->queued_s && same))
        return ENGINE_ADMIT_RUN;
    LOGW("replay: not deleting %s/%s: it was written (%lld%s) after its delete was queued (%lld)",
         s->bucket, s->key, (long long)mtime, same ? "" : ", another ETag", (long long)s->queued_s);
    return ENGINE_ADMIT_DROP;
}

static enum engine_admit admit(void *ctx, uint64_t id, const struct job_spec *s, bool rewritten)
{
    struct fs_ctx *c = ctx;
    bool copy = s->kind == JOB_COPY;
    if (!replay_key_ok(c, s->bucket, s->key) ||
        (copy && !replay_key_ok(c, s->src_bucket, s->src_key))) {
        LOGW("replay: dropping journal record %llu: %s/%s is not a key of this mount",
             (unsigned long long)id, s->bucket ? s->bucket : "", s->key ? s->key : "");
        return ENGINE_ADMIT_DROP;
    }
    if (copy || rewritten || s->queued_s == 0)
        return ENGINE_ADMIT_RUN;
    return replay_delete(c, s);
}

int fsq_start(struct fs_ctx *c)
{
    char path[PATH_SIZE];
    int rc = c->journal ? journal_path(c, path, sizeof path) : fsq_open_journal(c);
    if (rc)
        return rc;
    struct engine_config cfg = {
        .pool = c->engine_pool,
        .exec = exec_copy,
        .del = exec_delete,
        .over = job_over,
        .admit = admit,
        .ctx = c,
        .journal = c->journal,
        .batch_delay_ms = 2000, /* deletes: a full page, or 200 ms of quiet */
        .max_pending = c->opt.max_pending,
    };
    rc = engine_new(&cfg, &c->jobs);
    size_t n = 0;
    if (rc == 0)
        rc = engine_recover(c->jobs, &n);
    if (n) {
        /* before the first request is served: the replayed copies and
         * deletes have no pins, so until they land a name would show
         * neither its old state nor its new one */
        LOGW("finishing %zu operations left by the previous mount (journal %s)", n, path);
        engine_wait_idle(c->jobs);
    }
    s3_client_set_throttle_cb(c->s3, on_throttle, c);
    return rc;
}

int fsq_stop(struct fs_ctx *c)
{
    int rc = c->jobs ? engine_drain(c->jobs) : 0;
    if (c->jobs)
        engine_free(c->jobs);
    c->jobs = NULL;
    if (c->journal) {
        journal_compact(c->journal);
        rc = fsq_durable(c, rc); /* the last durability point */
        journal_close(c->journal);
    }
    c->journal = NULL;
    return rc;
}

static int after_submit(struct fs_ctx *c, const struct fs_loc *loc, int rc)
{
    if (rc == 0 && c->opt.sync) /* -o sync: the call returns when it landed */
        rc = fsq_wait(c, loc, 0);
    return rc;
}

/* Show path (if not NULL) as st (NULL st: gone) until its job lands. */
static int pin_path(struct fs_ctx *c, const char *path, const struct stat *st)
{
    return path ? nscache_pin(c->cache, path, st, NULL) : 0;
}

static void unpin_path(struct fs_ctx *c, const char *path)
{
    if (path)
        nscache_unpin(c->cache, path);
}

/* Submit spec, showing path as st (NULL st: gone) until it lands. */
static int submit_shown(struct fs_ctx *c, const struct job_spec *spec, const char *path,
                        const struct stat *st)
{
    int rc = pin_path(c, path, st);
    if (rc == 0 && (rc = engine_submit(c->jobs, spec, NULL)) != 0)
        unpin_path(c, path);
    return rc;
}

int fsq_copy(struct fs_ctx *c, const struct fs_loc *src, const char *etag, uint64_t size,
             const struct fs_loc *dst, const char *dst_path, const struct stat *st,
             const char *xattr)
{
    struct meta_set ms;
    meta_from_stat(st, &ms);
    meta_set_xattr(&ms, xattr);
    struct job_spec spec = {
        .kind = JOB_COPY,
        .bucket = dst->bucket,
        .key = dst->key,
        .src_bucket = src->bucket,
        .src_key = src->key,
        .src_etag = etag,
        .src_size = size,
        .meta = ms.meta,
        .nmeta = ms.nmeta,
    };
    /* shown at once, with its final size and attributes */
    return after_submit(c, dst, submit_shown(c, &spec, dst_path, st));
}

int fsq_delete(struct fs_ctx *c, const struct fs_loc *loc, const char *path, const char *etag)
{
    struct job_spec spec = {
        .kind = JOB_DELETE, .bucket = loc->bucket, .key = loc->key, .seen_etag = etag};
    return after_submit(
        c, loc, path ? submit_shown(c, &spec, path, NULL) : engine_submit(c->jobs, &spec, NULL));
}

/* A copy that keeps the source's metadata (directive COPY). */
static struct job_spec copy_as_is(const struct fs_loc *from, const char *etag, uint64_t size,
                                  const struct fs_loc *to)
{
    return (struct job_spec){
        .kind = JOB_COPY,
        .bucket = to->bucket,
        .key = to->key,
        .src_bucket = from->bucket,
        .src_key = from->key,
        .src_etag = etag,
        .src_size = size,
    };
}

uint64_t fsq_group(struct fs_ctx *c)
{
    return engine_new_group(c->jobs);
}

void fsq_release(struct fs_ctx *c, uint64_t group)
{
    engine_release(c->jobs, group);
}

/* The source's delete is guarded by its own copy (engine_submit_move): it is
 * cancelled if that copy fails, and nothing else cancels it or is cancelled
 * because of it. */
int fsq_move_held(struct fs_ctx *c, const struct fs_loc *from, const char *etag, uint64_t size,
                  const struct fs_loc *to, uint64_t group, bool noreplace)
{
    struct job_spec copy = copy_as_is(from, etag, size, to);
    copy.dst_create_only = noreplace;
    return engine_submit_move(c->jobs, &copy, group, NULL, NULL);
}

int fsq_move(struct fs_ctx *c, const struct fs_loc *from, const char *etag, uint64_t size,
             const struct fs_loc *to, const char *from_path, const char *to_path,
             const struct stat *st, const struct s3_write_opts *wo, bool noreplace)
{
    struct job_spec copy = copy_as_is(from, etag, size, to);
    copy.dst_create_only = noreplace;
    if (wo) {
        copy.meta = wo->meta;
        copy.nmeta = wo->nmeta;
        copy.content_type = wo->content_type;
    }
    int rc = pin_path(c, to_path, st);
    if (rc)
        return rc;
    rc = pin_path(c, from_path, NULL); /* gone at once */
    if (rc == 0 && (rc = engine_submit_move(c->jobs, &copy, 0, NULL, NULL)) != 0)
        unpin_path(c, from_path);
    if (rc)
        unpin_path(c, to_path);
    return after_submit(c, to, rc);
}

int fsq_fold_attrs(struct fs_ctx *c, const struct fs_loc *loc, const struct stat *st)
{
    struct meta_set ms;
    meta_from_stat(st, &ms);
    int rc = engine_fold_meta(c->jobs, loc->bucket, loc->key, ms.meta, ms.nmeta);
    if (rc == 0) {
        char path[PATH_SIZE];
        if (path_from_key(&c->map, loc->bucket, loc->key, path, sizeof path) == 0)
            nscache_pin(c->cache, path, st, NULL);
    }
    return rc;
}

int fsq_wait(struct fs_ctx *c, const struct fs_loc *loc, int roles)
{
    return engine_wait_key(c->jobs, loc->bucket, loc->key,
                           roles ? roles : ENGINE_AS_DEST | ENGINE_AS_SOURCE);
}

int fsq_wait_dir(struct fs_ctx *c, const struct fs_loc *dir)
{
    char prefix[S3CFS_KEY_MAX + 2];
    int rc = path_dir_prefix(dir, prefix, sizeof prefix);
    return rc ? rc : engine_wait_prefix(c->jobs, dir->bucket, prefix);
}

int fsq_durable(struct fs_ctx *c, int rc)
{
    int src = c->journal ? journal_sync(c->journal) : 0;
    if (src)
        LOGE("fsync of the intent journal: %s", strerror(-src));
    return rc ? rc : src;
}

int fsq_wait_all(struct fs_ctx *c)
{
    return engine_wait_prefix(c->jobs, NULL, "");
}

bool fsq_pending(struct fs_ctx *c, const struct fs_loc *loc, int roles)
{
    return engine_pending_key(c->jobs, loc->bucket, loc->key,
                              roles ? roles : ENGINE_AS_DEST | ENGINE_AS_SOURCE);
}
