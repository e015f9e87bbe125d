/* Unit tests for the retry policy: full-jitter backoff bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "s3cfs/retry.h"

static void test_ceiling_doubles_then_caps(void **state)
{
    (void)state;
    struct retry_policy p;
    retry_policy_default(&p);
    /* the wait is rnd modulo the ceiling: ceiling-1 is the largest, ceiling wraps to 0 */
    int expect[] = {50, 100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000};
    for (int a = 1; a <= 10; a++) {
        int c = expect[a - 1];
        assert_int_equal(retry_backoff_ms(&p, a, false, (uint32_t)(c - 1)), c - 1);
        assert_int_equal(retry_backoff_ms(&p, a, false, (uint32_t)c), 0);
        assert_int_equal(retry_backoff_ms(&p, a, false, 0), 0);
    }
}

static void test_throttle_starts_higher(void **state)
{
    (void)state;
    struct retry_policy p;
    retry_policy_default(&p);
    assert_int_equal(retry_backoff_ms(&p, 1, true, 199), 199);
    assert_int_equal(retry_backoff_ms(&p, 1, true, 200), 0);
    assert_int_equal(retry_backoff_ms(&p, 3, true, 799), 799);
    assert_int_equal(retry_backoff_ms(&p, 30, true, 9999), 9999);
    assert_int_equal(retry_backoff_ms(&p, 30, true, 10000), 0);
}

static void test_jitter_spreads(void **state)
{
    (void)state;
    struct retry_policy p;
    retry_policy_default(&p);
    int lo = 0, hi = 0;
    for (int i = 0; i < 10000; i++) {
        int ms = retry_backoff_ms(&p, 4, false, retry_random());
        assert_true(ms >= 0 && ms < 400);
        lo += ms < 200;
        hi += ms >= 200;
    }
    /* uniform: each half gets roughly half (very loose bound, 10k draws) */
    assert_true(lo > 4000 && hi > 4000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ceiling_doubles_then_caps),
        cmocka_unit_test(test_throttle_starts_higher),
        cmocka_unit_test(test_jitter_spreads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
