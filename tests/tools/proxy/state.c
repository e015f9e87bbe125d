/* state.c - S3 request kinds, run-time configuration and counters of s3proxy.
 *
 * Connection threads read the configuration and bump counters while the control API
 * rewrites both, so everything mutable in this file lives behind one mutex. */
#include "s3proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MS_MAX 86400000L /* one day: anything longer is a typo */

static const char *const kind_names[KIND_COUNT] = {
    "ListBuckets",
    "ListObjects",
    "ListMultipartUploads",
    "GetObject",
    "HeadObject",
    "HeadBucket",
    "PutObject",
    "CopyObject",
    "UploadPart",
    "UploadPartCopy",
    "CreateMultipartUpload",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "DeleteObject",
    "DeleteObjects",
    "CreateBucket",
    "DeleteBucket",
    "Other",
};

static const char *const fault_names[FAULT_COUNT] = {"503", "500", "reset", "stall"};

/* Query parameters that make a request on a bucket or object something other than the
 * plain data operation (ACLs, tagging, versioning, ListParts...): those count as Other. */
static const char *const subresources[] = {
    "acl",         "attributes",     "cors",    "delete",       "encryption",  "legal-hold",
    "lifecycle",   "location",       "logging", "notification", "object-lock", "policy",
    "replication", "requestPayment", "restore", "retention",    "select",      "tagging",
    "torrent",     "uploadId",       "uploads", "versioning",   "versions",    "website",
};

struct config {
    long delay_ms, jitter_ms, stall_ms;
    long kind_delay[KIND_COUNT]; /* -1: use delay_ms */
    double fault_rate;
    long fault_count;      /* faults still to inject; -1: no end */
    unsigned faults;       /* bit per enum fault */
    unsigned fault_kinds;  /* bit per enum kind; 0 means every kind */
    int mangle;            /* enum mangle, applied to every answer of mangle_kinds */
    unsigned mangle_kinds; /* bit per enum kind; 0 means every kind */
    unsigned f412_kinds;   /* bit per enum kind; 0: none */
    char f412_keys[512];   /* comma-separated substrings of the target or key */
    char f412_header[64];  /* header the request must carry; "": any request */
    long f412_count;       /* answers still to give */
};

