/* Unit tests of datacache.c: what was written is served again, for that
 * version and source only, by whole blocks, across a reopen; the bound
 * holds and evicts the least recently used; a torn, corrupt, planted,
 * linked or foreign file is never served; untrusted directories are
 * refused; many threads reading, writing and forgetting at once only ever
 * get the bytes of the version they asked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "s3cfs/datacache.h"

#define BS     4096u /* the tests' block size */
#define CHARGE 8192u /* a full 4 KiB block with its header, rounded up to 4 KiB */
#define SRC    "http://127.0.0.1:7480 bucket prefix/"
#define PLEN   1024

struct fixture {
    char root[64];   /* removed at the end */
    char cache[128]; /* root/cache: the cache directory */
};

/* a/b into out, which must hold it */
static void join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    assert_true(n > 0 && (size_t)n < cap);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/test_datacache.XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->cache, sizeof f->cache, "%s/cache", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static struct datacache *open_src(const char *dir, uint64_t max, const char *source)
{
    struct datacache *dc = NULL;
    struct datacache_config cfg = {
        .dir = dir, .source = source, .max_bytes = max, .block_size = BS};
    assert_int_equal(datacache_open(&cfg, &dc), 0);
    assert_non_null(dc);
    return dc;
}

static struct datacache *open_dc(const struct fixture *f, uint64_t max)
{
    return open_src(f->cache, max, SRC);
}

static int try_open(const char *dir, const char *source)
{
    struct datacache *dc = NULL;
    struct datacache_config cfg = {
        .dir = dir, .source = source, .max_bytes = 1 << 20, .block_size = BS};
    int rc = datacache_open(&cfg, &dc);
    assert_true(rc == 0 ? dc != NULL : dc == NULL);
    datacache_close(dc);
    return rc;
}

/* The bytes of version etag of object key at pos: any two versions differ
 * almost everywhere. */
static unsigned char pat(int key, int etag, uint64_t pos)
{
    uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull + (uint64_t)key * 1315423911u +
                 (uint64_t)etag * 2654435761u;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return (unsigned char)(x >> 32);
}

static void fill(unsigned char *buf, int key, int etag, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pat(key, etag, off + i);
}

static bool same(const unsigned char *buf, int key, int etag, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pat(key, etag, off + i))
            return false;
    return true;
}

static const char *const KEYS[] = {"a/k0", "a/k1", "b/k2", "k3", "k4", "k5", "k6", "k7"};
static const char *const ETAGS[] = {"\"e0\"", "\"e1\"", "\"e2-3\""};

static struct datacache_obj obj(int key, int etag, uint64_t size)
{
    return (struct datacache_obj){"bucket", KEYS[key], ETAGS[etag], size};
}

/* Writes [off, off + len) of version (key, etag) of an object of size bytes. */
static int put(struct datacache *dc, int key, int etag, uint64_t size, uint64_t off, size_t len)
{
    unsigned char *buf = malloc(len + 1);
    fill(buf, key, etag, off, len);
    struct datacache_obj o = obj(key, etag, size);
    int rc = datacache_write(dc, &o, off, len, buf);
    free(buf);
    return rc;
}

/* How many bytes of [off, off + len) the cache serves, each checked. */
static size_t get(struct datacache *dc, int key, int etag, uint64_t size, uint64_t off, size_t len)
{
    unsigned char *buf = malloc(len + 1);
    struct datacache_obj o = obj(key, etag, size);
    size_t n = datacache_read(dc, &o, off, len, buf);
    assert_true(n <= len);
    assert_true(same(buf, key, etag, off, n));
    free(buf);
    return n;
}

static struct datacache_stats stats(struct datacache *dc)
{
    struct datacache_stats st;
    datacache_stats(dc, &st);
    return st;
}

/* The source's subdirectory (the only one in the cache directory). */
static void subdir(const char *cache, char *out, size_t cap)
{
    DIR *d = opendir(cache);
    assert_non_null(d);
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && ++found)
            join(out, cap, cache, de->d_name);
    closedir(d);
    assert_int_equal(found, 1);
}

