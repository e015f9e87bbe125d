/* datacache.c - the on-disk cache of object data (see datacache.h for the
 * contract, doc/internals/datacache.md for the format and the reasons).
 *
 * The index holds no strings: a block file's name is made of the object's
 * hash (bucket, key), the version's hash (ETag, size), the block's index and
 * a number never used twice, and the header inside holds the strings, which
 * every read compares. A hash collision therefore costs a miss, never
 * another object's bytes, and the open rebuilds the index from names alone.
 *
 * Names are never reused, so no lock is needed around a file: a reader
 * that copied a name under the lock opens either that block's own file or
 * nothing, whatever writers and evictions do meanwhile.
 */
#include "s3cfs/datacache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "s3cfs/htab.h"
#include "s3cfs/log.h"

#define MAGIC       "s3cfsDC1" /* 8 bytes, no NUL */
#define FORMAT      1u
#define CHARGE_UNIT 4096u       /* what a file costs at least on the disk */
#define NAMES_MAX   (60u << 10) /* bucket, key and ETag together: S3's keys are 1 KiB */
#define LOCK_NAME   "source"    /* the lock file, which says which source this is */
#define NAME_LEN    80

/* The fixed part of a block file, in the host's byte order: the cache is
 * this machine's (a file of another byte order fails on format). */
struct dc_head {
    char magic[8];
    uint32_t format;
    uint32_t head_len; /* this and the names that follow it */
    uint64_t source_hash;
    uint64_t object_size;
    uint64_t block_index;
    uint32_t block_size;
    uint32_t data_len;
    uint32_t bucket_len, key_len, etag_len, zero;
    uint64_t sum; /* FNV-1a 64 of the header with sum 0, the names, the data */
};
_Static_assert(sizeof(struct dc_head) == DATACACHE_HEADER, "the header's size is in datacache.h");

enum dc_state { DC_WRITING, DC_PRESENT };

struct dc_obj;

struct dc_block {
    struct htab_node h;                   /* in blocks, by (oid, idx) */
    struct dc_block *prev, *next;         /* the LRU, least recent first (present blocks); or a
                                            list of files to remove */
    struct dc_block *sib_prev, *sib_next; /* the object's blocks */
    struct dc_obj *obj;                   /* NULL once out of the index */
    uint64_t oid, vid, idx, gen;          /* the file's name */
    uint64_t charge;
    struct timespec mtime; /* at open only: the LRU's order */
    enum dc_state state;
    bool dead; /* dropped while being written: the writer frees it */
};

struct dc_obj {
    struct htab_node h; /* in objects, by oid */
    uint64_t oid, vid;  /* vid: the one version cached */
    uint64_t max_gen;   /* at open only: the newest file of the version */
    struct dc_block *blocks;
};

struct datacache {
    int dirfd;            /* constant: the source's subdirectory */
    int lockfd;           /* constant: its lock, held until close */
    uint64_t source_hash; /* constant */
    uint32_t block_size;  /* constant */
    char *path;           /* constant: the subdirectory, for messages */
    pthread_mutex_t lock; /* guards everything below */
    struct htab blocks, objects;
    struct dc_block *lru_head, *lru_tail;
    uint64_t used;    /* charges of every block in the index and being written */
    uint64_t writing; /* of which being written */
    uint64_t present; /* blocks in the LRU */
    uint64_t max;
    uint64_t next_gen;
    struct datacache_stats st; /* the counters */
};

/* The version asked for, and its header's strings. */
struct dc_ver {
    const struct datacache_obj *o;
    uint64_t oid, vid;
    size_t blen, klen, elen;
    size_t head_len;
};

_Static_assert(offsetof(struct dc_block, h) == 0 && offsetof(struct dc_obj, h) == 0,
               "datacache_close frees the nodes");

struct bkey {
    uint64_t oid, idx;
};

/* ---------- the index (lock held) ---------- */

static struct dc_block *block_of(const struct htab_node *h)
{
    return (struct dc_block *)(void *)((char *)h - offsetof(struct dc_block, h));
}

static struct dc_obj *obj_of(const struct htab_node *h)
{
    return (struct dc_obj *)(void *)((char *)h - offsetof(struct dc_obj, h));
}

