/* Unit tests for the errno table, the retry classification and sbuf. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3cfs/buf.h"
#include "s3cfs/error.h"

static void test_errno_table(void **state)
{
    (void)state;
    assert_int_equal(s3_errno_for("NoSuchKey", 404), -ENOENT);
    assert_int_equal(s3_errno_for("NoSuchBucket", 404), -ENOENT);
    assert_int_equal(s3_errno_for("SignatureDoesNotMatch", 403), -EACCES);
    assert_int_equal(s3_errno_for("InvalidAccessKeyId", 403), -EACCES);
    assert_int_equal(s3_errno_for("BucketNotEmpty", 409), -ENOTEMPTY);
    assert_int_equal(s3_errno_for("PreconditionFailed", 412), -ESTALE);
    assert_int_equal(s3_errno_for("SlowDown", 503), -EAGAIN);
    /* HEAD answers carry no body: the status decides */
    assert_int_equal(s3_errno_for("", 404), -ENOENT);
    assert_int_equal(s3_errno_for(NULL, 403), -EACCES);
    assert_int_equal(s3_errno_for("SomethingNew", 500), -EIO);
}

static void test_retryable(void **state)
{
    (void)state;
    struct s3_error e;
    s3_error_clear(&e);
    e.http_status = 503;
    s3_error_set(&e, "SlowDown", "Please reduce your request rate.");
    assert_true(s3_error_retryable(&e));
    assert_true(s3_error_throttled(&e));

    s3_error_clear(&e);
    e.http_status = 500;
    s3_error_set(&e, "InternalError", "x");
    assert_true(s3_error_retryable(&e));
    assert_false(s3_error_throttled(&e));

    s3_error_clear(&e);
    e.http_status = 403;
    s3_error_set(&e, "AccessDenied", "x");
    assert_false(s3_error_retryable(&e));

    s3_error_clear(&e);
    e.http_status = 400;
    s3_error_set(&e, "RequestTimeout", "idle");
    assert_true(s3_error_retryable(&e));

    s3_error_clear(&e);
    e.curl_code = 56; /* CURLE_RECV_ERROR: reset mid-response */
    s3_error_set(&e, "ConnectionReset", "reset");
    assert_true(s3_error_retryable(&e));
}

static void test_format(void **state)
{
    (void)state;
    struct s3_error e;
    s3_error_clear(&e);
    e.http_status = 403;
    e.attempts = 1;
    s3_error_set(&e, "SignatureDoesNotMatch", "bad sig");
    char buf[256];
    assert_string_equal(s3_error_format(&e, buf, sizeof buf),
                        "SignatureDoesNotMatch: bad sig (HTTP 403)");
}

static void test_sbuf(void **state)
{
    (void)state;
    struct sbuf b = SBUF_INIT;
    assert_string_equal(sbuf_str(&b), "");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(sbuf_appendf(&b, "%d,", i % 10), 0);
    assert_int_equal(b.len, 2000);
    assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
    sbuf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(sbuf_append(&b, "ab\0c", 4), 0);
    assert_int_equal(b.len, 4);
    assert_int_equal(b.data[4], '\0');
    char *s = sbuf_detach(&b);
    assert_memory_equal(s, "ab\0c", 4);
    free(s);
    assert_null(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errno_table),
        cmocka_unit_test(test_retryable),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_sbuf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
