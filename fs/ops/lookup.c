#include "s3cfs/lookup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "s3cfs/dirtimes.h"
#include "s3cfs/fsqueue.h"
#include "s3cfs/engine.h"
#include "s3cfs/log.h"
#include "s3cfs/node.h"
#include "s3cfs/nscache.h"

void fs_dir_stat(struct fs_ctx *c, struct stat *st)
{
    meta_to_stat(NULL, 0, 0, NULL, META_DIR, &c->defaults, st);
    st->st_dev = FS_DIR_UNKNOWN;
}

void fs_shown(struct fs_ctx *c, struct stat *st)
{
    if (!c->defaults.show_suid)
        st->st_mode &= ~(mode_t)(S_ISUID | S_ISGID);
}

int fs_dir_meta_key(const struct fs_loc *loc, const struct stat *st, char *key, size_t size)
{
    const char *suffix = st->st_dev == FS_DIR_OBJECT ? "" : FS_FOLDER_SUFFIX;
    if (st->st_dev != FS_DIR_OBJECT && st->st_dev != FS_DIR_FOLDER)
        return path_dir_prefix(loc, key, size);
    int n = snprintf(key, size, "%s%s", loc->key, suffix);
    return n < 0 || (size_t)n >= size || (size_t)n > S3CFS_KEY_MAX ? -ENAMETOOLONG : 0;
}

/* An empty object typed application/x-directory is an old-style
 * directory (s3fs before 1.6x wrote "d" instead of "d/"); one with data
 * stays a file, so no bytes become unreachable. */
static bool old_style_dir(const struct s3_head *h)
{
    static const char type[] = "application/x-directory";
    return h->size == 0 && strncasecmp(h->content_type, type, sizeof type - 1) == 0 &&
           (h->content_type[sizeof type - 1] == '\0' || h->content_type[sizeof type - 1] == ';');
}

void fs_new_stat(struct fs_ctx *c, mode_t mode, uid_t uid, gid_t gid, uint64_t size,
                 struct stat *st)
{
    meta_to_stat(NULL, 0, size, NULL, S_ISDIR(mode) ? META_DIR : META_FILE, &c->defaults, st);
    st->st_mode = mode;
    st->st_uid = uid;
    st->st_gid = gid;
    clock_gettime(CLOCK_REALTIME, &st->st_mtim);
    st->st_atim = st->st_ctim = st->st_mtim;
}

static void stat_from_head(struct fs_ctx *c, const struct s3_head *h, enum meta_kind kind,
                           struct stat *st)
{
    meta_to_stat(h->meta, h->nmeta, h->size, &h->mtime, kind, &c->defaults, st);
    if (kind == META_DIR)
        st->st_dev = FS_DIR_MARKER;
}

/* No "d/" marker and no key below: an old-style "d_$folder$" object? */
static int lookup_folder(struct fs_ctx *c, const struct fs_loc *loc, struct stat *st,
                         struct s3_head *head)
{
    char key[S3CFS_KEY_MAX + 16];
    struct s3_error err;
    int n = snprintf(key, sizeof key, "%s%s", loc->key, FS_FOLDER_SUFFIX);
    if (n < 0 || (size_t)n > S3CFS_KEY_MAX)
        return -ENOENT; /* no such key can exist */
    s3_head_free(head);
    memset(head, 0, sizeof *head);
    int rc = s3_head_object(c->s3, loc->bucket, key, head, &err);
    if (rc)
        return rc == -ENOENT ? rc : fs_fail("head", key, rc, &err);
    stat_from_head(c, head, META_DIR, st);
    st->st_dev = FS_DIR_FOLDER;
    return 0;
}

/* A directory is at loc: implicit, or with its marker "key/", whose
 * metadata carries the directory's mode, owner and times. */
static int found_dir(struct fs_ctx *c, const struct fs_loc *loc, bool marker, struct stat *st,
                     struct s3_head *head)
{
    char prefix[S3CFS_KEY_MAX + 2];
    struct s3_error err;
    fs_dir_stat(c, st);
    st->st_dev = FS_DIR_IMPLICIT;
    int rc = marker ? path_dir_prefix(loc, prefix, sizeof prefix) : 0;
    if (rc || !marker)
        return rc;
    rc = s3_head_object(c->s3, loc->bucket, prefix, head, &err);
    if (rc == 0)
        stat_from_head(c, head, META_DIR, st);
    return rc == -ENOENT ? 0 : rc;
}

/* A directory below a key: its marker "key/" or any key under it. */
static int lookup_dir(struct fs_ctx *c, const struct fs_loc *loc, struct stat *st,
                      struct s3_head *head)
{
    char prefix[S3CFS_KEY_MAX + 2];
    struct s3_error err;
    struct s3_list_page page = {0};
    int rc = path_dir_prefix(loc, prefix, sizeof prefix);
    if (rc)
        return rc;
    rc = s3_list_objects(c->s3, loc->bucket, prefix, NULL, NULL, 1, &page, &err);
    if (rc)
        return fs_fail("list", loc->key, rc, &err);
    bool found = page.nobjects > 0 || page.nprefixes > 0;
    bool marker = page.nobjects > 0 && strcmp(page.objects[0].key, prefix) == 0;
    s3_list_page_free(&page);
    return found ? found_dir(c, loc, marker, st, head) : lookup_folder(c, loc, st, head);
}

/* What one page of the keys starting with key says of it (after a HEAD of
 * key found nothing), so that a name that does not exist costs one LIST:
 * 1 a directory (*marker: "key/" itself is there), 2 only "key_$folder$",
 * -ENOENT none of them, 0 not settled by the page (it was cut short
 * before: then each is asked for as before). */
