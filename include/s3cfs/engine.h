/* engine.h - the background job engine: server-side copies and batched
 * deletes, run by the worker pool, ordered per key, journaled before they
 * are acknowledged (doc/DESIGN.md §3).
 *
 * What the filesystem gets: cp/mv/rm -r return as soon as their jobs are
 * queued; the pool runs many at once; every later operation that depends on
 * a queued job can wait for exactly the jobs it depends on.
 *
 * Ordering by key. A COPY writes its destination and reads its source; a
 * DELETE writes its key. Jobs that share a key run in submission order when
 * at least one of them writes it; readers of a key run concurrently. So
 * `cp a b; rm a` deletes a only once the copy landed, `cp a b; cp b c` starts
 * the second copy once the first landed, `cp a b; cp c b` leaves c's content
 * in b, and disjoint jobs run in parallel up to the concurrency limit.
 *
 * Failures. A job that fails (after the S3 client's own retries, and after
 * up to max_retries re-runs of the engine when the error is transient) is
 * logged, counted, listed by engine_failures, and leaves an unreported error
 * on its keys: the destination (or deleted key) in the role ENGINE_AS_DEST, a
 * COPY's source in the role ENGINE_AS_SOURCE. The next engine_wait_key /
 * engine_wait_prefix / engine_drain covering it returns it once.
 *
 * Cancellation (doc/DESIGN.md §3.11: a call that returned 0 lands, or its failure
 * is reported; it never silently vanishes). When a COPY fails for good, the
 * engine cancels, at that moment and only among the jobs queued behind it:
 *   - the job it guards: the delete of a move's source (engine_submit_move),
 *     so a source is never destroyed unless its own copy landed;
 *   - the COPYs that read its destination and were queued before the next
 *     job replacing that key (`cp a b; cp b c` with a->b failed): they
 *     would copy a stale or missing object the namespace did not show.
 * A cancelled job fails like any other (listed, counted, its error on its
 * destination for the next wait), so this carries along chains (`mv a b;
 * mv b c`: failing a->b cancels delete a, b->c and delete b). Nothing else
 * is cancelled: an explicit delete or overwrite of a key runs whatever
 * failed on that key before (the failure stays reported on its own).
 * A failed job's DONE is journaled together with those of the jobs it
 * cancels (one write), so a replay never has a dependant without the job
 * it depends on; if that cannot be recorded the records stay live and a
 * replay runs the failed job again, its dependants guarded again.
 * At most 4096 keys keep an unreported failure; past that (or when the
 * record cannot be allocated) the oldest is forgotten (logged) and only
 * the next engine_drain returns it. Unreported errors stay in memory (about
 * 100 bytes per failed key) until a wait or drain reports them.
 *
 * Concurrency. The engine starts at most `limit` pool tasks at a time (one
 * COPY, or one DeleteObjects batch, per task); limit starts at the pool's
 * limit. engine_throttled halves it (and the delete batch size), at most once
 * per throttle_hold_ms; every grow_every successful requests add 1 back (and
 * 1/16 of delete_batch), up to the starting values. The pool's own limit is
 * set to the same value (pool_set_limit), since S3 throttles every user of
 * the pool alike.
 *
 * Deletes batch per bucket: DELETEs whose turn came accumulate per bucket
 * and go out as one DeleteObjects of up to `batch` keys when the batch is
 * full, batch_delay_ms after its first key, or at once while someone waits
 * (a wait, a drain, a submitter blocked by max_pending). Per-key failures
 * of a batch fail only those jobs.
 *
 * Memory: a pending job costs a fixed struct (200 bytes) plus its source
 * ETag and content type, and each key in use one map entry (72 bytes plus
 * bucket and key) shared by the jobs on it and freed when no pending job
 * uses the key (and no unreported failure is kept on it). Measured with
 * glibc malloc by test_jobs, 30-byte keys: 343 bytes per pending COPY whose
 * source is already in use, 344 per DELETE (with its share of a batch); a
 * COPY with a new source and a 32-byte ETag costs about 480. engine_submit
 * blocks while max_pending jobs are pending, so a `cp -r` of 100,000 files
 * holds at most max_pending of them (about 2 MiB at the default 4096; a
 * engine_submit_move may go one over). Held jobs count too, so a submitter
 * about to block first releases every held group: otherwise tree moves
 * whose held deletes filled max_pending would all block before releasing
 * their own groups. A released delete still runs only after its copy
 * landed, only batched less well.
 *
 * Locking: one engine mutex protects every mutable field; condition
 * variables wake the dispatcher thread, blocked submitters and waiters.
 * No lock is held while exec or del runs, nor across pool_submit, nor
 * while the journal is written: a job's record is written by its submitter
 * after the engine lock is released (the job is queued in its place but
 * does not start before the write returned), an M record by
 * engine_fold_meta likewise, the DONE of a failed job and of what it
 * cancels by the dispatcher before it starts anything else. A slow disk
 * stalls the submitter, not every caller. The journal has its own mutex;
 * no journal function is called with the engine lock held; lock order
 * journal -> pool.
 *
 * Threads: the engine has one dispatcher thread (it starts jobs and sends
 * batches; all signals blocked). exec and del run on pool workers and must
 * not call engine_submit, engine_wait_* or engine_drain (they would wait for work
 * that may need their own worker). engine_throttled may be called from
 * anywhere, including inside exec (the S3 client's on_throttle hook).
 */
