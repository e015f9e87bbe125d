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
