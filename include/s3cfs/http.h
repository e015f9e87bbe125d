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
 */
#ifndef S3CFS_HTTP_H
#define S3CFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "s3cfs/buf.h"
#include "s3cfs/error.h"
#include "s3cfs/sigv4.h"

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

/* Request body: memory, or len bytes of a file at offset (read with pread,
 * so the same body can be sent again on a retry). */
struct http_body {
    const char *data;
    int fd; /* -1 for memory; otherwise read from fd at offset */
    off_t offset;
    uint64_t len;
};

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
    const struct http_body *body; /* NULL: no body */
    struct http_sink sink;
    bool head; /* a HEAD: no body expected */
    /* under 1 byte/s for this long aborts; 0: the pool's stall_timeout_s */
    long stall_timeout_s;
};

struct http_meta {
    char *name; /* lower-case, without "x-amz-meta-" */
    char *value;
};

/* The headers of an answer, besides Content-Type and x-amz-meta-*, that
 * describe the object itself and that a rewrite of it must send again:
 * S3 drops the content headers on a CopyObject with REPLACE, and every
 * copy or upload resets the storage class and the encryption to the
 * bucket's defaults unless they are sent. x-amz-tagging-count says
 * whether the object has tags (read with GetObjectTagging). */
#define HTTP_OBJECT_HEADERS                                                                        \
    "cache-control", "content-disposition", "content-encoding", "content-language", "expires",     \
        "x-amz-website-redirect-location", "x-amz-storage-class", "x-amz-server-side-encryption",  \
        "x-amz-server-side-encryption-aws-kms-key-id",                                             \
        "x-amz-server-side-encryption-bucket-key-enabled", "x-amz-tagging-count"

struct http_response {
    int status;
    int64_t content_length; /* -1 if absent */
    uint64_t body_len;      /* bytes of 2xx body received into the sink */
    char etag[80];          /* unquoted */
    char last_modified[64];
    char content_type[128];
    char request_id[64];
    char content_range[96];
    struct http_meta *meta;
    size_t nmeta;
    struct http_meta *object_headers; /* HTTP_OBJECT_HEADERS, names lower case */
    size_t nobject_headers;
    struct sbuf err_body; /* body of a >= 300 answer, at most 64 KiB */
};

void http_response_init(struct http_response *r);
void http_response_free(struct http_response *r);

/* Send req and read the answer into resp (which must be initialised; it is
 * reset first). Returns 0 when an HTTP answer was received, whatever its
 * status; a negative errno when none was (err->code "ConnectFailed",
 * "ResolveFailed", "Timeout", "ConnectionReset", "TLSError",
 * "TransportError", err->curl_code set), or -ENOSPC when a 2xx body was
 * larger than the sink (code "BadResponse"). */
int http_perform(struct http_pool *p, const struct http_request *req, struct http_response *resp,
                 struct s3_error *err);

/* libcurl's global init; call once before any thread uses the pool. */
int http_global_init(void);

#endif
