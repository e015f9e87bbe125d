/* s3cfs: mount S3 buckets as directories.
 *
 *   s3cfs [options] MOUNTPOINT                   every bucket, one per directory
 *   s3cfs [options] BUCKET[:/PREFIX] MOUNTPOINT  one bucket (or a prefix of it)
 *
 * Before it goes to the background it checks the endpoint, the credentials
 * and the bucket, and exits with a one-line reason when any is wrong. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "s3cfs/cond.h"
#include "s3cfs/ctl_server.h"
#include "s3cfs/fsqueue.h"
#include "s3cfs/fsops.h"
#include "s3cfs/log.h"
#include "s3cfs/mime.h"
#include "s3cfs/node.h"
#include "s3cfs/nscache.h"
#include "s3cfs/pool.h"
#include "s3cfs/stage.h"
#include "s3cfs/kernel_evict.h"

#define MIB ((size_t)1 << 20)

struct cli {
    struct fs_options o;
    int mb_multipart, mb_part, mb_copy, mb_copy_part, mb_stage, mb_readahead, mb_stream_keep;
    int mb_stream_inflight;
    char *nonopt[3];
    int nnonopt;
    int help, version;
    int dumpable; /* debugging: allow core dumps and ptrace (protect_secrets) */
    int coherent; /* every cache lifetime 0: other clients' changes seen at once */
};

enum { KEY_SUID = 100, KEY_NOSUID };

#define OPT(t, p)                                                                                  \
    {                                                                                              \
        t, offsetof(struct cli, p), 1                                                              \
    }
static const struct fuse_opt opt_spec[] = {
    OPT("endpoint=%s", o.endpoint),
    OPT("url=%s", o.endpoint),
    OPT("--endpoint=%s", o.endpoint),
    OPT("region=%s", o.region),
    OPT("endpoint_region=%s", o.region),
    OPT("--region=%s", o.region),
    OPT("profile=%s", o.profile),
    OPT("--profile=%s", o.profile),
    OPT("passwd_file=%s", o.passwd_file),
    OPT("--passwd-file=%s", o.passwd_file),
    OPT("ca_file=%s", o.ca_file),
    OPT("tmpdir=%s", o.tmpdir),
    {"path_style", offsetof(struct cli, o.path_style), 1},
    {"use_path_request_style", offsetof(struct cli, o.path_style), 1},
    {"virtual_hosted", offsetof(struct cli, o.path_style), 2},
    OPT("insecure", o.insecure),
    OPT("uid=%d", o.uid),
    OPT("gid=%d", o.gid),
    OPT("umask=%o", o.umask),
    OPT("file_mode=%o", o.file_mode),
    OPT("dir_mode=%o", o.dir_mode),
    OPT("attr_ttl=%lf", o.attr_ttl),
    OPT("dir_ttl=%lf", o.dir_ttl),
    OPT("negative_ttl=%lf", o.negative_ttl),
    OPT("cache_entries=%d", o.cache_entries),
    OPT("kept_files=%d", o.kept_files),
    OPT("max_inflight=%d", o.max_inflight),
    OPT("multipart_threshold=%d", mb_multipart),
    OPT("part_size=%d", mb_part),
    OPT("copy_threshold=%d", mb_copy),
    OPT("copy_part_size=%d", mb_copy_part),
    OPT("stage_mem=%d", mb_stage),
    OPT("max_listing=%d", o.max_listing),
    OPT("readahead_mem=%d", mb_readahead),
    OPT("log_level=%s", o.log_level),
    OPT("--log-level=%s", o.log_level),
    OPT("listing_attrs_only", o.listing_attrs_only),
    OPT("journal_dir=%s", o.journal_dir),
    OPT("sync_jobs", o.sync),
    OPT("nomime", o.nomime),
    OPT("nokeep_cache", o.nokeep_cache),
    OPT("nostream", o.nostream),
    OPT("stream_keep=%d", mb_stream_keep),
    OPT("stream_inflight=%d", mb_stream_inflight),
    /* kept for the kernel (fuse_opt keeps a matched option when the proc
     * returns 1): noted so that setuid/setgid bits are shown only here */
    FUSE_OPT_KEY("suid", KEY_SUID),
    FUSE_OPT_KEY("nosuid", KEY_NOSUID),
    OPT("dumpable", dumpable),
    OPT("coherent", coherent),
    OPT("-f", o.foreground),
    OPT("--foreground", o.foreground),
    OPT("-h", help),
    OPT("--help", help),
    OPT("-V", version),
    OPT("--version", version),
    FUSE_OPT_END,
};