#ifndef S3CFS_ENGINE_H
#define S3CFS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3cfs/error.h"
#include "s3cfs/s3.h"

struct pool;
struct journal;
struct engine;

enum job_kind {
    JOB_COPY,
    JOB_DELETE,
};

/* Roles of a key in a job, for waits and queries. */
#define ENGINE_AS_DEST   1 /* the job writes the key: COPY destination, DELETE */
#define ENGINE_AS_SOURCE 2 /* the job reads the key: COPY source */

/* What to do. Borrowed by engine_submit, which copies everything it keeps. */
struct job_spec {
    enum job_kind kind;
    const char *bucket, *key; /* COPY: the destination; DELETE: the object */
    /* COPY only: */
    const char *src_bucket, *src_key;
    const char *src_etag; /* the source must still have it; NULL or "": no condition */
    uint64_t src_size;
    /* The destination must not exist (RENAME_NOREPLACE): If-None-Match: *
     * where the server honours it. Not journaled: a replay copies
     * without it. */
    bool dst_create_only;
    /* Metadata directive REPLACE with these (nmeta may be 0); meta NULL:
     * directive COPY, the source's metadata and content type are kept. */
    const struct s3_meta *meta;
    size_t nmeta;
    const char *content_type; /* REPLACE only; NULL: not sent */
    /* Non-zero: a group from engine_new_group. The job waits its turn as
     * usual but does not start before engine_release(group) (a tree move
     * queues each source's delete with its copy, journaled together, and
     * lets a page's deletes go as one batch once its copies landed), or
     * before a submitter blocks on max_pending. Not journaled: a replay
     * runs the job in its order. */
    uint64_t hold;
    /* DELETE only, set by engine_submit_move (engine_submit refuses it) and
     * kept by the journal: the id of the COPY whose failure cancels this
     * job. A replay keeps the link while that COPY is replayed too. */
    uint64_t guard;
    /* DELETE only, set by engine_submit_move from the COPY's src_etag: delete
     * only while the object still has this ETag (the one copied). Not
     * journaled: a replay deletes without it. */
    const char *if_match;
    /* DELETE only: when it was queued (Unix seconds), written by the
     * journal (0: now) and handed to a replay (0: not recorded), so that a
     * replayed delete spares an object written after it (fsqueue.c). */
    int64_t queued_s;
    /* DELETE only: the ETag the object had, as far as the mount knew, when
     * the delete was queued (NULL or "": unknown). Journaled: a replay that
     * finds an object written in the very second the delete was queued in
     * tells its own object (this ETag) from a later one by it. */
    const char *seen_etag;
};

/* Runs one COPY; returns 0 or -errno, filling err on failure. The spec's
 * strings stay valid until it returns. Called with no engine lock held. */
typedef int (*engine_exec_fn)(void *ctx, uint64_t id, const struct job_spec *spec,
                              struct s3_error *err);
