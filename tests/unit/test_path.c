/* Unit tests for the path -> bucket/key mapping. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "s3cfs/path.h"

static void test_all_buckets(void **state)
{
    (void)state;
    struct path_map m;
    struct fs_loc l;
    assert_int_equal(path_map_init(&m, NULL), 0);
    assert_true(m.all_buckets);
    assert_int_equal(path_resolve(&m, "/", &l), 0);
    assert_int_equal(l.kind, LOC_ROOT);
    assert_int_equal(path_resolve(&m, "/photos", &l), 0);
    assert_int_equal(l.kind, LOC_BUCKET);
    assert_string_equal(l.bucket, "photos");
    assert_string_equal(l.key, "");
    assert_int_equal(path_resolve(&m, "/photos/2024/a b.jpg", &l), 0);
    assert_int_equal(l.kind, LOC_OBJECT);
    assert_string_equal(l.key, "2024/a b.jpg");
    /* names that cannot be buckets do not exist at the root */
    assert_int_equal(path_resolve(&m, "/.Trash", &l), -ENOENT);
    assert_int_equal(path_resolve(&m, "/ab", &l), -ENOENT);
}

static void test_bucket_prefix(void **state)
{
    (void)state;
    struct path_map m;
    struct fs_loc l;
    char dir[S3CFS_KEY_MAX + 2];
    assert_int_equal(path_map_init(&m, "data:/team/x/"), 0);
    assert_false(m.all_buckets);
    assert_string_equal(m.bucket, "data");
    assert_string_equal(m.prefix, "team/x/");
    assert_int_equal(path_resolve(&m, "/", &l), 0);
    assert_int_equal(l.kind, LOC_BUCKET);
    assert_string_equal(l.key, "team/x/");
    assert_int_equal(path_dir_prefix(&l, dir, sizeof dir), 0);
    assert_string_equal(dir, "team/x/");
    assert_int_equal(path_resolve(&m, "/sub/file", &l), 0);
    assert_string_equal(l.key, "team/x/sub/file");
    assert_int_equal(path_dir_prefix(&l, dir, sizeof dir), 0);
    assert_string_equal(dir, "team/x/sub/file/");

    assert_int_equal(path_map_init(&m, "data"), 0);
    assert_int_equal(path_resolve(&m, "/", &l), 0);
    assert_int_equal(path_dir_prefix(&l, dir, sizeof dir), 0);
    assert_string_equal(dir, "");
    assert_int_equal(path_map_init(&m, "data:prefix"), 0);
    assert_string_equal(m.prefix, "prefix/");
    assert_int_equal(path_map_init(&m, "Bad!Name"), -EINVAL);
}

static void test_limits(void **state)
{
    (void)state;
    struct path_map m;
    struct fs_loc l;
    path_map_init(&m, "b12");
    char p[1200];
    p[0] = '/';
    memset(p + 1, 'n', 255);
    p[256] = '\0';
    assert_int_equal(path_resolve(&m, p, &l), 0); /* 255 bytes: fine */
    p[256] = 'n';
    p[257] = '\0';
    assert_int_equal(path_resolve(&m, p, &l), -ENAMETOOLONG);
    /* a 1025-byte key from short components */
    size_t n = 0;
    while (n < 1025) {
        p[n] = '/';
        memset(p + n + 1, 'k', 9);
        n += 10;
    }
    p[1026] = '\0';
    assert_int_equal(path_resolve(&m, p, &l), -ENAMETOOLONG);
    assert_int_equal(path_resolve(&m, "/a//b", &l), -EINVAL);
    assert_int_equal(path_resolve(&m, "/é/日本", &l), 0);
    assert_string_equal(l.key, "é/日本");
}

/* Key components no name can be (empty, ".", "..") go both ways through
 * their aliases; the empty one names the prefix of its children. */
static void test_aliases(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"d//x", "/d/.s3cfs-empty/x"},
        {"d/./x", "/d/.s3cfs-dot/x"},
        {"d/../x", "/d/.s3cfs-dotdot/x"},
        {"d/.", "/d/.s3cfs-dot"},
        {"d/..", "/d/.s3cfs-dotdot"},
        {"/x", "/.s3cfs-empty/x"},
        {"d///x", "/d/.s3cfs-empty/.s3cfs-empty/x"},
        {"a.b/..c", "/a.b/..c"},
    };
    struct path_map m;
    struct fs_loc l;
    char path[4096];
    assert_int_equal(path_map_init(&m, "data"), 0);
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        assert_int_equal(path_from_key(&m, "data", pairs[i][0], path, sizeof path), 0);
        assert_string_equal(path, pairs[i][1]);
        assert_int_equal(path_resolve(&m, pairs[i][1], &l), 0);
        assert_string_equal(l.key, pairs[i][0]);
    }
    /* the marker "d//" of the empty-named directory, and that directory */
    assert_int_equal(path_from_key(&m, "data", "d//", path, sizeof path), 0);
    assert_string_equal(path, "/d/.s3cfs-empty");
    assert_int_equal(path_resolve(&m, "/d/.s3cfs-empty", &l), 0);
    assert_string_equal(l.key, "d//");
    char dir[S3CFS_KEY_MAX + 2];
    assert_int_equal(path_dir_prefix(&l, dir, sizeof dir), 0);
    assert_string_equal(dir, "d//");
    assert_null(path_alias("x", 1));
    /* "." and ".." never come from the kernel: not a path to a key */
    assert_int_equal(path_resolve(&m, "/d/./x", &l), -EINVAL);
    assert_int_equal(path_resolve(&m, "/d/..", &l), -EINVAL);
    /* 600 empty components: the path grows 13-fold and still goes both ways */
    static char many[600 * 13 + 2];
    char back[sizeof many + 16];
    many[0] = '\0';
    for (int i = 0; i < 600; i++)
        strcat(many, "/" PATH_ALIAS_EMPTY);
    assert_int_equal(path_resolve(&m, many, &l), 0);
    assert_int_equal(strlen(l.key), 600);
    assert_int_equal(path_from_key(&m, "data", l.key, back, sizeof back), 0);
    assert_string_equal(back, many);
    assert_int_equal(path_from_key(&m, "data", l.key, back, 100), -ENAMETOOLONG);
    assert_string_equal(path_alias("..", 2), PATH_ALIAS_DOTDOT);
    /* all buckets: the key starts after the bucket */
    assert_int_equal(path_map_init(&m, NULL), 0);
    assert_int_equal(path_from_key(&m, "data", "d/./x", path, sizeof path), 0);
    assert_string_equal(path, "/data/d/.s3cfs-dot/x");
    assert_int_equal(path_resolve(&m, "/data/.s3cfs-empty/x", &l), 0);
    assert_string_equal(l.key, "/x");
}

static void test_parent_basename(void **state)
{
    (void)state;
    char out[64];
    path_parent("/a/b/c", out, sizeof out);
    assert_string_equal(out, "/a/b");
    path_parent("/a", out, sizeof out);
    assert_string_equal(out, "/");
    path_parent("/", out, sizeof out);
    assert_string_equal(out, "/");
    assert_string_equal(path_basename("/a/b/c"), "c");
    assert_string_equal(path_basename("/a"), "a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_buckets), cmocka_unit_test(test_bucket_prefix),
        cmocka_unit_test(test_limits),      cmocka_unit_test(test_parent_basename),
        cmocka_unit_test(test_aliases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