/* The path of the file of block idx (of the only object cached), or "". */
static void block_file(const char *cache, uint64_t idx, char *out, size_t cap)
{
    char dir[PLEN];
    subdir(cache, dir, sizeof dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    unsigned long long i;
    out[0] = '\0';
    while ((de = readdir(d)))
        if (sscanf(de->d_name, "%*16[0-9a-f]-%*16[0-9a-f]-%llu-", &i) == 1 && i == idx)
            join(out, cap, dir, de->d_name);
    closedir(d);
}

/* Block files in the subdirectory (every name but the lock's), and what
 * they are charged together (each its length rounded up to 4 KiB). */
static int files_charged(const struct fixture *f, uint64_t *charged)
{
    char dir[PLEN], path[PLEN];
    struct stat st;
    subdir(f->cache, dir, sizeof dir);
    DIR *d = opendir(dir);
    int n = 0;
    *charged = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "source") == 0)
            continue;
        join(path, sizeof path, dir, de->d_name);
        assert_int_equal(lstat(path, &st), 0);
        *charged += ((uint64_t)st.st_size + 4095) / 4096 * 4096;
        n++;
    }
    closedir(d);
    return n;
}

static int count_files(const struct fixture *f)
{
    uint64_t charged;
    return files_charged(f, &charged);
}

/* Whether block idx has a file. */
static bool has_file(const struct fixture *f, uint64_t idx)
{
    char path[PLEN];
    block_file(f->cache, idx, path, sizeof path);
    return path[0] != '\0';
}

/* Damages the file of block idx at byte at (from the end when negative):
 * flips that byte, or (cut) truncates the file there. */
