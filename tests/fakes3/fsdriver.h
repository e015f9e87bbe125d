/* fsdriver.h - the filesystem without FUSE, for unit tests: a mount's
 * fs_ctx built the way fs/main.c builds it (options as its defaults, the
 * journal in a temporary directory, then the same fs_ctx_start and
 * fs_ctx_free: namespace cache, node table, both pools, engine), whose
 * S3 client is whatever s3.h the test links (tests/fakes3), and calls
 * through the fuse_operations table of fs/ops/fsops.c, made as the kernel and
 * libfuse's high-level layer make them:
 *   - close of a handle is FLUSH then RELEASE;
 *   - unlink of an open file, and a rename over one, first rename it to a
 *     hidden name (".fuse_hidden...", hard_remove off), which the last
 *     release unlinks;
 *   - open handles follow renames of their file or of a directory above;
 *   - a directory is read through opendir, readdir calls that each take
 *     FSD_READDIR_ROOM entries and go on from the offset of the last one,
 *     and releasedir.
 * fuse_get_context() is defined here (the test executable's definition
 * wins over libfuse's): the caller's uid and gid, umask 022, the fs_ctx in
 * private_data; fsd_context_calls() counts its calls. fsops calls no other
 * libfuse function with the driver (kernel_evict.c's kernel notifications need a
 * session: the driver starts none, c->evict stays NULL).
 *
 * One driver at a time per process (fs_set is global). The functions
 * return what the operation returns: 0 / a count, or a negative errno.
 * Handles may be used from several threads, each handle by one at a time.
 */
#ifndef S3CFS_FSDRIVER_H
#define S3CFS_FSDRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "s3cfs/fsops.h"

struct fsd_options {
    const char *spec; /* BUCKET[:/PREFIX] as on the command line; NULL: all buckets */
    /* 0: main.c's defaults (16, 8, 128, 32 MiB; 64; the engine's 4096) */
    size_t multipart_threshold, part_size, copy_threshold, copy_part_size;
    int max_inflight;
    int max_pending;
    int max_listing; /* 0: main.c's default (1000) */
    bool coherent;   /* -o coherent's lifetimes; otherwise 5, 5, 2 s */
    bool sync;       /* -o sync_jobs */
};

struct fsd;
struct fsd_file;

int fsd_start(const struct fsd_options *o, struct fsd **out);
/* Drains the engine and frees everything (fs_ctx_free, as an unmount),
 * removes the temporary directory; returns the drain's result. */
int fsd_stop(struct fsd *d);
struct fs_ctx *fsd_ctx(struct fsd *d);
unsigned long fsd_context_calls(void);

/* ---- handles ---- */
int fsd_create(struct fsd *d, const char *path, mode_t mode, struct fsd_file **out);
int fsd_open(struct fsd *d, const char *path, int flags, struct fsd_file **out);
ssize_t fsd_read(struct fsd_file *f, void *buf, size_t len, off_t off);
ssize_t fsd_write(struct fsd_file *f, const void *buf, size_t len, off_t off);
ssize_t fsd_copy_file_range(struct fsd_file *in, off_t off_in, struct fsd_file *out, off_t off_out,
                            size_t len);
int fsd_fsync(struct fsd_file *f);
int fsd_fstat(struct fsd_file *f, struct stat *st);
int fsd_ftruncate(struct fsd_file *f, off_t size);
/* Whether the open of f told the kernel to keep its cached pages
 * (fuse_file_info.keep_cache, pagekeep.h). */
bool fsd_kept_pages(const struct fsd_file *f);
/* FLUSH then RELEASE; frees f whatever the result (the first error). */
int fsd_close(struct fsd_file *f);

/* ---- by name ---- */
int fsd_getattr(struct fsd *d, const char *path, struct stat *st);
int fsd_mkdir(struct fsd *d, const char *path, mode_t mode);
int fsd_rmdir(struct fsd *d, const char *path);
int fsd_unlink(struct fsd *d, const char *path);
int fsd_rename(struct fsd *d, const char *from, const char *to, unsigned flags);
int fsd_chmod(struct fsd *d, const char *path, mode_t mode);
int fsd_truncate(struct fsd *d, const char *path, off_t size);
int fsd_setxattr(struct fsd *d, const char *path, const char *name, const char *value, size_t size,
                 int flags);
ssize_t fsd_getxattr(struct fsd *d, const char *path, const char *name, char *value, size_t size);
/* The names of a directory but "." and "..", in the order readdir gave
 * them, separated by ' ' into names (truncated to size); *n their count. */
int fsd_readdir(struct fsd *d, const char *path, char *names, size_t size, size_t *n);
/* The entries one readdir call takes (".." and "." included), as the
 * kernel's buffer does: every listing crosses calls. -EPROTO when an
 * entry's offset is not after the one before. */
#define FSD_READDIR_ROOM 7
/* fsync of a directory: every queued job below it has landed. */
int fsd_fsyncdir(struct fsd *d, const char *path);

/* ---- what tools do ---- */
/* echo > path: create (O_TRUNC), one write, close. */
int fsd_put_file(struct fsd *d, const char *path, const void *data, size_t len);
/* cat path into *data (heap, NUL-terminated), *len bytes. */
int fsd_get_file(struct fsd *d, const char *path, char **data, size_t *len);
/* coreutils cp: open the source, create the destination O_TRUNC, one
 * copy_file_range of the whole length, close both. */
int fsd_cp(struct fsd *d, const char *from, const char *to);
/* coreutils mv: rename with RENAME_NOREPLACE. */
int fsd_mv(struct fsd *d, const char *from, const char *to);

#endif
