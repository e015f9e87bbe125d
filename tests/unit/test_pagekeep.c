/* Unit tests of pagekeep.c: an open keeps the kernel's pages only for the
 * version recorded by the open before it; any difference (ETag, size,
 * mtime), an unknown ETag, a forget of the path or of a tree above it, or
 * eviction from the bounded table makes the next open drop them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3cfs/pagekeep.h"

static struct pagekeep_version ver(const char *etag, uint64_t size, long sec)
{
    return (struct pagekeep_version){.etag = etag, .size = size, .mtime = {sec, 0}};
}

static bool open_v(struct pagekeep *p, const char *path, const char *etag, uint64_t size, long sec)
{
    struct pagekeep_version v = ver(etag, size, sec);
    return pagekeep_open(p, path, &v);
}

static void test_same_version_keeps(void **state)
{
    (void)state;
    struct pagekeep *p;
    assert_int_equal(pagekeep_new(16, &p), 0);
    assert_false(open_v(p, "/a", "\"e1\"", 10, 100)); /* first open: nothing cached */
    assert_true(open_v(p, "/a", "\"e1\"", 10, 100));
    assert_true(open_v(p, "/a", "\"e1\"", 10, 100));
    assert_false(open_v(p, "/b", "\"e1\"", 10, 100)); /* per path */
    assert_int_equal(pagekeep_count(p), 2);
    pagekeep_free(p);
}

static void test_any_difference_drops(void **state)
{
    (void)state;
    struct pagekeep *p;
    assert_int_equal(pagekeep_new(16, &p), 0);
    open_v(p, "/a", "\"e1\"", 10, 100);
    assert_false(open_v(p, "/a", "\"e2\"", 10, 100)); /* another ETag */
    assert_true(open_v(p, "/a", "\"e2\"", 10, 100));  /* ...now recorded */
    assert_false(open_v(p, "/a", "\"e2\"", 11, 100)); /* another size */
    assert_false(open_v(p, "/a", "\"e2\"", 10, 100)); /* back: the pages were refilled */
    assert_false(open_v(p, "/a", "\"e2\"", 10, 101)); /* another mtime */
    struct pagekeep_version v = ver("\"e2\"", 10, 101);
    v.mtime.tv_nsec = 5;
    assert_false(pagekeep_open(p, "/a", &v)); /* nanoseconds count */
    pagekeep_free(p);
}

static void test_unknown_etag_never_kept(void **state)
{
    (void)state;
    struct pagekeep *p;
    assert_int_equal(pagekeep_new(16, &p), 0);
    open_v(p, "/a", "\"e1\"", 10, 100);
    assert_false(open_v(p, "/a", "", 10, 100)); /* a queued copy: forgets */
    assert_int_equal(pagekeep_count(p), 0);
    assert_false(open_v(p, "/a", "\"e1\"", 10, 100));
    assert_false(open_v(p, "/a", NULL, 10, 100));
    assert_false(open_v(p, "/a", NULL, 10, 100));
    char longtag[200];
    memset(longtag, 'x', sizeof longtag - 1);
    longtag[sizeof longtag - 1] = '\0';
    assert_false(open_v(p, "/a", longtag, 10, 100)); /* too long to compare: unknown */
    assert_false(open_v(p, "/a", longtag, 10, 100));
    assert_false(pagekeep_open(NULL, "/a", &(struct pagekeep_version){"\"e\"", 1, {0, 0}}));
    pagekeep_free(p);
}

static void test_forget_path_and_tree(void **state)
{
    (void)state;
    struct pagekeep *p;
    assert_int_equal(pagekeep_new(16, &p), 0);
    const char *paths[] = {"/d", "/d/x", "/d/e/y", "/dd/z", "/other"};
    for (size_t i = 0; i < 5; i++)
        open_v(p, paths[i], "\"e\"", 1, 1);
    pagekeep_forget(p, "/other");
    assert_false(open_v(p, "/other", "\"e\"", 1, 1));
    pagekeep_forget_tree(p, "/d");
    assert_int_equal(pagekeep_count(p), 2); /* /dd/z and /other stay */
    assert_true(open_v(p, "/dd/z", "\"e\"", 1, 1));
    assert_false(open_v(p, "/d/e/y", "\"e\"", 1, 1));
    assert_false(open_v(p, "/d", "\"e\"", 1, 1));
    pagekeep_forget_tree(p, "/");
    assert_int_equal(pagekeep_count(p), 0);
    pagekeep_forget(p, NULL); /* ignored */
    pagekeep_forget(NULL, "/a");
    pagekeep_forget_tree(NULL, "/");
    pagekeep_free(p);
}

/* the least recently opened goes first; the table never holds more than max */
static void test_bounded_lru(void **state)
{
    (void)state;
    struct pagekeep *p;
    char name[32];
    assert_int_equal(pagekeep_new(4, &p), 0);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "/f%d", i);
        open_v(p, name, "\"e\"", 1, 1);
    }
    assert_true(open_v(p, "/f0", "\"e\"", 1, 1)); /* f0 is the newest now */
    open_v(p, "/f4", "\"e\"", 1, 1);              /* evicts f1 */
    assert_int_equal(pagekeep_count(p), 4);
    assert_true(open_v(p, "/f0", "\"e\"", 1, 1));
    assert_false(open_v(p, "/f1", "\"e\"", 1, 1)); /* evicted; re-added, evicts f2 */
    assert_false(open_v(p, "/f2", "\"e\"", 1, 1));
    assert_true(open_v(p, "/f4", "\"e\"", 1, 1));
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "/g%d", i);
        open_v(p, name, "\"e\"", 1, 1);
        assert_true(pagekeep_count(p) <= 4);
    }
    pagekeep_forget_tree(p, "/");
    pagekeep_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_version_keeps),
        cmocka_unit_test(test_any_difference_drops),
        cmocka_unit_test(test_unknown_etag_never_kept),
        cmocka_unit_test(test_forget_path_and_tree),
        cmocka_unit_test(test_bounded_lru),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
