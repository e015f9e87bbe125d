/* The FUSE-less driver of fsdriver.h. */
#include "fsdriver.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3cfs/fsqueue.h"
#include "s3cfs/node.h"

#define MIB       ((size_t)1 << 20)
#define PATH_SIZE 4352

struct fsd_file {
    struct fsd *d;
    char path[PATH_SIZE]; /* current name, as libfuse's node tree knows it */
    bool hidden;          /* unlinked while open: the last release unlinks it */
    struct fuse_file_info fi;
    struct fsd_file *next;
};

struct fsd {
    struct fs_ctx c;
    char tmp[64];         /* journal, stage files */
    pthread_mutex_t lock; /* the open list */
    struct fsd_file *open;
    unsigned hidden_seq;
};

static atomic_ulong context_calls;

struct fuse_context *fuse_get_context(void)
{
    static __thread struct fuse_context fc;
    atomic_fetch_add(&context_calls, 1);
    fc = (struct fuse_context){
        .uid = getuid(), .gid = getgid(), .pid = getpid(), .umask = 022, .private_data = fs_get()};
    return &fc;
}

unsigned long fsd_context_calls(void)
{
    return atomic_load(&context_calls);
}

static const struct fuse_operations *ops(void)
{
    return fsops_table();
}

struct fs_ctx *fsd_ctx(struct fsd *d)
{
    return &d->c;
}

/* ---- start and stop, as fs/main.c ---- */

static size_t or_default(size_t v, size_t dflt)
{
    return v ? v : dflt;
}

static int set_options(struct fsd *d, const struct fsd_options *o)
{
    struct fs_options *opt = &d->c.opt;
    opt->uid = opt->gid = opt->umask = opt->file_mode = opt->dir_mode = -1;
    opt->attr_ttl = opt->dir_ttl = opt->dir_attr_ttl = o->coherent ? 0 : 5;
    opt->negative_ttl = o->coherent ? 0 : 2;
    if (o->coherent)
        opt->dir_attr_ttl = 1;
    opt->cache_entries = 50000;
    opt->kept_files = 4096;
    opt->max_inflight = o->max_inflight ? o->max_inflight : 64;
    opt->multipart_threshold = or_default(o->multipart_threshold, 16 * MIB);
    opt->part_size = or_default(o->part_size, 8 * MIB);
    opt->copy_threshold = or_default(o->copy_threshold, 128 * MIB);
    opt->copy_part_size = or_default(o->copy_part_size, 32 * MIB);
    opt->stage_mem = MIB;
    opt->sync = o->sync;
    opt->max_pending = o->max_pending;
    opt->max_listing = o->max_listing ? o->max_listing : 1000;
    if (asprintf(&opt->tmpdir, "%s", d->tmp) < 0 ||
        asprintf(&opt->journal_dir, "%s/journal", d->tmp) < 0 ||
        asprintf(&opt->mountpoint, "%s/mnt", d->tmp) < 0)
        return -ENOMEM;
    return path_map_init(&d->c.map, o->spec);
}

static void set_defaults(struct fs_ctx *c)
{
    c->defaults = (struct meta_defaults){
        .uid = getuid(), .gid = getgid(), .umask = 022, .file_mode = 0666, .dir_mode = 0777};
    clock_gettime(CLOCK_REALTIME, &c->defaults.time);
}

