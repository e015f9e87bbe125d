#include "s3cfs/dir.h"
#include "s3cfs/dirtimes.h"
#include "s3cfs/fsqueue.h"
#include "s3cfs/engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3cfs/log.h"
#include "s3cfs/lookup.h"
#include "s3cfs/node.h"
#include "s3cfs/nscache.h"
#include "s3cfs/pool.h"

struct entry {
    char *name;
    struct stat st;
    bool is_dir;
    bool have_attrs; /* from the cache or a HEAD */
};

struct listing {
    struct fs_ctx *c;
    const struct fs_loc *loc;
    const char *path;
    size_t plen; /* length of the key prefix to strip */
    struct entry *v;
    size_t n, cap;
};

static int add_entry(struct listing *l, const char *name, size_t len, bool is_dir)
{
    const char *alias = path_alias(name, len); /* keys like "a//b" or "a/./b" */
    if (alias) {
        name = alias;
        len = strlen(alias);
    }
    if (len > S3CFS_NAME_MAX)
        return 0; /* no name can show it: rmdir still counts it */
    /* one listing is held whole (sorted, cached): a bucket's directory of
     * millions of keys is refused, not allowed to take the memory */
    if (l->c->opt.max_listing > 0 && l->n >= (size_t)l->c->opt.max_listing)
        return -EFBIG;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct entry *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    struct entry *e = &l->v[l->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strndup(name, len)))
        return -ENOMEM;
    e->is_dir = is_dir;
    l->n++;
    return 0;
}

static int cmp_name(const void *key, const void *elem)
{
    return strcmp(key, ((const struct entry *)elem)->name);
}

/* An old-style "name_$folder$" object is the directory "name" (a name
 * both ways is merged by the namespace cache, the file winning). 1 when o
 * was one; *rc gets the error of adding it. */
static bool folder_entry(struct listing *l, const struct s3_object *o, int *rc)
{
    const char *name = o->key + l->plen;
    size_t len = strlen(name), sl = strlen(FS_FOLDER_SUFFIX);
    if (len <= sl || strcmp(name + len - sl, FS_FOLDER_SUFFIX) != 0 || memchr(name, '/', len - sl))
        return false;
    size_t before = l->n;
    *rc = add_entry(l, name, len - sl, true);
    if (*rc == 0 && l->n > before) {
        struct stat *st = &l->v[l->n - 1].st;
        fs_dir_stat(l->c, st);
        st->st_mtim = st->st_ctim = st->st_atim = o->mtime;
        st->st_dev = FS_DIR_FOLDER;
    }
    return true;
}

static int take_page(const struct s3_list_page *p, void *arg)
{
    struct listing *l = arg;
    int rc = 0;
    size_t first = l->n;
    for (size_t i = 0; rc == 0 && i < p->nobjects; i++) {
        const struct s3_object *o = &p->objects[i];
        if (strlen(o->key) <= l->plen)
            continue; /* the directory's own marker */
        if (folder_entry(l, o, &rc))
            continue;
        size_t before = l->n;
        rc = add_entry(l, o->key + l->plen, strlen(o->key) - l->plen, false);
        if (rc == 0 && l->n > before) {
            struct entry *e = &l->v[l->n - 1];
            meta_to_stat(NULL, 0, o->size, &o->mtime, META_FILE, &l->c->defaults, &e->st);
        }
    }
    size_t nobj = l->n;
    for (size_t i = 0; rc == 0 && i < p->nprefixes; i++) {
        const char *name = p->prefixes[i] + l->plen;
        size_t len = strlen(name);
        if (len && name[len - 1] == '/')
            len--;
        char tmp[S3CFS_NAME_MAX + 1];
        if (len > S3CFS_NAME_MAX)
            continue;
        const char *alias = path_alias(name, len);
        snprintf(tmp, sizeof tmp, "%.*s", alias ? (int)strlen(alias) : (int)len,
                 alias ? alias : name);
        /* "a" and "a/" both present: the file wins */
        if (nobj > first && bsearch(tmp, l->v + first, nobj - first, sizeof *l->v, cmp_name))
            continue;
        rc = add_entry(l, name, len, true);
        if (rc == 0 && l->n > nobj)
            fs_dir_stat(l->c, &l->v[l->n - 1].st);
    }
    return rc;
}

static void child_path(const char *dir, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", name);
}

struct head_task {
    struct listing *l;
    struct entry *e;
};

static int head_entry(void *arg)
{
    struct head_task *t = arg;
    struct fs_ctx *c = t->l->c;
    char path[4096 + 256];
    child_path(t->l->path, t->e->name, path, sizeof path);
    struct stat st;
    if (fs_lookup(c, path, &st, NULL) == 0) {
        t->e->st = st;
        t->e->is_dir = S_ISDIR(st.st_mode);
    }
    t->e->have_attrs = true;
    return 0; /* a failed HEAD keeps the listing's attributes */
}

