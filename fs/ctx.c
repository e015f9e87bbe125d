/* The mount context's parts that start threads, and their end (fs.h):
 * shared by main.c and the unit tests' driver (tests/fakes3), so that both
 * build a mount alike. */
#include <string.h>

#include "s3cfs/dirtimes.h"
#include "s3cfs/fsqueue.h"
#include "s3cfs/log.h"
#include "s3cfs/mime.h"
#include "s3cfs/node.h"
#include "s3cfs/nscache.h"
#include "s3cfs/objops.h"
#include "s3cfs/pagekeep.h"
#include "s3cfs/pool.h"

int fs_ctx_start(struct fs_ctx *c)
{
    struct nscache_config nc = {
        .attr_ttl_ms = (unsigned)(c->opt.attr_ttl * 1000),
        .negative_ttl_ms = (unsigned)(c->opt.negative_ttl * 1000),
        .dir_ttl_ms = (unsigned)(c->opt.dir_ttl * 1000),
        .dir_attr_ttl_ms = (unsigned)(c->opt.dir_attr_ttl * 1000),
        .max_entries = (size_t)c->opt.cache_entries,
        .max_names = (size_t)c->opt.cache_entries * 2,
    };
    int rc = nscache_new(&nc, &c->cache);
    if (rc == 0)
        rc = node_table_new(&c->nodes);
    /* two pools: a listing or a read must not queue behind thousands of
     * background copies (cp -r would wait for its own backlog at every
     * directory); the engine's pool is the one throttling adapts */
    if (rc == 0)
        rc = pool_new(c->opt.max_inflight, (size_t)c->opt.max_inflight * 4, &c->pool);
    if (rc == 0)
        rc = pool_new(c->opt.max_inflight, (size_t)c->opt.max_inflight * 4, &c->engine_pool);
    if (rc == 0)
        rc = fsq_start(c);
    if (rc == 0)
        rc = dirtimes_new(obj_write_dir_times, c, &c->dirtimes);
    if (rc == 0 && !c->opt.nokeep_cache)
        rc = pagekeep_new(PAGEKEEP_MAX, &c->pages);
    return rc;
}

int fs_ctx_free(struct fs_ctx *c)
{
    /* unmount and SIGTERM: directory times are written, every queued copy
     * and delete lands */
    dirtimes_free(c->dirtimes);
    c->dirtimes = NULL;
    int rc = fsq_stop(c);
    if (rc)
        LOGE("queued operations failed before exit: %s", strerror(-rc));
    else
        LOGI("exiting: every queued copy and delete landed");
    if (c->engine_pool) /* first: its copies use the other pool for parts */
        pool_free(c->engine_pool);
    if (c->pool)
        pool_free(c->pool);
    node_table_free(c->nodes);
    pagekeep_free(c->pages);
    c->pages = NULL;
    mime_free(c->mime);
    c->mime = NULL;
    if (c->cache)
        nscache_free(c->cache);
    s3_client_free(c->s3);
    creds_provider_free(c->creds);
    return rc;
}
