/* node.c through the driver: open files, their stage, uploads, the
 * server-side copy of copy_file_range, files unlinked while open. */
#include "layer.h"

/* Issue 11 §6 (8777dda): copy_file_range of the first half, then a write
 * after it, before close: the copied bytes stay (load_stage made a second,
 * empty stage over the fetched prefix). */
static void test_partial_copy_then_write(void **state)
{
    (void)state;
    char *src = pattern(100000, 1);
    assert_int_equal(fakes3_put(BUCKET, "half_src", src, 100000), 0);
    struct fsd_file *in, *out;
    assert_int_equal(fsd_open(D, "/half_src", O_RDONLY, &in), 0);
    assert_int_equal(fsd_create(D, "/half_dst", 0644, &out), 0);
    assert_int_equal(fsd_copy_file_range(in, 0, out, 0, 50000), 50000);
    assert_int_equal(fsd_write(out, "TAIL", 4, 50000), 4);
    assert_int_equal(fsd_close(out), 0);
    assert_int_equal(fsd_close(in), 0);
    settle();
    memcpy(src + 50000, "TAIL", 4);
    assert_object("half_dst", src, 50004);
    assert_file("/half_dst", src, 50004);
    free(src);
}

/* An open file unlinked (libfuse hides it): its descriptor still reads and
 * writes, fstat says nlink 0, and nothing of it is left in S3, under
 * either name. */