/* Attributes not in the cache: HEAD in parallel (metadata is not in a
 * listing). Entries with cached or open-node attributes cost nothing. */
static int complete_attrs(struct listing *l)
{
    struct fs_ctx *c = l->c;
    struct head_task *tasks = calloc(l->n ? l->n : 1, sizeof *tasks);
    if (!tasks)
        return -ENOMEM;
    struct pool_group g;
    pool_group_init(&g);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        char path[4096 + 256];
        child_path(l->path, l->v[i].name, path, sizeof path);
        struct stat st;
        if (node_stat(c, path, &st, NULL) == 0 || nscache_lookup(c->cache, path, &st, NULL) == 0) {
            l->v[i].st = st;
            continue;
        }
        if (c->opt.listing_attrs_only)
            continue;
        tasks[i] = (struct head_task){l, &l->v[i]};
        rc = pool_submit_group(c->pool, &g, head_entry, &tasks[i]);
    }
    int wrc = pool_group_wait(&g);
    pool_group_destroy(&g);
    free(tasks);
    return rc ? rc : wrc;
}

static void free_listing(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
}

static int list_buckets(struct fs_ctx *c, struct listing *l)
{
    struct s3_bucket *b;
    size_t n;
    struct s3_error err;
    int rc = s3_list_buckets(c->s3, &b, &n, &err);
    if (rc)
        return fs_fail("list buckets", "/", rc, &err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = add_entry(l, b[i].name, strlen(b[i].name), true);
        if (rc == 0) {
            fs_dir_stat(c, &l->v[l->n - 1].st);
            l->v[l->n - 1].st.st_mtime = b[i].created;
        }
    }
    s3_buckets_free(b, n);
    return rc;
}

static int list_s3(struct fs_ctx *c, struct listing *l)
{
    char prefix[S3CFS_KEY_MAX + 2];
    int rc = path_dir_prefix(l->loc, prefix, sizeof prefix);
    if (rc)
        return rc;
    l->plen = strlen(prefix);
    struct s3_error err;
    rc = s3_list_all(c->s3, l->loc->bucket, prefix, "/", take_page, l, &err);
    if (rc == -EFBIG)
        LOGW("readdir %s: more than %d entries (-o max_listing)", l->path, c->opt.max_listing);
    if (rc)
        return rc == -ENOMEM || rc == -EFBIG ? rc : fs_fail("list", l->path, rc, &err);
    return complete_attrs(l);
}

static int fill(struct listing *l, void *buf, fuse_fill_dir_t filler)
{
    /* no attributes for the dot entries: libfuse then gives them an inode
     * number (with 0, glibc's readdir would hide them) */
    filler(buf, ".", NULL, 0, 0);
    filler(buf, "..", NULL, 0, 0);
    for (size_t i = 0; i < l->n; i++) {
        if (S_ISDIR(l->v[i].st.st_mode)) { /* times not written yet */
            char path[4096 + 256];
            child_path(l->path, l->v[i].name, path, sizeof path);
            dirtimes_apply(l->c->dirtimes, path, &l->v[i].st);
        }
        fs_shown(l->c, &l->v[i].st);
        if (filler(buf, l->v[i].name, &l->v[i].st, 0, FUSE_FILL_DIR_PLUS))
            return -ENOMEM;
    }
    return 0;
}

/* Files created here and not yet flushed are not in S3: add them. */
static int add_pending(struct fs_ctx *c, struct listing *l)
{
    struct node_child *kids = NULL;
    size_t n = 0;
    int rc = node_children(c->nodes, l->path, &kids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bool known = false;
        for (size_t j = 0; j < l->n && !known; j++)
            known = strcmp(l->v[j].name, kids[i].name) == 0;
        if (!known && (rc = add_entry(l, kids[i].name, strlen(kids[i].name), false)) == 0)
            l->v[l->n - 1].st = kids[i].st;
    }
    node_children_free(kids, n);
    return rc;
}

static int from_cache(const char *name, const struct stat *st, void *arg)
{
    struct listing *l = arg;
    int rc = add_entry(l, name, strlen(name), S_ISDIR(st->st_mode));
    if (rc == 0)
        l->v[l->n - 1].st = *st;
    return rc;
}

/* Store what S3 listed and read back the merged view: queued copies
 * appear, queued deletes are gone (the namespace cache's pins). */