static void damage(const struct fixture *f, uint64_t idx, off_t at, bool cut)
{
    char path[PLEN];
    struct stat st;
    unsigned char c;
    block_file(f->cache, idx, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    at = at < 0 ? st.st_size + at : at;
    if (cut) {
        assert_int_equal(ftruncate(fd, at), 0);
    } else {
        assert_int_equal(pread(fd, &c, 1, at), 1);
        c ^= 0x20;
        assert_int_equal(pwrite(fd, &c, 1, at), 1);
    }
    close(fd);
}

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* A cache in f holding version (0, 0) of an object of size bytes. */
static struct datacache *cached_object(const struct fixture *f, uint64_t size)
{
    struct datacache *dc = open_dc(f, 1 << 20);
    assert_int_equal(put(dc, 0, 0, size, 0, size), 0);
    return dc;
}

/* ---------- the tests ---------- */

static void test_hit_after_write(void **state)
{
    struct fixture *f = *state;
    uint64_t size = 3 * BS + 100;
    struct datacache *dc = open_dc(f, 1 << 20);
    assert_int_equal(get(dc, 0, 0, size, 0, size), 0); /* nothing yet */
    assert_int_equal(put(dc, 0, 0, size, 0, size), 0);
    assert_int_equal(get(dc, 0, 0, size, 0, size), size);
    assert_int_equal(get(dc, 0, 0, size, 10, 5), 5);         /* inside one block */
    assert_int_equal(get(dc, 0, 0, size, BS - 1, 2), 2);     /* across a boundary */
    assert_int_equal(get(dc, 0, 0, size, 3 * BS, 100), 100); /* the short last block */
    assert_int_equal(get(dc, 0, 0, size, size - 1, 50), 1);  /* clipped at the end */
    assert_int_equal(get(dc, 0, 0, size, size, 50), 0);
    struct datacache_stats st = stats(dc);
    assert_int_equal(st.blocks, 4);
    assert_int_equal(st.objects, 1);
    assert_int_equal(st.inserts, 4);
    assert_int_equal(st.bytes, 3 * CHARGE + 4096); /* the last block's file is short */
    assert_int_equal(st.hit_bytes, size + 5 + 2 + 100 + 1);
    assert_int_equal(count_files(f), 4);
    assert_int_equal(put(dc, 0, 0, size, 0, size), 0); /* again: already there */
    assert_int_equal(stats(dc).inserts, 4);
    datacache_close(dc);
}

static void test_miss_other_version_or_source(void **state)
{
    struct fixture *f = *state;
    uint64_t size = 2 * BS;
    struct datacache *dc = cached_object(f, size);
    assert_int_equal(get(dc, 0, 1, size, 0, size), 0);     /* another ETag */
    assert_int_equal(get(dc, 0, 0, size + 1, 0, size), 0); /* another size */
    assert_int_equal(get(dc, 1, 0, size, 0, size), 0);     /* another key */
    struct datacache_obj o = {"other-bucket", KEYS[0], ETAGS[0], size};
    unsigned char buf[2 * BS];
    assert_int_equal(datacache_read(dc, &o, 0, size, buf), 0); /* another bucket */
    o = (struct datacache_obj){"bucket", KEYS[0], "", size};
    assert_int_equal(datacache_read(dc, &o, 0, size, buf), 0); /* an unknown ETag */
    assert_int_equal(datacache_write(dc, &o, 0, size, buf), -EINVAL);
    o.etag = NULL;
    assert_int_equal(datacache_write(dc, &o, 0, size, buf), -EINVAL);
    assert_int_equal(get(dc, 0, 0, size, 0, size), size);
    /* a new version replaces the old one */
    assert_int_equal(put(dc, 0, 1, size, 0, size), 0);
    assert_int_equal(get(dc, 0, 0, size, 0, size), 0);
    assert_int_equal(get(dc, 0, 1, size, 0, size), size);
    assert_int_equal(stats(dc).blocks, 2);
    assert_int_equal(count_files(f), 2);
    datacache_close(dc);
    /* another source in the same directory sees nothing of it */
    struct datacache *other = open_src(f->cache, 1 << 20, "http://elsewhere bucket prefix/");
    assert_int_equal(get(other, 0, 1, size, 0, size), 0);
    assert_int_equal(put(other, 0, 1, size, 0, BS), 0);
    assert_int_equal(stats(other).blocks, 1);
    datacache_close(other);
    dc = open_dc(f, 1 << 20);
    assert_int_equal(get(dc, 0, 1, size, 0, size), size);
    assert_int_equal(stats(dc).blocks, 2);
    datacache_close(dc);
}

static void test_partial_ranges(void **state)
{
    struct fixture *f = *state;
    uint64_t size = 5 * BS + 300;
    struct datacache *dc = open_dc(f, 1 << 20);
    /* [1000, 1000 + 2 BS + 50) covers block 1 only */
    assert_int_equal(put(dc, 0, 0, size, 1000, 2 * BS + 50), 0);
    assert_int_equal(stats(dc).blocks, 1);
    assert_int_equal(get(dc, 0, 0, size, 1000, 100), 0);               /* block 0: not stored */
    assert_int_equal(get(dc, 0, 0, size, BS, BS), BS);                 /* block 1 */
    assert_int_equal(get(dc, 0, 0, size, BS + 904, 4 * BS), BS - 904); /* up to the hole */
    assert_int_equal(get(dc, 0, 0, size, 2 * BS, 10), 0);
    /* the tail, with its short last block */
    assert_int_equal(put(dc, 0, 0, size, 3 * BS, size - 3 * BS), 0);
    assert_int_equal(stats(dc).blocks, 4);
    assert_int_equal(get(dc, 0, 0, size, 3 * BS + 7, size), size - 3 * BS - 7);
    assert_int_equal(get(dc, 0, 0, size, BS, size), BS); /* block 2 still missing */
    assert_int_equal(put(dc, 0, 0, size, 2 * BS, BS), 0);
    assert_int_equal(get(dc, 0, 0, size, BS, size), size - BS);
    assert_int_equal(put(dc, 0, 0, size, 5 * BS, 299), 0);       /* short of the end: nothing */
    assert_int_equal(put(dc, 0, 0, size, 5 * BS, 301), -EINVAL); /* past the end */
    assert_int_equal(put(dc, 0, 0, size, UINT64_MAX - 10, 20), -EINVAL);
    assert_int_equal(get(dc, 0, 0, size, UINT64_MAX - 10, 20), 0);
    assert_int_equal(put(dc, 0, 0, size, 0, 0), 0);
    assert_int_equal(stats(dc).blocks, 5);
    datacache_close(dc);
}

static void test_eviction_lru(void **state)
{
    struct fixture *f = *state;
    struct datacache *dc = open_dc(f, 4 * CHARGE);
    for (int k = 0; k < 4; k++)
        assert_int_equal(put(dc, k, 0, BS, 0, BS), 0);
    assert_int_equal(stats(dc).bytes, 4 * CHARGE);
    assert_int_equal(get(dc, 0, 0, BS, 0, BS), BS); /* k0 is the most recent now */
    assert_int_equal(put(dc, 4, 0, BS, 0, BS), 0);  /* evicts k1 */
    struct datacache_stats st = stats(dc);
    assert_int_equal(st.evictions, 1);
    assert_true(st.bytes <= 4 * CHARGE);
    assert_int_equal(get(dc, 1, 0, BS, 0, BS), 0);
    assert_int_equal(get(dc, 0, 0, BS, 0, BS), BS);
    assert_int_equal(put(dc, 0, 0, BS, 0, BS), 0); /* present: only touched */
    assert_int_equal(put(dc, 5, 0, BS, 0, BS), 0); /* evicts k2 */
    assert_int_equal(get(dc, 2, 0, BS, 0, BS), 0);
    assert_int_equal(get(dc, 3, 0, BS, 0, BS), BS);
    assert_int_equal(get(dc, 4, 0, BS, 0, BS), BS);
    assert_int_equal(get(dc, 5, 0, BS, 0, BS), BS);
    assert_int_equal(get(dc, 0, 0, BS, 0, BS), BS);
    /* many more: the bound holds on the index and on the disk */
    for (int i = 0; i < 40; i++) {
        assert_int_equal(put(dc, i % 8, i % 3, 3 * BS, 0, 3 * BS), 0);
        st = stats(dc);
        assert_true(st.bytes <= 4 * CHARGE);
        assert_true(st.blocks <= 4);
        assert_true(count_files(f) <= 4);
    }
    assert_int_equal(get(dc, 7, 0, 3 * BS, 0, 3 * BS), 3 * BS); /* the last one written */
    datacache_close(dc);
    /* a bound smaller than one block stores nothing */
    dc = open_dc(f, CHARGE - 1);
    assert_int_equal(count_files(f), 0); /* and the reopen evicted down to it */
    assert_int_equal(put(dc, 0, 0, BS, 0, BS), -ENOSPC);
    assert_int_equal(put(dc, 0, 0, 100, 0, 100), 0); /* a small one fits */
    assert_int_equal(get(dc, 0, 0, 100, 0, 100), 100);
    assert_int_equal(get(dc, 0, 0, BS, 0, BS), 0);
    datacache_close(dc);
}

static void test_reopen_serves_and_keeps_lru(void **state)
{
    struct fixture *f = *state;
    uint64_t size = 2 * BS + 10;
    struct datacache *dc = open_dc(f, 1 << 20);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(put(dc, k, 0, size, 0, size), 0);
        sleep_ms(30); /* file times tick coarsely */
    }
    for (uint64_t i = 0; i < 3; i++) /* k0 is the most recent now, its blocks in order */
        assert_int_equal(get(dc, 0, 0, size, i * BS, BS), i < 2 ? BS : 10);
    struct datacache_stats before = stats(dc);
    datacache_close(dc);
    dc = open_dc(f, 1 << 20);
    struct datacache_stats st = stats(dc);
    assert_int_equal(st.blocks, before.blocks);
    assert_int_equal(st.bytes, before.bytes);
    assert_int_equal(st.objects, 4);
    for (int k = 0; k < 4; k++)
        assert_int_equal(get(dc, k, 0, size, 0, size), size);
    sleep_ms(30);
    assert_int_equal(get(dc, 0, 0, size, 0, size), size);
    datacache_close(dc);
    /* room for three of the four objects: the reopen evicts k1 (k0 was read
     * last) */
    dc = open_dc(f, 3 * (2 * CHARGE + 4096));
    st = stats(dc);
    assert_int_equal(st.blocks, 9);
    assert_int_equal(st.evictions, 3);
    assert_int_equal(get(dc, 1, 0, size, 0, size), 0);
    assert_int_equal(get(dc, 0, 0, size, 0, size), size);
    assert_int_equal(get(dc, 2, 0, size, 0, size), size);
    assert_int_equal(count_files(f), 9);
    /* new blocks get names not used before */
    assert_int_equal(put(dc, 1, 0, size, 0, size), 0);
    assert_int_equal(get(dc, 1, 0, size, 0, size), size);
    datacache_close(dc);
}

