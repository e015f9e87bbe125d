/* s3cfs-ctl: talk to a running s3cfs through its control socket
 * (ctl_server.h for the protocol, ctl_proto.h for where the socket is).
 *
 *   s3cfs-ctl status [PATH]   the engine's jobs, S3 requests, cache sizes
 *   s3cfs-ctl wait [PATH]     until every job queued below PATH has landed
 *   s3cfs-ctl errors [PATH]   recent failures
 *
 * PATH (default: the current directory) is anything inside a mount; the
 * mount is the one /proc/self/mountinfo says holds it. The older form
 * "COMMAND [PATH] MOUNTPOINT" works too. Exit status: 0; 1 when jobs
 * waited for failed; 2 for usage errors and when the daemon cannot be
 * reached (not an s3cfs mount, permission); 3 when wait timed out. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "s3cfs/ctl_proto.h"
#include "s3cfs/log.h"

#define EXIT_FAILED  1
#define EXIT_USAGE   2
#define EXIT_TIMEOUT 3
#define ANSWER_MS    30000 /* any answer but a wait's */
#define POLL_MS      200   /* progress refresh */
#define BAR_WIDTH    30
#define MAX_FIELDS   64

static const char *prog = "s3cfs-ctl";

struct opts {
    bool quiet, raw;
    double timeout_s; /* wait; 0: none */
    const char *cmd, *path, *mountpoint;
};

/* Where a PATH leads: the mount, its daemon's socket, PATH inside it. */
struct target {
    char mountpoint[PATH_MAX];
    char rel[PATH_MAX]; /* "/" or "/dir/file": the path as FUSE sees it */
    long owner;         /* the mount's user (mountinfo user_id), -1: unknown */
    char socket[PATH_MAX];
};

struct conn {
    int fd;
    struct ctl_reader r;
    char msg[512]; /* the text of the last "error" line */
};

/* ---------- finding the mount ---------- */

/* mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo. */
static void unoctal(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

/* PATH made absolute without touching the filesystem (for a path that
 * realpath cannot resolve: another user's FUSE mount answers EACCES). */
static int lexical_abs(const char *path, char *out, size_t size)
{
    char buf[2 * PATH_MAX];
    if (path[0] == '/') {
        snprintf(buf, sizeof buf, "%s", path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return -errno;
        snprintf(buf, sizeof buf, "%s/%s", cwd, path);
    }
    size_t o = 0;
    out[0] = '\0';
    for (char *save, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            while (o > 0 && out[--o] != '/')
                ;
            out[o] = '\0';
            continue;
        }
        int n = snprintf(out + o, size - o, "/%s", c);
        if (n < 0 || (size_t)n >= size - o)
            return -ENAMETOOLONG;
        o += (size_t)n;
    }
    if (o == 0)
        snprintf(out, size, "/");
    return 0;
}

static int absolute(const char *path, char *out, size_t size)
{
    char real[PATH_MAX];
    if (realpath(path, real)) {
        if (strlen(real) >= size)
            return -ENAMETOOLONG;
        strcpy(out, real);
        return 0;
    }
    return lexical_abs(path, out, size);
}

/* Whether mount point mp holds abs; its length as the score, else -1. */
static long holds(const char *mp, const char *abs)
{
    size_t n = strlen(mp);
    if (strcmp(mp, "/") == 0)
        return 1;
    return strncmp(abs, mp, n) == 0 && (abs[n] == '/' || abs[n] == '\0') ? (long)n : -1;
}

struct mount {
    char mp[PATH_MAX];
    char fstype[128];
    long owner;
};

/* One mountinfo line: "ID PARENT MAJ:MIN ROOT MP OPTS [TAGS...] - TYPE SRC SUPER". */
static bool parse_mountinfo(char *line, struct mount *m)
{
    char *f[6], *save = NULL;
    for (int n = 0; n < 6; n++)
        if (!(f[n] = strtok_r(n ? NULL : line, " \n", &save)))
            return false;
    char *t;
    while ((t = strtok_r(NULL, " \n", &save)) && strcmp(t, "-") != 0)
        ;
    char *type = strtok_r(NULL, " \n", &save);
    strtok_r(NULL, " \n", &save); /* the source */
    char *super = strtok_r(NULL, " \n", &save);
    if (!t || !type)
        return false;
    unoctal(f[4]);
    snprintf(m->mp, sizeof m->mp, "%s", f[4]);
    snprintf(m->fstype, sizeof m->fstype, "%s", type);
    char *uid = super ? strstr(super, "user_id=") : NULL;
    m->owner = uid ? strtol(uid + 8, NULL, 10) : -1;
    return true;
}

/* The mount holding abs (the innermost; of stacked ones, the top). */
static int find_mount(const char *abs, struct mount *best)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    long score = -1;
    struct mount m;
    while (getline(&line, &cap, f) > 0) {
        if (!parse_mountinfo(line, &m))
            continue;
        long s = holds(m.mp, abs);
        if (s >= score && s >= 0) {
            score = s;
            *best = m;
        }
    }
    free(line);
    fclose(f);
    return score >= 0 ? 0 : -ENOENT;
}

