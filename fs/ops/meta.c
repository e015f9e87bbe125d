/* meta.c - POSIX attributes <-> S3 user metadata, s3fs-fuse compatible.
 *
 * Everything read here was written by some other program, possibly long
 * ago and possibly wrongly, so every parser is strict about what it accepts
 * and a value it cannot read is ignored (the entry falls back to its
 * defaults) rather than half-read or trusted.
 */
#include "s3cfs/meta.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "s3cfs/uri.h"

/* The fields meta_from_stat() writes, in meta_set order. */
enum { F_MODE, F_UID, F_GID, F_MTIME, F_CTIME, F_ATIME, F_COUNT };

static const char *const field_names[F_COUNT] = {"mode", "uid", "gid", "mtime", "ctime", "atime"};

_Static_assert(F_COUNT + 2 == META_SET_MAX, "meta_set holds the fields, rdev and the xattr header");

#define MODE_MAX     ((uint64_t)(S_IFMT | 07777))
#define NSEC_PER_SEC 1000000000L
/* largest time_t, without assuming its width */
#define TIME_MAX ((uint64_t)(sizeof(time_t) >= 8 ? INT64_MAX : INT32_MAX))

const char *meta_find(const struct s3_meta *m, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (m[i].name && m[i].value && strcmp(m[i].name, name) == 0)
            return m[i].value;
    return NULL;
}

/* ---- reading numbers ---- */

/* Written out rather than isdigit() so the locale can never change it. */
static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Decimal digits at *p (at least one) not above max; *p is moved past
 * them. -EINVAL on no digits or overflow. */
