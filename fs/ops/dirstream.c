/* dirstream.c - readdir through a handle, a part at a time (see
 * dirstream.h for the contract, doc/internals/readdir.md for the why). */
#include "s3cfs/dirstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3cfs/buf.h"
#include "s3cfs/dirtimes.h"
#include "s3cfs/log.h"
#include "s3cfs/lookup.h"
#include "s3cfs/node.h"
#include "s3cfs/nscache.h"
#include "s3cfs/pool.h"

#define PAGE_MAX        1000 /* S3's largest page */
#define EMPTY_PAGES_MAX 16   /* empty truncated pages in a row before giving up */

struct entry {
    char *name;
    char *key; /* raw pages: the key below the directory's prefix */
    struct stat st;
    bool have_attrs; /* from the cache or a HEAD */
};

struct listing {
    struct fs_ctx *c;
    const char *path;
    struct sbuf buf; /* holds v */
    struct entry *v;
    size_t n;
};

/* The names of files (and directories) seen lately that the keys still
 * listed may repeat: "a" is followed by "a.txt", then "a/" and
 * "a_$folder$", all starting with "a". Each name on the stack is a prefix
 * of the next, so the top name and the lengths are the whole stack. */
struct seen {
    char top[S3CFS_NAME_MAX + 1];
    size_t len[S3CFS_NAME_MAX + 1];
    size_t depth;
};

struct dir_stream {
    struct fs_ctx *c;
    char *path; /* the listing's directory */
    struct fs_loc loc;
    size_t plen;          /* length of its key prefix */
    bool started;         /* a listing is under way */
    bool s3_done;         /* no page after page */
    bool done;            /* win is the last part */
    uint64_t since;       /* nscache_seq before page was asked for */
    char *token;          /* the next page's continuation */
    char *last_key;       /* the last key of page: the next must come after it */
    unsigned empty_pages; /* empty pages in a row */
    struct listing page;  /* raw: the S3 page being given out */
    size_t next;          /* its first entry not given out yet */
    char *after;          /* the key that ends the part given out last; NULL: none yet */
    size_t batch;         /* entries of the next part */
    struct seen seen;
    struct listing win; /* what the reader gets: one part, or the whole directory */
    off_t base;         /* the offset of win.v[0] */
};

/* ---- listings ---- */

static int add_entry(struct listing *l, const char *name, size_t len)
{
    const char *alias = path_alias(name, len); /* keys like "a//b" or "a/./b" */
    if (alias) {
        name = alias;
        len = strlen(alias);
    }
    if (len > S3CFS_NAME_MAX)
        return 1; /* no name can show it: rmdir still counts it */
    struct entry e = {.name = strndup(name, len)};
    if (!e.name || sbuf_append(&l->buf, &e, sizeof e)) {
        free(e.name);
        return -ENOMEM;
    }
    l->v = (struct entry *)(void *)l->buf.data; /* malloc's alignment */
    l->n++;
    return 0;
}

static void free_entries(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].key);
    }
    l->n = 0;
    sbuf_reset(&l->buf);
}

static void free_listing(struct listing *l)
{
    free_entries(l);
    sbuf_free(&l->buf);
    l->v = NULL;
}

static int cmp_name(const void *key, const void *elem)
{
    return strcmp(key, ((const struct entry *)elem)->name);
}

static void child_path(const char *dir, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", name);
}

/* ---- one S3 page into entries ---- */

/* Drop the names the key no longer starts with; whether name[0..len) is
 * one of those left (a name seen before: not shown again). */
static bool seen_before(struct seen *s, const char *key, const char *name, size_t len)
{
    while (s->depth && strncmp(key, s->top, s->len[s->depth - 1]) != 0)
        s->depth--;
    for (size_t i = 0; i < s->depth; i++)
        if (s->len[i] == len && memcmp(s->top, name, len) == 0)
            return true;
    return false;
}

static void seen_add(struct seen *s, const char *name, size_t len)
{
    if (len > S3CFS_NAME_MAX || s->depth > S3CFS_NAME_MAX)
        return;
    memcpy(s->top, name, len);
    s->len[s->depth++] = len;
}