static void test_torn_block_is_a_miss(void **state)
{
    struct fixture *f = *state;
    uint64_t size = 3 * BS;
    struct datacache *dc = cached_object(f, size);
    damage(f, 1, -(off_t)BS / 2, true);                 /* torn while open */
    assert_int_equal(get(dc, 0, 0, size, 0, size), BS); /* up to the torn block */
    assert_false(has_file(f, 1));                       /* removed */
    assert_int_equal(stats(dc).dropped, 1);
    assert_int_equal(stats(dc).blocks, 2);
    assert_int_equal(get(dc, 0, 0, size, 2 * BS, BS), BS);
    datacache_close(dc);
    /* torn while closed: by a few bytes, and down to less than a header */
    damage(f, 2, -3, true);
    damage(f, 0, 10, true);
    dc = open_dc(f, 1 << 20);
    assert_false(has_file(f, 0)); /* too short for a block: removed at open */
    assert_int_equal(stats(dc).blocks, 1);
    assert_int_equal(get(dc, 0, 0, size, 2 * BS, BS), 0);
    assert_int_equal(stats(dc).blocks, 0);
    assert_int_equal(count_files(f), 0);
    assert_int_equal(put(dc, 0, 0, size, 0, size), 0); /* cached again */
    assert_int_equal(get(dc, 0, 0, size, 0, size), size);
    datacache_close(dc);
}

