/* lookup.c through the driver: what getattr makes of objects, markers and
 * implicit directories, what it caches, and failures that are not
 * "no such file". */
#include <unistd.h>

#include "layer.h"

/* An object without s3fs metadata: a regular file of the defaults; with
 * it: its mode and owner. */
static void test_file_attrs(void **state)
{
    (void)state;
    put("plain", "12345");
    char mode[16];
    snprintf(mode, sizeof mode, "%d", S_IFREG | 0640);
    struct s3_meta m[] = {{"mode", mode}, {"uid", "1234"}, {"gid", "5678"}};
    assert_int_equal(fakes3_put_meta(BUCKET, "meta", "x", 1, NULL, m, 3), 0);
    struct stat st;
    assert_int_equal(fsd_getattr(D, "/plain", &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(st.st_size, 5);
    assert_int_equal(st.st_uid, getuid());
    assert_int_equal(fsd_getattr(D, "/meta", &st), 0);
    assert_int_equal(st.st_mode, S_IFREG | 0640);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
}

/* Directories: a marker, or only keys below (implicit); a name that is
 * neither is ENOENT. */
static void test_directories(void **state)
{
    (void)state;
    put("a/b/c", "x");
    put("m/", "");
    struct stat st;
    assert_int_equal(fsd_getattr(D, "/a", &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(fsd_getattr(D, "/a/b", &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(fsd_getattr(D, "/m", &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(fsd_getattr(D, "/a/b/c", &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(fsd_getattr(D, "/a/x", &st), -ENOENT);
    assert_int_equal(fsd_getattr(D, "/", &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

/* A missing name is asked once within negative_ttl; under coherent every
 * time. */
static void test_negative_cache(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(fsd_getattr(D, "/none", &st), -ENOENT);
    uint64_t first = fakes3_count(FAKES3_ANY);
    assert_true(first >= 1);
    assert_int_equal(fsd_getattr(D, "/none", &st), -ENOENT);
    assert_int_equal(fakes3_count(FAKES3_ANY), first);
    struct fsd_options o = {.coherent = true};
    remount(&o);
    assert_int_equal(fsd_getattr(D, "/none", &st), -ENOENT);
    first = fakes3_count(FAKES3_ANY);
    assert_int_equal(fsd_getattr(D, "/none", &st), -ENOENT);
    assert_true(fakes3_count(FAKES3_ANY) > first);
    /* and another client's object is seen at once */
    put("none", "now");
    assert_int_equal(fsd_getattr(D, "/none", &st), 0);
    assert_int_equal(st.st_size, 3);
}

/* A HEAD that fails (500 after the client's retries, 403) is that error,
 * not ENOENT, and is not remembered as a missing name. */
static void test_head_failure(void **state)
{
    (void)state;
    put("f", "x");
    struct stat st;
    fakes3_fail_nth(FAKES3_HEAD, 1, "InternalError", 500);
    assert_int_equal(fsd_getattr(D, "/f", &st), -EIO);
    assert_int_equal(fsd_getattr(D, "/f", &st), 0);
    fakes3_fail_nth(FAKES3_HEAD, 1, "AccessDenied", 403);
    assert_int_equal(fsd_getattr(D, "/g", &st), -EACCES);
}

/* Of a name created here: no request before it is flushed. */
static void test_created_file_is_local(void **state)
{
    (void)state;
    struct fsd_file *f;
    struct stat st;
    assert_int_equal(fsd_create(D, "/new", 0600, &f), 0);
    uint64_t n = fakes3_count(FAKES3_ANY);
    assert_int_equal(fsd_getattr(D, "/new", &st), 0);
    assert_int_equal(st.st_mode, S_IFREG | 0600);
    assert_int_equal(fakes3_count(FAKES3_ANY), n);
    assert_false(fakes3_exists(BUCKET, "new"));
    assert_int_equal(fsd_close(f), 0);
    assert_true(fakes3_exists(BUCKET, "new"));
    /* the caller's umask (022, from fuse_get_context) applies */
    unsigned long calls = fsd_context_calls();
    assert_int_equal(fsd_create(D, "/wide", 0666, &f), 0);
    assert_true(fsd_context_calls() > calls);
    assert_int_equal(fsd_fstat(f, &st), 0);
    assert_int_equal(st.st_mode, S_IFREG | 0644);
    assert_int_equal(st.st_uid, getuid());
    assert_int_equal(fsd_close(f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_attrs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_file_is_local, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
