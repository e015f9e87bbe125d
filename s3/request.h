/* request.h - one S3 request, signed, sent and retried (request.c).
 *
 * The layer between the operations (ops.c) and HTTP (http.c): it builds the
 * URL for the endpoint's addressing style, computes the payload hash, signs
 * every attempt afresh (SigV4, credentials from the provider), sends it,
 * turns error answers (and 200 answers carrying <Error>, for the calls that
 * need that check) into a struct s3_error, and retries what is transient.
 * Internal to s3/: the filesystem uses s3.h.
 */
#ifndef S3CFS_S3_REQUEST_H
#define S3CFS_S3_REQUEST_H

#include "http.h"
#include "s3cfs/s3.h"
#include "s3cfs/uri.h"

struct s3_req {
    const char *method;
    const char *bucket; /* NULL: service level (ListBuckets) */
    const char *key;    /* NULL: bucket level */
    const struct query_param *query;
    size_t nquery;
    const struct http_header *headers; /* extra headers, all signed */
    size_t nheaders;
    const struct s3_body *body;
    struct http_sink sink;
    bool head;
    /* The 2xx body is an XML result that may instead be <Error> (CopyObject,
     * UploadPartCopy, CompleteMultipartUpload): sink.buf must be set. */
    bool error_in_200;
};

/* Send with retries. 0: a 2xx answer is in resp (and the sink). Otherwise
 * -errno with err filled (code, message, status, request id, attempts). */
int s3_send(struct s3_client *c, const struct s3_req *r, struct http_response *resp,
            struct s3_error *err);

/* The lower-case hex digest of a body (memory or file range) with md
 * (an EVP_MD *: EVP_sha256(), EVP_md5()) into hex (2 * digest size + 1).
 * 0, -EIO, -ENOMEM. */
int s3_body_digest(const struct s3_body *b, const void *md, char *hex);

/* Whether the client sends radosgw's legacy copy-if headers too. */
bool s3_client_legacy_copy_if(const struct s3_client *c);

#endif