struct counters {
    uint64_t requests, req_bytes, resp_bytes;
    uint64_t inflight, inflight_max; /* of this kind: being served, and the most since reset */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct config cfg;
static struct counters per_kind[KIND_COUNT];
static uint64_t faults_done[FAULT_COUNT];
static uint64_t done_412;
static uint64_t inflight, inflight_max; /* S3 requests being served now, and the most since reset */
static uint64_t rng_state;
static unsigned long next_id;

const char *kind_name(int kind)
{
    return (kind >= 0 && kind < KIND_COUNT) ? kind_names[kind] : "?";
}

const char *fault_name(int fault)
{
    return (fault >= 0 && fault < FAULT_COUNT) ? fault_names[fault] : "-";
}

static int kind_parse(const char *s, size_t n)
{
    for (int k = 0; k < KIND_COUNT; k++)
        if (strlen(kind_names[k]) == n && strncasecmp(kind_names[k], s, n) == 0)
            return k;
    return -1;
}

/* splitmix64 spreads any seed, 0 included, into a usable xorshift state. */
static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* xorshift64*: one shared stream, so a --seed replays the same fault sequence for the
 * same request order. Caller holds lock. */
static uint64_t rng_next(void)
{
    uint64_t x = rng_state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * 0x1.0p-53;
}

void state_init(void)
{
    cfg.stall_ms = 10000;
    cfg.fault_count = -1;
    cfg.mangle = M_NONE;
    /* Stalls cost stall_ms each, so they are opt-in: --faults must name them. */
    cfg.faults = (1u << F_503) | (1u << F_500) | (1u << F_RESET);
    for (int k = 0; k < KIND_COUNT; k++)
        cfg.kind_delay[k] = -1;
    state_seed(0);
}

void state_seed(uint64_t seed)
{
    pthread_mutex_lock(&lock);
    rng_state = splitmix64(seed);
    if (rng_state == 0)
        rng_state = 1;
    pthread_mutex_unlock(&lock);
}

/* ---- classification ---- */

/* Whether query string q has a parameter called name, with or without a value. */
static int has_param(const char *q, const char *name)
{
    size_t n = strlen(name);

    while (*q) {
        size_t len = strcspn(q, "&");
        size_t nlen = strcspn(q, "=&");
        if (nlen == n && strncmp(q, name, n) == 0)
            return 1;
        q += len;
        if (*q == '&')
            q++;
    }
    return 0;
}

static int has_subresource(const char *q)
{
    for (size_t i = 0; i < sizeof(subresources) / sizeof(subresources[0]); i++)
        if (has_param(q, subresources[i]))
            return 1;
    return 0;
}

/* Virtual-hosted style: Host is BUCKET.something, unless it is an IP literal or
 * localhost (then the bucket is the first path segment). */
static int host_is_vhost(const char *host)
{
    char h[256];
    struct in_addr a;
    size_t n = strcspn(host, ":");

    if (host[0] == '[' || n == 0 || n >= sizeof(h))
        return 0;
    memcpy(h, host, n);
    h[n] = '\0';
    if (strcasecmp(h, "localhost") == 0 || inet_pton(AF_INET, h, &a) == 1)
        return 0;
    const char *dot = strchr(h, '.');
    return dot != NULL && dot != h;
}

struct s3target {
    int bucket, key;   /* whether the request names a bucket / an object key */
    const char *query; /* after '?', or "" */
};

static void split_target(const char *target, const char *host, struct s3target *t)
{
    const char *qm = strchr(target, '?');
    const char *p = target[0] == '/' ? target + 1 : target;
    size_t first = strcspn(p, "/?");

    t->query = qm ? qm + 1 : "";
    if (host_is_vhost(host)) {
        t->bucket = 1;
        t->key = strcspn(p, "?") > 0;
        return;
    }
    t->bucket = first > 0;
    t->key = p[first] == '/' && strcspn(p + first + 1, "?") > 0;
}

static int classify_get(const struct s3target *t)
{
    if (!t->bucket)
        return K_LIST_BUCKETS;
    if (t->key)
        return has_subresource(t->query) ? K_OTHER : K_GET_OBJECT;
    if (has_param(t->query, "uploads"))
        return K_LIST_MULTIPART_UPLOADS;
    return has_subresource(t->query) ? K_OTHER : K_LIST_OBJECTS;
}

static int classify_put(const struct s3target *t, int copy_source)
{
    if (!t->bucket)
        return K_OTHER;
    if (!t->key)
        return has_subresource(t->query) ? K_OTHER : K_CREATE_BUCKET;
    if (has_param(t->query, "partNumber"))
        return copy_source ? K_UPLOAD_PART_COPY : K_UPLOAD_PART;
    if (has_subresource(t->query))
        return K_OTHER;
    return copy_source ? K_COPY_OBJECT : K_PUT_OBJECT;
}

static int classify_post(const struct s3target *t)
{
    if (t->key && has_param(t->query, "uploads"))
        return K_CREATE_MPU;
    if (t->key && has_param(t->query, "uploadId"))
        return K_COMPLETE_MPU;
    if (t->bucket && !t->key && has_param(t->query, "delete"))
        return K_DELETE_OBJECTS;
    return K_OTHER;
}

static int classify_delete(const struct s3target *t)
{
    if (!t->bucket)
        return K_OTHER;
    if (t->key && has_param(t->query, "uploadId"))
        return K_ABORT_MPU;
    if (has_subresource(t->query))
        return K_OTHER;
    return t->key ? K_DELETE_OBJECT : K_DELETE_BUCKET;
}

int classify(const char *method, const char *target, const char *host, int copy_source)
{
    struct s3target t;

    split_target(target, host, &t);
    if (strcmp(method, "GET") == 0)
        return classify_get(&t);
    if (strcmp(method, "HEAD") == 0)
        return !t.bucket ? K_OTHER : t.key ? K_HEAD_OBJECT : K_HEAD_BUCKET;
    if (strcmp(method, "PUT") == 0)
        return classify_put(&t, copy_source);
    if (strcmp(method, "POST") == 0)
        return classify_post(&t);
    if (strcmp(method, "DELETE") == 0)
        return classify_delete(&t);
    return K_OTHER;
}

/* ---- configuration ---- */

static int parse_ms(const char *v, long *out)
{
    char *end;

    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < 0 || n > MS_MAX)
        return -EINVAL;
    *out = n;
    return 0;
}

static int parse_rate(const char *v, double *out)
{
    char *end;

    errno = 0;
    double r = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(r >= 0.0 && r <= 1.0))
        return -EINVAL;
    *out = r;
    return 0;
}