/* The child key (below the prefix) names: a file, a directory ("d/") or
 * an old-style "d_$folder$". Its name and type in *len, *is_dir. */
static void key_name(const char *key, bool prefix, size_t *len, bool *is_dir)
{
    size_t n = strlen(key), sl = strlen(FS_FOLDER_SUFFIX);
    *is_dir = prefix;
    if (prefix && n && key[n - 1] == '/')
        n--;
    if (!prefix && n > sl && strcmp(key + n - sl, FS_FOLDER_SUFFIX) == 0 &&
        !memchr(key, '/', n - sl)) {
        n -= sl;
        *is_dir = true;
    }
    *len = n;
}

/* One key of a page (o: an object, else a common prefix) into l. */
static int take_key(struct dir_stream *s, const char *key, const struct s3_object *o)
{
    size_t len;
    bool is_dir;
    key_name(key, o == NULL, &len, &is_dir);
    if (len == 0 && o)
        return 0; /* the directory's own marker */
    if (seen_before(&s->seen, key, key, len))
        return 0; /* "a" and "a/" both present: the file wins */
    seen_add(&s->seen, key, len);
    struct listing *l = &s->page;
    int rc = add_entry(l, key, len);
    if (rc)
        return rc > 0 ? 0 : rc;
    struct entry *e = &l->v[l->n - 1];
    if (!(e->key = strdup(key)))
        return -ENOMEM;
    if (!is_dir)
        meta_to_stat(NULL, 0, o->size, &o->mtime, META_FILE, &s->c->defaults, &e->st);
    else
        fs_dir_stat(s->c, &e->st);
    if (is_dir && o) { /* old-style */
        e->st.st_mtim = e->st.st_ctim = e->st.st_atim = o->mtime;
        e->st.st_dev = FS_DIR_FOLDER;
    }
    return 0;
}

/* The page's objects and prefixes, merged in key order. */
static int take_page(struct dir_stream *s, const struct s3_list_page *p)
{
    size_t i = 0, j = 0;
    int rc = 0;
    while (rc == 0 && (i < p->nobjects || j < p->nprefixes)) {
        const char *ok = i < p->nobjects ? p->objects[i].key + s->plen : NULL;
        const char *pk = j < p->nprefixes ? p->prefixes[j] + s->plen : NULL;
        if (ok && (!pk || strcmp(ok, pk) <= 0))
            rc = take_key(s, ok, &p->objects[i++]);
        else
            rc = take_key(s, pk, NULL), j++;
    }
    return rc;
}

/* The smallest and largest key of a page ("" when empty). */
static void page_bounds(const struct s3_list_page *p, const char **lo, const char **hi)
{
    const char *ol = p->nobjects ? p->objects[0].key : NULL;
    const char *pl = p->nprefixes ? p->prefixes[0] : NULL;
    const char *oh = p->nobjects ? p->objects[p->nobjects - 1].key : NULL;
    const char *ph = p->nprefixes ? p->prefixes[p->nprefixes - 1] : NULL;
    *lo = !ol ? (pl ? pl : "") : (!pl || strcmp(ol, pl) < 0 ? ol : pl);
    *hi = !oh ? (ph ? ph : "") : (!ph || strcmp(oh, ph) > 0 ? oh : ph);
}

/* A server that sends a page twice or goes back would list for ever. */
static int page_moves_on(struct dir_stream *s, const struct s3_list_page *p, struct s3_error *err)
{
    const char *lo, *hi;
    page_bounds(p, &lo, &hi);
    bool ok = !p->truncated || (p->next_token && *p->next_token);
    if (ok && p->truncated && s->token)
        ok = strcmp(p->next_token, s->token) != 0;
    if (ok && s->last_key && *lo)
        ok = strcmp(lo, s->last_key) > 0;
    /* empty pages prove no progress: a few in a row are tolerated */
    s->empty_pages = *lo ? 0 : s->empty_pages + 1;
    if (ok)
        ok = s->empty_pages <= EMPTY_PAGES_MAX;
    if (!ok) {
        s3_error_set(err, "BadResponse", "listing does not move on");
        return -EIO;
    }
    free(s->last_key);
    return (s->last_key = strdup(hi)) ? 0 : -ENOMEM;
}

