/* nscache.h - the namespace cache: what the filesystem last learnt about
 * paths, so that most getattr/lookup/readdir calls never reach S3.
 *
 * Three kinds of knowledge, all keyed by mount path ("/" is the root, no
 * trailing '/', at most NSCACHE_PATH_MAX - 1 bytes):
 *   - attribute entries: a path's struct stat and ETag (positive), or
 *     "known not to exist" (negative), each with an expiry;
 *   - directory listings: every child name of a directory with its stat;
 *   - pinned entries: attributes (or a tombstone) backed by local state not
 *     yet in S3 (a file being written, a queued copy, a queued delete). A
 *     pinned entry is the truth: it never expires, is never evicted, and is
 *     changed only by nscache_pin() and nscache_unpin(). Fills from S3
 *     (put, put_negative, dir_put) and invalidations leave it alone.
 *
 * Consistency between the two tables is kept here, not by callers: any
 * attribute change (put, put_negative, pin) also updates the row of that
 * name in the parent's cached listing (inserting or removing it), and a
 * listing stored by dir_put shows pinned children as pinned (tombstones
 * hidden, pending files added). A lookup that finds no attribute entry but
 * a live listing of the parent without that name answers -ENOENT (unless
 * negative_ttl is 0), so creating many files in a freshly listed (or made)
 * directory asks S3 for nothing.
 *
 * Expiry uses CLOCK_MONOTONIC. A TTL of 0 disables that kind of caching
 * (pins still work: they are state, not cache).
 *
 * Memory (x86_64 glibc): an attribute entry is one allocation of 187 bytes
 * + path + ETag + 2, plus allocator overhead (~16) and a hash bucket slot
 * (~10): about 245 + path bytes with a 34-character ETag (measured: 100k
 * entries with 26-byte paths take 27.2 MB). A listing costs ~90 + dirpath
 * bytes plus, per name, one allocation of 145 + name + 1 bytes and an
 * 8-byte slot: about 170 + name per name.
 *
 * Ownership: every function copies what it is given and keeps no pointer to
 * its arguments. Nothing returns a pointer into the cache; listings are
 * handed out through a callback that runs under the cache's lock.
 *
 * Thread-safety: all functions may be called from any thread. One mutex
 * guards everything; it is held only for table and list operations (and
 * the callbacks of dir_get/dir_fill), never across I/O.
 *
 * Failures: the cache is best-effort. When a fill cannot be stored (no
 * memory) the cache forgets the old entry rather than keep a stale one, so
 * a caller never needs to handle the error of a put; only pins, whose loss
 * would hide local state, report -ENOMEM.
 */
#ifndef S3CFS_NSCACHE_H
#define S3CFS_NSCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define NSCACHE_PATH_MAX 4096 /* including the NUL, as PATH_MAX */
#define NSCACHE_NAME_MAX 255
#define NSCACHE_ETAG_MAX 79 /* longer ETags are stored as "" (unknown) */

struct nscache;

struct nscache_config {
    unsigned attr_ttl_ms;     /* positive attribute entries; 0: not cached */
    unsigned negative_ttl_ms; /* negative entries; 0: not cached */
    unsigned dir_ttl_ms;      /* listings; 0: not cached */
    unsigned dir_attr_ttl_ms; /* positive entries of directories; 0: not cached */
    size_t max_entries;       /* unpinned attribute entries kept, least recently used go */
    size_t max_names;         /* names summed over all listings, idem */
};

/* One child of a directory, as listed in S3. */
struct nscache_dirent {
    const char *name; /* one component: no '/', not "." or "..", 1..255 bytes */
    struct stat st;   /* S_ISDIR(st.st_mode) tells a directory from a file */
    const char *etag; /* the object's ETag from the listing; NULL or "": unknown */
};

/* Called for each child, in strcmp order of name, with the cache locked:
 * it must not call into the cache or block. name and st are valid only
 * during the call. A non-zero return stops the walk and is passed on. */
typedef int (*nscache_dir_cb)(const char *name, const struct stat *st, void *arg);

struct nscache_stats {
    size_t entries;  /* attribute entries, pinned ones included */
    size_t pinned;   /* of which pinned */
    size_t negative; /* of which negative (pinned tombstones included) */
    size_t listings; /* cached listings */
    size_t names;    /* names in them */
    uint64_t hits;   /* lookups answered (0 or -ENOENT) */
    uint64_t misses; /* lookups answered -EAGAIN */
    uint64_t dir_hits, dir_misses;
    uint64_t evictions; /* entries and listings dropped for room (not expiry) */
};

/* -ENOMEM, or -EINVAL for a NULL cfg. */
int nscache_new(const struct nscache_config *cfg, struct nscache **out);
void nscache_free(struct nscache *c);

