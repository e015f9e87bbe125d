#include "s3cfs/readahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DEF_MIN_WINDOW (256u << 10)
#define DEF_MAX_WINDOW (8u << 20)

enum { W_FREE, W_FETCHING, W_READY };

/* One window. Guarded by readahead.lock; buf, off and len do not change
 * while FETCHING, so the fetch writes buf without the lock. */
struct window {
    char *buf;
    size_t cap;
    uint64_t off;
    size_t len;
    int state;
    unsigned gen; /* readahead.gen of the version it holds */
};

struct readahead {
    struct ra_config cfg; /* read-only after ra_new */
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;  /* a window finished fetching */
    unsigned char src[RA_SRC_MAX];
    size_t src_len;
    uint64_t size; /* of the object version src describes */
    unsigned gen;  /* bumped when the source changes */
    struct window w[RA_SLOTS];
    uint64_t next_off; /* where the last read ended */
    size_t window;     /* the next sequential window; 0 after a jump */
    int background;    /* fetches running in spawned tasks */
    struct ra_stats st;
};

/* Take n bytes of the shared budget: false when that would exceed it. */
static bool budget_take(struct ra_budget *b, size_t n)
{
    if (!b)
        return true;
    size_t used = atomic_load(&b->used);
    do {
        if (n > b->max || used > b->max - n)
            return false;
    } while (!atomic_compare_exchange_weak(&b->used, &used, used + n));
    return true;
}

static void budget_give(struct ra_budget *b, size_t n)
{
    if (b)
        atomic_fetch_sub(&b->used, n);
}

int ra_new(const struct ra_config *cfg, struct readahead **out)
{
    if (!cfg || !cfg->fetch)
        return -EINVAL;
    struct readahead *ra = calloc(1, sizeof *ra);
    if (!ra)
        return -ENOMEM;
    ra->cfg = *cfg;
    if (!ra->cfg.min_window)
        ra->cfg.min_window = DEF_MIN_WINDOW;
    if (ra->cfg.max_window < ra->cfg.min_window)
        ra->cfg.max_window =
            ra->cfg.min_window > DEF_MAX_WINDOW ? ra->cfg.min_window : DEF_MAX_WINDOW;
    pthread_mutex_init(&ra->lock, NULL);
    pthread_cond_init(&ra->cond, NULL);
    *out = ra;
    return 0;
}

void ra_free(struct readahead *ra)
{
    if (!ra)
        return;
    pthread_mutex_lock(&ra->lock);
    while (ra->background > 0)
        pthread_cond_wait(&ra->cond, &ra->lock);
    pthread_mutex_unlock(&ra->lock);
    for (int i = 0; i < RA_SLOTS; i++) {
        budget_give(ra->cfg.budget, ra->w[i].cap);
        free(ra->w[i].buf);
    }
    pthread_cond_destroy(&ra->cond);
    pthread_mutex_destroy(&ra->lock);
    free(ra);
}

void ra_get_stats(struct readahead *ra, struct ra_stats *out)
{
    pthread_mutex_lock(&ra->lock);
    *out = ra->st;
    pthread_mutex_unlock(&ra->lock);
}

/* lock held: a new version of the object makes every window stale (the
 * ones still fetching finish into their old generation and are reused). */
static void set_source(struct readahead *ra, const void *src, size_t len, uint64_t size)
{
    if (len == ra->src_len && size == ra->size && memcmp(src, ra->src, len) == 0)
        return;
    memcpy(ra->src, src, len);
    ra->src_len = len;
    ra->size = size;
    ra->gen++;
    ra->window = 0;
    for (int i = 0; i < RA_SLOTS; i++)
        if (ra->w[i].state == W_READY)
            ra->w[i].state = W_FREE;
}

static bool current(const struct readahead *ra, const struct window *w)
{
    return w->state != W_FREE && w->gen == ra->gen;
}

/* lock held: the window of this version holding (or fetching) pos. */
static struct window *covering(struct readahead *ra, uint64_t pos)
{
    for (int i = 0; i < RA_SLOTS; i++) {
        struct window *w = &ra->w[i];
        if (current(ra, w) && pos >= w->off && pos - w->off < w->len)
            return w;
    }
    return NULL;
}