/* ---------- finding the socket ---------- */

/* The directories the daemon of a mount of uid owner may use (ctl_proto.h),
 * owner -1: those of our own uid and root's. */
static int socket_dirs(long owner, char dirs[][PATH_MAX], int max)
{
    int n = 0;
    uid_t me = getuid();
    if (owner == 0 || owner < 0)
        ctl_socket_dir(0, NULL, dirs[n++], PATH_MAX);
    uid_t u = owner > 0 ? (uid_t)owner : me;
    if (owner != 0 && u != 0) {
        if (u == me && n < max &&
            ctl_socket_dir(u, getenv("XDG_RUNTIME_DIR"), dirs[n], PATH_MAX) == 0)
            n++;
        char run[64];
        snprintf(run, sizeof run, "/run/user/%u", (unsigned)u);
        if (n < max && ctl_socket_dir(u, run, dirs[n], PATH_MAX) == 0)
            n++;
        if (n < max && ctl_socket_dir(u, NULL, dirs[n], PATH_MAX) == 0)
            n++;
    }
    return n;
}

/* The socket of mountpoint into out: 0 (it exists), -EACCES (a candidate
 * we may not look into), -ENOENT. */
static int find_socket(const char *mountpoint, long owner, char *out, size_t size)
{
    char dirs[4][PATH_MAX];
    int n = socket_dirs(owner, dirs, 4);
    int rc = -ENOENT;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat st;
        if (ctl_socket_path(dirs[i], mountpoint, path, sizeof path))
            continue;
        if (lstat(path, &st) == 0) {
            /* only the daemon's user could have made it (a planted socket
             * in /tmp would otherwise answer for the mount) */
            if (!S_ISSOCK(st.st_mode) ||
                (owner >= 0 ? st.st_uid != (uid_t)owner : st.st_uid != getuid() && st.st_uid != 0))
                continue;
            snprintf(out, size, "%s", path);
            return 0;
        }
        if (errno == EACCES && rc != -EACCES) {
            snprintf(out, size, "%s", path);
            rc = -EACCES;
        }
    }
    return rc;
}

static void explain_denied(const struct target *t)
{
    char who[32] = "";
    if (t->owner >= 0)
        snprintf(who, sizeof who, " (uid %ld)", t->owner);
    fprintf(stderr,
            "%s: %s: permission denied: only the user who mounted it%s and root may use its "
            "control socket %s\n",
            prog, t->mountpoint, who, t->socket);
}

