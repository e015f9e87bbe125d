/* Unit tests for the namespace cache: hits, TTLs, pins, listings and their
 * consistency with attribute entries, invalidation, LRU limits, threads. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "s3cfs/nscache.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static struct nscache *make(unsigned attr_ttl, unsigned neg_ttl, unsigned dir_ttl,
                            size_t max_entries, size_t max_names)
{
    struct nscache_config cfg = {.attr_ttl_ms = attr_ttl,
                                 .negative_ttl_ms = neg_ttl,
                                 .dir_ttl_ms = dir_ttl,
                                 .dir_attr_ttl_ms = attr_ttl,
                                 .max_entries = max_entries,
                                 .max_names = max_names};
    struct nscache *c;
    assert_int_equal(nscache_new(&cfg, &c), 0);
    return c;
}

static struct nscache *make_default(void)
{
    return make(60000, 60000, 60000, 1000, 1000);
}

static struct stat file_st(off_t size)
{
    struct stat st = {0};
    st.st_mode = S_IFREG | 0644;
    st.st_size = size;
    st.st_nlink = 1;
    return st;
}

static struct stat dir_st(void)
{
    struct stat st = {0};
    st.st_mode = S_IFDIR | 0755;
    st.st_nlink = 2;
    return st;
}

/* Size of path's entry, -ENOENT / -EAGAIN as lookup says. */
static long long size_of(struct nscache *c, const char *path)
{
    struct stat st;
    int rc = nscache_lookup(c, path, &st, NULL);
    return rc ? rc : (long long)st.st_size;
}

/* A listing walked into "name:size,name:size," form. */
struct walk {
    char out[4096];
    int stop_after; /* 0: never */
    int seen;
};

static int collect(const char *name, const struct stat *st, void *arg)
{
    struct walk *w = arg;
    size_t len = strlen(w->out);
    snprintf(w->out + len, sizeof w->out - len, "%s%s:%lld,", name, S_ISDIR(st->st_mode) ? "/" : "",
             (long long)st->st_size);
    return ++w->seen == w->stop_after ? 42 : 0;
}

static const char *listing(struct nscache *c, const char *dir, struct walk *w)
{
    memset(w, 0, sizeof *w);
    int rc = nscache_dir_get(c, dir, collect, w);
    if (rc)
        snprintf(w->out, sizeof w->out, "rc=%d", rc);
    return w->out;
}

static void test_hit_miss_negative(void **state)
{
    (void)state;
    struct nscache *c = make_default();
    struct stat st = file_st(10), got;
    char etag[NSCACHE_ETAG_MAX + 1];

    assert_int_equal(nscache_lookup(c, "/b/x", &got, etag), -EAGAIN);
    nscache_put(c, "/b/x", &st, "\"abc\"");
    assert_int_equal(nscache_lookup(c, "/b/x", &got, etag), 0);
    assert_int_equal(got.st_size, 10);
    assert_string_equal(etag, "\"abc\"");
    assert_int_equal(nscache_lookup(c, "/b/x", NULL, NULL), 0);

    nscache_put_negative(c, "/b/y");
    assert_int_equal(nscache_lookup(c, "/b/y", &got, etag), -ENOENT);
    /* put over a negative */
    st.st_size = 7;
    nscache_put(c, "/b/y", &st, NULL);
    assert_int_equal(nscache_lookup(c, "/b/y", &got, etag), 0);
    assert_int_equal(got.st_size, 7);
    assert_string_equal(etag, "");
    /* and a negative over a positive */
    nscache_put_negative(c, "/b/x");
    assert_int_equal(size_of(c, "/b/x"), -ENOENT);

    /* an over-long ETag is unknown rather than truncated */
    char big[200];
    memset(big, 'e', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    nscache_put(c, "/b/z", &st, big);
    assert_int_equal(nscache_lookup(c, "/b/z", &got, etag), 0);
    assert_string_equal(etag, "");

    assert_int_equal(nscache_lookup(c, "b/x", NULL, NULL), -EINVAL);
    assert_int_equal(nscache_lookup(c, "/b/", NULL, NULL), -EINVAL);

    struct nscache_stats s;
    nscache_stats(c, &s);
    assert_int_equal(s.entries, 3);
    assert_int_equal(s.negative, 1);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.hits, 6);
    nscache_free(c);
}

