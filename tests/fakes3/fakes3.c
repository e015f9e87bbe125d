/* The in-memory S3 store of fakes3.h: s3.h's operations (those of
 * s3/ops.c and s3/request.c) over a process-wide store. Each operation is
 * one function shaped like its real counterpart: begin() (latency, count,
 * injected failure), the store's work under the mutex, finish() (failure
 * counters, throttle callback). A new parameter in s3.h is one edit in the
 * function of that operation. */
#include "fakes3.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3cfs/buf.h"
#include "xml.h" /* the request documents are checked as the real client builds them */

#define MAX_KEYS     1000
#define META_MAX     2048 /* S3's limit on user metadata (names and values) */
#define LOOP_TOKEN   "fakes3-loop"
#define FOREIGN_KEY  "fakes3-foreign-entry"
#define DEFAULT_TYPE "binary/octet-stream"

struct kv {
    char *name, *value;
};

struct object {
    char *key;
    char *data;
    size_t len;
    char etag[80];
    time_t mtime;
    char *ctype;
    struct kv *meta;
    size_t nmeta;
    char *tags; /* the Tagging document last put; NULL: none */
};

struct bucket {
    char *name;
    time_t created;
    struct object **obj; /* sorted by key (strcmp: S3's byte order) */
    size_t n, cap;
};

struct part {
    int number;
    char *data;
    size_t len;
    char etag[80];
};

struct upload {
    char *id, *bucket, *key, *ctype;
    struct kv *meta;
    size_t nmeta;
    struct part *parts; /* by number, unsorted */
    size_t nparts;
    struct upload *next;
};

struct rule {
    unsigned nth; /* counts down; fires at 1 */
    double rate;
    unsigned seed;
    char code[64];
    int status;
};

struct s3_client {
    struct s3_stats stats;
    void (*on_throttle)(void *arg);
    void *on_throttle_arg;
};

static struct {
    pthread_mutex_t mu;
    struct bucket **b;
    size_t nb;
    struct upload *uploads;
    uint64_t next_upload;
    uint64_t count[FAKES3_NKINDS];
    unsigned latency[FAKES3_NKINDS + 1];
    struct rule nth[FAKES3_NKINDS + 1], rate[FAKES3_NKINDS + 1];
    unsigned hostile;
    char hostile_prefix[S3_KEY_MAX + 1];
    size_t min_part;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .min_part = 5u << 20};

static const char *const kind_names[FAKES3_NKINDS + 1] = {"ListBuckets",
                                                          "HeadBucket",
                                                          "CreateBucket",
                                                          "DeleteBucket",
                                                          "ListObjectsV2",
                                                          "HeadObject",
                                                          "GetObject",
                                                          "PutObject",
                                                          "CopyObject",
                                                          "DeleteObject",
                                                          "DeleteObjects",
                                                          "CreateMultipartUpload",
                                                          "UploadPart",
                                                          "UploadPartCopy",
                                                          "CompleteMultipartUpload",
                                                          "AbortMultipartUpload",
                                                          "ObjectTagging",
                                                          "any"};

const char *fakes3_kind_name(enum fakes3_kind k)
{
    return k <= FAKES3_ANY ? kind_names[k] : "?";
}

/* ---- the store (callers hold S.mu) ---- */

