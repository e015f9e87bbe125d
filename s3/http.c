#include "http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "s3cfs/log.h"

#define ERR_BODY_MAX (64 * 1024)
/* All header lines of one answer: S3's own are a few KiB, user metadata at
 * most 2 KiB; more is a broken or hostile server, not kept in memory. */
#define HEADERS_MAX (256 * 1024)

struct http_pool {
    struct http_pool_options opt;
    CURLSH *share;
    pthread_mutex_t share_lock; /* libcurl's lock callbacks for the DNS cache */
    pthread_mutex_t lock;       /* protects idle[] and nidle */
    CURL **idle;
    int nidle;
};

int http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

static void share_lock_cb(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
    (void)h, (void)d, (void)a;
    pthread_mutex_lock(&((struct http_pool *)u)->share_lock);
}

static void share_unlock_cb(CURL *h, curl_lock_data d, void *u)
{
    (void)h, (void)d;
    pthread_mutex_unlock(&((struct http_pool *)u)->share_lock);
}

int http_pool_new(const struct http_pool_options *opt, struct http_pool **out)
{
    struct http_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->opt = *opt;
    if (p->opt.connect_timeout_ms <= 0)
        p->opt.connect_timeout_ms = 5000;
    if (p->opt.stall_timeout_s <= 0)
        p->opt.stall_timeout_s = 30;
    if (p->opt.max_idle <= 0)
        p->opt.max_idle = 64;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->share_lock, NULL);
    p->idle = calloc((size_t)p->opt.max_idle, sizeof *p->idle);
    p->share = curl_share_init();
    int rc = p->idle && p->share ? 0 : -ENOMEM;
    if (rc == 0) {
        curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, share_lock_cb);
        curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, share_unlock_cb);
        curl_share_setopt(p->share, CURLSHOPT_USERDATA, p);
        curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    } else {
        http_pool_free(p);
        p = NULL;
    }
    *out = p;
    return rc;
}

void http_pool_free(struct http_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nidle; i++)
        curl_easy_cleanup(p->idle[i]);
    if (p->share)
        curl_share_cleanup(p->share);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->share_lock);
    free(p->idle);
    free(p);
}

static CURL *pool_take(struct http_pool *p)
{
    CURL *h = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->nidle > 0)
        h = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->lock);
    if (h) {
        curl_easy_reset(h); /* keeps live connections, drops options */
        return h;
    }
    return curl_easy_init();
}

/* A handle whose transfer failed may hold a broken connection; curl notices
 * that itself on reuse, so every handle goes back unless the stack is full. */
