/* Unit tests for the write stage: memory then spill, a random model check,
 * holes, truncation, upload bodies, sparse extension, error paths. Every
 * test runs with its own mkdtemp directory as tmpdir, and the teardown
 * checks that the directory is still empty: no temporary file is visible. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3cfs/stage.h"

static char tmpdir[] = "/tmp/s3cfs-stage-test-XXXXXX";

static int make_dir(void **state)
{
    (void)state;
    strcpy(tmpdir + sizeof tmpdir - 7, "XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* Fails when anything is left in the directory. */
static int check_and_remove_dir(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    int entries = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return entries == 0 && rmdir(tmpdir) == 0 ? 0 : -1;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void) /* xorshift64: reproducible */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(rnd() | 1); /* never 0, so holes stand out */
}

static void expect_content(struct stage *s, const char *ref, size_t n)
{
    char *got = malloc(n + 1);
    assert_int_equal(stage_size(s), n);
    assert_int_equal(stage_pread(s, got, n + 1, 0), n); /* short at the end */
    assert_memory_equal(got, ref, n);
    assert_int_equal(stage_pread(s, got, 10, (off_t)n), 0);
    free(got);
}

static void test_small_stays_in_memory(void **state)
{
    (void)state;
    struct stage *s;
    char ref[6000] = {0};
    assert_int_equal(stage_new(tmpdir, 64 * 1024, &s), 0);
    fill(ref, 1000);
    fill(ref + 5000, 1000);
    assert_int_equal(stage_pwrite(s, ref, 1000, 0), 1000);
    assert_int_equal(stage_pwrite(s, ref + 5000, 1000, 5000), 1000);
    assert_false(stage_is_spilled(s));
    expect_content(s, ref, sizeof ref);                   /* [1000, 5000) reads as zeros */
    assert_int_equal(stage_pwrite(s, ref, 0, 100000), 0); /* an empty write does not extend */
    assert_int_equal(stage_size(s), sizeof ref);
    stage_free(s);
}

static void test_crossing_limit_spills(void **state)
{
    (void)state;
    struct stage *s;
    size_t limit = 64 * 1024, n = limit + 10000;
    char *ref = calloc(1, n);
    fill(ref, n);
    assert_int_equal(stage_new(tmpdir, limit, &s), 0);
    assert_int_equal(stage_pwrite(s, ref, limit, 0), limit); /* exactly the limit: memory */
    assert_false(stage_is_spilled(s));
    assert_int_equal(stage_pwrite(s, ref + limit, n - limit, (off_t)limit), n - limit);
    assert_true(stage_is_spilled(s));
    expect_content(s, ref, n);
    stage_free(s);
    free(ref);
}

static void test_holes_read_zero_in_file(void **state)
{
    (void)state;
    struct stage *s;
    size_t n = 3 << 20;
    char *ref = calloc(1, n);
    fill(ref, 100);
    fill(ref + n - 100, 100);
    assert_int_equal(stage_new(tmpdir, 4096, &s), 0);
    assert_int_equal(stage_pwrite(s, ref, 100, 0), 100);
    assert_int_equal(stage_pwrite(s, ref + n - 100, 100, (off_t)(n - 100)), 100);
    assert_true(stage_is_spilled(s));
    expect_content(s, ref, n);
    stage_free(s);
    free(ref);
}

/* truncate shrink then extend: the cut bytes come back as zeros */
static void shrink_extend(size_t mem_limit, bool spilled)
{
    struct stage *s;
    char ref[8192];
    fill(ref, sizeof ref);
    assert_int_equal(stage_new(tmpdir, mem_limit, &s), 0);
    assert_int_equal(stage_pwrite(s, ref, sizeof ref, 0), sizeof ref);
    assert_int_equal(stage_truncate(s, 3000), 0);
    expect_content(s, ref, 3000);
    assert_int_equal(stage_truncate(s, sizeof ref), 0);
    memset(ref + 3000, 0, sizeof ref - 3000);
    expect_content(s, ref, sizeof ref);
    assert_int_equal(stage_truncate(s, 0), 0);
    expect_content(s, ref, 0);
    assert_int_equal(stage_truncate(s, 100), 0);
    memset(ref, 0, 100);
    expect_content(s, ref, 100);
    assert_int_equal(stage_is_spilled(s), spilled);
    stage_free(s);
}