static bool block_eq(const struct htab_node *h, const void *key, size_t len)
{
    const struct bkey *k = key;
    (void)len;
    return block_of(h)->oid == k->oid && block_of(h)->idx == k->idx;
}

static bool obj_eq(const struct htab_node *h, const void *key, size_t len)
{
    (void)len;
    return obj_of(h)->oid == *(const uint64_t *)key;
}

static uint32_t block_hash(uint64_t oid, uint64_t idx)
{
    struct bkey k = {oid, idx};
    return hash_fnv1a32(&k, sizeof k);
}

static struct dc_block *find_block(struct datacache *dc, uint64_t oid, uint64_t idx)
{
    struct bkey k = {oid, idx};
    struct htab_node *h = htab_find(&dc->blocks, block_hash(oid, idx), &k, sizeof k);
    return h ? block_of(h) : NULL;
}

static struct dc_obj *find_obj(struct datacache *dc, uint64_t oid)
{
    struct htab_node *h = htab_find(&dc->objects, hash_fnv1a32(&oid, sizeof oid), &oid, 8);
    return h ? obj_of(h) : NULL;
}

static struct dc_obj *new_obj(struct datacache *dc, uint64_t oid, uint64_t vid)
{
    struct dc_obj *obj = calloc(1, sizeof *obj);
    if (!obj)
        return NULL;
    obj->oid = oid;
    obj->vid = vid;
    htab_insert(&dc->objects, &obj->h, hash_fnv1a32(&oid, sizeof oid));
    return obj;
}

/* An object without blocks leaves the index, so that objects are bounded
 * by blocks. */
static void release_obj(struct datacache *dc, struct dc_obj *obj)
{
    if (!obj || obj->blocks)
        return;
    htab_remove(&dc->objects, &obj->h);
    free(obj);
}

static void lru_unlink(struct datacache *dc, struct dc_block *b)
{
    *(b->prev ? &b->prev->next : &dc->lru_head) = b->next;
    *(b->next ? &b->next->prev : &dc->lru_tail) = b->prev;
    b->prev = b->next = NULL;
    dc->present--;
}

/* b becomes the most recently used */
static void lru_append(struct datacache *dc, struct dc_block *b)
{
    b->prev = dc->lru_tail;
    b->next = NULL;
    *(dc->lru_tail ? &dc->lru_tail->next : &dc->lru_head) = b;
    dc->lru_tail = b;
    dc->present++;
}

static void attach(struct datacache *dc, struct dc_obj *obj, struct dc_block *b)
{
    b->obj = obj;
    b->sib_prev = NULL;
    b->sib_next = obj->blocks;
    if (obj->blocks)
        obj->blocks->sib_prev = b;
    obj->blocks = b;
    htab_insert(&dc->blocks, &b->h, block_hash(b->oid, b->idx));
}

/* b leaves the index. A present block's charge goes and it joins *victims,
 * whose files are removed once the lock is released; a block being written
 * is marked dead and keeps its charge until its writer is done. */
static void detach(struct datacache *dc, struct dc_block *b, struct dc_block **victims)
{
    htab_remove(&dc->blocks, &b->h);
    *(b->sib_prev ? &b->sib_prev->sib_next : &b->obj->blocks) = b->sib_next;
    if (b->sib_next)
        b->sib_next->sib_prev = b->sib_prev;
    b->obj = NULL;
    if (b->state == DC_WRITING) {
        b->dead = true;
        return;
    }
    lru_unlink(dc, b);
    dc->used -= b->charge;
    b->next = *victims;
    *victims = b;
}

static void drop_blocks(struct datacache *dc, struct dc_obj *obj, struct dc_block **victims)
{
    while (obj->blocks)
        detach(dc, obj->blocks, victims);
}

/* Evicts the least recently used until need more bytes fit under the
 * bound: 0, or -ENOSPC when the blocks being written leave no room. */
static int make_room(struct datacache *dc, uint64_t need, struct dc_block **victims)
{
    if (need > dc->max - dc->writing)
        return -ENOSPC;
    while (dc->used + need > dc->max && dc->lru_head) {
        struct dc_block *b = dc->lru_head;
        struct dc_obj *obj = b->obj;
        detach(dc, b, victims);
        release_obj(dc, obj);
        dc->st.evictions++;
    }
    return dc->used + need <= dc->max ? 0 : -ENOSPC;
}