/* The mount holding PATH and its socket: 0, or an exit status. */
static int resolve(const struct opts *o, struct target *t)
{
    char abs[PATH_MAX], mabs[PATH_MAX];
    const char *path = o->path ? o->path : ".";
    int rc = absolute(path, abs, sizeof abs);
    if (rc == 0 && o->mountpoint)
        rc = absolute(o->mountpoint, mabs, sizeof mabs);
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(-rc));
        return EXIT_USAGE;
    }
    const char *look = o->mountpoint ? mabs : abs;
    struct mount m;
    rc = find_mount(look, &m);
    if (rc == 0 && strcmp(m.fstype, "fuse.s3cfs") == 0) {
        snprintf(t->mountpoint, sizeof t->mountpoint, "%s", m.mp);
        t->owner = m.owner;
        rc = find_socket(t->mountpoint, t->owner, t->socket, sizeof t->socket);
    } else if (find_socket(look, -1, t->socket, sizeof t->socket) == 0) {
        /* unmounted, but its daemon still lands the last jobs */
        snprintf(t->mountpoint, sizeof t->mountpoint, "%s", look);
        t->owner = -1;
        rc = 0;
    } else {
        if (rc == 0)
            fprintf(stderr, "%s: %s is not in an s3cfs mount (it is on %s, type %s)\n", prog, look,
                    m.mp, m.fstype);
        else
            fprintf(stderr, "%s: %s is not in an s3cfs mount\n", prog, look);
        return EXIT_USAGE;
    }
    if (rc == -EACCES) {
        explain_denied(t);
        return EXIT_USAGE;
    }
    if (rc) {
        fprintf(stderr,
                "%s: %s: no control socket found (%s); is its s3cfs older than s3cfs-ctl?\n", prog,
                t->mountpoint, t->socket[0] ? t->socket : "see s3cfs(1), FILES");
        return EXIT_USAGE;
    }
    long in = holds(t->mountpoint, abs);
    if (in < 0) {
        fprintf(stderr, "%s: %s is not inside the mount %s\n", prog, abs, t->mountpoint);
        return EXIT_USAGE;
    }
    const char *rest = strcmp(t->mountpoint, "/") == 0 ? abs : abs + in;
    snprintf(t->rel, sizeof t->rel, "%s", *rest ? rest : "/");
    return 0;
}

/* ---------- talking ---------- */

/* One line of the answer within timeout_ms (-1: no limit): 1, or -errno
 * (-ETIMEDOUT, -ECONNRESET for a closed connection). */
static int read_line(struct conn *c, int timeout_ms, char **line)
{
    for (;;) {
        int rc = ctl_read_line(&c->r, line);
        if (rc == 0)
            return -ECONNRESET;
        if (rc != -EAGAIN)
            return rc;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, timeout_ms);
        if (n == 0)
            return -ETIMEDOUT;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* "error ERRNO TEXT": the errno, the text kept in c->msg; else 0. */
static int error_line(struct conn *c, const char *line)
{
    if (strncmp(line, "error ", 6) != 0)
        return 0;
    char *end;
    long e = strtol(line + 6, &end, 10);
    const char *text = *end == ' ' ? end + 1 : end;
    log_escape(text, strlen(text), c->msg, sizeof c->msg); /* it may quote a key */
    return e > 0 ? (int)e : EIO;
}

static void explain_connect(const struct target *t, int err)
{
    if (err == EACCES || err == EPERM)
        explain_denied(t);
    else if (err == ECONNREFUSED)
        fprintf(stderr, "%s: %s: its s3cfs does not answer on %s (it has exited)\n", prog,
                t->mountpoint, t->socket);
    else
        fprintf(stderr, "%s: %s: cannot connect to %s: %s\n", prog, t->mountpoint, t->socket,
                strerror(err));
}

/* Connect and check the greeting: 0, or an exit status (after a message). */
static int connect_to(const struct target *t, struct conn *c)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(t->socket); /* fits: ctl_socket_path checked it */
    memcpy(sa.sun_path, t->socket, len < sizeof sa.sun_path ? len : sizeof sa.sun_path - 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        explain_connect(t, errno);
        return EXIT_USAGE;
    }
    ctl_reader_init(&c->r, c->fd);
    /* non-blocking from now on: read_line polls, with its timeouts */
    struct timeval tv = {ANSWER_MS / 1000, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        fprintf(stderr, "%s: %s\n", prog, strerror(errno));
        return EXIT_USAGE;
    }
    char *line;
    int rc = read_line(c, ANSWER_MS, &line);
    if (rc < 0) {
        fprintf(stderr, "%s: %s: no answer on %s: %s\n", prog, t->mountpoint, t->socket,
                strerror(-rc));
        return EXIT_USAGE;
    }
    if ((rc = error_line(c, line)) != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, t->mountpoint, c->msg);
        return EXIT_USAGE;
    }
    int version = 0;
    char mnt[3 * PATH_MAX + 1], raw[PATH_MAX];
    if (sscanf(line, CTL_GREETING " %d %12287s", &version, mnt) != 2 ||
        version != CTL_PROTO_VERSION || ctl_unescape(mnt, strlen(mnt), raw, sizeof raw)) {
        fprintf(stderr, "%s: %s: %s does not speak protocol %d: %.80s\n", prog, t->mountpoint,
                t->socket, CTL_PROTO_VERSION, line);
        return EXIT_USAGE;
    }
    if (strcmp(raw, t->mountpoint) != 0) {
        fprintf(stderr, "%s: %s: the socket %s serves %s instead\n", prog, t->mountpoint, t->socket,
                raw);
        return EXIT_USAGE;
    }
    return 0;
}