static void usage(const char *prog)
{
    printf("usage: %s [options] [BUCKET[:/PREFIX]] MOUNTPOINT\n\n"
           "Mounts S3 buckets: with no BUCKET, every bucket the credentials can list\n"
           "appears as a top-level directory.\n\n"
           "options (-o name=value, comma-separated; some also as --name=value):\n"
           "  endpoint=URL          S3 endpoint (default: AWS for the region, or\n"
           "                        $AWS_ENDPOINT_URL)\n"
           "  region=NAME           signing region (default us-east-1 or the profile's)\n"
           "  path_style | virtual_hosted   addressing (default: path-style for custom\n"
           "                        endpoints, virtual-hosted on AWS)\n"
           "  profile=NAME          AWS profile in ~/.aws/credentials and ~/.aws/config\n"
           "  passwd_file=PATH      s3fs-style ACCESS:SECRET file (mode 600)\n"
           "  ca_file=PATH, insecure   TLS trust (verification is on by default)\n"
           "  uid=N gid=N umask=OOO file_mode=OOO dir_mode=OOO   defaults for objects\n"
           "                        without s3fs metadata\n"
           "  attr_ttl=S dir_ttl=S negative_ttl=S   cache lifetimes in seconds\n"
           "                        (defaults 5, 5, 2)\n"
           "  cache_entries=N       attribute entries kept (default 50000)\n"
           "  kept_files=N          closed files the kernel keeps cached; older ones are\n"
           "                        dropped so memory does not grow with a tree (4096)\n"
           "  max_inflight=N        S3 requests in flight (default 64)\n"
           "  multipart_threshold=MiB part_size=MiB   uploads (defaults 16, 8)\n"
           "  copy_threshold=MiB copy_part_size=MiB   server-side copies (defaults 128, 32)\n"
           "  stage_mem=MiB         file data kept in memory before a temp file (1)\n"
           "  nostream              upload a written file only at close; by default a\n"
           "                        file written from its start uploads its parts while\n"
           "                        it is written\n"
           "  stream_keep=MiB       of such a file, what stays in tmpdir below its end\n"
           "                        (default 64; a write or read further back: EIO)\n"
           "  stream_inflight=MiB   of such a file, its parts in flight at most (128;\n"
           "                        at least two parts)\n"
           "  max_listing=N         a directory of at most N entries (up to 1000: one\n"
           "                        LIST page) is cached whole; a larger one is\n"
           "                        listed page by page, never whole (default 1000)\n"
           "  readahead_mem=MiB     read-ahead buffers of all open files (default 256)\n"
           "  tmpdir=PATH           where staged file data goes (default /tmp)\n"
           "  listing_attrs_only    ls -l without HEAD requests (modes and owners from\n"
           "                        defaults, times from the listing)\n"
           "  journal_dir=PATH      intent journal of queued copies and deletes\n"
           "                        (default /var/lib/s3cfs, ~/.local/state/s3cfs)\n"
           "  sync_jobs             copies and deletes return when they landed\n"
           "  nomime                no Content-Type from /etc/mime.types for new files\n"
           "  nokeep_cache          drop the kernel's cached pages of a file at every\n"
           "                        open (by default they are kept while its ETag is\n"
           "                        unchanged)\n"
           "  suid, dev             show setuid/setgid bits and honour them; make\n"
           "                        device nodes work (both off by default)\n"
           "  dumpable              debugging: allow core dumps and ptrace (they would\n"
           "                        hold the keys; off by default)\n"
           "  coherent              cache nothing from S3 (all lifetimes 0): another\n"
           "                        client's changes are seen at once, at a request cost\n"
           "  log_level=LEVEL       error, warn, info, debug (default warn)\n"
           "  -f, --foreground      stay in the foreground, log to stderr\n"
           "  allow_other, ro, ...  the usual FUSE mount options\n"
           "  -h, --help   -V, --version\n"
           "relative paths are taken from the current directory at mount time.\n\n"
           "credentials: options, passwd_file, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,\n"
           "the profile, ~/.passwd-s3fs, /etc/passwd-s3fs, EC2 instance metadata.\n",
           prog);
}

