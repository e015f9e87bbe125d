/* path.h - what a path in the mount means (doc/DESIGN.md §2).
 *
 * A mount either shows every bucket (the root lists them, "/b/x/y" is key
 * "x/y" of bucket "b") or one bucket, optionally below a prefix ("/x/y" is
 * key PREFIX "x/y"). Pure functions over caller-owned structs; no locks.
 */
#ifndef S3CFS_PATH_H
#define S3CFS_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define S3CFS_KEY_MAX    1024 /* S3's limit on a key, in bytes */
#define S3CFS_BUCKET_MAX 63
#define S3CFS_NAME_MAX   255

struct path_map {
    bool all_buckets;
    char bucket[S3CFS_BUCKET_MAX + 1];
    char prefix[S3CFS_KEY_MAX + 1]; /* "" or ending in '/' */
};

/* spec: NULL or "" for all buckets; "BUCKET", "BUCKET:/PREFIX" or
 * "BUCKET:PREFIX". Returns -EINVAL for a malformed bucket name. */
int path_map_init(struct path_map *m, const char *spec);

enum loc_kind {
    LOC_ROOT,   /* the root of an all-buckets mount */
    LOC_BUCKET, /* the top directory of a bucket (key holds the prefix) */
    LOC_OBJECT, /* a key below it */
};

struct fs_loc {
    enum loc_kind kind;
    char bucket[S3CFS_BUCKET_MAX + 1];
    char key[S3CFS_KEY_MAX + 2]; /* room for a directory marker's '/' */
};

/* Key components no directory entry can be called - the empty one
 * ("d//x"), "." and ".." - are shown under these names, so that readdir,
 * lookup, unlink, rmdir and rm -r all see (and can remove) such keys. The
 * empty component is a directory only: its path's key is the prefix of its
 * children ("d//"). A key component that is itself one of these names is
 * not reachable (it resolves to the component it stands for). */
#define PATH_ALIAS_EMPTY  ".s3cfs-empty"
#define PATH_ALIAS_DOT    ".s3cfs-dot"
#define PATH_ALIAS_DOTDOT ".s3cfs-dotdot"

/* The name shown for the key component comp[0..n): its alias, or NULL when
 * it is a name of its own. */
const char *path_alias(const char *comp, size_t n);

/* Map a FUSE path ("/...") to bucket and key (aliases resolved). -ENAMETOOLONG when a
 * component exceeds 255 bytes or the key 1024; -ENOENT for a top-level name
 * that cannot be a bucket in an all-buckets mount; -EINVAL for a path with
 * an empty, "." or ".." component or one that does not start with '/'. */
int path_resolve(const struct path_map *m, const char *path, struct fs_loc *out);

/* The key prefix under which a directory's children live: "" for the top of
 * an unprefixed bucket, else key + "/" (the key of its marker object). */
int path_dir_prefix(const struct fs_loc *l, char *out, size_t size);

/* Whether name is a valid S3 bucket name (3-63 chars, lower case, digits,
 * '.', '-'; starts and ends with a letter or digit). */
bool path_bucket_name_ok(const char *name);

/* The mount path of bucket/key (the inverse of path_resolve; a trailing
 * '/' of a directory marker is dropped, components shown as aliases). -ENOENT when the key is
 * outside the mounted prefix. */
int path_from_key(const struct path_map *m, const char *bucket, const char *key, char *out,
                  size_t size);

/* Parent directory of a path ("/a/b" -> "/a", "/a" -> "/") into out. */
void path_parent(const char *path, char *out, size_t size);

/* The last component of a path (points into path). */
const char *path_basename(const char *path);

#endif