/* Send "VERB [PATH]" and read the answer: each data line goes to cb.
 * 0 on "ok"; a positive errno on "error" (its text in c->msg); -errno when
 * the exchange itself failed. */
typedef void (*line_fn)(void *arg, char *line);
static int request(struct conn *c, const char *verb, const char *path, line_fn cb, void *arg)
{
    char esc[3 * PATH_MAX + 1], req[3 * PATH_MAX + 64];
    int rc = path ? ctl_escape(path, esc, sizeof esc) : 0;
    if (rc)
        return rc;
    int n = snprintf(req, sizeof req, "%s%s%s\n", verb, path ? " " : "", path ? esc : "");
    if ((rc = ctl_send(c->fd, req, (size_t)n)) != 0)
        return rc;
    for (;;) {
        char *line;
        if ((rc = read_line(c, ANSWER_MS, &line)) < 0)
            return rc;
        if (strcmp(line, "ok") == 0)
            return 0;
        if ((rc = error_line(c, line)) != 0)
            return rc;
        if (cb)
            cb(arg, line);
    }
}

/* A transport failure or an "error" answer, as a message and exit status. */
static int failed(const struct target *t, const struct conn *c, const char *what, int rc)
{
    if (rc > 0)
        fprintf(stderr, "%s: %s: %s: %s\n", prog, t->mountpoint, what, c->msg);
    else
        fprintf(stderr, "%s: %s: %s: %s\n", prog, t->mountpoint, what, strerror(-rc));
    return EXIT_USAGE;
}

static void take_count(void *arg, char *line)
{
    unsigned long long v;
    if (sscanf(line, "pending %llu", &v) == 1)
        *(size_t *)arg = (size_t)v;
}

/* Jobs pending below PATH, or -1. */
static long long count(struct conn *c, const char *rel)
{
    size_t n = 0;
    return request(c, "count", rel, take_count, &n) == 0 ? (long long)n : -1;
}

/* ---------- failures ---------- */

/* "failure ERRNO BUCKET KEY MESSAGE" as "bucket/key: message". A key may hold
 * any byte but NUL: what reaches the terminal has its control bytes escaped. */
static void print_failure(FILE *out, const char *indent, char *line)
{
    char *save = NULL, bucket[256], key[4096], eb[4 * sizeof bucket], ek[4 * sizeof key], em[2048];
    strtok_r(line, " ", &save); /* "failure" */
    char *err = strtok_r(NULL, " ", &save);
    char *b = strtok_r(NULL, " ", &save);
    char *k = strtok_r(NULL, " ", &save);
    const char *msg = save && *save ? save : "";
    if (!err || !b || !k || ctl_unescape(b, strlen(b), bucket, sizeof bucket) ||
        ctl_unescape(k, strlen(k), key, sizeof key))
        return;
    log_escape(bucket, strlen(bucket), eb, sizeof eb);
    log_escape(key, strlen(key), ek, sizeof ek);
    if (!*msg)
        msg = strerror(atoi(err));
    log_escape(msg, strlen(msg), em, sizeof em);
    fprintf(out, "%s%s/%s: %s\n", indent, eb, ek, em);
}

static void on_error_line(void *arg, char *line)
{
    (void)arg;
    if (strncmp(line, "failure ", 8) == 0)
        print_failure(stdout, "", line);
}

static int cmd_errors(const struct target *t, struct conn *c)
{
    int rc = request(c, "errors", t->rel, on_error_line, NULL);
    return rc ? failed(t, c, "errors", rc) : 0;
}

/* ---------- status ---------- */

struct fields {
    int n;
    char *line[MAX_FIELDS];
};

