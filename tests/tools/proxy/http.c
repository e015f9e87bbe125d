/* http.c - HTTP/1.1 plumbing for s3proxy: buffered socket reads, header lookup, and
 * relaying bodies through a fixed buffer so a GiB object never sits in memory. */
#include "s3proxy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

int io_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        /* MSG_NOSIGNAL: a vanished peer must cost an EPIPE, not the process. */
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Callers only ask for more once everything buffered is consumed, so the buffer restarts
 * at 0. Returns the number of bytes read, 0 at end of stream, or -errno. */
ssize_t rb_fill(struct rbuf *r)
{
    r->off = r->len = 0;
    for (;;) {
        ssize_t n = recv(r->fd, r->buf, r->cap, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        r->len = (size_t)n;
        return n;
    }
}

int rb_peek(struct rbuf *r, size_t n)
{
    if (n > r->cap)
        return -EMSGSIZE;
    if (r->off > 0) { /* the unread bytes to the front, so that n fit */
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    while (r->len < n) {
        ssize_t got = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? -errno : -ECONNRESET;
        r->len += (size_t)got;
    }
    return 0;
}

static int head_complete(const struct head *h)
{
    const char *e = h->raw + h->len;

    if (h->len >= 2 && e[-1] == '\n' && e[-2] == '\n')
        return 1;
    return h->len >= 3 && e[-1] == '\n' && e[-2] == '\r' && e[-3] == '\n';
}

/* Reads a start line and headers up to the blank line. Returns 1 when a block was read,
 * 0 on end of stream before any byte (a clean keep-alive close), or -errno. */
int head_read(struct rbuf *r, struct head *h)
{
    h->len = 0;
    for (;;) {
        while (r->off < r->len) {
            char ch = r->buf[r->off++];
            /* Empty lines before a start line are to be ignored (RFC 9112 section 2.2). */
            if (h->len == 0 && (ch == '\r' || ch == '\n'))
                continue;
            if (h->len + 1 >= sizeof(h->raw))
                return -EMSGSIZE;
            h->raw[h->len++] = ch;
            if (ch == '\n' && head_complete(h)) {
                h->raw[h->len] = '\0';
                return 1;
            }
        }
        ssize_t n = rb_fill(r);
        if (n == 0)
            return h->len == 0 ? 0 : -ECONNRESET;
        if (n < 0)
            return (int)n;
    }
}

/* Copies the start line, without its line end, into out. */
int head_start_line(const struct head *h, char *out, size_t cap)
{
    const char *nl = memchr(h->raw, '\n', h->len);
    size_t n = nl ? (size_t)(nl - h->raw) : h->len;

    if (n > 0 && h->raw[n - 1] == '\r')
        n--;
    if (n >= cap)
        return -EMSGSIZE;
    memcpy(out, h->raw, n);
    out[n] = '\0';
    return memchr(out, '\0', n) ? -EPROTO : 0;
}

/* Finds the first header called name (case-insensitively); the value excludes blanks. */
static int head_find(const struct head *h, const char *name, const char **val, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *end = h->raw + h->len;
    const char *p = memchr(h->raw, '\n', h->len);

    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon && (size_t)(colon - line) == nlen && strncasecmp(line, name, nlen) == 0) {
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *val = v;
            *vlen = (size_t)(ve - v);
            return 1;
        }
        p = eol;
    }
    return 0;
}

/* Returns 1 and copies the (possibly truncated) value when the header exists. */
int head_get(const struct head *h, const char *name, char *out, size_t cap)
{
    const char *v;
    size_t n;

    if (!head_find(h, name, &v, &n))
        return 0;
    if (cap > 0) {
        if (n >= cap)
            n = cap - 1;
        memcpy(out, v, n);
        out[n] = '\0';
    }
    return 1;
}

/* Whether a comma-separated header (Connection, Expect, Transfer-Encoding) lists token. */
int head_has_token(const struct head *h, const char *name, const char *token)
{
    const char *v;
    size_t n, tlen = strlen(token);

    if (!head_find(h, name, &v, &n))
        return 0;
    while (n > 0) {
        while (n > 0 && (*v == ',' || *v == ' ' || *v == '\t')) {
            v++;
            n--;
        }
        size_t len = 0;
        while (len < n && v[len] != ',' && v[len] != ' ' && v[len] != '\t' && v[len] != ';')
            len++;
        if (len == tlen && strncasecmp(v, token, tlen) == 0)
            return 1;
        while (len < n && v[len] != ',')
            len++;
        v += len;
        n -= len;
    }
    return 0;
}

/* Decides how the body after this header block is framed; dflt applies when neither
 * Transfer-Encoding nor Content-Length says (no body for requests, until close for
 * responses). */
