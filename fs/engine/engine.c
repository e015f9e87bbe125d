/* engine.c - the background job engine (see engine.h for the contract).
 *
 * Per-key ordering is a readers-writer queue per key: a job appends one
 * access to the queue of every key it touches (a COPY two, one if it copies
 * a key onto itself; a DELETE one), all at once under the lock, so every
 * queue is in submission order and no two jobs can wait for each other.
 * What a queue grants is always a prefix of it: one writer at the head, or
 * readers up to the first writer. A job whose accesses are all granted is
 * ready. The queues and the map of keys are keyqueue.c's; this file decides what
 * a grant means for a job.
 *
 * Ready jobs go to the dispatcher thread, the only one that starts work: it
 * cancels the jobs a failure doomed, moves DELETEs into their bucket's
 * batch, and hands COPYs and due batches to the pool while fewer than
 * `limit` of its tasks are in flight. A task's completion (on a pool
 * worker) writes DONE to the journal before it releases the job's keys, so
 * no dependant starts before a replay would know the job is over.
 *
 * Cancellation is decided when a COPY fails for good, not when a dependant's
 * turn comes: the jobs it cancels (engine.h) are all queued behind it on one
 * of its keys, so none of them has started; each gets doom_rc, and the
 * dispatcher cancels it when it becomes ready. Deciding then, by position
 * in the queues, cancels exactly the jobs that were queued on the promise
 * of that copy, and no later job on the same key.
 */
#include "s3cfs/engine.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3cfs/journal.h"
#include "s3cfs/keyqueue.h"
#include "s3cfs/log.h"
#include "s3cfs/pool.h"

#define DEF_MAX_PENDING    4096
#define MAX_BATCH          1000 /* DeleteObjects' own limit */
#define DEF_BATCH_DELAY_MS 100
#define DEF_GROW_EVERY     32
#define DEF_HOLD_MS        100
#define DEF_RETRIES        2
#define DEF_RETRY_DELAY_MS 1000
#define FAIL_RING          256
#define MAX_KERR           4096 /* keys with an unreported failure kept */

enum { ERR_DEST, ERR_SRC }; /* a role's slot in struct kerr */

enum job_state {
    JS_WAITING, /* some of its keys are not granted yet */
    JS_READY,   /* on a ready list, for the dispatcher */
    JS_BATCHED, /* a DELETE in its bucket's batch */
    JS_RETRY,   /* on the retry list until due */
    JS_RUNNING, /* handed to the pool */
    JS_HELD,    /* ready, but its group is held (engine_release) */
};

struct job;
struct kq_key;

/* REPLACE metadata in one allocation: the array, then its strings. */
struct meta_set {
    size_t n;
    struct s3_meta m[];
};

struct job {
    struct engine *e;         /* constant */
    uint64_t id;              /* constant once queued */
    struct job *prev, *next;  /* lock: the pending list, in submission order */
    struct job *link;         /* lock: a ready list, a batch or the retry list */
    struct kq_access acc[2];  /* [0] the written key, [1] a COPY's other source */
    unsigned char nacc;       /* constant once queued */
    unsigned char ungranted;  /* lock */
    unsigned char kind;       /* constant */
    unsigned char state;      /* lock: enum job_state */
    unsigned char tries;      /* owned by whoever runs the job: re-runs so far */
    bool started;             /* lock: handed to the pool once, metadata frozen */
    bool dst_create_only;     /* constant: COPY with If-None-Match: * */
    bool silent;              /* lock: its submission already returned its failure */
    unsigned char writing;    /* lock: journal records about it being written: it waits */
    int doom_rc;              /* lock: non-zero: cancelled with it when ready */
    uint64_t doom_by;         /* lock: the failed job that doomed it */
    uint64_t guard;           /* constant once queued: the COPY it belongs to, or 0 */
    uint64_t hold;            /* lock: its group while held, else 0 */
    uint64_t src_size;        /* constant */
    int64_t due_ms;           /* lock: when a job on the retry list runs again */
    struct meta_set *meta;    /* lock until started, then constant; NULL: COPY */
    const char *src_etag;     /* constant, in strings[]; NULL: no condition (DELETE: If-Match) */
    const char *content_type; /* constant, in strings[] */
    char strings[];
};

/* A FIFO of jobs linked through job->link. */
struct jlist {
    struct job *head, *tail;
};

/* Unreported failures on one key, by role (ERR_DEST, ERR_SRC). */
struct kerr {
    struct kerr *prev, *next; /* lock: the engine's list of keys with errors */
    struct kq_key *ks;        /* constant */
    int rc[2];                /* lock: 0: none */
    uint64_t seq[2];          /* lock: failure order, to report the earliest */
};

/* The ready DELETEs of one bucket. Freed when empty. */
struct batchq {
    struct batchq *next; /* lock */
    struct jlist jobs;   /* lock */
    size_t n;            /* lock */
    int64_t first_ms;    /* lock: when the oldest arrived */
    int64_t last_ms;     /* lock: when the newest arrived */
    char bucket[];
};

struct failure {
    char *bucket, *key, *msg;
    int err;
};

/* A thread in engine_wait_key/prefix/drain. Lives on its stack. */
struct waiter {
    struct waiter *prev, *next; /* lock */
    struct kq_key *ks;          /* a key wait (pinned by refs), else NULL */
    const char *bucket;         /* a prefix wait; NULL with ks NULL: drain */
    const char *prefix;
    size_t plen;
    int roles;
    uint64_t max_id;  /* jobs queued after the wait began are not waited for */
    size_t remaining; /* lock */
    pthread_cond_t cv;
};

/* One DeleteObjects request, as a pool task. One allocation. */
struct batch_task {
    struct engine *e;
    size_t n;
    struct job **jobs;
    const char **keys;
    const char **etags; /* NULL entries: unconditional */
    int *rcs;
    uint64_t *ids;
    char bucket[];
};

struct engine {
    struct engine_config cfg; /* constant; defaults filled in */
    pthread_t thread;         /* the dispatcher */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the dispatcher: work, capacity, a waiter, stop (monotonic) */
    pthread_cond_t room; /* submitters blocked by max_pending */
    pthread_cond_t idle; /* npending reached 0 */
    /* everything below: lock */
    struct keyqueue keys;
    struct job *pend_head, *pend_tail;
    size_t npending;
    struct jlist ready_copy, ready_del, retry;
    struct batchq *batches;
    struct kerr *errs, *errs_tail; /* newest first */
    size_t nkerr;
    int dropped_rc; /* earliest failure forgotten past MAX_KERR, for a drain */
    uint64_t ndropped;
    uint64_t next_group;
    size_t nheld;    /* pending jobs with a hold */
    bool replaying;  /* engine_recover: nothing starts, submissions do not block */
    bool fail_alloc; /* engine_test_fail_alloc */
    struct waiter *waiters;
    int nwaiters, blocked;
    uint64_t next_id, fail_seq;
    int inflight; /* pool tasks handed out and not finished */
    int limit, max_limit, batch, successes;
    int64_t last_cut_ms;
    uint64_t nrunning, ndone, nfailed, nretried;
    struct failure ring[FAIL_RING];
    size_t ring_next, ring_len;
    bool compact_due; /* jobs finished since the journal was last compacted */
    bool flushing;    /* the dispatcher is writing done_q's records */
    uint64_t *done_q; /* DONE records for the dispatcher to write (fail_dependants) */
    size_t done_n, done_cap;
    pthread_cond_t written; /* a job's journal record was written (engine_fold_meta) */
    bool stopping;
};