static int parse_digits(const char **p, uint64_t max, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!is_digit(*s))
        return -EINVAL;
    for (; is_digit(*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

/* A whole string of decimal digits, at most max. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (parse_digits(&s, max, out))
        return -EINVAL;
    return *s ? -EINVAL : 0;
}

/* The digits after the '.' of a time as nanoseconds. Fewer than nine
 * digits are a decimal fraction (rclone writes "1.5"); digits past the
 * ninth are below a nanosecond and dropped. */
static int parse_fraction(const char **p, long *nsec)
{
    const char *s = *p;
    long v = 0;
    int digits = 0;
    for (; is_digit(*s); s++, digits++)
        if (digits < 9)
            v = v * 10 + (*s - '0');
    if (digits == 0)
        return -EINVAL;
    for (; digits < 9; digits++)
        v *= 10;
    *p = s;
    *nsec = v;
    return 0;
}

/* "%ld" or "%ld.%09ld" as s3fs writes it. The sign applies to the seconds
 * only: s3fs prints a normalised timespec field by field, so "-5.000000001"
 * is tv_sec -5, tv_nsec 1. */
static int parse_time(const char *s, struct timespec *out)
{
    bool neg = *s == '-';
    uint64_t sec;
    long nsec = 0;
    s += neg;
    if (parse_digits(&s, TIME_MAX, &sec))
        return -EINVAL;
    if (*s == '.') {
        s++;
        if (parse_fraction(&s, &nsec))
            return -EINVAL;
    }
    if (*s)
        return -EINVAL;
    out->tv_sec = neg ? -(time_t)sec : (time_t)sec;
    out->tv_nsec = nsec;
    return 0;
}

/* ---- metadata -> struct stat ---- */

static mode_t default_mode(enum meta_kind kind, const struct meta_defaults *d)
{
    mode_t perm = kind == META_DIR ? d->dir_mode : d->file_mode;
    mode_t type = kind == META_DIR ? S_IFDIR : S_IFREG;
    return type | (perm & 07777 & ~d->umask);
}

/* The key decides what is a directory (doc/DESIGN.md §2): a plain object holds
 * data, so it reads as a file even if its mode says directory. Special
 * files are empty objects whose mode carries the type (s3fs's mknod);
 * device nodes stay inert unless the mount has `dev` (the kernel's
 * check, FUSE mounts are nodev by default). */
static mode_t file_type(mode_t stored, enum meta_kind kind)
{
    if (kind == META_DIR)
        return S_IFDIR;
    switch (stored & S_IFMT) {
    case S_IFLNK:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
        return stored & S_IFMT;
    default:
        return S_IFREG;
    }
}

static mode_t resolve_mode(const char *v, enum meta_kind kind, const struct meta_defaults *d)
{
    uint64_t raw;
    if (!v || parse_uint(v, MODE_MAX, &raw))
        return default_mode(kind, d);
    return file_type((mode_t)raw, kind) | ((mode_t)raw & 07777);
}

/* An owner id, or dflt. (uid_t)-1 means "no owner" to chown(2), so it is
 * never a real stored value. */
static uint64_t resolve_id(const char *v, uint64_t dflt)
{
    uint64_t id;
    if (!v || parse_uint(v, (uint64_t)(uid_t)-1 - 1, &id))
        return dflt;
    return id;
}

/* A device number as s3fs writes it: the decimal dev_t; 0 if unreadable. */
static dev_t resolve_rdev(const char *v)
{
    uint64_t rdev;
    if (!v || parse_uint(v, (uint64_t)(dev_t)-1, &rdev))
        return 0;
    return (dev_t)rdev;
}

static struct timespec resolve_time(const char *v, const struct timespec *dflt)
{
    struct timespec ts;
    if (!v || parse_time(v, &ts))
        return *dflt;
    return ts;
}

void meta_to_stat(const struct s3_meta *m, size_t n, uint64_t size,
                  const struct timespec *last_modified, enum meta_kind kind,
                  const struct meta_defaults *d, struct stat *st)
{
    const struct timespec *base = last_modified ? last_modified : &d->time;

    memset(st, 0, sizeof *st);
    st->st_mode = resolve_mode(meta_find(m, n, "mode"), kind, d);
    st->st_uid = (uid_t)resolve_id(meta_find(m, n, "uid"), d->uid);
    st->st_gid = (gid_t)resolve_id(meta_find(m, n, "gid"), d->gid);
    /* a time the metadata lacks is when the object was last written */
    st->st_mtim = resolve_time(meta_find(m, n, "mtime"), base);
    st->st_ctim = resolve_time(meta_find(m, n, "ctime"), base);
    st->st_atim = resolve_time(meta_find(m, n, "atime"), base);
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
        st->st_rdev = resolve_rdev(meta_find(m, n, "rdev"));
    /* a directory's subdirectories are not known here: 1 is what find
     * and fts read as "unknown" (lookup.c counts them when it can) */
    st->st_nlink = 1;
    st->st_size = size > (uint64_t)INT64_MAX ? INT64_MAX : (off_t)size;
    st->st_blocks = (blkcnt_t)(size / 512 + (size % 512 != 0));
    st->st_blksize = META_BLKSIZE;
}

/* ---- struct stat -> metadata ---- */

static void format_time(char *buf, const struct timespec *ts)
{
    /* UTIME_NOW/UTIME_OMIT must never reach a bucket as a time */
    if (ts->tv_nsec > 0 && ts->tv_nsec < NSEC_PER_SEC)
        snprintf(buf, META_VALUE_MAX, "%lld.%09ld", (long long)ts->tv_sec, ts->tv_nsec);
    else
        snprintf(buf, META_VALUE_MAX, "%lld", (long long)ts->tv_sec);
}

void meta_from_stat(const struct stat *st, struct meta_set *out)
{
    snprintf(out->value[F_MODE], META_VALUE_MAX, "%lu", (unsigned long)st->st_mode);
    snprintf(out->value[F_UID], META_VALUE_MAX, "%lu", (unsigned long)st->st_uid);
    snprintf(out->value[F_GID], META_VALUE_MAX, "%lu", (unsigned long)st->st_gid);
    format_time(out->value[F_MTIME], &st->st_mtim);
    format_time(out->value[F_CTIME], &st->st_ctim);
    format_time(out->value[F_ATIME], &st->st_atim);
    for (size_t i = 0; i < F_COUNT; i++) {
        out->meta[i].name = field_names[i];
        out->meta[i].value = out->value[i];
    }
    out->nmeta = F_COUNT;
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
        snprintf(out->value[F_COUNT], META_VALUE_MAX, "%llu", (unsigned long long)st->st_rdev);
        out->meta[F_COUNT].name = "rdev";
        out->meta[F_COUNT].value = out->value[F_COUNT];
        out->nmeta = F_COUNT + 1;
    }
    out->nfields = out->nmeta;
}

void meta_set_xattr(struct meta_set *out, const char *encoded)
{
    out->nmeta = out->nfields;
    if (!encoded || !*encoded)
        return;
    out->meta[out->nmeta].name = "xattr";
    out->meta[out->nmeta].value = encoded;
    out->nmeta++;
}

/* ---- base64, standard alphabet with padding (as s3fs writes it) ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int b64_encode(struct sbuf *out, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        uint32_t v = (uint32_t)p[i] << 16;
        if (left > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (left > 2)
            v |= p[i + 2];
        char q[4] = {b64_alphabet[v >> 18 & 63], b64_alphabet[v >> 12 & 63],
                     left > 1 ? b64_alphabet[v >> 6 & 63] : '=',
                     left > 2 ? b64_alphabet[v & 63] : '='};
        if (sbuf_append(out, q, 4))
            return -ENOMEM;
    }
    return 0;
}

/* Decode s[0..n) into out (emptied first). Padding is optional, but if
 * present it must complete the last quantum; '=' anywhere else, a stray
 * character or a lone last character is -EINVAL. */
static int b64_decode(struct sbuf *out, const char *s, size_t n)
{
    size_t pad = 0;
    while (pad < 2 && pad < n && s[n - 1 - pad] == '=')
        pad++;
    n -= pad;
    if (n % 4 == 1 || (pad && (n + pad) % 4))
        return -EINVAL;
    sbuf_reset(out);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (sbuf_append_char(out, (char)(acc >> bits)))
                return -ENOMEM;
            acc &= (1u << bits) - 1;
        }
    }
    return 0;
}

