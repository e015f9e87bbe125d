/* fsqueue.h - the filesystem's side of the background job engine (engine.h):
 * how copies and deletes are queued, shown at once, and waited for.
 *
 * A queued copy's destination is pinned in the namespace cache with its
 * final attributes, and a queued delete pins a tombstone, so the namespace
 * shows the result at once (doc/DESIGN.md §3.3); the pins go when the job lands.
 * Every write to S3 that does not go through the engine (an upload, a
 * metadata rewrite) first waits for the engine's jobs on that key, so the
 * order of operations on a key is the order they were made in.
 *
 * A queued operation that returned 0 is never silently dropped (DESIGN
 * §3.11): it lands, or its failure is reported (next fsync or wait, status,
 * s3cfs-ctl errors). The one thing a failure cancels by itself is what
 * would destroy data: a move's source delete is guarded by its own copy
 * (and a copy reading a destination whose queued copy failed is cancelled,
 * reported on its own destination). An fsq_delete, or a copy onto a
 * key, is never cancelled because an earlier job on the key failed.
 */
#ifndef S3CFS_FSQUEUE_H
#define S3CFS_FSQUEUE_H

#include <sys/stat.h>

#include "s3cfs/fs.h"

/* Open the intent journal (before daemonizing, so that a mount that could
 * not keep its promises fails with a message instead of silently). */
int fsq_open_journal(struct fs_ctx *c);
/* Open the journal if not open yet, start, and finish what a previous run
 * left in it. */
int fsq_start(struct fs_ctx *c);
/* Drain every queue, then stop (unmount, SIGTERM). Returns the first error
 * not reported before. */
int fsq_stop(struct fs_ctx *c);

/* Queue dst := src (whole object, pinned to etag), with st as the
 * destination's attributes (metadata REPLACE) and xattr (encoded
 * x-amz-meta-xattr, NULL: none) as its extended attributes. */
int fsq_copy(struct fs_ctx *c, const struct fs_loc *src, const char *etag, uint64_t size,
             const struct fs_loc *dst, const char *dst_path, const struct stat *st,
             const char *xattr);
/* Queue a move: a copy keeping all of the source's metadata (wo NULL) or
 * writing wo's (REPLACE: a file's move changes its ctime), then a delete
 * of the source guarded by that copy: it runs once the copy landed, and is
 * cancelled (reported) if it failed. With paths, the namespace shows the
 * move at once (to_path with st, from_path gone). */
/* noreplace (RENAME_NOREPLACE): the copy lands only if to is still free
 * (If-None-Match: * where the server honours it, cond.h; otherwise the
 * caller's own check is all there is). The source's delete is conditional
 * on its ETag (etag, when known) where the server honours that. */
int fsq_move(struct fs_ctx *c, const struct fs_loc *from, const char *etag, uint64_t size,
             const struct fs_loc *to, const char *from_path, const char *to_path,
             const struct stat *st, const struct s3_write_opts *wo, bool noreplace);
/* Tree moves, one listing page at a time: queue a copy of from onto to
 * (the source's metadata kept, nothing shown) and the delete of from, held
 * in group (fsq_group) until fsq_release(group), so that the page's
 * deletes go out together once its copies are confirmed. Both are
 * journaled now, with the link: a crash after this is finished by the next
 * mount (copy, then delete); a delete whose copy failed is cancelled, never
 * sent. If a submitter blocks on the engine's max_pending, every held
 * group is released early (each delete still waits for its own copy), so
 * any number of concurrent tree moves make progress. */
uint64_t fsq_group(struct fs_ctx *c);
int fsq_move_held(struct fs_ctx *c, const struct fs_loc *from, const char *etag, uint64_t size,
                  const struct fs_loc *to, uint64_t group, bool noreplace);
void fsq_release(struct fs_ctx *c, uint64_t group);
/* Queue a delete of loc (batched per bucket); path (if not NULL)
 * disappears at once. It runs whatever failed on loc before. etag (NULL or
 * "": unknown) is the object's as the caller knew it, journaled so that a
 * replay after a crash tells that object from a later one. */
int fsq_delete(struct fs_ctx *c, const struct fs_loc *loc, const char *path, const char *etag);
/* A queued copy onto loc takes st as its attributes (cp -a/-p): 0, or
 * -EALREADY/-ENOENT when there is none that has not started. */
int fsq_fold_attrs(struct fs_ctx *c, const struct fs_loc *loc, const struct stat *st);
/* Wait for the jobs that read or write loc (roles of engine.h; 0 = both);
 * returns their first unreported error. */
int fsq_wait(struct fs_ctx *c, const struct fs_loc *loc, int roles);
/* Wait for every job below a directory (fsync of a directory). */
int fsq_wait_dir(struct fs_ctx *c, const struct fs_loc *dir);
/* Wait for every job pending now (fsync of the all-buckets root). */
int fsq_wait_all(struct fs_ctx *c);
/* A durability point (fsync of a file or a directory, s3cfs-ctl wait,
 * unmount) after its wait returned rc: the journal is fsync'd, so what it
 * says (the DONE of the jobs that landed, the jobs still queued) survives
 * a power loss. Returns rc, or the fsync's error if rc is 0. */
int fsq_durable(struct fs_ctx *c, int rc);
/* Whether a job on loc is pending. */
bool fsq_pending(struct fs_ctx *c, const struct fs_loc *loc, int roles);

#endif
