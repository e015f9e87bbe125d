/* Unit tests for the read-ahead: sequential readers (also several threads
 * reading out of order, as the kernel's read-ahead does) fetch every byte
 * once and get the right bytes; jumping readers fetch what they ask; a new
 * version drops the old windows; errors reach the reader; background
 * fetches run through spawn and are waited for by ra_free. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "s3cfs/pool.h"
#include "s3cfs/readahead.h"

#define OBJ (64u << 20)

struct src {
    unsigned version; /* the byte pattern: what an ETag stands for */
};

static atomic_ullong fetched;
static atomic_int fail_at_version;
static atomic_int delay_us;

static unsigned char byte_at(unsigned version, uint64_t off)
{
    return (unsigned char)((off * 2654435761u) >> 13) ^ (unsigned char)version;
}

static int fake_fetch(void *ctx, const void *srcp, uint64_t off, size_t len, char *dst)
{
    (void)ctx;
    const struct src *s = srcp;
    if ((int)s->version == atomic_load(&fail_at_version))
        return -EIO;
    if (atomic_load(&delay_us)) {
        struct timespec ts = {0, atomic_load(&delay_us) * 1000L};
        nanosleep(&ts, NULL);
    }
    for (size_t i = 0; i < len; i++)
        dst[i] = (char)byte_at(s->version, off + i);
    atomic_fetch_add(&fetched, len);
    return 0;
}

static struct pool *bg_pool;

static int pool_spawn(void *ctx, int (*fn)(void *), void *arg)
{
    (void)ctx;
    return pool_try_submit(bg_pool, fn, arg);
}

static struct readahead *make(bool background)
{
    atomic_store(&fetched, 0);
    atomic_store(&fail_at_version, -1);
    atomic_store(&delay_us, 0);
    struct ra_config cfg = {.fetch = fake_fetch, .spawn = background ? pool_spawn : NULL};
    struct readahead *ra = NULL;
    assert_int_equal(ra_new(&cfg, &ra), 0);
    return ra;
}

static void check_bytes(unsigned version, const char *buf, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] != byte_at(version, off + i))
            fail_msg("wrong byte at %llu", (unsigned long long)(off + i));
}

static void read_sequentially(struct readahead *ra, size_t chunk)
{
    struct src s = {1};
    char *buf = malloc(chunk);
    for (uint64_t off = 0; off < OBJ; off += chunk) {
        assert_int_equal(ra_read(ra, &s, sizeof s, OBJ, buf, chunk, off), (int)chunk);
        check_bytes(1, buf, off, chunk);
    }
    free(buf);
}

static void test_sequential_fetches_each_byte_once(void **state)
{
    (void)state;
    struct readahead *ra = make(false);
    read_sequentially(ra, 128 << 10);
    assert_int_equal(atomic_load(&fetched), OBJ);
    struct ra_stats st;
    ra_get_stats(ra, &st);
    assert_true(st.fetches < 20); /* windows grew to 8 MiB, not 512 reads */
    ra_free(ra);
}

static void test_background_fetch_ahead(void **state)
{
    (void)state;
    struct readahead *ra = make(true);
    read_sequentially(ra, 128 << 10);
    ra_free(ra);
    assert_int_equal(atomic_load(&fetched), OBJ);
    /* a second reader stops halfway: what was fetched ahead is at most a
     * couple of windows past where it stopped */
    ra = make(true);
    struct src s = {1};
    char buf[128 << 10];
    for (uint64_t off = 0; off < OBJ / 2; off += sizeof buf)
        assert_int_equal(ra_read(ra, &s, sizeof s, OBJ, buf, sizeof buf, off), (int)sizeof buf);
    struct ra_stats st;
    ra_get_stats(ra, &st);
    ra_free(ra); /* waits for the fetch in flight */
    assert_true(st.prefetches > 0);
    assert_true(atomic_load(&fetched) <= OBJ / 2 + (16u << 20));
}

struct reader {
    struct readahead *ra;
    int first, step;
    int bad;
    pthread_barrier_t *round; /* one block per reader per round */
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    struct src s = {1};
    char *buf = malloc(128 << 10);
    for (int i = r->first; (uint64_t)i * (128u << 10) < OBJ; i += r->step) {
        /* the kernel has a bounded number of reads of one file in flight:
         * the readers stay within one round of each other, however the
         * machine schedules them (without this, a loaded machine let one
         * reader fall behind the windows kept and fetch again) */
        pthread_barrier_wait(r->round);
        uint64_t off = (uint64_t)i * (128u << 10);
        if (ra_read(r->ra, &s, sizeof s, OBJ, buf, 128 << 10, off) != 128 << 10)
            r->bad++;
        for (size_t k = 0; k < (128u << 10); k++)
            if ((unsigned char)buf[k] != byte_at(1, off + k)) {
                r->bad++;
                break;
            }
    }
    free(buf);
    return NULL;
}

/* Four threads take every fourth 128 KiB block: the requests of one
 * sequential read arriving at once and out of order. */