static void take_field(void *arg, char *line)
{
    struct fields *f = arg;
    if (f->n < MAX_FIELDS && (f->line[f->n] = strdup(line)))
        f->n++;
}

static const char *field(const struct fields *f, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < f->n; i++)
        if (strncmp(f->line[i], name, n) == 0 && f->line[i][n] == ' ')
            return f->line[i] + n + 1;
    return "?";
}

static unsigned long long num(const struct fields *f, const char *name)
{
    return strtoull(field(f, name), NULL, 10);
}

static void human_bytes(unsigned long long v, char *out, size_t size)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double d = (double)v;
    int u = 0;
    while (d >= 1024 && u < 4) {
        d /= 1024;
        u++;
    }
    snprintf(out, size, u ? "%.1f %s" : "%.0f %s", d, unit[u]);
}

static void print_status(const struct target *t, const struct fields *f, long long below)
{
    char src[PATH_MAX], up[32], down[32];
    const char *s = field(f, "source");
    if (ctl_unescape(s, strlen(s), src, sizeof src))
        snprintf(src, sizeof src, "?");
    char *colon = strchr(src, ':');
    if (colon)
        *colon = '\0';
    human_bytes(num(f, "s3_bytes_up"), up, sizeof up);
    human_bytes(num(f, "s3_bytes_down"), down, sizeof down);
    printf("mount:     %s (%s%s%s%s), s3cfs pid %s, up %llu s\n", t->mountpoint,
           strcmp(src, "*") == 0 ? "all buckets" : "bucket ", strcmp(src, "*") == 0 ? "" : src,
           colon ? ", prefix " : "", colon ? colon + 1 : "", field(f, "pid"),
           num(f, "uptime_ms") / 1000);
    printf("jobs:      %llu pending: %llu queued, %llu in flight; %llu done, %llu failed, "
           "%llu retried\n",
           num(f, "jobs_pending"), num(f, "jobs_queued"), num(f, "jobs_running"),
           num(f, "jobs_done"), num(f, "jobs_failed"), num(f, "jobs_retried"));
    printf("           concurrency limit %llu, delete batch %llu; %llu recent failures%s\n",
           num(f, "jobs_limit"), num(f, "jobs_batch"), num(f, "jobs_failures_kept"),
           num(f, "jobs_failures_kept") ? " (s3cfs-ctl errors)" : "");
    if (below >= 0)
        printf("below %s%s: %lld pending\n", strcmp(t->mountpoint, "/") ? t->mountpoint : "",
               t->rel, below);
    printf("requests:  %llu sent, %s/s, %llu retries, %llu throttled (SlowDown), %llu failed\n",
           num(f, "s3_requests"), field(f, "s3_requests_per_s"), num(f, "s3_retries"),
           num(f, "s3_throttled"), num(f, "s3_failures"));
    printf("transfer:  %s up, %s down; engine pool: %llu queued, %llu running (limit %llu)\n", up,
           down, num(f, "pool_queued"), num(f, "pool_running"), num(f, "pool_limit"));
    printf("cache:     %llu entries (%llu pinned, %llu negative), %llu listings of %llu names\n",
           num(f, "cache_entries"), num(f, "cache_pinned"), num(f, "cache_negative"),
           num(f, "cache_listings"), num(f, "cache_names"));
    printf("           lookups %llu hits, %llu misses; listings %llu hits, %llu misses; "
           "%llu evictions\n",
           num(f, "cache_hits"), num(f, "cache_misses"), num(f, "cache_dir_hits"),
           num(f, "cache_dir_misses"), num(f, "cache_evictions"));
    printf("conditions honoured by the server: %s\n", field(f, "conditions"));
    printf("memory:    %llu KiB resident, peak %llu KiB; %llu closed files dropped from the "
           "kernel's cache\n",
           num(f, "rss_kib"), num(f, "rss_peak_kib"), num(f, "kernel_entries_dropped"));
    printf("           heap %llu KiB in use, %llu KiB free, %llu KiB in large blocks\n",
           num(f, "heap_in_use_kib"), num(f, "heap_free_kib"), num(f, "heap_mmap_kib"));
}