/* ---------- small helpers ---------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void jlist_push(struct jlist *l, struct job *jb)
{
    jb->link = NULL;
    *(l->tail ? &l->tail->link : &l->head) = jb;
    l->tail = jb;
}

static struct job *jlist_pop(struct jlist *l)
{
    struct job *jb = l->head;
    if (jb) {
        l->head = jb->link;
        if (!l->head)
            l->tail = NULL;
    }
    return jb;
}

/* The job that made an access. */
static struct job *acc_job(const struct kq_access *a)
{
    return a->owner;
}

/* The key a job writes, and the one it reads. */
static struct kq_key *job_dest(const struct job *jb)
{
    return jb->acc[0].key;
}

static struct kq_key *job_src(const struct job *jb)
{
    return jb->acc[jb->nacc - 1].key;
}

static const char *describe(int rc, const struct s3_error *err, char *buf, unsigned size)
{
    if (err && err->code[0])
        return s3_error_format(err, buf, size);
    snprintf(buf, size, "%s", strerror(-rc));
    return buf;
}

/* ---------- per-key queues ---------- */

static void job_ready(struct engine *e, struct job *jb)
{
    if (jb->hold || jb->writing) {
        jb->state = JS_HELD;
        return;
    }
    jb->state = JS_READY;
    jlist_push(jb->kind == JOB_DELETE ? &e->ready_del : &e->ready_copy, jb);
    pthread_cond_signal(&e->wake);
}

/* A job's access to a key was granted: the job is ready once all are. */
static void access_granted(struct kq_access *a, void *arg)
{
    struct job *jb = a->owner;
    if (--jb->ungranted == 0)
        job_ready(arg, jb);
}

/* ---------- failures ---------- */

static void kerr_unlink(struct engine *e, struct kerr *k)
{
    *(k->prev ? &k->prev->next : &e->errs) = k->next;
    *(k->next ? &k->next->prev : &e->errs_tail) = k->prev;
    e->nkerr--;
}

static void kerr_forget_oldest(struct engine *e)
{
    struct kerr *k = e->errs_tail;
    struct kq_key *ks = k->ks;
    int slot = k->rc[ERR_DEST] ? ERR_DEST : ERR_SRC;
    LOGE("jobs: more than %d keys with unreported failures: %s/%s (%s) will not be returned by "
         "fsync of the file, only by the next wait for everything",
         MAX_KERR, kq_bucket(ks), kq_keyname(ks), strerror(-k->rc[slot]));
    if (e->dropped_rc == 0)
        e->dropped_rc = k->rc[slot];
    e->ndropped++;
    kerr_unlink(e, k);
    free(k);
    ks->user = NULL;
    kq_put(&e->keys, ks);
}

/* The allocations of failure records, which engine_test_fail_alloc fails. */
static void *failure_alloc(const struct engine *e, size_t size)
{
    return e->fail_alloc ? NULL : calloc(1, size);
}

/* The key's failure entry, made and put first in the list of failures if
 * the key has none; NULL when out of memory, after recording the failure
 * for the next wait for everything (never silent). */
static struct kerr *ks_error_entry(struct engine *e, struct kq_key *ks, int rc)
{
    if (ks->user)
        return ks->user;
    if (e->nkerr >= MAX_KERR)
        kerr_forget_oldest(e);
    struct kerr *k = failure_alloc(e, sizeof *k);
    if (!k) {
        LOGE("jobs: out of memory: the failure on %s/%s is kept only for the next wait for "
             "everything",
             kq_bucket(ks), kq_keyname(ks));
        if (e->dropped_rc == 0)
            e->dropped_rc = rc;
        e->ndropped++;
        return NULL;
    }
    k->ks = ks;
    k->next = e->errs;
    *(e->errs ? &e->errs->prev : &e->errs_tail) = k;
    e->errs = k;
    e->nkerr++;
    ks->user = k; /* keeps the key's entry until the failure is reported */
    return k;
}

/* Records rc as the key's failure in slot (as source or destination); the
 * first failure of a slot is kept. */
static void ks_set_error(struct engine *e, struct kq_key *ks, int slot, int rc)
{
    struct kerr *err = ks_error_entry(e, ks, rc);
    if (err && err->rc[slot] == 0) {
        err->rc[slot] = rc;
        err->seq[slot] = ++e->fail_seq;
    }
}

static void ring_add(struct engine *e, const struct kq_key *ks, int rc, const char *msg)
{
    struct failure *f = &e->ring[e->ring_next];
    free(f->bucket);
    free(f->key);
    free(f->msg);
    *f = (struct failure){strdup(kq_bucket(ks)), strdup(kq_keyname(ks)), strdup(msg), rc};
    e->ring_next = (e->ring_next + 1) % FAIL_RING;
    if (e->ring_len < FAIL_RING)
        e->ring_len++;
}

static void job_failed(struct engine *e, struct job *jb, int rc, const char *why)
{
    struct kq_key *dst = job_dest(jb), *src = job_src(jb);
    char msg[640];
    if (jb->kind == JOB_COPY)
        snprintf(msg, sizeof msg, "copy from %s/%s: %s", kq_bucket(src), kq_keyname(src), why);
    else
        snprintf(msg, sizeof msg, "delete: %s", why);
    LOGE("job %llu on %s/%s failed: %s", (unsigned long long)jb->id, kq_bucket(dst),
         kq_keyname(dst), msg);
    e->nfailed++;
    ring_add(e, dst, rc, msg);
    ks_set_error(e, dst, ERR_DEST, rc);
    if (jb->kind == JOB_COPY)
        ks_set_error(e, src, ERR_SRC, rc);
}

/* Lock held: j is cancelled, with rc, once ready: failed job f doomed it.
 * j waits for a key that f held, so it is on no list yet and link is free. */
static void doom(struct job *j, const struct job *f, int rc, struct jlist *set)
{
    if (j->doom_rc)
        return;
    j->doom_rc = rc;
    j->doom_by = f->id;
    jlist_push(set, j);
}

/* Lock held: add to set what the failure of f cancels (engine.h): the job it
 * guards, queued behind its read of the source, and the COPYs reading its
 * destination queued behind its write, up to the next job writing it. */
static void doom_behind(const struct job *f, int rc, struct jlist *set)
{
    if (f->kind != JOB_COPY)
        return;
    for (struct kq_access *a = f->acc[f->nacc - 1].next; a; a = a->next)
        if (acc_job(a)->guard == f->id)
            doom(acc_job(a), f, rc, set);
    for (struct kq_access *a = f->acc[0].next; a; a = a->next) {
        if (acc_job(a)->kind == JOB_COPY && (a->roles & ENGINE_AS_SOURCE))
            doom(acc_job(a), f, rc, set);
        if (a->roles & ENGINE_AS_DEST)
            break;
    }
}

/* Lock held: queue n DONE records for the dispatcher, which writes them in
 * one write before it starts anything else. */
static int done_queue(struct engine *e, size_t n, uint64_t **slots)
{
    if (e->done_n + n > e->done_cap) {
        size_t cap = e->done_cap ? e->done_cap : 64;
        while (cap < e->done_n + n)
            cap *= 2;
        uint64_t *q = e->fail_alloc ? NULL : realloc(e->done_q, cap * sizeof *q);
        if (!q)
            return -ENOMEM;
        e->done_q = q;
        e->done_cap = cap;
    }
    *slots = e->done_q + e->done_n;
    e->done_n += n;
    pthread_cond_signal(&e->wake);
    return 0;
}

/* Lock held: f failed for good. Doom (transitively) what its failure
 * cancels, and journal the DONE of f and of those in one write, so that a
 * replay has all of them or none: never a dependant without its guard. The
 * write is the dispatcher's (no journal write under the engine lock), done
 * before it starts any other job. If that cannot be written they stay
 * live, and a replay runs them again. */
