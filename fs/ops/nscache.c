/* nscache.c - the namespace cache (see nscache.h for the contract).
 *
 * Three hash tables share one generic chained table: attribute entries by
 * path, listings by directory path, and "pdirs", the pinned children of a
 * directory by its path. The pdir index exists so that storing a listing
 * can overlay the pinned children of that one directory without scanning
 * every pinned entry (a `cp -r` of 100k files pins 100k destinations).
 *
 * Every node starts with its struct htab_node and ends with its key, so one
 * allocation holds both and the table finds the key at a fixed offset.
 * Unpinned attribute entries sit on an LRU list; pinned ones reuse the
 * same links on their pdir's list instead, since they are never evicted.
 *
 * Listing rows are kept sorted by name so that a lookup of a name absent
 * from a live listing answers -ENOENT in O(log n), and single rows can be
 * updated when one path changes instead of the whole listing being lost.
 */
#include "s3cfs/nscache.h"

#include "s3cfs/htab.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_MS     1000000LL
#define FIRST_BUCKETS 64   /* a power of two: buckets are picked by mask */
#define RECENT        4096 /* changes remembered for listings being made */

#define container_of(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* ---- intrusive circular doubly-linked list with a sentinel head ---- */

struct link {
    struct link *prev, *next;
};

static void link_init(struct link *head)
{
    head->prev = head->next = head;
}

/* Insert l right after head: the most recently used end. */
static void link_add(struct link *head, struct link *l)
{
    l->prev = head;
    l->next = head->next;
    head->next->prev = l;
    head->next = l;
}

static void link_del(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
}

static void link_touch(struct link *head, struct link *l)
{
    link_del(l);
    link_add(head, l);
}

/* ---- keys ---- */

struct key {
    const char *s; /* not NUL-terminated in general: parents point into children */
    size_t len;
    uint32_t hash;
};

static void key_init(struct key *k, const char *s, size_t len)
{
    *k = (struct key){s, len, hash_fnv1a32(s, len)};
}

/* A mount path as the header defines it. */
static int path_key(struct key *k, const char *path)
{
    if (!path || path[0] != '/')
        return -EINVAL;
    size_t len = strnlen(path, NSCACHE_PATH_MAX);
    if (len >= NSCACHE_PATH_MAX)
        return -ENAMETOOLONG;
    if (len > 1 && path[len - 1] == '/')
        return -EINVAL;
    key_init(k, path, len);
    return 0;
}

/* Offset of the last '/' in s[0..len) (paths always have one). */
static size_t last_slash(const char *s, size_t len)
{
    const char *p = memrchr(s, '/', len);
    return p ? (size_t)(p - s) : 0;
}

/* The last component of s[0..len), its length in *nlen. */
static const char *key_name(const char *s, size_t len, size_t *nlen)
{
    size_t i = last_slash(s, len);
    *nlen = len - i - 1;
    return s + i + 1;
}

/* The parent of k; -ENOENT for the root, which has none. */
static int parent_key(struct key *pk, const struct key *k)
{
    if (k->len <= 1)
        return -ENOENT;
    size_t i = last_slash(k->s, k->len);
    key_init(pk, k->s, i ? i : 1);
    return 0;
}

/* ---- the three tables (htab.h); a node's h.user is its key's length ---- */

static bool key_at(const struct htab_node *n, size_t off, const void *key, size_t len)
{
    return n->user == len && memcmp((const char *)n + off, key, len) == 0;
}

static struct htab_node *ht_find(const struct htab *t, const struct key *k)
{
    return htab_find(t, k->hash, k->s, k->len);
}

static void ht_insert(struct htab *t, struct htab_node *n)
{
    htab_insert(t, n, n->hash);
}

/* A zeroed node of head bytes followed by the key, its NUL and extra bytes. */
static void *node_new(size_t head, const struct key *k, size_t extra)
{
    struct htab_node *n = calloc(1, head + k->len + 1 + extra);
    if (!n)
        return NULL;
    n->hash = k->hash;
    n->user = (uint32_t)k->len;
    memcpy((char *)n + head, k->s, k->len);
    return n;
}

/* ---- the cache ---- */

/* An attribute entry. All fields: guarded by nscache.lock. */
struct attr {
    struct htab_node h;
    struct link link; /* unpinned: on c->attr_lru; pinned: on its pdir's children */
    int64_t expires;  /* CLOCK_MONOTONIC ns; ignored while pinned */
    struct stat st;   /* unused when negative */
    uint8_t negative, pinned, etag_len;
    char key[]; /* path, NUL, ETag, NUL */
};

/* One child in a listing. Guarded by nscache.lock once the listing is
 * published (rows of a listing being built belong to the building thread). */
struct row {
    struct stat st;
    bool gone; /* only while merging pinned tombstones in */
    char name[];
};

/* A cached listing. Guarded by nscache.lock once stored. */
struct listing {
    struct htab_node h;
    struct link lru; /* on c->dir_lru */
    int64_t expires;
    struct row **rows; /* sorted by strcmp of name, one per name */
    size_t n, cap;
    char key[];
};

