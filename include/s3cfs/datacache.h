/* datacache.h - a local on-disk cache of object data, so that a file read
 * again after a remount, or after the kernel dropped its pages, is not
 * downloaded again.
 *
 * What is cached: fixed blocks of objects (block i holds the bytes
 * [i * block_size, (i + 1) * block_size) of the object, the last one
 * shorter). Only whole blocks are stored: a write of a range stores the
 * blocks it covers entirely and ignores the partial ones at its ends, so the
 * reader that wants its downloads cached fetches block-aligned ranges.
 *
 * Identity: the cache is opened for one source (the mount's endpoint,
 * bucket and prefix, as one string), whose hash names the subdirectory it
 * uses and is recorded in every block, so mounts of different sources never
 * share a block. Within it an object version is (bucket, key, ETag, size):
 * a lookup with another ETag or size misses, and a write of another version
 * of a key drops the blocks of the version cached before (one version per
 * key).
 *
 * On disk (doc/internals/datacache.md): DIR/<16 hex digits of the source's
 * hash>-<block size>/, one file per block, named by hashes of the object
 * and the version, the block's index and a number never used twice; each
 * file holds a header (the source's hash, bucket, key, ETag, size, block
 * size and index) and the data, with one FNV-1a 64 checksum over both. A
 * block is served only when its file is a regular file of the daemon's
 * user with one link, of exactly the expected length, whose header is the
 * expected one and whose checksum matches; anything else (a torn write, a
 * flipped byte, a planted file) is a miss and the file is removed. Nothing
 * is fsynced: after a power loss a block is either whole or refused.
 *
 * Trust: DIR is created 0700 when missing; DIR and the subdirectory must be
 * directories (not symlinks: opened with O_NOFOLLOW) of the daemon's user,
 * not writable by group or others, else the open is refused with -EPERM.
 * Files are created 0600.
 *
 * Bound: every block is charged its file's length (data, DATACACHE_HEADER
 * bytes and the names) rounded up to 4 KiB; the charges of the blocks
 * present and of those being written never exceed max_bytes. A write
 * evicts the least recently used blocks (read or written) to make room. The
 * bound is this cache's, per source subdirectory; DATACACHE_DEFAULT_MAX is
 * the daemon's default once a cache_dir is given (the cache is off without
 * one). The files of blocks evicted or forgotten are removed just after the
 * lock is released, and a reader that opened a file before it went keeps
 * its space until it closes it: for those moments the disk holds a few
 * blocks more than the bound. In memory: about 130 bytes per block.
 *
 * Open: the subdirectory's file names and sizes are read (not their
 * contents) to rebuild the index, the accounting and the LRU order (the
 * files' mtimes: a hit sets its block's mtime), so a restarted daemon
 * reuses what it cached; it then evicts down to max_bytes.
 *
 * Locking: one mutex guards the index, the accounting and the statistics;
 * it is held for table operations only, never across disk I/O (a write
 * reserves its block under the lock, writes the file without it and
 * publishes it under the lock again; a read copies the block's file name
 * under the lock and reads it without). Every function but open and close
 * may be called from any number of threads at once; close only when no
 * other call is running. One process per subdirectory: a lock file held
 * while open refuses a second one (-EBUSY).
 *
 * Errors: the cache never fails a read of the filesystem. datacache_read
 * returns what it could serve (0 on a miss or on any error);
 * datacache_write returns 0 or a negative errno that the caller logs at
 * most and otherwise ignores: the data was downloaded all the same. A NULL
 * cache (the cache is off) misses every read and stores nothing.
 */
#ifndef S3CFS_DATACACHE_H
#define S3CFS_DATACACHE_H

#include <stddef.h>
#include <stdint.h>

#define DATACACHE_BLOCK_DEFAULT (1u << 20)   /* 1 MiB */
#define DATACACHE_BLOCK_MIN     4096u        /* block sizes allowed at open */
#define DATACACHE_BLOCK_MAX     (64u << 20)  /* 64 MiB */
#define DATACACHE_DEFAULT_MAX   (1ull << 30) /* 1 GiB, once a cache_dir is given */
#define DATACACHE_HEADER        72u          /* fixed part of a block file's header */
#define DATACACHE_SOURCE_MAX    4096u        /* longest source string */

