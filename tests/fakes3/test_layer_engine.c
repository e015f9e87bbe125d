/* fsqueue.c (and the job engine under it) through the driver: chains of
 * queued moves, concurrent tree moves against max_pending, batched
 * deletes, failures reported by fsync. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "layer.h"

/* mv a b; mv b c ends with only c, below and above copy_threshold
 * (c4c8480: a multipart copy of a source known by name only deleted c as
 * "changed during the copy"). */
static void chain(size_t size)
{
    char *data = pattern(size, 5);
    assert_int_equal(fakes3_put(BUCKET, "a", data, size), 0);
    assert_int_equal(fsd_mv(D, "/a", "/b"), 0);
    assert_int_equal(fsd_mv(D, "/b", "/c"), 0);
    struct stat st;
    assert_int_equal(fsd_getattr(D, "/a", &st), -ENOENT);
    assert_int_equal(fsd_getattr(D, "/b", &st), -ENOENT);
    assert_int_equal(fsd_getattr(D, "/c", &st), 0);
    assert_int_equal(st.st_size, size);
    settle();
    assert_keys("", "c");
    assert_object("c", data, size);
    free(data);
}

static void test_chain_small(void **state)
{
    (void)state;
    chain(4096);
}

static void test_chain_multipart(void **state)
{
    (void)state;
    struct fsd_options o = {.copy_threshold = 64 << 10, .copy_part_size = 32 << 10};
    remount(&o);
    fakes3_set_min_part(0);
    chain(100 << 10);
    assert_true(fakes3_count(FAKES3_MPU_COPY_PART) >= 8); /* two copies of 4 parts */
    assert_int_equal(fakes3_uploads(), 0);
}

#define MOVERS 5
#define FILES  200

static void *mover(void *arg)
{
    char from[32], to[32];
    int i = (int)(intptr_t)arg;
    snprintf(from, sizeof from, "/p%d/d", i);
    snprintf(to, sizeof to, "/p%d/e", i);
    return (void *)(intptr_t)fsd_mv(D, from, to);
}

/* Issue 11 §6 (f3f949b): concurrent tree moves whose held deletes fill
 * max_pending all finish (each blocked submitter releases the held groups),
 * within a bounded time; every file moved. */
static void test_concurrent_tree_moves(void **state)
{
    (void)state;
    struct fsd_options o = {.max_pending = 16};
    remount(&o);
    char key[64];
    for (int i = 0; i < MOVERS; i++) {
        for (int j = 0; j < FILES; j++) {
            snprintf(key, sizeof key, "p%d/d/f%03d", i, j);
            assert_int_equal(fakes3_put(BUCKET, key, key, strlen(key)), 0);
        }
    }
    fakes3_set_latency(FAKES3_COPY, 300);
    pthread_t t[MOVERS];
    for (int i = 0; i < MOVERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, mover, (void *)(intptr_t)i), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    for (int i = 0; i < MOVERS; i++) {
        void *rc;
        if (pthread_timedjoin_np(t[i], &rc, &until) != 0) {
            /* a deadlock: teardown would wait for it too */
            fprintf(stderr, "tree moves still blocked after 60 s: deadlock\n");
            _exit(1);
        }
        assert_int_equal((int)(intptr_t)rc, 0);
    }
    settle();
    for (int i = 0; i < MOVERS; i++) {
        char pre[16], keys[8192];
        snprintf(pre, sizeof pre, "p%d/d/", i);
        assert_int_equal(fakes3_keys(BUCKET, pre, keys, sizeof keys), 0);
        snprintf(pre, sizeof pre, "p%d/e/", i);
        assert_int_equal(fakes3_keys(BUCKET, pre, keys, sizeof keys), FILES);
    }
    assert_object("p3/e/f123", "p3/d/f123", 9);
}

/* rm of many files: DeleteObjects batches, no DeleteObject each. */
static void test_deletes_batched(void **state)
{
    (void)state;
    char path[32];
    for (int j = 0; j < 50; j++) {
        snprintf(path, sizeof path, "d/f%02d", j);
        assert_int_equal(fakes3_put(BUCKET, path, "x", 1), 0);
    }
    char names[512];
    size_t n;
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_int_equal(n, 50);
    for (int j = 0; j < 50; j++) {
        snprintf(path, sizeof path, "/d/f%02d", j);
        assert_int_equal(fsd_unlink(D, path), 0);
    }
    assert_int_equal(fsd_readdir(D, "/d", names, sizeof names, &n), 0);
    assert_int_equal(n, 0); /* shown gone at once */
    settle();
    assert_keys("d/", "");
    assert_int_equal(fakes3_count(FAKES3_DELETE), 0);
    assert_true(fakes3_count(FAKES3_DELETE_BATCH) >= 1);
    assert_true(fakes3_count(FAKES3_DELETE_BATCH) <= 5);
}

/* A queued copy that fails for good is reported by the next fsync of the
 * directory, once; a move's source is kept. */
static void test_failed_move_keeps_source(void **state)
{
    (void)state;
    assert_int_equal(fakes3_put(BUCKET, "a", "data", 4), 0);
    fakes3_fail_rate(FAKES3_COPY, 1.0, "AccessDenied", 403, 1);
    assert_int_equal(fsd_mv(D, "/a", "/b"), 0); /* queued */
    assert_int_equal(fsd_fsyncdir(D, "/"), -EACCES);
    assert_int_equal(fsd_fsyncdir(D, "/"), 0);
    fakes3_fail_rate(FAKES3_COPY, 0, NULL, 0, 0);
    assert_keys("", "a");
    assert_object("a", "data", 4);
    /* the copy's error on its source (a) is still unreported: the
     * unmount's drain returns it, so nothing fails silently */
    stop_expect(-EACCES);
}

/* A copy throttled once (503 SlowDown, after the client's retries) is run
 * again by the engine and lands; the throttle reached the engine. */
static void test_throttled_copy_rerun(void **state)
{
    (void)state;
    char from[32], to[32];
    for (int j = 0; j < 20; j++) {
        snprintf(from, sizeof from, "s%02d", j);
        put(from, from);
    }
    fakes3_count_reset();
    fakes3_fail_nth(FAKES3_COPY, 3, "SlowDown", 503);
    for (int j = 0; j < 20; j++) {
        snprintf(from, sizeof from, "/s%02d", j);
        snprintf(to, sizeof to, "/t%02d", j);
        assert_int_equal(fsd_cp(D, from, to), 0);
    }
    settle();
    assert_int_equal(fakes3_count(FAKES3_COPY), 21);
    assert_int_equal(atomic_load(&s3_client_stats(fsd_ctx(D)->s3)->throttled), 1);
    assert_int_equal(fakes3_keys(BUCKET, "t", from, sizeof from), 20);
    assert_object("t07", "s07", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_multipart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_tree_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletes_batched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_move_keeps_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttled_copy_rerun, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
