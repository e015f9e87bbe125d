#include "request.h"
#include "xml.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3cfs/log.h"
#include "sigv4.h"

#define EMPTY_SHA256  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define AUTO_HASH_MAX (1024 * 1024)
#define COPY_STALL_S  600 /* see s3_send */

struct s3_client {
    struct s3_client_options opt;
    char region[64];
    char scheme[8];
    char host[256]; /* host name or [v6], no port */
    char port[8];   /* "" when the scheme's default */
    char endpoint[320];
    bool is_aws;
    struct http_pool *pool;
    struct s3_stats stats;
};

int s3_global_init(void)
{
    xml_init();
    return http_global_init();
}

/* The scheme of url, lower-cased into c->scheme; *rest is what follows
 * its "://". */
static int parse_scheme(struct s3_client *c, const char *url, const char **rest,
                        struct s3_error *err)
{
    const char *p = strstr(url, "://");
    if (!p || (size_t)(p - url) >= sizeof c->scheme) {
        s3_error_set(err, "InvalidEndpoint", "endpoint must look like http(s)://host[:port]");
        return -EINVAL;
    }
    memcpy(c->scheme, url, (size_t)(p - url));
    c->scheme[p - url] = '\0';
    /* (tolower), the function: glibc's macro nests blocks (see add_field in http.c) */
    for (char *s = c->scheme; *s; s++)
        *s = (char)(tolower)((unsigned char)*s);
    if (strcmp(c->scheme, "http") != 0 && strcmp(c->scheme, "https") != 0) {
        s3_error_set(err, "InvalidEndpoint", "endpoint scheme must be http or https");
        return -EINVAL;
    }
    *rest = p + 3;
    return 0;
}

/* The colon before the port in the authority [h, end), or NULL: those of
 * an IPv6 literal are inside its brackets. */
static const char *port_colon(const char *h, const char *end)
{
    if (*h != '[')
        return memchr(h, ':', (size_t)(end - h));
    const char *rb = memchr(h, ']', (size_t)(end - h));
    return rb && rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
}

/* Host and port of the authority starting at h; the scheme's default port
 * is dropped, so that one endpoint has one spelling. */
static int parse_authority(struct s3_client *c, const char *h, struct s3_error *err)
{
    const char *end = h + strcspn(h, "/?");
    const char *colon = port_colon(h, end);
    const char *hend = colon ? colon : end;
    if (hend == h || (size_t)(hend - h) >= sizeof c->host ||
        (colon && (size_t)(end - colon - 1) >= sizeof c->port)) {
        s3_error_set(err, "InvalidEndpoint", "endpoint host is empty or too long");
        return -EINVAL;
    }
    memcpy(c->host, h, (size_t)(hend - h));
    c->host[hend - h] = '\0';
    c->port[0] = '\0';
    if (colon) {
        memcpy(c->port, colon + 1, (size_t)(end - colon - 1));
        c->port[end - colon - 1] = '\0';
        if ((strcmp(c->scheme, "http") == 0 && strcmp(c->port, "80") == 0) ||
            (strcmp(c->scheme, "https") == 0 && strcmp(c->port, "443") == 0))
            c->port[0] = '\0';
    }
    return 0;
}

static int parse_endpoint(struct s3_client *c, const char *url, struct s3_error *err)
{
    const char *h = NULL;
    int rc = parse_scheme(c, url, &h, err);
    if (rc == 0)
        rc = parse_authority(c, h, err);
    if (rc)
        return rc;
    c->is_aws = strstr(c->host, "amazonaws.com") != NULL;
    snprintf(c->endpoint, sizeof c->endpoint, "%s://%s%s%s", c->scheme, c->host,
             c->port[0] ? ":" : "", c->port);
    return 0;
}

static const char *pick_endpoint(const struct s3_client_options *opt, const char *region, char *buf,
                                 size_t size)
{
    if (opt->endpoint && *opt->endpoint)
        return opt->endpoint;
    const char *env = getenv("AWS_ENDPOINT_URL_S3");
    if (!env || !*env)
        env = getenv("AWS_ENDPOINT_URL");
    if (env && *env)
        return env;
    snprintf(buf, size, "https://s3.%s.amazonaws.com", region);
    return buf;
}

static void fill_defaults(struct retry_policy *r)
{
    struct retry_policy d;
    retry_policy_default(&d);
    if (r->max_attempts <= 0)
        r->max_attempts = d.max_attempts;
    if (r->base_ms <= 0)
        r->base_ms = d.base_ms;
    if (r->throttle_base_ms <= 0)
        r->throttle_base_ms = d.throttle_base_ms;
    if (r->cap_ms <= 0)
        r->cap_ms = d.cap_ms;
}

