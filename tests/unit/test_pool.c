/* Unit tests for the worker pool: exactly-once, FIFO, groups, back-pressure,
 * the concurrency limit, draining, and tasks that submit into a full queue
 * (a watchdog fails the test instead of hanging if that deadlocks). */
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

#include "s3cfs/pool.h"

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "watchdog: the pool deadlocked (no progress in 10 s)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

/* Fail the whole test program if the test has not disarmed it in time. */
static void watchdog_arm(void)
{
    signal(SIGALRM, on_watchdog);
    alarm(10);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---------- every task runs exactly once ---------- */

#define MANY 10000

static atomic_int hits[MANY];

static int hit(void *arg)
{
    atomic_fetch_add(&hits[(intptr_t)arg], 1);
    return 0;
}

static void test_many_tasks_run_once(void **state)
{
    (void)state;
    struct pool *p;
    assert_int_equal(pool_new(8, 64, &p), 0);
    for (intptr_t i = 0; i < MANY; i++)
        assert_int_equal(pool_submit(p, hit, (void *)i), 0);
    pool_free(p); /* drains */
    for (int i = 0; i < MANY; i++)
        assert_int_equal(atomic_load(&hits[i]), 1);
}

/* ---------- FIFO with one worker ---------- */

static int order[200];
static int norder; /* written by the only worker, read after pool_free joined it */

static int record(void *arg)
{
    order[norder++] = (int)(intptr_t)arg;
    return 0;
}

static void test_fifo_one_thread(void **state)
{
    (void)state;
    struct pool *p;
    assert_int_equal(pool_new(1, 8, &p), 0);
    for (intptr_t i = 0; i < 200; i++)
        assert_int_equal(pool_submit(p, record, (void *)i), 0);
    pool_free(p);
    assert_int_equal(norder, 200);
    for (int i = 0; i < 200; i++)
        assert_int_equal(order[i], i);
}

/* ---------- groups ---------- */

struct gtask {
    int rc;
    long sleep_ms;
    atomic_bool done;
};

static int gtask_run(void *arg)
{
    struct gtask *t = arg;
    sleep_ms(t->sleep_ms);
    atomic_store(&t->done, true);
    return t->rc;
}

static void test_group_first_error(void **state)
{
    (void)state;
    struct pool *p;
    assert_int_equal(pool_new(1, 4, &p), 0); /* one worker: "first" is deterministic */
    struct gtask t[10] = {0};
    t[3].rc = -EIO;
    t[7].rc = -ENOENT;
    struct pool_group g;
    pool_group_init(&g);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pool_submit_group(p, &g, gtask_run, &t[i]), 0);
    assert_int_equal(pool_group_wait(&g), -EIO);
    for (int i = 0; i < 10; i++)
        assert_true(atomic_load(&t[i].done));
    assert_int_equal(pool_group_wait(&g), -EIO); /* the result persists */
    pool_group_destroy(&g);
    pool_free(p);
}

static void test_group_waits_for_all(void **state)
{
    (void)state;
    struct pool *p;
    assert_int_equal(pool_new(4, 8, &p), 0);
    struct gtask a[20] = {0}, b[20] = {0};
    struct pool_group ga, gb, empty;
    pool_group_init(&ga);
    pool_group_init(&gb);
    pool_group_init(&empty);
    assert_int_equal(pool_group_wait(&empty), 0); /* nothing submitted: no wait */
    for (int i = 0; i < 20; i++) {
        a[i].sleep_ms = i % 3;
        b[i].sleep_ms = 5;
        b[i].rc = i == 19 ? -EPERM : 0;
        assert_int_equal(pool_submit_group(p, &ga, gtask_run, &a[i]), 0);
        assert_int_equal(pool_submit_group(p, &gb, gtask_run, &b[i]), 0);
    }
    assert_int_equal(pool_group_wait(&ga), 0); /* gb's error is not ga's */
    for (int i = 0; i < 20; i++)
        assert_true(atomic_load(&a[i].done));
    assert_int_equal(pool_group_wait(&gb), -EPERM);
    for (int i = 0; i < 20; i++)
        assert_true(atomic_load(&b[i].done));
    struct pool *other;
    assert_int_equal(pool_new(1, 1, &other), 0);
    assert_int_equal(pool_submit_group(other, &ga, gtask_run, &a[0]), -EINVAL);
    pool_free(other);
    pool_group_destroy(&ga);
    pool_group_destroy(&gb);
    pool_free(p);
}