static void pool_give(struct http_pool *p, CURL *h)
{
    pthread_mutex_lock(&p->lock);
    if (p->nidle < p->opt.max_idle) {
        p->idle[p->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    if (h)
        curl_easy_cleanup(h);
}

void http_response_init(struct http_response *r)
{
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    sbuf_init(&r->err_body);
}

static void meta_free(struct http_response *r)
{
    s3_meta_free(&r->meta, &r->nmeta);
    s3_meta_free(&r->object_headers, &r->nobject_headers);
}

void http_response_free(struct http_response *r)
{
    meta_free(r);
    sbuf_free(&r->err_body);
}

/* Reset what a previous answer (a redirect, a 100 Continue) left behind. */
static void response_reset(struct http_response *r)
{
    struct sbuf keep = r->err_body;
    meta_free(r);
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    r->err_body = keep;
    sbuf_reset(&r->err_body);
}

struct transfer {
    const struct http_request *req;
    struct http_response *resp;
    uint64_t sent;
    size_t header_bytes; /* of the current answer */
    bool overflow;
};

/* Content-Length: digits only and within int64; -1 otherwise. */
static int64_t parse_length(const char *v, size_t n)
{
    int64_t x = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (INT64_MAX - (v[i] - '0')) / 10)
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

static void copy_field(char *dst, size_t size, const char *v, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

/* Append name (lower-cased) and value to the array *v of *n fields. */
static int add_field(struct s3_meta **v, size_t *n, const char *name, size_t nlen, const char *val,
                     size_t vlen)
{
    struct s3_meta *m = realloc(*v, (*n + 1) * sizeof *m);
    if (!m)
        return -ENOMEM;
    *v = m;
    char *lname = strndup(name, nlen), *value = strndup(val, vlen);
    if (!lname || !value) {
        free(lname);
        free(value);
        return -ENOMEM;
    }
    /* (tolower), the function: glibc's optimised macro is a statement
     * expression three blocks deep, which the nesting check counts */
    for (size_t i = 0; i < nlen; i++)
        lname[i] = (char)(tolower)((unsigned char)lname[i]);
    m[(*n)++] = (struct s3_meta){lname, value};
    return 0;
}

/* The headers describing an object that http_response.object_headers
 * keeps (see s3.h). */
static bool object_header(const char *name, size_t nlen)
{
    static const char *const names[] = {S3_OBJECT_HEADERS};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == nlen && strncasecmp(name, names[i], nlen) == 0)
            return true;
    return false;
}

static void header_field(struct http_response *r, const char *name, size_t nlen, const char *v,
                         size_t vlen)
{
#define IS(s) (nlen == sizeof(s) - 1 && strncasecmp(name, s, nlen) == 0)
    if (IS("etag")) {
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"')
            v++, vlen -= 2;
        /* a truncated ETag would never match again: refuse it */
        if (vlen >= sizeof r->etag)
            r->malformed = "ETag longer than 79 bytes";
        copy_field(r->etag, sizeof r->etag, v, vlen);
    } else if (IS("content-length")) {
        r->content_length = parse_length(v, vlen);
        if (r->content_length < 0)
            r->malformed = "invalid Content-Length";
    } else if (IS("last-modified")) {
        copy_field(r->last_modified, sizeof r->last_modified, v, vlen);
    } else if (IS("content-type")) {
        copy_field(r->content_type, sizeof r->content_type, v, vlen);
    } else if (IS("x-amz-request-id")) {
        copy_field(r->request_id, sizeof r->request_id, v, vlen);
    } else if (IS("content-range")) {
        copy_field(r->content_range, sizeof r->content_range, v, vlen);
    } else if (nlen > 11 && strncasecmp(name, "x-amz-meta-", 11) == 0) {
        add_field(&r->meta, &r->nmeta, name + 11, nlen - 11, v, vlen);
    } else if (object_header(name, nlen)) {
        add_field(&r->object_headers, &r->nobject_headers, name, nlen, v, vlen);
    }
#undef IS
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        response_reset(t->resp);
        t->header_bytes = 0;
        const char *sp = memchr(data, ' ', len);
        if (sp)
            t->resp->status = atoi(sp + 1);
        return len;
    }
    t->header_bytes += len;
    if (t->header_bytes > HEADERS_MAX) {
        t->resp->malformed = "response headers larger than 256 KiB";
        return 0; /* aborts the transfer: the rest is not read */
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    const char *v = colon + 1, *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    header_field(t->resp, data, (size_t)(colon - data), v, (size_t)(end - v));
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    struct http_response *r = t->resp;
    if (r->status < 200 || r->status >= 300) {
        size_t room = ERR_BODY_MAX - r->err_body.len;
        sbuf_append(&r->err_body, data, len < room ? len : room);
        return len;
    }
    const struct http_sink *s = &t->req->sink;
    if (s->buf) {
        if ((s->max && s->buf->len + len > s->max) || sbuf_append(s->buf, data, len)) {
            t->overflow = true;
            return 0;
        }
    } else if (s->dst) {
        if (r->body_len + len > s->cap) {
            t->overflow = true;
            return 0;
        }
        memcpy(s->dst + r->body_len, data, len);
    }
    r->body_len += len;
    return len;
}

static size_t on_read(char *dst, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    const struct s3_body *b = t->req->body;
    if (!b)
        return 0;
    size_t want = size * n;
    if (want > b->len - t->sent)
        want = (size_t)(b->len - t->sent);
    if (!want)
        return 0;
    if (b->fd < 0) {
        memcpy(dst, b->data + t->sent, want);
    } else {
        ssize_t got = pread(b->fd, dst, want, b->offset + (off_t)t->sent);
        if (got <= 0)
            return CURL_READFUNC_ABORT;
        want = (size_t)got;
    }
    t->sent += want;
    return want;
}

/* curl seeks back when it must resend the body (an auth retry or a rewound
 * connection); our bodies are random-access so that is always possible. */
static int on_seek(void *arg, curl_off_t off, int origin)
{
    struct transfer *t = arg;
    uint64_t len = t->req->body ? t->req->body->len : 0;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > len)
        return CURL_SEEKFUNC_CANTSEEK;
    t->sent = (uint64_t)off;
    return CURL_SEEKFUNC_OK;
}

/* The header lines carry the session token (a bearer credential): each is
 * wiped before curl frees the list. */
static void free_headers(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(list);
}

/* Appends s to *list; on failure *list stays as it was. */
static int slist_add(struct curl_slist **list, const char *s)
{
    struct curl_slist *tmp = curl_slist_append(*list, s);
    if (!tmp)
        return -ENOMEM;
    *list = tmp;
    return 0;
}

static int header_line(struct curl_slist **list, struct sbuf *line, const struct http_header *h)
{
    sbuf_reset(line);
    const char *v = h->value;
    /* "Name;" is curl's way of sending a header with an empty value */
    if (sbuf_appendf(line, v && *v ? "%s: %s" : "%s;", h->name, v))
        return -ENOMEM;
    return slist_add(list, sbuf_str(line));
}

static struct curl_slist *build_headers(const struct http_request *req)
{
    struct curl_slist *list = NULL;
    struct sbuf line = SBUF_SECRET_INIT;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < req->nheaders; i++)
        rc = header_line(&list, &line, &req->headers[i]);
    /* no 100-continue round trip: S3 answers errors before reading anyway */
    if (rc == 0)
        rc = slist_add(&list, "Expect:");
    sbuf_free(&line);
    if (rc) {
        free_headers(list);
        list = NULL;
    }
    return list;
}

