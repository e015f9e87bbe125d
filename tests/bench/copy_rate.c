/* copy_rate.c - request-rate benchmark of the S3 client.
 *
 * How many small CopyObject requests per second the client library gets
 * through with 1, 16 and 64 requests in flight. That figure is the ceiling
 * the filesystem's `cp -r` and `mv` are judged against (doc/DESIGN.md §4), so the
 * worker threads call s3_copy_object() directly, with nothing in between.
 * PutObject, HeadObject and DeleteObjects lines at 64 in flight are printed
 * for context; the DeleteObjects pass is also the cleanup.
 *
 * --head-copy LEVELS adds the same-mix ceiling: per file a HeadObject of the
 * source and then its CopyObject, the requests the filesystem's `cp -r`
 * sends per file, so "% of ceiling" compares like with like.
 *
 * --put-only writes --objects keys PREFIX000000, PREFIX000001, ... at the
 * first --inflight level and keeps them: a fast plain writer for the
 * benchmark's large flat directory (W9), which must not go through a mount.
 *
 * Every phase is bounded: after --seconds-max the remaining work is skipped
 * (the cleanup gets CLEANUP_S more), and a watchdog ends the process if even
 * that hangs, so a wedged server cannot hold a CI job forever.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "s3cfs/s3.h"

#define MAX_LEVELS   16
#define MAX_INFLIGHT 1024
#define CONTEXT_L    64   /* in-flight level of the put/head/delete lines */
#define BATCH        1000 /* keys per DeleteObjects, the S3 maximum */
#define KEY_MAX      512
#define CLEANUP_S    60  /* extra time the cleanup gets after --seconds-max */
#define WATCHDOG_S   120 /* after --seconds-max: give up and _exit */
#define MAX_WATCH    8

struct config {
    const char *endpoint;
    const char *bucket;
    const char *prefix;
    const char *proxy_stats; /* URL of the proxy's counters, for a cross-check */
    size_t objects;
    size_t size;
    int levels[MAX_LEVELS];
    int nlevels;
    int hc_levels[MAX_LEVELS]; /* --head-copy: HEAD + CopyObject per file */
    int nhc;
    bool put_only;
    double seconds_max;
    int watch[MAX_WATCH]; /* processes (the server's) whose CPU use is reported */
    char watch_name[MAX_WATCH][32];
    int nwatch;
};

struct phase;
/* One unit of work: operation i of the phase. Returns 0 or -errno. */
typedef int (*op_fn)(struct phase *ph, size_t i, struct s3_error *err);

struct phase {
    const char *name;       /* first word of the output line */
    const char *proxy_kind; /* request kind in the proxy's stats */
    op_fn op;
    int group; /* key group written or read: 0 sources, g copies of level g */
    int inflight;
    size_t n; /* units of work */
    double deadline;
    atomic_size_t next;   /* next unit to hand out */
    atomic_size_t failed; /* units (for delete: keys) that failed */
    atomic_size_t keys;   /* delete: keys sent */
    atomic_int active, peak;
    atomic_uint_fast64_t lat_ns;
    atomic_flag err_taken;
    struct s3_error first_err;
    int first_rc;
};

static struct config cfg = {
    .prefix = "bench/copy-rate/",
    .objects = 2000,
    .size = 2048,
    .levels = {1, 16, 64},
    .nlevels = 3,
    .seconds_max = 300,
};
static struct s3_client *cli;
static struct timespec t_start;
static atomic_bool aborted;
static char *payload;
/* How many keys of each group may exist: what was handed out, so the
 * cleanup covers every key a request was sent for, even a failed one. */
static size_t issued[2 * MAX_LEVELS + 1];
static char (*batch_keys)[KEY_MAX];

static double elapsed(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t_start.tv_sec) + (double)(t.tv_nsec - t_start.tv_nsec) / 1e9;
}

/* CPU seconds this process used so far: the bench's own share of the two
 * cores, to tell a client-bound figure from a server-bound one. */
static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* CPU seconds used so far by another process (utime + stime, fields 14 and
 * 15 of /proc/PID/stat), or -1: tells whether the server is CPU-bound. */
static double cpu_of(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut, st;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Busy and total jiffies of the whole machine (/proc/stat): whether the
 * cores are saturated, by the server or by whatever else runs there. */
static int machine_cpu(double *busy, double *total)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -errno;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4)
        return -EIO;
    *total = 0;
    for (int i = 0; i < 8; i++)
        *total += (double)v[i];
    *busy = *total - (double)v[3] - (double)v[4]; /* minus idle and iowait */
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Group 0 the sources (flat under the prefix with --put-only), 1..nlevels
 * the copies of each level, then the head-copy levels' copies. */
