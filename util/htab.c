/* htab.c - FNV-1a and the intrusive chained hash table (see htab.h). */
#include "s3cfs/htab.h"

#include <errno.h>
#include <stdlib.h>

#define MIN_BUCKETS 16

uint32_t hash_fnv1a32_more(uint32_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

uint32_t hash_fnv1a32(const void *p, size_t n)
{
    return hash_fnv1a32_more(2166136261u, p, n);
}

uint64_t hash_fnv1a64_more(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

uint64_t hash_fnv1a64(const void *p, size_t n)
{
    return hash_fnv1a64_more(14695981039346656037ull, p, n);
}

int htab_init(struct htab *t, size_t min_buckets, htab_eq_fn eq)
{
    size_t nb = MIN_BUCKETS;
    while (nb < min_buckets && nb < ((size_t)1 << 40))
        nb *= 2;
    *t = (struct htab){.nb = nb, .eq = eq};
    t->b = calloc(nb, sizeof *t->b);
    return t->b ? 0 : -ENOMEM;
}

void htab_free(struct htab *t)
{
    free(t->b);
    *t = (struct htab){0};
}

struct htab_node *htab_find(const struct htab *t, uint32_t hash, const void *key, size_t len)
{
    for (struct htab_node *n = t->b[hash & (t->nb - 1)]; n; n = n->next)
        if (n->hash == hash && t->eq(n, key, len))
            return n;
    return NULL;
}

/* Double the buckets. Failing leaves longer chains, which are only slower. */
static void grow(struct htab *t)
{
    size_t nb = t->nb * 2;
    struct htab_node **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < t->nb; i++) {
        for (struct htab_node *n = t->b[i], *next; n; n = next) {
            next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

void htab_insert(struct htab *t, struct htab_node *n, uint32_t hash)
{
    if (t->n >= t->nb)
        grow(t);
    struct htab_node **slot = &t->b[hash & (t->nb - 1)];
    n->hash = hash;
    n->next = *slot;
    *slot = n;
    t->n++;
}

void htab_remove(struct htab *t, struct htab_node *n)
{
    struct htab_node **pp = &t->b[n->hash & (t->nb - 1)];
    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
    t->n--;
}

/* One chain of htab_filter: next is read before take() sees a node,
 * which it may free. */
static void filter_chain(struct htab *t, struct htab_node **pp,
                         bool (*take)(struct htab_node *n, void *arg), void *arg)
{
    while (*pp) {
        struct htab_node *n = *pp, *next = n->next;
        if (take(n, arg)) {
            *pp = next;
            t->n--;
        } else {
            pp = &n->next;
        }
    }
}

void htab_filter(struct htab *t, bool (*take)(struct htab_node *n, void *arg), void *arg)
{
    for (size_t i = 0; i < t->nb; i++)
        filter_chain(t, &t->b[i], take, arg);
}

bool htab_each(const struct htab *t, bool (*fn)(struct htab_node *n, void *arg), void *arg)
{
    for (size_t i = 0; i < t->nb; i++)
        for (struct htab_node *n = t->b[i]; n; n = n->next)
            if (!fn(n, arg))
                return false;
    return true;
}