static int cmd_status(const struct target *t, struct conn *c, const struct opts *o)
{
    struct fields f = {0};
    int rc = request(c, "status", NULL, take_field, &f);
    long long below = -1;
    if (rc == 0 && strcmp(t->rel, "/") != 0 && (below = count(c, t->rel)) < 0)
        rc = -EPROTO;
    if (rc == 0 && o->raw) {
        for (int i = 0; i < f.n; i++)
            printf("%s\n", f.line[i]);
        if (below >= 0)
            printf("path_pending %lld\n", below);
    } else if (rc == 0) {
        print_status(t, &f, below);
    }
    for (int i = 0; i < f.n; i++)
        free(f.line[i]);
    return rc ? failed(t, c, "status", rc) : 0;
}

/* ---------- wait ---------- */

struct progress {
    bool on;
    size_t total, landed;
    bool drawn;
};

static void draw(struct progress *p)
{
    char bar[BAR_WIDTH + 1];
    size_t fill = p->total ? p->landed * BAR_WIDTH / p->total : BAR_WIDTH;
    memset(bar, '#', fill);
    memset(bar + fill, '-', BAR_WIDTH - fill);
    bar[BAR_WIDTH] = '\0';
    fprintf(stderr, "\r[%s] %zu/%zu jobs landed ", bar, p->landed, p->total);
    fflush(stderr);
    p->drawn = true;
}

