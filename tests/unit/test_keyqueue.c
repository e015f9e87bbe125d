/* Unit tests of keyqueue.c: the readers-writer grant rules (a granted set
 * is always a prefix of the queue: one writer, or readers up to the first
 * writer), grant order, and the key map's lifetimes (queued, pinned or
 * carrying user data: kept; otherwise freed by kq_put). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3cfs/keyqueue.h"

#define MAXLOG 64

/* The grants seen, in order: the owner of each is its number. */
struct grants {
    int log[MAXLOG];
    int n;
};

static void on_grant(struct kq_access *a, void *arg)
{
    struct grants *g = arg;
    assert_true(g->n < MAXLOG);
    g->log[g->n++] = (int)(intptr_t)a->owner;
}

static struct kq_access acc(int id, bool writer)
{
    return (struct kq_access){.owner = (void *)(intptr_t)id, .writer = writer};
}

/* the grants logged since *from, as a string of ids ("1,2,"), then *from
 * moves past them */
static const char *since(const struct grants *g, int *from)
{
    static char buf[256];
    buf[0] = '\0';
    for (; *from < g->n; (*from)++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%d,", g->log[*from]);
    return buf;
}

/* one queue with one key "b"/"k", and its grant log */
struct fix {
    struct grants g;
    struct keyqueue q;
    struct kq_key *k;
    int seen;
};

static void fix_init(struct fix *f)
{
    *f = (struct fix){0};
    assert_int_equal(kq_init(&f->q, on_grant, &f->g), 0);
    f->k = kq_get(&f->q, "b", "k");
    assert_non_null(f->k);
}

/* the key is idle again: it goes, and the map is empty */
static void fix_end(struct fix *f)
{
    assert_null(f->k->head);
    assert_int_equal(f->k->ngranted, 0);
    kq_put(&f->q, f->k);
    assert_int_equal(kq_count(&f->q), 0);
    kq_free(&f->q);
}

/* removes a, then checks the grants that follow */
static void end_then(struct fix *f, struct kq_access *a, const char *granted)
{
    kq_remove(&f->q, a);
    assert_string_equal(since(&f->g, &f->seen), granted);
}

/* appends the n accesses a[] to the key, in order, and checks the grants */
static void append_all(struct fix *f, struct kq_access *a, int n, const char *granted)
{
    for (int i = 0; i < n; i++)
        kq_append(&f->q, f->k, &a[i]);
    assert_string_equal(since(&f->g, &f->seen), granted);
}

static void test_readers_share_writer_waits(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    struct kq_access a[4] = {acc(1, false), acc(2, false), acc(3, true), acc(4, false)};
    append_all(&f, a, 4, "1,2,"); /* 4 does not pass the writer 3 */
    end_then(&f, &a[0], "");      /* 2 still reads */
    end_then(&f, &a[1], "3,");
    end_then(&f, &a[2], "4,");
    kq_remove(&f.q, &a[3]);
    fix_end(&f);
}

static void test_writers_one_at_a_time(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    struct kq_access a[5] = {acc(1, true), acc(2, true), acc(3, false), acc(4, false),
                             acc(5, true)};
    append_all(&f, a, 5, "1,");
    assert_true(f.k->writer_granted);
    end_then(&f, &a[0], "2,");
    end_then(&f, &a[1], "3,4,"); /* the readers together, in order */
    assert_false(f.k->writer_granted);
    end_then(&f, &a[3], ""); /* readers may end in any order */
    end_then(&f, &a[2], "5,");
    kq_remove(&f.q, &a[4]);
    fix_end(&f);
}

/* an access appended to an idle key is granted within kq_append; a reader
 * appended while a writer holds the key waits for it */
static void test_idle_key_and_held_writer(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    struct kq_access w = acc(7, true), r = acc(8, false);
    kq_append(&f.q, f.k, &w);
    assert_string_equal(since(&f.g, &f.seen), "7,");
    assert_ptr_equal(w.key, f.k);
    kq_append(&f.q, f.k, &r);
    assert_string_equal(since(&f.g, &f.seen), "");
    end_then(&f, &w, "8,");
    end_then(&f, &r, "");
    kq_append(&f.q, f.k, &w);
    assert_string_equal(since(&f.g, &f.seen), "7,");
    kq_remove(&f.q, &w);
    fix_end(&f);
}

static void test_map_names_and_lifetimes(void **state)
{
    (void)state;
    struct grants g = {0};
    struct keyqueue q;
    assert_int_equal(kq_init(&q, on_grant, &g), 0);
    struct kq_key *ab = kq_get(&q, "a", "bc"), *abc = kq_get(&q, "ab", "c");
    assert_non_null(ab);
    assert_non_null(abc);
    assert_ptr_not_equal(ab, abc); /* bucket and key are apart, never joined */
    assert_ptr_equal(kq_get(&q, "a", "bc"), ab);
    assert_ptr_equal(kq_find(&q, "ab", "c"), abc);
    assert_null(kq_find(&q, "a", "b"));
    assert_string_equal(kq_bucket(ab), "a");
    assert_string_equal(kq_keyname(ab), "bc");
    assert_int_equal(kq_count(&q), 2);

    ab->refs = 1; /* pinned: kept */
    kq_put(&q, ab);
    assert_ptr_equal(kq_find(&q, "a", "bc"), ab);
    ab->refs = 0;
    ab->user = &g; /* carries the caller's data: kept */
    kq_put(&q, ab);
    assert_ptr_equal(kq_find(&q, "a", "bc"), ab);
    ab->user = NULL;
    struct kq_access r = acc(1, false);
    kq_append(&q, ab, &r); /* queued: kept */
    kq_put(&q, ab);
    assert_ptr_equal(kq_find(&q, "a", "bc"), ab);
    kq_remove(&q, &r);
    kq_put(&q, ab);
    assert_null(kq_find(&q, "a", "bc"));
    assert_ptr_equal(kq_find(&q, "ab", "c"), abc);
    assert_int_equal(kq_count(&q), 1);
    kq_free(&q); /* frees what is left */
}

static bool count_key(struct kq_key *k, void *arg)
{
    (void)k;
    (*(int *)arg)++;
    return true;
}

/* many keys: the map grows, each stays findable, each queue is its own */
static void test_many_keys(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct grants g = {0};
    struct keyqueue q;
    char name[32];
    assert_int_equal(kq_init(&q, on_grant, &g), 0);
    struct kq_key **keys = calloc(N, sizeof *keys);
    assert_non_null(keys);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "dir/f%d", i);
        keys[i] = kq_get(&q, i % 2 ? "b1" : "b2", name);
        assert_non_null(keys[i]);
    }
    assert_int_equal(kq_count(&q), N);
    int n = 0;
    assert_true(kq_each(&q, count_key, &n));
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "dir/f%d", i);
        assert_ptr_equal(kq_find(&q, i % 2 ? "b1" : "b2", name), keys[i]);
        assert_null(kq_find(&q, i % 2 ? "b2" : "b1", name));
    }
    for (int i = 0; i < N; i++)
        kq_put(&q, keys[i]);
    assert_int_equal(kq_count(&q), 0);
    free(keys);
    kq_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_share_writer_waits),
        cmocka_unit_test(test_writers_one_at_a_time),
        cmocka_unit_test(test_idle_key_and_held_writer),
        cmocka_unit_test(test_map_names_and_lifetimes),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
