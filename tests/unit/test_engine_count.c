/* Unit tests for what the control socket asks of the job engine:
 * engine_count_prefix and engine_wait_idle (engine.h), against a gated fake
 * executor: copies and deletes wait while the gate is shut; keys starting with "bad"
 * fail for good. A watchdog (30 s) turns a hang into a failure. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3cfs/engine.h"
#include "s3cfs/pool.h"

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_shut;

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "watchdog: a test hung (30 s)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

static void set_gate(bool shut)
{
    pthread_mutex_lock(&gate_lock);
    gate_shut = shut;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_lock);
}

static void pass_gate(void)
{
    pthread_mutex_lock(&gate_lock);
    while (gate_shut)
        pthread_cond_wait(&gate_cv, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
}

static int fake_exec(void *ctx, uint64_t id, const struct job_spec *spec, struct s3_error *err)
{
    (void)ctx;
    (void)id;
    pass_gate();
    if (strncmp(spec->key, "bad", 3) == 0 || strstr(spec->key, "/bad")) {
        s3_error_set(err, "AccessDenied", "no");
        return -EACCES;
    }
    return 0;
}

static int fake_del(void *ctx, const char *bucket, const char *const *keys,
                    const char *const *etags, size_t n, int *per_key_rc, struct s3_error *err)
{
    (void)ctx;
    (void)etags;
    (void)bucket;
    (void)keys;
    (void)n;
    (void)per_key_rc;
    (void)err;
    pass_gate();
    return 0;
}

static struct pool *the_pool;

static struct engine *start(void)
{
    signal(SIGALRM, on_watchdog);
    alarm(30);
    assert_int_equal(pool_new(4, 64, &the_pool), 0);
    struct engine_config cfg = {.pool = the_pool, .exec = fake_exec, .del = fake_del};
    struct engine *e;
    assert_int_equal(engine_new(&cfg, &e), 0);
    return e;
}

static void stop(struct engine *e)
{
    engine_free(e);
    pool_free(the_pool);
    alarm(0);
}

static void cp(struct engine *e, const char *bucket, const char *src, const char *dst)
{
    struct job_spec s = {
        .kind = JOB_COPY, .bucket = bucket, .key = dst, .src_bucket = bucket, .src_key = src};
    assert_int_equal(engine_submit(e, &s, NULL), 0);
}

static void rm(struct engine *e, const char *bucket, const char *key)
{
    struct job_spec s = {.kind = JOB_DELETE, .bucket = bucket, .key = key};
    assert_int_equal(engine_submit(e, &s, NULL), 0);
}

static void test_count_prefix(void **state)
{
    (void)state;
    set_gate(true);
    struct engine *e = start();
    cp(e, "bkt", "src", "dir/a");
    cp(e, "bkt", "src", "dir/sub/b");
    cp(e, "bkt", "src", "dirx/c"); /* "dir/" does not cover it */
    rm(e, "bkt", "dir/old");
    cp(e, "other", "src", "dir/a");
    assert_int_equal(engine_count_prefix(e, "bkt", "dir/"), 3);
    assert_int_equal(engine_count_prefix(e, "bkt", "dir/sub/"), 1);
    assert_int_equal(engine_count_prefix(e, "bkt", "dir"), 4); /* a plain prefix */
    assert_int_equal(engine_count_prefix(e, "bkt", ""), 4);
    assert_int_equal(engine_count_prefix(e, "other", ""), 1);
    assert_int_equal(engine_count_prefix(e, "none", ""), 0);
    /* sources are not counted: only what lands below the prefix */
    assert_int_equal(engine_count_prefix(e, "bkt", "src"), 0);
    assert_int_equal(engine_count_prefix(e, NULL, NULL), 5);
    set_gate(false);
    assert_int_equal(engine_drain(e), 0);
    assert_int_equal(engine_count_prefix(e, NULL, NULL), 0);
    assert_int_equal(engine_count_prefix(e, "bkt", "dir/"), 0);
    stop(e);
}

static atomic_bool idle_returned;

static void *idle_main(void *arg)
{
    engine_wait_idle(arg);
    atomic_store(&idle_returned, true);
    return NULL;
}

static void test_wait_idle_keeps_errors(void **state)
{
    (void)state;
    set_gate(true);
    struct engine *e = start();
    cp(e, "bkt", "src", "dir/bad1");
    cp(e, "bkt", "src", "dir/good");
    atomic_store(&idle_returned, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, idle_main, e), 0);
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    assert_false(atomic_load(&idle_returned)); /* jobs pending: still waiting */
    set_gate(false);
    pthread_join(t, NULL);
    assert_true(atomic_load(&idle_returned));
    struct engine_status st;
    engine_status(e, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.failed, 1);
    /* nothing was reported: the failure is still there for a wait or drain */
    assert_int_equal(engine_wait_prefix(e, "bkt", "dir/"), -EACCES);
    assert_int_equal(engine_wait_prefix(e, "bkt", "dir/"), 0); /* reported once */
    stop(e);
}

static void test_wait_idle_when_idle(void **state)
{
    (void)state;
    set_gate(false);
    struct engine *e = start();
    engine_wait_idle(e); /* returns at once */
    cp(e, "bkt", "src", "bad2");
    engine_wait_idle(e);
    assert_int_equal(engine_drain(e), -EACCES);
    stop(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_prefix),
        cmocka_unit_test(test_wait_idle_keeps_errors),
        cmocka_unit_test(test_wait_idle_when_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