/* ---------- files ---------- */

static void block_name(const struct dc_block *b, char name[NAME_LEN])
{
    snprintf(name, NAME_LEN, "%016" PRIx64 "-%016" PRIx64 "-%" PRIu64 "-%" PRIx64, b->oid, b->vid,
             b->idx, b->gen);
}

/* name's four numbers (oid, vid, idx, gen) when it is exactly what
 * block_name makes of them */
static bool parse_name(const char *name, struct dc_block *b)
{
    char again[NAME_LEN];
    if (strlen(name) >= NAME_LEN ||
        sscanf(name, "%16" SCNx64 "-%16" SCNx64 "-%20" SCNu64 "-%16" SCNx64, &b->oid, &b->vid,
               &b->idx, &b->gen) != 4)
        return false;
    block_name(b, again);
    return strcmp(again, name) == 0;
}

/* Removes the files of a victims list and frees it (lock not held). */
static void remove_files(struct datacache *dc, struct dc_block *victims)
{
    char name[NAME_LEN];
    for (struct dc_block *b = victims, *next; b; b = next) {
        next = b->next;
        block_name(b, name);
        if (unlinkat(dc->dirfd, name, 0) != 0 && errno != ENOENT)
            LOGD("data cache %s/%s: unlink: %s", dc->path, name, strerror(errno));
        free(b);
    }
}

/* Why st (of a directory when dir, else of a block or lock file) is not
 * to be trusted, or NULL: only the daemon's user may have written it. */
static const char *distrust(const struct stat *st, bool dir)
{
    if ((st->st_mode & S_IFMT) != (dir ? S_IFDIR : S_IFREG))
        return dir ? "is not a directory" : "is not a regular file";
    if (st->st_uid != geteuid())
        return "is owned by another user";
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return "is writable by its group or by others";
    if (!dir && st->st_nlink != 1)
        return "has more than one link";
    return NULL;
}

static uint64_t charge_of(uint64_t file_len)
{
    return (file_len + CHARGE_UNIT - 1) / CHARGE_UNIT * CHARGE_UNIT;
}

static uint64_t block_len(const struct datacache *dc, uint64_t size, uint64_t idx)
{
    uint64_t start = idx * dc->block_size;
    return size - start < dc->block_size ? size - start : dc->block_size;
}

/* ---------- the header ---------- */

static uint64_t object_id(const char *bucket, size_t blen, const char *key, size_t klen)
{
    return hash_fnv1a64_more(hash_fnv1a64(bucket, blen + 1), key, klen);
}

/* 0 with v filled, or -EINVAL for a version that is never cached */
static int version_of(const struct datacache_obj *o, struct dc_ver *v)
{
    if (!o || !o->bucket || !o->key || !o->etag || !o->etag[0])
        return -EINVAL;
    *v = (struct dc_ver){.o = o, .blen = strlen(o->bucket), .klen = strlen(o->key)};
    v->elen = strlen(o->etag);
    if (v->blen + v->klen + v->elen > NAMES_MAX)
        return -EINVAL;
    v->head_len = sizeof(struct dc_head) + v->blen + v->klen + v->elen;
    v->oid = object_id(o->bucket, v->blen, o->key, v->klen);
    v->vid = hash_fnv1a64_more(hash_fnv1a64(o->etag, v->elen + 1), &o->size, sizeof o->size);
    return 0;
}

/* The header of block idx of v, sum 0, into out (v->head_len bytes). */
static void make_head(const struct datacache *dc, const struct dc_ver *v, uint64_t idx, char *out)
{
    struct dc_head h = {
        .format = FORMAT,
        .head_len = (uint32_t)v->head_len,
        .source_hash = dc->source_hash,
        .object_size = v->o->size,
        .block_index = idx,
        .block_size = dc->block_size,
        .data_len = (uint32_t)block_len(dc, v->o->size, idx),
        .bucket_len = (uint32_t)v->blen,
        .key_len = (uint32_t)v->klen,
        .etag_len = (uint32_t)v->elen,
    };
    memcpy(h.magic, MAGIC, sizeof h.magic);
    memcpy(out, &h, sizeof h);
    out += sizeof h;
    memcpy(out, v->o->bucket, v->blen);
    memcpy(out + v->blen, v->o->key, v->klen);
    memcpy(out + v->blen + v->klen, v->o->etag, v->elen);
}