static void test_ttl_expiry(void **state)
{
    (void)state;
    struct nscache *c = make(250, 80, 250, 100, 100);
    struct stat st = file_st(1);
    nscache_put(c, "/a", &st, "e");
    nscache_put_negative(c, "/n");
    struct nscache_dirent ents[] = {{.name = "f", .st = st}};
    assert_int_equal(nscache_dir_put(c, "/d", ents, 1), 0);
    assert_int_equal(size_of(c, "/a"), 1);
    assert_int_equal(size_of(c, "/n"), -ENOENT);
    sleep_ms(120); /* past the negative TTL only */
    assert_int_equal(size_of(c, "/a"), 1);
    assert_int_equal(size_of(c, "/n"), -EAGAIN);
    sleep_ms(150);
    assert_int_equal(size_of(c, "/a"), -EAGAIN);
    struct walk w;
    assert_string_equal(listing(c, "/d", &w), "rc=-11");
    nscache_free(c);

    /* a TTL of 0 caches nothing of that kind */
    c = make(0, 0, 0, 100, 100);
    nscache_put(c, "/a", &st, "e");
    nscache_put_negative(c, "/n");
    assert_int_equal(nscache_dir_put(c, "/d", ents, 1), 0);
    assert_int_equal(size_of(c, "/a"), -EAGAIN);
    assert_int_equal(size_of(c, "/n"), -EAGAIN);
    assert_string_equal(listing(c, "/d", &w), "rc=-11");
    nscache_free(c);
}

static void test_pin(void **state)
{
    (void)state;
    struct nscache *c = make(100, 100, 100, 2, 100);
    struct stat st = file_st(5000);
    assert_int_equal(nscache_pin(c, "/d/dst", &st, NULL), 0);
    assert_int_equal(nscache_pin(c, "/", &st, NULL), -EINVAL);
    struct stat other = file_st(1);
    /* fills and invalidations leave a pinned entry alone */
    nscache_put(c, "/d/dst", &other, "x");
    nscache_put_negative(c, "/d/dst");
    nscache_invalidate(c, "/d/dst");
    nscache_invalidate_tree(c, "/d");
    /* neither eviction ... */
    for (int i = 0; i < 10; i++) {
        char p[32];
        snprintf(p, sizeof p, "/d/f%d", i);
        nscache_put(c, p, &other, NULL);
    }
    /* ... nor expiry */
    sleep_ms(120);
    assert_int_equal(size_of(c, "/d/dst"), 5000);
    struct nscache_stats s;
    nscache_stats(c, &s);
    assert_int_equal(s.pinned, 1);
    assert_true(s.entries <= 3);
    assert_true(s.evictions >= 8);

    /* pinning again replaces the pinned state */
    st.st_size = 6000;
    assert_int_equal(nscache_pin(c, "/d/dst", &st, "\"final\""), 0);
    assert_int_equal(size_of(c, "/d/dst"), 6000);

    /* unpin: an ordinary entry whose TTL starts now */
    nscache_unpin(c, "/d/dst");
    nscache_stats(c, &s);
    assert_int_equal(s.pinned, 0);
    assert_int_equal(size_of(c, "/d/dst"), 6000);
    sleep_ms(120);
    assert_int_equal(size_of(c, "/d/dst"), -EAGAIN);

    /* a pinned tombstone hides the path until unpinned */
    nscache_put(c, "/d/gone", &other, NULL);
    assert_int_equal(nscache_pin(c, "/d/gone", NULL, NULL), 0);
    nscache_put(c, "/d/gone", &other, NULL);
    assert_int_equal(size_of(c, "/d/gone"), -ENOENT);
    nscache_unpin(c, "/d/gone");
    assert_int_equal(size_of(c, "/d/gone"), -ENOENT);
    nscache_put(c, "/d/gone", &other, NULL);
    assert_int_equal(size_of(c, "/d/gone"), 1);
    nscache_free(c);
}