static void test_truncate(void **state)
{
    (void)state;
    shrink_extend(1 << 20, false);
    shrink_extend(1024, true);
}

/* A few thousand random writes, reads and truncates against a reference
 * buffer of MODEL bytes (beyond the size, the reference is kept zero). */
#define MODEL (4u << 20)
#define MAXIO (64u << 10)

static void model_step(struct stage *s, char *ref, uint64_t *size, char *buf)
{
    uint64_t op = rnd() % 10;
    size_t n = (size_t)(rnd() % MAXIO);
    off_t off = (off_t)(rnd() % (MODEL - n));
    if (op < 5) {
        fill(buf, n);
        assert_int_equal(stage_pwrite(s, buf, n, off), n);
        memcpy(ref + off, buf, n);
        if (n > 0 && (uint64_t)off + n > *size)
            *size = (uint64_t)off + n;
    } else if (op < 9) {
        size_t want = (uint64_t)off >= *size      ? 0
                      : *size - (uint64_t)off < n ? *size - (uint64_t)off
                                                  : n;
        assert_int_equal(stage_pread(s, buf, n, off), want);
        assert_memory_equal(buf, ref + off, want);
    } else {
        uint64_t to = rnd() % MODEL;
        if (to < *size)
            memset(ref + to, 0, *size - to);
        assert_int_equal(stage_truncate(s, to), 0);
        *size = to;
    }
}

static void model_run(size_t mem_limit)
{
    struct stage *s;
    char *ref = calloc(1, MODEL), *buf = malloc(MAXIO);
    uint64_t size = 0;
    assert_int_equal(stage_new(tmpdir, mem_limit, &s), 0);
    for (int i = 0; i < 3000; i++)
        model_step(s, ref, &size, buf);
    expect_content(s, ref, size);
    assert_int_equal(stage_is_spilled(s), mem_limit < MODEL);
    stage_free(s);
    free(ref);
    free(buf);
}

static void test_random_against_model(void **state)
{
    (void)state;
    model_run(MODEL);     /* never spills */
    model_run(256 << 10); /* spills along the way */
}

static void test_body(void **state)
{
    (void)state;
    struct stage *s;
    struct s3_body b;
    char ref[5000], got[5000];
    fill(ref, sizeof ref);
    assert_int_equal(stage_new(tmpdir, 8192, &s), 0);
    stage_body(s, 0, 100, &b); /* empty stage: an empty body */
    assert_int_equal(b.len, 0);
    assert_int_equal(stage_pwrite(s, ref, sizeof ref, 0), sizeof ref);
    stage_body(s, 1000, 2000, &b);
    assert_int_equal(b.fd, -1);
    assert_int_equal(b.len, 2000);
    assert_memory_equal(b.data, ref + 1000, 2000);
    stage_body(s, 4000, 9999, &b); /* clipped at the end */
    assert_int_equal(b.len, 1000);

    assert_int_equal(stage_truncate(s, 1 << 20), 0); /* spills */
    assert_true(stage_is_spilled(s));
    stage_body(s, 1000, 2000, &b);
    assert_true(b.fd >= 0);
    assert_null(b.data);
    assert_int_equal(b.offset, 1000);
    assert_int_equal(b.len, 2000);
    assert_int_equal(pread(b.fd, got, (size_t)b.len, b.offset), 2000);
    assert_memory_equal(got, ref + 1000, 2000);
    stage_free(s);
}