static int keep_nonopt(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    (void)outargs;
    struct cli *cli = data;
    if (key == KEY_SUID || key == KEY_NOSUID)
        cli->o.suid = key == KEY_SUID; /* the last one wins, as for mount(8) */
    if (key != FUSE_OPT_KEY_NONOPT)
        return 1;
    if (cli->nnonopt >= 2) {
        fprintf(stderr, "s3cfs: too many arguments: %s\n", arg);
        return -1;
    }
    cli->nonopt[cli->nnonopt++] = strdup(arg);
    return 0;
}

static void defaults(struct cli *cli)
{
    struct fs_options *o = &cli->o;
    o->uid = o->gid = o->umask = o->file_mode = o->dir_mode = -1;
    o->attr_ttl = 5;
    o->dir_ttl = 5;
    o->negative_ttl = 2;
    o->cache_entries = 50000;
    o->kept_files = 4096;
    o->max_inflight = 64;
    cli->mb_multipart = 16;
    cli->mb_part = 8;
    cli->mb_copy = 128;
    cli->mb_copy_part = 32;
    cli->mb_stage = 1;
    o->max_listing = 1000;
    cli->mb_readahead = 256;
    cli->mb_stream_keep = 64;
    cli->mb_stream_inflight = 128;
}

/* A relative path in an option is taken from the directory s3cfs was
 * started in: the daemon changes to / when it detaches, and the journal,
 * the spill files, the CA file and a SIGHUP reload of the keys open their
 * paths long after. The current directory is put in front as it is, with
 * no symbolic link resolved (a passwd file that is a link must still be
 * seen as one, and refused). */
static int make_absolute(char **path, const char *what)
{
    if (!*path || (*path)[0] == '/')
        return 0;
    if (!(*path)[0]) {
        fprintf(stderr, "s3cfs: %s is empty\n", what);
        return -EINVAL;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
        fprintf(stderr, "s3cfs: %s=%s is relative, and the current directory has no name: %s\n",
                what, *path, strerror(errno));
        return -EINVAL;
    }
    const char *rel = *path;
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2 + strspn(rel + 2, "/");
    char *abs;
    if (asprintf(&abs, "%s%s%s", cwd, strcmp(cwd, "/") != 0 ? "/" : "", rel) < 0)
        return -ENOMEM;
    free(*path);
    *path = abs;
    return 0;
}

/* The AWS files named by the environment are read again on SIGHUP, after
 * the change to /: a relative name becomes absolute here, while s3cfs is
 * still one thread ("~/" is left to the credentials module). */
static int absolute_env(const char *var)
{
    const char *v = getenv(var);
    if (!v || !*v || v[0] == '/' || strncmp(v, "~/", 2) == 0)
        return 0;
    char *path = strdup(v);
    int rc = path ? make_absolute(&path, var) : -ENOMEM;
    if (rc == 0 && setenv(var, path, 1) != 0)
        rc = -errno;
    free(path);
    return rc;
}

static int absolute_paths(struct fs_options *o)
{
    int rc = make_absolute(&o->journal_dir, "journal_dir");
    if (rc == 0)
        rc = make_absolute(&o->tmpdir, "tmpdir");
    if (rc == 0)
        rc = make_absolute(&o->ca_file, "ca_file");
    if (rc == 0)
        rc = make_absolute(&o->passwd_file, "passwd_file");
    if (rc == 0)
        rc = absolute_env("AWS_SHARED_CREDENTIALS_FILE");
    if (rc == 0)
        rc = absolute_env("AWS_CONFIG_FILE");
    return rc;
}

