#include "s3cfs/cond.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "s3cfs/fs.h"
#include "s3cfs/log.h"
#include "s3cfs/s3.h"

/* An ETag no object has: a condition on it must fail. */
#define WRONG_ETAG "00000000000000000000000000000000"

static const char *const kind_names[COND_COUNT] = {
    "put-if-none-match",   "complete-if-none-match", "copy-if-none-match",   "delete-if-match",
    "delete-objects-etag", "copy-source-if-match",   "copy-if-match-legacy",
};

static const char *const state_names[] = {"unknown", "honoured", "ignored", "rejected"};

const char *cond_kind_name(enum cond_kind k)
{
    return (unsigned)k < COND_COUNT ? kind_names[k] : "?";
}

const char *cond_state_name(enum cond_state s)
{
    return (unsigned)s <= COND_REJECTED ? state_names[s] : "?";
}

bool cond_on(const struct cond_caps *caps, enum cond_kind k)
{
    return caps && (unsigned)k < COND_COUNT && caps->state[k] == COND_HONOURED;
}

void cond_format(const struct cond_caps *caps, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (int k = 0; k < COND_COUNT && n < size; k++) {
        int w = snprintf(out + n, size - n, "%s%s=%s", k ? " " : "", kind_names[k],
                         cond_state_name((enum cond_state)caps->state[k]));
        n += w > 0 ? (size_t)w : 0;
    }
}

/* What a conditional request's answer says about its condition: 412 holds
 * it; success ignores it; another answer from the server (4xx) refuses the
 * request; anything else (transport, 5xx after retries) tells nothing. */
static enum cond_state judge(int rc, const struct s3_error *err)
{
    if (rc == 0)
        return COND_IGNORED;
    if (rc == -ESTALE && err->http_status == 412)
        return COND_HONOURED;
    if (err->http_status >= 400 && err->http_status < 500)
        return COND_REJECTED;
    return COND_UNKNOWN;
}

struct probe {
    struct s3_client *s3;
    const char *bucket;
    char a[S3_KEY_MAX + 1], b[S3_KEY_MAX + 1]; /* the scratch keys */
    struct cond_caps *caps;
};

static void note(struct probe *p, enum cond_kind k, int rc, const struct s3_error *err)
{
    p->caps->state[k] = (unsigned char)judge(rc, err);
    char msg[600];
    LOGD("condition probe: %s: %s (%s)", kind_names[k], state_names[p->caps->state[k]],
         rc ? s3_error_format(err, msg, sizeof msg) : "request succeeded");
}

static int put_text(struct probe *p, const char *key, const char *text, bool if_none_match,
                    struct s3_error *err)
{
    struct s3_body body = {.data = text, .fd = -1, .len = strlen(text)};
    return s3_put_object_cond(p->s3, p->bucket, key, &body, NULL, if_none_match, NULL, err);
}

/* A one-part upload onto a, completed with If-None-Match: *. */
static void probe_complete(struct probe *p)
{
    struct s3_error err;
    char *id = NULL;
    int rc = s3_mpu_create(p->s3, p->bucket, p->a, NULL, &id, &err);
    struct s3_part part = {.number = 1};
    struct s3_body body = {.data = "probe-m", .fd = -1, .len = 7};
    if (rc == 0)
        rc = s3_mpu_upload_part(p->s3, p->bucket, p->a, id, 1, &body, part.etag, &err);
    if (rc) {
        note(p, COND_COMPLETE_CREATE, -EIO, &(struct s3_error){0}); /* could not tell */
    } else {
        rc = s3_mpu_complete(p->s3, p->bucket, p->a, id, &part, 1, true, NULL, &err);
        note(p, COND_COMPLETE_CREATE, rc, &err);
    }
    if (id && rc && s3_mpu_abort(p->s3, p->bucket, p->a, id, &err))
        LOGW("condition probe: could not abort the upload on %s", p->a);
    free(id);
}

static void probe_copies(struct probe *p)
{
    struct s3_error err;
    /* onto a, which exists */
    struct s3_copy_opts create = {.if_none_match = true};
    int rc = s3_copy_object(p->s3, p->bucket, p->b, p->bucket, p->a, &create, NULL, &err);
    note(p, COND_COPY_CREATE, rc, &err);
    /* each spelling of the source's ETag condition alone, with an ETag a lacks */
    struct s3_copy_opts std = {.if_match = WRONG_ETAG, .copy_if = S3_COPY_IF_STANDARD};
    rc = s3_copy_object(p->s3, p->bucket, p->a, p->bucket, p->b, &std, NULL, &err);
    note(p, COND_COPY_SOURCE_IF, rc, &err);
    struct s3_copy_opts legacy = {.if_match = WRONG_ETAG, .copy_if = S3_COPY_IF_LEGACY};
    rc = s3_copy_object(p->s3, p->bucket, p->a, p->bucket, p->b, &legacy, NULL, &err);
    note(p, COND_COPY_IF, rc, &err);
}