static void test_flipped_byte_is_a_miss(void **state)
{
    struct fixture *f = *state;
    uint64_t size = 4 * BS;
    struct datacache *dc = cached_object(f, size);
    damage(f, 0, -1000, false);                       /* in the data */
    assert_int_equal(get(dc, 0, 0, size, 10, 10), 0); /* part of a block: read aside */
    assert_false(has_file(f, 0));                     /* removed */
    damage(f, 1, -1, false);                          /* the data's last byte */
    assert_int_equal(get(dc, 0, 0, size, BS, BS), 0); /* a whole block: read in place */
    assert_int_equal(stats(dc).dropped, 2);
    damage(f, 2, DATACACHE_HEADER + 8, false); /* in the key */
    damage(f, 3, 24, false);                   /* the object's size in the header */
    datacache_close(dc);
    dc = open_dc(f, 1 << 20);
    assert_int_equal(stats(dc).blocks, 2); /* the open reads no content */
    assert_int_equal(get(dc, 0, 0, size, 2 * BS, 2 * BS), 0);
    assert_int_equal(get(dc, 0, 0, size, 3 * BS + 5, 1), 0);
    assert_int_equal(stats(dc).dropped, 2);
    assert_int_equal(stats(dc).blocks, 0);
    assert_int_equal(count_files(f), 0);
    datacache_close(dc);
}