static void test_dir_put_get(void **state)
{
    (void)state;
    struct nscache *c = make_default();
    struct nscache_dirent ents[] = {
        {.name = "zeta", .st = file_st(3), .etag = "\"z\""},
        {.name = "sub", .st = dir_st()},
        {.name = "alpha", .st = file_st(1), .etag = "\"a\""},
        {.name = "both", .st = dir_st()},
        {.name = "both", .st = file_st(9)}, /* a file "both" and a prefix "both/" */
        {.name = "bad/name", .st = file_st(1)},
        {.name = "..", .st = dir_st()},
        {.name = "", .st = file_st(1)},
    };
    assert_int_equal(nscache_dir_put(c, "/bkt/d", ents, sizeof ents / sizeof *ents), 0);
    struct walk w;
    assert_string_equal(listing(c, "/bkt/d", &w), "alpha:1,both:9,sub/:0,zeta:3,");

    /* the children's attributes came with the listing */
    struct stat st;
    char etag[NSCACHE_ETAG_MAX + 1];
    assert_int_equal(nscache_lookup(c, "/bkt/d/zeta", &st, etag), 0);
    assert_int_equal(st.st_size, 3);
    assert_string_equal(etag, "\"z\"");
    assert_int_equal(nscache_lookup(c, "/bkt/d/sub", &st, etag), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* a name the listing lacks is known not to exist */
    assert_int_equal(size_of(c, "/bkt/d/nothere"), -ENOENT);
    assert_int_equal(size_of(c, "/bkt/d/sub/deeper"), -EAGAIN);

    /* the callback's non-zero return stops the walk and comes back */
    memset(&w, 0, sizeof w);
    w.stop_after = 2;
    assert_int_equal(nscache_dir_get(c, "/bkt/d", collect, &w), 42);
    assert_int_equal(w.seen, 2);

    /* an ETag-less listing does not erase a known ETag */
    struct nscache_dirent again[] = {{.name = "zeta", .st = file_st(3)}};
    assert_int_equal(nscache_dir_put(c, "/bkt/d", again, 1), 0);
    assert_int_equal(nscache_lookup(c, "/bkt/d/zeta", &st, etag), 0);
    assert_string_equal(etag, "\"z\"");

    /* the root's children */
    struct nscache_dirent buckets[] = {{.name = "b1", .st = dir_st()}};
    assert_int_equal(nscache_dir_put(c, "/", buckets, 1), 0);
    assert_string_equal(listing(c, "/", &w), "b1/:0,");
    assert_int_equal(nscache_lookup(c, "/b1", &st, NULL), 0);
    assert_int_equal(size_of(c, "/b2"), -ENOENT);

    struct nscache_stats s;
    nscache_stats(c, &s);
    assert_int_equal(s.listings, 2);
    assert_int_equal(s.names, 2);
    assert_int_equal(s.dir_hits, 3);
    nscache_free(c);
}

static void test_dir_pinned_children(void **state)
{
    (void)state;
    struct nscache *c = make_default();
    struct stat big = file_st(999);
    assert_int_equal(nscache_pin(c, "/d/a", &big, NULL), 0);     /* a queued copy */
    assert_int_equal(nscache_pin(c, "/d/new", &big, NULL), 0);   /* not in S3 yet */
    assert_int_equal(nscache_pin(c, "/d/b", NULL, NULL), 0);     /* a queued delete */
    assert_int_equal(nscache_pin(c, "/d/ghost", NULL, NULL), 0); /* already gone from S3 */
    struct nscache_dirent ents[] = {
        {.name = "a", .st = file_st(1), .etag = "\"old\""},
        {.name = "b", .st = file_st(2)},
        {.name = "c", .st = file_st(3)},
    };
    assert_int_equal(nscache_dir_put(c, "/d", ents, 3), 0);
    struct walk w;
    assert_string_equal(listing(c, "/d", &w), "a:999,c:3,new:999,");
    assert_int_equal(size_of(c, "/d/a"), 999);
    assert_int_equal(size_of(c, "/d/b"), -ENOENT);

    /* with listings not cached, dir_fill still hands out the merged view */
    struct nscache *u = make(1000, 1000, 0, 100, 100);
    assert_int_equal(nscache_pin(u, "/d/b", NULL, NULL), 0);
    memset(&w, 0, sizeof w);
    assert_int_equal(nscache_dir_fill(u, "/d", ents, 3, NSCACHE_NOW, collect, &w), 0);
    assert_string_equal(w.out, "a:1,c:3,");
    assert_string_equal(listing(u, "/d", &w), "rc=-11");
    nscache_free(u);
    nscache_free(c);
}

/* Issue 15: the parts of a streamed listing. Each pinned child is added to
 * the one part whose range of S3's key order holds its key (a directory's
 * key is "name/": "a" < "a.txt" < "a/"), tombstones hide rows anywhere, the
 * attributes are stored and no listing is kept. */
static void test_dir_page_ranges(void **state)
{
    (void)state;
    struct nscache *c = make_default();
    struct stat big = file_st(999), d = dir_st();
    assert_int_equal(nscache_pin(c, "/d/0", &big, NULL), 0);     /* before every key */
    assert_int_equal(nscache_pin(c, "/d/a.txt", &big, NULL), 0); /* between a and a/ */
    assert_int_equal(nscache_pin(c, "/d/m", &d, NULL), 0);       /* the key "m/" */
    assert_int_equal(nscache_pin(c, "/d/z", &big, NULL), 0);     /* after every key */
    assert_int_equal(nscache_pin(c, "/d/b", NULL, NULL), 0);     /* a queued delete */
    struct nscache_dirent p1[] = {{.name = "a", .st = file_st(1)}, {.name = "b", .st = file_st(2)}};
    struct nscache_dirent p2[] = {{.name = "aa", .st = dir_st()},
                                  {.name = "m-1", .st = file_st(3)}};
    struct nscache_dirent p3[] = {{.name = "n", .st = file_st(4)}};
    struct nscache_keys r1 = {NULL, "a"}, r2 = {"a", "m-1"}, r3 = {"m-1", NULL};
    struct walk w = {0};
    /* p1 is the keys up to "a" here: "b" is hidden wherever it is */
    assert_int_equal(nscache_dir_page(c, "/d", p1, 2, NSCACHE_NOW, &r1, collect, &w), 0);
    assert_string_equal(w.out, "0:999,a:1,");
    memset(&w, 0, sizeof w);
    /* "a.txt" and "aa/" after "a", "m/" after "m-1": in range */
    assert_int_equal(nscache_dir_page(c, "/d", p2, 2, NSCACHE_NOW, &r2, collect, &w), 0);
    assert_string_equal(w.out, "a.txt:999,aa/:0,m-1:3,");
    memset(&w, 0, sizeof w);
    assert_int_equal(nscache_dir_page(c, "/d", p3, 1, NSCACHE_NOW, &r3, collect, &w), 0);
    assert_string_equal(w.out, "m/:0,n:4,z:999,");
    assert_string_equal(listing(c, "/d", &w), "rc=-11");
    assert_int_equal(size_of(c, "/d/n"), 4);
    /* "m" < "m-1" < "m/" ('-' is 0x2d, '/' 0x2f) */
    assert_true(nscache_in_keys(&r2, "m", false) && !nscache_in_keys(&r2, "m", true));
    assert_true(nscache_in_keys(&r3, "m", true) && !nscache_in_keys(&r3, "m", false));
    nscache_free(c);
}

/* What rmdir asks: which children are pinned, and whether a name is
 * pinned gone (a queued delete) rather than merely cached as missing. */
static void test_pinned_queries(void **state)
{
    (void)state;
    struct nscache *c = make_default();
    struct stat f = file_st(1);
    size_t live = 9, gone = 9;
    nscache_pinned_children(c, "/d", &live, &gone);
    assert_int_equal(live, 0);
    assert_int_equal(gone, 0);
    assert_int_equal(nscache_pin(c, "/d/a", &f, NULL), 0);
    assert_int_equal(nscache_pin(c, "/d/b", NULL, NULL), 0);
    assert_int_equal(nscache_pin(c, "/d/c", NULL, NULL), 0);
    assert_int_equal(nscache_pin(c, "/d/e/deeper", NULL, NULL), 0); /* not a child of /d */
    nscache_put_negative(c, "/d/n");
    nscache_pinned_children(c, "/d", &live, &gone);
    assert_int_equal(live, 1);
    assert_int_equal(gone, 2);
    nscache_pinned_children(c, "/d", NULL, &gone);
    assert_int_equal(gone, 2);
    assert_true(nscache_pinned_gone(c, "/d/b"));
    assert_false(nscache_pinned_gone(c, "/d/a")); /* pinned, but to attributes */
    assert_false(nscache_pinned_gone(c, "/d/n")); /* negative, not pinned */
    assert_false(nscache_pinned_gone(c, "/d/x"));
    assert_false(nscache_pinned_gone(c, "bad"));
    /* the delete landed: an ordinary negative entry, no longer pinned */
    assert_true(nscache_unpin(c, "/d/b"));
    assert_false(nscache_pinned_gone(c, "/d/b"));
    assert_int_equal(size_of(c, "/d/b"), -ENOENT);
    nscache_pinned_children(c, "/d", &live, &gone);
    assert_int_equal(live, 1);
    assert_int_equal(gone, 1);
    /* re-pinned to attributes (a copy onto a deleted name) */
    assert_int_equal(nscache_pin(c, "/d/c", &f, NULL), 0);
    nscache_pinned_children(c, "/d", &live, &gone);
    assert_int_equal(live, 2);
    assert_int_equal(gone, 0);
    nscache_free(c);
}

static void test_listing_follows_changes(void **state)
{
    (void)state;
    struct nscache *c = make_default();
    struct nscache_dirent ents[] = {{.name = "a", .st = file_st(1)},
                                    {.name = "m", .st = file_st(2)}};
    assert_int_equal(nscache_dir_put(c, "/d", ents, 2), 0);
    struct stat st = file_st(5);
    nscache_put(c, "/d/b", &st, NULL); /* created */
    nscache_put(c, "/d/a", &st, NULL); /* rewritten */
    nscache_put_negative(c, "/d/m");   /* unlinked */
    assert_int_equal(nscache_pin(c, "/d/z", &st, NULL), 0);
    struct walk w;
    assert_string_equal(listing(c, "/d", &w), "a:5,b:5,z:5,");
    /* invalidate drops the path and its parent's listing */
    nscache_invalidate(c, "/d/b");
    assert_int_equal(size_of(c, "/d/b"), -EAGAIN);
    assert_string_equal(listing(c, "/d", &w), "rc=-11");
    assert_int_equal(size_of(c, "/d/a"), 5);
    nscache_free(c);
}

/* A listing S3 made before a change must not undo it: a copy that landed
 * (unpinned) or a delete that landed while the LIST was under way, or an
 * upload that finished meanwhile (the rename-then-readdir race). */
static void test_listing_older_than_changes(void **state)
{
    (void)state;
    struct nscache *c = make_default();
    struct stat st = file_st(7);
    assert_int_equal(nscache_pin(c, "/d/new", &st, NULL), 0);  /* a queued copy */
    assert_int_equal(nscache_pin(c, "/d/old", NULL, NULL), 0); /* a queued delete */
    uint64_t since = nscache_seq(c);                           /* the LIST starts */
    nscache_unpin(c, "/d/new");                                /* both land */
    nscache_unpin(c, "/d/old");
    nscache_put(c, "/d/up", &st, "\"e1\""); /* an upload finishes */
    /* S3's answer, from before: old still there, new and up not yet */
    struct nscache_dirent ents[] = {{.name = "keep", .st = file_st(1)},
                                    {.name = "old", .st = file_st(2)}};
    struct walk w;
    memset(&w, 0, sizeof w);
    assert_int_equal(nscache_dir_fill(c, "/d", ents, 2, since, collect, &w), 0);
    assert_string_equal(w.out, "keep:1,new:7,up:7,");
    assert_string_equal(listing(c, "/d", &w), "keep:1,new:7,up:7,");
    assert_int_equal(size_of(c, "/d/old"), -ENOENT);
    /* the same listing as current truth: it wins */
    assert_int_equal(nscache_dir_fill(c, "/d", ents, 2, NSCACHE_NOW, NULL, NULL), 0);
    assert_string_equal(listing(c, "/d", &w), "keep:1,old:2,");
    nscache_free(c);
}

static void test_invalidate_tree(void **state)
{
    (void)state;
    struct nscache *c = make(60000, 60000, 60000, 20000, 1000);
    struct stat st = file_st(1);
    char p[64];
    for (int i = 0; i < 10000; i++) {
        snprintf(p, sizeof p, "/a/b/d%d/f%d", i % 100, i);
        nscache_put(c, p, &st, NULL);
    }
    nscache_put(c, "/a/b", &st, NULL);
    nscache_put(c, "/a/bc", &st, NULL);
    nscache_put(c, "/a/bc/x", &st, NULL);
    nscache_put(c, "/a/b2", &st, NULL);
    assert_int_equal(nscache_pin(c, "/a/b/pending", &st, NULL), 0);
    struct nscache_dirent ents[] = {{.name = "x", .st = st}};
    assert_int_equal(nscache_dir_put(c, "/a/b/d1", ents, 1), 0);
    assert_int_equal(nscache_dir_put(c, "/a/bc", ents, 1), 0);
    assert_int_equal(nscache_dir_put(c, "/a", ents, 1), 0);
    struct nscache_stats s;
    nscache_stats(c, &s);
    assert_int_equal(s.entries, 10000 + 7);

    nscache_invalidate_tree(c, "/a/b");
    nscache_stats(c, &s);
    assert_int_equal(s.entries, 5); /* /a/bc, /a/bc/x, /a/b2, the pin, /a/x */
    assert_int_equal(s.listings, 1);
    assert_int_equal(size_of(c, "/a/b/d3/f3"), -EAGAIN);
    assert_int_equal(size_of(c, "/a/b"), -EAGAIN);
    assert_int_equal(size_of(c, "/a/b/pending"), 1);
    assert_int_equal(size_of(c, "/a/bc/x"), 1);
    assert_int_equal(size_of(c, "/a/b2"), 1);
    struct walk w;
    assert_string_equal(listing(c, "/a/bc", &w), "x:1,");
    assert_string_equal(listing(c, "/a", &w), "rc=-11"); /* the parent's */
    nscache_invalidate_tree(c, "/");
    nscache_stats(c, &s);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.listings, 0);
    nscache_free(c);
}

