/* fakes3.h - an in-memory S3 store for unit tests of the layers above the
 * S3 client (fs/), linked in place of s3/ops.c and s3/request.c: a test
 * executable that links s3cfs_fakes3 gets s3.h's operations answered by
 * this store, with the same results, errors and errno mapping as the real
 * client would return for the same answers of a server.
 *
 * The store is one per process, shared by every s3_client (like one
 * server), guarded by one mutex held for the few instructions of each
 * request (never across an injected latency). What it keeps: buckets;
 * objects with their bytes, ETag (MD5 hex, or MD5-of-MD5s "-N" for a
 * multipart upload, as S3 computes them), Content-Type, user metadata and
 * Last-Modified (whole seconds, as the HTTP date carries them); multipart
 * uploads with their parts. Listings are ListObjectsV2 in key order with
 * prefix, delimiter, max-keys (at most 1000) and opaque continuation
 * tokens. The answers go through the client's own checks (results.c):
 * s3_list_page_check, s3_list_walk, the XML builders' key and part-list
 * validation.
 *
 * Not emulated: retries (an injected failure is what the client returns
 * after its retries; err.attempts is 1), radosgw's empty ETag in
 * CompleteMultipartUpload, versioning, ACLs, checksums.
 *
 * Knobs, all reset by fakes3_reset: a latency per request kind, failures
 * (the Nth request of a kind, or a rate), hostile answers (flags below),
 * the minimum part size (5 MiB as on S3; 0 lets tests use small parts).
 * Every request is counted by kind, failed or not.
 */
#ifndef S3CFS_FAKES3_H
#define S3CFS_FAKES3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3cfs/s3.h"

enum fakes3_kind {
    FAKES3_LIST_BUCKETS,
    FAKES3_HEAD_BUCKET,
    FAKES3_CREATE_BUCKET,
    FAKES3_DELETE_BUCKET,
    FAKES3_LIST, /* ListObjectsV2, one per page */
    FAKES3_HEAD,
    FAKES3_GET, /* s3_get_object and s3_get_object_buf */
    FAKES3_PUT,
    FAKES3_COPY,         /* CopyObject */
    FAKES3_DELETE,       /* DeleteObject */
    FAKES3_DELETE_BATCH, /* DeleteObjects */
    FAKES3_MPU_CREATE,
    FAKES3_MPU_PART,      /* UploadPart */
    FAKES3_MPU_COPY_PART, /* UploadPartCopy */
    FAKES3_MPU_COMPLETE,
    FAKES3_MPU_ABORT,
    FAKES3_TAGGING, /* GetObjectTagging and PutObjectTagging */
    FAKES3_NKINDS,
    FAKES3_ANY = FAKES3_NKINDS, /* knobs only: every kind */
};

/* Hostile answers (fakes3_set_hostile), each mapped to what the real client
 * makes of it: */
enum {
    /* every listing page also holds an object outside the prefix (for the
     * empty prefix: a key over 1024 bytes): s3_list_page_check refuses the
     * page, -EIO */
    FAKES3_FOREIGN_ENTRY = 1 << 0,
    /* every listing page also holds a common prefix shorter than the
     * requested prefix: refused the same way */
    FAKES3_SHORT_PREFIX = 1 << 1,
    /* every page is truncated and its next token is the one it was asked
     * with (the first page: a fixed token): s3_list_walk ends with -EIO */
    FAKES3_REPEAT_TOKEN = 1 << 2,
    /* ETags in HEAD, PUT, copy and part answers are 200 bytes long: the
     * client keeps the first 79 (http.c copies headers into 80 bytes) */
    FAKES3_LONG_ETAG = 1 << 3,
    /* CopyObject, UploadPartCopy and CompleteMultipartUpload answer 200
     * with an <Error><Code>InternalError</Code> body and do nothing: the
     * client returns -EIO, code InternalError, status 200 */
    FAKES3_ERROR_IN_200 = 1 << 4,
};

/* Empty store (no buckets), counters at 0, every knob off. */
void fakes3_reset(void);

/* Direct access, not counted as requests, no knob applies. Return 0 or a
 * negative errno (-ENOENT: no such bucket or key). */
int fakes3_create_bucket(const char *bucket);
int fakes3_put(const char *bucket, const char *key, const void *data, size_t len);
/* content_type NULL: binary/octet-stream. */
int fakes3_put_meta(const char *bucket, const char *key, const void *data, size_t len,
                    const char *content_type, const struct s3_meta *meta, size_t nmeta);
/* *data: heap copy (free()), NUL-terminated past len. */
int fakes3_get(const char *bucket, const char *key, char **data, size_t *len);
bool fakes3_exists(const char *bucket, const char *key);
/* The value of user metadata name of an object into out; -ENODATA when
 * the object has none of that name. */
int fakes3_meta(const char *bucket, const char *key, const char *name, char *out, size_t size);
int fakes3_etag(const char *bucket, const char *key, char out[80]);
/* The keys starting with prefix (NULL: all), in order, separated by ' ',
 * into out (truncated to size); returns their count. */
size_t fakes3_keys(const char *bucket, const char *prefix, char *out, size_t size);
/* Multipart uploads neither completed nor aborted. */
size_t fakes3_uploads(void);

/* Requests of a kind since the last reset (FAKES3_ANY: all kinds). */
uint64_t fakes3_count(enum fakes3_kind k);
void fakes3_count_reset(void);
const char *fakes3_kind_name(enum fakes3_kind k);

/* Every request of kind k (FAKES3_ANY: all) first sleeps usec. */
void fakes3_set_latency(enum fakes3_kind k, unsigned usec);
/* The nth request of kind k from now (1: the next one) fails with the S3
 * code and HTTP status given, as the client would return it (errno from
 * the one table of error.c; a throttling code also calls the client's
 * throttle callback). One such rule per kind; n 0 removes it. */
void fakes3_fail_nth(enum fakes3_kind k, unsigned n, const char *code, int status);
/* Each request of kind k fails with probability rate (0..1), drawn from a
 * generator seeded with seed, so that a run can be repeated. */
void fakes3_fail_rate(enum fakes3_kind k, double rate, const char *code, int status, unsigned seed);
void fakes3_set_hostile(unsigned flags);
/* The listing flags apply only to listings whose prefix starts with this
 * (NULL or "": every listing). */
void fakes3_set_hostile_prefix(const char *prefix);
/* The smallest part CompleteMultipartUpload accepts but for the last
 * (EntityTooSmall below it): 5 MiB by default. */
void fakes3_set_min_part(size_t bytes);

#endif