static void test_unlink_open_file(void **state)
{
    (void)state;
    assert_int_equal(fakes3_put(BUCKET, "f", "hello", 5), 0);
    struct fsd_file *f;
    struct stat st;
    char buf[32];
    assert_int_equal(fsd_open(D, "/f", O_RDWR, &f), 0);
    assert_int_equal(fsd_unlink(D, "/f"), 0);
    assert_int_equal(fsd_getattr(D, "/f", &st), -ENOENT);
    assert_int_equal(fsd_read(f, buf, sizeof buf, 0), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(fsd_write(f, " world", 6, 5), 6);
    assert_int_equal(fsd_fstat(f, &st), 0);
    assert_int_equal(st.st_size, 11);
    assert_int_equal(st.st_nlink, 0);
    assert_int_equal(fsd_fsync(f), 0);
    assert_int_equal(fsd_read(f, buf, sizeof buf, 0), 11);
    assert_memory_equal(buf, "hello world", 11);
    assert_int_equal(fsd_close(f), 0);
    settle();
    assert_keys("", "");
    assert_int_equal(fakes3_count(FAKES3_PUT) + fakes3_count(FAKES3_MPU_CREATE), 0);
}

/* Written data lands once, on close; above multipart_threshold in parts
 * of part_size. */
static void test_upload_single_and_multipart(void **state)
{
    (void)state;
    struct fsd_options o = {.multipart_threshold = 64 << 10, .part_size = 64 << 10};
    remount(&o);
    fakes3_set_min_part(0);
    char *big = pattern(300 << 10, 2);
    assert_int_equal(fsd_put_file(D, "/small", "abc", 3), 0);
    assert_int_equal(fakes3_count(FAKES3_PUT), 1);
    struct fsd_file *f;
    assert_int_equal(fsd_create(D, "/big", 0644, &f), 0);
    for (size_t off = 0; off < (300 << 10); off += 20 << 10) /* 15 writes */
        assert_int_equal(fsd_write(f, big + off, 20 << 10, (off_t)off), 20 << 10);
    assert_int_equal(fakes3_count(FAKES3_PUT) + fakes3_count(FAKES3_MPU_PART), 1);
    assert_int_equal(fsd_close(f), 0);
    assert_int_equal(fakes3_count(FAKES3_MPU_CREATE), 1);
    assert_int_equal(fakes3_count(FAKES3_MPU_PART), 5); /* 300 KiB in 64 KiB parts */
    assert_int_equal(fakes3_count(FAKES3_MPU_COMPLETE), 1);
    assert_int_equal(fakes3_count(FAKES3_PUT), 1);
    assert_object("big", big, 300 << 10);
    assert_object("small", "abc", 3);
    assert_int_equal(fakes3_uploads(), 0);
    free(big);
}

/* Parts that fail for good: close reports it, every upload begun is
 * aborted (no parts linger), no object appears. */
static void test_upload_failure_reported(void **state)
{
    (void)state;
    struct fsd_options o = {.multipart_threshold = 64 << 10, .part_size = 64 << 10};
    remount(&o);
    fakes3_set_min_part(0);
    char *big = pattern(200 << 10, 3);
    fakes3_fail_rate(FAKES3_MPU_PART, 1.0, "AccessDenied", 403, 1);
    int rc = fsd_put_file(D, "/big", big, 200 << 10);
    assert_int_equal(rc, -EACCES);
    assert_false(fakes3_exists(BUCKET, "big"));
    assert_int_equal(fakes3_uploads(), 0);
    assert_true(fakes3_count(FAKES3_MPU_CREATE) >= 1);
    assert_int_equal(fakes3_count(FAKES3_MPU_ABORT), fakes3_count(FAKES3_MPU_CREATE));
    assert_int_equal(fakes3_count(FAKES3_MPU_COMPLETE), 0);
    free(big);
}

/* A read that waits for a queued copy onto its file, which failed with
 * -ESTALE (the copy's precondition), follows the version in the store and
 * reads it through the handle's read-ahead, made at that point: the second
 * read path once had no read-ahead yet (NULL) and crashed. */
static void test_read_after_failed_copy_onto_file(void **state)
{
    (void)state;
    assert_int_equal(fakes3_put(BUCKET, "cpdst", "old", 3), 0);
    assert_int_equal(fakes3_put(BUCKET, "cpsrc", "newer", 5), 0);
    fakes3_fail_rate(FAKES3_COPY, 1.0, "PreconditionFailed", 412, 1);
    assert_int_equal(fsd_cp(D, "/cpsrc", "/cpdst"), 0);
    struct fsd_file *f;
    char buf[16];
    assert_int_equal(fsd_open(D, "/cpdst", O_RDONLY, &f), 0);
    /* the copy's failure is reported (once) by the next wait; this read
     * follows the version in the store: the old bytes */
    assert_int_equal(fsd_read(f, buf, sizeof buf, 0), 3);
    assert_memory_equal(buf, "old", 3);
    fsd_close(f);
    fakes3_fail_rate(FAKES3_COPY, 0, NULL, 0, 1);
    /* the failed copy stays listed: the stop reports it */
    assert_int_equal(fsd_stop(D), -ESTALE);
    mount_b(NULL);
}

/* Reads of an object: ranged GETs, the bytes as stored. */
static void test_read_ranges(void **state)
{
    (void)state;
    char *data = pattern(70000, 4);
    assert_int_equal(fakes3_put(BUCKET, "r", data, 70000), 0);
    struct fsd_file *f;
    char buf[1000];
    assert_int_equal(fsd_open(D, "/r", O_RDONLY, &f), 0);
    assert_int_equal(fsd_read(f, buf, sizeof buf, 65000), 1000);
    assert_memory_equal(buf, data + 65000, 1000);
    assert_int_equal(fsd_read(f, buf, sizeof buf, 69500), 500);
    assert_int_equal(fsd_read(f, buf, sizeof buf, 70000), 0);
    assert_int_equal(fsd_close(f), 0);
    assert_true(fakes3_count(FAKES3_GET) >= 1);
    assert_int_equal(fakes3_count(FAKES3_PUT), 0); /* reading uploads nothing */
    free(data);
}

/* Many files open at once (the node table grows several times over):
 * readdir shows each one not uploaded yet, and a rename of their
 * directory takes every one along, so that each lands under its new name
 * and none under the old one. */
#define MANY 300
static void test_many_open_files_follow_rename(void **state)
{
    (void)state;
    static struct fsd_file *f[MANY];
    char path[64], names[MANY * 8];
    size_t n;
    assert_int_equal(fsd_mkdir(D, "/many", 0755), 0);
    for (int i = 0; i < MANY; i++) {
        snprintf(path, sizeof path, "/many/f%d", i);
        assert_int_equal(fsd_create(D, path, 0644, &f[i]), 0);
        assert_int_equal(fsd_write(f[i], path, strlen(path), 0), (ssize_t)strlen(path));
    }
    assert_int_equal(fsd_readdir(D, "/many", names, sizeof names, &n), 0);
    assert_int_equal(n, MANY);
    assert_int_equal(fsd_rename(D, "/many", "/moved", 0), 0);
    for (int i = 0; i < MANY; i++) {
        snprintf(path, sizeof path, "/many/f%d", i);
        assert_int_equal(fsd_write(f[i], "+", 1, (off_t)strlen(path)), 1);
        assert_int_equal(fsd_close(f[i]), 0);
    }
    settle();
    assert_keys("many/", "");
    for (int i = 0; i < MANY; i++) {
        char want[64];
        snprintf(want, sizeof want, "/many/f%d+", i);
        snprintf(path, sizeof path, "moved/f%d", i);
        assert_object(path, want, strlen(want));
    }
}

/* Whether an open of path keeps the kernel's pages (then closed). */
static bool kept(const char *path, int flags)
{
    struct fsd_file *f;
    assert_int_equal(fsd_open(D, path, flags, &f), 0);
    bool k = fsd_kept_pages(f);
    assert_int_equal(fsd_close(f), 0);
    return k;
}

/* keep_cache (pagekeep.h): the second open of an unchanged object keeps
 * the pages; a write, a truncate by name, a rename onto the name, an
 * O_TRUNC open and another client's version (lifetimes 0) drop them. */
static void test_keep_cache_answers(void **state)
{
    (void)state;
    struct fsd_options o = {.coherent = true};
    remount(&o);
    assert_int_equal(fakes3_put(BUCKET, "k", "version one", 11), 0);
    assert_false(kept("/k", O_RDONLY)); /* nothing cached yet */
    assert_true(kept("/k", O_RDONLY));
    struct fsd_file *f;
    assert_int_equal(fsd_open(D, "/k", O_RDWR, &f), 0);
    assert_int_equal(fsd_write(f, "V", 1, 0), 1);
    assert_int_equal(fsd_close(f), 0);
    assert_false(kept("/k", O_RDONLY)); /* written: a new version */
    assert_true(kept("/k", O_RDONLY));
    assert_int_equal(fsd_truncate(D, "/k", 5), 0);
    assert_false(kept("/k", O_RDONLY));
    assert_true(kept("/k", O_RDONLY));
    assert_false(kept("/k", O_RDWR | O_TRUNC)); /* emptied: no pages to keep */
    assert_int_equal(fakes3_put(BUCKET, "k", "other client", 12), 0);
    assert_false(kept("/k", O_RDONLY)); /* another version */
    assert_true(kept("/k", O_RDONLY));
    assert_int_equal(fakes3_put(BUCKET, "j", "other client", 12), 0);
    assert_false(kept("/j", O_RDONLY));
    assert_true(kept("/j", O_RDONLY));
    assert_int_equal(fsd_rename(D, "/k", "/j", 0), 0); /* same bytes, same ETag */
    settle();
    assert_false(kept("/j", O_RDONLY)); /* the name's pages are another inode's */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_partial_copy_then_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlink_open_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_single_and_multipart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_failure_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_after_failed_copy_onto_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_open_files_follow_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_cache_answers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
