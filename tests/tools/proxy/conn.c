/* conn.c - one client connection of s3proxy: read a request, draw its delay and fault,
 * forward it over this connection's own keep-alive upstream connection, relay the answer.
 *
 * A failure on either socket ends this connection only; the process never dies for it. */
#include "s3proxy.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONTINUE_LINE "HTTP/1.1 100 Continue\r\n\r\n"

struct request {
    char line[LINE_CAP];
    char *method, *target;
    char host[256];
    int keepalive, expect100, copy_source, head_method;
    enum body body;
    uint64_t clen;
    int kind, fault, mangle, status;
    uint64_t req_bytes, resp_bytes;
};

struct conn {
    int cfd, ufd;
    struct rbuf crb, urb;
    int client_dead; /* the client broke mid-request: nothing more can be said to it */
    struct request rq;
    struct head req, resp;
    char cbuf[BUF_SIZE], ubuf[BUF_SIZE];
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void upstream_close(struct conn *c)
{
    if (c->ufd >= 0)
        close(c->ufd);
    c->ufd = -1;
    c->urb.fd = -1;
    c->urb.off = c->urb.len = 0;
}

/* A kept-alive upstream connection that has become readable between requests was
 * closed by the server (or holds stray bytes): it must not carry the next request. */
static int upstream_idle_ok(struct conn *c)
{
    struct pollfd p = {.fd = c->ufd, .events = POLLIN};

    return c->urb.off == c->urb.len && poll(&p, 1, 0) == 0;
}

static int upstream_open(struct conn *c, int *reused)
{
    *reused = 0;
    if (c->ufd >= 0 && upstream_idle_ok(c)) {
        *reused = 1;
        return 0;
    }
    upstream_close(c);
    int fd = upstream_connect();
    if (fd < 0)
        return fd;
    c->ufd = fd;
    c->urb.fd = fd;
    return 0;
}

static void log_request(const struct request *q)
{
    if (g_quiet)
        return;
    fprintf(stderr, "s3proxy: %s %.300s %s %d %s\n", q->method, q->target, kind_name(q->kind),
            q->status, fault_name(q->fault));
}

static int parse_request(struct conn *c, struct request *q)
{
    char *sp;

    memset(q, 0, sizeof(*q));
    q->fault = F_NONE;
    int rc = head_start_line(&c->req, q->line, sizeof(q->line));
    if (rc < 0)
        return rc;
    q->method = q->line;
    if (!(sp = strchr(q->method, ' ')))
        return -EPROTO;
    *sp = '\0';
    q->target = sp + 1;
    if (!(sp = strchr(q->target, ' ')))
        return -EPROTO;
    *sp = '\0';
    const char *version = sp + 1;
    if (q->method[0] == '\0' || q->target[0] == '\0' || strncmp(version, "HTTP/1.", 7) != 0)
        return -EPROTO;
    int http10 = strcmp(version, "HTTP/1.0") == 0;
    q->keepalive = http10 ? head_has_token(&c->req, "connection", "keep-alive")
                          : !head_has_token(&c->req, "connection", "close");
    q->expect100 = !http10 && head_has_token(&c->req, "expect", "100-continue");
    q->copy_source = head_get(&c->req, "x-amz-copy-source", NULL, 0);
    head_get(&c->req, "host", q->host, sizeof(q->host));
    q->head_method = strcmp(q->method, "HEAD") == 0;
    return head_body(&c->req, BODY_NONE, &q->body, &q->clen);
}

/* Reads and drops the request body, so the connection stays in step for the next one. */
static int drain_request(struct conn *c, struct request *q)
{
    struct relay x = {.src = &c->crb, .dst = -1, .keep_reading = 1};
    int rc = relay_body(&x, q->body, q->clen);

    q->req_bytes += x.bytes;
    return rc;
}

static int finish(const struct request *q, int rc)
{
    return (rc < 0 || !q->keepalive) ? -1 : 0;
}

/* Control API: /__proxy/stats, /__proxy/reset, /__proxy/config. Never delayed, faulted
 * or counted. */
static int control(struct conn *c, struct request *q)
{
    char out[8192];
    const char *name = q->target + strlen("/__proxy/");
    const char *query = strchr(name, '?');
    size_t nlen = query ? (size_t)(query - name) : strlen(name);
    int get = strcmp(q->method, "GET") == 0 || q->head_method;
    int post = strcmp(q->method, "POST") == 0;
    int status = 200;

    if (drain_request(c, q) < 0)
        return -1;
    query = query ? query + 1 : "";
    out[0] = '\0';
    if (nlen == 5 && strncmp(name, "stats", 5) == 0 && get) {
        state_stats(out, sizeof(out));
    } else if (nlen == 5 && strncmp(name, "reset", 5) == 0 && post) {
        state_reset();
        snprintf(out, sizeof(out), "reset\n");
    } else if (nlen == 6 && strncmp(name, "config", 6) == 0 && (get || post)) {
        if (post && state_configure(query, out, sizeof(out)) < 0)
            status = 400;
        else if (get)
            state_config_text(out, sizeof(out));
    } else {
        status = 404;
        snprintf(out, sizeof(out), "unknown control request %s %s\n", q->method, q->target);
    }
    q->status = status;
    int rc = http_reply(c->cfd, status,
                        status == 200   ? "OK"
                        : status == 400 ? "Bad Request"
                                        : "Not Found",
                        "text/plain", out, strlen(out), q->head_method, !q->keepalive, NULL);
    return finish(q, rc);
}

/* The 503/500 faults: an S3 error document, as S3 itself sends when it sheds load. */
static int s3_error(struct conn *c, struct request *q, int fault)
{
    char body[512], extra[64];
    int slow = fault == F_503;

    if (drain_request(c, q) < 0)
        return -1;
    unsigned long id = state_next_id();
    int n = snprintf(body, sizeof(body),
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
                     "<Message>%s</Message><RequestId>proxy-%lu</RequestId></Error>",
                     slow ? "SlowDown" : "InternalError",
                     slow ? "Please reduce your request rate."
                          : "We encountered an internal error. Please try again.",
                     id);
    snprintf(extra, sizeof(extra), "x-amz-request-id: proxy-%lu\r\n", id);
    q->status = slow ? 503 : 500;
    int rc = http_reply(c->cfd, q->status, slow ? "Slow Down" : "Internal Server Error",
                        "application/xml", body, (size_t)n, q->head_method, !q->keepalive, extra);
    if (!q->head_method)
        q->resp_bytes = (uint64_t)n;
    return finish(q, rc);
}

/* ---- injected 412 PreconditionFailed (s3proxy.h) ---- */

static const char *find(const char *s, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    for (; s + n <= end; s++)
        if (memcmp(s, needle, n) == 0)
            return s;
    return NULL;
}

/* The next <Object> of a DeleteObjects body at or after *p: its key and whether it
 * carries an <ETag>. 0 when there is none left. */
static int next_object(const char **p, const char *end, const char **key, size_t *klen, int *etag)
{
    const char *o = find(*p, end, "<Object>"), *oe = o ? find(o, end, "</Object>") : NULL;
    const char *k = oe ? find(o, oe, "<Key>") : NULL, *ke = k ? find(k, oe, "</Key>") : NULL;
    if (!ke)
        return 0;
    *key = k + 5;
    *klen = (size_t)(ke - *key);
    *etag = find(o, oe, "<ETag>") != NULL;
    *p = oe;
    return 1;
}

/* Whether every key of the DeleteObjects body (read into the buffer, not consumed)
 * matches and carries an ETag. -1: the client went away. */
static int delete_keys_due(struct conn *c, struct request *q, const char **body, size_t *len)
{
    if (!state_412_armed(q->kind) || q->body != BODY_LENGTH || q->clen == 0 ||
        q->clen > sizeof(c->cbuf))
        return 0;
    if (rb_peek(&c->crb, (size_t)q->clen) < 0)
        return -1;
    *body = c->crb.buf + c->crb.off;
    *len = (size_t)q->clen;
    const char *p = *body, *end = *body + *len, *key;
    size_t klen, n = 0;
    int etag;
    while (next_object(&p, end, &key, &klen, &etag)) {
        if (!etag || !state_412_match(q->kind, key, klen, NULL))
            return 0;
        n++;
    }
    return n > 0;
}

static int precondition_due(struct conn *c, struct request *q, const char **body, size_t *len)
{
    if (q->kind == K_DELETE_OBJECTS) {
        int due = delete_keys_due(c, q, body, len);
        return due > 0 ? state_412_take() : due;
    }
    return state_412_match(q->kind, q->target, strlen(q->target), &c->req) && state_412_take();
}

/* DeleteObjects: 200 with a PreconditionFailed <Error> per key of body. */
static int delete_result_412(struct conn *c, struct request *q, const char *body, size_t len)
{
    static const char err[] = "</Key><Code>PreconditionFailed</Code><Message>At least one of the "
                              "pre-conditions you specified did not hold</Message></Error>";
    size_t cap = 2 * len + 512; /* each key comes back once, with a fixed text */
    char *out = malloc(cap);
    if (!out)
        return -1;
    size_t n = (size_t)snprintf(out, cap,
                                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DeleteResult "
                                "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    const char *p = body, *end = body + len, *key;
    size_t klen;
    int etag;
    while (next_object(&p, end, &key, &klen, &etag) && n + klen + sizeof(err) + 64 < cap)
        n += (size_t)snprintf(out + n, cap - n, "<Error><Key>%.*s%s", (int)klen, key, err);
    n += (size_t)snprintf(out + n, cap - n, "</DeleteResult>");
    /* the reply is built from the body before the body is consumed */
    int rc = drain_request(c, q) < 0 ? -1 : 0;
    if (rc == 0) {
        q->status = 200;
        q->resp_bytes = n;
        rc = finish(
            q, http_reply(c->cfd, 200, "OK", "application/xml", out, n, 0, !q->keepalive, NULL));
    }
    free(out);
    return rc;
}

static int precondition_failed(struct conn *c, struct request *q, const char *body, size_t len)
{
    if (q->kind == K_DELETE_OBJECTS)
        return delete_result_412(c, q, body, len);
    char doc[512], extra[64];
    if (drain_request(c, q) < 0)
        return -1;
    unsigned long id = state_next_id();
    int n = snprintf(doc, sizeof(doc),
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>PreconditionFailed"
                     "</Code><Message>At least one of the pre-conditions you specified did not "
                     "hold</Message><RequestId>proxy-%lu</RequestId></Error>",
                     id);
    snprintf(extra, sizeof(extra), "x-amz-request-id: proxy-%lu\r\n", id);
    q->status = 412;
    int rc = http_reply(c->cfd, 412, "Precondition Failed", "application/xml", doc, (size_t)n,
                        q->head_method, !q->keepalive, extra);
    if (!q->head_method)
        q->resp_bytes = (uint64_t)n;
    return finish(q, rc);
}

/* The stall fault: say nothing for ms, then close. What the client sends meanwhile is
 * swallowed, so the close is an orderly FIN rather than a reset. */
static void stall(struct conn *c, long ms)
{
    int64_t end = now_ms() + ms;

    for (;;) {
        int64_t left = end - now_ms();
        if (left <= 0)
            return;
        struct pollfd p = {.fd = c->cfd, .events = POLLIN};
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || recv(c->cfd, c->cbuf, sizeof(c->cbuf), 0) <= 0)
            return;
    }
}

/* SO_LINGER {1, 0} makes close() send RST: the client sees "connection reset". */
static void hard_close(struct conn *c)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};

    setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(c->cfd);
    c->cfd = -1;
}

