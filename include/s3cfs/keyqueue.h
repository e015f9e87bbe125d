/* keyqueue.h - the engine's per-key ordering: a map from (bucket, key) to a
 * readers-writer queue of the accesses that jobs make to that key.
 *
 * Model. Every key in use has one queue, in the order accesses were
 * appended. An access is a writer (exclusive: a copy's destination, a
 * delete) or a reader (shared: a copy's source). What a queue grants is
 * always a prefix of it: one writer at its head, or the readers up to the
 * first writer. Granting never skips an access, so a later access to a key
 * never overtakes an earlier one, and a caller that appends all the
 * accesses of one job at once (under its own lock) can never make two jobs
 * wait for each other.
 *
 * Grants are reported through the callback given to kq_init, called from
 * within kq_append and kq_remove, once per access, in queue order. Only a
 * granted access may be removed (a job ends after it ran).
 *
 * Lifetime of a key entry: kq_get creates it; kq_put frees it once nothing
 * uses it: no access in its queue, no pin (refs, the caller's count of
 * threads that hold the pointer, e.g. waiters) and no `user` pointer (the
 * caller's data attached to the key, e.g. an unreported failure). The
 * caller clears its pins and `user` and then calls kq_put.
 *
 * Ownership: the queue owns the key entries; accesses belong to the
 * caller (typically embedded in its job), and must stay valid while queued.
 * Locking: none inside; the caller guards a keyqueue and everything in it
 * with one lock (the engine's), held across every call here and across
 * the grant callback. Nothing here blocks or does I/O.
 * Errors: kq_init and kq_get return -ENOMEM / NULL when out of memory;
 * nothing else fails.
 */
#ifndef S3CFS_KEYQUEUE_H
#define S3CFS_KEYQUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "s3cfs/htab.h"

struct kq_key;

/* One access to one key: a link in the key's queue. */
struct kq_access {
    struct kq_key *key;            /* set by kq_append, then constant */
    struct kq_access *prev, *next; /* the queue's, in append order */
    void *owner;                   /* the caller's (the engine: its job) */
    unsigned char roles;           /* the caller's bits, not read here */
    bool writer;                   /* constant once appended: exclusive */
};

/* The entry of one key in use. The caller may read every field and walk
 * the queue from head through next; it writes only refs and user. */
struct kq_key {
    struct htab_node hn;           /* the map's */
    struct kq_access *head, *tail; /* the queue, in append order */
    struct kq_access *frontier;    /* the first access not granted, or NULL */
    unsigned ngranted;             /* granted accesses still queued */
    bool writer_granted;           /* the granted one is a writer */
    unsigned refs;                 /* the caller's pins */
    void *user;                    /* the caller's; kept while non-NULL */
    size_t blen;                   /* strlen of the bucket */
    char name[];                   /* bucket NUL key NUL */
};

/* Called for every access as it is granted. */
typedef void (*kq_granted_fn)(struct kq_access *a, void *arg);

struct keyqueue {
    struct htab map;
    kq_granted_fn granted;
    void *arg;
};

int kq_init(struct keyqueue *q, kq_granted_fn granted, void *arg);
/* Frees every key entry left (the caller has freed what its `user`
 * pointers held); the queue is then unusable. */
void kq_free(struct keyqueue *q);

static inline const char *kq_bucket(const struct kq_key *k)
{
    return k->name;
}

static inline const char *kq_keyname(const struct kq_key *k)
{
    return k->name + k->blen + 1;
}

/* The entry of bucket/key, or NULL if the key is not in use. */
struct kq_key *kq_find(const struct keyqueue *q, const char *bucket, const char *key);
/* The entry of bucket/key, created if needed; NULL: out of memory. */
struct kq_key *kq_get(struct keyqueue *q, const char *bucket, const char *key);
/* Frees k if nothing uses it any more (see Lifetime). */
void kq_put(struct keyqueue *q, struct kq_key *k);
/* Number of key entries. */
size_t kq_count(const struct keyqueue *q);

/* Appends a (its owner, roles and writer set by the caller) to k's queue,
 * and grants what the queue now allows. */
void kq_append(struct keyqueue *q, struct kq_key *k, struct kq_access *a);
/* Removes the granted access a from its queue, and grants what the queue
 * now allows. Does not free the key entry: kq_put does. */
void kq_remove(struct keyqueue *q, struct kq_access *a);

/* Calls fn(k, arg) for every key entry until it returns false; returns
 * whether all were visited. fn must not add or free entries. */
bool kq_each(const struct keyqueue *q, bool (*fn)(struct kq_key *k, void *arg), void *arg);

#endif
