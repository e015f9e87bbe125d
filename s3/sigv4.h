/* sigv4.h - AWS Signature Version 4 (header-based signing).
 *
 * The caller builds the request (method, URI-encoded path, canonical query,
 * headers including Host and, for S3, x-amz-content-sha256) and asks for the
 * headers to add: X-Amz-Date, X-Amz-Security-Token (when the credentials
 * carry one) and Authorization. Every header passed in is signed.
 *
 * Canonicalisation follows the AWS documentation: header names lower-cased,
 * values trimmed with inner runs of spaces folded to one, folded (multi-line)
 * values joined, repeated names combined with ',' in order, sorted by name.
 * The path is used as given (S3 does not normalise).
 *
 * The signing key (a chain of four HMACs) is cached per (secret, date,
 * region, service); the cache is protected by an internal mutex held only
 * for the lookup, so sigv4_sign() is safe from any number of threads.
 * Outputs are written into caller-owned buffers; nothing is kept.
 *
 * Internal to s3/ (request.c signs every attempt; the test vectors in
 * tests/unit/test_sigv4.c).
 */
#ifndef S3CFS_S3_SIGV4_H
#define S3CFS_S3_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "s3cfs/buf.h"

struct http_header {
    const char *name;
    const char *value;
};

struct sigv4_credentials {
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* NULL or "" when none */
};

struct sigv4_request {
    const char *method;                /* "GET", "PUT", ... */
    const char *canonical_uri;         /* already URI-encoded, e.g. "/bucket/a%20b/c" */
    const char *canonical_query;       /* already canonical (uri_canonical_query), "" if none */
    const struct http_header *headers; /* must include "Host" */
    size_t nheaders;
    const char *payload_hash; /* lower-case hex SHA-256 or "UNSIGNED-PAYLOAD" */
    const char *region;       /* "us-east-1" */
    const char *service;      /* "s3" */
    time_t now;               /* signing time, UTC */
    /* When set, the security token is signed-for but not added to the signed
     * headers (the "sts-header-after" case); S3 never uses this. */
    int omit_session_token;
};

/* The headers to send in addition to the request's own. Values live in the
 * struct; the array is NUL-free plain data, no heap. */
struct sigv4_result {
    char amz_date[17]; /* "20150830T123600Z" */
    /* SignedHeaders names every x-amz-meta-* header: S3's 2 KiB of user
     * metadata and the object headers a rewrite carries must fit */
    char authorization[4096];
    char signature[65];
};

/* The building blocks, exposed for the test vectors. Append to out. */
int sigv4_canonical_request(const struct sigv4_request *req, const struct sigv4_credentials *cred,
                            struct sbuf *out);
int sigv4_string_to_sign(const struct sigv4_request *req, const char *canonical_request,
                         struct sbuf *out);

/* Sign: fills res. Returns 0, -EINVAL (missing Host or credentials) or
 * -ENOMEM. The caller sends X-Amz-Date: res->amz_date, Authorization:
 * res->authorization and, if cred->session_token is set, X-Amz-Security-Token. */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *cred,
               struct sigv4_result *res);

/* Lower-case hex SHA-256 of data into hex[65]. */
void sigv4_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