/* The pinned children of one directory. Guarded by nscache.lock. */
struct pdir {
    struct htab_node h;
    struct link children; /* struct attr.link of each pinned child */
    size_t n;
    char key[];
};

_Static_assert(offsetof(struct attr, h) == 0 && offsetof(struct listing, h) == 0 &&
                   offsetof(struct pdir, h) == 0,
               "a node is its htab_node: tables free and cast nodes through it");

static bool attr_eq(const struct htab_node *n, const void *key, size_t len)
{
    return key_at(n, offsetof(struct attr, key), key, len);
}

static bool listing_eq(const struct htab_node *n, const void *key, size_t len)
{
    return key_at(n, offsetof(struct listing, key), key, len);
}

static bool pdir_eq(const struct htab_node *n, const void *key, size_t len)
{
    return key_at(n, offsetof(struct pdir, key), key, len);
}

struct nscache {
    /* set by nscache_new, read-only afterwards: no lock */
    int64_t attr_ttl, neg_ttl, dir_ttl, dirattr_ttl; /* ns */
    size_t max_entries, max_names;

    pthread_mutex_t lock; /* guards everything below */
    struct htab attrs;    /* struct attr by path */
    struct htab dirs;     /* struct listing by directory path */
    struct htab pdirs;    /* struct pdir by directory path */
    struct link attr_lru; /* unpinned attrs, most recently used first */
    struct link dir_lru;  /* listings, most recently used first */
    size_t nunpinned, npinned, nnegative, nnames;
    uint64_t hits, misses, dir_hits, dir_misses, evictions;
    /* the last RECENT changes of a path's existence or version (fills that
     * change what is known, unpins), numbered from 1: a listing that S3
     * sent before them must not undo them (nscache_dir_fill's since) */
    uint64_t seq;
    char *recent[RECENT]; /* recent[seq % RECENT]: the path changed at seq */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 * NS_PER_MS + ts.tv_nsec;
}

/* ---- pinned children index ---- */

static struct pdir *pdir_find(struct nscache *c, const struct key *dk)
{
    return (struct pdir *)ht_find(&c->pdirs, dk);
}

/* The pdir of child's parent, made if need be; NULL when out of memory. */
static struct pdir *pdir_get(struct nscache *c, const struct key *child)
{
    struct key pk;
    if (parent_key(&pk, child))
        return NULL;
    struct pdir *pd = pdir_find(c, &pk);
    if (pd)
        return pd;
    pd = node_new(offsetof(struct pdir, key), &pk, 0);
    if (!pd)
        return NULL;
    link_init(&pd->children);
    ht_insert(&c->pdirs, &pd->h);
    return pd;
}

static void pdir_del_child(struct nscache *c, struct attr *a)
{
    struct key k, pk;
    key_init(&k, a->key, a->h.user);
    link_del(&a->link);
    struct pdir *pd = parent_key(&pk, &k) == 0 ? pdir_find(c, &pk) : NULL;
    if (pd && --pd->n == 0) { /* NULL only for the root, which has no parent */
        htab_remove(&c->pdirs, &pd->h);
        free(pd);
    }
}

/* ---- attribute entries ---- */

static size_t etag_len(const char *etag)
{
    size_t n = etag ? strnlen(etag, NSCACHE_ETAG_MAX + 1) : 0;
    return n > NSCACHE_ETAG_MAX ? 0 : n; /* a truncated ETag would match nothing */
}

static const char *attr_etag(const struct attr *a)
{
    return a->key + a->h.user + 1;
}

static struct attr *attr_new(const struct key *k, const struct stat *st, const char *etag, bool pin)
{
    size_t elen = etag_len(etag);
    struct attr *a = node_new(offsetof(struct attr, key), k, elen + 1);
    if (!a)
        return NULL;
    if (st)
        a->st = *st;
    a->negative = !st;
    a->pinned = pin;
    a->etag_len = (uint8_t)elen;
    if (elen) /* etag may be NULL, which memcpy must not see even for 0 bytes */
        memcpy(a->key + k->len + 1, etag, elen);
    return a;
}

static struct attr *attr_find(struct nscache *c, const struct key *k)
{
    return (struct attr *)ht_find(&c->attrs, k);
}

static bool attr_live(const struct attr *a, int64_t now)
{
    return a->pinned || now < a->expires;
}

/* Put a on its list; pd is its parent's pdir when a is pinned. */
static void attr_attach(struct nscache *c, struct attr *a, struct pdir *pd)
{
    if (a->pinned) {
        link_add(&pd->children, &a->link);
        pd->n++;
        c->npinned++;
    } else {
        link_add(&c->attr_lru, &a->link);
        c->nunpinned++;
    }
    c->nnegative += a->negative;
}

static void attr_detach(struct nscache *c, struct attr *a)
{
    if (a->pinned) {
        pdir_del_child(c, a);
        c->npinned--;
    } else {
        link_del(&a->link);
        c->nunpinned--;
    }
    c->nnegative -= a->negative;
}