/* ---------- back-pressure ---------- */

/* A task that holds its worker until the test opens the gate. */
static atomic_bool gate_open;
static atomic_int gated_done;

static int gated(void *arg)
{
    (void)arg;
    while (!atomic_load(&gate_open))
        sleep_ms(1);
    atomic_fetch_add(&gated_done, 1);
    return 0;
}

/* One worker held by a gated task and a full queue of 4 gated tasks. */
static struct pool *full_pool(void)
{
    struct pool *p;
    struct pool_stats st;
    atomic_store(&gate_open, false);
    atomic_store(&gated_done, 0);
    assert_int_equal(pool_new(1, 4, &p), 0);
    assert_int_equal(pool_submit(p, gated, NULL), 0);
    do { /* until the worker took the first one */
        sleep_ms(1);
        pool_get_stats(p, &st);
    } while (st.running != 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pool_try_submit(p, gated, NULL), 0);
    pool_get_stats(p, &st);
    assert_int_equal(st.queued, 4);
    assert_int_equal(st.running, 1);
    return p;
}

static atomic_bool submit_returned;
static int submit_rc; /* read after joining the submitter */

/* cmocka's asserts are for the test's own thread: report through submit_rc */
static void *submitter(void *arg)
{
    submit_rc = pool_submit(arg, gated, NULL);
    atomic_store(&submit_returned, true);
    return NULL;
}

static void test_submit_blocks_when_full(void **state)
{
    (void)state;
    watchdog_arm();
    struct pool *p = full_pool();
    atomic_store(&submit_returned, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, submitter, p), 0);
    sleep_ms(100);
    /* it cannot have returned: nothing left the queue while the gate is shut */
    assert_false(atomic_load(&submit_returned));
    atomic_store(&gate_open, true);
    pthread_join(th, NULL);
    assert_true(atomic_load(&submit_returned));
    assert_int_equal(submit_rc, 0);
    pool_free(p);
    assert_int_equal(atomic_load(&gated_done), 6);
    alarm(0);
}

static void test_try_submit_eagain(void **state)
{
    (void)state;
    watchdog_arm();
    struct pool *p = full_pool();
    assert_int_equal(pool_try_submit(p, gated, NULL), -EAGAIN);
    atomic_store(&gate_open, true);
    struct pool_stats st;
    do {
        sleep_ms(1);
        pool_get_stats(p, &st);
    } while (st.completed < 5);
    assert_int_equal(st.queued, 0);
    assert_int_equal(pool_try_submit(p, gated, NULL), 0);
    pool_free(p);
    assert_int_equal(atomic_load(&gated_done), 6);
    alarm(0);
}

/* ---------- tasks submitting tasks into a full queue ---------- */

static struct pool *nest_pool;
static atomic_int inner_runs;

static int inner(void *arg)
{
    (void)arg;
    atomic_fetch_add(&inner_runs, 1);
    return 0;
}

/* Submits 16 inner tasks to a group of its own and waits for them. */
static int outer(void *arg)
{
    (void)arg;
    struct pool_group g;
    pool_group_init(&g);
    for (int i = 0; i < 16; i++)
        pool_submit_group(nest_pool, &g, inner, NULL);
    int rc = pool_group_wait(&g);
    pool_group_destroy(&g);
    return rc;
}

static void test_nested_submit_no_deadlock(void **state)
{
    (void)state;
    watchdog_arm();
    int limits[] = {4, 1};
    for (int l = 0; l < 2; l++) {
        atomic_store(&inner_runs, 0);
        assert_int_equal(pool_new(4, 4, &nest_pool), 0);
        pool_set_limit(nest_pool, limits[l]);
        struct pool_group g;
        pool_group_init(&g);
        for (int i = 0; i < 64; i++)
            assert_int_equal(pool_submit_group(nest_pool, &g, outer, NULL), 0);
        assert_int_equal(pool_group_wait(&g), 0);
        assert_int_equal(atomic_load(&inner_runs), 64 * 16);
        pool_group_destroy(&g);
        pool_free(nest_pool);
    }
    alarm(0);
}