/* remaining jobs now pending below PATH: the total grows with new work */
static void advance(struct progress *p, long long remaining)
{
    if (remaining < 0)
        return;
    size_t rem = (size_t)remaining;
    if (rem > p->total - p->landed)
        p->total = p->landed + rem;
    else
        p->landed = p->total - rem;
    draw(p);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct failures {
    int n;
    char *line[256];
};

/* Read the wait's answer, drawing progress meanwhile: 0, a positive errno
 * ("error"), -ETIMEDOUT past the deadline, or -errno. */
static int wait_answer(struct conn *w, struct conn *poller, const char *rel, struct progress *p,
                       int64_t deadline, struct failures *fl)
{
    for (;;) {
        int tick = p->on ? POLL_MS : 1000;
        if (deadline && deadline - mono_ms() < tick)
            tick = deadline > mono_ms() ? (int)(deadline - mono_ms()) : 0;
        char *line;
        int rc = read_line(w, tick, &line);
        if (rc == -ETIMEDOUT) {
            if (deadline && mono_ms() >= deadline)
                return -ETIMEDOUT;
            if (p->on)
                advance(p, count(poller, rel));
            continue;
        }
        if (rc < 0)
            return rc;
        if (strcmp(line, "ok") == 0)
            return 0;
        if ((rc = error_line(w, line)) != 0)
            return rc;
        if (strncmp(line, "failure ", 8) == 0 && fl->n < 256 && (fl->line[fl->n] = strdup(line)))
            fl->n++;
    }
}

static int cmd_wait(const struct target *t, struct conn *w, struct conn *poller,
                    const struct opts *o)
{
    struct progress p = {.on = poller != NULL};
    if (p.on) {
        long long n = count(poller, t->rel);
        p.total = n > 0 ? (size_t)n : 0;
        draw(&p);
    }
    char esc[3 * PATH_MAX + 1], req[3 * PATH_MAX + 16];
    int rc = ctl_escape(t->rel, esc, sizeof esc);
    if (rc == 0)
        rc = ctl_send(w->fd, req, (size_t)snprintf(req, sizeof req, "wait %s\n", esc));
    int64_t deadline = o->timeout_s > 0 ? mono_ms() + (int64_t)(o->timeout_s * 1000) : 0;
    struct failures fl = {0};
    if (rc == 0)
        rc = wait_answer(w, poller, t->rel, &p, deadline, &fl);
    if (p.on) {
        if (rc == 0)
            p.landed = p.total;
        draw(&p);
        fputc('\n', stderr);
    }
    int status = 0;
    if (rc == -ETIMEDOUT) {
        fprintf(stderr, "%s: %s%s: still waiting after %g s; the jobs go on\n", prog, t->mountpoint,
                strcmp(t->rel, "/") ? t->rel : "", o->timeout_s);
        status = EXIT_TIMEOUT;
    } else if (rc > 0) {
        fprintf(stderr, "%s: jobs below %s%s failed (the earliest: %s)%s\n", prog, t->mountpoint,
                strcmp(t->rel, "/") ? t->rel : "", w->msg, fl.n ? "; recent failures:" : "");
        for (int i = 0; i < fl.n; i++)
            print_failure(stderr, "  ", fl.line[i]);
        status = EXIT_FAILED;
    } else if (rc < 0) {
        status = failed(t, w, "wait", rc);
    }
    for (int i = 0; i < fl.n; i++)
        free(fl.line[i]);
    return status;
}

/* ---------- main ---------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-q] [-t SECONDS] [-r] COMMAND [PATH]\n\n"
            "PATH (default: the current directory) is anything inside an s3cfs mount.\n\n"
            "commands:\n"
            "  status [PATH]   jobs queued, in flight and failed; requests per second,\n"
            "                  retries, throttling; cache sizes (and jobs pending below\n"
            "                  PATH if it is not the mount point)\n"
            "  wait [PATH]     block until every job queued below PATH has landed; exit 1,\n"
            "                  listing the failures, if some failed\n"
            "  errors [PATH]   recent failed jobs (below PATH), oldest first\n\n"
            "options:\n"
            "  -q, --quiet          wait: no progress bar (there is none unless stderr is a\n"
            "                       terminal)\n"
            "  -t, --timeout=S      wait: give up after S seconds (exit 3)\n"
            "  -r, --raw            status: the daemon's NAME VALUE lines\n"
            "  -h, --help   -V, --version\n\n"
            "exit status: 0; 1 jobs failed; 2 usage, not an s3cfs mount, no permission,\n"
            "no daemon; 3 timeout. COMMAND [PATH] MOUNTPOINT is accepted too.\n",
            prog);
}

/* One option: 0, or the exit status to stop with. */
static int take_option(int ch, struct opts *o)
{
    char *end;
    switch (ch) {
    case 'q':
        o->quiet = true;
        return 0;
    case 'r':
        o->raw = true;
        return 0;
    case 't':
        o->timeout_s = strtod(optarg, &end);
        if (!*end && o->timeout_s > 0)
            return 0;
        fprintf(stderr, "%s: bad timeout %s\n", prog, optarg);
        return EXIT_USAGE;
    case 'h':
        usage(stdout);
        exit(0);
    case 'V':
        printf("s3cfs-ctl %s (protocol %d)\n", S3CFS_VERSION, CTL_PROTO_VERSION);
        exit(0);
    default:
        usage(stderr);
        return EXIT_USAGE;
    }
}

/* COMMAND [PATH [MOUNTPOINT]]: 0, or the exit status to stop with. */
static int take_operands(int n, char **args, struct opts *o)
{
    if (n < 1 || n > 3) {
        usage(stderr);
        return EXIT_USAGE;
    }
    o->cmd = args[0];
    o->path = n >= 2 ? args[1] : NULL;
    o->mountpoint = n == 3 ? args[2] : NULL;
    if (strcmp(o->cmd, "status") && strcmp(o->cmd, "wait") && strcmp(o->cmd, "errors")) {
        fprintf(stderr, "%s: unknown command %s (status, wait, errors)\n", prog, o->cmd);
        return EXIT_USAGE;
    }
    return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"quiet", no_argument, NULL, 'q'},         {"raw", no_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0},
    };
    int ch, rc = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, "qrt:hV", longs, NULL)) != -1)
        rc = take_option(ch, o);
    if (rc == 0)
        rc = take_operands(argc - optind, argv + optind, o);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    static struct target t;
    if ((rc = resolve(&o, &t)) != 0)
        return rc;
    static struct conn c, poller;
    if ((rc = connect_to(&t, &c)) != 0)
        return rc;
    if (strcmp(o.cmd, "status") == 0)
        return cmd_status(&t, &c, &o);
    if (strcmp(o.cmd, "errors") == 0)
        return cmd_errors(&t, &c);
    /* the progress bar asks on a second connection while the first waits */
    bool bar = !o.quiet && isatty(STDERR_FILENO);
    if (bar && connect_to(&t, &poller) != 0)
        return EXIT_USAGE;
    return cmd_wait(&t, &c, bar ? &poller : NULL, &o);
}