static int start_parts(struct fs_ctx *c)
{
    struct s3_error err;
    struct s3_client_options so = {.connect_timeout_ms = 5000, .stall_timeout_s = 30};
    int rc = s3_client_new(&so, &c->s3, &err);
    if (rc == 0) /* main.c opens it before it daemonizes */
        rc = fsq_open_journal(c);
    return rc ? rc : fs_ctx_start(c);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

int fsd_stop(struct fsd *d)
{
    struct fs_ctx *c = &d->c;
    int rc = fs_ctx_free(c);
    fs_set(NULL);
    nftw(d->tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(c->opt.tmpdir);
    free(c->opt.journal_dir);
    free(c->opt.mountpoint);
    while (d->open) {
        struct fsd_file *f = d->open;
        d->open = f->next;
        free(f);
    }
    pthread_mutex_destroy(&d->lock);
    free(d);
    return rc;
}

int fsd_start(const struct fsd_options *o, struct fsd **out)
{
    static const struct fsd_options none;
    struct fsd *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    pthread_mutex_init(&d->lock, NULL);
    snprintf(d->tmp, sizeof d->tmp, "/tmp/fakes3-XXXXXX");
    int rc = mkdtemp(d->tmp) ? set_options(d, o ? o : &none) : -errno;
    set_defaults(&d->c);
    fs_set(&d->c);
    if (rc == 0)
        rc = start_parts(&d->c);
    if (rc == 0) {
        struct fuse_conn_info conn = {0};
        struct fuse_config cfg = {0};
        ops()->init(&conn, &cfg);
    }
    if (rc) {
        fsd_stop(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* ---- open handles ---- */

static struct fsd_file *new_file(struct fsd *d, const char *path, int flags)
{
    struct fsd_file *f = calloc(1, sizeof *f);
    if (f) {
        f->d = d;
        snprintf(f->path, sizeof f->path, "%s", path);
        f->fi.flags = flags;
    }
    return f;
}

static void track(struct fsd_file *f, bool on)
{
    struct fsd *d = f->d;
    pthread_mutex_lock(&d->lock);
    if (on) {
        f->next = d->open;
        d->open = f;
    }
    for (struct fsd_file **p = &d->open; !on && *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    pthread_mutex_unlock(&d->lock);
}

static int opened(struct fsd_file *f, int rc, struct fsd_file **out)
{
    if (rc) {
        free(f);
        return rc;
    }
    track(f, true);
    *out = f;
    return 0;
}

int fsd_create(struct fsd *d, const char *path, mode_t mode, struct fsd_file **out)
{
    struct fsd_file *f = new_file(d, path, O_CREAT | O_TRUNC | O_RDWR);
    return f ? opened(f, ops()->create(path, mode, &f->fi), out) : -ENOMEM;
}

int fsd_open(struct fsd *d, const char *path, int flags, struct fsd_file **out)
{
    struct fsd_file *f = new_file(d, path, flags);
    return f ? opened(f, ops()->open(path, &f->fi), out) : -ENOMEM;
}

bool fsd_kept_pages(const struct fsd_file *f)
{
    return f->fi.keep_cache;
}

/* The path an operation on f is given (libfuse's current name). */
static void path_of(struct fsd_file *f, char out[PATH_SIZE])
{
    pthread_mutex_lock(&f->d->lock);
    memcpy(out, f->path, PATH_SIZE);
    pthread_mutex_unlock(&f->d->lock);
}

ssize_t fsd_read(struct fsd_file *f, void *buf, size_t len, off_t off)
{
    char p[PATH_SIZE];
    path_of(f, p);
    return ops()->read(p, buf, len, off, &f->fi);
}

ssize_t fsd_write(struct fsd_file *f, const void *buf, size_t len, off_t off)
{
    char p[PATH_SIZE];
    path_of(f, p);
    return ops()->write(p, buf, len, off, &f->fi);
}

ssize_t fsd_copy_file_range(struct fsd_file *in, off_t off_in, struct fsd_file *out, off_t off_out,
                            size_t len)
{
    char pi[PATH_SIZE], po[PATH_SIZE];
    path_of(in, pi);
    path_of(out, po);
    return ops()->copy_file_range(pi, &in->fi, off_in, po, &out->fi, off_out, len, 0);
}

int fsd_fsync(struct fsd_file *f)
{
    char p[PATH_SIZE];
    path_of(f, p);
    return ops()->fsync(p, 0, &f->fi);
}

int fsd_fstat(struct fsd_file *f, struct stat *st)
{
    char p[PATH_SIZE];
    path_of(f, p);
    return ops()->getattr(p, st, &f->fi);
}

int fsd_ftruncate(struct fsd_file *f, off_t size)
{
    char p[PATH_SIZE];
    path_of(f, p);
    return ops()->truncate(p, size, &f->fi);
}

int fsd_close(struct fsd_file *f)
{
    char p[PATH_SIZE];
    path_of(f, p);
    int rc = ops()->flush(p, &f->fi);
    track(f, false);
    int rrc = ops()->release(p, &f->fi);
    if (f->hidden) /* libfuse: the last release of a hidden node unlinks it */
        ops()->unlink(p);
    free(f);
    return rc ? rc : rrc;
}

/* ---- by name ---- */

int fsd_getattr(struct fsd *d, const char *path, struct stat *st)
{
    (void)d;
    return ops()->getattr(path, st, NULL);
}

int fsd_mkdir(struct fsd *d, const char *path, mode_t mode)
{
    (void)d;
    return ops()->mkdir(path, mode);
}

int fsd_rmdir(struct fsd *d, const char *path)
{
    (void)d;
    return ops()->rmdir(path);
}

static bool is_open(struct fsd *d, const char *path)
{
    bool yes = false;
    pthread_mutex_lock(&d->lock);
    for (struct fsd_file *f = d->open; f && !yes; f = f->next)
        yes = strcmp(f->path, path) == 0;
    pthread_mutex_unlock(&d->lock);
    return yes;
}

/* Open handles of from (or below it) are now at to; hide marks them as
 * hidden (unlinked while open). */
static void moved(struct fsd *d, const char *from, const char *to, bool hide)
{
    size_t fl = strlen(from);
    pthread_mutex_lock(&d->lock);
    for (struct fsd_file *f = d->open; f; f = f->next) {
        if (strncmp(f->path, from, fl) != 0 || (f->path[fl] && f->path[fl] != '/'))
            continue;
        char rest[PATH_SIZE];
        snprintf(rest, sizeof rest, "%s", f->path + fl);
        snprintf(f->path, sizeof f->path, "%s%s", to, rest);
        f->hidden |= hide;
    }
    pthread_mutex_unlock(&d->lock);
}

/* libfuse's hide_node: rename an open file to a hidden name in its
 * directory instead of removing it. */
static int hide(struct fsd *d, const char *path)
{
    char hidden[PATH_SIZE + 64], dir[PATH_SIZE];
    path_parent(path, dir, sizeof dir);
    pthread_mutex_lock(&d->lock);
    unsigned seq = ++d->hidden_seq;
    pthread_mutex_unlock(&d->lock);
    snprintf(hidden, sizeof hidden, "%s/%s%08x%08x", strcmp(dir, "/") ? dir : "",
             NODE_HIDDEN_PREFIX, seq, (unsigned)getpid());
    int rc = ops()->rename(path, hidden, 0);
    if (rc == 0)
        moved(d, path, hidden, true);
    return rc;
}

int fsd_unlink(struct fsd *d, const char *path)
{
    return is_open(d, path) ? hide(d, path) : ops()->unlink(path);
}

int fsd_rename(struct fsd *d, const char *from, const char *to, unsigned flags)
{
    int rc = 0;
    if (!(flags & RENAME_EXCHANGE) && is_open(d, to)) /* libfuse hides even under NOREPLACE */
        rc = hide(d, to);
    if (rc == 0)
        rc = ops()->rename(from, to, flags);
    if (rc == 0)
        moved(d, from, to, false);
    return rc;
}

int fsd_chmod(struct fsd *d, const char *path, mode_t mode)
{
    (void)d;
    return ops()->chmod(path, mode, NULL);
}

int fsd_truncate(struct fsd *d, const char *path, off_t size)
{
    (void)d;
    return ops()->truncate(path, size, NULL);
}

int fsd_setxattr(struct fsd *d, const char *path, const char *name, const char *value, size_t size,
                 int flags)
{
    (void)d;
    return ops()->setxattr(path, name, value, size, flags);
}

ssize_t fsd_getxattr(struct fsd *d, const char *path, const char *name, char *value, size_t size)
{
    (void)d;
    return ops()->getxattr(path, name, value, size);
}

struct names {
    char *out;
    size_t size, at, n;
    int room;     /* entries the "kernel's buffer" still takes in this call */
    off_t next;   /* the offset of the entry after the last one taken */
    unsigned bad; /* entries without an offset, or not after the last one */
};

static int fill(void *buf, const char *name, const struct stat *st, off_t off,
                enum fuse_fill_dir_flags flags)
{
    (void)st, (void)flags;
    struct names *nm = buf;
    if (nm->room-- <= 0)
        return 1;
    nm->bad += off <= nm->next;
    nm->next = off;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    if (nm->at < nm->size)
        nm->at +=
            (size_t)snprintf(nm->out + nm->at, nm->size - nm->at, "%s%s", nm->n ? " " : "", name);
    nm->n++;
    return 0;
}

/* As the kernel reads a directory: opendir, then readdir from the offset
 * of the last entry taken, FSD_READDIR_ROOM entries per call, until a call
 * gives nothing; then releasedir. */
int fsd_readdir(struct fsd *d, const char *path, char *names, size_t size, size_t *n)
{
    (void)d;
    struct names nm = {names, size, 0, 0, 0, 0, 0};
    if (size)
        names[0] = '\0';
    struct fuse_file_info fi = {0};
    int rc = ops()->opendir(path, &fi);
    off_t before = -1;
    while (rc == 0 && nm.next != before) {
        before = nm.next;
        nm.room = FSD_READDIR_ROOM;
        rc = ops()->readdir(path, &nm, fill, nm.next, &fi, 0);
    }
    if (ops()->releasedir(path, &fi) && rc == 0)
        rc = -EIO;
    *n = nm.n;
    return rc == 0 && nm.bad ? -EPROTO : rc;
}

int fsd_fsyncdir(struct fsd *d, const char *path)
{
    (void)d;
    return ops()->fsyncdir(path, 0, NULL);
}

/* ---- what tools do ---- */

int fsd_put_file(struct fsd *d, const char *path, const void *data, size_t len)
{
    struct fsd_file *f;
    int rc = fsd_create(d, path, 0644, &f);
    if (rc)
        return rc;
    ssize_t w = len ? fsd_write(f, data, len, 0) : 0;
    int crc = fsd_close(f);
    return w < 0 ? (int)w : (size_t)w != len ? -EIO : crc;
}

int fsd_get_file(struct fsd *d, const char *path, char **data, size_t *len)
{
    struct stat st;
    struct fsd_file *f;
    *data = NULL;
    *len = 0;
    int rc = fsd_open(d, path, O_RDONLY, &f);
    if (rc)
        return rc;
    rc = fsd_fstat(f, &st);
    char *buf = rc == 0 ? malloc((size_t)st.st_size + 1) : NULL;
    ssize_t got = 0;
    while (buf && got < st.st_size) {
        ssize_t r = fsd_read(f, buf + got, (size_t)(st.st_size - got), got);
        if (r <= 0) {
            rc = r < 0 ? (int)r : -EIO;
            break;
        }
        got += r;
    }
    int crc = fsd_close(f);
    if (!rc && !buf)
        rc = -ENOMEM;
    if (rc || crc) {
        free(buf);
        return rc ? rc : crc;
    }
    buf[got] = '\0';
    *data = buf;
    *len = (size_t)got;
    return 0;
}

int fsd_cp(struct fsd *d, const char *from, const char *to)
{
    struct fsd_file *in, *out;
    struct stat st;
    int rc = fsd_open(d, from, O_RDONLY, &in);
    if (rc)
        return rc;
    rc = fsd_fstat(in, &st);
    if (rc == 0 && (rc = fsd_create(d, to, st.st_mode & 07777, &out)) == 0) {
        ssize_t n = st.st_size ? fsd_copy_file_range(in, 0, out, 0, (size_t)st.st_size) : 0;
        rc = n < 0 ? (int)n : n != st.st_size ? -EIO : 0;
        int crc = fsd_close(out);
        rc = rc ? rc : crc;
    }
    int crc = fsd_close(in);
    return rc ? rc : crc;
}

int fsd_mv(struct fsd *d, const char *from, const char *to)
{
    int rc = fsd_rename(d, from, to, RENAME_NOREPLACE);
    return rc == -EEXIST ? fsd_rename(d, from, to, 0) : rc;
}
