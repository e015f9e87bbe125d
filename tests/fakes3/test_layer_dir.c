/* dir.c through the driver: readdir, mkdir, rmdir, against what the store
 * holds and against hostile listings. */
#include "layer.h"

/* Files, markers and implicit directories, each name once; keys readdir
 * cannot show (d//x) left out. */
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
    assert_string_equal(names, "a m sub");
    assert_int_equal(fsd_readdir(D, "/", names, sizeof names, &n), 0);
    assert_string_equal(names, "d e");
    assert_int_equal(fsd_mkdir(D, "/d/new", 0755), 0);
    assert_int_equal(fsd_put_file(D, "/d/new/f", "abc", 3), 0);
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_string_equal(names, "a m new sub");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_readdir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_entry_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_prefix_and_token_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rmdir_foreign_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