/* ---------- the concurrency limit ---------- */

static atomic_int cur, max_seen;
static atomic_int want_together; /* > 0: tasks wait until that many run at once */

static int tracked(void *arg)
{
    (void)arg;
    int now = atomic_fetch_add(&cur, 1) + 1;
    int m = atomic_load(&max_seen);
    while (now > m && !atomic_compare_exchange_weak(&max_seen, &m, now))
        ;
    int rc = 0;
    if (atomic_load(&want_together) > 0) {
        /* a rendezvous: proves that many really run at once (5 s at most) */
        int waited = 0;
        while (atomic_load(&max_seen) < atomic_load(&want_together) && waited++ < 5000)
            sleep_ms(1);
        rc = atomic_load(&max_seen) < atomic_load(&want_together) ? -ETIMEDOUT : 0;
    } else {
        sleep_ms(1);
    }
    atomic_fetch_sub(&cur, 1);
    return rc;
}

static int run_tracked(struct pool *p, int n)
{
    struct pool_group g;
    pool_group_init(&g);
    atomic_store(&max_seen, 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(pool_submit_group(p, &g, tracked, NULL), 0);
    int rc = pool_group_wait(&g);
    pool_group_destroy(&g);
    return rc;
}

static void test_limit(void **state)
{
    (void)state;
    struct pool *p;
    struct pool_stats st;
    assert_int_equal(pool_new(8, 16, &p), 0);
    pool_set_limit(p, 1);
    atomic_store(&want_together, 0);
    assert_int_equal(run_tracked(p, 100), 0);
    assert_int_equal(atomic_load(&max_seen), 1);

    pool_set_limit(p, 4); /* raising it lets exactly 4 run together */
    atomic_store(&want_together, 4);
    assert_int_equal(run_tracked(p, 4), 0);
    assert_int_equal(atomic_load(&max_seen), 4);

    pool_set_limit(p, 2);
    atomic_store(&want_together, 0);
    assert_int_equal(run_tracked(p, 100), 0);
    assert_true(atomic_load(&max_seen) <= 2);

    pool_set_limit(p, 0);
    pool_get_stats(p, &st);
    assert_int_equal(st.limit, 1);
    pool_set_limit(p, 100);
    pool_get_stats(p, &st);
    assert_int_equal(st.limit, 8);
    assert_int_equal(st.nthreads, 8);
    assert_int_equal(st.completed, 204);
    pool_free(p);
}

/* ---------- pool_free drains ---------- */

static struct pool *chain_pool;
static atomic_int slow_done, chain_len;

static int slow(void *arg)
{
    (void)arg;
    sleep_ms(1);
    atomic_fetch_add(&slow_done, 1);
    return 0;
}

/* Each link submits the next while the pool is already draining. */
static int chain(void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&chain_len, 1) + 1 < 20)
        pool_submit(chain_pool, chain, NULL);
    return 0;
}

static void test_free_drains(void **state)
{
    (void)state;
    watchdog_arm();
    atomic_store(&slow_done, 0);
    atomic_store(&chain_len, 0);
    assert_int_equal(pool_new(2, 64, &chain_pool), 0);
    assert_int_equal(pool_submit(chain_pool, chain, NULL), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(pool_submit(chain_pool, slow, NULL), 0);
    pool_free(chain_pool);
    assert_int_equal(atomic_load(&slow_done), 50);
    assert_int_equal(atomic_load(&chain_len), 20);
    alarm(0);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct pool *p = NULL;
    assert_int_equal(pool_new(0, 4, &p), -EINVAL);
    assert_int_equal(pool_new(2, 0, &p), -EINVAL);
    pool_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_tasks_run_once),
        cmocka_unit_test(test_fifo_one_thread),
        cmocka_unit_test(test_group_first_error),
        cmocka_unit_test(test_group_waits_for_all),
        cmocka_unit_test(test_submit_blocks_when_full),
        cmocka_unit_test(test_try_submit_eagain),
        cmocka_unit_test(test_nested_submit_no_deadlock),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_free_drains),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
