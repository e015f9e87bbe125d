/* ctl_server.c - the control socket s3cfs-ctl talks to (see ctl_server.h for the
 * protocol and the contract, ctl_proto.h for where the socket lives). */
#include "s3cfs/ctl_server.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "s3cfs/buf.h"
#include "s3cfs/ctl_proto.h"
#include "s3cfs/engine.h"
#include "s3cfs/log.h"
#include "s3cfs/nscache.h"
#include "s3cfs/pool.h"
#include "s3cfs/kernel_evict.h"
#include "s3cfs/fsqueue.h"

#define RATE_SAMPLES   6    /* one a second: the rate covers the last ~5 s */
#define ACCEPT_TICK_MS 250  /* how soon the acceptor sees a stop */
#define IDLE_LIMIT_S   60   /* a client that says nothing for this long goes */
#define SEND_TIMEOUT_S 10   /* a client that stops reading costs at most this */
#define PATH_BUF       4096 /* a mount path, as NSCACHE_PATH_MAX */

struct sample {
    int64_t ms;
    uint64_t requests;
};

struct ctl_server {
    struct fs_ctx *c;                    /* constant */
    int lfd;                             /* the listening socket; the acceptor's */
    char path[108];                      /* constant: the socket's path (a sun_path) */
    dev_t dev;                           /* constant: the socket file we made */
    ino_t ino;                           /* constant */
    uid_t uid;                           /* constant: the mounting user */
    int64_t started_ms;                  /* constant */
    pthread_t acceptor;                  /* joined by ctl_server_stop */
    atomic_bool stopping;                /* read without the lock by every thread */
    pthread_mutex_t lock;                /* protects what follows */
    pthread_cond_t gone;                 /* a client thread ended */
    int nclients;                        /* lock */
    struct sample samples[RATE_SAMPLES]; /* lock: a ring, oldest at next */
    size_t nsamples, next;               /* lock */
};

struct client {
    struct ctl_server *ctl;
    int fd;
};

