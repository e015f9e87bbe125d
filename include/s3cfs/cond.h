/* cond.h - which conditional requests the server honours.
 *
 * S3 can make a write or a delete conditional: If-None-Match: * (create
 * only if the key is free), If-Match / a per-key ETag (delete only while the
 * object is still the one we know), the copy source's ETag. Servers differ:
 * radosgw 16.2 honours some, ignores others (the request then runs as if
 * unconditional) and a server may refuse a header it does not know. A
 * condition sent to a server that ignores it protects nothing, so s3cfs
 * asks the server once, at mount, with a few requests on two scratch keys
 * (cond_probe), and sends a condition only where it was seen to hold; where
 * not, the code keeps its previous behaviour and guards.
 *
 * The result is written once before the FUSE loop starts (fs_ctx.conds)
 * and only read afterwards: no lock.
 */
#ifndef S3CFS_COND_H
#define S3CFS_COND_H

#include <stdbool.h>
#include <stddef.h>

struct s3_client;
struct fs_ctx;

enum cond_kind {
    COND_PUT_CREATE,      /* If-None-Match: * on PutObject */
    COND_COMPLETE_CREATE, /* If-None-Match: * on CompleteMultipartUpload */
    COND_COPY_CREATE,     /* If-None-Match: * on a CopyObject destination */
    COND_DELETE_IF_MATCH, /* If-Match on DeleteObject */
    COND_DELETES_ETAG,    /* <ETag> of a key in DeleteObjects */
    COND_COPY_SOURCE_IF,  /* x-amz-copy-source-if-match on CopyObject */
    COND_COPY_IF,         /* x-amz-copy-if-match (radosgw's own spelling) */
    COND_COUNT
};

enum cond_state {
    COND_UNKNOWN = 0, /* not probed, or the probe could not tell (network, permissions) */
    COND_HONOURED,    /* the request failed with 412 and changed nothing */
    COND_IGNORED,     /* the request ran as if the condition were not there */
    COND_REJECTED,    /* the server refused the request (another 4xx) */
};

struct cond_caps {
    unsigned char state[COND_COUNT]; /* enum cond_state */
};

/* Run the probe in bucket, on two keys named PREFIX.s3cfs-probe-RANDOM-a/-b
 * (prefix "" or ending in '/'), removed afterwards. About 13 requests. Fills
 * out (a condition the probe could not settle stays COND_UNKNOWN) and
 * returns 0, or the error of the first write when the bucket takes none
 * (everything unknown then). */
int cond_probe(struct s3_client *s3, const char *bucket, const char *prefix, struct cond_caps *out);

/* Probe at mount: the mounted bucket (under its prefix), or for a mount of
 * every bucket the first one listed; logs the result in one line. Failures
 * leave every condition unknown (not sent) and are logged, not returned. */
void cond_probe_mount(struct fs_ctx *c);

/* Whether condition k was seen honoured (only then is it sent). */
bool cond_on(const struct cond_caps *caps, enum cond_kind k);

const char *cond_kind_name(enum cond_kind k);
const char *cond_state_name(enum cond_state s);
/* "put-if-none-match=honoured complete-if-none-match=ignored ...", the
 * line the log and the control socket show. */
void cond_format(const struct cond_caps *caps, char *out, size_t size);

#endif