static void fail_dependants(struct engine *e, struct job *f, int rc)
{
    struct jlist set = {0};
    size_t ndeps = 0;
    doom_behind(f, rc, &set);
    for (struct job *j = set.head; j; j = j->link, ndeps++)
        doom_behind(j, rc, &set);
    size_t n = ndeps + (f->doom_rc ? 0 : 1); /* a doomed f's DONE went when it was doomed */
    if (!e->cfg.journal || n == 0)
        return;
    uint64_t *ids;
    if (done_queue(e, n, &ids) != 0) {
        LOGE("jobs: out of memory: job %llu and the %zu jobs its failure cancels stay in the "
             "journal; a replay runs them again",
             (unsigned long long)f->id, ndeps);
        return;
    }
    size_t i = 0;
    if (!f->doom_rc)
        ids[i++] = f->id;
    for (struct job *j = set.head; j; j = j->link)
        ids[i++] = j->id;
}

/* Lock held: write the queued DONE records (one write), without the lock. */
static void done_flush(struct engine *e)
{
    uint64_t *ids = e->done_q;
    size_t n = e->done_n;
    e->done_q = NULL;
    e->done_n = e->done_cap = 0;
    e->flushing = true;
    pthread_mutex_unlock(&e->lock);
    if (journal_done(e->cfg.journal, ids, n) != 0)
        LOGW("jobs: the journal missed %zu completions; a replay would repeat them", n);
    free(ids);
    pthread_mutex_lock(&e->lock);
    e->flushing = false;
    pthread_cond_broadcast(&e->written);
}

/* ---------- waiters ---------- */

static bool in_prefix(const struct kq_key *ks, const struct waiter *w)
{
    return strcmp(kq_bucket(ks), w->bucket) == 0 &&
           strncmp(kq_keyname(ks), w->prefix, w->plen) == 0;
}

static bool waiter_covers(const struct waiter *w, const struct job *jb)
{
    if (jb->id > w->max_id)
        return false;
    if (w->ks) {
        for (unsigned i = 0; i < jb->nacc; i++)
            if (jb->acc[i].key == w->ks && (jb->acc[i].roles & w->roles))
                return true;
        return false;
    }
    return !w->bucket || in_prefix(job_dest(jb), w);
}

static size_t waiter_count(const struct engine *e, const struct waiter *w)
{
    size_t n = 0;
    if (w->ks) {
        for (const struct kq_access *a = w->ks->head; a; a = a->next)
            n += (a->roles & w->roles) != 0;
        return n;
    }
    if (!w->bucket)
        return e->npending;
    for (const struct job *jb = e->pend_head; jb; jb = jb->next)
        n += waiter_covers(w, jb);
    return n;
}

static void waiters_notify(struct engine *e, const struct job *jb)
{
    for (struct waiter *w = e->waiters; w; w = w->next)
        if (w->remaining > 0 && waiter_covers(w, jb) && --w->remaining == 0)
            pthread_cond_signal(&w->cv);
}

/* The roles of ks whose errors w reports. */
static int waiter_roles(const struct waiter *w, const struct kq_key *ks)
{
    if (w->ks)
        return ks == w->ks ? w->roles : 0;
    if (!w->bucket)
        return ENGINE_AS_DEST | ENGINE_AS_SOURCE;
    return in_prefix(ks, w) ? ENGINE_AS_DEST : 0;
}

/* Clear ks's errors in roles, keeping the earliest in *rc / *seq. */
static void kerr_take(struct engine *e, struct kq_key *ks, int roles, int *rc, uint64_t *seq)
{
    struct kerr *k = ks->user;
    for (int slot = 0; slot < 2; slot++) {
        int bit = slot == ERR_DEST ? ENGINE_AS_DEST : ENGINE_AS_SOURCE;
        if (!(roles & bit) || !k->rc[slot])
            continue;
        if (k->seq[slot] < *seq) {
            *seq = k->seq[slot];
            *rc = k->rc[slot];
        }
        k->rc[slot] = 0;
    }
    if (k->rc[ERR_DEST] || k->rc[ERR_SRC])
        return;
    kerr_unlink(e, k);
    free(k);
    ks->user = NULL;
    kq_put(&e->keys, ks);
}

static int take_errors(struct engine *e, const struct waiter *w)
{
    int rc = 0;
    uint64_t seq = UINT64_MAX;
    if (w->ks) {
        if (w->ks->user)
            kerr_take(e, w->ks, w->roles, &rc, &seq);
        return rc;
    }
    for (struct kerr *k = e->errs, *next; k; k = next) {
        next = k->next;
        int roles = waiter_roles(w, k->ks);
        if (roles)
            kerr_take(e, k->ks, roles, &rc, &seq);
    }
    if (!w->bucket && e->dropped_rc) { /* a wait for everything */
        rc = rc ? rc : e->dropped_rc;
        e->dropped_rc = 0;
    }
    return rc;
}

/* Lock held: block until the jobs w covers finished; report their errors. */
static int wait_for(struct engine *e, struct waiter *w)
{
    w->max_id = e->next_id - 1;
    w->remaining = waiter_count(e, w);
    if (w->remaining > 0) {
        pthread_cond_init(&w->cv, NULL);
        w->prev = NULL;
        w->next = e->waiters;
        if (e->waiters)
            e->waiters->prev = w;
        e->waiters = w;
        e->nwaiters++;
        pthread_cond_signal(&e->wake); /* someone waits: batches go out now */
        while (w->remaining > 0)
            pthread_cond_wait(&w->cv, &e->lock);
        *(w->prev ? &w->prev->next : &e->waiters) = w->next;
        if (w->next)
            w->next->prev = w->prev;
        e->nwaiters--;
        pthread_cond_destroy(&w->cv);
    }
    /* the DONE of what failed is in the file when a wait returns */
    while (e->done_n > 0 || e->flushing)
        pthread_cond_wait(&e->written, &e->lock);
    return take_errors(e, w);
}

/* ---------- the end of a job ---------- */

static void meta_free(struct meta_set *m)
{
    free(m);
}

static void job_free(struct job *jb)
{
    if (!jb)
        return;
    meta_free(jb->meta);
    free(jb);
}

/* Lock held: the job writing dst is over (its access already removed). */
static void tell_over(struct engine *e, const struct kq_key *dst, int rc)
{
    bool last = true;
    for (const struct kq_access *a = dst->head; a && last; a = a->next)
        last = !(a->roles & ENGINE_AS_DEST);
    e->cfg.over(e->cfg.ctx, kq_bucket(dst), kq_keyname(dst), rc, last); /* name: bucket, NUL, key */
}

static void job_end(struct engine *e, struct job *jb, int rc);

/* Lock held: jb is over (rc 0: it landed). Release its keys. */
static void job_finish(struct engine *e, struct job *jb, int rc, const char *why)
{
    if (rc) {
        if (!jb->silent)
            job_failed(e, jb, rc, why);
        fail_dependants(e, jb, rc); /* before its keys go: they are queued behind it */
    } else {
        e->ndone++;
    }
    job_end(e, jb, rc);
}

/* A conditional delete whose object changed: another client's object. */
static bool job_kept(const struct job *jb, int rc)
{
    return rc == -ESTALE && jb->kind == JOB_DELETE && jb->src_etag;
}

/* Lock held: a kept delete (engine_delete_fn) lands as a success that
 * deleted nothing; listed, so that s3cfs-ctl errors tells. */
