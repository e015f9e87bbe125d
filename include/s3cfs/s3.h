/* s3.h - the S3 client: one struct s3_client per mount, safe for any number
 * of threads at once, and the operations the filesystem needs.
 *
 * Every operation returns 0 or a negative errno (mapped from the S3 error
 * code by the one table in error.c) and, on failure, fills the caller's
 * struct s3_error with the S3 code, message, HTTP status, request id and
 * the number of attempts. Transient failures (5xx, 503 SlowDown,
 * RequestTimeout, resets, timeouts) are retried inside the call with
 * exponential backoff and full jitter (retry.h); other 4xx are final.
 *
 * Strings passed in are borrowed for the duration of the call. Results that
 * own heap memory say how to free them. Object keys are raw (unencoded)
 * bytes; encoding for the URL is done here, once.
 *
 * The client holds no lock while a request is in flight: its shared parts
 * (connection pool, signing-key cache, credentials, counters) each protect
 * themselves for the few instructions they need.
 *
 * This page is the whole S3 API: every type the filesystem (and the unit
 * tests' in-memory store, tests/fakes3) passes in or gets back is declared
 * here. The layers under it (HTTP, SigV4 signing, the XML documents, the
 * retrying request) are internal to s3/ and have their headers there.
 */
#ifndef S3CFS_S3_H
#define S3CFS_S3_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "s3cfs/buf.h"
#include "s3cfs/credentials.h"
#include "s3cfs/error.h"
#include "s3cfs/retry.h"

enum s3_addressing {
    S3_ADDR_AUTO =
        0, /* virtual-hosted on AWS (path-style for dotted names), path-style elsewhere */
    S3_ADDR_PATH,
    S3_ADDR_VHOST,
};

enum s3_payload_signing {
    S3_PAYLOAD_AUTO = 0, /* hash bodies up to 1 MiB, UNSIGNED-PAYLOAD above */
    S3_PAYLOAD_ALWAYS,
    S3_PAYLOAD_NEVER,
};

struct s3_client_options {
    const char *endpoint; /* "http://127.0.0.1:7480"; NULL or "": AWS for region */
    const char *region;   /* NULL: us-east-1 */
    enum s3_addressing addressing;
    enum s3_payload_signing payload_signing;
    bool insecure_tls; /* turn certificate verification off (default on) */
    const char *ca_file;
    long connect_timeout_ms;
    long stall_timeout_s;
    struct retry_policy retry; /* zeroed fields take the defaults */
    /* Also send radosgw's x-amz-copy-if-match alongside the standard
     * x-amz-copy-source-if-match (radosgw ignores the latter). Default on. */
    bool no_legacy_copy_if;
    struct creds_provider *creds; /* borrowed; must outlive the client */
    /* Called (from the requesting thread, no lock held) whenever the store
     * answers with throttling, so the job engine can lower concurrency. */
    void (*on_throttle)(void *arg);
    void *on_throttle_arg;
};

/* Counters, updated atomically; read them with atomic_load. */
struct s3_stats {
    atomic_uint_fast64_t requests; /* HTTP exchanges sent, retries included */
    atomic_uint_fast64_t retries;
    atomic_uint_fast64_t throttled;
    atomic_uint_fast64_t failures; /* operations that returned an error */
    atomic_uint_fast64_t bytes_up;
    atomic_uint_fast64_t bytes_down;
};

struct s3_client;

int s3_global_init(void);
int s3_client_new(const struct s3_client_options *opt, struct s3_client **out,
                  struct s3_error *err);
void s3_client_free(struct s3_client *c);
struct s3_stats *s3_client_stats(struct s3_client *c);
/* Set the throttling callback of the options after creation; call before
 * any request is in flight (it is read without a lock). */
void s3_client_set_throttle_cb(struct s3_client *c, void (*cb)(void *arg), void *arg);
const char *s3_client_endpoint(const struct s3_client *c);

/* ---- the values operations take and give ---- */

/* One item of an object's metadata, a name and its value. The one type for
 * both kinds S3 has: user metadata (x-amz-meta-NAME, given and returned as
 * NAME alone, lower case) and the object headers (system metadata: the
 * S3_OBJECT_HEADERS, by their header name). Passed in, the strings are
 * borrowed; in a result (struct s3_head) they are the result's own. */
