/* Unit tests for the wiping of freed secrets: a secret sbuf zeroes every
 * block it lets go of (growth and free), and signing a request with a
 * session token frees its key- and token-holding buffers wiped. The
 * wipe_free() hook sees each block just before free(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3cfs/buf.h"
#include "sigv4.h"

static size_t blocks, dirty, bytes;

static void record(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    while (i < n && b[i] == 0)
        i++;
    blocks++;
    bytes += n;
    dirty += i < n;
}

static int setup(void **state)
{
    (void)state;
    blocks = dirty = bytes = 0;
    wipe_free_hook = record;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    wipe_free_hook = NULL;
    return 0;
}

/* Growth moves the text by hand: every block left behind is zeroed, and so
 * is the last one at sbuf_free(), which keeps the buffer's kind. */
static void test_secret_sbuf(void **state)
{
    (void)state;
    struct sbuf b = SBUF_SECRET_INIT;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(sbuf_appendf(&b, "secret-%04d;", i), 0);
    assert_int_equal(b.len, 12000);
    assert_memory_equal(b.data + 11988, "secret-0999;", 12);
    size_t grown = blocks;
    assert_true(grown >= 5); /* 64 -> 16384 bytes: every old block */
    sbuf_free(&b);
    assert_int_equal(blocks, grown + 1);
    assert_true(b.secret);
    assert_null(b.data);
    assert_int_equal(dirty, 0);
    /* detach hands the block over (the caller's to wipe) */
    assert_int_equal(sbuf_append_str(&b, "k"), 0);
    char *p = sbuf_detach(&b);
    assert_string_equal(p, "k");
    assert_true(b.secret);
    wipe_free(p, 2);
    assert_int_equal(dirty, 0);
}

/* A plain buffer does not pay for wiping. */
static void test_plain_sbuf(void **state)
{
    (void)state;
    struct sbuf b = SBUF_INIT;
    for (int i = 0; i < 100; i++)
        assert_int_equal(sbuf_append_str(&b, "plain text "), 0);
    sbuf_free(&b);
    assert_int_equal(blocks, 0);
    wipe_free(NULL, 10);
    assert_int_equal(blocks, 0);
}

/* A signature with a session token and a fresh secret (a cache miss, so
 * the key is derived): the "AWS4"+secret block and the canonical texts,
 * which hold the token, go through wipe_free() zeroed. */
static void test_signing_wipes(void **state)
{
    (void)state;
    char token[2048];
    memset(token, 'T', sizeof token - 1);
    token[sizeof token - 1] = '\0';
    const struct http_header h[] = {{"Host", "b.s3.amazonaws.com"},
                                    {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}};
    struct sigv4_request req = {.method = "GET",
                                .canonical_uri = "/k",
                                .canonical_query = "",
                                .headers = h,
                                .nheaders = 2,
                                .payload_hash = "UNSIGNED-PAYLOAD",
                                .region = "us-east-1",
                                .service = "s3",
                                .now = 1700000000};
    struct sigv4_credentials cred = {"AKIDWIPE", "secret-used-only-here", token};
    struct sigv4_result res;
    assert_int_equal(sigv4_sign(&req, &cred, &res), 0);
    assert_true(blocks >= 4); /* k0, scratch, headers, canon */
    assert_true(bytes >= 3 * sizeof token);
    assert_int_equal(dirty, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_secret_sbuf),
        T(test_plain_sbuf),
        T(test_signing_wipes),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