static void attr_drop(struct nscache *c, struct attr *a)
{
    htab_remove(&c->attrs, &a->h);
    attr_detach(c, a);
    free(a);
}

/* Over the limit, the least recently used go; expired ones at the cold end
 * go anyway, so that memory follows the working set of the last TTL and
 * not the size of the tree walked (cp -r of 100,000 files). */
static void attr_trim(struct nscache *c)
{
    int64_t now = now_ns();
    while (c->nunpinned > 0) {
        struct attr *a = container_of(c->attr_lru.prev, struct attr, link);
        bool over = c->nunpinned > c->max_entries;
        if (!over && now < a->expires)
            break;
        attr_drop(c, a);
        c->evictions += over;
    }
}

/* Replace old (may be NULL) by a new entry for k. The new one is linked
 * before old is dropped so that a pinned path's pdir never empties in
 * between. On -ENOMEM a fill still drops old (stale beats nothing is
 * wrong); a pin keeps it (the caller learns the pin failed). */
/* How long an unpinned entry lives: negative (st NULL), a directory, a file. */
static int64_t ttl_of(const struct nscache *c, const struct stat *st)
{
    if (!st)
        return c->neg_ttl;
    return S_ISDIR(st->st_mode) ? c->dirattr_ttl : c->attr_ttl;
}

static int attr_replace(struct nscache *c, struct attr *old, const struct key *k,
                        const struct stat *st, const char *etag, bool pin, int64_t now)
{
    int64_t ttl = ttl_of(c, st);
    if (!pin && ttl == 0) {
        if (old)
            attr_drop(c, old);
        return 0;
    }
    struct attr *a = attr_new(k, st, etag, pin);
    struct pdir *pd = NULL;
    if (a && pin && !(pd = pdir_get(c, k))) {
        free(a);
        a = NULL;
    }
    if (!a) {
        if (old && !pin)
            attr_drop(c, old);
        return -ENOMEM;
    }
    a->expires = now + ttl;
    attr_attach(c, a, pd);
    if (old)
        attr_drop(c, old);
    ht_insert(&c->attrs, &a->h);
    attr_trim(c);
    return 0;
}

/* 0 / -ENOENT from a live entry for k, -EAGAIN without one. */
static int attr_answer(struct nscache *c, const struct key *k, int64_t now, struct stat *st,
                       char *etag)
{
    struct attr *a = attr_find(c, k);
    if (!a)
        return -EAGAIN;
    if (!attr_live(a, now)) {
        attr_drop(c, a);
        return -EAGAIN;
    }
    if (!a->pinned)
        link_touch(&c->attr_lru, &a->link);
    if (a->negative)
        return -ENOENT;
    if (st)
        *st = a->st;
    if (etag)
        memcpy(etag, attr_etag(a), a->etag_len + 1u);
    return 0;
}

/* ---- listings ---- */

static struct row *row_new(const char *name, size_t len, const struct stat *st)
{
    struct row *r = malloc(sizeof *r + len + 1);
    if (!r)
        return NULL;
    r->st = *st;
    r->gone = false;
    memcpy(r->name, name, len);
    r->name[len] = '\0';
    return r;
}

/* strcmp order between a NUL-terminated row name and name[0..len). */
static int name_cmp(const char *row, const char *name, size_t len)
{
    int cmp = strncmp(row, name, len);
    return cmp ? cmp : row[len] != '\0';
}

/* Where name is or would be inserted in l->rows; *found if it is there. */
static size_t row_pos(const struct listing *l, const char *name, size_t len, bool *found)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (name_cmp(l->rows[mid]->name, name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < l->n && name_cmp(l->rows[lo]->name, name, len) == 0;
    return lo;
}

static void listing_free(struct listing *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->rows[i]);
    free(l->rows);
    free(l);
}

static void listing_detach(struct nscache *c, struct listing *l)
{
    link_del(&l->lru);
    c->nnames -= l->n;
}

static void listing_drop(struct nscache *c, struct listing *l)
{
    htab_remove(&c->dirs, &l->h);
    listing_detach(c, l);
    listing_free(l);
}

static void listing_drop_key(struct nscache *c, const struct key *dk)
{
    struct listing *l = (struct listing *)ht_find(&c->dirs, dk);
    if (l)
        listing_drop(c, l);
}

static void names_trim(struct nscache *c)
{
    int64_t now = now_ns();
    while (c->dir_lru.prev != &c->dir_lru) {
        struct listing *l = container_of(c->dir_lru.prev, struct listing, lru);
        bool over = c->nnames > c->max_names;
        if (!over && now < l->expires)
            break;
        listing_drop(c, l);
        c->evictions += over;
    }
}

/* The unexpired listing of dk, or NULL (an expired one is dropped). */
static struct listing *listing_live(struct nscache *c, const struct key *dk, int64_t now)
{
    struct listing *l = (struct listing *)ht_find(&c->dirs, dk);
    if (l && now >= l->expires) {
        listing_drop(c, l);
        l = NULL;
    }
    return l;
}

