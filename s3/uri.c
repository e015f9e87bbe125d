/* uri.c - S3 URI encoding, decoding and canonical query strings.
 *
 * Each function either appends its whole result or leaves the buffer as it
 * was: space is reserved up front, so no append can fail half way and leave a
 * half-encoded key behind for the caller to send.
 */
#include "s3cfs/uri.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char hex_upper[] = "0123456789ABCDEF";

/* RFC 3986 unreserved characters: the only bytes SigV4 leaves as they are.
 * Written out rather than isalnum() so the locale can never change it. */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

int uri_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Finish a direct write into out's reserved space. */
static void commit(struct sbuf *out, size_t len)
{
    out->len = len;
    out->data[len] = '\0';
}

int uri_encode(struct sbuf *out, const char *s, size_t n, bool keep_slash)
{
    /* worst case every byte becomes %XX */
    if (n > (SIZE_MAX - out->len - 1) / 3)
        return -ENOMEM;
    if (sbuf_reserve(out, n * 3))
        return -ENOMEM;
    size_t len = out->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            out->data[len++] = (char)c;
        } else {
            out->data[len++] = '%';
            out->data[len++] = hex_upper[c >> 4];
            out->data[len++] = hex_upper[c & 15];
        }
    }
    commit(out, len);
    return 0;
}

int uri_encode_str(struct sbuf *out, const char *s, bool keep_slash)
{
    return uri_encode(out, s, strlen(s), keep_slash);
}

/* The byte written as "%XX" at s[i], or -1 when the escape is cut short or
 * not hex: a key we cannot decode exactly must not be guessed at. */
static int decode_escape(const char *s, size_t n, size_t i)
{
    if (n - i < 3)
        return -1;
    int hi = uri_hex_value((unsigned char)s[i + 1]);
    int lo = uri_hex_value((unsigned char)s[i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    return hi << 4 | lo;
}

/* The byte s[*i] stands for, with *i moved onto the last character of an
 * escape; -1 for an escape decode_escape refuses. */
static int decoded_byte(const char *s, size_t n, size_t *i, bool plus_is_space)
{
    if (s[*i] == '%') {
        int b = decode_escape(s, n, *i);
        if (b >= 0)
            *i += 2;
        return b;
    }
    if (s[*i] == '+' && plus_is_space)
        return ' ';
    return (unsigned char)s[*i];
}

int uri_decode(struct sbuf *out, const char *s, size_t n, bool plus_is_space)
{
    /* decoding never grows the text */
    if (sbuf_reserve(out, n))
        return -ENOMEM;
    size_t len = out->len;
    for (size_t i = 0; i < n; i++) {
        int c = decoded_byte(s, n, &i, plus_is_space);
        if (c < 0) {
            /* undo the partial write: out is as it was before the call */
            out->data[out->len] = '\0';
            return -EINVAL;
        }
        out->data[len++] = (char)c;
    }
    commit(out, len);
    return 0;
}

/* One encoded parameter: offsets into a scratch buffer, because the buffer
 * may move while it grows. */
struct enc_param {
    size_t name;
    size_t value;
    const char *base;
};

static int enc_param_cmp(const void *a, const void *b)
{
    const struct enc_param *x = a, *y = b;
    int c = strcmp(x->base + x->name, y->base + y->name);
    return c ? c : strcmp(x->base + x->value, y->base + y->value);
}

/* Encode every name and value into scratch as NUL-separated strings. */
static int encode_params(struct sbuf *scratch, struct enc_param *enc,
                         const struct query_param *params, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *value = params[i].value ? params[i].value : "";
        enc[i].name = scratch->len;
        if (uri_encode_str(scratch, params[i].name, false) || sbuf_append_char(scratch, '\0'))
            return -ENOMEM;
        enc[i].value = scratch->len;
        if (uri_encode_str(scratch, value, false) || sbuf_append_char(scratch, '\0'))
            return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        enc[i].base = scratch->data;
    return 0;
}

/* Append "name=value&..." of the sorted entries, all or nothing. */
static int join_params(struct sbuf *out, const struct enc_param *enc, size_t n,
                       const struct sbuf *scratch)
{
    /* scratch holds every name and value plus one NUL each: as many bytes as
     * the result, whose '=' and '&' take the place of the NULs */
    if (sbuf_reserve(out, scratch->len))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sbuf_append_char(out, '&');
        sbuf_append_str(out, enc[i].base + enc[i].name);
        sbuf_append_char(out, '=');
        sbuf_append_str(out, enc[i].base + enc[i].value);
    }
    return 0;
}

int uri_canonical_query(struct sbuf *out, const struct query_param *params, size_t n)
{
    if (n == 0)
        return sbuf_append(out, "", 0);
    for (size_t i = 0; i < n; i++)
        if (!params[i].name)
            return -EINVAL;
    struct enc_param *enc = calloc(n, sizeof *enc);
    if (!enc)
        return -ENOMEM;
    struct sbuf scratch = SBUF_INIT;
    int rc = encode_params(&scratch, enc, params, n);
    if (rc == 0) {
        /* SigV4 sorts by encoded name, then encoded value, in byte order */
        qsort(enc, n, sizeof *enc, enc_param_cmp);
        rc = join_params(out, enc, n, &scratch);
    }
    sbuf_free(&scratch);
    free(enc);
    return rc;
}