/* The sizes in MiB become bytes, once checked. */
static int size_options(struct cli *cli)
{
    struct fs_options *o = &cli->o;
    if (cli->mb_multipart < 5 || cli->mb_part < 5 || cli->mb_copy_part < 5 || cli->mb_copy < 5 ||
        cli->mb_stage < 0 || o->max_inflight < 1 || o->max_inflight > 1024 ||
        o->cache_entries < 100 || o->kept_files < 1 || o->max_listing < 1 ||
        cli->mb_readahead < 0 || cli->mb_stream_keep < 0 || cli->mb_stream_inflight < 0) {
        fprintf(stderr, "s3cfs: invalid size option (parts are at least 5 MiB, max_inflight "
                        "1-1024, cache_entries at least 100, kept_files and max_listing at "
                        "least 1, readahead_mem, stream_keep and stream_inflight at least 0)\n");
        return -EINVAL;
    }
    o->multipart_threshold = (size_t)cli->mb_multipart * MIB;
    o->part_size = (size_t)cli->mb_part * MIB;
    o->copy_threshold = (size_t)cli->mb_copy * MIB;
    o->copy_part_size = (size_t)cli->mb_copy_part * MIB;
    o->stage_mem = (size_t)cli->mb_stage * MIB;
    o->readahead_mem = (size_t)cli->mb_readahead * MIB;
    o->stream_keep = (size_t)cli->mb_stream_keep * MIB;
    o->stream_inflight = (size_t)cli->mb_stream_inflight * MIB;
    return 0;
}

/* A directory's own attributes live as long as a file's, except under
 * coherent: there, files, listings and negative answers are never cached,
 * whatever lifetimes were given too (the option is a promise), but a
 * directory's existence is kept for 1 s, because every system call
 * revalidates each component of its path (3 requests each). */
static int ttl_options(struct cli *cli)
{
    struct fs_options *o = &cli->o;
    o->dir_attr_ttl = o->attr_ttl;
    if (cli->coherent) {
        o->attr_ttl = o->dir_ttl = o->negative_ttl = 0;
        o->dir_attr_ttl = 1;
    }
    if (o->attr_ttl < 0 || o->dir_ttl < 0 || o->negative_ttl < 0) {
        fprintf(stderr, "s3cfs: cache lifetimes cannot be negative\n");
        return -EINVAL;
    }
    return 0;
}

static int set_log_level(const char *name)
{
    int lvl = name ? log_parse_level(name) : 0;
    if (lvl < 0) {
        fprintf(stderr, "s3cfs: unknown log level %s\n", name);
        return -EINVAL;
    }
    if (name)
        log_set_level((enum log_level)lvl);
    return 0;
}

static int finish_options(struct cli *cli)
{
    struct fs_options *o = &cli->o;
    int rc = size_options(cli);
    if (rc == 0)
        rc = ttl_options(cli);
    if (rc == 0 && !o->tmpdir)
        o->tmpdir = strdup("/tmp");
    if (rc == 0 && absolute_paths(o))
        rc = -EINVAL;
    if (rc == 0)
        rc = set_log_level(o->log_level);
    return rc;
}

static void set_defaults(struct fs_ctx *c)
{
    const struct fs_options *o = &c->opt;
    mode_t um = o->umask >= 0 ? (mode_t)o->umask : 022;
    c->defaults = (struct meta_defaults){
        .uid = o->uid >= 0 ? (uid_t)o->uid : getuid(),
        .gid = o->gid >= 0 ? (gid_t)o->gid : getgid(),
        .umask = um,
        .file_mode = o->file_mode >= 0 ? (mode_t)o->file_mode : 0666,
        .dir_mode = o->dir_mode >= 0 ? (mode_t)o->dir_mode : 0777,
        .show_suid = o->suid,
    };
    clock_gettime(CLOCK_REALTIME, &c->defaults.time);
}

/* Keys, the session token and derived signing keys live in this process:
 * a core dump, or a ptrace by any process of the same user, would hand
 * them out. A non-dumpable process writes no core, cannot be attached to
 * but by root (CAP_SYS_PTRACE), and its /proc/PID files are root's. The
 * flag survives fuse_daemonize()'s fork. -o dumpable keeps the default,
 * to debug with gdb or a core file. */
