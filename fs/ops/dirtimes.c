/* dirtimes.c - coalesced directory times (dirtimes.h). */
#include "s3cfs/dirtimes.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3cfs/htab.h"
#include "s3cfs/log.h"
#include "s3cfs/path.h"

#define DT_FIRST_BUCKETS 64 /* the table doubles up to about DIRTIMES_MAX */
#define DT_TICK_MS       250

struct dt_entry {
    struct htab_node h; /* in the table by path; h.user is its length */
    char *path;
    struct timespec mtime, ctime; /* CLOCK_REALTIME */
    bool has_mtime;               /* only ctime changed (a rename of the directory) */
    bool dirty;
    bool busy;                              /* a write of it is in flight (the writer, or held) */
    uint64_t gen;                           /* changes so far: a write covers the ones it saw */
    int64_t first_dirty_ms, last_change_ms; /* CLOCK_MONOTONIC */
    struct dt_entry *prev, *next;           /* least recently changed first */
};

struct dirtimes {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t idle; /* an entry stopped being busy */
    pthread_t thread;
    bool stop;
    dirtimes_write_fn write;
    void *ctx;
    struct htab table; /* struct dt_entry by path */
    struct dt_entry *head, *tail;
    size_t n;
};

/* What a write is given, copied out of the table. */
struct dt_job {
    char *path;
    struct timespec mtime, ctime;
    bool has_mtime;
    uint64_t gen;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct dt_entry *entry_of(const struct htab_node *h)
{
    return (struct dt_entry *)(void *)((const char *)h - offsetof(struct dt_entry, h));
}

static bool entry_eq(const struct htab_node *h, const void *path, size_t len)
{
    return h->user == len && memcmp(entry_of(h)->path, path, len) == 0;
}

/* path is dir or below it ("/" covers everything) */
static bool at_or_below(const char *dir, const char *path)
{
    if (!dir || strcmp(dir, "/") == 0)
        return true;
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* lock held */
static struct dt_entry *find(struct dirtimes *d, const char *path)
{
    size_t len = strlen(path);
    struct htab_node *h = htab_find(&d->table, hash_fnv1a32(path, len), path, len);
    return h ? entry_of(h) : NULL;
}

static void list_unlink(struct dirtimes *d, struct dt_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        d->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        d->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_append(struct dirtimes *d, struct dt_entry *e)
{
    e->prev = d->tail;
    e->next = NULL;
    if (d->tail)
        d->tail->next = e;
    else
        d->head = e;
    d->tail = e;
}

/* lock held */
static void remove_entry(struct dirtimes *d, struct dt_entry *e)
{
    htab_remove(&d->table, &e->h);
    list_unlink(d, e);
    d->n--;
    free(e->path);
    free(e);
}

/* lock held: room for one more; a clean entry goes first, a busy one
 * never (the table may then hold a few more) */
static void make_room(struct dirtimes *d)
{
    if (d->n < DIRTIMES_MAX)
        return;
    struct dt_entry *victim = NULL;
    for (struct dt_entry *e = d->head; e && (!victim || victim->dirty); e = e->next)
        if (!e->busy && (!victim || !e->dirty))
            victim = e;
    if (!victim)
        return;
    if (victim->dirty)
        LOGW("%s: more than %d directories with unwritten times: its times are lost", victim->path,
             DIRTIMES_MAX);
    remove_entry(d, victim);
}

/* lock held: the entry of path, made if missing; NULL on no memory */
static struct dt_entry *get(struct dirtimes *d, const char *path)
{
    struct dt_entry *e = find(d, path);
    if (e)
        return e;
    make_room(d);
    e = calloc(1, sizeof *e);
    if (!e || !(e->path = strdup(path))) {
        free(e);
        return NULL;
    }
    size_t len = strlen(path);
    e->h.user = (uint32_t)len;
    htab_insert(&d->table, &e->h, hash_fnv1a32(path, len));
    list_append(d, e);
    d->n++;
    return e;
}

static void touch(struct dirtimes *d, const char *dir, bool mtime)
{
    if (!d)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ms = mono_ms();
    pthread_mutex_lock(&d->lock);
    struct dt_entry *e = get(d, dir);
    if (e) {
        if (mtime) {
            e->mtime = now;
            e->has_mtime = true;
        }
        e->ctime = now;
        if (!e->dirty)
            e->first_dirty_ms = ms;
        e->dirty = true;
        e->gen++;
        e->last_change_ms = ms;
        list_unlink(d, e); /* most recently changed last */
        list_append(d, e);
    }
    pthread_mutex_unlock(&d->lock);
}

void dirtimes_touch_parent(struct dirtimes *d, const char *path)
{
    char parent[4096];
    path_parent(path, parent, sizeof parent);
    touch(d, parent, true);
}

void dirtimes_touch_ctime(struct dirtimes *d, const char *dir)
{
    touch(d, dir, false);
}

void dirtimes_forget_tree(struct dirtimes *d, const char *dir)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    for (struct dt_entry *e = d->head, *next; e; e = next) {
        next = e->next;
        if (at_or_below(dir, e->path))
            remove_entry(d, e);
    }
    pthread_mutex_unlock(&d->lock);
}

static bool newer(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

void dirtimes_apply(struct dirtimes *d, const char *path, struct stat *st)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    struct dt_entry *e = find(d, path);
    if (e && e->has_mtime && newer(&e->mtime, &st->st_mtim))
        st->st_mtim = e->mtime;
    if (e && newer(&e->ctime, &st->st_ctim))
        st->st_ctim = e->ctime;
    pthread_mutex_unlock(&d->lock);
}

/* lock held: copy out the dirty entries that match (due ones when dir is
 * NULL and !all); *out is freed by the caller (and each path) */
static size_t collect(struct dirtimes *d, const char *dir, bool due_only, struct dt_job **out)
{
    size_t n = 0;
    int64_t now = mono_ms();
    *out = calloc(d->n ? d->n : 1, sizeof **out);
    for (struct dt_entry *e = d->head; *out && e; e = e->next) {
        if (!e->dirty || e->busy || !at_or_below(dir, e->path))
            continue;
        if (due_only && now - e->last_change_ms < DIRTIMES_QUIET_MS &&
            now - e->first_dirty_ms < DIRTIMES_MAX_DIRTY_MS)
            continue;
        char *p = strdup(e->path);
        if (!p)
            break;
        (*out)[n++] = (struct dt_job){p, e->mtime, e->ctime, e->has_mtime, e->gen};
        e->busy = true;
    }
    return n;
}

/* lock held: what the write of job j said */
static void settle(struct dirtimes *d, const struct dt_job *j, int rc)
{
    struct dt_entry *e = find(d, j->path);
    if (!e)
        return;
    e->busy = false;
    pthread_cond_broadcast(&d->idle);
    if (e->gen != j->gen)
        return; /* changed again meanwhile: still dirty */
    if (rc == -ENOENT)
        remove_entry(d, e);
    else if (rc >= 0)
        e->dirty = false; /* written, or no marker: kept in memory */
    else
        e->first_dirty_ms = mono_ms(); /* try again after a while */
}

/* lock held on entry and return; dropped while writing */
static int write_jobs(struct dirtimes *d, struct dt_job *v, size_t n)
{
    int first = 0;
    pthread_mutex_unlock(&d->lock);
    int *rcs = calloc(n ? n : 1, sizeof *rcs);
    for (size_t i = 0; i < n; i++) {
        int rc = d->write(d->ctx, v[i].path, v[i].has_mtime ? &v[i].mtime : NULL, &v[i].ctime);
        if (rcs)
            rcs[i] = rc;
        if (rc < 0 && rc != -ENOENT && !first)
            first = rc;
    }
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < n; i++) {
        settle(d, &v[i], rcs ? rcs[i] : -ENOMEM);
        free(v[i].path);
    }
    free(rcs);
    free(v);
    return first;
}

int dirtimes_flush(struct dirtimes *d, const char *dir)
{
    if (!d)
        return 0;
    pthread_mutex_lock(&d->lock);
    struct dt_job *v;
    size_t n = collect(d, dir, false, &v);
    int rc = v ? write_jobs(d, v, n) : -ENOMEM;
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static void *writer(void *arg)
{
    struct dirtimes *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += DT_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&d->wake, &d->lock, &until);
        struct dt_job *v;
        size_t n = d->stop ? 0 : collect(d, NULL, true, &v);
        if (n)
            write_jobs(d, v, n);
        else if (!d->stop)
            free(v);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

/* The table's own parts, once its thread is gone and it is empty. */
static void destroy(struct dirtimes *d)
{
    htab_free(&d->table);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
    pthread_cond_destroy(&d->idle);
    free(d);
}

int dirtimes_new(dirtimes_write_fn write, void *ctx, struct dirtimes **out)
{
    struct dirtimes *d = calloc(1, sizeof *d);
    if (!d || htab_init(&d->table, DT_FIRST_BUCKETS, entry_eq) != 0) {
        free(d);
        return -ENOMEM;
    }
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    pthread_cond_init(&d->idle, NULL);
    d->write = write;
    d->ctx = ctx;
    if (pthread_create(&d->thread, NULL, writer, d) != 0) {
        destroy(d);
        return -EAGAIN;
    }
    *out = d;
    return 0;
}

void dirtimes_free(struct dirtimes *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    int rc = dirtimes_flush(d, NULL); /* unmount: the last changes land */
    if (rc)
        LOGW("directory times not written at exit: %s", strerror(-rc));
    while (d->head)
        remove_entry(d, d->head);
    destroy(d);
}

uint64_t dirtimes_hold(struct dirtimes *d, const char *dir)
{
    if (!d)
        return 0;
    pthread_mutex_lock(&d->lock);
    struct dt_entry *e;
    while ((e = get(d, dir)) && e->busy) /* the entry may go while we wait */
        pthread_cond_wait(&d->idle, &d->lock);
    uint64_t token = 0;
    if (e) {
        e->busy = true;
        token = e->gen + 1;
    }
    pthread_mutex_unlock(&d->lock);
    return token;
}

void dirtimes_release(struct dirtimes *d, const char *dir, uint64_t token, bool written)
{
    if (!d || !token)
        return;
    pthread_mutex_lock(&d->lock);
    struct dt_entry *e = find(d, dir);
    if (e) {
        e->busy = false;
        if (written && e->gen + 1 == token)
            e->dirty = false; /* the rewrite carried its times */
    }
    pthread_cond_broadcast(&d->idle);
    pthread_mutex_unlock(&d->lock);
}
