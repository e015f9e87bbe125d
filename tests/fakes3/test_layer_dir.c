/* dir.c through the driver: readdir, mkdir, rmdir, against what the store
 * holds and against hostile listings. */
#include "layer.h"

/* Files, markers and implicit directories, each name once; a key with an
 * empty component (d//x) under its reserved name (path.h). */
static void test_readdir(void **state)
{
    (void)state;
    put("d/a", "x");
    put("d/sub/x", "x");
    put("d/sub/y", "x");
    put("d/m/", "x");
    put("d//x", "x");
    put("e", "x");
    char names[256];
    size_t n;
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_string_equal(names, ".s3cfs-empty a m sub");
    assert_int_equal(fsd_readdir(D, "/", names, sizeof names, &n), 0);
    assert_string_equal(names, "d e");
    assert_int_equal(fsd_mkdir(D, "/d/new", 0755), 0);
    assert_int_equal(fsd_put_file(D, "/d/new/f", "abc", 3), 0);
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_string_equal(names, ".s3cfs-empty a m new sub");
    assert_true(fakes3_exists(BUCKET, "d/new/"));
    assert_object("d/new/f", "abc", 3);
}

/* Issue 11 §6 (c3ac9b0): a listing holding an entry outside the prefix is
 * refused whole: readdir fails, and a tree rename copies and deletes
 * nothing. */
static void test_foreign_entry_refused(void **state)
{
    (void)state;
    put("src/a", "x");
    put("src/b", "x");
    fakes3_set_hostile(FAKES3_FOREIGN_ENTRY);
    char names[256];
    size_t n;
    assert_int_equal(fsd_readdir(D, "/src", names, sizeof names, &n), -EIO);
    /* only the source's listings are hostile (the lookup of /dst lists
     * dst/), and /src is known from before */
    struct stat st;
    fakes3_set_hostile(0);
    assert_int_equal(fsd_getattr(D, "/src", &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    fakes3_set_hostile_prefix("src/");
    fakes3_set_hostile(FAKES3_FOREIGN_ENTRY);
    uint64_t lists = fakes3_count(FAKES3_LIST);
    int rc = fsd_mv(D, "/src", "/dst");
    assert_int_equal(rc, -EIO);
    assert_true(fakes3_count(FAKES3_LIST) > lists);
    fakes3_set_hostile(0);
    settle();
    assert_int_equal(fakes3_count(FAKES3_COPY) + fakes3_count(FAKES3_MPU_COPY_PART), 0);
    assert_int_equal(fakes3_count(FAKES3_DELETE) + fakes3_count(FAKES3_DELETE_BATCH), 0);
    assert_keys("", "src/a src/b");
}

/* Common prefixes shorter than the prefix, and a continuation token given
 * twice: readdir ends with an error, in bounded time. */
static void test_short_prefix_and_token_loop(void **state)
{
    (void)state;
    put("d/a", "x");
    char names[256];
    size_t n;
    fakes3_set_hostile(FAKES3_SHORT_PREFIX);
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), -EIO);
    fakes3_set_hostile(FAKES3_REPEAT_TOKEN);
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), -EIO);
    assert_true(fakes3_count(FAKES3_LIST) < 10);
    fakes3_set_hostile(0);
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_string_equal(names, "a");
}

/* Issue 11 §5 (cd9dd52): rmdir of a directory holding a key another client
 * put there, or one readdir leaves out, is ENOTEMPTY; nothing is deleted. */
static void test_rmdir_foreign_key(void **state)
{
    (void)state;
    assert_int_equal(fsd_mkdir(D, "/d", 0755), 0);
    char names[64];
    size_t n;
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_int_equal(n, 0);
    put("d/foreign", "x");
    assert_int_equal(fsd_rmdir(D, "/d"), -ENOTEMPTY);
    assert_true(fakes3_exists(BUCKET, "d/foreign"));
    assert_int_equal(fsd_mkdir(D, "/e", 0755), 0);
    put("e//hidden", "x");
    assert_int_equal(fsd_rmdir(D, "/e"), -ENOTEMPTY);
    settle();
    assert_keys("", "d/ d/foreign e/ e//hidden");
    /* an empty one goes */
    assert_int_equal(fsd_mkdir(D, "/f", 0755), 0);
    assert_int_equal(fsd_rmdir(D, "/f"), 0);
    settle();
    assert_false(fakes3_exists(BUCKET, "f/"));
}