static void test_lru(void **state)
{
    (void)state;
    struct nscache *c = make(60000, 60000, 60000, 3, 1000);
    struct stat st = file_st(1);
    nscache_put(c, "/a", &st, NULL);
    nscache_put(c, "/b", &st, NULL);
    nscache_put(c, "/c", &st, NULL);
    assert_int_equal(size_of(c, "/a"), 1); /* /b is now the least recently used */
    nscache_put(c, "/d", &st, NULL);
    assert_int_equal(size_of(c, "/b"), -EAGAIN);
    assert_int_equal(size_of(c, "/a"), 1);
    assert_int_equal(size_of(c, "/c"), 1);
    assert_int_equal(size_of(c, "/d"), 1);
    /* pins do not count against the limit */
    assert_int_equal(nscache_pin(c, "/p1", &st, NULL), 0);
    assert_int_equal(nscache_pin(c, "/p2", &st, NULL), 0);
    struct nscache_stats s;
    nscache_stats(c, &s);
    assert_int_equal(s.entries, 5);
    assert_int_equal(s.evictions, 1);
    nscache_free(c);
}

static void test_names_limit(void **state)
{
    (void)state;
    struct nscache *c = make(60000, 60000, 60000, 1000, 10);
    struct nscache_dirent ents[] = {{.name = "1", .st = file_st(1)},
                                    {.name = "2", .st = file_st(1)},
                                    {.name = "3", .st = file_st(1)},
                                    {.name = "4", .st = file_st(1)}};
    assert_int_equal(nscache_dir_put(c, "/d1", ents, 4), 0);
    assert_int_equal(nscache_dir_put(c, "/d2", ents, 4), 0);
    struct walk w;
    assert_string_equal(listing(c, "/d1", &w), "1:1,2:1,3:1,4:1,"); /* /d2 is now LRU */
    assert_int_equal(nscache_dir_put(c, "/d3", ents, 4), 0);
    assert_string_equal(listing(c, "/d2", &w), "rc=-11");
    assert_string_equal(listing(c, "/d1", &w), "1:1,2:1,3:1,4:1,");
    assert_string_equal(listing(c, "/d3", &w), "1:1,2:1,3:1,4:1,");
    struct nscache_stats s;
    nscache_stats(c, &s);
    assert_int_equal(s.names, 8);
    assert_int_equal(s.listings, 2);

    /* a listing larger than the whole budget is not kept, but still served */
    struct nscache_dirent many[11];
    char names[11][4];
    for (int i = 0; i < 11; i++) {
        snprintf(names[i], sizeof names[i], "n%d", i);
        many[i] = (struct nscache_dirent){.name = names[i], .st = file_st(1)};
    }
    memset(&w, 0, sizeof w);
    assert_int_equal(nscache_dir_fill(c, "/big", many, 11, NSCACHE_NOW, collect, &w), 0);
    assert_int_equal(w.seen, 11);
    assert_string_equal(listing(c, "/big", &w), "rc=-11");
    /* growing a listing past the budget evicts the least recently used */
    struct stat st = file_st(2);
    nscache_put(c, "/d3/5", &st, NULL);
    nscache_put(c, "/d3/6", &st, NULL);
    nscache_put(c, "/d3/7", &st, NULL);
    assert_string_equal(listing(c, "/d1", &w), "rc=-11");
    assert_string_equal(listing(c, "/d3", &w), "1:1,2:1,3:1,4:1,5:2,6:2,7:2,");
    nscache_free(c);
}