static void protect_secrets(const struct cli *cli)
{
    if (!cli->dumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        fprintf(stderr, "s3cfs: warning: cannot turn core dumps off: %s\n", strerror(errno));
}

/* Requests to an http:// endpoint cross the network in clear: SigV4 never
 * sends the secret key, but the access key id, a session token (a bearer
 * credential) and every byte of data do. Fills MSG and returns true then. */
static bool plain_http_warning(const struct fs_ctx *c, char *msg, size_t size)
{
    const char *ep = s3_client_endpoint(c->s3);
    if (strncasecmp(ep, "http://", 7) != 0)
        return false;
    snprintf(msg, size,
             "warning: endpoint %s is plain HTTP: the access key id, any session token and "
             "all data travel unencrypted (the secret key is never sent); use https://",
             ep);
    return true;
}

/* The first request: ListBuckets for all buckets, else HeadBucket. */
static int probe_store(struct fs_ctx *c, struct s3_error *err)
{
    if (c->map.all_buckets) {
        struct s3_bucket *b;
        size_t n;
        int rc = s3_list_buckets(c->s3, &b, &n, err);
        if (rc == 0)
            s3_buckets_free(b, n);
        return rc;
    }
    int rc = s3_head_bucket(c->s3, c->map.bucket, err);
    if (rc != -EACCES)
        return rc;
    /* a HEAD answer has no body: ask again with a GET to learn why */
    struct s3_list_page p = {0};
    rc = s3_list_objects(c->s3, c->map.bucket, NULL, NULL, NULL, 1, &p, err);
    s3_list_page_free(&p);
    return rc;
}

/* Endpoint, credentials and bucket, before anything is mounted. */
static int check_store(struct fs_ctx *c)
{
    struct s3_error err;
    char msg[600];
    int rc = probe_store(c, &err);
    if (rc == 0)
        return 0;
    s3_error_format(&err, msg, sizeof msg);
    if (rc == -ENOENT)
        fprintf(stderr, "s3cfs: bucket %s does not exist at %s\n", c->map.bucket,
                s3_client_endpoint(c->s3));
    else if (rc == -EACCES)
        fprintf(stderr, "s3cfs: access denied by %s with credentials from %s: %s\n",
                s3_client_endpoint(c->s3), creds_source(c->creds), msg);
    else
        fprintf(stderr, "s3cfs: cannot reach %s: %s\n", s3_client_endpoint(c->s3), msg);
    return rc;
}

static int make_client(struct fs_ctx *c, const char *bucket)
{
    struct s3_error err;
    struct creds_options co = {
        .profile = c->opt.profile, .passwd_file = c->opt.passwd_file, .bucket = bucket};
    int rc = creds_provider_new(&co, &c->creds, &err);
    if (rc) {
        fprintf(stderr, "s3cfs: credentials: %s\n", err.message);
        return rc;
    }
    char region[64] = "";
    if (!c->opt.region && creds_profile_region(c->opt.profile, region, sizeof region) == 0)
        c->opt.region = strdup(region);
    struct s3_client_options so = {
        .endpoint = c->opt.endpoint,
        .region = c->opt.region,
        .addressing = c->opt.path_style == 1   ? S3_ADDR_PATH
                      : c->opt.path_style == 2 ? S3_ADDR_VHOST
                                               : S3_ADDR_AUTO,
        .insecure_tls = c->opt.insecure,
        .ca_file = c->opt.ca_file,
        .connect_timeout_ms = 5000,
        .stall_timeout_s = 30,
        .creds = c->creds,
    };
    rc = s3_client_new(&so, &c->s3, &err);
    if (rc)
        fprintf(stderr, "s3cfs: %s\n", err.message);
    return rc;
}

/* SIGHUP re-reads the credentials (a rotated passwd file or profile). The
 * reload does file and network I/O, which no signal handler may do, so a
 * thread takes the signal with sigwait(); every other thread starts with
 * SIGHUP blocked, libfuse's own handler included. */
static void reload_creds(struct fs_ctx *c)
{
    struct s3_error err;
    s3_error_clear(&err);
    if (creds_reload(c->creds, &err) == 0)
        LOGW("SIGHUP: credentials read again (%s)", creds_source(c->creds));
    else
        LOGE("SIGHUP: credentials not read again, the old ones stay: %s", err.message);
}

static void *sighup_main(void *arg)
{
    struct fs_ctx *c = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) == 0)
            reload_creds(c);
    }
    return NULL;
}

static void start_sighup(struct fs_ctx *c)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, sighup_main, c) == 0)
        pthread_detach(t);
    else
        LOGW("no SIGHUP thread: credentials are read again only when they expire");
}

/* Detached from the terminal: messages go to syslog from here on, and the
 * plain-HTTP warning the terminal had is written there too. */
static void log_to_syslog(const struct fs_ctx *c)
{
    char warn[PATH_MAX];
    log_use_syslog(true);
    if (plain_http_warning(c, warn, sizeof warn))
        LOGW("%s", warn);
}