/* The part of the mount a request's PATH names. */
struct scope {
    struct fs_loc loc;
    char prefix[S3CFS_KEY_MAX + 2]; /* the keys below it (not for LOC_ROOT) */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- what a PATH covers ---------- */

static int scope_of(struct fs_ctx *c, const char *path, struct scope *s)
{
    int rc = path_resolve(&c->map, path, &s->loc);
    if (rc == 0 && s->loc.kind != LOC_ROOT)
        rc = path_dir_prefix(&s->loc, s->prefix, sizeof s->prefix);
    return rc;
}

static bool scope_has(const struct scope *s, const char *bucket, const char *key)
{
    if (s->loc.kind == LOC_ROOT)
        return true;
    if (strcmp(bucket, s->loc.bucket) != 0)
        return false;
    if (s->loc.kind == LOC_OBJECT && strcmp(key, s->loc.key) == 0)
        return true; /* PATH is a file */
    return strncmp(key, s->prefix, strlen(s->prefix)) == 0;
}

static size_t scope_count(struct fs_ctx *c, const struct scope *s)
{
    if (s->loc.kind == LOC_ROOT)
        return engine_count_prefix(c->jobs, NULL, NULL);
    size_t n = engine_count_prefix(c->jobs, s->loc.bucket, s->prefix);
    /* a file, not a directory: its own job is not below the prefix (it
     * counts as one however many jobs are queued on it) */
    if (s->loc.kind == LOC_OBJECT &&
        engine_pending_key(c->jobs, s->loc.bucket, s->loc.key, ENGINE_AS_DEST))
        n++;
    return n;
}

/* The earliest error of the jobs below s, reported and cleared; then the
 * journal is durable (fsq_durable). */
static int scope_wait(struct fs_ctx *c, const struct scope *s)
{
    if (s->loc.kind == LOC_ROOT)
        return fsq_durable(c, engine_drain(c->jobs));
    int rc = 0;
    if (s->loc.kind == LOC_OBJECT)
        rc = engine_wait_key(c->jobs, s->loc.bucket, s->loc.key, ENGINE_AS_DEST);
    int rc2 = engine_wait_prefix(c->jobs, s->loc.bucket, s->prefix);
    return fsq_durable(c, rc ? rc : rc2);
}

/* ---------- answers ---------- */

struct failure_list {
    struct sbuf *out;
    const struct scope *scope; /* NULL: all */
    int rc;                    /* -ENOMEM, ... */
};

/* A engine_failure_fn: one "failure ERRNO BUCKET KEY MESSAGE" line. */
static void add_failure(void *arg, const char *bucket, const char *key, int err, const char *msg)
{
    struct failure_list *fl = arg;
    if (fl->scope && !scope_has(fl->scope, bucket, key))
        return;
    char b[3 * S3CFS_BUCKET_MAX + 1], k[3 * (S3CFS_KEY_MAX + 1) + 1];
    if (ctl_escape(bucket, b, sizeof b) || ctl_escape(key, k, sizeof k))
        return; /* longer than S3 allows: not ours */
    size_t at = fl->out->len;
    if (sbuf_appendf(fl->out, "failure %d %s %s %s\n", -err, b, k, msg)) {
        fl->rc = -ENOMEM;
        return;
    }
    /* the message is the rest of the line: keep it one line */
    for (char *p = fl->out->data + at; p < fl->out->data + fl->out->len - 1; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

static int list_failures(struct fs_ctx *c, const struct scope *s, struct sbuf *out)
{
    struct failure_list fl = {out, s, 0};
    int rc = engine_failures(c->jobs, add_failure, &fl);
    return rc < 0 ? rc : fl.rc;
}

static double request_rate(struct ctl_server *ctl, uint64_t requests_now)
{
    int64_t now = now_ms();
    pthread_mutex_lock(&ctl->lock);
    bool have = ctl->nsamples > 0;
    struct sample oldest = ctl->samples[ctl->nsamples < RATE_SAMPLES ? 0 : ctl->next];
    pthread_mutex_unlock(&ctl->lock);
    if (!have || now <= oldest.ms || requests_now < oldest.requests)
        return 0;
    return (double)(requests_now - oldest.requests) * 1000.0 / (double)(now - oldest.ms);
}

/* A "Vm...:" figure of this process in KiB, -1 when unknown. */
static long proc_status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (v < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            v = strtol(line + n, NULL, 10);
    fclose(f);
    return v;
}

static int answer_status(struct ctl_server *ctl, struct sbuf *out)
{
    struct fs_ctx *c = ctl->c;
    struct engine_status js;
    struct nscache_stats ns;
    struct pool_stats ps;
    engine_status(c->jobs, &js);
    nscache_stats(c->cache, &ns);
    pool_get_stats(c->engine_pool, &ps);
    struct s3_stats *st = s3_client_stats(c->s3);
    struct mallinfo2 mi = mallinfo2(); /* where the resident memory goes */
    uint64_t requests = atomic_load(&st->requests);
    char mnt[3 * PATH_BUF + 1], src[3 * (S3CFS_BUCKET_MAX + S3CFS_KEY_MAX + 2) + 1];
    char raw[S3CFS_BUCKET_MAX + S3CFS_KEY_MAX + 2];
    snprintf(raw, sizeof raw, "%s%s%s", c->map.all_buckets ? "*" : c->map.bucket,
             c->map.prefix[0] ? ":" : "", c->map.prefix);
    if (ctl_escape(c->opt.mountpoint ? c->opt.mountpoint : "?", mnt, sizeof mnt) ||
        ctl_escape(raw, src, sizeof src))
        return -ENAMETOOLONG;
    char conds[512];
    cond_format(&c->conds, conds, sizeof conds);
    return sbuf_appendf(
        out,
        "mount %s\nsource %s\npid %ld\nuptime_ms %lld\nconditions %s\n"
        "jobs_pending %llu\njobs_queued %llu\njobs_running %llu\njobs_done %llu\n"
        "jobs_failed %llu\njobs_retried %llu\njobs_limit %d\njobs_batch %d\n"
        "jobs_failures_kept %zu\n"
        "s3_requests %llu\ns3_requests_per_s %.1f\ns3_retries %llu\ns3_throttled %llu\n"
        "s3_failures %llu\ns3_bytes_up %llu\ns3_bytes_down %llu\n"
        "pool_queued %zu\npool_running %d\npool_limit %d\npool_threads %d\n"
        "cache_entries %zu\ncache_pinned %zu\ncache_negative %zu\ncache_listings %zu\n"
        "cache_names %zu\ncache_hits %llu\ncache_misses %llu\ncache_dir_hits %llu\n"
        "cache_dir_misses %llu\ncache_evictions %llu\nkernel_entries_dropped %lu\n"
        "rss_kib %ld\nrss_peak_kib %ld\nheap_in_use_kib %zu\nheap_free_kib %zu\n"
        "heap_mmap_kib %zu\nok\n",
        mnt, src, (long)getpid(), (long long)(now_ms() - ctl->started_ms), conds,
        (unsigned long long)js.pending, (unsigned long long)js.queued,
        (unsigned long long)js.running, (unsigned long long)js.done, (unsigned long long)js.failed,
        (unsigned long long)js.retried, js.limit, js.batch, js.failures_kept,
        (unsigned long long)requests, request_rate(ctl, requests),
        (unsigned long long)atomic_load(&st->retries),
        (unsigned long long)atomic_load(&st->throttled),
        (unsigned long long)atomic_load(&st->failures),
        (unsigned long long)atomic_load(&st->bytes_up),
        (unsigned long long)atomic_load(&st->bytes_down), ps.queued, ps.running, ps.limit,
        ps.nthreads, ns.entries, ns.pinned, ns.negative, ns.listings, ns.names,
        (unsigned long long)ns.hits, (unsigned long long)ns.misses, (unsigned long long)ns.dir_hits,
        (unsigned long long)ns.dir_misses, (unsigned long long)ns.evictions,
        c->evict ? kevict_sent(c->evict) : 0ul, proc_status_kib("VmRSS:"), proc_status_kib("VmHWM:"),
        mi.uordblks / 1024, mi.fordblks / 1024, mi.hblkhd / 1024);
}

/* One request line into out (a complete answer, ending in ok or error). */
static void answer(struct ctl_server *ctl, char *line, struct sbuf *out)
{
    struct fs_ctx *c = ctl->c;
    char *arg = strchr(line, ' ');
    if (arg)
        *arg++ = '\0';
    char path[PATH_BUF];
    struct scope s;
    int rc = 0;
    if (arg && (rc = ctl_unescape(arg, strlen(arg), path, sizeof path)) == 0)
        rc = scope_of(c, path, &s);
    if (rc) {
        sbuf_appendf(out, "error %d bad path: %s\n", -rc, strerror(-rc));
        return;
    }
    if (strcmp(line, "status") == 0 && !arg) {
        rc = answer_status(ctl, out);
    } else if (strcmp(line, "count") == 0 && arg) {
        rc = sbuf_appendf(out, "pending %zu\nok\n", scope_count(c, &s));
    } else if (strcmp(line, "errors") == 0) {
        rc = list_failures(c, arg ? &s : NULL, out);
        if (rc == 0)
            rc = sbuf_append_str(out, "ok\n");
    } else if (strcmp(line, "wait") == 0 && arg) {
        LOGD("control: wait for %s", path);
        int wrc = scope_wait(c, &s);
        if (wrc == 0) {
            rc = sbuf_append_str(out, "ok\n");
        } else {
            rc = list_failures(c, &s, out);
            if (rc == 0)
                rc = sbuf_appendf(out, "error %d %s\n", -wrc, strerror(-wrc));
        }
    } else {
        rc = sbuf_appendf(out,
                          "error %d unknown request (status, count PATH, wait PATH, "
                          "errors [PATH])\n",
                          EINVAL);
    }
    if (rc) {
        sbuf_reset(out);
        sbuf_appendf(out, "error %d %s\n", -rc, strerror(-rc));
    }
}

/* ---------- threads ---------- */

static void client_end(struct ctl_server *ctl, struct client *cl)
{
    close(cl->fd);
    free(cl);
    pthread_mutex_lock(&ctl->lock);
    ctl->nclients--;
    pthread_cond_broadcast(&ctl->gone);
    /* the last touch of ctl: ctl_server_stop may free it once this is unlocked */
    pthread_mutex_unlock(&ctl->lock);
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    struct ctl_server *ctl = cl->ctl;
    struct ctl_reader *r = malloc(sizeof *r);
    struct sbuf out = SBUF_INIT;
    char mnt[3 * PATH_BUF + 1];
    int rc = r ? ctl_escape(ctl->c->opt.mountpoint ? ctl->c->opt.mountpoint : "?", mnt, sizeof mnt)
               : -ENOMEM;
    if (rc == 0)
        rc = sbuf_appendf(&out, "%s %d %s %ld\n", CTL_GREETING, CTL_PROTO_VERSION, mnt,
                          (long)getpid());
    if (rc == 0)
        rc = ctl_send(cl->fd, out.data, out.len);
    if (r)
        ctl_reader_init(r, cl->fd);
    int idle_s = 0;
    while (rc == 0) {
        char *line;
        int n = ctl_read_line(r, &line);
        if (n == -EAGAIN) { /* SO_RCVTIMEO: a second without a request */
            if (atomic_load(&ctl->stopping) || ++idle_s >= IDLE_LIMIT_S)
                break;
            continue;
        }
        if (n <= 0)
            break; /* gone, or a line too long to be ours */
        idle_s = 0;
        sbuf_reset(&out);
        answer(ctl, line, &out);
        /* a client that went away mid-wait: -EPIPE here, nothing else */
        rc = out.len ? ctl_send(cl->fd, out.data, out.len) : -ENOMEM;
    }
    sbuf_free(&out);
    free(r);
    client_end(ctl, cl);
    return NULL;
}

/* Whether the peer may use the socket: the mounting user or root. */
static bool peer_allowed(struct ctl_server *ctl, int fd, uid_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    *uid = cred.uid;
    return cred.uid == ctl->uid || cred.uid == 0;
}

/* Never blocks: the acceptor must not wait on one client. */
static void refuse(int fd, int err, const char *why)
{
    char line[256];
    int n = snprintf(line, sizeof line, "error %d %s\n", err, why);
    if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        LOGD("control: could not tell a refused client why: %s", strerror(errno));
    close(fd);
}

static void take_client(struct ctl_server *ctl, int fd)
{
    uid_t uid = (uid_t)-1;
    if (!peer_allowed(ctl, fd, &uid)) {
        char why[160];
        snprintf(why, sizeof why,
                 "permission denied: only uid %u (who mounted it) and root may use this mount's "
                 "control socket",
                 (unsigned)ctl->uid);
        LOGI("control: refused a client of uid %d", (int)uid);
        refuse(fd, EACCES, why);
        return;
    }
    struct timeval rcv = {1, 0}, snd = {SEND_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
    pthread_mutex_lock(&ctl->lock);
    bool room = ctl->nclients < CONTROL_MAX_CLIENTS;
    if (room)
        ctl->nclients++;
    pthread_mutex_unlock(&ctl->lock);
    struct client *cl = room ? malloc(sizeof *cl) : NULL;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = cl ? 0 : room ? ENOMEM : EBUSY;
    if (cl) {
        *cl = (struct client){ctl, fd};
        rc = pthread_create(&t, &attr, client_main, cl); /* inherits our full mask */
        if (rc) {
            free(cl);
            cl = NULL;
        }
    }
    pthread_attr_destroy(&attr);
    if (cl)
        return;
    if (room) {
        pthread_mutex_lock(&ctl->lock);
        ctl->nclients--;
        pthread_mutex_unlock(&ctl->lock);
    }
    refuse(fd, rc, rc == EBUSY ? "too many clients at once; try again" : strerror(rc));
}

static void take_sample(struct ctl_server *ctl, int64_t now)
{
    uint64_t req = atomic_load(&s3_client_stats(ctl->c->s3)->requests);
    pthread_mutex_lock(&ctl->lock);
    ctl->samples[ctl->next] = (struct sample){now, req};
    ctl->next = (ctl->next + 1) % RATE_SAMPLES;
    if (ctl->nsamples < RATE_SAMPLES)
        ctl->nsamples++;
    pthread_mutex_unlock(&ctl->lock);
}

static void *acceptor_main(void *arg)
{
    struct ctl_server *ctl = arg;
    int64_t last = now_ms();
    take_sample(ctl, last);
    while (!atomic_load(&ctl->stopping)) {
        struct pollfd p = {.fd = ctl->lfd, .events = POLLIN};
        int n = poll(&p, 1, ACCEPT_TICK_MS);
        int64_t now = now_ms();
        if (now - last >= 1000) {
            take_sample(ctl, now);
            last = now;
        }
        if (n <= 0)
            continue;
        int fd = accept4(ctl->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            take_client(ctl, fd);
        else if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
            LOGW("control: accept: %s", strerror(errno));
    }
    close(ctl->lfd);
    return NULL;
}

/* ---------- start and stop ---------- */

/* dir, made if missing, must be ours and closed to others. */
static int own_dir(const char *dir)
{
    if (mkdir(dir, 0700) && errno != EEXIST)
        return -errno;
    struct stat st;
    if (lstat(dir, &st))
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        LOGE("control: %s is not a directory of uid %u; no control socket", dir,
             (unsigned)geteuid());
        return -EPERM;
    }
    /* someone opened it up: close it again, the directory is the fence */
    if ((st.st_mode & 077) && chmod(dir, 0700))
        return -errno;
    return 0;
}

static int listen_at(struct ctl_server *ctl)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", ctl->path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    /* a previous daemon of this mount point that died left its socket */
    if (unlink(ctl->path) && errno != ENOENT)
        LOGW("control: cannot remove the old %s: %s", ctl->path, strerror(errno));
    struct stat st;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || chmod(ctl->path, 0600) || listen(fd, 16) ||
        stat(ctl->path, &st)) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    ctl->dev = st.st_dev;
    ctl->ino = st.st_ino;
    ctl->lfd = fd;
    return 0;
}

static void remove_socket(struct ctl_server *ctl)
{
    struct stat st;
    /* a newer mount of the same mount point may have replaced it */
    if (stat(ctl->path, &st) == 0 && st.st_dev == ctl->dev && st.st_ino == ctl->ino)
        unlink(ctl->path);
}

static int start_acceptor(struct ctl_server *ctl)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&ctl->acceptor, NULL, acceptor_main, ctl);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

int ctl_server_start(struct fs_ctx *c)
{
    char dir[PATH_BUF];
    struct ctl_server *ctl = calloc(1, sizeof *ctl);
    if (!ctl)
        return -ENOMEM;
    ctl->c = c;
    ctl->uid = getuid();
    ctl->lfd = -1;
    ctl->started_ms = now_ms();
    atomic_init(&ctl->stopping, false);
    int rc = c->opt.mountpoint && c->jobs ? 0 : -EINVAL;
    if (rc == 0)
        rc = ctl_socket_dir(geteuid(), getenv("XDG_RUNTIME_DIR"), dir, sizeof dir);
    if (rc == 0)
        rc = ctl_socket_path(dir, c->opt.mountpoint, ctl->path, sizeof ctl->path);
    if (rc == 0)
        rc = own_dir(dir);
    if (rc == 0)
        rc = listen_at(ctl);
    if (rc) {
        LOGE("control: no control socket for %s (s3cfs-ctl will not reach it): %s",
             c->opt.mountpoint ? c->opt.mountpoint : "?", strerror(-rc));
        free(ctl);
        return rc;
    }
    pthread_mutex_init(&ctl->lock, NULL);
    pthread_cond_init(&ctl->gone, NULL);
    rc = start_acceptor(ctl);
    if (rc) {
        LOGE("control: cannot start its thread: %s", strerror(-rc));
        close(ctl->lfd);
        remove_socket(ctl);
        pthread_mutex_destroy(&ctl->lock);
        pthread_cond_destroy(&ctl->gone);
        free(ctl);
        return rc;
    }
    LOGI("control socket of %s: %s", c->opt.mountpoint, ctl->path);
    c->control = ctl;
    return 0;
}

void ctl_server_stop(struct fs_ctx *c)
{
    struct ctl_server *ctl = c->control;
    if (!ctl)
        return;
    /* the final drain, watched: s3cfs-ctl still answers until it is over */
    if (c->jobs)
        engine_wait_idle(c->jobs);
    atomic_store(&ctl->stopping, true);
    pthread_join(ctl->acceptor, NULL);
    remove_socket(ctl);
    pthread_mutex_lock(&ctl->lock);
    while (ctl->nclients > 0) /* each sees the stop within a second */
        pthread_cond_wait(&ctl->gone, &ctl->lock);
    pthread_mutex_unlock(&ctl->lock);
    pthread_mutex_destroy(&ctl->lock);
    pthread_cond_destroy(&ctl->gone);
    free(ctl);
    c->control = NULL;
}