static uint64_t block_sum(const char *head, size_t head_len, const void *data, size_t len)
{
    return hash_fnv1a64_more(hash_fnv1a64(head, head_len), data, len);
}

/* ---------- reading a block ---------- */

/* The file's descriptor when it is trusted and exactly len bytes long;
 * -EBADMSG when it is not. */
static int open_block(const struct datacache *dc, const char *name, uint64_t len)
{
    struct stat st;
    int fd = openat(dc->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || distrust(&st, false) || (uint64_t)st.st_size != len) {
        close(fd);
        return -EBADMSG;
    }
    return fd;
}

/* Reads block idx of v from its file into data: 0, or -EBADMSG when the
 * file is not that block (torn, corrupt, foreign), or another error. head
 * has room for two headers. A block served becomes the most recent on the
 * disk too (its mtime), for the LRU order of the next open. */
static int load_block(const struct datacache *dc, const struct dc_ver *v, const char *name,
                      uint64_t idx, char *head, char *data)
{
    size_t hl = v->head_len, dl = (size_t)block_len(dc, v->o->size, idx);
    int fd = open_block(dc, name, hl + dl);
    if (fd < 0)
        return fd;
    char *want = head, *got = head + hl;
    struct iovec iov[2] = {{got, hl}, {data, dl}};
    int rc = preadv(fd, iov, 2, 0) == (ssize_t)(hl + dl) ? 0 : -EBADMSG;
    if (rc == 0) {
        uint64_t sum; /* got is not aligned: after the expected header */
        memcpy(&sum, got + offsetof(struct dc_head, sum), sizeof sum);
        memset(got + offsetof(struct dc_head, sum), 0, sizeof sum);
        make_head(dc, v, idx, want);
        if (memcmp(want, got, hl) != 0 || block_sum(got, hl, data, dl) != sum)
            rc = -EBADMSG;
    }
    if (rc == 0)
        futimens(fd, (struct timespec[2]){{0, UTIME_OMIT}, {0, UTIME_NOW}});
    close(fd);
    return rc;
}

/* Under the lock: block idx of v when present, as the name of its file,
 * now the most recently used; false on a miss. */
static bool lookup(struct datacache *dc, const struct dc_ver *v, uint64_t idx, char name[NAME_LEN])
{
    pthread_mutex_lock(&dc->lock);
    struct dc_block *b = find_block(dc, v->oid, idx);
    bool hit = b && b->state == DC_PRESENT && b->vid == v->vid;
    if (hit) {
        lru_unlink(dc, b);
        lru_append(dc, b);
        block_name(b, name);
    } else {
        dc->st.misses++;
    }
    pthread_mutex_unlock(&dc->lock);
    return hit;
}

/* Counts a block served, or drops a block whose file failed (unless the
 * failure was this process's: no memory, no descriptor). */
static void settle(struct datacache *dc, const struct dc_ver *v, uint64_t idx, const char *name,
                   int rc, size_t n)
{
    bool ours = rc == -ENOMEM || rc == -EMFILE || rc == -ENFILE;
    struct dc_block *victims = NULL;
    pthread_mutex_lock(&dc->lock);
    struct dc_block *b = find_block(dc, v->oid, idx);
    char now[NAME_LEN] = "";
    if (b && b->state == DC_PRESENT)
        block_name(b, now);
    if (rc == 0) {
        dc->st.hits++;
        dc->st.hit_bytes += n;
    } else {
        dc->st.misses++;
    }
    if (rc != 0 && !ours && strcmp(now, name) == 0) {
        struct dc_obj *obj = b->obj;
        detach(dc, b, &victims);
        release_obj(dc, obj);
        dc->st.dropped++;
    }
    pthread_mutex_unlock(&dc->lock);
    if (rc != 0 && !ours)
        LOGD("data cache %s/%s: refused (%s), removed", dc->path, name, strerror(-rc));
    remove_files(dc, victims);
}

/* Serves what the cache holds of block (pos / block size) from pos on, at
 * most want bytes, into dst: the count, 0 on a miss. */
