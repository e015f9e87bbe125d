/* Unit tests for S3 URI encoding, decoding and canonical query strings. */
#include <errno.h>
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
#include "s3cfs/uri.h"

static void check_encode(const char *in, bool keep_slash, const char *want)
{
    struct sbuf b = SBUF_INIT;
    assert_int_equal(uri_encode_str(&b, in, keep_slash), 0);
    assert_string_equal(sbuf_str(&b), want);
    sbuf_free(&b);
}

static void test_encode_keys(void **state)
{
    (void)state;
    check_encode("dir/a b.txt", true, "dir/a%20b.txt");
    check_encode("dir/a b.txt", false, "dir%2Fa%20b.txt");
    check_encode("a+b", true, "a%2Bb");
    check_encode("100%", true, "100%25");
    check_encode("~user/-._", true, "~user/-._");
    check_encode("a//b/./c/../d", true, "a//b/./c/../d"); /* never normalised */
    check_encode("k=v&x?y#z", true, "k%3Dv%26x%3Fy%23z");
    check_encode("", true, "");
    /* UTF-8: each byte on its own, upper-case hex */
    check_encode("caf\xc3\xa9", true, "caf%C3%A9");
    check_encode("\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80", true,
                 "%E6%97%A5%E6%9C%AC/%F0%9F%98%80");
}

static void test_encode_every_byte(void **state)
{
    (void)state;
    for (int c = 1; c < 256; c++) {
        char in[2] = {(char)c, '\0'};
        char want[4];
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~';
        if (plain)
            snprintf(want, sizeof want, "%c", c);
        else
            snprintf(want, sizeof want, "%%%02X", c);
        check_encode(in, false, want);
    }
    /* a NUL inside the given length is a byte like any other */
    struct sbuf b = SBUF_INIT;
    assert_int_equal(uri_encode(&b, "a\0b", 3, false), 0);
    assert_string_equal(sbuf_str(&b), "a%00b");
    sbuf_free(&b);
}

static void test_encode_appends(void **state)
{
    (void)state;
    struct sbuf b = SBUF_INIT;
    assert_int_equal(sbuf_append_str(&b, "/bucket/"), 0);
    assert_int_equal(uri_encode_str(&b, "x y", true), 0);
    assert_int_equal(uri_encode(&b, "zzz", 1, true), 0); /* only n bytes */
    assert_string_equal(sbuf_str(&b), "/bucket/x%20yz");
    assert_int_equal(b.len, strlen("/bucket/x%20yz"));
    sbuf_free(&b);
}

/* S3 keys go up to 1024 bytes; with every byte escaped that is 3 KiB. */
static void test_long_key(void **state)
{
    (void)state;
    char key[1025];
    for (size_t i = 0; i < 1024; i++)
        key[i] = (i % 7 == 0) ? ' ' : (i % 7 == 1) ? '/' : 'k';
    key[1024] = '\0';
    struct sbuf enc = SBUF_INIT, dec = SBUF_INIT;
    assert_int_equal(uri_encode_str(&enc, key, true), 0);
    size_t spaces = (1024 + 6) / 7;
    assert_int_equal(enc.len, 1024 + 2 * spaces);
    assert_int_equal(uri_decode(&dec, enc.data, enc.len, false), 0);
    assert_int_equal(dec.len, 1024);
    assert_memory_equal(dec.data, key, 1024);

    memset(key, '\xff', 1024);
    sbuf_reset(&enc);
    assert_int_equal(uri_encode_str(&enc, key, false), 0);
    assert_int_equal(enc.len, 3072);
    assert_memory_equal(enc.data + 3069, "%FF", 3);
    sbuf_free(&enc);
    sbuf_free(&dec);
}

static void check_decode(const char *in, bool plus, const char *want)
{
    struct sbuf b = SBUF_INIT;
    assert_int_equal(uri_decode(&b, in, strlen(in), plus), 0);
    assert_string_equal(sbuf_str(&b), want);
    sbuf_free(&b);
}

static void test_decode(void **state)
{
    (void)state;
    check_decode("a%20b", false, "a b");
    check_decode("caf%C3%A9", false, "caf\xc3\xa9");
    check_decode("caf%c3%a9", false, "caf\xc3\xa9"); /* lower-case hex too */
    check_decode("a+b", false, "a+b");
    check_decode("a+b%2B", true, "a b+");
    check_decode("100%25", false, "100%");
    check_decode("dir/sub/", false, "dir/sub/");
    check_decode("", false, "");
}

