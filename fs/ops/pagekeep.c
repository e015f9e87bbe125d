/* pagekeep.c - which version the kernel's pages of a path hold (pagekeep.h). */
#include "s3cfs/pagekeep.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3cfs/htab.h"

struct pk_entry {
    struct htab_node h;           /* by path; h.user is its length */
    struct pk_entry *prev, *next; /* least recently opened first */
    char etag[80];
    uint64_t size;
    struct timespec mtime;
    char path[]; /* NUL-terminated */
};

struct pagekeep {
    pthread_mutex_t lock; /* guards everything below */
    struct htab table;
    struct pk_entry *head, *tail;
    size_t n, max;
};

static struct pk_entry *entry_of(const struct htab_node *h)
{
    return (struct pk_entry *)(void *)((const char *)h - offsetof(struct pk_entry, h));
}

static bool entry_eq(const struct htab_node *h, const void *path, size_t len)
{
    return h->user == len && memcmp(entry_of(h)->path, path, len) == 0;
}

int pagekeep_new(size_t max, struct pagekeep **out)
{
    struct pagekeep *p = calloc(1, sizeof *p);
    if (!p || htab_init(&p->table, 64, entry_eq)) {
        free(p);
        return -ENOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->max = max ? max : 1;
    *out = p;
    return 0;
}

void pagekeep_free(struct pagekeep *p)
{
    if (!p)
        return;
    for (struct pk_entry *e = p->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    htab_free(&p->table);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* lock held */
static void unlink_lru(struct pagekeep *p, struct pk_entry *e)
{
    *(e->prev ? &e->prev->next : &p->head) = e->next;
    *(e->next ? &e->next->prev : &p->tail) = e->prev;
    e->prev = e->next = NULL;
}

/* lock held: e becomes the most recently opened */
static void append_lru(struct pagekeep *p, struct pk_entry *e)
{
    e->prev = p->tail;
    e->next = NULL;
    *(p->tail ? &p->tail->next : &p->head) = e;
    p->tail = e;
}

/* lock held */
static void drop(struct pagekeep *p, struct pk_entry *e)
{
    htab_remove(&p->table, &e->h);
    unlink_lru(p, e);
    p->n--;
    free(e);
}

/* lock held */
static struct pk_entry *find(struct pagekeep *p, const char *path)
{
    size_t len = strlen(path);
    struct htab_node *h = htab_find(&p->table, hash_fnv1a32(path, len), path, len);
    return h ? entry_of(h) : NULL;
}

static bool same_version(const struct pk_entry *e, const struct pagekeep_version *v)
{
    return strcmp(e->etag, v->etag) == 0 && e->size == v->size &&
           e->mtime.tv_sec == v->mtime.tv_sec && e->mtime.tv_nsec == v->mtime.tv_nsec;
}

/* lock held: a new entry for path (not in the table), evicting the least
 * recently opened when full; NULL when out of memory */
static struct pk_entry *add(struct pagekeep *p, const char *path)
{
    size_t len = strlen(path);
    struct pk_entry *e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->path, path, len + 1);
    e->h.user = (uint32_t)len;
    if (p->n >= p->max)
        drop(p, p->head);
    htab_insert(&p->table, &e->h, hash_fnv1a32(path, len));
    append_lru(p, e);
    p->n++;
    return e;
}

bool pagekeep_open(struct pagekeep *p, const char *path, const struct pagekeep_version *v)
{
    if (!p || !path)
        return false;
    bool known = v->etag && v->etag[0] && strlen(v->etag) < sizeof((struct pk_entry *)0)->etag;
    pthread_mutex_lock(&p->lock);
    struct pk_entry *e = find(p, path);
    bool keep = known && e && same_version(e, v);
    if (keep) {
        unlink_lru(p, e);
        append_lru(p, e);
    } else if (!known) {
        if (e)
            drop(p, e);
    } else if (e || (e = add(p, path))) {
        snprintf(e->etag, sizeof e->etag, "%s", v->etag);
        e->size = v->size;
        e->mtime = v->mtime;
        unlink_lru(p, e);
        append_lru(p, e);
    }
    pthread_mutex_unlock(&p->lock);
    return keep;
}

void pagekeep_forget(struct pagekeep *p, const char *path)
{
    if (!p || !path)
        return;
    pthread_mutex_lock(&p->lock);
    struct pk_entry *e = find(p, path);
    if (e)
        drop(p, e);
    pthread_mutex_unlock(&p->lock);
}

struct tree_arg {
    struct pagekeep *p;
    const char *dir;
    size_t len;
};

/* e's path is the tree's root or below it; removes it from the LRU list
 * (the table relinks its chain itself) */
static bool take_below(struct htab_node *h, void *arg)
{
    struct tree_arg *a = arg;
    struct pk_entry *e = entry_of(h);
    bool all = a->len == 1 && a->dir[0] == '/';
    if (!all && (strncmp(e->path, a->dir, a->len) != 0 ||
                 (e->path[a->len] != '\0' && e->path[a->len] != '/')))
        return false;
    unlink_lru(a->p, e);
    a->p->n--;
    free(e);
    return true;
}

void pagekeep_forget_tree(struct pagekeep *p, const char *dir)
{
    if (!p || !dir)
        return;
    struct tree_arg a = {p, dir, strlen(dir)};
    pthread_mutex_lock(&p->lock);
    if (p->n)
        htab_filter(&p->table, take_below, &a);
    pthread_mutex_unlock(&p->lock);
}

size_t pagekeep_count(struct pagekeep *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->n;
    pthread_mutex_unlock(&p->lock);
    return n;
}
