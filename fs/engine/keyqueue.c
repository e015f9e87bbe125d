/* keyqueue.c - per-key readers-writer queues (see keyqueue.h). */
#include "s3cfs/keyqueue.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_BUCKETS 256

/* The key of a lookup: bucket and key apart, never joined. */
struct kq_name {
    const char *bucket, *key;
};

static bool key_eq(const struct htab_node *n, const void *key, size_t len)
{
    const struct kq_key *k = (const struct kq_key *)n;
    const struct kq_name *nm = key;
    (void)len;
    return strcmp(kq_bucket(k), nm->bucket) == 0 && strcmp(kq_keyname(k), nm->key) == 0;
}

/* FNV-1a over bucket NUL key, so that ("a", "bc") and ("ab", "c") differ. */
static uint32_t key_hash(const char *bucket, const char *key)
{
    uint32_t h = hash_fnv1a32(bucket, strlen(bucket) + 1);
    return hash_fnv1a32_more(h, key, strlen(key));
}

int kq_init(struct keyqueue *q, kq_granted_fn granted, void *arg)
{
    q->granted = granted;
    q->arg = arg;
    return htab_init(&q->map, FIRST_BUCKETS, key_eq);
}

static bool free_key(struct htab_node *n, void *arg)
{
    (void)arg;
    free(n);
    return true;
}

void kq_free(struct keyqueue *q)
{
    htab_filter(&q->map, free_key, NULL);
    htab_free(&q->map);
}

struct kq_key *kq_find(const struct keyqueue *q, const char *bucket, const char *key)
{
    struct kq_name nm = {bucket, key};
    return (struct kq_key *)htab_find(&q->map, key_hash(bucket, key), &nm, 0);
}

struct kq_key *kq_get(struct keyqueue *q, const char *bucket, const char *key)
{
    struct kq_key *k = kq_find(q, bucket, key);
    if (k)
        return k;
    size_t blen = strlen(bucket), klen = strlen(key);
    k = calloc(1, sizeof *k + blen + klen + 2);
    if (!k)
        return NULL;
    k->blen = blen;
    memcpy(k->name, bucket, blen + 1);
    memcpy(k->name + blen + 1, key, klen + 1);
    htab_insert(&q->map, &k->hn, key_hash(bucket, key));
    return k;
}

void kq_put(struct keyqueue *q, struct kq_key *k)
{
    if (k->head || k->refs || k->user)
        return;
    htab_remove(&q->map, &k->hn);
    free(k);
}

size_t kq_count(const struct keyqueue *q)
{
    return q->map.n;
}

/* Grants what the queue allows from its frontier on: one writer alone, or
 * readers up to the first writer. */
static void grant(struct keyqueue *q, struct kq_key *k)
{
    struct kq_access *a = k->frontier;
    while (a) {
        if (a->writer ? k->ngranted > 0 : k->writer_granted)
            break;
        k->ngranted++;
        k->writer_granted = a->writer;
        struct kq_access *next = a->next;
        bool writer = a->writer;
        /* the callback may look at the queue: the frontier moves first */
        k->frontier = next;
        q->granted(a, q->arg);
        a = next;
        if (writer)
            break;
    }
    k->frontier = a;
}

void kq_append(struct keyqueue *q, struct kq_key *k, struct kq_access *a)
{
    a->key = k;
    a->next = NULL;
    a->prev = k->tail;
    *(k->tail ? &k->tail->next : &k->head) = a;
    k->tail = a;
    if (!k->frontier)
        k->frontier = a;
    grant(q, k);
}

void kq_remove(struct keyqueue *q, struct kq_access *a)
{
    struct kq_key *k = a->key;
    k->ngranted--;
    if (a->writer)
        k->writer_granted = false;
    *(a->prev ? &a->prev->next : &k->head) = a->next;
    *(a->next ? &a->next->prev : &k->tail) = a->prev;
    grant(q, k);
}

struct each_arg {
    bool (*fn)(struct kq_key *k, void *arg);
    void *arg;
};

static bool each_key(struct htab_node *n, void *arg)
{
    struct each_arg *ea = arg;
    return ea->fn((struct kq_key *)n, ea->arg);
}

bool kq_each(const struct keyqueue *q, bool (*fn)(struct kq_key *k, void *arg), void *arg)
{
    struct each_arg ea = {fn, arg};
    return htab_each(&q->map, each_key, &ea);
}