/* Set (st) or remove (st NULL) the row of name in l. */
static int listing_set(struct nscache *c, struct listing *l, const char *name, size_t len,
                       const struct stat *st)
{
    bool found;
    size_t i = row_pos(l, name, len, &found);
    if (found && st) {
        l->rows[i]->st = *st;
    } else if (found) {
        free(l->rows[i]);
        memmove(&l->rows[i], &l->rows[i + 1], (l->n - i - 1) * sizeof *l->rows);
        l->n--;
        c->nnames--;
    } else if (st) {
        if (l->n == l->cap) {
            struct row **rows = realloc(l->rows, 2 * l->cap * sizeof *rows);
            if (!rows)
                return -ENOMEM;
            l->rows = rows;
            l->cap *= 2;
        }
        struct row *r = row_new(name, len, st);
        if (!r)
            return -ENOMEM;
        memmove(&l->rows[i + 1], &l->rows[i], (l->n - i) * sizeof *l->rows);
        l->rows[i] = r;
        l->n++;
        c->nnames++;
    }
    return 0;
}

/* k now is st (NULL: does not exist): make the parent's listing say so. */
static void listing_sync(struct nscache *c, const struct key *k, const struct stat *st, int64_t now)
{
    struct key pk;
    if (parent_key(&pk, k))
        return;
    struct listing *l = listing_live(c, &pk, now);
    if (!l)
        return;
    size_t nlen;
    const char *name = key_name(k->s, k->len, &nlen);
    if (listing_set(c, l, name, nlen, st))
        listing_drop(c, l); /* better unknown than wrong */
    names_trim(c);
}

/* -ENOENT when a live listing of k's parent lacks k's name. A listed name
 * without an attribute entry stays a miss: the listing has no ETag. */
static int listing_answer(struct nscache *c, const struct key *k, int64_t now)
{
    struct key pk;
    if (c->neg_ttl == 0 || parent_key(&pk, k))
        return -EAGAIN;
    struct listing *l = listing_live(c, &pk, now);
    if (!l)
        return -EAGAIN;
    link_touch(&c->dir_lru, &l->lru);
    size_t nlen;
    const char *name = key_name(k->s, k->len, &nlen);
    bool found;
    row_pos(l, name, nlen, &found);
    return found ? -EAGAIN : -ENOENT;
}

