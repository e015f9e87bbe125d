/* htab.h - the one hash function and the one hash table of the project.
 *
 * Hash: FNV-1a, in a 32-bit form (its values are part of names on disk:
 * the journal's file name and the control socket's hash the mount point,
 * and the journal's line checksum; they must never change) and a 64-bit
 * form where 32 bits could collide too often (cache tags). The _more forms
 * continue a hash, so a key made of several strings (bucket, NUL, key)
 * hashes without being joined. Tables use 32-bit hashes.
 *
 * Table: an intrusive chained hash table. The caller embeds a struct
 * htab_node in its own struct, computes the key's hash, and gives the table
 * an equality function that compares a node with a key; the table never
 * allocates or frees nodes, only its bucket array, which doubles when the
 * table holds more nodes than buckets (a failed growth only makes chains
 * longer). Keys are whatever the caller's eq understands (bytes, strings,
 * pairs).
 *
 * Ownership: nodes belong to the caller; htab_free frees the buckets only.
 * Locking: none; the caller guards a table with its own lock.
 * Errors: htab_init returns 0 or -ENOMEM; nothing else fails.
 */
#ifndef S3CFS_HTAB_H
#define S3CFS_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t hash_fnv1a32(const void *p, size_t n);
uint32_t hash_fnv1a32_more(uint32_t h, const void *p, size_t n);
uint64_t hash_fnv1a64(const void *p, size_t n);
uint64_t hash_fnv1a64_more(uint64_t h, const void *p, size_t n);

struct htab_node {
    struct htab_node *next; /* chain; the table's */
    uint32_t hash;          /* the table's: set by htab_insert */
    uint32_t user;          /* the caller's (e.g. its key's length): fills the padding */
};

/* Whether node n has the key (key, len). */
typedef bool (*htab_eq_fn)(const struct htab_node *n, const void *key, size_t len);

struct htab {
    struct htab_node **b;
    size_t nb; /* buckets, a power of two */
    size_t n;  /* nodes */
    htab_eq_fn eq;
};

/* An empty table of at least min_buckets buckets (rounded up to a power of
 * two, at least 16). */
int htab_init(struct htab *t, size_t min_buckets, htab_eq_fn eq);
/* Frees the buckets (not the nodes); the table is then empty and unusable. */
void htab_free(struct htab *t);

struct htab_node *htab_find(const struct htab *t, uint32_t hash, const void *key, size_t len);
/* Adds n under hash (the caller checked it is not there yet). */
void htab_insert(struct htab *t, struct htab_node *n, uint32_t hash);
/* Removes n, which must be in the table. */
void htab_remove(struct htab *t, struct htab_node *n);
/* Calls take(n, arg) once for every node; the nodes for which it returns
 * true leave the table (take may free them: the chain is relinked without
 * reading them again). Nothing may be inserted meanwhile. */
void htab_filter(struct htab *t, bool (*take)(struct htab_node *n, void *arg), void *arg);
/* Calls fn(n, arg) for every node, in no particular order, until it returns
 * false; returns whether every node was visited. The table must not change
 * meanwhile (the nodes may). */
bool htab_each(const struct htab *t, bool (*fn)(struct htab_node *n, void *arg), void *arg);

#endif
