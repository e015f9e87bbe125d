/* s3proxy.c - an HTTP/1.1 reverse proxy for S3 tests that adds latency, injects faults
 * (503 SlowDown, 500, connection reset mid-answer, stalls) and counts requests by S3
 * operation so a test can assert what its client sent. Loopback only, by design.
 *
 * This file: command line, listening socket, signals and the upstream address. */
#include "s3proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int g_quiet;

static struct sockaddr_storage up_addr;
static socklen_t up_len;
static char up_name[300];
static long max_seconds;

static void usage(FILE *f)
{
    fprintf(
        f, "usage: s3proxy --upstream HOST:PORT [--listen 127.0.0.1:0] [--port-file FILE]\n"
           "               [--delay-ms N] [--jitter-ms N] [--delay KIND=MS]...\n"
           "               [--fault-rate R] [--faults 503,500,reset,stall]\n"
           "               [--fault-kinds KIND,KIND] [--stall-ms N] [--seed N]\n"
           "               [--max-seconds N] [--quiet]\n"
           "Addresses must be loopback. Control API on the listening port:\n"
           "  GET /__proxy/stats, POST /__proxy/reset, POST /__proxy/config?name=value&...\n"
           "  (config also takes mangle=etag_long|clen_missing|clen_invalid|meta_flood|none\n"
           "  and mangle_kinds=KIND,KIND: answers rewritten as a broken server's, see mangle.c)\n");
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* Resolves HOST:PORT or [V6]:PORT. Anything but loopback is refused (-EPERM): test
 * traffic must stay on this machine. */
static int parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST};
    struct addrinfo *res, *pick;
    const char *colon = strrchr(spec, ':');

    if (!colon || colon == spec || colon[1] == '\0' || (size_t)(colon - spec) >= sizeof(host))
        return -EINVAL;
    size_t hl = (size_t)(colon - spec);
    if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
        spec++;
        hl -= 2;
    }
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (strspn(colon + 1, "0123456789") != strlen(colon + 1) || atol(colon + 1) > 65535)
        return -EINVAL;
    /* Numeric only (no DNS traffic leaves the machine); localhost is the one name. */
    if (strcasecmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return -EINVAL;
    pick = res;
    int rc = is_loopback(pick->ai_addr) ? 0 : -EPERM;
    if (rc == 0) {
        memcpy(ss, pick->ai_addr, pick->ai_addrlen);
        *len = pick->ai_addrlen;
    }
    freeaddrinfo(res);
    return rc;
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
    }
}

const char *upstream_name(void)
{
    return up_name;
}

/* No Nagle: headers and body go out as separate writes and must not wait 40 ms for a
 * delayed ACK, or every measured latency would be off. Timeouts bound dead peers. */
void sock_tune(int fd)
{
    int one = 1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int upstream_connect(void)
{
    int fd = socket(up_addr.ss_family, SOCK_STREAM, 0);

    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&up_addr, up_len) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    sock_tune(fd);
    return fd;
}

/* Written under a temporary name and renamed, so a reader never sees a partial file. */
static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    int bad = fprintf(f, "%u\n", port) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) < 0) {
        int err = bad ? EIO : errno;
        unlink(tmp);
        return -err;
    }
    return 0;
}

/* SIGTERM/SIGINT are blocked in every thread and taken here, synchronously, together
 * with the --max-seconds deadline. _exit: connection threads may be mid-write. */
static void *watchdog(void *arg)
{
    sigset_t *set = arg;
    struct timespec deadline;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += max_seconds;
    for (;;) {
        struct timespec now, left = {0, 0};
        clock_gettime(CLOCK_MONOTONIC, &now);
        left.tv_sec = deadline.tv_sec - now.tv_sec;
        left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
        if (left.tv_nsec < 0) {
            left.tv_nsec += 1000000000L;
            left.tv_sec--;
        }
        if (max_seconds > 0 && left.tv_sec < 0) {
            fprintf(stderr, "s3proxy: --max-seconds %ld reached, exiting\n", max_seconds);
            _exit(0);
        }
        int sig = max_seconds > 0 ? sigtimedwait(set, NULL, &left) : sigwaitinfo(set, NULL);
        if (sig > 0) {
            if (!g_quiet)
                fprintf(stderr, "s3proxy: signal %d, exiting\n", sig);
            _exit(0);
        }
    }
    return NULL;
}

static int opt_number(const char *v, long *out)
{
    char *end;

    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < 0)
        return -EINVAL;
    *out = n;
    return 0;
}