static void key_of(int group, size_t i, char *out)
{
    if (group == 0)
        snprintf(out, KEY_MAX, cfg.put_only ? "%s%06zu" : "%ssrc/%06zu", cfg.prefix, i);
    else if (group <= cfg.nlevels)
        snprintf(out, KEY_MAX, "%sdst-%d/%06zu", cfg.prefix, cfg.levels[group - 1], i);
    else
        snprintf(out, KEY_MAX, "%shc-%d/%06zu", cfg.prefix, cfg.hc_levels[group - 1 - cfg.nlevels],
                 i);
}

/* ---- the operations ---- */

static int op_put(struct phase *ph, size_t i, struct s3_error *err)
{
    char key[KEY_MAX];
    struct s3_body b = {.data = payload, .fd = -1, .len = cfg.size};
    key_of(ph->group, i, key);
    return s3_put_object(cli, cfg.bucket, key, &b, NULL, NULL, err);
}

static int op_head(struct phase *ph, size_t i, struct s3_error *err)
{
    char key[KEY_MAX];
    struct s3_head h;
    key_of(ph->group, i, key);
    int rc = s3_head_object(cli, cfg.bucket, key, &h, err);
    if (rc == 0)
        s3_head_free(&h);
    return rc;
}

static int op_copy(struct phase *ph, size_t i, struct s3_error *err)
{
    char src[KEY_MAX], dst[KEY_MAX];
    key_of(0, i, src);
    key_of(ph->group, i, dst);
    return s3_copy_object(cli, cfg.bucket, src, cfg.bucket, dst, NULL, NULL, err);
}

/* The same-mix ceiling: the source's attributes first, as `cp -r` through
 * the mount needs them, then the copy. */
static int op_head_copy(struct phase *ph, size_t i, struct s3_error *err)
{
    struct phase src = {.group = 0};
    int rc = op_head(&src, i, err);
    return rc ? rc : op_copy(ph, i, err);
}

/* Batch i of the cleanup: the keys of every group, numbered group by group. */
static size_t batch_fill(size_t batch, char (*keys)[KEY_MAX], const char **ptrs)
{
    size_t first = batch * BATCH, pos = 0, m = 0;
    for (int g = 0; g <= cfg.nlevels + cfg.nhc && m < BATCH; g++) {
        for (size_t i = 0; i < issued[g] && m < BATCH; i++, pos++) {
            if (pos < first)
                continue;
            key_of(g, i, keys[m]);
            ptrs[m] = keys[m];
            m++;
        }
    }
    return m;
}

static int op_delete(struct phase *ph, size_t i, struct s3_error *err)
{
    char(*keys)[KEY_MAX] = batch_keys + i * BATCH;
    const char *ptrs[BATCH];
    struct s3_delete_error *e;
    size_t ne;
    size_t m = batch_fill(i, keys, ptrs);
    atomic_fetch_add(&ph->keys, m);
    int rc = s3_delete_objects(cli, cfg.bucket, ptrs, NULL, m, &e, &ne, err);
    if (rc)
        return rc;
    for (size_t j = 0; j < ne; j++)
        fprintf(stderr, "bench_copy_rate: delete %s: %s %s\n", e[j].key, e[j].code, e[j].message);
    atomic_fetch_add(&ph->failed, ne);
    s3_delete_errors_free(e, ne);
    return 0;
}

/* ---- running a phase ---- */

static void note_failure(struct phase *ph, int rc, const struct s3_error *err)
{
    atomic_fetch_add(&ph->failed, 1);
    if (!atomic_flag_test_and_set(&ph->err_taken)) {
        ph->first_err = *err;
        ph->first_rc = rc;
    }
}

static void track_active(struct phase *ph)
{
    int a = atomic_fetch_add(&ph->active, 1) + 1;
    int p = atomic_load(&ph->peak);
    while (a > p && !atomic_compare_exchange_weak(&ph->peak, &p, a))
        ;
}