static size_t read_block(struct datacache *dc, const struct dc_ver *v, uint64_t pos, size_t want,
                         char *dst, char *head, char **scratch)
{
    uint64_t idx = pos / dc->block_size;
    size_t skip = (size_t)(pos - idx * dc->block_size);
    size_t dl = (size_t)block_len(dc, v->o->size, idx);
    size_t n = dl - skip < want ? dl - skip : want;
    char name[NAME_LEN];
    if (!lookup(dc, v, idx, name))
        return 0;
    bool whole = skip == 0 && n == dl;
    if (!whole && !*scratch)
        *scratch = malloc(dc->block_size);
    int rc =
        whole || *scratch ? load_block(dc, v, name, idx, head, whole ? dst : *scratch) : -ENOMEM;
    if (rc == 0 && !whole)
        memcpy(dst, *scratch + skip, n);
    settle(dc, v, idx, name, rc, n);
    return rc == 0 ? n : 0;
}

size_t datacache_read(struct datacache *dc, const struct datacache_obj *o, uint64_t off, size_t len,
                      void *buf)
{
    struct dc_ver v;
    if (!dc || version_of(o, &v) != 0 || off >= o->size)
        return 0;
    if (len > o->size - off)
        len = (size_t)(o->size - off);
    char *head = malloc(2 * v.head_len), *scratch = NULL;
    size_t done = 0, n = 1;
    while (head && done < len && n > 0) {
        n = read_block(dc, &v, off + done, len - done, (char *)buf + done, head, &scratch);
        done += n;
    }
    free(scratch);
    free(head);
    return done;
}

/* ---------- writing a block ---------- */

/* Under the lock: a block being written for block idx of v, made room
 * for: 0 with *out; 1 when the block is present (now the most recent) or
 * being written already; -ENOSPC, -ENOMEM. Another version of the object
 * is dropped first. */
static int reserve(struct datacache *dc, const struct dc_ver *v, uint64_t idx, uint64_t charge,
                   struct dc_block **out, struct dc_block **victims)
{
    struct dc_obj *obj = find_obj(dc, v->oid);
    if (obj && obj->vid != v->vid) {
        drop_blocks(dc, obj, victims);
        release_obj(dc, obj);
    }
    struct dc_block *b = find_block(dc, v->oid, idx);
    if (b && b->state == DC_PRESENT) {
        lru_unlink(dc, b);
        lru_append(dc, b);
    }
    if (b)
        return 1;
    int rc = make_room(dc, charge, victims);
    if (rc)
        return rc;
    obj = find_obj(dc, v->oid);
    if (!obj && !(obj = new_obj(dc, v->oid, v->vid)))
        return -ENOMEM;
    b = calloc(1, sizeof *b);
    if (!b) {
        release_obj(dc, obj);
        return -ENOMEM;
    }
    *b = (struct dc_block){.oid = v->oid, .vid = v->vid, .idx = idx, .charge = charge};
    b->gen = dc->next_gen++;
    attach(dc, obj, b);
    dc->used += charge;
    dc->writing += charge;
    *out = b;
    return 0;
}

/* Writes b's file (header, data) under its new name: 0 or -errno; a file
 * that could not be written whole is removed. A short write is taken for
 * a full disk: a cache need not insist. */
static int write_file(const struct datacache *dc, const struct dc_ver *v, struct dc_block *b,
                      const void *data)
{
    char name[NAME_LEN];
    size_t hl = v->head_len, dl = (size_t)block_len(dc, v->o->size, b->idx);
    char *head = malloc(hl);
    if (!head)
        return -ENOMEM;
    make_head(dc, v, b->idx, head);
    uint64_t sum = block_sum(head, hl, data, dl);
    memcpy(head + offsetof(struct dc_head, sum), &sum, sizeof sum);
    block_name(b, name);
    int rc = 0,
        fd = openat(dc->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        rc = -errno;
    struct iovec iov[2] = {{head, hl}, {(void *)data, dl}};
    ssize_t w = fd < 0 ? 0 : pwritev(fd, iov, 2, 0);
    if (rc == 0 && w != (ssize_t)(hl + dl))
        rc = w < 0 ? -errno : -ENOSPC;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc && fd >= 0)
        unlinkat(dc->dirfd, name, 0);
    free(head);
    return rc;
}

/* Under the lock: b written (rc 0) becomes present, unless it was dropped
 * meanwhile; else it goes. */
