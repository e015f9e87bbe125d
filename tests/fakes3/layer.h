/* layer.h - what the layer tests (test_layer_*.c) share: a mount of bucket
 * BUCKET through the driver over an emptied fake store, and checks of what
 * the store holds. Included once per test executable. */
#ifndef S3CFS_TEST_LAYER_H
#define S3CFS_TEST_LAYER_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fakes3.h"
#include "fsdriver.h"

#define BUCKET "bkt"

static struct fsd *D;

/* A fresh store with bucket "b", mounted with o (NULL: defaults). */
static inline void mount_b(const struct fsd_options *o)
{
    fakes3_reset();
    assert_int_equal(fakes3_create_bucket(BUCKET), 0);
    struct fsd_options opt = o ? *o : (struct fsd_options){0};
    opt.spec = BUCKET;
    assert_int_equal(fsd_start(&opt, &D), 0);
}

static inline int setup(void **state)
{
    (void)state;
    mount_b(NULL);
    return 0;
}

static inline int teardown(void **state)
{
    (void)state;
    int rc = fsd_stop(D);
    D = NULL;
    fakes3_reset();
    return rc;
}

/* Remount with other options (the test's setup mounted the defaults). */
static inline void remount(const struct fsd_options *o)
{
    assert_int_equal(fsd_stop(D), 0);
    mount_b(o);
}

/* Another client's PUT of key with data. */
static inline void put(const char *key, const char *data)
{
    assert_int_equal(fakes3_put(BUCKET, key, data, strlen(data)), 0);
}

/* Unmount, which must return rc (a failure not reported before: the
 * drain returns it), and mount the defaults again for the teardown. */
static inline void stop_expect(int rc)
{
    assert_int_equal(fsd_stop(D), rc);
    mount_b(NULL);
}

/* Every queued job landed. */
static inline void settle(void)
{
    assert_int_equal(fsd_fsyncdir(D, "/"), 0);
}

/* The store's object key holds exactly want. */
static inline void assert_object(const char *key, const char *want, size_t len)
{
    char *data;
    size_t got;
    assert_int_equal(fakes3_get(BUCKET, key, &data, &got), 0);
    assert_int_equal(got, len);
    assert_memory_equal(data, want, len);
    free(data);
}

/* The store's keys below prefix are exactly want (space-separated). */
static inline void assert_keys(const char *prefix, const char *want)
{
    char keys[8192];
    fakes3_keys(BUCKET, prefix, keys, sizeof keys);
    assert_string_equal(keys, want);
}

/* The file path reads exactly want through the filesystem. */
static inline void assert_file(const char *path, const char *want, size_t len)
{
    char *data;
    size_t got;
    assert_int_equal(fsd_get_file(D, path, &data, &got), 0);
    assert_int_equal(got, len);
    assert_memory_equal(data, want, len);
    free(data);
}

/* n bytes of a pattern that differs per offset (no two parts alike). */
static inline char *pattern(size_t n, unsigned seed)
{
    char *p = malloc(n + 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + i / 251 + seed) % 26);
    p[n] = '\0';
    return p;
}

#endif