int s3_client_new(const struct s3_client_options *opt, struct s3_client **out, struct s3_error *err)
{
    struct s3_client *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->opt = *opt;
    fill_defaults(&c->opt.retry);
    snprintf(c->region, sizeof c->region, "%s",
             opt->region && *opt->region ? opt->region : "us-east-1");
    char aws[128];
    int rc = parse_endpoint(c, pick_endpoint(opt, c->region, aws, sizeof aws), err);
    if (rc == 0) {
        struct http_pool_options po = {
            .connect_timeout_ms = opt->connect_timeout_ms,
            .stall_timeout_s = opt->stall_timeout_s,
            .verify_tls = !opt->insecure_tls,
            .ca_file = opt->ca_file,
            .max_idle = 128,
        };
        rc = http_pool_new(&po, &c->pool);
    }
    if (rc) {
        free(c);
        return rc;
    }
    c->opt.endpoint = NULL; /* borrowed strings are not kept */
    c->opt.region = NULL;
    c->opt.ca_file = NULL;
    *out = c;
    return 0;
}

void s3_client_free(struct s3_client *c)
{
    if (!c)
        return;
    http_pool_free(c->pool);
    free(c);
}

struct s3_stats *s3_client_stats(struct s3_client *c)
{
    return &c->stats;
}

void s3_client_set_throttle_cb(struct s3_client *c, void (*cb)(void *arg), void *arg)
{
    c->opt.on_throttle = cb;
    c->opt.on_throttle_arg = arg;
}

const char *s3_client_endpoint(const struct s3_client *c)
{
    return c->endpoint;
}

bool s3_client_legacy_copy_if(const struct s3_client *c)
{
    return !c->opt.no_legacy_copy_if;
}

/* Virtual-hosted style needs a DNS-safe name; a dotted one breaks TLS
 * certificate matching, so AWS itself recommends path-style for those. */
static bool use_vhost(const struct s3_client *c, const char *bucket)
{
    if (!bucket)
        return false;
    if (c->opt.addressing == S3_ADDR_PATH)
        return false;
    bool dns_ok = strchr(bucket, '.') == NULL && strchr(bucket, '_') == NULL;
    if (c->opt.addressing == S3_ADDR_VHOST)
        return true;
    return c->is_aws && dns_ok;
}

/* canonical URI, Host header value and full URL of a request */
static int build_target(const struct s3_client *c, const struct s3_req *r, struct sbuf *uri,
                        struct sbuf *host, struct sbuf *url, const char *query)
{
    bool vhost = use_vhost(c, r->bucket);
    int rc = 0;
    if (vhost)
        rc |= sbuf_appendf(host, "%s.", r->bucket);
    rc |= sbuf_appendf(host, "%s%s%s", c->host, c->port[0] ? ":" : "", c->port);
    rc |= sbuf_append_char(uri, '/');
    if (r->bucket && !vhost) {
        rc |= uri_encode_str(uri, r->bucket, false);
        if (r->key)
            rc |= sbuf_append_char(uri, '/');
    }
    if (r->bucket && r->key)
        rc |= uri_encode_str(uri, r->key, true);
    rc |= sbuf_appendf(url, "%s://%s%s%s%s", c->scheme, sbuf_str(host), sbuf_str(uri),
                       *query ? "?" : "", query);
    return rc ? -ENOMEM : 0;
}

/* The piece of b that starts at done, at most size bytes: in place for a
 * body in memory, else read from its file into chunk. Returns the length
 * taken, or -EIO when the file fails or ends before b does. */
static ssize_t body_piece(const struct s3_body *b, uint64_t done, unsigned char *chunk, size_t size,
                          const void **piece)
{
    size_t n = b->len - done > size ? size : (size_t)(b->len - done);
    if (b->fd < 0) {
        *piece = b->data + done;
        return (ssize_t)n;
    }
    ssize_t got = pread(b->fd, chunk, n, b->offset + (off_t)done);
    if (got <= 0)
        return -EIO;
    *piece = chunk;
    return got;
}