/* Comma list of names -> bitmask; lookup maps one name to its bit or -1. */
static int parse_list(const char *v, int (*lookup)(const char *, size_t), unsigned *out)
{
    unsigned mask = 0;

    while (*v) {
        size_t n = strcspn(v, ",");
        if (n > 0) {
            int bit = lookup(v, n);
            if (bit < 0)
                return -EINVAL;
            mask |= 1u << bit;
        }
        v += n;
        if (*v == ',')
            v++;
    }
    *out = mask;
    return 0;
}

static int fault_lookup(const char *s, size_t n)
{
    for (int f = 0; f < FAULT_COUNT; f++)
        if (strlen(fault_names[f]) == n && strncasecmp(fault_names[f], s, n) == 0)
            return f;
    return -1;
}

static int config_apply(struct config *c, const char *name, const char *v)
{
    if (strcmp(name, "delay_ms") == 0)
        return parse_ms(v, &c->delay_ms);
    if (strcmp(name, "jitter_ms") == 0)
        return parse_ms(v, &c->jitter_ms);
    if (strcmp(name, "stall_ms") == 0)
        return parse_ms(v, &c->stall_ms);
    if (strcmp(name, "fault_rate") == 0)
        return parse_rate(v, &c->fault_rate);
    /* exactly N faults, then none (a test that needs one SlowDown, not a
     * second one while it turns them off); -1: no end */
    if (strcmp(name, "fault_count") == 0)
        return strcmp(v, "-1") == 0 ? (c->fault_count = -1, 0) : parse_ms(v, &c->fault_count);
    if (strcmp(name, "faults") == 0)
        return strcmp(v, "none") == 0 ? (c->faults = 0, 0)
                                      : parse_list(v, fault_lookup, &c->faults);
    if (strcmp(name, "fault_kinds") == 0)
        return strcmp(v, "all") == 0 ? (c->fault_kinds = 0, 0)
                                     : parse_list(v, kind_parse, &c->fault_kinds);
    if (strcmp(name, "mangle") == 0) {
        int m = strcmp(v, "none") == 0 ? M_NONE : mangle_parse(v, strlen(v));
        if (m < 0 && strcmp(v, "none") != 0)
            return -EINVAL;
        c->mangle = m;
        return 0;
    }
    if (strcmp(name, "mangle_kinds") == 0)
        return strcmp(v, "all") == 0 ? (c->mangle_kinds = 0, 0)
                                     : parse_list(v, kind_parse, &c->mangle_kinds);
    if (strcmp(name, "fail412_kinds") == 0)
        return strcmp(v, "none") == 0 ? (c->f412_kinds = 0, 0)
                                      : parse_list(v, kind_parse, &c->f412_kinds);
    if (strcmp(name, "fail412_keys") == 0)
        return snprintf(c->f412_keys, sizeof c->f412_keys, "%s", v) < (int)sizeof c->f412_keys
                   ? 0
                   : -EINVAL;
    if (strcmp(name, "fail412_header") == 0)
        return snprintf(c->f412_header, sizeof c->f412_header, "%s", v) < (int)sizeof c->f412_header
                   ? 0
                   : -EINVAL;
    if (strcmp(name, "fail412_count") == 0)
        return parse_ms(v, &c->f412_count);
    if (strncmp(name, "delay.", 6) == 0) {
        int k = kind_parse(name + 6, strlen(name + 6));
        if (k < 0)
            return -EINVAL;
        if (v[0] == '\0' || strcmp(v, "-1") == 0) {
            c->kind_delay[k] = -1; /* back to delay_ms */
            return 0;
        }
        return parse_ms(v, &c->kind_delay[k]);
    }
    return -EINVAL;
}