/* Reads the upstream answer's header block, skipping 1xx interim answers (the client
 * already had its 100 Continue from us). Returns 1, 0 on EOF before any byte, -errno. */
static int read_response(struct conn *c, struct request *q)
{
    char line[256];

    for (;;) {
        int rc = head_read(&c->urb, &c->resp);
        if (rc <= 0)
            return rc;
        if (head_start_line(&c->resp, line, sizeof(line)) < 0 || strncmp(line, "HTTP/", 5) != 0)
            return -EPROTO;
        const char *sp = strchr(line, ' ');
        int status = sp ? atoi(sp + 1) : 0;
        if (status < 100 || status > 999)
            return -EPROTO;
        if (status >= 200) {
            q->status = status;
            return 1;
        }
    }
}

/* Sends the request upstream and reads the answer's headers. A reused connection the
 * server dropped meanwhile is retried once on a fresh one, when nothing of the body has
 * been consumed. Returns 0, or -errno for an upstream failure (body drained), with
 * client_dead set when the client failed. */
static int exchange(struct conn *c, struct request *q)
{
    for (int attempt = 0;; attempt++) {
        int reused;
        int rc = upstream_open(c, &reused);
        if (rc == 0)
            rc = io_write_all(c->ufd, c->req.raw, c->req.len);
        if (rc < 0 && reused && attempt == 0) {
            upstream_close(c);
            continue;
        }
        struct relay x = {.src = &c->crb, .dst = rc == 0 ? c->ufd : -1, .keep_reading = 1};
        int brc = relay_body(&x, q->body, q->clen);
        q->req_bytes += x.bytes;
        if (brc < 0) {
            c->client_dead = 1;
            return brc;
        }
        /* Even when the body could not all be written, the server may have answered. */
        if (rc == 0)
            rc = read_response(c, q);
        if (rc > 0)
            return 0;
        upstream_close(c);
        if (rc == 0 && reused && attempt == 0 && q->body == BODY_NONE)
            continue;
        return rc == 0 ? -ECONNRESET : rc;
    }
}

