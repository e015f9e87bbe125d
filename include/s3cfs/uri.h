/* uri.h - S3 URI encoding and canonical query strings (SigV4 rules).
 *
 * S3 encodes every byte except the unreserved set A-Z a-z 0-9 '-' '_' '.'
 * '~' as %XX with upper-case hex; '/' in an object key is kept as a path
 * separator (each segment is encoded exactly once; S3 does not normalise
 * paths: "a//b/./c" stays as it is). Query names and values are encoded the
 * same way, '/' included.
 *
 * All functions append to a caller-owned struct sbuf and return 0 or -ENOMEM.
 */
#ifndef S3CFS_URI_H
#define S3CFS_URI_H

#include <stdbool.h>
#include <stddef.h>

#include "s3cfs/buf.h"

/* Append s[0..n) encoded; keep_slash keeps '/' literally (object keys). */
int uri_encode(struct sbuf *out, const char *s, size_t n, bool keep_slash);
int uri_encode_str(struct sbuf *out, const char *s, bool keep_slash);

/* Decode %XX sequences (and, when plus_is_space, '+' as ' ') of s[0..n) into
 * out. Returns -EINVAL on a malformed escape. Used for ListObjectsV2 answers
 * with EncodingType=url and for s3fs' URL-encoded xattr metadata. */
int uri_decode(struct sbuf *out, const char *s, size_t n, bool plus_is_space);

/* One query parameter, raw (not encoded). value may be NULL for a bare key
 * such as "?uploads" or "?delete"; it is then rendered as "uploads=". */
struct query_param {
    const char *name;
    const char *value;
};

/* Append the canonical query string: each name and value encoded, sorted by
 * encoded name then encoded value, joined with '&'. The same string is used
 * in the URL, so what is signed is exactly what is sent. */
/* The value of one hex digit (either case), or -1. */
int uri_hex_value(unsigned char c);
int uri_canonical_query(struct sbuf *out, const struct query_param *params, size_t n);

#endif