struct s3_meta {
    const char *name;
    const char *value;
};

/* The headers of an answer, besides Content-Type and x-amz-meta-*, that
 * describe the object itself and that a rewrite of it must send again:
 * S3 drops the content headers on a CopyObject with REPLACE, and every
 * copy or upload resets the storage class and the encryption to the
 * bucket's defaults unless they are sent. x-amz-tagging-count says
 * whether the object has tags (read with GetObjectTagging). */
#define S3_OBJECT_HEADERS                                                                          \
    "cache-control", "content-disposition", "content-encoding", "content-language", "expires",     \
        "x-amz-website-redirect-location", "x-amz-storage-class", "x-amz-server-side-encryption",  \
        "x-amz-server-side-encryption-aws-kms-key-id",                                             \
        "x-amz-server-side-encryption-bucket-key-enabled", "x-amz-tagging-count"

/* A request body: memory, or len bytes of a file at offset (read with
 * pread, so the same body can be sent again on a retry). Borrowed. */
struct s3_body {
    const char *data;
    int fd; /* -1 for memory; otherwise read from fd at offset */
    off_t offset;
    uint64_t len;
};

/* An object's metadata as HeadObject gives it: the system metadata S3
 * reports for every object (size, ETag, mtime, Content-Type), the user
 * metadata and the object headers. meta and headers, names and values,
 * are owned: s3_head_free(). */
struct s3_head {
    uint64_t size;
    char etag[80]; /* unquoted */
    struct timespec mtime;
    char content_type[128];
    struct s3_meta *meta; /* user metadata, names without "x-amz-meta-" */
    size_t nmeta;
    struct s3_meta *headers; /* the answer's S3_OBJECT_HEADERS, names lower case */
    size_t nheaders;
    unsigned long tag_count; /* x-amz-tagging-count; 0 when absent */
};
void s3_head_free(struct s3_head *h);
/* The value of user metadata `name` (lower case) or NULL. */
const char *s3_head_meta(const struct s3_head *h, const char *name);
/* The value of object header `name` (lower case, one of
 * S3_OBJECT_HEADERS) or NULL. */
const char *s3_head_header(const struct s3_head *h, const char *name);
/* Frees an owned array of n items (names and values) and empties it: what
 * s3_head_free does to each of its two. */
void s3_meta_free(struct s3_meta **v, size_t *n);

/* An entry of a listing. */
struct s3_object {
    char *key; /* decoded (listings ask for EncodingType=url) */
    uint64_t size;
    char etag[80];         /* without quotes */
    struct timespec mtime; /* LastModified */
};

/* One page of ListObjectsV2; strings owned: s3_list_page_free(). */
struct s3_list_page {
    struct s3_object *objects;
    size_t nobjects;
    char **prefixes; /* CommonPrefixes/Prefix, decoded, with the delimiter */
    size_t nprefixes;
    bool truncated;
    char *next_token; /* NextContinuationToken, NULL when none */
};
void s3_list_page_free(struct s3_list_page *p);

struct s3_bucket {
    char *name;
    time_t created;
};
/* Frees the heap array of n buckets s3_list_buckets gave. */
void s3_buckets_free(struct s3_bucket *b, size_t n);

/* A key DeleteObjects did not delete, and why. */
struct s3_delete_error {
    char *key;
    char code[64];
    char message[256];
};
void s3_delete_errors_free(struct s3_delete_error *e, size_t n);

/* A part of a multipart upload, for s3_mpu_complete. */
struct s3_part {
    int number;
    char etag[80]; /* unquoted; quotes are added when sent */
};

/* Options for writes that create an object (PutObject, CopyObject with
 * REPLACE, CreateMultipartUpload). */
struct s3_write_opts {
    const char *content_type; /* NULL: not sent (copy) / binary/octet-stream (put) */
    const struct s3_meta *meta;
    size_t nmeta;
    /* further headers sent as they are (Cache-Control, storage class,
     * encryption: what a rewrite carries over: a s3_head's headers); may
     * be NULL */
    const struct s3_meta *headers;
    size_t nheaders;
};

