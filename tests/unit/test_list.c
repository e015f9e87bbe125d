/* Unit tests for the listing guards of s3/ops.c: entries that do not fit
 * the requested prefix (or S3's key limit) are refused, and a listing
 * whose continuation token repeats ends with -EIO instead of looping.
 * Pages are ListBucketResult documents fed through the parser and the
 * paging loop (s3_list_walk) without a server.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3cfs/error.h"
#include "s3cfs/s3.h"
#include "xml.h"

/* A ListBucketResult with the given Contents keys and CommonPrefixes
 * (NULL-terminated lists) and, when token is not NULL, truncated with
 * that NextContinuationToken. */
static char *page_xml(const char *const *keys, const char *const *prefixes, const char *token)
{
    size_t cap = 4096;
    for (const char *const *k = keys; k && *k; k++)
        cap += strlen(*k) + 256;
    for (const char *const *k = prefixes; k && *k; k++)
        cap += strlen(*k) + 64;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t n = (size_t)snprintf(s, cap, "<ListBucketResult><Name>b</Name>");
    for (const char *const *k = keys; k && *k; k++)
        n += (size_t)snprintf(s + n, cap - n,
                              "<Contents><Key>%s</Key><Size>1</Size><ETag>\"e\"</ETag>"
                              "<LastModified>2024-01-01T00:00:00.000Z</LastModified></Contents>",
                              *k);
    for (const char *const *k = prefixes; k && *k; k++)
        n += (size_t)snprintf(s + n, cap - n,
                              "<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>", *k);
    if (token)
        n += (size_t)snprintf(s + n, cap - n,
                              "<IsTruncated>true</IsTruncated>"
                              "<NextContinuationToken>%s</NextContinuationToken>",
                              token);
    else
        n += (size_t)snprintf(s + n, cap - n, "<IsTruncated>false</IsTruncated>");
    snprintf(s + n, cap - n, "</ListBucketResult>");
    return s;
}

/* s3_list_page_check of one parsed page. */
static int check_page(const char *const *keys, const char *const *prefixes, const char *prefix)
{
    char *xml = page_xml(keys, prefixes, NULL);
    struct s3_list_page p;
    assert_int_equal(xml_parse_list_objects(xml, strlen(xml), &p), 0);
    struct s3_error err;
    s3_error_clear(&err);
    int rc = s3_list_page_check(&p, prefix, &err);
    if (rc)
        assert_string_equal(err.code, "BadResponse");
    s3_list_page_free(&p);
    free(xml);
    return rc;
}

static void test_entries_in_prefix(void **state)
{
    (void)state;
    const char *keys[] = {"dir/", "dir/a", "dir//x", "dir/./y", NULL};
    const char *pre[] = {"dir/sub/", "dir//", NULL};
    assert_int_equal(check_page(keys, pre, "dir/"), 0);
    assert_int_equal(check_page(keys, pre, NULL), 0);
    assert_int_equal(check_page(keys, pre, ""), 0);
    assert_int_equal(check_page(NULL, NULL, "dir/"), 0);
}

static void test_entries_escaping(void **state)
{
    (void)state;
    /* shorter than the prefix: take_page would index past the key's end */
    const char *shorter[] = {"dir/a", "di", NULL};
    assert_int_equal(check_page(shorter, NULL, "dir/"), -EIO);
    /* as long, but another directory: a tree rename would move it */
    const char *other[] = {"dis/a", NULL};
    assert_int_equal(check_page(other, NULL, "dir/"), -EIO);
    const char *sibling[] = {"dirx/a", NULL};
    assert_int_equal(check_page(sibling, NULL, "dir/"), -EIO);
    /* the same rule for common prefixes */
    const char *pre_short[] = {"d", NULL};
    assert_int_equal(check_page(NULL, pre_short, "dir/"), -EIO);
    const char *pre_other[] = {"dir/ok/", "other/", NULL};
    assert_int_equal(check_page(NULL, pre_other, "dir/"), -EIO);
}

