/* The in-memory store itself, through s3.h: what the layer tests rely on
 * (listing pages, conditions, multipart, metadata) and that each knob
 * gives the answer fakes3.h promises. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>

#include "fakes3.h"

static struct s3_client *cl;

static int setup(void **state)
{
    (void)state;
    fakes3_reset();
    assert_int_equal(fakes3_create_bucket("b"), 0);
    struct s3_error err;
    return s3_client_new(NULL, &cl, &err);
}

static int teardown(void **state)
{
    (void)state;
    s3_client_free(cl);
    fakes3_reset();
    return 0;
}

struct collect {
    char names[4096];
    size_t n, pages;
};

static int collect_page(const struct s3_list_page *p, void *arg)
{
    struct collect *c = arg;
    c->pages++;
    for (size_t i = 0; i < p->nobjects + p->nprefixes; i++) {
        const char *k = i < p->nobjects ? p->objects[i].key : p->prefixes[i - p->nobjects];
        size_t at = strlen(c->names);
        snprintf(c->names + at, sizeof c->names - at, "%s%s", c->n++ ? " " : "", k);
    }
    return 0;
}

/* Keys and common prefixes in key order, pages of max_keys, the walk over
 * their tokens covering everything once. */
static void test_list_pages(void **state)
{
    (void)state;
    const char *keys[] = {"d/a", "d/b/1", "d/b/2", "d/c", "d/e/1", "e"};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(fakes3_put("b", keys[i], "x", 1), 0);
    struct s3_error err;
    struct collect c = {0};
    assert_int_equal(s3_list_all_n(cl, "b", "d/", "/", 2, collect_page, &c, &err), 0);
    assert_string_equal(c.names, "d/a d/b/ d/c d/e/");
    assert_int_equal(c.pages, 2);
    memset(&c, 0, sizeof c);
    assert_int_equal(s3_list_all_n(cl, "b", "d/", NULL, 1, collect_page, &c, &err), 0);
    assert_string_equal(c.names, "d/a d/b/1 d/b/2 d/c d/e/1");
    assert_int_equal(c.pages, 5);
    assert_int_equal(fakes3_count(FAKES3_LIST), 2 + 5);
    struct s3_list_page p;
    assert_int_equal(s3_list_objects(cl, "nope", "", NULL, NULL, 0, &p, &err), -ENOENT);
    assert_string_equal(err.code, "NoSuchBucket");
}

/* The hostile listings end as the real client ends them. */
static void test_list_hostile(void **state)
{
    (void)state;
    assert_int_equal(fakes3_put("b", "d/a", "x", 1), 0);
    struct s3_error err;
    struct collect c = {0};
    const unsigned flags[] = {FAKES3_FOREIGN_ENTRY, FAKES3_SHORT_PREFIX, FAKES3_REPEAT_TOKEN};
    const char *prefixes[] = {"d/", ""};
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < 2; j++) {
            fakes3_set_hostile(flags[i]);
            int rc = s3_list_all(cl, "b", prefixes[j], "/", collect_page, &c, &err);
            assert_int_equal(rc, -EIO);
            assert_string_equal(err.code, "BadResponse");
        }
    }
    fakes3_set_hostile(0);
    assert_int_equal(s3_list_all(cl, "b", "d/", "/", collect_page, &c, &err), 0);
}

