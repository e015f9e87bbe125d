/* transfer.h - moving file data between S3 and the filesystem.
 *
 * Uploads: a stage below the multipart threshold is one PutObject; above
 * it, a multipart upload whose parts go through the worker pool in
 * parallel, read straight from the stage's temporary file (no copy in
 * memory). A failed multipart upload is aborted so no parts linger.
 * Downloads: ranged GETs in parallel chunks into a stage (before a write to
 * an existing object) or into a handle's read-ahead window.
 *
 * None of these hold a lock while transferring; the caller has marked the
 * node busy (node.h) or owns the buffers.
 */
#ifndef S3CFS_TRANSFER_H
#define S3CFS_TRANSFER_H

#include <stdint.h>
#include <sys/stat.h>

#include "s3cfs/fs.h"

struct stage;
struct readahead;
struct ra_config;

struct transfer_upload {
    struct fs_loc loc;
    struct stage *stage; /* the content; must not change during the upload */
    struct stat st;      /* size and the attributes written as metadata */
    char content_type[128];
    const char *xattr; /* encoded x-amz-meta-xattr, or NULL; borrowed */
    /* the HEAD of the object being rewritten (borrowed, may be NULL): all
     * it carries is kept except s3fs's own fields (mode, uid, gid, times,
     * xattr: from st and xattr): other clients' metadata, the content
     * headers, the storage class, the encryption, the tags (put back with
     * PutObjectTagging after the upload) */
    const struct s3_head *kept;
    /* O_EXCL: only if no object has the key (If-None-Match: * on the
     * PutObject or CompleteMultipartUpload, where the server honours it,
     * cond.h): -ESTALE when another client created it first */
    bool create_only;
    /* the times are left out of the metadata: a streamed upload
     * (upstream.h) starts before they are known, and its object's
     * Last-Modified, when it completed, stands for them */
    bool no_times;
    char etag[80]; /* out */
};

int transfer_upload(struct fs_ctx *c, struct transfer_upload *up);

/* What an upload sends besides its bytes, for one made of several calls
 * (upstream.h): begin reads the tags the object up->kept describes (to put
 * back afterwards: an upload drops them) and builds the write options,
 * which borrow from up (content type, xattr, kept): up must outlive w.
 * end puts the tags back when rc is 0, frees w (NULL: nothing) and
 * returns rc or the tagging's error. */
struct transfer_write;
int transfer_write_begin(struct fs_ctx *c, const struct transfer_upload *up,
                         struct transfer_write **out);
const struct s3_write_opts *transfer_write_opts(const struct transfer_write *w);
int transfer_write_end(struct fs_ctx *c, const struct fs_loc *loc, struct transfer_write *w,
                       int rc);

/* Download bytes [0, len) of the object (pinned to etag when not empty)
 * into stage. */
int transfer_download(struct fs_ctx *c, const struct fs_loc *loc, const char *etag,
                      struct stage *stage, uint64_t len);

struct transfer_source {
    struct fs_loc loc;
    uint64_t size;
    char etag[80];
    /* transfer_copy: the destination must not exist (RENAME_NOREPLACE):
     * If-None-Match: * on the CopyObject or CompleteMultipartUpload where
     * the server honours it (cond.h); -ESTALE when an object appeared */
    bool dst_create_only;
};

/* The read-ahead configuration whose windows are ranged GETs on c's pool
 * (for an open handle's readahead, which the handle owns: node.h). */
void transfer_ra_config(struct fs_ctx *c, struct ra_config *cfg);
/* read(2) of an object through a handle's read-ahead (made with
 * transfer_ra_config): returns the byte count (short at the end) or -errno. */
int transfer_read(struct readahead *ra, const struct transfer_source *src, char *buf, size_t size,
                  off_t off);

/* Server-side copy of src (pinned to etag, size bytes; one HEAD reads it)
 * onto dst: with wo, wo's metadata (REPLACE) plus the rest of the
 * source's user metadata (not s3fs's own fields) and its content type
 * unless wo names one; without, all the source's metadata. Either way
 * the content headers, storage class, encryption (SSE-S3 / SSE-KMS key)
 * and tags of the source are kept. CopyObject, or parallel
 * UploadPartCopy above the copy threshold, after which the source's ETag
 * is checked again (radosgw ignores the condition on part copies). err
 * gets S3's answer to the HEAD or the CopyObject (so the job engine can
 * tell a transient failure); it stays empty for a multipart copy, whose
 * parts' errors are logged where they happen. */
int transfer_copy(struct fs_ctx *c, const struct transfer_source *src, const struct fs_loc *dst,
                  const struct s3_write_opts *wo, char etag_out[80], struct s3_error *err);

/* The same onto itself, for a metadata change: h is the HEAD just read
 * (the copy is pinned to its ETag), wo the new metadata. Above the copy
 * threshold a multipart copy whose source is checked again before it
 * completes (-ESTALE, nothing changed, if another writer came between). */
int transfer_rewrite(struct fs_ctx *c, const struct fs_loc *loc, const struct s3_head *h,
                     const struct s3_write_opts *wo, char etag_out[80], struct s3_error *err);

/* GET [off, off+len) into dst with up to `ways` parallel ranged requests. */
int transfer_get_parallel(struct fs_ctx *c, const struct fs_loc *loc, const char *etag,
                          uint64_t off, size_t len, char *dst, int ways);

#endif
