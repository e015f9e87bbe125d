/* dirtimes.c: directory times coalesced into few writes. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3cfs/dirtimes.h"

struct fake {
    pthread_mutex_t lock;
    int writes;
    char last[64];
    struct timespec mtime, ctime;
    int has_mtime;
    int answer; /* what the write returns */
};

static int fake_write(void *ctx, const char *path, const struct timespec *mtime,
                      const struct timespec *ctime)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    f->writes++;
    snprintf(f->last, sizeof f->last, "%s", path);
    f->has_mtime = mtime != NULL;
    if (mtime)
        f->mtime = *mtime;
    f->ctime = *ctime;
    int rc = f->answer;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static int writes(struct fake *f)
{
    pthread_mutex_lock(&f->lock);
    int n = f->writes;
    pthread_mutex_unlock(&f->lock);
    return n;
}

static void test_coalesced_flush(void **state)
{
    (void)state;
    struct fake f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct dirtimes *d;
    assert_int_equal(dirtimes_new(fake_write, &f, &d), 0);
    for (int i = 0; i < 1000; i++) {
        char p[32];
        snprintf(p, sizeof p, "/d/f%d", i);
        dirtimes_touch_parent(d, p);
    }
    struct stat st = {0};
    dirtimes_apply(d, "/d", &st); /* shown at once */
    assert_true(st.st_mtim.tv_sec > 0);
    assert_int_equal(dirtimes_flush(d, "/d"), 0);
    assert_int_equal(writes(&f), 1); /* 1000 changes, one write */
    assert_string_equal(f.last, "/d");
    assert_true(f.has_mtime);
    assert_int_equal(f.mtime.tv_sec, st.st_mtim.tv_sec);
    assert_int_equal(f.mtime.tv_nsec, st.st_mtim.tv_nsec);
    assert_int_equal(dirtimes_flush(d, NULL), 0);
    assert_int_equal(writes(&f), 1); /* clean now */
    /* a rename of the directory itself: ctime only */
    dirtimes_touch_ctime(d, "/e");
    assert_int_equal(dirtimes_flush(d, "/e"), 0);
    assert_false(f.has_mtime);
    dirtimes_free(d);
}

static void test_written_after_quiet(void **state)
{
    (void)state;
    struct fake f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct dirtimes *d;
    assert_int_equal(dirtimes_new(fake_write, &f, &d), 0);
    dirtimes_touch_parent(d, "/q/x");
    usleep(DIRTIMES_QUIET_MS * 1000 / 2);
    assert_int_equal(writes(&f), 0); /* not quiet long enough */
    for (int i = 0; i < 40 && writes(&f) == 0; i++)
        usleep(100 * 1000);
    assert_int_equal(writes(&f), 1);
    dirtimes_free(d);
    assert_int_equal(writes(&f), 1); /* nothing left for the exit */
}

static void test_no_marker_and_gone(void **state)
{
    (void)state;
    struct fake f = {.lock = PTHREAD_MUTEX_INITIALIZER, .answer = 1};
    struct dirtimes *d;
    assert_int_equal(dirtimes_new(fake_write, &f, &d), 0);
    dirtimes_touch_parent(d, "/m/x");
    assert_int_equal(dirtimes_flush(d, NULL), 0);
    struct stat st = {0};
    dirtimes_apply(d, "/m", &st); /* no marker: kept in memory */
    assert_true(st.st_mtim.tv_sec > 0);
    f.answer = -ENOENT;
    dirtimes_touch_parent(d, "/g/x");
    assert_int_equal(dirtimes_flush(d, "/g"), 0);
    memset(&st, 0, sizeof st);
    dirtimes_apply(d, "/g", &st); /* gone: forgotten */
    assert_int_equal(st.st_mtim.tv_sec, 0);
    f.answer = -EIO; /* a failure stays dirty and is reported */
    dirtimes_touch_parent(d, "/h/x");
    assert_int_equal(dirtimes_flush(d, "/h"), -EIO);
    f.answer = 0;
    assert_int_equal(dirtimes_flush(d, "/h"), 0);
    /* forget_tree: at and below, not beside */
    dirtimes_touch_parent(d, "/t/a/x");
    dirtimes_touch_parent(d, "/tb/x");
    dirtimes_forget_tree(d, "/t");
    int before = writes(&f);
    assert_int_equal(dirtimes_flush(d, NULL), 0);
    assert_int_equal(writes(&f), before + 1);
    assert_string_equal(f.last, "/tb");
    /* an older time never overrides a newer one */
    st.st_mtim.tv_sec = st.st_ctim.tv_sec = INT32_MAX;
    dirtimes_apply(d, "/tb", &st);
    assert_int_equal(st.st_mtim.tv_sec, INT32_MAX);
    dirtimes_free(d);
}

/* a foreground rewrite holds the writer off and carries the times */
static void test_hold(void **state)
{
    (void)state;
    struct fake f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct dirtimes *d;
    assert_int_equal(dirtimes_new(fake_write, &f, &d), 0);
    dirtimes_touch_parent(d, "/k/x");
    uint64_t t = dirtimes_hold(d, "/k");
    assert_true(t != 0);
    assert_int_equal(dirtimes_flush(d, "/k"), 0);
    assert_int_equal(writes(&f), 0); /* held: not written behind the rewrite */
    dirtimes_release(d, "/k", t, true);
    assert_int_equal(dirtimes_flush(d, "/k"), 0);
    assert_int_equal(writes(&f), 0); /* the rewrite carried them */
    t = dirtimes_hold(d, "/k");
    dirtimes_touch_parent(d, "/k/y"); /* changed during the rewrite */
    dirtimes_release(d, "/k", t, true);
    assert_int_equal(dirtimes_flush(d, "/k"), 0);
    assert_int_equal(writes(&f), 1);
    dirtimes_free(d);
}

static void test_bounded(void **state)
{
    (void)state;
    struct fake f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct dirtimes *d;
    assert_int_equal(dirtimes_new(fake_write, &f, &d), 0);
    for (int i = 0; i < DIRTIMES_MAX + 100; i++) {
        char p[32];
        snprintf(p, sizeof p, "/d%d/x", i);
        dirtimes_touch_parent(d, p);
    }
    assert_int_equal(dirtimes_flush(d, NULL), 0);
    assert_true(writes(&f) <= DIRTIMES_MAX); /* the oldest were dropped */
    assert_true(writes(&f) >= DIRTIMES_MAX - 1);
    dirtimes_free(d);
}

/* Many directories (the table grows several times over): each one's
 * times are found by its path, and forgetting one leaves the others. */
static void test_many_found(void **state)
{
    (void)state;
    struct fake f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct dirtimes *d;
    char p[32];
    assert_int_equal(dirtimes_new(fake_write, &f, &d), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(p, sizeof p, "/m%d/x", i);
        dirtimes_touch_parent(d, p);
    }
    dirtimes_forget_tree(d, "/m7");
    for (int i = 0; i < 1000; i++) {
        struct stat st = {0};
        snprintf(p, sizeof p, "/m%d", i);
        dirtimes_apply(d, p, &st);
        assert_int_equal(st.st_mtim.tv_sec != 0, i != 7);
        assert_int_equal(st.st_ctim.tv_sec != 0, i != 7);
    }
    dirtimes_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coalesced_flush),
        cmocka_unit_test(test_written_after_quiet),
        cmocka_unit_test(test_no_marker_and_gone),
        cmocka_unit_test(test_hold),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_many_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