static void publish(struct datacache *dc, struct dc_block *b, int rc)
{
    pthread_mutex_lock(&dc->lock);
    dc->writing -= b->charge;
    bool keep = rc == 0 && !b->dead;
    if (keep) {
        b->state = DC_PRESENT;
        lru_append(dc, b);
        dc->st.inserts++;
    } else {
        struct dc_obj *obj = b->obj;
        if (obj)
            detach(dc, b, NULL);
        release_obj(dc, obj);
        dc->used -= b->charge;
        dc->st.write_errors += rc != 0;
    }
    pthread_mutex_unlock(&dc->lock);
    if (keep)
        return;
    b->next = NULL;
    if (rc == 0)
        remove_files(dc, b); /* written, but forgotten meanwhile */
    else
        free(b);
}

static int write_block(struct datacache *dc, const struct dc_ver *v, uint64_t idx, const void *data)
{
    uint64_t len = v->head_len + block_len(dc, v->o->size, idx);
    struct dc_block *b = NULL, *victims = NULL;
    pthread_mutex_lock(&dc->lock);
    int rc = reserve(dc, v, idx, charge_of(len), &b, &victims);
    pthread_mutex_unlock(&dc->lock);
    remove_files(dc, victims); /* before writing: the disk stays under the bound */
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    rc = write_file(dc, v, b, data);
    if (rc)
        LOGD("data cache %s: %s/%s block %" PRIu64 ": %s", dc->path, v->o->bucket, v->o->key, idx,
             strerror(-rc));
    publish(dc, b, rc);
    return rc;
}

int datacache_write(struct datacache *dc, const struct datacache_obj *o, uint64_t off, size_t len,
                    const void *data)
{
    struct dc_ver v;
    if (!dc)
        return 0;
    int rc = version_of(o, &v);
    if (rc == 0 && (len > o->size || off > o->size - len))
        rc = -EINVAL;
    uint64_t bs = dc->block_size, end = off + len;
    for (uint64_t idx = (off + bs - 1) / bs; rc == 0 && idx * bs < o->size; idx++) {
        uint64_t start = idx * bs;
        if (start + block_len(dc, o->size, idx) > end)
            break;
        rc = write_block(dc, &v, idx, (const char *)data + (start - off));
    }
    return rc;
}

void datacache_forget(struct datacache *dc, const char *bucket, const char *key)
{
    if (!dc || !bucket || !key)
        return;
    uint64_t oid = object_id(bucket, strlen(bucket), key, strlen(key));
    struct dc_block *victims = NULL;
    pthread_mutex_lock(&dc->lock);
    struct dc_obj *obj = find_obj(dc, oid);
    if (obj) {
        drop_blocks(dc, obj, &victims);
        release_obj(dc, obj);
    }
    pthread_mutex_unlock(&dc->lock);
    remove_files(dc, victims);
}

void datacache_stats(struct datacache *dc, struct datacache_stats *out)
{
    *out = (struct datacache_stats){0};
    if (!dc)
        return;
    pthread_mutex_lock(&dc->lock);
    *out = dc->st;
    out->bytes = dc->used;
    out->max_bytes = dc->max;
    out->blocks = dc->present;
    out->objects = dc->objects.n;
    pthread_mutex_unlock(&dc->lock);
}

/* ---------- open: the directories ---------- */

/* Creates (0700) and opens the directory path under at without following
 * a symlink, and checks who may write it: the descriptor, or -EPERM
 * (logged) or -errno. */
static int open_dir(int at, const char *path, const char *shown)
{
    if (mkdirat(at, path, 0700) != 0 && errno != EEXIST)
        return -errno;
    int fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
        LOGE("data cache directory %s is a symbolic link or not a directory: refusing it", shown);
        return -EPERM;
    }
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    const char *why = distrust(&st, true);
    if (!why)
        return fd;
    LOGE("data cache directory %s %s (uid %u, mode %03o; this daemon's uid is %u): refusing it "
         "(choose another cache_dir)",
         shown, why, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777), (unsigned)geteuid());
    close(fd);
    return -EPERM;
}

/* One process per subdirectory: two would each charge the bound and remove
 * each other's files. The lock file also says, for a person looking at the
 * directory, which source the subdirectory is. */