static void plant(const char *path, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    unsigned char buf[3 * BS];
    assert_true(fd >= 0 && len <= sizeof buf);
    fill(buf, 7, 2, 0, len);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

static void test_garbage_is_never_served(void **state)
{
    struct fixture *f = *state;
    uint64_t size = 4 * BS;
    char dir[PLEN], path[PLEN], away[PLEN];
    struct datacache *dc = cached_object(f, size);
    datacache_close(dc);
    subdir(f->cache, dir, sizeof dir);
    /* block 0 overwritten with garbage of the same length */
    struct stat st;
    block_file(f->cache, 0, path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    plant(path, (size_t)st.st_size);
    /* block 1 moved away and linked back by a symlink; block 2 hard-linked */
    block_file(f->cache, 1, path, sizeof path);
    join(away, sizeof away, f->root, "away1");
    assert_int_equal(rename(path, away), 0);
    assert_int_equal(symlink(away, path), 0);
    block_file(f->cache, 2, path, sizeof path);
    join(away, sizeof away, f->root, "away2");
    assert_int_equal(link(path, away), 0);
    /* foreign names, a garbage file with a block's name, a directory */
    join(path, sizeof path, dir, "junk");
    plant(path, 100);
    join(path, sizeof path, dir, "0123456789abcdef-0123456789abcdef-0-ff");
    plant(path, 3 * BS);
    join(path, sizeof path, dir, "0123456789abcdef-0123456789abcdef-00-fe");
    plant(path, 3 * BS);
    join(path, sizeof path, dir, "0123456789abcdef-0123456789abcdef-1-fd");
    assert_int_equal(mkdir(path, 0700), 0);
    dc = open_dc(f, 1 << 20);
    assert_int_equal(stats(dc).blocks, 3); /* block 0, block 3 and the planted one */
    assert_int_equal(get(dc, 0, 0, size, 0, size), 0);
    assert_int_equal(get(dc, 0, 0, size, BS, size), 0);
    assert_int_equal(get(dc, 0, 0, size, 2 * BS, size), 0);
    assert_int_equal(get(dc, 0, 0, size, 3 * BS, BS), BS); /* the intact one */
    for (int k = 0; k < 8; k++)
        for (int e = 0; e < 3; e++)
            assert_int_equal(get(dc, k, e, 3 * BS, 0, 3 * BS), 0);
    /* writing again works beside the planted names */
    assert_int_equal(put(dc, 0, 0, size, 0, size), 0);
    assert_int_equal(get(dc, 0, 0, size, 0, size), size);
    datacache_close(dc);
}

/* Valid block files (their checksums right) in the wrong place: another
 * block's, another source's; and a block file with bytes appended. */
static void test_valid_file_elsewhere_is_a_miss(void **state)
{
    struct fixture *f = *state;
    uint64_t size = 4 * BS;
    char other[PLEN], path[PLEN], from[PLEN];
    datacache_close(cached_object(f, size));
    join(other, sizeof other, f->root, "other");
    struct datacache *dc = open_src(other, 1 << 20, "another source");
    assert_int_equal(put(dc, 0, 0, size, 0, size), 0); /* the same object, bytes and all */
    datacache_close(dc);
    block_file(f->cache, 0, path, sizeof path);
    block_file(f->cache, 1, from, sizeof from);
    assert_int_equal(rename(from, path), 0); /* block 1 under block 0's name */
    block_file(f->cache, 2, path, sizeof path);
    block_file(other, 2, from, sizeof from);
    assert_int_equal(rename(from, path), 0); /* the other source's block 2 */
    block_file(f->cache, 3, path, sizeof path);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "tail", 4), 4);
    close(fd);
    dc = open_dc(f, 1 << 20);
    assert_int_equal(stats(dc).blocks, 3);
    for (uint64_t i = 0; i < 4; i++)
        assert_int_equal(get(dc, 0, 0, size, i * BS, BS), 0);
    assert_int_equal(stats(dc).dropped, 3);
    assert_int_equal(count_files(f), 0);
    datacache_close(dc);
}