/* The threads that serve the mount, in their order; 0 or -errno (then
 * nothing more is started, and fs_ctx_free ends what was). */
static int start_threads(struct fs_ctx *c, struct fuse_session *se)
{
    start_sighup(c);          /* first: the threads started after inherit the mask */
    cond_probe_mount(c);      /* before the journal's replay: its deletes may be conditional */
    int rc = fs_ctx_start(c); /* the engine, which replays the journal */
    if (rc == 0 && fuse_set_signal_handlers(se) != 0)
        rc = -EIO;
    if (rc)
        return rc;
    ctl_server_start(c); /* s3cfs-ctl; the mount works without it (logged) */
    if (!c->opt.mountpoint ||
        kevict_new(se, c->opt.mountpoint, (size_t)c->opt.kept_files, &c->evict))
        LOGW("kernel entries of closed files will not be trimmed");
    return 0;
}

/* A loop ended by SIGTERM/SIGINT reports the signal: that is a clean stop
 * (the queues drain after it). */
static bool clean_stop(int lr)
{
    return lr == 0 || lr == SIGTERM || lr == SIGINT || lr == -SIGTERM || lr == -SIGINT;
}

/* Serves the mount until it is unmounted or signalled; the exit status. */
static int serve_loop(struct fs_ctx *c, struct fuse *fuse, const char *mountpoint)
{
    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_idle_threads(lc, 64);
    fuse_loop_cfg_set_max_threads(lc, 256);
    LOGI("mounted %s on %s", c->map.all_buckets ? "all buckets" : c->map.bucket, mountpoint);
    int lr = fuse_loop_mt(fuse, lc);
    int rc = clean_stop(lr) ? 0 : 1;
    if (rc)
        LOGE("the FUSE loop ended with %d (%s)", lr, lr < 0 ? strerror(-lr) : "signal");
    fuse_loop_cfg_destroy(lc);
    return rc;
}

/* What start_threads started for the loop, once the loop ended. */
static void stop_loop(struct fs_ctx *c, struct fuse_session *se)
{
    kevict_stop(c->evict);
    fuse_remove_signal_handlers(se);
    /* the drain in fs_ctx_free must not be cut short by a second SIGTERM
     * (SIGKILL still stops it; the journal covers it) */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
}

/* Mounted and detached: start the threads, serve, stop; the exit status. */
static int serve(struct fs_ctx *c, struct fuse *fuse, const char *mountpoint)
{
    struct fuse_session *se = fuse_get_session(fuse);
    if (!c->opt.foreground)
        log_to_syslog(c);
    if (start_threads(c, se) != 0)
        return 1;
    int rc = serve_loop(c, fuse, mountpoint);
    stop_loop(c, se);
    return rc;
}

/* The end of a mount that fuse_mount made, whatever happened after it. */
static void end_mount(struct fs_ctx *c, struct fuse *fuse, const char *mountpoint)
{
    fuse_unmount(fuse); /* closes the device: a notification in flight ends */
    LOGI("unmounted %s; queued copies and deletes land before exit", mountpoint);
    kevict_free(c->evict);
    c->evict = NULL;
    /* after the unmount (nothing waits on the mount), before fs_ctx_free:
     * s3cfs-ctl can watch the final drain */
    ctl_server_stop(c);
}

/* Mount, serve, unmount; the exit status. The drain is fs_ctx_free's. */
static int run(struct fs_ctx *c, struct fuse_args *args, const char *mountpoint)
{
    struct fuse *fuse = fuse_new(args, fsops_table(), sizeof(struct fuse_operations), c);
    if (!fuse)
        return 1;
    bool mounted = fuse_mount(fuse, mountpoint) == 0;
    int rc = 1;
    if (mounted && fuse_daemonize(c->opt.foreground) == 0)
        rc = serve(c, fuse, mountpoint);
    if (mounted)
        end_mount(c, fuse, mountpoint);
    fuse_destroy(fuse);
    return rc;
}

/* --help, --version and a missing mount point: the exit status, or -1 when
 * there is a mount to make. */