int state_set(const char *name, const char *value)
{
    pthread_mutex_lock(&lock);
    int rc = config_apply(&cfg, name, value);
    pthread_mutex_unlock(&lock);
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes n bytes of src (curl users may well write %2C for commas). */
static int url_decode(char *dst, size_t cap, const char *src, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)src[i];
        if (ch == '%') {
            int hi = i + 2 < n ? hexval(src[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= cap || ch == 0)
            return -EINVAL;
        dst[o++] = (char)ch;
    }
    dst[o] = '\0';
    return 0;
}

static void appendf(char *out, size_t cap, size_t *n, const char *fmt, ...)
{
    va_list ap;

    if (*n + 1 >= cap)
        return;
    va_start(ap, fmt);
    int w = vsnprintf(out + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (w > 0)
        *n += (size_t)w < cap - *n ? (size_t)w : cap - *n - 1;
}

static void append_list(char *out, size_t cap, size_t *n, unsigned mask, const char *const *names,
                        int count, const char *empty)
{
    const char *sep = "";

    if (mask == 0)
        appendf(out, cap, n, "%s", empty);
    for (int i = 0; i < count; i++) {
        if (mask & (1u << i)) {
            appendf(out, cap, n, "%s%s", sep, names[i]);
            sep = ",";
        }
    }
    appendf(out, cap, n, "\n");
}

/* Caller holds lock. */
static size_t config_text(const struct config *c, char *out, size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    appendf(out, cap, &n, "delay_ms %ld\njitter_ms %ld\nfault_rate %g\nfault_count %ld\nfaults ",
            c->delay_ms, c->jitter_ms, c->fault_rate, c->fault_count);
    append_list(out, cap, &n, c->faults, fault_names, FAULT_COUNT, "none");
    appendf(out, cap, &n, "fault_kinds ");
    append_list(out, cap, &n, c->fault_kinds, kind_names, KIND_COUNT, "all");
    appendf(out, cap, &n, "stall_ms %ld\nmangle %s\nmangle_kinds ", c->stall_ms,
            mangle_name(c->mangle));
    append_list(out, cap, &n, c->mangle_kinds, kind_names, KIND_COUNT, "all");
    appendf(out, cap, &n, "fail412_kinds ");
    append_list(out, cap, &n, c->f412_kinds, kind_names, KIND_COUNT, "none");
    appendf(out, cap, &n, "fail412_keys %s\nfail412_header %s\nfail412_count %ld\n", c->f412_keys,
            c->f412_header, c->f412_count);
    for (int k = 0; k < KIND_COUNT; k++)
        if (c->kind_delay[k] >= 0)
            appendf(out, cap, &n, "delay.%s %ld\n", kind_names[k], c->kind_delay[k]);
    return n;
}

size_t state_config_text(char *out, size_t cap)
{
    pthread_mutex_lock(&lock);
    size_t n = config_text(&cfg, out, cap);
    pthread_mutex_unlock(&lock);
    return n;
}

/* Decodes and applies one name=value pair of a control query to c. */
static int configure_pair(struct config *c, const char *p, size_t len)
{
    char name[128], value[1024];
    size_t nlen = strcspn(p, "=&");

    if (nlen > len)
        nlen = len;
    size_t voff = nlen < len ? nlen + 1 : len;
    if (url_decode(name, sizeof(name), p, nlen) < 0 ||
        url_decode(value, sizeof(value), p + voff, len - voff) < 0)
        return -EINVAL;
    return config_apply(c, name, value);
}

/* All parameters apply together or, if any is bad, none does. out gets the resulting
 * configuration, or the offending parameter. */
int state_configure(const char *query, char *out, size_t cap)
{
    int rc = 0;

    pthread_mutex_lock(&lock);
    struct config next = cfg;
    for (const char *p = query; *p && rc == 0;) {
        size_t len = strcspn(p, "&");
        if (len > 0 && (rc = configure_pair(&next, p, len)) < 0)
            snprintf(out, cap, "bad parameter: %.*s\n", (int)len, p);
        p += len;
        if (*p == '&')
            p++;
    }
    if (rc == 0) {
        cfg = next;
        config_text(&cfg, out, cap);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

/* ---- counters ---- */

size_t state_stats(char *out, size_t cap)
{
    size_t n = 0;
    uint64_t total = 0;

    out[0] = '\0';
    pthread_mutex_lock(&lock);
    for (int k = 0; k < KIND_COUNT; k++) {
        const struct counters *s = &per_kind[k];
        if (s->requests == 0)
            continue;
        appendf(out, cap, &n, "%s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", kind_names[k],
                s->requests, s->req_bytes, s->resp_bytes);
        total += s->requests;
    }
    appendf(out, cap, &n, "total %" PRIu64 "\n", total);
    for (int f = 0; f < FAULT_COUNT; f++)
        appendf(out, cap, &n, "fault.%s %" PRIu64 "\n", fault_names[f], faults_done[f]);
    appendf(out, cap, &n, "fault.412 %" PRIu64 "\n", done_412);
    appendf(out, cap, &n, "inflight %" PRIu64 "\ninflight_max %" PRIu64 "\n", inflight,
            inflight_max);
    for (int k = 0; k < KIND_COUNT; k++)
        if (per_kind[k].inflight_max)
            appendf(out, cap, &n, "inflight_max.%s %" PRIu64 "\n", kind_names[k],
                    per_kind[k].inflight_max);
    pthread_mutex_unlock(&lock);
    return n;
}

void state_reset(void)
{
    pthread_mutex_lock(&lock);
    for (int k = 0; k < KIND_COUNT; k++) /* requests being served stay counted */
        per_kind[k] = (struct counters){.inflight = per_kind[k].inflight,
                                        .inflight_max = per_kind[k].inflight};
    memset(faults_done, 0, sizeof(faults_done));
    done_412 = 0;
    inflight_max = inflight;
    pthread_mutex_unlock(&lock);
}

/* Caller holds lock. */
static int pick_fault(int kind)
{
    int enabled[FAULT_COUNT], n = 0;

    if (cfg.fault_rate <= 0.0 || cfg.faults == 0 || cfg.fault_count == 0)
        return F_NONE;
    if (cfg.fault_kinds != 0 && !(cfg.fault_kinds & (1u << kind)))
        return F_NONE;
    if (rng_unit() >= cfg.fault_rate)
        return F_NONE;
    for (int f = 0; f < FAULT_COUNT; f++)
        if (cfg.faults & (1u << f))
            enabled[n++] = f;
    if (cfg.fault_count > 0)
        cfg.fault_count--;
    return enabled[rng_next() % (uint64_t)n];
}

/* Counts an S3 request and draws its fault and delay in one go. */
void state_begin(int kind, struct decision *d)
{
    pthread_mutex_lock(&lock);
    struct counters *k = &per_kind[kind];
    k->requests++;
    if (++inflight > inflight_max)
        inflight_max = inflight;
    if (++k->inflight > k->inflight_max)
        k->inflight_max = k->inflight;
    d->fault = pick_fault(kind);
    if (d->fault != F_NONE)
        faults_done[d->fault]++;
    d->delay_ms = cfg.kind_delay[kind] >= 0 ? cfg.kind_delay[kind] : cfg.delay_ms;
    if (cfg.jitter_ms > 0)
        d->delay_ms += (long)(rng_next() % (uint64_t)(cfg.jitter_ms + 1));
    d->stall_ms = cfg.stall_ms;
    d->mangle = (cfg.mangle_kinds == 0 || (cfg.mangle_kinds & (1u << kind))) ? cfg.mangle : M_NONE;
    pthread_mutex_unlock(&lock);
}

void state_end(int kind)
{
    pthread_mutex_lock(&lock);
    inflight--;
    per_kind[kind].inflight--;
    pthread_mutex_unlock(&lock);
}

void state_bytes(int kind, uint64_t req_bytes, uint64_t resp_bytes)
{
    pthread_mutex_lock(&lock);
    per_kind[kind].req_bytes += req_bytes;
    per_kind[kind].resp_bytes += resp_bytes;
    pthread_mutex_unlock(&lock);
}

int state_412_armed(int kind)
{
    pthread_mutex_lock(&lock);
    int on = cfg.f412_count > 0 && (cfg.f412_kinds & (1u << kind));
    pthread_mutex_unlock(&lock);
    return on;
}

/* Caller holds lock: whether subject[0..len) contains one of the configured strings. */
static int key_listed(const char *subject, size_t len)
{
    for (const char *p = cfg.f412_keys; *p;) {
        size_t n = strcspn(p, ",");
        for (size_t i = 0; n > 0 && i + n <= len; i++)
            if (memcmp(subject + i, p, n) == 0)
                return 1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Caller holds lock: whether h carries one of the configured headers (or none is). */
static int header_listed(const struct head *h)
{
    if (!cfg.f412_header[0])
        return 1;
    for (const char *p = cfg.f412_header; *p;) {
        char name[64];
        size_t n = strcspn(p, ",");
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        if (n > 0 && head_get(h, name, NULL, 0))
            return 1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

int state_412_match(int kind, const char *subject, size_t len, const struct head *h)
{
    pthread_mutex_lock(&lock);
    int hit = cfg.f412_count > 0 && (cfg.f412_kinds & (1u << kind)) && key_listed(subject, len) &&
              (!h || header_listed(h));
    pthread_mutex_unlock(&lock);
    return hit;
}

/* Counts one 412 answer; 0 when the count ran out meanwhile. */
int state_412_take(void)
{
    pthread_mutex_lock(&lock);
    int ok = cfg.f412_count > 0;
    if (ok) {
        cfg.f412_count--;
        done_412++;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

unsigned long state_next_id(void)
{
    pthread_mutex_lock(&lock);
    unsigned long id = ++next_id;
    pthread_mutex_unlock(&lock);
    return id;
}