/* lock held: a slot to fetch into. Free or stale ones first, then the
 * ready window furthest behind, but none ending after keep (the reader is
 * still in it or ahead of it). NULL when every slot is busy or needed. */
static struct window *claim(struct readahead *ra, uint64_t keep)
{
    struct window *best = NULL;
    for (int i = 0; i < RA_SLOTS; i++) {
        struct window *w = &ra->w[i];
        if (w->state == W_FETCHING)
            continue;
        if (!current(ra, w))
            return w;
        if (w->off + w->len <= keep && (!best || w->off < best->off))
            best = w;
    }
    return best;
}

/* lock held: a read near where the last one ended continues a sequential
 * reader (the kernel's read-ahead requests arrive slightly out of order). */
static bool sequential(const struct readahead *ra, uint64_t pos)
{
    uint64_t near = ra->cfg.max_window;
    return pos + near >= ra->next_off && pos <= ra->next_off + near;
}

/* lock held: the extent of a new window at pos: the growing window size (at
 * least want), cut at the end of the object and at the next window. */
static size_t extent(struct readahead *ra, uint64_t pos, size_t want)
{
    ra->window = ra->window ? ra->window * 2 : ra->cfg.min_window;
    if (ra->window > ra->cfg.max_window)
        ra->window = ra->cfg.max_window;
    uint64_t end = pos + (want > ra->window ? want : ra->window);
    if (end > ra->size)
        end = ra->size;
    for (int i = 0; i < RA_SLOTS; i++)
        if (current(ra, &ra->w[i]) && ra->w[i].off > pos && ra->w[i].off < end)
            end = ra->w[i].off;
    return (size_t)(end - pos);
}

/* lock held: make w a window of len bytes at pos being fetched; -ENOBUFS
 * when the budget cannot pay for its buffer. */
static int start_window(struct readahead *ra, struct window *w, uint64_t pos, size_t len)
{
    if (w->cap < len) {
        if (!budget_take(ra->cfg.budget, len - w->cap))
            return -ENOBUFS;
        char *b = realloc(w->buf, len);
        if (!b) {
            budget_give(ra->cfg.budget, len - w->cap);
            return -ENOMEM;
        }
        w->buf = b;
        w->cap = len;
    }
    w->off = pos;
    w->len = len;
    w->gen = ra->gen;
    w->state = W_FETCHING;
    ra->st.fetches++;
    ra->st.fetched_bytes += len;
    return 0;
}

/* lock held: a fetch into w is over. */
static void finish_window(struct readahead *ra, struct window *w, int rc)
{
    w->state = rc ? W_FREE : W_READY;
    pthread_cond_broadcast(&ra->cond);
}

/* lock held (dropped during the fetch): fetch a window at pos in the
 * reading thread. */
static int fetch_window(struct readahead *ra, struct window *w, uint64_t pos, size_t want)
{
    int rc = start_window(ra, w, pos, extent(ra, pos, want));
    if (rc)
        return rc;
    unsigned char src[RA_SRC_MAX];
    memcpy(src, ra->src, ra->src_len);
    pthread_mutex_unlock(&ra->lock);
    rc = ra->cfg.fetch(ra->cfg.ctx, src, w->off, w->len, w->buf);
    pthread_mutex_lock(&ra->lock);
    finish_window(ra, w, rc);
    return rc;
}

/* lock held (dropped during the fetch): a read off the sequential path
 * fetches exactly its bytes and resets the window. */
static int fetch_direct(struct readahead *ra, char *buf, size_t len, uint64_t pos)
{
    unsigned char src[RA_SRC_MAX];
    memcpy(src, ra->src, ra->src_len);
    ra->window = 0;
    ra->st.fetches++;
    ra->st.fetched_bytes += len;
    pthread_mutex_unlock(&ra->lock);
    int rc = ra->cfg.fetch(ra->cfg.ctx, src, pos, len, buf);
    pthread_mutex_lock(&ra->lock);
    return rc;
}

struct bg_fetch {
    struct readahead *ra;
    struct window *w;
    unsigned char src[RA_SRC_MAX];
};