static void test_decode_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {"%", "%2", "abc%", "%zz", "%2g", "%g2", "a%%20", "ok%2"};
    struct sbuf b = SBUF_INIT;
    assert_int_equal(sbuf_append_str(&b, "keep"), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(uri_decode(&b, bad[i], strlen(bad[i]), false), -EINVAL);
        /* the buffer is left exactly as it was */
        assert_int_equal(b.len, 4);
        assert_string_equal(sbuf_str(&b), "keep");
    }
    /* the length bounds the input: "%2" followed by more text outside n */
    assert_int_equal(uri_decode(&b, "%20", 2, false), -EINVAL);
    sbuf_free(&b);
}

static void test_roundtrip(void **state)
{
    (void)state;
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (int slash = 0; slash < 2; slash++) {
        struct sbuf enc = SBUF_INIT, dec = SBUF_INIT;
        assert_int_equal(uri_encode(&enc, (const char *)all, sizeof all, slash), 0);
        assert_int_equal(uri_decode(&dec, enc.data, enc.len, false), 0);
        assert_int_equal(dec.len, sizeof all);
        assert_memory_equal(dec.data, all, sizeof all);
        sbuf_free(&enc);
        sbuf_free(&dec);
    }
}

static void check_query(const struct query_param *p, size_t n, const char *want)
{
    struct sbuf b = SBUF_INIT;
    assert_int_equal(uri_canonical_query(&b, p, n), 0);
    assert_string_equal(sbuf_str(&b), want);
    sbuf_free(&b);
}

static void test_canonical_query(void **state)
{
    (void)state;
    const struct query_param list[] = {
        {"prefix", "photos/2024 summer/"},
        {"list-type", "2"},
        {"delimiter", "/"},
        {"max-keys", "1000"},
        {"encoding-type", "url"},
    };
    check_query(list, 5,
                "delimiter=%2F&encoding-type=url&list-type=2&max-keys=1000&"
                "prefix=photos%2F2024%20summer%2F");

    /* bare keys render "name=" */
    const struct query_param bare[] = {{"uploads", NULL}, {"delete", NULL}};
    check_query(bare, 2, "delete=&uploads=");
    const struct query_param parts[] = {{"uploadId", "a+b/c=="}, {"partNumber", "10"}};
    check_query(parts, 2, "partNumber=10&uploadId=a%2Bb%2Fc%3D%3D");

    /* '=', '&', '%', '~' in values; an empty value equals a bare key */
    const struct query_param values[] = {{"k", "a=b&c"}, {"j", "50%~"}, {"i", ""}};
    check_query(values, 3, "i=&j=50%25~&k=a%3Db%26c");

    /* the same name sorts by value */
    const struct query_param same[] = {{"a", "2"}, {"a", "10"}, {"a", "1"}};
    check_query(same, 3, "a=1&a=10&a=2");

    /* sorted by the encoded bytes: "%C3%A9" ('%' 0x25) before "Z" before "z",
     * although the raw byte 0xC3 would sort last */
    const struct query_param order[] = {{"z", "1"}, {"\xc3\xa9", "2"}, {"Z", "3"}, {"a b", "4"}};
    check_query(order, 4, "%C3%A9=2&Z=3&a%20b=4&z=1");

    check_query(NULL, 0, "");
}

static void test_canonical_query_appends(void **state)
{
    (void)state;
    const struct query_param p[] = {{"b", "2"}, {"a", "1"}};
    struct sbuf b = SBUF_INIT;
    assert_int_equal(sbuf_append_str(&b, "/?"), 0);
    assert_int_equal(uri_canonical_query(&b, p, 2), 0);
    assert_string_equal(sbuf_str(&b), "/?a=1&b=2");
    assert_int_equal(b.len, strlen("/?a=1&b=2"));
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_keys),
        cmocka_unit_test(test_encode_every_byte),
        cmocka_unit_test(test_encode_appends),
        cmocka_unit_test(test_long_key),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_canonical_query),
        cmocka_unit_test(test_canonical_query_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