static void job_keep(struct engine *e, struct job *jb)
{
    struct kq_key *ks = job_dest(jb);
    static const char msg[] = "delete: kept: another client replaced the object after it was "
                              "copied (its ETag is no longer the one copied); not deleted";
    LOGW("job %llu on %s/%s: %s", (unsigned long long)jb->id, kq_bucket(ks), kq_keyname(ks), msg);
    ring_add(e, ks, -ESTALE, msg);
    e->ndone++;
    job_end(e, jb, -ESTALE);
}

/* Lock held: jb is over; release its keys and free it. */
static void job_end(struct engine *e, struct job *jb, int rc)
{
    if (jb->state == JS_RUNNING)
        e->nrunning--;
    for (unsigned i = 0; i < jb->nacc; i++)
        kq_remove(&e->keys, &jb->acc[i]);
    if (e->cfg.over && !jb->silent) /* its submitter undid what it showed */
        tell_over(e, job_dest(jb), rc);
    waiters_notify(e, jb);
    for (unsigned i = 0; i < jb->nacc; i++)
        kq_put(&e->keys, jb->acc[i].key);
    *(jb->prev ? &jb->prev->next : &e->pend_head) = jb->next;
    *(jb->next ? &jb->next->prev : &e->pend_tail) = jb->prev;
    if (e->blocked > 0)
        pthread_cond_signal(&e->room);
    if (--e->npending == 0)
        pthread_cond_broadcast(&e->idle);
    e->compact_due = e->cfg.journal != NULL;
    job_free(jb);
}

/* Lock held: end jb without running it. */
static void job_cancel(struct engine *e, struct job *jb, int rc)
{
    char why[160];
    if (jb->doom_by && jb->doom_by == jb->guard)
        snprintf(why, sizeof why, "cancelled, the source is kept: its copy (job %llu) failed (%s)",
                 (unsigned long long)jb->doom_by, strerror(-rc));
    else if (jb->doom_by)
        snprintf(why, sizeof why, "cancelled: job %llu, whose result it reads, failed (%s)",
                 (unsigned long long)jb->doom_by, strerror(-rc));
    else
        snprintf(why, sizeof why, "cancelled: %s", strerror(-rc));
    job_finish(e, jb, rc, why);
}

/* Whether a failed attempt runs again; a pure function of its arguments
 * (tries changes only in retry_later, after both calls). */
static bool will_retry(const struct engine *e, const struct job *jb, int rc, int req_rc,
                       const struct s3_error *err)
{
    return rc != 0 && req_rc != 0 && s3_error_retryable(err) && jb->tries < e->cfg.max_retries;
}

static void retry_later(struct engine *e, struct job *jb, const char *why)
{
    struct kq_key *dst = job_dest(jb);
    LOGW("job %llu on %s/%s: %s; trying again", (unsigned long long)jb->id, kq_bucket(dst),
         kq_keyname(dst), why);
    jb->tries++;
    e->nretried++;
    e->nrunning--;
    jb->state = JS_RETRY;
    jb->due_ms = now_ms() + e->cfg.retry_delay_ms;
    jlist_push(&e->retry, jb);
}

/* A request succeeded: every grow_every of them raise the limits by a step. */
static void request_ok(struct engine *e)
{
    if (++e->successes < e->cfg.grow_every)
        return;
    e->successes = 0;
    if (e->limit < e->max_limit) {
        e->limit++;
        pool_set_limit(e->cfg.pool, e->limit);
    }
    int step = e->cfg.delete_batch / 16 > 1 ? e->cfg.delete_batch / 16 : 1;
    e->batch = e->batch + step < e->cfg.delete_batch ? e->batch + step : e->cfg.delete_batch;
}

/* A pool task (one COPY or one batch) is over: rcs[i] is jobs[i]'s result,
 * req_rc the request's. ids has room for n. */
static void task_done(struct engine *e, struct job **jobs, const int *rcs, uint64_t *ids, size_t n,
                      int req_rc, const struct s3_error *err)
{
    size_t nfinal = 0;
    for (size_t i = 0; i < n; i++)
        if (rcs[i] == 0 || job_kept(jobs[i], rcs[i])) /* a kept delete must not replay */
            ids[nfinal++] = jobs[i]->id;
    /* before the keys are released: a replay never runs a dependant alone */
    if (e->cfg.journal && nfinal > 0 && journal_done(e->cfg.journal, ids, nfinal) != 0)
        LOGW("jobs: the journal missed %zu completions; a replay would repeat them", nfinal);
    char why[512];
    pthread_mutex_lock(&e->lock);
    e->inflight--;
    if (req_rc == 0)
        request_ok(e);
    for (size_t i = 0; i < n; i++) {
        const char *w = rcs[i] ? describe(rcs[i], req_rc ? err : NULL, why, sizeof why) : NULL;
        if (req_rc == 0 && job_kept(jobs[i], rcs[i]))
            job_keep(e, jobs[i]);
        else if (will_retry(e, jobs[i], rcs[i], req_rc, err))
            retry_later(e, jobs[i], w);
        else
            job_finish(e, jobs[i], rcs[i], w);
    }
    pthread_cond_signal(&e->wake); /* a task slot is free */
    /* the last touch of e: once npending is 0, engine_free may free it */
    pthread_mutex_unlock(&e->lock);
}

/* ---------- running ---------- */

/* The spec a job was submitted with, pointing into the engine's copies. */
static void job_view(const struct job *jb, struct job_spec *s)
{
    const struct kq_key *dst = job_dest(jb), *src = job_src(jb);
    *s = (struct job_spec){
        .kind = (enum job_kind)jb->kind, .bucket = kq_bucket(dst), .key = kq_keyname(dst)};
    if (jb->kind != JOB_COPY)
        return;
    s->src_bucket = kq_bucket(src);
    s->src_key = kq_keyname(src);
    s->src_etag = jb->src_etag;
    s->src_size = jb->src_size;
    s->dst_create_only = jb->dst_create_only;
    s->meta = jb->meta ? jb->meta->m : NULL;
    s->nmeta = jb->meta ? jb->meta->n : 0;
    s->content_type = jb->content_type;
}

static int run_copy(void *arg)
{
    struct job *jb = arg;
    struct engine *e = jb->e;
    struct job_spec s;
    job_view(jb, &s);
    struct s3_error err;
    s3_error_clear(&err);
    int rc = e->cfg.exec(e->cfg.ctx, jb->id, &s, &err);
    uint64_t id;
    task_done(e, &jb, &rc, &id, 1, rc, &err);
    return 0; /* the engine keeps the error, not the pool */
}

static int run_batch(void *arg)
{
    struct batch_task *t = arg;
    struct engine *e = t->e;
    struct s3_error err;
    s3_error_clear(&err);
    memset(t->rcs, 0, t->n * sizeof *t->rcs);
    int rc = e->cfg.del(e->cfg.ctx, t->bucket, t->keys, t->etags, t->n, t->rcs, &err);
    for (size_t i = 0; rc && i < t->n; i++)
        t->rcs[i] = rc;
    task_done(e, t->jobs, t->rcs, t->ids, t->n, rc, &err);
    free(t);
    return 0;
}

/* Lock held; released while the pool takes the task (it may block). */
static void hand_to_pool(struct engine *e, pool_fn fn, void *arg)
{
    e->inflight++;
    pthread_mutex_unlock(&e->lock);
    if (pool_submit(e->cfg.pool, fn, arg) != 0)
        fn(arg); /* cannot happen today; running it here keeps the books right */
    pthread_mutex_lock(&e->lock);
}

static void job_start(struct engine *e, struct job *jb)
{
    jb->state = JS_RUNNING;
    jb->started = true;
    e->nrunning++;
}