int head_body(const struct head *h, enum body dflt, enum body *b, uint64_t *len)
{
    char v[64], *end;

    *len = 0;
    if (head_has_token(h, "transfer-encoding", "chunked")) {
        *b = BODY_CHUNKED;
        return 0;
    }
    if (!head_get(h, "content-length", v, sizeof(v))) {
        *b = dflt;
        return 0;
    }
    if (!isdigit((unsigned char)v[0]))
        return -EINVAL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *b = BODY_LENGTH;
    *len = n;
    return 0;
}

static int relay_out(struct relay *x, const char *p, size_t n)
{
    if (x->dst >= 0 && x->werr == 0)
        x->werr = io_write_all(x->dst, p, n);
    return (x->werr != 0 && !x->keep_reading) ? x->werr : 0;
}

/* Makes sure some unread source data is buffered; a body cut short is an error. */
static int relay_need(struct relay *x)
{
    if (x->src->off < x->src->len)
        return 0;
    ssize_t n = rb_fill(x->src);
    if (n == 0)
        return -ECONNRESET;
    return n < 0 ? (int)n : 0;
}

int relay_fixed(struct relay *x, uint64_t n)
{
    struct rbuf *r = x->src;

    while (n > 0) {
        int rc = relay_need(x);
        if (rc < 0)
            return rc;
        size_t take = r->len - r->off;
        if (take > n)
            take = (size_t)n;
        rc = relay_out(x, r->buf + r->off, take);
        r->off += take;
        n -= take;
        x->bytes += take;
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Relays one line (chunk size, chunk end, trailer) byte by byte: lines are short. */
static int relay_line(struct relay *x, char *line, size_t cap, size_t *len)
{
    *len = 0;
    for (;;) {
        int rc = relay_need(x);
        if (rc < 0)
            return rc;
        char ch = x->src->buf[x->src->off++];
        if (*len + 1 >= cap)
            return -EMSGSIZE;
        line[(*len)++] = ch;
        if (ch == '\n') {
            line[*len] = '\0';
            return relay_out(x, line, *len);
        }
    }
}

static int line_is_empty(const char *line, size_t n)
{
    return n == 1 || (n == 2 && line[0] == '\r');
}

/* Chunked bodies go through as they are (sizes, extensions, trailers); only the chunk
 * data is counted as payload. */
static int relay_chunked(struct relay *x)
{
    char line[4096];
    size_t n;
    int rc;

    for (;;) {
        if ((rc = relay_line(x, line, sizeof(line), &n)) < 0)
            return rc;
        if (!isxdigit((unsigned char)line[0]))
            return -EPROTO;
        errno = 0;
        unsigned long long size = strtoull(line, NULL, 16);
        if (errno != 0)
            return -EPROTO;
        if (size == 0)
            break;
        if ((rc = relay_fixed(x, size)) < 0)
            return rc;
        if ((rc = relay_line(x, line, sizeof(line), &n)) < 0)
            return rc;
        if (!line_is_empty(line, n))
            return -EPROTO;
    }
    do {
        if ((rc = relay_line(x, line, sizeof(line), &n)) < 0)
            return rc;
    } while (!line_is_empty(line, n));
    return 0;
}

static int relay_until_close(struct relay *x)
{
    struct rbuf *r = x->src;

    for (;;) {
        if (r->off == r->len) {
            ssize_t n = rb_fill(r);
            if (n <= 0)
                return (int)n;
        }
        size_t take = r->len - r->off;
        int rc = relay_out(x, r->buf + r->off, take);
        r->off = r->len;
        x->bytes += take;
        if (rc < 0)
            return rc;
    }
}

int relay_body(struct relay *x, enum body b, uint64_t len)
{
    switch (b) {
    case BODY_LENGTH:
        return relay_fixed(x, len);
    case BODY_CHUNKED:
        return relay_chunked(x);
    case BODY_CLOSE:
        return relay_until_close(x);
    default:
        return 0;
    }
}

/* For the reset fault on a body of unknown length: half of what the first read brings
 * is "part of the answer" without knowing the whole. */
int relay_prefix_half(struct relay *x)
{
    struct rbuf *r = x->src;

    if (r->off == r->len && rb_fill(r) <= 0)
        return 0;
    size_t take = (r->len - r->off) / 2;
    int rc = relay_out(x, r->buf + r->off, take);
    r->off += take;
    x->bytes += take;
    return rc;
}

/* Sends a complete response the proxy makes up itself (errors, control API). */
int http_reply(int fd, int status, const char *reason, const char *ctype, const char *body,
               size_t n, int head_only, int close_after, const char *extra)
{
    char hdr[1024];
    int hl = snprintf(
        hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
        status, reason, ctype, n, extra ? extra : "", close_after ? "Connection: close\r\n" : "");
    if (hl < 0 || (size_t)hl >= sizeof(hdr))
        return -EOVERFLOW;
    int rc = io_write_all(fd, hdr, (size_t)hl);
    if (rc == 0 && !head_only && n > 0)
        rc = io_write_all(fd, body, n);
    return rc;
}