static int run_bg_fetch(void *arg)
{
    struct bg_fetch *b = arg;
    struct readahead *ra = b->ra;
    int rc = ra->cfg.fetch(ra->cfg.ctx, b->src, b->w->off, b->w->len, b->w->buf);
    pthread_mutex_lock(&ra->lock);
    finish_window(ra, b->w, rc);
    ra->background--;
    pthread_cond_broadcast(&ra->cond);
    pthread_mutex_unlock(&ra->lock);
    free(b);
    return 0;
}

/* lock held (dropped around spawn): a sequential reader now at pos gets the
 * window after the ones it has ahead fetched in the background, when it has
 * less than a window ahead. */
static void prefetch(struct readahead *ra, uint64_t pos)
{
    if (!ra->cfg.spawn || ra->window == 0)
        return;
    uint64_t ahead = pos;
    for (struct window *w; ahead < ra->size && (w = covering(ra, ahead));)
        ahead = w->off + w->len;
    if (ahead >= ra->size || ahead - pos >= ra->window)
        return;
    struct window *w = claim(ra, pos);
    struct bg_fetch *b = w ? malloc(sizeof *b) : NULL;
    if (!b || start_window(ra, w, ahead, extent(ra, ahead, 0)) != 0) {
        free(b);
        return;
    }
    b->ra = ra;
    b->w = w;
    memcpy(b->src, ra->src, ra->src_len);
    ra->background++;
    ra->st.prefetches++;
    pthread_mutex_unlock(&ra->lock);
    int rc = ra->cfg.spawn(ra->cfg.ctx, run_bg_fetch, b);
    pthread_mutex_lock(&ra->lock);
    if (rc) {
        free(b);
        ra->background--;
        ra->st.prefetches--;
        ra->st.fetches--;
        ra->st.fetched_bytes -= w->len;
        finish_window(ra, w, rc);
    }
}

/* lock held (dropped during a fetch): a read of len bytes at pos off the
 * sequential path, or over the budget, fetches exactly them. */
static int read_direct(struct readahead *ra, char *buf, size_t len, uint64_t pos, size_t *got)
{
    int rc = fetch_direct(ra, buf, len, pos);
    *got = rc ? 0 : len;
    return rc;
}

/* lock held (dropped while fetching or waiting): one step of a read of len
 * bytes at pos into buf. It copies from the window holding pos, fetches a
 * window there (or exactly the bytes), or waits for a fetch to finish;
 * *got is the bytes it placed in buf (0 after a wait or a window fetch:
 * the next step copies from it). 0 or the fetch's error. */
static int read_step(struct readahead *ra, char *buf, size_t len, uint64_t pos, size_t *got)
{
    struct window *w = covering(ra, pos);
    *got = 0;
    if (w && w->state == W_FETCHING) {
        pthread_cond_wait(&ra->cond, &ra->lock);
        return 0;
    }
    if (w) {
        size_t n = (size_t)(w->off + w->len - pos);
        *got = n < len ? n : len;
        memcpy(buf, w->buf + (pos - w->off), *got);
        return 0;
    }
    if (!sequential(ra, pos))
        return read_direct(ra, buf, len, pos, got);
    if (!(w = claim(ra, UINT64_MAX))) {
        pthread_cond_wait(&ra->cond, &ra->lock); /* every slot fetching */
        return 0;
    }
    int rc = fetch_window(ra, w, pos, len);
    if (rc == -ENOBUFS) /* over the budget: this read only */
        return read_direct(ra, buf, len, pos, got);
    return rc;
}

int ra_read(struct readahead *ra, const void *src, size_t src_len, uint64_t object_size, char *buf,
            size_t size, uint64_t off)
{
    if (src_len > RA_SRC_MAX)
        return -EINVAL;
    if (off >= object_size || size == 0)
        return 0;
    if (size > object_size - off)
        size = (size_t)(object_size - off);
    pthread_mutex_lock(&ra->lock);
    set_source(ra, src, src_len, object_size);
    int rc = 0;
    for (size_t done = 0, got; rc == 0 && done < size; done += got)
        rc = read_step(ra, buf + done, size - done, off + done, &got);
    if (rc == 0) {
        ra->next_off = off + size;
        prefetch(ra, off + size);
    }
    pthread_mutex_unlock(&ra->lock);
    return rc ? rc : (int)size;
}
