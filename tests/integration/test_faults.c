/* 500 mixed operations through the fault proxy at 5% injected faults (503
 * SlowDown, 500, connection reset after the server acted, stalls): every
 * operation must complete correctly, and the bucket must end exactly as a
 * model of the operations says, checked directly against the server. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"

#define NKEYS 120
#define MAXSZ 65536
#define MIB   (1024 * 1024)

struct model {
    int seed[NKEYS]; /* 0: absent */
    size_t size[NKEYS];
};

static struct s3_client *faulty, *direct;
static char bucket[64];
static char *buf, *back;

static void key_name(int i, char out[32])
{
    snprintf(out, 32, "k/%02d/obj%03d", i % 10, i);
}

static size_t content(int seed, size_t size)
{
    itest_fill(buf, size, (unsigned)seed);
    return size;
}

static void check(int rc, const char *what, const struct s3_error *err)
{
    if (rc) {
        char msg[512];
        fprintf(stderr, "%s failed: %s\n", what, s3_error_format(err, msg, sizeof msg));
    }
    assert_int_equal(rc, 0);
}

static void op_put(struct model *m, int i, int seed)
{
    char k[32];
    key_name(i, k);
    size_t n = content(seed, (size_t)(seed * 7919) % MAXSZ);
    struct s3_body b = {.data = buf, .fd = -1, .len = n};
    struct s3_error err;
    check(s3_put_object(faulty, bucket, k, &b, NULL, NULL, &err), "put", &err);
    m->seed[i] = seed;
    m->size[i] = n;
}

static void op_get(struct s3_client *c, const struct model *m, int i)
{
    char k[32];
    key_name(i, k);
    struct s3_error err;
    size_t got = 0;
    int rc = s3_get_object(c, bucket, k, 0, MAXSZ + 1, NULL, back, &got, &err);
    if (!m->seed[i]) {
        assert_int_equal(rc, -ENOENT);
        return;
    }
    check(rc, "get", &err);
    assert_int_equal(got, m->size[i]);
    content(m->seed[i], m->size[i]);
    assert_memory_equal(back, buf, got);
}

static void op_copy(struct model *m, int from, int to)
{
    if (!m->seed[from])
        return;
    char a[32], b[32];
    key_name(from, a);
    key_name(to, b);
    struct s3_error err;
    check(s3_copy_object(faulty, bucket, a, bucket, b, NULL, NULL, &err), "copy", &err);
    m->seed[to] = m->seed[from];
    m->size[to] = m->size[from];
}

static void op_delete_batch(struct model *m, int first, int n)
{
    char names[20][32];
    const char *keys[20] = {0};
    for (int j = 0; j < n; j++) {
        key_name((first + j) % NKEYS, names[j]);
        keys[j] = names[j];
    }
    struct s3_delete_error *errs;
    size_t nerrs;
    struct s3_error err;
    check(s3_delete_objects(faulty, bucket, keys, NULL, (size_t)n, &errs, &nerrs, &err), "delete",
          &err);
    assert_int_equal(nerrs, 0);
    for (int j = 0; j < n; j++)
        m->seed[(first + j) % NKEYS] = 0;
}

static int count_objects(const struct s3_list_page *p, void *arg)
{
    *(size_t *)arg += p->nobjects;
    return 0;
}

static size_t model_count(const struct model *m)
{
    size_t n = 0;
    for (int i = 0; i < NKEYS; i++)
        n += m->seed[i] != 0;
    return n;
}

static void op_list(struct s3_client *c, const struct model *m)
{
    size_t n = 0;
    struct s3_error err;
    check(s3_list_all(c, bucket, "k/", NULL, count_objects, &n, &err), "list", &err);
    assert_int_equal(n, model_count(m));
}

/* A two-part multipart upload of a fresh object outside the k/ prefix. */
static void op_multipart(int n)
{
    char k[32];
    snprintf(k, sizeof k, "mpu/%d", n);
    struct s3_error err;
    char *id = NULL;
    check(s3_mpu_create(faulty, bucket, k, NULL, &id, &err), "mpu create", &err);
    static char part[5 * MIB];
    itest_fill(part, sizeof part, (unsigned)n);
    struct s3_part parts[2];
    for (int p = 0; p < 2; p++) {
        struct s3_body b = {.data = part, .fd = -1, .len = p ? 1000 : sizeof part};
        parts[p].number = p + 1;
        check(s3_mpu_upload_part(faulty, bucket, k, id, p + 1, &b, parts[p].etag, &err), "mpu part",
              &err);
    }
    check(s3_mpu_complete(faulty, bucket, k, id, parts, 2, false, NULL, &err), "mpu complete",
          &err);
    free(id);
    struct s3_head h;
    check(s3_head_object(direct, bucket, k, &h, &err), "mpu head", &err);
    assert_int_equal(h.size, sizeof part + 1000);
    s3_head_free(&h);
}

