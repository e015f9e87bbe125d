/* node.h - open files: one node per path with open handles, shared by all
 * of them, holding what S3 does not have yet.
 *
 * A node's content is either the object in S3 (stage == NULL: reads are
 * ranged GETs, with read-ahead per handle) or a local stage (after a write,
 * a truncate, or a create): then reads and writes go to the stage and the
 * stage is uploaded on flush/fsync/release when dirty. Creating a file or
 * opening it with O_TRUNC writes nothing to S3 until it is flushed, or,
 * once it grows past the multipart threshold, until its first parts are
 * ready: such a file uploads while it is written (upstream.h), and its
 * flush completes that upload.
 *
 * Locking: the table's mutex protects the path -> node map and reference
 * counts. A node's path is written under both the table's and the node's
 * mutex, so either is enough to read it. Each node's mutex protects its fields; it is never held
 * across network I/O: a download or upload marks the node busy, drops the mutex, and others wait on
 * the node's condition variable until it is not busy.
 */
#ifndef S3CFS_NODE_H
#define S3CFS_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "s3cfs/fs.h"
#include "s3cfs/htab.h"

struct stage;
struct node_table;

struct fs_node {
    /* table lock */
    char *path; /* written under the table and the node lock; "" once detached */
    int refs;
    struct htab_node h; /* in the table's map while path is not "" */
    /* node lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct fs_loc loc;
    struct stat st; /* what stat() shows: size is the logical size */
    char etag[80];  /* of the object in S3, "" if none */
    struct stage *stage;
    bool exists;   /* an object is in S3 */
    bool dirty;    /* the stage differs from S3 */
    bool busy;     /* a transfer is running: wait on cond */
    bool unlinked; /* removed while open: never uploaded again */
    bool served;   /* bytes of the object at etag were read through the node */
    /* copy_file_range made this a server-side copy of copy_src: queued when
     * the handle is flushed (close), so that what cp -a/-p set on the open
     * file in between rides along with it */
    bool copy_pending;
    struct fs_copy_src {
        struct fs_loc loc;
        uint64_t size;
        char etag[80];
    } copy_src;
    uint64_t copy_done; /* bytes of copy_src covered by the ranges so far */
    /* created with O_EXCL and not uploaded yet: the first upload creates
     * the object only if the key is still free (If-None-Match: *, where
     * the server honours it); another client's object there fails that
     * flush and the next one with EEXIST, drops what was written (a later
     * write tries the create again) and stays as it is */
    bool create_only;
    /* the object at etag is one this node uploaded as a new object, and
     * no metadata rewrite or other version came since: it carries only
     * what the node sent, so the next upload need not HEAD it for what to
     * keep (write, fsync, write: one request per upload) */
    bool own_meta;
    /* the stage was started empty (a create, O_TRUNC): written from its
     * start, it may upload while it is written (upstream.h) */
    bool stream_ok;
    struct upstream *stream; /* that upload, or NULL */
    /* times were set (utimens) since the last write: a streamed upload,
     * which starts without them, rewrites its metadata */
    bool times_set;
    /* a streamed upload failed after parts of the stage were given back:
     * the content written is gone (S3 keeps what it had); every read,
     * write, truncate and flush fails with EIO until the last close */
    bool lost;
    int error; /* a failed upload, reported by the next flush/fsync */
};

struct readahead;

/* An open handle: the node plus this handle's read-ahead (readahead.h),
 * made by its first read. */
struct fs_file {
    struct fs_node *node;
    pthread_mutex_t lock; /* protects ra until it is made */
    struct readahead *ra;
    int fd_flags;
};

int node_table_new(struct node_table **out);
void node_table_free(struct node_table *t);

/* Open path. st/etag describe the existing object; etag NULL means a new
 * file (st then holds its mode, owner and times). O_TRUNC empties it
 * locally. */
int node_open(struct fs_ctx *c, const char *path, const struct fs_loc *loc, const struct stat *st,
              const char *etag, int flags, struct fs_file **out);