static void *worker(void *arg)
{
    struct phase *ph = arg;
    for (;;) {
        if (elapsed() > ph->deadline) {
            atomic_store(&aborted, true);
            break;
        }
        size_t i = atomic_fetch_add(&ph->next, 1);
        if (i >= ph->n)
            break;
        struct s3_error err = {0};
        track_active(ph);
        uint64_t t = now_ns();
        int rc = ph->op(ph, i, &err);
        atomic_fetch_add(&ph->lat_ns, now_ns() - t);
        atomic_fetch_sub(&ph->active, 1);
        if (rc)
            note_failure(ph, rc, &err);
    }
    return NULL;
}

/* ---- the proxy's counters: were exactly n requests sent per level? ---- */

struct text {
    char buf[8192];
    size_t len;
};

static size_t text_write(char *p, size_t sz, size_t nm, void *arg)
{
    struct text *t = arg;
    size_t n = sz * nm, room = sizeof t->buf - 1 - t->len;
    memcpy(t->buf + t->len, p, n < room ? n : room);
    t->len += n < room ? n : room;
    return n;
}

/* The request count of one kind in the proxy's stats ("KIND REQUESTS
 * REQBYTES RESPBYTES" lines), or -1 when there is no proxy or no answer. */
static long proxy_count(const char *kind)
{
    if (!cfg.proxy_stats)
        return -1;
    struct text t = {.len = 0};
    CURL *h = curl_easy_init();
    if (!h)
        return -1;
    curl_easy_setopt(h, CURLOPT_URL, cfg.proxy_stats);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, text_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK)
        return -1;
    t.buf[t.len] = '\0';
    size_t kl = strlen(kind);
    for (char *l = t.buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, kind, kl) == 0 && l[kl] == ' ')
            return strtol(l + kl + 1, NULL, 10);
    return 0; /* the proxy lists only kinds it has seen */
}

static int spawn_and_join(struct phase *ph)
{
    pthread_t th[MAX_INFLIGHT];
    int started = 0, rc = 0;
    for (; started < ph->inflight; started++) {
        rc = -pthread_create(&th[started], NULL, worker, ph);
        if (rc)
            break;
    }
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    return rc;
}

static void print_watched(const double *w0, double secs)
{
    double b1, t1;
    if (machine_cpu(&b1, &t1) == 0 && t1 > w0[MAX_WATCH + 1])
        printf(" cpu.machine=%.0f%%", 100 * (b1 - w0[MAX_WATCH]) / (t1 - w0[MAX_WATCH + 1]));
    for (int k = 0; k < cfg.nwatch; k++) {
        double w1 = cpu_of(cfg.watch[k]);
        if (w0[k] >= 0 && w1 >= 0 && secs > 0)
            printf(" cpu.%s=%.0f%%", cfg.watch_name[k], 100 * (w1 - w0[k]) / secs);
    }
}

static void print_phase(const struct phase *ph, double secs, double cpu, const double *w0,
                        uint64_t retries, uint64_t failures, size_t n, long proxied)
{
    printf("%s inflight=%d n=%zu seconds=%.3f rate=%.1f/s retries=%" PRIu64 " failures=%" PRIu64,
           ph->name, ph->inflight, n, secs, secs > 0 ? (double)n / secs : 0.0, retries, failures);
    size_t units = atomic_load(&ph->next) < ph->n ? atomic_load(&ph->next) : ph->n;
    printf(" peak_inflight=%d mean_ms=%.2f client_cpu=%.0f%%", atomic_load(&ph->peak),
           units ? (double)atomic_load(&ph->lat_ns) / 1e6 / (double)units : 0.0,
           secs > 0 ? 100 * cpu / secs : 0.0);
    print_watched(w0, secs);
    if (ph->op == op_delete)
        printf(" requests=%zu", units);
    if (proxied >= 0)
        printf(" proxy_%s=%ld", ph->proxy_kind, proxied);
    if (atomic_load(&ph->next) < ph->n)
        printf(" ABORTED");
    printf("\n");
    fflush(stdout);
}

/* Run ph->n operations with exactly ph->inflight threads and print its line.
 * Returns 0, or -1 when anything failed. */