#define BELOW_PAGE 100
static int scan_below(const struct s3_list_page *p, const char *key, bool *marker)
{
    size_t kl = strlen(key);
    bool dir = false, folder = false;
    *marker = false;
    for (size_t i = 0; i < p->nobjects; i++) {
        const char *rest = p->objects[i].key + kl; /* every key starts with key (s3.h) */
        dir |= rest[0] == '/';
        *marker |= strcmp(rest, "/") == 0;
        folder |= strcmp(rest, FS_FOLDER_SUFFIX) == 0;
    }
    if (dir)
        return 1;
    if (p->truncated)
        return 0;
    return folder ? 2 : -ENOENT;
}

static int lookup_below(struct fs_ctx *c, const struct fs_loc *loc, struct stat *st,
                        struct s3_head *head)
{
    struct s3_error err;
    struct s3_list_page page = {0};
    int rc = s3_list_objects(c->s3, loc->bucket, loc->key, NULL, NULL, BELOW_PAGE, &page, &err);
    if (rc)
        return fs_fail("list", loc->key, rc, &err);
    bool marker;
    int found = scan_below(&page, loc->key, &marker);
    s3_list_page_free(&page);
    if (found == 0)
        return lookup_dir(c, loc, st, head);
    if (found == -ENOENT)
        return -ENOENT;
    return found == 2 ? lookup_folder(c, loc, st, head) : found_dir(c, loc, marker, st, head);
}

int fs_lookup_head(struct fs_ctx *c, const char *path, const struct fs_loc *loc, struct stat *st,
                   struct s3_head *head)
{
    struct s3_error err;
    memset(head, 0, sizeof *head);
    if (loc->kind == LOC_ROOT || (loc->kind == LOC_BUCKET && !c->map.all_buckets)) {
        fs_dir_stat(c, st);
        return 0;
    }
    if (loc->kind == LOC_BUCKET) {
        int rc = s3_head_bucket(c->s3, loc->bucket, &err);
        if (rc == 0)
            fs_dir_stat(c, st);
        return rc == -ENOENT ? rc : rc ? fs_fail("head bucket", path, rc, &err) : 0;
    }
    size_t kl = strlen(loc->key);
    if (kl && loc->key[kl - 1] == '/') /* PATH_ALIAS_EMPTY: a directory only */
        return lookup_dir(c, loc, st, head);
    int rc = s3_head_object(c->s3, loc->bucket, loc->key, head, &err);
    if (rc == 0) {
        bool old = old_style_dir(head);
        stat_from_head(c, head, old ? META_DIR : META_FILE, st);
        if (old)
            st->st_dev = FS_DIR_OBJECT;
        return 0;
    }
    if (rc != -ENOENT)
        return fs_fail("head", path, rc, &err);
    return lookup_below(c, loc, st, head);
}

static int count_subdir(const char *name, const struct stat *st, void *arg)
{
    (void)name;
    if (S_ISDIR(st->st_mode))
        ++*(nlink_t *)arg;
    return 0;
}

void fs_dir_nlink(struct fs_ctx *c, const char *path, struct stat *st)
{
    nlink_t n = 2;
    st->st_nlink = nscache_dir_get(c->cache, path, count_subdir, &n) == 0 ? n : 1;
}

static int lookup_any(struct fs_ctx *c, const char *path, struct stat *st, char etag[80]);

int fs_lookup(struct fs_ctx *c, const char *path, struct stat *st, char etag[80])
{
    int rc = lookup_any(c, path, st, etag);
    if (rc == 0 && S_ISDIR(st->st_mode)) {
        fs_dir_nlink(c, path, st);
        dirtimes_apply(c->dirtimes, path, st); /* changes not written yet */
    }
    return rc;
}

static int lookup_any(struct fs_ctx *c, const char *path, struct stat *st, char etag[80])
{
    struct fs_loc loc;
    int rc = path_resolve(&c->map, path, &loc);
    if (rc)
        return rc;
    if (node_stat(c, path, st, etag) == 0)
        return 0;
    char tag[80] = "";
    rc = nscache_lookup(c->cache, path, st, tag);
    if (rc != -EAGAIN) {
        if (etag)
            memcpy(etag, tag, sizeof tag);
        return rc;
    }
    struct s3_head head;
    rc = fs_lookup_head(c, path, &loc, st, &head);
    if (rc == 0) {
        nscache_put(c->cache, path, st, head.etag);
        if (etag)
            memcpy(etag, head.etag, sizeof head.etag);
    } else if (rc == -ENOENT) {
        nscache_put_negative(c->cache, path);
    }
    s3_head_free(&head);
    return rc;
}

int fs_settle_name(struct fs_ctx *c, const char *path)
{
    struct fs_loc obj, marker;
    int rc = path_resolve(&c->map, path, &obj);
    if (rc || obj.kind != LOC_OBJECT)
        return rc;
    marker = obj;
    if ((rc = path_dir_prefix(&obj, marker.key, sizeof marker.key)))
        return rc;
    /* both keys: `rm n` queues "n", `rmdir n` queues "n/", and either
     * pins the one path n. Jobs that only read them need no wait: a copy
     * from n queued before `rm n` runs before that delete (the engine
     * orders them), and while n exists the caller answers EEXIST. */
    int orc = fsq_wait(c, &obj, ENGINE_AS_DEST);
    int mrc = fsq_wait(c, &marker, ENGINE_AS_DEST);
    return orc ? orc : mrc;
}