/* Sends one DeleteObjects of n <= 1000 keys of bucket; etags[i] is NULL or
 * the ETag keys[i] must still have (a move's source: job_spec.if_match).
 * Returns the request's result; on 0, per_key_rc[i] (zeroed by the engine)
 * is 0 or the -errno of keys[i]: -ESTALE for a key whose ETag condition
 * failed. Such a key is "kept": its job ends without an error (no wait
 * returns one: the move it belongs to happened, its source was replaced by
 * another client's object after the copy and that object stays), listed by
 * engine_failures, its key handed to `over` with -ESTALE so the namespace
 * asks S3 again. Called with no engine lock held. */
typedef int (*engine_delete_fn)(void *ctx, const char *bucket, const char *const *keys,
                                const char *const *etags, size_t n, int *per_key_rc,
                                struct s3_error *err);

/* A job is over (rc 0: landed; else failed for good or cancelled): called
 * once per job (not for one whose submission failed) with the engine lock held, so it must not call
 * the engine nor block. last: no other pending job writes that key (its namespace entry can follow
 * S3 again). */
typedef void (*engine_over_fn)(void *ctx, const char *bucket, const char *key, int rc, bool last);

/* What a replay does with a job read from the journal. */
enum engine_admit {
    ENGINE_ADMIT_RUN,  /* resubmit it */
    ENGINE_ADMIT_DROP, /* finish it (DONE) without running it */
    ENGINE_ADMIT_KEEP, /* leave it live in the journal, for the next mount */
};
/* Whether a replayed job runs: called by engine_recover for each job, in
 * order, with no engine lock held. rewritten: an earlier replayed job
 * writes the job's key (so a DELETE's object is that job's result). */
typedef enum engine_admit (*engine_admit_fn)(void *ctx, uint64_t id, const struct job_spec *spec,
                                             bool rewritten);

/* Zeroed fields take the defaults in brackets. */
struct engine_config {
    struct pool *pool;       /* borrowed; must outlive the engine */
    engine_exec_fn exec;     /* required */
    engine_delete_fn del;    /* required */
    engine_over_fn over;     /* NULL: none */
    engine_admit_fn admit;   /* NULL: every replayed job runs */
    void *ctx;               /* passed to exec, del and over */
    struct journal *journal; /* borrowed, NULL: none; must outlive the engine */
    int max_pending;         /* [4096] jobs submitted and not finished */
    int delete_batch;        /* [1000] keys per DeleteObjects, at most 1000 */
    int batch_delay_ms;      /* [100] -1: send at once */
    int batch_quiet_ms;      /* [200] send a batch no key joined for this long */
    int grow_every;          /* [32] successful requests per +1 of the limit */
    int throttle_hold_ms;    /* [100] throttles closer than this cut once */
    int max_retries;         /* [2] re-runs of a transiently failed job; -1: none */
    int retry_delay_ms;      /* [1000] before each re-run */
};

/* Start the engine (its dispatcher thread). The ids it hands out continue
 * after the journal's highest. -EINVAL, -ENOMEM or pthread_create's error. */
int engine_new(const struct engine_config *cfg, struct engine **out);

/* Wait for every job to finish (failures are logged), stop and free. Call
 * once nothing submits any more. NULL is ignored. */
void engine_free(struct engine *e);

/* Resubmit the jobs the journal holds from a previous run, in their
 * original order and with their ids (they are not journaled again). Call
 * right after engine_new, before any engine_submit. *count (may be NULL) gets
 * how many. */
int engine_recover(struct engine *e, size_t *count);

/* Queue a job: journaled (when there is a journal) before it returns, so a
 * daemon crash loses nothing. Blocks while max_pending jobs are pending.
 * *id (may be NULL) receives its id. -EINVAL for an incomplete spec,
 * -ENOMEM, -ESHUTDOWN after engine_free began, or the journal's error (the
 * job then never runs; queued meanwhile, it is cancelled without a report,
 * and cancels what a failure of it would). */
int engine_submit(struct engine *e, const struct job_spec *spec, uint64_t *id);

