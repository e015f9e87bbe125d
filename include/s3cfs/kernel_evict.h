/* kernel_evict.h - keeping the kernel's cached entries of closed files bounded.
 *
 * The kernel keeps a dentry and an inode for every name it looked up until
 * memory runs short, and libfuse keeps a node for each of those inodes
 * until the kernel forgets it: a `cp -r` of 100,000 files would leave
 * 200,000 nodes in the daemon. So the daemon remembers the last `keep`
 * files closed and, for older ones, tells the kernel to drop the name
 * (FUSE_NOTIFY_INVAL_ENTRY). The kernel then evicts the unused inode and
 * sends FORGET, and libfuse frees its node. A later access costs a LOOKUP,
 * answered from the namespace cache.
 *
 * A dedicated thread sends the notifications: the kernel may hold the
 * directory's lock while it waits for a reply, so a FUSE handler must not
 * send them. It finds the directory's inode number (which libfuse makes the
 * node id) with lstat through the mount.
 *
 * Memory: at most keep + KEVICT_BACKLOG paths; when the thread falls behind,
 * the oldest notifications are dropped (those entries stay cached).
 * trim.lock protects the queues, the stopping flag and the count; no lock
 * is held across lstat or a notification.
 */
#ifndef S3CFS_KERNEL_EVICT_H
#define S3CFS_KERNEL_EVICT_H

#include <stddef.h>

#define KEVICT_BACKLOG 4096

struct kevict;
struct fuse_session;

/* Start trimming below mountpoint (an absolute path) of session se, keeping
 * the `keep` most recently closed files. -ENOMEM or pthread_create's error. */
int kevict_new(struct fuse_session *se, const char *mountpoint, size_t keep, struct kevict **out);

/* A file was closed (path inside the mount). Never blocks on I/O. NULL t is
 * ignored. */
void kevict_note(struct kevict *t, const char *path);

/* Stop taking work (call when the FUSE loop has ended). A notification
 * being sent may still be blocked in the kernel: unmount (which closes the
 * device and ends it), then kevict_free, then destroy the session. */
void kevict_stop(struct kevict *t);

/* Join the thread and free. NULL is ignored. */
void kevict_free(struct kevict *t);

/* Make the kernel forget the cached attributes of path (not its pages), so
 * that it asks for them, the size included, before it trusts them again: a
 * file another client replaced. Unlike dropping a name, this takes no lock
 * in the kernel, so a FUSE handler may call it (even during a read of that
 * file); the lstat that finds the inode is answered from the kernel's
 * cache, or by another worker. NULL t is ignored. */
void kevict_forget_attrs(struct kevict *t, const char *path);

/* Notifications sent so far (for tests and status). */
unsigned long kevict_sent(struct kevict *t);

#endif