/* A LIST that fails is reported, not shown as an empty directory. */
static void test_list_failure(void **state)
{
    (void)state;
    put("d/a", "x");
    fakes3_fail_nth(FAKES3_LIST, 1, "AccessDenied", 403);
    char names[64];
    size_t n;
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), -EACCES);
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_string_equal(names, "a");
}

/* Issue 15: a directory larger than one page (max_listing=4) is streamed a
 * page at a time through the offsets: every name once ("a" the file and
 * "a/" the directory on different pages: once, as the file), files not
 * yet flushed and a queued delete shown in the page their keys fall in,
 * one LIST per page and no listing kept whole. */
static void test_stream_pages(void **state)
{
    (void)state;
    remount(&(struct fsd_options){.max_listing = 4});
    char key[32], names[1024];
    size_t n;
    put("d/a", "x");
    for (int i = 1; i <= 5; i++) {
        snprintf(key, sizeof key, "d/a-%d", i);
        put(key, "x");
    }
    put("d/a/x", "x");
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "d/f%02d", i);
        put(key, "x");
    }
    uint64_t lists = fakes3_count(FAKES3_LIST), heads = fakes3_count(FAKES3_HEAD);
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_int_equal(n, 36);
    assert_non_null(strstr(names, "a a-1 a-2 a-3 a-4 a-5 f00 f01 f02"));
    assert_non_null(strstr(names, "f28 f29"));
    assert_int_equal(fakes3_count(FAKES3_LIST) - lists, 10); /* 37 keys, 4 a page */
    assert_int_equal(fakes3_count(FAKES3_HEAD) - heads, 36);
    /* not kept whole: listed again, the attributes are cached */
    lists = fakes3_count(FAKES3_LIST), heads = fakes3_count(FAKES3_HEAD);
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_int_equal(n, 36);
    assert_int_equal(fakes3_count(FAKES3_LIST) - lists, 10);
    assert_int_equal(fakes3_count(FAKES3_HEAD) - heads, 0);
    struct fsd_file *f0, *f1, *f2;
    assert_int_equal(fsd_create(D, "/d/0", 0644, &f0), 0);
    assert_int_equal(fsd_create(D, "/d/f105", 0644, &f1), 0);
    assert_int_equal(fsd_create(D, "/d/zz", 0644, &f2), 0);
    assert_int_equal(fsd_unlink(D, "/d/f10"), 0);
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_int_equal(n, 38);
    /* after the rows S3 listed of the page their keys fall in */
    assert_non_null(strstr(names, "a a-1 a-2 a-3 0 a-4"));
    assert_non_null(strstr(names, " f09 f11 f12 f105 f13 "));
    assert_non_null(strstr(names, " f29 zz"));
    assert_null(strstr(names, "f10 "));
    assert_int_equal(fsd_close(f0), 0);
    assert_int_equal(fsd_close(f1), 0);
    assert_int_equal(fsd_close(f2), 0);
    settle();
}

/* Streamed pages of two keys: the reserved names of keys with an empty or
 * "." component, and an old-style "a_$folder$" two pages after the file
 * "a", each shown once. */
static void test_stream_odd_keys(void **state)
{
    (void)state;
    remount(&(struct fsd_options){.max_listing = 2});
    put("d//x", "x");
    put("d/./y", "x");
    put("d/a", "x");
    put("d/a-1", "x");
    put("d/a-2", "x");
    put("d/a_$folder$", "");
    put("d/b/z", "x");
    put("d/b_$folder$", "");
    char names[256];
    size_t n;
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_string_equal(names, ".s3cfs-dot .s3cfs-empty a a-1 a-2 b");
    assert_int_equal(n, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_readdir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_entry_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_prefix_and_token_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rmdir_foreign_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_odd_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