static void test_untrusted_directories_refused(void **state)
{
    struct fixture *f = *state;
    char path[PLEN], dir[PLEN], away[PLEN];
    struct stat st;
    assert_int_equal(try_open(f->cache, SRC), 0);
    assert_int_equal(stat(f->cache, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700); /* created 0700 */
    subdir(f->cache, dir, sizeof dir);
    join(path, sizeof path, dir, "source");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(chmod(f->cache, 0770), 0);
    assert_int_equal(try_open(f->cache, SRC), -EPERM); /* group-writable */
    assert_int_equal(chmod(f->cache, 0702), 0);
    assert_int_equal(try_open(f->cache, SRC), -EPERM); /* other-writable */
    assert_int_equal(chmod(f->cache, 0755), 0);
    assert_int_equal(try_open(f->cache, SRC), 0); /* readable by others is fine */
    if (geteuid() == 0) {
        assert_int_equal(chown(f->cache, 65534, 65534), 0); /* nobody */
        assert_int_equal(try_open(f->cache, SRC), -EPERM);
        assert_int_equal(chown(f->cache, 0, 0), 0);
    } else {
        assert_int_equal(try_open("/", SRC), -EPERM); /* root's */
    }
    join(path, sizeof path, f->root, "link");
    assert_int_equal(symlink(f->cache, path), 0);
    assert_int_equal(try_open(path, SRC), -EPERM); /* a symlink to a good directory */
    join(path, sizeof path, f->root, "file");
    plant(path, 10);
    assert_int_equal(try_open(path, SRC), -EPERM); /* not a directory */
    /* the source's subdirectory: group-writable, then a symlink */
    assert_int_equal(chmod(dir, 0730), 0);
    assert_int_equal(try_open(f->cache, SRC), -EPERM);
    assert_int_equal(chmod(dir, 0700), 0);
    join(path, sizeof path, f->root, "moved");
    assert_int_equal(rename(dir, path), 0);
    assert_int_equal(symlink(path, dir), 0);
    assert_int_equal(try_open(f->cache, SRC), -EPERM);
    assert_int_equal(unlink(dir), 0);
    assert_int_equal(rename(path, dir), 0);
    /* the lock file: a symlink, then group-writable */
    join(path, sizeof path, dir, "source");
    assert_int_equal(unlink(path), 0);
    join(away, sizeof away, f->root, "target");
    plant(away, 5);
    assert_int_equal(symlink(away, path), 0);
    assert_int_equal(try_open(f->cache, SRC), -EPERM);
    assert_int_equal(unlink(path), 0);
    plant(path, 0);
    assert_int_equal(chmod(path, 0620), 0);
    assert_int_equal(try_open(f->cache, SRC), -EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(try_open(f->cache, SRC), 0);
    assert_int_equal(stat(away, &st), 0);
    assert_int_equal(st.st_size, 5); /* never written through the symlink */
}

static void test_one_process_per_source(void **state)
{
    struct fixture *f = *state;
    struct datacache *dc = open_dc(f, 1 << 20);
    assert_int_equal(try_open(f->cache, SRC), -EBUSY);
    assert_int_equal(try_open(f->cache, "another source"), 0);
    datacache_close(dc);
    assert_int_equal(try_open(f->cache, SRC), 0);
}

static void test_forget(void **state)
{
    struct fixture *f = *state;
    uint64_t size = 2 * BS;
    struct datacache *dc = cached_object(f, size);
    assert_int_equal(put(dc, 1, 0, size, 0, size), 0);
    datacache_forget(dc, "bucket", KEYS[0]);
    datacache_forget(dc, "bucket", "never cached");
    datacache_forget(dc, "other-bucket", KEYS[1]);
    assert_int_equal(get(dc, 0, 0, size, 0, size), 0);
    assert_int_equal(get(dc, 1, 0, size, 0, size), size);
    struct datacache_stats st = stats(dc);
    assert_int_equal(st.blocks, 2);
    assert_int_equal(st.objects, 1);
    assert_int_equal(st.bytes, 2 * CHARGE);
    assert_int_equal(count_files(f), 2);
    datacache_close(dc);
}

static void test_off_and_invalid(void **state)
{
    struct fixture *f = *state;
    unsigned char buf[16];
    struct datacache_obj o = obj(0, 0, sizeof buf);
    struct datacache_stats st;
    assert_int_equal(datacache_read(NULL, &o, 0, sizeof buf, buf), 0);
    assert_int_equal(datacache_write(NULL, &o, 0, sizeof buf, buf), 0);
    datacache_forget(NULL, "bucket", "key");
    datacache_stats(NULL, &st);
    assert_int_equal(st.bytes + st.hits + st.max_bytes, 0);
    datacache_close(NULL);
    struct datacache *dc = (struct datacache *)1;
    struct datacache_config cfg = {.dir = f->cache, .source = SRC, .max_bytes = 0};
    assert_int_equal(datacache_open(&cfg, &dc), -EINVAL);
    assert_null(dc);
    cfg.max_bytes = 1;
    cfg.block_size = 512;
    assert_int_equal(datacache_open(&cfg, &dc), -EINVAL);
    cfg.block_size = DATACACHE_BLOCK_MAX + 1;
    assert_int_equal(datacache_open(&cfg, &dc), -EINVAL);
    cfg.block_size = 0;
    cfg.source = "";
    assert_int_equal(datacache_open(&cfg, &dc), -EINVAL);
    cfg.source = SRC;
    cfg.dir = "";
    assert_int_equal(datacache_open(&cfg, &dc), -EINVAL);
    assert_int_equal(datacache_open(NULL, &dc), -EINVAL);
    cfg.dir = f->cache;
    assert_int_equal(datacache_open(&cfg, &dc), 0); /* the default block size */
    assert_int_equal(stats(dc).max_bytes, 1);
    datacache_close(dc);
}

#define BIG (16u << 20) /* a block whose write takes a while */

struct big_write {
    struct datacache *dc;
    unsigned char *data;
    int rc;
};

static void *write_big(void *arg)
{
    struct big_write *w = arg;
    struct datacache_obj o = obj(0, 0, BIG);
    w->rc = datacache_write(w->dc, &o, 0, BIG, w->data);
    return NULL;
}

/* A forget that meets the block being written drops it when the write
 * ends (or, when the write was done first, drops it then). */
static void test_forget_while_writing(void **state)
{
    struct fixture *f = *state;
    struct datacache *dc = NULL;
    struct datacache_config cfg = {
        .dir = f->cache, .source = SRC, .max_bytes = 4 * (uint64_t)BIG, .block_size = BIG};
    assert_int_equal(datacache_open(&cfg, &dc), 0);
    struct big_write w = {dc, malloc(BIG), -1};
    memset(w.data, 'x', BIG);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_big, &w), 0);
    while (stats(dc).bytes == 0) /* reserved: being written, or written */
        sleep_ms(1);
    datacache_forget(dc, "bucket", KEYS[0]);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 0);
    struct datacache_stats st = stats(dc);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.blocks + st.objects, 0);
    assert_int_equal(datacache_read(dc, &(struct datacache_obj){"bucket", KEYS[0], ETAGS[0], BIG},
                                    0, BIG, w.data),
                     0);
    free(w.data);
    assert_int_equal(count_files(f), 0); /* its file removed */
    datacache_close(dc);
}

