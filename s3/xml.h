/* xml.h - the S3 XML documents we read and write (libxml2).
 *
 * Parsers take the raw response body (not NUL-terminated necessarily) and
 * fill plain structs whose strings are heap-allocated and owned by the
 * struct: free them with the matching *_free(). They return 0, -EPROTO when
 * the body is not the expected document (malformed XML, wrong root), or
 * -ENOMEM. Namespaces are ignored (radosgw and AWS differ in what they
 * declare). ETags are returned as the server sent them but without the
 * surrounding quotes (radosgw quotes some and not others).
 *
 * libxml2 is initialised once by xml_init() (called by s3_global_init());
 * after that every function here is safe from any thread.
 *
 * Internal to s3/: the parsers fill the result types of s3.h, whose
 * *_free() functions live in xml.c.
 */
#ifndef S3CFS_S3_XML_H
#define S3CFS_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "s3cfs/buf.h"
#include "s3cfs/error.h"
#include "s3cfs/s3.h"

void xml_init(void);

/* <Error><Code/><Message/><RequestId/><Resource/></Error>: fills e's code,
 * message, request_id. Returns 0 if the body is an Error document, -ENOENT
 * if it is well-formed XML of another kind, -EPROTO if it is not XML. */
int xml_parse_error(const char *body, size_t len, struct s3_error *e);

/* ListBucketResult of ListObjectsV2. If the document says
 * <EncodingType>url</EncodingType>, Key and Prefix values are URL-decoded. */
int xml_parse_list_objects(const char *body, size_t len, struct s3_list_page *out);

/* ListAllMyBucketsResult. *out is a heap array of *n entries. */
int xml_parse_list_buckets(const char *body, size_t len, struct s3_bucket **out, size_t *n);

/* CopyObjectResult or CopyPartResult: ETag (unquoted, never empty) and
 * LastModified (mtime may be NULL). S3 can answer 200 and still fail, with an
 * <Error> body. Returns 0 on a result document, 1 when the body is an <Error>
 * document (e filled, if not NULL: the caller treats it as a failure with
 * that code), -EPROTO otherwise, -ENOMEM. */
int xml_parse_copy_result(const char *body, size_t len, char etag[80], struct timespec *mtime,
                          struct s3_error *e);

/* InitiateMultipartUploadResult: heap copy of UploadId into *upload_id. */
int xml_parse_initiate_multipart(const char *body, size_t len, char **upload_id);

/* CompleteMultipartUploadResult: ETag (may be empty: radosgw sends none).
 * Same <Error> rule as xml_parse_copy_result. */
int xml_parse_complete_multipart(const char *body, size_t len, char etag[80], struct s3_error *e);

/* DeleteResult: the <Deleted> count and the per-key <Error>s. */
int xml_parse_delete_result(const char *body, size_t len, size_t *ndeleted,
                            struct s3_delete_error **errors, size_t *nerrors);

/* Builders append to out (on failure out keeps its previous content) and
 * return 0, -EINVAL or -ENOMEM. Keys are escaped for XML; a key holding a
 * character that XML 1.0 cannot carry (control characters other than
 * tab/LF/CR) or invalid UTF-8 gives -EINVAL, as do an empty key and a batch
 * of 0 or more than 1000 keys. */
int xml_build_delete(struct sbuf *out, const char *const *keys, size_t nkeys, bool quiet);
/* The same with an ETag condition per key: etags NULL, or etags[i] NULL or
 * "" for none, else unquoted (the builder adds quotes): S3 deletes keys[i]
 * only while it has that ETag (a per-key PreconditionFailed otherwise). */
int xml_build_delete_etags(struct sbuf *out, const char *const *keys, const char *const *etags,
                           size_t nkeys, bool quiet);

/* parts: at least one, numbers 1..10000 strictly ascending, else -EINVAL. */
int xml_build_complete_multipart(struct sbuf *out, const struct s3_part *parts, size_t n);

#endif