static int cache_listing(struct fs_ctx *c, struct listing *l, uint64_t since,
                         struct listing *merged)
{
    struct nscache_dirent *d = calloc(l->n ? l->n : 1, sizeof *d);
    if (!d)
        return -ENOMEM;
    for (size_t i = 0; i < l->n; i++)
        d[i] = (struct nscache_dirent){.name = l->v[i].name, .st = l->v[i].st};
    int rc = nscache_dir_fill(c->cache, l->path, d, l->n, since, from_cache, merged);
    free(d);
    return rc;
}

int dir_read(struct fs_ctx *c, const char *path, void *buf, fuse_fill_dir_t filler)
{
    struct fs_loc loc;
    int rc = path_resolve(&c->map, path, &loc);
    if (rc)
        return rc;
    struct listing l = {.c = c, .loc = &loc, .path = path};
    if (nscache_dir_get(c->cache, path, from_cache, &l) != 0) {
        free_listing(&l);
        struct listing fresh = {.c = c, .loc = &loc, .path = path};
        l = (struct listing){.c = c, .loc = &loc, .path = path};
        /* what changes while S3 lists is newer than the listing */
        uint64_t since = nscache_seq(c->cache);
        rc = loc.kind == LOC_ROOT ? list_buckets(c, &fresh) : list_s3(c, &fresh);
        if (rc == 0)
            rc = cache_listing(c, &fresh, since, &l);
        free_listing(&fresh);
    }
    if (rc == 0)
        rc = add_pending(c, &l);
    if (rc == 0)
        rc = fill(&l, buf, filler);
    free_listing(&l);
    return rc;
}

/* rmdir's question: would anything below the directory survive? */
struct child_scan {
    struct fs_ctx *c;
    const struct fs_loc *loc;
    const char *path;
    size_t plen; /* length of the directory's key prefix */
};

/* Whether the delete of a listed key (an object, or a common prefix: the
 * marker key of a subdirectory removed with rmdir) is queued: the engine
 * has a pending write of that very key and the namespace shows the name
 * gone. Nothing else makes an object in S3 not count: not a cached
 * listing (a directory this mount made is cached empty) nor a negative
 * entry, which another client's PUT does not update. */
static bool delete_queued(struct child_scan *s, const char *key, const char *name, size_t n)
{
    char path[4096 + 256];
    snprintf(path, sizeof path, "%s%s%.*s", s->path, strcmp(s->path, "/") ? "/" : "", (int)n, name);
    struct fs_loc k = *s->loc;
    k.kind = LOC_OBJECT;
    snprintf(k.key, sizeof k.key, "%s", key);
    return nscache_pinned_gone(s->c->cache, path) && fsq_pending(s->c, &k, ENGINE_AS_DEST);
}

/* Whether one listed key keeps the directory from being removed: any key
 * whose delete is not queued, also one readdir shows under an alias (an
 * empty, "." or ".." component: "d//x", "d/./x"; rm -r removes those as
 * any other), and one it cannot show (a component over 255 bytes), so
 * rmdir never removes the marker leaving keys behind. */
static bool entry_counts(struct child_scan *s, const char *key)
{
    const char *rest = key + s->plen; /* s3_list_objects: key starts with the prefix */
    size_t n = strlen(rest);
    if (n == 0)
        return false; /* the directory's own marker */
    if (rest[n - 1] == '/')
        n--;
    const char *alias = path_alias(rest, n);
    if (alias) {
        rest = alias;
        n = strlen(alias);
    }
    return n > S3CFS_NAME_MAX || !delete_queued(s, key, rest, n);
}

static int scan_page(const struct s3_list_page *p, void *arg)
{
    struct child_scan *s = arg;
    for (size_t i = 0; i < p->nobjects; i++)
        if (entry_counts(s, p->objects[i].key))
            return 1;
    for (size_t i = 0; i < p->nprefixes; i++)
        if (entry_counts(s, p->prefixes[i]))
            return 1;
    return 0;
}

/* One pass over the directory's listing in pages of max_keys: 1 at the
 * first key that counts, 0 or -errno. */
static int scan_s3(struct child_scan *s, int max_keys)
{
    char prefix[S3CFS_KEY_MAX + 2];
    int rc = path_dir_prefix(s->loc, prefix, sizeof prefix);
    if (rc)
        return rc;
    s->plen = strlen(prefix);
    struct s3_error err;
    s3_error_clear(&err);
    rc = s3_list_all_n(s->c->s3, s->loc->bucket, prefix, "/", max_keys, scan_page, s, &err);
    return rc < 0 ? fs_fail("list", s->path, rc, &err) : rc;
}

/* Files created below path and not flushed yet: not in S3, still children. */
static int pending_files(struct fs_ctx *c, const char *path)
{
    struct node_child *kids = NULL;
    size_t n = 0;
    int rc = node_children(c->nodes, path, &kids, &n);
    node_children_free(kids, n);
    return rc ? rc : n > 0;
}