static void test_entries_too_long(void **state)
{
    (void)state;
    char at_limit[S3_KEY_MAX + 1], over[S3_KEY_MAX + 2];
    memcpy(at_limit, "dir/", 4);
    memset(at_limit + 4, 'k', S3_KEY_MAX - 4);
    at_limit[S3_KEY_MAX] = '\0';
    memcpy(over, at_limit, S3_KEY_MAX);
    over[S3_KEY_MAX] = 'k';
    over[S3_KEY_MAX + 1] = '\0';
    const char *ok[] = {at_limit, NULL};
    assert_int_equal(check_page(ok, NULL, "dir/"), 0);
    const char *bad[] = {over, NULL};
    assert_int_equal(check_page(bad, NULL, "dir/"), -EIO);
    assert_int_equal(check_page(bad, NULL, NULL), -EIO);
    assert_int_equal(check_page(NULL, bad, "dir/"), -EIO);
}

/* A listing served from memory: page i answers token "t<i>" (the first
 * page answers no token); what each page's NextContinuationToken is comes
 * from next[i] (NULL: the last page). */
struct fake {
    const char *prefix;
    const char *const *const *keys; /* per page */
    const char *const *next;        /* per page */
    size_t npages;
    int fetches;
};

static int fake_fetch(void *src, const char *token, struct s3_list_page *out, struct s3_error *err)
{
    struct fake *f = src;
    size_t i = 0;
    if (token && sscanf(token, "t%zu", &i) != 1)
        fail_msg("unexpected token %s", token);
    assert_true(i < f->npages);
    f->fetches++;
    assert_true(f->fetches < 100); /* a loop the guard missed */
    char *xml = page_xml(f->keys[i], NULL, f->next[i]);
    int rc = xml_parse_list_objects(xml, strlen(xml), out);
    free(xml);
    if (rc == 0 && (rc = s3_list_page_check(out, f->prefix, err)))
        s3_list_page_free(out);
    return rc;
}

static int count_keys(const struct s3_list_page *p, void *arg)
{
    *(size_t *)arg += p->nobjects;
    return 0;
}

static int walk(struct fake *f, size_t *nkeys)
{
    struct s3_error err;
    s3_error_clear(&err);
    *nkeys = 0;
    return s3_list_walk(fake_fetch, f, count_keys, nkeys, &err);
}

static const char *const p0[] = {"d/a", "d/b", NULL};
static const char *const p1[] = {"d/c", NULL};
static const char *const p2[] = {"d/e", "d/f", NULL};

static void test_walk_pages(void **state)
{
    (void)state;
    const char *const *keys[] = {p0, p1, p2};
    const char *next[] = {"t1", "t2", NULL};
    struct fake f = {"d/", keys, next, 3, 0};
    size_t n;
    assert_int_equal(walk(&f, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(f.fetches, 3);
}

static void test_walk_token_repeats(void **state)
{
    (void)state;
    const char *const *keys[] = {p0, p1, p2};
    /* the same token twice in a row */
    const char *same[] = {"t1", "t1", NULL};
    struct fake f = {"d/", keys, same, 3, 0};
    size_t n;
    assert_int_equal(walk(&f, &n), -EIO);
    assert_int_equal(f.fetches, 2);
    assert_int_equal(n, 3);
    /* a circle: page 2 points back to page 1 */
    const char *circle[] = {"t1", "t2", "t1"};
    f = (struct fake){"d/", keys, circle, 3, 0};
    assert_int_equal(walk(&f, &n), -EIO);
    assert_int_equal(f.fetches, 3);
    /* the first page answers no token: pointing back to it is new */
    const char *back[] = {"t1", "t0", NULL};
    f = (struct fake){"d/", keys, back, 3, 0};
    assert_int_equal(walk(&f, &n), -EIO);
    assert_int_equal(f.fetches, 3);
}

static void test_walk_escaped_page(void **state)
{
    (void)state;
    static const char *const hostile[] = {"d/g", "e/outside", NULL};
    const char *const *keys[] = {p0, hostile, p2};
    const char *next[] = {"t1", "t2", NULL};
    struct fake f = {"d/", keys, next, 3, 0};
    size_t n;
    /* the hostile page is refused whole, before the callback sees it */
    assert_int_equal(walk(&f, &n), -EIO);
    assert_int_equal(n, 2);
    assert_int_equal(f.fetches, 2);
}

static int setup(void **state)
{
    (void)state;
    xml_init();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_in_prefix),  cmocka_unit_test(test_entries_escaping),
        cmocka_unit_test(test_entries_too_long),   cmocka_unit_test(test_walk_pages),
        cmocka_unit_test(test_walk_token_repeats), cmocka_unit_test(test_walk_escaped_page),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