struct datacache;

struct datacache_config {
    const char *dir;    /* the cache directory; created 0700 when missing */
    const char *source; /* the mount's source (endpoint, bucket, prefix); not "" */
    uint64_t max_bytes; /* the bound, > 0 */
    /* DATACACHE_BLOCK_MIN..DATACACHE_BLOCK_MAX; 0: DATACACHE_BLOCK_DEFAULT.
     * Part of the subdirectory's name: blocks cached with another size are
     * not seen (nor removed) */
    uint32_t block_size;
};

/* One version of an object. The strings are the caller's and only read
 * during the call. */
struct datacache_obj {
    const char *bucket;
    const char *key;
    const char *etag; /* NULL or "": a version not known yet, never cached */
    uint64_t size;
};

struct datacache_stats {
    uint64_t bytes;        /* charged: blocks present and being written */
    uint64_t max_bytes;    /* the bound */
    uint64_t blocks;       /* blocks present */
    uint64_t objects;      /* objects with at least one block present or being written */
    uint64_t hits;         /* blocks served */
    uint64_t misses;       /* block lookups that served nothing (one per read at most) */
    uint64_t hit_bytes;    /* bytes served */
    uint64_t inserts;      /* blocks stored */
    uint64_t evictions;    /* blocks evicted for room (at open too) */
    uint64_t dropped;      /* blocks refused when read (torn, corrupt, missing) */
    uint64_t write_errors; /* blocks whose file could not be written */
};

/* Opens (and creates) the cache of cfg->source in cfg->dir; *out owns the
 * directory descriptors and the index until datacache_close. Errors:
 * -EINVAL (a missing or empty dir or source, a source longer than
 * DATACACHE_SOURCE_MAX, max_bytes 0, a block size out of range), -EPERM
 * (a directory or the lock file not trusted: a symlink, not a directory,
 * another owner, writable by group or others; logged), -EBUSY (another
 * process has this source's cache open), -ENOMEM, or the errno of mkdir or
 * open. */
int datacache_open(const struct datacache_config *cfg, struct datacache **out);
/* Frees the index and closes the directory; the files stay for the next
 * open. NULL is fine. No other call may be running. */
void datacache_close(struct datacache *dc);

/* Copies to buf the longest prefix of [off, off + len) of version o that the
 * cache holds, clipped to o->size; returns its length (0: a miss, a NULL dc,
 * an unknown ETag, off >= size). Bytes of buf past the count returned are
 * undefined. A block found torn or corrupt is removed. Never fails. */
size_t datacache_read(struct datacache *dc, const struct datacache_obj *o, uint64_t off, size_t len,
                      void *buf);

/* Stores the blocks of version o that [off, off + len) covers entirely
 * (data holds those len bytes; the last block counts as covered when the
 * range reaches o->size); blocks already present are only marked used.
 * Returns 0 (also when no block is covered, or dc is NULL), or the first
 * error, the blocks before it stored: -EINVAL (no ETag; off + len past
 * o->size), -ENOSPC (the disk is full, or the blocks being written by other
 * threads leave no room under the bound), -ENOMEM, -EIO or another errno
 * of writing the file. The caller ignores the error (logs it at most). */
int datacache_write(struct datacache *dc, const struct datacache_obj *o, uint64_t off, size_t len,
                    const void *data);

/* Drops every block of bucket/key, of any version: the object changed,
 * was renamed or deleted. A block being written meanwhile is dropped when
 * its write ends. NULL dc, bucket or key is ignored. */
void datacache_forget(struct datacache *dc, const char *bucket, const char *key);

/* A snapshot of the counters. NULL dc: all zero. */
void datacache_stats(struct datacache *dc, struct datacache_stats *out);

#endif