static void md5_hex(const void *data, size_t len, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_md5(), NULL);
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void kv_free(struct kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

/* Copies of the metadata, names in lower case (as S3 answers them); NULL
 * with *n 0 for none. */
static struct kv *kv_copy(const struct kv *src_kv, const struct s3_meta *src_meta, size_t n)
{
    struct kv *v = n ? calloc(n, sizeof *v) : NULL;
    for (size_t i = 0; v && i < n; i++) {
        v[i].name = strdup(src_kv ? src_kv[i].name : src_meta[i].name);
        v[i].value = strdup(src_kv ? src_kv[i].value : src_meta[i].value);
        for (char *p = v[i].name; p && *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    }
    return v;
}

static void object_free(struct object *o)
{
    if (!o)
        return;
    free(o->key);
    free(o->data);
    free(o->ctype);
    free(o->tags);
    kv_free(o->meta, o->nmeta);
    free(o);
}

static struct bucket *find_bucket(const char *name)
{
    for (size_t i = 0; name && i < S.nb; i++)
        if (strcmp(S.b[i]->name, name) == 0)
            return S.b[i];
    return NULL;
}

/* Index of the first key >= key. */
static size_t lower_bound(const struct bucket *b, const char *key)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(b->obj[mid]->key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct object *find_object(const struct bucket *b, const char *key)
{
    size_t i = b ? lower_bound(b, key) : 0;
    return b && i < b->n && strcmp(b->obj[i]->key, key) == 0 ? b->obj[i] : NULL;
}

static void remove_object(struct bucket *b, const char *key)
{
    size_t i = lower_bound(b, key);
    if (i >= b->n || strcmp(b->obj[i]->key, key) != 0)
        return;
    object_free(b->obj[i]);
    memmove(b->obj + i, b->obj + i + 1, (b->n - i - 1) * sizeof *b->obj);
    b->n--;
}

/* Put o (owned) in place of any object of its key. */
static int store_object(struct bucket *b, struct object *o)
{
    size_t i = lower_bound(b, o->key);
    if (i < b->n && strcmp(b->obj[i]->key, o->key) == 0) {
        object_free(b->obj[i]);
        b->obj[i] = o;
        return 0;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct object **v = realloc(b->obj, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        b->obj = v;
        b->cap = cap;
    }
    memmove(b->obj + i + 1, b->obj + i, (b->n - i) * sizeof *b->obj);
    b->obj[i] = o;
    b->n++;
    return 0;
}

/* A new object of data (taken over), its ETag computed unless given. */
static struct object *new_object(const char *key, char *data, size_t len, const char *etag,
                                 const char *ctype, const struct kv *kv, const struct s3_meta *meta,
                                 size_t nmeta)
{
    struct object *o = calloc(1, sizeof *o);
    if (!o) {
        free(data);
        return NULL;
    }
    o->key = strdup(key);
    o->data = data;
    o->len = len;
    if (etag)
        snprintf(o->etag, sizeof o->etag, "%s", etag);
    else
        md5_hex(data ? data : "", len, o->etag);
    o->mtime = time(NULL);
    o->ctype = strdup(ctype ? ctype : DEFAULT_TYPE);
    o->meta = kv_copy(kv, meta, nmeta);
    o->nmeta = o->meta ? nmeta : 0;
    if (!o->key || !o->ctype || (nmeta && !o->meta)) {
        object_free(o);
        return NULL;
    }
    return o;
}

static char *dup_bytes(const char *data, size_t len)
{
    char *p = malloc(len + 1);
    if (p) {
        if (len)
            memcpy(p, data, len);
        p[len] = '\0';
    }
    return p;
}

static struct bucket *add_bucket(const char *name)
{
    struct bucket *b = calloc(1, sizeof *b);
    struct bucket **v = realloc(S.b, (S.nb + 1) * sizeof *v);
    if (v)
        S.b = v;
    if (!b || !v || !(b->name = strdup(name))) {
        free(b);
        return NULL;
    }
    b->created = time(NULL);
    S.b[S.nb++] = b;
    return b;
}

static void bucket_free(struct bucket *b)
{
    for (size_t i = 0; i < b->n; i++)
        object_free(b->obj[i]);
    free(b->obj);
    free(b->name);
    free(b);
}

static void upload_free(struct upload *u)
{
    for (size_t i = 0; i < u->nparts; i++)
        free(u->parts[i].data);
    free(u->parts);
    free(u->id);
    free(u->bucket);
    free(u->key);
    free(u->ctype);
    kv_free(u->meta, u->nmeta);
    free(u);
}

static struct upload **find_upload(const char *bucket, const char *key, const char *id)
{
    for (struct upload **p = &S.uploads; *p; p = &(*p)->next)
        if (strcmp((*p)->id, id) == 0 && strcmp((*p)->bucket, bucket) == 0 &&
            strcmp((*p)->key, key) == 0)
            return p;
    return NULL;
}

/* ---- requests ---- */

/* Fill err as the client does for a server's error answer; the errno. */
static int answer_error(struct s3_error *err, const char *code, const char *message, int status)
{
    s3_error_set(err, code, message);
    err->http_status = status;
    return s3_errno_for(code, status);
}

static bool rule_fires(struct rule *r)
{
    if (r->nth && --r->nth == 0)
        return true;
    return r->rate > 0 && (double)rand_r(&r->seed) / RAND_MAX < r->rate;
}

/* Every request starts here: counted, delayed (no lock held), and failed
 * when a rule says so. */
static int begin(struct s3_client *c, enum fakes3_kind k, const char *bucket, const char *key,
                 struct s3_error *err)
{
    s3_error_clear(err);
    err->attempts = 1;
    snprintf(err->resource, sizeof err->resource, "%s/%s", bucket ? bucket : "", key ? key : "");
    atomic_fetch_add(&c->stats.requests, 1);
    struct rule fired = {0};
    pthread_mutex_lock(&S.mu);
    S.count[k]++;
    unsigned usec = S.latency[k] + S.latency[FAKES3_ANY];
    struct rule *rules[4] = {&S.nth[k], &S.nth[FAKES3_ANY], &S.rate[k], &S.rate[FAKES3_ANY]};
    for (int i = 0; i < 4 && !fired.status; i++)
        if (rule_fires(rules[i]))
            fired = *rules[i];
    pthread_mutex_unlock(&S.mu);
    if (usec)
        usleep(usec);
    return fired.status ? answer_error(err, fired.code, "injected by fakes3", fired.status) : 0;
}

/* Every request ends here: what the client counts and tells of a failure. */
static int finish(struct s3_client *c, int rc, struct s3_error *err)
{
    if (rc == 0)
        return 0;
    atomic_fetch_add(&c->stats.failures, 1);
    if (s3_error_throttled(err)) {
        atomic_fetch_add(&c->stats.throttled, 1);
        if (c->on_throttle)
            c->on_throttle(c->on_throttle_arg);
    }
    return rc;
}

static unsigned hostile(void)
{
    pthread_mutex_lock(&S.mu);
    unsigned h = S.hostile;
    pthread_mutex_unlock(&S.mu);
    return h;
}

/* The hostile flags for a listing of prefix. */
static unsigned hostile_for(const char *prefix)
{
    pthread_mutex_lock(&S.mu);
    const char *p = prefix ? prefix : "";
    bool match = strncmp(p, S.hostile_prefix, strlen(S.hostile_prefix)) == 0;
    unsigned h = match ? S.hostile : 0;
    pthread_mutex_unlock(&S.mu);
    return h;
}

/* An ETag as the client receives it: at most 79 bytes (http.c), and under
 * FAKES3_LONG_ETAG one of 200 bytes cut there. */
static void answer_etag(char out[80], const char *etag, unsigned flags)
{
    if (!out)
        return;
    if (!(flags & FAKES3_LONG_ETAG)) {
        snprintf(out, 80, "%s", etag);
        return;
    }
    char longer[201];
    memset(longer, 'f', 200);
    longer[200] = '\0';
    memcpy(longer, etag, strnlen(etag, 200));
    memcpy(out, longer, 79); /* http.c's copy_field */
    out[79] = '\0';
}

/* The bytes of a request body (memory or a file range), read before the
 * store's lock is taken. */
static int read_body(const struct s3_body *body, char **out, size_t *len, struct s3_error *err)
{
    size_t n = body ? (size_t)body->len : 0;
    char *p = malloc(n + 1);
    if (!p)
        return answer_error(err, "NoMemory", "out of memory", 0);
    if (body && body->fd < 0 && n)
        memcpy(p, body->data, n);
    for (size_t got = 0; body && body->fd >= 0 && got < n;) {
        ssize_t r = pread(body->fd, p + got, n - got, body->offset + (off_t)got);
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(p);
            s3_error_set(err, "BodyReadFailed", "the request body could not be read");
            return -e;
        }
        got += (size_t)r;
    }
    p[n] = '\0';
    *out = p;
    *len = n;
    return 0;
}

/* KeyTooLongError and MetadataTooLarge, as S3 checks a write. */
static int check_write(const char *key, const struct s3_write_opts *o, struct s3_error *err)
{
    if (strlen(key) > S3_KEY_MAX)
        return answer_error(err, "KeyTooLongError", "Your key is too long", 400);
    size_t total = 0;
    for (size_t i = 0; o && i < o->nmeta; i++)
        total += strlen(o->meta[i].name) + strlen(o->meta[i].value);
    if (total > META_MAX)
        return answer_error(err, "MetadataTooLarge", "metadata headers exceed 2 KB", 400);
    return 0;
}

static int no_bucket(struct s3_error *err)
{
    return answer_error(err, "NoSuchBucket", "The specified bucket does not exist", 404);
}

static int no_key(struct s3_error *err)
{
    return answer_error(err, "NoSuchKey", "The specified key does not exist.", 404);
}

/* The source of a copy, under the lock: present and, with if_match, of that
 * ETag. */
static int copy_source(const char *bucket, const char *key, const char *if_match,
                       struct object **out, struct s3_error *err)
{
    struct bucket *b = find_bucket(bucket);
    *out = b ? find_object(b, key) : NULL;
    if (!b)
        return no_bucket(err);
    if (!*out)
        return no_key(err);
    if (if_match && *if_match && strcmp(if_match, (*out)->etag) != 0)
        return answer_error(err, "PreconditionFailed",
                            "At least one of the pre-conditions you specified did not hold", 412);
    return 0;
}

/* begin() of the requests whose answer is a result document (CopyObject,
 * UploadPartCopy, CompleteMultipartUpload), which FAKES3_ERROR_IN_200
 * turns into a 200 with an error body; *flags: the hostile flags. */
static int begin_result(struct s3_client *c, enum fakes3_kind k, const char *bucket,
                        const char *key, unsigned *flags, struct s3_error *err)
{
    int rc = begin(c, k, bucket, key, err);
    *flags = hostile();
    if (rc == 0 && (*flags & FAKES3_ERROR_IN_200))
        rc = answer_error(err, "InternalError",
                          "We encountered an internal error. Please try again.", 200);
    return rc;
}

/* ---- client (request.c) ---- */

int s3_global_init(void)
{
    return 0;
}

int s3_client_new(const struct s3_client_options *opt, struct s3_client **out, struct s3_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return answer_error(err, "NoMemory", "out of memory", 0);
    (*out)->on_throttle = opt ? opt->on_throttle : NULL;
    (*out)->on_throttle_arg = opt ? opt->on_throttle_arg : NULL;
    return 0;
}

void s3_client_free(struct s3_client *c)
{
    free(c);
}

struct s3_stats *s3_client_stats(struct s3_client *c)
{
    return &c->stats;
}

void s3_client_set_throttle_cb(struct s3_client *c, void (*cb)(void *arg), void *arg)
{
    c->on_throttle = cb;
    c->on_throttle_arg = arg;
}

const char *s3_client_endpoint(const struct s3_client *c)
{
    (void)c;
    return "fakes3://memory";
}

/* ---- service and buckets ---- */

int s3_list_buckets(struct s3_client *c, struct s3_bucket **out, size_t *n, struct s3_error *err)
{
    *out = NULL;
    *n = 0;
    int rc = begin(c, FAKES3_LIST_BUCKETS, NULL, NULL, err);
    if (rc)
        return finish(c, rc, err);
    pthread_mutex_lock(&S.mu);
    *out = calloc(S.nb + 1, sizeof **out);
    for (size_t i = 0; *out && i < S.nb; i++) {
        (*out)[i].name = strdup(S.b[i]->name);
        (*out)[i].created = S.b[i]->created;
        *n = i + 1;
    }
    pthread_mutex_unlock(&S.mu);
    return finish(c, *out ? 0 : answer_error(err, "NoMemory", "out of memory", 0), err);
}

int s3_head_bucket(struct s3_client *c, const char *bucket, struct s3_error *err)
{
    int rc = begin(c, FAKES3_HEAD_BUCKET, bucket, NULL, err);
    pthread_mutex_lock(&S.mu);
    if (rc == 0 && !find_bucket(bucket))
        rc = no_bucket(err);
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

int s3_create_bucket(struct s3_client *c, const char *bucket, struct s3_error *err)
{
    int rc = begin(c, FAKES3_CREATE_BUCKET, bucket, NULL, err);
    pthread_mutex_lock(&S.mu);
    if (rc == 0 && find_bucket(bucket))
        rc = answer_error(err, "BucketAlreadyOwnedByYou", "bucket exists", 409);
    else if (rc == 0 && !add_bucket(bucket))
        rc = answer_error(err, "NoMemory", "out of memory", 0);
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

int s3_delete_bucket(struct s3_client *c, const char *bucket, struct s3_error *err)
{
    int rc = begin(c, FAKES3_DELETE_BUCKET, bucket, NULL, err);
    pthread_mutex_lock(&S.mu);
    struct bucket *b = find_bucket(bucket);
    if (rc == 0 && !b)
        rc = no_bucket(err);
    else if (rc == 0 && b->n)
        rc =
            answer_error(err, "BucketNotEmpty", "The bucket you tried to delete is not empty", 409);
    for (size_t i = 0; rc == 0 && i < S.nb; i++) {
        if (S.b[i] == b) {
            bucket_free(b);
            S.b[i] = S.b[--S.nb];
            break;
        }
    }
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

/* ---- listing ---- */

struct page_builder {
    struct s3_list_page *p;
    size_t cap;
};

static int page_add(struct page_builder *pb, const char *key, const struct object *o)
{
    struct s3_list_page *p = pb->p;
    char *k = strdup(key);
    if (!k)
        return -ENOMEM;
    if (o) {
        p->objects[p->nobjects++] =
            (struct s3_object){.key = k, .size = o->len, .mtime = {.tv_sec = o->mtime}};
        snprintf(p->objects[p->nobjects - 1].etag, 80, "%s", o->etag);
    } else {
        p->prefixes[p->nprefixes++] = k;
    }
    return 0;
}

/* Where a page after token starts ("K<key>" after an object, "P<prefix>"
 * after a common prefix, whose keys are skipped as well). */
static size_t page_start(const struct bucket *b, const char *prefix, const char *token,
                         const char **skip)
{
    *skip = NULL;
    if (!token || !*token || strcmp(token, LOOP_TOKEN) == 0)
        return lower_bound(b, prefix);
    size_t i = lower_bound(b, token + 1);
    if (i < b->n && strcmp(b->obj[i]->key, token + 1) == 0)
        i++;
    if (token[0] == 'P')
        *skip = token + 1;
    return i;
}

/* The entries of one page into pb; the last one's token. */
static int list_entries(const struct bucket *b, const char *prefix, const char *delim,
                        const char *token, size_t max, struct page_builder *pb)
{
    size_t plen = strlen(prefix), dlen = delim ? strlen(delim) : 0;
    const char *skip;
    char last[S3_KEY_MAX + 2] = "";
    bool last_is_prefix = false;
    int rc = 0;
    for (size_t i = page_start(b, prefix, token, &skip); rc == 0 && i < b->n; i++) {
        const struct object *o = b->obj[i];
        if (strncmp(o->key, prefix, plen) != 0)
            break;
        if (skip && strncmp(o->key, skip, strlen(skip)) == 0)
            continue;
        const char *d = dlen ? strstr(o->key + plen, delim) : NULL;
        size_t elen = d ? (size_t)(d - o->key) + dlen : strlen(o->key);
        if (d && last_is_prefix && strlen(last) == elen && strncmp(last, o->key, elen) == 0)
            continue; /* the same common prefix */
        if (pb->p->nobjects + pb->p->nprefixes == max) {
            pb->p->truncated = true;
            break;
        }
        snprintf(last, sizeof last, "%.*s", (int)elen, o->key);
        last_is_prefix = d != NULL;
        rc = page_add(pb, last, d ? NULL : o);
    }
    if (rc == 0 && pb->p->truncated &&
        asprintf(&pb->p->next_token, "%c%s", last_is_prefix ? 'P' : 'K', last) < 0)
        rc = -ENOMEM;
    return rc;
}

/* What FAKES3_FOREIGN_ENTRY, _SHORT_PREFIX and _REPEAT_TOKEN add. */
static int add_hostile(struct page_builder *pb, const char *prefix, const char *token,
                       unsigned flags)
{
    size_t plen = strlen(prefix);
    char bad[S3_KEY_MAX + 64];
    memset(bad, 'x', S3_KEY_MAX + 10);
    bad[S3_KEY_MAX + 10] = '\0';
    int rc = 0;
    if (flags & FAKES3_FOREIGN_ENTRY) {
        static const struct object none = {.etag = "0"};
        bool usable = plen && strncmp(FOREIGN_KEY, prefix, plen) != 0;
        rc = page_add(pb, usable ? FOREIGN_KEY : bad, &none);
    }
    if (rc == 0 && (flags & FAKES3_SHORT_PREFIX)) {
        if (plen)
            snprintf(bad, sizeof bad, "%.*s", (int)plen - 1, prefix);
        rc = page_add(pb, bad, NULL);
    }
    if (rc == 0 && (flags & FAKES3_REPEAT_TOKEN)) {
        free(pb->p->next_token);
        pb->p->truncated = true;
        pb->p->next_token = strdup(token && *token ? token : LOOP_TOKEN);
        rc = pb->p->next_token ? 0 : -ENOMEM;
    }
    return rc;
}

int s3_list_objects(struct s3_client *c, const char *bucket, const char *prefix,
                    const char *delimiter, const char *token, int max_keys,
                    struct s3_list_page *out, struct s3_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = begin(c, FAKES3_LIST, bucket, prefix, err);
    if (rc)
        return finish(c, rc, err);
    size_t max = max_keys > 0 && max_keys < MAX_KEYS ? (size_t)max_keys : MAX_KEYS;
    unsigned flags = hostile_for(prefix);
    struct page_builder pb = {out, max + 2};
    out->objects = calloc(pb.cap, sizeof *out->objects);
    out->prefixes = calloc(pb.cap, sizeof *out->prefixes);
    pthread_mutex_lock(&S.mu);
    struct bucket *b = find_bucket(bucket);
    if (!b)
        rc = no_bucket(err);
    else if (!out->objects || !out->prefixes)
        rc = -ENOMEM;
    else
        rc = list_entries(b, prefix ? prefix : "", delimiter, token, max, &pb);
    pthread_mutex_unlock(&S.mu);
    if (rc == 0)
        rc = add_hostile(&pb, prefix ? prefix : "", token, flags);
    /* the client's own check of every page (results.c) */
    if (rc == 0)
        rc = s3_list_page_check(out, prefix, err);
    if (rc)
        s3_list_page_free(out);
    return finish(c, rc, err);
}

/* ---- objects ---- */

/* The object's metadata as HeadObject hands it over (s3_head_free). */
static int head_meta(const struct object *o, struct s3_head *out)
{
    out->meta = o->nmeta ? calloc(o->nmeta, sizeof *out->meta) : NULL;
    if (o->nmeta && !out->meta)
        return -ENOMEM;
    for (size_t i = 0; i < o->nmeta; i++) {
        out->meta[i].name = strdup(o->meta[i].name);
        out->meta[i].value = strdup(o->meta[i].value);
        out->nmeta = i + 1;
        if (!out->meta[i].name || !out->meta[i].value)
            return -ENOMEM;
    }
    return 0;
}

int s3_head_object(struct s3_client *c, const char *bucket, const char *key, struct s3_head *out,
                   struct s3_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = begin(c, FAKES3_HEAD, bucket, key, err);
    if (rc)
        return finish(c, rc, err);
    unsigned flags = hostile();
    pthread_mutex_lock(&S.mu);
    struct object *o = find_object(find_bucket(bucket), key);
    if (!o) {
        rc = no_key(err); /* a HEAD's 404 has no body: the client says NoSuchKey */
    } else {
        out->size = o->len;
        answer_etag(out->etag, o->etag, flags);
        out->mtime.tv_sec = o->mtime;
        snprintf(out->content_type, sizeof out->content_type, "%s", o->ctype);
        rc = head_meta(o, out);
    }
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

int s3_get_object(struct s3_client *c, const char *bucket, const char *key, uint64_t offset,
                  size_t len, const char *if_match, char *dst, size_t *got, struct s3_error *err)
{
    *got = 0;
    struct object *o;
    int rc = begin(c, FAKES3_GET, bucket, key, err);
    pthread_mutex_lock(&S.mu);
    if (rc == 0)
        rc = copy_source(bucket, key, if_match, &o, err);
    if (rc == 0 && offset < o->len) {
        /* len 0: the whole object, from offset 0 (no Range header) */
        size_t from = len ? (size_t)offset : 0;
        size_t n = len && len < o->len - from ? len : o->len - from;
        memcpy(dst, o->data + from, n);
        *got = n;
    } /* at or past the end: InvalidRange, which the client makes 0 bytes */
    pthread_mutex_unlock(&S.mu);
    if (rc == 0)
        atomic_fetch_add(&c->stats.bytes_down, *got);
    return finish(c, rc, err);
}

int s3_get_object_buf(struct s3_client *c, const char *bucket, const char *key, struct sbuf *out,
                      size_t max, struct s3_error *err)
{
    struct object *o;
    int rc = begin(c, FAKES3_GET, bucket, key, err);
    pthread_mutex_lock(&S.mu);
    if (rc == 0)
        rc = copy_source(bucket, key, NULL, &o, err);
    if (rc == 0 && max && o->len > max) {
        s3_error_set(err, "BadResponse", "response body larger than expected");
        rc = -ENOSPC;
    } else if (rc == 0 && sbuf_append(out, o->data, o->len)) {
        rc = -ENOMEM;
    }
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

/* Conditions (If-None-Match, If-Match, per-key ETags) are ignored, as by a
 * server that does not honour them: the mount only sends what its probe
 * saw honoured, and the layer tests run no probe. */
int s3_put_object(struct s3_client *c, const char *bucket, const char *key,
                  const struct s3_body *body, const struct s3_write_opts *opts, char etag_out[80],
                  struct s3_error *err)
{
    return s3_put_object_cond(c, bucket, key, body, opts, false, etag_out, err);
}

int s3_put_object_cond(struct s3_client *c, const char *bucket, const char *key,
                       const struct s3_body *body, const struct s3_write_opts *opts,
                       bool if_none_match, char etag_out[80], struct s3_error *err)
{
    (void)if_none_match;
    char *data = NULL;
    size_t len = 0;
    int rc = begin(c, FAKES3_PUT, bucket, key, err);
    if (rc == 0)
        rc = check_write(key, opts, err);
    if (rc == 0)
        rc = read_body(body, &data, &len, err);
    if (rc)
        return finish(c, rc, err);
    unsigned flags = hostile();
    const char *type = opts && opts->content_type ? opts->content_type : DEFAULT_TYPE;
    pthread_mutex_lock(&S.mu);
    struct bucket *b = find_bucket(bucket);
    struct object *o = NULL;
    if (b)
        o = new_object(key, data, len, NULL, type, NULL, opts ? opts->meta : NULL,
                       opts ? opts->nmeta : 0);
    else
        free(data);
    if (!b)
        rc = no_bucket(err);
    else if (!o || store_object(b, o))
        rc = -ENOMEM;
    else
        answer_etag(etag_out, o->etag, flags);
    pthread_mutex_unlock(&S.mu);
    if (rc == 0)
        atomic_fetch_add(&c->stats.bytes_up, len);
    return finish(c, rc, err);
}

/* The copy of src onto dst_key of b, with src's metadata or rep's. */
static int copy_into(struct bucket *b, const char *dst_key, const struct object *src,
                     const struct s3_write_opts *rep, char etag_out[80], unsigned flags)
{
    char *data = dup_bytes(src->data, src->len);
    struct object *o =
        !data ? NULL
        : rep ? new_object(dst_key, data, src->len, NULL, rep->content_type, NULL, rep->meta,
                           rep->nmeta)
              : new_object(dst_key, data, src->len, NULL, src->ctype, src->meta, NULL, src->nmeta);
    if (!o || store_object(b, o)) {
        object_free(o);
        return -ENOMEM;
    }
    answer_etag(etag_out, o->etag, flags);
    return 0;
}

int s3_copy_object(struct s3_client *c, const char *src_bucket, const char *src_key,
                   const char *dst_bucket, const char *dst_key, const struct s3_copy_opts *opts,
                   char etag_out[80], struct s3_error *err)
{
    const struct s3_write_opts *rep = opts ? opts->replace : NULL;
    unsigned flags;
    int rc = begin_result(c, FAKES3_COPY, dst_bucket, dst_key, &flags, err);
    if (rc == 0)
        rc = check_write(dst_key, rep, err);
    if (rc)
        return finish(c, rc, err);
    struct object *src;
    pthread_mutex_lock(&S.mu);
    struct bucket *b = find_bucket(dst_bucket);
    rc = copy_source(src_bucket, src_key, opts ? opts->if_match : NULL, &src, err);
    if (rc == 0 && !b)
        rc = no_bucket(err);
    else if (rc == 0 && !rep && b == find_bucket(src_bucket) && strcmp(src_key, dst_key) == 0)
        rc = answer_error(err, "InvalidRequest",
                          "This copy request is illegal because it is trying to copy an object "
                          "to itself without changing the object's metadata",
                          400);
    else if (rc == 0)
        rc = copy_into(b, dst_key, src, rep, etag_out, flags);
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

/* Tags: stored as the document last put (the fake's HEAD reports no tag
 * count, so the filesystem asks only when a test puts tags itself). */
int s3_get_object_tagging(struct s3_client *c, const char *bucket, const char *key,
                          struct sbuf *xml, struct s3_error *err)
{
    int rc = begin(c, FAKES3_TAGGING, bucket, key, err);
    if (rc)
        return finish(c, rc, err);
    pthread_mutex_lock(&S.mu);
    struct object *o = find_object(find_bucket(bucket), key);
    if (!o)
        rc = no_key(err);
    else
        rc = sbuf_append_str(xml, o->tags ? o->tags : "<Tagging><TagSet></TagSet></Tagging>");
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

int s3_put_object_tagging(struct s3_client *c, const char *bucket, const char *key,
                          const struct sbuf *xml, struct s3_error *err)
{
    int rc = begin(c, FAKES3_TAGGING, bucket, key, err);
    if (rc)
        return finish(c, rc, err);
    char *doc = strndup(xml->data ? xml->data : "", xml->len);
    pthread_mutex_lock(&S.mu);
    struct object *o = find_object(find_bucket(bucket), key);
    if (!o) {
        rc = no_key(err);
    } else if (!doc) {
        rc = -ENOMEM;
    } else {
        free(o->tags);
        o->tags = doc;
        doc = NULL;
    }
    pthread_mutex_unlock(&S.mu);
    free(doc);
    return finish(c, rc, err);
}

int s3_delete_object(struct s3_client *c, const char *bucket, const char *key, const char *if_match,
                     struct s3_error *err)
{
    (void)if_match;
    int rc = begin(c, FAKES3_DELETE, bucket, key, err);
    pthread_mutex_lock(&S.mu);
    struct bucket *b = find_bucket(bucket);
    if (rc == 0 && !b)
        rc = no_bucket(err);
    else if (rc == 0)
        remove_object(b, key); /* a missing key is a success, as on S3 */
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

int s3_delete_objects(struct s3_client *c, const char *bucket, const char *const *keys,
                      const char *const *etags, size_t nkeys, struct s3_delete_error **errors,
                      size_t *nerrors, struct s3_error *err)
{
    (void)etags;
    *errors = NULL;
    *nerrors = 0;
    /* the client builds the request first: keys it cannot send never leave */
    struct sbuf body = SBUF_INIT;
    int rc = xml_build_delete(&body, keys, nkeys, true);
    sbuf_free(&body);
    if (rc) {
        s3_error_set(err, "InvalidKey", "a key cannot be sent in a DeleteObjects request");
        return rc;
    }
    rc = begin(c, FAKES3_DELETE_BATCH, bucket, NULL, err);
    pthread_mutex_lock(&S.mu);
    struct bucket *b = find_bucket(bucket);
    if (rc == 0 && !b)
        rc = no_bucket(err);
    for (size_t i = 0; rc == 0 && i < nkeys; i++)
        remove_object(b, keys[i]);
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

/* ---- multipart ---- */

int s3_mpu_create(struct s3_client *c, const char *bucket, const char *key,
                  const struct s3_write_opts *opts, char **upload_id, struct s3_error *err)
{
    *upload_id = NULL;
    int rc = begin(c, FAKES3_MPU_CREATE, bucket, key, err);
    if (rc == 0)
        rc = check_write(key, opts, err);
    if (rc)
        return finish(c, rc, err);
    struct upload *u = calloc(1, sizeof *u);
    pthread_mutex_lock(&S.mu);
    if (!find_bucket(bucket)) {
        rc = no_bucket(err);
    } else if (!u ||
               asprintf(&u->id, "fakes3-upload-%llu", (unsigned long long)++S.next_upload) < 0) {
        rc = -ENOMEM;
    } else {
        u->bucket = strdup(bucket);
        u->key = strdup(key);
        u->ctype = strdup(opts && opts->content_type ? opts->content_type : DEFAULT_TYPE);
        u->meta = kv_copy(NULL, opts ? opts->meta : NULL, opts ? opts->nmeta : 0);
        u->nmeta = u->meta ? opts->nmeta : 0;
        *upload_id = strdup(u->id);
        u->next = S.uploads;
        S.uploads = u;
        u = NULL;
    }
    pthread_mutex_unlock(&S.mu);
    if (u) {
        free(u->id);
        free(u);
    }
    return finish(c, rc, err);
}

/* Store a part (data taken over) in the upload, replacing one of its
 * number. Lock held. */
static int store_part(const char *bucket, const char *key, const char *upload_id, int number,
                      char *data, size_t len, char etag_out[80], unsigned flags,
                      struct s3_error *err)
{
    struct upload **pu = find_upload(bucket, key, upload_id);
    if (!pu) {
        free(data);
        return answer_error(err, "NoSuchUpload", "The specified upload does not exist", 404);
    }
    if (number < 1 || number > 10000) {
        free(data);
        return answer_error(err, "InvalidArgument", "Part number must be 1-10000", 400);
    }
    struct upload *u = *pu;
    struct part *p = NULL;
    for (size_t i = 0; i < u->nparts && !p; i++)
        if (u->parts[i].number == number)
            p = &u->parts[i];
    if (!p) {
        struct part *v = realloc(u->parts, (u->nparts + 1) * sizeof *v);
        if (!v) {
            free(data);
            return -ENOMEM;
        }
        u->parts = v;
        p = &u->parts[u->nparts++];
        *p = (struct part){.number = number};
    }
    free(p->data);
    p->data = data;
    p->len = len;
    md5_hex(data, len, p->etag);
    answer_etag(etag_out, p->etag, flags);
    return 0;
}

int s3_mpu_upload_part(struct s3_client *c, const char *bucket, const char *key,
                       const char *upload_id, int part, const struct s3_body *body,
                       char etag_out[80], struct s3_error *err)
{
    char *data = NULL;
    size_t len = 0;
    int rc = begin(c, FAKES3_MPU_PART, bucket, key, err);
    if (rc == 0)
        rc = read_body(body, &data, &len, err);
    if (rc)
        return finish(c, rc, err);
    unsigned flags = hostile();
    pthread_mutex_lock(&S.mu);
    rc = store_part(bucket, key, upload_id, part, data, len, etag_out, flags, err);
    pthread_mutex_unlock(&S.mu);
    if (rc == 0)
        atomic_fetch_add(&c->stats.bytes_up, len);
    return finish(c, rc, err);
}

int s3_mpu_copy_part(struct s3_client *c, const char *bucket, const char *key,
                     const char *upload_id, int part, const char *src_bucket, const char *src_key,
                     uint64_t first, uint64_t last, const char *if_match, char etag_out[80],
                     struct s3_error *err)
{
    unsigned flags;
    int rc = begin_result(c, FAKES3_MPU_COPY_PART, bucket, key, &flags, err);
    if (rc)
        return finish(c, rc, err);
    struct object *src;
    pthread_mutex_lock(&S.mu);
    rc = copy_source(src_bucket, src_key, if_match, &src, err);
    if (rc == 0 && (first > last || last >= src->len))
        rc = answer_error(err, "InvalidRange", "The requested range is not satisfiable", 416);
    char *data = rc == 0 ? dup_bytes(src->data + first, (size_t)(last - first + 1)) : NULL;
    if (rc == 0 && !data)
        rc = -ENOMEM;
    if (rc == 0)
        rc = store_part(bucket, key, upload_id, part, data, (size_t)(last - first + 1), etag_out,
                        flags, err);
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

static const struct part *part_of(const struct upload *u, int number)
{
    for (size_t i = 0; i < u->nparts; i++)
        if (u->parts[i].number == number)
            return &u->parts[i];
    return NULL;
}

/* The object made of the listed parts: checks as S3's, the ETag as S3's
 * (MD5 of the parts' binary MD5s, "-N"). Lock held; the upload goes on
 * success. */
static int complete(struct upload **pu, const struct s3_part *parts, size_t nparts,
                    char etag_out[80], unsigned flags, struct s3_error *err)
{
    struct upload *u = *pu;
    size_t total = 0;
    for (size_t i = 0; i < nparts; i++) {
        const struct part *p = part_of(u, parts[i].number);
        if (!p || strcmp(p->etag, parts[i].etag) != 0)
            return answer_error(err, "InvalidPart", "One or more of the parts were not found", 400);
        if (i + 1 < nparts && p->len < S.min_part)
            return answer_error(err, "EntityTooSmall",
                                "Your proposed upload is smaller than "
                                "the minimum allowed object size",
                                400);
        total += p->len;
    }
    char *data = malloc(total + 1);
    unsigned char *mds = malloc(16 * nparts);
    if (!data || !mds) {
        free(data);
        free(mds);
        return -ENOMEM;
    }
    size_t at = 0;
    for (size_t i = 0; i < nparts; i++) {
        const struct part *p = part_of(u, parts[i].number);
        memcpy(data + at, p->data, p->len);
        at += p->len;
        for (int j = 0; j < 16; j++)
            sscanf(p->etag + 2 * j, "%2hhx", &mds[16 * i + (size_t)j]);
    }
    char etag[80];
    md5_hex(mds, 16 * nparts, etag);
    free(mds);
    snprintf(etag + 32, sizeof etag - 32, "-%zu", nparts);
    struct object *o = new_object(u->key, data, total, etag, u->ctype, u->meta, NULL, u->nmeta);
    struct bucket *b = find_bucket(u->bucket);
    if (!o || !b || store_object(b, o)) {
        object_free(o);
        return b ? -ENOMEM : no_bucket(err);
    }
    answer_etag(etag_out, etag, flags);
    *pu = u->next;
    upload_free(u);
    return 0;
}

int s3_mpu_complete(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                    const struct s3_part *parts, size_t nparts, bool if_none_match,
                    char etag_out[80], struct s3_error *err)
{
    (void)if_none_match;
    /* the client builds the part list first (numbers ascending, 1..10000) */
    struct sbuf body = SBUF_INIT;
    int rc = xml_build_complete_multipart(&body, parts, nparts);
    sbuf_free(&body);
    if (rc) {
        s3_error_set(err, "InvalidPart", "could not build CompleteMultipartUpload (part list)");
        return rc;
    }
    unsigned flags;
    rc = begin_result(c, FAKES3_MPU_COMPLETE, bucket, key, &flags, err);
    if (rc)
        return finish(c, rc, err);
    pthread_mutex_lock(&S.mu);
    struct upload **pu = find_upload(bucket, key, upload_id);
    rc = pu ? complete(pu, parts, nparts, etag_out, flags, err)
            : answer_error(err, "NoSuchUpload", "The specified upload does not exist", 404);
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

int s3_mpu_abort(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                 struct s3_error *err)
{
    int rc = begin(c, FAKES3_MPU_ABORT, bucket, key, err);
    pthread_mutex_lock(&S.mu);
    struct upload **pu = rc ? NULL : find_upload(bucket, key, upload_id);
    if (pu) {
        struct upload *u = *pu;
        *pu = u->next;
        upload_free(u);
    } else if (rc == 0) {
        rc = answer_error(err, "NoSuchUpload", "The specified upload does not exist", 404);
    }
    pthread_mutex_unlock(&S.mu);
    return finish(c, rc, err);
}

/* ---- control (fakes3.h) ---- */

void fakes3_reset(void)
{
    pthread_mutex_lock(&S.mu);
    for (size_t i = 0; i < S.nb; i++)
        bucket_free(S.b[i]);
    free(S.b);
    while (S.uploads) {
        struct upload *u = S.uploads;
        S.uploads = u->next;
        upload_free(u);
    }
    S.b = NULL;
    S.nb = 0;
    S.next_upload = 0;
    memset(S.count, 0, sizeof S.count);
    memset(S.latency, 0, sizeof S.latency);
    memset(S.nth, 0, sizeof S.nth);
    memset(S.rate, 0, sizeof S.rate);
    S.hostile = 0;
    S.hostile_prefix[0] = '\0';
    S.min_part = 5u << 20;
    pthread_mutex_unlock(&S.mu);
}

int fakes3_create_bucket(const char *bucket)
{
    pthread_mutex_lock(&S.mu);
    int rc = find_bucket(bucket) ? -EEXIST : add_bucket(bucket) ? 0 : -ENOMEM;
    pthread_mutex_unlock(&S.mu);
    return rc;
}

int fakes3_put_meta(const char *bucket, const char *key, const void *data, size_t len,
                    const char *content_type, const struct s3_meta *meta, size_t nmeta)
{
    char *copy = dup_bytes(data, len);
    pthread_mutex_lock(&S.mu);
    struct bucket *b = find_bucket(bucket);
    struct object *o =
        b && copy ? new_object(key, copy, len, NULL, content_type, NULL, meta, nmeta) : NULL;
    int rc = !b ? -ENOENT : !o ? -ENOMEM : store_object(b, o);
    pthread_mutex_unlock(&S.mu);
    if (!o && !b)
        free(copy);
    return rc;
}

int fakes3_put(const char *bucket, const char *key, const void *data, size_t len)
{
    return fakes3_put_meta(bucket, key, data, len, NULL, NULL, 0);
}

int fakes3_get(const char *bucket, const char *key, char **data, size_t *len)
{
    pthread_mutex_lock(&S.mu);
    struct object *o = find_object(find_bucket(bucket), key);
    *data = o ? dup_bytes(o->data, o->len) : NULL;
    *len = o ? o->len : 0;
    pthread_mutex_unlock(&S.mu);
    return !o ? -ENOENT : *data ? 0 : -ENOMEM;
}

bool fakes3_exists(const char *bucket, const char *key)
{
    pthread_mutex_lock(&S.mu);
    bool yes = find_object(find_bucket(bucket), key) != NULL;
    pthread_mutex_unlock(&S.mu);
    return yes;
}

int fakes3_meta(const char *bucket, const char *key, const char *name, char *out, size_t size)
{
    pthread_mutex_lock(&S.mu);
    struct object *o = find_object(find_bucket(bucket), key);
    int rc = o ? -ENODATA : -ENOENT;
    for (size_t i = 0; o && i < o->nmeta && rc; i++)
        if (strcmp(o->meta[i].name, name) == 0)
            rc = snprintf(out, size, "%s", o->meta[i].value) < 0 ? -EIO : 0;
    pthread_mutex_unlock(&S.mu);
    return rc;
}

int fakes3_etag(const char *bucket, const char *key, char out[80])
{
    pthread_mutex_lock(&S.mu);
    struct object *o = find_object(find_bucket(bucket), key);
    if (o)
        snprintf(out, 80, "%s", o->etag);
    pthread_mutex_unlock(&S.mu);
    return o ? 0 : -ENOENT;
}

size_t fakes3_keys(const char *bucket, const char *prefix, char *out, size_t size)
{
    const char *pre = prefix ? prefix : "";
    size_t n = 0, at = 0;
    if (size)
        out[0] = '\0';
    pthread_mutex_lock(&S.mu);
    struct bucket *b = find_bucket(bucket);
    for (size_t i = b ? lower_bound(b, pre) : 0; b && i < b->n; i++) {
        if (strncmp(b->obj[i]->key, pre, strlen(pre)) != 0)
            break;
        if (at < size)
            at += (size_t)snprintf(out + at, size - at, "%s%s", n ? " " : "", b->obj[i]->key);
        n++;
    }
    pthread_mutex_unlock(&S.mu);
    return n;
}

size_t fakes3_uploads(void)
{
    size_t n = 0;
    pthread_mutex_lock(&S.mu);
    for (struct upload *u = S.uploads; u; u = u->next)
        n++;
    pthread_mutex_unlock(&S.mu);
    return n;
}

uint64_t fakes3_count(enum fakes3_kind k)
{
    uint64_t n = 0;
    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < FAKES3_NKINDS; i++)
        if (k == FAKES3_ANY || (int)k == i)
            n += S.count[i];
    pthread_mutex_unlock(&S.mu);
    return n;
}

void fakes3_count_reset(void)
{
    pthread_mutex_lock(&S.mu);
    memset(S.count, 0, sizeof S.count);
    pthread_mutex_unlock(&S.mu);
}

void fakes3_set_latency(enum fakes3_kind k, unsigned usec)
{
    pthread_mutex_lock(&S.mu);
    S.latency[k <= FAKES3_ANY ? k : FAKES3_ANY] = usec;
    pthread_mutex_unlock(&S.mu);
}

static void set_rule(struct rule *r, unsigned nth, double rate, unsigned seed, const char *code,
                     int status)
{
    pthread_mutex_lock(&S.mu);
    *r = (struct rule){.nth = nth, .rate = rate, .seed = seed, .status = status};
    snprintf(r->code, sizeof r->code, "%s", code ? code : "");
    pthread_mutex_unlock(&S.mu);
}

void fakes3_fail_nth(enum fakes3_kind k, unsigned n, const char *code, int status)
{
    set_rule(&S.nth[k <= FAKES3_ANY ? k : FAKES3_ANY], n, 0, 0, code, status);
}

void fakes3_fail_rate(enum fakes3_kind k, double rate, const char *code, int status, unsigned seed)
{
    set_rule(&S.rate[k <= FAKES3_ANY ? k : FAKES3_ANY], 0, rate, seed, code, status);
}

void fakes3_set_hostile(unsigned flags)
{
    pthread_mutex_lock(&S.mu);
    S.hostile = flags;
    pthread_mutex_unlock(&S.mu);
}

void fakes3_set_min_part(size_t bytes)
{
    pthread_mutex_lock(&S.mu);
    S.min_part = bytes;
    pthread_mutex_unlock(&S.mu);
}

void fakes3_set_hostile_prefix(const char *prefix)
{
    pthread_mutex_lock(&S.mu);
    snprintf(S.hostile_prefix, sizeof S.hostile_prefix, "%s", prefix ? prefix : "");
    pthread_mutex_unlock(&S.mu);
}