static int page_keys(const struct fs_ctx *c)
{
    return c->opt.max_listing > 0 && c->opt.max_listing < PAGE_MAX ? c->opt.max_listing : 0;
}

/* The next S3 page into s->page (its entries replaced). */
static int fetch_page(struct dir_stream *s)
{
    char prefix[S3CFS_KEY_MAX + 2];
    int rc = path_dir_prefix(&s->loc, prefix, sizeof prefix);
    if (rc)
        return rc;
    s->plen = strlen(prefix);
    free_entries(&s->page);
    s->next = 0;
    s->since = nscache_seq(s->c->cache); /* what changes meanwhile is newer */
    struct s3_list_page p = {0};
    struct s3_error err;
    s3_error_clear(&err);
    rc = s3_list_objects(s->c->s3, s->loc.bucket, prefix, "/", s->token, page_keys(s->c), &p, &err);
    if (rc == 0)
        rc = page_moves_on(s, &p, &err);
    if (rc == 0)
        rc = take_page(s, &p);
    free(s->token);
    s->token = rc == 0 && p.truncated ? strdup(p.next_token) : NULL;
    s->s3_done = rc == 0 && !p.truncated;
    if (rc == 0 && p.truncated && !s->token)
        rc = -ENOMEM;
    s3_list_page_free(&p);
    return rc == -ENOMEM ? rc : rc ? fs_fail("list", s->path, rc, &err) : 0;
}

/* ---- attributes ---- */

struct head_task {
    const char *dir;
    struct fs_ctx *c;
    struct entry *e;
};

static int head_entry(void *arg)
{
    struct head_task *t = arg;
    char path[4096 + 256];
    child_path(t->dir, t->e->name, path, sizeof path);
    struct stat st;
    if (fs_lookup(t->c, path, &st, NULL) == 0)
        t->e->st = st;
    t->e->have_attrs = true;
    return 0; /* a failed HEAD keeps the listing's attributes */
}

/* Attributes of v[0..n) not in the cache: HEAD in parallel (metadata is
 * not in a listing). Entries with cached or open-node attributes cost
 * nothing. */
static int complete_attrs(struct fs_ctx *c, const char *dir, struct entry *v, size_t n)
{
    struct head_task *tasks = calloc(n ? n : 1, sizeof *tasks);
    if (!tasks)
        return -ENOMEM;
    struct pool_group g;
    pool_group_init(&g);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[4096 + 256];
        child_path(dir, v[i].name, path, sizeof path);
        struct stat st;
        if (node_stat(c, path, &st, NULL) == 0 || nscache_lookup(c->cache, path, &st, NULL) == 0) {
            v[i].st = st;
            continue;
        }
        if (c->opt.listing_attrs_only)
            continue;
        tasks[i] = (struct head_task){dir, c, &v[i]};
        rc = pool_submit_group(c->pool, &g, head_entry, &tasks[i]);
    }
    int wrc = pool_group_wait(&g);
    pool_group_destroy(&g);
    free(tasks);
    return rc ? rc : wrc;
}

/* ---- merging with what the cache and the open files know ---- */

static int from_cache(const char *name, const struct stat *st, void *arg)
{
    struct listing *l = arg;
    int rc = add_entry(l, name, strlen(name));
    if (rc == 0)
        l->v[l->n - 1].st = *st;
    return rc < 0 ? rc : 0;
}

/* Files created here and not yet flushed are not in S3: add those whose
 * key falls in r (NULL: all) to l. */
