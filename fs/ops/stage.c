/* stage.c - file content in memory, then in an unlinked temporary file. */
#include "s3cfs/stage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The largest offset an off_t holds, whatever its width. */
#define STAGE_OFF_MAX ((uint64_t)((((uint64_t)1) << (sizeof(off_t) * CHAR_BIT - 1)) - 1))

/* Owned by one open file; its owner's lock serialises all access (stage.h). */
struct stage {
    char *mem;         /* the content while in memory; NULL once spilled */
    size_t cap;        /* bytes allocated at mem; those in [size, cap) are stale */
    int fd;            /* the temporary file once spilled, else -1 */
    uint64_t size;     /* logical size; the file's size equals it once spilled */
    uint64_t released; /* [0, released) was uploaded and given back (stage_release) */
    size_t mem_limit;  /* spill when the content would grow beyond this */
    char *tmpdir;
};

int stage_new(const char *tmpdir, size_t mem_limit, struct stage **out)
{
    struct stage *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->tmpdir = strdup(tmpdir ? tmpdir : "/tmp");
    if (!s->tmpdir) {
        free(s);
        return -ENOMEM;
    }
    s->fd = -1;
    /* capped so that doubling the allocation in mem_extend cannot overflow */
    s->mem_limit = mem_limit == 0             ? STAGE_MEM_DEFAULT
                   : mem_limit > SIZE_MAX / 2 ? SIZE_MAX / 2
                                              : mem_limit;
    *out = s;
    return 0;
}

void stage_free(struct stage *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->mem);
    free(s->tmpdir);
    free(s);
}

/* Returns an fd or -errno. Used where O_TMPFILE is unsupported: the name
 * exists only between mkostemp and unlink. */
static int open_named_tmpfile(const char *dir)
{
    size_t n = strlen(dir) + sizeof "/s3cfs-stage-XXXXXX";
    char *path = malloc(n);
    if (!path)
        return -ENOMEM;
    snprintf(path, n, "%s/s3cfs-stage-XXXXXX", dir);
    int fd = mkostemp(path, O_CLOEXEC);
    int rc = fd < 0 ? -errno : 0;
    if (fd >= 0 && unlink(path) != 0) {
        rc = -errno;
        close(fd);
    }
    free(path);
    return rc ? rc : fd;
}

/* Returns an fd or -errno. */
static int open_tmpfile(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    /* the kernel or the file system lacks O_TMPFILE; other errors are real */
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
        return open_named_tmpfile(dir);
    return -errno;
}