static int run_phase(struct phase *ph)
{
    struct s3_stats *st = s3_client_stats(cli);
    uint64_t r0 = atomic_load(&st->retries), f0 = atomic_load(&st->failures);
    long p0 = proxy_count(ph->proxy_kind);
    double w0[MAX_WATCH + 2] = {0}; /* the watched processes, then the machine's busy/total */
    for (int k = 0; k < cfg.nwatch; k++)
        w0[k] = cpu_of(cfg.watch[k]);
    machine_cpu(&w0[MAX_WATCH], &w0[MAX_WATCH + 1]);
    double t0 = elapsed(), c0 = cpu_self();
    int rc = spawn_and_join(ph);
    double secs = elapsed() - t0, cpu = cpu_self() - c0;
    long p1 = proxy_count(ph->proxy_kind);
    size_t handed = atomic_load(&ph->next) < ph->n ? atomic_load(&ph->next) : ph->n;
    size_t n = ph->op == op_delete ? atomic_load(&ph->keys) : handed;
    if (ph->op != op_delete)
        issued[ph->group] = handed > issued[ph->group] ? handed : issued[ph->group];
    print_phase(ph, secs, cpu, w0, atomic_load(&st->retries) - r0, atomic_load(&st->failures) - f0,
                n, p0 >= 0 && p1 >= 0 ? p1 - p0 : -1);
    if (rc)
        fprintf(stderr, "bench_copy_rate: %s: starting threads: %s\n", ph->name, strerror(-rc));
    if (atomic_load(&ph->failed)) {
        char msg[600];
        fprintf(stderr, "bench_copy_rate: %s: %zu failed, first: %s (%s)\n", ph->name,
                atomic_load(&ph->failed), s3_error_format(&ph->first_err, msg, sizeof msg),
                strerror(-ph->first_rc));
    }
    return rc || atomic_load(&ph->failed) ? -1 : 0;
}

static int run(const char *name, const char *kind, op_fn op, int group, int inflight, size_t n,
               double deadline)
{
    struct phase ph = {.name = name,
                       .proxy_kind = kind,
                       .op = op,
                       .group = group,
                       .inflight = inflight,
                       .n = n,
                       .deadline = deadline,
                       .err_taken = ATOMIC_FLAG_INIT};
    return run_phase(&ph);
}

/* ---- setup ---- */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: bench_copy_rate --endpoint URL --bucket B [--objects N (2000)]\n"
        "         [--size BYTES (2048)] [--inflight 1,16,64] [--seconds-max S (300)]\n"
        "         [--prefix P (bench/copy-rate/)] [--proxy-stats URL] [--watch-pids PID,...]\n"
        "         [--head-copy 64 (HEAD + CopyObject per file)] [--put-only (keep PREFIXnnnnnn)]\n"
        "Credentials come from the environment (AWS_ACCESS_KEY_ID, profile, ...).\n");
}

static int parse_levels(const char *s, int *levels, int *nlevels)
{
    *nlevels = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > MAX_INFLIGHT || *nlevels == MAX_LEVELS)
            return -EINVAL;
        for (int i = 0; i < *nlevels; i++)
            if (levels[i] == v)
                return -EINVAL; /* two levels would write the same keys */
        levels[(*nlevels)++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -EINVAL;
    }
    return *nlevels ? 0 : -EINVAL;
}

/* --watch-pids: remember each process's name now, for the output lines. */
static int parse_pids(const char *s)
{
    while (*s) {
        char *end, path[64];
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || cfg.nwatch == MAX_WATCH || (*end && *end != ','))
            return -EINVAL;
        int k = cfg.nwatch++;
        cfg.watch[k] = (int)v;
        snprintf(cfg.watch_name[k], sizeof cfg.watch_name[k], "%ld", v);
        snprintf(path, sizeof path, "/proc/%ld/comm", v);
        FILE *f = fopen(path, "r");
        if (f && fgets(cfg.watch_name[k], sizeof cfg.watch_name[k], f))
            cfg.watch_name[k][strcspn(cfg.watch_name[k], "\n")] = '\0';
        if (f)
            fclose(f);
        s = *end ? end + 1 : end;
    }
    return 0;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -EINVAL;
    *out = (size_t)v;
    return 0;
}

