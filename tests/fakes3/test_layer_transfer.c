/* transfer.c through the driver: server-side copies (CopyObject and
 * parallel UploadPartCopy) and what ends them when the store misbehaves. */
#include "layer.h"

/* cp of a file is one CopyObject: no byte goes through the mount. */
static void test_cp_is_one_copy(void **state)
{
    (void)state;
    put("src", "some bytes");
    fakes3_count_reset();
    assert_int_equal(fsd_cp(D, "/src", "/dst"), 0);
    settle();
    assert_object("dst", "some bytes", 10);
    assert_object("src", "some bytes", 10);
    assert_int_equal(fakes3_count(FAKES3_COPY), 1);
    assert_int_equal(fakes3_count(FAKES3_GET), 0);
    assert_int_equal(fakes3_count(FAKES3_PUT), 0);
    assert_int_equal(fakes3_count(FAKES3_MPU_CREATE), 0);
    char mode[16];
    assert_int_equal(fakes3_meta(BUCKET, "dst", "mode", mode, sizeof mode), 0);
}

/* Above copy_threshold: UploadPartCopy of copy_part_size parts. */
static void test_cp_multipart(void **state)
{
    (void)state;
    struct fsd_options o = {.copy_threshold = 64 << 10, .copy_part_size = 32 << 10};
    remount(&o);
    fakes3_set_min_part(0);
    char *data = pattern(100 << 10, 6);
    assert_int_equal(fakes3_put(BUCKET, "src", data, 100 << 10), 0);
    fakes3_count_reset();
    assert_int_equal(fsd_cp(D, "/src", "/dst"), 0);
    settle();
    assert_object("dst", data, 100 << 10);
    assert_int_equal(fakes3_count(FAKES3_COPY), 0);
    assert_int_equal(fakes3_count(FAKES3_MPU_COPY_PART), 4);
    assert_int_equal(fakes3_count(FAKES3_MPU_COMPLETE), 1);
    assert_int_equal(fakes3_count(FAKES3_GET) + fakes3_count(FAKES3_MPU_PART), 0);
    assert_int_equal(fakes3_uploads(), 0);
    free(data);
}

/* The source rewritten by another client after cp queued its copy: the
 * copy is refused by its ETag condition, reported, and writes nothing. */
static void test_source_changed_before_copy(void **state)
{
    (void)state;
    put("src", "old");
    fakes3_set_latency(FAKES3_COPY, 200000);
    assert_int_equal(fsd_cp(D, "/src", "/dst"), 0);
    put("src", "new!");
    assert_int_equal(fsd_fsyncdir(D, "/"), -ESTALE);
    assert_false(fakes3_exists(BUCKET, "dst"));
    assert_object("src", "new!", 4);
    stop_expect(-ESTALE); /* the error on the source, at unmount */
}

/* The same for a multipart copy: a part refused, the upload aborted. */
static void test_source_changed_during_multipart(void **state)
{
    (void)state;
    struct fsd_options o = {.copy_threshold = 64 << 10, .copy_part_size = 32 << 10};
    remount(&o);
    fakes3_set_min_part(0);
    char *data = pattern(100 << 10, 7);
    assert_int_equal(fakes3_put(BUCKET, "src", data, 100 << 10), 0);
    fakes3_set_latency(FAKES3_MPU_COPY_PART, 200000);
    assert_int_equal(fsd_cp(D, "/src", "/dst"), 0);
    put("src", "changed");
    assert_int_equal(fsd_fsyncdir(D, "/"), -ESTALE);
    assert_false(fakes3_exists(BUCKET, "dst"));
    assert_int_equal(fakes3_uploads(), 0);
    free(data);
    stop_expect(-ESTALE);
}

/* A copy answered 200 with an <Error> body did not happen: reported, no
 * destination, and the queued move's source stays. */
static void test_error_in_200(void **state)
{
    (void)state;
    put("a", "data");
    fakes3_set_hostile(FAKES3_ERROR_IN_200);
    assert_int_equal(fsd_mv(D, "/a", "/b"), 0);
    assert_int_equal(fsd_fsyncdir(D, "/"), -EIO);
    fakes3_set_hostile(0);
    assert_keys("", "a");
    assert_true(fakes3_count(FAKES3_COPY) >= 1);
    stop_expect(-EIO); /* the error on the source, at unmount */
}

/* ETags longer than the client keeps: a copy pinned to a cut ETag cannot
 * match; it fails cleanly, the source intact. */
static void test_long_etag(void **state)
{
    (void)state;
    put("src", "bytes");
    fakes3_set_hostile(FAKES3_LONG_ETAG);
    assert_int_equal(fsd_cp(D, "/src", "/dst"), 0);
    assert_true(fsd_fsyncdir(D, "/") < 0);
    fakes3_set_hostile(0);
    assert_false(fakes3_exists(BUCKET, "dst"));
    assert_object("src", "bytes", 5);
    assert_true(fsd_stop(D) < 0);
    mount_b(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cp_is_one_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cp_multipart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_changed_before_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_changed_during_multipart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_in_200, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_etag, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