static struct batch_task *batch_task_new(struct engine *e, const char *bucket, size_t n)
{
    size_t blen = strlen(bucket) + 1;
    size_t size = sizeof(struct batch_task) + blen;
    size = (size + 7) & ~(size_t)7;
    size_t engine_at = size, keys_at = engine_at + n * sizeof(struct job *);
    size_t etags_at = keys_at + n * sizeof(char *);
    size_t ids_at = etags_at + n * sizeof(char *), rcs_at = ids_at + n * sizeof(uint64_t);
    struct batch_task *t = malloc(rcs_at + n * sizeof(int));
    if (!t)
        return NULL;
    t->e = e;
    t->n = n;
    memcpy(t->bucket, bucket, blen);
    t->jobs = (struct job **)(void *)((char *)t + engine_at);
    t->keys = (const char **)(void *)((char *)t + keys_at);
    t->etags = (const char **)(void *)((char *)t + etags_at);
    t->ids = (uint64_t *)(void *)((char *)t + ids_at);
    t->rcs = (int *)(void *)((char *)t + rcs_at);
    return t;
}

static void batchq_remove(struct engine *e, struct batchq *q)
{
    struct batchq **pp = &e->batches;
    while (*pp != q)
        pp = &(*pp)->next;
    *pp = q->next;
    free(q);
}

/* Send up to `batch` keys of q as one DeleteObjects. */
static void send_batch(struct engine *e, struct batchq *q)
{
    size_t n = q->n < (size_t)e->batch ? q->n : (size_t)e->batch;
    struct batch_task *t = batch_task_new(e, q->bucket, n);
    for (size_t i = 0; i < n; i++) {
        struct job *jb = jlist_pop(&q->jobs);
        q->n--;
        if (!t) {
            job_cancel(e, jb, -ENOMEM);
            continue;
        }
        job_start(e, jb);
        t->jobs[i] = jb;
        t->keys[i] = kq_keyname(job_dest(jb));
        t->etags[i] = jb->src_etag;
    }
    if (q->n == 0)
        batchq_remove(e, q);
    else
        q->first_ms = now_ms(); /* the rest waits its own delay, or fills up */
    if (t)
        hand_to_pool(e, run_batch, t);
}

static void batch_add(struct engine *e, struct job *jb)
{
    const char *bucket = kq_bucket(job_dest(jb));
    struct batchq *q = e->batches;
    while (q && strcmp(q->bucket, bucket) != 0)
        q = q->next;
    if (!q) {
        size_t blen = strlen(bucket) + 1;
        q = calloc(1, sizeof *q + blen);
        if (!q) {
            job_cancel(e, jb, -ENOMEM);
            return;
        }
        memcpy(q->bucket, bucket, blen);
        q->next = e->batches;
        e->batches = q;
    }
    if (q->n++ == 0)
        q->first_ms = now_ms();
    q->last_ms = now_ms();
    jb->state = JS_BATCHED;
    jlist_push(&q->jobs, jb);
}

/* A waiter (fsync, rename of a tree, rmdir) wants its deletes soon, but a
 * tree move feeds the batch one landed copy at a time: send once the batch
 * has been quiet for a moment, not on every key. */
#define WAITER_QUIET_MS 15

/* Without a waiter, a batch goes when it has been quiet for batch_quiet_ms
 * (rm -r of a large tree keeps feeding it and fills whole pages), and at
 * the latest batch_delay_ms after its first key. */
#define DEF_BATCH_QUIET_MS 200

static int64_t batch_deadline(const struct engine *e, const struct batchq *q)
{
    int64_t due = q->first_ms + e->cfg.batch_delay_ms;
    int64_t quiet = q->last_ms + (e->nwaiters > 0 ? WAITER_QUIET_MS : e->cfg.batch_quiet_ms);
    return quiet < due ? quiet : due;
}

static struct batchq *batch_due(const struct engine *e, int64_t now)
{
    bool flush = e->blocked > 0 || e->stopping;
    for (struct batchq *q = e->batches; q; q = q->next)
        if (flush || q->n >= (size_t)e->batch || now >= batch_deadline(e, q))
            return q;
    return NULL;
}

/* Lock held: one step of the dispatcher; false when there was nothing to do. */
static bool dispatch_one(struct engine *e)
{
    int64_t now = now_ms();
    struct job *jb;
    struct batchq *q;
    int rc;
    if (e->replaying) /* engine_recover: a guard's COPY must not end before its job is back */
        return false;
    if (e->retry.head && e->retry.head->due_ms <= now) {
        job_ready(e, jlist_pop(&e->retry));
    } else if ((jb = jlist_pop(&e->ready_del))) {
        if (jb->writing)
            jb->state = JS_HELD; /* ready again once written */
        else if ((rc = jb->doom_rc))
            job_cancel(e, jb, rc);
        else
            batch_add(e, jb);
    } else if (e->inflight >= e->limit) {
        return false;
    } else if ((q = batch_due(e, now))) {
        send_batch(e, q);
    } else if ((jb = jlist_pop(&e->ready_copy))) {
        if (jb->writing) {
            jb->state = JS_HELD; /* engine_fold_meta: ready again once written */
        } else if ((rc = jb->doom_rc)) {
            job_cancel(e, jb, rc);
        } else {
            job_start(e, jb);
            hand_to_pool(e, run_copy, jb);
        }
    } else {
        return false;
    }
    return true;
}

/* Lock held: sleep until woken or the next batch or retry is due. */
static void dispatcher_sleep(struct engine *e)
{
    int64_t due = e->retry.head ? e->retry.head->due_ms : INT64_MAX;
    for (struct batchq *q = e->batches; q && e->inflight < e->limit; q = q->next)
        if (batch_deadline(e, q) < due)
            due = batch_deadline(e, q);
    if (due == INT64_MAX) {
        pthread_cond_wait(&e->wake, &e->lock);
        return;
    }
    struct timespec ts = {(time_t)(due / 1000), (long)(due % 1000) * 1000000L};
    pthread_cond_timedwait(&e->wake, &e->lock, &ts);
}

/* The journal's upkeep runs here rather than in the tasks: engine_free joins
 * this thread, so the journal is never used after the engine is gone. */
