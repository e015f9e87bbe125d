#include "s3cfs/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void (*wipe_free_hook)(const void *p, size_t n);

void wipe_free(void *p, size_t n)
{
    if (!p)
        return;
    explicit_bzero(p, n);
    if (wipe_free_hook)
        wipe_free_hook(p, n);
    free(p);
}

void sbuf_init(struct sbuf *b)
{
    *b = (struct sbuf)SBUF_INIT;
}

void sbuf_init_secret(struct sbuf *b)
{
    *b = (struct sbuf)SBUF_SECRET_INIT;
}

void sbuf_free(struct sbuf *b)
{
    bool secret = b->secret;
    if (secret)
        wipe_free(b->data, b->cap);
    else
        free(b->data);
    *b = (struct sbuf){.secret = secret};
}

/* realloc() may move the block and free the old one as it is: a secret
 * buffer moves by hand and wipes what it leaves. */
static char *grow(struct sbuf *b, size_t cap)
{
    if (!b->secret)
        return realloc(b->data, cap);
    char *p = malloc(cap);
    if (p && b->data) {
        memcpy(p, b->data, b->len + 1);
        wipe_free(b->data, b->cap);
    }
    return p;
}

void sbuf_reset(struct sbuf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int sbuf_reserve(struct sbuf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = grow(b, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int sbuf_append(struct sbuf *b, const void *p, size_t n)
{
    if (sbuf_reserve(b, n))
        return -ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sbuf_append_str(struct sbuf *b, const char *s)
{
    return sbuf_append(b, s, strlen(s));
}

int sbuf_append_char(struct sbuf *b, char c)
{
    return sbuf_append(b, &c, 1);
}

int sbuf_vappendf(struct sbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -EINVAL;
    if (sbuf_reserve(b, (size_t)n))
        return -ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sbuf_appendf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sbuf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *sbuf_str(const struct sbuf *b)
{
    return b->data ? b->data : "";
}

char *sbuf_detach(struct sbuf *b)
{
    char *p = b->data ? b->data : strdup("");
    bool secret = b->secret;
    *b = (struct sbuf){.secret = secret};
    return p;
}