static int answer_without_mount(const struct cli *cli, const char *prog)
{
    if (cli->help)
        usage(prog);
    else if (cli->version)
        printf("s3cfs %s (libfuse %d, %s)\n", S3CFS_VERSION, fuse_version(), curl_version());
    else if (cli->nnonopt < 1)
        fprintf(stderr, "s3cfs: no mount point given (try --help)\n");
    else
        return -1;
    return cli->help || cli->version ? 0 : 2;
}

/* The context from the options: 0, or the exit status (nothing to free:
 * what is set up so far stays until exit). */
static int build_ctx(struct fs_ctx *c, struct cli *cli, const char *spec, const char *mountpoint)
{
    c->opt.mountpoint = realpath(mountpoint, NULL);
    if (finish_options(cli))
        return 2;
    cli->o.mountpoint = c->opt.mountpoint;
    c->opt = cli->o;
    c->ra_budget.max = c->opt.readahead_mem;
    if (path_map_init(&c->map, spec)) {
        fprintf(stderr, "s3cfs: %s is not a valid BUCKET[:/PREFIX]\n", spec);
        return 2;
    }
    set_defaults(c);
    if (!c->opt.nomime && mime_load("/etc/mime.types", &c->mime)) {
        fprintf(stderr, "s3cfs: out of memory\n");
        return 1;
    }
    return 0;
}

/* The source column of /proc/mounts is what was mounted (mount -a and
 * findmnt match fstab entries by it); the option parser takes "\\," and
 * "\\\\" as escapes. A user's own fsname= comes later and wins. */
static void add_mount_args(struct fuse_args *args, const char *spec)
{
    /* permission checks by the kernel against the modes we show */
    fuse_opt_add_arg(args, "-odefault_permissions");
    char fsname[2 * (S3CFS_BUCKET_MAX + S3CFS_KEY_MAX) + 16] = "-ofsname=";
    size_t fl = strlen(fsname);
    for (const char *p = spec ? spec : "s3cfs"; *p && fl + 3 < sizeof fsname; p++) {
        if (*p == ',' || *p == '\\')
            fsname[fl++] = '\\';
        fsname[fl++] = *p;
    }
    fsname[fl] = '\0';
    fuse_opt_insert_arg(args, 1, fsname);
    fuse_opt_add_arg(args, "-osubtype=s3cfs");
}

/* The credentials, the client and a first request: 0 or -errno (told on
 * stderr, while it is still the terminal). */
static int connect_store(struct fs_ctx *c, const struct cli *cli)
{
    protect_secrets(cli); /* before any key is read */
    int rc = make_client(c, c->map.all_buckets ? NULL : c->map.bucket);
    char warn[PATH_MAX];
    if (rc == 0 && plain_http_warning(c, warn, sizeof warn))
        fprintf(stderr, "s3cfs: %s\n", warn);
    if (rc == 0)
        rc = check_store(c);
    return rc;
}

/* Everything after the command line is parsed; returns the exit status.
 * ARGS stays owned by the caller, which frees it on every path. */
static int mount_and_serve(struct fuse_args *args, struct cli *cli, const char *prog)
{
    int rc = answer_without_mount(cli, prog);
    if (rc >= 0)
        return rc;
    static struct fs_ctx ctx;
    const char *spec = cli->nnonopt == 2 ? cli->nonopt[0] : NULL;
    const char *mountpoint = cli->nonopt[cli->nnonopt - 1];
    rc = build_ctx(&ctx, cli, spec, mountpoint);
    if (rc)
        return rc;
    fs_set(&ctx);
    s3_global_init();
    add_mount_args(args, spec);
    rc = connect_store(&ctx, cli) == 0 && fsq_open_journal(&ctx) == 0 ? 0 : 1;
    if (rc == 0)
        rc = run(&ctx, args, mountpoint);
    fs_ctx_free(&ctx);
    return rc;
}

int main(int argc, char **argv)
{
    /* one malloc arena per thread (glibc's default, up to 8 per core) holds
     * freed memory per thread: with 64 workers that alone was tens of MiB */
    mallopt(M_ARENA_MAX, 4);
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    static struct cli cli;
    defaults(&cli);
    int rc = fuse_opt_parse(&args, &cli, opt_spec, keep_nonopt) == -1
                 ? 2
                 : mount_and_serve(&args, &cli, argv[0]);
    fuse_opt_free_args(&args); /* also after --help, --version and bad input */
    return rc;
}