static void *dispatcher_main(void *arg)
{
    struct engine *e = arg;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        if (e->done_n > 0) {
            done_flush(e);
        } else if (e->compact_due) {
            e->compact_due = false;
            pthread_mutex_unlock(&e->lock);
            journal_compact(e->cfg.journal); /* truncates when idle, rewrites when big */
            pthread_mutex_lock(&e->lock);
        } else if (!dispatch_one(e)) {
            if (e->stopping && e->npending == 0)
                break;
            dispatcher_sleep(e);
        }
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* ---------- submission ---------- */

/* Lock held: let the jobs of group (0: every group) run. */
static void release_held(struct engine *e, uint64_t group)
{
    for (struct job *jb = e->pend_head; jb && e->nheld > 0; jb = jb->next) {
        if (!jb->hold || (group && jb->hold != group))
            continue;
        jb->hold = 0;
        e->nheld--;
        if (jb->state == JS_HELD)
            job_ready(e, jb);
    }
}

static struct meta_set *meta_dup(const struct s3_meta *m, size_t n)
{
    size_t size = sizeof(struct meta_set) + n * sizeof(struct s3_meta);
    for (size_t i = 0; i < n; i++)
        size += strlen(m[i].name) + strlen(m[i].value) + 2;
    struct meta_set *ms = malloc(size);
    if (!ms)
        return NULL;
    ms->n = n;
    char *p = (char *)(ms->m + n);
    for (size_t i = 0; i < n; i++) {
        ms->m[i].name = p;
        p = stpcpy(p, m[i].name) + 1;
        ms->m[i].value = p;
        p = stpcpy(p, m[i].value) + 1;
    }
    return ms;
}

static bool meta_valid(const struct s3_meta *m, size_t n)
{
    if (!m)
        return n == 0;
    for (size_t i = 0; i < n; i++)
        if (!m[i].name || !m[i].value)
            return false;
    return true;
}

static int spec_check(const struct job_spec *s)
{
    if (!s || !s->bucket || !*s->bucket || !s->key || !*s->key)
        return -EINVAL;
    if (s->kind == JOB_DELETE)
        return 0;
    if (s->kind != JOB_COPY || !s->src_bucket || !*s->src_bucket || !s->src_key || !*s->src_key)
        return -EINVAL;
    return !s->meta || meta_valid(s->meta, s->nmeta) ? 0 : -EINVAL;
}

static struct job *job_new(struct engine *e, const struct job_spec *s)
{
    bool copy = s->kind == JOB_COPY;
    const char *etag = copy ? s->src_etag : s->if_match;
    etag = etag && *etag ? etag : NULL;
    const char *ctype = copy && s->meta ? s->content_type : NULL;
    size_t el = etag ? strlen(etag) + 1 : 0, cl = ctype ? strlen(ctype) + 1 : 0;
    struct job *jb = calloc(1, sizeof *jb + el + cl);
    if (!jb)
        return NULL;
    jb->e = e;
    jb->kind = (unsigned char)s->kind;
    jb->src_size = copy ? s->src_size : 0;
    jb->dst_create_only = copy && s->dst_create_only;
    if (etag)
        jb->src_etag = memcpy(jb->strings, etag, el);
    if (ctype)
        jb->content_type = memcpy(jb->strings + el, ctype, cl);
    if (copy && s->meta && !(jb->meta = meta_dup(s->meta, s->nmeta))) {
        free(jb);
        return NULL;
    }
    return jb;
}

/* Lock held: the entries of s's keys into jb->acc, not queued yet. */
static int job_take_keys(struct engine *e, struct job *jb, const struct job_spec *s)
{
    bool copy = s->kind == JOB_COPY;
    bool self = copy && strcmp(s->bucket, s->src_bucket) == 0 && strcmp(s->key, s->src_key) == 0;
    struct kq_key *dst = kq_get(&e->keys, s->bucket, s->key);
    struct kq_key *src = dst && copy && !self ? kq_get(&e->keys, s->src_bucket, s->src_key) : NULL;
    if (!dst || (copy && !self && !src)) {
        if (dst)
            kq_put(&e->keys, dst);
        return -ENOMEM;
    }
    jb->nacc = src ? 2 : 1;
    jb->acc[0] =
        (struct kq_access){.owner = jb, .key = dst, .roles = ENGINE_AS_DEST, .writer = true};
    if (self)
        jb->acc[0].roles |= ENGINE_AS_SOURCE;
    if (src)
        jb->acc[1] = (struct kq_access){.owner = jb, .key = src, .roles = ENGINE_AS_SOURCE};
    return 0;
}

/* Lock held: guard if it is a COPY reading jb's key, queued before jb, else
 * 0. In a replay a guard no longer pending landed: had it failed, jb's
 * DONE would have been written with its own. */
static uint64_t guard_find(const struct job *jb, uint64_t guard)
{
    for (const struct kq_access *a = guard ? job_dest(jb)->head : NULL; a; a = a->next)
        if (acc_job(a)->id == guard && acc_job(a)->kind == JOB_COPY &&
            (a->roles & ENGINE_AS_SOURCE))
            return guard;
    return 0;
}

/* Lock held: queue jb (its keys taken) as job id. */
static void job_link(struct engine *e, struct job *jb, uint64_t id, uint64_t hold, uint64_t guard)
{
    jb->id = id;
    jb->hold = hold;
    e->nheld += hold != 0;
    jb->guard = guard_find(jb, guard);
    jb->prev = e->pend_tail;
    *(e->pend_tail ? &e->pend_tail->next : &e->pend_head) = jb;
    e->pend_tail = jb;
    e->npending++;
    jb->ungranted = jb->nacc;
    for (unsigned i = 0; i < jb->nacc; i++)
        kq_append(&e->keys, jb->acc[i].key, &jb->acc[i]);
}

/* Lock held: take the keys and queue jb, as job id (a replay) or as the
 * next id; a fresh job is marked as being written (it does not start
 * before its record is in the journal: write_record). */
static int job_enqueue(struct engine *e, struct job *jb, const struct job_spec *s, uint64_t id)
{
    int rc = job_take_keys(e, jb, s);
    if (rc)
        return rc;
    bool fresh = id == 0;
    if (fresh)
        id = e->next_id++;
    jb->writing = fresh && e->cfg.journal;
    job_link(e, jb, id, fresh ? s->hold : 0, s->guard); /* a replay runs it in its order */
    return 0;
}

/* Lock held: the records about jb (rc: their write's result) are written;
 * a job whose record could not be written is cancelled once ready, without
 * reporting it again (its submission returned rc), and its failure cancels
 * what it cancels after a failure. */
static void job_written(struct engine *e, struct job *jb, int rc)
{
    jb->writing--;
    if (rc && !jb->doom_rc) {
        jb->doom_rc = rc;
        jb->silent = true;
    }
    if (jb->writing == 0 && jb->state == JS_HELD && !jb->hold)
        job_ready(e, jb);
    pthread_cond_broadcast(&e->written);
}

/* Write the records of the jobs just queued (n: 1, or 2 for a move's copy
 * and delete), without the engine lock: a slow disk stalls the submitter,
 * not every caller of the engine. The jobs cannot start meanwhile. A move
 * whose delete cannot be written takes back its copy's record. */
static int write_records(struct engine *e, struct job **jbs, const struct job_spec **specs,
                         size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = journal_append(e->cfg.journal, jbs[i]->id, specs[i]);
    if (rc && n == 2)
        journal_done(e->cfg.journal, &jbs[0]->id, 1); /* neither runs */
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < n; i++)
        job_written(e, jbs[i], rc);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

/* Lock held: queue the COPY cj and the DELETE dj of its source, guarded by
 * it; both are journaled (write_records) before either starts. */
static int move_enqueue(struct engine *e, struct job *cj, const struct job_spec *copy,
                        struct job *dj, struct job_spec *del)
{
    int rc = job_take_keys(e, cj, copy);
    if (rc)
        return rc;
    uint64_t id = e->next_id;
    del->guard = id;
    e->next_id += 2;
    dj->nacc = 1; /* the copy's source entry: the same key */
    dj->acc[0] = (struct kq_access){
        .owner = dj, .key = job_src(cj), .roles = ENGINE_AS_DEST, .writer = true};
    cj->writing = dj->writing = e->cfg.journal != NULL;
    job_link(e, cj, id, 0, 0);
    job_link(e, dj, id + 1, del->hold, id);
    return 0;
}

/* Lock held: wait while max_pending jobs are pending. A replay does not
 * wait: nothing starts until it is over. */
static void wait_room(struct engine *e)
{
    while (!e->replaying && e->npending >= (size_t)e->cfg.max_pending && !e->stopping) {
        /* held jobs in the room may belong to the submitters blocked here,
         * which would never release them: let every group go */
        release_held(e, 0);
        e->blocked++;
        pthread_cond_signal(&e->wake); /* part of the room is in batches: send them */
        pthread_cond_wait(&e->room, &e->lock);
        e->blocked--;
    }
}

static int submit(struct engine *e, const struct job_spec *s, uint64_t replay_id, uint64_t *id)
{
    int rc = spec_check(s);
    if (rc)
        return rc;
    struct job *jb = job_new(e, s);
    if (!jb)
        return -ENOMEM;
    pthread_mutex_lock(&e->lock);
    wait_room(e);
    rc = e->stopping ? -ESHUTDOWN : job_enqueue(e, jb, s, replay_id);
    if (rc == 0 && id)
        *id = jb->id;
    bool write = rc == 0 && jb->writing;
    pthread_mutex_unlock(&e->lock);
    if (rc)
        job_free(jb);
    else if (write)
        rc = write_records(e, &jb, &s, 1);
    return rc;
}

int engine_submit(struct engine *e, const struct job_spec *spec, uint64_t *id)
{
    if (spec && spec->guard) /* only a move links a delete to its copy */
        return -EINVAL;
    return submit(e, spec, 0, id);
}

int engine_submit_move(struct engine *e, const struct job_spec *copy, uint64_t hold,
                       uint64_t *copy_id, uint64_t *del_id)
{
    int rc = spec_check(copy);
    if (rc == 0 &&
        (copy->kind != JOB_COPY || copy->hold || copy->guard ||
         (strcmp(copy->bucket, copy->src_bucket) == 0 && strcmp(copy->key, copy->src_key) == 0)))
        rc = -EINVAL;
    if (rc)
        return rc;
    /* the source goes only while it is still the object copied */
    struct job_spec del = {.kind = JOB_DELETE,
                           .bucket = copy->src_bucket,
                           .key = copy->src_key,
                           .hold = hold,
                           .if_match = copy->src_etag};
    struct job *cj = job_new(e, copy), *dj = job_new(e, &del);
    rc = cj && dj ? 0 : -ENOMEM;
    if (rc == 0) {
        pthread_mutex_lock(&e->lock);
        wait_room(e);
        rc = e->stopping ? -ESHUTDOWN : move_enqueue(e, cj, copy, dj, &del);
        if (rc == 0 && copy_id)
            *copy_id = cj->id;
        if (rc == 0 && del_id)
            *del_id = dj->id;
        bool write = rc == 0 && cj->writing;
        pthread_mutex_unlock(&e->lock);
        if (write) {
            struct job *jbs[] = {cj, dj};
            const struct job_spec *specs[] = {copy, &del};
            return write_records(e, jbs, specs, 2);
        }
    }
    if (rc) {
        job_free(cj);
        job_free(dj);
    }
    return rc;
}

struct recovery {
    struct engine *e;
    size_t n;
};

/* Whether a pending job writes bucket/key. */
static bool key_written(struct engine *e, const char *bucket, const char *key)
{
    pthread_mutex_lock(&e->lock);
    struct kq_key *ks = kq_find(&e->keys, bucket, key);
    bool written = false;
    for (struct kq_access *a = ks ? ks->head : NULL; a && !written; a = a->next)
        written = (a->roles & ENGINE_AS_DEST) != 0;
    pthread_mutex_unlock(&e->lock);
    return written;
}

static int recover_one(void *arg, uint64_t id, const struct job_spec *s)
{
    struct recovery *r = arg;
    enum engine_admit a = ENGINE_ADMIT_RUN;
    if (r->e->cfg.admit) /* nothing runs during a replay: the pending jobs are the replayed ones */
        a = r->e->cfg.admit(r->e->cfg.ctx, id, s, key_written(r->e, s->bucket, s->key));
    if (a == ENGINE_ADMIT_DROP)
        journal_done(r->e->cfg.journal, &id, 1);
    if (a != ENGINE_ADMIT_RUN)
        return 0;
    int rc = submit(r->e, s, id, NULL);
    if (rc == -EINVAL) { /* a record we cannot run: drop it rather than stop */
        LOGW("jobs: dropping unusable journal record %llu", (unsigned long long)id);
        journal_done(r->e->cfg.journal, &id, 1);
        return 0;
    }
    r->n += rc == 0;
    return rc;
}

static void set_replaying(struct engine *e, bool on)
{
    pthread_mutex_lock(&e->lock);
    e->replaying = on;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

int engine_recover(struct engine *e, size_t *count)
{
    struct recovery r = {e, 0};
    /* nothing starts until every job is back, so that a failing COPY
     * still finds the delete it guards queued behind it */
    set_replaying(e, true);
    int rc = e->cfg.journal ? journal_replay(e->cfg.journal, recover_one, &r) : 0;
    set_replaying(e, false);
    if (r.n > 0)
        LOGI("jobs: resumed %zu jobs from the journal", r.n);
    if (count)
        *count = r.n;
    return rc;
}

/* Lock held: the last job on bucket/key, if it is a COPY writing it that
 * has not started. */
static int fold_target(struct engine *e, const char *bucket, const char *key,
                       struct kq_access **out)
{
    struct kq_key *ks = kq_find(&e->keys, bucket, key);
    struct kq_access *a = ks ? ks->tail : NULL;
    if (!a)
        return -ENOENT;
    if (acc_job(a)->kind != JOB_COPY || !(a->roles & ENGINE_AS_DEST) || acc_job(a)->started)
        return -EALREADY;
    *out = a;
    return 0;
}

int engine_fold_meta(struct engine *e, const char *bucket, const char *key,
                     const struct s3_meta *meta, size_t nmeta)
{
    if (!meta || !meta_valid(meta, nmeta))
        return -EINVAL;
    struct meta_set *ms = meta_dup(meta, nmeta);
    if (!ms)
        return -ENOMEM;
    pthread_mutex_lock(&e->lock);
    struct kq_access *a;
    int rc;
    /* its own record first: an M record must follow it in the file */
    while ((rc = fold_target(e, bucket, key, &a)) == 0 && acc_job(a)->writing)
        pthread_cond_wait(&e->written, &e->lock);
    struct job *jb = rc == 0 ? acc_job(a) : NULL;
    if (jb) {
        struct meta_set *old = jb->meta;
        jb->meta = ms;
        ms = old;
    }
    if (jb && e->cfg.journal) {
        jb->writing++; /* it does not start before the record is written */
        pthread_mutex_unlock(&e->lock);
        rc = journal_fold_meta(e->cfg.journal, jb->id, meta, nmeta);
        pthread_mutex_lock(&e->lock);
        if (rc) { /* not recorded: not applied */
            struct meta_set *new = jb->meta;
            jb->meta = ms;
            ms = new;
        }
        job_written(e, jb, 0);
    }
    pthread_mutex_unlock(&e->lock);
    meta_free(ms);
    return rc;
}

/* ---------- waiting and status ---------- */

int engine_wait_key(struct engine *e, const char *bucket, const char *key, int roles)
{
    int rc = 0;
    pthread_mutex_lock(&e->lock);
    struct kq_key *ks = kq_find(&e->keys, bucket, key);
    if (ks) {
        ks->refs++;
        struct waiter w = {.ks = ks, .roles = roles};
        rc = wait_for(e, &w);
        ks->refs--;
        kq_put(&e->keys, ks);
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int engine_wait_prefix(struct engine *e, const char *bucket, const char *prefix)
{
    struct waiter w = {.bucket = bucket, .prefix = prefix, .plen = strlen(prefix)};
    pthread_mutex_lock(&e->lock);
    int rc = wait_for(e, &w);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

uint64_t engine_new_group(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
    uint64_t g = ++e->next_group;
    pthread_mutex_unlock(&e->lock);
    return g;
}

void engine_release(struct engine *e, uint64_t group)
{
    pthread_mutex_lock(&e->lock);
    release_held(e, group);
    pthread_mutex_unlock(&e->lock);
}

int engine_drain(struct engine *e)
{
    struct waiter w = {0};
    pthread_mutex_lock(&e->lock);
    release_held(e, 0); /* everything must land: nothing stays held */
    int rc = wait_for(e, &w);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

bool engine_pending_key(struct engine *e, const char *bucket, const char *key, int roles)
{
    bool found = false;
    pthread_mutex_lock(&e->lock);
    struct kq_key *ks = kq_find(&e->keys, bucket, key);
    for (struct kq_access *a = ks ? ks->head : NULL; a && !found; a = a->next)
        found = (a->roles & roles) != 0;
    pthread_mutex_unlock(&e->lock);
    return found;
}

void engine_throttled(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
    int64_t now = now_ms();
    /* one burst of 503s from many requests in flight is one signal */
    if (now - e->last_cut_ms >= e->cfg.throttle_hold_ms) {
        e->last_cut_ms = now;
        e->successes = 0;
        e->limit = e->limit > 1 ? e->limit / 2 : 1;
        e->batch = e->batch > 1 ? e->batch / 2 : 1;
        pool_set_limit(e->cfg.pool, e->limit);
        LOGW("jobs: S3 is throttling: now %d requests at once, %d keys per delete", e->limit,
             e->batch);
    }
    pthread_mutex_unlock(&e->lock);
}

void engine_status(struct engine *e, struct engine_status *out)
{
    pthread_mutex_lock(&e->lock);
    *out = (struct engine_status){
        .pending = e->npending,
        .queued = e->npending - e->nrunning,
        .running = e->nrunning,
        .done = e->ndone,
        .failed = e->nfailed,
        .retried = e->nretried,
        .limit = e->limit,
        .batch = e->batch,
        .failures_kept = e->ring_len,
    };
    pthread_mutex_unlock(&e->lock);
}

static void failures_free(struct failure *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].bucket);
        free(f[i].key);
        free(f[i].msg);
    }
}

int engine_failures(struct engine *e, engine_failure_fn cb, void *arg)
{
    /* copied out so that cb runs without the lock */
    struct failure *copy = calloc(FAIL_RING, sizeof *copy);
    if (!copy)
        return -ENOMEM;
    size_t n = 0;
    pthread_mutex_lock(&e->lock);
    size_t first = (e->ring_next + FAIL_RING - e->ring_len) % FAIL_RING;
    for (size_t i = 0; i < e->ring_len; i++) {
        const struct failure *f = &e->ring[(first + i) % FAIL_RING];
        if (f->bucket && f->key && f->msg)
            copy[n++] = (struct failure){strdup(f->bucket), strdup(f->key), strdup(f->msg), f->err};
    }
    pthread_mutex_unlock(&e->lock);
    for (size_t i = 0; i < n; i++)
        if (copy[i].bucket && copy[i].key && copy[i].msg)
            cb(arg, copy[i].bucket, copy[i].key, copy[i].err, copy[i].msg);
    failures_free(copy, n);
    free(copy);
    return (int)n;
}

/* ---------- life cycle ---------- */

/* 0 takes the default, -1 means none (0), other negatives are invalid. */
static int pick(int *v, int def)
{
    if (*v < -1)
        return -EINVAL;
    *v = *v == 0 ? def : *v < 0 ? 0 : *v;
    return 0;
}

static int config_fill(struct engine_config *c)
{
    if (!c->pool || !c->exec || !c->del || c->max_pending < 0 || c->delete_batch < 0 ||
        c->delete_batch > MAX_BATCH || c->grow_every < 0 || c->throttle_hold_ms < 0 ||
        c->retry_delay_ms < 0 || c->batch_quiet_ms < 0)
        return -EINVAL;
    c->max_pending = c->max_pending ? c->max_pending : DEF_MAX_PENDING;
    c->delete_batch = c->delete_batch ? c->delete_batch : MAX_BATCH;
    c->grow_every = c->grow_every ? c->grow_every : DEF_GROW_EVERY;
    c->throttle_hold_ms = c->throttle_hold_ms ? c->throttle_hold_ms : DEF_HOLD_MS;
    c->retry_delay_ms = c->retry_delay_ms ? c->retry_delay_ms : DEF_RETRY_DELAY_MS;
    c->batch_quiet_ms = c->batch_quiet_ms ? c->batch_quiet_ms : DEF_BATCH_QUIET_MS;
    int rc = pick(&c->batch_delay_ms, DEF_BATCH_DELAY_MS);
    return rc ? rc : pick(&c->max_retries, DEF_RETRIES);
}

static void engine_destroy(struct engine *e)
{
    /* only keys with unreported errors are left */
    for (struct kerr *k = e->errs, *next; k; k = next) {
        next = k->next;
        free(k);
    }
    kq_free(&e->keys);
    failures_free(e->ring, FAIL_RING);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->room);
    pthread_cond_destroy(&e->idle);
    pthread_cond_destroy(&e->written);
    free(e->done_q);
    free(e);
}

static int start_dispatcher(struct engine *e)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&e->thread, NULL, dispatcher_main, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

int engine_new(const struct engine_config *cfg, struct engine **out)
{
    struct engine_config c = *cfg;
    int rc = config_fill(&c);
    if (rc)
        return rc;
    struct engine *e = calloc(1, sizeof *e);
    if (!e || kq_init(&e->keys, access_granted, e) != 0) {
        free(e);
        return -ENOMEM;
    }
    e->cfg = c;
    struct pool_stats ps;
    pool_get_stats(c.pool, &ps);
    e->limit = e->max_limit = ps.limit;
    e->batch = c.delete_batch;
    e->last_cut_ms = INT64_MIN / 4; /* long ago, without overflowing now - it */
    struct journal_info ji = {0};
    if (c.journal)
        journal_info(c.journal, &ji);
    e->next_id = ji.max_id + 1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, &ca);
    pthread_cond_init(&e->room, NULL);
    pthread_cond_init(&e->idle, NULL);
    pthread_cond_init(&e->written, NULL);
    pthread_condattr_destroy(&ca);
    rc = start_dispatcher(e);
    if (rc) {
        engine_destroy(e);
        return rc;
    }
    *out = e;
    return 0;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    int rc = engine_drain(e);
    if (rc)
        LOGW("jobs: some jobs failed (first: %s)", strerror(-rc));
    pthread_mutex_lock(&e->lock);
    while (e->npending > 0)
        pthread_cond_wait(&e->idle, &e->lock);
    e->stopping = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    engine_destroy(e);
}

/* ---------- for the control socket (ctl_server.h) ---------- */

size_t engine_count_prefix(struct engine *e, const char *bucket, const char *prefix)
{
    /* the count a prefix wait starting now would wait for, without its
     * snapshot of ids: a progress bar also sees jobs queued meanwhile */
    struct waiter w = {.bucket = bucket, .prefix = prefix, .max_id = UINT64_MAX};
    w.plen = prefix ? strlen(prefix) : 0;
    pthread_mutex_lock(&e->lock);
    size_t n = waiter_count(e, &w);
    pthread_mutex_unlock(&e->lock);
    return n;
}

void engine_wait_idle(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
    release_held(e, 0); /* as engine_drain: nothing may stay held */
    /* counted as a waiter, so that delete batches go out without delay */
    e->nwaiters++;
    pthread_cond_signal(&e->wake);
    while (e->npending > 0)
        pthread_cond_wait(&e->idle, &e->lock);
    e->nwaiters--;
    pthread_mutex_unlock(&e->lock);
}

void engine_test_fail_alloc(struct engine *e, bool fail)
{
    pthread_mutex_lock(&e->lock);
    e->fail_alloc = fail;
    pthread_mutex_unlock(&e->lock);
}
