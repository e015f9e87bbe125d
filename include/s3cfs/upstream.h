/* upstream.h - a file written from its start, uploaded while it is written.
 *
 * A file created or truncated to nothing whose stage (stage.h) grows past
 * the multipart threshold becomes a multipart upload while it is being
 * written: every part the stage holds whole is sent at once on the worker
 * pool, at most -o stream_inflight bytes of a file at a time, and at least
 * two parts (the writer
 * waits for a slot: memory and disk stay bounded), so that close waits only
 * for the parts in flight and the tail. Parts that landed and lie more than
 * the keep window below the end may be given back to the local disk
 * (stage_release), so a sequential write needs room in tmpdir for the
 * window and the parts in flight, not for the whole file.
 *
 * A write into a part already sent but still in the stage marks it to be
 * sent again at the end; a write, read or truncate into bytes given back
 * fails with EIO (stage.h): the one thing a streamed file cannot do, and
 * why the window exists. Nothing is visible in S3 before upstream_finish
 * completes the upload; a failure there aborts it, so no part lingers and
 * no half-written object is left.
 *
 * Metadata: the upload starts before the file's times are known, so it is
 * created without them (transfer_upload.no_times: the object's
 * Last-Modified, when it completed, stands for them). When the mode, owner
 * or group changed since the start, or times were set explicitly
 * (utimens: cp -p), the metadata is rewritten after the upload completed
 * (one self-copy, transfer_rewrite).
 *
 * Locking: the owner (an open file's node, node.h) makes every call with
 * its own lock held, except the ones marked "busy, unlocked": those do
 * network I/O and are called with the node marked busy and its lock
 * dropped. The stream's own mutex guards the part states that the pool's
 * tasks update; it is never held across I/O. The stage must stay alive
 * (and unchanged below what was sent) until upstream_finish or
 * upstream_abort returned.
 *
 * Errors are negative errno values; S3 failures are logged where they
 * happen (with the request's S3 code and message).
 */
#ifndef S3CFS_UPSTREAM_H
#define S3CFS_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "s3cfs/fs.h"
#include "s3cfs/transfer.h"

struct stage;
struct upstream;

/* Busy, unlocked: start the multipart upload of stage to up->loc with
 * up's attributes, content type and xattr (up is copied; its no_times is
 * set). kept (may be NULL) is the HEAD of the object it replaces, taken
 * over: freed by upstream_free. part_size is the size of every part but
 * the last. */
int upstream_begin(struct fs_ctx *c, const struct transfer_upload *up, struct s3_head *kept,
                   uint64_t part_size, struct upstream **out);

/* Locked: bytes [off, off + len) were just written: the parts sent (or
 * being sent) that hold any of them are sent again at the end. */
void upstream_will_write(struct upstream *u, uint64_t off, uint64_t len);

/* Locked: the stage was cut to size: parts past it are not part of the
 * upload any more (the part size cuts it gets sent again as it grows). */
void upstream_truncated(struct upstream *u, uint64_t size);

/* Locked: send the parts the stage (size bytes now) holds whole. 0, or 1
 * when the next part is ready but the parts in flight are at their bound: the
 * caller waits with upstream_wait_slot and calls again. A part that failed
 * stops the feeding; upstream_finish reports it. */
int upstream_feed(struct upstream *u, const struct stage *stage, uint64_t size);

/* Busy, unlocked: wait until a part in flight ended. */
void upstream_wait_slot(struct upstream *u);

/* Locked: how much of the stage may be given back: the parts that landed
 * and were not changed since, up to keep bytes below size. */
uint64_t upstream_releasable(struct upstream *u, uint64_t size, uint64_t keep);

/* Whether a part failed (the upload cannot complete as it stands). */
bool upstream_failed(struct upstream *u);

/* Busy, unlocked: wait for the parts in flight, send the changed parts
 * and the tail of the stage (size bytes), complete the upload (with
 * If-None-Match: * for an O_EXCL create where the server honours it:
 * -ESTALE when another client created the object first), put the tags of
 * the replaced object back, and rewrite the metadata when st (the
 * attributes now) differs from the start or times_set. On failure the
 * upload is aborted. etag_out: the object's ETag. When only the metadata
 * rewrite failed, the object was made all the same: upstream_completed. */
int upstream_finish(struct upstream *u, const struct stage *stage, uint64_t size,
                    const struct stat *st, bool times_set, char etag_out[80]);

bool upstream_completed(const struct upstream *u);

/* Busy, unlocked: wait for the parts in flight and abort the upload (no
 * object is made, no part lingers). */
void upstream_abort(struct upstream *u);

/* After upstream_finish or upstream_abort (or NULL). */
void upstream_free(struct upstream *u);

#endif