/* 0: exists, *st and etag filled ("" when unknown: not a sign that no
 * object exists); -ENOENT: known not to exist; -EAGAIN: not known, ask S3.
 * st and etag may be NULL. -EINVAL / -ENAMETOOLONG for a malformed path. */
int nscache_lookup(struct nscache *c, const char *path, struct stat *st,
                   char etag[NSCACHE_ETAG_MAX + 1]);

/* What S3 said, or what we just wrote: path exists with st and etag (NULL
 * or "": unknown). Replaces a negative entry. No effect on a pinned path. */
void nscache_put(struct nscache *c, const char *path, const struct stat *st, const char *etag);
/* path does not exist (HEAD said 404, or we deleted it). */
void nscache_put_negative(struct nscache *c, const char *path);

/* Pin path to st/etag, or to a tombstone when st is NULL (hidden from
 * lookups and listings until unpinned). Pinning again replaces the pinned
 * state (a growing file); pins do not nest. -ENOMEM leaves the path as it
 * was; -EINVAL for "/" or a malformed path. */
int nscache_pin(struct nscache *c, const char *path, const struct stat *st, const char *etag);
/* Whether path is pinned to a tombstone (a queued delete shows it gone). */
bool nscache_pinned_gone(struct nscache *c, const char *path);
/* How many children of dirpath are pinned: *live to attributes (a queued
 * copy onto them), *gone to tombstones. Either may be NULL. */
void nscache_pinned_children(struct nscache *c, const char *dirpath, size_t *live, size_t *gone);
/* The local state has landed: the entry becomes an ordinary one whose TTL
 * starts now. No effect if path is not pinned. Returns whether it was. */
bool nscache_unpin(struct nscache *c, const char *path);

/* We changed path: forget its attributes (unless pinned), its own listing
 * and its parent's listing. */
void nscache_invalidate(struct nscache *c, const char *path);
/* A directory moved or vanished: forget every unpinned attribute entry and
 * every listing at or below dirpath ("/a/b" covers "/a/b/x", not
 * "/a/bc"), and the parent's listing. One pass over the tables. */
void nscache_invalidate_tree(struct nscache *c, const char *dirpath);

/* Store the listing of dirpath: ents[0..n) as S3 returned them (any order;
 * invalid names are skipped; of a name that is both a file and a
 * directory, the file is kept, as lookup.h shows it). Each child's
 * attributes are stored too, except over a pinned entry, and an entry
 * without an ETag does not replace a live one that has one. Pinned
 * children override the listing: tombstones are removed, pending files
 * added. 0, -ENOMEM, -EINVAL / -ENAMETOOLONG for a malformed dirpath. */
int nscache_dir_put(struct nscache *c, const char *dirpath, const struct nscache_dirent *ents,
                    size_t n);
/* The same, then cb for each child of the merged listing (even when
 * listings are not cached): readdir after a fresh S3 listing in one call.
 * since is nscache_seq() taken before S3 was asked: what the cache learnt
 * of a child after that (a copy or delete that landed, an upload, a
 * lookup that found another version) is newer than the listing and wins
 * over it; when more than 4096 such changes happened meanwhile, the
 * merged listing is shown but not kept. NSCACHE_NOW: ents are current.
 * Returns cb's non-zero value if it stopped the walk. */
#define NSCACHE_NOW UINT64_MAX
int nscache_dir_fill(struct nscache *c, const char *dirpath, const struct nscache_dirent *ents,
                     size_t n, uint64_t since, nscache_dir_cb cb, void *arg);
/* A part of a directory's children in S3's key order (a directory's key
 * is its name and '/', a file's its name): the keys in (after, upto],
 * bytes compared unsigned; NULL bounds are open. */
struct nscache_keys {
    const char *after, *upto;
};
/* Whether the child name (a directory when dir) falls in r. */
bool nscache_in_keys(const struct nscache_keys *r, const char *name, bool dir);
/* One part of a listing too large to keep whole (dirstream.h): as
 * nscache_dir_fill - each child's attributes stored, cb for each child of
 * ents merged with the pinned children and the changes since `since` -
 * except that the listing is never kept (nor a cached one dropped) and
 * only children whose keys fall in r (NULL: anywhere) are added to it;
 * pinned tombstones hide the rows of ents whatever their keys. Parts that
 * together cover the key order show every pinned child once. */
int nscache_dir_page(struct nscache *c, const char *dirpath, const struct nscache_dirent *ents,
                     size_t n, uint64_t since, const struct nscache_keys *r, nscache_dir_cb cb,
                     void *arg);
/* The cache's change counter, for nscache_dir_fill's since. */
uint64_t nscache_seq(struct nscache *c);
/* cb for each child of the cached listing: 0, -EAGAIN when none is cached,
 * or cb's non-zero value. */
int nscache_dir_get(struct nscache *c, const char *dirpath, nscache_dir_cb cb, void *arg);

void nscache_stats(struct nscache *c, struct nscache_stats *out);

#endif