/* ---- threads: run under TSan for data races ---- */

struct hammer {
    struct nscache *c;
    unsigned seed;
    atomic_int *stop;
};

static int ignore(const char *name, const struct stat *st, void *arg)
{
    (void)name;
    (void)st;
    (void)arg;
    return 0;
}

static void hammer_one(struct nscache *c, unsigned r)
{
    char p[64];
    snprintf(p, sizeof p, "/d%u/f%u", r % 7, (r >> 3) % 50);
    char dir[16];
    snprintf(dir, sizeof dir, "/d%u", r % 7);
    struct stat st = file_st((off_t)r);
    struct nscache_dirent ents[] = {{.name = "f1", .st = st}, {.name = "f2", .st = st}};
    switch ((r >> 9) % 8) {
    case 0:
        nscache_put(c, p, &st, "\"e\"");
        break;
    case 1:
        nscache_put_negative(c, p);
        break;
    case 2:
        nscache_invalidate(c, p);
        break;
    case 3:
        nscache_dir_put(c, dir, ents, 2);
        break;
    case 4:
        nscache_dir_get(c, dir, ignore, NULL);
        break;
    case 5:
        if (nscache_pin(c, p, (r & 1) ? &st : NULL, NULL) == 0)
            nscache_unpin(c, p);
        break;
    case 6:
        nscache_invalidate_tree(c, dir);
        break;
    default:
        nscache_lookup(c, p, &st, NULL);
    }
}