static int add_pending(struct fs_ctx *c, struct listing *l, const struct nscache_keys *r)
{
    struct node_child *kids = NULL;
    size_t n = 0, listed = l->n; /* sorted by name: the cache's walk */
    int rc = node_children(c->nodes, l->path, &kids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (r && !nscache_in_keys(r, kids[i].name, false))
            continue;
        if (listed && bsearch(kids[i].name, l->v, listed, sizeof *l->v, cmp_name))
            continue;
        if ((rc = add_entry(l, kids[i].name, strlen(kids[i].name))) == 0)
            l->v[l->n - 1].st = kids[i].st;
        rc = rc < 0 ? rc : 0;
    }
    node_children_free(kids, n);
    return rc;
}

/* Store v[0..n) (what S3 listed) and read back the merged view into out:
 * queued copies appear, queued deletes are gone (the namespace cache's
 * pins). r NULL: the whole directory, kept whole. */
static int merge(struct fs_ctx *c, const char *path, const struct entry *v, size_t n,
                 uint64_t since, const struct nscache_keys *r, struct listing *out)
{
    struct nscache_dirent *d = calloc(n ? n : 1, sizeof *d);
    if (!d)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        d[i] = (struct nscache_dirent){.name = v[i].name, .st = v[i].st};
    int rc = r ? nscache_dir_page(c->cache, path, d, n, since, r, from_cache, out)
               : nscache_dir_fill(c->cache, path, d, n, since, from_cache, out);
    free(d);
    if (rc == 0)
        rc = add_pending(c, out, r);
    return rc;
}

/* ---- the whole directory ---- */

static int list_buckets(struct fs_ctx *c, struct listing *l)
{
    struct s3_bucket *b;
    size_t n;
    struct s3_error err;
    int rc = s3_list_buckets(c->s3, &b, &n, &err);
    if (rc)
        return fs_fail("list buckets", "/", rc, &err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = add_entry(l, b[i].name, strlen(b[i].name));
        if (rc == 0) {
            fs_dir_stat(c, &l->v[l->n - 1].st);
            l->v[l->n - 1].st.st_mtime = b[i].created;
        }
        rc = rc < 0 ? rc : 0;
    }
    s3_buckets_free(b, n);
    return rc;
}

static int whole_buckets(struct dir_stream *s)
{
    uint64_t since = nscache_seq(s->c->cache);
    int rc = list_buckets(s->c, &s->page);
    if (rc == 0)
        rc = merge(s->c, s->path, s->page.v, s->page.n, since, NULL, &s->win);
    return rc;
}

/* The directory fitted in its first page: as it always was, kept whole. */
static int whole_page(struct dir_stream *s)
{
    int rc = complete_attrs(s->c, s->path, s->page.v, s->page.n);
    if (rc == 0)
        rc = merge(s->c, s->path, s->page.v, s->page.n, s->since, NULL, &s->win);
    return rc;
}

/* ---- a stream of parts ---- */

/* The next part of the directory into win, after the part given out. */
static int next_part(struct dir_stream *s)
{
    s->base += (off_t)s->win.n;
    free_entries(&s->win);
    int rc = 0;
    while (rc == 0 && s->next == s->page.n && !s->s3_done)
        rc = fetch_page(s);
    if (rc)
        return rc;
    size_t n = s->page.n - s->next;
    if (n > s->batch)
        n = s->batch;
    s->done = s->next + n == s->page.n && s->s3_done;
    struct entry *v = s->page.v + s->next;
    /* the part's keys: after the last part's, up to its own last (the
     * last part: to the end), so that each pin falls in one part */
    struct nscache_keys r = {s->after, s->done || n == 0 ? NULL : v[n - 1].key};
    rc = complete_attrs(s->c, s->path, v, n);
    if (rc == 0)
        rc = merge(s->c, s->path, v, n, s->since, &r, &s->win);
    if (rc == 0 && n) {
        free(s->after);
        s->after = v[n - 1].key;
        v[n - 1].key = NULL;
    }
    s->next += n;
    s->batch = s->batch * 2 < PAGE_MAX ? s->batch * 2 : PAGE_MAX;
    return rc;
}