static int listing_walk(const struct listing *l, nscache_dir_cb cb, void *arg)
{
    for (size_t i = 0; i < l->n; i++) {
        int rc = cb(l->rows[i]->name, &l->rows[i]->st, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- building a listing from S3's answer ---- */

static bool name_ok(const char *name, const struct key *dk)
{
    if (!name)
        return false;
    size_t len = strnlen(name, NSCACHE_NAME_MAX + 1);
    if (len == 0 || len > NSCACHE_NAME_MAX || memchr(name, '/', len))
        return false;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return dk->len + 1 + len < NSCACHE_PATH_MAX;
}

/* By name; of equal names the file first, so that deduplication keeps it. */
static int ent_cmp(const void *x, const void *y)
{
    const struct nscache_dirent *a = *(const struct nscache_dirent *const *)x;
    const struct nscache_dirent *b = *(const struct nscache_dirent *const *)y;
    int cmp = strcmp(a->name, b->name);
    if (cmp)
        return cmp;
    return (S_ISDIR(a->st.st_mode) != 0) - (S_ISDIR(b->st.st_mode) != 0);
}

/* The valid entries of ents, sorted, one per name, into *out (free it). */
static int ents_prepare(const struct key *dk, const struct nscache_dirent *ents, size_t n,
                        const struct nscache_dirent ***out, size_t *m)
{
    const struct nscache_dirent **v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t k = 0, j = 0;
    for (size_t i = 0; i < n; i++)
        if (name_ok(ents[i].name, dk))
            v[k++] = &ents[i];
    qsort(v, k, sizeof *v, ent_cmp);
    for (size_t i = 0; i < k; i++)
        if (j == 0 || strcmp(v[j - 1]->name, v[i]->name) != 0)
            v[j++] = v[i];
    *out = v;
    *m = j;
    return 0;
}

static struct listing *listing_new(const struct key *dk, const struct nscache_dirent **v, size_t m)
{
    struct listing *l = node_new(offsetof(struct listing, key), dk, 0);
    if (!l)
        return NULL;
    l->cap = m ? m : 1;
    l->rows = malloc(l->cap * sizeof *l->rows);
    bool ok = l->rows != NULL;
    for (; ok && l->n < m; l->n++) {
        const char *name = v[l->n]->name;
        ok = (l->rows[l->n] = row_new(name, strlen(name), &v[l->n]->st)) != NULL;
    }
    if (!ok) {
        listing_free(l); /* frees the rows made so far */
        return NULL;
    }
    return l;
}

/* Store each listed child's attributes: never over a pinned entry, and an
 * entry without an ETag never over a live one with an ETag (copies need
 * it to ask for exactly the version they saw). */
static bool name_in(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static void children_store(struct nscache *c, const struct key *dk, const struct nscache_dirent **v,
                           size_t m, int64_t now, const char *const *skip, size_t nskip)
{
    char path[NSCACHE_PATH_MAX];
    size_t plen = dk->len > 1 ? dk->len : 0;
    memcpy(path, dk->s, plen);
    path[plen] = '/';
    for (size_t i = 0; i < m; i++) {
        size_t nlen = strlen(v[i]->name);
        memcpy(path + plen + 1, v[i]->name, nlen);
        struct key k;
        key_init(&k, path, plen + 1 + nlen);
        struct attr *old = attr_find(c, &k);
        if (name_in(skip, nskip, v[i]->name))
            continue; /* changed since S3 made this listing: newer than it */
        bool keep = old && (old->pinned || (etag_len(v[i]->etag) == 0 && !old->negative &&
                                            old->etag_len && attr_live(old, now)));
        if (!keep)
            attr_replace(c, old, &k, &v[i]->st, v[i]->etag, false, now);
    }
}

static int row_cmp(const void *x, const void *y)
{
    return strcmp((*(struct row *const *)x)->name, (*(struct row *const *)y)->name);
}

/* Merge the sorted extra[0..k) (names not in l) into l, leaving out gone rows. */
static int listing_merge(struct listing *l, struct row **extra, size_t k)
{
    size_t cap = l->n + k ? l->n + k : 1, i = 0, j = 0, m = 0;
    struct row **out = malloc(cap * sizeof *out);
    if (!out)
        return -ENOMEM;
    while (i < l->n || j < k) {
        if (j == k || (i < l->n && strcmp(l->rows[i]->name, extra[j]->name) < 0)) {
            struct row *r = l->rows[i++];
            if (r->gone)
                free(r);
            else
                out[m++] = r;
        } else {
            out[m++] = extra[j++];
        }
    }
    free(l->rows);
    l->rows = out;
    l->n = m;
    l->cap = cap;
    return 0;
}

/* Merge the new rows extra[0..k) into l (when rc is 0, else drop them)
 * and free the array: rc, or the merge's error. */
static int extra_merge(struct listing *l, struct row **extra, size_t k, int rc)
{
    if (rc == 0) {
        qsort(extra, k, sizeof *extra, row_cmp);
        rc = listing_merge(l, extra, k);
    }
    if (rc)
        for (size_t i = 0; i < k; i++)
            free(extra[i]);
    free(extra);
    return rc;
}

/* name[0..nlen) (a directory's key: name and '/') against key in S3's
 * byte order. */
static int key_cmp(const char *name, size_t nlen, bool dir, const char *key)
{
    size_t klen = strlen(key), m = nlen < klen ? nlen : klen;
    int cmp = memcmp(name, key, m);
    if (cmp || nlen > klen)
        return cmp ? cmp : 1;
    if (nlen == klen)
        return dir ? 1 : 0;
    if (!dir)
        return -1;
    unsigned char next = (unsigned char)key[nlen];
    if (next != '/')
        return '/' < next ? -1 : 1;
    return nlen + 1 == klen ? 0 : -1;
}

static bool in_keys(const struct nscache_keys *r, const char *name, size_t nlen, bool dir)
{
    if (!r)
        return true;
    return (!r->after || key_cmp(name, nlen, dir, r->after) > 0) &&
           (!r->upto || key_cmp(name, nlen, dir, r->upto) <= 0);
}

bool nscache_in_keys(const struct nscache_keys *r, const char *name, bool dir)
{
    return in_keys(r, name, strlen(name), dir);
}

/* Apply pinned child a to l: mark its row gone (tombstone), update it, or
 * make a new row in extra when it falls in r (NULL: anywhere). */
static int overlay_one(struct listing *l, const struct attr *a, const struct nscache_keys *r,
                       struct row **extra, size_t *k)
{
    size_t nlen;
    const char *name = key_name(a->key, a->h.user, &nlen);
    bool found;
    size_t i = row_pos(l, name, nlen, &found);
    if (found && a->negative)
        l->rows[i]->gone = true;
    else if (found)
        l->rows[i]->st = a->st;
    if (found || a->negative || !in_keys(r, name, nlen, S_ISDIR(a->st.st_mode)))
        return 0;
    if (!(extra[*k] = row_new(name, nlen, &a->st)))
        return -ENOMEM;
    (*k)++;
    return 0;
}

/* Make the (not yet stored) listing l show its directory's pinned children
 * as they are pinned, whatever S3 said. */
static int listing_overlay(struct nscache *c, struct listing *l, const struct nscache_keys *r)
{
    struct key dk = {l->key, l->h.user, l->h.hash};
    struct pdir *pd = pdir_find(c, &dk);
    if (!pd)
        return 0;
    struct row **extra = calloc(pd->n, sizeof *extra);
    if (!extra)
        return -ENOMEM;
    size_t k = 0;
    int rc = 0;
    for (struct link *p = pd->children.next; rc == 0 && p != &pd->children; p = p->next)
        rc = overlay_one(l, container_of(p, struct attr, link), r, extra, &k);
    return extra_merge(l, extra, k, rc);
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Lock held: the names of dk's children that changed after since (they
 * point into c->recent), sorted, each once; -EAGAIN when some of those
 * changes are forgotten (more than RECENT) or unknown. */
static int recent_children(struct nscache *c, const struct key *dk, uint64_t since,
                           const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (since >= c->seq)
        return 0;
    if (c->seq - since > RECENT)
        return -EAGAIN;
    const char **v = malloc((size_t)(c->seq - since) * sizeof *v);
    if (!v)
        return -EAGAIN;
    size_t plen = dk->len > 1 ? dk->len : 0;
    for (uint64_t q = since + 1; q <= c->seq; q++) {
        const char *p = c->recent[q % RECENT];
        if (!p) {
            free(v);
            return -EAGAIN;
        }
        if (strncmp(p, dk->s, plen) == 0 && p[plen] == '/' && !strchr(p + plen + 1, '/'))
            v[(*n)++] = p + plen + 1;
    }
    qsort(v, *n, sizeof *v, str_cmp);
    size_t m = 0;
    for (size_t i = 0; i < *n; i++)
        if (m == 0 || strcmp(v[m - 1], v[i]) != 0)
            v[m++] = v[i];
    *n = m;
    *out = v;
    return 0;
}

/* Make l (not yet stored) show what the cache learnt of names[0..n) after
 * S3 made the listing: a copy that landed, a delete that landed, an
 * upload. -EAGAIN when one of them is no longer known. */
static int listing_overlay_recent(struct nscache *c, struct listing *l,
                                  const struct nscache_keys *r, const char *const *names, size_t n)
{
    struct row **extra = calloc(n ? n : 1, sizeof *extra);
    if (!extra)
        return -ENOMEM;
    size_t k = 0;
    int rc = 0;
    char path[NSCACHE_PATH_MAX];
    size_t plen = l->h.user > 1 ? l->h.user : 0;
    memcpy(path, l->key, plen);
    path[plen] = '/';
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t nlen = strlen(names[i]);
        memcpy(path + plen + 1, names[i], nlen);
        struct key ck;
        key_init(&ck, path, plen + 1 + nlen);
        struct attr *a = attr_find(c, &ck);
        if (!a)
            rc = -EAGAIN;
        else if (!a->pinned) /* pinned ones: listing_overlay */
            rc = overlay_one(l, a, r, extra, &k);
    }
    return extra_merge(l, extra, k, rc);
}

/* Keep l if listings are cached and it fits; true when the cache owns it. */
static bool listing_store(struct nscache *c, struct listing *l, int64_t now)
{
    if (c->dir_ttl == 0 || l->n > c->max_names)
        return false;
    l->expires = now + c->dir_ttl;
    ht_insert(&c->dirs, &l->h);
    link_add(&c->dir_lru, &l->lru);
    c->nnames += l->n;
    return true;
}

/* ---- public ---- */

int nscache_new(const struct nscache_config *cfg, struct nscache **out)
{
    *out = NULL;
    if (!cfg)
        return -EINVAL;
    struct nscache *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->attr_ttl = cfg->attr_ttl_ms * NS_PER_MS;
    c->neg_ttl = cfg->negative_ttl_ms * NS_PER_MS;
    c->dir_ttl = cfg->dir_ttl_ms * NS_PER_MS;
    c->dirattr_ttl = cfg->dir_attr_ttl_ms * NS_PER_MS;
    c->max_entries = cfg->max_entries;
    c->max_names = cfg->max_names;
    link_init(&c->attr_lru);
    link_init(&c->dir_lru);
    if (htab_init(&c->attrs, FIRST_BUCKETS, attr_eq) ||
        htab_init(&c->dirs, FIRST_BUCKETS, listing_eq) ||
        htab_init(&c->pdirs, FIRST_BUCKETS, pdir_eq) || pthread_mutex_init(&c->lock, NULL)) {
        htab_free(&c->attrs);
        htab_free(&c->dirs);
        htab_free(&c->pdirs);
        free(c);
        return -ENOMEM;
    }
    *out = c;
    return 0;
}

static bool free_node(struct htab_node *n, void *arg)
{
    (void)arg;
    free(n);
    return true;
}

static bool free_listing(struct htab_node *n, void *arg)
{
    (void)arg;
    listing_free((struct listing *)n);
    return true;
}

void nscache_free(struct nscache *c)
{
    if (!c)
        return;
    htab_filter(&c->attrs, free_node, NULL);
    htab_filter(&c->dirs, free_listing, NULL);
    htab_filter(&c->pdirs, free_node, NULL);
    for (size_t i = 0; i < RECENT; i++)
        free(c->recent[i]);
    htab_free(&c->attrs);
    htab_free(&c->dirs);
    htab_free(&c->pdirs);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int nscache_lookup(struct nscache *c, const char *path, struct stat *st,
                   char etag[NSCACHE_ETAG_MAX + 1])
{
    struct key k;
    int rc = path_key(&k, path);
    if (rc)
        return rc;
    int64_t now = now_ns();
    pthread_mutex_lock(&c->lock);
    rc = attr_answer(c, &k, now, st, etag);
    if (rc == -EAGAIN)
        rc = listing_answer(c, &k, now);
    if (rc == -EAGAIN)
        c->misses++;
    else
        c->hits++;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* A fill: what S3 said or we did, unless local state (a pin) says better. */
/* Lock held: path changed now (a name appeared, went, or has another
 * version). Out of memory: the slot stays empty, which a listing being
 * made takes as "unknown" (it is then not kept). */
static void recent_add(struct nscache *c, const char *path)
{
    c->seq++;
    free(c->recent[c->seq % RECENT]);
    c->recent[c->seq % RECENT] = strdup(path);
}

/* Lock held: whether a fill changes what is known of an entry */
static bool fill_changes(const struct attr *old, const struct stat *st, const char *etag)
{
    if (!old || old->negative != !st)
        return true;
    size_t n = etag_len(etag);
    return n != old->etag_len || memcmp(attr_etag(old), etag ? etag : "", n) != 0;
}

static void fill(struct nscache *c, const char *path, const struct stat *st, const char *etag)
{
    struct key k;
    if (path_key(&k, path))
        return;
    int64_t now = now_ns();
    pthread_mutex_lock(&c->lock);
    struct attr *old = attr_find(c, &k);
    if (!old || !old->pinned) {
        if (fill_changes(old, st, etag))
            recent_add(c, path);
        attr_replace(c, old, &k, st, etag, false, now);
        listing_sync(c, &k, st, now);
    }
    pthread_mutex_unlock(&c->lock);
}

void nscache_put(struct nscache *c, const char *path, const struct stat *st, const char *etag)
{
    if (st)
        fill(c, path, st, etag);
}

void nscache_put_negative(struct nscache *c, const char *path)
{
    fill(c, path, NULL, NULL);
}

int nscache_pin(struct nscache *c, const char *path, const struct stat *st, const char *etag)
{
    struct key k;
    int rc = path_key(&k, path);
    if (rc)
        return rc;
    if (k.len == 1)
        return -EINVAL; /* the root has no parent to list it */
    int64_t now = now_ns();
    pthread_mutex_lock(&c->lock);
    rc = attr_replace(c, attr_find(c, &k), &k, st, etag, true, now);
    if (rc == 0)
        listing_sync(c, &k, st, now);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

bool nscache_pinned_gone(struct nscache *c, const char *path)
{
    struct key k;
    if (path_key(&k, path))
        return false;
    pthread_mutex_lock(&c->lock);
    struct attr *a = attr_find(c, &k);
    bool gone = a && a->pinned && a->negative;
    pthread_mutex_unlock(&c->lock);
    return gone;
}

void nscache_pinned_children(struct nscache *c, const char *dirpath, size_t *live, size_t *gone)
{
    size_t nlive = 0, ngone = 0;
    struct key dk;
    if (path_key(&dk, dirpath) == 0) {
        pthread_mutex_lock(&c->lock);
        struct pdir *pd = pdir_find(c, &dk);
        for (struct link *p = pd ? pd->children.next : NULL; p && p != &pd->children; p = p->next)
            ngone += container_of(p, struct attr, link)->negative;
        nlive = pd ? pd->n - ngone : 0;
        pthread_mutex_unlock(&c->lock);
    }
    if (live)
        *live = nlive;
    if (gone)
        *gone = ngone;
}

bool nscache_unpin(struct nscache *c, const char *path)
{
    struct key k;
    if (path_key(&k, path))
        return false;
    int64_t now = now_ns();
    pthread_mutex_lock(&c->lock);
    struct attr *a = attr_find(c, &k);
    bool was = a && a->pinned;
    if (was) {
        recent_add(c, path);
        int64_t ttl = ttl_of(c, a->negative ? NULL : &a->st);
        attr_detach(c, a);
        a->pinned = false;
        a->expires = now + ttl;
        attr_attach(c, a, NULL);
        if (ttl == 0)
            attr_drop(c, a);
        else
            attr_trim(c);
    }
    pthread_mutex_unlock(&c->lock);
    return was;
}

void nscache_invalidate(struct nscache *c, const char *path)
{
    struct key k, pk;
    if (path_key(&k, path))
        return;
    pthread_mutex_lock(&c->lock);
    struct attr *a = attr_find(c, &k);
    if (a && !a->pinned)
        attr_drop(c, a);
    listing_drop_key(c, &k);
    if (parent_key(&pk, &k) == 0)
        listing_drop_key(c, &pk);
    pthread_mutex_unlock(&c->lock);
}

struct subtree {
    struct nscache *c;
    const struct key *top;
};

/* Whether key s[0..len) is top or below it: "/a/b" covers "/a/b/x", not "/a/bc". */
static bool in_subtree(const struct key *top, const char *s, size_t len)
{
    if (top->len == 1)
        return true;
    return len >= top->len && memcmp(s, top->s, top->len) == 0 &&
           (len == top->len || s[top->len] == '/');
}

static bool take_attr_below(struct htab_node *n, void *arg)
{
    struct subtree *t = arg;
    struct attr *a = (struct attr *)n;
    if (a->pinned || !in_subtree(t->top, a->key, n->user))
        return false;
    attr_detach(t->c, a);
    free(a);
    return true;
}

static bool take_listing_below(struct htab_node *n, void *arg)
{
    struct subtree *t = arg;
    struct listing *l = (struct listing *)n;
    if (!in_subtree(t->top, l->key, n->user))
        return false;
    listing_detach(t->c, l);
    listing_free(l);
    return true;
}

void nscache_invalidate_tree(struct nscache *c, const char *dirpath)
{
    struct key k, pk;
    if (path_key(&k, dirpath))
        return;
    struct subtree t = {c, &k};
    pthread_mutex_lock(&c->lock);
    htab_filter(&c->attrs, take_attr_below, &t);
    htab_filter(&c->dirs, take_listing_below, &t);
    if (parent_key(&pk, &k) == 0)
        listing_drop_key(c, &pk);
    pthread_mutex_unlock(&c->lock);
}

uint64_t nscache_seq(struct nscache *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t q = c->seq;
    pthread_mutex_unlock(&c->lock);
    return q;
}

/* dir_fill (r NULL: the whole directory, kept) and dir_page (r: one part
 * of it, never kept). */
static int dir_merge(struct nscache *c, const char *dirpath, const struct nscache_dirent *ents,
                     size_t n, uint64_t since, const struct nscache_keys *r, nscache_dir_cb cb,
                     void *arg)
{
    struct key dk;
    const struct nscache_dirent **v;
    size_t m;
    int rc = path_key(&dk, dirpath);
    if (rc || (rc = ents_prepare(&dk, ents, n, &v, &m)))
        return rc;
    /* sorting and allocating the rows need no lock */
    struct listing *l = listing_new(&dk, v, m);
    bool kept = false;
    int64_t now = now_ns();
    const char **recent = NULL;
    size_t nrecent = 0;
    pthread_mutex_lock(&c->lock);
    if (!r)
        listing_drop_key(c, &dk); /* stale, whatever happens next */
    int known = recent_children(c, &dk, since, &recent, &nrecent);
    children_store(c, &dk, v, m, now, recent, nrecent);
    rc = l ? listing_overlay(c, l, r) : -ENOMEM;
    if (rc == 0 && known == 0)
        known = listing_overlay_recent(c, l, r, recent, nrecent);
    if (known == -ENOMEM)
        rc = known;
    if (rc == 0) {
        /* changes it cannot account for: shown this once, not kept */
        kept = !r && known == 0 && listing_store(c, l, now);
        if (cb)
            rc = listing_walk(l, cb, arg);
        if (kept)
            names_trim(c); /* after the walk: it may evict others, never l (l->n fits) */
    }
    pthread_mutex_unlock(&c->lock);
    free(recent);
    if (!kept)
        listing_free(l);
    free(v);
    return rc;
}

int nscache_dir_fill(struct nscache *c, const char *dirpath, const struct nscache_dirent *ents,
                     size_t n, uint64_t since, nscache_dir_cb cb, void *arg)
{
    return dir_merge(c, dirpath, ents, n, since, NULL, cb, arg);
}

int nscache_dir_page(struct nscache *c, const char *dirpath, const struct nscache_dirent *ents,
                     size_t n, uint64_t since, const struct nscache_keys *r, nscache_dir_cb cb,
                     void *arg)
{
    static const struct nscache_keys all = {NULL, NULL};
    return dir_merge(c, dirpath, ents, n, since, r ? r : &all, cb, arg);
}

int nscache_dir_put(struct nscache *c, const char *dirpath, const struct nscache_dirent *ents,
                    size_t n)
{
    return nscache_dir_fill(c, dirpath, ents, n, NSCACHE_NOW, NULL, NULL);
}

int nscache_dir_get(struct nscache *c, const char *dirpath, nscache_dir_cb cb, void *arg)
{
    struct key dk;
    int rc = path_key(&dk, dirpath);
    if (rc)
        return rc;
    int64_t now = now_ns();
    pthread_mutex_lock(&c->lock);
    struct listing *l = listing_live(c, &dk, now);
    if (l) {
        link_touch(&c->dir_lru, &l->lru);
        c->dir_hits++;
        rc = listing_walk(l, cb, arg);
    } else {
        c->dir_misses++;
        rc = -EAGAIN;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void nscache_stats(struct nscache *c, struct nscache_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = (struct nscache_stats){
        .entries = c->attrs.n,
        .pinned = c->npinned,
        .negative = c->nnegative,
        .listings = c->dirs.n,
        .names = c->nnames,
        .hits = c->hits,
        .misses = c->misses,
        .dir_hits = c->dir_hits,
        .dir_misses = c->dir_misses,
        .evictions = c->evictions,
    };
    pthread_mutex_unlock(&c->lock);
}