static int write_all(int fd, const char *buf, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return -EIO;
        buf += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static ssize_t read_all(int fd, char *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

/* Move the content to a new temporary file; on failure nothing changes. */
static int spill(struct stage *s)
{
    int fd = open_tmpfile(s->tmpdir);
    if (fd < 0)
        return fd;
    int rc = write_all(fd, s->mem, (size_t)s->size, 0);
    if (rc) {
        close(fd);
        return rc;
    }
    free(s->mem);
    s->mem = NULL;
    s->cap = 0;
    s->fd = fd;
    return 0;
}

/* In memory, end <= mem_limit: allocate up to end and zero [size, end), so
 * that a hole or an extension reads as zeros. The size is not changed. */
static int mem_extend(struct stage *s, size_t end)
{
    if (end <= s->size)
        return 0;
    if (end > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < end)
            cap *= 2;
        cap = cap > s->mem_limit ? s->mem_limit : cap;
        char *m = realloc(s->mem, cap);
        if (!m)
            return -ENOMEM;
        s->mem = m;
        s->cap = cap;
    }
    memset(s->mem + s->size, 0, end - (size_t)s->size);
    return 0;
}

/* Prepare for content reaching end: spill when memory would exceed its
 * limit, else grow the memory. A file needs nothing (it grows sparsely). */
static int make_room(struct stage *s, uint64_t end)
{
    if (s->fd < 0 && end > s->mem_limit) {
        int rc = spill(s);
        if (rc)
            return rc;
    }
    return s->fd < 0 ? mem_extend(s, (size_t)end) : 0;
}

/* end := off + n, or -EFBIG when that is beyond what off_t holds */
static int end_of(off_t off, size_t n, uint64_t *end)
{
    if (off < 0)
        return -EINVAL;
    if (n > STAGE_OFF_MAX - (uint64_t)off)
        return -EFBIG;
    *end = (uint64_t)off + n;
    return 0;
}

static int file_write(struct stage *s, const void *buf, size_t n, uint64_t off)
{
    int rc = write_all(s->fd, buf, n, off);
    /* A partial write past the end grew the file; cut it back, or a later
     * extension would expose those bytes instead of zeros. */
    if (rc && ftruncate(s->fd, (off_t)s->size) != 0)
        rc = -errno;
    return rc;
}

ssize_t stage_pwrite(struct stage *s, const void *buf, size_t n, off_t off)
{
    uint64_t end;
    n = n > SSIZE_MAX ? SSIZE_MAX : n;
    int rc = end_of(off, n, &end);
    if (rc || n == 0)
        return rc;
    if ((uint64_t)off < s->released)
        return -EIO; /* those bytes are gone from here */
    rc = make_room(s, end);
    if (rc == 0 && s->fd < 0)
        memcpy(s->mem + off, buf, n);
    else if (rc == 0)
        rc = file_write(s, buf, n, (uint64_t)off);
    if (rc)
        return rc;
    s->size = end > s->size ? end : s->size;
    return (ssize_t)n;
}

ssize_t stage_pread(const struct stage *s, void *buf, size_t n, off_t off)
{
    if (off < 0)
        return -EINVAL;
    if ((uint64_t)off >= s->size)
        return 0;
    if ((uint64_t)off < s->released)
        return -EIO;
    n = n > s->size - (uint64_t)off ? (size_t)(s->size - (uint64_t)off) : n;
    n = n > SSIZE_MAX ? SSIZE_MAX : n;
    if (s->fd >= 0)
        return read_all(s->fd, buf, n, (uint64_t)off);
    memcpy(buf, s->mem + off, n);
    return (ssize_t)n;
}

int stage_truncate(struct stage *s, uint64_t size)
{
    if (size > STAGE_OFF_MAX)
        return -EFBIG;
    if (size > 0 && size < s->released)
        return -EIO; /* the bytes it would keep are gone */
    int rc = make_room(s, size);
    if (rc == 0 && s->fd >= 0 && ftruncate(s->fd, (off_t)size) != 0)
        rc = -errno;
    if (rc)
        return rc;
    s->size = size;
    if (size == 0)
        s->released = 0; /* nothing of the old content is needed any more */
    if (size == 0 && s->fd < 0) {
        /* emptied (O_TRUNC on a reopened file): give the memory back now */
        free(s->mem);
        s->mem = NULL;
        s->cap = 0;
    }
    return 0;
}

uint64_t stage_size(const struct stage *s)
{
    return s->size;
}

void stage_body(const struct stage *s, uint64_t off, uint64_t len, struct s3_body *out)
{
    off = off > s->size ? s->size : off;
    len = len > s->size - off ? s->size - off : len;
    *out = (struct s3_body){.fd = s->fd, .len = len};
    if (s->fd >= 0)
        out->offset = (off_t)off;
    else if (s->mem)
        out->data = s->mem + off;
}

bool stage_is_spilled(const struct stage *s)
{
    return s->fd >= 0;
}

int stage_release(struct stage *s, uint64_t upto)
{
    if (s->fd < 0)
        return -EINVAL;
    upto = upto > s->size ? s->size : upto;
    if (upto <= s->released)
        return 0;
    /* a file system without hole punching keeps the bytes: still correct */
    if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)s->released,
                  (off_t)(upto - s->released)) != 0 &&
        errno != EOPNOTSUPP)
        return -errno;
    s->released = upto;
    return 0;
}

uint64_t stage_released(const struct stage *s)
{
    return s->released;
}