/* Conditional requests (If-None-Match: *, If-Match, per-key ETags) fail
 * with -ESTALE and code "PreconditionFailed" when the server honours them
 * and the condition does not hold; nothing was written or deleted then. */

/* ---- service and buckets ---- */
/* ListBuckets: *out is a heap array of *n entries (s3_buckets_free). */
int s3_list_buckets(struct s3_client *c, struct s3_bucket **out, size_t *n, struct s3_error *err);
int s3_head_bucket(struct s3_client *c, const char *bucket, struct s3_error *err);
int s3_create_bucket(struct s3_client *c, const char *bucket, struct s3_error *err);
int s3_delete_bucket(struct s3_client *c, const char *bucket, struct s3_error *err);

/* ---- listing ---- */
#define S3_KEY_MAX 1024 /* S3's limit on a key, in bytes */

/* One page of ListObjectsV2 (EncodingType=url; keys come back decoded).
 * token: NULL for the first page. max_keys <= 0: server default (1000).
 * Every entry of a page returned (objects and common prefixes) starts
 * with prefix and is at most S3_KEY_MAX bytes, so callers may index
 * key + strlen(prefix): a page holding any other entry is refused whole
 * (s3_list_page_check: -EIO, logged). */
int s3_list_objects(struct s3_client *c, const char *bucket, const char *prefix,
                    const char *delimiter, const char *token, int max_keys,
                    struct s3_list_page *out, struct s3_error *err);
/* Every page, handed to cb one at a time (the page is freed after cb
 * returns, so memory stays at one page). A non-zero cb return stops the
 * listing and is returned. A continuation token the server already gave
 * in this listing ends it with -EIO (it would go round forever); so does
 * a truncated page without a token. */
typedef int (*s3_list_cb)(const struct s3_list_page *page, void *arg);
int s3_list_all(struct s3_client *c, const char *bucket, const char *prefix, const char *delimiter,
                s3_list_cb cb, void *arg, struct s3_error *err);
/* The same with pages of at most max_keys entries (<= 0: the server's
 * default): rmdir asks only for as many as it may have to skip. */
int s3_list_all_n(struct s3_client *c, const char *bucket, const char *prefix,
                  const char *delimiter, int max_keys, s3_list_cb cb, void *arg,
                  struct s3_error *err);

/* The pieces of the two above, public so that unit tests can feed them
 * pages without a server. */
/* 0 when every entry of p starts with prefix (NULL: "") and fits
 * S3_KEY_MAX; else -EIO, err filled and a warning naming the entry. */
int s3_list_page_check(const struct s3_list_page *p, const char *prefix, struct s3_error *err);
/* Fetches the page after token (NULL: the first) into out. */
typedef int (*s3_list_fetch_fn)(void *src, const char *token, struct s3_list_page *out,
                                struct s3_error *err);
/* The paging loop of s3_list_all over any source of pages. */
int s3_list_walk(s3_list_fetch_fn fetch, void *src, s3_list_cb cb, void *arg, struct s3_error *err);

/* ---- objects ---- */
int s3_head_object(struct s3_client *c, const char *bucket, const char *key, struct s3_head *out,
                   struct s3_error *err);
/* GET bytes [offset, offset+len) into dst (dst holds len bytes; len 0 is
 * -EINVAL: the server never chooses how much is read into memory, and a body
 * larger than len is -ENOSPC, code "BadResponse"). *got receives the count. if_match: NULL or an
 * ETag the object must still have (-ESTALE otherwise). Reading past the end gives fewer bytes, at
 * the end exactly 0 (not an error). */
int s3_get_object(struct s3_client *c, const char *bucket, const char *key, uint64_t offset,
                  size_t len, const char *if_match, char *dst, size_t *got, struct s3_error *err);
/* GET into a growing buffer of at most max bytes (for small objects: symlink
 * targets, tests); max 0 is -EINVAL, a larger object -ENOSPC. */
int s3_get_object_buf(struct s3_client *c, const char *bucket, const char *key, struct sbuf *out,
                      size_t max, struct s3_error *err);
/* PUT body (memory or file range). etag_out may be NULL. */
int s3_put_object(struct s3_client *c, const char *bucket, const char *key,
                  const struct s3_body *body, const struct s3_write_opts *opts, char etag_out[80],
                  struct s3_error *err);