/* --delay KIND=MS is the config parameter delay.KIND=MS. */
static int opt_kind_delay(const char *v)
{
    char name[128];
    const char *eq = strchr(v, '=');

    if (!eq || (size_t)(eq - v) + 7 > sizeof(name))
        return -EINVAL;
    snprintf(name, sizeof(name), "delay.%.*s", (int)(eq - v), v);
    return state_set(name, eq + 1);
}

struct options {
    const char *upstream, *listen, *port_file;
    unsigned long long seed;
};

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"upstream", required_argument, NULL, 'u'},
        {"listen", required_argument, NULL, 'l'},
        {"port-file", required_argument, NULL, 'p'},
        {"delay-ms", required_argument, NULL, 'd'},
        {"jitter-ms", required_argument, NULL, 'j'},
        {"delay", required_argument, NULL, 'D'},
        {"fault-rate", required_argument, NULL, 'r'},
        {"faults", required_argument, NULL, 'f'},
        {"fault-kinds", required_argument, NULL, 'k'},
        {"stall-ms", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},
        {"max-seconds", required_argument, NULL, 'm'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long n;
    int opt, rc = 0;

    while (rc == 0 && (opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'u':
            o->upstream = optarg;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case 'p':
            o->port_file = optarg;
            break;
        case 'd':
            rc = state_set("delay_ms", optarg);
            break;
        case 'j':
            rc = state_set("jitter_ms", optarg);
            break;
        case 'D':
            rc = opt_kind_delay(optarg);
            break;
        case 'r':
            rc = state_set("fault_rate", optarg);
            break;
        case 'f':
            rc = state_set("faults", optarg);
            break;
        case 'k':
            rc = state_set("fault_kinds", optarg);
            break;
        case 's':
            rc = state_set("stall_ms", optarg);
            break;
        case 'S':
            rc = opt_number(optarg, &n);
            o->seed = (unsigned long long)n;
            break;
        case 'm':
            rc = opt_number(optarg, &max_seconds);
            break;
        case 'q':
            g_quiet = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -EINVAL;
        }
        if (rc < 0)
            fprintf(stderr, "s3proxy: bad value for option: %s\n", optarg);
    }
    if (rc == 0 && (optind != argc || !o->upstream)) {
        fprintf(stderr, "s3proxy: --upstream is required, and nothing else\n");
        rc = -EINVAL;
    }
    return rc;
}

static int listen_on(const char *spec, char *name, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;

    int rc = parse_addr(spec, &ss, &len);
    if (rc < 0)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 512) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    addr_text(&ss, name, cap);
    return fd;
}

static unsigned port_of(const char *name)
{
    const char *colon = strrchr(name, ':');

    return colon ? (unsigned)atoi(colon + 1) : 0;
}

static int start_watchdog(void)
{
    static sigset_t set;
    pthread_t t;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* Blocked before any thread exists, so every later thread inherits the mask. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int rc = pthread_create(&t, NULL, watchdog, &set);
    if (rc == 0)
        pthread_detach(t);
    return -rc;
}

static void accept_loop(int lfd)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0) {
            conn_start(fd);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            struct timespec ts = {0, 50 * 1000000L}; /* let connections end, then retry */
            nanosleep(&ts, NULL);
        } else if (errno != EINTR && errno != ECONNABORTED) {
            perror("s3proxy: accept");
        }
    }
}

int main(int argc, char **argv)
{
    struct options o = {.listen = "127.0.0.1:0"};
    char name[300];
    int rc;

    o.seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
    state_init();
    if (parse_options(argc, argv, &o) < 0) {
        usage(stderr);
        return 2;
    }
    state_seed(o.seed);
    if ((rc = parse_addr(o.upstream, &up_addr, &up_len)) < 0) {
        fprintf(stderr, "s3proxy: --upstream %s: %s\n", o.upstream,
                rc == -EPERM ? "not a loopback address"
                             : "want a numeric loopback HOST:PORT, or localhost:PORT");
        return 2;
    }
    addr_text(&up_addr, up_name, sizeof(up_name));
    int lfd = listen_on(o.listen, name, sizeof(name));
    if (lfd < 0) {
        fprintf(stderr, "s3proxy: --listen %s: %s\n", o.listen,
                lfd == -EPERM ? "not a loopback address" : strerror(-lfd));
        return 2;
    }
    if (start_watchdog() < 0)
        return 1;
    if (o.port_file && (rc = write_port_file(o.port_file, port_of(name))) < 0) {
        fprintf(stderr, "s3proxy: --port-file %s: %s\n", o.port_file, strerror(-rc));
        return 1;
    }
    printf("listening %s\n", name);
    fflush(stdout);
    accept_loop(lfd);
    return 0;
}
