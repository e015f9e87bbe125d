/* fs.h - the mount: its options and the context every operation uses.
 *
 * One struct fs_ctx per mount, built by main.c before FUSE starts and
 * read-only afterwards (the parts that change protect themselves: the
 * cache, the node table, the pool, the S3 client). FUSE operations reach it
 * through fs_get(). All fs_* functions return 0 or a negative errno.
 */
#ifndef S3CFS_FS_H
#define S3CFS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "s3cfs/cond.h"
#include "s3cfs/meta.h"
#include "s3cfs/path.h"
#include "s3cfs/readahead.h"
#include "s3cfs/s3.h"

struct fs_options {
    char *endpoint;
    char *region;
    char *profile;
    char *passwd_file;
    char *ca_file;
    char *tmpdir;
    int path_style; /* 1 path, 2 virtual-hosted, 0 automatic */
    int insecure;
    int uid, gid;                           /* -1: the mounting user's */
    int umask;                              /* -1: 0022 */
    int file_mode;                          /* -1: 0644 */
    int dir_mode;                           /* -1: 0755 */
    double attr_ttl, dir_ttl, negative_ttl; /* seconds */
    double dir_attr_ttl; /* a directory's own entry (seconds): attr_ttl, 1 under coherent */
    int cache_entries;
    int kept_files; /* closed files whose kernel entries stay cached (kernel_evict.h) */
    int max_inflight;
    size_t multipart_threshold;
    size_t part_size;
    size_t copy_threshold; /* above: parallel UploadPartCopy */
    size_t copy_part_size;
    size_t stage_mem;
    int max_listing;      /* a directory of at most this many entries (<= 1000: one
                             LIST page) is listed and cached whole, a larger one
                             streamed (dirstream.h); 0 or more than 1000: 1000 */
    size_t readahead_mem; /* window buffers of every open file together */
    char *log_level;
    int foreground;
    int listing_attrs_only; /* readdir: no HEAD of entries, listing data only */
    char *journal_dir;      /* intent journal; default /var/lib/s3cfs */
    int sync;               /* every copy and delete waits until it landed */
    char *mountpoint;       /* names the journal */
    int suid;               /* mounted with `suid`: setuid/setgid bits shown */
    int nomime;             /* no Content-Type from /etc/mime.types (mime.h) */
    int nokeep_cache;       /* drop the kernel's pages at every open (pagekeep.h) */
    int nostream;           /* no upload while a file is written: all at close (upstream.h) */
    size_t stream_keep;     /* bytes of a streamed file kept locally below its end */
    /* bytes of a streamed file's parts in flight: the server's rate needs
     * many (radosgw here: 4 parts of 8 MiB 39 MiB/s, 32 parts 77 MiB/s),
     * the disk bound few */
    size_t stream_inflight;
    /* not a mount option: the job engine's bound on pending jobs (engine.h
     * max_pending), 0 for its default; unit tests (tests/fakes3) lower it */
    int max_pending;
};

struct nscache;
struct pool;
struct node_table;
struct engine;
struct journal;
struct ctl_server;
struct kevict;
struct pagekeep;
struct mime_table;
struct dirtimes;

struct fs_ctx {
    struct fs_options opt;
    struct path_map map;
    struct creds_provider *creds;
    struct s3_client *s3;
    struct nscache *cache;
    struct pool *pool;        /* foreground transfers: listings' HEADs, reads, parts */
    struct pool *engine_pool; /* the job engine's copies and deletes (engine.h) */
    struct node_table *nodes;
    struct engine *jobs;
    struct journal *journal;
    struct meta_defaults defaults;
    struct ctl_server *control; /* the control socket (ctl_server.h); NULL: none */
    struct kevict *evict;       /* set before the FUSE loop starts; NULL: none */
    struct mime_table *mime;    /* Content-Type by extension (mime.h); NULL: nomime */
    struct dirtimes *dirtimes;  /* directory mtime/ctime (dirtimes.h); NULL: none */
    struct pagekeep *pages;     /* versions the kernel's pages hold (pagekeep.h); NULL: none */
    struct ra_budget ra_budget; /* max is opt.readahead_mem */
    struct cond_caps conds;     /* what the server honours (cond.h), set before FUSE starts */
};

/* The parts of a mount that start threads (main.c: after fuse_daemonize
 * forked): the namespace cache, the node table, both pools, the engine
 * (journal opened if not yet). opt and s3 must be set. */
int fs_ctx_start(struct fs_ctx *c);
/* Unmount and SIGTERM: drain the engine (every queued copy and delete
 * lands first), then free what the context owns, whatever was started;
 * returns the drain's result (also logged). */
int fs_ctx_free(struct fs_ctx *c);

struct fs_ctx *fs_get(void);
void fs_set(struct fs_ctx *ctx);

/* Log an S3 failure once, with the operation and path, and pass rc on. */
int fs_fail(const char *op, const char *path, int rc, const struct s3_error *err);

#endif
