/* sigv4.c - AWS Signature Version 4, header-based, with OpenSSL libcrypto.
 *
 * The steps follow the AWS documentation: canonical request, string to sign,
 * signing key (four chained HMACs, cached), signature. Every intermediate
 * string is built in an sbuf local to the call, so the only shared state is
 * the signing-key cache below.
 */
#include "sigv4.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SHA256_LEN      32
/* A mount signs for one or two (region, day) pairs at a time; a few more
 * entries cover key rotation and midnight without growing without bound. */
#define KEY_CACHE_SIZE 8

struct key_entry {
    unsigned char id[SHA256_LEN];  /* SHA-256 of secret, date, region, service */
    unsigned char key[SHA256_LEN]; /* the derived signing key */
    unsigned long last_use;        /* LRU clock value; 0 = empty slot */
};

/* The secret itself is never stored: entries are found by a digest of the
 * whole tuple, which also keeps every entry a fixed size. */
static struct {
    pthread_mutex_t lock;
    struct key_entry entry[KEY_CACHE_SIZE]; /* guarded by lock */
    unsigned long clock;                    /* guarded by lock */
} key_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void to_hex(const unsigned char *bin, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[bin[i] >> 4];
        hex[2 * i + 1] = digits[bin[i] & 15];
    }
    hex[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[SHA256_LEN];
    if (!EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL)) {
        /* an empty hash can never match, so a failure cannot sign wrongly */
        hex[0] = '\0';
        return;
    }
    to_hex(md, sizeof md, hex);
}

static int hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                       unsigned char out[SHA256_LEN])
{
    if (keylen > INT32_MAX)
        return -EINVAL;
    unsigned int outlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen))
        return -ENOMEM;
    return 0;
}

static int hmac_str(const unsigned char key[SHA256_LEN], const char *s,
                    unsigned char out[SHA256_LEN])
{
    return hmac_sha256(key, SHA256_LEN, s, strlen(s), out);
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
 * "aws4_request"). */
static int derive_key(const char *secret, const char *date, const char *region, const char *service,
                      unsigned char out[SHA256_LEN])
{
    struct sbuf k0 = SBUF_SECRET_INIT;
    unsigned char k[SHA256_LEN];
    int rc = sbuf_appendf(&k0, "AWS4%s", secret);
    if (rc == 0)
        rc = hmac_sha256(k0.data, k0.len, date, strlen(date), k);
    if (rc == 0)
        rc = hmac_str(k, region, out);
    if (rc == 0)
        rc = hmac_str(out, service, k);
    if (rc == 0)
        rc = hmac_str(k, "aws4_request", out);
    /* the intermediates are as good as the secret for a day: wipe them */
    OPENSSL_cleanse(k, sizeof k);
    sbuf_free(&k0);
    return rc;
}

/* The cache key: NUL separators keep ("ab","c") and ("a","bc") apart. */
static int key_id(const char *secret, const char *date, const char *region, const char *service,
                  unsigned char id[SHA256_LEN])
{
    const char *parts[] = {secret, date, region, service};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < sizeof parts / sizeof parts[0]; i++)
        ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1);
    ok = ok && EVP_DigestFinal_ex(ctx, id, NULL);
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -ENOMEM;
}

static bool cache_lookup(const unsigned char id[SHA256_LEN], unsigned char key[SHA256_LEN])
{
    bool found = false;
    pthread_mutex_lock(&key_cache.lock);
    for (size_t i = 0; i < KEY_CACHE_SIZE && !found; i++) {
        struct key_entry *e = &key_cache.entry[i];
        if (e->last_use && memcmp(e->id, id, SHA256_LEN) == 0) {
            memcpy(key, e->key, SHA256_LEN);
            e->last_use = ++key_cache.clock;
            found = true;
        }
    }
    pthread_mutex_unlock(&key_cache.lock);
    return found;
}