static void *hammer(void *arg)
{
    struct hammer *h = arg;
    while (!atomic_load_explicit(h->stop, memory_order_relaxed))
        for (int i = 0; i < 100; i++)
            hammer_one(h->c, (unsigned)rand_r(&h->seed));
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct nscache *c = make(5, 5, 5, 100, 10);
    atomic_int stop = 0;
    struct hammer h[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        h[i] = (struct hammer){c, (unsigned)i + 1, &stop};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &h[i]), 0);
    }
    sleep_ms(1000);
    atomic_store_explicit(&stop, 1, memory_order_relaxed);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    struct nscache_stats s;
    nscache_stats(c, &s);
    assert_int_equal(s.pinned, 0);
    assert_true(s.entries <= 100);
    assert_true(s.names <= 10);
    nscache_free(c);
}

/* 100k entries and then free: ASan's leak check does the asserting. */
static void test_many(void **state)
{
    (void)state;
    struct nscache *c = make(60000, 60000, 60000, 200000, 200000);
    struct stat st = file_st(1);
    char p[64];
    for (int i = 0; i < 100000; i++) {
        snprintf(p, sizeof p, "/bucket/dir%d/file-%d", i % 1000, i);
        if (i % 10 == 0)
            assert_int_equal(nscache_pin(c, p, &st, "\"0123456789abcdef0123456789abcdef\""), 0);
        else
            nscache_put(c, p, &st, "\"0123456789abcdef0123456789abcdef\"");
    }
    struct nscache_dirent ents[] = {{.name = "file-1", .st = st}};
    for (int i = 0; i < 1000; i++) {
        snprintf(p, sizeof p, "/bucket/dir%d", i);
        assert_int_equal(nscache_dir_put(c, p, ents, 1), 0);
    }
    struct nscache_stats s;
    nscache_stats(c, &s);
    assert_int_equal(s.entries, 100000 + 999); /* each listing's file-1, one known */
    assert_int_equal(s.pinned, 10000);
    assert_int_equal(s.listings, 1000);
    assert_int_equal(size_of(c, "/bucket/dir7/file-99007"), 1);
    nscache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_negative),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_pin),
        cmocka_unit_test(test_dir_put_get),
        cmocka_unit_test(test_dir_pinned_children),
        cmocka_unit_test(test_dir_page_ranges),
        cmocka_unit_test(test_pinned_queries),
        cmocka_unit_test(test_listing_follows_changes),
        cmocka_unit_test(test_listing_older_than_changes),
        cmocka_unit_test(test_invalidate_tree),
        cmocka_unit_test(test_lru),
        cmocka_unit_test(test_names_limit),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
