/* mangle.c - answers of a hostile or broken server, made from a real one: s3proxy
 * rewrites the header block of an upstream answer before relaying it.
 *
 *   etag_long     the ETag becomes 200 characters (S3's are at most ~40)
 *   clen_missing  a body-less answer (HEAD) loses its Content-Length
 *   clen_invalid  a body-less answer's Content-Length becomes "12abc"
 *   meta_flood    MANGLE_FLOOD_BYTES of x-amz-meta-* headers are added
 *
 * Content-Length is only touched on answers without a body, where it does not frame
 * anything, so the connection stays usable. */
#include "s3proxy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MANGLE_FLOOD_BYTES (4 * 1024 * 1024)

static const char *const mangle_names[MANGLE_COUNT] = {"etag_long", "clen_missing", "clen_invalid",
                                                       "meta_flood"};

const char *mangle_name(int m)
{
    return (m >= 0 && m < MANGLE_COUNT) ? mangle_names[m] : "none";
}

int mangle_parse(const char *s, size_t n)
{
    for (int m = 0; m < MANGLE_COUNT; m++)
        if (strlen(mangle_names[m]) == n && strncasecmp(mangle_names[m], s, n) == 0)
            return m;
    return -1;
}

static int is_header(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* The replacement for one header line, NULL to keep it, "" to drop it. */
static const char *replace_line(int m, int no_body, const char *line, size_t len)
{
    static const char long_etag[] =
        "ETag: \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456\"\r\n";
    if (m == M_ETAG_LONG && is_header(line, len, "etag"))
        return long_etag;
    if (no_body && is_header(line, len, "content-length"))
        return m == M_CLEN_MISSING ? "" : m == M_CLEN_INVALID ? "Content-Length: 12abc\r\n" : NULL;
    return NULL;
}

static int write_flood(int fd)
{
    char line[128];
    for (size_t sent = 0, i = 0; sent < MANGLE_FLOOD_BYTES; i++) {
        int n = snprintf(line, sizeof line, "x-amz-meta-flood%zu: %s\r\n", i,
                         "the quick brown fox jumps over the lazy dog, again");
        if (io_write_all(fd, line, (size_t)n) < 0)
            return -1;
        sent += (size_t)n;
    }
    return 0;
}

int mangle_write_head(int fd, const struct head *h, int m, int no_body)
{
    const char *p = h->raw, *end = h->raw + h->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t len = eol ? (size_t)(eol - p) + 1 : (size_t)(end - p);
        int blank = len <= 2 && (p[0] == '\r' || p[0] == '\n');
        if (blank && m == M_META_FLOOD && write_flood(fd) < 0)
            return -1;
        const char *r = p == h->raw ? NULL : replace_line(m, no_body, p, len);
        if (io_write_all(fd, r ? r : p, r ? strlen(r) : len) < 0)
            return -1;
        p += len;
    }
    return 0;
}