/* Replace the least recently used entry (empty slots have last_use 0). Two
 * threads that missed at once may both insert the same key: harmless, the
 * duplicate just ages out. */
static void cache_insert(const unsigned char id[SHA256_LEN], const unsigned char key[SHA256_LEN])
{
    pthread_mutex_lock(&key_cache.lock);
    struct key_entry *victim = &key_cache.entry[0];
    for (size_t i = 1; i < KEY_CACHE_SIZE; i++)
        if (key_cache.entry[i].last_use < victim->last_use)
            victim = &key_cache.entry[i];
    memcpy(victim->id, id, SHA256_LEN);
    memcpy(victim->key, key, SHA256_LEN);
    victim->last_use = ++key_cache.clock;
    pthread_mutex_unlock(&key_cache.lock);
}

/* The derivation runs outside the lock so a miss never stalls other
 * signers. */
static int signing_key(const char *secret, const char *date, const char *region,
                       const char *service, unsigned char key[SHA256_LEN])
{
    unsigned char id[SHA256_LEN];
    int rc = key_id(secret, date, region, service, id);
    if (rc)
        return rc;
    if (cache_lookup(id, key))
        return 0;
    rc = derive_key(secret, date, region, service, key);
    if (rc == 0)
        cache_insert(id, key);
    return rc;
}