int s3_body_digest(const struct s3_body *b, const void *type, char *hex)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE], chunk[65536];
    unsigned mdlen = 0;
    int rc = ctx && EVP_DigestInit_ex(ctx, type, NULL) ? 0 : -ENOMEM;
    for (uint64_t done = 0; rc == 0 && done < b->len;) {
        const void *p = NULL;
        ssize_t n = body_piece(b, done, chunk, sizeof chunk, &p);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if (!EVP_DigestUpdate(ctx, p, (size_t)n))
            rc = -ENOMEM;
        done += (uint64_t)n;
    }
    if (rc == 0 && !EVP_DigestFinal_ex(ctx, md, &mdlen))
        rc = -ENOMEM;
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; rc == 0 && i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return rc;
}

static int payload_hash(const struct s3_client *c, const struct s3_body *b, char hex[65])
{
    if (!b || b->len == 0) {
        strcpy(hex, EMPTY_SHA256);
        return 0;
    }
    bool sign = c->opt.payload_signing == S3_PAYLOAD_ALWAYS ||
                (c->opt.payload_signing == S3_PAYLOAD_AUTO && b->len <= AUTO_HASH_MAX);
    if (!sign) {
        strcpy(hex, "UNSIGNED-PAYLOAD");
        return 0;
    }
    return s3_body_digest(b, EVP_sha256(), hex);
}

/* Everything one attempt needs, rebuilt per attempt because the signature
 * covers the time. */
struct attempt {
    struct sbuf uri, host, url, query;
    char hash[65];
    struct sigv4_result sig;
    struct s3_creds creds;
    struct http_header *hdrs;
    size_t nhdrs;
};

static void attempt_free(struct attempt *a)
{
    sbuf_free(&a->uri);
    sbuf_free(&a->host);
    sbuf_free(&a->url);
    sbuf_free(&a->query);
    free(a->hdrs);
    /* the secret does not outlive the request on the stack */
    explicit_bzero(&a->creds, sizeof a->creds);
}

static int sign_attempt(struct s3_client *c, const struct s3_req *r, struct attempt *a,
                        struct s3_error *err)
{
    int rc = creds_get(c->opt.creds, &a->creds, err);
    if (rc)
        return rc;
    size_t n = r->nheaders + 2;
    a->hdrs = calloc(n + 3, sizeof *a->hdrs);
    if (!a->hdrs)
        return -ENOMEM;
    a->hdrs[0] = (struct http_header){"Host", sbuf_str(&a->host)};
    a->hdrs[1] = (struct http_header){"x-amz-content-sha256", a->hash};
    if (r->nheaders) /* memcpy from NULL is undefined even for 0 bytes */
        memcpy(a->hdrs + 2, r->headers, r->nheaders * sizeof *r->headers);
    struct sigv4_request sr = {
        .method = r->method,
        .canonical_uri = sbuf_str(&a->uri),
        .canonical_query = sbuf_str(&a->query),
        .headers = a->hdrs,
        .nheaders = n,
        .payload_hash = a->hash,
        .region = c->region,
        .service = "s3",
        .now = time(NULL),
    };
    struct sigv4_credentials sc = {a->creds.access_key, a->creds.secret_key,
                                   a->creds.session_token};
    rc = sigv4_sign(&sr, &sc, &a->sig);
    if (rc) {
        s3_error_set(err, "SigningFailed", "could not sign the request");
        return rc;
    }
    a->hdrs[n++] = (struct http_header){"X-Amz-Date", a->sig.amz_date};
    a->hdrs[n++] = (struct http_header){"Authorization", a->sig.authorization};
    if (a->creds.session_token[0])
        a->hdrs[n++] = (struct http_header){"X-Amz-Security-Token", a->creds.session_token};
    a->nhdrs = n;
    return 0;
}

static int prepare(struct s3_client *c, const struct s3_req *r, struct attempt *a,
                   struct s3_error *err)
{
    int rc = uri_canonical_query(&a->query, r->query, r->nquery);
    if (!rc)
        rc = build_target(c, r, &a->uri, &a->host, &a->url, sbuf_str(&a->query));
    if (!rc)
        rc = payload_hash(c, r->body, a->hash);
    if (rc)
        s3_error_set(err, "ClientError", "could not build the request");
    return rc;
}

/* Fill err from an answer that is not a success. */
static void error_from_answer(const struct http_response *resp, struct s3_error *err)
{
    s3_error_clear(err);
    err->http_status = resp->status;
    snprintf(err->request_id, sizeof err->request_id, "%s", resp->request_id);
    if (resp->err_body.len && xml_parse_error(resp->err_body.data, resp->err_body.len, err) == 0 &&
        err->code[0])
        return;
    /* HEAD answers and some proxies carry no body: name it by status */
    const char *code = resp->status == 404   ? "NotFound"
                       : resp->status == 403 ? "AccessDenied"
                       : resp->status == 503 ? "ServiceUnavailable"
                       : resp->status == 412 ? "PreconditionFailed"
                       : resp->status >= 500 ? "InternalError"
                                             : "HTTPError";
    char msg[64];
    snprintf(msg, sizeof msg, "HTTP %d without an S3 error body", resp->status);
    s3_error_set(err, code, msg);
}