static void reset(struct dir_stream *s)
{
    free_entries(&s->page);
    free_entries(&s->win);
    char *owned[] = {s->token, s->last_key, s->after, s->path};
    for (size_t i = 0; i < sizeof owned / sizeof *owned; i++)
        free(owned[i]);
    struct fs_ctx *c = s->c;
    struct listing page = s->page, win = s->win;
    memset(s, 0, sizeof *s);
    s->c = c;
    s->page = page;
    s->win = win;
}

/* A fresh listing from the start: whole when cached, the bucket list, or
 * one page; else the first part of a stream. */
static int restart(struct dir_stream *s, const char *path)
{
    reset(s);
    int rc = path_resolve(&s->c->map, path, &s->loc);
    if (rc)
        return rc;
    if (!(s->path = strdup(path)))
        return -ENOMEM;
    s->page.c = s->win.c = s->c;
    s->page.path = s->win.path = s->path;
    s->started = true;
    s->base = 2;
    s->done = true;
    if (nscache_dir_get(s->c->cache, path, from_cache, &s->win) == 0)
        return add_pending(s->c, &s->win, NULL);
    free_entries(&s->win);
    if (s->loc.kind == LOC_ROOT)
        return whole_buckets(s);
    if ((rc = fetch_page(s)))
        return rc;
    if (s->s3_done)
        return whole_page(s);
    s->done = false;
    s->batch = s->c->opt.max_inflight > 0 ? (size_t)s->c->opt.max_inflight : 64;
    return next_part(s);
}

/* ---- the kernel's buffer ---- */

/* One entry at offset off, as the kernel gets it; 1 when the buffer is
 * full. The kernel keeps these attributes as it keeps getattr's, so they
 * are what getattr says: an open file's own (a listing's row can be older
 * than its writes), a directory's link count and unwritten times. */
static int fill_one(struct dir_stream *s, const struct entry *e, off_t off, void *buf,
                    fuse_fill_dir_t filler)
{
    struct stat st = e->st;
    char path[4096 + 256];
    child_path(s->path, e->name, path, sizeof path);
    if (node_stat(s->c, path, &st, NULL) != 0 && S_ISDIR(st.st_mode)) {
        fs_dir_nlink(s->c, path, &st);
        dirtimes_apply(s->c->dirtimes, path, &st);
    }
    fs_shown(s->c, &st);
    return filler(buf, e->name, &st, off + 1, FUSE_FILL_DIR_PLUS) ? 1 : 0;
}

/* No attributes for the dot entries: libfuse then gives them an inode
 * number (with 0, glibc's readdir would hide them). */
static int fill_dots(off_t *off, void *buf, fuse_fill_dir_t filler)
{
    if (*off == 0 && filler(buf, ".", NULL, 1, 0))
        return 1;
    if (*off <= 1 && filler(buf, "..", NULL, 2, 0))
        return 1;
    if (*off < 2)
        *off = 2;
    return 0;
}

int dirstream_read(struct dir_stream *s, const char *path, off_t off, void *buf,
                   fuse_fill_dir_t filler)
{
    int rc = 0;
    if (off < 0)
        return -EINVAL;
    if (off == 0 || !s->started || off < s->base || strcmp(path, s->path) != 0)
        rc = restart(s, path);
    if (rc == 0 && fill_dots(&off, buf, filler))
        return 0;
    off_t first = off;
    while (rc == 0) {
        /* what is ready goes at once: the next part (HEADs, maybe a LIST)
         * waits for the next call, so the first names come early */
        bool ready = off < s->base + (off_t)s->win.n;
        if (!ready && (s->done || off > first))
            break;
        if (!ready && (rc = next_part(s)) == 0)
            continue;
        if (rc || fill_one(s, &s->win.v[off - s->base], off, buf, filler))
            break;
        off++;
    }
    if (rc)
        s->started = false; /* the next call starts again */
    return rc;
}

int dirstream_open(struct fs_ctx *c, struct dir_stream **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return -ENOMEM;
    (*out)->c = c;
    return 0;
}

void dirstream_close(struct dir_stream *s)
{
    if (!s)
        return;
    reset(s);
    free_listing(&s->page);
    free_listing(&s->win);
    free(s);
}