/* mv: queue the COPY `copy` and the DELETE of its source guarded by it
 * (held in group `hold`, 0: none), both journaled, under one engine lock so
 * that no failure comes between: the delete runs only once the copy
 * landed, and is cancelled (and reported) if the copy fails for good.
 * Blocks and fails as engine_submit; on an error neither is queued. The ids
 * (either may be NULL) receive the jobs' ids. */
int engine_submit_move(struct engine *e, const struct job_spec *copy, uint64_t hold,
                       uint64_t *copy_id, uint64_t *del_id);

/* A new group for job_spec.hold. */
uint64_t engine_new_group(struct engine *e);
/* Let the held jobs of group run (0: every group; engine_drain releases
 * every group too). */
void engine_release(struct engine *e, uint64_t group);

/* cp -a / cp -p: replace the metadata of the COPY onto bucket/key by meta
 * (directive REPLACE; the content type stays as submitted). Only the last
 * job on that key qualifies, and only before it started, so jobs queued in
 * between never see the new metadata too early. 0: folded (and journaled);
 * -ENOENT: no pending job on the key; -EALREADY: the last job on the key
 * started, or is not a COPY onto it (the caller sends its own request after
 * engine_wait_key). */
int engine_fold_meta(struct engine *e, const char *bucket, const char *key,
                     const struct s3_meta *meta, size_t nmeta);

/* Block until every job pending now that has bucket/key in one of `roles`
 * (ENGINE_AS_DEST | ENGINE_AS_SOURCE) finished. Returns the earliest unreported
 * error on the key in those roles (and clears them), else 0. */
int engine_wait_key(struct engine *e, const char *bucket, const char *key, int roles);

/* fsync of a directory: block until every job pending now whose
 * destination (or deleted key) is below prefix in bucket ("" covers the
 * bucket; bucket NULL covers every job) finished. Returns the earliest
 * unreported ENGINE_AS_DEST error below prefix, and clears those. */
int engine_wait_prefix(struct engine *e, const char *bucket, const char *prefix);

/* Block until every job pending now finished. Returns the earliest
 * unreported error and clears them all (engine_failures lists them). */
int engine_drain(struct engine *e);

/* Whether a pending job has bucket/key in one of `roles`. */
bool engine_pending_key(struct engine *e, const char *bucket, const char *key, int roles);

/* The S3 client saw throttling (503 SlowDown...): halve the concurrency
 * limit (not below 1) and the delete batch size. */
void engine_throttled(struct engine *e);

struct engine_status {
    uint64_t pending; /* submitted, not finished */
    uint64_t queued;  /* pending and not started (or waiting for a retry) */
    uint64_t running; /* handed to the pool */
    uint64_t done;    /* finished successfully since engine_new */
    uint64_t failed;  /* finished with an error (cancellations included) */
    uint64_t retried; /* re-runs after transient failures */
    int limit;        /* current concurrency limit */
    int batch;        /* current delete batch size */
    size_t failures_kept;
};
void engine_status(struct engine *e, struct engine_status *out);

/* The last failures (up to 256), oldest first: cb(arg, bucket, key, -errno,
 * message) with bucket/key the destination or the deleted key. cb runs
 * without the engine lock (on a copy) and may call the engine. Returns how
 * many were listed, or -ENOMEM. */
typedef void (*engine_failure_fn)(void *arg, const char *bucket, const char *key, int err,
                                  const char *msg);
int engine_failures(struct engine *e, engine_failure_fn cb, void *arg);

/* For the control socket (ctl_server.h). */
/* How many pending jobs have their destination (or deleted key) below
 * prefix in bucket ("" covers the bucket; bucket NULL: every job). Walks
 * the pending list (at most max_pending jobs, plus a journal's replay). */
size_t engine_count_prefix(struct engine *e, const char *bucket, const char *prefix);
/* Block until nothing is pending (held groups are released, as by
 * engine_drain), without reporting or clearing any error: what a later
 * engine_drain returns is unchanged. */
void engine_wait_idle(struct engine *e);

/* For tests of the paths that must fail closed: while set, the engine's
 * allocations of failure records fail (the record of a failed key, the
 * DONE list of a failure and what it cancels). */
void engine_test_fail_alloc(struct engine *e, bool fail);

#endif