static void test_concurrent_readers_fetch_each_byte_once(void **state)
{
    (void)state;
    for (int bg = 0; bg < 2; bg++) {
        struct readahead *ra = make(bg);
        atomic_store(&delay_us, 2000);
        pthread_t t[4];
        struct reader r[4];
        pthread_barrier_t round;
        pthread_barrier_init(&round, NULL, 4);
        for (int i = 0; i < 4; i++) {
            r[i] = (struct reader){ra, i, 4, 0, &round};
            pthread_create(&t[i], NULL, reader_main, &r[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            assert_int_equal(r[i].bad, 0);
        }
        pthread_barrier_destroy(&round);
        ra_free(ra);
        /* each byte once, but for a reader descheduled while its peers
         * claimed every slot: its window may be reused and its block
         * fetched again (readahead.h); seen under a load of 20 on 2 cores:
         * up to 3 blocks of 512 */
        size_t got = atomic_load(&fetched);
        assert_true(got >= OBJ);
        assert_true(got <= OBJ + (1u << 20));
    }
}

static void test_jumping_reader_fetches_what_it_asks(void **state)
{
    (void)state;
    struct readahead *ra = make(true);
    struct src s = {1};
    char buf[4096];
    uint64_t offs[] = {50u << 20, 3u << 20, 40u << 20, 12u << 20, 60u << 20};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        assert_int_equal(ra_read(ra, &s, sizeof s, OBJ, buf, sizeof buf, offs[i]), 4096);
        check_bytes(1, buf, offs[i], sizeof buf);
    }
    ra_free(ra);
    assert_int_equal(atomic_load(&fetched), 5 * 4096);
}

static void test_end_of_object(void **state)
{
    (void)state;
    struct readahead *ra = make(false);
    struct src s = {1};
    char buf[8192];
    assert_int_equal(ra_read(ra, &s, sizeof s, 10000, buf, sizeof buf, 4096), 10000 - 4096);
    check_bytes(1, buf, 4096, 10000 - 4096);
    assert_int_equal(ra_read(ra, &s, sizeof s, 10000, buf, sizeof buf, 10000), 0);
    assert_int_equal(ra_read(ra, &s, sizeof s, 10000, buf, sizeof buf, 20000), 0);
    ra_free(ra);
}

static void test_new_version_drops_windows(void **state)
{
    (void)state;
    struct readahead *ra = make(false);
    struct src v1 = {1}, v2 = {2};
    char buf[4096];
    assert_int_equal(ra_read(ra, &v1, sizeof v1, OBJ, buf, sizeof buf, 0), 4096);
    check_bytes(1, buf, 0, sizeof buf);
    assert_int_equal(ra_read(ra, &v2, sizeof v2, OBJ, buf, sizeof buf, 4096), 4096);
    check_bytes(2, buf, 4096, sizeof buf);
    ra_free(ra);
}

static void test_fetch_error_reaches_reader(void **state)
{
    (void)state;
    struct readahead *ra = make(true);
    struct src v3 = {3}, v1 = {1};
    char buf[4096];
    atomic_store(&fail_at_version, 3);
    assert_int_equal(ra_read(ra, &v3, sizeof v3, OBJ, buf, sizeof buf, 0), -EIO);
    assert_int_equal(ra_read(ra, &v3, sizeof v3, OBJ, buf, sizeof buf, 4096), -EIO);
    atomic_store(&fail_at_version, -1);
    assert_int_equal(ra_read(ra, &v1, sizeof v1, OBJ, buf, sizeof buf, 0), 4096);
    check_bytes(1, buf, 0, sizeof buf);
    ra_free(ra);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct readahead *ra = NULL;
    struct ra_config none = {0};
    assert_int_equal(ra_new(&none, &ra), -EINVAL);
    ra = make(false);
    char big[RA_SRC_MAX + 1] = {0}, buf[16];
    assert_int_equal(ra_read(ra, big, sizeof big, OBJ, buf, sizeof buf, 0), -EINVAL);
    ra_free(ra);
    ra_free(NULL);
}

/* One budget for several handles: their windows never hold more than it
 * allows, reads past it still get every byte right (fetched directly),
 * and closing a handle gives its share back. */
static void test_budget_bounds_all_handles(void **state)
{
    (void)state;
    atomic_store(&fetched, 0);
    atomic_store(&fail_at_version, -1);
    atomic_store(&delay_us, 0);
    struct ra_budget budget = {.max = 12u << 20};
    struct ra_config cfg = {.fetch = fake_fetch, .spawn = pool_spawn, .budget = &budget};
    struct readahead *ra[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(ra_new(&cfg, &ra[i]), 0);
    static char buf[128 << 10];
    struct src s = {.version = 3};
    size_t most = 0;
    for (uint64_t off = 0; off < (24u << 20); off += sizeof buf) {
        for (int i = 0; i < 4; i++) {
            assert_int_equal(ra_read(ra[i], &s, sizeof s, OBJ, buf, sizeof buf, off),
                             (int)sizeof buf);
            check_bytes(s.version, buf, off, sizeof buf);
            size_t used = atomic_load(&budget.used);
            most = used > most ? used : most;
        }
    }
    assert_true(most <= budget.max);
    assert_true(most >= (8u << 20)); /* the budget was used, not ignored */
    for (int i = 0; i < 4; i++)
        ra_free(ra[i]);
    assert_int_equal(atomic_load(&budget.used), 0);
}

int main(void)
{
    if (pool_new(8, 64, &bg_pool) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_fetches_each_byte_once),
        cmocka_unit_test(test_background_fetch_ahead),
        cmocka_unit_test(test_concurrent_readers_fetch_each_byte_once),
        cmocka_unit_test(test_jumping_reader_fetches_what_it_asks),
        cmocka_unit_test(test_end_of_object),
        cmocka_unit_test(test_new_version_drops_windows),
        cmocka_unit_test(test_fetch_error_reaches_reader),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_budget_bounds_all_handles),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pool_free(bg_pool);
    return rc;
}