static int parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"bucket", required_argument, NULL, 'b'},
        {"objects", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"inflight", required_argument, NULL, 'l'},
        {"seconds-max", required_argument, NULL, 'S'},
        {"prefix", required_argument, NULL, 'p'},
        {"proxy-stats", required_argument, NULL, 'P'},
        {"watch-pids", required_argument, NULL, 'w'},
        {"head-copy", required_argument, NULL, 'H'},
        {"put-only", no_argument, NULL, 'O'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, bad = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'e':
            cfg.endpoint = optarg;
            break;
        case 'b':
            cfg.bucket = optarg;
            break;
        case 'p':
            cfg.prefix = optarg;
            break;
        case 'P':
            cfg.proxy_stats = optarg;
            break;
        case 'n':
            bad |= parse_size(optarg, &cfg.objects) || cfg.objects == 0;
            break;
        case 's':
            bad |= parse_size(optarg, &cfg.size);
            break;
        case 'l':
            bad |= parse_levels(optarg, cfg.levels, &cfg.nlevels) != 0;
            break;
        case 'H':
            bad |= parse_levels(optarg, cfg.hc_levels, &cfg.nhc) != 0;
            break;
        case 'O':
            cfg.put_only = true;
            break;
        case 'w':
            bad |= parse_pids(optarg) != 0;
            break;
        case 'S':
            cfg.seconds_max = strtod(optarg, &end);
            bad |= *end || !(cfg.seconds_max > 0);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            bad = 1;
        }
    }
    if (bad || optind != argc || !cfg.endpoint || !cfg.bucket || strlen(cfg.prefix) > 200)
        return -EINVAL;
    return 0;
}

static void *watchdog(void *arg)
{
    (void)arg;
    double limit = cfg.seconds_max + WATCHDOG_S;
    struct timespec ts = {.tv_sec = (time_t)limit, .tv_nsec = 0};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
    fprintf(stderr, "bench_copy_rate: still running %.0f s after --seconds-max: giving up\n",
            (double)WATCHDOG_S);
    _exit(3);
}

static int client_open(struct creds_provider **cp)
{
    struct creds_options co = {.no_imds = true};
    struct s3_error err = {0};
    char msg[600];
    int rc = s3_global_init();
    if (rc == 0)
        rc = creds_provider_new(&co, cp, &err);
    if (rc == 0) {
        struct s3_client_options o = {.endpoint = cfg.endpoint, .creds = *cp};
        rc = s3_client_new(&o, &cli, &err);
        if (rc)
            creds_provider_free(*cp);
    }
    if (rc)
        fprintf(stderr, "bench_copy_rate: client: %s (%s)\n",
                s3_error_format(&err, msg, sizeof msg), strerror(-rc));
    return rc;
}

/* Put, head, the copy levels, then the DeleteObjects cleanup, which runs
 * even after an abort so the bucket is left as it was found. */
static int bench(void)
{
    double dl = cfg.seconds_max;
    size_t n = cfg.objects;
    if (cfg.put_only) /* the keys stay: they are the workload's input */
        return run("put", "PutObject", op_put, 0, cfg.levels[0], n, dl) || aborted ? -1 : 0;
    int bad = run("put", "PutObject", op_put, 0, CONTEXT_L, n, dl);
    if (!bad && !aborted)
        bad |= run("head", "HeadObject", op_head, 0, CONTEXT_L, n, dl);
    for (int g = 1; g <= cfg.nlevels && !bad && !aborted; g++)
        bad |= run("copyobject", "CopyObject", op_copy, g, cfg.levels[g - 1], n, dl);
    for (int h = 0; h < cfg.nhc && !bad && !aborted; h++)
        bad |= run("headcopy", "CopyObject", op_head_copy, cfg.nlevels + 1 + h, cfg.hc_levels[h], n,
                   dl);
    if (aborted)
        printf("aborted: --seconds-max %.0f reached, remaining work skipped\n", cfg.seconds_max);
    size_t total = 0;
    for (int g = 0; g <= cfg.nlevels + cfg.nhc; g++)
        total += issued[g];
    size_t batches = (total + BATCH - 1) / BATCH;
    batch_keys = calloc(batches ? batches * BATCH : 1, KEY_MAX);
    if (!batch_keys)
        return -1;
    bad |= run("delete", "DeleteObjects", op_delete, 0, CONTEXT_L, batches, dl + CLEANUP_S);
    free(batch_keys);
    return bad || aborted ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv)) {
        usage(stderr);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t_start);
    pthread_t wd;
    if (pthread_create(&wd, NULL, watchdog, NULL) == 0)
        pthread_detach(wd);
    payload = malloc(cfg.size ? cfg.size : 1);
    if (!payload)
        return 1;
    for (size_t i = 0; i < cfg.size; i++)
        payload[i] = (char)('a' + i % 26);
    struct creds_provider *cp;
    if (client_open(&cp))
        return 1;
    int rc = bench();
    s3_client_free(cli);
    creds_provider_free(cp);
    free(payload);
    return rc ? 1 : 0;
}