static void test_sparse_extension(void **state)
{
    (void)state;
    struct stage *s;
    struct s3_body b;
    struct stat st;
    assert_int_equal(stage_new(tmpdir, 0, &s), 0);
    assert_int_equal(stage_pwrite(s, "abc", 3, 0), 3);
    assert_int_equal(stage_truncate(s, 1ull << 30), 0);
    stage_body(s, 0, 1, &b);
    assert_int_equal(fstat(b.fd, &st), 0);
    assert_int_equal(st.st_size, 1 << 30);
    assert_true(st.st_blocks * 512 < (1 << 20)); /* nothing allocated for the hole */
    char tail[3] = {1, 1, 1};
    assert_int_equal(stage_pread(s, tail, 3, (1 << 30) - 3), 3);
    assert_memory_equal(tail, "\0\0\0", 3);
    stage_free(s);
}

static void test_limits_and_bad_offsets(void **state)
{
    (void)state;
    struct stage *s;
    char c = 'x';
    assert_int_equal(stage_new(tmpdir, 0, &s), 0);
    assert_int_equal(stage_pwrite(s, &c, 10, INT64_MAX - 5), -EFBIG);
    assert_int_equal(stage_pwrite(s, &c, 1, -1), -EINVAL);
    assert_int_equal(stage_pread(s, &c, 1, -1), -EINVAL);
    assert_int_equal(stage_truncate(s, UINT64_MAX), -EFBIG);
    assert_int_equal(stage_truncate(s, (uint64_t)INT64_MAX + 1), -EFBIG);
    assert_int_equal(stage_size(s), 0);
    assert_false(stage_is_spilled(s));
    stage_free(s);
}

/* A tmpdir that cannot hold the file: the error surfaces and the content
 * stays in memory, intact. */
static void test_spill_failure_keeps_content(void **state)
{
    (void)state;
    struct stage *s;
    char ref[4096];
    fill(ref, sizeof ref);
    assert_int_equal(stage_new("/nonexistent/s3cfs", 4096, &s), 0);
    assert_int_equal(stage_pwrite(s, ref, sizeof ref, 0), sizeof ref);
    assert_int_equal(stage_pwrite(s, ref, 1, 4096), -ENOENT);
    assert_int_equal(stage_truncate(s, 10000), -ENOENT);
    assert_false(stage_is_spilled(s));
    expect_content(s, ref, sizeof ref);
    stage_free(s);
}

/* A write the file system refuses (here: RLIMIT_FSIZE gives EFBIG) returns
 * its errno and leaves no stale tail: a later extension reads zeros. */
static void test_file_error_surfaces(void **state)
{
    (void)state;
    struct stage *s;
    struct rlimit old, lim;
    char buf[8192], got[8192];
    fill(buf, sizeof buf);
    assert_int_equal(stage_new(tmpdir, 1024, &s), 0);
    assert_int_equal(stage_pwrite(s, buf, 10, 0), 10);
    assert_false(stage_is_spilled(s));
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1 << 20;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    /* straddles the limit: part of it could be written */
    ssize_t w = stage_pwrite(s, buf, sizeof buf, (1 << 20) - 4096);
    int trunc_rc = stage_truncate(s, (1 << 20) + 1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(w, -EFBIG);
    assert_int_equal(trunc_rc, -EFBIG);
    assert_true(stage_is_spilled(s));
    assert_int_equal(stage_size(s), 10);
    assert_int_equal(stage_truncate(s, 2 << 20), 0);
    assert_int_equal(stage_pread(s, got, sizeof got, (1 << 20) - 4096), sizeof got);
    memset(buf, 0, sizeof buf);
    assert_memory_equal(got, buf, sizeof got);
    stage_free(s);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, make_dir, check_and_remove_dir)
    const struct CMUnitTest tests[] = {
        T(test_small_stays_in_memory),
        T(test_crossing_limit_spills),
        T(test_holes_read_zero_in_file),
        T(test_truncate),
        T(test_random_against_model),
        T(test_body),
        T(test_sparse_extension),
        T(test_limits_and_bad_offsets),
        T(test_spill_failure_keeps_content),
        T(test_file_error_surfaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