static int bad_gateway(struct conn *c, struct request *q, int err)
{
    char body[512];
    int n =
        snprintf(body, sizeof(body), "s3proxy: upstream %s: %s\n", upstream_name(), strerror(-err));

    q->status = 502;
    int rc = http_reply(c->cfd, 502, "Bad Gateway", "text/plain", body, (size_t)n, q->head_method,
                        !q->keepalive, NULL);
    return finish(q, rc);
}

/* The reset fault: the request ran upstream, the client gets at most half the answer. */
static void reset_client(struct conn *c, struct request *q, enum body b, uint64_t len)
{
    int has_body = !(b == BODY_NONE || (b == BODY_LENGTH && len == 0));

    if (has_body && io_write_all(c->cfd, c->resp.raw, c->resp.len) == 0) {
        struct relay x = {.src = &c->urb, .dst = c->cfd};
        if (b == BODY_LENGTH)
            relay_fixed(&x, len / 2);
        else
            relay_prefix_half(&x);
        q->resp_bytes = x.bytes;
    }
    upstream_close(c);
    hard_close(c);
}

static int forward(struct conn *c, struct request *q, int reset)
{
    enum body b = BODY_NONE;
    uint64_t len = 0;

    int rc = exchange(c, q);
    if (rc < 0)
        return c->client_dead ? -1 : bad_gateway(c, q, rc);
    int no_body = q->head_method || q->status == 204 || q->status == 304;
    if (!no_body && head_body(&c->resp, BODY_CLOSE, &b, &len) < 0) {
        upstream_close(c);
        return bad_gateway(c, q, -EPROTO);
    }
    if (reset) {
        reset_client(c, q, b, len);
        return -1;
    }
    int wrc = q->mangle == M_NONE ? io_write_all(c->cfd, c->resp.raw, c->resp.len)
                                  : mangle_write_head(c->cfd, &c->resp, q->mangle, no_body);
    if (wrc < 0) {
        upstream_close(c);
        return -1;
    }
    struct relay x = {.src = &c->urb, .dst = c->cfd, .keep_reading = 0};
    rc = relay_body(&x, b, len);
    q->resp_bytes = x.bytes;
    /* The client was told Connection: close too, so it expects us to hang up. */
    int up_done = rc < 0 || b == BODY_CLOSE || head_has_token(&c->resp, "connection", "close");
    if (up_done)
        upstream_close(c);
    return (up_done || !q->keepalive) ? -1 : 0;
}