/* ---- the attribute set ---- */

void meta_xattrs_init(struct meta_xattrs *x)
{
    x->v = NULL;
    x->n = 0;
    x->cap = 0;
}

static void xattr_clear(struct meta_xattr *e)
{
    free(e->name);
    free(e->value);
    memset(e, 0, sizeof *e);
}

void meta_xattrs_free(struct meta_xattrs *x)
{
    for (size_t i = 0; i < x->n; i++)
        xattr_clear(&x->v[i]);
    free(x->v);
    meta_xattrs_init(x);
}

static struct meta_xattr *xattr_find(const struct meta_xattrs *x, const char *name)
{
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->v[i].name, name) == 0)
            return &x->v[i];
    return NULL;
}

static int check_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0)
        return -EINVAL;
    return len > META_XATTR_NAME_MAX ? -ERANGE : 0;
}

static int xattr_fill(struct meta_xattr *e, const char *name, const void *value, size_t len)
{
    e->name = strdup(name);
    e->value = malloc(len ? len : 1); /* never NULL, even when empty */
    e->len = len;
    if (!e->name || !e->value) {
        xattr_clear(e);
        return -ENOMEM;
    }
    if (len)
        memcpy(e->value, value, len);
    return 0;
}

static int xattrs_grow(struct meta_xattrs *x)
{
    if (x->n < x->cap)
        return 0;
    size_t cap = x->cap ? x->cap * 2 : 4;
    struct meta_xattr *v = realloc(x->v, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    x->v = v;
    x->cap = cap;
    return 0;
}

/* Put name=value: a new name goes last, an existing one is replaced in
 * place. The replaced entry moves to *old (zeroed when there was none), so
 * the caller can free it or put it back. */
static int xattrs_put(struct meta_xattrs *x, const char *name, const void *value, size_t len,
                      struct meta_xattr *old)
{
    struct meta_xattr e;
    struct meta_xattr *slot = xattr_find(x, name);
    memset(old, 0, sizeof *old);
    if (xattr_fill(&e, name, value, len))
        return -ENOMEM;
    if (!slot && xattrs_grow(x)) {
        xattr_clear(&e);
        return -ENOMEM;
    }
    if (slot)
        *old = *slot;
    else
        slot = &x->v[x->n++];
    *slot = e;
    return 0;
}

/* Take back the xattrs_put() of name that returned *old. */
static void xattrs_undo(struct meta_xattrs *x, const char *name, struct meta_xattr *old)
{
    if (!old->name) {
        xattr_clear(&x->v[--x->n]);
        return;
    }
    struct meta_xattr *slot = xattr_find(x, name);
    xattr_clear(slot);
    *slot = *old;
}

/* Whether x still encodes within META_XATTR_MAX: only the encoding can
 * tell, as '+', '/' and '=' of the base64 each take three bytes. */
static int xattrs_check_fits(const struct meta_xattrs *x)
{
    struct sbuf tmp = SBUF_INIT;
    int rc = meta_xattr_encode(x, &tmp);
    sbuf_free(&tmp);
    return rc;
}

int meta_xattr_set(struct meta_xattrs *x, const char *name, const void *value, size_t len,
                   int flags)
{
    int rc = check_name(name);
    if (rc)
        return rc;
    if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
        return -EINVAL;
    bool exists = xattr_find(x, name) != NULL;
    if (exists && (flags & XATTR_CREATE))
        return -EEXIST;
    if (!exists && (flags & XATTR_REPLACE))
        return -ENODATA;
    /* base64 only grows a value: refuse before copying a huge one */
    if (len > META_XATTR_MAX)
        return -E2BIG;
    struct meta_xattr old;
    rc = xattrs_put(x, name, value, len, &old);
    if (rc)
        return rc;
    rc = xattrs_check_fits(x);
    if (rc)
        xattrs_undo(x, name, &old);
    else
        xattr_clear(&old);
    return rc;
}

int meta_xattr_remove(struct meta_xattrs *x, const char *name)
{
    struct meta_xattr *e = xattr_find(x, name);
    if (!e)
        return -ENODATA;
    size_t i = (size_t)(e - x->v);
    xattr_clear(e);
    /* keep the order, so rewriting an object changes no more than needed */
    memmove(e, e + 1, (x->n - i - 1) * sizeof *e);
    x->n--;
    return 0;
}

ssize_t meta_xattr_get(const struct meta_xattrs *x, const char *name, void *buf, size_t size)
{
    const struct meta_xattr *e = xattr_find(x, name);
    if (!e)
        return -ENODATA;
    if (size == 0)
        return (ssize_t)e->len;
    if (size < e->len)
        return -ERANGE;
    if (e->len)
        memcpy(buf, e->value, e->len);
    return (ssize_t)e->len;
}

ssize_t meta_xattr_list(const struct meta_xattrs *x, char *buf, size_t size)
{
    size_t total = 0;
    for (size_t i = 0; i < x->n; i++)
        total += strlen(x->v[i].name) + 1;
    if (size == 0)
        return (ssize_t)total;
    if (size < total)
        return -ERANGE;
    for (size_t i = 0, off = 0; i < x->n; i++) {
        size_t len = strlen(x->v[i].name) + 1;
        memcpy(buf + off, x->v[i].name, len);
        off += len;
    }
    return (ssize_t)total;
}

/* ---- JSON: just the one object of strings s3fs writes ---- */

struct json {
    const char *p;
    const char *end;
};

static void json_ws(struct json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

/* Skip whitespace, then consume c if it is next. */
static bool json_eat(struct json *j, char c)
{
    json_ws(j);
    if (j->p == j->end || *j->p != c)
        return false;
    j->p++;
    return true;
}

static int hex_digit(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int json_hex4(struct json *j, uint32_t *out)
{
    uint32_t v = 0;
    if (j->end - j->p < 4)
        return -EINVAL;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(*j->p++);
        if (d < 0)
            return -EINVAL;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

static int utf8_append(struct sbuf *out, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | cp >> 6);
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | cp >> 12);
        n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | cp >> 18);
        n = 4;
    }
    /* continuation bytes, six bits each, last one lowest */
    for (size_t i = n - 1; i > 0; i--, cp >>= 6)
        b[i] = (unsigned char)(0x80 | (cp & 0x3f));
    return sbuf_append(out, b, n);
}