/* ---------- many threads ---------- */

#define THREADS 6
#define OPS     1500
#define NKEYS   6

struct worker {
    struct datacache *dc;
    unsigned seed;
    _Atomic int *bad; /* bytes served that were not the version's */
    _Atomic size_t *served;
};

static uint64_t key_size(int k)
{
    return (uint64_t)(6 + k) * BS + (uint64_t)k * 37;
}

static void one_op(struct worker *w, unsigned char *buf)
{
    int k = rand_r(&w->seed) % NKEYS, op = rand_r(&w->seed) % 20;
    int e = rand_r(&w->seed) % 8; /* mostly the current version, sometimes an old or new one */
    e = e < 6 ? 0 : e - 5;
    uint64_t size = key_size(k);
    uint64_t off = (uint64_t)rand_r(&w->seed) % size;
    size_t len = 1 + (size_t)rand_r(&w->seed) % (3 * BS);
    if (len > size - off)
        len = (size_t)(size - off);
    struct datacache_obj o = obj(k, e, size);
    if (op == 0) {
        datacache_forget(w->dc, "bucket", KEYS[k]);
    } else if (op < 10) {
        if (op < 8)
            off -= off % BS; /* mostly aligned, as a reader that wants its blocks cached */
        fill(buf, k, e, off, len);
        datacache_write(w->dc, &o, off, len, buf);
    } else {
        size_t n = datacache_read(w->dc, &o, off, len, buf);
        *w->bad += n > len || !same(buf, k, e, off, n);
        *w->served += n;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    unsigned char *buf = malloc(3 * BS);
    for (int i = 0; i < OPS; i++)
        one_op(w, buf);
    free(buf);
    return NULL;
}

static void run_workers(struct datacache *dc, _Atomic int *bad, _Atomic size_t *served)
{
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){dc, 1234u + (unsigned)i * 7919u, bad, served};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

static void test_threads(void **state)
{
    struct fixture *f = *state;
    _Atomic int bad = 0;
    _Atomic size_t served = 0;
    uint64_t max = 12 * CHARGE; /* a fraction of the 60-odd blocks of each version */
    struct datacache *dc = open_dc(f, max);
    run_workers(dc, &bad, &served);
    struct datacache_stats st = stats(dc);
    assert_int_equal(bad, 0);
    assert_true(served > 0 && st.hits > 0 && st.misses > 0);
    assert_true(st.evictions > 0);
    assert_true(st.bytes <= max);
    uint64_t charged; /* all settled: the index is what the disk holds */
    assert_int_equal(files_charged(f, &charged), st.blocks);
    assert_int_equal(charged, st.bytes);
    datacache_close(dc);
    /* what the threads left is served again after a reopen, still right */
    dc = open_dc(f, max);
    assert_int_equal(stats(dc).blocks, st.blocks);
    size_t again = 0;
    for (int v = 0; v < NKEYS * 3; v++)
        for (uint64_t off = 0; off < key_size(v / 3); off += BS)
            again += get(dc, v / 3, v % 3, key_size(v / 3), off, BS); /* checks the bytes */
    assert_true(again > 0);
    datacache_close(dc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hit_after_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_miss_other_version_or_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_lru, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_serves_and_keeps_lru, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_block_is_a_miss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_is_a_miss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_is_never_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_file_elsewhere_is_a_miss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_directories_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_process_per_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_off_and_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_while_writing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