static bool sends_body(const struct http_request *req)
{
    return req->body || strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0;
}

static void set_method(CURL *h, const struct http_request *req, struct transfer *t)
{
    if (req->head) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (sends_body(req)) {
        /* PUT/POST always send a Content-Length (0 for copies): radosgw
         * rejects UploadPartCopy without one */
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, t);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, t);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(req->body ? req->body->len : 0));
    }
    if (!req->head)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
}

static void set_options(struct http_pool *p, CURL *h, const struct http_request *req,
                        struct transfer *t, struct curl_slist *hdrs)
{
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_SHARE, p->share);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, p->opt.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                     req->stall_timeout_s > 0 ? req->stall_timeout_s : p->opt.stall_timeout_s);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, p->opt.verify_tls ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, p->opt.verify_tls ? 2L : 0L);
    if (p->opt.ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, p->opt.ca_file);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "s3cfs/" S3CFS_VERSION);
    /* S3 signs the exact bytes: never let curl re-encode or follow elsewhere */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    set_method(h, req, t);
}

static const char *curl_tag(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        return "ConnectFailed";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "ResolveFailed";
    case CURLE_OPERATION_TIMEDOUT:
        return "Timeout";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return "ConnectionReset";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        return "TLSError";
    case CURLE_OUT_OF_MEMORY:
        return "NoMemory";
    default:
        return "TransportError";
    }
}

/* One transfer on h, which goes back to the pool afterwards. */
static CURLcode run_transfer(struct http_pool *p, CURL *h, struct transfer *t,
                             struct curl_slist *hdrs, char ebuf[CURL_ERROR_SIZE])
{
    set_options(p, h, t->req, t, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_SHARE, NULL);
    pool_give(p, h);
    return cc;
}

/* What a finished transfer means for the caller (see http_perform). */
static int transfer_result(const struct transfer *t, CURLcode cc, const char *ebuf,
                           struct s3_error *err)
{
    if (t->resp->malformed) {
        s3_error_set(err, "BadResponse", t->resp->malformed);
        return -EPROTO;
    }
    if (t->overflow) {
        s3_error_set(err, "BadResponse", "response body larger than expected");
        return -ENOSPC;
    }
    if (cc != CURLE_OK) {
        err->curl_code = (int)cc;
        err->http_status = 0;
        s3_error_set(err, curl_tag(cc), ebuf[0] ? ebuf : curl_easy_strerror(cc));
        return s3_errno_for(err->code, 0);
    }
    return 0;
}

int http_perform(struct http_pool *p, const struct http_request *req, struct http_response *resp,
                 struct s3_error *err)
{
    response_reset(resp);
    struct transfer t = {.req = req, .resp = resp};
    char ebuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = build_headers(req);
    CURL *h = hdrs ? pool_take(p) : NULL;
    int rc = h ? 0 : -ENOMEM;
    if (rc == 0)
        rc = transfer_result(&t, run_transfer(p, h, &t, hdrs, ebuf), ebuf, err);
    else
        s3_error_set(err, "NoMemory", "out of memory building the request");
    free_headers(hdrs);
    return rc;
}
