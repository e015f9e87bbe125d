/* The parts of the S3 operations (s3.h) that send nothing: the checks a
 * listing's answer goes through, the paging loop, the HeadObject result's
 * helpers. Kept apart from ops.c so that a store other than the network
 * (the unit tests' fake, tests/fakes3) can be linked under the same
 * checks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "s3cfs/htab.h"
#include "s3cfs/log.h"
#include "s3cfs/s3.h"

/* ---- listing ---- */

int s3_list_page_check(const struct s3_list_page *p, const char *prefix, struct s3_error *err)
{
    const char *pre = prefix ? prefix : "";
    size_t plen = strlen(pre);
    const char *bad = NULL;
    for (size_t i = 0; !bad && i < p->nobjects + p->nprefixes; i++) {
        const char *k = i < p->nobjects ? p->objects[i].key : p->prefixes[i - p->nobjects];
        if (strnlen(k, S3_KEY_MAX + 1) > S3_KEY_MAX || strncmp(k, pre, plen) != 0)
            bad = k;
    }
    if (!bad)
        return 0;
    /* The server answered something other than what was asked: nothing in
     * this page can be trusted (a tree rename would copy and delete it). */
    bool long_key = strnlen(bad, S3_KEY_MAX + 1) > S3_KEY_MAX;
    LOGW("listing of prefix '%s' refused: entry '%.*s%s' %s", pre, 200, bad,
         strlen(bad) > 200 ? "..." : "",
         long_key ? "is longer than 1024 bytes" : "does not start with the prefix");
    s3_error_set(err, "BadResponse",
                 long_key ? "listing entry longer than 1024 bytes"
                          : "listing entry outside the requested prefix");
    return -EIO;
}

/* The continuation tokens a listing was given so far, as 64-bit hashes:
 * a token seen before means the server would send us round in a circle. */
struct token_set {
    uint64_t *v;
    size_t n, cap;
};

static uint64_t token_hash(const char *s)
{
    return hash_fnv1a64(s, strlen(s));
}

static bool token_known(const struct token_set *t, uint64_t h)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i] == h)
            return true;
    return false;
}

/* Room for one more token: 0, or -ENOMEM with the set unchanged. */
static int token_room(struct token_set *t)
{
    if (t->n < t->cap)
        return 0;
    size_t cap = t->cap ? t->cap * 2 : 16;
    uint64_t *v = realloc(t->v, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    t->v = v;
    t->cap = cap;
    return 0;
}

/* 0 for a new token (now remembered), -EIO for a repeated one, -ENOMEM. */
static int token_add(struct token_set *t, const char *token, struct s3_error *err)
{
    uint64_t h = token_hash(token);
    if (token_known(t, h)) {
        LOGW("listing stopped: the server repeated the continuation token '%.100s'", token);
        s3_error_set(err, "BadResponse", "listing repeated a continuation token");
        return -EIO;
    }
    int rc = token_room(t);
    if (rc == 0)
        t->v[t->n++] = h;
    return rc;
}

int s3_list_walk(s3_list_fetch_fn fetch, void *src, s3_list_cb cb, void *arg, struct s3_error *err)
{
    struct token_set seen = {0};
    char *token = NULL;
    int rc;
    for (;;) {
        struct s3_list_page page = {0};
        rc = fetch(src, token, &page, err);
        free(token);
        token = NULL;
        if (rc)
            break;
        rc = cb(&page, arg);
        bool more = page.truncated && page.next_token && *page.next_token;
        if (rc == 0 && page.truncated && !more) {
            /* a truncated page without a token would loop or drop keys */
            s3_error_set(err, "BadResponse", "truncated listing without a continuation token");
            rc = -EPROTO;
        }
        if (rc == 0 && more && (rc = token_add(&seen, page.next_token, err)) == 0)
            token = page.next_token, page.next_token = NULL;
        s3_list_page_free(&page);
        if (rc || !more)
            break;
    }
    free(token);
    free(seen.v);
    return rc;
}

/* ---- objects ---- */

void s3_meta_free(struct s3_meta **v, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        /* a result's strings are its own: const only for its readers */
        free((char *)(*v)[i].name);
        free((char *)(*v)[i].value);
    }
    free(*v);
    *v = NULL;
    *n = 0;
}

void s3_head_free(struct s3_head *h)
{
    s3_meta_free(&h->meta, &h->nmeta);
    s3_meta_free(&h->headers, &h->nheaders);
}

static const char *field_find(const struct s3_meta *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return v[i].value;
    return NULL;
}

const char *s3_head_meta(const struct s3_head *h, const char *name)
{
    return field_find(h->meta, h->nmeta, name);
}

const char *s3_head_header(const struct s3_head *h, const char *name)
{
    return field_find(h->headers, h->nheaders, name);
}