static int proxy(struct conn *c, struct request *q)
{
    struct decision d;
    int rc;

    q->kind = classify(q->method, q->target, q->host, q->copy_source);
    state_begin(q->kind, &d);
    q->fault = d.fault;
    q->mangle = d.mangle;
    if (d.fault == F_STALL) {
        log_request(q);
        stall(c, d.stall_ms);
        state_end(q->kind);
        return -1;
    }
    if (q->expect100 && io_write_all(c->cfd, CONTINUE_LINE, strlen(CONTINUE_LINE)) < 0) {
        state_end(q->kind);
        return -1;
    }
    sleep_ms(d.delay_ms);
    const char *body = NULL;
    size_t blen = 0;
    int p412 = d.fault == F_NONE ? precondition_due(c, q, &body, &blen) : 0;
    if (p412 < 0) {
        state_end(q->kind);
        return -1;
    }
    if (p412)
        rc = precondition_failed(c, q, body, blen);
    else if (d.fault == F_503 || d.fault == F_500)
        rc = s3_error(c, q, d.fault);
    else
        rc = forward(c, q, d.fault == F_RESET);
    state_bytes(q->kind, q->req_bytes, q->resp_bytes);
    state_end(q->kind);
    log_request(q);
    return rc;
}

/* Serves one request; returns 0 to keep the client connection, -1 to close it. */
static int serve_one(struct conn *c)
{
    struct request *q = &c->rq;
    static const char bad[] = "s3proxy: malformed request\n";

    int rc = head_read(&c->crb, &c->req);
    if (rc == -EMSGSIZE)
        http_reply(c->cfd, 431, "Request Header Fields Too Large", "text/plain", bad, strlen(bad),
                   0, 1, NULL);
    if (rc <= 0)
        return -1;
    if (parse_request(c, q) < 0) {
        http_reply(c->cfd, 400, "Bad Request", "text/plain", bad, strlen(bad), 0, 1, NULL);
        return -1;
    }
    if (strncmp(q->target, "/__proxy/", 9) == 0)
        return control(c, q);
    return proxy(c, q);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;

    while (serve_one(c) == 0)
        ;
    upstream_close(c);
    if (c->cfd >= 0)
        close(c->cfd);
    free(c);
    return NULL;
}

/* Takes ownership of fd and serves it on a detached thread. */
int conn_start(int fd)
{
    pthread_attr_t attr;
    pthread_t t;
    struct conn *c = malloc(sizeof(*c));

    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    c->cfd = fd;
    c->ufd = -1;
    c->client_dead = 0;
    c->crb = (struct rbuf){.fd = fd, .buf = c->cbuf, .cap = sizeof(c->cbuf)};
    c->urb = (struct rbuf){.fd = -1, .buf = c->ubuf, .cap = sizeof(c->ubuf)};
    sock_tune(fd);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* Buffers live in struct conn on the heap; a small stack lets many clients coexist. */
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&t, &attr, conn_main, c);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        close(fd);
        free(c);
        return -rc;
    }
    return 0;
}