/* "20150830T123600Z" and "20150830" for the scope. */
static int format_dates(time_t now, char amz_date[17], char date[9])
{
    struct tm tm;
    if (!gmtime_r(&now, &tm))
        return -EINVAL;
    if (strftime(amz_date, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        return -EINVAL;
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    return 0;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool name_is(const char *name, const char *lower)
{
    for (; *name && *lower; name++, lower++)
        if (ascii_lower(*name) != *lower)
            return false;
    return *name == '\0' && *lower == '\0';
}

static bool adds_token(const struct sigv4_request *req, const struct sigv4_credentials *cred)
{
    return cred->session_token && cred->session_token[0] && !req->omit_session_token;
}

/* Host must be signed; x-amz-date (and the token, when we add it) belong to
 * the signer: a second copy from the caller would be combined into "a,b" and
 * the server would reject the signature with no hint why. */
static int check_headers(const struct sigv4_request *req, const struct sigv4_credentials *cred)
{
    bool host = false;
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *name = req->headers[i].name;
        if (!name || !name[0] || !req->headers[i].value)
            return -EINVAL;
        if (name_is(name, "x-amz-date"))
            return -EINVAL;
        if (name_is(name, "x-amz-security-token") && adds_token(req, cred))
            return -EINVAL;
        host = host || name_is(name, "host");
    }
    return host ? 0 : -EINVAL;
}

static int check_request(const struct sigv4_request *req, const struct sigv4_credentials *cred)
{
    if (!req || !cred || !req->method || !req->canonical_uri || !req->payload_hash ||
        !req->region || !req->service || (req->nheaders && !req->headers))
        return -EINVAL;
    return check_headers(req, cred);
}

/* One header as it goes into the canonical form. Offsets, not pointers:
 * the scratch buffer holding the text may move while it grows. */
struct canon_hdr {
    size_t name;  /* lower-cased name */
    size_t value; /* trimmed, inner blanks folded to one space */
    size_t order; /* position in the request: repeated names keep it */
    const char *base;
};

static int canon_hdr_cmp(const void *a, const void *b)
{
    const struct canon_hdr *x = a, *y = b;
    int c = strcmp(x->base + x->name, y->base + y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Trim, and fold every run of blanks (including the line breaks of a folded
 * multi-line value) into one space, as SigV4's "Trimall" asks. */
static int append_folded(struct sbuf *out, const char *v)
{
    if (sbuf_reserve(out, strlen(v)))
        return -ENOMEM;
    size_t start = out->len;
    bool gap = false;
    for (; *v; v++) {
        if (is_blank(*v)) {
            gap = out->len > start;
            continue;
        }
        if (gap)
            sbuf_append_char(out, ' ');
        gap = false;
        sbuf_append_char(out, *v);
    }
    return 0;
}

static int add_header(struct sbuf *scratch, struct canon_hdr *h, size_t order, const char *name,
                      const char *value)
{
    h->order = order;
    h->name = scratch->len;
    if (sbuf_reserve(scratch, strlen(name) + 1))
        return -ENOMEM;
    for (const char *p = name; *p; p++)
        sbuf_append_char(scratch, ascii_lower(*p));
    sbuf_append_char(scratch, '\0');
    h->value = scratch->len;
    if (append_folded(scratch, value) || sbuf_append_char(scratch, '\0'))
        return -ENOMEM;
    return 0;
}

/* Collect the request's headers plus the signer's own, then sort. */
static int collect_headers(struct sbuf *scratch, struct canon_hdr *h, size_t *count,
                           const struct sigv4_request *req, const struct sigv4_credentials *cred,
                           const char *amz_date)
{
    size_t n = 0;
    for (; n < req->nheaders; n++)
        if (add_header(scratch, &h[n], n, req->headers[n].name, req->headers[n].value))
            return -ENOMEM;
    if (add_header(scratch, &h[n], n, "x-amz-date", amz_date))
        return -ENOMEM;
    n++;
    if (adds_token(req, cred)) {
        if (add_header(scratch, &h[n], n, "x-amz-security-token", cred->session_token))
            return -ENOMEM;
        n++;
    }
    for (size_t i = 0; i < n; i++)
        h[i].base = scratch->data;
    qsort(h, n, sizeof *h, canon_hdr_cmp);
    *count = n;
    return 0;
}

/* "name:v1,v2\n" per distinct name into canon, "a;b;c" into names. */
static int emit_headers(struct sbuf *canon, struct sbuf *names, const struct canon_hdr *h, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *name = h[i].base + h[i].name;
        const char *value = h[i].base + h[i].value;
        if (i > 0 && strcmp(name, h[i - 1].base + h[i - 1].name) == 0) {
            rc = sbuf_appendf(canon, ",%s", value);
            continue;
        }
        if (i > 0)
            rc = sbuf_append_char(canon, '\n') || sbuf_append_char(names, ';');
        if (rc == 0)
            rc = sbuf_appendf(canon, "%s:%s", name, value) || sbuf_append_str(names, name);
    }
    if (rc == 0)
        rc = sbuf_append_char(canon, '\n');
    return rc ? -ENOMEM : 0;
}

static int canonical_headers(const struct sigv4_request *req, const struct sigv4_credentials *cred,
                             const char *amz_date, struct sbuf *canon, struct sbuf *names)
{
    /* the request's headers, x-amz-date and perhaps the token */
    struct canon_hdr *h = calloc(req->nheaders + 2, sizeof *h);
    if (!h)
        return -ENOMEM;
    struct sbuf scratch = SBUF_SECRET_INIT; /* may hold the session token */
    size_t n = 0;
    int rc = collect_headers(&scratch, h, &n, req, cred, amz_date);
    if (rc == 0)
        rc = emit_headers(canon, names, h, n);
    sbuf_free(&scratch);
    free(h);
    return rc;
}

/* Method, URI as given (S3 does not normalise), query, headers, the signed
 * header names and the payload hash, one per line. */
static int canonical_request(const struct sigv4_request *req, const struct sigv4_credentials *cred,
                             const char *amz_date, struct sbuf *out, struct sbuf *names)
{
    struct sbuf headers = SBUF_SECRET_INIT; /* may hold the session token */
    int rc = canonical_headers(req, cred, amz_date, &headers, names);
    if (rc == 0)
        rc = sbuf_appendf(out, "%s\n%s\n%s\n%s\n%s\n%s", req->method, req->canonical_uri,
                          req->canonical_query ? req->canonical_query : "", sbuf_str(&headers),
                          sbuf_str(names), req->payload_hash);
    sbuf_free(&headers);
    return rc;
}

int sigv4_canonical_request(const struct sigv4_request *req, const struct sigv4_credentials *cred,
                            struct sbuf *out)
{
    char amz_date[17], date[9];
    int rc = check_request(req, cred);
    if (rc == 0)
        rc = format_dates(req->now, amz_date, date);
    if (rc)
        return rc;
    struct sbuf names = SBUF_INIT;
    rc = canonical_request(req, cred, amz_date, out, &names);
    sbuf_free(&names);
    return rc;
}

int sigv4_string_to_sign(const struct sigv4_request *req, const char *canonical_request_text,
                         struct sbuf *out)
{
    char amz_date[17], date[9], hash[65];
    if (!req || !canonical_request_text || !req->region || !req->service)
        return -EINVAL;
    int rc = format_dates(req->now, amz_date, date);
    if (rc)
        return rc;
    sigv4_sha256_hex(canonical_request_text, strlen(canonical_request_text), hash);
    if (!hash[0])
        return -ENOMEM;
    return sbuf_appendf(out, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date,
                        req->region, req->service, hash);
}

static int check_credentials(const struct sigv4_credentials *cred)
{
    if (!cred || !cred->access_key || !cred->access_key[0] || !cred->secret_key ||
        !cred->secret_key[0])
        return -EINVAL;
    return 0;
}

/* HMAC of the string to sign with the (cached) signing key, as hex. */
static int compute_signature(const struct sigv4_request *req, const struct sigv4_credentials *cred,
                             const char *date, const struct sbuf *to_sign, char sig[65])
{
    unsigned char key[SHA256_LEN], mac[SHA256_LEN];
    int rc = signing_key(cred->secret_key, date, req->region, req->service, key);
    if (rc == 0)
        rc = hmac_sha256(key, sizeof key, to_sign->data, to_sign->len, mac);
    if (rc == 0)
        to_hex(mac, sizeof mac, sig);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* The fixed-size result cannot grow: a request with very many signed
 * headers is refused rather than sent with a truncated Authorization. */
static int format_authorization(struct sigv4_result *res, const struct sigv4_request *req,
                                const struct sigv4_credentials *cred, const char *date,
                                const char *names)
{
    int n = snprintf(res->authorization, sizeof res->authorization,
                     SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                                     "Signature=%s",
                     cred->access_key, date, req->region, req->service, names, res->signature);
    if (n < 0 || (size_t)n >= sizeof res->authorization) {
        res->authorization[0] = '\0';
        return -E2BIG;
    }
    return 0;
}

static int sign_with(const struct sigv4_request *req, const struct sigv4_credentials *cred,
                     const char *date, struct sigv4_result *res)
{
    struct sbuf canon = SBUF_SECRET_INIT, names = SBUF_INIT, to_sign = SBUF_INIT;
    int rc = canonical_request(req, cred, res->amz_date, &canon, &names);
    if (rc == 0)
        rc = sigv4_string_to_sign(req, sbuf_str(&canon), &to_sign);
    if (rc == 0)
        rc = compute_signature(req, cred, date, &to_sign, res->signature);
    if (rc == 0)
        rc = format_authorization(res, req, cred, date, sbuf_str(&names));
    sbuf_free(&canon);
    sbuf_free(&names);
    sbuf_free(&to_sign);
    return rc;
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *cred,
               struct sigv4_result *res)
{
    char date[9];
    if (!res)
        return -EINVAL;
    memset(res, 0, sizeof *res);
    int rc = check_credentials(cred);
    if (rc == 0)
        rc = check_request(req, cred);
    if (rc == 0)
        rc = format_dates(req->now, res->amz_date, date);
    if (rc == 0)
        rc = sign_with(req, cred, date, res);
    if (rc)
        memset(res, 0, sizeof *res);
    return rc;
}