static int take_lock(struct datacache *dc, const char *source)
{
    struct stat st;
    dc->lockfd = openat(dc->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (dc->lockfd < 0 && errno != ELOOP)
        return -errno;
    if (dc->lockfd < 0 || fstat(dc->lockfd, &st) != 0 || distrust(&st, false)) {
        LOGE("data cache %s/%s is not a regular file of this daemon's user with one link: "
             "refusing it (remove it if it is not yours)",
             dc->path, LOCK_NAME);
        return -EPERM;
    }
    if (flock(dc->lockfd, LOCK_EX | LOCK_NB) != 0) {
        int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        LOGE("data cache %s is in use by another s3cfs: not using it", dc->path);
        return rc;
    }
    /* for a person only: a failure costs nothing */
    if (ftruncate(dc->lockfd, 0) == 0 && write(dc->lockfd, source, strlen(source)) > 0)
        (void)!write(dc->lockfd, "\n", 1);
    return 0;
}

static int open_dirs(struct datacache *dc, const struct datacache_config *cfg)
{
    char sub[48];
    snprintf(sub, sizeof sub, "%016" PRIx64 "-%" PRIu32, dc->source_hash, dc->block_size);
    size_t n = strlen(cfg->dir) + 1 + strlen(sub) + 1;
    dc->path = malloc(n);
    if (!dc->path)
        return -ENOMEM;
    snprintf(dc->path, n, "%s/%s", cfg->dir, sub);
    int top = open_dir(AT_FDCWD, cfg->dir, cfg->dir);
    if (top < 0)
        return top;
    dc->dirfd = open_dir(top, sub, dc->path);
    close(top);
    return dc->dirfd < 0 ? dc->dirfd : take_lock(dc, cfg->source);
}

/* ---------- open: the index from the names ---------- */

struct scan {
    struct dc_block **v;
    size_t n, cap;
    size_t foreign; /* files that are not the cache's, left alone */
};

/* One directory entry: a block file becomes a (detached) block of v. */
static int scan_one(struct datacache *dc, const char *name, struct scan *s)
{
    struct dc_block b = {0};
    struct stat st;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, LOCK_NAME) == 0)
        return 0;
    bool ours = parse_name(name, &b);
    if (ours && b.gen >= dc->next_gen)
        dc->next_gen = b.gen + 1; /* even an untrusted file's name is never made again */
    if (!ours || fstatat(dc->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || distrust(&st, false)) {
        s->foreign++;
        return 0;
    }
    if ((uint64_t)st.st_size <= DATACACHE_HEADER ||
        (uint64_t)st.st_size > DATACACHE_HEADER + NAMES_MAX + dc->block_size) {
        unlinkat(dc->dirfd, name, 0); /* no block file is that long, or that short */
        return 0;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        struct dc_block **v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = malloc(sizeof b)))
        return -ENOMEM;
    b.charge = charge_of((uint64_t)st.st_size);
    b.mtime = st.st_mtim;
    b.state = DC_PRESENT;
    *s->v[s->n++] = b;
    return 0;
}

