/* readahead.h - one open handle's read-ahead over an object read in ranges.
 *
 * A sequential reader gets windows that double from min_window up to
 * max_window; while it consumes one, the next is fetched in the background
 * (through cfg.spawn), so S3's latency overlaps the reading. The kernel's
 * own read-ahead sends several reads at once from several threads; a read
 * that falls in a window being fetched waits for it instead of fetching the
 * same bytes again, so every byte of a sequential read crosses the network
 * once, except when one of those threads is descheduled for so long that
 * the others reuse all RA_SLOTS windows meanwhile: its own read then
 * fetches its bytes again. A reader that jumps around fetches exactly what
 * it asked for.
 *
 * The object is described by an opaque source (the caller's struct, copied
 * in at each read and handed back to fetch): when its bytes change (another
 * ETag after a write), the windows of the old version are dropped.
 *
 * Memory: at most RA_SLOTS windows of max_window bytes per handle, owned by
 * the readahead and freed by ra_free; and, with a budget shared by every
 * handle, at most budget.max bytes of windows in all: a window the budget
 * cannot pay for is not made, the read fetches exactly its bytes into the
 * caller's buffer instead (no read-ahead, never an error). Thread-safe: ra.lock protects every
 * field; it is never held across a fetch.
 */
#ifndef S3CFS_READAHEAD_H
#define S3CFS_READAHEAD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RA_SLOTS   4
#define RA_SRC_MAX 2048 /* largest source description */

/* Fetch len bytes at off of the object src describes into dst: 0 or a
 * negative errno. Called without any lock, from the reading thread or from
 * a task started by spawn. */
typedef int (*ra_fetch_fn)(void *ctx, const void *src, uint64_t off, size_t len, char *dst);
/* Run fn(arg) in the background: 0, or an error when it cannot now (the
 * window is then fetched when a reader reaches it). May be NULL. */
typedef int (*ra_spawn_fn)(void *ctx, int (*fn)(void *), void *arg);

/* The window bytes of many handles: used is changed atomically (no lock),
 * max is constant once the first handle uses it. */
struct ra_budget {
    _Atomic size_t used;
    size_t max;
};

struct ra_config {
    ra_fetch_fn fetch; /* required */
    ra_spawn_fn spawn; /* NULL: no background fetch */
    void *ctx;
    size_t min_window;        /* [256 KiB] */
    size_t max_window;        /* [8 MiB] */
    struct ra_budget *budget; /* NULL: unbounded; must outlive the handle */
};

struct ra_stats {
    uint64_t fetched_bytes; /* by fetch, foreground and background */
    uint64_t fetches;
    uint64_t prefetches; /* of those, started in the background */
};

struct readahead;

/* -EINVAL without fetch, -ENOMEM. */
int ra_new(const struct ra_config *cfg, struct readahead **out);
/* Waits for background fetches still running, then frees. NULL is fine. */
void ra_free(struct readahead *ra);

/* Read up to size bytes at off of an object of object_size bytes described
 * by src (src_len <= RA_SRC_MAX): the count (short only at the end, 0 past
 * it) or a negative errno from fetch. */
int ra_read(struct readahead *ra, const void *src, size_t src_len, uint64_t object_size, char *buf,
            size_t size, uint64_t off);

void ra_get_stats(struct readahead *ra, struct ra_stats *out);

#endif