static void test_objects(void **state)
{
    (void)state;
    struct s3_error err;
    struct s3_meta m[] = {{"Mode", "33188"}};
    struct s3_write_opts wo = {.content_type = "text/plain", .meta = m, .nmeta = 1};
    struct s3_body body = {.data = "hello", .fd = -1, .len = 5};
    char etag[80], got[16];
    assert_int_equal(s3_put_object(cl, "b", "k", &body, &wo, etag, &err), 0);
    assert_string_equal(etag, "5d41402abc4b2a76b9719d911017c592"); /* MD5 of "hello" */
    struct s3_head h;
    assert_int_equal(s3_head_object(cl, "b", "k", &h, &err), 0);
    assert_int_equal(h.size, 5);
    assert_string_equal(h.content_type, "text/plain");
    assert_string_equal(s3_head_meta(&h, "mode"), "33188");
    s3_head_free(&h);
    size_t n;
    assert_int_equal(s3_get_object(cl, "b", "k", 1, 3, NULL, got, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(got, "ell", 3);
    assert_int_equal(s3_get_object(cl, "b", "k", 5, 3, NULL, got, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(s3_get_object(cl, "b", "k", 0, 0, "other", got, &n, &err), -ESTALE);
    /* copies: COPY keeps metadata, the condition holds, no self-copy */
    struct s3_copy_opts co = {.if_match = etag};
    assert_int_equal(s3_copy_object(cl, "b", "k", "b", "k2", &co, NULL, &err), 0);
    assert_int_equal(fakes3_meta("b", "k2", "mode", got, sizeof got), 0);
    assert_string_equal(got, "33188");
    co.if_match = "stale";
    assert_int_equal(s3_copy_object(cl, "b", "k", "b", "k3", &co, NULL, &err), -ESTALE);
    assert_string_equal(err.code, "PreconditionFailed");
    assert_int_equal(s3_copy_object(cl, "b", "k", "b", "k", NULL, NULL, &err), -EINVAL);
    struct s3_write_opts rep = {0};
    co = (struct s3_copy_opts){.replace = &rep};
    assert_int_equal(s3_copy_object(cl, "b", "k", "b", "k", &co, NULL, &err), 0);
    assert_int_equal(fakes3_meta("b", "k", "mode", got, sizeof got), -ENODATA);
    /* deletes */
    const char *keys[] = {"k", "k2", "missing"};
    struct s3_delete_error *de;
    size_t nde;
    assert_int_equal(s3_delete_objects(cl, "b", keys, NULL, 3, &de, &nde, &err), 0);
    assert_int_equal(nde, 0);
    assert_false(fakes3_exists("b", "k2"));
    assert_int_equal(s3_head_object(cl, "b", "k", &h, &err), -ENOENT);
    assert_string_equal(err.code, "NoSuchKey");
}

static void test_multipart(void **state)
{
    (void)state;
    struct s3_error err;
    char *id, e1[80], e2[80], etag[80];
    fakes3_set_min_part(4);
    assert_int_equal(fakes3_put("b", "src", "0123456789", 10), 0);
    assert_int_equal(s3_mpu_create(cl, "b", "dst", NULL, &id, &err), 0);
    struct s3_body body = {.data = "abcd", .fd = -1, .len = 4};
    assert_int_equal(s3_mpu_upload_part(cl, "b", "dst", id, 1, &body, e1, &err), 0);
    assert_int_equal(s3_mpu_copy_part(cl, "b", "dst", id, 2, "b", "src", 2, 4, NULL, e2, &err), 0);
    struct s3_part parts[2] = {{1, ""}, {2, ""}};
    snprintf(parts[0].etag, 80, "%s", e1);
    snprintf(parts[1].etag, 80, "%s", e2);
    assert_int_equal(s3_mpu_complete(cl, "b", "dst", id, parts, 2, false, etag, &err), 0);
    assert_non_null(strstr(etag, "-2"));
    char *data;
    size_t len;
    assert_int_equal(fakes3_get("b", "dst", &data, &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(data, "abcd234", 7);
    free(data);
    assert_int_equal(fakes3_uploads(), 0);
    free(id);
    /* parts below the minimum but the last: EntityTooSmall */
    fakes3_set_min_part(5);
    assert_int_equal(s3_mpu_create(cl, "b", "dst", NULL, &id, &err), 0);
    assert_int_equal(s3_mpu_upload_part(cl, "b", "dst", id, 1, &body, parts[0].etag, &err), 0);
    assert_int_equal(s3_mpu_upload_part(cl, "b", "dst", id, 2, &body, parts[1].etag, &err), 0);
    assert_int_equal(s3_mpu_complete(cl, "b", "dst", id, parts, 2, false, etag, &err), -EINVAL);
    assert_string_equal(err.code, "EntityTooSmall");
    assert_int_equal(s3_mpu_abort(cl, "b", "dst", id, &err), 0);
    assert_int_equal(fakes3_uploads(), 0);
    free(id);
}

static void test_knobs(void **state)
{
    (void)state;
    struct s3_error err;
    struct s3_head h;
    assert_int_equal(fakes3_put("b", "k", "x", 1), 0);
    /* the 2nd HEAD from now fails, once */
    fakes3_fail_nth(FAKES3_HEAD, 2, "SlowDown", 503);
    assert_int_equal(s3_head_object(cl, "b", "k", &h, &err), 0);
    s3_head_free(&h);
    assert_int_equal(s3_head_object(cl, "b", "k", &h, &err), -EAGAIN);
    assert_string_equal(err.code, "SlowDown");
    assert_int_equal(err.http_status, 503);
    assert_int_equal(atomic_load(&s3_client_stats(cl)->throttled), 1);
    assert_int_equal(s3_head_object(cl, "b", "k", &h, &err), 0);
    s3_head_free(&h);
    /* a rate of 1: every request */
    fakes3_fail_rate(FAKES3_ANY, 1.0, "InternalError", 500, 7);
    assert_int_equal(s3_delete_object(cl, "b", "k", NULL, &err), -EIO);
    fakes3_fail_rate(FAKES3_ANY, 0, NULL, 0, 0);
    /* latency */
    fakes3_set_latency(FAKES3_HEAD, 50000);
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    assert_int_equal(s3_head_object(cl, "b", "k", &h, &err), 0);
    s3_head_free(&h);
    gettimeofday(&t1, NULL);
    assert_true((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_usec - t0.tv_usec) >= 50000);
    /* over-long ETag: cut at 79 bytes; 200 with an error body */
    fakes3_set_hostile(FAKES3_LONG_ETAG | FAKES3_ERROR_IN_200);
    assert_int_equal(s3_head_object(cl, "b", "k", &h, &err), 0);
    assert_int_equal(strlen(h.etag), 79);
    s3_head_free(&h);
    assert_int_equal(s3_copy_object(cl, "b", "k", "b", "k2", NULL, NULL, &err), -EIO);
    assert_string_equal(err.code, "InternalError");
    assert_int_equal(err.http_status, 200);
    assert_false(fakes3_exists("b", "k2"));
    assert_int_equal(fakes3_count(FAKES3_HEAD), 5);
    assert_int_equal(fakes3_count(FAKES3_COPY), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multipart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_knobs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
