/* s3proxy.h - shared declarations of s3proxy, the fault and latency proxy used by tests.
 *
 * s3proxy.c: command line, listening socket, signals, upstream address.
 * conn.c:    one thread per client connection: delay, faults, forwarding.
 * http.c:    HTTP/1.1 plumbing: buffered reads, header lookup, body relaying.
 * state.c:   request kinds, run-time configuration, counters (one mutex).
 * mangle.c:  rewritten answer headers (over-long ETag, bad Content-Length, floods).
 *
 * Conditional-request failures (config fail412_*): the next fail412_count S3 requests
 * of a kind in fail412_kinds whose target (DeleteObjects: each <Key> of its body)
 * contains one of the comma-separated fail412_keys and that carry one of the
 * comma-separated headers fail412_header (DeleteObjects: an <ETag> in every <Object>;
 * "": any request) are answered
 * 412 PreconditionFailed without reaching the server; DeleteObjects gets a 200
 * DeleteResult with a PreconditionFailed <Error> per key, and only when every key of
 * its body matches (the proxy cannot send the server a part of a signed body).
 */
#ifndef S3PROXY_H
#define S3PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HEAD_MAX     65536 /* largest header block accepted in either direction */
#define LINE_CAP     16384 /* largest request line (S3 keys are at most 1024 bytes) */
#define BUF_SIZE     65536 /* per-direction streaming buffer: bodies are never held whole */
#define IO_TIMEOUT_S 600   /* a peer silent this long is dropped, so threads cannot pile up */

struct head;

enum kind {
    K_LIST_BUCKETS,
    K_LIST_OBJECTS,
    K_LIST_MULTIPART_UPLOADS,
    K_GET_OBJECT,
    K_HEAD_OBJECT,
    K_HEAD_BUCKET,
    K_PUT_OBJECT,
    K_COPY_OBJECT,
    K_UPLOAD_PART,
    K_UPLOAD_PART_COPY,
    K_CREATE_MPU,
    K_COMPLETE_MPU,
    K_ABORT_MPU,
    K_DELETE_OBJECT,
    K_DELETE_OBJECTS,
    K_CREATE_BUCKET,
    K_DELETE_BUCKET,
    K_OTHER,
    KIND_COUNT
};

enum fault { F_NONE = -1, F_503, F_500, F_RESET, F_STALL, FAULT_COUNT };

/* How an upstream answer's headers are rewritten (mangle.c). */
enum mangle {
    M_NONE = -1,
    M_ETAG_LONG,
    M_CLEN_MISSING,
    M_CLEN_INVALID,
    M_META_FLOOD,
    MANGLE_COUNT
};

/* What to do with one S3 request, drawn once under the state mutex. */
struct decision {
    int fault; /* enum fault */
    long delay_ms;
    long stall_ms;
    int mangle; /* enum mangle */
};

/* state.c */
void state_init(void);
void state_seed(uint64_t seed);
const char *kind_name(int kind);
const char *fault_name(int fault);
int classify(const char *method, const char *target, const char *host, int copy_source);
int state_set(const char *name, const char *value);
int state_configure(const char *query, char *out, size_t cap);
size_t state_config_text(char *out, size_t cap);
size_t state_stats(char *out, size_t cap);
void state_reset(void);
void state_begin(int kind, struct decision *d);
void state_bytes(int kind, uint64_t req_bytes, uint64_t resp_bytes);
/* A request of that kind counted by state_begin is over (for the in-flight
 * figures, in all and per kind). */
void state_end(int kind);
unsigned long state_next_id(void);
/* Whether fail412 is set up for kind (so a DeleteObjects body is worth reading). */
int state_412_armed(int kind);
/* Whether a request of kind whose target (or key) is subject, carrying the configured
 * header (h NULL: the caller checked the condition), gets a 412 now; counts it. */
int state_412_match(int kind, const char *subject, size_t len, const struct head *h);
int state_412_take(void);

/* http.c */
struct rbuf {
    int fd;
    char *buf;
    size_t cap, off, len; /* unread data is buf[off..len) */
};

struct head {
    size_t len;         /* bytes in raw, start line through the blank line */
    char raw[HEAD_MAX]; /* exactly as received, so it can be forwarded untouched */
};

enum body { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

struct relay {
    struct rbuf *src;
    int dst;          /* -1 discards */
    int werr;         /* first write error; data after it is discarded */
    int keep_reading; /* after a write error: drain the source (1) or stop (0) */
    uint64_t bytes;   /* payload bytes taken from the source */
};

int io_write_all(int fd, const void *p, size_t n);
ssize_t rb_fill(struct rbuf *r);
int head_read(struct rbuf *r, struct head *h);
int head_start_line(const struct head *h, char *out, size_t cap);
int head_get(const struct head *h, const char *name, char *out, size_t cap);
int head_has_token(const struct head *h, const char *name, const char *token);
int head_body(const struct head *h, enum body dflt, enum body *b, uint64_t *len);
int relay_fixed(struct relay *x, uint64_t n);
int relay_body(struct relay *x, enum body b, uint64_t len);
int relay_prefix_half(struct relay *x);
/* Makes the next n bytes of r readable in place (r->buf + r->off), n <= r->cap. */
int rb_peek(struct rbuf *r, size_t n);
int http_reply(int fd, int status, const char *reason, const char *ctype, const char *body,
               size_t n, int head_only, int close_after, const char *extra);

/* mangle.c */
const char *mangle_name(int m);
int mangle_parse(const char *s, size_t n);
/* Writes h to fd rewritten as m says; no_body: the answer has no body. */
int mangle_write_head(int fd, const struct head *h, int m, int no_body);

/* conn.c */
int conn_start(int fd);

/* s3proxy.c */
extern int g_quiet;
int upstream_connect(void);
const char *upstream_name(void);
void sock_tune(int fd);

#endif