static void test_mixed_with_faults(void **state)
{
    (void)state;
    buf = malloc(MAXSZ + 1);
    back = malloc(MAXSZ + 1);
    direct = itest_client(NULL, NULL, 0);
    itest_bucket(direct, "faults", bucket);
    const char *url = itest_proxy_start("--fault-rate 0.05 --faults 503,500,reset,stall "
                                        "--stall-ms 1500 --seed 42");
    faulty = itest_client(url, NULL, 10);
    static struct model m;
    srand(1234);
    int nmpu = 0;
    for (int op = 0; op < 500; op++) {
        int r = rand() % 100, i = rand() % NKEYS;
        if (r < 35)
            op_put(&m, i, op + 1);
        else if (r < 55)
            op_get(faulty, &m, i);
        else if (r < 70)
            op_copy(&m, i, rand() % NKEYS);
        else if (r < 80)
            op_list(faulty, &m);
        else if (r < 92)
            op_delete_batch(&m, i, 1 + rand() % 20);
        else if (r < 95)
            op_multipart(nmpu++);
        else
            op_get(faulty, &m, i);
    }
    long injected = itest_proxy_count("fault.503") + itest_proxy_count("fault.500") +
                    itest_proxy_count("fault.reset") + itest_proxy_count("fault.stall");
    struct s3_stats *st = s3_client_stats(faulty);
    fprintf(stderr,
            "500 operations: %ld requests through the proxy, %ld faults injected, "
            "%lu retries, %lu throttled\n",
            itest_proxy_count("total"), injected, (unsigned long)atomic_load(&st->retries),
            (unsigned long)atomic_load(&st->throttled));
    assert_true(injected >= 10); /* the faults really happened */
    assert_true(atomic_load(&st->retries) >= (uint64_t)injected / 2);
    itest_proxy_stop();

    /* the end state, read directly from the server */
    op_list(direct, &m);
    for (int i = 0; i < NKEYS; i++)
        op_get(direct, &m, i);
    itest_client_free(faulty);
    itest_client_free(direct);
    free(buf);
    free(back);
}

/* A copy is answered only when the server has done it, so it may be silent
 * for longer than the client's stall timeout (5 s here) and must not be cut
 * off and sent again: a retry piles another copy onto a busy server. Any
 * other request still is cut off. */
static void test_copy_outlasts_stall_timeout(void **state)
{
    (void)state;
    direct = itest_client(NULL, NULL, 0);
    itest_bucket(direct, "slowcopy", bucket);
    static const char data[] = "copied slowly";
    struct s3_body b = {.data = data, .fd = -1, .len = sizeof data - 1};
    struct s3_error err;
    check(s3_put_object(direct, bucket, "src", &b, NULL, NULL, &err), "put", &err);
    const char *url = itest_proxy_start(NULL);
    struct s3_client *c = itest_client(url, NULL, 1);
    assert_int_equal(itest_proxy_config("delay.CopyObject=7000&delay.HeadObject=7000"), 0);
    char etag[80];
    check(s3_copy_object(c, bucket, "src", bucket, "dst", NULL, etag, &err), "slow copy", &err);
    assert_int_equal(itest_proxy_count("CopyObject"), 1);
    struct s3_head h;
    assert_int_equal(s3_head_object(c, bucket, "dst", &h, &err), -ETIMEDOUT);
    itest_proxy_stop();
    check(s3_head_object(direct, bucket, "dst", &h, &err), "head dst", &err);
    assert_int_equal(h.size, sizeof data - 1);
    s3_head_free(&h);
    itest_client_free(c);
    itest_client_free(direct);
}

static int stop_proxy(void **state)
{
    (void)state;
    itest_proxy_stop(); /* also after a failed assertion */
    return 0;
}

int main(void)
{
    s3_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_mixed_with_faults, stop_proxy),
        cmocka_unit_test_teardown(test_copy_outlasts_stall_timeout, stop_proxy)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
