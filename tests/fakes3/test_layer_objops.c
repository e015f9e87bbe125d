/* objops.c through the driver: attribute rewrites, xattrs, renames of
 * files and trees, unlink, symlinks, with what each sends to S3. */
#include "layer.h"

static void assert_meta(const char *key, const char *name, const char *want)
{
    char v[256];
    assert_int_equal(fakes3_meta(BUCKET, key, name, v, sizeof v), 0);
    assert_string_equal(v, want);
}

/* chmod rewrites the metadata in place: one CopyObject onto itself, no
 * byte moved. */
static void test_chmod_is_one_self_copy(void **state)
{
    (void)state;
    put("f", "content");
    struct stat st;
    assert_int_equal(fsd_getattr(D, "/f", &st), 0);
    fakes3_count_reset();
    assert_int_equal(fsd_chmod(D, "/f", S_IFREG | 0600), 0);
    settle();
    assert_int_equal(fakes3_count(FAKES3_COPY), 1);
    assert_int_equal(fakes3_count(FAKES3_PUT) + fakes3_count(FAKES3_GET), 0);
    char want[16];
    snprintf(want, sizeof want, "%d", S_IFREG | 0600);
    assert_meta("f", "mode", want);
    assert_object("f", "content", 7);
    assert_int_equal(fsd_getattr(D, "/f", &st), 0);
    assert_int_equal(st.st_mode, S_IFREG | 0600);
}

/* setxattr keeps the value in the object's metadata; getxattr reads it. */
static void test_xattr(void **state)
{
    (void)state;
    put("f", "x");
    assert_int_equal(fsd_setxattr(D, "/f", "user.color", "blue", 4, 0), 0);
    settle();
    char enc[512], v[16];
    assert_int_equal(fakes3_meta(BUCKET, "f", "xattr", enc, sizeof enc), 0);
    assert_non_null(strstr(enc, "color"));
    assert_int_equal(fsd_getxattr(D, "/f", "user.color", v, sizeof v), 4);
    assert_memory_equal(v, "blue", 4);
    assert_int_equal(fsd_getxattr(D, "/f", "user.none", v, sizeof v), -ENODATA);
    assert_object("f", "x", 1);
}

/* mv of a file: its content and metadata under the new name, the old one
 * gone; RENAME_NOREPLACE onto an existing name is EEXIST and changes
 * nothing. */
static void test_rename_file(void **state)
{
    (void)state;
    struct s3_meta m[] = {{"other", "kept"}};
    assert_int_equal(fakes3_put_meta(BUCKET, "a", "AAA", 3, "text/plain", m, 1), 0);
    put("b", "BBB");
    assert_int_equal(fsd_rename(D, "/a", "/b", RENAME_NOREPLACE), -EEXIST);
    assert_int_equal(fsd_rename(D, "/a", "/c", RENAME_NOREPLACE), 0);
    settle();
    assert_keys("", "b c");
    assert_object("c", "AAA", 3);
    assert_meta("c", "other", "kept");
    assert_int_equal(fsd_rename(D, "/c", "/b", 0), 0);
    settle();
    assert_keys("", "b");
    assert_object("b", "AAA", 3);
}

/* mv of a directory: every key below it, markers included, moves. */
static void test_rename_tree(void **state)
{
    (void)state;
    put("d/", "");
    put("d/x", "1");
    put("d/sub/", "");
    put("d/sub/y", "22");
    put("other", "o");
    assert_int_equal(fsd_mv(D, "/d", "/e"), 0);
    struct stat st;
    assert_int_equal(fsd_getattr(D, "/d", &st), -ENOENT);
    assert_int_equal(fsd_getattr(D, "/e/sub/y", &st), 0);
    settle();
    assert_keys("", "e/ e/sub/ e/sub/y e/x other");
    assert_object("e/sub/y", "22", 2);
    assert_int_equal(fakes3_count(FAKES3_PUT) + fakes3_count(FAKES3_GET), 0);
}

/* unlink: gone at once for the namespace, deleted from S3 once it lands. */
static void test_unlink(void **state)
{
    (void)state;
    put("f", "x");
    assert_int_equal(fsd_unlink(D, "/f"), 0);
    struct stat st;
    assert_int_equal(fsd_getattr(D, "/f", &st), -ENOENT);
    settle();
    assert_false(fakes3_exists(BUCKET, "f"));
    assert_int_equal(fsd_unlink(D, "/f"), -ENOENT);
}

/* A symlink is one small object; readlink gives the target back. */
static void test_symlink(void **state)
{
    (void)state;
    const struct fuse_operations *ops = fsops_table();
    assert_int_equal(ops->symlink("target/name", "/l"), 0);
    char buf[64];
    assert_int_equal(ops->readlink("/l", buf, sizeof buf), 0);
    assert_string_equal(buf, "target/name");
    struct stat st;
    assert_int_equal(fsd_getattr(D, "/l", &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_object("l", "target/name", 11);
    assert_int_equal(fakes3_count(FAKES3_PUT), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chmod_is_one_self_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xattr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