/* The same; if_none_match sends If-None-Match: * (create only if no object
 * has the key). A server may ignore it: see cond.h. A 412 is a success when
 * the object's ETag is the MD5 of body: an earlier sending (a retry, or
 * libcurl's own resend) landed and its answer was lost (one HEAD). */
int s3_put_object_cond(struct s3_client *c, const char *bucket, const char *key,
                       const struct s3_body *body, const struct s3_write_opts *opts,
                       bool if_none_match, char etag_out[80], struct s3_error *err);

/* Which spellings of the source's ETag condition a copy sends. */
enum s3_copy_if {
    S3_COPY_IF_BOTH = 0, /* x-amz-copy-source-if-match, and radosgw's x-amz-copy-if-match
                          * unless the client's no_legacy_copy_if */
    S3_COPY_IF_STANDARD, /* x-amz-copy-source-if-match only (the probe) */
    S3_COPY_IF_LEGACY,   /* x-amz-copy-if-match only (the probe) */
};

struct s3_copy_opts {
    const char *if_match; /* source must still have this ETag */
    /* non-NULL: metadata directive REPLACE (and tagging directive COPY, as
     * S3's default, sent explicitly); its headers are sent too */
    const struct s3_write_opts *replace;
    /* with the COPY directive: further headers (storage class, encryption,
     * which S3 does not copy) */
    const struct s3_meta *headers;
    size_t nheaders;
    bool if_none_match; /* destination: If-None-Match: * */
    enum s3_copy_if copy_if;
};
/* CopyObject src -> dst (single request; up to 5 GiB). */
int s3_copy_object(struct s3_client *c, const char *src_bucket, const char *src_key,
                   const char *dst_bucket, const char *dst_key, const struct s3_copy_opts *opts,
                   char etag_out[80], struct s3_error *err);
/* if_match: NULL or "", or an ETag (unquoted) the object must still have
 * (If-Match). */
int s3_delete_object(struct s3_client *c, const char *bucket, const char *key, const char *if_match,
                     struct s3_error *err);
/* GetObjectTagging: the <Tagging> document as S3 sent it into xml
 * (emptied first; at most 64 KiB). PutObjectTagging takes the same
 * document back (Content-MD5 sent), so tags travel without being parsed. */
int s3_get_object_tagging(struct s3_client *c, const char *bucket, const char *key,
                          struct sbuf *xml, struct s3_error *err);
int s3_put_object_tagging(struct s3_client *c, const char *bucket, const char *key,
                          const struct sbuf *xml, struct s3_error *err);
/* DeleteObjects of up to 1000 keys (quiet mode, Content-MD5 sent). etags:
 * NULL, or per key NULL/"" or the ETag the object must still have (code
 * PreconditionFailed in *errors otherwise). Returns 0 when the request
 * succeeded; per-key failures come back in *errors (heap:
 * s3_delete_errors_free) and are not an error of the call itself. */
int s3_delete_objects(struct s3_client *c, const char *bucket, const char *const *keys,
                      const char *const *etags, size_t nkeys, struct s3_delete_error **errors,
                      size_t *nerrors, struct s3_error *err);

/* ---- multipart ---- */
int s3_mpu_create(struct s3_client *c, const char *bucket, const char *key,
                  const struct s3_write_opts *opts, char **upload_id, struct s3_error *err);
int s3_mpu_upload_part(struct s3_client *c, const char *bucket, const char *key,
                       const char *upload_id, int part, const struct s3_body *body,
                       char etag_out[80], struct s3_error *err);
/* UploadPartCopy of bytes [first, last] of the source. */
int s3_mpu_copy_part(struct s3_client *c, const char *bucket, const char *key,
                     const char *upload_id, int part, const char *src_bucket, const char *src_key,
                     uint64_t first, uint64_t last, const char *if_match, char etag_out[80],
                     struct s3_error *err);
/* if_none_match: send If-None-Match: * (complete only if no object has the
 * key; the upload stays open after a 412: abort it). */
int s3_mpu_complete(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                    const struct s3_part *parts, size_t nparts, bool if_none_match,
                    char etag_out[80], struct s3_error *err);
int s3_mpu_abort(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                 struct s3_error *err);

#endif
