#include "s3cfs/path.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

bool path_bucket_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 3 || n > S3CFS_BUCKET_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        /* radosgw and older AWS buckets also allow '_' and upper case */
        if (!alnum && c != '.' && c != '-' && c != '_' && !(c >= 'A' && c <= 'Z'))
            return false;
        if ((i == 0 || i == n - 1) && !alnum && !(c >= 'A' && c <= 'Z'))
            return false;
    }
    return true;
}

int path_map_init(struct path_map *m, const char *spec)
{
    memset(m, 0, sizeof *m);
    if (!spec || !*spec) {
        m->all_buckets = true;
        return 0;
    }
    const char *colon = strchr(spec, ':');
    size_t blen = colon ? (size_t)(colon - spec) : strlen(spec);
    if (blen > S3CFS_BUCKET_MAX)
        return -EINVAL;
    memcpy(m->bucket, spec, blen);
    m->bucket[blen] = '\0';
    if (!path_bucket_name_ok(m->bucket))
        return -EINVAL;
    const char *p = colon ? colon + 1 : "";
    while (*p == '/')
        p++;
    size_t plen = strlen(p);
    while (plen && p[plen - 1] == '/')
        plen--;
    if (plen + 1 > S3CFS_KEY_MAX)
        return -ENAMETOOLONG;
    if (plen) {
        memcpy(m->prefix, p, plen);
        m->prefix[plen] = '/';
        m->prefix[plen + 1] = '\0';
    }
    return 0;
}

/* Check every component: not empty, not "." or "..", at most 255 bytes. */
static int check_components(const char *rel)
{
    while (*rel) {
        size_t n = strcspn(rel, "/");
        /* the kernel resolves "." and ".." itself: such a path never names
         * a key (their keys have reserved names, path.h) */
        if (n == 0 || (n == 1 && rel[0] == '.') || (n == 2 && rel[0] == '.' && rel[1] == '.'))
            return -EINVAL;
        if (n > S3CFS_NAME_MAX)
            return -ENAMETOOLONG;
        rel += n;
        if (*rel == '/')
            rel++;
    }
    return 0;
}

static const char *const alias_of[][2] = {
    {"", PATH_ALIAS_EMPTY}, {".", PATH_ALIAS_DOT}, {"..", PATH_ALIAS_DOTDOT}};

const char *path_alias(const char *comp, size_t n)
{
    for (size_t i = 0; i < 3; i++)
        if (strlen(alias_of[i][0]) == n && strncmp(comp, alias_of[i][0], n) == 0)
            return alias_of[i][1];
    return NULL;
}

/* The key component a path component c[0..n) stands for. */
static const char *unalias(const char *c, size_t *n)
{
    for (size_t i = 0; i < 3; i++)
        if (strlen(alias_of[i][1]) == *n && strncmp(c, alias_of[i][1], *n) == 0) {
            *n = strlen(alias_of[i][0]);
            return alias_of[i][0];
        }
    return c;
}

/* prefix + rel, each component of rel unaliased; a path ending in the
 * empty alias names the prefix of its children ("d//"). */
static int join_key(struct fs_loc *out, const char *prefix, const char *rel)
{
    size_t o = strlen(prefix), n = 0;
    memcpy(out->key, prefix, o);
    for (const char *p = rel; *p; p += n + (p[n] == '/')) {
        n = strcspn(p, "/");
        size_t len = n;
        const char *c = unalias(p, &len);
        bool last_empty = len == 0 && p[n] == '\0';
        if (o + len + (p[n] == '/' || last_empty) > S3CFS_KEY_MAX)
            return -ENAMETOOLONG;
        memcpy(out->key + o, c, len);
        o += len;
        if (p[n] == '/' || last_empty)
            out->key[o++] = '/';
    }
    out->key[o] = '\0';
    return 0;
}

int path_resolve(const struct path_map *m, const char *path, struct fs_loc *out)
{
    memset(out, 0, sizeof *out);
    if (path[0] != '/')
        return -EINVAL;
    const char *rel = path + 1;
    int rc = check_components(rel);
    if (rc)
        return rc;
    if (!m->all_buckets) {
        snprintf(out->bucket, sizeof out->bucket, "%s", m->bucket);
        out->kind = *rel ? LOC_OBJECT : LOC_BUCKET;
        return join_key(out, m->prefix, rel);
    }
    if (!*rel) {
        out->kind = LOC_ROOT;
        return 0;
    }
    size_t bl = strcspn(rel, "/");
    if (bl > S3CFS_BUCKET_MAX)
        return -ENOENT;
    memcpy(out->bucket, rel, bl);
    out->bucket[bl] = '\0';
    if (!path_bucket_name_ok(out->bucket))
        return -ENOENT;
    rel += bl;
    if (*rel == '/')
        rel++;
    out->kind = *rel ? LOC_OBJECT : LOC_BUCKET;
    return join_key(out, "", rel);
}

int path_dir_prefix(const struct fs_loc *l, char *out, size_t size)
{
    size_t n = strlen(l->key);
    /* a bucket's top: the key is the mount prefix, already ending in '/' */
    bool slash = n > 0 && l->key[n - 1] != '/';
    if (n + slash + 1 > size || n + slash > S3CFS_KEY_MAX + 1)
        return -ENAMETOOLONG;
    memcpy(out, l->key, n);
    if (slash)
        out[n++] = '/';
    out[n] = '\0';
    return 0;
}

void path_parent(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash && slash != path ? (size_t)(slash - path) : 1;
    if (n >= size)
        n = size - 1;
    memcpy(out, path, n);
    out[n] = '\0';
}

const char *path_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Appends "/" and the name shown for comp[0..n) at out + *o. */
static int put_component(char *out, size_t size, size_t *o, const char *comp, size_t n)
{
    const char *a = path_alias(comp, n);
    size_t len = a ? strlen(a) : n;
    if (*o + 1 + len >= size)
        return -ENAMETOOLONG;
    out[(*o)++] = '/';
    memcpy(out + *o, a ? a : comp, len);
    *o += len;
    out[*o] = '\0';
    return 0;
}

int path_from_key(const struct path_map *m, const char *bucket, const char *key, char *out,
                  size_t size)
{
    size_t pl = strlen(m->prefix), o = 0;
    const char *rel = key;
    if (size < 2)
        return -ENAMETOOLONG;
    out[0] = '\0';
    if (m->all_buckets) {
        int rc = put_component(out, size, &o, bucket, strlen(bucket));
        if (rc)
            return rc;
    } else if (strcmp(bucket, m->bucket) != 0 || strncmp(key, m->prefix, pl) != 0) {
        return -ENOENT;
    } else {
        rel = key + pl;
    }
    size_t rl = strlen(rel);
    if (rl == 0) { /* the top of the mount or of a bucket */
        if (o == 0)
            snprintf(out, size, "/");
        return 0;
    }
    if (rel[rl - 1] == '/') /* a directory marker: its directory */
        rl--;
    for (size_t i = 0;;) {
        size_t n = 0;
        while (i + n < rl && rel[i + n] != '/')
            n++;
        int rc = put_component(out, size, &o, rel + i, n);
        if (rc || i + n >= rl)
            return rc;
        i += n + 1;
    }
}
