/* pool.h - a fixed set of worker threads running queued tasks.
 *
 * Used for multipart upload parts, parallel ranged GETs and the job engine.
 * Tasks start in FIFO order. The queue has a fixed capacity: pool_submit
 * blocks while it is full, which is what keeps memory bounded when a
 * producer (a `cp -r` of 100k files) is faster than S3.
 *
 * Concurrency limit: at most `limit` tasks run at once (1 <= limit <=
 * nthreads); the other workers wait. The job engine lowers it when S3
 * throttles and raises it again slowly; a lowered limit takes effect as
 * running tasks finish (nothing is interrupted).
 *
 * Groups: a struct pool_group counts the tasks submitted under it, so that
 * one caller can wait for "all parts of this upload" and get the first
 * error. A group belongs to the pool it was first submitted to; its fields
 * are protected by that pool's lock.
 *
 * Tasks that submit or wait - the deadlock rule. A task runs on a worker;
 * if it blocked in pool_submit on a full queue, or in pool_group_wait on
 * tasks still queued, every worker could end up waiting for a queue that
 * only workers drain. So, for a thread that is a worker of the same pool:
 *   - pool_submit on a full queue runs the task inline, on the calling
 *     worker, before returning (FIFO does not hold for that task; its
 *     result still goes to its group);
 *   - pool_group_wait runs queued tasks (any group, FIFO) while the group
 *     is unfinished and the queue is not empty, and sleeps only when it is.
 * Neither exceeds the concurrency limit: the worker is already counted as
 * running. Consequently a task must not hold a lock across pool_submit or
 * pool_group_wait that another task may take (it could run on this very
 * thread). Cycles between two different pools are not covered.
 *
 * Worker threads block all signals, so signal handlers (unmount on
 * SIGTERM) run on the daemon's own threads, never inside a task.
 */
#ifndef S3CFS_POOL_H
#define S3CFS_POOL_H

#include <stddef.h>
#include <stdint.h>

struct pool;

/* A task: returns 0 or a negative errno (kept by its group, if any). */
typedef int (*pool_fn)(void *arg);

/* Initialise with pool_group_init; the fields are private. */
struct pool_group {
    struct pool *pool; /* set by the first submission, then constant */
    unsigned pending;  /* pool lock: submitted and not yet finished */
    int result;        /* pool lock: first non-zero task result */
};

struct pool_stats {
    size_t queued;      /* waiting in the queue */
    int running;        /* being run by a worker */
    uint64_t completed; /* finished since pool_new */
    int limit;
    int nthreads;
};

/* nthreads >= 1 workers, a queue of queue_capacity >= 1 tasks; the limit
 * starts at nthreads. -EINVAL, -ENOMEM, or pthread_create's error. */
int pool_new(int nthreads, size_t queue_capacity, struct pool **out);

/* Drain and stop: every queued task (including those that running tasks
 * submit meanwhile) runs, then the workers are joined. Call from a thread
 * that is not a worker, once nothing else submits from outside. */
void pool_free(struct pool *p);

/* Queue fn(arg), blocking while the queue is full (see the deadlock rule
 * for workers). Returns 0. */
int pool_submit(struct pool *p, pool_fn fn, void *arg);

/* Queue fn(arg), or return -EAGAIN at once when the queue is full. */
int pool_try_submit(struct pool *p, pool_fn fn, void *arg);

void pool_group_init(struct pool_group *g);
/* The group must be finished (waited for). */
void pool_group_destroy(struct pool_group *g);

/* pool_submit under group g. All of a group's tasks go to one pool:
 * -EINVAL if g was used with another one. */
int pool_submit_group(struct pool *p, struct pool_group *g, pool_fn fn, void *arg);

/* Wait until every task submitted under g so far has finished; returns the
 * first non-zero result among them, or 0. The first submission must happen
 * before the wait starts (normally the waiter submitted them). A group
 * may be waited for again and submitted to again; the result persists. */
int pool_group_wait(struct pool_group *g);

/* Set the concurrency limit, clamped to [1, nthreads]. */
void pool_set_limit(struct pool *p, int n);

void pool_get_stats(struct pool *p, struct pool_stats *out);

#endif
