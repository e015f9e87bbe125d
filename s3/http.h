/* http.h - one HTTP exchange over libcurl, with connections kept for reuse.
 *
 * This layer knows HTTP, not S3: it sends one request and reports what came
 * back. Retries, signing and S3 error bodies live in request.c.
 *
 * Connection reuse: a struct http_pool keeps idle curl easy handles on a
 * stack (each handle keeps its own live connections) and shares the DNS
 * cache between them, so consecutive requests from any thread reuse open
 * connections. The stack is protected by pool->lock, held only to push or
 * pop a handle, never during a transfer. At most `max_idle` handles are
 * kept; more may be in use at once (one per concurrent caller).
 *
 * Memory: requests borrow everything they point to for the duration of
 * http_perform(). The response owns its heap parts (meta, error body); free
 * them with http_response_free().
 *
 * Internal to s3/. It borrows the value types of s3.h (struct s3_body,
 * struct s3_meta, S3_OBJECT_HEADERS) rather than have its own copies.
 */
#ifndef S3CFS_S3_HTTP_H
#define S3CFS_S3_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "s3cfs/buf.h"
#include "s3cfs/error.h"
#include "s3cfs/s3.h"
#include "sigv4.h"

struct http_pool_options {
    long connect_timeout_ms; /* TCP (and TLS) connect; default 5000 */
    long stall_timeout_s;    /* abort when under 1 byte/s for this long; default 30 */
    bool verify_tls;         /* certificate and host name; default true */
    const char *ca_file;     /* NULL: system store */
    int max_idle;            /* idle handles kept; default 64 */
};

struct http_pool;

int http_pool_new(const struct http_pool_options *opt, struct http_pool **out);
void http_pool_free(struct http_pool *p);

/* Where a 2xx answer's body goes: into buf (grown as needed, at most max
 * bytes when max > 0), or into the fixed area dst[0..cap). Error answers
 * (>= 300) always go to the response's err_body instead. */
struct http_sink {
    struct sbuf *buf;
    size_t max;
    char *dst;
    size_t cap;
};

struct http_request {
    const char *method;
    const char *url;
    const struct http_header *headers;
    size_t nheaders;
    const struct s3_body *body; /* NULL: no body */
    struct http_sink sink;
    bool head; /* a HEAD: no body expected */
    /* under 1 byte/s for this long aborts; 0: the pool's stall_timeout_s */
    long stall_timeout_s;
};

struct http_response {
    int status;
    int64_t content_length; /* -1 if absent */
    uint64_t body_len;      /* bytes of 2xx body received into the sink */
    char etag[80];          /* unquoted */
    char last_modified[64];
    char content_type[128];
    char request_id[64];
    char content_range[96];
    struct s3_meta *meta; /* x-amz-meta-NAME as NAME, lower case */
    size_t nmeta;
    struct s3_meta *object_headers; /* S3_OBJECT_HEADERS, names lower case */
    size_t nobject_headers;
    struct sbuf err_body;  /* body of a >= 300 answer, at most 64 KiB */
    const char *malformed; /* static text: why the answer's headers were refused */
};

void http_response_init(struct http_response *r);
void http_response_free(struct http_response *r);

/* Send req and read the answer into resp (which must be initialised; it is
 * reset first). Returns 0 when an HTTP answer was received, whatever its
 * status; a negative errno when none was (err->code "ConnectFailed",
 * "ResolveFailed", "Timeout", "ConnectionReset", "TLSError",
 * "TransportError", err->curl_code set), -ENOSPC when a 2xx body was
 * larger than the sink (code "BadResponse"), or -EPROTO (code "BadResponse",
 * resp->malformed says why) when the headers were refused: an ETag longer
 * than 79 bytes (never truncated), a Content-Length that is not a decimal
 * number, or header lines over 256 KiB in all (the rest is not read). */
int http_perform(struct http_pool *p, const struct http_request *req, struct http_response *resp,
                 struct s3_error *err);

/* libcurl's global init; call once before any thread uses the pool. */
int http_global_init(void);

#endif
