/* dirstream.h - readdir: a directory listed through an open handle, a
 * part at a time (doc/internals/readdir.md).
 *
 * opendir makes a stream (FUSE's fh); each readdir continues it from the
 * offset libfuse gives (readdir "mode 2": every entry carries the offset
 * of the one after it; "." is at 0, ".." at 1, the children from 2 on).
 *
 * The first request lists one page of ListObjectsV2 (delimiter '/', at
 * most min(max_listing, 1000) keys). A directory that fits in it is whole:
 * listed, HEADed and merged with the namespace cache's pins exactly as
 * before streaming existed, kept whole in the cache (nscache_dir_fill) and
 * served from the cache the next time. A larger one is streamed: pages are
 * fetched only when the reader gets to them, and given out in parts whose
 * size doubles from max_inflight up to the page; before a part is given,
 * its children without cached attributes are HEADed in parallel (unless
 * listing_attrs_only) and the part is merged with the pins, the changes
 * since its page was listed and the files not yet flushed whose keys fall
 * in its range of S3's key order (nscache_dir_page). Such a directory is
 * never kept whole; the stream holds at most one page and one part.
 *
 * An offset behind the current part (rewinddir, seekdir back) lists again
 * from the start and skips to it; offset 0 always starts a fresh listing.
 * A name that is a file and a directory ("a" and "a/", or "a_$folder$")
 * shows once, as the file, also across pages.
 *
 * Ownership: the stream is the caller's (dirstream_close). Threads: one
 * stream is used by one thread at a time (libfuse holds the directory
 * handle's lock around readdir); streams are independent. Errors: -ENOMEM,
 * or the listing's errno (logged by fs_fail).
 */
#ifndef S3CFS_DIRSTREAM_H
#define S3CFS_DIRSTREAM_H

#define FUSE_USE_VERSION 314
#include <fuse.h>

#include "s3cfs/fs.h"

struct dir_stream;

/* A stream on nothing yet: the first dirstream_read lists. */
int dirstream_open(struct fs_ctx *c, struct dir_stream **out);
/* Fill buf from offset off of the directory at path (the directory's
 * current name: libfuse passes it with every call) until filler says the
 * buffer is full or the directory ends. 0 or -errno. */
int dirstream_read(struct dir_stream *s, const char *path, off_t off, void *buf,
                   fuse_fill_dir_t filler);
/* NULL is accepted. */
void dirstream_close(struct dir_stream *s);

#endif
