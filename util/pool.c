/* pool.c - worker threads over a bounded FIFO ring of tasks.
 *
 * One mutex protects everything mutable, including the groups of this
 * pool; it is never held while a task runs. Three condition variables say
 * who is woken by what, so a completion does not wake blocked submitters
 * and an enqueue does not wake group waiters needlessly.
 */
#include "s3cfs/pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>

struct pool_task {
    pool_fn fn;
    void *arg;
    struct pool_group *group; /* NULL: result ignored */
};

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work; /* a task may start, or the workers may exit */
    pthread_cond_t room; /* the queue has a free slot */
    pthread_cond_t done; /* a group finished, or a task was queued while helpers wait */
    /* lock: the ring of queued tasks, ring[(head + i) % cap] for i < len */
    struct pool_task *ring;
    size_t cap, head, len;
    int limit;          /* lock */
    int running;        /* lock: workers inside a task (inline tasks not counted twice) */
    int helpers;        /* lock: workers sleeping in pool_group_wait that would run tasks */
    bool stopping;      /* lock: pool_free was called */
    uint64_t completed; /* lock */
    /* constant after pool_new */
    int nthreads;
    pthread_t *threads;
};

/* The pool whose worker this thread is, or NULL: the deadlock rule. */
static _Thread_local struct pool *worker_of;

/* lock held, len < cap */
static void enqueue(struct pool *p, const struct pool_task *t)
{
    p->ring[(p->head + p->len) % p->cap] = *t;
    p->len++;
    pthread_cond_signal(&p->work);
    if (p->helpers > 0)
        pthread_cond_broadcast(&p->done);
}

/* lock held, len > 0 */
static struct pool_task dequeue(struct pool *p)
{
    struct pool_task t = p->ring[p->head];
    p->head = (p->head + 1) % p->cap;
    p->len--;
    pthread_cond_signal(&p->room);
    return t;
}

/* lock held: account for a finished task of group g */
static void group_finish(struct pool *p, struct pool_group *g, int rc)
{
    if (!g)
        return;
    if (rc != 0 && g->result == 0)
        g->result = rc;
    /* the waiter may free g once it sees 0: g is not touched after this */
    if (--g->pending == 0)
        pthread_cond_broadcast(&p->done);
}

/* Called and returns with the lock held; the task runs without it. */
static void run_task(struct pool *p, const struct pool_task *t)
{
    pthread_mutex_unlock(&p->lock);
    int rc = t->fn(t->arg);
    pthread_mutex_lock(&p->lock);
    p->completed++;
    group_finish(p, t->group, rc);
}

static bool can_start(const struct pool *p)
{
    return p->len > 0 && p->running < p->limit;
}

static bool can_exit(const struct pool *p)
{
    /* a running task may still submit more, so idle workers stay until it ends */
    return p->stopping && p->len == 0 && p->running == 0;
}

static void *worker_main(void *arg)
{
    struct pool *p = arg;
    worker_of = p;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!can_start(p) && !can_exit(p))
            pthread_cond_wait(&p->work, &p->lock);
        if (!can_start(p))
            break;
        struct pool_task t = dequeue(p);
        p->running++;
        run_task(p, &t);
        p->running--;
    }
    /* the last task ended: the idle workers are asleep and must see it too */
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Start n workers with every signal blocked (they inherit the mask). */
static int start_workers(struct pool *p, int n)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    while (p->nthreads < n && rc == 0) {
        rc = pthread_create(&p->threads[p->nthreads], NULL, worker_main, p);
        p->nthreads += rc == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

static void pool_destroy(struct pool *p)
{
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->room);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p->ring);
    free(p);
}

int pool_new(int nthreads, size_t queue_capacity, struct pool **out)
{
    if (nthreads < 1 || queue_capacity < 1)
        return -EINVAL;
    struct pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->ring = calloc(queue_capacity, sizeof *p->ring);
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->ring || !p->threads) {
        free(p->ring);
        free(p->threads);
        free(p);
        return -ENOMEM;
    }
    p->cap = queue_capacity;
    p->limit = nthreads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->room, NULL);
    pthread_cond_init(&p->done, NULL);
    int rc = start_workers(p, nthreads);
    if (rc) {
        pool_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pool_destroy(p);
}

/* lock held: bind g to p on its first submission */
static int group_attach(struct pool *p, struct pool_group *g)
{
    if (!g)
        return 0;
    if (g->pool && g->pool != p)
        return -EINVAL;
    g->pool = p;
    return 0;
}

/* lock held: 0 once a slot is free; -EAGAIN when full and not blocking;
 * 1 when full and the caller, a worker of p, must run the task itself */
static int wait_room(struct pool *p, bool block)
{
    while (p->len == p->cap) {
        if (!block)
            return -EAGAIN;
        if (worker_of == p)
            return 1;
        pthread_cond_wait(&p->room, &p->lock);
    }
    return 0;
}

static int submit(struct pool *p, struct pool_group *g, pool_fn fn, void *arg, bool block)
{
    struct pool_task t = {fn, arg, g};
    pthread_mutex_lock(&p->lock);
    int rc = group_attach(p, g);
    if (rc == 0)
        rc = wait_room(p, block);
    if (rc >= 0 && g)
        g->pending++;
    if (rc == 0)
        enqueue(p, &t);
    else if (rc == 1)
        run_task(p, &t);
    pthread_mutex_unlock(&p->lock);
    return rc < 0 ? rc : 0;
}

int pool_submit(struct pool *p, pool_fn fn, void *arg)
{
    return submit(p, NULL, fn, arg, true);
}

int pool_try_submit(struct pool *p, pool_fn fn, void *arg)
{
    return submit(p, NULL, fn, arg, false);
}

int pool_submit_group(struct pool *p, struct pool_group *g, pool_fn fn, void *arg)
{
    return submit(p, g, fn, arg, true);
}

void pool_group_init(struct pool_group *g)
{
    *g = (struct pool_group){0};
}

void pool_group_destroy(struct pool_group *g)
{
    /* nothing is allocated; clearing makes a use after destroy visible */
    *g = (struct pool_group){0};
}

int pool_group_wait(struct pool_group *g)
{
    struct pool *p = g->pool;
    if (!p)
        return g->result; /* nothing was ever submitted */
    bool help = worker_of == p;
    pthread_mutex_lock(&p->lock);
    while (g->pending > 0) {
        if (help && p->len > 0) {
            struct pool_task t = dequeue(p);
            run_task(p, &t);
            continue;
        }
        p->helpers += help;
        pthread_cond_wait(&p->done, &p->lock);
        p->helpers -= help;
    }
    int rc = g->result;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void pool_set_limit(struct pool *p, int n)
{
    pthread_mutex_lock(&p->lock);
    p->limit = n < 1 ? 1 : n > p->nthreads ? p->nthreads : n;
    pthread_cond_broadcast(&p->work); /* a raised limit lets several start */
    pthread_mutex_unlock(&p->lock);
}

void pool_get_stats(struct pool *p, struct pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = (struct pool_stats){p->len, p->running, p->completed, p->limit, p->nthreads};
    pthread_mutex_unlock(&p->lock);
}