static int list_files(struct datacache *dc, struct scan *s)
{
    int fd = openat(dc->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int rc = 0;
    for (struct dirent *de; rc == 0 && (errno = 0, de = readdir(d));)
        rc = scan_one(dc, de->d_name, s);
    if (rc == 0 && errno)
        rc = -errno;
    closedir(d);
    if (s->foreign)
        LOGW("data cache %s: %zu files are not blocks of this cache: ignored", dc->path,
             s->foreign);
    return rc;
}

static int by_age(const void *a, const void *b)
{
    const struct dc_block *x = *(const struct dc_block *const *)a;
    const struct dc_block *y = *(const struct dc_block *const *)b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return x->gen < y->gen ? -1 : x->gen > y->gen;
}

/* Takes b into the index, oldest first; of two versions of an object (a
 * crash while a new one replaced the old) or two files of one block, the
 * newer file wins and the other joins *victims. */
static int adopt(struct datacache *dc, struct dc_block *b, struct dc_block **victims)
{
    struct dc_obj *obj = find_obj(dc, b->oid);
    struct dc_block *old = find_block(dc, b->oid, b->idx);
    bool newer = obj && b->gen > obj->max_gen;
    if (obj && (obj->vid != b->vid ? !newer : old && old->gen > b->gen)) {
        b->next = *victims;
        *victims = b;
        return 0;
    }
    if (obj && obj->vid != b->vid)
        drop_blocks(dc, obj, victims);
    else if (old)
        detach(dc, old, victims);
    if (!obj && !(obj = new_obj(dc, b->oid, b->vid))) {
        free(b);
        return -ENOMEM;
    }
    obj->vid = b->vid;
    obj->max_gen = newer || !obj->max_gen ? b->gen : obj->max_gen;
    attach(dc, obj, b);
    lru_append(dc, b);
    dc->used += b->charge;
    return 0;
}

/* Rebuilds the index from the files' names and sizes, in the order they
 * were last used, then evicts down to the bound. No other thread knows dc
 * yet, but the lock is taken for the functions that expect it. */
static int scan(struct datacache *dc)
{
    struct scan s = {0};
    struct dc_block *victims = NULL;
    int rc = list_files(dc, &s);
    if (s.n)
        qsort(s.v, s.n, sizeof *s.v, by_age);
    pthread_mutex_lock(&dc->lock);
    size_t i = 0;
    for (; rc == 0 && i < s.n; i++)
        rc = adopt(dc, s.v[i], &victims);
    for (; i < s.n; i++)
        free(s.v[i]);
    if (rc == 0)
        rc = make_room(dc, 0, &victims);
    pthread_mutex_unlock(&dc->lock);
    remove_files(dc, victims);
    free(s.v);
    return rc;
}

/* ---------- open and close ---------- */

static int check_config(const struct datacache_config *cfg)
{
    if (!cfg || !cfg->dir || !cfg->dir[0] || !cfg->source || !cfg->source[0] ||
        strlen(cfg->source) > DATACACHE_SOURCE_MAX || cfg->max_bytes == 0)
        return -EINVAL;
    uint32_t bs = cfg->block_size ? cfg->block_size : DATACACHE_BLOCK_DEFAULT;
    return bs < DATACACHE_BLOCK_MIN || bs > DATACACHE_BLOCK_MAX ? -EINVAL : 0;
}

static int dc_alloc(const struct datacache_config *cfg, struct datacache **out)
{
    struct datacache *dc = calloc(1, sizeof *dc);
    if (!dc)
        return -ENOMEM;
    dc->dirfd = dc->lockfd = -1;
    pthread_mutex_init(&dc->lock, NULL);
    *out = dc;
    if (htab_init(&dc->blocks, 256, block_eq) || htab_init(&dc->objects, 64, obj_eq))
        return -ENOMEM;
    dc->source_hash = hash_fnv1a64(cfg->source, strlen(cfg->source));
    dc->block_size = cfg->block_size ? cfg->block_size : DATACACHE_BLOCK_DEFAULT;
    dc->max = cfg->max_bytes;
    dc->next_gen = 1;
    return 0;
}

int datacache_open(const struct datacache_config *cfg, struct datacache **out)
{
    struct datacache *dc = NULL;
    *out = NULL;
    int rc = check_config(cfg);
    if (rc == 0)
        rc = dc_alloc(cfg, &dc);
    if (rc == 0)
        rc = open_dirs(dc, cfg);
    if (rc == 0)
        rc = scan(dc);
    if (rc) {
        datacache_close(dc);
        return rc;
    }
    LOGI("data cache %s: %" PRIu64 " blocks, %" PRIu64 " of %" PRIu64 " bytes", dc->path,
         dc->present, dc->used, dc->max);
    *out = dc;
    return 0;
}

/* Blocks and objects both begin with their node. */
static bool free_node(struct htab_node *h, void *arg)
{
    (void)arg;
    free(h);
    return true;
}

void datacache_close(struct datacache *dc)
{
    if (!dc)
        return;
    if (dc->blocks.b)
        htab_filter(&dc->blocks, free_node, NULL);
    if (dc->objects.b)
        htab_filter(&dc->objects, free_node, NULL);
    htab_free(&dc->blocks);
    htab_free(&dc->objects);
    if (dc->lockfd >= 0)
        close(dc->lockfd); /* releases the flock */
    if (dc->dirfd >= 0)
        close(dc->dirfd);
    pthread_mutex_destroy(&dc->lock);
    free(dc->path);
    free(dc);
}
