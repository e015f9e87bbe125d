/* Unit tests of htab.c: FNV-1a's published values (they name files on
 * disk, so they must never change), and the table's find/insert/remove,
 * growth, filter and each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3cfs/htab.h"

struct item {
    struct htab_node h;
    int value;
    char key[32];
};

static bool item_eq(const struct htab_node *n, const void *key, size_t len)
{
    const struct item *it = (const struct item *)n;
    return strlen(it->key) == len && memcmp(it->key, key, len) == 0;
}

static uint32_t hash_of(const char *s)
{
    return hash_fnv1a32(s, strlen(s));
}

/* FNV-1a reference values (the algorithm's published test values). */
static void test_fnv_values(void **state)
{
    (void)state;
    assert_int_equal(hash_fnv1a32("", 0), 0x811c9dc5u);
    assert_int_equal(hash_fnv1a32("a", 1), 0xe40c292cu);
    assert_int_equal(hash_fnv1a32("foobar", 6), 0xbf9cf968u);
    assert_true(hash_fnv1a64("", 0) == 0xcbf29ce484222325ull);
    assert_true(hash_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(hash_fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
    /* continuing a hash equals hashing the joined bytes */
    assert_true(hash_fnv1a64_more(hash_fnv1a64("foo", 3), "bar", 3) == hash_fnv1a64("foobar", 6));
    assert_int_equal(hash_fnv1a32_more(hash_fnv1a32("foo", 3), "bar", 3), 0xbf9cf968u);
}

static void test_insert_find_remove_grow(void **state)
{
    (void)state;
    struct htab t;
    assert_int_equal(htab_init(&t, 0, item_eq), 0);
    assert_int_equal(t.nb, 16);
    enum { N = 5000 };
    struct item *items = calloc(N, sizeof *items);
    assert_non_null(items);
    for (int i = 0; i < N; i++) {
        items[i].value = i;
        snprintf(items[i].key, sizeof items[i].key, "k%d", i);
        htab_insert(&t, &items[i].h, hash_of(items[i].key));
    }
    assert_int_equal(t.n, N);
    assert_true(t.nb >= N); /* grew: at most one node per bucket on average */
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "k%d", i);
        struct item *it = (struct item *)htab_find(&t, hash_of(k), k, strlen(k));
        assert_non_null(it);
        assert_int_equal(it->value, i);
    }
    assert_null(htab_find(&t, hash_of("nope"), "nope", 4));
    for (int i = 0; i < N; i += 2)
        htab_remove(&t, &items[i].h);
    assert_int_equal(t.n, N / 2);
    assert_null(htab_find(&t, hash_of("k0"), "k0", 2));
    assert_non_null(htab_find(&t, hash_of("k1"), "k1", 2));
    htab_free(&t);
    free(items);
}

/* Two keys with the same hash stay apart: eq decides. */
static void test_same_hash(void **state)
{
    (void)state;
    struct htab t;
    assert_int_equal(htab_init(&t, 100, item_eq), 0);
    assert_int_equal(t.nb, 128);
    struct item a = {.key = "a"}, b = {.key = "b"};
    htab_insert(&t, &a.h, 7);
    htab_insert(&t, &b.h, 7);
    assert_ptr_equal(htab_find(&t, 7, "a", 1), &a.h);
    assert_ptr_equal(htab_find(&t, 7, "b", 1), &b.h);
    htab_remove(&t, &a.h);
    assert_null(htab_find(&t, 7, "a", 1));
    assert_ptr_equal(htab_find(&t, 7, "b", 1), &b.h);
    htab_free(&t);
}

static bool take_odd(struct htab_node *n, void *arg)
{
    struct item *it = (struct item *)n;
    ++*(int *)arg;
    if (it->value % 2 == 0)
        return false;
    free(it); /* the filter must not read it again */
    return true;
}

static void test_filter(void **state)
{
    (void)state;
    struct htab t;
    assert_int_equal(htab_init(&t, 0, item_eq), 0);
    for (int i = 0; i < 100; i++) {
        struct item *it = calloc(1, sizeof *it);
        assert_non_null(it);
        it->value = i;
        snprintf(it->key, sizeof it->key, "%d", i);
        htab_insert(&t, &it->h, hash_of(it->key));
    }
    int seen = 0;
    htab_filter(&t, take_odd, &seen);
    assert_int_equal(seen, 100);
    assert_int_equal(t.n, 50);
    assert_null(htab_find(&t, hash_of("3"), "3", 1));
    struct item *four = (struct item *)htab_find(&t, hash_of("4"), "4", 1);
    assert_non_null(four);
    for (size_t i = 0; i < t.nb; i++)
        while (t.b[i]) {
            struct htab_node *n = t.b[i];
            htab_remove(&t, n);
            free(n);
        }
    assert_int_equal(t.n, 0);
    htab_free(&t);
}

struct visit {
    int seen, stop_after;
    unsigned char hit[64];
};

static bool visit_one(struct htab_node *n, void *arg)
{
    struct visit *v = arg;
    v->hit[((struct item *)n)->value]++;
    return ++v->seen != v->stop_after;
}

/* each visits every node once, and stops when told. */
static void test_each(void **state)
{
    (void)state;
    struct htab t;
    assert_int_equal(htab_init(&t, 0, item_eq), 0);
    struct visit v = {0};
    assert_true(htab_each(&t, visit_one, &v)); /* empty: nothing to visit */
    assert_int_equal(v.seen, 0);
    struct item items[64];
    for (int i = 0; i < 64; i++) {
        items[i] = (struct item){.value = i};
        snprintf(items[i].key, sizeof items[i].key, "%d", i);
        htab_insert(&t, &items[i].h, hash_of(items[i].key));
    }
    assert_true(htab_each(&t, visit_one, &v));
    assert_int_equal(v.seen, 64);
    for (int i = 0; i < 64; i++)
        assert_int_equal(v.hit[i], 1);
    v = (struct visit){.stop_after = 10};
    assert_false(htab_each(&t, visit_one, &v));
    assert_int_equal(v.seen, 10);
    assert_int_equal(t.n, 64); /* visiting takes nothing out */
    htab_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv_values), cmocka_unit_test(test_insert_find_remove_grow),
        cmocka_unit_test(test_same_hash),  cmocka_unit_test(test_filter),
        cmocka_unit_test(test_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