/* After "\u": one code point, or a surrogate pair as two escapes. A lone
 * surrogate has no UTF-8 form, and a NUL cannot be part of a name. */
static int json_unicode(struct json *j, struct sbuf *out)
{
    uint32_t cp, lo;
    if (json_hex4(j, &cp) || cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
        return -EINVAL;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
            return -EINVAL;
        j->p += 2;
        if (json_hex4(j, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return -EINVAL;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    return utf8_append(out, cp);
}

/* After a backslash. */
static int json_escape(struct json *j, struct sbuf *out)
{
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    if (j->p == j->end)
        return -EINVAL;
    char c = *j->p++;
    if (c == 'u')
        return json_unicode(j, out);
    const char *k = c ? strchr(from, c) : NULL;
    return k ? sbuf_append_char(out, to[k - from]) : -EINVAL;
}

/* A JSON string into out (emptied first); raw control characters are not
 * JSON, and a NUL would end a name early. */
static int json_string(struct json *j, struct sbuf *out)
{
    sbuf_reset(out);
    if (!json_eat(j, '"'))
        return -EINVAL;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p++;
        int rc;
        if (c == '"')
            return 0;
        if (c < 0x20)
            return -EINVAL;
        rc = c == '\\' ? json_escape(j, out) : sbuf_append_char(out, (char)c);
        if (rc)
            return rc;
    }
    return -EINVAL; /* unterminated */
}

/* Scratch space for one "name":"value" member. */
struct json_member {
    struct sbuf name;
    struct sbuf b64;
    struct sbuf value;
};

static int json_member(struct json *j, struct json_member *s, struct meta_xattrs *x)
{
    struct meta_xattr old;
    int rc = json_string(j, &s->name);
    if (!rc)
        rc = json_eat(j, ':') ? json_string(j, &s->b64) : -EINVAL;
    if (!rc)
        rc = b64_decode(&s->value, sbuf_str(&s->b64), s->b64.len);
    if (!rc)
        rc = check_name(sbuf_str(&s->name));
    if (!rc)
        rc = xattrs_put(x, sbuf_str(&s->name), s->value.data, s->value.len, &old);
    if (!rc)
        xattr_clear(&old); /* a repeated name: the last one wins, as in JSON */
    return rc;
}

/* The whole text: one object of string members and nothing after it. */
static int json_object(struct json *j, struct meta_xattrs *x)
{
    struct json_member s = {SBUF_INIT, SBUF_INIT, SBUF_INIT};
    int rc = json_eat(j, '{') ? 0 : -EINVAL;
    if (!rc && !json_eat(j, '}')) {
        do
            rc = json_member(j, &s, x);
        while (!rc && json_eat(j, ','));
        if (!rc && !json_eat(j, '}'))
            rc = -EINVAL;
    }
    json_ws(j);
    if (!rc && j->p != j->end)
        rc = -EINVAL;
    sbuf_free(&s.name);
    sbuf_free(&s.b64);
    sbuf_free(&s.value);
    return rc;
}

int meta_xattr_parse(const char *encoded, struct meta_xattrs *out)
{
    meta_xattrs_init(out);
    if (!encoded || !*encoded)
        return 0;
    /* '+' is base64, never a space: s3fs encodes it as %2B but a hand-made
     * header may not */
    struct sbuf text = SBUF_INIT;
    int rc = uri_decode(&text, encoded, strlen(encoded), false);
    if (!rc) {
        struct json j = {text.data, text.data + text.len};
        rc = json_object(&j, out);
    }
    sbuf_free(&text);
    if (rc) {
        meta_xattrs_free(out);
        if (rc != -ENOMEM)
            rc = -EINVAL; /* a too-long name is also just a malformed header */
    }
    return rc;
}

/* ---- encoding ---- */

/* Only '"', '\\' and control characters are escaped: the names s3fs can
 * read back (it does not unescape) come out byte for byte as it writes them. */
static int json_put_string(struct sbuf *out, const char *s)
{
    int rc = sbuf_append_char(out, '"');
    for (; !rc && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = sbuf_appendf(out, "\\%c", c);
        else if (c < 0x20)
            rc = sbuf_appendf(out, "\\u%04x", c);
        else
            rc = sbuf_append_char(out, (char)c);
    }
    return rc ? rc : sbuf_append_char(out, '"');
}

static int xattrs_json(const struct meta_xattrs *x, struct sbuf *out)
{
    int rc = sbuf_append_char(out, '{');
    for (size_t i = 0; !rc && i < x->n; i++) {
        if (i > 0)
            rc = sbuf_append_char(out, ',');
        if (!rc)
            rc = json_put_string(out, x->v[i].name);
        if (!rc)
            rc = sbuf_append_str(out, ":\"");
        if (!rc)
            rc = b64_encode(out, x->v[i].value, x->v[i].len);
        if (!rc)
            rc = sbuf_append_char(out, '"');
    }
    return rc ? rc : sbuf_append_char(out, '}');
}

int meta_xattr_encode(const struct meta_xattrs *x, struct sbuf *out)
{
    if (x->n == 0)
        return 0;
    struct sbuf text = SBUF_INIT;
    size_t start = out->len;
    int rc = xattrs_json(x, &text);
    /* as s3fs: every byte but A-Z a-z 0-9 - _ . ~ as %XX */
    if (!rc)
        rc = uri_encode(out, text.data, text.len, false);
    if (!rc && out->len - start > META_XATTR_MAX) {
        out->len = start;
        out->data[start] = '\0';
        rc = -E2BIG;
    }
    sbuf_free(&text);
    return rc;
}