/* Always confirmed with S3 (one LIST, no HEAD per child), whatever the
 * cache says: only a queued delete makes a listed key not count. */
int dir_has_children(struct fs_ctx *c, const char *path, const struct fs_loc *loc)
{
    size_t live, gone;
    nscache_pinned_children(c->cache, path, &live, &gone);
    if (live > 0) /* a queued copy onto a child */
        return 1;
    int rc = pending_files(c, path);
    if (rc)
        return rc;
    /* pages as large as the keys that may have to be skipped (the marker
     * and the queued deletes) and one more: rm -r costs one small LIST
     * per directory, an empty directory a LIST of 2 keys */
    struct child_scan s = {c, loc, path, 0};
    int max_keys = gone < 998 ? (int)gone + 2 : 1000;
    rc = scan_s3(&s, max_keys);
    if (rc != 1 || gone == 0)
        return rc;
    /* The key that counted may be one whose delete landed between the
     * LIST and the check (its pin went with it): once the deletes below
     * have landed, what S3 lists is there. Rare: a batch waits for 200 ms
     * of quiet, and rm -r calls rmdir right after the unlinks. */
    if ((rc = fsq_wait_dir(c, loc)))
        return rc;
    return scan_s3(&s, 2);
}

int dir_make(struct fs_ctx *c, const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    struct fs_loc loc;
    int rc = path_resolve(&c->map, path, &loc);
    if (rc)
        return rc;
    struct stat st;
    if (loc.kind != LOC_OBJECT) /* buckets are not made through the mount */
        return fs_lookup(c, path, &st, NULL) == 0 ? -EEXIST : -EPERM;
    if (fs_lookup(c, path, &st, NULL) == 0)
        return -EEXIST;
    char key[S3CFS_KEY_MAX + 2];
    if ((rc = path_dir_prefix(&loc, key, sizeof key)))
        return rc;
    fs_new_stat(c, S_IFDIR | (mode & 07777), uid, gid, 0, &st);
    struct meta_set ms;
    meta_from_stat(&st, &ms);
    struct s3_write_opts wo = {
        .content_type = "application/x-directory", .meta = ms.meta, .nmeta = ms.nmeta};
    struct s3_error err;
    char etag[80];
    if ((rc = fs_settle_name(c, path))) /* rm n; mkdir n, rm -r d; mkdir d */
        return rc;
    rc = s3_put_object(c->s3, loc.bucket, key, NULL, &wo, etag, &err);
    if (rc)
        return fs_fail("mkdir", path, rc, &err);
    /* the parent's listing stays: the put adds the new name to it, so the
     * next mkdir or create beside it needs no lookup in S3 (cp -r makes
     * every directory of a tree in a directory it just made) */
    nscache_put(c->cache, path, &st, etag);
    /* a new directory is empty: names created in it need no lookup in S3 */
    nscache_dir_put(c->cache, path, NULL, 0);
    return 0;
}

/* The old-style objects that make a directory show (lookup.h): "d"
 * when it was one, and "d_$folder$" unless the marker is known to be
 * what carries it. Same batch as the marker's delete: no extra request. */
static int remove_old_style(struct fs_ctx *c, const struct fs_loc *loc, const struct stat *st)
{
    struct fs_loc k = *loc;
    struct stat as_folder = *st;
    as_folder.st_dev = FS_DIR_FOLDER;
    int rc = 0;
    if (st->st_dev != FS_DIR_MARKER && fs_dir_meta_key(loc, &as_folder, k.key, sizeof k.key) == 0)
        rc = fsq_delete(c, &k, NULL, NULL);
    if (rc == 0 && st->st_dev == FS_DIR_OBJECT)
        rc = fsq_delete(c, loc, NULL, NULL);
    return rc;
}

int dir_remove(struct fs_ctx *c, const char *path)
{
    struct fs_loc loc;
    int rc = path_resolve(&c->map, path, &loc);
    if (rc)
        return rc;
    if (loc.kind != LOC_OBJECT)
        return -EBUSY;
    struct stat st;
    char etag[80] = "";
    if ((rc = fs_lookup(c, path, &st, etag)))
        return rc;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if ((rc = dir_has_children(c, path, &loc)) != 0)
        return rc > 0 ? -ENOTEMPTY : rc;
    struct fs_loc marker = loc;
    if ((rc = path_dir_prefix(&loc, marker.key, sizeof marker.key)))
        return rc;
    nscache_invalidate_tree(c->cache, path);
    /* the marker's ETag only when the marker is what the lookup saw */
    rc = fsq_delete(c, &marker, path, st.st_dev == FS_DIR_MARKER ? etag : NULL);
    return rc ? rc : remove_old_style(c, &loc, &st);
}