/* 0: success. 1: the answer is an error (err filled). */
static int judge(const struct s3_req *r, const struct http_response *resp, struct s3_error *err)
{
    if (resp->status < 200 || resp->status >= 300) {
        error_from_answer(resp, err);
        return 1;
    }
    if (!r->error_in_200 || !r->sink.buf)
        return 0;
    const char *b = r->sink.buf->data;
    size_t len = r->sink.buf->len;
    while (len && isspace((unsigned char)*b)) /* AWS pads long copies with spaces */
        b++, len--;
    struct s3_error e200;
    s3_error_clear(&e200);
    if (len && xml_parse_error(b, len, &e200) == 0) {
        *err = e200;
        err->http_status = resp->status;
        return 1;
    }
    if (len == 0) {
        s3_error_set(err, "BadResponse", "empty body where an XML result was expected");
        err->http_status = resp->status;
        return 1;
    }
    return 0;
}

static void log_attempt(const struct s3_req *r, const struct http_response *resp, int attempt,
                        const struct s3_error *err, int failed)
{
    if (s3cfs_log_level < LOGLVL_DEBUG)
        return;
    LOGD("%s %s/%s%s%s -> %d%s%s (attempt %d)", r->method, r->bucket ? r->bucket : "",
         r->key ? r->key : "", r->nquery ? "?" : "", r->nquery ? r->query[0].name : "",
         resp->status, failed ? " " : "", failed ? err->code : "", attempt);
}

static int send_once(struct s3_client *c, const struct s3_req *r, struct http_response *resp,
                     struct s3_error *err)
{
    struct attempt a = {.hash = ""};
    int rc = prepare(c, r, &a, err);
    if (!rc)
        rc = sign_attempt(c, r, &a, err);
    if (!rc) {
        /* a copy (or a Complete) answers only when the server is done: a
         * large part copy on a busy store is silent for long, and a retry
         * on a timeout only piles more copies onto it */
        struct http_request hr = {
            r->method, sbuf_str(&a.url), a.hdrs,  a.nhdrs,
            r->body,   r->sink,          r->head, r->error_in_200 ? COPY_STALL_S : 0};
        if (r->sink.buf)
            sbuf_reset(r->sink.buf);
        atomic_fetch_add(&c->stats.requests, 1);
        rc = http_perform(c->pool, &hr, resp, err);
        if (rc == 0) {
            if (r->body)
                atomic_fetch_add(&c->stats.bytes_up, r->body->len);
            atomic_fetch_add(&c->stats.bytes_down, resp->body_len);
            rc = judge(r, resp, err) ? s3_errno_for(err->code, err->http_status) : 0;
        }
    }
    attempt_free(&a);
    return rc;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

int s3_send(struct s3_client *c, const struct s3_req *r, struct http_response *resp,
            struct s3_error *err)
{
    const struct retry_policy *pol = &c->opt.retry;
    int rc = 0;
    for (int attempt = 1;; attempt++) {
        s3_error_clear(err);
        rc = send_once(c, r, resp, err);
        err->attempts = attempt;
        log_attempt(r, resp, attempt, err, rc);
        if (rc == 0)
            return 0;
        bool throttled = s3_error_throttled(err);
        if (throttled) {
            atomic_fetch_add(&c->stats.throttled, 1);
            if (c->opt.on_throttle)
                c->opt.on_throttle(c->opt.on_throttle_arg);
        }
        /* credentials, signing and building failures are not transient */
        bool sent = err->http_status != 0 || err->curl_code != 0;
        if (!sent || !s3_error_retryable(err) || attempt >= pol->max_attempts)
            break;
        atomic_fetch_add(&c->stats.retries, 1);
        int ms = retry_backoff_ms(pol, attempt, throttled, retry_random());
        LOGI("retrying %s %s/%s in %d ms after %s (attempt %d)", r->method,
             r->bucket ? r->bucket : "", r->key ? r->key : "", ms, err->code, attempt);
        sleep_ms(ms);
    }
    atomic_fetch_add(&c->stats.failures, 1);
    snprintf(err->resource, sizeof err->resource, "%s%s%s", r->bucket ? r->bucket : "",
             r->key ? "/" : "", r->key ? r->key : "");
    return rc;
}