/* The open of f let the kernel keep its pages of version etag (pagekeep.h):
 * they count as bytes of that version served, so a read that finds
 * another version fails (EIO) instead of mixing the two. */
void node_pages_kept(struct fs_file *f, const char *etag);
/* Close a handle; uploads a dirty node when it is the last handle. */
int node_release(struct fs_ctx *c, struct fs_file *f);

int node_read(struct fs_ctx *c, struct fs_file *f, char *buf, size_t size, off_t off);
int node_write(struct fs_ctx *c, struct fs_file *f, const char *buf, size_t size, off_t off);
/* Upload if dirty; returns (and clears) a pending error. */
int node_flush(struct fs_ctx *c, struct fs_node *n);
int node_truncate(struct fs_ctx *c, struct fs_node *n, uint64_t size);
/* Change attributes of an open node; applied with its next upload when the
 * node is dirty (returns 1 then), else the caller rewrites the metadata. */
int node_setattr(struct fs_node *n, const struct stat *st);

/* Server-side copy for copy_file_range: when src's content is the object
 * in S3 and dst was just created or truncated, a range from offset 0 makes
 * dst a copy of src (with dst's own attributes) without data passing
 * through us; the following ranges at the same offsets in both files extend
 * it. The copy is queued when dst is flushed; if the ranges did not cover
 * all of src by then, the covered prefix goes through the data path.
 * Returns the bytes copied, or -EAGAIN when the range cannot be server-side
 * (the caller then copies it through the data path). */
ssize_t node_copy(struct fs_ctx *c, struct fs_file *src, struct fs_file *dst, uint64_t off_in,
                  uint64_t off_out, size_t len);

/* Attributes of path if it has an open node: 0, or -ENOENT. */
int node_stat(struct fs_ctx *c, const char *path, struct stat *st, char etag[80]);
/* Take a reference to the open node of path, or NULL. node_unref drops it. */
struct fs_node *node_find(struct node_table *t, const char *path);
void node_unref(struct fs_ctx *c, struct fs_node *n);
/* A rename moved path from -> to: open nodes follow. */
void node_rename(struct node_table *t, const char *from, const char *to,
                 const struct fs_loc *to_loc);

/* A directory is being renamed: first the open files below it upload what
 * they hold (so the tree's copy carries it), then they follow it to the
 * new name, so that nothing is uploaded under a name it no longer has. */
int node_flush_tree(struct fs_ctx *c, const char *dir);
void node_rename_tree(struct fs_ctx *c, const char *from, const char *to);

/* Open files under dir that are not in S3 yet (created, not flushed). */
struct node_child {
    char name[S3CFS_NAME_MAX + 1];
    struct stat st;
};
int node_children(struct node_table *t, const char *dir, struct node_child **out, size_t *n);
void node_children_free(struct node_child *v, size_t n);

/* path is being unlinked, or replaced by a rename: its open node (if any)
 * first takes the whole content into its stage (downloading it, or
 * fetching a copy not yet queued from its source), then leaves the path,
 * which is free for a new file at once. Its handles keep reading, writing
 * and truncating it (st_nlink 0) until the last close; nothing of it is
 * uploaded again. hidden (or NULL) is the name libfuse now uses for the
 * open file (NODE_HIDDEN_PREFIX...): operations on it reach the node only.
 * 0, or the error of the download: the caller must then not remove the
 * name (the file stays as it was). */
int node_detach(struct fs_ctx *c, const char *path, const char *hidden);

/* libfuse renames a file that is unlinked or replaced while open to a
 * name of this prefix in the same directory, and unlinks that name at the
 * last close. Such a name is never an object in S3. */
#define NODE_HIDDEN_PREFIX ".fuse_hidden"
bool node_hidden_name(const char *path);

/* What fstat shows for an open handle's node (also after node_detach). */
void node_fstat(struct fs_node *n, struct stat *st);

#endif