static void probe_deletes(struct probe *p)
{
    struct s3_error err;
    int rc = s3_delete_object(p->s3, p->bucket, p->a, WRONG_ETAG, &err);
    note(p, COND_DELETE_IF_MATCH, rc, &err);
    if (rc == 0 && put_text(p, p->a, "probe-a", false, &err)) { /* deleted: bring it back */
        LOGW("condition probe: cannot write %s again", p->a);
        return;
    }
    const char *keys[1] = {p->a}, *etags[1] = {WRONG_ETAG};
    struct s3_delete_error *errs = NULL;
    size_t nerrs = 0;
    rc = s3_delete_objects(p->s3, p->bucket, keys, etags, 1, &errs, &nerrs, &err);
    enum cond_state st = COND_UNKNOWN;
    if (rc == 0 && nerrs == 0)
        st = COND_IGNORED;
    else if (rc == 0)
        st = strcmp(errs[0].code, "PreconditionFailed") == 0 ? COND_HONOURED : COND_REJECTED;
    else if (err.http_status >= 400 && err.http_status < 500)
        st = COND_REJECTED;
    p->caps->state[COND_DELETES_ETAG] = (unsigned char)st;
    LOGD("condition probe: %s: %s", kind_names[COND_DELETES_ETAG], state_names[st]);
    if (rc == 0)
        s3_delete_errors_free(errs, nerrs);
}

static void probe_cleanup(struct probe *p)
{
    const char *keys[2] = {p->a, p->b};
    struct s3_delete_error *errs = NULL;
    size_t nerrs = 0;
    struct s3_error err;
    int rc = s3_delete_objects(p->s3, p->bucket, keys, NULL, 2, &errs, &nerrs, &err);
    for (size_t i = 0; rc == 0 && i < nerrs; i++)
        if (strcmp(errs[i].code, "NoSuchKey") != 0)
            rc = -EIO;
    if (rc)
        LOGW("condition probe: could not remove %s and %s from bucket %s", p->a, p->b, p->bucket);
    if (errs)
        s3_delete_errors_free(errs, nerrs);
}

int cond_probe(struct s3_client *s3, const char *bucket, const char *prefix, struct cond_caps *out)
{
    memset(out, 0, sizeof *out);
    unsigned long long r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned long long)(uintptr_t)&r ^ (unsigned long long)getpid();
    struct probe p = {.s3 = s3, .bucket = bucket, .caps = out};
    snprintf(p.a, sizeof p.a, "%s.s3cfs-probe-%016llx-a", prefix ? prefix : "", r);
    snprintf(p.b, sizeof p.b, "%s.s3cfs-probe-%016llx-b", prefix ? prefix : "", r);
    struct s3_error err;
    int rc = put_text(&p, p.a, "probe-a", false, &err);
    if (rc == 0)
        rc = put_text(&p, p.b, "probe-b", false, &err);
    if (rc) {
        char msg[600];
        LOGW("condition probe: cannot write to bucket %s (%s): no condition will be sent", bucket,
             s3_error_format(&err, msg, sizeof msg));
        probe_cleanup(&p);
        return rc;
    }
    /* a exists: each create-only write onto it must fail */
    rc = put_text(&p, p.a, "probe-x", true, &err);
    note(&p, COND_PUT_CREATE, rc, &err);
    probe_complete(&p);
    probe_copies(&p);
    probe_deletes(&p);
    probe_cleanup(&p);
    return 0;
}

void cond_probe_mount(struct fs_ctx *c)
{
    char bucket[S3CFS_BUCKET_MAX + 1] = "";
    const char *prefix = "";
    if (!c->map.all_buckets) {
        snprintf(bucket, sizeof bucket, "%s", c->map.bucket);
        prefix = c->map.prefix;
    } else {
        struct s3_bucket *b = NULL;
        size_t n = 0;
        struct s3_error err;
        if (s3_list_buckets(c->s3, &b, &n, &err) == 0 && n > 0)
            snprintf(bucket, sizeof bucket, "%s", b[0].name);
        if (b)
            s3_buckets_free(b, n);
    }
    memset(&c->conds, 0, sizeof c->conds);
    if (bucket[0])
        cond_probe(c->s3, bucket, prefix, &c->conds);
    char line[512];
    cond_format(&c->conds, line, sizeof line);
    LOGI("conditional requests honoured by %s%s%s: %s", s3_client_endpoint(c->s3),
         bucket[0] ? " in bucket " : " (no bucket to probe)", bucket, line);
}
